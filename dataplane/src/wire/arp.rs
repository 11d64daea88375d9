//! ARP for Ethernet/IPv4 (RFC 826), the only flavour the gateway answers.
//!
//! Invariant: after [`Packet::new_checked`] the buffer holds the 28-byte Ethernet/IPv4 ARP body and the
//! hardware/protocol types and lengths are 1/0x0800/6/4; any other format is `Error::Unsupported`.
//! Trailing bytes (Ethernet padding) are ignored.
use super::ethernet::EthernetAddress;
use super::{get16, put16, Error, Result};
use std::net::Ipv4Addr;

mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            o => Operation::Unknown(o),
        }
    }
}

impl From<Operation> for u16 {
    fn from(v: Operation) -> u16 {
        match v {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(o) => o,
        }
    }
}

/// A read/write view of an Ethernet/IPv4 ARP packet (the Ethernet payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn mac(b: &[u8]) -> EthernetAddress {
    let mut a = [0; 6];
    a.copy_from_slice(b);
    EthernetAddress(a)
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
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

    /// Also checks the format fields: the accessors assume 6-byte MACs and 4-byte addresses.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if get16(b, field::HTYPE.start) != HTYPE_ETHERNET
            || get16(b, field::PTYPE.start) != PTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn operation(&self) -> Operation {
        get16(self.buffer.as_ref(), field::OPER.start).into()
    }

    pub fn sender_hw_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::SHA])
    }

    pub fn sender_proto_addr(&self) -> Ipv4Addr {
        ip(&self.buffer.as_ref()[field::SPA])
    }

    pub fn target_hw_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::THA])
    }

    pub fn target_proto_addr(&self) -> Ipv4Addr {
        ip(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write the fixed Ethernet/IPv4 format fields (htype, ptype, hlen, plen).
    pub fn init_format(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, field::HTYPE.start, HTYPE_ETHERNET);
        put16(b, field::PTYPE.start, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    pub fn set_operation(&mut self, op: Operation) {
        put16(self.buffer.as_mut(), field::OPER.start, op.into());
    }

    pub fn set_sender_hw_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }

    pub fn set_sender_proto_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }

    pub fn set_target_hw_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }

    pub fn set_target_proto_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }

    /// Turn a request into the reply announcing `our_mac` for the address that was asked about, in place.
    /// Returns false (and changes nothing) if this is not a request. The caller still has to set the
    /// Ethernet destination to the requester (the new target hardware address) and source to `our_mac`.
    pub fn make_reply_in_place(&mut self, our_mac: EthernetAddress) -> bool {
        if self.operation() != Operation::Request {
            return false;
        }
        let (sha, spa, tpa) = (self.sender_hw_addr(), self.sender_proto_addr(), self.target_proto_addr());
        self.set_operation(Operation::Reply);
        self.set_target_hw_addr(sha);
        self.set_target_proto_addr(spa);
        self.set_sender_hw_addr(our_mac);
        self.set_sender_proto_addr(tpa);
        true
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub sender_hw_addr: EthernetAddress,
    pub sender_proto_addr: Ipv4Addr,
    pub target_hw_addr: EthernetAddress,
    pub target_proto_addr: Ipv4Addr,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            operation: p.operation(),
            sender_hw_addr: p.sender_hw_addr(),
            sender_proto_addr: p.sender_proto_addr(),
            target_hw_addr: p.target_hw_addr(),
            target_proto_addr: p.target_proto_addr(),
        }
    }

    /// The reply to this request from the owner of `target_proto_addr` at `our_mac`; `None` if this is
    /// not a request.
    pub fn reply(&self, our_mac: EthernetAddress) -> Option<Repr> {
        (self.operation == Operation::Request).then_some(Repr {
            operation: Operation::Reply,
            sender_hw_addr: our_mac,
            sender_proto_addr: self.target_proto_addr,
            target_hw_addr: self.sender_hw_addr,
            target_proto_addr: self.sender_proto_addr,
        })
    }

    /// Write the 28-byte packet at the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let b = buf.get_mut(..PACKET_LEN).ok_or(Error::NoRoom)?;
        let mut p = Packet::new_unchecked(b);
        p.init_format();
        p.set_operation(self.operation);
        p.set_sender_hw_addr(self.sender_hw_addr);
        p.set_sender_proto_addr(self.sender_proto_addr);
        p.set_target_hw_addr(self.target_hw_addr);
        p.set_target_proto_addr(self.target_proto_addr);
        Ok(PACKET_LEN)
    }
}

