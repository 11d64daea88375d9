//! `[announce]`: VIP announcement for BGP/ECMP scale-out (docs/ha.md, "BGP and ECMP").
//!
//! rvsd keeps one `blackhole VIP/32` route per announced VIP in kernel routing table `table`,
//! marked with routing protocol number `proto`; the routing daemon in rvsd's namespace (BIRD's
//! `protocol kernel { kernel table N; learn; }`, FRR's `ip import-table N`) picks them up and
//! announces them. Off when `table` is absent.
use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// Named defaults of `[announce]`.
pub mod announce_defaults {
    /// No table: no announcement.
    pub const TABLE: Option<u32> = None;
    /// How long SIGTERM waits after withdrawing every VIP before the drain starts refusing new
    /// connections: the routers must have moved the traffic away by then (one BGP update and a
    /// FIB change per hop take milliseconds; 2 s leaves room for a loaded router).
    pub const WITHDRAW_WAIT_MS: u32 = 2000;
    /// Routing protocol number the routes carry (`ip route ... proto 201`): unassigned in
    /// Linux's rtnetlink.h and iproute2's rt_protos, so no routing daemon takes them for its own.
    pub const PROTO: u8 = 201;
    /// Largest `withdraw_wait_ms` (a minute).
    pub const MAX_WITHDRAW_WAIT_MS: u32 = 60_000;
}

/// Kernel tables a VIP route must not go to: unspec, the kernel's default, main and local
/// (blackholing a VIP in `main` would cut rvsd's own kernel network off from it).
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// Protocol numbers that are the kernel's own (unspec, redirect, kernel, boot, static) or that a
/// routing daemon treats as its own and flushes at start: zebra 11, BIRD 12, babel 42, FRR's
/// daemons 186-192 (rtnetlink.h).
fn reserved_proto(p: u8) -> Option<&'static str> {
    match p {
        0..=4 => Some("the kernel's own (0-4)"),
        11 => Some("zebra's"),
        12 => Some("BIRD's"),
        42 => Some("babel's"),
        186..=192 => Some("FRR's (186-192)"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnounceConfig {
    /// Kernel routing table holding the announced `VIP/32` routes (1..=2^32-1 but not 253, 254,
    /// 255); absent: VIPs are not announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Milliseconds SIGTERM waits after withdrawing every VIP, still accepting new connections,
    /// before the graceful drain starts (0..=60000).
    pub withdraw_wait_ms: u32,
    /// Routing protocol number of the routes (5..=255, not a routing daemon's own); rvsd deletes
    /// the routes of this number in `table` at start and exit, and only those.
    pub proto: u8,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            table: announce_defaults::TABLE,
            withdraw_wait_ms: announce_defaults::WITHDRAW_WAIT_MS,
            proto: announce_defaults::PROTO,
        }
    }
}

impl AnnounceConfig {
    /// Whether VIPs are announced at all.
    pub fn enabled(&self) -> bool {
        self.table.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = self.table {
            if RESERVED_TABLES.contains(&t) {
                return Err(err(
                    "announce.table",
                    format!(
                        "table {t} is reserved (0 unspec, 253 default, 254 main, 255 local); pick another"
                    ),
                ));
            }
        }
        if self.withdraw_wait_ms > announce_defaults::MAX_WITHDRAW_WAIT_MS {
            return Err(err(
                "announce.withdraw_wait_ms",
                format!(
                    "{} is outside 0..={}",
                    self.withdraw_wait_ms,
                    announce_defaults::MAX_WITHDRAW_WAIT_MS
                ),
            ));
        }
        if let Some(who) = reserved_proto(self.proto) {
            return Err(err(
                "announce.proto",
                format!("protocol number {} is {who}; pick an unassigned one (default 201)", self.proto),
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
name = "c"
device = "net_ring0"
addr = "198.18.0.1/24"
"#;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(&format!("{PORTS}\n{extra}"))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn off_by_default_with_named_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.announce, AnnounceConfig::default());
        assert!(!c.announce.enabled());
        assert_eq!(c.announce.withdraw_wait_ms, announce_defaults::WITHDRAW_WAIT_MS);
        assert_eq!(c.announce.proto, announce_defaults::PROTO);
        // The default round-trips through `save` without growing an `[announce] table`.
        let back = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(back.announce, c.announce);
    }

    #[test]
    fn a_table_turns_it_on() {
        let c = parse("[announce]\ntable = 100\nwithdraw_wait_ms = 500\nproto = 250\n").unwrap();
        assert!(c.announce.enabled());
        assert_eq!(c.announce, AnnounceConfig { table: Some(100), withdraw_wait_ms: 500, proto: 250 });
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap().announce, c.announce);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (extra, field) in [
            ("[announce]\ntable = 254\n", "announce.table"),
            ("[announce]\ntable = 255\n", "announce.table"),
            ("[announce]\ntable = 0\n", "announce.table"),
            ("[announce]\ntable = 100\nwithdraw_wait_ms = 60001\n", "announce.withdraw_wait_ms"),
            ("[announce]\ntable = 100\nproto = 12\n", "announce.proto"),
            ("[announce]\ntable = 100\nproto = 186\n", "announce.proto"),
            ("[announce]\ntable = 100\nproto = 2\n", "announce.proto"),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(e.field, field, "{extra}: {e}");
        }
        // Type and unknown-key errors come from the parser, with the line.
        assert!(parse("[announce]\ntable = -1\n").is_err());
        assert!(parse("[announce]\nproto = 300\n").is_err());
        assert!(parse("[announce]\ntabel = 100\n").is_err());
    }
}
