//! The worker's whole packet path (parse, classify, lookup or create, rewrite, route, ARP, emit)
//! driven by a sequence of operations with fuzzer-controlled time and configuration.
//!
//! Besides raw bytes, operations build valid frames from fuzzed fields (TCP, UDP, ARP, ICMP echo
//! and errors) with correct checksums, and answer frames the worker sent (the real server's reply,
//! the neighbour's ARP reply, a router's ICMP error quoting it), so the fuzzer reaches established
//! connections, TOA, persistence, timers and pool changes instead of stopping at the checksums.
//!
//! Invariants checked after every operation:
//! - no panic;
//! - the connection table never holds more than its capacity, and every real server's
//!   active/inactive counts equal the connections the table holds for it;
//! - the outbox never holds more than its capacity per port;
//! - frame accounting: every frame that entered (received, or an ARP request the worker made) was
//!   transmitted, dropped with exactly one reason, consumed as a learned ARP reply, or is held
//!   awaiting ARP, and the frames alive outside the harness are exactly the held ones;
//! - every transmitted frame has the port's source MAC and is a well-formed ARP packet or an IPv4
//!   packet with a valid header checksum and a total length matching the frame; while every input
//!   carried valid L4 checksums, so does every output (TCP, UDP, ICMP and the quoted IPv4 header);
//! - IPv6 (dual-stack ports, an IPv6 FULLNAT service and NAT64 services always configured): the
//!   same for transmitted IPv6 frames (payload length matching the frame, hop limit above 0,
//!   transport checksums valid while the inputs' were), per-real counts against the IPv6 table,
//!   and inputs with fuzzed extension-header chains, payload lengths, NDP options and hop limits;
//! - at the end, after time runs on far enough, every connection has expired and every held frame
//!   has been sent or dropped.
#![no_main]

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rvs_dataplane::conn::Timeouts;
use rvs_dataplane::flow::{Millis, Proto};
use rvs_dataplane::frame::{Frame, FramePool, VecFrame};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::proxy::Version as ProxyVersion;
use rvs_dataplane::wire::testkit::{self, FrameBuilder};
use rvs_dataplane::wire::{
    icmp, icmpv6, ipv4, ipv6, ndp, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, IcmpPacket,
    Ipv4Packet, Ipv4Repr, TcpFlags, TcpOption, TcpOptionList, TcpPacket, TcpRepr, UdpPacket,
};
use rvs_dataplane::worker::{
    ConnSetup, Outbox, PortSetup, RealSetup, ServiceSetup, Setup, SynproxySetup, Worker,
};
use rvs_dataplane::xmit::Xlat;

const ETH: usize = 14;
const M_GW: [EthernetAddress; 2] =
    [EthernetAddress([0x02, 0, 0, 0, 0, 1]), EthernetAddress([0x02, 0, 0, 0, 1, 1])];
const GW: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 1)];
const VIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 100), Ipv4Addr::new(198, 18, 0, 101)];
const LIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 1, 100), Ipv4Addr::new(198, 18, 1, 101)];
/// Largest frame a `VecFrame` holds.
const MAX_FRAME: usize = VecFrame::CAPACITY - VecFrame::HEADROOM;
/// Upper bound on operations per input, so one input stays fast.
const MAX_OPS: usize = 256;

/// The IPv6 side: port addresses, the IPv6 VIP and LIP, the NAT64 VIP and its IPv4 LIP.
const GW6: [Ipv6Addr; 2] =
    [Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1)];
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x100);
const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x100);
const VIP64: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x64);
const LIP64: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 64);

fn client6(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10 * (u16::from(n % 4) + 1))
}
fn real6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x11 + u16::from(i % 4))
}
fn mac6(a: Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x02, 0x06, o[12], o[13], o[14], o[15]])
}

/// The IPv6 and NAT64 services every setup carries besides the fuzzed IPv4 ones.
fn v6_services() -> Vec<ServiceSetup> {
    let r = |addr: IpAddr, port| RealSetup {
        id: 0,
        addr,
        port,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        xlat: Xlat::FullNat,
    };
    let svc = |proto, vip: Ipv6Addr, vport, laddr: IpAddr, reals| ServiceSetup {
        id: 0,
        proto,
        vip: vip.into(),
        vport,
        sched: SchedKind::Rr,
        persistence_ms: None,
        toa: true,
        synproxy: false,
        proxy_protocol: None,
        laddrs: vec![laddr],
        reals,
    };
    let synproxied = |mut s: ServiceSetup| {
        s.synproxy = true;
        s
    };
    vec![
        svc(Proto::Tcp, VIP6, 80, LIP6.into(), (0..3).map(|i| r(real6(i).into(), 80)).collect()),
        // SYN-proxied: over IPv6 (port 443 of the IPv6 VIP) and NAT64 (port 443 of its VIP).
        synproxied(svc(Proto::Tcp, VIP6, 443, LIP6.into(), (0..3).map(|i| r(real6(i).into(), 443)).collect())),
        synproxied(svc(Proto::Tcp, VIP64, 443, LIP64.into(), (0..3).map(|i| r(real(i).into(), 443)).collect())),
        svc(Proto::Udp, VIP6, 53, LIP6.into(), vec![r(real6(0).into(), 5353)]),
        svc(Proto::Tcp, VIP64, 80, LIP64.into(), (0..3).map(|i| r(real(i).into(), 80)).collect()),
        svc(Proto::Udp, VIP64, 53, LIP64.into(), vec![r(real(0).into(), 5353)]),
    ]
}

fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 * (n % 4 + 1))
}
fn real(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, 11 + i % 4)
}
/// Every simulated host's MAC is derived from its address, so answers are consistent.
fn mac_of(a: Ipv4Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x02, 0x00, o[0], o[1], o[2], o[3]])
}

// ---------------------------------------------------------------------------------------------------
// A frame and pool that count live frames, so leaks and double counting show.
// ---------------------------------------------------------------------------------------------------

struct CFrame {
    f: VecFrame,
    live: Rc<Cell<usize>>,
}

impl CFrame {
    fn new(f: VecFrame, live: &Rc<Cell<usize>>) -> CFrame {
        live.set(live.get() + 1);
        CFrame { f, live: live.clone() }
    }
}

