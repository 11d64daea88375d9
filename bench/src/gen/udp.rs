//! Scenario a: established UDP flows through FULLNAT, both directions, every frame checked.
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
        if self.mode == Mode::Check && self.lips.is_empty() {
            return Err("lips: at least one local address".into());
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

/// A flow's rewritten tuple as the real server sees it. `lport == 0` means not learned yet (local
/// ports are never 0).
#[derive(Debug, Clone, Copy, Default)]
struct Learned {
    lip: u32,
    rs: u32,
    lport: u16,
    rport: u16,
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
    /// alternatives: a reference may swap them or not).
    want_macs: [[[u8; 12]; 2]; 2],
    /// The TTL a delivered frame must carry.
    want_ttl: u8,
}

/// Destination then source MAC, as the first 12 bytes of a frame.
fn mac_pair(dst: EthernetAddress, src: EthernetAddress) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[..6].copy_from_slice(&dst.0);
    m[6..].copy_from_slice(&src.0);
    m
}

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
        Ok(UdpFlows {
            want_macs,
            want_ttl,
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
    /// index. Both modes run every step; only the expected values differ (module docs).
    fn check(&mut self, side: Side, d: &[u8]) -> Result<u32, RewriteError> {
        let mut read = 0u64;
        let r = self.check_counted(side, d, &mut read);
        self.counters.checked_bytes += read;
        r
    }

    fn check_counted(&mut self, side: Side, d: &[u8], read: &mut u64) -> Result<u32, RewriteError> {
        use RewriteError as E;
        let c = &self.conf;
        let s = side as usize;
        // Ethernet type, IPv4 version and header length, protocol.
        *read += 4;
        if d.len() < PAY + PAY_HDR || d[12..14] != [0x08, 0x00] || d[14] != 0x45 || d[23] != 17 {
            return Err(E::Malformed);
        }
        *read += 12;
        let [a, b] = &self.want_macs[s];
        if d[0..12] != a[..] && d[0..12] != b[..] {
            return Err(E::Mac);
        }
        *read += 2;
        let ip_len = u16::from_be_bytes([d[16], d[17]]) as usize;
        if ip_len != c.frame_len - ETH || d.len() < c.frame_len {
            return Err(E::Malformed);
        }
        *read += IP as u64;
        if checksum::fold(checksum::accumulate(0, &d[ETH..ETH + IP])) != 0xffff {
            return Err(E::IpChecksum);
        }
        *read += 2;
        let udp_len = u16::from_be_bytes([d[38], d[39]]);
        if udp_len as usize != ip_len - IP {
            return Err(E::Malformed);
        }
        let be32 = |o: usize| u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
        let be16 = |o: usize| u16::from_be_bytes([d[o], d[o + 1]]);
        let (src, dst) = (be32(26), be32(30));
        *read += udp_len as u64;
        let ph = checksum::ipv4_pseudo_header(src.into(), dst.into(), 17, udp_len);
        let sum = checksum::fold(checksum::accumulate(ph, &d[34..34 + udp_len as usize]));
        if be16(40) == 0 || sum != 0xffff {
            return Err(E::L4Checksum);
        }
        let want_dir = match side {
            Side::Server => DIR_C2S,
            Side::Client => DIR_S2C,
        };
        *read += 8;
        if d[PAY..PAY + 2] != MAGIC || d[PAY + 2] != want_dir || d[PAY + 3] != VERSION {
            return Err(E::UnknownFlow);
        }
        let flow = be32(PAY + 4);
        if flow >= c.flows {
            return Err(E::UnknownFlow);
        }
        let body = &d[PAY + PAY_HDR..c.frame_len];
        *read += body.len() as u64;
        if body.iter().enumerate().any(|(k, &x)| x != pattern(k)) {
            return Err(E::Payload);
        }
        *read += 1;
        if d[22] != self.want_ttl {
            return Err(E::Malformed);
        }
        *read += 12;
        let (sport, dport) = (be16(34), be16(36));
        // The tuple this flow's frame must carry on this side.
        let want = match (c.mode, side) {
            (Mode::Check, Side::Client) => {
                (u32::from(c.vip), u32::from(c.client(flow)), c.vport, c.cport(flow))
            }
            (Mode::Check, Side::Server) => {
                let l = self.learned[flow as usize];
                if l.lport == 0 {
                    // Warm-up: the flow's first datagram teaches its rewritten tuple.
                    return self.learn(flow, src, dst, sport, dport);
                }
                (l.lip, l.rs, l.lport, l.rport)
            }
            (Mode::Reference, Side::Server) => {
                (u32::from(c.client(flow)), u32::from(c.vip), c.cport(flow), c.vport)
            }
            (Mode::Reference, Side::Client) => self.reference_reply(flow),
        };
        if src != want.0 || dst != want.1 {
            return Err(E::Address);
        }
        if sport != want.2 || dport != want.3 {
            return Err(E::Port);
        }
        Ok(flow)
    }

    /// Check mode, warm-up: records flow `flow`'s rewritten tuple from its first datagram to reach
    /// a real server, if it is one FULLNAT may produce.
    fn learn(&mut self, flow: u32, src: u32, dst: u32, sport: u16, dport: u16) -> Result<u32, RewriteError> {
        let c = &self.conf;
        if !c.lips.iter().any(|&a| u32::from(a) == src) || !c.reals.iter().any(|&(a, _)| u32::from(a) == dst)
        {
            return Err(RewriteError::Address);
        }
        if !c.reals.iter().any(|&(a, p)| u32::from(a) == dst && p == dport) || sport == 0 {
            return Err(RewriteError::Port);
        }
        self.learned[flow as usize] = Learned { lip: src, rs: dst, lport: sport, rport: dport };
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
            Ok(flow) => {
                let s = side as usize;
                self.counters.rx_ok[s] += 1;
                self.counters.rx_bytes[s] += f.len() as u64;
                let d = f.data();
                let sent = u64::from_be_bytes(d[PAY + 8..PAY + 16].try_into().expect("8 bytes"));
                if sent <= now_tsc {
                    self.latency.record(now_tsc - sent);
                }
                drop(f);
                // During the warm-up the real server answers each datagram, so the reply path (and the
                // gateway's ARP for the client side) is exercised before the measurement.
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
        self.latency.clear();
    }

    fn latency(&self) -> Option<&Latency> {
        Some(&self.latency)
    }
}

#[cfg(test)]
mod tests;
