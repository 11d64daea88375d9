//! Building and checking the Ethernet/IPv4/TCP frames of the TCP engines ([`super::tcp`],
//! [`super::synflood`]).
//!
//! Invariants:
//! - Builders write every byte of the frame they return (no stale bytes of a reused frame survive)
//!   and set valid IPv4 and TCP checksums.
//! - [`parse`] verifies both checksums before any field is trusted, so a corrupted frame is counted
//!   as a checksum error and never as a sequence or address error.
use std::net::Ipv4Addr;

use rvs_dataplane::frame::Frame;
use rvs_dataplane::wire::{ipv4, tcp, EthernetAddress, Ipv4Packet, TcpFlags, TcpPacket};

use super::RewriteError;

pub const ETH: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Offset of the TCP header in an option-less IPv4 frame.
pub const TCP_AT: usize = ETH + ipv4::HEADER_LEN;

/// What goes into one TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Seg<'a> {
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// TCP options, a multiple of 4 bytes long.
    pub opts: &'a [u8],
    pub payload_len: usize,
}

/// Makes `f` exactly `n` bytes long; false when the buffer cannot grow that far.
pub fn set_len<F: Frame>(f: &mut F, n: usize) -> bool {
    let l = f.len();
    if l < n {
        f.append(n - l)
    } else {
        f.trim(l - n)
    }
}

/// Writes `s` into `f` (resized to fit), the payload produced by `fill`, then the checksums.
/// False (frame unusable) when the frame cannot hold it.
pub fn write<F: Frame>(f: &mut F, s: &Seg<'_>, fill: impl FnOnce(&mut [u8])) -> bool {
    debug_assert!(s.opts.len() % 4 == 0 && s.opts.len() <= 40);
    let tcp_len = tcp::HEADER_LEN + s.opts.len() + s.payload_len;
    if !set_len(f, TCP_AT + tcp_len) {
        return false;
    }
    let d = f.data_mut();
    d[0..6].copy_from_slice(&s.dst_mac.0);
    d[6..12].copy_from_slice(&s.src_mac.0);
    d[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = ipv4::Repr {
        src: s.src,
        dst: s.dst,
        protocol: ipv4::PROTO_TCP,
        payload_len: tcp_len as u16,
        ttl: 64,
        ident: 0,
        dont_frag: true,
    };
    if ip.emit(&mut d[ETH..]).is_err() {
        return false;
    }
    let seg = &mut d[TCP_AT..];
    let mut t = TcpPacket::new_unchecked(&mut *seg);
    t.set_header_len_raw(tcp::HEADER_LEN + s.opts.len());
    t.set_src_port(s.sport);
    t.set_dst_port(s.dport);
    t.set_seq_number(s.seq);
    t.set_ack_number(s.ack);
    t.set_flags(s.flags);
    t.set_window_len(s.window);
    t.set_urgent_at(0);
    t.set_checksum(0);
    t.options_mut().copy_from_slice(s.opts);
    fill(t.payload_mut());
    t.fill_checksum(s.src, s.dst);
    true
}

/// The fields of a delivered segment, after its checksums verified.
#[derive(Debug, Clone, Copy)]
pub struct Parsed {
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Where the TCP options and the payload are in the frame.
    pub opts: (usize, usize),
    pub payload: (usize, usize),
}

/// Parses an Ethernet/IPv4/TCP frame and verifies its IPv4 and TCP checksums.
pub fn parse(d: &[u8]) -> Result<Parsed, RewriteError> {
    if d.len() < TCP_AT || u16::from_be_bytes([d[12], d[13]]) != ETHERTYPE_IPV4 {
        return Err(RewriteError::Malformed);
    }
    let ip = Ipv4Packet::new_checked(&d[ETH..]).map_err(|_| RewriteError::Malformed)?;
    if ip.protocol() != ipv4::PROTO_TCP || ip.is_fragment() {
        return Err(RewriteError::Malformed);
    }
    if !ip.verify_checksum() {
        return Err(RewriteError::IpChecksum);
    }
    let hl = ip.header_len();
    let total = ip.total_len() as usize;
    let t = TcpPacket::new_checked(ip.payload()).map_err(|_| RewriteError::Malformed)?;
    if !t.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return Err(RewriteError::L4Checksum);
    }
    let at = ETH + hl;
    let th = t.header_len();
    Ok(Parsed {
        dst_mac: EthernetAddress([d[0], d[1], d[2], d[3], d[4], d[5]]),
        src_mac: EthernetAddress([d[6], d[7], d[8], d[9], d[10], d[11]]),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        sport: t.src_port(),
        dport: t.dst_port(),
        seq: t.seq_number(),
        ack: t.ack_number(),
        flags: t.flags(),
        opts: (at + tcp::HEADER_LEN, at + th),
        payload: (at + th, ETH + total),
    })
}

