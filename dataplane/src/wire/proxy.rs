//! PROXY protocol headers (HAProxy's `proxy-protocol.txt`, versions 1 and 2): what the gateway puts
//! at the start of a client's byte stream toward a real server so that it learns the client's
//! address without a kernel module.
//!
//! - Version 1 is one text line: `PROXY TCP4 <client> <vip> <cport> <vport>\r\n` (`TCP6` for IPv6),
//!   at most 107 bytes.
//! - Version 2 is binary: the 12-byte signature, `0x21` (version 2, command PROXY), the family and
//!   transport (`0x11` TCP over IPv4, `0x21` TCP over IPv6), the length of what follows (big-endian),
//!   then source address, destination address, source port, destination port. 28 bytes for IPv4,
//!   52 for IPv6. No TLVs are sent.
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use super::{Error, Result};

/// Which header version a service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest header either version can take (version 1 over IPv6, as the specification bounds it).
pub const MAX_LEN: usize = 107;

/// Writes the header announcing a TCP connection from `src` to `dst` into `buf`; returns its
/// length. Both ends must be of one family.
pub fn emit(v: Version, src: (IpAddr, u16), dst: (IpAddr, u16), buf: &mut [u8]) -> Result<usize> {
    match v {
        Version::V1 => emit_v1(src, dst, buf),
        Version::V2 => emit_v2(src, dst, buf),
    }
}

/// The header's length, without writing it anywhere useful.
pub fn len(v: Version, src: (IpAddr, u16), dst: (IpAddr, u16)) -> usize {
    let mut b = [0u8; MAX_LEN];
    emit(v, src, dst, &mut b).unwrap_or(0)
}

/// The IPv4 case of [`emit`].
pub fn emit_v4(v: Version, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), buf: &mut [u8]) -> Result<usize> {
    emit(v, (src.0.into(), src.1), (dst.0.into(), dst.1), buf)
}

fn emit_v1(src: (IpAddr, u16), dst: (IpAddr, u16), buf: &mut [u8]) -> Result<usize> {
    let fam = match (src.0, dst.0) {
        (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
        (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
        _ => return Err(Error::Unsupported),
    };
    let cap = buf.len();
    let mut w = &mut buf[..];
    write!(w, "PROXY {fam} {} {} {} {}\r\n", src.0, dst.0, src.1, dst.1).map_err(|_| Error::NoRoom)?;
    Ok(cap - w.len())
}

fn emit_v2(src: (IpAddr, u16), dst: (IpAddr, u16), buf: &mut [u8]) -> Result<usize> {
    let (fam, addr_len) = match (src.0, dst.0) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (0x11u8, 12usize),
        (IpAddr::V6(_), IpAddr::V6(_)) => (0x21, 36),
        _ => return Err(Error::Unsupported),
    };
    let total = 16 + addr_len;
    let b = buf.get_mut(..total).ok_or(Error::NoRoom)?;
    b[..12].copy_from_slice(&V2_SIGNATURE);
    b[12] = 0x21;
    b[13] = fam;
    b[14..16].copy_from_slice(&(addr_len as u16).to_be_bytes());
    let mut at = 16;
    for a in [src.0, dst.0] {
        let n = match a {
            IpAddr::V4(a) => {
                b[at..at + 4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                b[at..at + 16].copy_from_slice(&a.octets());
                16
            }
        };
        at += n;
    }
    b[at..at + 2].copy_from_slice(&src.1.to_be_bytes());
    b[at + 2..at + 4].copy_from_slice(&dst.1.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn v4(a: [u8; 4], p: u16) -> (IpAddr, u16) {
        (IpAddr::from(a), p)
    }

    #[test]
    fn v1_is_the_specifications_line() {
        let mut b = [0u8; MAX_LEN];
        let n = emit(Version::V1, v4([198, 18, 0, 2], 56324), v4([198, 18, 0, 100], 443), &mut b).unwrap();
        assert_eq!(&b[..n], b"PROXY TCP4 198.18.0.2 198.18.0.100 56324 443\r\n");
        // The longest IPv4 line, and IPv6's.
        let n = emit(Version::V1, v4([255; 4], 65535), v4([255; 4], 65535), &mut b).unwrap();
        assert_eq!(n, 56);
        let a6 = IpAddr::from(Ipv6Addr::from([0xffff; 8]));
        let n = emit(Version::V1, (a6, 65535), (a6, 65535), &mut b).unwrap();
        assert_eq!(n, 104);
        assert!(n <= MAX_LEN);
        assert_eq!(&b[..11], b"PROXY TCP6 ");
    }

    #[test]
    fn v2_layout() {
        let mut b = [0u8; MAX_LEN];
        let n = emit(Version::V2, v4([198, 18, 0, 2], 0x1234), v4([198, 18, 0, 100], 80), &mut b).unwrap();
        assert_eq!(n, 28);
        let want: [u8; 28] = [
            0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
            0x21, 0x11, 0x00, 0x0c, // v2 PROXY, TCP over IPv4, 12 bytes follow
            198, 18, 0, 2, 198, 18, 0, 100, 0x12, 0x34, 0x00, 0x50,
        ];
        assert_eq!(b[..n], want);
        let a = IpAddr::from(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1));
        let z = IpAddr::from(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100));
        let n = emit(Version::V2, (a, 1), (z, 2), &mut b).unwrap();
        assert_eq!(n, 52);
        assert_eq!(&b[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(&b[48..52], &[0, 1, 0, 2]);
    }

    #[test]
    fn refuses_what_does_not_fit_or_mixes_families() {
        let mut small = [0u8; 20];
        let (c, v) = (v4([198, 18, 0, 2], 1), v4([198, 18, 0, 100], 2));
        assert_eq!(emit(Version::V2, c, v, &mut small), Err(Error::NoRoom));
        assert_eq!(emit(Version::V1, c, v, &mut small), Err(Error::NoRoom));
        let a6 = (IpAddr::from(Ipv6Addr::LOCALHOST), 1);
        let mut b = [0u8; MAX_LEN];
        assert_eq!(emit(Version::V1, c, a6, &mut b), Err(Error::Unsupported));
        assert_eq!(emit(Version::V2, a6, c, &mut b), Err(Error::Unsupported));
        assert_eq!(len(Version::V2, c, v), 28);
    }
}
