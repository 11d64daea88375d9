//! A worker's runtime view of the virtual services: lookup by (proto, VIP, vport) and by id,
//! scheduler state, per-real connection counts and traffic counters, and the local addresses with
//! this worker's port cursors.
//!
//! Invariants:
//! - Built from a [`Setup`] per worker and never shared. `views[i]` and `counters[i]` describe
//!   `reals[i]`, in the order the scheduler was built with (the scheduler's pool contract).
//! - Connections refer to services and reals by their stable ids, never by position, so a pool
//!   change can reorder, add and remove reals without touching the connection table.
//! - [`Services::rebuild`] carries every per-real count and counter over to the new pool for the
//!   ids that remain; a removed real's counts go with it, and its connections, when they expire,
//!   find no real to decrement.
//! - Per-real counts here are this worker's only; the control plane sums them over workers, and
//!   lc/wlc on each worker decide on its local counts (see docs/architecture.md).
//! - The per-packet path reaches a connection's service and real through a direct-mapped array
//!   indexed by their stable ids ([`REAL_SLOTS`] entries, each checked against both ids), rebuilt
//!   with the services on every `apply`; ids are handed out consecutively by the control plane, so
//!   they rarely share a slot, and one that does falls back to the maps by id.
//! - A real server's connection thresholds are split between workers: each enforces its share,
//!   `ceil(threshold / workers)`, on its own counts, so the sum over workers stays within
//!   `threshold + workers - 1` without any worker reading another's counts.
//! - Services are kept per address family: `Services<V, R>` holds the services whose VIP is of
//!   family `V` and whose real servers and local addresses are of family `R` (IPv4, IPv6, and
//!   NAT64's IPv6 VIP with IPv4 reals); a worker builds one table per family pair from the same
//!   [`Setup`], each taking only its services ([`Family`]).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::{HashMap, HashSet};

use crate::conn::{LportCursor, PortSlice};
use crate::flow::{Addr, Millis, Proto};
use crate::sched::{update_overload, RealView, Scheduler};
use crate::setup::{RealSetup, ServiceSetup, Setup};
use crate::xmit::Xlat;

/// Entries of the direct-mapped (service id, real id) -> position array (a power of two).
pub const REAL_SLOTS: usize = 1024;

/// Where a real server sits: its service's position and its position in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RealSlot {
    /// `service id << 32 | real id`; `u64::MAX` when empty.
    ids: u64,
    svc: u32,
    real: u32,
}

impl RealSlot {
    const EMPTY: RealSlot = RealSlot { ids: u64::MAX, svc: 0, real: 0 };
}

#[inline]
fn ids(service: u32, real: u32) -> u64 {
    (service as u64) << 32 | real as u64
}

/// The direct-mapped slot of (service, real): Fibonacci hashing of the ids' combination, which
/// spreads consecutive ids evenly.
#[inline]
fn real_slot(service: u32, real: u32) -> usize {
    let x = real ^ service.rotate_left(16);
    (x.wrapping_mul(0x9E37_79B9) >> (32 - REAL_SLOTS.trailing_zeros())) as usize
}

/// Traffic of one real server (or service) on one worker. `in` is client to real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// Where a service's local ports start on a worker: drawn from the daemon's random secret, so a
/// restarted gateway does not hand out the ports of its previous run in the same order (a real
/// server still holding `LIP:lport` in TIME_WAIT from then would answer the new SYN with an ACK
/// and stall the connection).
fn lport_start(setup: &Setup, service: u32, worker: u16) -> u16 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (b"rvs lport start", setup.conn.synproxy.key, service, worker).hash(&mut h);
    let (lo, hi) = (setup.conn.lport_min as u64, setup.conn.lport_max.max(setup.conn.lport_min) as u64);
    (lo + h.finish() % (hi - lo + 1)) as u16
}

/// One worker's share of a per-real threshold (0, no threshold, stays 0).
pub fn worker_share(threshold: u32, workers: u16) -> u32 {
    threshold.div_ceil(u32::from(workers.max(1)))
}

/// An address of family `A` from the setup's `IpAddr`, if it is one.
pub trait FromIp: Addr {
    fn from_ip(a: IpAddr) -> Option<Self>;
    fn to_ip(self) -> IpAddr;
}

impl FromIp for Ipv4Addr {
    #[inline]
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }
}

impl FromIp for Ipv6Addr {
    #[inline]
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }
}

/// A real server of family `A` (a [`RealSetup`] with its address typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Real<A: Addr = Ipv4Addr> {
    pub id: u32,
    pub addr: A,
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub xlat: Xlat,
}

