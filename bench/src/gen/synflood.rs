//! Scenario c: a SYN flood against a SYN-proxied VIP, and [`WithFlood`], which runs a legitimate
//! engine beside it to show the legitimate flows keep their throughput.
//!
//! The flood sends SYNs from random addresses of a range (spoofed clients: the gateway reaches them
//! through its route to the generator) and random ports, and never answers the cookie SYN-ACKs. It
//! keeps no state per SYN: the ISN is a keyed hash of the source address and port, so a SYN-ACK is
//! checked (addresses, ports, exactly SYN|ACK, `ack = isn + 1`, both checksums) from its own
//! tuple. Nothing of the flood may reach a real server: any frame on the server side is an
//! [`RewriteError::UnknownFlow`].
use std::net::Ipv4Addr;

use rvs_dataplane::frame::{Frame, FramePool};
use rvs_dataplane::wire::TcpFlags;

use super::tcp::TcpConnEngine;
use super::tcpwire::{self, Pace, Seg};
use super::{Counters, Engine, Macs, RewriteError, Side, Tx};

/// MSS 1460, as flood tools send (and enough for the cookie to encode).
const FLOOD_SYN_OPTS: [u8; 4] = [2, 4, 5, 0xb4];

#[derive(Debug, Clone)]
pub struct FloodConfig {
    pub macs: Macs,
    pub vip: Ipv4Addr,
    pub vport: u16,
    /// Spoofed sources: `sources` consecutive addresses from `source_base`.
    pub source_base: Ipv4Addr,
    pub sources: u32,
    /// SYNs per second; 0 is as fast as the budget allows.
    pub rate: u64,
    pub tsc_hz: u64,
    /// Seeds the address/port sequence and keys the ISNs.
    pub seed: u64,
}

/// What the flood counts beyond [`Counters`] (`tx[0]` are the SYNs, `rx_ok[0]` the good SYN-ACKs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodStats {
    pub syns: u64,
    pub synacks: u64,
    /// RSTs from the gateway (a draining gateway refuses SYNs so).
    pub rsts: u64,
}

#[derive(Debug)]
pub struct SynFlood {
    cfg: FloodConfig,
    rng: u64,
    pace: Pace,
    counters: Counters,
    stats: FloodStats,
}

/// SplitMix64's finaliser: a keyed hash for the ISNs and the step of the address sequence.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SynFlood {
    pub fn new(cfg: FloodConfig) -> Result<SynFlood, String> {
        if cfg.sources == 0 || u32::from(cfg.source_base).checked_add(cfg.sources - 1).is_none() {
            return Err(format!(
                "flood sources: {} addresses from {} do not fit IPv4",
                cfg.sources, cfg.source_base
            ));
        }
        Ok(SynFlood {
            rng: cfg.seed,
            pace: Pace::new(cfg.rate, cfg.tsc_hz),
            counters: Counters::default(),
            stats: FloodStats::default(),
            cfg,
        })
    }

    pub fn stats(&self) -> &FloodStats {
        &self.stats
    }

    /// Whether `a` is one of the flood's spoofed sources (for dispatching replies).
    pub fn owns(&self, a: Ipv4Addr) -> bool {
        u32::from(a).wrapping_sub(u32::from(self.cfg.source_base)) < self.cfg.sources
    }

    fn isn(&self, src: Ipv4Addr, sport: u16) -> u32 {
        mix(self.cfg.seed ^ (u64::from(u32::from(src)) << 16 | u64::from(sport))) as u32
    }

    fn check_synack(&mut self, d: &[u8]) -> Result<(), RewriteError> {
        let p = tcpwire::parse(d)?;
        let m = self.cfg.macs;
        if p.dst_mac != m.own[Side::Client as usize] || p.src_mac != m.gw[Side::Client as usize] {
            return Err(RewriteError::Mac);
        }
        if p.src != self.cfg.vip || !self.owns(p.dst) {
            return Err(RewriteError::Address);
        }
        if p.sport != self.cfg.vport || p.dport < 1024 {
            return Err(RewriteError::Port);
        }
        if p.flags.rst() {
            self.stats.rsts += 1;
            return Ok(());
        }
        let core = TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN | TcpFlags::RST | TcpFlags::PSH;
        if p.flags.bits() & core.bits() != (TcpFlags::SYN | TcpFlags::ACK).bits() {
            return Err(RewriteError::Malformed);
        }
        if p.ack != self.isn(p.dst, p.dport).wrapping_add(1) {
            return Err(RewriteError::Sequence);
        }
        if p.payload.1 != p.payload.0 {
            return Err(RewriteError::Payload);
        }
        self.stats.synacks += 1;
        Ok(())
    }
}

