//! Fixtures for IP fragments: forwarded by the first fragment's flow (in order, out of order,
//! hostile, timed out), on one worker and across workers, each step checking the accounting.
use super::multi::Mh;
use super::*;
use crate::frag::collector;

/// A UDP datagram `client:cport -> VIP:53` of `len` payload bytes, split into IP fragments of at
/// most `chunk` payload bytes (a multiple of 8), as the client's kernel would; ident `ident`.
fn fragments(n: u8, cport: u16, ident: u16, len: usize, chunk: usize) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + usize::from(n)) as u8).collect();
    let whole = from_client(n).ident(ident).dont_frag(false).udp(client(n), cport, VIP, 53, &payload, true);
    split(&whole, chunk)
}

/// Splits the IPv4 frame `whole` into fragments of `chunk` payload bytes.
fn split(whole: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let ip = ip_of(whole);
    let hl = ip.header_len();
    let body = &whole[ETH + hl..ETH + ip.total_len() as usize];
    let mut out = Vec::new();
    let mut off = 0;
    while off < body.len() {
        let n = chunk.min(body.len() - off);
        let mut f = whole[..ETH + hl].to_vec();
        f.extend_from_slice(&body[off..off + n]);
        let mut p = Ipv4Packet::new_unchecked(&mut f[ETH..]);
        p.set_total_len((hl + n) as u16);
        p.set_frag(off as u16, off + n < body.len());
        p.fill_checksum();
        out.push(f);
        off += n;
    }
    out
}

