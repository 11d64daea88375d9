//! Sync volume: how many new connections per second a connection-sync backup keeps up with
//! (docs/ha.md, "Connection sync").
//!
//! - `inproc`: encode (IPVS v1 messages, `MessageBuf`) -> decode -> map -> install into a real
//!   dataplane `Worker`, one thread, no I/O: the codec's and the install's cost per connection.
//! - `wire`: a sender thread packs the same messages and sends them over UDP on loopback at a
//!   fixed rate; the receiver thread decodes and installs into a `Worker` (the daemon adds one
//!   channel hop to the worker). Rates go up until the receiver misses a connection; the highest
//!   rate with nothing lost is the figure.
//!
//! Usage: `sync_volume [CONNS] [RUNS]` (defaults 200000 and 5); prints the median of the runs.
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_control::sync::record::{from_entry, to_entry};
use rvs_control::sync::wire::{decode, max_message_len, Message, MessageBuf};
use rvs_dataplane::conn::sync::{SyncConn, SyncOp};
use rvs_dataplane::conn::TcpState;
use rvs_dataplane::flow::{FlowKey, Proto};
use rvs_dataplane::frame::VecPool;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::wire::EthernetAddress;
use rvs_dataplane::worker::{ConnSetup, PortSetup, RealSetup, ServiceSetup, Setup, Worker};
use rvs_dataplane::xmit::Xlat;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);

fn setup(conns: usize) -> Setup {
    let port = |name: &str, last: u8, addr| PortSetup {
        name: name.into(),
        mac: EthernetAddress([2, 0, 0, 0, last, 1]),
        addr,
        prefix_len: 24,
        addr6: None,
        prefix6_len: 0,
        mtu: 1500,
        kernel: None,
    };
    let reals = (1..=3)
        .map(|i| RealSetup {
            id: i,
            addr: Ipv4Addr::new(198, 18, 1, 10 + i as u8).into(),
            port: 80,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            xlat: Xlat::FullNat,
        })
        .collect();
    Setup {
        ports: vec![
            port("client", 0, Ipv4Addr::new(198, 18, 0, 1)),
            port("server", 1, Ipv4Addr::new(198, 18, 1, 1)),
        ],
        routes: vec![],
        services: vec![ServiceSetup {
            id: 80,
            proto: Proto::Tcp,
            vip: VIP.into(),
            vport: 80,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: false,
            proxy_protocol: None,
            laddrs: vec![LIP.into()],
            reals,
        }],
        conn: ConnSetup { max_per_worker: (conns + 1024) as u32, ..ConnSetup::default() },
        workers: 1,
        exception: Default::default(),
    }
}

/// Connection `i`: a distinct client tuple and local port, established, as a master sends it.
fn op(i: usize) -> SyncOp {
    SyncOp::Conn(SyncConn {
        client: FlowKey {
            proto: Proto::Tcp,
            src: Ipv4Addr::from(0xC612_0000 | (i as u32 >> 14)),
            dst: VIP,
            sport: 1024 + (i as u16 & 0x3fff),
            dport: 80,
        },
        // Distinct reply tuples: 3 reals x 64000 ports per local address.
        lip: Ipv4Addr::from(u32::from(LIP) + (i / 192_000) as u32),
        lport: 1025 + ((i / 3) % 64_000) as u16,
        rs: Ipv4Addr::new(198, 18, 1, 11 + (i % 3) as u8),
        rport: 80,
        xlat: Xlat::FullNat,
        state: TcpState::Established,
        timeout_ms: 900_000,
        synproxy: None,
        pp: None,
        toa_done: false,
    })
}

fn worker(conns: usize) -> Worker<VecPool> {
    Worker::new(&setup(conns), 0, VecPool::default(), Arc::new(Stats::default()))
}

/// Installs every entry of one datagram; returns how many were created.
fn install(w: &mut Worker<VecPool>, d: &[u8], now: u64) -> usize {
    let Ok(Message::Conns(_, es)) = decode(d) else { return 0 };
    let mut n = 0;
    for e in es.flatten() {
        if let Ok(op) = from_entry(&e) {
            n += w.sync_install(&op, now).is_ok() as usize;
        }
    }
    n
}

