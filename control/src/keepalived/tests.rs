//! keepalived.conf in keepalived's own grammar: every keyword rvs takes, with the exact services it
//! makes; every refusal with its line; malformed text is an error, never a panic.
use super::convert::defaults as kd;
use super::*;
use crate::config::{CheckConfig, CheckKind, Proto, ProxyProtocol, RealConfig, Sched, ServiceConfig};

const FULL: &str = r#"! Configuration File for keepalived
global_defs {
   notification_email {
     ops@example.org
   }
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100
    }
}

local_address_group laddr_g1 {
    198.18.1.100 dpdk1
    198.18.1.101-102
}

virtual_server_group web {
    198.18.0.100 80
    198.18.0.101-102 8080
}

# HTTP with every timer at the virtual_server and some overridden below
virtual_server group web {
    delay_loop 3
    lb_algo wrr
    lb_kind FNAT
    persistence_timeout 600
    protocol TCP
    inhibit_on_failure
    laddr_group_name laddr_g1
    syn_proxy
    connect_timeout 2
    retry 3
    delay_before_retry 0.5

    real_server 198.18.1.11 80 {
        weight 3
        uthreshold 1000
        lthreshold 800
        HTTP_GET {
            url {
              path /health
              status_code 204
            }
            connect_port 8000
        }
    }
    real_server 198.18.1.12 80 {
        weight 0
        HTTP_GET {
            url {
              path /health
              status_code 204
            }
            connect_port 8000
        }
    }
}

virtual_server 198.18.0.110 53 {
    lvs_sched rr
    lvs_method FNAT
    protocol udp
    persistence_timeout
    real_server 198.18.1.13 5353
}

virtual_server 198.18.0.120 443 {
    lb_algo mh
    lb_kind FNAT
    real_server 198.18.1.14 443 {
        TCP_CHECK {
            connect_timeout 3
            nb_get_retry 2
            delay_before_retry 2
            delay_loop 10
        }
    }
    real_server 198.18.1.15 {
        retry 2
        delay_loop 10
        TCP_CHECK {
            connect_timeout 3
            delay_before_retry 2
        }
    }
}
"#;

fn svc(proto: Proto, vip: &str, sched: Sched) -> ServiceConfig {
    ServiceConfig {
        proto,
        vip: vip.into(),
        sched,
        persistence: None,
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
    }
}

fn real(addr: &str, weight: u32, u: u32, l: u32) -> RealConfig {
    RealConfig {
        addr: addr.into(),
        weight,
        forward: crate::config::Forward::Fullnat,
        u_threshold: u,
        l_threshold: l,
    }
}

#[test]
fn every_keyword_converts_exactly() {
    let k = from_str(FULL, "k.conf").unwrap();
    let http = CheckConfig {
        kind: CheckKind::Http,
        port: Some(8000),
        path: "/health".into(),
        expect_status: 204,
        interval_ms: 3000,
        timeout_ms: 2000,
        rise: 1,
        fall: 4,
        retry_ms: Some(500),
        host: None,
        sni: None,
    };
    let web = |vip: &str| ServiceConfig {
        persistence: Some(600),
        synproxy: true,
        inhibit_on_failure: true,
        laddrs: vec!["198.18.1.100".into(), "198.18.1.101".into(), "198.18.1.102".into()],
        reals: vec![real("198.18.1.11:80", 3, 1000, 800), real("198.18.1.12:80", 0, 0, 0)],
        check: Some(http.clone()),
        ..svc(Proto::Tcp, vip, Sched::Wrr)
    };
    let tcp = CheckConfig {
        kind: CheckKind::Tcp,
        port: None,
        path: "/".into(),
        expect_status: 200,
        interval_ms: 10_000,
        timeout_ms: 3000,
        rise: 1,
        fall: 3,
        retry_ms: Some(2000),
        host: None,
        sni: None,
    };
    let want = vec![
        web("198.18.0.100:80"),
        web("198.18.0.101:8080"),
        web("198.18.0.102:8080"),
        ServiceConfig {
            persistence: Some(kd::PERSISTENCE_S),
            reals: vec![real("198.18.1.13:5353", 1, 0, 0)],
            ..svc(Proto::Udp, "198.18.0.110:53", Sched::Rr)
        },
        ServiceConfig {
            reals: vec![real("198.18.1.14:443", 1, 0, 0), real("198.18.1.15:443", 1, 0, 0)],
            check: Some(tcp),
            ..svc(Proto::Tcp, "198.18.0.120:443", Sched::Mh)
        },
    ];
    assert_eq!(k.services, want);
    assert_eq!(k.warnings.len(), 2, "{:?}", k.warnings);
    assert!(k.warnings[0].starts_with("k.conf:2: global_defs: not used by rvsd"), "{:?}", k.warnings);
    assert!(k.warnings[1].starts_with("k.conf:9: vrrp_instance: skipped"), "{:?}", k.warnings);
    // The services validate inside a config, and survive the TOML round trip of save/restore.
    let mut cfg = crate::config::Config::from_toml(
        "[[ports]]\nname = \"c\"\ndevice = \"net_null0\"\naddr = \"198.18.0.1/24\"\n[[ports]]\nname = \"s\"\ndevice = \"net_null1\"\naddr = \"198.18.1.1/24\"\n",
    )
    .unwrap();
    cfg.services = k.services;
    cfg.validate().unwrap();
    assert_eq!(crate::config::Config::from_toml(&cfg.to_toml()).unwrap(), cfg);
}

