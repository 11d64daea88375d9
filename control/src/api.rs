//! API types: newline-delimited JSON over the Unix socket, one request object per line, one
//! response object per line. Usable by a person with `socat - UNIX-CONNECT:/run/rvs/rvsd.sock`.
//!
//! Every request names its `op`; every response carries `ok` and either the result or `error`.
//! Services are named by `proto` + `vip` (`"198.18.0.100:80"`), real servers by `addr` (`"RS:port"`),
//! exactly as in the config file, whose schema `save`/`restore` use. See docs/api.md for each
//! operation with an example.
use serde::{Deserialize, Serialize};

use crate::capture::{CaptureRequest, CaptureStatus};
use crate::config::{Forward, Proto, ProxyProtocol, RealConfig, Sched, ServiceConfig};

/// The API version this build speaks; reported by `version`.
pub const API_VERSION: u32 = 1;

/// Largest request line accepted; longer lines get an error and the connection is closed. Large
/// enough for a `restore` of thousands of services.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Names one service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceId {
    pub proto: Proto,
    pub vip: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Daemon and API version.
    Version,
    /// Per-worker counters (events, gauges and drops by reason).
    Stats,
    /// All services with their real servers, weights and connection counts (`ipvsadm -Ln`).
    ListServices,
    /// Adds a service (`ipvsadm -A`); `service` uses the config file's schema and may include reals.
    AddService { service: ServiceConfig },
    /// Changes a service's scheduler, persistence or switches (`ipvsadm -E`); absent fields stay.
    EditService {
        #[serde(flatten)]
        id: ServiceId,
        #[serde(default)]
        sched: Option<Sched>,
        /// Seconds; 0 turns persistence off.
        #[serde(default)]
        persistence: Option<u32>,
        #[serde(default)]
        toa: Option<bool>,
        #[serde(default)]
        synproxy: Option<bool>,
        /// `off`, `v1` or `v2`.
        #[serde(default)]
        proxy_protocol: Option<ProxyProtocol>,
        /// keepalived's `inhibit_on_failure` for the service's health check.
        #[serde(default)]
        inhibit_on_failure: Option<bool>,
    },
    /// Deletes a service (`ipvsadm -D`).
    DeleteService {
        #[serde(flatten)]
        id: ServiceId,
    },
    /// Adds a real server to a service (`ipvsadm -a`).
    AddReal {
        #[serde(flatten)]
        id: ServiceId,
        real: RealConfig,
    },
    /// Replaces a real server's weight, forwarding method and thresholds (`ipvsadm -e`).
    EditReal {
        #[serde(flatten)]
        id: ServiceId,
        real: RealConfig,
    },
    /// Removes a real server (`ipvsadm -d`).
    DeleteReal {
        #[serde(flatten)]
        id: ServiceId,
        addr: String,
    },
    /// Adds a FULLNAT local address to a service (`--add-laddr`).
    AddLaddr {
        #[serde(flatten)]
        id: ServiceId,
        addr: String,
    },
    /// Removes a local address (`--del-laddr`).
    DeleteLaddr {
        #[serde(flatten)]
        id: ServiceId,
        addr: String,
    },
    /// A service's local addresses (`--get-laddr`).
    ListLaddrs {
        #[serde(flatten)]
        id: ServiceId,
    },
    /// Zeroes counters of one service, or of everything when no service is named (`ipvsadm -Z`).
    Zero {
        #[serde(default, flatten)]
        id: Option<ServiceId>,
    },
    /// Deletes every service (`ipvsadm -C`).
    Clear,
    /// Connections, optionally of one service, paged (`ipvsadm -Lnc`).
    ListConns {
        #[serde(default, flatten)]
        id: Option<ServiceId>,
        #[serde(default)]
        offset: u64,
        /// At most this many (default 1000, at most 100000).
        #[serde(default)]
        limit: Option<u64>,
    },
    /// Counters and rates per service and real server (`ipvsadm -Ln --stats` / `--rate`).
    ServiceStats,
    /// The whole configuration as TOML, in the config file's schema (`ipvsadm -S`).
    Save,
    /// Replaces all services with those of `config` (TOML, the config file's schema; ports and
    /// workers must match the running ones) atomically (`ipvsadm -R`).
    Restore {
        config: String,
        /// `--set` lines of the rules (ipvsadm -R runs them too), applied in the same change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeouts: Option<LvsTimeouts>,
    },
    /// The TCP established, TCP FIN_WAIT and UDP connection timeouts, seconds (`ipvsadm -L --timeout`).
    GetTimeouts,
    /// Sets those three timeouts (`ipvsadm --set tcp tcpfin udp`); 0 leaves one unchanged, as in LVS.
    SetTimeouts { tcp: u32, tcpfin: u32, udp: u32 },
    /// Persistence templates (client address to real server), paged like `list_conns`
    /// (`ipvsadm -Lnc` template rows, `-L --persistent-conn`).
    ListTemplates {
        #[serde(default, flatten)]
        id: Option<ServiceId>,
        #[serde(default)]
        offset: u64,
        #[serde(default)]
        limit: Option<u64>,
    },
    /// rvsd's ports (DPVS's `dpip link show`): what they are, their MAC and address, link state
    /// and the NIC's counters (`rvsadm --ports`).
    ListPorts,
    /// Starts capturing a port's frames into a pcap file (one capture at a time).
    CaptureStart { capture: CaptureRequest },
    /// Stops the running capture; the file keeps what was written.
    CaptureStop,
    /// The running or last capture: packets and bytes written, frames dropped, state.
    CaptureStatus,
    /// Starts a connection sync daemon (`ipvsadm --start-daemon`); unset fields come from the
    /// config's `[sync]` section.
    SyncStart {
        role: SyncRoleName,
        #[serde(default)]
        interface: Option<String>,
        #[serde(default)]
        syncid: Option<u8>,
    },
    /// Stops a connection sync daemon (`ipvsadm --stop-daemon`).
    SyncStop { role: SyncRoleName },
    /// The running sync daemons and the sync counters (`ipvsadm -L --daemon`).
    SyncStatus,
}

