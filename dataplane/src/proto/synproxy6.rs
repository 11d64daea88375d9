//! SYN-proxy over IPv6: [`super::synproxy`]'s rules for connections of the IPv6 table (IPv6
//! services, and NAT64 services, whose SYN to the real server is IPv4). The cookies cover the
//! whole IPv6 tuple ([`crate::synproxy::make_cookie`] is generic over the family); the half-open
//! state is a second [`SynProxy`](crate::synproxy::SynProxy) (`sp6`), keyed by IPv6-table ids.
//!
//! Invariants:
//! - As for IPv4: a SYN is answered with a cookie SYN-ACK in its own buffer and creates nothing;
//!   a connection is bound only for an ACK whose cookie verifies; the client's packets are held
//!   (bounded) until the real server's SYN-ACK, which is consumed; from then on every segment is
//!   sequence-shifted ([`Worker::sp_shift6`]).
//! - A real server that refuses (RST) or never answers: the connection is released and its held
//!   packets dropped by reason (`synproxy_aborted`); unlike IPv4, no RST is built for the client,
//!   whose handshake with us then times out.
use std::net::Ipv6Addr;

use crate::conn::{ConnId, Dir};
use crate::flow::{FlowKey, Millis};
use crate::frame::{Frame, FramePool};
use crate::ip6::OWN_HOP_LIMIT;
use crate::outbox::Outbox;
use crate::packet::{reply_macs, Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::synproxy::proxy::due_list;
use crate::synproxy::{synack::synack_repr, SeqShift};
use crate::wire::ipv6::{self, HEADER_LEN as IP6};
use crate::wire::{toa, EtherType, TcpOption, TcpPacket, TcpRepr};
use crate::worker::Worker;

impl<P: FramePool> Worker<P> {
    /// Answers an IPv6 client's SYN with a cookie SYN-ACK, in place. `toa`: the service inserts
    /// TOA (the SYN-ACK's MSS leaves it room).
    pub(crate) fn sp_syn6(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        key: &FlowKey<Ipv6Addr>,
        toa: bool,
        out: &mut Outbox<P::Frame>,
    ) {
        let l4 = ETH + cx.hl;
        let (client_isn, opts) = {
            let t = TcpPacket::new_unchecked(&f.data()[l4..]);
            match crate::synproxy::syn_options(&t) {
                Ok(o) => (t.seq_number(), o),
                Err(_) => return self.discard(f, D::TcpBadOption),
            }
        };
        let (isn, tsval) = self.sp6.cookie(key, client_isn, &opts, cx.now);
        let cfg = self.sp6.synack_config(if toa { toa::TOA_V6_LEN as u16 } else { 0 });
        let repr = match synack_repr(&TcpPacket::new_unchecked(&f.data()[l4..]), isn, tsval, &cfg) {
            Ok(r) => r,
            Err(_) => return self.discard(f, D::SynproxyBadSegment),
        };
        let want = ETH + IP6 + repr.buffer_len();
        let ok = if f.len() < want { f.append(want - f.len()) } else { f.trim(f.len() - want) };
        if !ok {
            return self.discard(f, D::SynproxyBadSegment);
        }
        let d = f.data_mut();
        let ip = ipv6::Repr {
            src: key.dst,
            dst: key.src,
            next_header: ipv6::NH_TCP,
            payload_len: repr.buffer_len() as u16,
            hop_limit: OWN_HOP_LIMIT,
            traffic_class: 0,
        };
        if ip.emit(&mut d[ETH..]).is_err()
            || repr.emit(&mut TcpPacket::new_unchecked(&mut d[ETH + IP6..]), 0.into(), 0.into()).is_err()
        {
            return self.discard(f, D::SynproxyBadSegment);
        }
        ipv6::fill_checksum(&mut d[ETH + IP6..], key.dst, key.src, ipv6::NH_TCP);
        reply_macs(&mut f, self.ports[cx.in_port].mac);
        self.stats.inc(E::SynproxySynAcks);
        out.emit(&self.stats, cx.in_port, f);
    }

    /// Checks the cookie of an IPv6 client's handshake-completing ACK.
    pub(crate) fn sp_check_ack6(
        &mut self,
        f: &P::Frame,
        cx: &Ctx,
        key: &FlowKey<Ipv6Addr>,
    ) -> Result<crate::synproxy::Handshake, D> {
        let (seq, ack, ts) = {
            let t = TcpPacket::new_unchecked(&f.data()[ETH + cx.hl..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), ts)
        };
        let h = self.sp6.check_ack(key, seq, ack, ts, cx.now)?;
        self.stats.inc(E::SynproxyCookiesValid);
        if self.sp6.is_full() {
            return Err(D::SynproxyHalfOpenFull);
        }
        Ok(h)
    }

    /// Connection `id` was just bound for handshake `h`: the client's ACK is held and our SYN goes
    /// to the real server.
    pub(crate) fn sp_open6(
        &mut self,
        f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        h: &crate::synproxy::Handshake,
        out: &mut Outbox<P::Frame>,
    ) {
        if let Some(c) = self.conns6.get_mut(id) {
            c.set_synproxy_pending(h.cookie_isn);
        }
        let ch = self.conns6.update_tcp(id, Dir::Original, crate::wire::TcpFlags::SYN.bits(), cx.now);
        self.state_changed6(id, ch);
        if let Err((f, r)) = self.sp6.open(id, h, f) {
            self.discard(f, r);
        }
        self.sp_send_syn6(id, cx.now, out);
    }

    /// Sends (or resends) our SYN of a pending IPv6 connection to its real server (IPv4 for NAT64).
    fn sp_send_syn6(&mut self, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns6.get(id).copied() else { return };
        let Some(p) = self.sp6.syn_sent(id, now) else { return };
        let toa = crate::conn::bind6::toa_of(&self.services6, &self.nat64, c.service());
        let flow6 = crate::xmit::v6::out_key(&c, Dir::Original);
        let room = if toa { toa::TOA_V6_LEN as u16 } else { 0 };
        let repr = syn_to_server(&p, flow6.sport, flow6.dport, room);
        if crate::xmit::nat64::is_nat64(&c) {
            let v4 = |a: Ipv6Addr| a.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            let flow = FlowKey {
                proto: flow6.proto,
                src: v4(flow6.src),
                dst: v4(flow6.dst),
                sport: flow6.sport,
                dport: flow6.dport,
            };
            let Some(f) = super::tcp::build_tcp(&mut self.pool, &flow, &repr) else {
                self.stats.inc(E::NoMbuf);
                return;
            };
            self.stats.inc(E::SynproxySynsSent);
            return self.send_ip(f, flow.dst, now, out);
        }
        let Some(mut f) = self.pool.alloc() else {
            self.stats.inc(E::NoMbuf);
            return;
        };
        let len = IP6 + repr.buffer_len();
        let built = f.append(ETH + len) && {
            let d = f.data_mut();
            d[12..14].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
            let ip = ipv6::Repr {
                src: flow6.src,
                dst: flow6.dst,
                next_header: ipv6::NH_TCP,
                payload_len: repr.buffer_len() as u16,
                hop_limit: OWN_HOP_LIMIT,
                traffic_class: 0,
            };
            ip.emit(&mut d[ETH..]).is_ok()
                && repr.emit(&mut TcpPacket::new_unchecked(&mut d[ETH + IP6..]), 0.into(), 0.into()).is_ok()
        };
        // Counted as built either way: a frame that could not be filled is dropped by reason.
        self.stats.inc(E::SynproxySynsSent);
        if !built {
            return self.discard(f, D::SynproxyBadSegment);
        }
        ipv6::fill_checksum(&mut f.data_mut()[ETH + IP6..], flow6.src, flow6.dst, ipv6::NH_TCP);
        self.send_ip6(f, flow6.dst, now, out);
    }

    /// A packet of a pending proxied IPv6 connection (the real server has not answered): the
    /// client's are held; the real server's SYN-ACK completes the handshake (consumed) and
    /// releases them; its RST aborts. `f` is the packet as received (IPv6 from the client, IPv6
    /// or, for NAT64, IPv4 from the real server), its TCP header at `ETH + cx.hl`.
    pub(crate) fn sp_pending6(
        &mut self,
        f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let flags = cx.flags;
        let (seq, ack, plen, rs_ts) = {
            let t = TcpPacket::new_unchecked(&f.data()[ETH + cx.hl..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, .. }) => Some(tsval),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), t.payload().len(), ts)
        };
        match dir {
            Dir::Original => {
                let pure = plen == 0
                    && flags.bits() & !crate::wire::TcpFlags::PSH.bits() == crate::wire::TcpFlags::ACK.bits();
                if let Err((f, r)) = self.sp6.client_segment(id, seq, ack, pure, f) {
                    self.discard(f, r);
                }
            }
            Dir::Reply if flags.rst() => {
                self.stats.inc(E::SynproxyRsRefused);
                self.release6(id);
                self.discard(f, D::SynproxyAborted);
            }
            Dir::Reply if flags.syn() && flags.ack() => {
                let est = match self.sp6.server_synack(id, seq, ack, rs_ts) {
                    Ok(e) => e,
                    Err(r) => return self.discard(f, r),
                };
                if let Some(c) = self.conns6.get_mut(id) {
                    c.set_synproxy_established(est.delta, est.ts_delta);
                }
                let ch = self.conns6.update_tcp(id, Dir::Reply, flags.bits(), cx.now);
                self.state_changed6(id, ch);
                self.stats.inc(E::SynproxyHandshakes);
                drop(f);
                let mut held = self.sp6.take_scratch();
                self.sp6.release_held(id, &mut held);
                for fr in held.drain(..) {
                    let mut hcx = *cx;
                    hcx.hashed = None;
                    hcx.hl = ipv6::walk(&fr.data()[ETH..]).map_or(IP6, |w| w.l4);
                    hcx.flags = TcpPacket::new_unchecked(&fr.data()[ETH + hcx.hl..]).flags();
                    self.forward6(fr, &hcx, id, Dir::Original, out);
                }
                self.sp6.put_scratch(held);
            }
            Dir::Reply => self.discard(f, D::SynproxyBadSegment),
        }
    }

    /// The sequence (and timestamp) shift of an established SYN-proxied IPv6 connection, on the
    /// TCP segment at `l4` (family-independent: the checksum is adjusted incrementally).
    pub(crate) fn sp_shift6(&mut self, f: &mut P::Frame, l4: usize, id: ConnId, dir: Dir) -> Result<(), D> {
        let Some(c) = self.conns6.get(id) else { return Err(D::TcpNoConn) };
        if let Some((delta, ts_delta)) = c.seq_shift() {
            let sh = SeqShift { delta, ts_delta };
            let seg = &mut f.data_mut()[l4..];
            let r = match dir {
                Dir::Original => sh.to_server(seg),
                Dir::Reply => sh.to_client(seg),
            };
            r.map_err(|_| D::SynproxyBadSegment)?;
        }
        Ok(())
    }

    /// SYN-proxy's IPv6 timers: secret rotation, SYN retries, give-ups (the connection released).
    pub(crate) fn sp_poll6(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        self.sp6.rotate(now);
        let mut due = due_list();
        let n = self.sp6.due(now, &mut due);
        for &id in &due[..n] {
            if self.sp6.retries_exhausted(id) {
                self.stats.inc(E::SynproxyRsTimeouts);
                self.release6(id);
            } else {
                self.sp_send_syn6(id, now, out);
            }
        }
    }
}

/// Our SYN to the real server: the client's ISN and the options its cookie remembered, the MSS
/// less `toa_room`.
fn syn_to_server(
    p: &crate::synproxy::half_open::Pending,
    sport: u16,
    dport: u16,
    toa_room: u16,
) -> TcpRepr<'static> {
    TcpRepr {
        window: 65_535,
        options: crate::wire::TcpOptionList::linux_syn(
            Some(p.opts.mss.saturating_sub(toa_room)),
            p.opts.sack_perm,
            p.opts.timestamps.map(|(tsval, _)| (tsval, 0)),
            p.opts.wscale,
        ),
        ..TcpRepr::bare(sport, dport, p.client_isn, 0, crate::wire::TcpFlags::SYN)
    }
}
