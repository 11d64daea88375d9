//! Scenario b: new TCP connections per second through the gateway, with or without SYN-proxy and
//! TOA.
//!
//! Each connection: the client sends SYN; handshake; the client sends one request (after a pure
//! ACK, as a Linux client does); the real server answers with the response and its FIN together
//! (an HTTP/1.0 server closing); the client sends FIN|ACK; the server's last ACK completes the
//! connection. 4 client segments and 3 server segments, every one checked where it arrives: MACs,
//! addresses and ports as FULLNAT must produce them, both checksums, sequence and acknowledgement
//! numbers and TCP timestamps as that endpoint expects them (so a wrong SYN-proxy shift is a
//! [`RewriteError::Sequence`] at the receiver), the payload bytes, and TOA on the real server's
//! first non-SYN segment.
//!
//! Invariants:
//! - O(1) state per connection in flight: a 40-byte slot, at most `window` of them. A
//!   connection's number `v = slot + window * (generation mod G)` determines everything else: the
//!   client tuple (`v` indexes the client address × port space, so tuples recur only after
//!   `G * window` connections; the gateway then applies its `conn_reuse_mode`), the client's ISN (an
//!   invertible scramble of `v`, so the real server finds the slot from the SYN it receives, which
//!   keeps the client's ISN with and without SYN-proxy) and the server's ISN. The client side finds
//!   the slot from its tuple; the server side from `(LIP, real server, lport)` through a flat array,
//!   filled from the SYN. (A local port is unique per LIP and real server, not per LIP: the gateway
//!   may give the same `LIP:lport` to two live connections toward different real servers.)
//! - With SYN-proxy the client only learns the server's ISN (the cookie) from the SYN-ACK; everything
//!   else is known in advance, so every sequence and acknowledgement number is checked exactly.
//! - A segment that fails a check is counted once, dropped and not answered: its connection then
//!   times out (`failed`), never completes.
use std::net::Ipv4Addr;

use rvs_dataplane::frame::{Frame, FramePool};
use rvs_dataplane::wire::toa::{parse_toa, TOA_LEN};
use rvs_dataplane::wire::TcpFlags;

use super::tcpwire::{self, Pace, Parsed, Seg};
use super::{Counters, Engine, Macs, RewriteError, Side, Tx};

/// Multipliers and salts of the two endpoints' timestamp clocks (their values at connection `v`).
const CTS_MUL: u32 = 0x2545_f491;
const STS_MUL: u32 = 0x27d4_eb2f;
const TS_SALT: u32 = 0x6b43_a9b5;
const CLIENT_WINDOW: u16 = 64_240;
const SERVER_WINDOW: u16 = 65_160;
/// Odd multipliers of the ISN scrambles; `ISN_MUL` must be invertible mod 2^32.
const ISN_MUL: u32 = 0x9e37_79b1;
const ISN_MUL_INV: u32 = tcpwire::inverse_u32(ISN_MUL);
const ISN_SALT: u32 = 0x5bd1_e995;
const SRV_MUL: u32 = 0x85eb_ca6b;
const SRV_SALT: u32 = 0xc2b2_ae35;

/// The TCP options of one segment, built on the stack.
struct Opts {
    b: [u8; 20],
    n: usize,
}

impl Opts {
    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }

    /// SYN and SYN-ACK, in Linux's order: MSS 1460, SACK-permitted (with timestamps if any),
    /// window scale 7 (what the gateway's SYN-proxy advertises for the real servers).
    fn syn(ts: Option<(u32, u32)>) -> Opts {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&[2, 4, 5, 0xb4]);
        let n = match ts {
            Some((val, ecr)) => {
                b[4..8].copy_from_slice(&[4, 2, 8, 10]);
                b[8..12].copy_from_slice(&val.to_be_bytes());
                b[12..16].copy_from_slice(&ecr.to_be_bytes());
                b[16..20].copy_from_slice(&[1, 3, 3, 7]);
                20
            }
            None => {
                b[4..12].copy_from_slice(&[1, 3, 3, 7, 1, 1, 4, 2]);
                12
            }
        };
        Opts { b, n }
    }

    /// Later segments: NOP, NOP, timestamps, or nothing.
    fn ts(ts: Option<(u32, u32)>) -> Opts {
        let mut b = [0u8; 20];
        let n = match ts {
            Some((val, ecr)) => {
                b[..4].copy_from_slice(&[1, 1, 8, 10]);
                b[4..8].copy_from_slice(&val.to_be_bytes());
                b[8..12].copy_from_slice(&ecr.to_be_bytes());
                12
            }
            None => 0,
        };
        Opts { b, n }
    }
}
const REQ_SEED: u32 = 0x5245_5155;
const RESP_SEED: u32 = 0x5245_5350;
/// Largest payload either side sends; keeps every segment within a 1500-byte MTU with TOA.
pub const MAX_PAYLOAD: u16 = 1400;
/// Slots checked for a timeout per `generate` call.
const SWEEP: usize = 8;

