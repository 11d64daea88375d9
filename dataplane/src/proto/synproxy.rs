//! The worker's side of SYN-proxy: it turns packets into events for the
//! [`SynProxy`](crate::synproxy::SynProxy) state machine and carries out its verdicts (answer a
//! SYN, send the real server its SYN, release or drop what was held, reset the client).
//!
//! Invariants:
//! - The SYN is answered in its own buffer and creates no state.
//! - A connection is bound only for an ACK whose cookie checked out, while the half-open table has
//!   room (see [`crate::proto`]); its half-open entry is opened right after.
//! - Whichever way a proxied handshake ends (established, refused, timed out, the connection
//!   expired), its held packets are released or dropped and counted exactly once.
use crate::conn::{ConnId, Dir};
use crate::flow::{FlowKey, Millis};
use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{reply_macs, Ctx, ETH, OWN_TTL};
use crate::proto::tcp::build_tcp;
use crate::proto::Admit;
use crate::stats::{DropReason as D, Event as E};
use crate::synproxy::half_open::Pending;
use crate::synproxy::proxy::due_list;
use crate::synproxy::{self, Handshake, SYNACK_MAX_LEN};
use crate::wire::{self, toa, Ipv4Packet, TcpFlags, TcpOption, TcpOptionList, TcpPacket, TcpRepr};
use crate::worker::Worker;

/// The SYN the gateway sends a real server for a proxied connection: the client's ISN and
/// options (its MSS less TOA's room, SACK-permitted, its timestamps, window scale) in Linux's order.
fn syn_to_server(p: &Pending, flow: &FlowKey, toa: bool) -> TcpRepr<'static> {
    let mss = p.opts.mss.saturating_sub(if toa { toa::TOA_LEN as u16 } else { 0 });
    TcpRepr {
        window: 65_535,
        options: TcpOptionList::linux_syn(
            Some(mss),
            p.opts.sack_perm,
            p.opts.timestamps.map(|(tsval, _)| (tsval, 0)),
            p.opts.wscale,
        ),
        ..TcpRepr::bare(flow.sport, flow.dport, p.client_isn, 0, TcpFlags::SYN)
    }
}

impl<P: FramePool> Worker<P> {
    /// Answers a client's SYN with a cookie SYN-ACK built in the same buffer. No state.
    pub(crate) fn sp_syn(&mut self, mut f: P::Frame, cx: &Ctx, svc: u32, out: &mut Outbox<P::Frame>) {
        let (client_isn, opts) = {
            let t = TcpPacket::new_unchecked(&f.data()[cx.l4()..]);
            match synproxy::syn_options(&t) {
                Ok(o) => (t.seq_number(), o),
                Err(_) => return self.discard(f, D::TcpBadOption),
            }
        };
        let (isn, tsval) = self.sp.cookie(&cx.key, client_isn, &opts, cx.now);
        let need = ETH + SYNACK_MAX_LEN;
        if f.len() < need && !f.append(need - f.len()) {
            return self.discard(f, D::SynproxyBadSegment);
        }
        let toa = self.services.list[svc as usize].toa;
        let cfg = self.sp.synack_config(if toa { toa::TOA_LEN as u16 } else { 0 });
        let n = match synproxy::syn_to_synack(&mut f.data_mut()[ETH..], isn, tsval, &cfg) {
            Ok(n) => n,
            Err(_) => return self.discard(f, D::SynproxyBadSegment),
        };
        let excess = f.len() - (ETH + n);
        f.trim(excess);
        reply_macs(&mut f, self.ports[cx.in_port].mac);
        self.stats.inc(E::SynproxySynAcks);
        out.emit(&self.stats, cx.in_port, f);
    }

