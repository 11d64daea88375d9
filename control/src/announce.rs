//! VIP announcement for BGP/ECMP scale-out (`[announce]`, docs/ha.md "BGP and ECMP").
//!
//! rvsd keeps a `blackhole VIP/32` (IPv6: `/128`) route in kernel routing table `[announce] table`, with protocol
//! number `[announce] proto`, for every VIP it is ready to serve; the routing daemon in rvsd's
//! namespace learns that table (BIRD `protocol kernel { kernel table N; learn; }`, FRR
//! `ip import-table N`) and announces the routes to its peers. The route's type does not matter
//! to the daemon, and a blackhole in a table no `ip rule` looks up changes nothing for the
//! namespace's own traffic.
//!
//! Invariants:
//! - What is announced is a pure function of the published dataplane [`Setup`] ([`announced`]):
//!   a VIP is announced while at least one service on it has a real server with weight > 0
//!   there. Health checks and quorum are already folded into that setup (a failed server is
//!   removed or at weight 0; a sorry server serving alone has weight 1), so the VIP follows
//!   them. Once [`Announcer::withdraw_all`] ran (SIGTERM), nothing is announced again.
//! - Only routes of our protocol number in our table are ever touched: at start every one of
//!   them is a stale one of an earlier run and is deleted ([`Announcer::start`]); at exit all are
//!   deleted.
//! - The kernel side ([`IpRoute`]) is a thin shell running iproute2 from the control plane, never
//!   on the fast path; a failed command is logged with the command, and the VIP is retried at the
//!   next published change (it is not recorded as done).
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use rvs_dataplane::setup::Setup;

use crate::config::AnnounceConfig;

/// The VIPs to announce for a published setup: those of services with a usable real server.
pub fn announced(setup: &Setup) -> BTreeSet<IpAddr> {
    setup.services.iter().filter(|s| s.reals.iter().any(|r| r.weight > 0)).map(|s| s.vip).collect()
}

/// One change to the kernel table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Announce(IpAddr),
    Withdraw(IpAddr),
}

/// The changes that take the table from `current` to `wanted`: withdrawals first (a VIP that
/// goes should stop drawing traffic as early as possible), each in address order.
pub fn plan(current: &BTreeSet<IpAddr>, wanted: &BTreeSet<IpAddr>) -> Vec<Change> {
    current
        .difference(wanted)
        .map(|v| Change::Withdraw(*v))
        .chain(wanted.difference(current).map(|v| Change::Announce(*v)))
        .collect()
}

/// The kernel routing table the routes live in; [`IpRoute`] in rvsd, a fake in tests.
pub trait RouteTable {
    /// What the table describes itself as in logs (`100 (proto 201)`).
    fn describe(&self) -> String;
    /// The host-route destinations of our routes in the table.
    fn list(&mut self) -> Result<Vec<IpAddr>, String>;
    fn add(&mut self, vip: IpAddr) -> Result<(), String>;
    fn del(&mut self, vip: IpAddr) -> Result<(), String>;
}

/// iproute2 on the namespace rvsd runs in: `ip route replace blackhole VIP/32 table N proto P`.
#[derive(Debug, Clone)]
pub struct IpRoute {
    pub table: u32,
    pub proto: u8,
}

