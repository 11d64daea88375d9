//! IPv4 header (RFC 791), options included.
//!
//! Invariants after [`Packet::new_checked`]:
//! - version is 4, 5 <= IHL <= 15, and `header_len() <= total_len() <= buffer.len()`.
//! - The buffer may be longer than `total_len` (Ethernet padding, spare tailroom); [`Packet::payload`]
//!   is bounded by `total_len`, never by the buffer.
//! - The header checksum is not verified (see the module docs of `wire`); every setter keeps it
//!   consistent incrementally, so a packet that arrived with a bad checksum still has one.
use super::checksum;
use super::{get16, put16, Error, Result};
use std::net::Ipv4Addr;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn addr(b: &[u8], f: super::Field) -> Ipv4Addr {
    Ipv4Addr::new(b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Validate version, IHL and total length against each other and the buffer.
    pub fn check_len(&self) -> Result<()> {
        let hl = self.header_len_checked()?;
        let tl = self.total_len() as usize;
        if tl < hl {
            return Err(Error::BadTotalLen);
        }
        if self.buffer.as_ref().len() < tl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Validate the header alone (version, IHL, header within the buffer) and return its length. The
    /// total length is not looked at, so `payload()` is *not* safe after this: it is for packets quoted
    /// in ICMP errors, which are cut short by design (see `icmp::Quoted`).
    pub fn header_len_checked(&self) -> Result<usize> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadIhl);
        }
        if b.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(hl)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flg_off(&self) -> u16 {
        get16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    pub fn dont_frag(&self) -> bool {
        self.flg_off() & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.flg_off() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & OFFSET_MASK) << 3
    }

    /// Part of a fragmented datagram (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.flg_off() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// The first fragment of a fragmented datagram: it carries the transport header, but its L4
    /// checksum covers the whole reassembled datagram.
    pub fn is_first_fragment(&self) -> bool {
        self.flg_off() & (FLAG_MF | OFFSET_MASK) == FLAG_MF
    }

    /// A fragment at a non-zero offset: no transport header at all.
    pub fn is_later_fragment(&self) -> bool {
        self.flg_off() & OFFSET_MASK != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The L4 bytes: from the end of the header to `total_len` (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.header()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Replace the header word at even offset `at`, adjusting the header checksum for it.
    #[inline(always)]
    fn write_word(&mut self, at: usize, new: u16) {
        let b = self.buffer.as_mut();
        let old = get16(b, at);
        put16(b, at, new);
        let c = get16(b, field::CHECKSUM.start);
        put16(b, field::CHECKSUM.start, checksum::update16(c, old, new));
    }

    /// Replace byte `at` (same word as byte `at ^ 1`), adjusting the header checksum.
    fn write_byte(&mut self, at: usize, v: u8) {
        let b = self.buffer.as_ref();
        let (w0, w1) = if at % 2 == 0 { (v, b[at + 1]) } else { (b[at - 1], v) };
        self.write_word(at & !1, u16::from_be_bytes([w0, w1]));
    }

    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.write_byte(field::DSCP_ECN, (dscp << 2) | (ecn & 0x03));
    }

    /// The caller keeps `header_len() <= len <= buffer.len()` (e.g. after growing the packet into its
    /// tailroom), or `payload()` may panic.
    pub fn set_total_len(&mut self, len: u16) {
        self.write_word(field::LENGTH.start, len);
    }

    pub fn set_ident(&mut self, ident: u16) {
        self.write_word(field::IDENT.start, ident);
    }

    pub fn set_dont_frag(&mut self, df: bool) {
        let v = (self.flg_off() & !FLAG_DF) | if df { FLAG_DF } else { 0 };
        self.write_word(field::FLG_OFF.start, v);
    }

    /// Sets the fragment offset (in bytes, a multiple of 8) and the more-fragments flag, keeping DF.
    pub fn set_frag(&mut self, offset: u16, more: bool) {
        debug_assert!(offset % 8 == 0);
        let v = (self.flg_off() & FLAG_DF) | ((offset >> 3) & OFFSET_MASK) | if more { FLAG_MF } else { 0 };
        self.write_word(field::FLG_OFF.start, v);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.write_byte(field::TTL, ttl);
    }

    /// Decrement the TTL for forwarding; returns false (unchanged) if it is already 0 or 1, i.e. the
    /// packet must be dropped with an ICMP time-exceeded instead.
    pub fn decrement_ttl(&mut self) -> bool {
        let t = self.ttl();
        if t <= 1 {
            return false;
        }
        self.set_ttl(t - 1);
        true
    }

    pub fn set_protocol(&mut self, proto: u8) {
        self.write_byte(field::PROTOCOL, proto);
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        let v = u32::from(a);
        self.write_word(field::SRC_ADDR.start, (v >> 16) as u16);
        self.write_word(field::SRC_ADDR.start + 2, v as u16);
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        let v = u32::from(a);
        self.write_word(field::DST_ADDR.start, (v >> 16) as u16);
        self.write_word(field::DST_ADDR.start + 2, v as u16);
    }

    /// Raw write of the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Recompute the header checksum from scratch (for packets built here, or after raw edits).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet_checksum(self.header());
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..tl]
    }

    /// Header and payload (`..total_len`) as one slice, for the L4 code that needs both.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        let tl = self.total_len() as usize;
        &mut self.buffer.as_mut()[..tl]
    }
}

