//! Neighbour discovery (RFC 4861): neighbour solicitations and advertisements with their
//! link-layer address options, parsed and built.
//!
//! Invariants:
//! - [`parse`] refuses every malformed message by its own [`Error`]: a hop limit other than 255
//!   (sent from off-link, RFC 4861 7.1.1), a code other than 0, a message shorter than its type, a
//!   multicast target, an option of length 0 or overrunning the message, a link-layer address
//!   option of a length other than 8 bytes (Ethernet).
//! - Messages built here carry full checksums and hop limit 255.
use std::net::Ipv6Addr;

use super::ethernet::EthernetAddress;
use super::icmpv6::{NEIGHBOUR_ADVERT, NEIGHBOUR_SOLICIT};
use super::ipv6::{self, Repr as Ipv6Repr, HEADER_LEN as IP6, NH_ICMPV6};

/// Hop limit of every NDP message.
pub const HOP_LIMIT: u8 = 255;
/// NS and NA: type, code, checksum, 4 bytes of flags/reserved, the target.
pub const BODY_LEN: usize = 24;
pub const OPT_SOURCE_LL: u8 = 1;
pub const OPT_TARGET_LL: u8 = 2;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// Why an NDP message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Hop limit not 255: not from a neighbour on the link.
    HopLimit,
    /// Code not 0, or shorter than the message's fixed part.
    Malformed,
    /// Target is a multicast address.
    BadTarget,
    /// An option of length 0, running past the message, or a link-layer option not 8 bytes.
    BadOption,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Solicit,
    Advert { solicited: bool, override_: bool },
}

/// A parsed NS or NA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub target: Ipv6Addr,
    /// The source (NS) or target (NA) link-layer address option.
    pub lladdr: Option<EthernetAddress>,
}

/// Parses the NS or NA `msg` (the ICMPv6 message, checksum already verified) that arrived with
/// `hop_limit`.
pub fn parse(msg: &[u8], hop_limit: u8) -> Result<Message, Error> {
    if hop_limit != HOP_LIMIT {
        return Err(Error::HopLimit);
    }
    if msg.len() < BODY_LEN || msg[1] != 0 {
        return Err(Error::Malformed);
    }
    let kind = match msg[0] {
        NEIGHBOUR_SOLICIT => Kind::Solicit,
        NEIGHBOUR_ADVERT => {
            Kind::Advert { solicited: msg[4] & FLAG_SOLICITED != 0, override_: msg[4] & FLAG_OVERRIDE != 0 }
        }
        _ => return Err(Error::Malformed),
    };
    let mut t = [0u8; 16];
    t.copy_from_slice(&msg[8..24]);
    let target = Ipv6Addr::from(t);
    if target.is_multicast() {
        return Err(Error::BadTarget);
    }
    let want = if kind == Kind::Solicit { OPT_SOURCE_LL } else { OPT_TARGET_LL };
    let mut lladdr = None;
    let mut at = BODY_LEN;
    while at < msg.len() {
        if at + 2 > msg.len() {
            return Err(Error::BadOption);
        }
        let (ty, len) = (msg[at], usize::from(msg[at + 1]) * 8);
        if len == 0 || at + len > msg.len() {
            return Err(Error::BadOption);
        }
        if ty == OPT_SOURCE_LL || ty == OPT_TARGET_LL {
            if len != 8 {
                return Err(Error::BadOption);
            }
            if ty == want {
                lladdr = EthernetAddress::from_slice(&msg[at + 2..at + 8]);
            }
        }
        at += len;
    }
    Ok(Message { kind, target, lladdr })
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]])
}

