//! `rvsadm`: ipvsadm's grammar and output, spoken over rvsd's API.
//!
//! Everything here is pure: [`parse_args`] turns a command line into an [`Invocation`], the
//! `format_*` functions turn API values into text exactly as ipvsadm 1.31 prints it, [`parse_rules`]
//! reads `-S` output back for `-R`, and [`execute`] runs an invocation against any [`Transport`]
//! (the binary's is the Unix socket; tests use a fake daemon).
//!
//! Output formats follow ipvsadm.c (`list_all`, `print_title`, `print_service_entry`,
//! `print_largenum`, `list_conn`, `print_conn`); each formatter names the printf format it follows.
//! FULLNAT extensions follow DPVS's tools/ipvsadm (`-b`, `--add-laddr -z`, `-j enable|disable`).
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ConnInfo, Counters, Request, ServiceId, ServiceInfo, ServiceStats, MAX_REQUEST_BYTES};
use crate::config::{defaults, parse_endpoint, RealConfig, ServiceConfig, MAX_WEIGHT};
use crate::SCHEDULERS;

/// Environment variable naming the daemon's socket (overridden by `--socket`).
pub const SOCKET_ENV: &str = "RVSADM_SOCKET";
/// ipvsadm's `list_all` banner; rvs reports the LVS version its behaviour follows.
pub const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)";
/// ipvsadm's default scheduler (`DEF_SCHED`).
pub const DEFAULT_SCHED: &str = "wlc";
/// `-p` without a value (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE: u32 = 300;
/// Largest persistence timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Connections fetched per `list_conns` request.
pub const CONN_PAGE: u64 = 1000;

/// What went wrong, with the exit code the binary uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmError {
    /// Bad command line or rules; nothing was sent. Exit 2, as ipvsadm's `fail(2, ...)`.
    #[error("{0}")]
    Usage(String),
    /// The daemon refused (`ok:false`) or answered something unexpected. Exit 1.
    #[error("{0}")]
    Daemon(String),
    /// Socket or stdin trouble. Exit 1.
    #[error("{0}")]
    Io(String),
    /// stdout was closed (`rvsadm -Lnc | head`): stop quietly.
    #[error("output closed")]
    Closed,
}

impl AdmError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AdmError::Usage(_) => 2,
            AdmError::Daemon(_) | AdmError::Io(_) => 1,
            AdmError::Closed => 0,
        }
    }
}

fn usage(msg: impl Into<String>) -> AdmError {
    AdmError::Usage(msg.into())
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// ipvsadm's commands (plus DPVS's laddr commands), named as ipvsadm's `cmdnames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    AddServer,
    EditServer,
    DeleteServer,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DeleteService => "delete-service",
            Cmd::Clear => "flush",
            Cmd::List => "list",
            Cmd::AddServer => "add-server",
            Cmd::EditServer => "edit-server",
            Cmd::DeleteServer => "delete-server",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
        }
    }
}

/// Options, named as ipvsadm's `optnames` for its error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Stats,
    Rate,
    Thresholds,
    Exact,
    NoSort,
    Laddr,
    Synproxy,
    Toa,
    Ifname,
    ShowLip,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::Exact => "exact",
            Opt::NoSort => "nosort",
            Opt::Laddr => "local-address",
            Opt::Synproxy => "synproxy",
            Opt::Toa => "toa",
            Opt::Ifname => "ifname",
            Opt::ShowLip => "show-lip",
        }
    }
}

