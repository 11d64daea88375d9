//! Persistence templates (LVS `-p`): a client keeps going to the same real of a service until its template
//! times out.
//!
//! Layout: a slab of `cap` slots holds the templates; a `hashbrown` map indexes them by
//! (service, client); a stack holds the free slots. Expiry is a clock hand sweeping the slab a bounded
//! number of slots per [`Persistence::expire`] call, so it works whatever mix of timeouts the services use
//! (a FIFO would stall behind a long-timeout head) and costs O(budget) per call.
//!
//! Invariants:
//! - Nothing allocates after [`Persistence::with_capacity`]: the slab and the free stack never grow, and the
//!   map is sized for twice `cap` so that hashbrown always rehashes in place (it only does so while at most
//!   half full) instead of growing when tombstones pile up.
//! - `map.len() + free.len() == cap`; a slot is live iff the map points at it.
//! - A template is valid while `now < expires`. Expired templates are never returned, even before the sweep
//!   reaches them; `lookup` reclaims one it trips over.

use crate::flow::{Addr, Millis};
use hashbrown::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

/// Templates are at capacity; the caller counts this and schedules the connection without persistence.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PersistError {
    Full,
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Full => f.write_str("persistence template table full"),
        }
    }
}

impl std::error::Error for PersistError {}

type Key<A> = (u32, A);

#[derive(Clone, Copy, Debug)]
struct Slot<A: Addr> {
    key: Key<A>,
    real: u32,
    expires: Millis,
}

/// How many slots an insert into a full table may sweep to make room, so one stale template does not
/// turn into an error while a little work would have freed it.
const RECLAIM_ON_FULL: usize = 16;

/// Per-worker persistence templates, fixed capacity, of one address family (IPv4 by default;
/// an IPv6 service's templates are keyed by the IPv6 client).
#[derive(Debug)]
pub struct Persistence<A: Addr = Ipv4Addr> {
    map: HashMap<Key<A>, u32>,
    slots: Box<[Slot<A>]>,
    free: Vec<u32>,
    hand: usize,
}

