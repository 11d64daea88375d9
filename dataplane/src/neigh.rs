//! The per-worker neighbour (ARP) table.
//!
//! Invariants:
//! - Fixed capacity: slots and each slot's packet queue are allocated at construction, so resolving,
//!   queueing and learning never allocate.
//! - Only addresses we asked for, or that asked us, get entries: an unsolicited ARP reply never
//!   creates one (no cache poisoning), see [`Neighbours::learn`].
//! - Entries age out: a resolved entry is re-probed shortly before `timeout` and dropped if the
//!   neighbour stays silent; an unresolved one is retried [`MAX_TRIES`] times, once a second, and then
//!   its queued packets are dropped (counted by the caller).
//! - `poll` visits a bounded number of slots per call, so its cost per burst is constant.
//! - The per-packet path finds a neighbour's slot through a direct-mapped array indexed by the
//!   address's low bits ([`RECENT`] entries, each checked against the slot's address), so a
//!   gateway's few next hops, or the hosts of a /24, cost no hash lookup; the hash map is the
//!   fallback for addresses sharing low bits, and the owner of every slot.
use std::collections::VecDeque;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::flow::{Addr, Millis};
use crate::wire::EthernetAddress;

/// ARP requests per unresolved neighbour before giving up.
pub const MAX_TRIES: u8 = 3;
/// Time between ARP requests for one neighbour.
pub const RETRY_MS: Millis = 1000;
/// A resolved entry is re-probed this long before it expires.
pub const REFRESH_MS: Millis = 5000;
/// Slots `poll` looks at per call.
const POLL_SLOTS: usize = 8;
/// Entries of the direct-mapped slot array (a power of two).
pub const RECENT: usize = 1024;
/// An empty direct-mapped entry.
const NO_SLOT: u32 = u32::MAX;

#[inline]
fn recent_index<A: Addr>(ip: A) -> usize {
    ip.fold64() as usize & (RECENT - 1)
}

#[derive(Debug)]
struct Slot<F, A> {
    ip: A,
    port: usize,
    mac: Option<EthernetAddress>,
    /// When the mac was last confirmed.
    confirmed: Millis,
    last_request: Millis,
    tries: u8,
    in_use: bool,
    queue: VecDeque<F>,
}

/// What the caller must do after [`Neighbours::resolve`].
#[derive(Debug)]
pub enum Resolved<F> {
    /// Send the frame to this MAC now.
    Send(F, EthernetAddress),
    /// Queued; also send an ARP request for the address on the given port.
    QueuedRequest,
    /// Queued behind a request already in flight.
    Queued,
    /// The per-neighbour queue is full.
    QueueFull(F),
    /// No free slot for a new neighbour.
    TableFull(F),
}

/// Generic over the address family ([`Addr`], IPv4 by default): ARP's table and NDP's are the same
/// structure.
#[derive(Debug)]
pub struct Neighbours<F, A: Addr = Ipv4Addr> {
    by_ip: HashMap<A, u32>,
    /// Direct-mapped: the slot of the last address seen with these low bits (verified on use).
    recent: Vec<u32>,
    slots: Vec<Slot<F, A>>,
    free: Vec<u32>,
    timeout: Millis,
    queue_cap: usize,
    cursor: usize,
    /// Frames held in all queues.
    held: usize,
}

