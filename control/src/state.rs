//! The control plane's state: the running configuration, the stable ids the dataplane knows its
//! services and real servers by, and health-check verdicts. Pure logic, no sockets, no threads.
//!
//! Invariants:
//! - Every change is applied to a copy, validated whole with [`Config::validate`], and committed only
//!   if valid: a refused request leaves the state exactly as it was.
//! - Ids are never reused: a service or real server that is deleted and added again gets a new id,
//!   so connections of the old one can never be mistaken for the new one's.
//! - A real server that fails its health check keeps its configuration here (what `save` shows);
//!   the dataplane sees it removed (keepalived's default) or, with the service's
//!   `inhibit_on_failure`, at weight 0, until it recovers. Its id is kept, so connections that
//!   outlive the removal still name it and find it again when it comes back.
//! - keepalived's quorum (see [`crate::quorum`]): each service has quorum or not, decided from its
//!   live weight with hysteresis as the verdicts come; a service without quorum and with a sorry
//!   server is served by the sorry server alone. This too is only the dataplane's view.
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use rvs_dataplane::setup::{RealSetup, Setup};

use crate::api::{ErrorCode, LvsTimeouts, Refusal, Request, ServiceId};
use crate::config::{
    endpoint, parse_endpoint, parse_ip, with_port, Config, Proto, RealConfig, ServiceConfig,
    SorryServerConfig,
};
use crate::quorum;
use crate::setup::dataplane_setup;

/// (proto, VIP, vport): a service's identity, independent of how the address was spelled.
pub type ServiceKey = (Proto, IpAddr, u16);

/// A real server's identity within its service.
pub type RealKey = (IpAddr, u16);

fn service_key(proto: Proto, vip: &str) -> Result<ServiceKey, String> {
    let (a, p) = parse_endpoint(vip).map_err(|e| format!("bad virtual service address: {e}"))?;
    Ok((proto, a, p))
}

fn real_key(addr: &str) -> Result<RealKey, String> {
    parse_endpoint(addr).map_err(|e| format!("bad real server address: {e}"))
}

fn label(k: &ServiceKey) -> String {
    format!("{} {}", k.0, endpoint(k.1, k.2))
}

#[derive(Debug)]
pub struct ControlState {
    cfg: Config,
    service_ids: HashMap<ServiceKey, u32>,
    real_ids: HashMap<(u32, RealKey), u32>,
    next_id: u32,
    /// (service id, real id) of real servers whose health check says down.
    down: HashSet<(u32, u32)>,
    /// Service ids that have lost quorum (keepalived's `!quorum_state_up`).
    no_quorum: HashSet<u32>,
    /// (address, port index) on the ports' kernel interfaces, as the VRRP watcher last read them
    /// (`crate::adopt`); only VIPs and local addresses among them reach the dataplane.
    adopted: Vec<(Ipv4Addr, usize)>,
    /// Changes applied since start.
    pub epoch: u64,
}

impl ControlState {
    /// From a validated startup configuration.
    pub fn new(cfg: Config) -> ControlState {
        let mut s = ControlState {
            cfg,
            service_ids: HashMap::new(),
            real_ids: HashMap::new(),
            next_id: 1,
            down: HashSet::new(),
            no_quorum: HashSet::new(),
            adopted: Vec::new(),
            epoch: 0,
        };
        s.assign_ids();
        s
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Gives every service and real server of the current config an id, keeping existing ones.
    /// Then settles each service's quorum: a new service starts as keepalived starts one, a kept
    /// one is re-evaluated (keepalived's reload: `update_quorum_state(vs, true)`).
    fn assign_ids(&mut self) {
        let mut live_s = HashSet::new();
        let mut live_r = HashSet::new();
        let mut new_s = HashSet::new();
        for s in &self.cfg.services {
            let Ok(k) = service_key(s.proto, &s.vip) else { continue };
            let sid = *self.service_ids.entry(k).or_insert_with(|| {
                self.next_id += 1;
                new_s.insert(self.next_id - 1);
                self.next_id - 1
            });
            live_s.insert(sid);
            let sorry = s.sorry_server.as_ref().map(|ss| &ss.addr);
            for addr in s.reals.iter().map(|r| &r.addr).chain(sorry) {
                let Ok(rk) = real_key(addr) else { continue };
                let rid = *self.real_ids.entry((sid, rk)).or_insert_with(|| {
                    self.next_id += 1;
                    self.next_id - 1
                });
                live_r.insert((sid, rid));
            }
        }
        self.service_ids.retain(|_, id| live_s.contains(id));
        self.real_ids.retain(|(sid, _), rid| live_r.contains(&(*sid, *rid)));
        self.down.retain(|k| live_r.contains(k));
        self.no_quorum.retain(|sid| live_s.contains(sid));
        for i in 0..self.cfg.services.len() {
            let s = &self.cfg.services[i];
            let Some(sid) = self.service_id(s.proto, &s.vip) else { continue };
            let live = self.live_weight(sid, s);
            let has = if new_s.contains(&sid) {
                quorum::initial(live, s.quorum, s.hysteresis)
            } else {
                quorum::update(self.has_quorum(sid), live, s.quorum, s.hysteresis)
            };
            self.set_quorum(i, sid, has, live);
        }
    }

    /// The sum of the weights of the real servers of `s` (service id `sid`) that are up.
    fn live_weight(&self, sid: u32, s: &ServiceConfig) -> u64 {
        s.reals
            .iter()
            .filter(|r| self.real_id(sid, &r.addr).is_none_or(|rid| !self.down.contains(&(sid, rid))))
            .map(|r| u64::from(r.weight))
            .sum()
    }

    /// Records whether service `i` (id `sid`) has quorum, logging a change as keepalived does.
    fn set_quorum(&mut self, i: usize, sid: u32, has: bool, live: u64) {
        let changed = if has { self.no_quorum.remove(&sid) } else { self.no_quorum.insert(sid) };
        if !changed {
            return;
        }
        let s = &self.cfg.services[i];
        let sorry = match (&s.sorry_server, has) {
            (Some(ss), true) => format!("; sorry server {} out, real servers back", ss.addr),
            (Some(ss), false) => format!("; sorry server {} serves alone", ss.addr),
            (None, _) => String::new(),
        };
        let (what, sign) = if has { ("gained quorum", '+') } else { ("lost quorum", '-') };
        let service = format!("{} {}", s.proto, s.vip);
        let (q, h) = (s.quorum, s.hysteresis);
        // keepalived logs every change; here at info where quorum is configured (a sorry server or
        // thresholds), else at debug: without a sorry server a change does nothing, and a service
        // made with rvsadm loses its default quorum whenever it has no live weight (e.g. `-A`).
        if s.sorry_server.is_some() || q != crate::config::defaults::QUORUM || h != 0 {
            tracing::info!(%service, "{what}: live weight {live}, quorum {q} {sign} hysteresis {h}{sorry}");
        } else {
            tracing::debug!(%service, "{what}: live weight {live}, quorum {q} {sign} hysteresis {h}");
        }
    }

    /// Whether the sorry server of the service with id `sid` serves in place of its real servers.
    pub fn sorry_serving(&self, sid: u32) -> bool {
        !self.has_quorum(sid)
            && self
                .cfg
                .services
                .iter()
                .any(|s| s.sorry_server.is_some() && self.service_id(s.proto, &s.vip) == Some(sid))
    }

    /// The sorry server of `s` (id `sid`) and its weight, while it is in the pool: serving (weight
    /// 1), or idle at weight 0 with `sorry_server_inhibit`.
    pub fn sorry_in_pool<'a>(&self, sid: u32, s: &'a ServiceConfig) -> Option<(&'a SorryServerConfig, u32)> {
        let ss = s.sorry_server.as_ref()?;
        if !self.has_quorum(sid) {
            Some((ss, quorum::SORRY_WEIGHT))
        } else {
            ss.inhibit.then_some((ss, 0))
        }
    }

