//! ARP for the generator: it answers requests for every address it plays (its client-side address
//! on the client side, every real server on the server side) and learns the gateway's MAC on each
//! side from the reply to its own request.
//!
//! With [`Arp::with_real_macs`] (DR) the server side answers for each real server with a MAC of
//! that server's own ([`real_mac`]) instead of the port's, so the destination MAC of a frame names
//! the real server it was sent to.
//!
//! IPv6 (scenario a's IPv6 and NAT64 variants): neighbour solicitations for the IPv6 addresses
//! the generator plays ([`Arp::with_ipv6`]) are answered with an advertisement in place, the
//! same way; the gateway's MAC is learned by ARP (its ports carry IPv4 too).
//!
//! Invariant: only requests for one of our addresses on that side are answered, and only replies
//! for the address we asked about are learned, so the generator never claims addresses it does not
//! play nor takes a MAC from an unsolicited reply.
use std::net::{Ipv4Addr, Ipv6Addr};

use rvs_dataplane::frame::{Frame, FramePool};
use rvs_dataplane::wire::{arp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame};

use super::Side;

const ETH: usize = 14;

/// The first two bytes of every [`real_mac`]: locally administered, unicast.
pub const REAL_MAC_PREFIX: [u8; 2] = [0x02, 0xd5];

/// The MAC the generator gives real server `a` with [`Arp::with_real_macs`]: the prefix, then the
/// address's four bytes (so a frame's destination MAC names its real server without a table).
pub fn real_mac(a: Ipv4Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([REAL_MAC_PREFIX[0], REAL_MAC_PREFIX[1], o[0], o[1], o[2], o[3]])
}

/// What [`Arp::handle`] made of a frame.
#[derive(Debug)]
pub enum ArpOutcome<F> {
    /// Not ARP: hand it to the engine.
    NotArp(F),
    /// A request for one of our addresses, turned into the reply in place: transmit it.
    Reply(F),
    /// The reply to our request: the gateway's MAC on that side.
    Learned(Ipv4Addr, EthernetAddress),
    /// ARP we do not answer (another address, a reply we did not ask for, malformed).
    Ignored,
}

/// The generator's ARP state for both sides.
#[derive(Debug, Clone)]
pub struct Arp {
    own: [EthernetAddress; 2],
    addrs: [Vec<Ipv4Addr>; 2],
    /// The gateway address asked about on each side.
    asking: [Option<Ipv4Addr>; 2],
    /// The server side answers with [`real_mac`] of each address.
    real_macs: bool,
    /// The IPv6 addresses played on each side.
    addrs6: [Vec<Ipv6Addr>; 2],
}

impl Arp {
    /// `client_addrs`/`server_addrs`: the addresses the generator plays on each side.
    pub fn new(own: [EthernetAddress; 2], client_addrs: Vec<Ipv4Addr>, server_addrs: Vec<Ipv4Addr>) -> Arp {
        Arp {
            own,
            addrs: [client_addrs, server_addrs],
            asking: [None, None],
            real_macs: false,
            addrs6: [vec![], vec![]],
        }
    }

    /// Also answers neighbour solicitations for these IPv6 addresses on each side.
    pub fn with_ipv6(mut self, client: Vec<Ipv6Addr>, server: Vec<Ipv6Addr>) -> Arp {
        self.addrs6 = [client, server];
        self
    }

