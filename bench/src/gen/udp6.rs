//! Scenario a over IPv6 (`--family ipv6`: IPv6 FULLNAT, IPv6 on both sides) and NAT64
//! (`--family nat64`: IPv6 clients, IPv4 real servers): established UDP flows, both directions,
//! every delivered frame checked, as [`super::udp`] does for IPv4.
//!
//! Flow `i` is `client6(i):cport -> VIP6:vport`, clients numbered in a /64 the gateway reaches by
//! a static route. As in IPv4, the warm-up sends each flow's first datagram until the server side
//! has seen it and learned its rewritten tuple (`LIP:lport -> RS:rport`, IPv6 or IPv4), and the
//! steady state sends both directions.
//!
//! Payload: [`super::udp`]'s (magic `RV`, direction, version, flow index, TSC, a byte pattern).
//!
//! Invariants:
//! - A frame counts in `rx_ok` only if every check passed: Ethernet addresses and type, the IP
//!   version, protocol, length and hop limit/TTL (IPv4: its header checksum), the UDP length and
//!   checksum by full recomputation over the right pseudo header, the payload's every byte, and the
//!   tuple against the flow's (learned once on the server side). Anything else is one
//!   [`RewriteError`].
//! - [`Mode::Reference`] (testpmd macswap in the gateway's place) sends the same frames on both
//!   sides, IPv6 on the client side and the family of the server side, and checks them as sent.
//! - No allocation per packet: frames come from the pool and are written in place.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_dataplane::frame::{Frame, FramePool};
use rvs_dataplane::wire::checksum;

use super::udp::{Mode, MAX_FRAME};
use super::{Counters, Engine, Latency, Macs, RewriteError, Side, Tx};

const ETH: usize = 14;
const IP6: usize = 40;
const IP4: usize = 20;
const UDP: usize = 8;
const MAGIC: [u8; 2] = *b"RV";
const VERSION: u8 = 1;
const PAY_HDR: usize = 16;
const HOP: u8 = 64;
/// Smallest client-side frame (without FCS): the IPv6 and UDP headers and the payload header
/// (78 bytes), rounded up so that NAT64's IPv4 frames (20 bytes shorter) stay at or above the
/// 60-byte Ethernet minimum, unpadded.
pub const MIN_FRAME6: usize = 80;

/// Which variant of scenario a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv6 FULLNAT: IPv6 real servers and local addresses.
    Ipv6,
    /// NAT64: IPv6 VIP, IPv4 real servers and local addresses.
    Nat64,
}

impl Family {
    pub fn parse(s: &str) -> Result<Family, String> {
        match s {
            "ipv6" => Ok(Family::Ipv6),
            "nat64" => Ok(Family::Nat64),
            _ => Err(format!("family {s}: ipv4, ipv6 or nat64")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv6 => "ipv6",
            Family::Nat64 => "nat64",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Udp6Conf {
    pub family: Family,
    pub flows: u32,
    /// Client-side frame length without the FCS (the server side's is 20 bytes shorter for NAT64).
    pub frame_len: usize,
    pub vip: Ipv6Addr,
    pub vport: u16,
    /// The clients' /64: client `i` is its prefix with interface id `i + 1`.
    pub client_net: Ipv6Addr,
    pub client_port: u16,
    /// Real servers (IPv6 for `Ipv6`, IPv4 for `Nat64`).
    pub reals: Vec<(IpAddr, u16)>,
    /// The gateway's local addresses (same family as the reals).
    pub lips: Vec<IpAddr>,
    pub macs: Macs,
    pub mode: Mode,
    pub resend_gap_tsc: u64,
}

impl Udp6Conf {
    pub fn validate(&self) -> Result<(), String> {
        if self.flows == 0 {
            return Err("flows: at least one flow".into());
        }
        if !(MIN_FRAME6..=MAX_FRAME).contains(&self.frame_len) {
            return Err(format!(
                "frame size {} (without FCS) outside {MIN_FRAME6}..={MAX_FRAME}",
                self.frame_len
            ));
        }
        if self.reals.is_empty() {
            return Err("reals: at least one real server".into());
        }
        let v4 = self.family == Family::Nat64;
        if let Some(r) = self.reals.iter().find(|r| r.0.is_ipv4() != v4) {
            return Err(format!(
                "reals: {}: {} needs {} real servers",
                r.0,
                self.family.name(),
                if v4 { "IPv4" } else { "IPv6" }
            ));
        }
        if self.mode == Mode::Check && self.lips.is_empty() {
            return Err("lips: at least one local address".into());
        }
        Ok(())
    }

    pub fn client(&self, i: u32) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.client_net) & !0xffff_ffff_ffff_ffffu128 | (u128::from(i) + 1))
    }

    fn server_len(&self) -> usize {
        match self.family {
            Family::Ipv6 => self.frame_len,
            Family::Nat64 => self.frame_len - (IP6 - IP4),
        }
    }
}

/// A flow's server-side tuple; `lport == 0`: not learned yet.
#[derive(Debug, Clone, Copy)]
struct Learned {
    lip: IpAddr,
    rs: IpAddr,
    lport: u16,
    rport: u16,
}

const UNLEARNED: Learned = Learned {
    lip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    rs: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    lport: 0,
    rport: 0,
};

#[inline]
fn pattern(k: usize) -> u8 {
    (k as u8).wrapping_mul(31) ^ 0xa5
}

fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

fn addr6(d: &[u8], o: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&d[o..o + 16]);
    Ipv6Addr::from(a)
}

