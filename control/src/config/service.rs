//! Virtual services, their real servers and health checks.
use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub proto: Proto,
    /// `VIP:port`, or `[VIP6]:port` for an IPv6 service.
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
    /// FULLNAT source addresses for this service: of the real servers' family (IPv4 ones for an
    /// IPv6 service with IPv4 real servers: NAT64).
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

/// `addr` with `port` appended when it is a bare address (`198.18.1.11`, `2001:2::11` or
/// `[2001:2::11]`); anything else unchanged (and left for validation to judge).
pub fn with_port(addr: &str, port: u16) -> String {
    match parse_ip(addr) {
        Ok(a) => endpoint(a, port),
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
    /// `RS:port` or `[RS6]:port`; `RS` alone takes the service's port (filled in when the
    /// configuration is read).
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
