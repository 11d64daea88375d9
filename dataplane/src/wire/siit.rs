//! SIIT (RFC 7915) header translation for the fields a TCP or UDP flow needs, and the ICMP error
//! type mappings, for NAT64 ([`crate::xmit::nat64`]).
//!
//! Invariants:
//! - IPv6 -> IPv4 (5.1): TOS = traffic class, TTL = hop limit, total length = 20 + upper-layer
//!   length, identification from the caller, DF set only above 1260 bytes (a smaller packet may be
//!   fragmented on an IPv4 path whose MTU is below 1280), protocol = the upper layer (ICMPv6 -> 1).
//!   Extension headers are dropped (the upper-layer length excludes them).
//! - IPv4 -> IPv6 (4.1): traffic class = TOS, hop limit = TTL, payload length = total length minus
//!   the IPv4 header (options are not translated, RFC 7915 4.1), flow label 0, next header = the
//!   protocol (ICMP -> 58).
//! - The transport checksum is adjusted by the pseudo-header change (addresses, and next header
//!   for ICMP, which has no pseudo header in IPv4), never recomputed over the payload, except a
//!   UDP datagram without a checksum, which IPv6 forbids: that one is computed whole.
//! - ICMP errors map as RFC 7915 4.2 and 5.2 say for Destination Unreachable, Packet Too Big /
//!   fragmentation-needed (the MTU differs by the 20 bytes of header difference; an IPv6 MTU is
//!   never below 1280) and Time Exceeded; other types are not translated.
use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{accumulate, fold};
use super::icmp::msg as icmp4;
use super::icmpv6;
use super::ipv4;
use super::ipv6;

/// Above this many bytes a translated IPv4 packet carries DF (RFC 7915 5.1).
pub const DF_ABOVE: usize = 1260;
/// The IPv4 header is this much shorter than the IPv6 one.
pub const HEADER_DIFF: u16 = 20;

/// The IPv4 protocol for an IPv6 upper layer (ICMPv6 -> ICMP).
#[inline]
pub const fn proto_4(nh: u8) -> u8 {
    if nh == ipv6::NH_ICMPV6 {
        ipv4::PROTO_ICMP
    } else {
        nh
    }
}

/// The IPv6 next header for an IPv4 protocol (ICMP -> ICMPv6).
#[inline]
pub const fn proto_6(p: u8) -> u8 {
    if p == ipv4::PROTO_ICMP {
        ipv6::NH_ICMPV6
    } else {
        p
    }
}

/// Writes the IPv4 header translated from an IPv6 one into `buf` (20 bytes): `tc`, `hop` are the
/// IPv6 traffic class and (already decremented) hop limit, `l4_len` the upper-layer length.
pub fn emit_v4(
    buf: &mut [u8],
    (src, dst): (Ipv4Addr, Ipv4Addr),
    nh: u8,
    l4_len: u16,
    (tc, hop): (u8, u8),
    ident: u16,
) -> Result<(), super::Error> {
    let total = usize::from(l4_len) + ipv4::HEADER_LEN;
    let repr = ipv4::Repr {
        src,
        dst,
        protocol: proto_4(nh),
        payload_len: l4_len,
        ttl: hop,
        ident,
        dont_frag: total > DF_ABOVE,
    };
    repr.emit(buf)?;
    let mut p = ipv4::Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN]);
    p.set_dscp_ecn(tc >> 2, tc & 3);
    p.fill_checksum();
    Ok(())
}

/// Writes the IPv6 header translated from an IPv4 one into `buf` (40 bytes).
pub fn emit_v6(
    buf: &mut [u8],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    proto: u8,
    l4_len: u16,
    (tos, ttl): (u8, u8),
) -> Result<(), super::Error> {
    ipv6::Repr {
        src,
        dst,
        next_header: proto_6(proto),
        payload_len: l4_len,
        hop_limit: ttl,
        traffic_class: tos,
    }
    .emit(buf)
}

/// The checksum delta of a transport header moving from the IPv6 pseudo header `from` to the
/// IPv4 one `to` (or back, with the arguments swapped): `~old + new` of the folded sums.
#[inline]
pub fn pseudo_delta(from: u64, to: u64) -> u64 {
    u64::from(!fold(from)) + u64::from(fold(to))
}

/// The IPv4 pseudo header's accumulator (TCP and UDP; ICMP has none: 0).
#[inline]
pub fn pseudo4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    if proto == ipv4::PROTO_ICMP {
        0
    } else {
        super::checksum::ipv4_pseudo_header(src, dst, proto, len)
    }
}

/// The IPv6 pseudo header's accumulator.
#[inline]
pub fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, len: u16) -> u64 {
    ipv6::pseudo_header(src, dst, nh, u32::from(len))
}

/// A full transport checksum over `l4` with pseudo header `acc` (for a UDP datagram that came
/// without one).
pub fn full_checksum(acc: u64, l4: &[u8]) -> u16 {
    !fold(accumulate(acc, l4))
}

