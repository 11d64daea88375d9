//! Per-worker FULLNAT connection table.
//!
//! One [`ConnTable`] per worker core, owned by that core: no locks, no atomics, no sharing.
//!
//! A FULLNAT connection has two tuples, each indexed exactly as it arrives on the wire:
//! - the client tuple `client:cport -> VIP:vport` ([`Dir::Original`], LVS "input");
//! - the reply tuple `RS:rport -> LIP:lport` ([`Dir::Reply`], LVS "output").
//!
//! The rewrite follows from the two: a packet received in `Original` leaves as
//! `LIP:lport -> RS:rport` (the reply tuple reversed), one received in `Reply` leaves as
//! `VIP:vport -> client:cport` (the client tuple reversed); see [`Conn::out_key`].
//!
//! Layout: one allocation each for the index and the entries, both cache-line granular. The index
//! (`index.rs`) is an array of 64-byte buckets of tags and refs; an entry is a [`Conn`] padded to
//! its own 64-byte line and holds both tuples, so a hit reads exactly two lines: the key's bucket
//! and the entry (which the caller wants next anyway), and a miss usually one, the bucket. [`ConnTable::hash`],
//! [`ConnTable::prefetch_bucket`], [`ConnTable::prefetch_candidates`] and
//! [`ConnTable::lookup_hashed`] split a lookup so a burst can overlap those two misses across
//! packets.
//!
//! Invariants:
//! - Every live connection has exactly two index refs (client tuple in `Dir::Original`, reply tuple
//!   in `Dir::Reply`), both naming its entry; a free entry has none. Both are inserted and removed
//!   together. The index stores no keys: a tag match is confirmed against the entry's tuple of the
//!   ref's direction.
//! - No allocation after [`ConnTable::new`]: the entries, the free list, the timer wheel and the
//!   index are sized there. The index has a power-of-two number of buckets with at least
//!   `2 * capacity() / 0.8` slots, so a full table fills at most 80 % of them; there are no
//!   tombstones, so churn never degrades it (see `index.rs`).
//! - The hash is keyed by a per-table seed ([`ConnTable::with_seed`]): clients pick their tuples,
//!   and an unseeded hash would let them pile connections into one probe sequence.
//! - The expiry deadline of a connection lives in the connection (`u32` ticks of
//!   [`wheel::TICK_MS`]); a per-packet refresh in the same state only stores it, and the wheel entry
//!   is moved lazily when its old slot fires. The entry is moved eagerly (O(1), doubly linked) on a
//!   state change or whenever a deadline gets earlier, so it is never queued after its deadline.
//!   Expiry is never before the deadline and at most one tick after it (plus any backlog left by
//!   the caller's budget).
//! - Connection ids are entry indices: an id is valid from `insert` until the connection is expired
//!   or removed, after which it may be handed out again.
use std::mem::size_of;
use std::net::Ipv4Addr;

use crate::flow::{Addr, FlowKey, Millis, Proto};

pub mod bind;
pub mod bind6;
mod entry;
mod index;
pub mod lport;
pub mod state;
pub mod wheel;

pub(crate) use entry::Entry;
use entry::{key_words, port_word, F_ACTIVE, F_LIVE, XLAT_SHIFT};
pub use entry::{Conn, NewConn};
pub use index::Hashed;
pub use lport::{alloc_lport, owner, LportCursor, PortSlice, LPORT_HI, LPORT_LO};
pub use state::{next_state, next_state_in, tcp_flags, Dir, StateChange, TcpState, Timeouts};

use index::{Hasher, Index};
use wheel::{before, deadline_tick, tick_of, Wheel, NIL};

/// Index of a connection in its worker's table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Index value: connection id (31 bits) plus the direction in the top bit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConnRef(u32);

const REPLY_BIT: u32 = 1 << 31;

