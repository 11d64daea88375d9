//! IPv4 input: header checks, source sanity, and which of our addresses a packet is for.
//!
//! Invariants:
//! - Past this stage the IPv4 header is checked (`new_checked`, header checksum), the frame holds
//!   exactly the IP packet (Ethernet padding trimmed, so it cannot travel on with a rewrite), and
//!   `Ctx::{hl, dst}` are set.
//! - Packets from impossible sources (0/8, broadcast, multicast, loopback, the port's subnet
//!   broadcast), LAND packets, ICMP fragments and packets to addresses we neither own nor balance
//!   are dropped here, each with its own reason; TCP and UDP fragments go to [`crate::frag`].
//! - The TTL is checked in two places only: [`ttl_expires`] before a packet may create state, and
//!   [`decrement_ttl`] when a packet is relayed.
use std::net::Ipv4Addr;

use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{Ctx, Dst, ETH};
use crate::stats::DropReason as D;
use crate::wire::{self, ipv4, Ipv4Packet};
use crate::worker::Worker;

#[inline]
fn bad_source(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback()
}

/// Whether relaying this packet would take its TTL to zero (so it must not create state).
#[inline]
pub(crate) fn ttl_expires<F: Frame>(f: &F) -> bool {
    Ipv4Packet::new_unchecked(&f.data()[ETH..]).ttl() <= 1
}

/// Decrements the TTL of a packet being relayed (checksum updated); false when it expires.
#[inline]
pub(crate) fn decrement_ttl<F: Frame>(f: &mut F) -> bool {
    Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]).decrement_ttl()
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn ip4_input(&mut self, mut f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let (src, dst, proto, total, hl, frag) = {
            let ip = match Ipv4Packet::new_checked(&f.data()[ETH..]) {
                Ok(p) => p,
                Err(wire::Error::Truncated) => return self.discard(f, D::Ipv4Truncated),
                Err(_) => return self.discard(f, D::Ipv4BadHeader),
            };
            if !ip.verify_checksum() {
                return self.discard(f, D::Ipv4BadChecksum);
            }
            (
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                ip.total_len() as usize,
                ip.header_len(),
                ip.is_fragment(),
            )
        };
        let pad = f.len() - ETH - total;
        if pad > 0 {
            f.trim(pad);
        }
        let port = self.ports[cx.in_port];
        if bad_source(src) || src == port.broadcast() {
            return self.discard(f, D::Ipv4BadSource);
        }
        if src == dst {
            return self.discard(f, D::Ipv4Land);
        }
        cx.hl = hl;
        // NAT64's IPv4 side: its connections live in the IPv6 table (see crate::xmit::nat64).
        if !self.nat64.list.is_empty() && self.nat64.is_lip(dst) {
            return self.nat64_input4(f, cx, out);
        }
        // An established packet's tuple is in the connection table, which only holds tuples to
        // our VIPs and local addresses, and NAT replies to clients: TCP and UDP look there first
        // and classify the destination only on a miss (see crate::proto), so the hit path does no
        // address-set lookups.
        if proto == ipv4::PROTO_TCP || proto == ipv4::PROTO_UDP {
            if !frag {
                return self.l4_input(f, cx, out);
            }
            // Fragments of datagrams to our addresses, or (with NAT) from a real server.
            if self.classify(dst).is_some() || self.services.relays_transit() {
                return self.frag_input(f, cx, out);
            }
        }
        cx.dst = match self.classify(dst) {
            Some(d) => d,
            None if proto == ipv4::PROTO_ICMP && !frag && self.services.relays_transit() => {
                return self.icmp_transit(f, cx, out);
            }
            None => return self.discard(f, D::NotForUs),
        };
        if frag {
            return self.discard(f, D::Ipv4Fragment);
        }
        match proto {
            ipv4::PROTO_ICMP => self.icmp_input(f, cx, out),
            _ => self.discard(f, D::Protocol),
        }
    }

    /// Which of our addresses `dst` is, if any.
    #[inline]
    pub(crate) fn classify(&self, dst: Ipv4Addr) -> Option<Dst> {
        if self.services.is_vip(dst) {
            Some(Dst::Vip)
        } else if self.services.is_lip(dst) {
            Some(Dst::Lip)
        } else if self.port_addr(dst) {
            Some(Dst::Port)
        } else {
            None
        }
    }

    pub(crate) fn port_addr(&self, a: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| p.addr == a)
    }

    /// Addresses the gateway answers ARP for: port addresses, VIPs and local addresses.
    pub(crate) fn owns(&self, a: Ipv4Addr) -> bool {
        self.port_addr(a) || self.services.is_vip(a) || self.services.is_lip(a) || self.nat64.is_lip(a)
    }
}
