use super::*;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn plain() -> Entry {
    Entry {
        protocol: 6,
        flags: flags::FULLNAT,
        state: 1,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: v4([198, 18, 0, 10]),
        vaddr: v4([198, 18, 0, 100]),
        daddr: v4([198, 18, 1, 10]),
        seq: None,
        conn: None,
        synproxy: None,
        proxy: None,
        release: None,
        pe: false,
    }
}

/// `struct ip_vs_sync_v4` of [`plain`], by hand from the C struct: type 0, protocol 6,
/// ver_size 36, flags 5, state 1, cport 40000, vport 80, dport 8080, fwmark 0, timeout 900,
/// caddr, vaddr, daddr.
#[rustfmt::skip]
const PLAIN: [u8; 36] = [
    0x00, 0x06, 0x00, 0x24,
    0x00, 0x00, 0x00, 0x05,
    0x00, 0x01, 0x9c, 0x40,
    0x00, 0x50, 0x1f, 0x90,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x84,
    198, 18, 0, 10,
    198, 18, 0, 100,
    198, 18, 1, 10,
];

#[test]
fn golden_single_entry() {
    let mut m = MessageBuf::new(7, 1472);
    m.push(&plain()).unwrap();
    let mut want = vec![0x00, 0x07, 0x00, 0x2c, 0x01, 0x01, 0x00, 0x00];
    want.extend_from_slice(&PLAIN);
    assert_eq!(m.bytes(), &want[..]);
    let Message::Conns(h, mut es) = decode(&want).unwrap() else { panic!("not conns") };
    assert_eq!(h, Header { syncid: 7, nr_conns: 1 });
    assert_eq!(es.next(), Some(Ok(plain())));
    assert_eq!(es.next(), None);
}

#[test]
fn golden_seq_data_and_padding() {
    // Entry 1: 36 + 2 + 24 = 62 bytes (ver_size 0x003e), then 2 bytes of padding; entry 2 at 72.
    let seq = SeqData {
        in_seq: Seq::default(),
        out_seq: Seq { init_seq: 0, delta: 0x1122_3344, previous_delta: 0x1122_3344 },
    };
    let first = Entry { flags: flags::FULLNAT | flags::OUT_SEQ, seq: Some(seq), ..plain() };
    let mut m = MessageBuf::new(0, 1472);
    m.push(&first).unwrap();
    m.push(&plain()).unwrap();
    #[rustfmt::skip]
    let mut want = vec![
        0x00, 0x00, 0x00, 0x6c, 0x02, 0x01, 0x00, 0x00,
        0x00, 0x06, 0x00, 0x3e,
        0x00, 0x00, 0x02, 0x05,
    ];
    want.extend_from_slice(&PLAIN[8..]);
    #[rustfmt::skip]
    want.extend_from_slice(&[
        0x01, 0x18,
        0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        0, 0, 0, 0,  0x11, 0x22, 0x33, 0x44,  0x11, 0x22, 0x33, 0x44,
        0x00, 0x00,
    ]);
    want.extend_from_slice(&PLAIN);
    assert_eq!(want.len(), 108);
    assert_eq!(m.bytes(), &want[..]);
    let Message::Conns(_, es) = decode(&want).unwrap() else { panic!("not conns") };
    let got: Vec<Entry> = es.map(Result::unwrap).collect();
    assert_eq!(got, vec![first, plain()]);
}

