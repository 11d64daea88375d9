//! Fixtures for the PROXY protocol: the header segment the gateway sends at the start of the
//! client's stream, the sequence shift both ways (data, SACK, FIN, RST), the header's
//! retransmission, server-speaks-first, SYN-proxy together with it, and the accounting invariant
//! after every packet.
use super::*;
use crate::proto::proxy::RTO_MS;
use crate::wire::proxy::{self as pp, Version};

fn pp_setup(v: Version) -> Setup {
    setup_with(|s| s.services[0].proxy_protocol = Some(v))
}

fn header(v: Version, n: u8, cport: u16) -> Vec<u8> {
    let mut b = [0u8; pp::MAX_LEN];
    let len = pp::emit_v4(v, (client(n), cport), (VIP, 80), &mut b).unwrap();
    b[..len].to_vec()
}

/// Feeds one frame; returns every frame sent, checking the accounting.
fn feed(h: &mut H, desc: &str, frame: &[u8], in_port: usize) -> Vec<(usize, Vec<u8>)> {
    let before = h.drops();
    h.w.process(VecFrame::from_bytes(frame), in_port, h.now, &mut h.out);
    let out = h.drain();
    h.assert_accounting(desc);
    assert_eq!(h.drops(), before, "{desc}: unexpected drop");
    out
}

/// The gateway's header segment toward real server `i`, from `LIP:lport`.
fn header_seg(fl: &Flow, v: Version, seq: u32, ack: u32) -> Vec<u8> {
    to_rs(fl.rs).ident(0).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        PSH | ACK,
        (seq, ack),
        &[],
        &header(v, fl.n, fl.cport),
    )
}

/// SYN and SYN-ACK of client `n` (unchanged by the PROXY protocol); the handshake ACK sends the
/// header first, then the ACK moved past it.
fn pp_open(h: &mut H, s: &Setup, v: Version, n: u8, cport: u16) -> Flow {
    let fl = syn(h, s, n, cport);
    syn_ack(h, &fl, false);
    let len = header(v, n, cport).len() as u32;
    let ack = from_client(n).tcp((client(n), cport), (VIP, 80), ACK, (fl.cseq + 1, fl.sseq + 1), &[], &[]);
    let out = feed(h, "handshake ACK", &ack, 0);
    assert_eq!(out.len(), 2, "the header segment, then the ACK");
    assert_frame_eq(&out[0].1, &header_seg(&fl, v, fl.cseq + 1, fl.sseq + 1));
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        ACK,
        (fl.cseq + 1 + len, fl.sseq + 1),
        &[],
        &[],
    );
    assert_frame_eq(&out[1].1, &want);
    assert!(out.iter().all(|(p, _)| *p == 1));
    verify_checksums(&out[0].1);
    fl
}

#[test]
fn v1_and_v2_header_then_shifted_data_both_ways() {
    for v in [Version::V1, Version::V2] {
        let s = pp_setup(v);
        let mut h = H::resolved(&s);
        let fl = pp_open(&mut h, &s, v, 1, 40000);
        let len = header(v, 1, 40000).len() as u32;
        assert_eq!(h.ev(Event::ProxyHeadersSent), 1);
        // Client data: only its sequence number moves.
        let body = b"GET / HTTP/1.1\r\n\r\n";
        let d = from_client(1).tcp(
            (client(1), 40000),
            (VIP, 80),
            PSH | ACK,
            (fl.cseq + 1, fl.sseq + 1),
            &[],
            body,
        );
        let want = to_rs(fl.rs).ttl(63).tcp(
            (LIP, fl.lport),
            (rs(fl.rs), 80),
            PSH | ACK,
            (fl.cseq + 1 + len, fl.sseq + 1),
            &[],
            body,
        );
        h.step("client data, not resent with the header", &d, 0, tx_exact(1, want));
        // The real server acknowledges header and data and answers: the client sees its own bytes
        // acknowledged, and a SACK block moves back too.
        let end = fl.cseq + 1 + len + body.len() as u32;
        let sack = |a: u32, b: u32| {
            let mut o = vec![1u8, 1, 5, 10];
            o.extend_from_slice(&a.to_be_bytes());
            o.extend_from_slice(&b.to_be_bytes());
            o
        };
        let r = from_rs(fl.rs).tcp(
            (rs(fl.rs), 80),
            (LIP, fl.lport),
            PSH | ACK,
            (fl.sseq + 1, end),
            &sack(end + 100, end + 200),
            b"hi",
        );
        let cend = fl.cseq + 1 + body.len() as u32;
        let want = to_client(1).ttl(63).tcp(
            (VIP, 80),
            (client(1), 40000),
            PSH | ACK,
            (fl.sseq + 1, cend),
            &sack(cend + 100, cend + 200),
            b"hi",
        );
        h.step("server data acknowledging the request", &r, 1, tx_exact(0, want));
        // FIN both ways and the last ACK keep the shift.
        let fin = from_client(1).tcp((client(1), 40000), (VIP, 80), FIN | ACK, (cend, fl.sseq + 3), &[], &[]);
        let want = to_rs(fl.rs).ttl(63).tcp(
            (LIP, fl.lport),
            (rs(fl.rs), 80),
            FIN | ACK,
            (end, fl.sseq + 3),
            &[],
            &[],
        );
        h.step("client FIN", &fin, 0, tx_exact(1, want));
        let fin =
            from_rs(fl.rs).tcp((rs(fl.rs), 80), (LIP, fl.lport), FIN | ACK, (fl.sseq + 3, end + 1), &[], &[]);
        let want = to_client(1).ttl(63).tcp(
            (VIP, 80),
            (client(1), 40000),
            FIN | ACK,
            (fl.sseq + 3, cend + 1),
            &[],
            &[],
        );
        h.step("server FIN", &fin, 1, tx_exact(0, want));
        // Nothing is resent: the real server acknowledged the header.
        let out = h.poll(h.now + 10 * RTO_MS);
        assert!(out.is_empty(), "{v:?}: no resend after the acknowledgement");
        assert_eq!(h.ev(Event::ProxyHeaderRetransmits), 0);
    }
}

