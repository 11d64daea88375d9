//! Sequence and timestamp translation for the life of a SYN-proxied connection.
//!
//! After the cookie handshake the client believes the server's ISN is `cookie_isn`; the real server
//! (RS) chose `rs_isn`. Numbers that count *server* bytes therefore live in two spaces:
//!
//! ```text
//! rs_space = cookie_space + delta        delta    = rs_isn - cookie_isn         (mod 2^32)
//! client's view of RS TSval = rs + ts    ts_delta = our_synack_tsval - rs_synack_tsval
//! ```
//!
//! Numbers that count *client* bytes (the client's seq, the RS's ack) are the same on both sides: the
//! SYN to the RS carries the client's ISN. Likewise the client's TSval clock is never changed.
//!
//! | direction                   | field       | counts        | rewrite             |
//! |-----------------------------|-------------|---------------|---------------------|
//! | RS -> client (`to_client`)  | seq         | server bytes  | `- delta`           |
//! |                             | ack         | client bytes  | unchanged           |
//! |                             | SACK blocks | client bytes  | unchanged           |
//! |                             | TSval       | RS clock      | `+ ts_delta`        |
//! |                             | TSecr       | client clock  | unchanged           |
//! | client -> RS (`to_server`)  | seq         | client bytes  | unchanged           |
//! |                             | ack         | server bytes  | `+ delta`           |
//! |                             | SACK blocks | server bytes  | each edge `+ delta` |
//! |                             | TSval       | client clock  | unchanged           |
//! |                             | TSecr       | our/RS clock  | `- ts_delta`        |
//!
//! `ts_delta` makes the RS's TSvals continue from the TSval of our SYN-ACK, so the client's PAWS check
//! (RFC 7323 5) and RTT measurement see one clock; a TSecr echoing our SYN-ACK's TSval maps to the RS's
//! own SYN-ACK TSval. Without timestamps (`ts_delta: None`) the options are left alone.
//!
//! Everything is mod 2^32 (`wrapping_*`). Rewrites are in place and checksum-incremental (RFC 1624):
//! no payload byte is read, and a segment that arrived corrupted stays detectably corrupted. The IPv4
//! header is not involved (no field of it, nor of the pseudo header, changes): these take the TCP
//! segment alone, e.g. `ipv4::Packet::payload_mut()`, before or after the FULLNAT address rewrite.
use crate::wire::checksum;
use crate::wire::tcp::{Packet as TcpPacket, MAX_HEADER_LEN};
use crate::wire::{Result, TcpOption, TcpOptions};

const CHECKSUM_AT: usize = 16;
const OPTIONS_AT: usize = 20;

/// The per-connection translation; see the module docs for the directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqShift {
    /// `rs_isn - cookie_isn` (mod 2^32).
    pub delta: u32,
    /// `our_synack_tsval - rs_synack_tsval` (mod 2^32) when timestamps are in use.
    pub ts_delta: Option<u32>,
}

impl SeqShift {
    /// From our cookie ISN, the RS's ISN (its SYN-ACK's seq) and, if both SYN-ACKs carried timestamps,
    /// `(our SYN-ACK's TSval, the RS SYN-ACK's TSval)`.
    pub const fn new(cookie_isn: u32, rs_isn: u32, tsvals: Option<(u32, u32)>) -> SeqShift {
        let ts_delta = match tsvals {
            Some((ours, rs)) => Some(ours.wrapping_sub(rs)),
            None => None,
        };
        SeqShift { delta: rs_isn.wrapping_sub(cookie_isn), ts_delta }
    }

    /// A server-byte number from RS space to the client's (cookie) space: RS seq -> client.
    pub const fn seq_to_client(&self, rs_seq: u32) -> u32 {
        rs_seq.wrapping_sub(self.delta)
    }

    /// A server-byte number from the client's (cookie) space to RS space: client ack/SACK -> RS.
    pub const fn ack_to_server(&self, client_ack: u32) -> u32 {
        client_ack.wrapping_add(self.delta)
    }

