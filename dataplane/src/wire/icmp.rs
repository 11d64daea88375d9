//! ICMPv4 (RFC 792): echo, and the error messages that quote an offending packet.
//!
//! The buffer is the whole ICMP message (the IPv4 payload): the checksum covers all of it.
//! Invariant after [`Packet::new_checked`]: the 8-byte header is present.
//!
//! Error messages quote the IPv4 header and at least the first 8 bytes of the L4 header of the packet
//! that caused them. The quoted packet's total length is normally larger than what is quoted, so
//! [`Quoted`] validates the header and those 8 bytes only, never the quoted total length.
use super::checksum;
use super::{get16, get32, put16, put32, Error, Result};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;
/// Quoted L4 bytes every ICMP error carries (RFC 792); enough for TCP/UDP ports.
pub const QUOTED_L4_LEN: usize = 8;

/// Message types.
pub mod msg {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable codes.
pub mod unreach {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; the next-hop MTU is in the header (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time-exceeded codes.
pub mod time_exceeded {
    pub const TTL: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

mod field {
    use crate::wire::Field;
    pub const TYPE_CODE: Field = 0..2;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const REST: Field = 4..8;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const DATA: usize = 8;
}

/// A read/write view of an ICMPv4 message.
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
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE_CODE.start]
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE_CODE.start + 1]
    }

    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo request/reply identifier.
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo request/reply sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Next-hop MTU of a frag-needed message (0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        get16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }

    /// The 4 type-specific header bytes after the checksum.
    pub fn rest_of_header(&self) -> u32 {
        get32(self.buffer.as_ref(), field::REST.start)
    }