/// One sync daemon role, as `--start-daemon` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRoleName {
    Master,
    Backup,
}

/// A running sync daemon (`sync_status`), what ipvsadm's `list_daemon` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemonInfo {
    pub role: SyncRoleName,
    /// The multicast interface (`mcast=`); empty with a unicast peer.
    pub interface: String,
    pub syncid: u8,
    /// Largest message in bytes (`maxlen=`).
    pub maxlen: u32,
    pub group: String,
    pub port: u16,
    pub ttl: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// One port as `list_ports` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortInfo {
    /// The config's `ports[].name`.
    pub name: String,
    /// The config's `ports[].device` (DPDK device string).
    pub device: String,
    /// The PMD (`net_af_packet`, `net_memif`, `net_ixgbe`, ...).
    pub driver: String,
    /// The port's MAC, lower-case `aa:bb:cc:dd:ee:ff`: where a traffic generator sends its frames.
    pub mac: String,
    /// The gateway's address on the port with prefix length (`198.18.0.1/24`).
    pub addr: String,
    /// Its IPv6 address with prefix length (`2001:2::1/64`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr6: Option<String>,
    /// The device's MTU.
    pub mtu: u16,
    /// RX and TX queues (one pair per worker).
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// Null when the PMD cannot tell (the reason is logged).
    pub link: Option<LinkInfo>,
    /// Null when the PMD cannot tell (the reason is logged).
    pub stats: Option<PortCounters>,
}

/// Link duplex mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplex {
    Full,
    Half,
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub up: bool,
    /// Mbit/s; null while the link is down or where the PMD does not know it.
    pub speed_mbps: Option<u32>,
    /// Null while the link is down or where the PMD does not know the speed.
    pub duplex: Option<Duplex>,
    pub autoneg: bool,
}

/// The NIC's basic counters (`rte_eth_stats_get`), since rvsd started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Frames the NIC dropped because the RX queue was full (`imissed`).
    pub rx_missed: u64,
    /// RX buffer allocation failures (`rx_nombuf`).
    pub rx_nombuf: u64,
}

/// LVS's three settable timeouts, seconds: TCP established, TCP FIN_WAIT, UDP (`ipvsadm --set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvsTimeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

/// Why a request was refused, for clients that act on the reason rather than the text (rvsadm
/// prints ipvsadm's `ipvs_strerror` text for each). Absent for other refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The named service does not exist (LVS's ESRCH).
    NoSuchService,
    /// A service with that protocol, address and port exists already (EEXIST).
    ServiceExists,
    /// The named real server is not in the service (ENOENT).
    NoSuchReal,
    /// The real server is in the service already (EEXIST).
    RealExists,
    /// The named local address is not in the service.
    NoSuchLaddr,
    /// The local address is in the service already.
    LaddrExists,
}

/// One real server as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealInfo {
    pub addr: String,
    pub weight: u32,
    pub forward: Forward,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Connections in ESTABLISHED (summed over workers).
    pub active_conns: u64,
    /// Other connections (summed over workers).
    pub inactive_conns: u64,
    /// Health-check state: `up`, `down` (taken out of scheduling) or `unchecked`.
    pub health: String,
}

