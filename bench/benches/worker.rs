//! The whole per-packet path of an established connection: one 64-byte UDP frame (60 bytes plus
//! the 4-byte FCS the NIC adds) through `Worker::process` (Ethernet and IPv4 checks, connection
//! lookup, FULLNAT rewrite, counters, routing and neighbour resolution, onto the outbox), in both
//! directions, with 1 and with 1M established connections in the worker's table.
//!
//! Each iteration refills a recycled frame from a template and points it at the next connection
//! (`rewrite_l4_tuple`, a few ns); `harness_only` measures exactly that without `process`, so
//! `process` alone costs the difference. Connections are visited in a shuffled order so the
//! table's buckets and slots are reached as random packets reach them.
//!
//! `worker_burst_udp_64B`: the whole `Worker` through its burst entry point, `process_burst`, 32
//! frames of established connections per call (as rvsd's loop hands a received burst over), with
//! 1k, 1M and 4M connections in the table; criterion reports elements (packets) per second and the
//! time per 32-packet burst, so ns per packet = time / 32. Frames are recycled from the outbox.
//!
//! `cargo bench -p rvs-bench --bench worker`
//! `cargo bench -p rvs-bench --bench worker -- worker_burst --warm-up-time 1 --measurement-time 3`
// As in rvsd: large tables on transparent huge pages (ffi/src/alloc.rs).
#[global_allocator]
static ALLOC: dpdk_sys::alloc::HugePageAdvice = dpdk_sys::alloc::HugePageAdvice;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rvs_dataplane::flow::{FlowKey, Proto};
use rvs_dataplane::frame::{Frame, VecFrame, VecPool};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::{rewrite_l4_tuple, EthernetAddress};
use rvs_dataplane::worker::{
    ConnSetup, Outbox, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, Worker,
};

mod common;
use common::{arp_request, udp_frame, Rng, ETH};

const GW0_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const GW1_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
const GW0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const GW1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The clients' router on port 0; clients live behind it in 198.19.0.0/16.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const ROUTER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xfe]);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const VPORT: u16 = 53;
const REALS: u8 = 8;
/// 32 local addresses give 32 x 64511 local ports: room for 1M connections with no reuse.
const LIPS: u8 = 32;
const NOW: u64 = 1_000;
/// 60 bytes on the wire before the FCS: the 64-byte class.
const PAYLOAD: usize = 18;

fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, 11 + i)
}

fn setup(max_conns: u32) -> Setup {
    let port = |mac, addr| PortSetup {
        name: "p".into(),
        mac,
        addr,
        prefix_len: 24,
        addr6: None,
        prefix6_len: 0,
        mtu: 1500,
    };
    Setup {
        ports: vec![port(GW0_MAC, GW0), port(GW1_MAC, GW1)],
        routes: vec![RouteSetup {
            dst: Ipv4Addr::new(198, 19, 0, 0).into(),
            prefix_len: 16,
            via: ROUTER.into(),
        }],
        services: vec![ServiceSetup {
            id: 1,
            proto: Proto::Udp,
            vip: VIP.into(),
            vport: VPORT,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: false,
            proxy_protocol: None,
            laddrs: (0..LIPS).map(|i| Ipv4Addr::new(198, 18, 1, 100 + i).into()).collect(),
            reals: (0..REALS)
                .map(|i| RealSetup {
                    id: 10 + u32::from(i),
                    addr: rs(i).into(),
                    port: VPORT,
                    weight: 1,
                    u_threshold: 0,
                    l_threshold: 0,
                    xlat: rvs_dataplane::xmit::Xlat::FullNat,
                })
                .collect(),
        }],
        conn: ConnSetup { max_per_worker: max_conns, ..ConnSetup::default() },
        workers: 1,
    }
}

/// Client `i`'s tuple towards the VIP.
fn client_key(i: u32) -> FlowKey {
    FlowKey {
        proto: Proto::Udp,
        src: Ipv4Addr::from(0xc613_0000 + (i >> 10)),
        dst: VIP,
        sport: 1024 + (i & 1023) as u16,
        dport: VPORT,
    }
}

/// A worker with `n` established UDP connections (each made by a first client packet), its
/// outbox, and the keys of both directions in a shuffled order.
struct Bench {
    w: Worker<VecPool>,
    out: Outbox<VecFrame>,
    original: Vec<FlowKey>,
    reply: Vec<FlowKey>,
}

impl Bench {
    fn new(n: u32) -> Bench {
        let s = setup(n.max(1024));
        let mut w = Worker::new(&s, 0, VecPool::default(), Arc::new(Stats::default()));
        let mut out = Outbox::new(2, w.outbox_capacity(32));
        // Neighbours announce themselves (an ARP request for the gateway's address is learned).
        w.process(VecFrame::from_bytes(&arp_request((ROUTER_MAC, ROUTER), GW0)), 0, NOW, &mut out);
        for i in 0..REALS {
            let mac = EthernetAddress([2, 0, 0, 1, 0, i]);
            w.process(VecFrame::from_bytes(&arp_request((mac, rs(i)), GW1)), 1, NOW, &mut out);
        }
        out.port(0).clear();
        out.port(1).clear();

        let template = udp_frame(GW0_MAC, (Ipv4Addr::new(198, 19, 0, 0), 1), (VIP, VPORT), PAYLOAD);
        for i in 0..n {
            let k = client_key(i);
            let mut f = VecFrame::from_bytes(&template);
            rewrite_l4_tuple(&mut f.data_mut()[ETH..], k.src, k.dst, k.sport, k.dport).unwrap();
            w.process(f, 0, NOW, &mut out);
            assert_eq!(out.port(1).len(), 1, "connection {i} was not forwarded: {:?}", w.stats().nonzero());
            out.port(1).clear();
        }
        assert_eq!(w.conns().len(), n as usize);

        let mut original: Vec<FlowKey> = (0..n).map(client_key).collect();
        let mut reply: Vec<FlowKey> = w.conns().iter().map(|(_, c)| c.reply_key()).collect();
        let mut rng = Rng::new(u64::from(n));
        for keys in [&mut original, &mut reply] {
            for i in (1..keys.len()).rev() {
                keys.swap(i, rng.below(i + 1));
            }
        }
        Bench { w, out, original, reply }
    }
}

