//! Fixtures for several workers sharing the ports, as RSS makes them: any packet may arrive at any
//! worker. The harness delivers a frame to a chosen worker, then shuttles hand-offs between the
//! workers until none is left, as the daemon's rings do, and checks every worker's accounting.
use super::*;
use crate::conn::owner;

pub(super) struct Mh {
    pub(super) ws: Vec<Worker<VecPool>>,
    stats: Vec<Arc<Stats>>,
    outs: Vec<Outbox<VecFrame>>,
    nports: usize,
    now: Millis,
}

/// What left the gateway: (worker, port, frame).
type Sent = Vec<(usize, usize, Vec<u8>)>;

impl Mh {
    fn new(s: &Setup) -> Mh {
        let n = s.workers as usize;
        let stats: Vec<Arc<Stats>> = (0..n).map(|_| Arc::new(Stats::default())).collect();
        let ws: Vec<Worker<VecPool>> =
            (0..n).map(|i| Worker::new(s, i as u16, VecPool::default(), stats[i].clone())).collect();
        let outs = ws.iter().map(|w| Outbox::with_workers(all_ports(s), n, w.outbox_capacity(32))).collect();
        Mh { ws, stats, outs, nports: all_ports(s), now: 1_000 }
    }

    /// Every worker has learned clients 1-3 and real servers 1-3 (each neighbour ARPed each worker).
    pub(super) fn resolved(s: &Setup) -> Mh {
        let mut m = Mh::new(s);
        for w in 0..m.ws.len() {
            for n in 1..=3 {
                m.deliver(w, &arp_request((client_mac(n), client(n)), GW0), 0);
            }
            for i in 1..=3 {
                m.deliver(w, &arp_request((rs_mac(i), rs(i)), GW1), 1);
            }
        }
        m
    }

    fn ev(&self, w: usize, e: Event) -> u64 {
        self.stats[w].events(e)
    }

    pub(super) fn total_drops(&self, r: DropReason) -> u64 {
        self.stats.iter().map(|s| s.drops(r)).sum()
    }

