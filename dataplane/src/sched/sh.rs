//! Source hashing, as `ip_vs_sh.c` (with the `sh-port` and `sh-fallback` flags).
//!
//! A static table of [`SH_TAB_SIZE`] buckets is dealt out in pool order, `weight` consecutive buckets per
//! real, round and round until full. A client hashes (`hash_32(port + addr, 8)`, the kernel's golden-ratio
//! hash) to one bucket.
//!
//! Invariants and kernel quirks kept on purpose, so that a pool migrated from LVS maps clients the same:
//! - A real with weight 0 still takes one bucket per round (kernel `++d_count >= weight`); it is never
//!   returned, its clients go through the fallback. A weight >= 256 on the first real fills the whole table.
//! - The table depends only on the pool's order and weights, so rebuilding the same pool maps every client
//!   to the same real.
//! - Fallback (our default; LVS needs `sh-fallback`): when the bucket's real is unusable, probe buckets
//!   `(offset + ihash + ihash) & 255` for `offset = 0..256`, exactly the kernel's walk, and take the first
//!   usable real. It visits every bucket, so it finds a usable real whenever the table has one. Without
//!   fallback an unusable bucket gives `None`, as plain LVS sh.

use super::RealView;
use std::net::Ipv4Addr;

/// LVS `IP_VS_SH_TAB_SIZE` (1 << `CONFIG_IP_VS_SH_TAB_BITS` = 8).
pub const SH_TAB_SIZE: usize = 256;
const SH_TAB_BITS: u32 = 8;
const SH_TAB_MASK: usize = SH_TAB_SIZE - 1;
const NONE: u32 = u32::MAX;

/// Linux `GOLDEN_RATIO_32`, as used by `hash_32()`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

#[derive(Clone)]
pub(super) struct ShTable {
    buckets: Box<[u32; SH_TAB_SIZE]>,
}

impl ShTable {
    /// `ip_vs_sh_reassign`.
    pub(super) fn new(reals: &[RealView]) -> ShTable {
        let mut buckets = Box::new([NONE; SH_TAB_SIZE]);
        if !reals.is_empty() {
            let (mut p, mut d_count) = (0usize, 0u64);
            for b in buckets.iter_mut() {
                *b = p as u32;
                d_count += 1;
                if d_count >= u64::from(reals[p].weight) {
                    p = (p + 1) % reals.len();
                    d_count = 0;
                }
            }
        }
        ShTable { buckets }
    }

    /// `ip_vs_sh_hashkey` for IPv4: `(offset + hash_32(port + addr, 8)) & mask`.
    #[inline]
    fn hashkey(client: Ipv4Addr, port: u16, offset: usize) -> usize {
        let v = u32::from(port).wrapping_add(u32::from(client));
        let h = (v.wrapping_mul(GOLDEN_RATIO_32) >> (32 - SH_TAB_BITS)) as usize;
        (offset + h) & SH_TAB_MASK
    }

    #[inline]
    fn real_at(&self, reals: &[RealView], bucket: usize) -> Option<usize> {
        // An index beyond the pool means the caller shrank it without a rebuild: treat as empty.
        let r = self.buckets[bucket] as usize;
        (r < reals.len()).then_some(r)
    }

    /// `ip_vs_sh_get` / `ip_vs_sh_get_fallback`.
    pub(super) fn pick(
        &self,
        reals: &[RealView],
        client: Ipv4Addr,
        port: u16,
        fallback: bool,
    ) -> Option<usize> {
        let ihash = Self::hashkey(client, port, 0);
        let r = self.real_at(reals, ihash)?;
        if reals[r].usable() {
            return Some(r);
        }
        if !fallback || !super::any_usable(reals) {
            return None;
        }
        for offset in 0..SH_TAB_SIZE {
            let roffset = (offset + ihash) % SH_TAB_SIZE;
            let r = self.real_at(reals, Self::hashkey(client, port, roffset))?;
            if reals[r].usable() {
                return Some(r);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::pool;
    use super::super::{SchedFlags, SchedKind, Scheduler};
    use super::*;

    fn client(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i.wrapping_mul(7919)))
    }

    #[test]
    fn table_dealt_by_weight() {
        let t = ShTable::new(&pool(&[2, 1, 0]));
        assert_eq!(t.buckets[..8], [0, 0, 1, 2, 0, 0, 1, 2], "weight 0 still takes one bucket per round");
        let t = ShTable::new(&pool(&[300, 1]));
        assert!(t.buckets.iter().all(|&b| b == 0), "kernel: a weight >= 256 on the first real fills it");
        assert!(ShTable::new(&[]).buckets.iter().all(|&b| b == NONE));
    }

    #[test]
    fn stable_per_client_and_across_rebuilds() {
        let reals = pool(&[1, 2, 3, 1]);
        let mut a = Scheduler::new(SchedKind::Sh, &reals);
        let mut b = Scheduler::new(SchedKind::Sh, &reals);
        for i in 0..2000 {
            let c = client(i);
            let first = a.pick(&reals, c, 1).unwrap();
            assert_eq!(a.pick(&reals, c, 2), Some(first), "port ignored without hash_port");
            assert_eq!(b.pick(&reals, c, 3), Some(first), "a rebuild of the same pool agrees");
        }
    }

    #[test]
    fn distribution_follows_weight() {
        let w = [1u32, 2, 3, 4];
        let reals = pool(&w);
        let mut s = Scheduler::new(SchedKind::Sh, &reals);
        let n = 100_000u32;
        let mut hits = [0u32; 4];
        for i in 0..n {
            hits[s.pick(&reals, Ipv4Addr::from(0xC000_0000 + i * 13), 0).unwrap()] += 1;
        }
        for (i, &h) in hits.iter().enumerate() {
            let want = f64::from(n) * f64::from(w[i]) / 10.0;
            let got = f64::from(h);
            assert!((got - want).abs() / want < 0.15, "real {i}: {got} vs {want} ({hits:?})");
        }
    }

    #[test]
    fn fallback_walks_on_and_no_fallback_fails() {
        let mut reals = pool(&[1, 1, 1]);
        let c =
            (0..).map(client).find(|&c| ShTable::new(&reals).pick(&reals, c, 0, false) == Some(1)).unwrap();
        reals[1].overloaded = true;
        let mut fb = Scheduler::new(SchedKind::Sh, &reals);
        let mut strict =
            Scheduler::with_flags(SchedKind::Sh, &reals, SchedFlags { hash_port: false, fallback: false });
        let moved = fb.pick(&reals, c, 0).unwrap();
        assert_ne!(moved, 1);
        assert_eq!(fb.pick(&reals, c, 0), Some(moved), "fallback is deterministic");
        assert_eq!(strict.pick(&reals, c, 0), None);
        reals[0].weight = 0;
        reals[2].overloaded = true;
        assert_eq!(fb.pick(&reals, c, 0), None);
    }

    #[test]
    fn hash_port_spreads_one_client() {
        let reals = pool(&[1, 1, 1, 1]);
        let flags = SchedFlags { hash_port: true, fallback: true };
        let mut s = Scheduler::with_flags(SchedKind::Sh, &reals, flags);
        let c = client(42);
        let mut seen = [false; 4];
        for port in 1024..1100 {
            seen[s.pick(&reals, c, port).unwrap()] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(s.pick(&reals, c, 5000), s.pick(&reals, c, 5000));
    }
}