/// An option-less IPv4 header to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// L4 length; the total length is this plus 20.
    pub payload_len: u16,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Write a 20-byte header with a valid checksum at the start of `buf`; returns 20.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let tl = (self.payload_len as usize + HEADER_LEN).try_into().map_err(|_| Error::NoRoom)?;
        let b = buf.get_mut(..HEADER_LEN).ok_or(Error::NoRoom)?;
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = 0;
        put16(b, field::LENGTH.start, tl);
        put16(b, field::IDENT.start, self.ident);
        put16(b, field::FLG_OFF.start, if self.dont_frag { FLAG_DF } else { 0 });
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        b[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        Packet::new_unchecked(b).fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{ETH_TCP_SYN, IP_ICMP_ECHO, IP_ICMP_FRAG_NEEDED, IP_UDP_DNS};
    use crate::wire::testutil::{fuzz_inputs, Rng};

    fn full(p: &Packet<&mut [u8]>) -> u16 {
        let mut h = [0u8; MAX_HEADER_LEN];
        let h = &mut h[..p.header_len()];
        h.copy_from_slice(p.header());
        h[10] = 0;
        h[11] = 0;
        checksum::internet_checksum(h)
    }

    #[test]
    fn parse_syn() {
        let p = Packet::new_checked(&ETH_TCP_SYN[14..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len()), (4, 20, 60));
        assert_eq!((p.dscp(), p.ecn(), p.ident()), (0, 0, 0x1c46));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment() && !p.is_first_fragment());
        assert_eq!((p.ttl(), p.protocol()), (64, PROTO_TCP));
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 40);
        assert!(p.options().is_empty());
        for f in [&IP_UDP_DNS[..], &IP_ICMP_ECHO, &IP_ICMP_FRAG_NEEDED] {
            assert!(Packet::new_checked(f).unwrap().verify_checksum());
        }
    }

    #[test]
    fn padding_is_accepted_but_not_payload() {
        let mut padded = [0xeeu8; 100];
        padded[..IP_UDP_DNS.len()].copy_from_slice(&IP_UDP_DNS);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &IP_UDP_DNS[20..]);
    }

    #[test]
    fn malformations() {
        let good = &ETH_TCP_SYN[14..];
        for len in 0..good.len() {
            assert_eq!(Packet::new_checked(&good[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        let mut b = [0u8; 60];
        b.copy_from_slice(good);
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadVersion);
        for ihl in 0..5 {
            b[0] = 0x40 | ihl;
            assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadIhl);
        }
        b[0] = 0x4f; // 60-byte header, total length 60: no payload, fine
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload().len(), 0);
        b[0] = 0x45;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadTotalLen);
        b[2..4].copy_from_slice(&61u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn fragments() {
        let mut b = [0u8; 60];
        b.copy_from_slice(&ETH_TCP_SYN[14..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.write_word(6, FLAG_MF);
        assert!(p.is_fragment() && p.is_first_fragment() && !p.is_later_fragment() && p.more_frags());
        p.write_word(6, FLAG_MF | 10);
        assert!(p.is_fragment() && !p.is_first_fragment() && p.is_later_fragment());
        assert_eq!(p.frag_offset(), 80);
        p.write_word(6, 10);
        assert!(p.is_fragment() && p.is_later_fragment() && !p.more_frags());
        p.set_dont_frag(true);
        assert!(p.dont_frag() && p.frag_offset() == 80);
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_keep_checksum_exact() {
        let mut rng = Rng::new(20);
        let mut b = [0u8; 60];
        b.copy_from_slice(&ETH_TCP_SYN[14..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        for i in 0..20_000 {
            match i % 8 {
                0 => p.set_src_addr(rng.ip()),
                1 => p.set_dst_addr(rng.ip()),
                2 => p.set_ttl(rng.u8()),
                3 => p.set_total_len(rng.u16()),
                4 => p.set_ident(rng.u16()),
                5 => p.set_protocol(rng.u8()),
                6 => p.set_dscp_ecn(rng.u8() & 0x3f, rng.u8()),
                _ => p.set_dont_frag(rng.u8() & 1 == 0),
            }
            assert_eq!(p.checksum(), full(&p), "step {i}");
            assert!(p.verify_checksum());
        }
        p.set_ttl(2);
        assert!(p.decrement_ttl() && p.ttl() == 1 && !p.decrement_ttl() && p.ttl() == 1);
        p.set_checksum(0x1234);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_read_back() {
        let mut b = [0u8; 60];
        b.copy_from_slice(&ETH_TCP_SYN[14..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_addr(Ipv4Addr::new(1, 2, 3, 4));
        p.set_dst_addr(Ipv4Addr::new(5, 6, 7, 8));
        p.set_ttl(7);
        p.set_dscp_ecn(46, 2);
        assert_eq!((p.src_addr(), p.dst_addr()), (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)));
        assert_eq!((p.ttl(), p.protocol(), p.dscp(), p.ecn()), (7, PROTO_TCP, 46, 2));
        assert_eq!(p.payload_mut().len(), 40);
        assert_eq!(p.packet_mut().len(), 60);
    }

    #[test]
    fn repr_emit() {
        let r = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: PROTO_TCP,
            payload_len: 40,
            ttl: 64,
            ident: 0x1c46,
            dont_frag: true,
        };
        let mut b = [0u8; 60];
        assert_eq!(r.emit(&mut b), Ok(20));
        assert_eq!(b[..20], ETH_TCP_SYN[14..34]);
        assert_eq!(r.emit(&mut b[..19]), Err(Error::NoRoom));
        assert_eq!(Repr { payload_len: 65516, ..r }.emit(&mut b), Err(Error::NoRoom));
    }

    #[test]
    fn fuzz() {
        fuzz_inputs(21, 20_000, &[&ETH_TCP_SYN[14..], &IP_UDP_DNS, &IP_ICMP_FRAG_NEEDED], |b| {
            if let Ok(p) = Packet::new_checked(b) {
                let _ = (p.payload(), p.options(), p.header(), p.verify_checksum(), p.frag_offset());
                let _ = (p.src_addr(), p.dst_addr(), p.is_fragment(), p.dscp());
            }
        });
    }
}
