//! The connection table's hash index: cache-line buckets of 16-bit tags and 32-bit entry refs.
//!
//! The layout follows DPDK's `rte_hash` (8 signatures + 8 key indices per bucket) with folly F14's
//! overflow counts instead of tombstones:
//! - A [`Bucket`] is one cache line: 8 tags, 8 refs and an overflow count. A ref is what the table
//!   stores for one tuple (connection id plus direction bit, see [`super::ConnRef`]); the key itself
//!   lives in the connection entry, so a hit reads two lines: the bucket, then the entry.
//! - A key's home bucket is `hash & mask`, its tag the top 16 bits of the hash (bits the bucket index
//!   never uses, so the keys sharing a bucket still differ in tag). Tag 0 marks an empty slot; a hash
//!   whose top bits are 0 uses tag 1.
//! - Probing is linear: home, home + 1, ... (wrapping). Linear rather than a second hash because the
//!   next bucket is the adjacent cache line (the L2 spatial prefetcher often has it already, and the
//!   pair shares a DRAM page), and at the load the table is sized for (at most 80 % of the slots) a
//!   probe leaves the home bucket rarely: clustering costs little while a second hash would turn
//!   every overflow into another random miss. Hash flooding is handled by the seeded hash, not by the
//!   probe sequence.
//!
//! Invariants:
//! - `overflow[b]` equals the number of stored refs whose probe from their home bucket passed `b`
//!   without being placed there (home at or before `b`, stored after it). Insert increments every
//!   bucket it passes; remove decrements the same path. So a lookup may stop at the first bucket
//!   that neither holds the key nor has a non-zero overflow count: no key placed further along
//!   started at or before it. There are no tombstones: a removed slot is empty at once and the next
//!   insert into that bucket reuses it, so the index never degrades or needs a rebuild.
//! - A count never exceeds the number of refs stored (`< 2^31`), so `u32` cannot overflow.
//! - Every probe is bounded by the bucket count, so a full bucket array (which the table's sizing
//!   keeps from happening) is reported, never looped on.
//! - One allocation, in [`Index::new`]; nothing here allocates afterwards.
use std::fmt;

/// Slots per bucket: 8 × (2-byte tag + 4-byte ref) + the overflow count fit one 64-byte line.
pub const SLOTS: usize = 8;

/// One cache line of the index.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(super) struct Bucket {
    /// Eight 16-bit tags, slot `i` in bits `16 i ..= 16 i + 15`; 0 = empty slot. One integer so a
    /// tag is matched in all slots at once with plain arithmetic (SWAR; SIMD intrinsics are not
    /// callable from the dataplane's safe code).
    tags: u128,
    /// Valid where the tag is non-zero.
    refs: [u32; SLOTS],
    /// Refs that probed past this bucket (see module invariants).
    overflow: u32,
}

/// 0x0001 in every 16-bit lane.
const LANE_ONES: u128 = u128::MAX / 0xFFFF;
const LANE_LOW15: u128 = LANE_ONES * 0x7FFF;
const LANE_HIGH: u128 = LANE_ONES * 0x8000;

impl Bucket {
    const EMPTY: Bucket = Bucket { tags: 0, refs: [0; SLOTS], overflow: 0 };

    /// Bit `16 i + 15` set exactly where slot `i`'s tag is `tag`. Exact (no false positives, so
    /// also usable to find empty slots): `(x & 0x7FFF) + 0x7FFF` sets a lane's top bit iff its low 15
    /// bits are non-zero and cannot carry out of the lane; or-ing `x` adds its own top bit.
    #[inline(always)]
    fn match_tag(&self, tag: u16) -> u128 {
        let x = self.tags ^ (LANE_ONES * tag as u128);
        !(((x & LANE_LOW15) + LANE_LOW15) | x) & LANE_HIGH
    }

    /// The slot of the lowest match bit of a `match_tag` result.
    #[inline(always)]
    fn slot(m: u128) -> usize {
        (m.trailing_zeros() / 16) as usize
    }

    #[cfg(test)]
    fn tag(&self, i: usize) -> u16 {
        (self.tags >> (16 * i)) as u16
    }

    #[inline(always)]
    fn set_tag(&mut self, i: usize, tag: u16) {
        self.tags = self.tags & !(0xFFFF << (16 * i)) | (tag as u128) << (16 * i);
    }
}

/// A key's hash under its table's seed. Only meaningful for the table that made it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hashed(pub(super) u64);

