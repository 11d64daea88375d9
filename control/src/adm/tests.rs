//! Unit tests of parsing, formatting, rules and execution against a fake rvsd.
use super::*;
use crate::api::{
    ConnInfo, ErrorCode, RealInfo, Refusal, Reply, Request, Response, ServiceId, ServiceInfo, TemplateInfo,
};
use crate::config::{defaults, RealConfig, ServiceConfig};
use crate::config::{Forward, Proto, ProxyProtocol, Sched};
use serde_json::Value;

fn parse(line: &str) -> Result<Invocation, AdmError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_args(&words, None)
}

fn action(line: &str) -> Action {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}")).action
}

fn send(line: &str) -> Request {
    match action(line) {
        Action::Send(r) => r,
        other => panic!("{line}: {other:?}"),
    }
}

fn id(proto: &str, vip: &str) -> ServiceId {
    ServiceId { proto: proto.parse().unwrap(), vip: vip.into() }
}

fn usage_err(line: &str) -> String {
    match parse(line) {
        Err(AdmError::Usage(m)) => {
            assert!(!m.contains('\n'), "{line}: multi-line error {m:?}");
            m
        }
        other => panic!("{line}: expected a usage error, got {other:?}"),
    }
}

#[test]
fn add_and_edit_service() {
    let want = ServiceConfig {
        proto: Proto::Tcp,
        vip: "198.18.0.100:80".into(),
        sched: Sched::Rr,
        persistence: Some(360),
        toa: false,
        synproxy: false,
        proxy_protocol: ProxyProtocol::Off,
        laddrs: vec![],
        reals: vec![],
        check: None,
        inhibit_on_failure: false,
        quorum: 1,
        hysteresis: 0,
        sorry_server: None,
    };
    // A bare -p is IPVS_SVC_PERSISTENT_TIMEOUT (libipvs.h: 6*60), as ipvsadm's parse_timeout(NULL).
    for line in [
        "-A -t 198.18.0.100:80 -s rr -p",
        "-A -t 198.18.0.100:80 -s rr -p 360",
        "--add-service --tcp-service 198.18.0.100:80 --scheduler rr --persistent",
        "--add-service --tcp-service=198.18.0.100:80 --scheduler=rr --persistent=360",
        "-At 198.18.0.100:80 -srr -p360",
        "-A -p -t 198.18.0.100:80 -s rr",
    ] {
        assert_eq!(send(line), Request::AddService { service: want.clone() }, "{line}");
    }
    // defaults: wlc, no persistence; udp; switches
    match send("-A -u 198.18.0.100:53") {
        Request::AddService { service } => {
            assert_eq!((service.proto.as_str(), service.sched.as_str()), ("udp", "wlc"));
            assert_eq!(service.persistence, None);
        }
        r => panic!("{r:?}"),
    }
    match send("-A -t 198.18.0.100:80 -j enable --toa on") {
        Request::AddService { service } => assert!(service.synproxy && service.toa),
        r => panic!("{r:?}"),
    }
    match send("-A -t 198.18.0.100:80 --inhibit-on-failure") {
        Request::AddService { service } => assert!(service.inhibit_on_failure),
        r => panic!("{r:?}"),
    }
    // -E replaces the whole service, as ipvsadm's process_options + ipvs_update_service: no -s is
    // DEF_SCHED, no -p clears IP_VS_SVC_F_PERSISTENT (sent as 0), switches not given are off.
    let edit = |sched: &str, p: u32, toa, synproxy, inhibit| Request::EditService {
        id: id("tcp", "198.18.0.100:80"),
        sched: Some(sched.parse().unwrap()),
        persistence: Some(p),
        toa: Some(toa),
        synproxy: Some(synproxy),
        proxy_protocol: Some(ProxyProtocol::Off),
        inhibit_on_failure: Some(inhibit),
    };
    assert_eq!(send("-E -t 198.18.0.100:80 -s wrr"), edit("wrr", 0, false, false, false));
    assert_eq!(send("-E -t 198.18.0.100:80"), edit("wlc", 0, false, false, false));
    assert_eq!(send("-E -t 198.18.0.100:80 -p"), edit("wlc", 360, false, false, false));
    assert_eq!(
        send("--edit-service -t 198.18.0.100:80 -p 60 --synproxy enable --toa on --inhibit-on-failure"),
        edit("wlc", 60, true, true, true)
    );
    // parse_timeout(optarg, 1, MAX_TIMEOUT): -p 0 is refused for -E as for -A.
    assert_eq!(usage_err("-E -t 198.18.0.100:80 -p 0"), "invalid timeout value `0' specified");
    assert_eq!(usage_err("-E -u 198.18.0.100:53 -j enable"), "synproxy applies to tcp services only");
    assert_eq!(send("-D -t 198.18.0.100:80"), Request::DeleteService { id: id("tcp", "198.18.0.100:80") });
    assert_eq!(
        send("--delete-service -u 198.18.0.100:53"),
        Request::DeleteService { id: id("udp", "198.18.0.100:53") }
    );
    assert_eq!(send("-C"), Request::Clear);
    assert_eq!(send("--clear"), Request::Clear);
}

