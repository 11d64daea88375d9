//! Checks of the config against this machine, before DPDK starts: every error names the field, so
//! a bad config never reaches an EAL abort.
use rvs_control::config::{parse_device, Config, ConfigError, DeviceKind};

/// CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status).
pub fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or("0")
        .to_owned();
    parse_cpu_list(&list)
}

pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    v.push(a);
                }
            }
        }
    }
    v
}

fn err(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), msg: msg.into() }
}

/// Lcores exist and are ours; kernel interfaces named by af_packet/af_xdp exist; the ports' own
/// kernel interfaces (the exception path's TAPs) do not exist yet.
pub fn check(cfg: &Config) -> Result<(), ConfigError> {
    let cpus = allowed_cpus();
    let main = cfg.workers.main_cpu();
    if !cpus.contains(&main) {
        let f = if cfg.workers.main_cpu.is_some() { "workers.main_cpu" } else { "workers.main_lcore" };
        return Err(err(f, format!("CPU {main} does not exist here (allowed CPUs: {cpus:?})")));
    }
    for i in 0..cfg.workers.lcores.len() {
        let c = cfg.workers.cpu_of(i);
        if !cpus.contains(&c) {
            let f = if cfg.workers.cpus.is_empty() { "workers.lcores" } else { "workers.cpus" };
            return Err(err(
                format!("{f}[{i}]"),
                format!("CPU {c} does not exist here (allowed CPUs: {cpus:?})"),
            ));
        }
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        if let Ok(DeviceKind::Vdev { driver, args, .. }) = parse_device(&p.device) {
            if driver == "net_af_packet" || driver == "net_af_xdp" {
                let iface = args.iter().find(|(k, _)| k == "iface").map(|(_, v)| v.as_str());
                match iface {
                    None => {
                        return Err(err(format!("ports[{i}].device"), format!("{driver} needs iface=NAME")))
                    }
                    Some(n) if !std::path::Path::new(&format!("/sys/class/net/{n}")).exists() => {
                        return Err(err(
                            format!("ports[{i}].device"),
                            format!("interface \"{n}\" does not exist in this network namespace"),
                        ))
                    }
                    _ => {}
                }
            }
        }
        // The TAP is created, not adopted: an interface of that name would be another's.
        if let Some(k) = &p.kernel {
            if std::path::Path::new(&format!("/sys/class/net/{k}")).exists() {
                return Err(err(
                    format!("ports[{i}].kernel"),
                    format!("interface \"{k}\" exists already in this network namespace"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert!(allowed_cpus().contains(&0) || !allowed_cpus().is_empty());
    }
}
