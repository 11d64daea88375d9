//! IPv6 (RFC 8200): the fixed header view, the extension-header walk, the pseudo-header checksum and
//! the in-place rewrite of a TCP/UDP tuple, in the house (smoltcp) style: `new_unchecked` trusts
//! the caller, `new_checked` checks every length the accessors rely on.
//!
//! Invariants:
//! - [`Packet::new_checked`] accepts only version 6, a non-zero payload length (jumbograms, whose
//!   length lives in a hop-by-hop option, are not handled) and a payload that fits the buffer;
//!   trailing bytes (Ethernet padding) are allowed and ignored by [`Packet::payload`].
//! - [`walk`] follows at most [`MAX_EXT_HEADERS`] extension headers, each inside the payload; a
//!   hop-by-hop header anywhere but first, a header type repeated (destination options may appear
//!   twice, RFC 8200 4.1) or a longer chain is refused as a loop; the fragment header is reported,
//!   never skipped over silently.
//! - Rewrites adjust the transport checksum incrementally (RFC 1624) from the 128-bit address
//!   deltas (eight 16-bit words each) and the port deltas; IPv6 has no header checksum.
use std::net::Ipv6Addr;

use super::checksum::{accumulate, adjust, delta16, fold, udp_adjust, udp_nonzero};
use super::{get16, put16};
use crate::flow::{FlowKey, Proto};

pub const HEADER_LEN: usize = 40;
/// The minimum link MTU of IPv6 (RFC 8200 5): every link carries 1280 bytes.
pub const MIN_MTU: u16 = 1280;

pub const NH_HOPOPT: u8 = 0;
pub const NH_TCP: u8 = 6;
pub const NH_UDP: u8 = 17;
/// IPv6-in-IPv6 (RFC 2473).
pub const NH_IPV6: u8 = 41;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_ICMPV6: u8 = 58;
pub const NH_NONE: u8 = 59;
pub const NH_DSTOPTS: u8 = 60;

/// Extension headers followed at most.
pub const MAX_EXT_HEADERS: usize = 8;

/// Why an IPv6 packet was refused: each a drop reason of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than the fixed header.
    Truncated,
    /// Version field not 6.
    BadVersion,
    /// Payload length 0 (a jumbogram, or nothing).
    ZeroPayload,
    /// Payload length past the end of the buffer.
    PayloadOverrun,
    /// An extension header running past the payload.
    ExtOverrun,
    /// An extension chain that repeats a header, puts hop-by-hop after the first place, or is
    /// longer than [`MAX_EXT_HEADERS`].
    ExtLoop,
}

impl Error {
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::ZeroPayload => "zero_payload",
            Error::PayloadOverrun => "payload_overrun",
            Error::ExtOverrun => "ext_overrun",
            Error::ExtLoop => "ext_loop",
        }
    }
}

/// A view of an IPv6 header over a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        let pl = self.payload_len() as usize;
        if pl == 0 {
            return Err(Error::ZeroPayload);
        }
        if HEADER_LEN + pl > b.len() {
            return Err(Error::PayloadOverrun);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), 4)
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), 8)
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), 24)
    }
    /// The packet: header and payload, without trailing padding.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN + self.payload_len() as usize]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        b[0] = 0x60 | (tc >> 4);
        b[1] = (tc << 4) | (b[1] & 0x0f);
    }
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v)
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[6] = v
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v
    }
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets())
    }
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets())
    }
    /// Decrements the hop limit of a packet being relayed; false (unchanged) when it would reach 0.
    pub fn decrement_hop_limit(&mut self) -> bool {
        let h = self.hop_limit();
        if h <= 1 {
            return false;
        }
        self.set_hop_limit(h - 1);
        true
    }
}

/// What the gateway builds: a fixed header without extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: u16,
    pub hop_limit: u8,
    pub traffic_class: u8,
}

