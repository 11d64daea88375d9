//! Forwarding an IPv6 connection's packet: the four modes over IPv6 (FULLNAT with IPv6 local
//! addresses, NAT, DR, and TUN as IPv6-in-IPv6, next header 41, RFC 2473), the TCP hooks (state,
//! timestamps, TOA in DPVS's IPv6 format, MSS), the per-real counters and output. NAT64
//! connections live in the same table and go to [`super::nat64`].
//!
//! Invariants:
//! - The rules are the IPv4 modes' ([`super::fullnat`], [`super::nat`], [`super::dr`],
//!   [`super::tun`]) over `Conn<Ipv6Addr>`: the tuple a packet leaves with is the other
//!   direction's tuple reversed (FULLNAT, NAT), or unchanged (DR, TUN).
//! - A packet is relayed only after its hop limit is decremented; its transport checksum is
//!   updated incrementally from the 128-bit address deltas (IPv6 has no header checksum).
//! - A packet larger than its way out is answered with Packet Too Big before any rewrite
//!   ([`Worker::packet_too_big`]); IPv6 is never fragmented on the way.
//! - A client SYN's MSS is clamped to what the way to the real server carries (`mtu - 60`, and
//!   `mtu - 100` through the tunnel), so path-MTU discovery is rarely needed at all.
use std::net::Ipv6Addr;

use crate::conn::{Conn, ConnId, Dir};
use crate::flow::{FlowKey, Proto};
use crate::frame::{Frame, FramePool};
use crate::ip6::{decrement_hop_limit, OWN_HOP_LIMIT};
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::ipv6::{self, Packet as Ipv6Packet, HEADER_LEN as IP6};
use crate::wire::{tcp, toa, TcpPacket};
use crate::worker::Worker;
use crate::xmit::Xlat;

/// IPv6 and TCP headers without options: what an MSS leaves out of the MTU.
const TCPIP6_LEN: u16 = 60;

/// The tuple a packet of `c` received in `dir` leaves with (for TUN, the inner packet's).
#[inline]
pub fn out_key(c: &Conn<Ipv6Addr>, dir: Dir) -> FlowKey<Ipv6Addr> {
    match Xlat::of6(c) {
        Xlat::FullNat | Xlat::Nat => match dir {
            Dir::Original => c.reply_key().reversed(),
            Dir::Reply => c.client_key().reversed(),
        },
        Xlat::Dr | Xlat::Tun => c.key(dir),
    }
}

/// Where a packet of `c` received in `dir` is routed to (DR and TUN: the real server going in).
#[inline]
pub fn next_hop(c: &Conn<Ipv6Addr>, dir: Dir) -> Ipv6Addr {
    match (Xlat::of6(c), dir) {
        (Xlat::Dr | Xlat::Tun, Dir::Original) => c.rs().0,
        (Xlat::Dr | Xlat::Tun, Dir::Reply) => c.client_addr().0,
        _ => out_key(c, dir).dst,
    }
}

/// For an ICMPv6 error received in `dir` about `c`: the relayed error's source, destination and
/// the tuple it must quote (FULLNAT and NAT), or None to pass it on unchanged (DR, TUN).
#[inline]
pub fn icmp_relay(c: &Conn<Ipv6Addr>, dir: Dir) -> Option<(Ipv6Addr, Ipv6Addr, FlowKey<Ipv6Addr>)> {
    match (Xlat::of6(c), dir) {
        (Xlat::FullNat | Xlat::Nat, Dir::Reply) => Some((c.vip().0, c.client_addr().0, c.client_key())),
        (Xlat::FullNat, Dir::Original) => Some((c.lip().0, c.rs().0, c.reply_key())),
        (Xlat::Nat, Dir::Original) => Some((c.vip().0, c.rs().0, c.reply_key())),
        _ => None,
    }
}

impl Xlat {
    /// The translation of IPv6 connection `c`.
    #[inline]
    pub fn of6(c: &Conn<Ipv6Addr>) -> Xlat {
        c.xlat()
    }
}

/// Prepends an IPv6 header `src -> dst`, next header 41, to the IPv6 packet in `f` (Ethernet
/// header kept in front).
pub fn encapsulate6<F: Frame>(f: &mut F, src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), crate::wire::Error> {
    let len = u16::try_from(f.len() - ETH).map_err(|_| crate::wire::Error::NoRoom)?;
    let tc = Ipv6Packet::new_unchecked(&f.data()[ETH..]).traffic_class();
    if !f.prepend(IP6) {
        return Err(crate::wire::Error::NoRoom);
    }
    let d = f.data_mut();
    d.copy_within(IP6..IP6 + ETH, 0);
    let outer = ipv6::Repr {
        src,
        dst,
        next_header: ipv6::NH_IPV6,
        payload_len: len,
        hop_limit: OWN_HOP_LIMIT,
        traffic_class: tc,
    };
    outer.emit(&mut d[ETH..])
}

