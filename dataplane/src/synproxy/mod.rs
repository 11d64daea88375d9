//! SYN-proxy building blocks (LVS/Alibaba FULLNAT SYNPROXY, as in DPVS): answer a client's SYN with a
//! stateless SYN cookie, validate the client's ACK, and, once the real server (RS) has been connected,
//! shift sequence numbers and timestamps for the rest of the connection.
//!
//! This module is pure packet logic; the worker integration (half-open state, holding the client's ACK,
//! the SYN to the RS) lives elsewhere. Pieces:
//! - [`cookie`]: SipHash-2-4, [`CookieSecrets`] with rotation, and Linux-style SYN cookies
//!   ([`make_cookie`] / [`check_cookie`]) including the options encoded in the low bits of our TSval.
//! - [`synack`]: [`syn_to_synack`], turning the client's SYN into our SYN-ACK in place.
//! - [`seq`]: [`SeqShift`], the per-packet seq/ack/SACK/timestamp rewrite of a proxied connection.
//!
//! # Sequence spaces and directions
//!
//! Three parties: the client, the gateway (G) and the RS. Only the *server side* needs translating:
//! - The client's seq space is kept as is: G's SYN to the RS carries the client's ISN, so the RS and the
//!   client agree on it. Nothing that refers to client bytes is ever rewritten.
//! - The client believes the server's ISN is our `cookie_isn`; the RS really uses `rs_isn`. So every
//!   number that refers to *server* bytes is in "cookie space" on the client side and in "RS space" on the
//!   RS side, with `rs = cookie + delta` (mod 2^32), `delta = rs_isn - cookie_isn`.
//! - Timestamps likewise: the client has seen our TSval clock (the SYN-ACK carried our encoded TSval), the
//!   RS has its own; `client_view = rs_tsval + ts_delta`. The client's own TSval clock is untouched.
//!
//! All sequence and timestamp arithmetic is modulo 2^32 (`wrapping_*`), never compared as integers.
//!
//! # Invariants
//! - No allocation, no raw-pointer code, no clock: time is the `now` argument ([`Millis`](crate::flow::Millis)).
//! - Functions that fail leave the packet untouched.
//! - Keys are supplied by the caller (random, from the control plane); nothing here generates entropy.

pub mod cookie;
pub mod half_open;
pub mod proxy;
pub mod seq;
pub mod synack;

pub use cookie::{
    check_cookie, make_cookie, siphash24, CookieError, CookieSecrets, SipKey, DEFAULT_PERIOD_MS,
    MAX_SYNCOOKIE_AGE, MSS_TABLE,
};
pub use proxy::{Established, Handshake, SynProxy};
pub use seq::{map_acks, SeqShift};
pub use synack::{syn_to_synack, SynAckConfig, SYNACK_MAX_LEN};

use crate::wire::tcp::{Packet as TcpPacket, TcpFlags};
use crate::wire::{Error, TcpOption, TcpOptions};

/// The MSS a host must assume when the SYN carries none (RFC 9293 3.7.1, IPv4).
pub const DEFAULT_MSS: u16 = 536;
/// Largest valid window shift (RFC 7323 2.3); larger values are treated as 14, as Linux does.
pub const MAX_WSCALE: u8 = 14;

/// What a SYN negotiated: what the cookie must remember (or the SYN-ACK must answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynOptions {
    /// Client's MSS ([`DEFAULT_MSS`] if absent or zero). After [`check_cookie`], the table value the cookie
    /// encoded (the largest [`MSS_TABLE`] entry not above the client's, 536 at least).
    pub mss: u16,
    /// Client's window scale shift (clamped to 14), `None` if it sent no window-scale option.
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// `(tsval, tsecr)` of the client's timestamps option, `None` if absent.
    pub timestamps: Option<(u32, u32)>,
    /// The SYN was an ECN-setup SYN (ECE and CWR set, RFC 3168 6.1.1). Options carry no ECN, so
    /// [`parse_syn_options`] leaves this false; [`syn_options`] reads it from the flags.
    pub ecn: bool,
}

impl Default for SynOptions {
    fn default() -> SynOptions {
        SynOptions { mss: DEFAULT_MSS, wscale: None, sack_perm: false, timestamps: None, ecn: false }
    }
}

/// Parse the options area of a SYN. Stops at End-of-List; a malformed option is an error
/// (`BadOption`), since the cookie must not encode options we misread.
pub fn parse_syn_options(tcp_options: &[u8]) -> Result<SynOptions, Error> {
    let mut o = SynOptions::default();
    for opt in TcpOptions::new(tcp_options) {
        match opt? {
            TcpOption::EndOfList => break,
            TcpOption::Mss(m) if m != 0 => o.mss = m,
            TcpOption::WindowScale(s) => o.wscale = Some(s.min(MAX_WSCALE)),
            TcpOption::SackPermitted => o.sack_perm = true,
            TcpOption::Timestamps { tsval, tsecr } => o.timestamps = Some((tsval, tsecr)),
            _ => {}
        }
    }
    Ok(o)
}

