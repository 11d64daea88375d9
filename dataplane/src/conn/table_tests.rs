//! The bucket index under forced collisions, and the table against a `HashMap` model.
use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::*;

const VIP: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// Distinct client and reply tuples for every `i`.
fn conn(i: u32) -> NewConn {
    NewConn {
        client: FlowKey {
            proto: Proto::Tcp,
            src: Ipv4Addr::from(0xC0A8_0000 + (i >> 12)),
            dst: VIP,
            sport: 10_000 + (i & 0xfff) as u16,
            dport: 80,
        },
        lip: LIP,
        lport: 1025 + (i % 60_000) as u16,
        rs: Ipv4Addr::from(u32::from(RS) + i / 60_000),
        rport: 8080,
        service: 7,
        real: i,
        xlat: crate::xmit::Xlat::FullNat,
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// Connections both of whose tuples have home bucket `home` in `t`.
fn homed_at(t: &ConnTable, home: usize, n: usize) -> Vec<NewConn> {
    (0..)
        .map(conn)
        .filter(|c| {
            t.index.home_of(t.hash(&c.client)) == home && t.index.home_of(t.hash(&c.reply_key())) == home
        })
        .take(n)
        .collect()
}

#[test]
fn overflow_counts_follow_inserts_and_removes() {
    // 4 buckets of 8 slots; every connection used here has both tuples at home in bucket 0.
    let mut t = ConnTable::with_buckets(16, 4, 1);
    let c = homed_at(&t, 0, 7);
    let mut ids: Vec<ConnId> = c[..4].iter().map(|n| t.insert(n, 0).unwrap()).collect();
    // Bucket 0 is full with 8 refs and nothing has overflowed yet.
    assert_eq!((0..4).map(|b| t.index.overflow(b)).collect::<Vec<_>>(), [0, 0, 0, 0]);
    t.check_index();
    // The fifth connection's two refs land in bucket 1, passing bucket 0 twice.
    ids.push(t.insert(&c[4], 0).unwrap());
    assert_eq!(t.index.overflow(0), 2);
    assert_eq!(t.index.overflow(1), 0);
    t.check_index();
    for (n, &id) in c.iter().zip(&ids) {
        assert_eq!(t.lookup(&n.client), Some((id, Dir::Original)));
        assert_eq!(t.lookup(&n.reply_key()), Some((id, Dir::Reply)));
    }
    // Removing the overflowed connection takes its two passes back.
    t.remove(ids[4]).unwrap();
    assert_eq!(t.index.overflow(0), 0);
    t.check_index();
    // Delete then re-insert: the same refs, the same path.
    assert_eq!(t.insert(&c[4], 0), Ok(ids[4]));
    assert_eq!(t.index.overflow(0), 2);
    // Removing a connection that sits in bucket 0 leaves the overflow alone (nothing moves back)
    // and the overflowed keys are still found through it.
    t.remove(ids[0]).unwrap();
    assert_eq!(t.index.overflow(0), 2);
    assert!(!t.contains(&c[0].client) && !t.contains(&c[0].reply_key()));
    assert_eq!(t.lookup(&c[4].reply_key()), Some((ids[4], Dir::Reply)));
    t.check_index();
    // The freed slots in bucket 0 are reused before probing further.
    let id5 = t.insert(&c[5], 0).unwrap();
    assert_eq!(t.index.overflow(0), 2);
    // Bucket 0 full again: the next one overflows too.
    let id6 = t.insert(&c[6], 0).unwrap();
    assert_eq!(t.index.overflow(0), 4);
    t.check_index();
    // A miss homed at bucket 0 walks on while the counts say so, and stops.
    assert_eq!(t.lookup(&c[0].client), None);
    // Empty it all: every count goes back to 0.
    for id in [ids[1], ids[2], ids[3], ids[4], id5, id6] {
        t.remove(id).unwrap();
        t.check_index();
    }
    assert!(t.is_empty());
    assert_eq!((0..4).map(|b| t.index.overflow(b)).sum::<u32>(), 0);
    assert_eq!(t.index.len(), 0);
}

#[test]
fn overflow_passes_several_buckets_and_wraps() {
    // Home bucket 3 of 4 is the last one: overflow wraps to bucket 0, then 1.
    let mut t = ConnTable::with_buckets(16, 4, 2);
    let c = homed_at(&t, 3, 12);
    let ids: Vec<ConnId> = c.iter().map(|n| t.insert(n, 0).unwrap()).collect();
    // 24 refs: 8 in bucket 3, 8 in bucket 0, 8 in bucket 1.
    assert_eq!(t.index.overflow(3), 16);
    assert_eq!(t.index.overflow(0), 8);
    assert_eq!(t.index.overflow(1), 0);
    assert_eq!(t.index.overflow(2), 0);
    t.check_index();
    for (i, id) in ids.into_iter().enumerate().rev() {
        assert_eq!(t.remove(id).unwrap().real(), c[i].real);
        t.check_index();
    }
    assert_eq!((0..4).map(|b| t.index.overflow(b)).sum::<u32>(), 0);
}

#[test]
fn full_bucket_array_is_insert_full() {
    // 10 connections would need 20 slots; one bucket has 8. The index fills first and the table
    // says Full without panicking and without leaving half a connection behind.
    let mut t = ConnTable::with_buckets(10, 1, 3);
    let ids: Vec<ConnId> = (0..4).map(|i| t.insert(&conn(i), 0).unwrap()).collect();
    assert!(!t.is_full());
    assert_eq!(t.insert(&conn(4), 0), Err(InsertError::Full));
    assert_eq!(t.len(), 4);
    assert!(!t.contains(&conn(4).client) && !t.contains(&conn(4).reply_key()));
    t.check_index();
    // Seven free slots but one free ref: the second ref cannot be placed, the first is undone.
    t.remove(ids[1]).unwrap();
    assert_eq!(t.insert(&conn(4), 0).map(|_| ()), Ok(()));
    assert_eq!(t.insert(&conn(5), 0), Err(InsertError::Full));
    t.check_index();
    assert_eq!(t.stats().inserted, 5);
}

#[test]
fn capacity_full_then_room_after_remove() {
    let mut t = table(3);
    assert_eq!(t.capacity(), 3);
    let ids: Vec<ConnId> = (0..3).map(|i| t.insert(&conn(i), 0).unwrap()).collect();
    assert!(t.is_full());
    assert_eq!(t.insert(&conn(3), 0), Err(InsertError::Full));
    t.remove(ids[1]).unwrap();
    assert!(!t.is_full());
    let id = t.insert(&conn(3), 0).unwrap();
    assert_eq!(id, ids[1]);
    assert_eq!(t.lookup(&conn(3).reply_key()), Some((id, Dir::Reply)));
    assert_eq!(t.lookup(&conn(1).client), None);
    t.check_index();
}

fn table(cap: usize) -> ConnTable {
    ConnTable::new(cap, Timeouts::default(), 0)
}

#[test]
fn duplicate_tuple_is_exists_in_a_crowded_bucket() {
    // Tag collisions are forced too: with 2 tag bits the key comparison decides.
    let mut t = ConnTable::with_buckets(16, 4, 4);
    t.hasher.weaken(0x0003_0000_0000_0003);
    let c = homed_at(&t, 1, 6);
    for n in &c {
        t.insert(n, 0).unwrap();
    }
    t.check_index();
    for n in &c {
        assert_eq!(t.insert(n, 0), Err(InsertError::Exists));
        assert_eq!(t.insert(&NewConn { lport: 1, ..*n }, 0), Err(InsertError::Exists));
        assert_eq!(
            t.insert(&NewConn { client: FlowKey { sport: 1, ..n.client }, ..*n }, 0),
            Err(InsertError::Exists)
        );
        let (id, _) = t.lookup(&n.client).unwrap();
        assert_eq!(t.get(id).unwrap().real(), n.real);
        assert_eq!(t.lookup(&n.reply_key()), Some((id, Dir::Reply)));
    }
    assert_eq!(t.len(), 6);
}

#[test]
fn pipelined_lookup_matches_lookup() {
    let mut a = ConnTable::with_seed(1000, Timeouts::default(), 0, 1);
    let mut b = ConnTable::with_seed(1000, Timeouts::default(), 0, 2);
    for i in 0..1000 {
        a.insert(&conn(i), 0).unwrap();
        b.insert(&conn(i), 0).unwrap();
    }
    let mut differ = 0;
    for i in 0..2000 {
        let n = conn(i);
        for k in [n.client, n.reply_key(), n.client.reversed()] {
            let h = a.hash(&k);
            a.prefetch_bucket(h);
            a.prefetch_candidates(h);
            let got = a.lookup_hashed(&k, h);
            if let Some((id, _)) = got {
                a.prefetch_entry(id);
            }
            assert_eq!(got, a.lookup(&k));
            // The seed changes where keys go, never what is found.
            assert_eq!(got, b.lookup(&k));
            differ += (a.hash(&k) != b.hash(&k)) as u32;
            assert_eq!(got.is_some(), i < 1000 && k != n.client.reversed());
        }
    }
    assert!(differ > 5_900, "seeds barely matter: {differ}");
    // Out-of-range ids are ignored by the hint.
    a.prefetch_entry(ConnId(u32::MAX));
}

#[test]
fn hash_spreads_sequential_tuples() {
    // Sequential client ports (what a scanner or a NAT pool produces) must spread over buckets and
    // tags; a 1M table with 2^19 buckets.
    let t = ConnTable::with_buckets(1, 1 << 19, 5);
    let mut per_bucket = vec![0u8; 1 << 19];
    let mut tags = std::collections::HashSet::new();
    for i in 0..(1u32 << 19) {
        let k = FlowKey { sport: i as u16, src: Ipv4Addr::from(0x0A00_0000 + (i >> 16)), ..conn(0).client };
        let h = t.hash(&k);
        per_bucket[t.index.home_of(h)] += 1;
        tags.insert(h.0 >> 48);
    }
    let max = *per_bucket.iter().max().unwrap();
    let empty = per_bucket.iter().filter(|&&n| n == 0).count();
    // Poisson(1): ~36.8 % empty, a maximum around 9-10.
    assert!(max <= 12, "max {max} keys in a bucket");
    assert!((0.35..0.39).contains(&(empty as f64 / (1 << 19) as f64)), "{empty} empty buckets");
    assert!(tags.len() > 65_000, "{} tags", tags.len());
}

/// One configuration of the model check: table capacity, bucket count (None: the production
/// sizing), seed, number of operations, and whether the hash is cut down to force tag collisions.
fn model_run(cap: usize, buckets: Option<usize>, seed: u64, ops: usize, weak: bool) {
    let mut t = match buckets {
        Some(b) => ConnTable::with_buckets(cap, b, seed),
        None => ConnTable::with_seed(cap, Timeouts::default(), 0, seed),
    };
    if weak {
        t.hasher.weaken(0xff);
    }
    let mut rng = Rng::new(seed);
    // A small key space: 4 addresses and 6 ports everywhere, so tuples collide across connections
    // and across directions (a reply tuple can be another connection's client tuple).
    let addr = |r: &mut Rng| Ipv4Addr::new(10, 0, 0, 1 + r.below(4) as u8);
    let port = |r: &mut Rng| 1 + r.below(6) as u16;
    let proto = |r: &mut Rng| if r.below(2) == 0 { Proto::Tcp } else { Proto::Udp };
    let key =
        |r: &mut Rng| FlowKey { proto: proto(r), src: addr(r), dst: addr(r), sport: port(r), dport: port(r) };
    let mut keys: HashMap<FlowKey, (ConnId, Dir)> = HashMap::new();
    let mut conns: HashMap<ConnId, (NewConn, Millis)> = HashMap::new(); // id -> (conn, due)
    let mut now: Millis = 1_000;
    let (mut inserted, mut full, mut exists, mut expired) = (0, 0, 0, 0);
    let mut overflowed = false;
    for op in 0..ops {
        match rng.below(16) {
            0..=5 => {
                let client = key(&mut rng);
                let n = NewConn {
                    client,
                    lip: addr(&mut rng),
                    lport: port(&mut rng),
                    rs: addr(&mut rng),
                    rport: port(&mut rng),
                    service: 1,
                    real: op as u32,
                    xlat: crate::xmit::Xlat::FullNat,
                };
                let rk = n.reply_key();
                let got = t.insert(&n, now);
                let want = if conns.len() == cap {
                    Err(InsertError::Full)
                } else if client == rk || keys.contains_key(&client) || keys.contains_key(&rk) {
                    Err(InsertError::Exists)
                } else {
                    Ok(())
                };
                assert_eq!(got.map(|_| ()), want, "insert {n:?}");
                match got {
                    Ok(id) => {
                        assert!(!conns.contains_key(&id), "id {id:?} handed out twice");
                        keys.insert(client, (id, Dir::Original));
                        keys.insert(rk, (id, Dir::Reply));
                        let due = now + t.get(id).unwrap().expires_in(now);
                        conns.insert(id, (n, due));
                        inserted += 1;
                    }
                    Err(InsertError::Full) => full += 1,
                    Err(InsertError::Exists) => exists += 1,
                }
            }
            6..=7 => {
                // Remove by a tuple's lookup, as the control plane does.
                let k = key(&mut rng);
                match t.lookup(&k) {
                    Some((id, dir)) => {
                        assert_eq!(keys.get(&k), Some(&(id, dir)));
                        let c = t.remove(id).unwrap();
                        let (n, _) = conns.remove(&id).unwrap();
                        assert_eq!(
                            (c.client_key(), c.reply_key(), c.real()),
                            (n.client, n.reply_key(), n.real)
                        );
                        keys.remove(&n.client);
                        keys.remove(&n.reply_key());
                    }
                    None => assert!(!keys.contains_key(&k)),
                }
            }
            8 => {
                // Remove by id, possibly a free one.
                let id = ConnId(rng.below(cap as u64) as u32);
                let got = t.remove(id).map(|c| c.real());
                let want = conns.remove(&id).map(|(n, _)| {
                    keys.remove(&n.client);
                    keys.remove(&n.reply_key());
                    n.real
                });
                assert_eq!(got, want);
            }
            9 => {
                now += rng.below(30_000);
                let budget = if rng.below(2) == 0 { usize::MAX } else { 1 + rng.below(4) as usize };
                t.expire(now, budget, |id, c| {
                    let (n, due) = conns.remove(&id).expect("expired a connection the model lacks");
                    assert_eq!(c.real(), n.real);
                    assert!(due <= now, "expired early");
                    keys.remove(&n.client);
                    keys.remove(&n.reply_key());
                    expired += 1;
                });
                if budget == usize::MAX {
                    assert!(conns.values().all(|&(_, due)| due > now), "an overdue connection survived");
                }
            }
            _ => {
                let k = key(&mut rng);
                let h = t.hash(&k);
                assert_eq!(t.lookup_hashed(&k, h), keys.get(&k).copied(), "lookup {k:?}");
                assert_eq!(t.contains(&k), keys.contains_key(&k));
            }
        }
        assert_eq!(t.len(), conns.len());
        if op % 7 == 0 {
            t.check_index();
            overflowed |= (0..t.index.buckets()).any(|b| t.index.overflow(b) > 0);
        }
    }
    t.check_index();
    for (k, &v) in &keys {
        assert_eq!(t.lookup(k), Some(v));
    }
    println!("cap {cap} buckets {buckets:?} seed {seed}: {inserted} inserted, {full} full, {exists} exists, {expired} expired");
    // Every outcome must have been exercised, or the run proves little.
    assert!(inserted > ops / 20 && exists > 0 && expired > 0, "{inserted} {full} {exists} {expired}");
    if cap < 100 {
        assert!(full > 0 && overflowed, "never full, or never past a full bucket");
    }
}

#[test]
fn model_small_crowded_tables() {
    for seed in 1..=6 {
        // Every slot usable: 32 connections fill 8 buckets of 8 completely.
        model_run(32, Some(8), seed, 20_000, false);
        // 94 % of the slots, more buckets: longer overflow chains, wrapping.
        model_run(60, Some(16), seed, 20_000, false);
    }
}

#[test]
fn model_forced_tag_collisions() {
    for seed in 1..=4 {
        // Every hash keeps 8 low bits and no tag bit: all refs carry tag 1, so every probe meets
        // tag matches and the key compare in the entry decides.
        model_run(32, Some(8), seed, 20_000, true);
    }
}

#[test]
fn model_production_sizing() {
    for seed in 1..=4 {
        model_run(200, None, seed, 20_000, false);
        model_run(1000, None, seed, 20_000, false);
    }
}

/// Probe distances for the benchmark's keys, and lookup timings next to a hashbrown index of the same
/// keys (the design this table replaced), measured in one process so machine load hits both alike.
/// `cargo test --release -p rvs-dataplane ab_timing -- --ignored --nocapture`
#[test]
#[ignore]
fn ab_timing_vs_hashbrown() {
    let key = |i: u32| FlowKey {
        proto: Proto::Tcp,
        src: Ipv4Addr::from(0xc613_0000 + (i >> 10)),
        dst: Ipv4Addr::new(198, 18, 0, 100),
        sport: 1024 + (i & 1023) as u16,
        dport: 80,
    };
    for n in [1_000u32, 1_000_000] {
        let mut t = table(n as usize);
        let mut hb = hashbrown::HashMap::with_capacity(2 * n as usize);
        for i in 0..n {
            let nc = NewConn {
                client: key(i),
                lip: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 100)) + (i >> 16)),
                lport: (i & 0xffff) as u16,
                rs: Ipv4Addr::new(198, 18, 1, 11),
                rport: 8080,
                service: 1,
                real: 1,
                xlat: crate::xmit::Xlat::FullNat,
            };
            let id = t.insert(&nc, 0).unwrap();
            hb.insert(nc.client, ConnRef::new(id.0, Dir::Original));
            hb.insert(nc.reply_key(), ConnRef::new(id.0, Dir::Reply));
        }
        let mut dist = [0usize; 8];
        let mask = t.index.buckets() - 1;
        for (at, r) in t.index.refs() {
            let r = ConnRef(r);
            let h = t.hash(&t.slab[r.id().0 as usize].conn.key(r.dir()));
            let d = (at.wrapping_sub(t.index.home_of(h))) & mask;
            dist[d.min(7)] += 1;
        }
        let nonzero = (0..t.index.buckets()).filter(|&b| t.index.overflow(b) > 0).count();
        println!(
            "{n}: distance histogram {dist:?}, buckets with overflow {nonzero} of {}",
            t.index.buckets()
        );
        let probes: Vec<FlowKey> = (0..1u32 << 20).map(|j| key(j.wrapping_mul(2_654_435_761) % n)).collect();
        let slab: Vec<Conn> = t.slab.iter().map(|e| e.conn).collect();
        let ns = |f: &mut dyn FnMut() -> u64| {
            let start = std::time::Instant::now();
            let x = f();
            std::hint::black_box(x);
            start.elapsed().as_nanos() as f64 / probes.len() as f64
        };
        for round in 0..3 {
            let a = ns(&mut || {
                probes
                    .iter()
                    .map(|k| t.lookup(std::hint::black_box(k)).map_or(0, |(id, _)| id.0 as u64))
                    .sum()
            });
            let b = ns(&mut || {
                probes.iter().map(|k| hb.get(std::hint::black_box(k)).map_or(0, |r| r.id().0 as u64)).sum()
            });
            let c = ns(&mut || {
                probes
                    .iter()
                    .map(|k| {
                        t.lookup(std::hint::black_box(k)).map_or(0, |(id, _)| t.get(id).unwrap().real as u64)
                    })
                    .sum()
            });
            let d = ns(&mut || {
                probes
                    .iter()
                    .map(|k| {
                        hb.get(std::hint::black_box(k)).map_or(0, |r| slab[r.id().0 as usize].real as u64)
                    })
                    .sum()
            });
            let e = ns(&mut || {
                let mut sum = 0;
                for ks in probes.chunks_exact(32) {
                    let hs: [Hashed; 32] = std::array::from_fn(|i| t.hash(std::hint::black_box(&ks[i])));
                    for &h in &hs {
                        t.prefetch_bucket(h);
                    }
                    for &h in &hs {
                        t.prefetch_candidates(h);
                    }
                    let found: [_; 32] = std::array::from_fn(|i| t.lookup_hashed(&ks[i], hs[i]));
                    sum += found.iter().flatten().map(|&(id, _)| t.get(id).unwrap().real as u64).sum::<u64>();
                }
                sum
            });
            let f = ns(&mut || {
                let mut sum = 0;
                for ks in probes.chunks_exact(32) {
                    let hs: [Hashed; 32] = std::array::from_fn(|i| t.hash(std::hint::black_box(&ks[i])));
                    let found: [_; 32] = std::array::from_fn(|i| t.lookup_hashed(&ks[i], hs[i]));
                    sum += found.iter().flatten().map(|&(id, _)| t.get(id).unwrap().real as u64).sum::<u64>();
                }
                sum
            });
            println!(
                "{n} round {round}: lookup {a:.1} vs hashbrown {b:.1}; lookup+get {c:.1} vs hashbrown+slab {d:.1}; burst32 {e:.1} ns/key, without prefetch {f:.1}"
            );
        }
    }
}

