//! Keepalived-style health checks of real servers, run from the control plane over the host kernel's
//! network (the network namespace the daemon runs in, which has a management link to the real servers).
//!
//! A [`HealthChecker`] owns a small fixed pool of worker threads fed by one schedule: a binary heap of
//! next-due times, one entry per target. An idle worker sleeps on a condition variable until the
//! earliest check is due (no polling), takes it, runs it with blocking sockets bounded by the check's
//! `timeout_ms`, records the result and schedules the target again `interval_ms` after the attempt
//! started. A slow target therefore occupies one worker for at most `timeout_ms`; if every worker is
//! busy, due checks run late rather than piling up (a target is never scheduled twice).
//!
//! Hysteresis follows keepalived: a target starts UP; an UP target goes DOWN after `fall` consecutive
//! failures, a DOWN target goes UP after `rise` consecutive successes. Each transition is logged
//! (`tracing` info) and reported once through the `on_change` callback.
use std::collections::{BinaryHeap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::{CheckConfig, CheckKind};

/// Worker threads started by [`HealthChecker::start`].
pub const DEFAULT_WORKERS: usize = 4;

/// Bytes of an HTTP response read at most while looking for the status line.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 4096;

/// One thing to check: a real server of a service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The service the real server belongs to, e.g. `"tcp 198.18.0.100:80"`.
    pub service: String,
    /// The real server. The check goes to its address, on `CheckConfig::port` when set.
    pub addr: SocketAddr,
}

/// An up/down transition of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub target: Target,
    /// The new state.
    pub up: bool,
    /// Why: the last failure (`"connect: connection refused"`, `"http status 503"`,
    /// `"timeout after 500 ms"`) when going down, `"2 successes"` when coming up.
    pub reason: String,
}

/// What the checker knows about one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    pub up: bool,
    /// Attempts completed since the target was added.
    pub checks: u64,
    /// Failed attempts among `checks`.
    pub failures: u64,
    /// The reason of the most recent failure, if any.
    pub last_error: Option<String>,
}

/// Runs health checks; see the module documentation. Stops (joining its threads) on [`stop`](Self::stop)
/// or drop.
pub struct HealthChecker {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

type Callback = Box<dyn Fn(Transition) + Send + Sync>;

struct Shared {
    inner: Mutex<Inner>,
    /// Signalled when the schedule gains an earlier entry or on stop.
    wake: Condvar,
    /// Held while a result is applied and its transition reported, and by `set_targets`: once
    /// `set_targets` returns, no callback for a removed target can still be on its way, and callbacks
    /// are delivered one at a time in the order of the state changes.
    gate: Mutex<()>,
    on_change: Callback,
}

#[derive(Default)]
struct Inner {
    targets: HashMap<Target, Entry>,
    schedule: BinaryHeap<Due>,
    /// Source of entry ids and schedule tokens (never 0).
    next_id: u64,
    stopping: bool,
}

impl Inner {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Puts `target` (whose entry exists) on the schedule at `at`, replacing any earlier entry.
    fn schedule(&mut self, target: &Target, at: Instant) {
        let token = self.fresh_id();
        if let Some(e) = self.targets.get_mut(target) {
            e.token = token;
            self.schedule.push(Due { at, token, target: target.clone() });
        }
    }
}

struct Entry {
    /// Identifies this instance of the target: a target removed and added again is a new instance,
    /// and a check of the old one that was in flight is discarded.
    id: u64,
    cfg: CheckConfig,
    state: Hysteresis,
    checks: u64,
    failures: u64,
    last_error: Option<String>,
    /// The token of this target's valid schedule entry; 0 while none (a check is in flight).
    token: u64,
}

/// A schedule entry; valid while its token equals its target's `Entry::token`.
struct Due {
    at: Instant,
    token: u64,
    target: Target,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.token == other.token
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: the heap's greatest element is the earliest due.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.token).cmp(&(self.at, self.token))
    }
}

/// Keepalived's rise/fall counting for one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hysteresis {
    up: bool,
    /// Consecutive results against the current state (failures while up, successes while down).
    run: u32,
}

impl Hysteresis {
    const fn new() -> Self {
        Hysteresis { up: true, run: 0 }
    }

