//! IPv6 and NAT64 fixtures: neighbour discovery, echo, FULLNAT over IPv6 both ways (TCP and
//! UDP), TOA in DPVS's IPv6 format, Packet Too Big, ICMPv6 errors relayed, NAT64 both ways
//! (with its TOA, MSS clamping and ICMP translation), and the hostile IPv6 table. Every output is
//! compared byte for byte with a frame built from scratch (full checksums), or its checksums are
//! recomputed; the accounting invariant is checked after every packet (`H::step`).
use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, Packet as Ipv6Packet, HEADER_LEN as IP6};
use crate::wire::ndp::{self, Kind};
use crate::wire::testkit::ipv6_packet;
use DropReason as D;

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn gw6(port: usize) -> Ipv6Addr {
    [a6("2001:2::1"), a6("2001:2:0:1::1")][port]
}
fn vip6() -> Ipv6Addr {
    a6("2001:2::100")
}
fn nat64_vip() -> Ipv6Addr {
    a6("2001:2::64")
}
fn lip6() -> Ipv6Addr {
    a6("2001:2:0:1::100")
}
const LIP64: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 64);
fn client6(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10 * u16::from(n))
}
fn rs6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x10 + u16::from(i))
}
fn rs6_index(a: Ipv6Addr) -> u8 {
    let i = (a.segments()[7] - 0x10) as u8;
    assert!((1..=3).contains(&i), "{a} is not a real server");
    i
}

/// MSS 1440 (an IPv6 stack on a 1500-byte link), SACK-permitted, timestamps, NOP, wscale 7.
const SYN6_OPTS: [u8; 20] = [2, 4, 5, 0xa0, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7];
const SYN6_OPTS_NO_TS: [u8; 20] = [2, 4, 5, 0xa0, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 7];

/// The dual-stack gateway: the IPv4 setup plus port addresses 2001:2::1/64 and 2001:2:0:1::1/64;
/// service 100: TCP [2001:2::100]:80 rr over [2001:2:0:1::11-13]:80, LIP 2001:2:0:1::100;
/// service 101: UDP [2001:2::100]:53 -> [2001:2:0:1::11]:5353; service 102 (NAT64): TCP
/// [2001:2::64]:80 rr over 198.18.1.11-13:80, LIP 198.18.1.64; service 103 (NAT64): UDP
/// [2001:2::64]:53 -> 198.18.1.11:5353.
fn setup6() -> Setup {
    setup_with(|s| {
        s.ports[0].addr6 = Some(gw6(0));
        s.ports[0].prefix6_len = 64;
        s.ports[1].addr6 = Some(gw6(1));
        s.ports[1].prefix6_len = 64;
        let real6 = |i: u8, port: u16, addr: std::net::IpAddr| RealSetup { addr, ..real(i, port) };
        let svc = |id: u32, proto, vip: Ipv6Addr, vport, laddr: std::net::IpAddr, reals| ServiceSetup {
            id,
            proto,
            vip: vip.into(),
            vport,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: false,
            proxy_protocol: None,
            laddrs: vec![laddr],
            reals,
        };
        s.services.push(svc(
            100,
            Proto::Tcp,
            vip6(),
            80,
            lip6().into(),
            (1..=3).map(|i| real6(i, 80, rs6(i).into())).collect(),
        ));
        s.services.push(svc(101, Proto::Udp, vip6(), 53, lip6().into(), vec![real6(1, 5353, rs6(1).into())]));
        s.services.push(svc(
            102,
            Proto::Tcp,
            nat64_vip(),
            80,
            LIP64.into(),
            (1..=3).map(|i| real6(i, 80, rs(i).into())).collect(),
        ));
        s.services.push(svc(
            103,
            Proto::Udp,
            nat64_vip(),
            53,
            LIP64.into(),
            vec![real6(1, 5353, rs(1).into())],
        ));
    })
}

fn from_client6(n: u8) -> Pb {
    Pb::new(client_mac(n), M_GW0)
}
fn from_rs6(i: u8) -> Pb {
    Pb::new(rs_mac(i), M_GW1)
}
fn to_client6(n: u8) -> Pb {
    Pb::new(M_GW0, client_mac(n))
}
fn to_rs6(i: u8) -> Pb {
    Pb::new(M_GW1, rs_mac(i))
}

/// A neighbour solicitation from `(mac, ip)` for `target`, with the source link-layer option.
fn ns(from: (EthernetAddress, Ipv6Addr), target: Ipv6Addr, hop: u8) -> Vec<u8> {
    let mut p = [0u8; ndp::PACKET_LEN];
    ndp::emit(&mut p, (from.1, ndp::solicited_node(target)), Kind::Solicit, target, from.0).unwrap();
    p[7] = hop;
    Pb::new(from.0, ndp::multicast_mac(ndp::solicited_node(target))).eth(crate::wire::EtherType::Ipv6, &p)
}