impl Hashed {
    #[inline(always)]
    fn tag(self) -> u16 {
        ((self.0 >> 48) as u16).max(1)
    }
}

/// The index was asked to store a ref but every slot of every bucket is taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct NoRoom;

pub(super) struct Index {
    buckets: Vec<Bucket>,
    mask: usize,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index").field("buckets", &self.buckets.len()).finish_non_exhaustive()
    }
}

impl Index {
    /// `buckets` must be a power of two.
    pub(super) fn new(buckets: usize) -> Index {
        assert!(buckets.is_power_of_two(), "{buckets} buckets");
        Index { buckets: vec![Bucket::EMPTY; buckets], mask: buckets - 1 }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<Bucket>()
    }

    #[inline(always)]
    fn home(&self, h: Hashed) -> usize {
        h.0 as usize & self.mask
    }

    #[inline(always)]
    pub(super) fn prefetch(&self, h: Hashed) {
        rvs_prefetch::prefetch(&self.buckets[self.home(h)]);
    }

    /// Calls `f` with every ref in `h`'s home bucket whose tag matches: the entries a lookup of a
    /// key stored at home would compare against (nearly all keys are; see the module doc).
    #[inline(always)]
    pub(super) fn home_matches(&self, h: Hashed, mut f: impl FnMut(u32)) {
        let bucket = &self.buckets[self.home(h)];
        let mut m = bucket.match_tag(h.tag());
        while m != 0 {
            f(bucket.refs[Bucket::slot(m)]);
            m &= m - 1;
        }
    }

    /// The ref stored for a key with hash `h` for which `is_key(ref)` holds. `is_key` is only called
    /// on tag matches; it compares the full key in the entry the ref points at.
    #[inline(always)]
    pub(super) fn find(&self, h: Hashed, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = h.tag();
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            let mut m = bucket.match_tag(tag);
            while m != 0 {
                let r = bucket.refs[Bucket::slot(m)];
                if is_key(r) {
                    return Some(r);
                }
                m &= m - 1;
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = (b + 1) & self.mask;
        }
        None
    }

    /// Stores `r` for a key with hash `h`. The caller has checked that the key is absent.
    pub(super) fn insert(&mut self, h: Hashed, r: u32) -> Result<(), NoRoom> {
        let tag = h.tag();
        let home = self.home(h);
        let mut b = home;
        for passed in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            let empty = bucket.match_tag(0);
            if empty != 0 {
                let i = Bucket::slot(empty);
                bucket.set_tag(i, tag);
                bucket.refs[i] = r;
                self.walk(home, passed, |c| *c += 1);
                return Ok(());
            }
            b = (b + 1) & self.mask;
        }
        Err(NoRoom)
    }

    /// Removes `r`, stored for a key with hash `h`. Refs are unique, so no key comparison is needed.
    /// Returns whether it was there.
    pub(super) fn remove(&mut self, h: Hashed, r: u32) -> bool {
        let tag = h.tag();
        let home = self.home(h);
        let mut b = home;
        for passed in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            let mut m = bucket.match_tag(tag);
            while m != 0 {
                let i = Bucket::slot(m);
                if bucket.refs[i] == r {
                    bucket.set_tag(i, 0);
                    self.walk(home, passed, |c| *c -= 1);
                    return true;
                }
                m &= m - 1;
            }
            if bucket.overflow == 0 {
                break;
            }
            b = (b + 1) & self.mask;
        }
        debug_assert!(false, "ref {r:#x} not in the index");
        false
    }

    /// Applies `f` to the overflow counts of the `n` buckets from `home` on.
    #[inline]
    fn walk(&mut self, home: usize, n: usize, mut f: impl FnMut(&mut u32)) {
        let mut b = home;
        for _ in 0..n {
            f(&mut self.buckets[b].overflow);
            b = (b + 1) & self.mask;
        }
    }

    /// Every stored ref with the bucket it sits in, for invariant checks.
    #[cfg(test)]
    pub(super) fn refs(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.buckets.iter().enumerate().flat_map(|(b, bucket)| {
            (0..SLOTS).filter(move |&i| bucket.tag(i) != 0).map(move |i| (b, bucket.refs[i]))
        })
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.refs().count()
    }

    #[cfg(test)]
    pub(super) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    #[cfg(test)]
    pub(super) fn overflow(&self, b: usize) -> u32 {
        self.buckets[b].overflow
    }

    #[cfg(test)]
    pub(super) fn home_of(&self, h: Hashed) -> usize {
        self.home(h)
    }

    /// Recomputes every overflow count from where the refs sit and checks the stored ones, and that
    /// each ref sits under its key's tag. `hash_of(ref)` is the hash of the key the ref stands for.
    #[cfg(test)]
    pub(super) fn check(&self, hash_of: impl Fn(u32) -> Hashed) {
        let mut want = vec![0u32; self.buckets.len()];
        for (at, r) in self.refs() {
            let h = hash_of(r);
            let home = self.home(h);
            let slot = (0..SLOTS)
                .find(|&i| self.buckets[at].tag(i) != 0 && self.buckets[at].refs[i] == r)
                .expect("listed ref");
            assert_eq!(self.buckets[at].tag(slot), h.tag(), "ref {r:#x} under a foreign tag");
            let mut b = home;
            while b != at {
                want[b] += 1;
                b = (b + 1) & self.mask;
            }
        }
        for (b, &w) in want.iter().enumerate() {
            assert_eq!(self.buckets[b].overflow, w, "overflow count of bucket {b}");
        }
    }
}