    /// Delivers `frame` to worker `w` on `in_port`, runs the hand-offs to completion, returns what
    /// was sent, and checks that every worker's accounting balances.
    pub(super) fn deliver(&mut self, w: usize, frame: &[u8], in_port: usize) -> Sent {
        let now = self.now;
        self.ws[w].process(VecFrame::from_bytes(frame), in_port, now, &mut self.outs[w]);
        let mut sent = Vec::new();
        for _round in 0..=self.ws.len() {
            let mut moved = false;
            for from in 0..self.ws.len() {
                for to in 0..self.ws.len() {
                    let lane: Vec<(VecFrame, u32)> = self.outs[from].handoff(to).drain(..).collect();
                    for (f, tag) in lane {
                        assert_ne!(from, to, "a worker handed a frame to itself");
                        moved = true;
                        self.ws[to].process_handoff(f, tag, now, &mut self.outs[to]);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for (i, o) in self.outs.iter_mut().enumerate() {
            assert!((0..self.ws.len()).all(|t| o.handoff(t).is_empty()), "hand-offs still circulating");
            for p in 0..self.nports {
                sent.extend(o.port(p).drain(..).map(|f| (i, p, f.data().to_vec())));
            }
        }
        for (i, (w, st)) in self.ws.iter().zip(&self.stats).enumerate() {
            st.set(Gauge::NeighHeld, w.neigh_held() as u64);
            st.set(Gauge::SynproxyHeld, w.synproxy_held() as u64);
            st.set(Gauge::FragHeld, w.frag_held() as u64);
            assert_eq!(st.accounting_gap(), 0, "worker {i}: accounting does not balance: {:?}", st.nonzero());
        }
        sent
    }
}

fn two_workers() -> Setup {
    setup_with(|s| s.workers = 2)
}

/// The one frame sent, as (worker, port, bytes).
fn one(sent: Sent) -> (usize, usize, Vec<u8>) {
    assert_eq!(sent.len(), 1, "want exactly one frame out, got {}", sent.len());
    sent.into_iter().next().unwrap()
}

#[test]
fn replies_reach_the_owning_worker_from_any_worker() {
    let s = two_workers();
    let mut m = Mh::resolved(&s);
    // Each client flow lands on one worker (RSS is stable per flow); its reply lands on the other.
    for (w, n, cport) in [(0usize, 1u8, 40000u16), (1, 2, 40001), (0, 3, 40002), (1, 1, 40003)] {
        let cseq = 7 + u32::from(cport);
        let syn = from_client(n).tcp((client(n), cport), (VIP, 80), SYN, (cseq, 0), &SYN_OPTS, &[]);
        let (sw, sp, out) = one(m.deliver(w, &syn, 0));
        assert_eq!((sw, sp), (w, 1), "the SYN leaves from the worker that received it, to the RS side");
        verify_checksums(&out);
        let (lport, _) = ports_of(&out);
        assert_eq!(owner(lport, 2) as usize, w, "worker {w} picked lport {lport} outside its slice");
        let i = rs_index(ip_of(&out).dst_addr());
        let other = 1 - w;
        let handed = m.ev(other, Event::HandoffOut);
        let synack = from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (900, cseq + 1), &SYNACK_OPTS, &[]);
        let (rw, rp, got) = one(m.deliver(other, &synack, 1));
        assert_eq!((rw, rp), (w, 0), "the reply is forwarded by the owner, to the client side");
        let want = to_client(n).ttl(63).tcp(
            (VIP, 80),
            (client(n), cport),
            SYN | ACK,
            (900, cseq + 1),
            &SYNACK_OPTS,
            &[],
        );
        assert_frame_eq(&got, &want);
        assert_eq!(m.ev(other, Event::HandoffOut), handed + 1);
        // The same reply arriving at the owner itself is not handed anywhere.
        let (rw, _, _) = one(m.deliver(w, &synack, 1));
        assert_eq!(rw, w);
        assert_eq!(m.ev(other, Event::HandoffOut), handed + 1);
    }
    assert_eq!(m.total_drops(DropReason::LipNoConn), 0);
    assert_eq!(m.ev(0, Event::HandoffIn) + m.ev(1, Event::HandoffIn), 4);
    assert_eq!(m.ws[0].conns().len(), 2);
    assert_eq!(m.ws[1].conns().len(), 2);

    // UDP both ways, the answer on the wrong worker.
    let q = from_client(2).udp(client(2), 5000, VIP, 53, b"query", true);
    let (w, _, out) = one(m.deliver(1, &q, 0));
    assert_eq!(w, 1);
    let (lport, _) = ports_of(&out);
    let a = from_rs(1).udp(rs(1), 5353, LIP, lport, b"answer", true);
    let (w, p, got) = one(m.deliver(0, &a, 1));
    assert_eq!((w, p), (1, 0));
    assert_frame_eq(&got, &to_client(2).ttl(63).udp(VIP, 53, client(2), 5000, b"answer", true));
}

#[test]
fn a_reply_to_an_unknown_local_port_is_dropped_once_by_its_owner() {
    let s = two_workers();
    let mut m = Mh::resolved(&s);
    for lport in [2000u16, 2001] {
        let stray = from_rs(1).tcp((rs(1), 80), (LIP, lport), ACK, (1, 1), &[], &[]);
        for w in 0..2 {
            let before = m.stats[owner(lport, 2) as usize].drops(DropReason::LipNoConn);
            assert!(m.deliver(w, &stray, 1).is_empty());
            assert_eq!(m.stats[owner(lport, 2) as usize].drops(DropReason::LipNoConn), before + 1);
        }
    }
    assert_eq!(m.total_drops(DropReason::LipNoConn), 4);
}

#[test]
fn an_arp_reply_reaches_the_worker_that_asked() {
    for workers in [2u16, 3, 4] {
        let s = setup_with(|s| s.workers = workers);
        let mut m = Mh::new(&s);
        let asker = (workers - 1) as usize;
        m.deliver(asker, &arp_request((client_mac(1), client(1)), GW0), 0);
        // The SYN waits on the asking worker, which sends the ARP request.
        let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (9, 0), &SYN_OPTS, &[]);
        let sent = m.deliver(asker, &syn, 0);
        let (w, p, req) = one(sent);
        assert_eq!((w, p), (asker, 1));
        assert!(is_arp_request_for(&req, M_GW1, GW1, rs(1)));
        // The reply arrives at worker 0 (RSS puts all ARP on one queue): it travels the chain.
        let reply = arp(ArpOperation::Reply, rs_mac(1), M_GW1, (rs_mac(1), rs(1)), (M_GW1, GW1));
        let (w, p, got) = one(m.deliver(0, &reply, 1));
        assert_eq!((w, p), (asker, 1), "{workers} workers: the held SYN leaves from the asker");
        assert_eq!(&got[0..6], &rs_mac(1).0);
        assert_eq!(m.ev(asker, Event::ArpLearned), 1);
        let consumed: u64 = (0..workers as usize).map(|w| m.ev(w, Event::ArpConsumed)).sum();
        assert_eq!(consumed, 1, "the reply is consumed once, at the end of its chain");
        assert_eq!(m.total_drops(DropReason::ArpUnsolicited), 0);
        // A reply nobody asked for goes round once and is dropped once.
        let stray = arp(ArpOperation::Reply, rs_mac(2), M_GW1, (rs_mac(2), rs(2)), (M_GW1, GW1));
        assert!(m.deliver(1, &stray, 1).is_empty());
        assert_eq!(m.total_drops(DropReason::ArpUnsolicited), 1);
    }
}

#[test]
fn icmp_errors_find_the_worker_with_the_connection() {
    let s = setup_with(|s| s.workers = 3);
    let mut m = Mh::resolved(&s);
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (9, 0), &SYN_OPTS, &[]);
    let (w, _, sent_syn) = one(m.deliver(2, &syn, 0));
    assert_eq!(w, 2);
    let (lport, _) = ports_of(&sent_syn);
    let i = rs_index(ip_of(&sent_syn).dst_addr());
    // From the RS side, quoting LIP:lport: straight to the owner of lport.
    let err =
        from_rs(i).icmp_error(rs(i), LIP, icmp::msg::DEST_UNREACHABLE, icmp::unreach::PORT, &sent_syn[ETH..]);
    let (w, p, got) = one(m.deliver(0, &err, 1));
    assert_eq!((w, p), (2, 0));
    verify_checksums(&got);
    // From the client side, quoting VIP -> client: nothing names the owner, so the chain asks.
    let synack = from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (900, 10), &SYNACK_OPTS, &[]);
    let (_, _, to_c) = one(m.deliver(2, &synack, 1));
    let err = from_client(1).icmp_error(client(1), VIP, icmp::msg::DEST_UNREACHABLE, 1, &to_c[ETH..]);
    for start in 0..3 {
        let (w, p, got) = one(m.deliver(start, &err, 0));
        assert_eq!((w, p), (2, 1), "from worker {start}");
        verify_checksums(&got);
    }
    // About a connection nobody has: every worker looks once, one drop.
    let ghost = to_client(1).tcp((VIP, 80), (client(1), 41000), SYN | ACK, (1, 1), &[], &[]);
    let err = from_client(1).icmp_error(client(1), VIP, icmp::msg::DEST_UNREACHABLE, 1, &ghost[ETH..]);
    assert!(m.deliver(1, &err, 0).is_empty());
    assert_eq!(m.total_drops(DropReason::IcmpUnknownConn), 1);
}