/// DPVS's tutorial (doc/tutorial.md, "Full-NAT with Keepalived"), verbatim.
const DPVS_TUTORIAL: &str = r#"! Configuration File for keepalived

global_defs {
    notification_email {
        foo@example.com
    }
    notification_email_from bar@example.com
    smtp_server 1.2.3.4
    smtp_connect_timeout 60
    router_id DPVS_DEVEL
}

local_address_group laddr_g1 {
    192.168.100.200 dpdk0    # use DPDK interface
    192.168.100.201 dpdk0    # use DPDK interface
}

#
# VRRP section
#
vrrp_instance VI_1 {
    state MASTER                  # master
    interface dpdk0.kni           # should be kni interface
    dpdk_interface dpdk0          # should be DPDK interface
    virtual_router_id 123         # VID should be unique in network
    priority 100                  # master's priority is bigger than worker
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass ****
    }

    virtual_ipaddress {
        192.168.100.254
    }
}

#
# Virtual Server Section
#
virtual_server_group 192.168.100.254-80 {
    192.168.100.254 80
}

virtual_server group 192.168.100.254-80 {
    delay_loop 3
    lb_algo rr         # scheduling algorithm Round-Robin
    lb_kind FNAT       # Forwarding Mode Full-NAT
    protocol TCP       # Protocol TCP

    laddr_group_name laddr_g1   # Local IP group-ID

    real_server 192.168.100.2 80 { # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK {    # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }
    }

    real_server 192.168.100.3 80 { # real-server
        weight 100
        inhibit_on_failure
        TCP_CHECK { # health check
            nb_sock_retry 2
            connect_timeout 3
            connect_port 80
        }
    }
}
"#;

#[test]
fn dpvs_tutorial_config_is_taken_as_is() {
    let k = from_str(DPVS_TUTORIAL, "keepalived.conf").unwrap();
    let want = ServiceConfig {
        laddrs: vec!["192.168.100.200".into(), "192.168.100.201".into()],
        reals: vec![real("192.168.100.2:80", 100, 0, 0), real("192.168.100.3:80", 100, 0, 0)],
        check: Some(CheckConfig {
            kind: CheckKind::Tcp,
            port: Some(80),
            path: "/".into(),
            expect_status: 200,
            interval_ms: 3000,
            timeout_ms: 3000,
            rise: 1,
            fall: 3,
            retry_ms: Some(kd::DELAY_BEFORE_RETRY_MS),
            host: None,
            sni: None,
        }),
        inhibit_on_failure: true,
        ..svc(Proto::Tcp, "192.168.100.254:80", Sched::Rr)
    };
    assert_eq!(k.services, vec![want]);
    assert_eq!(k.warnings.len(), 2, "{:?}", k.warnings);
}

#[test]
fn keepalived_defaults_apply() {
    let k = from_str(
        "virtual_server 198.18.0.100 80 {\n lb_kind FNAT\n real_server 198.18.1.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
        "k.conf",
    )
    .unwrap();
    let s = &k.services[0];
    assert_eq!(
        (s.proto, s.sched, s.persistence, s.inhibit_on_failure),
        (Proto::Tcp, Sched::Wlc, None, false)
    );
    let c = s.check.as_ref().unwrap();
    assert_eq!(
        (c.interval_ms, c.timeout_ms, c.fall, c.rise, c.retry_ms),
        (kd::DELAY_LOOP_MS, kd::CONNECT_TIMEOUT_MS, kd::RETRY + 1, 1, Some(kd::DELAY_BEFORE_RETRY_MS))
    );
    assert!(k.warnings.is_empty());
}