/// ipvsadm's `commands_v_options` table, as (compulsory, optional) options per command; anything
/// else is illegal with the command.
fn legal(cmd: Cmd) -> (&'static [Opt], &'static [Opt]) {
    use Opt::*;
    match cmd {
        Cmd::AddService | Cmd::EditService => (&[Service], &[Scheduler, Persistent, Synproxy, Toa]),
        Cmd::DeleteService => (&[Service], &[]),
        Cmd::Clear | Cmd::Restore => (&[], &[]),
        Cmd::List => (&[], &[Numeric, Connection, Service, Stats, Rate, Thresholds, Exact, NoSort, ShowLip]),
        Cmd::AddServer | Cmd::EditServer => (&[Service, Server], &[Forward, Weight, UThreshold, LThreshold]),
        Cmd::DeleteServer => (&[Service, Server], &[]),
        Cmd::Save => (&[], &[Numeric, NoSort]),
        Cmd::Zero => (&[], &[Service]),
        Cmd::AddLaddr | Cmd::DelLaddr => (&[Service, Laddr], &[Ifname]),
        Cmd::GetLaddr => (&[], &[Service, Numeric]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    /// popt's `POPT_ARGFLAG_OPTIONAL`: the next word is taken unless it starts with `-`.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Cmd(Cmd),
    Help,
    Version,
    Tcp,
    Udp,
    Sched,
    Persist,
    Real,
    Fwd(&'static str),
    Weight,
    UThr,
    LThr,
    Numeric,
    Conn,
    Stats,
    Rate,
    Thresholds,
    Exact,
    NoSort,
    Sort,
    Laddr,
    Synproxy,
    Toa,
    Ifname,
    ShowLip,
    Socket,
    /// ipvsadm options rvs does not implement; the string says why.
    Unsupported(&'static str),
}

struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    key: Key,
}

const fn spec(long: &'static str, short: Option<char>, arg: ArgKind, key: Key) -> Spec {
    Spec { long, short, arg, key }
}

use ArgKind::{None as NoArg, Optional as OptArg, Required as ReqArg};

/// Every option: ipvsadm 1.31's table, DPVS's FULLNAT additions, then rvs's own.
const SPECS: &[Spec] = &[
    spec("add-service", Some('A'), NoArg, Key::Cmd(Cmd::AddService)),
    spec("edit-service", Some('E'), NoArg, Key::Cmd(Cmd::EditService)),
    spec("delete-service", Some('D'), NoArg, Key::Cmd(Cmd::DeleteService)),
    spec("clear", Some('C'), NoArg, Key::Cmd(Cmd::Clear)),
    spec("list", Some('L'), NoArg, Key::Cmd(Cmd::List)),
    spec("list", Some('l'), NoArg, Key::Cmd(Cmd::List)),
    spec("zero", Some('Z'), NoArg, Key::Cmd(Cmd::Zero)),
    spec("add-server", Some('a'), NoArg, Key::Cmd(Cmd::AddServer)),
    spec("edit-server", Some('e'), NoArg, Key::Cmd(Cmd::EditServer)),
    spec("delete-server", Some('d'), NoArg, Key::Cmd(Cmd::DeleteServer)),
    spec("restore", Some('R'), NoArg, Key::Cmd(Cmd::Restore)),
    spec("save", Some('S'), NoArg, Key::Cmd(Cmd::Save)),
    spec("add-laddr", Some('P'), NoArg, Key::Cmd(Cmd::AddLaddr)),
    spec("del-laddr", Some('Q'), NoArg, Key::Cmd(Cmd::DelLaddr)),
    spec("get-laddr", Some('G'), NoArg, Key::Cmd(Cmd::GetLaddr)),
    spec("help", Some('h'), NoArg, Key::Help),
    spec("version", Some('v'), NoArg, Key::Version),
    spec("tcp-service", Some('t'), ReqArg, Key::Tcp),
    spec("udp-service", Some('u'), ReqArg, Key::Udp),
    spec("scheduler", Some('s'), ReqArg, Key::Sched),
    spec("persistent", Some('p'), OptArg, Key::Persist),
    spec("real-server", Some('r'), ReqArg, Key::Real),
    spec("gatewaying", Some('g'), NoArg, Key::Fwd("route")),
    spec("ipip", Some('i'), NoArg, Key::Fwd("tunnel")),
    spec("masquerading", Some('m'), NoArg, Key::Fwd("masq")),
    spec("fullnat", Some('b'), NoArg, Key::Fwd("fullnat")),
    spec("weight", Some('w'), ReqArg, Key::Weight),
    spec("u-threshold", Some('x'), ReqArg, Key::UThr),
    spec("l-threshold", Some('y'), ReqArg, Key::LThr),
    spec("numeric", Some('n'), NoArg, Key::Numeric),
    spec("connection", Some('c'), NoArg, Key::Conn),
    spec("stats", None, NoArg, Key::Stats),
    spec("rate", None, NoArg, Key::Rate),
    spec("thresholds", None, NoArg, Key::Thresholds),
    spec("exact", Some('X'), NoArg, Key::Exact),
    spec("nosort", None, NoArg, Key::NoSort),
    spec("sort", None, NoArg, Key::Sort),
    spec("laddr", Some('z'), ReqArg, Key::Laddr),
    spec("synproxy", Some('j'), ReqArg, Key::Synproxy),
    spec("ifname", Some('F'), ReqArg, Key::Ifname),
    spec("toa", None, ReqArg, Key::Toa),
    spec("show-lip", None, NoArg, Key::ShowLip),
    spec("socket", None, ReqArg, Key::Socket),
    spec("fwmark-service", Some('f'), ReqArg, Key::Unsupported("fwmark services are not supported by rvs")),
    spec("icmp-service", Some('q'), ReqArg, Key::Unsupported("icmp services are not supported by rvs")),
    spec("netmask", Some('M'), ReqArg, Key::Unsupported("persistence netmasks are not supported by rvs")),
    spec("ops", Some('o'), NoArg, Key::Unsupported("one-packet scheduling is not supported by rvs")),
    spec("ipv6", Some('6'), NoArg, Key::Unsupported("IPv6 is not supported by rvs")),
];

/// How lists are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `--exact`: no K/M/G suffixes.
    pub exact: bool,
    /// `--nosort`: keep the daemon's order.
    pub nosort: bool,
    /// `--show-lip` (rvs): a `local` column (the FULLNAT local address) in `-Lc`.
    pub show_lip: bool,
}

/// Which columns `-L` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Plain,
    Stats,
    Rate,
    Thresholds,
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
    svc: Option<(&'static str, Ipv4Addr, u16)>,
    sched: Option<String>,
    persistence: Option<u32>,
    server: Option<String>,
    forward: Option<&'static str>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    laddr: Option<Ipv4Addr>,
    synproxy: Option<bool>,
    toa: Option<bool>,
    socket: Option<String>,
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
        self.svc.map(|(proto, ip, port)| ServiceId { proto: proto.into(), vip: format!("{ip}:{port}") })
    }
}

/// ipvsadm's `string_to_number`: a decimal in `min..=max`.
fn number(s: &str, min: u32, max: u32) -> Option<u32> {
    u32::from_str(s).ok().filter(|n| (min..=max).contains(n))
}

fn parse_service(proto: &'static str, s: &str) -> Result<(&'static str, Ipv4Addr, u16), AdmError> {
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
            raw.svc = Some(parse_service(if key == Key::Tcp { "tcp" } else { "udp" }, v)?);
        }
        Key::Sched => {
            raw.set(Opt::Scheduler)?;
            if !SCHEDULERS.contains(&v) {
                return Err(usage(format!("unknown scheduler \"{v}\" (one of {})", SCHEDULERS.join(", "))));
            }
            raw.sched = Some(v.to_owned());
        }
        Key::Persist => {
            raw.set(Opt::Persistent)?;
            raw.persistence = Some(match val {
                None => DEFAULT_PERSISTENCE,
                // 0 is an rvs extension for -E: persistence off.
                Some(s) => number(s, 0, MAX_TIMEOUT)
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
            raw.laddr = Some(
                Ipv4Addr::from_str(v)
                    .map_err(|_| usage(format!("illegal local address \"{v}\" (an IPv4 address)")))?,
            );
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
        Key::Ifname => raw.set(Opt::Ifname)?,
        Key::Socket => {
            if raw.socket.is_some() {
                return Err(usage("multiple 'socket' options specified"));
            }
            raw.socket = Some(v.to_owned());
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
                if let Some(x) = args.get(i) {
                    return Err(usage(format!("unexpected argument {x}")));
                }
                continue;
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
            return Err(usage(format!("unexpected argument {a}")));
        }
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
        // Like ipvsadm, no arguments at all lists the table (so do just -n and --socket).
        None if raw.opts.iter().all(|o| *o == Opt::Numeric) => Cmd::List,
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

    let fmt =
        Format { exact: raw.has(Opt::Exact), nosort: raw.has(Opt::NoSort), show_lip: raw.has(Opt::ShowLip) };
    let id = raw.service_id();
    let action = match cmd {
        Cmd::AddService => {
            let (proto, ip, port) = raw.svc.expect("checked");
            if raw.persistence == Some(0) {
                return Err(usage("invalid timeout value `0' specified"));
            }
            if raw.synproxy == Some(true) && proto != "tcp" {
                return Err(usage("synproxy applies to tcp services only"));
            }
            Action::Send(Request::AddService {
                service: ServiceConfig {
                    proto: proto.into(),
                    vip: format!("{ip}:{port}"),
                    sched: raw.sched.clone().unwrap_or_else(|| DEFAULT_SCHED.into()),
                    persistence: raw.persistence,
                    toa: raw.toa.unwrap_or(false),
                    synproxy: raw.synproxy.unwrap_or(false),
                    laddrs: Vec::new(),
                    reals: Vec::new(),
                    check: None,
                },
            })
        }
        Cmd::EditService => Action::Send(Request::EditService {
            id: id.expect("checked"),
            sched: raw.sched.clone(),
            persistence: raw.persistence,
            toa: raw.toa,
            synproxy: raw.synproxy,
        }),
        Cmd::DeleteService => Action::Send(Request::DeleteService { id: id.expect("checked") }),
        Cmd::Clear => Action::Send(Request::Clear),
        Cmd::Zero => Action::Send(Request::Zero { id }),
        Cmd::AddServer | Cmd::EditServer => {
            let (_, _, vport) = raw.svc.expect("checked");
            let server = raw.server.as_deref().expect("checked");
            let forward = raw.forward.unwrap_or("fullnat");
            let mut addr = real_addr(server, vport)?;
            // ipvsadm: with -g/-i the real server's port is the service's.
            if forward == "route" || forward == "tunnel" {
                addr = format!("{}:{vport}", addr.rsplit_once(':').map(|x| x.0).unwrap_or(&addr));
            }
            let real = RealConfig {
                addr,
                weight: raw.weight.unwrap_or(1),
                forward: forward.into(),
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
        Cmd::List => {
            let views = [Opt::Stats, Opt::Rate, Opt::Thresholds];
            let n_views = views.iter().filter(|o| raw.has(**o)).count();
            if (raw.has(Opt::Connection) && n_views > 0) || n_views > 1 {
                return Err(usage("options conflicts in the list command"));
            }
            if raw.has(Opt::ShowLip) && !raw.has(Opt::Connection) {
                return Err(usage("--show-lip applies to the connection list (-c) only"));
            }
            if raw.has(Opt::Connection) {
                Action::ListConns { service: id, fmt }
            } else {
                let view = if raw.has(Opt::Stats) {
                    View::Stats
                } else if raw.has(Opt::Rate) {
                    View::Rate
                } else if raw.has(Opt::Thresholds) {
                    View::Thresholds
                } else {
                    View::Plain
                };
                Action::List { service: id, view, fmt }
            }
        }
    };
    done(action)
}

/// `-r RS[:port]`; the service's port when none is given (ipvsadm copies vport to dport).
fn real_addr(s: &str, vport: u16) -> Result<String, AdmError> {
    let full = if s.contains(':') { s.to_owned() } else { format!("{s}:{vport}") };
    parse_endpoint(&full)
        .map(|(ip, port)| format!("{ip}:{port}"))
        .map_err(|e| usage(format!("illegal real server address[:port] \"{s}\": {e}")))
}

// ---------------------------------------------------------------------------------------------
// Output, as ipvsadm 1.31 prints it (always numeric)
// ---------------------------------------------------------------------------------------------

fn proto_upper(p: &str) -> String {
    p.to_ascii_uppercase()
}

fn proto_switch(p: &str) -> &'static str {
    if p == "udp" {
        "-u"
    } else {
        "-t"
    }
}

/// ipvsadm's `fwd_name` (DPVS adds `FullNat`).
pub fn fwd_name(forward: &str) -> &str {
    match forward {
        "fullnat" => "FullNat",
        "masq" => "Masq",
        "route" => "Route",
        "tunnel" => "Tunnel",
        "local" => "Local",
        other => other,
    }
}

/// ipvsadm's `fwd_switch` (DPVS adds `-b`).
pub fn fwd_switch(forward: &str) -> &'static str {
    match forward {
        "masq" => "-m",
        "route" | "local" => "-g",
        "tunnel" => "-i",
        _ => "-b",
    }
}

/// ipvsadm's `print_largenum`: `%9llu` below 100 million, else `%8llu` + K/M/G/T; with `--exact`
/// `%*llu` at width max(9, digits + 1).
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

fn truncate(mut s: String, n: usize) -> String {
    s.truncate(n);
    s
}

/// `sprintf(svc_name, "%s  %s", "TCP", vname); svc_name[33] = '\0'`.
fn svc_name(proto: &str, vip: &str) -> String {
    truncate(format!("{}  {}", proto_upper(proto), vip), 33)
}

/// `dname[28] = '\0'`.
fn dname(addr: &str) -> String {
    truncate(addr.to_owned(), 28)
}

/// Sort key of `ipvs_cmp_services` (protocol number, address, port) / `ipvs_cmp_dests`.
fn ep_key(s: &str) -> (u32, u16, String) {
    match parse_endpoint(s) {
        Ok((ip, port)) => (u32::from(ip), port, String::new()),
        Err(_) => (u32::MAX, u16::MAX, s.to_owned()),
    }
}

fn proto_num(p: &str) -> u8 {
    match p {
        "tcp" => 6,
        "udp" => 17,
        _ => 255,
    }
}

fn sorted_services<'a>(services: &'a [ServiceInfo], fmt: &Format) -> Vec<&'a ServiceInfo> {
    let mut v: Vec<&ServiceInfo> = services.iter().collect();
    if !fmt.nosort {
        v.sort_by_key(|s| (proto_num(&s.proto), ep_key(&s.vip)));
    }
    v
}

fn sorted_reals<'a>(s: &'a ServiceInfo, fmt: &Format) -> Vec<&'a crate::api::RealInfo> {
    let mut v: Vec<_> = s.reals.iter().collect();
    if !fmt.nosort {
        v.sort_by_key(|r| ep_key(&r.addr));
    }
    v
}

