//! Maglev consistent hashing (Eisenbud et al., NSDI '16, §3.4), populated the way `ip_vs_mh.c` does.
//!
//! Each real gets a permutation of the [`MH_TAB_SIZE`] table slots, `offset + j * skip (mod M)`, from two
//! independent hashes of its identity ([`RealView::id`]). Reals then take turns claiming their next free
//! preferred slot until the table is full; a real claims `turns` slots per round, with
//! `turns = (weight / gcd) >> rshift` (at least 1 for a positive weight), which is LVS's way of honouring
//! weights while keeping the rounds short.
//!
//! Invariants:
//! - `MH_TAB_SIZE` is prime, so every `skip` in `1..M` generates the whole table and population ends.
//! - The table is complete (every slot names a real) iff some real has a positive weight; else it is empty.
//! - The table depends on the *set* of (id, weight) pairs, not on pool order: reals take their turns in
//!   id order (LVS uses list order). Removing one real of N therefore moves its ~1/N of the keys plus only
//!   a small share of the others.
//! - Weight 0 at build time means no slots. Setting a weight to 0 (or overloading) *without* rebuilding
//!   keeps the table, and the real's clients go through the fallback: the LVS `last_weight` quiescing
//!   behaviour, handy for draining.
//! - Fallback (our default; LVS needs `mh-fallback`): when the slot's real is unusable, re-hash the client
//!   with successive offsets, as the kernel does, so the stranded clients spread over the survivors in
//!   proportion to their table share instead of piling onto a neighbour. Bounded by M probes, and skipped
//!   entirely when nothing is usable.
//! - Hashes are our own stable mixer, not the kernel's hsiphash: tables are deterministic across builds
//!   and hosts but not bit-identical to a Linux director's.

use super::{mix64, RealView};
use std::net::Ipv4Addr;

/// Lookup table size: the prime 65537 (= 2^16 + 1), i.e. about 100 slots per real for up to ~650 reals,
/// which is where Maglev's imbalance stays within a few percent.
pub const MH_TAB_SIZE: usize = 65_537;
/// Bits allowed for `weight / gcd` before it is shifted down (`IP_VS_MH_TAB_BITS` for a 64K table).
const MH_TAB_BITS: u32 = 8;
const NONE: u32 = u32::MAX;

const SEED_OFFSET: u64 = 0x243f_6a88_85a3_08d3;
const SEED_SKIP: u64 = 0x1319_8a2e_0370_7344;
const SEED_CLIENT: u64 = 0xa409_3822_299f_31d0;
/// Spreads fallback probe numbers over the 64-bit key space before mixing.
const GOLDEN_64: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone)]
pub(super) struct MhTable {
    lookup: Box<[u32]>,
}

