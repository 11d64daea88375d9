//! NAT64 (DPVS's): FULLNAT from an IPv6 VIP to IPv4 real servers through IPv4 local addresses.
//! `client6:cport -> VIP6:vport` leaves as the IPv4 `LIP4:lport -> RS4:rport`, and the reply
//! `RS4:rport -> LIP4:lport` leaves as the IPv6 `VIP6:vport -> client6:cport`, headers translated
//! as SIIT (RFC 7915) says ([`crate::wire::siit`]).
//!
//! The connection entry: one `Conn<Ipv6Addr>` in the IPv6 table, its IPv4 side (real server and
//! local address) stored as IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`). Its two tuples are
//! the client's IPv6 tuple and the IPv4 reply's tuple, mapped, so the table indexes both and
//! either direction is one lookup; the entry costs what an IPv6 entry costs (two cache lines)
//! and needs no third entry type. An IPv4 packet to a NAT64 local address is looked up there
//! with its tuple mapped ([`Worker::nat64_input4`]).
//!
//! Invariants:
//! - Only TCP and UDP are translated, plus the ICMP errors about their connections, both ways
//!   (Destination Unreachable, Packet Too Big <-> fragmentation-needed, Time Exceeded); IPv4
//!   options and IPv4 fragments to a NAT64 local address are not (`nat64_untranslatable`).
//! - The transport checksum is adjusted for the pseudo-header change and the ports, never
//!   recomputed over the payload (except a UDP datagram without one, which IPv6 forbids).
//! - MTU: the IPv4 packet is 20 bytes shorter than the IPv6 one (without extension headers). A
//!   client SYN's MSS is clamped to `mtu4 - 40` toward the real server and to `mtu6 - 60` of the
//!   client's side; the real server's SYN-ACK MSS to `mtu6 - 60`, less the 20 bytes TOA takes.
//!   An IPv6 packet too big for the IPv4 way out is answered with Packet Too Big naming
//!   `mtu4 + 20` (at least 1280; below that the translated packet, at most 1260 bytes, goes
//!   without DF and is fragmented); an IPv4 reply too big for the IPv6 way out with DF is
//!   answered with fragmentation-needed naming `mtu6 - 20`.
//! - TOA carries the client's IPv6 address in DPVS's NAT64 format: the 20-byte IPv6 option in
//!   the IPv4 segment ([`crate::wire::toa`]).
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::conn::{Conn, ConnId, Dir};
use crate::flow::{FlowKey, Proto};
use crate::frame::{Frame, FramePool};
use crate::ip4::decrement_ttl;
use crate::ip6::decrement_hop_limit;
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::checksum::{delta16, udp_nonzero};
use crate::wire::ipv6::{self, Packet as Ipv6Packet, HEADER_LEN as IP6};
use crate::wire::{self, icmp, icmpv6, ipv4, siit, toa, EtherType, IcmpPacket, Ipv4Packet, TcpPacket};
use crate::worker::Worker;

/// IPv4 and TCP headers without options.
const TCPIP4_LEN: u16 = 40;
/// IPv6 and TCP headers without options.
const TCPIP6_LEN: u16 = 60;

/// Whether `c` is a NAT64 connection (its real server is an IPv4-mapped address).
#[inline]
pub fn is_nat64(c: &Conn<Ipv6Addr>) -> bool {
    c.rs().0.to_ipv4_mapped().is_some()
}

