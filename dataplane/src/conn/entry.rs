//! One connection's entry: both of its tuples, its real server, timers, LVS state and the
//! SYN-proxy shift, on one cache line (IPv4; two for IPv6).
//!
//! Invariants:
//! - Fields are visible to the table (`pub(super)`) and nowhere else, so its invariants (index
//!   refs, timer links, state) cannot be broken through [`super::ConnTable::get_mut`].
//! - Both tuples are stored packed the way the hash reads a key ([`key_words`]), so a lookup
//!   compares the tuple of a ref's direction without branching on it.
use std::net::Ipv4Addr;

use super::state::{Dir, TcpState};
use super::wheel::{self, tick_of, NIL};
use crate::flow::{Addr, FlowKey, Millis, Proto};
use crate::xmit::Xlat;

/// What a new connection is made of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NewConn<A: Addr = Ipv4Addr> {
    /// The client tuple as received: `client:cport -> VIP:vport`.
    pub client: FlowKey<A>,
    /// Local (FULLNAT source) address and port towards the real server; FULLNAT only, ignored
    /// in the other modes.
    pub lip: A,
    pub lport: u16,
    /// Real server address and port (DR and TUN cannot change the port: `rport` is the VIP's).
    pub rs: A,
    pub rport: u16,
    /// Caller's service and real-server handles, stored verbatim.
    pub service: u32,
    pub real: u32,
    /// The forwarding mode: decides the reply tuple.
    pub xlat: Xlat,
}

impl<A: Addr> NewConn<A> {
    /// The reply tuple as it will be received, by mode:
    /// - FULLNAT: `RS:rport -> LIP:lport`;
    /// - NAT: `RS:rport -> client:cport`;
    /// - DR and TUN: replies bypass the gateway, so the tuple indexed is `VIP:vport ->
    ///   client:cport` (the client's tuple reversed, unique as the client's is); a reply the real
    ///   server routes through the gateway anyway matches it and is routed unchanged.
    pub fn reply_key(&self) -> FlowKey<A> {
        let c = &self.client;
        match self.xlat {
            Xlat::FullNat => {
                FlowKey { proto: c.proto, src: self.rs, dst: self.lip, sport: self.rport, dport: self.lport }
            }
            Xlat::Nat => {
                FlowKey { proto: c.proto, src: self.rs, dst: c.src, sport: self.rport, dport: c.sport }
            }
            Xlat::Dr | Xlat::Tun => c.reversed(),
        }
    }
}

pub(super) const F_LIVE: u8 = 1 << 0;
pub(super) const F_ACTIVE: u8 = 1 << 1;
/// The client-address insertion is done: TOA's option (toa services), or the PROXY header's
/// first send (proxy_protocol services). A service has at most one of the two.
pub(super) const F_TOA_DONE: u8 = 1 << 2;
/// `pp`: the PROXY header's length (0: none) in the low bits; the real server acknowledged it.
const PP_ACKED: u8 = 0x80;
/// SYN-proxied: sequence numbers (and timestamps with F_TS_SHIFT) are shifted for its lifetime.
pub(super) const F_SYNPROXY: u8 = 1 << 3;
/// SYN-proxied and still waiting for the real server's SYN-ACK.
pub(super) const F_SP_PENDING: u8 = 1 << 4;
/// `ts_delta` is in use.
pub(super) const F_TS_SHIFT: u8 = 1 << 5;
/// The two top bits hold the [`Xlat`].
pub(super) const XLAT_SHIFT: u8 = 6;

