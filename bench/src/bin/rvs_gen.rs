//! rvs-gen: the traffic generator that plays both the clients and the real servers around a
//! gateway, over two DPDK ports (memif to an rvsd in another process, or real NICs).
//!
//! One poll loop on one lcore: receive on every queue of both ports (ARP answered and learned
//! first, everything else checked by the engine), generate within a TSC-based rate budget, steer
//! each frame to a queue, transmit. Frames the TX ring refuses are kept and retried, never dropped,
//! so every frame an engine counted as sent is really sent (or reported as unsent at the end).
//!
//! Phases: learn the gateway's MAC on each side by ARP (check mode), warm-up (the engine creates
//! its connections), settle, measure (`--duration`), drain (no new frames; late arrivals counted).
//! A table goes to stdout and, with `--json`, the same as JSON.
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dpdk_sys::{eal, Eal, Mbuf, Mempool, PktPool, Port, PortConf, RxQueue, TxQueue};
use rvs_bench::gen::arp::{Arp, ArpOutcome};
use rvs_bench::gen::steer::{queue_for, Steer};
use rvs_bench::gen::udp::{Mode, UdpConf, UdpFlows};
use rvs_bench::gen::{Counters, Engine, Macs, RewriteError, Side, Tx};
use rvs_dataplane::wire::EthernetAddress;
use serde_json::json;

const SIDES: [Side; 2] = [Side::Client, Side::Server];

#[derive(Parser, Debug)]
#[command(name = "rvs-gen", about = "rvs traffic generator: plays clients and real servers around a gateway")]
struct Args {
    /// DPDK device facing the gateway's client port, e.g. net_memif0,role=client,socket=/tmp/x/c.sock
    /// or a PCI address.
    #[arg(long)]
    client_dev: String,
    /// DPDK device facing the gateway's server port.
    #[arg(long)]
    server_dev: String,
    /// The lcore the poll loop runs on (the EAL main lcore).
    #[arg(long, default_value_t = 0)]
    lcore: u32,
    /// EAL --file-prefix (default: rvs-gen-<pid>).
    #[arg(long)]
    file_prefix: Option<String>,
    /// Use hugepages (default: --no-huge with --mem-mb of anonymous memory).
    #[arg(long)]
    huge: bool,
    #[arg(long, default_value_t = 512)]
    mem_mb: u32,
    /// Queues per port; frames are spread by --steer.
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// Server-side steering with several queues: hash (plain RSS) or owner (the local port's worker).
    #[arg(long, default_value = "hash")]
    steer: Steer,
    /// Scenario engine: a (established UDP flows, also used for d and e).
    #[arg(long, default_value = "a")]
    scenario: String,
    /// check: a FULLNAT gateway, every rewrite checked; reference: a plain forwarder (testpmd).
    #[arg(long, default_value = "check")]
    mode: String,
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Frame size including the 4-byte FCS (64..=1518).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Total packets per second over both directions, or "max".
    #[arg(long, default_value = "max")]
    rate: String,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of steady traffic between the warm-up and the measurement.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    #[arg(long, default_value_t = 120.0)]
    warmup_timeout: f64,
    /// Client datagrams per second during the warm-up (connection creation).
    #[arg(long, default_value_t = 1_000_000)]
    warmup_rate: u64,
    #[arg(long, default_value_t = 32)]
    burst: usize,
    #[arg(long, default_value_t = 32767)]
    mbufs: u32,
    #[arg(long, default_value = "198.18.0.100:9000")]
    vip: SocketAddrV4,
    /// The generator's address on the client side (the gateway's route to the clients' /16).
    #[arg(long, default_value = "198.18.0.2")]
    client_addr: Ipv4Addr,
    /// The gateway's port addresses (ARPed for its MACs).
    #[arg(long, default_value = "198.18.0.1")]
    gw_client: Ipv4Addr,
    #[arg(long, default_value = "198.18.1.1")]
    gw_server: Ipv4Addr,
    /// Real servers played, comma-separated ADDR:PORT.
    #[arg(long, value_delimiter = ',', default_value = "198.18.1.11:8000")]
    reals: Vec<SocketAddrV4>,
    /// The gateway's local addresses, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "198.18.1.100")]
    lips: Vec<Ipv4Addr>,
    /// The clients' /16.
    #[arg(long, default_value = "198.19.0.0")]
    client_net: Ipv4Addr,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Free-form label stored in the JSON (what is in the gateway's place).
    #[arg(long, default_value = "")]
    label: String,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 1.0)]
    stats_interval: f64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-gen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn is_pci(dev: &str) -> bool {
    let name = dev.split(',').next().unwrap_or("");
    !name.starts_with("net_") && name.contains(':')
}

