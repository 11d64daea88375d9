//! Interleaved weighted round robin, as `ip_vs_wrr.c`.
//!
//! Passes run with a current weight `cw` going from `mw` down to 1 in steps of `di` (the gcd of the
//! positive weights); each pass picks, in pool order, every usable real with `weight >= cw`. Hence over one
//! cycle of `sum(weight) / di` picks each real gets exactly `weight / di` picks, interleaved (4,3,2 gives
//! a a b a b c a b c), rather than in runs.
//!
//! Invariants:
//! - `mw = max_weight - (di - 1)`, so the last pass of a cycle runs with `cw == 1`; that is the kernel's
//!   guard for weights lowered below `di` without a rebuild.
//! - `1 <= cw <= mw` whenever `mw > 0`, so `weight >= cw` already excludes weight 0.
//! - The state is read from the pool at build time only; weight changes take effect exactly after a
//!   rebuild (which restarts the cycle). Overload changes take effect immediately and are just skipped.

use super::RealView;

#[derive(Clone, Debug)]
pub(super) struct Wrr {
    /// Last picked position; `None` is the kernel's list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl Wrr {
    pub(super) fn new(reals: &[RealView]) -> Wrr {
        let di = i64::from(super::gcd_weight(reals).max(1));
        let max = reals.iter().map(|r| i64::from(r.weight)).max().unwrap_or(0);
        // All weights zero gives mw == 0, the kernel's "no available dests" marker.
        let mw = if max == 0 { 0 } else { max - (di - 1) };
        Wrr { cl: None, cw: mw, mw, di }
    }

    /// `ip_vs_wrr_schedule`, with the list head modelled as `None` and `stop` as the real at which an
    /// unsuccessful search must end once every real has been checked with `cw <= di`.
    pub(super) fn pick(&mut self, reals: &[RealView]) -> Option<usize> {
        let n = reals.len();
        if self.cl.is_some_and(|c| c >= n) {
            self.cl = None;
        }
        if self.mw <= 0 {
            return None;
        }
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            for (i, r) in reals.iter().enumerate().skip(pos.map_or(0, |p| p + 1)) {
                if !r.overloaded && i64::from(r.weight) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Everything has been tried with cw <= di (or we started at the head, so the single
                // traversal already covered all reals at the lowest weight): nobody is usable.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first low-weight traversal only covered reals after `last`; finish at `last`.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::pool;
    use super::super::{SchedKind, Scheduler};
    use std::net::Ipv4Addr;

    fn seq(weights: &[u32], n: usize) -> Vec<usize> {
        let reals = pool(weights);
        let mut s = Scheduler::new(SchedKind::Wrr, &reals);
        (0..n).map(|_| s.pick(&reals, Ipv4Addr::UNSPECIFIED, 0).unwrap()).collect()
    }

    fn counts(picks: &[usize], n: usize) -> Vec<usize> {
        (0..n).map(|i| picks.iter().filter(|&&p| p == i).count()).collect()
    }

    #[test]
    fn kernel_interleaving_4_3_2() {
        // cw=4: a | cw=3: a b | cw=2: a b c | cw=1: a b c
        let s = seq(&[4, 3, 2], 18);
        assert_eq!(s[..9], [0, 0, 1, 0, 1, 2, 0, 1, 2]);
        assert_eq!(s[9..], s[..9], "cycles repeat");
        assert_eq!(counts(&s[..9], 3), [4, 3, 2]);
    }

    #[test]
    fn exact_counts_over_a_cycle() {
        for w in [&[5, 1, 3, 7][..], &[1], &[2, 2, 2], &[10, 1], &[3, 0, 3, 1]] {
            let total: u32 = w.iter().sum();
            let s = seq(w, total as usize * 3);
            let c = counts(&s, w.len());
            let want: Vec<usize> = w.iter().map(|&x| x as usize * 3).collect();
            assert_eq!(c, want, "weights {w:?}");
            // Exactness also holds for every single cycle, not just on average.
            let one = counts(&s[..total as usize], w.len());
            assert_eq!(one, w.iter().map(|&x| x as usize).collect::<Vec<_>>(), "weights {w:?}");
        }
    }

    #[test]
    fn weight_zero_gets_nothing() {
        let s = seq(&[0, 2, 0, 1], 30);
        assert_eq!(counts(&s, 4), [0, 20, 0, 10]);
    }

    #[test]
    fn gcd_greater_than_one() {
        // di=2, mw=5: cw=5 a | cw=3 a b | cw=1 a b c  -> cycle of 6 = sum/di.
        let s = seq(&[6, 4, 2], 12);
        assert_eq!(s[..6], [0, 0, 1, 0, 1, 2]);
        assert_eq!(s[6..], s[..6]);
        assert_eq!(counts(&s, 3), [6, 4, 2], "sum(weights) picks give exactly the weights");
    }

    #[test]
    fn overloaded_skipped_and_none_when_all_unusable() {
        let mut reals = pool(&[4, 3, 2]);
        let mut s = Scheduler::new(SchedKind::Wrr, &reals);
        let c = Ipv4Addr::UNSPECIFIED;
        assert_eq!(s.pick(&reals, c, 0), Some(0));
        reals[0].overloaded = true;
        for _ in 0..20 {
            assert_ne!(s.pick(&reals, c, 0), Some(0));
        }
        reals[1].overloaded = true;
        reals[2].overloaded = true;
        assert_eq!(s.pick(&reals, c, 0), None);
        assert_eq!(s.pick(&reals, c, 0), None);
        reals[2].overloaded = false;
        assert_eq!(s.pick(&reals, c, 0), Some(2));
        // All weights zero: the kernel's mw == 0 early exit.
        let zero = pool(&[0, 0]);
        assert_eq!(Scheduler::new(SchedKind::Wrr, &zero).pick(&zero, c, 0), None);
    }

    #[test]
    fn rebuild_after_weight_change_is_exact() {
        let mut reals = pool(&[4, 3, 2]);
        let c = Ipv4Addr::UNSPECIFIED;
        let mut s = Scheduler::new(SchedKind::Wrr, &reals);
        for _ in 0..5 {
            s.pick(&reals, c, 0);
        }
        reals[1].weight = 1;
        reals[2].weight = 5;
        let mut s = Scheduler::new(SchedKind::Wrr, &reals);
        let p: Vec<usize> = (0..10).map(|_| s.pick(&reals, c, 0).unwrap()).collect();
        assert_eq!(counts(&p, 3), [4, 1, 5]);
    }

    #[test]
    fn shrunk_pool_without_rebuild_does_not_panic() {
        let reals = pool(&[4, 3, 2]);
        let mut s = Scheduler::new(SchedKind::Wrr, &reals);
        let c = Ipv4Addr::UNSPECIFIED;
        for _ in 0..6 {
            s.pick(&reals, c, 0);
        }
        assert!(s.pick(&reals[..1], c, 0) == Some(0));
        assert_eq!(s.pick(&[], c, 0), None);
    }
}
