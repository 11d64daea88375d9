//! Scenario a: established UDP flows through FULLNAT, both directions, every frame checked; and
//! scenario m: the same flows through the other LVS forwarding modes ([`Forward`]).
//!
//! Flow `i` is `client(i):cport(i) -> VIP:vport`, clients drawn from a /16 the gateway reaches by a
//! static route. The warm-up sends each flow's first datagram (and resends until it arrives); the
//! real-server side learns from it the flow's rewritten tuple `LIP:lport -> RS:rport` (the payload
//! names the flow) and answers. Steady state then sends both directions from two templates:
//! `client(i):cport(i) -> VIP:vport` on the client side and `RS:rport -> LIP:lport` on the server
//! side, each delivered frame checked against what FULLNAT must produce for its flow.
//!
//! Payload (at least 18 bytes: a 64-byte frame with its FCS): magic `RV`, direction, version, flow
//! index (u32), TSC at send (u64), then a fixed byte pattern to the end.
//!
//! Invariants:
//! - A frame is counted in `rx_ok` only if every check passed: Ethernet addresses, IPv4 header and
//!   checksum, UDP length and checksum (full recomputation), magic, direction and flow index,
//!   addresses and ports against the flow's expected tuple, and every payload byte. Anything else
//!   is counted as exactly one [`RewriteError`].
//! - No allocation per packet: templates and the per-flow table are built once; sending is a copy
//!   of the template and patching of the per-flow words, with the checksums completed from
//!   precomputed sums of the template (whose per-flow fields are zero).
//! - The same checks, byte for byte, in both modes: [`Mode::Reference`] (a plain forwarder such as
//!   testpmd in the gateway's place) expects each frame back as it was sent (MACs as sent or
//!   swapped, TTL unchanged, the tuple it was sent with) where [`Mode::Check`] expects FULLNAT's
//!   rewrite, but verifies the same fields, both checksums and every payload byte. A reference run
//!   must not be cheaper for the generator than an rvsd run, or a generator-bound reference looks
//!   faster than it is. `Counters::checked_bytes` counts the bytes the checks read (a unit test
//!   holds it equal per frame in both modes).
//!
//! Forwarding modes ([`UdpConf::forward`], checked in [`Mode::Check`]):
//! - FULLNAT (above).
//! - NAT: the real server receives `client:cport -> RS:rport` (only the destination rewritten) and
//!   answers `RS:rport -> client:cport` through the gateway; the client receives it from
//!   `VIP:vport`. The warm-up learns which real server (and port) each flow went to.
//! - DR: the real server receives the client's packet unchanged but for its TTL, in a frame to the
//!   real server's own MAC: the generator answers ARP for each real server with a MAC of its own
//!   ([`arp::real_mac`](super::arp::real_mac)), so the MAC names the real server the gateway
//!   chose, and a flow must keep it. Nothing comes back: one direction only.
//! - TUN: the real server receives the client's packet (TTL decremented) inside an IPv4 header
//!   (protocol 4) from the gateway's server-side address to the real server's; one direction only.
//!
//! In [`Mode::Reference`] the forwarding mode only sets the directions: DR's and TUN's reference
//! sends client-to-server only, what a forwarder in their place would carry.
use std::net::Ipv4Addr;

use rvs_dataplane::frame::{Frame, FramePool};
use rvs_dataplane::wire::{checksum, EthernetAddress};

use super::{Counters, Engine, Latency, Macs, RewriteError, Side, Tx};

const ETH: usize = 14;
const IP: usize = 20;
const UDP: usize = 8;
/// Offset of the UDP payload in the frame.
const PAY: usize = ETH + IP + UDP;
const MAGIC: [u8; 2] = *b"RV";
const VERSION: u8 = 1;
/// Payload bytes before the pattern: magic, direction, version, flow, TSC.
const PAY_HDR: usize = 16;
/// Smallest frame (without FCS): a 64-byte Ethernet frame.
pub const MIN_FRAME: usize = 60;
/// Largest frame (without FCS) for a 1500-byte MTU.
pub const MAX_FRAME: usize = 1514;
/// Distinct client addresses used before the client port moves on (254 x 254 hosts of the /16,
/// avoiding .0 and .255 in every /24).
const HOSTS: u32 = 254 * 254;
/// Flow indices scanned per warm-up call at least (bounds the time per call once most are learned).
const RESEND_SCAN: usize = 4096;
/// TTL of what the generator sends; the gateway must forward it decremented by one.
const TTL: u8 = 64;

