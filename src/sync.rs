//! The connection sync daemons (docs/ha.md "Connection sync"): a master streams the workers'
//! connection changes to its backups, a backup installs them at the workers that own them.
//!
//! Threads (all in rvsd's kernel namespace, plain UDP sockets, never on a worker):
//! - `rvs-sync-tx` (master): takes the operations the workers queue ([`SyncTx`], a bounded
//!   channel sized at start: a worker never allocates or blocks for sync; a full queue is a
//!   counted loss), packs them into IPVS v1 messages ([`rvs_control::sync::wire::MessageBuf`])
//!   and sends a message when it is full or `flush_ms` after its first entry; answers a full-table
//!   request by asking every worker for its table and streaming it.
//! - `rvs-sync-rx` (both roles): receives on the sync port; a request goes to the master thread,
//!   messages (with a matching syncid) are decoded and their operations sent, batched per
//!   datagram burst, to the worker that owns each connection: the owner of the local port for
//!   FULLNAT ([`owner`]), the client's hash otherwise ([`client_owner`]); templates to every
//!   worker (each has its own template table).
//!
//! Invariants:
//! - Starting or stopping a role restarts the threads with the new set of roles; counters live
//!   in [`SyncCounters`] across restarts.
//! - The master's socket is bound to the interface's address, which makes Linux send multicast
//!   out of that interface (the source-address rule of `ip_route_output_key_hash`), with the
//!   TTL asked for and multicast loop off, as IPVS's `make_send_sock` does.
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use rvs_control::config::{SyncConfig, SyncRole};
use rvs_control::sync::record::{from_entry, to_entry};
use rvs_control::sync::wire::{decode, max_message_len, request, Message, MessageBuf};
use rvs_dataplane::conn::owner;
use rvs_dataplane::conn::sync::{Installed, SyncError, SyncOp};
use rvs_dataplane::handoff::client_owner;
use rvs_dataplane::xmit::Xlat;

use crate::worker::Command;

/// How long the rx thread waits in `recv` before looking at its stop flag.
const RX_POLL: Duration = Duration::from_millis(100);
/// Datagrams taken in one go before the per-worker batches are handed over.
const RX_BATCH: usize = 64;
/// Full-table streaming: pause this long after every `DUMP_PACE` messages, so a backup's socket
/// buffer keeps up.
const DUMP_PACE: usize = 32;
const DUMP_PAUSE: Duration = Duration::from_millis(1);
/// How long a worker has to answer a full-table request.
const TABLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters of both roles, summed over restarts (names as in `rvsadm --daemon --stats` and
/// the API's `sync_status`).
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub ops_queued: AtomicU64,
    /// Operations dropped because the worker-to-sender queue was full.
    pub ops_lost: AtomicU64,
    /// Connection events a worker's log could not hold.
    pub events_lost: AtomicU64,
    pub msgs_sent: AtomicU64,
    pub conns_sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub requests_served: AtomicU64,
    pub requests_sent: AtomicU64,
    pub msgs_received: AtomicU64,
    pub conns_received: AtomicU64,
    pub decode_errors: AtomicU64,
    pub syncid_ignored: AtomicU64,
    pub record_errors: AtomicU64,
    pub installed: AtomicU64,
    pub updated: AtomicU64,
    pub released: AtomicU64,
    pub release_unknown: AtomicU64,
    pub templates: AtomicU64,
    pub install_errors: AtomicU64,
}