fn port_name(dev: &str) -> String {
    dev.split(',').next().unwrap_or("").trim().to_owned()
}

fn eal_args(a: &Args) -> Vec<String> {
    let prefix = a.file_prefix.clone().unwrap_or_else(|| format!("rvs-gen-{}", std::process::id()));
    let mut v: Vec<String> = vec![
        "rvs-gen".into(),
        "-l".into(),
        a.lcore.to_string(),
        format!("--file-prefix={prefix}"),
        "--no-telemetry".into(),
        "--log-level=4".into(),
    ];
    // --in-memory implies dynamic memory, which --no-huge (legacy memory) refuses; without
    // hugepages --no-shconf keeps the process from leaving runtime files instead.
    if a.huge {
        v.push("--in-memory".into());
    } else {
        v.extend(["--no-huge".into(), "--no-shconf".into(), "-m".into(), a.mem_mb.to_string()]);
    }
    let mut pci = false;
    for d in [&a.client_dev, &a.server_dev] {
        if is_pci(d) {
            pci = true;
            v.extend(["-a".into(), d.clone()]);
        } else {
            v.extend(["--vdev".into(), d.clone()]);
        }
    }
    if !pci {
        v.push("--no-pci".into());
    }
    v
}

/// Token bucket on the TSC.
struct Bucket {
    per_tick: f64,
    tokens: f64,
    cap: f64,
    last: u64,
}

impl Bucket {
    /// Up to a millisecond's worth of packets (at least two bursts) is kept, so a loop iteration
    /// delayed by the OS catches up instead of losing its share of the rate.
    fn new(pps: f64, hz: u64, burst: usize, now: u64) -> Bucket {
        let cap = (pps / 1000.0).max((2 * burst) as f64);
        Bucket { per_tick: pps / hz as f64, tokens: 0.0, cap, last: now }
    }

    fn available(&mut self, now: u64) -> usize {
        self.tokens = (self.tokens + (now - self.last) as f64 * self.per_tick).min(self.cap);
        self.last = now;
        self.tokens as usize
    }

