//! One worker's packet path: the `process`/`poll` entry points the daemon, the tests, the fuzzers
//! and the benchmarks all drive.
//!
//! Invariants:
//! - A `Worker` is owned by exactly one thread and shares nothing mutable: its connection table,
//!   neighbour table, scheduler state and persistence templates are its own.
//! - `process` consumes every frame it is given: it is either queued for transmit in the [`Outbox`],
//!   held by the neighbour table awaiting ARP (bounded), or dropped with exactly one
//!   [`DropReason`] counted.
//! - No allocation per packet: frames are reused in place (ARP and echo replies, NAT rewrites);
//!   only ARP requests take a fresh frame from the pool.
//! - Packets are only ever sent to the gateway's own neighbours, resolved by ARP on the port the
//!   routing table chooses.
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::conn::{alloc_lport, owner, ConnId, ConnTable, Dir, InsertError, NewConn, TcpState};
use crate::flow::{FlowKey, Millis, Proto};
use crate::frame::{Frame, FramePool};
use crate::handoff::{Handoff, HandoffKind};
use crate::neigh::{Neighbours, Resolved};
use crate::route::Routes;
use crate::sched::Persistence;
use crate::service::{Counters, Services};
use crate::stats::{DropReason as D, Event as E, Gauge, Stats};
use crate::synproxy::half_open::{due_buf, HalfOpen, Pending};
use crate::synproxy::{self, CookieError, CookieSecrets, SynAckConfig, SYNACK_MAX_LEN};
use crate::wire::{
    self, arp, icmp, ipv4, toa, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, IcmpPacket,
    Ipv4Packet, TcpFlags, TcpOption, TcpPacket, UdpPacket,
};
use hashbrown::HashSet;

pub use crate::setup::{ConnSetup, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, SynproxySetup};

const ETH: usize = wire::ethernet::HEADER_LEN;
/// Candidate local ports tried per local address before moving to the next one.
const LPORT_TRIES: usize = 64;
/// Persistence template slots swept per millisecond at most.
const PERSIST_EXPIRE_BUDGET: usize = 1024;
/// Least time between two publications of a worker's gauges.
const GAUGE_MS: Millis = 10;
/// TTL of packets the gateway originates (echo replies, RSTs).
const OWN_TTL: u8 = 64;

/// Frames to transmit, per port, and frames to hand to other workers, per worker, collected over
/// one burst. Bounded: past its capacity a frame is dropped and counted instead of growing the
/// vector.
#[derive(Debug)]
pub struct Outbox<F> {
    ports: Vec<Vec<F>>,
    /// Per destination worker: frames with their [`Handoff`] tag. Empty for a single worker.
    workers: Vec<Vec<(F, u32)>>,
    cap: usize,
}

impl<F> Outbox<F> {
    /// An outbox for one worker alone (no hand-off lanes).
    pub fn new(nports: usize, cap: usize) -> Outbox<F> {
        Outbox::with_workers(nports, 0, cap)
    }

    /// An outbox with a hand-off lane to each of `workers` workers (its own lane stays unused).
    pub fn with_workers(nports: usize, workers: usize, cap: usize) -> Outbox<F> {
        Outbox {
            ports: (0..nports).map(|_| Vec::with_capacity(cap)).collect(),
            workers: (0..workers).map(|_| Vec::with_capacity(cap)).collect(),
            cap,
        }
    }

    /// Frames for worker `w`, each with the tag to pass to its `Worker::process_handoff`.
    pub fn handoff(&mut self, w: usize) -> &mut Vec<(F, u32)> {
        &mut self.workers[w]
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The frames queued for `port`; the daemon drains it into the TX queue.
    pub fn port(&mut self, port: usize) -> &mut Vec<F> {
        &mut self.ports[port]
    }

    pub fn is_empty(&self) -> bool {
        self.ports.iter().all(Vec::is_empty) && self.workers.iter().all(Vec::is_empty)
    }
}

#[inline]
fn hand_to<F: Frame>(stats: &Stats, out: &mut Outbox<F>, worker: u16, f: F, h: Handoff) {
    if let Some(q) = lane_with_room(stats, out.workers.get_mut(worker as usize), out.cap) {
        stats.inc(E::HandoffOut);
        q.push((f, h.encode()));
    }
}

/// The lane `q` if it exists and has room under `cap`; otherwise the frame is dropped and counted.
#[inline]
fn lane_with_room<'a, T>(stats: &Stats, q: Option<&'a mut Vec<T>>, cap: usize) -> Option<&'a mut Vec<T>> {
    match q {
        Some(q) if q.len() < cap => Some(q),
        _ => {
            stats.dropped(D::OutboxFull);
            None
        }
    }
}

#[inline]
fn emit<F: Frame>(stats: &Stats, out: &mut Outbox<F>, port: usize, f: F) {
    if let Some(q) = lane_with_room(stats, out.ports.get_mut(port), out.cap) {
        stats.inc(E::TxPackets);
        stats.add(E::TxBytes, f.len() as u64);
        q.push(f);
    }
}

#[inline]
fn set_eth_dst<F: Frame>(f: &mut F, mac: EthernetAddress) {
    f.data_mut()[0..6].copy_from_slice(&mac.0);
}

/// Turns a received frame around on its port: the sender's MAC becomes the destination.
#[inline]
fn reply_macs<F: Frame>(f: &mut F, our_mac: EthernetAddress) {
    let d = f.data_mut();
    let mut peer = [0u8; 6];
    peer.copy_from_slice(&d[6..12]);
    d[0..6].copy_from_slice(&peer);
    d[6..12].copy_from_slice(&our_mac.0);
}

/// A TCP segment the gateway originates (SYN-proxy's SYN to a real server, its RST to a client),
/// in a fresh frame with EtherType IPv4; `send_ip` fills in the MACs.
fn build_tcp<P: FramePool>(
    pool: &mut P,
    flow: &FlowKey,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    opts: &[u8],
) -> Option<P::Frame> {
    let tcp_len = wire::tcp::HEADER_LEN + opts.len();
    let mut f = pool.alloc()?;
    if !f.append(ETH + ipv4::HEADER_LEN + tcp_len) {
        return None;
    }
    let d = f.data_mut();
    d[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    let ip = ipv4::Repr {
        src: flow.src,
        dst: flow.dst,
        protocol: ipv4::PROTO_TCP,
        payload_len: tcp_len as u16,
        ttl: OWN_TTL,
        ident: 0,
        dont_frag: true,
    };
    ip.emit(&mut d[ETH..]).ok()?;
    let seg = &mut d[ETH + ipv4::HEADER_LEN..ETH + ipv4::HEADER_LEN + tcp_len];
    seg.fill(0);
    let mut t = TcpPacket::new_unchecked(seg);
    t.set_src_port(flow.sport);
    t.set_dst_port(flow.dport);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_header_len_raw(tcp_len);
    t.set_flags(flags);
    t.set_window_len(window);
    t.options_mut().copy_from_slice(opts);
    t.fill_checksum(flow.src, flow.dst);
    Some(f)
}

#[derive(Debug, Clone, Copy)]
struct PortRt {
    mac: EthernetAddress,
    addr: Ipv4Addr,
    mask: u32,
    mtu: u16,
}

impl PortRt {
    fn holds(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask == u32::from(self.addr) & self.mask
    }

    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask)
    }
}

