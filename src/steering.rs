//! Choosing how replies reach their worker, and keeping the NIC's flow rules in step with the
//! local addresses (see docs/architecture.md, "Steering replies to their worker").
//!
//! Invariants:
//! - The software hand-off is always on when there are several workers: flow rules only make it
//!   rare. A rule that fails to install, or a LIP whose rules are not in yet, costs a hand-off,
//!   never a drop.
//! - IPv4 and IPv6 local addresses get the same rules (`rte_flow` IPV4 or IPV6 item). The start-up
//!   trial asks every port about both families; a port set that takes IPv4 rules but refuses IPv6
//!   ones steers IPv4 LIPs with rules and leaves IPv6 LIPs to the hand-off (NAT64's LIPs are IPv4).
//! - Rules live exactly as long as their LIP is configured; every handle is dropped before the
//!   ports stop.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

use dpdk_sys::flow::{steering_supported, FlowHandle, RuleAddr};
use dpdk_sys::Port;
use rvs_control::config::{Config, Steering};
use rvs_dataplane::steer::{plan_change, rules_for, FlowRuleSpec, SteerMode};
use rvs_dataplane::worker::Setup;

/// The local addresses that get flow rules, per family, each sorted without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lips {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Lips {
    pub fn from_addrs(addrs: impl IntoIterator<Item = IpAddr>) -> Lips {
        let mut l = Lips::default();
        for a in addrs {
            match a {
                IpAddr::V4(a) => l.v4.push(a),
                IpAddr::V6(a) => l.v6.push(a),
            }
        }
        l.v4.sort();
        l.v4.dedup();
        l.v6.sort();
        l.v6.dedup();
        l
    }
}

/// Every local address of every service (NAT64's are IPv4), in a stable order.
pub fn lips(setup: &Setup) -> Lips {
    Lips::from_addrs(setup.services.iter().flat_map(|s| s.laddrs.iter().copied()))
}

/// Addresses for the start-up trial rules, from the configuration: a LIP of each family, else a
/// port's own address, else a benchmark-range default. `has_v6_lips`: some service has an IPv6 LIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples {
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub has_v6_lips: bool,
}

impl Samples {
    pub fn from_config(cfg: &Config) -> Samples {
        let laddrs = || cfg.services.iter().flat_map(|s| s.laddrs.iter().map(String::as_str));
        let host = |a: &str| a.split('/').next().unwrap_or(a).to_owned();
        let v4 = laddrs()
            .chain(cfg.ports.iter().map(|p| p.addr.as_str()))
            .find_map(|a| host(a).parse::<Ipv4Addr>().ok())
            .unwrap_or(Ipv4Addr::new(198, 18, 0, 1));
        let lip6 = laddrs().find_map(|a| host(a).parse::<Ipv6Addr>().ok());
        let v6 = lip6
            .or_else(|| {
                cfg.ports.iter().filter_map(|p| p.addr6.as_deref()).find_map(|a| host(a).parse().ok())
            })
            .unwrap_or(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1));
        Samples { v4, v6, has_v6_lips: lip6.is_some() }
    }
}

/// What start-up decided: the mode, and whether IPv6 LIPs get rules too (only with `FlowRules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub mode: SteerMode,
    pub rules_v6: bool,
}

/// The trial rule for `sample`: queue 1's, so a driver checking the queue index is asked the real
/// question. The first port refusing it, with the driver's answer.
fn trial<A: RuleAddr>(ports: &[Port], workers: u16, sample: A) -> Result<(), (String, dpdk_sys::Error)> {
    let trial = rules_for(&[sample], workers)[1];
    for p in ports {
        steering_supported(p, &trial).map_err(|e| (p.name().to_owned(), e))?;
    }
    Ok(())
}

/// Decides the steering at start-up, on configured ports that are not started yet.
pub fn choose(mode: Steering, ports: &[Port], workers: u16, samples: Samples) -> Result<Choice, String> {
    let software = Choice { mode: SteerMode::Software, rules_v6: false };
    if workers <= 1 {
        return Ok(Choice { mode: SteerMode::None, rules_v6: false });
    }
    if mode == Steering::Handoff {
        tracing::info!("steering: software hand-off (workers.steering = \"handoff\")");
        return Ok(software);
    }
    if let Err((port, e)) = trial(ports, workers, samples.v4) {
        if mode == Steering::Flow {
            return Err(format!(
                "workers.steering = \"flow\": port {port} cannot steer replies with flow rules: {e}"
            ));
        }
        tracing::info!(
            port, answer = %e,
            "steering: software hand-off (the port cannot steer replies with flow rules)"
        );
        return Ok(software);
    }
    let rules_v6 = match trial(ports, workers, samples.v6) {
        Ok(()) => true,
        // `flow` promises rules for the configured LIPs; an IPv6 LIP added later just takes the hand-off.
        Err((port, e)) if mode == Steering::Flow && samples.has_v6_lips => {
            return Err(format!(
                "workers.steering = \"flow\": port {port} cannot steer replies to IPv6 local addresses with flow rules: {e}"
            ));
        }
        Err((port, e)) => {
            tracing::info!(
                port, answer = %e,
                "steering: IPv6 local addresses take the software hand-off (the port refuses IPv6 flow rules)"
            );
            false
        }
    };
    tracing::info!(
        ports = ports.len(),
        ipv6 = rules_v6,
        "steering: NIC flow rules (LIP port slices to their worker's queue)"
    );
    Ok(Choice { mode: SteerMode::FlowRules, rules_v6 })
}

