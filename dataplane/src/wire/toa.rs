//! TOA ("TCP Option Address"): how a FULLNAT gateway tells the real server the client's address, which
//! the source NAT otherwise hides. The gateway adds TCP option kind 254, length 8, carrying the client
//! port then the client IPv4 address (network order), to the first data-bearing segments toward the real
//! server; a kernel module there exposes it to `getpeername`. Same wire format as LVS/DPVS.
//!
//! IPv6 clients (IPv6 FULLNAT, and NAT64, where the segment to the real server is IPv4): DPVS's
//! `toa` module (`kmod/toa/toa.h`, `struct toa_ip6_data`, built with `TOA_IPV6_ENABLE` /
//! `TOA_NAT64_ENABLE`) reads the same kind 254 with length `TCPOLEN_IP6_TOA` = 20:
//!
//! ```text
//!  0        1        2        4                                        20
//! +--------+--------+--------+----------------------------------------+
//! |kind=254| len=20 |  port  |  client IPv6 address (16 bytes)        |
//! +--------+--------+--------+----------------------------------------+
//! ```
//!
//! port and address in network order. The module tells the two apart by the length; on an IPv4
//! socket (NAT64) it marks the socket `SOCK_NAT64` and hands the IPv6 peer out through its
//! `TOA_SO_GET_LOOKUP` socket option. The option takes 20 of the 40 option bytes, so the MSS room
//! the real server is told shrinks by 20.
use super::tcp::{insert_option, TcpOption, TcpOptions};
use super::Result;
use std::net::Ipv4Addr;

pub const TOA_KIND: u8 = 254;
pub const TOA_LEN: usize = 8;

/// The encoded option.
pub fn toa_option(addr: Ipv4Addr, port: u16) -> [u8; TOA_LEN] {
    let mut out = [0u8; TOA_LEN];
    let data = toa_data(addr, port);
    toa(&data).emit(&mut out);
    out
}

/// The TOA option's 6 data bytes: port, then address, network order. Kept apart from [`toa`] because
/// the option borrows them.
pub fn toa_data(addr: Ipv4Addr, port: u16) -> [u8; TOA_LEN - 2] {
    let [p0, p1] = port.to_be_bytes();
    let [a0, a1, a2, a3] = addr.octets();
    [p0, p1, a0, a1, a2, a3]
}

/// The TOA option over `data` (from [`toa_data`]), for a [`TcpOptionList`](super::tcp::TcpOptionList).
pub fn toa(data: &[u8; TOA_LEN - 2]) -> TcpOption<'_> {
    TcpOption::Unknown { kind: TOA_KIND, data }
}

/// Insert a TOA option into the TCP segment of the IPv4 packet at the start of `buf`, which needs
/// `TOA_LEN` bytes of tailroom. Returns the new IPv4 total length; see [`insert_option`] for the errors
/// (the buffer is untouched on error, e.g. `NoRoom` when the TCP header is already over 52 bytes).
pub fn insert_toa(buf: &mut [u8], addr: Ipv4Addr, port: u16) -> Result<usize> {
    insert_option(buf, &toa_option(addr, port))
}

/// Length of the IPv6 TOA option (`TCPOLEN_IP6_TOA`).
pub const TOA_V6_LEN: usize = 20;

/// The encoded IPv6 (and NAT64) TOA option: kind 254, length 20, port, IPv6 address.
pub fn toa6_option(addr: std::net::Ipv6Addr, port: u16) -> [u8; TOA_V6_LEN] {
    let mut out = [0u8; TOA_V6_LEN];
    out[0] = TOA_KIND;
    out[1] = TOA_V6_LEN as u8;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    out[4..].copy_from_slice(&addr.octets());
    out
}

/// The client `(address, port)` from an IPv6 TOA option in a TCP options area, if present and
/// well formed.
pub fn parse_toa6(options: &[u8]) -> Option<(std::net::Ipv6Addr, u16)> {
    for o in TcpOptions::new(options) {
        if let TcpOption::Unknown { kind: TOA_KIND, data } = o.ok()? {
            if data.len() == TOA_V6_LEN - 2 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&data[2..]);
                return Some((std::net::Ipv6Addr::from(a), u16::from_be_bytes([data[0], data[1]])));
            }
        }
    }
    None
}