/// The IPv4 destination of an Ethernet/IPv4 frame, without any check beyond the length; for
/// dispatching frames between engines.
pub fn ipv4_dst(d: &[u8]) -> Option<Ipv4Addr> {
    if d.len() < ETH + 20 || u16::from_be_bytes([d[12], d[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    Some(Ipv4Addr::new(d[30], d[31], d[32], d[33]))
}

/// A nonzero xorshift state, distinct for distinct seeds but one.
fn pattern_start(seed: u32) -> u32 {
    seed.wrapping_mul(0x9e37_79b1).wrapping_add(0x7f4a_7c15).max(1)
}

/// Fills `buf` with the bytes the peer regenerates from `seed` to check it.
pub fn fill_pattern(buf: &mut [u8], seed: u32) {
    let mut x = pattern_start(seed);
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
}

pub fn check_pattern(buf: &[u8], seed: u32) -> bool {
    let mut x = pattern_start(seed);
    buf.iter().all(|&b| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b == x as u8
    })
}

/// The MSS option's value in an options area, if any.
pub fn mss_of(opts: &[u8]) -> Option<u16> {
    rvs_dataplane::wire::TcpOptions::new(opts).find_map(|o| match o {
        Ok(rvs_dataplane::wire::TcpOption::Mss(m)) => Some(m),
        _ => None,
    })
}

/// The timestamps option's `(TSval, TSecr)` in an options area, if any.
pub fn timestamps_of(opts: &[u8]) -> Option<(u32, u32)> {
    rvs_dataplane::wire::TcpOptions::new(opts).find_map(|o| match o {
        Ok(rvs_dataplane::wire::TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
        _ => None,
    })
}

/// Multiplicative inverse of an odd `a` modulo 2^32 (Newton's iteration: each step doubles the
/// correct low bits, five steps from 3 reach 32+).
pub const fn inverse_u32(a: u32) -> u32 {
    let mut x = a.wrapping_mul(3) ^ 2;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// Paces what an engine originates to a target rate, from the TSC the driver passes in.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Per second; 0 is unlimited.
    pub rate: u64,
    pub tsc_hz: u64,
    start: Option<u64>,
    sent: u64,
}

impl Pace {
    pub fn new(rate: u64, tsc_hz: u64) -> Pace {
        Pace { rate, tsc_hz: tsc_hz.max(1), start: None, sent: 0 }
    }

    /// How many more may go now (at most `cap`), counted as sent.
    pub fn take(&mut self, now: u64, cap: usize) -> usize {
        if self.rate == 0 {
            return cap;
        }
        let start = *self.start.get_or_insert(now);
        // One unit of credit at the start, so a paced engine does not wait a whole period first.
        let due = (u128::from(now.saturating_sub(start)) * u128::from(self.rate) / u128::from(self.tsc_hz))
            as u64
            + 1;
        let n = due.saturating_sub(self.sent).min(cap as u64);
        self.sent += n;
        n as usize
    }

    /// Gives back what was taken but could not be sent.
    pub fn untake(&mut self, n: usize) {
        self.sent = self.sent.saturating_sub(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_dataplane::frame::VecFrame;

    #[test]
    fn pace_follows_the_clock() {
        let mut p = Pace::new(1000, 1_000_000);
        assert_eq!(p.take(5_000, 100), 1);
        assert_eq!(p.take(5_000, 100), 0);
        // 10 ms later: 10 more are due.
        assert_eq!(p.take(15_000, 100), 10);
        assert_eq!(p.take(1_015_000, 100), 100);
        p.untake(40);
        // 1.01 s in: 1011 due, 111 taken, 40 given back.
        assert_eq!(p.take(1_015_000, 1000), 1011 - 71);
        let mut u = Pace::new(0, 1);
        assert_eq!(u.take(0, 7), 7);
    }

    #[test]
    fn inverse_is_inverse() {
        for a in [1u32, 3, 0x9e37_79b1, 0xffff_ffff, 0x0123_4567] {
            assert_eq!(a.wrapping_mul(inverse_u32(a)), 1, "{a:#x}");
        }
    }

    #[test]
    fn write_then_parse_and_corruption_is_detected() {
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let n = EthernetAddress([2, 0, 0, 0, 0, 2]);
        let s = Seg {
            src_mac: m,
            dst_mac: n,
            src: Ipv4Addr::new(198, 18, 0, 9),
            dst: Ipv4Addr::new(198, 18, 0, 100),
            sport: 4000,
            dport: 80,
            seq: 0xffff_fff0,
            ack: 7,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window: 1000,
            opts: &[2, 4, 5, 0xb4],
            payload_len: 33,
        };
        // A reused frame longer than needed is trimmed and fully rewritten.
        let mut f = VecFrame::from_bytes(&[0xee; 200]);
        assert!(write(&mut f, &s, |p| fill_pattern(p, 42)));
        assert_eq!(f.len(), TCP_AT + 24 + 33);
        let p = parse(f.data()).unwrap();
        assert_eq!((p.src, p.dst, p.sport, p.dport, p.seq, p.ack), (s.src, s.dst, 4000, 80, s.seq, 7));
        assert_eq!((p.src_mac, p.dst_mac, p.flags), (m, n, s.flags));
        assert_eq!(mss_of(&f.data()[p.opts.0..p.opts.1]), Some(1460));
        assert!(check_pattern(&f.data()[p.payload.0..p.payload.1], 42));
        assert!(!check_pattern(&f.data()[p.payload.0..p.payload.1], 43));
        assert_eq!(ipv4_dst(f.data()), Some(s.dst));

        let mut bad = f.clone();
        bad.data_mut()[TCP_AT + 30] ^= 1;
        assert_eq!(parse(bad.data()).unwrap_err(), RewriteError::L4Checksum);
        let mut bad = f.clone();
        bad.data_mut()[ETH + 8] ^= 1; // TTL
        assert_eq!(parse(bad.data()).unwrap_err(), RewriteError::IpChecksum);
        let mut bad = f.clone();
        bad.data_mut()[12] = 0x86;
        assert_eq!(parse(bad.data()).unwrap_err(), RewriteError::Malformed);
        assert_eq!(parse(&f.data()[..30]).unwrap_err(), RewriteError::Malformed);
    }
}
