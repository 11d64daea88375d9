//! Output, as ipvsadm 1.31 prints it (always numeric): `ipvsadm.c`'s `list_all`, `print_title`,
//! `print_service_entry`, `print_largenum`, `list_conn`, `print_conn`.
use std::collections::HashMap;
use std::net::IpAddr;

use super::{Format, View, VERSION_LINE};
use crate::api::{ConnInfo, Counters, Duplex, PortInfo, ServiceInfo, ServiceStats};
use crate::config::{parse_endpoint, Forward, Proto, TimeoutsConfig};

/// ipvsadm's `protocol_name`.
fn proto_upper(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

/// ipvsadm's `option_from_protocol`.
fn proto_switch(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
    }
}

/// ipvsadm's `fwd_name` (DPVS adds `FullNat`).
pub fn fwd_name(forward: Forward) -> &'static str {
    match forward {
        Forward::Fullnat => "FullNat",
        Forward::Masq => "Masq",
        Forward::Route => "Route",
        Forward::Tunnel => "Tunnel",
    }
}

/// ipvsadm's `fwd_switch` (DPVS adds `-b`).
pub fn fwd_switch(forward: Forward) -> &'static str {
    match forward {
        Forward::Fullnat => "-b",
        Forward::Masq => "-m",
        Forward::Route => "-g",
        Forward::Tunnel => "-i",
    }
}

/// ipvsadm's `print_largenum`: `%9llu` below 100 million, else `%8llu` + K/M/G/T; with `--exact`
/// `%*llu` at width max(9, digits + 1).
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

fn truncate(mut s: String, n: usize) -> String {
    s.truncate(n);
    s
}

/// An IPv6 `[addr]:port` (ipvsadm truncates only IPv4 names to their columns).
fn is_v6(ep: &str) -> bool {
    ep.starts_with('[')
}

/// `snprintf(svc_name, .., "%-4s %s", "TCP", vname); if (se->af != AF_INET6) svc_name[33] = '\0'`.
pub(crate) fn svc_name(proto: Proto, vip: &str) -> String {
    let name = format!("{:<4} {}", proto_upper(proto), vip);
    if is_v6(vip) {
        name
    } else {
        truncate(name, 33)
    }
}

/// `if (e->af != AF_INET6) dname[28] = '\0'`.
pub(crate) fn dname(addr: &str) -> String {
    if is_v6(addr) {
        addr.to_owned()
    } else {
        truncate(addr.to_owned(), 28)
    }
}

/// Sort key of `ipvs_cmp_dests` (address, port), the family first as `ipvs_cmp_services` orders
/// it (AF_INET before AF_INET6); an unparsable address last.
fn ep_key(s: &str) -> (u8, u128, u16, String) {
    match parse_endpoint(s) {
        Ok((IpAddr::V4(ip), port)) => (0, u32::from(ip).into(), port, String::new()),
        Ok((IpAddr::V6(ip), port)) => (1, u128::from(ip), port, String::new()),
        Err(_) => (2, u128::MAX, u16::MAX, s.to_owned()),
    }
}

/// `ipvs_cmp_services`: family, protocol number, address, port.
pub(crate) fn sorted_services<'a>(services: &'a [ServiceInfo], fmt: &Format) -> Vec<&'a ServiceInfo> {
    let mut v: Vec<&ServiceInfo> = services.iter().collect();
    if !fmt.nosort {
        v.sort_by_key(|s| {
            let (af, addr, port, bad) = ep_key(&s.vip);
            (af, s.proto.number(), addr, port, bad)
        });
    }
    v
}

fn sorted_reals<'a>(s: &'a ServiceInfo, fmt: &Format) -> Vec<&'a crate::api::RealInfo> {
    let mut v: Vec<_> = s.reals.iter().collect();
    if !fmt.nosort {
        v.sort_by_key(|r| ep_key(&r.addr));
    }
    v
}

