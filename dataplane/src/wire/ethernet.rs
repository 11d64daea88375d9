//! Ethernet II frames and single 802.1Q tags.
//!
//! Invariant: after [`Frame::new_checked`] the buffer holds at least the 14-byte header; the payload is
//! everything after it (including any padding up to the 60-byte minimum: upper layers bound themselves,
//! e.g. by the IPv4 total length). The FCS is never present (NICs strip it).
use super::{get16, put16, Error, Result};
use core::fmt;

/// EtherType values the gateway cares about; anything else is carried through as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// 802.1Q VLAN tag (TPID 0x8100).
    Vlan,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(other) => other,
        }
    }
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// `None` unless `b` is exactly 6 bytes.
    pub fn from_slice(b: &[u8]) -> Option<EthernetAddress> {
        Some(EthernetAddress(b.try_into().ok()?))
    }

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Group bit set (this includes broadcast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Locally administered bit set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

mod field {
    use crate::wire::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Length of the untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
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

    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The outer EtherType (`Vlan` for a tagged frame; see [`parse_l2`]).
    pub fn ethertype(&self) -> EtherType {
        get16(self.buffer.as_ref(), field::ETHERTYPE.start).into()
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    pub fn set_ethertype(&mut self, t: EtherType) {
        put16(self.buffer.as_mut(), field::ETHERTYPE.start, t.into());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// What the L2 header says about where L3 starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Info {
    /// 802.1Q VLAN id (12 bits) when the frame carried one tag.
    pub vlan: Option<u16>,
    /// EtherType of the L3 payload. `Vlan` here means a second tag (QinQ), which is not unwrapped.
    pub ethertype: EtherType,
    /// Offset of the L3 header in the frame.
    pub l3_offset: usize,
}

/// Parse the Ethernet header and at most one 802.1Q tag.
pub fn parse_l2(frame: &[u8]) -> Result<L2Info> {
    let f = Frame::new_checked(frame)?;
    match f.ethertype() {
        EtherType::Vlan => {
            let tag = frame.get(HEADER_LEN..HEADER_LEN + VLAN_TAG_LEN).ok_or(Error::Truncated)?;
            Ok(L2Info {
                vlan: Some(get16(tag, 0) & 0x0fff),
                ethertype: get16(tag, 2).into(),
                l3_offset: HEADER_LEN + VLAN_TAG_LEN,
            })
        }
        ethertype => Ok(L2Info { vlan: None, ethertype, l3_offset: HEADER_LEN }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::ETH_TCP_SYN;
    use crate::wire::testutil::fuzz_inputs;

    #[test]
    fn parse_real_frame() {
        let f = Frame::new_checked(&ETH_TCP_SYN[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress([0x52, 0x54, 0, 0xab, 0xcd, 0xef]));
        assert_eq!(f.src_addr().to_string(), "52:54:00:12:34:56");
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.payload().len(), ETH_TCP_SYN.len() - 14);
        let l2 = parse_l2(&ETH_TCP_SYN).unwrap();
        assert_eq!(l2, L2Info { vlan: None, ethertype: EtherType::Ipv4, l3_offset: 14 });
    }

    #[test]
    fn vlan_tag() {
        let mut tagged = [0u8; 78];
        tagged[..12].copy_from_slice(&ETH_TCP_SYN[..12]);
        tagged[12..16].copy_from_slice(&[0x81, 0x00, 0x20, 0x64]); // PCP 1, VID 100
        tagged[16..].copy_from_slice(&ETH_TCP_SYN[12..]);
        let l2 = parse_l2(&tagged).unwrap();
        assert_eq!(l2, L2Info { vlan: Some(100), ethertype: EtherType::Ipv4, l3_offset: 18 });
        for len in 0..18 {
            assert_eq!(parse_l2(&tagged[..len]), Err(Error::Truncated), "len {len}");
        }
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0u8; 60];
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr(EthernetAddress::BROADCAST);
        f.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(EtherType::Arp);
        f.payload_mut()[0] = 7;
        assert!(f.dst_addr().is_broadcast() && f.dst_addr().is_multicast());
        assert!(f.src_addr().is_unicast() && f.src_addr().is_local());
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(buf[12..15], [0x08, 0x06, 7]);
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(u16::from(EtherType::Ipv6), 0x86dd);
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
        assert_eq!(EthernetAddress::from_slice(&[1, 2, 3]), None);
    }

    #[test]
    fn truncation_and_fuzz() {
        for len in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&ETH_TCP_SYN[..len]).unwrap_err(), Error::Truncated);
        }
        fuzz_inputs(10, 5000, &[&ETH_TCP_SYN], |b| {
            if let Ok(f) = Frame::new_checked(b) {
                let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload());
            }
            let _ = parse_l2(b);
        });
    }
}