impl ConnRef {
    fn new(id: u32, dir: Dir) -> ConnRef {
        ConnRef(id | if dir == Dir::Reply { REPLY_BIT } else { 0 })
    }
    fn raw(self) -> u32 {
        self.0
    }
    pub fn id(self) -> ConnId {
        ConnId(self.0 & !REPLY_BIT)
    }
    pub fn dir(self) -> Dir {
        if self.0 & REPLY_BIT != 0 {
            Dir::Reply
        } else {
            Dir::Original
        }
    }
}

/// Why [`ConnTable::insert`] refused a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InsertError {
    /// Every slot is in use; the caller counts the drop.
    Full,
    /// The client tuple or the reply tuple already belongs to a live connection (or the two
    /// tuples are identical).
    Exists,
}

/// Counters for tests and the control plane's stats.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Stats {
    pub inserted: u64,
    pub expired: u64,
    pub removed: u64,
    /// Connections the wheel looked at during `expire` (expired or re-queued). The O(expired)
    /// claim is that this grows with expiries and deadline extensions, never with table size.
    pub timer_visits: u64,
}

/// The per-worker connection table.
pub struct ConnTable<A: Addr = Ipv4Addr> {
    index: Index,
    hasher: Hasher,
    slab: Vec<Entry<A>>,
    free: u32,
    len: u32,
    wheel: Wheel,
    timeouts: Timeouts,
    stats: Stats,
}

/// Index slots per connection at full capacity, in tenths: two refs at no more than 80 % occupancy.
const SLOT_TENTHS_PER_CONN: usize = 25;

/// The seed of [`ConnTable::new`] (tests, benchmarks). Production tables take a random one.
pub const DEFAULT_SEED: u64 = 0x5EED_C0FF_EE15_600D;

impl ConnTable<Ipv4Addr> {
    /// An IPv4 table for exactly `min_capacity` connections, hashed with [`DEFAULT_SEED`]. `now`
    /// starts the timer wheel.
    pub fn new(min_capacity: usize, timeouts: Timeouts, now: Millis) -> ConnTable {
        ConnTable::of_family(min_capacity, timeouts, now, DEFAULT_SEED)
    }

    /// An IPv4 table keyed by `seed`; see [`ConnTable::of_family`].
    pub fn with_seed(min_capacity: usize, timeouts: Timeouts, now: Millis, seed: u64) -> ConnTable {
        ConnTable::of_family(min_capacity, timeouts, now, seed)
    }

    /// A table with an explicit bucket count (tests force collisions with a tiny one).
    #[cfg(test)]
    fn with_buckets(capacity: usize, buckets: usize, seed: u64) -> ConnTable {
        ConnTable::build(capacity, buckets, Timeouts::default(), 0, seed)
    }
}

impl<A: Addr> ConnTable<A> {
    /// A table of address family `A` for exactly `min_capacity` connections whose hash is keyed
    /// by `seed` (take it from a random source: it is what keeps clients from choosing colliding
    /// tuples). The index gets the smallest power-of-two number of buckets that keeps a full table
    /// at or below 80 % of its slots.
    pub fn of_family(min_capacity: usize, timeouts: Timeouts, now: Millis, seed: u64) -> ConnTable<A> {
        assert!(min_capacity > 0, "a connection table needs room for one connection");
        let slots = (min_capacity * SLOT_TENTHS_PER_CONN).div_ceil(10);
        let buckets = slots.div_ceil(index::SLOTS).next_power_of_two();
        ConnTable::build(min_capacity, buckets, timeouts, now, seed)
    }