/// The gateway's advertisement of `target` on a port with MAC `gw`, to `(mac, ip)`.
fn na(gw: EthernetAddress, target: Ipv6Addr, to: (EthernetAddress, Ipv6Addr)) -> Vec<u8> {
    let mut p = [0u8; ndp::PACKET_LEN];
    let kind = Kind::Advert { solicited: true, override_: true };
    ndp::emit(&mut p, (target, to.1), kind, target, gw).unwrap();
    Pb::new(gw, to.0).eth(crate::wire::EtherType::Ipv6, &p)
}

/// A worker whose IPv4 and IPv6 clients and real servers are resolved (each solicited the
/// gateway's port address and was learned).
fn resolved6(s: &Setup) -> H {
    let mut h = H::resolved(s);
    for n in 1..=3 {
        let want = na(M_GW0, gw6(0), (client_mac(n), client6(n)));
        h.step("NS from a client", &ns((client_mac(n), client6(n)), gw6(0), 255), 0, tx_exact(0, want));
    }
    for i in 1..=3 {
        let want = na(M_GW1, gw6(1), (rs_mac(i), rs6(i)));
        h.step("NS from a real server", &ns((rs_mac(i), rs6(i)), gw6(1), 255), 1, tx_exact(1, want));
    }
    h
}

fn ip6_of(frame: &[u8]) -> Ipv6Packet<&[u8]> {
    Ipv6Packet::new_checked(&frame[ETH..]).expect("an IPv6 frame")
}

/// The upper-layer checksum of an IPv6 frame (no extension headers) against a full recomputation,
/// and the payload length against the frame.
fn verify6(frame: &[u8]) {
    let p = ip6_of(frame);
    assert_eq!(IP6 + p.payload_len() as usize, frame.len() - ETH, "IPv6 payload length vs frame");
    assert!(
        ipv6::verify_checksum(p.payload(), p.src_addr(), p.dst_addr(), p.next_header()),
        "transport checksum over the IPv6 pseudo header"
    );
}

fn ports6(frame: &[u8]) -> (u16, u16) {
    let p = &frame[ETH + IP6..];
    (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))
}

#[test]
fn neighbour_discovery_and_echo() {
    let s = setup6();
    let cl = (client_mac(1), client6(1));
    let r1 = (rs_mac(1), rs6(1));
    let rows = vec![
        case("NS for port 0's IPv6 address", ns(cl, gw6(0), 255), 0, tx_exact(0, na(M_GW0, gw6(0), cl))),
        case("NS for the IPv6 VIP", ns(cl, vip6(), 255), 0, tx_exact(0, na(M_GW0, vip6(), cl))),
        case("NS for the NAT64 VIP", ns(cl, nat64_vip(), 255), 0, tx_exact(0, na(M_GW0, nat64_vip(), cl))),
        case("NS for the IPv6 LIP", ns(r1, lip6(), 255), 1, tx_exact(1, na(M_GW1, lip6(), r1))),
        case("NS for a foreign address", ns(cl, a6("2001:2::77"), 255), 0, Expect::Drop(D::NdpNotOurs)),
        case("NS from off-link (hop limit 64)", ns(cl, vip6(), 64), 0, Expect::Drop(D::NdpHopLimit)),
        case(
            "NS with a zero-length option",
            edit(ns(cl, vip6(), 255), |v| {
                v[ETH + IP6 + 25] = 0;
                let (s, d) = (cl.1, ndp::solicited_node(vip6()));
                ipv6::fill_checksum(&mut v[ETH + IP6..], s, d, ipv6::NH_ICMPV6);
            }),
            0,
            Expect::Drop(D::NdpBadOption),
        ),
        case(
            "NS with an option running past the message",
            edit(ns(cl, vip6(), 255), |v| {
                v[ETH + IP6 + 25] = 3;
                let (s, d) = (cl.1, ndp::solicited_node(vip6()));
                ipv6::fill_checksum(&mut v[ETH + IP6..], s, d, ipv6::NH_ICMPV6);
            }),
            0,
            Expect::Drop(D::NdpBadOption),
        ),
        case(
            "NS with a bad checksum",
            edit(ns(cl, vip6(), 255), |v| v[ETH + IP6 + 2] ^= 1),
            0,
            Expect::Drop(D::Icmpv6BadChecksum),
        ),
        case(
            "unsolicited NA",
            na(client_mac(1), client6(1), (M_GW0, gw6(0))),
            0,
            Expect::Drop(D::NdpUnsolicited),
        ),
        case(
            "echo request to the IPv6 VIP",
            from_client6(1).icmp6(client6(1), vip6(), icmpv6::ECHO_REQUEST, 0, 0x0042_0001, b"ping"),
            0,
            tx_exact(0, to_client6(1).icmp6(vip6(), client6(1), icmpv6::ECHO_REPLY, 0, 0x0042_0001, b"ping")),
        ),
        case(
            "router solicitation",
            from_client6(1).icmp6(client6(1), gw6(0), icmpv6::ROUTER_SOLICIT, 0, 0, &[]),
            0,
            Expect::Drop(D::Icmpv6Type),
        ),
    ];
    for c in rows {
        let mut h = H::new(&s);
        h.run(c);
    }
}

