//! rvs-gen: the traffic generator that plays both the clients and the real servers around a
//! gateway, over two DPDK ports (memif to an rvsd in another process, or real NICs).
//!
//! With `--inproc-gateway CONFIG` the gateway runs in this process instead: rvsd's own worker loop
//! (`rvsd::worker::run`) on `--gateway-lcore`, its two ports joined to the generator's by rings
//! (DPDK's ring PMD), the dataplane configured from an rvsd config file. Quick runs need no second
//! process and no memif.
//!
//! One poll loop on one lcore: receive on every queue of both ports (ARP answered and learned
//! first, everything else checked by the engine), generate within a TSC-based rate budget, steer
//! each frame to a queue, transmit. Frames the TX ring refuses are kept and retried, never dropped,
//! so every frame an engine counted as sent is really sent (or reported as unsent at the end).
//!
//! Phases: learn the gateway's MAC on each side by ARP (check mode), warm-up (the engine creates
//! its connections), settle, measure (`--duration`), drain (no new frames; late arrivals counted).
//! A table goes to stdout and, with `--json`, the same as JSON.
//!
//! `--scenario` picks the engine: a ([`UdpFlows`]: established UDP flows, Mpps), b
//! ([`TcpConnEngine`]: new TCP connections per second, completed / failed / timed out) or c
//! ([`WithFlood`]: b's connections beside a SYN flood; correct cookie SYN-ACKs per second). The loop
//! is the same for all, generic over the engine ([`Measured`] adds what each reports). For a,
//! `--forward fullnat|nat|dr|tun` names the gateway's forwarding mode, whose rewrite the server side
//! checks (dr and tun: client to server only; see `rvs_bench::gen::udp`).
//!
//! Every result carries the generator's own headroom (`generator_loop`): the share of the measured
//! TSC time spent in iterations that moved frames (busy), that polled nothing (idle: waiting for the
//! gateway, or paced) and that were descheduled (stalled). A generator busy close to 100 % is what
//! limited the rate; an idle one was waiting for the gateway.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dpdk_sys::{eal, Eal, Mbuf, Mempool, PktPool, Port, PortConf, RxQueue, TxQueue};
use rvs_bench::gen::arp::{Arp, ArpOutcome};
use rvs_bench::gen::steer::{queue_for, Steer};
use rvs_bench::gen::synflood::{FloodConfig, FloodStats, SynFlood, WithFlood};
use rvs_bench::gen::tcp::{TcpConfig, TcpConnEngine, TcpStats};
use rvs_bench::gen::udp::{Forward, Mode, UdpConf, UdpFlows};
use rvs_bench::gen::udp6::{Family, Udp6Conf, Udp6Flows};
use rvs_bench::gen::{Counters, Engine, Macs, RewriteError, Side, Tx};
use rvs_dataplane::wire::EthernetAddress;
use serde_json::json;

const SIDES: [Side; 2] = [Side::Client, Side::Server];

