//! SYN-cookie SYN-ACKs per second on one core, through the worker's real packet path
//! (`Worker::process`: Ethernet/IPv4/TCP checks, service lookup, cookie, SYN-ACK built in the same
//! buffer). Frames are recycled from the outbox, so the loop measures packet work, not allocation.
//!
//! `cargo run --release -p rvs-bench --bin synproxy_bench [SYNS_PER_RUN] [RUNS]`
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use rvs_dataplane::flow::Proto;
use rvs_dataplane::frame::{Frame, VecFrame, VecPool};
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::stats::{Event, Stats};
use rvs_dataplane::wire::{build, ipv4, EthernetAddress, EthernetFrame, TcpFlags, TcpOptionList, TcpRepr};
use rvs_dataplane::worker::{ConnSetup, Outbox, PortSetup, RealSetup, ServiceSetup, Setup, Worker};

const GW_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn setup() -> Setup {
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
        ports: vec![
            port(GW_MAC, Ipv4Addr::new(198, 18, 0, 1)),
            port(EthernetAddress([2, 0, 0, 0, 1, 1]), Ipv4Addr::new(198, 18, 1, 1)),
        ],
        routes: vec![],
        services: vec![ServiceSetup {
            id: 1,
            proto: Proto::Tcp,
            vip: VIP.into(),
            vport: 80,
            sched: SchedKind::Rr,
            persistence_ms: None,
            toa: false,
            synproxy: true,
            proxy_protocol: None,
            laddrs: vec![Ipv4Addr::new(198, 18, 1, 100).into()],
            reals: vec![RealSetup {
                id: 2,
                addr: Ipv4Addr::new(198, 18, 1, 11).into(),
                port: 80,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                xlat: rvs_dataplane::xmit::Xlat::FullNat,
            }],
        }],
        conn: ConnSetup { max_per_worker: 1024, ..ConnSetup::default() },
        workers: 1,
    }
}

/// A Linux-like SYN (MSS, SACK-permitted, timestamps, window scale) from `src:sport` to the VIP,
/// built as the gateway builds its own segments (`wire::build::tcp_segment`).
fn write_syn(buf: &mut [u8], src: Ipv4Addr, sport: u16) -> usize {
    let tcp = TcpRepr {
        window: 64_240,
        options: TcpOptionList::linux_syn(Some(1460), true, Some((0x0001_0000, 0)), Some(7)),
        ..TcpRepr::bare(sport, 80, u32::from(sport).wrapping_mul(2_654_435_761), 0, TcpFlags::SYN)
    };
    let ip = ipv4::Repr {
        src,
        dst: VIP,
        protocol: ipv4::PROTO_TCP,
        payload_len: 0, // set from `tcp`
        ttl: 64,
        ident: 0,
        dont_frag: true,
    };
    let n = build::tcp_segment(buf, &ip, &tcp).expect("room for the SYN");
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..n]);
    eth.set_dst_addr(GW_MAC);
    eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 9, 9]));
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let s = setup();
    let stats = Arc::new(Stats::default());
    let mut w = Worker::new(&s, 0, VecPool::default(), stats.clone());
    let burst = 32;
    let mut out: Outbox<VecFrame> = Outbox::new(2, w.outbox_capacity(burst));
    let mut frames: Vec<VecFrame> = (0..burst).map(|_| VecFrame::from_bytes(&[0u8; 74])).collect();
    let mut rates = Vec::new();
    for run in 0..runs {
        let t0 = Instant::now();
        let mut i = 0usize;
        while i < n {
            for f in frames.iter_mut() {
                let src =
                    Ipv4Addr::from(0xc612_0000u32 | ((i as u32 / 250) % 250 + 2) << 8 | (i as u32 % 250 + 2));
                let len = f.len();
                if len < 74 {
                    f.append(74 - len);
                } else {
                    f.trim(len - 74);
                }
                write_syn(f.data_mut(), src, 1024 + (i % 60_000) as u16);
                i += 1;
            }
            for f in frames.drain(..) {
                w.process(f, 0, 1_000, &mut out);
            }
            frames.append(out.port(0));
            if frames.len() != burst {
                let drops: Vec<String> =
                    stats.nonzero().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!("synproxy_bench: a SYN was not answered: {}", drops.join(" "));
                std::process::exit(1);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let rate = n as f64 / secs;
        eprintln!("run {}: {:.2} M SYN-ACKs/s", run + 1, rate / 1e6);
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let answered = stats.events(Event::SynproxySynAcks);
    assert_eq!(answered as usize, n * runs, "every SYN answered with a cookie SYN-ACK");
    println!(
        "synproxy_bench: SYN-cookie SYN-ACKs per second on one core: median {:.2} M/s over {runs} runs of {n} (min {:.2}, max {:.2})",
        rates[rates.len() / 2] / 1e6,
        rates[0] / 1e6,
        rates[rates.len() - 1] / 1e6
    );
}
