//! The UDP engine against the real dataplane, in-process: `rvs_dataplane::worker::Worker` over
//! `VecFrame`s plays rvsd, with ARP on both sides. A corrupted rewrite between the worker and the
//! engine must be counted as the right error and never as `rx_ok`.
use std::net::Ipv4Addr;
use std::sync::Arc;

use rvs_dataplane::flow::Proto;
use rvs_dataplane::frame::{Frame, VecFrame, VecPool};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::{checksum, EthernetAddress};
use rvs_dataplane::worker::{
    ConnSetup, Outbox, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, Worker,
};

use super::*;
use crate::gen::arp::{Arp, ArpOutcome};

const GW_MAC: [EthernetAddress; 2] =
    [EthernetAddress([2, 0, 0, 0, 0, 1]), EthernetAddress([2, 0, 0, 0, 1, 1])];
const GEN_MAC: [EthernetAddress; 2] =
    [EthernetAddress([2, 0, 0, 0, 0, 2]), EthernetAddress([2, 0, 0, 0, 1, 2])];
const GW: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 1)];
const GEN_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const LIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 1, 100), Ipv4Addr::new(198, 18, 1, 101)];

fn reals() -> Vec<(Ipv4Addr, u16)> {
    (11..=13).map(|i| (Ipv4Addr::new(198, 18, 1, i), 8000)).collect()
}

/// The real servers in mode `f`: DR and TUN cannot change the port (the VIP's, 9000).
fn mode_reals(f: Forward) -> Vec<(Ipv4Addr, u16)> {
    let mut r = reals();
    if matches!(f, Forward::Dr | Forward::Tun) {
        r.iter_mut().for_each(|r| r.1 = 9000);
    }
    r
}

fn setup() -> Setup {
    setup_for(Forward::FullNat)
}

/// The dataplane's mode for the generator's.
fn xlat(f: Forward) -> rvs_dataplane::xmit::Xlat {
    use rvs_dataplane::xmit::Xlat;
    match f {
        Forward::FullNat => Xlat::FullNat,
        Forward::Nat => Xlat::Nat,
        Forward::Dr => Xlat::Dr,
        Forward::Tun => Xlat::Tun,
    }
}

/// The service with its real servers in mode `f` (DR and TUN keep the VIP's port; only FULLNAT
/// has local addresses).
fn setup_for(f: Forward) -> Setup {
    let port = |i: usize| PortSetup {
        name: format!("p{i}"),
        mac: GW_MAC[i],
        addr: GW[i],
        prefix_len: 24,
        addr6: None,
        prefix6_len: 0,
        mtu: 1500,
    };
    Setup {
        ports: vec![port(0), port(1)],
        routes: vec![RouteSetup {
            dst: Ipv4Addr::new(198, 19, 0, 0).into(),
            prefix_len: 16,
            via: GEN_CLIENT.into(),
        }],
        services: vec![ServiceSetup {
            id: 1,
            proto: Proto::Udp,
            vip: VIP.into(),
            vport: 9000,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: false,
            proxy_protocol: None,
            laddrs: if f == Forward::FullNat { LIPS.iter().map(|&a| a.into()).collect() } else { Vec::new() },
            reals: mode_reals(f)
                .into_iter()
                .enumerate()
                .map(|(k, (addr, port))| RealSetup {
                    id: 10 + k as u32,
                    addr: addr.into(),
                    port,
                    weight: 1,
                    u_threshold: 0,
                    l_threshold: 0,
                    xlat: xlat(f),
                })
                .collect(),
        }],
        conn: ConnSetup { max_per_worker: 8192, ..ConnSetup::default() },
        workers: 1,
    }
}

fn conf(flows: u32, frame_len: usize, macs: Macs, mode: Mode) -> UdpConf {
    UdpConf {
        flows,
        frame_len,
        vip: VIP,
        vport: 9000,
        client_net: Ipv4Addr::new(198, 19, 0, 0),
        client_port: 10_000,
        reals: reals(),
        lips: LIPS.to_vec(),
        macs,
        mode,
        forward: Forward::FullNat,
        gw_server: GW[1],
        resend_gap_tsc: 0,
    }
}

/// rvsd's packet path in-process, with the generator's ARP in front of the engine.
struct Loop {
    w: Worker<VecPool>,
    out: Outbox<VecFrame>,
    stats: Arc<Stats>,
    arp: Arp,
    pool: VecPool,
    tsc: u64,
    ms: u64,
    gw_learned: [Option<EthernetAddress>; 2],
}

impl Loop {
    fn new() -> Loop {
        Loop::for_mode(Forward::FullNat)
    }

    /// The worker with its real servers in mode `f`; for DR the generator answers ARP for each
    /// real server with its own MAC, as rvs-gen does.
    fn for_mode(f: Forward) -> Loop {
        let stats = Arc::new(Stats::default());
        let w = Worker::new(&setup_for(f), 0, VecPool::default(), stats.clone());
        let out = Outbox::new(2, w.outbox_capacity(4096));
        let rs: Vec<Ipv4Addr> = reals().iter().map(|r| r.0).collect();
        let arp = Arp::new(GEN_MAC, vec![GEN_CLIENT], rs);
        let arp = if f == Forward::Dr { arp.with_real_macs() } else { arp };
        Loop { w, out, stats, arp, pool: VecPool::default(), tsc: 1_000, ms: 0, gw_learned: [None, None] }
    }

    /// ARPs for the gateway's address on both sides, as the driver does before traffic.
    fn learn_gateway(&mut self) -> Macs {
        for (s, side) in [Side::Client, Side::Server].into_iter().enumerate() {
            let req = self.arp.request(side, GW[s], &mut self.pool).unwrap();
            self.w.process(req, s, 0, &mut self.out);
        }
        let mut none = Tx::with_capacity(0);
        self.deliver(&mut None::<&mut UdpFlows>, &mut none, &mut |_, _| {});
        Macs { own: GEN_MAC, gw: [self.gw_learned[0].unwrap(), self.gw_learned[1].unwrap()] }
    }

