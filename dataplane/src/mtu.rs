//! Path MTU at the gateway's output: a forwarded packet larger than the way out is answered with
//! ICMP fragmentation-needed when it has DF set, and sent in fragments when it has not.
//!
//! Invariants:
//! - The check costs nothing for a packet that fits the smallest port MTU (the common case): only
//!   a larger one looks its route up early ([`Worker::mtu_toward`]).
//! - Fragmentation-needed quotes the packet as received (before any rewrite, so the sender
//!   recognises it), names the MTU the packet met, and comes from the address the packet was sent
//!   to when that is ours (a VIP, a local address), else from the receiving port's address. It
//!   is a frame turned into another (`frag_needed_sent`), not a drop.
//! - Fragments carry the original's identification, DF clear, offsets relative to the original's
//!   own (so a fragment can be fragmented again), and MF on all but the original's last byte. The
//!   extra frames come from the pool and count as built (`fragments_built`); a packet with IP
//!   options is not fragmented (`mtu_exceeded`: which options to copy is not worth the code for
//!   traffic that does not exist in practice).
use std::net::Ipv4Addr;

use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH, OWN_TTL};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{icmp, ipv4, Ipv4Packet};
use crate::worker::Worker;

impl<P: FramePool> Worker<P> {
    /// The MTU of the port toward `to` when `ip_len` bytes of IP may not fit it; None when they
    /// fit every port (no lookup) or there is no route (output counts that).
    #[inline]
    pub(crate) fn mtu_toward(&self, to: Ipv4Addr, ip_len: usize) -> Option<u16> {
        if ip_len <= self.min_mtu as usize {
            return None;
        }
        let (port, _) = self.routes.lookup(to)?;
        let mtu = self.ports[port].mtu;
        (ip_len > mtu as usize).then_some(mtu)
    }

    /// Turns `f`, a DF packet too big for `mtu`, into the ICMP fragmentation-needed that answers
    /// it (RFC 1191: the next-hop MTU in the header) and sends it back to its source.
    pub(crate) fn frag_needed(&mut self, mut f: P::Frame, mtu: u16, cx: &Ctx, out: &mut Outbox<P::Frame>) {
        let (src, dst, hl) = {
            let ip = Ipv4Packet::new_unchecked(&f.data()[ETH..]);
            (ip.src_addr(), ip.dst_addr(), ip.header_len())
        };
        let from = if self.owns(dst) { dst } else { self.ports[cx.in_port].addr };
        let mut quote = [0u8; ipv4::MAX_HEADER_LEN + icmp::QUOTED_L4_LEN];
        let n = (hl + icmp::QUOTED_L4_LEN).min(f.len() - ETH);
        quote[..n].copy_from_slice(&f.data()[ETH..ETH + n]);
        let icmp_len = icmp::HEADER_LEN + n;
        let len = ETH + ipv4::HEADER_LEN + icmp_len;
        // The packet was larger than an MTU (at least 68), so the error fits in its buffer.
        if f.len() < len || !f.trim(f.len() - len) {
            return self.discard(f, D::MtuExceeded);
        }
        let d = f.data_mut();
        let ok = icmp::emit_error(
            &mut d[ETH + ipv4::HEADER_LEN..],
            icmp::msg::DEST_UNREACHABLE,
            icmp::unreach::FRAG_NEEDED,
            u32::from(mtu),
            &quote[..n],
        )
        .is_ok()
            && ipv4::Repr {
                src: from,
                dst: src,
                protocol: ipv4::PROTO_ICMP,
                payload_len: icmp_len as u16,
                ttl: OWN_TTL,
                ident: 0,
                dont_frag: false,
            }
            .emit(&mut d[ETH..])
            .is_ok();
        if !ok {
            return self.discard(f, D::MtuExceeded);
        }
        self.stats.inc(E::FragNeededSent);
        self.send_ip(f, src, cx.now, out);
    }

    /// Sends `f` (an IPv4 packet without DF, Ethernet header in front) toward `to` in fragments of
    /// at most `mtu` bytes.
    pub(crate) fn send_fragmented(
        &mut self,
        mut f: P::Frame,
        to: Ipv4Addr,
        mtu: u16,
        now: crate::flow::Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let (hl, total, base, more) = {
            let ip = Ipv4Packet::new_unchecked(&f.data()[ETH..]);
            (ip.header_len(), ip.total_len() as usize, ip.frag_offset() as usize, ip.more_frags())
        };
        let chunk = (mtu as usize).saturating_sub(hl) & !7;
        if hl != ipv4::HEADER_LEN || chunk == 0 || total > f.len() - ETH {
            return self.discard(f, D::MtuExceeded);
        }
        let payload = total - hl;
        let mut off = chunk;
        while off < payload {
            let n = chunk.min(payload - off);
            let Some(mut g) = self.pool.alloc() else {
                self.stats.inc(E::NoMbuf);
                return self.discard(f, D::MtuExceeded);
            };
            if !g.append(ETH + hl + n) {
                return self.discard(f, D::MtuExceeded);
            }
            {
                let (src, dst) = (f.data(), g.data_mut());
                dst[..ETH + hl].copy_from_slice(&src[..ETH + hl]);
                dst[ETH + hl..].copy_from_slice(&src[ETH + hl + off..ETH + hl + off + n]);
            }
            let mut ip = Ipv4Packet::new_unchecked(&mut g.data_mut()[ETH..]);
            ip.set_total_len((hl + n) as u16);
            ip.set_frag((base + off) as u16, more || off + n < payload);
            self.stats.inc(E::FragmentsBuilt);
            self.send_ip(g, to, now, out);
            off += n;
        }
        let keep = ETH + hl + chunk;
        let cut = f.len() - keep;
        f.trim(cut);
        let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]);
        ip.set_total_len((hl + chunk) as u16);
        ip.set_frag(base as u16, true);
        self.send_ip(f, to, now, out);
    }
}
