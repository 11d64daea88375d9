//! SYN-proxy as an I/O-free state machine: one per worker, owning its cookie secrets and their
//! rotation, the half-open table with the packets it holds, and the ack-storm guard. The worker
//! feeds it events (a client's ACK, a client segment while half-open, the real server's SYN-ACK,
//! a retry timer) and acts on the verdicts; nothing here touches a port, a clock or the
//! connection table.
//!
//! Invariants:
//! - A half-open entry exists exactly while its connection is pending (`Conn::synproxy_pending`);
//!   the worker opens one right after binding the connection and [`SynProxy::abort`]s it whenever
//!   the connection leaves the table (see [`crate::conn::bind`]).
//! - Held packets are bounded per connection (`max_held`) and in total (`max_half_open` entries);
//!   every packet refused or dropped here comes back to the caller with its reason, or is counted
//!   here as `synproxy_aborted`.
//! - Secrets rotate every two cookie periods; cookies made under the previous secret still verify.
use super::cookie::{siphash24, SipKey};
use super::half_open::{due_buf, DueBuf, HalfOpen, Pending};
use super::{check_cookie, make_cookie, CookieError, CookieSecrets, SynAckConfig, SynOptions};
use crate::conn::ConnId;
use crate::flow::{FlowKey, Millis};
use crate::setup::SynproxySetup;
use crate::stats::{DropReason as D, Stats};

/// A client's handshake-completing ACK whose cookie checked out.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    pub cookie_isn: u32,
    pub client_isn: u32,
    /// What the cookie carried, with the client's timestamps from this ACK.
    pub opts: SynOptions,
    /// The ACK's (seq, ack), the ack-storm guard's first reference.
    pub seq_ack: (u32, u32),
}

/// The proxy's shift for an established proxied connection: `rs = cookie + delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Established {
    pub delta: u32,
    pub ts_delta: Option<u32>,
}

pub struct SynProxy<F> {
    cfg: SynproxySetup,
    secrets: CookieSecrets,
    /// The key the current secret was made from, and when to derive the next one.
    key: [u8; 16],
    rotate_at: Millis,
    half_open: HalfOpen<F>,
    /// Reused buffer for releasing a connection's held packets (capacity `max_held`).
    scratch: Vec<F>,
}

impl<F> std::fmt::Debug for SynProxy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynProxy")
            .field("half_open", &self.half_open.len())
            .field("held", &self.half_open.held())
            .finish_non_exhaustive()
    }
}

impl<F> SynProxy<F> {
    pub fn new(cfg: SynproxySetup) -> SynProxy<F> {
        let period = cfg.period_ms.max(1);
        SynProxy {
            cfg,
            secrets: CookieSecrets::with_period(cfg.key, period),
            key: cfg.key,
            rotate_at: 2 * period,
            half_open: HalfOpen::new(cfg.max_half_open as usize, cfg.max_held as usize),
            scratch: Vec::with_capacity(cfg.max_held as usize),
        }
    }

    pub fn config(&self) -> &SynproxySetup {
        &self.cfg
    }

    /// Half-open connections.
    pub fn len(&self) -> usize {
        self.half_open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.half_open.is_empty()
    }

    /// Client packets held until real servers answer.
    pub fn held(&self) -> usize {
        self.half_open.held()
    }

    /// Our answer to a client's SYN: the cookie ISN and, with timestamps, our encoded TSval.
    pub fn cookie<A: crate::flow::Addr>(
        &self,
        key: &FlowKey<A>,
        client_isn: u32,
        opts: &SynOptions,
        now: Millis,
    ) -> (u32, Option<u32>) {
        make_cookie(&self.secrets, key, client_isn, opts, now)
    }

    /// The SYN-ACK's parameters; with TOA the client's segments must leave the option room.
    pub fn synack_config(&self, toa_len: u16) -> SynAckConfig {
        SynAckConfig {
            mss: self.cfg.mss.saturating_sub(toa_len),
            wscale: self.cfg.wscale,
            window: self.cfg.window,
            ..SynAckConfig::default()
        }
    }

    /// Checks the cookie of a client's ACK (`seq`, `ack`, its timestamps). The verdict names the
    /// drop reason when it fails; a full half-open table refuses a valid one too.
    pub fn check_ack<A: crate::flow::Addr>(
        &self,
        key: &FlowKey<A>,
        seq: u32,
        ack: u32,
        ts: Option<(u32, u32)>,
        now: Millis,
    ) -> Result<Handshake, D> {
        let cookie_isn = ack.wrapping_sub(1);
        let client_isn = seq.wrapping_sub(1);
        let opts = match check_cookie(&self.secrets, key, cookie_isn, client_isn, ts, now) {
            Ok(o) => o,
            Err(CookieError::TooOld) => return Err(D::SynproxyCookieTooOld),
            Err(CookieError::BadTimestamp) => return Err(D::SynproxyBadTimestamp),
            Err(_) => return Err(D::SynproxyBadCookie),
        };
        Ok(Handshake {
            cookie_isn,
            client_isn,
            opts: SynOptions { timestamps: ts, ..opts },
            seq_ack: (seq, ack),
        })
    }

    pub fn is_full(&self) -> bool {
        self.half_open.is_full()
    }

