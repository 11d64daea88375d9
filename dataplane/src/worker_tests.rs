//! Packet-in/packet-out fixture tests for [`Worker`], in the style of Katran's test fixtures: each case
//! is an input frame, the port it arrives on, and the expected outcome (a frame transmitted on a port
//! and checked byte for byte or field by field, a drop with its counter, or a frame held for ARP).
//!
//! Frames are built from scratch by [`Pb`] (the shared `wire::testkit::FrameBuilder`) with the `wire` emitters and full checksum computations,
//! so comparing the worker's output (incrementally updated checksums) with a freshly built expected
//! frame checks every checksum against a full recomputation. [`verify_checksums`] does the same for
//! outputs checked field by field.
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::conn::wheel::TICK_MS;
use crate::conn::Timeouts;
use crate::flow::{Millis, Proto};
use crate::frame::{Frame, VecFrame, VecPool};
use crate::sched::SchedKind;
use crate::stats::{DropReason, Event, Gauge, Stats};
use crate::wire::{
    checksum, icmp, ipv4, toa, ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IcmpPacket, Ipv4Packet,
    TcpFlags, TcpOption, TcpPacket, UdpPacket,
};
use crate::worker::{ConnSetup, Outbox, PortSetup, RealSetup, ServiceSetup, Setup, Worker};
use crate::xmit::Xlat;

const ETH: usize = 14;

const fn mac(a: u8, b: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, a, b])
}

const M_GW0: EthernetAddress = mac(0, 1);
const M_GW1: EthernetAddress = mac(1, 1);
const M_OTHER: EthernetAddress = mac(9, 9);

const GW0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const GW1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
const FOREIGN: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 77);

/// Client `n` (1..=3) on the client port.
fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 * n)
}
fn client_mac(n: u8) -> EthernetAddress {
    mac(0xc0, n)
}
/// Real server `i` (1..=3) on the server port: 198.18.1.11-13.
fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, 10 + i)
}
fn rs_mac(i: u8) -> EthernetAddress {
    mac(0xe0, i)
}
fn rs_index(a: Ipv4Addr) -> u8 {
    let i = a.octets()[3] - 10;
    assert!((1..=3).contains(&i), "{a} is not a real server");
    i
}

/// Linux SYN options: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
const SYN_OPTS: [u8; 20] = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7];
/// The same with the timestamps option replaced by NOPs.
const SYN_OPTS_NO_TS: [u8; 20] = [2, 4, 5, 0xb4, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 7];
/// MSS 1460, NOP, NOP, SACK-permitted (a SYN-ACK without timestamps).
const SYNACK_OPTS: [u8; 8] = [2, 4, 5, 0xb4, 1, 1, 4, 2];
/// The same with the MSS lowered by the TOA option's 8 bytes.
const SYNACK_OPTS_TOA: [u8; 8] = [2, 4, 0x05, 0xac, 1, 1, 4, 2];

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const RST: TcpFlags = TcpFlags::RST;
const FIN: TcpFlags = TcpFlags::FIN;
const PSH: TcpFlags = TcpFlags::PSH;

// ---------------------------------------------------------------------------------------------------
// Frame builder
// ---------------------------------------------------------------------------------------------------

/// The shared builder: Ethernet frames with correct checksums, IP ident 0x1234, DF set, TTL 64 and TCP
/// window 64240 unless varied.
use crate::wire::testkit::FrameBuilder as Pb;

/// An ARP frame, padded to the 60-byte Ethernet minimum.
fn arp(
    op: ArpOperation,
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    (sha, spa): (EthernetAddress, Ipv4Addr),
    (tha, tpa): (EthernetAddress, Ipv4Addr),
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        sender_hw_addr: sha,
        sender_proto_addr: spa,
        target_hw_addr: tha,
        target_proto_addr: tpa,
    };
    Pb::new(eth_src, eth_dst).arp(&repr)
}

fn arp_request(from: (EthernetAddress, Ipv4Addr), tpa: Ipv4Addr) -> Vec<u8> {
    arp(ArpOperation::Request, from.0, EthernetAddress::BROADCAST, from, (EthernetAddress([0; 6]), tpa))
}

/// Applies raw edits to a frame (for malformed inputs).
fn edit(mut v: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut v);
    v
}

/// Recomputes the IPv4 header checksum after a raw edit.
fn fix_ip_checksum(v: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut v[ETH..]).fill_checksum();
}

// Client-side and server-side frame templates.
fn from_client(n: u8) -> Pb {
    Pb::new(client_mac(n), M_GW0)
}
fn from_rs(i: u8) -> Pb {
    Pb::new(rs_mac(i), M_GW1)
}
fn to_client(n: u8) -> Pb {
    Pb::new(M_GW0, client_mac(n))
}
fn to_rs(i: u8) -> Pb {
    Pb::new(M_GW1, rs_mac(i))
}

// ---------------------------------------------------------------------------------------------------
// Output inspection
// ---------------------------------------------------------------------------------------------------

fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_checked(&frame[ETH..]).expect("an IPv4 frame")
}

fn tcp_of(frame: &[u8]) -> TcpPacket<&[u8]> {
    let hl = ip_of(frame).header_len();
    let tl = ip_of(frame).total_len() as usize;
    TcpPacket::new_checked(&frame[ETH + hl..ETH + tl]).expect("a TCP segment")
}

/// The IPv4 payload of a frame (padding excluded).
fn l4_of(frame: &[u8]) -> &[u8] {
    let ip = ip_of(frame);
    &frame[ETH + ip.header_len()..ETH + ip.total_len() as usize]
}

/// (source port, destination port) of a TCP or UDP frame.
fn ports_of(frame: &[u8]) -> (u16, u16) {
    let p = l4_of(frame);
    (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))
}

/// Every checksum in `frame` against a full recomputation: IPv4 header, TCP/UDP (with pseudo header)
/// or ICMP, and for ICMP errors the quoted IPv4 header. Also checks the IPv4 total length matches the
/// frame (no stale padding travels on).
fn verify_checksums(frame: &[u8]) {
    let ip = ip_of(frame);
    assert_eq!(ip.total_len() as usize, frame.len() - ETH, "IPv4 total length vs frame length");
    let mut hdr = ip.header().to_vec();
    hdr[10..12].fill(0);
    assert_eq!(ip.checksum(), checksum::internet_checksum(&hdr), "IPv4 header checksum");
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let mut l4 = ip.payload().to_vec();
    match ip.protocol() {
        ipv4::PROTO_TCP => {
            let got = TcpPacket::new_unchecked(ip.payload()).checksum();
            let mut t = TcpPacket::new_unchecked(&mut l4[..]);
            t.fill_checksum(s, d);
            assert_eq!(got, t.checksum(), "TCP checksum");
        }
        ipv4::PROTO_UDP => {
            let got = UdpPacket::new_unchecked(ip.payload()).checksum();
            if got != 0 {
                let mut u = UdpPacket::new_unchecked(&mut l4[..]);
                u.fill_checksum(s, d);
                assert_eq!(got, u.checksum(), "UDP checksum");
            }
        }
        ipv4::PROTO_ICMP => {
            let m = IcmpPacket::new_checked(ip.payload()).unwrap();
            let mut c = IcmpPacket::new_unchecked(&mut l4[..]);
            c.fill_checksum();
            assert_eq!(m.checksum(), c.checksum(), "ICMP checksum");
            if m.is_error() {
                let q = m.inner().unwrap();
                let mut h = q.header().to_vec();
                h[10..12].fill(0);
                assert_eq!(q.ip_checksum(), checksum::internet_checksum(&h), "quoted IPv4 checksum");
            }
        }
        p => panic!("unexpected protocol {p}"),
    }
}

/// Compares two frames, naming the first differing byte.
#[track_caller]
fn assert_frame_eq(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!(
            "frames differ at byte {at} (len {} vs {}):\n got  {:02x?}\n want {:02x?}",
            got.len(),
            want.len(),
            got,
            want
        );
    }
}

fn is_arp_request_for(frame: &[u8], port_mac: EthernetAddress, port_ip: Ipv4Addr, ip: Ipv4Addr) -> bool {
    let Ok(a) = ArpPacket::new_checked(&frame[ETH..]) else { return false };
    frame[0..6] == EthernetAddress::BROADCAST.0
        && frame[6..12] == port_mac.0
        && frame[12..14] == [0x08, 0x06]
        && a.operation() == ArpOperation::Request
        && a.sender_hw_addr() == port_mac
        && a.sender_proto_addr() == port_ip
        && a.target_proto_addr() == ip
}

// ---------------------------------------------------------------------------------------------------
// Setup and harness
// ---------------------------------------------------------------------------------------------------

fn real(i: u8, port: u16) -> RealSetup {
    RealSetup {
        id: u32::from(i) << 16 | u32::from(port),
        addr: rs(i).into(),
        port,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        xlat: Xlat::FullNat,
    }
}

/// The gateway: port 0 "client" 198.18.0.1/24, port 1 "server" 198.18.1.1/24; service 0 TCP VIP:80
/// rr over 198.18.1.11-13:80 with LIP 198.18.1.100; service 1 UDP VIP:53 -> 198.18.1.11:5353.
fn setup() -> Setup {
    let port = |name: &str, mac, addr| PortSetup {
        name: name.into(),
        mac,
        addr,
        prefix_len: 24,
        addr6: None,
        prefix6_len: 0,
        mtu: 1500,
    };
    let svc = |proto, vport: u16, reals: Vec<RealSetup>| ServiceSetup {
        id: u32::from(vport),
        proto,
        vip: VIP.into(),
        vport,
        sched: SchedKind::Rr,
        persistence_ms: None,
        toa: false,
        synproxy: false,
        proxy_protocol: None,
        laddrs: vec![LIP.into()],
        reals,
    };
    Setup {
        ports: vec![port("client", M_GW0, GW0), port("server", M_GW1, GW1)],
        routes: vec![],
        services: vec![
            svc(Proto::Tcp, 80, vec![real(1, 80), real(2, 80), real(3, 80)]),
            svc(Proto::Udp, 53, vec![real(1, 5353)]),
        ],
        conn: ConnSetup { max_per_worker: 1024, ..ConnSetup::default() },
        workers: 1,
    }
}

fn setup_with(f: impl FnOnce(&mut Setup)) -> Setup {
    let mut s = setup();
    f(&mut s);
    s
}

type Check = Box<dyn Fn(&[u8])>;

/// The expected outcome of one input frame.
enum Expect {
    /// Exactly one frame is transmitted, on `port`, and passes `expect`; nothing is dropped.
    Tx { port: usize, expect: Check },
    /// Nothing is transmitted; this counter (and no other drop counter) went up by exactly one; the
    /// connection table did not grow.
    Drop(DropReason),
    /// Nothing is dropped and nothing but ARP requests is transmitted: the frame waits for ARP.
    Held,
}

fn tx(port: usize, expect: impl Fn(&[u8]) + 'static) -> Expect {
    Expect::Tx { port, expect: Box::new(expect) }
}

/// Transmitted on `port` and byte-for-byte equal to `want`.
fn tx_exact(port: usize, want: Vec<u8>) -> Expect {
    tx(port, move |got| assert_frame_eq(got, &want))
}

