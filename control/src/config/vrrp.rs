//! `[vrrp]`: address adoption for VRRP failover (docs/ha.md, "VRRP failover").
//!
//! keepalived, in rvsd's namespace, moves the VIPs and local addresses between the gateways' kernel
//! interfaces; with `adopt = true` rvsd claims a VIP or local address in ARP only while it is on
//! one of the watched interfaces, and announces it with gratuitous ARP when it appears.
use serde::{Deserialize, Serialize};

use super::{err, ConfigError, PortConfig};

/// Named defaults, documented in docs/config.md.
pub mod defaults {
    /// Off: rvsd claims every VIP and local address, as without VRRP.
    pub const ADOPT: bool = false;
    /// How often the kernel's addresses are read (`ip -j -4 addr show`): a takeover is seen at
    /// most this much after keepalived adds the address (keepalived's own detection with 100 ms
    /// adverts is about 3.5 adverts; 50 ms adds little to it and costs 20 `ip` runs a second).
    pub const POLL_MS: u32 = 50;
    /// Gratuitous ARPs per newly adopted address and port (keepalived's `vrrp_garp_master_repeat`
    /// default is 5; the kernel interface sends keepalived's own too).
    pub const GARP_COUNT: u32 = 3;
    /// Time between them.
    pub const GARP_INTERVAL_MS: u32 = 100;
}

/// Polling bounds: under 10 ms the `ip` runs would cost a noticeable share of a CPU; over 10 s a
/// takeover would wait that long for ARP.
pub const POLL_MS_RANGE: (u32, u32) = (10, 10_000);
/// At most this many announcements per address: a bound on what one takeover sends.
pub const MAX_GARP_COUNT: u32 = 16;
pub const GARP_INTERVAL_MS_RANGE: (u32, u32) = (10, 10_000);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VrrpConfig {
    /// Claim VIPs and local addresses in ARP only while keepalived has put them on a watched
    /// kernel interface.
    pub adopt: bool,
    /// Milliseconds between two reads of the kernel's addresses.
    pub poll_ms: u32,
    /// Gratuitous ARPs sent for each newly adopted address on its port (0: none).
    pub garp_count: u32,
    pub garp_interval_ms: u32,
    /// The kernel interfaces watched, each for a port (by name): where keepalived puts that
    /// port's virtual addresses. Empty: every port's `kernel` interface (the exception path's
    /// TAP), the usual set-up.
    pub interfaces: Vec<VrrpInterface>,
}

/// A kernel interface whose addresses count as adopted on `port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInterface {
    /// A port's `name`.
    pub port: String,
    /// The kernel interface keepalived's `virtual_ipaddress` puts the port's addresses on.
    pub ifname: String,
}

impl Default for VrrpConfig {
    fn default() -> Self {
        VrrpConfig {
            adopt: defaults::ADOPT,
            poll_ms: defaults::POLL_MS,
            garp_count: defaults::GARP_COUNT,
            garp_interval_ms: defaults::GARP_INTERVAL_MS,
            interfaces: Vec::new(),
        }
    }
}