/// What the generator expects of the box in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A FULLNAT gateway (rvsd): every rewrite checked.
    Check,
    /// A plain forwarder (testpmd io/macswap): frames come back unrewritten, checked as fully as
    /// in [`Mode::Check`] against what was sent.
    Reference,
}

/// The gateway's forwarding mode for the service (rvsd's `forward` of its real servers), as LVS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forward {
    #[default]
    FullNat,
    Nat,
    Dr,
    Tun,
}

impl Forward {
    pub const ALL: [Forward; 4] = [Forward::FullNat, Forward::Nat, Forward::Dr, Forward::Tun];

    /// rvsd's name (`forward = "..."`).
    pub fn name(self) -> &'static str {
        match self {
            Forward::FullNat => "fullnat",
            Forward::Nat => "nat",
            Forward::Dr => "dr",
            Forward::Tun => "tun",
        }
    }

    pub fn parse(s: &str) -> Result<Forward, String> {
        Forward::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("forwarding mode {s}: fullnat, nat, dr or tun"))
    }

    /// Whether the real servers' replies go back through the gateway (FULLNAT, NAT): the
    /// generator's servers answer and its clients expect the replies. DR and TUN: client to server
    /// only.
    pub fn both_ways(self) -> bool {
        matches!(self, Forward::FullNat | Forward::Nat)
    }
}

/// Parameters of the engine.
#[derive(Debug, Clone)]
pub struct UdpConf {
    pub flows: u32,
    /// Frame length without the FCS, [`MIN_FRAME`]..=[`MAX_FRAME`].
    pub frame_len: usize,
    pub vip: Ipv4Addr,
    pub vport: u16,
    /// The clients' /16 (its first two octets are used).
    pub client_net: Ipv4Addr,
    /// Client port of the first 64516 flows; the next 64516 use the next port, and so on.
    pub client_port: u16,
    /// Real servers the generator plays (address, port).
    pub reals: Vec<(Ipv4Addr, u16)>,
    /// The gateway's local addresses (sources of the frames real servers receive).
    pub lips: Vec<Ipv4Addr>,
    pub macs: Macs,
    pub mode: Mode,
    /// The gateway's forwarding mode.
    pub forward: Forward,
    /// The gateway's server-side address: the outer source TUN must use.
    pub gw_server: Ipv4Addr,
    /// TSC ticks between two warm-up passes over the flows (each resends what was not learned).
    pub resend_gap_tsc: u64,
}

impl UdpConf {
    /// Checks the parameters; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.flows == 0 {
            return Err("flows: at least one flow".into());
        }
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.frame_len) {
            return Err(format!(
                "frame size {} (without FCS) outside {MIN_FRAME}..={MAX_FRAME}",
                self.frame_len
            ));
        }
        let ports_needed = self.flows.div_ceil(HOSTS);
        if self.client_port as u32 + ports_needed > 65_536 {
            return Err(format!(
                "flows: {} flows need client ports up to {}",
                self.flows,
                self.client_port as u32 + ports_needed - 1
            ));
        }
        if self.reals.is_empty() {
            return Err("reals: at least one real server".into());
        }
        if self.mode == Mode::Check && self.forward == Forward::FullNat && self.lips.is_empty() {
            return Err("lips: at least one local address".into());
        }
        if self.forward == Forward::Tun && self.frame_len > MAX_FRAME - IP {
            return Err(format!(
                "frame size {} (without FCS): tun adds a 20-byte header, so at most {} fit a 1500-byte MTU",
                self.frame_len,
                MAX_FRAME - IP
            ));
        }
        if matches!(self.forward, Forward::Dr | Forward::Tun) {
            if let Some((a, p)) = self.reals.iter().find(|r| r.1 != self.vport) {
                return Err(format!(
                    "reals: {a}:{p}: {} cannot change the port: a real server's port is the VIP's ({})",
                    self.forward.name(),
                    self.vport
                ));
            }
        }
        Ok(())
    }

    /// Client address of flow `i`.
    #[inline]
    pub fn client(&self, i: u32) -> Ipv4Addr {
        let h = i % HOSTS;
        let o = self.client_net.octets();
        Ipv4Addr::new(o[0], o[1], (h / 254) as u8, (h % 254 + 1) as u8)
    }

    /// Client port of flow `i`.
    #[inline]
    pub fn cport(&self, i: u32) -> u16 {
        self.client_port + (i / HOSTS) as u16
    }
}

