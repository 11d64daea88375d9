//! The kernel side of the exception path: one DPDK `net_tap` port per DPDK port that names a
//! `kernel` interface, and the iproute2 commands that give that interface the port's identity.
//!
//! - The TAP is created by the EAL from `--vdev net_tap_rvsk<i>,iface=<ifname>` (see
//!   [`vdev_args`]). net_tap's devargs in DPDK 22.11 are `iface=`, `mac=fixed|xx:xx:...` and
//!   `remote=` (mirroring a kernel netdev's traffic with TC rules, not wanted here). `mac=` is
//!   read when the EAL probes the device, before the physical port's MAC is known (a PCI port's
//!   comes from the NIC), so rvsd sets the kernel interface's MAC with `ip link` instead; the
//!   PMD's own MAC is not used by the dataplane and the PMD does not filter on it.
//! - Offloads: net_tap opens its queues without `IFF_VNET_HDR` and never calls `TUNSETOFFLOAD`,
//!   so the kernel cannot hand it partial checksums or GSO frames: every frame it writes is
//!   complete, and every frame written to it is taken as is. Nothing to turn off.
//! - The TAP is the process's file descriptors (not persistent): it disappears when rvsd exits,
//!   also on `kill -9`, taking its addresses and routes with it.
//! - An `net_af_packet` port's interface stays a kernel interface: the kernel sees a copy of every
//!   frame the port receives, and would take those to the port address (now a local address on
//!   the TAP) a second time, around the rate limit, and answer ARP for it. So rvsd sets that
//!   interface's `rp_filter = 1` (its sources route via the TAP, so strict reverse-path filtering
//!   drops them) and `arp_ignore = 1` (it has no address of its own), and turns IPv6 off on it.
//!   A NIC bound to DPDK (vfio-pci) has no kernel side and needs none of this.
//! - These commands run once at start-up from the main thread, never on the fast path. Each
//!   failure is one error naming the interface and the command.
use std::net::Ipv4Addr;
use std::process::Command;
use std::str::FromStr;

use rvs_control::config::{parse_device, Cidr, Config, DeviceKind};

/// The DPDK device name of port `i`'s TAP.
pub fn vdev_name(i: usize) -> String {
    format!("net_tap_rvsk{i}")
}

/// `--vdev` arguments for every port with a kernel interface, in port order (the order their
/// DPDK ports are configured in, after the physical ports).
pub fn vdev_args(cfg: &Config) -> Vec<String> {
    cfg.ports
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.kernel.as_ref().map(|k| format!("{},iface={k}", vdev_name(i))))
        .collect()
}

/// Runs `ip ARGS`; an error names the interface and the whole command, with ip's own message.
fn ip(ifname: &str, args: &[&str]) -> Result<(), String> {
    let cmd = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("kernel interface {ifname}: cannot run `{cmd}`: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(format!("kernel interface {ifname}: `{cmd}` failed: {msg}"))
}

/// Writes `value` to `/proc/sys/<key>`; the error names the interface and the key.
fn sysctl(ifname: &str, key: &str, value: &str) -> Result<(), String> {
    std::fs::write(format!("/proc/sys/{key}"), value).map_err(|e| {
        format!("kernel interface {ifname}: cannot set {} = {value}: {e}", key.replace('/', "."))
    })
}

/// An af_packet port's own interface takes no IP traffic of the port's: see the module's notes.
fn quiet_af_packet(k: &str, device: &str) -> Result<(), String> {
    let Ok(DeviceKind::Vdev { driver, args, .. }) = parse_device(device) else { return Ok(()) };
    if driver != "net_af_packet" {
        return Ok(());
    }
    let Some((_, iface)) = args.iter().find(|(a, _)| a == "iface") else { return Ok(()) };
    sysctl(k, &format!("net/ipv4/conf/{iface}/rp_filter"), "1")?;
    sysctl(k, &format!("net/ipv4/conf/{iface}/arp_ignore"), "1")?;
    // IPv6 may be compiled out or the key absent: not needed then.
    let _ = sysctl(k, &format!("net/ipv6/conf/{iface}/disable_ipv6"), "1");
    tracing::info!(interface = k, af_packet = %iface, "af_packet interface: rp_filter=1, arp_ignore=1, no IPv6 (the kernel takes the port's traffic through the TAP only)");
    Ok(())
}

/// Gives port `i`'s kernel interface the port's MAC, MTU and address, sets it up, and adds the
/// config's routes whose next hop is on this port's subnet. A route the kernel has already
/// (another interface's, e.g. a management default route) is kept, with a warning.
pub fn configure(cfg: &Config, i: usize, mac: [u8; 6]) -> Result<(), String> {
    let p = &cfg.ports[i];
    let Some(k) = p.kernel.as_deref() else { return Ok(()) };
    let mac = rvs_dataplane::wire::EthernetAddress(mac).to_string();
    let mtu = p.mtu.to_string();
    quiet_af_packet(k, &p.device)?;
    ip(k, &["link", "set", "dev", k, "down"])?;
    ip(k, &["link", "set", "dev", k, "address", &mac, "mtu", &mtu])?;
    ip(k, &["addr", "replace", &p.addr, "dev", k])?;
    ip(k, &["link", "set", "dev", k, "up"])?;
    let subnet = Cidr::from_str(&p.addr).map_err(|m| format!("ports[{i}].addr: {m}"))?;
    for r in &cfg.routes {
        let Ok(via) = Ipv4Addr::from_str(&r.via) else { continue };
        if !subnet.contains(via) {
            continue;
        }
        let dst = if r.dst == "0.0.0.0/0" { "default" } else { r.dst.as_str() };
        match ip(k, &["route", "add", dst, "via", &r.via, "dev", k]) {
            Ok(()) => {}
            Err(e) if e.contains("File exists") => {
                tracing::warn!(interface = k, route = %r.dst, via = %r.via, "the kernel has this route already; kept");
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(interface = k, port = %p.name, %mac, addr = %p.addr, mtu = p.mtu, "kernel interface up");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdevs_follow_the_ports_with_kernel_interfaces() {
        let cfg = Config::from_toml(
            r#"
[workers]
lcores = [1]
[[ports]]
name = "a"
device = "net_af_packet0,iface=ga"
addr = "198.18.0.1/24"
[[ports]]
name = "b"
device = "net_af_packet1,iface=gb"
addr = "198.18.1.1/24"
kernel = "rvs-b"
"#,
        )
        .unwrap();
        assert_eq!(vdev_args(&cfg), vec!["net_tap_rvsk1,iface=rvs-b".to_owned()]);
        assert_eq!(rvs_control::setup::kernel_index(&cfg, 1), 2, "after both physical ports");
        let (argv, _) =
            crate::eal_args::build(&cfg, crate::eal_args::HugepageState { free_pages: 0, mounted: false }, 1);
        let v = argv.iter().position(|a| a == "net_tap_rvsk1,iface=rvs-b").expect("the TAP's --vdev");
        assert_eq!(argv[v - 1], "--vdev");
        let phys = argv.iter().position(|a| a == "net_af_packet1,iface=gb").unwrap();
        assert!(phys < v, "the TAP is probed after the physical ports");
    }
}