    /// Opens the half-open entry of connection `id` and holds the client's ACK in it. The packet
    /// comes back when it cannot be held.
    pub fn open(&mut self, id: ConnId, h: &Handshake, first: F) -> Result<(), (F, D)> {
        let p = Pending {
            conn: id,
            cookie_isn: h.cookie_isn,
            client_isn: h.client_isn,
            opts: h.opts,
            our_tsval: h.opts.timestamps.map(|t| t.1),
            tries: 0,
            last_syn: 0,
            last_ack: h.seq_ack,
            repeats: 0,
        };
        if !self.half_open.insert(p) {
            return Err((first, D::SynproxyHalfOpenFull));
        }
        self.half_open.hold(id, first).map_err(|f| (f, D::SynproxyHeldFull))
    }

    /// A client segment while the real server has not answered: held, unless it is one more copy
    /// of the same pure ACK past the ack-storm limit or the connection's queue is full.
    pub fn client_segment(
        &mut self,
        id: ConnId,
        seq: u32,
        ack: u32,
        pure_ack: bool,
        f: F,
    ) -> Result<(), (F, D)> {
        if let Some(p) = self.half_open.get_mut(id) {
            if pure_ack && p.last_ack == (seq, ack) {
                p.repeats += 1;
                if p.repeats > self.cfg.ack_storm {
                    return Err((f, D::SynproxyAckStorm));
                }
            } else {
                p.last_ack = (seq, ack);
                p.repeats = 0;
            }
        }
        self.half_open.hold(id, f).map_err(|f| (f, D::SynproxyHeldFull))
    }

    /// The real server's SYN-ACK (`seq`, `ack`, its TSval): the shift from now on, or why the
    /// segment is not the answer we wait for.
    pub fn server_synack(
        &mut self,
        id: ConnId,
        seq: u32,
        ack: u32,
        rs_tsval: Option<u32>,
    ) -> Result<Established, D> {
        let p = self.half_open.get_mut(id).copied().ok_or(D::SynproxyBadSegment)?;
        if ack != p.client_isn.wrapping_add(1) {
            return Err(D::SynproxyBadSegment);
        }
        let ts_delta = match (p.our_tsval, rs_tsval) {
            (Some(ours), Some(rs)) => Some(ours.wrapping_sub(rs)),
            _ => None,
        };
        Ok(Established { delta: seq.wrapping_sub(p.cookie_isn), ts_delta })
    }

    /// Closes the entry of an established connection, handing its held packets, oldest first,
    /// into `into` (see [`Self::take_scratch`]).
    pub fn release_held(&mut self, id: ConnId, into: &mut Vec<F>) {
        self.half_open.take(id, |f| into.push(f));
    }

    /// The reusable release buffer; give it back with [`Self::put_scratch`].
    pub fn take_scratch(&mut self) -> Vec<F> {
        std::mem::take(&mut self.scratch)
    }

    pub fn put_scratch(&mut self, v: Vec<F>) {
        self.scratch = v;
    }

    /// The half-open entry of connection `id`, if it has one (a copy; nothing changes).
    pub fn pending(&mut self, id: ConnId) -> Option<Pending> {
        self.half_open.get_mut(id).copied()
    }

    /// Closes the entry of a connection that failed or left the table; its held packets are
    /// dropped and counted. The entry, if there was one.
    pub fn abort(&mut self, id: ConnId, stats: &Stats) -> Option<Pending> {
        self.half_open.take(id, |f| {
            stats.dropped(D::SynproxyAborted);
            drop(f);
        })
    }

    /// Records one more SYN to the real server; the entry as it is to be sent.
    pub fn syn_sent(&mut self, id: ConnId, now: Millis) -> Option<Pending> {
        let p = self.half_open.get_mut(id)?;
        p.tries += 1;
        p.last_syn = now;
        Some(*p)
    }

    /// Whether connection `id` has used up its SYN retries (or is gone).
    pub fn retries_exhausted(&mut self, id: ConnId) -> bool {
        self.half_open.get_mut(id).is_none_or(|p| p.tries > self.cfg.syn_retries)
    }

    /// Entries whose SYN is due for a retry, among the next few; fills `due`, returns how many.
    pub fn due(&mut self, now: Millis, due: &mut DueBuf) -> usize {
        if self.half_open.is_empty() {
            return 0;
        }
        self.half_open.poll_due(now, self.cfg.syn_retry_ms, due)
    }

    /// Derives the next secret when its time has come. Each worker derives its next secret from
    /// the last; cookies of the previous one stay valid for another rotation period.
    pub fn rotate(&mut self, now: Millis) {
        if now < self.rotate_at {
            return;
        }
        let k = SipKey::from_bytes(self.key);
        let a = siphash24(&k, &now.to_le_bytes());
        let b = siphash24(&k, &a.to_le_bytes());
        self.key[..8].copy_from_slice(&a.to_le_bytes());
        self.key[8..].copy_from_slice(&b.to_le_bytes());
        self.secrets.rotate(self.key);
        self.rotate_at = now + 2 * self.cfg.period_ms.max(1);
    }
}

/// A fresh buffer for [`SynProxy::due`].
pub fn due_list() -> DueBuf {
    due_buf()
}