/// Encode -> decode -> install, in one thread. Returns connections per second.
fn inproc(conns: usize) -> f64 {
    let ops: Vec<SyncOp> = (0..conns).map(op).collect();
    let mut w = worker(conns);
    let mut m = MessageBuf::new(1, max_message_len(1500));
    let t0 = Instant::now();
    let mut installed = 0;
    for o in &ops {
        let e = to_entry(o);
        if m.push(&e).is_err() {
            installed += install(&mut w, m.bytes(), 1000);
            m.clear();
            m.push(&e).expect("fits an empty message");
        }
    }
    installed += install(&mut w, m.bytes(), 1000);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(installed, conns, "every connection installed");
    assert_eq!(w.conns().len(), conns);
    conns as f64 / secs
}

/// `conns` connections over UDP loopback at `rate` per second. Returns (installed, seconds the
/// receiver took from the first datagram to the last install).
fn wire(conns: usize, rate: f64) -> (usize, f64) {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    rx.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let dest = rx.local_addr().expect("addr");
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        // Built before the sender starts: its table is allocated up front, as in the daemon.
        let mut w = worker(conns);
        let _ = ready_tx.send(());
        let mut buf = vec![0u8; 65_536];
        let (mut n, mut first) = (0usize, None);
        while n < conns {
            let Ok(len) = rx.recv(&mut buf) else { break };
            first.get_or_insert_with(Instant::now);
            n += install(&mut w, &buf[..len], 1000);
        }
        (n, first.map_or(0.0, |t| t.elapsed().as_secs_f64()))
    });
    ready.recv().expect("receiver ready");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut m = MessageBuf::new(1, max_message_len(1500));
    let t0 = Instant::now();
    let mut queued = 0usize;
    let send = |m: &mut MessageBuf, queued: usize| {
        // Pace: the i-th connection leaves no earlier than i / rate after the start.
        let due = Duration::from_secs_f64(queued as f64 / rate);
        // Sleep rather than spin: on a small machine the receiver needs the CPU.
        while let Some(left) = due.checked_sub(t0.elapsed()).filter(|d| !d.is_zero()) {
            std::thread::sleep(left);
        }
        let _ = tx.send_to(m.bytes(), dest);
        m.clear();
    };
    for i in 0..conns {
        let e = to_entry(&op(i));
        if m.push(&e).is_err() {
            send(&mut m, queued);
            m.push(&e).expect("fits an empty message");
        }
        queued += 1;
    }
    send(&mut m, queued);
    receiver.join().expect("receiver")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let conns: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let ip: Vec<f64> = (0..runs).map(|_| inproc(conns)).collect();
    println!(
        "sync_volume inproc conns={conns} runs={runs} median_conns_per_sec={:.0} (min {:.0}, max {:.0})",
        median(ip.clone()),
        ip.iter().cloned().fold(f64::MAX, f64::min),
        ip.iter().cloned().fold(0.0, f64::max)
    );
    // Each rate runs 2 s of connections (at most CONNS); a rate passes when the median run lost
    // nothing (a loaded machine can starve the receiver thread in a single run: the worst run's
    // loss is printed too).
    let mut best = 0.0;
    for rate in [10e3, 25e3, 50e3, 100e3, 200e3, 400e3, 800e3, 1.6e6] {
        let n = conns.min((rate * 2.0) as usize);
        let r: Vec<(usize, f64)> = (0..runs).map(|_| wire(n, rate)).collect();
        let mut lost: Vec<usize> = r.iter().map(|(got, _)| n - got).collect();
        lost.sort_unstable();
        let achieved = median(r.iter().map(|(got, s)| *got as f64 / s.max(1e-9)).collect());
        println!(
            "sync_volume wire conns={n} runs={runs} offered_per_sec={rate:.0} installed_median_per_sec={achieved:.0} lost_median={} lost_worst={}",
            lost[lost.len() / 2],
            lost[lost.len() - 1]
        );
        if lost[lost.len() / 2] > 0 {
            break;
        }
        best = rate;
    }
    println!("sync_volume wire highest_rate_median_run_lossless_per_sec={best:.0}");
}