/// Refill `f` from `template` and give it the tuple `k`.
#[inline]
fn refill(f: &mut VecFrame, template: &[u8], k: &FlowKey) {
    let len = f.len();
    if len < template.len() {
        f.append(template.len() - len);
    } else {
        f.trim(len - template.len());
    }
    let d = f.data_mut();
    d.copy_from_slice(template);
    rewrite_l4_tuple(&mut d[ETH..], k.src, k.dst, k.sport, k.dport).unwrap();
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker_udp_64B");
    // The template's tuple is overwritten by refill; only its headers and lengths matter.
    let any = (Ipv4Addr::new(198, 19, 0, 0), 1);
    let to_vip = udp_frame(GW0_MAC, any, (VIP, VPORT), PAYLOAD);
    let to_lip = udp_frame(GW1_MAC, (rs(0), VPORT), (Ipv4Addr::new(198, 18, 1, 100), 1), PAYLOAD);
    let mut f = VecFrame::from_bytes(&to_vip);
    let k = client_key(0);
    g.bench_function("harness_only", |b| {
        b.iter(|| {
            refill(&mut f, &to_vip, &k);
            black_box(f.data()[ETH + 12])
        })
    });

    for n in [1u32, 1_000_000] {
        let Bench { mut w, mut out, original, reply } = Bench::new(n);
        let label = if n >= 1_000_000 { format!("{}M_conns", n / 1_000_000) } else { format!("{n}_conns") };
        // (direction, received on port, leaves on port, template, keys)
        let dirs = [("client_to_real", 0, 1, &to_vip, &original), ("real_to_client", 1, 0, &to_lip, &reply)];
        for (name, in_port, out_port, template, keys) in dirs {
            let mut f = Some(VecFrame::from_bytes(template));
            let mut at = 0usize;
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    let mut fr = f.take().expect("the frame came back");
                    refill(&mut fr, template, &keys[at]);
                    at += 1;
                    if at == keys.len() {
                        at = 0;
                    }
                    w.process(fr, in_port, NOW, &mut out);
                    f = out.port(out_port).pop();
                })
            });
            assert!(
                f.is_some(),
                "{name}/{label}: the last packet was not forwarded: {:?}",
                w.stats().nonzero()
            );
        }
    }
    g.finish();
}

/// Packets per `process_burst` call: rvsd's default burst.
const BURST: usize = 32;

fn burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("worker_burst_udp_64B");
    g.throughput(Throughput::Elements(BURST as u64));
    let any = (Ipv4Addr::new(198, 19, 0, 0), 1);
    let to_vip = udp_frame(GW0_MAC, any, (VIP, VPORT), PAYLOAD);
    let to_lip = udp_frame(GW1_MAC, (rs(0), VPORT), (Ipv4Addr::new(198, 18, 1, 100), 1), PAYLOAD);
    {
        let mut spare: Vec<VecFrame> = (0..BURST).map(|_| VecFrame::from_bytes(&to_vip)).collect();
        let mut rx: Vec<VecFrame> = Vec::with_capacity(BURST);
        let keys: Vec<FlowKey> = (0..BURST as u32).map(client_key).collect();
        g.bench_function("harness_only", |b| {
            b.iter(|| {
                for k in &keys {
                    let mut fr = spare.pop().expect("a spare frame");
                    refill(&mut fr, &to_vip, k);
                    rx.push(fr);
                }
                black_box(&rx);
                spare.append(&mut rx);
            })
        });
    }
    for n in [1_000u32, 1_000_000, 4_000_000] {
        let Bench { mut w, mut out, original, reply } = Bench::new(n);
        let label =
            if n >= 1_000_000 { format!("{}M_conns", n / 1_000_000) } else { format!("{}k_conns", n / 1000) };
        let dirs = [("client_to_real", 0, 1, &to_vip, &original), ("real_to_client", 1, 0, &to_lip, &reply)];
        for (name, in_port, out_port, template, keys) in dirs {
            let mut spare: Vec<VecFrame> = (0..BURST).map(|_| VecFrame::from_bytes(template)).collect();
            let mut rx: Vec<VecFrame> = Vec::with_capacity(BURST);
            let mut at = 0usize;
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    for _ in 0..BURST {
                        let mut fr = spare.pop().expect("every frame of the last burst came back");
                        refill(&mut fr, template, &keys[at]);
                        at += 1;
                        if at == keys.len() {
                            at = 0;
                        }
                        rx.push(fr);
                    }
                    w.process_burst(&mut rx, in_port, NOW, &mut out);
                    spare.append(out.port(out_port));
                })
            });
            assert_eq!(
                spare.len(),
                BURST,
                "{name}/{label}: the last burst was not all forwarded: {:?}",
                w.stats().nonzero()
            );
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = established, burst
}
criterion_main!(benches);