    /// Whether the service with id `sid` has quorum (keepalived's `quorum_state_up`).
    pub fn has_quorum(&self, sid: u32) -> bool {
        !self.no_quorum.contains(&sid)
    }

    pub fn service_id(&self, proto: Proto, vip: &str) -> Option<u32> {
        self.service_ids.get(&service_key(proto, vip).ok()?).copied()
    }

    pub fn real_id(&self, service: u32, addr: &str) -> Option<u32> {
        self.real_ids.get(&(service, real_key(addr).ok()?)).copied()
    }

    /// The service and real server address behind a pair of ids, if both are still configured.
    pub fn names_of(&self, service: u32, real: u32) -> Option<(&ServiceConfig, RealKey)> {
        let sc = self.cfg.services.iter().find(|s| self.service_id(s.proto, &s.vip) == Some(service))?;
        let rk = self.real_ids.iter().find(|((sid, _), rid)| *sid == service && **rid == real)?.0 .1;
        Some((sc, rk))
    }

    fn find_service(&self, id: &ServiceId) -> Result<usize, Refusal> {
        let k = service_key(id.proto, &id.vip)?;
        self.cfg
            .services
            .iter()
            .position(|s| service_key(s.proto, &s.vip).ok().as_ref() == Some(&k))
            .ok_or_else(|| Refusal::new(ErrorCode::NoSuchService, format!("no such service: {}", label(&k))))
    }

