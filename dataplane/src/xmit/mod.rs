//! Forwarding a packet of a tracked connection: the rewrite of its forwarding mode, chosen by the
//! connection's translation kind (as DPVS's `packet_xmit` is), then the protocol's hooks, the
//! per-real counters and output.
//!
//! Invariants:
//! - Every mode is one file here behind [`Xlat`]; a new mode adds a variant and a file, not
//!   branches in the stages around it.
//! - A packet is relayed only after its TTL is decremented (and dropped when it expires); its
//!   checksums are updated incrementally, never left stale.
//! - Per-real counters count the bytes the real server or client is sent before any option is
//!   inserted, as LVS does.
pub mod dr;
pub mod fullnat;
pub mod nat;
pub mod nat64;
pub mod tun;
pub mod v6;

use std::net::Ipv4Addr;

use crate::conn::{Conn, ConnId, Dir};
use crate::flow::{FlowKey, Proto};
use crate::frame::{Frame, FramePool};
use crate::ip4::decrement_ttl;
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH};
use crate::stats::DropReason as D;
use crate::wire::Ipv4Packet;
use crate::worker::Worker;

/// How a connection's packets are translated: its forwarding mode, chosen per real server as LVS
/// does (ipvsadm's `-b`, `-m`, `-g`, `-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Xlat {
    /// FULLNAT: both addresses and ports rewritten, replies come back to a local address.
    #[default]
    FullNat = 0,
    /// NAT (masquerade): the destination becomes the real server; its replies, routed back
    /// through the gateway, leave from the VIP.
    Nat = 1,
    /// DR (direct routing): the frame goes to the real server's MAC, the IP packet unchanged;
    /// replies bypass the gateway.
    Dr = 2,
    /// TUN: IPv4-in-IPv4 toward the real server; replies bypass the gateway.
    Tun = 3,
}

impl Xlat {
    /// The translation of connection `c`.
    #[inline]
    pub fn of(c: &Conn) -> Xlat {
        c.xlat()
    }

    /// The mode stored in two bits.
    #[inline]
    pub const fn from_bits(b: u8) -> Xlat {
        match b & 3 {
            0 => Xlat::FullNat,
            1 => Xlat::Nat,
            2 => Xlat::Dr,
            _ => Xlat::Tun,
        }
    }

    /// Whether the gateway sees the real server's replies (FULLNAT, NAT); DR and TUN replies
    /// go straight to the client, so their connections track state from input only.
    #[inline]
    pub const fn sees_replies(self) -> bool {
        matches!(self, Xlat::FullNat | Xlat::Nat)
    }

    /// ipvsadm's name (`-Ln`'s Forward column, DPVS's `FullNat`).
    pub const fn name(self) -> &'static str {
        match self {
            Xlat::FullNat => "FullNat",
            Xlat::Nat => "Masq",
            Xlat::Dr => "Route",
            Xlat::Tun => "Tunnel",
        }
    }
}

/// The tuple a packet received in `dir` leaves with (for TUN, the inner packet's).
#[inline]
pub fn out_key(c: &Conn, dir: Dir) -> FlowKey {
    match Xlat::of(c) {
        Xlat::FullNat => fullnat::out_key(c, dir),
        Xlat::Nat => nat::out_key(c, dir),
        Xlat::Dr => dr::out_key(c, dir),
        Xlat::Tun => tun::out_key(c, dir),
    }
}

/// Where a packet of `c` received in `dir` is routed to (TUN: the tunnel's far end).
#[inline]
pub fn next_hop(c: &Conn, dir: Dir) -> Ipv4Addr {
    match Xlat::of(c) {
        Xlat::FullNat => fullnat::out_key(c, dir).dst,
        Xlat::Nat => nat::out_key(c, dir).dst,
        Xlat::Dr => dr::next_hop(c, dir),
        Xlat::Tun => tun::next_hop(c, dir),
    }
}

/// What becomes of an ICMP error about a tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRelay {
    /// Translated: the relayed error's source and destination, and the tuple it must quote.
    Translate(Ipv4Addr, Ipv4Addr, FlowKey),
    /// Passed on unchanged the way the connection's packets in that direction go: DR and TUN
    /// hand a client-side error (say, fragmentation-needed about the real server's direct reply)
    /// to the real server, as LVS does, so its path-MTU discovery works.
    Forward,
}

