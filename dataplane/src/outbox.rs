//! What one burst sends: frames per output port, and frames handed to other workers.
//!
//! Invariants:
//! - Bounded: every lane holds at most `cap` frames; past that a frame is dropped and counted
//!   (`drop.outbox_full`) instead of growing the vector, so nothing allocates per packet.
//! - Every frame pushed here is counted once, as `tx_packets`/`tx_bytes` (ports) or `handoff_out`
//!   (workers), which is what the packet-accounting invariant adds up.
use crate::frame::Frame;
use crate::handoff::Handoff;
use crate::stats::{DropReason as D, Event as E, Stats};

/// Frames to transmit, per port, and frames to hand to other workers, per worker, collected over
/// one burst.
#[derive(Debug)]
pub struct Outbox<F> {
    ports: Vec<Vec<F>>,
    /// Per destination worker: frames with their [`Handoff`] tag. Empty for a single worker.
    workers: Vec<Vec<(F, u32)>>,
    cap: usize,
}

impl<F> Outbox<F> {
    /// An outbox for one worker alone (no hand-off lanes).
    pub fn new(nports: usize, cap: usize) -> Outbox<F> {
        Outbox::with_workers(nports, 0, cap)
    }

    /// An outbox with a hand-off lane to each of `workers` workers (its own lane stays unused).
    pub fn with_workers(nports: usize, workers: usize, cap: usize) -> Outbox<F> {
        Outbox {
            ports: (0..nports).map(|_| Vec::with_capacity(cap)).collect(),
            workers: (0..workers).map(|_| Vec::with_capacity(cap)).collect(),
            cap,
        }
    }

    /// Frames for worker `w`, each with the tag to pass to its `Worker::process_handoff`.
    pub fn handoff(&mut self, w: usize) -> &mut Vec<(F, u32)> {
        &mut self.workers[w]
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The frames queued for `port`; the daemon drains it into the TX queue.
    pub fn port(&mut self, port: usize) -> &mut Vec<F> {
        &mut self.ports[port]
    }

    pub fn is_empty(&self) -> bool {
        self.ports.iter().all(Vec::is_empty) && self.workers.iter().all(Vec::is_empty)
    }
}

impl<F: Frame> Outbox<F> {
    /// Queues `f` for transmission on `port`, counted as sent.
    #[inline]
    pub(crate) fn emit(&mut self, stats: &Stats, port: usize, f: F) {
        let len = f.len() as u64;
        if push_bounded(stats, self.ports.get_mut(port), self.cap, f) {
            stats.inc(E::TxPackets);
            stats.add(E::TxBytes, len);
        }
    }

    /// Queues `f` for worker `worker` with its hand-off tag, counted as handed out.
    #[inline]
    pub(crate) fn hand_to(&mut self, stats: &Stats, worker: u16, f: F, h: Handoff) {
        if push_bounded(stats, self.workers.get_mut(worker as usize), self.cap, (f, h.encode())) {
            stats.inc(E::HandoffOut);
        }
    }
}

/// Pushes `item` onto lane `q` if it exists and has room under `cap`; otherwise drops it, counted.
#[inline]
fn push_bounded<T>(stats: &Stats, q: Option<&mut Vec<T>>, cap: usize, item: T) -> bool {
    match q {
        Some(q) if q.len() < cap => {
            q.push(item);
            true
        }
        _ => {
            stats.dropped(D::OutboxFull);
            false
        }
    }
}
