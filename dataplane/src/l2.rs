//! Ethernet input: the first stage of every received frame, and the ports' link identity.
//!
//! Invariants:
//! - Only untagged frames to the port's MAC or to broadcast (and, on a port with a kernel
//!   interface, to IPv4/IPv6 multicast MACs) go further; everything else is dropped with its own
//!   reason. Frames received on a kernel interface go out of its physical port ([`crate::kernel`]).
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::{Frame, FramePool};
use crate::kernel::kernel_multicast_mac;
use crate::outbox::Outbox;
use crate::packet::Ctx;
use crate::stats::DropReason as D;
use crate::wire::{self, EtherType, EthernetAddress};
use crate::worker::Worker;

/// A port as the packet path needs it: its MAC, its address and subnet, its MTU.
#[derive(Debug, Clone, Copy)]
pub struct PortRt {
    pub mac: EthernetAddress,
    pub addr: Ipv4Addr,
    pub mask: u32,
    /// The port's IPv6 address and prefix mask, if it has one.
    pub addr6: Option<Ipv6Addr>,
    pub mask6: u128,
    pub mtu: u16,
}

impl PortRt {
    pub fn new(p: &crate::setup::PortSetup) -> PortRt {
        PortRt {
            mac: p.mac,
            addr: p.addr,
            mask: if p.prefix_len == 0 { 0 } else { u32::MAX << (32 - p.prefix_len as u32) },
            addr6: p.addr6,
            mask6: crate::flow::prefix_mask::<Ipv6Addr>(p.prefix6_len),
            mtu: p.mtu,
        }
    }

    /// Whether `a` is on this port's subnet.
    pub fn holds(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask == u32::from(self.addr) & self.mask
    }

    /// Whether `a` is on this port's IPv6 prefix (or link-local: every port's link is).
    pub fn holds6(&self, a: Ipv6Addr) -> bool {
        if a.segments()[0] & 0xffc0 == 0xfe80 {
            return true;
        }
        self.addr6.is_some_and(|m| u128::from(a) & self.mask6 == u128::from(m) & self.mask6)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask)
    }
}

impl<P: FramePool> Worker<P> {
    /// Ethernet: checks the destination and dispatches on the EtherType.
    pub(crate) fn l2_input(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let Some(port) = self.ports.get(cx.in_port).copied() else {
            // Not a physical port: a kernel interface's frames leave by its physical port.
            if let Err(f) = self.kernel_out(f, cx.in_port, out) {
                self.discard(f, D::NotOurMac);
            }
            return;
        };
        let l2 = match wire::ethernet::parse_l2(f.data()) {
            Ok(l) => l,
            Err(_) => return self.discard(f, D::EthTruncated),
        };
        if l2.vlan.is_some() {
            return self.discard(f, D::Vlan);
        }
        let d = f.data();
        let dst = EthernetAddress([d[0], d[1], d[2], d[3], d[4], d[5]]);
        // Multicast groups go on only where a kernel interface may have joined them (VRRP, OSPF),
        // and IPv6 multicast (33:33:...) carries neighbour solicitations to solicited-node groups.
        let v6_multicast = dst.0[0] == 0x33 && dst.0[1] == 0x33 && l2.ethertype == EtherType::Ipv6;
        let kernel_group = kernel_multicast_mac(d) && self.exc.tap(cx.in_port).is_some();
        if !(dst == port.mac || dst.is_broadcast() || v6_multicast || kernel_group) {
            return self.discard(f, D::NotOurMac);
        }
        match l2.ethertype {
            EtherType::Arp => self.arp_input(f, cx, out),
            EtherType::Ipv4 => self.ip4_input(f, cx, out),
            EtherType::Ipv6 => self.ip6_input(f, cx, out),
            _ => self.discard(f, D::EtherType),
        }
    }
}
