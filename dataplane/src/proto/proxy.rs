//! PROXY protocol (per TCP service, `proxy_protocol = "v1" | "v2"`): the real server learns the
//! client's address from a header ([`crate::wire::proxy`]) at the start of the client's byte stream,
//! without a kernel module.
//!
//! Invariants:
//! - The header goes at the client's first stream byte (`pp_start`: its ISN + 1) in a segment of
//!   its own that the gateway builds and sends just before the client's first segment after its
//!   SYN (the handshake ACK, or data). So it never has to share an MSS with data, the client's
//!   segments keep their sizes, and a server-speaks-first service gets it without the client
//!   sending anything.
//! - From then on every client sequence number is the header's length higher on the real
//!   server's side, and every acknowledgement and SACK edge of the real server that much lower on
//!   the client's; an acknowledgement inside the header maps to `pp_start`, so the client never
//!   sees bytes it did not send acknowledged. SYN-proxy's shift (of the real server's bytes) and
//!   this one (of the client's) compose: each touches the other direction's numbers.
//! - The header is resent until the real server acknowledges it, by a timer ([`RTO_MS`], doubling,
//!   [`RETRIES`] times): a lost header leaves a gap the client cannot fill, and with a
//!   server-speaks-first protocol the client may have nothing to send. Entries leave the timer list at
//!   their first timeout (acknowledged or resent), so it holds about the connections opened in
//!   the last 200 ms; it is bounded (`proxy_timers` per worker, 262,144 by default: 1.3 M new
//!   connections per second per worker). A connection that finds it full is counted
//!   (`proxy_timer_full`) and sends its header again with each client segment at the start of
//!   the stream (its retransmissions) until the real server acknowledges it.
//! - Exclusive with TOA per service (the control plane refuses both; `F_TOA_DONE` marks "header
//!   sent, timer armed" instead of TOA's insertion), and only where replies pass the gateway
//!   (FULLNAT, NAT).
use std::collections::VecDeque;
use std::net::Ipv4Addr;

use crate::conn::{Conn, ConnId, Dir};
use crate::flow::{FlowKey, Millis};
use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::Ctx;
use crate::proto::tcp::build_tcp_with;
use crate::stats::{DropReason as D, Event as E};
use crate::synproxy::map_acks;
use crate::wire::{proxy, TcpFlags, TcpOptionList, TcpPacket, TcpRepr};
use crate::worker::Worker;

/// First retransmission timeout of an unacknowledged header (Linux's minimum RTO).
pub const RTO_MS: Millis = 200;
/// Resends by the timer before it gives up on a connection (the client's own retransmissions
/// still resend it).
pub const RETRIES: u8 = 5;

/// `a` is at or after `b` in sequence space.
#[inline]
fn seq_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

/// The header's version, read back from its length: IPv4 version 2 headers are 28 bytes and
/// version 1 lines at least 32 (`PROXY TCP4 ` and two dotted quads, two ports, CRLF).
#[inline]
fn version_of(len: u32) -> proxy::Version {
    if len == 28 {
        proxy::Version::V2
    } else {
        proxy::Version::V1
    }
}

/// A header waiting for the real server's acknowledgement.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: ConnId,
    /// The connection's `pp_start`, to tell it from a later connection in the same slot.
    start: u32,
    /// The acknowledgement and window the header's segment carries (the client's, in the real
    /// server's sequence space).
    ack: u32,
    window: u16,
    due: Millis,
    tries: u8,
}

/// The bounded retransmission timers of unacknowledged headers. First sends wait in `fresh`,
/// in order of their (equal) timeouts; the few that need a resend move to `retry`, scanned whole.
#[derive(Debug)]
pub struct ProxyTimers {
    fresh: VecDeque<Pending>,
    retry: Vec<Pending>,
    cap: usize,
}

impl ProxyTimers {
    pub fn new(cap: usize) -> ProxyTimers {
        ProxyTimers { fresh: VecDeque::with_capacity(cap), retry: Vec::with_capacity(cap.min(4096)), cap }
    }

