//! VRRP address adoption: which VIPs and local addresses ARP may claim, and the gratuitous ARPs
//! that announce an address this gateway just took over.
//!
//! keepalived, running on rvsd's kernel interfaces, decides which gateway is VRRP master and puts
//! the virtual addresses (VIPs, local addresses) on the master's interfaces; the control plane
//! watches them and publishes the set in [`AdoptSetup`] (docs/ha.md, "VRRP failover").
//!
//! Invariants:
//! - Adoption off (no `AdoptSetup`): every VIP and local address is claimed, as without VRRP.
//! - Adoption on: an ARP request for a VIP or local address is answered only while the address
//!   is adopted; port addresses are always answered. Packets that still arrive for an address
//!   not adopted are served all the same: a client or real server whose cache still points here
//!   during a takeover keeps its connections.
//! - An (address, port) pair that becomes adopted is announced `garp_count` times,
//!   `garp_interval_ms` apart, by worker 0 alone (one announcement per pair, not one per worker);
//!   an address dropped before its announcements are done stops being announced.
use std::net::Ipv4Addr;

use hashbrown::HashSet;

use crate::flow::Millis;
use crate::frame::FramePool;
use crate::outbox::Outbox;
use crate::setup::AdoptSetup;
use crate::stats::Event as E;
use crate::worker::Worker;

/// One (address, port) still to be announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announce {
    addr: Ipv4Addr,
    port: usize,
    /// Announcements left.
    left: u32,
    /// When the next one is due (0: at the next poll).
    at: Millis,
}

/// A worker's view of the adopted addresses.
#[derive(Debug, Default)]
pub(crate) struct Adoption {
    on: bool,
    pairs: HashSet<(Ipv4Addr, usize)>,
    addrs: HashSet<Ipv4Addr>,
    pending: Vec<Announce>,
    interval: Millis,
}

impl Adoption {
    /// Takes the published set. `announcer`: this worker sends the gratuitous ARPs; pairs naming
    /// a port beyond `nports` are ignored.
    pub(crate) fn update(&mut self, s: Option<&AdoptSetup>, announcer: bool, nports: usize) {
        let Some(s) = s else {
            *self = Adoption::default();
            return;
        };
        let new: HashSet<(Ipv4Addr, usize)> = s.addrs.iter().copied().filter(|&(_, p)| p < nports).collect();
        self.pending.retain(|a| new.contains(&(a.addr, a.port)));
        if announcer && s.garp_count > 0 {
            for &(addr, port) in &new {
                // Newly adopted; also everything when adoption was just turned on.
                if !self.on || !self.pairs.contains(&(addr, port)) {
                    self.pending.retain(|a| (a.addr, a.port) != (addr, port));
                    self.pending.push(Announce { addr, port, left: s.garp_count, at: 0 });
                }
            }
        }
        self.on = true;
        self.interval = s.garp_interval_ms;
        self.addrs = new.iter().map(|&(a, _)| a).collect();
        self.pairs = new;
    }

    /// Whether ARP may claim `a`, a VIP or local address.
    #[inline]
    pub(crate) fn claims(&self, a: Ipv4Addr) -> bool {
        !self.on || self.addrs.contains(&a)
    }

    /// Calls `send(addr, port)` for every announcement due at `now`.
    fn due(&mut self, now: Millis, mut send: impl FnMut(Ipv4Addr, usize)) {
        let interval = self.interval;
        for a in self.pending.iter_mut().filter(|a| a.at <= now) {
            send(a.addr, a.port);
            a.left -= 1;
            a.at = now + interval;
        }
        self.pending.retain(|a| a.left > 0);
    }

    pub(crate) fn announcing(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl<P: FramePool> Worker<P> {
    /// Sends the gratuitous ARPs that are due (worker 0 only has any).
    pub(crate) fn garp_poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        if !self.adopt.announcing() {
            return;
        }
        let (pool, ports, stats) = (&mut self.pool, &self.ports, &*self.stats);
        self.adopt.due(now, |addr, port| {
            match ports.get(port).and_then(|p| crate::arp::arp_frame(pool, p, addr, addr)) {
                Some(f) => {
                    stats.inc(E::GarpSent);
                    out.emit(stats, port, f);
                }
                None => stats.inc(E::NoMbuf),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);

    fn setup(addrs: &[(Ipv4Addr, usize)]) -> AdoptSetup {
        AdoptSetup { addrs: addrs.to_vec(), garp_count: 3, garp_interval_ms: 100 }
    }

    fn sent(ad: &mut Adoption, now: Millis) -> Vec<(Ipv4Addr, usize)> {
        let mut v = Vec::new();
        ad.due(now, |a, p| v.push((a, p)));
        v
    }

    #[test]
    fn off_claims_everything_on_claims_adopted_only() {
        let mut ad = Adoption::default();
        assert!(ad.claims(A));
        ad.update(Some(&setup(&[])), true, 2);
        assert!(!ad.claims(A));
        ad.update(Some(&setup(&[(A, 0)])), true, 2);
        assert!(ad.claims(A) && !ad.claims(B));
        ad.update(None, true, 2);
        assert!(ad.claims(B), "adoption off again claims every address");
    }

    #[test]
    fn new_pairs_are_announced_count_times_spaced_out() {
        let mut ad = Adoption::default();
        ad.update(Some(&setup(&[(A, 0), (B, 1)])), true, 2);
        let mut first = sent(&mut ad, 5);
        first.sort();
        assert_eq!(first, vec![(A, 0), (B, 1)]);
        assert!(sent(&mut ad, 104).is_empty(), "not before the interval");
        assert_eq!(sent(&mut ad, 105).len(), 2);
        assert_eq!(sent(&mut ad, 205).len(), 2);
        assert!(sent(&mut ad, 10_000).is_empty(), "three each, then done");
        assert!(!ad.announcing());
        // Unchanged set: nothing new to announce; one pair more: only it.
        ad.update(Some(&setup(&[(A, 0), (B, 1)])), true, 2);
        assert!(!ad.announcing());
        ad.update(Some(&setup(&[(A, 0), (B, 1), (A, 1)])), true, 2);
        assert_eq!(sent(&mut ad, 20_000), vec![(A, 1)]);
    }

    #[test]
    fn dropped_before_done_stops_readopted_starts_over() {
        let mut ad = Adoption::default();
        ad.update(Some(&setup(&[(A, 0)])), true, 2);
        assert_eq!(sent(&mut ad, 0).len(), 1);
        ad.update(Some(&setup(&[])), true, 2);
        assert!(!ad.announcing(), "a dropped address is no longer announced");
        ad.update(Some(&setup(&[(A, 0)])), true, 2);
        for t in [10, 110, 210] {
            assert_eq!(sent(&mut ad, t), vec![(A, 0)]);
        }
        assert!(!ad.announcing());
    }

    #[test]
    fn only_the_announcer_announces_and_bad_ports_are_ignored() {
        let mut ad = Adoption::default();
        ad.update(Some(&setup(&[(A, 0), (B, 7)])), false, 2);
        assert!(!ad.announcing());
        assert!(ad.claims(A) && !ad.claims(B), "a pair on a port that does not exist is ignored");
        let mut ad = Adoption::default();
        ad.update(Some(&AdoptSetup { garp_count: 0, ..setup(&[(A, 0)]) }), true, 2);
        assert!(!ad.announcing() && ad.claims(A), "garp_count 0 adopts without announcing");
    }
}
