//! An in-process loop: an [`Engine`] on one end, the real `rvs_dataplane::worker::Worker` on the
//! other, `VecFrame`s in between. Whole connections run through the gateway's real packet path
//! (ARP, FULLNAT, SYN-proxy, TOA) with no NIC, so the engines are tested against the dataplane and
//! the gateway's per-connection cost can be measured without I/O.
//!
//! Invariants:
//! - The loop plays the wire and the generator's ARP: every ARP request the worker sends is
//!   answered with the generator's MAC on that side, whatever address it asks for (the generator
//!   owns every client and real-server address).
//! - Time is virtual: `now_ms` advances by `ms_per_step` per [`InProc::step`]; the engine's TSC is
//!   that millisecond count (configure engines with `tsc_hz = 1000`). Runs are deterministic.
//! - Frames reach the worker as rvsd's loop hands them over: through `Worker::process_burst`, in
//!   bursts of at most `burst` frames per port.
//! - `gateway_time` is the wall time spent inside `Worker::process_burst`/`poll` only: a
//!   gateway-only figure with no I/O, excluding the generator's own work.
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_dataplane::flow::Proto;
use rvs_dataplane::frame::{Frame, VecFrame, VecPool};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::{arp, ArpOperation, ArpPacket, ArpRepr, EthernetAddress};
use rvs_dataplane::worker::{
    ConnSetup, Outbox, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, Worker,
};

use super::synflood::FloodConfig;
use super::tcp::TcpConfig;
use super::tcpwire;
use super::{Engine, Macs, Side, Tx};

const ETHERTYPE_ARP: u16 = 0x0806;
/// Rounds of delivery per step before the step ends with frames still in flight.
const MAX_ROUNDS: usize = 64;

/// The test topology: gateway port 0 (clients) 198.18.0.1/24 with a route to the clients'
/// 198.19.0.0/16 via the generator at 198.18.0.2; port 1 (servers) 198.18.1.1/24 with the real
/// servers and local addresses on it.
pub mod topo {
    use super::*;
    pub const GW_MAC: [EthernetAddress; 2] =
        [EthernetAddress([2, 0, 0, 0, 0, 1]), EthernetAddress([2, 0, 0, 0, 0, 2])];
    pub const GEN_MAC: [EthernetAddress; 2] =
        [EthernetAddress([2, 0, 0, 0, 1, 1]), EthernetAddress([2, 0, 0, 0, 1, 2])];
    pub const MACS: Macs = Macs { own: GEN_MAC, gw: GW_MAC };
    pub const GW_ADDR: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 1)];
    pub const GEN_CLIENT_HOP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    pub const VPORT: u16 = 80;
    pub const RPORT: u16 = 80;
    /// Legitimate clients start here; the flood's sources are 198.19.128.0/17.
    pub const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    pub const FLOOD_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 128, 0);
    pub const FLOOD_SOURCES: u32 = 1 << 15;

    pub fn lips(n: u8) -> Vec<Ipv4Addr> {
        (0..n).map(|i| Ipv4Addr::new(198, 18, 1, 100 + i)).collect()
    }

    pub fn reals(n: u8) -> Vec<Ipv4Addr> {
        (0..n).map(|i| Ipv4Addr::new(198, 18, 1, 11 + i)).collect()
    }
}

/// One SYN-proxied or plain TCP service on the [`topo`] topology.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub synproxy: bool,
    pub toa: bool,
    pub lips: u8,
    pub reals: u8,
    pub max_conns_per_worker: u32,
}

impl Scenario {
    pub fn setup(&self) -> Setup {
        let port = |i: usize| PortSetup {
            name: ["client", "server"][i].into(),
            mac: topo::GW_MAC[i],
            addr: topo::GW_ADDR[i],
            prefix_len: 24,
            addr6: None,
            prefix6_len: 0,
            mtu: 1500,
        };
        let reals = topo::reals(self.reals)
            .into_iter()
            .enumerate()
            .map(|(i, addr)| RealSetup {
                id: 10 + i as u32,
                addr: addr.into(),
                port: topo::RPORT,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                xlat: rvs_dataplane::xmit::Xlat::FullNat,
            })
            .collect();
        Setup {
            ports: vec![port(0), port(1)],
            routes: vec![RouteSetup {
                dst: Ipv4Addr::new(198, 19, 0, 0).into(),
                prefix_len: 16,
                via: topo::GEN_CLIENT_HOP.into(),
            }],
            services: vec![ServiceSetup {
                id: 1,
                proto: Proto::Tcp,
                vip: topo::VIP.into(),
                vport: topo::VPORT,
                sched: SchedKind::Rr,
                persistence_ms: None,
                toa: self.toa,
                synproxy: self.synproxy,
                proxy_protocol: None,
                laddrs: topo::lips(self.lips).into_iter().map(Into::into).collect(),
                reals,
            }],
            conn: ConnSetup { max_per_worker: self.max_conns_per_worker, ..ConnSetup::default() },
            workers: 1,
        }
    }

    /// A connection engine's configuration for this service (virtual TSC: 1000 per second).
    pub fn tcp(&self, window: u32, max_conns: u64) -> TcpConfig {
        TcpConfig {
            macs: topo::MACS,
            vip: topo::VIP,
            vport: topo::VPORT,
            client_base: topo::CLIENT_BASE,
            clients: 256,
            cport_min: 1024,
            cport_max: 65535,
            lips: topo::lips(self.lips),
            reals: topo::reals(self.reals),
            rport: topo::RPORT,
            synproxy: self.synproxy,
            toa: self.toa,
            timestamps: true,
            window,
            rate: 0,
            max_conns,
            tsc_hz: 1000,
            timeout_ms: 2_000,
            req_len: 100,
            resp_len: 300,
        }
    }