#[derive(Debug)]
pub struct Lip<A: Addr = Ipv4Addr> {
    pub addr: A,
    pub cursor: LportCursor,
}

/// Whether `s` belongs in the table of VIP family `V` and real family `R`: its VIP, every real
/// and every local address of the right family (a service that mixes them otherwise is in no
/// table; the control plane refuses it).
pub fn belongs<V: FromIp, R: FromIp>(s: &ServiceSetup) -> bool {
    V::from_ip(s.vip).is_some()
        && s.reals.iter().all(|r| R::from_ip(r.addr).is_some())
        && s.laddrs.iter().all(|a| R::from_ip(*a).is_some())
        && (V::BITS == R::BITS || s.reals.iter().all(|r| r.xlat == Xlat::FullNat))
}

#[derive(Debug)]
pub struct Service<V: Addr = Ipv4Addr, R: Addr = V> {
    pub id: u32,
    pub proto: Proto,
    pub vip: V,
    pub vport: u16,
    pub persistence_ms: Option<Millis>,
    pub toa: bool,
    pub synproxy: bool,
    pub proxy_protocol: Option<crate::wire::proxy::Version>,
    pub reals: Vec<Real<R>>,
    pub views: Vec<RealView>,
    pub counters: Vec<Counters>,
    real_by_id: HashMap<u32, usize>,
    pub sched: Scheduler,
    pub lips: Vec<Lip<R>>,
    /// Where the next connection starts looking for a local port (rotates over `lips`).
    pub next_lip: usize,
    /// Every real server forwards FULLNAT (so a service without local addresses refuses a new
    /// connection before its scheduler moves).
    pub fullnat_only: bool,
    /// Some real server forwards NAT: new connections go to the worker their client's tuple
    /// hashes to, where the real server's replies are handed too (see [`crate::xmit::nat`]).
    pub has_nat: bool,
}

impl<V: FromIp, R: FromIp> Service<V, R> {
    /// `s` must satisfy [`belongs`].
    fn new(s: &ServiceSetup, setup: &Setup, worker: u16, old: Option<&mut Service<V, R>>) -> Service<V, R> {
        let workers = setup.workers.max(1);
        let reals: Vec<Real<R>> = s
            .reals
            .iter()
            .filter_map(|r: &RealSetup| {
                Some(Real {
                    id: r.id,
                    addr: R::from_ip(r.addr)?,
                    port: r.port,
                    weight: r.weight,
                    u_threshold: worker_share(r.u_threshold, workers),
                    l_threshold: worker_share(r.l_threshold, workers),
                    xlat: r.xlat,
                })
            })
            .collect();
        let mut views: Vec<RealView> =
            reals.iter().map(|r| RealView::new(RealView::id_of_addr(r.addr, r.port), r.weight)).collect();
        let mut counters = vec![Counters::default(); s.reals.len()];
        let slice = PortSlice::new(setup.workers.max(1), worker);
        let seed = lport_start(setup, s.id, worker);
        let mut lips: Vec<Lip<R>> = s
            .laddrs
            .iter()
            .filter_map(|a| R::from_ip(*a))
            .map(|addr| Lip {
                addr,
                cursor: LportCursor::new(slice, setup.conn.lport_min, setup.conn.lport_max, seed),
            })
            .collect();
        let mut next_lip = 0;
        if let Some(old) = old {
            for (i, r) in reals.iter().enumerate() {
                if let Some(&j) = old.real_by_id.get(&r.id) {
                    let (w, overloaded) = (views[i].weight, old.views[j].overloaded);
                    views[i] = old.views[j];
                    views[i].weight = w;
                    views[i].overloaded = overloaded;
                    let v = &mut views[i];
                    update_overload(&mut v.overloaded, v.active + v.inactive, r.u_threshold, r.l_threshold);
                    counters[i] = old.counters[j];
                }
            }
            // Keep each surviving local address's cursor, so its ports keep rotating from where
            // they were instead of starting over.
            for l in &mut lips {
                if let Some(o) = old.lips.iter().find(|o| o.addr == l.addr) {
                    l.cursor = o.cursor.clone();
                }
            }
            next_lip = old.next_lip % lips.len().max(1);
        }
        Service {
            id: s.id,
            proto: s.proto,
            vip: V::from_ip(s.vip).unwrap_or(V::UNSPECIFIED),
            vport: s.vport,
            persistence_ms: s.persistence_ms,
            // The control plane refuses both with a DR or TUN real server (whose replies bypass
            // the gateway); a setup that has them anyway does not get them.
            toa: s.toa && s.reals.iter().all(|r| r.xlat == Xlat::FullNat),
            synproxy: s.synproxy && s.reals.iter().all(|r| r.xlat.sees_replies()),
            // TCP only, and only where the replies pass the gateway (their acknowledgements are
            // shifted back); exclusive with TOA (the control plane refuses both).
            proxy_protocol: s
                .proxy_protocol
                .filter(|_| s.proto == Proto::Tcp && !s.toa && s.reals.iter().all(|r| r.xlat.sees_replies())),
            reals,
            sched: Scheduler::new(s.sched, &views),
            views,
            counters,
            real_by_id: s.reals.iter().enumerate().map(|(i, r)| (r.id, i)).collect(),
            lips,
            next_lip,
            fullnat_only: s.reals.iter().all(|r| r.xlat == Xlat::FullNat),
            has_nat: s.reals.iter().any(|r| r.xlat == Xlat::Nat),
        }
    }

