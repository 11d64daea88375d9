//! FULLNAT rewrites: the per-packet hot path.
//!
//! Both directions of a FULLNAT connection replace the whole 4-tuple (client -> VIP becomes
//! local address -> real server, and back). Checksums are adjusted incrementally from one combined delta:
//! the address change enters both the IPv4 header checksum and, through the pseudo header, the L4 one;
//! no payload byte is read. A packet that arrived with a bad checksum leaves with a bad checksum.
//!
//! Validation is only what the rewrite needs: a well-formed IPv4 header and the fixed L4 header present
//! (20 bytes for TCP, 8 for UDP). TCP options and the UDP length field are not looked at, so first
//! fragments (which carry the L4 header, with a checksum over the whole datagram: the delta is still
//! right) are handled; later fragments have no ports and are refused with `Fragment`.
use super::checksum::{adjust, delta16, delta32, udp_adjust};
use super::ipv4::{self, PROTO_TCP, PROTO_UDP};
use super::{get16, get32, icmp, put16, put32, Error, Result};
use crate::flow::{FlowKey, Proto};
use std::net::Ipv4Addr;

const IP_CHECKSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;

/// Validate `ip` for an L4 rewrite/lookup; returns (header length, protocol).
#[inline]
fn l4_bounds(ip: &[u8]) -> Result<(usize, u8)> {
    let p = ipv4::Packet::new_checked(ip)?;
    let proto = p.protocol();
    let min = match proto {
        PROTO_TCP => super::tcp::HEADER_LEN,
        PROTO_UDP => super::udp::HEADER_LEN,
        _ => return Err(Error::Unsupported),
    };
    if p.is_later_fragment() {
        return Err(Error::Fragment);
    }
    let hl = p.header_len();
    if (p.total_len() as usize) < hl + min {
        return Err(Error::Truncated);
    }
    Ok((hl, proto))
}

/// The flow key of a TCP/UDP IPv4 packet (`ip` starts at the IPv4 header; trailing padding is fine).
pub fn flow_key(ip: &[u8]) -> Result<FlowKey> {
    let (hl, proto) = l4_bounds(ip)?;
    Ok(FlowKey {
        proto: if proto == PROTO_TCP { Proto::Tcp } else { Proto::Udp },
        src: get32(ip, IP_SRC).into(),
        dst: get32(ip, IP_DST).into(),
        sport: get16(ip, hl),
        dport: get16(ip, hl + 2),
    })
}