    /// An RS TSval as the client must see it (unchanged without timestamps).
    pub const fn tsval_to_client(&self, rs_tsval: u32) -> u32 {
        match self.ts_delta {
            Some(d) => rs_tsval.wrapping_add(d),
            None => rs_tsval,
        }
    }

    /// A client's TSecr as the RS must see it (unchanged without timestamps).
    pub const fn tsecr_to_server(&self, client_tsecr: u32) -> u32 {
        match self.ts_delta {
            Some(d) => client_tsecr.wrapping_sub(d),
            None => client_tsecr,
        }
    }

    /// Rewrite a TCP segment going RS -> client: seq into cookie space, TSval onto our clock.
    ///
    /// Errors (segment untouched): TCP parse errors, `BadOption` for malformed options, since we could
    /// not rewrite the options a receiver might still parse past them; drop such a segment (no sane stack
    /// sends one on an established connection).
    pub fn to_client(&self, seg: &mut [u8]) -> Result<()> {
        let opts = options_copy(seg)?;
        if let Some(d) = self.ts_delta {
            for_each_option(&opts, |at, o| {
                if let TcpOption::Timestamps { tsval, .. } = o {
                    put32_csum(seg, at + 2, tsval.wrapping_add(d));
                }
            });
        }
        let mut t = TcpPacket::new_unchecked(seg);
        let seq = t.seq_number();
        t.set_seq_number(self.seq_to_client(seq));
        Ok(())
    }

    /// Rewrite a TCP segment going client -> RS: ack and SACK edges into RS space, TSecr back onto the
    /// RS's clock. The ack field is mapped only with the ACK flag set: without it the field is
    /// meaningless (often 0) and is left as sent.
    ///
    /// Errors as [`SeqShift::to_client`].
    pub fn to_server(&self, seg: &mut [u8]) -> Result<()> {
        map_acks_and(
            seg,
            |a| self.ack_to_server(a),
            |seg, at, o| {
                if let TcpOption::Timestamps { tsecr, .. } = o {
                    if self.ts_delta.is_some() {
                        put32_csum(seg, at + 6, self.tsecr_to_server(tsecr));
                    }
                }
            },
        )
    }
}

/// Maps a segment's acknowledgement number (only with the ACK flag set: without it the field is
/// meaningless) and every SACK edge through `map`, checksum updated: how a shift of the other
/// side's sequence space reaches the acknowledgements of this one (SYN-proxy shifts the real
/// server's bytes in client segments, the PROXY protocol the client's bytes in real-server ones).
///
/// Errors as [`SeqShift::to_client`]: the segment is left untouched.
pub fn map_acks(seg: &mut [u8], map: impl Fn(u32) -> u32) -> Result<()> {
    map_acks_and(seg, map, |_, _, _| {})
}

