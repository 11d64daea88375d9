//! keepalived statements to rvs services. keepalived's semantics carried over:
//!
//! - a checker's timers come from the checker, else its `real_server`, else the `virtual_server`,
//!   else keepalived's defaults ([`defaults`]);
//! - a real server starts up, goes down after `retry + 1` consecutive failed checks (re-checked
//!   `delay_before_retry` after a failure, `delay_loop` otherwise) and comes back after one success
//!   (keepalived without `alpha`): `rise = 1`, `fall = retry + 1`, `retry_ms = delay_before_retry`;
//! - without `inhibit_on_failure` a failed server is removed, with it kept at weight 0;
//! - `persistence_timeout` without a value is 360 s;
//! - `quorum` above the real servers' total weight is lowered to it, and `hysteresis` at or above
//!   `quorum` to `quorum - 1`, each with a warning (check_data.c `validate_check_config`);
//! - `SSL_GET` is HTTP_GET over TLS, the server's certificate unverified (keepalived's);
//!   `virtualhost` (url, checker, real_server, virtual_server, the first found) is the `Host`, and
//!   with `enable_sni` also the TLS server name unless `sni_name` gives one (check_http.c
//!   `http_request_thread`, check_ssl.c `ssl_connect`; a real_server's `virtualhost` is not sent as
//!   SNI, as in keepalived).
//!
//! rvs runs one check per service: the real servers of a virtual_server must share one checker.
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use super::checker::*;
use super::parser::Stmt;
use super::values::*;
use crate::config::{
    endpoint, CheckConfig, Forward, Proto, ProxyProtocol, RealConfig, Sched, ServiceConfig,
    SorryServerConfig, MAX_WEIGHT,
};

/// keepalived's defaults (keepalived/check/check_data.c, check_api.c).
pub mod defaults {
    /// `delay_loop`: 60 s.
    pub const DELAY_LOOP_MS: u32 = 60_000;
    /// `connect_timeout`: 5 s.
    pub const CONNECT_TIMEOUT_MS: u32 = 5_000;
    /// `retry`: 1 (a server goes down at the second consecutive failure).
    pub const RETRY: u32 = 1;
    /// `delay_before_retry`: 1 s.
    pub const DELAY_BEFORE_RETRY_MS: u32 = 1_000;
    /// `persistence_timeout` without a value (IPVS_SVC_PERSISTENT_TIMEOUT).
    pub const PERSISTENCE_S: u32 = 360;
    /// Largest `persistence_timeout` (LVS_MAX_TIMEOUT, 31 days).
    pub const MAX_PERSISTENCE_S: u32 = 31 * 86_400;
    /// Largest `retry` rvs takes.
    pub const MAX_RETRY: u32 = 1000;
    /// Largest time value (delay_loop, connect_timeout, delay_before_retry): a day.
    pub const MAX_TIME_MS: u32 = 86_400_000;
}

/// What a keepalived configuration gives rvsd.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Keepalived {
    pub services: Vec<ServiceConfig>,
    /// Blocks that are not rvsd's part (VRRP, notification settings), one line each.
    pub warnings: Vec<String>,
}

/// Top-level blocks of keepalived's VRRP process; rvsd takes the checker process's part.
const VRRP_KEYWORDS: &[&str] = &[
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_process",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "track_file",
];

/// global_defs keywords with no load-balancing effect.
const GLOBAL_HARMLESS: &[&str] = &[
    "router_id",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "enable_script_security",
    "script_user",
    "max_auto_priority",
];

/// keepalived checkers rvs runs.
const CHECKERS: &[&str] = &["TCP_CHECK", "HTTP_GET", "SSL_GET"];

/// keepalived checkers rvs does not run.
const OTHER_CHECKERS: &[&str] =
    &["MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"];

