//! Running an invocation against rvsd (`ipvsadm.c`: the command switch of `process_options`).
use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;
use crate::api::{ConnInfo, Request, ServiceId, ServiceInfo, ServiceStats, MAX_REQUEST_BYTES};
use crate::config::{defaults, MAX_WEIGHT};
use crate::SCHEDULERS;

/// Sends one request and returns the raw response object (`{"ok":..., ...}`).
pub trait Transport {
    fn call(&mut self, req: &Request) -> Result<Value, AdmError>;
}

fn call_ok<T: Transport + ?Sized>(t: &mut T, req: &Request) -> Result<Value, AdmError> {
    let v = t.call(req)?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(v),
        Some(false) => Err(AdmError::Daemon(
            v.get("error").and_then(Value::as_str).unwrap_or("request failed").to_owned(),
        )),
        None => Err(AdmError::Daemon("unexpected reply from rvsd: no \"ok\"".into())),
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

fn no_such_service(id: &ServiceId) -> AdmError {
    AdmError::Daemon(format!("No such service: {} {}", id.proto, id.vip))
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
        Action::Send(req) => call_ok(t, req).map(|_| ()),
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
                    return Ok(());
                }
            }
        }
        Action::Save { fmt } => {
            let services = list_services(t)?;
            write_out(out, &format_rules(&services, fmt))
        }
        Action::Restore => {
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| AdmError::Io(format!("cannot read rules: {e}")))?;
            let mut services = parse_rules(&text)?;
            // ipvsadm's rule syntax has no health checks: a restored service keeps the check its
            // running namesake has, so `-S | -R` does not silently drop them.
            let saved: String = field(&call_ok(t, &Request::Save)?, "config")?;
            if let Ok(running) = crate::config::Config::from_toml(&saved) {
                for s in services.iter_mut().filter(|s| s.check.is_none()) {
                    s.check = running
                        .services
                        .iter()
                        .find(|r| r.proto == s.proto && r.vip == s.vip)
                        .and_then(|r| r.check.clone());
                }
            }
            let req = Request::Restore { config: restore_toml(&services)? };
            let len = serde_json::to_string(&req).map(|s| s.len()).unwrap_or(0);
            if len >= MAX_REQUEST_BYTES {
                return Err(usage(format!(
                    "the rules make a {len}-byte request; rvsd accepts at most {MAX_REQUEST_BYTES}"
                )));
            }
            call_ok(t, &req).map(|_| ())
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

/// `--help`, in ipvsadm's layout, with rvs's differences.
pub fn help_text() -> String {
    format!(
        "rvsadm v{ver} - ipvsadm for rvs (DPDK FULLNAT load balancer)
Usage:
  rvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-j enable|disable] [--toa on|off]
  rvsadm -D -t|u service-address
  rvsadm -C
  rvsadm -R
  rvsadm -S [-n]
  rvsadm -a|e -t|u service-address -r server-address [options]
  rvsadm -d -t|u service-address -r server-address
  rvsadm -P|Q -t|u service-address -z local-address
  rvsadm -G [-t|u service-address]
  rvsadm -L|l [options]
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
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is IPv4:port
  --udp-service  -u service-address   service-address is IPv4:port
  --scheduler    -s scheduler         one of {scheds},
                                      the default scheduler is {sched}.
  --persistent   -p [timeout]         persistent service (default timeout {pers}; with -E, 0 turns it off)
  --real-server  -r server-address    server-address is IPv4[:port] (default port: the service's)
  --fullnat      -b                   fullnat (default; the only method rvs forwards)
  --gatewaying   -g                   gatewaying (direct routing); refused by rvsd
  --ipip         -i                   ipip encapsulation (tunneling); refused by rvsd
  --masquerading -m                   masquerading (NAT); refused by rvsd
  --weight       -w weight            capacity of real server (0..={maxw}, default 1)
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     FULLNAT local (source) address
  --ifname       -F ifname            accepted for DPVS compatibility and ignored
  --synproxy     -j enable|disable    TCP syn proxy
  --toa          on|off               insert the client address as TCP option (TOA)
  --connection   -c                   output of current connections
  --show-lip                          with -c: also print the local address:port
  --stats                             output of statistics information
  --rate                              output of rate information
  --thresholds                        output of thresholds information
  --exact        -X                   expand numbers (display exact values)
  --nosort                            disable sorting output of service/server entries
  --numeric      -n                   numeric output (rvsadm always prints numerically)
  --socket PATH                       rvsd's API socket (default ${env}, else {sock})

Differences from ipvsadm: the default forwarding method is fullnat (-b), not gatewaying (-g);
-E changes only the options given (as DPVS's ipvsadm); -e without -w sets weight 1 (as ipvsadm);
output is always numeric; IPv4 only; no fwmark, netmask, one-packet or sync-daemon options.
",
        ver = env!("CARGO_PKG_VERSION"),
        scheds = SCHEDULERS.join(","),
        sched = DEFAULT_SCHED,
        pers = DEFAULT_PERSISTENCE,
        maxw = MAX_WEIGHT,
        env = SOCKET_ENV,
        sock = defaults::SOCKET,
    )
}