/// `print_title`.
pub fn format_title(view: View) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    match view {
        // "%-33s %8s %8s %8s %8s %8s\n" "  -> RemoteAddress:Port\n"
        View::Stats => format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        View::Rate => format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        // "%-33s %-10s %-10s %-10s %-10s\n" "  -> RemoteAddress:Port\n"
        View::Thresholds => format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        View::Plain => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".into(),
    }
}

fn find_stats<'a>(stats: &'a [ServiceStats], s: &ServiceInfo) -> Option<&'a ServiceStats> {
    stats.iter().find(|x| x.proto == s.proto && x.vip == s.vip)
}

fn counters5(c: &Counters, rate: bool, exact: bool) -> String {
    let v = if rate {
        [c.cps, c.inpps, c.outpps, c.inbps, c.outbps]
    } else {
        [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]
    };
    v.iter().map(|n| largenum(*n, exact)).collect()
}

/// One service and its real servers (`print_service_entry`).
pub fn format_service(s: &ServiceInfo, stats: Option<&ServiceStats>, view: View, fmt: &Format) -> String {
    let name = svc_name(&s.proto, &s.vip);
    let zero = Counters::default();
    let mut out = match view {
        // printf("%-33s", svc_name); print_largenum(...) x5
        View::Stats | View::Rate => {
            let c = stats.map(|x| &x.counters).unwrap_or(&zero);
            format!("{name:<33}{}", counters5(c, view == View::Rate, fmt.exact))
        }
        // printf("%s %s", svc_name, se->sched_name); " persistent %u"; DPVS " synproxy"; rvs " toa"
        View::Plain | View::Thresholds => {
            let mut l = format!("{name} {}", s.sched);
            if let Some(t) = s.persistence.filter(|t| *t > 0) {
                l.push_str(&format!(" persistent {t}"));
            }
            if s.synproxy {
                l.push_str(" synproxy");
            }
            if s.toa {
                l.push_str(" toa");
            }
            l
        }
    };
    out.push('\n');
    for r in sorted_reals(s, fmt) {
        let d = dname(&r.addr);
        let c = stats.and_then(|x| x.reals.iter().find(|rs| rs.addr == r.addr)).map(|rs| &rs.counters);
        let c = c.unwrap_or(&zero);
        match view {
            // printf("  -> %-28s", dname); print_largenum(...) x5; printf("\n")
            View::Stats => out.push_str(&format!("  -> {d:<28}{}\n", counters5(c, false, fmt.exact))),
            // printf("  -> %-28s %8llu %8llu %8llu", dname, cps, inpps, outpps);
            // print_largenum(inbps); print_largenum(outbps); printf("\n")
            View::Rate => out.push_str(&format!(
                "  -> {d:<28} {:>8} {:>8} {:>8}{}{}\n",
                c.cps,
                c.inpps,
                c.outpps,
                largenum(c.inbps, fmt.exact),
                largenum(c.outbps, fmt.exact)
            )),
            // "  -> %-28s %-10u %-10u %-10u %-10u\n"
            View::Thresholds => out.push_str(&format!(
                "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}\n",
                r.u_threshold, r.l_threshold, r.active_conns, r.inactive_conns
            )),
            // "  -> %-28s %-7s %-6d %-10u %-10u\n". A server its health check took out shows the
            // weight the dataplane uses, 0, as ipvsadm shows a keepalived-inhibited one; `-S`
            // keeps the configured weight.
            View::Plain => out.push_str(&format!(
                "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}\n",
                fwd_name(&r.forward),
                if r.health == "down" { 0 } else { r.weight },
                r.active_conns,
                r.inactive_conns
            )),
        }
    }
    out
}

/// `-L` of everything (`list_all`: banner, title, services sorted) or, with `one`, of one service
/// (`list_service`: title and the service, no banner).
pub fn format_list(
    services: &[ServiceInfo],
    stats: Option<&[ServiceStats]>,
    view: View,
    fmt: &Format,
    one: bool,
) -> String {
    let mut out = String::new();
    if !one {
        // "IP Virtual Server version %d.%d.%d (size=%d)\n"
        out.push_str(VERSION_LINE);
        out.push('\n');
    }
    out.push_str(&format_title(view));
    for s in sorted_services(services, fmt) {
        out.push_str(&format_service(s, stats.and_then(|st| find_stats(st, s)), view, fmt));
    }
    out
}

/// `list_conn`'s two title lines: "IPVS connection entries\n" and
/// "pro expire %-11s %-18s %-18s %s\n" (with `--show-lip`, a `%-18s` `local` column before
/// `destination`).
pub fn format_conn_title(fmt: &Format) -> String {
    if fmt.show_lip {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "local", "destination"
        )
    } else {
        format!(
            "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        )
    }
}