impl<A: Addr> Persistence<A> {
    /// Room for `cap` templates (at most `u32::MAX`); all memory is taken here.
    pub fn with_capacity(cap: usize) -> Self {
        let cap = cap.min(u32::MAX as usize);
        let empty = Slot { key: (0, A::UNSPECIFIED), real: 0, expires: 0 };
        let mut free = Vec::with_capacity(cap);
        // Reversed so slots are handed out from 0 upwards, which keeps live ones dense for the sweep.
        free.extend((0..cap as u32).rev());
        Persistence {
            map: HashMap::with_capacity(cap.saturating_mul(2)),
            slots: vec![empty; cap].into_boxed_slice(),
            free,
            hand: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The real of a live template for (service, client), refreshing nothing.
    pub fn lookup(&mut self, service: u32, client: A, now: Millis) -> Option<u32> {
        let key = (service, client);
        let idx = *self.map.get(&key)? as usize;
        let slot = self.slots[idx];
        if now < slot.expires {
            return Some(slot.real);
        }
        self.release(key, idx);
        None
    }

    /// Create or refresh the template for (service, client) to point at `real` until `now + timeout_ms`.
    pub fn insert(
        &mut self,
        service: u32,
        client: A,
        real: u32,
        timeout_ms: u64,
        now: Millis,
    ) -> Result<(), PersistError> {
        let key = (service, client);
        let expires = now.saturating_add(timeout_ms);
        if let Some(&idx) = self.map.get(&key) {
            self.slots[idx as usize] = Slot { key, real, expires };
            return Ok(());
        }
        if self.free.is_empty() {
            self.expire(now, RECLAIM_ON_FULL);
        }
        let idx = self.free.pop().ok_or(PersistError::Full)?;
        self.slots[idx as usize] = Slot { key, real, expires };
        self.map.insert(key, idx);
        Ok(())
    }

    /// Drop the templates of `service` that point at `real` (removed from the pool). O(capacity): this is
    /// a control-plane event, not a per-packet one.
    pub fn forget_real(&mut self, service: u32, real: u32) {
        self.forget_where(|s| s.key.0 == service && s.real == real);
    }

    /// Drop every template of `service` (service deleted or its persistence turned off). O(capacity).
    pub fn forget_service(&mut self, service: u32) {
        self.forget_where(|s| s.key.0 == service);
    }

    /// Every live template as (service, client, real, expires), in slot order; expired ones that
    /// no sweep has dropped yet are included (callers compare `expires` with their clock).
    /// O(capacity): control plane only.
    pub fn iter(&self) -> impl Iterator<Item = (u32, A, u32, Millis)> + '_ {
        self.map.iter().map(|(key, &idx)| {
            let slot = &self.slots[idx as usize];
            (key.0, key.1, slot.real, slot.expires)
        })
    }

    /// Sweep at most `budget` slots from where the last call stopped, dropping expired templates. Returns
    /// how many were dropped. A full turn of the slab takes `capacity / budget` calls, which bounds how
    /// long an expired template can hold its slot (unless looked up or reclaimed by a full insert first).
    pub fn expire(&mut self, now: Millis, budget: usize) -> usize {
        let cap = self.slots.len();
        if cap == 0 || self.map.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        for _ in 0..budget.min(cap) {
            let idx = self.hand;
            self.hand = if idx + 1 == cap { 0 } else { idx + 1 };
            let slot = self.slots[idx];
            if now >= slot.expires && self.is_live(slot.key, idx) {
                self.release(slot.key, idx);
                dropped += 1;
            }
        }
        dropped
    }

    /// Whether slot `idx` is the live home of `key` (free slots keep stale contents).
    fn is_live(&self, key: Key<A>, idx: usize) -> bool {
        self.map.get(&key).is_some_and(|&i| i as usize == idx)
    }

    fn release(&mut self, key: Key<A>, idx: usize) {
        self.map.remove(&key);
        // Cannot exceed its capacity: every pushed index was popped before.
        self.free.push(idx as u32);
    }

    fn forget_where(&mut self, doomed: impl Fn(&Slot<A>) -> bool) {
        for idx in 0..self.slots.len() {
            let slot = self.slots[idx];
            if doomed(&slot) && self.is_live(slot.key, idx) {
                self.release(slot.key, idx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000 + i)
    }

    #[test]
    fn same_client_same_real_until_expiry() {
        let mut p: Persistence = Persistence::with_capacity(8);
        assert_eq!(p.lookup(1, ip(1), 0), None);
        p.insert(1, ip(1), 3, 1000, 0).unwrap();
        assert_eq!(p.lookup(1, ip(1), 0), Some(3));
        assert_eq!(p.lookup(1, ip(1), 999), Some(3), "lookup refreshes nothing");
        assert_eq!(p.lookup(2, ip(1), 10), None, "per service");
        assert_eq!(p.lookup(1, ip(2), 10), None, "per client");
        assert_eq!(p.lookup(1, ip(1), 1000), None, "expired at now + timeout, before any expire() call");
        assert_eq!(p.len(), 0, "lookup reclaimed it");
    }

    #[test]
    fn refresh_extends_and_can_repoint() {
        let mut p = Persistence::with_capacity(4);
        p.insert(1, ip(1), 3, 1000, 0).unwrap();
        p.insert(1, ip(1), 3, 1000, 900).unwrap();
        assert_eq!(p.lookup(1, ip(1), 1500), Some(3));
        p.insert(1, ip(1), 4, 1000, 1500).unwrap();
        assert_eq!(p.lookup(1, ip(1), 1600), Some(4));
        assert_eq!(p.len(), 1);
        assert_eq!(p.expire(1600, 100), 0, "a refreshed template is not swept");
    }

    #[test]
    fn expire_is_amortised() {
        let mut p = Persistence::with_capacity(100);
        for i in 0..100 {
            p.insert(1, ip(i), 0, 10, 0).unwrap();
        }
        assert_eq!(p.expire(5, 1000), 0, "nothing is due yet");
        assert_eq!(p.expire(10, 30), 30, "budget bounds the work");
        assert_eq!(p.len(), 70);
        assert_eq!(p.expire(10, 30), 30);
        assert_eq!(p.expire(10, 1000), 40);
        assert!(p.is_empty());
        assert_eq!(p.expire(10, 1000), 0);
    }

    #[test]
    fn mixed_timeouts_do_not_block_expiry() {
        let mut p = Persistence::with_capacity(4);
        p.insert(1, ip(1), 0, 1_000_000, 0).unwrap();
        p.insert(2, ip(2), 0, 10, 0).unwrap();
        assert_eq!(p.expire(20, 4), 1);
        assert_eq!(p.lookup(1, ip(1), 20), Some(0));
    }

    #[test]
    fn capacity_full() {
        let mut p = Persistence::with_capacity(2);
        p.insert(1, ip(1), 0, 100, 0).unwrap();
        p.insert(1, ip(2), 0, 500, 0).unwrap();
        assert_eq!(p.insert(1, ip(3), 0, 100, 0), Err(PersistError::Full));
        assert_eq!(p.insert(1, ip(1), 1, 100, 0), Ok(()), "refreshing needs no room");
        // Once one is stale, a full insert reclaims it rather than failing.
        assert_eq!(p.insert(1, ip(3), 0, 100, 100), Ok(()));
        assert_eq!(p.len(), 2);
        assert_eq!(p.lookup(1, ip(2), 100), Some(0));
        assert_eq!(p.insert(1, ip(4), 0, 100, 100), Err(PersistError::Full), "nothing stale left");
        let mut z = Persistence::with_capacity(0);
        assert_eq!(z.insert(1, ip(1), 0, 100, 0), Err(PersistError::Full));
        assert_eq!(z.expire(0, 10), 0);
    }

    #[test]
    fn forget_real_and_service() {
        let mut p = Persistence::with_capacity(16);
        for i in 0..6 {
            p.insert(1, ip(i), i % 3, 100, 0).unwrap();
            p.insert(2, ip(i), i % 3, 100, 0).unwrap();
        }
        p.forget_real(1, 2);
        assert_eq!(p.len(), 10);
        assert_eq!(p.lookup(1, ip(2), 1), None);
        assert_eq!(p.lookup(1, ip(5), 1), None);
        assert_eq!(p.lookup(2, ip(2), 1), Some(2), "other services untouched");
        assert_eq!(p.lookup(1, ip(1), 1), Some(1));
        p.forget_service(2);
        assert_eq!(p.len(), 4);
        // Slots freed by forget are reusable.
        for i in 10..22 {
            p.insert(3, ip(i), 0, 100, 0).unwrap();
        }
        assert_eq!(p.insert(3, ip(99), 0, 100, 0), Err(PersistError::Full));
    }

    #[test]
    fn churn_never_grows_the_map() {
        let cap = 1000;
        let mut p = Persistence::with_capacity(cap);
        let (map_cap, free_cap) = (p.map.capacity(), p.free.capacity());
        let mut now = 0;
        for round in 0..200u32 {
            for i in 0..cap as u32 {
                let _ = p.insert(round, ip(round * 7919 + i), i, 5, now);
            }
            now += 10;
            p.expire(now, cap);
            // capacity() is items + headroom: tombstones lower it until hashbrown rehashes in place,
            // and only a reallocation could raise it past the initial value.
            assert!(p.map.capacity() <= map_cap, "map grew: {} > {map_cap}", p.map.capacity());
            assert_eq!(p.free.capacity(), free_cap);
        }
    }
}
