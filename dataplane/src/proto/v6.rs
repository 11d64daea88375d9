//! IPv6 transport input: the connection lookup in the IPv6 table, and for a miss the admission
//! of a new connection to an IPv6 or NAT64 service. The IPv4 rules ([`super`]) over IPv6 tuples.
//!
//! Invariants:
//! - As for IPv4: a reply to an IPv6 local address whose port another worker owns is handed to
//!   that worker before any lookup; state is created only through [`Worker::bind6`], for a bare
//!   SYN with a valid checksum and options (TCP) or a datagram with a valid checksum (UDP; IPv6
//!   makes the UDP checksum mandatory, so a zero one is refused), never while draining, and never
//!   for a packet whose hop limit would expire.
//! - A client SYN reusing the tuple of a connection that is over (TIME_WAIT, CLOSE) releases it and
//!   is scheduled afresh (LVS's `conn_reuse_mode`).
use std::net::Ipv6Addr;

use crate::conn::{Dir, TcpState};
use crate::flow::{FlowKey, Proto};
use crate::frame::{Frame, FramePool};
use crate::handoff::client_owner;
use crate::ip6::hop_limit_expires;
use crate::outbox::Outbox;
use crate::packet::{Ctx, Dst, ETH};
use crate::sched::fold_v6;
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{ipv6, TcpPacket};
use crate::worker::Worker;

