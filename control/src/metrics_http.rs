//! The metrics endpoint's HTTP server: a thin, bounded shell around [`crate::metrics`].
//!
//! std's `TcpListener` and one short-lived thread per connection, at most `max_clients` at once
//! (a connection beyond them is answered 503 and closed at accept). One request per connection
//! (`Connection: close`): the request head is parsed by `httparse` (hyper's parser: no allocation,
//! bounded header count) and must arrive whole within `read_timeout` (a deadline for the whole
//! head, so a client dribbling a byte at a time is cut off as surely as a silent one: 408) and
//! within `max_request_bytes` (431). Only `GET /metrics` is served (404 for another path, 405 for
//! another method). Writes are bounded by the same timeout. A full HTTP server crate (hyper,
//! tiny_http) would bring an async runtime or unbounded thread pools for one read-only path.
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::{Format, HttpOutcome, HttpStats};

/// Most headers a request may carry (more: 431).
pub const MAX_HEADERS: usize = 64;
/// After answering, unread input is drained for at most this long (and 64 KiB) before the socket
/// is closed, so that the client reads the answer instead of a reset.
const LINGER: Duration = Duration::from_millis(200);

/// The endpoint's bounds (`[metrics]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_clients: usize,
    pub read_timeout: Duration,
    pub max_request_bytes: usize,
}

impl From<&crate::config::MetricsConfig> for Limits {
    fn from(c: &crate::config::MetricsConfig) -> Self {
        Limits {
            max_clients: c.max_clients as usize,
            read_timeout: Duration::from_millis(c.read_timeout_ms as u64),
            max_request_bytes: c.max_request_bytes as usize,
        }
    }
}

/// Binds `addr` for [`serve`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves until `stop` is set. `handler` produces the exposition in the format asked for, or an
/// error (answered 503).
pub fn serve<H>(
    listener: TcpListener,
    limits: Limits,
    stats: Arc<HttpStats>,
    handler: Arc<H>,
    stop: Arc<AtomicBool>,
) where
    H: Fn(Format) -> Result<String, String> + Send + Sync + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if active.load(Ordering::Acquire) >= limits.max_clients {
                    stats.count(HttpOutcome::TooManyClients);
                    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ =
                        stream.write_all(&response(503, "Service Unavailable", &[], b"too many clients\n"));
                    continue;
                }
                active.fetch_add(1, Ordering::AcqRel);
                let (h, a, s) = (handler.clone(), active.clone(), stats.clone());
                let spawned =
                    std::thread::Builder::new().name("rvs-metrics-client".into()).spawn(move || {
                        client(stream, &limits, &s, &*h);
                        a.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    stats.count(HttpOutcome::Unavailable);
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// What the request head read so far says.
enum Head {
    Partial,
    Complete { method: String, path: String, format: Format },
    Bad,
    TooManyHeaders,
}

fn parse(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Head::Partial,
        Ok(httparse::Status::Complete(_)) => {
            let accept = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("accept"))
                .and_then(|h| std::str::from_utf8(h.value).ok());
            Head::Complete {
                method: req.method.unwrap_or_default().to_owned(),
                path: req.path.unwrap_or_default().to_owned(),
                format: Format::from_accept(accept),
            }
        }
        Err(httparse::Error::TooManyHeaders) => Head::TooManyHeaders,
        Err(_) => Head::Bad,
    }
}

fn response(code: u16, reason: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head =
        format!("HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !extra.iter().any(|(k, _)| *k == "Content-Type") {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Serves one connection: one request, one answer.
fn client<H: Fn(Format) -> Result<String, String>>(
    mut stream: TcpStream,
    limits: &Limits,
    stats: &HttpStats,
    handler: &H,
) {
    let _ = stream.set_write_timeout(Some(limits.read_timeout));
    let deadline = Instant::now() + limits.read_timeout;
    let mut buf = vec![0u8; limits.max_request_bytes];
    let mut n = 0;
    let (outcome, answer) = loop {
        if n > 0 {
            match parse(&buf[..n]) {
                Head::Partial => {}
                Head::Complete { method, path, format } => break answer(&method, &path, format, handler),
                Head::Bad => {
                    break (HttpOutcome::BadRequest, response(400, "Bad Request", &[], b"bad request\n"))
                }
                Head::TooManyHeaders => break too_large(),
            }
        }
        if n == buf.len() {
            break too_large();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break timeout();
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf[n..]) {
            Ok(0) => return stats.count(HttpOutcome::Closed),
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break timeout(),
            Err(_) => return stats.count(HttpOutcome::Closed),
        }
    };
    stats.count(outcome);
    if stream.write_all(&answer).is_ok() {
        let _ = stream.shutdown(std::net::Shutdown::Write);
        linger(&mut stream);
    }
}

fn too_large() -> (HttpOutcome, Vec<u8>) {
    (
        HttpOutcome::TooLarge,
        response(431, "Request Header Fields Too Large", &[], b"request head too large\n"),
    )
}

fn timeout() -> (HttpOutcome, Vec<u8>) {
    (HttpOutcome::Timeout, response(408, "Request Timeout", &[], b"request head not received in time\n"))
}

/// Reads and discards what the client still sends, briefly, so closing does not reset the answer.
fn linger(stream: &mut TcpStream) {
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < 64 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(k) => total += k,
        }
    }
}