    /// Moves everything the worker transmitted to the generator: ARP to the responder, the rest
    /// through `corrupt` to the engine (if any). Returns how many frames reached the engine.
    fn deliver(
        &mut self,
        engine: &mut Option<&mut UdpFlows>,
        tx: &mut Tx<VecFrame>,
        corrupt: &mut dyn FnMut(Side, &mut Vec<u8>),
    ) -> usize {
        let mut n = 0;
        for side in [Side::Client, Side::Server] {
            let frames: Vec<VecFrame> = self.out.port(side as usize).drain(..).collect();
            for f in frames {
                match self.arp.handle(side, f) {
                    ArpOutcome::Reply(r) => self.w.process(r, side as usize, 0, &mut self.out),
                    ArpOutcome::Learned(_, mac) => self.gw_learned[side as usize] = Some(mac),
                    ArpOutcome::Ignored => {}
                    ArpOutcome::NotArp(f) => {
                        let mut bytes = f.data().to_vec();
                        corrupt(side, &mut bytes);
                        if let Some(e) = engine.as_deref_mut() {
                            self.tsc += 10;
                            e.receive(side, VecFrame::from_bytes(&bytes), self.tsc, &mut self.pool, tx);
                            n += 1;
                        }
                    }
                }
            }
        }
        n
    }

    /// Runs until neither side has anything in flight: the generator's frames go through the worker,
    /// the worker's output back to the generator.
    fn settle(
        &mut self,
        e: &mut UdpFlows,
        tx: &mut Tx<VecFrame>,
        corrupt: &mut dyn FnMut(Side, &mut Vec<u8>),
    ) {
        for _ in 0..100 {
            // Milliseconds move on so the worker publishes its gauges (the accounting needs them).
            self.ms += 20;
            for side in [Side::Client, Side::Server] {
                for f in tx.side[side as usize].drain(..) {
                    self.w.process(f, side as usize, self.ms, &mut self.out);
                }
            }
            self.w.poll(self.ms, &mut self.out);
            if self.out.is_empty() {
                return;
            }
            self.deliver(&mut Some(&mut *e), tx, corrupt);
        }
        panic!("the loop did not settle");
    }

    fn warm_up(&mut self, e: &mut UdpFlows) {
        let mut tx = Tx::with_capacity(1024);
        for _ in 0..50 {
            if e.warmed_up() {
                return;
            }
            self.tsc += 100;
            e.generate(Side::Client, self.tsc, 256, &mut self.pool, &mut tx);
            self.settle(e, &mut tx, &mut |_, _| {});
        }
        panic!(
            "warm-up incomplete: {} of {} learned, generator {:?}, worker {:?}",
            e.learned(),
            e.conf().flows,
            e.counters(),
            self.stats.nonzero()
        );
    }

    /// One frame of `side` through the worker, altered by `corrupt` on its way back.
    fn one(&mut self, e: &mut UdpFlows, side: Side, corrupt: &mut dyn FnMut(Side, &mut Vec<u8>)) {
        let mut tx = Tx::with_capacity(4);
        self.tsc += 100;
        assert_eq!(e.generate(side, self.tsc, 1, &mut self.pool, &mut tx), 1);
        self.settle(e, &mut tx, corrupt);
    }
}

fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