#[derive(Parser, Debug)]
#[command(name = "rvs-gen", about = "rvs traffic generator: plays clients and real servers around a gateway")]
struct Args {
    /// DPDK device facing the gateway's client port, e.g. net_memif0,role=client,socket=/tmp/x/c.sock
    /// or a PCI address (not with --inproc-gateway).
    #[arg(long, default_value = "", required_unless_present = "inproc_gateway")]
    client_dev: String,
    /// DPDK device facing the gateway's server port.
    #[arg(long, default_value = "", required_unless_present = "inproc_gateway")]
    server_dev: String,
    /// Run the gateway in this process from this rvsd config file (its two ports become ring
    /// ports joined to the generator's; devices in the file are ignored).
    #[arg(long)]
    inproc_gateway: Option<PathBuf>,
    /// The lcore of the in-process gateway's worker.
    #[arg(long, default_value_t = 1)]
    gateway_lcore: u32,
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
    /// Queues per port; frames are spread by --steer. Over memif this must equal the gateway's
    /// queue count (rvsd: its number of workers): a memif server refuses a client with more rings
    /// (the link never comes up), and with fewer its extra queues poll rings the client never set
    /// up (seen with rvsd: garbage frames on the extra worker, corrupt rewrites, heavy loss).
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// Server-side steering with several queues: hash (plain RSS) or owner (the local port's worker).
    #[arg(long, default_value = "hash")]
    steer: Steer,
    /// Scenario engine: a (established UDP flows, also used for d and e), b (new TCP connections:
    /// handshake, request, response, FIN, every segment checked) or c (b's connections beside a
    /// SYN flood against the same SYN-proxied service).
    #[arg(long, default_value = "a")]
    scenario: String,
    /// check: a gateway, every rewrite checked (of the --forward mode); reference: a plain
    /// forwarder (testpmd), frames checked as fully against what was sent.
    #[arg(long, default_value = "check")]
    mode: String,
    /// a: the gateway's forwarding mode, as rvsd's `forward` of the service's real servers:
    /// fullnat, nat (destination rewritten, replies through the gateway), dr (the real server's
    /// MAC, packet unchanged; the generator answers ARP for each real server with a MAC of its own)
    /// or tun (IPv4-in-IPv4 from --gw-server to the real server). dr and tun send client to server
    /// only (replies would bypass the gateway); with --mode reference that is all they change.
    #[arg(long, default_value = "fullnat")]
    forward: String,
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// b, c: the service is SYN-proxied (`synproxy = true` in rvsd's config): the client's SYN-ACK
    /// carries the gateway's cookie. Must match the service, or every connection fails.
    #[arg(long)]
    expect_synproxy: bool,
    /// b, c: the service has TOA: the real server's first data segment must carry it.
    #[arg(long)]
    toa: bool,
    /// b, c: clients send no TCP timestamps option.
    #[arg(long)]
    no_timestamps: bool,
    /// b, c: connections in flight at most.
    #[arg(long, default_value_t = 4096)]
    window: u32,
    /// b, c: new legitimate connections per second, or "max" (as fast as the window allows).
    #[arg(long, default_value = "max")]
    conn_rate: String,
    /// b, c: legitimate client addresses, from the clients' /16 + 1 (the upper half is the flood's).
    #[arg(long, default_value_t = 4096)]
    clients: u32,
    /// b, c: request and response payload bytes.
    #[arg(long, default_value_t = 100)]
    req_size: u16,
    #[arg(long, default_value_t = 300)]
    resp_size: u16,
    /// b, c: a connection not completed after this many milliseconds is failed (timed out).
    #[arg(long, default_value_t = 2000)]
    conn_timeout_ms: u64,
    /// c: flood SYNs per second, or "max" (--flood-share of every burst).
    #[arg(long, default_value = "max")]
    flood_rate: String,
    /// c: the share of each burst the flood may take (0..=1; 0 runs the legitimate load alone).
    #[arg(long, default_value_t = 0.75)]
    flood_share: f64,
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
    /// a: ipv4, or its IPv6 variants: ipv6 (IPv6 FULLNAT: --vip6, --reals6, --lips6) and nat64
    /// (--vip6 to the IPv4 --reals through the IPv4 --lips); clients in --client-net6 behind
    /// --client-addr6. IPv6 frames need --size 84 or more.
    #[arg(long, default_value = "ipv4")]
    family: String,
    #[arg(long, default_value = "[2001:2::100]:9000")]
    vip6: SocketAddrV6,
    #[arg(long, default_value = "2001:2::2")]
    client_addr6: Ipv6Addr,
    /// The IPv6 clients' /64.
    #[arg(long, default_value = "2001:2:10::")]
    client_net6: Ipv6Addr,
    #[arg(long, value_delimiter = ',', default_value = "[2001:2:0:1::11]:8000")]
    reals6: Vec<SocketAddrV6>,
    #[arg(long, value_delimiter = ',', default_value = "2001:2:0:1::100")]
    lips6: Vec<Ipv6Addr>,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Free-form label stored in the JSON (what is in the gateway's place).
    #[arg(long, default_value = "")]
    label: String,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 1.0)]
    stats_interval: f64,
    /// rvsd's API socket: the gateway's busy-poll counters (busy_cycles, busy_packets) are read at
    /// the start and the end of the measured interval, and the result carries the gateway's cycles
    /// per packet over exactly that interval (`gateway_cycles`). The in-process gateway is read
    /// directly.
    #[arg(long)]
    gateway_api: Option<PathBuf>,
    /// Once the measurement is over, create this file and keep the ports open (not polled) until
    /// SIGINT or --hold-max seconds: the forwarder in the middle can then be stopped while its
    /// memif peer is still connected. testpmd prints its --record-core-cycles figure when it
    /// stops, and its memif server may crash instead when the client disconnects first.
    #[arg(long)]
    done_file: Option<PathBuf>,
    #[arg(long, default_value_t = 20.0)]
    hold_max: f64,
}

/// Where the gateway's busy-poll counters are read from (sums over its workers).
enum GatewayProbe {
    None,
    Api(PathBuf),
    Inproc(Arc<rvs_dataplane::stats::Stats>),
}

impl GatewayProbe {
    /// (busy_cycles, busy_packets), or None when there is nothing to read (or it failed).
    fn read(&self) -> Option<(u64, u64)> {
        use rvs_dataplane::stats::Event;
        match self {
            GatewayProbe::None => None,
            GatewayProbe::Inproc(s) => Some((s.events(Event::BusyCycles), s.events(Event::BusyPackets))),
            GatewayProbe::Api(path) => match api_busy(path) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("rvs-gen: --gateway-api {}: {e}", path.display());
                    None
                }
            },
        }
    }

    fn source(&self) -> &'static str {
        match self {
            GatewayProbe::None => "none",
            GatewayProbe::Api(_) => "api",
            GatewayProbe::Inproc(_) => "inproc",
        }
    }
}

