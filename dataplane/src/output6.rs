//! IPv6 output: the route, the MTU and the neighbour of an IPv6 packet leaving the gateway, and
//! the Packet Too Big that answers a packet larger than its way out (IPv6 routers never
//! fragment).
//!
//! Invariants:
//! - As for IPv4 ([`crate::output`]): packets go only to neighbours resolved (by neighbour
//!   discovery) on the port the IPv6 routing table chooses, waiting in a bounded queue meanwhile;
//!   a packet larger than the port's MTU is never sent.
//! - A Packet Too Big replaces the packet in its own buffer, quoting as much of it as fits in the
//!   IPv6 minimum MTU, and goes back to its sender from the address the packet was sent to.
use std::net::Ipv6Addr;

use crate::flow::Millis;
use crate::frame::{Frame, FramePool};
use crate::neigh::Resolved;
use crate::outbox::Outbox;
use crate::packet::{set_eth_dst, Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, Packet as Ipv6Packet, HEADER_LEN as IP6};
use crate::wire::EtherType;
use crate::worker::Worker;

impl<P: FramePool> Worker<P> {
    /// Routes an IPv6 packet (Ethernet header present) and hands it to the neighbour.
    pub(crate) fn send_ip6(
        &mut self,
        mut f: P::Frame,
        dst: Ipv6Addr,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some((port, nh)) = self.routes6.lookup(dst) else {
            return self.discard(f, D::NoRoute);
        };
        let pr = self.ports[port];
        if f.len() - ETH > pr.mtu as usize {
            return self.discard(f, D::MtuExceeded);
        }
        let d = f.data_mut();
        d[6..12].copy_from_slice(&pr.mac.0);
        d[12..14].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
        match self.neigh6.resolve(nh, port, f, now) {
            Resolved::Send(mut f, mac) => {
                set_eth_dst(&mut f, mac);
                out.emit(&self.stats, port, f);
            }
            Resolved::QueuedRequest => self.nd_ask(port, nh, out),
            Resolved::Queued => {}
            Resolved::QueueFull(f) => self.discard(f, D::NeighQueueFull),
            Resolved::TableFull(f) => self.discard(f, D::NeighTableFull),
        }
    }

    /// The MTU of the way to `to`, when a packet of `len` bytes does not fit it.
    #[inline]
    pub(crate) fn mtu_toward6(&self, to: Ipv6Addr, len: usize) -> Option<u16> {
        if len <= self.min_mtu as usize {
            return None;
        }
        let (port, _) = self.routes6.lookup(to)?;
        let mtu = self.ports[port].mtu;
        (len > mtu as usize).then_some(mtu)
    }

    /// Answers the IPv6 packet in `f` (as received) with a Packet Too Big naming `mtu`, sent back
    /// to its source from its destination, in place of the packet.
    pub(crate) fn packet_too_big(&mut self, mut f: P::Frame, mtu: u16, cx: &Ctx, out: &mut Outbox<P::Frame>) {
        let (src, dst) = {
            let ip = Ipv6Packet::new_unchecked(&f.data()[ETH..]);
            (ip.src_addr(), ip.dst_addr())
        };
        let quote = (f.len() - ETH).min(usize::from(ipv6::MIN_MTU) - IP6 - icmpv6::HEADER_LEN);
        let shift = IP6 + icmpv6::HEADER_LEN;
        let len = ETH + shift + quote;
        // The packet was larger than an MTU of at least 1280, so the error fits in its buffer.
        let ok = if f.len() < len { f.append(len - f.len()) } else { f.trim(f.len() - len) };
        if !ok {
            return self.discard(f, D::MtuExceeded);
        }
        let d = f.data_mut();
        d.copy_within(ETH..ETH + quote, ETH + shift);
        let repr = ipv6::Repr {
            src: dst,
            dst: src,
            next_header: ipv6::NH_ICMPV6,
            payload_len: (icmpv6::HEADER_LEN + quote) as u16,
            hop_limit: crate::ip6::OWN_HOP_LIMIT,
            traffic_class: 0,
        };
        if repr.emit(&mut d[ETH..]).is_err() {
            return self.discard(f, D::MtuExceeded);
        }
        let m = &mut d[ETH + IP6..];
        m[..4].copy_from_slice(&[icmpv6::PACKET_TOO_BIG, 0, 0, 0]);
        m[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
        ipv6::fill_checksum(m, dst, src, ipv6::NH_ICMPV6);
        self.stats.inc(E::PacketTooBigSent);
        self.send_ip6(f, src, cx.now, out);
    }
}