/// Build a complete ARP reply frame (Ethernet header + ARP) answering `request` into `frame`.
/// Returns the frame length (42; the NIC pads to 60); `Unsupported` if `request` is not a request,
/// `NoRoom` if `frame` is shorter than 42 bytes.
pub fn emit_reply(frame: &mut [u8], request: &Repr, our_mac: EthernetAddress) -> Result<usize> {
    use super::ethernet::{EtherType, Frame, HEADER_LEN};
    let reply = request.reply(our_mac).ok_or(Error::Unsupported)?;
    let frame = frame.get_mut(..HEADER_LEN + PACKET_LEN).ok_or(Error::NoRoom)?;
    let mut f = Frame::new_unchecked(&mut *frame);
    f.set_dst_addr(reply.target_hw_addr);
    f.set_src_addr(our_mac);
    f.set_ethertype(EtherType::Arp);
    reply.emit(f.payload_mut())?;
    Ok(HEADER_LEN + PACKET_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{parse_l2, EtherType, Frame};
    use crate::wire::fixtures::ETH_ARP_REQUEST;
    use crate::wire::testutil::fuzz_inputs;

    const ME: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
    const PEER: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    #[test]
    fn parse_request() {
        let l2 = parse_l2(&ETH_ARP_REQUEST).unwrap();
        assert_eq!(l2.ethertype, EtherType::Arp);
        let p = Packet::new_checked(&ETH_ARP_REQUEST[l2.l3_offset..]).unwrap();
        let r = Repr::parse(&p);
        assert_eq!(
            r,
            Repr {
                operation: Operation::Request,
                sender_hw_addr: PEER,
                sender_proto_addr: Ipv4Addr::new(10, 0, 0, 1),
                target_hw_addr: EthernetAddress([0; 6]),
                target_proto_addr: Ipv4Addr::new(10, 0, 0, 2),
            }
        );
    }

    #[test]
    fn reply_in_place_and_emit_agree() {
        let mut frame = ETH_ARP_REQUEST;
        let req = Repr::parse(&Packet::new_checked(&frame[14..]).unwrap());
        let mut p = Packet::new_checked(&mut frame[14..]).unwrap();
        assert!(p.make_reply_in_place(ME));
        assert!(!p.make_reply_in_place(ME), "a reply is not turned around again");
        let got = Repr::parse(&p);
        assert_eq!(Some(got), req.reply(ME));
        assert_eq!(got.target_hw_addr, PEER);
        assert_eq!(got.sender_proto_addr, Ipv4Addr::new(10, 0, 0, 2));

        let mut out = [0u8; 42];
        assert_eq!(emit_reply(&mut out, &req, ME), Ok(42));
        let f = Frame::new_checked(&out[..]).unwrap();
        assert_eq!((f.dst_addr(), f.src_addr(), f.ethertype()), (PEER, ME, EtherType::Arp));
        assert_eq!(f.payload(), &frame[14..42]);
        assert_eq!(emit_reply(&mut out[..41], &req, ME), Err(Error::NoRoom));
        assert_eq!(emit_reply(&mut out, &got, ME), Err(Error::Unsupported));
    }

    #[test]
    fn emit_parse_round_trip() {
        let r = Repr {
            operation: Operation::Unknown(9),
            sender_hw_addr: ME,
            sender_proto_addr: Ipv4Addr::new(1, 2, 3, 4),
            target_hw_addr: PEER,
            target_proto_addr: Ipv4Addr::new(5, 6, 7, 8),
        };
        let mut buf = [0xaau8; 30];
        assert_eq!(r.emit(&mut buf), Ok(28));
        assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), r);
    }

    #[test]
    fn truncation_format_and_fuzz() {
        let body = &ETH_ARP_REQUEST[14..42];
        for len in 0..PACKET_LEN {
            assert_eq!(Packet::new_checked(&body[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        for at in [0, 1, 2, 3, 4, 5] {
            let mut b = [0u8; 28];
            b.copy_from_slice(body);
            b[at] ^= 0x10;
            assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Unsupported);
        }
        fuzz_inputs(11, 5000, &[body], |b| {
            if let Ok(p) = Packet::new_checked(b) {
                let _ = Repr::parse(&p).reply(ME);
            }
        });
    }
}
