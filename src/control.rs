//! The daemon's control thread: the API server wired to the control state and the workers.
//!
//! Changes are validated and committed by [`ControlState`] under one mutex (control plane only,
//! never touched by a worker), turned into a dataplane `Setup`, and sent to every worker's command
//! channel; the request is answered only when every worker has acknowledged the new epoch.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Sender};
use rvs_control::announce::{Announcer, IpRoute};
use rvs_control::api::{
    cycles_per_packet, ConnInfo, Counters, Duplex, ErrorCode, LinkInfo, PortCounters, PortInfo, RealInfo,
    RealStats, Refusal, Reply, Request, Response, ServiceId, ServiceInfo, ServiceStats, TemplateInfo,
    WorkerStats, API_VERSION,
};
use rvs_control::capture::{CaptureRequest, CaptureStatus};
use rvs_control::config::{endpoint, ControlConfig, MetricsConfig};
use rvs_control::health::{HealthChecker, Target, Transition};
use rvs_control::metrics::{self, Format, Health, HttpStats, RealMetrics, ServiceMetrics};
use rvs_control::state::ControlState;
use rvs_control::{metrics_http, server};
use rvs_dataplane::service::Counters as DpCounters;
use rvs_dataplane::stats::{Event, Stats};
use rvs_dataplane::worker::RealCounts;

use rvsd::capture::Capture;
use rvsd::worker::Command;

/// How long a request waits for every worker to acknowledge a change or answer a query.
const WORKER_TIMEOUT: Duration = Duration::from_secs(2);
/// LVS's rate estimator interval.
const RATE_INTERVAL: Duration = Duration::from_secs(2);
/// Largest page of connections one request returns.
const MAX_CONNS_PAGE: u64 = 100_000;

/// The control thread's handle on one worker.
#[derive(Debug, Clone)]
pub struct WorkerLink {
    pub commands: Sender<Command>,
    pub applied: Arc<AtomicU64>,
}

/// What rvsd knows of one port: what does not change, captured at start-up (`main`), and a reader
/// for its link state and counters.
#[derive(Debug)]
pub struct PortEntry {
    /// Everything but `link` and `stats`.
    pub fixed: PortInfo,
    pub reader: dpdk_sys::PortReader,
}

/// Active and inactive connections and counters of one real server, summed over workers.
type RealTotals = (u64, u64, DpCounters);

#[derive(Debug, Clone, Copy, Default)]
struct Rates {
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

pub struct Shared {
    state: Mutex<ControlState>,
    workers: Vec<WorkerLink>,
    stats: Vec<Arc<Stats>>,
    macs: Vec<[u8; 6]>,
    /// How replies reach their worker (`steer::SteerMode` name).
    steering: &'static str,
    /// With NIC flow rules: where the LIP set goes after each change, for the main thread to
    /// install and remove rules.
    lips: Option<crossbeam::channel::Sender<crate::steering::Lips>>,
    /// Per (service id, real id): the last sample and the rates derived from it.
    rates: Mutex<HashMap<(u32, u32), (DpCounters, Rates)>>,
    health: OnceLock<HealthChecker>,
    /// The ports, read on `list_ports`. One lock for all: API clients run on threads of their own,
    /// and a PMD's link and stats reads must not run twice at once on one port.
    ports: Mutex<Vec<PortEntry>>,
    /// The running or last packet capture (`capture_start`); one at a time.
    capture: Mutex<Option<Capture>>,
    /// With `[announce] table`: the VIP routes, kept in line with every published setup.
    announcer: OnceLock<Mutex<Announcer<IpRoute>>>,
    /// The connection sync daemons (`sync_start`, `[sync]`).
    sync: Mutex<rvsd::sync::Daemons>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

fn api_counters(c: &DpCounters, r: &Rates) -> Counters {
    Counters {
        conns: c.conns,
        inpkts: c.inpkts,
        outpkts: c.outpkts,
        inbytes: c.inbytes,
        outbytes: c.outbytes,
        cps: r.cps,
        inpps: r.inpps,
        outpps: r.outpps,
        inbps: r.inbps,
        outbps: r.outbps,
    }
}

impl Shared {
    pub fn new(
        state: ControlState,
        workers: Vec<WorkerLink>,
        stats: Vec<Arc<Stats>>,
        macs: Vec<[u8; 6]>,
        steering: &'static str,
        lips: Option<crossbeam::channel::Sender<crate::steering::Lips>>,
        ports: Vec<PortEntry>,
    ) -> Shared {
        let workers_tx = workers.iter().map(|w| w.commands.clone()).collect();
        Shared {
            state: Mutex::new(state),
            workers,
            stats,
            macs,
            steering,
            lips,
            rates: Mutex::new(HashMap::new()),
            health: OnceLock::new(),
            ports: Mutex::new(ports),
            capture: Mutex::new(None),
            announcer: OnceLock::new(),
            sync: Mutex::new(rvsd::sync::Daemons::new(workers_tx)),
        }
    }

