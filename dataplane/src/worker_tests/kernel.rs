//! The exception path ([`crate::kernel`]): what a port with a kernel interface passes to it, what
//! the kernel sends out, the rate limit, and that a port without one drops as before.
use super::multi::Mh;
use super::*;
use crate::setup::ExceptionSetup;
use crate::wire::EtherType;

/// TAP port of the client port (0) and of the server port (1).
const TAP0: usize = 2;
const TAP1: usize = 3;

const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const OSPF_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
const IGMP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);

/// The IPv4 multicast MAC of a group.
fn group_mac(g: Ipv4Addr) -> EthernetAddress {
    let o = g.octets();
    EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

/// Both ports with kernel interfaces, at the given rate limit.
fn kernel_setup(rate_pps: u32, burst: u32) -> Setup {
    setup_with(|s| {
        s.ports[0].kernel = Some(TAP0);
        s.ports[1].kernel = Some(TAP1);
        s.exception = ExceptionSetup { rate_pps, burst };
    })
}

/// Transmitted on `port` exactly as received.
fn unchanged(port: usize, frame: &[u8]) -> Expect {
    tx_exact(port, frame.to_vec())
}

/// An IPv6 neighbour solicitation's frame (the payload is opaque to the gateway).
fn ipv6_ns() -> Vec<u8> {
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    ip6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);
    ip6.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1]);
    ip6.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    ip6.extend_from_slice(&[0u8; 24]);
    Pb::new(rs_mac(1), EthernetAddress([0x33, 0x33, 0xff, 0, 0, 1])).eth(EtherType::Unknown(0x86dd), &ip6)
}

/// One frame of each class the kernel gets, with the port it arrives on and what the gateway does
/// with it when the port has no kernel interface.
fn kernel_bound() -> Vec<(&'static str, Vec<u8>, usize, DropReason)> {
    let vrrp_adv = [0x21, 1, 100, 1, 0, 1, 0, 0, 198, 18, 0, 200];
    vec![
        (
            "TCP SYN to the port address (BGP)",
            from_rs(1).tcp((rs(1), 40000), (GW1, 179), SYN, (7, 0), &SYN_OPTS, &[]),
            1,
            DropReason::NoService,
        ),
        (
            "a real server's SYN-ACK to a health check's SYN from the port address",
            from_rs(2).tcp((rs(2), 80), (GW1, 45000), SYN | ACK, (9, 8), &SYNACK_OPTS, &[]),
            1,
            DropReason::NoService,
        ),
        (
            "TCP ACK to the port address (ssh)",
            from_client(1).tcp((client(1), 40000), (GW0, 22), ACK, (7, 1), &[], b"x"),
            0,
            DropReason::NoService,
        ),
        (
            "UDP to the port address",
            from_client(2).udp(client(2), 5000, GW0, 5001, b"hi", true),
            0,
            DropReason::NoService,
        ),
        (
            "VRRP (112) unicast to the port address",
            from_client(3).ip(client(3), GW0, 112, &vrrp_adv),
            0,
            DropReason::Protocol,
        ),
        (
            "VRRP advertisement to 224.0.0.18",
            Pb::new(client_mac(3), group_mac(VRRP_GROUP)).ttl(255).ip(client(3), VRRP_GROUP, 112, &vrrp_adv),
            0,
            DropReason::NotOurMac,
        ),
        (
            "OSPF hello to 224.0.0.5",
            Pb::new(rs_mac(1), group_mac(OSPF_GROUP)).ttl(1).ip(rs(1), OSPF_GROUP, 89, &[2, 1, 0, 44]),
            1,
            DropReason::NotOurMac,
        ),
        (
            "IGMP report to 224.0.0.22",
            Pb::new(rs_mac(2), group_mac(IGMP_GROUP)).ttl(1).ip(
                rs(2),
                IGMP_GROUP,
                2,
                &[0x22, 0, 0xfa, 0xfd, 0, 0, 0, 0],
            ),
            1,
            DropReason::NotOurMac,
        ),
        (
            "connection sync UDP to 224.0.0.81:8848",
            Pb::new(rs_mac(3), group_mac(SYNC_GROUP)).ttl(1).udp(
                rs(3),
                8848,
                SYNC_GROUP,
                8848,
                b"sync",
                true,
            ),
            1,
            DropReason::NotOurMac,
        ),
        (
            "ICMP echo reply to the port address (the kernel's ping)",
            from_rs(1).icmp(rs(1), GW1, icmp::msg::ECHO_REPLY, 0, 0x0101_0001, b"ping"),
            1,
            DropReason::IcmpType,
        ),
        (
            "ARP reply to the port address nobody in the dataplane asked for",
            arp(ArpOperation::Reply, M_OTHER, M_GW1, (M_OTHER, FOREIGN), (M_GW1, GW1)),
            1,
            DropReason::ArpUnsolicited,
        ),
        ("IPv6 neighbour solicitation", ipv6_ns(), 1, DropReason::NotOurMac),
    ]
}

