//! Per-packet header work: parsing the Ethernet/IPv4/TCP views with `new_checked`, the flow key,
//! and the FULLNAT rewrite with incremental checksums.
//!
//! `cargo bench -p rvs-bench --bench wire`
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use rvs_dataplane::wire::{
    flow_key, rewrite_l4_tuple, EtherType, EthernetAddress, EthernetFrame, Ipv4Packet, TcpFlags, TcpPacket,
};

mod common;
use common::{tcp_frame, udp_frame, ETH};

const GW_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 0, 10), 40_000);
const VIP: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 0, 100), 80);
const LIP: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 1, 100), 5_000);
const RS: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 18, 1, 11), 8_080);

/// A 64-byte-class TCP ACK (no payload, 54 bytes before Ethernet padding).
fn tcp_ack() -> Vec<u8> {
    tcp_frame(GW_MAC, CLIENT, VIP, TcpFlags::ACK, 0)
}

fn parse(c: &mut Criterion) {
    let frame = tcp_ack();
    let mut g = c.benchmark_group("parse");
    g.bench_function("eth_ipv4_tcp_new_checked", |b| {
        b.iter(|| {
            let eth = EthernetFrame::new_checked(black_box(&frame[..])).unwrap();
            assert!(eth.ethertype() == EtherType::Ipv4);
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            (ip.src_addr(), ip.dst_addr(), tcp.src_port(), tcp.dst_port(), tcp.flags())
        })
    });
    // The worker checks every IPv4 header checksum (the L4 one is only adjusted, never verified).
    g.bench_function("ipv4_verify_checksum", |b| {
        b.iter(|| Ipv4Packet::new_checked(black_box(&frame[ETH..])).unwrap().verify_checksum())
    });
    g.bench_function("flow_key", |b| b.iter(|| flow_key(black_box(&frame[ETH..])).unwrap()));
    g.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("fullnat_rewrite");
    // Alternating between the two tuples keeps every iteration a real change of all four fields
    // (and the packet valid forever), as client -> VIP becomes LIP -> RS and back.
    for (name, mut frame) in [("tcp", tcp_ack()), ("udp", udp_frame(GW_MAC, CLIENT, VIP, 18))] {
        let mut flip = false;
        g.bench_function(name, |b| {
            b.iter(|| {
                let (s, d) = if flip { (CLIENT, VIP) } else { (LIP, RS) };
                flip = !flip;
                rewrite_l4_tuple(black_box(&mut frame[ETH..]), s.0, d.0, s.1, d.1).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = parse, rewrite
}
criterion_main!(benches);
