//! The burst pipeline against the one-packet path: mixed bursts (new connections, established
//! traffic both ways, ARP, ICMP, junk, hand-offs) must have exactly the effects of their packets
//! processed one by one, and the packet accounting must balance after every burst.
use super::*;
use crate::conn::owner;

/// Two workers built alike: `one` gets each frame through `process`, `burst` gets the same frames
/// through `process_burst`.
struct Twin {
    one: H,
    burst: H,
}

impl Twin {
    fn new(s: &Setup) -> Twin {
        Twin { one: H::new(s), burst: H::new(s) }
    }

    /// Feeds `frames` (all on `in_port`) to both; checks they sent the same frames and counted the
    /// same, and that both balance. Returns what was sent.
    fn burst(&mut self, desc: &str, frames: &[Vec<u8>], in_port: usize) -> Vec<(usize, Vec<u8>)> {
        let now = self.one.now;
        for f in frames {
            self.one.w.process(VecFrame::from_bytes(f), in_port, now, &mut self.one.out);
        }
        let mut v: Vec<VecFrame> = frames.iter().map(|f| VecFrame::from_bytes(f)).collect();
        self.burst.w.process_burst(&mut v, in_port, now, &mut self.burst.out);
        assert!(v.is_empty(), "{desc}: process_burst left frames behind");
        let (a, b) = (self.one.drain(), self.burst.drain());
        assert_eq!(a.len(), b.len(), "{desc}: frames sent");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.0, y.0, "{desc}: frame {i} port");
            assert_frame_eq(&y.1, &x.1);
        }
        assert_eq!(self.one.stats.nonzero(), self.burst.stats.nonzero(), "{desc}: counters differ");
        self.one.assert_accounting(desc);
        self.burst.assert_accounting(desc);
        assert_eq!(self.one.w.conns().len(), self.burst.w.conns().len(), "{desc}: connections");
        a
    }
}

fn tcp_from_client(n: u8, cport: u16, flags: TcpFlags, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    from_client(n).tcp((client(n), cport), (VIP, 80), flags, (seq, ack), &[], data)
}

#[test]
fn mixed_bursts_match_one_by_one() {
    let s = setup();
    let mut t = Twin::new(&s);
    // Burst 1: ARP from every neighbour, new TCP and UDP flows, echo, and junk of several kinds.
    let mut b1: Vec<Vec<u8>> = Vec::new();
    for n in 1..=3 {
        b1.push(arp_request((client_mac(n), client(n)), GW0));
    }
    for cport in 1000..1012u16 {
        b1.push(from_client(1 + (cport % 3) as u8).tcp(
            (client(1 + (cport % 3) as u8), cport),
            (VIP, 80),
            SYN,
            (u32::from(cport) << 8, 0),
            &SYN_OPTS,
            &[],
        ));
    }
    // A retransmitted SYN right behind its original (1001 is client 3's): the pipeline's miss must be looked up again.
    b1.push(from_client(3).tcp((client(3), 1001), (VIP, 80), SYN, (1001 << 8, 0), &SYN_OPTS, &[]));
    b1.push(from_client(2).udp(client(2), 4000, VIP, 53, b"query", true));
    b1.push(from_client(3).icmp(client(3), VIP, icmp::msg::ECHO_REQUEST, 0, 0x0001_0001, b"ping"));
    b1.push(tcp_from_client(1, 999, ACK, 1, 1, b"no such connection"));
    b1.push(from_client(1).tcp((client(1), 5), (FOREIGN, 80), SYN, (1, 0), &[], &[]));
    b1.push(edit(tcp_from_client(1, 998, SYN, 7, 0, &[]), |v| v[ETH + 10] ^= 0xff));
    b1.push(vec![0u8; 9]);
    b1.push(Pb::new(client_mac(1), M_OTHER).udp(client(1), 1, VIP, 53, b"x", true));
    t.burst("burst 1: new flows, ARP, junk (RS unresolved: held)", &b1, 0);
    // Burst 2 on the server side: the real servers ARP for the gateway (releasing what waited),
    // then answer every SYN and the datagram.
    let mut b2: Vec<Vec<u8>> = (1..=3).map(|i| arp_request((rs_mac(i), rs(i)), GW1)).collect();
    t.burst("burst 2a: real servers resolve", &b2, 1);
    let conns: Vec<(u16, Ipv4Addr, u16, u16, Proto)> = t
        .one
        .w
        .conns()
        .iter()
        .map(|(_, c)| (c.client_addr().1, c.rs().0, c.rs().1, c.lip().1, c.proto()))
        .collect();
    assert_eq!(conns.len(), 13, "12 TCP connections and one UDP flow");
    b2.clear();
    for &(cport, rsa, rport, lport, proto) in &conns {
        let i = rs_index(rsa);
        b2.push(match proto {
            Proto::Tcp => from_rs(i).tcp(
                (rsa, rport),
                (LIP, lport),
                SYN | ACK,
                (7_000, (u32::from(cport) << 8) + 1),
                &SYNACK_OPTS,
                &[],
            ),
            Proto::Udp => from_rs(i).udp(rsa, rport, LIP, lport, b"answer", true),
        });
    }
    // A reply to a local port nobody uses, among them.
    b2.push(from_rs(1).tcp((rs(1), 80), (LIP, 2), ACK, (1, 1), &[], &[]));
    let sent = t.burst("burst 2b: replies", &b2, 1);
    assert_eq!(sent.iter().filter(|(p, _)| *p == 0).count(), 13, "every reply reached its client");
    // Burst 3 on the client side: handshake ACKs with data, FINs, and a SYN reusing a closed tuple
    // followed by data on it in the same burst.
    let mut b3 = Vec::new();
    for &(cport, _, _, _, proto) in &conns {
        if proto == Proto::Tcp {
            let n = 1 + (cport % 3) as u8;
            let seq = (u32::from(cport) << 8) + 1;
            b3.push(tcp_from_client(n, cport, ACK, seq, 7_001, &[]));
            b3.push(tcp_from_client(n, cport, ACK | PSH, seq, 7_001, b"GET / HTTP/1.0\r\n\r\n"));
        }
    }
    // 1003 is client 2's (1 + 1003 % 3).
    b3.push(tcp_from_client(2, 1003, RST | ACK, (1003 << 8) + 19, 7_001, &[]));
    b3.push(from_client(2).tcp((client(2), 1003), (VIP, 80), SYN, (0x4242, 0), &SYN_OPTS, &[]));
    b3.push(tcp_from_client(2, 1003, ACK, 0x4243, 1, b"after reuse"));
    t.burst("burst 3: data, RST, reuse", &b3, 0);
    assert_eq!(t.burst.ev(Event::ConnsReused), 1, "the RST closed the tuple; the SYN reused it");
}