    /// Entries waiting, for gauges and tests.
    pub fn len(&self) -> usize {
        self.fresh.len() + self.retry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<P: FramePool> Worker<P> {
    /// A new connection of a PROXY protocol service: where its header goes, and how long it is.
    /// `seq` and `syn` are the binding segment's (the client's SYN, or SYN-proxy's handshake ACK).
    pub(crate) fn pp_bound(&mut self, id: ConnId, svc: u32, seq: u32, syn: bool) {
        let Some(v) = self.services.list.get(svc as usize).and_then(|s| s.proxy_protocol) else { return };
        let Some(c) = self.conns.get_mut(id) else { return };
        let len = proxy::len(v, ip(c.client_addr()), ip(c.vip()));
        let start = if syn { seq.wrapping_add(1) } else { seq };
        c.set_pp(len as u8, start);
    }

    /// A client segment of a PROXY protocol connection (after the mode's rewrite and SYN-proxy's
    /// shift): the header goes out first where it is due, then the segment's sequence number moves
    /// past it.
    pub(crate) fn pp_to_server(
        &mut self,
        f: &mut P::Frame,
        cx: &Ctx,
        id: ConnId,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns.get(id).copied() else { return };
        let len = c.pp_len();
        if len == 0 || cx.flags.syn() {
            return;
        }
        let (seq, ack, window) = {
            let t = TcpPacket::new_unchecked(&f.data()[cx.l4()..]);
            (t.seq_number(), t.ack_number(), t.window_len())
        };
        // The client's first segment after its SYN: the header goes first, and its timer resends
        // it until the real server acknowledges it. `F_TOA_DONE` says a timer holds it; while none
        // could be armed, every client segment at the start of the stream (its retransmissions)
        // sends the header again.
        if seq == c.pp_start() && !c.pp_acked() && !c.toa_done() {
            self.pp_send(&c, ack, window, cx.now, out);
            if self.pp_arm(Pending { id, start: c.pp_start(), ack, window, due: cx.now + RTO_MS, tries: 0 }) {
                if let Some(c) = self.conns.get_mut(id) {
                    c.set_toa_done(true);
                }
            }
        }
        let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[cx.l4()..]);
        t.set_seq_number(seq.wrapping_add(len));
    }

    /// A real-server segment of a PROXY protocol connection: its acknowledgements of the client's
    /// bytes move back before the header; once it acknowledges the whole header, the header is
    /// done.
    pub(crate) fn pp_to_client(&mut self, f: &mut P::Frame, cx: &Ctx, id: ConnId) -> Result<(), D> {
        let Some(c) = self.conns.get(id).copied() else { return Ok(()) };
        let len = c.pp_len();
        if len == 0 {
            return Ok(());
        }
        let (start, end) = (c.pp_start(), c.pp_start().wrapping_add(len));
        if cx.flags.ack() && !c.pp_acked() {
            let ack = TcpPacket::new_unchecked(&f.data()[cx.l4()..]).ack_number();
            if seq_ge(ack, end) {
                if let Some(c) = self.conns.get_mut(id) {
                    c.set_pp_acked();
                }
            }
        }
        let map = |a: u32| if seq_ge(a, end) { a.wrapping_sub(len) } else { start };
        map_acks(&mut f.data_mut()[cx.l4()..], map).map_err(|_| D::TcpMalformed)
    }

    /// Builds and sends connection `c`'s header segment.
    fn pp_send(&mut self, c: &Conn, ack: u32, window: u16, now: Millis, out: &mut Outbox<P::Frame>) {
        let flow = crate::xmit::out_key(c, Dir::Original);
        match build_header(&mut self.pool, &flow, c, ack, window) {
            Some(f) => {
                self.stats.inc(E::ProxyHeadersSent);
                self.send_ip(f, flow.dst, now, out);
            }
            None => self.stats.inc(E::NoMbuf),
        }
    }

    /// Arms a header's timer; false (counted) when the list is full.
    fn pp_arm(&mut self, p: Pending) -> bool {
        let t = &mut self.pp_timers;
        if t.fresh.len() + t.retry.len() >= t.cap {
            self.stats.inc(E::ProxyTimerFull);
            return false;
        }
        t.fresh.push_back(p);
        true
    }

    /// The header timers: resend what the real server has not acknowledged in time.
    pub(crate) fn pp_poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        while self.pp_timers.fresh.front().is_some_and(|p| p.due <= now) {
            if let Some(p) = self.pp_timers.fresh.pop_front() {
                self.pp_due(p, now, out);
            }
        }
        if self.pp_timers.retry.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.pp_timers.retry.len() {
            if self.pp_timers.retry[i].due <= now {
                let p = self.pp_timers.retry.swap_remove(i);
                self.pp_due(p, now, out);
            } else {
                i += 1;
            }
        }
    }

    fn pp_due(&mut self, mut p: Pending, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns.get(p.id).copied() else { return };
        // Done, gone (a later connection in the slot has another start), or given up.
        if c.pp_len() == 0 || c.pp_acked() || c.pp_start() != p.start || p.tries >= RETRIES {
            return;
        }
        self.stats.inc(E::ProxyHeaderRetransmits);
        self.pp_send(&c, p.ack, p.window, now, out);
        p.tries += 1;
        p.due = now + (RTO_MS << p.tries);
        self.pp_timers.retry.push(p);
    }
}

fn ip((a, p): (Ipv4Addr, u16)) -> (std::net::IpAddr, u16) {
    (a.into(), p)
}

/// The header segment `flow` (the client's side toward the real server), at `pp_start`.
fn build_header<P: FramePool>(
    pool: &mut P,
    flow: &FlowKey,
    c: &Conn,
    ack: u32,
    window: u16,
) -> Option<P::Frame> {
    let mut hdr = [0u8; proxy::MAX_LEN];
    let n = proxy::emit(version_of(c.pp_len()), ip(c.client_addr()), ip(c.vip()), &mut hdr).ok()?;
    let repr = TcpRepr {
        src_port: flow.sport,
        dst_port: flow.dport,
        seq: c.pp_start(),
        ack,
        flags: TcpFlags::PSH.union(TcpFlags::ACK),
        window,
        options: TcpOptionList::new(),
        payload_len: n,
    };
    build_tcp_with(pool, flow, &repr, &hdr[..n])
}
