//! Steering replies to their worker: which NIC flow rules make a real server's reply to `LIP:lport`
//! arrive on the RX queue of the worker that owns `lport` ([`crate::conn::lport`]).
//!
//! This module only plans rules; installing them (rte_flow) is the daemon's and `dpdk-sys`'s job.
//!
//! Invariants:
//! - For one LIP and `workers > 1`, the rules of [`rules_for`] partition the port space: every
//!   `(proto, dst port)` in TCP/UDP × `0..=65535` matches exactly one rule, and that rule's queue is
//!   [`owner`]`(port, workers)`. Worker `i` reads RX queue `i` of every port, so queue = worker.
//! - A rule matches `dst_port & port_mask == port_value` with
//!   `port_mask = workers.next_power_of_two() - 1`: one rule per residue, so `port_mask + 1` rules
//!   per protocol per LIP (64 per protocol for 33 to 64 workers). Residues are not merged, so when
//!   `workers` is not a power of two some workers get two rules, exactly as they own two residues.
//! - One worker needs no rules: every reply is already on queue 0.
//! - Plans are per address family (`FlowRuleSpec<A>`, IPv4 by default): IPv6 local addresses get
//!   the same residue rules over an IPv6 destination (rte_flow's IPV6 item); NAT64's local
//!   addresses are IPv4.
//! - The plans are sets: a LIP listed twice yields its rules once, so the NIC is never asked to
//!   install a duplicate.
use std::net::Ipv4Addr;

use crate::conn::lport::{owner, PortSlice};
use crate::flow::{Addr, Proto};

/// One NIC rule: ingress IPv4 packets to `lip` with protocol `proto` and
/// `dst_port & port_mask == port_value` go to RX queue `queue`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowRuleSpec<A: Addr = Ipv4Addr> {
    pub lip: A,
    pub proto: Proto,
    pub port_mask: u16,
    pub port_value: u16,
    pub queue: u16,
}

impl<A: Addr> FlowRuleSpec<A> {
    /// Whether a packet with destination `(dst, proto, dst_port)` matches the rule.
    pub fn matches(&self, dst: A, proto: Proto, dst_port: u16) -> bool {
        dst == self.lip && proto == self.proto && dst_port & self.port_mask == self.port_value
    }
}

impl<A: Addr + std::fmt::Display> std::fmt::Display for FlowRuleSpec<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        write!(
            f,
            "{proto} dst {} port & {:#06x} == {:#06x} -> queue {}",
            self.lip, self.port_mask, self.port_value, self.queue
        )
    }
}

/// How replies reach their owning worker; chosen once at start-up from what the ports answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SteerMode {
    /// A single worker: nothing to steer.
    None,
    /// NIC flow rules from this module on every port.
    FlowRules,
    /// The ports cannot steer; a worker hands a reply it does not own to its owner in software.
    Software,
}

impl SteerMode {
    /// Stable lower-case name for logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            SteerMode::None => "none",
            SteerMode::FlowRules => "flow_rules",
            SteerMode::Software => "software",
        }
    }
}

/// Protocols a LIP receives replies on; both get rules.
pub const STEERED_PROTOS: [Proto; 2] = [Proto::Tcp, Proto::Udp];

/// How many rules one LIP needs with `workers` workers (0 for one worker).
pub fn rules_per_lip(workers: u16) -> usize {
    if workers <= 1 {
        0
    } else {
        STEERED_PROTOS.len() * (PortSlice::new(workers, 0).mask() as usize + 1)
    }
}

/// The rules for one LIP, TCP then UDP, each by increasing residue.
fn push_lip_rules<A: Addr>(out: &mut Vec<FlowRuleSpec<A>>, lip: A, workers: u16) {
    if workers <= 1 {
        return;
    }
    let mask = PortSlice::new(workers, 0).mask();
    for proto in STEERED_PROTOS {
        for residue in 0..=mask {
            out.push(FlowRuleSpec {
                lip,
                proto,
                port_mask: mask,
                port_value: residue,
                queue: owner(residue, workers),
            });
        }
    }
}

