//! The burst pipeline: a burst goes through stages a whole burst apart, so the cache misses of
//! one packet overlap with the work on the others (VPP's node loop with its bihash prefetch
//! recipe; DPDK's `rte_hash_lookup_bulk`).
//!
//! 1. prefetch every packet's headers;
//! 2. parse the tuple, hash it, prefetch its bucket;
//! 3. compare the bucket's tags, prefetch the entries they point at;
//! 4. process each packet, its lookup made with the hash of stage 2 ([`Ctx::hashed`]) on a bucket
//!    and entry already in cache.
//!
//! Invariants:
//! - Stages 1-3 only read and prefetch: lookups, verdicts, counters and state changes all happen
//!   in stage 4, in arrival order, through the same stages as [`Worker::process`]. So a burst has
//!   exactly the effects of its packets processed one by one, even when an earlier packet of the
//!   burst creates or releases a connection a later one belongs to.
//! - No allocation: the per-burst arrays are fixed-size and the burst is walked in chunks of
//!   [`CHUNK`].
use crate::conn::Hashed;
use crate::flow::{FlowKey, Millis};
use crate::frame::{Frame, FramePool};
use crate::outbox::Outbox;
use crate::packet::{Ctx, ETH};
use crate::wire::{self, ipv4, EtherType};
use crate::worker::Worker;

/// Packets in flight through the stages at once: a common burst size, and small enough that
/// their headers, buckets and entries (3 × 32 lines) stay in L1.
pub const CHUNK: usize = 32;

/// The tuple of a plain (untagged, unfragmented) IPv4 TCP or UDP frame, or None for anything
/// the full stages must look at first. Reads only what the lookup needs; stage 4 validates.
#[inline]
fn quick_key(d: &[u8]) -> Option<FlowKey> {
    if d.len() < ETH + ipv4::HEADER_LEN || d[12..14] != u16::from(EtherType::Ipv4).to_be_bytes() {
        return None;
    }
    wire::flow_key(&d[ETH..]).ok()
}

impl<P: FramePool> Worker<P> {
    /// Handles a burst of frames received on `in_port`, draining `burst`. Same verdicts and
    /// counters as calling [`Self::process`] on each frame in order.
    pub fn process_burst(
        &mut self,
        burst: &mut Vec<P::Frame>,
        in_port: usize,
        now: Millis,
        out: &mut Outbox<P::Frame>,
    ) {
        let mut keys = [None::<(FlowKey, Hashed)>; CHUNK];
        let mut frames = burst.drain(..);
        loop {
            // The chunk's frames stay in the drain iterator; stages 1-3 read them by peeking
            // through a slice of the remaining burst, so nothing is moved or copied ahead.
            let rest = frames.as_slice();
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(CHUNK);
            for f in &rest[..n] {
                rvs_prefetch::prefetch_bytes(f.data());
            }
            for (i, f) in rest[..n].iter().enumerate() {
                keys[i] = quick_key(f.data()).map(|k| {
                    let h = self.conns.hash(&k);
                    self.conns.prefetch_bucket(h);
                    (k, h)
                });
            }
            for (_, h) in keys[..n].iter().flatten() {
                self.conns.prefetch_candidates(*h);
            }
            for hashed in keys.iter().take(n) {
                let Some(f) = frames.next() else { break };
                let mut cx = Ctx::new(in_port, None, now);
                cx.hashed = *hashed;
                self.receive(f, cx, out);
            }
        }
    }
}
