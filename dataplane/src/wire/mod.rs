//! Zero-copy packet views, in the style of smoltcp's `wire` module.
//!
//! Every protocol has a `Packet<T: AsRef<[u8]>>` (or `Frame`) wrapping a borrowed or owned buffer:
//! - `new_unchecked` trusts the caller: accessors may panic if the buffer is malformed. Use it only on
//!   bytes this process built or already validated.
//! - `new_checked` (= `new_unchecked` + `check_len`) validates every length the accessors rely on, so
//!   after it succeeds no getter, setter or `payload()` can panic, whatever the bytes are.
//! - Setters that change a field covered by a checksum update that checksum incrementally (RFC 1624),
//!   so a caller cannot forget it. The only setters that do not are named for it (`set_checksum`,
//!   `fill_checksum`, `*_raw`).
//! - Checksums are *not* verified by `new_checked`: the fast path rewrites them incrementally, which
//!   preserves a bad checksum for the end host to reject, and verifying costs a pass over the payload.
//!   Call `verify_checksum` where that is wanted (e.g. on packets addressed to the gateway itself).
//!
//! Multi-byte fields are big-endian on the wire; getters and setters take host values.
//!
//! Layout: [`checksum`] (RFC 1071/1624 arithmetic), [`ethernet`], [`arp`], [`ipv4`], [`tcp`] (with
//! [`toa`] for the TCP-option-address insertion), [`udp`], [`icmp`], [`nat`] for the per-packet
//! FULLNAT 4-tuple rewrite, [`proxy`] for PROXY protocol headers, and [`build`] for whole frames
//! the gateway originates.
//!
//! Building follows smoltcp too: a `Repr` (`ipv4::Repr`, `ArpRepr`, [`TcpRepr`] with its
//! [`TcpOptionList`]) holds the fields and `emit`s them, checksums included, so no caller writes header
//! or option bytes by hand. Tests, fuzzers and benchmarks build their packets with the same emitters
//! through `testkit` (cargo feature `testkit`, always on in this crate's tests).

use std::fmt;

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nat;
pub mod ndp;
pub mod proxy;
pub mod siit;
pub mod tcp;
pub mod tcp_repr;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod toa;
pub mod udp;

#[cfg(test)]
mod fixtures;

pub use arp::{Operation as ArpOperation, Packet as ArpPacket, Repr as ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, Frame as EthernetFrame, L2Info};
pub use icmp::{Packet as IcmpPacket, Quoted as IcmpQuoted};
pub use ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use nat::{flow_key, rewrite_icmp_error, rewrite_l4_tuple};
pub use tcp::{Packet as TcpPacket, SackBlocks, TcpFlags, TcpOption, TcpOptionList, TcpOptions, TcpRepr};
pub use udp::{Packet as UdpPacket, Repr as UdpRepr};

/// Why a packet was rejected. Each variant is a precise malformation reason, suitable as a drop-counter
/// label via [`Error::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than a fixed header, or than a length the packet itself declares.
    Truncated,
    /// IPv4 version field is not 4.
    BadVersion,
    /// IPv4 IHL below 5 (a 20-byte header is the minimum).
    BadIhl,
    /// IPv4 total length smaller than the header length.
    BadTotalLen,
    /// TCP data offset below 5, or pointing past the end of the segment.
    BadDataOffset,
    /// UDP length field below 8.
    BadLength,
    /// TCP option with a zero/one length, overrunning the option area, or a known kind with the wrong
    /// length; also an option to insert whose size is not a positive multiple of 4.
    BadOption,
    /// A checksum did not verify (returned by callers of `verify_checksum`, never by `new_checked`).
    BadChecksum,
    /// A non-first IPv4 fragment where a transport header is required.
    Fragment,
    /// Well-formed, but a protocol or format this code does not handle (e.g. ARP for non-Ethernet/IPv4,
    /// an IPv4 protocol that is neither TCP nor UDP for the NAT rewrite, an ICMP type that quotes nothing).
    Unsupported,
    /// Not enough room to grow the packet (TCP header would exceed 60 bytes, no tailroom, or the IPv4
    /// total length would exceed 65535).
    NoRoom,
}

impl Error {
    /// Every variant, for registering counters up front.
    pub const ALL: [Error; 11] = [
        Error::Truncated,
        Error::BadVersion,
        Error::BadIhl,
        Error::BadTotalLen,
        Error::BadDataOffset,
        Error::BadLength,
        Error::BadOption,
        Error::BadChecksum,
        Error::Fragment,
        Error::Unsupported,
        Error::NoRoom,
    ];

    /// Stable snake_case name, usable as a metric label.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadIhl => "bad_ihl",
            Error::BadTotalLen => "bad_total_len",
            Error::BadDataOffset => "bad_data_offset",
            Error::BadLength => "bad_length",
            Error::BadOption => "bad_option",
            Error::BadChecksum => "bad_checksum",
            Error::Fragment => "fragment",
            Error::Unsupported => "unsupported",
            Error::NoRoom => "no_room",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

type Field = core::ops::Range<usize>;

// Byte-order helpers. They index, so they may panic: callers use them only on ranges that `check_len`
// (or the trusted `new_unchecked` contract) guarantees.
#[inline(always)]
fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod testutil {
    /// xorshift64*: tiny, deterministic, good enough to spray values at checksum arithmetic.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }
        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        pub fn u16(&mut self) -> u16 {
            (self.next_u64() >> 48) as u16
        }
        pub fn u8(&mut self) -> u8 {
            (self.next_u64() >> 56) as u8
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        pub fn fill(&mut self, b: &mut [u8]) {
            for x in b {
                *x = self.u8();
            }
        }
        pub fn ip(&mut self) -> std::net::Ipv4Addr {
            std::net::Ipv4Addr::from(self.u32())
        }
    }

    /// Random buffers biased toward plausible headers, so fuzzing gets past the first length check.
    pub fn fuzz_inputs(seed: u64, count: usize, templates: &[&[u8]], mut each: impl FnMut(&[u8])) {
        let mut rng = Rng::new(seed);
        let mut buf = [0u8; 128];
        for i in 0..count {
            let len = rng.below(buf.len() + 1);
            let b = &mut buf[..len];
            rng.fill(b);
            if !templates.is_empty() && i % 2 == 0 {
                // Mutate a real packet: a few random bytes flipped, random truncation.
                let t = templates[rng.below(templates.len())];
                let n = len.min(t.len());
                b[..n].copy_from_slice(&t[..n]);
                for _ in 0..rng.below(4) {
                    if n > 0 {
                        b[rng.below(n)] = rng.u8();
                    }
                }
            }
            each(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in Error::ALL {
            let s = e.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(seen.insert(s));
            assert_eq!(e.to_string(), s);
        }
    }
}