/// `print_conn`: expire is `"%02d:%02d"` (minutes, seconds), the line
/// `"%-3s %-6s %-11s %-18s %-18s %s\n"` (protocol, expire, state, source, virtual, destination).
pub fn format_conn(c: &ConnInfo, fmt: &Format) -> String {
    let secs = c.expires_ms / 1000;
    let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
    let proto = proto_upper(&c.proto);
    if fmt.show_lip {
        format!(
            "{proto:<3} {expire:<6} {:<11} {:<18} {:<18} {:<18} {}\n",
            c.state, c.client, c.vip, c.lip, c.rs
        )
    } else {
        format!("{proto:<3} {expire:<6} {:<11} {:<18} {:<18} {}\n", c.state, c.client, c.vip, c.rs)
    }
}

/// `-Lc`: title and every connection, in the daemon's order (ipvsadm does not sort them).
pub fn format_conns(conns: &[ConnInfo], fmt: &Format) -> String {
    let mut out = format_conn_title(fmt);
    for c in conns {
        out.push_str(&format_conn(c, fmt));
    }
    out
}

/// `-S` (`list_all(FMT_RULE)`): per service `"-A %s -s %s"` + `" -p %u"`, then (rvs) one
/// `--add-laddr -t VIP -z LIP` per local address, then per real server `"-a %s -r %s %s -w %d\n"`.
/// rvs appends ` -j enable` (DPVS's switch), ` --toa on`, ` -x N`, ` -y N` when set, so that
/// `-S | -R` round-trips.
pub fn format_rules(services: &[ServiceInfo], fmt: &Format) -> String {
    let mut out = String::new();
    for s in sorted_services(services, fmt) {
        let name = format!("{} {}", proto_switch(&s.proto), s.vip);
        out.push_str(&format!("-A {name} -s {}", s.sched));
        if let Some(t) = s.persistence.filter(|t| *t > 0) {
            out.push_str(&format!(" -p {t}"));
        }
        if s.synproxy {
            out.push_str(" -j enable");
        }
        if s.toa {
            out.push_str(" --toa on");
        }
        out.push('\n');
        for l in &s.laddrs {
            out.push_str(&format!("--add-laddr {name} -z {l}\n"));
        }
        for r in sorted_reals(s, fmt) {
            out.push_str(&format!("-a {name} -r {} {} -w {}", r.addr, fwd_switch(&r.forward), r.weight));
            if r.u_threshold > 0 {
                out.push_str(&format!(" -x {}", r.u_threshold));
            }
            if r.l_threshold > 0 {
                out.push_str(&format!(" -y {}", r.l_threshold));
            }
            out.push('\n');
        }
    }
    out
}

/// `--get-laddr` title, DPVS's `list_laddrs_print_title` without the per-address counters rvs does
/// not report: `"%-20s %-8s %-20s\n"`.
pub fn format_laddr_title() -> String {
    format!("{:<20} {:<8} {:<20}\n", "VIP:VPORT", "TOTAL", "SNAT_IP")
}

/// One service's local addresses: DPVS's `"%-20s %-8u \n"` for the service, then `"%-20s %-8s %-20s\n"`
/// per address.
pub fn format_laddrs(vip: &str, laddrs: &[String]) -> String {
    let mut out = format!("{vip:<20} {:<8} \n", laddrs.len());
    for l in laddrs {
        out.push_str(&format!("{:<20} {:<8} {l:<20}\n", "", ""));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// -R: rules back into services
// ---------------------------------------------------------------------------------------------

/// Reads `-S` output (or any ipvsadm rules file restricted to `-A`, `-a`, `--add-laddr` and `-C`)
/// into services, in order. Blank lines and `#` comments are skipped; a leading `ipvsadm`/`rvsadm`
/// word is ignored. Errors name the line.
pub fn parse_rules(text: &str) -> Result<Vec<ServiceConfig>, AdmError> {
    let mut services: Vec<ServiceConfig> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_err = |m: &dyn std::fmt::Display| usage(format!("line {}: {m}", n + 1));
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        if matches!(words[0], "ipvsadm" | "rvsadm") || words[0].ends_with("/ipvsadm") {
            words.remove(0);
        }
        let inv = parse_args(&words, None).map_err(|e| line_err(&e))?;
        let find = |services: &[ServiceConfig], id: &ServiceId| -> Option<usize> {
            services.iter().position(|s| s.proto == id.proto && s.vip == id.vip)
        };
        match inv.action {
            Action::Send(Request::AddService { service }) => {
                let id = ServiceId { proto: service.proto.clone(), vip: service.vip.clone() };
                if find(&services, &id).is_some() {
                    return Err(line_err(&format!("service {} {} is defined twice", id.proto, id.vip)));
                }
                services.push(service);
            }
            Action::Send(Request::AddReal { id, real }) => {
                let i = find(&services, &id).ok_or_else(|| {
                    line_err(&format!("service {} {} is not defined by an earlier -A", id.proto, id.vip))
                })?;
                if services[i].reals.iter().any(|r| r.addr == real.addr) {
                    return Err(line_err(&format!("real server {} is listed twice", real.addr)));
                }
                services[i].reals.push(real);
            }
            Action::Send(Request::AddLaddr { id, addr }) => {
                let i = find(&services, &id).ok_or_else(|| {
                    line_err(&format!("service {} {} is not defined by an earlier -A", id.proto, id.vip))
                })?;
                if services[i].laddrs.contains(&addr) {
                    return Err(line_err(&format!("local address {addr} is listed twice")));
                }
                services[i].laddrs.push(addr);
            }
            Action::Send(Request::Clear) => services.clear(),
            _ => {
                return Err(line_err(&"only -A, -a, --add-laddr and -C can be restored"));
            }
        }
    }
    Ok(services)
}

#[derive(Serialize, Deserialize)]
struct ServicesOnly {
    services: Vec<ServiceConfig>,
}

/// The `restore` request's `config`: TOML holding only `[[services]]`.
pub fn restore_toml(services: &[ServiceConfig]) -> Result<String, AdmError> {
    toml::to_string(&ServicesOnly { services: services.to_vec() })
        .map_err(|e| AdmError::Usage(format!("cannot encode rules as TOML: {e}")))
}

/// Reads a `restore_toml` document back (tests and tools).
pub fn services_from_toml(text: &str) -> Result<Vec<ServiceConfig>, String> {
    toml::from_str::<ServicesOnly>(text).map(|s| s.services).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Running an invocation
// ---------------------------------------------------------------------------------------------

/// Sends one request and returns the raw response object (`{"ok":..., ...}`).
pub trait Transport {
    fn call(&mut self, req: &Request) -> Result<Value, AdmError>;
}

fn call_ok<T: Transport + ?Sized>(t: &mut T, req: &Request) -> Result<Value, AdmError> {
    let v = t.call(req)?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(v),
        Some(false) => Err(AdmError::Daemon(
            v.get("error").and_then(Value::as_str).unwrap_or("request failed").to_owned(),
        )),
        None => Err(AdmError::Daemon("unexpected reply from rvsd: no \"ok\"".into())),
    }
}

fn field<T: DeserializeOwned>(v: &Value, key: &str) -> Result<T, AdmError> {
    let f =
        v.get(key).ok_or_else(|| AdmError::Daemon(format!("unexpected reply from rvsd: no \"{key}\"")))?;
    T::deserialize(f).map_err(|e| AdmError::Daemon(format!("unexpected reply from rvsd: \"{key}\": {e}")))
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<(), AdmError> {
    out.write_all(s.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            AdmError::Closed
        } else {
            AdmError::Io(format!("cannot write output: {e}"))
        }
    })
}

fn list_services<T: Transport + ?Sized>(t: &mut T) -> Result<Vec<ServiceInfo>, AdmError> {
    field(&call_ok(t, &Request::ListServices)?, "services")
}

fn no_such_service(id: &ServiceId) -> AdmError {
    AdmError::Daemon(format!("No such service: {} {}", id.proto, id.vip))
}