/// One persistence template as listed: the client address (port 0, as LVS shows templates) sticks
/// to the real server until it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub proto: Proto,
    pub client: String,
    pub vip: String,
    pub rs: String,
    pub expires_ms: u64,
    pub worker: u16,
}

/// One service as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub proto: Proto,
    pub vip: String,
    pub sched: Sched,
    /// Persistence timeout in seconds, if any.
    pub persistence: Option<u32>,
    pub toa: bool,
    pub synproxy: bool,
    #[serde(default, skip_serializing_if = "ProxyProtocol::is_off")]
    pub proxy_protocol: ProxyProtocol,
    /// A real server its health check failed stays listed at weight 0 (true) or is left out of
    /// the table (false, keepalived's default).
    #[serde(default)]
    pub inhibit_on_failure: bool,
    pub laddrs: Vec<String>,
    pub reals: Vec<RealInfo>,
}

/// Counters of a service or real server, summed over workers, with per-second rates over the last
/// estimation interval (2 s, as LVS's estimator).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealStats {
    pub addr: String,
    pub counters: Counters,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStats {
    pub proto: Proto,
    pub vip: String,
    pub counters: Counters,
    pub reals: Vec<RealStats>,
}

/// One connection as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnInfo {
    pub proto: Proto,
    pub client: String,
    pub vip: String,
    /// The FULLNAT local address and port; empty for the other methods.
    pub lip: String,
    pub rs: String,
    /// The connection's forwarding method (its real server's when it was made); absent in
    /// replies of older daemons, which forwarded FULLNAT only.
    #[serde(default)]
    pub forward: Forward,
    /// LVS state name (ESTABLISHED, SYN_RECV, TIME_WAIT, ..., UDP).
    pub state: String,
    /// Milliseconds until it expires.
    pub expires_ms: u64,
    pub worker: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub worker: u16,
    /// Gauges, then non-zero counters, by name; drops are named `drop.<reason>`.
    pub counters: Vec<(String, u64)>,
    /// `busy_cycles / busy_packets`: TSC cycles per received frame over the polls that received
    /// any (idle polls excluded); null before the first frame.
    #[serde(default)]
    pub cycles_per_packet: Option<f64>,
}

/// TSC cycles per packet over busy polls, or None without packets.
pub fn cycles_per_packet(busy_cycles: u64, busy_packets: u64) -> Option<f64> {
    (busy_packets > 0).then(|| busy_cycles as f64 / busy_packets as f64)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Version {
        api: u32,
        daemon: String,
    },
    Stats {
        workers: Vec<WorkerStats>,
        /// `busy_cycles` and `busy_packets` summed over workers, and their ratio (cycles per packet
        /// of the whole gateway; null before the first frame).
        #[serde(default)]
        busy_cycles: u64,
        #[serde(default)]
        busy_packets: u64,
        #[serde(default)]
        cycles_per_packet: Option<f64>,
        /// How replies reach the worker owning their connection: `none` (one worker), `software`
        /// (hand-off rings between workers) or `flow_rules` (NIC flow rules, hand-off as safety net).
        #[serde(default)]
        steering: String,
    },
    Services {
        services: Vec<ServiceInfo>,
    },
    Laddrs {
        laddrs: Vec<String>,
    },
    Conns {
        total: u64,
        conns: Vec<ConnInfo>,
    },
    Templates {
        total: u64,
        templates: Vec<TemplateInfo>,
    },
    Timeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    ServiceStats {
        services: Vec<ServiceStats>,
    },
    Config {
        config: String,
    },
    Ports {
        ports: Vec<PortInfo>,
    },
    /// `capture_start`, `capture_stop`, `capture_status`.
    Capture {
        capture: CaptureStatus,
    },
    /// A change was applied by every worker; `epoch` counts applied changes.
    Applied {
        epoch: u64,
    },
    /// `sync_status`, and the answer to `sync_start`/`sync_stop`.
    Sync {
        daemons: Vec<SyncDaemonInfo>,
        /// Sync counters by name (docs/ha.md), in a fixed order.
        counters: Vec<(String, u64)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Why, when the reason is one a client may act on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none", default, flatten)]
    pub reply: Option<Reply>,
}

impl Response {
    pub fn ok(reply: Reply) -> Response {
        Response { ok: true, error: None, code: None, reply: Some(reply) }
    }

    pub fn error(msg: impl Into<String>) -> Response {
        Response { ok: false, error: Some(msg.into()), code: None, reply: None }
    }

    pub fn refused(r: Refusal) -> Response {
        Response { ok: false, error: Some(r.msg), code: r.code, reply: None }
    }
}

/// A refused request: the one-line message, and the reason when it is one of [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Option<ErrorCode>,
    pub msg: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Refusal {
        Refusal { code: Some(code), msg: msg.into() }
    }
}