/// The client `(address, port)` from a TCP options area, if it has a well-formed TOA option before any
/// malformed option.
pub fn parse_toa(options: &[u8]) -> Option<(Ipv4Addr, u16)> {
    for o in TcpOptions::new(options) {
        if let TcpOption::Unknown { kind: TOA_KIND, data: &[p0, p1, a0, a1, a2, a3] } = o.ok()? {
            return Some((Ipv4Addr::new(a0, a1, a2, a3), u16::from_be_bytes([p0, p1])));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::ETH_TCP_SYN;
    use crate::wire::{ipv4, tcp, Error};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

    #[test]
    fn insert_then_parse_back() {
        let mut buf = [0u8; 60 + 8 + 5];
        buf[..60].copy_from_slice(&ETH_TCP_SYN[14..]);
        // Give it a small payload so the shift is exercised.
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
            ip.set_total_len(65);
        }
        buf[60..65].copy_from_slice(b"GET /");
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            tcp::Packet::new_unchecked(ip.payload_mut()).fill_checksum(s, d);
        }
        assert_eq!(insert_toa(&mut buf, CLIENT, 51234), Ok(73));
        let ip = ipv4::Packet::new_checked(&buf[..]).unwrap();
        assert!(ip.verify_checksum());
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(t.header_len(), 48);
        assert_eq!(t.payload(), b"GET /");
        assert_eq!(parse_toa(t.options()), Some((CLIENT, 51234)));
        assert_eq!(t.mss_option(), Some(1460));
        // 48 + 8 = 56 still fits; a third would need 64 bytes.
        let mut big = [0u8; 90];
        big[..73].copy_from_slice(&buf);
        assert_eq!(insert_toa(&mut big, CLIENT, 1), Ok(81));
        let before = big;
        assert_eq!(insert_toa(&mut big, CLIENT, 2), Err(Error::NoRoom));
        assert_eq!(big, before);
    }

    #[test]
    fn parse_toa_cases() {
        assert_eq!(parse_toa(&toa_option(CLIENT, 80)), Some((CLIENT, 80)));
        assert_eq!(parse_toa(&[1, 1, 254, 8, 0, 80, 1, 2, 3, 4]), Some((Ipv4Addr::new(1, 2, 3, 4), 80)));
        assert_eq!(parse_toa(&[254, 7, 0, 80, 1, 2, 3]), None, "wrong length");
        assert_eq!(parse_toa(&[254, 9, 0, 80, 1, 2, 3, 4]), None, "overrun");
        assert_eq!(parse_toa(&[2, 0, 254, 8, 0, 80, 1, 2, 3, 4]), None, "malformed first");
        assert_eq!(parse_toa(&[0, 254, 8, 0, 80, 1, 2, 3, 4]), None, "after end of list");
        assert_eq!(parse_toa(&[]), None);
    }

    #[test]
    fn refused_on_non_tcp_and_fragments() {
        let mut buf = [0u8; 68];
        buf[..60].copy_from_slice(&ETH_TCP_SYN[14..]);
        ipv4::Packet::new_unchecked(&mut buf[..]).set_protocol(ipv4::PROTO_UDP);
        let before = buf;
        assert_eq!(insert_toa(&mut buf, CLIENT, 1), Err(Error::Unsupported));
        assert_eq!(buf, before);
        ipv4::Packet::new_unchecked(&mut buf[..]).set_protocol(ipv4::PROTO_TCP);
        buf[6] |= 0x20; // more fragments
        let before = buf;
        assert_eq!(insert_toa(&mut buf, CLIENT, 1), Err(Error::Fragment));
        assert_eq!(buf, before);
        assert_eq!(insert_toa(&mut buf[..20], CLIENT, 1), Err(Error::Truncated));
    }
}
