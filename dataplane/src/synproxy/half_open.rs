//! The per-worker table of SYN-proxied connections waiting for their real server's SYN-ACK.
//!
//! Invariants: fixed capacity (slots and each slot's packet queue allocated at construction), so
//! nothing here allocates; at most `held_cap` client packets per connection; `poll` looks at a
//! bounded number of slots per call. An entry exists exactly while its connection is pending
//! (`Conn::synproxy_pending`); the worker removes both together.
use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::conn::ConnId;
use crate::flow::Millis;

use super::SynOptions;

/// What the worker remembers about a proxied handshake until the real server answers.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub conn: ConnId,
    /// Our SYN-ACK's sequence number (the cookie).
    pub cookie_isn: u32,
    /// The client's ISN (its SYN's sequence number).
    pub client_isn: u32,
    /// The options the cookie carried back, with the client's latest timestamps.
    pub opts: SynOptions,
    /// Our SYN-ACK's TSval, as the client echoed it.
    pub our_tsval: Option<u32>,
    /// SYNs sent to the real server so far, and when the last one went.
    pub tries: u32,
    pub last_syn: Millis,
    /// The last held pure ACK (seq, ack) and how often it repeated (ack-storm guard).
    pub last_ack: (u32, u32),
    pub repeats: u32,
}

#[derive(Debug)]
struct Slot<F> {
    p: Option<Pending>,
    frames: VecDeque<F>,
    /// Position in `live` while in use.
    live_at: u32,
}

#[derive(Debug)]
pub struct HalfOpen<F> {
    by_conn: HashMap<u32, u32>,
    slots: Vec<Slot<F>>,
    free: Vec<u32>,
    /// Slots in use, densely, so the retry sweep only visits real entries.
    live: Vec<u32>,
    held_cap: usize,
    held: usize,
    cursor: usize,
}

/// Slots `poll_due` looks at per call.
const POLL_SLOTS: usize = 16;

impl<F> HalfOpen<F> {
    pub fn new(capacity: usize, held_cap: usize) -> HalfOpen<F> {
        let capacity = capacity.max(1);
        HalfOpen {
            by_conn: HashMap::with_capacity(capacity),
            slots: (0..capacity)
                .map(|_| Slot { p: None, frames: VecDeque::with_capacity(held_cap), live_at: 0 })
                .collect(),
            free: (0..capacity as u32).rev().collect(),
            live: Vec::with_capacity(capacity),
            held_cap,
            held: 0,
            cursor: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Client packets held, over all entries.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Adds an entry; false when full.
    pub fn insert(&mut self, p: Pending) -> bool {
        let Some(i) = self.free.pop() else { return false };
        self.slots[i as usize].p = Some(p);
        self.slots[i as usize].live_at = self.live.len() as u32;
        self.live.push(i);
        self.by_conn.insert(p.conn.0, i);
        true
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Pending> {
        let i = *self.by_conn.get(&conn.0)?;
        self.slots[i as usize].p.as_mut()
    }

    /// Holds a client packet; gives it back when the connection's queue is full or unknown.
    pub fn hold(&mut self, conn: ConnId, f: F) -> Result<(), F> {
        let Some(&i) = self.by_conn.get(&conn.0) else { return Err(f) };
        let s = &mut self.slots[i as usize];
        if s.frames.len() >= self.held_cap {
            return Err(f);
        }
        s.frames.push_back(f);
        self.held += 1;
        Ok(())
    }

    /// Removes an entry, handing its held packets, oldest first, to `each`.
    pub fn take(&mut self, conn: ConnId, mut each: impl FnMut(F)) -> Option<Pending> {
        let i = self.by_conn.remove(&conn.0)?;
        let s = &mut self.slots[i as usize];
        while let Some(f) = s.frames.pop_front() {
            self.held -= 1;
            each(f);
        }
        let at = s.live_at as usize;
        self.live.swap_remove(at);
        if let Some(&moved) = self.live.get(at) {
            self.slots[moved as usize].live_at = at as u32;
        }
        self.free.push(i);
        self.slots[i as usize].p.take()
    }

    /// Entries whose last SYN went out at least `retry_ms` ago, among the next few live ones.
    pub fn poll_due(&mut self, now: Millis, retry_ms: Millis, out: &mut [ConnId; POLL_SLOTS]) -> usize {
        let n = self.live.len();
        let mut k = 0;
        for _ in 0..POLL_SLOTS.min(n) {
            self.cursor = (self.cursor + 1) % n;
            if let Some(p) = &self.slots[self.live[self.cursor] as usize].p {
                if now >= p.last_syn + retry_ms {
                    out[k] = p.conn;
                    k += 1;
                }
            }
        }
        k
    }
}

/// The buffer `poll_due` fills.
pub type DueBuf = [ConnId; POLL_SLOTS];

pub fn due_buf() -> DueBuf {
    [ConnId(0); POLL_SLOTS]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u32, now: Millis) -> Pending {
        Pending {
            conn: ConnId(id),
            cookie_isn: 1,
            client_isn: 2,
            opts: SynOptions::default(),
            our_tsval: None,
            tries: 1,
            last_syn: now,
            last_ack: (0, 0),
            repeats: 0,
        }
    }

    #[test]
    fn bounded_hold_take_and_due() {
        let mut h: HalfOpen<u8> = HalfOpen::new(2, 2);
        assert!(h.insert(p(7, 0)) && h.insert(p(8, 500)));
        assert!(!h.insert(p(9, 0)), "full");
        assert_eq!(h.hold(ConnId(7), 1), Ok(()));
        assert_eq!(h.hold(ConnId(7), 2), Ok(()));
        assert_eq!(h.hold(ConnId(7), 3), Err(3));
        assert_eq!(h.hold(ConnId(99), 4), Err(4));
        assert_eq!(h.held(), 2);
        let mut due = due_buf();
        let n = h.poll_due(1000, 1000, &mut due);
        assert_eq!(&due[..n], &[ConnId(7)]);
        let mut got = vec![];
        assert_eq!(h.take(ConnId(7), |f| got.push(f)).map(|p| p.conn), Some(ConnId(7)));
        assert_eq!(got, vec![1, 2]);
        assert_eq!(h.held(), 0);
        assert!(h.insert(p(9, 0)), "slot reused");
        assert!(h.take(ConnId(7), |_| {}).is_none());
    }
}
