use std::collections::BTreeMap;
use std::mem::size_of;
use std::net::Ipv4Addr;

use super::tcp_flags::*;
use super::wheel::{SLOTS, TICK_MS};
use super::*;

const VIP: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

fn new_conn(i: u32, proto: Proto) -> NewConn {
    NewConn {
        client: FlowKey {
            proto,
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

fn tcp(i: u32) -> NewConn {
    new_conn(i, Proto::Tcp)
}

fn table(cap: usize) -> ConnTable {
    ConnTable::new(cap, Timeouts::default(), 0)
}

#[test]
fn layout() {
    assert_eq!(size_of::<FlowKey>(), 14);
    assert_eq!(size_of::<Conn>(), 64);
    // One cache line per entry and per bucket, aligned to it.
    assert_eq!((size_of::<Entry>(), align_of::<Entry>()), (64, 64));
    assert_eq!((size_of::<index::Bucket>(), align_of::<index::Bucket>()), (64, 64));
    for id in [0, 1, 0x1234_5678, REPLY_BIT - 1] {
        for dir in [Dir::Original, Dir::Reply] {
            let r = ConnRef::new(id, dir);
            assert_eq!((r.id(), r.dir()), (ConnId(id), dir));
        }
    }
}

#[test]
fn memory_per_conn_is_at_most_128() {
    // 104_858 and 838_861 are just past a bucket-count doubling: the index at its emptiest (40 %).
    for cap in [1000, 100_000, 104_858, 838_861, 1_000_000] {
        let t = table(cap);
        let m = t.memory_per_conn();
        println!(
            "capacity {} (asked {cap}): {m} bytes/conn (entry {} B, {} index buckets of {} B)",
            t.capacity(),
            size_of::<Entry>(),
            t.index.buckets(),
            size_of::<index::Bucket>()
        );
        assert!(t.capacity() >= cap);
        // Tiny tables pay for the fixed 64 KiB wheel; from ~100k connections up the target holds.
        if cap >= 100_000 {
            assert!(m <= 128, "{m} bytes per connection");
        }
    }
}

#[test]
fn insert_lookup_both_directions() {
    let mut t = table(100);
    let n = tcp(1);
    let id = t.insert(&n, 0).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(&n.client), Some((id, Dir::Original)));
    assert_eq!(t.lookup(&n.reply_key()), Some((id, Dir::Reply)));
    // The reversed tuples are what we send, not what we receive.
    assert_eq!(t.lookup(&n.client.reversed()), None);
    assert_eq!(t.lookup(&n.reply_key().reversed()), None);

    let c = t.get(id).unwrap();
    assert_eq!((c.service(), c.real(), c.proto()), (7, 1, Proto::Tcp));
    assert_eq!(c.key(Dir::Original), n.client);
    assert_eq!(c.key(Dir::Reply), n.reply_key());
    // From the client: LIP:lport -> RS:rport.
    let to_rs = crate::xmit::fullnat::out_key(c, Dir::Original);
    assert_eq!((to_rs.src, to_rs.sport, to_rs.dst, to_rs.dport), (LIP, n.lport, RS, 8080));
    // From the RS: VIP:vport -> client:cport.
    let to_client = crate::xmit::fullnat::out_key(c, Dir::Reply);
    assert_eq!((to_client.src, to_client.sport), (VIP, 80));
    assert_eq!((to_client.dst, to_client.sport, to_client.dport), (n.client.src, 80, n.client.sport));
    assert_eq!(c.state(), TcpState::None);
    assert!(!c.is_counted_active() && !c.toa_done() && c.seq_delta() == 0);

    let c = t.get_mut(id).unwrap();
    c.set_toa_done(true);
    c.set_seq_delta(0xdead_beef);
    let c = t.get(id).unwrap();
    assert!(c.toa_done());
    assert_eq!(c.seq_delta(), 0xdead_beef);
}

#[test]
fn exists_and_full() {
    let mut t = table(5);
    assert_eq!(t.capacity(), 5);
    let a = tcp(1);
    t.insert(&a, 0).unwrap();
    // Same client tuple, different local port.
    assert_eq!(t.insert(&NewConn { lport: 9, ..a }, 0), Err(InsertError::Exists));
    // Same reply tuple, different client.
    assert_eq!(t.insert(&NewConn { client: tcp(2).client, ..a }, 0), Err(InsertError::Exists));
    // Same tuples under the other protocol are a different connection.
    t.insert(&new_conn(1, Proto::Udp), 0).unwrap();
    // Degenerate: the reply tuple equals the client tuple.
    let c = a.client;
    let weird = NewConn { lip: c.dst, lport: c.dport, rs: c.src, rport: c.sport, ..tcp(50) };
    let weird = NewConn { client: FlowKey { src: c.src, dst: c.dst, ..weird.client }, ..weird };
    let weird = NewConn { client: weird.reply_key(), ..weird };
    assert_eq!(weird.client, weird.reply_key());
    assert_eq!(t.insert(&weird, 0), Err(InsertError::Exists));
    assert_eq!(t.len(), 2);
    for i in 2..5 {
        t.insert(&tcp(i), 0).unwrap();
    }
    assert!(t.is_full());
    assert_eq!(t.insert(&tcp(99), 0), Err(InsertError::Full));
    assert_eq!(t.len(), 5);
}

#[test]
fn remove_frees_both_entries_and_slot() {
    let mut t = table(5);
    let ids: Vec<_> = (0..5).map(|i| t.insert(&tcp(i), 0).unwrap()).collect();
    assert!(t.is_full());
    let n = tcp(3);
    let removed = t.remove(ids[3]).unwrap();
    assert_eq!(removed.client_key(), n.client);
    assert!(!t.contains(&n.client) && !t.contains(&n.reply_key()));
    assert!(t.get(ids[3]).is_none());
    assert!(t.remove(ids[3]).is_none());
    assert_eq!(t.len(), 4);
    // The slot comes back, and the old tuples can be tracked again.
    assert_eq!(t.insert(&n, 0), Ok(ids[3]));
    assert_eq!(t.lookup(&n.reply_key()), Some((ids[3], Dir::Reply)));
    // A removed connection never expires later.
    t.remove(ids[0]).unwrap();
    let mut seen = Vec::new();
    t.expire(10_000_000, usize::MAX, |_, c| seen.push(c.real()));
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4]);
    assert!(t.is_empty());
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.index.len(), 0);
}

