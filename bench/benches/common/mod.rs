//! Shared by the criterion micro-benchmarks: the criterion configuration, frame builders and a
//! deterministic index generator.
//!
//! Each bench target compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::Criterion;
use rvs_dataplane::wire::testkit::FrameBuilder;
use rvs_dataplane::wire::{ArpOperation, ArpRepr, EthernetAddress, TcpFlags};

/// Short runs so that `cargo bench -p rvs-bench` stays within a few minutes on a shared 2-CPU
/// machine: 0.5 s warm-up, 2 s measurement, 30 samples per benchmark. Command-line flags
/// (`--quick`, `--measurement-time`, `--sample-size`, a name filter) still override this, because
/// `criterion_group!` applies `configure_from_args` after it.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

pub const ETH: usize = 14;
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 9, 9]);

/// The frames' template: from the client's MAC to `dst_mac`, IPv4 ident 1, TTL 64, DF, TCP window
/// 64240 (the shared builder, `rvs_dataplane::wire::testkit`).
fn from_client(dst_mac: EthernetAddress) -> FrameBuilder {
    FrameBuilder::new(CLIENT_MAC, dst_mac).ident(1)
}

/// A UDP frame with `payload` zero bytes and a valid checksum.
pub fn udp_frame(
    dst_mac: EthernetAddress,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    payload: usize,
) -> Vec<u8> {
    from_client(dst_mac).udp(src, sport, dst, dport, &vec![0; payload], true)
}

/// A 20-byte-header TCP segment (`flags`, `payload` zero bytes) with a valid checksum.
pub fn tcp_frame(
    dst_mac: EthernetAddress,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: TcpFlags,
    payload: usize,
) -> Vec<u8> {
    from_client(dst_mac).tcp(
        (src, sport),
        (dst, dport),
        flags,
        (0x1234_5678, 0x9abc_def0),
        &[],
        &vec![0; payload],
    )
}

/// An ARP request from `from` for `target`, padded to the 60-byte Ethernet minimum: how a neighbour
/// makes the worker learn its MAC.
pub fn arp_request(from: (EthernetAddress, Ipv4Addr), target: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        sender_hw_addr: from.0,
        sender_proto_addr: from.1,
        target_hw_addr: EthernetAddress([0; 6]),
        target_proto_addr: target,
    };
    FrameBuilder::new(from.0, EthernetAddress::BROADCAST).arp(&repr)
}

/// xorshift64*: a fixed, cheap pseudo-random sequence, so runs are comparable and the generator
/// costs ~1 ns next to what is measured.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n` for picking table entries.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}
