//! ICMPv6 (RFC 4443): message types, echo answered in place, the errors the gateway builds or
//! relays (Destination Unreachable, Packet Too Big, Time Exceeded) and the tuple an error quotes.
//! Neighbour discovery's messages are in [`super::ndp`].
//!
//! Invariants:
//! - The checksum covers the IPv6 pseudo header ([`super::ipv6::pseudo_header`]); every message
//!   built here is emitted with a full checksum, and the in-place echo reply keeps it right
//!   incrementally (swapping the addresses leaves the pseudo header's sum unchanged).
//! - An error the gateway originates is at most [`super::ipv6::MIN_MTU`] bytes long, quoting as
//!   much of the offending packet as fits (RFC 4443 2.4 (c)).
use std::net::Ipv6Addr;

use super::checksum::{adjust, delta16};
use super::ipv6::{self, Packet as Ipv6Packet, Repr as Ipv6Repr, HEADER_LEN as IP6, NH_ICMPV6};
use super::{get16, put16, put32};
use crate::flow::{FlowKey, Proto};

pub const HEADER_LEN: usize = 8;

pub const DST_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const PARAM_PROBLEM: u8 = 4;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOUR_SOLICIT: u8 = 135;
pub const NEIGHBOUR_ADVERT: u8 = 136;
pub const REDIRECT: u8 = 137;

/// Destination Unreachable codes.
pub const DU_NO_ROUTE: u8 = 0;
pub const DU_ADMIN: u8 = 1;
pub const DU_ADDRESS: u8 = 3;
pub const DU_PORT: u8 = 4;

/// Whether `t` is an error message (types below 128).
#[inline]
pub const fn is_error(t: u8) -> bool {
    t < 128
}

/// The in-place answer to an echo request: `ip` starts at the IPv6 header of a checked packet
/// whose upper layer (at `l4`) is an ICMPv6 echo request; it becomes the echo reply from `from`
/// (the address the request was sent to) with hop limit `hop_limit`.
pub fn echo_reply_in_place(ip: &mut [u8], l4: usize, hop_limit: u8) {
    let (src, dst) = {
        let p = Ipv6Packet::new_unchecked(&*ip);
        (p.src_addr(), p.dst_addr())
    };
    let mut p = Ipv6Packet::new_unchecked(&mut *ip);
    p.set_src_addr(dst);
    p.set_dst_addr(src);
    p.set_hop_limit(hop_limit);
    let m = &mut ip[l4..];
    let old = get16(m, 0);
    let new = u16::from(ECHO_REPLY) << 8 | (old & 0xff);
    put16(m, 0, new);
    let c = get16(m, 2);
    put16(m, 2, adjust(c, delta16(old, new)));
}

/// An ICMPv6 error `src -> dst` of `msg_type`/`code` with the 32-bit parameter (PTB: the MTU),
/// quoting `offending` (an IPv6 packet) as far as fits in 1280 bytes, written into `buf` as an
/// IPv6 packet. Returns its length.
pub fn emit_error(
    buf: &mut [u8],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    msg_type: u8,
    code: u8,
    param: u32,
    offending: &[u8],
) -> Result<usize, super::Error> {
    let room = usize::from(ipv6::MIN_MTU).min(buf.len());
    if room < IP6 + HEADER_LEN {
        return Err(super::Error::NoRoom);
    }
    let quote = offending.len().min(room - IP6 - HEADER_LEN);
    let len = IP6 + HEADER_LEN + quote;
    let repr = Ipv6Repr {
        src,
        dst,
        next_header: NH_ICMPV6,
        payload_len: (HEADER_LEN + quote) as u16,
        hop_limit: 64,
        traffic_class: 0,
    };
    repr.emit(buf)?;
    let m = &mut buf[IP6..len];
    m[0] = msg_type;
    m[1] = code;
    put16(m, 2, 0);
    put32(m, 4, param);
    m[HEADER_LEN..].copy_from_slice(&offending[..quote]);
    ipv6::fill_checksum(m, src, dst, NH_ICMPV6);
    Ok(len)
}

/// The tuple an error quotes, as the quoted packet travelled, and where its transport header
/// starts in the message (`msg` starts at the ICMPv6 header). Only a quoted TCP or UDP packet
/// without extension headers whose ports are present qualifies.
pub fn quoted_flow(msg: &[u8]) -> Option<(FlowKey<Ipv6Addr>, usize)> {
    let inner = msg.get(HEADER_LEN..)?;
    if inner.len() < IP6 + 4 || inner[0] >> 4 != 6 {
        return None;
    }
    let p = Ipv6Packet::new_unchecked(inner);
    let proto = Proto::from_number(p.next_header())?;
    let key = FlowKey {
        proto,
        src: p.src_addr(),
        dst: p.dst_addr(),
        sport: get16(inner, IP6),
        dport: get16(inner, IP6 + 2),
    };
    Some((key, HEADER_LEN + IP6))
}