/// The error for `body` inside a virtual_server (which starts on line 1, so `body`'s first line is 3).
fn vs_err(body: &str) -> String {
    let text = format!("virtual_server 198.18.0.100 80 {{\n    lb_kind FNAT\n{body}\n}}\n");
    from_str(&text, "k.conf").unwrap_err().to_string()
}

#[test]
fn unsupported_keywords_are_line_numbered_errors() {
    let cases: &[(&str, &str)] = &[
        ("    lb_kind XYZ", "k.conf:3: lb_kind \"XYZ\": unknown forwarding method (NAT, DR, TUN or FNAT)"),
        ("    lb_kind SNAT", "k.conf:3: lb_kind SNAT: DPVS's SNAT (outbound) is not supported"),
        ("    lb_kind TUN type gue port 6080", "k.conf:3: lb_kind TUN type gue: rvs encapsulates ipip only"),
        ("    lvs_method TUN type gre", "k.conf:3: lvs_method TUN type gre: rvs encapsulates ipip only"),
        ("    lvs_method TUN type vxlan", "k.conf:3: lvs_method TUN type \"vxlan\": unknown tunnel type (ipip, gue or gre)"),
        ("    lvs_method TUN csum", "k.conf:3: lvs_method TUN csum: applies to GUE/GRE tunnels; rvs encapsulates ipip only"),
        ("    lvs_method TUN type", "k.conf:3: lvs_method TUN type: needs a tunnel type"),
        ("    lb_kind DR type ipip", "k.conf:3: lb_kind DR type: only TUN takes tunnel options"),
        ("    lb_algo fastest", "k.conf:3: lb_algo: unknown scheduler \"fastest\""),
        ("    quorum 0", "k.conf:3: quorum \"0\": not a whole number in 1..=4294967295"),
        ("    hysteresis -1", "k.conf:3: hysteresis \"-1\": not a whole number in 0..=4294967295"),
        ("    quorum_up /usr/local/bin/up.sh", "k.conf:3: quorum_up: not supported by rvs: rvs runs no notify scripts"),
        ("    quorum_down \"/bin/logger down\"", "k.conf:3: quorum_down: not supported by rvs: rvs runs no notify scripts"),
        ("    sorry_server 198.18.1.20 80 90", "k.conf:3: sorry_server: expected sorry_server ADDRESS [PORT]"),
        ("    sorry_server 198.18.1.20 0", "k.conf:3: sorry_server: bad port \"0\""),
        ("    sorry_server_inhibit\n    sorry_server 198.18.1.20 80", "k.conf:3: sorry_server_inhibit: needs a sorry_server line before it"),
        ("    sorry_server_lvs_method FNAT", "k.conf:3: sorry_server_lvs_method: needs a sorry_server line before it"),
        ("    sorry_server 198.18.1.20 8080\n    sorry_server_lvs_method DR", "k.conf:3: sorry_server port 8080: DR cannot change the port (the virtual_server's is 80); give no port or 80"),
        ("    syn_proxy\n    sorry_server 198.18.1.20\n    sorry_server_lvs_method TUN", "k.conf:3: syn_proxy: needs the real servers' replies through the gateway; the sorry_server at line 4 forwards TUN"),
        ("    virtualhost \"a b\"", "k.conf:3: virtualhost \"a b\": not a host name"),
        ("    protocol SCTP", "k.conf:3: protocol SCTP: not supported"),
        ("    persistence_timeout 0", "k.conf:3: persistence_timeout \"0\": not a whole number in 1..=2678400"),
        ("    delay_loop soon", "k.conf:3: delay_loop \"soon\": not a time in seconds"),
        ("    bogus_keyword 1", "k.conf:3: bogus_keyword: unknown or unsupported keyword in virtual_server"),
        ("    laddr_group_name nope", "k.conf:3: laddr_group_name nope: no local_address_group \"nope\""),
        ("\n    real_server 198.18.1.11 80 {\n        SSL_GET {\n        }\n    }", "k.conf:5: SSL_GET: needs a url"),
        ("    real_server 198.18.1.11 80 {\n        SSL_GET {\n            url {\n                path /\n                status_code 200\n                digest 9b3a0c85a887a256d6939da88aabd8cd\n            }\n        }\n    }", "k.conf:8: digest: not supported by rvs"),
        ("    real_server 198.18.1.11 80 {\n        SSL_GET {\n            sni_name bad..name\n        }\n    }", "k.conf:5: sni_name \"bad..name\": not a DNS name"),
        ("    real_server 198.18.1.11 80 {\n        HTTP_GET {\n            enable_sni\n        }\n    }", "k.conf:5: enable_sni: unknown or unsupported keyword in HTTP_GET"),
        ("    virtualhost exa..mple\n    real_server 198.18.1.11 80 {\n        SSL_GET {\n            enable_sni\n            url {\n                path /\n                status_code 200\n            }\n        }\n    }", "k.conf:5: SSL_GET: enable_sni: virtualhost \"exa..mple\" is not a DNS name"),
        ("    real_server 198.18.1.11 80 {\n        SSL_GET {\n            tls_compliant\n        }\n    }", "k.conf:5: tls_compliant: unknown or unsupported keyword in SSL_GET"),
        ("    real_server 198.18.1.11 80 {\n        MISC_CHECK {\n        }\n    }", "k.conf:4: MISC_CHECK: not supported by rvs"),
        ("    real_server 198.18.1.11 80 {\n        weight 70000\n    }", "k.conf:4: weight \"70000\": not a whole number in 0..=65535"),
        ("    real_server 198.18.1.11 80 {\n        inhibit_on_failure\n    }\n    real_server 198.18.1.12 80", "k.conf:6: real_server: inhibit_on_failure differs from the real_server at line 3"),
        ("    inhibit_on_failure\n    real_server 198.18.1.11 80 {\n        inhibit_on_failure false\n    }\n    real_server 198.18.1.12 80", "k.conf:7: real_server: inhibit_on_failure differs from the real_server at line 4"),
        ("    real_server 198.18.1.11 80 {\n        lvs_method TUN type gue\n    }", "k.conf:4: lvs_method TUN type gue: rvs encapsulates ipip only"),
        ("    real_server 198.18.1.11 8080 {\n        lvs_method DR\n    }", "k.conf:3: real_server port 8080: DR cannot change the port (the virtual_server's is 80)"),
        ("    syn_proxy\n    real_server 198.18.1.11 {\n        lvs_method TUN\n    }", "k.conf:3: syn_proxy: needs the real servers' replies through the gateway; real_server 198.18.1.11 at line 4 forwards TUN"),
        ("    real_server 198.18.1.11 80 {\n        TCP_CHECK {\n        }\n        HTTP_GET {\n        }\n    }", "k.conf:6: HTTP_GET: not supported by rvs: a second checker"),
        ("    real_server 198.18.1.11 80 {\n        HTTP_GET {\n        }\n    }", "k.conf:4: HTTP_GET: needs a url"),
        ("    real_server 198.18.1.11 80 {\n        HTTP_GET {\n            url {\n                path /\n            }\n        }\n    }", "k.conf:5: url: needs a status_code"),
        ("    real_server 198.18.1.11 80 {\n        HTTP_GET {\n            url {\n                path /\n                digest 9b3a0c85a887a256d6939da88aabd8cd\n            }\n        }\n    }", "k.conf:7: digest: not supported by rvs"),
        ("    real_server 198.18.1.11 80 {\n        TCP_CHECK {\n            connect_ip 198.18.1.99\n        }\n    }", "k.conf:5: connect_ip: not supported by rvs"),
        ("    delay_loop 2\n    real_server 198.18.1.11 80 {\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }", "k.conf:5: TCP_CHECK: connect_timeout 3000 ms must be above 0 and at most delay_loop 2000 ms"),
        ("    real_server 198.18.1.11 80 {\n        TCP_CHECK {\n        }\n    }\n    real_server 198.18.1.12 80 {\n    }", "k.conf:7: real_server: its checker differs from the one of the real_server at line 3"),
        ("    real_server 198.18.1.11 80 {\n        TCP_CHECK {\n        }\n    }\n    real_server 198.18.1.12 80 {\n        TCP_CHECK {\n            connect_port 81\n        }\n    }", "k.conf:7: real_server: its checker differs"),
        ("    real_server 2001:db8::zz 80", "k.conf:3: real_server \"2001:db8::zz\": not an IPv4 or IPv6 address"),
    ];
    for (body, want) in cases {
        let e = vs_err(body);
        assert!(e.starts_with(want), "{body:?}:\n  got  {e}\n  want {want}");
        assert!(!e.contains('\n'));
    }
    let top: &[(&str, &str)] = &[
        ("virtual_server fwmark 1 {\n}\n", "k.conf:1: virtual_server: not supported by rvs: fwmark"),
        (
            "virtual_server group g {\n lb_kind FNAT\n}\n",
            "k.conf:1: virtual_server group g: no virtual_server_group \"g\"",
        ),
        ("virtual_server_group g {\n fwmark 3\n}\n", "k.conf:2: fwmark: not supported by rvs"),
        ("virtual_server_group g {\n 198.18.0.9-3 80\n}\n", "k.conf:2: range \"198.18.0.9-3\""),
        (
            "local_address_group g {\n 198.18.1.1\n}\nlocal_address_group g {\n 198.18.1.2\n}\n",
            "k.conf:4: local_address_group g: defined twice",
        ),
        ("virtual_server 198.18.0.100 80\n", "k.conf:1: virtual_server: needs a { } block"),
        (
            "virtual_server 198.18.0.100 {\n}\n",
            "k.conf:1: virtual_server: expected virtual_server ADDRESS PORT",
        ),
        (
            "global_defs {\n lvs_timeouts tcp 7200\n}\n",
            "k.conf:2: lvs_timeouts: unknown or unsupported keyword in global_defs",
        ),
        (
            "SSL {\n ca /etc/ssl/ca.pem\n}\n",
            "k.conf:1: SSL: not supported by rvs: rvs's SSL_GET presents no client certificate",
        ),
        (
            "\n\nvrrp_instance X {\n}\nfrobnicate yes\n",
            "k.conf:5: frobnicate: unknown or unsupported keyword in keepalived.conf",
        ),
    ];
    for (text, want) in top {
        let e = from_str(text, "k.conf").unwrap_err().to_string();
        assert!(e.starts_with(want), "{text:?}:\n  got  {e}\n  want {want}");
    }
}