/// What the real server receives: the fragments, reassembled by offset (checks each header).
fn reassemble(frames: &[Vec<u8>]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let mut parts: Vec<(u16, Vec<u8>)> = frames
        .iter()
        .map(|f| {
            verify_ip_header(f);
            let ip = ip_of(f);
            (ip.frag_offset(), ip.payload().to_vec())
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let ip = ip_of(&frames[0]);
    let mut body = Vec::new();
    for (off, p) in parts {
        assert_eq!(off as usize, body.len(), "fragments leave no gap and do not overlap");
        body.extend_from_slice(&p);
    }
    (ip.src_addr(), ip.dst_addr(), body)
}

fn verify_ip_header(f: &[u8]) {
    let ip = ip_of(f);
    let mut hdr = ip.header().to_vec();
    hdr[10..12].fill(0);
    assert_eq!(ip.checksum(), checksum::internet_checksum(&hdr), "IPv4 header checksum");
    assert_eq!(ip.total_len() as usize, f.len() - ETH);
}

/// The reassembled UDP datagram checks out against a full recomputation, and is the client's,
/// rewritten for real server `i` (FULLNAT: from the LIP).
fn check_datagram(src: Ipv4Addr, dst: Ipv4Addr, body: &[u8], payload_len: usize) -> u16 {
    assert_eq!((src, rs_index(dst) > 0), (LIP, true));
    let u = UdpPacket::new_checked(body).unwrap();
    assert_eq!(u.len() as usize, 8 + payload_len);
    assert!(u.verify_checksum(src, dst), "UDP checksum over the reassembled datagram");
    u.src_port()
}

fn feed(h: &mut H, desc: &str, frame: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let before = h.drops();
    h.w.process(VecFrame::from_bytes(frame), 0, h.now, &mut h.out);
    let out = h.drain();
    h.assert_accounting(desc);
    let after = h.drops();
    let changed: Vec<_> =
        DropReason::ALL.iter().zip(after.iter().zip(&before)).filter(|(_, (a, b))| a != b).collect();
    assert!(changed.is_empty(), "{desc}: unexpected drops {changed:?}");
    out
}

#[test]
fn a_fragmented_datagram_is_forwarded_in_order_and_out_of_order() {
    let s = setup();
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let mut h = H::resolved(&s);
        let frags = fragments(1, 5000, 0x4242, 4000, 1480);
        assert_eq!(frags.len(), 3);
        let mut sent = Vec::new();
        for &i in &order {
            sent.extend(feed(&mut h, "fragment", &frags[i]));
        }
        assert_eq!(sent.len(), 3, "{order:?}: every fragment forwarded");
        assert!(sent.iter().all(|(p, _)| *p == 1));
        let frames: Vec<Vec<u8>> = sent.into_iter().map(|(_, f)| f).collect();
        let (src, dst, body) = reassemble(&frames);
        check_datagram(src, dst, &body, 4000);
        assert_eq!(h.ev(Event::FragmentsForwarded), 3);
        assert_eq!(h.w.conns().len(), 1, "one connection for the datagram");
        assert_eq!((h.w.frags.len(), h.w.frag_held()), (0, 0), "{order:?}: forgotten once complete");
    }
}

#[test]
fn fragments_of_an_established_flow_follow_its_connection_and_replies_come_back() {
    let s = setup();
    let mut h = H::resolved(&s);
    // An unfragmented datagram opens the flow; a fragmented one of the same flow follows it.
    let q = from_client(1).udp(client(1), 5000, VIP, 53, b"small", true);
    let out = h.step("small datagram", &q, 0, tx(1, |_| {}));
    let lport = ports_of(&out[0].1).0;
    let mut frames = Vec::new();
    for f in fragments(1, 5000, 7, 3000, 1480) {
        frames.extend(feed(&mut h, "fragment", &f).into_iter().map(|(_, f)| f));
    }
    let (src, dst, body) = reassemble(&frames);
    assert_eq!(check_datagram(src, dst, &body, 3000), lport, "the same local port: the same connection");
    assert_eq!(h.w.conns().len(), 1);
    // The real server's fragmented answer to LIP:lport comes back from the VIP to the client.
    let payload: Vec<u8> = (0..2500).map(|i| i as u8).collect();
    let answer = from_rs(1).ident(9).dont_frag(false).udp(rs(1), 5353, LIP, lport, &payload, true);
    let mut back = Vec::new();
    for f in split(&answer, 1480) {
        h.w.process(VecFrame::from_bytes(&f), 1, h.now, &mut h.out);
        back.extend(h.drain().into_iter().map(|(p, f)| {
            assert_eq!(p, 0);
            f
        }));
        h.assert_accounting("answer fragment");
    }
    let (src, dst, body) = reassemble(&back);
    assert_eq!((src, dst), (VIP, client(1)));
    let u = UdpPacket::new_checked(&body[..]).unwrap();
    assert!(u.verify_checksum(src, dst));
    assert_eq!((u.src_port(), u.dst_port(), u.payload()), (53, 5000, &payload[..]));
}

#[test]
fn hostile_fragments_are_bounded_and_counted() {
    let s = setup_with(|s| {
        s.conn.frag.max_datagrams = 4;
        s.conn.frag.max_per_source = 3;
        s.conn.frag.timeout_ms = 500;
    });
    let mut h = H::resolved(&s);
    // Orphan later fragments (their first never comes): held, per source, then timed out.
    let orphan = |n: u8, ident: u16| fragments(n, 6000, ident, 3000, 1480).remove(1);
    for ident in 0..3 {
        h.step("orphan fragment", &orphan(1, ident), 0, Expect::Held);
    }
    h.step(
        "a fourth datagram from the same source",
        &orphan(1, 3),
        0,
        Expect::Drop(DropReason::FragSourceLimit),
    );
    h.step("another source", &orphan(2, 0), 0, Expect::Held);
    h.step("table full", &orphan(3, 0), 0, Expect::Drop(DropReason::FragTableFull));
    assert_eq!((h.w.frags.len(), h.w.frag_held()), (4, 4));
    // More fragments of one datagram than may wait for its first.
    let s2 = setup();
    let mut h2 = H::resolved(&s2);
    let many = fragments(1, 7000, 77, 8 * 200, 16);
    for f in &many[1..=crate::frag::MAX_HELD] {
        h2.step("waiting", f, 0, Expect::Held);
    }
    h2.step("one too many", &many[crate::frag::MAX_HELD + 1], 0, Expect::Drop(DropReason::FragHeldFull));
    // The timeout drops what waited, counted.
    let before = h.stats.drops(DropReason::FragTimeout);
    h.poll(h.now + 499);
    assert_eq!(h.stats.drops(DropReason::FragTimeout), before);
    h.poll(h.now + 1);
    assert_eq!(h.stats.drops(DropReason::FragTimeout), before + 4);
    assert_eq!((h.w.frags.len(), h.w.frag_held()), (0, 0));
    // A tiny first fragment hides the TCP header's flags; a TCP fragment at offset 8 would
    // overlap the header.
    let syn = from_client(1).dont_frag(false).tcp((client(1), 40000), (VIP, 80), SYN, (1, 0), &SYN_OPTS, &[]);
    let tiny = split(&syn, 16).remove(0);
    h.step("tiny first fragment", &tiny, 0, Expect::Drop(DropReason::FragTiny));
    let overlap = split(&syn, 8).remove(1);
    h.step("TCP fragment at offset 8", &overlap, 0, Expect::Drop(DropReason::FragOverlap));
    // A first fragment for no service: it and what waited for it go, each counted.
    let nosvc: Vec<Vec<u8>> = {
        let whole = from_client(1).ident(99).dont_frag(false).udp(client(1), 5000, VIP, 54, &[1; 2000], true);
        split(&whole, 1480)
    };
    h.step("later fragment first", &nosvc[1], 0, Expect::Held);
    let before = h.drops();
    h.w.process(VecFrame::from_bytes(&nosvc[0]), 0, h.now, &mut h.out);
    assert!(h.drain().is_empty());
    h.assert_accounting("first fragment for no service");
    let after = h.drops();
    let d = |r: DropReason| after[r as usize] - before[r as usize];
    assert_eq!((d(DropReason::NoService), d(DropReason::FragNoFlow)), (1, 1));
}

#[test]
fn across_workers_every_fragment_reaches_the_connection() {
    let s = setup_with(|s| s.workers = 2);
    let mut m = Mh::resolved(&s);
    // Open the flow on worker w with an unfragmented datagram, then send a fragmented one whose
    // fragments arrive at either worker.
    for (w, cport) in [(0usize, 5000u16), (1, 5001), (0, 5002), (1, 5003)] {
        let q = from_client(1).udp(client(1), cport, VIP, 53, b"small", true);
        let out = m.deliver(w, &q, 0);
        assert_eq!(out.len(), 1);
        let lport = ports_of(&out[0].2).0;
        let frags = fragments(1, cport, cport, 4000, 1480);
        let mut frames = Vec::new();
        for (k, f) in frags.iter().enumerate().rev() {
            for (_, p, fr) in m.deliver((w + k) % 2, f, 0) {
                assert_eq!(p, 1);
                frames.push(fr);
            }
        }
        assert_eq!(frames.len(), 3, "worker {w}: all three fragments forwarded");
        let (src, dst, body) = reassemble(&frames);
        assert_eq!(check_datagram(src, dst, &body, 4000), lport, "the flow's own connection");
    }
    let conns: usize = m.ws.iter().map(|w| w.conns().len()).sum();
    assert_eq!(conns, 4, "no second connection for a fragmented datagram");
    assert_eq!(m.total_drops(DropReason::FragNoFlow), 0);
    // A new flow made only of fragments is created once, by its chain's last worker.
    let frags = fragments(2, 9000, 1, 3000, 1480);
    let g = collector(client(2), VIP, 2) as usize;
    let mut n = 0;
    for f in &frags {
        n += m.deliver(1 - g, f, 0).len();
    }
    assert_eq!(n, frags.len());
    let conns: usize = m.ws.iter().map(|w| w.conns().len()).sum();
    assert_eq!(conns, 5);
}

#[test]
fn datagrams_from_two_clients_with_one_ident_leave_with_two() {
    // FULLNAT sends both from the LIP: with the clients' identifications the real server would
    // reassemble them into one.
    let s = setup();
    let mut h = H::resolved(&s);
    let mut idents = Vec::new();
    for n in [1u8, 2] {
        let mut sent = Vec::new();
        for f in fragments(n, 5000, 0x7777, 3000, 1480) {
            sent.extend(feed(&mut h, "fragment", &f).into_iter().map(|(_, f)| f));
        }
        let ids: Vec<u16> = sent.iter().map(|f| ip_of(f).ident()).collect();
        assert!(ids.iter().all(|&i| i == ids[0]), "one datagram, one identification: {ids:?}");
        let (src, dst, body) = reassemble(&sent);
        check_datagram(src, dst, &body, 3000);
        idents.push(ids[0]);
    }
    assert_ne!(idents[0], idents[1], "two datagrams from the LIP, two identifications");
}