    /// Applies a configuration-changing request. Ok(false) means the request changes nothing here
    /// (reads, zeroing); Ok(true) that the services changed and must be published to the workers.
    pub fn change(&mut self, req: &Request) -> Result<bool, Refusal> {
        let mut next = self.cfg.clone();
        match req {
            Request::AddService { service } => {
                let k = service_key(service.proto, &service.vip)?;
                if next.services.iter().any(|s| service_key(s.proto, &s.vip).ok().as_ref() == Some(&k)) {
                    return Err(Refusal::new(
                        ErrorCode::ServiceExists,
                        format!("service {} already exists", label(&k)),
                    ));
                }
                let mut service = service.clone();
                service.fill_real_ports();
                next.services.push(service);
            }
            Request::EditService {
                id,
                sched,
                persistence,
                toa,
                synproxy,
                proxy_protocol,
                inhibit_on_failure,
            } => {
                let i = self.find_service(id)?;
                let s = &mut next.services[i];
                if let Some(v) = sched {
                    s.sched = *v;
                }
                if let Some(p) = persistence {
                    s.persistence = if *p == 0 { None } else { Some(*p) };
                }
                if let Some(v) = toa {
                    s.toa = *v;
                }
                if let Some(v) = synproxy {
                    s.synproxy = *v;
                }
                if let Some(v) = proxy_protocol {
                    s.proxy_protocol = *v;
                }
                if let Some(v) = inhibit_on_failure {
                    s.inhibit_on_failure = *v;
                }
            }
            Request::DeleteService { id } => {
                let i = self.find_service(id)?;
                next.services.remove(i);
            }
            Request::AddReal { id, real } => {
                let i = self.find_service(id)?;
                let s = &mut next.services[i];
                let real = real_in(s, real);
                let rk = real_key(&real.addr)?;
                if s.reals.iter().any(|r| real_key(&r.addr).ok() == Some(rk)) {
                    return Err(Refusal::new(
                        ErrorCode::RealExists,
                        format!(
                            "real server {} already exists in {} {}",
                            endpoint(rk.0, rk.1),
                            s.proto,
                            s.vip
                        ),
                    ));
                }
                s.reals.push(real);
            }
            Request::EditReal { id, real } => {
                let i = self.find_service(id)?;
                let s = &mut next.services[i];
                let real = real_in(s, real);
                let rk = real_key(&real.addr)?;
                let Some(r) = s.reals.iter_mut().find(|r| real_key(&r.addr).ok() == Some(rk)) else {
                    return Err(no_such_real(rk, s));
                };
                *r = RealConfig { addr: r.addr.clone(), ..real };
            }
            Request::DeleteReal { id, addr } => {
                let i = self.find_service(id)?;
                let s = &mut next.services[i];
                let rk = real_key(&with_port(addr, s.vport().unwrap_or_default()))?;
                let n = s.reals.len();
                s.reals.retain(|r| real_key(&r.addr).ok() != Some(rk));
                if s.reals.len() == n {
                    return Err(no_such_real(rk, s));
                }
            }
            Request::AddLaddr { id, addr } => {
                let i = self.find_service(id)?;
                let a = parse_ip(addr)?;
                let s = &mut next.services[i];
                if s.laddrs.iter().any(|l| parse_ip(l).ok() == Some(a)) {
                    return Err(Refusal::new(
                        ErrorCode::LaddrExists,
                        format!("local address {a} already exists in {} {}", s.proto, s.vip),
                    ));
                }
                s.laddrs.push(a.to_string());
            }
            Request::DeleteLaddr { id, addr } => {
                let i = self.find_service(id)?;
                let a = parse_ip(addr)?;
                let s = &mut next.services[i];
                let n = s.laddrs.len();
                s.laddrs.retain(|l| parse_ip(l).ok() != Some(a));
                if s.laddrs.len() == n {
                    return Err(Refusal::new(
                        ErrorCode::NoSuchLaddr,
                        format!("no such local address {a} in {} {}", s.proto, s.vip),
                    ));
                }
            }
            Request::Clear => next.services.clear(),
            Request::Restore { config, timeouts } => {
                next.services = self.restorable(config)?;
                if let Some(t) = timeouts {
                    set_timeouts(&mut next, t);
                }
            }
            Request::SetTimeouts { tcp, tcpfin, udp } => {
                set_timeouts(&mut next, &LvsTimeouts { tcp: *tcp, tcpfin: *tcpfin, udp: *udp })
            }
            _ => return Ok(false),
        }
        next.validate().map_err(|e| Refusal::from(e.to_string()))?;
        // Local addresses and VIPs must not collide with the gateway's own port addresses or each other.
        check_addresses(&next)?;
        self.cfg = next;
        self.assign_ids();
        Ok(true)
    }

    /// The services of a `restore` text. Sections other than `services` must be absent or equal
    /// to the running ones: ports, workers and the rest cannot change at runtime.
    fn restorable(&self, text: &str) -> Result<Vec<ServiceConfig>, String> {
        let given: toml::Table =
            text.parse().map_err(|e: toml::de::Error| format!("restore: {}", e.message()))?;
        let parsed = Config::from_toml(text).map_err(|e| format!("restore: {e}"))?;
        // Compare normalised forms (defaults filled in), section by section, for the sections given.
        let table = |c: &Config| -> Option<toml::Table> { toml::to_string(c).ok()?.parse().ok() };
        let (restored, running) =
            table(&parsed).zip(table(&self.cfg)).ok_or("restore: cannot normalise the configuration")?;
        for k in given.keys().filter(|k| *k != "services" && *k != "version") {
            if restored.get(k) != running.get(k) {
                return Err(format!(
                    "restore: section \"{k}\" differs from the running configuration; only services can change at runtime"
                ));
            }
        }
        Ok(parsed.services)
    }

    /// Records a health verdict. Returns true when it changes what the dataplane must see.
    /// The service's quorum follows (keepalived's `perform_svr_state` then `update_quorum_state`).
    pub fn set_health(&mut self, service: u32, real: u32, up: bool) -> bool {
        if !self.real_ids.values().any(|r| *r == real) {
            return false;
        }
        let changed = if up { self.down.remove(&(service, real)) } else { self.down.insert((service, real)) };
        if changed {
            let found =
                self.cfg.services.iter().position(|s| self.service_id(s.proto, &s.vip) == Some(service));
            if let Some(i) = found {
                let s = &self.cfg.services[i];
                let live = self.live_weight(service, s);
                let has = quorum::update(self.has_quorum(service), live, s.quorum, s.hysteresis);
                self.set_quorum(i, service, has, live);
            }
        }
        changed
    }

    /// Records the addresses on the kernel interfaces (`[vrrp] adopt`); true if they changed.
    pub fn set_adopted(&mut self, adopted: Vec<(Ipv4Addr, usize)>) -> bool {
        let changed = self.adopted != adopted;
        self.adopted = adopted;
        changed
    }

    pub fn is_down(&self, service: u32, real: u32) -> bool {
        self.down.contains(&(service, real))
    }