    /// Records one result; returns true when the state flipped. `rise`/`fall` below 1 count as 1.
    fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        if ok == self.up {
            self.run = 0;
            return false;
        }
        self.run += 1;
        let needed = if self.up { fall } else { rise }.max(1);
        if self.run >= needed {
            self.up = !self.up;
            self.run = 0;
            true
        } else {
            false
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn interval(cfg: &CheckConfig) -> Duration {
    Duration::from_millis(u64::from(cfg.interval_ms.max(1)))
}

impl HealthChecker {
    /// Starts [`DEFAULT_WORKERS`] checker threads. `on_change` is called (from a checker thread) on
    /// every up/down transition; see [`start_with_workers`](Self::start_with_workers).
    pub fn start(on_change: impl Fn(Transition) + Send + Sync + 'static) -> HealthChecker {
        Self::start_with_workers(DEFAULT_WORKERS, on_change)
    }

    /// Starts `workers` (at least 1) checker threads.
    ///
    /// `on_change` calls are serialized and come in the order of the state changes; the next check of
    /// the target runs only after the call returned. It should return quickly (it holds up reporting
    /// for all targets) and must not call [`set_targets`](Self::set_targets) (that would deadlock);
    /// [`state`](Self::state) and [`status`](Self::status) are fine.
    pub fn start_with_workers(
        workers: usize,
        on_change: impl Fn(Transition) + Send + Sync + 'static,
    ) -> HealthChecker {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            wake: Condvar::new(),
            gate: Mutex::new(()),
            on_change: Box::new(on_change),
        });
        let workers = (0..workers.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("rvs-health-{i}"))
                    .spawn(move || shared.worker())
                    .expect("spawn a health-check thread")
            })
            .collect();
        HealthChecker { shared, workers }
    }

    /// Replaces the set of targets and their checks atomically. Targets that stay keep their state
    /// and counters (a changed check takes effect at once: the target is checked again right away);
    /// new targets start UP, as keepalived does by default, and need `fall` failures to go down; their
    /// first check comes within one interval (spread by a hash of the target so that a large set does
    /// not fire at once). Removed targets stop being checked, and no callback for them comes after
    /// this returns. A target listed twice takes its last check.
    pub fn set_targets(&self, targets: Vec<(Target, CheckConfig)>) {
        let _gate = lock(&self.shared.gate);
        let mut inner = lock(&self.shared.inner);
        let now = Instant::now();
        let mut old = std::mem::take(&mut inner.targets);
        for (target, cfg) in targets {
            if let Some(mut e) = inner.targets.remove(&target).or_else(|| old.remove(&target)) {
                let changed = e.cfg != cfg;
                e.cfg = cfg;
                let in_flight = e.token == 0;
                inner.targets.insert(target.clone(), e);
                if changed && !in_flight {
                    inner.schedule(&target, now);
                }
            } else {
                let mut h = DefaultHasher::new();
                target.hash(&mut h);
                let spread = Duration::from_millis(h.finish() % u64::from(cfg.interval_ms.max(1)));
                let id = inner.fresh_id();
                let entry = Entry {
                    id,
                    cfg,
                    state: Hysteresis::new(),
                    checks: 0,
                    failures: 0,
                    last_error: None,
                    token: 0,
                };
                inner.targets.insert(target.clone(), entry);
                inner.schedule(&target, now + spread);
            }
        }
        // Drop schedule entries of removed targets and replaced entries of changed ones.
        let Inner { targets, schedule, .. } = &mut *inner;
        schedule.retain(|d| targets.get(&d.target).is_some_and(|e| e.token == d.token));
        drop(inner);
        self.shared.wake.notify_all();
    }

    /// Current state of a target: `Some(true)` up, `Some(false)` down, `None` if not a target.
    pub fn state(&self, t: &Target) -> Option<bool> {
        lock(&self.shared.inner).targets.get(t).map(|e| e.state.up)
    }

    /// State and counters of a target.
    pub fn status(&self, t: &Target) -> Option<TargetStatus> {
        lock(&self.shared.inner).targets.get(t).map(Entry::status)
    }

    /// State and counters of every target, in no particular order.
    pub fn snapshot(&self) -> Vec<(Target, TargetStatus)> {
        lock(&self.shared.inner).targets.iter().map(|(t, e)| (t.clone(), e.status())).collect()
    }

    /// Stops the checker: idle workers leave at once, a worker in a check leaves when the check ends
    /// (within its `timeout_ms`, which config validation keeps within `interval_ms`).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        lock(&self.shared.inner).stopping = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Entry {
    fn status(&self) -> TargetStatus {
        TargetStatus {
            up: self.state.up,
            checks: self.checks,
            failures: self.failures,
            last_error: self.last_error.clone(),
        }
    }
}

impl Shared {
    fn worker(&self) {
        while let Some((target, id, cfg)) = self.next_due() {
            let started = Instant::now();
            let result = probe(target.addr, &cfg);
            if let Err(reason) = &result {
                tracing::debug!(service = %target.service, real = %target.addr, %reason, "health check failed");
            }
            self.finish(target, id, started, result);
        }
    }