/// `print_title`.
pub fn format_title(view: View) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    match view {
        // "%-33s %8s %8s %8s %8s %8s\n" "  -> RemoteAddress:Port\n"
        View::Stats => format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        View::Rate => format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        // "%-33s %-10s %-10s %-10s %-10s\n" "  -> RemoteAddress:Port\n"
        View::Thresholds => format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        // "%-33s %-9s %-11s %-10s %-10s\n" "  -> RemoteAddress:Port\n"
        View::PersistConn => format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        ),
        View::Plain => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".into(),
    }
}

fn find_stats<'a>(stats: &'a [ServiceStats], s: &ServiceInfo) -> Option<&'a ServiceStats> {
    stats.iter().find(|x| x.proto == s.proto && x.vip == s.vip)
}

fn counters5(c: &Counters, rate: bool, exact: bool) -> String {
    let v = if rate {
        [c.cps, c.inpps, c.outpps, c.inbps, c.outbps]
    } else {
        [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]
    };
    v.iter().map(|n| largenum(*n, exact)).collect()
}

/// One service and its real servers (`print_service_entry`).
pub fn format_service(s: &ServiceInfo, stats: Option<&ServiceStats>, view: View, fmt: &Format) -> String {
    format_service_with(s, stats, None, view, fmt)
}

/// Persistence templates per (proto, vip, real server address), for `--persistent-conn`.
pub type PersistCounts = HashMap<(Proto, String, String), u64>;

/// Out of scheduling: its health check took it out (`down`), or the service lost quorum and its
/// sorry server serves instead (`displaced`).
fn out_of_scheduling(r: &crate::api::RealInfo) -> bool {
    r.health == "down" || r.health == "displaced"
}

/// A real server out of scheduling in a service without `inhibit_on_failure`: keepalived has
/// removed it from the kernel table, so ipvsadm does not list it (`-S` still saves it).
fn removed_by_check(s: &ServiceInfo, r: &crate::api::RealInfo) -> bool {
    out_of_scheduling(r) && !s.inhibit_on_failure
}

/// The weight ipvsadm would show: 0 for a server out of scheduling (a keepalived-inhibited one).
fn shown_weight(r: &crate::api::RealInfo) -> u32 {
    if out_of_scheduling(r) {
        0
    } else {
        r.weight
    }
}

fn format_service_with(
    s: &ServiceInfo,
    stats: Option<&ServiceStats>,
    persist: Option<&PersistCounts>,
    view: View,
    fmt: &Format,
) -> String {
    let name = svc_name(s.proto, &s.vip);
    let zero = Counters::default();
    let mut out = match view {
        // printf("%-33s", svc_name); print_largenum(...) x5
        View::Stats | View::Rate => {
            let c = stats.map(|x| &x.counters).unwrap_or(&zero);
            format!("{name:<33}{}", counters5(c, view == View::Rate, fmt.exact))
        }
        // printf("%s %s", svc_name, se->sched_name); " persistent %u"; DPVS " synproxy"; rvs " toa"
        View::Plain | View::Thresholds | View::PersistConn => {
            let mut l = format!("{name} {}", s.sched);
            if let Some(t) = s.persistence.filter(|t| *t > 0) {
                l.push_str(&format!(" persistent {t}"));
            }
            if s.synproxy {
                l.push_str(" synproxy");
            }
            if !s.proxy_protocol.is_off() {
                l.push_str(" proxy-protocol ");
                l.push_str(s.proxy_protocol.as_str());
            }
            if s.toa {
                l.push_str(" toa");
            }
            l
        }
    };
    out.push('\n');
    for r in sorted_reals(s, fmt).into_iter().filter(|r| !removed_by_check(s, r)) {
        let d = dname(&r.addr);
        let c = stats.and_then(|x| x.reals.iter().find(|rs| rs.addr == r.addr)).map(|rs| &rs.counters);
        let c = c.unwrap_or(&zero);
        match view {
            // printf("  -> %-28s", dname); print_largenum(...) x5; printf("\n")
            View::Stats => out.push_str(&format!("  -> {d:<28}{}\n", counters5(c, false, fmt.exact))),
            // printf("  -> %-28s %8llu %8llu %8llu", dname, cps, inpps, outpps);
            // print_largenum(inbps); print_largenum(outbps); printf("\n")
            View::Rate => out.push_str(&format!(
                "  -> {d:<28} {:>8} {:>8} {:>8}{}{}\n",
                c.cps,
                c.inpps,
                c.outpps,
                largenum(c.inbps, fmt.exact),
                largenum(c.outbps, fmt.exact)
            )),
            // "  -> %-28s %-10u %-10u %-10u %-10u\n"
            View::Thresholds => out.push_str(&format!(
                "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}\n",
                r.u_threshold, r.l_threshold, r.active_conns, r.inactive_conns
            )),
            // "  -> %-28s %-7s %-6d %-10u %-10u\n". A server its health check took out shows the
            // weight the dataplane uses, 0, as ipvsadm shows a keepalived-inhibited one; `-S`
            // keeps the configured weight.
            // "  -> %-28s %-9u %-11u %-10u %-10u\n": weight, persistconns, active, inactive.
            View::PersistConn => out.push_str(&format!(
                "  -> {d:<28} {:<9} {:<11} {:<10} {:<10}\n",
                shown_weight(r),
                persist.and_then(|p| p.get(&(s.proto, s.vip.clone(), r.addr.clone()))).copied().unwrap_or(0),
                r.active_conns,
                r.inactive_conns
            )),
            View::Plain => out.push_str(&format!(
                "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}\n",
                fwd_name(r.forward),
                shown_weight(r),
                r.active_conns,
                r.inactive_conns
            )),
        }
    }
    out
}