/// `lb_kind`/`lvs_method` (keepalived compares with strcmp): `NAT`, `DR`, `TUN`, and DPVS's `FNAT`.
/// keepalived 2's tunnel options follow `TUN`: `type ipip` (its default) and `nocsum` (the
/// default checksum setting) are accepted; GUE and GRE are refused, rvs encapsulates ipip only.
fn forward(s: &Stmt) -> R<Forward> {
    no_block(s)?;
    let v = s.args.first().ok_or_else(|| s.err(format!("{}: needs a method", s.key)))?;
    let method = match v.as_str() {
        "NAT" => Forward::Masq,
        "DR" => Forward::Route,
        "TUN" => Forward::Tunnel,
        "FNAT" => Forward::Fullnat,
        "SNAT" => {
            return Err(s.err(format!(
                "{} SNAT: DPVS's SNAT (outbound) is not supported; rvs forwards NAT, DR, TUN and FNAT",
                s.key
            )))
        }
        _ => {
            return Err(s.err(format!("{} \"{v}\": unknown forwarding method (NAT, DR, TUN or FNAT)", s.key)))
        }
    };
    let opts = &s.args[1..];
    if method != Forward::Tunnel {
        if let Some(o) = opts.first() {
            return Err(s.err(format!("{} {v} {o}: only TUN takes tunnel options", s.key)));
        }
        return Ok(method);
    }
    let mut i = 0;
    while i < opts.len() {
        match (opts[i].as_str(), opts.get(i + 1).map(String::as_str)) {
            ("type", Some("ipip")) => i += 2,
            ("type", Some(t @ ("gue" | "gre"))) => {
                return Err(s.err(format!("{} TUN type {t}: rvs encapsulates ipip only", s.key)))
            }
            ("type", Some(t)) => {
                return Err(
                    s.err(format!("{} TUN type \"{t}\": unknown tunnel type (ipip, gue or gre)", s.key))
                )
            }
            ("type", None) => return Err(s.err(format!("{} TUN type: needs a tunnel type", s.key))),
            ("nocsum", _) => i += 1,
            (o @ ("port" | "csum" | "remcsum"), _) => {
                return Err(s.err(format!(
                    "{} TUN {o}: applies to GUE/GRE tunnels; rvs encapsulates ipip only",
                    s.key
                )))
            }
            (o, _) => return Err(s.err(format!("{} TUN \"{o}\": unknown tunnel option", s.key))),
        }
    }
    Ok(method)
}

/// A real server: its address (port None: the virtual server's), weight, thresholds, check.
struct Real<'a> {
    stmt: &'a Stmt,
    addr: IpAddr,
    port: Option<u16>,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    /// Its own `lvs_method`; none: the virtual_server's.
    forward: Option<Forward>,
    check: Option<CheckConfig>,
    /// keepalived 2's per-server `inhibit_on_failure` (default: the virtual_server's).
    inhibit: Option<bool>,
}

fn real_server<'a>(s: &'a Stmt, vs_timers: Timers, vs_vhost: Option<&str>) -> R<Real<'a>> {
    let (addr, port_) = match s.args.as_slice() {
        [a] => (ip(s, a)?, None),
        [a, p] => (ip(s, a)?, Some(port(s, p)?)),
        _ => return Err(s.err("real_server: expected real_server ADDRESS [PORT]")),
    };
    let mut r = Real {
        stmt: s,
        addr,
        port: port_,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        forward: None,
        check: None,
        inhibit: None,
    };
    let mut t = Timers::default();
    let mut checkers = Vec::new();
    let mut real_vhost = None;
    for c in s.block.as_deref().unwrap_or_default() {
        if t.take(c)? {
            continue;
        }
        match c.key.as_str() {
            "weight" => r.weight = uint(c, 0, MAX_WEIGHT)?,
            "uthreshold" => r.u_threshold = uint(c, 0, u32::MAX)?,
            "lthreshold" => r.l_threshold = uint(c, 0, u32::MAX)?,
            "lvs_method" => r.forward = Some(forward(c)?),
            k if CHECKERS.contains(&k) => checkers.push(c),
            k if OTHER_CHECKERS.contains(&k) => {
                return Err(unsupported(c, "rvs runs TCP_CHECK, HTTP_GET and SSL_GET"))
            }
            "inhibit_on_failure" => r.inhibit = Some(flag(c)?),
            "virtualhost" => real_vhost = Some(vhost(c)?),
            "notify_up" | "notify_down" | "alpha" | "warmup" | "smtp_alert" => {
                return Err(unsupported(c, "rvs has no scripts, alerts or per-server check modes"))
            }
            _ => return Err(unknown(c, "real_server")),
        }
    }
    if let [_, second, ..] = checkers.as_slice() {
        return Err(unsupported(
            second,
            "a second checker on one real_server (rvs runs one check per server)",
        ));
    }
    if let Some(c) = checkers.first() {
        let vhosts = Vhosts { real: real_vhost.as_deref(), virtual_server: vs_vhost };
        r.check = Some(checker(c, t.under(vs_timers), vhosts)?);
    }
    Ok(r)
}

