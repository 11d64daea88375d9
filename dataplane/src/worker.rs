//! One worker: its tables, and the `process`/`poll` entry points the daemon, the tests, the
//! fuzzers and the benchmarks all drive. The stages live one concern per file: [`crate::l2`],
//! [`crate::arp`], [`crate::ip4`], [`crate::icmp`], [`crate::proto`] (TCP, UDP, SYN-proxy),
//! [`crate::conn::bind`], [`crate::xmit`] (one file per forwarding mode), [`crate::output`] and
//! [`crate::admin`].
//!
//! Invariants:
//! - A `Worker` is owned by exactly one thread and shares nothing mutable: its connection table,
//!   neighbour table, scheduler state and persistence templates are its own.
//! - Every frame it is given ends in exactly one of: queued in the [`Outbox`] (for a port or
//!   another worker), held (by the neighbour table or SYN-proxy, bounded), consumed (an ARP reply
//!   that taught us a neighbour, a real server's SYN-ACK that completed a proxied handshake), or
//!   dropped with exactly one [`DropReason`](crate::stats::DropReason) counted.
//! - No allocation per packet: frames are reused in place (ARP and echo replies, rewrites); only
//!   the frames the gateway originates (ARP requests, SYN-proxy SYNs and RSTs, PROXY protocol
//!   headers) come from the pool.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::conn::bind::{ConnEvent, ConnEvents};
use crate::conn::ConnTable;
use crate::flow::Millis;
use crate::frag::Frags;
use crate::frame::FramePool;
use crate::handoff::Handoff;
use crate::l2::PortRt;
use crate::neigh::Neighbours;
use crate::packet::Ctx;
use crate::proto::proxy::ProxyTimers;
use crate::route::Routes;
use crate::sched::Persistence;
use crate::service::Services;
use crate::stats::{DropReason as D, Event as E, Gauge, Stats};
use crate::synproxy::SynProxy;

pub use crate::admin::{ConnView, RealCounts};
pub use crate::outbox::Outbox;
pub use crate::setup::{ConnSetup, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, SynproxySetup};

/// Persistence template slots swept per millisecond at most.
const PERSIST_EXPIRE_BUDGET: usize = 1024;
/// Least time between two publications of a worker's gauges.
const GAUGE_MS: Millis = 10;

