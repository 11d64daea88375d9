//! A cache prefetch hint for code that must stay free of `unsafe` (the dataplane).
//!
//! Stable Rust has no safe prefetch (`std::hint::prefetch_read` is nightly-only, and
//! `_mm_prefetch` is an `unsafe`-to-call target-feature function), so the one `unsafe` block lives
//! here, under `ffi/`, the only place the project allows it. The dataplane depends on this crate
//! and stays DPDK-free.
//!
//! A prefetch is a hint: it never faults, never changes what the program computes, and may be
//! ignored by the CPU. On targets other than x86_64 it compiles to nothing.

/// Asks the CPU to bring the cache line holding `*r` into L1 (read intent).
#[inline(always)]
pub fn prefetch<T: ?Sized>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = r as *const T as *const i8;
        // SAFETY: PREFETCHT0 reads nothing architecturally and cannot fault, even on an invalid
        // address (here it is a live reference anyway); SSE is part of the x86_64 baseline, so the
        // target feature the intrinsic is declared with is always present.
        unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
    }
}

/// Prefetches the first cache line of a byte slice (a packet's headers), if it is not empty.
#[inline(always)]
pub fn prefetch_bytes(b: &[u8]) {
    if let Some(first) = b.first() {
        prefetch(first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_is_only_a_hint() {
        let v = vec![7u8; 256];
        prefetch(&v[..]);
        prefetch(&v[200]);
        prefetch_bytes(&v);
        prefetch_bytes(&[]);
        assert_eq!(v.iter().map(|&x| x as usize).sum::<usize>(), 7 * 256);
    }
}