/// A frame with every per-flow field zero, and the checksum sums of its fixed part.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    /// Accumulator of the IPv4 header with zero addresses and checksum.
    ip_acc: u64,
    /// Accumulator of the UDP pseudo header and datagram with zero addresses, ports, checksum, flow
    /// and TSC.
    udp_acc: u64,
}

impl Template {
    fn new(len: usize, src_mac: EthernetAddress, dst_mac: EthernetAddress, dir: u8) -> Template {
        let mut b = vec![0u8; len];
        b[0..6].copy_from_slice(&dst_mac.0);
        b[6..12].copy_from_slice(&src_mac.0);
        b[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = (len - ETH) as u16;
        let udp_len = ip_len - IP as u16;
        b[14] = 0x45;
        b[16..18].copy_from_slice(&ip_len.to_be_bytes());
        b[20..22].copy_from_slice(&[0x40, 0x00]); // DF
        b[22] = TTL;
        b[23] = 17;
        b[38..40].copy_from_slice(&udp_len.to_be_bytes());
        b[PAY..PAY + 2].copy_from_slice(&MAGIC);
        b[PAY + 2] = dir;
        b[PAY + 3] = VERSION;
        for (k, x) in b[PAY + PAY_HDR..].iter_mut().enumerate() {
            *x = pattern(k);
        }
        let ip_acc = checksum::accumulate(0, &b[ETH..ETH + IP]);
        let udp_acc =
            checksum::accumulate(checksum::ipv4_pseudo_header(0.into(), 0.into(), 17, udp_len), &b[34..]);
        Template { bytes: b, ip_acc, udp_acc }
    }

    /// Copies the template into `d` with the per-flow fields and both checksums filled in.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn stamp(&self, d: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flow: u32, tsc: u64) {
        d.copy_from_slice(&self.bytes);
        let (s, t) = (u32::from(src), u32::from(dst));
        d[26..30].copy_from_slice(&s.to_be_bytes());
        d[30..34].copy_from_slice(&t.to_be_bytes());
        let addrs = s as u64 + t as u64;
        let ip = !checksum::fold(self.ip_acc + addrs);
        d[24..26].copy_from_slice(&ip.to_be_bytes());
        d[34..36].copy_from_slice(&sport.to_be_bytes());
        d[36..38].copy_from_slice(&dport.to_be_bytes());
        d[PAY + 4..PAY + 8].copy_from_slice(&flow.to_be_bytes());
        d[PAY + 8..PAY + 16].copy_from_slice(&tsc.to_be_bytes());
        let acc = self.udp_acc
            + addrs
            + sport as u64
            + dport as u64
            + flow as u64
            + (tsc >> 32)
            + (tsc & 0xffff_ffff);
        let udp = checksum::udp_nonzero(!checksum::fold(acc));
        d[40..42].copy_from_slice(&udp.to_be_bytes());
    }
}

#[inline]
fn pattern(k: usize) -> u8 {
    (k as u8).wrapping_mul(31) ^ 0xa5
}

/// Direction byte: client to server, server to client.
const DIR_C2S: u8 = 0;
const DIR_S2C: u8 = 1;

/// A flow's tuple as the real server sees it. `lport == 0` means not learned yet (local and client
/// ports are never 0). FULLNAT: `LIP:lport -> RS:rport`; NAT: `client:cport -> RS:rport`; DR and
/// TUN: `client:cport -> RS:vport`, `rs` the real server the gateway chose (by its MAC for DR, the
/// outer destination for TUN; the packet itself still goes to the VIP).
#[derive(Debug, Clone, Copy, Default)]
struct Learned {
    lip: u32,
    rs: u32,
    lport: u16,
    rport: u16,
}

/// What [`UdpFlows::check_ip`] found in a packet whose every field but its tuple checked out.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    flow: u32,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
}