    /// Starts announcing: the VIPs the workers' current setup can serve are announced now, and
    /// every later published setup updates them. Under the state lock, so no change is published
    /// in between.
    pub fn start_announcing(&self, mut announcer: Announcer<IpRoute>) -> Result<(), String> {
        let st = self.lock();
        announcer.update(&st.setup(&self.macs)?);
        let _ = self.announcer.set(Mutex::new(announcer));
        Ok(())
    }

    /// Withdraws every announced VIP for good (SIGTERM, exit); returns how many were withdrawn.
    pub fn withdraw_all(&self) -> usize {
        self.announcer
            .get()
            .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).withdraw_all().len())
            .unwrap_or(0)
    }

    /// Starts the sync roles `[sync]` asks for (at daemon start).
    pub fn start_sync(&self) -> Result<(), String> {
        let cfg = self.lock().config().sync.clone();
        self.sync.lock().unwrap_or_else(|p| p.into_inner()).start_from_config(&cfg)
    }

    /// Stops the sync daemons (at daemon exit, before the workers stop).
    pub fn stop_sync(&self) {
        self.sync.lock().unwrap_or_else(|p| p.into_inner()).shutdown();
    }

    fn sync_reply(&self, d: &rvsd::sync::Daemons) -> Reply {
        use rvs_control::api::{SyncDaemonInfo, SyncRoleName};
        let daemons = d
            .status()
            .into_iter()
            .map(|r| SyncDaemonInfo {
                role: if r.master { SyncRoleName::Master } else { SyncRoleName::Backup },
                interface: r.cfg.interface.clone().unwrap_or_default(),
                syncid: r.cfg.syncid,
                maxlen: rvs_control::sync::wire::max_message_len(r.cfg.mtu) as u32,
                group: r.cfg.group.to_string(),
                port: r.cfg.port,
                ttl: r.cfg.ttl,
                peer: r.cfg.peer.map(|p| p.to_string()),
            })
            .collect();
        let counters = d.counters().list().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Reply::Sync { daemons, counters }
    }

    fn sync_request(&self, req: Request) -> Result<Reply, Refusal> {
        use rvs_control::api::SyncRoleName;
        let cfg = self.lock().config().sync.clone();
        let mut d = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        match req {
            Request::SyncStart { role, interface, syncid } => {
                let mut c = cfg;
                if interface.is_some() {
                    c.interface = interface;
                }
                if let Some(id) = syncid {
                    c.syncid = id;
                }
                c.role = match role {
                    SyncRoleName::Master => rvs_control::config::SyncRole::Master,
                    SyncRoleName::Backup => rvs_control::config::SyncRole::Backup,
                };
                c.validate().map_err(|e| Refusal::from(e.to_string()))?;
                let rc = rvsd::sync::RoleConfig::from_config(&c).map_err(Refusal::from)?;
                d.start(role == SyncRoleName::Master, rc).map_err(Refusal::from)?;
            }
            Request::SyncStop { role } => d.stop(role == SyncRoleName::Master).map_err(Refusal::from)?,
            _ => {}
        }
        Ok(self.sync_reply(&d))
    }

    /// `list_ports`: the ports' fixed data with their link state and counters read now. This runs
    /// on an API client's thread while the workers poll: see `dpdk_sys::PortReader` for why these
    /// reads are safe from a non-worker thread.
    fn list_ports(&self) -> Vec<PortInfo> {
        let mut ports = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        ports
            .iter_mut()
            .map(|p| {
                let link = p
                    .reader
                    .link()
                    .map(|l| LinkInfo {
                        up: l.up,
                        speed_mbps: l.speed_mbps.filter(|_| l.up),
                        duplex: (l.up && l.speed_mbps.is_some()).then_some(if l.full_duplex {
                            Duplex::Full
                        } else {
                            Duplex::Half
                        }),
                        autoneg: l.autoneg,
                    })
                    .map_err(
                        |e| tracing::warn!(port = %p.fixed.name, error = %e, "list_ports: no link state"),
                    )
                    .ok();
                let stats = p
                    .reader
                    .stats()
                    .map(|s| PortCounters {
                        rx_packets: s.ipackets,
                        tx_packets: s.opackets,
                        rx_bytes: s.ibytes,
                        tx_bytes: s.obytes,
                        rx_errors: s.ierrors,
                        tx_errors: s.oerrors,
                        rx_missed: s.imissed,
                        rx_nombuf: s.rx_nombuf,
                    })
                    .map_err(|e| tracing::warn!(port = %p.fixed.name, error = %e, "list_ports: no counters"))
                    .ok();
                PortInfo { link, stats, ..p.fixed.clone() }
            })
            .collect()
    }