/// Runs `inv`: sends its requests through `t`, reads rules from `input` for `-R`, prints to `out`.
pub fn execute<T: Transport + ?Sized>(
    inv: &Invocation,
    t: &mut T,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), AdmError> {
    match &inv.action {
        Action::Help => write_out(out, &help_text()),
        Action::Version => {
            write_out(out, &format!("rvsadm v{} (ipvsadm-compatible)\n", env!("CARGO_PKG_VERSION")))
        }
        Action::Send(req) => call_ok(t, req).map(|_| ()),
        Action::List { service, view, fmt } => {
            let mut services = list_services(t)?;
            if let Some(id) = service {
                services.retain(|s| s.proto == id.proto && s.vip == id.vip);
                if services.is_empty() {
                    return Err(no_such_service(id));
                }
            }
            let stats: Option<Vec<ServiceStats>> = match view {
                View::Stats | View::Rate => Some(field(&call_ok(t, &Request::ServiceStats)?, "services")?),
                _ => None,
            };
            write_out(out, &format_list(&services, stats.as_deref(), *view, fmt, service.is_some()))
        }
        Action::ListConns { service, fmt } => {
            write_out(out, &format_conn_title(fmt))?;
            let mut offset = 0u64;
            loop {
                let req = Request::ListConns { id: service.clone(), offset, limit: Some(CONN_PAGE) };
                let v = call_ok(t, &req)?;
                let total: u64 = field(&v, "total")?;
                let conns: Vec<ConnInfo> = field(&v, "conns")?;
                let mut page = String::new();
                for c in &conns {
                    page.push_str(&format_conn(c, fmt));
                }
                write_out(out, &page)?;
                offset += conns.len() as u64;
                if conns.is_empty() || offset >= total {
                    return Ok(());
                }
            }
        }
        Action::Save { fmt } => {
            let services = list_services(t)?;
            write_out(out, &format_rules(&services, fmt))
        }
        Action::Restore => {
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| AdmError::Io(format!("cannot read rules: {e}")))?;
            let mut services = parse_rules(&text)?;
            // ipvsadm's rule syntax has no health checks: a restored service keeps the check its
            // running namesake has, so `-S | -R` does not silently drop them.
            let saved: String = field(&call_ok(t, &Request::Save)?, "config")?;
            if let Ok(running) = crate::config::Config::from_toml(&saved) {
                for s in services.iter_mut().filter(|s| s.check.is_none()) {
                    s.check = running
                        .services
                        .iter()
                        .find(|r| r.proto == s.proto && r.vip == s.vip)
                        .and_then(|r| r.check.clone());
                }
            }
            let req = Request::Restore { config: restore_toml(&services)? };
            let len = serde_json::to_string(&req).map(|s| s.len()).unwrap_or(0);
            if len >= MAX_REQUEST_BYTES {
                return Err(usage(format!(
                    "the rules make a {len}-byte request; rvsd accepts at most {MAX_REQUEST_BYTES}"
                )));
            }
            call_ok(t, &req).map(|_| ())
        }
        Action::GetLaddr { service: Some(id) } => {
            let laddrs: Vec<String> = field(&call_ok(t, &Request::ListLaddrs { id: id.clone() })?, "laddrs")?;
            write_out(out, &(format_laddr_title() + &format_laddrs(&id.vip, &laddrs)))
        }
        Action::GetLaddr { service: None } => {
            let services = list_services(t)?;
            let mut text = String::new();
            for (i, s) in sorted_services(&services, &Format::default()).into_iter().enumerate() {
                if i == 0 {
                    text.push_str(&format_laddr_title());
                }
                text.push_str(&format_laddrs(&s.vip, &s.laddrs));
            }
            write_out(out, &text)
        }
    }
}

