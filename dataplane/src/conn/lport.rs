//! FULLNAT local ports: each worker allocates source ports only from its own slice of every local
//! address's port range, so replies from real servers (destined to `LIP:lport`) can be steered by
//! the NIC to the worker that owns the connection, without any cross-core lookup.
//!
//! Invariants:
//! - Port `p` belongs to worker `(p & mask) % workers`, with `mask = workers.next_power_of_two() - 1`.
//!   A NIC flow rule can only match "dst port & mask == value", so ownership must be a function of
//!   the low bits; each worker's slice is a union of such residues. When `workers` is not a power of
//!   two, the residues `workers..=mask` wrap onto the first workers: those get two residues instead
//!   of one (e.g. 3 workers: worker 0 owns 1/2 of the ports, workers 1 and 2 own 1/4 each). With
//!   64k ports per LIP that only matters when a worker runs out; add LIPs or use 2^k workers.
//! - The slices of `0..workers` partition every port range.
//! - An [`LportCursor`] walks its slice within `[lo, hi]` in increasing order and wraps, so a port
//!   comes back only after the whole slice has been offered; [`alloc_lport`] additionally skips any
//!   candidate whose reply tuple is live in the table. No allocation anywhere.

use super::ConnTable;
use crate::flow::{Addr, FlowKey, Proto};

/// Default lowest local port (ports below are left to the host and well-known services).
pub const LPORT_LO: u16 = 1025;
/// Default highest local port.
pub const LPORT_HI: u16 = 65535;

/// The worker that owns local port `port` when `workers` workers share the range.
#[inline]
pub fn owner(port: u16, workers: u16) -> u16 {
    debug_assert!(workers > 0);
    let mask = (workers as u32).next_power_of_two() - 1;
    ((port as u32 & mask) % workers as u32) as u16
}

/// One worker's share of the local ports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PortSlice {
    pub workers: u16,
    pub index: u16,
}

impl PortSlice {
    pub fn new(workers: u16, index: u16) -> PortSlice {
        assert!(workers > 0 && index < workers, "worker {index} of {workers}");
        PortSlice { workers, index }
    }

    /// Low-bit mask the NIC rules match on.
    pub fn mask(&self) -> u16 {
        ((self.workers as u32).next_power_of_two() - 1) as u16
    }

    /// The `port & mask()` values this worker owns (for building NIC flow rules).
    pub fn residues(&self) -> impl Iterator<Item = u16> {
        (self.index..=self.mask()).step_by(self.workers as usize)
    }

    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        owner(port, self.workers) == self.index
    }

    /// Number of owned ports in `[0, x]`.
    fn count_upto(&self, x: u32) -> u32 {
        let block = self.mask() as u32 + 1;
        let (w, i) = (self.workers as u32, self.index as u32);
        let per_block = (block - 1 - i) / w + 1;
        let n = x + 1;
        let rem = n % block;
        let partial = if rem <= i { 0 } else { ((rem - 1 - i) / w + 1).min(per_block) };
        n / block * per_block + partial
    }

    /// Number of owned ports in `[lo, hi]`.
    pub fn count(&self, lo: u16, hi: u16) -> u32 {
        if lo > hi {
            return 0;
        }
        self.count_upto(hi as u32) - if lo == 0 { 0 } else { self.count_upto(lo as u32 - 1) }
    }

    /// Smallest owned port `>= x`, if any fits in a u16.
    fn first_at_or_after(&self, x: u32) -> Option<u32> {
        let mask = self.mask() as u32;
        let (w, i) = (self.workers as u32, self.index as u32);
        let (base, r) = (x & !mask, x & mask);
        let p = if r <= i {
            base + i
        } else {
            let k = (r - i).div_ceil(w);
            let r2 = i + k * w;
            if r2 <= mask {
                base + r2
            } else {
                base + mask + 1 + i
            }
        };
        (p <= u16::MAX as u32).then_some(p)
    }
}

/// Rotating iterator over one worker's ports of one local address, within `[lo, hi]`.
#[derive(Clone, Debug)]
pub struct LportCursor {
    slice: PortSlice,
    lo: u16,
    hi: u16,
    /// Next port to offer; meaningless when `len == 0`.
    next: u16,
    len: u32,
}

