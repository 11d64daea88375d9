//! The daemon's one typed configuration, read from TOML (`rvsd -c FILE`).
//!
//! Every field has a named default (see the `defaults` module), so a minimal file names only ports,
//! addresses and services. [`Config::from_toml`] parses and [`Config::validate`] checks everything that
//! can be checked without touching the machine; each error names the field (`ports[1].addr`) in one
//! line. Checks that need the machine (interfaces, lcores) live in the daemon and use the same error.
//!
//! Layout: this file holds the sections and their defaults; `names` the enums read by name
//! (protocol, scheduler, forwarding method, PROXY protocol, check kind); `service` the services,
//! real servers and checks; `addr` addresses, prefixes and devices; `validate` every check.
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod addr;
mod announce;
pub mod exception;
mod names;
mod service;
mod sync;
#[cfg(test)]
mod tests;
mod validate;
pub mod vrrp;

pub use addr::*;
pub use announce::*;
pub use names::*;
pub use service::*;
pub use sync::{defaults as sync_defaults, SyncConfig, SyncRole};

/// The schema version this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// Named defaults, documented in docs/config.md.
pub mod defaults {
    pub const SOCKET: &str = "/run/rvs/rvsd.sock";
    pub const BURST: u16 = 32;
    pub const RX_DESC: u16 = 1024;
    pub const TX_DESC: u16 = 1024;
    pub const MBUFS: u32 = 16383;
    pub const MBUF_CACHE: u32 = 256;
    pub const MTU: u16 = 1500;
    pub const NO_HUGE_MEMORY_MB: u32 = 512;
    pub const MAX_CONNS_PER_WORKER: u32 = 1 << 20;
    pub const ARP_QUEUE: u32 = 64;
    pub const NEIGH_TIMEOUT_S: u32 = 300;
    pub const PERSIST_TEMPLATES: u32 = 65536;
    pub const LPORT_MIN: u16 = 1025;
    pub const LPORT_MAX: u16 = 65535;
    pub const EXPIRE_BUDGET: u32 = 256;
    pub const LOG_LEVEL: &str = "info";
    pub const DRAIN_GRACE_S: u32 = 30;
    /// PROXY protocol headers awaiting acknowledgement per worker (their resend timers).
    pub const PROXY_TIMERS: u32 = 262_144;
    /// Fragmented datagrams tracked per worker, per source, and for how long.
    pub const FRAG_MAX_DATAGRAMS: u32 = 4096;
    pub const FRAG_MAX_PER_SOURCE: u32 = 256;
    pub const FRAG_TIMEOUT_MS: u32 = 1000;
    /// Slots of each worker-to-worker hand-off ring (one ring per ordered pair of workers).
    pub const HANDOFF_RING: u32 = 4096;
    /// keepalived's default: a failed real server is removed, not kept at weight 0.
    pub const INHIBIT_ON_FAILURE: bool = false;
    /// ipvsadm's `DEF_SCHED`.
    pub const SCHED: super::Sched = super::Sched::Wlc;
    pub const FORWARD: super::Forward = super::Forward::Fullnat;
    /// keepalived's `quorum` default (check_data.c `alloc_vs`): one live weight unit.
    pub const QUORUM: u32 = 1;
    /// `[metrics] listen`: no metrics endpoint unless one is configured.
    pub const METRICS_LISTEN: Option<&str> = None;
    /// Scrapes served at once by the metrics endpoint; more are answered 503 and closed.
    pub const METRICS_MAX_CLIENTS: u32 = 8;
    /// Time a metrics client has to send its whole request head (slow clients are cut off).
    pub const METRICS_READ_TIMEOUT_MS: u32 = 2000;
    /// Largest request head (request line and headers) the metrics endpoint reads; larger: 431.
    pub const METRICS_MAX_REQUEST_BYTES: u32 = 8192;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `services[0].reals[2].weight`.
    pub field: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.field, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), msg: msg.into() }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version; must equal [`CONFIG_VERSION`].
    #[serde(default = "version_default")]
    pub version: u32,
    #[serde(default)]
    pub eal: EalConfig,
    #[serde(default)]
    pub workers: WorkersConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub conn: ConnConfig,
    #[serde(default)]
    pub synproxy: SynproxyConfig,
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// VRRP address adoption (docs/ha.md).
    #[serde(default)]
    pub vrrp: vrrp::VrrpConfig,
    /// VIP announcement for BGP/ECMP (`[announce]`, docs/ha.md); off unless `table` is set.
    #[serde(default)]
    pub announce: AnnounceConfig,
    /// The exception path's rate limit (ports name their kernel interfaces with `kernel`).
    #[serde(default)]
    pub exception: exception::ExceptionConfig,
    /// Connection sync (docs/ha.md); off by default.
    #[serde(default)]
    pub sync: SyncConfig,
    /// A keepalived.conf whose virtual servers are the services (see docs/config.md); rvsd reads
    /// it at start-up into `services`, which the TOML must then leave empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalived: Option<String>,
}

