//! Running an invocation against rvsd (`ipvsadm.c`: the command switch of `process_options`).
use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::*;
use std::collections::HashMap;

use crate::api::{
    ConnInfo, ErrorCode, PortInfo, Request, ServiceId, ServiceInfo, ServiceStats, TemplateInfo,
    MAX_REQUEST_BYTES,
};
use crate::config::{defaults, Proto, Sched, MAX_WEIGHT};

/// Sends one request and returns the raw response object (`{"ok":..., ...}`).
pub trait Transport {
    fn call(&mut self, req: &Request) -> Result<Value, AdmError>;
}

/// A refusal: rvsd's reason code, if any, and its message.
type Refused = (Option<ErrorCode>, String);

/// Sends `req`; the outer error is transport trouble, the inner one rvsd's refusal.
fn call_checked<T: Transport + ?Sized>(t: &mut T, req: &Request) -> Result<Result<Value, Refused>, AdmError> {
    let v = t.call(req)?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(Ok(v)),
        Some(false) => {
            let msg = v.get("error").and_then(Value::as_str).unwrap_or("request failed").to_owned();
            let code = v.get("code").and_then(|c| ErrorCode::deserialize(c).ok());
            Ok(Err((code, msg)))
        }
        None => Err(AdmError::Daemon("unexpected reply from rvsd: no \"ok\"".into())),
    }
}

/// For reads: a refusal naming a missing service is ipvsadm's `list_service` failure (`No such
/// service`, exit 1); others are rvsd's message.
fn call_ok<T: Transport + ?Sized>(t: &mut T, req: &Request) -> Result<Value, AdmError> {
    call_checked(t, req)?.map_err(|(code, msg)| match code {
        Some(ErrorCode::NoSuchService) => AdmError::Ipvs { msg: "No such service".into(), status: 1 },
        _ => AdmError::Daemon(msg),
    })
}

/// libipvs.c's `ipvs_strerror` table: the text ipvsadm prints when the kernel refuses `req` for
/// `code` (the table is keyed by the libipvs function and errno; each request here is one function).
pub fn ipvs_strerror(req: &Request, code: ErrorCode) -> Option<&'static str> {
    use ErrorCode::*;
    Some(match (req, code) {
        (Request::AddService { .. }, ServiceExists) => "Service already exists",
        (
            Request::EditService { .. } | Request::DeleteService { .. } | Request::Zero { .. },
            NoSuchService,
        ) => "No such service",
        (Request::AddReal { .. } | Request::EditReal { .. } | Request::DeleteReal { .. }, NoSuchService) => {
            "Service not defined"
        }
        (Request::AddReal { .. }, RealExists) => "Destination already exists",
        (Request::EditReal { .. } | Request::DeleteReal { .. }, NoSuchReal) => "No such destination",
        // DPVS's laddr commands and anything else naming a missing service.
        (_, NoSuchService) => "No such service",
        _ => return None,
    })
}

/// A change: on refusal, ipvsadm's text where it has one (else rvsd's one-line reason), exit 255
/// as ipvsadm's `process_options` returning -1.
fn send<T: Transport + ?Sized>(t: &mut T, req: &Request) -> Result<(), AdmError> {
    call_checked(t, req)?.map(|_| ()).map_err(|(code, msg)| AdmError::Ipvs {
        msg: code.and_then(|c| ipvs_strerror(req, c)).map(str::to_owned).unwrap_or(msg),
        status: 255,
    })
}

/// Every persistence template (of one service), page by page.
fn all_templates<T: Transport + ?Sized>(
    t: &mut T,
    service: &Option<ServiceId>,
) -> Result<Vec<TemplateInfo>, AdmError> {
    let mut all = Vec::new();
    loop {
        let req =
            Request::ListTemplates { id: service.clone(), offset: all.len() as u64, limit: Some(CONN_PAGE) };
        let v = call_ok(t, &req)?;
        let total: u64 = field(&v, "total")?;
        let page: Vec<TemplateInfo> = field(&v, "templates")?;
        let n = page.len();
        all.extend(page);
        if n == 0 || all.len() as u64 >= total {
            return Ok(all);
        }
    }
}

