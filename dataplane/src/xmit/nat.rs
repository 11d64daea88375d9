//! NAT (LVS masquerading): `client:cport -> VIP:vport` leaves as `client:cport -> RS:rport`, and
//! the real server's reply `RS:rport -> client:cport`, routed back through the gateway, leaves as
//! `VIP:vport -> client:cport`. Only the destination (original direction) or the source (reply
//! direction) changes; checksums are updated incrementally (RFC 1624).
//!
//! Invariants:
//! - The reply tuple indexed is `RS:rport -> client:cport` ([`crate::conn::NewConn::reply_key`]),
//!   so a reply is matched by the connection table alone. A packet from a NAT real server that
//!   matches no connection is dropped as `nat_no_conn` ([`crate::proto`]), never sent out as if
//!   from the VIP.
//! - Multi-core: RSS hashes the reply on its own tuple, so the connection lives on the worker a
//!   hash of the client's address and port picks ([`crate::handoff::client_owner`]); both the
//!   client's new flows and the replies that miss are handed there.
use std::net::Ipv4Addr;

use crate::conn::{Conn, Dir};
use crate::flow::FlowKey;

/// The tuple a packet received in `dir` leaves with: the other direction's tuple, reversed
/// (`client -> RS` going in, `VIP -> client` going out). The rule is FULLNAT's; NAT's reply tuple
/// (`RS:rport -> client:cport`) makes it change one address and port instead of both.
pub use super::fullnat::out_key;
/// Rewrites the destination (to the real server) or the source (back to the VIP); the
/// destination to route to. FULLNAT's rewrite, for the same reason.
pub use super::fullnat::rewrite;

/// An ICMP error from the real-server side (about `client -> RS`) goes to the client about its
/// own packet to the VIP, from the VIP; one from the client side (about `VIP -> client`) goes to
/// the real server about its `RS -> client` packet, keeping its sender (`from`), as LVS does.
#[inline]
pub fn icmp_relay(c: &Conn, dir: Dir, from: Ipv4Addr) -> (Ipv4Addr, Ipv4Addr, FlowKey) {
    match dir {
        Dir::Reply => (c.vip().0, c.client_addr().0, c.client_key()),
        Dir::Original => (from, c.rs().0, c.reply_key()),
    }
}