#[test]
fn syntax_errors_have_lines() {
    for (text, want) in [
        (
            "virtual_server 198.18.0.100 80 {\n  lb_kind FNAT\n  real_server 198.18.1.11 80 {\n",
            "k.conf:3: real_server: block opened here is not closed",
        ),
        ("virtual_server 198.18.0.100 80 {\n  lb_kind FNAT\n}\n}\n", "k.conf:4: unbalanced \"}\""),
        ("virtual_server 198.18.0.100 80 {\n  lb_kind \"FNAT\n}\n", "k.conf:2: unterminated quote"),
        ("include other.conf\n", "k.conf:1: include needs a file"),
    ] {
        let e = from_str(text, "k.conf").unwrap_err().to_string();
        assert!(e.starts_with(want), "{text:?}:\n  got  {e}\n  want {want}");
    }
}

#[test]
fn include_reads_files_relative_to_the_includer() {
    let dir = std::env::temp_dir().join(format!("rvs-ka-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(
        dir.join("keepalived.conf"),
        "include conf.d/*.conf\nlocal_address_group l {\n 198.18.1.100\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d/a.conf"),
        "virtual_server 198.18.0.100 80 {\n lb_kind FNAT\n laddr_group_name l\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/b.conf"), "virtual_server 198.18.0.100 81 {\n lb_kind FNAT\n omega\n}\n")
        .unwrap();
    let e = from_file(&dir.join("keepalived.conf").to_string_lossy()).unwrap_err();
    assert!(e.file.ends_with("conf.d/b.conf") && e.line == 3, "{e}");
    std::fs::write(dir.join("conf.d/b.conf"), "virtual_server 198.18.0.100 81 {\n lb_kind FNAT\n}\n")
        .unwrap();
    let k = from_file(&dir.join("keepalived.conf").to_string_lossy()).unwrap();
    // apply: the services replace an empty list and the key is cleared; a TOML with services too is refused.
    let base = "keepalived = \"keepalived.conf\"\n[[ports]]\nname = \"c\"\ndevice = \"net_null0\"\naddr = \"198.18.0.1/24\"\n";
    let mut cfg = crate::config::Config::from_toml(base).unwrap();
    assert_eq!(cfg.keepalived.as_deref(), Some("keepalived.conf"));
    let path = dir.join("keepalived.conf").to_string_lossy().into_owned();
    assert!(apply(&mut cfg, &path).unwrap().is_empty());
    assert_eq!((cfg.services.clone(), cfg.keepalived.clone()), (k.services.clone(), None));
    let e = apply(&mut cfg, &path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("keepalived: the services come from {path}; the TOML must not list services too")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let vips: Vec<&str> = k.services.iter().map(|s| s.vip.as_str()).collect();
    assert_eq!(vips, ["198.18.0.100:80", "198.18.0.100:81"]);
    assert_eq!(k.services[0].laddrs, ["198.18.1.100"]);
}