/// One row of a fixture table.
struct Case {
    desc: &'static str,
    frame: Vec<u8>,
    in_port: usize,
    expect: Expect,
}

fn case(desc: &'static str, frame: Vec<u8>, in_port: usize, expect: Expect) -> Case {
    Case { desc, frame, in_port, expect }
}

struct H {
    w: Worker<VecPool>,
    stats: Arc<Stats>,
    out: Outbox<VecFrame>,
    nports: usize,
    now: Millis,
}

impl H {
    fn new(s: &Setup) -> H {
        let stats = Arc::new(Stats::default());
        let w = Worker::new(s, 0, VecPool::default(), stats.clone());
        let out = Outbox::new(s.ports.len(), w.outbox_capacity(32));
        H { w, stats, out, nports: s.ports.len(), now: 1_000 }
    }

    /// A worker whose clients 1-3 and real servers 1-3 are resolved (they ARPed for the gateway).
    fn resolved(s: &Setup) -> H {
        let mut h = H::new(s);
        for n in 1..=3 {
            h.learn(0, client_mac(n), client(n));
        }
        for i in 1..=3 {
            h.learn(1, rs_mac(i), rs(i));
        }
        h
    }

    /// The neighbour ARPs for the gateway's port address: answered, and learned.
    fn learn(&mut self, port: usize, m: EthernetAddress, ip: Ipv4Addr) {
        let (gw_mac, gw) = [(M_GW0, GW0), (M_GW1, GW1)][port];
        let want = arp(ArpOperation::Reply, gw_mac, m, (gw_mac, gw), (m, ip));
        self.step("learn neighbour", &arp_request((m, ip), gw), port, tx_exact(port, want));
    }

    fn drain(&mut self) -> Vec<(usize, Vec<u8>)> {
        let mut v = Vec::new();
        for p in 0..self.nports {
            v.extend(self.out.port(p).drain(..).map(|f| (p, f.data().to_vec())));
        }
        v
    }

    fn drops(&self) -> Vec<u64> {
        DropReason::ALL.iter().map(|r| self.stats.drops(*r)).collect()
    }

    fn ev(&self, e: Event) -> u64 {
        self.stats.events(e)
    }

    /// Feeds one frame and checks the outcome; returns what was transmitted.
    fn step(&mut self, desc: &str, frame: &[u8], in_port: usize, expect: Expect) -> Vec<(usize, Vec<u8>)> {
        let before = self.drops();
        let conns = self.w.conns().len();
        self.w.process(VecFrame::from_bytes(frame), in_port, self.now, &mut self.out);
        let out = self.drain();
        let changed: Vec<(DropReason, u64)> = DropReason::ALL
            .iter()
            .zip(self.drops().iter().zip(&before))
            .filter(|(_, (a, b))| a != b)
            .map(|(r, (a, b))| (*r, a - b))
            .collect();
        let sent: Vec<usize> = out.iter().map(|(p, _)| *p).collect();
        self.assert_accounting(desc);
        match expect {
            Expect::Tx { port, expect } => {
                assert!(changed.is_empty(), "{desc}: unexpected drops {changed:?}");
                assert_eq!(sent, vec![port], "{desc}: want exactly one frame out on port {port}");
                eprintln!("checking: {desc}");
                expect(&out[0].1);
            }
            Expect::Drop(r) => {
                assert_eq!(changed, vec![(r, 1)], "{desc}: want exactly one {r:?} drop");
                assert!(out.is_empty(), "{desc}: a dropped packet transmitted {sent:?}");
                assert_eq!(self.w.conns().len(), conns, "{desc}: a dropped packet created a connection");
            }
            Expect::Held => {
                assert!(changed.is_empty(), "{desc}: unexpected drops {changed:?}");
                for (_, f) in &out {
                    assert!(ArpPacket::new_checked(&f[ETH..]).is_ok(), "{desc}: sent a non-ARP frame");
                }
            }
        }
        out
    }

    fn run(&mut self, c: Case) -> Vec<(usize, Vec<u8>)> {
        self.step(c.desc, &c.frame, c.in_port, c.expect)
    }

    fn poll(&mut self, now: Millis) -> Vec<(usize, Vec<u8>)> {
        self.now = now;
        self.w.poll(now, &mut self.out);
        self.assert_accounting("poll");
        self.drain()
    }

    /// Every frame received is sent, consumed, held or dropped with one reason (Stats::accounting_gap).
    fn assert_accounting(&self, desc: &str) {
        self.stats.set(Gauge::NeighHeld, self.w.neigh_held() as u64);
        self.stats.set(Gauge::SynproxyHeld, self.w.synproxy_held() as u64);
        self.stats.set(Gauge::FragHeld, self.w.frag_held() as u64);
        assert_eq!(self.stats.accounting_gap(), 0, "{desc}: packet accounting does not balance");
    }
}

/// Runs every row against a fresh, fully resolved worker.
fn run_table(s: &Setup, rows: Vec<Case>) {
    assert!(!rows.is_empty());
    for c in rows {
        let mut h = H::resolved(s);
        h.run(c);
    }
}

// ---------------------------------------------------------------------------------------------------
// A FULLNAT TCP connection, step by step
// ---------------------------------------------------------------------------------------------------

/// What the tests know about one connection once its SYN went through.
#[derive(Debug, Clone, Copy)]
struct Flow {
    n: u8,
    cport: u16,
    rs: u8,
    lport: u16,
    /// Client and server initial sequence numbers.
    cseq: u32,
    sseq: u32,
}

fn lport_range(s: &Setup) -> std::ops::RangeInclusive<u16> {
    s.conn.lport_min..=s.conn.lport_max
}

/// Client `n`'s SYN from `cport`: transmitted on port 1 as LIP:lport -> RS:80, TTL-1, timestamps
/// NOPed out (compared byte for byte with a freshly built SYN). Returns the flow.
fn syn(h: &mut H, s: &Setup, n: u8, cport: u16) -> Flow {
    let cseq = 0x1000_0000 * n as u32 + cport as u32;
    let input = from_client(n).tcp((client(n), cport), (VIP, 80), SYN, (cseq, 0), &SYN_OPTS, &[]);
    let range = lport_range(s);
    let out = h.step(
        "client SYN",
        &input,
        0,
        tx(1, move |got| {
            let ip = ip_of(got);
            let (lport, dport) = ports_of(got);
            assert!(range.contains(&lport), "lport {lport} outside {range:?}");
            assert_eq!(dport, 80);
            let i = rs_index(ip.dst_addr());
            let want = to_rs(i).ttl(63).tcp((LIP, lport), (rs(i), 80), SYN, (cseq, 0), &SYN_OPTS_NO_TS, &[]);
            assert_frame_eq(got, &want);
            verify_checksums(got);
        }),
    );
    let f = &out[0].1;
    let (lport, _) = ports_of(f);
    Flow { n, cport, rs: rs_index(ip_of(f).dst_addr()), lport, cseq, sseq: 0x5000_0000 + cport as u32 }
}

/// The real server's SYN-ACK to LIP:lport: transmitted on port 0 as VIP:80 -> client:cport; with TOA
/// the MSS is 8 lower.
fn syn_ack(h: &mut H, fl: &Flow, toa: bool) {
    let input = from_rs(fl.rs).tcp(
        (rs(fl.rs), 80),
        (LIP, fl.lport),
        SYN | ACK,
        (fl.sseq, fl.cseq + 1),
        &SYNACK_OPTS,
        &[],
    );
    let opts = if toa { SYNACK_OPTS_TOA } else { SYNACK_OPTS };
    let want = to_client(fl.n).ttl(63).tcp(
        (VIP, 80),
        (client(fl.n), fl.cport),
        SYN | ACK,
        (fl.sseq, fl.cseq + 1),
        &opts,
        &[],
    );
    h.step("RS SYN-ACK", &input, 1, tx_exact(0, want));
}

/// The client's handshake ACK: with TOA it carries option 254 with the client's address and port.
fn ack(h: &mut H, fl: &Flow, toa: bool) {
    let input =
        from_client(fl.n).tcp((client(fl.n), fl.cport), (VIP, 80), ACK, (fl.cseq + 1, fl.sseq + 1), &[], &[]);
    let opts: Vec<u8> = if toa { toa::toa_option(client(fl.n), fl.cport).to_vec() } else { vec![] };
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &opts,
        &[],
    );
    let (n, cport) = (fl.n, fl.cport);
    h.step(
        "client ACK",
        &input,
        0,
        tx(1, move |got| {
            assert_frame_eq(got, &want);
            verify_checksums(got);
            let t = tcp_of(got);
            if toa {
                assert_eq!(t.header_len(), 28, "data offset grew by 2 words");
                assert_eq!(ip_of(got).total_len(), 20 + 28, "IPv4 total length grew by 8");
                assert_eq!(toa::parse_toa(t.options()), Some((client(n), cport)));
            } else {
                assert_eq!(t.header_len(), 20);
                assert_eq!(toa::parse_toa(t.options()), None);
            }
        }),
    );
}

fn handshake(h: &mut H, s: &Setup, n: u8, cport: u16) -> Flow {
    let toa = s.services[0].toa;
    let fl = syn(h, s, n, cport);
    syn_ack(h, &fl, toa);
    ack(h, &fl, toa);
    fl
}

// ---------------------------------------------------------------------------------------------------
// 1. ARP
// ---------------------------------------------------------------------------------------------------

#[test]
fn arp_table() {
    let cl = (client_mac(1), client(1));
    let r1 = (rs_mac(1), rs(1));
    let reply = |gw_mac: EthernetAddress, ip: Ipv4Addr, to: (EthernetAddress, Ipv4Addr)| {
        arp(ArpOperation::Reply, gw_mac, to.0, (gw_mac, ip), to)
    };
    let rows = vec![
        case("ARP for port 0 address", arp_request(cl, GW0), 0, tx_exact(0, reply(M_GW0, GW0, cl))),
        case("ARP for port 1 address", arp_request(r1, GW1), 1, tx_exact(1, reply(M_GW1, GW1, r1))),
        case("ARP for the VIP", arp_request(cl, VIP), 0, tx_exact(0, reply(M_GW0, VIP, cl))),
        case("ARP for the LIP", arp_request(r1, LIP), 1, tx_exact(1, reply(M_GW1, LIP, r1))),
        case(
            "ARP for the VIP from an unknown host is answered",
            arp_request((mac(0xc0, 0x55), Ipv4Addr::new(198, 18, 0, 55)), VIP),
            0,
            tx_exact(0, reply(M_GW0, VIP, (mac(0xc0, 0x55), Ipv4Addr::new(198, 18, 0, 55)))),
        ),
        case("ARP for a foreign address", arp_request(cl, FOREIGN), 0, Expect::Drop(DropReason::ArpNotOurs)),
        case(
            "ARP for another host on the client subnet",
            arp_request(cl, client(2)),
            0,
            Expect::Drop(DropReason::ArpNotOurs),
        ),
        case(
            "ARP reply claiming the VIP",
            arp(ArpOperation::Reply, M_OTHER, M_GW0, (M_OTHER, VIP), (M_GW0, GW0)),
            0,
            Expect::Drop(DropReason::ArpUnsolicited),
        ),
        case(
            "ARP reply claiming the LIP",
            arp(ArpOperation::Reply, M_OTHER, M_GW1, (M_OTHER, LIP), (M_GW1, GW1)),
            1,
            Expect::Drop(DropReason::ArpUnsolicited),
        ),
        case(
            "ARP reply claiming the port address",
            arp(ArpOperation::Reply, M_OTHER, M_GW1, (M_OTHER, GW1), (M_GW1, GW1)),
            1,
            Expect::Drop(DropReason::ArpUnsolicited),
        ),
        case(
            "ARP reply nobody asked for",
            arp(ArpOperation::Reply, M_OTHER, M_GW1, (M_OTHER, FOREIGN), (M_GW1, GW1)),
            1,
            Expect::Drop(DropReason::ArpUnsolicited),
        ),
        case(
            "truncated ARP",
            edit(arp_request(cl, GW0), |v| v.truncate(ETH + 20)),
            0,
            Expect::Drop(DropReason::ArpMalformed),
        ),
    ];
    run_table(&setup(), rows);
}