/// `-L` of everything (`list_all`: banner, title, services sorted) or, with `one`, of one service
/// (`list_service`: title and the service, no banner).
pub fn format_list(
    services: &[ServiceInfo],
    stats: Option<&[ServiceStats]>,
    view: View,
    fmt: &Format,
    one: bool,
) -> String {
    let mut out = String::new();
    if !one {
        // "IP Virtual Server version %d.%d.%d (size=%d)\n"
        out.push_str(VERSION_LINE);
        out.push('\n');
    }
    out.push_str(&format_title(view));
    for s in sorted_services(services, fmt) {
        out.push_str(&format_service(s, stats.and_then(|st| find_stats(st, s)), view, fmt));
    }
    out
}

/// `-L --persistent-conn` (`list_all`/`list_service` with `FMT_PERSISTENTCONN`).
pub fn format_list_persist(
    services: &[ServiceInfo],
    counts: &PersistCounts,
    fmt: &Format,
    one: bool,
) -> String {
    let mut out = String::new();
    if !one {
        out.push_str(VERSION_LINE);
        out.push('\n');
    }
    out.push_str(&format_title(View::PersistConn));
    for s in sorted_services(services, fmt) {
        out.push_str(&format_service_with(s, None, Some(counts), View::PersistConn, fmt));
    }
    out
}

/// `list_timeout`: `"Timeout (tcp tcpfin udp): %d %d %d\n"`.
pub fn format_timeouts(tcp: u32, tcpfin: u32, udp: u32) -> String {
    format!("Timeout (tcp tcpfin udp): {tcp} {tcpfin} {udp}\n")
}

/// rvs's `-S` first line when the three LVS timeouts are not rvs's defaults: `--set tcp tcpfin
/// udp`, so that `-S | -R` carries them (ipvsadm saves no timeouts; its `-R` runs `--set` lines).
pub fn format_set_rule((tcp, tcpfin, udp): (u32, u32, u32)) -> String {
    let d = TimeoutsConfig::default();
    if (tcp, tcpfin, udp) == (d.established, d.fin_wait, d.udp) {
        String::new()
    } else {
        format!("--set {tcp} {tcpfin} {udp}\n")
    }
}

/// `list_conn`'s two title lines: "IPVS connection entries\n" and
/// "pro expire %-11s %-18s %-18s %s\n" (with `--show-lip`, a `%-18s` `local` column before
/// `destination`).
pub fn format_conn_title(fmt: &Format) -> String {
    if fmt.persist {
        // FMT_PERSISTENTCONN: "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" (state, source,
        // virtual, destination, "pe name", "pe_data"); rows without a persistence engine keep
        // print_conn's six columns, and rvs has no engines.
        let lip = if fmt.show_lip { format!("{:<18} ", "local") } else { String::new() };
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {lip}{:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        )
    } else if fmt.show_lip {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "local", "destination"
        )
    } else {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        )
    }
}