/// The established-flow UDP engine.
#[derive(Debug)]
pub struct UdpFlows {
    conf: UdpConf,
    c2s: Template,
    s2c: Template,
    learned: Vec<Learned>,
    n_learned: u32,
    /// Next flow to send on each side.
    cursor: [u32; 2],
    /// When the warm-up's last pass over the flows ended (it waits before resending).
    pass_end_tsc: Option<u64>,
    counters: Counters,
    latency: Latency,
    /// Per receiving side: the Ethernet destination and source a delivered frame may carry (two
    /// alternatives: a reference may swap them or not). DR's server side instead: the gateway's
    /// source MAC and a real server's MAC ([`arp::real_mac`](super::arp::real_mac)).
    want_macs: [[[u8; 12]; 2]; 2],
    /// The TTL a delivered frame must carry (TUN: the inner packet's).
    want_ttl: u8,
    /// Check mode, DR: the server side's frames go to the real servers' own MACs.
    dr: bool,
    /// Check mode, TUN: the server side's frames are IPv4-in-IPv4.
    tun: bool,
}

/// Destination then source MAC, as the first 12 bytes of a frame.
fn mac_pair(dst: EthernetAddress, src: EthernetAddress) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[..6].copy_from_slice(&dst.0);
    m[6..].copy_from_slice(&src.0);
    m
}

#[inline]
fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

