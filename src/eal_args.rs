//! Builds the EAL command line from the config, so DPDK sees exactly the ports and lcores the config
//! names and nothing else (no PCI scan when no PCI port is configured, no shared runtime files).
use rvs_control::config::{parse_device, Config, DeviceKind, HugepageMode};

/// Facts about the machine that decide the hugepage fallback.
#[derive(Debug, Clone, Copy)]
pub struct HugepageState {
    pub free_pages: u64,
    pub mounted: bool,
}

impl HugepageState {
    pub fn read() -> HugepageState {
        let free_pages = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("HugePages_Free:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
            })
            .unwrap_or(0);
        let mounted = std::fs::read_to_string("/proc/mounts")
            .map(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")))
            .unwrap_or(false);
        HugepageState { free_pages, mounted }
    }

    pub fn usable(&self) -> bool {
        self.mounted && self.free_pages >= 64
    }
}

/// The EAL argv (argv[0] included) and whether hugepages are used.
pub fn build(cfg: &Config, huge: HugepageState, pid: u32) -> (Vec<String>, bool) {
    let mut a = vec!["rvsd".to_owned()];
    let w = &cfg.workers;
    if w.cpus.is_empty() && w.main_cpu.is_none() {
        let mut lcores = vec![w.main_lcore];
        lcores.extend(w.lcores.iter().copied());
        a.push("-l".into());
        a.push(lcores.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(","));
    } else {
        // lcore@cpu: several lcores may share a CPU (a small test machine).
        let mut map = vec![format!("{}@{}", w.main_lcore, w.main_cpu())];
        map.extend(w.lcores.iter().enumerate().map(|(i, l)| format!("{l}@{}", w.cpu_of(i))));
        a.push(format!("--lcores={}", map.join(",")));
    }
    a.push("--main-lcore".into());
    a.push(cfg.workers.main_lcore.to_string());
    let prefix =
        if cfg.eal.file_prefix.is_empty() { format!("rvs-{pid}") } else { cfg.eal.file_prefix.clone() };
    a.push(format!("--file-prefix={prefix}"));
    let use_huge = match cfg.eal.hugepages {
        HugepageMode::On => true,
        HugepageMode::Off => false,
        HugepageMode::Auto => huge.usable(),
    };
    if cfg.eal.in_memory {
        // DPDK refuses --in-memory with --no-huge (which implies legacy memory); without
        // hugepages there are no hugepage files to keep anyway, so only the shared config goes.
        a.push(if use_huge { "--in-memory" } else { "--no-shconf" }.into());
    }
    a.push("--no-telemetry".into());
    if !use_huge {
        a.push("--no-huge".into());
        a.push("-m".into());
        a.push(cfg.eal.no_huge_memory_mb.to_string());
    }
    let mut any_pci = false;
    for p in &cfg.ports {
        match parse_device(&p.device) {
            Ok(DeviceKind::Pci(addr)) => {
                any_pci = true;
                a.push("-a".into());
                a.push(addr);
            }
            Ok(DeviceKind::Vdev { .. }) => {
                a.push("--vdev".into());
                a.push(p.device.trim().to_owned());
            }
            Err(_) => {} // validate() refused it already
        }
    }
    // The ports' kernel interfaces (the exception path), after the physical ports.
    for v in crate::kernel_if::vdev_args(cfg) {
        a.push("--vdev".into());
        a.push(v);
    }
    if !any_pci {
        a.push("--no-pci".into());
    }
    a.push(format!("--log-level={}", cfg.eal.log_level));
    a.extend(cfg.eal.args.iter().cloned());
    (a, use_huge)
}

/// The DPDK port name a configured device is registered under.
pub fn port_name(device: &str) -> Option<String> {
    match parse_device(device).ok()? {
        DeviceKind::Pci(a) => Some(a),
        DeviceKind::Vdev { name, .. } => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::from_toml(
            r#"
[workers]
main_lcore = 0
lcores = [1]
[[ports]]
name = "c"
device = "net_af_packet0,iface=a"
addr = "198.18.0.1/24"
"#,
        )
        .unwrap()
    }

    #[test]
    fn cpus_map_lcores_onto_cpus() {
        let mut c = cfg();
        c.workers.lcores = vec![1, 2];
        c.workers.cpus = vec![0, 1];
        let (a, _) = build(&c, HugepageState { free_pages: 1024, mounted: true }, 42);
        let s = a.join(" ");
        assert!(s.contains("--lcores=0@0,1@0,2@1 --main-lcore 0"), "{s}");
        assert!(!s.contains(" -l "), "{s}");
    }

    #[test]
    fn vdev_only_means_no_pci_scan_and_in_memory() {
        let (a, huge) = build(&cfg(), HugepageState { free_pages: 1024, mounted: true }, 42);
        assert!(huge);
        let s = a.join(" ");
        assert!(s.contains("-l 0,1 --main-lcore 0 --file-prefix=rvs-42 --in-memory"), "{s}");
        assert!(s.contains("--vdev net_af_packet0,iface=a"));
        assert!(s.contains("--no-pci"));
        assert!(!s.contains("--no-huge"));
    }

    #[test]
    fn falls_back_to_no_huge() {
        let (a, huge) = build(&cfg(), HugepageState { free_pages: 0, mounted: true }, 1);
        assert!(!huge);
        let s = a.join(" ");
        assert!(s.contains("--no-huge -m 512"), "{s}");
        // DPDK refuses --in-memory together with --no-huge.
        assert!(s.contains("--no-shconf") && !s.contains("--in-memory"), "{s}");
    }

    #[test]
    fn pci_ports_are_allow_listed() {
        let mut c = cfg();
        c.ports[0].device = "0000:03:00.0".into();
        let (a, _) = build(&c, HugepageState { free_pages: 0, mounted: false }, 1);
        let s = a.join(" ");
        assert!(s.contains("-a 0000:03:00.0") && !s.contains("--no-pci"), "{s}");
        assert_eq!(port_name("net_ring0").as_deref(), Some("net_ring0"));
    }
}
