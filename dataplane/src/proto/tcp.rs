//! TCP: flag sanity, admission of new connections, the per-segment hooks of a tracked connection
//! (SYN-proxy's sequence shift, timestamp stripping, TOA and the MSS room it needs, the LVS state
//! machine), and the segments the gateway builds itself (RSTs, SYN-proxy's SYN).
//!
//! Invariants:
//! - State is created only for a SYN (or, with SYN-proxy, a handshake-completing ACK) that is
//!   intact end to end, with options a real server will parse the way we did.
//! - The hooks run after the mode's rewrite and before output; a segment a hook cannot handle is
//!   dropped by reason, never sent half-rewritten.
use std::net::Ipv4Addr;

use crate::conn::{ConnId, Dir};
use crate::flow::FlowKey;
use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{reply_macs, Ctx, ETH, OWN_TTL};
use crate::proto::Admit;
use crate::stats::{DropReason as D, Event as E};
use crate::synproxy::SeqShift;
use crate::wire::{self, build, ipv4, toa, Ipv4Packet, TcpFlags, TcpPacket, TcpRepr};
use crate::worker::Worker;
use crate::xmit::Xlat;

/// TCP flag combinations no legitimate stack sends: SYN+FIN, SYN+RST, nothing at all, or anything
/// but a bare SYN or RST without ACK.
#[inline]
fn flags_valid(f: TcpFlags) -> bool {
    let core = f.bits()
        & (TcpFlags::SYN.bits() | TcpFlags::RST.bits() | TcpFlags::FIN.bits() | TcpFlags::ACK.bits());
    if f.syn() && (f.fin() || f.rst()) {
        return false;
    }
    if f.ack() {
        return true;
    }
    core == TcpFlags::SYN.bits() || core == TcpFlags::RST.bits()
}

/// Checks the TCP header and records its flags in `cx`.
#[inline]
pub(crate) fn parse<F: Frame>(f: &F, cx: &mut Ctx) -> Result<(), D> {
    match TcpPacket::new_checked(&f.data()[cx.l4()..]) {
        Ok(t) if flags_valid(t.flags()) => {
            cx.flags = t.flags();
            Ok(())
        }
        Ok(_) => Err(D::TcpBadFlags),
        Err(_) => Err(D::TcpMalformed),
    }
}

/// A bare SYN (no ACK, no RST): the only segment that opens a plain connection.
#[inline]
pub(crate) fn syn_only(cx: &Ctx) -> bool {
    cx.key.proto == crate::flow::Proto::Tcp
        && cx.flags.bits() & (TcpFlags::SYN.bits() | TcpFlags::ACK.bits() | TcpFlags::RST.bits())
            == TcpFlags::SYN.bits()
}

/// A TCP segment the gateway originates (SYN-proxy's SYN to a real server, its RST to a client)
/// from `flow` (our side first), in a fresh frame; output fills in the MACs.
pub(crate) fn build_tcp<P: FramePool>(pool: &mut P, flow: &FlowKey, tcp: &TcpRepr<'_>) -> Option<P::Frame> {
    build_tcp_with(pool, flow, tcp, &[])
}

/// [`build_tcp`] with `payload` (`tcp.payload_len` bytes) after the header, covered by the
/// checksum (the PROXY protocol's header segment).
pub(crate) fn build_tcp_with<P: FramePool>(
    pool: &mut P,
    flow: &FlowKey,
    tcp: &TcpRepr<'_>,
    payload: &[u8],
) -> Option<P::Frame> {
    let mut f = pool.alloc()?;
    if payload.len() != tcp.payload_len || !f.append(build::TCP_AT + tcp.buffer_len()) {
        return None;
    }
    let at = build::TCP_AT + tcp.buffer_len() - payload.len();
    f.data_mut()[at..].copy_from_slice(payload);
    let ip = ipv4::Repr {
        src: flow.src,
        dst: flow.dst,
        protocol: ipv4::PROTO_TCP,
        payload_len: 0,
        ttl: OWN_TTL,
        ident: 0,
        dont_frag: true,
    };
    build::tcp_segment(f.data_mut(), &ip, tcp).ok()?;
    Some(f)
}

impl<P: FramePool> Worker<P> {
    /// A segment of no connection to a service: a SYN (or SYN-proxy's ACK) opens one; anything
    /// else is refused (RST with `rst_on_miss`) or dropped.
    pub(crate) fn tcp_admit(&mut self, f: &P::Frame, cx: &Ctx, svc: u32) -> Admit {
        let flags = cx.flags;
        let syn = syn_only(cx);
        let sp = self.services.list[svc as usize].synproxy;
        // A client's handshake-completing ACK to a SYN-proxied service (it may carry data).
        let sp_ack = sp && flags.ack() && !flags.syn() && !flags.rst() && !flags.fin();
        if self.draining && (syn || sp_ack) {
            self.stats.inc(E::RefusedDraining);
            return Admit::Rst;
        }
        if !syn && !sp_ack {
            return if self.rst_on_miss && !flags.rst() { Admit::Rst } else { Admit::Drop(D::TcpNoConn) };
        }
        let t = TcpPacket::new_unchecked(&f.data()[cx.l4()..]);
        if !t.verify_checksum(cx.key.src, cx.key.dst) {
            return Admit::Drop(D::TcpBadChecksum);
        }
        if t.options_iter().any(|o| o.is_err()) {
            return Admit::Drop(D::TcpBadOption);
        }
        if !sp {
            return Admit::New;
        }
        if syn {
            return Admit::SynproxySyn;
        }
        self.sp_check_ack(f, cx)
    }