struct Groups {
    vs: HashMap<String, Vec<(IpAddr, u16)>>,
    laddr: HashMap<String, Vec<IpAddr>>,
}

fn vs_group(s: &Stmt) -> R<(String, Vec<(IpAddr, u16)>)> {
    let name = one(s)?.to_owned();
    let mut out = Vec::new();
    for e in block(s)? {
        no_block(e)?;
        if e.key == "fwmark" {
            return Err(unsupported(e, "fwmark services (rvs matches address and port)"));
        }
        let p = match e.args.as_slice() {
            [p] => port(e, p)?,
            _ => {
                return Err(e.err(format!("{}: expected ADDRESS[-LAST] PORT in virtual_server_group", e.key)))
            }
        };
        out.extend(addr_range(e, &e.key)?.into_iter().map(|a| (a, p)));
    }
    Ok((name, out))
}

fn laddr_group(s: &Stmt) -> R<(String, Vec<IpAddr>)> {
    let name = one(s)?.to_owned();
    let mut out = Vec::new();
    for e in block(s)? {
        no_block(e)?;
        // DPVS names the interface after the address; rvs picks the port by its connected subnet.
        if e.args.len() > 1 {
            return Err(
                e.err(format!("{}: expected ADDRESS[-LAST] [INTERFACE] in local_address_group", e.key))
            );
        }
        out.extend(addr_range(e, &e.key)?);
    }
    Ok((name, out))
}