/// The seeded key hash: two rounds of a folded 64×64→128-bit multiply (the wyhash / foldhash mixer).
///
/// The 13 meaningful bytes of a `FlowKey` go into two words, each xored with its own secret word
/// before they are multiplied together; a second multiply by a third secret word (and a constant)
/// spreads the result over all 64 bits, since the low bits pick the bucket and the high bits the
/// tag. Without the seed an attacker cannot predict which client tuples share a bucket (hash
/// flooding). This is a fast mixer, not a cryptographic PRF: it protects against blind flooding, the
/// threat a client choosing its own ports poses.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hasher {
    k: [u64; 3],
    /// Test hook: hash bits kept (all in production), to force bucket and tag collisions.
    #[cfg(test)]
    keep: u64,
}

impl Hasher {
    pub(super) fn new(seed: u64) -> Hasher {
        // splitmix64: three independent-looking words from one seed, none of them 0 in practice.
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Hasher {
            k: [next(), next(), next()],
            #[cfg(test)]
            keep: u64::MAX,
        }
    }

    /// Keeps only the hash bits in `keep` from now on (tests: a table must be empty when weakened).
    #[cfg(test)]
    pub(super) fn weaken(&mut self, keep: u64) {
        self.keep = keep;
    }

    /// Hash of the words holding a key's bytes: its addresses (`a`, one word for IPv4, four for
    /// IPv6) and its protocol and ports (`b`). Every word goes through a keyed multiply, so no
    /// linear combination of address bits collides for every seed.
    #[inline(always)]
    pub(super) fn hash(&self, a: &[u64], b: u64) -> Hashed {
        let mut h = fold(a[0] ^ self.k[0], b ^ self.k[1]);
        for &w in &a[1..] {
            h = fold(h ^ w, self.k[0] ^ 0x9E37_79B9_7F4A_7C15);
        }
        let h = fold(h ^ self.k[2], 0x2D35_8DCC_AA6C_78A5);
        #[cfg(test)]
        let h = h & self.keep;
        Hashed(h)
    }
}

/// The high and low halves of the 128-bit product, xored.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_tag_match_is_exact() {
        // Edge values in every lane position, against every probe: a match bit exactly where equal.
        let vals = [0u16, 1, 2, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF];
        for rot in 0..SLOTS {
            let mut b = Bucket::EMPTY;
            for i in 0..SLOTS {
                b.set_tag(i, vals[(i + rot) % SLOTS]);
            }
            for i in 0..SLOTS {
                assert_eq!(b.tag(i), vals[(i + rot) % SLOTS]);
            }
            for &probe in &vals {
                let m = b.match_tag(probe);
                let want: Vec<usize> = (0..SLOTS).filter(|&i| b.tag(i) == probe).collect();
                let mut got = Vec::new();
                let mut mm = m;
                while mm != 0 {
                    got.push(Bucket::slot(mm));
                    mm &= mm - 1;
                }
                assert_eq!(got, want, "probe {probe:#x} rot {rot}");
            }
        }
        // Overwriting a lane leaves the others alone.
        let mut b = Bucket::EMPTY;
        b.set_tag(3, 0xFFFF);
        b.set_tag(4, 0xABCD);
        b.set_tag(3, 0);
        assert_eq!((b.tag(2), b.tag(3), b.tag(4), b.tag(5)), (0, 0, 0xABCD, 0));
        assert_eq!(b.match_tag(0).count_ones(), 7);
    }
}