#[test]
fn malformed_text_is_an_error_not_a_panic() {
    // Every prefix of a full configuration, and some byte soup: errors or services, never a panic.
    for end in 0..=FULL.len() {
        if FULL.is_char_boundary(end) {
            let _ = from_str(&FULL[..end], "k.conf");
        }
    }
    for text in [
        "{",
        "}",
        "{{}}",
        "a {",
        "a }",
        "\"",
        "a\n{\n{\n",
        "virtual_server { real_server { HTTP_GET { url { } } } }",
    ] {
        assert!(from_str(text, "k.conf").is_err(), "{text:?}");
    }
}

/// SSL_GET as keepalived writes it: HTTP_GET's url over TLS, with virtualhost and SNI.
#[test]
fn ssl_get_converts_to_an_https_check() {
    let text = r#"
virtual_server 198.18.0.100 443 {
    lb_kind FNAT
    delay_loop 5
    virtualhost www.example.org
    real_server 198.18.1.11 443 {
        SSL_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 2
            retry 2
            delay_before_retry 1.5
            enable_sni
        }
    }
    real_server 198.18.1.12 443 {
        SSL_GET {
            url {
                path /healthz
                status_code 200
            }
            connect_timeout 2
            nb_get_retry 2
            delay_before_retry 1.5
            enable_sni yes
        }
    }
}