impl LportCursor {
    /// A cursor over the slice within `[lo, hi]`, starting at the first owned port at or after
    /// `start` (give workers/LIPs different starts to spread reuse).
    pub fn new(slice: PortSlice, lo: u16, hi: u16, start: u16) -> LportCursor {
        let len = slice.count(lo, hi);
        let mut c = LportCursor { slice, lo, hi, next: lo, len };
        if len > 0 {
            let s = start.clamp(lo, hi) as u32;
            c.next =
                c.first_in_range(s).or_else(|| c.first_in_range(lo as u32)).expect("non-empty slice") as u16;
        }
        c
    }

    /// The default range [`LPORT_LO`]..=[`LPORT_HI`].
    pub fn with_default_range(slice: PortSlice, start: u16) -> LportCursor {
        LportCursor::new(slice, LPORT_LO, LPORT_HI, start)
    }

    fn first_in_range(&self, x: u32) -> Option<u32> {
        self.slice.first_at_or_after(x).filter(|&p| p <= self.hi as u32)
    }

    pub fn slice(&self) -> PortSlice {
        self.slice
    }

    /// How many distinct ports the cursor cycles through.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next candidate port, advancing the cursor; `None` only if the slice is empty.
    #[inline]
    pub fn next_port(&mut self) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let p = self.next;
        let after = self.first_in_range(p as u32 + 1).or_else(|| self.first_in_range(self.lo as u32));
        self.next = after.unwrap_or(p as u32) as u16;
        Some(p)
    }
}

