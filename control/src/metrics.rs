//! Prometheus metrics: a snapshot of the daemon's counters encoded with `prometheus-client`.
//!
//! The daemon fills a [`Snapshot`] from what its `stats` and `list_services` answers already read
//! (each worker's [`Stats`] block, and the per-real counts the workers return through their command
//! channels), and [`encode`] turns it into an exposition. Nothing here touches the fast path. The
//! families are listed in docs/metrics.md; the HTTP shell around this is [`crate::metrics_http`].
//!
//! Formats: `prometheus-client` writes OpenMetrics 1.0 text (what Prometheus asks for in its
//! `Accept` header). For other clients (curl, `promtool check metrics`) the same exposition is also
//! given in Prometheus's classic text format 0.0.4 ([`Format::Text`]): for the only metric types
//! used here, counters and gauges, the two differ in exactly three ways, which
//! [`openmetrics_to_text`] undoes: a counter family's `# HELP`/`# TYPE` name lacks the `_total` its
//! samples carry, `# UNIT` lines, and the closing `# EOF`.
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode as encode_openmetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rvs_dataplane::service::Counters as DpCounters;
use rvs_dataplane::stats::{DropReason, Event, Gauge as DpGauge, Stats};

use crate::config::Proto;

/// Every metric name starts with this.
pub const PREFIX: &str = "rvs";

/// Content type of [`Format::OpenMetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of [`Format::Text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, when the client's `Accept` names `application/openmetrics-text`.
    OpenMetrics,
    /// Prometheus text format 0.0.4, for everyone else.
    Text,
}

impl Format {
    /// The format an `Accept` header value asks for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// What a real server's health check says (the `state` label of `rvs_real_health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Its check passes.
    Up,
    /// Its check failed and the service has `inhibit_on_failure`: kept at weight 0.
    Inhibited,
    /// Its check failed: removed from the dataplane's pool (keepalived's default).
    Removed,
    /// The service has no check.
    Unchecked,
}

impl Health {
    pub const ALL: [Health; 4] = [Health::Up, Health::Inhibited, Health::Removed, Health::Unchecked];

    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Inhibited => "inhibited",
            Health::Removed => "removed",
            Health::Unchecked => "unchecked",
        }
    }
}

/// One real server: counts and counters summed over workers.
#[derive(Debug, Clone, PartialEq)]
pub struct RealMetrics {
    /// `RS:port`.
    pub addr: String,
    /// Configured weight.
    pub weight: u32,
    pub active_conns: u64,
    pub inactive_conns: u64,
    pub counters: DpCounters,
    pub health: Health,
}

/// One virtual service and its real servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetrics {
    pub proto: Proto,
    /// `VIP:port`.
    pub vip: String,
    pub reals: Vec<RealMetrics>,
}

/// What the HTTP endpoint itself refused or answered, by outcome (a counter per outcome).
#[derive(Debug, Default)]
pub struct HttpStats {
    counts: [AtomicU64; HttpOutcome::ALL.len()],
}

/// How one connection to the metrics endpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome {
    /// 200, metrics sent.
    Served,
    /// 503 at accept: `max_clients` connections were already being served.
    TooManyClients,
    /// 408: the request head did not arrive within `read_timeout_ms`.
    Timeout,
    /// 431: the request head exceeded `max_request_bytes` (or too many headers).
    TooLarge,
    /// 400: not an HTTP/1.x request.
    BadRequest,
    /// 404: a path other than `/metrics`.
    NotFound,
    /// 405: a method other than GET.
    BadMethod,
    /// 503: the workers did not answer the query in time.
    Unavailable,
    /// The client closed before sending a whole request head.
    Closed,
}

impl HttpOutcome {
    pub const ALL: [HttpOutcome; 9] = [
        HttpOutcome::Served,
        HttpOutcome::TooManyClients,
        HttpOutcome::Timeout,
        HttpOutcome::TooLarge,
        HttpOutcome::BadRequest,
        HttpOutcome::NotFound,
        HttpOutcome::BadMethod,
        HttpOutcome::Unavailable,
        HttpOutcome::Closed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HttpOutcome::Served => "served",
            HttpOutcome::TooManyClients => "too_many_clients",
            HttpOutcome::Timeout => "timeout",
            HttpOutcome::TooLarge => "too_large",
            HttpOutcome::BadRequest => "bad_request",
            HttpOutcome::NotFound => "not_found",
            HttpOutcome::BadMethod => "bad_method",
            HttpOutcome::Unavailable => "unavailable",
            HttpOutcome::Closed => "closed",
        }
    }
}

