//! FULLNAT: `client:cport -> VIP:vport` leaves as `LIP:lport -> RS:rport`, and the reply
//! `RS:rport -> LIP:lport` leaves as `VIP:vport -> client:cport`. The IPv4 and TCP/UDP checksums
//! are updated incrementally (RFC 1624).
use std::net::Ipv4Addr;

use crate::conn::{Conn, Dir};
use crate::flow::FlowKey;
use crate::frame::Frame;
use crate::packet::ETH;
use crate::wire;

/// The tuple a packet received in `dir` leaves with: the other direction's tuple, reversed.
#[inline]
pub fn out_key(c: &Conn, dir: Dir) -> FlowKey {
    match dir {
        Dir::Original => c.reply_key().reversed(),
        Dir::Reply => c.client_key().reversed(),
    }
}

/// Rewrites addresses and ports; the destination to route to.
#[inline]
pub fn rewrite<F: Frame>(f: &mut F, c: &Conn, dir: Dir) -> Result<Ipv4Addr, wire::Error> {
    let to = out_key(c, dir);
    wire::rewrite_l4_tuple(&mut f.data_mut()[ETH..], to.src, to.dst, to.sport, to.dport)?;
    Ok(to.dst)
}

/// An ICMP error from the real-server side (about `LIP -> RS`) goes to the client, about its own
/// packet; one from the client side (about `VIP -> client`) goes to the real server.
#[inline]
pub fn icmp_relay(c: &Conn, dir: Dir) -> (Ipv4Addr, Ipv4Addr, FlowKey) {
    match dir {
        Dir::Reply => (c.vip().0, c.client_addr().0, c.client_key()),
        Dir::Original => (c.lip().0, c.rs().0, c.reply_key()),
    }
}