fn virtual_server(s: &Stmt, groups: &Groups, warnings: &mut Vec<String>) -> R<Vec<ServiceConfig>> {
    let vips: Vec<(IpAddr, u16)> = match s.args.as_slice() {
        [g, name] if g == "group" => groups.vs.get(name).cloned().ok_or_else(|| {
            s.err(format!("virtual_server group {name}: no virtual_server_group \"{name}\""))
        })?,
        [f, _] if f == "fwmark" => {
            return Err(unsupported(s, "fwmark services (rvs matches address and port)"))
        }
        [a, p] => vec![(ip(s, a)?, port(s, p)?)],
        _ => {
            return Err(
                s.err("virtual_server: expected virtual_server ADDRESS PORT or virtual_server group NAME")
            )
        }
    };
    let mut proto = Proto::Tcp;
    let mut sched = crate::config::defaults::SCHED;
    let mut persistence = None;
    let mut inhibit = crate::config::defaults::INHIBIT_ON_FAILURE;
    let mut synproxy = false;
    let mut synproxy_stmt = None;
    let mut laddrs = Vec::new();
    let mut method = None;
    let mut timers = Timers::default();
    let mut reals = Vec::new();
    let mut vs_vhost = None;
    let mut quorum: Option<(&Stmt, u32)> = None;
    let mut hysteresis: Option<(&Stmt, u32)> = None;
    // `sorry_server`: its statement, address and port (None: the virtual server's).
    let mut sorry: Option<(&Stmt, IpAddr, Option<u16>)> = None;
    let mut sorry_inhibit = false;
    let mut sorry_method = None;
    let body = block(s)?;
    for c in body {
        if timers.take(c)? {
            continue;
        }
        match c.key.as_str() {
            "lb_algo" | "lvs_sched" => {
                no_block(c)?;
                sched = Sched::from_str(one(c)?).map_err(|m| c.err(format!("{}: {m}", c.key)))?;
            }
            "lb_kind" | "lvs_method" => method = Some(forward(c)?),
            "persistence_timeout" => {
                persistence = Some(if c.args.is_empty() {
                    no_block(c)?;
                    defaults::PERSISTENCE_S
                } else {
                    uint(c, 1, defaults::MAX_PERSISTENCE_S)?
                })
            }
            "protocol" => {
                no_block(c)?;
                // keepalived compares without case (strcasecmp).
                proto = match one(c)?.to_ascii_uppercase().as_str() {
                    "TCP" => Proto::Tcp,
                    "UDP" => Proto::Udp,
                    v => return Err(c.err(format!("protocol {v}: not supported (rvs serves TCP and UDP)"))),
                }
            }
            "inhibit_on_failure" => inhibit = flag(c)?,
            "syn_proxy" => {
                synproxy = flag(c)?;
                synproxy_stmt = Some(c);
            }
            "laddr_group_name" => {
                no_block(c)?;
                let n = one(c)?;
                laddrs = groups
                    .laddr
                    .get(n)
                    .ok_or_else(|| c.err(format!("laddr_group_name {n}: no local_address_group \"{n}\"")))?
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
            }
            "real_server" => reals.push(c),
            "quorum" => quorum = Some((c, uint(c, 1, u32::MAX)?)),
            "hysteresis" => hysteresis = Some((c, uint(c, 0, u32::MAX)?)),
            "quorum_up" | "quorum_down" => {
                return Err(unsupported(c, "rvs runs no notify scripts (quorum changes are logged)"))
            }
            "sorry_server" => {
                no_block(c)?;
                let (a, p) = match c.args.as_slice() {
                    [a] => (ip(c, a)?, None),
                    [a, p] => (ip(c, a)?, Some(port(c, p)?)),
                    _ => return Err(c.err("sorry_server: expected sorry_server ADDRESS [PORT]")),
                };
                sorry = Some((c, a, p));
            }
            // keepalived ignores both (with a config error) before or without a sorry_server.
            "sorry_server_inhibit" | "sorry_server_lvs_method" if sorry.is_none() => {
                return Err(c.err(format!("{}: needs a sorry_server line before it", c.key)))
            }
            "sorry_server_inhibit" => sorry_inhibit = flag(c)?,
            "sorry_server_lvs_method" => sorry_method = Some(forward(c)?),
            "virtualhost" => vs_vhost = Some(vhost(c)?),
            "persistence_granularity"
            | "persistence_engine"
            | "ops"
            | "hashed"
            | "flag-1"
            | "flag-2"
            | "flag-3"
            | "sh-port"
            | "sh-fallback"
            | "mh-port"
            | "mh-fallback"
            | "ha_suspend"
            | "alpha"
            | "omega"
            | "warmup"
            | "smtp_alert"
            | "ip_family"
            | "weight" => return Err(unsupported(c, "no rvs equivalent yet")),
            _ => return Err(unknown(c, "virtual_server")),
        }
    }
    let reals: Vec<Real> =
        reals.into_iter().map(|r| real_server(r, timers, vs_vhost.as_deref())).collect::<R<_>>()?;
    // keepalived (check_data.c, validate_check_config): a real server without its own method takes
    // the virtual_server's, and a virtual_server without one is NAT ("no forwarding method set,
    // setting default NAT").
    if method.is_none() && reals.iter().any(|r| r.forward.is_none()) {
        warnings.push(format!(
            "{}:{}: virtual_server: no lb_kind; keepalived's default, NAT, is used",
            s.file, s.line
        ));
    }
    let method = method.unwrap_or(Forward::Masq);
    // DR and TUN do not rewrite ports: a real server's port must be the service's (ipvsadm sets
    // it so for -g and -i; rvs refuses what it cannot do rather than forwarding to another port).
    for r in &reals {
        let m = r.forward.unwrap_or(method);
        if let (true, Some(p)) = (m.keeps_port(), r.port) {
            if let Some((_, vport)) = vips.iter().find(|(_, vport)| *vport != p) {
                let name = if m == Forward::Route { "DR" } else { "TUN" };
                return Err(r.stmt.err(format!(
                    "real_server port {p}: {name} cannot change the port (the virtual_server's is {vport}); give no port or {vport}"
                )));
            }
        }
    }
    // SYN-proxy shifts the real server's sequence numbers in its replies, which DR and TUN send
    // past the gateway (the configuration's rule, said here at the line).
    if let (true, Some(sp)) = (synproxy, synproxy_stmt) {
        if let Some(r) = reals.iter().find(|r| !r.forward.unwrap_or(method).replies_through_gateway()) {
            return Err(sp.err(format!(
                "syn_proxy: needs the real servers' replies through the gateway; real_server {} at line {} forwards {}",
                r.addr,
                r.stmt.line,
                if r.forward.unwrap_or(method) == Forward::Route { "DR" } else { "TUN" }
            )));
        }
    }
    // keepalived's checks of quorum and hysteresis (check_data.c `validate_check_config`).
    let total: u64 = reals.iter().map(|r| u64::from(r.weight)).sum();
    let mut quorum_ = quorum.map_or(crate::config::defaults::QUORUM, |q| q.1);
    if u64::from(quorum_) > total {
        // keepalived lowers it to the total weight; rvs keeps at least 1 (its range).
        let lowered = total.max(1) as u32;
        if let Some((q, _)) = quorum {
            warnings.push(format!(
                "{}:{}: quorum {quorum_} exceeds the real servers' total weight {total}; lowered to {lowered}, as keepalived does",
                q.file, q.line
            ));
        }
        quorum_ = lowered;
    }
    let mut hysteresis_ = hysteresis.map_or(0, |h| h.1);
    if hysteresis_ >= quorum_ {
        if let Some((h, _)) = hysteresis {
            warnings.push(format!(
                "{}:{}: hysteresis {hysteresis_} is not below quorum {quorum_}; set to {}, as keepalived does",
                h.file,
                h.line,
                quorum_ - 1
            ));
        }
        hysteresis_ = quorum_ - 1;
    }
    // keepalived's sorry server forwards as the virtual_server unless `sorry_server_lvs_method`
    // (check_data.c `alloc_ssvr`, `validate_check_config`); the same rules as a real server's.
    let sorry_forward = sorry_method.unwrap_or(method);
    if let Some((c, _, Some(p))) = sorry {
        if let (true, Some((_, vport))) = (sorry_forward.keeps_port(), vips.iter().find(|(_, v)| *v != p)) {
            let name = if sorry_forward == Forward::Route { "DR" } else { "TUN" };
            return Err(c.err(format!(
                "sorry_server port {p}: {name} cannot change the port (the virtual_server's is {vport}); give no port or {vport}"
            )));
        }
    }
    if let (true, Some(sp), Some((c, _, _))) = (synproxy, synproxy_stmt, sorry) {
        if !sorry_forward.replies_through_gateway() {
            return Err(sp.err(format!(
                "syn_proxy: needs the real servers' replies through the gateway; the sorry_server at line {} forwards {}",
                c.line,
                if sorry_forward == Forward::Route { "DR" } else { "TUN" }
            )));
        }
    }
    if let Some((c, a, p)) = sorry {
        if p.is_none() {
            warnings.push(format!(
                "{}:{}: sorry_server {a}: no port; rvs uses the virtual server's",
                c.file, c.line
            ));
        }
    }
    // keepalived 2 lets each real_server set inhibit_on_failure (DPVS's examples do); rvs sets it
    // per service, so the servers must agree.
    if let Some(first) = reals.iter().find(|r| r.inhibit.is_some()) {
        let want = first.inhibit.unwrap_or(inhibit);
        if let Some(r) = reals.iter().find(|r| r.inhibit.unwrap_or(inhibit) != want) {
            return Err(r.stmt.err(format!(
                "real_server: inhibit_on_failure differs from the real_server at line {}; rvs sets it per virtual_server, so every real_server needs the same",
                first.stmt.line
            )));
        }
        inhibit = want;
    }
    let check = match reals.first() {
        None => None,
        Some(first) => {
            for r in &reals[1..] {
                if r.check != first.check {
                    return Err(r.stmt.err(format!(
                        "real_server: its checker differs from the one of the real_server at line {}; rvs runs one check per virtual_server, so every real_server needs the same checker",
                        first.stmt.line
                    )));
                }
            }
            first.check.clone()
        }
    };
    Ok(vips
        .into_iter()
        .map(|(vip, vport)| ServiceConfig {
            proto,
            vip: endpoint(vip, vport),
            sched,
            persistence,
            toa: false,
            synproxy,
            proxy_protocol: ProxyProtocol::Off,
            laddrs: laddrs.clone(),
            reals: reals
                .iter()
                .map(|r| RealConfig {
                    addr: endpoint(r.addr, r.port.unwrap_or(vport)),
                    weight: r.weight,
                    forward: r.forward.unwrap_or(method),
                    u_threshold: r.u_threshold,
                    l_threshold: r.l_threshold,
                })
                .collect(),
            check: check.clone(),
            inhibit_on_failure: inhibit,
            quorum: quorum_,
            hysteresis: hysteresis_,
            sorry_server: sorry.map(|(_, a, p)| SorryServerConfig {
                addr: endpoint(a, p.unwrap_or(vport)),
                forward: sorry_forward,
                inhibit: sorry_inhibit,
            }),
        })
        .collect())
}