#[test]
fn unsolicited_arp_reply_is_not_learned() {
    let s = setup();
    let mut h = H::new(&s);
    h.learn(0, client_mac(1), client(1));
    let before = h.ev(Event::ArpLearned);
    h.step(
        "unsolicited reply from RS 1",
        &arp(ArpOperation::Reply, rs_mac(1), M_GW1, (rs_mac(1), rs(1)), (M_GW1, GW1)),
        1,
        Expect::Drop(DropReason::ArpUnsolicited),
    );
    assert_eq!(h.ev(Event::ArpLearned), before);
    // rr sends the first connection to RS 1: it must be held and RS 1 asked for, not sent blindly.
    let input = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    let out = h.step("SYN to the unresolved RS 1", &input, 0, Expect::Held);
    assert_eq!(out.len(), 1, "one ARP request");
    assert_eq!(out[0].0, 1, "on the server port");
    assert!(is_arp_request_for(&out[0].1, M_GW1, GW1, rs(1)), "{:02x?}", out[0].1);
}

#[test]
fn arp_request_from_off_subnet_sender_is_answered_not_learned() {
    let s = setup();
    let mut h = H::new(&s);
    // 198.18.1.11 asks on the client port: not a neighbour of port 0.
    let who = (rs_mac(1), rs(1));
    h.step(
        "off-subnet ARP request",
        &arp_request(who, GW0),
        0,
        tx_exact(0, arp(ArpOperation::Reply, M_GW0, rs_mac(1), (M_GW0, GW0), who)),
    );
    let input = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    h.learn(0, client_mac(1), client(1));
    let out = h.step("SYN to RS 1", &input, 0, Expect::Held);
    assert!(out.len() == 1 && is_arp_request_for(&out[0].1, M_GW1, GW1, rs(1)));
}

// ---------------------------------------------------------------------------------------------------
// 2. ICMP echo
// ---------------------------------------------------------------------------------------------------

#[test]
fn icmp_table() {
    let data: Vec<u8> = (0u8..56).collect();
    let echo = |pb: Pb, src, dst| pb.ttl(60).icmp(src, dst, icmp::msg::ECHO_REQUEST, 0, 0x4242_0007, &data);
    let reply = |pb: Pb, src, dst| pb.icmp(src, dst, icmp::msg::ECHO_REPLY, 0, 0x4242_0007, &data);
    let rows = vec![
        case(
            "echo to port 0 address",
            echo(from_client(1), client(1), GW0),
            0,
            tx_exact(0, reply(to_client(1), GW0, client(1))),
        ),
        case(
            "echo to port 1 address",
            echo(from_rs(2), rs(2), GW1),
            1,
            tx_exact(1, reply(to_rs(2), GW1, rs(2))),
        ),
        case(
            "echo to the VIP",
            echo(from_client(2), client(2), VIP),
            0,
            tx_exact(0, reply(to_client(2), VIP, client(2))),
        ),
        case("echo to the LIP", echo(from_rs(1), rs(1), LIP), 1, tx_exact(1, reply(to_rs(1), LIP, rs(1)))),
        case(
            "echo from an unresolved host is answered to its MAC",
            echo(Pb::new(M_OTHER, M_GW0), Ipv4Addr::new(198, 18, 0, 99), VIP),
            0,
            tx_exact(0, reply(Pb::new(M_GW0, M_OTHER), VIP, Ipv4Addr::new(198, 18, 0, 99))),
        ),
        case(
            // Fuzz finding (packet_path): id 0, sequence 0 and no data make the reply's bytes all
            // zero, whose checksum must be 0xffff; the RFC 1624 update gave 0x0000 (a bad checksum).
            "echo of all zeros",
            from_client(1).icmp(client(1), VIP, icmp::msg::ECHO_REQUEST, 0, 0, &[]),
            0,
            tx_exact(0, to_client(1).icmp(VIP, client(1), icmp::msg::ECHO_REPLY, 0, 0, &[])),
        ),
        case(
            "echo with a bad ICMP checksum",
            edit(echo(from_client(1), client(1), VIP), |v| v[ETH + 20 + 8] ^= 0xff),
            0,
            Expect::Drop(DropReason::IcmpMalformed),
        ),
        case(
            "timestamp request",
            from_client(1).icmp(client(1), VIP, 13, 0, 0x1, &[0; 12]),
            0,
            Expect::Drop(DropReason::IcmpType),
        ),
        case(
            "echo reply to the VIP",
            from_client(1).icmp(client(1), VIP, icmp::msg::ECHO_REPLY, 0, 0x1, &[0; 8]),
            0,
            Expect::Drop(DropReason::IcmpType),
        ),
        case(
            "truncated ICMP header",
            from_client(1).ip(client(1), VIP, ipv4::PROTO_ICMP, &[8, 0, 0]),
            0,
            Expect::Drop(DropReason::IcmpMalformed),
        ),
        case(
            "echo to a foreign address",
            echo(from_client(1), client(1), FOREIGN),
            0,
            Expect::Drop(DropReason::NotForUs),
        ),
    ];
    run_table(&setup(), rows);
}

// ---------------------------------------------------------------------------------------------------
// 3. FULLNAT TCP
// ---------------------------------------------------------------------------------------------------

#[test]
fn tcp_fullnat_round_robin_and_handshake() {
    let s = setup();
    let mut h = H::resolved(&s);
    let flows: Vec<Flow> = (1..=3).map(|n| syn(&mut h, &s, n, 40000 + n as u16)).collect();
    assert_eq!(flows.iter().map(|f| f.rs).collect::<Vec<_>>(), [1, 2, 3], "rr order");
    assert_eq!(h.w.conns().len(), 3);
    assert_eq!(h.ev(Event::ConnsCreated), 3);
    for fl in &flows {
        syn_ack(&mut h, fl, false);
        ack(&mut h, fl, false);
    }
    assert_eq!(h.ev(Event::ToaInserted), 0);
    // data both ways, with payload, keeps the rewrite
    let fl = flows[1];
    let body = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let input = from_client(2).tcp(
        (client(2), fl.cport),
        (VIP, 80),
        PSH | ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &[],
        body,
    );
    let want =
        to_rs(2).ttl(63).tcp((LIP, fl.lport), (rs(2), 80), PSH | ACK, (fl.cseq + 1, fl.sseq + 1), &[], body);
    h.step("client data", &input, 0, tx_exact(1, want));
    let body = b"HTTP/1.1 200 OK\r\n\r\nhello"; // odd length
    let input =
        from_rs(2).tcp((rs(2), 80), (LIP, fl.lport), PSH | ACK, (fl.sseq + 1, fl.cseq + 28), &[], body);
    let want = to_client(2).ttl(63).tcp(
        (VIP, 80),
        (client(2), fl.cport),
        PSH | ACK,
        (fl.sseq + 1, fl.cseq + 28),
        &[],
        body,
    );
    h.step("server data", &input, 1, tx_exact(0, want));
    // a packet with Ethernet padding leaves without it
    let input =
        from_client(2).tcp((client(2), fl.cport), (VIP, 80), ACK, (fl.cseq + 28, fl.sseq + 25), &[], &[]);
    let padded = edit(input, |v| v.resize(60, 0xee));
    let want =
        to_rs(2).ttl(63).tcp((LIP, fl.lport), (rs(2), 80), ACK, (fl.cseq + 28, fl.sseq + 25), &[], &[]);
    h.step("padded ACK", &padded, 0, tx_exact(1, want));
    // and a segment with TTL 1 on the established connection is dropped
    let input = from_client(2).ttl(1).tcp((client(2), fl.cport), (VIP, 80), ACK, (fl.cseq + 28, 0), &[], &[]);
    h.step("TTL 1 on an established connection", &input, 0, Expect::Drop(DropReason::TtlExceeded));
    assert_eq!(h.w.conns().len(), 3);
}

#[test]
fn tcp_fullnat_with_toa() {
    let s = setup_with(|s| s.services[0].toa = true);
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 50000);
    assert_eq!(h.ev(Event::ToaInserted), 1);
    // Only the first ACK carries TOA: the next data segment goes through unchanged in size.
    let input =
        from_client(1).tcp((client(1), 50000), (VIP, 80), PSH | ACK, (fl.cseq + 1, fl.sseq + 1), &[], b"abc");
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        PSH | ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &[],
        b"abc",
    );
    h.step("data after the TOA ACK", &input, 0, tx_exact(1, want));
    assert_eq!(h.ev(Event::ToaInserted), 1);
}

#[test]
fn toa_goes_after_existing_options_and_before_payload() {
    let s = setup_with(|s| s.services[0].toa = true);
    let mut h = H::resolved(&s);
    let fl = syn(&mut h, &s, 1, 50001);
    syn_ack(&mut h, &fl, true);
    // The handshake ACK carries data and a timestamps-style option block (NOP NOP TS).
    let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let input = from_client(1).tcp(
        (client(1), 50001),
        (VIP, 80),
        PSH | ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &opts,
        b"hi!",
    );
    let mut want_opts = opts.to_vec();
    want_opts.extend_from_slice(&toa::toa_option(client(1), 50001));
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        PSH | ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &want_opts,
        b"hi!",
    );
    h.step("ACK with options and data", &input, 0, tx_exact(1, want));
}

#[test]
fn timestamps_kept_when_stripping_is_off() {
    let s = setup_with(|s| s.conn.strip_timestamps = false);
    let mut h = H::resolved(&s);
    let input = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (7, 0), &SYN_OPTS, &[]);
    h.step(
        "SYN with timestamps",
        &input,
        0,
        tx(1, |got| {
            verify_checksums(got);
            assert_eq!(tcp_of(got).options(), &SYN_OPTS);
        }),
    );
}

// ---------------------------------------------------------------------------------------------------
// 4. UDP
// ---------------------------------------------------------------------------------------------------

