//! The Unix-socket server: a thin shell that reads request lines, calls a handler, writes responses.
//!
//! It never lets a client stall it: lines are bounded ([`MAX_REQUEST_BYTES`]), reads time out, and
//! each client runs on its own short-lived thread so one slow client does not block the others.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{parse_request, Request, Response, MAX_REQUEST_BYTES};

/// Most clients served at once; more are answered with an error and closed.
pub const MAX_CLIENTS: usize = 256;
/// A client that sends nothing for this long is disconnected.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The gid of group `name`, from /etc/group.
pub fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Binds `path` (replacing a stale socket): owner root, mode 0600, or 0660 with group
/// `admin_group` when one is given.
pub fn bind(path: &str, admin_group: Option<&str>) -> std::io::Result<UnixListener> {
    let p = Path::new(path);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if p.exists() {
        // A live daemon still answering on it means another rvsd owns it.
        if UnixStream::connect(p).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{path} is in use by another running rvsd"),
            ));
        }
        std::fs::remove_file(p)?;
    }
    let l = UnixListener::bind(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    if let Some(g) = admin_group {
        let gid = group_id(g).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("admin group \"{g}\" does not exist"))
        })?;
        std::os::unix::fs::chown(p, None, Some(gid))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660))?;
    }
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves until `stop` is set. `handler` must be cheap and thread-safe.
pub fn serve<H>(listener: UnixListener, handler: Arc<H>, stop: Arc<AtomicBool>)
where
    H: Fn(Request) -> Response + Send + Sync + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let _ = stream.write_all(Response::error("too many clients").to_line().as_bytes());
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (h, a) = (handler.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("rvs-api-client".into()).spawn(move || {
                    client(stream, &*h);
                    a.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn client<H: Fn(Request) -> Response>(stream: UnixStream, handler: &H) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream).take(MAX_REQUEST_BYTES as u64 + 1);
    let mut line = String::new();
    loop {
        line.clear();
        reader.set_limit(MAX_REQUEST_BYTES as u64 + 1);
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(n) if n > MAX_REQUEST_BYTES => {
                let _ = writer.write_all(
                    Response::error(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
                        .to_line()
                        .as_bytes(),
                );
                return;
            }
            Ok(_) => {
                if line.trim().is_empty() {
                    continue;
                }
                let resp = match parse_request(&line) {
                    Ok(req) => handler(req),
                    Err(e) => Response::error(e),
                };
                if writer.write_all(resp.to_line().as_bytes()).is_err() {
                    return;
                }
            }
            Err(e) => {
                let msg = if e.kind() == std::io::ErrorKind::InvalidData {
                    "request is not UTF-8".to_owned()
                } else {
                    format!("read error: {e}")
                };
                let _ = writer.write_all(Response::error(msg).to_line().as_bytes());
                return;
            }
        }
    }
}
