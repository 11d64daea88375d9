//! A fixed-size log-linear latency histogram (HDR-style): no allocation after construction, O(1)
//! record, percentiles with a relative error below 1/[`SUB`].
//!
//! Invariant: bucket `b` covers `[lower(b), lower(b + 1))`; values below [`SUB`] have exact buckets.

/// Sub-buckets per power of two (relative resolution 1/64, about 1.6 %).
pub const SUB: u64 = 64;
const SUB_BITS: u32 = SUB.trailing_zeros();
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of values (TSC cycles, nanoseconds: any unit) by magnitude.
#[derive(Debug, Clone)]
pub struct Latency {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..SUB
    ((shift as u64 + 1) * SUB + sub) as usize
}

fn lower(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    (SUB + b % SUB) << shift
}

impl Latency {
    pub fn new() -> Latency {
        Latency { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0, max: 0 }
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max = 0;
    }

    /// The value below which a fraction `q` (0..=1) of the samples lie: the upper edge of the bucket
    /// holding that rank (so never below the true quantile), capped at the largest sample. None when
    /// empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let hi = if b + 1 < BUCKETS { lower(b + 1).saturating_sub(1) } else { u64::MAX };
                return Some(hi.min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for b in 0..BUCKETS - 1 {
            assert!(lower(b) < lower(b + 1), "bucket {b}");
            assert_eq!(bucket(lower(b)), b);
            assert_eq!(bucket(lower(b + 1) - 1), b);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_resolution() {
        let mut h = Latency::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!(got >= exact && got <= exact * (1.0 + 1.0 / SUB as f64), "q {q}: {got}");
        }
        assert_eq!(h.quantile(1.0), Some(100_000));
        h.clear();
        h.record(7);
        assert_eq!((h.quantile(0.5), h.count(), h.max()), (Some(7), 1, 7));
    }
}
