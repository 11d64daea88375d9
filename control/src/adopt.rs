//! VRRP address adoption, the control side: which VIPs and local addresses keepalived has put on
//! rvsd's kernel interfaces, read from the kernel and turned into changes to publish.
//!
//! The decision ([`Watcher::observe`]) is pure and unit-tested; [`read_kernel_addrs`] is the thin
//! iproute2 shell (`ip -j -4 addr show`, parsed with serde_json). The daemon's watcher thread
//! polls every `[vrrp] poll_ms` and publishes a change through the ordinary `Setup` path; the
//! dataplane then claims the adopted addresses in ARP and announces new ones
//! (`rvs_dataplane::adopt`).
//!
//! Invariants:
//! - The adopted set is a pure function of the latest successful read: (address, port) for every
//!   IPv4 address on a watched interface. Which of them are VIPs or local addresses is decided at
//!   publish time ([`crate::state::ControlState::setup`]), so a service added later whose VIP is
//!   already on the interface is adopted at once.
//! - A failed read changes nothing (the last published set stays): a transient `ip` failure must
//!   not make the master stop answering ARP. It is logged once per run of failures.
//! - An interface that does not exist has no addresses: rvsd's TAPs come and go with rvsd.
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::process::Command;

use serde::Deserialize;

/// IPv4 addresses per kernel interface name.
pub type KernelAddrs = HashMap<String, Vec<Ipv4Addr>>;

/// One interface in `ip -j -4 addr show`; interfaces without IPv4 addresses may come as `{}`.
#[derive(Debug, Deserialize)]
struct IpLink {
    #[serde(default)]
    ifname: Option<String>,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Debug, Deserialize)]
struct IpAddrInfo {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    local: Option<String>,
}

