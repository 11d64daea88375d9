//! The daemon's one typed configuration, read from TOML (`rvsd -c FILE`).
//!
//! Every field has a named default (see the `defaults` module), so a minimal file names only ports,
//! addresses and services. [`Config::from_toml`] parses and [`Config::validate`] checks everything that
//! can be checked without touching the machine; each error names the field (`ports[1].addr`) in one
//! line. Checks that need the machine (interfaces, lcores) live in the daemon and use the same error.
use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    #[serde(default = "mtu_default")]
    pub mtu: u16,
}

fn mtu_default() -> u16 {
    defaults::MTU
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination prefix, `0.0.0.0/0` for the default route.
    pub dst: String,
    /// Next hop; must lie in a port's connected subnet.
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

/// A service's transport protocol. Read and written as `tcp`/`udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number (ipvsadm sorts services by it: `ipvs_cmp_services`).
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// LVS scheduler. Read and written by its LVS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Sched {
    Rr,
    Wrr,
    Lc,
    Wlc,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
}

impl Sched {
    pub const ALL: [Sched; 6] = [Sched::Rr, Sched::Wrr, Sched::Lc, Sched::Wlc, Sched::Sh, Sched::Mh];

    pub const fn as_str(self) -> &'static str {
        match self {
            Sched::Rr => "rr",
            Sched::Wrr => "wrr",
            Sched::Lc => "lc",
            Sched::Wlc => "wlc",
            Sched::Sh => "sh",
            Sched::Mh => "mh",
        }
    }

    /// `rr, wrr, lc, wlc, sh, mh`, for messages and help.
    pub fn names(sep: &str) -> String {
        Sched::ALL.map(Sched::as_str).join(sep)
    }
}

/// Forwarding method of a real server (ipvsadm's `-b -m -g -i`). Written as `fullnat`, `nat`,
/// `dr`, `tun`; ipvsadm's and keepalived's names are read too ([`Forward::ALIASES`]).
/// A service may mix methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Forward {
    /// FULLNAT (DPVS's `-b`): source and destination rewritten; needs the service's local addresses.
    #[default]
    Fullnat,
    /// NAT (masquerading, `-m`): the destination becomes the real server, which routes its
    /// replies back through the gateway.
    Masq,
    /// DR (direct routing, gatewaying, `-g`): the frame goes to an on-link real server's MAC;
    /// replies bypass the gateway.
    Route,
    /// TUN (IPv4-in-IPv4, `-i`): encapsulated to the real server; replies bypass the gateway.
    Tunnel,
}

impl Forward {
    pub const ALL: [Forward; 4] = [Forward::Fullnat, Forward::Masq, Forward::Route, Forward::Tunnel];

    /// Other names read for each method: ipvsadm's long options and `-Ln` names, keepalived's
    /// `lb_kind`, in lower case.
    pub const ALIASES: [(&'static str, Forward); 8] = [
        ("masq", Forward::Masq),
        ("masquerading", Forward::Masq),
        ("route", Forward::Route),
        ("gatewaying", Forward::Route),
        ("direct", Forward::Route),
        ("tunnel", Forward::Tunnel),
        ("ipip", Forward::Tunnel),
        ("fnat", Forward::Fullnat),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Forward::Fullnat => "fullnat",
            Forward::Masq => "nat",
            Forward::Route => "dr",
            Forward::Tunnel => "tun",
        }
    }

    /// The dataplane's translation kind for this method.
    pub const fn xlat(self) -> rvs_dataplane::xmit::Xlat {
        use rvs_dataplane::xmit::Xlat;
        match self {
            Forward::Fullnat => Xlat::FullNat,
            Forward::Masq => Xlat::Nat,
            Forward::Route => Xlat::Dr,
            Forward::Tunnel => Xlat::Tun,
        }
    }

    /// The method of a dataplane translation kind (a connection's, as listed).
    pub const fn of_xlat(x: rvs_dataplane::xmit::Xlat) -> Forward {
        use rvs_dataplane::xmit::Xlat;
        match x {
            Xlat::FullNat => Forward::Fullnat,
            Xlat::Nat => Forward::Masq,
            Xlat::Dr => Forward::Route,
            Xlat::Tun => Forward::Tunnel,
        }
    }

    /// Replies come back through the gateway (FULLNAT, NAT); DR and TUN replies bypass it.
    pub const fn replies_through_gateway(self) -> bool {
        matches!(self, Forward::Fullnat | Forward::Masq)
    }

    /// The real server's port must be the service's (DR, TUN: the packet's ports are not rewritten).
    pub const fn keeps_port(self) -> bool {
        matches!(self, Forward::Route | Forward::Tunnel)
    }
}

/// PROXY protocol header a TCP service sends its real servers (`off`, `v1`, `v2`), HAProxy's
/// proxy-protocol.txt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ProxyProtocol {
    #[default]
    Off,
    V1,
    V2,
}

impl ProxyProtocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    pub fn is_off(&self) -> bool {
        *self == ProxyProtocol::Off
    }

    /// The dataplane's header version, if any.
    pub const fn version(self) -> Option<rvs_dataplane::wire::proxy::Version> {
        match self {
            ProxyProtocol::Off => None,
            ProxyProtocol::V1 => Some(rvs_dataplane::wire::proxy::Version::V1),
            ProxyProtocol::V2 => Some(rvs_dataplane::wire::proxy::Version::V2),
        }
    }
}

/// What a health check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum CheckKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET `path`, expecting `expect_status`.
    Http,
    /// HTTP GET over TLS (keepalived's `SSL_GET`). The server's certificate is not verified, as
    /// keepalived does not verify it: the check tests that the server answers, not who it is.
    Https,
}

impl CheckKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
        }
    }

    /// True for the kinds that send an HTTP request (`http`, `https`).
    pub const fn is_http(self) -> bool {
        matches!(self, CheckKind::Http | CheckKind::Https)
    }
}

/// Display, `&'static str` and parsing by name for the enums above; parse errors are one line
/// naming the accepted values, so a bad config field or API value says what would do. With
/// `aliases`, other names are read too (and named in the error after the canonical ones).
macro_rules! named_enum {
    ($t:ty, $all:expr, $what:literal) => {
        named_enum!($t, $all, $what, aliases = []);
    };
    ($t:ty, $all:expr, $what:literal, aliases = $aliases:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl From<$t> for &'static str {
            fn from(v: $t) -> &'static str {
                v.as_str()
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                let all: &[$t] = &$all;
                let aliases: &[(&str, $t)] = &$aliases;
                all.iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .or_else(|| aliases.iter().find(|(a, _)| *a == s).map(|(_, v)| *v))
                    .ok_or_else(|| {
                        let names: Vec<&str> = all.iter().map(|v| v.as_str()).collect();
                        let others: Vec<&str> = aliases.iter().map(|(a, _)| *a).collect();
                        if others.is_empty() {
                            format!(concat!("unknown ", $what, " \"{}\" (one of {})"), s, names.join(", "))
                        } else {
                            format!(
                                concat!("unknown ", $what, " \"{}\" (one of {}; also read: {})"),
                                s,
                                names.join(", "),
                                others.join(", ")
                            )
                        }
                    })
            }
        }
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<$t, String> {
                s.parse()
            }
        }
    };
}