/// `print_conn`: expire is `"%02d:%02d"` (minutes, seconds), the line
/// `"%-3s %-6s %-11s %-18s %-18s %s\n"` (protocol, expire, state, source, virtual, destination).
pub fn format_conn(c: &ConnInfo, fmt: &Format) -> String {
    let secs = c.expires_ms / 1000;
    let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
    let proto = proto_upper(c.proto);
    if fmt.show_lip {
        format!(
            "{proto:<3} {expire:<6} {:<11} {:<18} {:<18} {:<18} {}\n",
            c.state, c.client, c.vip, c.lip, c.rs
        )
    } else {
        format!("{proto:<3} {expire:<6} {:<11} {:<18} {:<18} {}\n", c.state, c.client, c.vip, c.rs)
    }
}

/// `-Lc`: title and every connection, in the daemon's order (ipvsadm does not sort them).
pub fn format_conns(conns: &[ConnInfo], fmt: &Format) -> String {
    let mut out = format_conn_title(fmt);
    for c in conns {
        out.push_str(&format_conn(c, fmt));
    }
    out
}

/// `-S` (`list_all(FMT_RULE)`): per service `"-A %s -s %s"` + `" -p %u"`, then (rvs) one
/// `--add-laddr -t VIP -z LIP` per local address, then per real server `"-a %s -r %s %s -w %d\n"`.
/// rvs appends ` -j enable` (DPVS's switch), ` --toa on`, ` -x N`, ` -y N` when set, so that
/// `-S | -R` round-trips.
pub fn format_rules(services: &[ServiceInfo], fmt: &Format) -> String {
    let mut out = String::new();
    for s in sorted_services(services, fmt) {
        let name = format!("{} {}", proto_switch(s.proto), s.vip);
        out.push_str(&format!("-A {name} -s {}", s.sched));
        if let Some(t) = s.persistence.filter(|t| *t > 0) {
            out.push_str(&format!(" -p {t}"));
        }
        if s.synproxy {
            out.push_str(" -j enable");
        }
        if !s.proxy_protocol.is_off() {
            out.push_str(" --proxy-protocol ");
            out.push_str(s.proxy_protocol.as_str());
        }
        if s.toa {
            out.push_str(" --toa on");
        }
        if s.inhibit_on_failure {
            out.push_str(" --inhibit-on-failure");
        }
        out.push('\n');
        for l in &s.laddrs {
            out.push_str(&format!("--add-laddr {name} -z {l}\n"));
        }
        // A sorry server is the service's quorum setting, not a rule: `-R` would make it a real server.
        for r in sorted_reals(s, fmt).into_iter().filter(|r| r.health != "sorry") {
            out.push_str(&format!("-a {name} -r {} {} -w {}", r.addr, fwd_switch(r.forward), r.weight));
            if r.u_threshold > 0 {
                out.push_str(&format!(" -x {}", r.u_threshold));
            }
            if r.l_threshold > 0 {
                out.push_str(&format!(" -y {}", r.l_threshold));
            }
            out.push('\n');
        }
    }
    out
}

/// `--get-laddr` title, DPVS's `list_laddrs_print_title` without the per-address counters rvs does
/// not report: `"%-20s %-8s %-20s\n"`.
pub fn format_laddr_title() -> String {
    format!("{:<20} {:<8} {:<20}\n", "VIP:VPORT", "TOTAL", "SNAT_IP")
}

/// One service's local addresses: DPVS's `"%-20s %-8u \n"` for the service, then `"%-20s %-8s %-20s\n"`
/// per address.
pub fn format_laddrs(vip: &str, laddrs: &[String]) -> String {
    let mut out = format!("{vip:<20} {:<8} \n", laddrs.len());
    for l in laddrs {
        out.push_str(&format!("{:<20} {:<8} {l:<20}\n", "", ""));
    }
    out
}