    /// Waits for the earliest due check and takes it; `None` on stop.
    fn next_due(&self) -> Option<(Target, u64, CheckConfig)> {
        let mut inner = lock(&self.inner);
        loop {
            if inner.stopping {
                return None;
            }
            let now = Instant::now();
            let Some(at) = inner.schedule.peek().map(|d| d.at) else {
                inner = self.wake.wait(inner).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            if at > now {
                inner = self.wake.wait_timeout(inner, at - now).unwrap_or_else(PoisonError::into_inner).0;
                continue;
            }
            let due = inner.schedule.pop().expect("peeked");
            if let Some(e) = inner.targets.get_mut(&due.target) {
                if e.token == due.token {
                    e.token = 0;
                    return Some((due.target, e.id, e.cfg.clone()));
                }
            }
        }
    }

    /// Applies a check result, reports a transition, and schedules the next check.
    fn finish(&self, target: Target, id: u64, started: Instant, result: Result<(), String>) {
        let _gate = lock(&self.gate);
        let mut inner = lock(&self.inner);
        let Some(e) = inner.targets.get_mut(&target).filter(|e| e.id == id) else {
            return; // removed (maybe added again) while the check ran
        };
        e.checks += 1;
        let ok = result.is_ok();
        if let Err(reason) = &result {
            e.failures += 1;
            e.last_error = Some(reason.clone());
        }
        let flipped = e.state.record(ok, e.cfg.rise, e.cfg.fall);
        if flipped {
            let reason = match result {
                Ok(()) => match e.cfg.rise.max(1) {
                    1 => "1 success".to_string(),
                    n => format!("{n} successes"),
                },
                Err(reason) => reason,
            };
            drop(inner);
            let up = ok;
            if up {
                tracing::info!(service = %target.service, real = %target.addr, %reason, "real server UP");
            } else {
                tracing::info!(service = %target.service, real = %target.addr, %reason, "real server DOWN");
            }
            let transition = Transition { target: target.clone(), up, reason };
            if catch_unwind(AssertUnwindSafe(|| (self.on_change)(transition))).is_err() {
                tracing::error!(service = %target.service, real = %target.addr, "health on_change panicked");
            }
            inner = lock(&self.inner);
        }
        // The gate kept set_targets out, so the entry is still ours.
        // keepalived's delay_before_retry: a failure that has not taken the server out yet is
        // re-checked after `retry_ms`.
        let next = started
            + inner.targets.get(&target).map_or(Duration::ZERO, |e| match e.cfg.retry_ms {
                Some(r) if e.state.up && e.state.run > 0 => Duration::from_millis(u64::from(r)),
                _ => interval(&e.cfg),
            });
        inner.schedule(&target, next);
        drop(inner);
        self.wake.notify_one();
    }
}

/// Runs one check of real server `real` now (on `cfg.port` when set), blocking for at most about
/// `cfg.timeout_ms`. `Err` holds the reason of the failure.
pub fn probe(real: SocketAddr, cfg: &CheckConfig) -> Result<(), String> {
    let addr = SocketAddr::new(real.ip(), cfg.port.unwrap_or(real.port()));
    let timeout = Duration::from_millis(u64::from(cfg.timeout_ms.max(1)));
    let deadline = Instant::now() + timeout;
    let fail = |stage: &str, e: io::Error| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(cfg),
        _ => format!("{stage}: {}", describe(&e)),
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("connect", e))?;
    let host = cfg.host.clone().unwrap_or_else(|| addr.to_string());
    let status = match cfg.kind {
        CheckKind::Tcp => return Ok(()),
        CheckKind::Http => http_status(stream, &host, &cfg.path, deadline),
        CheckKind::Https => tls::connect(stream, addr.ip(), cfg.sni.as_deref(), deadline)
            .and_then(|tls| http_status(tls, &host, &cfg.path, deadline)),
    }
    .map_err(|(stage, e)| match e {
        HttpError::Io(e) => fail(stage, e),
        HttpError::Timeout => timed_out(cfg),
        HttpError::Malformed(m) => m,
    })?;
    if status == cfg.expect_status {
        Ok(())
    } else {
        Err(format!("http status {status}"))
    }
}

fn timed_out(cfg: &CheckConfig) -> String {
    format!("timeout after {} ms", cfg.timeout_ms)
}