impl<F, A: Addr> Neighbours<F, A> {
    pub fn new(capacity: usize, queue_cap: usize, timeout: Millis) -> Neighbours<F, A> {
        let capacity = capacity.max(1);
        let slots = (0..capacity)
            .map(|_| Slot {
                ip: A::UNSPECIFIED,
                port: 0,
                mac: None,
                confirmed: 0,
                last_request: 0,
                tries: 0,
                in_use: false,
                queue: VecDeque::with_capacity(queue_cap),
            })
            .collect();
        Neighbours {
            by_ip: HashMap::with_capacity(capacity),
            recent: vec![NO_SLOT; RECENT],
            slots,
            free: (0..capacity as u32).rev().collect(),
            timeout: timeout.max(2 * REFRESH_MS),
            queue_cap,
            cursor: 0,
            held: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Frames waiting for resolution, over all neighbours.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The slot of `ip`, direct-mapped first.
    #[inline]
    fn find(&self, ip: A) -> Option<u32> {
        let r = self.recent[recent_index(ip)];
        if let Some(s) = self.slots.get(r as usize) {
            if s.in_use && s.ip == ip {
                return Some(r);
            }
        }
        self.by_ip.get(&ip).copied()
    }

    /// [`Self::find`], remembering the answer in the direct-mapped array.
    #[inline]
    fn find_mut(&mut self, ip: A) -> Option<u32> {
        let i = self.find(ip)?;
        self.recent[recent_index(ip)] = i;
        Some(i)
    }

    /// The MAC for `ip` if resolved and not expired.
    #[inline]
    pub fn lookup(&self, ip: A, now: Millis) -> Option<EthernetAddress> {
        let s = &self.slots[self.find(ip)? as usize];
        s.mac.filter(|_| now < s.confirmed + self.timeout)
    }

    fn alloc(&mut self, ip: A, port: usize) -> Option<u32> {
        let i = self.free.pop()?;
        let s = &mut self.slots[i as usize];
        s.ip = ip;
        s.port = port;
        s.mac = None;
        s.confirmed = 0;
        s.last_request = 0;
        s.tries = 0;
        s.in_use = true;
        self.by_ip.insert(ip, i);
        self.recent[recent_index(ip)] = i;
        Some(i)
    }

    /// Sends `frame` to `ip` (on `port`) if resolved, otherwise queues it.
    pub fn resolve(&mut self, ip: A, port: usize, frame: F, now: Millis) -> Resolved<F> {
        let i = match self.find_mut(ip) {
            Some(i) => i,
            None => match self.alloc(ip, port) {
                Some(i) => i,
                None => return Resolved::TableFull(frame),
            },
        };
        let timeout = self.timeout;
        let s = &mut self.slots[i as usize];
        if let Some(mac) = s.mac.filter(|_| now < s.confirmed + timeout) {
            return Resolved::Send(frame, mac);
        }
        if s.queue.len() >= self.queue_cap {
            return Resolved::QueueFull(frame);
        }
        s.queue.push_back(frame);
        self.held += 1;
        if s.tries == 0 || now >= s.last_request + RETRY_MS {
            s.tries = s.tries.saturating_add(1);
            s.last_request = now;
            Resolved::QueuedRequest
        } else {
            Resolved::Queued
        }
    }

    /// Records `ip` at `mac` if we have an entry for it (we asked) or `create` is set (it asked us).
    /// Queued frames are handed to `release` in order. Returns false when nothing was learned.
    pub fn learn(
        &mut self,
        ip: A,
        port: usize,
        mac: EthernetAddress,
        now: Millis,
        create: bool,
        mut release: impl FnMut(F, EthernetAddress, usize),
    ) -> bool {
        let i = match self.find_mut(ip) {
            Some(i) => i,
            None if create => match self.alloc(ip, port) {
                Some(i) => i,
                None => return false,
            },
            None => return false,
        };
        let s = &mut self.slots[i as usize];
        s.mac = Some(mac);
        s.port = port;
        s.confirmed = now;
        s.tries = 0;
        while let Some(f) = s.queue.pop_front() {
            self.held -= 1;
            release(f, mac, port);
        }
        true
    }

    /// Ageing and retries for a few slots. `request(ip, port)` must send an ARP request; `dropped`
    /// receives frames of neighbours that never answered.
    pub fn poll(&mut self, now: Millis, mut request: impl FnMut(A, usize), mut dropped: impl FnMut(F)) {
        let n = self.slots.len();
        for _ in 0..POLL_SLOTS.min(n) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let s = &mut self.slots[i];
            if !s.in_use {
                continue;
            }
            let resolved_fresh = s.mac.is_some() && now < s.confirmed + self.timeout;
            if resolved_fresh {
                // Re-probe before expiry so a busy neighbour never drops to unresolved.
                if now + REFRESH_MS >= s.confirmed + self.timeout && now >= s.last_request + RETRY_MS {
                    s.last_request = now;
                    request(s.ip, s.port);
                }
                continue;
            }
            if s.mac.is_some() {
                // Expired without answering the re-probes.
                s.mac = None;
                s.tries = 0;
            }
            if s.queue.is_empty() && s.tries == 0 {
                self.release_slot(i);
                continue;
            }
            if now >= s.last_request + RETRY_MS {
                if s.tries >= MAX_TRIES {
                    while let Some(f) = s.queue.pop_front() {
                        self.held -= 1;
                        dropped(f);
                    }
                    self.release_slot(i);
                } else {
                    s.tries += 1;
                    s.last_request = now;
                    request(s.ip, s.port);
                }
            }
        }
    }

    fn release_slot(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.in_use = false;
        s.mac = None;
        self.by_ip.remove(&s.ip);
        self.free.push(i as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 1, n)
    }

    /// The same table keyed by IPv6 addresses (NDP's neighbour cache).
    #[test]
    fn ipv6_neighbours() {
        let a: std::net::Ipv6Addr = "2001:2:0:1::11".parse().unwrap();
        let mut n: Neighbours<u32, std::net::Ipv6Addr> = Neighbours::new(4, 2, 60_000);
        assert!(matches!(n.resolve(a, 1, 7, 0), Resolved::QueuedRequest));
        let mut released = vec![];
        assert!(n.learn(a, 1, MAC, 5, false, |f, m, p| released.push((f, m, p))));
        assert_eq!(released, vec![(7, MAC, 1)]);
        assert!(matches!(n.resolve(a, 1, 8, 6), Resolved::Send(8, m) if m == MAC));
    }

    /// Addresses sharing their low 10 bits share a direct-mapped entry: each still finds its own
    /// slot, learning and sending stay right, and a released slot reused for another address is
    /// never taken for the old one.
    #[test]
    fn direct_mapped_collisions_and_reuse() {
        let a = Ipv4Addr::new(198, 18, 1, 7);
        let b = Ipv4Addr::new(198, 19, 1, 7); // same low 10 bits as a
        assert_eq!(recent_index(a), recent_index(b));
        let mut n: Neighbours<u32> = Neighbours::new(2, 4, 60_000);
        let mac_b = EthernetAddress([2, 0, 0, 0, 0, 0xb]);
        assert!(n.learn(a, 0, MAC, 0, true, |_, _, _| {}));
        assert!(n.learn(b, 1, mac_b, 0, true, |_, _, _| {}));
        for _ in 0..3 {
            assert!(matches!(n.resolve(a, 0, 1, 10), Resolved::Send(1, m) if m == MAC));
            assert!(matches!(n.resolve(b, 1, 2, 10), Resolved::Send(2, m) if m == mac_b));
        }
        assert_eq!(n.lookup(a, 10), Some(MAC));
        assert_eq!(n.lookup(b, 10), Some(mac_b));
        // Both slots age out (never re-confirmed), then a third address takes one of them.
        let mut now = 10;
        while !n.is_empty() && now < 10_000_000 {
            now += 1_000;
            n.poll(now, |_, _| {}, |_| {});
        }
        assert_eq!(n.len(), 0, "silent neighbours age out");
        let c = Ipv4Addr::new(198, 18, 5, 7); // same low bits again
        assert!(n.learn(c, 0, MAC, now, true, |_, _, _| {}));
        assert_eq!(n.lookup(a, now), None, "a reused slot is not the old address's");
        assert_eq!(n.lookup(b, now), None);
        assert_eq!(n.lookup(c, now), Some(MAC));
    }

    #[test]
    fn queue_then_learn_releases_in_order() {
        let mut t: Neighbours<u32> = Neighbours::new(4, 2, 60_000);
        assert!(matches!(t.resolve(ip(1), 1, 10, 0), Resolved::QueuedRequest));
        assert!(matches!(t.resolve(ip(1), 1, 11, 1), Resolved::Queued));
        assert!(matches!(t.resolve(ip(1), 1, 12, 2), Resolved::QueueFull(12)));
        let mut got = vec![];
        assert!(t.learn(ip(1), 1, MAC, 5, false, |f, m, p| got.push((f, m, p))));
        assert_eq!(got, vec![(10, MAC, 1), (11, MAC, 1)]);
        assert!(matches!(t.resolve(ip(1), 1, 13, 6), Resolved::Send(13, MAC)));
        assert_eq!(t.lookup(ip(1), 6), Some(MAC));
    }

    #[test]
    fn unsolicited_replies_do_not_create_entries() {
        let mut t: Neighbours<u32> = Neighbours::new(4, 2, 60_000);
        assert!(!t.learn(ip(7), 0, MAC, 0, false, |_, _, _| {}));
        assert!(t.is_empty());
        assert!(t.learn(ip(7), 0, MAC, 0, true, |_, _, _| {}));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unresolved_neighbour_retries_then_drops() {
        let mut t: Neighbours<u32> = Neighbours::new(2, 4, 60_000);
        assert!(matches!(t.resolve(ip(2), 0, 1, 0), Resolved::QueuedRequest));
        let mut requests = 0;
        let mut dropped = vec![];
        for now in (0..10_000).step_by(100) {
            t.poll(now, |_, _| requests += 1, |f| dropped.push(f));
        }
        assert_eq!(requests as u8, MAX_TRIES - 1, "first request was sent by resolve");
        assert_eq!(dropped, vec![1]);
        assert!(t.is_empty());
    }

    #[test]
    fn resolved_entries_are_reprobed_and_expire_when_silent() {
        let timeout = 20_000;
        let mut t: Neighbours<u32> = Neighbours::new(2, 4, timeout);
        t.learn(ip(3), 0, MAC, 0, true, |_, _, _| {});
        let mut probes = vec![];
        let mut now = 0;
        while now < timeout + 5000 {
            t.poll(now, |a, _| probes.push((now, a)), |_| {});
            now += 100;
        }
        assert!(!probes.is_empty() && probes[0].0 >= timeout - REFRESH_MS, "{probes:?}");
        assert_eq!(t.lookup(ip(3), now), None);
        // a table full of neighbours refuses new ones without allocating
        let mut t: Neighbours<u32> = Neighbours::new(1, 1, timeout);
        t.learn(ip(4), 0, MAC, 0, true, |_, _, _| {});
        assert!(matches!(t.resolve(ip(5), 0, 9, 0), Resolved::TableFull(9)));
    }
}
