//! The one packet builder for tests, fuzzers and benchmarks (cargo feature `testkit`; always on in this
//! crate's own tests). Production builds do not carry it: the gateway builds its frames with
//! [`super::build`] and the `Repr`s directly.
//!
//! Every frame is built from a few typed parameters with the wire emitters (`ipv4::Repr`, `ArpRepr`,
//! [`TcpRepr`], [`UdpRepr`], `icmp::emit_error`), so its checksums are complete: comparing a gateway's
//! output (incrementally updated checksums) with a freshly built expected frame checks those against a
//! full recomputation.
//!
//! Two levels:
//! - [`FrameBuilder`]: Ethernet addresses plus the IPv4/TCP fields tests rarely vary (TTL 64, ident
//!   0x1234, DF, TCP window 64240 unless set), with one method per kind of frame.
//! - Free functions for each layer ([`tcp_segment`], [`udp_datagram`], [`icmp_message`],
//!   [`icmp_error`], [`ipv4_packet`], [`eth_frame`]), for callers that assemble or corrupt layers
//!   themselves, such as the fuzzer.
//!
//! IPv6: [`ipv6_packet`] (with raw extension headers), [`l4_checksum6`] to redo a transport
//! checksum over the IPv6 pseudo header, and the builder's `ip6`, `tcp6`, `udp6`, `icmp6` with the
//! hop limit taken from its TTL.
//!
//! TCP options come as encoded bytes (padded to 4) so that tests can feed malformed ones; build them
//! typed with [`options`] (any [`TcpOptionList`], e.g. `TcpOptionList::linux_syn`).
//!
//! These allocate and panic on impossible requests (options not padded, frames over 64 KiB): they are
//! for tests, where a panic is a clear failure.
use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetAddress, Frame, HEADER_LEN as ETH};
use super::icmp::{self, Packet as IcmpPacket};
use super::ipv4::{self, Packet as Ipv4Packet, Repr as Ipv4Repr};
use super::tcp::{self, Packet as TcpPacket, TcpFlags, TcpOptionList, TcpRepr};
use super::udp::{self, Packet as UdpPacket, Repr as UdpRepr};
use super::{arp, ArpRepr, Result};

/// Shortest Ethernet frame (without FCS); ARP frames are padded to it, as NICs do.
pub const ETH_MIN_LEN: usize = 60;

/// `list` encoded, padded to a multiple of 4 with End-of-List.
pub fn options(list: &TcpOptionList<'_>) -> Vec<u8> {
    let mut v = vec![0u8; list.padded_len()];
    list.emit(&mut v);
    v
}

/// An Ethernet frame around `payload`.
pub fn eth_frame(
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; ETH + payload.len()];
    let mut f = Frame::new_unchecked(&mut v[..]);
    f.set_dst_addr(dst);
    f.set_src_addr(src);
    f.set_ethertype(ethertype);
    f.payload_mut().copy_from_slice(payload);
    v
}

/// An IPv4 packet: `repr`'s header (its `payload_len` is replaced by the real one), then `ip_options`
/// (a multiple of 4, at most 40 bytes; raw, e.g. record-route) and `l4`.
pub fn ipv4_packet(repr: &Ipv4Repr, ip_options: &[u8], l4: &[u8]) -> Vec<u8> {
    assert!(ip_options.len() % 4 == 0 && ip_options.len() <= 40, "IPv4 options must be padded to 4");
    let ihl = ipv4::HEADER_LEN + ip_options.len();
    let mut v = vec![0u8; ihl + l4.len()];
    let payload_len = u16::try_from(ip_options.len() + l4.len()).expect("an IPv4 packet fits 64 KiB");
    Ipv4Repr { payload_len, ..*repr }.emit(&mut v).expect("room for the header");
    if !ip_options.is_empty() {
        // ipv4::Repr has no options: widen the IHL over them and redo the checksum.
        v[0] = 0x40 | (ihl / 4) as u8;
        v[ipv4::HEADER_LEN..ihl].copy_from_slice(ip_options);
        Ipv4Packet::new_unchecked(&mut v[..]).fill_checksum();
    }
    v[ihl..].copy_from_slice(l4);
    v
}

