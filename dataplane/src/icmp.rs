//! ICMP: echo for our addresses, and relaying errors about tracked connections.
//!
//! Invariants:
//! - Echo requests to any of our addresses are answered in their own buffer.
//! - An ICMP error is relayed only when the packet it quotes belongs to a tracked connection; it
//!   is translated (outer and quoted addresses, ports and all four checksums) and sent to the
//!   other side, so path-MTU discovery works through the gateway. Anything else is dropped by
//!   reason.
//! - Multi-core: an error quoting a packet from a local port goes to that port's owner; one about
//!   a packet to a client names no owner and visits the workers along a chain.
use crate::flow::{FlowKey, Proto};
use crate::frame::Frame;
use crate::frame::FramePool;
use crate::handoff::HandoffKind;
use crate::ip4::decrement_ttl;
use crate::outbox::Outbox;
use crate::packet::{reply_macs, Ctx, ETH, OWN_TTL};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{icmp, IcmpPacket, Ipv4Packet};
use crate::worker::Worker;
use crate::xmit::IcmpRelay;

impl<P: FramePool> Worker<P> {
    pub(crate) fn icmp_input(&mut self, mut f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let hl = cx.hl;
        let (ty, is_error) = match IcmpPacket::new_checked(&f.data()[ETH + hl..]) {
            Ok(p) => (p.msg_type(), p.is_error()),
            Err(_) => return self.discard(f, D::IcmpMalformed),
        };
        if ty == icmp::msg::ECHO_REQUEST {
            let d = f.data_mut();
            let mut m = IcmpPacket::new_unchecked(&mut d[ETH + hl..]);
            if !m.verify_checksum() {
                return self.discard(f, D::IcmpMalformed);
            }
            m.make_echo_reply();
            let mut ip = Ipv4Packet::new_unchecked(&mut d[ETH..]);
            let (s, t) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(t);
            ip.set_dst_addr(s);
            ip.set_ttl(OWN_TTL);
            reply_macs(&mut f, self.ports[cx.in_port].mac);
            self.stats.inc(E::IcmpEchoReplies);
            return out.emit(&self.stats, cx.in_port, f);
        }
        if !is_error {
            // Echo replies and the rest to a port address: the kernel's (its own pings).
            return match cx.dst {
                crate::packet::Dst::Port => self.kernel_in(f, cx, out, D::IcmpType),
                _ => self.discard(f, D::IcmpType),
            };
        }
        self.icmp_error(f, cx, out)
    }

    /// An ICMP error to an address that is not ours: NAT's real-server side sends errors about
    /// `client -> RS` to the client, through the gateway. Relayed when it names a tracked
    /// connection, like any other error; anything else is not for us.
    pub(crate) fn icmp_transit(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        match IcmpPacket::new_checked(&f.data()[ETH + cx.hl..]) {
            Ok(p) if p.is_error() => self.icmp_error(f, cx, out),
            _ => self.discard(f, D::NotForUs),
        }
    }

    fn icmp_error(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let hl = cx.hl;
        let inner = {
            let Ok(p) = IcmpPacket::new_checked(&f.data()[ETH + hl..]) else {
                return self.discard(f, D::IcmpMalformed);
            };
            let Ok(q) = p.inner() else { return self.discard(f, D::IcmpMalformed) };
            let Some(proto) = Proto::from_number(q.protocol()) else {
                return self.discard(f, D::IcmpUnknownConn);
            };
            FlowKey { proto, src: q.src_addr(), dst: q.dst_addr(), sport: q.src_port(), dport: q.dst_port() }
        };
        let from_lip = self.services.is_lip(inner.src);
        // About a packet we sent from a local port: its owner has the connection.
        let mut f = if from_lip {
            match self.hand_to_owner(f, inner.sport, cx, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        // The quoted packet is one we sent, so its reverse is a tuple we received and indexed.
        let Some((id, dir)) = self.conns.lookup(&inner.reversed()) else {
            // About a packet to a client: nothing names the worker that owns it, so ask each.
            if self.workers > 1 && !from_lip {
                if let Err(f) = self.pass_on(f, HandoffKind::IcmpChain, cx, false, out) {
                    self.ip4_kernel_or(f, cx, out, D::IcmpUnknownConn);
                }
                return;
            }
            // An error about none of our connections, to a port address: about the kernel's.
            return self.ip4_kernel_or(f, cx, out, D::IcmpUnknownConn);
        };
        let Some(c) = self.conns.get(id).copied() else { return self.discard(f, D::IcmpUnknownConn) };
        let from = Ipv4Packet::new_unchecked(&f.data()[ETH..]).src_addr();
        if !decrement_ttl(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        match crate::xmit::icmp_relay(&c, dir, from) {
            IcmpRelay::Translate(src, dst, quoted) => {
                if crate::wire::rewrite_icmp_error(&mut f.data_mut()[ETH..], src, dst, &quoted).is_err() {
                    return self.discard(f, D::IcmpMalformed);
                }
                self.stats.inc(E::IcmpErrorsRelayed);
                self.send_ip(f, dst, cx.now, out);
            }
            IcmpRelay::Forward => {
                self.stats.inc(E::IcmpErrorsRelayed);
                self.transmit(f, c.xlat(), dir, crate::xmit::next_hop(&c, dir), cx, out);
            }
        }
    }
}