named_enum!(Proto, [Proto::Tcp, Proto::Udp], "protocol");
named_enum!(Sched, Sched::ALL, "scheduler");
named_enum!(Forward, Forward::ALL, "forwarding method", aliases = Forward::ALIASES);
named_enum!(CheckKind, [CheckKind::Tcp, CheckKind::Http, CheckKind::Https], "check kind");
named_enum!(
    ProxyProtocol,
    [ProxyProtocol::Off, ProxyProtocol::V1, ProxyProtocol::V2],
    "PROXY protocol version"
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub proto: Proto,
    /// `VIP:port`.
    pub vip: String,
    #[serde(default = "sched_default")]
    pub sched: Sched,
    /// Persistence timeout in seconds (`-p`); absent means none.
    #[serde(default)]
    pub persistence: Option<u32>,
    /// Insert the client address as TCP option 254 (TOA) towards real servers.
    #[serde(default)]
    pub toa: bool,
    /// SYN-proxy (SYN cookies on the gateway).
    #[serde(default)]
    pub synproxy: bool,
    /// PROXY protocol header at the start of each client's stream toward its real server (TCP,
    /// FULLNAT and NAT real servers; not with `toa`).
    #[serde(default, skip_serializing_if = "ProxyProtocol::is_off")]
    pub proxy_protocol: ProxyProtocol,
    /// FULLNAT source addresses for this service.
    #[serde(default)]
    pub laddrs: Vec<String>,
    #[serde(default)]
    pub reals: Vec<RealConfig>,
    /// Health check applied to every real server of the service; none means always up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckConfig>,
    /// keepalived's `inhibit_on_failure`: a real server its check takes out stays in the table at
    /// weight 0 (true) instead of being removed from it (false, keepalived's default). Either way
    /// its connections keep it, and new ones go elsewhere.
    #[serde(default = "inhibit_default", skip_serializing_if = "is_inhibit_default")]
    pub inhibit_on_failure: bool,
    /// keepalived's `quorum`: the total weight of the real servers that are up (their check passes)
    /// the service needs. Below `quorum - hysteresis` it loses quorum (the sorry server, if any,
    /// takes over); at `quorum + hysteresis` it has it again. See [`crate::quorum`].
    #[serde(default = "quorum_default", skip_serializing_if = "is_quorum_default")]
    pub quorum: u32,
    /// keepalived's `hysteresis` (below `quorum`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hysteresis: u32,
    /// keepalived's `sorry_server`: serves alone while the service has lost quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<SorryServerConfig>,
}

/// A service's sorry server (keepalived's `sorry_server`, `sorry_server_inhibit`,
/// `sorry_server_lvs_method`). While the service has quorum it is out of the pool (or, with
/// `inhibit`, in it at weight 0); when quorum is lost the real servers leave the pool (or go to
/// weight 0 with the service's `inhibit_on_failure`) and it serves at weight 1, keepalived's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SorryServerConfig {
    /// `RS:port`.
    pub addr: String,
    #[serde(default = "fwd_default")]
    pub forward: Forward,
    /// keepalived's `sorry_server_inhibit`: kept in the pool at weight 0 while not serving.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inhibit: bool,
}

fn quorum_default() -> u32 {
    defaults::QUORUM
}

fn is_quorum_default(v: &u32) -> bool {
    *v == defaults::QUORUM
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl ServiceConfig {
    /// The service's port, when its `vip` is well formed.
    pub fn vport(&self) -> Option<u16> {
        parse_endpoint(&self.vip).ok().map(|(_, p)| p)
    }

    /// See [`Config::fill_real_ports`].
    pub fn fill_real_ports(&mut self) {
        if let Some(vport) = self.vport() {
            for r in &mut self.reals {
                r.addr = with_port(&r.addr, vport);
            }
            if let Some(ss) = &mut self.sorry_server {
                ss.addr = with_port(&ss.addr, vport);
            }
        }
    }
}

/// `addr` with `port` appended when it is a bare IPv4 address; anything else unchanged (and left
/// for validation to judge).
pub fn with_port(addr: &str, port: u16) -> String {
    match Ipv4Addr::from_str(addr) {
        Ok(a) => format!("{a}:{port}"),
        Err(_) => addr.to_owned(),
    }
}

fn inhibit_default() -> bool {
    defaults::INHIBIT_ON_FAILURE
}

fn is_inhibit_default(v: &bool) -> bool {
    *v == defaults::INHIBIT_ON_FAILURE
}

/// A keepalived-style health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub kind: CheckKind,
    /// Port to check; the real server's port when absent.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "check_path_default")]
    pub path: String,
    #[serde(default = "check_status_default")]
    pub expect_status: u16,
    #[serde(default = "check_interval_default")]
    pub interval_ms: u32,
    #[serde(default = "check_timeout_default")]
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down server back.
    #[serde(default = "check_rise_default")]
    pub rise: u32,
    /// Consecutive failures that take a server out.
    #[serde(default = "check_fall_default")]
    pub fall: u32,
    /// Time before the next check after a failure that has not taken the server out yet
    /// (keepalived's `delay_before_retry`); none means `interval_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_ms: Option<u32>,
    /// `Host` of the HTTP request (keepalived's `virtualhost`); none: the checked `address:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `https` only: the server name sent in the TLS handshake (SNI; keepalived's `enable_sni` /
    /// `sni_name`); none sends no name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}

fn check_path_default() -> String {
    "/".into()
}
fn check_status_default() -> u16 {
    200
}
fn check_interval_default() -> u32 {
    1000
}
fn check_timeout_default() -> u32 {
    500
}
fn check_rise_default() -> u32 {
    2
}
fn check_fall_default() -> u32 {
    2
}

fn sched_default() -> Sched {
    defaults::SCHED
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealConfig {
    /// `RS:port`; `RS` alone takes the service's port (filled in when the configuration is read).
    pub addr: String,
    #[serde(default = "weight_default")]
    pub weight: u32,
    /// `fullnat` (default, `-b`), `nat` (`-m`), `dr` (`-g`) or `tun` (`-i`); see docs/config.md.
    #[serde(default = "fwd_default")]
    pub forward: Forward,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    #[serde(default)]
    pub l_threshold: u32,
}

fn weight_default() -> u32 {
    1
}

fn fwd_default() -> Forward {
    defaults::FORWARD
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

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// The prefix with the host bits cleared (`198.18.0.1/24` is on `198.18.0.0/24`).
    pub fn network(&self) -> Cidr {
        Cidr { addr: (u32::from(self.addr) & self.mask()).into(), len: self.len }
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (u32::from(a) & self.mask()) == (u32::from(self.addr) & self.mask())
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| format!("\"{s}\" is not ADDRESS/PREFIXLEN"))?;
        let addr = Ipv4Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv4 address"))?;
        let len =
            u8::from_str(l).ok().filter(|l| *l <= 32).ok_or_else(|| format!("bad prefix length \"{l}\""))?;
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parses `A.B.C.D:PORT` with a non-zero port.
pub fn parse_endpoint(s: &str) -> Result<(Ipv4Addr, u16), String> {
    let (a, p) = s.rsplit_once(':').ok_or_else(|| format!("\"{s}\" is not ADDRESS:PORT"))?;
    let addr = Ipv4Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv4 address"))?;
    let port = u16::from_str(p).ok().filter(|p| *p != 0).ok_or_else(|| format!("bad port \"{p}\""))?;
    Ok((addr, port))
}

/// vdev drivers rvs knows how to drive; anything else is refused before DPDK sees it.
pub const KNOWN_VDEVS: &[&str] = &[
    "net_af_packet",
    "net_af_xdp",
    "net_tap",
    "net_memif",
    "net_ring",
    "net_null",
    "net_pcap",
    "net_virtio_user",
];

/// What a `device` string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    Pci(String),
    /// Driver name (`net_af_packet`), instance name (`net_af_packet0`), and the `key=value` arguments.
    Vdev {
        driver: String,
        name: String,
        args: Vec<(String, String)>,
    },
}

pub fn parse_device(s: &str) -> Result<DeviceKind, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty device".into());
    }
    if is_pci_addr(s) {
        return Ok(DeviceKind::Pci(s.to_owned()));
    }
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default().to_owned();
    let driver = name.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
    if !KNOWN_VDEVS.contains(&driver.as_str()) {
        return Err(format!(
            "unknown device \"{name}\" (a PCI address or one of {})",
            KNOWN_VDEVS.join(", ")
        ));
    }
    if driver == name {
        return Err(format!("vdev \"{name}\" needs an instance number, e.g. {driver}0"));
    }
    let mut args = Vec::new();
    for kv in parts {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("vdev argument \"{kv}\" is not key=value"))?;
        args.push((k.to_owned(), v.to_owned()));
    }
    Ok(DeviceKind::Vdev { driver, name, args })
}

