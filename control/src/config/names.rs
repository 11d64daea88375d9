//! The configuration's enums, read and written by name, with one-line parse errors naming the
//! accepted values.
use super::*;

/// A service's transport protocol. Read and written as `tcp`/`udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number (ipvsadm sorts services by it: `ipvs_cmp_services`).
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// LVS scheduler. Read and written by its LVS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Sched {
    Rr,
    Wrr,
    Lc,
    Wlc,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
}

impl Sched {
    pub const ALL: [Sched; 6] = [Sched::Rr, Sched::Wrr, Sched::Lc, Sched::Wlc, Sched::Sh, Sched::Mh];

    pub const fn as_str(self) -> &'static str {
        match self {
            Sched::Rr => "rr",
            Sched::Wrr => "wrr",
            Sched::Lc => "lc",
            Sched::Wlc => "wlc",
            Sched::Sh => "sh",
            Sched::Mh => "mh",
        }
    }

    /// `rr, wrr, lc, wlc, sh, mh`, for messages and help.
    pub fn names(sep: &str) -> String {
        Sched::ALL.map(Sched::as_str).join(sep)
    }
}

/// Forwarding method of a real server (ipvsadm's `-b -m -g -i`). Written as `fullnat`, `nat`,
/// `dr`, `tun`; ipvsadm's and keepalived's names are read too ([`Forward::ALIASES`]).
/// A service may mix methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Forward {
    /// FULLNAT (DPVS's `-b`): source and destination rewritten; needs the service's local addresses.
    #[default]
    Fullnat,
    /// NAT (masquerading, `-m`): the destination becomes the real server, which routes its
    /// replies back through the gateway.
    Masq,
    /// DR (direct routing, gatewaying, `-g`): the frame goes to an on-link real server's MAC;
    /// replies bypass the gateway.
    Route,
    /// TUN (IPv4-in-IPv4, `-i`): encapsulated to the real server; replies bypass the gateway.
    Tunnel,
}

impl Forward {
    pub const ALL: [Forward; 4] = [Forward::Fullnat, Forward::Masq, Forward::Route, Forward::Tunnel];

    /// Other names read for each method: ipvsadm's long options and `-Ln` names, keepalived's
    /// `lb_kind`, in lower case.
    pub const ALIASES: [(&'static str, Forward); 8] = [
        ("masq", Forward::Masq),
        ("masquerading", Forward::Masq),
        ("route", Forward::Route),
        ("gatewaying", Forward::Route),
        ("direct", Forward::Route),
        ("tunnel", Forward::Tunnel),
        ("ipip", Forward::Tunnel),
        ("fnat", Forward::Fullnat),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Forward::Fullnat => "fullnat",
            Forward::Masq => "nat",
            Forward::Route => "dr",
            Forward::Tunnel => "tun",
        }
    }

    /// The dataplane's translation kind for this method.
    pub const fn xlat(self) -> rvs_dataplane::xmit::Xlat {
        use rvs_dataplane::xmit::Xlat;
        match self {
            Forward::Fullnat => Xlat::FullNat,
            Forward::Masq => Xlat::Nat,
            Forward::Route => Xlat::Dr,
            Forward::Tunnel => Xlat::Tun,
        }
    }

    /// The method of a dataplane translation kind (a connection's, as listed).
    pub const fn of_xlat(x: rvs_dataplane::xmit::Xlat) -> Forward {
        use rvs_dataplane::xmit::Xlat;
        match x {
            Xlat::FullNat => Forward::Fullnat,
            Xlat::Nat => Forward::Masq,
            Xlat::Dr => Forward::Route,
            Xlat::Tun => Forward::Tunnel,
        }
    }

    /// Replies come back through the gateway (FULLNAT, NAT); DR and TUN replies bypass it.
    pub const fn replies_through_gateway(self) -> bool {
        matches!(self, Forward::Fullnat | Forward::Masq)
    }

    /// The real server's port must be the service's (DR, TUN: the packet's ports are not rewritten).
    pub const fn keeps_port(self) -> bool {
        matches!(self, Forward::Route | Forward::Tunnel)
    }
}

/// PROXY protocol header a TCP service sends its real servers (`off`, `v1`, `v2`), HAProxy's
/// proxy-protocol.txt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ProxyProtocol {
    #[default]
    Off,
    V1,
    V2,
}

impl ProxyProtocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    pub fn is_off(&self) -> bool {
        *self == ProxyProtocol::Off
    }

    /// The dataplane's header version, if any.
    pub const fn version(self) -> Option<rvs_dataplane::wire::proxy::Version> {
        match self {
            ProxyProtocol::Off => None,
            ProxyProtocol::V1 => Some(rvs_dataplane::wire::proxy::Version::V1),
            ProxyProtocol::V2 => Some(rvs_dataplane::wire::proxy::Version::V2),
        }
    }
}

/// What a health check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum CheckKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET `path`, expecting `expect_status`.
    Http,
    /// HTTP GET over TLS (keepalived's `SSL_GET`). The server's certificate is not verified, as
    /// keepalived does not verify it: the check tests that the server answers, not who it is.
    Https,
}

impl CheckKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
        }
    }

    /// True for the kinds that send an HTTP request (`http`, `https`).
    pub const fn is_http(self) -> bool {
        matches!(self, CheckKind::Http | CheckKind::Https)
    }
}

/// Display, `&'static str` and parsing by name for the enums above; parse errors are one line
/// naming the accepted values, so a bad config field or API value says what would do. With
/// `aliases`, other names are read too (and named in the error after the canonical ones).
macro_rules! named_enum {
    ($t:ty, $all:expr, $what:literal) => {
        named_enum!($t, $all, $what, aliases = []);
    };
    ($t:ty, $all:expr, $what:literal, aliases = $aliases:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl From<$t> for &'static str {
            fn from(v: $t) -> &'static str {
                v.as_str()
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                let all: &[$t] = &$all;
                let aliases: &[(&str, $t)] = &$aliases;
                all.iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .or_else(|| aliases.iter().find(|(a, _)| *a == s).map(|(_, v)| *v))
                    .ok_or_else(|| {
                        let names: Vec<&str> = all.iter().map(|v| v.as_str()).collect();
                        let others: Vec<&str> = aliases.iter().map(|(a, _)| *a).collect();
                        if others.is_empty() {
                            format!(concat!("unknown ", $what, " \"{}\" (one of {})"), s, names.join(", "))
                        } else {
                            format!(
                                concat!("unknown ", $what, " \"{}\" (one of {}; also read: {})"),
                                s,
                                names.join(", "),
                                others.join(", ")
                            )
                        }
                    })
            }
        }
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<$t, String> {
                s.parse()
            }
        }
    };
}

named_enum!(Proto, [Proto::Tcp, Proto::Udp], "protocol");
named_enum!(Sched, Sched::ALL, "scheduler");
named_enum!(Forward, Forward::ALL, "forwarding method", aliases = Forward::ALIASES);
named_enum!(CheckKind, [CheckKind::Tcp, CheckKind::Http, CheckKind::Https], "check kind");
named_enum!(
    ProxyProtocol,
    [ProxyProtocol::Off, ProxyProtocol::V1, ProxyProtocol::V2],
    "PROXY protocol version"
);
