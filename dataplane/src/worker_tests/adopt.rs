//! VRRP address adoption (see `crate::adopt`): with adoption on, ARP claims a VIP or local address
//! only while it is adopted, newly adopted addresses are announced with gratuitous ARP by worker 0
//! on their port, and traffic to an address not (or no longer) adopted is still served. Every step
//! checks the packet accounting, gratuitous ARPs included.
use super::*;
use crate::setup::AdoptSetup;

const GARPS: u32 = 3;
const GARP_MS: Millis = 50;

/// The fixture gateway with adoption on and `addrs` adopted.
fn adopt_setup(addrs: &[(Ipv4Addr, usize)]) -> Setup {
    setup_with(|s| {
        s.conn.adopt =
            Some(AdoptSetup { addrs: addrs.to_vec(), garp_count: GARPS, garp_interval_ms: GARP_MS })
    })
}

fn reply(gw_mac: EthernetAddress, ip: Ipv4Addr, to: (EthernetAddress, Ipv4Addr)) -> Vec<u8> {
    arp(ArpOperation::Reply, gw_mac, to.0, (gw_mac, ip), to)
}

/// A gratuitous ARP for `ip` from the port with MAC `port_mac`: a broadcast request whose sender
/// and target address are both `ip`.
fn is_garp(frame: &[u8], port_mac: EthernetAddress, ip: Ipv4Addr) -> bool {
    is_arp_request_for(frame, port_mac, ip, ip)
}

#[test]
fn arp_claims_adopted_addresses_only() {
    let cl = (client_mac(1), client(1));
    let r1 = (rs_mac(1), rs(1));
    let rows = || {
        vec![
            case("ARP for port 0 address", arp_request(cl, GW0), 0, tx_exact(0, reply(M_GW0, GW0, cl))),
            case("ARP for port 1 address", arp_request(r1, GW1), 1, tx_exact(1, reply(M_GW1, GW1, r1))),
            case(
                "ARP for a foreign address",
                arp_request(cl, FOREIGN),
                0,
                Expect::Drop(DropReason::ArpNotOurs),
            ),
        ]
    };
    // The VIP adopted, the LIP not (keepalived's sync group half moved: shows each is separate).
    let s = adopt_setup(&[(VIP, 0)]);
    let mut more = rows();
    more.push(case("ARP for the adopted VIP", arp_request(cl, VIP), 0, tx_exact(0, reply(M_GW0, VIP, cl))));
    more.push(case(
        "ARP for the LIP, not adopted",
        arp_request(r1, LIP),
        1,
        Expect::Drop(DropReason::ArpNotAdopted),
    ));
    run_table(&s, more);
    // Nothing adopted (the backup): port addresses only.
    let s = adopt_setup(&[]);
    let mut more = rows();
    more.push(case(
        "ARP for the VIP on the backup",
        arp_request(cl, VIP),
        0,
        Expect::Drop(DropReason::ArpNotAdopted),
    ));
    more.push(case(
        "ARP for the LIP on the backup",
        arp_request(r1, LIP),
        1,
        Expect::Drop(DropReason::ArpNotAdopted),
    ));
    run_table(&s, more);
    // Both adopted (the master).
    let s = adopt_setup(&[(VIP, 0), (LIP, 1)]);
    let mut more = rows();
    more.push(case(
        "ARP for the VIP on the master",
        arp_request(cl, VIP),
        0,
        tx_exact(0, reply(M_GW0, VIP, cl)),
    ));
    more.push(case(
        "ARP for the LIP on the master",
        arp_request(r1, LIP),
        1,
        tx_exact(1, reply(M_GW1, LIP, r1)),
    ));
    run_table(&s, more);
}