#[test]
fn udp_fullnat_both_ways() {
    let s = setup();
    let mut h = H::resolved(&s);
    let range = lport_range(&s);
    for (cport, csum) in [(3333u16, true), (4444, false)] {
        let q = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
        let input = from_client(1).udp(client(1), cport, VIP, 53, q, csum);
        let range = range.clone();
        let out = h.step(
            "DNS query",
            &input,
            0,
            tx(1, move |got| {
                let (lport, dport) = ports_of(got);
                assert!(range.contains(&lport));
                assert_eq!(dport, 5353);
                assert_frame_eq(got, &to_rs(1).ttl(63).udp(LIP, lport, rs(1), 5353, q, csum));
                verify_checksums(got);
                assert_eq!(UdpPacket::new_unchecked(ip_of(got).payload()).checksum() == 0, !csum);
            }),
        );
        let (lport, _) = ports_of(&out[0].1);
        let a = b"answer!"; // odd length
        let input = from_rs(1).udp(rs(1), 5353, LIP, lport, a, csum);
        let want = to_client(1).ttl(63).udp(VIP, 53, client(1), cport, a, csum);
        h.step("DNS answer", &input, 1, tx_exact(0, want));
    }
    assert_eq!(h.w.conns().len(), 2);
    let bad = edit(from_client(2).udp(client(2), 5555, VIP, 53, b"q", true), |v| {
        let n = v.len();
        v[n - 1] ^= 0x55;
    });
    let mut h2 = H::resolved(&s);
    h2.step("UDP with a bad checksum", &bad, 0, Expect::Drop(DropReason::UdpBadChecksum));
}

// ---------------------------------------------------------------------------------------------------
// 5. Drops
// ---------------------------------------------------------------------------------------------------

fn client_syn() -> Vec<u8> {
    from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &SYN_OPTS, &[])
}

#[test]
fn drop_table() {
    use DropReason as D;
    let c1 = from_client(1);
    let syn_to = |dst, dport| c1.tcp((client(1), 40000), (dst, dport), SYN, (1000, 0), &SYN_OPTS, &[]);
    let rows = vec![
        // Options with zero, one-byte and overrunning lengths, and a known kind with a wrong length.
        case(
            "SYN with a zero-length option",
            c1.tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &[2, 4, 5, 180, 30, 0, 1, 1], &[]),
            0,
            Expect::Drop(D::TcpBadOption),
        ),
        case(
            "SYN with a one-byte option length",
            c1.tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &[30, 1, 1, 1], &[]),
            0,
            Expect::Drop(D::TcpBadOption),
        ),
        case(
            "SYN with an option overrunning the header",
            c1.tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &[2, 4, 5, 180, 8, 40, 0, 0], &[]),
            0,
            Expect::Drop(D::TcpBadOption),
        ),
        case(
            "SYN with an MSS option of the wrong length",
            c1.tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &[2, 6, 5, 180, 0, 0, 1, 1], &[]),
            0,
            Expect::Drop(D::TcpBadOption),
        ),
        case(
            "non-SYN to the VIP with no connection",
            c1.tcp((client(1), 40000), (VIP, 80), ACK, (1000, 2000), &[], &[]),
            0,
            Expect::Drop(D::TcpNoConn),
        ),
        case(
            "RST to the VIP with no connection",
            c1.tcp((client(1), 40000), (VIP, 80), RST | ACK, (1000, 2000), &[], &[]),
            0,
            Expect::Drop(D::TcpNoConn),
        ),
        case(
            "SYN-ACK to the VIP with no connection",
            c1.tcp((client(1), 40000), (VIP, 80), SYN | ACK, (1000, 2000), &[], &[]),
            0,
            Expect::Drop(D::TcpNoConn),
        ),
        case("TCP to a VIP port with no service", syn_to(VIP, 81), 0, Expect::Drop(D::NoService)),
        case(
            "UDP to a VIP port with no service",
            c1.udp(client(1), 40000, VIP, 54, b"x", true),
            0,
            Expect::Drop(D::NoService),
        ),
        case("TCP to the port address", syn_to(GW0, 80), 0, Expect::Drop(D::NoService)),
        case(
            "to the LIP with no connection",
            from_rs(1).tcp((rs(1), 80), (LIP, 5000), SYN | ACK, (1, 2), &[], &[]),
            1,
            Expect::Drop(D::LipNoConn),
        ),
        case(
            "SYN to the LIP",
            from_rs(1).tcp((rs(1), 80), (LIP, 80), SYN, (1, 0), &[], &[]),
            1,
            Expect::Drop(D::LipNoConn),
        ),
        case("to a foreign address", syn_to(FOREIGN, 80), 0, Expect::Drop(D::NotForUs)),
        case(
            "to the subnet broadcast",
            syn_to(Ipv4Addr::new(198, 18, 0, 255), 80),
            0,
            Expect::Drop(D::NotForUs),
        ),
        case(
            "SYN+FIN",
            c1.tcp((client(1), 40000), (VIP, 80), SYN | FIN, (1000, 0), &[], &[]),
            0,
            Expect::Drop(D::TcpBadFlags),
        ),
        case(
            "SYN+RST",
            c1.tcp((client(1), 40000), (VIP, 80), SYN | RST, (1000, 0), &[], &[]),
            0,
            Expect::Drop(D::TcpBadFlags),
        ),
        case(
            "no flags",
            c1.tcp((client(1), 40000), (VIP, 80), TcpFlags::NONE, (1000, 0), &[], &[]),
            0,
            Expect::Drop(D::TcpBadFlags),
        ),
        case(
            "FIN without ACK",
            c1.tcp((client(1), 40000), (VIP, 80), FIN, (1000, 0), &[], &[]),
            0,
            Expect::Drop(D::TcpBadFlags),
        ),
        case(
            "bad IPv4 header checksum",
            edit(client_syn(), |v| v[ETH + 10] ^= 0x01),
            0,
            Expect::Drop(D::Ipv4BadChecksum),
        ),
        case(
            "IHL 4",
            edit(client_syn(), |v| {
                v[ETH] = 0x44;
                fix_ip_checksum(v);
            }),
            0,
            Expect::Drop(D::Ipv4BadHeader),
        ),
        case(
            "IP version 6 in an IPv4 ethertype",
            edit(client_syn(), |v| v[ETH] = 0x65),
            0,
            Expect::Drop(D::Ipv4BadHeader),
        ),
        case(
            "total length below the header length",
            edit(client_syn(), |v| {
                v[ETH + 2..ETH + 4].copy_from_slice(&16u16.to_be_bytes());
                fix_ip_checksum(v);
            }),
            0,
            Expect::Drop(D::Ipv4BadHeader),
        ),
        case(
            "total length beyond the frame",
            edit(client_syn(), |v| {
                let tl = (v.len() - ETH + 1) as u16;
                v[ETH + 2..ETH + 4].copy_from_slice(&tl.to_be_bytes());
                fix_ip_checksum(v);
            }),
            0,
            Expect::Drop(D::Ipv4Truncated),
        ),
        case(
            "ICMP fragment to the VIP",
            edit(
                from_client(1).icmp(client(1), VIP, icmp::msg::ECHO_REQUEST, 0, 0x0001_0001, &[0; 32]),
                |v| {
                    v[ETH + 6..ETH + 8].copy_from_slice(&0x2000u16.to_be_bytes());
                    fix_ip_checksum(v);
                },
            ),
            0,
            Expect::Drop(D::Ipv4Fragment),
        ),
        case(
            "TCP fragment at offset 8 (overlapping the header)",
            edit(client_syn(), |v| {
                v[ETH + 6..ETH + 8].copy_from_slice(&0x0001u16.to_be_bytes());
                fix_ip_checksum(v);
            }),
            0,
            Expect::Drop(D::FragOverlap),
        ),
        case(
            "tiny first fragment (the TCP header cut short)",
            edit(client_syn(), |v| {
                v.truncate(ETH + 20 + 8);
                v[ETH + 2..ETH + 4].copy_from_slice(&28u16.to_be_bytes());
                v[ETH + 6..ETH + 8].copy_from_slice(&0x2000u16.to_be_bytes());
                fix_ip_checksum(v);
            }),
            0,
            Expect::Drop(D::FragTiny),
        ),
        case(
            "SYN with TTL 1",
            from_client(1).ttl(1).tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &SYN_OPTS, &[]),
            0,
            Expect::Drop(D::TtlExceeded),
        ),
        case(
            "SYN with TTL 0",
            from_client(1).ttl(0).tcp((client(1), 40000), (VIP, 80), SYN, (1000, 0), &SYN_OPTS, &[]),
            0,
            Expect::Drop(D::TtlExceeded),
        ),
        case(
            "UDP with TTL 1",
            from_client(1).ttl(1).udp(client(1), 40000, VIP, 53, b"q", true),
            0,
            Expect::Drop(D::TtlExceeded),
        ),
        case(
            "broadcast source",
            c1.tcp((Ipv4Addr::BROADCAST, 40000), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4BadSource),
        ),
        case(
            "subnet broadcast source",
            c1.tcp((Ipv4Addr::new(198, 18, 0, 255), 40000), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4BadSource),
        ),
        case(
            "multicast source",
            c1.tcp((Ipv4Addr::new(224, 0, 0, 1), 40000), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4BadSource),
        ),
        case(
            "loopback source",
            c1.tcp((Ipv4Addr::LOCALHOST, 40000), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4BadSource),
        ),
        case(
            "unspecified source",
            c1.tcp((Ipv4Addr::UNSPECIFIED, 40000), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4BadSource),
        ),
        case(
            "land: source = destination",
            c1.tcp((VIP, 80), (VIP, 80), SYN, (1, 0), &[], &[]),
            0,
            Expect::Drop(D::Ipv4Land),
        ),
        case(
            "SYN with a bad TCP checksum",
            edit(client_syn(), |v| {
                let n = v.len();
                v[n - 1] ^= 0x10;
            }),
            0,
            Expect::Drop(D::TcpBadChecksum),
        ),
        case(
            "truncated TCP header",
            c1.ip(client(1), VIP, ipv4::PROTO_TCP, &[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0]),
            0,
            Expect::Drop(D::TcpMalformed),
        ),
        case(
            "TCP data offset beyond the segment",
            edit(c1.tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &[], &[]), |v| {
                v[ETH + 20 + 12] = 0x60;
            }),
            0,
            Expect::Drop(D::TcpMalformed),
        ),
        case(
            "TCP data offset below 5",
            edit(c1.tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &[], &[]), |v| {
                v[ETH + 20 + 12] = 0x40;
            }),
            0,
            Expect::Drop(D::TcpMalformed),
        ),
        case(
            "truncated UDP header",
            c1.ip(client(1), VIP, ipv4::PROTO_UDP, &[0x9c, 0x40, 0, 53]),
            0,
            Expect::Drop(D::UdpMalformed),
        ),
        case(
            "UDP length beyond the datagram",
            edit(c1.udp(client(1), 40000, VIP, 53, b"abcd", false), |v| v[ETH + 20 + 5] = 40),
            0,
            Expect::Drop(D::UdpMalformed),
        ),
        case("GRE to the VIP", c1.ip(client(1), VIP, 47, &[0; 8]), 0, Expect::Drop(D::Protocol)),
        case(
            "VLAN-tagged",
            edit(client_syn(), |v| {
                let tail = v.split_off(12);
                v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
                v.extend(tail);
            }),
            0,
            Expect::Drop(D::Vlan),
        ),
        case(
            "IPv4 packet under the IPv6 EtherType",
            edit(client_syn(), |v| v[12..14].copy_from_slice(&[0x86, 0xdd])),
            0,
            Expect::Drop(D::Ipv6BadVersion),
        ),
        case(
            "an EtherType the gateway does not handle (LLDP)",
            edit(client_syn(), |v| v[12..14].copy_from_slice(&[0x88, 0xcc])),
            0,
            Expect::Drop(D::EtherType),
        ),
        case(
            "frame to another MAC",
            edit(client_syn(), |v| v[0..6].copy_from_slice(&M_OTHER.0)),
            0,
            Expect::Drop(D::NotOurMac),
        ),
        case(
            "frame to port 1's MAC arriving on port 0",
            edit(client_syn(), |v| v[0..6].copy_from_slice(&M_GW1.0)),
            0,
            Expect::Drop(D::NotOurMac),
        ),
        case("runt frame", vec![0xff; 10], 0, Expect::Drop(D::EthTruncated)),
        case("frame on a port that does not exist", client_syn(), 7, Expect::Drop(D::NotOurMac)),
    ];
    run_table(&setup(), rows);
}