virtual_server 198.18.0.101 443 {
    lb_kind FNAT
    real_server 198.18.1.13 8443 {
        SSL_GET {
            virtualhost checker.example.org
            sni_name tls.example.org
            connect_port 9443
            url {
                path /
                status_code 204
                virtualhost url.example.org
            }
        }
    }
}

virtual_server 198.18.0.102 443 {
    lb_kind FNAT
    real_server 198.18.1.14 443 {
        virtualhost real.example.org
        SSL_GET {
            url {
                path /
                status_code 200
            }
        }
    }
}
"#;
    let k = from_str(text, "k.conf").unwrap();
    let https = |port, path: &str, status, interval_ms, timeout_ms, fall, retry_ms| CheckConfig {
        kind: CheckKind::Https,
        port,
        path: path.into(),
        expect_status: status,
        interval_ms,
        timeout_ms,
        rise: 1,
        fall,
        retry_ms: Some(retry_ms),
        host: None,
        sni: None,
    };
    // The virtual_server's virtualhost is the Host and, with enable_sni, the server name.
    let vs_host = Some("www.example.org".to_owned());
    let want0 = CheckConfig {
        host: vs_host.clone(),
        sni: vs_host,
        ..https(None, "/healthz", 200, 5000, 2000, 3, 1500)
    };
    assert_eq!(k.services[0].check, Some(want0));
    // The url's virtualhost comes first for the Host; sni_name names the server and turns SNI on.
    let want1 = CheckConfig {
        host: Some("url.example.org".into()),
        sni: Some("tls.example.org".into()),
        ..https(Some(9443), "/", 204, kd::DELAY_LOOP_MS, kd::CONNECT_TIMEOUT_MS, 2, kd::DELAY_BEFORE_RETRY_MS)
    };
    assert_eq!(k.services[1].check, Some(want1));
    // A real_server's virtualhost is the Host; without enable_sni no server name is sent.
    let want2 = CheckConfig {
        host: Some("real.example.org".into()),
        ..https(None, "/", 200, kd::DELAY_LOOP_MS, kd::CONNECT_TIMEOUT_MS, 2, kd::DELAY_BEFORE_RETRY_MS)
    };
    assert_eq!(k.services[2].check, Some(want2));
    assert!(k.warnings.is_empty(), "{:?}", k.warnings);
    // HTTP_GET takes virtualhost too, as its Host.
    let k = from_str(
        "virtual_server 198.18.0.100 80 {\n lb_kind FNAT\n real_server 198.18.1.11 80 {\n  HTTP_GET {\n   virtualhost h.example.org\n   url {\n    path /\n    status_code 200\n   }\n  }\n }\n}\n",
        "k.conf",
    )
    .unwrap();
    let c = k.services[0].check.as_ref().unwrap();
    assert_eq!((c.kind, c.host.as_deref(), c.sni.as_deref()), (CheckKind::Http, Some("h.example.org"), None));
    // The checks validate and survive the TOML round trip.
    let mut cfg = crate::config::Config::from_toml(
        "[[ports]]\nname = \"c\"\ndevice = \"net_null0\"\naddr = \"198.18.0.1/24\"\n",
    )
    .unwrap();
    cfg.services = from_str(text, "k.conf").unwrap().services;
    cfg.validate().unwrap();
    assert_eq!(crate::config::Config::from_toml(&cfg.to_toml()).unwrap(), cfg);
}