impl Engine for SynFlood {
    fn generate<P: FramePool>(
        &mut self,
        side: Side,
        now_tsc: u64,
        budget: usize,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> usize {
        if side != Side::Client {
            return 0;
        }
        let n = self.pace.take(now_tsc, budget);
        let m = self.cfg.macs;
        for i in 0..n {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let r = mix(self.rng);
            let src = Ipv4Addr::from(u32::from(self.cfg.source_base) + (r as u32) % self.cfg.sources);
            let sport = 1024 + ((r >> 32) as u16) % (65535 - 1024);
            let seg = Seg {
                src_mac: m.own[Side::Client as usize],
                dst_mac: m.gw[Side::Client as usize],
                src,
                dst: self.cfg.vip,
                sport,
                dport: self.cfg.vport,
                seq: self.isn(src, sport),
                ack: 0,
                flags: TcpFlags::SYN,
                window: 64_240,
                opts: &FLOOD_SYN_OPTS,
                payload_len: 0,
            };
            let Some(mut f) = pool.alloc() else {
                self.counters.tx_failed += 1;
                self.pace.untake(n - i);
                return i;
            };
            if !tcpwire::write(&mut f, &seg, |_| {}) {
                self.counters.tx_failed += 1;
                self.pace.untake(n - i);
                return i;
            }
            self.counters.tx[0] += 1;
            self.counters.tx_bytes[0] += f.len() as u64;
            self.stats.syns += 1;
            tx.push(Side::Client, f);
        }
        n
    }

    /// Checks and counts a SYN-ACK, never answers it.
    fn receive<P: FramePool>(
        &mut self,
        side: Side,
        f: P::Frame,
        _now_tsc: u64,
        _pool: &mut P,
        _tx: &mut Tx<P::Frame>,
    ) {
        let r = match side {
            Side::Client => self.check_synack(f.data()),
            Side::Server => Err(RewriteError::UnknownFlow),
        };
        match r {
            Ok(()) => {
                self.counters.rx_ok[side as usize] += 1;
                self.counters.rx_bytes[side as usize] += f.len() as u64;
            }
            Err(e) => self.counters.error(e),
        }
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// A legitimate connection engine and a flood side by side. Per `generate` call the flood takes up
/// to `flood_share` of the budget (its own rate permitting) and the legitimate engine what is
/// left. Client-side frames go to the flood when addressed to one of its sources, everything else
/// to the legitimate engine (so a flood frame leaking to a real server is the legitimate engine's
/// unknown flow). `counters()` are the sum of both; each engine's own are at hand.
#[derive(Debug)]
pub struct WithFlood {
    pub legit: TcpConnEngine,
    pub flood: SynFlood,
    /// Share of each budget the flood may take, in 1/256ths.
    pub flood_share: u16,
    sum: Counters,
}

impl WithFlood {
    pub fn new(legit: TcpConnEngine, flood: SynFlood, flood_share: f64) -> WithFlood {
        let share = (flood_share.clamp(0.0, 1.0) * 256.0).round() as u16;
        WithFlood { legit, flood, flood_share: share, sum: Counters::default() }
    }

    fn resum(&mut self) {
        let (a, b) = (self.legit.counters(), self.flood.counters());
        let s = &mut self.sum;
        for i in 0..2 {
            s.tx[i] = a.tx[i] + b.tx[i];
            s.tx_bytes[i] = a.tx_bytes[i] + b.tx_bytes[i];
            s.rx_ok[i] = a.rx_ok[i] + b.rx_ok[i];
            s.rx_bytes[i] = a.rx_bytes[i] + b.rx_bytes[i];
        }
        for (i, e) in s.errors.iter_mut().enumerate() {
            *e = a.errors[i] + b.errors[i];
        }
        s.tx_failed = a.tx_failed + b.tx_failed;
        s.completed = a.completed + b.completed;
    }
}

impl Engine for WithFlood {
    fn generate<P: FramePool>(
        &mut self,
        side: Side,
        now_tsc: u64,
        budget: usize,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) -> usize {
        let cap = budget * usize::from(self.flood_share) / 256;
        let n = self.flood.generate(side, now_tsc, cap, pool, tx);
        let n = n + self.legit.generate(side, now_tsc, budget - n, pool, tx);
        self.resum();
        n
    }

    fn receive<P: FramePool>(
        &mut self,
        side: Side,
        f: P::Frame,
        now_tsc: u64,
        pool: &mut P,
        tx: &mut Tx<P::Frame>,
    ) {
        let to_flood =
            side == Side::Client && tcpwire::ipv4_dst(f.data()).is_some_and(|a| self.flood.owns(a));
        if to_flood {
            self.flood.receive(side, f, now_tsc, pool, tx);
        } else {
            self.legit.receive(side, f, now_tsc, pool, tx);
        }
        self.resum();
    }

    fn counters(&self) -> &Counters {
        &self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::inproc::{InProc, Scenario};
    use rvs_dataplane::frame::VecFrame;
    use rvs_dataplane::stats::Event;
    use rvs_dataplane::wire::{Ipv4Packet, TcpPacket};

    fn scenario() -> Scenario {
        Scenario { synproxy: true, toa: false, lips: 2, reals: 2, max_conns_per_worker: 1 << 14 }
    }

    fn refill(f: &mut VecFrame) {
        let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[14..]);
        ip.fill_checksum();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        TcpPacket::new_unchecked(ip.payload_mut()).fill_checksum(s, d);
    }

    #[test]
    fn every_flood_syn_gets_a_checked_cookie_and_no_state() {
        let s = scenario();
        let mut l = InProc::new(&s.setup(), SynFlood::new(s.flood(0)).unwrap(), 32);
        l.run(200, |_| false);
        let (st, c) = (*l.engine.stats(), l.engine.counters().clone());
        assert_eq!(st.syns, 200 * 32);
        assert_eq!(st.synacks, st.syns, "{c:?}");
        assert_eq!(c.total_errors(), 0, "{c:?}");
        assert_eq!(c.rx_ok, [st.syns, 0]);
        // Stateless: the gateway kept nothing and sent nothing toward the real servers.
        assert_eq!(l.worker.conns().len(), 0);
        assert_eq!(l.stats.events(Event::SynproxySynAcks), st.syns);
        assert_eq!(l.stats.events(Event::SynproxySynsSent), 0);
        assert_eq!(l.stats.total_drops(), 0, "{:?}", l.stats.nonzero());
    }

    #[test]
    fn the_rate_bounds_the_flood() {
        let s = scenario();
        // 5000 SYN/s on a 1000 Hz clock: 5 per step, plus the first credit.
        let mut l = InProc::new(&s.setup(), SynFlood::new(s.flood(5_000)).unwrap(), 32);
        l.run(100, |_| false);
        assert_eq!(l.engine.stats().syns, 5 * 99 + 1);
    }

    #[test]
    fn a_bad_synack_is_counted_by_kind() {
        type Change = fn(&mut VecFrame);
        let cases: [(RewriteError, Change); 4] = [
            (RewriteError::Sequence, |f| {
                let mut t = TcpPacket::new_unchecked(&mut f.data_mut()[34..]);
                let a = t.ack_number();
                t.set_ack_number(a ^ 0x100);
                refill(f);
            }),
            (RewriteError::Malformed, |f| {
                TcpPacket::new_unchecked(&mut f.data_mut()[34..]).set_flags(TcpFlags::ACK);
                refill(f);
            }),
            (RewriteError::Address, |f| {
                Ipv4Packet::new_unchecked(&mut f.data_mut()[14..])
                    .set_src_addr(Ipv4Addr::new(198, 18, 0, 101));
                refill(f);
            }),
            (RewriteError::L4Checksum, |f| f.data_mut()[40] ^= 1),
        ];
        for (want, change) in cases {
            let s = scenario();
            let mut l = InProc::new(&s.setup(), SynFlood::new(s.flood(0)).unwrap(), 8);
            let mut n = 0;
            l.tamper = Some(Box::new(move |_, f| {
                n += 1;
                if n == 5 {
                    change(f);
                }
            }));
            l.run(10, |_| false);
            let c = l.engine.counters();
            assert_eq!((c.errors[want as usize], c.total_errors()), (1, 1), "{want:?}: {c:?}");
            assert_eq!(l.engine.stats().synacks, 79);
        }
    }

    #[test]
    fn legitimate_connections_complete_beside_the_flood() {
        let s = scenario();
        let legit = TcpConnEngine::new(s.tcp(64, 2_000)).unwrap();
        let flood = SynFlood::new(s.flood(0)).unwrap();
        let mut l = InProc::new(&s.setup(), WithFlood::new(legit, flood, 0.5), 32);
        let steps = l.run(20_000, |e| e.legit.done());
        assert!(steps < 20_000);
        let e = &l.engine;
        assert_eq!((e.legit.stats().completed, e.legit.stats().failed), (2_000, 0), "{:?}", e.legit.stats());
        assert!(e.flood.stats().syns >= 16 * steps as u64, "{:?}", e.flood.stats());
        assert_eq!(e.flood.stats().synacks, e.flood.stats().syns);
        assert_eq!(e.counters().total_errors(), 0, "{:?}", e.counters());
        assert_eq!(e.counters().completed, 2_000);
        let sum = e.legit.counters().tx[0] + e.flood.counters().tx[0];
        assert_eq!(e.counters().tx[0], sum);
        // Only the legitimate connections reached the real servers.
        assert_eq!(l.stats.events(Event::SynproxyHandshakes), 2_000);
    }
}