fn pseudo(src: IpAddr, dst: IpAddr, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::ipv4_pseudo_header(s, d, 17, len as u16),
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            rvs_dataplane::wire::ipv6::pseudo_header(v6(s), v6(d), 17, len as u32)
        }
    }
}

/// Writes a UDP datagram `src:sport -> dst:dport` carrying flow `flow`'s payload (direction
/// `dir`) into `d` (the frame, `len` bytes), Ethernet `dst_mac`/`src_mac`, IPv4 or IPv6 by the
/// addresses' family, with full checksums.
#[allow(clippy::too_many_arguments)]
fn write(
    d: &mut [u8],
    macs: ([u8; 6], [u8; 6]),
    (src, sport): (IpAddr, u16),
    (dst, dport): (IpAddr, u16),
    dir: u8,
    flow: u32,
    tsc: u64,
) {
    d[0..6].copy_from_slice(&macs.0);
    d[6..12].copy_from_slice(&macs.1);
    let len = d.len();
    let l4 = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            d[12..14].copy_from_slice(&[0x08, 0x00]);
            let ip = &mut d[ETH..ETH + IP4];
            ip.fill(0);
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((len - ETH) as u16).to_be_bytes());
            ip[6] = 0x40;
            ip[8] = HOP;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&t.octets());
            let c = !checksum::fold(checksum::accumulate(0, ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ETH + IP4
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            d[12..14].copy_from_slice(&[0x86, 0xdd]);
            let ip = &mut d[ETH..ETH + IP6];
            ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
            ip[4..6].copy_from_slice(&((len - ETH - IP6) as u16).to_be_bytes());
            ip[6] = 17;
            ip[7] = HOP;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&t.octets());
            ETH + IP6
        }
        _ => unreachable!("one family per datagram"),
    };
    let u = &mut d[l4..];
    let ulen = u.len();
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
    u[6..8].fill(0);
    let p = UDP;
    u[p..p + 2].copy_from_slice(&MAGIC);
    u[p + 2] = dir;
    u[p + 3] = VERSION;
    u[p + 4..p + 8].copy_from_slice(&flow.to_be_bytes());
    u[p + 8..p + 16].copy_from_slice(&tsc.to_be_bytes());
    for (k, x) in u[p + PAY_HDR..].iter_mut().enumerate() {
        *x = pattern(k);
    }
    let c = checksum::udp_nonzero(!checksum::fold(checksum::accumulate(pseudo(src, dst, ulen), u)));
    u[6..8].copy_from_slice(&c.to_be_bytes());
}

const DIR_C2S: u8 = 0;
const DIR_S2C: u8 = 1;

/// The IPv6 / NAT64 established-flow UDP engine.
#[derive(Debug)]
pub struct Udp6Flows {
    conf: Udp6Conf,
    learned: Vec<Learned>,
    n_learned: u32,
    cursor: [u32; 2],
    pass_end_tsc: Option<u64>,
    counters: Counters,
    latency: Latency,
}

impl Udp6Flows {
    pub fn new(conf: Udp6Conf) -> Result<Udp6Flows, String> {
        conf.validate()?;
        let n = conf.flows as usize;
        Ok(Udp6Flows {
            conf,
            learned: vec![UNLEARNED; n],
            n_learned: 0,
            cursor: [0, 0],
            pass_end_tsc: None,
            counters: Counters::default(),
            latency: Latency::new(),
        })
    }