fn field<T: DeserializeOwned>(v: &Value, key: &str) -> Result<T, AdmError> {
    let f =
        v.get(key).ok_or_else(|| AdmError::Daemon(format!("unexpected reply from rvsd: no \"{key}\"")))?;
    T::deserialize(f).map_err(|e| AdmError::Daemon(format!("unexpected reply from rvsd: \"{key}\": {e}")))
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<(), AdmError> {
    out.write_all(s.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            AdmError::Closed
        } else {
            AdmError::Io(format!("cannot write output: {e}"))
        }
    })
}

fn list_services<T: Transport + ?Sized>(t: &mut T) -> Result<Vec<ServiceInfo>, AdmError> {
    field(&call_ok(t, &Request::ListServices)?, "services")
}

/// `list_service`: `ipvs_get_service` fails, ipvsadm prints `ipvs_strerror(ESRCH)` and exits 1.
fn no_such_service(_: &ServiceId) -> AdmError {
    AdmError::Ipvs { msg: "No such service".into(), status: 1 }
}

/// Runs `inv`: sends its requests through `t`, reads rules from `input` for `-R`, prints to `out`.
pub fn execute<T: Transport + ?Sized>(
    inv: &Invocation,
    t: &mut T,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), AdmError> {
    match &inv.action {
        Action::Help => write_out(out, &help_text()),
        Action::Version => {
            write_out(out, &format!("rvsadm v{} (ipvsadm-compatible)\n", env!("CARGO_PKG_VERSION")))
        }
        Action::Send(req) => send(t, req),
        Action::Capture(req) => {
            let v = call_ok(t, req)?;
            let c: crate::capture::CaptureStatus = field(&v, "capture")?;
            write_out(out, &c.line())
        }
        // ipvsadm exits 255 when the kernel refuses to start or stop a daemon, as for any change.
        Action::Sync(req) => send(t, req),
        Action::ListDaemon => {
            let v = call_ok(t, &Request::SyncStatus)?;
            let daemons: Vec<crate::api::SyncDaemonInfo> = field(&v, "daemons")?;
            write_out(out, &format_daemons(&daemons))
        }
        Action::Timeouts => {
            let v = call_ok(t, &Request::GetTimeouts)?;
            let (tcp, tcpfin, udp): (u32, u32, u32) =
                (field(&v, "tcp")?, field(&v, "tcpfin")?, field(&v, "udp")?);
            write_out(out, &format_timeouts(tcp, tcpfin, udp))
        }
        Action::ListPorts => {
            let ports: Vec<PortInfo> = field(&call_ok(t, &Request::ListPorts)?, "ports")?;
            write_out(out, &format_ports(&ports))
        }
        Action::List { service, view, fmt } => {
            let mut services = list_services(t)?;
            if let Some(id) = service {
                services.retain(|s| s.proto == id.proto && s.vip == id.vip);
                if services.is_empty() {
                    return Err(no_such_service(id));
                }
            }
            let stats: Option<Vec<ServiceStats>> = match view {
                View::Stats | View::Rate => Some(field(&call_ok(t, &Request::ServiceStats)?, "services")?),
                _ => None,
            };
            if *view == View::PersistConn {
                let mut counts: PersistCounts = HashMap::new();
                for tpl in all_templates(t, service)? {
                    *counts.entry((tpl.proto, tpl.vip, tpl.rs)).or_default() += 1;
                }
                return write_out(out, &format_list_persist(&services, &counts, fmt, service.is_some()));
            }
            write_out(out, &format_list(&services, stats.as_deref(), *view, fmt, service.is_some()))
        }
        Action::ListConns { service, fmt } => {
            write_out(out, &format_conn_title(fmt))?;
            let mut offset = 0u64;
            loop {
                let req = Request::ListConns { id: service.clone(), offset, limit: Some(CONN_PAGE) };
                let v = call_ok(t, &req)?;
                let total: u64 = field(&v, "total")?;
                let conns: Vec<ConnInfo> = field(&v, "conns")?;
                let mut page = String::new();
                for c in &conns {
                    page.push_str(&format_conn(c, fmt));
                }
                write_out(out, &page)?;
                offset += conns.len() as u64;
                if conns.is_empty() || offset >= total {
                    break;
                }
            }
            // The kernel lists persistence templates among the connections; rvs's live apart.
            let mut page = String::new();
            for tpl in all_templates(t, service)? {
                page.push_str(&format_conn(&template_conn(tpl), fmt));
            }
            write_out(out, &page)
        }
        Action::Save { fmt } => {
            let services = list_services(t)?;
            let v = call_ok(t, &Request::GetTimeouts)?;
            let timeouts = (field(&v, "tcp")?, field(&v, "tcpfin")?, field(&v, "udp")?);
            write_out(out, &(format_set_rule(timeouts) + &format_rules(&services, fmt)))
        }
        Action::Restore => {
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| AdmError::Io(format!("cannot read rules: {e}")))?;
            let Rules { mut services, timeouts } = parse_rules_full(&text)?;
            // ipvsadm's rule syntax has no health checks, quorum or sorry server: a restored
            // service keeps those its running namesake has, so `-S | -R` does not silently drop them.
            let saved: String = field(&call_ok(t, &Request::Save)?, "config")?;
            if let Ok(running) = crate::config::Config::from_toml(&saved) {
                for s in services.iter_mut() {
                    let Some(r) = running.services.iter().find(|r| r.proto == s.proto && r.vip == s.vip)
                    else {
                        continue;
                    };
                    if s.check.is_none() {
                        s.check = r.check.clone();
                    }
                    (s.quorum, s.hysteresis, s.sorry_server) =
                        (r.quorum, r.hysteresis, r.sorry_server.clone());
                }
            }
            let req = Request::Restore { config: restore_toml(&services)?, timeouts };
            let len = serde_json::to_string(&req).map(|s| s.len()).unwrap_or(0);
            if len >= MAX_REQUEST_BYTES {
                return Err(usage(format!(
                    "the rules make a {len}-byte request; rvsd accepts at most {MAX_REQUEST_BYTES}"
                )));
            }
            send(t, &req)
        }
        Action::GetLaddr { service: Some(id) } => {
            let laddrs: Vec<String> = field(&call_ok(t, &Request::ListLaddrs { id: id.clone() })?, "laddrs")?;
            write_out(out, &(format_laddr_title() + &format_laddrs(&id.vip, &laddrs)))
        }
        Action::GetLaddr { service: None } => {
            let services = list_services(t)?;
            let mut text = String::new();
            for (i, s) in sorted_services(&services, &Format::default()).into_iter().enumerate() {
                if i == 0 {
                    text.push_str(&format_laddr_title());
                }
                text.push_str(&format_laddrs(&s.vip, &s.laddrs));
            }
            write_out(out, &text)
        }
    }
}