    pub fn flood(&self, rate: u64) -> FloodConfig {
        FloodConfig {
            macs: topo::MACS,
            vip: topo::VIP,
            vport: topo::VPORT,
            source_base: topo::FLOOD_BASE,
            sources: topo::FLOOD_SOURCES,
            rate,
            tsc_hz: 1000,
            seed: 0x5eed,
        }
    }
}

/// Changes a frame the gateway delivered before the engine sees it (tests inject faults).
pub type Tamper = Box<dyn FnMut(Side, &mut VecFrame)>;

/// The loop; see the module docs.
pub struct InProc<E: Engine> {
    pub worker: Worker<VecPool>,
    pub stats: Arc<Stats>,
    pub engine: E,
    pool: VecPool,
    out: Outbox<VecFrame>,
    tx: Tx<VecFrame>,
    delivered: Vec<VecFrame>,
    /// One burst on its way into the worker.
    rx: Vec<VecFrame>,
    pub now_ms: u64,
    pub ms_per_step: u64,
    /// Frames an engine may originate per side per step.
    pub burst: usize,
    /// Wall time inside the worker's `process_burst` and `poll`.
    pub gateway_time: Duration,
    pub arp_answered: u64,
    /// Frames the gateway delivered that were neither IPv4 for the engine nor ARP requests.
    pub other: u64,
    pub tamper: Option<Tamper>,
}

impl<E: Engine> InProc<E> {
    pub fn new(setup: &Setup, engine: E, burst: usize) -> InProc<E> {
        let stats = Arc::new(Stats::default());
        let worker = Worker::new(setup, 0, VecPool::default(), stats.clone());
        // Frames an engine answers within a round can exceed a burst: size for the worst step.
        let cap = worker.outbox_capacity(burst).max(burst * 8);
        InProc {
            worker,
            stats,
            engine,
            pool: VecPool::default(),
            out: Outbox::new(2, cap),
            tx: Tx::with_capacity(cap),
            delivered: Vec::with_capacity(cap),
            rx: Vec::with_capacity(burst),
            now_ms: 1,
            ms_per_step: 1,
            burst,
            gateway_time: Duration::ZERO,
            arp_answered: 0,
            other: 0,
            tamper: None,
        }
    }

    /// One step: the engine generates, then frames shuttle between it and the worker until none is
    /// left (or `MAX_ROUNDS`), then the clock advances. Returns the frames moved.
    pub fn step(&mut self) -> usize {
        let now = self.now_ms;
        for side in [Side::Client, Side::Server] {
            self.engine.generate(side, now, self.burst, &mut self.pool, &mut self.tx);
        }
        let mut moved = 0;
        for round in 0..MAX_ROUNDS {
            let t0 = Instant::now();
            let mut n = 0;
            for side in 0..2 {
                let q = &mut self.tx.side[side];
                while !q.is_empty() {
                    let k = q.len().min(self.burst.max(1));
                    self.rx.extend(q.drain(..k));
                    n += k;
                    self.worker.process_burst(&mut self.rx, side, now, &mut self.out);
                }
            }
            if round == 0 {
                self.worker.poll(now, &mut self.out);
            }
            self.gateway_time += t0.elapsed();
            for side in [Side::Client, Side::Server] {
                self.delivered.append(self.out.port(side as usize));
                for mut f in self.delivered.drain(..) {
                    n += 1;
                    let d = f.data();
                    if d.len() >= 14 && u16::from_be_bytes([d[12], d[13]]) == ETHERTYPE_ARP {
                        if answer_arp(&mut f, topo::GEN_MAC[side as usize]) {
                            self.arp_answered += 1;
                            self.tx.push(side, f);
                        } else {
                            self.other += 1;
                        }
                        continue;
                    }
                    if tcpwire::ipv4_dst(d).is_none() {
                        self.other += 1;
                        continue;
                    }
                    if let Some(t) = self.tamper.as_mut() {
                        t(side, &mut f);
                    }
                    self.engine.receive(side, f, now, &mut self.pool, &mut self.tx);
                }
            }
            moved += n;
            if self.tx.side.iter().all(Vec::is_empty) {
                break;
            }
        }
        self.now_ms += self.ms_per_step;
        moved
    }

    /// Steps until `done` holds or `max_steps` passed; returns the steps taken.
    pub fn run(&mut self, max_steps: usize, mut done: impl FnMut(&E) -> bool) -> usize {
        for i in 0..max_steps {
            if done(&self.engine) {
                return i;
            }
            self.step();
        }
        max_steps
    }
}

/// Turns an ARP request into the generator's reply in place; false if it is not a request.
fn answer_arp(f: &mut VecFrame, mac: EthernetAddress) -> bool {
    let req = match ArpPacket::new_checked(&f.data()[14..]) {
        Ok(p) if p.operation() == ArpOperation::Request => ArpRepr::parse(&p),
        _ => return false,
    };
    match arp::emit_reply(f.data_mut(), &req, mac) {
        Ok(n) => tcpwire::set_len(f, n),
        Err(_) => false,
    }
}