/// The Ethernet address of IPv6 multicast group `g` (33:33 and its low 32 bits, RFC 2464 7).
pub fn multicast_mac(g: Ipv6Addr) -> EthernetAddress {
    let o = g.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Bytes of an NS or NA with its link-layer option, IPv6 header included.
pub const PACKET_LEN: usize = IP6 + BODY_LEN + 8;

/// Writes an IPv6 NS or NA `src -> dst` about `target` carrying `lladdr` (as the source link-layer
/// option of an NS, the target's of an NA) into `buf`; returns its length ([`PACKET_LEN`]).
pub fn emit(
    buf: &mut [u8],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    kind: Kind,
    target: Ipv6Addr,
    lladdr: EthernetAddress,
) -> Result<usize, super::Error> {
    if buf.len() < PACKET_LEN {
        return Err(super::Error::NoRoom);
    }
    let body = BODY_LEN + 8;
    Ipv6Repr {
        src,
        dst,
        next_header: NH_ICMPV6,
        payload_len: body as u16,
        hop_limit: HOP_LIMIT,
        traffic_class: 0,
    }
    .emit(buf)?;
    let m = &mut buf[IP6..PACKET_LEN];
    m.fill(0);
    let (ty, opt) = match kind {
        Kind::Solicit => (NEIGHBOUR_SOLICIT, OPT_SOURCE_LL),
        Kind::Advert { solicited, override_ } => {
            m[4] = if solicited { FLAG_SOLICITED } else { 0 } | if override_ { FLAG_OVERRIDE } else { 0 };
            (NEIGHBOUR_ADVERT, OPT_TARGET_LL)
        }
    };
    m[0] = ty;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = opt;
    m[25] = 1;
    m[26..32].copy_from_slice(&lladdr.0);
    ipv6::fill_checksum(m, src, dst, NH_ICMPV6);
    Ok(PACKET_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 7]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn built_messages_parse_back() {
        let mut buf = [0u8; PACKET_LEN];
        let t = a("2001:2::100");
        let ns = emit(&mut buf, (a("2001:2::7"), solicited_node(t)), Kind::Solicit, t, MAC).unwrap();
        let p = ipv6::Packet::new_checked(&buf[..ns]).unwrap();
        assert_eq!(p.dst_addr(), a("ff02::1:ff00:100"));
        assert!(ipv6::verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), NH_ICMPV6));
        assert_eq!(
            parse(p.payload(), p.hop_limit()),
            Ok(Message { kind: Kind::Solicit, target: t, lladdr: Some(MAC) })
        );
        let kind = Kind::Advert { solicited: true, override_: true };
        emit(&mut buf, (t, a("2001:2::7")), kind, t, MAC).unwrap();
        let p = ipv6::Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(parse(p.payload(), 255), Ok(Message { kind, target: t, lladdr: Some(MAC) }));
        assert_eq!(multicast_mac(a("ff02::1:ff00:100")), EthernetAddress([0x33, 0x33, 0xff, 0, 1, 0]));
    }

    #[test]
    fn bad_messages_are_refused_by_reason() {
        let mut buf = [0u8; PACKET_LEN];
        let t = a("2001:2::100");
        emit(&mut buf, (a("2001:2::7"), t), Kind::Solicit, t, MAC).unwrap();
        let msg = buf[IP6..].to_vec();
        assert_eq!(parse(&msg, 64), Err(Error::HopLimit), "off-link");
        assert_eq!(parse(&msg[..20], 255), Err(Error::Malformed));
        let mut m = msg.clone();
        m[1] = 1;
        assert_eq!(parse(&m, 255), Err(Error::Malformed), "code");
        let mut m = msg.clone();
        m[25] = 0;
        assert_eq!(parse(&m, 255), Err(Error::BadOption), "zero-length option");
        let mut m = msg.clone();
        m[25] = 2;
        assert_eq!(parse(&m, 255), Err(Error::BadOption), "option past the end");
        let mut m = msg.clone();
        m.extend_from_slice(&[OPT_SOURCE_LL, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&m, 255), Err(Error::BadOption), "16-byte link-layer option");
        let mut m = msg.clone();
        m[8] = 0xff;
        assert_eq!(parse(&m, 255), Err(Error::BadTarget));
        let mut m = msg.clone();
        m.push(1);
        assert_eq!(parse(&m, 255), Err(Error::BadOption), "a stray byte");
    }
}
