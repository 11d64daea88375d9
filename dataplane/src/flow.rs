//! Flow identity shared by the connection table, schedulers and the packet path.
//!
//! Time everywhere in the dataplane is `u64` milliseconds since an arbitrary epoch chosen by the caller
//! (the daemon derives it from the TSC once per burst; tests pass whatever they like).
use std::net::Ipv4Addr;

/// Milliseconds since the caller's epoch.
pub type Millis = u64;

/// Transport protocols the gateway balances.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum Proto {
    Tcp = 6,
    Udp = 17,
}

impl Proto {
    /// The IPv4 protocol number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    pub const fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// One direction of a connection exactly as it appears on the wire: source first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    pub proto: Proto,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

impl FlowKey {
    /// The same flow seen from the other end.
    pub const fn reversed(&self) -> FlowKey {
        FlowKey { proto: self.proto, src: self.dst, dst: self.src, sport: self.dport, dport: self.sport }
    }
}