    /// A client's ACK completing the handshake with the gateway: admitted when its cookie checks
    /// out and the half-open table has room.
    pub(crate) fn sp_check_ack(&mut self, f: &P::Frame, cx: &Ctx) -> Admit {
        let (seq, ack, ts) = {
            let t = TcpPacket::new_unchecked(&f.data()[cx.l4()..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), ts)
        };
        match self.sp.check_ack(&cx.key, seq, ack, ts, cx.now) {
            Ok(h) => {
                self.stats.inc(E::SynproxyCookiesValid);
                if self.sp.is_full() {
                    return Admit::Drop(D::SynproxyHalfOpenFull);
                }
                Admit::SynproxyAck(h)
            }
            Err(r) => Admit::Drop(r),
        }
    }

    /// Connection `id` was just bound for handshake `h`: hold the client's ACK until the real
    /// server answers the SYN sent now.
    pub(crate) fn sp_open(
        &mut self,
        f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        h: &Handshake,
        out: &mut Outbox<P::Frame>,
    ) {
        if let Some(c) = self.conns.get_mut(id) {
            c.set_synproxy_pending(h.cookie_isn);
        }
        let ch = self.conns.update_tcp(id, Dir::Original, TcpFlags::SYN.bits(), cx.now);
        self.state_changed(id, ch);
        if let Err((f, r)) = self.sp.open(id, h, f) {
            self.discard(f, r);
        }
        self.sp_send_syn(id, cx.now, out);
    }

    /// Sends (or resends) the SYN of a pending proxied connection to its real server.
    fn sp_send_syn(&mut self, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns.get(id).copied() else { return };
        let Some(p) = self.sp.syn_sent(id, now) else { return };
        let toa = self.services.by_id(c.service()).is_some_and(|s| s.toa);
        // FULLNAT's `LIP -> RS`, NAT's `client -> RS` (SYN-proxy needs replies through the
        // gateway, so DR and TUN never get here).
        let flow = crate::xmit::out_key(&c, Dir::Original);
        let rs = flow.dst;
        let Some(f) = build_tcp(&mut self.pool, &flow, &syn_to_server(&p, &flow, toa)) else {
            self.stats.inc(E::NoMbuf);
            return;
        };
        self.stats.inc(E::SynproxySynsSent);
        self.send_ip(f, rs, now, out);
    }

    /// A packet of a proxied connection whose real server has not answered yet.
    pub(crate) fn sp_pending(
        &mut self,
        f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let flags = cx.flags;
        let (seq, ack, plen, rs_ts) = {
            let t = TcpPacket::new_unchecked(&f.data()[cx.l4()..]);
            let ts = t.options_iter().find_map(|o| match o {
                Ok(TcpOption::Timestamps { tsval, .. }) => Some(tsval),
                _ => None,
            });
            (t.seq_number(), t.ack_number(), t.payload().len(), ts)
        };
        match dir {
            Dir::Original => {
                let pure = plen == 0 && flags.bits() & !TcpFlags::PSH.bits() == TcpFlags::ACK.bits();
                if let Err((f, r)) = self.sp.client_segment(id, seq, ack, pure, f) {
                    self.discard(f, r);
                }
            }
            Dir::Reply if flags.rst() => self.sp_refused(f, cx, id, out),
            Dir::Reply if flags.syn() && flags.ack() => {
                let est = match self.sp.server_synack(id, seq, ack, rs_ts) {
                    Ok(e) => e,
                    Err(r) => return self.discard(f, r),
                };
                if let Some(c) = self.conns.get_mut(id) {
                    c.set_synproxy_established(est.delta, est.ts_delta);
                }
                let ch = self.conns.update_tcp(id, Dir::Reply, flags.bits(), cx.now);
                self.state_changed(id, ch);
                // The client already has its SYN-ACK (ours): this one is consumed.
                self.stats.inc(E::SynproxyHandshakes);
                drop(f);
                // Release what the client sent meanwhile, its handshake ACK first: forwarded and
                // shifted like any later packet, it completes the real server's handshake (and
                // carries TOA where the real server's `toa` module reads it).
                let mut held = self.sp.take_scratch();
                self.sp.release_held(id, &mut held);
                for fr in held.drain(..) {
                    let mut hcx = *cx;
                    hcx.hashed = None;
                    let l4 = {
                        let ip = Ipv4Packet::new_unchecked(&fr.data()[ETH..]);
                        ip.header_len()
                    };
                    hcx.hl = l4;
                    hcx.flags = TcpPacket::new_unchecked(&fr.data()[ETH + l4..]).flags();
                    hcx.key = self.conns.get(id).map_or(cx.key, |c| c.client_key());
                    self.forward(fr, &hcx, id, Dir::Original, out);
                }
                self.sp.put_scratch(held);
            }
            Dir::Reply => self.discard(f, D::SynproxyBadSegment),
        }
    }

