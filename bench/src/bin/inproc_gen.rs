//! New TCP connections per second (scenario b) and the SYN flood (scenario c) run in-process: the
//! generator's engines against the real `Worker`, frames handed over in memory through
//! `Worker::process_burst` (bursts of 32, as rvsd's loop passes them). No NIC, no I/O, no DPDK: the
//! figures are the packet path's cost only, an upper bound for what rvsd can do, not a benchmark
//! of rvsd. Two figures per run: "loop" (generator + gateway on one core) and "gateway" (wall time
//! inside `Worker::process_burst`/`poll` only: the gateway's rate per core).
//!
//! `cargo run --release -p rvs-bench --bin inproc_gen -- [SCENARIO] [CONNS] [RUNS]`
//! SCENARIO: all (the default: new connections per second with a full handshake, request,
//! response and FIN, then cookie SYN-ACKs per second from SYNs to a SYN-proxied service), tcp,
//! tcp-toa, tcp-synproxy, tcp-synproxy-toa, synflood (SYNs instead of connections), synflood-mix
//! (tcp-synproxy alone and beside a flood taking half of every burst, alternated).
use std::process::exit;
use std::time::Instant;

use rvs_bench::gen::inproc::{InProc, Scenario};
use rvs_bench::gen::synflood::{SynFlood, WithFlood};
use rvs_bench::gen::tcp::TcpConnEngine;
use rvs_bench::gen::Engine;

const BURST: usize = 32;
const WINDOW: u32 = 1024;

fn scenario(synproxy: bool, toa: bool, conns: u64) -> Scenario {
    // Closed connections stay in TIME_WAIT for the whole run: the table holds them all, and four
    // local addresses keep each one's local ports unexhausted (under 64 Ki connections each).
    let max = (conns * 2).next_power_of_two().clamp(1 << 12, 1 << 24) as u32;
    Scenario { synproxy, toa, lips: 4, reals: 4, max_conns_per_worker: max }
}

struct Run {
    /// Units (connections or SYN-ACKs) per second, loop and gateway-only.
    loop_rate: f64,
    gw_rate: f64,
    flood_rate: f64,
}

fn check<E: Engine>(l: &InProc<E>, what: &str) {
    let c = l.engine.counters();
    if c.total_errors() != 0 || l.stats.accounting_gap() != 0 {
        eprintln!("inproc_gen: {what}: rewrite errors {:?}; gateway: {:?}", c.errors, l.stats.nonzero());
        exit(1);
    }
}

fn run_tcp(s: Scenario, conns: u64, flood_share: Option<f64>) -> Run {
    let legit = TcpConnEngine::new(s.tcp(WINDOW, conns)).unwrap_or_else(|e| {
        eprintln!("inproc_gen: {e}");
        exit(2)
    });
    let max_steps = (conns as usize / BURST + 1) * 100;
    // Only the loop is timed, not building the worker's preallocated tables.
    let (completed, flood_syns, gw, secs) = match flood_share {
        None => {
            let mut l = InProc::new(&s.setup(), legit, BURST);
            let t0 = Instant::now();
            l.run(max_steps, TcpConnEngine::done);
            let secs = t0.elapsed().as_secs_f64();
            check(&l, "tcp");
            (l.engine.stats().completed, 0, l.gateway_time, secs)
        }
        Some(share) => {
            let flood = SynFlood::new(s.flood(0)).expect("flood config");
            let mut l = InProc::new(&s.setup(), WithFlood::new(legit, flood, share), BURST);
            let t0 = Instant::now();
            l.run(max_steps, |e| e.legit.done());
            let secs = t0.elapsed().as_secs_f64();
            check(&l, "synflood-mix");
            if l.engine.flood.stats().synacks != l.engine.flood.stats().syns {
                eprintln!("inproc_gen: flood SYNs not all answered: {:?}", l.engine.flood.stats());
                exit(1);
            }
            (l.engine.legit.stats().completed, l.engine.flood.stats().syns, l.gateway_time, secs)
        }
    };
    if completed != conns {
        eprintln!("inproc_gen: {completed} of {conns} connections completed");
        exit(1);
    }
    Run {
        loop_rate: conns as f64 / secs,
        gw_rate: conns as f64 / gw.as_secs_f64(),
        flood_rate: flood_syns as f64 / secs,
    }
}