/// An ICMPv4 error as ICMPv6: (type, code, parameter), or None when it has no counterpart.
pub fn icmp_4to6(ty: u8, code: u8, mtu: u16) -> Option<(u8, u8, u32)> {
    match (ty, code) {
        (icmp4::DEST_UNREACHABLE, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => {
            Some((icmpv6::DST_UNREACHABLE, icmpv6::DU_NO_ROUTE, 0))
        }
        (icmp4::DEST_UNREACHABLE, 3) => Some((icmpv6::DST_UNREACHABLE, icmpv6::DU_PORT, 0)),
        (icmp4::DEST_UNREACHABLE, 9 | 10 | 13 | 15) => Some((icmpv6::DST_UNREACHABLE, icmpv6::DU_ADMIN, 0)),
        (icmp4::DEST_UNREACHABLE, 4) => {
            // The IPv6 packet is 20 bytes longer than its IPv4 translation (RFC 7915 4.2).
            let m = u32::from(mtu) + u32::from(HEADER_DIFF);
            Some((icmpv6::PACKET_TOO_BIG, 0, m.max(u32::from(ipv6::MIN_MTU))))
        }
        (icmp4::TIME_EXCEEDED, c) => Some((icmpv6::TIME_EXCEEDED, c, 0)),
        _ => None,
    }
}

/// An ICMPv6 error as ICMPv4: (type, code, next-hop MTU), or None when it has no counterpart.
pub fn icmp_6to4(ty: u8, code: u8, mtu: u32) -> Option<(u8, u8, u16)> {
    match (ty, code) {
        (icmpv6::DST_UNREACHABLE, 0 | 2 | 3) => Some((icmp4::DEST_UNREACHABLE, 1, 0)),
        (icmpv6::DST_UNREACHABLE, 1) => Some((icmp4::DEST_UNREACHABLE, 10, 0)),
        (icmpv6::DST_UNREACHABLE, 4) => Some((icmp4::DEST_UNREACHABLE, 3, 0)),
        (icmpv6::PACKET_TOO_BIG, _) => {
            let m = mtu.saturating_sub(u32::from(HEADER_DIFF)).clamp(68, 0xffff) as u16;
            Some((icmp4::DEST_UNREACHABLE, 4, m))
        }
        (icmpv6::TIME_EXCEEDED, c) => Some((icmp4::TIME_EXCEEDED, c, 0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::adjust;

    #[test]
    fn headers_translate_field_by_field() {
        let mut b4 = [0u8; 20];
        let (s4, d4) = (Ipv4Addr::new(198, 18, 1, 100), Ipv4Addr::new(198, 18, 1, 11));
        emit_v4(&mut b4, (s4, d4), ipv6::NH_TCP, 1240, (0xb8, 63), 7).unwrap();
        let p = ipv4::Packet::new_unchecked(&b4[..]);
        assert!(p.verify_checksum());
        assert_eq!((p.total_len(), p.ttl(), p.protocol(), p.ident(), p.dont_frag()), (1260, 63, 6, 7, false));
        assert_eq!(b4[1], 0xb8, "TOS = traffic class");
        emit_v4(&mut b4, (s4, d4), ipv6::NH_ICMPV6, 1241, (0, 1), 8).unwrap();
        let p = ipv4::Packet::new_unchecked(&b4[..]);
        assert!(p.dont_frag() && p.protocol() == ipv4::PROTO_ICMP, "DF above 1260 bytes; ICMPv6 -> ICMP");
        let mut b6 = [0u8; 40];
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = ("2001:2::100".parse().unwrap(), "2001:2::7".parse().unwrap());
        emit_v6(&mut b6, (s6, d6), ipv4::PROTO_ICMP, 100, (0x20, 5)).unwrap();
        let p = ipv6::Packet::new_checked(&[&b6[..], &[0u8; 100]].concat()[..]).unwrap().packet().len();
        assert_eq!(p, 140);
        assert_eq!((b6[6], b6[7]), (ipv6::NH_ICMPV6, 5));
    }

    #[test]
    fn the_pseudo_header_change_gives_the_full_checksum() {
        // A UDP datagram with a full IPv6 checksum, moved to IPv4 by the delta alone.
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = ("2001:2::7".parse().unwrap(), "2001:2::100".parse().unwrap());
        let (s4, d4) = (Ipv4Addr::new(198, 18, 1, 100), Ipv4Addr::new(198, 18, 1, 11));
        let mut u = vec![0x30, 0x39, 0, 80, 0, 13, 0, 0, b'h', b'e', b'l', b'l', b'o'];
        ipv6::fill_checksum(&mut u, s6, d6, ipv6::NH_UDP);
        let c = u16::from_be_bytes([u[6], u[7]]);
        let d = pseudo_delta(pseudo6(s6, d6, 17, 13), pseudo4(s4, d4, 17, 13));
        let mut want = u.clone();
        want[6..8].copy_from_slice(&[0, 0]);
        let full = full_checksum(pseudo4(s4, d4, 17, 13), &want);
        assert_eq!(adjust(c, d), full);
    }

    #[test]
    fn icmp_errors_map_both_ways_with_the_header_difference() {
        assert_eq!(icmp_4to6(3, 4, 1400), Some((icmpv6::PACKET_TOO_BIG, 0, 1420)));
        assert_eq!(icmp_4to6(3, 4, 576), Some((icmpv6::PACKET_TOO_BIG, 0, 1280)), "never below 1280");
        assert_eq!(icmp_4to6(3, 3, 0), Some((icmpv6::DST_UNREACHABLE, 4, 0)));
        assert_eq!(icmp_4to6(11, 0, 0), Some((icmpv6::TIME_EXCEEDED, 0, 0)));
        assert_eq!(icmp_4to6(3, 2, 0), None, "protocol unreachable has no counterpart here");
        assert_eq!(icmp_6to4(icmpv6::PACKET_TOO_BIG, 0, 1280), Some((3, 4, 1260)));
        assert_eq!(icmp_6to4(icmpv6::DST_UNREACHABLE, 4, 0), Some((3, 3, 0)));
        assert_eq!(icmp_6to4(icmpv6::TIME_EXCEEDED, 1, 0), Some((11, 1, 0)));
        assert_eq!(icmp_6to4(icmpv6::ECHO_REQUEST, 0, 0), None);
    }
}