#[test]
fn what_the_dataplane_does_not_handle_goes_to_the_kernel() {
    let s = kernel_setup(10_000, 1_000);
    for (desc, frame, port, _) in kernel_bound() {
        let mut h = H::resolved(&s);
        let tap = [TAP0, TAP1][port];
        let before = h.ev(Event::ExceptionToKernel);
        h.step(desc, &frame, port, unchanged(tap, &frame));
        assert_eq!(h.ev(Event::ExceptionToKernel), before + 1, "{desc}: counted");
    }
}

#[test]
fn without_a_kernel_interface_the_same_frames_drop_as_before() {
    let s = setup();
    for (desc, frame, port, reason) in kernel_bound() {
        let mut h = H::resolved(&s);
        h.step(desc, &frame, port, Expect::Drop(reason));
        assert_eq!(h.ev(Event::ExceptionToKernel), 0);
    }
    // IPv6 to the port's own MAC: an EtherType it does not handle.
    let mut h = H::resolved(&s);
    let mut v6 = ipv6_ns();
    v6[0..6].copy_from_slice(&M_GW1.0);
    h.step("IPv6 unicast, no kernel", &v6, 1, Expect::Drop(DropReason::EtherType));
}

#[test]
fn what_the_dataplane_handles_stays_in_the_dataplane() {
    let s = kernel_setup(10_000, 1_000);
    let data: Vec<u8> = (0u8..32).collect();
    let mut h = H::resolved(&s);
    // Echo to the port address: answered by the dataplane, as without a kernel interface.
    let echo = from_client(1).icmp(client(1), GW0, icmp::msg::ECHO_REQUEST, 0, 0x4242_0001, &data);
    let reply = to_client(1).ttl(64).icmp(GW0, client(1), icmp::msg::ECHO_REPLY, 0, 0x4242_0001, &data);
    h.step("echo to the port address", &echo, 0, tx_exact(0, reply));
    // ARP requests for the port address are answered.
    let req = arp_request((client_mac(2), client(2)), GW0);
    let want = arp(ArpOperation::Reply, M_GW0, client_mac(2), (M_GW0, GW0), (client_mac(2), client(2)));
    h.step("ARP request for the port address", &req, 0, tx_exact(0, want));
    // A SYN to a VIP port without a service, and transit traffic, are not the kernel's.
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 8080), SYN, (1, 0), &SYN_OPTS, &[]);
    h.step("SYN to a VIP port without a service", &syn, 0, Expect::Drop(DropReason::NoService));
    let transit = from_client(1).udp(client(1), 1, FOREIGN, 2, b"x", true);
    h.step("UDP to a foreign address", &transit, 0, Expect::Drop(DropReason::NotForUs));
    // Multicast outside 224.0.0.0/24 is nobody's.
    let g = Ipv4Addr::new(239, 1, 1, 1);
    let m = Pb::new(client_mac(1), group_mac(g)).udp(client(1), 1, g, 2, b"x", true);
    h.step("UDP to 239.1.1.1", &m, 0, Expect::Drop(DropReason::NotForUs));
    // Other unicast MACs are still not ours.
    let other = Pb::new(client_mac(1), M_OTHER).udp(client(1), 1, GW0, 2, b"x", true);
    h.step("UDP to another MAC", &other, 0, Expect::Drop(DropReason::NotOurMac));
    // A VIP connection goes on as usual.
    let fl = handshake(&mut h, &s, 1, 41000);
    data_to_rs(&mut h, &fl);
    assert_eq!(h.ev(Event::ExceptionToKernel), 0);
}

