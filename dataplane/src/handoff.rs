//! Passing frames between workers when the NIC did not deliver them to the worker that owns them.
//!
//! RSS spreads packets over workers by a hash of their tuple. A client's packets all land on one
//! worker, which creates the connection and picks its local port from its own slice
//! ([`crate::conn::PortSlice`]); the real server's reply to `LIP:lport` is hashed on another tuple
//! and may land anywhere. Without NIC flow rules the receiving worker passes such a frame to the
//! owner, which it computes from the port alone ([`crate::conn::owner`]): no shared table.
//!
//! Three kinds of frame move:
//! - **Owner**: TCP/UDP to a local address, or an ICMP error quoting a packet from one, goes
//!   straight to the worker owning the local port.
//! - **ArpChain**: an ARP reply may answer a request any worker sent; it visits every worker once
//!   (each learns it if it asked), then is consumed, or dropped as unsolicited if nobody asked.
//! - **IcmpChain**: an ICMP error about a client-side packet (VIP -> client) names no local port;
//!   it visits the workers in turn until one finds the connection, or all have looked.
//!
//! NAT connections have no local port to name their owner: the real server's reply
//! `RS:rport -> client:cport` carries the client's address and port instead. A NAT service's
//! connections therefore live on the worker [`client_owner`] picks from the client's address and
//! port; a client packet that misses on another worker is handed there before admission (so
//! SYN-proxy's cookie is made and checked by one worker), and so is a reply from a NAT real
//! server that misses (**Owner** too).
//!
//! Fragments of TCP and UDP datagrams move too: every fragment first to its datagram's collector
//! (**FragCollect**, a hash of the address pair), which sends it to its connection's owner
//! (**FragOwner**) or, when it cannot name one, along the workers (**FragChain**); see
//! [`crate::frag`].
//!
//! Invariants:
//! - A frame is handed on at most `workers - 1` times along a chain, plus once to a fragment's
//!   collector, so nothing circulates.
//! - The tag travels in the buffer's metadata (the daemon puts it in the mbuf), so the ring
//!   between two workers carries nothing but buffers; one single-producer/single-consumer ring
//!   per ordered pair of workers keeps it lock-free.
use crate::conn::owner;
use crate::frame::FramePool;
use crate::outbox::Outbox;
use crate::packet::Ctx;
use crate::worker::Worker;

/// Why a frame was handed to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffKind {
    Owner = 1,
    ArpChain = 2,
    IcmpChain = 3,
    /// A fragment on its way to its datagram's collector ([`crate::frag`]).
    FragCollect = 4,
    /// A fragment the collector sends to the worker that owns its connection.
    FragOwner = 5,
    /// A fragment the collector sends along the workers to find its connection; `origin` is the
    /// collector.
    FragChain = 6,
}

/// What travels with a handed-off frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    pub kind: HandoffKind,
    /// The port the frame was received on.
    pub in_port: u8,
    /// The worker that received it from the NIC (where a chain ends).
    pub origin: u8,
    /// ArpChain: some worker already learned from this reply.
    pub learned: bool,
}

impl Handoff {
    /// Packs the tag into 32 bits: kind, in_port, origin, flags, one byte each.
    pub fn encode(self) -> u32 {
        (self.kind as u32)
            | (self.in_port as u32) << 8
            | (self.origin as u32) << 16
            | (self.learned as u32) << 24
    }

    pub fn decode(tag: u32) -> Option<Handoff> {
        let kind = match tag & 0xff {
            1 => HandoffKind::Owner,
            2 => HandoffKind::ArpChain,
            3 => HandoffKind::IcmpChain,
            4 => HandoffKind::FragCollect,
            5 => HandoffKind::FragOwner,
            6 => HandoffKind::FragChain,
            _ => return None,
        };
        let flags = tag >> 24;
        if flags > 1 {
            return None;
        }
        Some(Handoff { kind, in_port: (tag >> 8) as u8, origin: (tag >> 16) as u8, learned: flags == 1 })
    }

    /// The next worker of a chain started by `origin`, or None when every worker has seen it.
    pub fn next_in_chain(origin: u16, me: u16, workers: u16) -> Option<u16> {
        let next = (me + 1) % workers.max(1);
        (next != origin).then_some(next)
    }
}

/// The worker owning the NAT connections of client `addr:port`: a multiplicative hash of both,
/// the same on every worker and for either direction (the client's source is the reply's
/// destination).
#[inline]
pub fn client_owner(addr: std::net::Ipv4Addr, port: u16, workers: u16) -> u16 {
    let x = (u64::from(u32::from(addr)) << 16 | u64::from(port)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 32) % u64::from(workers.max(1))) as u16
}

impl<P: FramePool> Worker<P> {
    /// Hands `f` to worker `o` as its owner, unless that is this one or the frame was handed
    /// here already (it reached its owner); gives it back then.
    pub(crate) fn hand_to_worker(
        &mut self,
        f: P::Frame,
        o: u16,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        if self.workers <= 1 || cx.via.is_some() || o == self.index {
            return Err(f);
        }
        let h = Handoff {
            kind: HandoffKind::Owner,
            in_port: cx.in_port as u8,
            origin: self.index as u8,
            learned: false,
        };
        out.hand_to(&self.stats, o, f, h);
        Ok(())
    }

    /// Hands `f` on along the chain of `kind` started at this frame's origin; gives it back when
    /// every worker has seen it (the caller then decides its fate).
    pub(crate) fn pass_on(
        &mut self,
        f: P::Frame,
        kind: HandoffKind,
        cx: &Ctx,
        learned: bool,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        let origin = cx.via.map_or(self.index, |h| h.origin as u16);
        match Handoff::next_in_chain(origin, self.index, self.workers) {
            Some(next) => {
                let h = Handoff { kind, in_port: cx.in_port as u8, origin: origin as u8, learned };
                out.hand_to(&self.stats, next, f, h);
                Ok(())
            }
            None => Err(f),
        }
    }

    /// Hands `f` to the worker owning local port `lport`, unless that is this one (or the frame was
    /// handed over already); gives it back when it stays here.
    pub(crate) fn hand_to_owner(
        &mut self,
        f: P::Frame,
        lport: u16,
        cx: &Ctx,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        let o = owner(lport, self.workers);
        self.hand_to_worker(f, o, cx, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for kind in [
            HandoffKind::Owner,
            HandoffKind::ArpChain,
            HandoffKind::IcmpChain,
            HandoffKind::FragCollect,
            HandoffKind::FragOwner,
            HandoffKind::FragChain,
        ] {
            for in_port in [0u8, 1, 7, 255] {
                for origin in [0u8, 1, 63] {
                    for learned in [false, true] {
                        let h = Handoff { kind, in_port, origin, learned };
                        assert_eq!(Handoff::decode(h.encode()), Some(h));
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_tags_are_refused() {
        assert_eq!(Handoff::decode(0), None);
        assert_eq!(Handoff::decode(7), None);
        assert_eq!(Handoff::decode(1 | 2 << 24), None);
    }

    #[test]
    fn chains_visit_every_worker_once() {
        for workers in 1..=64u16 {
            for origin in 0..workers {
                let mut seen = vec![origin];
                let mut me = origin;
                while let Some(n) = Handoff::next_in_chain(origin, me, workers) {
                    assert!(!seen.contains(&n), "{workers} workers from {origin}: {n} twice");
                    seen.push(n);
                    me = n;
                }
                assert_eq!(seen.len(), workers as usize);
            }
        }
    }
}