#[test]
fn rst_on_miss() {
    let s = setup_with(|s| s.conn.rst_on_miss = true);
    let rows = vec![
        case(
            "ACK with data to the VIP, no connection: RST seq = their ack",
            from_client(1).tcp((client(1), 40000), (VIP, 80), PSH | ACK, (1000, 777_777), &[], b"hello"),
            0,
            tx_exact(
                0,
                to_client(1).window(0).tcp((VIP, 80), (client(1), 40000), RST, (777_777, 0), &[], &[]),
            ),
        ),
        case(
            "ACK with options, no connection: the RST has none",
            from_client(2).ttl(50).tcp(
                (client(2), 40001),
                (VIP, 80),
                ACK,
                (5, 0xffff_fff0),
                &[1, 1, 1, 1],
                &[],
            ),
            0,
            tx_exact(
                0,
                to_client(2).window(0).tcp((VIP, 80), (client(2), 40001), RST, (0xffff_fff0, 0), &[], &[]),
            ),
        ),
        case(
            "RST to the VIP, no connection: never answered",
            from_client(1).tcp((client(1), 40000), (VIP, 80), RST | ACK, (1000, 2000), &[], &[]),
            0,
            Expect::Drop(DropReason::TcpNoConn),
        ),
        case(
            "ACK to a VIP port with no service: no RST",
            from_client(1).tcp((client(1), 40000), (VIP, 81), ACK, (1000, 2000), &[], &[]),
            0,
            Expect::Drop(DropReason::NoService),
        ),
    ];
    run_table(&s, rows);
    let mut h = H::resolved(&s);
    h.run(case(
        "padded ACK: the RST is cut to 54 bytes",
        edit(from_client(3).tcp((client(3), 40003), (VIP, 80), ACK, (1, 2), &[], &[]), |v| v.resize(60, 0)),
        0,
        tx_exact(0, to_client(3).window(0).tcp((VIP, 80), (client(3), 40003), RST, (2, 0), &[], &[])),
    ));
    assert_eq!(h.ev(Event::RstSent), 1);
    assert_eq!(h.w.conns().len(), 0);
}

#[test]
fn truncated_syn_never_panics_or_creates_state() {
    let s = setup();
    let mut h = H::resolved(&s);
    let full = client_syn();
    for len in 0..full.len() {
        let before = h.stats.total_drops();
        let out = {
            h.w.process(VecFrame::from_bytes(&full[..len]), 0, h.now, &mut h.out);
            h.drain()
        };
        assert!(out.is_empty(), "len {len}: transmitted");
        assert_eq!(h.stats.total_drops(), before + 1, "len {len}: exactly one drop");
        assert_eq!(h.w.conns().len(), 0, "len {len}: created a connection");
    }
    assert_eq!(h.stats.drops(DropReason::EthTruncated), ETH as u64);
    assert_eq!(h.stats.drops(DropReason::Ipv4Truncated), (full.len() - ETH) as u64);
    // and the whole frame does create one
    syn(&mut h, &s, 1, 40000);
    assert_eq!(h.w.conns().len(), 1);
}

// ---------------------------------------------------------------------------------------------------
// 6. ICMP error relay
// ---------------------------------------------------------------------------------------------------

#[test]
fn icmp_errors_are_relayed_both_ways() {
    let s = setup();
    let mut h = H::resolved(&s);
    let fl = syn(&mut h, &s, 1, 40000);
    let i = fl.rs;
    // RS side: port unreachable from the RS quoting the SYN it got (LIP:lport -> RS:80).
    let sent_syn =
        to_rs(i).ttl(63).tcp((LIP, fl.lport), (rs(i), 80), SYN, (fl.cseq, 0), &SYN_OPTS_NO_TS, &[]);
    let err =
        from_rs(i).icmp_error(rs(i), LIP, icmp::msg::DEST_UNREACHABLE, icmp::unreach::PORT, &sent_syn[ETH..]);
    // The client sees an error about its own SYN (client:cport -> VIP:80), from the VIP.
    let orig_syn =
        from_client(1).ttl(63).tcp((client(1), 40000), (VIP, 80), SYN, (fl.cseq, 0), &SYN_OPTS, &[]);
    let want = to_client(1).ttl(63).icmp_error(
        VIP,
        client(1),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &orig_syn[ETH..],
    );
    h.step(
        "port unreachable from the RS",
        &err,
        1,
        tx(0, move |got| {
            verify_checksums(got);
            let q = IcmpPacket::new_checked(l4_of(got)).unwrap();
            let q = q.inner().unwrap();
            assert_eq!((q.src_addr(), q.dst_addr(), q.src_port(), q.dst_port()), (client(1), VIP, 40000, 80));
            assert_frame_eq(got, &want);
        }),
    );
    assert_eq!(h.ev(Event::IcmpErrorsRelayed), 1);

    // Client side: the client got the SYN-ACK (VIP:80 -> client:cport) and says host unreachable.
    syn_ack(&mut h, &fl, false);
    let got_synack = to_client(1).ttl(63).tcp(
        (VIP, 80),
        (client(1), 40000),
        SYN | ACK,
        (fl.sseq, fl.cseq + 1),
        &SYNACK_OPTS,
        &[],
    );
    let err = from_client(1).icmp_error(client(1), VIP, icmp::msg::DEST_UNREACHABLE, 1, &got_synack[ETH..]);
    // The RS sees an error about its SYN-ACK (RS:80 -> LIP:lport), from the LIP.
    let rs_synack = from_rs(i).ttl(63).tcp(
        (rs(i), 80),
        (LIP, fl.lport),
        SYN | ACK,
        (fl.sseq, fl.cseq + 1),
        &SYNACK_OPTS,
        &[],
    );
    let want = to_rs(i).ttl(63).icmp_error(LIP, rs(i), icmp::msg::DEST_UNREACHABLE, 1, &rs_synack[ETH..]);
    let lport = fl.lport;
    h.step(
        "host unreachable from the client",
        &err,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            let q = IcmpPacket::new_checked(l4_of(got)).unwrap();
            let q = q.inner().unwrap();
            assert_eq!((q.src_addr(), q.dst_addr(), q.src_port(), q.dst_port()), (rs(i), LIP, 80, lport));
            assert_frame_eq(got, &want);
        }),
    );

    // UDP: frag-needed from the RS about a datagram with a checksum (the quoted UDP checksum moves too).
    let q = b"query";
    let out = h.step(
        "UDP query",
        &from_client(2).udp(client(2), 3333, VIP, 53, q, true),
        0,
        tx(1, verify_checksums),
    );
    let (lport, _) = ports_of(&out[0].1);
    let err =
        from_rs(1).icmp_error(rs(1), LIP, icmp::msg::DEST_UNREACHABLE, icmp::unreach::PORT, &out[0].1[ETH..]);
    let orig = from_client(2).ttl(63).udp(client(2), 3333, VIP, 53, q, true);
    let want = to_client(2).ttl(63).icmp_error(
        VIP,
        client(2),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::PORT,
        &orig[ETH..],
    );
    assert_ne!(lport, 3333);
    h.step("UDP port unreachable from the RS", &err, 1, tx_exact(0, want));

    // Errors about nothing we track.
    let stray = to_rs(1).tcp((LIP, 1234), (rs(1), 80), SYN, (1, 0), &[], &[]);
    let err =
        from_rs(1).icmp_error(rs(1), LIP, icmp::msg::DEST_UNREACHABLE, icmp::unreach::PORT, &stray[ETH..]);
    h.step("error quoting an unknown connection", &err, 1, Expect::Drop(DropReason::IcmpUnknownConn));
    let gre = to_rs(1).ip(LIP, rs(1), 47, &[0; 8]);
    let err =
        from_rs(1).icmp_error(rs(1), LIP, icmp::msg::DEST_UNREACHABLE, icmp::unreach::PROTOCOL, &gre[ETH..]);
    h.step("error quoting GRE", &err, 1, Expect::Drop(DropReason::IcmpUnknownConn));
    let short = from_rs(1).icmp(rs(1), LIP, icmp::msg::DEST_UNREACHABLE, 3, 0, &sent_syn[ETH..ETH + 24]);
    h.step("error quoting too little", &short, 1, Expect::Drop(DropReason::IcmpMalformed));
}

// ---------------------------------------------------------------------------------------------------
// 7. Neighbours
// ---------------------------------------------------------------------------------------------------

#[test]
fn forward_to_unresolved_rs_is_held_until_arp_reply() {
    let s = setup();
    let mut h = H::new(&s);
    h.learn(0, client_mac(1), client(1));
    let input = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (9, 0), &SYN_OPTS, &[]);
    let out = h.step("SYN to unresolved RS 1", &input, 0, Expect::Held);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    let req = &out[0].1;
    assert!(is_arp_request_for(req, M_GW1, GW1, rs(1)), "{req:02x?}");
    assert_eq!(h.ev(Event::ArpRequestsSent), 1);
    let lport = h.w.conns().iter().next().map(|(_, c)| c.lip().1).unwrap();
    // a retransmission waits behind the request already in flight: no second ARP request
    let out = h.step("retransmitted SYN", &input, 0, Expect::Held);
    assert!(out.is_empty());
    // RS 1 answers: both held SYNs go out, to its MAC
    let want = to_rs(1).ttl(63).tcp((LIP, lport), (rs(1), 80), SYN, (9, 0), &SYN_OPTS_NO_TS, &[]);
    let reply = arp(ArpOperation::Reply, rs_mac(1), M_GW1, (rs_mac(1), rs(1)), (M_GW1, GW1));
    let before = h.drops();
    h.w.process(VecFrame::from_bytes(&reply), 1, h.now, &mut h.out);
    let out = h.drain();
    assert_eq!(h.drops(), before, "the ARP reply is consumed, not dropped");
    assert_eq!(out.len(), 2);
    for (p, f) in &out {
        assert_eq!(*p, 1);
        assert_frame_eq(f, &want);
    }
    assert_eq!(h.ev(Event::ArpLearned), 1);
    // from now on forwards go straight out
    let fl = Flow { n: 1, cport: 40000, rs: 1, lport, cseq: 9, sseq: 77 };
    let next = from_client(1).tcp((client(1), 40000), (VIP, 80), ACK, (10, 78), &[], &[]);
    h.step(
        "ACK",
        &next,
        0,
        tx_exact(1, to_rs(1).ttl(63).tcp((LIP, fl.lport), (rs(1), 80), ACK, (10, 78), &[], &[])),
    );
}