/// The gateway asks for an unresolved IPv6 next hop with a solicitation and holds the packet; the
/// advertisement releases it.
#[test]
fn unresolved_real_server_is_solicited_then_released() {
    let s = setup6();
    let mut h = H::new(&s);
    let want = na(M_GW0, gw6(0), (client_mac(1), client6(1)));
    h.step("client NS", &ns((client_mac(1), client6(1)), gw6(0), 255), 0, tx_exact(0, want));
    let syn = from_client6(1).tcp6((client6(1), 40000), (vip6(), 80), SYN, (1, 0), &SYN6_OPTS_NO_TS, &[]);
    h.w.process(VecFrame::from_bytes(&syn), 0, h.now, &mut h.out);
    let out = h.drain();
    assert_eq!(out.len(), 1, "one solicitation");
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    let p = ip6_of(f);
    let m = ndp::parse(p.payload(), p.hop_limit()).unwrap();
    assert_eq!((m.kind, m.target, m.lladdr), (Kind::Solicit, rs6(1), Some(M_GW1)));
    assert_eq!(p.dst_addr(), ndp::solicited_node(rs6(1)));
    assert_eq!(f[0..6], ndp::multicast_mac(p.dst_addr()).0);
    h.assert_accounting("held");
    assert_eq!(h.w.neigh_held(), 1);
    let mut adv = [0u8; ndp::PACKET_LEN];
    let kind = Kind::Advert { solicited: true, override_: true };
    ndp::emit(&mut adv, (rs6(1), gw6(1)), kind, rs6(1), rs_mac(1)).unwrap();
    let adv = Pb::new(rs_mac(1), M_GW1).eth(crate::wire::EtherType::Ipv6, &adv);
    h.w.process(VecFrame::from_bytes(&adv), 1, h.now, &mut h.out);
    let out = h.drain();
    assert_eq!(out.len(), 1, "the held SYN is released");
    assert_eq!(out[0].1[0..6], rs_mac(1).0);
    verify6(&out[0].1);
    assert_eq!(h.ev(Event::NdpConsumed), 1);
    h.assert_accounting("released");
}

struct Flow6 {
    n: u8,
    cport: u16,
    rs: u8,
    lport: u16,
}

fn syn6(h: &mut H, n: u8, cport: u16) -> Flow6 {
    let input = from_client6(n).tcp6((client6(n), cport), (vip6(), 80), SYN, (7, 0), &SYN6_OPTS, &[]);
    let out = h.step(
        "IPv6 client SYN",
        &input,
        0,
        tx(1, move |got| {
            let p = ip6_of(got);
            let (lport, dport) = ports6(got);
            let i = rs6_index(p.dst_addr());
            assert_eq!(dport, 80);
            let want =
                to_rs6(i).ttl(63).tcp6((lip6(), lport), (rs6(i), 80), SYN, (7, 0), &SYN6_OPTS_NO_TS, &[]);
            assert_frame_eq(got, &want);
            verify6(got);
        }),
    );
    let (lport, _) = ports6(&out[0].1);
    Flow6 { n, cport, rs: rs6_index(ip6_of(&out[0].1).dst_addr()), lport }
}

#[test]
fn fullnat_over_ipv6_both_ways_rr_and_udp() {
    let s = setup6();
    let mut h = resolved6(&s);
    let mut seen = Vec::new();
    for k in 0..3 {
        let fl = syn6(&mut h, 1, 40000 + k);
        seen.push(fl.rs);
        let sa =
            from_rs6(fl.rs).tcp6((rs6(fl.rs), 80), (lip6(), fl.lport), SYN | ACK, (99, 8), &SYNACK_OPTS, &[]);
        let want = to_client6(fl.n).ttl(63).tcp6(
            (vip6(), 80),
            (client6(fl.n), fl.cport),
            SYN | ACK,
            (99, 8),
            &SYNACK_OPTS,
            &[],
        );
        h.step("IPv6 SYN-ACK", &sa, 1, tx_exact(0, want));
        let data =
            from_client6(1).tcp6((client6(1), fl.cport), (vip6(), 80), ACK | PSH, (8, 100), &[], b"GET /");
        let want = to_rs6(fl.rs).ttl(63).tcp6(
            (lip6(), fl.lport),
            (rs6(fl.rs), 80),
            ACK | PSH,
            (8, 100),
            &[],
            b"GET /",
        );
        h.step("IPv6 data", &data, 0, tx_exact(1, want));
    }
    seen.sort();
    assert_eq!(seen, vec![1, 2, 3], "rr over the three IPv6 real servers");
    assert_eq!(h.w.conns6().len(), 3);
    // UDP both ways.
    let q = from_client6(2).udp6((client6(2), 5000), (vip6(), 53), b"query");
    let out = h.step(
        "IPv6 UDP query",
        &q,
        0,
        tx(1, |got| {
            verify6(got);
            assert_eq!(ip6_of(got).dst_addr(), rs6(1));
        }),
    );
    let (lport, _) = ports6(&out[0].1);
    let r = from_rs6(1).udp6((rs6(1), 5353), (lip6(), lport), b"answer");
    let want = to_client6(2).ttl(63).udp6((vip6(), 53), (client6(2), 5000), b"answer");
    h.step("IPv6 UDP answer", &r, 1, tx_exact(0, want));
    // A reply to the LIP matching nothing, a SYN to a port without a service.
    let stray = from_rs6(1).udp6((rs6(1), 5353), (lip6(), 1), b"x");
    h.step("stray reply to the LIP", &stray, 1, Expect::Drop(D::LipNoConn));
    let nosvc = from_client6(1).tcp6((client6(1), 1), (vip6(), 81), SYN, (1, 0), &[], &[]);
    h.step("no service", &nosvc, 0, Expect::Drop(D::NoService));
}

