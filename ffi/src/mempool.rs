//! Packet-buffer pools.
use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{Errno, Error, Result};
use crate::mbuf::Mbuf;
use crate::sys;

/// A `rte_pktmbuf` pool. Allocation and free are thread-safe (per-lcore caches), so the pool is
/// shared by reference between workers.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put are multi-producer/multi-consumer safe; the pointer itself is immutable.
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `rte_pktmbuf_pool_create`: `n` mbufs with `data_room` bytes of buffer (headroom included).
    pub fn pktmbuf(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let c = CString::new(name)
            .map_err(|_| Error::new("rte_pktmbuf_pool_create", Errno::Invalid, "pool name contains NUL"))?;
        // SAFETY: c is a valid C string; the EAL must be initialised, which callers ensure by owning Eal.
        let p = unsafe { sys::rte_pktmbuf_pool_create(c.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p).map(|ptr| Mempool { ptr }).ok_or_else(|| Error::last("rte_pktmbuf_pool_create"))
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// One mbuf, or None when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for self's lifetime.
        let m = unsafe { sys::rvs_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null mbuf from the pool is exclusively ours.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    pub fn available(&self) -> u32 {
        // SAFETY: valid pool pointer.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool pointer.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports using the pool are stopped before the pool is dropped (the daemon owns both
        // and drops ports first); freeing a pool with mbufs still out is the caller's bug, not UB here.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