/// Rewrites a relayed error: the outer addresses `outer`, the quoted packet's tuple `quoted`
/// (its transport checksum adjusted incrementally when quoted whole enough to hold it), and the
/// ICMPv6 checksum recomputed over the new pseudo header and message. `ip` starts at the IPv6
/// header, the message at `l4`.
pub fn rewrite_error(ip: &mut [u8], l4: usize, outer: (Ipv6Addr, Ipv6Addr), quoted: &FlowKey<Ipv6Addr>) {
    let mut p = Ipv6Packet::new_unchecked(&mut *ip);
    p.set_src_addr(outer.0);
    p.set_dst_addr(outer.1);
    let end = IP6 + p.payload_len() as usize;
    let msg = &mut ip[l4..end];
    let inner_at = HEADER_LEN;
    let (os, od) = {
        let q = Ipv6Packet::new_unchecked(&msg[inner_at..]);
        (q.src_addr(), q.dst_addr())
    };
    let t_at = inner_at + IP6;
    let (osp, odp) = (get16(msg, t_at), get16(msg, t_at + 2));
    {
        let mut q = Ipv6Packet::new_unchecked(&mut msg[inner_at..]);
        q.set_src_addr(quoted.src);
        q.set_dst_addr(quoted.dst);
    }
    put16(msg, t_at, quoted.sport);
    put16(msg, t_at + 2, quoted.dport);
    let delta = ipv6::delta128(os, quoted.src)
        + ipv6::delta128(od, quoted.dst)
        + delta16(osp, quoted.sport)
        + delta16(odp, quoted.dport);
    let (nh, csum) = match quoted.proto {
        Proto::Tcp => (ipv6::NH_TCP, 16),
        Proto::Udp => (ipv6::NH_UDP, 6),
    };
    if msg.len() >= t_at + csum + 2 {
        ipv6::adjust_l4(&mut msg[t_at..], nh, delta);
    }
    ipv6::fill_checksum(msg, outer.0, outer.1, NH_ICMPV6);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn echo_request() -> Vec<u8> {
        let mut m = vec![ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
        let (s, d) = (a("2001:2::7"), a("2001:2::1"));
        ipv6::fill_checksum(&mut m, s, d, NH_ICMPV6);
        let mut v = vec![0u8; IP6];
        Ipv6Repr {
            src: s,
            dst: d,
            next_header: NH_ICMPV6,
            payload_len: m.len() as u16,
            hop_limit: 5,
            traffic_class: 0,
        }
        .emit(&mut v)
        .unwrap();
        v.extend_from_slice(&m);
        v
    }

    #[test]
    fn echo_reply_checksum_matches_a_full_recomputation() {
        let mut v = echo_request();
        echo_reply_in_place(&mut v, IP6, 64);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!((p.src_addr(), p.dst_addr(), p.hop_limit()), (a("2001:2::1"), a("2001:2::7"), 64));
        assert_eq!(v[IP6], ECHO_REPLY);
        assert!(ipv6::verify_checksum(&v[IP6..], p.src_addr(), p.dst_addr(), NH_ICMPV6));
    }

    #[test]
    fn errors_quote_at_most_the_minimum_mtu_and_name_the_tuple() {
        let mut big = vec![0u8; 1500];
        let k = FlowKey {
            proto: Proto::Tcp,
            src: a("2001:2::7"),
            dst: a("2001:2::100"),
            sport: 40000,
            dport: 80,
        };
        Ipv6Repr {
            src: k.src,
            dst: k.dst,
            next_header: ipv6::NH_TCP,
            payload_len: 1460,
            hop_limit: 64,
            traffic_class: 0,
        }
        .emit(&mut big)
        .unwrap();
        big[IP6..IP6 + 4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        let mut buf = vec![0u8; 2048];
        let n = emit_error(&mut buf, (a("2001:2::1"), k.src), PACKET_TOO_BIG, 0, 1280, &big).unwrap();
        assert_eq!(n, 1280);
        let p = Ipv6Packet::new_checked(&buf[..n]).unwrap();
        assert!(ipv6::verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), NH_ICMPV6));
        assert_eq!(quoted_flow(p.payload()), Some((k, HEADER_LEN + IP6)));
        // relayed with new addresses: the message checksum still verifies
        let q =
            FlowKey { src: a("2001:2:0:1::100"), dst: a("2001:2:0:1::11"), sport: 1025, dport: 8080, ..k };
        rewrite_error(&mut buf[..n], IP6, (a("2001:2::100"), a("2001:2:0:1::100")), &q);
        let p = Ipv6Packet::new_checked(&buf[..n]).unwrap();
        assert!(ipv6::verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), NH_ICMPV6));
        assert_eq!(quoted_flow(p.payload()).map(|x| x.0), Some(q));
        assert_eq!(quoted_flow(&[1, 0, 0, 0, 0, 0, 0, 0, 0x45]), None, "not an IPv6 quote");
    }
}
