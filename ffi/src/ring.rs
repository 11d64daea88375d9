//! Single-producer/single-consumer mbuf rings between two workers.
//!
//! Invariant: [`ring_spsc`] returns exactly one producer and one consumer handle, each `Send` but not
//! `Sync`, which is what makes the SP/SC ring flags sound. The ring is freed with the last handle, and
//! any mbufs still queued are freed with it.
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Errno, Error, Result};
use crate::mbuf::Mbuf;
use crate::sys;

pub(crate) const RING_F_SP_ENQ: u32 = 0x0001;
pub(crate) const RING_F_SC_DEQ: u32 = 0x0002;

#[derive(Debug)]
struct Inner {
    ptr: NonNull<sys::rte_ring>,
}

// SAFETY: the ring is a lock-free structure designed for cross-thread use; the SP/SC discipline is
// enforced by having exactly one producer and one consumer handle.
unsafe impl Send for Inner {}
// SAFETY: as above; shared access only goes through the two handles.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut buf: [*mut c_void; 64] = [std::ptr::null_mut(); 64];
        loop {
            // SAFETY: no handle remains, so this thread is the only user of the ring.
            let n = unsafe {
                sys::rvs_ring_dequeue_burst(self.ptr.as_ptr(), buf.as_mut_ptr(), 64, std::ptr::null_mut())
            };
            if n == 0 {
                break;
            }
            for p in &buf[..n as usize] {
                // SAFETY: only Mbufs are ever enqueued, each owned by the ring.
                drop(unsafe { Mbuf::from_raw(NonNull::new_unchecked(*p as *mut sys::rte_mbuf)) });
            }
        }
        // SAFETY: emptied above; no handle remains.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}

/// Producer end.
#[derive(Debug)]
pub struct RingTx {
    inner: Arc<Inner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// Consumer end.
#[derive(Debug)]
pub struct RingRx {
    inner: Arc<Inner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// Creates an SP/SC ring of `count` slots (a power of two; one slot stays empty).
pub fn ring_spsc(name: &str, count: u32, socket: i32) -> Result<(RingTx, RingRx)> {
    if !count.is_power_of_two() {
        return Err(Error::new("rte_ring_create", Errno::Invalid, "ring size must be a power of two"));
    }
    let c =
        CString::new(name).map_err(|_| Error::new("rte_ring_create", Errno::Invalid, "name contains NUL"))?;
    // SAFETY: valid name; EAL initialised by the caller owning Eal.
    let p = unsafe { sys::rte_ring_create(c.as_ptr(), count, socket, RING_F_SP_ENQ | RING_F_SC_DEQ) };
    let ptr = NonNull::new(p).ok_or_else(|| Error::last("rte_ring_create"))?;
    let inner = Arc::new(Inner { ptr });
    Ok((RingTx { inner: inner.clone(), _not_sync: PhantomData }, RingRx { inner, _not_sync: PhantomData }))
}

impl RingTx {
    /// Moves mbufs from the front of `pkts` into the ring; the ones that did not fit stay in `pkts`.
    #[inline]
    pub fn enqueue_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let total = pkts.len();
        if total == 0 {
            return 0;
        }
        // SAFETY: Vec<Mbuf> is a pointer array (repr(transparent)); single producer by construction.
        let n = unsafe {
            sys::rvs_ring_enqueue_burst(
                self.inner.ptr.as_ptr(),
                pkts.as_ptr() as *const *mut c_void,
                total as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the first n mbufs are now owned by the ring; drop them from the vector without freeing.
        unsafe {
            let base = pkts.as_mut_ptr();
            std::ptr::copy(base.add(n), base, total - n);
            pkts.set_len(total - n);
        }
        n
    }
}

impl RingRx {
    /// Dequeues into the spare capacity of `out`.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut Vec<Mbuf>) -> usize {
        let spare = out.spare_capacity_mut();
        if spare.is_empty() {
            return 0;
        }
        // SAFETY: spare capacity is a valid pointer array; single consumer by construction.
        let n = unsafe {
            sys::rvs_ring_dequeue_burst(
                self.inner.ptr.as_ptr(),
                spare.as_mut_ptr() as *mut *mut c_void,
                spare.len() as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: n valid mbufs were written and are now ours.
        unsafe { out.set_len(out.len() + n) };
        n
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only query on a valid ring.
        unsafe { sys::rvs_ring_count(self.inner.ptr.as_ptr()) }
    }
}
