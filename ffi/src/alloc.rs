//! A global allocator that asks the kernel for transparent huge pages behind large allocations.
//!
//! A connection table of a million entries spans hundreds of megabytes; on 4 KiB pages every
//! lookup pays a TLB miss on top of its cache misses. Where the kernel's THP mode is `madvise`
//! (the common default), `madvise(MADV_HUGEPAGE)` on the allocation before it is first touched
//! lets it be backed by 2 MiB pages. Small allocations go to the system allocator untouched.
//!
//! Invariants: this only ever adds advice; it never changes what memory is returned, so it is
//! exactly as safe as [`System`]. The advice is a system call made at allocation time (start-up,
//! configuration changes), never on the packet path.
use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are advised.
pub const ADVISE_MIN: usize = 4 << 20;
const HUGE: usize = 2 << 20;
const MADV_HUGEPAGE: i32 = 14;

extern "C" {
    fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
}

/// `#[global_allocator] static A: dpdk_sys::alloc::HugePageAdvice = dpdk_sys::alloc::HugePageAdvice;`
#[derive(Debug, Clone, Copy, Default)]
pub struct HugePageAdvice;

fn advise(p: *mut u8, size: usize) {
    if p.is_null() || size < ADVISE_MIN {
        return;
    }
    let start = (p as usize).next_multiple_of(HUGE);
    let end = (p as usize + size) / HUGE * HUGE;
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made, page-aligned; MADV_HUGEPAGE only
        // changes how the kernel backs the pages, never their contents or validity. Failure (THP
        // disabled) is harmless and ignored.
        unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE) };
    }
}

// SAFETY: every method delegates to System with the caller's arguments, so System's guarantees
// hold; `advise` does not touch the memory's contents.
unsafe impl GlobalAlloc for HugePageAdvice {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= ADVISE_MIN && layout.align() > 16 {
            // System zeroes over-aligned memory itself, touching every page before the advice
            // could apply: advise first, then zero.
            // SAFETY: forwarded contract; on success `p` has `layout.size()` writable bytes.
            unsafe {
                let p = System.alloc(layout);
                advise(p, layout.size());
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                return p;
            }
        }
        // SAFETY: forwarded contract. (calloc leaves fresh large mappings untouched.)
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon_huge_kb() -> u64 {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("AnonHugePages:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
            })
            .unwrap_or(0)
    }

    #[test]
    fn large_allocations_get_huge_pages_where_the_kernel_allows() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if !(mode.contains("[madvise]") || mode.contains("[always]")) {
            eprintln!("THP off here ({}): nothing to check", mode.trim());
            return;
        }
        let size = 64 << 20;
        let l = Layout::from_size_align(size, 4096).unwrap();
        let before = anon_huge_kb();
        // SAFETY: non-zero layout, written within bounds, freed with the same layout.
        unsafe {
            let p = HugePageAdvice.alloc_zeroed(l);
            assert!(!p.is_null());
            for i in (0..size).step_by(4096) {
                *p.add(i) = 1;
            }
            let after = anon_huge_kb();
            HugePageAdvice.dealloc(p, l);
            // At least half of it on 2 MiB pages (fragmented memory may deny some).
            assert!(after - before >= (size as u64 / 1024) / 2, "AnonHugePages {before} -> {after} kB");
        }
    }

    #[test]
    fn large_allocations_work_and_small_ones_are_untouched() {
        let a = HugePageAdvice;
        for size in [64usize, ADVISE_MIN, 3 * ADVISE_MIN + 123] {
            let l = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size layout; freed below with the same layout.
            unsafe {
                let p = a.alloc_zeroed(l);
                assert!(!p.is_null());
                assert_eq!(*p.add(size - 1), 0);
                *p.add(size - 1) = 7;
                let q = a.realloc(p, l, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                a.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