    /// The position of real `id` in this pool.
    #[inline]
    pub fn real_index(&self, id: u32) -> Option<usize> {
        self.real_by_id.get(&id).copied()
    }

    /// One packet of `len` bytes to or from the real at position `i`; `inbound` is client to
    /// real server.
    #[inline]
    pub fn count_at(&mut self, i: usize, inbound: bool, len: u64) {
        let Some(c) = self.counters.get_mut(i) else { return };
        if inbound {
            c.inpkts += 1;
            c.inbytes += len;
        } else {
            c.outpkts += 1;
            c.outbytes += len;
        }
    }

    /// A connection to `real` (an index) was created (it starts inactive, as in LVS).
    #[inline]
    pub fn conn_added(&mut self, real: usize) {
        if let Some(v) = self.views.get_mut(real) {
            v.inactive += 1;
            let r = &self.reals[real];
            update_overload(&mut v.overloaded, v.active + v.inactive, r.u_threshold, r.l_threshold);
            self.counters[real].conns += 1;
        }
    }

    /// A connection to the real at position `i` went away; `active` says which count it was in.
    #[inline]
    pub fn conn_removed_at(&mut self, i: usize, active: bool) {
        let Some(v) = self.views.get_mut(i) else { return };
        if active {
            v.active = v.active.saturating_sub(1);
        } else {
            v.inactive = v.inactive.saturating_sub(1);
        }
        let r = &self.reals[i];
        update_overload(&mut v.overloaded, v.active + v.inactive, r.u_threshold, r.l_threshold);
    }

    /// A connection to the real at position `i` moved between inactive and active.
    #[inline]
    pub fn conn_activity_at(&mut self, i: usize, became_active: bool) {
        let Some(v) = self.views.get_mut(i) else { return };
        if became_active {
            v.inactive = v.inactive.saturating_sub(1);
            v.active += 1;
        } else {
            v.active = v.active.saturating_sub(1);
            v.inactive += 1;
        }
    }
}

/// All services of one worker of one family pair (VIP family `V`, real family `R`).
#[derive(Debug)]
pub struct Services<V: Addr = Ipv4Addr, R: Addr = V> {
    pub list: Vec<Service<V, R>>,
    by_key: HashMap<(Proto, V, u16), u32>,
    by_id: HashMap<u32, usize>,
    vips: HashSet<V>,
    lips: HashSet<R>,
    /// `(proto, addr, port)` of every NAT real server: where a reply that matched no connection
    /// on this worker may have come from (see [`Services::is_nat_source`]).
    nat_sources: HashSet<(Proto, R, u16)>,
    /// Some real server forwards in a mode other than FULLNAT.
    transit: bool,
    real_slots: Vec<RealSlot>,
}

impl<V: Addr, R: Addr> Default for Services<V, R> {
    fn default() -> Self {
        Services {
            list: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            vips: HashSet::new(),
            lips: HashSet::new(),
            nat_sources: HashSet::new(),
            transit: false,
            real_slots: Vec::new(),
        }
    }
}

impl<V: FromIp, R: FromIp> Services<V, R> {
    pub fn new(setup: &Setup, worker: u16) -> Services<V, R> {
        Services::rebuild(Services::default(), setup, worker)
    }