/// Parses `ip -j -4 addr show`'s output.
pub fn parse_ip_addr(json: &str) -> Result<KernelAddrs, String> {
    let links: Vec<IpLink> =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j -4 addr show` output: {e}"))?;
    let mut out = KernelAddrs::new();
    for l in links {
        let Some(name) = l.ifname else { continue };
        let addrs = l
            .addr_info
            .iter()
            .filter(|a| a.family.as_deref().is_none_or(|f| f == "inet"))
            .filter_map(|a| a.local.as_deref()?.parse().ok())
            .collect();
        out.insert(name, addrs);
    }
    Ok(out)
}

/// Reads every interface's IPv4 addresses in rvsd's namespace with iproute2.
pub fn read_kernel_addrs() -> Result<KernelAddrs, String> {
    const CMD: &str = "ip -j -4 addr show";
    let out = Command::new("ip")
        .args(["-j", "-4", "addr", "show"])
        .output()
        .map_err(|e| format!("`{CMD}` could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{CMD}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ip_addr(&String::from_utf8_lossy(&out.stdout))
}

/// (address, port index) pairs on the `watched` (port index, interface) list, sorted.
pub fn adopted(watched: &[(usize, String)], kernel: &KernelAddrs) -> Vec<(Ipv4Addr, usize)> {
    let mut set = BTreeSet::new();
    for (port, ifname) in watched {
        for a in kernel.get(ifname).into_iter().flatten() {
            set.insert((*a, *port));
        }
    }
    set.into_iter().collect()
}

/// What changed since the last published set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The whole new set, to publish.
    pub adopted: Vec<(Ipv4Addr, usize)>,
    pub added: Vec<(Ipv4Addr, usize)>,
    pub removed: Vec<(Ipv4Addr, usize)>,
}

/// The watcher's memory: the last set published, and whether reads are failing.
#[derive(Debug)]
pub struct Watcher {
    watched: Vec<(usize, String)>,
    last: Vec<(Ipv4Addr, usize)>,
    failing: bool,
}

impl Watcher {
    /// Watching `watched` (port index, interface); nothing adopted yet (the dataplane starts so).
    pub fn new(watched: Vec<(usize, String)>) -> Watcher {
        Watcher { watched, last: Vec::new(), failing: false }
    }

    pub fn watched(&self) -> &[(usize, String)] {
        &self.watched
    }

    /// A successful read: the change to publish, if any. Call [`Watcher::published`] once it is.
    pub fn observe(&mut self, kernel: &KernelAddrs) -> Option<Change> {
        self.failing = false;
        let now = adopted(&self.watched, kernel);
        if now == self.last {
            return None;
        }
        let added = now.iter().filter(|p| !self.last.contains(p)).copied().collect();
        let removed = self.last.iter().filter(|p| !now.contains(p)).copied().collect();
        Some(Change { adopted: now, added, removed })
    }

    /// The change was published: it is the new baseline. (Not published: the next read retries.)
    pub fn published(&mut self, c: &Change) {
        self.last = c.adopted.clone();
    }

    /// A failed read; true when it starts a run of failures (log it), false while it continues.
    pub fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.failing, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ip -j -4 addr show` from a gateway namespace (iproute2 6.1), trimmed; `rvs1` has no IPv4
    // address and comes as `{}` as iproute2 prints it.
    const IP_JSON: &str = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{},{"ifindex":7,"ifname":"rvs0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"mq","operstate":"UNKNOWN","group":"default","txqlen":1000,"addr_info":[{"family":"inet","local":"198.18.0.2","prefixlen":24,"broadcast":"198.18.0.255","scope":"global","label":"rvs0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet","local":"198.18.0.100","prefixlen":32,"scope":"global","label":"rvs0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]"#;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);

    fn watched() -> Vec<(usize, String)> {
        vec![(0, "rvs0".into()), (1, "rvs1".into())]
    }

    #[test]
    fn parses_iproute2_json() {
        let k = parse_ip_addr(IP_JSON).unwrap();
        assert_eq!(k["lo"], vec![Ipv4Addr::LOCALHOST]);
        assert_eq!(k["rvs0"], vec![Ipv4Addr::new(198, 18, 0, 2), VIP]);
        assert_eq!(k.len(), 2, "the empty object is an interface without IPv4 addresses");
        assert_eq!(parse_ip_addr("[]").unwrap().len(), 0);
        assert!(parse_ip_addr("Device \"x\" does not exist.").unwrap_err().contains("ip -j -4 addr show"));
    }

    #[test]
    fn adopted_pairs_come_from_watched_interfaces_only() {
        let mut k = parse_ip_addr(IP_JSON).unwrap();
        k.insert("other".into(), vec![LIP]);
        assert_eq!(adopted(&watched(), &k), vec![(Ipv4Addr::new(198, 18, 0, 2), 0), (VIP, 0)]);
        k.insert("rvs1".into(), vec![LIP]);
        assert_eq!(adopted(&watched(), &k).last(), Some(&(LIP, 1)));
    }

    #[test]
    fn changes_are_reported_once_and_failures_keep_the_last_set() {
        let mut w = Watcher::new(watched());
        let empty = KernelAddrs::new();
        assert_eq!(w.observe(&empty), None, "nothing on the interfaces: nothing to publish at start");
        let k: KernelAddrs = [("rvs0".to_owned(), vec![VIP]), ("rvs1".to_owned(), vec![LIP])].into();
        let c = w.observe(&k).expect("takeover");
        assert_eq!(c.added, vec![(VIP, 0), (LIP, 1)]);
        assert!(c.removed.is_empty());
        // Not published (say a worker was slow): reported again on the next read.
        assert_eq!(w.observe(&k), Some(c.clone()));
        w.published(&c);
        assert_eq!(w.observe(&k), None);
        // Reads fail: logged once, the set stays.
        assert!(w.failed());
        assert!(!w.failed());
        assert_eq!(w.observe(&k), None, "a failure changed nothing");
        assert!(w.failed(), "a new run of failures is logged again");
        // keepalived removes the addresses (the interface is gone, or this gateway yielded).
        let c = w.observe(&empty).expect("yield");
        assert_eq!(c.removed, vec![(VIP, 0), (LIP, 1)]);
        assert!(c.adopted.is_empty() && c.added.is_empty());
    }
}
