//! Real-server selection, once per new connection: `Scheduler::pick` for rr, wrr, wlc, sh and mh
//! over pools of 4 and 32 reals with mixed weights.
//!
//! For wlc the picked real's active count is bumped (as the worker does when the connection is
//! made) and periodically reset, so the pool's counts move like under load rather than staying
//! at zero. Clients vary every pick, which is what the hashing schedulers (sh, mh) key on.
//!
//! `cargo bench -p rvs-bench --bench sched`
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rvs_dataplane::sched::{RealView, SchedKind, Scheduler};

mod common;
use common::Rng;

fn pool(n: u32) -> Vec<RealView> {
    (0..n)
        .map(|i| RealView::new(RealView::id_of(Ipv4Addr::new(198, 18, 1, 11 + i as u8), 80), 1 + i % 4))
        .collect()
}

fn pick(c: &mut Criterion) {
    let mut g = c.benchmark_group("sched_pick");
    let kinds = [SchedKind::Rr, SchedKind::Wrr, SchedKind::Wlc, SchedKind::Sh, SchedKind::Mh];
    for n in [4u32, 32] {
        for kind in kinds {
            let mut reals = pool(n);
            let mut s = Scheduler::new(kind, &reals);
            let mut rng = Rng::new(7);
            let mut picks = 0u32;
            g.bench_function(BenchmarkId::new(kind.as_str(), format!("{n}_reals")), |b| {
                b.iter(|| {
                    let r = rng.next_u64();
                    let client = Ipv4Addr::from(0xc613_0000 | (r as u32 & 0xffff));
                    let i = s.pick(black_box(&reals), client, (r >> 32) as u16).expect("a usable real");
                    reals[i].active += 1;
                    picks += 1;
                    if picks == 1 << 16 {
                        picks = 0;
                        reals.iter_mut().for_each(|r| r.active = 0);
                    }
                    i
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = pick
}
criterion_main!(benches);