/// Which table a new IPv6 connection's service is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Svc6 {
    /// An IPv6 service (position in `services6`).
    V6(u32),
    /// A NAT64 service (position in `nat64`).
    Nat64(u32),
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn l4_input6(
        &mut self,
        f: P::Frame,
        cx: &mut Ctx,
        key: FlowKey<Ipv6Addr>,
        out: &mut Outbox<P::Frame>,
    ) {
        // The context's tuple is IPv4's; the family-independent checks (`tcp::syn_only`) read
        // its protocol and ports, so those are set (the addresses stay unspecified).
        cx.key.proto = key.proto;
        cx.key.sport = key.sport;
        cx.key.dport = key.dport;
        let parsed = match key.proto {
            Proto::Tcp => super::tcp::parse(&f, cx),
            Proto::Udp => super::udp::parse(&f, cx),
        };
        if let Err(r) = parsed {
            let r = if self.classify6(key.dst).is_some() { r } else { D::Ipv6NotForUs };
            return self.discard(f, r);
        }
        if let Some((id, dir)) = self.conns6.lookup(&key) {
            let over =
                |c: &crate::conn::Conn<Ipv6Addr>| matches!(c.state(), TcpState::TimeWait | TcpState::Close);
            if dir == Dir::Original && super::tcp::syn_only(cx) && self.conns6.get(id).is_some_and(over) {
                self.release6(id);
                self.stats.inc(E::ConnsReused);
            } else {
                return self.forward6(f, cx, id, dir, out);
            }
        }
        let dst = match self.classify6(key.dst) {
            Some(d) => d,
            None if self.services6.is_nat_source(key.proto, key.src, key.sport) => {
                let o = client_owner(fold_v6(key.dst), key.dport, self.workers);
                if let Err(f) = self.hand_to_worker(f, o, cx, out) {
                    self.discard(f, D::NatNoConn);
                }
                return;
            }
            None => return self.discard(f, D::Ipv6NotForUs),
        };
        let f = if dst == Dst::Lip {
            match self.hand_to_owner(f, key.dport, cx, out) {
                Ok(()) => return,
                Err(f) => return self.discard(f, D::LipNoConn),
            }
        } else {
            f
        };
        let svc = if dst == Dst::Vip {
            match self.services6.find(key.proto, key.dst, key.dport) {
                Some(i) => Some(Svc6::V6(i)),
                None => self.nat64.find(key.proto, key.dst, key.dport).map(Svc6::Nat64),
            }
        } else {
            None
        };
        let Some(svc) = svc else { return self.discard(f, D::NoService) };
        self.admit6(f, cx, key, svc, out)
    }

    /// Answers a TCP segment that matches no connection with a RST, in its own buffer (as
    /// [`Worker::send_rst`] does for IPv4): `conn.rst_on_miss`, and new connections while draining.
    pub(crate) fn send_rst6(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        key: &FlowKey<Ipv6Addr>,
        out: &mut Outbox<P::Frame>,
    ) {
        let (seq, ack, flags, plen) = {
            let t = TcpPacket::new_unchecked(&f.data()[ETH + cx.hl..]);
            (t.seq_number(), t.ack_number(), t.flags(), t.payload().len() as u32)
        };
        let len = ipv6::HEADER_LEN + crate::wire::tcp::HEADER_LEN;
        let want = ETH + len;
        // A segment holds at least its 20-byte header after the IPv6 one: the RST fits.
        if f.len() < want || !f.trim(f.len() - want) {
            return self.discard(f, D::TcpMalformed);
        }
        let d = f.data_mut();
        let ip = ipv6::Repr {
            src: key.dst,
            dst: key.src,
            next_header: ipv6::NH_TCP,
            payload_len: crate::wire::tcp::HEADER_LEN as u16,
            hop_limit: crate::ip6::OWN_HOP_LIMIT,
            traffic_class: 0,
        };
        if ip.emit(&mut d[ETH..]).is_err() {
            return self.discard(f, D::TcpMalformed);
        }
        let t = &mut d[ETH + ipv6::HEADER_LEN..];
        t.fill(0);
        let mut t = TcpPacket::new_unchecked(t);
        t.set_src_port(key.dport);
        t.set_dst_port(key.sport);
        t.set_header_len_raw(crate::wire::tcp::HEADER_LEN);
        if flags.ack() {
            t.set_seq_number(ack);
            t.set_flags(crate::wire::TcpFlags::RST);
        } else {
            let consumed = plen + u32::from(flags.syn()) + u32::from(flags.fin());
            t.set_ack_number(seq.wrapping_add(consumed));
            t.set_flags(crate::wire::TcpFlags::RST.union(crate::wire::TcpFlags::ACK));
        }
        ipv6::fill_checksum(&mut d[ETH + ipv6::HEADER_LEN..], key.dst, key.src, ipv6::NH_TCP);
        crate::packet::reply_macs(&mut f, self.ports[cx.in_port].mac);
        self.stats.inc(E::RstSent);
        out.emit(&self.stats, cx.in_port, f);
    }

    /// A packet of no connection to service `svc`: admitted by its protocol, bound, forwarded.
    fn admit6(
        &mut self,
        f: P::Frame,
        cx: &mut Ctx,
        key: FlowKey<Ipv6Addr>,
        svc: Svc6,
        out: &mut Outbox<P::Frame>,
    ) {
        // NAT connections live with their client's owner, where the real server's replies go.
        let has_nat = matches!(svc, Svc6::V6(i) if self.services6.list[i as usize].has_nat);
        let f = if self.workers > 1 && has_nat {
            match self.hand_to_worker(f, client_owner(fold_v6(key.src), key.sport, self.workers), cx, out) {
                Ok(()) => return,
                Err(f) => f,
            }
        } else {
            f
        };
        let l4 = &f.data()[ETH + cx.hl..];
        let nh = if key.proto == Proto::Tcp { ipv6::NH_TCP } else { ipv6::NH_UDP };
        let (sp, toa) = match svc {
            Svc6::V6(i) => (self.services6.list[i as usize].synproxy, self.services6.list[i as usize].toa),
            Svc6::Nat64(i) => (self.nat64.list[i as usize].synproxy, self.nat64.list[i as usize].toa),
        };
        let mut handshake = None;
        match key.proto {
            Proto::Tcp => {
                let flags = cx.flags;
                let syn = super::tcp::syn_only(cx);
                // A client's handshake-completing ACK to a SYN-proxied service (it may carry data).
                let sp_ack = sp && flags.ack() && !flags.syn() && !flags.rst() && !flags.fin();
                if !syn && !sp_ack {
                    if self.rst_on_miss && !flags.rst() {
                        return self.send_rst6(f, cx, &key, out);
                    }
                    return self.discard(f, D::TcpNoConn);
                }
                if self.draining {
                    self.stats.inc(E::RefusedDraining);
                    return self.send_rst6(f, cx, &key, out);
                }
                if !ipv6::verify_checksum(l4, key.src, key.dst, nh) {
                    return self.discard(f, D::TcpBadChecksum);
                }
                if TcpPacket::new_unchecked(l4).options_iter().any(|o| o.is_err()) {
                    return self.discard(f, D::TcpBadOption);
                }
                if sp && syn {
                    return self.sp_syn6(f, cx, &key, toa, out);
                }
                if sp {
                    match self.sp_check_ack6(&f, cx, &key) {
                        Ok(h) => handshake = Some(h),
                        Err(r) => return self.discard(f, r),
                    }
                }
            }
            Proto::Udp => {
                if self.draining {
                    return self.discard(f, D::Draining);
                }
                if !ipv6::verify_checksum(l4, key.src, key.dst, nh) {
                    return self.discard(f, D::UdpBadChecksum);
                }
            }
        }
        if hop_limit_expires(&f) {
            return self.discard(f, D::TtlExceeded);
        }
        let id = match self.bind6(svc, &key, cx.now) {
            Ok(id) => id,
            Err(r) => return self.discard(f, r),
        };
        match handshake {
            Some(h) => self.sp_open6(f, cx, id, &h, out),
            None => self.forward6(f, cx, id, Dir::Original, out),
        }
    }
}