#[test]
fn iter_lists_live_connections() {
    let mut t = table(100);
    let ids: Vec<_> = (0..10).map(|i| t.insert(&tcp(i), 0).unwrap()).collect();
    t.remove(ids[4]).unwrap();
    let listed: Vec<_> = t.iter().map(|(id, c)| (id, c.real())).collect();
    assert_eq!(listed.len(), 9);
    assert!(listed.iter().all(|&(id, real)| ids[real as usize] == id && real != 4));
}

/// Walks a connection through `steps` and checks state, activity and the re-armed deadline.
fn walk(t: &mut ConnTable, id: ConnId, now: &mut Millis, steps: &[(Dir, u8, TcpState)]) {
    for &(dir, flags, want) in steps {
        // Tick-aligned times make the re-armed deadline exactly now + timeout.
        *now += 16 * TICK_MS;
        let ch = t.update_tcp(id, dir, flags, *now);
        assert_eq!(ch.new, want, "{:?} --{dir:?} {flags:#04x}-->", ch.old);
        let c = t.get(id).unwrap();
        assert_eq!(c.state(), want);
        assert_eq!(c.is_counted_active(), want.is_active());
        // Deadlines round up to the next tick boundary.
        let left = c.expires_in(*now) - t.timeouts().tcp(want);
        assert!(left < TICK_MS, "timeout of {} off by {left}", want.name());
    }
}