    pub fn learned(&self) -> u32 {
        self.n_learned
    }

    pub fn family(&self) -> Family {
        self.conf.family
    }

    /// Flow `i`'s server-side tuple (rs, rport, lip, lport) to answer from.
    fn server_tuple(&self, i: u32) -> (IpAddr, u16, IpAddr, u16) {
        let c = &self.conf;
        match c.mode {
            Mode::Check => {
                let l = self.learned[i as usize];
                (l.rs, l.rport, l.lip, l.lport)
            }
            Mode::Reference => {
                let (rs, rport) = c.reals[i as usize % c.reals.len()];
                let lip = c.lips.first().copied().unwrap_or(rs);
                (rs, rport, lip, 1025 + (i % 64_511) as u16)
            }
        }
    }

    fn send<P: FramePool>(
        &mut self,
        side: Side,
        i: u32,
        tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> bool {
        let c = &self.conf;
        let Some(mut f) = pool.alloc() else {
            self.counters.tx_failed += 1;
            return false;
        };
        let len = if side == Side::Client { c.frame_len } else { c.server_len() };
        if !f.append(len) {
            self.counters.tx_failed += 1;
            return false;
        }
        let s = side as usize;
        let macs = (c.macs.gw[s].0, c.macs.own[s].0);
        match side {
            Side::Client => {
                let cport = c.client_port;
                write(
                    f.data_mut(),
                    macs,
                    (c.client(i).into(), cport),
                    (c.vip.into(), c.vport),
                    DIR_C2S,
                    i,
                    tsc,
                )
            }
            Side::Server => {
                let (rs, rport, lip, lport) = self.server_tuple(i);
                write(f.data_mut(), macs, (rs, rport), (lip, lport), DIR_S2C, i, tsc)
            }
        }
        self.counters.tx[s] += 1;
        self.counters.tx_bytes[s] += f.len() as u64;
        tx.push(side, f);
        true
    }

    /// Checks a delivered frame; the flow and its send TSC.
    fn check(&mut self, side: Side, d: &[u8]) -> Result<(u32, u64), RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let s = side as usize;
        let check = c.mode == Mode::Check;
        // What arrives on each side: Check mode, the gateway's output (the client side IPv6, the
        // server side the reals' family); Reference, what the other side sent, turned around.
        let v6 = match (side, c.family, check) {
            (Side::Client, _, true) => true,
            (Side::Server, f, true) => f == Family::Ipv6,
            (Side::Client, f, false) => f == Family::Ipv6,
            (Side::Server, _, false) => true,
        };
        let want_len = if v6 { c.frame_len } else { c.server_len() };
        if d.len() != want_len {
            return Err(E::Malformed);
        }
        // Check: from the gateway to us on this side. Reference: as the other side sent it (io) or
        // with its MACs swapped (macswap).
        let o = 1 - s;
        let pair = |dst: [u8; 6], src: [u8; 6]| d[0..6] == dst && d[6..12] == src;
        let ok_macs = if check {
            pair(c.macs.own[s].0, c.macs.gw[s].0)
        } else {
            pair(c.macs.gw[o].0, c.macs.own[o].0) || pair(c.macs.own[o].0, c.macs.gw[o].0)
        };
        if !ok_macs {
            return Err(E::Mac);
        }
        let want_hop = if check { HOP - 1 } else { HOP };
        let (src, dst, l4) = if v6 {
            if d[12..14] != [0x86, 0xdd] || d[ETH] >> 4 != 6 || d[ETH + 6] != 17 {
                return Err(E::Malformed);
            }
            if be16(d, ETH + 4) as usize != d.len() - ETH - IP6 || d[ETH + 7] != want_hop {
                return Err(E::Malformed);
            }
            (IpAddr::V6(addr6(d, ETH + 8)), IpAddr::V6(addr6(d, ETH + 24)), ETH + IP6)
        } else {
            if d[12..14] != [0x08, 0x00] || d[ETH] != 0x45 || d[ETH + 9] != 17 || d[ETH + 8] != want_hop {
                return Err(E::Malformed);
            }
            if be16(d, ETH + 2) as usize != d.len() - ETH {
                return Err(E::Malformed);
            }
            if checksum::fold(checksum::accumulate(0, &d[ETH..ETH + IP4])) != 0xffff {
                return Err(E::IpChecksum);
            }
            let a = |o: usize| IpAddr::V4(Ipv4Addr::new(d[o], d[o + 1], d[o + 2], d[o + 3]));
            (a(ETH + 12), a(ETH + 16), ETH + IP4)
        };
        let u = &d[l4..];
        if be16(u, 4) as usize != u.len() || u.len() < UDP + PAY_HDR {
            return Err(E::Malformed);
        }
        if checksum::fold(checksum::accumulate(pseudo(src, dst, u.len()), u)) != 0xffff {
            return Err(E::L4Checksum);
        }
        let p = &u[UDP..];
        // The client side receives what the server side sent (through the gateway or a forwarder),
        // and the other way round.
        let want_dir = if side == Side::Client { DIR_S2C } else { DIR_C2S };
        if p[0..2] != MAGIC || p[2] != want_dir || p[3] != VERSION {
            return Err(E::Payload);
        }
        let flow = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        if flow >= c.flows {
            return Err(E::UnknownFlow);
        }
        if p[PAY_HDR..].iter().enumerate().any(|(k, &x)| x != pattern(k)) {
            return Err(E::Payload);
        }
        let tsc = u64::from_be_bytes(p[8..16].try_into().expect("8 bytes"));
        let (sport, dport) = (be16(u, 0), be16(u, 2));
        if !check {
            return Ok((flow, tsc));
        }
        match side {
            Side::Client => {
                if src != IpAddr::V6(c.vip) || dst != IpAddr::V6(c.client(flow)) {
                    return Err(E::Address);
                }
                if sport != c.vport || dport != c.client_port {
                    return Err(E::Port);
                }
            }
            Side::Server => {
                let l = &mut self.learned[flow as usize];
                if l.lport == 0 {
                    if !c.lips.contains(&src) || !c.reals.iter().any(|r| r.0 == dst && r.1 == dport) {
                        return Err(E::Address);
                    }
                    *l = Learned { lip: src, rs: dst, lport: sport, rport: dport };
                    self.n_learned += 1;
                } else if (l.lip, l.rs) != (src, dst) {
                    return Err(E::Address);
                } else if (l.lport, l.rport) != (sport, dport) {
                    return Err(E::Port);
                }
            }
        }
        Ok((flow, tsc))
    }
}

