//! SYN cookies, once per SYN (generate) and once per cookie ACK (check): two SipHash-2-4 each on
//! the success path. Tuples vary every call so nothing is memoised by the branch predictor.
//!
//! `cargo bench -p rvs-bench --bench cookie`
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use rvs_dataplane::flow::{FlowKey, Proto};
use rvs_dataplane::synproxy::{check_cookie, make_cookie, CookieSecrets, SynOptions};

mod common;
use common::Rng;

const NOW: u64 = 1_000_000;

fn tuple(r: u64) -> FlowKey {
    FlowKey {
        proto: Proto::Tcp,
        src: Ipv4Addr::from(0xc613_0000 | (r as u32 & 0xffff)),
        dst: Ipv4Addr::new(198, 18, 0, 100),
        sport: (r >> 16) as u16 | 1024,
        dport: 80,
    }
}

/// What a Linux client's SYN offers: MSS 1460, SACK, timestamps, window scale 7.
fn linux_syn(tsval: u32) -> SynOptions {
    SynOptions { mss: 1460, wscale: Some(7), sack_perm: true, timestamps: Some((tsval, 0)), ecn: false }
}

fn cookies(c: &mut Criterion) {
    let mut secrets = CookieSecrets::new([0x42; 16]);
    // With a previous key, as after the first rotation.
    secrets.rotate([0x17; 16]);
    let mut g = c.benchmark_group("syncookie");
    let mut rng = Rng::new(3);
    g.bench_function("make", |b| {
        b.iter(|| {
            let r = rng.next_u64();
            make_cookie(&secrets, black_box(&tuple(r)), (r >> 32) as u32, &linux_syn(r as u32), NOW)
        })
    });

    // Valid ACKs, prepared outside the measured loop.
    let acks: Vec<(FlowKey, u32, u32, u32)> = (0..4096)
        .map(|_| {
            let r = rng.next_u64();
            let t = tuple(r);
            let isn = (r >> 32) as u32;
            let (cookie, ts) = make_cookie(&secrets, &t, isn, &linux_syn(r as u32), NOW);
            (t, cookie, isn, ts.expect("client sent timestamps"))
        })
        .collect();
    let mut at = 0usize;
    g.bench_function("check_valid", |b| {
        b.iter(|| {
            let (t, cookie, isn, tsecr) = &acks[at];
            at = (at + 1) % acks.len();
            check_cookie(&secrets, black_box(t), *cookie, *isn, Some((1, *tsecr)), NOW + 10).unwrap()
        })
    });
    // A forged ACK (flood of random ACKs): both keys are tried, so this is the expensive path.
    g.bench_function("check_forged", |b| {
        b.iter(|| {
            let (t, cookie, isn, tsecr) = &acks[at];
            at = (at + 1) % acks.len();
            check_cookie(&secrets, black_box(t), cookie ^ 0x0055_5555, *isn, Some((1, *tsecr)), NOW + 10)
                .unwrap_err()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = cookies
}
criterion_main!(benches);