    fn build(capacity: usize, buckets: usize, timeouts: Timeouts, now: Millis, seed: u64) -> ConnTable<A> {
        assert!(capacity + wheel::SLOTS < REPLY_BIT as usize - 1, "connection table too large for u32 ids");
        assert!(
            timeouts.max() / wheel::TICK_MS < (1 << 30),
            "timeouts beyond 2^30 ticks break wrapping deadline comparison"
        );
        let mut slab = vec![Entry { conn: Conn::FREE }; capacity];
        // Low ids first: fresh tables fill the slab front to back.
        for (i, e) in slab.iter_mut().enumerate() {
            e.conn.next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        ConnTable {
            index: Index::new(buckets),
            hasher: Hasher::new(seed),
            slab,
            free: 0,
            len: 0,
            wheel: Wheel::new(capacity as u32, now),
            timeouts,
            stats: Stats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slab.len()
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.free == NIL
    }
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }
    /// Takes effect for each connection at its next state update or touch.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        assert!(timeouts.max() / wheel::TICK_MS < (1 << 30));
        self.timeouts = timeouts;
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes of memory per connection slot: index buckets, entries, timer wheel heads and the table
    /// header, as allocated, divided by `capacity()`.
    pub fn memory_per_conn(&self) -> usize {
        let total = self.index.heap_bytes()
            + self.slab.capacity() * size_of::<Entry<A>>()
            + self.wheel.heap_bytes()
            + size_of::<Self>();
        total.div_ceil(self.capacity())
    }

    /// Whether `key` is either tuple of a live connection.
    #[inline]
    pub fn contains(&self, key: &FlowKey<A>) -> bool {
        self.lookup(key).is_some()
    }

    /// The connection a received packet belongs to, and which way it travelled.
    #[inline]
    pub fn lookup(&self, key: &FlowKey<A>) -> Option<(ConnId, Dir)> {
        self.lookup_hashed(key, self.hash(key))
    }

    /// Step 1 of a pipelined lookup: the key's hash under this table's seed.
    ///
    /// A burst runs each step over all its packets before the next step, so the cache misses of
    /// different packets overlap instead of queueing: [`Self::hash`] and [`Self::prefetch_bucket`]
    /// for every key, then [`Self::prefetch_candidates`] for every key, then
    /// [`Self::lookup_hashed`] (both lines should have arrived by then), then [`Self::get`] /
    /// [`Self::get_mut`]. The prefetches are hints: skipping one never changes a result.
    #[inline]
    pub fn hash(&self, key: &FlowKey<A>) -> Hashed {
        let (a, b) = key_words(key);
        self.hasher.hash(A::pair_words(a).as_ref(), b)
    }

    /// Step 2: start loading the key's home bucket.
    #[inline]
    pub fn prefetch_bucket(&self, h: Hashed) {
        self.index.prefetch(h);
    }

    /// Step 3, once the bucket has (probably) arrived: start loading the entries whose tag matches
    /// in the home bucket. A lookup confirms a tag match against the key stored in the entry, so
    /// without this step [`Self::lookup_hashed`] would wait for the entry of each hit in turn.
    #[inline]
    pub fn prefetch_candidates(&self, h: Hashed) {
        self.index.home_matches(h, |r| self.prefetch_entry(ConnRef(r).id()));
    }

    /// Step 4: [`Self::lookup`] with the hash already computed; `h` must be `self.hash(key)`.
    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey<A>, h: Hashed) -> Option<(ConnId, Dir)> {
        let (slab, words) = (&self.slab, key_words(key));
        self.index
            .find(h, |r| {
                let r = ConnRef(r);
                slab[r.id().0 as usize].conn.has_key((r.0 >> 31) as usize, words)
            })
            .map(|r| (ConnRef(r).id(), ConnRef(r).dir()))
    }