/// Picks a local port for a new connection `LIP:? -> RS:rport`: the first of at most `max_tries`
/// candidates from `cursor` whose reply tuple `RS:rport -> LIP:port` is not live in `table`.
/// `None` means this worker's slice of `lip` is exhausted for that real server (for now): the
/// caller counts it and drops or tries another LIP.
pub fn alloc_lport<A: Addr>(
    table: &ConnTable<A>,
    cursor: &mut LportCursor,
    lip: A,
    rs: A,
    rport: u16,
    proto: Proto,
    max_tries: usize,
) -> Option<u16> {
    let tries = max_tries.min(cursor.len() as usize);
    for _ in 0..tries {
        let port = cursor.next_port()?;
        let key = FlowKey { proto, src: rs, dst: lip, sport: rport, dport: port };
        if !table.contains(&key) {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{NewConn, Timeouts};
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn owner_basics() {
        assert_eq!(owner(12345, 1), 0);
        // 3 workers, mask 3: residues 0,1,2,3 -> workers 0,1,2,0.
        assert_eq!((0..8).map(|p| owner(p, 3)).collect::<Vec<_>>(), [0, 1, 2, 0, 0, 1, 2, 0]);
        assert_eq!(PortSlice::new(3, 0).residues().collect::<Vec<_>>(), [0, 3]);
        assert_eq!(PortSlice::new(3, 2).residues().collect::<Vec<_>>(), [2]);
        assert_eq!(PortSlice::new(4, 1).mask(), 3);
    }

    #[test]
    fn slices_partition_the_range() {
        let (lo, hi) = (LPORT_LO, LPORT_HI);
        for workers in 1..=64u16 {
            let mut seen = vec![false; 65536];
            let mut total = 0u32;
            for index in 0..workers {
                let slice = PortSlice::new(workers, index);
                let mut cur = LportCursor::new(slice, lo, hi, lo.wrapping_add(index * 97));
                let first = cur.next_port().unwrap();
                let mut p = first;
                for step in 0..cur.len() {
                    assert!((lo..=hi).contains(&p));
                    assert_eq!(owner(p, workers), index, "port {p}, {workers} workers");
                    assert!(slice.residues().any(|r| r == p & slice.mask()));
                    assert!(!seen[p as usize], "port {p} handed out twice ({workers} workers)");
                    seen[p as usize] = true;
                    p = cur.next_port().unwrap();
                    // After exactly len() ports the cursor is back where it started.
                    assert_eq!(p == first, step + 1 == cur.len());
                }
                total += cur.len();
            }
            assert_eq!(total, (hi - lo) as u32 + 1);
            assert!((lo..=hi).all(|p| seen[p as usize]), "{workers} workers leave a gap");
        }
    }

    #[test]
    fn narrow_and_empty_ranges() {
        // 8 workers, range of 4 ports: only half of the workers own one.
        let owned: u32 = (0..8).map(|i| LportCursor::new(PortSlice::new(8, i), 1024, 1027, 0).len()).sum();
        assert_eq!(owned, 4);
        let mut c = LportCursor::new(PortSlice::new(8, 7), 1024, 1027, 0);
        assert!(c.is_empty());
        assert_eq!(c.next_port(), None);
        // Single-port range wraps onto itself.
        let mut c = LportCursor::new(PortSlice::new(1, 0), 65535, 65535, 3);
        assert_eq!((c.next_port(), c.next_port()), (Some(65535), Some(65535)));
    }

    fn table() -> ConnTable {
        ConnTable::new(4096, Timeouts::default(), 0)
    }

    #[test]
    fn never_yields_a_live_tuple() {
        let mut t = table();
        let (lip, rs, rport) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 1, 0, 1), 80);
        let slice = PortSlice::new(4, 2);
        let mut cur = LportCursor::new(slice, 2000, 2999, 2500);
        // Occupy every third owned port with a live connection from a stray cursor.
        let mut pre = LportCursor::new(slice, 2000, 2999, 2000);
        for i in 0..pre.len() {
            let p = pre.next_port().unwrap();
            if i % 3 == 0 {
                t.insert(&conn(i, lip, p, rs, rport), 0).unwrap();
            }
        }
        let mut n = 0;
        while let Some(p) = alloc_lport(&t, &mut cur, lip, rs, rport, Proto::Tcp, 64) {
            assert!(slice.contains(p));
            let key = FlowKey { proto: Proto::Tcp, src: rs, dst: lip, sport: rport, dport: p };
            assert!(!t.contains(&key));
            t.insert(&conn(10_000 + n, lip, p, rs, rport), 0).unwrap();
            n += 1;
        }
        // Everything is taken now: 250 owned ports in [2000, 2999].
        assert_eq!(cur.len(), 250);
        assert_eq!(t.len(), 250);
        // Another real server's tuples are independent.
        assert!(alloc_lport(&t, &mut cur, lip, Ipv4Addr::new(10, 1, 0, 2), rport, Proto::Tcp, 64).is_some());
        // Freeing one port makes exactly that port available again.
        let (id, _) =
            t.lookup(&FlowKey { proto: Proto::Tcp, src: rs, dst: lip, sport: rport, dport: 2502 }).unwrap();
        t.remove(id).unwrap();
        assert_eq!(alloc_lport(&t, &mut cur, lip, rs, rport, Proto::Tcp, 1000), Some(2502));
    }

    #[test]
    fn exhaustion_is_bounded() {
        let mut t = table();
        let (lip, rs) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 1, 0, 1));
        let mut cur = LportCursor::new(PortSlice::new(1, 0), 5000, 5099, 5000);
        for i in 0..100 {
            let p = alloc_lport(&t, &mut cur, lip, rs, 443, Proto::Udp, 8).unwrap();
            t.insert(&NewConn { client: client(i, Proto::Udp), ..conn(i, lip, p, rs, 443) }, 0).unwrap();
        }
        assert_eq!(alloc_lport(&t, &mut cur, lip, rs, 443, Proto::Udp, 64), None);
        // TCP tuples on the same ports are a different key space.
        assert!(alloc_lport(&t, &mut cur, lip, rs, 443, Proto::Tcp, 64)
            .is_some_and(|p| (5000..5100).contains(&p)));
    }

    fn client(i: u32, proto: Proto) -> FlowKey {
        FlowKey {
            proto,
            src: Ipv4Addr::from(0xC000_0000 + i),
            dst: Ipv4Addr::new(1, 1, 1, 1),
            sport: 40000,
            dport: 80,
        }
    }

    fn conn(i: u32, lip: Ipv4Addr, lport: u16, rs: Ipv4Addr, rport: u16) -> NewConn {
        NewConn {
            client: client(i, Proto::Tcp),
            lip,
            lport,
            rs,
            rport,
            service: 0,
            real: 0,
            xlat: crate::xmit::Xlat::FullNat,
        }
    }
}
