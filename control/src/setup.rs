//! Turns a validated [`Config`] into the dataplane's [`Setup`].
use std::str::FromStr;

use rvs_dataplane::conn::Timeouts;
use rvs_dataplane::flow::Proto as DpProto;
use rvs_dataplane::sched::SchedKind;
use rvs_dataplane::setup::{
    AdoptSetup, ConnSetup, FragSetup, PortSetup, RealSetup, RouteSetup, ServiceSetup, Setup, SynproxySetup,
};
use rvs_dataplane::wire::EthernetAddress;

use crate::config::{
    parse_endpoint, parse_ip, Cidr, Cidr6, Config, ConfigError, Prefix, Proto, RealRemovedMode, Sched,
    TimestampMode,
};

fn err(field: String, msg: impl Into<String>) -> ConfigError {
    ConfigError { field, msg: msg.into() }
}

/// Timeouts in the dataplane's units.
pub fn timeouts(cfg: &Config) -> Timeouts {
    let t = &cfg.conn.timeouts;
    let s = |v: u32| v as u64 * 1000;
    Timeouts {
        established: s(t.established),
        syn_sent: s(t.syn_sent),
        syn_recv: s(t.syn_recv),
        fin_wait: s(t.fin_wait),
        time_wait: s(t.time_wait),
        close: s(t.close),
        close_wait: s(t.close_wait),
        last_ack: s(t.last_ack),
        udp: s(t.udp),
        ..Timeouts::default()
    }
}

/// The dataplane's scheduler for a configured one.
pub fn sched_kind(s: Sched) -> SchedKind {
    match s {
        Sched::Rr => SchedKind::Rr,
        Sched::Wrr => SchedKind::Wrr,
        Sched::Lc => SchedKind::Lc,
        Sched::Wlc => SchedKind::Wlc,
        Sched::Sh => SchedKind::Sh,
        Sched::Mh => SchedKind::Mh,
    }
}

/// The worker-side port index of port `i`'s kernel interface: TAP ports follow the physical ports,
/// in the order of the ports that have one (rvsd creates them so).
pub fn kernel_index(cfg: &Config, i: usize) -> usize {
    cfg.ports.len() + cfg.ports[..i].iter().filter(|q| q.kernel.is_some()).count()
}

/// `macs[i]` is the MAC address of `cfg.ports[i]`. Service and real ids are left 0: the control
/// state fills them in ([`crate::state::ControlState::setup`]).
pub fn dataplane_setup(cfg: &Config, macs: &[[u8; 6]]) -> Result<Setup, ConfigError> {
    let mut ports = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let c = Cidr::from_str(&p.addr).map_err(|m| err(format!("ports[{i}].addr"), m))?;
        let mac =
            macs.get(i).copied().ok_or_else(|| err(format!("ports[{i}]"), "port has no MAC address"))?;
        let c6 = match &p.addr6 {
            None => None,
            Some(a) => Some(Cidr6::from_str(a).map_err(|m| err(format!("ports[{i}].addr6"), m))?),
        };
        ports.push(PortSetup {
            name: p.name.clone(),
            mac: EthernetAddress(mac),
            addr: c.addr,
            prefix_len: c.len,
            addr6: c6.map(|c| c.addr),
            prefix6_len: c6.map_or(0, |c| c.len),
            mtu: p.mtu,
            // TAP ports come after the physical ones, in port order (as rvsd creates them).
            kernel: p.kernel.as_ref().map(|_| kernel_index(cfg, i)),
        });
    }
    let mut routes = Vec::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let c = Prefix::from_str(&r.dst).map_err(|m| err(format!("routes[{i}].dst"), m))?;
        let via = parse_ip(&r.via).map_err(|m| err(format!("routes[{i}].via"), m))?;
        routes.push(RouteSetup { dst: c.addr(), prefix_len: c.prefix_len(), via });
    }
    let mut services = Vec::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let (vip, vport) = parse_endpoint(&s.vip).map_err(|m| err(format!("services[{i}].vip"), m))?;
        let proto = match s.proto {
            Proto::Tcp => DpProto::Tcp,
            Proto::Udp => DpProto::Udp,
        };
        let sched = sched_kind(s.sched);
        let laddrs = s.laddrs.iter().filter_map(|l| parse_ip(l).ok()).collect();
        let mut reals = Vec::new();
        for (j, r) in s.reals.iter().enumerate() {
            let (addr, port) =
                parse_endpoint(&r.addr).map_err(|m| err(format!("services[{i}].reals[{j}].addr"), m))?;
            reals.push(RealSetup {
                id: 0,
                addr,
                port,
                weight: r.weight,
                u_threshold: r.u_threshold,
                l_threshold: r.l_threshold,
                xlat: r.forward.xlat(),
            });
        }
        services.push(ServiceSetup {
            id: 0,
            proto,
            vip,
            vport,
            sched,
            persistence_ms: s.persistence.map(|p| p as u64 * 1000),
            toa: s.toa,
            proxy_protocol: s.proxy_protocol.version(),
            synproxy: s.synproxy,
            laddrs,
            reals,
        });
    }
    let c = &cfg.conn;
    Ok(Setup {
        ports,
        routes,
        services,
        conn: ConnSetup {
            max_per_worker: c.max_per_worker,
            rst_on_miss: c.rst_on_miss,
            expire_budget: c.expire_budget,
            persist_templates: c.persist_templates,
            arp_queue: c.arp_queue,
            max_neighbours: 1024,
            neigh_timeout_ms: c.neigh_timeout_s as u64 * 1000,
            lport_min: c.lport_min,
            lport_max: c.lport_max,
            strip_timestamps: c.tcp_timestamps == TimestampMode::Strip,
            timeouts: timeouts(cfg),
            expire_on_real_removed: c.on_real_removed == RealRemovedMode::Expire,
            proxy_timers: c.proxy_timers,
            frag: FragSetup {
                max_datagrams: c.frag.max_datagrams,
                max_per_source: c.frag.max_per_source,
                timeout_ms: u64::from(c.frag.timeout_ms),
            },
            // The addresses are the watcher's; the control state fills them in.
            adopt: cfg.vrrp.adopt.then(|| AdoptSetup {
                addrs: Vec::new(),
                garp_count: cfg.vrrp.garp_count,
                garp_interval_ms: u64::from(cfg.vrrp.garp_interval_ms),
            }),
            synproxy: {
                let sp = &cfg.synproxy;
                SynproxySetup {
                    // The daemon replaces this with a random key at start (see rvsd's main).
                    key: SynproxySetup::default().key,
                    period_ms: sp.period_s as u64 * 1000,
                    max_half_open: sp.max_half_open,
                    max_held: sp.max_held,
                    syn_retries: sp.syn_retries,
                    syn_retry_ms: sp.syn_retry_ms as u64,
                    ack_storm: sp.ack_storm,
                    mss: sp.mss,
                    wscale: sp.wscale,
                    window: sp.window,
                }
            },
        },
        workers: cfg.workers.lcores.len() as u16,
        exception: rvs_dataplane::setup::ExceptionSetup {
            rate_pps: cfg.exception.rate_pps,
            burst: cfg.exception.burst,
        },
    })
}
