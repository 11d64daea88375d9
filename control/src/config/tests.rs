use super::*;

const GOOD: &str = r#"
[workers]
lcores = [1]

[[ports]]
name = "client"
device = "net_af_packet0,iface=rvs-c0"
addr = "198.18.0.1/24"

[[ports]]
name = "server"
device = "net_af_packet1,iface=rvs-s0"
addr = "198.18.1.1/24"

[[routes]]
dst = "0.0.0.0/0"
via = "198.18.0.254"

[[services]]
proto = "tcp"
vip = "198.18.0.100:80"
sched = "rr"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:80", weight = 2 }]
"#;

#[test]
fn good_config_parses_and_validates() {
    let c = Config::from_toml(GOOD).unwrap();
    c.validate().unwrap();
    assert_eq!(c.workers.burst, defaults::BURST);
    assert_eq!(c.services[0].reals[1].weight, 2);
    assert_eq!(c.conn.timeouts.established, 900);
    // save/restore round trip is lossless
    let again = Config::from_toml(&c.to_toml()).unwrap();
    assert_eq!(again, c);
}

fn bad(replace: &str, with: &str) -> ConfigError {
    let text = GOOD.replacen(replace, with, 1);
    match Config::from_toml(&text) {
        Err(e) => e,
        Ok(c) => c.validate().unwrap_err(),
    }
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("net_af_packet0,iface", "net_bogus0,iface", "ports[0].device"),
        ("198.18.0.1/24", "198.18.0.300/24", "ports[0].addr"),
        ("198.18.0.1/24", "198.18.0.1", "ports[0].addr"),
        ("lcores = [1]", "lcores = [0]", "workers.lcores[0]"),
        ("lcores = [1]", "lcores = []", "workers.lcores"),
        // typed values are refused while parsing: the line and key name the field
        ("sched = \"rr\"", "sched = \"xyz\"", "line 22: sched"),
        ("weight = 2", "weight = 70000", "services[0].reals[1].weight"),
        ("198.18.1.12:80", "198.18.1.11:80", "services[0].reals[1].addr"),
        ("198.18.1.12:80", "198.18.1.12:0", "services[0].reals[1].addr"),
        ("via = \"198.18.0.254\"", "via = \"10.0.0.1\"", "routes[0].via"),
        ("proto = \"tcp\"", "proto = \"sctp\"", "line 20: proto"),
    ];
    assert_eq!(
        bad("sched = \"rr\"", "sched = \"xyz\"").msg,
        "unknown scheduler \"xyz\" (one of rr, wrr, lc, wlc, sh, mh)"
    );
    assert_eq!(bad("proto = \"tcp\"", "proto = \"sctp\"").msg, "unknown protocol \"sctp\" (one of tcp, udp)");
    for (from, to, field) in cases {
        let e = bad(from, to);
        assert_eq!(e.field, field, "{from} -> {to}: {e}");
        assert!(!e.to_string().contains('\n'));
    }
}