/// The Prometheus endpoint (`GET /metrics`, docs/metrics.md); off unless `listen` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// TCP address to serve `/metrics` on, e.g. `127.0.0.1:9100`; none: no endpoint.
    pub listen: Option<String>,
    /// Scrapes served at once (1..=64); a connection beyond them is answered 503 and closed.
    pub max_clients: u32,
    /// Milliseconds a client has to send its request head (100..=60000), however it dribbles it.
    pub read_timeout_ms: u32,
    /// Largest request head in bytes (1024..=65536); a larger one is answered 431 and closed.
    pub max_request_bytes: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: defaults::METRICS_LISTEN.map(str::to_owned),
            max_clients: defaults::METRICS_MAX_CLIENTS,
            read_timeout_ms: defaults::METRICS_READ_TIMEOUT_MS,
            max_request_bytes: defaults::METRICS_MAX_REQUEST_BYTES,
        }
    }
}

impl MetricsConfig {
    /// The listen address, parsed; `Ok(None)` when the endpoint is off.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        self.listen
            .as_deref()
            .map(|a| {
                a.parse().map_err(|_| {
                    err(
                        "metrics.listen",
                        format!("\"{a}\" is not an IP:port address (e.g. \"127.0.0.1:9100\")"),
                    )
                })
            })
            .transpose()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        let range = |field: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(err(format!("metrics.{field}"), format!("{v} is outside {lo}..={hi}")))
            }
        };
        range("max_clients", self.max_clients, 1, 64)?;
        range("read_timeout_ms", self.read_timeout_ms, 100, 60_000)?;
        range("max_request_bytes", self.max_request_bytes, 1024, 65_536)
    }
}

/// SYN-proxy parameters; a service turns it on with `synproxy = true` (`rvsadm -j enable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynproxyConfig {
    /// Cookie counter period in seconds; a cookie is valid for up to two periods, and each worker
    /// rotates its secret every two periods.
    pub period_s: u32,
    /// Half-open proxied connections per worker (client done, real server not yet answered).
    pub max_half_open: u32,
    /// Client packets held per connection until the real server answers.
    pub max_held: u32,
    /// SYNs re-sent to a silent real server before the client gets a RST.
    pub syn_retries: u32,
    pub syn_retry_ms: u32,
    /// Identical ACKs tolerated while half-open before they are dropped (ack-storm guard).
    pub ack_storm: u32,
    /// MSS the gateway advertises in cookie SYN-ACKs (lowered by 8 on TOA services).
    pub mss: u16,
    /// Window scale the gateway advertises; must equal the real servers' (their windows are
    /// relayed unchanged). Linux picks 7 for default buffers.
    pub wscale: u8,
    pub window: u16,
}

impl Default for SynproxyConfig {
    fn default() -> Self {
        SynproxyConfig {
            period_s: 64,
            max_half_open: 65_536,
            max_held: 4,
            syn_retries: 3,
            syn_retry_ms: 1000,
            ack_storm: 10,
            mss: 1460,
            wscale: 7,
            window: 65_535,
        }
    }
}

