//! UDP header (RFC 768).
//!
//! The buffer is the IPv4 payload. Invariants after [`Packet::new_checked`]: `8 <= len() <= buffer.len()`.
//! A buffer longer than the length field is accepted (as Linux does): [`Packet::payload`] and the
//! checksum cover `..len()` only.
//!
//! Checksum 0 means "none": setters leave it 0, and a computed 0 is stored as 0xffff.
use super::checksum;
use super::{get16, put16, Error, Result};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
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

    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if l > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..self.len() as usize]
    }

    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let l = self.len();
        let ph = checksum::ipv4_pseudo_header(src, dst, super::ipv4::PROTO_UDP, l);
        checksum::fold(checksum::accumulate(ph, &self.buffer.as_ref()[..l as usize]))
    }

    /// True if the checksum is absent (0) or verifies against the pseudo header of `src -> dst`.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.sum(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    fn adjust_checksum(&mut self, delta: u64) {
        let c = self.checksum();
        put16(self.buffer.as_mut(), field::CHECKSUM.start, checksum::udp_adjust(c, delta));
    }

    #[inline(always)]
    fn write16(&mut self, at: usize, new: u16) -> u64 {
        let old = get16(self.buffer.as_ref(), at);
        put16(self.buffer.as_mut(), at, new);
        checksum::delta16(old, new)
    }

    pub fn set_src_port(&mut self, port: u16) {
        let d = self.write16(field::SRC_PORT.start, port);
        self.adjust_checksum(d);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        let d = self.write16(field::DST_PORT.start, port);
        self.adjust_checksum(d);
    }

    /// Raw write of the length field. No incremental update is possible here: the length decides which
    /// bytes the checksum covers. Follow with [`Packet::fill_checksum`].
    pub fn set_len_raw(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Raw write of the checksum field (0 disables the checksum).
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Compute and store the checksum (never 0: that would mean "none").
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::udp_nonzero(!self.sum(src, dst));
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        &mut self.buffer.as_mut()[field::PAYLOAD..l]
    }
}

/// A UDP datagram to build: the header fields and the payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl Repr {
    /// Header plus payload: the length field, and the IPv4 payload length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Fill the header of `packet` and its checksum over the pseudo header `src -> dst` and the first
    /// [`Repr::buffer_len`] bytes: the payload is whatever already sits after the header. `NoRoom`
    /// (nothing written) if the buffer is shorter or the length exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        let wire_len = u16::try_from(len).map_err(|_| Error::NoRoom)?;
        if packet.buffer.as_ref().len() < len {
            return Err(Error::NoRoom);
        }
        let b = packet.buffer.as_mut();
        put16(b, field::SRC_PORT.start, self.src_port);
        put16(b, field::DST_PORT.start, self.dst_port);
        put16(b, field::LENGTH.start, wire_len);
        // `fill_checksum` covers `..len()`, the length field just written, whatever follows it.
        packet.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::IP_UDP_DNS;
    use crate::wire::testutil::{fuzz_inputs, Rng};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    fn full(seg: &[u8]) -> u16 {
        let mut v = seg.to_vec();
        let mut p = Packet::new_unchecked(&mut v[..]);
        p.fill_checksum(SRC, DST);
        p.checksum()
    }

    #[test]
    fn parse_dns() {
        let p = Packet::new_checked(&IP_UDP_DNS[20..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (53000, 53, 37));
        assert_eq!(p.payload().len(), 29);
        assert_eq!(&p.payload()[12..20], b"\x07example");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(8, 8, 4, 4)));
    }

    #[test]
    fn lengths() {
        let d = &IP_UDP_DNS[20..];
        for len in 0..d.len() {
            assert_eq!(Packet::new_checked(&d[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        let mut b = [0u8; 40];
        b[..37].copy_from_slice(d);
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload().len(), 29, "trailing bytes ignored");
        for l in 0..8u16 {
            b[4..6].copy_from_slice(&l.to_be_bytes());
            assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadLength);
        }
    }

    #[test]
    fn setters_keep_checksum_exact() {
        let mut rng = Rng::new(40);
        let mut b = [0u8; 37];
        b.copy_from_slice(&IP_UDP_DNS[20..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        for i in 0..20_000 {
            if i % 2 == 0 {
                p.set_src_port(rng.u16());
            } else {
                p.set_dst_port(rng.u16());
            }
            assert_ne!(p.checksum(), 0);
            assert_eq!(p.checksum(), full(p.buffer), "step {i}");
            assert!(p.verify_checksum(SRC, DST));
        }
    }

    #[test]
    fn build_with_raw_len() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_len_raw(11);
        p.set_src_port(1000);
        p.set_dst_port(53);
        p.payload_mut().copy_from_slice(b"abc");
        p.fill_checksum(SRC, DST);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!((p.len(), p.payload()), (11, &b"abc"[..]));
    }

    #[test]
    fn zero_checksum_stays_zero() {
        let mut rng = Rng::new(41);
        let mut b = [0u8; 37];
        b.copy_from_slice(&IP_UDP_DNS[20..]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        for _ in 0..1000 {
            p.set_src_port(rng.u16());
            p.set_dst_port(rng.u16());
            assert_eq!(p.checksum(), 0);
            assert!(p.verify_checksum(SRC, DST));
        }
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the payload word so the checksum computes to exactly 0.
        let mut b = [0u8; 10];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_len_raw(10);
        let partial = !checksum::internet_checksum(&p.buffer[..]) as u64
            + checksum::ipv4_pseudo_header(SRC, DST, 17, 10);
        let need = !checksum::fold(partial); // the word that brings the sum to 0xffff
        put16(p.buffer, 8, need);
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
        // And an incremental update landing on 0 also yields 0xffff.
        let mut hits = 0;
        for port in 0..=u16::MAX {
            p.set_src_port(port);
            assert_ne!(p.checksum(), 0);
            hits += (p.checksum() == 0xffff) as u32;
        }
        assert!(p.verify_checksum(SRC, DST));
        assert!(hits > 0);
    }

    #[test]
    fn fuzz() {
        fuzz_inputs(43, 20_000, &[&IP_UDP_DNS[20..]], |b| {
            if let Ok(p) = Packet::new_checked(b) {
                let _ = (p.payload(), p.verify_checksum(SRC, DST));
            }
        });
    }

    #[test]
    fn repr_emit_round_trip() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(8, 8, 8, 8));
        let r = Repr { src_port: 53000, dst_port: 53, payload_len: 29 };
        let mut v = IP_UDP_DNS[20..].to_vec();
        v.extend_from_slice(&[0xee; 3]);
        v[..8].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut v[..]), src, dst).unwrap();
        assert_eq!(&v[..37], &IP_UDP_DNS[20..], "the captured datagram, checksum included");
        assert_eq!(&v[37..], &[0xee; 3]);
        let mut short = [0u8; 36];
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut short[..]), src, dst), Err(Error::NoRoom));
        assert_eq!(short, [0; 36]);
    }
}