    /// The dataplane's view: ids filled in; real servers their check failed removed, or at
    /// weight 0 where the service sets `inhibit_on_failure` (keepalived's two behaviours); a
    /// service without quorum served by its sorry server ([`quorum::pool`]).
    pub fn setup(&self, macs: &[[u8; 6]]) -> Result<Setup, String> {
        let mut setup = dataplane_setup(&self.cfg, macs).map_err(|e| e.to_string())?;
        for (svc, sc) in setup.services.iter_mut().zip(&self.cfg.services) {
            svc.id = self.service_id(sc.proto, &sc.vip).unwrap_or(0);
            let sid = svc.id;
            let members = std::mem::take(&mut svc.reals)
                .into_iter()
                .zip(&sc.reals)
                .map(|(mut real, rc)| {
                    real.id = self.real_id(sid, &rc.addr).unwrap_or(0);
                    quorum::Member { down: self.down.contains(&(sid, real.id)), real }
                })
                .collect();
            let sorry = match &sc.sorry_server {
                None => None,
                Some(ss) => {
                    let (addr, port) = parse_endpoint(&ss.addr)?;
                    let real = RealSetup {
                        id: self.real_id(sid, &ss.addr).unwrap_or(0),
                        addr,
                        port,
                        weight: quorum::SORRY_WEIGHT,
                        u_threshold: 0,
                        l_threshold: 0,
                        xlat: ss.forward.xlat(),
                    };
                    Some(quorum::Sorry { real, inhibit: ss.inhibit })
                }
            };
            svc.reals = quorum::pool(members, sc.inhibit_on_failure, sorry, self.has_quorum(sid));
        }
        if let Some(a) = &mut setup.conn.adopt {
            // ARP adoption is IPv4's: IPv6 VIPs and local addresses are answered by NDP as always.
            let ours: HashSet<Ipv4Addr> = setup
                .services
                .iter()
                .flat_map(|s| std::iter::once(s.vip).chain(s.laddrs.iter().copied()))
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            a.addrs = self.adopted.iter().filter(|(addr, _)| ours.contains(addr)).copied().collect();
        }
        Ok(setup)
    }
}

/// LVS's `ip_vs_set_timeout`: a 0 leaves that timeout as it is.
fn set_timeouts(cfg: &mut Config, t: &LvsTimeouts) {
    let c = &mut cfg.conn.timeouts;
    for (v, field) in [(t.tcp, &mut c.established), (t.tcpfin, &mut c.fin_wait), (t.udp, &mut c.udp)] {
        if v > 0 {
            *field = v;
        }
    }
}

/// A requested real server as the service holds it: without a port, the service's.
fn real_in(s: &ServiceConfig, real: &RealConfig) -> RealConfig {
    RealConfig { addr: with_port(&real.addr, s.vport().unwrap_or_default()), ..real.clone() }
}

fn no_such_real(rk: RealKey, s: &ServiceConfig) -> Refusal {
    Refusal::new(
        ErrorCode::NoSuchReal,
        format!("no such real server {} in {} {}", endpoint(rk.0, rk.1), s.proto, s.vip),
    )
}

