//! Internet checksum arithmetic: full computation (RFC 1071) and incremental update (RFC 1624).
//!
//! Vocabulary:
//! - an *accumulator* (`u64`) is an unfolded sum of 16-bit big-endian words; add accumulators freely and
//!   [`fold`] once at the end. Summing 32-bit words into it is equivalent because 2^16 ≡ 1 (mod 0xffff),
//!   which is what makes [`accumulate`] fast.
//! - a *sum* (`u16`) is a folded ones-complement sum, not complemented.
//! - a *checksum* (`u16`) is what goes on the wire: the complement of the sum.
//! - a *delta* (`u64`) is an accumulator of `~old + new` word pairs, applied with [`adjust`]:
//!   `HC' = ~(~HC + ~m + m')` (RFC 1624 eqn. 3), which, unlike eqn. 2, never yields a wrong `-0`.
//!
//! UDP: a checksum field of 0 means "no checksum" and must stay 0 under rewrites; a computed checksum of
//! 0 is transmitted as 0xffff (RFC 768). [`udp_adjust`] and [`udp_nonzero`] implement both rules.
use std::net::Ipv4Addr;

/// Add `data`, taken as big-endian 16-bit words, to `acc`. An odd trailing byte is padded with zero.
///
/// Chaining calls is only correct if every chunk but the last has even length (word alignment).
/// Never overflows for inputs below 16 GiB.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
        acc += u32::from_be_bytes([c[4], c[5], c[6], c[7]]) as u64;
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u16::from_be_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc += (b as u64) << 8;
    }
    acc
}

/// Fold an accumulator to a 16-bit ones-complement sum (end-around carry).
#[inline]
pub const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Ones-complement sum of `data` (not complemented).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The checksum to store for `data`, whose checksum field must be zero.
#[inline]
pub fn internet_checksum(data: &[u8]) -> u16 {
    !self::data(data)
}

/// Accumulator of the IPv4 pseudo header used by TCP and UDP (`len` is the L4 length).
#[inline]
pub fn ipv4_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    u32::from(src) as u64 + u32::from(dst) as u64 + proto as u64 + len as u64
}

/// Delta for a 16-bit word changing from `old` to `new`.
#[inline(always)]
pub const fn delta16(old: u16, new: u16) -> u64 {
    (!old) as u64 + new as u64
}

/// Delta for a 32-bit (two-word, word-aligned) field changing from `old` to `new`.
#[inline(always)]
pub const fn delta32(old: u32, new: u32) -> u64 {
    delta16((old >> 16) as u16, (new >> 16) as u16) + delta16(old as u16, new as u16)
}

/// Delta for a byte range changing from `old` to `new` (same length, starting at an even offset of the
/// checksummed data; an odd length is fine, the byte after it is unchanged and cancels out).
#[inline]
pub fn delta_bytes(old: &[u8], new: &[u8]) -> u64 {
    debug_assert_eq!(old.len(), new.len());
    (!data(old)) as u64 + data(new) as u64
}

/// Apply a delta to a stored checksum (RFC 1624 eqn. 3).
#[inline(always)]
pub const fn adjust(csum: u16, delta: u64) -> u16 {
    !fold((!csum) as u64 + delta)
}

/// Incrementally update `csum` for one 16-bit word changing from `old` to `new`.
#[inline(always)]
pub const fn update16(csum: u16, old: u16, new: u16) -> u16 {
    adjust(csum, delta16(old, new))
}

/// Incrementally update `csum` for a word-aligned 32-bit field changing from `old` to `new`.
#[inline(always)]
pub const fn update32(csum: u16, old: u32, new: u32) -> u16 {
    adjust(csum, delta32(old, new))
}

/// Incrementally update `csum` for an even-aligned byte range replaced by `new` (same length).
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    adjust(csum, delta_bytes(old, new))
}

/// A computed UDP checksum, as transmitted: 0 means "none" on the wire, so a real 0 goes out as 0xffff.
#[inline(always)]
pub const fn udp_nonzero(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// [`adjust`] for a UDP checksum field: an absent checksum (0) stays absent.
#[inline(always)]
pub const fn udp_adjust(csum: u16, delta: u64) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_nonzero(adjust(csum, delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::Rng;

    /// Word-at-a-time reference, the RFC 1071 way.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { (c[0] as u16) << 8 };
            s += w as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
        assert_eq!(internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
    }

    #[test]
    fn fast_sum_matches_naive_for_all_lengths() {
        let mut rng = Rng::new(1);
        let mut buf = [0u8; 300];
        for _ in 0..20 {
            rng.fill(&mut buf);
            for len in 0..buf.len() {
                assert_eq!(data(&buf[..len]), naive(&buf[..len]), "len {len}");
            }
        }
        // Worst case for carries.
        let ff = [0xffu8; 1501];
        assert_eq!(data(&ff), naive(&ff));
    }

    #[test]
    fn chained_accumulate_equals_one_pass() {
        let mut rng = Rng::new(2);
        let mut buf = [0u8; 97];
        rng.fill(&mut buf);
        for split in (0..buf.len()).step_by(2) {
            let acc = accumulate(accumulate(0, &buf[..split]), &buf[split..]);
            assert_eq!(fold(acc), data(&buf));
        }
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let mut rng = Rng::new(3);
        let mut buf = [0u8; 40];
        for _ in 0..20_000 {
            rng.fill(&mut buf);
            if rng.below(8) == 0 {
                buf.fill(0xff); // stress -0 handling
            }
            let csum = internet_checksum(&buf);
            let at = rng.below(buf.len() / 2) * 2;
            match rng.below(3) {
                0 => {
                    let old = u16::from_be_bytes([buf[at], buf[at + 1]]);
                    let new = rng.u16();
                    buf[at..at + 2].copy_from_slice(&new.to_be_bytes());
                    assert_eq!(update16(csum, old, new), internet_checksum(&buf));
                }
                1 => {
                    let at = at.min(buf.len() - 4);
                    let old = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
                    let new = if rng.below(4) == 0 { old } else { rng.u32() };
                    buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
                    assert_eq!(update32(csum, old, new), internet_checksum(&buf));
                }
                _ => {
                    let len = rng.below(buf.len() - at) + 1;
                    let mut old = [0u8; 40];
                    old[..len].copy_from_slice(&buf[at..at + len]);
                    rng.fill(&mut buf[at..at + len]);
                    assert_eq!(update_bytes(csum, &old[..len], &buf[at..at + len]), internet_checksum(&buf));
                }
            }
        }
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_nonzero(0), 0xffff);
        assert_eq!(udp_nonzero(0x1234), 0x1234);
        assert_eq!(udp_adjust(0, delta16(1, 2)), 0);
        // A delta that brings the checksum to 0 must yield 0xffff instead.
        let c = 0x0001u16; // ~c = 0xfffe; adding delta 1 makes the sum 0xffff, checksum 0.
        assert_eq!(adjust(c, delta16(0, 1)), 0);
        assert_eq!(udp_adjust(c, delta16(0, 1)), 0xffff);
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let (s, d) = (Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 255, 0, 1));
        let bytes = [192, 168, 1, 10, 10, 255, 0, 1, 0, 6, 0x05, 0xdc];
        assert_eq!(fold(ipv4_pseudo_header(s, d, 6, 1500)), data(&bytes));
    }
}