#[test]
fn a_lost_header_is_resent_by_the_timer_until_acknowledged() {
    let v = Version::V2;
    let s = pp_setup(v);
    let mut h = H::resolved(&s);
    let fl = pp_open(&mut h, &s, v, 2, 40001);
    // The client's first data (at the start of the stream, before any acknowledgement) is only
    // shifted: the header already went out and its timer holds it.
    let d =
        from_client(2).tcp((client(2), 40001), (VIP, 80), PSH | ACK, (fl.cseq + 1, fl.sseq + 1), &[], b"x");
    h.step(
        "data at the start",
        &d,
        0,
        tx(1, move |got| assert_eq!(tcp_of(got).seq_number(), fl.cseq + 1 + 28)),
    );
    let t0 = h.now;
    assert!(h.poll(t0 + RTO_MS - 1).is_empty(), "not due yet");
    // The real server's ACK only of the handshake (inside nothing): the client sees its start.
    let a = from_rs(fl.rs).tcp((rs(fl.rs), 80), (LIP, fl.lport), ACK, (fl.sseq + 1, fl.cseq + 1), &[], &[]);
    let want =
        to_client(2).ttl(63).tcp((VIP, 80), (client(2), 40001), ACK, (fl.sseq + 1, fl.cseq + 1), &[], &[]);
    h.step("ACK short of the header", &a, 1, tx_exact(0, want));
    let out = h.poll(t0 + RTO_MS);
    assert_eq!(out.len(), 1, "the header again");
    assert_frame_eq(&out[0].1, &header_seg(&fl, v, fl.cseq + 1, fl.sseq + 1));
    assert_eq!(h.ev(Event::ProxyHeaderRetransmits), 1);
    // Doubling: the next one 2 × RTO after the resend.
    let t1 = t0 + RTO_MS;
    assert!(h.poll(t1 + 2 * RTO_MS - 1).is_empty());
    assert_eq!(h.poll(t1 + 2 * RTO_MS).len(), 1);
    // Acknowledged (ack inside the header still maps to the start; past it, back by its length).
    let a =
        from_rs(fl.rs).tcp((rs(fl.rs), 80), (LIP, fl.lport), ACK, (fl.sseq + 1, fl.cseq + 1 + 10), &[], &[]);
    h.step(
        "ACK inside the header",
        &a,
        1,
        tx(0, move |got| assert_eq!(tcp_of(got).ack_number(), fl.cseq + 1)),
    );
    let a = from_rs(fl.rs).tcp(
        (rs(fl.rs), 80),
        (LIP, fl.lport),
        ACK,
        (fl.sseq + 1, fl.cseq + 1 + 28 + 1),
        &[],
        &[],
    );
    h.step(
        "ACK past header and data",
        &a,
        1,
        tx(0, move |got| assert_eq!(tcp_of(got).ack_number(), fl.cseq + 2)),
    );
    assert!(h.poll(h.now + 60 * RTO_MS).is_empty(), "acknowledged: no more resends");
    assert_eq!(h.ev(Event::ProxyHeaderRetransmits), 2);
}

