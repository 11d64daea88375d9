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
pub mod fullnat;

use std::net::Ipv4Addr;

use crate::conn::{Conn, ConnId, Dir};
use crate::flow::{FlowKey, Proto};
use crate::frame::{Frame, FramePool};
use crate::ip4::decrement_ttl;
use crate::outbox::Outbox;
use crate::packet::Ctx;
use crate::stats::DropReason as D;
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

/// The tuple a packet received in `dir` leaves with.
#[inline]
pub fn out_key(c: &Conn, dir: Dir) -> FlowKey {
    match Xlat::of(c) {
        Xlat::FullNat => fullnat::out_key(c, dir),
        _ => unreachable!("modes land next"),
    }
}

/// For an ICMP error received in `dir` about connection `c`: the relayed error's source and
/// destination, and the tuple it must quote. None where the mode relays nothing.
#[inline]
pub fn icmp_relay(c: &Conn, dir: Dir) -> Option<(Ipv4Addr, Ipv4Addr, FlowKey)> {
    match Xlat::of(c) {
        Xlat::FullNat => Some(fullnat::icmp_relay(c, dir)),
        _ => None,
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
        let to = match Xlat::of(&c) {
            Xlat::FullNat => fullnat::rewrite(&mut f, &c, dir),
            _ => unreachable!("modes land next"),
        };
        let Ok(to) = to else {
            return self.discard(f, if c.proto() == Proto::Tcp { D::TcpMalformed } else { D::UdpMalformed });
        };
        if c.proto() == Proto::Tcp {
            if let Err(r) = self.tcp_shift(&mut f, cx, id, dir) {
                return self.discard(f, r);
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
        self.send_ip(f, to, cx.now, out);
    }
}
