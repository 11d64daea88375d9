//! `PortReader` on real DPDK ports (the ring PMD, in this process): link state and counters read
//! from another thread match the traffic sent, and a reader outliving its port answers ENODEV.
//! One test: the EAL is initialised once per process (`--no-huge`: no hugepages needed).
use dpdk_sys::{ring_pair, Eal, Errno, Mempool, Port, PortConf};

#[test]
fn a_reader_on_another_thread_sees_link_and_counters_then_enodev() {
    let args: Vec<String> = [
        "port_reader",
        "-l",
        "0",
        "--no-pci",
        "--no-telemetry",
        "--no-huge",
        "-m",
        "128",
        "--log-level=*:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--file-prefix={}", prefix())])
    .collect();
    let eal = Eal::init(&args).expect("EAL with --no-huge");
    let pool = Mempool::pktmbuf("port_reader", 1023, 0, 2048 + 128, 0).expect("mbuf pool");
    let (a, b) = ring_pair("pra", "prb", 1, 256, 0).expect("ring pair");
    let conf =
        PortConf { rx_queues: 1, tx_queues: 1, rx_desc: 256, tx_desc: 256, mtu: None, promiscuous: false };
    let mut pa = Port::by_name(&a).expect("port a");
    let mut pb = Port::by_name(&b).expect("port b");
    let mut qa = pa.configure(&conf, &pool).expect("configure a");
    let mut qb = pb.configure(&conf, &pool).expect("configure b");
    pa.start().expect("start a");
    pb.start().expect("start b");
    let (mut ra, mut rb) = (pa.reader(), pb.reader());

    // 8 frames of 60 bytes from a to b.
    let mut frames: Vec<_> = (0..8)
        .map(|_| {
            let mut m = pool.alloc().expect("an mbuf");
            assert!(m.append(60));
            m
        })
        .collect();
    assert_eq!(qa[0].1.tx_burst(&mut frames), 8);
    let mut got = Vec::with_capacity(32);
    assert_eq!(qb[0].0.rx_burst(&mut got), 8);
    drop(got);

    // Read from another thread, as rvsd's control thread does while workers poll.
    let (link, sa, sb) = std::thread::scope(|s| {
        s.spawn(|| (rb.link().expect("link"), ra.stats().expect("stats a"), rb.stats().expect("stats b")))
            .join()
            .unwrap()
    });
    assert!(link.up, "{link:?}");
    assert_eq!((sa.opackets, sb.ipackets), (8, 8), "{sa:?} {sb:?}");
    // (The ring PMD of DPDK 22.11 counts packets, not bytes.)
    assert_eq!(pb.stats().expect("stats through the port").ipackets, 8);

    // The reader never keeps a port from stopping; once the port is gone it says so.
    qa.clear();
    qb.clear();
    pb.stop().expect("a reader does not hold the port");
    drop(pb);
    assert_eq!(rb.link().unwrap_err().errno, Errno::NoDevice);
    assert_eq!(rb.stats().unwrap_err().errno, Errno::NoDevice);
    pa.stop().expect("stop a");
    drop(pa);
    drop(pool);
    drop(eal);
    // The EAL leaves its runtime directory (config, sockets) behind; this run's is ours to remove.
    let runtime = std::env::var("XDG_RUNTIME_DIR").ok().filter(|_| !is_root());
    let dir = runtime.map(|r| format!("{r}/dpdk")).unwrap_or_else(|| "/var/run/dpdk".into());
    let _ = std::fs::remove_dir_all(format!("{dir}/{}", prefix()));
}

fn prefix() -> String {
    format!("rvs-port-reader-{}", std::process::id())
}

/// The EAL puts a root process's runtime directory under /var/run/dpdk.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}