#[test]
fn burst_larger_than_a_chunk_and_empty_bursts() {
    let s = setup();
    let mut t = Twin::new(&s);
    t.burst("empty", &[], 0);
    let frames: Vec<Vec<u8>> = (0..3 * crate::pipeline::CHUNK as u16 + 5)
        .map(|i| from_client(1).udp(client(1), 10_000 + i, VIP, 53, b"q", true))
        .collect();
    t.burst("three chunks and a bit", &frames, 0);
    assert_eq!(t.burst.w.conns().len(), frames.len());
}

/// Two workers: worker 0 receives a burst mixing its own replies, replies another worker owns, an
/// ARP reply and new connections; hand-offs reach the owner, and both balance.
#[test]
fn burst_with_hand_offs_balances_on_every_worker() {
    let s = setup_with(|s| s.workers = 2);
    let stats: Vec<Arc<Stats>> = (0..2).map(|_| Arc::new(Stats::default())).collect();
    let mut ws: Vec<Worker<VecPool>> =
        (0..2).map(|i| Worker::new(&s, i as u16, VecPool::default(), stats[i].clone())).collect();
    let mut outs: Vec<Outbox<VecFrame>> =
        ws.iter().map(|w| Outbox::with_workers(2, 2, w.outbox_capacity(64))).collect();
    let now = 1_000;
    let resolve = |w: &mut Worker<VecPool>, out: &mut Outbox<VecFrame>| {
        let mut v: Vec<VecFrame> =
            (1..=3).map(|n| VecFrame::from_bytes(&arp_request((client_mac(n), client(n)), GW0))).collect();
        w.process_burst(&mut v, 0, now, out);
        let mut v: Vec<VecFrame> =
            (1..=3).map(|i| VecFrame::from_bytes(&arp_request((rs_mac(i), rs(i)), GW1))).collect();
        w.process_burst(&mut v, 1, now, out);
    };
    for (w, o) in ws.iter_mut().zip(outs.iter_mut()) {
        resolve(w, o);
        o.port(0).clear();
        o.port(1).clear();
    }
    // Each worker opens connections of its own (as RSS would spread clients).
    let mut owned = Vec::new();
    for (k, cport) in (2000..2008u16).enumerate() {
        let w = k % 2;
        let mut v = vec![VecFrame::from_bytes(&tcp_from_client(1, cport, SYN, 1, 0, &[]))];
        ws[w].process_burst(&mut v, 0, now, &mut outs[w]);
        let f = outs[w].port(1).pop().expect("SYN forwarded");
        let (lport, _) = ports_of(f.data());
        assert_eq!(owner(lport, 2) as usize, w, "a worker allocates from its own slice");
        owned.push((cport, lport, rs_index(ip_of(f.data()).dst_addr())));
    }
    // Every reply lands on worker 0, with new SYNs and an unsolicited ARP reply mixed in.
    let mut v: Vec<VecFrame> = owned
        .iter()
        .map(|&(_, lport, i)| {
            VecFrame::from_bytes(&from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (9, 2), &[], &[]))
        })
        .collect();
    v.insert(
        3,
        VecFrame::from_bytes(&arp(ArpOperation::Reply, rs_mac(1), M_GW1, (rs_mac(1), rs(1)), (M_GW1, GW1))),
    );
    ws[0].process_burst(&mut v, 1, now, &mut outs[0]);
    let lane: Vec<(VecFrame, u32)> = outs[0].handoff(1).drain(..).collect();
    assert_eq!(lane.len(), 4 + 1, "worker 1's four replies and the ARP reply's chain");
    for (f, tag) in lane {
        ws[1].process_handoff(f, tag, now, &mut outs[1]);
    }
    let to_clients: usize = outs.iter_mut().map(|o| o.port(0).drain(..).count()).sum();
    assert_eq!(to_clients, 8, "every reply reached its client through its owner");
    for (i, (w, st)) in ws.iter().zip(&stats).enumerate() {
        st.set(Gauge::NeighHeld, w.neigh_held() as u64);
        st.set(Gauge::SynproxyHeld, w.synproxy_held() as u64);
        st.set(Gauge::FragHeld, w.frag_held() as u64);
        assert_eq!(st.accounting_gap(), 0, "worker {i}: {:?}", st.nonzero());
    }
    assert_eq!(stats[0].events(Event::HandoffOut), 5);
    assert_eq!(stats[1].events(Event::HandoffIn), 5);
    assert_eq!(stats.iter().map(|s| s.drops(DropReason::LipNoConn)).sum::<u64>(), 0);
}