    /// The first TCP hook of a forwarded segment, right after the mode's rewrite: SYN-proxy's
    /// sequence and timestamp shift.
    pub(crate) fn tcp_shift(&mut self, f: &mut P::Frame, cx: &Ctx, id: ConnId, dir: Dir) -> Result<(), D> {
        let Some(c) = self.conns.get(id) else { return Err(D::TcpNoConn) };
        if let Some((delta, ts_delta)) = c.seq_shift() {
            // A SYN-proxied connection: the client's sequence space is the cookie's, the real
            // server's is its own; shift between them (and between the two timestamp clocks).
            let sh = SeqShift { delta, ts_delta };
            let seg = &mut f.data_mut()[cx.l4()..];
            let r = match dir {
                Dir::Original => sh.to_server(seg),
                Dir::Reply => sh.to_client(seg),
            };
            r.map_err(|_| D::SynproxyBadSegment)?;
        }
        Ok(())
    }

    /// The hooks that follow the counters (they may grow the segment): timestamps, TOA, MSS, state.
    pub(crate) fn tcp_after(&mut self, f: &mut P::Frame, cx: &Ctx, id: ConnId, dir: Dir, toa: bool) {
        let flags = cx.flags;
        let (toa_done, fullnat) =
            self.conns.get(id).map_or((false, false), |c| (c.toa_done(), c.xlat() == Xlat::FullNat));
        match dir {
            Dir::Original => {
                // Only FULLNAT multiplexes clients onto local ports (the PAWS hazard); the other
                // modes keep the client's tuple.
                if flags.syn() && self.strip_ts && fullnat {
                    TcpPacket::new_unchecked(&mut f.data_mut()[cx.l4()..]).nop_out_timestamps();
                }
                // A fragment cannot grow (its datagram's length is fixed by its last fragment).
                if toa && !toa_done && flags.ack() && !flags.syn() && !cx.fragment {
                    let client = self.conns.get(id).map(|c| c.client_addr());
                    if let Some(client) = client {
                        self.insert_toa(f, client);
                    }
                    if let Some(c) = self.conns.get_mut(id) {
                        c.set_toa_done(true);
                    }
                }
            }
            Dir::Reply => {
                // The client's segments will carry the TOA option too: leave it room under the MSS.
                if toa && flags.syn() && flags.ack() {
                    let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[cx.l4()..]);
                    if let Some(mss) = t.mss_option() {
                        t.set_mss_option(mss.saturating_sub(toa::TOA_LEN as u16));
                    }
                }
            }
        }
        let ch = self.conns.update_tcp(id, dir, flags.bits(), cx.now);
        self.state_changed(id, ch);
    }

    fn insert_toa(&mut self, f: &mut P::Frame, client: (Ipv4Addr, u16)) {
        if !f.append(toa::TOA_LEN) {
            self.stats.inc(E::ToaSkipped);
            return;
        }
        match toa::insert_toa(&mut f.data_mut()[ETH..], client.0, client.1) {
            Ok(_) => self.stats.inc(E::ToaInserted),
            Err(_) => {
                f.trim(toa::TOA_LEN);
                self.stats.inc(E::ToaSkipped);
            }
        }
    }

    /// Answers a TCP segment that matches no connection with a RST, in place (`conn.rst_on_miss`,
    /// and new connections while draining).
    pub(crate) fn send_rst(&mut self, mut f: P::Frame, cx: &Ctx, out: &mut Outbox<P::Frame>) {
        let hl = cx.hl;
        let d = f.data_mut();
        let (src, dst, seq, ack, flags, plen, sport, dport) = {
            let ip = Ipv4Packet::new_unchecked(&d[ETH..]);
            let t = TcpPacket::new_unchecked(ip.payload());
            (
                ip.src_addr(),
                ip.dst_addr(),
                t.seq_number(),
                t.ack_number(),
                t.flags(),
                t.payload().len() as u32,
                t.src_port(),
                t.dst_port(),
            )
        };
        let new_len = hl + wire::tcp::HEADER_LEN;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut d[ETH..]);
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_ttl(OWN_TTL);
            ip.set_total_len(new_len as u16);
        }
        {
            let mut t = TcpPacket::new_unchecked(&mut d[ETH + hl..ETH + new_len]);
            t.set_src_port(dport);
            t.set_dst_port(sport);
            t.set_header_len_raw(wire::tcp::HEADER_LEN);
            if flags.ack() {
                t.set_seq_number(ack);
                t.set_ack_number(0);
                t.set_flags(TcpFlags::RST);
            } else {
                let consumed = plen + u32::from(flags.syn()) + u32::from(flags.fin());
                t.set_seq_number(0);
                t.set_ack_number(seq.wrapping_add(consumed));
                t.set_flags(TcpFlags::RST.union(TcpFlags::ACK));
            }
            t.set_window_len(0);
            t.set_urgent_at(0);
            t.fill_checksum(dst, src);
        }
        reply_macs(&mut f, self.ports[cx.in_port].mac);
        let excess = f.len() - (ETH + new_len);
        f.trim(excess);
        self.stats.inc(E::RstSent);
        out.emit(&self.stats, cx.in_port, f);
    }
}
