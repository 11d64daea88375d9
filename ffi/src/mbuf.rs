//! Owned packet buffers.
//!
//! Data access reads `buf_addr + data_off` and the lengths directly from `struct rte_mbuf` in Rust:
//! an FFI call per packet would cost about half the throughput of a tight loop. Length changes
//! (`prepend`, `adj`, `append`, `trim`) are done in Rust for single-segment mbufs, exactly as the
//! DPDK inlines do for that case, and refused for chains (callers linearize first).
use std::ptr::NonNull;

use crate::error::{Errno, Error, Result};
use crate::sys;

/// An mbuf this code owns; freed on drop, handed to the driver by `TxQueue::tx_burst`.
///
/// `repr(transparent)` over a non-null `rte_mbuf*` so a `Vec<Mbuf>` is a valid `rte_mbuf**` array
/// for the burst calls.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is exclusively owned; moving it to another thread moves that ownership.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must be a valid mbuf not owned by anything else.
    #[inline]
    pub unsafe fn from_raw(p: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }

    /// Gives up ownership without freeing.
    #[inline]
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    #[inline]
    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn m_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively.
        unsafe { self.0.as_mut() }
    }

    /// Bytes of the first (usually only) segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer (DPDK invariant),
        // and the buffer is ours while we own the mbuf.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m_mut();
        // SAFETY: as in `data`, and we hold the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline]
    pub fn data_len(&self) -> usize {
        self.m().data_len as usize
    }

    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.m().pkt_len as usize
    }

    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.m().nb_segs == 1
    }

    #[inline]
    pub fn headroom(&self) -> usize {
        self.m().data_off as usize
    }

    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        (m.buf_len as usize).saturating_sub(m.data_off as usize + m.data_len as usize)
    }

    /// The port the mbuf was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.m().port
    }

    /// The NIC's RSS hash, if it computed one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.m();
        if m.ol_flags & sys::RTE_MBUF_F_RX_RSS_HASH as u64 != 0 {
            // SAFETY: the flag says the `hash.rss` member of the union is the one written.
            Some(unsafe { m.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// Grows the packet at the front by `n` bytes.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        if m.nb_segs != 1 || n > m.data_off as usize {
            return false;
        }
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    /// Removes `n` bytes from the front.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        if m.nb_segs != 1 || n > m.data_len as usize {
            return false;
        }
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// Grows the packet at the end by `n` bytes (contents unspecified).
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        if self.m().nb_segs != 1 || n > self.tailroom() {
            return false;
        }
        let m = self.m_mut();
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    /// Removes `n` bytes from the end.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        if m.nb_segs != 1 || n > m.data_len as usize {
            return false;
        }
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// Copies a chained mbuf into its first segment, if it fits.
    pub fn linearize(&mut self) -> Result<()> {
        if self.is_contiguous() {
            return Ok(());
        }
        // SAFETY: we own the chain exclusively.
        let ret = unsafe { sys::rvs_pktmbuf_linearize(self.0.as_ptr()) };
        if ret < 0 {
            return Err(Error::new(
                "rte_pktmbuf_linearize",
                Errno::NoSpace,
                "chain does not fit one segment",
            ));
        }
        Ok(())
    }

    /// Clears RX offload flags before the buffer is sent or reused, so a driver never reads stale ones.
    #[inline]
    pub fn reset_offloads(&mut self) {
        self.m_mut().ol_flags = 0;
    }

    /// Asks the CPU to start loading the packet's first cache line (headers), so it is in cache
    /// by the time this packet is processed. A hint: no effect on correctness.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let m = self.m();
            let p = (m.buf_addr as *const u8).wrapping_add(m.data_off as usize);
            // SAFETY: prefetch never faults and reads nothing architecturally; SSE is baseline on x86_64.
            unsafe { std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0) }
        }
    }

    /// Application metadata riding with the mbuf (between workers, for instance). Only meaningful
    /// after `set_tag`: it shares storage with the RSS hash, which `reset_offloads` invalidates.
    #[inline]
    pub fn tag(&self) -> u32 {
        // SAFETY: every member of the hash union is plain integers; any bit pattern is valid.
        unsafe { self.m().__bindgen_anon_2.hash.usr }
    }

    /// Stores `tag` in the mbuf's user hash word and clears the RSS-valid flag, so nothing
    /// downstream mistakes it for a NIC hash.
    #[inline]
    pub fn set_tag(&mut self, tag: u32) {
        let m = self.m_mut();
        m.ol_flags &= !(sys::RTE_MBUF_F_RX_RSS_HASH as u64);
        m.__bindgen_anon_2.hash.usr = tag;
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (chain) and nothing else refers to it.
        unsafe { sys::rvs_pktmbuf_free(self.0.as_ptr()) }
    }
}