#[test]
fn unanswered_arp_drops_held_frames() {
    // A small neighbour table, so each poll looks at every slot.
    let s = setup_with(|s| s.conn.max_neighbours = 4);
    let mut h = H::new(&s);
    h.learn(0, client_mac(1), client(1));
    let input = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (9, 0), &SYN_OPTS, &[]);
    h.step("SYN to unresolved RS 1", &input, 0, Expect::Held);
    let mut requests = 1;
    let mut t = h.now;
    while h.stats.drops(DropReason::NeighUnresolved) == 0 {
        t += 100;
        assert!(t < h.now + 10_000, "held frame never dropped");
        for (p, f) in h.poll(t) {
            assert_eq!(p, 1);
            assert!(is_arp_request_for(&f, M_GW1, GW1, rs(1)));
            requests += 1;
        }
    }
    assert_eq!(requests, crate::neigh::MAX_TRIES as usize);
    assert_eq!(h.stats.drops(DropReason::NeighUnresolved), 1);
}

// ---------------------------------------------------------------------------------------------------
// 8/9. Expiry and per-real counts
// ---------------------------------------------------------------------------------------------------

fn short_timeouts() -> Setup {
    setup_with(|s| {
        s.conn.timeouts = Timeouts { established: 2_000, time_wait: 1_000, udp: 1_000, ..Timeouts::default() }
    })
}

fn counts(h: &H) -> Vec<(u32, u32)> {
    h.w.services().list[0].views.iter().map(|v| (v.active, v.inactive)).collect()
}

#[test]
fn established_connections_expire_and_counts_follow() {
    let s = short_timeouts();
    let mut h = H::resolved(&s);
    for n in 1..=3 {
        let fl = syn(&mut h, &s, n, 41000 + n as u16);
        assert_eq!(counts(&h)[fl.rs as usize - 1], (0, 1), "a new connection starts inactive");
        syn_ack(&mut h, &fl, false);
        ack(&mut h, &fl, false);
    }
    assert_eq!(counts(&h), vec![(1, 0); 3], "three established connections, one per real");
    let last = h.now;
    h.poll(last + 2_000 - 1);
    assert_eq!(h.w.conns().len(), 3, "expired early");
    assert_eq!(h.ev(Event::ConnsExpired), 0);
    h.poll(last + 2_000 + TICK_MS);
    assert_eq!(h.w.conns().len(), 0);
    assert_eq!(h.ev(Event::ConnsExpired), 3);
    assert_eq!(counts(&h), vec![(0, 0); 3]);
    // the old tuple is gone: a late ACK is a miss
    h.step(
        "late ACK",
        &from_client(1).tcp((client(1), 41001), (VIP, 80), ACK, (1, 1), &[], &[]),
        0,
        Expect::Drop(DropReason::TcpNoConn),
    );
}

#[test]
fn activity_refreshes_the_timeout() {
    let s = short_timeouts();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 42000);
    let t0 = h.now;
    h.now = t0 + 1_500;
    let data =
        from_client(1).tcp((client(1), 42000), (VIP, 80), PSH | ACK, (fl.cseq + 1, fl.sseq + 1), &[], b"x");
    h.step("data at +1.5 s", &data, 0, tx(1, verify_checksums));
    h.poll(t0 + 2_000 + TICK_MS);
    assert_eq!(h.w.conns().len(), 1, "refreshed by the data");
    h.poll(t0 + 1_500 + 2_000 + TICK_MS);
    assert_eq!(h.w.conns().len(), 0);
}

#[test]
fn time_wait_and_udp_expire() {
    let s = short_timeouts();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 43000);
    let i = fl.rs;
    // client closes first: FIN, ACK, FIN from the RS, last ACK
    let c = |flags, seq, ack| from_client(1).tcp((client(1), 43000), (VIP, 80), flags, (seq, ack), &[], &[]);
    let r = |flags, seq, ack| from_rs(i).tcp((rs(i), 80), (LIP, fl.lport), flags, (seq, ack), &[], &[]);
    let (cs, ss) = (fl.cseq + 1, fl.sseq + 1);
    h.step("client FIN", &c(FIN | ACK, cs, ss), 0, tx(1, verify_checksums));
    assert_eq!(counts(&h)[i as usize - 1], (0, 1), "no longer established");
    h.step("server FIN", &r(FIN | ACK, ss, cs + 1), 1, tx(0, verify_checksums));
    h.step("client last ACK", &c(ACK, cs + 1, ss + 1), 0, tx(1, verify_checksums));
    let last = h.now;
    // UDP flow created at the same time
    h.step("UDP", &from_client(2).udp(client(2), 5000, VIP, 53, b"q", true), 0, tx(1, verify_checksums));
    assert_eq!(h.w.conns().len(), 2);
    h.poll(last + 1_000 - 1);
    assert_eq!(h.w.conns().len(), 2);
    h.poll(last + 1_000 + TICK_MS);
    assert_eq!(h.w.conns().len(), 0, "TIME_WAIT and UDP after 1 s");
    assert_eq!(h.ev(Event::ConnsExpired), 2);
    assert_eq!(counts(&h), vec![(0, 0); 3]);
}

#[test]
fn unanswered_syn_expires_after_syn_recv_timeout() {
    let s = setup_with(|s| s.conn.timeouts = Timeouts { syn_recv: 3_000, ..Timeouts::default() });
    let mut h = H::resolved(&s);
    let fl = syn(&mut h, &s, 1, 44000);
    let t = h.now;
    h.poll(t + 3_000 - 1);
    assert_eq!(h.w.conns().len(), 1);
    assert_eq!(counts(&h)[fl.rs as usize - 1], (0, 1));
    h.poll(t + 3_000 + TICK_MS);
    assert_eq!(h.w.conns().len(), 0);
    assert_eq!(counts(&h), vec![(0, 0); 3]);
}

// ---------------------------------------------------------------------------------------------------
// 10. Persistence
// ---------------------------------------------------------------------------------------------------

#[test]
fn persistence_pins_a_client_to_its_real() {
    let s = setup_with(|s| s.services[0].persistence_ms = Some(60_000));
    let mut h = H::resolved(&s);
    let a = syn(&mut h, &s, 1, 45000);
    let b = syn(&mut h, &s, 1, 45001);
    let c = syn(&mut h, &s, 1, 45002);
    assert_eq!((a.rs, b.rs, c.rs), (a.rs, a.rs, a.rs), "same client, same real");
    assert_ne!(a.lport, b.lport);
    assert_eq!(h.ev(Event::PersistHits), 2);
    let other = syn(&mut h, &s, 2, 45000);
    assert_ne!(other.rs, a.rs, "another client still goes round robin");
    // without persistence the same client would have been spread
    let s = setup();
    let mut h = H::resolved(&s);
    let x = syn(&mut h, &s, 1, 45000);
    let y = syn(&mut h, &s, 1, 45001);
    assert_ne!(x.rs, y.rs);
}

// ---------------------------------------------------------------------------------------------------
// 11. Resource limits
// ---------------------------------------------------------------------------------------------------

#[test]
fn conn_table_seed_is_per_worker_and_secret() {
    let s = setup();
    let seeds: Vec<u64> = (0..4).map(|i| crate::worker::conn_seed(&s, i)).collect();
    assert_eq!(seeds[1], crate::worker::conn_seed(&s, 1), "deterministic for one secret");
    assert!(seeds.iter().enumerate().all(|(i, a)| seeds[..i].iter().all(|b| a != b)), "{seeds:x?}");
    let mut other = setup();
    other.conn.synproxy.key[0] ^= 1;
    assert_ne!(crate::worker::conn_seed(&other, 0), seeds[0], "the daemon's random secret keys it");
}