/// quorum, hysteresis and the sorry server, as keepalived reads them (check_parser.c) and
/// adjusts them (check_data.c `validate_check_config`).
#[test]
fn quorum_hysteresis_and_sorry_server_convert() {
    let text = r#"
virtual_server_group web {
    198.18.0.100 80
    198.18.0.101 8080
}

virtual_server group web {
    lb_kind FNAT
    quorum 3
    hysteresis 1
    sorry_server 198.18.1.20
    sorry_server_inhibit
    real_server 198.18.1.11 80 {
        weight 2
    }
    real_server 198.18.1.12 80 {
        weight 2
    }
}

virtual_server 198.18.0.110 80 {
    lb_kind FNAT
    quorum 10
    hysteresis 12
    sorry_server 198.18.1.21 8080
    sorry_server_lvs_method FNAT
    sorry_server_inhibit off
    real_server 198.18.1.11 80 {
        weight 3
    }
    real_server 198.18.1.12 80 {
        weight 1
    }
}

virtual_server 198.18.0.120 80 {
    lb_kind FNAT
    hysteresis 2
    real_server 198.18.1.11 80
}

virtual_server 198.18.0.130 80 {
    lb_kind DR
    sorry_server 198.18.1.22
    real_server 198.18.1.11
}

virtual_server 198.18.0.140 80 {
    lb_kind DR
    sorry_server 198.18.1.23 8080
    sorry_server_lvs_method NAT
    real_server 198.18.1.11
}
"#;
    let k = from_str(text, "k.conf").unwrap();
    let sorry = |addr: &str, inhibit| {
        Some(crate::config::SorryServerConfig {
            addr: addr.into(),
            forward: crate::config::Forward::Fullnat,
            inhibit,
        })
    };
    let sorry_by = |addr: &str, forward| {
        Some(crate::config::SorryServerConfig { addr: addr.into(), forward, inhibit: false })
    };
    let q: Vec<_> =
        k.services.iter().map(|s| (s.vip.as_str(), s.quorum, s.hysteresis, s.sorry_server.clone())).collect();
    assert_eq!(
        q,
        [
            // No sorry_server port: each service's own.
            ("198.18.0.100:80", 3, 1, sorry("198.18.1.20:80", true)),
            ("198.18.0.101:8080", 3, 1, sorry("198.18.1.20:8080", true)),
            // quorum above the total weight 4 is lowered to it, then hysteresis to quorum - 1.
            ("198.18.0.110:80", 4, 3, sorry("198.18.1.21:8080", false)),
            // Defaults: quorum 1, and hysteresis at or above it lowered to 0.
            ("198.18.0.120:80", 1, 0, None),
            // The virtual_server's method, or sorry_server_lvs_method.
            ("198.18.0.130:80", 1, 0, sorry_by("198.18.1.22:80", crate::config::Forward::Route)),
            ("198.18.0.140:80", 1, 0, sorry_by("198.18.1.23:8080", crate::config::Forward::Masq)),
        ]
    );
    assert_eq!(
        k.warnings,
        [
            "k.conf:11: sorry_server 198.18.1.20: no port; rvs uses the virtual server's",
            "k.conf:23: quorum 10 exceeds the real servers' total weight 4; lowered to 4, as keepalived does",
            "k.conf:24: hysteresis 12 is not below quorum 4; set to 3, as keepalived does",
            "k.conf:38: hysteresis 2 is not below quorum 1; set to 0, as keepalived does",
            "k.conf:44: sorry_server 198.18.1.22: no port; rvs uses the virtual server's",
        ]
    );
    let mut cfg = crate::config::Config::from_toml(
        "[[ports]]\nname = \"c\"\ndevice = \"net_null0\"\naddr = \"198.18.0.1/24\"\n[[ports]]\nname = \"s\"\ndevice = \"net_null1\"\naddr = \"198.18.1.1/24\"\n",
    )
    .unwrap();
    cfg.services = k.services;
    cfg.validate().unwrap();
    assert_eq!(crate::config::Config::from_toml(&cfg.to_toml()).unwrap(), cfg);
}

