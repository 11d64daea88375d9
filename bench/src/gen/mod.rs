//! The traffic generator's logic, free of DPDK so it unit-tests against the dataplane in-process.
//!
//! The generator plays both ends of the FULLNAT loop: the clients, on the gateway's client-side
//! port, and the real servers, on its server-side port. An [`Engine`] builds what each side sends
//! and checks everything the gateway delivers. A frame whose rewrite is wrong is counted as a
//! [`RewriteError`] and never as throughput.
//!
//! Invariants:
//! - Engines are generic over the dataplane's [`Frame`](rvs_dataplane::frame::Frame)/[`FramePool`], so the same code runs over
//!   DPDK mbufs (bench/src/bin/rvs_gen.rs) and over `VecFrame`s against `rvs_dataplane::Worker`
//!   in tests.
//! - No allocation per packet: frames come from the pool, templates are copied and patched.
//! - ARP is answered by [`arp`] before a frame reaches an engine; engines only see IPv4.
//! - Engines never steer: which queue a frame leaves on is decided by [`steer`] from its tuple, so
//!   one engine serves any number of queues.
use rvs_dataplane::frame::FramePool;
use rvs_dataplane::wire::EthernetAddress;

pub mod arp;
pub mod latency;
pub mod steer;
pub mod udp;
pub mod udp6;

pub use latency::Latency;

/// The MAC addresses of the generator's two ports and of the gateway's port on each side
/// (learned by ARP before traffic starts), indexed by [`Side`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Macs {
    /// The generator's own MAC on each side: the destination of every frame the gateway delivers.
    pub own: [EthernetAddress; 2],
    /// The gateway's MAC on each side: the destination of every frame the generator sends.
    pub gw: [EthernetAddress; 2],
}

pub mod inproc;
pub mod synflood;
pub mod tcp;
pub mod tcpwire;

/// Which of the gateway's two sides a frame travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The gateway's client-facing port (port 0): clients send to the VIP, replies come back.
    Client = 0,
    /// The gateway's server-facing port (port 1): the generator plays the real servers.
    Server = 1,
}

/// Why a delivered frame is wrong. Each is counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewriteError {
    /// Too short or not Ethernet/IPv4/TCP-or-UDP as expected.
    Malformed,
    /// The IPv4 header checksum does not verify.
    IpChecksum,
    /// The TCP or UDP checksum does not verify.
    L4Checksum,
    /// Source or destination address is not what FULLNAT must produce for this flow.
    Address,
    /// Source or destination port is not what FULLNAT must produce for this flow.
    Port,
    /// The frame does not belong to any flow the generator created (unknown tag or tuple).
    UnknownFlow,
    /// TCP sequence or acknowledgement number not shifted as the proxy must shift it.
    Sequence,
    /// The payload (flow tag, timestamp, bytes) was altered.
    Payload,
    /// The Ethernet destination is not the generator's MAC on that side.
    Mac,
    /// TOA option missing or carrying the wrong client address.
    Toa,
}

impl RewriteError {
    pub const ALL: [RewriteError; 10] = [
        RewriteError::Malformed,
        RewriteError::IpChecksum,
        RewriteError::L4Checksum,
        RewriteError::Address,
        RewriteError::Port,
        RewriteError::UnknownFlow,
        RewriteError::Sequence,
        RewriteError::Payload,
        RewriteError::Mac,
        RewriteError::Toa,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RewriteError::Malformed => "malformed",
            RewriteError::IpChecksum => "ip_checksum",
            RewriteError::L4Checksum => "l4_checksum",
            RewriteError::Address => "address",
            RewriteError::Port => "port",
            RewriteError::UnknownFlow => "unknown_flow",
            RewriteError::Sequence => "sequence",
            RewriteError::Payload => "payload",
            RewriteError::Mac => "mac",
            RewriteError::Toa => "toa",
        }
    }
}

/// What an engine counts. Plain integers: an engine is owned by one lcore.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Frames sent, per side.
    pub tx: [u64; 2],
    pub tx_bytes: [u64; 2],
    /// Frames received and found correct, per side.
    pub rx_ok: [u64; 2],
    pub rx_bytes: [u64; 2],
    /// Frames received with a wrong rewrite, by [`RewriteError`] (indexed by `as usize`).
    pub errors: [u64; RewriteError::ALL.len()],
    /// Frames the generator could not send (pool empty, TX ring full).
    pub tx_failed: u64,
    /// Connections (or flows) completed, for the connection-rate scenarios.
    pub completed: u64,
    /// Bytes of delivered frames the checks read (compared or summed), over every frame checked:
    /// the generator's checking work, which must be the same per frame whatever sits in the
    /// middle (scenario a checks a reference's frames as fully as rvsd's; see [`udp`]).
    pub checked_bytes: u64,
}

impl Counters {
    pub fn error(&mut self, e: RewriteError) {
        self.errors[e as usize] += 1;
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// What was counted since `earlier` (a snapshot of the same counters).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let d2 = |a: [u64; 2], b: [u64; 2]| [a[0] - b[0], a[1] - b[1]];
        let mut errors = self.errors;
        for (e, b) in errors.iter_mut().zip(earlier.errors) {
            *e -= b;
        }
        Counters {
            tx: d2(self.tx, earlier.tx),
            tx_bytes: d2(self.tx_bytes, earlier.tx_bytes),
            rx_ok: d2(self.rx_ok, earlier.rx_ok),
            rx_bytes: d2(self.rx_bytes, earlier.rx_bytes),
            errors,
            tx_failed: self.tx_failed - earlier.tx_failed,
            completed: self.completed - earlier.completed,
            checked_bytes: self.checked_bytes - earlier.checked_bytes,
        }
    }
}

/// Frames to transmit, per side, collected over one iteration of the generator's loop.
#[derive(Debug)]
pub struct Tx<F> {
    pub side: [Vec<F>; 2],
}

impl<F> Tx<F> {
    pub fn with_capacity(n: usize) -> Tx<F> {
        Tx { side: [Vec::with_capacity(n), Vec::with_capacity(n)] }
    }

    pub fn push(&mut self, side: Side, f: F) {
        self.side[side as usize].push(f);
    }
}

/// One traffic pattern: what the clients and servers send, and how delivered frames are checked.
pub trait Engine {
    /// Builds up to `budget` new frames the generator originates on `side` (client requests,
    /// flood SYNs, server-initiated data), taken from `pool`. Returns how many were queued.
    fn generate<P: FramePool>(
        &mut self,
        side: Side,
        now_tsc: u64,
        budget: usize,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> usize;

    /// Checks a frame the gateway delivered on `side` and counts it; may answer it (a real server
    /// replying, a client completing a handshake) by reusing the frame or taking new ones from `pool`.
    fn receive<P: FramePool>(
        &mut self,
        side: Side,
        f: P::Frame,
        now_tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    );

    fn counters(&self) -> &Counters;

    /// False while the engine is still setting up (creating connections in the gateway, learning
    /// their rewritten tuples); the driver measures only once this is true.
    fn warmed_up(&self) -> bool {
        true
    }

    /// Called when the measured interval starts: clears what only covers that interval (latency).
    fn start_measuring(&mut self) {}

    /// One-way latencies (TSC cycles) of the frames checked since [`Engine::start_measuring`],
    /// for engines that timestamp their payloads.
    fn latency(&self) -> Option<&Latency> {
        None
    }
}