impl HttpStats {
    pub fn count(&self, o: HttpOutcome) {
        self.counts[o as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, o: HttpOutcome) -> u64 {
        self.counts[o as usize].load(Ordering::Relaxed)
    }
}

/// Everything one scrape reports.
#[derive(Debug)]
pub struct Snapshot<'a> {
    /// Each worker's counters, in worker order (label `worker`).
    pub workers: &'a [&'a Stats],
    pub services: &'a [ServiceMetrics],
    pub http: Option<&'a HttpStats>,
    /// Connection sync counters by name (docs/ha.md), when a sync daemon ever ran.
    pub sync: &'a [(&'static str, u64)],
}

type Labels = Vec<(&'static str, String)>;
type U64Gauge = Gauge<u64, AtomicU64>;

/// A counter family registered under `name` (exposed as `rvs_<name>_total`).
fn counters(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

/// A gauge family registered under `name` (exposed as `rvs_<name>`).
fn gauges(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, U64Gauge> {
    let f = Family::<Labels, U64Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

/// Help text of a per-worker event counter.
fn event_help(e: Event) -> String {
    match e {
        Event::RxPackets => "Packets received from the ports, per worker".into(),
        Event::RxBytes => "Bytes received from the ports, per worker".into(),
        Event::TxPackets => "Packets sent to the ports, per worker".into(),
        Event::TxBytes => "Bytes sent to the ports, per worker".into(),
        Event::HandoffOut => "Frames passed to another worker".into(),
        Event::HandoffIn => "Frames received from another worker".into(),
        Event::BusyCycles => "TSC cycles of polls that received frames".into(),
        Event::BusyPackets => {
            "Frames received in busy polls (busy_cycles / busy_packets: cycles per packet)".into()
        }
        Event::SynproxySynAcks => "SYN-proxy: SYNs answered with a cookie SYN-ACK (cookies sent)".into(),
        Event::SynproxyCookiesValid => "SYN-proxy: ACKs whose cookie verified".into(),
        e => format!("Dataplane event {}, per worker (dataplane/src/stats.rs)", e.as_str()),
    }
}

/// Help text of a per-worker gauge.
fn gauge_help(g: DpGauge) -> String {
    match g {
        DpGauge::Conns => "Connections in the worker's table".into(),
        DpGauge::ConnCapacity => "The worker's connection table capacity".into(),
        DpGauge::SynproxyHalfOpen => "SYN-proxy: connections waiting for their real server".into(),
        g => format!("Dataplane gauge {}, per worker (dataplane/src/stats.rs)", g.as_str()),
    }
}

/// The registry of one scrape.
pub fn registry(snap: &Snapshot<'_>) -> Registry {
    let mut reg = Registry::with_prefix(PREFIX);
    let worker = |i: usize| -> Labels { vec![("worker", i.to_string())] };

    for &e in Event::ALL {
        let f = counters(&mut reg, e.as_str(), &event_help(e));
        for (i, s) in snap.workers.iter().enumerate() {
            f.get_or_create(&worker(i)).inc_by(s.events(e));
        }
    }
    let drops =
        counters(&mut reg, "drops", "Packets dropped, per worker and reason (every reason, zeros included)");
    for (i, s) in snap.workers.iter().enumerate() {
        for &r in DropReason::ALL {
            drops
                .get_or_create(&vec![("worker", i.to_string()), ("reason", r.as_str().into())])
                .inc_by(s.drops(r));
        }
    }
    for &g in DpGauge::ALL {
        let f = gauges(&mut reg, g.as_str(), &gauge_help(g));
        for (i, s) in snap.workers.iter().enumerate() {
            f.get_or_create(&worker(i)).set(s.gauge(g));
        }
    }

    let svc_conns = counters(&mut reg, "service_connections", "Connections scheduled to the service");
    let svc_inpkts = counters(&mut reg, "service_in_packets", "Packets client to real server (service)");
    let svc_outpkts = counters(&mut reg, "service_out_packets", "Packets real server to client (service)");
    let svc_inbytes = counters(&mut reg, "service_in_bytes", "Bytes client to real server (service)");
    let svc_outbytes = counters(&mut reg, "service_out_bytes", "Bytes real server to client (service)");
    let svc_active = gauges(&mut reg, "service_active_conns", "Established connections of the service");
    let svc_inactive = gauges(&mut reg, "service_inactive_conns", "Other connections of the service");
    let rs_conns = counters(&mut reg, "real_connections", "Connections scheduled to the real server");
    let rs_inpkts = counters(&mut reg, "real_in_packets", "Packets client to real server");
    let rs_outpkts = counters(&mut reg, "real_out_packets", "Packets real server to client");
    let rs_inbytes = counters(&mut reg, "real_in_bytes", "Bytes client to real server");
    let rs_outbytes = counters(&mut reg, "real_out_bytes", "Bytes real server to client");
    let rs_active = gauges(&mut reg, "real_active_conns", "Established connections of the real server");
    let rs_inactive = gauges(&mut reg, "real_inactive_conns", "Other connections of the real server");
    let rs_weight = gauges(&mut reg, "real_weight", "Configured weight of the real server");
    let rs_health = gauges(
        &mut reg,
        "real_health",
        "Health of the real server: 1 for its state (up, inhibited, removed, unchecked), 0 for the others",
    );
    for s in snap.services {
        let sl: Labels = vec![("proto", s.proto.as_str().into()), ("vip", s.vip.clone())];
        let mut total = DpCounters::default();
        let (mut active, mut inactive) = (0, 0);
        for r in &s.reals {
            let mut rl = sl.clone();
            rl.push(("rs", r.addr.clone()));
            rs_conns.get_or_create(&rl).inc_by(r.counters.conns);
            rs_inpkts.get_or_create(&rl).inc_by(r.counters.inpkts);
            rs_outpkts.get_or_create(&rl).inc_by(r.counters.outpkts);
            rs_inbytes.get_or_create(&rl).inc_by(r.counters.inbytes);
            rs_outbytes.get_or_create(&rl).inc_by(r.counters.outbytes);
            rs_active.get_or_create(&rl).set(r.active_conns);
            rs_inactive.get_or_create(&rl).set(r.inactive_conns);
            rs_weight.get_or_create(&rl).set(r.weight as u64);
            for h in Health::ALL {
                let mut hl = rl.clone();
                hl.push(("state", h.as_str().into()));
                rs_health.get_or_create(&hl).set(u64::from(h == r.health));
            }
            total.add(&r.counters);
            active += r.active_conns;
            inactive += r.inactive_conns;
        }
        svc_conns.get_or_create(&sl).inc_by(total.conns);
        svc_inpkts.get_or_create(&sl).inc_by(total.inpkts);
        svc_outpkts.get_or_create(&sl).inc_by(total.outpkts);
        svc_inbytes.get_or_create(&sl).inc_by(total.inbytes);
        svc_outbytes.get_or_create(&sl).inc_by(total.outbytes);
        svc_active.get_or_create(&sl).set(active);
        svc_inactive.get_or_create(&sl).set(inactive);
    }

    if let Some(h) = snap.http {
        let f = counters(
            &mut reg,
            "metrics_http_connections",
            "Connections to this metrics endpoint, by how they ended",
        );
        for o in HttpOutcome::ALL {
            f.get_or_create(&vec![("outcome", o.as_str().into())]).inc_by(h.get(o));
        }
    }
    if !snap.sync.is_empty() {
        let f = counters(&mut reg, "sync", "Connection sync (IPVS sync v1) events, by counter (docs/ha.md)");
        for (name, v) in snap.sync {
            f.get_or_create(&vec![("counter", (*name).to_owned())]).inc_by(*v);
        }
    }
    reg
}

/// The exposition of `snap` in `format`.
pub fn encode(snap: &Snapshot<'_>, format: Format) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, and the registry holds only counters and gauges.
    if encode_openmetrics(&mut out, &registry(snap)).is_err() {
        out.clear();
    }
    match format {
        Format::OpenMetrics => out,
        Format::Text => openmetrics_to_text(&out),
    }
}

/// OpenMetrics text with only counter and gauge families -> Prometheus text format 0.0.4: counter
/// families' `# HELP`/`# TYPE` lines take their samples' `_total` name; `# UNIT` and `# EOF` go.
pub fn openmetrics_to_text(om: &str) -> String {
    let counters: HashSet<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len() + 16 * counters.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(p);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stats() -> (Stats, Stats) {
        let (a, b) = (Stats::default(), Stats::default());
        a.add(Event::RxPackets, 155);
        a.add(Event::RxBytes, 12_345);
        a.add(Event::TxPackets, 150);
        a.add(Event::HandoffOut, 7);
        a.add(Event::SynproxySynAcks, 3);
        a.dropped(DropReason::NoService);
        a.dropped(DropReason::NoService);
        a.set(DpGauge::Conns, 13);
        a.set(DpGauge::ConnCapacity, 81_920);
        b.add(Event::HandoffIn, 7);
        b.dropped(DropReason::TxFull);
        b.set(DpGauge::SynproxyHalfOpen, 2);
        (a, b)
    }

    fn sample_services() -> Vec<ServiceMetrics> {
        vec![ServiceMetrics {
            proto: Proto::Tcp,
            vip: "198.18.0.100:80".into(),
            reals: vec![
                RealMetrics {
                    addr: "198.18.1.11:80".into(),
                    weight: 3,
                    active_conns: 2,
                    inactive_conns: 4,
                    counters: DpCounters { conns: 6, inpkts: 36, outpkts: 24, inbytes: 2520, outbytes: 2346 },
                    health: Health::Up,
                },
                RealMetrics {
                    addr: "198.18.1.12:80".into(),
                    weight: 1,
                    active_conns: 0,
                    inactive_conns: 1,
                    counters: DpCounters { conns: 1, inpkts: 6, outpkts: 4, inbytes: 420, outbytes: 391 },
                    health: Health::Inhibited,
                },
            ],
        }]
    }

    fn text(format: Format) -> String {
        let (a, b) = sample_stats();
        let services = sample_services();
        let http = HttpStats::default();
        http.count(HttpOutcome::Served);
        http.count(HttpOutcome::Timeout);
        http.count(HttpOutcome::Timeout);
        encode(&Snapshot { workers: &[&a, &b], services: &services, http: Some(&http), sync: &[] }, format)
    }

    /// The lines of `text` from the `# HELP` of `family` to its last sample, samples sorted (a
    /// family's samples come in no particular order).
    fn family(text: &str, family: &str) -> Vec<String> {
        let start = text.lines().position(|l| l.starts_with(&format!("# HELP {family} "))).unwrap();
        let mut lines: Vec<String> = text.lines().skip(start).take(2).map(str::to_owned).collect();
        let mut samples: Vec<String> =
            text.lines().skip(start + 2).take_while(|l| !l.starts_with('#')).map(str::to_owned).collect();
        samples.sort();
        lines.extend(samples);
        lines
    }

    #[test]
    fn worker_counters_and_gauges_exact_lines() {
        let t = text(Format::Text);
        assert_eq!(
            family(&t, "rvs_rx_packets_total"),
            [
                "# HELP rvs_rx_packets_total Packets received from the ports, per worker.",
                "# TYPE rvs_rx_packets_total counter",
                "rvs_rx_packets_total{worker=\"0\"} 155",
                "rvs_rx_packets_total{worker=\"1\"} 0",
            ]
        );
        assert_eq!(
            family(&t, "rvs_conns"),
            [
                "# HELP rvs_conns Connections in the worker's table.",
                "# TYPE rvs_conns gauge",
                "rvs_conns{worker=\"0\"} 13",
                "rvs_conns{worker=\"1\"} 0",
            ]
        );
        assert!(t.contains("\nrvs_handoff_out_total{worker=\"0\"} 7\n"));
        assert!(t.contains("\nrvs_handoff_in_total{worker=\"1\"} 7\n"));
        assert!(t.contains("\nrvs_synproxy_synacks_total{worker=\"0\"} 3\n"));
        assert!(t.contains("\nrvs_synproxy_half_open{worker=\"1\"} 2\n"));
        assert!(t.contains("\nrvs_conn_capacity{worker=\"0\"} 81920\n"));
    }

    #[test]
    fn every_drop_reason_of_every_worker_is_a_sample() {
        let t = text(Format::Text);
        let drops = family(&t, "rvs_drops_total");
        assert_eq!(drops[1], "# TYPE rvs_drops_total counter");
        assert_eq!(drops.len(), 2 + 2 * DropReason::COUNT);
        assert!(drops.contains(&"rvs_drops_total{worker=\"0\",reason=\"no_service\"} 2".to_owned()));
        assert!(drops.contains(&"rvs_drops_total{worker=\"1\",reason=\"tx_full\"} 1".to_owned()));
        assert!(drops.contains(&"rvs_drops_total{worker=\"1\",reason=\"no_service\"} 0".to_owned()));
        for r in DropReason::ALL {
            assert!(
                t.contains(&format!("rvs_drops_total{{worker=\"0\",reason=\"{}\"}}", r.as_str())),
                "{r:?}"
            );
        }
    }

    #[test]
    fn services_and_reals_exact_lines() {
        let t = text(Format::Text);
        assert_eq!(
            family(&t, "rvs_service_connections_total"),
            [
                "# HELP rvs_service_connections_total Connections scheduled to the service.",
                "# TYPE rvs_service_connections_total counter",
                "rvs_service_connections_total{proto=\"tcp\",vip=\"198.18.0.100:80\"} 7",
            ]
        );
        assert!(t.contains("\nrvs_service_in_bytes_total{proto=\"tcp\",vip=\"198.18.0.100:80\"} 2940\n"));
        assert!(t.contains("\nrvs_service_active_conns{proto=\"tcp\",vip=\"198.18.0.100:80\"} 2\n"));
        assert!(t.contains("\nrvs_service_inactive_conns{proto=\"tcp\",vip=\"198.18.0.100:80\"} 5\n"));
        assert_eq!(
            family(&t, "rvs_real_out_packets_total")[2..],
            [
                "rvs_real_out_packets_total{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.11:80\"} 24",
                "rvs_real_out_packets_total{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.12:80\"} 4",
            ]
        );
        let health = family(&t, "rvs_real_health");
        assert_eq!(health.len(), 2 + 8);
        assert!(health.contains(
            &"rvs_real_health{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.11:80\",state=\"up\"} 1"
                .to_owned()
        ));
        assert!(health.contains(&"rvs_real_health{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.11:80\",state=\"removed\"} 0".to_owned()));
        assert!(health.contains(&"rvs_real_health{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.12:80\",state=\"inhibited\"} 1".to_owned()));
        assert!(health.contains(
            &"rvs_real_health{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.12:80\",state=\"up\"} 0"
                .to_owned()
        ));
        assert!(
            t.contains("\nrvs_real_weight{proto=\"tcp\",vip=\"198.18.0.100:80\",rs=\"198.18.1.11:80\"} 3\n")
        );
        assert!(t.contains("\nrvs_metrics_http_connections_total{outcome=\"timeout\"} 2\n"));
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let t = text(Format::OpenMetrics);
        // Samples of a family come in no particular order.
        let family_start = "\n# TYPE rvs_rx_packets counter\nrvs_rx_packets_total{worker=";
        assert!(t.contains(family_start), "{t}");
        assert!(t.contains("\nrvs_rx_packets_total{worker=\"0\"} 155\n"));
        assert!(t.ends_with("# EOF\n"));
        let p = text(Format::Text);
        assert!(!p.contains("# EOF") && !p.contains("# UNIT"));
        // The two carry the same samples.
        let samples = |s: &str| {
            let mut v = s.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect::<Vec<_>>();
            v.sort();
            v
        };
        assert_eq!(samples(&t), samples(&p));
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    }

    #[test]
    fn sync_counters_are_one_family() {
        let sync = [("installed", 5), ("ops_lost", 0)];
        let out = encode(&Snapshot { workers: &[], services: &[], http: None, sync: &sync }, Format::Text);
        assert!(out.contains("rvs_sync_total{counter=\"installed\"} 5"), "{out}");
        assert!(out.contains("rvs_sync_total{counter=\"ops_lost\"} 0"), "{out}");
        let none = encode(&Snapshot { workers: &[], services: &[], http: None, sync: &[] }, Format::Text);
        assert!(!none.contains("rvs_sync"), "{none}");
    }
}
