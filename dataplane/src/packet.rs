//! The per-packet context: what the stages learn about a frame and pass on, instead of long
//! argument lists and worker fields set around a call.
//!
//! Invariants:
//! - A `Ctx` describes exactly one frame, from the stage that parsed it until its verdict.
//! - `via` is `Some` only for a frame another worker handed over; such a frame is never handed on
//!   by ownership again (it reached its owner), only along a chain (see [`crate::handoff`]).
//! - `l4` is filled by IPv4 input before any transport stage reads it.
use crate::conn::Hashed;
use crate::flow::{FlowKey, Millis, Proto};
use crate::frame::Frame;
use crate::handoff::Handoff;
use crate::wire::{self, EthernetAddress, TcpFlags};
use std::net::Ipv4Addr;

/// Bytes of the Ethernet header in front of every IP packet the dataplane handles.
pub const ETH: usize = wire::ethernet::HEADER_LEN;
/// TTL of packets the gateway originates (echo replies, RSTs, SYN-proxy SYNs).
pub const OWN_TTL: u8 = 64;

/// Which of our addresses an IPv4 packet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// A port's own address.
    Port,
    /// A virtual service address.
    Vip,
    /// A local (FULLNAT source) address: replies from real servers.
    Lip,
}

/// What the stages know about the frame in hand.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// The port the frame was received on.
    pub in_port: usize,
    /// The hand-off tag, when another worker passed the frame here.
    pub via: Option<Handoff>,
    /// The burst's time.
    pub now: Millis,
    /// IPv4 header length (the transport header starts at `ETH + hl`).
    pub hl: usize,
    /// Which of our addresses the packet is for (valid from IPv4 input on).
    pub dst: Dst,
    /// The transport tuple as received (valid from the transport stage on).
    pub key: FlowKey,
    /// TCP flags (empty for UDP).
    pub flags: TcpFlags,
    /// The tuple the burst pipeline parsed ahead from this frame and its hash (see
    /// [`crate::pipeline`]): the transport stage takes both instead of parsing and hashing again.
    pub hashed: Option<(FlowKey, Hashed)>,
    /// The frame is a datagram's first fragment ([`crate::frag`]): nothing may grow it.
    pub fragment: bool,
}

impl Ctx {
    pub fn new(in_port: usize, via: Option<Handoff>, now: Millis) -> Ctx {
        Ctx {
            in_port,
            via,
            now,
            hl: 0,
            dst: Dst::Port,
            key: FlowKey {
                proto: Proto::Udp,
                src: Ipv4Addr::UNSPECIFIED,
                dst: Ipv4Addr::UNSPECIFIED,
                sport: 0,
                dport: 0,
            },
            flags: TcpFlags::NONE,
            hashed: None,
            fragment: false,
        }
    }

    /// The offset of the transport header in the frame.
    #[inline]
    pub fn l4(&self) -> usize {
        ETH + self.hl
    }
}

#[inline]
pub fn set_eth_dst<F: Frame>(f: &mut F, mac: EthernetAddress) {
    f.data_mut()[0..6].copy_from_slice(&mac.0);
}

/// Turns a received frame around on its port: the sender's MAC becomes the destination.
#[inline]
pub fn reply_macs<F: Frame>(f: &mut F, our_mac: EthernetAddress) {
    let d = f.data_mut();
    let mut peer = [0u8; 6];
    peer.copy_from_slice(&d[6..12]);
    d[0..6].copy_from_slice(&peer);
    d[6..12].copy_from_slice(&our_mac.0);
}
