//! Fixture tables for the forwarding modes beside FULLNAT: NAT, DR and TUN. Each output is compared
//! byte for byte with a frame built from scratch (so every incrementally updated checksum is
//! checked against a full recomputation), every step checks the packet accounting, and the TCP
//! state after each segment is checked against LVS's tables (INPUT-ONLY for DR and TUN).
use super::*;
use crate::conn::TcpState;
use crate::handoff::client_owner;
use crate::xmit::tun::PROTO_IPIP;

/// Service 0 (TCP VIP:80) and service 1 (UDP VIP:53) with every real in mode `x`; NAT maps the
/// TCP port to 8080 to show the port rewrite, DR and TUN cannot change it.
fn mode_setup(x: Xlat) -> Setup {
    let rport = if x == Xlat::Nat { 8080 } else { 80 };
    setup_with(|s| {
        s.services[0].reals = (1..=3).map(|i| RealSetup { xlat: x, ..real(i, rport) }).collect();
        s.services[1].reals = vec![RealSetup { xlat: x, ..real(1, if x == Xlat::Nat { 5353 } else { 53 }) }];
        if x != Xlat::FullNat {
            s.services.iter_mut().for_each(|v| v.laddrs.clear());
        }
    })
}

/// The state of the only connection of client `n`.
fn state_of(h: &H, n: u8) -> TcpState {
    let mut it = h.w.conns().iter().filter(|(_, c)| c.client_addr().0 == client(n));
    let (_, c) = it.next().expect("a connection");
    assert!(it.next().is_none());
    c.state()
}

fn rs_of(h: &H, n: u8) -> u8 {
    let (_, c) = h.w.conns().iter().find(|(_, c)| c.client_addr().0 == client(n)).expect("a connection");
    rs_index(c.rs().0)
}

/// (active, inactive) summed over the reals of service 0.
fn counts(h: &H) -> (u32, u32) {
    h.w.real_counts()
        .iter()
        .filter(|r| r.service == 80)
        .fold((0, 0), |(a, i), r| (a + r.active, i + r.inactive))
}

#[test]
fn nat_rewrites_the_destination_going_in_and_the_source_coming_back() {
    let s = mode_setup(Xlat::Nat);
    let mut h = H::resolved(&s);
    // rr over 1, 2, 3; each SYN leaves as client -> RS:8080, timestamps kept (no PAWS hazard: the
    // client's own tuple reaches the real server).
    for n in 1..=3u8 {
        let syn = from_client(n).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
        let want = to_rs(n).ttl(63).tcp((client(n), 40000), (rs(n), 8080), SYN, (100, 0), &SYN_OPTS, &[]);
        h.step("NAT client SYN", &syn, 0, tx_exact(1, want));
        assert_eq!(rs_of(&h, n), n, "rr order");
        assert_eq!(state_of(&h, n), TcpState::SynRecv);
    }
    let synack = from_rs(2).tcp((rs(2), 8080), (client(2), 40000), SYN | ACK, (900, 101), &SYNACK_OPTS, &[]);
    let want =
        to_client(2).ttl(63).tcp((VIP, 80), (client(2), 40000), SYN | ACK, (900, 101), &SYNACK_OPTS, &[]);
    h.step("NAT RS SYN-ACK", &synack, 1, tx_exact(0, want));
    // OUTPUT: the real server's SYN-ACK leaves SYN_RECV as it is; the client's ACK establishes.
    assert_eq!(state_of(&h, 2), TcpState::SynRecv);
    assert_eq!(counts(&h), (0, 3));
    let data = from_client(2).tcp((client(2), 40000), (VIP, 80), PSH | ACK, (101, 901), &[], b"GET /\r\n");
    let want =
        to_rs(2).ttl(63).tcp((client(2), 40000), (rs(2), 8080), PSH | ACK, (101, 901), &[], b"GET /\r\n");
    h.step("NAT client data", &data, 0, tx_exact(1, want));
    assert_eq!(state_of(&h, 2), TcpState::Established);
    assert_eq!(counts(&h), (1, 2));
    let body = b"hello"; // odd length
    let reply = from_rs(2).tcp((rs(2), 8080), (client(2), 40000), PSH | ACK, (901, 108), &[], body);
    let want = to_client(2).ttl(63).tcp((VIP, 80), (client(2), 40000), PSH | ACK, (901, 108), &[], body);
    h.step("NAT RS data", &reply, 1, tx_exact(0, want));
    // Client FIN first: CLOSE_WAIT (INPUT table: the gateway sees both directions).
    let fin = from_client(2).tcp((client(2), 40000), (VIP, 80), FIN | ACK, (108, 906), &[], &[]);
    let want = to_rs(2).ttl(63).tcp((client(2), 40000), (rs(2), 8080), FIN | ACK, (108, 906), &[], &[]);
    h.step("NAT client FIN", &fin, 0, tx_exact(1, want));
    assert_eq!(state_of(&h, 2), TcpState::CloseWait);
    assert_eq!(counts(&h), (0, 3));

    // A real server's packet that matches no connection is never sent as if from the VIP.
    let stray = from_rs(1).tcp((rs(1), 8080), (client(1), 41000), ACK, (1, 1), &[], &[]);
    h.step("NAT stray reply", &stray, 1, Expect::Drop(DropReason::NatNoConn));
    // Nor is a packet from elsewhere to a client.
    let transit = from_rs(1).tcp((rs(1), 9999), (client(1), 40000), ACK, (1, 1), &[], &[]);
    h.step("not from a NAT real server", &transit, 1, Expect::Drop(DropReason::NotForUs));
}