#[test]
fn learned_arp_replies_reach_the_kernel_too() {
    let s = kernel_setup(10_000, 1_000);
    // The dataplane asks for an unknown real-server-side neighbour by forwarding toward it...
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    let mut hh = H::new(&s);
    hh.learn(0, client_mac(1), client(1));
    hh.step("SYN toward an unresolved real server", &syn, 0, Expect::Held);
    // ... its reply is learned (the held SYN leaves) and then passed to the kernel.
    let reply = arp(ArpOperation::Reply, rs_mac(1), M_GW1, (rs_mac(1), rs(1)), (M_GW1, GW1));
    let before = hh.ev(Event::ArpLearned);
    hh.w.process(VecFrame::from_bytes(&reply), 1, hh.now, &mut hh.out);
    let out = hh.drain();
    hh.assert_accounting("learned reply");
    assert_eq!(hh.ev(Event::ArpLearned), before + 1);
    let ports: Vec<usize> = out.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports, vec![1, TAP1], "the held SYN out of the server port, the reply to its kernel");
    assert_eq!(out[1].1, reply);
}

#[test]
fn kernel_frames_leave_by_their_physical_port_unchanged() {
    let s = kernel_setup(10, 1);
    let mut h = H::resolved(&s);
    let frames = [
        // The kernel's own ARP request, its health-check SYN, a VRRP advertisement, IPv6.
        arp(
            ArpOperation::Request,
            M_GW1,
            EthernetAddress::BROADCAST,
            (M_GW1, GW1),
            (EthernetAddress([0; 6]), rs(1)),
        ),
        Pb::new(M_GW1, rs_mac(2)).tcp((GW1, 45000), (rs(2), 80), SYN, (8, 0), &SYN_OPTS, &[]),
        Pb::new(M_GW0, group_mac(VRRP_GROUP)).ttl(255).ip(GW0, VRRP_GROUP, 112, &[0x21, 1, 100, 0]),
        edit(ipv6_ns(), |v| v[6..12].copy_from_slice(&M_GW1.0)),
    ];
    let ins = [TAP1, TAP1, TAP0, TAP1];
    // Far more than the rate limit: the kernel's frames are not limited.
    for round in 0..5 {
        for (f, tap) in frames.iter().zip(ins) {
            let phys = if tap == TAP0 { 0 } else { 1 };
            h.step(&format!("kernel frame, round {round}"), f, tap, unchanged(phys, f));
        }
    }
    assert_eq!(h.ev(Event::ExceptionFromKernel), 20);
    assert_eq!(h.stats.drops(DropReason::ExceptionRateLimited), 0);
    // A port index that is neither a port nor a kernel interface: not ours.
    h.step("unknown port", &frames[1], 7, Expect::Drop(DropReason::NotOurMac));
}

#[test]
fn a_flood_at_the_port_address_is_limited_per_worker() {
    // 1000 frames a second, bursts of 5.
    let s = kernel_setup(1_000, 5);
    let mut h = H::resolved(&s);
    let syn = |i: u16| from_client(1).tcp((client(1), 10_000 + i), (GW0, 22), SYN, (1, 0), &SYN_OPTS, &[]);
    let mut i = 0;
    let mut flood = |h: &mut H, n: usize| -> (usize, usize) {
        let (mut passed, mut limited) = (0, 0);
        for _ in 0..n {
            i += 1;
            let f = syn(i);
            h.w.process(VecFrame::from_bytes(&f), 0, h.now, &mut h.out);
            for (p, got) in h.drain() {
                assert_eq!((p, got.as_slice()), (TAP0, f.as_slice()), "passed unchanged to the kernel");
                passed += 1;
            }
            h.assert_accounting("flood");
            limited = h.stats.drops(DropReason::ExceptionRateLimited) as usize;
        }
        (passed, limited)
    };
    assert_eq!(flood(&mut h, 100), (5, 95), "a full bucket passes its burst, then nothing");
    // 3 ms later: 3 more frames.
    h.now += 3;
    assert_eq!(flood(&mut h, 100), (3, 192));
    // A quiet second refills the bucket to its depth, no more.
    h.now += 1_000;
    assert_eq!(flood(&mut h, 100), (5, 287));
    // Over 1 simulated second at 10 frames per millisecond: rate * time + burst at most.
    let mut passed = 0;
    for _ in 0..1_000 {
        h.now += 1;
        passed += flood(&mut h, 10).0;
    }
    assert_eq!(passed, 1_000, "one frame per millisecond at 1000 pps");
    // Meanwhile the dataplane still answers pings to the same address.
    let echo = from_client(2).icmp(client(2), GW0, icmp::msg::ECHO_REQUEST, 0, 1, b"ok");
    let reply = to_client(2).ttl(64).icmp(GW0, client(2), icmp::msg::ECHO_REPLY, 0, 1, b"ok");
    h.step("echo during the flood", &echo, 0, tx_exact(0, reply));
}

