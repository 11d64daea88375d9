//! Transport input: the connection lookup, and for a miss, admission of a new connection.
//!
//! Invariants:
//! - A packet to a local address whose port another worker owns is handed to that worker before
//!   any lookup here (no shared table).
//! - State is created only through [`Worker::bind`](crate::conn::bind), at one call site below,
//!   and only for a packet its protocol admits ([`tcp`], [`udp`]) that will not expire its TTL.
//! - LVS's `conn_reuse_mode`: a client SYN reusing the tuple of a connection that is over
//!   (TIME_WAIT, CLOSE) releases it and is scheduled afresh, instead of riding the old entry to
//!   the old real server.
pub mod proxy;
pub mod synproxy;
pub mod synproxy6;
pub mod tcp;
pub mod udp;
pub mod v6;

use crate::conn::{Dir, TcpState};
use crate::flow::Proto;
use crate::frame::{Frame, FramePool};
use crate::handoff::client_owner;
use crate::ip4::ttl_expires;
use crate::outbox::Outbox;
use crate::packet::{Ctx, Dst, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::synproxy::Handshake;
use crate::wire::{self, ipv4, Ipv4Packet};
use crate::worker::Worker;

/// What a protocol decides about a packet that matched no connection.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Bind a connection and forward the packet.
    New,
    /// SYN-proxy: answer with a cookie SYN-ACK; no state.
    SynproxySyn,
    /// SYN-proxy: the cookie checked out; bind, then open the handshake with the real server.
    SynproxyAck(Handshake),
    /// Refuse with a RST built from the packet.
    Rst,
    Drop(D),
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn l4_input(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let ip = &f.data()[ETH..];
        let dst = Ipv4Packet::new_unchecked(ip).dst_addr();
        // The burst pipeline parsed this frame's tuple already (the same `flow_key` on the same,
        // unchanged bytes); a frame that came through `process` is parsed here.
        let parsed_key = match cx.hashed {
            Some((k, _)) => Ok(k),
            None => wire::flow_key(ip),
        };
        let key = match parsed_key {
            Ok(k) => k,
            Err(e) => {
                let r = match e {
                    wire::Error::Fragment => D::Ipv4Fragment,
                    _ if ip[9] == ipv4::PROTO_TCP => D::TcpMalformed,
                    _ => D::UdpMalformed,
                };
                return self.discard_for(f, dst, r);
            }
        };
        cx.key = key;
        let parsed = match key.proto {
            Proto::Tcp => tcp::parse(&f, cx),
            Proto::Udp => udp::parse(&f, cx),
        };
        if let Err(r) = parsed {
            return self.discard_for(f, dst, r);
        }
        // The burst pipeline hashed the tuple and warmed its bucket and entry already.
        let hit = match cx.hashed {
            Some((_, h)) => self.conns.lookup_hashed(&key, h),
            None => self.conns.lookup(&key),
        };
        if let Some((id, dir)) = hit {
            let over = |c: &crate::conn::Conn| matches!(c.state(), TcpState::TimeWait | TcpState::Close);
            if dir == Dir::Original && tcp::syn_only(cx) && self.conns.get(id).is_some_and(over) {
                self.release(id);
                self.stats.inc(E::ConnsReused);
            } else {
                return self.forward(f, cx, id, dir, out);
            }
        }
        cx.dst = match self.classify(dst) {
            Some(d) => d,
            None if self.services.is_nat_source(key.proto, key.src, key.sport) => {
                // A NAT real server's reply: its connection lives with the client's owner.
                let o = client_owner(key.dst, key.dport, self.workers);
                if let Err(f) = self.hand_to_worker(f, o, cx, out) {
                    self.discard(f, D::NatNoConn);
                }
                return;
            }
            None => return self.discard(f, D::NotForUs),
        };
        // A reply to a local port another worker owns goes to that worker.
        let f = if cx.dst == Dst::Lip {
            match self.hand_to_owner(f, key.dport, cx, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        self.admit(f, cx, out)
    }

    /// A transport header we cannot use: dropped as not ours when it is not to one of our
    /// addresses, by the header's fault otherwise.
    fn discard_for(&self, f: P::Frame, dst: std::net::Ipv4Addr, r: D) {
        self.discard(f, if self.classify(dst).is_some() { r } else { D::NotForUs })
    }

    /// A packet that matched no connection: to a service, admitted by its protocol, bound.
    fn admit(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let key = cx.key;
        let svc = if cx.dst == Dst::Vip { self.services.find(key.proto, key.dst, key.dport) } else { None };
        let Some(svc) = svc else {
            return self.discard(f, if cx.dst == Dst::Lip { D::LipNoConn } else { D::NoService });
        };
        // NAT connections live with their client's owner, where the real server's replies are
        // handed too; the protocol (and SYN-proxy's cookie) is decided there.
        let f = if self.workers > 1 && self.services.list[svc as usize].has_nat {
            match self.hand_to_worker(f, client_owner(key.src, key.sport, self.workers), cx, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        let verdict = match key.proto {
            Proto::Tcp => self.tcp_admit(&f, cx, svc),
            Proto::Udp => self.udp_admit(&f, cx),
        };
        let verdict = match verdict {
            Admit::Drop(r) => return self.discard(f, r),
            Admit::Rst => return self.send_rst(f, cx, out),
            Admit::SynproxySyn => return self.sp_syn(f, cx, svc, out),
            v => v,
        };
        // A packet that forwarding would drop for its TTL must not create state or move the scheduler.
        if ttl_expires(&f) {
            return self.discard(f, D::TtlExceeded);
        }
        let id = match self.bind(svc, &key, cx.now) {
            Ok(id) => id,
            Err(r) => return self.discard(f, r),
        };
        if key.proto == Proto::Tcp && self.services.list[svc as usize].proxy_protocol.is_some() {
            let seq = wire::TcpPacket::new_unchecked(&f.data()[cx.l4()..]).seq_number();
            self.pp_bound(id, svc, seq, cx.flags.syn());
        }
        match verdict {
            Admit::SynproxyAck(h) => self.sp_open(f, cx, id, &h, out),
            _ => self.forward(f, cx, id, Dir::Original, out),
        }
    }
}