#[test]
fn real_servers() {
    let real = |addr: &str, weight, forward: &str, u, l| RealConfig {
        addr: addr.into(),
        weight,
        forward: forward.parse().unwrap(),
        u_threshold: u,
        l_threshold: l,
    };
    let vip = id("tcp", "198.18.0.100:80");
    assert_eq!(
        send("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -w 3"),
        Request::AddReal { id: vip.clone(), real: real("198.18.1.11:8080", 3, "fullnat", 0, 0) }
    );
    // no port: the service's; default weight 1; -b explicit
    assert_eq!(
        send("-a -t 198.18.0.100:80 -r 198.18.1.11 -b"),
        Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "fullnat", 0, 0) }
    );
    assert_eq!(
        send("--add-server --tcp-service 198.18.0.100:80 --real-server 198.18.1.11:80 --fullnat --weight 0 --u-threshold 100 --l-threshold 10"),
        Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 0, "fullnat", 100, 10) }
    );
    // -m/-g/-i (and their long forms) send nat/dr/tun; as ipvsadm 1.31's process_options, -g
    // and -i set the real server's port to the service's ("if not MASQ, dest.port = svc.port")
    for (line, want) in [
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -g", real("198.18.1.11:80", 1, "dr", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 --gatewaying", real("198.18.1.11:80", 1, "dr", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -i -w 2", real("198.18.1.11:80", 2, "tun", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 --ipip", real("198.18.1.11:80", 1, "tun", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11 -i", real("198.18.1.11:80", 1, "tun", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m", real("198.18.1.11:8080", 1, "nat", 0, 0)),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.11:8080 --masquerading",
            real("198.18.1.11:8080", 1, "nat", 0, 0),
        ),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11 -m", real("198.18.1.11:80", 1, "nat", 0, 0)),
        ("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 --fullnat", real("198.18.1.11:8080", 1, "fullnat", 0, 0)),
    ] {
        assert_eq!(send(line), Request::AddReal { id: vip.clone(), real: want }, "{line}");
    }
    assert_eq!(
        send("-e -t 198.18.0.100:80 -r 198.18.1.11:8080 -g -w 4"),
        Request::EditReal { id: vip.clone(), real: real("198.18.1.11:80", 4, "dr", 0, 0) }
    );
    assert_eq!(
        send("-e -u 198.18.0.100:53 -r 198.18.1.11:5353 -i"),
        Request::EditReal { id: id("udp", "198.18.0.100:53"), real: real("198.18.1.11:53", 1, "tun", 0, 0) }
    );
    assert_eq!(
        send("-e -t 198.18.0.100:80 -r 198.18.1.11:80 -w 7 -x 5"),
        Request::EditReal { id: vip.clone(), real: real("198.18.1.11:80", 7, "fullnat", 5, 0) }
    );
    assert_eq!(
        send("--edit-server -t 198.18.0.100:80 -r 198.18.1.11:80"),
        Request::EditReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "fullnat", 0, 0) }
    );
    assert_eq!(
        send("-d -t 198.18.0.100:80 -r 198.18.1.11"),
        Request::DeleteReal { id: vip.clone(), addr: "198.18.1.11:80".into() }
    );
    assert_eq!(
        send("--delete-server -u 198.18.0.100:53 -r 198.18.1.21:53"),
        Request::DeleteReal { id: id("udp", "198.18.0.100:53"), addr: "198.18.1.21:53".into() }
    );
}

#[test]
fn laddrs_and_zero() {
    let vip = id("tcp", "198.18.0.100:80");
    for line in [
        "--add-laddr -t 198.18.0.100:80 -z 198.18.1.100",
        "-P -t 198.18.0.100:80 --laddr 198.18.1.100",
        "-P -t 198.18.0.100:80 -z 198.18.1.100 -F dpdk1",
    ] {
        assert_eq!(send(line), Request::AddLaddr { id: vip.clone(), addr: "198.18.1.100".into() }, "{line}");
    }
    assert_eq!(
        send("--del-laddr -t 198.18.0.100:80 -z 198.18.1.100"),
        Request::DeleteLaddr { id: vip.clone(), addr: "198.18.1.100".into() }
    );
    assert_eq!(action("--get-laddr"), Action::GetLaddr { service: None });
    assert_eq!(action("-G -t 198.18.0.100:80"), Action::GetLaddr { service: Some(vip.clone()) });
    assert_eq!(send("-Z"), Request::Zero { id: None });
    assert_eq!(send("--zero -t 198.18.0.100:80"), Request::Zero { id: Some(vip) });
}

#[test]
fn list_forms() {
    let plain = Action::List { service: None, view: View::Plain, fmt: Format::default() };
    for line in ["", "-n", "-L", "-l", "-Ln", "-L -n", "--list --numeric", "-nL", "-L --sort"] {
        assert_eq!(action(line), plain, "{line:?}");
    }
    let stats = Action::List { service: None, view: View::Stats, fmt: Format::default() };
    assert_eq!(action("-Ln --stats"), stats);
    assert_eq!(action("-L --stats -n"), stats);
    assert_eq!(
        action("-Ln --rate"),
        Action::List { service: None, view: View::Rate, fmt: Format::default() }
    );
    let exact = Format { exact: true, ..Format::default() };
    assert_eq!(action("-Ln --exact --stats"), Action::List { service: None, view: View::Stats, fmt: exact });
    assert_eq!(action("-LnX --stats"), Action::List { service: None, view: View::Stats, fmt: exact });
    assert_eq!(
        action("-Ln --thresholds --nosort"),
        Action::List {
            service: None,
            view: View::Thresholds,
            fmt: Format { nosort: true, ..Format::default() }
        }
    );
    let one = Some(id("tcp", "198.18.0.100:80"));
    assert_eq!(
        action("-L -n -t 198.18.0.100:80"),
        Action::List { service: one.clone(), view: View::Plain, fmt: Format::default() }
    );
    assert_eq!(
        action("-Lnt 198.18.0.100:80"),
        Action::List { service: one.clone(), view: View::Plain, fmt: Format::default() }
    );
    let conns = Action::ListConns { service: None, fmt: Format::default() };
    for line in ["-Lnc", "-Lcn", "-L -n -c", "-lnc", "--list --numeric --connection", "-c -L"] {
        assert_eq!(action(line), conns, "{line}");
    }
    assert_eq!(
        action("-Lnc --show-lip -t 198.18.0.100:80"),
        Action::ListConns { service: one, fmt: Format { show_lip: true, ..Format::default() } }
    );
    assert_eq!(action("-S"), Action::Save { fmt: Format::default() });
    assert_eq!(action("--save -n"), Action::Save { fmt: Format::default() });
    assert_eq!(action("-Sn"), Action::Save { fmt: Format::default() });
    assert_eq!(action("-R"), Action::Restore);
    assert_eq!(action("--restore"), Action::Restore);
    assert_eq!(action("-h"), Action::Help);
    assert_eq!(action("--help"), Action::Help);
    assert_eq!(action("-v"), Action::Version);
}

#[test]
fn socket_path() {
    assert_eq!(parse("-Ln").unwrap().socket, defaults::SOCKET);
    assert_eq!(parse_args(&["-Ln"], Some("/tmp/a.sock")).unwrap().socket, "/tmp/a.sock");
    assert_eq!(parse_args(&["-Ln"], Some("")).unwrap().socket, defaults::SOCKET);
    assert_eq!(
        parse_args(&["-Ln", "--socket", "/tmp/b.sock"], Some("/tmp/a.sock")).unwrap().socket,
        "/tmp/b.sock"
    );
    assert_eq!(parse_args(&["--socket=/tmp/b.sock"], None).unwrap().socket, "/tmp/b.sock");
    assert!(matches!(parse_args(&["--socket=/tmp/b.sock"], None).unwrap().action, Action::List { .. }));
}