    /// The services of `setup` of this table's families, carrying per-real state over from `old`
    /// by id.
    pub fn rebuild(mut old: Services<V, R>, setup: &Setup, worker: u16) -> Services<V, R> {
        let mut s = Services { real_slots: vec![RealSlot::EMPTY; REAL_SLOTS], ..Services::default() };
        for (i, svc) in setup.services.iter().filter(|s| belongs::<V, R>(s)).enumerate() {
            let Some(vip) = V::from_ip(svc.vip) else { continue };
            for (j, r) in svc.reals.iter().enumerate() {
                let slot = &mut s.real_slots[real_slot(svc.id, r.id)];
                // First come keeps a shared slot; the others are found through the maps.
                if slot.ids == u64::MAX {
                    *slot = RealSlot { ids: ids(svc.id, r.id), svc: i as u32, real: j as u32 };
                }
            }
            let prev = old.by_id.get(&svc.id).copied();
            let prev = prev.and_then(|j| old.list.get_mut(j));
            s.by_key.insert((svc.proto, vip, svc.vport), i as u32);
            s.by_id.insert(svc.id, i);
            s.vips.insert(vip);
            s.lips.extend(svc.laddrs.iter().filter_map(|a| R::from_ip(*a)));
            s.transit |= !svc.reals.iter().all(|r| r.xlat == Xlat::FullNat);
            s.nat_sources.extend(
                svc.reals
                    .iter()
                    .filter(|r| r.xlat == Xlat::Nat)
                    .filter_map(|r| Some((svc.proto, R::from_ip(r.addr)?, r.port))),
            );
            s.list.push(Service::new(svc, setup, worker, prev));
        }
        s
    }

    /// Whether some real server forwards NAT, DR or TUN: then packets not to our addresses may
    /// still be ours to relay (NAT replies, ICMP errors about them).
    #[inline]
    pub fn relays_transit(&self) -> bool {
        self.transit
    }

    /// Whether a packet from `addr:port` could be a NAT real server's reply. Looked up only for a
    /// packet that matched no connection and is not to one of our addresses.
    #[inline]
    pub fn is_nat_source(&self, proto: Proto, addr: R, port: u16) -> bool {
        !self.nat_sources.is_empty() && self.nat_sources.contains(&(proto, addr, port))
    }

    /// Position of the service for a packet to (proto, vip, vport).
    #[inline]
    pub fn find(&self, proto: Proto, vip: V, vport: u16) -> Option<u32> {
        self.by_key.get(&(proto, vip, vport)).copied()
    }

    /// The service with stable id `id`.
    #[inline]
    pub fn by_id(&self, id: u32) -> Option<&Service<V, R>> {
        self.by_id.get(&id).and_then(|i| self.list.get(*i))
    }

    #[inline]
    pub fn by_id_mut(&mut self, id: u32) -> Option<&mut Service<V, R>> {
        match self.by_id.get(&id) {
            Some(i) => self.list.get_mut(*i),
            None => None,
        }
    }

    /// The service with id `service` and the position of its real `real`, for a connection's
    /// per-packet work: direct-mapped, with the maps by id as the fallback.
    #[inline]
    pub fn real_mut(&mut self, service: u32, real: u32) -> Option<(&mut Service<V, R>, usize)> {
        if let Some(slot) = self.real_slots.get(real_slot(service, real)) {
            if slot.ids == ids(service, real) {
                let (i, j) = (slot.svc as usize, slot.real as usize);
                return self.list.get_mut(i).map(|s| (s, j));
            }
        }
        let s = self.by_id_mut(service)?;
        let j = s.real_index(real)?;
        Some((s, j))
    }

    #[inline]
    pub fn is_vip(&self, a: V) -> bool {
        self.vips.contains(&a)
    }