#[test]
fn nat_udp_and_icmp_errors() {
    let s = mode_setup(Xlat::Nat);
    let mut h = H::resolved(&s);
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"query", true);
    let sent = to_rs(1).ttl(63).udp(client(1), 5000, rs(1), 5353, b"query", true);
    h.step("NAT UDP query", &q, 0, tx_exact(1, sent.clone()));
    let a = from_rs(1).udp(rs(1), 5353, client(1), 5000, b"answer!", true);
    let want = to_client(1).ttl(63).udp(VIP, 53, client(1), 5000, b"answer!", true);
    h.step("NAT UDP answer", &a, 1, tx_exact(0, want));
    // No UDP checksum stays none.
    let q0 = from_client(1).udp(client(1), 5000, VIP, 53, b"q", false);
    h.step(
        "NAT UDP without checksum",
        &q0,
        0,
        tx_exact(1, to_rs(1).ttl(63).udp(client(1), 5000, rs(1), 5353, b"q", false)),
    );

    // Port unreachable from the RS, sent to the client (not to one of our addresses): relayed from
    // the VIP, quoting the client's own datagram to the VIP.
    let err = from_rs(1).icmp_error(
        rs(1),
        client(1),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &sent[ETH..],
    );
    let orig = from_client(1).ttl(63).udp(client(1), 5000, VIP, 53, b"query", true);
    let want = to_client(1).ttl(63).icmp_error(
        VIP,
        client(1),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &orig[ETH..],
    );
    h.step(
        "NAT port unreachable from the RS",
        &err,
        1,
        tx(0, move |got| {
            verify_checksums(got);
            assert_frame_eq(got, &want);
        }),
    );
    // From the client side about the answer (VIP:53 -> client): to the RS, about its own
    // datagram (RS:5353 -> client), keeping the sender.
    let got_answer = to_client(1).ttl(63).udp(VIP, 53, client(1), 5000, b"answer!", true);
    let err = from_client(1).icmp_error(
        client(1),
        VIP,
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &got_answer[ETH..],
    );
    let rs_answer = from_rs(1).ttl(63).udp(rs(1), 5353, client(1), 5000, b"answer!", true);
    let want = to_rs(1).ttl(63).icmp_error(
        client(1),
        rs(1),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &rs_answer[ETH..],
    );
    h.step(
        "NAT port unreachable from the client",
        &err,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            assert_frame_eq(got, &want);
        }),
    );
    assert_eq!(h.ev(Event::IcmpErrorsRelayed), 2);
}

