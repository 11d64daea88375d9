//! keepalived's checkers (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`) to an rvs health check, with the
//! timers each inherits from its `real_server` and `virtual_server`.
use super::convert::defaults;
use super::parser::Stmt;
use super::values::*;
use crate::config::{CheckConfig, CheckKind};
/// Timers that cascade from virtual_server to real_server to checker.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timers {
    delay_loop: Option<u32>,
    connect_timeout: Option<u32>,
    retry: Option<u32>,
    delay_before_retry: Option<u32>,
}

impl Timers {
    /// Takes `s` if it is a timer keyword; `Ok(false)` if it is not one.
    pub(super) fn take(&mut self, s: &Stmt) -> R<bool> {
        match s.key.as_str() {
            "delay_loop" => self.delay_loop = Some(secs_ms(s)?),
            "connect_timeout" => self.connect_timeout = Some(secs_ms(s)?),
            "retry" | "nb_get_retry" | "nb_sock_retry" => self.retry = Some(uint(s, 0, defaults::MAX_RETRY)?),
            "delay_before_retry" => self.delay_before_retry = Some(secs_ms(s)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn under(self, outer: Timers) -> Timers {
        Timers {
            delay_loop: self.delay_loop.or(outer.delay_loop),
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
        }
    }
}

/// `virtualhost` NAME: a host name for the HTTP `Host` header (no spaces or control characters).
pub(super) fn vhost(s: &Stmt) -> R<String> {
    no_block(s)?;
    let v = one(s)?;
    if v.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(s.err(format!("{} {v:?}: not a host name", s.key)));
    }
    Ok(v.to_owned())
}

/// The `virtualhost`s around a checker: its real_server's and its virtual_server's.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Vhosts<'a> {
    pub(super) real: Option<&'a str>,
    pub(super) virtual_server: Option<&'a str>,
}

/// A real server's checker as rvs's check, with the statement it came from.
pub(super) fn checker(s: &Stmt, outer: Timers, vhosts: Vhosts) -> R<CheckConfig> {
    let kind = match s.key.as_str() {
        "TCP_CHECK" => CheckKind::Tcp,
        "HTTP_GET" => CheckKind::Http,
        "SSL_GET" => CheckKind::Https,
        _ => unreachable!("checker() is called for the CHECKERS"),
    };
    let mut t = Timers::default();
    let mut port_ = None;
    let mut url: Option<(String, u16, Option<String>)> = None;
    let mut host = None;
    let mut enable_sni = false;
    let mut sni_name = None;
    for c in s.block.as_deref().unwrap_or_default() {
        if t.take(c)? {
            continue;
        }
        match c.key.as_str() {
            "connect_port" => {
                no_block(c)?;
                port_ = Some(port(c, one(c)?)?);
            }
            "virtualhost" if kind.is_http() => host = Some(vhost(c)?),
            "enable_sni" if kind == CheckKind::Https => enable_sni = flag(c)?,
            // keepalived: `sni_name` without a name turns SNI on with the virtualhost.
            "sni_name" if kind == CheckKind::Https => {
                no_block(c)?;
                enable_sni = true;
                match c.args.as_slice() {
                    [] => {}
                    [n] => {
                        if rustls::pki_types::DnsName::try_from(n.as_str()).is_err() {
                            return Err(c.err(format!("sni_name \"{n}\": not a DNS name")));
                        }
                        sni_name = Some(n.clone());
                    }
                    _ => return Err(c.err("sni_name: takes at most one name")),
                }
            }
            "url" if kind.is_http() => {
                if url.is_some() {
                    return Err(unsupported(c, "a second url (rvs checks one url per real server)"));
                }
                let mut path = None;
                let mut status = None;
                let mut url_host = None;
                for u in block(c)? {
                    match u.key.as_str() {
                        "path" => {
                            no_block(u)?;
                            let p = one(u)?;
                            if !p.starts_with('/') {
                                return Err(u.err(format!("path \"{p}\": must start with /")));
                            }
                            path = Some(p.to_owned());
                        }
                        "status_code" => status = Some(uint(u, 100, 599)? as u16),
                        "digest" => {
                            return Err(unsupported(u, "rvs's HTTP check compares the status code only"))
                        }
                        "virtualhost" => url_host = Some(vhost(u)?),
                        _ => return Err(unknown(u, "url")),
                    }
                }
                let path = path.ok_or_else(|| c.err("url: needs a path"))?;
                let status = status.ok_or_else(|| {
                    c.err("url: needs a status_code (keepalived's default accepts any 2xx; rvs checks for one status)")
                })?;
                url = Some((path, status, url_host));
            }
            "connect_ip" | "bindto" | "bind_port" | "bind_if" | "fwmark" | "warmup" | "alpha"
            | "http_protocol" | "log_all_failures" => {
                return Err(unsupported(
                    c,
                    "rvs checks the real server's address from rvsd's network namespace",
                ))
            }
            _ => return Err(unknown(c, &s.key)),
        }
    }
    let t = t.under(outer);
    let interval_ms = t.delay_loop.unwrap_or(defaults::DELAY_LOOP_MS);
    let timeout_ms = t.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT_MS);
    if interval_ms < 100 {
        return Err(s.err(format!(
            "{}: delay_loop below 0.1 s is not supported (rvs checks at most every 100 ms)",
            s.key
        )));
    }
    if timeout_ms == 0 || timeout_ms > interval_ms {
        return Err(s.err(format!(
            "{}: connect_timeout {} ms must be above 0 and at most delay_loop {} ms (rvs starts the next check at the next delay_loop)",
            s.key, timeout_ms, interval_ms
        )));
    }
    let (path, expect_status, url_host) = match (kind, url) {
        (CheckKind::Tcp, _) => ("/".to_owned(), 200, None),
        (_, Some(u)) => u,
        (_, None) => {
            return Err(s.err(format!("{}: needs a url {{ path ... status_code ... }} block", s.key)))
        }
    };
    let (host, sni) = if kind.is_http() {
        let vs = vhosts.virtual_server.map(str::to_owned);
        let sni = enable_sni.then(|| sni_name.or(url_host.clone()).or(host.clone()).or(vs.clone())).flatten();
        if let Some(n) = sni.as_deref().filter(|n| rustls::pki_types::DnsName::try_from(*n).is_err()) {
            return Err(
                s.err(format!("{}: enable_sni: virtualhost \"{n}\" is not a DNS name to send", s.key))
            );
        }
        (url_host.or(host).or(vhosts.real.map(str::to_owned)).or(vs), sni)
    } else {
        (None, None)
    };
    Ok(CheckConfig {
        kind,
        port: port_,
        path,
        expect_status,
        interval_ms,
        timeout_ms,
        rise: 1,
        fall: t.retry.unwrap_or(defaults::RETRY) + 1,
        retry_ms: Some(t.delay_before_retry.unwrap_or(defaults::DELAY_BEFORE_RETRY_MS)),
        host,
        sni,
    })
}