#[test]
fn lvs_sequences_through_the_table() {
    use Dir::*;
    use TcpState as S;
    let mut t = table(100);
    let mut now = 0;
    // Client closes first.
    let a = t.insert(&tcp(1), now).unwrap();
    walk(
        &mut t,
        a,
        &mut now,
        &[
            (Original, SYN, S::SynRecv),
            (Reply, SYN | ACK, S::SynRecv),
            (Original, ACK, S::Established),
            (Reply, ACK | PSH, S::Established),
            (Original, FIN | ACK, S::CloseWait),
            (Reply, FIN | ACK, S::TimeWait),
            (Original, ACK, S::TimeWait),
        ],
    );
    // Server closes first, with the client lingering in FIN_WAIT.
    let b = t.insert(&tcp(2), now).unwrap();
    walk(
        &mut t,
        b,
        &mut now,
        &[
            (Original, SYN, S::SynRecv),
            (Reply, SYN | ACK, S::SynRecv),
            (Original, ACK, S::Established),
            (Reply, FIN | ACK, S::FinWait),
            (Original, FIN | ACK, S::TimeWait),
        ],
    );
    // RST from either side after establishment.
    let c = t.insert(&tcp(3), now).unwrap();
    walk(
        &mut t,
        c,
        &mut now,
        &[(Original, SYN, S::SynRecv), (Original, ACK, S::Established), (Reply, RST, S::Close)],
    );
    let d = t.insert(&tcp(4), now).unwrap();
    walk(
        &mut t,
        d,
        &mut now,
        &[(Original, SYN, S::SynRecv), (Original, ACK, S::Established), (Original, RST | ACK, S::Close)],
    );
    // Real server opens (SYN_SENT), LAST_ACK via input FIN in LAST_ACK's column.
    let e = t.insert(&tcp(5), now).unwrap();
    walk(&mut t, e, &mut now, &[(Reply, SYN, S::SynSent), (Original, SYN | ACK, S::Established)]);
    let f = t.insert(&tcp(6), now).unwrap();
    walk(
        &mut t,
        f,
        &mut now,
        &[(Original, SYN, S::SynRecv), (Original, RST, S::SynRecv), (Reply, RST, S::Close)],
    );
    // Activity transitions reported to the caller.
    let g = t.insert(&tcp(7), now).unwrap();
    assert!(!t.update_tcp(g, Original, SYN, now).became_active());
    assert!(t.update_tcp(g, Original, ACK, now).became_active());
    assert!(!t.update_tcp(g, Reply, ACK, now).changed());
    assert!(t.update_tcp(g, Reply, FIN, now).became_inactive());
}

#[test]
fn each_timeout_is_applied() {
    // Distinct values so a wrong mapping cannot pass by accident; multiples of the tick so the
    // deadline is exact.
    let to = Timeouts {
        none: 64,
        established: 128,
        syn_sent: 192,
        syn_recv: 256,
        fin_wait: 320,
        time_wait: 384,
        close: 448,
        close_wait: 512,
        last_ack: 576,
        listen: 640,
        synack: 704,
        udp: 768,
    };
    let mut t = ConnTable::new(100, to, 0);
    let now = 64 * 1000;
    // NONE on insert; UDP on insert and touch.
    let id = t.insert(&tcp(1), now).unwrap();
    assert_eq!(t.get(id).unwrap().expires_in(now), 64);
    let u = t.insert(&new_conn(2, Proto::Udp), now).unwrap();
    assert_eq!(t.get(u).unwrap().expires_in(now), 768);
    t.touch(u, now + 64);
    assert_eq!(t.get(u).unwrap().expires_in(now + 64), 768);
    // Each reachable TCP state: drive the transition, check the deadline.
    use Dir::*;
    use TcpState as S;
    let cases: &[(&[(Dir, u8)], S)] = &[
        (&[(Original, SYN)], S::SynRecv),
        (&[(Original, SYN), (Original, ACK)], S::Established),
        (&[(Reply, SYN)], S::SynSent),
        (&[(Original, SYN), (Original, ACK), (Reply, FIN)], S::FinWait),
        (&[(Original, SYN), (Original, FIN)], S::TimeWait),
        (&[(Original, RST)], S::Close),
        (&[(Original, SYN), (Original, ACK), (Original, FIN)], S::CloseWait),
    ];
    for (i, (steps, want)) in cases.iter().enumerate() {
        let id = t.insert(&tcp(100 + i as u32), now).unwrap();
        for &(dir, flags) in *steps {
            t.update_tcp(id, dir, flags, now);
        }
        let c = t.get(id).unwrap();
        assert_eq!(c.state(), *want);
        assert_eq!(c.expires_in(now), to.tcp(*want));
        // Touch keeps the state's timeout.
        t.touch(id, now + 64);
        assert_eq!(t.get(id).unwrap().expires_in(now + 64), to.tcp(*want));
    }
    // LAST_ACK, LISTEN and SYNACK are not reachable from NONE in LVS's normal table; their values
    // are covered by state::tests::default_timeouts_are_lvs and Timeouts::tcp.
    for s in [S::LastAck, S::Listen, S::SynAck] {
        assert!(to.tcp(s) > 0);
    }
}

