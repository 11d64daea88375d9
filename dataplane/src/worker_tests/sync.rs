//! Connection sync between two workers: a master's events become [`SyncOp`]s, a backup installs
//! them and then forwards the connection's packets as the master did.
use super::*;
use crate::conn::sync::{Installed, SyncError, SyncOp};
use crate::conn::{alloc_lport, LportCursor, PortSlice, TcpState};
use crate::flow::FlowKey;

/// The ops a master sends for the events logged since the last call.
fn ops(h: &mut H) -> Vec<SyncOp> {
    let mut evs = Vec::new();
    assert_eq!(h.w.take_conn_events(&mut evs), 0, "no event lost");
    let mut v = Vec::new();
    for e in &evs {
        h.w.sync_records(e, h.now, |op| v.push(op));
    }
    v
}

fn master(s: &Setup) -> H {
    let mut h = H::resolved(s);
    h.w.enable_conn_events(64);
    h
}

#[test]
fn fullnat_connection_is_installed_and_forwarded_by_the_backup() {
    let s = setup();
    let mut m = master(&s);
    let fl = handshake(&mut m, &s, 1, 41_000);
    let sent = ops(&mut m);
    // SYN_RECV is not sent (IPVS's policy), ESTABLISHED is.
    assert_eq!(sent.len(), 1, "{sent:?}");
    let SyncOp::Conn(c) = sent[0] else { panic!("{sent:?}") };
    assert_eq!((c.lip, c.lport, c.rs, c.state), (LIP, fl.lport, rs(fl.rs), TcpState::Established));
    assert_eq!(c.client.src, client(1));

    let mut b = H::resolved(&s);
    assert_eq!(b.w.sync_install(&sent[0], b.now), Ok(Installed::Created));
    assert_eq!(b.w.conns().len(), 1);
    let mut want = vec![(0, 0); 3];
    want[fl.rs as usize - 1] = (1, 0);
    assert_eq!(counts(&b), want, "installed as an active connection of its real");
    // Installing the same again updates in place.
    assert_eq!(b.w.sync_install(&sent[0], b.now), Ok(Installed::Updated));
    assert_eq!(counts(&b), want);
    // The client's next segment leaves the backup exactly as it would have left the master.
    let data =
        from_client(1).tcp((client(1), 41_000), (VIP, 80), ACK | PSH, (fl.cseq + 1, fl.sseq + 1), &[], b"x");
    let (lport, r) = (fl.lport, rs(fl.rs));
    b.step(
        "client data at the backup",
        &data,
        0,
        tx(1, move |got| {
            verify_checksums(got);
            assert_eq!((ip_of(got).src_addr(), ip_of(got).dst_addr()), (LIP, r));
            assert_eq!(ports_of(got), (lport, 80));
        }),
    );
    let reply = from_rs(fl.rs).tcp((r, 80), (LIP, lport), ACK, (fl.sseq + 1, fl.cseq + 2), &[], b"y");
    b.step(
        "real server reply at the backup",
        &reply,
        1,
        tx(0, |got| assert_eq!((ip_of(got).src_addr(), ip_of(got).dst_addr()), (VIP, client(1)))),
    );
    // The local port is out of the backup's supply for that real server.
    let mut cur = LportCursor::new(PortSlice::new(1, 0), lport, lport, lport);
    assert_eq!(alloc_lport(b.w.conns(), &mut cur, LIP, r, 80, Proto::Tcp, 8), None);

    // A state change, then the release.
    let fin =
        from_client(1).tcp((client(1), 41_000), (VIP, 80), FIN | ACK, (fl.cseq + 2, fl.sseq + 2), &[], &[]);
    m.step("client FIN at the master", &fin, 0, tx(1, |_| ()));
    let sent = ops(&mut m);
    let SyncOp::Conn(c) = sent[0] else { panic!("{sent:?}") };
    assert_eq!(c.state, TcpState::CloseWait);
    assert_eq!(b.w.sync_install(&sent[0], b.now), Ok(Installed::Updated));
    want[fl.rs as usize - 1] = (0, 1);
    assert_eq!(counts(&b), want, "moved to the inactive count");
    let id = m.w.conns().lookup(&c.client).unwrap().0;
    m.w.release(id);
    let sent = ops(&mut m);
    assert!(matches!(sent[..], [SyncOp::Release(_)]), "{sent:?}");
    assert_eq!(b.w.sync_install(&sent[0], b.now), Ok(Installed::Released));
    assert_eq!(b.w.conns().len(), 0);
    assert_eq!(counts(&b), vec![(0, 0); 3]);
    assert_eq!(b.w.sync_install(&sent[0], b.now), Ok(Installed::Unknown));
    b.assert_accounting("after sync");
}

#[test]
fn half_open_connections_are_not_sent() {
    let s = setup();
    let mut m = master(&s);
    let fl = syn(&mut m, &s, 2, 42_000);
    assert!(ops(&mut m).is_empty(), "SYN_RECV is not synced");
    let id = m.w.conns().lookup(&FlowKey {
        proto: Proto::Tcp,
        src: client(2),
        dst: VIP,
        sport: fl.cport,
        dport: 80,
    });
    m.w.release(id.unwrap().0);
    assert!(ops(&mut m).is_empty(), "nor the release of a connection never sent");
}

