//! ipvsadm 1.31's option table (`ipvsadm.c`: `options[]`, the `commands_v_options` legality
//! table) with DPVS's and rvs's additions: which commands and options exist, how each is spelled
//! and what argument it takes.
use crate::config::Forward;

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
    /// `--set tcp tcpfin udp`.
    Timeout,
    StartDaemon,
    StopDaemon,
    /// `--capture-start PORT` (rvs's own: packet capture to a pcap file).
    CaptureStart,
    CaptureStop,
    CaptureStatus,
}

impl Cmd {
    pub(super) fn name(self) -> &'static str {
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
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::CaptureStart => "capture-start",
            Cmd::CaptureStop => "capture-stop",
            Cmd::CaptureStatus => "capture-status",
        }
    }
}

/// Options, named as ipvsadm's `optnames` for its error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opt {
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
    ProxyProtocol,
    Ifname,
    ShowLip,
    Timeout,
    Daemon,
    /// `--mcast-interface` / `--syncid` (`--start-daemon`).
    McastInterface,
    SyncId,
    PersistentConn,
    Inhibit,
    /// `--ports` (rvs): the list of rvsd's ports, as DPVS's `dpip link show`.
    Ports,
    Direction,
    Host,
    Cport,
    CProto,
    Count,
    MaxBytes,
    Snaplen,
    File,
}

impl Opt {
    pub(super) fn name(self) -> &'static str {
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
            Opt::ProxyProtocol => "proxy-protocol",
            Opt::Ifname => "ifname",
            Opt::ShowLip => "show-lip",
            Opt::Timeout => "timeout",
            Opt::Daemon => "daemon",
            Opt::McastInterface => "mcast-interface",
            Opt::SyncId => "syncid",
            Opt::PersistentConn => "persistent-conn",
            Opt::Inhibit => "inhibit-on-failure",
            Opt::Ports => "ports",
            Opt::Direction => "direction",
            Opt::Host => "host",
            Opt::Cport => "cport",
            Opt::CProto => "proto",
            Opt::Count => "count",
            Opt::MaxBytes => "max-bytes",
            Opt::Snaplen => "snaplen",
            Opt::File => "file",
        }
    }
}

