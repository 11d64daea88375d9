//! Whole frames the gateway originates, built from scratch in a fresh buffer from the wire `Repr`s.
//!
//! Invariants: every byte of the headers is written (a reused buffer leaves nothing stale in them),
//! both checksums are complete, and on error nothing has been written.
use super::ethernet::{self, EtherType, Frame};
use super::ipv4;
use super::tcp::{Packet as TcpPacket, TcpRepr};
use super::{Error, Result};

/// Where the TCP header starts in a frame built by [`tcp_segment`].
pub const TCP_AT: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// Build Ethernet + IPv4 + TCP at the start of `buf`: the Ethernet addresses zeroed (the sender fills
/// them in once it has resolved the next hop) and EtherType IPv4, then `ip` and `tcp` emitted. The
/// IPv4 payload length is taken from `tcp` (`ip.payload_len` is ignored), so the two cannot disagree.
///
/// A payload (`tcp.payload_len` bytes) is whatever already sits at `TCP_AT + tcp.header_len()`, and is
/// covered by the checksum. Returns the frame length; `NoRoom` if `buf` is shorter.
pub fn tcp_segment(buf: &mut [u8], ip: &ipv4::Repr, tcp: &TcpRepr<'_>) -> Result<usize> {
    let seg_len = tcp.buffer_len();
    let total = TCP_AT + seg_len;
    let payload_len = u16::try_from(seg_len).map_err(|_| Error::NoRoom)?;
    if buf.len() < total || seg_len + ipv4::HEADER_LEN > 0xffff {
        return Err(Error::NoRoom);
    }
    let frame = &mut buf[..total];
    let mut eth = Frame::new_unchecked(&mut *frame);
    eth.set_dst_addr(ethernet::EthernetAddress([0; 6]));
    eth.set_src_addr(ethernet::EthernetAddress([0; 6]));
    eth.set_ethertype(EtherType::Ipv4);
    let ip = ipv4::Repr { protocol: ipv4::PROTO_TCP, payload_len, ..*ip };
    ip.emit(&mut frame[ethernet::HEADER_LEN..])?;
    tcp.emit(&mut TcpPacket::new_unchecked(&mut frame[TCP_AT..]), ip.src, ip.dst)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EthernetFrame, Ipv4Packet, TcpFlags, TcpOptionList};
    use std::net::Ipv4Addr;

    const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
    const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);

    fn ip() -> ipv4::Repr {
        ipv4::Repr {
            src: LIP,
            dst: RS,
            protocol: ipv4::PROTO_UDP, // overridden
            payload_len: 9999,         // overridden
            ttl: 64,
            ident: 0,
            dont_frag: true,
        }
    }

    #[test]
    fn syn_frame_parses_back_with_valid_checksums() {
        let tcp = TcpRepr {
            window: 65_535,
            options: TcpOptionList::linux_syn(Some(1452), true, Some((7, 0)), Some(7)),
            ..TcpRepr::bare(40_001, 80, 0x1234_5678, 0, TcpFlags::SYN)
        };
        let mut buf = [0xaau8; 128];
        let n = tcp_segment(&mut buf, &ip(), &tcp).unwrap();
        assert_eq!(n, 14 + 20 + 40);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv4);
        assert_eq!(&buf[..12], &[0; 12]);
        let p = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.protocol(), p.total_len(), p.src_addr(), p.dst_addr()), (6, 60, LIP, RS));
        assert_eq!((p.ttl(), p.ident(), p.dont_frag()), (64, 0, true));
        let t = TcpPacket::new_checked(p.payload()).unwrap();
        assert!(t.verify_checksum(LIP, RS));
        assert_eq!(TcpRepr::parse(&t).unwrap(), tcp);
        assert_eq!(buf[n], 0xaa, "nothing written past the frame");
    }

    /// Frames as the worker's hand-written `build_tcp` made them (MACs left zero, EtherType IPv4, TTL 64,
    /// ident 0, DF), generated independently (Python `struct`, RFC 1071): the SYN-proxy's SYN to a real
    /// server (MSS 1452, SACK-permitted, TS 7/0, WS 7, window 65535) and a bare RST (window 0).
    const SP_SYN: [u8; 74] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45, 0x00, 0x00,
        0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xac, 0x28, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x01, 0x0b,
        0x9c, 0x41, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xff, 0xff, 0xb4,
        0x2f, 0x00, 0x00, 0x02, 0x04, 0x05, 0xac, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];
    const RST: [u8; 54] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45, 0x00, 0x00,
        0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xac, 0x3c, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x01, 0x0b,
        0x9c, 0x41, 0x00, 0x50, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x00, 0x00, 0x50, 0x04, 0x00, 0x00, 0x1c,
        0x0e, 0x00, 0x00,
    ];

    #[test]
    fn byte_for_byte_the_worker_s_hand_built_syn_and_rst() {
        let syn = TcpRepr {
            window: 65_535,
            options: TcpOptionList::linux_syn(Some(1452), true, Some((7, 0)), Some(7)),
            ..TcpRepr::bare(40_001, 80, 0x1234_5678, 0, TcpFlags::SYN)
        };
        let mut buf = [0xeeu8; 74];
        assert_eq!(tcp_segment(&mut buf, &ip(), &syn), Ok(74));
        assert_eq!(buf, SP_SYN);
        let rst = TcpRepr::bare(40_001, 80, 0x1234_5679, 0, TcpFlags::RST);
        let mut buf = [0xeeu8; 54];
        assert_eq!(tcp_segment(&mut buf, &ip(), &rst), Ok(54));
        assert_eq!(buf, RST);
    }

    #[test]
    fn payload_in_place_is_checksummed_and_short_buffers_are_refused() {
        let tcp = TcpRepr { payload_len: 5, ..TcpRepr::bare(1, 2, 3, 4, TcpFlags::PSH | TcpFlags::ACK) };
        let mut buf = [0u8; 59];
        buf[54..59].copy_from_slice(b"hello");
        assert_eq!(tcp_segment(&mut buf, &ip(), &tcp), Ok(59));
        let p = Ipv4Packet::new_checked(&buf[14..]).unwrap();
        let t = TcpPacket::new_checked(p.payload()).unwrap();
        assert_eq!(t.payload(), b"hello");
        assert!(t.verify_checksum(LIP, RS));
        let before = buf;
        assert_eq!(tcp_segment(&mut buf[..58], &ip(), &tcp), Err(Error::NoRoom));
        assert_eq!(buf, before);
        let huge = TcpRepr { payload_len: 65_500, ..tcp };
        assert_eq!(tcp_segment(&mut [0u8; 16], &ip(), &huge), Err(Error::NoRoom));
    }
}