#[test]
fn ipv6_toa_mss_room_and_packet_too_big() {
    let s = setup_with(|s| {
        *s = setup6();
        s.services[2].toa = true;
        s.ports[1].mtu = 1400;
    });
    let mut h = resolved6(&s);
    // The client's MSS 1440 does not fit the server side's 1400-byte MTU: clamped to 1340.
    let input = from_client6(1).tcp6((client6(1), 40000), (vip6(), 80), SYN, (7, 0), &SYN6_OPTS, &[]);
    let out = h.step("SYN", &input, 0, tx(1, verify6));
    let got = &out[0].1;
    let t = TcpPacket::new_checked(&got[ETH + IP6..]).unwrap();
    assert_eq!(t.mss_option(), Some(1340), "1400 - 60");
    assert_eq!(h.ev(Event::MssClamped), 1);
    let (lport, _) = ports6(got);
    let i = rs6_index(ip6_of(got).dst_addr());
    let sa = from_rs6(i).tcp6((rs6(i), 80), (lip6(), lport), SYN | ACK, (99, 8), &SYNACK_OPTS, &[]);
    let out = h.step("SYN-ACK", &sa, 1, tx(0, verify6));
    let t = TcpPacket::new_checked(&out[0].1[ETH + IP6..]).unwrap();
    assert_eq!(t.mss_option(), Some(1460 - 20), "room for the 20-byte IPv6 TOA");
    let ack = from_client6(1).tcp6((client6(1), 40000), (vip6(), 80), ACK, (8, 100), &[], &[]);
    let opt = toa::toa6_option(client6(1), 40000);
    let want = to_rs6(i).ttl(63).tcp6((lip6(), lport), (rs6(i), 80), ACK, (8, 100), &opt, &[]);
    h.step(
        "ACK with IPv6 TOA",
        &ack,
        0,
        tx(1, move |got| {
            assert_frame_eq(got, &want);
            let t = TcpPacket::new_checked(&got[ETH + IP6..]).unwrap();
            assert_eq!(toa::parse_toa6(t.options()), Some((client6(1), 40000)));
        }),
    );
    // 1500 bytes toward the 1400-byte side: Packet Too Big back to the client, from the VIP.
    let big = from_client6(1).tcp6((client6(1), 40000), (vip6(), 80), ACK, (8, 100), &[], &[0x61; 1440]);
    h.step(
        "too big for the server side",
        &big,
        0,
        tx(0, |got| {
            verify6(got);
            let p = ip6_of(got);
            assert_eq!((p.src_addr(), p.dst_addr(), p.payload_len()), (vip6(), client6(1), 1240));
            let m = p.payload();
            assert_eq!((m[0], m[1]), (icmpv6::PACKET_TOO_BIG, 0));
            assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1400);
            let (k, _) = icmpv6::quoted_flow(m).unwrap();
            assert_eq!((k.src, k.dst, k.sport, k.dport), (client6(1), vip6(), 40000, 80));
        }),
    );
    assert_eq!(h.ev(Event::PacketTooBigSent), 1);
    // A Packet Too Big from the server side about LIP -> RS reaches the client about its packet.
    let quoted = ipv6_packet((lip6(), rs6(i)), ipv6::NH_TCP, 63, &[], &{
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&lport.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t
    });
    let ptb = from_rs6(i).icmp6(a6("2001:2:0:1::fe"), lip6(), icmpv6::PACKET_TOO_BIG, 0, 1300, &quoted);
    h.step(
        "PTB relayed to the client",
        &ptb,
        1,
        tx(0, |got| {
            verify6(got);
            let p = ip6_of(got);
            assert_eq!((p.src_addr(), p.dst_addr()), (vip6(), client6(1)));
            let (k, _) = icmpv6::quoted_flow(p.payload()).unwrap();
            assert_eq!((k.src, k.dst, k.sport, k.dport), (client6(1), vip6(), 40000, 80));
        }),
    );
}

