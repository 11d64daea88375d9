//! The IPv6 and NAT64 engines against the real dataplane, in-process: a `Worker` over `VecFrame`s
//! plays rvsd, neighbours resolved by solicitations first. Every frame the worker delivers must
//! check out, and a corrupted one must be counted as the right error.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rvs_dataplane::flow::Proto;
use rvs_dataplane::frame::{Frame, VecFrame, VecPool};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::ndp::{self, Kind};
use rvs_dataplane::wire::{EtherType, EthernetAddress};
use rvs_dataplane::worker::{
    ConnSetup, Outbox, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, Worker,
};
use rvs_dataplane::xmit::Xlat;

use super::*;

const GW_MAC: [EthernetAddress; 2] =
    [EthernetAddress([2, 0, 0, 0, 0, 1]), EthernetAddress([2, 0, 0, 0, 1, 1])];
const GEN_MAC: [EthernetAddress; 2] =
    [EthernetAddress([2, 0, 0, 0, 0, 2]), EthernetAddress([2, 0, 0, 0, 1, 2])];
const GW4: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 1)];
const GW6: [Ipv6Addr; 2] =
    [Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1)];
/// The generator's client-side address: the next hop of the clients' /64.
const GEN6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);

fn conf(family: Family, flows: u32) -> Udp6Conf {
    let (reals, lips): (Vec<(IpAddr, u16)>, Vec<IpAddr>) = match family {
        Family::Ipv6 => (
            (0x11..=0x13).map(|i| (IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, i)), 8000)).collect(),
            vec![IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x100))],
        ),
        Family::Nat64 => (
            (11..=13).map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 1, i)), 8000)).collect(),
            vec![IpAddr::V4(Ipv4Addr::new(198, 18, 1, 100))],
        ),
    };
    Udp6Conf {
        family,
        flows,
        frame_len: 96,
        vip: VIP6,
        vport: 9000,
        client_net: Ipv6Addr::new(0x2001, 2, 0x10, 0, 0, 0, 0, 0),
        client_port: 10_000,
        reals,
        lips,
        macs: Macs { own: GEN_MAC, gw: GW_MAC },
        mode: Mode::Check,
        resend_gap_tsc: 0,
    }
}

fn setup(c: &Udp6Conf) -> Setup {
    let port = |i: usize| PortSetup {
        name: format!("p{i}"),
        mac: GW_MAC[i],
        addr: GW4[i],
        prefix_len: 24,
        addr6: Some(GW6[i]),
        prefix6_len: 64,
        mtu: 1500,
        kernel: None,
    };
    Setup {
        ports: vec![port(0), port(1)],
        routes: vec![RouteSetup { dst: IpAddr::V6(c.client_net), prefix_len: 64, via: IpAddr::V6(GEN6) }],
        services: vec![ServiceSetup {
            id: 1,
            proto: Proto::Udp,
            vip: c.vip.into(),
            vport: c.vport,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: false,
            proxy_protocol: None,
            laddrs: c.lips.clone(),
            reals: c
                .reals
                .iter()
                .enumerate()
                .map(|(k, &(addr, port))| RealSetup {
                    id: 10 + k as u32,
                    addr,
                    port,
                    weight: 1,
                    u_threshold: 0,
                    l_threshold: 0,
                    xlat: Xlat::FullNat,
                })
                .collect(),
        }],
        conn: ConnSetup { max_per_worker: 4096, ..ConnSetup::default() },
        workers: 1,
        exception: Default::default(),
    }
}

/// The generator's neighbour answers: a solicitation from the gateway for `GEN6` or a real server
/// is answered with the generator's MAC on that side, as `arp::Arp` answers ARP.
fn answer_ns(f: &[u8], side: usize) -> Option<Vec<u8>> {
    if f[12..14] != [0x86, 0xdd] || f.len() < 14 + 40 {
        return None;
    }
    let p = rvs_dataplane::wire::ipv6::Packet::new_checked(&f[14..]).ok()?;
    let m = ndp::parse(p.payload(), p.hop_limit()).ok()?;
    (m.kind == Kind::Solicit).then_some(())?;
    let mut na = [0u8; ndp::PACKET_LEN];
    let kind = Kind::Advert { solicited: true, override_: true };
    ndp::emit(&mut na, (m.target, p.src_addr()), kind, m.target, GEN_MAC[side]).ok()?;
    Some(rvs_dataplane::wire::testkit::eth_frame(GW_MAC[side], GEN_MAC[side], EtherType::Ipv6, &na))
}

/// ARP, likewise (NAT64's IPv4 real servers).
fn answer_arp(f: &[u8], side: usize) -> Option<Vec<u8>> {
    use rvs_dataplane::wire::{ArpOperation, ArpPacket, ArpRepr};
    if f[12..14] != [0x08, 0x06] {
        return None;
    }
    let a = ArpPacket::new_checked(&f[14..]).ok()?;
    (a.operation() == ArpOperation::Request).then_some(())?;
    let r = ArpRepr {
        operation: ArpOperation::Reply,
        sender_hw_addr: GEN_MAC[side],
        sender_proto_addr: a.target_proto_addr(),
        target_hw_addr: a.sender_hw_addr(),
        target_proto_addr: a.sender_proto_addr(),
    };
    Some(rvs_dataplane::wire::testkit::FrameBuilder::new(GEN_MAC[side], GW_MAC[side]).arp(&r))
}

