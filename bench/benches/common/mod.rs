//! Shared by the criterion micro-benchmarks: the criterion configuration, frame builders and a
//! deterministic index generator.
//!
//! Each bench target compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::Criterion;
use rvs_dataplane::wire::{ipv4, ArpOperation, ArpRepr, EthernetAddress, TcpFlags, TcpPacket, UdpPacket};

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

/// Ethernet header (IPv4) followed by an IPv4 header for `l4_len` bytes of `protocol`; returns the
/// frame with the L4 part zeroed.
fn eth_ip(dst_mac: EthernetAddress, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: usize) -> Vec<u8> {
    let mut v = vec![0u8; ETH + 20 + l4_len];
    v[0..6].copy_from_slice(&dst_mac.0);
    v[6..12].copy_from_slice(&CLIENT_MAC.0);
    v[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip =
        ipv4::Repr { src, dst, protocol, payload_len: l4_len as u16, ttl: 64, ident: 1, dont_frag: true };
    ip.emit(&mut v[ETH..]).expect("room for the IPv4 header");
    v
}

/// A UDP frame with `payload` zero bytes and a valid checksum.
pub fn udp_frame(
    dst_mac: EthernetAddress,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    payload: usize,
) -> Vec<u8> {
    let l4 = 8 + payload;
    let mut v = eth_ip(dst_mac, src, dst, ipv4::PROTO_UDP, l4);
    let mut u = UdpPacket::new_unchecked(&mut v[ETH + 20..]);
    u.set_src_port(sport);
    u.set_dst_port(dport);
    u.set_len_raw(l4 as u16);
    u.fill_checksum(src, dst);
    v
}

/// A 20-byte-header TCP segment (`flags`, `payload` zero bytes) with a valid checksum.
pub fn tcp_frame(
    dst_mac: EthernetAddress,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: TcpFlags,
    payload: usize,
) -> Vec<u8> {
    let l4 = 20 + payload;
    let mut v = eth_ip(dst_mac, src, dst, ipv4::PROTO_TCP, l4);
    let mut t = TcpPacket::new_unchecked(&mut v[ETH + 20..]);
    t.set_header_len_raw(20);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_seq_number(0x1234_5678);
    t.set_ack_number(0x9abc_def0);
    t.set_flags(flags);
    t.set_window_len(64_240);
    t.fill_checksum(src, dst);
    v
}

/// An ARP request from `from` for `target`, padded to the 60-byte Ethernet minimum: how a neighbour
/// makes the worker learn its MAC.
pub fn arp_request(from: (EthernetAddress, Ipv4Addr), target: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0u8; 60];
    v[0..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
    v[6..12].copy_from_slice(&from.0 .0);
    v[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        sender_hw_addr: from.0,
        sender_proto_addr: from.1,
        target_hw_addr: EthernetAddress([0; 6]),
        target_proto_addr: target,
    };
    repr.emit(&mut v[ETH..]).expect("room for the ARP packet");
    v
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