/// The same table keyed by IPv6 tuples: both directions found, the packed key unpacked intact,
/// removal and expiry, and the entry on two cache lines.
#[test]
fn ipv6_table_both_directions_remove_and_expire() {
    use crate::flow::FlowKey6;
    use std::net::Ipv6Addr;
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let mut t: ConnTable<Ipv6Addr> = ConnTable::of_family(64, Timeouts::default(), 0, 7);
    let client = |i: u16| FlowKey6 {
        proto: Proto::Tcp,
        src: a("2001:2::10"),
        dst: a("2001:2::100"),
        sport: 1000 + i,
        dport: 80,
    };
    let mut ids = vec![];
    for i in 0..40u16 {
        let new = NewConn {
            client: client(i),
            lip: a("2001:2:0:1::100"),
            lport: 2000 + i,
            rs: a("2001:2:0:1::11"),
            rport: 80,
            service: 1,
            real: 2,
            xlat: crate::xmit::Xlat::FullNat,
        };
        let id = t.insert(&new, 0).unwrap();
        assert_eq!(t.lookup(&client(i)), Some((id, Dir::Original)));
        assert_eq!(t.lookup(&new.reply_key()), Some((id, Dir::Reply)));
        let c = t.get(id).unwrap();
        assert_eq!((c.client_key(), c.reply_key()), (client(i), new.reply_key()));
        assert_eq!(c.lip(), (a("2001:2:0:1::100"), 2000 + i));
        ids.push(id);
    }
    assert_eq!(
        t.insert(
            &NewConn {
                client: client(3),
                lip: a("::1"),
                lport: 1,
                rs: a("::2"),
                rport: 1,
                service: 0,
                real: 0,
                xlat: crate::xmit::Xlat::FullNat
            },
            0
        ),
        Err(InsertError::Exists)
    );
    assert!(t.remove(ids[0]).is_some());
    assert_eq!(t.lookup(&client(0)), None);
    assert_eq!(std::mem::size_of::<Entry<Ipv6Addr>>(), 128);
    let n = t.expire(24 * 3600 * 1000, usize::MAX, |_, _| {});
    assert_eq!((n, t.len()), (39, 0));
}