#[test]
fn dr_sends_the_unchanged_packet_to_the_real_servers_mac_with_input_only_state() {
    let s = mode_setup(Xlat::Dr);
    let mut h = H::resolved(&s);
    for n in 1..=3u8 {
        let syn = from_client(n).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
        let want = to_rs(n).ttl(63).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
        h.step("DR client SYN", &syn, 0, tx_exact(1, want));
        assert_eq!(state_of(&h, n), TcpState::SynRecv);
    }
    assert_eq!(h.w.conns().len(), 3);
    // The real server answers the client directly; the gateway sees the client's ACK only.
    let steps: [(TcpFlags, (u32, u32), TcpState); 3] = [
        (ACK, (101, 901), TcpState::Established),
        // INPUT-ONLY: the client's FIN from ESTABLISHED is FIN_WAIT (INPUT would say CLOSE_WAIT).
        (FIN | ACK, (101, 950), TcpState::FinWait),
        (ACK, (102, 951), TcpState::FinWait),
    ];
    for (flags, sa, st) in steps {
        let seg = from_client(2).tcp((client(2), 40000), (VIP, 80), flags, sa, &[], &[]);
        let want = to_rs(2).ttl(63).tcp((client(2), 40000), (VIP, 80), flags, sa, &[], &[]);
        h.step("DR client segment", &seg, 0, tx_exact(1, want));
        assert_eq!(state_of(&h, 2), st, "after {flags:?}");
    }
    let rst = from_client(3).tcp((client(3), 40000), (VIP, 80), RST, (101, 0), &[], &[]);
    h.step(
        "DR client RST",
        &rst,
        0,
        tx_exact(1, to_rs(3).ttl(63).tcp((client(3), 40000), (VIP, 80), RST, (101, 0), &[], &[])),
    );
    // LVS keeps SYN_RECV on a RST in SYN_RECV (both INPUT tables).
    assert_eq!(state_of(&h, 3), TcpState::SynRecv);
    // The accounting follows the states: one established connection went to FIN_WAIT.
    assert_eq!(counts(&h), (0, 3));

    // A client-side router's fragmentation-needed about the real server's direct reply
    // (VIP:80 -> client) goes to that real server unchanged (TTL-1), for its path-MTU discovery.
    let reply =
        Pb::new(rs_mac(1), client_mac(1)).tcp((VIP, 80), (client(1), 40000), ACK, (901, 101), &[], &[0; 100]);
    let err = from_client(1).icmp(
        GW0,
        VIP,
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::FRAG_NEEDED,
        1400,
        &reply[ETH..ETH + 28],
    );
    let want = edit(err.clone(), |v| {
        v[0..6].copy_from_slice(&rs_mac(1).0);
        v[6..12].copy_from_slice(&M_GW1.0);
        let mut ip = Ipv4Packet::new_unchecked(&mut v[ETH..]);
        ip.set_ttl(63);
        ip.fill_checksum();
    });
    h.step("DR frag-needed to the real server", &err, 0, tx_exact(1, want));
    // UDP too.
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"query", true);
    h.step("DR UDP", &q, 0, tx_exact(1, to_rs(1).ttl(63).udp(client(1), 5000, VIP, 53, b"query", true)));
}

/// `inner` (an IPv4 packet) in IPv4-in-IPv4 from the server port to real server `i`, as sent.
fn ipip(i: u8, inner: &[u8]) -> Vec<u8> {
    let ident = u16::from_be_bytes([inner[4], inner[5]]);
    let df = inner[6] & 0x40 != 0;
    to_rs(i).ident(ident).dont_frag(df).ip(GW1, rs(i), PROTO_IPIP, inner)
}