#[test]
fn expires_at_deadline_not_before() {
    let mut t = table(100);
    let start = 1_000_003; // deliberately not on a tick boundary
    let id = t.insert(&new_conn(1, Proto::Udp), start).unwrap();
    let due = start + t.get(id).unwrap().expires_in(start);
    assert!(due >= start + 300_000 && due < start + 300_000 + TICK_MS);
    assert_eq!(t.expire(start + 299_999, usize::MAX, |_, _| panic!("early")), 0);
    assert_eq!(t.expire(due - 1, usize::MAX, |_, _| panic!("early")), 0);
    let mut got = None;
    assert_eq!(t.expire(due, usize::MAX, |_, c| got = Some(c.real())), 1);
    assert_eq!(got, Some(1));
    assert!(t.get(id).is_none() && t.is_empty());
}

#[test]
fn refreshed_connections_do_not_expire_early() {
    let mut t = table(1000);
    let ids: Vec<_> = (0..100).map(|i| t.insert(&new_conn(i, Proto::Udp), 0).unwrap()).collect();
    // Keep the even ones alive with traffic every 100 s for 20 minutes.
    let mut now = 0;
    let mut expired = Vec::new();
    while now < 1_200_000 {
        now += 100_000;
        for &id in ids.iter().step_by(2) {
            t.touch(id, now);
        }
        t.expire(now, usize::MAX, |_, c| expired.push(c.real()));
    }
    expired.sort();
    assert_eq!(expired, (0..100).filter(|i| i % 2 == 1).collect::<Vec<_>>());
    assert_eq!(t.len(), 50);
    // Once traffic stops they go exactly one timeout later.
    assert_eq!(t.expire(now + 299_999, usize::MAX, |_, _| panic!("early")), 0);
    assert_eq!(t.expire(now + 300_000 + TICK_MS, usize::MAX, |_, _| {}), 50);
}

#[test]
fn shorter_timeout_moves_the_deadline_earlier() {
    let mut t = table(100);
    let id = t.insert(&tcp(1), 0).unwrap();
    t.update_tcp(id, Dir::Original, SYN, 0);
    t.update_tcp(id, Dir::Original, ACK, 0); // ESTABLISHED, 900 s
    t.update_tcp(id, Dir::Reply, RST, 1_000); // CLOSE, 10 s
    assert_eq!(t.expire(10_999, usize::MAX, |_, _| panic!("early")), 0);
    // Due at 11 s, noticed at the next tick boundary.
    assert_eq!(t.expire(11_000 + TICK_MS, usize::MAX, |_, _| {}), 1);
}