#[test]
fn replaced_when_the_real_differs() {
    let s = setup();
    let mut m = master(&s);
    let fl = handshake(&mut m, &s, 1, 41_000);
    let SyncOp::Conn(c) = ops(&mut m)[0] else { panic!() };
    let mut b = H::resolved(&s);
    b.w.sync_install(&SyncOp::Conn(c), b.now).unwrap();
    let other = if fl.rs == 1 { 2 } else { 1 };
    let moved = crate::conn::sync::SyncConn { rs: rs(other), lport: c.lport + 1, ..c };
    assert_eq!(b.w.sync_install(&SyncOp::Conn(moved), b.now), Ok(Installed::Replaced));
    assert_eq!(b.w.conns().len(), 1);
    let mut want = vec![(0, 0); 3];
    want[other as usize - 1] = (1, 0);
    assert_eq!(counts(&b), want);
}

#[test]
fn refuses_unknown_services_and_reals() {
    let s = setup();
    let mut m = master(&s);
    handshake(&mut m, &s, 1, 41_000);
    let SyncOp::Conn(c) = ops(&mut m)[0] else { panic!() };
    let mut b = H::resolved(&s);
    let wrong_port = crate::conn::sync::SyncConn { client: FlowKey { dport: 81, ..c.client }, ..c };
    assert_eq!(b.w.sync_install(&SyncOp::Conn(wrong_port), b.now), Err(SyncError::NoService));
    let wrong_rs = crate::conn::sync::SyncConn { rs: Ipv4Addr::new(198, 18, 1, 99), ..c };
    assert_eq!(b.w.sync_install(&SyncOp::Conn(wrong_rs), b.now), Err(SyncError::NoReal));
    assert_eq!(b.w.conns().len(), 0);
    assert_eq!(counts(&b), vec![(0, 0); 3]);
}

#[test]
fn udp_is_sent_when_bound_and_expires_on_the_synced_timeout() {
    let s = short_timeouts();
    let mut m = master(&s);
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"q", true);
    m.step("udp query", &q, 0, tx(1, |_| ()));
    let sent = ops(&mut m);
    let SyncOp::Conn(c) = sent[0] else { panic!("{sent:?}") };
    assert_eq!(c.client.proto, Proto::Udp);
    assert!((1_000..=1_000 + TICK_MS).contains(&c.timeout_ms), "the UDP timeout, to a wheel tick: {c:?}");
    let mut b = H::resolved(&s);
    b.w.sync_install(&sent[0], b.now).unwrap();
    assert_eq!(b.w.conns().len(), 1);
    let now = b.now;
    b.poll(now + 1_000 + 2 * TICK_MS);
    assert_eq!(b.w.conns().len(), 0, "expired on the backup too");
    assert_eq!(counts(&b), vec![(0, 0); 3]);
}

#[test]
fn persistence_templates_travel_with_their_connections() {
    let s = setup_with(|s| s.services[0].persistence_ms = Some(60_000));
    let mut m = master(&s);
    let fl = handshake(&mut m, &s, 1, 41_000);
    let sent = ops(&mut m);
    let [SyncOp::Conn(_), SyncOp::Template(t)] = sent[..] else { panic!("{sent:?}") };
    assert_eq!((t.client, t.rs, t.vport, t.timeout_ms), (client(1), rs(fl.rs), 80, 60_000));
    let mut b = H::resolved(&s);
    for op in &sent {
        b.w.sync_install(op, b.now).unwrap();
    }
    let real = real(fl.rs, 80).id;
    assert_eq!(b.w.persist.get(80, client(1)).map(|(r, _)| r), Some(real));
}

#[test]
fn synproxy_shift_is_carried() {
    let s = sp_setup();
    let mut m = master(&s);
    let cisn = 0x0100_0000;
    let (cookie, our_ts) = sp_syn(&mut m, 1, 46_000, cisn);
    let (i, lport) = sp_ack(&mut m, 1, 46_000, cisn, cookie, our_ts);
    assert!(ops(&mut m).is_empty(), "nothing while the real server has not answered");
    let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&0x0abc_0000u32.to_be_bytes());
    o[8..12].copy_from_slice(&0x1234_0010u32.to_be_bytes());
    let synack = from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (0x7000_0000, cisn + 1), &o, &[]);
    m.step("real server SYN-ACK", &synack, 1, tx(1, |_| ()));
    let sent = ops(&mut m);
    let SyncOp::Conn(c) = sent[0] else { panic!("{sent:?}") };
    let key = c.client;
    let mid = m.w.conns().lookup(&key).unwrap().0;
    let shift = m.w.conns().get(mid).unwrap().seq_shift();
    assert!(shift.is_some_and(|(_, ts)| ts.is_some()));
    assert_eq!(c.synproxy, shift);
    let mut b = H::resolved(&s);
    b.w.sync_install(&sent[0], b.now).unwrap();
    let bid = b.w.conns().lookup(&key).unwrap().0;
    assert_eq!(b.w.conns().get(bid).unwrap().seq_shift(), shift);
}

#[test]
fn full_table_lists_what_was_sent() {
    let s = setup_with(|s| s.services[0].persistence_ms = Some(60_000));
    let mut m = master(&s);
    handshake(&mut m, &s, 1, 41_000);
    syn(&mut m, &s, 2, 42_000);
    let sent = ops(&mut m);
    let mut table = Vec::new();
    m.w.sync_table(m.now, |op| table.push(op));
    assert_eq!(table, sent, "the established one and its template; not the half-open one");
    let mut b = H::resolved(&s);
    for op in &table {
        b.w.sync_install(op, b.now).unwrap();
    }
    assert_eq!(b.w.conns().len(), 1);
}