/// A TCP segment `src -> dst` with `repr`'s fields and options and `payload` (its length replaces
/// `repr.payload_len`), checksum included.
pub fn tcp_segment(src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
    let repr = TcpRepr { payload_len: payload.len(), ..*repr };
    let mut v = vec![0u8; repr.buffer_len()];
    v[repr.header_len()..].copy_from_slice(payload);
    repr.emit(&mut TcpPacket::new_unchecked(&mut v[..]), src, dst).expect("a TCP segment fits 64 KiB");
    v
}

/// As [`tcp_segment`], with `options` given as bytes (a multiple of 4, at most 40; anything, even
/// malformed) in place of `repr.options`.
pub fn tcp_segment_raw_options(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    repr: &TcpRepr<'_>,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert!(options.len() % 4 == 0 && options.len() <= 40, "options must be padded to 4");
    // Emit the fields with the raw options as the start of the payload, then move the data offset over
    // them: the one way to put bytes no TcpOptionList can hold into the header.
    let mut l4 = Vec::with_capacity(options.len() + payload.len());
    l4.extend_from_slice(options);
    l4.extend_from_slice(payload);
    let mut v = tcp_segment(src, dst, &TcpRepr { options: TcpOptionList::new(), ..*repr }, &l4);
    let mut t = TcpPacket::new_unchecked(&mut v[..]);
    t.set_header_len_raw(tcp::HEADER_LEN + options.len());
    t.fill_checksum(src, dst);
    v
}

/// A UDP datagram with a computed checksum, or none (0) when `checksum` is false.
pub fn udp_datagram(
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    payload: &[u8],
    checksum: bool,
) -> Vec<u8> {
    let repr = UdpRepr { src_port: sport, dst_port: dport, payload_len: payload.len() };
    let mut v = vec![0u8; repr.buffer_len()];
    v[udp::HEADER_LEN..].copy_from_slice(payload);
    let mut u = UdpPacket::new_unchecked(&mut v[..]);
    repr.emit(&mut u, src, dst).expect("a UDP datagram fits 64 KiB");
    if !checksum {
        u.set_checksum(0);
    }
    v
}

/// An ICMP message: type, code, the 4 "rest of header" bytes (echo id and sequence, next-hop MTU,
/// ...) and `data`, checksum included.
pub fn icmp_message(msg_type: u8, code: u8, rest_of_header: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; icmp::HEADER_LEN + data.len()];
    v[icmp::HEADER_LEN..].copy_from_slice(data);
    let mut m = IcmpPacket::new_unchecked(&mut v[..]);
    m.set_msg_type(msg_type);
    m.set_msg_code(code);
    m.set_echo_ident((rest_of_header >> 16) as u16);
    m.set_echo_seq_no(rest_of_header as u16);
    m.fill_checksum();
    v
}

/// An ICMP error quoting `offending` (an IPv4 packet, at least its header) as routers do: its header
/// and first 8 L4 bytes; see [`icmp::emit_error`], whose errors this returns.
pub fn icmp_error(msg_type: u8, code: u8, rest_of_header: u32, offending: &[u8]) -> Result<Vec<u8>> {
    let mut v = vec![0u8; icmp::HEADER_LEN + ipv4::MAX_HEADER_LEN + icmp::QUOTED_L4_LEN];
    let n = icmp::emit_error(&mut v, msg_type, code, rest_of_header, offending)?;
    v.truncate(n);
    Ok(v)
}

/// Builds Ethernet frames from `src_mac` to `dst_mac`. The other fields are the ones tests rarely
/// vary: IPv4 TTL 64, ident 0x1234, DF set; TCP window 64240 (Linux's initial one). `Copy`, and each
/// setter returns a changed copy, so a template can be varied inline: `b.ttl(1).tcp(..)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBuilder {
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub window: u16,
}

