//! Connection-table lookups as the worker does them once per packet: hit (either tuple of a live
//! connection) and miss (a first packet), in a table of 1k connections (cache-resident) and one of
//! 1M (the scenario-a size: the index no longer fits in any cache).
//!
//! Keys are read sequentially from a precomputed shuffled list of 2^20 entries: the key of a real
//! packet comes from headers already in cache, so the list is made cheap to read (sequential, the
//! hardware prefetcher keeps up) while the table buckets it points at stay random.
//!
//! `hit+get` adds what the worker does next with a hit (read the connection), `hit+get/burst32` does
//! the same for 32 keys at a time through the pipelined API (time per burst, not per key), `hash`
//! is the seeded key hash alone.
//!
//! `cargo bench -p rvs-bench --bench conn`
// As in rvsd: large tables on transparent huge pages (ffi/src/alloc.rs). Without it a 1M table pays
// a page walk per cache miss and the numbers measure the TLB rather than the table.
#[global_allocator]
static ALLOC: dpdk_sys::alloc::HugePageAdvice = dpdk_sys::alloc::HugePageAdvice;

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rvs_dataplane::conn::{ConnTable, Hashed, NewConn, Timeouts};
use rvs_dataplane::flow::{FlowKey, Proto};

mod common;
use common::Rng;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);
const PROBES: usize = 1 << 20;
/// Packets per burst in the pipelined variant (the worker's RX burst size).
const BURST: usize = 32;

/// Connection `i`: a distinct client tuple and a distinct (LIP, lport) per connection, as the
/// worker's local-port allocation makes them.
fn new_conn(i: u32) -> NewConn {
    NewConn {
        client: FlowKey {
            proto: Proto::Tcp,
            src: Ipv4Addr::from(0xc613_0000 + (i >> 10)),
            dst: VIP,
            sport: 1024 + (i & 1023) as u16,
            dport: 80,
        },
        lip: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 100)) + (i >> 16)),
        lport: (i & 0xffff) as u16,
        rs: RS,
        rport: 8080,
        service: 1,
        real: 1,
        xlat: rvs_dataplane::xmit::Xlat::FullNat,
    }
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_lookup");
    for n in [1_000u32, 1_000_000] {
        let mut t = ConnTable::new(n as usize, Timeouts::default(), 0);
        for i in 0..n {
            t.insert(&new_conn(i), 0).expect("room for every benchmark connection");
        }
        assert_eq!(t.len(), n as usize);
        let mut rng = Rng::new(u64::from(n));
        let hits: Vec<FlowKey> = (0..PROBES)
            .map(|_| {
                let nc = new_conn(rng.below(n as usize) as u32);
                // Both directions are looked up equally often in established forwarding.
                if rng.next_u64() & 1 == 0 {
                    nc.client
                } else {
                    nc.reply_key()
                }
            })
            .collect();
        // The same keys with ports no connection uses.
        let misses: Vec<FlowKey> =
            hits.iter().map(|k| FlowKey { sport: k.sport.wrapping_add(30_000), dport: 443, ..*k }).collect();
        let label = if n >= 1_000_000 { format!("{}M", n / 1_000_000) } else { format!("{}k", n / 1000) };
        for (what, keys) in [("hit", &hits), ("miss", &misses)] {
            let mut at = 0usize;
            g.bench_function(BenchmarkId::new(what, &label), |b| {
                b.iter(|| {
                    let k = &keys[at];
                    at = (at + 1) & (PROBES - 1);
                    t.lookup(black_box(k))
                })
            });
        }
        // What the worker does with a hit: the lookup, then the connection itself.
        let mut at = 0usize;
        g.bench_function(BenchmarkId::new("hit+get", &label), |b| {
            b.iter(|| {
                let k = &hits[at];
                at = (at + 1) & (PROBES - 1);
                let (id, _) = t.lookup(black_box(k)).expect("a hit");
                t.get(id).map(|c| c.real())
            })
        });
        // The same, as the burst pipeline will run it: hash a burst's keys and prefetch their
        // buckets, then prefetch the entries their tags point at, then look them up and read the
        // connections. Time per burst of BURST keys.
        let mut at = 0usize;
        g.bench_function(BenchmarkId::new(format!("hit+get/burst{BURST}"), &label), |b| {
            b.iter(|| {
                let ks = &hits[at..at + BURST];
                at = (at + BURST) & (PROBES - 1);
                let hs: [Hashed; BURST] = std::array::from_fn(|i| t.hash(black_box(&ks[i])));
                for &h in &hs {
                    t.prefetch_bucket(h);
                }
                for &h in &hs {
                    t.prefetch_candidates(h);
                }
                let found: [_; BURST] = std::array::from_fn(|i| t.lookup_hashed(&ks[i], hs[i]));
                found.iter().flatten().map(|&(id, _)| t.get(id).map_or(0, |c| c.real())).sum::<u32>()
            })
        });
        if n == 1_000 {
            let mut at = 0usize;
            g.bench_function("hash", |b| {
                b.iter(|| {
                    let k = &hits[at];
                    at = (at + 1) & (PROBES - 1);
                    t.hash(black_box(k))
                })
            });
        }
        // Misses must really miss and hits really hit, or the numbers mean nothing.
        assert!(hits.iter().take(1000).all(|k| t.lookup(k).is_some()));
        assert!(misses.iter().take(1000).all(|k| t.lookup(k).is_none()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = lookup
}
criterion_main!(benches);