/// keepalived's methods map onto rvs's: NAT, DR, TUN (ipip) and DPVS's FNAT; a real server's own
/// `lvs_method` wins over the virtual_server's `lb_kind`, and with neither the method is NAT
/// (keepalived's check_data.c: "no forwarding method set, setting default NAT"), with a warning.
#[test]
fn forwarding_methods_map_per_real_server() {
    use crate::config::Forward;
    let text = "virtual_server 198.18.0.100 80 {
    lb_kind DR
    real_server 198.18.1.11 80
    real_server 198.18.1.12 {
        lvs_method TUN type ipip nocsum
    }
    real_server 198.18.1.13 8080 {
        lvs_method NAT
    }
    real_server 198.18.1.14 8081 {
        lvs_method FNAT
    }
}
virtual_server 198.18.0.101 53 {
    protocol UDP
    real_server 198.18.1.21 5353
}
virtual_server 198.18.0.102 80 {
    lvs_method TUN
    real_server 198.18.1.31
}
";
    let k = from_str(text, "k.conf").unwrap();
    let methods = |i: usize| -> Vec<(String, Forward)> {
        k.services[i].reals.iter().map(|r| (r.addr.clone(), r.forward)).collect()
    };
    assert_eq!(
        methods(0),
        [
            ("198.18.1.11:80".to_owned(), Forward::Route),
            ("198.18.1.12:80".to_owned(), Forward::Tunnel),
            ("198.18.1.13:8080".to_owned(), Forward::Masq),
            ("198.18.1.14:8081".to_owned(), Forward::Fullnat),
        ]
    );
    assert_eq!(methods(1), [("198.18.1.21:5353".to_owned(), Forward::Masq)]);
    assert_eq!(methods(2), [("198.18.1.31:80".to_owned(), Forward::Tunnel)]);
    assert_eq!(k.warnings, ["k.conf:14: virtual_server: no lb_kind; keepalived's default, NAT, is used"]);
    // every real server has its own method: no default is needed, and none is warned about
    let k = from_str(
        "virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n  lvs_method DR\n }\n}\n",
        "k.conf",
    )
    .unwrap();
    assert_eq!(k.services[0].reals[0].forward, Forward::Route);
    assert!(k.warnings.is_empty(), "{:?}", k.warnings);
    // a virtual_server_group: a DR real server's port must be every virtual server's
    let e = from_str(
        "virtual_server_group g {\n 198.18.0.100 80\n 198.18.0.101 81\n}\nvirtual_server group g {\n lb_kind DR\n real_server 198.18.1.11 80\n}\n",
        "k.conf",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "k.conf:7: real_server port 80: DR cannot change the port (the virtual_server's is 81); give no port or 81");
}

/// IPv6 as keepalived (and DPVS's IPv6 and NAT64 tutorials) write it: bare addresses, IPv6
/// ranges with a hexadecimal last group, IPv6 local address groups, IPv4 real servers under an
/// IPv6 virtual server (NAT64).
#[test]
fn ipv6_virtual_servers_real_servers_and_local_addresses() {
    let text = r#"
local_address_group v6 {
    2001:2:0:1::100 dpdk1
    2001:2:0:1::1fe-1ff
}
local_address_group v4 {
    198.18.1.100
}
virtual_server_group web6 {
    2001:2::100-101 80
}
virtual_server group web6 {
    lb_algo rr
    lb_kind FNAT
    laddr_group_name v6
    real_server 2001:2:0:1::11 80 {
        weight 2
    }
    real_server 2001:2:0:1::12 8080 {
    }
}
virtual_server 2001:2::200 80 {
    lb_algo rr
    lb_kind FNAT
    laddr_group_name v4
    real_server 198.18.1.11 80 {
    }
}
virtual_server 2001:2::300 80 {
    lb_kind TUN
    real_server 2001:2:0:1::13 {
    }
}
"#;
    let k = from_str(text, "k.conf").unwrap();
    let vips: Vec<&str> = k.services.iter().map(|s| s.vip.as_str()).collect();
    assert_eq!(vips, ["[2001:2::100]:80", "[2001:2::101]:80", "[2001:2::200]:80", "[2001:2::300]:80"]);
    let six = &k.services[0];
    assert_eq!(six.laddrs, ["2001:2:0:1::100", "2001:2:0:1::1fe", "2001:2:0:1::1ff"]);
    assert_eq!(six.reals, vec![real("[2001:2:0:1::11]:80", 2, 0, 0), real("[2001:2:0:1::12]:8080", 1, 0, 0)]);
    assert_eq!(k.services[1].reals, k.services[0].reals);
    let nat64 = &k.services[2];
    assert_eq!(
        (nat64.laddrs.as_slice(), nat64.reals[0].addr.as_str()),
        (&["198.18.1.100".to_string()][..], "198.18.1.11:80")
    );
    let tun = &k.services[3].reals[0];
    assert_eq!((tun.addr.as_str(), tun.forward), ("[2001:2:0:1::13]:80", crate::config::Forward::Tunnel));
    // A backwards IPv6 range names its line.
    let e = from_str("local_address_group g {\n    2001:2::1ff-100\n}\n", "k.conf").unwrap_err().to_string();
    assert_eq!(
        e,
        "k.conf:2: range \"2001:2::1ff-100\": the end must be a last group from 1ff to ffff (hexadecimal)"
    );
    let e = from_str("virtual_server 2001:2::zz 80 {\n}\n", "k.conf").unwrap_err().to_string();
    assert_eq!(e, "k.conf:1: virtual_server \"2001:2::zz\": not an IPv4 or IPv6 address");
}
