//! `-R`: `-S` text (ipvsadm's rule syntax, `ipvsadm.c`: `restore_table`) back into services.
use serde::{Deserialize, Serialize};

use super::{parse_args, usage, Action, AdmError};
use crate::api::{LvsTimeouts, Request, ServiceId};
use crate::config::ServiceConfig;

/// Reads `-S` output (or any ipvsadm rules file restricted to `-A`, `-a`, `--add-laddr` and `-C`)
/// into services, in order. Blank lines and `#` comments are skipped; a leading `ipvsadm`/`rvsadm`
/// word is ignored. Errors name the line.
pub fn parse_rules(text: &str) -> Result<Vec<ServiceConfig>, AdmError> {
    parse_rules_full(text).map(|r| r.services)
}

/// What a rules file sets: the services and, from its last `--set` line, the timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub services: Vec<ServiceConfig>,
    pub timeouts: Option<LvsTimeouts>,
}

/// [`parse_rules`], also reading `--set tcp tcpfin udp` lines (ipvsadm's `restore_table` runs
/// every command; rvs applies them with the services, in one change).
pub fn parse_rules_full(text: &str) -> Result<Rules, AdmError> {
    let mut services: Vec<ServiceConfig> = Vec::new();
    let mut timeouts = None;
    for (n, line) in text.lines().enumerate() {
        let line_err = |m: &dyn std::fmt::Display| usage(format!("line {}: {m}", n + 1));
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        if matches!(words[0], "ipvsadm" | "rvsadm") || words[0].ends_with("/ipvsadm") {
            words.remove(0);
        }
        let inv = parse_args(&words, None).map_err(|e| line_err(&e))?;
        let find = |services: &[ServiceConfig], id: &ServiceId| -> Option<usize> {
            services.iter().position(|s| s.proto == id.proto && s.vip == id.vip)
        };
        match inv.action {
            Action::Send(Request::AddService { service }) => {
                let id = ServiceId { proto: service.proto, vip: service.vip.clone() };
                if find(&services, &id).is_some() {
                    return Err(line_err(&format!("service {} {} is defined twice", id.proto, id.vip)));
                }
                services.push(service);
            }
            Action::Send(Request::AddReal { id, real }) => {
                let i = find(&services, &id).ok_or_else(|| {
                    line_err(&format!("service {} {} is not defined by an earlier -A", id.proto, id.vip))
                })?;
                if services[i].reals.iter().any(|r| r.addr == real.addr) {
                    return Err(line_err(&format!("real server {} is listed twice", real.addr)));
                }
                services[i].reals.push(real);
            }
            Action::Send(Request::AddLaddr { id, addr }) => {
                let i = find(&services, &id).ok_or_else(|| {
                    line_err(&format!("service {} {} is not defined by an earlier -A", id.proto, id.vip))
                })?;
                if services[i].laddrs.contains(&addr) {
                    return Err(line_err(&format!("local address {addr} is listed twice")));
                }
                services[i].laddrs.push(addr);
            }
            Action::Send(Request::Clear) => services.clear(),
            Action::Send(Request::SetTimeouts { tcp, tcpfin, udp }) => {
                timeouts = Some(LvsTimeouts { tcp, tcpfin, udp });
            }
            _ => {
                return Err(line_err(&"only -A, -a, --add-laddr, --set and -C can be restored"));
            }
        }
    }
    Ok(Rules { services, timeouts })
}

#[derive(Serialize, Deserialize)]
struct ServicesOnly {
    services: Vec<ServiceConfig>,
}

/// The `restore` request's `config`: TOML holding only `[[services]]`.
pub fn restore_toml(services: &[ServiceConfig]) -> Result<String, AdmError> {
    toml::to_string(&ServicesOnly { services: services.to_vec() })
        .map_err(|e| AdmError::Usage(format!("cannot encode rules as TOML: {e}")))
}

/// Reads a `restore_toml` document back (tests and tools).
pub fn services_from_toml(text: &str) -> Result<Vec<ServiceConfig>, String> {
    toml::from_str::<ServicesOnly>(text).map(|s| s.services).map_err(|e| e.to_string())
}