/// One worker.
pub struct Worker<P: FramePool> {
    pub(crate) index: u16,
    /// Workers sharing the ports (owners of local-port slices).
    pub(crate) workers: u16,
    pub(crate) ports: Vec<PortRt>,
    /// The smallest port MTU: a packet within it fits every way out.
    pub(crate) min_mtu: u16,
    pub(crate) routes: Routes,
    pub(crate) services: Services,
    pub(crate) conns: ConnTable,
    pub(crate) neigh: Neighbours<P::Frame>,
    pub(crate) persist: Persistence,
    pub(crate) pool: P,
    pub(crate) stats: Arc<Stats>,
    pub(crate) sp: SynProxy<P::Frame>,
    pub(crate) pp_timers: ProxyTimers,
    pub(crate) frags: Frags<P::Frame>,
    /// IPv6 tables: routes, IPv6 services, NAT64 services (IPv6 VIP, IPv4 reals), the IPv6
    /// connection table (IPv6 and NAT64 connections; see [`crate::xmit::nat64`] for the entry),
    /// neighbours and persistence templates.
    pub(crate) routes6: Routes<Ipv6Addr>,
    pub(crate) services6: Services<Ipv6Addr>,
    pub(crate) nat64: Services<Ipv6Addr, Ipv4Addr>,
    pub(crate) conns6: ConnTable<Ipv6Addr>,
    pub(crate) neigh6: Neighbours<P::Frame, Ipv6Addr>,
    pub(crate) persist6: Persistence<Ipv6Addr>,
    /// SYN-proxy's half-open state for IPv6-table connections (see [`crate::proto::synproxy6`]).
    pub(crate) sp6: SynProxy<P::Frame>,
    /// The last IP identification given to a fragmented datagram whose source is rewritten.
    pub(crate) next_ident: u16,
    pub(crate) events: ConnEvents,
    pub(crate) strip_ts: bool,
    pub(crate) rst_on_miss: bool,
    pub(crate) expire_budget: usize,
    arp_queue: usize,
    pub(crate) expire_on_real_removed: bool,
    pub(crate) draining: bool,
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
        let conns = ConnTable::with_seed(c.max_per_worker as usize, c.timeouts, 0, conn_seed(setup, index));
        stats.set(Gauge::ConnCapacity, conns.capacity() as u64);
        stats.set(Gauge::BytesPerConn, conns.memory_per_conn() as u64);
        Worker {
            index,
            workers: setup.workers.max(1),
            ports: setup.ports.iter().map(PortRt::new).collect(),
            min_mtu: setup.ports.iter().map(|p| p.mtu).min().unwrap_or(u16::MAX),
            routes: Routes::new(&setup.ports, &setup.routes),
            services: Services::new(setup, index),
            conns,
            neigh: Neighbours::new(c.max_neighbours as usize, c.arp_queue as usize, c.neigh_timeout_ms),
            persist: Persistence::with_capacity(c.persist_templates.max(1) as usize),
            pool,
            stats,
            sp: SynProxy::new(c.synproxy),
            pp_timers: ProxyTimers::new(c.proxy_timers as usize),
            frags: Frags::new(c.frag.max_datagrams as usize, c.frag.max_per_source, c.frag.timeout_ms),
            routes6: Routes::new(&setup.ports, &setup.routes),
            services6: Services::new(setup, index),
            nat64: Services::new(setup, index),
            conns6: ConnTable::of_family(
                c.max_per_worker as usize,
                c.timeouts,
                0,
                conn_seed(setup, index).rotate_left(17),
            ),
            neigh6: Neighbours::new(c.max_neighbours as usize, c.arp_queue as usize, c.neigh_timeout_ms),
            persist6: Persistence::with_capacity(c.persist_templates.max(1) as usize),
            sp6: SynProxy::new(c.synproxy),
            next_ident: 0,
            events: ConnEvents::default(),
            strip_ts: c.strip_timestamps,
            rst_on_miss: c.rst_on_miss,
            expire_budget: c.expire_budget.max(1) as usize,
            arp_queue: c.arp_queue as usize,
            expire_on_real_removed: c.expire_on_real_removed,
            draining: false,
            gauges_at: 0,
            housekeeping_at: Millis::MAX,
        }
    }

    /// Handles one received frame from `in_port`.
    pub fn process(&mut self, f: P::Frame, in_port: usize, now: Millis, out: &mut Outbox<P::Frame>) {
        self.receive(f, Ctx::new(in_port, None, now), out);
    }

    /// A frame from a port enters the stages: counted as received, then Ethernet input.
    #[inline]
    pub(crate) fn receive(&mut self, f: P::Frame, mut cx: Ctx, out: &mut Outbox<P::Frame>) {
        self.stats.inc(E::RxPackets);
        self.stats.add(E::RxBytes, crate::frame::Frame::len(&f) as u64);
        self.l2_input(f, &mut cx, out);
    }

    /// Handles a frame another worker handed over with `tag` (see [`crate::handoff`]).
    pub fn process_handoff(&mut self, f: P::Frame, tag: u32, now: Millis, out: &mut Outbox<P::Frame>) {
        self.stats.inc(E::HandoffIn);
        let Some(h) = Handoff::decode(tag) else {
            return self.discard(f, D::HandoffBadTag);
        };
        let mut cx = Ctx::new(h.in_port as usize, Some(h), now);
        self.l2_input(f, &mut cx, out);
    }

    /// Timers, once per burst: connection expiry, SYN-proxy's retries and secret rotation, and
    /// once per millisecond persistence expiry and the neighbour walk.
    pub fn poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        self.expire_conns(now);
        self.expire_conns6(now);
        // Millisecond housekeeping: timers of this resolution gain nothing from running every burst.
        let new_ms = now != self.housekeeping_at;
        if new_ms {
            self.persist.expire(now, PERSIST_EXPIRE_BUDGET);
            self.persist6.expire(now, PERSIST_EXPIRE_BUDGET);
            self.frag_poll(now);
        }
        self.sp_poll(now, out);
        self.sp_poll6(now, out);
        self.pp_poll(now, out);
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
            |ip, port| match ports.get(port).and_then(|p| crate::arp::arp_request(pool, p, ip)) {
                Some(req) => {
                    stats.inc(E::ArpRequestsSent);
                    out.emit(stats, port, req);
                }
                None => stats.inc(E::NoMbuf),
            },
            |f| {
                stats.dropped(D::NeighUnresolved);
                drop(f);
            },
        );
        self.neigh6_poll(now, out);
    }

    #[inline]
    pub(crate) fn discard(&self, f: P::Frame, r: D) {
        self.stats.dropped(r);
        drop(f);
    }

    /// Client packets held by SYN-proxy until real servers answer.
    pub fn synproxy_held(&self) -> usize {
        self.sp.held() + self.sp6.held()
    }

    /// Fragments waiting for their datagram's first fragment.
    pub fn frag_held(&self) -> usize {
        self.frags.held()
    }

    /// Graceful drain: from now on new connections are refused (TCP with a RST, UDP dropped and
    /// counted) while established ones keep being forwarded.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    /// Starts logging connection events (bind, state change, release), at most `cap` between two
    /// [`Self::take_conn_events`]; see [`crate::conn::bind`].
    pub fn enable_conn_events(&mut self, cap: usize) {
        self.events = ConnEvents::with_capacity(cap);
    }

    /// The connection events logged since the last call, oldest first, and how many were lost.
    pub fn take_conn_events(&mut self, into: &mut Vec<ConnEvent>) -> u64 {
        into.extend(self.events.drain());
        self.events.lost()
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
        self.neigh.held() + self.neigh6.held()
    }

    /// The IPv6 services.
    pub fn services6(&self) -> &Services<Ipv6Addr> {
        &self.services6
    }

    /// The NAT64 services (IPv6 VIPs, IPv4 real servers).
    pub fn nat64_services(&self) -> &Services<Ipv6Addr, Ipv4Addr> {
        &self.nat64
    }

    /// The IPv6 connection table (IPv6 and NAT64 connections).
    pub fn conns6(&self) -> &ConnTable<Ipv6Addr> {
        &self.conns6
    }
}