#[test]
fn one_worker_never_hands_off() {
    let s = setup();
    let mut m = Mh::resolved(&s);
    let syn = from_client(1).tcp((client(1), 40000), (VIP, 80), SYN, (9, 0), &SYN_OPTS, &[]);
    let (_, _, out) = one(m.deliver(0, &syn, 0));
    let (lport, _) = ports_of(&out);
    let synack = from_rs(1).tcp(
        (rs(rs_index(ip_of(&out).dst_addr())), 80),
        (LIP, lport),
        SYN | ACK,
        (1, 10),
        &[],
        &[],
    );
    m.deliver(0, &synack, 1);
    assert_eq!(m.ev(0, Event::HandoffOut), 0);
}

#[test]
fn thresholds_are_split_between_workers() {
    // One real with an upper threshold of 3 connections, shared by 2 workers: each takes at most 2.
    let s = setup_with(|s| {
        s.workers = 2;
        s.services[0].reals = vec![RealSetup { u_threshold: 3, ..real(1, 80) }];
    });
    assert_eq!(crate::service::worker_share(3, 2), 2);
    assert_eq!(crate::service::worker_share(0, 2), 0, "no threshold stays none");
    assert_eq!(crate::service::worker_share(1, 64), 1);
    let mut m = Mh::resolved(&s);
    for w in 0..2 {
        for k in 0..3u16 {
            let syn = from_client(1).tcp(
                (client(1), 50000 + 10 * w as u16 + k),
                (VIP, 80),
                SYN,
                (1, 0),
                &SYN_OPTS,
                &[],
            );
            let sent = m.deliver(w, &syn, 0);
            if k < 2 {
                assert_eq!(sent.len(), 1, "worker {w}: connection {k} is within its share");
            } else {
                assert!(sent.is_empty(), "worker {w}: a third connection exceeds its share");
                assert_eq!(m.stats[w].drops(DropReason::NoRealServer), 1);
            }
        }
    }
    let total: usize = m.ws.iter().map(|w| w.conns().len()).sum();
    assert_eq!(total, 4, "at most threshold + workers - 1 = 4 in all");
}

