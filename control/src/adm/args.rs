//! The command line: ipvsadm 1.31's parsing (`ipvsadm.c`: `parse_options`, `process_options`,
//! `generic_opt_check`) over the option table of [`super::opts`], into the request to send.
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

pub use super::opts::*;
use super::{usage, AdmError, DEFAULT_PERSISTENCE, DEFAULT_SCHED, MAX_TIMEOUT};
use crate::api::{Request, ServiceId};
use crate::capture::{CaptureRequest, Direction};
use crate::config::{
    defaults, endpoint, parse_endpoint, Forward, Proto, ProxyProtocol, RealConfig, Sched, ServiceConfig,
    MAX_WEIGHT,
};

/// How lists are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `--exact`: no K/M/G suffixes.
    pub exact: bool,
    /// `--nosort`: keep the daemon's order.
    pub nosort: bool,
    /// `--show-lip` (rvs): a `local` column (the FULLNAT local address) in `-Lc`.
    pub show_lip: bool,
    /// `--persistent-conn` with `-c`: ipvsadm's `pe name` and `pe_data` columns (empty in rvs,
    /// which has no persistence engines).
    pub persist: bool,
}

/// Which columns `-L` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Plain,
    Stats,
    Rate,
    Thresholds,
    /// `--persistent-conn`: weight, persistence templates, active and inactive connections.
    PersistConn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Help,
    Version,
    /// A change; prints nothing on success (`-A -E -D -C -a -e -d -Z --add-laddr --del-laddr`).
    Send(Request),
    /// `-L` (`service` with `-t`/`-u`).
    List {
        service: Option<ServiceId>,
        view: View,
        fmt: Format,
    },
    /// `-Lc`, paged.
    ListConns {
        service: Option<ServiceId>,
        fmt: Format,
    },
    /// `-S`.
    Save {
        fmt: Format,
    },
    /// `-R`: rules from stdin, sent as one `restore`.
    Restore,
    /// `--get-laddr`.
    GetLaddr {
        service: Option<ServiceId>,
    },
    /// `-L --timeout`.
    Timeouts,
    /// `--ports` (`-L --ports`): rvsd's ports, as DPVS's `dpip link show`.
    ListPorts,
    /// `--capture-start`, `--capture-stop`, `--capture-status`: the request, then the capture's
    /// status printed in one line.
    Capture(Request),
    /// `--start-daemon` / `--stop-daemon`: the request; nothing is printed.
    Sync(Request),
    /// `-L --daemon`: the running sync daemons, as ipvsadm's `list_daemon` prints them.
    ListDaemon,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub socket: String,
    pub action: Action,
}

#[derive(Default)]
struct Raw {
    cmd: Option<Cmd>,
    help: bool,
    version: bool,
    opts: Vec<Opt>,
    svc: Option<(Proto, IpAddr, u16)>,
    sched: Option<Sched>,
    persistence: Option<u32>,
    server: Option<String>,
    forward: Option<Forward>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    laddr: Option<IpAddr>,
    synproxy: Option<bool>,
    toa: Option<bool>,
    proxy_protocol: Option<ProxyProtocol>,
    socket: Option<String>,
    capture: CaptureRequest,
    /// `--start-daemon`/`--stop-daemon STATE`, `--mcast-interface`, `--syncid`.
    daemon_state: Option<crate::api::SyncRoleName>,
    mcast_ifn: Option<String>,
    syncid: Option<u8>,
    /// Words that are no option's value (`--set`'s three timeouts).
    positional: Vec<String>,
}

impl Raw {
    fn set(&mut self, o: Opt) -> Result<(), AdmError> {
        if self.opts.contains(&o) {
            return Err(usage(format!("multiple '{}' options specified", o.name())));
        }
        self.opts.push(o);
        Ok(())
    }

    fn has(&self, o: Opt) -> bool {
        self.opts.contains(&o)
    }

    fn service_id(&self) -> Option<ServiceId> {
        self.svc.map(|(proto, ip, port)| ServiceId { proto, vip: endpoint(ip, port) })
    }
}

/// ipvsadm's `string_to_number`: a decimal in `min..=max`.
fn number(s: &str, min: u32, max: u32) -> Option<u32> {
    u32::from_str(s).ok().filter(|n| (min..=max).contains(n))
}