impl From<String> for Refusal {
    fn from(msg: String) -> Refusal {
        Refusal { code: None, msg }
    }
}

impl From<&str> for Refusal {
    fn from(msg: &str) -> Refusal {
        Refusal { code: None, msg: msg.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl Response {
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"internal: unserialisable response"}"#.into());
        s.push('\n');
        s
    }
}

/// Parses one request line; the error is a message for the client.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_errors_are_messages() {
        assert_eq!(parse_request(r#"{"op":"stats"}"#), Ok(Request::Stats));
        assert_eq!(parse_request("{\"op\":\"version\"}\n"), Ok(Request::Version));
        assert!(parse_request(r#"{"op":"explode"}"#).unwrap_err().contains("bad request"));
        assert!(parse_request("{not json").is_err());
        assert!(parse_request("").is_err());
        assert_eq!(parse_request(r#"{"op":"list_ports"}"#), Ok(Request::ListPorts));
    }

    #[test]
    fn list_ports_reply_round_trips() {
        let p = PortInfo {
            name: "client".into(),
            device: "net_af_packet0,iface=gc".into(),
            driver: "net_af_packet".into(),
            mac: "02:00:00:00:00:01".into(),
            addr: "198.18.0.1/24".into(),
            addr6: Some("2001:2::1/64".into()),
            mtu: 1500,
            rx_queues: 1,
            tx_queues: 1,
            link: Some(LinkInfo {
                up: true,
                speed_mbps: Some(10000),
                duplex: Some(Duplex::Full),
                autoneg: false,
            }),
            stats: None,
        };
        let line = Response::ok(Reply::Ports { ports: vec![p.clone()] }).to_line();
        assert!(line.contains(r#""duplex":"full""#) && line.contains(r#""stats":null"#), "{line}");
        let back: Response = serde_json::from_str(&line).unwrap();
        assert_eq!(back.reply, Some(Reply::Ports { ports: vec![p] }));
    }

    #[test]
    fn service_ops_parse_flat() {
        let r = parse_request(
            r#"{"op":"delete_real","proto":"tcp","vip":"198.18.0.100:80","addr":"198.18.1.11:80"}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::DeleteReal {
                id: ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:80".into() },
                addr: "198.18.1.11:80".into()
            }
        );
        let r = parse_request(
            r#"{"op":"add_real","proto":"tcp","vip":"198.18.0.100:80","real":{"addr":"198.18.1.14:80","weight":3}}"#,
        )
        .unwrap();
        assert!(
            matches!(r, Request::AddReal { ref real, .. } if real.weight == 3 && real.forward == Forward::Fullnat)
        );
        assert_eq!(parse_request(r#"{"op":"zero"}"#), Ok(Request::Zero { id: None }));
        assert!(matches!(
            parse_request(r#"{"op":"list_conns","limit":5}"#),
            Ok(Request::ListConns { id: None, offset: 0, limit: Some(5) })
        ));
        let r = parse_request(r#"{"op":"add_service","service":{"proto":"udp","vip":"198.18.0.100:53"}}"#)
            .unwrap();
        assert!(matches!(r, Request::AddService { ref service } if service.sched == Sched::Wlc));
    }

    #[test]
    fn typed_values_keep_their_wire_names() {
        let id = ServiceId { proto: Proto::Udp, vip: "198.18.0.100:53".into() };
        assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"proto":"udp","vip":"198.18.0.100:53"}"#);
        let e =
            parse_request(r#"{"op":"edit_service","proto":"tcp","vip":"198.18.0.100:80","sched":"fastest"}"#)
                .unwrap_err();
        assert!(e.contains(r#"unknown scheduler "fastest" (one of rr, wrr, lc, wlc, sh, mh)"#), "{e}");
        let e =
            parse_request(r#"{"op":"delete_service","proto":"sctp","vip":"198.18.0.100:80"}"#).unwrap_err();
        assert!(e.contains("unknown protocol"), "{e}");
        let r = Response::refused(Refusal::new(ErrorCode::NoSuchService, "no such service: tcp 1.2.3.4:80"));
        assert!(r.to_line().contains(r#""code":"no_such_service""#));
    }

    #[test]
    fn responses_are_single_lines() {
        let r = Response::ok(Reply::Version { api: API_VERSION, daemon: "0.1.0".into() });
        let line = r.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains(r#""ok":true"#) && line.contains(r#""api":1"#));
        assert!(Response::error("nope").to_line().contains(r#""error":"nope""#));
    }
}