    /// Starts loading a connection's entry, e.g. one found earlier whose packet is processed later.
    /// After [`Self::lookup_hashed`] found `id` its entry is already in cache (the lookup compared
    /// the key there).
    #[inline]
    pub fn prefetch_entry(&self, id: ConnId) {
        if let Some(e) = self.slab.get(id.0 as usize) {
            rvs_prefetch::prefetch(e);
        }
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn<A>> {
        self.slab.get(id.0 as usize).map(|e| &e.conn).filter(|c| c.is_live())
    }

    /// Mutable access for the per-connection extras (TOA flag, sequence delta).
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<A>> {
        self.slab.get_mut(id.0 as usize).map(|e| &mut e.conn).filter(|c| c.is_live())
    }

    /// Tracks a new connection: TCP in state NONE with the NONE timeout (feed the first segment to
    /// [`Self::update_tcp`] next), UDP with the UDP timeout. It starts inactive.
    pub fn insert(&mut self, new: &NewConn<A>, now: Millis) -> Result<ConnId, InsertError> {
        if self.free == NIL {
            return Err(InsertError::Full);
        }
        let ck = new.client;
        let rk = new.reply_key();
        if ck == rk {
            return Err(InsertError::Exists);
        }
        let (hc, hr) = (self.hash(&ck), self.hash(&rk));
        if self.lookup_hashed(&ck, hc).is_some() || self.lookup_hashed(&rk, hr).is_some() {
            return Err(InsertError::Exists);
        }
        let id = self.free;
        // The sizing keeps free index slots for every connection the slab holds, so neither insert
        // fails; if one did anyway, leave the table as it was and report it full.
        let (rc, rr) = (ConnRef::new(id, Dir::Original).raw(), ConnRef::new(id, Dir::Reply).raw());
        self.index.insert(hc, rc).map_err(|_| InsertError::Full)?;
        if self.index.insert(hr, rr).is_err() {
            self.index.remove(hc, rc);
            return Err(InsertError::Full);
        }
        let timeout = match ck.proto {
            Proto::Tcp => self.timeouts.none,
            Proto::Udp => self.timeouts.udp,
        };
        let deadline = deadline_tick(now, timeout);
        let c = &mut self.slab[id as usize].conn;
        self.free = c.next;
        *c = Conn {
            addrs: [key_words(&ck).0, key_words(&rk).0],
            ports: [port_word(&ck), port_word(&rk)],
            proto: ck.proto,
            service: new.service,
            real: new.real,
            dest: new.rs,
            deadline,
            seq_delta: 0,
            ts_delta: 0,
            pp_start: 0,
            prev: NIL,
            next: NIL,
            state: TcpState::None as u8,
            flags: F_LIVE | (new.xlat as u8) << XLAT_SHIFT,
            pp: 0,
        };
        self.wheel.link(&mut self.slab, id, deadline);
        self.len += 1;
        self.stats.inserted += 1;
        Ok(ConnId(id))
    }

    /// LVS `set_tcp_state`: transition on one segment received in `dir` with raw TCP `flags`, and
    /// re-arm the deadline to `now + timeout(new state)`. Keeps the conn's counted-active flag equal
    /// to `new.is_active()`; the caller moves the real's counters when the result says so.
    ///
    /// `id` must be live; a stale id is a no-op reporting CLOSE -> CLOSE (debug builds panic).
    pub fn update_tcp(&mut self, id: ConnId, dir: Dir, flags: u8, now: Millis) -> StateChange {
        let Some(c) = self.get_mut(id) else {
            debug_assert!(false, "update_tcp on a free slot {id:?}");
            return StateChange { old: TcpState::Close, new: TcpState::Close };
        };
        let old = c.state();
        let new = next_state_in(old, dir, flags, !c.xlat().sees_replies());
        c.state = new as u8;
        if new.is_active() {
            c.flags |= F_ACTIVE;
        } else {
            c.flags &= !F_ACTIVE;
        }
        let deadline = deadline_tick(now, self.timeouts.tcp(new));
        if new == old {
            self.rearm(id.0, deadline);
        } else {
            // A few state changes per connection: re-queue now, so e.g. the 2 s NONE slot a new
            // connection was queued on does not cost a visit once the handshake moved it on.
            self.slab[id.0 as usize].conn.deadline = deadline;
            self.wheel.unlink(&mut self.slab, id.0);
            self.wheel.link(&mut self.slab, id.0, deadline);
        }
        StateChange { old, new }
    }

    /// Re-arms the deadline to `now + timeout(current state)` (UDP: the UDP timeout). For UDP this
    /// is the whole per-packet update.
    pub fn touch(&mut self, id: ConnId, now: Millis) {
        let Some(c) = self.get(id) else {
            debug_assert!(false, "touch on a free slot {id:?}");
            return;
        };
        let timeout = match c.proto() {
            Proto::Tcp => self.timeouts.tcp(c.state()),
            Proto::Udp => self.timeouts.udp,
        };
        self.rearm(id.0, deadline_tick(now, timeout));
    }

    #[inline]
    fn rearm(&mut self, id: u32, deadline: u32) {
        let c = &mut self.slab[id as usize].conn;
        let old = c.deadline;
        c.deadline = deadline;
        // A later deadline is found lazily when the old slot fires; an earlier one must move now or
        // the connection would outlive it.
        if before(deadline, old) {
            self.wheel.unlink(&mut self.slab, id);
            self.wheel.link(&mut self.slab, id, deadline);
        }
    }

    /// Removes a connection now (e.g. the control plane flushing a real). Returns a copy of it so
    /// the caller can fix per-real counters and release the local port; `None` if `id` is not live.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<A>> {
        let c = *self.get(id)?;
        self.wheel.unlink(&mut self.slab, id.0);
        self.release(id.0, &c);
        self.stats.removed += 1;
        Some(c)
    }