/// One tracked connection (64 bytes with padding: exactly a cache line, see `Entry`). Fields are private
/// so the table's invariants (index refs, timer links, state) cannot be broken through
/// [`ConnTable::get_mut`].
#[derive(Clone, Copy, Debug)]
pub struct Conn<A: Addr = Ipv4Addr> {
    /// Both tuples as received, packed the way the hash reads a key ([`key_words`]): index 0 is the
    /// client tuple (`client:cport -> VIP:vport`), index 1 the reply tuple (`RS:rport -> LIP:lport`),
    /// so a lookup compares the tuple of a ref's direction without branching on it.
    /// `addrs[d] = src << 32 | dst`, `ports[d] = sport << 16 | dport`.
    pub(super) addrs: [A::Pair; 2],
    pub(super) ports: [u32; 2],
    pub(super) service: u32,
    pub(super) real: u32,
    /// The real server's address: for DR and TUN, whose reply tuple does not name it.
    pub(super) dest: A,
    /// Expiry deadline in wheel ticks (wrapping).
    pub(super) deadline: u32,
    pub(super) seq_delta: u32,
    /// SYN-proxy timestamp shift (valid with F_TS_SHIFT).
    pub(super) ts_delta: u32,
    /// PROXY protocol: the client's first sequence number after its SYN, where the header goes.
    pub(super) pp_start: u32,
    /// Timer list links; `next` doubles as the free-list link for free slots.
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) proto: Proto,
    /// `TcpState` as u8; always `None` for UDP.
    pub(super) state: u8,
    pub(super) flags: u8,
    /// PROXY protocol: header length and whether the real server acknowledged it (`PP_ACKED`).
    pub(super) pp: u8,
}

impl<A: Addr> Conn<A> {
    pub(super) const FREE: Conn<A> = Conn {
        addrs: [A::PAIR_ZERO; 2],
        ports: [0; 2],
        service: 0,
        real: 0,
        dest: A::UNSPECIFIED,
        deadline: 0,
        seq_delta: 0,
        ts_delta: 0,
        pp_start: 0,
        prev: NIL,
        next: NIL,
        proto: Proto::Tcp,
        state: 0,
        flags: 0,
        pp: 0,
    };

    pub(super) fn is_live(&self) -> bool {
        self.flags & F_LIVE != 0
    }

    /// Whether the tuple of direction `d` (0 = Original, 1 = Reply) is the key packed as `words`.
    #[inline(always)]
    pub(super) fn has_key(&self, d: usize, (a, b): (A::Pair, u64)) -> bool {
        self.addrs[d] == a && ((self.proto.number() as u64) << 32 | self.ports[d] as u64) == b
    }

    fn addr(&self, d: usize, dst: bool) -> (A, u16) {
        if dst {
            (A::pair_dst(self.addrs[d]), self.ports[d] as u16)
        } else {
            (A::pair_src(self.addrs[d]), (self.ports[d] >> 16) as u16)
        }
    }