/// `--help`, in ipvsadm's layout, with rvs's differences.
pub fn help_text() -> String {
    format!(
        "rvsadm v{ver} - ipvsadm for rvs (DPDK FULLNAT load balancer)
Usage:
  rvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-j enable|disable] [--toa on|off]
  rvsadm -D -t|u service-address
  rvsadm -C
  rvsadm -R
  rvsadm -S [-n]
  rvsadm -a|e -t|u service-address -r server-address [options]
  rvsadm -d -t|u service-address -r server-address
  rvsadm -P|Q -t|u service-address -z local-address
  rvsadm -G [-t|u service-address]
  rvsadm -L|l [options]
  rvsadm -Z [-t|u service-address]
  rvsadm -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (atomically, as one request)
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --add-laddr       -P        add local address
  --del-laddr       -Q        del local address
  --get-laddr       -G        get local address
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is IPv4:port
  --udp-service  -u service-address   service-address is IPv4:port
  --scheduler    -s scheduler         one of {scheds},
                                      the default scheduler is {sched}.
  --persistent   -p [timeout]         persistent service (default timeout {pers}; with -E, 0 turns it off)
  --real-server  -r server-address    server-address is IPv4[:port] (default port: the service's)
  --fullnat      -b                   fullnat (default; the only method rvs forwards)
  --gatewaying   -g                   gatewaying (direct routing); refused by rvsd
  --ipip         -i                   ipip encapsulation (tunneling); refused by rvsd
  --masquerading -m                   masquerading (NAT); refused by rvsd
  --weight       -w weight            capacity of real server (0..={maxw}, default 1)
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     FULLNAT local (source) address
  --ifname       -F ifname            accepted for DPVS compatibility and ignored
  --synproxy     -j enable|disable    TCP syn proxy
  --toa          on|off               insert the client address as TCP option (TOA)
  --connection   -c                   output of current connections
  --show-lip                          with -c: also print the local address:port
  --stats                             output of statistics information
  --rate                              output of rate information
  --thresholds                        output of thresholds information
  --exact        -X                   expand numbers (display exact values)
  --nosort                            disable sorting output of service/server entries
  --numeric      -n                   numeric output (rvsadm always prints numerically)
  --socket PATH                       rvsd's API socket (default ${env}, else {sock})

Differences from ipvsadm: the default forwarding method is fullnat (-b), not gatewaying (-g);
-E changes only the options given (as DPVS's ipvsadm); -e without -w sets weight 1 (as ipvsadm);
output is always numeric; IPv4 only; no fwmark, netmask, one-packet or sync-daemon options.
",
        ver = env!("CARGO_PKG_VERSION"),
        scheds = SCHEDULERS.join(","),
        sched = DEFAULT_SCHED,
        pers = DEFAULT_PERSISTENCE,
        maxw = MAX_WEIGHT,
        env = SOCKET_ENV,
        sock = defaults::SOCKET,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RealInfo, Reply, Response};

    fn parse(line: &str) -> Result<Invocation, AdmError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse_args(&words, None)
    }

    fn action(line: &str) -> Action {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}")).action
    }

    fn send(line: &str) -> Request {
        match action(line) {
            Action::Send(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn id(proto: &str, vip: &str) -> ServiceId {
        ServiceId { proto: proto.into(), vip: vip.into() }
    }

    fn usage_err(line: &str) -> String {
        match parse(line) {
            Err(AdmError::Usage(m)) => {
                assert!(!m.contains('\n'), "{line}: multi-line error {m:?}");
                m
            }
            other => panic!("{line}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn add_and_edit_service() {
        let want = ServiceConfig {
            proto: "tcp".into(),
            vip: "198.18.0.100:80".into(),
            sched: "rr".into(),
            persistence: Some(300),
            toa: false,
            synproxy: false,
            laddrs: vec![],
            reals: vec![],
            check: None,
        };
        for line in [
            "-A -t 198.18.0.100:80 -s rr -p",
            "-A -t 198.18.0.100:80 -s rr -p 300",
            "--add-service --tcp-service 198.18.0.100:80 --scheduler rr --persistent",
            "--add-service --tcp-service=198.18.0.100:80 --scheduler=rr --persistent=300",
            "-At 198.18.0.100:80 -srr -p300",
            "-A -p -t 198.18.0.100:80 -s rr",
        ] {
            assert_eq!(send(line), Request::AddService { service: want.clone() }, "{line}");
        }
        // defaults: wlc, no persistence; udp; switches
        match send("-A -u 198.18.0.100:53") {
            Request::AddService { service } => {
                assert_eq!((service.proto.as_str(), service.sched.as_str()), ("udp", "wlc"));
                assert_eq!(service.persistence, None);
            }
            r => panic!("{r:?}"),
        }
        match send("-A -t 198.18.0.100:80 -j enable --toa on") {
            Request::AddService { service } => assert!(service.synproxy && service.toa),
            r => panic!("{r:?}"),
        }
        assert_eq!(
            send("-E -t 198.18.0.100:80 -s wrr"),
            Request::EditService {
                id: id("tcp", "198.18.0.100:80"),
                sched: Some("wrr".into()),
                persistence: None,
                toa: None,
                synproxy: None
            }
        );
        assert_eq!(
            send("--edit-service -t 198.18.0.100:80 -p 0 --synproxy disable --toa off"),
            Request::EditService {
                id: id("tcp", "198.18.0.100:80"),
                sched: None,
                persistence: Some(0),
                toa: Some(false),
                synproxy: Some(false)
            }
        );
        assert_eq!(
            send("-D -t 198.18.0.100:80"),
            Request::DeleteService { id: id("tcp", "198.18.0.100:80") }
        );
        assert_eq!(
            send("--delete-service -u 198.18.0.100:53"),
            Request::DeleteService { id: id("udp", "198.18.0.100:53") }
        );
        assert_eq!(send("-C"), Request::Clear);
        assert_eq!(send("--clear"), Request::Clear);
    }

    #[test]
    fn real_servers() {
        let real = |addr: &str, weight, forward: &str, u, l| RealConfig {
            addr: addr.into(),
            weight,
            forward: forward.into(),
            u_threshold: u,
            l_threshold: l,
        };
        let vip = id("tcp", "198.18.0.100:80");
        assert_eq!(
            send("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -w 3"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:8080", 3, "fullnat", 0, 0) }
        );
        // no port: the service's; default weight 1; -b explicit
        assert_eq!(
            send("-a -t 198.18.0.100:80 -r 198.18.1.11 -b"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "fullnat", 0, 0) }
        );
        assert_eq!(
            send("--add-server --tcp-service 198.18.0.100:80 --real-server 198.18.1.11:80 --fullnat --weight 0 --u-threshold 100 --l-threshold 10"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 0, "fullnat", 100, 10) }
        );
        // -g/-i/-m are sent as such (rvsd refuses them); -g/-i force the service port
        assert_eq!(
            send("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -g"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "route", 0, 0) }
        );
        assert_eq!(
            send("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 --ipip"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "tunnel", 0, 0) }
        );
        assert_eq!(
            send("-a -t 198.18.0.100:80 -r 198.18.1.11:8080 -m"),
            Request::AddReal { id: vip.clone(), real: real("198.18.1.11:8080", 1, "masq", 0, 0) }
        );
        assert_eq!(
            send("-e -t 198.18.0.100:80 -r 198.18.1.11:80 -w 7 -x 5"),
            Request::EditReal { id: vip.clone(), real: real("198.18.1.11:80", 7, "fullnat", 5, 0) }
        );
        assert_eq!(
            send("--edit-server -t 198.18.0.100:80 -r 198.18.1.11:80"),
            Request::EditReal { id: vip.clone(), real: real("198.18.1.11:80", 1, "fullnat", 0, 0) }
        );
        assert_eq!(
            send("-d -t 198.18.0.100:80 -r 198.18.1.11"),
            Request::DeleteReal { id: vip.clone(), addr: "198.18.1.11:80".into() }
        );
        assert_eq!(
            send("--delete-server -u 198.18.0.100:53 -r 198.18.1.21:53"),
            Request::DeleteReal { id: id("udp", "198.18.0.100:53"), addr: "198.18.1.21:53".into() }
        );
    }

    #[test]
    fn laddrs_and_zero() {
        let vip = id("tcp", "198.18.0.100:80");
        for line in [
            "--add-laddr -t 198.18.0.100:80 -z 198.18.1.100",
            "-P -t 198.18.0.100:80 --laddr 198.18.1.100",
            "-P -t 198.18.0.100:80 -z 198.18.1.100 -F dpdk1",
        ] {
            assert_eq!(
                send(line),
                Request::AddLaddr { id: vip.clone(), addr: "198.18.1.100".into() },
                "{line}"
            );
        }
        assert_eq!(
            send("--del-laddr -t 198.18.0.100:80 -z 198.18.1.100"),
            Request::DeleteLaddr { id: vip.clone(), addr: "198.18.1.100".into() }
        );
        assert_eq!(action("--get-laddr"), Action::GetLaddr { service: None });
        assert_eq!(action("-G -t 198.18.0.100:80"), Action::GetLaddr { service: Some(vip.clone()) });
        assert_eq!(send("-Z"), Request::Zero { id: None });
        assert_eq!(send("--zero -t 198.18.0.100:80"), Request::Zero { id: Some(vip) });
    }

    #[test]
    fn list_forms() {
        let plain = Action::List { service: None, view: View::Plain, fmt: Format::default() };
        for line in ["", "-n", "-L", "-l", "-Ln", "-L -n", "--list --numeric", "-nL", "-L --sort"] {
            assert_eq!(action(line), plain, "{line:?}");
        }
        let stats = Action::List { service: None, view: View::Stats, fmt: Format::default() };
        assert_eq!(action("-Ln --stats"), stats);
        assert_eq!(action("-L --stats -n"), stats);
        assert_eq!(
            action("-Ln --rate"),
            Action::List { service: None, view: View::Rate, fmt: Format::default() }
        );
        let exact = Format { exact: true, ..Format::default() };
        assert_eq!(
            action("-Ln --exact --stats"),
            Action::List { service: None, view: View::Stats, fmt: exact }
        );
        assert_eq!(action("-LnX --stats"), Action::List { service: None, view: View::Stats, fmt: exact });
        assert_eq!(
            action("-Ln --thresholds --nosort"),
            Action::List {
                service: None,
                view: View::Thresholds,
                fmt: Format { nosort: true, ..Format::default() }
            }
        );
        let one = Some(id("tcp", "198.18.0.100:80"));
        assert_eq!(
            action("-L -n -t 198.18.0.100:80"),
            Action::List { service: one.clone(), view: View::Plain, fmt: Format::default() }
        );
        assert_eq!(
            action("-Lnt 198.18.0.100:80"),
            Action::List { service: one.clone(), view: View::Plain, fmt: Format::default() }
        );
        let conns = Action::ListConns { service: None, fmt: Format::default() };
        for line in ["-Lnc", "-Lcn", "-L -n -c", "-lnc", "--list --numeric --connection", "-c -L"] {
            assert_eq!(action(line), conns, "{line}");
        }
        assert_eq!(
            action("-Lnc --show-lip -t 198.18.0.100:80"),
            Action::ListConns { service: one, fmt: Format { show_lip: true, ..Format::default() } }
        );
        assert_eq!(action("-S"), Action::Save { fmt: Format::default() });
        assert_eq!(action("--save -n"), Action::Save { fmt: Format::default() });
        assert_eq!(action("-Sn"), Action::Save { fmt: Format::default() });
        assert_eq!(action("-R"), Action::Restore);
        assert_eq!(action("--restore"), Action::Restore);
        assert_eq!(action("-h"), Action::Help);
        assert_eq!(action("--help"), Action::Help);
        assert_eq!(action("-v"), Action::Version);
    }

    #[test]
    fn socket_path() {
        assert_eq!(parse("-Ln").unwrap().socket, defaults::SOCKET);
        assert_eq!(parse_args(&["-Ln"], Some("/tmp/a.sock")).unwrap().socket, "/tmp/a.sock");
        assert_eq!(parse_args(&["-Ln"], Some("")).unwrap().socket, defaults::SOCKET);
        assert_eq!(
            parse_args(&["-Ln", "--socket", "/tmp/b.sock"], Some("/tmp/a.sock")).unwrap().socket,
            "/tmp/b.sock"
        );
        assert_eq!(parse_args(&["--socket=/tmp/b.sock"], None).unwrap().socket, "/tmp/b.sock");
        assert!(matches!(parse_args(&["--socket=/tmp/b.sock"], None).unwrap().action, Action::List { .. }));
    }

    #[test]
    fn bad_input_is_one_line_before_anything_is_sent() {
        let cases = [
            ("-K", "unknown option -K"),
            ("-Lk", "unknown option -k"),
            ("--bogus", "unknown option --bogus"),
            ("-A", "You need to supply the 'service-address' option for the 'add-service' command"),
            ("-D", "'service-address'"),
            ("-a -r 198.18.1.11:80", "'service-address'"),
            (
                "-a -t 198.18.0.100:80",
                "You need to supply the 'real-server' option for the 'add-server' command",
            ),
            ("-e -t 198.18.0.100:80 -w 2", "'real-server'"),
            ("-d -t 198.18.0.100:80", "'real-server'"),
            ("--add-laddr -t 198.18.0.100:80", "'local-address'"),
            ("-A -t 300.1.1.1:80", "\"300.1.1.1\" is not an IPv4 address"),
            ("-A -t 1.2.3.4:0", "bad port \"0\""),
            ("-A -t 1.2.3.4:99999", "bad port \"99999\""),
            ("-A -t 1.2.3.4", "is not ADDRESS:PORT"),
            ("-A -t host.example:80", "is not an IPv4 address"),
            ("-a -t 1.2.3.4:80 -r 300.1.1.1:80", "illegal real server"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1:0", "illegal real server"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1:65536", "illegal real server"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w 65536", "illegal weight specified"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w -1", "illegal weight specified"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -w x", "illegal weight specified"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -x -3", "illegal u_threshold"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -y 1e3", "illegal l_threshold"),
            ("-A -t 1.2.3.4:80 -s xyz", "unknown scheduler \"xyz\""),
            ("-A -t 1.2.3.4:80 -s WRR", "unknown scheduler"),
            ("-A -t 1.2.3.4:80 -p 0", "invalid timeout value `0'"),
            ("-A -t 1.2.3.4:80 -p 99999999", "invalid timeout value"),
            ("-A -t 1.2.3.4:80 -j yes", "synproxy switch must be enable or disable"),
            ("-A -u 1.2.3.4:53 -j enable", "tcp services only"),
            ("-A -t 1.2.3.4:80 --toa maybe", "--toa must be on or off"),
            ("-P -t 1.2.3.4:80 -z 1.2.3", "illegal local address"),
            ("-A -D -t 1.2.3.4:80", "multiple commands specified"),
            ("-L -S", "multiple commands specified"),
            ("-Ln -a -t 1.2.3.4:80 -r 1.1.1.1", "multiple commands specified"),
            ("-A -t 1.2.3.4:80 -u 1.2.3.4:53", "multiple 'service-address' options specified"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -b -m", "multiple 'forwarding-method' options specified"),
            ("-A -t 1.2.3.4:80 -w 3", "Illegal 'weight' option with the 'add-service' command"),
            ("-a -t 1.2.3.4:80 -r 1.1.1.1 -s rr", "Illegal 'scheduler' option with the 'add-server' command"),
            ("-D -t 1.2.3.4:80 -s rr", "Illegal 'scheduler'"),
            ("-C -t 1.2.3.4:80", "Illegal 'service-address' option with the 'flush' command"),
            ("-S --stats", "Illegal 'stats' option with the 'save' command"),
            ("-Z -r 1.1.1.1", "Illegal 'real-server'"),
            ("-Lnc --stats", "options conflicts in the list command"),
            ("-Ln --stats --rate", "options conflicts in the list command"),
            ("-Ln --show-lip", "-c"),
            ("-t 1.2.3.4:80", "no command specified"),
            ("-L extra", "unexpected argument extra"),
            ("-L -- extra", "unexpected argument extra"),
            ("-A -t", "option -t needs a value"),
            ("--list=yes", "takes no value"),
            ("-A -f 1", "fwmark services are not supported"),
            ("-A -t 1.2.3.4:80 -M 255.255.255.0", "netmasks are not supported"),
        ];
        for (line, want) in cases {
            let got = usage_err(line);
            assert!(got.contains(want), "{line}: {got:?} lacks {want:?}");
        }
        assert_eq!(AdmError::Usage("x".into()).exit_code(), 2);
        assert_eq!(AdmError::Daemon("x".into()).exit_code(), 1);
        assert_eq!(AdmError::Io("x".into()).exit_code(), 1);
    }

    #[test]
    fn largenum_matches_print_largenum() {
        assert_eq!(largenum(0, false), "        0");
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999, false), "  999999K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(99_999_999_999, false), "   99999M");
        assert_eq!(largenum(100_000_000_000, false), "     100G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(u64::MAX, false), "18446744T");
        assert_eq!(largenum(12345678, true), " 12345678");
        assert_eq!(largenum(123456789, true), " 123456789");
        assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn long_names_are_cut_as_ipvsadm_cuts_them() {
        assert_eq!(svc_name("tcp", "1.2.3.4:80"), "TCP  1.2.3.4:80");
        assert_eq!(svc_name("udp", &"x".repeat(40)).len(), 33);
        assert_eq!(dname(&"y".repeat(40)).len(), 28);
    }

    #[test]
    fn rules_parse_errors_name_the_line() {
        let text = "# saved\n\n-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 1.1.1.1:80 -b -w 1\n-a -t 1.2.3.5:80 -r 1.1.1.1:80\n";
        let e = parse_rules(text).unwrap_err().to_string();
        assert!(e.starts_with("line 5: ") && e.contains("not defined"), "{e}");
        let e = parse_rules("-A -t 1.2.3.4:80\n-A -t 1.2.3.4:80\n").unwrap_err().to_string();
        assert!(e.starts_with("line 2: ") && e.contains("twice"), "{e}");
        let e = parse_rules("-A -t 1.2.3.4:80\n-D -t 1.2.3.4:80\n").unwrap_err().to_string();
        assert!(e.contains("line 2: only -A, -a, --add-laddr and -C"), "{e}");
        let e = parse_rules("-A -t 1.2.3.4:80 -s bogus\n").unwrap_err().to_string();
        assert!(e.starts_with("line 1: unknown scheduler"), "{e}");
        // ipvsadm-save style with a program name, -C, -g kept as route (rvsd decides)
        let s = parse_rules(
            "ipvsadm -C\nipvsadm -A -t 1.2.3.4:80 -s wlc\nipvsadm -a -t 1.2.3.4:80 -r 1.1.1.1:80 -g -w 1\n",
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].reals[0].forward, "route");
        // -C drops what came before
        assert!(parse_rules("-A -t 1.2.3.4:80\n-C\n").unwrap().is_empty());
        assert_eq!(restore_toml(&[]).unwrap().trim(), "services = []");
    }

    /// A fake rvsd: answers from a closure and records every request.
    struct Fake<F: FnMut(&Request) -> Response> {
        sent: Vec<Request>,
        answer: F,
    }

    impl<F: FnMut(&Request) -> Response> Transport for Fake<F> {
        fn call(&mut self, req: &Request) -> Result<Value, AdmError> {
            self.sent.push(req.clone());
            Ok(serde_json::from_str(&(self.answer)(req).to_line()).unwrap())
        }
    }

    fn run<F: FnMut(&Request) -> Response>(
        line: &str,
        stdin: &str,
        answer: F,
    ) -> (Result<String, AdmError>, Vec<Request>) {
        let inv = parse(line).unwrap();
        let mut fake = Fake { sent: vec![], answer };
        let mut out = Vec::new();
        let r = execute(&inv, &mut fake, &mut stdin.as_bytes(), &mut out);
        (r.map(|_| String::from_utf8(out).unwrap()), fake.sent)
    }

    fn svc(proto: &str, vip: &str) -> ServiceInfo {
        ServiceInfo {
            proto: proto.into(),
            vip: vip.into(),
            sched: "wlc".into(),
            persistence: None,
            toa: false,
            synproxy: false,
            laddrs: vec!["10.0.0.9".into()],
            reals: vec![RealInfo {
                addr: "10.0.1.1:80".into(),
                weight: 1,
                forward: "fullnat".into(),
                u_threshold: 0,
                l_threshold: 0,
                active_conns: 0,
                inactive_conns: 0,
                health: "up".into(),
            }],
        }
    }

    #[test]
    fn changes_send_one_request_and_print_nothing() {
        let (out, sent) = run("-A -t 1.2.3.4:80 -s rr", "", |_| Response::ok(Reply::Applied { epoch: 1 }));
        assert_eq!(out.unwrap(), "");
        assert_eq!(sent.len(), 1);
        let (out, _) = run("-D -t 1.2.3.4:80", "", |_| Response::error("no such service tcp 1.2.3.4:80"));
        assert_eq!(out.unwrap_err(), AdmError::Daemon("no such service tcp 1.2.3.4:80".into()));
    }

    #[test]
    fn conns_are_fetched_in_pages() {
        let total = 2500u64;
        let (out, sent) = run("-Lnc", "", |req| match req {
            Request::ListConns { offset, limit, .. } => {
                let n = (total - offset).min(limit.unwrap());
                let conns = (0..n)
                    .map(|i| ConnInfo {
                        proto: "tcp".into(),
                        client: format!("10.9.{}.{}:1000", (offset + i) / 256, (offset + i) % 256),
                        vip: "1.2.3.4:80".into(),
                        lip: "10.0.0.9:5000".into(),
                        rs: "10.0.1.1:80".into(),
                        state: "ESTABLISHED".into(),
                        expires_ms: 1000,
                        worker: 0,
                    })
                    .collect();
                Response::ok(Reply::Conns { total, conns })
            }
            _ => Response::error("unexpected"),
        });
        let out = out.unwrap();
        assert_eq!(out.lines().count(), 2 + total as usize);
        let offsets: Vec<u64> = sent
            .iter()
            .map(|r| match r {
                Request::ListConns { offset, limit: Some(1000), id: None } => *offset,
                r => panic!("{r:?}"),
            })
            .collect();
        assert_eq!(offsets, [0, 1000, 2000]);
        // an empty table is one request
        let (out, sent) = run("-Lnc", "", |_| Response::ok(Reply::Conns { total: 0, conns: vec![] }));
        assert_eq!(out.unwrap().lines().count(), 2);
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn stats_use_service_stats_and_list_services() {
        let (out, sent) = run("-Ln --stats", "", |req| match req {
            Request::ListServices => {
                Response::ok(Reply::Services { services: vec![svc("tcp", "1.2.3.4:80")] })
            }
            // an empty list is what an untagged `services: []` looks like either way
            Request::ServiceStats => Response::ok(Reply::ServiceStats { services: vec![] }),
            _ => Response::error("unexpected"),
        });
        assert_eq!(sent, [Request::ListServices, Request::ServiceStats]);
        let out = out.unwrap();
        let zeros = "        0".repeat(5);
        assert!(out.contains(&format!("{:<33}{zeros}\n", "TCP  1.2.3.4:80")), "{out}");
    }

    #[test]
    fn list_one_service_or_say_it_is_missing() {
        let answer = |_: &Request| {
            Response::ok(Reply::Services {
                services: vec![svc("tcp", "1.2.3.4:80"), svc("udp", "1.2.3.4:53")],
            })
        };
        let (out, _) = run("-Ln -u 1.2.3.4:53", "", answer);
        let out = out.unwrap();
        assert!(
            out.starts_with("Prot LocalAddress:Port")
                && out.contains("UDP  1.2.3.4:53 wlc")
                && !out.contains("TCP")
        );
        let (out, _) = run("-Ln -t 9.9.9.9:80", "", answer);
        assert!(matches!(out, Err(AdmError::Daemon(m)) if m.contains("No such service")));
    }

    #[test]
    fn restore_sends_one_atomic_request() {
        let rules = "-A -t 1.2.3.4:80 -s rr\n--add-laddr -t 1.2.3.4:80 -z 10.0.0.9\n-a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 1\n-A -u 1.2.3.4:53 -s wlc\n";
        // The running configuration has a health check on the TCP service, which rules cannot express.
        let running = "[[ports]]\nname = \"p\"\ndevice = \"net_ring0\"\naddr = \"1.2.3.1/24\"\n\n[[services]]\nproto = \"tcp\"\nvip = \"1.2.3.4:80\"\ncheck = { kind = \"tcp\" }\n";
        let answer = |req: &Request| match req {
            Request::Save => Response::ok(Reply::Config { config: running.into() }),
            _ => Response::ok(Reply::Applied { epoch: 7 }),
        };
        let (out, sent) = run("-R", rules, answer);
        assert_eq!(out.unwrap(), "");
        assert_eq!(sent.len(), 2, "one read of the running checks, one atomic restore");
        assert_eq!(sent[0], Request::Save);
        match &sent[1] {
            Request::Restore { config } => {
                let services = services_from_toml(config).unwrap();
                let mut want = parse_rules(rules).unwrap();
                assert_eq!(services[0].check.as_ref().map(|c| c.kind.as_str()), Some("tcp"), "check kept");
                want[0].check = services[0].check.clone();
                assert_eq!(services, want);
                assert_eq!(services.len(), 2);
                assert!(services[1].check.is_none());
                assert!(!config.contains("[workers]") && !config.contains("[[ports]]"), "{config}");
            }
            r => panic!("{r:?}"),
        }
        // bad rules: nothing is sent
        let (out, sent) =
            run("-R", "-A -t 1.2.3.4:80\n-a -t 1.2.3.4:80\n", |_| Response::error("unreachable"));
        assert!(matches!(out, Err(AdmError::Usage(m)) if m.starts_with("line 2:")));
        assert!(sent.is_empty());
    }

    #[test]
    fn save_and_get_laddr() {
        let answer = |req: &Request| match req {
            Request::ListServices => {
                Response::ok(Reply::Services { services: vec![svc("tcp", "1.2.3.4:80")] })
            }
            Request::ListLaddrs { .. } => Response::ok(Reply::Laddrs { laddrs: vec!["10.0.0.9".into()] }),
            _ => Response::error("unexpected"),
        };
        let (out, _) = run("-S -n", "", answer);
        assert_eq!(
            out.unwrap(),
            "-A -t 1.2.3.4:80 -s wlc\n--add-laddr -t 1.2.3.4:80 -z 10.0.0.9\n-a -t 1.2.3.4:80 -r 10.0.1.1:80 -b -w 1\n"
        );
        let (all, _) = run("--get-laddr", "", answer);
        let (one, sent) = run("-G -t 1.2.3.4:80", "", answer);
        assert_eq!(all.unwrap(), one.unwrap());
        assert_eq!(sent, [Request::ListLaddrs { id: id("tcp", "1.2.3.4:80") }]);
    }

    #[test]
    fn help_and_version_need_no_daemon() {
        let (out, sent) = run("--help", "", |_| Response::error("unreachable"));
        let out = out.unwrap();
        assert!(out.contains("--add-laddr") && out.contains("default forwarding method is fullnat"));
        assert!(sent.is_empty());
    }
}