#[test]
fn tun_encapsulates_clamps_the_mss_and_answers_frag_needed() {
    let s = mode_setup(Xlat::Tun);
    let mut h = H::resolved(&s);
    // The SYN's MSS 1460 becomes 1440: 1500 - 20 (tunnel) - 40.
    let mut clamped = SYN_OPTS;
    clamped[2..4].copy_from_slice(&1440u16.to_be_bytes());
    for n in 1..=3u8 {
        let syn = from_client(n).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
        let inner = from_client(n).ttl(63).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &clamped, &[]);
        let want = ipip(n, &inner[ETH..]);
        h.step(
            "TUN client SYN",
            &syn,
            0,
            tx(1, move |got| {
                assert_frame_eq(got, &want);
                verify_checksums(&[&got[..ETH], &got[ETH + 20..]].concat());
            }),
        );
    }
    assert_eq!(h.ev(Event::MssClamped), 3);
    assert_eq!(h.ev(Event::TunEncapsulated), 3);
    // A SYN already small enough keeps its MSS.
    let mut small = SYN_OPTS;
    small[2..4].copy_from_slice(&1200u16.to_be_bytes());
    let syn = from_client(1).tcp((client(1), 40001), (VIP, 80), SYN, (5, 0), &small, &[]);
    let inner = from_client(1).ttl(63).tcp((client(1), 40001), (VIP, 80), SYN, (5, 0), &small, &[]);
    // rr wrapped to real 1.
    h.step("TUN small-MSS SYN", &syn, 0, tx_exact(1, ipip(1, &inner[ETH..])));
    assert_eq!(h.ev(Event::MssClamped), 3);

    // Input-only state, as DR.
    let ack = from_client(2).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[]);
    let inner = from_client(2).ttl(63).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[]);
    h.step("TUN client ACK", &ack, 0, tx_exact(1, ipip(2, &inner[ETH..])));
    assert_eq!(state_of(&h, 2), TcpState::Established);

    // 1480 bytes of IP fit (1500 with the tunnel); 1481 with DF set do not: the client gets
    // fragmentation-needed naming 1480, from the VIP, quoting its packet's header and 8 bytes.
    let fits = from_client(2).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[7; 1440]);
    h.step("TUN 1480-byte packet", &fits, 0, tx(1, |got| assert_eq!(got.len(), ETH + 1500)));
    let big = from_client(2).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[7; 1441]);
    let quoted = from_client(2).ttl(63).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[7; 1441]);
    frag_needed_step(&mut h, "TUN DF packet too big", &big, 2, &quoted, 1480);
    assert_eq!(h.ev(Event::FragNeededSent), 1);
    // Without DF the outer packet goes in two fragments (1500 and 21 bytes of IP) that
    // reassemble to the encapsulated packet.
    let big =
        from_client(2).dont_frag(false).tcp((client(2), 40000), (VIP, 80), ACK, (101, 901), &[], &[7; 1441]);
    let inner = from_client(2).ttl(63).dont_frag(false).tcp(
        (client(2), 40000),
        (VIP, 80),
        ACK,
        (101, 901),
        &[],
        &[7; 1441],
    );
    let whole = ipip(2, &inner[ETH..]);
    h.w.process(VecFrame::from_bytes(&big), 0, h.now, &mut h.out);
    let mut out = h.drain();
    h.assert_accounting("TUN non-DF packet too big");
    assert_eq!(out.len(), 2);
    out.sort_by_key(|(_, f)| ip_of(f).frag_offset());
    let (a, b) = (ip_of(&out[0].1), ip_of(&out[1].1));
    assert_eq!((a.total_len(), a.more_frags(), b.frag_offset(), b.more_frags()), (1500, true, 1480, false));
    let mut joined = a.payload().to_vec();
    joined.extend_from_slice(b.payload());
    assert_eq!(joined, whole[ETH + 20..], "the fragments reassemble to the encapsulated packet");
    // UDP through the tunnel.
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"query", true);
    let inner = from_client(1).ttl(63).udp(client(1), 5000, VIP, 53, b"query", true);
    h.step("TUN UDP", &q, 0, tx_exact(1, ipip(1, &inner[ETH..])));
}

#[test]
fn synproxy_and_toa_are_not_applied_where_the_mode_cannot_have_them() {
    // The control plane refuses these combinations; a setup that has them anyway forwards plainly.
    for x in [Xlat::Dr, Xlat::Tun] {
        let s = setup_with(|s| {
            s.services[0].synproxy = true;
            s.services[0].toa = true;
            s.services[0].reals = vec![RealSetup { xlat: x, ..real(1, 80) }];
        });
        let mut h = H::resolved(&s);
        let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
        h.step("SYN to a DR/TUN service with SYN-proxy set", &syn, 0, tx(1, |_| {}));
        assert_eq!(h.w.conns().len(), 1, "{x:?}: forwarded, not proxied");
    }
}

