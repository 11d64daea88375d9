//! rvsd: the rvs daemon.
//!
//! Threads: the main thread initialises DPDK, configures ports and launches one poll-mode worker per
//! configured lcore; a control thread serves the Unix-socket API; the main thread then waits for a
//! signal, stops the workers, prints final counters and releases the ports. See docs/architecture.md.
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use dpdk_sys::{Eal, Mempool, Port, PortConf};
use rvs_control::config::Config;
use rvs_control::state::ControlState;
use rvs_dataplane::stats::{Gauge, Stats};
use rvs_dataplane::steer::SteerMode;

/// Connection tables of millions of entries on 2 MiB pages where the kernel allows (fewer TLB
/// misses per lookup); see ffi/src/alloc.rs.
#[global_allocator]
static ALLOC: dpdk_sys::alloc::HugePageAdvice = dpdk_sys::alloc::HugePageAdvice;

mod adopt;
mod control;
mod eal_args;
mod kernel_if;
mod machine;
mod steering;

use rvsd::cli::Cli;
use rvsd::worker;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvsd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// 16 random bytes for the SYN-cookie secret; each worker derives its rotations from it.
fn random_key() -> std::io::Result<[u8; 16]> {
    use std::io::Read;
    let mut k = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    Ok(k)
}

/// Reads the TOML and, when one is named, the keepalived.conf supplying the services; returns the
/// configuration and the keepalived file's warnings.
fn load(cli: &Cli) -> Result<(Config, Vec<String>), String> {
    let text = std::fs::read_to_string(&cli.config)
        .map_err(|e| format!("cannot read config {}: {e}", cli.config.display()))?;
    let mut cfg = Config::from_toml(&text).map_err(|e| format!("config error: {e}"))?;
    let mut ka_warnings = Vec::new();
    // A relative `keepalived` path in the TOML is relative to the TOML's directory.
    let ka = cli.keepalived.clone().or_else(|| {
        cfg.keepalived.as_ref().map(|k| cli.config.parent().unwrap_or(std::path::Path::new(".")).join(k))
    });
    if let Some(path) = ka {
        ka_warnings = rvs_control::keepalived::apply(&mut cfg, &path.to_string_lossy())
            .map_err(|e| format!("config error: {e}"))?;
    }
    if let Some(s) = &cli.socket {
        cfg.control.socket = s.clone();
    }
    cfg.eal.args.extend(cli.eal.iter().cloned());
    cfg.validate().map_err(|e| format!("config error: {e}"))?;
    machine::check(&cfg).map_err(|e| format!("config error: {e}"))?;
    Ok((cfg, ka_warnings))
}

