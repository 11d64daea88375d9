//! The worker's control-plane side: adopting a new configuration between bursts, the queries the
//! control thread asks (per-real counts, connection pages), zeroing counters, and the gauges.
//!
//! Invariants:
//! - Everything here runs between bursts, on the worker's own thread; nothing here is on the
//!   per-packet path, so it may allocate.
//! - [`Worker::apply`] keeps every connection's real server (connections name it by id) and
//!   carries per-real counts and counters over by id.
use std::net::IpAddr;

use hashbrown::HashSet;

use crate::conn::ConnId;
use crate::flow::{Millis, Proto};
use crate::frame::FramePool;
use crate::service::Counters;
use crate::setup::Setup;
use crate::stats::Gauge;
use crate::worker::Worker;

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
    pub client: (IpAddr, u16),
    pub vip: (IpAddr, u16),
    /// The local address and port: FULLNAT only.
    pub lip: Option<(IpAddr, u16)>,
    /// The connection's forwarding mode.
    pub xlat: crate::xmit::Xlat,
    pub rs: (IpAddr, u16),
    pub state: &'static str,
    pub expires_ms: Millis,
    pub service: u32,
}

impl<P: FramePool> Worker<P> {
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
        self.services = crate::service::Services::rebuild(old, setup, self.index);
        self.apply6(setup);
        self.expire_on_real_removed = setup.conn.expire_on_real_removed;
        // `ipvsadm --set`: each connection takes the new timeout at its next packet or state change.
        self.conns.set_timeouts(setup.conn.timeouts);
        if self.expire_on_real_removed && !removed.is_empty() {
            let doomed: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| removed.contains(&(c.service(), c.real())))
                .map(|(id, _)| id)
                .collect();
            for id in doomed {
                self.release(id);
            }
            self.stats.set(Gauge::Conns, self.conns.len() as u64);
        }
    }

    /// Per-real connection counts and counters of this worker, for the control plane.
    pub fn real_counts(&self) -> Vec<RealCounts> {
        let mut v = Vec::new();
        fn counts<V: crate::flow::Addr, R: crate::flow::Addr>(
            list: &[crate::service::Service<V, R>],
            v: &mut Vec<RealCounts>,
        ) {
            for s in list {
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
        }
        counts(&self.services.list, &mut v);
        counts(&self.services6.list, &mut v);
        counts(&self.nat64.list, &mut v);
        v
    }

    /// Zeroes traffic counters of one service (by id) or of all.
    pub fn zero(&mut self, service: Option<u32>) {
        let all = self.services.list.iter_mut().map(|s| (s.id, &mut s.counters));
        let all = all.chain(self.services6.list.iter_mut().map(|s| (s.id, &mut s.counters)));
        let all = all.chain(self.nat64.list.iter_mut().map(|s| (s.id, &mut s.counters)));
        for (id, counters) in all {
            if service.is_none_or(|x| x == id) {
                counters.iter_mut().for_each(|c| *c = Counters::default());
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
        let ip = |(a, p): (std::net::Ipv4Addr, u16)| (IpAddr::V4(a), p);
        // NAT64 entries hold their IPv4 side as IPv4-mapped addresses: shown as IPv4.
        let ip6 = |(a, p): (std::net::Ipv6Addr, u16)| match a.to_ipv4_mapped() {
            Some(a4) => (IpAddr::V4(a4), p),
            None => (IpAddr::V6(a), p),
        };
        let views4 = self.conns.iter().map(|(_, c)| {
            let k = c.client_key();
            ConnView {
                proto: c.proto(),
                client: (IpAddr::V4(k.src), k.sport),
                vip: ip(c.vip()),
                lip: (c.xlat() == crate::xmit::Xlat::FullNat).then(|| ip(c.lip())),
                xlat: c.xlat(),
                rs: ip(c.rs()),
                state: if c.proto() == Proto::Udp { "UDP" } else { c.state().name() },
                expires_ms: c.expires_in(now),
                service: c.service(),
            }
        });
        let views6 = self.conns6.iter().map(|(_, c)| {
            let k = c.client_key();
            ConnView {
                proto: c.proto(),
                client: (IpAddr::V6(k.src), k.sport),
                vip: ip6(c.vip()),
                lip: (c.xlat() == crate::xmit::Xlat::FullNat).then(|| ip6(c.lip())),
                xlat: c.xlat(),
                rs: ip6(c.rs()),
                state: if c.proto() == Proto::Udp { "UDP" } else { c.state().name() },
                expires_ms: c.expires_in(now),
                service: c.service(),
            }
        });
        for cv in views4.chain(views6) {
            if service.is_some_and(|id| id != cv.service) {
                continue;
            }
            if total >= offset && (v.len() as u64) < limit {
                v.push(cv);
            }
            total += 1;
        }
        (total, v)
    }

    /// Publishes the gauges people and the drain loop read.
    pub(crate) fn publish_gauges(&self) {
        self.stats.set(Gauge::Conns, (self.conns.len() + self.conns6.len()) as u64);
        self.stats.set(Gauge::Neighbours, (self.neigh.len() + self.neigh6.len()) as u64);
        self.stats.set(Gauge::SynproxyHalfOpen, (self.sp.len() + self.sp6.len()) as u64);
        self.stats.set(Gauge::SynproxyHeld, (self.sp.held() + self.sp6.held()) as u64);
        self.stats.set(Gauge::NeighHeld, (self.neigh.held() + self.neigh6.held()) as u64);
        self.stats.set(Gauge::FragDatagrams, self.frags.len() as u64);
        self.stats.set(Gauge::FragHeld, self.frags.held() as u64);
        self.stats.set(
            Gauge::ConnsActive,
            self.services
                .list
                .iter()
                .flat_map(|s| &s.views)
                .chain(self.services6.list.iter().flat_map(|s| &s.views))
                .chain(self.nat64.list.iter().flat_map(|s| &s.views))
                .map(|v| v.active as u64)
                .sum(),
        );
    }
}