/// A template as `-Lc` shows it: LVS's template is a connection with client port 0 in state
/// NONE (TCP) or UDP, and no local address.
fn template_conn(t: TemplateInfo) -> ConnInfo {
    ConnInfo {
        state: if t.proto == Proto::Udp { "UDP".into() } else { "NONE".into() },
        proto: t.proto,
        client: t.client,
        vip: t.vip,
        lip: "0.0.0.0:0".into(),
        rs: t.rs,
        // a template is no connection: rvsadm prints no method for it
        forward: Default::default(),
        expires_ms: t.expires_ms,
        worker: t.worker,
    }
}

/// `--help`, in ipvsadm's layout, with rvs's differences.
pub fn help_text() -> String {
    format!(
        "rvsadm v{ver} - ipvsadm for rvs (DPDK L4 load balancer)
Usage:
  rvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-j enable|disable] [--toa on|off]
          [--proxy-protocol v1|v2|off] [--inhibit-on-failure]
  rvsadm -D -t|u service-address
  rvsadm -C
  rvsadm -R
  rvsadm -S [-n]
  rvsadm -a|e -t|u service-address -r server-address [options]
  rvsadm -d -t|u service-address -r server-address
  rvsadm -P|Q -t|u service-address -z local-address
  rvsadm -G [-t|u service-address]
  rvsadm -L|l [options]
  rvsadm [-L] --ports
  rvsadm --set tcp tcpfin udp
  rvsadm -Z [-t|u service-address]
  rvsadm -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (atomically, as one request)
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --add-laddr       -P        add local address
  --del-laddr       -Q        del local address
  --get-laddr       -G        get local address
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values (0 keeps one)
  --start-daemon              start connection sync daemon (master or backup)
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is IPv4:port or [IPv6]:port
  --udp-service  -u service-address   service-address is IPv4:port or [IPv6]:port
  --scheduler    -s scheduler         one of {scheds},
                                      the default scheduler is {sched}.
  --persistent   -p [timeout]         persistent service (default timeout {pers})
  --inhibit-on-failure                a real server its health check fails stays at weight 0
                                      instead of leaving the table (keepalived's option)
  --real-server  -r server-address    server-address is IPv4[:port], IPv6 or [IPv6]:port
                                      (default port: the service's; IPv4 for an IPv6
                                      service: NAT64, -b only)
  --fullnat      -b                   fullnat (DPVS's) (default)
  --gatewaying   -g                   gatewaying (direct routing)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server (0..={maxw}, default 1)
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     FULLNAT local (source) address, IPv4 or IPv6
  --ifname       -F ifname            accepted for DPVS compatibility and ignored
  --synproxy     -j enable|disable    TCP syn proxy
  --toa          on|off               insert the client address as TCP option (TOA)
  --proxy-protocol v1|v2|off          send the client address in a PROXY protocol header
  --connection   -c                   output of current connections
  --show-lip                          with -c: also print the local address:port
  --stats                             output of statistics information
  --rate                              output of rate information
  --thresholds                        output of thresholds information
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --mcast-interface interface         multicast interface for connection sync
                                      (default: rvsd's [sync] interface)
  --syncid sid                        syncid for connection sync (default: [sync] syncid, 0)
  --persistent-conn                   output of persistent connection info
  --exact        -X                   expand numbers (display exact values)
  --nosort                            disable sorting output of service/server entries
  --numeric      -n                   numeric output (rvsadm always prints numerically)
  --ports                             rvsd's ports (as dpip link show): device, driver, MAC,
                                      address, MTU, link, queues and NIC counters
  --socket PATH                       rvsd's API socket (default ${env}, else {sock})

Differences from ipvsadm: the default forwarding method is fullnat (-b), not gatewaying (-g);
rvsd refuses -g to a real server off its networks, -j enable with -g/-i, --toa on with any but -b,
--proxy-protocol with -g/-i or with --toa on;
-E replaces the whole service as ipvsadm does (no -s: wlc, no -p: not persistent, no -j/--toa/
--proxy-protocol: off);
-e sends the whole real server as ipvsadm does (no -w: weight 1, no -m/-g/-i: -b);
--start-daemon without --mcast-interface/--syncid takes rvsd's [sync] settings;
output is always numeric; no fwmark, netmask or one-packet options.
",
        ver = env!("CARGO_PKG_VERSION"),
        scheds = Sched::names(","),
        sched = DEFAULT_SCHED,
        pers = DEFAULT_PERSISTENCE,
        maxw = MAX_WEIGHT,
        env = SOCKET_ENV,
        sock = defaults::SOCKET,
    )
}
