//! Neighbour discovery: answering solicitations for our IPv6 addresses, learning neighbours,
//! and asking for them. IPv6's ARP, with the same bounded queues and ageing
//! ([`crate::neigh::Neighbours`] over `Ipv6Addr`).
//!
//! Invariants:
//! - Solicitations are answered for port IPv6 addresses, IPv6 VIPs (NAT64's included) and IPv6
//!   local addresses only, in the solicitation's own buffer, with a solicited, override
//!   advertisement carrying the port's MAC.
//! - Only messages with hop limit 255 (from the link itself), well-formed options and a unicast
//!   link-layer address are used; a solicitation's sender is learned (it will need our answer
//!   anyway), an advertisement only where a worker asked, never for one of our own addresses, so
//!   an unsolicited advertisement cannot poison the cache.
//! - Any worker may have asked: an advertisement visits every worker along the chain ARP replies
//!   take ([`crate::handoff`]); the last consumes it or drops it as unsolicited.
use std::net::Ipv6Addr;

use crate::flow::Millis;
use crate::frame::{Frame, FramePool};
use crate::handoff::HandoffKind;
use crate::l2::PortRt;
use crate::outbox::Outbox;
use crate::packet::{set_eth_dst, Ctx, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::ndp::{self, Kind};
use crate::wire::{EtherType, EthernetAddress};
use crate::worker::Worker;

/// A neighbour solicitation for `ip` from `port`, in a fresh frame (None: no buffer, or the port
/// has no IPv6 address to ask from).
pub(crate) fn ns_request<P: FramePool>(pool: &mut P, port: &PortRt, ip: Ipv6Addr) -> Option<P::Frame> {
    let from = port.addr6?;
    let mut f = pool.alloc()?;
    if !f.append(ETH + ndp::PACKET_LEN) {
        return None;
    }
    let group = ndp::solicited_node(ip);
    let d = f.data_mut();
    d[0..6].copy_from_slice(&ndp::multicast_mac(group).0);
    d[6..12].copy_from_slice(&port.mac.0);
    d[12..14].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
    ndp::emit(&mut d[ETH..], (from, group), Kind::Solicit, ip, port.mac).ok()?;
    Some(f)
}

impl<P: FramePool> Worker<P> {
    pub(crate) fn nd_input(
        &mut self,
        mut f: P::Frame,
        cx: &mut Ctx,
        (src, _dst): (Ipv6Addr, Ipv6Addr),
        hop: u8,
        out: &mut Outbox<P::Frame>,
    ) {
        let m = match ndp::parse(&f.data()[ETH + cx.hl..], hop) {
            Ok(m) => m,
            Err(ndp::Error::HopLimit) => return self.discard(f, D::NdpHopLimit),
            Err(ndp::Error::BadOption) => return self.discard(f, D::NdpBadOption),
            Err(_) => return self.discard(f, D::NdpMalformed),
        };
        let (in_port, now) = (cx.in_port, cx.now);
        let port = self.ports[in_port];
        let stats = &*self.stats;
        let release = |mut fr: P::Frame, mac: EthernetAddress, p: usize| {
            set_eth_dst(&mut fr, mac);
            out.emit(stats, p, fr);
        };
        match m.kind {
            Kind::Solicit => {
                if !self.owns6(m.target) || src.is_unspecified() {
                    return self.discard(f, D::NdpNotOurs);
                }
                let eth_src = {
                    let d = f.data();
                    EthernetAddress([d[6], d[7], d[8], d[9], d[10], d[11]])
                };
                let peer = m.lladdr.unwrap_or(eth_src);
                if peer.is_unicast() && port.holds6(src) && !self.owns6(src) {
                    if let Some(mac) = m.lladdr.filter(|a| a.is_unicast()) {
                        self.neigh6.learn(src, in_port, mac, now, true, release);
                    }
                }
                // The advertisement, in the solicitation's buffer (its length is the NS's with one
                // option, which a solicitation without the option lacks by 8 bytes).
                let want = ETH + ndp::PACKET_LEN;
                let ok = if f.len() < want { f.append(want - f.len()) } else { f.trim(f.len() - want) };
                if !ok {
                    return self.discard(f, D::NdpMalformed);
                }
                let kind = Kind::Advert { solicited: true, override_: true };
                let d = f.data_mut();
                if ndp::emit(&mut d[ETH..], (m.target, src), kind, m.target, port.mac).is_err() {
                    return self.discard(f, D::NdpMalformed);
                }
                d[0..6].copy_from_slice(&peer.0);
                d[6..12].copy_from_slice(&port.mac.0);
                self.stats.inc(E::NdpAdvertsSent);
                out.emit(&self.stats, in_port, f);
            }
            Kind::Advert { .. } => {
                let mut learned = cx.via.is_some_and(|h| h.learned);
                let ok = port.holds6(m.target) && !self.owns6(m.target);
                if let Some(mac) = m.lladdr.filter(|a| a.is_unicast() && ok) {
                    if self.neigh6.learn(m.target, in_port, mac, now, false, release) {
                        self.stats.inc(E::NdpLearned);
                        learned = true;
                    }
                }
                match self.pass_on(f, HandoffKind::ArpChain, cx, learned, out) {
                    Ok(()) => {}
                    Err(f) if learned => {
                        self.stats.inc(E::NdpConsumed);
                        drop(f);
                    }
                    Err(f) => self.discard(f, D::NdpUnsolicited),
                }
            }
        }
    }

    /// Sends a neighbour solicitation for `nh` out of `port` (a neighbour entry just started
    /// waiting).
    pub(crate) fn nd_ask(&mut self, port: usize, nh: Ipv6Addr, out: &mut Outbox<P::Frame>) {
        let pr = self.ports[port];
        match ns_request(&mut self.pool, &pr, nh) {
            Some(req) => {
                self.stats.inc(E::NdpSolicitsSent);
                out.emit(&self.stats, port, req);
            }
            None => self.stats.inc(E::NoMbuf),
        }
    }

    /// The IPv6 neighbours' retries and ageing (with [`crate::neigh::Neighbours::poll`]).
    pub(crate) fn neigh6_poll(&mut self, now: Millis, out: &mut Outbox<P::Frame>) {
        let (pool, ports, stats) = (&mut self.pool, &self.ports, &*self.stats);
        self.neigh6.poll(
            now,
            |ip, port| match ports.get(port).and_then(|p| ns_request(pool, p, ip)) {
                Some(req) => {
                    stats.inc(E::NdpSolicitsSent);
                    out.emit(stats, port, req);
                }
                None => stats.inc(E::NoMbuf),
            },
            |f| {
                stats.dropped(D::NeighUnresolved);
                drop(f);
            },
        );
    }
}