impl IpRoute {
    fn run(&self, args: &[String]) -> Result<String, String> {
        let cmd = format!("ip {}", args.join(" "));
        let out = Command::new("ip").args(args).output().map_err(|e| format!("`{cmd}`: cannot run: {e}"))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(format!("`{cmd}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }

    fn route_args(&self, verb: &str, vip: IpAddr) -> Vec<String> {
        let family = if vip.is_ipv4() { "-4" } else { "-6" };
        let mut a: Vec<String> = vec![family.into(), "route".into(), verb.into()];
        if verb == "replace" {
            a.push("blackhole".into());
        }
        a.extend([format!("{vip}/{}", host_len(vip)), "table".into(), self.table.to_string()]);
        a.extend(["proto".into(), self.proto.to_string()]);
        a
    }
}

/// A host route's prefix length: /32 for IPv4, /128 for IPv6.
fn host_len(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// The destinations of `ip -j route show` output that are host routes (`dst` without a prefix
/// length is a /32 or /128).
pub fn parse_routes(json: &str) -> Result<Vec<IpAddr>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j route show` output: {e}"))?;
    let arr = v.as_array().ok_or("`ip -j route show` output is not a JSON array")?;
    Ok(arr
        .iter()
        .filter_map(|r| r.get("dst")?.as_str())
        .filter_map(|d| d.strip_suffix("/32").or_else(|| d.strip_suffix("/128")).unwrap_or(d).parse().ok())
        .collect())
}

impl RouteTable for IpRoute {
    fn describe(&self) -> String {
        format!("{} (proto {})", self.table, self.proto)
    }

    fn list(&mut self) -> Result<Vec<IpAddr>, String> {
        let mut all = Vec::new();
        for family in ["-4", "-6"] {
            let args: Vec<String> = ["-j", family, "route", "show", "table"]
                .iter()
                .map(|s| s.to_string())
                .chain([self.table.to_string(), "proto".into(), self.proto.to_string()])
                .collect();
            match self.run(&args) {
                Ok(out) => all.extend(parse_routes(&out)?),
                // A table nobody added a route to yet does not exist: nothing of ours is in it.
                Err(e) if e.contains("does not exist") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    }

    fn add(&mut self, vip: IpAddr) -> Result<(), String> {
        self.run(&self.route_args("replace", vip)).map(drop)
    }

    fn del(&mut self, vip: IpAddr) -> Result<(), String> {
        match self.run(&self.route_args("del", vip)) {
            // Already gone (someone deleted it by hand): the goal is reached.
            Err(e) if e.contains("No such process") => Ok(()),
            r => r.map(drop),
        }
    }
}

/// Keeps the kernel table equal to what the published setups say.
#[derive(Debug)]
pub struct Announcer<K: RouteTable> {
    kernel: K,
    /// VIPs whose route is in the table.
    current: BTreeSet<IpAddr>,
    /// Set by [`Announcer::withdraw_all`]: nothing is announced any more.
    withdrawn: bool,
}

impl Announcer<IpRoute> {
    /// The announcer `[announce]` asks for, `None` when it is off; stale routes are cleared.
    pub fn from_config(cfg: &AnnounceConfig) -> Result<Option<Announcer<IpRoute>>, String> {
        let Some(table) = cfg.table else { return Ok(None) };
        Announcer::start(IpRoute { table, proto: cfg.proto }).map(Some)
    }
}

impl<K: RouteTable> Announcer<K> {
    /// Takes the table over: every route of ours in it is left from an earlier run (a `kill -9`)
    /// and is deleted, so nothing is announced before the first setup says so.
    pub fn start(mut kernel: K) -> Result<Announcer<K>, String> {
        let stale = kernel.list()?;
        for vip in &stale {
            kernel
                .del(*vip)
                .map_err(|e| format!("cannot delete stale route {vip}/{}: {e}", host_len(*vip)))?;
        }
        if !stale.is_empty() {
            tracing::info!(table = %kernel.describe(), count = stale.len(), "announce: deleted stale VIP routes of an earlier run");
        }
        Ok(Announcer { kernel, current: BTreeSet::new(), withdrawn: false })
    }

    /// The VIPs announced now.
    pub fn current(&self) -> &BTreeSet<IpAddr> {
        &self.current
    }

    /// Brings the table in line with a newly published setup; returns the changes made.
    pub fn update(&mut self, setup: &Setup) -> Vec<Change> {
        let wanted = if self.withdrawn { BTreeSet::new() } else { announced(setup) };
        self.apply(&wanted)
    }

    /// Withdraws every VIP for good (SIGTERM); later setups announce nothing.
    pub fn withdraw_all(&mut self) -> Vec<Change> {
        self.withdrawn = true;
        self.apply(&BTreeSet::new())
    }

    fn apply(&mut self, wanted: &BTreeSet<IpAddr>) -> Vec<Change> {
        let mut done = Vec::new();
        for c in plan(&self.current, wanted) {
            let table = self.kernel.describe();
            match c {
                Change::Announce(vip) => match self.kernel.add(vip) {
                    Ok(()) => {
                        self.current.insert(vip);
                        tracing::info!(%vip, %table, "announce: VIP announced (a real server is usable)");
                        done.push(c);
                    }
                    Err(e) => tracing::warn!(%vip, error = %e, "announce: cannot announce"),
                },
                Change::Withdraw(vip) => match self.kernel.del(vip) {
                    Ok(()) => {
                        self.current.remove(&vip);
                        let why = if self.withdrawn { "shutting down" } else { "no usable real server" };
                        tracing::info!(%vip, %table, "announce: VIP withdrawn ({why})");
                        done.push(c);
                    }
                    Err(e) => tracing::warn!(%vip, error = %e, "announce: cannot withdraw"),
                },
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::state::ControlState;
    use std::collections::BTreeMap;

    const CFG: &str = r#"
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
[[services]]
proto = "udp"
vip = "198.18.0.100:53"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.13:53", weight = 0 }]
[[services]]
proto = "tcp"
vip = "198.18.0.101:443"
laddrs = ["198.18.1.100"]
inhibit_on_failure = true
reals = [{ addr = "198.18.1.14:443" }]
"#;

    fn state(extra: &str) -> ControlState {
        let cfg = Config::from_toml(&format!("{CFG}{extra}")).unwrap();
        cfg.validate().unwrap();
        ControlState::new(cfg)
    }

    fn setup(st: &ControlState) -> Setup {
        st.setup(&[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(v: &[&str]) -> BTreeSet<IpAddr> {
        v.iter().map(|s| ip(s)).collect()
    }

    /// Marks a real server of a service down or up as a health transition does.
    fn health(st: &mut ControlState, proto: crate::Proto, vip: &str, rs: &str, up: bool) {
        let sid = st.service_id(proto, vip).unwrap();
        let rid = st.real_id(sid, rs).unwrap();
        assert!(st.set_health(sid, rid, up));
    }

    #[test]
    fn a_vip_is_announced_while_one_of_its_services_has_a_usable_real() {
        let mut st = state("");
        assert_eq!(announced(&setup(&st)), set(&["198.18.0.100", "198.18.0.101"]));
        // One of two reals down: still announced.
        health(&mut st, crate::Proto::Tcp, "198.18.0.100:80", "198.18.1.11:80", false);
        assert_eq!(announced(&setup(&st)), set(&["198.18.0.100", "198.18.0.101"]));
        // The last one down (removed from the setup): withdrawn, although the UDP service on the
        // same VIP is still configured (its only real has weight 0).
        health(&mut st, crate::Proto::Tcp, "198.18.0.100:80", "198.18.1.12:80", false);
        assert_eq!(announced(&setup(&st)), set(&["198.18.0.101"]));
        // inhibit_on_failure keeps the failed real at weight 0: not usable either.
        health(&mut st, crate::Proto::Tcp, "198.18.0.101:443", "198.18.1.14:443", false);
        assert!(announced(&setup(&st)).is_empty());
        // One comes back: announced again.
        health(&mut st, crate::Proto::Tcp, "198.18.0.100:80", "198.18.1.12:80", true);
        assert_eq!(announced(&setup(&st)), set(&["198.18.0.100"]));
    }

    #[test]
    fn a_sorry_server_serving_alone_keeps_the_vip() {
        let mut st = state(
            r#"[[services]]
proto = "tcp"
vip = "198.18.0.102:80"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.15:80" }]
sorry_server = { addr = "198.18.1.16:80" }
"#,
        );
        health(&mut st, crate::Proto::Tcp, "198.18.0.102:80", "198.18.1.15:80", false);
        assert!(announced(&setup(&st)).contains(&ip("198.18.0.102")));
    }

    #[test]
    fn a_service_without_reals_or_with_weight_zero_only_is_not_announced() {
        let st = state("");
        let mut s = setup(&st);
        s.services.retain(|x| x.vip == ip("198.18.0.101"));
        s.services[0].reals[0].weight = 0;
        assert!(announced(&s).is_empty());
        s.services[0].reals.clear();
        assert!(announced(&s).is_empty());
    }

    #[test]
    fn plan_withdraws_first_then_announces() {
        let cur = set(&["198.18.0.100", "198.18.0.101"]);
        let want = set(&["198.18.0.101", "198.18.0.103", "198.18.0.102"]);
        assert_eq!(
            plan(&cur, &want),
            vec![
                Change::Withdraw(ip("198.18.0.100")),
                Change::Announce(ip("198.18.0.102")),
                Change::Announce(ip("198.18.0.103")),
            ]
        );
        assert!(plan(&want, &want).is_empty());
    }

    #[test]
    fn ip_json_is_read_as_host_routes() {
        let out = r#"[{"type":"blackhole","dst":"198.18.0.100","flags":[]},
                      {"type":"blackhole","dst":"198.18.0.101/32","flags":[]},
                      {"dst":"198.18.5.0/24","dev":"x","flags":[]}]"#;
        assert_eq!(parse_routes(out).unwrap(), vec![ip("198.18.0.100"), ip("198.18.0.101")]);
        assert!(parse_routes("[]").unwrap().is_empty());
        assert!(parse_routes("[").is_err());
    }

    #[test]
    fn ip_commands_name_table_and_proto() {
        let r = IpRoute { table: 100, proto: 201 };
        assert_eq!(
            r.route_args("replace", ip("198.18.0.100")).join(" "),
            "-4 route replace blackhole 198.18.0.100/32 table 100 proto 201"
        );
        assert_eq!(
            r.route_args("del", ip("198.18.0.100")).join(" "),
            "-4 route del 198.18.0.100/32 table 100 proto 201"
        );
    }

    /// A kernel table in memory; `fail` makes adds and deletes of that VIP fail.
    #[derive(Default)]
    struct Fake {
        routes: BTreeMap<IpAddr, ()>,
        fail: Option<IpAddr>,
        ops: Vec<String>,
    }

    impl RouteTable for &mut Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn list(&mut self) -> Result<Vec<IpAddr>, String> {
            Ok(self.routes.keys().copied().collect())
        }
        fn add(&mut self, vip: IpAddr) -> Result<(), String> {
            self.ops.push(format!("add {vip}"));
            if self.fail == Some(vip) {
                return Err("refused".into());
            }
            self.routes.insert(vip, ());
            Ok(())
        }
        fn del(&mut self, vip: IpAddr) -> Result<(), String> {
            self.ops.push(format!("del {vip}"));
            if self.fail == Some(vip) {
                return Err("refused".into());
            }
            self.routes.remove(&vip);
            Ok(())
        }
    }

    #[test]
    fn start_deletes_stale_routes_and_announces_nothing() {
        let mut k = Fake::default();
        k.routes.insert(ip("198.18.0.100"), ());
        k.routes.insert(ip("198.18.0.109"), ());
        let a = Announcer::start(&mut k).unwrap();
        assert!(a.current().is_empty());
        drop(a);
        assert!(k.routes.is_empty());
        assert_eq!(k.ops, vec!["del 198.18.0.100", "del 198.18.0.109"]);
    }

    #[test]
    fn the_table_follows_setups_until_withdraw_all() {
        let mut st = state("");
        let mut k = Fake::default();
        {
            let mut a = Announcer::start(&mut k).unwrap();
            assert_eq!(a.update(&setup(&st)).len(), 2);
            assert_eq!(a.current(), &set(&["198.18.0.100", "198.18.0.101"]));
            assert!(a.update(&setup(&st)).is_empty(), "an unchanged setup changes nothing");
            health(&mut st, crate::Proto::Tcp, "198.18.0.101:443", "198.18.1.14:443", false);
            assert_eq!(a.update(&setup(&st)), vec![Change::Withdraw(ip("198.18.0.101"))]);
            health(&mut st, crate::Proto::Tcp, "198.18.0.101:443", "198.18.1.14:443", true);
            assert_eq!(a.update(&setup(&st)), vec![Change::Announce(ip("198.18.0.101"))]);
            assert_eq!(a.withdraw_all().len(), 2);
            assert!(a.current().is_empty());
            // A health transition during the drain does not bring a VIP back.
            assert!(a.update(&setup(&st)).is_empty());
        }
        assert!(k.routes.is_empty());
    }

    #[test]
    fn a_failed_command_is_retried_at_the_next_setup() {
        let st = state("");
        let mut k = Fake { fail: Some(ip("198.18.0.101")), ..Fake::default() };
        let mut a = Announcer::start(&mut k).unwrap();
        assert_eq!(a.update(&setup(&st)), vec![Change::Announce(ip("198.18.0.100"))]);
        assert_eq!(a.current(), &set(&["198.18.0.100"]));
        a.kernel.fail = None;
        assert_eq!(a.update(&setup(&st)), vec![Change::Announce(ip("198.18.0.101"))]);
        assert_eq!(a.current(), &set(&["198.18.0.100", "198.18.0.101"]));
    }
}
