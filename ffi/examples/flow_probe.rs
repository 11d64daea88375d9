//! Asks real DPDK ports whether they can steer a LIP's replies to a worker's RX queue: for each
//! `--vdev` given, configures the port with two queue pairs and, with the first rule for queue 1
//! of an IPv4 LIP and then of an IPv6 LIP, calls `rte_flow_validate`, then `rte_flow_create`
//! (destroying what it got), then the start-up gate [`steering_supported`]. Prints one line per port and step, so it shows where each driver
//! says no; never crashes on a port without rte_flow.
//!
//! Usage (as root; scripts/flow_probe.sh runs it in a namespace with a veth for af_packet):
//!   flow_probe net_null0 net_ring0 'net_af_packet0,iface=veth0,qpairs=2'
//! The exit status is 0 when every port answered (supported or not), 1 when a port could not be
//! set up at all.
use std::net::{Ipv4Addr, Ipv6Addr};

use dpdk_sys::{steering_supported, Eal, Errno, Mempool, Port, PortConf, RuleAddr};
use rvs_dataplane::steer::{rules_for, FlowRuleSpec};

fn main() {
    let vdevs: Vec<String> = std::env::args().skip(1).collect();
    if vdevs.is_empty() {
        eprintln!("usage: flow_probe VDEV_ARGS... (e.g. net_null0 net_ring0)");
        std::process::exit(2);
    }
    let prefix = format!("--file-prefix=rvs-flow-probe-{}", std::process::id());
    let mut args: Vec<String> = [
        "flow_probe",
        "-l",
        "0",
        "--no-pci",
        "--no-telemetry",
        "--no-huge",
        "-m",
        "256",
        "--log-level=*:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(prefix);
    for v in &vdevs {
        args.push(format!("--vdev={v}"));
    }
    let eal = match Eal::init(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("flow_probe: {e}");
            std::process::exit(1);
        }
    };
    let pool = Mempool::pktmbuf("flow_probe", 4095, 64, 2048 + 128, 0).expect("mbuf pool");
    let mut failed = false;
    // Two workers: rule [1] is TCP residue 1 -> queue 1, which exercises the queue index check.
    let sample = rules_for(&[Ipv4Addr::new(198, 18, 0, 10)], 2)[1];
    let sample6 = rules_for(&[Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10)], 2)[1];
    for v in &vdevs {
        let name = v.split(',').next().unwrap_or(v);
        match probe(name, &pool, &sample, &sample6) {
            Ok(()) => {}
            Err(e) => {
                println!("{name}: set-up failed: {e}");
                failed = true;
            }
        }
    }
    drop(pool);
    drop(eal);
    std::process::exit(i32::from(failed));
}

fn probe(
    name: &str,
    pool: &Mempool,
    sample: &FlowRuleSpec<Ipv4Addr>,
    sample6: &FlowRuleSpec<Ipv6Addr>,
) -> dpdk_sys::Result<()> {
    let mut port = Port::by_name(name)?;
    let info = port.info()?;
    let queues = info.max_rx_queues.min(info.max_tx_queues).min(2);
    let conf = PortConf {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: 256,
        tx_desc: 256,
        mtu: None,
        promiscuous: false,
    };
    let handles = port.configure(&conf, pool)?;
    println!("{name}: driver {}, {queues} queue pairs", info.driver);
    try_rule(name, &port, sample);
    try_rule(name, &port, sample6);
    match port.flow_flush() {
        Ok(()) => println!("{name}: flush: ok"),
        Err(e) if matches!(e.errno, Errno::NotImplemented | Errno::NotSupported) => {
            println!("{name}: flush: not supported ({:?})", e.errno)
        }
        Err(e) => println!("{name}: flush: failed: {e}"),
    }
    drop(handles);
    Ok(())
}

/// The two halves of the gate separately, then the gate, to record where each driver says no.
fn try_rule<A: RuleAddr>(name: &str, port: &Port, sample: &FlowRuleSpec<A>) {
    println!("{name}: sample rule `{sample}`");
    match port.flow_validate(sample) {
        Ok(()) => println!("{name}: validate: accepted"),
        Err(e) => println!("{name}: validate: refused ({:?}, errno {}): {e}", e.errno, e.errno.raw()),
    }
    match port.flow_create(sample) {
        Ok(h) => {
            println!("{name}: create: installed");
            match port.flow_destroy(h) {
                Ok(()) => println!("{name}: destroy: ok"),
                Err(e) => println!("{name}: destroy: failed: {e}"),
            }
        }
        Err(e) => println!("{name}: create: refused ({:?}, errno {}): {e}", e.errno, e.errno.raw()),
    }
    match steering_supported(port, sample) {
        Ok(()) => println!("{name}: steering_supported: yes -> flow rules"),
        Err(e) => println!("{name}: steering_supported: no ({:?}) -> software hand-off", e.errno),
    }
}