#[test]
fn nat64_both_ways_with_toa_and_icmp() {
    let s = setup_with(|s| {
        *s = setup6();
        s.services[4].toa = true;
    });
    let mut h = resolved6(&s);
    // MSS 1440 from the client: fits the IPv4 side's 1460, stays.
    let input =
        from_client6(1).tcp6((client6(1), 40000), (nat64_vip(), 80), SYN, (7, 0), &SYN6_OPTS_NO_TS, &[]);
    let out = h.step(
        "NAT64 SYN",
        &input,
        0,
        tx(1, |got| {
            let ip = ip_of(got);
            let i = rs_index(ip.dst_addr());
            let lport = ports_of(got).0;
            let want = to_rs(i).ttl(63).ident(ip.ident()).dont_frag(false).tcp(
                (LIP64, lport),
                (rs(i), 80),
                SYN,
                (7, 0),
                &SYN6_OPTS_NO_TS,
                &[],
            );
            assert_frame_eq(got, &want);
            verify_checksums(got);
        }),
    );
    let got = &out[0].1;
    let (i, lport) = (rs_index(ip_of(got).dst_addr()), ports_of(got).0);
    // The SYN-ACK: MSS 1460 from the IPv4 server becomes 1440 (TOA's 20 bytes; also mtu6 - 60).
    let sa = from_rs(i).tcp((rs(i), 80), (LIP64, lport), SYN | ACK, (99, 8), &SYNACK_OPTS, &[]);
    let mut opts = SYNACK_OPTS;
    opts[2..4].copy_from_slice(&1440u16.to_be_bytes());
    let want =
        to_client6(1).ttl(63).tcp6((nat64_vip(), 80), (client6(1), 40000), SYN | ACK, (99, 8), &opts, &[]);
    h.step("NAT64 SYN-ACK", &sa, 1, tx_exact(0, want));
    // The ACK carries DPVS's NAT64 TOA: the client's IPv6 address in the IPv4 segment.
    let ack = from_client6(1).tcp6((client6(1), 40000), (nat64_vip(), 80), ACK, (8, 100), &[], &[]);
    h.step(
        "NAT64 ACK with TOA",
        &ack,
        0,
        tx(1, |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!(toa::parse_toa6(t.options()), Some((client6(1), 40000)));
            assert_eq!(t.header_len(), 40);
        }),
    );
    // Data from the server: IPv4 -> IPv6.
    let data = from_rs(i).tcp((rs(i), 80), (LIP64, lport), ACK | PSH, (100, 8), &[], b"hello");
    let want = to_client6(1).ttl(63).tcp6(
        (nat64_vip(), 80),
        (client6(1), 40000),
        ACK | PSH,
        (100, 8),
        &[],
        b"hello",
    );
    h.step("NAT64 data to the client", &data, 1, tx_exact(0, want));
    // Fragmentation-needed from the IPv4 side about LIP -> RS: a Packet Too Big for the client,
    // naming the IPv4 MTU plus 20.
    let quoted = Pb::new(M_GW1, rs_mac(i)).tcp((LIP64, lport), (rs(i), 80), ACK, (8, 100), &[], &[]);
    let fneed = from_rs(i).icmp_error(Ipv4Addr::new(198, 18, 1, 254), LIP64, 3, 4, &quoted[ETH..]);
    let fneed = edit(fneed, |v| {
        // next-hop MTU 1400 in the rest-of-header, and the ICMP checksum redone
        let m = ETH + 20;
        v[m + 6..m + 8].copy_from_slice(&1400u16.to_be_bytes());
        v[m + 2..m + 4].copy_from_slice(&[0, 0]);
        let c = checksum::internet_checksum(&v[m..]);
        v[m + 2..m + 4].copy_from_slice(&c.to_be_bytes());
    });
    h.step(
        "frag-needed becomes Packet Too Big",
        &fneed,
        1,
        tx(0, |got| {
            verify6(got);
            let p = ip6_of(got);
            assert_eq!((p.src_addr(), p.dst_addr()), (nat64_vip(), client6(1)));
            let m = p.payload();
            assert_eq!(m[0], icmpv6::PACKET_TOO_BIG);
            assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1420);
            let (k, _) = icmpv6::quoted_flow(m).unwrap();
            assert_eq!((k.src, k.dst, k.sport, k.dport), (client6(1), nat64_vip(), 40000, 80));
        }),
    );
    // UDP over NAT64, and a datagram without a checksum from the IPv4 side.
    let q = from_client6(2).udp6((client6(2), 5000), (nat64_vip(), 53), b"query");
    let out = h.step(
        "NAT64 UDP query",
        &q,
        0,
        tx(1, |got| {
            verify_checksums(got);
            assert_eq!(ip_of(got).dst_addr(), rs(1));
        }),
    );
    let lport = ports_of(&out[0].1).0;
    let r = from_rs(1).udp(rs(1), 5353, LIP64, lport, b"answer", false);
    let want = to_client6(2).ttl(63).udp6((nat64_vip(), 53), (client6(2), 5000), b"answer");
    h.step("NAT64 UDP answer without checksum", &r, 1, tx_exact(0, want));
    assert_eq!(h.ev(Event::Nat64Translated), 7);
    let stray = from_rs(1).udp(rs(1), 5353, LIP64, 1, b"x", true);
    h.step("stray reply to the NAT64 LIP", &stray, 1, Expect::Drop(D::LipNoConn));
}