    /// Starts the health checker; its verdicts inhibit and restore real servers.
    pub fn start_health(self: &Arc<Self>) {
        let weak: Weak<Shared> = Arc::downgrade(self);
        let checker = HealthChecker::start(move |t: Transition| {
            if let Some(shared) = weak.upgrade() {
                shared.health_changed(&t);
            }
        });
        if self.health.set(checker).is_ok() {
            self.refresh_health_targets();
        }
    }

    /// A health transition: inhibit (weight 0 in the dataplane) or restore the real server.
    fn health_changed(&self, t: &Transition) {
        let Some((proto, vip)) = t.target.service.split_once(' ') else { return };
        let mut st = self.lock();
        let Ok(proto) = proto.parse() else { return };
        let Some(sid) = st.service_id(proto, vip) else { return };
        let Some(rid) = st.real_id(sid, &t.target.addr.to_string()) else { return };
        if st.set_health(sid, rid, t.up) {
            let verdict = if t.up { "restored" } else { "taken out of scheduling" };
            match self.publish(&mut st) {
                Ok(epoch) => {
                    tracing::info!(service = %t.target.service, real = %t.target.addr, reason = %t.reason, epoch, "health: {verdict}")
                }
                Err(e) => {
                    tracing::warn!(service = %t.target.service, real = %t.target.addr, error = %e, "health: could not publish")
                }
            }
        }
    }