fn check_addresses(cfg: &Config) -> Result<(), String> {
    let ports: HashSet<IpAddr> = cfg
        .ports
        .iter()
        .flat_map(|p| std::iter::once(&p.addr).chain(&p.addr6))
        .filter_map(|p| p.split('/').next().and_then(|a| a.parse().ok()))
        .collect();
    let mut vips = HashSet::new();
    let mut lips = HashSet::new();
    for s in &cfg.services {
        if let Ok((v, _)) = parse_endpoint(&s.vip) {
            vips.insert(v);
        }
        lips.extend(s.laddrs.iter().filter_map(|l| parse_ip(l).ok()));
    }
    if let Some(a) = lips.iter().find(|a| vips.contains(*a) || ports.contains(*a)) {
        return Err(format!("local address {a} is also a VIP or a port address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LvsTimeouts;
    use crate::config::Forward;

    fn state() -> ControlState {
        let cfg = Config::from_toml(
            r#"
[[ports]]
name = "c"
device = "net_ring0"
addr = "198.18.0.1/24"
[[ports]]
name = "s"
device = "net_ring1"
addr = "198.18.1.1/24"
[[services]]
proto = "tcp"
vip = "198.18.0.100:80"
sched = "rr"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:80" }]
"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        ControlState::new(cfg)
    }

    fn id() -> ServiceId {
        ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:80".into() }
    }

    fn real(addr: &str, weight: u32) -> RealConfig {
        RealConfig { addr: addr.into(), weight, forward: Forward::Fullnat, u_threshold: 0, l_threshold: 0 }
    }

    #[test]
    fn bad_requests_leave_the_state_unchanged() {
        let mut s = state();
        let before = s.config().clone();
        let bad = [
            Request::AddReal { id: id(), real: real("198.18.1.11:80", 1) },
            Request::AddReal { id: id(), real: real("198.18.1.300:80", 1) },
            Request::AddReal { id: id(), real: real("198.18.1.14:0", 1) },
            Request::AddReal { id: id(), real: real("198.18.1.14:80", 70000) },
            Request::AddReal {
                id: ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:81".into() },
                real: real("198.18.1.14:80", 1),
            },
            Request::AddReal {
                id: id(),
                real: RealConfig { forward: Forward::Route, ..real("10.7.0.1:80", 1) },
            },
            Request::DeleteReal { id: id(), addr: "198.18.1.99:80".into() },
            Request::AddLaddr { id: id(), addr: "198.18.0.100".into() },
            Request::Restore {
                timeouts: None,
                config: "[[ports]]\nname=\"x\"\ndevice=\"net_ring5\"\naddr=\"10.0.0.1/24\"\n".into(),
            },
        ];
        for r in bad {
            assert!(s.change(&r).is_err(), "{r:?} was accepted");
            assert_eq!(s.config(), &before);
        }
    }

    fn edit_service(toa: Option<bool>, synproxy: Option<bool>) -> Request {
        Request::EditService {
            id: id(),
            sched: None,
            persistence: None,
            toa,
            synproxy,
            proxy_protocol: None,
            inhibit_on_failure: None,
        }
    }

    fn with(forward: Forward, r: RealConfig) -> RealConfig {
        RealConfig { forward, ..r }
    }

    /// API changes go through the configuration's rules: a change breaking one is refused with
    /// its line, and the running configuration stays as it was.
    #[test]
    fn method_rules_apply_to_api_changes() {
        let mut s = state();
        // accepted: each method beside FULLNAT; without a port the real server takes the service's
        for r in [
            with(Forward::Masq, real("198.18.1.13:8080", 1)),
            with(Forward::Route, real("198.18.1.14", 1)),
            with(Forward::Tunnel, real("10.7.0.1:80", 1)),
        ] {
            assert!(s.change(&Request::AddReal { id: id(), real: r.clone() }).unwrap(), "{r:?}");
        }
        let reals: Vec<(&str, Forward)> =
            s.config().services[0].reals.iter().map(|r| (r.addr.as_str(), r.forward)).collect();
        assert_eq!(
            reals,
            [
                ("198.18.1.11:80", Forward::Fullnat),
                ("198.18.1.12:80", Forward::Fullnat),
                ("198.18.1.13:8080", Forward::Masq),
                ("198.18.1.14:80", Forward::Route),
                ("10.7.0.1:80", Forward::Tunnel),
            ]
        );
        let sid = s.service_id(Proto::Tcp, "198.18.0.100:80").unwrap();
        assert!(s.real_id(sid, "198.18.1.14:80").is_some());
        // a port-less address names the same real server for -e and -d
        s.change(&Request::EditReal { id: id(), real: with(Forward::Route, real("198.18.1.14", 5)) })
            .unwrap();
        assert_eq!(s.config().services[0].reals[3].weight, 5);

        let before = s.config().clone();
        let refused = [
            (
                Request::AddReal { id: id(), real: with(Forward::Route, real("10.7.0.2:80", 1)) },
                "services[0].reals[5].addr: 10.7.0.2 is on none of the ports' networks (198.18.0.0/24, 198.18.1.0/24): DR needs an on-link real server",
            ),
            (
                Request::AddReal { id: id(), real: with(Forward::Tunnel, real("10.7.0.2:8080", 1)) },
                "services[0].reals[5].addr: port 8080 is not the service's port 80: DR/TUN cannot change the port (write 10.7.0.2:80 or 10.7.0.2)",
            ),
            (
                edit_service(None, Some(true)),
                "services[0].synproxy: SYN-proxy needs the real server's replies through the gateway; real 198.18.1.14:80 forwards dr",
            ),
            (
                edit_service(Some(true), None),
                "services[0].toa: TOA is for FULLNAT real servers (with nat the real server sees the client's address itself); real 198.18.1.13:8080 forwards nat",
            ),
        ];
        for (req, want) in refused {
            let e = s.change(&req).unwrap_err();
            assert_eq!(e.msg, want, "{req:?}");
            assert_eq!(e.code, None);
            assert_eq!(s.config(), &before, "{req:?} changed the configuration");
        }
        // With SYN-proxy on, a real server may not be switched to DR (nor added as TUN).
        let mut s = state();
        s.change(&edit_service(None, Some(true))).unwrap();
        let before = s.config().clone();
        for req in [
            Request::EditReal { id: id(), real: with(Forward::Route, real("198.18.1.11:80", 1)) },
            Request::AddReal { id: id(), real: with(Forward::Tunnel, real("10.7.0.1", 1)) },
        ] {
            let e = s.change(&req).unwrap_err();
            assert!(e.msg.starts_with("services[0].synproxy: SYN-proxy needs"), "{e}");
            assert_eq!(s.config(), &before);
        }
        // NAT keeps SYN-proxy
        s.change(&Request::EditReal { id: id(), real: with(Forward::Masq, real("198.18.1.11:80", 1)) })
            .unwrap();
    }

    #[test]
    fn adopted_addresses_reach_the_setup_only_when_on_and_ours() {
        let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
        let vip: Ipv4Addr = "198.18.0.100".parse().unwrap();
        let lip: Ipv4Addr = "198.18.1.100".parse().unwrap();
        let port_addr: Ipv4Addr = "198.18.0.1".parse().unwrap();
        let mut s = state();
        assert!(s.set_adopted(vec![(vip, 0), (lip, 1)]));
        assert!(s.setup(&macs).unwrap().conn.adopt.is_none(), "adoption off: ARP claims everything");
        let mut cfg = s.config().clone();
        cfg.vrrp.adopt = true;
        cfg.vrrp.interfaces = vec![
            crate::config::vrrp::VrrpInterface { port: "c".into(), ifname: "rvs0".into() },
            crate::config::vrrp::VrrpInterface { port: "s".into(), ifname: "rvs1".into() },
        ];
        cfg.validate().unwrap();
        let mut s = ControlState::new(cfg);
        let a = s.setup(&macs).unwrap().conn.adopt.expect("on");
        assert!(a.addrs.is_empty(), "nothing adopted before the watcher reads");
        assert_eq!(a.garp_count, crate::config::vrrp::defaults::GARP_COUNT);
        // The port's own address on the TAP is not a VRRP address: left out.
        assert!(s.set_adopted(vec![(port_addr, 0), (vip, 0), (lip, 1)]));
        assert!(!s.set_adopted(vec![(port_addr, 0), (vip, 0), (lip, 1)]), "same set: no change");
        assert_eq!(s.setup(&macs).unwrap().conn.adopt.unwrap().addrs, vec![(vip, 0), (lip, 1)]);
    }

    #[test]
    fn ids_are_stable_and_never_reused() {
        let mut s = state();
        let sid = s.service_id(Proto::Tcp, "198.18.0.100:80").unwrap();
        let r11 = s.real_id(sid, "198.18.1.11:80").unwrap();
        assert!(s.change(&Request::AddReal { id: id(), real: real("198.18.1.13:80", 2) }).unwrap());
        assert_eq!(s.real_id(sid, "198.18.1.11:80"), Some(r11));
        s.change(&Request::DeleteReal { id: id(), addr: "198.18.1.11:80".into() }).unwrap();
        assert_eq!(s.real_id(sid, "198.18.1.11:80"), None);
        s.change(&Request::AddReal { id: id(), real: real("198.18.1.11:80", 1) }).unwrap();
        assert_ne!(s.real_id(sid, "198.18.1.11:80"), Some(r11));
        let setup = s.setup(&[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]).unwrap();
        assert_eq!(setup.services[0].id, sid);
        assert_eq!(setup.services[0].reals.len(), 3);
    }

    /// keepalived's check/ipwrapper.c `perform_svr_state`: a failed real server leaves the table
    /// (LVS_CMD_DEL_DEST) unless `inhibit_on_failure`, which keeps it at weight 0. The config keeps
    /// it either way, and its id survives, so it comes back as the same server.
    #[test]
    fn health_removes_or_inhibits_without_changing_the_config() {
        let mut s = state();
        let sid = s.service_id(Proto::Tcp, "198.18.0.100:80").unwrap();
        let rid = s.real_id(sid, "198.18.1.12:80").unwrap();
        assert!(s.set_health(sid, rid, false));
        assert!(!s.set_health(sid, rid, false));
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        assert_eq!(setup.services[0].reals.len(), 1, "removed (keepalived's default)");
        assert_ne!(setup.services[0].reals[0].id, rid);
        assert_eq!(s.config().services[0].reals[1].weight, 1);
        let edit = |inhibit| Request::EditService {
            id: id(),
            sched: None,
            persistence: None,
            toa: None,
            synproxy: None,
            proxy_protocol: None,
            inhibit_on_failure: Some(inhibit),
        };
        assert!(s.change(&edit(true)).unwrap());
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        assert_eq!(setup.services[0].reals.len(), 2, "inhibited: kept");
        assert_eq!((setup.services[0].reals[1].id, setup.services[0].reals[1].weight), (rid, 0));
        assert!(s.is_down(sid, rid), "the verdict survives the edit");
        assert!(s.set_health(sid, rid, true));
        assert_eq!(s.setup(&[[0; 6], [0; 6]]).unwrap().services[0].reals[1].weight, 1);
        s.change(&edit(false)).unwrap();
        assert!(s.set_health(sid, rid, false));
        assert!(s.set_health(sid, rid, true));
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        assert_eq!(
            (setup.services[0].reals[1].id, setup.services[0].reals[1].weight),
            (rid, 1),
            "back, same id"
        );
    }

    /// keepalived's quorum through the control state: health verdicts move the live weight, the
    /// quorum follows with hysteresis, and the dataplane's view (what `publish` sends every worker
    /// in one `Setup`) swaps the sorry server in and out.
    #[test]
    fn quorum_and_sorry_server_follow_the_verdicts() {
        let mut s = state();
        let mut svc = s.config().services[0].clone();
        svc.vip = "198.18.0.100:8080".into();
        svc.reals = vec![real("198.18.1.11:80", 2), real("198.18.1.12:80", 2), real("198.18.1.13:80", 1)];
        svc.quorum = 3;
        svc.hysteresis = 1;
        svc.sorry_server = Some(crate::config::SorryServerConfig {
            addr: "198.18.1.20:8080".into(),
            forward: Forward::Fullnat,
            inhibit: false,
        });
        assert!(s.change(&Request::AddService { service: svc }).unwrap());
        let sid = s.service_id(Proto::Tcp, "198.18.0.100:8080").unwrap();
        let rid = |s: &ControlState, a: &str| s.real_id(sid, a).unwrap();
        let (r11, r12, r13) =
            (rid(&s, "198.18.1.11:80"), rid(&s, "198.18.1.12:80"), rid(&s, "198.18.1.13:80"));
        let sorry = rid(&s, "198.18.1.20:8080");
        let pool = |s: &ControlState| -> Vec<(u32, u32)> {
            s.setup(&[[0; 6], [0; 6]]).unwrap().services[1].reals.iter().map(|r| (r.id, r.weight)).collect()
        };
        assert!(s.has_quorum(sid), "live 5 >= 3 + 1");
        assert_eq!(pool(&s), [(r11, 2), (r12, 2), (r13, 1)]);
        // 11 down: live 3, not below 3 - 1: quorum kept.
        assert!(s.set_health(sid, r11, false));
        assert!(s.has_quorum(sid));
        assert_eq!(pool(&s), [(r12, 2), (r13, 1)]);
        // 12 down: live 1 < 2: quorum lost; the live 13 leaves, the sorry server serves at weight 1.
        assert!(s.set_health(sid, r12, false));
        assert!(!s.has_quorum(sid));
        assert_eq!(pool(&s), [(sorry, 1)]);
        // 11 back: live 3, below 3 + 1: still without quorum, the pool unchanged.
        assert!(s.set_health(sid, r11, true));
        assert!(!s.has_quorum(sid));
        assert_eq!(pool(&s), [(sorry, 1)]);
        // 12 back: live 5: quorum back, sorry server out, the live servers back.
        assert!(s.set_health(sid, r12, true));
        assert!(s.has_quorum(sid));
        assert_eq!(pool(&s), [(r11, 2), (r12, 2), (r13, 1)]);
        // The other service (no quorum settings) was never touched; the config keeps its reals.
        assert_eq!(s.setup(&[[0; 6], [0; 6]]).unwrap().services[0].reals.len(), 2);
        assert_eq!(s.config().services[1].reals.len(), 3);
        // Losing quorum again, then a config change: the state is re-evaluated, not reset.
        s.set_health(sid, r11, false);
        s.set_health(sid, r12, false);
        assert!(!s.has_quorum(sid));
        let id8080 = ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:8080".into() };
        s.change(&Request::AddLaddr { id: id8080.clone(), addr: "198.18.1.101".into() }).unwrap();
        assert!(!s.has_quorum(sid));
        assert_eq!(pool(&s), [(sorry, 1)]);
        // Deleting the down servers leaves 13 alone (live 1 of a total 1): still without quorum,
        // as keepalived after a reload with the same thresholds.
        s.change(&Request::DeleteReal { id: id8080.clone(), addr: "198.18.1.11:80".into() }).unwrap();
        s.change(&Request::DeleteReal { id: id8080, addr: "198.18.1.12:80".into() }).unwrap();
        assert!(!s.has_quorum(sid));
        let w = s.config().warnings();
        assert!(w.iter().any(|w| w.starts_with("services[1].quorum: tcp 198.18.0.100:8080: its real servers weigh 1")), "{w:?}");
    }

    #[test]
    fn quorum_settings_are_validated() {
        let mut s = state();
        let before = s.config().clone();
        let mut svc = s.config().services[0].clone();
        svc.vip = "198.18.0.100:8080".into();
        // Without a port, the service's (the API fills it in as for real servers).
        let mut bare = svc.clone();
        bare.sorry_server = Some(crate::config::SorryServerConfig {
            addr: "198.18.1.20".into(),
            forward: Forward::Route,
            inhibit: true,
        });
        let mut t = state();
        assert!(t.change(&Request::AddService { service: bare }).unwrap());
        assert_eq!(t.config().services[1].sorry_server.as_ref().unwrap().addr, "198.18.1.20:8080");
        for (edit, want) in [
            ((0, 0, "198.18.1.20:80", Forward::Fullnat), "services[1].quorum: must be at least 1"),
            ((2, 2, "198.18.1.20:80", Forward::Fullnat), "services[1].hysteresis: 2 must be below quorum 2"),
            ((1, 0, "198.18.1.20:0", Forward::Fullnat), "services[1].sorry_server.addr: bad port \"0\""),
            (
                (1, 0, "198.18.1.20:80", Forward::Tunnel),
                "services[1].sorry_server.addr: port 80 is not the service's port 8080",
            ),
        ] {
            let mut v = svc.clone();
            (v.quorum, v.hysteresis) = (edit.0, edit.1);
            v.sorry_server = Some(crate::config::SorryServerConfig {
                addr: edit.2.into(),
                forward: edit.3,
                inhibit: false,
            });
            let e = s.change(&Request::AddService { service: v }).unwrap_err();
            assert!(e.msg.starts_with(want), "{e}");
            assert_eq!(s.config(), &before);
        }
    }

    #[test]
    fn timeouts_set_as_lvs_sets_them() {
        let mut s = state();
        assert!(s.change(&Request::SetTimeouts { tcp: 600, tcpfin: 0, udp: 30 }).unwrap());
        let t = &s.config().conn.timeouts;
        assert_eq!((t.established, t.fin_wait, t.udp), (600, 120, 30), "0 keeps a timeout");
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        assert_eq!(setup.conn.timeouts.established, 600_000);
        // too long: refused whole, nothing changed
        let before = s.config().clone();
        let e = s.change(&Request::SetTimeouts { tcp: 1, tcpfin: 1, udp: u32::MAX }).unwrap_err();
        assert!(e.msg.starts_with("conn.timeouts.udp:"), "{e}");
        assert_eq!(s.config(), &before);
        // with a restore, in the same change
        let text = s.config().to_toml();
        let timeouts = Some(LvsTimeouts { tcp: 0, tcpfin: 45, udp: 0 });
        assert!(s.change(&Request::Restore { config: text, timeouts }).unwrap());
        assert_eq!(s.config().conn.timeouts.fin_wait, 45);
    }

    #[test]
    fn refusals_carry_the_reason() {
        let mut s = state();
        let other = ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:81".into() };
        let code = |s: &mut ControlState, r: Request| s.change(&r).unwrap_err().code;
        assert_eq!(
            code(&mut s, Request::DeleteService { id: other.clone() }),
            Some(ErrorCode::NoSuchService)
        );
        assert_eq!(
            code(&mut s, Request::AddReal { id: other, real: real("198.18.1.13:80", 1) }),
            Some(ErrorCode::NoSuchService)
        );
        assert_eq!(
            code(&mut s, Request::AddReal { id: id(), real: real("198.18.1.11:80", 1) }),
            Some(ErrorCode::RealExists)
        );
        assert_eq!(
            code(&mut s, Request::DeleteReal { id: id(), addr: "198.18.1.99:80".into() }),
            Some(ErrorCode::NoSuchReal)
        );
        let svc = s.config().services[0].clone();
        assert_eq!(code(&mut s, Request::AddService { service: svc }), Some(ErrorCode::ServiceExists));
        assert_eq!(
            code(&mut s, Request::AddLaddr { id: id(), addr: "198.18.1.100".into() }),
            Some(ErrorCode::LaddrExists)
        );
        assert_eq!(
            code(&mut s, Request::DeleteLaddr { id: id(), addr: "198.18.1.99".into() }),
            Some(ErrorCode::NoSuchLaddr)
        );
    }

    /// DPVS's order: -A, -a, then --add-laddr; in between the service has reals and no laddr.
    #[test]
    fn dpvs_order_is_accepted() {
        let mut s = state();
        let v = ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:8080".into() };
        let svc = ServiceConfig {
            vip: v.vip.clone(),
            laddrs: vec![],
            reals: vec![],
            ..s.config().services[0].clone()
        };
        s.change(&Request::AddService { service: svc }).unwrap();
        s.change(&Request::AddReal { id: v.clone(), real: real("198.18.1.11:8080", 1) }).unwrap();
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        assert!(setup.services[1].laddrs.is_empty() && setup.services[1].reals.len() == 1);
        s.change(&Request::AddLaddr { id: v, addr: "198.18.1.101".into() }).unwrap();
        assert_eq!(s.setup(&[[0; 6], [0; 6]]).unwrap().services[1].laddrs.len(), 1);
    }

    #[test]
    fn restore_replaces_services_only() {
        let mut s = state();
        let text = r#"
[[services]]
proto = "udp"
vip = "198.18.0.100:53"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:53" }]
"#;
        assert!(s.change(&Request::Restore { config: text.into(), timeouts: None }).unwrap());
        assert_eq!(s.config().services.len(), 1);
        assert_eq!(s.config().services[0].proto, Proto::Udp);
        assert_eq!(s.config().ports.len(), 2);
        // the saved whole config restores to the same state
        let saved = s.config().to_toml();
        let before = s.config().clone();
        s.change(&Request::Restore { config: saved, timeouts: None }).unwrap();
        assert_eq!(s.config(), &before);
        assert!(s.change(&Request::Clear).unwrap());
        assert!(s.config().services.is_empty());
    }

    /// IPv6 through the API: services, real servers and local addresses are named in any spelling
    /// and kept canonical; family rules refuse with their line; the Setup carries the addresses.
    #[test]
    fn ipv6_and_nat64_through_the_api() {
        let text = state()
            .config()
            .to_toml()
            .replace("addr = \"198.18.0.1/24\"", "addr = \"198.18.0.1/24\"\naddr6 = \"2001:2::1/64\"");
        let text = text
            .replace("addr = \"198.18.1.1/24\"", "addr = \"198.18.1.1/24\"\naddr6 = \"2001:2:0:1::1/64\"");
        let mut s = ControlState::new(Config::from_toml(&text).unwrap());
        let v6 = ServiceConfig {
            vip: "[2001:2::100]:80".into(),
            laddrs: vec!["2001:2:0:1::100".into()],
            reals: vec![real("2001:2:0:1::11", 1)],
            ..s.config().services[0].clone()
        };
        assert!(s.change(&Request::AddService { service: v6 }).unwrap());
        let id6 = ServiceId { proto: Proto::Tcp, vip: "[2001:0002::100]:80".into() };
        assert!(s
            .change(&Request::AddReal { id: id6.clone(), real: real("[2001:2:0:1::12]:80", 2) })
            .unwrap());
        assert!(s.change(&Request::AddLaddr { id: id6.clone(), addr: "2001:2:0:1::101".into() }).unwrap());
        let refused = [
            (Request::AddReal { id: id6.clone(), real: real("[2001:2:0:1::12]:80", 1) }, "already exists"),
            (Request::AddReal { id: id6.clone(), real: real("198.18.1.14:80", 1) }, "is IPv4, not IPv6"),
            (Request::AddLaddr { id: id6.clone(), addr: "198.18.1.101".into() }, "is IPv4, not IPv6"),
            (Request::AddLaddr { id: id6.clone(), addr: "2001:2::100".into() }, "also a VIP"),
            (Request::AddLaddr { id: id(), addr: "2001:2:0:1::102".into() }, "is IPv6, not IPv4"),
            (
                Request::DeleteLaddr { id: id6.clone(), addr: "2001:2:0:1::199".into() },
                "no such local address",
            ),
        ];
        for (r, want) in refused {
            let before = s.config().clone();
            let e = s.change(&r).unwrap_err();
            assert!(e.msg.contains(want), "{r:?}: {}", e.msg);
            assert_eq!(s.config(), &before);
        }
        let svc = &s.config().services[1];
        assert_eq!(svc.vip, "[2001:2::100]:80");
        assert_eq!(svc.laddrs, ["2001:2:0:1::100", "2001:2:0:1::101"]);
        let reals: Vec<&str> = svc.reals.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(reals, ["[2001:2:0:1::11]:80", "[2001:2:0:1::12]:80"]);
        // NAT64: an IPv6 VIP with IPv4 FULLNAT real servers and an IPv4 local address.
        let nat64 = ServiceConfig { vip: "[2001:2::101]:80".into(), ..s.config().services[0].clone() };
        // Its IPv4 local address cannot be the IPv4 service's (each family's table has its ports).
        let e = s.change(&Request::AddService { service: nat64.clone() }).unwrap_err();
        assert!(e.msg.contains("198.18.1.100 is already a local address of IPv4 service"), "{}", e.msg);
        let nat64 = ServiceConfig { laddrs: vec!["198.18.1.101".into()], ..nat64 };
        assert!(s.change(&Request::AddService { service: nat64 }).unwrap());
        let setup = s.setup(&[[0; 6], [0; 6]]).unwrap();
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(setup.ports[0].addr6, Some("2001:2::1".parse().unwrap()));
        assert_eq!(setup.ports[1].prefix6_len, 64);
        let six = &setup.services[1];
        assert_eq!(
            (six.vip, six.laddrs.clone()),
            (ip("2001:2::100"), vec![ip("2001:2:0:1::100"), ip("2001:2:0:1::101")])
        );
        assert_eq!(six.reals[1].addr, ip("2001:2:0:1::12"));
        assert!(six.reals.iter().all(|r| r.id != 0));
        let n64 = &setup.services[2];
        assert_eq!(
            (n64.vip, n64.laddrs.clone(), n64.reals[0].addr),
            (ip("2001:2::101"), vec![ip("198.18.1.101")], ip("198.18.1.11"))
        );
        assert!(s.change(&Request::DeleteReal { id: id6.clone(), addr: "2001:2:0:1::12".into() }).unwrap());
        assert!(s.change(&Request::DeleteLaddr { id: id6, addr: "2001:2:0:1:0::101".into() }).unwrap());
        assert_eq!(s.config().services[1].laddrs, ["2001:2:0:1::100"]);
    }
}
