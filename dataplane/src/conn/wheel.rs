//! Hashed timer wheel threaded through the connection slab (`Conn::{prev, next}`).
//!
//! Invariants:
//! - Time is counted in ticks of [`TICK_MS`]; deadlines are `u32` ticks compared with wrapping
//!   arithmetic, so they stay correct across the u32 wrap as long as every deadline is within
//!   2^31 ticks (~4.3 years) of the current time.
//! - Every live connection is on exactly one list: the list of slot `t % SLOTS` for some tick
//!   `t` with `cursor <= t <= deadline`, or the `PENDING` list (the slot being drained when a
//!   budget ran out). So the wheel reaches each connection no later than its deadline; reaching it
//!   earlier only costs a re-link.
//! - Lists are doubly linked through `Conn::{prev, next}`. Node ids `< base` are connections; id
//!   `base + s` is the head of list `s` (a sentinel), so unlinking never needs to know which slot a
//!   connection is on.
//! - Nothing here allocates after `new`.
use super::Entry;
use crate::flow::Addr;
use crate::flow::Millis;

/// Wheel resolution. Expiry happens at most one tick late, never early.
pub const TICK_MS: Millis = 64;
/// Slots per round: 16384 * 64 ms ≈ 1048 s covers LVS's longest default timeout (900 s), so with
/// default timeouts each connection is visited once, at its deadline, unless its deadline was
/// extended in between (then once more per extension, lazily).
pub const SLOTS: usize = 1 << 14;
const MASK: u32 = SLOTS as u32 - 1;
/// Index of the pending list's head in `heads`.
const PENDING: usize = SLOTS;
/// End of list / no node.
pub const NIL: u32 = u32::MAX;

/// `a` strictly before `b` in wrapping tick arithmetic.
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The tick containing `now`.
#[inline]
pub fn tick_of(now: Millis) -> u32 {
    (now / TICK_MS) as u32
}

/// First tick boundary at or after `now + timeout`: rounding up is what makes expiry never early.
#[inline]
pub fn deadline_tick(now: Millis, timeout: Millis) -> u32 {
    now.saturating_add(timeout).div_ceil(TICK_MS) as u32
}

pub(super) struct Wheel {
    /// `SLOTS` slot heads followed by the pending head.
    heads: Vec<u32>,
    /// Number of slab entries; node ids at or above it are list heads.
    base: u32,
    /// Next tick whose slot has not been drained yet.
    cursor: u32,
}

impl Wheel {
    pub(super) fn new(base: u32, now: Millis) -> Wheel {
        Wheel { heads: vec![NIL; SLOTS + 1], base, cursor: tick_of(now) }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.heads.capacity() * std::mem::size_of::<u32>()
    }

    #[inline]
    fn set_next<A: Addr>(&mut self, slab: &mut [Entry<A>], node: u32, next: u32) {
        if node >= self.base {
            self.heads[(node - self.base) as usize] = next;
        } else {
            slab[node as usize].conn.next = next;
        }
    }

    #[inline]
    fn push<A: Addr>(&mut self, slab: &mut [Entry<A>], list: usize, id: u32) {
        let head = self.heads[list];
        slab[id as usize].conn.next = head;
        slab[id as usize].conn.prev = self.base + list as u32;
        if head != NIL {
            slab[head as usize].conn.prev = id;
        }
        self.heads[list] = id;
    }

    /// Queue `id` for its deadline. A deadline already behind the cursor goes on the cursor's slot,
    /// so it is seen at the next drain instead of a full round later.
    #[inline]
    pub(super) fn link<A: Addr>(&mut self, slab: &mut [Entry<A>], id: u32, deadline: u32) {
        let t = if before(deadline, self.cursor) { self.cursor } else { deadline };
        self.push(slab, (t & MASK) as usize, id);
    }

    #[inline]
    pub(super) fn unlink<A: Addr>(&mut self, slab: &mut [Entry<A>], id: u32) {
        let (prev, next) = (slab[id as usize].conn.prev, slab[id as usize].conn.next);
        self.set_next(slab, prev, next);
        if next != NIL {
            slab[next as usize].conn.prev = prev;
        }
        slab[id as usize].conn.prev = NIL;
        slab[id as usize].conn.next = NIL;
    }

    /// Unlinks and returns the next connection the wheel must examine for tick `target`, or `None`
    /// once every slot up to `target` has been drained. Empty slots are skipped here; after a long
    /// gap at most one round of slots is scanned, because one round already covers every list.
    pub(super) fn next_due<A: Addr>(&mut self, slab: &mut [Entry<A>], target: u32) -> Option<u32> {
        loop {
            let head = self.heads[PENDING];
            if head != NIL {
                self.unlink(slab, head);
                return Some(head);
            }
            if before(target, self.cursor) {
                return None;
            }
            if target.wrapping_sub(self.cursor) >= SLOTS as u32 {
                self.cursor = target.wrapping_sub(MASK);
            }
            // Detach the whole slot first: entries re-linked while draining it (deadline a round or
            // more away) land on the now-empty slot list and are not seen again in this pass.
            let slot = (self.cursor & MASK) as usize;
            let head = std::mem::replace(&mut self.heads[slot], NIL);
            if head != NIL {
                slab[head as usize].conn.prev = self.base + PENDING as u32;
                self.heads[PENDING] = head;
            }
            self.cursor = self.cursor.wrapping_add(1);
        }
    }
}