fn answer<H: Fn(Format) -> Result<String, String>>(
    method: &str,
    path: &str,
    format: Format,
    handler: &H,
) -> (HttpOutcome, Vec<u8>) {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path != "/metrics" {
        return (
            HttpOutcome::NotFound,
            response(404, "Not Found", &[], b"not found: only /metrics is served\n"),
        );
    }
    if method != "GET" {
        return (
            HttpOutcome::BadMethod,
            response(405, "Method Not Allowed", &[("Allow", "GET")], b"only GET is allowed\n"),
        );
    }
    match handler(format) {
        Ok(body) => (
            HttpOutcome::Served,
            response(200, "OK", &[("Content-Type", format.content_type())], body.as_bytes()),
        ),
        Err(e) => {
            (HttpOutcome::Unavailable, response(503, "Service Unavailable", &[], format!("{e}\n").as_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;

    struct Server {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        stats: Arc<HttpStats>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn start(max_clients: usize, timeout_ms: u64) -> Server {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(HttpStats::default());
        let limits =
            Limits { max_clients, read_timeout: Duration::from_millis(timeout_ms), max_request_bytes: 1024 };
        let handler = Arc::new(|f: Format| Ok(format!("rvs_test 1 {f:?}\n")));
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::spawn(move || serve(l, limits, st, handler, s));
        Server { addr, stop, stats, thread: Some(thread) }
    }

    /// Sends `req`, returns the whole answer (until the server closes).
    fn exchange(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(req);
        read_all(&mut s)
    }

    fn read_all(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn get_metrics_is_served_in_the_format_asked_for() {
        let srv = start(8, 1000);
        let r = exchange(srv.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nrvs_test 1 Text\n"), "{r}");
        let r = exchange(
            srv.addr,
            b"GET /metrics?x=1 HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
        );
        assert!(r.contains("Content-Type: application/openmetrics-text; version=1.0.0"), "{r}");
        assert!(r.ends_with("rvs_test 1 OpenMetrics\n"), "{r}");
        assert_eq!(srv.stats.get(HttpOutcome::Served), 2);
    }

    #[test]
    fn wrong_path_404_wrong_method_405_garbage_400() {
        let srv = start(8, 1000);
        assert!(exchange(srv.addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(exchange(srv.addr, b"GET /metricsx HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let r = exchange(srv.addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && r.contains("Allow: GET\r\n"), "{r}");
        assert!(exchange(srv.addr, b"\x16\x03\x01 hello\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(srv.stats.get(HttpOutcome::NotFound), 2);
        assert_eq!(srv.stats.get(HttpOutcome::BadMethod), 1);
        assert_eq!(srv.stats.get(HttpOutcome::BadRequest), 1);
    }

    #[test]
    fn oversized_request_431() {
        let srv = start(8, 2000);
        let mut req = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 100_000));
        let r = exchange(srv.addr, &req);
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{r}");
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..(MAX_HEADERS + 1) {
            many.extend(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert!(many.len() < 1024);
        assert!(exchange(srv.addr, &many).starts_with("HTTP/1.1 431 "));
        assert_eq!(srv.stats.get(HttpOutcome::TooLarge), 2);
        // And the server still serves.
        assert!(exchange(srv.addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
    }

    #[test]
    fn slow_clients_time_out_and_do_not_block_others() {
        let srv = start(8, 1500);
        // Silent: sends nothing.
        let mut silent = TcpStream::connect(srv.addr).unwrap();
        silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Dribbling: a byte every 50 ms; the deadline is for the whole head, not per read.
        let mut drib = TcpStream::connect(srv.addr).unwrap();
        let t0 = Instant::now();
        let dribbler = std::thread::spawn(move || {
            for b in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
                if drib.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drib.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            (read_all(&mut drib), t0.elapsed())
        });
        // Meanwhile a normal scrape is answered at once.
        let t1 = Instant::now();
        assert!(exchange(srv.addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
        assert!(t1.elapsed() < Duration::from_millis(1000), "{:?}", t1.elapsed());
        let r = read_all(&mut silent);
        assert!(r.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{r}");
        let (r, took) = dribbler.join().unwrap();
        // 68 bytes at 50 ms would take 3.4 s; the 1.5 s deadline cuts it off.
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 408 "), "{r}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
        assert_eq!(srv.stats.get(HttpOutcome::Timeout), 2);
    }

    #[test]
    fn too_many_connections_refused_503_then_served_again() {
        let srv = start(2, 1000);
        let hold: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(300));
        let r = exchange(srv.addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
        assert_eq!(srv.stats.get(HttpOutcome::TooManyClients), 1);
        // Once the idle ones have timed out (or left), a scrape is served.
        for s in &hold {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(hold);
        let mut served = false;
        for _ in 0..40 {
            if exchange(srv.addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 ") {
                served = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(served);
    }
}