#[inline]
fn be32(d: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// IP protocol number of IPv4-in-IPv4 (TUN's outer header).
const PROTO_IPIP: u8 = 4;

impl UdpFlows {
    pub fn new(conf: UdpConf) -> Result<UdpFlows, String> {
        conf.validate()?;
        let m = conf.macs;
        let c2s = Template::new(conf.frame_len, m.own[0], m.gw[0], DIR_C2S);
        let s2c = Template::new(conf.frame_len, m.own[1], m.gw[1], DIR_S2C);
        let learned = match conf.mode {
            Mode::Check => vec![Learned::default(); conf.flows as usize],
            Mode::Reference => Vec::new(),
        };
        let (want_macs, want_ttl) = match conf.mode {
            // The gateway addresses the generator's port on the side it delivers on.
            Mode::Check => {
                let side = |s: usize| [mac_pair(m.own[s], m.gw[s]); 2];
                ([side(0), side(1)], TTL - 1)
            }
            // A frame comes back as it was sent on the other side (io) or with its MACs swapped
            // (macswap).
            Mode::Reference => {
                let side = |o: usize| [mac_pair(m.gw[o], m.own[o]), mac_pair(m.own[o], m.gw[o])];
                ([side(1), side(0)], TTL)
            }
        };
        let check = conf.mode == Mode::Check;
        Ok(UdpFlows {
            want_macs,
            want_ttl,
            dr: check && conf.forward == Forward::Dr,
            tun: check && conf.forward == Forward::Tun,
            conf,
            c2s,
            s2c,
            learned,
            n_learned: 0,
            cursor: [0, 0],
            pass_end_tsc: None,
            counters: Counters::default(),
            latency: Latency::new(),
        })
    }

    pub fn conf(&self) -> &UdpConf {
        &self.conf
    }

    /// Flows whose rewritten tuple is known.
    pub fn learned(&self) -> u32 {
        self.n_learned
    }

    /// How many sides send: 2, or 1 where replies bypass the gateway (DR, TUN).
    pub fn sending_sides(&self) -> usize {
        if self.conf.forward.both_ways() {
            2
        } else {
            1
        }
    }

    /// Distinct (LIP, lport, RS, rport) tuples among learned flows equals the number learned: the
    /// gateway never gave two flows the same server-side tuple. Walks every flow (a final check,
    /// not for the fast path).
    pub fn server_tuples_unique(&self) -> bool {
        let mut v: Vec<u128> = self
            .learned
            .iter()
            .filter(|l| l.lport != 0)
            .map(|l| (l.lip as u128) << 64 | (l.rs as u128) << 32 | (l.lport as u128) << 16 | l.rport as u128)
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len() == self.n_learned as usize
    }

    /// Flows per real server among the learned ones (address, count), in `reals` order: how the
    /// gateway spread them.
    pub fn flows_per_real(&self) -> Vec<(Ipv4Addr, u32)> {
        let mut v: Vec<(Ipv4Addr, u32)> = self.conf.reals.iter().map(|r| (r.0, 0)).collect();
        v.dedup_by_key(|r| r.0);
        for l in self.learned.iter().filter(|l| l.lport != 0) {
            if let Some(r) = v.iter_mut().find(|r| u32::from(r.0) == l.rs) {
                r.1 += 1;
            }
        }
        v
    }

    /// Builds flow `i`'s frame for `side` into a fresh frame from `pool`.
    #[inline]
    fn build<P: FramePool>(&self, side: Side, i: u32, tsc: u64, pool: &mut P) -> Option<P::Frame> {
        let c = &self.conf;
        let mut f = pool.alloc()?;
        if !f.append(c.frame_len) {
            return None;
        }
        match side {
            Side::Client => self.c2s.stamp(f.data_mut(), c.client(i), c.vip, c.cport(i), c.vport, i, tsc),
            Side::Server => {
                let (rs, rport, lip, lport) = match c.mode {
                    // FULLNAT answers its local address, NAT the client (`lip`, `lport`: see
                    // [`Learned`]).
                    Mode::Check => {
                        let l = self.learned[i as usize];
                        (l.rs.into(), l.rport, l.lip.into(), l.lport)
                    }
                    Mode::Reference => {
                        let (rs, lip, rport, lport) = self.reference_reply(i);
                        (rs.into(), rport, lip.into(), lport)
                    }
                };
                self.s2c.stamp(f.data_mut(), rs, lip, rport, lport, i, tsc)
            }
        }
        Some(f)
    }

    fn send<P: FramePool>(
        &mut self,
        side: Side,
        i: u32,
        tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> bool {
        match self.build(side, i, tsc, pool) {
            Some(f) => {
                let s = side as usize;
                self.counters.tx[s] += 1;
                self.counters.tx_bytes[s] += f.len() as u64;
                tx.push(side, f);
                true
            }
            None => {
                self.counters.tx_failed += 1;
                false
            }
        }
    }

    /// [`Mode::Reference`]: flow `i`'s real-server datagram (source, destination, source port,
    /// destination port). Any tuple will do through a plain forwarder; spread it like real replies.
    #[inline]
    fn reference_reply(&self, i: u32) -> (u32, u32, u16, u16) {
        let c = &self.conf;
        let (rs, rport) = c.reals[i as usize % c.reals.len()];
        let lip = c.lips.first().copied().unwrap_or(c.vip);
        (rs.into(), lip.into(), rport, 1025 + (i % 64_511) as u16)
    }

    /// Checks a delivered frame and counts the bytes the checks read; on success returns the flow
    /// index and the TSC it was sent at. Both modes run every step; only the expected values differ
    /// (module docs).
    fn check(&mut self, side: Side, d: &[u8]) -> Result<(u32, u64), RewriteError> {
        let mut read = 0u64;
        let r = self.check_counted(side, d, &mut read);
        self.counters.checked_bytes += read;
        r
    }

    fn check_counted(&mut self, side: Side, d: &[u8], read: &mut u64) -> Result<(u32, u64), RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let s = side as usize;
        // Ethernet type.
        *read += 2;
        if side == Side::Client && !c.forward.both_ways() {
            // DR, TUN: the real servers answer the clients directly; the gateway sends nothing back.
            return Err(E::UnknownFlow);
        }
        if self.tun && side == Side::Server {
            return self.check_tun(d, read);
        }
        if d.len() < PAY + PAY_HDR || d[12..14] != [0x08, 0x00] {
            return Err(E::Malformed);
        }
        *read += 12;
        if self.dr && side == Side::Server {
            // From the gateway, to one of the real servers' MACs (which one: below, by flow).
            if d[6..12] != self.conf.macs.gw[1].0 || d[0..2] != super::arp::REAL_MAC_PREFIX {
                return Err(E::Mac);
            }
        } else {
            let [a, b] = &self.want_macs[s];
            if d[0..12] != a[..] && d[0..12] != b[..] {
                return Err(E::Mac);
            }
        }
        let p = self.check_ip::<ETH>(side, d, read)?;
        let tsc = u64::from_be_bytes(d[PAY + 8..PAY + 16].try_into().expect("8 bytes"));
        // The real server a DR frame went to: its MAC.
        let real = if self.dr { be32(d, 2) } else { 0 };
        self.check_tuple(side, p, real, read).map(|f| (f, tsc))
    }

    /// TUN, server side: the outer IPv4 header (gateway to real server, protocol 4), then the
    /// client's packet inside it as any other.
    fn check_tun(&mut self, d: &[u8], read: &mut u64) -> Result<(u32, u64), RewriteError> {
        use RewriteError as E;
        const O: usize = ETH + IP;
        let c = &self.conf;
        if d.len() < O + IP + UDP + PAY_HDR || d[12..14] != [0x08, 0x00] {
            return Err(E::Malformed);
        }
        *read += 12;
        let [a, b] = &self.want_macs[Side::Server as usize];
        if d[0..12] != a[..] && d[0..12] != b[..] {
            return Err(E::Mac);
        }
        // Outer version and header length, protocol, length, checksum, TTL (any but 0).
        *read += 2 + 2 + IP as u64 + 1;
        if d[ETH] != 0x45 || d[ETH + 9] != PROTO_IPIP || be16(d, ETH + 2) as usize != c.frame_len - ETH + IP {
            return Err(E::Malformed);
        }
        if checksum::fold(checksum::accumulate(0, &d[ETH..O])) != 0xffff {
            return Err(E::IpChecksum);
        }
        if d[ETH + 8] == 0 {
            return Err(E::Malformed);
        }
        let p = self.check_ip::<O>(Side::Server, d, read)?;
        let tsc = u64::from_be_bytes(d[O + IP + UDP + 8..O + IP + UDP + 16].try_into().expect("8 bytes"));
        // Outer addresses: from the gateway's server-side address, to the flow's real server.
        *read += 8;
        if be32(d, ETH + 12) != u32::from(self.conf.gw_server) {
            return Err(E::Address);
        }
        let real = be32(d, ETH + 16);
        self.check_tuple(Side::Server, p, real, read).map(|f| (f, tsc))
    }

    /// Checks the IPv4/UDP packet at offset `O` of frame `d` (the caller has checked that `d` holds
    /// its headers and the payload header): header, length, both checksums, the payload (magic,
    /// direction, flow, every pattern byte) and the TTL; not the tuple.
    #[inline(always)]
    fn check_ip<const O: usize>(&self, side: Side, d: &[u8], read: &mut u64) -> Result<Parsed, RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let pay = O + IP + UDP;
        // Version and header length, protocol, total length.
        *read += 4;
        if d[O] != 0x45 || d[O + 9] != 17 {
            return Err(E::Malformed);
        }
        let ip_len = be16(d, O + 2) as usize;
        if ip_len != c.frame_len - ETH || d.len() < O + ip_len {
            return Err(E::Malformed);
        }
        *read += IP as u64;
        if checksum::fold(checksum::accumulate(0, &d[O..O + IP])) != 0xffff {
            return Err(E::IpChecksum);
        }
        *read += 2;
        let udp_len = be16(d, O + IP + 4);
        if udp_len as usize != ip_len - IP {
            return Err(E::Malformed);
        }
        let (src, dst) = (be32(d, O + 12), be32(d, O + 16));
        *read += udp_len as u64;
        let ph = checksum::ipv4_pseudo_header(src.into(), dst.into(), 17, udp_len);
        let sum = checksum::fold(checksum::accumulate(ph, &d[O + IP..O + IP + udp_len as usize]));
        if be16(d, O + IP + 6) == 0 || sum != 0xffff {
            return Err(E::L4Checksum);
        }
        let want_dir = match side {
            Side::Server => DIR_C2S,
            Side::Client => DIR_S2C,
        };
        *read += 8;
        if d[pay..pay + 2] != MAGIC || d[pay + 2] != want_dir || d[pay + 3] != VERSION {
            return Err(E::UnknownFlow);
        }
        let flow = be32(d, pay + 4);
        if flow >= c.flows {
            return Err(E::UnknownFlow);
        }
        let body = &d[pay + PAY_HDR..O + ip_len];
        *read += body.len() as u64;
        if body.iter().enumerate().any(|(k, &x)| x != pattern(k)) {
            return Err(E::Payload);
        }
        *read += 1;
        if d[O + 8] != self.want_ttl {
            return Err(E::Malformed);
        }
        let (sport, dport) = (be16(d, O + IP), be16(d, O + IP + 2));
        Ok(Parsed { flow, src, dst, sport, dport })
    }

    /// The tuple of flow `p.flow`'s packet on `side` against what the mode must produce; `real`:
    /// the real server a DR or TUN frame went to (its MAC's, or the outer destination).
    fn check_tuple(&mut self, side: Side, p: Parsed, real: u32, read: &mut u64) -> Result<u32, RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let flow = p.flow;
        *read += 12;
        let client = || (u32::from(c.client(flow)), u32::from(c.vip), c.cport(flow), c.vport);
        // The tuple this flow's frame must carry on this side.
        let want = match (c.mode, side) {
            (Mode::Check, Side::Client) => {
                // FULLNAT and NAT alike: from the VIP to the client.
                (u32::from(c.vip), u32::from(c.client(flow)), c.vport, c.cport(flow))
            }
            (Mode::Check, Side::Server) => {
                let l = self.learned[flow as usize];
                if l.lport == 0 {
                    // Warm-up: the flow's first datagram teaches its rewritten tuple.
                    return self.learn(p, real);
                }
                match c.forward {
                    Forward::FullNat | Forward::Nat => (l.lip, l.rs, l.lport, l.rport),
                    Forward::Dr | Forward::Tun => {
                        if real != l.rs {
                            // A flow's packets all go to the real server its first one went to.
                            return Err(if self.dr { E::Mac } else { E::Address });
                        }
                        client()
                    }
                }
            }
            (Mode::Reference, Side::Server) => client(),
            (Mode::Reference, Side::Client) => self.reference_reply(flow),
        };
        if p.src != want.0 || p.dst != want.1 {
            return Err(E::Address);
        }
        if p.sport != want.2 || p.dport != want.3 {
            return Err(E::Port);
        }
        Ok(flow)
    }

    /// Check mode, warm-up: records flow `p.flow`'s tuple from its first datagram to reach a real
    /// server, if it is one the mode may produce.
    fn learn(&mut self, p: Parsed, real: u32) -> Result<u32, RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let flow = p.flow;
        let is_real = |a: u32| c.reals.iter().any(|&(r, _)| u32::from(r) == a);
        let l = match c.forward {
            Forward::FullNat => {
                if !c.lips.iter().any(|&a| u32::from(a) == p.src) || !is_real(p.dst) {
                    return Err(E::Address);
                }
                if !c.reals.iter().any(|&(a, port)| u32::from(a) == p.dst && port == p.dport) || p.sport == 0
                {
                    return Err(E::Port);
                }
                Learned { lip: p.src, rs: p.dst, lport: p.sport, rport: p.dport }
            }
            Forward::Nat => {
                if p.src != u32::from(c.client(flow)) || !is_real(p.dst) {
                    return Err(E::Address);
                }
                if p.sport != c.cport(flow)
                    || !c.reals.iter().any(|&(a, port)| u32::from(a) == p.dst && port == p.dport)
                {
                    return Err(E::Port);
                }
                Learned { lip: p.src, rs: p.dst, lport: p.sport, rport: p.dport }
            }
            Forward::Dr | Forward::Tun => {
                if !is_real(real) {
                    return Err(if self.dr { E::Mac } else { E::Address });
                }
                if p.src != u32::from(c.client(flow)) || p.dst != u32::from(c.vip) {
                    return Err(E::Address);
                }
                if p.sport != c.cport(flow) || p.dport != c.vport {
                    return Err(E::Port);
                }
                Learned { lip: p.src, rs: real, lport: p.sport, rport: p.dport }
            }
        };
        self.learned[flow as usize] = l;
        self.n_learned += 1;
        Ok(flow)
    }
}