/// The quorum example of docs/config.md, and what validation refuses around it.
#[test]
fn quorum_sorry_server_and_https_check() {
    let svc = r#"
[[services]]
proto = "tcp"
vip = "198.18.0.100:443"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:443", weight = 2 }, { addr = "198.18.1.12:443", weight = 2 }]
check = { kind = "https", path = "/health", interval_ms = 2000, timeout_ms = 1000, host = "www.example.org" }
quorum = 3
hysteresis = 1
sorry_server = { addr = "198.18.1.20:443", inhibit = true }
"#;
    let text = format!("{GOOD}{svc}");
    let c = Config::from_toml(&text).unwrap();
    c.validate().unwrap();
    let s = &c.services[1];
    assert_eq!((s.quorum, s.hysteresis), (3, 1));
    assert_eq!(
        s.sorry_server,
        Some(SorryServerConfig { addr: "198.18.1.20:443".into(), forward: Forward::Fullnat, inhibit: true })
    );
    let check = s.check.as_ref().unwrap();
    assert_eq!(
        (check.kind, check.host.as_deref(), check.sni.as_deref()),
        (CheckKind::Https, Some("www.example.org"), None)
    );
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c, "save/restore round trip");
    // Defaults are not written: a service without quorum settings saves as before.
    assert!(!Config::from_toml(GOOD).unwrap().to_toml().contains("quorum"));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    for (from, to, field) in [
        ("hysteresis = 1", "hysteresis = 3", "services[1].hysteresis"),
        ("quorum = 3", "quorum = 0", "services[1].quorum"),
        ("198.18.1.20:443", "198.18.1.20:0", "services[1].sorry_server.addr"),
        // A sorry server follows a real server's rules: DR keeps the service's port, is on-link,
        (
            "198.18.1.20:443\", inhibit",
            "198.18.1.20:8443\", forward = \"dr\", inhibit",
            "services[1].sorry_server.addr",
        ),
        (
            "198.18.1.20:443\", inhibit",
            "10.9.9.9:443\", forward = \"dr\", inhibit",
            "services[1].sorry_server.addr",
        ),
        // and takes no TOA.
        (
            "sorry_server = { addr = \"198.18.1.20:443\", inhibit = true }",
            "toa = true\nsorry_server = { addr = \"198.18.1.20:443\", forward = \"dr\" }",
            "services[1].toa",
        ),
        ("host = \"www.example.org\"", "host = \"a b\"", "services[1].check.host"),
        ("host = \"www.example.org\"", "sni = \"not a name\"", "services[1].check.sni"),
        ("kind = \"https\"", "kind = \"tcp\"", "services[1].check.host"),
        ("path = \"/health\"", "path = \"/a\\r\\nX: y\"", "services[1].check.path"),
    ] {
        let e = Config::from_toml(&text.replacen(from, to, 1)).unwrap().validate().unwrap_err();
        assert_eq!(e.field, field, "{from} -> {to}: {e}");
    }
    let e = Config::from_toml(&text.replacen("kind = \"https\"", "kind = \"http\", sni = \"a.example\"", 1))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.field, "services[1].check.sni", "{e}");
    // Without a port, the service's; NAT (its ipvsadm name masq too) may change the port.
    let c = Config::from_toml(&text.replacen(
        "198.18.1.20:443\", inhibit = true",
        "198.18.1.20\", forward = \"masq\"",
        1,
    ))
    .unwrap();
    c.validate().unwrap();
    let ss = c.services[1].sorry_server.as_ref().unwrap();
    assert_eq!((ss.addr.as_str(), ss.forward, ss.inhibit), ("198.18.1.20:443", Forward::Masq, false));
    // Real servers that can never reach quorum + hysteresis: valid, with a warning.
    let c = Config::from_toml(&text.replacen("quorum = 3", "quorum = 4", 1)).unwrap();
    c.validate().unwrap();
    let w = c.warnings();
    assert!(w.len() == 1 && w[0].starts_with("services[1].quorum: tcp 198.18.0.100:443: its real servers weigh 4 in all, below quorum 4 + hysteresis 1"), "{w:?}");
}

#[test]
fn metrics_endpoint_is_off_by_default_and_checked_when_on() {
    let c = Config::from_toml(GOOD).unwrap();
    assert_eq!(c.metrics, MetricsConfig::default());
    assert_eq!(c.metrics.listen_addr().unwrap(), None);
    assert_eq!(c.metrics.max_clients, defaults::METRICS_MAX_CLIENTS);
    let on = format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9100\"\n");
    let c = Config::from_toml(&on).unwrap();
    c.validate().unwrap();
    assert_eq!(c.metrics.listen_addr().unwrap(), Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    for (line, field) in [
        ("listen = \"127.0.0.1\"", "metrics.listen"),
        ("listen = \"localhost:9100\"", "metrics.listen"),
        ("max_clients = 0", "metrics.max_clients"),
        ("read_timeout_ms = 10", "metrics.read_timeout_ms"),
        ("max_request_bytes = 100", "metrics.max_request_bytes"),
    ] {
        let e = Config::from_toml(&format!("{GOOD}\n[metrics]\n{line}\n")).unwrap().validate().unwrap_err();
        assert_eq!(e.field, field, "{line}: {e}");
        assert!(!e.to_string().contains('\n'));
    }
    let e = Config::from_toml(&format!("{GOOD}\n[metrics]\nport = 9100\n")).unwrap_err();
    assert!(e.to_string().contains("port"), "{e}");
}

