//! `[exception]`: the rate limit of the exception path, and the ports' kernel interface names.
//!
//! A port with `kernel = "<ifname>"` gets a TAP interface of that name in rvsd's namespace, with
//! the port's MAC, address and MTU; frames the dataplane does not handle itself go to it through
//! a token bucket per worker and port (docs/ha.md, "Exception path"). The limit is per kernel
//! interface, for the whole gateway: each of N workers passes `ceil(rate_pps / N)` frames per
//! second to it with bursts of `ceil(burst / N)`. Per interface, so a flood at one port's address
//! cannot starve another port's kernel traffic (the server side's health checks).
use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// Named defaults, documented in docs/config.md.
pub mod defaults {
    /// Frames per second the whole gateway passes to each kernel interface: plenty for BGP, VRRP,
    /// ssh and health checks, little enough that a flood at a port address costs the kernel
    /// nothing noticeable.
    pub const RATE_PPS: u32 = 10_000;
    /// Frames passed at once after a quiet period (a TCP window of health-check replies).
    pub const BURST: u32 = 1_000;
}

/// Largest `rate_pps` and `burst` accepted: beyond this the kernel path is no longer "bounded".
pub const MAX_RATE_PPS: u32 = 1_000_000;
pub const MAX_BURST: u32 = 100_000;

/// Longest interface name Linux takes (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExceptionConfig {
    /// Frames per second passed to each kernel interface, for the whole gateway (1..=1000000).
    pub rate_pps: u32,
    /// Bucket depth in frames, per kernel interface, for the whole gateway (1..=100000).
    pub burst: u32,
}

impl Default for ExceptionConfig {
    fn default() -> Self {
        ExceptionConfig { rate_pps: defaults::RATE_PPS, burst: defaults::BURST }
    }
}

impl ExceptionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_RATE_PPS).contains(&self.rate_pps) {
            return Err(err(
                "exception.rate_pps",
                format!("{} is outside 1..={MAX_RATE_PPS}", self.rate_pps),
            ));
        }
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(err("exception.burst", format!("{} is outside 1..={MAX_BURST}", self.burst)));
        }
        Ok(())
    }
}

/// Checks a port's `kernel` interface name: 1 to 15 characters of letters, digits, `-`, `_` and
/// `.`, not `.` or `..` (what `ip link` and the TAP driver accept, and safe on a command line).
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(format!("\"{name}\" must have 1 to {MAX_IFNAME} characters"));
    }
    if name == "." || name == ".." {
        return Err(format!("\"{name}\" is not an interface name"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("\"{name}\" has '{c}': use letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const BASE: &str = r#"
[workers]
lcores = [1]
[[ports]]
name = "client"
device = "net_tap0"
addr = "198.18.0.1/24"
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        let c = Config::from_toml(&format!("{BASE}{extra}")).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_values() {
        let c = parse("").unwrap();
        assert_eq!(c.exception, ExceptionConfig::default());
        assert_eq!(c.ports[0].kernel, None);
        let c = parse("kernel = \"rvs-client\"\n[exception]\nrate_pps = 500\nburst = 20\n").unwrap();
        assert_eq!(c.ports[0].kernel.as_deref(), Some("rvs-client"));
        assert_eq!(c.exception, ExceptionConfig { rate_pps: 500, burst: 20 });
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = parse("[exception]\nrate_pps = 0\n").unwrap_err();
        assert!(e.starts_with("exception.rate_pps: 0 is outside"), "{e}");
        let e = parse("[exception]\nburst = 100001\n").unwrap_err();
        assert!(e.starts_with("exception.burst: 100001 is outside"), "{e}");
        let e = parse("[exception]\nrate = 5\n").unwrap_err();
        assert!(e.contains("rate"), "{e}");
    }

    #[test]
    fn kernel_names() {
        for bad in ["", "a-name-of-16-chr", "a b", "a/b", "..", "x;rm"] {
            let e = parse(&format!("kernel = \"{bad}\"\n")).unwrap_err();
            assert!(e.starts_with("ports[0].kernel: "), "{bad}: {e}");
        }
        assert!(parse("kernel = \"a-name-of-15-ch\"\n").is_ok());
        let two = "kernel = \"k0\"\n[[ports]]\nname = \"server\"\ndevice = \"net_tap1\"\naddr = \"198.18.1.1/24\"\nkernel = \"k0\"\n";
        let e = parse(two).unwrap_err();
        assert_eq!(e, "ports[1].kernel: \"k0\" is used by two ports");
    }
}