#[test]
fn bad_input_is_one_line_before_anything_is_sent() {
    let cases = [
        ("-K", "unknown option -K"),
        ("-Lk", "unknown option -k"),
        ("--bogus", "unknown option --bogus"),
        ("-A", "You need to supply the 'service-address' option for the 'add-service' command"),
        ("-D", "'service-address'"),
        ("-a -r 198.18.1.11:80", "'service-address'"),
        ("-a -t 198.18.0.100:80", "You need to supply the 'real-server' option for the 'add-server' command"),
        ("-e -t 198.18.0.100:80 -w 2", "'real-server'"),
        ("-d -t 198.18.0.100:80", "'real-server'"),
        ("--add-laddr -t 198.18.0.100:80", "'local-address'"),
        ("-A -t 300.1.1.1:80", "\"300.1.1.1\" is not an IPv4 address"),
        ("-A -t 1.2.3.4:0", "bad port \"0\""),
        ("-A -t 1.2.3.4:99999", "bad port \"99999\""),
        ("-A -t 1.2.3.4", "is not ADDRESS:PORT"),
        ("-A -t host.example:80", "is not an IPv4 address"),
        ("-a -t 1.2.3.4:80 -r 300.1.1.1:80", "illegal real server"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1:0", "illegal real server"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1:65536", "illegal real server"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w 65536", "illegal weight specified"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w -1", "illegal weight specified"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w x", "illegal weight specified"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -x -3", "illegal u_threshold"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -y 1e3", "illegal l_threshold"),
        ("-A -t 1.2.3.4:80 -s xyz", "unknown scheduler \"xyz\""),
        ("-A -t 1.2.3.4:80 -s WRR", "unknown scheduler"),
        ("-A -t 1.2.3.4:80 -p 0", "invalid timeout value `0'"),
        ("-A -t 1.2.3.4:80 -p 99999999", "invalid timeout value"),
        ("-A -t 1.2.3.4:80 -j yes", "synproxy switch must be enable or disable"),
        ("-A -u 1.2.3.4:53 -j enable", "tcp services only"),
        ("-A -t 1.2.3.4:80 --toa maybe", "--toa must be on or off"),
        ("-P -t 1.2.3.4:80 -z 1.2.3", "illegal local address"),
        ("-A -D -t 1.2.3.4:80", "multiple commands specified"),
        ("-L -S", "multiple commands specified"),
        ("-Ln -a -t 1.2.3.4:80 -r 1.1.1.1", "multiple commands specified"),
        ("-A -t 1.2.3.4:80 -u 1.2.3.4:53", "multiple 'service-address' options specified"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -b -m", "multiple 'forwarding-method' options specified"),
        ("-A -t 1.2.3.4:80 -w 3", "Illegal 'weight' option with the 'add-service' command"),
        ("-a -t 1.2.3.4:80 -r 1.1.1.1 -s rr", "Illegal 'scheduler' option with the 'add-server' command"),
        ("-D -t 1.2.3.4:80 -s rr", "Illegal 'scheduler'"),
        ("-C -t 1.2.3.4:80", "Illegal 'service-address' option with the 'flush' command"),
        ("-S --stats", "Illegal 'stats' option with the 'save' command"),
        ("-Z -r 1.1.1.1", "Illegal 'real-server'"),
        ("-Lnc --stats", "options conflicts in the list command"),
        ("-Ln --stats --rate", "options conflicts in the list command"),
        ("-Ln --show-lip", "-c"),
        ("-t 1.2.3.4:80", "no command specified"),
        ("-L extra", "unexpected argument extra"),
        ("-L -- extra", "unexpected argument extra"),
        ("-A -t", "option -t needs a value"),
        ("--list=yes", "takes no value"),
        ("-A -f 1", "fwmark services are not supported"),
        ("-A -t 1.2.3.4:80 -M 255.255.255.0", "netmasks are not supported"),
    ];
    for (line, want) in cases {
        let got = usage_err(line);
        assert!(got.contains(want), "{line}: {got:?} lacks {want:?}");
    }
    assert_eq!(AdmError::Usage("x".into()).exit_code(), 2);
    assert_eq!(AdmError::Daemon("x".into()).exit_code(), 1);
    assert_eq!(AdmError::Io("x".into()).exit_code(), 1);
}

#[test]
fn largenum_matches_print_largenum() {
    assert_eq!(largenum(0, false), "        0");
    assert_eq!(largenum(99_999_999, false), " 99999999");
    assert_eq!(largenum(100_000_000, false), "  100000K");
    assert_eq!(largenum(999_999_999, false), "  999999K");
    assert_eq!(largenum(1_000_000_000, false), "    1000M");
    assert_eq!(largenum(99_999_999_999, false), "   99999M");
    assert_eq!(largenum(100_000_000_000, false), "     100G");
    assert_eq!(largenum(100_000_000_000_000, false), "     100T");
    assert_eq!(largenum(u64::MAX, false), "18446744T");
    assert_eq!(largenum(12345678, true), " 12345678");
    assert_eq!(largenum(123456789, true), " 123456789");
    assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
}

#[test]
fn long_names_are_cut_as_ipvsadm_cuts_them() {
    assert_eq!(svc_name(Proto::Tcp, "1.2.3.4:80"), "TCP  1.2.3.4:80");
    assert_eq!(svc_name(Proto::Udp, &"x".repeat(40)).len(), 33);
    assert_eq!(dname(&"y".repeat(40)).len(), 28);
    // ipvsadm cuts only when the family is not AF_INET6.
    let v6 = "[2001:2:0:ffff:ffff:ffff:ffff:ff00]:65535";
    assert_eq!(svc_name(Proto::Tcp, v6), format!("TCP  {v6}"));
    assert_eq!(dname(v6), v6);
}

#[test]
fn ipv6_services_real_servers_and_local_addresses() {
    let vip = id("tcp", "[2001:2::100]:80");
    let real = |addr: &str, forward: &str| RealConfig {
        addr: addr.into(),
        weight: 1,
        forward: forward.parse().unwrap(),
        u_threshold: 0,
        l_threshold: 0,
    };
    match send("-A -t [2001:2::100]:80 -s rr") {
        Request::AddService { service } => assert_eq!(service.vip, "[2001:2::100]:80"),
        other => panic!("{other:?}"),
    }
    // The address is canonical (compressed) whatever the spelling.
    assert_eq!(send("-D -t [2001:0002:0:0::0100]:80"), Request::DeleteService { id: vip.clone() });
    assert_eq!(send("-D -u [2001:2::100]:53"), Request::DeleteService { id: id("udp", "[2001:2::100]:53") });
    for (line, want) in [
        ("-a -t [2001:2::100]:80 -r [2001:2:0:1::11]:8080", real("[2001:2:0:1::11]:8080", "fullnat")),
        // A bare IPv6 address has no port: the service's (ipvsadm's parse_service).
        ("-a -t [2001:2::100]:80 -r 2001:2:0:1::11", real("[2001:2:0:1::11]:80", "fullnat")),
        ("-a -t [2001:2::100]:80 -r [2001:2:0:1::11]:8080 -i", real("[2001:2:0:1::11]:80", "tun")),
        ("-a -t [2001:2::100]:80 -r 2001:2:0:1::11 -g", real("[2001:2:0:1::11]:80", "dr")),
        // NAT64: an IPv4 real server of an IPv6 service.
        ("-a -t [2001:2::100]:80 -r 198.18.1.11 -b", real("198.18.1.11:80", "fullnat")),
    ] {
        assert_eq!(send(line), Request::AddReal { id: vip.clone(), real: want }, "{line}");
    }
    assert_eq!(
        send("-d -t [2001:2::100]:80 -r 2001:2:0:1::11"),
        Request::DeleteReal { id: vip.clone(), addr: "[2001:2:0:1::11]:80".into() }
    );
    assert_eq!(
        send("--add-laddr -t [2001:2::100]:80 -z 2001:2:0:1::100"),
        Request::AddLaddr { id: vip.clone(), addr: "2001:2:0:1::100".into() }
    );
    assert_eq!(
        send("--del-laddr -t [2001:2::100]:80 --laddr 2001:2:0:1::100"),
        Request::DeleteLaddr { id: vip.clone(), addr: "2001:2:0:1::100".into() }
    );
    assert_eq!(action("-G -t [2001:2::100]:80"), Action::GetLaddr { service: Some(vip.clone()) });
    assert_eq!(send("-Z -t [2001:2::100]:80"), Request::Zero { id: Some(vip) });
    for (line, want) in [
        ("-A -t 2001:2::100:80", "write an IPv6 service as [ADDRESS]:PORT"),
        ("-A -t [2001:2::100]", "is not [IPv6]:PORT"),
        ("-A -t [2001:2::100]:0", "bad port \"0\""),
        ("-A -t [2001:2::zz]:80", "\"2001:2::zz\" is not an IPv6 address"),
        ("-a -t [2001:2::100]:80 -r [2001:2:0:1::11]", "illegal real server"),
        ("-P -t [2001:2::100]:80 -z [2001:2:0:1::100]", "illegal local address"),
    ] {
        let got = usage_err(line);
        assert!(got.contains(want), "{line}: {got:?} lacks {want:?}");
    }
}

#[test]
fn rules_parse_errors_name_the_line() {
    let text = "# saved\n\n-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 1.1.1.1:80 -b -w 1\n-a -t 1.2.3.5:80 -r 1.1.1.1:80\n";
    let e = parse_rules(text).unwrap_err().to_string();
    assert!(e.starts_with("line 5: ") && e.contains("not defined"), "{e}");
    let e = parse_rules("-A -t 1.2.3.4:80\n-A -t 1.2.3.4:80\n").unwrap_err().to_string();
    assert!(e.starts_with("line 2: ") && e.contains("twice"), "{e}");
    let e = parse_rules("-A -t 1.2.3.4:80\n-D -t 1.2.3.4:80\n").unwrap_err().to_string();
    assert!(e.contains("line 2: only -A, -a, --add-laddr, --set and -C"), "{e}");
    let e = parse_rules("-A -t 1.2.3.4:80 -s bogus\n").unwrap_err().to_string();
    assert!(e.starts_with("line 1: unknown scheduler"), "{e}");
    // ipvsadm-save style with a program name, -C, -g as dr
    let s = parse_rules(
        "ipvsadm -C\nipvsadm -A -t 1.2.3.4:80 -s wlc\nipvsadm -a -t 1.2.3.4:80 -r 1.1.1.1:80 -g -w 1\n",
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].reals[0].forward, Forward::Route);
    // -C drops what came before
    assert!(parse_rules("-A -t 1.2.3.4:80\n-C\n").unwrap().is_empty());
    assert_eq!(restore_toml(&[]).unwrap().trim(), "services = []");
}

/// A fake rvsd: answers from a closure and records every request.
struct Fake<F: FnMut(&Request) -> Response> {
    sent: Vec<Request>,
    answer: F,
}

impl<F: FnMut(&Request) -> Response> Transport for Fake<F> {
    fn call(&mut self, req: &Request) -> Result<Value, AdmError> {
        self.sent.push(req.clone());
        Ok(serde_json::from_str(&(self.answer)(req).to_line()).unwrap())
    }
}

fn run<F: FnMut(&Request) -> Response>(
    line: &str,
    stdin: &str,
    answer: F,
) -> (Result<String, AdmError>, Vec<Request>) {
    let inv = parse(line).unwrap();
    let mut fake = Fake { sent: vec![], answer };
    let mut out = Vec::new();
    let r = execute(&inv, &mut fake, &mut stdin.as_bytes(), &mut out);
    (r.map(|_| String::from_utf8(out).unwrap()), fake.sent)
}

fn svc(proto: &str, vip: &str) -> ServiceInfo {
    ServiceInfo {
        proto: proto.parse().unwrap(),
        vip: vip.into(),
        sched: Sched::Wlc,
        persistence: None,
        toa: false,
        synproxy: false,
        proxy_protocol: ProxyProtocol::Off,
        inhibit_on_failure: false,
        laddrs: vec!["10.0.0.9".into()],
        reals: vec![RealInfo {
            addr: "10.0.1.1:80".into(),
            weight: 1,
            forward: Forward::Fullnat,
            u_threshold: 0,
            l_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            health: "up".into(),
        }],
    }
}

#[test]
fn changes_send_one_request_and_print_nothing() {
    let (out, sent) = run("-A -t 1.2.3.4:80 -s rr", "", |_| Response::ok(Reply::Applied { epoch: 1 }));
    assert_eq!(out.unwrap(), "");
    assert_eq!(sent.len(), 1);
    // a refusal without a reason code: rvsd's line, ipvsadm's exit status for a failed command
    let (out, _) = run("-D -t 1.2.3.4:80", "", |_| Response::error("no such service tcp 1.2.3.4:80"));
    assert_eq!(
        out.unwrap_err(),
        AdmError::Ipvs { msg: "no such service tcp 1.2.3.4:80".into(), status: 255 }
    );
    // with a code: ipvs_strerror's text for the command
    let refuse = |code| move |_: &Request| Response::refused(Refusal::new(code, "rvsd's own words"));
    for (line, code, want) in [
        ("-D -t 1.2.3.4:80", ErrorCode::NoSuchService, "No such service"),
        ("-E -t 1.2.3.4:80", ErrorCode::NoSuchService, "No such service"),
        ("-Z -t 1.2.3.4:80", ErrorCode::NoSuchService, "No such service"),
        ("-A -t 1.2.3.4:80", ErrorCode::ServiceExists, "Service already exists"),
        ("-a -t 1.2.3.4:80 -r 10.0.0.1", ErrorCode::NoSuchService, "Service not defined"),
        ("-a -t 1.2.3.4:80 -r 10.0.0.1", ErrorCode::RealExists, "Destination already exists"),
        ("-e -t 1.2.3.4:80 -r 10.0.0.1", ErrorCode::NoSuchReal, "No such destination"),
        ("-d -t 1.2.3.4:80 -r 10.0.0.1", ErrorCode::NoSuchReal, "No such destination"),
        ("-d -t 1.2.3.4:80 -r 10.0.0.1", ErrorCode::NoSuchService, "Service not defined"),
        ("-P -t 1.2.3.4:80 -z 10.0.0.9", ErrorCode::LaddrExists, "rvsd's own words"),
    ] {
        let (out, _) = run(line, "", refuse(code));
        assert_eq!(out.unwrap_err(), AdmError::Ipvs { msg: want.into(), status: 255 }, "{line}");
    }
}

#[test]
fn timeouts_and_the_sync_daemon() {
    let answer = |req: &Request| match req {
        Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
        _ => Response::ok(Reply::Applied { epoch: 1 }),
    };
    let (out, _) = run("-L --timeout", "", answer);
    assert_eq!(out.unwrap(), "Timeout (tcp tcpfin udp): 900 120 300\n");
    let (out, sent) = run("--set 600 30 0", "", answer);
    assert_eq!(out.unwrap(), "");
    assert_eq!(sent, [Request::SetTimeouts { tcp: 600, tcpfin: 30, udp: 0 }]);
    use crate::api::{SyncDaemonInfo, SyncRoleName};
    let (out, sent) = run("--start-daemon master --mcast-interface y1 --syncid 7", "", answer);
    assert_eq!(out.unwrap(), "");
    assert_eq!(
        sent,
        [Request::SyncStart { role: SyncRoleName::Master, interface: Some("y1".into()), syncid: Some(7) }]
    );
    let (_, sent) = run("--start-daemon backup", "", answer);
    assert_eq!(sent, [Request::SyncStart { role: SyncRoleName::Backup, interface: None, syncid: None }]);
    let (_, sent) = run("--stop-daemon backup", "", answer);
    assert_eq!(sent, [Request::SyncStop { role: SyncRoleName::Backup }]);
    assert_eq!(usage_err("--start-daemon primary"), "illegal start-daemon parameter specified");
    assert_eq!(usage_err("--start-daemon master --syncid 256"), "illegal syncid specified");
    assert!(parse("--stop-daemon master --syncid 1").is_err(), "--syncid is illegal with --stop-daemon");
    let daemons = |req: &Request| match req {
        Request::SyncStatus => Response::ok(Reply::Sync {
            daemons: vec![
                SyncDaemonInfo {
                    role: SyncRoleName::Backup,
                    interface: "y2".into(),
                    syncid: 7,
                    maxlen: 1472,
                    group: "224.0.0.81".into(),
                    port: 8848,
                    ttl: 1,
                    peer: None,
                },
                SyncDaemonInfo {
                    role: SyncRoleName::Master,
                    interface: "y1".into(),
                    syncid: 0,
                    maxlen: 1472,
                    group: "224.0.0.81".into(),
                    port: 8848,
                    ttl: 1,
                    peer: None,
                },
            ],
            counters: vec![],
        }),
        _ => Response::ok(Reply::Applied { epoch: 1 }),
    };
    let (out, _) = run("-L --daemon", "", daemons);
    assert_eq!(
        out.unwrap(),
        "master sync daemon (mcast=y1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
         backup sync daemon (mcast=y2, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
}

#[test]
fn conns_are_fetched_in_pages() {
    let total = 2500u64;
    let (out, sent) = run("-Lnc", "", |req| match req {
        Request::ListConns { offset, limit, .. } => {
            let n = (total - offset).min(limit.unwrap());
            let conns = (0..n)
                .map(|i| ConnInfo {
                    proto: Proto::Tcp,
                    client: format!("10.9.{}.{}:1000", (offset + i) / 256, (offset + i) % 256),
                    vip: "1.2.3.4:80".into(),
                    lip: "10.0.0.9:5000".into(),
                    rs: "10.0.1.1:80".into(),
                    forward: Forward::Fullnat,
                    state: "ESTABLISHED".into(),
                    expires_ms: 1000,
                    worker: 0,
                })
                .collect();
            Response::ok(Reply::Conns { total, conns })
        }
        Request::ListTemplates { offset, .. } => Response::ok(Reply::Templates {
            total: 1,
            templates: if *offset == 0 {
                vec![TemplateInfo {
                    proto: Proto::Tcp,
                    client: "10.9.9.9:0".into(),
                    vip: "1.2.3.4:80".into(),
                    rs: "10.0.1.1:80".into(),
                    expires_ms: 360_000,
                    worker: 0,
                }]
            } else {
                vec![]
            },
        }),
        _ => Response::error("unexpected"),
    });
    let out = out.unwrap();
    assert_eq!(out.lines().count(), 2 + total as usize + 1);
    // the template is a connection in state NONE with client port 0, as LVS lists it
    assert!(
        out.ends_with("TCP 06:00  NONE        10.9.9.9:0         1.2.3.4:80         10.0.1.1:80\n"),
        "{out}"
    );
    let sent: Vec<Request> =
        sent.into_iter().filter(|r| !matches!(r, Request::ListTemplates { .. })).collect();
    let offsets: Vec<u64> = sent
        .iter()
        .map(|r| match r {
            Request::ListConns { offset, limit: Some(1000), id: None } => *offset,
            r => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(offsets, [0, 1000, 2000]);
    // an empty table is one request, and one for the templates
    let (out, sent) = run("-Lnc", "", |req| match req {
        Request::ListTemplates { .. } => Response::ok(Reply::Templates { total: 0, templates: vec![] }),
        _ => Response::ok(Reply::Conns { total: 0, conns: vec![] }),
    });
    assert_eq!(out.unwrap().lines().count(), 2);
    assert_eq!(sent.len(), 2);
}

#[test]
fn stats_use_service_stats_and_list_services() {
    let (out, sent) = run("-Ln --stats", "", |req| match req {
        Request::ListServices => Response::ok(Reply::Services { services: vec![svc("tcp", "1.2.3.4:80")] }),
        // an empty list is what an untagged `services: []` looks like either way
        Request::ServiceStats => Response::ok(Reply::ServiceStats { services: vec![] }),
        _ => Response::error("unexpected"),
    });
    assert_eq!(sent, [Request::ListServices, Request::ServiceStats]);
    let out = out.unwrap();
    let zeros = "        0".repeat(5);
    assert!(out.contains(&format!("{:<33}{zeros}\n", "TCP  1.2.3.4:80")), "{out}");
}

#[test]
fn list_one_service_or_say_it_is_missing() {
    let answer = |_: &Request| {
        Response::ok(Reply::Services { services: vec![svc("tcp", "1.2.3.4:80"), svc("udp", "1.2.3.4:53")] })
    };
    let (out, _) = run("-Ln -u 1.2.3.4:53", "", answer);
    let out = out.unwrap();
    assert!(
        out.starts_with("Prot LocalAddress:Port")
            && out.contains("UDP  1.2.3.4:53 wlc")
            && !out.contains("TCP")
    );
    let (out, _) = run("-Ln -t 9.9.9.9:80", "", answer);
    // list_service: ipvs_strerror(ESRCH), exit 1
    assert_eq!(out.unwrap_err(), AdmError::Ipvs { msg: "No such service".into(), status: 1 });
}

#[test]
fn restore_sends_one_atomic_request() {
    let rules = "-A -t 1.2.3.4:80 -s rr\n--add-laddr -t 1.2.3.4:80 -z 10.0.0.9\n-a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 1\n-A -u 1.2.3.4:53 -s wlc\n";
    // The running configuration has a health check on the TCP service, which rules cannot express.
    let running = "[[ports]]\nname = \"p\"\ndevice = \"net_ring0\"\naddr = \"1.2.3.1/24\"\n\n[[services]]\nproto = \"tcp\"\nvip = \"1.2.3.4:80\"\ncheck = { kind = \"tcp\" }\nquorum = 2\nhysteresis = 1\nsorry_server = { addr = \"10.0.1.9:80\" }\n";
    let answer = |req: &Request| match req {
        Request::Save => Response::ok(Reply::Config { config: running.into() }),
        _ => Response::ok(Reply::Applied { epoch: 7 }),
    };
    let (out, sent) = run("-R", rules, answer);
    assert_eq!(out.unwrap(), "");
    assert_eq!(sent.len(), 2, "one read of the running checks, one atomic restore");
    assert_eq!(sent[0], Request::Save);
    match &sent[1] {
        Request::Restore { config, timeouts: None } => {
            let services = services_from_toml(config).unwrap();
            let mut want = parse_rules(rules).unwrap();
            assert_eq!(services[0].check.as_ref().map(|c| c.kind.as_str()), Some("tcp"), "check kept");
            want[0].check = services[0].check.clone();
            assert_eq!((services[0].quorum, services[0].hysteresis), (2, 1), "quorum kept");
            assert_eq!(services[0].sorry_server.as_ref().map(|s| s.addr.as_str()), Some("10.0.1.9:80"));
            (want[0].quorum, want[0].hysteresis, want[0].sorry_server) =
                (2, 1, services[0].sorry_server.clone());
            assert_eq!(services, want);
            assert_eq!(services.len(), 2);
            assert!(services[1].check.is_none());
            assert!(!config.contains("[workers]") && !config.contains("[[ports]]"), "{config}");
        }
        r => panic!("{r:?}"),
    }
    // bad rules: nothing is sent
    let (out, sent) = run("-R", "-A -t 1.2.3.4:80\n-a -t 1.2.3.4:80\n", |_| Response::error("unreachable"));
    assert!(matches!(out, Err(AdmError::Usage(m)) if m.starts_with("line 2:")));
    assert!(sent.is_empty());
}

#[test]
fn save_and_get_laddr() {
    let answer = |req: &Request| match req {
        Request::ListServices => Response::ok(Reply::Services { services: vec![svc("tcp", "1.2.3.4:80")] }),
        Request::ListLaddrs { .. } => Response::ok(Reply::Laddrs { laddrs: vec!["10.0.0.9".into()] }),
        Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
        _ => Response::error("unexpected"),
    };
    let (out, _) = run("-S -n", "", answer);
    assert_eq!(
        out.unwrap(),
        "-A -t 1.2.3.4:80 -s wlc\n--add-laddr -t 1.2.3.4:80 -z 10.0.0.9\n-a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 1\n"
    );
    let (all, _) = run("--get-laddr", "", answer);
    let (one, sent) = run("-G -t 1.2.3.4:80", "", answer);
    assert_eq!(all.unwrap(), one.unwrap());
    assert_eq!(sent, [Request::ListLaddrs { id: id("tcp", "1.2.3.4:80") }]);
}

/// keepalived's quorum as ipvsadm shows it: the sorry server listed while in the table, the
/// real servers it displaced not (or at weight 0 under inhibit_on_failure); `-S` saves the real
/// servers, not the sorry server.
#[test]
fn displaced_reals_and_the_sorry_server() {
    let answer_with = |s: ServiceInfo| {
        move |req: &Request| match req {
            Request::ListServices => Response::ok(Reply::Services { services: vec![s.clone()] }),
            Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
            _ => Response::error("unexpected"),
        }
    };
    let mut s = svc("tcp", "1.2.3.4:80");
    s.reals[0].health = "displaced".into();
    s.reals[0].weight = 3;
    let sorry =
        RealInfo { addr: "10.0.1.9:80".into(), weight: 1, health: "sorry".into(), ..s.reals[0].clone() };
    s.reals.push(sorry);
    let (out, _) = run("-Ln", "", answer_with(s.clone()));
    let out = out.unwrap();
    assert!(!out.contains("10.0.1.1:80"), "{out}");
    assert!(out.contains("  -> 10.0.1.9:80                  FullNat 1      0 "), "{out}");
    let (out, _) = run("-S -n", "", answer_with(s.clone()));
    let out = out.unwrap();
    assert!(out.contains("-a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 3\n") && !out.contains("10.0.1.9"), "{out}");
    s.inhibit_on_failure = true;
    let (out, _) = run("-Ln", "", answer_with(s));
    let out = out.unwrap();
    assert!(out.contains("  -> 10.0.1.1:80                  FullNat 0      0 "), "{out}");
}

#[test]
fn help_and_version_need_no_daemon() {
    let (out, sent) = run("--help", "", |_| Response::error("unreachable"));
    let out = out.unwrap();
    assert!(out.contains("--add-laddr") && out.contains("default forwarding method is fullnat"));
    assert!(sent.is_empty());
}

#[test]
fn ports_spellings_and_conflicts() {
    for line in
        ["--ports", "-L --ports", "-Ln --ports", "--list --ports", "-n --ports", "--ports --socket /x"]
    {
        assert_eq!(action(line), Action::ListPorts, "{line}");
    }
    assert_eq!(
        usage_err("-L --ports -c"),
        "The option 'connection' conflicts with the 'ports' option in the 'list' command"
    );
    assert_eq!(
        usage_err("--ports --stats"),
        "The option 'stats' conflicts with the 'ports' option in the 'list' command"
    );
    assert_eq!(usage_err("-Lt 1.2.3.4:80 --ports").lines().count(), 1);
    assert_eq!(
        usage_err("-A -t 1.2.3.4:80 --ports"),
        "Illegal 'ports' option with the 'add-service' command"
    );
    assert_eq!(usage_err("--ports --ports"), "multiple 'ports' options specified");
}

#[test]
fn ports_are_one_list_ports_request_printed_as_dpip() {
    use crate::api::{Duplex, LinkInfo, PortCounters, PortInfo};
    let port = PortInfo {
        name: "client".into(),
        device: "net_af_packet0,iface=gc".into(),
        driver: "net_af_packet".into(),
        mac: "02:00:5e:00:53:01".into(),
        addr: "198.18.0.1/24".into(),
        addr6: None,
        mtu: 1500,
        rx_queues: 2,
        tx_queues: 2,
        link: Some(LinkInfo {
            up: true,
            speed_mbps: Some(10000),
            duplex: Some(Duplex::Full),
            autoneg: false,
        }),
        stats: Some(PortCounters { rx_packets: 7, ..Default::default() }),
    };
    let reply = Reply::Ports { ports: vec![port] };
    let (out, sent) = run("--ports", "", |_| Response::ok(reply.clone()));
    assert_eq!(sent, [Request::ListPorts]);
    let out = out.unwrap();
    assert!(
        out.starts_with("1: client: device net_af_packet0,iface=gc driver net_af_packet mtu 1500"),
        "{out}"
    );
    assert!(out.contains(
        "    UP 10000 Mbps full-duplex fixed-nego\n    addr 02:00:5e:00:53:01 inet 198.18.0.1/24\n"
    ));
    assert!(out.contains(&format!("    {:<20}{:<20}{:<20}0\n", 7, 0, 0)), "{out}");
    // an older rvsd without list_ports: its one-line refusal, exit 1
    let (out, _) = run("--ports", "", |_| Response::error("bad request: unknown variant `list_ports`"));
    let e = out.unwrap_err();
    assert_eq!((e.exit_code(), e.to_string().lines().count()), (1, 1), "{e}");
}

#[test]
fn capture_options_build_typed_requests() {
    use crate::capture::{CaptureFilter, CaptureRequest, Direction};
    let r = action(
        "--capture-start server --direction tx --host 198.18.1.11 --cport 80 --proto tcp --count 100 \
         --max-bytes 5000 --snaplen 128 --file /tmp/c.pcap",
    );
    assert_eq!(
        r,
        Action::Capture(Request::CaptureStart {
            capture: CaptureRequest {
                port: "server".into(),
                direction: Direction::Tx,
                filter: CaptureFilter {
                    host: Some("198.18.1.11".into()),
                    port: Some(80),
                    proto: Some(Proto::Tcp)
                },
                max_packets: Some(100),
                max_bytes: Some(5000),
                snaplen: Some(128),
                file: "/tmp/c.pcap".into(),
            }
        })
    );
    // Defaults are the daemon's named ones: nothing sent for what is not given.
    match action("--capture-start client --file /tmp/d.pcap") {
        Action::Capture(Request::CaptureStart { capture }) => {
            assert_eq!(
                (capture.direction, capture.max_packets, capture.snaplen),
                (Direction::Both, None, None)
            );
            assert!(capture.validate().is_ok());
        }
        other => panic!("{other:?}"),
    }
    match action("--capture-start client --file rel.pcap") {
        Action::Capture(Request::CaptureStart { capture }) => {
            assert!(capture.file.starts_with('/') && capture.file.ends_with("/rel.pcap"), "{}", capture.file)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(action("--capture-stop"), Action::Capture(Request::CaptureStop));
    assert_eq!(action("--capture-status"), Action::Capture(Request::CaptureStatus));
}

#[test]
fn capture_options_refuse_bad_values_in_one_line() {
    for (line, msg) in [
        ("--capture-start server", "You need to supply the 'file' option for the 'capture-start' command"),
        ("--capture-start server --file /x --host 1.2.3", "--host must be an IPv4 address"),
        ("--capture-start server --file /x --cport 0", "--cport must be a port 1 to 65535"),
        ("--capture-start server --file /x --cport 70000", "--cport must be a port 1 to 65535"),
        ("--capture-start server --file /x --proto icmp", "unknown protocol \"icmp\""),
        ("--capture-start server --file /x --direction up", "--direction must be rx, tx or both"),
        ("--capture-start server --file /x --count many", "--count must be a whole number"),
        ("--capture-stop --file /x", "Illegal 'file' option with the 'capture-stop' command"),
        ("-L --host 198.18.1.1", "Illegal 'host' option with the 'list' command"),
        ("--capture-start", "option --capture-start needs a value"),
    ] {
        let e = usage_err(line);
        assert!(e.contains(msg), "{line}: {e}");
        assert!(!e.contains('\n'), "{line}: {e}");
    }
}

#[test]
fn capture_status_prints_one_line() {
    use crate::capture::{CaptureStatus, Direction};
    let s = CaptureStatus {
        state: "finished".into(),
        port: "server".into(),
        direction: Direction::Both,
        file: "/tmp/c.pcap".into(),
        packets: 100,
        bytes: 9012,
        dropped: 0,
        reason: Some("max_packets".into()),
    };
    assert_eq!(
        s.line(),
        "capture finished (max_packets): port server both -> /tmp/c.pcap: 100 packets, 9012 bytes, 0 dropped\n"
    );
    assert_eq!(
        CaptureStatus { state: "idle".into(), ..Default::default() }.line(),
        "capture idle: none since rvsd started\n"
    );
}

fn real_info(addr: &str, weight: u32, forward: Forward) -> RealInfo {
    RealInfo { addr: addr.into(), weight, forward, ..svc("tcp", "1.2.3.4:80").reals[0].clone() }
}

/// A service mixing the four methods: `-Ln` names them as ipvsadm's `fwd_name` (DPVS's FullNat
/// beside Masq, Route, Tunnel), `-S` writes their switches, and `-R` reads that back unchanged.
#[test]
fn methods_are_listed_saved_and_restored() {
    let mut s = svc("tcp", "1.2.3.4:80");
    s.reals = vec![
        real_info("10.0.1.1:80", 1, Forward::Fullnat),
        real_info("10.0.1.2:8080", 2, Forward::Masq),
        real_info("10.0.1.3:80", 3, Forward::Route),
        real_info("10.0.9.4:80", 4, Forward::Tunnel),
    ];
    let services = vec![s];
    let answer = |req: &Request| match req {
        Request::ListServices => Response::ok(Reply::Services { services: services.clone() }),
        Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
        _ => Response::error("unexpected"),
    };
    let (out, _) = run("-Ln", "", answer);
    let out = out.unwrap();
    // print_service_entry: "  -> %-28s %-7s %-6d %-10u %-10u\n"
    for (addr, name, w) in [
        ("10.0.1.1:80", "FullNat", 1),
        ("10.0.1.2:8080", "Masq", 2),
        ("10.0.1.3:80", "Route", 3),
        ("10.0.9.4:80", "Tunnel", 4),
    ] {
        let line = format!("  -> {addr:<28} {name:<7} {w:<6} {:<10} {:<10}\n", 0, 0);
        assert!(out.contains(&line), "{line:?} not in\n{out}");
    }
    let (saved, _) = run("-S -n", "", answer);
    let saved = saved.unwrap();
    assert_eq!(
        saved,
        "-A -t 1.2.3.4:80 -s wlc\n--add-laddr -t 1.2.3.4:80 -z 10.0.0.9\n\
         -a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 1\n\
         -a -t 1.2.3.4:80 -r 10.0.1.2:8080 -m -w 2\n\
         -a -t 1.2.3.4:80 -r 10.0.1.3:80 -g -w 3\n\
         -a -t 1.2.3.4:80 -r 10.0.9.4:80 -i -w 4\n"
    );
    let restored = parse_rules(&saved).unwrap();
    let got: Vec<(&str, u32, Forward)> =
        restored[0].reals.iter().map(|r| (r.addr.as_str(), r.weight, r.forward)).collect();
    let want: Vec<(&str, u32, Forward)> =
        services[0].reals.iter().map(|r| (r.addr.as_str(), r.weight, r.forward)).collect();
    assert_eq!(got, want);
    // -R sends them as they were saved
    let (out, sent) = run("-R", &saved, |req| match req {
        Request::Save => Response::ok(Reply::Config { config: String::new() }),
        _ => Response::ok(Reply::Applied { epoch: 1 }),
    });
    out.unwrap();
    match &sent[1] {
        Request::Restore { config, .. } => assert_eq!(services_from_toml(config).unwrap(), restored),
        r => panic!("{r:?}"),
    }
}

/// ipvsadm's -Lc has no method column, and rvsadm's output stays ipvsadm's; `--show-lip` leaves
/// the local column blank for a connection with no local address (NAT, DR, TUN).
#[test]
fn conns_of_every_method_list_as_ipvsadm() {
    let conn = |rs: &str, lip: &str, forward| ConnInfo {
        proto: Proto::Tcp,
        client: "203.0.113.7:51234".into(),
        vip: "1.2.3.4:80".into(),
        lip: lip.into(),
        rs: rs.into(),
        forward,
        state: "ESTABLISHED".into(),
        expires_ms: 899_500,
        worker: 0,
    };
    let conns = vec![
        conn("10.0.1.1:80", "10.0.0.9:40001", Forward::Fullnat),
        conn("10.0.1.2:8080", "", Forward::Masq),
        conn("10.0.1.3:80", "", Forward::Route),
    ];
    let answer = |req: &Request| match req {
        Request::ListConns { .. } => Response::ok(Reply::Conns { total: 3, conns: conns.clone() }),
        Request::ListTemplates { .. } => Response::ok(Reply::Templates { total: 0, templates: vec![] }),
        _ => Response::error("unexpected"),
    };
    let (out, _) = run("-Lnc", "", answer);
    assert_eq!(
        out.unwrap(),
        "IPVS connection entries\n\
         pro expire state       source             virtual            destination\n\
         TCP 14:59  ESTABLISHED 203.0.113.7:51234  1.2.3.4:80         10.0.1.1:80\n\
         TCP 14:59  ESTABLISHED 203.0.113.7:51234  1.2.3.4:80         10.0.1.2:8080\n\
         TCP 14:59  ESTABLISHED 203.0.113.7:51234  1.2.3.4:80         10.0.1.3:80\n"
    );
    let (out, _) = run("-Lnc --show-lip", "", answer);
    let out = out.unwrap();
    assert!(out.contains("1.2.3.4:80         10.0.0.9:40001     10.0.1.1:80\n"), "{out}");
    assert!(out.contains(&format!("1.2.3.4:80         {:18} 10.0.1.3:80\n", "")), "{out}");
    // the method travels in the API, and an older daemon's reply (no field) reads as FULLNAT
    let v = serde_json::to_value(&conns[2]).unwrap();
    assert_eq!(v["forward"], "dr");
    let mut old = v.clone();
    old.as_object_mut().unwrap().remove("forward");
    assert_eq!(serde_json::from_value::<ConnInfo>(old).unwrap().forward, Forward::Fullnat);
}

/// `--proxy-protocol`: parsed for -A and -E (off unless given, as -E's other switches), listed
/// after the scheduler in `-Ln`, saved by `-S` and read back by `-R`.
#[test]
fn proxy_protocol_is_parsed_listed_saved_and_restored() {
    match send("-A -t 198.18.0.100:80 -s rr --proxy-protocol v1") {
        Request::AddService { service } => assert_eq!(service.proxy_protocol, ProxyProtocol::V1),
        r => panic!("{r:?}"),
    }
    match send("-E -t 198.18.0.100:80 --proxy-protocol v2") {
        Request::EditService { proxy_protocol, .. } => assert_eq!(proxy_protocol, Some(ProxyProtocol::V2)),
        r => panic!("{r:?}"),
    }
    match send("-E -t 198.18.0.100:80") {
        Request::EditService { proxy_protocol, .. } => assert_eq!(proxy_protocol, Some(ProxyProtocol::Off)),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        usage_err("-A -t 198.18.0.100:80 --proxy-protocol v3"),
        "--proxy-protocol must be v1, v2 or off"
    );
    assert_eq!(
        usage_err("-A -u 198.18.0.100:53 --proxy-protocol v1"),
        "the PROXY protocol applies to tcp services only"
    );
    let mut s = svc("tcp", "1.2.3.4:80");
    s.proxy_protocol = ProxyProtocol::V2;
    s.reals = vec![real_info("10.0.1.1:80", 1, Forward::Fullnat)];
    let services = vec![s];
    let answer = |req: &Request| match req {
        Request::ListServices => Response::ok(Reply::Services { services: services.clone() }),
        Request::GetTimeouts => Response::ok(Reply::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }),
        _ => Response::error("unexpected"),
    };
    let (out, _) = run("-Ln", "", answer);
    assert!(out.unwrap().contains("TCP  1.2.3.4:80 wlc proxy-protocol v2\n"));
    let (saved, _) = run("-S -n", "", answer);
    let saved = saved.unwrap();
    assert!(saved.starts_with("-A -t 1.2.3.4:80 -s wlc --proxy-protocol v2\n"), "{saved}");
    let restored = parse_rules(&saved).unwrap();
    assert_eq!(restored[0].proxy_protocol, ProxyProtocol::V2);
}