/// The rules to add and remove when the LIP set goes from `old` to `new`, per family. IPv6 LIPs
/// get none unless `rules_v6`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    add4: Vec<FlowRuleSpec<Ipv4Addr>>,
    remove4: Vec<FlowRuleSpec<Ipv4Addr>>,
    add6: Vec<FlowRuleSpec<Ipv6Addr>>,
    remove6: Vec<FlowRuleSpec<Ipv6Addr>>,
}

fn plan(old: &Lips, new: &Lips, workers: u16, rules_v6: bool) -> Plan {
    let (add4, remove4) = plan_change(&old.v4, &new.v4, workers);
    let (add6, remove6) = if rules_v6 { plan_change(&old.v6, &new.v6, workers) } else { Default::default() };
    Plan { add4, remove4, add6, remove6 }
}

/// Installed rules of one family, by (port index, rule).
type Handles<A> = HashMap<(usize, FlowRuleSpec<A>), FlowHandle<A>>;

/// The flow rules installed for the current LIP set, on every port.
#[derive(Debug, Default)]
pub struct FlowRules {
    lips: Lips,
    rules_v6: bool,
    handles4: Handles<Ipv4Addr>,
    handles6: Handles<Ipv6Addr>,
    /// Rules a port refused (their replies are handed off in software instead).
    pub failed: u64,
}

/// Removes `remove`'s rules and installs `add`'s on every port; a refused rule is counted in
/// `failed` and its replies take the hand-off.
fn apply<A: RuleAddr>(
    ports: &[Port],
    handles: &mut Handles<A>,
    add: &[FlowRuleSpec<A>],
    remove: &[FlowRuleSpec<A>],
    failed: &mut u64,
) {
    for spec in remove {
        for (i, p) in ports.iter().enumerate() {
            if let Some(h) = handles.remove(&(i, *spec)) {
                if let Err(e) = p.flow_destroy(h) {
                    tracing::warn!(port = p.name(), rule = %spec, error = %e, "flow rule removal failed");
                }
            }
        }
    }
    for spec in add {
        for (i, p) in ports.iter().enumerate() {
            match p.flow_create(spec) {
                Ok(h) => {
                    handles.insert((i, *spec), h);
                }
                Err(e) => {
                    *failed += 1;
                    tracing::warn!(
                        port = p.name(), rule = %spec, error = %e,
                        "flow rule refused: these replies are handed off in software"
                    );
                }
            }
        }
    }
}

fn destroy_all<A: RuleAddr>(ports: &[Port], handles: &mut Handles<A>) {
    for ((i, spec), h) in handles.drain() {
        if let Err(e) = ports[i].flow_destroy(h) {
            tracing::warn!(port = ports[i].name(), rule = %spec, error = %e, "flow rule removal failed");
        }
    }
}

impl FlowRules {
    /// `rules_v6`: whether IPv6 LIPs get rules ([`Choice::rules_v6`]).
    pub fn new(rules_v6: bool) -> FlowRules {
        FlowRules { rules_v6, ..FlowRules::default() }
    }

    /// Installs the rules of LIPs new in `lips` and removes those of LIPs gone.
    pub fn update(&mut self, ports: &[Port], lips: Lips, workers: u16) {
        let p = plan(&self.lips, &lips, workers, self.rules_v6);
        apply(ports, &mut self.handles4, &p.add4, &p.remove4, &mut self.failed);
        apply(ports, &mut self.handles6, &p.add6, &p.remove6, &mut self.failed);
        let (added, removed) = (p.add4.len() + p.add6.len(), p.remove4.len() + p.remove6.len());
        if added > 0 || removed > 0 {
            tracing::info!(
                added,
                removed,
                installed_ipv4 = self.handles4.len(),
                installed_ipv6 = self.handles6.len(),
                "flow rules"
            );
        }
        self.lips = lips;
    }

