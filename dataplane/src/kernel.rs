//! The exception path: frames between a physical port and its kernel interface (a TAP port).
//!
//! A port with `kernel = "<ifname>"` has a TAP port (worker-side index [`PortSetup::kernel`],
//! after the physical ports) whose kernel side carries the port's MAC and address, so kernel
//! software (health checks, a routing daemon, keepalived, sshd) uses the DPDK port.
//!
//! Invariants:
//! - Frames the kernel sends on a TAP port leave its physical port unchanged
//!   (`exception_from_kernel`); they are never rate-limited (the kernel is trusted and bounded by
//!   its own queues).
//! - Frames from a physical port reach its TAP port only where the dataplane does not handle them
//!   itself and would otherwise drop them (see docs/architecture.md, "Exception path"), and only
//!   through this worker's token bucket for that port: past it they are dropped as
//!   `exception_rate_limited`, so a flood at a port address costs a worker one compare per frame,
//!   never more than `rate_pps` frames per second reach that kernel interface, and the other
//!   ports' kernel traffic keeps its own budget.
//! - A port without a kernel interface behaves exactly as before: the caller gets the frame back
//!   and drops it with its old reason.
//! - The bucket allocates nothing and reads no clock: time is the burst's `now`.
//!
//! [`PortSetup::kernel`]: crate::setup::PortSetup::kernel
use std::net::Ipv4Addr;

use crate::flow::Millis;
use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH};
use crate::setup::{ExceptionSetup, Setup};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::Ipv4Packet;
use crate::worker::Worker;

/// Token bucket in thousandths of a frame, so whole milliseconds refill exactly at any rate.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    /// Milli-frames added per millisecond (= frames per second).
    rate: u64,
    /// Depth in milli-frames.
    depth: u64,
    tokens: u64,
    last: Millis,
}

impl TokenBucket {
    /// A full bucket passing `rate_pps` frames per second with bursts of `burst` frames.
    pub fn new(rate_pps: u32, burst: u32, now: Millis) -> TokenBucket {
        let depth = u64::from(burst.max(1)) * 1000;
        TokenBucket { rate: u64::from(rate_pps), depth, tokens: depth, last: now }
    }

    /// Takes one frame's token at `now`; false when the bucket is empty.
    #[inline]
    pub fn take(&mut self, now: Millis) -> bool {
        if now > self.last {
            let add = (now - self.last).saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(add).min(self.depth);
            self.last = now;
        }
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// New limits; the tokens held are kept (clipped to the new depth).
    pub fn set(&mut self, rate_pps: u32, burst: u32) {
        self.rate = u64::from(rate_pps);
        self.depth = u64::from(burst.max(1)) * 1000;
        self.tokens = self.tokens.min(self.depth);
    }
}

/// One worker's share of the gateway's limit: `ceil(total / workers)`.
fn share(total: u32, workers: u16) -> u32 {
    total.div_ceil(u32::from(workers.max(1)))
}

/// A worker's exception-path state: which ports have kernel interfaces, and a token bucket per
/// port, so a flood at one port's address cannot starve another port's kernel traffic (a
/// client-side flood never fails the server-side health checks).
#[derive(Debug, Clone)]
pub struct Exception {
    /// Per physical port, its TAP port's index.
    tap_of: Vec<Option<usize>>,
    /// Per physical port.
    buckets: Vec<TokenBucket>,
}

impl Exception {
    pub fn new(setup: &Setup) -> Exception {
        let ExceptionSetup { rate_pps, burst } = setup.exception;
        let w = setup.workers;
        Exception {
            tap_of: setup.ports.iter().map(|p| p.kernel).collect(),
            buckets: setup
                .ports
                .iter()
                .map(|_| TokenBucket::new(share(rate_pps, w), share(burst, w), 0))
                .collect(),
        }
    }

    /// Adopts a new setup's limits (the kernel interfaces are fixed while rvsd runs).
    pub fn apply(&mut self, setup: &Setup) {
        let ExceptionSetup { rate_pps, burst } = setup.exception;
        let (r, b) = (share(rate_pps, setup.workers), share(burst, setup.workers));
        self.buckets.resize(setup.ports.len(), TokenBucket::new(r, b, 0));
        self.buckets.iter_mut().for_each(|k| k.set(r, b));
        self.tap_of = setup.ports.iter().map(|p| p.kernel).collect();
    }

    /// The TAP port of physical port `port`, if it has one.
    #[inline]
    pub fn tap(&self, port: usize) -> Option<usize> {
        self.tap_of.get(port).copied().flatten()
    }

    /// The physical port whose TAP port is `tap`, if any.
    #[inline]
    pub fn physical(&self, tap: usize) -> Option<usize> {
        self.tap_of.iter().position(|t| *t == Some(tap))
    }