/// One `stats` request to rvsd's API socket (docs/api.md): the summed busy-poll counters.
fn api_busy(path: &std::path::Path) -> Result<(u64, u64), String> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    s.write_all(b"{\"op\":\"stats\"}\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    match (v["busy_cycles"].as_u64(), v["busy_packets"].as_u64()) {
        (Some(c), Some(p)) => Ok((c, p)),
        _ => Err(format!("no busy_cycles/busy_packets in the stats reply: {line}")),
    }
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
    let lcores = match a.inproc_gateway {
        Some(_) => format!("{},{}", a.lcore, a.gateway_lcore),
        None => a.lcore.to_string(),
    };
    let mut v: Vec<String> = vec![
        "rvs-gen".into(),
        "-l".into(),
        lcores,
        format!("--main-lcore={}", a.lcore),
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
        if a.inproc_gateway.is_some() || d.is_empty() {
            continue;
        }
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
    let forward = Forward::parse(&a.forward).map_err(|e| format!("--forward: {e}"))?;
    if a.scenario != "a" && forward != Forward::FullNat {
        return Err(format!("--forward {}: scenario a only", a.forward));
    }
    let rate: Option<f64> = match a.rate.as_str() {
        "max" => None,
        r => Some(r.parse::<f64>().map_err(|_| format!("--rate {r}: packets per second or max"))?),
    };
    if !["a", "b", "c"].contains(&a.scenario.as_str()) {
        return Err(format!("--scenario {}: a, b or c", a.scenario));
    }
    if a.scenario != "a" && rate.is_some() {
        return Err(format!(
            "--rate {}: scenario a only (b and c are paced by --conn-rate and --flood-rate)",
            a.rate
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
    let mut a = a;
    let gateway = match a.inproc_gateway.clone() {
        Some(cfg) => {
            if a.queues != 1 {
                return Err("--inproc-gateway: one queue per port (one in-process worker)".into());
            }
            let g = InprocGateway::start(&cfg, &eal, &mempool, a.gateway_lcore)?;
            a.client_dev = format!("net_ring_{}", INPROC_GEN[0]);
            a.server_dev = format!("net_ring_{}", INPROC_GEN[1]);
            Some(g)
        }
        None => None,
    };
    let (pc, qc) = open_port(&a.client_dev, a.queues, &mempool)?;
    let (ps, qs) = open_port(&a.server_dev, a.queues, &mempool)?;
    let mut ports = vec![pc, ps];
    if let Err(e) = wait_link(&ports, 10) {
        // Queue handles go first, or the ports cannot be stopped and closed.
        drop((qc, qs));
        return Err(if a.queues > 1 {
            format!("{e}; with --queues {}, the gateway must have as many queues per port", a.queues)
        } else {
            e
        });
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
        arp: {
            let arp = Arp::new(own, vec![a.client_addr], reals.iter().map(|r| r.0).collect());
            // DR: the destination MAC must tell the real server the gateway chose.
            let arp = if mode == Mode::Check && forward == Forward::Dr { arp.with_real_macs() } else { arp };
            match a.family.as_str() {
                "ipv6" => arp.with_ipv6(vec![a.client_addr6], a.reals6.iter().map(|r| *r.ip()).collect()),
                "nat64" => arp.with_ipv6(vec![a.client_addr6], vec![]),
                _ => arp,
            }
        },
        steer: a.steer,
        learned: [None, None],
    };
    let probe = match (&gateway, &a.gateway_api) {
        (Some(g), _) => GatewayProbe::Inproc(g.stats.clone()),
        (None, Some(p)) => GatewayProbe::Api(p.clone()),
        (None, None) => GatewayProbe::None,
    };
    let result = drive(&a, mode, forward, rate, hz, own, reals, &mut io, &stop, &probe);
    if let Some(done) = &a.done_file {
        // Not fatal: the ports must still be torn down in order below.
        if let Err(e) = std::fs::write(done, b"done\n") {
            eprintln!("rvs-gen: --done-file {}: {e}", done.display());
        }
        let t0 = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) && t0.elapsed().as_secs_f64() < a.hold_max {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Tear down in order: queues, ports, pool, EAL.
    let unsent: usize = io.pending.iter().flatten().map(Vec::len).sum();
    drop(io);
    for p in &mut ports {
        let _ = p.stop();
    }
    drop(ports);
    let gateway_counters = gateway.map(|g| g.stop(&eal));
    drop(mempool);
    drop(eal);
    let mut r = result?;
    r["tx_unsent"] = json!(unsent);
    if let Some(c) = gateway_counters {
        r["inproc_gateway_counters"] = c;
    }
    print_table(&r);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r).expect("json") + "\n")
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Names given to `ring_pair` for the in-process ports (DPDK prefixes them with `net_ring_`).
const INPROC_GEN: [&str; 2] = ["gen_client", "gen_server"];
const INPROC_GW: [&str; 2] = ["gw_client", "gw_server"];

/// rvsd's worker loop on another lcore of this process, behind ring ports.
struct InprocGateway {
    lcore: u32,
    stop: Arc<AtomicBool>,
    ports: Vec<Port>,
    stats: Arc<rvs_dataplane::stats::Stats>,
    /// Kept open so the worker's command channel stays connected (no commands are sent).
    _commands: crossbeam::channel::Sender<rvsd::worker::Command>,
}

impl InprocGateway {
    fn start(
        cfg_path: &PathBuf,
        eal: &Eal,
        pool: &Arc<Mempool>,
        lcore: u32,
    ) -> Result<InprocGateway, String> {
        let text = std::fs::read_to_string(cfg_path)
            .map_err(|e| format!("--inproc-gateway {}: {e}", cfg_path.display()))?;
        let cfg = rvs_control::config::Config::from_toml(&text)
            .and_then(|c| c.validate().map(|()| c))
            .map_err(|e| format!("--inproc-gateway {}: {e}", cfg_path.display()))?;
        if cfg.ports.len() != 2 {
            return Err(format!(
                "--inproc-gateway: the config needs exactly 2 ports, has {}",
                cfg.ports.len()
            ));
        }
        let mut macs = Vec::new();
        let mut ports = Vec::new();
        let mut queues = Vec::new();
        for side in 0..2 {
            let (gen_name, gw_name) = dpdk_sys::ring_pair(INPROC_GEN[side], INPROC_GW[side], 1, 4096, -1)
                .map_err(|e| format!("in-process ring ports: {e}"))?;
            let mut gw = Port::by_name(&gw_name).map_err(|e| format!("{gw_name}: {e}"))?;
            let mac = gw.mac().map_err(|e| format!("{gw_name}: {e}"))?;
            eprintln!("rvs-gen: {gen_name} <-> {gw_name} (gateway MAC {})", EthernetAddress(mac));
            let conf = PortConf {
                rx_queues: 1,
                tx_queues: 1,
                rx_desc: cfg.workers.rx_desc,
                tx_desc: cfg.workers.tx_desc,
                mtu: None,
                promiscuous: true,
            };
            let mut q = gw.configure(&conf, pool).map_err(|e| format!("{gw_name}: {e}"))?;
            gw.start().map_err(|e| format!("{gw_name}: {e}"))?;
            queues.push(q.remove(0));
            macs.push(mac);
            ports.push(gw);
        }
        let mut setup = rvs_control::state::ControlState::new(cfg.clone())
            .setup(&macs)
            .map_err(|e| format!("--inproc-gateway: {e}"))?;
        setup.conn.synproxy.key = (eal::rdtsc() as u128 ^ 0x5eed_5eed_5eed_5eed_5eed_5eed).to_le_bytes();
        let stats = Arc::new(rvs_dataplane::stats::Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam::channel::bounded(1);
        let ctx = rvsd::worker::WorkerCtx {
            index: 0,
            workers: 1,
            queues,
            handoff_to: vec![None],
            handoff_from: Vec::new(),
            pool: pool.clone(),
            stats: stats.clone(),
            setup: Arc::new(setup),
            stop: stop.clone(),
            burst: cfg.workers.burst as usize,
            idle_sleep_us: cfg.workers.idle_sleep_us,
            prefetch: cfg.workers.prefetch,
            commands: rx,
            applied: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        eal.launch(lcore, move || rvsd::worker::run(ctx))
            .map_err(|e| format!("--gateway-lcore {lcore}: {e}"))?;
        eprintln!("rvs-gen: in-process gateway (rvsd's worker loop) on lcore {lcore}, ring ports");
        Ok(InprocGateway { lcore, stop, ports, stats, _commands: tx })
    }

    /// Stops the worker and the ports; returns the gateway's counters.
    fn stop(mut self, eal: &Eal) -> serde_json::Value {
        self.stop.store(true, Ordering::SeqCst);
        eal.wait(self.lcore);
        for p in &mut self.ports {
            let _ = p.stop();
        }
        let counters: serde_json::Map<String, serde_json::Value> =
            self.stats.nonzero().into_iter().map(|(k, v)| (k, json!(v))).collect();
        serde_json::Value::Object(counters)
    }
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

/// A snapshot of everything a scenario counts, so the driver can take differences over the
/// measured interval whatever the engine.
#[derive(Debug, Clone, Default)]
struct Snap {
    /// The engine's counters (for c: the legitimate engine's and the flood's summed).
    c: Counters,
    /// b, c: the legitimate connections.
    tcp: TcpStats,
    /// c: the flood.
    flood: FloodStats,
}

impl Snap {
    fn since(&self, e: &Snap) -> Snap {
        let (t, u) = (&self.tcp, &e.tcp);
        let (f, g) = (&self.flood, &e.flood);
        Snap {
            c: self.c.since(&e.c),
            tcp: TcpStats {
                started: t.started - u.started,
                completed: t.completed - u.completed,
                failed: t.failed - u.failed,
                timed_out: t.timed_out - u.timed_out,
                rst: t.rst - u.rst,
                late: t.late - u.late,
            },
            flood: FloodStats {
                syns: f.syns - g.syns,
                synacks: f.synacks - g.synacks,
                rsts: f.rsts - g.rsts,
            },
        }
    }
}

/// What the driver needs from a scenario's engine beyond [`Engine`].
trait Measured: Engine {
    fn snap(&self) -> Snap;
    /// The unit the generator's headroom is expressed in (what one "operation" is).
    fn unit(&self) -> &'static str;
    /// How many units a difference of snapshots holds.
    fn units(&self, d: &Snap) -> u64;
    /// The progress line's scenario part, over `d` (a difference) lasting `dt` seconds.
    fn progress(&self, d: &Snap, dt: f64) -> String;
    /// The scenario's own part of the result, over the measured interval `w`.
    fn report(&self, w: &Snap, dur: f64, hz: u64) -> serde_json::Value;
    /// What the warm-up has achieved, for an error.
    fn warmup_state(&self) -> String {
        String::new()
    }
    /// How many sides originate traffic (a --rate is shared among them).
    fn sending_sides(&self) -> usize {
        2
    }
}

impl Measured for Udp6Flows {
    fn snap(&self) -> Snap {
        Snap { c: self.counters().clone(), ..Snap::default() }
    }
    fn unit(&self) -> &'static str {
        "frames"
    }
    fn units(&self, d: &Snap) -> u64 {
        d.c.rx_ok[0] + d.c.rx_ok[1]
    }
    fn progress(&self, d: &Snap, dt: f64) -> String {
        format!(
            "c->s tx {:6.3} rx {:6.3} Mpps | s->c tx {:6.3} rx {:6.3} Mpps | learned {}",
            d.c.tx[0] as f64 / dt / 1e6,
            d.c.rx_ok[1] as f64 / dt / 1e6,
            d.c.tx[1] as f64 / dt / 1e6,
            d.c.rx_ok[0] as f64 / dt / 1e6,
            self.learned()
        )
    }
    fn report(&self, _w: &Snap, _dur: f64, hz: u64) -> serde_json::Value {
        let lat = self.latency().expect("the UDP engine timestamps");
        let ns = |cyc: Option<u64>| cyc.map(|c| (c as f64 * 1e9 / hz as f64).round() as u64);
        json!({
            "latency_ns": {
                "samples": lat.count(),
                "p50": ns(lat.quantile(0.5)),
                "p99": ns(lat.quantile(0.99)),
                "p999": ns(lat.quantile(0.999)),
                "max": ns(Some(lat.max())),
            },
            "forward": "fullnat",
            "family": self.family().name(),
            "one_way": false,
        })
    }
    fn warmup_state(&self) -> String {
        format!("{} flows learned", self.learned())
    }
}

impl Measured for UdpFlows {
    fn snap(&self) -> Snap {
        Snap { c: self.counters().clone(), ..Snap::default() }
    }
    fn unit(&self) -> &'static str {
        "frames"
    }
    fn units(&self, d: &Snap) -> u64 {
        d.c.rx_ok[0] + d.c.rx_ok[1]
    }
    fn progress(&self, d: &Snap, dt: f64) -> String {
        format!(
            "c->s tx {:6.3} rx {:6.3} Mpps | s->c tx {:6.3} rx {:6.3} Mpps | learned {}",
            d.c.tx[0] as f64 / dt / 1e6,
            d.c.rx_ok[1] as f64 / dt / 1e6,
            d.c.tx[1] as f64 / dt / 1e6,
            d.c.rx_ok[0] as f64 / dt / 1e6,
            self.learned()
        )
    }
    fn report(&self, _w: &Snap, _dur: f64, hz: u64) -> serde_json::Value {
        let lat = self.latency().expect("the UDP engine timestamps");
        let ns = |cyc: Option<u64>| cyc.map(|c| (c as f64 * 1e9 / hz as f64).round() as u64);
        let check = self.conf().mode == Mode::Check;
        json!({
            "latency_ns": {
                "samples": lat.count(),
                "p50": ns(lat.quantile(0.5)),
                "p99": ns(lat.quantile(0.99)),
                "p999": ns(lat.quantile(0.999)),
                "max": ns(Some(lat.max())),
            },
            "server_tuples_unique": if check { json!(self.server_tuples_unique()) } else { json!(null) },
            "forward": self.conf().forward.name(),
            "one_way": !self.conf().forward.both_ways(),
            // The real server each flow went to (learned in the warm-up): how the gateway spread them.
            "flows_per_real": if check {
                json!(self.flows_per_real().iter().map(|(a, n)| (a.to_string(), json!(n))).collect::<serde_json::Map<_, _>>())
            } else {
                json!(null)
            },
        })
    }
    fn warmup_state(&self) -> String {
        format!("{} of {} flows reached a real server", self.learned(), self.conf().flows)
    }
    fn sending_sides(&self) -> usize {
        UdpFlows::sending_sides(self)
    }
}

fn tcp_report(w: &Snap, dur: f64) -> serde_json::Value {
    let t = &w.tcp;
    json!({
        "conns_per_s": t.completed as f64 / dur,
        "conns": {
            "started": t.started,
            "completed": t.completed,
            "failed": t.failed,
            "timed_out": t.timed_out,
            "reset": t.rst,
            "late_segments": t.late,
        },
    })
}

fn tcp_progress(t: &TcpStats, dt: f64) -> String {
    format!(
        "conns/s {:9.0} (started {:9.0}) | failed {} timed out {} rst {}",
        t.completed as f64 / dt,
        t.started as f64 / dt,
        t.failed,
        t.timed_out,
        t.rst
    )
}

impl Measured for TcpConnEngine {
    fn snap(&self) -> Snap {
        Snap { c: self.counters().clone(), tcp: *self.stats(), ..Snap::default() }
    }
    fn unit(&self) -> &'static str {
        "connections"
    }
    fn units(&self, d: &Snap) -> u64 {
        d.tcp.completed
    }
    fn progress(&self, d: &Snap, dt: f64) -> String {
        tcp_progress(&d.tcp, dt)
    }
    fn report(&self, w: &Snap, dur: f64, _hz: u64) -> serde_json::Value {
        tcp_report(w, dur)
    }
}

impl Measured for WithFlood {
    fn snap(&self) -> Snap {
        Snap { c: self.counters().clone(), tcp: *self.legit.stats(), flood: *self.flood.stats() }
    }
    fn unit(&self) -> &'static str {
        "connections + SYN-ACKs"
    }
    fn units(&self, d: &Snap) -> u64 {
        d.tcp.completed + d.flood.synacks
    }
    fn progress(&self, d: &Snap, dt: f64) -> String {
        format!(
            "{} | flood SYN {:6.3} Mpps, cookies ok {:6.3} Mpps",
            tcp_progress(&d.tcp, dt),
            d.flood.syns as f64 / dt / 1e6,
            d.flood.synacks as f64 / dt / 1e6
        )
    }
    fn report(&self, w: &Snap, dur: f64, _hz: u64) -> serde_json::Value {
        let mut r = tcp_report(w, dur);
        let f = &w.flood;
        r["flood"] = json!({
            "share": f64::from(self.flood_share) / 256.0,
            "syns": f.syns,
            "syns_per_s": f.syns as f64 / dur,
            // SYN-ACKs whose every field checked out; wrong ones are in "errors".
            "synacks_ok": f.synacks,
            "synacks_ok_per_s": f.synacks as f64 / dur,
            "rsts": f.rsts,
            "answered_fraction": if f.syns > 0 { json!(f.synacks as f64 / f.syns as f64) } else { json!(null) },
        });
        r
    }
}

/// Where the generator's loop spent the measured interval, from the TSC at each iteration's start.
/// An iteration is busy when it received or generated at least one frame, idle when it only polled
/// empty queues (waiting for the gateway, or held back by a rate or window), stalled when it took
/// longer than [`STALL_US`]: the OS took the CPU away (on a shared machine), whatever it was doing.
#[derive(Debug, Default, Clone, Copy)]
struct LoopTime {
    busy: u64,
    idle: u64,
    stalled: u64,
    iterations: u64,
}

const STALL_US: u64 = 200;

impl LoopTime {
    fn add(&mut self, cycles: u64, worked: bool, stall: u64) {
        self.iterations += 1;
        if cycles > stall {
            self.stalled += cycles;
        } else if worked {
            self.busy += cycles;
        } else {
            self.idle += cycles;
        }
    }

    fn json(&self, hz: u64, units: u64, unit: &str) -> serde_json::Value {
        let total = (self.busy + self.idle + self.stalled).max(1) as f64;
        let busy_s = self.busy as f64 / hz as f64;
        json!({
            "busy_fraction": self.busy as f64 / total,
            "idle_fraction": self.idle as f64 / total,
            "stalled_fraction": self.stalled as f64 / total,
            "iterations": self.iterations,
            "unit": unit,
            // What the generator would reach if every iteration were busy: an estimate of its own
            // ceiling (pessimistic when busy iterations moved few frames each).
            "capacity_per_s": if busy_s > 0.0 { json!(units as f64 / busy_s) } else { json!(null) },
            "note": "busy: iterations that received or built frames; idle: polled nothing (waiting for \
                     the gateway, or paced); stalled: iterations over 200 us (descheduled). \
                     busy near 1 means the generator, not the gateway, set the rate.",
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn drive(
    a: &Args,
    mode: Mode,
    forward: Forward,
    rate: Option<f64>,
    hz: u64,
    own: [EthernetAddress; 2],
    reals: Vec<(Ipv4Addr, u16)>,
    io: &mut Io,
    stop: &AtomicBool,
    probe: &GatewayProbe,
) -> Result<serde_json::Value, String> {
    let gw = match mode {
        Mode::Check => learn_gateway(a, io, stop)?,
        // A plain forwarder answers no ARP and rewrites nothing; MACs are not checked.
        Mode::Reference => [EthernetAddress([2, 0, 0, 0, 0, 0xfe]), EthernetAddress([2, 0, 0, 0, 1, 0xfe])],
    };
    let macs = Macs { own, gw };
    match a.scenario.as_str() {
        "a" if a.family != "ipv4" => {
            let family = Family::parse(&a.family).map_err(|e| format!("--family: {e}"))?;
            if forward != Forward::FullNat {
                return Err(format!("--family {}: --forward fullnat only", a.family));
            }
            let (reals, lips): (Vec<(IpAddr, u16)>, Vec<IpAddr>) = match family {
                Family::Ipv6 => (
                    a.reals6.iter().map(|r| (IpAddr::V6(*r.ip()), r.port())).collect(),
                    a.lips6.iter().map(|l| IpAddr::V6(*l)).collect(),
                ),
                Family::Nat64 => (
                    reals.iter().map(|r| (IpAddr::V4(r.0), r.1)).collect(),
                    a.lips.iter().map(|l| IpAddr::V4(*l)).collect(),
                ),
            };
            let conf = Udp6Conf {
                family,
                flows: a.flows,
                frame_len: a.size - 4,
                vip: *a.vip6.ip(),
                vport: a.vip6.port(),
                client_net: a.client_net6,
                client_port: 10_000,
                reals,
                lips,
                macs,
                mode,
                resend_gap_tsc: hz / 20,
            };
            measure(a, Udp6Flows::new(conf)?, rate, hz, io, stop, probe)
        }
        "a" => {
            let conf = UdpConf {
                flows: a.flows,
                frame_len: a.size - 4,
                vip: *a.vip.ip(),
                vport: a.vip.port(),
                client_net: a.client_net,
                client_port: 10_000,
                reals,
                lips: a.lips.clone(),
                macs,
                mode,
                forward,
                gw_server: a.gw_server,
                resend_gap_tsc: hz / 20,
            };
            measure(a, UdpFlows::new(conf)?, rate, hz, io, stop, probe)
        }
        s => {
            if mode != Mode::Check {
                return Err(format!("--scenario {s}: TCP connections need a gateway (--mode check)"));
            }
            let legit = TcpConnEngine::new(tcp_config(a, macs, &reals, hz)?)?;
            if s == "b" {
                return measure(a, legit, None, hz, io, stop, probe);
            }
            if !a.expect_synproxy {
                return Err("--scenario c: the flood targets a SYN-proxied service: --expect-synproxy".into());
            }
            if !(0.0..=1.0).contains(&a.flood_share) {
                return Err(format!("--flood-share {}: 0..=1", a.flood_share));
            }
            let net = u32::from(a.client_net);
            let flood = SynFlood::new(FloodConfig {
                macs,
                vip: *a.vip.ip(),
                vport: a.vip.port(),
                source_base: Ipv4Addr::from(net + FLOOD_OFFSET),
                sources: FLOOD_SOURCES,
                rate: per_second(&a.flood_rate, "--flood-rate")?,
                tsc_hz: hz,
                seed: eal::rdtsc() | 1,
            })?;
            measure(a, WithFlood::new(legit, flood, a.flood_share), None, hz, io, stop, probe)
        }
    }
}

/// The flood's spoofed sources are the upper half of the clients' /16; legitimate clients the lower.
const FLOOD_OFFSET: u32 = 0x8000;
const FLOOD_SOURCES: u32 = 0x8000;

/// "max" is 0 (unpaced), else a positive integer per second.
fn per_second(v: &str, what: &str) -> Result<u64, String> {
    match v {
        "max" => Ok(0),
        r => match r.parse::<f64>() {
            Ok(x) if x >= 1.0 => Ok(x as u64),
            _ => Err(format!("{what} {r}: a number per second (>= 1) or max")),
        },
    }
}

fn tcp_config(a: &Args, macs: Macs, reals: &[(Ipv4Addr, u16)], hz: u64) -> Result<TcpConfig, String> {
    let rport = reals[0].1;
    if reals.iter().any(|r| r.1 != rport) {
        return Err(format!("--reals: b and c play every real server on one port (got {:?})", a.reals));
    }
    if u32::from(a.client_net) & 0xffff != 0 {
        return Err(format!("--client-net {}: a /16 network address", a.client_net));
    }
    if a.clients == 0 || a.clients >= FLOOD_OFFSET {
        return Err(format!(
            "--clients {}: 1..{FLOOD_OFFSET} (the upper half of the /16 is the flood's)",
            a.clients
        ));
    }
    Ok(TcpConfig {
        macs,
        vip: *a.vip.ip(),
        vport: a.vip.port(),
        client_base: Ipv4Addr::from(u32::from(a.client_net) + 1),
        clients: a.clients,
        cport_min: 1024,
        cport_max: 65535,
        lips: a.lips.clone(),
        reals: reals.iter().map(|r| r.0).collect(),
        rport,
        synproxy: a.expect_synproxy,
        toa: a.toa,
        timestamps: !a.no_timestamps,
        window: a.window,
        rate: per_second(&a.conn_rate, "--conn-rate")?,
        max_conns: 0,
        tsc_hz: hz,
        timeout_ms: a.conn_timeout_ms,
        req_len: a.req_size,
        resp_len: a.resp_size,
    })
}

/// The poll loop through the phases, for any scenario's engine.
fn measure<E: Measured>(
    a: &Args,
    mut e: E,
    rate: Option<f64>,
    hz: u64,
    io: &mut Io,
    stop: &AtomicBool,
    probe: &GatewayProbe,
) -> Result<serde_json::Value, String> {
    let secs = |t: u64| t as f64 / hz as f64;
    let (mut g0, mut g1) = (None, None);
    let now0 = eal::rdtsc();
    let per_side = |r: f64| r / e.sending_sides() as f64;
    let mut buckets = rate
        .map(|r| [Bucket::new(per_side(r), hz, a.burst, now0), Bucket::new(per_side(r), hz, a.burst, now0)]);
    let mut warm = Bucket::new(a.warmup_rate as f64, hz, a.burst, now0);
    let mut phase = Phase::Warmup;
    let mut phase_start = now0;
    let mut warmup_s = 0.0;
    let (mut s0, mut s1) = (Snap::default(), Snap::default());
    let (mut t0, mut t1) = (0u64, 0u64);
    let mut last_print = now0;
    let mut last_snap = Snap::default();
    let mut last_rx = now0;
    let mut lt = LoopTime::default();
    let stall = STALL_US * hz / 1_000_000;
    let (mut prev, mut prev_worked, mut prev_measuring) = (now0, false, false);
    loop {
        let now = eal::rdtsc();
        if prev_measuring {
            lt.add(now - prev, prev_worked, stall);
        }
        prev = now;
        let received = io.rx(Some(&mut e), now);
        let mut generated = 0;
        if received > 0 {
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
                        "warm-up incomplete after {elapsed:.1} s: {} (errors: {}); look at the gateway's \
                         drop counters",
                        e.warmup_state(),
                        error_summary(e.counters())
                    ));
                } else if io.pending(Side::Client) < a.burst {
                    let n = warm.available(now).min(a.burst);
                    let sent = e.generate(Side::Client, now, n, &mut io.pool, &mut io.out);
                    warm.spend(sent);
                    generated += sent;
                }
            }
            Phase::Settle | Phase::Measure => {
                if phase == Phase::Settle && (elapsed >= a.settle || interrupted) {
                    phase = Phase::Measure;
                    phase_start = now;
                    s0 = e.snap();
                    g0 = probe.read();
                    e.start_measuring();
                    t0 = now;
                } else if phase == Phase::Measure && (elapsed >= a.duration || interrupted) {
                    phase = Phase::Drain;
                    phase_start = now;
                    s1 = e.snap();
                    g1 = probe.read();
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
                        generated += sent;
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
        prev_worked = received > 0 || generated > 0;
        prev_measuring = phase == Phase::Measure;
        io.flush();
        if a.stats_interval > 0.0 && secs(now - last_print) >= a.stats_interval {
            let sn = e.snap();
            let d = sn.since(&last_snap);
            eprintln!(
                "rvs-gen: {:>7} {} | errors {}",
                format!("{phase:?}").to_lowercase(),
                e.progress(&d, secs(now - last_print)),
                sn.c.total_errors()
            );
            last_snap = sn;
            last_print = now;
        }
    }
    let s2 = e.snap();
    let w = s1.since(&s0);
    let with_late = s2.c.since(&s0.c);
    let c2 = &s2.c;
    let dur = secs(t1 - t0);
    let errors: serde_json::Map<String, serde_json::Value> =
        RewriteError::ALL.iter().map(|k| (k.name().to_owned(), json!(c2.errors[*k as usize]))).collect();
    let wc = &w.c;
    let rx_total = wc.rx_ok[0] + wc.rx_ok[1];
    let mut r = json!({
        "scenario": a.scenario,
        "family": a.family,
        "mode": a.mode,
        "label": a.label,
        "flows": a.flows,
        "frame_size": a.size,
        "queues": a.queues,
        "steer": format!("{:?}", a.steer).to_lowercase(),
        "rate_target_pps": rate,
        "duration_s": dur,
        "warmup_s": warmup_s,
        "tx": {"client_to_server": wc.tx[0], "server_to_client": wc.tx[1]},
        "rx_ok": {"client_to_server": wc.rx_ok[1], "server_to_client": wc.rx_ok[0]},
        // Frames sent in the measured interval minus frames received for them (including late
        // arrivals); may be slightly negative by what was in flight when the interval began.
        // (b and c: the gateway answers SYNs itself, so these do not balance there.)
        "lost": {
            "client_to_server": wc.tx[0] as i64 - with_late.rx_ok[1] as i64,
            "server_to_client": wc.tx[1] as i64 - with_late.rx_ok[0] as i64,
        },
        "rewrite_errors": c2.total_errors(),
        "errors": errors,
        "tx_failed": c2.tx_failed,
        "mpps": rx_total as f64 / dur / 1e6,
        "mpps_client_to_server": wc.rx_ok[1] as f64 / dur / 1e6,
        "mpps_server_to_client": wc.rx_ok[0] as f64 / dur / 1e6,
        "gbps": (wc.rx_bytes[0] + wc.rx_bytes[1]) as f64 * 8.0 / dur / 1e9,
        "generator_loop": lt.json(hz, e.units(&w), e.unit()),
        // The bytes the checks read per frame checked: equal for rvsd's and a reference's frames.
        "checked_bytes_per_frame": if rx_total + wc.total_errors() > 0 {
            json!(wc.checked_bytes as f64 / (rx_total + wc.total_errors()) as f64)
        } else {
            json!(null)
        },
        "gateway_cycles": match (g0, g1) {
            (Some((c0, p0)), Some((c1, p1))) => json!({
                "source": probe.source(),
                "busy_cycles": c1 - c0,
                "busy_packets": p1 - p0,
                "cycles_per_packet": if p1 > p0 { json!((c1 - c0) as f64 / (p1 - p0) as f64) } else { json!(null) },
                "tsc_hz": hz,
            }),
            _ => json!(null),
        },
    });
    if let serde_json::Value::Object(m) = e.report(&w, dur, hz) {
        for (k, v) in m {
            r[k] = v;
        }
    }
    if a.scenario != "a" {
        r["tcp"] = json!({
            "synproxy": a.expect_synproxy,
            "toa": a.toa,
            "timestamps": !a.no_timestamps,
            "window": a.window,
            "conn_rate_target": per_second(&a.conn_rate, "--conn-rate")?,
            "clients": a.clients,
            "req_size": a.req_size,
            "resp_size": a.resp_size,
        });
    }
    Ok(r)
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
    let label = r["label"].as_str().unwrap_or("");
    let label = if label.is_empty() { String::new() } else { format!(" {label}") };
    let scenario = r["scenario"].as_str().unwrap_or("");
    let err = |r: &serde_json::Value| {
        let m = r["errors"].as_object().cloned().unwrap_or_default();
        let v: Vec<String> =
            m.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) > 0).map(|(k, n)| format!("{k}={n}")).collect();
        if v.is_empty() {
            "0".into()
        } else {
            format!("{} ({})", r["rewrite_errors"], v.join(" "))
        }
    };
    if scenario == "a" {
        println!(
            "rvs-gen a [{} {}{label}] flows {} size {} queues {}: {:.3} Mpps ({:.3} c->s, {:.3} s->c), {:.2} Gbit/s over {:.2} s",
            r["mode"].as_str().unwrap_or(""),
            r["forward"].as_str().unwrap_or(""),
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
            err(r),
            r["latency_ns"]["p50"],
            r["latency_ns"]["p99"],
            r["latency_ns"]["p999"],
        );
    } else {
        let t = &r["tcp"];
        let c = &r["conns"];
        println!(
            "rvs-gen {scenario} [{}{label}] synproxy {} toa {} window {}: {:.0} conns/s completed over {:.2} s \
             (started {} completed {} failed {} timed out {} reset {})",
            r["mode"].as_str().unwrap_or(""),
            t["synproxy"],
            t["toa"],
            t["window"],
            f("conns_per_s"),
            f("duration_s"),
            c["started"],
            c["completed"],
            c["failed"],
            c["timed_out"],
            c["reset"],
        );
        if let Some(fl) = r.get("flood") {
            println!(
                "  flood share {}: SYNs {:.0}/s, correct SYN-ACK cookies {:.0}/s (answered {:.4}), RSTs {}",
                fl["share"],
                fl["syns_per_s"].as_f64().unwrap_or(0.0),
                fl["synacks_ok_per_s"].as_f64().unwrap_or(0.0),
                fl["answered_fraction"].as_f64().unwrap_or(0.0),
                fl["rsts"],
            );
        }
        println!("  segments checked ok {:.3} Mpps | rewrite errors {}", f("mpps"), err(r));
    }
    let g = &r["generator_loop"];
    let pc = |k: &str| 100.0 * g[k].as_f64().unwrap_or(0.0);
    println!(
        "  generator loop: busy {:.1} % idle {:.1} % stalled {:.1} % -> own ceiling ~{:.0} {}/s \
         (busy: received or built frames; idle: polled nothing; stalled: descheduled > 200 us; \
         busy near 100 % = the generator set the rate)",
        pc("busy_fraction"),
        pc("idle_fraction"),
        pc("stalled_fraction"),
        g["capacity_per_s"].as_f64().unwrap_or(0.0),
        g["unit"].as_str().unwrap_or(""),
    );
    let gc = &r["gateway_cycles"];
    if let Some(cpp) = gc["cycles_per_packet"].as_f64() {
        println!(
            "  gateway: {cpp:.1} cycles/packet over its busy polls in the measured interval ({} cycles, {} packets, from {})",
            gc["busy_cycles"],
            gc["busy_packets"],
            gc["source"].as_str().unwrap_or(""),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_time_tells_busy_idle_and_stalled_apart() {
        let mut l = LoopTime::default();
        l.add(100, true, 1000);
        l.add(300, false, 1000);
        l.add(5000, true, 1000);
        l.add(5000, false, 1000);
        assert_eq!((l.busy, l.idle, l.stalled, l.iterations), (100, 300, 10_000, 4));
        // 50 units over 100 busy cycles at 1000 Hz: 500 per second of busy time.
        let j = l.json(1000, 50, "connections");
        assert_eq!(j["capacity_per_s"].as_f64(), Some(500.0));
        assert!((j["busy_fraction"].as_f64().unwrap() - 100.0 / 10_400.0).abs() < 1e-12);
        assert_eq!(LoopTime::default().json(1000, 0, "x")["capacity_per_s"], serde_json::Value::Null);
    }

    #[test]
    fn rates_are_max_or_a_positive_number() {
        assert_eq!(per_second("max", "--conn-rate"), Ok(0));
        assert_eq!(per_second("25000", "--conn-rate"), Ok(25_000));
        assert_eq!(per_second("1e6", "--flood-rate"), Ok(1_000_000));
        assert!(per_second("0", "--conn-rate").unwrap_err().starts_with("--conn-rate 0"));
        assert!(per_second("fast", "--flood-rate").unwrap_err().starts_with("--flood-rate fast"));
    }

    #[test]
    fn snapshots_subtract_every_counter() {
        let mut a = Snap::default();
        a.c.tx = [10, 20];
        a.tcp = TcpStats { started: 9, completed: 7, failed: 2, timed_out: 1, rst: 1, late: 3 };
        a.flood = FloodStats { syns: 100, synacks: 90, rsts: 1 };
        let mut b = a.clone();
        b.c.tx = [15, 21];
        b.tcp.completed = 10;
        b.tcp.late = 4;
        b.flood.synacks = 95;
        let d = b.since(&a);
        assert_eq!(d.c.tx, [5, 1]);
        assert_eq!((d.tcp.completed, d.tcp.late, d.tcp.started), (3, 1, 0));
        assert_eq!((d.flood.synacks, d.flood.syns), (5, 0));
    }
}