impl SyncCounters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one install's outcome (on the worker that did it).
    pub fn installed(&self, r: Result<Installed, SyncError>) {
        let c = match r {
            Ok(Installed::Created) => &self.installed,
            Ok(Installed::Updated | Installed::Replaced) => &self.updated,
            Ok(Installed::Released) => &self.released,
            Ok(Installed::Unknown) => &self.release_unknown,
            Ok(Installed::Template) => &self.templates,
            Err(_) => &self.install_errors,
        };
        Self::inc(c);
    }

    /// `(name, value)` of every counter, in a fixed order.
    pub fn list(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("ops_queued", g(&self.ops_queued)),
            ("ops_lost", g(&self.ops_lost)),
            ("events_lost", g(&self.events_lost)),
            ("msgs_sent", g(&self.msgs_sent)),
            ("conns_sent", g(&self.conns_sent)),
            ("send_errors", g(&self.send_errors)),
            ("requests_served", g(&self.requests_served)),
            ("requests_sent", g(&self.requests_sent)),
            ("msgs_received", g(&self.msgs_received)),
            ("conns_received", g(&self.conns_received)),
            ("decode_errors", g(&self.decode_errors)),
            ("syncid_ignored", g(&self.syncid_ignored)),
            ("record_errors", g(&self.record_errors)),
            ("installed", g(&self.installed)),
            ("updated", g(&self.updated)),
            ("released", g(&self.released)),
            ("release_unknown", g(&self.release_unknown)),
            ("templates", g(&self.templates)),
            ("install_errors", g(&self.install_errors)),
        ]
    }
}

/// A worker's end of the master's queue.
#[derive(Debug, Clone)]
pub struct SyncTx {
    ops: Sender<SyncOp>,
    counters: Arc<SyncCounters>,
    /// Capacity of the worker's connection-event log.
    pub events_per_burst: usize,
}

impl SyncTx {
    /// Queues one operation; never blocks: a full queue is a counted loss.
    #[inline]
    pub fn send(&self, op: SyncOp) {
        match self.ops.try_send(op) {
            Ok(()) => SyncCounters::inc(&self.counters.ops_queued),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                SyncCounters::inc(&self.counters.ops_lost)
            }
        }
    }

    #[inline]
    pub fn count_lost_events(&self, n: u64) {
        if n > 0 {
            self.counters.events_lost.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// One role's settings (`[sync]`, or `rvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    pub interface: Option<String>,
    pub syncid: u8,
    pub group: Ipv4Addr,
    pub port: u16,
    pub peer: Option<Ipv4Addr>,
    pub ttl: u8,
    pub mtu: u16,
    pub flush_ms: u32,
    pub queue: u32,
    pub events_per_worker: u32,
}

impl RoleConfig {
    /// The settings of a validated `[sync]` section.
    pub fn from_config(c: &SyncConfig) -> Result<RoleConfig, String> {
        Ok(RoleConfig {
            interface: c.interface.clone(),
            syncid: c.syncid,
            group: c.group_addr().map_err(|e| e.to_string())?,
            port: c.port,
            peer: c.peer_addr().map_err(|e| e.to_string())?,
            ttl: c.ttl,
            mtu: c.mtu,
            flush_ms: c.flush_ms,
            queue: c.queue,
            events_per_worker: c.events_per_worker,
        })
    }

    /// Where messages (master) and requests (backup) go.
    fn dest(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.peer.unwrap_or(self.group), self.port)
    }

    /// The interface's IPv4 address, when multicast needs one.
    fn local_addr(&self) -> Result<Option<Ipv4Addr>, String> {
        match (&self.interface, self.peer) {
            (Some(i), _) => rvs_control::sync::iface::ipv4_of(i).map(Some),
            (None, Some(_)) => Ok(None),
            (None, None) => {
                Err("multicast sync needs an interface (--mcast-interface or sync.interface)".into())
            }
        }
    }
}

/// What `sync_status` reports of a running role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleStatus {
    pub master: bool,
    pub cfg: RoleConfig,
}