/// For an ICMP error from `from`, received in `dir` about connection `c`: what to relay.
#[inline]
pub fn icmp_relay(c: &Conn, dir: Dir, from: Ipv4Addr) -> IcmpRelay {
    match Xlat::of(c) {
        Xlat::FullNat => {
            let (s, d, q) = fullnat::icmp_relay(c, dir);
            IcmpRelay::Translate(s, d, q)
        }
        Xlat::Nat => {
            let (s, d, q) = nat::icmp_relay(c, dir, from);
            IcmpRelay::Translate(s, d, q)
        }
        Xlat::Dr | Xlat::Tun => IcmpRelay::Forward,
    }
}

impl<P: FramePool> Worker<P> {
    /// Forwards a packet of connection `id` received in `dir`.
    pub(crate) fn forward(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns.get(id).copied() else { return self.discard(f, D::TcpNoConn) };
        if c.synproxy_pending() {
            return self.sp_pending(f, cx, id, dir, out);
        }
        if !decrement_ttl(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let xlat = Xlat::of(&c);
        let Some((mut f, split)) = self.check_mtu(f, &c, dir, cx, out) else { return };
        let to = match xlat {
            Xlat::FullNat => fullnat::rewrite(&mut f, &c, dir),
            Xlat::Nat => nat::rewrite(&mut f, &c, dir),
            Xlat::Dr => Ok(dr::next_hop(&c, dir)),
            Xlat::Tun => Ok(tun::next_hop(&c, dir)),
        };
        let Ok(to) = to else {
            return self.discard(f, if c.proto() == Proto::Tcp { D::TcpMalformed } else { D::UdpMalformed });
        };
        if c.proto() == Proto::Tcp {
            if let Err(r) = self.tcp_shift(&mut f, cx, id, dir) {
                return self.discard(f, r);
            }
            if c.pp_len() != 0 {
                match dir {
                    Dir::Original => self.pp_to_server(&mut f, cx, id, out),
                    Dir::Reply => {
                        if let Err(r) = self.pp_to_client(&mut f, cx, id) {
                            return self.discard(f, r);
                        }
                    }
                }
            }
        }
        let len = f.len() as u64;
        let toa = match self.services.real_mut(c.service(), c.real()) {
            Some((s, i)) => {
                s.count_at(i, dir == Dir::Original, len);
                s.toa
            }
            None => false,
        };
        if c.proto() == Proto::Tcp {
            self.tcp_after(&mut f, cx, id, dir, toa);
        } else {
            self.conns.touch(id, cx.now);
        }
        self.send_out(f, xlat, dir, to, split, cx, out);
    }

    /// The way out's MTU, checked before the rewrite (against the smallest port MTU first, so the
    /// common case costs nothing; TUN's client side checks its tunnel itself). A DF packet too big
    /// is answered with fragmentation-needed quoting it as received, and consumed (None);
    /// otherwise the frame comes back with the MTU it must be fragmented to, if any.
    #[inline]
    pub(crate) fn check_mtu(
        &mut self,
        f: P::Frame,
        c: &Conn,
        dir: Dir,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) -> Option<(P::Frame, Option<u16>)> {
        let ip_len = f.len() - ETH;
        if ip_len <= self.min_mtu as usize || (Xlat::of(c) == Xlat::Tun && dir == Dir::Original) {
            return Some((f, None));
        }
        match self.mtu_toward(next_hop(c, dir), ip_len) {
            Some(mtu) if Ipv4Packet::new_unchecked(&f.data()[ETH..]).dont_frag() => {
                self.frag_needed(f, mtu, cx, out);
                None
            }
            split => Some((f, split)),
        }
    }

    /// Sends a forwarded packet: in fragments of `split` when [`Worker::check_mtu`] said so, else
    /// by [`Worker::transmit`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_out(
        &mut self,
        f: P::Frame,
        xlat: Xlat,
        dir: Dir,
        to: Ipv4Addr,
        split: Option<u16>,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) {
        match split {
            Some(mtu) => self.send_fragmented(f, to, mtu, cx.now, out),
            None => self.transmit(f, xlat, dir, to, cx, out),
        }
    }

    /// Sends a packet of a connection in mode `xlat`, received in `dir`, toward `to`: through the
    /// tunnel for TUN's client side, routed otherwise (DR's next hop is the real server itself).
    #[inline(always)]
    pub(crate) fn transmit(
        &mut self,
        f: P::Frame,
        xlat: Xlat,
        dir: Dir,
        to: Ipv4Addr,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) {
        if xlat == Xlat::Tun && dir == Dir::Original {
            let syn = cx.key.proto == Proto::Tcp && cx.flags.syn();
            return self.send_tun(f, to, syn, cx, out);
        }
        self.send_ip(f, to, cx.now, out);
    }
}