    /// Removes every rule (before the ports stop).
    pub fn clear(&mut self, ports: &[Port]) {
        destroy_all(ports, &mut self.handles4);
        destroy_all(ports, &mut self.handles6);
        self.lips = Lips::default();
    }
}

#[cfg(test)]
mod tests {
    use rvs_dataplane::flow::Proto;

    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn lips_split_by_family_sorted_once() {
        let l = Lips::from_addrs(
            ["2001:2::20", "198.18.1.2", "2001:2::10", "198.18.1.1", "2001:2::10", "198.18.1.2"]
                .map(|a| a.parse::<IpAddr>().unwrap()),
        );
        assert_eq!(l.v4, [Ipv4Addr::new(198, 18, 1, 1), Ipv4Addr::new(198, 18, 1, 2)]);
        assert_eq!(l.v6, [v6("2001:2::10"), v6("2001:2::20")]);
    }

    #[test]
    fn ipv6_lips_are_planned_like_ipv4_ones() {
        let new = Lips { v4: vec![Ipv4Addr::new(198, 18, 1, 1)], v6: vec![v6("2001:2::10")] };
        let p = plan(&Lips::default(), &new, 4, true);
        assert_eq!(p.add4, rules_for(&new.v4, 4));
        assert_eq!(p.add6, rules_for(&new.v6, 4));
        assert_eq!(p.add6.len(), 8, "2 protocols x 4 residues");
        assert!(p.remove4.is_empty() && p.remove6.is_empty());
        // Every IPv6 (proto, port) matches one rule, on its owner's queue.
        for proto in [Proto::Tcp, Proto::Udp] {
            for port in [0u16, 1, 2, 3, 1024, 65535] {
                let m: Vec<_> = p.add6.iter().filter(|r| r.matches(new.v6[0], proto, port)).collect();
                assert_eq!(m.len(), 1, "{proto:?} {port}");
                assert_eq!(m[0].queue, rvs_dataplane::conn::lport::owner(port, 4));
            }
        }
    }

    #[test]
    fn ipv6_lips_come_and_go_without_touching_others() {
        let old =
            Lips { v4: vec![Ipv4Addr::new(198, 18, 1, 1)], v6: vec![v6("2001:2::10"), v6("2001:2::11")] };
        let new = Lips { v4: old.v4.clone(), v6: vec![v6("2001:2::11"), v6("2001:2::12")] };
        let p = plan(&old, &new, 2, true);
        assert!(p.add4.is_empty() && p.remove4.is_empty(), "the IPv4 LIP keeps its rules");
        assert_eq!(p.add6, rules_for(&[v6("2001:2::12")], 2));
        assert_eq!(p.remove6, rules_for(&[v6("2001:2::10")], 2));
    }

    #[test]
    fn refused_ipv6_rules_leave_ipv6_lips_to_the_handoff() {
        let new = Lips { v4: vec![Ipv4Addr::new(198, 18, 1, 1)], v6: vec![v6("2001:2::10")] };
        let p = plan(&Lips::default(), &new, 2, false);
        assert_eq!(p.add4, rules_for(&new.v4, 2));
        assert!(p.add6.is_empty() && p.remove6.is_empty());
    }

    #[test]
    fn one_worker_plans_nothing() {
        let new = Lips { v4: vec![Ipv4Addr::new(198, 18, 1, 1)], v6: vec![v6("2001:2::10")] };
        assert_eq!(plan(&Lips::default(), &new, 1, true), Plan::default());
    }

    const PORTS: &str = r#"
[[ports]]
name = "client"
device = "net_null0"
addr = "198.18.0.1/24"
addr6 = "2001:2::7/64"
"#;

    #[test]
    fn trial_samples_prefer_lips_then_port_addresses() {
        let cfg = Config::from_toml(PORTS).unwrap();
        let s = Samples::from_config(&cfg);
        assert_eq!((s.v4, s.v6, s.has_v6_lips), (Ipv4Addr::new(198, 18, 0, 1), v6("2001:2::7"), false));

        let with_lips = format!(
            "{PORTS}{}",
            r#"
[[services]]
proto = "tcp"
vip = "[2001:2::100]:80"
laddrs = ["2001:2:0:1::100", "198.18.1.100"]
reals = [{ addr = "[2001:2:0:1::11]:80" }]
"#
        );
        let s = Samples::from_config(&Config::from_toml(&with_lips).unwrap());
        assert_eq!(
            (s.v4, s.v6, s.has_v6_lips),
            (Ipv4Addr::new(198, 18, 1, 100), v6("2001:2:0:1::100"), true)
        );

        let bare = Config::from_toml(&PORTS.replace("addr6 = \"2001:2::7/64\"\n", "")).unwrap();
        assert_eq!(Samples::from_config(&bare).v6, v6("2001:2::1"), "benchmark-range default");
    }
}