/// ipvsadm's `commands_v_options` table, as (compulsory, optional) options per command; anything
/// else is illegal with the command.
pub(super) fn legal(cmd: Cmd) -> (&'static [Opt], &'static [Opt]) {
    use Opt::*;
    match cmd {
        Cmd::AddService | Cmd::EditService => {
            (&[Service], &[Scheduler, Persistent, Synproxy, Toa, ProxyProtocol, Inhibit])
        }
        Cmd::DeleteService => (&[Service], &[]),
        Cmd::Clear | Cmd::Restore | Cmd::Timeout | Cmd::StopDaemon => (&[], &[]),
        Cmd::StartDaemon => (&[], &[McastInterface, SyncId]),
        Cmd::List => (
            &[],
            &[
                Numeric,
                Connection,
                Service,
                Stats,
                Rate,
                Thresholds,
                Exact,
                NoSort,
                ShowLip,
                Timeout,
                Daemon,
                PersistentConn,
                Ports,
            ],
        ),
        Cmd::AddServer | Cmd::EditServer => (&[Service, Server], &[Forward, Weight, UThreshold, LThreshold]),
        Cmd::DeleteServer => (&[Service, Server], &[]),
        Cmd::Save => (&[], &[Numeric, NoSort]),
        Cmd::Zero => (&[], &[Service]),
        Cmd::AddLaddr | Cmd::DelLaddr => (&[Service, Laddr], &[Ifname]),
        Cmd::GetLaddr => (&[], &[Service, Numeric]),
        Cmd::CaptureStart => (&[File], &[Direction, Host, Cport, CProto, Count, MaxBytes, Snaplen]),
        Cmd::CaptureStop | Cmd::CaptureStatus => (&[], &[]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgKind {
    None,
    Required,
    /// popt's `POPT_ARGFLAG_OPTIONAL`: the next word is taken unless it starts with `-`.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Cmd(Cmd),
    Help,
    Version,
    Tcp,
    Udp,
    Sched,
    Persist,
    Real,
    Fwd(Forward),
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
    ProxyProtocol,
    Ifname,
    ShowLip,
    Socket,
    /// `--start-daemon`/`--stop-daemon STATE`.
    Daemon(Cmd),
    TimeoutOpt,
    DaemonOpt,
    McastInterface,
    SyncId,
    PersistConn,
    Inhibit,
    Ports,
    /// `--capture-start PORT`.
    CaptureStart,
    /// A capture option with a value.
    Capture(Opt),
    /// ipvsadm options rvs does not implement; the string says why.
    Unsupported(&'static str),
}

pub(super) struct Spec {
    pub(super) long: &'static str,
    pub(super) short: Option<char>,
    pub(super) arg: ArgKind,
    pub(super) key: Key,
}

pub(super) const fn spec(long: &'static str, short: Option<char>, arg: ArgKind, key: Key) -> Spec {
    Spec { long, short, arg, key }
}

use ArgKind::{None as NoArg, Optional as OptArg, Required as ReqArg};

/// Every option: ipvsadm 1.31's table, DPVS's FULLNAT additions, then rvs's own. The man page's
/// clap command (`man::command`) follows it, checked by a unit test there.
pub(super) const SPECS: &[Spec] = &[
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
    spec("gatewaying", Some('g'), NoArg, Key::Fwd(Forward::Route)),
    spec("ipip", Some('i'), NoArg, Key::Fwd(Forward::Tunnel)),
    spec("masquerading", Some('m'), NoArg, Key::Fwd(Forward::Masq)),
    spec("fullnat", Some('b'), NoArg, Key::Fwd(Forward::Fullnat)),
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
    spec("proxy-protocol", None, ReqArg, Key::ProxyProtocol),
    spec("show-lip", None, NoArg, Key::ShowLip),
    spec("socket", None, ReqArg, Key::Socket),
    spec("set", None, NoArg, Key::Cmd(Cmd::Timeout)),
    spec("start-daemon", None, ReqArg, Key::Daemon(Cmd::StartDaemon)),
    spec("stop-daemon", None, ReqArg, Key::Daemon(Cmd::StopDaemon)),
    spec("timeout", None, NoArg, Key::TimeoutOpt),
    spec("daemon", None, NoArg, Key::DaemonOpt),
    spec("persistent-conn", None, NoArg, Key::PersistConn),
    spec("inhibit-on-failure", None, NoArg, Key::Inhibit),
    spec("ports", None, NoArg, Key::Ports),
    spec("capture-start", None, ReqArg, Key::CaptureStart),
    spec("capture-stop", None, NoArg, Key::Cmd(Cmd::CaptureStop)),
    spec("capture-status", None, NoArg, Key::Cmd(Cmd::CaptureStatus)),
    spec("direction", None, ReqArg, Key::Capture(Opt::Direction)),
    spec("host", None, ReqArg, Key::Capture(Opt::Host)),
    spec("cport", None, ReqArg, Key::Capture(Opt::Cport)),
    spec("proto", None, ReqArg, Key::Capture(Opt::CProto)),
    spec("count", None, ReqArg, Key::Capture(Opt::Count)),
    spec("max-bytes", None, ReqArg, Key::Capture(Opt::MaxBytes)),
    spec("snaplen", None, ReqArg, Key::Capture(Opt::Snaplen)),
    spec("file", None, ReqArg, Key::Capture(Opt::File)),
    spec("mcast-interface", None, ReqArg, Key::McastInterface),
    spec("syncid", None, ReqArg, Key::SyncId),
    spec("fwmark-service", Some('f'), ReqArg, Key::Unsupported("fwmark services are not supported by rvs")),
    spec("icmp-service", Some('q'), ReqArg, Key::Unsupported("icmp services are not supported by rvs")),
    spec("netmask", Some('M'), ReqArg, Key::Unsupported("persistence netmasks are not supported by rvs")),
    spec("ops", Some('o'), NoArg, Key::Unsupported("one-packet scheduling is not supported by rvs")),
    spec("ipv6", Some('6'), NoArg, Key::Unsupported("IPv6 is not supported by rvs")),
];