#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub macs: Macs,
    pub vip: Ipv4Addr,
    pub vport: u16,
    /// Client addresses: `clients` consecutive ones from `client_base`.
    pub client_base: Ipv4Addr,
    pub clients: u32,
    /// Client ports, inclusive.
    pub cport_min: u16,
    pub cport_max: u16,
    /// The service's local addresses (FULLNAT sources toward the real servers), at most 256.
    pub lips: Vec<Ipv4Addr>,
    /// The real servers the generator answers for, and their port.
    pub reals: Vec<Ipv4Addr>,
    pub rport: u16,
    /// The service is SYN-proxied: the client's SYN-ACK carries the gateway's cookie, not the real
    /// server's ISN.
    pub synproxy: bool,
    /// The service has TOA: the real server's first non-SYN segment must carry the client's
    /// address, and the client's SYN-ACK an MSS lowered to leave room for it.
    pub toa: bool,
    /// The client sends TCP timestamps (as Linux does). Without SYN-proxy the gateway strips them
    /// from the SYN by default, so none are negotiated; with SYN-proxy they run end to end and the
    /// gateway shifts them between its clock and the real server's, which is checked exactly.
    pub timestamps: bool,
    /// Connections in flight at most.
    pub window: u32,
    /// New connections per second; 0 is as fast as the window allows.
    pub rate: u64,
    /// Stop starting connections after this many; 0 is no limit.
    pub max_conns: u64,
    /// The driver's TSC frequency (what `now_tsc` counts per second).
    pub tsc_hz: u64,
    /// A connection not completed after this long is failed.
    pub timeout_ms: u64,
    pub req_len: u16,
    pub resp_len: u16,
}

impl TcpConfig {
    fn check(&self) -> Result<(), String> {
        let ports = u32::from(self.cport_max).saturating_sub(u32::from(self.cport_min)) + 1;
        if self.cport_max < self.cport_min || self.cport_min == 0 {
            return Err(format!("client ports {}..={}: empty or include 0", self.cport_min, self.cport_max));
        }
        if self.clients == 0 || u32::from(self.client_base).checked_add(self.clients - 1).is_none() {
            return Err(format!(
                "clients: {} addresses from {} do not fit IPv4",
                self.clients, self.client_base
            ));
        }
        let tuples = u64::from(self.clients) * u64::from(ports);
        if self.window == 0 || u64::from(self.window) > tuples.min(1 << 31) {
            return Err(format!(
                "window {}: must be 1..={} (client addresses × ports, at most 2^31)",
                self.window,
                tuples.min(1 << 31)
            ));
        }
        if self.lips.is_empty() || self.lips.len() > 256 {
            return Err(format!("lips: {} local addresses, need 1..=256", self.lips.len()));
        }
        if self.reals.is_empty() {
            return Err("reals: no real server address".into());
        }
        // The server side's port map has 64 Ki entries per (local address, real server) pair.
        if self.lips.len() * self.reals.len() > 256 {
            return Err(format!(
                "lips × reals: {} × {} pairs, at most 256",
                self.lips.len(),
                self.reals.len()
            ));
        }
        if self.req_len == 0
            || self.req_len > MAX_PAYLOAD
            || self.resp_len == 0
            || self.resp_len > MAX_PAYLOAD
        {
            return Err(format!(
                "req_len {} / resp_len {}: each must be 1..={MAX_PAYLOAD}",
                self.req_len, self.resp_len
            ));
        }
        Ok(())
    }
}