#[test]
fn takeover_announces_each_address_on_its_port_then_stops() {
    let backup = adopt_setup(&[]);
    let mut h = H::resolved(&backup);
    assert!(h.poll(2_000).is_empty(), "nothing adopted, nothing announced");
    // keepalived moved both addresses here: the control plane publishes them.
    let master = adopt_setup(&[(VIP, 0), (LIP, 1)]);
    h.w.apply(&master);
    let mut sent = Vec::new();
    for t in (2_001..2_001 + GARP_MS * u64::from(GARPS) + 500).step_by(1) {
        sent.extend(h.poll(t).into_iter().map(|(p, f)| (t, p, f)));
    }
    let on = |port: usize, mac: EthernetAddress, ip: Ipv4Addr| -> Vec<Millis> {
        sent.iter().filter(|(_, p, f)| *p == port && is_garp(f, mac, ip)).map(|(t, _, _)| *t).collect()
    };
    let vip_times = on(0, M_GW0, VIP);
    let lip_times = on(1, M_GW1, LIP);
    assert_eq!(sent.len(), 2 * GARPS as usize, "gratuitous ARPs only, nothing else: {:?}", sent.len());
    assert_eq!(vip_times, vec![2_001, 2_001 + GARP_MS, 2_001 + 2 * GARP_MS], "VIP on the client port");
    assert_eq!(lip_times, vip_times, "LIP on the server port, on the same schedule");
    assert_eq!(h.ev(Event::GarpSent), 2 * u64::from(GARPS));
    // Adopted now: ARP answered.
    let cl = (client_mac(1), client(1));
    h.step(
        "ARP for the VIP after the takeover",
        &arp_request(cl, VIP),
        0,
        tx_exact(0, reply(M_GW0, VIP, cl)),
    );
    // The same set again (the watcher republishes on any change): nothing new is announced.
    h.w.apply(&master);
    assert!(h.poll(5_000).is_empty());
    // keepalived takes the addresses away (this gateway became backup), then gives them back: announced anew.
    h.w.apply(&backup);
    h.step(
        "ARP for the VIP after yielding",
        &arp_request(cl, VIP),
        0,
        Expect::Drop(DropReason::ArpNotAdopted),
    );
    h.w.apply(&adopt_setup(&[(VIP, 0)]));
    let again = h.poll(6_000);
    assert_eq!(again.len(), 1);
    assert!(again[0].0 == 0 && is_garp(&again[0].1, M_GW0, VIP));
}

#[test]
fn yielding_midway_stops_the_announcements() {
    let mut h = H::resolved(&adopt_setup(&[(VIP, 0)]));
    assert_eq!(h.poll(2_000).len(), 1, "adopted at start: announced");
    h.w.apply(&adopt_setup(&[]));
    for t in 2_001..2_500 {
        assert!(h.poll(t).is_empty(), "no announcement for an address given up");
    }
    assert_eq!(h.ev(Event::GarpSent), 1);
}

#[test]
fn only_worker_0_announces() {
    let s = setup_with(|s| {
        s.workers = 2;
        s.conn.adopt =
            Some(AdoptSetup { addrs: vec![(VIP, 0)], garp_count: GARPS, garp_interval_ms: GARP_MS });
    });
    for (index, want) in [(0u16, GARPS as usize), (1, 0)] {
        let stats = Arc::new(Stats::default());
        let mut w = Worker::new(&s, index, VecPool::default(), stats.clone());
        let mut out = Outbox::new(2, w.outbox_capacity(32));
        let mut n = 0;
        for t in 1_000..1_500 {
            w.poll(t, &mut out);
            n += out.port(0).drain(..).count() + out.port(1).drain(..).count();
        }
        assert_eq!(n, want, "worker {index}");
        assert_eq!(stats.events(Event::GarpSent), want as u64);
        assert_eq!(stats.accounting_gap(), 0);
        // Every worker claims the adopted address in ARP, announcing or not.
        let cl = (client_mac(1), client(1));
        w.process(VecFrame::from_bytes(&arp_request(cl, VIP)), 0, 1_500, &mut out);
        assert_eq!(out.port(0).drain(..).count(), 1, "worker {index} answers ARP for the VIP");
    }
}

#[test]
fn traffic_to_an_address_not_adopted_is_still_served() {
    // A connection made while this gateway was master, then keepalived moves the addresses away:
    // clients and real servers whose caches still point here keep being served (the new master
    // has the connection by sync, and this one still has it too).
    let master = adopt_setup(&[(VIP, 0), (LIP, 1)]);
    let mut h = H::resolved(&master);
    let fl = handshake(&mut h, &master, 1, 40_001);
    h.w.apply(&adopt_setup(&[]));
    data_to_rs(&mut h, &fl);
    // A new connection too: a client's SYN to the VIP is scheduled as ever.
    let fl2 = handshake(&mut h, &master, 2, 40_002);
    data_to_rs(&mut h, &fl2);
    assert_eq!(h.w.conns().len(), 2);
}

#[test]
fn adoption_off_claims_every_address() {
    // The default (no VRRP): ARP for the VIP and LIP are answered and nothing is announced.
    let s = setup();
    let mut h = H::resolved(&s);
    let r1 = (rs_mac(1), rs(1));
    h.step("ARP for the LIP", &arp_request(r1, LIP), 1, tx_exact(1, reply(M_GW1, LIP, r1)));
    assert!(h.poll(5_000).is_empty());
    assert_eq!(h.ev(Event::GarpSent), 0);
}
