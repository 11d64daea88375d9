//! IPv6 input: header checks, the extension-header walk, source sanity, and which of our
//! addresses a packet is for; ICMPv6 dispatch (echo, neighbour discovery, errors about tracked
//! connections).
//!
//! Invariants:
//! - Past this stage the IPv6 header is checked ([`ipv6::Packet::new_checked`]), the extension
//!   headers walked ([`ipv6::walk`]: bounded, loops and overruns refused), the frame holds exactly
//!   the IPv6 packet (Ethernet padding trimmed) and `Ctx::hl` is the upper layer's offset from
//!   the IPv6 header.
//! - Every refusal is its own [`DropReason`](crate::stats::DropReason): truncated, bad version,
//!   zero or overrunning payload length, extension overrun or loop, fragments (not forwarded:
//!   IPv6 routers never fragment, and the gateway does not reassemble), bad sources (unspecified
//!   except for NDP, multicast, loopback, LAND).
//! - The hop limit is checked in two places, as IPv4's TTL is: before a packet may create state
//!   ([`hop_limit_expires`]) and when one is relayed ([`decrement_hop_limit`]).
use std::net::Ipv6Addr;

use crate::conn::Dir;
use crate::frame::{Frame, FramePool};
use crate::handoff::HandoffKind;
use crate::outbox::Outbox;
use crate::packet::{Ctx, Dst, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, Error as V6Error, Packet as Ipv6Packet, HEADER_LEN as IP6};
use crate::worker::Worker;

/// Hop limit of packets the gateway originates over IPv6.
pub const OWN_HOP_LIMIT: u8 = 64;

fn drop_reason(e: V6Error) -> D {
    match e {
        V6Error::Truncated => D::Ipv6Truncated,
        V6Error::BadVersion => D::Ipv6BadVersion,
        V6Error::ZeroPayload => D::Ipv6ZeroPayload,
        V6Error::PayloadOverrun => D::Ipv6PayloadOverrun,
        V6Error::ExtOverrun => D::Ipv6ExtOverrun,
        V6Error::ExtLoop => D::Ipv6ExtLoop,
    }
}

/// Whether relaying this packet would take its hop limit to zero (so it must not create state).
#[inline]
pub(crate) fn hop_limit_expires<F: Frame>(f: &F) -> bool {
    Ipv6Packet::new_unchecked(&f.data()[ETH..]).hop_limit() <= 1
}