#[test]
fn timeouts_longer_than_a_wheel_round() {
    let round = SLOTS as Millis * TICK_MS;
    let to = Timeouts { udp: 3 * round + 5_000, ..Timeouts::default() };
    let mut t = ConnTable::new(100, to, 0);
    t.insert(&new_conn(1, Proto::Udp), 0).unwrap();
    let mut now = 0;
    while now < to.udp - TICK_MS {
        now += 10_000.min(to.udp - TICK_MS - now);
        assert_eq!(t.expire(now, usize::MAX, |_, _| panic!("early at {now}")), 0);
    }
    assert_eq!(t.expire(to.udp + TICK_MS, usize::MAX, |_, _| {}), 1);
    // Lazy re-queueing costs one visit per round, not per tick.
    assert_eq!(t.stats().timer_visits, 4);
}

#[test]
fn expire_budget_resumes() {
    let mut t = table(2000);
    for i in 0..1000 {
        t.insert(&new_conn(i, Proto::Udp), 0).unwrap();
    }
    let mut seen = vec![false; 1000];
    let mut calls = 0;
    loop {
        let n = t.expire(300_000 + TICK_MS, 64, |_, c| {
            assert!(!seen[c.real() as usize]);
            seen[c.real() as usize] = true;
        });
        calls += 1;
        assert!(n <= 64);
        if n == 0 {
            break;
        }
    }
    assert_eq!(calls, 1000 / 64 + 2);
    assert!(seen.iter().all(|&s| s) && t.is_empty());
    // A budget-interrupted slot must not lose entries that were refreshed or removed meanwhile.
    let ids: Vec<_> = (0..100).map(|i| t.insert(&new_conn(i, Proto::Udp), 400_000).unwrap()).collect();
    assert_eq!(t.expire(700_000 + TICK_MS, 10, |_, _| {}), 10);
    for &id in &ids[..] {
        if let Some(c) = t.get(id) {
            let r = c.real();
            if r % 3 == 0 {
                t.touch(id, 700_000);
            } else if r % 3 == 1 {
                t.remove(id).unwrap();
            }
        }
    }
    let mut rest = Vec::new();
    t.expire(700_000 + TICK_MS, usize::MAX, |_, c| rest.push(c.real()));
    assert!(rest.iter().all(|r| r % 3 == 2));
    assert!(t.iter().all(|(_, c)| c.real() % 3 == 0));
    let left = t.len();
    assert_eq!(t.expire(1_000_000, usize::MAX, |_, c| assert_eq!(c.real() % 3, 0)), left);
}

#[test]
fn expire_work_is_o_expired() {
    let mut t = table(100_000);
    let cap = t.capacity();
    for i in 0..100_000u32 {
        let id = t.insert(&tcp(i), 0).unwrap();
        t.update_tcp(id, Dir::Original, SYN, 0);
        t.update_tcp(id, Dir::Original, ACK, 0);
    }
    assert!(t.len() == 100_000 && cap >= 100_000);
    let base = t.stats().timer_visits;
    // Run the wheel every 5 ms for 10 minutes of simulated time: nothing is due.
    let mut now = 0;
    while now < 600_000 {
        now += 5;
        assert_eq!(t.expire(now, 1_000, |_, _| panic!("early")), 0);
    }
    assert_eq!(t.stats().timer_visits, base, "the wheel looked at connections that were not due");
    // Refreshing all of them costs one visit each when the old deadline fires, then nothing.
    for i in 0..100_000u32 {
        let (id, _) = t.lookup(&tcp(i).client).unwrap();
        t.update_tcp(id, Dir::Reply, ACK, now);
    }
    assert_eq!(t.expire(900_000 + TICK_MS, usize::MAX, |_, _| panic!("early")), 0);
    assert_eq!(t.stats().timer_visits, base + 100_000);
    assert_eq!(t.expire(now + 899_999, usize::MAX, |_, _| panic!("early")), 0);
    assert_eq!(t.stats().timer_visits, base + 100_000);
    assert_eq!(t.expire(now + 900_000 + TICK_MS, usize::MAX, |_, _| {}), 100_000);
    assert_eq!(t.stats().timer_visits, base + 200_000);
}