#[test]
fn timeouts_the_connection_table_cannot_hold_are_refused() {
    // The connection table's timer wheel compares deadlines in wrapping u32 ticks and refuses
    // (panics on) timeouts beyond 2^30 ticks of 64 ms (~795 days); u32 seconds go far beyond.
    let e = bad("[[services]]", "[conn.timeouts]\nestablished = 4000000000\n\n[[services]]");
    assert_eq!(e.field, "conn.timeouts.established", "{e}");
    let e = bad("[[services]]", "[conn.timeouts]\nudp = 100000000\n\n[[services]]");
    assert_eq!(e.field, "conn.timeouts.udp", "{e}");
    // The largest accepted timeouts build a worker.
    let max = MAX_TIMEOUT_S;
    let text = GOOD.replacen(
        "[[services]]",
        &format!(
            "[conn]\nmax_per_worker = 16\n[conn.timeouts]\nestablished = {max}\nsyn_sent = {max}\n\
             syn_recv = {max}\nfin_wait = {max}\ntime_wait = {max}\nclose = {max}\n\
             close_wait = {max}\nlast_ack = {max}\nudp = {max}\n\n[[services]]"
        ),
        1,
    );
    let c = Config::from_toml(&text).unwrap();
    c.validate().unwrap();
    let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
    let stats = std::sync::Arc::new(rvs_dataplane::stats::Stats::default());
    let _ = rvs_dataplane::worker::Worker::new(&setup, 0, rvs_dataplane::frame::VecPool::default(), stats);
}

#[test]
fn toml_errors_are_one_line_with_the_key() {
    let e = bad("lcores = [1]", "lcores = [1]\nburst = \"many\"");
    assert!(e.field.contains("burst"), "{e}");
    assert!(!e.to_string().contains('\n'));
    let e = bad("[workers]", "[workers]\nbogus = 1");
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn preallocated_sizes_are_bounded() {
    for (key, section, v) in [
        ("arp_queue", "[conn]", "5000"),
        ("persist_templates", "[conn]", "99999999"),
        ("max_half_open", "[synproxy]", "0"),
        ("max_held", "[synproxy]", "65"),
    ] {
        let e = bad("[[services]]", &format!("{section}\n{key} = {v}\n\n[[services]]"));
        assert!(e.field.ends_with(key), "{key}: {e}");
    }
}

#[test]
fn limits_are_enforced() {
    let mut c = Config::from_toml(GOOD).unwrap();
    let r = c.services[0].reals[0].clone();
    c.services[0].reals = (0..=MAX_REALS_PER_SERVICE as u32)
        .map(|i| RealConfig { addr: format!("198.18.{}.{}:80", 2 + i / 250, 1 + i % 250), ..r.clone() })
        .collect();
    assert_eq!(c.validate().unwrap_err().field, "services[0].reals");
    let mut c = Config::from_toml(GOOD).unwrap();
    let s = c.services[0].clone();
    c.services = (0..=MAX_SERVICES as u32)
        .map(|i| ServiceConfig { vip: format!("198.18.0.100:{}", 1 + i), reals: vec![], ..s.clone() })
        .collect();
    assert_eq!(c.validate().unwrap_err().field, "services");
    let mut c = Config::from_toml(GOOD).unwrap();
    c.services[0].laddrs =
        (0..=MAX_LADDRS_PER_SERVICE as u32).map(|i| format!("198.18.5.{}", i % 256)).collect();
    c.services[0].laddrs.dedup();
    c.services[0].laddrs.push("198.18.6.1".into());
    assert_eq!(c.validate().unwrap_err().field, "services[0].laddrs");
}

#[test]
fn reals_without_local_address_are_valid_with_a_warning() {
    let c = Config::from_toml(&GOOD.replace("laddrs = [\"198.18.1.100\"]\n", "")).unwrap();
    c.validate().unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("services[0].laddrs: tcp 198.18.0.100:80 has FULLNAT real servers"), "{w:?}");
    assert!(Config::from_toml(GOOD).unwrap().warnings().is_empty());
}

/// GOOD with its two real servers replaced by `reals` (TOML inline tables) and the service's
/// `extra` lines.
fn with_reals(reals: &str, extra: &str) -> Result<Config, ConfigError> {
    let text = GOOD.replace("laddrs = [\"198.18.1.100\"]\n", "").replace(
        "reals = [{ addr = \"198.18.1.11:80\" }, { addr = \"198.18.1.12:80\", weight = 2 }]",
        &format!("reals = [{reals}]\n{extra}"),
    );
    let c = Config::from_toml(&text)?;
    c.validate()?;
    Ok(c)
}

