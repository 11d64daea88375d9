//! What a worker is built from: the control plane turns the daemon's config into a [`Setup`], and
//! each worker builds its own private tables from it. Plain data, no DPDK, no serde.
use std::net::Ipv4Addr;

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
    pub mtu: u16,
}

#[derive(Debug, Clone, Copy)]
pub struct RouteSetup {
    pub dst: Ipv4Addr,
    pub prefix_len: u8,
    pub via: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct ServiceSetup {
    /// Stable for the service's lifetime and never reused: connections refer to services by id,
    /// so a connection outliving its service's deletion can never attach to another one.
    pub id: u32,
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub sched: SchedKind,
    /// Persistence timeout; None means no persistence.
    pub persistence_ms: Option<Millis>,
    pub toa: bool,
    pub synproxy: bool,
    pub laddrs: Vec<Ipv4Addr>,
    pub reals: Vec<RealSetup>,
}

#[derive(Debug, Clone, Copy)]
pub struct RealSetup {
    /// Stable and never reused, like [`ServiceSetup::id`].
    pub id: u32,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
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
        }
    }
}