    /// A neighbour solicitation for one of our IPv6 addresses on `side`, turned into our
    /// advertisement in place; None when `f` is anything else.
    fn answer_ns<F: Frame>(&self, side: Side, f: &mut F) -> Option<()> {
        use rvs_dataplane::wire::{ipv6, ndp};
        let s = side as usize;
        let d = f.data();
        if self.addrs6[s].is_empty() || d.len() < ETH + ipv6::HEADER_LEN || d[12..14] != [0x86, 0xdd] {
            return None;
        }
        let p = ipv6::Packet::new_checked(&d[ETH..]).ok()?;
        if p.next_header() != ipv6::NH_ICMPV6
            || !ipv6::verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), ipv6::NH_ICMPV6)
        {
            return None;
        }
        let m = ndp::parse(p.payload(), p.hop_limit()).ok()?;
        if m.kind != ndp::Kind::Solicit || !self.addrs6[s].contains(&m.target) {
            return None;
        }
        let (asker, asker_mac) = (p.src_addr(), m.lladdr.or_else(|| EthernetAddress::from_slice(&d[6..12]))?);
        let want = ETH + ndp::PACKET_LEN;
        if f.len() < want && !f.append(want - f.len()) || f.len() > want && !f.trim(f.len() - want) {
            return None;
        }
        let kind = ndp::Kind::Advert { solicited: true, override_: true };
        let d = f.data_mut();
        ndp::emit(&mut d[ETH..], (m.target, asker), kind, m.target, self.own[s]).ok()?;
        d[0..6].copy_from_slice(&asker_mac.0);
        d[6..12].copy_from_slice(&self.own[s].0);
        Some(())
    }

    /// The server side answers for each real server with its [`real_mac`] (DR).
    pub fn with_real_macs(mut self) -> Arp {
        self.real_macs = true;
        self
    }

    /// The MAC we answer with for our address `a` on `side`.
    fn mac_for(&self, side: Side, a: Ipv4Addr) -> EthernetAddress {
        match side {
            Side::Server if self.real_macs => real_mac(a),
            _ => self.own[side as usize],
        }
    }

    pub fn plays(&self, side: Side, a: Ipv4Addr) -> bool {
        self.addrs[side as usize].contains(&a)
    }

    /// A broadcast request from our first address on `side` for `target`; remembers that we asked.
    /// It carries that address's MAC (with [`Arp::with_real_macs`], the real server's own), since the
    /// gateway learns its neighbour from the request.
    pub fn request<P: FramePool>(&mut self, side: Side, target: Ipv4Addr, pool: &mut P) -> Option<P::Frame> {
        let s = side as usize;
        let sender = *self.addrs[s].first()?;
        self.asking[s] = Some(target);
        let mut f = pool.alloc()?;
        if !f.append(60) {
            return None;
        }
        let d = f.data_mut();
        d.fill(0);
        let mut e = EthernetFrame::new_unchecked(&mut d[..]);
        e.set_dst_addr(EthernetAddress([0xff; 6]));
        let mac = self.mac_for(side, sender);
        e.set_src_addr(mac);
        e.set_ethertype(EtherType::Arp);
        let r = ArpRepr {
            operation: ArpOperation::Request,
            sender_hw_addr: mac,
            sender_proto_addr: sender,
            target_hw_addr: EthernetAddress([0; 6]),
            target_proto_addr: target,
        };
        r.emit(&mut d[ETH..]).ok()?;
        Some(f)
    }

    /// Answers, learns or passes on a frame received on `side`.
    pub fn handle<F: Frame>(&self, side: Side, mut f: F) -> ArpOutcome<F> {
        let s = side as usize;
        if self.answer_ns(side, &mut f).is_some() {
            return ArpOutcome::Reply(f);
        }
        let d = f.data();
        if d.len() < ETH + arp::PACKET_LEN || d[12..14] != [0x08, 0x06] {
            return ArpOutcome::NotArp(f);
        }
        let Ok(p) = ArpPacket::new_checked(&d[ETH..]) else { return ArpOutcome::Ignored };
        let r = ArpRepr::parse(&p);
        match r.operation {
            ArpOperation::Request if self.plays(side, r.target_proto_addr) => {
                let n = arp::emit_reply(f.data_mut(), &r, self.mac_for(side, r.target_proto_addr));
                match n {
                    Ok(_) => ArpOutcome::Reply(f),
                    Err(_) => ArpOutcome::Ignored,
                }
            }
            ArpOperation::Reply if self.asking[s] == Some(r.sender_proto_addr) => {
                ArpOutcome::Learned(r.sender_proto_addr, r.sender_hw_addr)
            }
            _ => ArpOutcome::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_dataplane::frame::{VecFrame, VecPool};
    use rvs_dataplane::wire::testkit::FrameBuilder;

    const ME: [EthernetAddress; 2] =
        [EthernetAddress([2, 0, 0, 0, 0, 2]), EthernetAddress([2, 0, 0, 0, 1, 2])];
    const GW: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    fn arp() -> Arp {
        Arp::new(ME, vec![Ipv4Addr::new(198, 18, 0, 2)], vec![Ipv4Addr::new(198, 18, 1, 11)])
    }

    fn frame(op: ArpOperation, sender: Ipv4Addr, target: Ipv4Addr) -> VecFrame {
        let repr = ArpRepr {
            operation: op,
            sender_hw_addr: GW,
            sender_proto_addr: sender,
            target_hw_addr: EthernetAddress([0; 6]),
            target_proto_addr: target,
        };
        VecFrame::from_bytes(&FrameBuilder::new(GW, EthernetAddress([0xff; 6])).arp(&repr))
    }

    #[test]
    fn answers_only_our_addresses_on_their_side() {
        let a = arp();
        let gw = Ipv4Addr::new(198, 18, 1, 1);
        let rs = Ipv4Addr::new(198, 18, 1, 11);
        let ArpOutcome::Reply(f) = a.handle(Side::Server, frame(ArpOperation::Request, gw, rs)) else {
            panic!("request for a real server not answered")
        };
        let p = ArpPacket::new_checked(&f.data()[ETH..]).unwrap();
        assert_eq!(
            (p.operation(), p.sender_hw_addr(), p.sender_proto_addr(), p.target_proto_addr()),
            (ArpOperation::Reply, ME[1], rs, gw)
        );
        assert_eq!(&f.data()[0..6], &GW.0);
        assert!(matches!(a.handle(Side::Client, frame(ArpOperation::Request, gw, rs)), ArpOutcome::Ignored));
        let other = Ipv4Addr::new(198, 18, 1, 99);
        assert!(matches!(
            a.handle(Side::Server, frame(ArpOperation::Request, gw, other)),
            ArpOutcome::Ignored
        ));
        assert!(matches!(a.handle(Side::Server, VecFrame::from_bytes(&[0u8; 60])), ArpOutcome::NotArp(_)));
    }

    #[test]
    fn with_real_macs_each_real_server_has_its_own_mac_on_the_server_side_only() {
        let rs = [Ipv4Addr::new(198, 18, 1, 11), Ipv4Addr::new(198, 18, 1, 12)];
        let me = Ipv4Addr::new(198, 18, 0, 2);
        let a = Arp::new(ME, vec![me], rs.to_vec()).with_real_macs();
        let gw = Ipv4Addr::new(198, 18, 1, 1);
        for r in rs {
            let ArpOutcome::Reply(f) = a.handle(Side::Server, frame(ArpOperation::Request, gw, r)) else {
                panic!("request for {r} not answered")
            };
            let p = ArpPacket::new_checked(&f.data()[ETH..]).unwrap();
            assert_eq!((p.sender_hw_addr(), p.sender_proto_addr()), (real_mac(r), r));
            assert_eq!(&f.data()[6..12], &real_mac(r).0, "the frame's source too");
            assert_eq!(&real_mac(r).0[..2], &REAL_MAC_PREFIX);
        }
        assert_ne!(real_mac(rs[0]), real_mac(rs[1]));
        // Our own request (for the gateway's MAC) names the first real server: with its MAC.
        let mut a = a;
        let req = a.request(Side::Server, gw, &mut VecPool::default()).unwrap();
        let p = ArpPacket::new_checked(&req.data()[ETH..]).unwrap();
        assert_eq!((p.sender_hw_addr(), p.sender_proto_addr()), (real_mac(rs[0]), rs[0]));
        assert!(real_mac(rs[0]).0[0] & 1 == 0, "unicast");
        let ArpOutcome::Reply(f) =
            a.handle(Side::Client, frame(ArpOperation::Request, Ipv4Addr::new(198, 18, 0, 1), me))
        else {
            panic!("client side not answered")
        };
        assert_eq!(ArpPacket::new_checked(&f.data()[ETH..]).unwrap().sender_hw_addr(), ME[0]);
    }

    #[test]
    fn learns_only_the_reply_it_asked_for() {
        let mut a = arp();
        let gw = Ipv4Addr::new(198, 18, 0, 1);
        let me = Ipv4Addr::new(198, 18, 0, 2);
        assert!(matches!(a.handle(Side::Client, frame(ArpOperation::Reply, gw, me)), ArpOutcome::Ignored));
        let req = a.request(Side::Client, gw, &mut VecPool::default()).unwrap();
        let p = ArpPacket::new_checked(&req.data()[ETH..]).unwrap();
        assert_eq!((p.sender_proto_addr(), p.target_proto_addr()), (me, gw));
        match a.handle(Side::Client, frame(ArpOperation::Reply, gw, me)) {
            ArpOutcome::Learned(ip, mac) => assert_eq!((ip, mac), (gw, GW)),
            o => panic!("{o:?}"),
        }
        assert!(matches!(a.handle(Side::Server, frame(ArpOperation::Reply, gw, me)), ArpOutcome::Ignored));
    }
}