/// Recomputes the IPv4 and UDP checksums, as a gateway that rewrote consistently would.
fn refill(d: &mut [u8]) {
    d[24..26].fill(0);
    let ip = checksum::internet_checksum(&d[14..34]);
    d[24..26].copy_from_slice(&ip.to_be_bytes());
    let len = be16(d, 38);
    d[40..42].fill(0);
    let src = Ipv4Addr::new(d[26], d[27], d[28], d[29]);
    let dst = Ipv4Addr::new(d[30], d[31], d[32], d[33]);
    let ph = checksum::ipv4_pseudo_header(src, dst, 17, len);
    let c = checksum::udp_nonzero(!checksum::fold(checksum::accumulate(ph, &d[34..34 + len as usize])));
    d[40..42].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn full_loop_both_directions_every_frame_checked() {
    for frame_len in [60, 124, 508, 1514] {
        let mut l = Loop::new();
        let macs = l.learn_gateway();
        assert_eq!(macs.gw, GW_MAC);
        let flows = 600;
        let mut e = UdpFlows::new(conf(flows, frame_len, macs, Mode::Check)).unwrap();
        assert!(!e.warmed_up());
        l.warm_up(&mut e);
        assert!(e.server_tuples_unique(), "every flow has its own server-side tuple");
        assert_eq!(e.counters().total_errors(), 0, "{:?}", e.counters());
        // Warm-up: every client datagram reached a real server and every answer its client.
        let c = e.counters().clone();
        assert_eq!(c.rx_ok[Side::Server as usize], flows as u64);
        assert_eq!(c.rx_ok[Side::Client as usize], c.tx[Side::Server as usize]);

        // The first datagrams to each real server waited for ARP; some overflowed the gateway's
        // per-neighbour queue and were resent by the warm-up. From here on nothing may drop.
        let drops = l.stats.total_drops();
        e.start_measuring();
        let mut tx = Tx::with_capacity(1024);
        for _ in 0..10 {
            l.tsc += 1_000;
            assert_eq!(e.generate(Side::Client, l.tsc, 200, &mut l.pool, &mut tx), 200);
            assert_eq!(e.generate(Side::Server, l.tsc, 150, &mut l.pool, &mut tx), 150);
            l.settle(&mut e, &mut tx, &mut |_, _| {});
        }
        let d = e.counters().since(&c);
        assert_eq!(d.tx, [2000, 1500]);
        assert_eq!(d.rx_ok, [1500, 2000], "frames delivered and found correct, per side");
        assert_eq!(d.rx_bytes, [1500 * frame_len as u64, 2000 * frame_len as u64]);
        assert_eq!(d.total_errors(), 0, "{d:?}");
        assert_eq!(e.latency().unwrap().count(), 3500);
        assert_eq!(l.stats.total_drops(), drops, "{:?}", l.stats.nonzero());
        assert_eq!(l.stats.accounting_gap(), 0);
    }
}

/// What a corruption must be counted as.
type Case = (&'static str, Side, RewriteError, fn(&mut Vec<u8>));

#[test]
fn corrupted_rewrites_are_counted_as_errors_not_throughput() {
    let cases: [Case; 12] = [
        ("wrong real-server port", Side::Server, RewriteError::Port, |d| {
            let p = be16(d, 36) + 1;
            d[36..38].copy_from_slice(&p.to_be_bytes());
            refill(d);
        }),
        ("wrong local port", Side::Server, RewriteError::Port, |d| {
            let p = be16(d, 34) ^ 0x100;
            d[34..36].copy_from_slice(&p.to_be_bytes());
            refill(d);
        }),
        ("source not a local address", Side::Server, RewriteError::Address, |d| {
            d[29] = 222;
            refill(d);
        }),
        ("wrong client port", Side::Client, RewriteError::Port, |d| {
            let p = be16(d, 36) + 7;
            d[36..38].copy_from_slice(&p.to_be_bytes());
            refill(d);
        }),
        ("source not the VIP", Side::Client, RewriteError::Address, |d| {
            d[29] = 101;
            refill(d);
        }),
        ("delivered to another flow's client", Side::Client, RewriteError::Address, |d| {
            // The payload names flow 5, the addresses are another flow's: a tuple mix-up.
            d[46..50].copy_from_slice(&5u32.to_be_bytes());
            refill(d);
        }),
        ("UDP checksum not updated", Side::Server, RewriteError::L4Checksum, |d| d[36] ^= 0x40),
        ("UDP checksum zeroed", Side::Client, RewriteError::L4Checksum, |d| d[40..42].fill(0)),
        ("IPv4 checksum broken", Side::Client, RewriteError::IpChecksum, |d| d[25] ^= 1),
        ("payload altered", Side::Server, RewriteError::Payload, |d| {
            let n = d.len() - 1;
            d[n] ^= 0xff;
            refill(d);
        }),
        ("wrong destination MAC", Side::Server, RewriteError::Mac, |d| d[5] ^= 1),
        ("truncated", Side::Client, RewriteError::Malformed, |d| {
            d.truncate(40);
        }),
    ];
    let mut l = Loop::new();
    let macs = l.learn_gateway();
    let mut e = UdpFlows::new(conf(64, 128, macs, Mode::Check)).unwrap();
    l.warm_up(&mut e);
    for (name, deliver_side, want, corrupt) in cases {
        let before = e.counters().clone();
        // A frame delivered on the server side was sent by a client, and the other way round.
        let send_side = match deliver_side {
            Side::Server => Side::Client,
            Side::Client => Side::Server,
        };
        l.one(&mut e, send_side, &mut |side, d| {
            if side == deliver_side {
                corrupt(d)
            }
        });
        let d = e.counters().since(&before);
        assert_eq!(d.rx_ok, [0, 0], "{name}: counted as throughput");
        assert_eq!(d.errors[want as usize], 1, "{name}: expected {want:?}, got {d:?}");
        assert_eq!(d.total_errors(), 1, "{name}: {d:?}");
    }
    // And an unaltered frame still passes.
    let before = e.counters().clone();
    l.one(&mut e, Side::Client, &mut |_, _| {});
    assert_eq!(e.counters().since(&before).rx_ok, [0, 1]);
}

#[test]
fn a_wrong_rewrite_during_warm_up_is_not_learned() {
    let mut l = Loop::new();
    let macs = l.learn_gateway();
    let mut e = UdpFlows::new(conf(4, 60, macs, Mode::Check)).unwrap();
    let mut tx = Tx::with_capacity(8);
    e.generate(Side::Client, 1, 4, &mut l.pool, &mut tx);
    l.settle(&mut e, &mut tx, &mut |side, d| {
        if side == Side::Server {
            d[29] = 222; // not a LIP
            refill(d);
        }
    });
    assert_eq!(e.learned(), 0);
    assert_eq!(e.counters().errors[RewriteError::Address as usize], 4);
    // The resend pass completes the warm-up once the gateway behaves.
    l.warm_up(&mut e);
    assert_eq!(e.learned(), 4);
}

#[test]
fn reference_mode_counts_unrewritten_returns() {
    // A plain forwarder: what one side sends arrives unchanged on the other.
    let macs = Macs { own: GEN_MAC, gw: GW_MAC };
    let mut e = UdpFlows::new(conf(1000, 60, macs, Mode::Reference)).unwrap();
    assert!(e.warmed_up());
    let mut pool = VecPool::default();
    let mut tx = Tx::with_capacity(64);
    e.generate(Side::Client, 10, 64, &mut pool, &mut tx);
    e.generate(Side::Server, 10, 32, &mut pool, &mut tx);
    let [c, s] = std::mem::take(&mut tx.side);
    for f in c {
        e.receive(Side::Server, f, 20, &mut pool, &mut tx);
    }
    for f in s {
        e.receive(Side::Client, f, 20, &mut pool, &mut tx);
    }
    let k = e.counters();
    assert_eq!((k.rx_ok, k.total_errors()), ([32, 64], 0));
    assert_eq!(e.latency().unwrap().quantile(0.5), Some(10));
    // Something that is not ours is still refused.
    e.receive(Side::Client, VecFrame::from_bytes(&[0u8; 60]), 30, &mut pool, &mut tx);
    assert_eq!(e.counters().errors[RewriteError::Malformed as usize], 1);
}

#[test]
fn templates_carry_correct_checksums_for_every_flow() {
    let macs = Macs { own: GEN_MAC, gw: GW_MAC };
    let e = UdpFlows::new(conf(200_000, 60, macs, Mode::Reference)).unwrap();
    let mut pool = VecPool::default();
    for i in [0, 1, 253, 254, 64_515, 64_516, 199_999] {
        for side in [Side::Client, Side::Server] {
            let f = e.build(side, i, 0x0123_4567_89ab_cdef ^ i as u64, &mut pool).unwrap();
            let mut d = f.data().to_vec();
            let want = d.clone();
            refill(&mut d);
            assert_eq!(d, want, "flow {i} {side:?}: stamped checksums differ from a full computation");
        }
    }
    assert_eq!(e.conf().client(64_516), e.conf().client(0));
    assert_eq!(e.conf().cport(64_516), 10_001);
    assert!(UdpFlows::new(conf(10, 59, macs, Mode::Check)).is_err());
    assert!(UdpFlows::new(UdpConf { flows: 0, ..conf(1, 60, macs, Mode::Check) }).is_err());
}

/// Two gateway workers, one queue each: client flows spread by hash; with owner steering every
/// server-side frame reaches the worker that owns its local port (no hand-off needed), with hash
/// steering about half reach another worker (the gateway's software hand-off's load).
#[test]
fn steering_over_two_workers() {
    use crate::gen::steer::{queue_for, Steer};
    use rvs_dataplane::stats::DropReason;
    for steer in [Steer::Owner, Steer::Hash] {
        let mut s = setup();
        s.workers = 2;
        let stats: Vec<Arc<Stats>> = (0..2).map(|_| Arc::new(Stats::default())).collect();
        let mut w: Vec<Worker<VecPool>> =
            (0..2).map(|i| Worker::new(&s, i as u16, VecPool::default(), stats[i].clone())).collect();
        let mut out: Vec<Outbox<VecFrame>> = (0..2).map(|_| Outbox::new(2, 8192)).collect();
        let rs: Vec<Ipv4Addr> = reals().iter().map(|r| r.0).collect();
        let arp = Arp::new(GEN_MAC, vec![GEN_CLIENT], rs);
        let mut pool = VecPool::default();
        let macs = Macs { own: GEN_MAC, gw: GW_MAC };
        let mut e = UdpFlows::new(conf(400, 60, macs, Mode::Check)).unwrap();
        let mut tx = Tx::with_capacity(1024);
        let mut per_queue = [0u32; 2];
        let mut off_owner = 0u32;
        let mut replies_before = None;
        let mut tsc = 1;
        for round in 0..40 {
            if round < 20 && round % 4 == 0 {
                tsc += 1;
                e.generate(Side::Client, tsc, 400, &mut pool, &mut tx);
            }
            if round == 20 && e.warmed_up() {
                // Steady state: every flow's real server sends once; neighbours are resolved by now.
                replies_before = Some(e.counters().rx_ok[Side::Client as usize]);
                e.generate(Side::Server, tsc, 400, &mut pool, &mut tx);
            }
            for side in [Side::Client, Side::Server] {
                for f in tx.side[side as usize].drain(..) {
                    let q = queue_for(side, f.data(), 2, steer) as usize;
                    if side == Side::Client {
                        per_queue[q] += 1;
                    } else if q as u16 != rvs_dataplane::conn::owner(be16(f.data(), 36), 2) {
                        off_owner += 1;
                    }
                    w[q].process(f, side as usize, round * 20, &mut out[q]);
                }
            }
            for q in 0..2 {
                w[q].poll(round * 20, &mut out[q]);
                for side in [Side::Client, Side::Server] {
                    let frames: Vec<VecFrame> = out[q].port(side as usize).drain(..).collect();
                    for f in frames {
                        match arp.handle(side, f) {
                            ArpOutcome::Reply(r) => w[q].process(r, side as usize, round * 20, &mut out[q]),
                            ArpOutcome::NotArp(f) => e.receive(side, f, tsc, &mut pool, &mut tx),
                            _ => {}
                        }
                    }
                }
            }
        }
        assert!(per_queue.iter().all(|&n| n >= 100), "client flows spread over both workers: {per_queue:?}");
        assert_eq!(e.counters().total_errors(), 0);
        let misrouted: u64 = stats.iter().map(|s| s.drops(DropReason::LipNoConn)).sum();
        match steer {
            Steer::Owner => {
                assert!(e.warmed_up(), "{} learned", e.learned());
                assert_eq!(misrouted, 0, "owner steering needs no hand-off");
                assert_eq!(off_owner, 0);
                let before = replies_before.expect("warmed up by round 20");
                assert_eq!(
                    e.counters().rx_ok[Side::Client as usize] - before,
                    400,
                    "every reply reached its client"
                );
            }
            // Whether the gateway then drops (today) or hands these off is its business; the generator
            // must put about half of them on a worker that does not own the connection.
            Steer::Hash => {
                assert!(off_owner > 100, "hash steering leaves replies on their owner: {off_owner}")
            }
        }
    }
}

/// Frames a plain forwarder returns: what was sent on one side arrives on the other, MACs swapped
/// (testpmd macswap) or not (io).
fn reflect(e: &mut UdpFlows, tx: &mut Tx<VecFrame>, pool: &mut VecPool, swap: bool, tsc: u64) {
    let [c, s] = std::mem::take(&mut tx.side);
    for (arrives_on, frames) in [(Side::Server, c), (Side::Client, s)] {
        for mut f in frames {
            if swap {
                let d = f.data_mut();
                let (dst, src) = d[..12].split_at_mut(6);
                dst.swap_with_slice(src);
            }
            e.receive(arrives_on, f, tsc, pool, tx);
        }
    }
}

/// The generator does the same checking work per frame on a reference's frames as on rvsd's: the
/// bytes its checks read (`checked_bytes`) per frame are equal, at every frame size, for rvsd (the
/// real worker in the middle) and for a plain forwarder with and without MAC swap. Deterministic:
/// bytes read, not time.
#[test]
fn checking_work_per_frame_is_the_same_for_the_reference_as_for_rvsd() {
    for frame_len in [60, 124, 508, 1514] {
        let mut l = Loop::new();
        let macs = l.learn_gateway();
        let mut e = UdpFlows::new(conf(300, frame_len, macs, Mode::Check)).unwrap();
        l.warm_up(&mut e);
        let before = e.counters().clone();
        let mut tx = Tx::with_capacity(512);
        l.tsc += 1_000;
        assert_eq!(e.generate(Side::Client, l.tsc, 200, &mut l.pool, &mut tx), 200);
        assert_eq!(e.generate(Side::Server, l.tsc, 100, &mut l.pool, &mut tx), 100);
        l.settle(&mut e, &mut tx, &mut |_, _| {});
        let d = e.counters().since(&before);
        assert_eq!((d.rx_ok, d.total_errors()), ([100, 200], 0), "{d:?}");
        let per_frame = d.checked_bytes / 300;
        assert_eq!(
            d.checked_bytes,
            300 * per_frame,
            "{frame_len} B: rvsd's frames are not all checked alike"
        );
        // Every byte from the IPv4 header to the end is read at least once (checksums, payload).
        assert!(per_frame >= (frame_len - 14) as u64, "{frame_len} B: {per_frame} bytes read per frame");

        for swap in [true, false] {
            let ref_macs = Macs { own: GEN_MAC, gw: GW_MAC };
            let mut r = UdpFlows::new(conf(300, frame_len, ref_macs, Mode::Reference)).unwrap();
            let mut pool = VecPool::default();
            r.generate(Side::Client, 10, 200, &mut pool, &mut tx);
            r.generate(Side::Server, 10, 100, &mut pool, &mut tx);
            reflect(&mut r, &mut tx, &mut pool, swap, 20);
            let k = r.counters();
            assert_eq!((k.rx_ok, k.total_errors()), ([100, 200], 0), "swap {swap}: {k:?}");
            assert_eq!(
                k.checked_bytes,
                300 * per_frame,
                "{frame_len} B, swap {swap}: the reference's frames are checked {} bytes per frame, rvsd's {per_frame}",
                k.checked_bytes as f64 / 300.0
            );
        }
    }
}

/// The reference's frames are really checked: an altered payload, checksum, TTL or tuple is an
/// error, not throughput, as it would be from rvsd.
#[test]
fn reference_mode_checks_every_field() {
    let cases: [Case; 5] = [
        ("payload altered", Side::Server, RewriteError::Payload, |d| {
            let n = d.len() - 1;
            d[n] ^= 0xff;
            refill(d);
        }),
        ("UDP checksum broken", Side::Server, RewriteError::L4Checksum, |d| d[50] ^= 1),
        ("IPv4 checksum broken", Side::Client, RewriteError::IpChecksum, |d| d[25] ^= 1),
        ("TTL decremented", Side::Client, RewriteError::Malformed, |d| {
            d[22] -= 1;
            refill(d);
        }),
        ("source port changed", Side::Server, RewriteError::Port, |d| {
            d[35] ^= 1;
            refill(d);
        }),
    ];
    let macs = Macs { own: GEN_MAC, gw: GW_MAC };
    let mut e = UdpFlows::new(conf(100, 128, macs, Mode::Reference)).unwrap();
    let mut pool = VecPool::default();
    let mut tx = Tx::with_capacity(8);
    for (name, arrives_on, want, corrupt) in cases {
        let before = e.counters().clone();
        let sent_on = if arrives_on == Side::Server { Side::Client } else { Side::Server };
        assert_eq!(e.generate(sent_on, 10, 1, &mut pool, &mut tx), 1);
        let f = tx.side[sent_on as usize].pop().unwrap();
        let mut bytes = f.data().to_vec();
        corrupt(&mut bytes);
        e.receive(arrives_on, VecFrame::from_bytes(&bytes), 20, &mut pool, &mut tx);
        let d = e.counters().since(&before);
        assert_eq!(d.rx_ok, [0, 0], "{name}: counted as throughput");
        assert_eq!(d.errors[want as usize], 1, "{name}: expected {want:?}, got {d:?}");
    }
}

// ---- Forwarding modes: NAT, DR and TUN, against frames built independently with the
// dataplane's testkit (complete checksums), as the gateway must deliver them.

use crate::gen::arp::real_mac;
use rvs_dataplane::wire::testkit::{udp_datagram, FrameBuilder};

const TOY_MACS: Macs = Macs { own: GEN_MAC, gw: GW_MAC };

fn mode_conf(forward: Forward, flows: u32, frame_len: usize, mode: Mode) -> UdpConf {
    let mut c = conf(flows, frame_len, TOY_MACS, mode);
    c.forward = forward;
    if forward != Forward::FullNat {
        c.lips = Vec::new();
    }
    c.reals = mode_reals(forward);
    c
}

/// The client datagram the engine sends for its next flow: (flow, its UDP payload).
fn next_client(e: &mut UdpFlows, pool: &mut VecPool) -> (u32, Vec<u8>) {
    let mut tx = Tx::with_capacity(1);
    assert_eq!(e.generate(Side::Client, 10, 1, pool, &mut tx), 1);
    let f = tx.side[0].pop().unwrap();
    let d = f.data();
    (u32::from_be_bytes(d[46..50].try_into().unwrap()), d[42..].to_vec())
}

/// What a gateway must deliver to real server `rs` for a client datagram of flow `flow` with
/// `payload`, in mode `forward` (TTL decremented, checksums complete).
fn to_real(forward: Forward, c: &UdpConf, flow: u32, rs: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let client = (c.client(flow), c.cport(flow));
    let gw = FrameBuilder::new(GW_MAC[1], GEN_MAC[1]).ident(0).ttl(TTL - 1);
    match forward {
        Forward::Nat => gw.udp(client.0, client.1, rs.0, rs.1, payload, true),
        Forward::Dr => FrameBuilder { dst_mac: real_mac(rs.0), ..gw }
            .udp(client.0, client.1, c.vip, c.vport, payload, true),
        Forward::Tun => {
            let inner =
                gw.ip_packet(client.0, c.vip, 17, &udp_datagram(client, (c.vip, c.vport), payload, true));
            FrameBuilder::new(GW_MAC[1], GEN_MAC[1]).ident(0x77).ip(GW[1], rs.0, 4, &inner)
        }
        Forward::FullNat => unreachable!("the loop tests above cover FULLNAT"),
    }
}

fn deliver(e: &mut UdpFlows, side: Side, bytes: &[u8]) -> Counters {
    let before = e.counters().clone();
    let mut pool = VecPool::default();
    let mut tx = Tx::with_capacity(4);
    e.receive(side, VecFrame::from_bytes(bytes), 20, &mut pool, &mut tx);
    e.counters().since(&before)
}

#[test]
fn forward_modes_parse_and_know_their_directions() {
    for f in Forward::ALL {
        assert_eq!(Forward::parse(f.name()), Ok(f));
    }
    assert!(Forward::parse("masq").is_err());
    assert_eq!(Forward::ALL.map(Forward::both_ways), [true, true, false, false]);
    // DR and TUN cannot change the port; only FULLNAT needs local addresses.
    let mut c = mode_conf(Forward::Dr, 10, 60, Mode::Check);
    assert!(c.validate().is_ok());
    c.reals[1].1 = 8000;
    assert!(c.validate().unwrap_err().contains("cannot change the port"), "{:?}", c.validate());
    assert!(mode_conf(Forward::Nat, 10, 60, Mode::Check).validate().is_ok());
    let mut c = mode_conf(Forward::FullNat, 10, 60, Mode::Check);
    c.lips.clear();
    assert!(c.validate().is_err());
    // TUN's outer header must fit the MTU too.
    assert!(mode_conf(Forward::Tun, 10, 1494, Mode::Check).validate().is_ok());
    assert!(mode_conf(Forward::Tun, 10, 1495, Mode::Check).validate().unwrap_err().contains("tun adds"));
}

/// NAT: the real server receives `client:cport -> RS:rport`, answers `RS:rport -> client:cport`
/// to the gateway, and the client receives `VIP:vport -> client:cport`.
#[test]
fn nat_learns_the_real_server_answers_the_client_and_checks_both_directions() {
    for frame_len in [60, 508] {
        let c = mode_conf(Forward::Nat, 6, frame_len, Mode::Check);
        let mut e = UdpFlows::new(c.clone()).unwrap();
        let mut pool = VecPool::default();
        let mut tx = Tx::with_capacity(8);
        for k in 0..6 {
            let (flow, pay) = next_client(&mut e, &mut pool);
            let rs = c.reals[k % 3];
            let d = deliver_tx(&mut e, Side::Server, &to_real(Forward::Nat, &c, flow, rs, &pay), &mut tx);
            assert_eq!((d.rx_ok, d.total_errors()), ([0, 1], 0), "flow {flow}: {d:?}");
            // The warm-up answer: from the real server to the client, to the gateway's MAC.
            let reply = tx.side[1].pop().expect("the real server answers in the warm-up");
            let want = FrameBuilder::new(GEN_MAC[1], GW_MAC[1]).ident(0).udp(
                rs.0,
                rs.1,
                c.client(flow),
                c.cport(flow),
                &reply.data()[42..],
                true,
            );
            assert_eq!(reply.data(), &want[..], "flow {flow}: the reply");
            // The gateway's rewrite of it for the client.
            let out = FrameBuilder::new(GW_MAC[0], GEN_MAC[0]).ident(0).ttl(TTL - 1).udp(
                c.vip,
                c.vport,
                c.client(flow),
                c.cport(flow),
                &reply.data()[42..],
                true,
            );
            let d = deliver(&mut e, Side::Client, &out);
            assert_eq!((d.rx_ok, d.total_errors()), ([1, 0], 0), "flow {flow}: {d:?}");
        }
        assert!(e.warmed_up());
        assert!(e.server_tuples_unique());
        assert_eq!(e.flows_per_real().iter().map(|r| r.1).collect::<Vec<_>>(), [2, 2, 2]);
        // Steady state: the server side sends for every flow too.
        assert_eq!(e.generate(Side::Server, 30, 6, &mut pool, &mut tx), 6);
    }
}

fn deliver_tx(e: &mut UdpFlows, side: Side, bytes: &[u8], tx: &mut Tx<VecFrame>) -> Counters {
    let before = e.counters().clone();
    let mut pool = VecPool::default();
    e.receive(side, VecFrame::from_bytes(bytes), 20, &mut pool, tx);
    e.counters().since(&before)
}

/// DR and TUN: every flow's datagram reaches a real server (by MAC, or inside the tunnel), nothing
/// is answered, the server side sends nothing, and anything on the client side is an error.
#[test]
fn dr_and_tun_deliver_one_way_and_keep_each_flow_on_its_real_server() {
    for forward in [Forward::Dr, Forward::Tun] {
        for frame_len in [60, if forward == Forward::Tun { 1494 } else { 1514 }] {
            let c = mode_conf(forward, 9, frame_len, Mode::Check);
            let mut e = UdpFlows::new(c.clone()).unwrap();
            let mut pool = VecPool::default();
            let mut tx = Tx::with_capacity(8);
            assert_eq!(e.sending_sides(), 1);
            assert_eq!(
                e.generate(Side::Server, 5, 8, &mut pool, &mut tx),
                0,
                "{forward:?}: the servers never send"
            );
            let mut pays = Vec::new();
            for k in 0..9 {
                let (flow, pay) = next_client(&mut e, &mut pool);
                let rs = c.reals[k % 3];
                let f = to_real(forward, &c, flow, rs, &pay);
                if forward == Forward::Tun {
                    assert_eq!(f.len(), frame_len + 20);
                }
                let d = deliver_tx(&mut e, Side::Server, &f, &mut tx);
                assert_eq!((d.rx_ok, d.total_errors()), ([0, 1], 0), "{forward:?} flow {flow}: {d:?}");
                assert!(tx.side[1].is_empty(), "{forward:?}: no answer");
                pays.push((flow, rs, pay));
            }
            assert!(e.warmed_up());
            assert_eq!(e.flows_per_real().iter().map(|r| r.1).collect::<Vec<_>>(), [3, 3, 3]);
            // Steady state: the same real server again passes, another one does not.
            let (flow, rs, pay) = &pays[4];
            let d = deliver(&mut e, Side::Server, &to_real(forward, &c, *flow, *rs, pay));
            assert_eq!((d.rx_ok, d.total_errors()), ([0, 1], 0), "{forward:?}: {d:?}");
            let other = c.reals[(4 + 1) % 3];
            let d = deliver(&mut e, Side::Server, &to_real(forward, &c, *flow, other, pay));
            let want = if forward == Forward::Dr { RewriteError::Mac } else { RewriteError::Address };
            assert_eq!(
                (d.rx_ok, d.errors[want as usize], d.total_errors()),
                ([0, 0], 1, 1),
                "{forward:?}: moved flow: {d:?}"
            );
            // A frame toward the client (as NAT would send) is not expected at all.
            let back = FrameBuilder::new(GW_MAC[0], GEN_MAC[0]).ident(0).ttl(TTL - 1).udp(
                c.vip,
                c.vport,
                c.client(*flow),
                c.cport(*flow),
                &pay[..],
                true,
            );
            let d = deliver(&mut e, Side::Client, &back);
            assert_eq!(
                (d.rx_ok, d.errors[RewriteError::UnknownFlow as usize]),
                ([0, 0], 1),
                "{forward:?}: {d:?}"
            );
        }
    }
}

/// A corruption of a learned flow's frame as the gateway delivers it, and what it must count as.
type ModeCase = (&'static str, Forward, Side, RewriteError, fn(&mut Vec<u8>));

/// Recomputes the checksums of the IPv4/UDP packet at `o` (TUN: the inner one at 34).
fn refill_at(d: &mut [u8], o: usize) {
    d[o + 10..o + 12].fill(0);
    let ip = checksum::internet_checksum(&d[o..o + 20]);
    d[o + 10..o + 12].copy_from_slice(&ip.to_be_bytes());
    let len = be16(d, o + 24);
    d[o + 26..o + 28].fill(0);
    let src = Ipv4Addr::new(d[o + 12], d[o + 13], d[o + 14], d[o + 15]);
    let dst = Ipv4Addr::new(d[o + 16], d[o + 17], d[o + 18], d[o + 19]);
    let ph = checksum::ipv4_pseudo_header(src, dst, 17, len);
    let c =
        checksum::udp_nonzero(!checksum::fold(checksum::accumulate(ph, &d[o + 20..o + 20 + len as usize])));
    d[o + 26..o + 28].copy_from_slice(&c.to_be_bytes());
}

/// The outer header's checksum (TUN).
fn refill_outer(d: &mut [u8]) {
    d[24..26].fill(0);
    let ip = checksum::internet_checksum(&d[14..34]);
    d[24..26].copy_from_slice(&ip.to_be_bytes());
}

#[test]
fn corrupted_nat_dr_and_tun_frames_are_counted_as_errors_not_throughput() {
    use Forward::{Dr, Nat, Tun};
    use RewriteError as E;
    let cases: [ModeCase; 25] = [
        ("NAT: source rewritten", Nat, Side::Server, E::Address, |d| {
            d[29] = 100;
            refill_at(d, 14);
        }),
        ("NAT: source port rewritten", Nat, Side::Server, E::Port, |d| {
            d[35] ^= 1;
            refill_at(d, 14);
        }),
        ("NAT: destination still the VIP", Nat, Side::Server, E::Address, |d| {
            d[33] = 100;
            refill_at(d, 14);
        }),
        ("NAT: destination port not rewritten", Nat, Side::Server, E::Port, |d| {
            d[36..38].copy_from_slice(&9000u16.to_be_bytes());
            refill_at(d, 14);
        }),
        ("NAT: TTL not decremented", Nat, Side::Server, E::Malformed, |d| {
            d[22] += 1;
            refill_at(d, 14);
        }),
        ("NAT: UDP checksum not updated", Nat, Side::Server, E::L4Checksum, |d| d[37] ^= 2),
        ("NAT: reply source not the VIP", Nat, Side::Client, E::Address, |d| {
            d[29] = 11;
            refill_at(d, 14);
        }),
        ("NAT: reply source port not the VIP's", Nat, Side::Client, E::Port, |d| {
            d[34..36].copy_from_slice(&8000u16.to_be_bytes());
            refill_at(d, 14);
        }),
        ("NAT: reply to the wrong MAC", Nat, Side::Client, E::Mac, |d| d[0] ^= 2),
        ("DR: to the generator's port MAC, not the real server's", Dr, Side::Server, E::Mac, |d| {
            d[0..6].copy_from_slice(&GEN_MAC[1].0)
        }),
        ("DR: to another real server's MAC", Dr, Side::Server, E::Mac, |d| d[5] ^= 3),
        ("DR: source MAC not the gateway's", Dr, Side::Server, E::Mac, |d| d[11] ^= 1),
        ("DR: destination rewritten to the real server", Dr, Side::Server, E::Address, |d| {
            d[33] = 11;
            refill_at(d, 14);
        }),
        ("DR: port changed", Dr, Side::Server, E::Port, |d| {
            d[37] ^= 1;
            refill_at(d, 14);
        }),
        ("DR: TTL not decremented", Dr, Side::Server, E::Malformed, |d| {
            d[22] += 1;
            refill_at(d, 14);
        }),
        ("DR: IPv4 checksum not updated", Dr, Side::Server, E::IpChecksum, |d| d[22] += 1),
        ("TUN: not IPv4-in-IPv4", Tun, Side::Server, E::Malformed, |d| {
            d[23] = 17;
            refill_outer(d);
        }),
        ("TUN: outer source not the gateway", Tun, Side::Server, E::Address, |d| {
            d[29] = 2;
            refill_outer(d);
        }),
        ("TUN: outer destination another real server", Tun, Side::Server, E::Address, |d| {
            d[33] ^= 3;
            refill_outer(d);
        }),
        ("TUN: outer length not inner + 20", Tun, Side::Server, E::Malformed, |d| {
            d[17] -= 20;
            refill_outer(d);
        }),
        ("TUN: outer checksum broken", Tun, Side::Server, E::IpChecksum, |d| d[25] ^= 1),
        ("TUN: outer TTL 0", Tun, Side::Server, E::Malformed, |d| {
            d[22] = 0;
            refill_outer(d);
        }),
        ("TUN: inner TTL not decremented", Tun, Side::Server, E::Malformed, |d| {
            d[42] += 1;
            refill_at(d, 34);
        }),
        ("TUN: inner checksum not updated", Tun, Side::Server, E::IpChecksum, |d| d[42] += 1),
        ("TUN: inner payload altered", Tun, Side::Server, E::Payload, |d| {
            let n = d.len() - 1;
            d[n] ^= 0xff;
            refill_at(d, 34);
        }),
    ];
    for (name, forward, side, want, corrupt) in cases {
        let c = mode_conf(forward, 4, 128, Mode::Check);
        let mut e = UdpFlows::new(c.clone()).unwrap();
        let mut pool = VecPool::default();
        let mut tx = Tx::with_capacity(8);
        // Flow 0 is learned first (to real server 0), so a corruption of a learned flow's frame is
        // what is checked; then the same datagram again, altered.
        let (flow, pay) = next_client(&mut e, &mut pool);
        let good = to_real(forward, &c, flow, c.reals[0], &pay);
        assert_eq!(deliver_tx(&mut e, Side::Server, &good, &mut tx).rx_ok, [0, 1], "{name}: learning");
        let mut bytes = match side {
            Side::Server => good,
            Side::Client => FrameBuilder::new(GW_MAC[0], GEN_MAC[0]).ident(0).ttl(TTL - 1).udp(
                c.vip,
                c.vport,
                c.client(flow),
                c.cport(flow),
                &tx.side[1].pop().expect("NAT answers").data()[42..],
                true,
            ),
        };
        assert_eq!(deliver(&mut e, side, &bytes).rx_ok.iter().sum::<u64>(), 1, "{name}: unaltered");
        corrupt(&mut bytes);
        let d = deliver(&mut e, side, &bytes);
        assert_eq!(d.rx_ok, [0, 0], "{name}: counted as throughput");
        assert_eq!(
            (d.errors[want as usize], d.total_errors()),
            (1, 1),
            "{name}: expected {want:?}, got {d:?}"
        );
    }
}

/// During the warm-up a NAT, DR or TUN frame that the mode cannot produce is not learned.
#[test]
fn a_wrong_first_frame_is_not_learned_in_any_mode() {
    use RewriteError as E;
    for (forward, want, corrupt) in [
        (
            Forward::Nat,
            E::Address,
            (|d| {
                d[33] = 99; // not a real server
                refill_at(d, 14);
            }) as fn(&mut Vec<u8>),
        ),
        (Forward::Dr, E::Mac, |d| d[5] = 99),
        (Forward::Tun, E::Address, |d| {
            d[33] = 99;
            refill_outer(d);
        }),
    ] {
        let c = mode_conf(forward, 2, 60, Mode::Check);
        let mut e = UdpFlows::new(c.clone()).unwrap();
        let mut pool = VecPool::default();
        let (flow, pay) = next_client(&mut e, &mut pool);
        let mut f = to_real(forward, &c, flow, c.reals[1], &pay);
        corrupt(&mut f);
        let d = deliver(&mut e, Side::Server, &f);
        assert_eq!((d.errors[want as usize], d.total_errors(), e.learned()), (1, 1, 0), "{forward:?}: {d:?}");
    }
}

/// The reference for DR and TUN: client to server only, frames back unrewritten; the generator
/// reads as many bytes per frame of the reference as of DR's and NAT's (TUN's: the outer header
/// more).
#[test]
fn one_way_reference_and_the_checking_work_per_frame() {
    let mut per_frame = Vec::new();
    for forward in [Forward::Nat, Forward::Dr, Forward::Tun] {
        let c = mode_conf(forward, 16, 124, Mode::Check);
        let mut e = UdpFlows::new(c.clone()).unwrap();
        let mut pool = VecPool::default();
        for k in 0..16 {
            let (flow, pay) = next_client(&mut e, &mut pool);
            deliver(&mut e, Side::Server, &to_real(forward, &c, flow, c.reals[k % 3], &pay));
        }
        let k = e.counters();
        assert_eq!((k.rx_ok, k.total_errors()), ([0, 16], 0), "{forward:?}");
        per_frame.push(k.checked_bytes / 16);
    }
    let mut r = UdpFlows::new(mode_conf(Forward::Dr, 16, 124, Mode::Reference)).unwrap();
    assert!(r.warmed_up());
    let mut pool = VecPool::default();
    let mut tx = Tx::with_capacity(32);
    assert_eq!(r.generate(Side::Server, 10, 16, &mut pool, &mut tx), 0);
    assert_eq!(r.generate(Side::Client, 10, 16, &mut pool, &mut tx), 16);
    reflect(&mut r, &mut tx, &mut pool, true, 20);
    let k = r.counters();
    assert_eq!((k.rx_ok, k.total_errors()), ([0, 16], 0), "{k:?}");
    let reference = k.checked_bytes / 16;
    assert_eq!(per_frame[..2], [reference, reference], "NAT and DR frames are checked as the reference's");
    // TUN: the outer header (20 bytes, length, protocol, TTL) and its addresses on top.
    assert_eq!(per_frame[2], reference + 33, "TUN: the outer header is checked too: {per_frame:?}");
}

/// NAT, DR and TUN through the real worker (rvsd's packet path), every frame checked: the warm-up
/// learns each flow's real server, then steady traffic (both ways for NAT, client to server for DR
/// and TUN) passes with no error and no drop. Every rewrite the generator checks is the
/// dataplane's own here, not a hand-built expectation.
#[test]
fn nat_dr_and_tun_through_the_worker_every_frame_checked() {
    for forward in [Forward::Nat, Forward::Dr, Forward::Tun] {
        // The largest frame whose packet fits the MTU (TUN: with its outer header).
        let largest = if forward == Forward::Tun { 1494 } else { 1514 };
        for frame_len in [60, largest] {
            let mut l = Loop::for_mode(forward);
            let macs = l.learn_gateway();
            let flows = 300;
            let mut c = mode_conf(forward, flows, frame_len, Mode::Check);
            c.macs = macs;
            let mut e = UdpFlows::new(c).unwrap();
            l.warm_up(&mut e);
            let k = e.counters().clone();
            assert_eq!(k.total_errors(), 0, "{forward:?} {frame_len}: {k:?}");
            assert_eq!(k.rx_ok[Side::Server as usize], flows as u64);
            assert!(e.server_tuples_unique());
            let spread: Vec<u32> = e.flows_per_real().iter().map(|r| r.1).collect();
            assert_eq!(spread, [100, 100, 100], "{forward:?}: rr over three real servers");
            let drops = l.stats.total_drops();
            let mut tx = Tx::with_capacity(1024);
            for _ in 0..5 {
                l.tsc += 1_000;
                assert_eq!(e.generate(Side::Client, l.tsc, 200, &mut l.pool, &mut tx), 200);
                let s = e.generate(Side::Server, l.tsc, 150, &mut l.pool, &mut tx);
                assert_eq!(s, if forward == Forward::Nat { 150 } else { 0 }, "{forward:?}");
                l.settle(&mut e, &mut tx, &mut |_, _| {});
            }
            let d = e.counters().since(&k);
            let back = if forward == Forward::Nat { 750 } else { 0 };
            assert_eq!(d.rx_ok, [back, 1000], "{forward:?} {frame_len}: {d:?}");
            let len = frame_len as u64 + if forward == Forward::Tun { 20 } else { 0 };
            assert_eq!(d.rx_bytes[Side::Server as usize], 1000 * len);
            assert_eq!(d.total_errors(), 0, "{forward:?} {frame_len}: {d:?}");
            assert_eq!(l.stats.total_drops(), drops, "{forward:?}: {:?}", l.stats.nonzero());
        }
    }
}

/// A wrong rewrite by the worker's output, per mode, is caught (the corruption sits between the
/// worker and the engine, as in the FULLNAT test above).
#[test]
fn corrupted_worker_output_in_each_mode_is_an_error() {
    use RewriteError as E;
    let cases: [ModeCase; 4] = [
        ("NAT: wrong real-server port", Forward::Nat, Side::Server, E::Port, |d| {
            d[37] ^= 1;
            refill_at(d, 14);
        }),
        ("NAT: reply not from the VIP", Forward::Nat, Side::Client, E::Address, |d| {
            d[29] ^= 1;
            refill_at(d, 14);
        }),
        ("DR: another real server's MAC", Forward::Dr, Side::Server, E::Mac, |d| d[5] ^= 3),
        ("TUN: another real server", Forward::Tun, Side::Server, E::Address, |d| {
            d[33] ^= 3;
            refill_outer(d);
        }),
    ];
    for (name, forward, deliver_side, want, corrupt) in cases {
        let mut l = Loop::for_mode(forward);
        let macs = l.learn_gateway();
        let mut c = mode_conf(forward, 32, 128, Mode::Check);
        c.macs = macs;
        let mut e = UdpFlows::new(c).unwrap();
        l.warm_up(&mut e);
        let before = e.counters().clone();
        let send_side = if deliver_side == Side::Server { Side::Client } else { Side::Server };
        l.one(&mut e, send_side, &mut |side, d| {
            if side == deliver_side {
                corrupt(d)
            }
        });
        let d = e.counters().since(&before);
        assert_eq!(d.rx_ok, [0, 0], "{name}: counted as throughput");
        assert_eq!(
            (d.errors[want as usize], d.total_errors()),
            (1, 1),
            "{name}: expected {want:?}, got {d:?}"
        );
    }
}