/// [`map_acks`], calling `other(seg, offset, option)` for every other option on the same walk.
fn map_acks_and(
    seg: &mut [u8],
    map: impl Fn(u32) -> u32,
    mut other: impl FnMut(&mut [u8], usize, TcpOption<'_>),
) -> Result<()> {
    let opts = options_copy(seg)?;
    for_each_option(&opts, |at, o| match o {
        TcpOption::Sack(blocks) => {
            for (i, (left, right)) in blocks.iter().enumerate() {
                let edge = at + 2 + 8 * i;
                put32_csum(seg, edge, map(left));
                put32_csum(seg, edge + 4, map(right));
            }
        }
        o => other(seg, at, o),
    });
    let mut t = TcpPacket::new_unchecked(seg);
    if t.flags().ack() {
        let ack = t.ack_number();
        t.set_ack_number(map(ack));
    }
    Ok(())
}

/// The options area, copied (at most 40 bytes, on the stack) so it can be walked while the segment is
/// edited; validated first so that an error leaves the segment untouched.
fn options_copy(seg: &[u8]) -> Result<Options> {
    let t = TcpPacket::new_checked(seg)?;
    let src = t.options();
    let mut o = Options { buf: [0; MAX_HEADER_LEN - OPTIONS_AT], len: src.len() };
    o.buf[..src.len()].copy_from_slice(src);
    for opt in TcpOptions::new(o.bytes()) {
        opt?;
    }
    Ok(o)
}

struct Options {
    buf: [u8; MAX_HEADER_LEN - OPTIONS_AT],
    len: usize,
}

impl Options {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Call `f(offset in the segment, option)` for each (already validated) option.
fn for_each_option(opts: &Options, mut f: impl FnMut(usize, TcpOption<'_>)) {
    let mut it = TcpOptions::new(opts.bytes());
    loop {
        let at = OPTIONS_AT + it.position();
        match it.next() {
            Some(Ok(o)) => f(at, o),
            _ => return,
        }
    }
}

/// Store a 32-bit value at any offset within the options (alignment is arbitrary there), adjusting the
/// TCP checksum over the even-aligned span that covers it.
fn put32_csum(seg: &mut [u8], at: usize, v: u32) {
    let (start, end) = (at & !1, (at + 4 + 1) & !1);
    let mut old = [0u8; 6];
    let old = &mut old[..end - start];
    old.copy_from_slice(&seg[start..end]);
    seg[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let delta = checksum::delta_bytes(old, &seg[start..end]);
    let c = u16::from_be_bytes([seg[CHECKSUM_AT], seg[CHECKSUM_AT + 1]]);
    seg[CHECKSUM_AT..CHECKSUM_AT + 2].copy_from_slice(&checksum::adjust(c, delta).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synproxy::testutil::{segment, CLIENT, CPORT, VIP, VPORT};
    use crate::wire::testutil::Rng;
    use crate::wire::{Error, TcpFlags};
    use std::net::Ipv4Addr;

    const RS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);

    fn tcp_of(ip: &[u8]) -> &[u8] {
        &ip[20..]
    }

    /// Full recomputation on a copy.
    fn full_checksum(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let mut v = seg.to_vec();
        let mut t = TcpPacket::new_unchecked(&mut v[..]);
        t.fill_checksum(src, dst);
        t.checksum()
    }

    /// Options: `lead` NOPs, then SACK with `blocks`, then (if `ts`) a timestamps option, then padding.
    fn opts(lead: usize, blocks: &[(u32, u32)], ts: Option<(u32, u32)>) -> Vec<u8> {
        let mut o = vec![1u8; lead];
        if let Some((v, e)) = ts {
            o.extend_from_slice(&[8, 10]);
            o.extend_from_slice(&v.to_be_bytes());
            o.extend_from_slice(&e.to_be_bytes());
        }
        if !blocks.is_empty() {
            o.extend_from_slice(&[5, 2 + 8 * blocks.len() as u8]);
            for (l, r) in blocks {
                o.extend_from_slice(&l.to_be_bytes());
                o.extend_from_slice(&r.to_be_bytes());
            }
        }
        while o.len() % 4 != 0 {
            o.push(0);
        }
        o
    }

    /// (seq, ack, SACK blocks, timestamps) of a segment.
    type Fields = (u32, u32, Vec<(u32, u32)>, Option<(u32, u32)>);

    fn parsed(seg: &[u8]) -> Fields {
        let t = TcpPacket::new_checked(seg).unwrap();
        let mut sack = Vec::new();
        let mut ts = None;
        for o in t.options_iter() {
            match o.unwrap() {
                TcpOption::Sack(b) => sack.extend(b.iter()),
                TcpOption::Timestamps { tsval, tsecr } => ts = Some((tsval, tsecr)),
                _ => {}
            }
        }
        (t.seq_number(), t.ack_number(), sack, ts)
    }

    #[test]
    fn handshake_scenario_across_the_wrap() {
        // Our cookie ISN just below 2^32, the RS's just above 0: every number crosses the wrap.
        let (cookie_isn, rs_isn) = (0xffff_ff00u32, 0x0000_0100u32);
        let (our_ts, rs_ts) = (0xffff_fff0u32, 1_000u32);
        let sh = SeqShift::new(cookie_isn, rs_isn, Some((our_ts, rs_ts)));
        assert_eq!(sh.delta, 0x200);
        let client_isn = 0x7000_0000u32;

        // RS -> client: first data byte rs_isn + 1 appears as cookie_isn + 1; ack untouched; RS TSval
        // 1500 continues our clock (500 ms after our SYN-ACK's TSval); TSecr (client's clock) untouched.
        let mut p = segment(
            (RS, VPORT),
            (CLIENT, CPORT),
            (rs_isn + 1, client_isn + 1),
            TcpFlags::ACK | TcpFlags::PSH,
            &opts(2, &[(client_isn + 10, client_isn + 20)], Some((1_500, 0x4242))),
            b"hello",
            &[],
        );
        sh.to_client(&mut p[20..]).unwrap();
        assert_eq!(
            parsed(tcp_of(&p)),
            (
                cookie_isn + 1,
                client_isn + 1,
                vec![(client_isn + 10, client_isn + 20)],
                Some((our_ts.wrapping_add(500), 0x4242))
            )
        );
        assert!(TcpPacket::new_checked(tcp_of(&p)).unwrap().verify_checksum(RS, CLIENT));
        assert_eq!(TcpPacket::new_checked(tcp_of(&p)).unwrap().payload(), b"hello");

        // Client -> RS: acks 0x200 bytes of server data (in cookie space, wrapped past 0), SACKs a block
        // beyond, echoes the TSval it saw. The RS must get its own numbers back.
        let ack = cookie_isn.wrapping_add(1 + 0x200);
        let sack = (cookie_isn.wrapping_add(0x300), cookie_isn.wrapping_add(0x400));
        let mut p = segment(
            (CLIENT, CPORT),
            (VIP, VPORT),
            (client_isn + 1, ack),
            TcpFlags::ACK,
            &opts(0, &[sack], Some((0x4243, our_ts.wrapping_add(500)))),
            &[],
            &[],
        );
        sh.to_server(&mut p[20..]).unwrap();
        assert_eq!(
            parsed(tcp_of(&p)),
            (
                client_isn + 1,
                rs_isn + 1 + 0x200,
                vec![(rs_isn + 0x300, rs_isn + 0x400)],
                Some((0x4243, 1_500))
            )
        );
        assert!(TcpPacket::new_checked(tcp_of(&p)).unwrap().verify_checksum(CLIENT, VIP));

        // The client's TSecr of our SYN-ACK's TSval maps to the RS's SYN-ACK TSval.
        assert_eq!(sh.tsecr_to_server(our_ts), rs_ts);
        assert_eq!(sh.tsval_to_client(rs_ts), our_ts);
        assert_eq!(sh.seq_to_client(rs_isn), cookie_isn);
        assert_eq!(sh.ack_to_server(cookie_isn), rs_isn);
    }

    #[test]
    fn random_rewrites_match_full_recompute() {
        let mut rng = Rng::new(90);
        for i in 0..5_000 {
            // Deltas and numbers chosen to straddle 2^32 often.
            let near = |rng: &mut Rng| {
                if rng.below(2) == 0 {
                    rng.u32()
                } else {
                    (rng.u32() >> 24).wrapping_sub(128)
                }
            };
            let ts = rng.below(3) != 0;
            let sh =
                SeqShift::new(near(&mut rng), near(&mut rng), ts.then(|| (near(&mut rng), near(&mut rng))));
            let blocks: Vec<(u32, u32)> =
                (0..rng.below(if ts { 4 } else { 5 })).map(|_| (near(&mut rng), near(&mut rng))).collect();
            let (tv, te) = (near(&mut rng), near(&mut rng));
            let lead = rng.below(4);
            let mut o = opts(lead, &blocks, (rng.below(2) == 0).then_some((tv, te)));
            if o.len() > 40 {
                o = opts(lead, &blocks[..blocks.len() - 1], None);
            }
            let mut payload = [0u8; 33];
            let plen = rng.below(payload.len());
            rng.fill(&mut payload[..plen]);
            let (seq, ack) = (near(&mut rng), near(&mut rng));
            let flags = if rng.below(8) == 0 { TcpFlags::RST } else { TcpFlags::ACK };
            let to_client = i % 2 == 0;
            let (src, dst) = if to_client { (RS, CLIENT) } else { (CLIENT, VIP) };
            let mut p = segment((src, 1), (dst, 2), (seq, ack), flags, &o, &payload[..plen], &[]);
            let (_, _, sack0, ts0) = parsed(tcp_of(&p));
            if to_client {
                sh.to_client(&mut p[20..]).unwrap();
            } else {
                sh.to_server(&mut p[20..]).unwrap();
            }
            let seg = tcp_of(&p);
            let t = TcpPacket::new_checked(seg).unwrap();
            assert_eq!(t.checksum(), full_checksum(seg, src, dst), "case {i}");
            assert!(t.verify_checksum(src, dst));
            assert_eq!(t.payload(), &payload[..plen]);
            let (s, a, sack, tsopt) = parsed(seg);
            if to_client {
                assert_eq!((s, a, &sack), (seq.wrapping_sub(sh.delta), ack, &sack0));
                assert_eq!(tsopt, ts0.map(|(v, e)| (sh.tsval_to_client(v), e)));
            } else {
                let want_ack = if flags.ack() { ack.wrapping_add(sh.delta) } else { ack };
                assert_eq!((s, a), (seq, want_ack));
                let mapped: Vec<_> =
                    sack0.iter().map(|&(l, r)| (sh.ack_to_server(l), sh.ack_to_server(r))).collect();
                assert_eq!(sack, mapped);
                assert_eq!(tsopt, ts0.map(|(v, e)| (v, sh.tsecr_to_server(e))));
            }
        }
    }

    #[test]
    fn malformed_options_leave_segment_untouched() {
        let sh = SeqShift::new(1, 2, Some((3, 4)));
        let mut o = opts(0, &[(5, 6)], Some((7, 8)));
        o[1] = 9; // timestamps with a bad length
        let p = segment((CLIENT, CPORT), (VIP, VPORT), (1, 2), TcpFlags::ACK, &o, &[], &[]);
        for dir in [SeqShift::to_client, SeqShift::to_server] {
            let mut q = p.clone();
            assert_eq!(dir(&sh, &mut q[20..]), Err(Error::BadOption));
            assert_eq!(q, p);
            assert_eq!(dir(&sh, &mut q[20..39]), Err(Error::Truncated));
        }
    }

    #[test]
    fn without_timestamps_options_are_left_alone() {
        let sh = SeqShift::new(100, 50, None);
        assert_eq!((sh.delta, sh.ts_delta), (50u32.wrapping_sub(100), None));
        let o = opts(1, &[], Some((7, 8)));
        let mut p = segment((CLIENT, CPORT), (VIP, VPORT), (1, 200), TcpFlags::ACK, &o, &[], &[]);
        sh.to_server(&mut p[20..]).unwrap();
        assert_eq!(parsed(tcp_of(&p)), (1, 150, vec![], Some((7, 8))));
        sh.to_client(&mut p[20..]).unwrap();
        assert_eq!(parsed(tcp_of(&p)), (1u32.wrapping_sub(sh.delta), 150, vec![], Some((7, 8))));
        assert!(TcpPacket::new_checked(tcp_of(&p)).unwrap().verify_checksum(CLIENT, VIP));
    }
}