impl FrameBuilder {
    pub const fn new(src_mac: EthernetAddress, dst_mac: EthernetAddress) -> FrameBuilder {
        FrameBuilder { src_mac, dst_mac, ttl: 64, ident: 0x1234, dont_frag: true, window: 64240 }
    }

    pub const fn ttl(mut self, ttl: u8) -> FrameBuilder {
        self.ttl = ttl;
        self
    }

    pub const fn ident(mut self, ident: u16) -> FrameBuilder {
        self.ident = ident;
        self
    }

    pub const fn dont_frag(mut self, df: bool) -> FrameBuilder {
        self.dont_frag = df;
        self
    }

    pub const fn window(mut self, w: u16) -> FrameBuilder {
        self.window = w;
        self
    }

    /// The IPv4 header fields for `src -> dst` carrying `protocol` (the length is set when emitted).
    pub const fn ipv4_repr(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol,
            payload_len: 0,
            ttl: self.ttl,
            ident: self.ident,
            dont_frag: self.dont_frag,
        }
    }

    /// An Ethernet frame with this builder's addresses around `payload`.
    pub fn eth(&self, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        eth_frame(self.dst_mac, self.src_mac, ethertype, payload)
    }

    /// The IPv4 packet alone (no Ethernet header).
    pub fn ip_packet(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4: &[u8]) -> Vec<u8> {
        ipv4_packet(&self.ipv4_repr(src, dst, protocol), &[], l4)
    }

    /// Ethernet + IPv4 around `l4`.
    pub fn ip(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4: &[u8]) -> Vec<u8> {
        self.eth(EtherType::Ipv4, &self.ip_packet(src, dst, protocol, l4))
    }

    /// The TCP fields of a segment with this builder's window and no options.
    pub const fn tcp_repr(
        &self,
        sport: u16,
        dport: u16,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
    ) -> TcpRepr<'static> {
        TcpRepr { window: self.window, ..TcpRepr::bare(sport, dport, seq, ack, flags) }
    }

    /// Ethernet + IPv4 + TCP `src -> dst` (address, port) with `(seq, ack)` and `options` as bytes
    /// (padded to 4; see [`tcp_segment_raw_options`]).
    pub fn tcp(
        &self,
        (src, sport): (Ipv4Addr, u16),
        (dst, dport): (Ipv4Addr, u16),
        flags: TcpFlags,
        (seq, ack): (u32, u32),
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let repr = self.tcp_repr(sport, dport, flags, seq, ack);
        let seg = tcp_segment_raw_options(src, dst, &repr, options, payload);
        self.ip(src, dst, ipv4::PROTO_TCP, &seg)
    }

    /// Ethernet + IPv4 + TCP from a typed `repr` (its options included).
    pub fn tcp_frame(&self, src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
        self.ip(src, dst, ipv4::PROTO_TCP, &tcp_segment(src, dst, repr, payload))
    }

    /// Ethernet + IPv4 + UDP, with a computed checksum or none (0) when `checksum` is false.
    pub fn udp(
        &self,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
        checksum: bool,
    ) -> Vec<u8> {
        self.ip(src, dst, ipv4::PROTO_UDP, &udp_datagram((src, sport), (dst, dport), payload, checksum))
    }

    /// Ethernet + IPv4 + ICMP with type, code, the 4 "rest of header" bytes and data (e.g. an echo).
    pub fn icmp(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &[u8],
    ) -> Vec<u8> {
        self.ip(src, dst, ipv4::PROTO_ICMP, &icmp_message(msg_type, code, rest, data))
    }

    /// Ethernet + IPv4 + an ICMP error quoting `offending` (an IPv4 packet), "rest of header" 0.
    pub fn icmp_error(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        msg_type: u8,
        code: u8,
        offending: &[u8],
    ) -> Vec<u8> {
        let m = icmp_error(msg_type, code, 0, offending).expect("an IPv4 packet to quote");
        self.ip(src, dst, ipv4::PROTO_ICMP, &m)
    }

    /// Ethernet + ARP, padded to the 60-byte Ethernet minimum.
    pub fn arp(&self, repr: &ArpRepr) -> Vec<u8> {
        let mut p = [0u8; arp::PACKET_LEN];
        repr.emit(&mut p).expect("room for the ARP packet");
        let mut v = self.eth(EtherType::Arp, &p);
        v.resize(ETH_MIN_LEN, 0);
        v
    }
}