#[test]
fn server_speaks_first_gets_the_header_without_client_data() {
    let v = Version::V1;
    let s = pp_setup(v);
    let mut h = H::resolved(&s);
    let fl = pp_open(&mut h, &s, v, 3, 40002);
    let len = header(v, 3, 40002).len() as u32;
    // The banner acknowledges the header; the client sees an acknowledgement of nothing it sent.
    let banner = from_rs(fl.rs).tcp(
        (rs(fl.rs), 80),
        (LIP, fl.lport),
        PSH | ACK,
        (fl.sseq + 1, fl.cseq + 1 + len),
        &[],
        b"220 ready\r\n",
    );
    let want = to_client(3).ttl(63).tcp(
        (VIP, 80),
        (client(3), 40002),
        PSH | ACK,
        (fl.sseq + 1, fl.cseq + 1),
        &[],
        b"220 ready\r\n",
    );
    h.step("banner", &banner, 1, tx_exact(0, want));
    // The client's ACK of the banner, at the start of its stream: shifted, no header again.
    let a = from_client(3).tcp((client(3), 40002), (VIP, 80), ACK, (fl.cseq + 1, fl.sseq + 12), &[], &[]);
    let want = to_rs(fl.rs).ttl(63).tcp(
        (LIP, fl.lport),
        (rs(fl.rs), 80),
        ACK,
        (fl.cseq + 1 + len, fl.sseq + 12),
        &[],
        &[],
    );
    h.step("client ACK of the banner", &a, 0, tx_exact(1, want));
    // A client RST moves too (it must land in the real server's window).
    let rst = from_client(3).tcp((client(3), 40002), (VIP, 80), RST, (fl.cseq + 1, 0), &[], &[]);
    let want =
        to_rs(fl.rs).ttl(63).tcp((LIP, fl.lport), (rs(fl.rs), 80), RST, (fl.cseq + 1 + len, 0), &[], &[]);
    h.step("client RST", &rst, 0, tx_exact(1, want));
    assert_eq!(h.ev(Event::ProxyHeadersSent), 1);
}

#[test]
fn with_syn_proxy_the_header_follows_the_real_servers_handshake() {
    let v = Version::V2;
    let s = setup_with(|s| {
        s.services[0].synproxy = true;
        s.services[0].proxy_protocol = Some(v);
    });
    let mut h = H::resolved(&s);
    let cisn = 0x2000_0000;
    let (cookie, our_ts) = sp_syn(&mut h, 1, 46_000, cisn);
    let (i, lport) = sp_ack(&mut h, 1, 46_000, cisn, cookie, our_ts);
    let rs_isn: u32 = 0x7000_0000;
    let mut o = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&0x0abc_0000u32.to_be_bytes());
    o[8..12].copy_from_slice(&0x1234_0010u32.to_be_bytes());
    let synack = from_rs(i).tcp((rs(i), 80), (LIP, lport), SYN | ACK, (rs_isn, cisn + 1), &o, &[]);
    let out = feed(&mut h, "real server SYN-ACK", &synack, 1);
    // The header (acknowledging the real server's SYN in its own space), then the held ACK past it.
    assert_eq!(out.len(), 2);
    let hdr = header(v, 1, 46_000);
    let fl = Flow { n: 1, cport: 46_000, rs: i, lport, cseq: cisn, sseq: rs_isn };
    assert_frame_eq(&out[0].1, &header_seg(&fl, v, cisn + 1, rs_isn + 1));
    let t = tcp_of(&out[1].1);
    assert_eq!((t.seq_number(), t.ack_number()), (cisn + 1 + hdr.len() as u32, rs_isn + 1));
    verify_checksums(&out[1].1);
    // Server data acknowledging the header: both shifts compose on the way to the client.
    let d = from_rs(i).tcp((rs(i), 80), (LIP, lport), PSH | ACK, (rs_isn + 1, cisn + 1 + 28), &o, b"hello");
    h.step(
        "server data",
        &d,
        1,
        tx(0, move |got| {
            verify_checksums(got);
            let t = tcp_of(got);
            assert_eq!((t.seq_number(), t.ack_number()), (cookie.wrapping_add(1), cisn + 1));
        }),
    );
}

#[test]
fn the_timer_list_is_bounded_and_counted() {
    let v = Version::V2;
    let s = setup_with(|s| {
        s.services[0].proxy_protocol = Some(v);
        s.conn.proxy_timers = 1;
    });
    let mut h = H::resolved(&s);
    pp_open(&mut h, &s, v, 1, 40000);
    let fl = pp_open(&mut h, &s, v, 2, 40001);
    assert_eq!(h.ev(Event::ProxyTimerFull), 1);
    // Without a timer, the client's retransmission at the start of its stream resends the header.
    let d =
        from_client(2).tcp((client(2), 40001), (VIP, 80), PSH | ACK, (fl.cseq + 1, fl.sseq + 1), &[], b"x");
    let out = feed(&mut h, "retransmitted first data", &d, 0);
    assert_eq!(out.len(), 2, "header again, then the data");
    assert_frame_eq(&out[0].1, &header_seg(&fl, v, fl.cseq + 1, fl.sseq + 1));
    assert_eq!(h.ev(Event::ProxyHeadersSent), 3);
}

#[test]
fn udp_services_and_toa_services_get_no_header() {
    // A UDP service, or one with TOA too (refused by the control plane), forwards as before.
    let s = setup_with(|s| {
        s.services[0].proxy_protocol = Some(Version::V1);
        s.services[0].toa = true;
        s.services[1].proxy_protocol = Some(Version::V1);
    });
    let mut h = H::resolved(&s);
    handshake(&mut h, &s, 1, 40000);
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"query", true);
    h.step("UDP", &q, 0, tx(1, |_| {}));
    assert_eq!(h.ev(Event::ProxyHeadersSent), 0);
}