impl Drop for CFrame {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

impl Frame for CFrame {
    fn data(&self) -> &[u8] {
        self.f.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.f.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.f.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.f.adj(n)
    }
    fn append(&mut self, n: usize) -> bool {
        self.f.append(n)
    }
    fn trim(&mut self, n: usize) -> bool {
        self.f.trim(n)
    }
}

struct CPool {
    live: Rc<Cell<usize>>,
    remaining: Option<usize>,
}

impl FramePool for CPool {
    type Frame = CFrame;
    fn alloc(&mut self) -> Option<CFrame> {
        match &mut self.remaining {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        Some(CFrame::new(VecFrame::empty(), &self.live))
    }
}

// ---------------------------------------------------------------------------------------------------
// Fuzzed configuration
// ---------------------------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum VPort {
    Http,
    Dns,
    Https,
    Any(u16),
}

impl VPort {
    fn get(&self) -> u16 {
        match self {
            VPort::Http => 80,
            VPort::Dns => 53,
            VPort::Https => 443,
            VPort::Any(p) => *p,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RealKnob {
    host: u8,
    port: VPort,
    weight: u8,
    u_threshold: u8,
    l_threshold: u8,
    /// Forwarding mode (two bits: FULLNAT, NAT, DR, TUN).
    mode: u8,
}

#[derive(Arbitrary, Debug)]
struct SvcKnob {
    /// SYN-proxy on a TCP service.
    synproxy: bool,
    /// PROXY protocol on a TCP service without TOA: 1 = v1, 2 = v2, else none.
    proxy_protocol: u8,
    udp: bool,
    vip: bool,
    vport: VPort,
    sched: u8,
    persistence_s: Option<u8>,
    toa: bool,
    /// Bit 0: LIP 0, bit 1: LIP 1.
    laddrs: u8,
    reals: Vec<RealKnob>,
}

#[derive(Arbitrary, Debug)]
struct Knobs {
    max_conns: u8,
    rst_on_miss: bool,
    expire_budget: u8,
    persist_templates: u8,
    arp_queue: u8,
    max_neighbours: u8,
    neigh_timeout_s: u8,
    lport_min: u16,
    lport_span: u16,
    strip_timestamps: bool,
    /// Timeouts in seconds (established, syn_sent, syn_recv, fin_wait, time_wait, close,
    /// close_wait, last_ack, udp); None keeps LVS's defaults.
    timeouts: Option<[u8; 9]>,
    expire_on_real_removed: bool,
    mtu: [u16; 2],
    workers: u8,
    index: u8,
    /// 0: the daemon's size for a burst of 32.
    outbox_cap: u8,
    /// Received frames go through `process_burst` this many ops at a time (0 or 1: `process`,
    /// one frame at a time).
    burst: u8,
    pool_limit: Option<u8>,
    /// Empty: a TCP service on VIP 0:80 over three reals and a UDP one on VIP 0:53.
    services: Vec<SvcKnob>,
    /// Every client and real server ARPs for the gateway first.
    preresolve: bool,
}

/// Stable ids as the control plane hands them out: kept while an identity stays configured, never
/// reused once it is gone.
#[derive(Default)]
struct Ids {
    next: u32,
    svc: HashMap<(Proto, IpAddr, u16), u32>,
    real: HashMap<(u32, IpAddr, u16), u32>,
}

impl Ids {
    fn assign(&mut self, services: &mut [ServiceSetup]) {
        let mut svc = HashMap::new();
        let mut real = HashMap::new();
        for s in services.iter_mut() {
            let k = (s.proto, s.vip, s.vport);
            let next = &mut self.next;
            let id = *self.svc.get(&k).unwrap_or_else(|| {
                *next += 1;
                next
            });
            svc.insert(k, id);
            s.id = id;
            for r in s.reals.iter_mut() {
                let k = (id, r.addr, r.port);
                let rid = *self.real.get(&k).unwrap_or_else(|| {
                    *next += 1;
                    next
                });
                real.insert(k, rid);
                r.id = rid;
            }
        }
        self.svc = svc;
        self.real = real;
    }
}

fn default_services() -> Vec<ServiceSetup> {
    let r = |i: u8, port| RealSetup {
        id: 0,
        addr: real(i).into(),
        port,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        xlat: Xlat::FullNat,
    };
    let svc = |proto, vport, reals| ServiceSetup {
        id: 0,
        proto,
        vip: VIPS[0].into(),
        vport,
        sched: SchedKind::Rr,
        persistence_ms: None,
        toa: false,
        synproxy: false,
        proxy_protocol: None,
        laddrs: vec![LIPS[0].into()],
        reals,
    };
    vec![svc(Proto::Tcp, 80, vec![r(0, 80), r(1, 80), r(2, 80)]), svc(Proto::Udp, 53, vec![r(0, 5353)])]
}

/// Services as `Config::validate` admits them: unique (proto, VIP, port), unique reals, a local
/// address whenever there are reals.
fn services(knobs: &[SvcKnob]) -> Vec<ServiceSetup> {
    let mut out: Vec<ServiceSetup> = Vec::new();
    for k in knobs.iter().take(4) {
        let proto = if k.udp { Proto::Udp } else { Proto::Tcp };
        let vip: IpAddr = VIPS[k.vip as usize].into();
        let vport = k.vport.get();
        if out.iter().any(|s| s.proto == proto && s.vip == vip && s.vport == vport) {
            continue;
        }
        let mut reals: Vec<RealSetup> = Vec::new();
        for r in k.reals.iter().take(4) {
            let xlat = Xlat::from_bits(r.mode);
            // As the control plane admits them: DR and TUN keep the VIP's port.
            let port = if xlat.sees_replies() { r.port.get() } else { vport };
            let (addr, port): (IpAddr, u16) = (real(r.host).into(), port);
            if reals.iter().any(|x| x.addr == addr && x.port == port) {
                continue;
            }
            reals.push(RealSetup {
                id: 0,
                addr,
                port,
                weight: u32::from(r.weight % 5),
                u_threshold: u32::from(r.u_threshold % 4),
                l_threshold: u32::from(r.l_threshold % 4),
                xlat,
            });
        }
        let mut laddrs: Vec<IpAddr> = LIPS
            .iter()
            .enumerate()
            .filter(|(i, _)| k.laddrs & (1 << i) != 0)
            .map(|(_, a)| (*a).into())
            .collect();
        if laddrs.is_empty() && !reals.is_empty() {
            laddrs.push(LIPS[0].into());
        }
        out.push(ServiceSetup {
            id: 0,
            proto,
            vip,
            vport,
            sched: SchedKind::ALL[k.sched as usize % SchedKind::ALL.len()],
            persistence_ms: k.persistence_s.map(|s| u64::from(s) * 1000),
            toa: k.toa && proto == Proto::Tcp,
            synproxy: k.synproxy && proto == Proto::Tcp,
            // As the control plane admits it: TCP, and not with TOA.
            proxy_protocol: match k.proxy_protocol {
                1 => Some(ProxyVersion::V1),
                2 => Some(ProxyVersion::V2),
                _ => None,
            }
            .filter(|_| proto == Proto::Tcp && !k.toa),
            laddrs,
            reals,
        });
    }
    out
}

fn build_setup(k: &Knobs, ids: &mut Ids) -> Setup {
    let port = |i: usize, name: &str| PortSetup {
        name: name.into(),
        mac: M_GW[i],
        addr: GW[i],
        prefix_len: 24,
        addr6: Some(GW6[i]),
        prefix6_len: 64,
        mtu: 576 + k.mtu[i] % (9000 - 576 + 1),
        kernel: None,
    };
    let mut services = if k.services.is_empty() { default_services() } else { services(&k.services) };
    services.extend(v6_services());
    ids.assign(&mut services);
    let s = |v: u8| Millis::from(v) * 1000;
    let timeouts = match k.timeouts {
        Some(t) => Timeouts {
            established: s(t[0]),
            syn_sent: s(t[1]),
            syn_recv: s(t[2]),
            fin_wait: s(t[3]),
            time_wait: s(t[4]),
            close: s(t[5]),
            close_wait: s(t[6]),
            last_ack: s(t[7]),
            udp: s(t[8]),
            ..Timeouts::default()
        },
        None => Timeouts::default(),
    };
    let lport_min = k.lport_min.max(1);
    Setup {
        ports: vec![port(0, "client"), port(1, "server")],
        routes: vec![],
        services,
        conn: ConnSetup {
            max_per_worker: u32::from(k.max_conns % 64) + 1,
            rst_on_miss: k.rst_on_miss,
            expire_budget: u32::from(k.expire_budget),
            persist_templates: u32::from(k.persist_templates % 16),
            arp_queue: u32::from(k.arp_queue % 5),
            max_neighbours: u32::from(k.max_neighbours % 9),
            neigh_timeout_ms: s(k.neigh_timeout_s),
            lport_min,
            lport_max: lport_min.saturating_add(k.lport_span % 2048),
            strip_timestamps: k.strip_timestamps,
            timeouts,
            expire_on_real_removed: k.expire_on_real_removed,
            synproxy: SynproxySetup {
                max_half_open: u32::from(k.max_conns % 8) + 1,
                max_held: u32::from(k.arp_queue % 3) + 1,
                syn_retries: 2,
                ..SynproxySetup::default()
            },
            // Small, so the full list is reached too.
            proxy_timers: u32::from(k.arp_queue % 4),
            frag: rvs_dataplane::setup::FragSetup {
                max_datagrams: u32::from(k.max_conns % 8),
                max_per_source: u32::from(k.arp_queue % 4) + 1,
                timeout_ms: 500,
            },
            // Off at start; `Op::Adopt` turns it on.
            adopt: None,
        },
        workers: u16::from(k.workers % 4) + 1,
        exception: Default::default(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------

/// Who sends a built frame; determines the source address, MAC and the port it arrives on.
#[derive(Arbitrary, Debug)]
enum Peer {
    Client(u8),
    Real(u8),
    /// Any address, arriving on port `port % 2`.
    Other(u32, u8),
}

impl Peer {
    fn get(&self) -> (Ipv4Addr, usize) {
        match self {
            Peer::Client(n) => (client(*n), 0),
            Peer::Real(i) => (real(*i), 1),
            Peer::Other(a, p) => (Ipv4Addr::from(*a), usize::from(p % 2)),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Addr {
    Vip(bool),
    Lip(bool),
    Gw(bool),
    Client(u8),
    Real(u8),
    Any(u32),
}

impl Addr {
    fn get(&self) -> Ipv4Addr {
        match self {
            Addr::Vip(b) => VIPS[*b as usize],
            Addr::Lip(b) => LIPS[*b as usize],
            Addr::Gw(b) => GW[*b as usize],
            Addr::Client(n) => client(*n),
            Addr::Real(i) => real(*i),
            Addr::Any(a) => Ipv4Addr::from(*a),
        }
    }
}

/// A client port from a few (so flows repeat) or any.
#[derive(Arbitrary, Debug)]
enum SPort {
    Few(u8),
    Any(u16),
}

impl SPort {
    fn get(&self) -> u16 {
        match self {
            SPort::Few(n) => 40000 + u16::from(n % 4),
            SPort::Any(p) => *p,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum TcpOpts {
    None,
    /// MSS 1460, SACK-permitted, timestamps, NOP, window scale 7 (a Linux SYN).
    LinuxSyn,
    Mss(u16),
    Timestamps(u32, u32),
    Raw(Vec<u8>),
}

impl TcpOpts {
    fn bytes(&self) -> Vec<u8> {
        let typed = |o: &[TcpOption<'_>]| testkit::options(&TcpOptionList::from_slice(o).expect("fits"));
        let mut v = match self {
            TcpOpts::None => vec![],
            TcpOpts::LinuxSyn => {
                testkit::options(&TcpOptionList::linux_syn(Some(1460), true, Some((0x1234, 0)), Some(7)))
            }
            TcpOpts::Mss(m) => typed(&[TcpOption::Mss(*m)]),
            TcpOpts::Timestamps(a, b) => {
                typed(&[TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamps { tsval: *a, tsecr: *b }])
            }
            TcpOpts::Raw(r) => r.clone(),
        };
        v.truncate(40);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }
}

#[derive(Arbitrary, Debug)]
enum UdpCsum {
    Good,
    None,
    Bad,
}

#[derive(Arbitrary, Debug)]
enum IcmpType {
    Unreachable,
    TimeExceeded,
    ParamProblem,
    SourceQuench,
    Redirect,
    Other(u8),
}

impl IcmpType {
    fn get(&self) -> u8 {
        match self {
            IcmpType::Unreachable => icmp::msg::DEST_UNREACHABLE,
            IcmpType::TimeExceeded => icmp::msg::TIME_EXCEEDED,
            IcmpType::ParamProblem => icmp::msg::PARAM_PROBLEM,
            IcmpType::SourceQuench => icmp::msg::SOURCE_QUENCH,
            IcmpType::Redirect => icmp::msg::REDIRECT,
            IcmpType::Other(t) => *t,
        }
    }
}

/// What an ICMP error quotes.
#[derive(Arbitrary, Debug)]
enum Quote {
    /// An IPv4 header (valid checksum) and 8 bytes of TCP or UDP ports.
    Built {
        tcp: bool,
        src: Addr,
        dst: Addr,
        sport: SPort,
        dport: VPort,
    },
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any bytes on port `port % 2`; `to_us` sets the destination MAC to the port's.
    Raw {
        port: u8,
        to_us: bool,
        bytes: Vec<u8>,
    },
    /// An Ethernet header to us and any IPv4 bytes; `fix` sets the total length and header checksum.
    RawIp {
        port: u8,
        fix: bool,
        ip: Vec<u8>,
    },
    Tcp {
        from: Peer,
        to: Addr,
        sport: SPort,
        dport: VPort,
        flags: u8,
        seq: u32,
        ack: u32,
        window: u16,
        options: TcpOpts,
        payload: Vec<u8>,
        ttl: Option<u8>,
        bad_csum: bool,
    },
    Udp {
        from: Peer,
        to: Addr,
        sport: SPort,
        dport: VPort,
        payload: Vec<u8>,
        csum: UdpCsum,
        ttl: Option<u8>,
    },
    Arp {
        from: Peer,
        reply: bool,
        op: Option<u16>,
        target: Addr,
        broadcast: bool,
        sha: Option<[u8; 6]>,
    },
    Echo {
        from: Peer,
        to: Addr,
        ty: Option<u8>,
        ident: u16,
        seq: u16,
        data: Vec<u8>,
    },
    IcmpError {
        from: Peer,
        to: Addr,
        ty: IcmpType,
        code: u8,
        quote: Quote,
    },
    /// The host a recent transmitted frame went to answers it: an ARP reply to an ARP request, a
    /// segment or datagram with swapped addresses and ports to TCP/UDP.
    Respond {
        index: u8,
        flags: u8,
        payload: Vec<u8>,
    },
    /// A router (or the host itself) on the path of a recent transmitted frame reports an error
    /// quoting it.
    IcmpAbout {
        index: u8,
        ty: IcmpType,
        code: u8,
        mtu: u16,
        router: Option<u32>,
    },
    /// A TCP or UDP datagram cut into IPv4 fragments of `chunk * 8` bytes, of which those whose
    /// bit is set in `mask` are sent, in reverse order with `reverse` (out of order, missing
    /// pieces, tiny or overlapping first fragments all arise).
    Frags {
        from: Peer,
        to: Addr,
        sport: SPort,
        dport: VPort,
        tcp: bool,
        ident: u16,
        len: u16,
        chunk: u8,
        mask: u16,
        reverse: bool,
    },
    /// TCP over IPv6 from a client to the IPv6 or the NAT64 VIP (or from a real server to the
    /// IPv6 LIP), behind raw extension headers (`ext`, its first next header `first`; the chain's
    /// bytes are the fuzzer's, so loops, overruns and fragments arise), with `payload_len` forced
    /// when given (zero, huge).
    Tcp6 {
        peer: u8,
        to: u8,
        sport: u16,
        dport: VPort,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: Vec<u8>,
        hop: Option<u8>,
        first: Option<u8>,
        ext: Vec<u8>,
        payload_len: Option<u16>,
        bad_csum: bool,
    },
    Udp6 {
        peer: u8,
        to: u8,
        sport: u16,
        dport: VPort,
        payload: Vec<u8>,
    },
    /// A neighbour solicitation (or advertisement) with fuzzed options and hop limit.
    Ndp {
        peer: u8,
        target: u8,
        advert: bool,
        hop: Option<u8>,
        options: Vec<u8>,
    },
    Echo6 {
        peer: u8,
        to: u8,
        data: Vec<u8>,
    },
    /// Raw bytes under the IPv6 EtherType.
    RawIp6 {
        port: u8,
        ip: Vec<u8>,
    },
    Advance(u16),
    Jump(u32),
    Poll,
    /// The daemon's TX: the outbox is emptied (and checked) after every burst.
    Flush,
    /// A pool change between bursts.
    Apply {
        services: Vec<SvcKnob>,
        expire_on_real_removed: bool,
    },
    /// The exception path: bit 0/1 of `ports` gives port 0/1 a kernel interface (TAP port 2/3),
    /// with a small limit so the buckets run dry (hostile traffic at the port addresses).
    Kernel {
        ports: u8,
        rate: u8,
        burst: u8,
    },
    /// The kernel sends `bytes` on TAP port `2 + port % 2`.
    FromKernel {
        port: u8,
        bytes: Vec<u8>,
    },
    /// VRRP address adoption: off, or on with the (address, port) pairs whose bit is set in
    /// `mask` adopted (VIPs on port 0, LIPs on port 1, a port address, a pair naming a port that
    /// does not exist), `garp` gratuitous ARPs each, 1 ms apart.
    Adopt {
        on: bool,
        mask: u8,
        garp: u8,
    },
}

/// Ports the outbox has: the two physical ones and their possible kernel interfaces.
const ALL_PORTS: usize = 4;

#[derive(Arbitrary, Debug)]
struct Input {
    knobs: Knobs,
    ops: Vec<Op>,
}

// ---------------------------------------------------------------------------------------------------
// Frame building
// ---------------------------------------------------------------------------------------------------

// The shared `rvs_dataplane::wire::testkit` builds every layer; these wrappers only keep what the
// fuzzer asks for within one `VecFrame` and set the fields it does not vary.

fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let l4 = &l4[..l4.len().min(MAX_FRAME - ETH - ipv4::HEADER_LEN)];
    let repr = Ipv4Repr { src, dst, protocol, payload_len: 0, ttl, ident: 0x1234, dont_frag: true };
    testkit::ipv4_packet(&repr, &[], l4)
}

#[allow(clippy::too_many_arguments)]
fn tcp_segment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let hl = 20 + options.len();
    let payload = &payload[..payload.len().min(MAX_FRAME - ETH - ipv4::HEADER_LEN - hl)];
    let repr = TcpRepr { window, ..TcpRepr::bare(sport, dport, seq, ack, TcpFlags::from_bits(flags)) };
    testkit::tcp_segment_raw_options(src, dst, &repr, options, payload)
}

fn udp_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    csum: &UdpCsum,
) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_FRAME - ETH - ipv4::HEADER_LEN - 8)];
    let mut d = testkit::udp_datagram((src, sport), (dst, dport), payload, !matches!(csum, UdpCsum::None));
    if let UdpCsum::Bad = csum {
        let mut u = UdpPacket::new_unchecked(&mut d[..]);
        let c = u.checksum();
        u.set_checksum(if c == 1 { 2 } else { c ^ 1 });
    }
    d
}

/// An ARP frame; `op`, if given, overwrites the operation field with any value.
fn arp_frame(eth_dst: EthernetAddress, eth_src: EthernetAddress, repr: &ArpRepr, op: Option<u16>) -> Vec<u8> {
    let mut v = FrameBuilder::new(eth_src, eth_dst).arp(repr);
    if let Some(op) = op {
        v[ETH + 6..ETH + 8].copy_from_slice(&op.to_be_bytes());
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------

/// Whether an IPv4 frame's L4 checksums are all valid (true for anything the worker drops before
/// looking at L4 anyway: non-IPv4, bad IPv4 header).
/// Whether an IPv6 frame's upper-layer checksum is valid (true for anything dropped before).
fn l4_intact6(ip: &[u8]) -> bool {
    let Ok(w) = ipv6::walk(ip) else { return true };
    if w.frag.is_some() {
        return true;
    }
    let p = ipv6::Packet::new_unchecked(ip);
    let l4 = &p.packet()[w.l4..];
    match w.proto {
        ipv6::NH_TCP | ipv6::NH_UDP | ipv6::NH_ICMPV6 => {
            ipv6::verify_checksum(l4, p.src_addr(), p.dst_addr(), w.proto)
        }
        _ => true,
    }
}

fn l4_intact(frame: &[u8]) -> bool {
    if frame.len() >= ETH && frame[12..14] == [0x86, 0xdd] {
        return l4_intact6(&frame[ETH..]);
    }
    if frame.len() < ETH || frame[12..14] != [0x08, 0x00] {
        return true;
    }
    let Ok(ip) = Ipv4Packet::new_checked(&frame[ETH..]) else { return true };
    if !ip.verify_checksum() {
        return true;
    }
    let end = ETH + ip.total_len() as usize;
    let Ok(ip) = Ipv4Packet::new_checked(&frame[ETH..end]) else { return true };
    l4_checksums_ok(&ip)
}

fn l4_checksums_ok(ip: &Ipv4Packet<&[u8]>) -> bool {
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    match ip.protocol() {
        ipv4::PROTO_TCP => TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.verify_checksum(s, d)),
        ipv4::PROTO_UDP => {
            UdpPacket::new_checked(ip.payload()).is_ok_and(|u| u.checksum() == 0 || u.verify_checksum(s, d))
        }
        ipv4::PROTO_ICMP => IcmpPacket::new_checked(ip.payload()).is_ok_and(|m| {
            m.verify_checksum() && (!m.is_error() || m.inner().is_ok_and(|q| q.verify_ip_checksum()))
        }),
        _ => true,
    }
}

fn check_tx(frame: &[u8], port: usize, l4_must_be_valid: bool) {
    assert!(frame.len() >= ETH, "runt frame transmitted on port {port}");
    assert_eq!(frame[6..12], M_GW[port].0, "source MAC of a frame on port {port}");
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => {
            ArpPacket::new_checked(&frame[ETH..]).expect("a transmitted ARP frame parses");
        }
        0x0800 => {
            let ip = Ipv4Packet::new_checked(&frame[ETH..]).expect("a transmitted IPv4 frame parses");
            assert!(ip.verify_checksum(), "IPv4 header checksum of a transmitted frame");
            assert_eq!(ip.total_len() as usize, frame.len() - ETH, "IPv4 total length vs frame length");
            assert!(ip.ttl() > 0, "TTL 0 transmitted");
            if l4_must_be_valid {
                assert!(l4_checksums_ok(&ip), "L4 checksum of a transmitted frame: {frame:02x?}");
            }
        }
        0x86dd => {
            let ip = ipv6::Packet::new_checked(&frame[ETH..]).expect("a transmitted IPv6 frame parses");
            assert_eq!(ip.packet().len(), frame.len() - ETH, "IPv6 payload length vs frame length");
            assert!(ip.hop_limit() > 0, "hop limit 0 transmitted");
            ipv6::walk(&frame[ETH..]).expect("a transmitted IPv6 frame's extension headers");
            if l4_must_be_valid {
                assert!(l4_intact6(&frame[ETH..]), "L4 checksum of a transmitted IPv6 frame: {frame:02x?}");
            }
        }
        t => panic!("transmitted EtherType {t:#06x}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------------

struct H {
    w: Worker<CPool>,
    stats: Arc<Stats>,
    out: Outbox<CFrame>,
    live: Rc<Cell<usize>>,
    now: Millis,
    ids: Ids,
    setup: Setup,
    /// Recently transmitted frames and their ports, for `Respond` and `IcmpAbout`.
    recent: Vec<(usize, Vec<u8>)>,
    next_recent: usize,
    /// Every input so far carried valid L4 checksums.
    clean: bool,
    held_cap: usize,
    /// Frames received but not yet given to the worker, per port (burst mode).
    pending: [Vec<CFrame>; 2],
    burst: bool,
    /// Frames the kernel sent since the last flush: they leave their physical port unchanged,
    /// so they are not held to the gateway's own frames' rules.
    from_kernel: Vec<Vec<u8>>,
}

const RECENT: usize = 32;

impl H {
    fn new(k: &Knobs) -> H {
        let mut ids = Ids::default();
        let setup = build_setup(k, &mut ids);
        let live = Rc::new(Cell::new(0));
        let stats = Arc::new(Stats::default());
        let pool = CPool { live: live.clone(), remaining: k.pool_limit.map(usize::from) };
        let w = Worker::new(&setup, u16::from(k.index) % setup.workers, pool, stats.clone());
        let cap = if k.outbox_cap == 0 { w.outbox_capacity(32) } else { usize::from(k.outbox_cap % 16) + 1 };
        let out = Outbox::with_workers(ALL_PORTS, usize::from(setup.workers), cap);
        let held_cap = (setup.conn.max_neighbours.max(1) * setup.conn.arp_queue
            + setup.conn.synproxy.max_half_open * setup.conn.synproxy.max_held)
            as usize
            + setup.conn.frag.max_datagrams as usize * rvs_dataplane::frag::MAX_HELD;
        H {
            w,
            stats,
            out,
            live,
            now: 1_000,
            ids,
            setup,
            recent: Vec::new(),
            next_recent: 0,
            clean: true,
            held_cap,
            pending: [Vec::new(), Vec::new()],
            from_kernel: Vec::new(),
            burst: k.burst > 1,
        }
    }

    fn rx(&mut self, port: usize, bytes: &[u8]) {
        if !l4_intact(bytes) {
            self.clean = false;
        }
        let f = CFrame::new(VecFrame::from_bytes(bytes), &self.live);
        if self.burst && port < 2 {
            self.pending[port].push(f);
        } else {
            self.w.process(f, port, self.now, &mut self.out);
        }
    }

    /// Gives the frames received since the last call to the worker, a burst per port.
    fn deliver(&mut self) {
        for port in 0..2 {
            let mut b = std::mem::take(&mut self.pending[port]);
            self.w.process_burst(&mut b, port, self.now, &mut self.out);
            assert!(b.is_empty(), "process_burst consumes the whole burst");
            self.pending[port] = b;
        }
    }

    /// An IPv6 peer (clients on port 0, real servers on port 1) and where it sends: the IPv6
    /// VIP, the NAT64 VIP, the port's address, or (from a real server) the IPv6 LIP.
    fn v6_ends(&self, peer: u8, to: u8) -> (Ipv6Addr, usize, Ipv6Addr) {
        if peer & 0x80 == 0 {
            (client6(peer), 0, [VIP6, VIP64, GW6[0], VIP6][usize::from(to % 4)])
        } else {
            (real6(peer), 1, [LIP6, GW6[1], LIP6, VIP6][usize::from(to % 4)])
        }
    }

    fn ip6_from(&mut self, port: usize, src: Ipv6Addr, ip: &[u8]) {
        let frame = testkit::eth_frame(M_GW[port], mac6(src), EtherType::Ipv6, ip);
        self.rx(port, &frame);
    }

    fn ip_from(&mut self, port: usize, src: Ipv4Addr, ip: &[u8]) {
        let frame = testkit::eth_frame(M_GW[port], mac_of(src), EtherType::Ipv4, ip);
        self.rx(port, &frame);
    }

    fn remember(&mut self, port: usize, frame: &[u8]) {
        if self.recent.len() < RECENT {
            self.recent.push((port, frame.to_vec()));
        } else {
            self.recent[self.next_recent] = (port, frame.to_vec());
        }
        self.next_recent = (self.next_recent + 1) % RECENT;
    }

    fn flush(&mut self) {
        self.deliver();
        // Frames handed to other workers come back here as if this worker were their owner (the
        // hand-off path of the receiving side); chains that would go round forever on one worker
        // are cut after a few rounds (the frames were counted as handed off).
        for round in 0..4 {
            let mut any = false;
            for w in 0..usize::from(self.setup.workers) {
                let lane = std::mem::take(self.out.handoff(w));
                for (f, tag) in lane {
                    any = true;
                    if round < 3 {
                        self.w.process_handoff(f, tag, self.now, &mut self.out);
                    }
                }
            }
            if !any {
                break;
            }
        }
        for port in 0..ALL_PORTS {
            let frames = std::mem::take(self.out.port(port));
            for f in frames {
                if port >= 2 {
                    // To a kernel interface: only where that port has one, the frame unchanged.
                    let phys = self.setup.ports.iter().position(|p| p.kernel == Some(port));
                    assert!(phys.is_some(), "frame on TAP port {port} without a kernel interface");
                    continue;
                }
                if let Some(i) = self.from_kernel.iter().position(|k| k.as_slice() == f.data()) {
                    self.from_kernel.swap_remove(i);
                    continue;
                }
                check_tx(f.data(), port, self.clean);
                self.remember(port, f.data());
            }
        }
        self.from_kernel.clear();
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Raw { port, to_us, bytes } => {
                let port = usize::from(port % 2);
                let mut b = bytes.clone();
                if *to_us && b.len() >= 6 {
                    b[..6].copy_from_slice(&M_GW[port].0);
                }
                self.rx(port, &b);
            }
            Op::RawIp { port, fix, ip } => {
                let port = usize::from(port % 2);
                let mut ip = ip.clone();
                ip.truncate(MAX_FRAME - ETH);
                if *fix && ip.len() >= ipv4::HEADER_LEN {
                    let len = ip.len() as u16;
                    let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
                    p.set_total_len(len);
                    if p.header_len() >= ipv4::HEADER_LEN && p.header_len() <= len as usize {
                        p.fill_checksum();
                    }
                }
                let frame = testkit::eth_frame(
                    M_GW[port],
                    mac_of(Ipv4Addr::new(198, 18, port as u8, 7)),
                    EtherType::Ipv4,
                    &ip,
                );
                self.rx(port, &frame);
            }
            Op::Tcp { from, to, sport, dport, flags, seq, ack, window, options, payload, ttl, bad_csum } => {
                let (src, port) = from.get();
                let dst = to.get();
                let mut seg = tcp_segment(
                    src,
                    dst,
                    sport.get(),
                    dport.get(),
                    *flags,
                    *seq,
                    *ack,
                    *window,
                    &options.bytes(),
                    payload,
                );
                if *bad_csum {
                    seg[16] ^= 0x5a;
                }
                let ip = ip_packet(src, dst, ipv4::PROTO_TCP, ttl.unwrap_or(64), &seg);
                self.ip_from(port, src, &ip);
            }
            Op::Udp { from, to, sport, dport, payload, csum, ttl } => {
                let (src, port) = from.get();
                let dst = to.get();
                let d = udp_datagram(src, dst, sport.get(), dport.get(), payload, csum);
                let ip = ip_packet(src, dst, ipv4::PROTO_UDP, ttl.unwrap_or(64), &d);
                self.ip_from(port, src, &ip);
            }
            Op::Frags { from, to, sport, dport, tcp, ident, len, chunk, mask, reverse } => {
                let (src, port) = from.get();
                let dst = to.get();
                let payload = vec![0x5a; usize::from(*len) % 1400];
                let (proto, l4) = if *tcp {
                    let seg = tcp_segment(src, dst, sport.get(), dport.get(), 0x18, 1, 1, 512, &[], &payload);
                    (ipv4::PROTO_TCP, seg)
                } else {
                    (
                        ipv4::PROTO_UDP,
                        udp_datagram(src, dst, sport.get(), dport.get(), &payload, &UdpCsum::Good),
                    )
                };
                let whole = ip_packet(src, dst, proto, 64, &l4);
                let step = (usize::from(*chunk) % 32 + 1) * 8;
                let body = &whole[ipv4::HEADER_LEN..];
                let mut frags = Vec::new();
                let mut off = 0;
                while off < body.len() {
                    let n = step.min(body.len() - off);
                    let mut f = whole[..ipv4::HEADER_LEN].to_vec();
                    f.extend_from_slice(&body[off..off + n]);
                    let mut p = Ipv4Packet::new_unchecked(&mut f[..]);
                    p.set_total_len((ipv4::HEADER_LEN + n) as u16);
                    p.set_ident(*ident);
                    p.set_dont_frag(false);
                    p.set_frag(off as u16, off + n < body.len());
                    p.fill_checksum();
                    frags.push(f);
                    off += n;
                }
                if *reverse {
                    frags.reverse();
                }
                for (i, f) in frags.iter().enumerate().take(16) {
                    if mask & (1 << i) != 0 {
                        self.ip_from(port, src, f);
                    }
                }
            }
            Op::Arp { from, reply, op, target, broadcast, sha } => {
                let (spa, port) = from.get();
                let sha = sha.map(EthernetAddress).unwrap_or(mac_of(spa));
                let repr = ArpRepr {
                    operation: if *reply { ArpOperation::Reply } else { ArpOperation::Request },
                    sender_hw_addr: sha,
                    sender_proto_addr: spa,
                    target_hw_addr: if *reply { M_GW[port] } else { EthernetAddress([0; 6]) },
                    target_proto_addr: target.get(),
                };
                let dst = if *broadcast { EthernetAddress::BROADCAST } else { M_GW[port] };
                let frame = arp_frame(dst, sha, &repr, *op);
                self.rx(port, &frame);
            }
            Op::Echo { from, to, ty, ident, seq, data } => {
                let (src, port) = from.get();
                let dst = to.get();
                let data = &data[..data.len().min(MAX_FRAME - ETH - ipv4::HEADER_LEN - icmp::HEADER_LEN)];
                let rest = u32::from(*ident) << 16 | u32::from(*seq);
                let m = testkit::icmp_message(ty.unwrap_or(icmp::msg::ECHO_REQUEST), 0, rest, data);
                let ip = ip_packet(src, dst, ipv4::PROTO_ICMP, 64, &m);
                self.ip_from(port, src, &ip);
            }
            Op::IcmpError { from, to, ty, code, quote } => {
                let (src, port) = from.get();
                let dst = to.get();
                let quoted = match quote {
                    Quote::Built { tcp, src, dst, sport, dport } => {
                        let (proto, l4) = if *tcp {
                            (
                                ipv4::PROTO_TCP,
                                tcp_segment(
                                    src.get(),
                                    dst.get(),
                                    sport.get(),
                                    dport.get(),
                                    2,
                                    1,
                                    0,
                                    0,
                                    &[],
                                    &[],
                                ),
                            )
                        } else {
                            (
                                ipv4::PROTO_UDP,
                                udp_datagram(
                                    src.get(),
                                    dst.get(),
                                    sport.get(),
                                    dport.get(),
                                    &[],
                                    &UdpCsum::Good,
                                ),
                            )
                        };
                        ip_packet(src.get(), dst.get(), proto, 64, &l4)
                    }
                    Quote::Bytes(b) => b.clone(),
                };
                let m = match testkit::icmp_error(ty.get(), *code, 0, &quoted).ok() {
                    Some(m) => m,
                    None => {
                        // Quote the bytes as they are (a quote emit_error refuses).
                        testkit::icmp_message(ty.get(), *code, 0, &quoted[..quoted.len().min(64)])
                    }
                };
                let ip = ip_packet(src, dst, ipv4::PROTO_ICMP, 64, &m);
                self.ip_from(port, src, &ip);
            }
            Op::Respond { index, flags, payload } => {
                if self.recent.is_empty() {
                    return;
                }
                let (port, t) = self.recent[usize::from(*index) % self.recent.len()].clone();
                self.respond(port, &t, *flags, payload);
            }
            Op::IcmpAbout { index, ty, code, mtu, router } => {
                if self.recent.is_empty() {
                    return;
                }
                let (port, t) = self.recent[usize::from(*index) % self.recent.len()].clone();
                if t[12..14] != [0x08, 0x00] {
                    return;
                }
                let Ok(ip) = Ipv4Packet::new_checked(&t[ETH..]) else { return };
                let (ts, td) = (ip.src_addr(), ip.dst_addr());
                let src = router.map(Ipv4Addr::from).unwrap_or(td);
                let Some(m) = testkit::icmp_error(ty.get(), *code, u32::from(*mtu), &t[ETH..]).ok() else {
                    return;
                };
                let ip = ip_packet(src, ts, ipv4::PROTO_ICMP, 64, &m);
                let frame = testkit::eth_frame(
                    M_GW[port],
                    EthernetAddress([t[0], t[1], t[2], t[3], t[4], t[5]]),
                    EtherType::Ipv4,
                    &ip,
                );
                self.rx(port, &frame);
            }
            Op::Tcp6 {
                peer,
                to,
                sport,
                dport,
                flags,
                seq,
                ack,
                payload,
                hop,
                first,
                ext,
                payload_len,
                bad_csum,
            } => {
                let (src, port, dst) = self.v6_ends(*peer, *to);
                let payload = &payload[..payload.len().min(1200)];
                let repr = TcpRepr {
                    window: 64240,
                    ..TcpRepr::bare(*sport, dport.get(), *seq, *ack, TcpFlags::from_bits(*flags))
                };
                let mut seg = testkit::tcp_segment_raw_options(
                    Ipv4Addr::UNSPECIFIED,
                    Ipv4Addr::UNSPECIFIED,
                    &repr,
                    &[],
                    payload,
                );
                testkit::l4_checksum6(&mut seg, src, dst, ipv6::NH_TCP);
                if *bad_csum {
                    seg[16] ^= 0x5a;
                }
                let ext = &ext[..ext.len().min(96)];
                let nh = if ext.is_empty() { ipv6::NH_TCP } else { first.unwrap_or(ipv6::NH_DSTOPTS) };
                let mut ip = testkit::ipv6_packet((src, dst), nh, hop.unwrap_or(64), ext, &seg);
                if let Some(l) = payload_len {
                    ip[4..6].copy_from_slice(&l.to_be_bytes());
                }
                self.ip6_from(port, src, &ip);
            }
            Op::Udp6 { peer, to, sport, dport, payload } => {
                let (src, port, dst) = self.v6_ends(*peer, *to);
                let payload = &payload[..payload.len().min(1200)];
                let f =
                    FrameBuilder::new(mac6(src), M_GW[port]).udp6((src, *sport), (dst, dport.get()), payload);
                self.rx(port, &f);
            }
            Op::Ndp { peer, target, advert, hop, options } => {
                let (src, port, _) = self.v6_ends(*peer, 0);
                let target = [GW6[port], VIP6, LIP6, VIP64, client6(*target), real6(*target)]
                    [usize::from(*target % 6)];
                let mut p = [0u8; ndp::PACKET_LEN];
                let kind = if *advert {
                    ndp::Kind::Advert { solicited: true, override_: true }
                } else {
                    ndp::Kind::Solicit
                };
                let (tgt, dst) =
                    if *advert { (src, GW6[port]) } else { (target, ndp::solicited_node(target)) };
                ndp::emit(&mut p, (src, dst), kind, tgt, mac6(src)).expect("room");
                let mut ip = p.to_vec();
                ip.extend_from_slice(&options[..options.len().min(48)]);
                let plen = (ip.len() - ipv6::HEADER_LEN) as u16;
                ip[4..6].copy_from_slice(&plen.to_be_bytes());
                ip[7] = hop.unwrap_or(255);
                ipv6::fill_checksum(&mut ip[ipv6::HEADER_LEN..], src, dst, ipv6::NH_ICMPV6);
                let f = FrameBuilder::new(mac6(src), ndp::multicast_mac(dst)).eth(EtherType::Ipv6, &ip);
                self.rx(port, &f);
            }
            Op::Echo6 { peer, to, data } => {
                let (src, port, dst) = self.v6_ends(*peer, *to);
                let data = &data[..data.len().min(1200)];
                let f = FrameBuilder::new(mac6(src), M_GW[port]).icmp6(
                    src,
                    dst,
                    icmpv6::ECHO_REQUEST,
                    0,
                    1,
                    data,
                );
                self.rx(port, &f);
            }
            Op::RawIp6 { port, ip } => {
                let port = usize::from(port % 2);
                let ip = &ip[..ip.len().min(MAX_FRAME - ETH)];
                let f = testkit::eth_frame(M_GW[port], mac6(client6(0)), EtherType::Ipv6, ip);
                self.rx(port, &f);
            }
            Op::Advance(ms) => self.now += Millis::from(*ms),
            Op::Jump(ms) => self.now += Millis::from(*ms),
            Op::Poll => self.w.poll(self.now, &mut self.out),
            Op::Flush => self.flush(),
            Op::Apply { services: k, expire_on_real_removed } => {
                let mut s = services(k);
                s.extend(v6_services());
                self.ids.assign(&mut s);
                self.setup.services = s;
                self.setup.conn.expire_on_real_removed = *expire_on_real_removed;
                self.w.apply(&self.setup);
            }
            Op::Kernel { ports, rate, burst } => {
                // The daemon's kernel interfaces are fixed while it runs; a change here comes
                // between bursts, after what was queued for the old ones left.
                self.flush();
                for (i, p) in self.setup.ports.iter_mut().enumerate() {
                    p.kernel = (ports >> i & 1 == 1).then_some(2 + i);
                }
                self.setup.exception = rvs_dataplane::setup::ExceptionSetup {
                    rate_pps: u32::from(*rate) * 10 + 1,
                    burst: u32::from(burst % 16) + 1,
                };
                self.w.apply(&self.setup);
            }
            Op::Adopt { on, mask, garp } => {
                let pairs =
                    [(VIPS[0], 0), (VIPS[1], 0), (LIPS[0], 1), (LIPS[1], 1), (GW[0], 0), (VIPS[0], 7)];
                let addrs = (0..pairs.len()).filter(|i| mask >> i & 1 == 1).map(|i| pairs[i]).collect();
                self.setup.conn.adopt = on.then(|| rvs_dataplane::setup::AdoptSetup {
                    addrs,
                    garp_count: u32::from(garp % 4),
                    garp_interval_ms: 1,
                });
                self.w.apply(&self.setup);
            }
            Op::FromKernel { port, bytes } => {
                let tap = 2 + usize::from(port % 2);
                let f = CFrame::new(VecFrame::from_bytes(bytes), &self.live);
                if self.setup.ports.iter().any(|p| p.kernel == Some(tap)) {
                    self.from_kernel.push(bytes.clone());
                }
                self.w.process(f, tap, self.now, &mut self.out);
            }
        }
    }

    /// The receiver of transmitted frame `t` answers it.
    fn respond(&mut self, port: usize, t: &[u8], flags: u8, payload: &[u8]) {
        let their_mac = EthernetAddress([t[0], t[1], t[2], t[3], t[4], t[5]]);
        match u16::from_be_bytes([t[12], t[13]]) {
            0x0806 => {
                let Ok(a) = ArpPacket::new_checked(&t[ETH..]) else { return };
                if a.operation() != ArpOperation::Request {
                    return;
                }
                let who = a.target_proto_addr();
                let repr = ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_hw_addr: mac_of(who),
                    sender_proto_addr: who,
                    target_hw_addr: a.sender_hw_addr(),
                    target_proto_addr: a.sender_proto_addr(),
                };
                let frame = arp_frame(M_GW[port], mac_of(who), &repr, None);
                self.rx(port, &frame);
            }
            0x86dd => {
                let Ok(ip) = ipv6::Packet::new_checked(&t[ETH..]) else { return };
                let (src, dst) = (ip.dst_addr(), ip.src_addr());
                let l4 = ip.payload();
                let b = FrameBuilder::new(their_mac, M_GW[port]);
                let frame = match ip.next_header() {
                    ipv6::NH_ICMPV6 => {
                        let Ok(m) = ndp::parse(l4, ip.hop_limit()) else { return };
                        if m.kind != ndp::Kind::Solicit {
                            return;
                        }
                        let who = m.target;
                        let mut p = [0u8; ndp::PACKET_LEN];
                        let kind = ndp::Kind::Advert { solicited: true, override_: true };
                        ndp::emit(&mut p, (who, ip.src_addr()), kind, who, mac6(who)).expect("room");
                        FrameBuilder::new(mac6(who), M_GW[port]).eth(EtherType::Ipv6, &p)
                    }
                    ipv6::NH_TCP => {
                        let Ok(seg) = TcpPacket::new_checked(l4) else { return };
                        let f = seg.flags();
                        let consumed = seg.payload().len() as u32 + u32::from(f.syn()) + u32::from(f.fin());
                        let payload = &payload[..payload.len().min(1200)];
                        b.tcp6(
                            (src, seg.dst_port()),
                            (dst, seg.src_port()),
                            TcpFlags::from_bits(flags),
                            (seg.ack_number(), seg.seq_number().wrapping_add(consumed)),
                            &[],
                            payload,
                        )
                    }
                    ipv6::NH_UDP => {
                        let Ok(u) = UdpPacket::new_checked(l4) else { return };
                        let payload = &payload[..payload.len().min(1200)];
                        b.udp6((src, u.dst_port()), (dst, u.src_port()), payload)
                    }
                    _ => return,
                };
                self.rx(port, &frame);
            }
            0x0800 => {
                let Ok(ip) = Ipv4Packet::new_checked(&t[ETH..]) else { return };
                let (src, dst) = (ip.dst_addr(), ip.src_addr());
                let l4 = ip.payload();
                let reply = match ip.protocol() {
                    ipv4::PROTO_TCP => {
                        let Ok(seg) = TcpPacket::new_checked(l4) else { return };
                        let f = seg.flags();
                        let consumed = seg.payload().len() as u32 + u32::from(f.syn()) + u32::from(f.fin());
                        let r = tcp_segment(
                            src,
                            dst,
                            seg.dst_port(),
                            seg.src_port(),
                            flags,
                            seg.ack_number(),
                            seg.seq_number().wrapping_add(consumed),
                            64240,
                            &[],
                            payload,
                        );
                        ip_packet(src, dst, ipv4::PROTO_TCP, 64, &r)
                    }
                    ipv4::PROTO_UDP => {
                        let Ok(u) = UdpPacket::new_checked(l4) else { return };
                        let d = udp_datagram(src, dst, u.dst_port(), u.src_port(), payload, &UdpCsum::Good);
                        ip_packet(src, dst, ipv4::PROTO_UDP, 64, &d)
                    }
                    _ => return,
                };
                let frame = testkit::eth_frame(M_GW[port], their_mac, EtherType::Ipv4, &reply);
                self.rx(port, &frame);
            }
            _ => {}
        }
    }

    /// Invariants that hold between any two operations.
    fn check(&mut self) {
        let conns = self.w.conns();
        assert!(
            conns.len() <= conns.capacity(),
            "{} connections in a table of {}",
            conns.len(),
            conns.capacity()
        );
        // Per-real counts equal the connections the table holds for each real.
        for s in &self.w.services().list {
            for (i, r) in s.reals.iter().enumerate() {
                let (mut active, mut inactive) = (0u32, 0u32);
                for (_, c) in conns.iter() {
                    if c.service() == s.id && c.real() == r.id {
                        if c.is_counted_active() {
                            active += 1;
                        } else {
                            inactive += 1;
                        }
                    }
                }
                let v = &s.views[i];
                assert_eq!(
                    (v.active, v.inactive),
                    (active, inactive),
                    "service {} real {} counts vs the connection table",
                    s.id,
                    r.id
                );
            }
        }
        // The same for the IPv6 table (IPv6 and NAT64 services).
        let conns6 = self.w.conns6();
        assert!(conns6.len() <= conns6.capacity());
        let views6 = self
            .w
            .services6()
            .list
            .iter()
            .flat_map(|s| s.reals.iter().zip(&s.views).map(move |(r, v)| (s.id, r.id, *v)));
        let views64 = self
            .w
            .nat64_services()
            .list
            .iter()
            .flat_map(|s| s.reals.iter().zip(&s.views).map(move |(r, v)| (s.id, r.id, *v)));
        for (sid, rid, v) in views6.chain(views64) {
            let (mut active, mut inactive) = (0u32, 0u32);
            for (_, c) in conns6.iter() {
                if c.service() == sid && c.real() == rid {
                    if c.is_counted_active() {
                        active += 1;
                    } else {
                        inactive += 1;
                    }
                }
            }
            assert_eq!((v.active, v.inactive), (active, inactive), "IPv6 service {sid} real {rid} counts");
        }
        let mut queued = 0;
        for port in 0..ALL_PORTS {
            let n = self.out.port(port).len();
            assert!(n <= self.out.capacity(), "outbox port {port} holds {n} > {}", self.out.capacity());
            queued += n;
        }
        for w in 0..usize::from(self.setup.workers) {
            queued += self.out.handoff(w).len();
        }
        // Frame accounting.
        let st = &*self.stats;
        // Stats::accounting_gap's terms, with what is held left as the unknown: frames the gateway
        // built enter, consumed frames leave.
        let entered = st.frames_entered();
        let left = st.frames_left();
        assert!(entered >= left, "more frames left ({left}) than entered ({entered}): {:?}", st.nonzero());
        let held = (entered - left) as usize;
        let live = self.live.get();
        assert!(live >= queued, "outbox frames not alive");
        assert_eq!(
            live - queued,
            held,
            "frames alive in the worker vs held by the counters: {:?}",
            st.nonzero()
        );
        assert!(held <= self.held_cap, "{held} frames held, at most {} allowed", self.held_cap);
    }

    /// Time runs on: every connection expires and every held frame is sent or dropped.
    fn wind_down(&mut self) {
        self.flush();
        self.now += 24 * 3600 * 1000;
        // Enough polls for the expiry budget and the neighbour retries (8 slots per poll).
        for _ in 0..96 {
            self.w.poll(self.now, &mut self.out);
            self.flush();
            self.now += 1_100;
        }
        self.check();
        assert_eq!(self.w.conns().len(), 0, "connections outlived their timeouts");
        assert_eq!(self.w.conns6().len(), 0, "IPv6 connections outlived their timeouts");
        assert_eq!(self.live.get(), 0, "frames held forever");
    }
}

fn run(input: &Input) {
    let mut h = H::new(&input.knobs);
    if input.knobs.preresolve {
        for n in 0..4 {
            for (port, ip) in [(0, client(n)), (1, real(n))] {
                let repr = ArpRepr {
                    operation: ArpOperation::Request,
                    sender_hw_addr: mac_of(ip),
                    sender_proto_addr: ip,
                    target_hw_addr: EthernetAddress([0; 6]),
                    target_proto_addr: GW[port],
                };
                let frame = arp_frame(EthernetAddress::BROADCAST, mac_of(ip), &repr, None);
                h.rx(port, &frame);
                h.flush();
            }
        }
        for n in 0..4 {
            for (port, ip) in [(0, client6(n)), (1, real6(n))] {
                let mut p = [0u8; ndp::PACKET_LEN];
                let g = ndp::solicited_node(GW6[port]);
                ndp::emit(&mut p, (ip, g), ndp::Kind::Solicit, GW6[port], mac6(ip)).expect("room");
                let frame = FrameBuilder::new(mac6(ip), ndp::multicast_mac(g)).eth(EtherType::Ipv6, &p);
                h.rx(port, &frame);
                h.flush();
            }
        }
        h.check();
    }
    let every = usize::from(input.knobs.burst.max(1));
    for (i, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        h.op(op);
        if (i + 1) % every == 0 {
            h.deliver();
            h.check();
        }
    }
    h.deliver();
    h.check();
    h.wind_down();
}

fuzz_target!(|input: Input| run(&input));