/// An ARP request for `ip` from `port`, in a fresh frame.
fn arp_request<P: FramePool>(pool: &mut P, port: &PortRt, ip: Ipv4Addr) -> Option<P::Frame> {
    let mut f = pool.alloc()?;
    if !f.append(ETH + arp::PACKET_LEN) {
        return None;
    }
    let d = f.data_mut();
    d[0..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
    d[6..12].copy_from_slice(&port.mac.0);
    d[12..14].copy_from_slice(&u16::from(EtherType::Arp).to_be_bytes());
    let req = ArpRepr {
        operation: ArpOperation::Request,
        sender_hw_addr: port.mac,
        sender_proto_addr: port.addr,
        target_hw_addr: EthernetAddress([0; 6]),
        target_proto_addr: ip,
    };
    req.emit(&mut d[ETH..]).ok()?;
    Some(f)
}

/// TCP flag combinations no legitimate stack sends: SYN+FIN, SYN+RST, nothing at all, or anything
/// but a bare SYN or RST without ACK.
#[inline]
fn tcp_flags_valid(f: TcpFlags) -> bool {
    let core = f.bits()
        & (TcpFlags::SYN.bits() | TcpFlags::RST.bits() | TcpFlags::FIN.bits() | TcpFlags::ACK.bits());
    if f.syn() && (f.fin() || f.rst()) {
        return false;
    }
    if f.ack() {
        return true;
    }
    core == TcpFlags::SYN.bits() || core == TcpFlags::RST.bits()
}

#[inline]
fn bad_source(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback()
}

/// One real server's state on one worker, as reported to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealCounts {
    pub service: u32,
    pub real: u32,
    pub active: u32,
    pub inactive: u32,
    pub counters: Counters,
}

/// One connection as reported to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnView {
    pub proto: Proto,
    pub client: (Ipv4Addr, u16),
    pub vip: (Ipv4Addr, u16),
    pub lip: (Ipv4Addr, u16),
    pub rs: (Ipv4Addr, u16),
    pub state: &'static str,
    pub expires_ms: Millis,
    pub service: u32,
}

/// One worker.
pub struct Worker<P: FramePool> {
    index: u16,
    /// Workers sharing the ports (owners of local-port slices).
    workers: u16,
    /// Set while a frame handed over by another worker is processed: it came to its owner, or is on
    /// a chain (see [`crate::handoff`]), so it is never handed on by ownership again.
    via: Option<Handoff>,
    ports: Vec<PortRt>,
    routes: Routes,
    services: Services,
    conns: ConnTable,
    neigh: Neighbours<P::Frame>,
    persist: Persistence,
    pool: P,
    stats: Arc<Stats>,
    strip_ts: bool,
    rst_on_miss: bool,
    expire_budget: usize,
    arp_queue: usize,
    expire_on_real_removed: bool,
    draining: bool,
    sp: SynproxySetup,
    sp_secrets: CookieSecrets,
    /// The key the current secret was made from, and when to derive the next one.
    sp_key: [u8; 16],
    sp_rotate_at: Millis,
    half_open: HalfOpen<P::Frame>,
    /// Scratch space for releasing a connection's held packets (capacity `max_held`, reused).
    sp_scratch: Vec<P::Frame>,
    /// When the gauges are next published.
    gauges_at: Millis,
    /// The millisecond of the last housekeeping (neighbour walk, persistence sweep).
    housekeeping_at: Millis,
}

impl<P: FramePool> std::fmt::Debug for Worker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("conns", &self.conns.len())
            .field("neighbours", &self.neigh.len())
            .finish_non_exhaustive()
    }
}

/// The connection table's hash seed for worker `index`: secret, or clients could choose tuples that
/// share a probe sequence (hash flooding). Derived from the daemon's random SYN-cookie secret rather
/// than plumbed separately: SipHash (std's `DefaultHasher`) over a domain label, the secret and the
/// worker index, so each worker's seed differs and none of them reveals the secret.
pub(crate) fn conn_seed(setup: &Setup, index: u16) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (b"rvs conn table seed", setup.conn.synproxy.key, index).hash(&mut h);
    h.finish()
}

impl<P: FramePool> Worker<P> {
    /// Builds worker `index`'s private tables (this allocates; it runs before the loop starts).
    pub fn new(setup: &Setup, index: u16, pool: P, stats: Arc<Stats>) -> Worker<P> {
        let c = &setup.conn;
        let ports = setup
            .ports
            .iter()
            .map(|p| PortRt {
                mac: p.mac,
                addr: p.addr,
                mask: if p.prefix_len == 0 { 0 } else { u32::MAX << (32 - p.prefix_len as u32) },
                mtu: p.mtu,
            })
            .collect();
        let conns = ConnTable::with_seed(c.max_per_worker as usize, c.timeouts, 0, conn_seed(setup, index));
        stats.set(Gauge::ConnCapacity, conns.capacity() as u64);
        stats.set(Gauge::BytesPerConn, conns.memory_per_conn() as u64);
        Worker {
            index,
            workers: setup.workers.max(1),
            via: None,
            ports,
            routes: Routes::new(&setup.ports, &setup.routes),
            services: Services::new(setup, index),
            conns,
            neigh: Neighbours::new(c.max_neighbours as usize, c.arp_queue as usize, c.neigh_timeout_ms),
            persist: Persistence::with_capacity(c.persist_templates.max(1) as usize),
            pool,
            stats,
            strip_ts: c.strip_timestamps,
            rst_on_miss: c.rst_on_miss,
            expire_budget: c.expire_budget.max(1) as usize,
            arp_queue: c.arp_queue as usize,
            expire_on_real_removed: c.expire_on_real_removed,
            draining: false,
            sp: c.synproxy,
            sp_secrets: CookieSecrets::with_period(c.synproxy.key, c.synproxy.period_ms.max(1)),
            sp_key: c.synproxy.key,
            sp_rotate_at: 2 * c.synproxy.period_ms.max(1),
            half_open: HalfOpen::new(c.synproxy.max_half_open as usize, c.synproxy.max_held as usize),
            sp_scratch: Vec::with_capacity(c.synproxy.max_held as usize),
            gauges_at: 0,
            housekeeping_at: Millis::MAX,
        }
    }

    /// Client packets held by SYN-proxy until real servers answer.
    pub fn synproxy_held(&self) -> usize {
        self.half_open.held()
    }

