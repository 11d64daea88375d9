//! The packet-buffer abstraction the dataplane works on, so it never sees DPDK types.
//!
//! The daemon implements [`Frame`] for an mbuf and [`FramePool`] for a mempool; tests use
//! [`VecFrame`]. A frame is one contiguous buffer with headroom and tailroom, like a single-segment
//! mbuf: the packet path grows and shrinks it in place instead of copying.

/// One packet buffer, owned. Dropping it frees it.
pub trait Frame {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the front by `n` bytes; false (and unchanged) when the headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the end by `n` bytes; false when the tailroom is too small.
    fn append(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end.
    fn trim(&mut self, n: usize) -> bool;

    fn len(&self) -> usize {
        self.data().len()
    }

    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

/// Where new frames come from (ARP requests, RSTs, ICMP errors).
pub trait FramePool {
    type Frame: Frame;
    /// An empty frame with the pool's standard headroom, or None when the pool is exhausted.
    fn alloc(&mut self) -> Option<Self::Frame>;
}

/// A heap-backed frame for tests, fuzzing and benchmarks: `cap` bytes with `headroom` reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecFrame {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecFrame {
    pub const HEADROOM: usize = 128;
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    pub fn empty() -> VecFrame {
        VecFrame { buf: vec![0; Self::CAPACITY], start: Self::HEADROOM, end: Self::HEADROOM }
    }

    /// A frame holding a copy of `bytes` after the standard headroom.
    pub fn from_bytes(bytes: &[u8]) -> VecFrame {
        let mut f = VecFrame::empty();
        let n = bytes.len().min(Self::CAPACITY - Self::HEADROOM);
        f.buf[f.start..f.start + n].copy_from_slice(&bytes[..n]);
        f.end = f.start + n;
        f
    }
}

impl Frame for VecFrame {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }

    fn append(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.end {
            return false;
        }
        self.end += n;
        true
    }

    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

/// A pool of [`VecFrame`]s with an optional limit, so tests can exhaust it.
#[derive(Debug, Default)]
pub struct VecPool {
    /// Frames still available; None is unlimited.
    pub remaining: Option<usize>,
}

impl FramePool for VecPool {
    type Frame = VecFrame;
    fn alloc(&mut self) -> Option<VecFrame> {
        match &mut self.remaining {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(VecFrame::empty())
            }
            None => Some(VecFrame::empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_and_shrink_within_bounds() {
        let mut f = VecFrame::from_bytes(&[1, 2, 3]);
        assert!(f.prepend(VecFrame::HEADROOM));
        assert!(!f.prepend(1));
        assert!(f.adj(VecFrame::HEADROOM));
        assert_eq!(f.data(), &[1, 2, 3]);
        assert!(f.append(5));
        assert_eq!(f.len(), 8);
        assert!(f.trim(8));
        assert!(f.is_empty());
        assert!(!f.trim(1));
        assert!(!f.append(VecFrame::CAPACITY));
        let mut p = VecPool { remaining: Some(1) };
        assert!(p.alloc().is_some());
        assert!(p.alloc().is_none());
    }
}
