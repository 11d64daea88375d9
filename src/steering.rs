//! Choosing how replies reach their worker, and keeping the NIC's flow rules in step with the
//! local addresses (see docs/architecture.md, "Steering replies to their worker").
//!
//! Invariants:
//! - The software hand-off is always on when there are several workers: flow rules only make it
//!   rare. A rule that fails to install, or a LIP whose rules are not in yet, costs a hand-off,
//!   never a drop.
//! - Rules live exactly as long as their LIP is configured; every handle is dropped before the
//!   ports stop.
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use dpdk_sys::flow::{steering_supported, FlowHandle};
use dpdk_sys::Port;
use rvs_control::config::Steering;
use rvs_dataplane::steer::{plan_change, rules_for, FlowRuleSpec, SteerMode};
use rvs_dataplane::worker::Setup;

/// Every IPv4 local address of every service, in a stable order. IPv6 local addresses get no
/// flow rules yet: their replies take the software hand-off, which is always on (see above).
pub fn lips(setup: &Setup) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = setup
        .services
        .iter()
        .flat_map(|s| s.laddrs.iter())
        .filter_map(|a| match a {
            std::net::IpAddr::V4(a) => Some(*a),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Decides the steering at start-up, on configured ports that are not started yet. `sample` is any
/// address (a LIP, or a port's own) for the trial rule.
pub fn choose(mode: Steering, ports: &[Port], workers: u16, sample: Ipv4Addr) -> Result<SteerMode, String> {
    if workers <= 1 {
        return Ok(SteerMode::None);
    }
    if mode == Steering::Handoff {
        tracing::info!("steering: software hand-off (workers.steering = \"handoff\")");
        return Ok(SteerMode::Software);
    }
    // Queue 1's rule: a driver checking the queue index is asked the real question.
    let trial = rules_for(&[sample], workers)[1];
    for p in ports {
        if let Err(e) = steering_supported(p, &trial) {
            if mode == Steering::Flow {
                return Err(format!(
                    "workers.steering = \"flow\": port {} cannot steer replies with flow rules: {e}",
                    p.name()
                ));
            }
            tracing::info!(
                port = p.name(), answer = %e,
                "steering: software hand-off (the port cannot steer replies with flow rules)"
            );
            return Ok(SteerMode::Software);
        }
    }
    tracing::info!(ports = ports.len(), "steering: NIC flow rules (LIP port slices to their worker's queue)");
    Ok(SteerMode::FlowRules)
}

/// The flow rules installed for the current LIP set, on every port.
#[derive(Debug, Default)]
pub struct FlowRules {
    lips: Vec<Ipv4Addr>,
    handles: HashMap<(usize, FlowRuleSpec), FlowHandle>,
    /// Rules a port refused (their replies are handed off in software instead).
    pub failed: u64,
}

impl FlowRules {
    /// Installs the rules of LIPs new in `lips` and removes those of LIPs gone.
    pub fn update(&mut self, ports: &[Port], lips: Vec<Ipv4Addr>, workers: u16) {
        let (add, remove) = plan_change(&self.lips, &lips, workers);
        for spec in &remove {
            for (i, p) in ports.iter().enumerate() {
                if let Some(h) = self.handles.remove(&(i, *spec)) {
                    if let Err(e) = p.flow_destroy(h) {
                        tracing::warn!(port = p.name(), rule = %spec, error = %e, "flow rule removal failed");
                    }
                }
            }
        }
        for spec in &add {
            for (i, p) in ports.iter().enumerate() {
                match p.flow_create(spec) {
                    Ok(h) => {
                        self.handles.insert((i, *spec), h);
                    }
                    Err(e) => {
                        self.failed += 1;
                        tracing::warn!(
                            port = p.name(), rule = %spec, error = %e,
                            "flow rule refused: these replies are handed off in software"
                        );
                    }
                }
            }
        }
        if !add.is_empty() || !remove.is_empty() {
            tracing::info!(
                added = add.len(),
                removed = remove.len(),
                installed = self.handles.len(),
                "flow rules"
            );
        }
        self.lips = lips;
    }

    /// Removes every rule (before the ports stop).
    pub fn clear(&mut self, ports: &[Port]) {
        for ((i, spec), h) in self.handles.drain() {
            if let Err(e) = ports[i].flow_destroy(h) {
                tracing::warn!(port = ports[i].name(), rule = %spec, error = %e, "flow rule removal failed");
            }
        }
        self.lips.clear();
    }
}