#[test]
fn forwarding_methods_read_canonical_names_and_aliases() {
    for (name, want) in [
        ("fullnat", Forward::Fullnat),
        ("nat", Forward::Masq),
        ("dr", Forward::Route),
        ("tun", Forward::Tunnel),
        ("masq", Forward::Masq),
        ("masquerading", Forward::Masq),
        ("route", Forward::Route),
        ("gatewaying", Forward::Route),
        ("direct", Forward::Route),
        ("tunnel", Forward::Tunnel),
        ("ipip", Forward::Tunnel),
    ] {
        assert_eq!(name.parse::<Forward>(), Ok(want), "{name}");
        let c = with_reals(&format!("{{ addr = \"198.18.1.11:80\", forward = \"{name}\" }}"), "").unwrap();
        assert_eq!(c.services[0].reals[0].forward, want);
        // written back under its canonical name, and read again the same
        let text = c.to_toml();
        assert!(text.contains(&format!("forward = \"{}\"", want.as_str())), "{text}");
        assert_eq!(Config::from_toml(&text).unwrap(), c);
    }
    assert_eq!(Forward::ALL.map(Forward::as_str), ["fullnat", "nat", "dr", "tun"]);
    for f in Forward::ALL {
        assert_eq!(Forward::of_xlat(f.xlat()), f);
    }
    let e = with_reals("{ addr = \"198.18.1.11:80\", forward = \"bridge\" }", "").unwrap_err();
    assert_eq!(
        e.msg,
        "unknown forwarding method \"bridge\" (one of fullnat, nat, dr, tun; also read: masq, masquerading, route, gatewaying, direct, tunnel, ipip, fnat)"
    );
    assert_eq!(e.field, "line 23: reals", "{e}");
}

#[test]
fn a_service_may_mix_methods() {
    let c = with_reals(
        r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "nat" },
           { addr = "198.18.1.13:80", forward = "dr" }, { addr = "10.7.0.1:80", forward = "tun" }"#,
        "laddrs = [\"198.18.1.100\"]",
    )
    .unwrap();
    let got: Vec<Forward> = c.services[0].reals.iter().map(|r| r.forward).collect();
    assert_eq!(got, Forward::ALL);
    let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
    let xlats: Vec<_> = setup.services[0].reals.iter().map(|r| r.xlat).collect();
    assert_eq!(xlats, Forward::ALL.map(Forward::xlat));
    assert!(c.warnings().is_empty());
}