impl VrrpConfig {
    /// (port index, kernel interface) of every watched interface: `interfaces` when given, else
    /// each port's `kernel` interface. Assumes a validated config.
    pub fn watched(&self, ports: &[PortConfig]) -> Vec<(usize, String)> {
        if self.interfaces.is_empty() {
            return ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.kernel.as_ref().map(|k| (i, k.clone())))
                .collect();
        }
        self.interfaces
            .iter()
            .filter_map(|w| ports.iter().position(|p| p.name == w.port).map(|i| (i, w.ifname.clone())))
            .collect()
    }

    pub(super) fn validate(&self, ports: &[PortConfig]) -> Result<(), ConfigError> {
        let range = |field: &str, v: u32, (lo, hi): (u32, u32)| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(err(format!("vrrp.{field}"), format!("{v} is outside {lo}..={hi}")))
            }
        };
        range("poll_ms", self.poll_ms, POLL_MS_RANGE)?;
        range("garp_count", self.garp_count, (0, MAX_GARP_COUNT))?;
        range("garp_interval_ms", self.garp_interval_ms, GARP_INTERVAL_MS_RANGE)?;
        let mut seen = std::collections::HashSet::new();
        for (i, w) in self.interfaces.iter().enumerate() {
            if !ports.iter().any(|p| p.name == w.port) {
                return Err(err(
                    format!("vrrp.interfaces[{i}].port"),
                    format!("no port named \"{}\"", w.port),
                ));
            }
            if let Err(m) = super::exception::check_ifname(&w.ifname) {
                return Err(err(format!("vrrp.interfaces[{i}].ifname"), m));
            }
            if !seen.insert(&w.ifname) {
                return Err(err(
                    format!("vrrp.interfaces[{i}].ifname"),
                    format!("interface {} is listed twice", w.ifname),
                ));
            }
        }
        if self.adopt && self.watched(ports).is_empty() {
            return Err(err(
                "vrrp.adopt",
                "no kernel interface to watch: give the ports a `kernel` interface (the exception path) or list vrrp.interfaces",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const PORTS: &str = r#"
[[ports]]
name = "client"
device = "net_null0"
addr = "198.18.0.1/24"
[[ports]]
name = "server"
device = "net_null1"
addr = "198.18.1.1/24"
"#;

    fn cfg(vrrp: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(&format!("{PORTS}\n[vrrp]\n{vrrp}"))?;
        c.validate().map(|_| c)
    }

    fn field(vrrp: &str) -> String {
        cfg(vrrp).expect_err("refused").field
    }

    #[test]
    fn defaults_are_off_and_named() {
        let c = Config::from_toml(PORTS).unwrap();
        assert_eq!(c.vrrp, VrrpConfig::default());
        assert!(!c.vrrp.adopt);
        assert_eq!(c.vrrp.poll_ms, defaults::POLL_MS);
        assert_eq!(c.vrrp.garp_count, defaults::GARP_COUNT);
    }

    #[test]
    fn watched_interfaces_map_to_ports() {
        let c = cfg(r#"adopt = true
interfaces = [{ port = "server", ifname = "rvs1" }, { port = "client", ifname = "rvs0" }]"#)
        .unwrap();
        assert_eq!(c.vrrp.watched(&c.ports), vec![(1, "rvs1".to_owned()), (0, "rvs0".to_owned())]);
    }

    #[test]
    fn the_ports_kernel_interfaces_are_watched_by_default() {
        let with_kernel =
            PORTS.replace("addr = \"198.18.1.1/24\"", "addr = \"198.18.1.1/24\"\nkernel = \"rvs-server\"");
        let c = Config::from_toml(&format!("{with_kernel}\n[vrrp]\nadopt = true")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.vrrp.watched(&c.ports), vec![(1, "rvs-server".to_owned())]);
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(field("adopt = true"), "vrrp.adopt");
        assert_eq!(field("poll_ms = 5"), "vrrp.poll_ms");
        assert_eq!(field("garp_count = 17"), "vrrp.garp_count");
        assert_eq!(field("garp_interval_ms = 0"), "vrrp.garp_interval_ms");
        assert_eq!(field(r#"interfaces = [{ port = "nope", ifname = "rvs0" }]"#), "vrrp.interfaces[0].port");
        assert_eq!(
            field(r#"interfaces = [{ port = "client", ifname = "a-name-far-too-long" }]"#),
            "vrrp.interfaces[0].ifname"
        );
        assert_eq!(
            field(
                r#"interfaces = [{ port = "client", ifname = "rvs0" }, { port = "server", ifname = "rvs0" }]"#
            ),
            "vrrp.interfaces[1].ifname"
        );
        assert!(cfg("adopt = false").is_ok(), "off needs no interface");
    }
}
