//! The dataplane's buffer traits over DPDK: an [`Mbuf`] is a [`Frame`], a mempool a [`FramePool`].
//!
//! This is the one bridge between `rvs-dataplane` (which never sees DPDK types) and DPDK; rvsd and
//! the traffic generator both drive the dataplane's logic through it.
use std::sync::Arc;

use rvs_dataplane::frame::{Frame, FramePool};

use crate::{Mbuf, Mempool};

impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n)
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}

/// A shared mempool as a frame source (one per worker; the mempool's per-lcore cache keeps
/// allocation lock-free).
#[derive(Debug, Clone)]
pub struct PktPool(pub Arc<Mempool>);

impl FramePool for PktPool {
    type Frame = Mbuf;
    #[inline]
    fn alloc(&mut self) -> Option<Mbuf> {
        self.0.alloc()
    }
}