/// DPVS's set-up order: real servers first, local addresses last. Until a local address exists,
/// a new connection is dropped and counted, and nothing is scheduled or created.
#[test]
fn service_without_local_address_drops_new_connections_by_reason() {
    let s = setup_with(|s| s.services[0].laddrs.clear());
    let mut h = H::resolved(&s);
    let syn = from_client(1).tcp((client(1), 1234), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    h.step("SYN before --add-laddr", &syn, 0, Expect::Drop(DropReason::NoLocalAddr));
    h.w.apply(&setup());
    h.step("SYN after --add-laddr", &syn, 0, tx(1, |got| assert_eq!(ip_of(got).src_addr(), LIP)));
}

/// `ipvsadm --set`: a published change of timeouts reaches a running worker; an established
/// connection takes the new timeout from its next packet on.
#[test]
fn applied_timeouts_take_effect_at_the_next_packet() {
    let s = setup();
    let mut h = H::resolved(&s);
    let fl = handshake(&mut h, &s, 1, 4321);
    let mut short = setup();
    short.conn.timeouts.established = 5_000;
    h.w.apply(&short);
    data_to_rs(&mut h, &fl);
    let (_, c) = h.w.conns().iter().next().expect("the connection");
    assert!(c.expires_in(h.now) <= 5_000 + TICK_MS, "expires in {} ms", c.expires_in(h.now));
    h.poll(h.now + 5_000 + 2 * TICK_MS);
    assert_eq!(h.w.conns().len(), 0, "expired under the new timeout");
}

/// Connection events (what connection sync will stream): one bind, each state change, one
/// release with its cause, in order; a disabled log records nothing; a full one counts what it lost.
#[test]
fn connection_events_follow_bind_state_and_release() {
    use crate::conn::bind::{ConnEvent, Release};
    use crate::conn::TcpState;
    let s = short_timeouts();
    let mut h = H::resolved(&s);
    let mut ev = Vec::new();
    assert_eq!(h.w.take_conn_events(&mut ev), 0);
    h.w.enable_conn_events(16);
    let fl = handshake(&mut h, &s, 1, 5555);
    assert_eq!(h.w.take_conn_events(&mut ev), 0);
    let id = match ev.first() {
        Some(ConnEvent::Bound(id, c)) => {
            assert_eq!(c.client_addr(), (client(1), 5555));
            assert_eq!(c.lip(), (LIP, fl.lport));
            *id
        }
        other => panic!("first event {other:?}"),
    };
    let states: Vec<(TcpState, TcpState)> = ev
        .iter()
        .filter_map(|e| match e {
            ConnEvent::State(i, a, b) if *i == id => Some((*a, *b)),
            _ => None,
        })
        .collect();
    assert_eq!(states.last().map(|s| s.1), Some(TcpState::Established), "{states:?}");
    ev.clear();
    h.poll(h.now + 24 * 3600 * 1000);
    assert_eq!(h.w.take_conn_events(&mut ev), 0);
    assert!(matches!(ev.as_slice(), [ConnEvent::Released(i, _, Release::Expired)] if *i == id), "{ev:?}");
    // A log of 1 loses the rest of a handshake's events, and says so.
    let mut h2 = H::resolved(&s);
    h2.w.enable_conn_events(1);
    handshake(&mut h2, &s, 2, 6666);
    ev.clear();
    assert!(h2.w.take_conn_events(&mut ev) > 0);
    assert!(matches!(ev.as_slice(), [ConnEvent::Bound(..)]), "{ev:?}");
}