/// An IPv6 packet `src -> dst`: a fixed header (`hop_limit`, traffic class 0), then `ext` (raw
/// extension headers, whose first next-header byte chain the caller builds; `next_header` names
/// the first of them, or the upper layer when `ext` is empty), then `l4`.
pub fn ipv6_packet(
    (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr),
    next_header: u8,
    hop_limit: u8,
    ext: &[u8],
    l4: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; super::ipv6::HEADER_LEN];
    let payload_len = u16::try_from(ext.len() + l4.len()).expect("an IPv6 payload fits 64 KiB");
    super::ipv6::Repr { src, dst, next_header, payload_len, hop_limit, traffic_class: 0 }
        .emit(&mut v)
        .expect("room for the header");
    v.extend_from_slice(ext);
    v.extend_from_slice(l4);
    v
}

/// Recomputes the checksum of transport header `l4` (TCP, UDP or ICMPv6 `proto`) over the IPv6
/// pseudo header of `src -> dst`.
pub fn l4_checksum6(l4: &mut [u8], src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, proto: u8) {
    super::ipv6::fill_checksum(l4, src, dst, proto);
}

impl FrameBuilder {
    /// Ethernet + IPv6 (hop limit = this builder's TTL) around `l4` of upper layer `proto`.
    pub fn ip6(&self, src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        self.eth(EtherType::Ipv6, &ipv6_packet((src, dst), proto, self.ttl, &[], l4))
    }

    /// Ethernet + IPv6 + TCP, options as bytes (padded to 4), checksum over the IPv6 pseudo header.
    pub fn tcp6(
        &self,
        (src, sport): (std::net::Ipv6Addr, u16),
        (dst, dport): (std::net::Ipv6Addr, u16),
        flags: TcpFlags,
        (seq, ack): (u32, u32),
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let repr = self.tcp_repr(sport, dport, flags, seq, ack);
        let mut seg =
            tcp_segment_raw_options(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &repr, options, payload);
        l4_checksum6(&mut seg, src, dst, super::ipv6::NH_TCP);
        self.ip6(src, dst, super::ipv6::NH_TCP, &seg)
    }

    /// Ethernet + IPv6 + UDP with its (mandatory) checksum.
    pub fn udp6(
        &self,
        (src, sport): (std::net::Ipv6Addr, u16),
        (dst, dport): (std::net::Ipv6Addr, u16),
        payload: &[u8],
    ) -> Vec<u8> {
        let mut u =
            udp_datagram((Ipv4Addr::UNSPECIFIED, sport), (Ipv4Addr::UNSPECIFIED, dport), payload, false);
        l4_checksum6(&mut u, src, dst, super::ipv6::NH_UDP);
        self.ip6(src, dst, super::ipv6::NH_UDP, &u)
    }

    /// Ethernet + IPv6 + ICMPv6 with type, code, the 4 bytes after the checksum and data.
    pub fn icmp6(
        &self,
        src: std::net::Ipv6Addr,
        dst: std::net::Ipv6Addr,
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![msg_type, code, 0, 0];
        m.extend_from_slice(&rest.to_be_bytes());
        m.extend_from_slice(data);
        l4_checksum6(&mut m, src, dst, super::ipv6::NH_ICMPV6);
        self.ip6(src, dst, super::ipv6::NH_ICMPV6, &m)
    }
}

#[cfg(test)]
mod tests {
    //! Against the independently generated captures of `wire::fixtures`: the builder reproduces them
    //! byte for byte, so its checksums are a second opinion's, not just our own.
    use super::*;
    use crate::wire::fixtures::{
        ETH_ARP_REQUEST, ETH_TCP_SYN, IP_ICMP_ECHO, IP_ICMP_FRAG_NEEDED, IP_UDP_DNS,
    };
    use crate::wire::ArpOperation;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const MAC_A: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const MAC_B: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