/// Hostile IPv6: every one dropped by its own reason, nothing panics, nothing is created.
#[test]
fn hostile_ipv6_table() {
    let s = setup6();
    let syn = || from_client6(1).tcp6((client6(1), 40000), (vip6(), 80), SYN, (7, 0), &SYN6_OPTS, &[]);
    let l4 = syn()[ETH + IP6..].to_vec();
    let with_ext = |first: u8, ext: &[u8]| {
        from_client6(1)
            .eth(crate::wire::EtherType::Ipv6, &ipv6_packet((client6(1), vip6()), first, 64, ext, &l4))
    };
    let hbh = |next: u8| vec![next, 0, 1, 4, 0, 0, 0, 0];
    let rows = vec![
        case("truncated header", syn()[..ETH + 30].to_vec(), 0, Expect::Drop(D::Ipv6Truncated)),
        case(
            "zero payload length",
            edit(syn(), |v| v[ETH + 4..ETH + 6].fill(0)),
            0,
            Expect::Drop(D::Ipv6ZeroPayload),
        ),
        case(
            "huge payload length",
            edit(syn(), |v| v[ETH + 4..ETH + 6].copy_from_slice(&[0xff, 0xff])),
            0,
            Expect::Drop(D::Ipv6PayloadOverrun),
        ),
        case(
            "extension header overrunning the payload",
            with_ext(ipv6::NH_DSTOPTS, &[ipv6::NH_TCP, 40, 1, 4, 0, 0, 0, 0]),
            0,
            Expect::Drop(D::Ipv6ExtOverrun),
        ),
        case(
            "hop-by-hop after destination options",
            with_ext(ipv6::NH_DSTOPTS, &[hbh(ipv6::NH_HOPOPT), hbh(ipv6::NH_TCP)].concat()),
            0,
            Expect::Drop(D::Ipv6ExtLoop),
        ),
        case(
            "routing header twice",
            with_ext(ipv6::NH_ROUTING, &[hbh(ipv6::NH_ROUTING), hbh(ipv6::NH_TCP)].concat()),
            0,
            Expect::Drop(D::Ipv6ExtLoop),
        ),
        case(
            "a fragment",
            with_ext(ipv6::NH_FRAGMENT, &[ipv6::NH_TCP, 0, 0, 1, 0, 0, 0, 9]),
            0,
            Expect::Drop(D::Ipv6Fragment),
        ),
        case("multicast source", edit(syn(), |v| v[ETH + 8] = 0xff), 0, Expect::Drop(D::Ipv6BadSource)),
        case(
            "LAND",
            from_client6(1).tcp6((vip6(), 80), (vip6(), 80), SYN, (7, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv6BadSource),
        ),
        case(
            "SYN with a bad checksum",
            edit(syn(), |v| v[ETH + IP6 + 16] ^= 0x55),
            0,
            Expect::Drop(D::TcpBadChecksum),
        ),
        case(
            "UDP without a checksum (mandatory over IPv6)",
            edit(from_client6(1).udp6((client6(1), 5000), (vip6(), 53), b"q"), |v| {
                v[ETH + IP6 + 6..ETH + IP6 + 8].fill(0)
            }),
            0,
            Expect::Drop(D::UdpBadChecksum),
        ),
        case(
            "hop limit 1",
            from_client6(1).ttl(1).tcp6((client6(1), 40000), (vip6(), 80), SYN, (7, 0), &[], &[]),
            0,
            Expect::Drop(D::TtlExceeded),
        ),
        case(
            "to a foreign address",
            from_client6(1).tcp6((client6(1), 40000), (a6("2001:2::99"), 80), SYN, (7, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv6NotForUs),
        ),
        case(
            "ICMPv6 error quoting nothing we track",
            from_client6(1).icmp6(client6(1), vip6(), icmpv6::DST_UNREACHABLE, 4, 0, &l4[..8]),
            0,
            Expect::Drop(D::Icmpv6Malformed),
        ),
    ];
    run_table(&s, rows);
}

/// Two workers: a real server's IPv6 reply to the IPv6 LIP, and an IPv4 reply to the NAT64 LIP,
/// delivered to the worker that does not own the local port, reach their owner by hand-off and
/// leave translated; every worker's accounting balances (`Mh::deliver`).
#[test]
fn replies_reach_the_owner_of_their_local_port_over_ipv6_and_nat64() {
    use super::multi::Mh;
    let s = setup_with(|s| {
        *s = setup6();
        s.workers = 2;
    });
    let mut m = Mh::resolved(&s);
    for w in 0..2 {
        for n in 1..=3 {
            m.deliver(w, &ns((client_mac(n), client6(n)), gw6(0), 255), 0);
        }
        for i in 1..=3 {
            m.deliver(w, &ns((rs_mac(i), rs6(i)), gw6(1), 255), 1);
        }
    }
    for (vip, cport) in [(vip6(), 40001u16), (nat64_vip(), 40002)] {
        let syn = from_client6(1).tcp6((client6(1), cport), (vip, 80), SYN, (7, 0), &SYN6_OPTS_NO_TS, &[]);
        let sent = m.deliver(0, &syn, 0);
        assert_eq!(sent.len(), 1, "the SYN leaves");
        let (w, port, f) = &sent[0];
        assert_eq!((*w, *port), (0, 1));
        let reply = if vip == vip6() {
            let (lport, _) = ports6(f);
            let i = rs6_index(ip6_of(f).dst_addr());
            assert_eq!(crate::conn::owner(lport, 2), 0, "worker 0 took a port of its own slice");
            from_rs6(i).tcp6((rs6(i), 80), (lip6(), lport), SYN | ACK, (99, 8), &SYNACK_OPTS, &[])
        } else {
            let (lport, _) = ports_of(f);
            let i = rs_index(ip_of(f).dst_addr());
            assert_eq!(crate::conn::owner(lport, 2), 0);
            from_rs(i).tcp((rs(i), 80), (LIP64, lport), SYN | ACK, (99, 8), &SYNACK_OPTS, &[])
        };
        // RSS put the reply on worker 1: it hands it to worker 0, which forwards it.
        let sent = m.deliver(1, &reply, 1);
        assert_eq!(sent.len(), 1, "the reply leaves once");
        let (w, port, f) = &sent[0];
        assert_eq!((*w, *port), (0, 0), "from the owner, to the client side");
        verify6(f);
        let p = ip6_of(f);
        assert_eq!((p.src_addr(), p.dst_addr(), ports6(f)), (vip, client6(1), (80, cport)));
    }
    assert_eq!(m.total_drops(D::LipNoConn), 0);
}

/// SYN-proxy over IPv6 (FULLNAT and NAT64): the SYN is answered with a cookie over the IPv6
/// tuple and creates nothing; a forged ACK is refused; the genuine ACK opens the real server's
/// handshake (an IPv6 SYN, or an IPv4 one for NAT64), is held until the real server's SYN-ACK
/// (consumed), then leaves with its acknowledgement shifted into the real server's sequence space.
#[test]
fn synproxy_over_ipv6_and_nat64() {
    let s = setup_with(|s| {
        *s = setup6();
        s.services[2].synproxy = true;
        s.services[4].synproxy = true;
    });
    let mut h = resolved6(&s);
    for (vip, cport) in [(vip6(), 41000u16), (nat64_vip(), 41001)] {
        let cisn = 0x0100_0000 + u32::from(cport);
        let syn = from_client6(1).tcp6((client6(1), cport), (vip, 80), SYN, (cisn, 0), &SYN6_OPTS_NO_TS, &[]);
        let out = h.step(
            "SYN answered with a cookie",
            &syn,
            0,
            tx(0, move |got| {
                verify6(got);
                let p = ip6_of(got);
                assert_eq!((p.src_addr(), p.dst_addr(), p.hop_limit()), (vip, client6(1), 64));
                let t = TcpPacket::new_checked(p.payload()).unwrap();
                assert_eq!((t.flags(), t.ack_number()), (SYN | ACK, cisn + 1));
            }),
        );
        assert_eq!(h.w.conns6().len(), usize::from(cport - 41000), "a SYN creates nothing");
        let cookie = TcpPacket::new_checked(&out[0].1[ETH + IP6..]).unwrap().seq_number();
        let forged =
            from_client6(2).tcp6((client6(2), cport), (vip, 80), ACK, (cisn + 1, cookie + 1), &[], &[]);
        h.step("an ACK with another client's cookie", &forged, 0, Expect::Drop(D::SynproxyBadCookie));
        let ack = from_client6(1).tcp6((client6(1), cport), (vip, 80), ACK, (cisn + 1, cookie + 1), &[], &[]);
        h.w.process(VecFrame::from_bytes(&ack), 0, h.now, &mut h.out);
        let out = h.drain();
        h.assert_accounting("ACK held, SYN sent");
        assert_eq!(out.len(), 1, "our SYN to the real server");
        let (port, f) = &out[0];
        assert_eq!(*port, 1);
        let (rs_port, lport, i, t_seq) = if vip == vip6() {
            verify6(f);
            let t = TcpPacket::new_checked(&f[ETH + IP6..]).unwrap();
            (80, t.src_port(), rs6_index(ip6_of(f).dst_addr()), t.seq_number())
        } else {
            verify_checksums(f);
            let t = tcp_of(f);
            (80, t.src_port(), rs_index(ip_of(f).dst_addr()), t.seq_number())
        };
        assert_eq!(t_seq, cisn, "the client's ISN");
        let rs_isn = 0x7700_0000;
        let sa = if vip == vip6() {
            from_rs6(i).tcp6(
                (rs6(i), rs_port),
                (lip6(), lport),
                SYN | ACK,
                (rs_isn, cisn + 1),
                &SYNACK_OPTS,
                &[],
            )
        } else {
            from_rs(i).tcp((rs(i), rs_port), (LIP64, lport), SYN | ACK, (rs_isn, cisn + 1), &SYNACK_OPTS, &[])
        };
        h.w.process(VecFrame::from_bytes(&sa), 1, h.now, &mut h.out);
        let out = h.drain();
        h.assert_accounting("handshake completed");
        assert_eq!(out.len(), 1, "the held ACK, released");
        let (port, f) = &out[0];
        assert_eq!(*port, 1);
        let ackn = if vip == vip6() {
            verify6(f);
            TcpPacket::new_checked(&f[ETH + IP6..]).unwrap().ack_number()
        } else {
            verify_checksums(f);
            tcp_of(f).ack_number()
        };
        assert_eq!(ackn, rs_isn + 1, "acknowledgement shifted into the real server's space");
    }
    assert_eq!(h.ev(Event::SynproxyHandshakes), 2);
    assert_eq!(h.w.synproxy_held(), 0);
}

/// Persistence and the hashing schedulers over IPv6 clients: a client keeps its real server
/// across connections (templates keyed by the IPv6 client; sh hashing its folded address).
#[test]
fn persistence_and_sh_over_ipv6_clients() {
    for variant in ["persistence", "sh"] {
        let s = setup_with(|s| {
            *s = setup6();
            match variant {
                "persistence" => s.services[2].persistence_ms = Some(60_000),
                _ => s.services[2].sched = SchedKind::Sh,
            }
        });
        let mut h = resolved6(&s);
        for n in 1..=3u8 {
            let mut picked = Vec::new();
            for k in 0..3u16 {
                let cport = 42000 + u16::from(n) * 10 + k;
                let syn = from_client6(n).tcp6(
                    (client6(n), cport),
                    (vip6(), 80),
                    SYN,
                    (7, 0),
                    &SYN6_OPTS_NO_TS,
                    &[],
                );
                let out = h.step("SYN", &syn, 0, tx(1, verify6));
                picked.push(rs6_index(ip6_of(&out[0].1).dst_addr()));
            }
            assert!(picked.iter().all(|&r| r == picked[0]), "{variant}: client {n} moved: {picked:?}");
        }
        if variant == "persistence" {
            assert_eq!(h.ev(Event::PersistHits), 6, "two later connections per client hit the template");
        }
    }
}

/// Over IPv6 too: with `rst_on_miss` a segment of no connection is answered with a RST, and a SYN
/// while draining with RST|ACK, built in its own buffer with a full checksum.
#[test]
fn rsts_over_ipv6() {
    let s = setup_with(|s| {
        *s = setup6();
        s.conn.rst_on_miss = true;
    });
    let mut h = resolved6(&s);
    let stray = from_client6(1).tcp6((client6(1), 43000), (vip6(), 80), ACK, (5, 900), &[], b"data");
    h.step(
        "stray ACK answered with RST",
        &stray,
        0,
        tx(0, |got| {
            verify6(got);
            let p = ip6_of(got);
            assert_eq!((p.src_addr(), p.dst_addr()), (vip6(), client6(1)));
            let t = TcpPacket::new_checked(p.payload()).unwrap();
            assert_eq!((t.flags(), t.seq_number(), t.src_port(), t.dst_port()), (RST, 900, 80, 43000));
        }),
    );
    h.w.set_draining(true);
    let syn = from_client6(1).tcp6((client6(1), 43001), (vip6(), 80), SYN, (77, 0), &SYN6_OPTS, &[]);
    h.step(
        "SYN while draining",
        &syn,
        0,
        tx(0, |got| {
            verify6(got);
            let p = ip6_of(got);
            let t = TcpPacket::new_checked(p.payload()).unwrap();
            assert_eq!((t.flags(), t.ack_number()), (RST | ACK, 78));
        }),
    );
    assert_eq!(h.w.conns6().len(), 0);
}
