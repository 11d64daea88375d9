//! `[sync]`: connection sync (IPVS sync protocol v1, docs/ha.md "Connection sync").
//!
//! Invariants: a validated section names a multicast `group` and, unless a unicast `peer` is
//! given, the `interface` the multicast leaves and arrives on (as `ipvsadm --start-daemon`
//! requires `--mcast-interface`); every size is within its documented range, nothing is capped.
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{err, ConfigError};

/// Named defaults of `[sync]` (docs/config.md).
pub mod defaults {
    /// IPVS's `IP_VS_SYNC_GROUP` and `IP_VS_SYNC_PORT`.
    pub const GROUP: &str = "224.0.0.81";
    pub const PORT: u16 = 8848;
    /// IPVS's `mcast_ttl` default.
    pub const TTL: u8 = 1;
    /// `--syncid` default: 0 (a backup with syncid 0 takes every master's messages).
    pub const SYNCID: u8 = 0;
    /// The master's messages are sized for this MTU (IPVS uses 1500 unless told).
    pub const MTU: u16 = 1500;
    /// A message is sent when full or when its first entry is this old.
    pub const FLUSH_MS: u32 = 5;
    /// Sync operations queued from the workers to the sender; more are counted lost.
    pub const QUEUE: u32 = 65_536;
    /// Connection events a worker logs between two bursts; more are counted lost.
    pub const EVENTS_PER_WORKER: u32 = 4096;
}

/// Which sync daemons run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    #[default]
    Off,
    Master,
    Backup,
    /// Master and backup at once (IPVS allows both daemons).
    Both,
}

impl SyncRole {
    pub fn master(self) -> bool {
        matches!(self, SyncRole::Master | SyncRole::Both)
    }
    pub fn backup(self) -> bool {
        matches!(self, SyncRole::Backup | SyncRole::Both)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    pub role: SyncRole,
    /// Messages carry it; a backup with a non-zero syncid ignores other syncids.
    pub syncid: u8,
    /// Multicast group (IPv4, 224.0.0.0/4).
    pub group: String,
    pub port: u16,
    /// Unicast IPv4 peer instead of the group: the master sends to it, a backup asks it for the
    /// full table.
    pub peer: Option<String>,
    /// Kernel interface the multicast uses (in rvsd's namespace; the exception path's TAP in
    /// production). Required unless `peer` is set.
    pub interface: Option<String>,
    /// Multicast TTL (1..=255).
    pub ttl: u8,
    /// MTU the master sizes its messages for (576..=65535): the message is at most `mtu - 28`.
    pub mtu: u16,
    /// Milliseconds a message waits for more entries before it is sent (1..=1000).
    pub flush_ms: u32,
    /// Operations queued between the workers and the sender (1024..=16777216).
    pub queue: u32,
    /// Connection events each worker logs per burst (64..=1048576).
    pub events_per_worker: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            role: SyncRole::Off,
            syncid: defaults::SYNCID,
            group: defaults::GROUP.to_owned(),
            port: defaults::PORT,
            peer: None,
            interface: None,
            ttl: defaults::TTL,
            mtu: defaults::MTU,
            flush_ms: defaults::FLUSH_MS,
            queue: defaults::QUEUE,
            events_per_worker: defaults::EVENTS_PER_WORKER,
        }
    }
}

impl SyncConfig {
    pub fn group_addr(&self) -> Result<Ipv4Addr, ConfigError> {
        match self.group.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(a),
            _ => Err(err("sync.group", format!("\"{}\" is not an IPv4 multicast address", self.group))),
        }
    }

    pub fn peer_addr(&self) -> Result<Option<Ipv4Addr>, ConfigError> {
        self.peer
            .as_deref()
            .map(|p| match p.parse::<Ipv4Addr>() {
                Ok(a) if !a.is_multicast() && !a.is_unspecified() && !a.is_broadcast() => Ok(a),
                _ => Err(err("sync.peer", format!("\"{p}\" is not a unicast IPv4 address"))),
            })
            .transpose()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.group_addr()?;
        self.peer_addr()?;
        if let Some(i) = &self.interface {
            if i.is_empty() || i.len() > 15 || i.contains(['/', ' ']) {
                return Err(err("sync.interface", format!("\"{i}\" is not an interface name")));
            }
        }
        if self.role != SyncRole::Off && self.peer.is_none() && self.interface.is_none() {
            return Err(err("sync.interface", "multicast sync needs the interface (or set sync.peer)"));
        }
        let range = |field: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(err(format!("sync.{field}"), format!("{v} is outside {lo}..={hi}")))
            }
        };
        range("port", self.port.into(), 1, 65_535)?;
        range("ttl", self.ttl.into(), 1, 255)?;
        range("mtu", self.mtu.into(), 576, 65_535)?;
        range("flush_ms", self.flush_ms.into(), 1, 1000)?;
        range("queue", self.queue.into(), 1024, 1 << 24)?;
        range("events_per_worker", self.events_per_worker.into(), 64, 1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ipvs_and_off() {
        let c = SyncConfig::default();
        assert_eq!((c.role, c.port, c.ttl), (SyncRole::Off, 8848, 1));
        assert_eq!(c.group_addr().unwrap(), Ipv4Addr::new(224, 0, 0, 81));
        c.validate().unwrap();
    }

    #[test]
    fn each_error_names_its_field() {
        let on = SyncConfig { role: SyncRole::Master, ..SyncConfig::default() };
        assert_eq!(on.validate().unwrap_err().field, "sync.interface");
        let ok = SyncConfig { interface: Some("eth0".into()), ..on.clone() };
        ok.validate().unwrap();
        let unicast = SyncConfig { peer: Some("198.18.5.2".into()), ..on.clone() };
        unicast.validate().unwrap();
        let cases: [(SyncConfig, &str); 6] = [
            (SyncConfig { group: "198.18.0.1".into(), ..ok.clone() }, "sync.group"),
            (SyncConfig { peer: Some("224.0.0.1".into()), ..ok.clone() }, "sync.peer"),
            (SyncConfig { ttl: 0, ..ok.clone() }, "sync.ttl"),
            (SyncConfig { flush_ms: 0, ..ok.clone() }, "sync.flush_ms"),
            (SyncConfig { queue: 10, ..ok.clone() }, "sync.queue"),
            (SyncConfig { interface: Some("a/b".into()), ..ok.clone() }, "sync.interface"),
        ];
        for (c, field) in cases {
            assert_eq!(c.validate().unwrap_err().field, field, "{c:?}");
        }
    }

    #[test]
    fn reads_toml() {
        let c: SyncConfig = toml::from_str("role = \"backup\"\ninterface = \"sync0\"\nsyncid = 7\n").unwrap();
        assert_eq!((c.role, c.syncid, c.interface.as_deref()), (SyncRole::Backup, 7, Some("sync0")));
        assert!(toml::from_str::<SyncConfig>("role = \"primary\"").is_err());
    }
}