impl Engine for Udp6Flows {
    fn generate<P: FramePool>(
        &mut self,
        side: Side,
        now_tsc: u64,
        budget: usize,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> usize {
        let n = self.conf.flows;
        let s = side as usize;
        let mut sent = 0;
        if !self.warmed_up() {
            if side == Side::Server {
                return 0;
            }
            if self.pass_end_tsc.is_some_and(|t| now_tsc.wrapping_sub(t) < self.conf.resend_gap_tsc) {
                return 0;
            }
            self.pass_end_tsc = None;
            while sent < budget {
                let i = self.cursor[s];
                let last = i + 1 == n;
                self.cursor[s] = if last { 0 } else { i + 1 };
                if self.learned[i as usize].lport == 0 {
                    if !self.send(side, i, now_tsc, pool, tx) {
                        break;
                    }
                    sent += 1;
                }
                if last {
                    self.pass_end_tsc = Some(now_tsc);
                    break;
                }
            }
            return sent;
        }
        while sent < budget {
            let i = self.cursor[s];
            self.cursor[s] = if i + 1 == n { 0 } else { i + 1 };
            if !self.send(side, i, now_tsc, pool, tx) {
                break;
            }
            sent += 1;
        }
        sent
    }

    fn receive<P: FramePool>(
        &mut self,
        side: Side,
        f: P::Frame,
        now_tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) {
        let warming = !self.warmed_up();
        match self.check(side, f.data()) {
            Ok((flow, sent)) => {
                let s = side as usize;
                self.counters.rx_ok[s] += 1;
                self.counters.rx_bytes[s] += f.len() as u64;
                if sent <= now_tsc {
                    self.latency.record(now_tsc - sent);
                }
                drop(f);
                if warming && side == Side::Server {
                    self.send(Side::Server, flow, now_tsc, pool, tx);
                }
            }
            Err(e) => self.counters.error(e),
        }
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn warmed_up(&self) -> bool {
        self.conf.mode == Mode::Reference || self.n_learned == self.conf.flows
    }

    fn start_measuring(&mut self) {
        self.latency = Latency::new();
    }

    fn latency(&self) -> Option<&Latency> {
        Some(&self.latency)
    }
}

#[cfg(test)]
mod tests;