impl MhTable {
    /// `ip_vs_mh_permutate` + `ip_vs_mh_populate`.
    pub(super) fn new(reals: &[RealView]) -> MhTable {
        let m = MH_TAB_SIZE;
        let mut lookup = vec![NONE; m].into_boxed_slice();
        let gcd = super::gcd_weight(reals);
        if gcd == 0 || reals.len() >= NONE as usize {
            return MhTable { lookup };
        }
        let max = reals.iter().map(|r| r.weight).max().unwrap_or(0) / gcd;
        let rshift = (u32::BITS - max.leading_zeros()).saturating_sub(MH_TAB_BITS);

        struct Setup {
            real: u32,
            skip: usize,
            perm: usize,
            turns: u32,
        }
        let mut setup: Vec<Setup> = reals
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let w = r.weight / gcd;
                Setup {
                    real: i as u32,
                    perm: (mix64(r.id ^ SEED_OFFSET) % m as u64) as usize,
                    skip: (mix64(r.id ^ SEED_SKIP) % (m as u64 - 1)) as usize + 1,
                    turns: match w >> rshift {
                        0 => u32::from(r.weight != 0),
                        t => t,
                    },
                }
            })
            .collect();
        // Identity order, so the result does not depend on where a real sits in the pool.
        setup.sort_by_key(|s| (reals[s.real as usize].id, s.real));

        let mut taken = vec![false; m];
        let mut filled = 0;
        'fill: loop {
            for ds in setup.iter_mut() {
                for _ in 0..ds.turns {
                    while taken[ds.perm] {
                        ds.perm += ds.skip;
                        if ds.perm >= m {
                            ds.perm -= m;
                        }
                    }
                    taken[ds.perm] = true;
                    lookup[ds.perm] = ds.real;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        MhTable { lookup }
    }

    #[inline]
    fn key(client: Ipv4Addr, port: u16) -> u64 {
        (u64::from(u32::from(client)) << 16) | u64::from(port)
    }

    /// Slot of `key` for fallback probe `probe` (0 = the primary slot).
    #[inline]
    fn slot(key: u64, probe: u64) -> usize {
        (mix64(key ^ SEED_CLIENT ^ probe.wrapping_mul(GOLDEN_64)) % MH_TAB_SIZE as u64) as usize
    }

    #[inline]
    fn real_at(&self, reals: &[RealView], slot: usize) -> Option<usize> {
        let r = self.lookup[slot] as usize;
        (r < reals.len()).then_some(r)
    }

    /// `ip_vs_mh_get` / `ip_vs_mh_get_fallback`.
    pub(super) fn pick(
        &self,
        reals: &[RealView],
        client: Ipv4Addr,
        port: u16,
        fallback: bool,
    ) -> Option<usize> {
        let key = Self::key(client, port);
        let r = self.real_at(reals, Self::slot(key, 0))?;
        if reals[r].usable() {
            return Some(r);
        }
        if !fallback || !super::any_usable(reals) {
            return None;
        }
        for probe in 1..=MH_TAB_SIZE as u64 {
            let r = self.real_at(reals, Self::slot(key, probe))?;
            if reals[r].usable() {
                return Some(r);
            }
        }
        None
    }

    #[cfg(test)]
    fn lookup(&self) -> &[u32] {
        &self.lookup
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RealView, SchedFlags, SchedKind, Scheduler};
    use super::*;

    fn is_prime(n: usize) -> bool {
        n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
    }

    fn reals_n(n: usize) -> Vec<RealView> {
        (0..n)
            .map(|i| RealView::new(RealView::id_of(Ipv4Addr::new(10, 1, (i / 250) as u8, i as u8), 80), 1))
            .collect()
    }

    fn clients(n: u32) -> impl Iterator<Item = Ipv4Addr> {
        (0..n).map(|i| Ipv4Addr::from(0x6440_0000u32 + i))
    }

    #[test]
    fn table_prime_and_complete() {
        assert!(MH_TAB_SIZE >= 65_537 && is_prime(MH_TAB_SIZE));
        for n in [1, 2, 7, 100] {
            let t = MhTable::new(&reals_n(n));
            assert_eq!(t.lookup().len(), MH_TAB_SIZE);
            assert!(t.lookup().iter().all(|&r| (r as usize) < n), "n={n}: every slot filled");
        }
        let mut zero = reals_n(3);
        zero.iter_mut().for_each(|r| r.weight = 0);
        assert!(MhTable::new(&zero).lookup().iter().all(|&r| r == NONE));
    }

    #[test]
    fn equal_weights_share_the_table_evenly() {
        let n = 10;
        let t = MhTable::new(&reals_n(n));
        let mut share = vec![0usize; n];
        t.lookup().iter().for_each(|&r| share[r as usize] += 1);
        let ideal = MH_TAB_SIZE / n;
        for s in share {
            assert!(s.abs_diff(ideal) <= ideal / 100 + 1, "{s} vs {ideal}");
        }
    }

    #[test]
    fn independent_of_pool_order() {
        let a = reals_n(6);
        let mut b = a.clone();
        b.reverse();
        let (ta, tb) = (MhTable::new(&a), MhTable::new(&b));
        for (x, y) in ta.lookup().iter().zip(tb.lookup()) {
            assert_eq!(a[*x as usize].id, b[*y as usize].id);
        }
    }

    /// Removing one of N reals must move that real's keys (~1/N) and only a little more.
    #[test]
    fn minimal_disruption_on_removal() {
        const KEYS: u32 = 100_000;
        for n in [5usize, 10] {
            let before = reals_n(n);
            let gone = n / 2;
            let after: Vec<RealView> =
                before.iter().enumerate().filter(|&(i, _)| i != gone).map(|(_, r)| *r).collect();
            let mut s0 = Scheduler::new(SchedKind::Mh, &before);
            let mut s1 = Scheduler::new(SchedKind::Mh, &after);
            let (mut moved, mut on_survivors, mut survivors_moved) = (0u32, 0u32, 0u32);
            for c in clients(KEYS) {
                let id0 = before[s0.pick(&before, c, 0).unwrap()].id;
                let id1 = after[s1.pick(&after, c, 0).unwrap()].id;
                if id0 != id1 {
                    moved += 1;
                }
                if id0 != before[gone].id {
                    on_survivors += 1;
                    if id0 != id1 {
                        survivors_moved += 1;
                    }
                }
            }
            let frac = f64::from(moved) / f64::from(KEYS);
            let bound = 1.0 / n as f64 + 0.03;
            assert!(frac <= bound, "n={n}: moved {frac:.4} > {bound:.4}");
            let stray = f64::from(survivors_moved) / f64::from(on_survivors);
            assert!(stray <= 0.01, "n={n}: {stray:.4} of keys on surviving reals moved");
        }
    }

    #[test]
    fn weights_are_proportional() {
        let mut reals = reals_n(4);
        let w = [1u32, 2, 3, 4];
        for (r, &w) in reals.iter_mut().zip(&w) {
            r.weight = w * 100; // gcd 100: scaled away
        }
        let mut s = Scheduler::new(SchedKind::Mh, &reals);
        let mut hits = [0u32; 4];
        for c in clients(100_000) {
            hits[s.pick(&reals, c, 0).unwrap()] += 1;
        }
        for i in 0..4 {
            let want = 100_000.0 * f64::from(w[i]) / 10.0;
            let got = f64::from(hits[i]);
            assert!((got - want).abs() / want <= 0.05, "real {i}: {got} vs {want} ({hits:?})");
        }
    }

    #[test]
    fn huge_weights_are_shifted_not_overflowed() {
        let mut reals = reals_n(3);
        reals[0].weight = u32::MAX;
        reals[1].weight = 1;
        reals[2].weight = u32::MAX / 2;
        let t = MhTable::new(&reals);
        assert!(t.lookup().iter().all(|&r| r < 3));
        assert!(t.lookup().contains(&1), "a positive weight always gets at least one turn");
    }

    #[test]
    fn stable_and_fallback() {
        let mut reals = reals_n(5);
        let mut s = Scheduler::new(SchedKind::Mh, &reals);
        let mut strict =
            Scheduler::with_flags(SchedKind::Mh, &reals, SchedFlags { hash_port: false, fallback: false });
        let mut home = Vec::new();
        for c in clients(5000) {
            let r = s.pick(&reals, c, 1).unwrap();
            assert_eq!(s.pick(&reals, c, 2), Some(r));
            home.push(r);
        }
        reals[2].overloaded = true;
        let mut spread = [0u32; 5];
        for (c, &h) in clients(5000).zip(&home) {
            let r = s.pick(&reals, c, 0).unwrap();
            if h == 2 {
                assert_ne!(r, 2);
                assert_eq!(strict.pick(&reals, c, 0), None);
                spread[r] += 1;
            } else {
                assert_eq!(r, h, "clients of healthy reals stay put");
            }
        }
        assert!(
            spread.iter().enumerate().all(|(i, &n)| i == 2 || n > 0),
            "stranded clients spread: {spread:?}"
        );
        reals.iter_mut().for_each(|r| r.overloaded = true);
        assert_eq!(s.pick(&reals, Ipv4Addr::LOCALHOST, 0), None);
    }

    #[test]
    fn hash_port_spreads_one_client() {
        let reals = reals_n(4);
        let mut s =
            Scheduler::with_flags(SchedKind::Mh, &reals, SchedFlags { hash_port: true, fallback: true });
        let mut seen = [false; 4];
        for port in 1024..1200 {
            seen[s.pick(&reals, Ipv4Addr::LOCALHOST, port).unwrap()] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}