#[test]
fn a_flood_at_one_port_leaves_the_other_ports_budget_alone() {
    let s = kernel_setup(1_000, 5);
    let mut h = H::resolved(&s);
    let flood = from_client(1).tcp((client(1), 10_000), (GW0, 22), SYN, (1, 0), &SYN_OPTS, &[]);
    for _ in 0..5 {
        h.step("flood within the burst", &flood, 0, unchanged(TAP0, &flood));
    }
    h.step("flood past the burst", &flood, 0, Expect::Drop(DropReason::ExceptionRateLimited));
    // A health check's SYN-ACK on the server port, in the same millisecond: its own bucket.
    let synack = from_rs(2).tcp((rs(2), 80), (GW1, 45000), SYN | ACK, (9, 8), &SYNACK_OPTS, &[]);
    h.step("health-check reply during the flood", &synack, 1, unchanged(TAP1, &synack));
}

#[test]
fn a_local_address_that_is_the_port_address_passes_what_no_connection_claims() {
    let s = setup_with(|s| {
        s.ports[1].kernel = Some(TAP1);
        s.services.iter_mut().for_each(|v| v.laddrs = vec![GW1]);
    });
    let mut h = H::resolved(&s);
    let synack = from_rs(2).tcp((rs(2), 80), (GW1, 45000), SYN | ACK, (9, 8), &SYNACK_OPTS, &[]);
    h.step("a kernel connection's reply to the shared address", &synack, 1, unchanged(TAP1, &synack));
    // A VIP connection through the same address still works.
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    let out = h.step("SYN to the VIP", &syn, 0, tx(1, |f| assert_eq!(ip_of(f).src_addr(), GW1)));
    let (lport, rsi) = (ports_of(&out[0].1).0, rs_index(ip_of(&out[0].1).dst_addr()));
    let reply = from_rs(rsi).tcp((rs(rsi), 80), (GW1, lport), SYN | ACK, (5, 2), &SYNACK_OPTS, &[]);
    h.step(
        "the real server's SYN-ACK to the connection",
        &reply,
        1,
        tx(0, |f| assert_eq!(ip_of(f).src_addr(), VIP)),
    );
    let s2 = setup_with(|s| s.services.iter_mut().for_each(|v| v.laddrs = vec![GW1]));
    let mut h = H::resolved(&s2);
    h.step("no kernel interface: as before", &synack, 1, Expect::Drop(DropReason::LipNoConn));
}

#[test]
fn a_changed_limit_is_adopted() {
    let s = kernel_setup(1_000, 100);
    let mut h = H::resolved(&s);
    let mut s2 = s.clone();
    s2.exception = ExceptionSetup { rate_pps: 1_000, burst: 2 };
    h.w.apply(&s2);
    let f = from_client(1).udp(client(1), 1, GW0, 2, b"x", true);
    h.step("1", &f, 0, unchanged(TAP0, &f));
    h.step("2", &f, 0, unchanged(TAP0, &f));
    h.step("3", &f, 0, Expect::Drop(DropReason::ExceptionRateLimited));
}

#[test]
fn two_workers_split_the_limit_and_pass_chained_arp_replies_once() {
    let mut s = kernel_setup(10, 4);
    s.workers = 2;
    let mut m = Mh::resolved(&s);
    // Each worker: ceil(4 / 2) = 2 frames at once.
    for w in 0..2 {
        let mut passed = 0;
        for i in 0..5u16 {
            let f = from_client(1).udp(client(1), 100 + i, GW0, 53, b"q", true);
            passed += m.deliver(w, &f, 0).iter().filter(|(_, p, _)| *p == TAP0).count();
        }
        assert_eq!(passed, 2, "worker {w} passes its share of the burst");
    }
    // An ARP reply for the port address visits both workers and reaches the kernel once.
    let reply = arp(ArpOperation::Reply, M_OTHER, M_GW1, (M_OTHER, FOREIGN), (M_GW1, GW1));
    let mut s2 = s.clone();
    s2.exception.burst = 100;
    let mut m = Mh::resolved(&s2);
    let sent = m.deliver(0, &reply, 1);
    let to_kernel: Vec<_> = sent.iter().filter(|(_, p, _)| *p == TAP1).collect();
    assert_eq!(to_kernel.len(), 1, "once: {sent:?}");
    assert_eq!(to_kernel[0].2, reply);
}