fn run_flood(s: Scenario, syns: u64) -> Run {
    let mut l = InProc::new(&s.setup(), SynFlood::new(s.flood(0)).expect("flood config"), BURST);
    let t0 = Instant::now();
    l.run(syns as usize / BURST, |_| false);
    let secs = t0.elapsed().as_secs_f64();
    check(&l, "synflood");
    let st = *l.engine.stats();
    if st.synacks != st.syns {
        eprintln!("inproc_gen: flood SYNs not all answered: {st:?}");
        exit(1);
    }
    Run {
        loop_rate: st.synacks as f64 / secs,
        gw_rate: st.synacks as f64 / l.gateway_time.as_secs_f64(),
        flood_rate: 0.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The two per-core figures of the issue: new connections per second and cookie SYN-ACKs per
/// second, each the median of `runs`.
fn all(n: u64, runs: usize) {
    let conns: Vec<Run> = (0..runs).map(|_| run_tcp(scenario(false, false, n), n, None)).collect();
    // A flood run is cheap per unit: more SYNs than connections keep it as long as a TCP run.
    let syns: Vec<Run> = (0..runs).map(|_| run_flood(scenario(true, false, n), 4 * n)).collect();
    for (what, rs, count) in [("new connections", &conns, n), ("cookie SYN-ACKs", &syns, 4 * n)] {
        println!(
            "inproc_gen all: {what} per second per core through Worker::process_burst (bursts of {BURST}), median of {runs} runs of {count}: gateway only {:.0}/s, loop (generator + gateway) {:.0}/s",
            median(rs.iter().map(|r| r.gw_rate).collect()),
            median(rs.iter().map(|r| r.loop_rate).collect()),
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "all".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    if name == "all" {
        return all(n, runs);
    }
    let (sp, toa) = match name.as_str() {
        "tcp" => (false, false),
        "tcp-toa" => (false, true),
        "tcp-synproxy" | "synflood" | "synflood-mix" => (true, false),
        "tcp-synproxy-toa" => (true, true),
        _ => {
            eprintln!(
                "inproc_gen: unknown scenario {name:?} (all, tcp, tcp-toa, tcp-synproxy, tcp-synproxy-toa, synflood, synflood-mix)"
            );
            exit(2);
        }
    };
    let s = scenario(sp, toa, n);
    let (mut lr, mut gr, mut base_lr, mut fr) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let r = match name.as_str() {
            "synflood" => run_flood(s, n),
            "synflood-mix" => {
                let b = run_tcp(s, n, None);
                base_lr.push(b.loop_rate);
                run_tcp(s, n, Some(0.5))
            }
            _ => run_tcp(s, n, None),
        };
        eprintln!(
            "run {}: loop {:.0}/s, gateway-only {:.0}/s{}",
            i + 1,
            r.loop_rate,
            r.gw_rate,
            if r.flood_rate > 0.0 {
                format!(", flood {:.0} SYN/s beside", r.flood_rate)
            } else {
                String::new()
            }
        );
        lr.push(r.loop_rate);
        gr.push(r.gw_rate);
        fr.push(r.flood_rate);
    }
    let unit = if name == "synflood" { "SYN-ACKs" } else { "connections" };
    println!(
        "inproc_gen {name}: {unit} per second, in-process on one core, NO I/O (no NIC, no DPDK): median of {runs} runs of {n}: loop (generator + gateway) {:.0}/s, gateway only {:.0}/s",
        median(lr.clone()),
        median(gr)
    );
    if name == "synflood-mix" {
        let (base, mixed) = (median(base_lr), median(lr));
        println!(
            "inproc_gen synflood-mix: legitimate connections/s beside a flood of {:.0} SYN/s (half of every burst): {:.0}/s vs {:.0}/s alone, ratio {:.2} (the flood shares the one core)",
            median(fr),
            mixed,
            base,
            mixed / base
        );
    }
}
