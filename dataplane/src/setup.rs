//! What a worker is built from: the control plane turns the daemon's config into a [`Setup`], and
//! each worker builds its own private tables from it. Plain data, no DPDK, no serde.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::conn::Timeouts;
use crate::flow::{Millis, Proto};
use crate::sched::SchedKind;
use crate::wire::EthernetAddress;

#[derive(Debug, Clone)]
pub struct Setup {
    pub ports: Vec<PortSetup>,
    pub routes: Vec<RouteSetup>,
    pub services: Vec<ServiceSetup>,
    pub conn: ConnSetup,
    /// How many workers share the ports (for local-port slices).
    pub workers: u16,
}

#[derive(Debug, Clone)]
pub struct PortSetup {
    pub name: String,
    pub mac: EthernetAddress,
    /// The gateway's own address on this port and its connected prefix.
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The port's IPv6 address and its connected prefix, if it has one (answered in neighbour
    /// discovery, the source of ICMPv6 the gateway sends and of its IPv6-in-IPv6 tunnels).
    pub addr6: Option<Ipv6Addr>,
    pub prefix6_len: u8,
    pub mtu: u16,
}

#[derive(Debug, Clone, Copy)]
/// A route; `dst` and `via` are of one family (the control plane checks it; a route that mixes
/// them is ignored by the dataplane).
pub struct RouteSetup {
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub via: IpAddr,
}

#[derive(Debug, Clone)]
pub struct ServiceSetup {
    /// Stable for the service's lifetime and never reused: connections refer to services by id,
    /// so a connection outliving its service's deletion can never attach to another one.
    pub id: u32,
    pub proto: Proto,
    /// IPv4 VIP: IPv4 reals and local addresses. IPv6 VIP: IPv6 reals and local addresses, or
    /// (NAT64) IPv4 reals, all FULLNAT, and IPv4 local addresses. The control plane validates
    /// this; each worker splits the services into per-family tables and skips one that mixes
    /// families otherwise.
    pub vip: IpAddr,
    pub vport: u16,
    pub sched: SchedKind,
    /// Persistence timeout; None means no persistence.
    pub persistence_ms: Option<Millis>,
    pub toa: bool,
    pub synproxy: bool,
    /// PROXY protocol header at the start of each client's stream toward its real server (TCP
    /// services, FULLNAT and NAT reals; exclusive with `toa`).
    pub proxy_protocol: Option<crate::wire::proxy::Version>,
    pub laddrs: Vec<IpAddr>,
    pub reals: Vec<RealSetup>,
}

#[derive(Debug, Clone, Copy)]
pub struct RealSetup {
    /// Stable and never reused, like [`ServiceSetup::id`].
    pub id: u32,
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Forwarding mode of this real server's connections.
    pub xlat: crate::xmit::Xlat,
}

#[derive(Debug, Clone)]
pub struct ConnSetup {
    pub max_per_worker: u32,
    pub rst_on_miss: bool,
    pub expire_budget: u32,
    pub persist_templates: u32,
    pub arp_queue: u32,
    pub max_neighbours: u32,
    pub neigh_timeout_ms: Millis,
    pub lport_min: u16,
    pub lport_max: u16,
    /// Replace TCP timestamp options in client SYNs with NOPs (see docs/architecture.md, PAWS).
    pub strip_timestamps: bool,
    pub timeouts: Timeouts,
    /// When a real server is removed from its service: true drops its connections at once (with
    /// `rst_on_miss` the client's next segment is answered with a RST); false keeps forwarding them
    /// until they expire.
    pub expire_on_real_removed: bool,
    pub synproxy: SynproxySetup,
    /// PROXY protocol headers awaiting the real server's acknowledgement, per worker (their
    /// retransmission timers; see `proto::proxy`).
    pub proxy_timers: u32,
    /// IP fragments (see `frag`).
    pub frag: FragSetup,
}

/// SYN-proxy parameters (docs/config.md, `[synproxy]`).
#[derive(Debug, Clone, Copy)]
pub struct SynproxySetup {
    /// Initial cookie secret (random, from the daemon); each worker rotates its own from it.
    pub key: [u8; 16],
    /// Cookie counter period; a cookie is valid for up to two periods.
    pub period_ms: Millis,
    /// Half-open proxied connections per worker.
    pub max_half_open: u32,
    /// Client packets held per connection until the real server answers.
    pub max_held: u32,
    /// SYNs sent to a silent real server before the client gets a RST.
    pub syn_retries: u32,
    pub syn_retry_ms: Millis,
    /// Identical ACKs tolerated while half-open.
    pub ack_storm: u32,
    /// MSS, window scale and window the gateway advertises in cookie SYN-ACKs; the window scale
    /// must match the real servers' (their windows are relayed unchanged).
    pub mss: u16,
    pub wscale: u8,
    pub window: u16,
}

impl Default for SynproxySetup {
    fn default() -> Self {
        SynproxySetup {
            key: [0x5a; 16],
            period_ms: 64_000,
            max_half_open: 65_536,
            max_held: 4,
            syn_retries: 3,
            syn_retry_ms: 1_000,
            ack_storm: 10,
            mss: 1460,
            wscale: 7,
            window: 65_535,
        }
    }
}

impl Default for ConnSetup {
    fn default() -> Self {
        ConnSetup {
            max_per_worker: 1 << 16,
            rst_on_miss: false,
            expire_budget: 256,
            persist_templates: 4096,
            arp_queue: 64,
            max_neighbours: 1024,
            neigh_timeout_ms: 300_000,
            lport_min: 1025,
            lport_max: 65535,
            strip_timestamps: true,
            timeouts: Timeouts::default(),
            expire_on_real_removed: false,
            synproxy: SynproxySetup::default(),
            proxy_timers: 262_144,
            frag: FragSetup::default(),
        }
    }
}

/// Bounds of the per-worker fragment table (docs/config.md, `[conn.frag]`).
#[derive(Debug, Clone, Copy)]
pub struct FragSetup {
    /// Datagrams tracked at once.
    pub max_datagrams: u32,
    /// Of those, from one source address.
    pub max_per_source: u32,
    /// How long a datagram is tracked after its first fragment seen (any fragment).
    pub timeout_ms: Millis,
}

impl Default for FragSetup {
    fn default() -> Self {
        FragSetup { max_datagrams: 4096, max_per_source: 256, timeout_ms: 1000 }
    }
}
