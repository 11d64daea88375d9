//! Everything that can be checked without touching the machine, one error line per problem
//! naming its field.
use super::*;

impl Config {
    /// Parses TOML; syntax and type errors come back as one line naming the line and key.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text)
            .map_err(|e| {
                let (line, key) = match e.span() {
                    Some(span) => {
                        let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
                        let line_text = text.lines().nth(line_no - 1).unwrap_or("");
                        let key =
                            line_text.split_once('=').map(|(k, _)| k.trim().to_owned()).unwrap_or_default();
                        (format!("line {line_no}"), key)
                    }
                    None => (String::new(), String::new()),
                };
                let msg = e.message().replace('\n', " ");
                let field = match (line.is_empty(), key.is_empty()) {
                    (false, false) => format!("{line}: {key}"),
                    (false, true) => line,
                    _ => String::new(),
                };
                err(field, msg)
            })
            .map(|mut c| {
                c.fill_real_ports();
                c
            })
    }

    /// Gives every real server written without a port (`RS`) its service's port, as ipvsadm's
    /// `-r` does; [`Config::from_toml`] calls it, so everything after sees `RS:port`.
    pub fn fill_real_ports(&mut self) {
        for s in &mut self.services {
            s.fill_real_ports();
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything that does not need the machine. The first error wins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(err(
                "version",
                format!("unsupported version {}, this rvsd reads {CONFIG_VERSION}", self.version),
            ));
        }
        self.metrics.validate()?;
        self.vrrp.validate(&self.ports)?;
        self.announce.validate()?;
        self.exception.validate()?;
        self.sync.validate()?;
        let w = &self.workers;
        if w.lcores.is_empty() {
            return Err(err("workers.lcores", "at least one worker lcore is needed"));
        }
        let mut seen = HashSet::new();
        for (i, l) in w.lcores.iter().enumerate() {
            if *l >= 128 {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is out of range")));
            }
            if *l == w.main_lcore {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is the main lcore")));
            }
            if !seen.insert(*l) {
                return Err(err(format!("workers.lcores[{i}]"), format!("lcore {l} is listed twice")));
            }
        }
        if !w.cpus.is_empty() && w.cpus.len() != w.lcores.len() {
            return Err(err(
                "workers.cpus",
                format!("{} CPUs for {} lcores: give one per lcore, or none", w.cpus.len(), w.lcores.len()),
            ));
        }
        for (i, c) in w.cpus.iter().chain(w.main_cpu.iter()).enumerate() {
            if *c >= 1024 {
                let f =
                    if i < w.cpus.len() { format!("workers.cpus[{i}]") } else { "workers.main_cpu".into() };
                return Err(err(f, format!("CPU {c} is out of range")));
            }
        }
        if !(64..=65536).contains(&w.handoff_ring) || !w.handoff_ring.is_power_of_two() {
            return Err(err(
                "workers.handoff_ring",
                format!("{} must be a power of two in 64..=65536", w.handoff_ring),
            ));
        }
        if w.lcores.len() > 64 {
            return Err(err(
                "workers.lcores",
                format!("{} workers; at most 64 are supported", w.lcores.len()),
            ));
        }
        if w.burst == 0 || w.burst > 256 {
            return Err(err("workers.burst", format!("{} is outside 1..=256", w.burst)));
        }
        for (f, v) in [("workers.rx_desc", w.rx_desc), ("workers.tx_desc", w.tx_desc)] {
            if !(64..=16384).contains(&v) || !v.is_power_of_two() {
                return Err(err(f, format!("{v} must be a power of two in 64..=16384")));
            }
        }
        if w.mbufs < 1024 {
            return Err(err("workers.mbufs", "at least 1024 mbufs are needed"));
        }
        if self.eal.log_level == 0 || self.eal.log_level > 8 {
            return Err(err("eal.log_level", "must be 1..=8"));
        }
        if self.ports.is_empty() {
            return Err(err("ports", "at least one port is needed"));
        }
        let mut names = HashSet::new();
        let mut devices = HashSet::new();
        let mut subnets = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = |k: &str| format!("ports[{i}].{k}");
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(err(f("name"), format!("\"{}\" is empty or used twice", p.name)));
            }
            let dev = parse_device(&p.device).map_err(|m| err(f("device"), m))?;
            let dev_name = match &dev {
                DeviceKind::Pci(a) => a.clone(),
                DeviceKind::Vdev { name, .. } => name.clone(),
            };
            if !devices.insert(dev_name.clone()) {
                return Err(err(f("device"), format!("\"{dev_name}\" is used by two ports")));
            }
            let c = Cidr::from_str(&p.addr).map_err(|m| err(f("addr"), m))?;
            if c.len == 0 || c.len > 30 {
                return Err(err(f("addr"), format!("prefix /{} leaves no room for neighbours", c.len)));
            }
            if !(576..=9000).contains(&p.mtu) {
                return Err(err(f("mtu"), format!("{} is outside 576..=9000", p.mtu)));
            }
            if let Some(k) = &p.kernel {
                super::exception::check_ifname(k).map_err(|m| err(f("kernel"), m))?;
                if self.ports[..i].iter().any(|q| q.kernel.as_deref() == Some(k)) {
                    return Err(err(f("kernel"), format!("\"{k}\" is used by two ports")));
                }
            }
            subnets.push(Prefix::V4(c));
            if let Some(a6) = &p.addr6 {
                let c6 = Cidr6::from_str(a6).map_err(|m| err(f("addr6"), m))?;
                if c6.len == 0 || c6.len > 126 {
                    return Err(err(f("addr6"), format!("prefix /{} leaves no room for neighbours", c6.len)));
                }
                if c6.addr.is_multicast() || c6.addr.is_unspecified() || c6.addr.is_loopback() {
                    return Err(err(f("addr6"), format!("{} is not a unicast address", c6.addr)));
                }
                if p.mtu < 1280 {
                    return Err(err(f("mtu"), format!("{} is below IPv6's minimum of 1280", p.mtu)));
                }
                subnets.push(Prefix::V6(c6));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let dst = Prefix::from_str(&r.dst).map_err(|m| err(format!("routes[{i}].dst"), m))?;
            let via = parse_ip(&r.via).map_err(|m| err(format!("routes[{i}].via"), m))?;
            if via.is_ipv4() != dst.addr().is_ipv4() {
                return Err(err(
                    format!("routes[{i}].via"),
                    format!("{via} is {} but dst {} is {}", family(via), r.dst, family(dst.addr())),
                ));
            }
            if !subnets.iter().any(|s| s.contains(via)) {
                return Err(err(format!("routes[{i}].via"), format!("{via} is not in any port's subnet")));
            }
        }
        let c = &self.conn;
        if c.max_per_worker == 0 || c.max_per_worker > MAX_CONNS_PER_WORKER {
            return Err(err(
                "conn.max_per_worker",
                format!("{} is outside 1..={MAX_CONNS_PER_WORKER} (about 118 bytes each)", c.max_per_worker),
            ));
        }
        if c.lport_min == 0 || c.lport_min > c.lport_max {
            return Err(err("conn.lport_min", "local port range is empty"));
        }
        let sp = &self.synproxy;
        if sp.period_s == 0 {
            return Err(err("synproxy.period_s", "must be at least 1"));
        }
        if sp.syn_retry_ms < 100 {
            return Err(err("synproxy.syn_retry_ms", "must be at least 100"));
        }
        if sp.wscale > 14 || !(536..=9000).contains(&sp.mss) {
            return Err(err("synproxy.wscale", "wscale must be 0..=14 and mss 536..=9000"));
        }
        let sp_span_ms = (sp.syn_retries as u64 + 1) * sp.syn_retry_ms as u64;
        let any_synproxy = self.services.iter().any(|s| s.synproxy);
        if any_synproxy && (c.timeouts.syn_recv as u64) * 1000 <= sp_span_ms {
            return Err(err(
                "conn.timeouts.syn_recv",
                format!("must outlast the SYN-proxy retries ({sp_span_ms} ms): a proxied connection waits in SYN_RECV"),
            ));
        }
        // Everything a worker preallocates is bounded, so no config can ask for unbounded memory.
        for (f, v, max) in [
            ("conn.arp_queue", c.arp_queue, 4096),
            ("conn.persist_templates", c.persist_templates, 1 << 24),
            ("conn.expire_budget", c.expire_budget, 1 << 20),
            ("conn.proxy_timers", c.proxy_timers, 1 << 24),
            ("conn.frag.max_datagrams", c.frag.max_datagrams, 1 << 20),
            ("conn.frag.max_per_source", c.frag.max_per_source, 1 << 20),
            ("conn.frag.timeout_ms", c.frag.timeout_ms, 60_000),
            ("synproxy.max_half_open", self.synproxy.max_half_open, 1 << 22),
            ("synproxy.max_held", self.synproxy.max_held, 64),
        ] {
            if v == 0 || v > max {
                return Err(err(f, format!("{v} is outside 1..={max}")));
            }
        }
        let t = &c.timeouts;
        for (k, v) in [
            ("established", t.established),
            ("syn_sent", t.syn_sent),
            ("syn_recv", t.syn_recv),
            ("fin_wait", t.fin_wait),
            ("time_wait", t.time_wait),
            ("close", t.close),
            ("close_wait", t.close_wait),
            ("last_ack", t.last_ack),
            ("udp", t.udp),
        ] {
            if v > MAX_TIMEOUT_S {
                return Err(err(
                    format!("conn.timeouts.{k}"),
                    format!("{v} s is more than {MAX_TIMEOUT_S} s"),
                ));
            }
        }
        if self.services.len() > MAX_SERVICES {
            return Err(err(
                "services",
                format!("{} services exceed the limit of {MAX_SERVICES}", self.services.len()),
            ));
        }
        let mut svcs = HashSet::new();
        // IPv4 local address -> (is NAT64's, the service using it first).
        let mut lip_use: std::collections::HashMap<IpAddr, (bool, &str)> = Default::default();
        for (i, s) in self.services.iter().enumerate() {
            let f = |k: &str| format!("services[{i}].{k}");
            if s.reals.len() > MAX_REALS_PER_SERVICE {
                return Err(err(
                    f("reals"),
                    format!("{} real servers exceed the limit of {MAX_REALS_PER_SERVICE}", s.reals.len()),
                ));
            }
            if s.laddrs.len() > MAX_LADDRS_PER_SERVICE {
                return Err(err(
                    f("laddrs"),
                    format!(
                        "{} local addresses exceed the limit of {MAX_LADDRS_PER_SERVICE}",
                        s.laddrs.len()
                    ),
                ));
            }
            let (vip, vport) = parse_endpoint(&s.vip).map_err(|m| err(f("vip"), m))?;
            if vip.is_ipv6() && !subnets.iter().any(|c| matches!(c, Prefix::V6(_))) {
                return Err(err(f("vip"), format!("{} is IPv6 but no port has an addr6", s.vip)));
            }
            // The family of the real servers and local addresses: the VIP's, except that an IPv6
            // service may have IPv4 ones (NAT64); its first real server (or local address) decides.
            let server_v4 = vip.is_ipv4()
                || s.reals
                    .first()
                    .map(|r| parse_endpoint(&r.addr).map(|e| e.0))
                    .or_else(|| s.laddrs.first().map(|l| parse_ip(l)))
                    .and_then(Result::ok)
                    .is_some_and(|a| a.is_ipv4());
            let server_family = if server_v4 { "IPv4" } else { "IPv6" };
            let why = if vip.is_ipv4() {
                "an IPv4 service has IPv4 real servers and local addresses"
            } else if server_v4 {
                "an IPv6 service with IPv4 real servers (NAT64) has only IPv4 real servers and local addresses"
            } else {
                "an IPv6 service has IPv6 real servers and local addresses (or, NAT64, IPv4 ones only)"
            };
            // What a forwarding method asks of a real server's address and port.
            let forward_fits = |(ra, rp): (IpAddr, u16), forward: Forward| -> Result<(), String> {
                if ra.is_ipv4() != server_v4 {
                    return Err(format!(
                        "{} is {}, not {server_family}: {why}",
                        endpoint(ra, rp),
                        family(ra)
                    ));
                }
                if vip.is_ipv6() && ra.is_ipv4() && forward != Forward::Fullnat {
                    return Err(format!(
                        "{} forwards {forward}: NAT64 (an IPv6 service, IPv4 real servers) is FULLNAT only",
                        endpoint(ra, rp)
                    ));
                }
                if forward.keeps_port() && rp != vport {
                    let bare = match ra {
                        IpAddr::V4(a) => a.to_string(),
                        IpAddr::V6(a) => format!("[{a}]"),
                    };
                    return Err(format!(
                        "port {rp} is not the service's port {vport}: DR/TUN cannot change the port (write {} or {bare})",
                        endpoint(ra, vport)
                    ));
                }
                if forward == Forward::Route && !subnets.iter().any(|c| c.contains(ra)) {
                    let nets: Vec<String> = subnets.iter().map(|c| c.network().to_string()).collect();
                    return Err(format!(
                        "{ra} is on none of the ports' networks ({}): DR needs an on-link real server",
                        nets.join(", ")
                    ));
                }
                Ok(())
            };
            if !svcs.insert((s.proto, vip, vport)) {
                return Err(err(f("vip"), format!("{} service {} is defined twice", s.proto, s.vip)));
            }
            if s.synproxy && s.proto != Proto::Tcp {
                return Err(err(f("synproxy"), "syn-proxy applies to tcp services only"));
            }
            let mut laddrs = HashSet::new();
            for (j, l) in s.laddrs.iter().enumerate() {
                let a = parse_ip(l).map_err(|m| err(format!("services[{i}].laddrs[{j}]"), m))?;
                if a.is_ipv4() != server_v4 {
                    return Err(err(
                        format!("services[{i}].laddrs[{j}]"),
                        format!("{a} is {}, not {server_family}: {why}", family(a)),
                    ));
                }
                if !laddrs.insert(a) {
                    return Err(err(format!("services[{i}].laddrs[{j}]"), format!("{a} is listed twice")));
                }
                // NAT64 connections live in the dataplane's IPv6 table and IPv4 ones in the IPv4
                // table, each with its own local ports: an IPv4 local address serves one kind.
                if a.is_ipv4() {
                    let nat64 = vip.is_ipv6();
                    let (was_nat64, first) = *lip_use.entry(a).or_insert((nat64, &s.vip));
                    if was_nat64 != nat64 {
                        let kind = |n: bool| if n { "NAT64" } else { "IPv4" };
                        return Err(err(
                            format!("services[{i}].laddrs[{j}]"),
                            format!(
                                "{a} is already a local address of {} service {first}; an IPv4 local address serves NAT64 services or IPv4 ones, not both (give this {} service another)",
                                kind(was_nat64),
                                kind(nat64)
                            ),
                        ));
                    }
                }
            }
            let mut reals = HashSet::new();
            for (j, r) in s.reals.iter().enumerate() {
                let g = |k: &str| format!("services[{i}].reals[{j}].{k}");
                let ep = parse_endpoint(&r.addr).map_err(|m| err(g("addr"), m))?;
                if !reals.insert(ep) {
                    return Err(err(g("addr"), format!("real server {} is listed twice", r.addr)));
                }
                if r.weight > MAX_WEIGHT {
                    return Err(err(g("weight"), format!("{} is outside 0..={MAX_WEIGHT}", r.weight)));
                }
                forward_fits(ep, r.forward).map_err(|m| err(g("addr"), m))?;
            }
            // keepalived's sorry server is a real server of the service while it serves.
            if let Some(ss) = &s.sorry_server {
                let ep = parse_endpoint(&ss.addr).map_err(|m| err(f("sorry_server.addr"), m))?;
                forward_fits(ep, ss.forward).map_err(|m| err(f("sorry_server.addr"), m))?;
            }
            let sorry = s.sorry_server.iter().map(|ss| (&ss.addr, ss.forward));
            let forwards: Vec<(&String, Forward)> =
                s.reals.iter().map(|r| (&r.addr, r.forward)).chain(sorry).collect();
            if s.synproxy {
                if let Some(r) = forwards.iter().find(|r| !r.1.replies_through_gateway()) {
                    return Err(err(
                        f("synproxy"),
                        format!(
                            "SYN-proxy needs the real server's replies through the gateway; real {} forwards {}",
                            r.0, r.1
                        ),
                    ));
                }
            }
            if !s.proxy_protocol.is_off() {
                if s.proto != Proto::Tcp {
                    return Err(err(f("proxy_protocol"), "the PROXY protocol applies to tcp services only"));
                }
                if s.toa {
                    return Err(err(
                        f("proxy_protocol"),
                        "the PROXY protocol and TOA both carry the client's address; choose one",
                    ));
                }
                if let Some(r) = s.reals.iter().find(|r| !r.forward.replies_through_gateway()) {
                    return Err(err(
                        f("proxy_protocol"),
                        format!(
                            "the PROXY protocol needs the real server's replies through the gateway (their acknowledgements are shifted); real {} forwards {}",
                            r.addr, r.forward
                        ),
                    ));
                }
            }
            if s.toa {
                if let Some(r) = forwards.iter().find(|r| r.1 != Forward::Fullnat) {
                    return Err(err(
                        f("toa"),
                        format!(
                            "TOA is for FULLNAT real servers (with {} the real server sees the client's address itself); real {} forwards {}",
                            r.1, r.0, r.1
                        ),
                    ));
                }
            }
            if let Some(c) = &s.check {
                if c.interval_ms < 100 || c.timeout_ms == 0 || c.timeout_ms > c.interval_ms {
                    return Err(err(
                        f("check.timeout_ms"),
                        "need 100 <= interval_ms and 0 < timeout_ms <= interval_ms",
                    ));
                }
                if c.rise == 0 || c.fall == 0 {
                    return Err(err(f("check.rise"), "rise and fall must be at least 1"));
                }
                if c.retry_ms.is_some_and(|r| r > MAX_CHECK_RETRY_MS) {
                    return Err(err(f("check.retry_ms"), format!("more than {MAX_CHECK_RETRY_MS} ms")));
                }
                if c.kind.is_http() && !c.path.starts_with('/') {
                    return Err(err(f("check.path"), "must start with /"));
                }
                if c.kind.is_http() && c.path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(err(f("check.path"), "must not hold spaces or control characters"));
                }
                if let Some(h) = &c.host {
                    if !c.kind.is_http() {
                        return Err(err(f("check.host"), "only http and https checks send a Host"));
                    }
                    if h.is_empty() || h.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                        return Err(err(
                            f("check.host"),
                            format!("{h:?} is empty or holds spaces or control characters"),
                        ));
                    }
                }
                if let Some(n) = &c.sni {
                    if c.kind != CheckKind::Https {
                        return Err(err(f("check.sni"), "only https checks send a TLS server name"));
                    }
                    if rustls::pki_types::DnsName::try_from(n.as_str()).is_err() {
                        return Err(err(f("check.sni"), format!("\"{n}\" is not a DNS name")));
                    }
                }
            }
            if s.quorum == 0 {
                return Err(err(f("quorum"), "must be at least 1 (keepalived's range)"));
            }
            if s.hysteresis >= s.quorum {
                return Err(err(
                    f("hysteresis"),
                    format!("{} must be below quorum {}", s.hysteresis, s.quorum),
                ));
            }
        }
        Ok(())
    }

    /// Things that are valid but probably not meant, one line each naming the field; rvsd logs them
    /// at load and `rvsd --check` prints them. A FULLNAT service with real servers and no local
    /// address is valid because DPVS's set-up order (`-A`, `-a`, then `--add-laddr`) passes through
    /// it: until a local address arrives the dataplane drops its new connections (`drop.no_laddr`).
    /// Real servers forwarding NAT, DR or TUN need no local address, so a service with only those
    /// is not warned about.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            if s.reals.iter().any(|r| r.forward == Forward::Fullnat) && s.laddrs.is_empty() {
                w.push(format!(
                    "services[{i}].laddrs: {} {} has FULLNAT real servers but no local address; their new connections are dropped (drop.no_laddr) until one is added",
                    s.proto, s.vip
                ));
            }
            let total: u64 = s.reals.iter().map(|r| u64::from(r.weight)).sum();
            let start = u64::from(s.quorum) + u64::from(s.hysteresis);
            if s.sorry_server.is_some() && total < start {
                w.push(format!(
                    "services[{i}].quorum: {} {}: its real servers weigh {total} in all, below quorum {} + hysteresis {}: it never has quorum and its sorry server serves alone",
                    s.proto, s.vip, s.quorum, s.hysteresis
                ));
            }
        }
        w
    }
}