fn is_pci_addr(s: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F, hex digits.
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let (head, func) = match s.rsplit_once('.') {
        Some(x) => x,
        None => return false,
    };
    if !(func.len() == 1 && func.chars().all(|c| c.is_digit(8))) {
        return false;
    }
    let f: Vec<&str> = head.split(':').collect();
    match f.as_slice() {
        [d, b, dev] => hex(d, 4) && hex(b, 2) && hex(dev, 2),
        [b, dev] => hex(b, 2) && hex(dev, 2),
        _ => false,
    }
}

impl Config {
    /// Parses TOML; syntax and type errors come back as one line naming the line and key.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text)
            .map_err(|e| {
                let (line, key) = match e.span() {
                    Some(span) => {
                        let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
                        let line_text = text.lines().nth(line_no - 1).unwrap_or("");
                        let key =
                            line_text.split_once('=').map(|(k, _)| k.trim().to_owned()).unwrap_or_default();
                        (format!("line {line_no}"), key)
                    }
                    None => (String::new(), String::new()),
                };
                let msg = e.message().replace('\n', " ");
                let field = match (line.is_empty(), key.is_empty()) {
                    (false, false) => format!("{line}: {key}"),
                    (false, true) => line,
                    _ => String::new(),
                };
                err(field, msg)
            })
            .map(|mut c| {
                c.fill_real_ports();
                c
            })
    }

    /// Gives every real server written without a port (`RS`) its service's port, as ipvsadm's
    /// `-r` does; [`Config::from_toml`] calls it, so everything after sees `RS:port`.
    pub fn fill_real_ports(&mut self) {
        for s in &mut self.services {
            s.fill_real_ports();
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything that does not need the machine. The first error wins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(err(
                "version",
                format!("unsupported version {}, this rvsd reads {CONFIG_VERSION}", self.version),
            ));
        }
        self.metrics.validate()?;
        let w = &self.workers;
        if w.lcores.is_empty() {
            return Err(err("workers.lcores", "at least one worker lcore is needed"));
        }
        let mut seen = HashSet::new();
        for (i, l) in w.lcores.iter().enumerate() {
            if *l >= 128 {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is out of range")));
            }
            if *l == w.main_lcore {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is the main lcore")));
            }
            if !seen.insert(*l) {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is listed twice")));
            }
        }
        if !w.cpus.is_empty() && w.cpus.len() != w.lcores.len() {
            return Err(err(
                "workers.cpus",
                format!("{} CPUs for {} lcores: give one per lcore, or none", w.cpus.len(), w.lcores.len()),
            ));
        }
        for (i, c) in w.cpus.iter().chain(w.main_cpu.iter()).enumerate() {
            if *c >= 1024 {
                let f =
                    if i < w.cpus.len() { format!("workers.cpus[{i}]") } else { "workers.main_cpu".into() };
                return Err(err(f, format!("CPU {c} is out of range")));
            }
        }
        if !(64..=65536).contains(&w.handoff_ring) || !w.handoff_ring.is_power_of_two() {
            return Err(err(
                "workers.handoff_ring",
                format!("{} must be a power of two in 64..=65536", w.handoff_ring),
            ));
        }
        if w.lcores.len() > 64 {
            return Err(err(
                "workers.lcores",
                format!("{} workers; at most 64 are supported", w.lcores.len()),
            ));
        }
        if w.burst == 0 || w.burst > 256 {
            return Err(err("workers.burst", format!("{} is outside 1..=256", w.burst)));
        }
        for (f, v) in [("workers.rx_desc", w.rx_desc), ("workers.tx_desc", w.tx_desc)] {
            if !(64..=16384).contains(&v) || !v.is_power_of_two() {
                return Err(err(f, format!("{v} must be a power of two in 64..=16384")));
            }
        }
        if w.mbufs < 1024 {
            return Err(err("workers.mbufs", "at least 1024 mbufs are needed"));
        }
        if self.eal.log_level == 0 || self.eal.log_level > 8 {
            return Err(err("eal.log_level", "must be 1..=8"));
        }
        if self.ports.is_empty() {
            return Err(err("ports", "at least one port is needed"));
        }
        let mut names = HashSet::new();
        let mut devices = HashSet::new();
        let mut subnets = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = |k: &str| format!("ports[{i}].{k}");
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(err(f("name"), format!("\"{}\" is empty or used twice", p.name)));
            }
            let dev = parse_device(&p.device).map_err(|m| err(f("device"), m))?;
            let dev_name = match &dev {
                DeviceKind::Pci(a) => a.clone(),
                DeviceKind::Vdev { name, .. } => name.clone(),
            };
            if !devices.insert(dev_name.clone()) {
                return Err(err(f("device"), format!("\"{dev_name}\" is used by two ports")));
            }
            let c = Cidr::from_str(&p.addr).map_err(|m| err(f("addr"), m))?;
            if c.len == 0 || c.len > 30 {
                return Err(err(f("addr"), format!("prefix /{} leaves no room for neighbours", c.len)));
            }
            if !(576..=9000).contains(&p.mtu) {
                return Err(err(f("mtu"), format!("{} is outside 576..=9000", p.mtu)));
            }
            subnets.push(c);
        }
        for (i, r) in self.routes.iter().enumerate() {
            Cidr::from_str(&r.dst).map_err(|m| err(format!("routes[{i}].dst"), m))?;
            let via = Ipv4Addr::from_str(&r.via).map_err(|_| {
                err(format!("routes[{i}].via"), format!("\"{}\" is not an IPv4 address", r.via))
            })?;
            if !subnets.iter().any(|s| s.contains(via)) {
                return Err(err(format!("routes[{i}].via"), format!("{via} is not in any port's subnet")));
            }
        }
        let c = &self.conn;
        if c.max_per_worker == 0 || c.max_per_worker > MAX_CONNS_PER_WORKER {
            return Err(err(
                "conn.max_per_worker",
                format!("{} is outside 1..={MAX_CONNS_PER_WORKER} (about 118 bytes each)", c.max_per_worker),
            ));
        }
        if c.lport_min == 0 || c.lport_min > c.lport_max {
            return Err(err("conn.lport_min", "local port range is empty"));
        }
        let sp = &self.synproxy;
        if sp.period_s == 0 {
            return Err(err("synproxy.period_s", "must be at least 1"));
        }
        if sp.syn_retry_ms < 100 {
            return Err(err("synproxy.syn_retry_ms", "must be at least 100"));
        }
        if sp.wscale > 14 || !(536..=9000).contains(&sp.mss) {
            return Err(err("synproxy.wscale", "wscale must be 0..=14 and mss 536..=9000"));
        }
        let sp_span_ms = (sp.syn_retries as u64 + 1) * sp.syn_retry_ms as u64;
        let any_synproxy = self.services.iter().any(|s| s.synproxy);
        if any_synproxy && (c.timeouts.syn_recv as u64) * 1000 <= sp_span_ms {
            return Err(err(
                "conn.timeouts.syn_recv",
                format!("must outlast the SYN-proxy retries ({sp_span_ms} ms): a proxied connection waits in SYN_RECV"),
            ));
        }
        // Everything a worker preallocates is bounded, so no config can ask for unbounded memory.
        for (f, v, max) in [
            ("conn.arp_queue", c.arp_queue, 4096),
            ("conn.persist_templates", c.persist_templates, 1 << 24),
            ("conn.expire_budget", c.expire_budget, 1 << 20),
            ("conn.proxy_timers", c.proxy_timers, 1 << 24),
            ("conn.frag.max_datagrams", c.frag.max_datagrams, 1 << 20),
            ("conn.frag.max_per_source", c.frag.max_per_source, 1 << 20),
            ("conn.frag.timeout_ms", c.frag.timeout_ms, 60_000),
            ("synproxy.max_half_open", self.synproxy.max_half_open, 1 << 22),
            ("synproxy.max_held", self.synproxy.max_held, 64),
        ] {
            if v == 0 || v > max {
                return Err(err(f, format!("{v} is outside 1..={max}")));
            }
        }
        let t = &c.timeouts;
        for (k, v) in [
            ("established", t.established),
            ("syn_sent", t.syn_sent),
            ("syn_recv", t.syn_recv),
            ("fin_wait", t.fin_wait),
            ("time_wait", t.time_wait),
            ("close", t.close),
            ("close_wait", t.close_wait),
            ("last_ack", t.last_ack),
            ("udp", t.udp),
        ] {
            if v > MAX_TIMEOUT_S {
                return Err(err(
                    format!("conn.timeouts.{k}"),
                    format!("{v} s is more than {MAX_TIMEOUT_S} s"),
                ));
            }
        }
        if self.services.len() > MAX_SERVICES {
            return Err(err(
                "services",
                format!("{} services exceed the limit of {MAX_SERVICES}", self.services.len()),
            ));
        }
        let mut svcs = HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let f = |k: &str| format!("services[{i}].{k}");
            if s.reals.len() > MAX_REALS_PER_SERVICE {
                return Err(err(
                    f("reals"),
                    format!("{} real servers exceed the limit of {MAX_REALS_PER_SERVICE}", s.reals.len()),
                ));
            }
            if s.laddrs.len() > MAX_LADDRS_PER_SERVICE {
                return Err(err(
                    f("laddrs"),
                    format!(
                        "{} local addresses exceed the limit of {MAX_LADDRS_PER_SERVICE}",
                        s.laddrs.len()
                    ),
                ));
            }
            let (vip, vport) = parse_endpoint(&s.vip).map_err(|m| err(f("vip"), m))?;
            // What a forwarding method asks of a real server's address and port.
            let forward_fits = |(ra, rp): (Ipv4Addr, u16), forward: Forward| -> Result<(), String> {
                if forward.keeps_port() && rp != vport {
                    return Err(format!(
                        "port {rp} is not the service's port {vport}: DR/TUN cannot change the port (write {ra}:{vport} or {ra})"
                    ));
                }
                if forward == Forward::Route && !subnets.iter().any(|c| c.contains(ra)) {
                    let nets: Vec<String> = subnets.iter().map(|c| c.network().to_string()).collect();
                    return Err(format!(
                        "{ra} is on none of the ports' networks ({}): DR needs an on-link real server",
                        nets.join(", ")
                    ));
                }
                Ok(())
            };
            if !svcs.insert((s.proto, vip, vport)) {
                return Err(err(f("vip"), format!("{} service {} is defined twice", s.proto, s.vip)));
            }
            if s.synproxy && s.proto != Proto::Tcp {
                return Err(err(f("synproxy"), "syn-proxy applies to tcp services only"));
            }
            let mut laddrs = HashSet::new();
            for (j, l) in s.laddrs.iter().enumerate() {
                let a = Ipv4Addr::from_str(l).map_err(|_| {
                    err(format!("services[{i}].laddrs[{j}]"), format!("\"{l}\" is not an IPv4 address"))
                })?;
                if !laddrs.insert(a) {
                    return Err(err(format!("services[{i}].laddrs[{j}]"), format!("{a} is listed twice")));
                }
            }
            let mut reals = HashSet::new();
            for (j, r) in s.reals.iter().enumerate() {
                let g = |k: &str| format!("services[{i}].reals[{j}].{k}");
                let ep = parse_endpoint(&r.addr).map_err(|m| err(g("addr"), m))?;
                if !reals.insert(ep) {
                    return Err(err(g("addr"), format!("real server {} is listed twice", r.addr)));
                }
                if r.weight > MAX_WEIGHT {
                    return Err(err(g("weight"), format!("{} is outside 0..={MAX_WEIGHT}", r.weight)));
                }
                forward_fits(ep, r.forward).map_err(|m| err(g("addr"), m))?;
            }
            // keepalived's sorry server is a real server of the service while it serves.
            if let Some(ss) = &s.sorry_server {
                let ep = parse_endpoint(&ss.addr).map_err(|m| err(f("sorry_server.addr"), m))?;
                forward_fits(ep, ss.forward).map_err(|m| err(f("sorry_server.addr"), m))?;
            }
            let sorry = s.sorry_server.iter().map(|ss| (&ss.addr, ss.forward));
            let forwards: Vec<(&String, Forward)> =
                s.reals.iter().map(|r| (&r.addr, r.forward)).chain(sorry).collect();
            if s.synproxy {
                if let Some(r) = forwards.iter().find(|r| !r.1.replies_through_gateway()) {
                    return Err(err(
                        f("synproxy"),
                        format!(
                            "SYN-proxy needs the real server's replies through the gateway; real {} forwards {}",
                            r.0, r.1
                        ),
                    ));
                }
            }
            if !s.proxy_protocol.is_off() {
                if s.proto != Proto::Tcp {
                    return Err(err(f("proxy_protocol"), "the PROXY protocol applies to tcp services only"));
                }
                if s.toa {
                    return Err(err(
                        f("proxy_protocol"),
                        "the PROXY protocol and TOA both carry the client's address; choose one",
                    ));
                }
                if let Some(r) = s.reals.iter().find(|r| !r.forward.replies_through_gateway()) {
                    return Err(err(
                        f("proxy_protocol"),
                        format!(
                            "the PROXY protocol needs the real server's replies through the gateway (their acknowledgements are shifted); real {} forwards {}",
                            r.addr, r.forward
                        ),
                    ));
                }
            }
            if s.toa {
                if let Some(r) = forwards.iter().find(|r| r.1 != Forward::Fullnat) {
                    return Err(err(
                        f("toa"),
                        format!(
                            "TOA is for FULLNAT real servers (with {} the real server sees the client's address itself); real {} forwards {}",
                            r.1, r.0, r.1
                        ),
                    ));
                }
            }
            if let Some(c) = &s.check {
                if c.interval_ms < 100 || c.timeout_ms == 0 || c.timeout_ms > c.interval_ms {
                    return Err(err(
                        f("check.timeout_ms"),
                        "need 100 <= interval_ms and 0 < timeout_ms <= interval_ms",
                    ));
                }
                if c.rise == 0 || c.fall == 0 {
                    return Err(err(f("check.rise"), "rise and fall must be at least 1"));
                }
                if c.retry_ms.is_some_and(|r| r > MAX_CHECK_RETRY_MS) {
                    return Err(err(f("check.retry_ms"), format!("more than {MAX_CHECK_RETRY_MS} ms")));
                }
                if c.kind.is_http() && !c.path.starts_with('/') {
                    return Err(err(f("check.path"), "must start with /"));
                }
                if c.kind.is_http() && c.path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(err(f("check.path"), "must not hold spaces or control characters"));
                }
                if let Some(h) = &c.host {
                    if !c.kind.is_http() {
                        return Err(err(f("check.host"), "only http and https checks send a Host"));
                    }
                    if h.is_empty() || h.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                        return Err(err(
                            f("check.host"),
                            format!("{h:?} is empty or holds spaces or control characters"),
                        ));
                    }
                }
                if let Some(n) = &c.sni {
                    if c.kind != CheckKind::Https {
                        return Err(err(f("check.sni"), "only https checks send a TLS server name"));
                    }
                    if rustls::pki_types::DnsName::try_from(n.as_str()).is_err() {
                        return Err(err(f("check.sni"), format!("\"{n}\" is not a DNS name")));
                    }
                }
            }
            if s.quorum == 0 {
                return Err(err(f("quorum"), "must be at least 1 (keepalived's range)"));
            }
            if s.hysteresis >= s.quorum {
                return Err(err(
                    f("hysteresis"),
                    format!("{} must be below quorum {}", s.hysteresis, s.quorum),
                ));
            }
        }
        Ok(())
    }

    /// Things that are valid but probably not meant, one line each naming the field; rvsd logs them
    /// at load and `rvsd --check` prints them. A FULLNAT service with real servers and no local
    /// address is valid because DPVS's set-up order (`-A`, `-a`, then `--add-laddr`) passes through
    /// it: until a local address arrives the dataplane drops its new connections (`drop.no_laddr`).
    /// Real servers forwarding NAT, DR or TUN need no local address, so a service with only those
    /// is not warned about.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            if s.reals.iter().any(|r| r.forward == Forward::Fullnat) && s.laddrs.is_empty() {
                w.push(format!(
                    "services[{i}].laddrs: {} {} has FULLNAT real servers but no local address; their new connections are dropped (drop.no_laddr) until one is added",
                    s.proto, s.vip
                ));
            }
            let total: u64 = s.reals.iter().map(|r| u64::from(r.weight)).sum();
            let start = u64::from(s.quorum) + u64::from(s.hysteresis);
            if s.sorry_server.is_some() && total < start {
                w.push(format!(
                    "services[{i}].quorum: {} {}: its real servers weigh {total} in all, below quorum {} + hysteresis {}: it never has quorum and its sorry server serves alone",
                    s.proto, s.vip, s.quorum, s.hysteresis
                ));
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[workers]
lcores = [1]

[[ports]]
name = "client"
device = "net_af_packet0,iface=rvs-c0"
addr = "198.18.0.1/24"

[[ports]]
name = "server"
device = "net_af_packet1,iface=rvs-s0"
addr = "198.18.1.1/24"

[[routes]]
dst = "0.0.0.0/0"
via = "198.18.0.254"

[[services]]
proto = "tcp"
vip = "198.18.0.100:80"
sched = "rr"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:80", weight = 2 }]
"#;

    #[test]
    fn good_config_parses_and_validates() {
        let c = Config::from_toml(GOOD).unwrap();
        c.validate().unwrap();
        assert_eq!(c.workers.burst, defaults::BURST);
        assert_eq!(c.services[0].reals[1].weight, 2);
        assert_eq!(c.conn.timeouts.established, 900);
        // save/restore round trip is lossless
        let again = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    fn bad(replace: &str, with: &str) -> ConfigError {
        let text = GOOD.replacen(replace, with, 1);
        match Config::from_toml(&text) {
            Err(e) => e,
            Ok(c) => c.validate().unwrap_err(),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("net_af_packet0,iface", "net_bogus0,iface", "ports[0].device"),
            ("198.18.0.1/24", "198.18.0.300/24", "ports[0].addr"),
            ("198.18.0.1/24", "198.18.0.1", "ports[0].addr"),
            ("lcores = [1]", "lcores = [0]", "workers.lcores[0]"),
            ("lcores = [1]", "lcores = []", "workers.lcores"),
            // typed values are refused while parsing: the line and key name the field
            ("sched = \"rr\"", "sched = \"xyz\"", "line 22: sched"),
            ("weight = 2", "weight = 70000", "services[0].reals[1].weight"),
            ("198.18.1.12:80", "198.18.1.11:80", "services[0].reals[1].addr"),
            ("198.18.1.12:80", "198.18.1.12:0", "services[0].reals[1].addr"),
            ("via = \"198.18.0.254\"", "via = \"10.0.0.1\"", "routes[0].via"),
            ("proto = \"tcp\"", "proto = \"sctp\"", "line 20: proto"),
        ];
        assert_eq!(
            bad("sched = \"rr\"", "sched = \"xyz\"").msg,
            "unknown scheduler \"xyz\" (one of rr, wrr, lc, wlc, sh, mh)"
        );
        assert_eq!(
            bad("proto = \"tcp\"", "proto = \"sctp\"").msg,
            "unknown protocol \"sctp\" (one of tcp, udp)"
        );
        for (from, to, field) in cases {
            let e = bad(from, to);
            assert_eq!(e.field, field, "{from} -> {to}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    /// The quorum example of docs/config.md, and what validation refuses around it.
    #[test]
    fn quorum_sorry_server_and_https_check() {
        let svc = r#"
[[services]]
proto = "tcp"
vip = "198.18.0.100:443"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:443", weight = 2 }, { addr = "198.18.1.12:443", weight = 2 }]
check = { kind = "https", path = "/health", interval_ms = 2000, timeout_ms = 1000, host = "www.example.org" }
quorum = 3
hysteresis = 1
sorry_server = { addr = "198.18.1.20:443", inhibit = true }
"#;
        let text = format!("{GOOD}{svc}");
        let c = Config::from_toml(&text).unwrap();
        c.validate().unwrap();
        let s = &c.services[1];
        assert_eq!((s.quorum, s.hysteresis), (3, 1));
        assert_eq!(
            s.sorry_server,
            Some(SorryServerConfig {
                addr: "198.18.1.20:443".into(),
                forward: Forward::Fullnat,
                inhibit: true
            })
        );
        let check = s.check.as_ref().unwrap();
        assert_eq!(
            (check.kind, check.host.as_deref(), check.sni.as_deref()),
            (CheckKind::Https, Some("www.example.org"), None)
        );
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c, "save/restore round trip");
        // Defaults are not written: a service without quorum settings saves as before.
        assert!(!Config::from_toml(GOOD).unwrap().to_toml().contains("quorum"));
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        for (from, to, field) in [
            ("hysteresis = 1", "hysteresis = 3", "services[1].hysteresis"),
            ("quorum = 3", "quorum = 0", "services[1].quorum"),
            ("198.18.1.20:443", "198.18.1.20:0", "services[1].sorry_server.addr"),
            // A sorry server follows a real server's rules: DR keeps the service's port, is on-link,
            (
                "198.18.1.20:443\", inhibit",
                "198.18.1.20:8443\", forward = \"dr\", inhibit",
                "services[1].sorry_server.addr",
            ),
            (
                "198.18.1.20:443\", inhibit",
                "10.9.9.9:443\", forward = \"dr\", inhibit",
                "services[1].sorry_server.addr",
            ),
            // and takes no TOA.
            (
                "sorry_server = { addr = \"198.18.1.20:443\", inhibit = true }",
                "toa = true\nsorry_server = { addr = \"198.18.1.20:443\", forward = \"dr\" }",
                "services[1].toa",
            ),
            ("host = \"www.example.org\"", "host = \"a b\"", "services[1].check.host"),
            ("host = \"www.example.org\"", "sni = \"not a name\"", "services[1].check.sni"),
            ("kind = \"https\"", "kind = \"tcp\"", "services[1].check.host"),
            ("path = \"/health\"", "path = \"/a\\r\\nX: y\"", "services[1].check.path"),
        ] {
            let e = Config::from_toml(&text.replacen(from, to, 1)).unwrap().validate().unwrap_err();
            assert_eq!(e.field, field, "{from} -> {to}: {e}");
        }
        let e =
            Config::from_toml(&text.replacen("kind = \"https\"", "kind = \"http\", sni = \"a.example\"", 1))
                .unwrap()
                .validate()
                .unwrap_err();
        assert_eq!(e.field, "services[1].check.sni", "{e}");
        // Without a port, the service's; NAT (its ipvsadm name masq too) may change the port.
        let c = Config::from_toml(&text.replacen(
            "198.18.1.20:443\", inhibit = true",
            "198.18.1.20\", forward = \"masq\"",
            1,
        ))
        .unwrap();
        c.validate().unwrap();
        let ss = c.services[1].sorry_server.as_ref().unwrap();
        assert_eq!((ss.addr.as_str(), ss.forward, ss.inhibit), ("198.18.1.20:443", Forward::Masq, false));
        // Real servers that can never reach quorum + hysteresis: valid, with a warning.
        let c = Config::from_toml(&text.replacen("quorum = 3", "quorum = 4", 1)).unwrap();
        c.validate().unwrap();
        let w = c.warnings();
        assert!(w.len() == 1 && w[0].starts_with("services[1].quorum: tcp 198.18.0.100:443: its real servers weigh 4 in all, below quorum 4 + hysteresis 1"), "{w:?}");
    }

    #[test]
    fn metrics_endpoint_is_off_by_default_and_checked_when_on() {
        let c = Config::from_toml(GOOD).unwrap();
        assert_eq!(c.metrics, MetricsConfig::default());
        assert_eq!(c.metrics.listen_addr().unwrap(), None);
        assert_eq!(c.metrics.max_clients, defaults::METRICS_MAX_CLIENTS);
        let on = format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9100\"\n");
        let c = Config::from_toml(&on).unwrap();
        c.validate().unwrap();
        assert_eq!(c.metrics.listen_addr().unwrap(), Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        for (line, field) in [
            ("listen = \"127.0.0.1\"", "metrics.listen"),
            ("listen = \"localhost:9100\"", "metrics.listen"),
            ("max_clients = 0", "metrics.max_clients"),
            ("read_timeout_ms = 10", "metrics.read_timeout_ms"),
            ("max_request_bytes = 100", "metrics.max_request_bytes"),
        ] {
            let e =
                Config::from_toml(&format!("{GOOD}\n[metrics]\n{line}\n")).unwrap().validate().unwrap_err();
            assert_eq!(e.field, field, "{line}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
        let e = Config::from_toml(&format!("{GOOD}\n[metrics]\nport = 9100\n")).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn timeouts_the_connection_table_cannot_hold_are_refused() {
        // The connection table's timer wheel compares deadlines in wrapping u32 ticks and refuses
        // (panics on) timeouts beyond 2^30 ticks of 64 ms (~795 days); u32 seconds go far beyond.
        let e = bad("[[services]]", "[conn.timeouts]\nestablished = 4000000000\n\n[[services]]");
        assert_eq!(e.field, "conn.timeouts.established", "{e}");
        let e = bad("[[services]]", "[conn.timeouts]\nudp = 100000000\n\n[[services]]");
        assert_eq!(e.field, "conn.timeouts.udp", "{e}");
        // The largest accepted timeouts build a worker.
        let max = MAX_TIMEOUT_S;
        let text = GOOD.replacen(
            "[[services]]",
            &format!(
                "[conn]\nmax_per_worker = 16\n[conn.timeouts]\nestablished = {max}\nsyn_sent = {max}\n\
                 syn_recv = {max}\nfin_wait = {max}\ntime_wait = {max}\nclose = {max}\n\
                 close_wait = {max}\nlast_ack = {max}\nudp = {max}\n\n[[services]]"
            ),
            1,
        );
        let c = Config::from_toml(&text).unwrap();
        c.validate().unwrap();
        let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
        let stats = std::sync::Arc::new(rvs_dataplane::stats::Stats::default());
        let _ =
            rvs_dataplane::worker::Worker::new(&setup, 0, rvs_dataplane::frame::VecPool::default(), stats);
    }

    #[test]
    fn toml_errors_are_one_line_with_the_key() {
        let e = bad("lcores = [1]", "lcores = [1]\nburst = \"many\"");
        assert!(e.field.contains("burst"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let e = bad("[workers]", "[workers]\nbogus = 1");
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn preallocated_sizes_are_bounded() {
        for (key, section, v) in [
            ("arp_queue", "[conn]", "5000"),
            ("persist_templates", "[conn]", "99999999"),
            ("max_half_open", "[synproxy]", "0"),
            ("max_held", "[synproxy]", "65"),
        ] {
            let e = bad("[[services]]", &format!("{section}\n{key} = {v}\n\n[[services]]"));
            assert!(e.field.ends_with(key), "{key}: {e}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let mut c = Config::from_toml(GOOD).unwrap();
        let r = c.services[0].reals[0].clone();
        c.services[0].reals = (0..=MAX_REALS_PER_SERVICE as u32)
            .map(|i| RealConfig { addr: format!("198.18.{}.{}:80", 2 + i / 250, 1 + i % 250), ..r.clone() })
            .collect();
        assert_eq!(c.validate().unwrap_err().field, "services[0].reals");
        let mut c = Config::from_toml(GOOD).unwrap();
        let s = c.services[0].clone();
        c.services = (0..=MAX_SERVICES as u32)
            .map(|i| ServiceConfig { vip: format!("198.18.0.100:{}", 1 + i), reals: vec![], ..s.clone() })
            .collect();
        assert_eq!(c.validate().unwrap_err().field, "services");
        let mut c = Config::from_toml(GOOD).unwrap();
        c.services[0].laddrs =
            (0..=MAX_LADDRS_PER_SERVICE as u32).map(|i| format!("198.18.5.{}", i % 256)).collect();
        c.services[0].laddrs.dedup();
        c.services[0].laddrs.push("198.18.6.1".into());
        assert_eq!(c.validate().unwrap_err().field, "services[0].laddrs");
    }

    #[test]
    fn reals_without_local_address_are_valid_with_a_warning() {
        let c = Config::from_toml(&GOOD.replace("laddrs = [\"198.18.1.100\"]\n", "")).unwrap();
        c.validate().unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("services[0].laddrs: tcp 198.18.0.100:80 has FULLNAT real servers"),
            "{w:?}"
        );
        assert!(Config::from_toml(GOOD).unwrap().warnings().is_empty());
    }

    /// GOOD with its two real servers replaced by `reals` (TOML inline tables) and the service's
    /// `extra` lines.
    fn with_reals(reals: &str, extra: &str) -> Result<Config, ConfigError> {
        let text = GOOD.replace("laddrs = [\"198.18.1.100\"]\n", "").replace(
            "reals = [{ addr = \"198.18.1.11:80\" }, { addr = \"198.18.1.12:80\", weight = 2 }]",
            &format!("reals = [{reals}]\n{extra}"),
        );
        let c = Config::from_toml(&text)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn forwarding_methods_read_canonical_names_and_aliases() {
        for (name, want) in [
            ("fullnat", Forward::Fullnat),
            ("nat", Forward::Masq),
            ("dr", Forward::Route),
            ("tun", Forward::Tunnel),
            ("masq", Forward::Masq),
            ("masquerading", Forward::Masq),
            ("route", Forward::Route),
            ("gatewaying", Forward::Route),
            ("direct", Forward::Route),
            ("tunnel", Forward::Tunnel),
            ("ipip", Forward::Tunnel),
        ] {
            assert_eq!(name.parse::<Forward>(), Ok(want), "{name}");
            let c =
                with_reals(&format!("{{ addr = \"198.18.1.11:80\", forward = \"{name}\" }}"), "").unwrap();
            assert_eq!(c.services[0].reals[0].forward, want);
            // written back under its canonical name, and read again the same
            let text = c.to_toml();
            assert!(text.contains(&format!("forward = \"{}\"", want.as_str())), "{text}");
            assert_eq!(Config::from_toml(&text).unwrap(), c);
        }
        assert_eq!(Forward::ALL.map(Forward::as_str), ["fullnat", "nat", "dr", "tun"]);
        for f in Forward::ALL {
            assert_eq!(Forward::of_xlat(f.xlat()), f);
        }
        let e = with_reals("{ addr = \"198.18.1.11:80\", forward = \"bridge\" }", "").unwrap_err();
        assert_eq!(
            e.msg,
            "unknown forwarding method \"bridge\" (one of fullnat, nat, dr, tun; also read: masq, masquerading, route, gatewaying, direct, tunnel, ipip, fnat)"
        );
        assert_eq!(e.field, "line 23: reals", "{e}");
    }

    #[test]
    fn a_service_may_mix_methods() {
        let c = with_reals(
            r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "nat" },
               { addr = "198.18.1.13:80", forward = "dr" }, { addr = "10.7.0.1:80", forward = "tun" }"#,
            "laddrs = [\"198.18.1.100\"]",
        )
        .unwrap();
        let got: Vec<Forward> = c.services[0].reals.iter().map(|r| r.forward).collect();
        assert_eq!(got, Forward::ALL);
        let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
        let xlats: Vec<_> = setup.services[0].reals.iter().map(|r| r.xlat).collect();
        assert_eq!(xlats, Forward::ALL.map(Forward::xlat));
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn real_servers_without_a_port_take_the_services() {
        let c = with_reals(
            r#"{ addr = "198.18.1.11", forward = "dr" }, { addr = "10.7.0.1", forward = "tun" },
               { addr = "198.18.1.12", forward = "nat" }"#,
            "",
        )
        .unwrap();
        let addrs: Vec<&str> = c.services[0].reals.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(addrs, ["198.18.1.11:80", "10.7.0.1:80", "198.18.1.12:80"]);
        // still refused: a bad address, port 0
        let e = with_reals(r#"{ addr = "198.18.1.300", forward = "dr" }"#, "").unwrap_err();
        assert_eq!(e.field, "services[0].reals[0].addr", "{e}");
    }

    #[test]
    fn method_rules_are_one_line_naming_the_field() {
        let cases = [
            (
                r#"{ addr = "10.7.0.1:80", forward = "dr" }"#,
                "",
                "services[0].reals[0].addr: 10.7.0.1 is on none of the ports' networks (198.18.0.0/24, 198.18.1.0/24): DR needs an on-link real server",
            ),
            (
                r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "dr" }"#,
                "",
                "services[0].reals[1].addr: port 8080 is not the service's port 80: DR/TUN cannot change the port (write 198.18.1.12:80 or 198.18.1.12)",
            ),
            (
                r#"{ addr = "10.7.0.1:81", forward = "tun" }"#,
                "",
                "services[0].reals[0].addr: port 81 is not the service's port 80: DR/TUN cannot change the port (write 10.7.0.1:80 or 10.7.0.1)",
            ),
            (
                r#"{ addr = "198.18.1.11:80", forward = "nat" }, { addr = "198.18.1.12:80", forward = "dr" }"#,
                "synproxy = true",
                "services[0].synproxy: SYN-proxy needs the real server's replies through the gateway; real 198.18.1.12:80 forwards dr",
            ),
            (
                r#"{ addr = "10.7.0.1:80", forward = "tun" }"#,
                "synproxy = true",
                "services[0].synproxy: SYN-proxy needs the real server's replies through the gateway; real 10.7.0.1:80 forwards tun",
            ),
            (
                r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "nat" }"#,
                "laddrs = [\"198.18.1.100\"]\ntoa = true",
                "services[0].toa: TOA is for FULLNAT real servers (with nat the real server sees the client's address itself); real 198.18.1.12:8080 forwards nat",
            ),
            (
                r#"{ addr = "198.18.1.11:80", forward = "dr" }"#,
                "toa = true",
                "services[0].toa: TOA is for FULLNAT real servers (with dr the real server sees the client's address itself); real 198.18.1.11:80 forwards dr",
            ),
        ];
        for (reals, extra, want) in cases {
            let e = with_reals(reals, extra).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
        // what the rules leave alone: NAT may change the port and take SYN-proxy; TUN real servers
        // may be routed; DR on either port's network; FULLNAT with TOA and SYN-proxy
        for (reals, extra) in [
            (r#"{ addr = "198.18.1.11:8080", forward = "nat" }"#, "synproxy = true"),
            (r#"{ addr = "10.7.0.1:80", forward = "tun" }"#, ""),
            (
                r#"{ addr = "198.18.0.20:80", forward = "dr" }, { addr = "198.18.1.20:80", forward = "dr" }"#,
                "",
            ),
            (r#"{ addr = "198.18.1.11:8080" }"#, "laddrs = [\"198.18.1.100\"]\ntoa = true\nsynproxy = true"),
        ] {
            with_reals(reals, extra).unwrap_or_else(|e| panic!("{reals} {extra}: {e}"));
        }
    }

    #[test]
    fn proxy_protocol_rules() {
        for (reals, extra, want) in [
            (
                r#"{ addr = "198.18.1.11:80" }"#,
                "laddrs = [\"198.18.1.100\"]\ntoa = true\nproxy_protocol = \"v1\"",
                "services[0].proxy_protocol: the PROXY protocol and TOA both carry the client's address; choose one",
            ),
            (
                r#"{ addr = "198.18.1.11:80", forward = "dr" }"#,
                "proxy_protocol = \"v2\"",
                "services[0].proxy_protocol: the PROXY protocol needs the real server's replies through the gateway (their acknowledgements are shifted); real 198.18.1.11:80 forwards dr",
            ),
            (r#"{ addr = "198.18.1.11:80" }"#, "proxy_protocol = \"v3\"", "unknown PROXY protocol version"),
        ] {
            let e = with_reals(reals, extra).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        // v1 and v2 with FULLNAT (and SYN-proxy) or NAT reach the dataplane; off is the default
        for (reals, extra, want) in [
            (
                r#"{ addr = "198.18.1.11:80" }"#,
                "laddrs = [\"198.18.1.100\"]\nproxy_protocol = \"v1\"",
                Some(ProxyProtocol::V1),
            ),
            (
                r#"{ addr = "198.18.1.11:80" }"#,
                "laddrs = [\"198.18.1.100\"]\nsynproxy = true\nproxy_protocol = \"v2\"",
                Some(ProxyProtocol::V2),
            ),
            (
                r#"{ addr = "198.18.1.11:8080", forward = "nat" }"#,
                "proxy_protocol = \"v2\"",
                Some(ProxyProtocol::V2),
            ),
            (r#"{ addr = "198.18.1.11:80" }"#, "proxy_protocol = \"off\"", None),
            (r#"{ addr = "198.18.1.11:80" }"#, "", None),
        ] {
            let c = with_reals(reals, extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
            let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
            assert_eq!(setup.services[0].proxy_protocol, want.and_then(ProxyProtocol::version), "{extra}");
        }
        // a UDP service cannot have it
        let text = GOOD
            .replace("proto = \"tcp\"", "proto = \"udp\"")
            .replace("sched = ", "proxy_protocol = \"v1\"\nsched = ");
        let e = Config::from_toml(&text).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("the PROXY protocol applies to tcp services only"), "{e}");
    }

    #[test]
    fn only_fullnat_real_servers_need_local_addresses() {
        for m in ["nat", "dr", "tun"] {
            let c = with_reals(&format!("{{ addr = \"198.18.1.11:80\", forward = \"{m}\" }}"), "").unwrap();
            assert!(c.warnings().is_empty(), "{m}: {:?}", c.warnings());
        }
        let c =
            with_reals(r#"{ addr = "198.18.1.11:80", forward = "nat" }, { addr = "198.18.1.12:80" }"#, "")
                .unwrap();
        assert_eq!(
            c.warnings(),
            ["services[0].laddrs: tcp 198.18.0.100:80 has FULLNAT real servers but no local address; their new connections are dropped (drop.no_laddr) until one is added"]
        );
    }

    #[test]
    fn devices() {
        assert!(matches!(parse_device("0000:03:00.0"), Ok(DeviceKind::Pci(_))));
        assert!(matches!(parse_device("03:00.1"), Ok(DeviceKind::Pci(_))));
        match parse_device("net_af_packet3,iface=v0,qpairs=2").unwrap() {
            DeviceKind::Vdev { driver, name, args } => {
                assert_eq!(driver, "net_af_packet");
                assert_eq!(name, "net_af_packet3");
                assert_eq!(args.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_device("net_af_packet,iface=x").is_err());
        assert!(parse_device("eth0").is_err());
    }

    #[test]
    fn cidr() {
        let c: Cidr = "198.18.0.1/24".parse().unwrap();
        assert!(c.contains("198.18.0.200".parse().unwrap()));
        assert!(!c.contains("198.18.1.1".parse().unwrap()));
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().mask(), 0);
        assert_eq!(c.network().to_string(), "198.18.0.0/24");
    }
}