fn parse_service(proto: Proto, s: &str) -> Result<(Proto, IpAddr, u16), AdmError> {
    parse_endpoint(s)
        .map(|(ip, port)| (proto, ip, port))
        .map_err(|e| usage(format!("illegal virtual server address:port \"{s}\": {e}")))
}

fn parse_switch(s: &str, on: &str, off: &str) -> Option<bool> {
    match s {
        _ if s == on || s == "on" || s == "enable" => Some(true),
        _ if s == off || s == "off" || s == "disable" => Some(false),
        _ => None,
    }
}

fn apply(raw: &mut Raw, key: Key, val: Option<&str>) -> Result<(), AdmError> {
    let v = val.unwrap_or_default();
    match key {
        Key::Cmd(c) => {
            if raw.cmd.is_some() {
                return Err(usage("multiple commands specified"));
            }
            raw.cmd = Some(c);
        }
        Key::Help => raw.help = true,
        Key::Version => raw.version = true,
        Key::Tcp | Key::Udp => {
            raw.set(Opt::Service)?;
            raw.svc = Some(parse_service(if key == Key::Tcp { Proto::Tcp } else { Proto::Udp }, v)?);
        }
        Key::Sched => {
            raw.set(Opt::Scheduler)?;
            raw.sched = Some(v.parse().map_err(usage)?);
        }
        Key::Persist => {
            raw.set(Opt::Persistent)?;
            raw.persistence = Some(match val {
                None => DEFAULT_PERSISTENCE,
                // parse_timeout(optarg, 1, MAX_TIMEOUT): 0 is refused, for -E too.
                Some(s) => number(s, 1, MAX_TIMEOUT)
                    .ok_or_else(|| usage(format!("invalid timeout value `{s}' specified")))?,
            });
        }
        Key::Real => {
            raw.set(Opt::Server)?;
            raw.server = Some(v.to_owned());
        }
        Key::Fwd(f) => {
            raw.set(Opt::Forward)?;
            raw.forward = Some(f);
        }
        Key::Weight => {
            raw.set(Opt::Weight)?;
            raw.weight = Some(
                number(v, 0, MAX_WEIGHT)
                    .ok_or_else(|| usage(format!("illegal weight specified: \"{v}\" (0..={MAX_WEIGHT})")))?,
            );
        }
        Key::UThr | Key::LThr => {
            let (o, name) = if key == Key::UThr { (Opt::UThreshold, "u") } else { (Opt::LThreshold, "l") };
            raw.set(o)?;
            let n = number(v, 0, i32::MAX as u32)
                .ok_or_else(|| usage(format!("illegal {name}_threshold specified: \"{v}\"")))?;
            if key == Key::UThr {
                raw.u_threshold = Some(n);
            } else {
                raw.l_threshold = Some(n);
            }
        }
        Key::Numeric => raw.set(Opt::Numeric)?,
        Key::Conn => raw.set(Opt::Connection)?,
        Key::Stats => raw.set(Opt::Stats)?,
        Key::Rate => raw.set(Opt::Rate)?,
        Key::Thresholds => raw.set(Opt::Thresholds)?,
        Key::Exact => raw.set(Opt::Exact)?,
        Key::NoSort => raw.set(Opt::NoSort)?,
        Key::Sort => {}
        Key::ShowLip => raw.set(Opt::ShowLip)?,
        Key::Laddr => {
            raw.set(Opt::Laddr)?;
            raw.laddr =
                Some(IpAddr::from_str(v).map_err(|_| {
                    usage(format!("illegal local address \"{v}\" (an IPv4 or IPv6 address)"))
                })?);
        }
        Key::Synproxy => {
            raw.set(Opt::Synproxy)?;
            raw.synproxy = Some(
                parse_switch(v, "enable", "disable")
                    .ok_or_else(|| usage("synproxy switch must be enable or disable"))?,
            );
        }
        Key::Toa => {
            raw.set(Opt::Toa)?;
            raw.toa = Some(parse_switch(v, "on", "off").ok_or_else(|| usage("--toa must be on or off"))?);
        }
        Key::ProxyProtocol => {
            raw.set(Opt::ProxyProtocol)?;
            raw.proxy_protocol =
                Some(v.parse().map_err(|_| usage("--proxy-protocol must be v1, v2 or off"))?);
        }
        Key::Ifname => raw.set(Opt::Ifname)?,
        Key::Socket => {
            if raw.socket.is_some() {
                return Err(usage("multiple 'socket' options specified"));
            }
            raw.socket = Some(v.to_owned());
        }
        Key::Daemon(c) => {
            apply(raw, Key::Cmd(c), None)?;
            // ipvsadm checks the state word before it asks the kernel.
            raw.daemon_state = Some(match v {
                "master" => crate::api::SyncRoleName::Master,
                "backup" => crate::api::SyncRoleName::Backup,
                _ => {
                    return Err(usage(if c == Cmd::StartDaemon {
                        "illegal start-daemon parameter specified"
                    } else {
                        "illegal start_daemon specified"
                    }))
                }
            });
        }
        Key::McastInterface => {
            raw.set(Opt::McastInterface)?;
            // ipvsadm: at most IP_VS_IFNAME_MAXLEN (16) bytes with the terminating NUL.
            if v.is_empty() || v.len() > 15 {
                return Err(usage("illegal mcast-interface specified"));
            }
            raw.mcast_ifn = Some(v.to_owned());
        }
        Key::SyncId => {
            raw.set(Opt::SyncId)?;
            raw.syncid = Some(number(v, 0, 255).ok_or_else(|| usage("illegal syncid specified"))? as u8);
        }
        Key::TimeoutOpt => raw.set(Opt::Timeout)?,
        Key::DaemonOpt => raw.set(Opt::Daemon)?,
        Key::PersistConn => raw.set(Opt::PersistentConn)?,
        Key::Inhibit => raw.set(Opt::Inhibit)?,
        Key::Ports => raw.set(Opt::Ports)?,
        Key::CaptureStart => {
            apply(raw, Key::Cmd(Cmd::CaptureStart), None)?;
            raw.capture.port = v.to_owned();
        }
        Key::Capture(o) => {
            raw.set(o)?;
            let c = &mut raw.capture;
            let count = |what: &str| {
                u64::from_str(v).map_err(|_| usage(format!("--{what} must be a whole number, not \"{v}\"")))
            };
            match o {
                Opt::Direction => {
                    c.direction = match v {
                        "rx" => Direction::Rx,
                        "tx" => Direction::Tx,
                        "both" => Direction::Both,
                        _ => return Err(usage(format!("--direction must be rx, tx or both, not \"{v}\""))),
                    }
                }
                Opt::Host => {
                    Ipv4Addr::from_str(v)
                        .map_err(|_| usage(format!("--host must be an IPv4 address, not \"{v}\"")))?;
                    c.filter.host = Some(v.to_owned());
                }
                Opt::Cport => {
                    c.filter.port =
                        Some(u16::from_str(v).ok().filter(|p| *p > 0).ok_or_else(|| {
                            usage(format!("--cport must be a port 1 to 65535, not \"{v}\""))
                        })?)
                }
                Opt::CProto => c.filter.proto = Some(v.parse().map_err(usage)?),
                Opt::Count => c.max_packets = Some(count("count")?),
                Opt::MaxBytes => c.max_bytes = Some(count("max-bytes")?),
                Opt::Snaplen => {
                    c.snaplen = Some(u32::try_from(count("snaplen")?).unwrap_or(u32::MAX));
                }
                _ => {
                    // The daemon writes the file: a relative path is made absolute here.
                    let path = std::path::Path::new(v);
                    c.file = if path.is_absolute() {
                        v.to_owned()
                    } else {
                        std::env::current_dir()
                            .map_err(|e| AdmError::Io(format!("cannot resolve --file {v}: {e}")))?
                            .join(path)
                            .to_string_lossy()
                            .into_owned()
                    };
                }
            }
        }
        Key::Unsupported(why) => return Err(usage(why)),
    }
    Ok(())
}