    /// Graceful drain: from now on new connections are refused (TCP with a RST, UDP dropped and
    /// counted) while established ones keep being forwarded.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    /// Adopts a new service configuration between bursts. Connections keep their real server
    /// (they refer to it by id); per-real counts and counters carry over for the ids that remain.
    /// Templates of removed reals are forgotten, and with `expire_on_real_removed` their
    /// connections are dropped at once. Ports and routes are fixed for the daemon's lifetime.
    pub fn apply(&mut self, setup: &Setup) {
        let mut removed: HashSet<(u32, u32)> = HashSet::new();
        for old in &self.services.list {
            let new = setup.services.iter().find(|s| s.id == old.id);
            for r in &old.reals {
                if !new.is_some_and(|n| n.reals.iter().any(|x| x.id == r.id)) {
                    removed.insert((old.id, r.id));
                }
            }
            if new.is_none() {
                self.persist.forget_service(old.id);
            }
        }
        for (s, r) in &removed {
            self.persist.forget_real(*s, *r);
        }
        let old = std::mem::take(&mut self.services);
        self.services = Services::rebuild(old, setup, self.index);
        self.expire_on_real_removed = setup.conn.expire_on_real_removed;
        if self.expire_on_real_removed && !removed.is_empty() {
            let doomed: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| removed.contains(&(c.service(), c.real())))
                .map(|(id, _)| id)
                .collect();
            for id in doomed {
                self.drop_conn(id);
            }
            self.stats.set(Gauge::Conns, self.conns.len() as u64);
        }
    }

    /// Per-real connection counts and counters of this worker, for the control plane.
    pub fn real_counts(&self) -> Vec<RealCounts> {
        let mut v = Vec::new();
        for s in &self.services.list {
            for (i, r) in s.reals.iter().enumerate() {
                v.push(RealCounts {
                    service: s.id,
                    real: r.id,
                    active: s.views[i].active,
                    inactive: s.views[i].inactive,
                    counters: s.counters[i],
                });
            }
        }
        v
    }

    /// Zeroes traffic counters of one service (by id) or of all.
    pub fn zero(&mut self, service: Option<u32>) {
        for s in &mut self.services.list {
            if service.is_none_or(|id| id == s.id) {
                s.counters.iter_mut().for_each(|c| *c = Counters::default());
            }
        }
    }

    /// A page of this worker's connections, optionally of one service (by id), and how many match.
    /// O(table capacity): control plane only.
    pub fn conns_page(
        &self,
        service: Option<u32>,
        offset: u64,
        limit: u64,
        now: Millis,
    ) -> (u64, Vec<ConnView>) {
        let mut total = 0u64;
        let mut v = Vec::new();
        for (_, c) in self.conns.iter() {
            if service.is_some_and(|id| id != c.service()) {
                continue;
            }
            if total >= offset && (v.len() as u64) < limit {
                let k = c.client_key();
                v.push(ConnView {
                    proto: c.proto(),
                    client: (k.src, k.sport),
                    vip: c.vip(),
                    lip: c.lip(),
                    rs: c.rs(),
                    state: if c.proto() == Proto::Udp { "UDP" } else { c.state().name() },
                    expires_ms: c.expires_in(now),
                    service: c.service(),
                });
            }
            total += 1;
        }
        (total, v)
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// How many frames one burst may queue per port: a burst of forwards plus a neighbour's release.
    pub fn outbox_capacity(&self, burst: usize) -> usize {
        2 * burst + self.arp_queue + 16
    }

    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Frames held awaiting ARP resolution.
    pub fn neigh_held(&self) -> usize {
        self.neigh.held()
    }

    #[inline]
    fn discard(&self, f: P::Frame, r: D) {
        self.stats.dropped(r);
        drop(f);
    }

    fn port_addr(&self, a: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| p.addr == a)
    }

    /// Addresses the gateway answers ARP for: port addresses, VIPs and local addresses.
    fn owns(&self, a: Ipv4Addr) -> bool {
        self.port_addr(a) || self.services.is_vip(a) || self.services.is_lip(a)
    }

    /// Handles one received frame from `in_port`.
    pub fn process(&mut self, f: P::Frame, in_port: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        self.stats.inc(E::RxPackets);
        self.stats.add(E::RxBytes, f.len() as u64);
        self.dispatch(f, in_port, now, out);
    }

    /// Handles a burst of frames received on `in_port`, draining `burst`. Same verdicts and
    /// counters as calling [`Self::process`] on each frame in order.
    pub fn process_burst(
        &mut self,
        burst: &mut Vec<P::Frame>,
        in_port: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        for f in burst.drain(..) {
            self.process(f, in_port, now, out);
        }
    }

    /// Handles a frame another worker handed over with `tag` (see [`crate::handoff`]).
    pub fn process_handoff(&mut self, f: P::Frame, tag: u32, now: Millis, out: &mut Outbox<P::Frame>) {
        self.stats.inc(E::HandoffIn);
        let Some(h) = Handoff::decode(tag) else {
            return self.discard(f, D::HandoffBadTag);
        };
        self.via = Some(h);
        self.dispatch(f, h.in_port as usize, now, out);
        self.via = None;
    }

    /// Hands `f` on along the chain of `kind` started at this frame's origin; false when every
    /// worker has seen it (the caller then decides its fate).
    fn pass_on(
        &mut self,
        f: P::Frame,
        kind: HandoffKind,
        in_port: usize,
        learned: bool,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        let origin = self.via.map_or(self.index, |h| h.origin as u16);
        match Handoff::next_in_chain(origin, self.index, self.workers) {
            Some(next) => {
                let h = Handoff { kind, in_port: in_port as u8, origin: origin as u8, learned };
                hand_to(&self.stats, out, next, f, h);
                Ok(())
            }
            None => Err(f),
        }
    }

    /// Hands `f` to the worker owning local port `lport`, unless that is this one (or the frame was
    /// handed over already).
    fn hand_to_owner(
        &mut self,
        f: P::Frame,
        lport: u16,
        in_port: usize,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        if self.workers <= 1 || self.via.is_some() {
            return Err(f);
        }
        let o = owner(lport, self.workers);
        if o == self.index {
            return Err(f);
        }
        let h = Handoff {
            kind: HandoffKind::Owner,
            in_port: in_port as u8,
            origin: self.index as u8,
            learned: false,
        };
        hand_to(&self.stats, out, o, f, h);
        Ok(())
    }

    fn dispatch(&mut self, f: P::Frame, in_port: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(port) = self.ports.get(in_port).copied() else {
            return self.discard(f, D::NotOurMac);
        };
        let l2 = match wire::ethernet::parse_l2(f.data()) {
            Ok(l) => l,
            Err(_) => return self.discard(f, D::EthTruncated),
        };
        if l2.vlan.is_some() {
            return self.discard(f, D::Vlan);
        }
        let d = f.data();
        let dst = EthernetAddress([d[0], d[1], d[2], d[3], d[4], d[5]]);
        if dst != port.mac && !dst.is_broadcast() {
            return self.discard(f, D::NotOurMac);
        }
        match l2.ethertype {
            EtherType::Arp => self.arp(f, in_port, now, out),
            EtherType::Ipv4 => self.ipv4(f, in_port, now, out),
            _ => self.discard(f, D::EtherType),
        }
    }

    fn arp(&mut self, mut f: P::Frame, in_port: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        let (op, sha, spa, tpa) = match ArpPacket::new_checked(&f.data()[ETH..]) {
            Ok(p) => (p.operation(), p.sender_hw_addr(), p.sender_proto_addr(), p.target_proto_addr()),
            Err(_) => return self.discard(f, D::ArpMalformed),
        };
        let port = self.ports[in_port];
        // Only a unicast neighbour on this port's subnet, never claiming one of our addresses, is learned.
        let sender_ok = sha.is_unicast() && !spa.is_unspecified() && port.holds(spa) && !self.owns(spa);
        let stats = &*self.stats;
        let release = |mut fr: P::Frame, mac: EthernetAddress, p: usize| {
            set_eth_dst(&mut fr, mac);
            emit(stats, out, p, fr);
        };
        match op {
            ArpOperation::Request => {
                if !self.owns(tpa) {
                    return self.discard(f, D::ArpNotOurs);
                }
                if sender_ok {
                    self.neigh.learn(spa, in_port, sha, now, true, release);
                }
                let d = f.data_mut();
                ArpPacket::new_unchecked(&mut d[ETH..]).make_reply_in_place(port.mac);
                d[0..6].copy_from_slice(&sha.0);
                d[6..12].copy_from_slice(&port.mac.0);
                self.stats.inc(E::ArpRepliesSent);
                emit(&self.stats, out, in_port, f);
            }
            ArpOperation::Reply => {
                // Any worker may have asked: the reply visits them all (see crate::handoff).
                let mut learned = self.via.is_some_and(|h| h.learned);
                if sender_ok && self.neigh.learn(spa, in_port, sha, now, false, release) {
                    self.stats.inc(E::ArpLearned);
                    learned = true;
                }
                match self.pass_on(f, HandoffKind::ArpChain, in_port, learned, out) {
                    Ok(()) => {}
                    Err(f) if learned => {
                        self.stats.inc(E::ArpConsumed);
                        drop(f);
                    }
                    Err(f) => self.discard(f, D::ArpUnsolicited),
                }
            }
            _ => self.discard(f, D::ArpMalformed),
        }
    }

    fn ipv4(&mut self, mut f: P::Frame, in_port: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        let (src, dst, proto, total, hl, frag) = {
            let ip = match Ipv4Packet::new_checked(&f.data()[ETH..]) {
                Ok(p) => p,
                Err(wire::Error::Truncated) => return self.discard(f, D::Ipv4Truncated),
                Err(_) => return self.discard(f, D::Ipv4BadHeader),
            };
            if !ip.verify_checksum() {
                return self.discard(f, D::Ipv4BadChecksum);
            }
            (
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                ip.total_len() as usize,
                ip.header_len(),
                ip.is_fragment(),
            )
        };
        // Ethernet padding past the IP total length must not travel on with the rewritten packet.
        let pad = f.len() - ETH - total;
        if pad > 0 {
            f.trim(pad);
        }
        let port = self.ports[in_port];
        if bad_source(src) || src == port.broadcast() {
            return self.discard(f, D::Ipv4BadSource);
        }
        if src == dst {
            return self.discard(f, D::Ipv4Land);
        }
        let is_vip = self.services.is_vip(dst);
        let is_lip = self.services.is_lip(dst);
        if !(is_vip || is_lip || self.port_addr(dst)) {
            return self.discard(f, D::NotForUs);
        }
        if frag {
            return self.discard(f, D::Ipv4Fragment);
        }
        match proto {
            ipv4::PROTO_ICMP => self.icmp(f, in_port, hl, now, out),
            ipv4::PROTO_TCP | ipv4::PROTO_UDP => self.l4(f, in_port, hl, is_vip, is_lip, now, out),
            _ => self.discard(f, D::Protocol),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn l4(
        &mut self,
        f: P::Frame,
        in_port: usize,
        hl: usize,
        is_vip: bool,
        is_lip: bool,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let ip = &f.data()[ETH..];
        let key = match wire::flow_key(ip) {
            Ok(k) => k,
            Err(wire::Error::Fragment) => return self.discard(f, D::Ipv4Fragment),
            Err(_) if ip[9] == ipv4::PROTO_TCP => return self.discard(f, D::TcpMalformed),
            Err(_) => return self.discard(f, D::UdpMalformed),
        };
        let flags = if key.proto == Proto::Tcp {
            match TcpPacket::new_checked(&ip[hl..]) {
                Ok(t) if tcp_flags_valid(t.flags()) => t.flags(),
                Ok(_) => return self.discard(f, D::TcpBadFlags),
                Err(_) => return self.discard(f, D::TcpMalformed),
            }
        } else {
            if UdpPacket::new_checked(&ip[hl..]).is_err() {
                return self.discard(f, D::UdpMalformed);
            }
            TcpFlags::NONE
        };
        // A reply to a local port another worker owns goes to that worker, unlooked-up here.
        // (A local address is never also a VIP: the control state refuses it.)
        let f = if is_lip {
            match self.hand_to_owner(f, key.dport, in_port, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        let ip = &f.data()[ETH..];
        let syn_only = key.proto == Proto::Tcp
            && flags.bits() & (TcpFlags::SYN.bits() | TcpFlags::ACK.bits() | TcpFlags::RST.bits())
                == TcpFlags::SYN.bits();
        if let Some((id, dir)) = self.conns.lookup(&key) {
            // LVS's conn_reuse_mode: a client reusing the tuple of a connection that is over
            // (TIME_WAIT, CLOSE) starts a new one, scheduled afresh, instead of riding the old
            // entry to the old real server.
            let over = |c: &crate::conn::Conn| matches!(c.state(), TcpState::TimeWait | TcpState::Close);
            if dir == Dir::Original && syn_only && self.conns.get(id).is_some_and(over) {
                self.drop_conn(id);
                self.stats.inc(E::ConnsReused);
            } else {
                return self.forward(f, id, dir, flags, hl, now, out);
            }
        }
        let svc = if is_vip { self.services.find(key.proto, key.dst, key.dport) } else { None };
        let Some(svc) = svc else {
            return self.discard(f, if is_lip { D::LipNoConn } else { D::NoService });
        };
        let sp = key.proto == Proto::Tcp && self.services.list[svc as usize].synproxy;
        // A client's handshake-completing ACK to a SYN-proxied service (it may carry data).
        let sp_ack = sp && flags.ack() && !flags.syn() && !flags.rst() && !flags.fin();
        if self.draining {
            if syn_only || sp_ack {
                self.stats.inc(E::RefusedDraining);
                return self.send_rst(f, in_port, hl, out);
            }
            if key.proto == Proto::Udp {
                return self.discard(f, D::Draining);
            }
        }
        if key.proto == Proto::Tcp {
            if !syn_only && !sp_ack {
                if self.rst_on_miss && !flags.rst() {
                    return self.send_rst(f, in_port, hl, out);
                }
                return self.discard(f, D::TcpNoConn);
            }
            // State is created only for a segment that is intact end to end, with options a real
            // server will parse the way we did (no zero or overrunning lengths).
            let t = TcpPacket::new_unchecked(&ip[hl..]);
            if !t.verify_checksum(key.src, key.dst) {
                return self.discard(f, D::TcpBadChecksum);
            }
            if t.options_iter().any(|o| o.is_err()) {
                return self.discard(f, D::TcpBadOption);
            }
            if sp {
                return if syn_only {
                    self.sp_syn(f, svc, &key, hl, in_port, now, out)
                } else {
                    self.sp_ack(f, svc, &key, hl, now, out)
                };
            }
        } else if !UdpPacket::new_unchecked(&ip[hl..]).verify_checksum(key.src, key.dst) {
            return self.discard(f, D::UdpBadChecksum);
        }
        // A packet that `forward` will drop for its TTL must not create state or move the scheduler.
        if Ipv4Packet::new_unchecked(ip).ttl() <= 1 {
            return self.discard(f, D::TtlExceeded);
        }
        match self.create(svc, &key, now) {
            Ok(id) => self.forward(f, id, Dir::Original, flags, hl, now, out),
            Err(r) => self.discard(f, r),
        }
    }

    /// Schedules a real server and a local address:port for a new connection and records it.
    fn create(&mut self, svc_idx: u32, key: &FlowKey, now: Millis) -> Result<ConnId, D> {
        if self.conns.is_full() {
            return Err(D::ConnTableFull);
        }
        let svc = &mut self.services.list[svc_idx as usize];
        let mut real = None;
        if svc.persistence_ms.is_some() {
            // Templates name the real by id: a pool change that moves it keeps the client on it.
            if let Some(r) = self.persist.lookup(svc.id, key.src, now).and_then(|id| svc.real_index(id)) {
                if svc.views[r].usable() {
                    real = Some(r);
                    self.stats.inc(E::PersistHits);
                }
            }
        }
        let real = match real {
            Some(r) => r,
            None => svc.sched.pick(&svc.views, key.src, key.sport).ok_or(D::NoRealServer)?,
        };
        let rs = svc.reals[real];
        let n = svc.lips.len();
        let mut found = None;
        for k in 0..n {
            let li = (svc.next_lip + k) % n;
            let lip = &mut svc.lips[li];
            if let Some(p) =
                alloc_lport(&self.conns, &mut lip.cursor, lip.addr, rs.addr, rs.port, key.proto, LPORT_TRIES)
            {
                found = Some((lip.addr, p));
                svc.next_lip = (li + 1) % n;
                break;
            }
            self.stats.inc(E::LportRetry);
        }
        let (lip, lport) = found.ok_or(D::LportExhausted)?;
        let new =
            NewConn { client: *key, lip, lport, rs: rs.addr, rport: rs.port, service: svc.id, real: rs.id };
        let id = self.conns.insert(&new, now).map_err(|e| match e {
            InsertError::Full => D::ConnTableFull,
            InsertError::Exists => D::ConnCollision,
        })?;
        svc.conn_added(real);
        if let Some(ms) = svc.persistence_ms {
            if self.persist.insert(svc.id, key.src, rs.id, ms, now).is_err() {
                self.stats.inc(E::PersistFull);
            }
        }
        self.stats.inc(E::ConnsCreated);
        Ok(id)
    }

    /// The FULLNAT rewrite of a packet of a tracked connection, then routing.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        mut f: P::Frame,
        id: ConnId,
        dir: Dir,
        flags: TcpFlags,
        hl: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns.get(id) else { return self.discard(f, D::TcpNoConn) };
        if c.synproxy_pending() {
            return self.sp_pending(f, id, dir, flags, hl, now, out);
        }
        let (to, svc_id, real_id, client, toa_done, proto, shift) =
            (c.out_key(dir), c.service(), c.real(), c.client_addr(), c.toa_done(), c.proto(), c.seq_shift());
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]);
            if !ip.decrement_ttl() {
                return self.discard(f, D::TtlExceeded);
            }
        }
        if wire::rewrite_l4_tuple(&mut f.data_mut()[ETH..], to.src, to.dst, to.sport, to.dport).is_err() {
            return self.discard(f, if proto == Proto::Tcp { D::TcpMalformed } else { D::UdpMalformed });
        }
        if let Some((delta, ts_delta)) = shift {
            // A SYN-proxied connection: the client's sequence space is the cookie's, the real
            // server's is its own; shift between them (and between the two timestamp clocks).
            let sh = synproxy::SeqShift { delta, ts_delta };
            let seg = &mut f.data_mut()[ETH + hl..];
            let r = match dir {
                Dir::Original => sh.to_server(seg),
                Dir::Reply => sh.to_client(seg),
            };
            if r.is_err() {
                return self.discard(f, D::SynproxyBadSegment);
            }
        }
        let len = f.len() as u64;
        let toa = match self.services.by_id_mut(svc_id) {
            Some(s) => {
                if let Some(i) = s.real_index(real_id) {
                    let c = &mut s.counters[i];
                    match dir {
                        Dir::Original => {
                            c.inpkts += 1;
                            c.inbytes += len;
                        }
                        Dir::Reply => {
                            c.outpkts += 1;
                            c.outbytes += len;
                        }
                    }
                }
                s.toa
            }
            None => false,
        };
        if proto == Proto::Tcp {
            match dir {
                Dir::Original => {
                    if flags.syn() && self.strip_ts {
                        TcpPacket::new_unchecked(&mut f.data_mut()[ETH + hl..]).nop_out_timestamps();
                    }
                    if toa && !toa_done && flags.ack() && !flags.syn() {
                        self.insert_toa(&mut f, client);
                        if let Some(c) = self.conns.get_mut(id) {
                            c.set_toa_done(true);
                        }
                    }
                }
                Dir::Reply => {
                    // The client's segments will carry the TOA option too: leave it room under the MSS.
                    if toa && flags.syn() && flags.ack() {
                        let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[ETH + hl..]);
                        if let Some(mss) = t.mss_option() {
                            t.set_mss_option(mss.saturating_sub(toa::TOA_LEN as u16));
                        }
                    }
                }
            }
            let ch = self.conns.update_tcp(id, dir, flags.bits(), now);
            if ch.became_active() || ch.became_inactive() {
                if let Some(s) = self.services.by_id_mut(svc_id) {
                    s.conn_activity(real_id, ch.became_active());
                }
            }
        } else {
            self.conns.touch(id, now);
        }
        self.send_ip(f, to.dst, now, out);
    }

    fn insert_toa(&mut self, f: &mut P::Frame, client: (Ipv4Addr, u16)) {
        if !f.append(toa::TOA_LEN) {
            self.stats.inc(E::ToaSkipped);
            return;
        }
        match toa::insert_toa(&mut f.data_mut()[ETH..], client.0, client.1) {
            Ok(_) => self.stats.inc(E::ToaInserted),
            Err(_) => {
                f.trim(toa::TOA_LEN);
                self.stats.inc(E::ToaSkipped);
            }
        }
    }

    /// Routes an IPv4 packet (Ethernet header present, EtherType IPv4) and hands it to the neighbour.
    fn send_ip(&mut self, mut f: P::Frame, dst: Ipv4Addr, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some((port, nh)) = self.routes.lookup(dst) else {
            return self.discard(f, D::NoRoute);
        };
        let pr = self.ports[port];
        if f.len() - ETH > pr.mtu as usize {
            return self.discard(f, D::MtuExceeded);
        }
        f.data_mut()[6..12].copy_from_slice(&pr.mac.0);
        match self.neigh.resolve(nh, port, f, now) {
            Resolved::Send(mut f, mac) => {
                set_eth_dst(&mut f, mac);
                emit(&self.stats, out, port, f);
            }
            Resolved::QueuedRequest => match arp_request(&mut self.pool, &pr, nh) {
                Some(req) => {
                    self.stats.inc(E::ArpRequestsSent);
                    emit(&self.stats, out, port, req);
                }
                None => self.stats.inc(E::NoMbuf),
            },
            Resolved::Queued => {}
            Resolved::QueueFull(f) => self.discard(f, D::NeighQueueFull),
            Resolved::TableFull(f) => self.discard(f, D::NeighTableFull),
        }
    }

    /// Echo requests to our addresses are answered; ICMP errors about tracked connections are relayed.
    fn icmp(&mut self, mut f: P::Frame, in_port: usize, hl: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        let (ty, is_error) = match IcmpPacket::new_checked(&f.data()[ETH + hl..]) {
            Ok(p) => (p.msg_type(), p.is_error()),
            Err(_) => return self.discard(f, D::IcmpMalformed),
        };
        if ty == icmp::msg::ECHO_REQUEST {
            let d = f.data_mut();
            let mut m = IcmpPacket::new_unchecked(&mut d[ETH + hl..]);
            if !m.verify_checksum() {
                return self.discard(f, D::IcmpMalformed);
            }
            m.make_echo_reply();
            let mut ip = Ipv4Packet::new_unchecked(&mut d[ETH..]);
            let (s, t) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(t);
            ip.set_dst_addr(s);
            ip.set_ttl(OWN_TTL);
            reply_macs(&mut f, self.ports[in_port].mac);
            self.stats.inc(E::IcmpEchoReplies);
            return emit(&self.stats, out, in_port, f);
        }
        if !is_error {
            return self.discard(f, D::IcmpType);
        }
        let inner = {
            let Ok(p) = IcmpPacket::new_checked(&f.data()[ETH + hl..]) else {
                return self.discard(f, D::IcmpMalformed);
            };
            let Ok(q) = p.inner() else { return self.discard(f, D::IcmpMalformed) };
            let Some(proto) = Proto::from_number(q.protocol()) else {
                return self.discard(f, D::IcmpUnknownConn);
            };
            FlowKey { proto, src: q.src_addr(), dst: q.dst_addr(), sport: q.src_port(), dport: q.dst_port() }
        };
        // About a packet we sent from a local port: its owner has the connection.
        let mut f = if self.services.is_lip(inner.src) {
            match self.hand_to_owner(f, inner.sport, in_port, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        // The quoted packet is one we sent, so its reverse is a tuple we received and indexed.
        let Some((id, dir)) = self.conns.lookup(&inner.reversed()) else {
            // About a packet to a client: nothing names the worker that owns it, so ask each.
            if self.workers > 1 && !self.services.is_lip(inner.src) {
                if let Err(f) = self.pass_on(f, HandoffKind::IcmpChain, in_port, false, out) {
                    self.discard(f, D::IcmpUnknownConn);
                }
                return;
            }
            return self.discard(f, D::IcmpUnknownConn);
        };
        let Some(c) = self.conns.get(id) else { return self.discard(f, D::IcmpUnknownConn) };
        let (src, dst, quoted) = match dir {
            // From the real-server side about LIP->RS: tell the client, about its own packet.
            Dir::Reply => (c.vip().0, c.client_addr().0, c.client_key()),
            // From the client side about VIP->client: tell the real server, about its packet.
            Dir::Original => (c.lip().0, c.rs().0, c.reply_key()),
        };
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]);
            if !ip.decrement_ttl() {
                return self.discard(f, D::TtlExceeded);
            }
        }
        if wire::rewrite_icmp_error(&mut f.data_mut()[ETH..], src, dst, &quoted).is_err() {
            return self.discard(f, D::IcmpMalformed);
        }
        self.stats.inc(E::IcmpErrorsRelayed);
        self.send_ip(f, dst, now, out);
    }

    /// Answers a TCP segment that matches no connection with a RST, in place (`conn.rst_on_miss`).
    fn send_rst(&mut self, mut f: P::Frame, in_port: usize, hl: usize, out: &mut Outbox<P::Frame>) {
        let d = f.data_mut();
        let (src, dst, seq, ack, flags, plen, sport, dport) = {
            let ip = Ipv4Packet::new_unchecked(&d[ETH..]);
            let t = TcpPacket::new_unchecked(ip.payload());
            (
                ip.src_addr(),
                ip.dst_addr(),
                t.seq_number(),
                t.ack_number(),
                t.flags(),
                t.payload().len() as u32,
                t.src_port(),
                t.dst_port(),
            )
        };
        let new_len = hl + wire::tcp::HEADER_LEN;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut d[ETH..]);
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_ttl(OWN_TTL);
            ip.set_total_len(new_len as u16);
        }
        {
            let mut t = TcpPacket::new_unchecked(&mut d[ETH + hl..ETH + new_len]);
            t.set_src_port(dport);
            t.set_dst_port(sport);
            t.set_header_len_raw(wire::tcp::HEADER_LEN);
            if flags.ack() {
                t.set_seq_number(ack);
                t.set_ack_number(0);
                t.set_flags(TcpFlags::RST);
            } else {
                let consumed = plen + u32::from(flags.syn()) + u32::from(flags.fin());
                t.set_seq_number(0);
                t.set_ack_number(seq.wrapping_add(consumed));
                t.set_flags(TcpFlags::RST.union(TcpFlags::ACK));
            }
            t.set_window_len(0);
            t.set_urgent_at(0);
            t.fill_checksum(dst, src);
        }
        reply_macs(&mut f, self.ports[in_port].mac);
        let excess = f.len() - (ETH + new_len);
        f.trim(excess);
        self.stats.inc(E::RstSent);
        emit(&self.stats, out, in_port, f);
    }

    /// SYN-proxy: answers a client's SYN with a cookie SYN-ACK built in the same buffer. No state.
    #[allow(clippy::too_many_arguments)]
    fn sp_syn(
        &mut self,
        mut f: P::Frame,
        svc: u32,
        key: &FlowKey,
        hl: usize,
        in_port: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let (client_isn, opts) = {
            let t = TcpPacket::new_unchecked(&f.data()[ETH + hl..]);
            match synproxy::syn_options(&t) {
                Ok(o) => (t.seq_number(), o),
                Err(_) => return self.discard(f, D::TcpBadOption),
            }
        };
        let (isn, tsval) = synproxy::make_cookie(&self.sp_secrets, key, client_isn, &opts, now);
        let need = ETH + SYNACK_MAX_LEN;
        if f.len() < need && !f.append(need - f.len()) {
            return self.discard(f, D::SynproxyBadSegment);
        }
        // With TOA on, the client's segments must leave the option room under the MTU.
        let toa = self.services.list[svc as usize].toa;
        let cfg = SynAckConfig {
            mss: self.sp.mss.saturating_sub(if toa { toa::TOA_LEN as u16 } else { 0 }),
            wscale: self.sp.wscale,
            window: self.sp.window,
            ..SynAckConfig::default()
        };
        let n = match synproxy::syn_to_synack(&mut f.data_mut()[ETH..], isn, tsval, &cfg) {
            Ok(n) => n,
            Err(_) => return self.discard(f, D::SynproxyBadSegment),
        };
        let excess = f.len() - (ETH + n);
        f.trim(excess);
        reply_macs(&mut f, self.ports[in_port].mac);
        self.stats.inc(E::SynproxySynAcks);
        emit(&self.stats, out, in_port, f);
    }

    /// SYN-proxy: a client's ACK completing the handshake with the gateway. A valid cookie creates
    /// the connection (scheduling a real server), sends the real server a SYN with the client's
    /// options, and holds this ACK until the real server answers.
    fn sp_ack(
        &mut self,
        f: P::Frame,
        svc: u32,
        key: &FlowKey,
        hl: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let (seq, ack, ts, ttl) = {
            let ip = &f.data()[ETH..];
            let t = TcpPacket::new_unchecked(&ip[hl..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), ts, Ipv4Packet::new_unchecked(ip).ttl())
        };
        let cookie_isn = ack.wrapping_sub(1);
        let client_isn = seq.wrapping_sub(1);
        let opts = match synproxy::check_cookie(&self.sp_secrets, key, cookie_isn, client_isn, ts, now) {
            Ok(o) => o,
            Err(CookieError::TooOld) => return self.discard(f, D::SynproxyCookieTooOld),
            Err(CookieError::BadTimestamp) => return self.discard(f, D::SynproxyBadTimestamp),
            Err(_) => return self.discard(f, D::SynproxyBadCookie),
        };
        self.stats.inc(E::SynproxyCookiesValid);
        if self.half_open.is_full() {
            return self.discard(f, D::SynproxyHalfOpenFull);
        }
        if ttl <= 1 {
            return self.discard(f, D::TtlExceeded);
        }
        let id = match self.create(svc, key, now) {
            Ok(id) => id,
            Err(r) => return self.discard(f, r),
        };
        if let Some(c) = self.conns.get_mut(id) {
            c.set_synproxy_pending(cookie_isn);
        }
        let ch = self.conns.update_tcp(id, Dir::Original, TcpFlags::SYN.bits(), now);
        self.account_state_change(id, ch);
        let p = Pending {
            conn: id,
            cookie_isn,
            client_isn,
            opts: synproxy::SynOptions { timestamps: ts, ..opts },
            our_tsval: ts.map(|t| t.1),
            tries: 0,
            last_syn: now,
            last_ack: (seq, ack),
            repeats: 0,
        };
        self.half_open.insert(p);
        if let Err(f) = self.half_open.hold(id, f) {
            self.discard(f, D::SynproxyHeldFull);
        }
        self.sp_send_syn(id, now, out);
    }

    /// Sends (or resends) the SYN of a pending proxied connection to its real server.
    fn sp_send_syn(&mut self, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns.get(id).copied() else { return };
        let Some(p) = self.half_open.get_mut(id) else { return };
        p.tries += 1;
        p.last_syn = now;
        let p = *p;
        let toa = self.services.by_id(c.service()).is_some_and(|s| s.toa);
        let mut opts = [0u8; 20];
        let mss = p.opts.mss.saturating_sub(if toa { toa::TOA_LEN as u16 } else { 0 });
        opts[..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        let mut n = 4;
        match p.opts.timestamps {
            Some((tsval, _)) => {
                let lead = if p.opts.sack_perm { [4, 2] } else { [1, 1] };
                opts[n..n + 2].copy_from_slice(&lead);
                opts[n + 2..n + 4].copy_from_slice(&[8, 10]);
                opts[n + 4..n + 8].copy_from_slice(&tsval.to_be_bytes());
                opts[n + 8..n + 12].copy_from_slice(&0u32.to_be_bytes());
                n += 12;
            }
            None if p.opts.sack_perm => {
                opts[n..n + 4].copy_from_slice(&[1, 1, 4, 2]);
                n += 4;
            }
            None => {}
        }
        if let Some(ws) = p.opts.wscale {
            opts[n..n + 4].copy_from_slice(&[1, 3, 3, ws]);
            n += 4;
        }
        let (lip, lport) = c.lip();
        let (rs, rport) = c.rs();
        let flow = FlowKey { proto: Proto::Tcp, src: lip, dst: rs, sport: lport, dport: rport };
        let Some(f) = build_tcp(&mut self.pool, &flow, p.client_isn, 0, TcpFlags::SYN, 65_535, &opts[..n])
        else {
            self.stats.inc(E::NoMbuf);
            return;
        };
        self.stats.inc(E::SynproxySynsSent);
        self.send_ip(f, rs, now, out);
    }

    /// A packet of a proxied connection whose real server has not answered yet.
    #[allow(clippy::too_many_arguments)]
    fn sp_pending(
        &mut self,
        f: P::Frame,
        id: ConnId,
        dir: Dir,
        flags: TcpFlags,
        hl: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let (seq, ack, plen, rs_ts) = {
            let t = TcpPacket::new_unchecked(&f.data()[ETH + hl..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, .. }) => Some(tsval),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), t.payload().len(), ts)
        };
        match dir {
            Dir::Original => {
                if let Some(p) = self.half_open.get_mut(id) {
                    let pure = plen == 0 && flags.bits() & !TcpFlags::PSH.bits() == TcpFlags::ACK.bits();
                    if pure && p.last_ack == (seq, ack) {
                        p.repeats += 1;
                        if p.repeats > self.sp.ack_storm {
                            return self.discard(f, D::SynproxyAckStorm);
                        }
                    } else {
                        p.last_ack = (seq, ack);
                        p.repeats = 0;
                    }
                }
                if let Err(f) = self.half_open.hold(id, f) {
                    self.discard(f, D::SynproxyHeldFull);
                }
            }
            Dir::Reply if flags.rst() => self.sp_refused(f, id, now, out),
            Dir::Reply if flags.syn() && flags.ack() => {
                let Some(p) = self.half_open.get_mut(id).copied() else {
                    return self.discard(f, D::SynproxyBadSegment);
                };
                if ack != p.client_isn.wrapping_add(1) {
                    return self.discard(f, D::SynproxyBadSegment);
                }
                let ts_delta = match (p.our_tsval, rs_ts) {
                    (Some(ours), Some(rs)) => Some(ours.wrapping_sub(rs)),
                    _ => None,
                };
                if let Some(c) = self.conns.get_mut(id) {
                    c.set_synproxy_established(seq.wrapping_sub(p.cookie_isn), ts_delta);
                }
                let ch = self.conns.update_tcp(id, Dir::Reply, flags.bits(), now);
                self.account_state_change(id, ch);
                // The client already has its SYN-ACK (ours): this one is consumed.
                self.stats.inc(E::SynproxyHandshakes);
                drop(f);
                // Release what the client sent meanwhile, its handshake ACK first: forwarded and
                // shifted like any later packet, it completes the real server's handshake (and
                // carries TOA where the real server's `toa` module reads it).
                let mut held = std::mem::take(&mut self.sp_scratch);
                self.half_open.take(id, |fr| held.push(fr));
                for fr in held.drain(..) {
                    let (hl, fl) = {
                        let ip = Ipv4Packet::new_unchecked(&fr.data()[ETH..]);
                        let hl = ip.header_len();
                        (hl, TcpPacket::new_unchecked(&fr.data()[ETH + hl..]).flags())
                    };
                    self.forward(fr, id, Dir::Original, fl, hl, now, out);
                }
                self.sp_scratch = held;
            }
            Dir::Reply => self.discard(f, D::SynproxyBadSegment),
        }
    }

    /// The real server refused a proxied connection: its RST becomes the client's.
    fn sp_refused(&mut self, mut f: P::Frame, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let stats = &*self.stats;
        let Some(p) = self.half_open.take(id, |fr| {
            stats.dropped(D::SynproxyAborted);
            drop(fr);
        }) else {
            return self.discard(f, D::SynproxyBadSegment);
        };
        let Some(c) = self.conns.get(id).copied() else { return self.discard(f, D::SynproxyBadSegment) };
        self.stats.inc(E::SynproxyRsRefused);
        let to = c.out_key(Dir::Reply);
        let hl = Ipv4Packet::new_unchecked(&f.data()[ETH..]).header_len();
        if wire::rewrite_l4_tuple(&mut f.data_mut()[ETH..], to.src, to.dst, to.sport, to.dport).is_err() {
            self.drop_conn(id);
            return self.discard(f, D::SynproxyBadSegment);
        }
        {
            let d = f.data_mut();
            let mut t = TcpPacket::new_unchecked(&mut d[ETH + hl..]);
            // The client is past its handshake with us: the next sequence number it expects from
            // the server side is cookie + 1, so this RST is in its window.
            t.set_seq_number(p.cookie_isn.wrapping_add(1));
            t.set_ack_number(p.client_isn.wrapping_add(1));
            t.set_flags(TcpFlags::RST.union(TcpFlags::ACK));
            Ipv4Packet::new_unchecked(&mut d[ETH..]).set_ttl(OWN_TTL);
        }
        self.drop_conn(id);
        self.send_ip(f, to.dst, now, out);
    }

    /// The real server never answered the SYN retries: the client gets a RST built here.
    fn sp_timeout(&mut self, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let stats = &*self.stats;
        let Some(p) = self.half_open.take(id, |fr| {
            stats.dropped(D::SynproxyAborted);
            drop(fr);
        }) else {
            return;
        };
        let Some(c) = self.conns.get(id).copied() else { return };
        self.stats.inc(E::SynproxyRsTimeouts);
        self.drop_conn(id);
        let to = c.out_key(Dir::Reply);
        let rst = TcpFlags::RST.union(TcpFlags::ACK);
        let (seq, ack) = (p.cookie_isn.wrapping_add(1), p.client_isn.wrapping_add(1));
        let Some(f) = build_tcp(&mut self.pool, &to, seq, ack, rst, 0, &[]) else {
            self.stats.inc(E::NoMbuf);
            return;
        };
        self.stats.inc(E::SynproxyRstsGenerated);
        self.send_ip(f, to.dst, now, out);
    }

    /// Keeps per-real active/inactive counts in step with a connection's state change.
    fn account_state_change(&mut self, id: ConnId, ch: crate::conn::StateChange) {
        if ch.became_active() || ch.became_inactive() {
            if let Some(c) = self.conns.get(id) {
                let (svc, real) = (c.service(), c.real());
                if let Some(s) = self.services.by_id_mut(svc) {
                    s.conn_activity(real, ch.became_active());
                }
            }
        }
    }

    fn publish_gauges(&self) {
        self.stats.set(Gauge::Conns, self.conns.len() as u64);
        self.stats.set(Gauge::Neighbours, self.neigh.len() as u64);
        self.stats.set(Gauge::SynproxyHalfOpen, self.half_open.len() as u64);
        self.stats.set(Gauge::SynproxyHeld, self.half_open.held() as u64);
        self.stats.set(Gauge::NeighHeld, self.neigh.held() as u64);
        self.stats.set(
            Gauge::ConnsActive,
            self.services.list.iter().flat_map(|s| &s.views).map(|v| v.active as u64).sum(),
        );
    }

    /// Removes a connection, keeping its real server's counts right.
    fn drop_conn(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(id) {
            if c.synproxy_pending() {
                let stats = &*self.stats;
                self.half_open.take(id, |fr| {
                    stats.dropped(D::SynproxyAborted);
                    drop(fr);
                });
            }
            if let Some(s) = self.services.by_id_mut(c.service()) {
                s.conn_removed(c.real(), c.is_counted_active());
            }
        }
    }

    /// Timers, once per burst: connection expiry, persistence expiry, neighbour retries and ageing.
    pub fn poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        let (services, half_open, stats) = (&mut self.services, &mut self.half_open, &*self.stats);
        let n = self.conns.expire(now, self.expire_budget, |id, c| {
            if let Some(s) = services.by_id_mut(c.service()) {
                s.conn_removed(c.real(), c.is_counted_active());
            }
            if c.synproxy_pending() {
                half_open.take(id, |fr| {
                    stats.dropped(D::SynproxyAborted);
                    drop(fr);
                });
            }
        });
        if n > 0 {
            self.stats.add(E::ConnsExpired, n as u64);
        }
        // Millisecond housekeeping: timers of this resolution gain nothing from running every burst.
        let new_ms = now != self.housekeeping_at;
        if new_ms {
            self.persist.expire(now, PERSIST_EXPIRE_BUDGET);
        }
        if now >= self.sp_rotate_at {
            // Each worker derives its next secret from the last; cookies of the previous one stay
            // valid for another rotation period.
            let k = synproxy::cookie::SipKey::from_bytes(self.sp_key);
            let a = synproxy::cookie::siphash24(&k, &now.to_le_bytes());
            let b = synproxy::cookie::siphash24(&k, &a.to_le_bytes());
            self.sp_key[..8].copy_from_slice(&a.to_le_bytes());
            self.sp_key[8..].copy_from_slice(&b.to_le_bytes());
            self.sp_secrets.rotate(self.sp_key);
            self.sp_rotate_at = now + 2 * self.sp.period_ms.max(1);
        }
        if !self.half_open.is_empty() {
            let mut due = due_buf();
            let n = self.half_open.poll_due(now, self.sp.syn_retry_ms, &mut due);
            for id in due.into_iter().take(n) {
                let tries = self.half_open.get_mut(id).map_or(u32::MAX, |p| p.tries);
                if tries <= self.sp.syn_retries {
                    self.sp_send_syn(id, now, out);
                } else {
                    self.sp_timeout(id, now, out);
                }
            }
        }
        // Gauges are read by people and the drain loop, not per packet: publishing them sums over
        // every real server, so it happens at most every GAUGE_MS rather than every burst.
        if now >= self.gauges_at {
            self.gauges_at = now + GAUGE_MS;
            self.publish_gauges();
        }
        // The neighbour walk touches a few cold slots: every burst, it cost a fifth of a busy worker.
        if !new_ms {
            return;
        }
        self.housekeeping_at = now;
        let (pool, ports, stats) = (&mut self.pool, &self.ports, &*self.stats);
        self.neigh.poll(
            now,
            |ip, port| match ports.get(port).and_then(|p| arp_request(pool, p, ip)) {
                Some(req) => {
                    stats.inc(E::ArpRequestsSent);
                    emit(stats, out, port, req);
                }
                None => stats.inc(E::NoMbuf),
            },
            |f| {
                stats.dropped(D::NeighUnresolved);
                drop(f);
            },
        );
    }
}