    #[inline]
    pub fn is_lip(&self, a: R) -> bool {
        self.lips.contains(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::SchedKind;
    use crate::setup::ServiceSetup;

    #[test]
    fn local_ports_start_where_the_daemons_secret_says() {
        let mut s = setup(&[(1, &[1])]);
        let starts = |s: &Setup| (0..4u16).map(|w| lport_start(s, 1, w)).collect::<Vec<_>>();
        let a = starts(&s);
        assert_eq!(a, starts(&s), "the same daemon: the same start");
        s.conn.synproxy.key = [7; 16];
        let b = starts(&s);
        assert_ne!(a, b, "a restarted daemon (new secret) starts elsewhere");
        for p in a.iter().chain(&b) {
            assert!((s.conn.lport_min..=s.conn.lport_max).contains(p));
        }
        s.conn.lport_min = 5000;
        s.conn.lport_max = 5000;
        assert_eq!(lport_start(&s, 1, 0), 5000);
    }

    fn setup(services: &[(u32, &[u32])]) -> Setup {
        Setup {
            services: services
                .iter()
                .map(|&(id, reals)| ServiceSetup {
                    id,
                    proto: Proto::Tcp,
                    vip: Ipv4Addr::new(198, 18, 0, 100).into(),
                    vport: id as u16,
                    sched: SchedKind::Rr,
                    persistence_ms: None,
                    toa: false,
                    synproxy: false,
                    proxy_protocol: None,
                    laddrs: vec![Ipv4Addr::new(198, 18, 1, 100).into()],
                    reals: reals
                        .iter()
                        .map(|&r| RealSetup {
                            id: r,
                            addr: Ipv4Addr::from(0xc612_0100 + r).into(),
                            port: 80,
                            weight: 1,
                            u_threshold: 0,
                            l_threshold: 0,
                            xlat: crate::xmit::Xlat::FullNat,
                        })
                        .collect(),
                })
                .collect(),
            ports: vec![],
            routes: vec![],
            conn: crate::setup::ConnSetup::default(),
            workers: 1,
        }
    }

    /// Each family table takes exactly its services: IPv4, IPv6, NAT64 (IPv6 VIP, IPv4 FULLNAT
    /// reals); a service mixing families otherwise is in none.
    #[test]
    fn services_split_by_family() {
        let mut s = setup(&[(1, &[1]), (2, &[2]), (3, &[3]), (4, &[4])]);
        let v6 = |x: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, x));
        s.services[1].vip = v6(0x100);
        s.services[1].reals[0].addr = v6(0x11);
        s.services[1].laddrs = vec![v6(0x200)];
        s.services[2].vip = v6(0x101);
        // Service 4: an IPv6 VIP with an IPv4 NAT real is not NAT64 (FULLNAT only).
        s.services[3].vip = v6(0x102);
        s.services[3].reals[0].xlat = Xlat::Nat;
        let v4: Services = Services::new(&s, 0);
        let six: Services<Ipv6Addr> = Services::new(&s, 0);
        let nat64: Services<Ipv6Addr, Ipv4Addr> = Services::new(&s, 0);
        assert_eq!(v4.list.iter().map(|x| x.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(six.list.iter().map(|x| x.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(nat64.list.iter().map(|x| x.id).collect::<Vec<_>>(), vec![3]);
        assert!(six.is_vip(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100)));
        assert!(six.is_lip(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x200)));
        assert!(nat64.is_lip(Ipv4Addr::new(198, 18, 1, 100)));
        assert_eq!(six.find(Proto::Tcp, Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100), 2), Some(0));
        assert_eq!(six.list[0].reals[0].addr, Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x11));
    }

    /// Every (service, real) is found at its position, whether its direct-mapped slot is its own or
    /// shared (then through the maps), before and after a rebuild that reorders and removes; a
    /// removed real is not found.
    #[test]
    fn real_slots_find_every_real_and_follow_rebuilds() {
        // Enough reals that some must share a slot.
        let many: Vec<u32> = (1..=3 * REAL_SLOTS as u32).collect();
        let s1 = setup(&[(1, &many), (2, &[7, 8, 9])]);
        let mut sv: Services = Services::new(&s1, 0);
        let shared = many.iter().filter(|&&r| sv.real_slots[real_slot(1, r)].ids != ids(1, r)).count();
        assert!(shared > 0, "the test needs collisions");
        for (k, &r) in many.iter().enumerate() {
            let (s, i) = sv.real_mut(1, r).expect("found");
            assert_eq!((s.id, s.reals[i].id, i), (1, r, k));
        }
        for (k, r) in [7, 8, 9].into_iter().enumerate() {
            let (s, i) = sv.real_mut(2, r).unwrap();
            assert_eq!((s.id, i), (2, k));
        }
        // Service 2 first now, with its pool reversed and real 8 gone.
        let s2 = setup(&[(2, &[9, 7]), (1, &many[..10])]);
        sv = Services::rebuild(sv, &s2, 0);
        assert_eq!(sv.real_mut(2, 9).map(|(s, i)| (s.id, i)), Some((2, 0)));
        assert_eq!(sv.real_mut(2, 7).map(|(s, i)| (s.id, i)), Some((2, 1)));
        assert!(sv.real_mut(2, 8).is_none(), "a removed real is gone");
        assert!(sv.real_mut(1, many[10]).is_none());
        assert!(sv.real_mut(3, 7).is_none(), "an unknown service");
        assert_eq!(sv.real_mut(1, many[9]).map(|(s, i)| (s.id, i)), Some((1, 9)));
    }
}
