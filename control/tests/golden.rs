//! Golden-file tests: rvsadm's formatters against text derived from ipvsadm 1.31's printf formats.
//!
//! The expected files in `tests/golden/` were produced by `tests/golden/printf_oracle.py`, which
//! transcribes ipvsadm.c's printf calls into Python %-formatting (C printf semantics) and shares no
//! code with rvsadm. Which format each line follows:
//!
//! * `list*.txt` line 1: `list_all` — `"IP Virtual Server version %d.%d.%d (size=%d)\n"`.
//! * title, `print_title`: plain — the literal `"Prot LocalAddress:Port Scheduler Flags\n"
//!   "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"`; `--stats`/`--rate` —
//!   `"%-33s %8s %8s %8s %8s %8s\n" "  -> RemoteAddress:Port\n"`; `--thresholds` —
//!   `"%-33s %-10s %-10s %-10s %-10s\n" "  -> RemoteAddress:Port\n"`.
//! * service line, `print_service_entry`: name `"%s  %s"` (PROTO, vip) cut at 33; plain —
//!   `"%s %s"` + `" persistent %u"` (+ DPVS `" synproxy"`, rvs `" toa"`); `--stats`/`--rate` —
//!   `"%-33s"` + 5 × `print_largenum`.
//! * real-server line: plain — `"  -> %-28s %-7s %-6d %-10u %-10u\n"`; `--stats` — `"  -> %-28s"` +
//!   5 × `print_largenum`; `--rate` — `"  -> %-28s %8llu %8llu %8llu"` + 2 × `print_largenum`;
//!   `--thresholds` — `"  -> %-28s %-10u %-10u %-10u %-10u\n"`.
//! * `print_largenum`: `%9llu` below 1e8, else `%8llu` + K/M/G/T; `--exact`: `%*llu`, width
//!   max(9, digits + 1).
//! * `conns*.txt`, `list_conn`: `"IPVS connection entries\n"`, `"pro expire %-11s %-18s %-18s %s\n"`;
//!   `print_conn`: expire `"%02d:%02d"`, line `"%-3s %-6s %-11s %-18s %-18s %s\n"` (`--show-lip`
//!   adds a `%-18s` local column).
//! * `save.txt`, `list_all(FMT_RULE)`: `"-A %s -s %s"` + `" -p %u"`, `"-a %s -r %s %s -w %d\n"`;
//!   rvs adds ` -j enable`, ` --toa on`, ` -x N`, ` -y N` and DPVS-style `--add-laddr %s -z %s` lines.
//! * `laddrs.txt`: DPVS `list_laddrs_print_title` `"%-20s %-8s %-20s\n"`, service `"%-20s %-8u \n"`,
//!   address `"%-20s %-8s %-20s\n"`.
//! * `list_keepalived.txt`: the plain list of a keepalived-managed table (keepalived's
//!   check/ipwrapper.c `perform_svr_state`: a failed real server is removed with `LVS_CMD_DEL_DEST`,
//!   or kept at weight 0 when `inhibit_on_failure` is set); `list_persistent_conn.txt`:
//!   `print_title`/`print_service_entry` with `FMT_PERSISTENTCONN` — `"%-33s %-9s %-11s %-10s %-10s\n"`
//!   and `"  -> %-28s %-9u %-11u %-10u %-10u\n"`; `conns_persist.txt`: `list_conn` with
//!   `FMT_PERSISTENTCONN` — `"pro expire %-11s %-18s %-18s %-18s %-16s %s\n"`, rows without a
//!   persistence engine as plain `print_conn`; `timeout.txt`: `list_timeout` —
//!   `"Timeout (tcp tcpfin udp): %d %d %d\n"`; `save_keepalived.txt`: `list_all(FMT_RULE)` after rvs's
//!   `--set` line, with rvs's `--inhibit-on-failure`.
//! * `*_v6.txt`: the dual-stack fixture: `addrport_to_anyname` writes an AF_INET6 address as
//!   `[%s]:%u`; `print_service_entry` cuts `svc_name` at 33 and `dname` at 28 only when the family
//!   is not AF_INET6 (longer IPv6 names push the columns right); `ipvs_cmp_services` sorts by family
//!   first (AF_INET before AF_INET6); `print_conn`'s `%-18s` columns are not cut either.
//! * `ports.txt`, `rvsadm --ports`: DPVS's `dpip -s link show` (tools/dpip/link.c) — per port
//!   `"%d: %s: "` and its device, driver, MTU and queues; the link line (`UP %u Mbps full-duplex
//!   auto-nego|fixed-nego`, `DOWN`); `addr` and rvs's `inet`; counters as names over values in
//!   `%-20s` columns.
use rvs_control::adm::{
    format_conns, format_laddr_title, format_laddrs, format_list, format_list_persist, format_ports,
    format_rules, format_set_rule, format_timeouts, ipvs_strerror, parse_rules, parse_rules_full, Format,
    PersistCounts, View,
};
use rvs_control::api::{
    ConnInfo, Counters, Duplex, ErrorCode, LinkInfo, LvsTimeouts, PortCounters, PortInfo, RealInfo,
    RealStats, Request, ServiceId, ServiceInfo, ServiceStats,
};
use rvs_control::config::{RealConfig, ServiceConfig};
use rvs_control::{Forward, Proto, Sched};