    fn unpack(&self, d: usize) -> FlowKey<A> {
        let ((src, sport), (dst, dport)) = (self.addr(d, false), self.addr(d, true));
        FlowKey { proto: self.proto, src, dst, sport, dport }
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }
    /// Client tuple as received from the client: `client:cport -> VIP:vport`.
    pub fn client_key(&self) -> FlowKey<A> {
        self.unpack(0)
    }
    /// Reply tuple as received (see [`NewConn::reply_key`] for each mode).
    pub fn reply_key(&self) -> FlowKey<A> {
        self.unpack(1)
    }
    /// The tuple as received in direction `dir`.
    pub fn key(&self, dir: Dir) -> FlowKey<A> {
        match dir {
            Dir::Original => self.client_key(),
            Dir::Reply => self.reply_key(),
        }
    }
    pub fn client_addr(&self) -> (A, u16) {
        self.addr(0, false)
    }
    pub fn vip(&self) -> (A, u16) {
        self.addr(0, true)
    }
    /// The forwarding mode.
    #[inline]
    pub fn xlat(&self) -> Xlat {
        Xlat::from_bits(self.flags >> XLAT_SHIFT)
    }
    /// The local address and port (FULLNAT only).
    pub fn lip(&self) -> (A, u16) {
        self.addr(1, true)
    }
    /// The real server's address and port.
    pub fn rs(&self) -> (A, u16) {
        match self.xlat() {
            Xlat::FullNat | Xlat::Nat => self.addr(1, false),
            Xlat::Dr | Xlat::Tun => (self.dest, self.addr(0, true).1),
        }
    }
    pub fn service(&self) -> u32 {
        self.service
    }
    pub fn real(&self) -> u32 {
        self.real
    }
    /// LVS TCP state; `TcpState::None` for UDP.
    pub fn state(&self) -> TcpState {
        TcpState::from_u8(self.state)
    }
    /// Whether the caller should currently have this connection in its real's active count
    /// (ESTABLISHED); otherwise it is in the inactive count. Starts `false`.
    pub fn is_counted_active(&self) -> bool {
        self.flags & F_ACTIVE != 0
    }
    pub fn toa_done(&self) -> bool {
        self.flags & F_TOA_DONE != 0
    }
    pub fn set_toa_done(&mut self, done: bool) {
        if done {
            self.flags |= F_TOA_DONE;
        } else {
            self.flags &= !F_TOA_DONE;
        }
    }
    /// PROXY protocol: the header's length (0 when the service sends none). Every client sequence
    /// number from [`Conn::pp_start`] on is this much higher on the real server's side.
    #[inline]
    pub fn pp_len(&self) -> u32 {
        u32::from(self.pp & !PP_ACKED)
    }
    /// The client's first sequence number after its SYN: where the header is inserted.
    #[inline]
    pub fn pp_start(&self) -> u32 {
        self.pp_start
    }
    /// Whether the real server acknowledged the whole header.
    #[inline]
    pub fn pp_acked(&self) -> bool {
        self.pp & PP_ACKED != 0
    }
    /// Sets the header's length (at most 127) and where it goes.
    pub fn set_pp(&mut self, len: u8, start: u32) {
        debug_assert!(len & PP_ACKED == 0);
        self.pp = len & !PP_ACKED;
        self.pp_start = start;
    }
    pub fn set_pp_acked(&mut self) {
        self.pp |= PP_ACKED;
    }
    /// Sequence delta slot for SYN-proxy; the table never interprets it.
    pub fn seq_delta(&self) -> u32 {
        self.seq_delta
    }
    pub fn set_seq_delta(&mut self, delta: u32) {
        self.seq_delta = delta;
    }
    /// The SYN-proxy shift, when this connection is proxied and its real server has answered.
    pub fn seq_shift(&self) -> Option<(u32, Option<u32>)> {
        (self.flags & (F_SYNPROXY | F_SP_PENDING) == F_SYNPROXY)
            .then_some((self.seq_delta, (self.flags & F_TS_SHIFT != 0).then_some(self.ts_delta)))
    }
    /// Marks a SYN-proxied connection waiting for its real server; `cookie_isn` is kept until then.
    pub fn set_synproxy_pending(&mut self, cookie_isn: u32) {
        self.flags |= F_SYNPROXY | F_SP_PENDING;
        self.seq_delta = cookie_isn;
    }
    pub fn synproxy_pending(&self) -> bool {
        self.flags & F_SP_PENDING != 0
    }
    /// The cookie ISN of a pending SYN-proxied connection.
    pub fn cookie_isn(&self) -> u32 {
        self.seq_delta
    }
    /// The real server answered: shift from now on.
    pub fn set_synproxy_established(&mut self, delta: u32, ts_delta: Option<u32>) {
        self.flags &= !F_SP_PENDING;
        self.seq_delta = delta;
        match ts_delta {
            Some(d) => {
                self.flags |= F_TS_SHIFT;
                self.ts_delta = d;
            }
            None => self.flags &= !F_TS_SHIFT,
        }
    }
    /// Milliseconds until the connection becomes eligible for expiry (0 if already due).
    pub fn expires_in(&self, now: Millis) -> Millis {
        let ticks = self.deadline.wrapping_sub(tick_of(now)) as i32 as i64;
        (ticks * wheel::TICK_MS as i64 - (now % wheel::TICK_MS) as i64).max(0) as Millis
    }
}

/// A table entry: one connection on a cache line of its own, so a lookup hit touches one line for it
/// (a bare `Conn` array would need the alignment too).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<A: Addr = Ipv4Addr> {
    pub(super) conn: Conn<A>,
}

/// The key's 13 meaningful bytes as two words: what the hash mixes and what [`Conn`] stores.
#[inline(always)]
pub(super) fn key_words<A: Addr>(k: &FlowKey<A>) -> (A::Pair, u64) {
    let a = A::pair(k.src, k.dst);
    let b = (k.proto.number() as u64) << 32 | port_word(k) as u64;
    (a, b)
}

#[inline(always)]
pub(super) fn port_word<A: Addr>(k: &FlowKey<A>) -> u32 {
    (k.sport as u32) << 16 | k.dport as u32
}