/// The services of a parsed keepalived configuration.
pub fn convert(stmts: &[Stmt]) -> R<Keepalived> {
    let mut out = Keepalived::default();
    let mut groups = Groups { vs: HashMap::new(), laddr: HashMap::new() };
    // Groups first: keepalived resolves them after reading the whole file.
    for s in stmts {
        let (named, dup) = match s.key.as_str() {
            "virtual_server_group" => {
                let (n, g) = vs_group(s)?;
                let dup = groups.vs.insert(n.clone(), g).is_some();
                (n, dup)
            }
            "local_address_group" => {
                let (n, g) = laddr_group(s)?;
                let dup = groups.laddr.insert(n.clone(), g).is_some();
                (n, dup)
            }
            _ => continue,
        };
        if dup {
            return Err(s.err(format!("{} {named}: defined twice", s.key)));
        }
    }
    for s in stmts {
        match s.key.as_str() {
            "virtual_server_group" | "local_address_group" => {}
            "virtual_server" => out.services.extend(virtual_server(s, &groups, &mut out.warnings)?),
            "global_defs" => {
                for g in block(s)? {
                    if !GLOBAL_HARMLESS.contains(&g.key.as_str()) && !g.key.starts_with("vrrp_") {
                        return Err(unknown(g, "global_defs (rvsd takes the router id, notification and VRRP settings only)"));
                    }
                }
                out.warnings.push(format!(
                    "{}:{}: global_defs: not used by rvsd (its router id, notification and VRRP settings have no load-balancing effect)",
                    s.file, s.line
                ));
            }
            k if VRRP_KEYWORDS.contains(&k) => out.warnings.push(format!(
                "{}:{}: {k}: skipped; VRRP is keepalived's other process (keepalived --vrrp), rvsd takes the checker's part",
                s.file, s.line
            )),
            "SSL" => {
                return Err(unsupported(
                    s,
                    "rvs's SSL_GET presents no client certificate and, as keepalived, verifies no server certificate; remove the SSL block",
                ))
            }
            _ => return Err(unknown(s, "keepalived.conf")),
        }
    }
    Ok(out)
}