/// Rewrite the addresses and ports of a TCP or UDP IPv4 packet in place, adjusting the IPv4 header
/// checksum and the L4 checksum incrementally (a zero UDP checksum stays zero).
///
/// Errors, with the packet untouched: IPv4 parse errors, `Unsupported` (neither TCP nor UDP),
/// `Fragment` (non-first fragment), `Truncated` (L4 fixed header not within the total length).
#[inline]
pub fn rewrite_l4_tuple(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Result<()> {
    let (hl, proto) = l4_bounds(ip)?;
    let (src, dst) = (u32::from(src), u32::from(dst));
    let addr_delta = delta32(get32(ip, IP_SRC), src) + delta32(get32(ip, IP_DST), dst);
    put32(ip, IP_SRC, src);
    put32(ip, IP_DST, dst);
    let c = get16(ip, IP_CHECKSUM);
    put16(ip, IP_CHECKSUM, adjust(c, addr_delta));

    let l4 = &mut ip[hl..];
    let delta = addr_delta + delta16(get16(l4, 0), sport) + delta16(get16(l4, 2), dport);
    put16(l4, 0, sport);
    put16(l4, 2, dport);
    if proto == PROTO_TCP {
        let c = get16(l4, 16);
        put16(l4, 16, adjust(c, delta));
    } else {
        let c = get16(l4, 6);
        put16(l4, 6, udp_adjust(c, delta));
    }
    Ok(())
}

/// FULLNAT for an ICMP error about a TCP/UDP connection: set the outer IPv4 addresses to `src -> dst`
/// and the quoted packet's tuple to `inner` (whose `proto` must match the quoted protocol), keeping
/// the outer IPv4, ICMP, quoted IPv4 and (if quoted) quoted L4 checksums consistent.
///
/// Errors, with the packet untouched: IPv4 parse errors, `Unsupported` (not ICMP, not an error
/// message, or the quoted protocol differs from `inner.proto`), `Fragment`, or a quoted-packet error.
pub fn rewrite_icmp_error(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, inner: &FlowKey) -> Result<()> {
    let p = ipv4::Packet::new_checked(&*ip)?;
    if p.protocol() != ipv4::PROTO_ICMP {
        return Err(Error::Unsupported);
    }
    if p.is_later_fragment() {
        return Err(Error::Fragment);
    }
    let (hl, tl) = (p.header_len(), p.total_len() as usize);
    let mut msg = icmp::Packet::new_checked(&mut ip[hl..tl])?;
    if msg.inner()?.protocol() != inner.proto.number() {
        return Err(Error::Unsupported);
    }
    msg.rewrite_inner(inner.src, inner.dst, inner.sport, inner.dport)?;
    // ICMP has no pseudo header: the outer addresses only touch the IPv4 header checksum.
    let mut p = ipv4::Packet::new_unchecked(ip);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{ETH_TCP_SYN, IP_ICMP_ECHO, IP_ICMP_FRAG_NEEDED, IP_UDP_DNS};
    use crate::wire::testutil::{fuzz_inputs, Rng};
    use crate::wire::{tcp, udp};

    /// Full recomputation of both checksums on a copy.
    fn recomputed(ip: &[u8]) -> (u16, u16) {
        let mut v = ip.to_vec();
        let mut p = ipv4::Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        let (s, d, proto) = (p.src_addr(), p.dst_addr(), p.protocol());
        let ipc = p.checksum();
        let l4c = if proto == PROTO_TCP {
            let mut t = tcp::Packet::new_checked(p.payload_mut()).unwrap();
            t.fill_checksum(s, d);
            t.checksum()
        } else {
            let mut u = udp::Packet::new_checked(p.payload_mut()).unwrap();
            u.fill_checksum(s, d);
            u.checksum()
        };
        (ipc, l4c)
    }

    fn checksums(ip: &[u8]) -> (u16, u16) {
        let p = ipv4::Packet::new_checked(ip).unwrap();
        let at = if p.protocol() == PROTO_TCP { 16 } else { 6 };
        (p.checksum(), get16(p.payload(), at))
    }

    #[test]
    fn rewrite_matches_full_recompute() {
        let mut rng = Rng::new(60);
        let mut tcp_pkt = ETH_TCP_SYN[14..].to_vec();
        let mut udp_pkt = IP_UDP_DNS.to_vec();
        for pkt in [&mut tcp_pkt, &mut udp_pkt] {
            for i in 0..20_000 {
                let (s, d, sp, dp) = (rng.ip(), rng.ip(), rng.u16(), rng.u16());
                rewrite_l4_tuple(pkt, s, d, sp, dp).unwrap();
                assert_eq!(checksums(pkt), recomputed(pkt), "step {i}");
                let k = flow_key(pkt).unwrap();
                assert_eq!((k.src, k.dst, k.sport, k.dport), (s, d, sp, dp));
            }
        }
        // Nothing else moved: seq..window, and everything after the TCP checksum.
        let orig = &ETH_TCP_SYN[14..];
        assert_eq!(tcp_pkt[24..36], orig[24..36]);
        assert_eq!(tcp_pkt[38..], orig[38..]);
        assert_eq!(tcp_pkt[..10], orig[..10]);
    }

    #[test]
    fn round_trip_restores_original() {
        let orig = &ETH_TCP_SYN[14..];
        let mut p = orig.to_vec();
        let k = flow_key(&p).unwrap();
        rewrite_l4_tuple(&mut p, Ipv4Addr::new(192, 168, 0, 9), Ipv4Addr::new(172, 16, 3, 4), 5001, 8080)
            .unwrap();
        assert_ne!(p, orig);
        rewrite_l4_tuple(&mut p, k.src, k.dst, k.sport, k.dport).unwrap();
        assert_eq!(p, orig);
        assert_eq!(k.proto, Proto::Tcp);
    }

    #[test]
    fn udp_zero_checksum_preserved() {
        let mut rng = Rng::new(61);
        let mut p = IP_UDP_DNS.to_vec();
        p[26] = 0;
        p[27] = 0;
        for _ in 0..1000 {
            rewrite_l4_tuple(&mut p, rng.ip(), rng.ip(), rng.u16(), rng.u16()).unwrap();
            assert_eq!(&p[26..28], &[0, 0]);
            assert!(ipv4::Packet::new_checked(&p[..]).unwrap().verify_checksum());
        }
    }

    #[test]
    fn first_fragment_ok_later_fragment_refused() {
        let mut p = ETH_TCP_SYN[14..].to_vec();
        p[6] = 0x20; // MF, offset 0
        let a = Ipv4Addr::new(1, 2, 3, 4);
        assert_eq!(rewrite_l4_tuple(&mut p, a, a, 1, 2), Ok(()));
        p[7] = 1; // offset 8
        let before = p.clone();
        assert_eq!(rewrite_l4_tuple(&mut p, a, a, 3, 4), Err(Error::Fragment));
        assert_eq!(flow_key(&p), Err(Error::Fragment));
        assert_eq!(p, before);
    }

    #[test]
    fn refusals_leave_packet_untouched() {
        let a = Ipv4Addr::new(1, 2, 3, 4);
        let mut echo = IP_ICMP_ECHO;
        assert_eq!(rewrite_l4_tuple(&mut echo, a, a, 1, 2), Err(Error::Unsupported));
        assert_eq!(echo, IP_ICMP_ECHO);
        // TCP with a total length that leaves only 19 L4 bytes.
        let mut t = ETH_TCP_SYN[14..].to_vec();
        ipv4::Packet::new_unchecked(&mut t[..]).set_total_len(39);
        let before = t.clone();
        assert_eq!(rewrite_l4_tuple(&mut t, a, a, 1, 2), Err(Error::Truncated));
        assert_eq!(t, before);
        let tcp_ip = &ETH_TCP_SYN[14..];
        for len in 0..tcp_ip.len() {
            let mut v = tcp_ip[..len].to_vec();
            assert!(rewrite_l4_tuple(&mut v, a, a, 1, 2).is_err(), "len {len}");
            assert_eq!(v, tcp_ip[..len]);
        }
    }

    #[test]
    fn icmp_error_rewrite() {
        let mut rng = Rng::new(62);
        let mut p = IP_ICMP_FRAG_NEEDED;
        for _ in 0..3000 {
            let (s, d) = (rng.ip(), rng.ip());
            let inner =
                FlowKey { proto: Proto::Tcp, src: rng.ip(), dst: rng.ip(), sport: rng.u16(), dport: 7 };
            rewrite_icmp_error(&mut p, s, d, &inner).unwrap();
            let ip = ipv4::Packet::new_checked(&p[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!((ip.src_addr(), ip.dst_addr()), (s, d));
            let m = icmp::Packet::new_checked(ip.payload()).unwrap();
            assert!(m.verify_checksum());
            let q = m.inner().unwrap();
            assert!(q.verify_ip_checksum());
            assert_eq!(
                (q.src_addr(), q.dst_addr(), q.src_port(), q.dst_port()),
                (inner.src, inner.dst, inner.sport, 7)
            );
        }
        let before = p;
        let udp = FlowKey {
            proto: Proto::Udp,
            src: Ipv4Addr::LOCALHOST,
            dst: Ipv4Addr::LOCALHOST,
            sport: 1,
            dport: 2,
        };
        let a = Ipv4Addr::new(9, 9, 9, 9);
        assert_eq!(rewrite_icmp_error(&mut p, a, a, &udp), Err(Error::Unsupported));
        assert_eq!(p, before);
        let mut echo = IP_ICMP_ECHO;
        assert_eq!(rewrite_icmp_error(&mut echo, a, a, &udp), Err(Error::Unsupported));
        let mut t = ETH_TCP_SYN[14..].to_vec();
        assert_eq!(rewrite_icmp_error(&mut t, a, a, &udp), Err(Error::Unsupported));
    }

    #[test]
    fn fuzz() {
        let mut rng = Rng::new(63);
        let t: [&[u8]; 4] = [&ETH_TCP_SYN[14..], &IP_UDP_DNS, &IP_ICMP_FRAG_NEEDED, &IP_ICMP_ECHO];
        fuzz_inputs(64, 30_000, &t, |b| {
            let mut v = b.to_vec();
            let (a, c) = (rng.ip(), rng.ip());
            let _ = flow_key(&v);
            let _ = rewrite_l4_tuple(&mut v, a, c, 1, 2);
            let k = FlowKey { proto: Proto::Tcp, src: a, dst: c, sport: 3, dport: 4 };
            let _ = rewrite_icmp_error(&mut v, a, c, &k);
            let _ = crate::wire::checksum::data(&v);
        });
    }
}