#[test]
fn long_idle_gap_is_caught_up() {
    let mut t = table(100);
    for i in 0..10 {
        t.insert(&new_conn(i, Proto::Udp), 0).unwrap();
    }
    // Hours without calling expire, then one call: all due, one round of slots scanned.
    assert_eq!(t.expire(10 * 3_600_000, usize::MAX, |_, _| {}), 10);
}

#[test]
fn churn_never_grows_the_index() {
    let mut t = table(3_000);
    let cap = t.capacity();
    let bytes = t.memory_per_conn();
    // Keep the table full and replace one random connection per step.
    let mut live: Vec<u32> = (0..cap as u32).collect();
    for &i in &live {
        t.insert(&tcp(i), 0).unwrap();
    }
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for next in cap as u32..cap as u32 + 200_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng % live.len() as u64) as usize;
        let (id, _) = t.lookup(&tcp(live[k]).client).unwrap();
        t.remove(id).unwrap();
        t.insert(&tcp(next), 0).unwrap();
        live[k] = next;
    }
    assert_eq!(t.len(), cap);
    assert_eq!(t.memory_per_conn(), bytes);
    // No tombstones: after 200k replacements the overflow counts are exactly what the live refs
    // need, as if the table had been filled fresh.
    t.check_index();
    for &i in &live {
        let (id, dir) = t.lookup(&tcp(i).reply_key()).unwrap();
        assert_eq!((t.get(id).unwrap().real(), dir), (i, Dir::Reply));
    }
}

/// Random operations against a plain model: every connection expires in the first `expire` call
/// at or after its deadline, never earlier, and lookups agree.
#[test]
fn model_check() {
    let mut t = table(500);
    let cap = t.capacity();
    let mut model: BTreeMap<u32, (ConnId, Millis)> = BTreeMap::new(); // real -> (id, due ms)
    let mut rng = 12345u64;
    let mut rand = move |n: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let mut now: Millis = 5_000_000;
    let mut next = 0u32;
    for _ in 0..50_000 {
        now += rand(3000);
        match rand(10) {
            0..=3 if model.len() < cap => {
                let n = new_conn(next, if rand(2) == 0 { Proto::Tcp } else { Proto::Udp });
                let id = t.insert(&n, now).unwrap();
                let due = now + t.get(id).unwrap().expires_in(now);
                model.insert(next, (id, due));
                next += 1;
            }
            4..=6 if !model.is_empty() => {
                let k = *model.keys().nth(rand(model.len() as u64) as usize).unwrap();
                let (id, _) = model[&k];
                let c = *t.get(id).unwrap();
                assert_eq!(c.real(), k);
                if c.proto() == Proto::Tcp {
                    let dir = if rand(2) == 0 { Dir::Original } else { Dir::Reply };
                    let flags = [SYN, ACK, FIN, RST, ACK | PSH][rand(5) as usize];
                    t.update_tcp(id, dir, flags, now);
                } else {
                    t.touch(id, now);
                }
                let due = now + t.get(id).unwrap().expires_in(now);
                model.insert(k, (id, due));
            }
            7 if !model.is_empty() => {
                let k = *model.keys().nth(rand(model.len() as u64) as usize).unwrap();
                let (id, _) = model.remove(&k).unwrap();
                assert_eq!(t.remove(id).unwrap().real(), k);
            }
            _ => {
                let mut gone = Vec::new();
                t.expire(now, usize::MAX, |_, c| gone.push(c.real()));
                for k in &gone {
                    let (_, due) = model.remove(k).expect("expired twice or unknown");
                    assert!(due <= now, "expired {} ms early", due - now);
                }
                assert!(model.values().all(|&(_, due)| due > now), "overdue connection survived");
            }
        }
        assert_eq!(t.len(), model.len());
    }
    for (&k, &(id, _)) in &model {
        let n = t.get(id).unwrap();
        assert_eq!(n.real(), k);
        assert_eq!(t.lookup(&n.client_key()), Some((id, Dir::Original)));
        assert_eq!(t.lookup(&n.reply_key()), Some((id, Dir::Reply)));
    }
    assert_eq!(t.index.len(), 2 * model.len());
}