/// Parses a command line (without the program name). `env_socket` is `$RVSADM_SOCKET`.
pub fn parse_args<S: AsRef<str>>(args: &[S], env_socket: Option<&str>) -> Result<Invocation, AdmError> {
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let mut raw = Raw::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            if long.is_empty() {
                raw.positional.extend(args[i..].iter().map(|a| a.to_string()));
                break;
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let s = SPECS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| usage(format!("unknown option --{name} (try rvsadm --help)")))?;
            let val = match (s.arg, inline) {
                (ArgKind::None, Some(_)) => return Err(usage(format!("option --{name} takes no value"))),
                (ArgKind::None, None) => None,
                (_, Some(v)) => Some(v),
                (ArgKind::Required, None) => {
                    let v = args.get(i).ok_or_else(|| usage(format!("option --{name} needs a value")))?;
                    i += 1;
                    Some(*v)
                }
                (ArgKind::Optional, None) => match args.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(*v)
                    }
                    _ => None,
                },
            };
            apply(&mut raw, s.key, val)?;
        } else if a.len() > 1 && a.starts_with('-') {
            let body = &a[1..];
            for (pos, c) in body.char_indices() {
                let s = SPECS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| usage(format!("unknown option -{c} (try rvsadm --help)")))?;
                let rest = &body[pos + c.len_utf8()..];
                match s.arg {
                    ArgKind::None => apply(&mut raw, s.key, None)?,
                    ArgKind::Required => {
                        let v = if !rest.is_empty() {
                            rest
                        } else {
                            let v = args.get(i).ok_or_else(|| usage(format!("option -{c} needs a value")))?;
                            i += 1;
                            v
                        };
                        apply(&mut raw, s.key, Some(v))?;
                        break;
                    }
                    ArgKind::Optional => {
                        let v = if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match args.get(i) {
                                Some(v) if !v.starts_with('-') => {
                                    i += 1;
                                    Some(*v)
                                }
                                _ => None,
                            }
                        };
                        apply(&mut raw, s.key, v)?;
                        break;
                    }
                }
            }
        } else {
            raw.positional.push(a.to_owned());
        }
    }
    // process_options: --set takes three words; any other word is unexpected.
    let timeouts = if raw.cmd == Some(Cmd::Timeout) {
        if raw.positional.len() < 3 {
            return Err(usage("--set option requires 3 timeout values"));
        }
        let t: Vec<u32> =
            raw.positional.drain(..3).map(|w| parse_timeout(&w, 0)).collect::<Result<_, _>>()?;
        Some((t[0], t[1], t[2]))
    } else {
        None
    };
    if let Some(x) = raw.positional.first() {
        return Err(usage(format!("unexpected argument {x}")));
    }

    let socket = raw
        .socket
        .clone()
        .or_else(|| env_socket.filter(|s| !s.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| defaults::SOCKET.to_owned());
    let done = |action| Ok(Invocation { socket: socket.clone(), action });
    if raw.help {
        return done(Action::Help);
    }
    if raw.version {
        return done(Action::Version);
    }
    let cmd = match raw.cmd {
        Some(c) => c,
        // Like ipvsadm, no arguments at all lists the table (so do just -n and --socket); `--ports`
        // alone lists the ports.
        None if raw.opts.iter().all(|o| *o == Opt::Numeric) => Cmd::List,
        None if raw.has(Opt::Ports) => Cmd::List,
        None => return Err(usage("no command specified (try rvsadm --help)")),
    };

    // generic_opt_check
    let (required, optional) = legal(cmd);
    for o in required {
        if !raw.has(*o) {
            return Err(usage(format!(
                "You need to supply the '{}' option for the '{}' command",
                o.name(),
                cmd.name()
            )));
        }
    }
    for o in &raw.opts {
        if !required.contains(o) && !optional.contains(o) {
            return Err(usage(format!("Illegal '{}' option with the '{}' command", o.name(), cmd.name())));
        }
    }

    let fmt = Format {
        exact: raw.has(Opt::Exact),
        nosort: raw.has(Opt::NoSort),
        show_lip: raw.has(Opt::ShowLip),
        persist: raw.has(Opt::PersistentConn),
    };
    if matches!(cmd, Cmd::AddService | Cmd::EditService) {
        let (proto, _, _) = raw.svc.expect("checked");
        if raw.synproxy == Some(true) && proto != Proto::Tcp {
            return Err(usage("synproxy applies to tcp services only"));
        }
        if raw.proxy_protocol.is_some_and(|p| !p.is_off()) && proto != Proto::Tcp {
            return Err(usage("the PROXY protocol applies to tcp services only"));
        }
    }
    let id = raw.service_id();
    let action = match cmd {
        Cmd::AddService => {
            let (proto, ip, port) = raw.svc.expect("checked");
            Action::Send(Request::AddService {
                service: ServiceConfig {
                    proto,
                    vip: endpoint(ip, port),
                    sched: raw.sched.unwrap_or(DEFAULT_SCHED),
                    persistence: raw.persistence,
                    toa: raw.toa.unwrap_or(false),
                    synproxy: raw.synproxy.unwrap_or(false),
                    proxy_protocol: raw.proxy_protocol.unwrap_or_default(),
                    laddrs: Vec::new(),
                    reals: Vec::new(),
                    check: None,
                    inhibit_on_failure: raw.has(Opt::Inhibit),
                    quorum: crate::config::defaults::QUORUM,
                    hysteresis: 0,
                    sorry_server: None,
                },
            })
        }
        // ipvsadm's -E sends a whole service (ipvs_update_service): what is not given takes its
        // -A default, so no -s means wlc and no -p turns persistence off. rvs's switches follow.
        Cmd::EditService => Action::Send(Request::EditService {
            id: id.expect("checked"),
            sched: Some(raw.sched.unwrap_or(DEFAULT_SCHED)),
            persistence: Some(raw.persistence.unwrap_or(0)),
            toa: Some(raw.toa.unwrap_or(false)),
            synproxy: Some(raw.synproxy.unwrap_or(false)),
            proxy_protocol: Some(raw.proxy_protocol.unwrap_or_default()),
            inhibit_on_failure: Some(raw.has(Opt::Inhibit)),
        }),
        Cmd::Timeout => {
            let (tcp, tcpfin, udp) = timeouts.expect("parsed above");
            Action::Send(Request::SetTimeouts { tcp, tcpfin, udp })
        }
        Cmd::StartDaemon => Action::Sync(Request::SyncStart {
            role: raw.daemon_state.expect("parsed with the command"),
            interface: raw.mcast_ifn.clone(),
            syncid: raw.syncid,
        }),
        Cmd::StopDaemon => {
            Action::Sync(Request::SyncStop { role: raw.daemon_state.expect("parsed with the command") })
        }
        Cmd::CaptureStart => Action::Capture(Request::CaptureStart { capture: raw.capture.clone() }),
        Cmd::CaptureStop => Action::Capture(Request::CaptureStop),
        Cmd::CaptureStatus => Action::Capture(Request::CaptureStatus),
        Cmd::DeleteService => Action::Send(Request::DeleteService { id: id.expect("checked") }),
        Cmd::Clear => Action::Send(Request::Clear),
        Cmd::Zero => Action::Send(Request::Zero { id }),
        Cmd::AddServer | Cmd::EditServer => {
            let (_, _, vport) = raw.svc.expect("checked");
            let server = raw.server.as_deref().expect("checked");
            let forward = raw.forward.unwrap_or(defaults::FORWARD);
            let mut addr = real_addr(server, vport)?;
            // ipvsadm: with -g/-i the real server's port is the service's.
            if forward.keeps_port() {
                addr = format!("{}:{vport}", addr.rsplit_once(':').map(|x| x.0).unwrap_or(&addr));
            }
            let real = RealConfig {
                addr,
                weight: raw.weight.unwrap_or(1),
                forward,
                u_threshold: raw.u_threshold.unwrap_or(0),
                l_threshold: raw.l_threshold.unwrap_or(0),
            };
            let id = id.expect("checked");
            Action::Send(if cmd == Cmd::AddServer {
                Request::AddReal { id, real }
            } else {
                Request::EditReal { id, real }
            })
        }
        Cmd::DeleteServer => {
            let (_, _, vport) = raw.svc.expect("checked");
            let addr = real_addr(raw.server.as_deref().expect("checked"), vport)?;
            Action::Send(Request::DeleteReal { id: id.expect("checked"), addr })
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let id = id.expect("checked");
            let addr = raw.laddr.expect("checked").to_string();
            Action::Send(if cmd == Cmd::AddLaddr {
                Request::AddLaddr { id, addr }
            } else {
                Request::DeleteLaddr { id, addr }
            })
        }
        Cmd::GetLaddr => Action::GetLaddr { service: id },
        Cmd::Save => Action::Save { fmt },
        Cmd::Restore => Action::Restore,
        Cmd::List if raw.has(Opt::Ports) => {
            if let Some(o) = raw.opts.iter().find(|o| !matches!(o, Opt::Ports | Opt::Numeric)) {
                return Err(usage(format!(
                    "The option '{}' conflicts with the 'ports' option in the 'list' command",
                    o.name()
                )));
            }
            Action::ListPorts
        }
        Cmd::List => {
            // generic_opt_check's '1' column: one of connection, timeout, daemon (rvs also lists
            // the connections of one service, so service-address is not in it).
            let ones = [Opt::Connection, Opt::Timeout, Opt::Daemon];
            let given: Vec<Opt> = ones.into_iter().filter(|o| raw.has(*o)).collect();
            if given.len() > 1 {
                return Err(usage(format!(
                    "The option '{}' conflicts with the '{}' option in the 'list' command",
                    given[1].name(),
                    given[0].name()
                )));
            }
            let views = [Opt::Stats, Opt::Rate, Opt::Thresholds];
            let n_views = views.iter().filter(|o| raw.has(**o)).count();
            let special = raw.has(Opt::Timeout) || raw.has(Opt::Daemon);
            if ((raw.has(Opt::Connection) || special) && n_views > 0)
                || (special && raw.has(Opt::PersistentConn))
                || n_views > 1
                || (raw.has(Opt::PersistentConn) && n_views > 0)
            {
                return Err(usage("options conflicts in the list command"));
            }
            if special && raw.has(Opt::Service) {
                return Err(usage(format!(
                    "The option '{}' conflicts with the 'service-address' option in the 'list' command",
                    if raw.has(Opt::Timeout) { "timeout" } else { "daemon" }
                )));
            }
            if raw.has(Opt::ShowLip) && !raw.has(Opt::Connection) {
                return Err(usage("--show-lip applies to the connection list (-c) only"));
            }
            if raw.has(Opt::Timeout) {
                Action::Timeouts
            } else if raw.has(Opt::Daemon) {
                Action::ListDaemon
            } else if raw.has(Opt::Connection) {
                Action::ListConns { service: id, fmt }
            } else {
                let view = if raw.has(Opt::Stats) {
                    View::Stats
                } else if raw.has(Opt::Rate) {
                    View::Rate
                } else if raw.has(Opt::Thresholds) {
                    View::Thresholds
                } else if raw.has(Opt::PersistentConn) {
                    View::PersistConn
                } else {
                    View::Plain
                };
                Action::List { service: id, view, fmt }
            }
        }
    };
    done(action)
}

/// ipvsadm's `parse_timeout(buf, min, MAX_TIMEOUT)`.
fn parse_timeout(s: &str, min: u32) -> Result<u32, AdmError> {
    number(s, min, MAX_TIMEOUT).ok_or_else(|| usage(format!("invalid timeout value `{s}' specified")))
}

/// `-r RS[:port]` or `-r [RS6]:port`/`-r RS6`; the service's port when none is given (ipvsadm
/// copies vport to dport). As ipvsadm's `parse_service`, a bare IPv6 address has no port and a
/// bracketed one must have one.
fn real_addr(s: &str, vport: u16) -> Result<String, AdmError> {
    let bare6 = !s.starts_with('[') && s.parse::<std::net::Ipv6Addr>().is_ok();
    let full = if bare6 {
        format!("[{s}]:{vport}")
    } else if s.contains(':') {
        s.to_owned()
    } else {
        format!("{s}:{vport}")
    };
    parse_endpoint(&full)
        .map(|(ip, port)| endpoint(ip, port))
        .map_err(|e| usage(format!("illegal real server address[:port] \"{s}\": {e}")))
}