#[inline]
fn v4(a: Ipv6Addr) -> Ipv4Addr {
    a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Sets the EtherType of the frame (the family changed).
fn set_ethertype<F: Frame>(f: &mut F, t: EtherType) {
    f.data_mut()[12..14].copy_from_slice(&u16::from(t).to_be_bytes());
}

/// Replaces the `old` bytes of IP header in front of the upper layer (which starts at `ETH + old`)
/// by `new` bytes, keeping the Ethernet header in front. False when the buffer cannot.
fn resize_header<F: Frame>(f: &mut F, old: usize, new: usize) -> bool {
    if new > old {
        if !f.prepend(new - old) {
            return false;
        }
        f.data_mut().copy_within(new - old..new - old + ETH, 0);
    } else if old > new {
        let k = old - new;
        f.data_mut().copy_within(0..ETH, k);
        if !f.adj(k) {
            return false;
        }
    }
    true
}

/// Clamps the MSS option of the TCP segment `seg` to `room`; true when it changed.
fn clamp_mss(seg: &mut [u8], room: u16) -> bool {
    let mut t = TcpPacket::new_unchecked(seg);
    match t.mss_option() {
        Some(m) if m > room => t.set_mss_option(room),
        _ => false,
    }
}

impl<P: FramePool> Worker<P> {
    /// The MTU of the port a packet to `to` (IPv4) leaves by.
    fn mtu4(&self, to: Ipv4Addr) -> Option<u16> {
        self.routes.lookup(to).map(|(p, _)| self.ports[p].mtu)
    }

    fn mtu6(&self, to: Ipv6Addr) -> Option<u16> {
        self.routes6.lookup(to).map(|(p, _)| self.ports[p].mtu)
    }

    /// A client's IPv6 packet of NAT64 connection `id`: translated to IPv4 toward its real server.
    pub(crate) fn nat64_to_v4(&mut self, mut f: P::Frame, cx: &Ctx, id: ConnId, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::TcpNoConn) };
        if !decrement_hop_limit(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let (lip, rs) = (v4(c.lip().0), v4(c.rs().0));
        let hl6 = cx.hl;
        if c.proto() == Proto::Tcp {
            if let Err(r) = self.sp_shift6(&mut f, ETH + hl6, id, Dir::Original) {
                return self.discard(f, r);
            }
        }
        let l4_len = f.len() - ETH - hl6;
        let len4 = l4_len + ipv4::HEADER_LEN;
        let Some(mtu4) = self.mtu4(rs) else { return self.discard(f, D::NoRoute) };
        let mut split = None;
        if len4 > usize::from(mtu4) {
            if len4 > siit::DF_ABOVE {
                let room = (u32::from(mtu4) + u32::from(siit::HEADER_DIFF)).max(u32::from(ipv6::MIN_MTU));
                return self.packet_too_big(f, room as u16, cx, out);
            }
            split = Some(mtu4);
        }
        let (src6, dst6, tc, hop, nh) = {
            let p = Ipv6Packet::new_unchecked(&f.data()[ETH..]);
            (
                p.src_addr(),
                p.dst_addr(),
                p.traffic_class(),
                p.hop_limit(),
                if c.proto() == Proto::Tcp { ipv6::NH_TCP } else { ipv6::NH_UDP },
            )
        };
        let to = c.reply_key().reversed();
        let l4 = ETH + hl6;
        {
            let t = &mut f.data_mut()[l4..];
            let (osp, odp) = (wire_get16(t, 0), wire_get16(t, 2));
            let delta = siit::pseudo_delta(
                siit::pseudo6(src6, dst6, nh, l4_len as u16),
                siit::pseudo4(lip, rs, nh, l4_len as u16),
            ) + delta16(osp, to.sport)
                + delta16(odp, to.dport);
            t[0..2].copy_from_slice(&to.sport.to_be_bytes());
            t[2..4].copy_from_slice(&to.dport.to_be_bytes());
            ipv6::adjust_l4(t, nh, delta);
        }
        if c.proto() == Proto::Tcp && cx.flags.syn() && !cx.flags.ack() {
            let in_mtu = self.ports[cx.in_port].mtu;
            let room = mtu4.saturating_sub(TCPIP4_LEN).min(in_mtu.saturating_sub(TCPIP6_LEN));
            // Local ports multiplex clients as in FULLNAT: the PAWS hazard is the same.
            if self.strip_ts {
                TcpPacket::new_unchecked(&mut f.data_mut()[l4..]).nop_out_timestamps();
            }
            if clamp_mss(&mut f.data_mut()[l4..], room) {
                self.stats.inc(E::MssClamped);
            }
        }
        if !resize_header(&mut f, hl6, ipv4::HEADER_LEN) {
            return self.discard(f, D::NoHeadroom);
        }
        self.next_ident = self.next_ident.wrapping_add(1);
        let ident = self.next_ident.wrapping_mul(self.workers).wrapping_add(self.index);
        if siit::emit_v4(&mut f.data_mut()[ETH..], (lip, rs), nh, l4_len as u16, (tc, hop), ident).is_err() {
            return self.discard(f, D::Nat64Untranslatable);
        }
        set_ethertype(&mut f, EtherType::Ipv4);
        self.stats.inc(E::Nat64Translated);
        let bytes = f.len() as u64 - ETH as u64;
        let toa = match self.nat64.real_mut(c.service(), c.real()) {
            Some((s, i)) => {
                s.count_at(i, true, bytes);
                s.toa
            }
            None => false,
        };
        if c.proto() == Proto::Tcp {
            let flags = cx.flags;
            if toa && !c.toa_done() && flags.ack() && !flags.syn() && split.is_none() {
                self.insert_toa64(&mut f, c.client_addr());
                if let Some(c) = self.conns6.get_mut(id) {
                    c.set_toa_done(true);
                }
            }
            let ch = self.conns6.update_tcp(id, Dir::Original, flags.bits(), cx.now);
            self.state_changed6(id, ch);
        } else {
            self.conns6.touch(id, cx.now);
        }
        match split {
            Some(mtu) => self.send_fragmented(f, rs, mtu, cx.now, out),
            None => self.send_ip(f, rs, cx.now, out),
        }
    }

    /// DPVS's NAT64 TOA: the client's IPv6 address and port in the 20-byte option, inserted into
    /// the IPv4 segment in `f`.
    fn insert_toa64(&mut self, f: &mut P::Frame, client: (Ipv6Addr, u16)) {
        let opt = toa::toa6_option(client.0, client.1);
        if !f.append(opt.len()) {
            self.stats.inc(E::ToaSkipped);
            return;
        }
        match wire::tcp::insert_option(&mut f.data_mut()[ETH..], &opt) {
            Ok(_) => self.stats.inc(E::ToaInserted),
            Err(_) => {
                f.trim(opt.len());
                self.stats.inc(E::ToaSkipped);
            }
        }
    }

    /// An IPv4 packet to a NAT64 local address (`cx.hl` is its header length): a real server's
    /// reply, translated to IPv6 toward the client; an echo request, answered; an ICMP error
    /// about a connection, translated to ICMPv6 for the client.
    pub(crate) fn nat64_input4(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let (proto, frag, hl) = {
            let ip = Ipv4Packet::new_unchecked(&f.data()[ETH..]);
            (ip.protocol(), ip.is_fragment(), ip.header_len())
        };
        if frag || hl != ipv4::HEADER_LEN {
            return self.discard(f, D::Nat64Untranslatable);
        }
        if proto == ipv4::PROTO_ICMP {
            let ty = IcmpPacket::new_checked(&f.data()[ETH + hl..]).map(|p| p.msg_type());
            return match ty {
                Ok(icmp::msg::ECHO_REQUEST) => self.icmp_input(f, cx, out),
                Ok(icmp::msg::DEST_UNREACHABLE | icmp::msg::TIME_EXCEEDED) => {
                    self.nat64_icmp4_to_v6(f, cx, out)
                }
                Ok(_) => self.discard(f, D::IcmpType),
                Err(_) => self.discard(f, D::IcmpMalformed),
            };
        }
        let key4 = match wire::flow_key(&f.data()[ETH..]) {
            Ok(k) => k,
            Err(_) if proto == ipv4::PROTO_TCP => return self.discard(f, D::TcpMalformed),
            Err(_) if proto == ipv4::PROTO_UDP => return self.discard(f, D::UdpMalformed),
            Err(_) => return self.discard(f, D::Protocol),
        };
        cx.key = key4;
        let parsed = match key4.proto {
            Proto::Tcp => crate::proto::tcp::parse(&f, cx),
            Proto::Udp => crate::proto::udp::parse(&f, cx),
        };
        if let Err(r) = parsed {
            return self.discard(f, r);
        }
        let f = match self.hand_to_owner(f, key4.dport, cx, out) {
            Ok(()) => return,
            Err(f) => f,
        };
        let key = FlowKey {
            proto: key4.proto,
            src: key4.src.to_ipv6_mapped(),
            dst: key4.dst.to_ipv6_mapped(),
            sport: key4.sport,
            dport: key4.dport,
        };
        match self.conns6.lookup(&key) {
            Some((id, Dir::Reply)) => self.nat64_to_v6(f, cx, id, out),
            _ => self.discard(f, D::LipNoConn),
        }
    }

    /// A real server's IPv4 reply of NAT64 connection `id`: translated to IPv6 toward the client.
    fn nat64_to_v6(&mut self, mut f: P::Frame, cx: &Ctx, id: ConnId, out: &mut Outbox<P::Frame>) {
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::TcpNoConn) };
        if c.synproxy_pending() {
            return self.sp_pending6(f, cx, id, Dir::Reply, out);
        }
        if !decrement_ttl(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let to = c.client_key().reversed();
        let (src4, dst4, tos, ttl, total, df) = {
            let p = Ipv4Packet::new_unchecked(&f.data()[ETH..]);
            let d = f.data();
            (p.src_addr(), p.dst_addr(), d[ETH + 1], p.ttl(), p.total_len() as usize, p.dont_frag())
        };
        let hl = ipv4::HEADER_LEN;
        if c.proto() == Proto::Tcp {
            if let Err(r) = self.sp_shift6(&mut f, ETH + hl, id, Dir::Reply) {
                return self.discard(f, r);
            }
        }
        let l4_len = total - hl;
        let len6 = l4_len + IP6;
        let Some(mtu6) = self.mtu6(to.dst) else { return self.discard(f, D::NoRoute) };
        if len6 > usize::from(mtu6) {
            if !df {
                return self.discard(f, D::MtuExceeded);
            }
            return self.frag_needed(f, mtu6.saturating_sub(siit::HEADER_DIFF), cx, out);
        }
        let nh = if c.proto() == Proto::Tcp { ipv6::NH_TCP } else { ipv6::NH_UDP };
        let l4 = ETH + hl;
        {
            let t = &mut f.data_mut()[l4..];
            let (osp, odp) = (wire_get16(t, 0), wire_get16(t, 2));
            t[0..2].copy_from_slice(&to.sport.to_be_bytes());
            t[2..4].copy_from_slice(&to.dport.to_be_bytes());
            if nh == ipv6::NH_UDP && wire_get16(t, 6) == 0 {
                // IPv4 UDP without a checksum: IPv6 requires one, so it is computed whole.
                let c = siit::full_checksum(siit::pseudo6(to.src, to.dst, nh, l4_len as u16), t);
                t[6..8].copy_from_slice(&udp_nonzero(c).to_be_bytes());
            } else {
                let delta = siit::pseudo_delta(
                    siit::pseudo4(src4, dst4, nh, l4_len as u16),
                    siit::pseudo6(to.src, to.dst, nh, l4_len as u16),
                ) + delta16(osp, to.sport)
                    + delta16(odp, to.dport);
                ipv6::adjust_l4(t, nh, delta);
            }
        }
        let toa = self.nat64.real_mut(c.service(), c.real()).is_some_and(|(s, _)| s.toa);
        if c.proto() == Proto::Tcp && cx.flags.syn() && cx.flags.ack() {
            let toa_room = if toa { toa::TOA_V6_LEN as u16 } else { 0 };
            let seg = &mut f.data_mut()[l4..];
            let mss = TcpPacket::new_unchecked(&*seg).mss_option();
            if let Some(m) = mss {
                let room = m.saturating_sub(toa_room).min(mtu6.saturating_sub(TCPIP6_LEN));
                if clamp_mss(seg, room) {
                    self.stats.inc(E::MssClamped);
                }
            }
        }
        if !resize_header(&mut f, hl, IP6) {
            return self.discard(f, D::NoHeadroom);
        }
        if siit::emit_v6(&mut f.data_mut()[ETH..], (to.src, to.dst), nh, l4_len as u16, (tos, ttl)).is_err() {
            return self.discard(f, D::Nat64Untranslatable);
        }
        set_ethertype(&mut f, EtherType::Ipv6);
        self.stats.inc(E::Nat64Translated);
        let bytes = (f.len() - ETH) as u64;
        if let Some((s, i)) = self.nat64.real_mut(c.service(), c.real()) {
            s.count_at(i, false, bytes);
        }
        if c.proto() == Proto::Tcp {
            let ch = self.conns6.update_tcp(id, Dir::Reply, cx.flags.bits(), cx.now);
            self.state_changed6(id, ch);
        } else {
            self.conns6.touch(id, cx.now);
        }
        self.send_ip6(f, to.dst, cx.now, out);
    }

    /// An ICMPv4 error to a NAT64 local address quoting `LIP4:lport -> RS4:rport`: translated to
    /// the ICMPv6 error the client gets about its `client6 -> VIP6` packet, from the VIP.
    fn nat64_icmp4_to_v6(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let hl = cx.hl;
        let (ty, code, mtu, q) = {
            let Ok(p) = IcmpPacket::new_checked(&f.data()[ETH + hl..]) else {
                return self.discard(f, D::IcmpMalformed);
            };
            let Ok(q) = p.inner() else { return self.discard(f, D::IcmpMalformed) };
            let Some(proto) = Proto::from_number(q.protocol()) else {
                return self.discard(f, D::IcmpUnknownConn);
            };
            let key = FlowKey {
                proto,
                src: q.src_addr(),
                dst: q.dst_addr(),
                sport: q.src_port(),
                dport: q.dst_port(),
            };
            (p.msg_type(), p.msg_code(), p.next_hop_mtu(), key)
        };
        let f = match self.hand_to_owner(f, q.sport, cx, out) {
            Ok(()) => return,
            Err(g) => g,
        };
        let mut f = f;
        let key = FlowKey {
            proto: q.proto,
            src: q.dst.to_ipv6_mapped(),
            dst: q.src.to_ipv6_mapped(),
            sport: q.dport,
            dport: q.sport,
        };
        let Some((id, Dir::Reply)) = self.conns6.lookup(&key) else {
            return self.discard(f, D::IcmpUnknownConn);
        };
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::IcmpUnknownConn) };
        let Some((ty6, code6, param)) = siit::icmp_4to6(ty, code, mtu) else {
            return self.discard(f, D::Nat64Untranslatable);
        };
        // The quoted packet as the client sent it: its IPv6 header, then the quoted transport
        // bytes with the client's ports (their checksum adjusted like the packet's was).
        let client = c.client_key();
        let (qhl, qtotal) = {
            let p = IcmpPacket::new_unchecked(&f.data()[ETH + hl..]);
            p.inner().map(|i| (i.header_len(), i.total_len())).unwrap_or((20, 20))
        };
        let qstart = ETH + hl + icmp::HEADER_LEN + qhl;
        let qbytes = f.data()[qstart..].to_vec();
        let mut quote = Vec::with_capacity(IP6 + qbytes.len());
        quote.resize(IP6, 0);
        let qlen = usize::from(qtotal).saturating_sub(qhl) as u16;
        let nh = if client.proto == Proto::Tcp { ipv6::NH_TCP } else { ipv6::NH_UDP };
        ipv6::Repr {
            src: client.src,
            dst: client.dst,
            next_header: nh,
            payload_len: qlen,
            hop_limit: 1,
            traffic_class: 0,
        }
        .emit(&mut quote)
        .ok();
        quote.extend_from_slice(&qbytes);
        if quote.len() >= IP6 + 4 {
            quote[IP6..IP6 + 2].copy_from_slice(&client.sport.to_be_bytes());
            quote[IP6 + 2..IP6 + 4].copy_from_slice(&client.dport.to_be_bytes());
        }
        let mut buf = [0u8; 1280];
        let Ok(n) = icmpv6::emit_error(&mut buf, (client.dst, client.src), ty6, code6, param, &quote) else {
            return self.discard(f, D::Nat64Untranslatable);
        };
        let want = ETH + n;
        let ok = if f.len() < want { f.append(want - f.len()) } else { f.trim(f.len() - want) };
        if !ok {
            return self.discard(f, D::NoHeadroom);
        }
        f.data_mut()[ETH..].copy_from_slice(&buf[..n]);
        set_ethertype(&mut f, EtherType::Ipv6);
        self.stats.inc(E::Nat64Translated);
        self.stats.inc(E::IcmpErrorsRelayed);
        self.send_ip6(f, client.src, cx.now, out);
    }

    /// An ICMPv6 error from the client's side about NAT64 connection `id` (a `VIP6 -> client6`
    /// packet, received in `dir` = Original): translated to the ICMPv4 error the real server gets
    /// about its `RS4 -> LIP4` packet, from the local address.
    pub(crate) fn nat64_icmp6_to_v4(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::IcmpUnknownConn) };
        if dir != Dir::Original {
            return self.discard(f, D::IcmpUnknownConn);
        }
        let m = ETH + cx.hl;
        let (ty, code, param) = {
            let d = f.data();
            (d[m], d[m + 1], u32::from_be_bytes([d[m + 4], d[m + 5], d[m + 6], d[m + 7]]))
        };
        let Some((ty4, code4, mtu4)) = siit::icmp_6to4(ty, code, param) else {
            return self.discard(f, D::Nat64Untranslatable);
        };
        let reply = c.reply_key();
        let (rs, lip) = (v4(reply.src), v4(reply.dst));
        // The quoted packet as the real server sent it: RS4:rport -> LIP4:lport.
        let inner = m + icmpv6::HEADER_LEN;
        let qplen = Ipv6Packet::new_unchecked(&f.data()[inner..]).payload_len();
        let qbytes = f.data()[inner + IP6..].to_vec();
        let mut quote = vec![0u8; ipv4::HEADER_LEN];
        let nh = if c.proto() == Proto::Tcp { ipv4::PROTO_TCP } else { ipv4::PROTO_UDP };
        ipv4::Repr { src: rs, dst: lip, protocol: nh, payload_len: qplen, ttl: 1, ident: 0, dont_frag: true }
            .emit(&mut quote)
            .ok();
        quote.extend_from_slice(&qbytes[..qbytes.len().min(icmp::QUOTED_L4_LEN.max(8))]);
        if quote.len() >= ipv4::HEADER_LEN + 4 {
            quote[20..22].copy_from_slice(&reply.sport.to_be_bytes());
            quote[22..24].copy_from_slice(&reply.dport.to_be_bytes());
        }
        let icmp_len = icmp::HEADER_LEN + quote.len();
        let want = ETH + ipv4::HEADER_LEN + icmp_len;
        let ok = if f.len() < want { f.append(want - f.len()) } else { f.trim(f.len() - want) };
        if !ok {
            return self.discard(f, D::NoHeadroom);
        }
        let d = f.data_mut();
        let built = icmp::emit_error(&mut d[ETH + ipv4::HEADER_LEN..], ty4, code4, u32::from(mtu4), &quote)
            .is_ok()
            && ipv4::Repr {
                src: lip,
                dst: rs,
                protocol: ipv4::PROTO_ICMP,
                payload_len: icmp_len as u16,
                ttl: crate::packet::OWN_TTL,
                ident: 0,
                dont_frag: false,
            }
            .emit(&mut d[ETH..])
            .is_ok();
        if !built {
            return self.discard(f, D::Nat64Untranslatable);
        }
        set_ethertype(&mut f, EtherType::Ipv4);
        self.stats.inc(E::Nat64Translated);
        self.stats.inc(E::IcmpErrorsRelayed);
        self.send_ip(f, rs, cx.now, out);
    }
}

#[inline]
fn wire_get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