#[test]
fn nat_connections_live_with_the_clients_owner_and_every_reply_finds_them() {
    use crate::handoff::client_owner;
    let s = setup_with(|s| {
        s.workers = 2;
        s.services[0].reals = (1..=3).map(|i| RealSetup { xlat: Xlat::Nat, ..real(i, 80) }).collect();
        s.services[0].laddrs.clear();
    });
    let mut m = Mh::resolved(&s);
    let mut seen_owner = [false; 2];
    for (k, cport) in (40000u16..40016).enumerate() {
        let n = 1 + (k % 3) as u8;
        let owner = client_owner(client(n), cport, 2) as usize;
        seen_owner[owner] = true;
        // RSS may put the client's flow on either worker; the SYN is handled by the owner.
        let w = k % 2;
        let syn = from_client(n).tcp((client(n), cport), (VIP, 80), SYN, (7, 0), &SYN_OPTS, &[]);
        let (sw, sp, out) = one(m.deliver(w, &syn, 0));
        assert_eq!((sw, sp), (owner, 1), "the SYN is forwarded by the client's owner");
        let i = rs_index(ip_of(&out).dst_addr());
        // The reply is hashed on its own tuple: deliver it to either worker.
        for (rw, seq) in [(1 - w, 900u32), (w, 901)] {
            let seg = if seq == 900 { SYN | ACK } else { ACK };
            let r = from_rs(i).tcp((rs(i), 80), (client(n), cport), seg, (seq, 8), &[], &[]);
            let (fw, fp, got) = one(m.deliver(rw, &r, 1));
            assert_eq!((fw, fp), (owner, 0), "the reply is forwarded by the owner");
            let want = to_client(n).ttl(63).tcp((VIP, 80), (client(n), cport), seg, (seq, 8), &[], &[]);
            assert_frame_eq(&got, &want);
        }
        // The client's next segment, on the other worker this time.
        let a = from_client(n).tcp((client(n), cport), (VIP, 80), ACK, (8, 901), &[], &[]);
        let (aw, _, _) = one(m.deliver(1 - w, &a, 0));
        assert_eq!(aw, owner);
    }
    assert!(seen_owner.iter().all(|&b| b), "both workers own some clients");
    assert_eq!(m.total_drops(DropReason::NatNoConn), 0);
    assert_eq!(m.total_drops(DropReason::TcpNoConn), 0);
    let conns: usize = m.ws.iter().map(|w| w.conns().len()).sum();
    assert_eq!(conns, 16, "one connection per flow, on its owner only");
    // A reply nobody has: handed to the owner, which drops it by reason.
    let stray = from_rs(1).tcp((rs(1), 80), (client(1), 50000), ACK, (1, 1), &[], &[]);
    assert!(m.deliver(0, &stray, 1).is_empty());
    assert!(m.deliver(1, &stray, 1).is_empty());
    assert_eq!(m.total_drops(DropReason::NatNoConn), 2);
}