impl Repr {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf` (flow label 0).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), super::Error> {
        if buf.len() < HEADER_LEN {
            return Err(super::Error::NoRoom);
        }
        buf[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        let mut p = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_traffic_class(self.traffic_class);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        Ok(())
    }
}

/// A fragment header found by [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// Offset in 8-byte units.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

/// Where the upper layer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// The upper-layer protocol (the last next-header value).
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub l4: usize,
    /// The fragment header, if the chain has one (the walk stops after it: what follows a
    /// non-first fragment's header is not a header).
    pub frag: Option<FragInfo>,
    /// Extension headers passed.
    pub ext: u8,
}

/// Follows the extension headers of the checked packet `ip` (hop-by-hop, routing, destination
/// options, fragment) to the upper layer.
pub fn walk(ip: &[u8]) -> Result<Walk, Error> {
    let p = Packet::new_checked(ip)?;
    let end = HEADER_LEN + p.payload_len() as usize;
    let (mut nh, mut at, mut n) = (p.next_header(), HEADER_LEN, 0u8);
    let mut seen = 0u64;
    loop {
        match nh {
            NH_HOPOPT | NH_ROUTING | NH_DSTOPTS | NH_FRAGMENT => {}
            _ => return Ok(Walk { proto: nh, l4: at, frag: None, ext: n }),
        }
        if usize::from(n) >= MAX_EXT_HEADERS || (nh == NH_HOPOPT && n > 0) {
            return Err(Error::ExtLoop);
        }
        // Destination options may come twice (before routing, and last); nothing else repeats.
        let bit = 1u64 << (nh & 63);
        let twice = nh == NH_DSTOPTS && seen & (1 << 62) == 0;
        if seen & bit != 0 && !twice {
            return Err(Error::ExtLoop);
        }
        if seen & bit != 0 {
            seen |= 1 << 62;
        }
        seen |= bit;
        if at + 8 > end {
            return Err(Error::ExtOverrun);
        }
        let next = ip[at];
        n += 1;
        if nh == NH_FRAGMENT {
            let w = get16(ip, at + 2);
            let ident = u32::from_be_bytes([ip[at + 4], ip[at + 5], ip[at + 6], ip[at + 7]]);
            let frag = FragInfo { offset: w >> 3, more: w & 1 != 0, ident };
            return Ok(Walk { proto: next, l4: at + 8, frag: Some(frag), ext: n });
        }
        let len = (usize::from(ip[at + 1]) + 1) * 8;
        if at + len > end {
            return Err(Error::ExtOverrun);
        }
        at += len;
        nh = next;
    }
}

/// Accumulator of the IPv6 pseudo header (RFC 8200 8.1): addresses, upper-layer length, next header.
#[inline]
pub fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u64 {
    let acc = accumulate(accumulate(0, &src.octets()), &dst.octets());
    acc + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(next_header)
}

/// The checksum field's offset in an upper-layer header.
#[inline]
pub const fn checksum_at(proto: u8) -> Option<usize> {
    match proto {
        NH_TCP => Some(16),
        NH_UDP => Some(6),
        NH_ICMPV6 => Some(2),
        _ => None,
    }
}

/// Computes and stores the upper-layer checksum of `l4` (TCP, UDP or ICMPv6) sent `src -> dst`.
pub fn fill_checksum(l4: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, proto: u8) {
    let Some(at) = checksum_at(proto) else { return };
    if l4.len() < at + 2 {
        return;
    }
    put16(l4, at, 0);
    let c = !fold(accumulate(pseudo_header(src, dst, proto, l4.len() as u32), l4));
    // UDP over IPv6 must carry a checksum (RFC 8200 8.1): a computed 0 goes out as 0xffff.
    put16(l4, at, if proto == NH_UDP { udp_nonzero(c) } else { c });
}

/// Whether the upper-layer checksum of `l4` sent `src -> dst` verifies (a UDP checksum of 0 does
/// not: IPv6 makes it mandatory).
pub fn verify_checksum(l4: &[u8], src: Ipv6Addr, dst: Ipv6Addr, proto: u8) -> bool {
    let Some(at) = checksum_at(proto) else { return true };
    if l4.len() < at + 2 || (proto == NH_UDP && get16(l4, at) == 0) {
        return false;
    }
    fold(accumulate(pseudo_header(src, dst, proto, l4.len() as u32), l4)) == 0xffff
}

/// The delta of a 128-bit address changing from `old` to `new`: eight 16-bit words (RFC 1624).
#[inline]
pub fn delta128(old: Ipv6Addr, new: Ipv6Addr) -> u64 {
    let (o, n) = (old.segments(), new.segments());
    (0..8).map(|i| delta16(o[i], n[i])).sum()
}

/// Applies `delta` to the TCP or UDP checksum of the upper-layer header `l4`.
#[inline]
pub fn adjust_l4(l4: &mut [u8], proto: u8, delta: u64) {
    match proto {
        NH_TCP => {
            let c = get16(l4, 16);
            put16(l4, 16, adjust(c, delta));
        }
        NH_UDP => {
            let c = get16(l4, 6);
            put16(l4, 6, udp_adjust(c, delta));
        }
        NH_ICMPV6 => {
            let c = get16(l4, 2);
            put16(l4, 2, adjust(c, delta));
        }
        _ => {}
    }
}

/// The TCP/UDP upper layer of a checked IPv6 packet: (protocol, offset), refusing fragments
/// (`Fragment`) and a header that does not fit (`Truncated`).
fn l4_bounds(ip: &[u8]) -> super::Result<(u8, usize)> {
    let w = walk(ip).map_err(|_| super::Error::Truncated)?;
    if w.frag.is_some() {
        return Err(super::Error::Fragment);
    }
    let min = match w.proto {
        NH_TCP => super::tcp::HEADER_LEN,
        NH_UDP => super::udp::HEADER_LEN,
        _ => return Err(super::Error::Unsupported),
    };
    let end = HEADER_LEN + Packet::new_unchecked(ip).payload_len() as usize;
    if w.l4 + min > end {
        return Err(super::Error::Truncated);
    }
    Ok((w.proto, w.l4))
}

/// The flow key of a TCP/UDP IPv6 packet, and the offset of its transport header.
pub fn flow_key(ip: &[u8]) -> super::Result<(FlowKey<Ipv6Addr>, usize)> {
    let (proto, l4) = l4_bounds(ip)?;
    let p = Packet::new_unchecked(ip);
    let key = FlowKey {
        proto: if proto == NH_TCP { Proto::Tcp } else { Proto::Udp },
        src: p.src_addr(),
        dst: p.dst_addr(),
        sport: get16(ip, l4),
        dport: get16(ip, l4 + 2),
    };
    Ok((key, l4))
}

/// Rewrites the addresses and ports of a TCP or UDP IPv6 packet in place (upper layer at `l4`),
/// adjusting the transport checksum incrementally (a zero UDP checksum stays zero).
pub fn rewrite_l4_tuple(ip: &mut [u8], l4: usize, to: &FlowKey<Ipv6Addr>) {
    let (old_src, old_dst) = {
        let p = Packet::new_unchecked(&*ip);
        (p.src_addr(), p.dst_addr())
    };
    let mut p = Packet::new_unchecked(&mut *ip);
    p.set_src_addr(to.src);
    p.set_dst_addr(to.dst);
    let proto = if to.proto == Proto::Tcp { NH_TCP } else { NH_UDP };
    let t = &mut ip[l4..];
    let delta = delta128(old_src, to.src)
        + delta128(old_dst, to.dst)
        + delta16(get16(t, 0), to.sport)
        + delta16(get16(t, 2), to.dport);
    put16(t, 0, to.sport);
    put16(t, 2, to.dport);
    adjust_l4(t, proto, delta);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn packet(nh: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        let repr = Repr {
            src: a("2001:2::1"),
            dst: a("2001:2::100"),
            next_header: nh,
            payload_len: (ext.len() + l4.len()) as u16,
            hop_limit: 64,
            traffic_class: 0xb8,
        };
        repr.emit(&mut v).unwrap();
        v.extend_from_slice(ext);
        v.extend_from_slice(l4);
        v
    }

    fn udp(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut u = vec![0x30, 0x39, 0, 53, 0, 12, 0, 0, b'a', b'b', b'c', b'd'];
        fill_checksum(&mut u, src, dst, NH_UDP);
        u
    }

    #[test]
    fn header_fields_round_trip() {
        let v = packet(NH_UDP, &[], &udp(a("2001:2::1"), a("2001:2::100")));
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label(), p.payload_len(), p.hop_limit()),
            (6, 0xb8, 0, 12, 64)
        );
        assert_eq!((p.src_addr(), p.dst_addr(), p.next_header()), (a("2001:2::1"), a("2001:2::100"), NH_UDP));
        assert!(verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), NH_UDP));
    }

    #[test]
    fn bad_headers_are_refused_by_type() {
        let v = packet(NH_UDP, &[], &udp(a("2001:2::1"), a("2001:2::100")));
        assert_eq!(Packet::new_checked(&v[..39]).err(), Some(Error::Truncated));
        let mut w = v.clone();
        w[0] = 0x45;
        assert_eq!(Packet::new_checked(&w[..]).err(), Some(Error::BadVersion));
        let mut w = v.clone();
        w[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(Packet::new_checked(&w[..]).err(), Some(Error::ZeroPayload));
        let mut w = v.clone();
        w[4..6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(Packet::new_checked(&w[..]).err(), Some(Error::PayloadOverrun));
        let mut padded = v.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(Packet::new_checked(&padded[..]).unwrap().payload().len(), 12, "padding ignored");
    }

    #[test]
    fn extension_headers_are_walked_and_bounded() {
        let u = udp(a("2001:2::1"), a("2001:2::100"));
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> UDP
        let mut ext = vec![NH_DSTOPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[NH_UDP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v = packet(NH_HOPOPT, &ext, &u);
        assert_eq!(walk(&v).unwrap(), Walk { proto: NH_UDP, l4: 64, frag: None, ext: 2 });
        let (k, l4) = flow_key(&v).unwrap();
        assert_eq!((k.sport, k.dport, l4), (12345, 53, 64));
        // a destination-options header that claims more than the payload holds
        let v = packet(NH_DSTOPTS, &[NH_UDP, 200, 0, 0, 0, 0, 0, 0], &u);
        assert_eq!(walk(&v).err(), Some(Error::ExtOverrun));
        // hop-by-hop after another header; routing twice; a chain past the bound
        let v = packet(NH_DSTOPTS, &[NH_HOPOPT, 0, 1, 4, 0, 0, 0, 0, NH_UDP, 0, 1, 4, 0, 0, 0, 0], &u);
        assert_eq!(walk(&v).err(), Some(Error::ExtLoop));
        let v = packet(NH_ROUTING, &[NH_ROUTING, 0, 0, 0, 0, 0, 0, 0, NH_UDP, 0, 0, 0, 0, 0, 0, 0], &u);
        assert_eq!(walk(&v).err(), Some(Error::ExtLoop));
        let mut chain = Vec::new();
        for _ in 0..2 {
            chain.extend_from_slice(&[NH_DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        chain.extend_from_slice(&[NH_UDP, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(walk(&packet(NH_DSTOPTS, &chain, &u)).err(), Some(Error::ExtLoop), "dstopts thrice");
        // a fragment header is reported with its fields, and flow_key refuses it
        let v = packet(NH_FRAGMENT, &[NH_UDP, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef], &u);
        let w = walk(&v).unwrap();
        assert_eq!(w.frag, Some(FragInfo { offset: 0xb5, more: true, ident: 0xdead_beef }));
        assert_eq!(flow_key(&v).err(), Some(super::super::Error::Fragment));
    }

    #[test]
    fn rewrite_keeps_checksums_equal_to_a_full_recomputation() {
        let mut rng = super::super::testutil::Rng::new(6);
        for _ in 0..200 {
            let mut r = || {
                let mut b = [0u8; 16];
                rng.fill(&mut b);
                Ipv6Addr::from(b)
            };
            let (s0, d0, s1, d1) = (r(), r(), r(), r());
            let mut v = packet(NH_UDP, &[], &udp(s0, d0));
            v[8..24].copy_from_slice(&s0.octets());
            v[24..40].copy_from_slice(&d0.octets());
            let to = FlowKey { proto: Proto::Udp, src: s1, dst: d1, sport: 1025, dport: 8080 };
            rewrite_l4_tuple(&mut v, HEADER_LEN, &to);
            let mut want = v[HEADER_LEN..].to_vec();
            fill_checksum(&mut want, s1, d1, NH_UDP);
            assert_eq!(&v[HEADER_LEN..], &want[..]);
            assert!(verify_checksum(&v[HEADER_LEN..], s1, d1, NH_UDP));
        }
    }
}