    /// Drops both index entries and returns the slot to the free list. The slot must already be off
    /// the timer lists.
    fn release(&mut self, id: u32, c: &Conn<A>) {
        self.index.remove(self.hash(&c.client_key()), ConnRef::new(id, Dir::Original).raw());
        self.index.remove(self.hash(&c.reply_key()), ConnRef::new(id, Dir::Reply).raw());
        let slot = &mut self.slab[id as usize].conn;
        *slot = Conn::FREE;
        slot.next = self.free;
        self.free = id;
        self.len -= 1;
    }

    /// Expires connections whose deadline is at or before `now`, looking at no more than `budget`
    /// connections (expired or re-queued). `on_expire` sees each expired connection (and its former id)
    /// after it left
    /// the table (its tuples are free again). Returns how many expired. Work left over by the
    /// budget is resumed by the next call.
    pub fn expire(
        &mut self,
        now: Millis,
        budget: usize,
        mut on_expire: impl FnMut(ConnId, &Conn<A>),
    ) -> usize {
        let target = tick_of(now);
        let mut visited = 0;
        let mut expired = 0;
        while visited < budget {
            let Some(id) = self.wheel.next_due(&mut self.slab, target) else { break };
            visited += 1;
            let c = self.slab[id as usize].conn;
            if before(target, c.deadline) {
                self.wheel.link(&mut self.slab, id, c.deadline);
            } else {
                self.release(id, &c);
                expired += 1;
                on_expire(ConnId(id), &c);
            }
        }
        self.stats.timer_visits += visited as u64;
        self.stats.expired += expired as u64;
        expired
    }

    /// All live connections, in slot order. O(capacity): control plane only.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<A>)> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, e)| e.conn.is_live())
            .map(|(i, e)| (ConnId(i as u32), &e.conn))
    }

    /// Checks the index against the entries: two refs per live connection, each found by a lookup
    /// of its tuple, and every overflow count equal to one recomputed from where the refs sit.
    #[cfg(test)]
    fn check_index(&self) {
        assert_eq!(self.index.len(), 2 * self.len());
        self.index.check(|r| {
            let r = ConnRef(r);
            let c = &self.slab[r.id().0 as usize].conn;
            assert!(c.is_live(), "ref to free entry {r:?}");
            self.hash(&c.key(r.dir()))
        });
        for (id, c) in self.iter() {
            assert_eq!(self.lookup(&c.client_key()), Some((id, Dir::Original)));
            assert_eq!(self.lookup(&c.reply_key()), Some((id, Dir::Reply)));
        }
    }
}

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