#[test]
fn mixed_modes_in_one_service() {
    // FULLNAT, NAT and DR reals side by side: each connection takes its real's mode.
    let s = setup_with(|s| {
        s.services[0].reals = vec![
            real(1, 80),
            RealSetup { xlat: Xlat::Nat, ..real(2, 80) },
            RealSetup { xlat: Xlat::Dr, ..real(3, 80) },
        ];
    });
    let mut h = H::resolved(&s);
    let syn = |n: u8| from_client(n).tcp((client(n), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
    h.step("to the FULLNAT real", &syn(1), 0, tx(1, |got| assert_eq!(ip_of(got).src_addr(), LIP)));
    let want = to_rs(2).ttl(63).tcp((client(2), 40000), (rs(2), 80), SYN, (100, 0), &SYN_OPTS, &[]);
    h.step("to the NAT real", &syn(2), 0, tx_exact(1, want));
    let want = to_rs(3).ttl(63).tcp((client(3), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
    h.step("to the DR real", &syn(3), 0, tx_exact(1, want));
    let modes: Vec<Xlat> = (1..=3)
        .map(|n| {
            let (_, c) = h.w.conns().iter().find(|(_, c)| c.client_addr().0 == client(n)).unwrap();
            c.xlat()
        })
        .collect();
    assert_eq!(modes, [Xlat::FullNat, Xlat::Nat, Xlat::Dr]);
}

#[test]
fn nat_without_local_addresses_needs_none() {
    // A NAT-only service has no local address and needs none: no `no_laddr` drop.
    let s = mode_setup(Xlat::Nat);
    assert!(s.services[0].laddrs.is_empty());
    let mut h = H::resolved(&s);
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (100, 0), &SYN_OPTS, &[]);
    h.step("NAT SYN without laddrs", &syn, 0, tx(1, |_| {}));
    // While a FULLNAT service without one still counts the drop.
    let s = setup_with(|s| s.services[0].laddrs.clear());
    let mut h = H::resolved(&s);
    h.step("FULLNAT SYN without laddrs", &syn, 0, Expect::Drop(DropReason::NoLocalAddr));
}

#[test]
fn client_owner_is_the_same_for_both_directions_and_spreads() {
    let mut per = [0u32; 4];
    for a in 0..64u32 {
        for p in 0..64u16 {
            per[client_owner(Ipv4Addr::from(0xc612_0000 + a), 30000 + p, 4) as usize] += 1;
        }
    }
    // 4096 clients over 4 workers: each gets a fair share (within 10 %).
    assert!(per.iter().all(|&n| (920..=1130).contains(&n)), "{per:?}");
    assert_eq!(client_owner(client(1), 1, 1), 0);
}

#[test]
fn synproxy_with_nat_opens_the_real_server_side_from_the_clients_address() {
    let s = setup_with(|s| {
        s.services[0].synproxy = true;
        s.services[0].laddrs.clear();
        s.services[0].reals = (1..=3).map(|i| RealSetup { xlat: Xlat::Nat, ..real(i, 8080) }).collect();
    });
    let mut h = H::resolved(&s);
    let cisn = 0x1000_0000;
    let (cookie, our_ts) = sp_syn(&mut h, 1, 46_000, cisn);
    let ts = {
        let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..8].copy_from_slice(&0x1234_0010u32.to_be_bytes());
        o[8..12].copy_from_slice(&our_ts.to_be_bytes());
        o
    };
    let ack =
        from_client(1).tcp((client(1), 46_000), (VIP, 80), ACK, (cisn + 1, cookie.wrapping_add(1)), &ts, &[]);
    let out = h.step(
        "NAT: client ACK with a valid cookie",
        &ack,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            let ip = ip_of(got);
            assert_eq!(
                (ip.src_addr(), ip.dst_addr()),
                (client(1), rs(1)),
                "the SYN comes from the client's address"
            );
            let t = tcp_of(got);
            assert_eq!((t.src_port(), t.dst_port()), (46_000, 8080));
            assert!(t.flags().syn() && !t.flags().ack());
            assert_eq!(t.seq_number(), cisn);
        }),
    );
    assert_eq!(out.len(), 1);
    // The real server's SYN-ACK comes back to the client's address: consumed, the held ACK goes on.
    let rs_isn: u32 = 0x7000_0000;
    let synack =
        from_rs(1).tcp((rs(1), 8080), (client(1), 46_000), SYN | ACK, (rs_isn, cisn + 1), &SYNACK_OPTS, &[]);
    h.step(
        "NAT: real server SYN-ACK",
        &synack,
        1,
        tx(1, move |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!(t.flags(), ACK);
            assert_eq!(t.ack_number(), rs_isn + 1);
            assert_eq!(ip_of(got).src_addr(), client(1));
        }),
    );
    assert_eq!(h.ev(Event::SynproxyHandshakes), 1);
    // Server data reaches the client from the VIP, shifted into the cookie's sequence space.
    let d =
        from_rs(1).tcp((rs(1), 8080), (client(1), 46_000), ACK | PSH, (rs_isn + 1, cisn + 1), &[], b"hello");
    h.step(
        "NAT: shifted server data",
        &d,
        1,
        tx(0, move |got| {
            verify_checksums(got);
            let ip = ip_of(got);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, client(1)));
            let t = tcp_of(got);
            assert_eq!((t.src_port(), t.seq_number()), (80, cookie.wrapping_add(1)));
        }),
    );
}