    /// Points the checker at the real servers of every service with a check. Called without the
    /// state lock held: the checker's callback takes that lock.
    fn refresh_health_targets(&self) {
        let Some(checker) = self.health.get() else { return };
        let targets = {
            let st = self.lock();
            let mut v = Vec::new();
            for s in &st.config().services {
                let Some(check) = &s.check else { continue };
                for r in &s.reals {
                    if let Ok((a, p)) = rvs_control::config::parse_endpoint(&r.addr) {
                        v.push((
                            Target {
                                service: format!("{} {}", s.proto, s.vip),
                                addr: std::net::SocketAddr::new(a, p),
                            },
                            check.clone(),
                        ));
                    }
                }
            }
            v
        };
        checker.set_targets(targets);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        // A panic while holding the lock cannot leave ControlState half-changed (changes are
        // committed by assignment), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the state's configuration to every worker and waits for all acknowledgements.
    pub fn publish(&self, st: &mut ControlState) -> Result<u64, String> {
        let setup = Arc::new(st.setup(&self.macs)?);
        st.epoch += 1;
        let epoch = st.epoch;
        for (i, w) in self.workers.iter().enumerate() {
            w.commands
                .send_timeout(Command::Apply { setup: setup.clone(), epoch }, WORKER_TIMEOUT)
                .map_err(|_| format!("worker {i} is not taking commands"))?;
        }
        let deadline = Instant::now() + WORKER_TIMEOUT;
        for (i, w) in self.workers.iter().enumerate() {
            while w.applied.load(Ordering::Acquire) < epoch {
                if Instant::now() > deadline {
                    return Err(format!("worker {i} did not acknowledge change {epoch} in time"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        if let Some(tx) = &self.lips {
            let _ = tx.send(crate::steering::lips(&setup));
        }
        // After every worker runs the setup: a VIP is announced only once it can be served.
        if let Some(a) = self.announcer.get() {
            a.lock().unwrap_or_else(|p| p.into_inner()).update(&setup);
        }
        Ok(epoch)
    }

    /// The addresses on the kernel interfaces changed (`[vrrp] adopt`): publishes them.
    pub fn set_adopted(&self, adopted: Vec<(std::net::Ipv4Addr, usize)>) -> Result<u64, String> {
        let mut st = self.lock();
        st.set_adopted(adopted);
        self.publish(&mut st)
    }

    /// Asks every worker and collects the answers.
    fn ask<T: Send + 'static>(&self, make: impl Fn(Sender<T>) -> Command) -> Result<Vec<T>, String> {
        let mut pending = Vec::new();
        for (i, w) in self.workers.iter().enumerate() {
            let (tx, rx) = bounded(1);
            w.commands
                .send_timeout(make(tx), WORKER_TIMEOUT)
                .map_err(|_| format!("worker {i} is not taking commands"))?;
            pending.push((i, rx));
        }
        pending
            .into_iter()
            .map(|(i, rx)| {
                rx.recv_timeout(WORKER_TIMEOUT).map_err(|_| format!("worker {i} did not answer in time"))
            })
            .collect()
    }

    /// A page of `limit` items starting at `offset`, across the workers in order (each asked in
    /// turn for what is left of the page), with the total that match; items carry their worker.
    fn ask_pages<T: Send + 'static>(
        &self,
        offset: u64,
        limit: u64,
        make: impl Fn(u64, u64, Sender<(u64, Vec<T>)>) -> Command,
    ) -> Result<(u64, Vec<(u16, T)>), String> {
        let (mut total, mut items, mut skip) = (0, Vec::new(), offset);
        for (w, link) in self.workers.iter().enumerate() {
            let (tx, rx) = bounded(1);
            let want = limit - items.len() as u64;
            link.commands
                .send_timeout(make(skip, want, tx), WORKER_TIMEOUT)
                .map_err(|_| format!("worker {w} is not taking commands"))?;
            let (n, page) =
                rx.recv_timeout(WORKER_TIMEOUT).map_err(|_| format!("worker {w} did not answer"))?;
            total += n;
            skip = skip.saturating_sub(n);
            items.extend(page.into_iter().map(|t| (w as u16, t)));
        }
        Ok((total, items))
    }

    /// Per (service id, real id): active, inactive and counters summed over workers.
    fn counts(&self) -> Result<HashMap<(u32, u32), RealTotals>, String> {
        let mut m: HashMap<(u32, u32), RealTotals> = HashMap::new();
        for v in self.ask(Command::RealCounts)? {
            for RealCounts { service, real, active, inactive, counters } in v {
                let e = m.entry((service, real)).or_default();
                e.0 += active as u64;
                e.1 += inactive as u64;
                e.2.add(&counters);
            }
        }
        Ok(m)
    }

    /// Logs (at most once per estimator interval and reason) the dataplane limits hit since the last
    /// look: the counters say how often, the log says that it is happening.
    pub fn log_limits(&self, last: &mut [u64]) {
        use rvs_dataplane::stats::DropReason as D;
        const LIMITS: [D; 7] = [
            D::ConnTableFull,
            D::LportExhausted,
            D::NoLocalAddr,
            D::NeighQueueFull,
            D::NeighTableFull,
            D::OutboxFull,
            D::TxFull,
        ];
        for (i, r) in LIMITS.iter().enumerate() {
            let now: u64 = self.stats.iter().map(|s| s.drops(*r)).sum();
            if now > last[i] {
                tracing::warn!(limit = r.as_str(), dropped = now - last[i], total = now, "limit reached");
            }
            last[i] = now;
        }
    }

    /// One rate-estimator step: rates over the last interval.
    pub fn estimate(&self) {
        let Ok(counts) = self.counts() else { return };
        let secs = RATE_INTERVAL.as_secs().max(1);
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::new();
        for (k, (_, _, c)) in counts {
            let r = match rates.get(&k) {
                Some((p, _)) => Rates {
                    cps: c.conns.saturating_sub(p.conns) / secs,
                    inpps: c.inpkts.saturating_sub(p.inpkts) / secs,
                    outpps: c.outpkts.saturating_sub(p.outpkts) / secs,
                    inbps: c.inbytes.saturating_sub(p.inbytes) / secs,
                    outbps: c.outbytes.saturating_sub(p.outbytes) / secs,
                },
                None => Rates::default(),
            };
            next.insert(k, (c, r));
        }
        *rates = next;
    }

    fn list_services(&self) -> Result<Vec<ServiceInfo>, String> {
        let counts = self.counts()?;
        let st = self.lock();
        let mut out = Vec::new();
        for s in &st.config().services {
            let sid = st.service_id(s.proto, &s.vip).unwrap_or(0);
            let mut reals: Vec<RealInfo> = s
                .reals
                .iter()
                .map(|r| {
                    let rid = st.real_id(sid, &r.addr).unwrap_or(0);
                    let (a, i, _) = counts.get(&(sid, rid)).copied().unwrap_or_default();
                    RealInfo {
                        addr: r.addr.clone(),
                        weight: r.weight,
                        forward: r.forward,
                        u_threshold: r.u_threshold,
                        l_threshold: r.l_threshold,
                        active_conns: a,
                        inactive_conns: i,
                        health: if s.check.is_some() && st.is_down(sid, rid) {
                            "down".into()
                        } else if st.sorry_serving(sid) {
                            "displaced".into()
                        } else if s.check.is_none() {
                            "unchecked".into()
                        } else {
                            "up".into()
                        },
                    }
                })
                .collect();
            // keepalived's sorry server, listed as ipvsadm lists it while in the table: serving at
            // weight 1, or at weight 0 with `sorry_server_inhibit`.
            // One at a real server's address is that server's entry, the sorry server's while it serves.
            let sorry =
                st.sorry_in_pool(sid, s).filter(|(ss, w)| *w > 0 || reals.iter().all(|r| r.addr != ss.addr));
            if let Some((ss, weight)) = sorry {
                let rid = st.real_id(sid, &ss.addr).unwrap_or(0);
                let (a, i, _) = counts.get(&(sid, rid)).copied().unwrap_or_default();
                reals.retain(|r| r.addr != ss.addr);
                reals.push(RealInfo {
                    addr: ss.addr.clone(),
                    weight,
                    forward: ss.forward,
                    u_threshold: 0,
                    l_threshold: 0,
                    active_conns: a,
                    inactive_conns: i,
                    health: "sorry".into(),
                });
            }
            out.push(ServiceInfo {
                proto: s.proto,
                vip: s.vip.clone(),
                sched: s.sched,
                persistence: s.persistence,
                toa: s.toa,
                proxy_protocol: s.proxy_protocol,
                synproxy: s.synproxy,
                inhibit_on_failure: s.inhibit_on_failure,
                laddrs: s.laddrs.clone(),
                reals,
            });
        }
        Ok(out)
    }

    /// One scrape of `/metrics`: the workers' counter blocks as `stats` reads them, and per service
    /// and real server what `list_services` and `service_stats` read (one `RealCounts` query).
    pub fn metrics(&self, format: Format, http: &HttpStats) -> Result<String, String> {
        let counts = self.counts()?;
        let services: Vec<ServiceMetrics> = {
            let st = self.lock();
            st.config()
                .services
                .iter()
                .map(|s| {
                    let sid = st.service_id(s.proto, &s.vip).unwrap_or(0);
                    let reals = s
                        .reals
                        .iter()
                        .map(|r| {
                            let rid = st.real_id(sid, &r.addr).unwrap_or(0);
                            let (active_conns, inactive_conns, counters) =
                                counts.get(&(sid, rid)).copied().unwrap_or_default();
                            // Out of the pool: its check failed, or the sorry server serves instead.
                            let out = (s.check.is_some() && st.is_down(sid, rid)) || st.sorry_serving(sid);
                            let health = match (out, s.inhibit_on_failure, s.check.is_some()) {
                                (true, true, _) => Health::Inhibited,
                                (true, false, _) => Health::Removed,
                                (false, _, true) => Health::Up,
                                (false, _, false) => Health::Unchecked,
                            };
                            RealMetrics {
                                addr: r.addr.clone(),
                                weight: r.weight,
                                active_conns,
                                inactive_conns,
                                counters,
                                health,
                            }
                        })
                        .collect();
                    ServiceMetrics { proto: s.proto, vip: s.vip.clone(), reals }
                })
                .collect()
        };
        let workers: Vec<&Stats> = self.stats.iter().map(|s| &**s).collect();
        let sync = {
            let d = self.sync.lock().unwrap_or_else(|p| p.into_inner());
            // Only once a sync daemon ran: a gateway without sync exports no sync family.
            let list = d.counters().list();
            if list.iter().any(|(_, v)| *v > 0) || !d.status().is_empty() {
                list
            } else {
                Vec::new()
            }
        };
        Ok(metrics::encode(
            &metrics::Snapshot { workers: &workers, services: &services, http: Some(http), sync: &sync },
            format,
        ))
    }

    fn service_stats(&self) -> Result<Vec<ServiceStats>, String> {
        let counts = self.counts()?;
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let st = self.lock();
        let mut out = Vec::new();
        for s in &st.config().services {
            let sid = st.service_id(s.proto, &s.vip).unwrap_or(0);
            let mut total = Counters::default();
            let mut reals = Vec::new();
            for r in &s.reals {
                let rid = st.real_id(sid, &r.addr).unwrap_or(0);
                let c = counts.get(&(sid, rid)).map(|x| x.2).unwrap_or_default();
                let rt = rates.get(&(sid, rid)).map(|x| x.1).unwrap_or_default();
                let ac = api_counters(&c, &rt);
                total.conns += ac.conns;
                total.inpkts += ac.inpkts;
                total.outpkts += ac.outpkts;
                total.inbytes += ac.inbytes;
                total.outbytes += ac.outbytes;
                total.cps += ac.cps;
                total.inpps += ac.inpps;
                total.outpps += ac.outpps;
                total.inbps += ac.inbps;
                total.outbps += ac.outbps;
                reals.push(RealStats { addr: r.addr.clone(), counters: ac });
            }
            out.push(ServiceStats { proto: s.proto, vip: s.vip.clone(), counters: total, reals });
        }
        Ok(out)
    }

    fn service_id(&self, id: &Option<ServiceId>) -> Result<Option<u32>, Refusal> {
        match id {
            None => Ok(None),
            Some(id) => {
                self.lock().service_id(id.proto, &id.vip).map(Some).ok_or_else(|| no_such_service(id))
            }
        }
    }

    /// Persistence templates of every worker, paged like connections; ids are named by the
    /// current configuration (a template of a real server deleted meanwhile is left out).
    fn list_templates(
        &self,
        id: &Option<ServiceId>,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<Reply, Refusal> {
        let service = self.service_id(id)?;
        let limit = limit.unwrap_or(1000).min(MAX_CONNS_PAGE);
        let (total, views) = self.ask_pages(offset, limit, |offset, limit, reply| Command::Templates {
            service,
            offset,
            limit,
            reply,
        })?;
        let st = self.lock();
        let templates = views
            .into_iter()
            .filter_map(|(worker, t)| {
                let (sc, (ra, rp)) = st.names_of(t.service, t.real)?;
                Some(TemplateInfo {
                    proto: sc.proto,
                    client: endpoint(IpAddr::from(t.client), 0),
                    vip: sc.vip.clone(),
                    rs: endpoint(ra, rp),
                    expires_ms: t.expires_ms,
                    worker,
                })
            })
            .collect();
        Ok(Reply::Templates { total, templates })
    }

    fn list_conns(&self, id: &Option<ServiceId>, offset: u64, limit: Option<u64>) -> Result<Reply, Refusal> {
        let service = self.service_id(id)?;
        let limit = limit.unwrap_or(1000).min(MAX_CONNS_PAGE);
        let (total, views) = self.ask_pages(offset, limit, |offset, limit, reply| Command::Conns {
            service,
            offset,
            limit,
            reply,
        })?;
        let conns = views
            .into_iter()
            .map(|(worker, c)| ConnInfo {
                proto: match c.proto {
                    rvs_dataplane::flow::Proto::Tcp => rvs_control::Proto::Tcp,
                    rvs_dataplane::flow::Proto::Udp => rvs_control::Proto::Udp,
                },
                client: endpoint(c.client.0, c.client.1),
                vip: endpoint(c.vip.0, c.vip.1),
                lip: c.lip.map(|(a, p)| endpoint(a, p)).unwrap_or_default(),
                rs: endpoint(c.rs.0, c.rs.1),
                forward: rvs_control::config::Forward::of_xlat(c.xlat),
                state: c.state.to_owned(),
                expires_ms: c.expires_ms,
                worker,
            })
            .collect();
        Ok(Reply::Conns { total, conns })
    }

    /// Sends the tap (or its removal) to every worker.
    fn set_tap(workers: &[Sender<Command>], tap: Option<&rvsd::capture::Tap>) -> Result<(), String> {
        for (i, w) in workers.iter().enumerate() {
            w.send_timeout(Command::Tap(tap.cloned()), WORKER_TIMEOUT)
                .map_err(|_| format!("worker {i} is not taking commands"))?;
        }
        Ok(())
    }

    fn capture_start(&self, req: &CaptureRequest) -> Result<Reply, Refusal> {
        let (bounds, matcher) = req.validate()?;
        let port = {
            let st = self.lock();
            let ports = &st.config().ports;
            ports.iter().position(|p| p.name == req.port).ok_or_else(|| {
                let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                format!("capture: no port named {:?} (ports: {})", req.port, names.join(", "))
            })?
        };
        let mut slot = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().filter(|c| c.running()) {
            let s = c.status();
            return Err(format!(
                "capture: one is running already (port {}, file {}); stop it first",
                s.port, s.file
            )
            .into());
        }
        let senders: Vec<Sender<Command>> = self.workers.iter().map(|w| w.commands.clone()).collect();
        let untap = {
            let senders = senders.clone();
            move || {
                if let Err(e) = Shared::set_tap(&senders, None) {
                    tracing::warn!(error = %e, "capture: could not remove the tap");
                }
            }
        };
        let mut cap = Capture::start(port, &req.port, req.direction, matcher, bounds, &req.file, untap)?;
        if let Err(e) = Shared::set_tap(&senders, Some(&cap.tap)) {
            let _ = Shared::set_tap(&senders, None);
            cap.stop();
            return Err(e.into());
        }
        tracing::info!(port = %req.port, file = %req.file, "capture started");
        let status = cap.status();
        // The last capture (finished) is replaced only now: a refused start leaves its status.
        if let Some(mut last) = slot.replace(cap) {
            last.stop();
        }
        Ok(Reply::Capture { capture: status })
    }

    fn capture_stop(&self) -> Result<Reply, Refusal> {
        let mut slot = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cap) = slot.as_mut().filter(|c| c.running()) else {
            return Err("capture: none is running".into());
        };
        let senders: Vec<Sender<Command>> = self.workers.iter().map(|w| w.commands.clone()).collect();
        let r = Shared::set_tap(&senders, None);
        cap.stop();
        r?;
        Ok(Reply::Capture { capture: cap.status() })
    }

    /// At shutdown, after the workers stopped: the running capture writes what it has and closes.
    pub fn finish_capture(&self) {
        if let Some(c) = self.capture.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            c.stop();
        }
    }

    fn capture_status(&self) -> Reply {
        let slot = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        let capture = slot
            .as_ref()
            .map(|c| c.status())
            .unwrap_or_else(|| CaptureStatus { state: "idle".into(), ..Default::default() });
        Reply::Capture { capture }
    }

    pub fn handle(&self, req: Request) -> Response {
        let r = match req {
            Request::CaptureStart { capture } => self.capture_start(&capture),
            Request::CaptureStop => self.capture_stop(),
            Request::CaptureStatus => Ok(self.capture_status()),
            Request::Version => {
                Ok(Reply::Version { api: API_VERSION, daemon: env!("CARGO_PKG_VERSION").to_owned() })
            }
            Request::GetTimeouts => {
                let st = self.lock();
                let t = &st.config().conn.timeouts;
                Ok(Reply::Timeouts { tcp: t.established, tcpfin: t.fin_wait, udp: t.udp })
            }
            Request::ListTemplates { id, offset, limit } => self.list_templates(&id, offset, limit),
            Request::Stats => {
                let busy = |s: &Stats| (s.events(Event::BusyCycles), s.events(Event::BusyPackets));
                let (cycles, packets) =
                    self.stats.iter().map(|s| busy(s)).fold((0, 0), |(c, p), (x, y)| (c + x, p + y));
                Ok(Reply::Stats {
                    workers: self
                        .stats
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let (c, p) = busy(s);
                            WorkerStats {
                                worker: i as u16,
                                counters: s.nonzero(),
                                cycles_per_packet: cycles_per_packet(c, p),
                            }
                        })
                        .collect(),
                    busy_cycles: cycles,
                    busy_packets: packets,
                    cycles_per_packet: cycles_per_packet(cycles, packets),
                    steering: self.steering.to_owned(),
                })
            }
            Request::ListServices => {
                self.list_services().map(|services| Reply::Services { services }).map_err(Refusal::from)
            }
            Request::ServiceStats => {
                self.service_stats().map(|services| Reply::ServiceStats { services }).map_err(Refusal::from)
            }
            Request::ListLaddrs { id } => {
                let st = self.lock();
                st.config()
                    .services
                    .iter()
                    .find(|s| st.service_id(s.proto, &s.vip) == st.service_id(id.proto, &id.vip))
                    .filter(|_| st.service_id(id.proto, &id.vip).is_some())
                    .map(|s| Reply::Laddrs { laddrs: s.laddrs.clone() })
                    .ok_or_else(|| no_such_service(&id))
            }
            Request::ListConns { id, offset, limit } => self.list_conns(&id, offset, limit),
            Request::Zero { id } => self.service_id(&id).and_then(|svc| {
                for (i, w) in self.workers.iter().enumerate() {
                    w.commands
                        .send_timeout(Command::Zero(svc), WORKER_TIMEOUT)
                        .map_err(|_| format!("worker {i} is not taking commands"))?;
                }
                if svc.is_none() {
                    self.stats.iter().for_each(|s| s.zero());
                }
                self.rates.lock().unwrap_or_else(|p| p.into_inner()).clear();
                Ok(Reply::Applied { epoch: self.lock().epoch })
            }),
            Request::Save => Ok(Reply::Config { config: self.lock().config().to_toml() }),
            Request::ListPorts => Ok(Reply::Ports { ports: self.list_ports() }),
            r @ (Request::SyncStart { .. } | Request::SyncStop { .. } | Request::SyncStatus) => {
                self.sync_request(r)
            }
            change => {
                let r = {
                    let mut st = self.lock();
                    match st.change(&change) {
                        Ok(true) => {
                            self.publish(&mut st).map(|epoch| Reply::Applied { epoch }).map_err(Refusal::from)
                        }
                        Ok(false) => Err(Refusal::from("nothing to change")),
                        Err(e) => Err(e),
                    }
                };
                if r.is_ok() {
                    self.refresh_health_targets();
                }
                r
            }
        };
        match r {
            Ok(reply) => Response::ok(reply),
            Err(e) => Response::refused(e),
        }
    }
}

fn no_such_service(id: &ServiceId) -> Refusal {
    Refusal::new(ErrorCode::NoSuchService, format!("no such service: {} {}", id.proto, id.vip))
}

#[derive(Debug)]
pub struct Control {
    threads: Vec<JoinHandle<()>>,
    path: String,
}

impl Control {
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the metrics endpoint when `[metrics] listen` is set; called before DPDK starts so that an
/// address rvsd cannot use stops it at once, with the field named.
pub fn bind_metrics(cfg: &MetricsConfig) -> Result<Option<(SocketAddr, TcpListener)>, String> {
    let Some(addr) = cfg.listen_addr().map_err(|e| e.to_string())? else { return Ok(None) };
    let l = metrics_http::bind(addr).map_err(|e| format!("metrics.listen: cannot listen on {addr}: {e}"))?;
    Ok(Some((addr, l)))
}

/// Starts the API server, the rate estimator, the health checker and, given a listener from
/// [`bind_metrics`], the metrics endpoint. Errors name the config field at fault.
pub fn spawn(
    cfg: &ControlConfig,
    metrics_cfg: &MetricsConfig,
    metrics_listener: Option<(SocketAddr, TcpListener)>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<Control, String> {
    let listener =
        server::bind(&cfg.socket, cfg.admin_group.as_deref()).map_err(|e| format!("control.socket: {e}"))?;
    let spawn_err = |e: std::io::Error| format!("cannot start a control thread: {e}");
    shared.start_health();
    let handler = {
        let shared = shared.clone();
        Arc::new(move |req: Request| shared.handle(req))
    };
    let mut threads = Vec::new();
    {
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("rvs-control".into())
                .spawn(move || server::serve(listener, handler, stop))
                .map_err(spawn_err)?,
        );
    }
    if let Some((addr, listener)) = metrics_listener {
        let stop = stop.clone();
        let http = Arc::new(HttpStats::default());
        let handler = {
            let (shared, http) = (shared.clone(), http.clone());
            Arc::new(move |format: Format| shared.metrics(format, &http))
        };
        let limits = metrics_http::Limits::from(metrics_cfg);
        threads.push(
            std::thread::Builder::new()
                .name("rvs-metrics".into())
                .spawn(move || metrics_http::serve(listener, limits, http, handler, stop))
                .map_err(spawn_err)?,
        );
        tracing::info!(%addr, "metrics endpoint listening (GET /metrics)");
    }
    {
        let (vrrp, ports) = {
            let st = shared.lock();
            (st.config().vrrp.clone(), st.config().ports.clone())
        };
        threads.extend(crate::adopt::spawn(&vrrp, &ports, shared.clone(), stop.clone())?);
    }
    threads.push(
        std::thread::Builder::new()
            .name("rvs-estimator".into())
            .spawn(move || {
                let mut next = Instant::now() + RATE_INTERVAL;
                let mut limits = [0u64; 7];
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        shared.estimate();
                        shared.log_limits(&mut limits);
                        next += RATE_INTERVAL;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .map_err(spawn_err)?,
    );
    tracing::info!(socket = %cfg.socket, "control API listening");
    Ok(Control { threads, path: cfg.socket.clone() })
}