#[test]
fn real_servers_without_a_port_take_the_services() {
    let c = with_reals(
        r#"{ addr = "198.18.1.11", forward = "dr" }, { addr = "10.7.0.1", forward = "tun" },
           { addr = "198.18.1.12", forward = "nat" }"#,
        "",
    )
    .unwrap();
    let addrs: Vec<&str> = c.services[0].reals.iter().map(|r| r.addr.as_str()).collect();
    assert_eq!(addrs, ["198.18.1.11:80", "10.7.0.1:80", "198.18.1.12:80"]);
    // still refused: a bad address, port 0
    let e = with_reals(r#"{ addr = "198.18.1.300", forward = "dr" }"#, "").unwrap_err();
    assert_eq!(e.field, "services[0].reals[0].addr", "{e}");
}

#[test]
fn method_rules_are_one_line_naming_the_field() {
    let cases = [
        (
            r#"{ addr = "10.7.0.1:80", forward = "dr" }"#,
            "",
            "services[0].reals[0].addr: 10.7.0.1 is on none of the ports' networks (198.18.0.0/24, 198.18.1.0/24): DR needs an on-link real server",
        ),
        (
            r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "dr" }"#,
            "",
            "services[0].reals[1].addr: port 8080 is not the service's port 80: DR/TUN cannot change the port (write 198.18.1.12:80 or 198.18.1.12)",
        ),
        (
            r#"{ addr = "10.7.0.1:81", forward = "tun" }"#,
            "",
            "services[0].reals[0].addr: port 81 is not the service's port 80: DR/TUN cannot change the port (write 10.7.0.1:80 or 10.7.0.1)",
        ),
        (
            r#"{ addr = "198.18.1.11:80", forward = "nat" }, { addr = "198.18.1.12:80", forward = "dr" }"#,
            "synproxy = true",
            "services[0].synproxy: SYN-proxy needs the real server's replies through the gateway; real 198.18.1.12:80 forwards dr",
        ),
        (
            r#"{ addr = "10.7.0.1:80", forward = "tun" }"#,
            "synproxy = true",
            "services[0].synproxy: SYN-proxy needs the real server's replies through the gateway; real 10.7.0.1:80 forwards tun",
        ),
        (
            r#"{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:8080", forward = "nat" }"#,
            "laddrs = [\"198.18.1.100\"]\ntoa = true",
            "services[0].toa: TOA is for FULLNAT real servers (with nat the real server sees the client's address itself); real 198.18.1.12:8080 forwards nat",
        ),
        (
            r#"{ addr = "198.18.1.11:80", forward = "dr" }"#,
            "toa = true",
            "services[0].toa: TOA is for FULLNAT real servers (with dr the real server sees the client's address itself); real 198.18.1.11:80 forwards dr",
        ),
    ];
    for (reals, extra, want) in cases {
        let e = with_reals(reals, extra).unwrap_err();
        assert_eq!(e.to_string(), want);
    }
    // what the rules leave alone: NAT may change the port and take SYN-proxy; TUN real servers
    // may be routed; DR on either port's network; FULLNAT with TOA and SYN-proxy
    for (reals, extra) in [
        (r#"{ addr = "198.18.1.11:8080", forward = "nat" }"#, "synproxy = true"),
        (r#"{ addr = "10.7.0.1:80", forward = "tun" }"#, ""),
        (r#"{ addr = "198.18.0.20:80", forward = "dr" }, { addr = "198.18.1.20:80", forward = "dr" }"#, ""),
        (r#"{ addr = "198.18.1.11:8080" }"#, "laddrs = [\"198.18.1.100\"]\ntoa = true\nsynproxy = true"),
    ] {
        with_reals(reals, extra).unwrap_or_else(|e| panic!("{reals} {extra}: {e}"));
    }
}

#[test]
fn proxy_protocol_rules() {
    for (reals, extra, want) in [
        (
            r#"{ addr = "198.18.1.11:80" }"#,
            "laddrs = [\"198.18.1.100\"]\ntoa = true\nproxy_protocol = \"v1\"",
            "services[0].proxy_protocol: the PROXY protocol and TOA both carry the client's address; choose one",
        ),
        (
            r#"{ addr = "198.18.1.11:80", forward = "dr" }"#,
            "proxy_protocol = \"v2\"",
            "services[0].proxy_protocol: the PROXY protocol needs the real server's replies through the gateway (their acknowledgements are shifted); real 198.18.1.11:80 forwards dr",
        ),
        (r#"{ addr = "198.18.1.11:80" }"#, "proxy_protocol = \"v3\"", "unknown PROXY protocol version"),
    ] {
        let e = with_reals(reals, extra).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    // v1 and v2 with FULLNAT (and SYN-proxy) or NAT reach the dataplane; off is the default
    for (reals, extra, want) in [
        (
            r#"{ addr = "198.18.1.11:80" }"#,
            "laddrs = [\"198.18.1.100\"]\nproxy_protocol = \"v1\"",
            Some(ProxyProtocol::V1),
        ),
        (
            r#"{ addr = "198.18.1.11:80" }"#,
            "laddrs = [\"198.18.1.100\"]\nsynproxy = true\nproxy_protocol = \"v2\"",
            Some(ProxyProtocol::V2),
        ),
        (
            r#"{ addr = "198.18.1.11:8080", forward = "nat" }"#,
            "proxy_protocol = \"v2\"",
            Some(ProxyProtocol::V2),
        ),
        (r#"{ addr = "198.18.1.11:80" }"#, "proxy_protocol = \"off\"", None),
        (r#"{ addr = "198.18.1.11:80" }"#, "", None),
    ] {
        let c = with_reals(reals, extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let setup = crate::setup::dataplane_setup(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]).unwrap();
        assert_eq!(setup.services[0].proxy_protocol, want.and_then(ProxyProtocol::version), "{extra}");
    }
    // a UDP service cannot have it
    let text = GOOD
        .replace("proto = \"tcp\"", "proto = \"udp\"")
        .replace("sched = ", "proxy_protocol = \"v1\"\nsched = ");
    let e = Config::from_toml(&text).unwrap().validate().unwrap_err().to_string();
    assert!(e.contains("the PROXY protocol applies to tcp services only"), "{e}");
}

#[test]
fn only_fullnat_real_servers_need_local_addresses() {
    for m in ["nat", "dr", "tun"] {
        let c = with_reals(&format!("{{ addr = \"198.18.1.11:80\", forward = \"{m}\" }}"), "").unwrap();
        assert!(c.warnings().is_empty(), "{m}: {:?}", c.warnings());
    }
    let c = with_reals(r#"{ addr = "198.18.1.11:80", forward = "nat" }, { addr = "198.18.1.12:80" }"#, "")
        .unwrap();
    assert_eq!(
        c.warnings(),
        ["services[0].laddrs: tcp 198.18.0.100:80 has FULLNAT real servers but no local address; their new connections are dropped (drop.no_laddr) until one is added"]
    );
}

#[test]
fn devices() {
    assert!(matches!(parse_device("0000:03:00.0"), Ok(DeviceKind::Pci(_))));
    assert!(matches!(parse_device("03:00.1"), Ok(DeviceKind::Pci(_))));
    match parse_device("net_af_packet3,iface=v0,qpairs=2").unwrap() {
        DeviceKind::Vdev { driver, name, args } => {
            assert_eq!(driver, "net_af_packet");
            assert_eq!(name, "net_af_packet3");
            assert_eq!(args.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_device("net_af_packet,iface=x").is_err());
    assert!(parse_device("eth0").is_err());
}

#[test]
fn cidr() {
    let c: Cidr = "198.18.0.1/24".parse().unwrap();
    assert!(c.contains("198.18.0.200".parse().unwrap()));
    assert!(!c.contains("198.18.1.1".parse().unwrap()));
    assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().mask(), 0);
    assert_eq!(c.network().to_string(), "198.18.0.0/24");
}

/// Dual stack: IPv6 port addresses beside IPv4 ones, an IPv6 route, an IPv6 FULLNAT service and
/// a NAT64 one (IPv6 VIP, IPv4 real servers and local addresses).
const DUAL: &str = r#"
[[ports]]
name = "client"
device = "net_af_packet0,iface=rvs-c0"
addr = "198.18.0.1/24"
addr6 = "2001:2::1/64"

[[ports]]
name = "server"
device = "net_af_packet1,iface=rvs-s0"
addr = "198.18.1.1/24"
addr6 = "2001:2:0:1::1/64"

[[routes]]
dst = "::/0"
via = "2001:2::fe"

[[services]]
proto = "tcp"
vip = "[2001:2::100]:80"
sched = "rr"
laddrs = ["2001:2:0:1::100"]
reals = [{ addr = "[2001:2:0:1::11]:80" }, { addr = "2001:2:0:1::12" }, { addr = "[2001:2:0:1::13]", forward = "dr" }]

[[services]]
proto = "tcp"
vip = "[2001:2::101]:80"
toa = true
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12" }]

[[services]]
proto = "udp"
vip = "198.18.0.100:53"
laddrs = ["198.18.1.101"]
reals = [{ addr = "198.18.1.11:53" }]
"#;

fn dual_bad(replace: &str, with: &str) -> ConfigError {
    let text = DUAL.replacen(replace, with, 1);
    match Config::from_toml(&text) {
        Err(e) => e,
        Ok(c) => c.validate().expect_err(&format!("{replace} -> {with} should be refused")),
    }
}

#[test]
fn dual_stack_config_parses_validates_and_round_trips() {
    let c = Config::from_toml(DUAL).unwrap();
    c.validate().unwrap();
    assert_eq!(c.ports[0].addr6.as_deref(), Some("2001:2::1/64"));
    // A bare IPv6 real server (with or without brackets) takes the service's port, bracketed.
    let r: Vec<&str> = c.services[0].reals.iter().map(|r| r.addr.as_str()).collect();
    assert_eq!(r, ["[2001:2:0:1::11]:80", "[2001:2:0:1::12]:80", "[2001:2:0:1::13]:80"]);
    assert_eq!(c.services[1].reals[1].addr, "198.18.1.12:80");
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    // An IPv4-only port writes no addr6.
    assert!(!Config::from_toml(GOOD).unwrap().to_toml().contains("addr6"));
}

#[test]
fn family_rules_are_one_line_naming_the_field() {
    let cases = [
        // IPv4 VIP: IPv4 real servers and local addresses only.
        ("udp\"\nvip = \"198.18.0.100:53\"\nladdrs = [\"198.18.1.101\"]\nreals = [{ addr = \"198.18.1.11:53\" }]",
         "udp\"\nvip = \"198.18.0.100:53\"\nladdrs = [\"198.18.1.101\"]\nreals = [{ addr = \"[2001:2:0:1::11]:53\" }]",
         "services[2].reals[0].addr", "[2001:2:0:1::11]:53 is IPv6, not IPv4: an IPv4 service has IPv4 real servers and local addresses"),
        ("laddrs = [\"198.18.1.101\"]\nreals = [{ addr = \"198.18.1.11:53\" }]",
         "laddrs = [\"2001:2:0:1::100\"]\nreals = [{ addr = \"198.18.1.11:53\" }]",
         "services[2].laddrs[0]", "2001:2:0:1::100 is IPv6, not IPv4: an IPv4 service has IPv4 real servers and local addresses"),
        // IPv6 VIP with IPv6 real servers: IPv6 local addresses and no IPv4 real server.
        ("laddrs = [\"2001:2:0:1::100\"]", "laddrs = [\"198.18.1.100\"]",
         "services[0].laddrs[0]", "198.18.1.100 is IPv4, not IPv6: an IPv6 service has IPv6 real servers and local addresses (or, NAT64, IPv4 ones only)"),
        ("{ addr = \"2001:2:0:1::12\" }", "{ addr = \"198.18.1.12:80\" }",
         "services[0].reals[1].addr", "198.18.1.12:80 is IPv4, not IPv6: an IPv6 service has IPv6 real servers and local addresses (or, NAT64, IPv4 ones only)"),
        // NAT64: FULLNAT only, IPv4 local addresses, IPv4 real servers only.
        ("{ addr = \"198.18.1.12\" }", "{ addr = \"198.18.1.12\", forward = \"nat\" }",
         "services[1].reals[1].addr", "198.18.1.12:80 forwards nat: NAT64 (an IPv6 service, IPv4 real servers) is FULLNAT only"),
        ("laddrs = [\"198.18.1.100\"]\nreals = [{ addr = \"198.18.1.11:80\" }",
         "laddrs = [\"2001:2:0:1::100\"]\nreals = [{ addr = \"198.18.1.11:80\" }",
         "services[1].laddrs[0]", "2001:2:0:1::100 is IPv6, not IPv4: an IPv6 service with IPv4 real servers (NAT64) has only IPv4 real servers and local addresses"),
        ("{ addr = \"198.18.1.12\" }", "{ addr = \"[2001:2:0:1::12]:80\" }",
         "services[1].reals[1].addr", "[2001:2:0:1::12]:80 is IPv6, not IPv4: an IPv6 service with IPv4 real servers (NAT64) has only IPv4 real servers and local addresses"),
        // DR needs an on-link real server of its own family.
        ("[2001:2:0:1::13]", "[2001:2:9::13]", "services[0].reals[2].addr",
         "2001:2:9::13 is on none of the ports' networks (198.18.0.0/24, 2001:2::/64, 198.18.1.0/24, 2001:2:0:1::/64): DR needs an on-link real server"),
        ("[2001:2:0:1::13]\", forward = \"dr\"", "[2001:2:0:1::13]:81\", forward = \"tun\"", "services[0].reals[2].addr",
         "port 81 is not the service's port 80: DR/TUN cannot change the port (write [2001:2:0:1::13]:80 or [2001:2:0:1::13])"),
        // Spellings.
        ("vip = \"[2001:2::100]:80\"", "vip = \"2001:2::100:80\"", "services[0].vip",
         "\"2001:2::100:80\": write an IPv6 service as [ADDRESS]:PORT"),
        ("vip = \"[2001:2::100]:80\"", "vip = \"[2001:2::100]\"", "services[0].vip",
         "\"[2001:2::100]\" is not [IPv6]:PORT"),
        ("vip = \"[2001:2::100]:80\"", "vip = \"[2001:2::zz]:80\"", "services[0].vip",
         "\"2001:2::zz\" is not an IPv6 address"),
        // Ports and routes.
        ("addr6 = \"2001:2::1/64\"", "addr6 = \"2001:2::1/128\"", "ports[0].addr6",
         "prefix /128 leaves no room for neighbours"),
        ("addr6 = \"2001:2::1/64\"", "addr6 = \"198.18.5.1/24\"", "ports[0].addr6",
         "\"198.18.5.1\" is not an IPv6 address"),
        ("addr6 = \"2001:2::1/64\"", "addr6 = \"ff02::1/64\"", "ports[0].addr6", "ff02::1 is not a unicast address"),
        ("addr6 = \"2001:2::1/64\"", "addr6 = \"2001:2::1/64\"\nmtu = 1200", "ports[0].mtu",
         "1200 is below IPv6's minimum of 1280"),
        ("via = \"2001:2::fe\"", "via = \"198.18.0.254\"", "routes[0].via",
         "198.18.0.254 is IPv4 but dst ::/0 is IPv6"),
        ("via = \"2001:2::fe\"", "via = \"2001:2:9::fe\"", "routes[0].via",
         "2001:2:9::fe is not in any port's subnet"),
    ];
    for (from, to, field, msg) in cases {
        assert!(DUAL.contains(from), "{from}");
        let e = dual_bad(from, to);
        assert_eq!((e.field.as_str(), e.msg.as_str()), (field, msg), "{from} -> {to}");
        assert!(!e.to_string().contains('\n'));
    }
    // An IPv4 local address is NAT64's or IPv4 services', not both.
    let e = dual_bad("laddrs = [\"198.18.1.101\"]", "laddrs = [\"198.18.1.100\"]");
    assert_eq!(
        e.to_string(),
        "services[2].laddrs[0]: 198.18.1.100 is already a local address of NAT64 service [2001:2::101]:80; an IPv4 local address serves NAT64 services or IPv4 ones, not both (give this IPv4 service another)"
    );
    // An IPv6 service needs a port with an IPv6 address.
    let e = dual_bad("addr6 = \"2001:2::1/64\"", "").to_string();
    assert!(e.starts_with("routes[0].via") || e.starts_with("services[0].vip"), "{e}");
    let no6 = DUAL.replace("addr6 = \"2001:2::1/64\"\n", "").replace("addr6 = \"2001:2:0:1::1/64\"\n", "");
    let no6 =
        no6.replace("dst = \"::/0\"\nvia = \"2001:2::fe\"", "dst = \"0.0.0.0/0\"\nvia = \"198.18.0.254\"");
    let e = Config::from_toml(&no6).unwrap().validate().unwrap_err();
    assert_eq!(e.to_string(), "services[0].vip: [2001:2::100]:80 is IPv6 but no port has an addr6");
}

#[test]
fn endpoints_of_both_families() {
    use std::net::IpAddr;
    let v6: IpAddr = "2001:2::100".parse().unwrap();
    assert_eq!(parse_endpoint("[2001:2::100]:80"), Ok((v6, 80)));
    assert_eq!(parse_endpoint("198.18.0.100:80"), Ok(("198.18.0.100".parse().unwrap(), 80)));
    assert!(parse_endpoint("[2001:2::100]:0").is_err());
    assert!(parse_endpoint("[2001:2::100]80").is_err());
    assert_eq!(endpoint(v6, 80), "[2001:2::100]:80");
    assert_eq!(endpoint("198.18.0.100".parse().unwrap(), 80), "198.18.0.100:80");
    // Canonical spelling: what is parsed is printed back compressed.
    let (a, p) = parse_endpoint("[2001:0002:0000::0100]:80").unwrap();
    assert_eq!(endpoint(a, p), "[2001:2::100]:80");
    assert_eq!(with_port("2001:2::11", 80), "[2001:2::11]:80");
    assert_eq!(with_port("[2001:2::11]", 80), "[2001:2::11]:80");
    assert_eq!(with_port("[2001:2::11]:81", 80), "[2001:2::11]:81");
    assert_eq!(parse_ip("[2001:2::11]"), Ok("2001:2::11".parse().unwrap()));
    let p6 = Prefix::from_str("2001:2::/48").unwrap();
    assert!(p6.contains("2001:2:0:1::11".parse().unwrap()));
    assert!(!p6.contains("2001:3::1".parse().unwrap()));
    assert!(!p6.contains("198.18.0.1".parse().unwrap()));
    assert_eq!(Prefix::from_str("2001:2::1/64").unwrap().network().to_string(), "2001:2::/64");
    assert!(Prefix::from_str("2001:2::1/129").is_err());
    assert_eq!(Prefix::from_str("198.18.0.0/15").unwrap().prefix_len(), 15);
}