/// `Connection refused (os error 111)` -> `connection refused`.
fn describe(e: &io::Error) -> String {
    let s = e.to_string();
    let s = s.find(" (os error").map_or(s.as_str(), |i| &s[..i]);
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_lowercase().chain(c).collect())
}

enum HttpError {
    Io(io::Error),
    Timeout,
    Malformed(String),
}

/// A connection an HTTP check talks over: plain TCP or TLS over TCP.
trait Conn: Read + Write {
    /// The TCP socket underneath, whose timeouts bound each blocking step.
    fn tcp(&self) -> &TcpStream;

    /// Bounds the next blocking reads and writes by `deadline`.
    fn until(&self, deadline: Instant, stage: &'static str) -> Result<(), (&'static str, HttpError)> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or((stage, HttpError::Timeout))?;
        // A TLS write may read (the handshake) and a TLS read may write (alerts, key updates).
        self.tcp().set_write_timeout(Some(left)).map_err(|e| (stage, HttpError::Io(e)))?;
        self.tcp().set_read_timeout(Some(left)).map_err(|e| (stage, HttpError::Io(e)))
    }
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// Sends the GET and reads the status code, all before `deadline`.
fn http_status(
    mut s: impl Conn,
    host: &str,
    path: &str,
    deadline: Instant,
) -> Result<u16, (&'static str, HttpError)> {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.until(deadline, "send")?;
    s.write_all(req.as_bytes()).map_err(|e| ("send", HttpError::Io(e)))?;
    s.flush().map_err(|e| ("send", HttpError::Io(e)))?;
    let mut buf = [0u8; MAX_HTTP_RESPONSE_BYTES];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        s.until(deadline, "recv")?;
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS server that closes without close_notify: what came is the answer (keepalived
            // reads quietly too: `SSL_set_quiet_shutdown`).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(("recv", HttpError::Io(e))),
        }
    }
    parse_status_line(&buf[..n]).map_err(|m| ("recv", HttpError::Malformed(m)))
}

mod tls;

/// The status code of an HTTP/1.x response beginning with `head` (the status line, or what came
/// before the connection closed or the read limit).
fn parse_status_line(head: &[u8]) -> Result<u16, String> {
    if head.is_empty() {
        return Err("malformed http response: connection closed without a status line".into());
    }
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        if head.len() >= MAX_HTTP_RESPONSE_BYTES {
            return Err(format!("malformed http response: no status line in {} bytes", head.len()));
        }
        return parse_line(head);
    };
    parse_line(&head[..end])
}

