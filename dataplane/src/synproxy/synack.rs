//! Turn the client's SYN into our cookie SYN-ACK, in the same buffer.
//!
//! The reply is built from scratch from a few fields of the SYN, not edited: a fresh 20-byte IPv4
//! header (the SYN's IP options, e.g. record-route, are not echoed; DSCP/ECN 0, DF set, ID 0, TTL from
//! the config) and a 20-byte TCP header with our options; any payload in the SYN (TFO data) is dropped,
//! as Linux does when answering with a cookie. So the result is 40 to [`SYNACK_MAX_LEN`] bytes, which the
//! buffer must hold: it may grow (a bare 40-byte SYN) or shrink (IP options, payload).
//!
//! Options, in Linux's SYN-ACK layout (`tcp_options_write`), only those the SYN offered:
//!
//! ```text
//! MSS:                 02 04 mss
//! TS (+ SACK-perm):    04 02 08 0a tsval tsecr     or, without SACK:  01 01 08 0a tsval tsecr
//! WS:                  01 03 03 shift
//! ```
//!
//! Timestamps are answered only when the client sent them *and* [`make_cookie`](super::make_cookie)
//! produced a TSval (it always does then). Without timestamps the cookie cannot remember window scaling
//! or SACK, so neither is offered and the SYN-ACK carries MSS alone (Linux's `tcp_clear_options` in the
//! cookie path). ECN is never granted (no ECE): the real server has not been asked yet.
//!
//! Checksums are computed in full: this runs once per SYN and nearly every byte changed.
use super::{syn_options, MAX_WSCALE};
use crate::wire::ipv4::{self, Repr as Ipv4Repr};
use crate::wire::tcp::{self, Packet as TcpPacket, TcpFlags, TcpOptionList, TcpRepr};
use crate::wire::{Error, Result};

/// Largest SYN-ACK [`syn_to_synack`] writes: 20 IPv4 + 20 TCP + 20 options.
pub const SYNACK_MAX_LEN: usize = ipv4::HEADER_LEN + tcp::HEADER_LEN + 20;

/// What we advertise to the client.
///
/// `wscale` and `mss` are promises for the whole connection, but the connection's far end is the real
/// server, whose SYN-ACK we only see later and whose windows are relayed unchanged: `wscale` must equal
/// the real servers' receive window scale, and `mss` must not exceed what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckConfig {
    /// Our MSS option.
    pub mss: u16,
    /// Our window-scale shift (clamped to 14); sent only if the client offered window scaling *and*
    /// timestamps, since only then does the cookie remember the client's shift.
    pub wscale: u8,
    /// The SYN-ACK's window field (never scaled in a SYN-ACK, RFC 7323 2.2).
    pub window: u16,
    pub ttl: u8,
}

impl Default for SynAckConfig {
    fn default() -> SynAckConfig {
        SynAckConfig { mss: 1460, wscale: 7, window: 65535, ttl: 64 }
    }
}

/// Our SYN-ACK options for a SYN that offered `syn` (see the module docs for the layout).
/// The TCP fields of our SYN-ACK to the SYN `syn` (either family): ports swapped, seq
/// `cookie_isn`, ack client ISN + 1, options as in the module docs.
pub fn synack_repr<T: AsRef<[u8]>>(
    syn: &TcpPacket<T>,
    cookie_isn: u32,
    tsval: Option<u32>,
    cfg: &SynAckConfig,
) -> Result<TcpRepr<'static>> {
    if !syn.flags().is_syn_only() {
        return Err(Error::Unsupported);
    }
    let opts = syn_options(syn)?;
    Ok(TcpRepr {
        src_port: syn.dst_port(),
        dst_port: syn.src_port(),
        seq: cookie_isn,
        ack: syn.seq_number().wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: cfg.window,
        options: options(&opts, tsval, cfg),
        payload_len: 0,
    })
}

fn options(syn: &super::SynOptions, tsval: Option<u32>, cfg: &SynAckConfig) -> TcpOptionList<'static> {
    match (syn.timestamps, tsval) {
        // TSecr echoes the client's TSval (RFC 7323 3.2).
        (Some((client_tsval, _)), Some(ours)) => TcpOptionList::linux_syn(
            Some(cfg.mss),
            syn.sack_perm,
            Some((ours, client_tsval)),
            syn.wscale.map(|_| cfg.wscale.min(MAX_WSCALE)),
        ),
        _ => TcpOptionList::linux_syn(Some(cfg.mss), false, None, None),
    }
}