    /// The real server refused a proxied connection: its RST becomes the client's. The connection
    /// is released (and what SYN-proxy held for it dropped) by the one release point.
    fn sp_refused(&mut self, mut f: P::Frame, cx: &Ctx, id: ConnId, out: &mut Outbox<P::Frame>) {
        let Some(p) = self.sp.pending(id) else {
            return self.discard(f, D::SynproxyBadSegment);
        };
        let Some(c) = self.conns.get(id).copied() else {
            self.sp.abort(id, &self.stats);
            return self.discard(f, D::SynproxyBadSegment);
        };
        self.stats.inc(E::SynproxyRsRefused);
        let to = crate::xmit::out_key(&c, Dir::Reply);
        if wire::rewrite_l4_tuple(&mut f.data_mut()[ETH..], to.src, to.dst, to.sport, to.dport).is_err() {
            self.release(id);
            return self.discard(f, D::SynproxyBadSegment);
        }
        {
            let d = f.data_mut();
            let mut t = TcpPacket::new_unchecked(&mut d[cx.l4()..]);
            // The client is past its handshake with us: the next sequence number it expects from
            // the server side is cookie + 1, so this RST is in its window.
            t.set_seq_number(p.cookie_isn.wrapping_add(1));
            t.set_ack_number(p.client_isn.wrapping_add(1));
            t.set_flags(TcpFlags::RST.union(TcpFlags::ACK));
            Ipv4Packet::new_unchecked(&mut d[ETH..]).set_ttl(OWN_TTL);
        }
        self.release(id);
        self.send_ip(f, to.dst, cx.now, out);
    }

    /// The real server never answered the SYN retries: the client gets a RST built here.
    fn sp_timeout(&mut self, id: ConnId, now: Millis, out: &mut Outbox<P::Frame>) {
        let Some(p) = self.sp.pending(id) else { return };
        let Some(c) = self.conns.get(id).copied() else {
            // A half-open entry without its connection cannot happen (they leave together);
            // close it rather than retry forever.
            self.sp.abort(id, &self.stats);
            return;
        };
        self.stats.inc(E::SynproxyRsTimeouts);
        self.release(id);
        let to = crate::xmit::out_key(&c, Dir::Reply);
        let rst = TcpFlags::RST.union(TcpFlags::ACK);
        let (seq, ack) = (p.cookie_isn.wrapping_add(1), p.client_isn.wrapping_add(1));
        let Some(f) = build_tcp(&mut self.pool, &to, &TcpRepr::bare(to.sport, to.dport, seq, ack, rst))
        else {
            self.stats.inc(E::NoMbuf);
            return;
        };
        self.stats.inc(E::SynproxyRstsGenerated);
        self.send_ip(f, to.dst, now, out);
    }

    /// SYN-proxy's timers: secret rotation, SYN retries and give-ups.
    pub(crate) fn sp_poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        self.sp.rotate(now);
        let mut due = due_list();
        let n = self.sp.due(now, &mut due);
        for &id in &due[..n] {
            if self.sp.retries_exhausted(id) {
                self.sp_timeout(id, now, out);
            } else {
                self.sp_send_syn(id, now, out);
            }
        }
    }
}
