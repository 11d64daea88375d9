//! TUN (LVS IP tunnelling): the client's packet, TTL decremented and otherwise unchanged, is
//! encapsulated IPv4-in-IPv4 (protocol 4, RFC 2003) toward the real server, which decapsulates it
//! with a standard `ipip` device holding the VIP and replies straight to the client.
//!
//! Invariants:
//! - The outer header is `port address -> RS`, protocol 4, TTL [`OWN_TTL`], with the inner
//!   packet's DF bit and identification (LVS copies DF the same way, so path-MTU discovery sees
//!   the tunnel).
//! - Encapsulation adds [`ENCAP_LEN`] bytes. Both halves of path-MTU discovery work: a client SYN's
//!   MSS is clamped to what fits the tunnel (`mtu - 20 - 40`), and a DF packet that no longer fits
//!   is turned into the ICMP fragmentation-needed that answers it, naming `mtu - 20`, sent from
//!   the VIP (the address the client sent to), and counted as `frag_needed_sent`. A packet
//!   without DF that does not fit is encapsulated and the outer packet sent in fragments, which
//!   the real server reassembles before decapsulating (as Linux's ipip does).
//! - The port cannot change, and the gateway sees the client's direction only (INPUT-ONLY state),
//!   as in DR.
use std::net::Ipv4Addr;

use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH, OWN_TTL};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{self, ipv4, Ipv4Packet, TcpPacket};
use crate::worker::Worker;

/// Bytes the outer IPv4 header adds.
pub const ENCAP_LEN: usize = ipv4::HEADER_LEN;
/// IP protocol number of IPv4-in-IPv4.
pub const PROTO_IPIP: u8 = 4;
/// IPv4 and TCP headers without options: what an MSS leaves out of the MTU.
const TCPIP_LEN: usize = 40;

/// The tuple a packet received in `dir` leaves with (unchanged, inside the tunnel), and the next
/// hop (the tunnel's far end going in, the client for a reply routed through the gateway): DR's.
pub use super::dr::{next_hop, out_key};

/// Prepends the outer header to the IP packet in `f` (Ethernet header kept in front). False
/// when the buffer has no headroom.
pub fn encapsulate<F: Frame>(f: &mut F, src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), wire::Error> {
    let (len, ident, df) = {
        let ip = Ipv4Packet::new_unchecked(&f.data()[ETH..]);
        (f.len() - ETH, ip.ident(), ip.dont_frag())
    };
    let payload_len = u16::try_from(len).map_err(|_| wire::Error::NoRoom)?;
    if !f.prepend(ENCAP_LEN) {
        return Err(wire::Error::NoRoom);
    }
    let d = f.data_mut();
    d.copy_within(ENCAP_LEN..ENCAP_LEN + ETH, 0);
    let outer =
        ipv4::Repr { src, dst, protocol: PROTO_IPIP, payload_len, ttl: OWN_TTL, ident, dont_frag: df };
    outer.emit(&mut d[ETH..])?;
    Ok(())
}

impl<P: FramePool> Worker<P> {
    /// Sends `f` (an IP packet to the VIP) through the tunnel to real server `rs`. `syn` says it
    /// is a TCP SYN whose MSS must fit the tunnel.
    pub(crate) fn send_tun(
        &mut self,
        mut f: P::Frame,
        rs: Ipv4Addr,
        syn: bool,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some((port, _)) = self.routes.lookup(rs) else {
            return self.discard(f, D::NoRoute);
        };
        let pr = self.ports[port];
        let room = (pr.mtu as usize).saturating_sub(ENCAP_LEN);
        if syn {
            let fits = room.saturating_sub(TCPIP_LEN) as u16;
            let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[cx.l4()..]);
            if t.mss_option().is_some_and(|m| m > fits) && t.set_mss_option(fits) {
                self.stats.inc(E::MssClamped);
            }
        }
        let too_big = f.len() - ETH > room;
        if too_big && Ipv4Packet::new_unchecked(&f.data()[ETH..]).dont_frag() {
            return self.frag_needed(f, room as u16, cx, out);
        }
        if encapsulate(&mut f, pr.addr, rs).is_err() {
            return self.discard(f, D::NoHeadroom);
        }
        if too_big {
            // Without DF the outer packet is fragmented (its DF is the inner's), as Linux does;
            // the real server reassembles it before decapsulating.
            self.stats.inc(E::TunEncapsulated);
            return self.send_fragmented(f, rs, pr.mtu, cx.now, out);
        }
        self.stats.inc(E::TunEncapsulated);
        self.send_ip(f, rs, cx.now, out);
    }
}