/// `lips` without repeats, first occurrence kept (LIP lists are short: quadratic is fine).
fn unique<A: Addr>(lips: &[A]) -> Vec<A> {
    let mut seen = Vec::with_capacity(lips.len());
    for &l in lips {
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    seen
}

/// Every rule for `lips` with `workers` workers (empty for one worker). Panics if `workers == 0`.
pub fn rules_for<A: Addr>(lips: &[A], workers: u16) -> Vec<FlowRuleSpec<A>> {
    assert!(workers > 0, "steering rules for 0 workers");
    let lips = unique(lips);
    let mut out = Vec::with_capacity(lips.len() * rules_per_lip(workers));
    for lip in lips {
        push_lip_rules(&mut out, lip, workers);
    }
    out
}

/// What changes on the NIC when the LIP set goes from `old` to `new`: `(to_add, to_remove)`.
/// Rules of LIPs present in both are left alone (they do not depend on anything else).
pub fn plan_change<A: Addr>(
    old: &[A],
    new: &[A],
    workers: u16,
) -> (Vec<FlowRuleSpec<A>>, Vec<FlowRuleSpec<A>>) {
    let added: Vec<A> = unique(new).into_iter().filter(|l| !old.contains(l)).collect();
    let removed: Vec<A> = unique(old).into_iter().filter(|l| !new.contains(l)).collect();
    (rules_for(&added, workers), rules_for(&removed, workers))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    /// IPv6 local addresses are planned the same way: every (proto, port) to one rule, its owner.
    #[test]
    fn ipv6_lips_partition_the_ports_too() {
        let lip6: std::net::Ipv6Addr = "2001:2:0:1::100".parse().unwrap();
        for workers in [2u16, 3, 4, 7] {
            let rules = rules_for(&[lip6, lip6], workers);
            assert_eq!(rules.len(), rules_per_lip(workers), "a LIP listed twice is planned once");
            for proto in STEERED_PROTOS {
                for port in (0..=u16::MAX).step_by(97) {
                    let hits: Vec<_> = rules.iter().filter(|r| r.matches(lip6, proto, port)).collect();
                    assert_eq!(hits.len(), 1);
                    assert_eq!(hits[0].queue, owner(port, workers));
                }
            }
        }
        let other: std::net::Ipv6Addr = "2001:2:0:1::101".parse().unwrap();
        let (add, remove) = plan_change(&[lip6], &[lip6, other], 2);
        assert!(remove.is_empty() && add.iter().all(|r| r.lip == other) && add.len() == rules_per_lip(2));
    }

    /// Checks the partition invariant for one LIP over `ports`: each (proto, port) matched by
    /// exactly one rule, whose queue is the port's owner.
    fn check_partition(workers: u16, ports: impl Iterator<Item = u16> + Clone) {
        let rules = rules_for(&[LIP], workers);
        assert_eq!(rules.len(), rules_per_lip(workers), "{workers} workers");
        for proto in STEERED_PROTOS {
            for port in ports.clone() {
                let mut hits = rules.iter().filter(|r| r.matches(LIP, proto, port));
                let r =
                    hits.next().unwrap_or_else(|| panic!("{workers} workers: {proto:?} {port} unmatched"));
                assert!(hits.next().is_none(), "{workers} workers: {proto:?} {port} matched twice");
                assert_eq!(r.queue, owner(port, workers), "{workers} workers: {proto:?} {port}");
                assert!(r.queue < workers);
            }
        }
    }

    #[test]
    fn every_port_exactly_once_exhaustive() {
        for workers in [2, 3, 4, 5, 6, 7, 8, 12, 16, 33, 64] {
            check_partition(workers, 0..=u16::MAX);
        }
    }

    #[test]
    fn every_port_exactly_once_sampled() {
        for workers in 2..=64u16 {
            // Every residue class, both ends of the range and a stride that walks all low bits.
            let ports = (0..=255u16)
                .chain([1024, 1025, 32767, 32768, 65534, 65535])
                .chain((0..=u16::MAX).step_by(997));
            check_partition(workers, ports);
        }
    }

    #[test]
    fn one_worker_needs_no_rules() {
        assert!(rules_for(&[LIP, Ipv4Addr::new(198, 18, 0, 11)], 1).is_empty());
        assert_eq!(rules_per_lip(1), 0);
        let (add, remove) = plan_change(&[], &[LIP], 1);
        assert!(add.is_empty() && remove.is_empty());
    }

    #[test]
    fn each_worker_gets_its_residues() {
        for workers in 1..=64u16 {
            let rules = rules_for(&[LIP], workers);
            for w in 0..workers {
                let slice = PortSlice::new(workers, w);
                let mut mine: Vec<u16> = rules
                    .iter()
                    .filter(|r| r.queue == w && r.proto == Proto::Tcp)
                    .map(|r| r.port_value)
                    .collect();
                mine.sort_unstable();
                let want: Vec<u16> = if workers == 1 { vec![] } else { slice.residues().collect() };
                assert_eq!(mine, want, "worker {w} of {workers}");
                assert!(rules.iter().all(|r| r.port_mask == slice.mask()));
            }
        }
    }

    #[test]
    fn rule_counts() {
        assert_eq!(rules_per_lip(2), 4);
        assert_eq!(rules_per_lip(3), 8);
        assert_eq!(rules_per_lip(4), 8);
        assert_eq!(rules_per_lip(64), 128);
        assert_eq!(rules_per_lip(65), 256);
        let lips = [LIP, Ipv4Addr::new(198, 18, 0, 11), LIP];
        assert_eq!(rules_for(&lips, 4).len(), 2 * 8, "a repeated LIP is planned once");
    }

    #[test]
    fn plan_change_adds_and_removes_only_the_difference() {
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let c = Ipv4Addr::new(198, 18, 0, 3);
        let (add, remove) = plan_change(&[a, b], &[b, c, c], 4);
        assert_eq!(add, rules_for(&[c], 4));
        assert_eq!(remove, rules_for(&[a], 4));
        let (add, remove) = plan_change(&[a, b], &[b, a], 4);
        assert!(add.is_empty() && remove.is_empty());
        let (add, remove) = plan_change(&[], &[a], 2);
        assert_eq!((add.len(), remove.len()), (4, 0));
        let (add, remove) = plan_change(&[a], &[], 2);
        assert_eq!((add.len(), remove.len()), (0, 4));
    }

    #[test]
    fn display_names_the_rule() {
        let r = rules_for(&[LIP], 4)[5];
        assert_eq!(r.to_string(), "udp dst 198.18.0.10 port & 0x0003 == 0x0001 -> queue 1");
        assert_eq!(SteerMode::FlowRules.as_str(), "flow_rules");
    }
}