    fn spend(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

/// The ports, their queues and everything between them and the engine.
struct Io {
    rx: [Vec<RxQueue>; 2],
    tx: [Vec<TxQueue>; 2],
    /// Frames waiting for room in each side's TX queues.
    pending: [Vec<Vec<Mbuf>>; 2],
    rxbuf: Vec<Mbuf>,
    out: Tx<Mbuf>,
    pool: PktPool,
    arp: Arp,
    steer: Steer,
    learned: [Option<EthernetAddress>; 2],
}

impl Io {
    /// Receives on every queue: ARP answered or learned here, the rest to `engine` (or dropped when
    /// there is none yet). Returns how many frames arrived.
    fn rx<E: Engine>(&mut self, mut engine: Option<&mut E>, now: u64) -> usize {
        let mut n = 0;
        for side in SIDES {
            let s = side as usize;
            for q in self.rx[s].iter_mut() {
                n += q.rx_burst(&mut self.rxbuf);
                for mut m in self.rxbuf.drain(..) {
                    if !m.is_contiguous() && m.linearize().is_err() {
                        continue;
                    }
                    m.reset_offloads();
                    match self.arp.handle(side, m) {
                        ArpOutcome::NotArp(m) => {
                            if let Some(e) = engine.as_deref_mut() {
                                e.receive(side, m, now, &mut self.pool, &mut self.out);
                            }
                        }
                        ArpOutcome::Reply(m) => self.out.push(side, m),
                        ArpOutcome::Learned(_, mac) => self.learned[s] = Some(mac),
                        ArpOutcome::Ignored => {}
                    }
                }
            }
        }
        n
    }

    /// Steers what the engine queued and transmits as much as the queues take.
    fn flush(&mut self) {
        for side in SIDES {
            let s = side as usize;
            let queues = self.tx[s].len() as u16;
            for m in self.out.side[s].drain(..) {
                let q = queue_for(side, m.data(), queues, self.steer);
                self.pending[s][q as usize].push(m);
            }
            for (q, p) in self.tx[s].iter_mut().zip(self.pending[s].iter_mut()) {
                if !p.is_empty() {
                    q.tx_burst(p);
                }
            }
        }
    }

    fn pending(&self, side: Side) -> usize {
        self.pending[side as usize].iter().map(Vec::len).sum()
    }
}

fn open_port(dev: &str, queues: u16, pool: &Mempool) -> Result<(Port, Vec<(RxQueue, TxQueue)>), String> {
    let name = port_name(dev);
    let mut port = Port::by_name(&name).map_err(|e| format!("device \"{dev}\" did not come up: {e}"))?;
    let conf = PortConf {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: 1024,
        tx_desc: 1024,
        mtu: None,
        promiscuous: true,
    };
    let qs = port.configure(&conf, pool).map_err(|e| format!("{dev}: {e}"))?;
    // A memif client cannot start while its server is not listening yet: retry for a while.
    let t0 = std::time::Instant::now();
    loop {
        match port.start() {
            Ok(()) => break,
            Err(e) if t0.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("{dev}: start failed for 10 s: {e}")),
        }
    }
    Ok((port, qs))
}

fn wait_link(ports: &[Port], secs: u64) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    loop {
        if ports.iter().all(|p| p.link().map(|l| l.up).unwrap_or(false)) {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let down: Vec<&str> =
                ports.iter().filter(|p| !p.link().map(|l| l.up).unwrap_or(false)).map(|p| p.name()).collect();
            return Err(format!(
                "link of {} not up after {secs} s (is the gateway running?)",
                down.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(a: Args) -> Result<(), String> {
    if a.queues == 0 {
        return Err("--queues: at least 1".into());
    }
    if !(64..=1518).contains(&a.size) {
        return Err(format!("--size {}: 64..=1518 bytes (with FCS)", a.size));
    }
    let mode = match a.mode.as_str() {
        "check" => Mode::Check,
        "reference" => Mode::Reference,
        o => return Err(format!("--mode {o}: check or reference")),
    };
    let rate: Option<f64> = match a.rate.as_str() {
        "max" => None,
        r => Some(r.parse::<f64>().map_err(|_| format!("--rate {r}: packets per second or max"))?),
    };
    if a.scenario != "a" {
        return Err(format!(
            "--scenario {}: only \"a\" (established UDP flows) is built in this binary",
            a.scenario
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let eal = Eal::init(&eal_args(&a)).map_err(|e| format!("EAL initialisation failed: {e}"))?;
    let hz = eal::tsc_hz();
    let mempool = Arc::new(
        Mempool::pktmbuf("gen_pkt", a.mbufs, 256, 2048 + 128, -1)
            .map_err(|e| format!("--mbufs {}: {e}", a.mbufs))?,
    );
    let (pc, qc) = open_port(&a.client_dev, a.queues, &mempool)?;
    let (ps, qs) = open_port(&a.server_dev, a.queues, &mempool)?;
    let mut ports = vec![pc, ps];
    if let Err(e) = wait_link(&ports, 10) {
        // Queue handles go first, or the ports cannot be stopped and closed.
        drop((qc, qs));
        return Err(e);
    }
    let own = [
        EthernetAddress(ports[0].mac().map_err(|e| e.to_string())?),
        EthernetAddress(ports[1].mac().map_err(|e| e.to_string())?),
    ];
    let split = |v: Vec<(RxQueue, TxQueue)>| -> (Vec<RxQueue>, Vec<TxQueue>) { v.into_iter().unzip() };
    let (rc, tc) = split(qc);
    let (rs, ts) = split(qs);
    let reals: Vec<(Ipv4Addr, u16)> = a.reals.iter().map(|r| (*r.ip(), r.port())).collect();
    let mut io = Io {
        rx: [rc, rs],
        tx: [tc, ts],
        pending: [(0..a.queues).map(|_| Vec::new()).collect(), (0..a.queues).map(|_| Vec::new()).collect()],
        rxbuf: Vec::with_capacity(a.burst),
        out: Tx::with_capacity(4 * a.burst),
        pool: PktPool(mempool.clone()),
        arp: Arp::new(own, vec![a.client_addr], reals.iter().map(|r| r.0).collect()),
        steer: a.steer,
        learned: [None, None],
    };
    let result = drive(&a, mode, rate, hz, own, reals, &mut io, &stop);
    // Tear down in order: queues, ports, pool, EAL.
    let unsent: usize = io.pending.iter().flatten().map(Vec::len).sum();
    drop(io);
    for p in &mut ports {
        let _ = p.stop();
    }
    drop(ports);
    drop(mempool);
    drop(eal);
    let mut r = result?;
    r["tx_unsent"] = json!(unsent);
    print_table(&r);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r).expect("json") + "\n")
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// ARPs for the gateway's port address on both sides until both answer.
fn learn_gateway(a: &Args, io: &mut Io, stop: &AtomicBool) -> Result<[EthernetAddress; 2], String> {
    let targets = [a.gw_client, a.gw_server];
    let t0 = std::time::Instant::now();
    let mut last_ask = None::<std::time::Instant>;
    while io.learned.iter().any(Option::is_none) {
        if stop.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "the gateway did not answer ARP for {} (client side: {}) and {} (server side: {}) in 10 s",
                targets[0],
                if io.learned[0].is_some() { "ok" } else { "no answer" },
                targets[1],
                if io.learned[1].is_some() { "ok" } else { "no answer" },
            ));
        }
        if last_ask.is_none_or(|t| t.elapsed() > Duration::from_millis(200)) {
            for side in SIDES {
                if io.learned[side as usize].is_none() {
                    if let Some(f) = io.arp.request(side, targets[side as usize], &mut io.pool) {
                        io.out.push(side, f);
                    }
                }
            }
            last_ask = Some(std::time::Instant::now());
        }
        io.rx::<UdpFlows>(None, eal::rdtsc());
        io.flush();
    }
    Ok([io.learned[0].expect("learned"), io.learned[1].expect("learned")])
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Warmup,
    Settle,
    Measure,
    Drain,
}

#[allow(clippy::too_many_arguments)]
fn drive(
    a: &Args,
    mode: Mode,
    rate: Option<f64>,
    hz: u64,
    own: [EthernetAddress; 2],
    reals: Vec<(Ipv4Addr, u16)>,
    io: &mut Io,
    stop: &AtomicBool,
) -> Result<serde_json::Value, String> {
    let gw = match mode {
        Mode::Check => learn_gateway(a, io, stop)?,
        // A plain forwarder answers no ARP and rewrites nothing; MACs are not checked.
        Mode::Reference => [EthernetAddress([2, 0, 0, 0, 0, 0xfe]), EthernetAddress([2, 0, 0, 0, 1, 0xfe])],
    };
    let conf = UdpConf {
        flows: a.flows,
        frame_len: a.size - 4,
        vip: *a.vip.ip(),
        vport: a.vip.port(),
        client_net: a.client_net,
        client_port: 10_000,
        reals,
        lips: a.lips.clone(),
        macs: Macs { own, gw },
        mode,
        resend_gap_tsc: hz / 20,
    };
    let mut e = UdpFlows::new(conf)?;
    let secs = |t: u64| t as f64 / hz as f64;
    let now0 = eal::rdtsc();
    let per_side = |r: f64| r / 2.0;
    let mut buckets = rate
        .map(|r| [Bucket::new(per_side(r), hz, a.burst, now0), Bucket::new(per_side(r), hz, a.burst, now0)]);
    let mut warm = Bucket::new(a.warmup_rate as f64, hz, a.burst, now0);
    let mut phase = Phase::Warmup;
    let mut phase_start = now0;
    let mut warmup_s = 0.0;
    let (mut c0, mut c1) = (Counters::default(), Counters::default());
    let (mut t0, mut t1) = (0u64, 0u64);
    let mut last_print = now0;
    let mut last_counters = Counters::default();
    let mut last_rx = now0;
    loop {
        let now = eal::rdtsc();
        if io.rx(Some(&mut e), now) > 0 {
            last_rx = now;
        }
        let elapsed = secs(now - phase_start);
        let interrupted = stop.load(Ordering::Relaxed);
        match phase {
            Phase::Warmup => {
                if e.warmed_up() {
                    warmup_s = elapsed;
                    phase = Phase::Settle;
                    phase_start = now;
                    if let Some(b) = buckets.as_mut() {
                        for b in b.iter_mut() {
                            b.last = now;
                        }
                    }
                } else if interrupted || elapsed > a.warmup_timeout {
                    return Err(format!(
                        "warm-up incomplete after {elapsed:.1} s: {} of {} flows reached a real server \
                         (errors: {}); look at the gateway's drop counters",
                        e.learned(),
                        a.flows,
                        error_summary(e.counters())
                    ));
                } else if io.pending(Side::Client) < a.burst {
                    let n = warm.available(now).min(a.burst);
                    let sent = e.generate(Side::Client, now, n, &mut io.pool, &mut io.out);
                    warm.spend(sent);
                }
            }
            Phase::Settle | Phase::Measure => {
                if phase == Phase::Settle && (elapsed >= a.settle || interrupted) {
                    phase = Phase::Measure;
                    phase_start = now;
                    c0 = e.counters().clone();
                    e.start_measuring();
                    t0 = now;
                } else if phase == Phase::Measure && (elapsed >= a.duration || interrupted) {
                    phase = Phase::Drain;
                    phase_start = now;
                    c1 = e.counters().clone();
                    t1 = now;
                }
                if phase != Phase::Drain {
                    for side in SIDES {
                        if io.pending(side) >= a.burst {
                            continue;
                        }
                        // Behind the rate (the loop was delayed), several bursts go at once.
                        let n = match buckets.as_mut() {
                            Some(b) => b[side as usize].available(now).min(8 * a.burst),
                            None => a.burst,
                        };
                        if n == 0 {
                            continue;
                        }
                        let sent = e.generate(side, now, n, &mut io.pool, &mut io.out);
                        if let Some(b) = buckets.as_mut() {
                            b[side as usize].spend(sent);
                        }
                    }
                }
            }
            Phase::Drain => {
                // Late arrivals still count; stop once the wire has been quiet for 20 ms (at most 1 s).
                if secs(now - last_rx) > 0.02 || elapsed > 1.0 {
                    break;
                }
            }
        }
        io.flush();
        if a.stats_interval > 0.0 && secs(now - last_print) >= a.stats_interval {
            let c = e.counters();
            let d = c.since(&last_counters);
            let dt = secs(now - last_print);
            eprintln!(
                "rvs-gen: {:>7} c->s tx {:6.3} rx {:6.3} Mpps | s->c tx {:6.3} rx {:6.3} Mpps | learned {} | errors {}",
                format!("{phase:?}").to_lowercase(),
                d.tx[0] as f64 / dt / 1e6,
                d.rx_ok[1] as f64 / dt / 1e6,
                d.tx[1] as f64 / dt / 1e6,
                d.rx_ok[0] as f64 / dt / 1e6,
                if mode == Mode::Check { e.learned().to_string() } else { "-".into() },
                c.total_errors()
            );
            last_counters = c.clone();
            last_print = now;
        }
    }
    let c2 = e.counters().clone();
    let w = c1.since(&c0);
    let with_late = c2.since(&c0);
    let dur = secs(t1 - t0);
    let lat = e.latency().expect("the UDP engine timestamps");
    let ns = |cyc: Option<u64>| cyc.map(|c| (c as f64 * 1e9 / hz as f64).round() as u64);
    let errors: serde_json::Map<String, serde_json::Value> =
        RewriteError::ALL.iter().map(|k| (k.name().to_owned(), json!(c2.errors[*k as usize]))).collect();
    let rx_total = w.rx_ok[0] + w.rx_ok[1];
    Ok(json!({
        "scenario": a.scenario,
        "mode": a.mode,
        "label": a.label,
        "flows": a.flows,
        "frame_size": a.size,
        "queues": a.queues,
        "steer": format!("{:?}", a.steer).to_lowercase(),
        "rate_target_pps": rate,
        "duration_s": dur,
        "warmup_s": warmup_s,
        "tx": {"client_to_server": w.tx[0], "server_to_client": w.tx[1]},
        "rx_ok": {"client_to_server": w.rx_ok[1], "server_to_client": w.rx_ok[0]},
        // Frames sent in the measured interval minus frames received for them (including late
        // arrivals); may be slightly negative by what was in flight when the interval began.
        "lost": {
            "client_to_server": w.tx[0] as i64 - with_late.rx_ok[1] as i64,
            "server_to_client": w.tx[1] as i64 - with_late.rx_ok[0] as i64,
        },
        "rewrite_errors": c2.total_errors(),
        "errors": errors,
        "tx_failed": c2.tx_failed,
        "mpps": rx_total as f64 / dur / 1e6,
        "mpps_client_to_server": w.rx_ok[1] as f64 / dur / 1e6,
        "mpps_server_to_client": w.rx_ok[0] as f64 / dur / 1e6,
        "gbps": (w.rx_bytes[0] + w.rx_bytes[1]) as f64 * 8.0 / dur / 1e9,
        "latency_ns": {
            "samples": lat.count(),
            "p50": ns(lat.quantile(0.5)),
            "p99": ns(lat.quantile(0.99)),
            "p999": ns(lat.quantile(0.999)),
            "max": ns(Some(lat.max())),
        },
        "server_tuples_unique": if mode == Mode::Check { json!(e.server_tuples_unique()) } else { json!(null) },
    }))
}

fn error_summary(c: &Counters) -> String {
    let v: Vec<String> = RewriteError::ALL
        .iter()
        .filter(|k| c.errors[**k as usize] > 0)
        .map(|k| format!("{}={}", k.name(), c.errors[*k as usize]))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

fn print_table(r: &serde_json::Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    println!(
        "rvs-gen {} [{}{}] flows {} size {} queues {}: {:.3} Mpps ({:.3} c->s, {:.3} s->c), {:.2} Gbit/s over {:.2} s",
        r["scenario"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        if r["label"].as_str().unwrap_or("").is_empty() { String::new() } else { format!(" {}", r["label"].as_str().unwrap_or("")) },
        r["flows"],
        r["frame_size"],
        r["queues"],
        f("mpps"),
        f("mpps_client_to_server"),
        f("mpps_server_to_client"),
        f("gbps"),
        f("duration_s"),
    );
    println!(
        "  sent c->s {} s->c {} | received ok c->s {} s->c {} | lost c->s {} s->c {} | rewrite errors {} | latency p50 {} p99 {} p999 {} ns",
        r["tx"]["client_to_server"],
        r["tx"]["server_to_client"],
        r["rx_ok"]["client_to_server"],
        r["rx_ok"]["server_to_client"],
        r["lost"]["client_to_server"],
        r["lost"]["server_to_client"],
        r["rewrite_errors"],
        r["latency_ns"]["p50"],
        r["latency_ns"]["p99"],
        r["latency_ns"]["p999"],
    );
}