#[test]
fn golden_rvs_options() {
    let e = Entry {
        conn: Some(RvsConn { laddr: v4([198, 18, 1, 250]), lport: 5000, toa_done: true }),
        synproxy: Some(RvsSynproxy { ts_delta: Some(0xdead_beef) }),
        proxy: Some(RvsProxy { len: 28, acked: true, start: 0x0102_0304 }),
        release: Some(1),
        ..plain()
    };
    let mut m = MessageBuf::new(1, 1472);
    m.push(&e).unwrap();
    let b = m.bytes();
    // 36 + 10 + 10 + 10 + 4 = 70, so the message is 78 bytes (no trailing padding).
    assert_eq!(&b[8 + 2..8 + 4], &[0x00, 70]);
    assert_eq!(&b[2..4], &[0x00, 78]);
    #[rustfmt::skip]
    let opts = [
        0x61, 8, 1, 1, 0x13, 0x88, 198, 18, 1, 250,
        0x62, 8, 1, 1, 0, 0, 0xde, 0xad, 0xbe, 0xef,
        0x63, 8, 1, 28, 1, 0, 1, 2, 3, 4,
        0x64, 2, 1, 1,
    ];
    assert_eq!(&b[8 + 36..], &opts);
    let Message::Conns(_, mut es) = decode(b).unwrap() else { panic!() };
    assert_eq!(es.next(), Some(Ok(e)));
}

#[test]
fn v6_round_trip() {
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    let e = Entry {
        caddr: a,
        vaddr: "2001:db8::2".parse().unwrap(),
        daddr: "2001:db8::3".parse().unwrap(),
        conn: Some(RvsConn { laddr: "2001:db8::4".parse().unwrap(), lport: 1, toa_done: false }),
        ..plain()
    };
    assert_eq!(e.wire_len(), V6_LEN + 2 + RVS_CONN_LEN_V6);
    let mut m = MessageBuf::new(1, 1472);
    m.push(&e).unwrap();
    assert_eq!(m.bytes()[8], STYPE_F_INET6);
    let Message::Conns(_, mut es) = decode(m.bytes()).unwrap() else { panic!() };
    assert_eq!(es.next(), Some(Ok(e)));
}

#[test]
fn fills_to_max_len_and_255_entries() {
    let mut m = MessageBuf::new(1, max_message_len(1500));
    let mut n = 0;
    while m.push(&plain()).is_ok() {
        n += 1;
    }
    // (1472 - 8) / 36 = 40 entries of 36 bytes.
    assert_eq!(n, 40);
    assert!(m.bytes().len() <= 1472);
    let mut big = MessageBuf::new(1, 65_000);
    while big.push(&plain()).is_ok() {}
    assert_eq!(big.nr_conns(), 255);
    let Message::Conns(_, es) = decode(big.bytes()).unwrap() else { panic!() };
    assert_eq!(es.filter(|e| e.is_ok()).count(), 255);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.bytes(), &[0, 1, 0, 8, 0, 1, 0, 0]);
}

#[test]
fn request_round_trip() {
    let r = request(9);
    assert_eq!(decode(&r), Ok(Message::Request { syncid: 9 }));
    let mut bad = r;
    bad[9] = b'X';
    assert_eq!(decode(&bad), Err(WireError::BadRequest));
}

#[test]
fn rejects_bad_headers() {
    assert_eq!(decode(&[0, 1, 0]), Err(WireError::ShortHeader(3)));
    assert_eq!(decode(&[0, 1, 0, 9, 0, 1, 0, 0]), Err(WireError::SizeMismatch { header: 9, actual: 8 }));
    // Version 0 (the old format starts with nr_conns).
    assert!(matches!(decode(&[2, 1, 0, 8, 0, 0, 0, 0]), Err(WireError::NotVersion1 { .. })));
    assert!(matches!(decode(&[0, 1, 0, 8, 0, 1, 0, 1]), Err(WireError::NotVersion1 { .. })));
}

fn first_error(b: &[u8]) -> WireError {
    match decode(b) {
        Err(e) => e,
        Ok(Message::Conns(_, mut es)) => es.find_map(Result::err).expect("an error"),
        Ok(m) => panic!("decoded {m:?}"),
    }
}

fn one(e: &Entry) -> Vec<u8> {
    let mut m = MessageBuf::new(1, 1472);
    m.push(e).unwrap();
    m.bytes().to_vec()
}