/// [`parse_syn_options`] plus the ECN-setup flags of the segment.
pub fn syn_options<T: AsRef<[u8]>>(tcp: &TcpPacket<T>) -> Result<SynOptions, Error> {
    let mut o = parse_syn_options(tcp.options())?;
    o.ecn = tcp.flags().contains(TcpFlags::ECE | TcpFlags::CWR);
    Ok(o)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! SYNs for the submodule tests, on the shared `wire::testkit` builder.
    use crate::wire::ipv4;
    use crate::wire::tcp::{TcpFlags, TcpOptionList};
    use crate::wire::testkit::{self, FrameBuilder};
    use crate::wire::EthernetAddress;
    use std::net::Ipv4Addr;

    /// IPv4 + TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80, MSS 1460, SACK-perm, TS 0x0012d687/0, NOP, WS 7
    /// (Linux layout): the IP part of `wire::fixtures::ETH_TCP_SYN`, an independently generated capture.
    pub const FIXTURE_SYN: [u8; 60] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x74, 0x0a, 0x00, 0x00, 0x01, 0x0a,
        0x00, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x50, 0x3a, 0x6f, 0x0c, 0x81, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
        0xfa, 0xf0, 0x7e, 0xf2, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x12, 0xd6,
        0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 23);
    pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
    pub const CPORT: u16 = 51234;
    pub const VPORT: u16 = 443;

    /// Options in Linux's SYN layout: MSS, SACK-perm + TS (or NOP NOP TS), NOP + WS; TS echo 0.
    pub fn syn_opts(mss: Option<u16>, wscale: Option<u8>, sack: bool, ts: Option<u32>) -> Vec<u8> {
        testkit::options(&TcpOptionList::linux_syn(mss, sack, ts.map(|v| (v, 0)), wscale))
    }

    /// An IPv4 TCP segment `src -> dst` with the given fields, options (bytes, padded to 4) and payload,
    /// valid checksums; `ip_opts` (multiple of 4) go into the IPv4 header. TTL 57, ident 0x1c46, DF,
    /// window 64240.
    pub fn segment(
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        (seq, ack): (u32, u32),
        flags: TcpFlags,
        opts: &[u8],
        payload: &[u8],
        ip_opts: &[u8],
    ) -> Vec<u8> {
        let b = FrameBuilder::new(EthernetAddress([0; 6]), EthernetAddress([0; 6])).ttl(57).ident(0x1c46);
        let repr = b.tcp_repr(src.1, dst.1, flags, seq, ack);
        let seg = testkit::tcp_segment_raw_options(src.0, dst.0, &repr, opts, payload);
        testkit::ipv4_packet(&b.ipv4_repr(src.0, dst.0, ipv4::PROTO_TCP), ip_opts, &seg)
    }

    pub fn syn(isn: u32, opts: &[u8]) -> Vec<u8> {
        segment((CLIENT, CPORT), (VIP, VPORT), (isn, 0), TcpFlags::SYN, opts, &[], &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testutil::FIXTURE_SYN;

    #[test]
    fn parse_fixture_syn() {
        let tcp = TcpPacket::new_checked(&FIXTURE_SYN[20..]).unwrap();
        let o = syn_options(&tcp).unwrap();
        assert_eq!(
            o,
            SynOptions {
                mss: 1460,
                wscale: Some(7),
                sack_perm: true,
                timestamps: Some((0x0012d687, 0)),
                ecn: false
            }
        );
    }

    #[test]
    fn parse_defaults_clamps_and_errors() {
        assert_eq!(parse_syn_options(&[]).unwrap(), SynOptions::default());
        // MSS 0 is ignored (Linux does the same), wscale 15 clamps to 14, EOL stops parsing.
        let o = parse_syn_options(&[2, 4, 0, 0, 1, 3, 3, 15, 0, 4, 2, 0]).unwrap();
        assert_eq!((o.mss, o.wscale, o.sack_perm), (DEFAULT_MSS, Some(14), false));
        assert_eq!(parse_syn_options(&[2, 4, 5]), Err(Error::BadOption));
        assert_eq!(parse_syn_options(&[8, 8, 0, 0, 0, 0, 0, 0]), Err(Error::BadOption));
        for (opts, want) in [
            (testutil::syn_opts(Some(1400), Some(0), true, Some(7)), (1400, Some(0), true, Some((7, 0)))),
            (testutil::syn_opts(None, None, false, Some(9)), (DEFAULT_MSS, None, false, Some((9, 0)))),
            (testutil::syn_opts(Some(9000), Some(9), true, None), (9000, Some(9), true, None)),
        ] {
            let o = parse_syn_options(&opts).unwrap();
            assert_eq!((o.mss, o.wscale, o.sack_perm, o.timestamps), want);
        }
    }

    #[test]
    fn ecn_setup_needs_both_flags() {
        for (flags, ecn) in [
            (TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR, true),
            (TcpFlags::SYN | TcpFlags::ECE, false),
            (TcpFlags::SYN | TcpFlags::CWR, false),
        ] {
            let mut seg = FIXTURE_SYN[20..].to_vec();
            TcpPacket::new_unchecked(&mut seg[..]).set_flags(flags);
            assert_eq!(syn_options(&TcpPacket::new_checked(&seg[..]).unwrap()).unwrap().ecn, ecn);
        }
    }
}