    #[test]
    fn tcp_syn_typed_and_raw_match_the_capture() {
        let b = FrameBuilder::new(MAC_A, MAC_B).ident(0x1c46);
        let list = TcpOptionList::linux_syn(Some(1460), true, Some((0x0012d687, 0)), Some(7));
        let repr = TcpRepr { options: list, ..b.tcp_repr(40000, 80, TcpFlags::SYN, 0x3a6f0c81, 0) };
        assert_eq!(b.tcp_frame(A, B, &repr, &[]), ETH_TCP_SYN);
        let opts = options(&list);
        assert_eq!(b.tcp((A, 40000), (B, 80), TcpFlags::SYN, (0x3a6f0c81, 0), &opts, &[]), ETH_TCP_SYN);
    }

    #[test]
    fn raw_options_may_be_malformed_and_payload_follows() {
        let seg =
            tcp_segment_raw_options(A, B, &TcpRepr::bare(1, 2, 3, 4, TcpFlags::ACK), &[2, 3, 5, 0], b"xyz");
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!((t.header_len(), t.options(), t.payload()), (24, &[2, 3, 5, 0][..], &b"xyz"[..]));
        assert!(t.verify_checksum(A, B));
    }

    #[test]
    fn udp_icmp_and_arp_match_the_captures() {
        let dns = &IP_UDP_DNS[28..];
        let ip = Ipv4Repr {
            src: A,
            dst: Ipv4Addr::new(8, 8, 8, 8),
            protocol: ipv4::PROTO_UDP,
            payload_len: 0,
            ttl: 64,
            ident: 0x7a01,
            dont_frag: false,
        };
        let d = udp_datagram((A, 53000), (ip.dst, 53), dns, true);
        assert_eq!(ipv4_packet(&ip, &[], &d), IP_UDP_DNS);
        assert_eq!(&udp_datagram((A, 53000), (ip.dst, 53), dns, false)[6..8], &[0, 0]);

        let echo = icmp_message(8, 0, 0x1234_0001, &IP_ICMP_ECHO[28..]);
        let ip = Ipv4Repr { dst: B, protocol: ipv4::PROTO_ICMP, ident: 0x4d2e, dont_frag: true, ..ip };
        assert_eq!(ipv4_packet(&ip, &[], &echo), IP_ICMP_ECHO);

        let quoted = &IP_ICMP_FRAG_NEEDED[28..];
        // The quote is cut short in the capture; emit_error quotes what there is of it.
        let m = icmp_error(3, 4, 1400, quoted).unwrap();
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 254),
            dst: A,
            ttl: 255,
            ident: 1,
            dont_frag: false,
            ..ip
        };
        assert_eq!(ipv4_packet(&ip, &[], &m), IP_ICMP_FRAG_NEEDED);
        assert_eq!(icmp_error(3, 4, 0, &quoted[..10]), Err(crate::wire::Error::Truncated));

        let req = ArpRepr {
            operation: ArpOperation::Request,
            sender_hw_addr: MAC_A,
            sender_proto_addr: A,
            target_hw_addr: EthernetAddress([0; 6]),
            target_proto_addr: B,
        };
        assert_eq!(FrameBuilder::new(MAC_A, EthernetAddress::BROADCAST).arp(&req), ETH_ARP_REQUEST);
    }

    #[test]
    fn ip_options_widen_the_header() {
        let b = FrameBuilder::new(MAC_A, MAC_B);
        let v = ipv4_packet(&b.ipv4_repr(A, B, ipv4::PROTO_TCP), &[7, 7, 4, 0, 0, 0, 0, 1], b"abc");
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.header_len(), p.total_len(), p.options(), p.payload()),
            (28, 31, &[7, 7, 4, 0, 0, 0, 0, 1][..], &b"abc"[..])
        );
    }
}
