//! ARP: answering for our addresses, learning neighbours, and asking for them.
//!
//! Invariants:
//! - Requests are answered for port addresses, VIPs and local addresses only, in the request's
//!   own buffer; with VRRP address adoption on, for VIPs and local addresses only while they are
//!   adopted (see [`crate::adopt`]).
//! - Only a unicast neighbour on the receiving port's subnet, never claiming one of our addresses,
//!   is learned; replies are learned only where a worker asked (the neighbour table knows), so an
//!   unsolicited reply cannot poison the cache.
//! - Any worker may have asked: a reply visits every worker along a chain (see
//!   [`crate::handoff`]), and the last one consumes it or drops it as unsolicited.
use std::net::Ipv4Addr;

use crate::frame::{Frame, FramePool};
use crate::handoff::HandoffKind;
use crate::l2::PortRt;
use crate::outbox::Outbox;
use crate::packet::{set_eth_dst, Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{arp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress};
use crate::worker::Worker;

/// An ARP request for `ip` from `port`, in a fresh frame.
pub(crate) fn arp_request<P: FramePool>(pool: &mut P, port: &PortRt, ip: Ipv4Addr) -> Option<P::Frame> {
    arp_frame(pool, port, port.addr, ip)
}

/// A broadcast ARP request from `port` with sender address `spa` asking for `tpa`: with
/// `spa == tpa`, a gratuitous ARP announcing that `spa` is at the port's MAC (keepalived's and
/// Linux's form: a request, so that every host on the segment updates its cache).
pub(crate) fn arp_frame<P: FramePool>(
    pool: &mut P,
    port: &PortRt,
    spa: Ipv4Addr,
    tpa: Ipv4Addr,
) -> Option<P::Frame> {
    let mut f = pool.alloc()?;
    if !f.append(ETH + arp::PACKET_LEN) {
        return None;
    }
    let d = f.data_mut();
    d[0..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
    d[6..12].copy_from_slice(&port.mac.0);
    d[12..14].copy_from_slice(&u16::from(EtherType::Arp).to_be_bytes());
    let req = ArpRepr {
        operation: ArpOperation::Request,
        sender_hw_addr: port.mac,
        sender_proto_addr: spa,
        target_hw_addr: EthernetAddress([0; 6]),
        target_proto_addr: tpa,
    };
    req.emit(&mut d[ETH..]).ok()?;
    Some(f)
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn arp_input(&mut self, mut f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let (op, sha, spa, tpa) = match ArpPacket::new_checked(&f.data()[ETH..]) {
            Ok(p) => (p.operation(), p.sender_hw_addr(), p.sender_proto_addr(), p.target_proto_addr()),
            Err(_) => return self.discard(f, D::ArpMalformed),
        };
        let in_port = cx.in_port;
        let now = cx.now;
        let port = self.ports[in_port];
        let sender_ok = sha.is_unicast() && !spa.is_unspecified() && port.holds(spa) && !self.owns(spa);
        let stats = &*self.stats;
        let release = |mut fr: P::Frame, mac: EthernetAddress, p: usize| {
            set_eth_dst(&mut fr, mac);
            out.emit(stats, p, fr);
        };
        match op {
            ArpOperation::Request => {
                if !self.owns(tpa) {
                    return self.discard(f, D::ArpNotOurs);
                }
                if !self.adopt.claims(tpa) && !self.port_addr(tpa) {
                    return self.discard(f, D::ArpNotAdopted);
                }
                if sender_ok {
                    self.neigh.learn(spa, in_port, sha, now, true, release);
                }
                let d = f.data_mut();
                ArpPacket::new_unchecked(&mut d[ETH..]).make_reply_in_place(port.mac);
                d[0..6].copy_from_slice(&sha.0);
                d[6..12].copy_from_slice(&port.mac.0);
                self.stats.inc(E::ArpRepliesSent);
                out.emit(&self.stats, in_port, f);
            }
            ArpOperation::Reply => {
                let mut learned = cx.via.is_some_and(|h| h.learned);
                if sender_ok && self.neigh.learn(spa, in_port, sha, now, false, release) {
                    self.stats.inc(E::ArpLearned);
                    learned = true;
                }
                match self.pass_on(f, HandoffKind::ArpChain, cx, learned, out) {
                    Ok(()) => {}
                    // The end of the chain: a reply to a port address is also the kernel's (its
                    // own requests), after every worker learned what it asked for.
                    Err(f) if self.exc.tap(in_port).is_some() && self.port_addr(tpa) => {
                        self.kernel_in(f, cx, out, D::ArpUnsolicited)
                    }
                    Err(f) if learned => {
                        self.stats.inc(E::ArpConsumed);
                        drop(f);
                    }
                    Err(f) => self.discard(f, D::ArpUnsolicited),
                }
            }
            _ => self.discard(f, D::ArpMalformed),
        }
    }

    /// Sends an ARP request for `nh` out of `port` (a neighbour entry just started waiting).
    pub(crate) fn arp_ask(&mut self, port: usize, nh: Ipv4Addr, out: &mut Outbox<P::Frame>) {
        let pr = self.ports[port];
        match arp_request(&mut self.pool, &pr, nh) {
            Some(req) => {
                self.stats.inc(E::ArpRequestsSent);
                out.emit(&self.stats, port, req);
            }
            None => self.stats.inc(E::NoMbuf),
        }
    }
}