/// Runs `rounds` loops of generate -> worker -> receive; returns the engine and the worker's stats.
fn run(c: Udp6Conf, rounds: usize, corrupt: Option<fn(&mut [u8])>) -> (Udp6Flows, Arc<Stats>) {
    let s = setup(&c);
    let stats = Arc::new(Stats::default());
    let mut w = Worker::new(&s, 0, VecPool::default(), stats.clone());
    let mut out = Outbox::new(2, w.outbox_capacity(64));
    let mut e = Udp6Flows::new(c).unwrap();
    let mut pool = VecPool::default();
    let mut now = 1_000u64;
    for _ in 0..rounds {
        let mut tx = Tx::with_capacity(64);
        for side in [Side::Client, Side::Server] {
            e.generate(side, now, 64, &mut pool, &mut tx);
        }
        let mut pending: Vec<(usize, VecFrame)> = Vec::new();
        for side in 0..2 {
            pending.extend(tx.side[side].drain(..).map(|f| (side, f)));
        }
        while !pending.is_empty() {
            for (side, f) in pending.drain(..) {
                w.process(f, side, now, &mut out);
            }
            w.poll(now, &mut out);
            let mut tx = Tx::with_capacity(64);
            for side in 0..2 {
                for f in out.port(side).drain(..).collect::<Vec<_>>() {
                    if let Some(a) = answer_ns(f.data(), side).or_else(|| answer_arp(f.data(), side)) {
                        w.process(VecFrame::from_bytes(&a), side, now, &mut out);
                        continue;
                    }
                    let mut f = f;
                    if let Some(k) = corrupt {
                        k(f.data_mut());
                    }
                    let sd = if side == 0 { Side::Client } else { Side::Server };
                    e.receive(sd, f, now, &mut pool, &mut tx);
                }
            }
            for side in 0..2 {
                pending.extend(tx.side[side].drain(..).map(|f| (side, f)));
            }
            if out.port(0).is_empty() && out.port(1).is_empty() && pending.is_empty() {
                break;
            }
        }
        now += 1;
    }
    (e, stats)
}

#[test]
fn ipv6_and_nat64_flows_check_out_through_the_dataplane() {
    for family in [Family::Ipv6, Family::Nat64] {
        let (e, stats) = run(conf(family, 100), 12, None);
        assert!(e.warmed_up(), "{family:?}: every flow learned ({} of 100)", e.learned());
        let c = e.counters();
        assert_eq!(c.total_errors(), 0, "{family:?}: {:?}", c.errors);
        assert!(c.rx_ok[0] > 100 && c.rx_ok[1] > 100, "{family:?}: both directions delivered: {:?}", c.rx_ok);
        // The warm-up's first burst outruns neighbour discovery (a bounded queue per neighbour);
        // those datagrams are resent. Nothing else may be dropped.
        let queued_out = stats.drops(rvs_dataplane::stats::DropReason::NeighQueueFull);
        assert_eq!(stats.total_drops() - queued_out, 0, "{family:?}: {:?}", stats.nonzero());
    }
}

#[test]
fn a_corrupted_checksum_or_address_is_counted_not_passed() {
    let flip_udp_csum = |d: &mut [u8]| {
        let l4 = if d[12..14] == [0x86, 0xdd] { 14 + 40 } else { 14 + 20 };
        d[l4 + 6] ^= 0x40;
    };
    let (e, _) = run(conf(Family::Nat64, 10), 3, Some(flip_udp_csum));
    assert_eq!(e.counters().rx_ok, [0, 0]);
    assert!(e.counters().total_errors() > 0);
    let flip_src6 = |d: &mut [u8]| {
        if d[12..14] == [0x86, 0xdd] {
            d[14 + 8 + 15] ^= 1;
            // keep the UDP checksum right so only the address is wrong
            let (s, t) = (addr6(d, 22), addr6(d, 38));
            rvs_dataplane::wire::ipv6::fill_checksum(&mut d[54..], s, t, 17);
        }
    };
    let (e, _) = run(conf(Family::Ipv6, 10), 3, Some(flip_src6));
    assert_eq!(e.counters().rx_ok, [0, 0]);
}

/// Reference mode (a plain forwarder in the gateway's place): each side's frames come back on the
/// other side as sent (io) or with their MACs swapped (macswap), and all check out.
#[test]
fn reference_mode_takes_frames_forwarded_unchanged_or_macswapped() {
    for family in [Family::Ipv6, Family::Nat64] {
        let mut c = conf(family, 16);
        c.mode = Mode::Reference;
        let mut e = Udp6Flows::new(c).unwrap();
        let mut pool = VecPool::default();
        let mut tx = Tx::with_capacity(64);
        for side in [Side::Client, Side::Server] {
            assert_eq!(e.generate(side, 1, 16, &mut pool, &mut tx), 16);
        }
        let mut rx = Tx::with_capacity(1);
        for (k, (from, to)) in [(0usize, Side::Server), (1, Side::Client)].into_iter().enumerate() {
            for (j, mut f) in std::mem::take(&mut tx.side[from]).into_iter().enumerate() {
                if (j + k) % 2 == 1 {
                    let d = f.data_mut();
                    let dst: [u8; 6] = d[0..6].try_into().unwrap();
                    d.copy_within(6..12, 0);
                    d[6..12].copy_from_slice(&dst);
                }
                e.receive(to, f, 2, &mut pool, &mut rx);
            }
        }
        assert_eq!(e.counters().total_errors(), 0, "{family:?}: {:?}", e.counters().errors);
        assert_eq!(e.counters().rx_ok, [16, 16], "{family:?}");
    }
}