    /// One of the error types that quote the offending packet.
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            msg::DEST_UNREACHABLE
                | msg::SOURCE_QUENCH
                | msg::REDIRECT
                | msg::TIME_EXCEEDED
                | msg::PARAM_PROBLEM
        )
    }

    pub fn is_frag_needed(&self) -> bool {
        self.msg_type() == msg::DEST_UNREACHABLE && self.msg_code() == unreach::FRAG_NEEDED
    }

    /// Everything after the 8-byte header (echo data, or the quoted packet).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// The quoted packet of an error message; `Unsupported` for other types.
    pub fn inner(&self) -> Result<Quoted<&[u8]>> {
        if !self.is_error() {
            return Err(Error::Unsupported);
        }
        Quoted::new_checked(self.data())
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    fn adjust_checksum(&mut self, delta: u64) {
        let c = self.checksum();
        put16(self.buffer.as_mut(), field::CHECKSUM.start, checksum::adjust(c, delta));
    }

    fn write16(&mut self, at: usize, new: u16) {
        let old = get16(self.buffer.as_ref(), at);
        put16(self.buffer.as_mut(), at, new);
        self.adjust_checksum(checksum::delta16(old, new));
    }

    pub fn set_msg_type(&mut self, t: u8) {
        self.write16(field::TYPE_CODE.start, u16::from_be_bytes([t, self.msg_code()]));
    }

    pub fn set_msg_code(&mut self, c: u8) {
        self.write16(field::TYPE_CODE.start, u16::from_be_bytes([self.msg_type(), c]));
    }

    pub fn set_echo_ident(&mut self, v: u16) {
        self.write16(field::ECHO_IDENT.start, v);
    }

    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.write16(field::ECHO_SEQNO.start, v);
    }

    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        self.write16(field::NEXT_HOP_MTU.start, mtu);
    }

    /// Raw write of the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet_checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turn an echo request into its reply in place (type 8 -> 0; id, sequence and data are echoed).
    /// False (unchanged) if this is not an echo request. The caller swaps the IPv4 addresses.
    ///
    /// The checksum is recomputed, not updated (RFC 1624): a reply whose bytes are all zero (id 0,
    /// sequence 0, no data) sums to +0 and needs checksum 0xffff, which an incremental update from
    /// the request's can only give as 0x0000, a bad checksum. Echo replies are not the fast path.
    pub fn make_echo_reply(&mut self) -> bool {
        if self.msg_type() != msg::ECHO_REQUEST {
            return false;
        }
        self.buffer.as_mut()[field::TYPE_CODE.start] = msg::ECHO_REPLY;
        self.fill_checksum();
        true
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// FULLNAT for the packet quoted by an error message: set the quoted addresses and TCP/UDP ports,
    /// keeping the quoted IPv4 header checksum, the quoted L4 checksum (when it is among the quoted
    /// bytes; a zero UDP checksum stays zero) and this message's checksum consistent, incrementally.
    /// The outer IPv4 header is the caller's (see `nat::rewrite_icmp_error`).
    ///
    /// Errors, with nothing modified: `Unsupported` (not an error message, or the quoted protocol is not
    /// TCP/UDP), `Fragment` (the quoted packet is a non-first fragment: no ports), or a [`Quoted`] parse
    /// error.
    pub fn rewrite_inner(&mut self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Result<()> {
        let q = self.inner()?;
        let proto = q.protocol();
        if proto != super::ipv4::PROTO_TCP && proto != super::ipv4::PROTO_UDP {
            return Err(Error::Unsupported);
        }
        if q.is_later_fragment() {
            return Err(Error::Fragment);
        }
        let hl = q.header_len();
        let l4_len = q.l4().len();
        let (old_src, old_dst) = (u32::from(q.src_addr()), u32::from(q.dst_addr()));
        let (old_sport, old_dport) = (q.src_port(), q.dst_port());

        let b = &mut self.buffer.as_mut()[field::DATA..];
        put32(b, quoted::SRC_ADDR, src.into());
        put32(b, quoted::DST_ADDR, dst.into());
        let addr_delta = checksum::delta32(old_src, src.into()) + checksum::delta32(old_dst, dst.into());
        let old_ipc = get16(b, quoted::CHECKSUM);
        let new_ipc = checksum::adjust(old_ipc, addr_delta);
        put16(b, quoted::CHECKSUM, new_ipc);

        let l4 = &mut b[hl..];
        put16(l4, 0, sport);
        put16(l4, 2, dport);
        let port_delta = checksum::delta16(old_sport, sport) + checksum::delta16(old_dport, dport);
        let mut delta = addr_delta + checksum::delta16(old_ipc, new_ipc) + port_delta;

        let l4_csum_at = if proto == super::ipv4::PROTO_UDP { 6 } else { 16 };
        if l4_len >= l4_csum_at + 2 {
            let old = get16(l4, l4_csum_at);
            let new = if proto == super::ipv4::PROTO_UDP {
                checksum::udp_adjust(old, addr_delta + port_delta)
            } else {
                checksum::adjust(old, addr_delta + port_delta)
            };
            put16(l4, l4_csum_at, new);
            delta += checksum::delta16(old, new);
        }
        // The quoted packet starts at offset 8 and its header length is a multiple of 4, so every field
        // above is word-aligned in the ICMP message too and the deltas add up directly.
        self.adjust_checksum(delta);
        Ok(())
    }
}

/// Build an ICMP error message into `buf`: header with `rest_of_header` (e.g. the next-hop MTU for
/// frag-needed), quoting the header and first 8 L4 bytes of `offending` (an IPv4 packet, at least its
/// header; less is quoted if it is shorter). Returns the ICMP length; the caller adds the IPv4 header.
pub fn emit_error(
    buf: &mut [u8],
    msg_type: u8,
    code: u8,
    rest_of_header: u32,
    offending: &[u8],
) -> Result<usize> {
    let q = Quoted::new_checked(offending).map(|q| q.header_len() + QUOTED_L4_LEN);
    let quote = match q {
        Ok(n) => n,
        // Fine to quote a short packet, as long as its header is whole.
        Err(Error::Truncated) => {
            let hl = super::ipv4::Packet::new_unchecked(offending).header_len_checked()?;
            offending.len().min(hl + QUOTED_L4_LEN)
        }
        Err(e) => return Err(e),
    };
    let len = HEADER_LEN + quote;
    let b = buf.get_mut(..len).ok_or(Error::NoRoom)?;
    b[field::DATA..].copy_from_slice(&offending[..quote]);
    let mut p = Packet::new_unchecked(b);
    p.buffer[field::TYPE_CODE.start] = msg_type;
    p.buffer[field::TYPE_CODE.start + 1] = code;
    put32(p.buffer, field::REST.start, rest_of_header);
    p.fill_checksum();
    Ok(len)
}

mod quoted {
    pub const VER_IHL: usize = 0;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: usize = 12;
    pub const DST_ADDR: usize = 16;
}

/// The packet quoted in an ICMP error: an IPv4 header (options included) and at least 8 L4 bytes.
///
/// Invariants after [`Quoted::new_checked`]: version 4, IHL >= 5, `buffer.len() >= header_len() + 8`.
/// `total_len()` is reported as quoted and is *not* checked against anything.
#[derive(Debug, Clone)]
pub struct Quoted<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Quoted<T> {
    pub const fn new_unchecked(buffer: T) -> Quoted<T> {
        Quoted { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Quoted<T>> {
        let q = Self::new_unchecked(buffer);
        q.check_len()?;
        Ok(q)
    }

    pub fn check_len(&self) -> Result<()> {
        let hl = super::ipv4::Packet::new_unchecked(self.buffer.as_ref()).header_len_checked()?;
        if self.buffer.as_ref().len() < hl + QUOTED_L4_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[quoted::VER_IHL] & 0x0f) as usize) * 4
    }

    /// The original packet's total length (usually more than was quoted).
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), quoted::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), quoted::IDENT)
    }

    /// The quoted packet was a non-first fragment, so its "L4 bytes" are not a header.
    pub fn is_later_fragment(&self) -> bool {
        get16(self.buffer.as_ref(), quoted::FLG_OFF) & 0x1fff != 0
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[quoted::PROTOCOL]
    }

    pub fn ip_checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), quoted::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        get32(self.buffer.as_ref(), quoted::SRC_ADDR).into()
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        get32(self.buffer.as_ref(), quoted::DST_ADDR).into()
    }

    /// The quoted IPv4 header.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The quoted L4 bytes (at least 8; for TCP/UDP the ports are the first 4).
    pub fn l4(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// L4 source port, for TCP and UDP.
    pub fn src_port(&self) -> u16 {
        get16(self.l4(), 0)
    }

    /// L4 destination port, for TCP and UDP.
    pub fn dst_port(&self) -> u16 {
        get16(self.l4(), 2)
    }

    /// TCP sequence number, for TCP (within the 8 guaranteed bytes).
    pub fn tcp_seq_number(&self) -> u32 {
        get32(self.l4(), 4)
    }

    pub fn verify_ip_checksum(&self) -> bool {
        checksum::data(self.header()) == 0xffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{ETH_TCP_SYN, IP_ICMP_ECHO, IP_ICMP_FRAG_NEEDED, IP_UDP_DNS};
    use crate::wire::ipv4;
    use crate::wire::testutil::{fuzz_inputs, Rng};

    fn full(b: &[u8]) -> u16 {
        let mut v = b.to_vec();
        Packet::new_unchecked(&mut v[..]).fill_checksum();
        get16(&v, 2)
    }

    #[test]
    fn parse_echo() {
        let ip = ipv4::Packet::new_checked(&IP_ICMP_ECHO[..]).unwrap();
        assert_eq!(ip.protocol(), ipv4::PROTO_ICMP);
        let p = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.data().len(), 56);
        assert!(p.verify_checksum() && !p.is_error());
        assert_eq!(p.inner().unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn echo_reply_in_place() {
        let mut b = IP_ICMP_ECHO;
        let mut p = Packet::new_checked(&mut b[20..]).unwrap();
        assert!(p.make_echo_reply());
        assert_eq!(p.msg_type(), msg::ECHO_REPLY);
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), full(&p.buffer[..]));
        assert!(!p.make_echo_reply());
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
    }

    #[test]
    fn parse_frag_needed_quoting_tcp() {
        let ip = ipv4::Packet::new_checked(&IP_ICMP_FRAG_NEEDED[..]).unwrap();
        let p = Packet::new_checked(ip.payload()).unwrap();
        assert!(p.is_error() && p.is_frag_needed() && p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.rest_of_header(), 1400);
        let q = p.inner().unwrap();
        assert_eq!(q.total_len(), 1500, "larger than what is quoted: normal");
        assert_eq!(q.protocol(), ipv4::PROTO_TCP);
        assert_eq!((q.src_addr(), q.dst_addr()), (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((q.src_port(), q.dst_port(), q.tcp_seq_number()), (40000, 80, 0x3a6f0c82));
        assert_eq!((q.header_len(), q.l4().len(), q.ident()), (20, 8, 0x1c47));
        assert!(q.verify_ip_checksum() && !q.is_later_fragment());
        assert_eq!(q.ip_checksum(), get16(q.header(), 10));
        // The full IPv4 view refuses it (total length beyond the buffer): that's why Quoted exists.
        assert_eq!(ipv4::Packet::new_checked(q.header()).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn truncations() {
        let icmp = &IP_ICMP_FRAG_NEEDED[20..];
        for len in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&icmp[..len]).unwrap_err(), Error::Truncated);
        }
        for len in HEADER_LEN..icmp.len() {
            let p = Packet::new_checked(&icmp[..len]).unwrap();
            assert_eq!(p.inner().unwrap_err(), Error::Truncated, "len {len}");
        }
        let mut b = [0u8; 36];
        b.copy_from_slice(icmp);
        b[8] = 0x44;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().inner().unwrap_err(), Error::BadIhl);
        b[8] = 0x55;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().inner().unwrap_err(), Error::BadVersion);
        b[8] = 0x46; // 24-byte quoted header: then only 4 L4 bytes remain
        assert_eq!(Packet::new_checked(&b[..]).unwrap().inner().unwrap_err(), Error::Truncated);
    }

    #[test]
    fn setters_keep_checksum_exact() {
        let mut rng = Rng::new(50);
        let mut b = IP_ICMP_ECHO;
        let mut p = Packet::new_checked(&mut b[20..]).unwrap();
        for i in 0..10_000 {
            match i % 5 {
                0 => p.set_msg_type(rng.u8()),
                1 => p.set_msg_code(rng.u8()),
                2 => p.set_echo_ident(rng.u16()),
                3 => p.set_echo_seq_no(rng.u16()),
                _ => p.set_next_hop_mtu(rng.u16()),
            }
            assert_eq!(p.checksum(), full(&p.buffer[..]), "step {i}");
        }
    }

    #[test]
    fn rewrite_inner_keeps_all_checksums() {
        let mut rng = Rng::new(51);
        // TCP quoted with 20 L4 bytes (so the TCP checksum field is inside), UDP quoted with 8, and the
        // frag-needed fixture (TCP, 8 bytes: no L4 checksum quoted).
        let mut tcp_quote = [0u8; 8 + 40];
        tcp_quote[8..].copy_from_slice(&ETH_TCP_SYN[14..54]);
        tcp_quote[0] = msg::TIME_EXCEEDED;
        Packet::new_unchecked(&mut tcp_quote[..]).fill_checksum();
        let mut udp_quote = [0u8; 8 + 28];
        udp_quote[8..].copy_from_slice(&IP_UDP_DNS[..28]);
        udp_quote[0] = msg::DEST_UNREACHABLE;
        udp_quote[1] = unreach::PORT;
        Packet::new_unchecked(&mut udp_quote[..]).fill_checksum();
        let mut fnq = [0u8; 36];
        fnq.copy_from_slice(&IP_ICMP_FRAG_NEEDED[20..]);
        for buf in [&mut tcp_quote[..], &mut udp_quote[..], &mut fnq[..]] {
            let mut p = Packet::new_checked(buf).unwrap();
            for _ in 0..3000 {
                let (s, d, sp, dp) = (rng.ip(), rng.ip(), rng.u16(), rng.u16());
                p.rewrite_inner(s, d, sp, dp).unwrap();
                assert!(p.verify_checksum());
                assert_eq!(p.checksum(), full(&p.buffer[..]));
                let q = p.inner().unwrap();
                assert!(q.verify_ip_checksum());
                assert_eq!((q.src_addr(), q.dst_addr(), q.src_port(), q.dst_port()), (s, d, sp, dp));
            }
        }
        // The quoted L4 checksums were kept right: check them against full recomputation.
        let q = Packet::new_checked(&tcp_quote[..]).unwrap();
        let q = q.inner().unwrap();
        // Only the fixed TCP header was quoted; verify against it + the original options.
        let mut whole = ETH_TCP_SYN[34..].to_vec();
        whole[..20].copy_from_slice(&q.l4()[..20]);
        let t = crate::wire::tcp::Packet::new_checked(&whole[..]).unwrap();
        assert!(t.verify_checksum(q.src_addr(), q.dst_addr()));
        let q = Packet::new_checked(&udp_quote[..]).unwrap();
        let q = q.inner().unwrap();
        // Only the UDP header was quoted; verify against header + the original payload.
        let mut whole = IP_UDP_DNS[20..].to_vec();
        whole[..8].copy_from_slice(&q.l4()[..8]);
        assert!(crate::wire::udp::Packet::new_checked(&whole[..])
            .unwrap()
            .verify_checksum(q.src_addr(), q.dst_addr()));
    }

    #[test]
    fn rewrite_inner_refusals() {
        let a = Ipv4Addr::new(1, 1, 1, 1);
        let mut echo = IP_ICMP_ECHO;
        assert_eq!(Packet::new_unchecked(&mut echo[20..]).rewrite_inner(a, a, 1, 1), Err(Error::Unsupported));
        assert_eq!(echo, IP_ICMP_ECHO);
        let mut f = IP_ICMP_FRAG_NEEDED;
        f[20 + 8 + 9] = ipv4::PROTO_ICMP;
        let before = f;
        assert_eq!(Packet::new_unchecked(&mut f[20..]).rewrite_inner(a, a, 1, 1), Err(Error::Unsupported));
        assert_eq!(f, before);
        f[20 + 8 + 9] = ipv4::PROTO_TCP;
        f[20 + 8 + 7] = 1; // fragment offset 8
        let before = f;
        assert_eq!(Packet::new_unchecked(&mut f[20..]).rewrite_inner(a, a, 1, 1), Err(Error::Fragment));
        assert_eq!(f, before);
    }

    #[test]
    fn emit_error_round_trip() {
        let offending = &ETH_TCP_SYN[14..];
        let mut buf = [0u8; 64];
        let n = emit_error(&mut buf, msg::DEST_UNREACHABLE, unreach::FRAG_NEEDED, 1400, offending).unwrap();
        assert_eq!(n, 36);
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert!(p.verify_checksum() && p.is_frag_needed());
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.inner().unwrap().src_port(), 40000);
        // A short offending packet is quoted as far as it goes; a broken header is refused.
        assert_eq!(emit_error(&mut buf, msg::TIME_EXCEEDED, 0, 0, &offending[..24]), Ok(32));
        assert_eq!(emit_error(&mut buf, msg::TIME_EXCEEDED, 0, 0, &offending[..19]), Err(Error::Truncated));
        assert_eq!(emit_error(&mut buf[..35], msg::TIME_EXCEEDED, 0, 0, offending), Err(Error::NoRoom));
    }

    #[test]
    fn fuzz() {
        let t: [&[u8]; 2] = [&IP_ICMP_FRAG_NEEDED[20..], &IP_ICMP_ECHO[20..]];
        let mut rng = Rng::new(52);
        fuzz_inputs(53, 20_000, &t, |b| {
            if let Ok(p) = Packet::new_checked(b) {
                let _ = (p.data(), p.verify_checksum(), p.next_hop_mtu());
                if let Ok(q) = p.inner() {
                    let _ = (q.l4(), q.header(), q.src_port(), q.tcp_seq_number(), q.verify_ip_checksum());
                }
                let mut v = b.to_vec();
                let mut p = Packet::new_unchecked(&mut v[..]);
                let _ = p.rewrite_inner(rng.ip(), rng.ip(), 1, 2);
                let _ = p.make_echo_reply();
            }
            let mut out = [0u8; 200];
            let _ = emit_error(&mut out, 3, 4, 0, b);
            let _ = Quoted::new_checked(b).map(|q| q.dst_port());
        });
    }
}