#[test]
fn rejects_bad_entries() {
    let good = one(&plain());
    // Too few bytes for the entry's fixed part.
    let mut b = good[..40].to_vec();
    b[3] = 40;
    assert_eq!(first_error(&b), WireError::Truncated(0));
    // ver_size claims more than there is.
    let mut b = good.clone();
    b[8 + 3] = 40;
    assert_eq!(first_error(&b), WireError::Truncated(0));
    // Version bits.
    let mut b = good.clone();
    b[8 + 2] = 0x10;
    assert_eq!(first_error(&b), WireError::EntryVersion { index: 0, version: 1 });
    // Unknown type.
    let mut b = good.clone();
    b[8] = 2;
    assert_eq!(first_error(&b), WireError::EntryType { index: 0, ty: 2 });
    // An entry shorter than its fixed part.
    let mut b = good.clone();
    b[8 + 3] = 20;
    assert_eq!(first_error(&b), WireError::EntryTooShort { index: 0, size: 20 });
    // nr_conns larger than the entries present.
    let mut b = good.clone();
    b[4] = 2;
    assert_eq!(first_error(&b), WireError::Truncated(1));
}

#[test]
fn rejects_bad_options() {
    let with = |opt: &[u8]| {
        let mut b = one(&plain());
        b.extend_from_slice(opt);
        let size = (36 + opt.len()) as u16;
        b[8 + 2..8 + 4].copy_from_slice(&size.to_be_bytes());
        let total = b.len() as u16;
        b[2..4].copy_from_slice(&total.to_be_bytes());
        b
    };
    assert_eq!(first_error(&with(&[1, 0, 0, 0])), WireError::OptionLength { index: 0, opt: 1 });
    assert_eq!(first_error(&with(&[1, 4, 0, 0, 0, 0])), WireError::OptionLength { index: 0, opt: 1 });
    assert_eq!(first_error(&with(&[9, 2, 0, 0])), WireError::OptionUnknown { index: 0, opt: 9 });
    assert_eq!(
        first_error(&with(&[0x64, 2, 2, 0])),
        WireError::OptionVersion { index: 0, opt: 0x64, version: 2 }
    );
    assert_eq!(
        first_error(&with(&[0x64, 2, 1, 0, 0x64, 2, 1, 0])),
        WireError::OptionTwice { index: 0, opt: 0x64 }
    );
    assert_eq!(first_error(&with(&[0x61, 3, 1, 0, 0, 0])), WireError::OptionLength { index: 0, opt: 0x61 });
    // Unknown optional options (0x40 set) are skipped, as the kernel skips them.
    let b = with(&[0x4f, 2, 0, 0]);
    let Message::Conns(_, mut es) = decode(&b).unwrap() else { panic!() };
    assert_eq!(es.next(), Some(Ok(plain())));
    // PE data is checked and noted.
    let b = with(&[2, 2, 0xaa, 0xbb]);
    let Message::Conns(_, mut es) = decode(&b).unwrap() else { panic!() };
    assert!(es.next().unwrap().unwrap().pe);
}

#[test]
fn never_panics_on_prefixes_and_flips() {
    let e = Entry {
        seq: Some(SeqData::default()),
        conn: Some(RvsConn { laddr: v4([1, 2, 3, 4]), lport: 9, toa_done: false }),
        synproxy: Some(RvsSynproxy { ts_delta: None }),
        ..plain()
    };
    let mut m = MessageBuf::new(3, 1472);
    m.push(&e).unwrap();
    m.push(&plain()).unwrap();
    let good = m.bytes().to_vec();
    for n in 0..good.len() {
        let mut b = good[..n].to_vec();
        if b.len() >= 4 {
            let l = b.len() as u16;
            b[2..4].copy_from_slice(&l.to_be_bytes());
        }
        if let Ok(Message::Conns(_, es)) = decode(&b) {
            es.for_each(drop);
        }
        for i in 0..good.len() {
            let mut f = good.clone();
            f[i] ^= (n as u8).wrapping_mul(37) | 1;
            if let Ok(Message::Conns(_, es)) = decode(&f) {
                es.for_each(drop);
            }
        }
    }
}