fn golden(name: &str) -> String {
    let p = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn check(name: &str, got: &str) {
    let want = golden(name);
    if got != want {
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            if g != w {
                panic!("{name} line {}:\n got: {g:?}\nwant: {w:?}", i + 1);
            }
        }
        panic!("{name}: line counts differ\n got:\n{got}\nwant:\n{want}");
    }
}

type Real = (&'static str, u32, u32, u32, u64, u64);

fn real(r: Real) -> RealInfo {
    real_by(Forward::Fullnat, r)
}

fn real_by(forward: Forward, r: Real) -> RealInfo {
    let (addr, weight, u_threshold, l_threshold, active_conns, inactive_conns) = r;
    RealInfo {
        addr: addr.into(),
        weight,
        forward,
        u_threshold,
        l_threshold,
        active_conns,
        inactive_conns,
        health: "up".into(),
    }
}

/// Two services, eight real servers of every forwarding method; deliberately unsorted (ipvsadm sorts).
fn services() -> Vec<ServiceInfo> {
    vec![
        ServiceInfo {
            proto: Proto::Udp,
            vip: "198.18.0.100:53".into(),
            sched: Sched::Wrr,
            persistence: None,
            toa: false,
            synproxy: false,
            proxy_protocol: rvs_control::ProxyProtocol::Off,
            inhibit_on_failure: false,
            laddrs: vec!["198.18.1.100".into()],
            reals: vec![
                real(("198.18.1.22:53", 0, 100, 10, 0, 0)),
                real(("198.18.1.21:53", 10, 0, 0, 0, 7)),
                real_by(Forward::Masq, ("198.18.1.24:5353", 1, 0, 0, 2, 0)),
                real_by(Forward::Route, ("198.18.1.23:53", 2, 0, 0, 0, 1)),
                real_by(Forward::Tunnel, ("198.18.9.25:53", 3, 0, 0, 1, 1)),
            ],
        },
        ServiceInfo {
            proto: Proto::Tcp,
            vip: "198.18.0.100:80".into(),
            sched: Sched::Rr,
            persistence: Some(300),
            toa: true,
            synproxy: true,
            proxy_protocol: rvs_control::ProxyProtocol::Off,
            inhibit_on_failure: false,
            laddrs: vec!["198.18.1.100".into(), "198.18.1.101".into()],
            reals: vec![
                real(("198.18.1.13:8080", 5, 0, 0, 1234, 56)),
                real(("198.18.1.11:80", 1, 0, 0, 12, 3)),
                real(("198.18.1.12:80", 2, 0, 0, 0, 0)),
            ],
        },
    ]
}

fn counters(v: [u64; 10]) -> Counters {
    let [conns, inpkts, outpkts, inbytes, outbytes, cps, inpps, outpps, inbps, outbps] = v;
    Counters { conns, inpkts, outpkts, inbytes, outbytes, cps, inpps, outpps, inbps, outbps }
}

/// Large values exercise the K/M/G/T suffixes; 198.18.1.12:80 and 198.18.1.22:53 are absent (zeros).
fn stats() -> Vec<ServiceStats> {
    vec![
        ServiceStats {
            proto: Proto::Tcp,
            vip: "198.18.0.100:80".into(),
            counters: counters([
                1302,
                987654321,
                12345678901,
                123456789012,
                234567890123456,
                15,
                4321,
                4000,
                123456789,
                99999999,
            ]),
            reals: vec![
                RealStats {
                    addr: "198.18.1.11:80".into(),
                    counters: counters([100, 5000, 4800, 350000, 7200000, 5, 1000, 900, 80000, 1200000]),
                },
                RealStats {
                    addr: "198.18.1.13:8080".into(),
                    counters: counters([
                        1202,
                        987649321,
                        12345674101,
                        123456439012,
                        234567882923456,
                        10,
                        3321,
                        3100,
                        123376789,
                        98799999,
                    ]),
                },
            ],
        },
        ServiceStats {
            proto: Proto::Udp,
            vip: "198.18.0.100:53".into(),
            counters: counters([7, 7, 7, 420, 980, 0, 0, 0, 0, 0]),
            reals: vec![RealStats {
                addr: "198.18.1.21:53".into(),
                counters: counters([7, 7, 7, 420, 980, 0, 0, 0, 0, 0]),
            }],
        },
    ]
}

fn conns() -> Vec<ConnInfo> {
    let c =
        |proto: &str, client: &str, vip: &str, lip: &str, rs: &str, state: &str, expires_ms: u64| ConnInfo {
            proto: proto.parse().unwrap(),
            client: client.into(),
            vip: vip.into(),
            lip: lip.into(),
            rs: rs.into(),
            forward: Forward::Fullnat,
            state: state.into(),
            expires_ms,
            worker: 0,
        };
    vec![
        c(
            "tcp",
            "203.0.113.7:51234",
            "198.18.0.100:80",
            "198.18.1.100:40001",
            "198.18.1.11:80",
            "ESTABLISHED",
            899500,
        ),
        c(
            "tcp",
            "203.0.113.200:65535",
            "198.18.0.100:80",
            "198.18.1.101:40002",
            "198.18.1.13:8080",
            "SYN_RECV",
            30000,
        ),
        c(
            "udp",
            "203.0.113.9:5353",
            "198.18.0.100:53",
            "198.18.1.100:40003",
            "198.18.1.21:53",
            "UDP",
            299999,
        ),
        c(
            "tcp",
            "203.0.113.8:60000",
            "198.18.0.100:80",
            "198.18.1.101:40004",
            "198.18.1.12:80",
            "TIME_WAIT",
            120000,
        ),
        c("tcp", "10.0.0.1:0", "198.18.0.100:80", "0.0.0.0:0", "198.18.1.11:80", "NONE", 10803000),
        ConnInfo {
            forward: Forward::Masq,
            ..c("udp", "203.0.113.9:5354", "198.18.0.100:53", "", "198.18.1.24:5353", "UDP", 120000)
        },
        ConnInfo {
            forward: Forward::Route,
            ..c("udp", "203.0.113.9:5355", "198.18.0.100:53", "", "198.18.1.23:53", "UDP", 60000)
        },
        ConnInfo {
            forward: Forward::Tunnel,
            ..c("udp", "203.0.113.9:5356", "198.18.0.100:53", "", "198.18.9.25:53", "UDP", 1000)
        },
    ]
}

const FMT: Format = Format { exact: false, nosort: false, show_lip: false, persist: false };
const EXACT: Format = Format { exact: true, nosort: false, show_lip: false, persist: false };

#[test]
fn list_numeric() {
    check("list.txt", &format_list(&services(), None, View::Plain, &FMT, false));
}

#[test]
fn list_one_service_has_no_banner() {
    let one: Vec<ServiceInfo> = services().into_iter().filter(|s| s.proto == Proto::Tcp).collect();
    check("list_one.txt", &format_list(&one, None, View::Plain, &FMT, true));
}

#[test]
fn list_stats() {
    check("list_stats.txt", &format_list(&services(), Some(&stats()), View::Stats, &FMT, false));
}

#[test]
fn list_rate() {
    check("list_rate.txt", &format_list(&services(), Some(&stats()), View::Rate, &FMT, false));
}

#[test]
fn list_exact_stats() {
    check("list_stats_exact.txt", &format_list(&services(), Some(&stats()), View::Stats, &EXACT, false));
}

#[test]
fn list_exact_rate() {
    check("list_rate_exact.txt", &format_list(&services(), Some(&stats()), View::Rate, &EXACT, false));
}

#[test]
fn list_thresholds() {
    check("list_thresholds.txt", &format_list(&services(), None, View::Thresholds, &FMT, false));
}

#[test]
fn list_conns() {
    check("conns.txt", &format_conns(&conns(), &FMT));
    check("conns_lip.txt", &format_conns(&conns(), &Format { show_lip: true, ..FMT }));
}

#[test]
fn save() {
    check("save.txt", &format_rules(&services(), &FMT));
}

#[test]
fn get_laddr() {
    let mut text = format_laddr_title();
    // sorted as ipvsadm sorts services: tcp before udp
    for s in services().iter().rev() {
        text.push_str(&format_laddrs(&s.vip, &s.laddrs));
    }
    check("laddrs.txt", &text);
}

/// The configuration the listed services came from, in ipvsadm's sorted order.
fn configs() -> Vec<ServiceConfig> {
    let mut out: Vec<ServiceConfig> = services()
        .into_iter()
        .rev()
        .map(|s| {
            let mut reals: Vec<RealConfig> = s
                .reals
                .iter()
                .map(|r| RealConfig {
                    addr: r.addr.clone(),
                    weight: r.weight,
                    forward: r.forward,
                    u_threshold: r.u_threshold,
                    l_threshold: r.l_threshold,
                })
                .collect();
            reals.sort_by_key(|r| rvs_control::config::parse_endpoint(&r.addr).unwrap());
            ServiceConfig {
                proto: s.proto,
                vip: s.vip,
                sched: s.sched,
                persistence: s.persistence,
                toa: s.toa,
                synproxy: s.synproxy,
                proxy_protocol: rvs_control::ProxyProtocol::Off,
                laddrs: s.laddrs,
                reals,
                check: None,
                inhibit_on_failure: s.inhibit_on_failure,
                quorum: 1,
                hysteresis: 0,
                sorry_server: None,
            }
        })
        .collect();
    out.sort_by_key(|s| s.proto != Proto::Tcp);
    out
}

#[test]
fn save_then_restore_round_trips() {
    let rules = format_rules(&services(), &FMT);
    let restored = parse_rules(&rules).unwrap();
    assert_eq!(restored, configs());
    // and the restore request's TOML is a valid config holding exactly those services
    let toml = rvs_control::adm::restore_toml(&restored).unwrap();
    assert_eq!(rvs_control::adm::services_from_toml(&toml).unwrap(), restored);
    let cfg = rvs_control::Config::from_toml(&toml).unwrap();
    assert_eq!(cfg.services, restored);
    // -S of the restored services is identical again
    let again: Vec<ServiceInfo> = restored
        .iter()
        .map(|s| ServiceInfo {
            proto: s.proto,
            vip: s.vip.clone(),
            sched: s.sched,
            persistence: s.persistence,
            toa: s.toa,
            synproxy: s.synproxy,
            proxy_protocol: rvs_control::ProxyProtocol::Off,
            inhibit_on_failure: s.inhibit_on_failure,
            laddrs: s.laddrs.clone(),
            reals: s
                .reals
                .iter()
                .map(|r| RealInfo {
                    addr: r.addr.clone(),
                    weight: r.weight,
                    forward: r.forward,
                    u_threshold: r.u_threshold,
                    l_threshold: r.l_threshold,
                    active_conns: 0,
                    inactive_conns: 0,
                    health: "up".into(),
                })
                .collect(),
        })
        .collect();
    assert_eq!(format_rules(&again, &FMT), rules);
}

/// The second fixture (printf_oracle.py's KA_SERVICES): a keepalived-managed pair of services.
/// (addr, weight, health, active, inactive, persistence templates)
type KaReal = (&'static str, u32, &'static str, u64, u64, u64);

fn ka_services() -> (Vec<ServiceInfo>, PersistCounts) {
    let mut counts = PersistCounts::new();
    let mut svc = |vip: &str, sched: &str, persistence, inhibit, reals: &[KaReal]| {
        for r in reals {
            counts.insert((Proto::Tcp, vip.into(), r.0.into()), r.5);
        }
        ServiceInfo {
            proto: Proto::Tcp,
            vip: vip.into(),
            sched: sched.parse().unwrap(),
            persistence,
            toa: false,
            synproxy: false,
            proxy_protocol: rvs_control::ProxyProtocol::Off,
            inhibit_on_failure: inhibit,
            laddrs: vec!["198.18.1.100".into()],
            reals: reals
                .iter()
                .map(|&(addr, weight, health, active_conns, inactive_conns, _)| RealInfo {
                    addr: addr.into(),
                    weight,
                    forward: Forward::Fullnat,
                    u_threshold: 0,
                    l_threshold: 0,
                    active_conns,
                    inactive_conns,
                    health: health.into(),
                })
                .collect(),
        }
    };
    let services = vec![
        svc(
            "198.18.0.100:443",
            "wlc",
            None,
            true,
            &[("198.18.1.12:443", 1, "up", 5, 2, 0), ("198.18.1.11:443", 3, "down", 1, 0, 0)],
        ),
        svc(
            "198.18.0.100:80",
            "rr",
            Some(360),
            false,
            &[("198.18.1.12:80", 2, "down", 2, 1, 1), ("198.18.1.11:80", 1, "up", 3, 1, 4)],
        ),
    ];
    (services, counts)
}

#[test]
fn list_shows_keepalived_behaviour_for_failed_real_servers() {
    check("list_keepalived.txt", &format_list(&ka_services().0, None, View::Plain, &FMT, false));
}

#[test]
fn list_persistent_conn() {
    let (services, counts) = ka_services();
    check("list_persistent_conn.txt", &format_list_persist(&services, &counts, &FMT, false));
}

#[test]
fn list_conns_persistent_conn() {
    check("conns_persist.txt", &format_conns(&conns(), &Format { persist: true, ..FMT }));
}

#[test]
fn list_timeout() {
    check("timeout.txt", &format_timeouts(900, 60, 300));
    // rvs's defaults need no --set line in -S
    assert_eq!(format_set_rule((900, 120, 300)), "");
}

#[test]
fn save_keepalived_round_trips_timeouts_persistence_and_inhibit() {
    let (services, _) = ka_services();
    let text = format_set_rule((900, 60, 300)) + &format_rules(&services, &FMT);
    check("save_keepalived.txt", &text);
    let rules = parse_rules_full(&text).unwrap();
    assert_eq!(rules.timeouts, Some(LvsTimeouts { tcp: 900, tcpfin: 60, udp: 300 }));
    let https = rules.services.iter().find(|s| s.vip == "198.18.0.100:443").unwrap();
    assert!(https.inhibit_on_failure);
    let http = rules.services.iter().find(|s| s.vip == "198.18.0.100:80").unwrap();
    assert!(!http.inhibit_on_failure);
    assert_eq!(http.persistence, Some(360));
    // -S keeps the configured weights of failed servers, so -R restores them as configured
    assert_eq!(http.reals.iter().find(|r| r.addr == "198.18.1.12:80").unwrap().weight, 2);
    // the restore request carries the services as TOML; the flag survives it
    let toml = rvs_control::adm::restore_toml(&rules.services).unwrap();
    assert_eq!(rvs_control::adm::services_from_toml(&toml).unwrap(), rules.services);
    assert_eq!(parse_rules(&text).unwrap(), rules.services);
}

/// libipvs/libipvs.c `ipvs_strerror`: the text ipvsadm prints for each refusal rvsd can give, by
/// the libipvs function the command calls (`process_options`' command switch).
#[test]
fn refusals_print_ipvs_strerror_texts() {
    use rvs_control::config::RealConfig as R;
    let id = ServiceId { proto: Proto::Tcp, vip: "198.18.0.100:80".into() };
    let real = R {
        addr: "198.18.1.11:80".into(),
        weight: 1,
        forward: Forward::Fullnat,
        u_threshold: 0,
        l_threshold: 0,
    };
    let add_service = Request::AddService { service: configs()[0].clone() };
    let edit_service = Request::EditService {
        id: id.clone(),
        sched: None,
        persistence: None,
        toa: None,
        synproxy: None,
        proxy_protocol: Some(rvs_control::ProxyProtocol::Off),
        inhibit_on_failure: None,
    };
    let cases = [
        (add_service, ErrorCode::ServiceExists, "Service already exists"),
        (edit_service, ErrorCode::NoSuchService, "No such service"),
        (Request::DeleteService { id: id.clone() }, ErrorCode::NoSuchService, "No such service"),
        (Request::Zero { id: Some(id.clone()) }, ErrorCode::NoSuchService, "No such service"),
        (
            Request::AddReal { id: id.clone(), real: real.clone() },
            ErrorCode::NoSuchService,
            "Service not defined",
        ),
        (
            Request::AddReal { id: id.clone(), real: real.clone() },
            ErrorCode::RealExists,
            "Destination already exists",
        ),
        (
            Request::EditReal { id: id.clone(), real: real.clone() },
            ErrorCode::NoSuchService,
            "Service not defined",
        ),
        (Request::EditReal { id: id.clone(), real }, ErrorCode::NoSuchReal, "No such destination"),
        (
            Request::DeleteReal { id: id.clone(), addr: "198.18.1.11:80".into() },
            ErrorCode::NoSuchService,
            "Service not defined",
        ),
        (
            Request::DeleteReal { id: id.clone(), addr: "198.18.1.11:80".into() },
            ErrorCode::NoSuchReal,
            "No such destination",
        ),
    ];
    for (req, code, want) in cases {
        assert_eq!(ipvs_strerror(&req, code), Some(want), "{req:?} {code:?}");
    }
    // refusals ipvsadm has no text for keep rvsd's own line
    assert_eq!(
        ipvs_strerror(&Request::AddLaddr { id, addr: "198.18.1.100".into() }, ErrorCode::LaddrExists),
        None
    );
}

/// printf_oracle.py's PORTS: a port up at a known speed, one down, one the PMD says nothing of.
fn ports() -> Vec<PortInfo> {
    let port = |name: &str, device: &str, driver: &str, mac: &str, addr: &str, mtu, queues| PortInfo {
        name: name.into(),
        device: device.into(),
        driver: driver.into(),
        mac: mac.into(),
        addr: addr.into(),
        addr6: None,
        mtu,
        rx_queues: queues,
        tx_queues: queues,
        link: None,
        stats: None,
    };
    let counters =
        |[rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_missed, rx_nombuf]: [u64;
             8]| PortCounters {
            rx_packets,
            tx_packets,
            rx_bytes,
            tx_bytes,
            rx_errors,
            tx_errors,
            rx_missed,
            rx_nombuf,
        };
    vec![
        PortInfo {
            link: Some(LinkInfo {
                up: true,
                speed_mbps: Some(10000),
                duplex: Some(Duplex::Full),
                autoneg: false,
            }),
            stats: Some(counters([155, 154, 12345, 23456, 0, 1, 2, 3])),
            ..port(
                "client",
                "net_af_packet0,iface=gc",
                "net_af_packet",
                "02:00:5e:00:53:01",
                "198.18.0.1/24",
                1500,
                1,
            )
        },
        PortInfo {
            link: Some(LinkInfo { up: false, speed_mbps: None, duplex: None, autoneg: true }),
            stats: Some(counters([123456789012, 0, 98765432109876, 0, 7, 0, 0, 0])),
            ..port("server", "0000:03:00.0", "net_ixgbe", "a0:36:9f:74:ee:98", "198.18.1.1/24", 9000, 4)
        },
        port("mem", "net_memif0,role=server", "net_memif", "be:ef:00:00:00:01", "198.18.2.1/24", 1500, 2),
    ]
}

#[test]
fn list_ports() {
    check("ports.txt", &format_ports(&ports()));
}

/// printf_oracle.py's V6_SERVICES: dual stack, deliberately unsorted.
fn v6_services() -> Vec<ServiceInfo> {
    let svc =
        |proto: Proto, vip: &str, sched, persistence, toa, synproxy, laddrs: &[&str], reals| ServiceInfo {
            proto,
            vip: vip.into(),
            sched,
            persistence,
            toa,
            synproxy,
            proxy_protocol: rvs_control::ProxyProtocol::Off,
            inhibit_on_failure: false,
            laddrs: laddrs.iter().map(|l| l.to_string()).collect(),
            reals,
        };
    vec![
        svc(
            Proto::Tcp,
            "[2001:2::101]:80",
            Sched::Rr,
            None,
            true,
            false,
            &["198.18.1.101"],
            vec![real(("198.18.1.12:80", 1, 0, 0, 4, 0)), real(("198.18.1.11:80", 1, 0, 0, 5, 1))],
        ),
        svc(
            Proto::Udp,
            "[2001:2::100]:53",
            Sched::Rr,
            None,
            false,
            false,
            &["2001:2:0:1::100"],
            vec![real(("[2001:2:0:1::11]:53", 1, 0, 0, 0, 3))],
        ),
        svc(
            Proto::Tcp,
            "[2001:2:0:ffff:ffff:ffff:ffff:ff00]:65535",
            Sched::Wlc,
            Some(300),
            false,
            true,
            &["2001:2:0:1::100", "2001:2:0:1::101"],
            vec![
                real(("[2001:2:0:1:ffff:ffff:ffff:ff13]:65535", 2, 0, 0, 1, 0)),
                real_by(Forward::Route, ("[2001:2:0:1::12]:65535", 1, 0, 0, 0, 0)),
            ],
        ),
        svc(
            Proto::Tcp,
            "[2001:2::100]:80",
            Sched::Rr,
            None,
            true,
            false,
            &["2001:2:0:1::100"],
            vec![
                real(("[2001:2:0:1::13]:8080", 3, 100, 10, 7, 2)),
                real(("[2001:2:0:1::11]:80", 1, 0, 0, 12, 3)),
                real_by(Forward::Tunnel, ("[2001:2:0:1::12]:80", 1, 0, 0, 11, 4)),
            ],
        ),
        svc(
            Proto::Tcp,
            "198.18.0.100:80",
            Sched::Rr,
            None,
            false,
            false,
            &["198.18.1.100"],
            vec![real(("198.18.1.11:80", 1, 0, 0, 1, 0))],
        ),
    ]
}

fn v6_stats() -> Vec<ServiceStats> {
    let rs = |addr: &str, v| RealStats { addr: addr.into(), counters: counters(v) };
    let half = [100, 1500, 1400, 41152263, 34952533333, 2, 25, 23, 685871, 582542222];
    vec![
        ServiceStats {
            proto: Proto::Tcp,
            vip: "[2001:2::100]:80".into(),
            counters: counters([300, 4500, 4200, 123456789, 104857600000, 5, 75, 70, 2057613, 1747626666]),
            reals: vec![rs("[2001:2:0:1::11]:80", half), rs("[2001:2:0:1::13]:8080", half)],
        },
        ServiceStats {
            proto: Proto::Tcp,
            vip: "[2001:2:0:ffff:ffff:ffff:ffff:ff00]:65535".into(),
            counters: counters([1, 2, 3, 4, 5, 0, 0, 0, 0, 0]),
            reals: vec![rs("[2001:2:0:1:ffff:ffff:ffff:ff13]:65535", [1, 2, 3, 4, 5, 0, 0, 0, 0, 0])],
        },
    ]
}

fn v6_conns() -> Vec<ConnInfo> {
    let c = |proto: &str, client: &str, vip: &str, lip: &str, rs: &str, state: &str, expires_ms| ConnInfo {
        proto: proto.parse().unwrap(),
        client: client.into(),
        vip: vip.into(),
        lip: lip.into(),
        rs: rs.into(),
        forward: Forward::Fullnat,
        state: state.into(),
        expires_ms,
        worker: 0,
    };
    vec![
        c(
            "tcp",
            "[2001:2::c1]:51234",
            "[2001:2::100]:80",
            "[2001:2:0:1::100]:40001",
            "[2001:2:0:1::11]:80",
            "ESTABLISHED",
            899500,
        ),
        c(
            "tcp",
            "[2001:2:0:ffff:ffff:ffff:ffff:c2]:65535",
            "[2001:2::101]:80",
            "198.18.1.101:40002",
            "198.18.1.12:80",
            "SYN_RECV",
            30000,
        ),
        c(
            "udp",
            "[2001:2::c1]:5353",
            "[2001:2::100]:53",
            "[2001:2:0:1::100]:40003",
            "[2001:2:0:1::11]:53",
            "UDP",
            299999,
        ),
        c(
            "tcp",
            "203.0.113.7:51234",
            "198.18.0.100:80",
            "198.18.1.100:40004",
            "198.18.1.11:80",
            "TIME_WAIT",
            120000,
        ),
    ]
}

#[test]
fn list_dual_stack() {
    let (svcs, st) = (v6_services(), v6_stats());
    check("list_v6.txt", &format_list(&svcs, Some(&st), View::Plain, &FMT, false));
    check("list_v6_stats.txt", &format_list(&svcs, Some(&st), View::Stats, &FMT, false));
    check("list_v6_rate.txt", &format_list(&svcs, Some(&st), View::Rate, &FMT, false));
    check("list_v6_thresholds.txt", &format_list(&svcs, None, View::Thresholds, &FMT, false));
}

#[test]
fn list_conns_dual_stack() {
    check("conns_v6.txt", &format_conns(&v6_conns(), &FMT));
    check("conns_v6_lip.txt", &format_conns(&v6_conns(), &Format { show_lip: true, ..FMT }));
}

#[test]
fn save_dual_stack_and_restore_it() {
    let rules = format_rules(&v6_services(), &FMT);
    check("save_v6.txt", &rules);
    // -R reads back every IPv6 service, real server and local address, in -S's canonical spelling.
    let restored = parse_rules(&rules).unwrap();
    assert_eq!(restored.len(), 5);
    let v6 = restored.iter().find(|s| s.vip == "[2001:2::100]:80" && s.proto == Proto::Tcp).unwrap();
    assert_eq!(v6.laddrs, ["2001:2:0:1::100"]);
    let reals: Vec<(&str, Forward)> = v6.reals.iter().map(|r| (r.addr.as_str(), r.forward)).collect();
    assert_eq!(
        reals,
        [
            ("[2001:2:0:1::11]:80", Forward::Fullnat),
            ("[2001:2:0:1::12]:80", Forward::Tunnel),
            ("[2001:2:0:1::13]:8080", Forward::Fullnat)
        ]
    );
    let nat64 = restored.iter().find(|s| s.vip == "[2001:2::101]:80").unwrap();
    assert_eq!(nat64.laddrs, ["198.18.1.101"]);
    assert!(nat64.toa);
}