/// Decrements the hop limit of a packet being relayed; false when it expires.
#[inline]
pub(crate) fn decrement_hop_limit<F: Frame>(f: &mut F) -> bool {
    Ipv6Packet::new_unchecked(&mut f.data_mut()[ETH..]).decrement_hop_limit()
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn ip6_input(&mut self, mut f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let (src, dst, hop, walk, len) = {
            let w = match ipv6::walk(&f.data()[ETH..]) {
                Ok(w) => w,
                Err(e) => return self.discard(f, drop_reason(e)),
            };
            let ip = Ipv6Packet::new_unchecked(&f.data()[ETH..]);
            (ip.src_addr(), ip.dst_addr(), ip.hop_limit(), w, IP6 + ip.payload_len() as usize)
        };
        let pad = f.len() - ETH - len;
        if pad > 0 {
            f.trim(pad);
        }
        cx.hl = walk.l4;
        // NDP's duplicate address detection comes from the unspecified address; nothing else may.
        let ndp = walk.proto == ipv6::NH_ICMPV6 && walk.frag.is_none();
        if src.is_multicast() || src.is_loopback() || (src.is_unspecified() && !ndp) || src == dst {
            return self.discard(f, D::Ipv6BadSource);
        }
        if walk.frag.is_some() {
            return self.discard(f, D::Ipv6Fragment);
        }
        match walk.proto {
            ipv6::NH_TCP | ipv6::NH_UDP => match ipv6::flow_key(&f.data()[ETH..]) {
                Ok((key, _)) => self.l4_input6(f, cx, key, out),
                Err(_) if walk.proto == ipv6::NH_TCP => self.discard(f, D::TcpMalformed),
                Err(_) => self.discard(f, D::UdpMalformed),
            },
            ipv6::NH_ICMPV6 => self.icmp6_input(f, cx, (src, dst), hop, out),
            _ if self.classify6(dst).is_some() => self.discard(f, D::Protocol),
            _ => self.discard(f, D::Ipv6NotForUs),
        }
    }

    /// Which of our IPv6 addresses `dst` is, if any (NAT64 VIPs are VIPs).
    #[inline]
    pub(crate) fn classify6(&self, dst: Ipv6Addr) -> Option<Dst> {
        if self.services6.is_vip(dst) || self.nat64.is_vip(dst) {
            Some(Dst::Vip)
        } else if self.services6.is_lip(dst) {
            Some(Dst::Lip)
        } else if self.ports.iter().any(|p| p.addr6 == Some(dst)) {
            Some(Dst::Port)
        } else {
            None
        }
    }

    /// Addresses the gateway answers neighbour solicitations for.
    #[inline]
    pub(crate) fn owns6(&self, a: Ipv6Addr) -> bool {
        self.classify6(a).is_some()
    }

    /// ICMPv6: checksum, then echo, neighbour discovery, or an error about a tracked connection.
    fn icmp6_input(
        &mut self,
        mut f: P::Frame,
        cx: &mut Ctx,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        hop: u8,
        out: &mut Outbox<P::Frame>,
    ) {
        let l4 = ETH + cx.hl;
        let (ty, ok) = {
            let m = &f.data()[l4..];
            if m.len() < icmpv6::HEADER_LEN {
                return self.discard(f, D::Icmpv6Malformed);
            }
            (m[0], ipv6::verify_checksum(m, src, dst, ipv6::NH_ICMPV6))
        };
        if !ok {
            return self.discard(f, D::Icmpv6BadChecksum);
        }
        match ty {
            icmpv6::NEIGHBOUR_SOLICIT | icmpv6::NEIGHBOUR_ADVERT => {
                self.nd_input(f, cx, (src, dst), hop, out)
            }
            icmpv6::ECHO_REQUEST => {
                if self.classify6(dst).is_none() {
                    return self.discard(f, D::Ipv6NotForUs);
                }
                icmpv6::echo_reply_in_place(&mut f.data_mut()[ETH..], cx.hl, OWN_HOP_LIMIT);
                self.stats.inc(E::IcmpEchoReplies);
                crate::packet::reply_macs(&mut f, self.ports[cx.in_port].mac);
                out.emit(&self.stats, cx.in_port, f);
            }
            icmpv6::DST_UNREACHABLE | icmpv6::PACKET_TOO_BIG | icmpv6::TIME_EXCEEDED => {
                self.icmp6_error(f, cx, out)
            }
            _ => self.discard(f, D::Icmpv6Type),
        }
    }

    /// An ICMPv6 error quoting a packet of a tracked connection: relayed, translated by the
    /// connection's mode; a quoted packet from one of our local ports goes to that port's owner
    /// first, any other is passed along the workers until one has the connection.
    fn icmp6_error(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let Some((quoted, _)) = icmpv6::quoted_flow(&f.data()[ETH + cx.hl..]) else {
            return self.discard(f, D::Icmpv6Malformed);
        };
        // The quoted packet is one the gateway sent: its tuple reversed is what we received.
        let hit = self.conns6.lookup(&quoted.reversed());
        let Some((id, dir)) = hit else {
            let f = if self.services6.is_lip(quoted.src) {
                match self.hand_to_owner(f, quoted.sport, cx, out) {
                    Ok(()) => return,
                    Err(f) => f,
                }
            } else {
                match self.pass_on(f, HandoffKind::IcmpChain, cx, false, out) {
                    Ok(()) => return,
                    Err(f) => f,
                }
            };
            return self.discard(f, D::IcmpUnknownConn);
        };
        self.icmp6_relay(f, cx, id, dir, out);
    }

    /// Relays an ICMPv6 error received in `dir` about connection `id`.
    fn icmp6_relay(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        id: crate::conn::ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::IcmpUnknownConn) };
        if crate::xmit::nat64::is_nat64(&c) {
            // An IPv6 error about the client side of a NAT64 connection has nobody to go to on
            // the IPv4 side but the real server; it is translated there.
            return self.nat64_icmp6_to_v4(f, cx, id, dir, out);
        }
        if !decrement_hop_limit(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let Some((s, d, q)) = crate::xmit::v6::icmp_relay(&c, dir) else {
            // DR and TUN: the error goes on unchanged the way the connection's packets go.
            let to = crate::xmit::v6::next_hop(&c, dir);
            self.stats.inc(E::IcmpErrorsRelayed);
            return self.send_ip6(f, to, cx.now, out);
        };
        icmpv6::rewrite_error(&mut f.data_mut()[ETH..], cx.hl, (s, d), &q);
        self.stats.inc(E::IcmpErrorsRelayed);
        self.send_ip6(f, d, cx.now, out);
    }
}