/// What the connection-rate scenario counts beyond [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    pub started: u64,
    pub completed: u64,
    /// Not completed: timed out or reset.
    pub failed: u64,
    pub timed_out: u64,
    /// RSTs received (each also fails its connection).
    pub rst: u64,
    /// Segments of a connection that had already failed (arriving after its timeout).
    pub late: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ClientPhase {
    #[default]
    Idle,
    SynSent,
    /// ACK and request sent, waiting for the response.
    Requested,
    /// FIN sent, waiting for the last ACK.
    FinSent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ServerPhase {
    #[default]
    Idle,
    /// SYN-ACK sent, waiting for the handshake ACK and the request.
    SynRcvd,
    /// Response and FIN sent, waiting for the client's FIN.
    Responded,
    /// Last ACK sent: nothing more is expected on the server side.
    Done,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    started: u64,
    generation: u32,
    /// 1 + the generation of this slot's last failed connection, to tell late segments; 0: none.
    last_failed: u32,
    /// The server's ISN as the client saw it (the cookie under SYN-proxy).
    srv_isn: u32,
    /// The SYN-ACK's TSval as the client saw it (the gateway's clock under SYN-proxy).
    srv_ts: u32,
    /// Timestamps negotiated, as the client saw the SYN-ACK / as the server saw the SYN.
    client_ts_on: bool,
    server_ts_on: bool,
    lport: u16,
    /// `lip index * reals + real index` of the server side's tuple.
    pair: u16,
    client: ClientPhase,
    server: ServerPhase,
    toa_seen: bool,
}

/// Scenario b's engine; see the module docs.
#[derive(Debug)]
pub struct TcpConnEngine {
    cfg: TcpConfig,
    /// Generations before client tuples recur: `window * gens` tuples are used.
    gens: u32,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// `pair * 65536 + lport` -> slot + 1 (0: none); see `Slot::pair`.
    lports: Vec<u32>,
    sweep_at: usize,
    timeout_tsc: u64,
    pace: Pace,
    counters: Counters,
    stats: TcpStats,
}

fn client_isn(v: u32) -> u32 {
    (v ^ ISN_SALT).wrapping_mul(ISN_MUL)
}

fn conn_of_isn(isn: u32) -> u32 {
    isn.wrapping_mul(ISN_MUL_INV) ^ ISN_SALT
}

fn server_isn(v: u32) -> u32 {
    v.wrapping_mul(SRV_MUL) ^ SRV_SALT
}

/// The client's and the server's TSval clocks at the start of connection `v`; each segment an
/// endpoint sends advances its clock by one.
fn client_ts(v: u32) -> u32 {
    v.wrapping_mul(CTS_MUL) ^ TS_SALT
}

fn server_ts(v: u32) -> u32 {
    v.wrapping_mul(STS_MUL) ^ TS_SALT
}

/// Timestamps present as expected: `want` None means none may be there.
fn ts_is(opts: &[u8], want: Option<(u32, u32)>) -> Result<(), RewriteError> {
    if tcpwire::timestamps_of(opts) == want {
        Ok(())
    } else {
        Err(RewriteError::Sequence)
    }
}

impl TcpConnEngine {
    pub fn new(cfg: TcpConfig) -> Result<TcpConnEngine, String> {
        cfg.check()?;
        let ports = u64::from(cfg.cport_max - cfg.cport_min) + 1;
        let tuples = (u64::from(cfg.clients) * ports).min(1 << 31);
        let gens = (tuples / u64::from(cfg.window)) as u32;
        let w = cfg.window as usize;
        Ok(TcpConnEngine {
            gens,
            slots: vec![Slot::default(); w],
            free: (0..cfg.window).rev().collect(),
            lports: vec![0; (cfg.lips.len() * cfg.reals.len()) << 16],
            sweep_at: 0,
            timeout_tsc: (u128::from(cfg.timeout_ms) * u128::from(cfg.tsc_hz) / 1000) as u64,
            pace: Pace::new(cfg.rate, cfg.tsc_hz),
            counters: Counters::default(),
            stats: TcpStats::default(),
            cfg,
        })
    }

    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Connections in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True once `max_conns` were started and every one completed or failed.
    pub fn done(&self) -> bool {
        self.cfg.max_conns != 0 && self.stats.started >= self.cfg.max_conns && self.in_flight() == 0
    }

    /// Whether `a` is one of this engine's client addresses (for composing engines).
    pub fn owns_client(&self, a: Ipv4Addr) -> bool {
        u32::from(a).wrapping_sub(u32::from(self.cfg.client_base)) < self.cfg.clients
    }

    fn conn_number(&self, s: usize) -> u32 {
        s as u32 + self.cfg.window * (self.slots[s].generation % self.gens)
    }

    fn client_tuple(&self, v: u32) -> (Ipv4Addr, u16) {
        let n = self.cfg.clients;
        let a = Ipv4Addr::from(u32::from(self.cfg.client_base) + v % n);
        (a, self.cfg.cport_min + (v / n) as u16)
    }

    /// Splits a connection number into (slot, generation mod G) if it is one this engine uses.
    fn split(&self, v: u32) -> Option<(usize, u32)> {
        let w = self.cfg.window;
        (u64::from(v) < u64::from(w) * u64::from(self.gens)).then_some(((v % w) as usize, v / w))
    }

    /// The slot of a connection in flight with generation `g` (mod G); otherwise a late segment of
    /// a failed connection (counted, `Ok(None)`) or an unknown flow.
    fn live(&mut self, s: usize, g: u32) -> Result<Option<usize>, RewriteError> {
        let slot = self.slots[s];
        if slot.client != ClientPhase::Idle && slot.generation % self.gens == g {
            return Ok(Some(s));
        }
        if slot.last_failed != 0 && (slot.last_failed - 1) % self.gens == g {
            self.stats.late += 1;
            return Ok(None);
        }
        Err(RewriteError::UnknownFlow)
    }

    fn finish(&mut self, s: usize, ok: bool) {
        let slot = &mut self.slots[s];
        if slot.server != ServerPhase::Idle {
            let k = (usize::from(slot.pair) << 16) | usize::from(slot.lport);
            if self.lports[k] == s as u32 + 1 {
                self.lports[k] = 0;
            }
        }
        if ok {
            self.stats.completed += 1;
            self.counters.completed += 1;
        } else {
            self.stats.failed += 1;
            slot.last_failed = slot.generation.wrapping_add(1);
        }
        *slot = Slot {
            generation: slot.generation.wrapping_add(1),
            last_failed: slot.last_failed,
            ..Slot::default()
        };
        self.free.push(s as u32);
    }

    fn sweep(&mut self, now: u64) {
        for _ in 0..SWEEP.min(self.slots.len()) {
            let s = self.sweep_at;
            self.sweep_at = (s + 1) % self.slots.len();
            let slot = self.slots[s];
            if slot.client != ClientPhase::Idle && now.wrapping_sub(slot.started) > self.timeout_tsc {
                self.stats.timed_out += 1;
                self.finish(s, false);
            }
        }
    }

    fn client_seg<'a>(
        &self,
        v: u32,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        opts: &'a Opts,
        len: u16,
    ) -> Seg<'a> {
        let (a, p) = self.client_tuple(v);
        let m = &self.cfg.macs;
        Seg {
            src_mac: m.own[Side::Client as usize],
            dst_mac: m.gw[Side::Client as usize],
            src: a,
            dst: self.cfg.vip,
            sport: p,
            dport: self.cfg.vport,
            seq,
            ack,
            flags,
            window: CLIENT_WINDOW,
            opts: opts.bytes(),
            payload_len: usize::from(len),
        }
    }

    fn server_seg<'a>(
        &self,
        p: &Parsed,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        opts: &'a Opts,
        len: u16,
    ) -> Seg<'a> {
        let m = &self.cfg.macs;
        Seg {
            src_mac: m.own[Side::Server as usize],
            dst_mac: m.gw[Side::Server as usize],
            src: p.dst,
            dst: p.src,
            sport: p.dport,
            dport: p.sport,
            seq,
            ack,
            flags,
            window: SERVER_WINDOW,
            opts: opts.bytes(),
            payload_len: usize::from(len),
        }
    }

    fn send<P: FramePool>(
        &mut self,
        side: Side,
        f: Option<P::Frame>,
        s: &Seg<'_>,
        seed: u32,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> bool {
        let Some(mut f) = f.or_else(|| pool.alloc()) else {
            self.counters.tx_failed += 1;
            return false;
        };
        let ok = tcpwire::write(&mut f, s, |b| {
            if !b.is_empty() {
                tcpwire::fill_pattern(b, seed)
            }
        });
        if !ok {
            self.counters.tx_failed += 1;
            return false;
        }
        self.counters.tx[side as usize] += 1;
        self.counters.tx_bytes[side as usize] += f.len() as u64;
        tx.push(side, f);
        true
    }

    fn ok(&mut self, side: Side, len: usize) {
        self.counters.rx_ok[side as usize] += 1;
        self.counters.rx_bytes[side as usize] += len as u64;
    }

    /// A segment delivered to a client. Returns the frame for reuse when nothing was sent with it.
    fn on_client<P: FramePool>(
        &mut self,
        f: P::Frame,
        now: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> Result<(), RewriteError> {
        let p = tcpwire::parse(f.data())?;
        let m = self.cfg.macs;
        if p.dst_mac != m.own[Side::Client as usize] || p.src_mac != m.gw[Side::Client as usize] {
            return Err(RewriteError::Mac);
        }
        let off = u32::from(p.dst).wrapping_sub(u32::from(self.cfg.client_base));
        if p.src != self.cfg.vip || off >= self.cfg.clients {
            return Err(RewriteError::Address);
        }
        if p.sport != self.cfg.vport || p.dport < self.cfg.cport_min || p.dport > self.cfg.cport_max {
            return Err(RewriteError::Port);
        }
        let t = u32::from(p.dport - self.cfg.cport_min) * self.cfg.clients + off;
        let (s, g) = self.split(t).ok_or(RewriteError::UnknownFlow)?;
        let Some(s) = self.live(s, g)? else { return Ok(()) };
        let v = self.conn_number(s);
        let (isn, req, resp) = (client_isn(v), u32::from(self.cfg.req_len), u32::from(self.cfg.resp_len));
        let slot = self.slots[s];
        let fl = p.flags;
        if fl.rst() {
            self.stats.rst += 1;
            self.ok(Side::Client, f.len());
            self.finish(s, false);
            return Ok(());
        }
        let plen = p.payload.1 - p.payload.0;
        let d = f.data();
        match slot.client {
            ClientPhase::SynSent => {
                if !(fl.syn() && fl.ack()) || fl.fin() || p.ack != isn.wrapping_add(1) {
                    return Err(RewriteError::Sequence);
                }
                if !self.cfg.synproxy && p.seq != server_isn(v) {
                    return Err(RewriteError::Sequence);
                }
                if plen != 0 {
                    return Err(RewriteError::Payload);
                }
                // TOA rides under the MSS: the gateway must have lowered what the client may send.
                let mss = tcpwire::mss_of(&d[p.opts.0..p.opts.1]);
                if self.cfg.toa && mss.is_none_or(|m| usize::from(m) > 1460 - TOA_LEN) {
                    return Err(RewriteError::Toa);
                }
                // Our TSval echoed; theirs is the real server's clock unless SYN-proxied.
                let ts = tcpwire::timestamps_of(&d[p.opts.0..p.opts.1]);
                match ts {
                    Some((_, ecr)) if !self.cfg.timestamps || ecr != client_ts(v) => {
                        return Err(RewriteError::Sequence)
                    }
                    Some((val, _)) if !self.cfg.synproxy && val != server_ts(v) => {
                        return Err(RewriteError::Sequence)
                    }
                    _ => {}
                }
                let len = f.len();
                let sl = &mut self.slots[s];
                sl.srv_isn = p.seq;
                sl.client_ts_on = ts.is_some();
                sl.srv_ts = ts.map_or(0, |t| t.0);
                sl.client = ClientPhase::Requested;
                self.ok(Side::Client, len);
                let (seq, ack) = (isn.wrapping_add(1), p.seq.wrapping_add(1));
                let o = Opts::ts(ts.map(|(val, _)| (client_ts(v).wrapping_add(1), val)));
                let a = self.client_seg(v, seq, ack, TcpFlags::ACK, &o, 0);
                self.send(Side::Client, Some(f), &a, 0, pool, tx);
                let r = self.client_seg(v, seq, ack, TcpFlags::PSH | TcpFlags::ACK, &o, self.cfg.req_len);
                self.send(Side::Client, None, &r, v ^ REQ_SEED, pool, tx);
            }
            ClientPhase::Requested => {
                if !(fl.fin() && fl.ack()) || fl.syn() {
                    return Err(RewriteError::Sequence);
                }
                if p.seq != slot.srv_isn.wrapping_add(1) || p.ack != isn.wrapping_add(1 + req) {
                    return Err(RewriteError::Sequence);
                }
                let cts = client_ts(v);
                let want = slot.client_ts_on.then(|| (slot.srv_ts.wrapping_add(1), cts.wrapping_add(1)));
                ts_is(&d[p.opts.0..p.opts.1], want)?;
                if plen != resp as usize
                    || !tcpwire::check_pattern(&d[p.payload.0..p.payload.1], v ^ RESP_SEED)
                {
                    return Err(RewriteError::Payload);
                }
                let len = f.len();
                self.slots[s].client = ClientPhase::FinSent;
                self.ok(Side::Client, len);
                let (seq, ack) = (isn.wrapping_add(1 + req), slot.srv_isn.wrapping_add(2 + resp));
                let o =
                    Opts::ts(slot.client_ts_on.then(|| (cts.wrapping_add(2), slot.srv_ts.wrapping_add(1))));
                let fin = self.client_seg(v, seq, ack, TcpFlags::FIN | TcpFlags::ACK, &o, 0);
                self.send(Side::Client, Some(f), &fin, 0, pool, tx);
            }
            ClientPhase::FinSent => {
                if !fl.ack() || fl.syn() || fl.fin() {
                    return Err(RewriteError::Sequence);
                }
                if p.seq != slot.srv_isn.wrapping_add(2 + resp) || p.ack != isn.wrapping_add(2 + req) {
                    return Err(RewriteError::Sequence);
                }
                let want =
                    slot.client_ts_on.then(|| (slot.srv_ts.wrapping_add(2), client_ts(v).wrapping_add(2)));
                ts_is(&d[p.opts.0..p.opts.1], want)?;
                if plen != 0 {
                    return Err(RewriteError::Payload);
                }
                self.ok(Side::Client, f.len());
                let _ = now;
                self.finish(s, true);
            }
            ClientPhase::Idle => return Err(RewriteError::UnknownFlow),
        }
        Ok(())
    }

    /// A segment delivered to a real server.
    fn on_server<P: FramePool>(
        &mut self,
        f: P::Frame,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> Result<(), RewriteError> {
        let p = tcpwire::parse(f.data())?;
        let m = self.cfg.macs;
        if p.dst_mac != m.own[Side::Server as usize] || p.src_mac != m.gw[Side::Server as usize] {
            return Err(RewriteError::Mac);
        }
        let lip = self.cfg.lips.iter().position(|&a| a == p.src);
        let real = self.cfg.reals.iter().position(|&a| a == p.dst);
        let (Some(lip), Some(real)) = (lip, real) else {
            return Err(RewriteError::Address);
        };
        let pair = lip * self.cfg.reals.len() + real;
        if p.dport != self.cfg.rport {
            return Err(RewriteError::Port);
        }
        let key = (pair << 16) | usize::from(p.sport);
        let fl = p.flags;
        let (req, resp) = (u32::from(self.cfg.req_len), u32::from(self.cfg.resp_len));
        let plen = p.payload.1 - p.payload.0;
        let d = f.data();
        if fl.syn() && !fl.ack() {
            // The first SYN names the connection through the client's ISN, which the gateway keeps.
            let v = conn_of_isn(p.seq);
            let (s, g) = self.split(v).ok_or(RewriteError::UnknownFlow)?;
            let Some(s) = self.live(s, g)? else { return Ok(()) };
            let slot = self.slots[s];
            // Under SYN-proxy the gateway opens the real server's side only after the client's ACK.
            let expect = if self.cfg.synproxy { ClientPhase::Requested } else { ClientPhase::SynSent };
            match slot.server {
                ServerPhase::Idle if slot.client == expect => {}
                // A SYN retransmitted by the gateway for a connection we answered: answer again.
                ServerPhase::SynRcvd if usize::from(slot.pair) == pair && slot.lport == p.sport => {}
                _ => return Err(RewriteError::UnknownFlow),
            }
            if plen != 0 {
                return Err(RewriteError::Payload);
            }
            // The client's clock is never shifted; whether timestamps reach us is the gateway's
            // choice (stripped without SYN-proxy by default), checked at the client. A SYN-proxy's
            // SYN carries the TSval of the client's ACK, the segment that made the gateway send it.
            let ts = tcpwire::timestamps_of(&d[p.opts.0..p.opts.1]);
            let cts = client_ts(v).wrapping_add(u32::from(self.cfg.synproxy));
            if ts.is_some_and(|t| t != (cts, 0)) {
                return Err(RewriteError::Sequence);
            }
            let owner = self.lports[key];
            if owner != 0 && owner != s as u32 + 1 {
                // The gateway gave a local port still in use by another live connection.
                return Err(RewriteError::Port);
            }
            self.lports[key] = s as u32 + 1;
            let sl = &mut self.slots[s];
            sl.server = ServerPhase::SynRcvd;
            sl.pair = pair as u16;
            sl.lport = p.sport;
            sl.server_ts_on = ts.is_some();
            self.ok(Side::Server, f.len());
            let o = Opts::syn(ts.map(|(val, _)| (server_ts(v), val)));
            let sa = self.server_seg(
                &p,
                server_isn(v),
                p.seq.wrapping_add(1),
                TcpFlags::SYN | TcpFlags::ACK,
                &o,
                0,
            );
            self.send(Side::Server, Some(f), &sa, 0, pool, tx);
            return Ok(());
        }
        let owner = self.lports[key];
        if owner == 0 {
            return Err(RewriteError::UnknownFlow);
        }
        let s = owner as usize - 1;
        let v = self.conn_number(s);
        let (cisn, sisn, cts) = (client_isn(v), server_isn(v), client_ts(v));
        let slot = self.slots[s];
        if fl.rst() {
            self.stats.rst += 1;
            self.ok(Side::Server, f.len());
            self.finish(s, false);
            return Ok(());
        }
        match slot.server {
            ServerPhase::SynRcvd => {
                if !fl.ack() || fl.syn() || fl.fin() {
                    return Err(RewriteError::Sequence);
                }
                if !slot.toa_seen {
                    // The gateway puts TOA into the first non-SYN segment toward the real server.
                    let got = parse_toa(&d[p.opts.0..p.opts.1]);
                    let want = self.cfg.toa.then(|| self.client_tuple(v));
                    if got != want {
                        return Err(RewriteError::Toa);
                    }
                }
                if p.seq != cisn.wrapping_add(1) || p.ack != sisn.wrapping_add(1) {
                    return Err(RewriteError::Sequence);
                }
                // The TSecr is what SYN-proxy shifts back onto the real server's clock.
                let want = slot.server_ts_on.then(|| (cts.wrapping_add(1), server_ts(v)));
                ts_is(&d[p.opts.0..p.opts.1], want)?;
                if plen == 0 {
                    self.slots[s].toa_seen = true;
                    self.ok(Side::Server, f.len());
                    return Ok(());
                }
                if plen != req as usize || !tcpwire::check_pattern(&d[p.payload.0..p.payload.1], v ^ REQ_SEED)
                {
                    return Err(RewriteError::Payload);
                }
                self.slots[s].toa_seen = true;
                self.slots[s].server = ServerPhase::Responded;
                self.ok(Side::Server, f.len());
                let o =
                    Opts::ts(slot.server_ts_on.then(|| (server_ts(v).wrapping_add(1), cts.wrapping_add(1))));
                let r = self.server_seg(
                    &p,
                    sisn.wrapping_add(1),
                    cisn.wrapping_add(1 + req),
                    TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN,
                    &o,
                    self.cfg.resp_len,
                );
                self.send(Side::Server, Some(f), &r, v ^ RESP_SEED, pool, tx);
            }
            ServerPhase::Responded => {
                if !(fl.fin() && fl.ack()) || fl.syn() {
                    return Err(RewriteError::Sequence);
                }
                if p.seq != cisn.wrapping_add(1 + req) || p.ack != sisn.wrapping_add(2 + resp) {
                    return Err(RewriteError::Sequence);
                }
                let want = slot.server_ts_on.then(|| (cts.wrapping_add(2), server_ts(v).wrapping_add(1)));
                ts_is(&d[p.opts.0..p.opts.1], want)?;
                if plen != 0 {
                    return Err(RewriteError::Payload);
                }
                self.lports[key] = 0;
                self.slots[s].server = ServerPhase::Done;
                self.ok(Side::Server, f.len());
                let o =
                    Opts::ts(slot.server_ts_on.then(|| (server_ts(v).wrapping_add(2), cts.wrapping_add(2))));
                let a = self.server_seg(
                    &p,
                    sisn.wrapping_add(2 + resp),
                    cisn.wrapping_add(2 + req),
                    TcpFlags::ACK,
                    &o,
                    0,
                );
                self.send(Side::Server, Some(f), &a, 0, pool, tx);
            }
            ServerPhase::Idle | ServerPhase::Done => return Err(RewriteError::UnknownFlow),
        }
        Ok(())
    }
}

impl Engine for TcpConnEngine {
    fn generate<P: FramePool>(
        &mut self,
        side: Side,
        now_tsc: u64,
        budget: usize,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> usize {
        if side != Side::Client {
            return 0;
        }
        self.sweep(now_tsc);
        let mut cap = budget.min(self.free.len());
        if self.cfg.max_conns != 0 {
            cap = cap.min(self.cfg.max_conns.saturating_sub(self.stats.started) as usize);
        }
        let n = self.pace.take(now_tsc, cap);
        for i in 0..n {
            let s = *self.free.last().expect("free slots counted in cap") as usize;
            let v = self.conn_number(s);
            let o = Opts::syn(self.cfg.timestamps.then(|| (client_ts(v), 0)));
            let syn = self.client_seg(v, client_isn(v), 0, TcpFlags::SYN, &o, 0);
            if !self.send(Side::Client, None, &syn, 0, pool, tx) {
                self.pace.untake(n - i);
                return i;
            }
            self.free.pop();
            let sl = &mut self.slots[s];
            sl.started = now_tsc;
            sl.client = ClientPhase::SynSent;
            self.stats.started += 1;
        }
        n
    }

    fn receive<P: FramePool>(
        &mut self,
        side: Side,
        f: P::Frame,
        now_tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) {
        let r = match side {
            Side::Client => self.on_client(f, now_tsc, pool, tx),
            Side::Server => self.on_server(f, pool, tx),
        };
        if let Err(e) = r {
            self.counters.error(e);
        }
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::inproc::{InProc, Scenario, Tamper};
    use rvs_dataplane::frame::VecFrame;
    use rvs_dataplane::stats::Event;
    use rvs_dataplane::wire::{Ipv4Packet, TcpPacket};

    fn scenario(synproxy: bool, toa: bool) -> Scenario {
        Scenario { synproxy, toa, lips: 2, reals: 3, max_conns_per_worker: 1 << 14 }
    }

    fn run(s: Scenario, cfg: TcpConfig, tamper: Option<Tamper>) -> InProc<TcpConnEngine> {
        let mut l = InProc::new(&s.setup(), TcpConnEngine::new(cfg).unwrap(), 32);
        l.tamper = tamper;
        let steps = l.run(20_000, TcpConnEngine::done);
        assert!(steps < 20_000, "the run ends: {:?}", l.engine.stats());
        l
    }

    /// Recomputes both checksums, so that a tampered field is the only thing wrong.
    fn refill(f: &mut VecFrame) {
        let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[14..]);
        ip.fill_checksum();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(s, d);
    }

    /// Applies `change` to the first frame on `side` that `pick` selects.
    fn once(side: Side, pick: fn(&Parsed) -> bool, change: fn(&mut VecFrame)) -> Option<Tamper> {
        let mut done = false;
        Some(Box::new(move |s: Side, f: &mut VecFrame| {
            if !done && s == side && tcpwire::parse(f.data()).is_ok_and(|p| pick(&p)) {
                done = true;
                change(f);
            }
        }))
    }

    #[test]
    fn isn_scramble_round_trips() {
        for v in [0u32, 1, 77, 1 << 20, u32::MAX] {
            assert_eq!(conn_of_isn(client_isn(v)), v);
        }
        assert_ne!(client_isn(1), client_isn(2));
    }

    #[test]
    fn every_connection_completes_through_the_gateway() {
        let cases = [(false, false), (false, true), (true, false), (true, true)];
        for ((synproxy, toa), timestamps) in cases.into_iter().flat_map(|c| [(c, true), (c, false)]) {
            let s = scenario(synproxy, toa);
            let n = 3_000;
            let l = run(s, TcpConfig { timestamps, ..s.tcp(64, n) }, None);
            let (st, c) = (l.engine.stats(), l.engine.counters());
            let what = format!("synproxy={synproxy} toa={toa} timestamps={timestamps}: {st:?} {c:?}");
            assert_eq!((st.started, st.completed, st.failed), (n, n, 0), "{what}");
            assert_eq!(c.total_errors(), 0, "{what}");
            assert_eq!(c.completed, n);
            // 4 client segments and 3 server segments per connection, each delivered and checked.
            assert_eq!((c.tx, c.rx_ok), ([4 * n, 3 * n], [3 * n, 4 * n]), "{what}");
            assert_eq!(c.tx_failed, 0);
            let g = &l.stats;
            assert_eq!(g.total_drops(), 0, "{what}: {:?}", g.nonzero());
            assert_eq!(g.accounting_gap(), 0);
            assert_eq!(g.events(Event::ConnsCreated), n);
            assert_eq!(g.events(Event::SynproxyHandshakes), if synproxy { n } else { 0 }, "{what}");
            assert_eq!(g.events(Event::ToaInserted), if toa { n } else { 0 }, "{what}");
            assert_eq!(l.engine.in_flight(), 0);
            // The client, the real servers and the generator's client-side next hop were resolved.
            assert!(l.arp_answered >= 2, "{}", l.arp_answered);
        }
    }

    #[test]
    fn reused_client_tuples_complete_by_the_gateways_reuse_mode() {
        for synproxy in [false, true] {
            let s = scenario(synproxy, false);
            // 64 client tuples, 16 in flight: each tuple comes back every 64 connections, while the
            // gateway still holds it in TIME_WAIT.
            let cfg = TcpConfig { clients: 1, cport_min: 2000, cport_max: 2063, ..s.tcp(16, 640) };
            let l = run(s, cfg, None);
            let st = l.engine.stats();
            assert_eq!((st.completed, st.failed), (640, 0), "synproxy={synproxy}: {st:?}");
            assert_eq!(l.engine.counters().total_errors(), 0);
            assert_eq!(l.stats.events(Event::ConnsReused), 640 - 64, "synproxy={synproxy}");
        }
    }

    #[test]
    fn paced_start_follows_the_rate() {
        let s = scenario(false, false);
        // 2000 connections per second on a 1000 Hz clock: 2 per step (plus the first credit).
        let cfg = TcpConfig { rate: 2_000, ..s.tcp(64, 0) };
        let mut l = InProc::new(&s.setup(), TcpConnEngine::new(cfg).unwrap(), 32);
        for _ in 0..500 {
            l.step();
        }
        let st = *l.engine.stats();
        assert_eq!(st.started, 2 * 499 + 1);
        // Each connection takes a few steps of virtual time at most here.
        assert!(st.completed + 10 >= st.started && st.failed == 0, "{st:?}");
    }

    /// Runs `n` connections with one delivered frame tampered with and checks that exactly that
    /// connection fails, with errors of kind `want` only.
    fn one_bad(s: Scenario, want: RewriteError, t: Option<Tamper>) {
        let n = 200;
        let l = run(s, TcpConfig { timeout_ms: 300, ..s.tcp(8, n) }, t);
        let (st, c) = (l.engine.stats(), l.engine.counters());
        let what = format!("{s:?} {want:?}: {st:?} {:?}", c.errors);
        // One bad segment; its connection may then see more of that kind (a server that never got
        // TOA finds it missing on the next segment too), but never another kind.
        assert!(c.errors[want as usize] >= 1, "{what}");
        assert_eq!(c.total_errors(), c.errors[want as usize], "{what}");
        assert_eq!((st.completed, st.failed, st.timed_out), (n - 1, 1, 1), "{what}");
        assert_eq!(c.completed, n - 1);
    }

    fn is_pure_ack(p: &Parsed) -> bool {
        p.flags == TcpFlags::ACK && p.payload.0 == p.payload.1
    }

    fn is_request(p: &Parsed) -> bool {
        p.payload.1 > p.payload.0
    }

    fn bump_ack(f: &mut VecFrame) {
        let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[34..]);
        let a = t.ack_number();
        t.set_ack_number(a.wrapping_add(1));
        refill(f);
    }

    fn bump_seq(f: &mut VecFrame) {
        let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[34..]);
        let a = t.seq_number();
        t.set_seq_number(a.wrapping_sub(1));
        refill(f);
    }

    #[test]
    fn a_wrong_shift_is_a_sequence_error_at_either_end() {
        for sp in [false, true] {
            // Client -> server: acks are what SYN-proxy shifts into RS space. (The request, not the
            // pure ACK: a real server can do without the latter, so losing it fails nothing.)
            one_bad(scenario(sp, false), RewriteError::Sequence, once(Side::Server, is_request, bump_ack));
            // Server -> client: the response's seq is what SYN-proxy shifts into cookie space.
            one_bad(
                scenario(sp, true),
                RewriteError::Sequence,
                once(Side::Client, |p| p.flags.fin(), bump_seq),
            );
        }
    }

    /// Moves the timestamps option's field at `at` (0: TSval, 4: TSecr) by one.
    fn bump_ts(f: &mut VecFrame, at: usize) {
        let p = tcpwire::parse(f.data()).unwrap();
        let i = (p.opts.0..p.opts.1).find(|&i| f.data()[i] == 8).expect("a timestamps option") + 2 + at;
        let d = f.data_mut();
        let x = u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]).wrapping_add(1);
        d[i..i + 4].copy_from_slice(&x.to_be_bytes());
        refill(f);
    }

    #[test]
    fn a_wrong_timestamp_shift_is_a_sequence_error() {
        // SYN-proxy shifts the client's TSecr onto the real server's clock, and the real server's
        // TSval onto the gateway's.
        let s = scenario(true, false);
        one_bad(s, RewriteError::Sequence, once(Side::Server, is_request, |f| bump_ts(f, 4)));
        one_bad(s, RewriteError::Sequence, once(Side::Client, |p| p.flags.fin(), |f| bump_ts(f, 0)));
    }

    #[test]
    fn wrong_ports_addresses_macs_and_checksums_are_told_apart() {
        let s = scenario(true, false);
        let synack = |p: &Parsed| p.flags.syn();
        one_bad(
            s,
            RewriteError::Port,
            once(Side::Client, synack, |f| {
                TcpPacket::new_unchecked(&mut f.data_mut()[34..]).set_src_port(81);
                refill(f);
            }),
        );
        one_bad(
            s,
            RewriteError::Port,
            once(Side::Server, synack, |f| {
                TcpPacket::new_unchecked(&mut f.data_mut()[34..]).set_dst_port(8080);
                refill(f);
            }),
        );
        one_bad(
            s,
            RewriteError::Address,
            once(Side::Server, is_request, |f| {
                Ipv4Packet::new_unchecked(&mut f.data_mut()[14..])
                    .set_src_addr(Ipv4Addr::new(198, 18, 1, 99));
                refill(f);
            }),
        );
        one_bad(s, RewriteError::Mac, once(Side::Client, synack, |f| f.data_mut()[5] ^= 0x40));
        one_bad(
            s,
            RewriteError::L4Checksum,
            once(Side::Client, |p| p.flags.fin(), |f| f.data_mut()[60] ^= 1),
        );
        one_bad(s, RewriteError::IpChecksum, once(Side::Server, synack, |f| f.data_mut()[22] ^= 1));
        one_bad(
            s,
            RewriteError::Payload,
            once(Side::Server, is_request, |f| {
                let n = f.len();
                f.data_mut()[n - 1] ^= 0x80;
                refill(f);
            }),
        );
    }

    #[test]
    fn a_wrong_or_missing_toa_is_a_toa_error() {
        // The TOA option's last address byte changed.
        let wrong = |f: &mut VecFrame| {
            let p = tcpwire::parse(f.data()).unwrap();
            let at = (p.opts.0..p.opts.1).find(|&i| f.data()[i] == 254).expect("a TOA option");
            f.data_mut()[at + 7] ^= 1;
            refill(f);
        };
        one_bad(scenario(false, true), RewriteError::Toa, once(Side::Server, is_pure_ack, wrong));
        one_bad(scenario(true, true), RewriteError::Toa, once(Side::Server, is_pure_ack, wrong));
        // A TOA service whose gateway did not insert it: the engine configured for TOA, the
        // gateway not.
        let s = scenario(false, false);
        let mut l =
            InProc::new(&s.setup(), TcpConnEngine::new(TcpConfig { toa: true, ..s.tcp(4, 4) }).unwrap(), 8);
        l.run(100, |e| e.counters().total_errors() > 0);
        assert!(l.engine.counters().errors[RewriteError::Toa as usize] > 0);
        assert_eq!(l.engine.stats().completed, 0);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let s = scenario(false, false);
        let e = |c: TcpConfig| TcpConnEngine::new(c).unwrap_err();
        assert!(e(TcpConfig { window: 0, ..s.tcp(1, 1) }).starts_with("window 0"));
        assert!(e(TcpConfig { lips: vec![], ..s.tcp(1, 1) }).starts_with("lips"));
        assert!(e(TcpConfig { cport_min: 5, cport_max: 4, ..s.tcp(1, 1) }).starts_with("client ports"));
        assert!(e(TcpConfig { req_len: 0, ..s.tcp(1, 1) }).starts_with("req_len"));
        assert!(
            e(TcpConfig { clients: 1, cport_min: 1, cport_max: 2, ..s.tcp(3, 1) }).starts_with("window 3")
        );
    }
}