impl Engine for UdpFlows {
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
        if side == Side::Server && !self.conf.forward.both_ways() {
            // DR, TUN: the real servers' replies would bypass the gateway.
            return 0;
        }
        if !self.warmed_up() {
            // Warm-up: only clients send; the first pass sends every flow once, later passes resend
            // to flows not learned yet (lost on the way, or still queued behind ARP).
            if side == Side::Server {
                return 0;
            }
            // A pass ends the call, and the next one waits `resend_gap_tsc`: datagrams still in flight
            // (or held by the gateway's ARP) are not resent at once.
            if self.pass_end_tsc.is_some_and(|t| now_tsc.wrapping_sub(t) < self.conf.resend_gap_tsc) {
                return 0;
            }
            self.pass_end_tsc = None;
            let mut scanned = 0;
            while sent < budget && scanned < RESEND_SCAN.max(budget) {
                let i = self.cursor[s];
                scanned += 1;
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
                // During the warm-up the real server answers each datagram, so the reply path (and the
                // gateway's ARP for the client side) is exercised before the measurement.
                if warming && side == Side::Server && self.conf.forward.both_ways() {
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
        self.latency.clear();
    }

    fn latency(&self) -> Option<&Latency> {
        Some(&self.latency)
    }
}

#[cfg(test)]
mod tests;