#[test]
fn conn_table_full() {
    let s = setup_with(|s| s.conn.max_per_worker = 1);
    let mut h = H::resolved(&s);
    let cap = h.w.conns().capacity();
    assert!(cap < 64, "capacity {cap}");
    for k in 0..cap {
        syn(&mut h, &s, 1, 46000 + k as u16);
    }
    assert_eq!(h.w.conns().len(), cap);
    let input = from_client(2).tcp((client(2), 46000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    h.step("SYN with a full table", &input, 0, Expect::Drop(DropReason::ConnTableFull));
    let input = from_client(2).udp(client(2), 46000, VIP, 53, b"q", true);
    h.step("UDP with a full table", &input, 0, Expect::Drop(DropReason::ConnTableFull));
}

#[test]
fn lport_exhaustion() {
    let s = setup_with(|s| {
        s.conn.lport_min = 5000;
        s.conn.lport_max = 5001;
        s.services[0].reals.truncate(1);
    });
    let mut h = H::resolved(&s);
    let a = syn(&mut h, &s, 1, 47000);
    let b = syn(&mut h, &s, 2, 47000);
    let mut used = [a.lport, b.lport];
    used.sort_unstable();
    assert_eq!(used, [5000, 5001]);
    let input = from_client(3).tcp((client(3), 47000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    h.step("third SYN, two local ports", &input, 0, Expect::Drop(DropReason::LportExhausted));
    assert_eq!(h.ev(Event::LportRetry), 1);
    // UDP goes to a different real server port, so its tuples are still free
    h.step("UDP", &from_client(3).udp(client(3), 47000, VIP, 53, b"q", true), 0, tx(1, verify_checksums));
}

#[test]
fn no_real_server() {
    let s = setup_with(|s| {
        for r in &mut s.services[0].reals {
            r.weight = 0;
        }
    });
    let mut h = H::resolved(&s);
    h.run(case("SYN, every real at weight 0", client_syn(), 0, Expect::Drop(DropReason::NoRealServer)));
}

/// Client `n`'s DF packet `big` is answered on port 0 with fragmentation-needed naming `mtu`, from
/// the VIP, quoting the header and 8 bytes of `quoted` (the packet as forwarding saw it).
fn frag_needed_step(h: &mut H, desc: &str, big: &[u8], n: u8, quoted: &[u8], mtu: u32) {
    let want = to_client(n).ident(0).dont_frag(false).icmp(
        VIP,
        client(n),
        icmp::msg::DEST_UNREACHABLE,
        icmp::unreach::FRAG_NEEDED,
        mtu,
        &quoted[ETH..ETH + 28],
    );
    h.step(
        desc,
        big,
        0,
        tx(0, move |got| {
            verify_checksums(got);
            assert_frame_eq(got, &want);
        }),
    );
}

#[test]
fn mtu_is_enforced_on_the_way_out() {
    let s = setup_with(|s| s.ports[1].mtu = 100);
    let mut h = H::resolved(&s);
    let fl = syn(&mut h, &s, 1, 48000);
    // DF set: fragmentation-needed from the VIP, naming 100, quoting the client's own packet.
    let big =
        from_client(1).tcp((client(1), 48000), (VIP, 80), PSH | ACK, (fl.cseq + 1, 1), &[], &[0x5a; 61]);
    let quoted = from_client(1).ttl(63).tcp(
        (client(1), 48000),
        (VIP, 80),
        PSH | ACK,
        (fl.cseq + 1, 1),
        &[],
        &[0x5a; 61],
    );
    frag_needed_step(&mut h, "101-byte DF packet, MTU 100", &big, 1, &quoted, 100);
    assert_eq!(h.ev(Event::FragNeededSent), 1);
    let fits =
        from_client(1).tcp((client(1), 48000), (VIP, 80), PSH | ACK, (fl.cseq + 1, 1), &[], &[0x5a; 60]);
    h.step("100-byte packet", &fits, 0, tx(1, verify_checksums));
    // DF clear: two fragments (80 + 1 bytes of the rewritten segment) that reassemble to it.
    let big = from_client(1).dont_frag(false).tcp(
        (client(1), 48000),
        (VIP, 80),
        PSH | ACK,
        (fl.cseq + 1, 1),
        &[],
        &[0x5a; 61],
    );
    let whole = to_rs(fl.rs).ttl(63).dont_frag(false).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        PSH | ACK,
        (fl.cseq + 1, 1),
        &[],
        &[0x5a; 61],
    );
    h.w.process(VecFrame::from_bytes(&big), 0, h.now, &mut h.out);
    let out = h.drain();
    h.assert_accounting("fragmented");
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(p, _)| *p == 1));
    let mut frags: Vec<Vec<u8>> = out.into_iter().map(|(_, f)| f).collect();
    frags.sort_by_key(|f| ip_of(f).frag_offset());
    let (a, b) = (ip_of(&frags[0]), ip_of(&frags[1]));
    assert_eq!((a.frag_offset(), a.more_frags(), a.total_len()), (0, true, 100));
    assert_eq!((b.frag_offset(), b.more_frags(), b.total_len()), (80, false, 21));
    for f in &frags {
        let ip = ip_of(f);
        let mut hdr = ip.header().to_vec();
        hdr[10..12].fill(0);
        assert_eq!(ip.checksum(), checksum::internet_checksum(&hdr), "fragment header checksum");
        assert_eq!((ip.ident(), ip.dont_frag()), (0x1234, false));
        assert_eq!(&f[..ETH], &whole[..ETH]);
    }
    let mut joined = whole[ETH + 20..ETH + 20].to_vec();
    joined.extend_from_slice(ip_of(&frags[0]).payload());
    joined.extend_from_slice(ip_of(&frags[1]).payload());
    assert_eq!(joined, whole[ETH + 20..], "the fragments reassemble to the rewritten segment");
    assert_eq!(h.ev(Event::FragmentsBuilt), 1);
}

// ---------------------------------------------------------------------------------------------------
// 12. Pool changes (Worker::apply)
// ---------------------------------------------------------------------------------------------------

/// A data segment from the client on an established flow reaches the flow's own real server.
fn data_to_rs(h: &mut H, fl: &Flow) {
    let input = from_client(fl.n).tcp(
        (client(fl.n), fl.cport),
        (VIP, 80),
        ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &[],
        b"GET",
    );
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        ACK,
        (fl.cseq + 1, fl.sseq + 1),
        &[],
        b"GET",
    );
    h.step("client data", &input, 0, tx_exact(1, want));
}

#[test]
fn pool_change_keeps_connections_on_their_real_and_carries_counts() {
    let s = setup();
    let mut h = H::resolved(&s);
    let flows: Vec<Flow> = (1..=3).map(|n| handshake(&mut h, &s, n, 40_000 + n as u16)).collect();
    let on_rs2 = flows.iter().find(|f| f.rs == 2).expect("rr put one flow on .12").cport;
    // Reorder the pool, drop .11, add a new real .14 with weight 3, and change .12's weight.
    let s2 = setup_with(|s| {
        let reals = &mut s.services[0].reals;
        let mut r12 = reals[1];
        r12.weight = 5;
        reals.clear();
        reals.push(real(3, 80));
        reals.push(r12);
        reals.push(RealSetup { weight: 3, ..real(4, 80) });
    });
    h.w.apply(&s2);
    let svc = &h.w.services().list[0];
    let idx = |i: u8| svc.reals.iter().position(|r| r.addr == rs(i)).unwrap();
    assert_eq!(svc.views[idx(2)].active, 1, "count of .12 carried over");
    assert_eq!(svc.views[idx(2)].weight, 5, "new weight applied");
    assert_eq!(svc.views[idx(3)].active, 1);
    assert_eq!(svc.views[idx(4)].active, 0);
    assert_eq!(svc.counters[idx(2)].conns, 1, "traffic counters carried over");
    // Every existing flow, including the one on the removed .11 (kept by default), still reaches
    // its own real server.
    for fl in &flows {
        data_to_rs(&mut h, fl);
    }
    assert_eq!(h.w.conns().len(), 3);
    assert!(flows.iter().any(|f| f.cport == on_rs2 && f.rs == 2));
}

#[test]
fn removed_real_with_expire_policy_drops_its_connections_only() {
    let s = setup_with(|s| s.conn.expire_on_real_removed = true);
    let mut h = H::resolved(&s);
    let flows: Vec<Flow> = (1..=3).map(|n| handshake(&mut h, &s, n, 41_000 + n as u16)).collect();
    let s2 = setup_with(|s2| {
        *s2 = s.clone();
        s2.services[0].reals.retain(|r| r.addr != rs(1));
    });
    h.w.apply(&s2);
    assert_eq!(h.w.conns().len(), 2, "the connection to .11 is gone");
    for fl in flows.iter().filter(|f| f.rs != 1) {
        data_to_rs(&mut h, fl);
    }
    let gone = flows.iter().find(|f| f.rs == 1).unwrap();
    let input = from_client(gone.n).tcp(
        (client(gone.n), gone.cport),
        (VIP, 80),
        ACK,
        (gone.cseq + 1, gone.sseq + 1),
        &[],
        b"x",
    );
    h.step("segment of a dropped connection", &input, 0, Expect::Drop(DropReason::TcpNoConn));
    // New connections only go to the remaining reals.
    let fl = syn(&mut h, &s2, 3, 42_000);
    assert_ne!(fl.rs, 1);
}

#[test]
fn deleted_service_stops_matching_and_its_connections_find_no_service_state() {
    let s = setup();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 43_000);
    let s2 = setup_with(|s| s.services.retain(|x| x.vport != 80));
    h.w.apply(&s2);
    // The kept connection is still forwarded (LVS keeps connections of a removed service until they
    // expire); a new SYN to the port finds no service.
    data_to_rs(&mut h, &fl);
    let input = from_client(2).tcp((client(2), 43_001), (VIP, 80), SYN, (7, 0), &SYN_OPTS, &[]);
    h.step("SYN to the deleted service", &input, 0, Expect::Drop(DropReason::NoService));
    // Expiry of the orphaned connection touches no service and does not panic.
    h.poll(h.now + 2_000_000);
    assert_eq!(h.w.conns().len(), 0);
}

#[test]
fn syn_reusing_a_closed_tuple_is_scheduled_afresh() {
    let s = setup();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 44_000);
    // The client resets: the entry goes to CLOSE but stays in the table for its timeout.
    let rst = from_client(1).tcp((client(1), 44_000), (VIP, 80), RST, (fl.cseq + 1, 0), &[], &[]);
    h.step("client RST", &rst, 0, tx(1, |_| {}));
    assert_eq!(h.w.conns().len(), 1);
    // The same client port opens a new connection: rr moves on to the next real server, and the
    // old entry is replaced, not reused.
    let again = syn(&mut h, &s, 1, 44_000);
    assert_ne!(again.rs, fl.rs, "scheduled afresh, not sent down the old connection");
    assert_eq!(h.ev(Event::ConnsReused), 1);
    assert_eq!(h.w.conns().len(), 1);
    let svc = &h.w.services().list[0];
    let total: u32 = svc.views.iter().map(|v| v.active + v.inactive).sum();
    assert_eq!(total, 1, "the replaced connection's count is gone");
}

#[test]
fn draining_refuses_new_connections_and_keeps_established_ones() {
    let s = setup();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 45_000);
    h.w.set_draining(true);
    data_to_rs(&mut h, &fl);
    let syn = from_client(2).tcp((client(2), 45_001), (VIP, 80), SYN, (77, 0), &SYN_OPTS, &[]);
    let want =
        to_client(2).ttl(64).window(0).tcp((VIP, 80), (client(2), 45_001), RST | ACK, (0, 78), &[], &[]);
    h.step("SYN while draining", &syn, 0, tx_exact(0, want));
    assert_eq!(h.ev(Event::RefusedDraining), 1);
    let udp = from_client(2).udp(client(2), 5353, VIP, 53, b"q", true);
    h.step("new UDP flow while draining", &udp, 0, Expect::Drop(DropReason::Draining));
    assert_eq!(h.w.conns().len(), 1, "nothing new tracked while draining");
}

// ---------------------------------------------------------------------------------------------------
// 13. SYN-proxy
// ---------------------------------------------------------------------------------------------------

fn ts_of(frame: &[u8]) -> Option<(u32, u32)> {
    tcp_of(frame).options_iter().find_map(|o| match o {
        Ok(TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
        _ => None,
    })
}

fn sp_setup() -> Setup {
    setup_with(|s| {
        s.services[0].synproxy = true;
        s.conn.synproxy.max_held = 3;
    })
}

/// Client `n`'s SYN from `cport` is answered by the gateway itself with a cookie SYN-ACK; returns
/// (cookie ISN, our TSval).
fn sp_syn(h: &mut H, n: u8, cport: u16, cisn: u32) -> (u32, u32) {
    let conns = h.w.conns().len();
    let syn = from_client(n).tcp((client(n), cport), (VIP, 80), SYN, (cisn, 0), &SYN_OPTS, &[]);
    let out = h.step(
        "client SYN to a SYN-proxied service",
        &syn,
        0,
        tx(0, move |got| {
            verify_checksums(got);
            let ip = ip_of(got);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, client(n)));
            let t = tcp_of(got);
            assert_eq!((t.src_port(), t.dst_port()), (80, cport));
            assert!(t.flags().syn() && t.flags().ack());
            assert_eq!(t.ack_number(), cisn.wrapping_add(1));
            assert_eq!(t.mss_option(), Some(1460));
            assert_eq!(ts_of(got).map(|t| t.1), Some(0x0000_1234), "TSecr echoes the client's TSval");
        }),
    );
    assert_eq!(h.w.conns().len(), conns, "no state for a SYN");
    assert_eq!(h.ev(Event::SynproxySynAcks), 1 + h.ev(Event::SynproxySynAcks) - 1);
    let f = &out[0].1;
    (tcp_of(f).seq_number(), ts_of(f).unwrap().0)
}