/// `--ports`: one block per port, in the layout of DPVS's `dpip -s link show` (tools/dpip/link.c):
/// `"%d: %s: "` index (from 1) and name with the device, driver, MTU and queues; the link line
/// (`UP 10000 Mbps full-duplex auto-nego`/`fixed-nego`, or `DOWN`); `addr` (MAC) and rvs's `inet`
/// address; then the counters as dpip's `-s`, names over values in `%-20s` columns.
pub fn format_ports(ports: &[PortInfo]) -> String {
    let mut out = String::new();
    for (i, p) in ports.iter().enumerate() {
        out.push_str(&format!(
            "{}: {}: device {} driver {} mtu {} rx-queue {} tx-queue {}\n",
            i + 1,
            p.name,
            p.device,
            p.driver,
            p.mtu,
            p.rx_queues,
            p.tx_queues
        ));
        let link = match &p.link {
            None => "link unknown".to_owned(),
            Some(l) if !l.up => "DOWN".to_owned(),
            Some(l) => {
                let mut s = "UP".to_owned();
                if let Some(sp) = l.speed_mbps {
                    s.push_str(&format!(" {sp} Mbps"));
                }
                match l.duplex {
                    Some(Duplex::Full) => s.push_str(" full-duplex"),
                    Some(Duplex::Half) => s.push_str(" half-duplex"),
                    None => {}
                }
                s.push_str(if l.autoneg { " auto-nego" } else { " fixed-nego" });
                s
            }
        };
        let inet6 = p.addr6.as_ref().map(|a| format!(" inet6 {a}")).unwrap_or_default();
        out.push_str(&format!("    {link}\n    addr {} inet {}{inet6}\n", p.mac, p.addr));
        let row = |v: [String; 4]| format!("    {:<20}{:<20}{:<20}{}\n", v[0], v[1], v[2], v[3]);
        match &p.stats {
            None => out.push_str("    counters unknown\n"),
            Some(c) => {
                let names = ["ipackets", "opackets", "ibytes", "obytes"].map(String::from);
                out.push_str(&row(names));
                out.push_str(&row(
                    [c.rx_packets, c.tx_packets, c.rx_bytes, c.tx_bytes].map(|n| n.to_string())
                ));
                let names = ["ierrors", "oerrors", "imissed", "rx_nombuf"].map(String::from);
                out.push_str(&row(names));
                out.push_str(&row(
                    [c.rx_errors, c.tx_errors, c.rx_missed, c.rx_nombuf].map(|n| n.to_string())
                ));
            }
        }
    }
    out
}

/// `-L --daemon`: ipvsadm 1.31's `list_daemon`, master first: `"%s sync daemon (mcast=%s,
/// syncid=%d"`, then `", maxlen=%u"`, `", group=%s"`, `", port=%u"`, `", ttl=%u"` (each as the
/// kernel reports it once a daemon runs), then `")"`. rvs appends `", peer=%s"` before the `)`
/// for a unicast peer (the kernel has none).
pub fn format_daemons(daemons: &[crate::api::SyncDaemonInfo]) -> String {
    use crate::api::SyncRoleName;
    let mut out = String::new();
    for role in [SyncRoleName::Master, SyncRoleName::Backup] {
        for d in daemons.iter().filter(|d| d.role == role) {
            let name = if role == SyncRoleName::Master { "master" } else { "backup" };
            out.push_str(&format!("{name} sync daemon (mcast={}, syncid={}", d.interface, d.syncid));
            if d.maxlen > 0 {
                out.push_str(&format!(", maxlen={}", d.maxlen));
            }
            out.push_str(&format!(", group={}", d.group));
            if d.port > 0 {
                out.push_str(&format!(", port={}", d.port));
            }
            if d.ttl > 0 {
                out.push_str(&format!(", ttl={}", d.ttl));
            }
            if let Some(p) = &d.peer {
                out.push_str(&format!(", peer={p}"));
            }
            out.push_str(")\n");
        }
    }
    out
}