impl<P: FramePool> Worker<P> {
    /// Forwards a packet of IPv6 connection `id` received in `dir` (the upper layer at `cx.hl`).
    pub(crate) fn forward6(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns6.get(id).copied() else { return self.discard(f, D::TcpNoConn) };
        if c.synproxy_pending() {
            return self.sp_pending6(f, cx, id, dir, out);
        }
        if super::nat64::is_nat64(&c) {
            return self.nat64_to_v4(f, cx, id, out);
        }
        if !decrement_hop_limit(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let xlat = Xlat::of6(&c);
        let tunnel = xlat == Xlat::Tun && dir == Dir::Original;
        let to = next_hop(&c, dir);
        let len = f.len() - ETH + if tunnel { IP6 } else { 0 };
        if let Some(mtu) = self.mtu_toward6(to, len) {
            // Quoted as received, from the address it was sent to; a tunnel's room is smaller.
            let room = if tunnel { mtu.saturating_sub(IP6 as u16) } else { mtu };
            return self.packet_too_big(f, room.max(ipv6::MIN_MTU), cx, out);
        }
        let key = out_key(&c, dir);
        if matches!(xlat, Xlat::FullNat | Xlat::Nat) {
            ipv6::rewrite_l4_tuple(&mut f.data_mut()[ETH..], cx.hl, &key);
        }
        if c.proto() == Proto::Tcp {
            if let Err(r) = self.sp_shift6(&mut f, ETH + cx.hl, id, dir) {
                return self.discard(f, r);
            }
        }
        let bytes = (f.len() - ETH) as u64;
        let mut toa = false;
        let sid = (c.service(), c.real());
        if let Some((s, i)) = self.services6.real_mut(sid.0, sid.1) {
            s.count_at(i, dir == Dir::Original, bytes);
            toa = s.toa;
        }
        if c.proto() == Proto::Tcp {
            self.tcp_after6(&mut f, cx, id, dir, toa, &c, to);
        } else {
            self.conns6.touch(id, cx.now);
        }
        if tunnel {
            let Some(src) = self.routes6.lookup(to).and_then(|(p, _)| self.ports[p].addr6) else {
                return self.discard(f, D::NoRoute);
            };
            if encapsulate6(&mut f, src, to).is_err() {
                return self.discard(f, D::NoHeadroom);
            }
            self.stats.inc(E::TunEncapsulated);
        }
        self.send_ip6(f, to, cx.now, out);
    }

    /// The TCP hooks of a forwarded IPv6 segment: timestamps and MSS on the client's SYN, TOA on
    /// its first ACK, the MSS room TOA needs in the real server's SYN-ACK, the state machine.
    #[allow(clippy::too_many_arguments)]
    fn tcp_after6(
        &mut self,
        f: &mut P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        toa: bool,
        c: &Conn<Ipv6Addr>,
        to: Ipv6Addr,
    ) {
        let flags = cx.flags;
        let l4 = ETH + cx.hl;
        match dir {
            Dir::Original => {
                if flags.syn() && !flags.ack() {
                    let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[l4..]);
                    if self.strip_ts && c.xlat() == Xlat::FullNat {
                        t.nop_out_timestamps();
                    }
                    let tunnel = if c.xlat() == Xlat::Tun { IP6 as u16 } else { 0 };
                    let mtu = self.routes6.lookup(to).map_or(1500, |(p, _)| self.ports[p].mtu);
                    let room = mtu.saturating_sub(TCPIP6_LEN + tunnel);
                    if let Some(mss) = t.mss_option() {
                        if mss > room && t.set_mss_option(room) {
                            self.stats.inc(E::MssClamped);
                        }
                    }
                }
                if toa && !c.toa_done() && flags.ack() && !flags.syn() {
                    self.insert_toa6(f, cx.hl, c.client_addr());
                    if let Some(c) = self.conns6.get_mut(id) {
                        c.set_toa_done(true);
                    }
                }
            }
            Dir::Reply => {
                if toa && flags.syn() && flags.ack() {
                    let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[l4..]);
                    if let Some(mss) = t.mss_option() {
                        t.set_mss_option(mss.saturating_sub(toa::TOA_V6_LEN as u16));
                    }
                }
            }
        }
        let ch = self.conns6.update_tcp(id, dir, flags.bits(), cx.now);
        self.state_changed6(id, ch);
    }

    /// Inserts DPVS's IPv6 TOA option (kind 254, length 20: port, address) into the TCP segment
    /// of the IPv6 packet in `f` whose upper layer is at `hl`.
    fn insert_toa6(&mut self, f: &mut P::Frame, hl: usize, client: (Ipv6Addr, u16)) {
        let opt = toa::toa6_option(client.0, client.1);
        if !f.append(opt.len()) {
            self.stats.inc(E::ToaSkipped);
            return;
        }
        let end = f.len() - opt.len();
        let ip = &mut f.data_mut()[ETH..];
        match tcp::insert_option_at(ip, hl, end - ETH, &opt) {
            Ok(()) => {
                let mut p = Ipv6Packet::new_unchecked(&mut *ip);
                let pl = p.payload_len();
                p.set_payload_len(pl + opt.len() as u16);
                self.stats.inc(E::ToaInserted);
            }
            Err(_) => {
                f.trim(opt.len());
                self.stats.inc(E::ToaSkipped);
            }
        }
    }
}