/// Rewrite the IPv4 packet at the start of `ip`, a TCP SYN (SYN set; ACK, RST, FIN clear), into our
/// SYN-ACK: addresses and ports swapped, seq `cookie_isn`, ack client ISN + 1, flags SYN|ACK, options as
/// in the module docs with `tsval` (from [`make_cookie`](super::make_cookie)) as our TSval.
///
/// `ip` is the writable buffer: the SYN in `ip[..total_len]`, anything after it may be overwritten.
/// Returns the new IPv4 total length; the caller trims or extends the frame to it. A buffer of
/// [`SYNACK_MAX_LEN`] bytes always suffices.
///
/// Errors, with the buffer untouched: IPv4/TCP parse errors, `Unsupported` (not TCP, or not a SYN),
/// `Fragment`, `BadOption` (malformed SYN options), `NoRoom` (`ip` shorter than the SYN-ACK).
pub fn syn_to_synack(
    ip: &mut [u8],
    cookie_isn: u32,
    tsval: Option<u32>,
    cfg: &SynAckConfig,
) -> Result<usize> {
    let p = ipv4::Packet::new_checked(&*ip)?;
    if p.protocol() != ipv4::PROTO_TCP {
        return Err(Error::Unsupported);
    }
    if p.is_fragment() {
        return Err(Error::Fragment);
    }
    let (client, vip) = (p.src_addr(), p.dst_addr());
    let syn = TcpPacket::new_checked(p.payload())?;
    if !syn.flags().is_syn_only() {
        return Err(Error::Unsupported);
    }
    let opts = syn_options(&syn)?;
    let (cport, vport, client_isn) = (syn.src_port(), syn.dst_port(), syn.seq_number());

    let tcp = TcpRepr {
        src_port: vport,
        dst_port: cport,
        seq: cookie_isn,
        ack: client_isn.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: cfg.window,
        options: options(&opts, tsval, cfg),
        payload_len: 0,
    };
    let total = ipv4::HEADER_LEN + tcp.buffer_len();
    if ip.len() < total {
        return Err(Error::NoRoom);
    }

    // Everything needed from the SYN has been copied out: overwrite from the start.
    let repr = Ipv4Repr {
        src: vip,
        dst: client,
        protocol: ipv4::PROTO_TCP,
        payload_len: tcp.buffer_len() as u16,
        ttl: cfg.ttl,
        ident: 0,
        dont_frag: true,
    };
    repr.emit(ip)?;
    tcp.emit(&mut TcpPacket::new_unchecked(&mut ip[ipv4::HEADER_LEN..total]), vip, client)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowKey;
    use crate::synproxy::testutil::{self, syn_opts, CLIENT, CPORT, FIXTURE_SYN, VIP, VPORT};
    use crate::synproxy::{check_cookie, make_cookie, CookieSecrets, SynOptions};
    use crate::wire::{Ipv4Packet, TcpOption};
    use std::net::Ipv4Addr;

    /// Checksums by independent full recomputation: zero the field, sum, compare.
    fn assert_checksums(pkt: &[u8]) {
        let ip = Ipv4Packet::new_checked(pkt).unwrap();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let mut hdr = ip.header().to_vec();
        let stored = u16::from_be_bytes([hdr[10], hdr[11]]);
        hdr[10..12].fill(0);
        assert_eq!(stored, crate::wire::checksum::internet_checksum(&hdr));
        let mut seg = ip.payload().to_vec();
        let stored = u16::from_be_bytes([seg[16], seg[17]]);
        seg[16..18].fill(0);
        let ph = crate::wire::checksum::ipv4_pseudo_header(src, dst, 6, seg.len() as u16);
        assert_eq!(stored, !crate::wire::checksum::fold(crate::wire::checksum::accumulate(ph, &seg)));
        assert!(ip.verify_checksum());
        assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(src, dst));
    }

    fn options_of(pkt: &[u8]) -> Vec<TcpOption<'_>> {
        let ip = Ipv4Packet::new_checked(pkt).unwrap();
        let hl = ip.header_len();
        let tcp = TcpPacket::new_checked(&pkt[hl..ip.total_len() as usize]).unwrap();
        let opts = &pkt[hl + 20..hl + tcp.header_len()];
        crate::wire::TcpOptions::new(opts).map(|o| o.unwrap()).collect()
    }

    #[test]
    fn fixture_syn_field_by_field() {
        let mut buf = [0xeeu8; SYNACK_MAX_LEN];
        buf.copy_from_slice(&FIXTURE_SYN);
        let cfg = SynAckConfig { mss: 1400, wscale: 9, window: 29200, ttl: 64 };
        let n = syn_to_synack(&mut buf, 0x8000_0001, Some(0x0bad_f00d), &cfg).unwrap();
        assert_eq!(n, 60);
        let pkt = &buf[..n];
        let ip = Ipv4Packet::new_checked(pkt).unwrap();
        assert_eq!((ip.version(), ip.header_len(), ip.total_len()), (4, 20, 60));
        assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            (ip.ttl(), ip.protocol(), ip.dont_frag(), ip.more_frags(), ip.frag_offset()),
            (64, 6, true, false, 0)
        );
        assert_eq!((ip.dscp(), ip.ecn(), ip.ident()), (0, 0, 0));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (80, 40000));
        assert_eq!((tcp.seq_number(), tcp.ack_number()), (0x8000_0001, 0x3a6f0c82));
        assert_eq!(tcp.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!((tcp.window_len(), tcp.urgent_at(), tcp.header_len()), (29200, 0, 40));
        assert!(tcp.payload().is_empty());
        // Linux layout, byte for byte.
        let want =
            [2, 4, 0x05, 0x78, 4, 2, 8, 10, 0x0b, 0xad, 0xf0, 0x0d, 0x00, 0x12, 0xd6, 0x87, 1, 3, 3, 9];
        assert_eq!(tcp.options(), &want);
        assert_eq!(
            options_of(pkt),
            [
                TcpOption::Mss(1400),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 0x0bad_f00d, tsecr: 0x0012d687 },
                TcpOption::Nop,
                TcpOption::WindowScale(9),
            ]
        );
        assert_checksums(pkt);
    }

    #[test]
    fn option_layouts() {
        let ts = Some(0x1111_2222);
        // (client mss, ws, sack, ts) -> expected SYN-ACK options area
        let cases: [(Option<u8>, bool, bool, &[u8]); 8] = [
            (
                Some(7),
                true,
                true,
                &[2, 4, 5, 0xb4, 4, 2, 8, 10, 0x11, 0x11, 0x22, 0x22, 0, 0, 0, 5, 1, 3, 3, 7],
            ),
            (
                Some(7),
                false,
                true,
                &[2, 4, 5, 0xb4, 1, 1, 8, 10, 0x11, 0x11, 0x22, 0x22, 0, 0, 0, 5, 1, 3, 3, 7],
            ),
            (None, true, true, &[2, 4, 5, 0xb4, 4, 2, 8, 10, 0x11, 0x11, 0x22, 0x22, 0, 0, 0, 5]),
            (None, false, true, &[2, 4, 5, 0xb4, 1, 1, 8, 10, 0x11, 0x11, 0x22, 0x22, 0, 0, 0, 5]),
            // No timestamps: the cookie cannot carry WS/SACK, so only MSS.
            (Some(7), true, false, &[2, 4, 5, 0xb4]),
            (Some(7), false, false, &[2, 4, 5, 0xb4]),
            (None, true, false, &[2, 4, 5, 0xb4]),
            (None, false, false, &[2, 4, 5, 0xb4]),
        ];
        let cfg = SynAckConfig { wscale: 7, ..SynAckConfig::default() };
        for (ws, sack, has_ts, want) in cases {
            let mut buf = testutil::syn(77, &syn_opts(Some(1200), ws, sack, has_ts.then_some(5)));
            buf.resize(SYNACK_MAX_LEN, 0);
            let n = syn_to_synack(&mut buf, 1, has_ts.then_some(0x1111_2222).and(ts), &cfg).unwrap();
            assert_eq!(n, 40 + want.len());
            let tcp = TcpPacket::new_checked(&buf[20..n]).unwrap();
            assert_eq!(tcp.options(), want, "ws {ws:?} sack {sack} ts {has_ts}");
            assert_checksums(&buf[..n]);
        }
        // A TSval without client timestamps is ignored; client timestamps without a TSval get none.
        let mut buf = testutil::syn(77, &syn_opts(Some(1200), Some(1), true, None));
        buf.resize(SYNACK_MAX_LEN, 0);
        assert_eq!(syn_to_synack(&mut buf, 1, ts, &cfg), Ok(44));
        let mut buf = testutil::syn(77, &syn_opts(Some(1200), Some(1), true, Some(3)));
        buf.resize(SYNACK_MAX_LEN, 0);
        assert_eq!(syn_to_synack(&mut buf, 1, None, &cfg), Ok(44));
        // wscale above 14 is clamped.
        let mut buf = testutil::syn(77, &syn_opts(None, Some(1), false, Some(3)));
        buf.resize(SYNACK_MAX_LEN, 0);
        let n = syn_to_synack(&mut buf, 1, ts, &SynAckConfig { wscale: 15, ..cfg }).unwrap();
        assert_eq!(buf[n - 1], 14);
    }

    #[test]
    fn grows_from_bare_syn_and_shrinks_from_ip_options_and_payload() {
        // Bare 40-byte SYN with no options -> 44 bytes.
        let mut v = testutil::syn(0xffff_ffff, &[]);
        assert_eq!(v.len(), 40);
        v.resize(44, 0xaa);
        assert_eq!(syn_to_synack(&mut v, 9, None, &SynAckConfig::default()), Ok(44));
        assert_eq!(TcpPacket::new_checked(&v[20..]).unwrap().ack_number(), 0, "client ISN + 1 wraps");
        assert_checksums(&v);
        // IP options (record route, 8 bytes) and 100 bytes of TFO payload: dropped.
        let ip_opts = [7, 7, 4, 0, 0, 0, 0, 1];
        let opts = syn_opts(Some(1460), Some(7), true, Some(99));
        let payload = [0x55u8; 100];
        let mut v = testutil::segment(
            (CLIENT, CPORT),
            (VIP, VPORT),
            (5, 0),
            TcpFlags::SYN,
            &opts,
            &payload,
            &ip_opts,
        );
        assert_eq!(v.len(), 28 + 40 + 100);
        v.extend_from_slice(&[0; 6]); // Ethernet-style trailing padding
        let n = syn_to_synack(&mut v, 9, Some(1000), &SynAckConfig::default()).unwrap();
        assert_eq!(n, 60);
        let ip = Ipv4Packet::new_checked(&v[..n]).unwrap();
        assert_eq!((ip.header_len(), ip.total_len()), (20, 60));
        assert!(TcpPacket::new_checked(ip.payload()).unwrap().payload().is_empty());
        assert_checksums(&v[..n]);
    }

    #[test]
    fn refusals_leave_the_buffer_untouched() {
        let opts = syn_opts(Some(1460), Some(7), true, Some(99));
        let check = |v: Vec<u8>, want: Error| {
            let mut w = v.clone();
            assert_eq!(syn_to_synack(&mut w, 1, Some(2), &SynAckConfig::default()), Err(want));
            assert_eq!(w, v);
        };
        // Too small a buffer: a 52-byte SYN with only timestamps gets a 56-byte answer (MSS added).
        check(testutil::syn(1, &syn_opts(None, None, false, Some(9))), Error::NoRoom);
        // Not a SYN.
        for flags in [
            TcpFlags::ACK,
            TcpFlags::SYN | TcpFlags::ACK,
            TcpFlags::SYN | TcpFlags::RST,
            TcpFlags::SYN | TcpFlags::FIN,
        ] {
            let mut v = testutil::segment((CLIENT, CPORT), (VIP, VPORT), (1, 0), flags, &opts, &[], &[]);
            v.resize(60, 0);
            check(v, Error::Unsupported);
        }
        // Not TCP.
        let mut v = testutil::syn(1, &opts);
        v[9] = 17;
        check(v, Error::Unsupported);
        // Fragment.
        let mut v = testutil::syn(1, &opts);
        v[6] |= 0x20;
        check(v, Error::Fragment);
        // Malformed options.
        let mut bad = opts.clone();
        bad[1] = 3;
        check(testutil::syn(1, &bad), Error::BadOption);
        // Truncated.
        check(testutil::syn(1, &opts)[..50].to_vec(), Error::Truncated);
    }

    #[test]
    fn synack_then_client_ack_validates() {
        let s = CookieSecrets::new(*b"0123456789abcdef");
        let now = 987_654_321;
        let mut buf = testutil::syn(0x7fff_ffff, &syn_opts(Some(1300), Some(3), false, Some(0x4242)));
        let key = crate::wire::flow_key(&buf).unwrap();
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let so = crate::synproxy::syn_options(&TcpPacket::new_checked(ip.payload()).unwrap()).unwrap();
        let (isn, tsval) = make_cookie(&s, &key, 0x7fff_ffff, &so, now);
        buf.resize(SYNACK_MAX_LEN, 0);
        let n = syn_to_synack(&mut buf, isn, tsval, &SynAckConfig::default()).unwrap();
        // The client reads the SYN-ACK and answers.
        let synack = TcpPacket::new_checked(&buf[20..n]).unwrap();
        let Some(TcpOption::Timestamps { tsval: our_ts, tsecr }) =
            options_of(&buf[..n]).into_iter().find(|o| matches!(o, TcpOption::Timestamps { .. }))
        else {
            panic!("no timestamps")
        };
        assert_eq!(tsecr, 0x4242);
        let back = FlowKey { src: CLIENT, dst: VIP, sport: CPORT, dport: VPORT, ..key };
        let got = check_cookie(
            &s,
            &back,
            synack.seq_number(),
            synack.ack_number().wrapping_sub(1),
            Some((0x4243, our_ts)),
            now + 10,
        )
        .unwrap();
        assert_eq!(
            got,
            SynOptions {
                mss: 1300,
                wscale: Some(3),
                sack_perm: false,
                timestamps: Some((0x4243, our_ts)),
                ecn: false
            }
        );
    }
}