fn parse_line(line: &[u8]) -> Result<u16, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if version.starts_with(b"HTTP/1.") && code.len() == 3 && code.iter().all(u8::is_ascii_digit) {
        if let Some(status) = std::str::from_utf8(code).ok().and_then(|c| c.parse().ok()) {
            return Ok(status);
        }
    }
    let shown: String = String::from_utf8_lossy(line).chars().take(48).collect();
    Err(format!("malformed http response: status line {shown:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Shutdown, TcpListener};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
    use std::sync::mpsc::{self, Receiver, Sender};

    /// Generous: the machine may be loaded.
    const WAIT: Duration = Duration::from_secs(10);

    fn cfg(kind: &str, interval_ms: u32, timeout_ms: u32, rise: u32, fall: u32) -> CheckConfig {
        CheckConfig {
            kind: kind.parse().unwrap(),
            port: None,
            path: "/health".into(),
            expect_status: 200,
            interval_ms,
            timeout_ms,
            rise,
            fall,
            retry_ms: None,
            host: None,
            sni: None,
        }
    }

    fn target(service: &str, port: u16) -> Target {
        Target { service: service.into(), addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)) }
    }

    /// A loopback port with nothing listening (bound once, then released).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Records transitions. With `hold`, each callback waits for [`Recorder::release`] before it
    /// returns, which keeps the target's next check from running: counters read meanwhile are exact.
    struct Recorder {
        rx: Receiver<Transition>,
        release: Option<Sender<()>>,
    }

    fn recorder(hold: bool) -> (Recorder, impl Fn(Transition) + Send + Sync + 'static) {
        let (tx, rx) = mpsc::channel();
        let (rel_tx, rel_rx) = mpsc::channel::<()>();
        let rel_rx = Mutex::new(rel_rx);
        let cb = move |t: Transition| {
            let _ = tx.send(t);
            if hold {
                let _ = lock(&rel_rx).recv_timeout(WAIT);
            }
        };
        (Recorder { rx, release: hold.then_some(rel_tx) }, cb)
    }

    impl Recorder {
        fn next(&self) -> Transition {
            self.rx.recv_timeout(WAIT).expect("a transition within the deadline")
        }
        fn release(&self) {
            if let Some(r) = &self.release {
                r.send(()).unwrap();
            }
        }
        fn assert_none(&self) {
            if let Ok(t) = self.rx.try_recv() {
                panic!("unexpected transition {t:?}");
            }
        }
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `t` has completed `n` more checks than it had when called.
    fn wait_checks(hc: &HealthChecker, t: &Target, n: u64) {
        let start = hc.status(t).unwrap().checks;
        wait_until("checks", || hc.status(t).unwrap().checks >= start + n);
    }

    /// A loopback server that accepts and closes connections (tcp checks) or answers them as an HTTP
    /// server according to `mode`.
    struct Server {
        port: u16,
        stop: Arc<AtomicBool>,
        mode: Arc<AtomicU8>,
        /// Responses sent, by mode.
        served: Arc<[AtomicU64; 4]>,
        bad_requests: Arc<AtomicU64>,
        thread: Option<JoinHandle<()>>,
    }

    const OK: u8 = 0;
    const UNAVAILABLE: u8 = 1;
    const GARBAGE: u8 = 2;
    const SILENT: u8 = 3;

    impl Server {
        fn start(port: u16, http: bool) -> Server {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            let port = listener.local_addr().unwrap().port();
            let stop = Arc::new(AtomicBool::new(false));
            let mode = Arc::new(AtomicU8::new(OK));
            let served = Arc::new([0, 0, 0, 0].map(AtomicU64::new));
            let bad_requests = Arc::new(AtomicU64::new(0));
            let (s, m, c, b) = (stop.clone(), mode.clone(), served.clone(), bad_requests.clone());
            let thread = thread::spawn(move || {
                let mut held = Vec::new();
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    if !http {
                        c[0].fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let mode = m.load(Ordering::SeqCst);
                    if mode != SILENT {
                        held.clear();
                    }
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut req = Vec::new();
                    let mut buf = [0u8; 512];
                    while !req.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => req.extend_from_slice(&buf[..k]),
                        }
                    }
                    let expect = format!(
                        "GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                    );
                    if req != expect.as_bytes() {
                        b.fetch_add(1, Ordering::SeqCst);
                    }
                    c[usize::from(mode)].fetch_add(1, Ordering::SeqCst);
                    let resp: &[u8] = match mode {
                        OK => b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        UNAVAILABLE => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                        GARBAGE => b"SSH-2.0-OpenSSH_9.6\r\n",
                        _ => {
                            held.push(conn); // never answered
                            continue;
                        }
                    };
                    let _ = conn.write_all(resp);
                    let _ = conn.shutdown(Shutdown::Write);
                }
            });
            Server { port, stop, mode, served, bad_requests, thread: Some(thread) }
        }

        fn set_mode(&self, mode: u8) {
            self.mode.store(mode, Ordering::SeqCst);
        }

        fn served(&self, mode: u8) -> u64 {
            self.served[usize::from(mode)].load(Ordering::SeqCst)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)); // wake accept()
            if let Some(t) = self.thread.take() {
                t.join().unwrap();
            }
        }
    }

    #[test]
    fn health_hysteresis_counts() {
        let mut h = Hysteresis::new();
        assert!(h.up);
        // Up: fall=3 consecutive failures; a success in between resets.
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(true, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(h.record(false, 2, 3));
        assert!(!h.up);
        // Down: rise=2 consecutive successes; a failure in between resets.
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(true, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(true, 2, 3));
        assert!(h.record(true, 2, 3));
        assert!(h.up);
        assert!(!h.record(true, 2, 3));
        // rise/fall of 0 act as 1.
        assert!(h.record(false, 0, 0));
        assert!(h.record(true, 0, 0));
    }

    #[test]
    fn health_parse_status_line() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Ok(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Service Unavailable\n"), Ok(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), Ok(204));
        assert_eq!(parse_status_line(b"HTTP/1.1 404 Not Found"), Ok(404)); // closed after the line
        for bad in [&b""[..], b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 20 OK\r\n", b"HTTP/2 200\r\n", b"\r\n"] {
            let e = parse_status_line(bad).unwrap_err();
            assert!(e.contains("malformed"), "{e}");
        }
        let e = parse_status_line(&[b'x'; MAX_HTTP_RESPONSE_BYTES]).unwrap_err();
        assert!(e.contains("malformed") && e.contains("4096"), "{e}");
    }

    #[test]
    fn health_describe_errors() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(format!("connect: {}", describe(&e)), "connect: connection refused");
        assert_eq!(describe(&io::Error::from_raw_os_error(111)), "connection refused");
        assert_eq!(
            "udp".parse::<crate::config::CheckKind>().unwrap_err(),
            "unknown check kind \"udp\" (one of tcp, http, https)"
        );
    }

    #[test]
    fn health_retry_ms_rechecks_a_failure_sooner() {
        // keepalived's delay_before_retry: interval 3 s, retries 100 ms apart, fall 3. The server goes
        // down within one interval plus two retries, far sooner than the three intervals of fall x
        // interval; once down it is checked at the interval again.
        let (rec, cb) = recorder(false);
        let hc = HealthChecker::start(cb);
        let server = Server::start(0, false);
        let t = target("tcp 198.18.0.100:80", server.port);
        let c = CheckConfig { retry_ms: Some(100), ..cfg("tcp", 3000, 50, 1, 3) };
        hc.set_targets(vec![(t.clone(), c)]);
        wait_checks(&hc, &t, 1);
        drop(server);
        let t0 = Instant::now();
        let tr = rec.next();
        assert!(!tr.up);
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(3000 + 1500), "down after {took:?}");
        let s = hc.status(&t).unwrap();
        assert_eq!(s.failures, 3, "{s:?}");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(hc.status(&t).unwrap().checks, s.checks, "a down server waits for the interval");
        hc.stop();
    }

    #[test]
    fn health_tcp_down_after_fall_up_after_rise() {
        let (rec, cb) = recorder(true);
        let hc = HealthChecker::start(cb);
        let server = Server::start(0, false);
        let port = server.port;
        let t = target("tcp 198.18.0.100:80", port);
        let (rise, fall) = (2, 3);
        hc.set_targets(vec![(t.clone(), cfg("tcp", 100, 50, rise, fall))]);
        assert_eq!(hc.state(&t), Some(true), "new targets start up");

        // A listening socket: stays up.
        wait_checks(&hc, &t, 3);
        let s = hc.status(&t).unwrap();
        assert!(s.up && s.failures == 0, "{s:?}");
        assert!(server.served(0) >= 1);
        rec.assert_none();

        // Close the listener: down after exactly `fall` failed attempts.
        drop(server);
        let tr = rec.next();
        assert_eq!(
            (tr.target.clone(), tr.up, tr.reason.as_str()),
            (t.clone(), false, "connect: connection refused")
        );
        let s = hc.status(&t).unwrap(); // exact: the next check waits for the callback
        assert_eq!(s.failures, u64::from(fall), "{s:?}");
        assert!(!s.up);
        assert_eq!(hc.state(&t), Some(false));
        let successes_at_down = s.checks - s.failures;
        rec.release();

        // Still down while closed, with no further transition.
        wait_checks(&hc, &t, 2);
        rec.assert_none();

        // Reopen: up after exactly `rise` successes.
        let server = Server::start(port, false);
        let tr = rec.next();
        assert_eq!((tr.target.clone(), tr.up, tr.reason.as_str()), (t.clone(), true, "2 successes"));
        let s = hc.status(&t).unwrap();
        assert_eq!(s.checks - s.failures - successes_at_down, u64::from(rise), "{s:?}");
        assert_eq!(s.last_error.as_deref(), Some("connect: connection refused"));
        assert_eq!(hc.state(&t), Some(true));
        rec.release();

        wait_checks(&hc, &t, 3);
        rec.assert_none();
        hc.stop();
        drop(server);
    }

    #[test]
    fn health_http_status_garbage_and_timeout() {
        let (rec, cb) = recorder(true);
        let hc = HealthChecker::start(cb);
        let server = Server::start(0, true);
        let t = target("tcp 198.18.0.100:80", server.port);
        // A generous timeout keeps a loaded machine from failing healthy checks, which would upset
        // the exact counts below.
        let (rise, fall) = (2, 2);
        hc.set_targets(vec![(t.clone(), cfg("http", 100, 400, rise, fall))]);

        wait_checks(&hc, &t, 3);
        assert!(hc.status(&t).unwrap().up);
        assert!(server.served(OK) >= 3);
        assert_eq!(server.bad_requests.load(Ordering::SeqCst), 0, "request format");
        rec.assert_none();

        // 503: down after exactly `fall` responses.
        server.set_mode(UNAVAILABLE);
        let tr = rec.next();
        assert_eq!((tr.up, tr.reason.as_str()), (false, "http status 503"));
        assert_eq!(server.served(UNAVAILABLE), u64::from(fall));
        rec.release();

        // 200 again: up after exactly `rise` responses.
        let ok_before = server.served(OK);
        server.set_mode(OK);
        let tr = rec.next();
        assert_eq!((tr.up, tr.reason.as_str()), (true, "2 successes"));
        assert_eq!(server.served(OK) - ok_before, u64::from(rise));
        rec.release();

        // Garbage: a malformed-response failure.
        server.set_mode(GARBAGE);
        let tr = rec.next();
        assert!(!tr.up && tr.reason.contains("malformed"), "{tr:?}");
        assert_eq!(server.served(GARBAGE), u64::from(fall));
        rec.release();
        server.set_mode(OK);
        assert!(rec.next().up);
        rec.release();

        // A server that never answers: timeout failures.
        server.set_mode(SILENT);
        let tr = rec.next();
        assert_eq!((tr.up, tr.reason.as_str()), (false, "timeout after 400 ms"));
        rec.release();
        assert_eq!(server.bad_requests.load(Ordering::SeqCst), 0, "request format");

        let started = Instant::now();
        hc.stop();
        assert!(started.elapsed() < Duration::from_secs(2), "stop took {:?}", started.elapsed());
        server.set_mode(OK);
    }

    #[test]
    fn health_http_check_port_and_timeout_reason() {
        // The check port overrides the real server's port; a silent server times out.
        let server = Server::start(0, true);
        server.set_mode(SILENT);
        let mut c = cfg("http", 100, 50, 1, 1);
        c.port = Some(server.port);
        let started = Instant::now();
        let r = probe(SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port())), &c);
        assert_eq!(r, Err("timeout after 50 ms".to_string()));
        assert!(started.elapsed() < Duration::from_secs(2));
        // Without the override, the closed port refuses.
        c.port = None;
        let r = probe(SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port())), &c);
        assert_eq!(r, Err("connect: connection refused".to_string()));
        server.set_mode(OK);
    }

    /// What a [`tls_server`] saw of each connection: the server name sent (SNI) and the request.
    type Seen = Vec<(Option<String>, String)>;

    /// A loopback HTTPS server with the self-signed test certificate (control/tests/tls), speaking
    /// `versions`. It serves one connection per answer, in order, and returns for each the server
    /// name the client sent (SNI) and its request.
    fn tls_server(
        versions: &[&'static rustls::SupportedProtocolVersion],
        answers: Vec<&'static [u8]>,
    ) -> (u16, JoinHandle<Seen>) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(include_bytes!("../tests/tls/cert.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../tests/tls/key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = thread::spawn(move || {
            answers
                .into_iter()
                .map(|answer| {
                    let (tcp, _) = listener.accept().unwrap();
                    tcp.set_read_timeout(Some(WAIT)).unwrap();
                    let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                    let mut s = rustls::StreamOwned::new(conn, tcp);
                    let mut req = Vec::new();
                    let mut buf = [0u8; 512];
                    while !req.ends_with(b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => req.extend_from_slice(&buf[..k]),
                        }
                    }
                    let sni = s.conn.server_name().map(str::to_owned);
                    let _ = s.write_all(answer);
                    s.conn.send_close_notify();
                    let _ = s.flush();
                    (sni, String::from_utf8_lossy(&req).into_owned())
                })
                .collect()
        });
        (port, thread)
    }

    /// keepalived's SSL_GET: HTTP over TLS to a server whose (self-signed) certificate is not
    /// verified; status, Host and SNI as configured; TLS 1.2 and 1.3.
    #[test]
    fn health_https_checks_status_host_and_sni() {
        const OK_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        const DOWN_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        let all = rustls::ALL_VERSIONS;
        let (port, server) = tls_server(all, vec![OK_ANSWER, DOWN_ANSWER, OK_ANSWER]);
        let real = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let c = cfg("https", 5000, 3000, 1, 1);
        assert_eq!(probe(real, &c), Ok(()));
        assert_eq!(probe(real, &c), Err("http status 503".to_string()));
        let named = CheckConfig {
            host: Some("www.example.org".into()),
            sni: Some("tls.example.org".into()),
            ..c.clone()
        };
        assert_eq!(probe(real, &named), Ok(()));
        let seen = server.join().unwrap();
        let plain = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        assert_eq!(seen[0], (None, plain.clone()), "no SNI without a name; Host is the address");
        assert_eq!(seen[1], (None, plain));
        assert_eq!(
            seen[2],
            (
                Some("tls.example.org".into()),
                "GET /health HTTP/1.0\r\nHost: www.example.org\r\nConnection: close\r\n\r\n".into()
            )
        );
        // A TLS 1.2-only server (the workspace enables rustls's tls12).
        let (port, server) = tls_server(&[&rustls::version::TLS12], vec![OK_ANSWER]);
        assert_eq!(probe(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &c), Ok(()));
        assert_eq!(server.join().unwrap().len(), 1);
    }

    #[test]
    fn health_https_fails_on_plain_http_and_silence() {
        // A server that speaks plain HTTP at once: the handshake fails.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let plain = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            let _ = s.shutdown(Shutdown::Write);
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        });
        let c = cfg("https", 5000, 3000, 1, 1);
        let e = probe(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &c).unwrap_err();
        assert!(e.starts_with("tls handshake: "), "{e}");
        plain.join().unwrap();
        // A server that accepts (the kernel's backlog) and never speaks: the handshake times out.
        let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = silent.local_addr().unwrap().port();
        let started = Instant::now();
        let c = cfg("https", 1000, 200, 1, 1);
        assert_eq!(
            probe(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &c),
            Err("timeout after 200 ms".into())
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        drop(silent);
    }

    #[test]
    fn health_set_targets_keeps_adds_and_drops() {
        let (rec, cb) = recorder(false);
        let hc = HealthChecker::start(cb);
        let a_server = Server::start(0, false);
        let a = target("svc-a", a_server.port);
        let b = target("svc-b", closed_port());
        let c = target("svc-c", closed_port());
        let check = cfg("tcp", 100, 50, 1, 2);
        hc.set_targets(vec![(a.clone(), check.clone()), (b.clone(), check.clone())]);
        assert_eq!((hc.state(&a), hc.state(&b), hc.state(&c)), (Some(true), Some(true), None));

        let tr = rec.next();
        assert_eq!((tr.target.clone(), tr.up), (b.clone(), false), "{tr:?}");
        let b_checks = hc.status(&b).unwrap().checks;
        rec.assert_none();

        // Replace: a removed, b kept (down, counters kept), c added (up).
        hc.set_targets(vec![(b.clone(), check.clone()), (c.clone(), check.clone())]);
        assert_eq!((hc.state(&a), hc.state(&b), hc.state(&c)), (None, Some(false), Some(true)));
        assert!(hc.status(&b).unwrap().checks >= b_checks);
        // a's server goes away: were a still checked, it would go down.
        drop(a_server);

        let tr = rec.next();
        assert_eq!((tr.target.clone(), tr.up), (c.clone(), false), "{tr:?}");
        wait_checks(&hc, &b, 5);
        wait_checks(&hc, &c, 3);
        rec.assert_none();
        assert_eq!(hc.status(&a), None);
        assert_eq!(hc.snapshot().len(), 2);

        // A changed check of a kept target takes effect: b's check port now has a listener.
        let b_server = Server::start(0, false);
        let mut moved = check.clone();
        moved.port = Some(b_server.port);
        hc.set_targets(vec![(b.clone(), moved), (c.clone(), check)]);
        let tr = rec.next();
        assert_eq!((tr.target.clone(), tr.up, tr.reason.as_str()), (b.clone(), true, "1 success"));
        assert_eq!(hc.state(&c), Some(false));

        // Removing everything: no more checks or callbacks.
        hc.set_targets(Vec::new());
        assert!(hc.snapshot().is_empty());
        drop(b_server);
        thread::sleep(Duration::from_millis(300));
        rec.assert_none();
        hc.stop();
    }

    #[test]
    fn health_many_targets_and_prompt_stop() {
        let (rec, cb) = recorder(false);
        let hc = HealthChecker::start(cb);
        let server = Server::start(0, false);
        let silent = Server::start(0, true);
        silent.set_mode(SILENT);
        let check = cfg("tcp", 1000, 500, 1, 1);
        // Many services on one listener, plus http checks that always run into their timeout.
        let mut targets: Vec<_> =
            (0..200).map(|i| (target(&format!("svc-{i}"), server.port), check.clone())).collect();
        let slow = cfg("http", 200, 100, 1, 1000);
        targets.extend((0..2).map(|i| (target(&format!("slow-{i}"), silent.port), slow.clone())));
        hc.set_targets(targets);
        wait_until("every target checked twice", || hc.snapshot().iter().all(|(_, s)| s.checks >= 2));
        assert!(hc
            .snapshot()
            .iter()
            .all(|(t, s)| s.up && (t.service.starts_with("slow") || s.failures == 0)));
        rec.assert_none();

        let started = Instant::now();
        hc.stop();
        let took = started.elapsed();
        // A check in flight ends within its timeout (at most 500 ms); plus slack for a loaded machine.
        assert!(took < Duration::from_millis(1500), "stop took {took:?}");
        silent.set_mode(OK);
    }
}