    /// Whether any port has a kernel interface.
    pub fn any(&self) -> bool {
        self.tap_of.iter().any(Option::is_some)
    }
}

/// Whether `a` is link-local multicast (224.0.0.0/24: VRRP, OSPF, IGMP, IPVS sync).
#[inline]
pub fn link_local_multicast(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [224, 0, 0]
}

/// Whether an Ethernet destination is a multicast group the kernel may have joined (IPv4
/// `01:00:5e`, IPv6 `33:33`).
#[inline]
pub fn kernel_multicast_mac(d: &[u8]) -> bool {
    d.len() >= 6 && (d[0..3] == [0x01, 0x00, 0x5e] || d[0..2] == [0x33, 0x33])
}

impl<P: FramePool> Worker<P> {
    /// A frame the kernel sent on TAP port `tap`: out of its physical port, unchanged. Returns
    /// the frame when `tap` is no kernel interface.
    #[inline]
    pub(crate) fn kernel_out(
        &mut self,
        f: P::Frame,
        tap: usize,
        out: &mut Outbox<P::Frame>,
    ) -> Result<(), P::Frame> {
        let Some(port) = self.exc.physical(tap) else { return Err(f) };
        self.stats.inc(E::ExceptionFromKernel);
        out.emit(&self.stats, port, f);
        Ok(())
    }

    /// A frame from a physical port that the dataplane does not handle: to the port's kernel
    /// interface through the token bucket, or, with no kernel interface, dropped for `otherwise`
    /// exactly as without the exception path.
    pub(crate) fn kernel_in(&mut self, f: P::Frame, cx: &Ctx, out: &mut Outbox<P::Frame>, otherwise: D) {
        let Some(tap) = self.exc.tap(cx.in_port) else { return self.discard(f, otherwise) };
        if !self.exc.buckets[cx.in_port].take(cx.now) {
            return self.discard(f, D::ExceptionRateLimited);
        }
        self.stats.inc(E::ExceptionToKernel);
        out.emit(&self.stats, tap, f);
    }

    /// An IPv4 packet the dataplane does not handle: to the kernel when it is to a port address
    /// or link-local multicast, otherwise (or with no kernel interface) dropped for `otherwise`.
    pub(crate) fn ip4_kernel_or(&mut self, f: P::Frame, cx: &Ctx, out: &mut Outbox<P::Frame>, otherwise: D) {
        if self.exc.tap(cx.in_port).is_none() {
            return self.discard(f, otherwise);
        }
        let dst = match f.data().get(ETH..) {
            Some(ip) if ip.len() >= 20 => Ipv4Packet::new_unchecked(ip).dst_addr(),
            _ => return self.discard(f, otherwise),
        };
        if self.port_addr(dst) || link_local_multicast(dst) {
            self.kernel_in(f, cx, out, otherwise)
        } else {
            self.discard(f, otherwise)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_passes_burst_then_rate() {
        let mut b = TokenBucket::new(1000, 10, 0);
        assert_eq!((0..20).filter(|_| b.take(0)).count(), 10, "a full bucket passes its depth");
        // 1000 pps: one frame per millisecond.
        assert!(b.take(1));
        assert!(!b.take(1));
        // 5 ms later, 5 frames; never more than the depth however long the pause.
        assert_eq!((0..20).filter(|_| b.take(6)).count(), 5);
        assert_eq!((0..50).filter(|_| b.take(1_000_000)).count(), 10);
    }

    #[test]
    fn bucket_sub_millisecond_rates_accumulate() {
        // 100 pps: one frame per 10 ms, exactly.
        let mut b = TokenBucket::new(100, 1, 0);
        assert!(b.take(0));
        let passed = (1..=1000).filter(|t| b.take(*t)).count();
        assert_eq!(passed, 100);
    }

    #[test]
    fn bucket_set_keeps_tokens_within_depth() {
        let mut b = TokenBucket::new(10, 100, 0);
        b.set(10, 5);
        assert_eq!((0..100).filter(|_| b.take(0)).count(), 5);
    }

    #[test]
    fn share_rounds_up() {
        assert_eq!(share(1000, 3), 334);
        assert_eq!(share(1, 4), 1);
        assert_eq!(share(10, 0), 10);
    }

    #[test]
    fn classes() {
        assert!(link_local_multicast(Ipv4Addr::new(224, 0, 0, 18)));
        assert!(link_local_multicast(Ipv4Addr::new(224, 0, 0, 81)));
        assert!(!link_local_multicast(Ipv4Addr::new(224, 0, 1, 1)));
        assert!(kernel_multicast_mac(&[0x01, 0, 0x5e, 0, 0, 0x12]));
        assert!(kernel_multicast_mac(&[0x33, 0x33, 0xff, 0, 0, 1]));
        assert!(!kernel_multicast_mac(&[0x01, 0x80, 0xc2, 0, 0, 0]));
    }
}