fn run(cli: Cli) -> Result<(), String> {
    let (cfg, ka_warnings) = load(&cli)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.control.log)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for w in ka_warnings {
        tracing::warn!("keepalived: {w}");
    }
    for w in cfg.warnings() {
        tracing::warn!("config: {w}");
    }
    if cli.check {
        println!("config ok");
        return Ok(());
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())
        .map_err(|e| format!("cannot install SIGTERM handler: {e}"))?;

    // Before DPDK starts: a metrics address rvsd cannot use stops it here, with nothing to undo.
    let metrics_listener = control::bind_metrics(&cfg.metrics)?;
    // Also before: the announcement table is taken over (an earlier run's routes deleted), so a
    // restarted gateway draws no traffic until its workers run.
    let announcer = rvs_control::announce::Announcer::from_config(&cfg.announce)
        .map_err(|e| format!("announce.table: {e}"))?;

    let (eal_argv, huge) = eal_args::build(&cfg, eal_args::HugepageState::read(), std::process::id());
    tracing::info!(hugepages = huge, args = %eal_argv.join(" "), "starting EAL");
    let eal = Eal::init(&eal_argv).map_err(|e| format!("DPDK EAL initialisation failed: {e}"))?;

    let nworkers = cfg.workers.lcores.len() as u16;
    // One packet pool per NUMA socket that runs a worker: RX queue w fills from worker w's socket.
    let sockets: Vec<u32> = cfg.workers.lcores.iter().map(|l| eal.lcore_socket(*l)).collect();
    let mut pools: Vec<(u32, Arc<Mempool>)> = Vec::new();
    for &sock in &sockets {
        if pools.iter().any(|(s, _)| *s == sock) {
            continue;
        }
        let p = Mempool::pktmbuf(
            &format!("rvs_pkt_s{sock}"),
            cfg.workers.mbufs,
            cfg.workers.mbuf_cache,
            2048 + 128,
            sock as i32,
        )
        .map_err(|e| format!("workers.mbufs: cannot create the packet pool on socket {sock}: {e}"))?;
        tracing::info!(socket = sock, mbufs = cfg.workers.mbufs, "packet pool");
        pools.push((sock, Arc::new(p)));
    }
    let pool_of = |w: usize| pools.iter().find(|(s, _)| *s == sockets[w]).map(|(_, p)| p.clone()).unwrap();
    let worker_pools: Vec<Arc<Mempool>> = (0..nworkers as usize).map(pool_of).collect();

    let mut ports = Vec::new();
    let mut queues: Vec<Vec<_>> = (0..nworkers).map(|_| Vec::new()).collect();
    let mut macs = Vec::new();
    let mut drivers = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let name = eal_args::port_name(&pc.device).unwrap_or_default();
        let mut port = Port::by_name(&name).map_err(|_| {
            format!(
                "config error: ports[{i}].device: device \"{}\" did not come up (see the DPDK log above)",
                pc.device
            )
        })?;
        let info = port.info().map_err(|e| format!("ports[{i}]: {e}"))?;
        let conf = PortConf {
            rx_queues: nworkers,
            tx_queues: nworkers,
            rx_desc: cfg.workers.rx_desc,
            tx_desc: cfg.workers.tx_desc,
            mtu: None,
            promiscuous: true,
        };
        let qpools: Vec<&Mempool> = worker_pools.iter().map(|p| &**p).collect();
        let qs =
            port.configure_pools(&conf, &qpools).map_err(|e| format!("ports[{i}] ({}): {e}", info.driver))?;
        let mac = port.mac().map_err(|e| format!("ports[{i}]: {e}"))?;
        for (w, q) in qs.into_iter().enumerate() {
            queues[w].push(q);
        }
        macs.push(mac);
        drivers.push(info.driver);
        ports.push(port);
    }
    // The kernel interfaces (TAP ports), after the physical ports and in their order: worker-side
    // port `ports.len() + j` is the j-th of them (rvs_control::setup::kernel_index).
    let mut taps: Vec<(usize, Port)> = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let Some(k) = &pc.kernel else { continue };
        let mut port = Port::by_name(&kernel_if::vdev_name(i)).map_err(|_| {
            format!(
                "config error: ports[{i}].kernel: the TAP \"{k}\" did not come up (see the DPDK log above)"
            )
        })?;
        let conf = PortConf {
            rx_queues: nworkers,
            tx_queues: nworkers,
            rx_desc: cfg.workers.rx_desc,
            tx_desc: cfg.workers.tx_desc,
            mtu: None,
            // The kernel side takes only what is addressed to it; no need to see the rest.
            promiscuous: false,
        };
        let qpools: Vec<&Mempool> = worker_pools.iter().map(|p| &**p).collect();
        let qs = port
            .configure_pools(&conf, &qpools)
            .map_err(|e| format!("ports[{i}].kernel ({k}, net_tap, {nworkers} queue pairs): {e}"))?;
        for (w, q) in qs.into_iter().enumerate() {
            queues[w].push(q);
        }
        taps.push((i, port));
    }
    // Flow rules are tried on configured ports before they start, so no packet meets a trial rule.
    let steer =
        steering::choose(cfg.workers.steering, &ports, nworkers, steering::Samples::from_config(&cfg))?;
    let steer_mode = steer.mode;
    for (i, port) in ports.iter_mut().enumerate() {
        port.start().map_err(|e| format!("ports[{i}] ({}): {e}", drivers[i]))?;
        tracing::info!(
            port = %cfg.ports[i].name, device = %cfg.ports[i].device, driver = %drivers[i],
            mac = %rvs_dataplane::wire::EthernetAddress(macs[i]), queues = nworkers, "port up"
        );
    }
    for (i, tap) in taps.iter_mut() {
        let k = cfg.ports[*i].kernel.as_deref().unwrap_or_default();
        tap.start().map_err(|e| format!("ports[{i}].kernel ({k}): {e}"))?;
        kernel_if::configure(&cfg, *i, macs[*i])?;
    }
    // What `list_ports` reports that does not change while rvsd runs; link state and counters are
    // read on request by the control thread through each port's reader.
    let port_entries: Vec<control::PortEntry> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| control::PortEntry {
            fixed: rvs_control::api::PortInfo {
                name: cfg.ports[i].name.clone(),
                device: cfg.ports[i].device.clone(),
                driver: drivers[i].clone(),
                mac: rvs_dataplane::wire::EthernetAddress(macs[i]).to_string(),
                addr: cfg.ports[i].addr.clone(),
                addr6: cfg.ports[i].addr6.clone(),
                mtu: port.mtu().unwrap_or(cfg.ports[i].mtu),
                rx_queues: nworkers,
                tx_queues: nworkers,
                link: None,
                stats: None,
            },
            reader: port.reader(),
        })
        .collect();

    let state = ControlState::new(cfg.clone());
    let mut setup = state.setup(&macs).map_err(|e| format!("config error: {e}"))?;
    setup.conn.synproxy.key =
        random_key().map_err(|e| format!("cannot read /dev/urandom for the SYN-cookie secret: {e}"))?;
    let setup = Arc::new(setup);
    let stats: Vec<Arc<Stats>> = (0..nworkers).map(|_| Arc::new(Stats::default())).collect();
    let mut links = Vec::new();

    let mut flow_rules = steering::FlowRules::new(steer.rules_v6);
    if steer_mode == SteerMode::FlowRules {
        flow_rules.update(&ports, steering::lips(&setup), nworkers);
    }
    // Software hand-off, always there with several workers (with flow rules, as a safety net):
    // one single-producer/single-consumer ring per ordered pair of workers.
    let mut ring_tx: Vec<Vec<Option<dpdk_sys::RingTx>>> =
        (0..nworkers).map(|_| (0..nworkers).map(|_| None).collect()).collect();
    let mut ring_rx: Vec<Vec<dpdk_sys::RingRx>> = (0..nworkers).map(|_| Vec::new()).collect();
    for (from, row) in ring_tx.iter_mut().enumerate() {
        for (to, slot) in row.iter_mut().enumerate() {
            if from == to {
                continue;
            }
            let (t, r) = dpdk_sys::ring_spsc(
                &format!("rvs_h{from}_{to}"),
                cfg.workers.handoff_ring,
                sockets[to] as i32,
            )
            .map_err(|e| format!("workers.handoff_ring: cannot create ring {from}->{to}: {e}"))?;
            *slot = Some(t);
            ring_rx[to].push(r);
        }
    }
    let worker_stop = Arc::new(AtomicBool::new(false));
    let mut launched = Vec::new();
    let rings = ring_tx.into_iter().zip(ring_rx);
    for (w, (qs, (to, from))) in queues.into_iter().zip(rings).enumerate() {
        let lcore = cfg.workers.lcores[w];
        let (tx, rx) = crossbeam::channel::bounded(64);
        let applied = Arc::new(AtomicU64::new(0));
        links.push(control::WorkerLink { commands: tx, applied: applied.clone() });
        let ctx = worker::WorkerCtx {
            index: w as u16,
            workers: nworkers,
            queues: qs,
            handoff_to: to,
            handoff_from: from,
            pool: worker_pools[w].clone(),
            stats: stats[w].clone(),
            setup: setup.clone(),
            stop: worker_stop.clone(),
            burst: cfg.workers.burst as usize,
            idle_sleep_us: cfg.workers.idle_sleep_us,
            prefetch: cfg.workers.prefetch,
            commands: rx,
            applied,
        };
        eal.launch(lcore, move || worker::run(ctx)).map_err(|e| format!("workers.lcores[{w}]: {e}"))?;
        launched.push(lcore);
        tracing::info!(worker = w, lcore, cpu = cfg.workers.cpu_of(w), "worker started");
    }

    let drain_links = links.clone();
    let (lips_tx, lips_rx) = crossbeam::channel::unbounded();
    let shared = Arc::new(control::Shared::new(
        state,
        links,
        stats.clone(),
        macs.clone(),
        steer_mode.as_str(),
        (steer_mode == SteerMode::FlowRules).then_some(lips_tx),
        port_entries,
    ));
    let control = control::spawn(&cfg.control, &cfg.metrics, metrics_listener, shared.clone(), stop.clone())?;
    if let Some(a) = announcer {
        shared.start_announcing(a)?;
    }
    shared.start_sync()?;

    println!("rvsd: running with {} worker(s) on {} port(s); Ctrl-C to stop", nworkers, ports.len());
    // SIGINT stops at once (also in the middle of a drain). SIGTERM drains: workers refuse new
    // connections and keep forwarding established ones until none is left or the grace period ends.
    let mut drain_until: Option<Instant> = None;
    // SIGTERM first withdraws every VIP and keeps accepting new connections until this instant,
    // so the routers move new clients elsewhere before any is refused; then the drain starts.
    let mut withdraw_until: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        // The control thread sends the LIP set after each published change (flow-rule mode only).
        while let Ok(lips) = lips_rx.try_recv() {
            flow_rules.update(&ports, lips, nworkers);
        }
        if term.load(Ordering::SeqCst) && withdraw_until.is_none() {
            let withdrawn = shared.withdraw_all();
            let wait = if cfg.announce.enabled() { cfg.announce.withdraw_wait_ms } else { 0 };
            withdraw_until = Some(Instant::now() + Duration::from_millis(u64::from(wait)));
            if cfg.announce.enabled() {
                tracing::info!(
                    withdrawn,
                    wait_ms = wait,
                    "SIGTERM: VIPs withdrawn; still accepting new connections until the routers have moved away"
                );
            }
        }
        let withdraw_done = withdraw_until.is_some_and(|t| Instant::now() >= t);
        if withdraw_done && drain_until.is_none() {
            for l in &drain_links {
                let _ = l.commands.send_timeout(worker::Command::Drain, Duration::from_secs(1));
            }
            let grace = Duration::from_secs(cfg.conn.drain_grace_s as u64);
            drain_until = Some(Instant::now() + grace);
            tracing::info!(
                grace_s = cfg.conn.drain_grace_s,
                "SIGTERM: draining, new connections are refused"
            );
            // Let every worker adopt the drain and publish its gauges before looking at them.
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(until) = drain_until {
            let active: u64 = stats.iter().map(|s| s.gauge(Gauge::ConnsActive)).sum();
            if active == 0 {
                tracing::info!("drained: no established connection left");
                break;
            }
            if Instant::now() >= until {
                tracing::info!(active, "grace period over");
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    // SIGINT skips the SIGTERM steps: the routes go now, before the workers stop.
    let withdrawn = shared.withdraw_all();
    if withdrawn > 0 {
        tracing::info!(withdrawn, "VIPs withdrawn");
    }
    tracing::info!("stopping");
    shared.stop_sync();
    worker_stop.store(true, Ordering::SeqCst);
    for lcore in &launched {
        eal.wait(*lcore);
    }
    control.join();
    // A capture still running keeps what its queue holds: written and flushed before exit.
    shared.finish_capture();

    println!("rvsd: final counters");
    for (i, p) in ports.iter().enumerate() {
        if let Ok(s) = p.stats() {
            println!(
                "  port {} ({}): rx {} pkts {} bytes, tx {} pkts {} bytes, missed {}, rx_errors {}, tx_errors {}, rx_nombuf {}",
                i, cfg.ports[i].name, s.ipackets, s.ibytes, s.opackets, s.obytes, s.imissed, s.ierrors, s.oerrors,
                s.rx_nombuf
            );
        }
    }
    for (w, s) in stats.iter().enumerate() {
        let line: Vec<String> = s.nonzero().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  worker {w}: {}",
            if line.is_empty() { "(no traffic)".to_owned() } else { line.join(" ") }
        );
    }
    flow_rules.clear(&ports);
    for (i, tap) in &taps {
        if let Ok(s) = tap.stats() {
            println!(
                "  kernel interface {} (port {}): rx {} pkts, tx {} pkts, tx_errors {}",
                cfg.ports[*i].kernel.as_deref().unwrap_or_default(),
                cfg.ports[*i].name,
                s.ipackets,
                s.opackets,
                s.oerrors
            );
        }
    }
    for p in taps.iter_mut().map(|(_, p)| p).chain(ports.iter_mut()) {
        if let Err(e) = p.stop() {
            tracing::warn!(port = p.name(), error = %e, "stop failed");
        }
    }
    drop(taps);
    drop(ports);
    drop(worker_pools);
    drop(pools);
    drop(eal);
    Ok(())
}