/// The sync daemons of this rvsd.
#[derive(Debug)]
pub struct Daemons {
    workers: Vec<Sender<Command>>,
    master: Option<RoleConfig>,
    backup: Option<RoleConfig>,
    counters: Arc<SyncCounters>,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Daemons {
    pub fn new(workers: Vec<Sender<Command>>) -> Daemons {
        Daemons { workers, master: None, backup: None, counters: Arc::default(), running: None }
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// The running roles.
    pub fn status(&self) -> Vec<RoleStatus> {
        let m = self.master.iter().map(|c| RoleStatus { master: true, cfg: c.clone() });
        m.chain(self.backup.iter().map(|c| RoleStatus { master: false, cfg: c.clone() })).collect()
    }

    /// Starts the roles `[sync]` asks for.
    pub fn start_from_config(&mut self, c: &SyncConfig) -> Result<(), String> {
        if c.role == SyncRole::Off {
            return Ok(());
        }
        let rc = RoleConfig::from_config(c)?;
        self.set(c.role.master().then(|| rc.clone()), c.role.backup().then_some(rc))
    }

    /// Starts a role (replacing its settings if it runs); `ipvsadm --start-daemon`.
    pub fn start(&mut self, master: bool, cfg: RoleConfig) -> Result<(), String> {
        if master {
            self.set(Some(cfg), self.backup.clone())
        } else {
            self.set(self.master.clone(), Some(cfg))
        }
    }

    /// Stops a role; `ipvsadm --stop-daemon`. Err if it was not running.
    pub fn stop(&mut self, master: bool) -> Result<(), String> {
        let running = if master { self.master.is_some() } else { self.backup.is_some() };
        if !running {
            return Err(format!("no {} sync daemon is running", if master { "master" } else { "backup" }));
        }
        if master {
            self.set(None, self.backup.clone())
        } else {
            self.set(self.master.clone(), None)
        }
    }

    /// Stops everything (daemon exit).
    pub fn shutdown(&mut self) {
        self.halt();
        self.master = None;
        self.backup = None;
    }

    fn halt(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
            for t in r.threads {
                let _ = t.join();
            }
        }
        for w in &self.workers {
            let _ = w.send_timeout(Command::SyncMaster(None), Duration::from_secs(1));
        }
    }

    fn set(&mut self, master: Option<RoleConfig>, backup: Option<RoleConfig>) -> Result<(), String> {
        self.halt();
        self.master = None;
        self.backup = None;
        if master.is_none() && backup.is_none() {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        // The rx socket: the port of whichever role listens (both use the same port in practice;
        // the backup's wins when they differ, and the master then hears requests on it too).
        let listen = backup.as_ref().or(master.as_ref()).cloned().unwrap_or_else(|| unreachable!());
        let rx = rx_socket(&listen, master.as_ref())?;
        let (req_tx, req_rx) = bounded::<()>(4);
        if let Some(m) = &master {
            let sock = tx_socket(m)?;
            let (ops_tx, ops_rx) = bounded::<SyncOp>(m.queue as usize);
            let tx = SyncTx {
                ops: ops_tx,
                counters: self.counters.clone(),
                events_per_burst: m.events_per_worker as usize,
            };
            for (i, w) in self.workers.iter().enumerate() {
                w.send_timeout(Command::SyncMaster(Some(tx.clone())), Duration::from_secs(2))
                    .map_err(|_| format!("sync: worker {i} is not taking commands"))?;
            }
            let ctx = MasterCtx {
                sock,
                cfg: m.clone(),
                ops: ops_rx,
                requests: req_rx,
                workers: self.workers.clone(),
                counters: self.counters.clone(),
                stop: stop.clone(),
            };
            threads.push(spawn("rvs-sync-tx", move || ctx.run())?);
            tracing::info!(mcast = ?m.interface, peer = ?m.peer, syncid = m.syncid, "sync master started");
        }
        if let Some(b) = &backup {
            // Ask for the full table: a backup that starts late gets what it missed. Sent as the
            // master sends (from the interface's address: the rx socket has no multicast route).
            match tx_socket(b)?.send_to(&request(b.syncid), b.dest()) {
                Ok(_) => SyncCounters::inc(&self.counters.requests_sent),
                Err(e) => tracing::warn!(error = %e, "sync: full-table request not sent"),
            }
            tracing::info!(mcast = ?b.interface, peer = ?b.peer, syncid = b.syncid, "sync backup started");
        }
        let ctx = RxCtx {
            sock: rx,
            master: master.is_some(),
            backup: backup.clone(),
            requests: req_tx,
            workers: self.workers.clone(),
            counters: self.counters.clone(),
            stop: stop.clone(),
        };
        threads.push(spawn("rvs-sync-rx", move || ctx.run())?);
        self.running = Some(Running { stop, threads });
        self.master = master;
        self.backup = backup;
        Ok(())
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("sync: cannot start {name}: {e}"))
}

/// The master's sending socket (IPVS `make_send_sock`).
fn tx_socket(c: &RoleConfig) -> Result<UdpSocket, String> {
    let local = c.local_addr()?;
    let bind = SocketAddrV4::new(
        if c.peer.is_some() { Ipv4Addr::UNSPECIFIED } else { local.unwrap_or(Ipv4Addr::UNSPECIFIED) },
        0,
    );
    let s =
        UdpSocket::bind(bind).map_err(|e| format!("sync: cannot bind the master's socket to {bind}: {e}"))?;
    s.set_multicast_ttl_v4(c.ttl.into()).map_err(|e| format!("sync: multicast TTL: {e}"))?;
    s.set_multicast_loop_v4(false).map_err(|e| format!("sync: multicast loop: {e}"))?;
    Ok(s)
}

/// The receiving socket (IPVS `make_receive_sock`): the sync port, joined to the group on the
/// interface of every multicast role.
fn rx_socket(c: &RoleConfig, master: Option<&RoleConfig>) -> Result<UdpSocket, String> {
    let bind = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, c.port);
    let s = UdpSocket::bind(bind).map_err(|e| format!("sync: cannot bind {bind}: {e}"))?;
    for r in std::iter::once(c).chain(master) {
        if r.peer.is_none() {
            let local = r.local_addr()?.unwrap_or(Ipv4Addr::UNSPECIFIED);
            if let Err(e) = s.join_multicast_v4(&r.group, &local) {
                // The same group on the same interface twice (both roles): already joined.
                if e.raw_os_error() != Some(98) {
                    return Err(format!("sync: cannot join {} on {:?}: {e}", r.group, r.interface));
                }
            }
        }
    }
    s.set_multicast_loop_v4(false).map_err(|e| format!("sync: multicast loop: {e}"))?;
    s.set_read_timeout(Some(RX_POLL)).map_err(|e| format!("sync: socket: {e}"))?;
    Ok(s)
}

struct MasterCtx {
    sock: UdpSocket,
    cfg: RoleConfig,
    ops: Receiver<SyncOp>,
    requests: Receiver<()>,
    workers: Vec<Sender<Command>>,
    counters: Arc<SyncCounters>,
    stop: Arc<AtomicBool>,
}

impl MasterCtx {
    fn run(self) {
        let max = max_message_len(self.cfg.mtu);
        let mut msg = MessageBuf::new(self.cfg.syncid, max);
        let flush = Duration::from_millis(self.cfg.flush_ms.into());
        let mut first_at: Option<Instant> = None;
        let dest = self.cfg.dest();
        while !self.stop.load(Ordering::Relaxed) {
            let wait = first_at.map_or(Duration::from_millis(50), |t| flush.saturating_sub(t.elapsed()));
            match self.ops.recv_timeout(wait) {
                Ok(op) => {
                    self.add(&mut msg, &op, dest);
                    first_at.get_or_insert_with(Instant::now);
                    // Take what is queued already without waiting.
                    while let Ok(op) = self.ops.try_recv() {
                        self.add(&mut msg, &op, dest);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if first_at.is_some_and(|t| t.elapsed() >= flush) {
                self.send(&mut msg, dest);
                first_at = None;
            }
            if msg.is_empty() {
                first_at = None;
            }
            if self.requests.try_recv().is_ok() {
                self.send(&mut msg, dest);
                self.dump(&mut msg, dest);
            }
        }
        self.send(&mut msg, dest);
    }

    fn add(&self, msg: &mut MessageBuf, op: &SyncOp, dest: SocketAddrV4) {
        let e = to_entry(op);
        if msg.push(&e).is_err() {
            self.send(msg, dest);
            // An entry always fits an empty message (the smallest message has room for one).
            let _ = msg.push(&e);
        }
    }

    fn send(&self, msg: &mut MessageBuf, dest: SocketAddrV4) {
        if msg.is_empty() {
            return;
        }
        match self.sock.send_to(msg.bytes(), dest) {
            Ok(_) => {
                SyncCounters::inc(&self.counters.msgs_sent);
                self.counters.conns_sent.fetch_add(msg.nr_conns().into(), Ordering::Relaxed);
            }
            Err(e) => {
                SyncCounters::inc(&self.counters.send_errors);
                tracing::debug!(error = %e, "sync: send failed");
            }
        }
        msg.clear();
    }

    /// The full table, worker by worker, paced.
    fn dump(&self, msg: &mut MessageBuf, dest: SocketAddrV4) {
        SyncCounters::inc(&self.counters.requests_served);
        let mut sent_before = self.counters.msgs_sent.load(Ordering::Relaxed);
        for (i, w) in self.workers.iter().enumerate() {
            let (tx, rx) = bounded(1);
            if w.send_timeout(Command::SyncTable(tx), TABLE_TIMEOUT).is_err() {
                tracing::warn!(worker = i, "sync: worker did not take the full-table request");
                continue;
            }
            let Ok(ops) = rx.recv_timeout(TABLE_TIMEOUT) else {
                tracing::warn!(worker = i, "sync: worker did not answer the full-table request");
                continue;
            };
            for op in &ops {
                self.add(msg, op, dest);
                let sent = self.counters.msgs_sent.load(Ordering::Relaxed);
                if sent - sent_before >= DUMP_PACE as u64 {
                    std::thread::sleep(DUMP_PAUSE);
                    sent_before = sent;
                }
            }
        }
        self.send(msg, dest);
        tracing::info!("sync: full table sent");
    }
}

struct RxCtx {
    sock: UdpSocket,
    master: bool,
    backup: Option<RoleConfig>,
    requests: Sender<()>,
    workers: Vec<Sender<Command>>,
    counters: Arc<SyncCounters>,
    stop: Arc<AtomicBool>,
}

impl RxCtx {
    fn run(self) {
        let mut buf = vec![0u8; 65_536];
        let n = self.workers.len();
        let mut batches: Vec<Vec<SyncOp>> = (0..n).map(|_| Vec::new()).collect();
        while !self.stop.load(Ordering::Relaxed) {
            let Ok(len) = self.sock.recv(&mut buf) else { continue };
            self.datagram(&buf[..len], &mut batches);
            // Whatever else has arrived, up to a batch, before handing over.
            if self.sock.set_nonblocking(true).is_ok() {
                for _ in 1..RX_BATCH {
                    let Ok(len) = self.sock.recv(&mut buf) else { break };
                    self.datagram(&buf[..len], &mut batches);
                }
                let _ = self.sock.set_nonblocking(false);
            }
            for (w, b) in batches.iter_mut().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let ops = std::mem::take(b);
                let cmd = Command::SyncInstall(ops, self.counters.clone());
                if self.workers[w].send_timeout(cmd, Duration::from_secs(1)).is_err() {
                    tracing::warn!(worker = w, "sync: worker is not taking installs");
                }
            }
        }
    }

    fn datagram(&self, d: &[u8], batches: &mut [Vec<SyncOp>]) {
        let (hdr, entries) = match decode(d) {
            Ok(Message::Request { syncid }) => {
                if self.master {
                    tracing::info!(syncid, "sync: full-table request");
                    let _ = self.requests.try_send(());
                }
                return;
            }
            Ok(Message::Conns(h, es)) => (h, es),
            Err(e) => {
                SyncCounters::inc(&self.counters.decode_errors);
                tracing::debug!(error = %e, "sync: message dropped");
                return;
            }
        };
        let Some(b) = &self.backup else { return };
        SyncCounters::inc(&self.counters.msgs_received);
        if b.syncid != 0 && hdr.syncid != b.syncid {
            SyncCounters::inc(&self.counters.syncid_ignored);
            return;
        }
        let workers = batches.len() as u16;
        for e in entries {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    SyncCounters::inc(&self.counters.decode_errors);
                    tracing::debug!(error = %err, "sync: rest of message dropped");
                    break;
                }
            };
            SyncCounters::inc(&self.counters.conns_received);
            let op = match from_entry(&e) {
                Ok(op) => op,
                Err(err) => {
                    SyncCounters::inc(&self.counters.record_errors);
                    tracing::debug!(error = %err, "sync: entry skipped");
                    continue;
                }
            };
            match op {
                SyncOp::Conn(c) | SyncOp::Release(c) => {
                    let w = match c.xlat {
                        Xlat::FullNat => owner(c.lport, workers),
                        _ => client_owner(c.client.src, c.client.sport, workers),
                    };
                    batches[w as usize].push(op);
                }
                SyncOp::Template(_) => batches.iter_mut().for_each(|b| b.push(op)),
            }
        }
    }
}