/// The client's handshake ACK: the gateway opens the real-server side. Returns (rs index, lport)
/// and checks the SYN the real server gets.
fn sp_ack(h: &mut H, n: u8, cport: u16, cisn: u32, cookie: u32, our_ts: u32) -> (u8, u16) {
    let ts = {
        let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..8].copy_from_slice(&0x1234_0010u32.to_be_bytes());
        o[8..12].copy_from_slice(&our_ts.to_be_bytes());
        o
    };
    let ack =
        from_client(n).tcp((client(n), cport), (VIP, 80), ACK, (cisn + 1, cookie.wrapping_add(1)), &ts, &[]);
    let out = h.step(
        "client ACK with a valid cookie",
        &ack,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            let ip = ip_of(got);
            assert_eq!(ip.src_addr(), LIP);
            let t = tcp_of(got);
            assert!(t.flags().syn() && !t.flags().ack(), "a SYN to the real server");
            assert_eq!(t.seq_number(), cisn, "with the client's own ISN");
            assert_eq!(t.mss_option(), Some(1460), "the cookie's MSS class");
            let opts: Vec<_> = t.options_iter().filter_map(|o| o.ok()).collect();
            assert!(opts.contains(&TcpOption::SackPermitted));
            assert!(opts.contains(&TcpOption::WindowScale(7)));
            assert_eq!(ts_of(got), Some((0x1234_0010, 0)), "the client's current TSval");
        }),
    );
    assert_eq!(h.w.synproxy_held(), 1, "the client's ACK waits for the real server");
    let f = &out[0].1;
    (rs_index(ip_of(f).dst_addr()), tcp_of(f).src_port())
}

#[test]
fn synproxy_handshake_then_shifted_data_both_ways() {
    let s = sp_setup();
    let mut h = H::resolved(&s);
    let cisn = 0xffff_fff0; // wraps during the exchange
    let (cookie, our_ts) = sp_syn(&mut h, 1, 46_000, cisn);
    let (i, lport) = sp_ack(&mut h, 1, 46_000, cisn, cookie, our_ts);
    assert_eq!(h.w.conns().len(), 1);
    // The real server's SYN-ACK: consumed; the held ACK goes on, shifted into the server's space.
    let rs_isn: u32 = 0x7000_0000;
    let rs_ts: u32 = 0x0abc_0000;
    let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&rs_ts.to_be_bytes());
    o[8..12].copy_from_slice(&0x1234_0010u32.to_be_bytes());
    let synack =
        from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (rs_isn, cisn.wrapping_add(1)), &o, &[]);
    h.step(
        "real server SYN-ACK",
        &synack,
        1,
        tx(1, move |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!(t.flags(), ACK);
            assert_eq!(t.seq_number(), cisn.wrapping_add(1));
            assert_eq!(t.ack_number(), rs_isn + 1, "ack shifted from cookie to server space");
            assert_eq!(ts_of(got).unwrap().1, rs_ts, "TSecr shifted onto the server's clock");
        }),
    );
    assert_eq!(h.ev(Event::SynproxyHandshakes), 1);
    assert_eq!(h.w.synproxy_held(), 0);
    // Server data to the client: seq into cookie space, TSval onto our clock.
    let d = from_rs(i).tcp(
        (rs(i), 80),
        (LIP, lport),
        ACK | PSH,
        (rs_isn + 1, cisn.wrapping_add(1)),
        &o,
        b"hello",
    );
    h.step(
        "server data",
        &d,
        1,
        tx(0, move |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!(t.seq_number(), cookie.wrapping_add(1));
            assert_eq!(ts_of(got).unwrap().0, our_ts, "the client sees our clock");
        }),
    );
    // Client ACK of it with a SACK block: both shifted into server space.
    let sack = {
        let mut v = vec![1u8, 1, 5, 10];
        v.extend_from_slice(&cookie.wrapping_add(100).to_be_bytes());
        v.extend_from_slice(&cookie.wrapping_add(200).to_be_bytes());
        v
    };
    let a = from_client(1).tcp(
        (client(1), 46_000),
        (VIP, 80),
        ACK,
        (cisn.wrapping_add(1), cookie.wrapping_add(6)),
        &sack,
        &[],
    );
    h.step(
        "client ACK with SACK",
        &a,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!(t.ack_number(), rs_isn + 6);
            let blocks: Vec<(u32, u32)> = t
                .options_iter()
                .find_map(|o| match o {
                    Ok(TcpOption::Sack(b)) => Some(b.iter().collect()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(blocks, vec![(rs_isn + 100, rs_isn + 200)]);
        }),
    );
}

#[test]
fn synproxy_defences() {
    let s = setup_with(|s| {
        s.services[0].synproxy = true;
        s.conn.synproxy.max_held = 2;
        s.conn.synproxy.max_half_open = 1;
    });
    let mut h = H::resolved(&s);
    // A forged ACK: dropped, no state.
    let forged = from_client(2).tcp((client(2), 47_000), (VIP, 80), ACK, (5, 0x1234_5678), &[], &[]);
    h.step("ACK with a forged cookie", &forged, 0, Expect::Drop(DropReason::SynproxyBadCookie));
    // A real handshake, then the client repeats its ACK while the real server is silent.
    let (cookie, ts) = sp_syn(&mut h, 1, 47_001, 1000);
    let (i, lport) = sp_ack(&mut h, 1, 47_001, 1000, cookie, ts);
    let data =
        from_client(1).tcp((client(1), 47_001), (VIP, 80), ACK | PSH, (1001, cookie + 1), &[], b"GET /");
    h.step("client data while half-open is held", &data, 0, Expect::Held);
    h.step("held limit", &data, 0, Expect::Drop(DropReason::SynproxyHeldFull));
    // The half-open bound: a second client's valid ACK is refused.
    let (cookie2, ts2) = sp_syn(&mut h, 2, 47_002, 2000);
    let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[8..12].copy_from_slice(&ts2.to_be_bytes());
    let ack2 = from_client(2).tcp((client(2), 47_002), (VIP, 80), ACK, (2001, cookie2 + 1), &o, &[]);
    h.step("half-open bound", &ack2, 0, Expect::Drop(DropReason::SynproxyHalfOpenFull));
    // The real server refuses: its RST becomes the client's, in the client's window.
    let rst = from_rs(i).tcp((rs(i), 80), (LIP, lport), RST | ACK, (0, 1001), &[], &[]);
    h.w.process(VecFrame::from_bytes(&rst), 1, h.now, &mut h.out);
    let out = h.drain();
    assert_eq!(out.len(), 1);
    let (port, got) = &out[0];
    assert_eq!(*port, 0);
    verify_checksums(got);
    let t = tcp_of(got);
    assert!(t.flags().rst());
    assert_eq!(t.seq_number(), cookie.wrapping_add(1), "in the client's window");
    assert_eq!(ip_of(got).dst_addr(), client(1));
    assert_eq!(h.stats.drops(DropReason::SynproxyAborted), 2, "the two held packets");
    h.assert_accounting("after the refusal");
    assert_eq!(h.ev(Event::SynproxyRsRefused), 1);
    assert_eq!(h.w.conns().len(), 0);
    assert_eq!(h.w.synproxy_held(), 0, "held packets dropped and counted");
}

#[test]
fn synproxy_silent_real_server_gets_retries_then_the_client_a_rst() {
    let s = sp_setup();
    let mut h = H::resolved(&s);
    let (cookie, ts) = sp_syn(&mut h, 1, 48_000, 9);
    sp_ack(&mut h, 1, 48_000, 9, cookie, ts);
    let mut syns = 0;
    let mut rst = None;
    let start = h.now;
    for k in 1..=20 {
        for (port, f) in h.poll(start + k * 500) {
            let t = tcp_of(&f);
            if port == 1 && t.flags().syn() {
                syns += 1;
            } else if port == 0 && t.flags().rst() {
                rst = Some(f);
            }
        }
    }
    assert_eq!(syns, s.conn.synproxy.syn_retries, "one SYN per retry");
    let rst = rst.expect("the client got a RST");
    verify_checksums(&rst);
    assert_eq!(tcp_of(&rst).seq_number(), cookie.wrapping_add(1));
    assert_eq!(h.ev(Event::SynproxyRsTimeouts), 1);
    assert_eq!(h.w.conns().len(), 0);
}

#[test]
fn synproxy_ack_storm_is_cut() {
    let s = sp_setup();
    let mut h = H::resolved(&s);
    let (cookie, ts) = sp_syn(&mut h, 1, 49_000, 77);
    sp_ack(&mut h, 1, 49_000, 77, cookie, ts);
    let dup = from_client(1).tcp((client(1), 49_000), (VIP, 80), ACK, (78, cookie + 1), &[], &[]);
    // Held up to the per-connection bound, then the same ACK over and over is an ack storm.
    let mut storm = 0;
    for _ in 0..30 {
        let before = h.stats.drops(DropReason::SynproxyAckStorm);
        h.w.process(VecFrame::from_bytes(&dup), 0, h.now, &mut h.out);
        h.drain();
        storm += h.stats.drops(DropReason::SynproxyAckStorm) - before;
    }
    assert!(storm >= 30 - s.conn.synproxy.ack_storm as u64 - 3, "ack storm dropped: {storm}");
    h.assert_accounting("after the storm");
}

#[test]
fn synproxy_releases_held_data_in_order_after_the_real_server_answers() {
    let s = sp_setup();
    let mut h = H::resolved(&s);
    let cisn = 500;
    let (cookie, our_ts) = sp_syn(&mut h, 1, 50_000, cisn);
    let (i, lport) = sp_ack(&mut h, 1, 50_000, cisn, cookie, our_ts);
    // The client does not wait: its request arrives while the real server is still silent.
    let req = from_client(1).tcp(
        (client(1), 50_000),
        (VIP, 80),
        ACK | PSH,
        (cisn + 1, cookie + 1),
        &[],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    h.step("client request while half-open", &req, 0, Expect::Held);
    assert_eq!(h.w.synproxy_held(), 2);
    let rs_isn: u32 = 0x9000_0000;
    let synack = from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (rs_isn, cisn + 1), &[], &[]);
    h.w.process(VecFrame::from_bytes(&synack), 1, h.now, &mut h.out);
    let out = h.drain();
    h.assert_accounting("after the release");
    assert_eq!(out.len(), 2, "the handshake ACK, then the request");
    for (port, f) in &out {
        assert_eq!(*port, 1);
        verify_checksums(f);
        let t = tcp_of(f);
        assert_eq!(t.ack_number(), rs_isn + 1, "acknowledgements in the real server's space");
        assert_eq!(t.dst_port(), 80);
        assert_eq!(ip_of(f).src_addr(), LIP);
    }
    assert!(tcp_of(&out[0].1).payload().is_empty());
    assert_eq!(tcp_of(&out[1].1).payload(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.w.synproxy_held(), 0);
}

// ---------------------------------------------------------------------------------------------------
// Several workers sharing the ports: hand-off of replies, ARP and ICMP between them
// ---------------------------------------------------------------------------------------------------

mod burst;
mod frag;
mod ipv6;
mod modes;
mod multi;
mod proxy;
