//! DR (LVS direct routing): the client's frame goes to the real server's MAC with its IP packet
//! unchanged but for the TTL. The real server holds the VIP on a non-ARPing interface and replies
//! straight to the client.
//!
//! Invariants:
//! - The real server is on a connected network of a port (the control plane refuses anything
//!   else), so routing to its address yields the port and the real server itself as next hop;
//!   the frame is addressed to that neighbour's MAC while the IP destination stays the VIP.
//! - The port cannot change: the connection's real port is the VIP's.
//! - The gateway sees the client's direction only; the connection's TCP state follows LVS's
//!   INPUT-ONLY table ([`crate::conn::next_state_in`]). A reply routed through the gateway anyway
//!   (`VIP -> client`) matches the connection's reply tuple and is routed unchanged.
use std::net::Ipv4Addr;

use crate::conn::{Conn, Dir};
use crate::flow::FlowKey;

/// The tuple a packet received in `dir` leaves with: unchanged.
#[inline]
pub fn out_key(c: &Conn, dir: Dir) -> FlowKey {
    c.key(dir)
}

/// The next hop to resolve: the real server going in, the client coming back.
#[inline]
pub fn next_hop(c: &Conn, dir: Dir) -> Ipv4Addr {
    match dir {
        Dir::Original => c.rs().0,
        Dir::Reply => c.client_addr().0,
    }
}
