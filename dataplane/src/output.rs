//! Output: the route, the MTU and the neighbour of a packet leaving the gateway.
//!
//! Invariants:
//! - Packets are only ever sent to the gateway's own neighbours, resolved by ARP on the port the
//!   routing table chooses; while a neighbour is unresolved its packets wait in a bounded queue.
//! - A packet larger than the output port's MTU is dropped by reason, never sent. Forwarding
//!   answers or fragments such packets before they get here ([`crate::mtu`]); this is the last
//!   guard.
use std::net::Ipv4Addr;

use crate::flow::Millis;
use crate::frame::{Frame, FramePool};
use crate::neigh::Resolved;
use crate::outbox::Outbox;
use crate::packet::{set_eth_dst, ETH};
use crate::stats::DropReason as D;
use crate::worker::Worker;

impl<P: FramePool> Worker<P> {
    /// Routes an IPv4 packet (Ethernet header present, EtherType IPv4) and hands it to the neighbour.
    pub(crate) fn send_ip(
        &mut self,
        mut f: P::Frame,
        dst: Ipv4Addr,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some((port, nh)) = self.routes.lookup(dst) else {
            return self.discard(f, D::NoRoute);
        };
        let pr = self.ports[port];
        if f.len() - ETH > pr.mtu as usize {
            return self.discard(f, D::MtuExceeded);
        }
        f.data_mut()[6..12].copy_from_slice(&pr.mac.0);
        match self.neigh.resolve(nh, port, f, now) {
            Resolved::Send(mut f, mac) => {
                set_eth_dst(&mut f, mac);
                out.emit(&self.stats, port, f);
            }
            Resolved::QueuedRequest => self.arp_ask(port, nh, out),
            Resolved::Queued => {}
            Resolved::QueueFull(f) => self.discard(f, D::NeighQueueFull),
            Resolved::TableFull(f) => self.discard(f, D::NeighTableFull),
        }
    }
}