fn version_default() -> u32 {
    CONFIG_VERSION
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EalConfig {
    /// DPDK `--file-prefix`; empty means `rvs-<pid>` so concurrent instances never collide.
    pub file_prefix: String,
    /// Run with `--in-memory`: no runtime files, nothing stale after a crash.
    pub in_memory: bool,
    /// `auto` uses hugepages when some are free and falls back to `--no-huge`; `on`/`off` force it.
    pub hugepages: HugepageMode,
    /// Memory for `--no-huge` mode, in MiB.
    pub no_huge_memory_mb: u32,
    /// DPDK log level (1..8), passed as `--log-level`.
    pub log_level: u32,
    /// Extra EAL arguments, appended verbatim.
    pub args: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            file_prefix: String::new(),
            in_memory: true,
            hugepages: HugepageMode::Auto,
            no_huge_memory_mb: defaults::NO_HUGE_MEMORY_MB,
            log_level: 5,
            args: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HugepageMode {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// The lcore (CPU) the main and control threads run on.
    pub main_lcore: u32,
    /// One poll-mode worker per lcore listed; each owns queue pair i on every port.
    pub lcores: Vec<u32>,
    /// Packets per rx/tx burst (1..=256).
    pub burst: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Mbufs in the packet pool (per socket).
    pub mbufs: u32,
    pub mbuf_cache: u32,
    /// Microseconds a worker sleeps after an empty poll; 0 is pure busy polling (production).
    pub idle_sleep_us: u32,
    /// The CPU each worker lcore runs on, in `lcores` order; empty means lcore n runs on CPU n.
    /// Lets more lcores than CPUs share a small machine (tests); production keeps one per CPU.
    pub cpus: Vec<u32>,
    /// The CPU of the main lcore (and the control threads); default: `main_lcore`.
    pub main_cpu: Option<u32>,
    /// Slots per worker-to-worker hand-off ring (power of two, 64..=65536).
    pub handoff_ring: u32,
    /// Prefetch the next packet of a burst while processing the current one.
    pub prefetch: bool,
    /// How replies reach the worker owning their connection: `auto` installs NIC flow rules where
    /// every port accepts them and hands off in software otherwise; `flow` requires flow rules;
    /// `handoff` never installs rules.
    pub steering: Steering,
}

/// See [`WorkersConfig::steering`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Steering {
    Auto,
    Flow,
    Handoff,
}

impl WorkersConfig {
    /// The CPU worker `i` runs on.
    pub fn cpu_of(&self, i: usize) -> u32 {
        self.cpus.get(i).copied().unwrap_or(self.lcores[i])
    }

    /// The CPU of the main lcore.
    pub fn main_cpu(&self) -> u32 {
        self.main_cpu.unwrap_or(self.main_lcore)
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            main_lcore: 0,
            lcores: vec![1],
            burst: defaults::BURST,
            rx_desc: defaults::RX_DESC,
            tx_desc: defaults::TX_DESC,
            mbufs: defaults::MBUFS,
            mbuf_cache: defaults::MBUF_CACHE,
            idle_sleep_us: 0,
            cpus: Vec::new(),
            main_cpu: None,
            handoff_ring: defaults::HANDOFF_RING,
            prefetch: true,
            steering: Steering::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Unix socket of the API.
    pub socket: String,
    /// Optional group whose members may use the socket (group-owned, mode 0660 instead of 0600).
    pub admin_group: Option<String>,
    /// tracing filter for the daemon's own log (e.g. `info`, `rvsd=debug`).
    pub log: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig { socket: defaults::SOCKET.into(), admin_group: None, log: defaults::LOG_LEVEL.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Name used by routes and in stats, e.g. `client`.
    pub name: String,
    /// DPDK device: a PCI address (`0000:03:00.0`) or vdev arguments (`net_af_packet0,iface=veth0`).
    pub device: String,
    /// The gateway's own address on this port, with prefix length (`198.18.0.1/24`).
    pub addr: String,
    /// The gateway's IPv6 address on this port, with prefix length (`2001:2::1/64`); none: the
    /// port takes no IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr6: Option<String>,
    #[serde(default = "mtu_default")]
    pub mtu: u16,
    /// The port's kernel interface (a TAP of this name with the port's MAC, address and MTU; the
    /// exception path); none: frames the dataplane does not handle are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

fn mtu_default() -> u16 {
    defaults::MTU
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination prefix, `0.0.0.0/0` for the default route (`::/0` for IPv6).
    pub dst: String,
    /// Next hop, of `dst`'s family; must lie in a port's connected subnet.
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnConfig {
    /// Hard per-worker connection capacity (preallocated).
    pub max_per_worker: u32,
    /// Answer a TCP non-SYN that matches no connection with RST instead of dropping it silently.
    pub rst_on_miss: bool,
    /// Connections expired per burst at most (the rest wait for the next burst).
    pub expire_budget: u32,
    /// Per-worker persistence templates.
    pub persist_templates: u32,
    /// Packets held per unresolved neighbour.
    pub arp_queue: u32,
    pub neigh_timeout_s: u32,
    /// Local (FULLNAT source) port range.
    pub lport_min: u16,
    pub lport_max: u16,
    /// What to do with TCP timestamps on the way to real servers: `strip` (default; avoids PAWS drops
    /// when different clients reuse one LIP:lport) or `keep`.
    pub tcp_timestamps: TimestampMode,
    /// On SIGTERM: seconds established connections keep being forwarded while new ones are refused,
    /// before rvsd exits (earlier when none is left). SIGINT stops at once.
    pub drain_grace_s: u32,
    /// What happens to the connections of a real server removed from its service: `keep` forwards
    /// them until they expire (default); `expire` drops them at once (with `rst_on_miss` the client's
    /// next segment gets a RST).
    pub on_real_removed: RealRemovedMode,
    /// PROXY protocol headers awaiting the real server's acknowledgement per worker; a connection
    /// finding the list full is counted (`proxy_timer_full`) and resends its header only with the
    /// client's retransmissions.
    pub proxy_timers: u32,
    pub timeouts: TimeoutsConfig,
    pub frag: FragConfig,
}

/// Bounds of the per-worker IP fragment table (`[conn.frag]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FragConfig {
    /// Datagrams tracked at once (`drop.frag_table_full` past it).
    pub max_datagrams: u32,
    /// Of those, from one source address (`drop.frag_source_limit`).
    pub max_per_source: u32,
    /// Milliseconds a datagram is tracked from its first fragment seen (`drop.frag_timeout` for
    /// what still waited).
    pub timeout_ms: u32,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig {
            max_datagrams: defaults::FRAG_MAX_DATAGRAMS,
            max_per_source: defaults::FRAG_MAX_PER_SOURCE,
            timeout_ms: defaults::FRAG_TIMEOUT_MS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealRemovedMode {
    Keep,
    Expire,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_per_worker: defaults::MAX_CONNS_PER_WORKER,
            rst_on_miss: false,
            expire_budget: defaults::EXPIRE_BUDGET,
            persist_templates: defaults::PERSIST_TEMPLATES,
            arp_queue: defaults::ARP_QUEUE,
            neigh_timeout_s: defaults::NEIGH_TIMEOUT_S,
            lport_min: defaults::LPORT_MIN,
            lport_max: defaults::LPORT_MAX,
            tcp_timestamps: TimestampMode::Strip,
            on_real_removed: RealRemovedMode::Keep,
            drain_grace_s: defaults::DRAIN_GRACE_S,
            proxy_timers: defaults::PROXY_TIMERS,
            timeouts: TimeoutsConfig::default(),
            frag: FragConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampMode {
    Strip,
    Keep,
}

/// LVS timeouts, seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    pub established: u32,
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub fin_wait: u32,
    pub time_wait: u32,
    pub close: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub udp: u32,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            established: 900,
            syn_sent: 120,
            syn_recv: 30,
            fin_wait: 120,
            time_wait: 120,
            close: 10,
            close_wait: 60,
            last_ack: 30,
            udp: 300,
        }
    }
}

/// Largest `check.retry_ms` (a day).
pub const MAX_CHECK_RETRY_MS: u32 = 86_400_000;

/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;

/// Limits on what the configuration may hold: every worker builds per-service scheduler state
/// (a Maglev table is 65537 entries), so these bound the memory a bad `restore` could claim.
pub const MAX_SERVICES: usize = 1024;
/// The connection table's ids are 30 bits wide; 16 Mi connections is about 1.9 GB per worker.
pub const MAX_CONNS_PER_WORKER: u32 = 1 << 24;
pub const MAX_REALS_PER_SERVICE: usize = 1024;
pub const MAX_LADDRS_PER_SERVICE: usize = 256;

/// Largest connection timeout, seconds (a year): the connection table's timer wheel holds deadlines
/// up to 2^30 ticks of 64 ms (about 795 days) ahead.
pub const MAX_TIMEOUT_S: u32 = 365 * 24 * 3600;
