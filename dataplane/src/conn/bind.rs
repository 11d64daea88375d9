//! The one place where a connection is bound (created) and released.
//!
//! Binding chooses the real server (persistence template first, then the service's scheduler), a
//! local address and port from this worker's slice, and inserts the connection; releasing undoes
//! the per-real counts and drops whatever SYN-proxy still holds for it. Every way a connection
//! leaves the table (expiry, removal, reuse of its tuple, a refused proxied handshake) goes
//! through [`released`], so the accounting exists once.
//!
//! Invariants:
//! - A connection counted in a real server's counts is exactly a connection in the table that
//!   names that real.
//! - Each bind and each release emits one [`ConnEvent`] (when events are enabled), in the order
//!   they happened on this worker: what connection sync streams to a backup.
use crate::conn::{alloc_lport, Conn, ConnId, InsertError, NewConn, StateChange, TcpState};
use crate::flow::{FlowKey, Millis};
use crate::frame::FramePool;
use crate::service::Real;
use crate::service::Services;
use crate::stats::{DropReason as D, Event as E, Stats};
use crate::synproxy::SynProxy;
use crate::worker::Worker;
use crate::xmit::Xlat;
use std::net::Ipv4Addr;

/// Candidate local ports tried per local address before moving to the next one.
const LPORT_TRIES: usize = 64;

/// Why a connection left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its timer ran out.
    Expired,
    /// Removed on purpose: its real server went with `expire_on_real_removed`, a proxied
    /// handshake failed, or the client reused its tuple.
    Removed,
}

/// A change to the connection table, for connection sync.
#[derive(Debug, Clone, Copy)]
pub enum ConnEvent {
    Bound(ConnId, Conn),
    State(ConnId, TcpState, TcpState),
    Released(ConnId, Conn, Release),
}

/// A bounded log of [`ConnEvent`]s, off (capacity 0) unless a consumer asks for it. When full,
/// events are counted as lost rather than growing the log.
#[derive(Debug, Default)]
pub struct ConnEvents {
    log: Vec<ConnEvent>,
    cap: usize,
    lost: u64,
}

impl ConnEvents {
    pub fn with_capacity(cap: usize) -> ConnEvents {
        ConnEvents { log: Vec::with_capacity(cap), cap, lost: 0 }
    }

    #[inline]
    pub fn push(&mut self, e: ConnEvent) {
        if self.cap == 0 {
            return;
        }
        if self.log.len() < self.cap {
            self.log.push(e);
        } else {
            self.lost += 1;
        }
    }

    /// Takes the events logged so far, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, ConnEvent> {
        self.log.drain(..)
    }

    /// Events that did not fit since the log was enabled.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// The accounting of a connection that left the table, whichever way it left: its real server's
/// counts, SYN-proxy's held packets, the event.
pub(crate) fn released<F>(
    services: &mut Services,
    sp: &mut SynProxy<F>,
    stats: &Stats,
    events: &mut ConnEvents,
    id: ConnId,
    c: &Conn,
    why: Release,
) {
    if c.synproxy_pending() {
        sp.abort(id, stats);
    }
    if let Some((s, i)) = services.real_mut(c.service(), c.real()) {
        s.conn_removed_at(i, c.is_counted_active());
    }
    events.push(ConnEvent::Released(id, *c, why));
}

impl<P: FramePool> Worker<P> {
    /// Binds a new connection for `key` to service `svc_idx` (a position in the service list):
    /// schedules a real server, takes a local address and port, and records it.
    pub(crate) fn bind(&mut self, svc_idx: u32, key: &FlowKey, now: Millis) -> Result<ConnId, D> {
        if self.conns.is_full() {
            return Err(D::ConnTableFull);
        }
        let svc = &mut self.services.list[svc_idx as usize];
        // Refused before the scheduler moves: the packet would be dropped anyway.
        if svc.lips.is_empty() && svc.fullnat_only {
            return Err(D::NoLocalAddr);
        }
        let mut real = None;
        if svc.persistence_ms.is_some() {
            // Templates name the real by id: a pool change that moves it keeps the client on it.
            if let Some(r) = self.persist.lookup(svc.id, key.src, now).and_then(|id| svc.real_index(id)) {
                if svc.views[r].usable() {
                    real = Some(r);
                    self.stats.inc(E::PersistHits);
                }
            }
        }
        let real = match real {
            Some(r) => r,
            None => svc.sched.pick(&svc.views, key.src, key.sport).ok_or(D::NoRealServer)?,
        };
        let rs = svc.reals[real];
        let (lip, lport, rport) = match rs.xlat {
            Xlat::FullNat => {
                let (lip, lport) = self.take_lport(svc_idx, key, &rs)?;
                (lip, lport, rs.port)
            }
            Xlat::Nat => (key.src, key.sport, rs.port),
            // The packet keeps its destination port.
            Xlat::Dr | Xlat::Tun => (key.src, key.sport, key.dport),
        };
        let svc = &mut self.services.list[svc_idx as usize];
        let new = NewConn {
            client: *key,
            lip,
            lport,
            rs: rs.addr,
            rport,
            service: svc.id,
            real: rs.id,
            xlat: rs.xlat,
        };
        let id = self.conns.insert(&new, now).map_err(|e| match e {
            InsertError::Full => D::ConnTableFull,
            InsertError::Exists => D::ConnCollision,
        })?;
        svc.conn_added(real);
        if let Some(ms) = svc.persistence_ms {
            if self.persist.insert(svc.id, key.src, rs.id, ms, now).is_err() {
                self.stats.inc(E::PersistFull);
            }
        }
        self.stats.inc(E::ConnsCreated);
        if let Some(c) = self.conns.get(id) {
            self.events.push(ConnEvent::Bound(id, *c));
        }
        Ok(id)
    }

    /// A FULLNAT connection's local address and port from this worker's slice, rotating over the
    /// service's local addresses.
    fn take_lport(&mut self, svc_idx: u32, key: &FlowKey, rs: &Real) -> Result<(Ipv4Addr, u16), D> {
        let svc = &mut self.services.list[svc_idx as usize];
        let n = svc.lips.len();
        if n == 0 {
            return Err(D::NoLocalAddr);
        }
        let mut found = None;
        for k in 0..n {
            let li = (svc.next_lip + k) % n;
            let lip = &mut svc.lips[li];
            if let Some(p) =
                alloc_lport(&self.conns, &mut lip.cursor, lip.addr, rs.addr, rs.port, key.proto, LPORT_TRIES)
            {
                found = Some((lip.addr, p));
                svc.next_lip = (li + 1) % n;
                break;
            }
            self.stats.inc(E::LportRetry);
        }
        found.ok_or(D::LportExhausted)
    }

    /// Removes a connection now, with the same accounting as expiry.
    pub(crate) fn release(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(id) {
            released(
                &mut self.services,
                &mut self.sp,
                &self.stats,
                &mut self.events,
                id,
                &c,
                Release::Removed,
            );
        }
    }

    /// Expires due connections (bounded by the expiry budget), with the release accounting.
    pub(crate) fn expire_conns(&mut self, now: Millis) {
        let (services, sp, stats, events) =
            (&mut self.services, &mut self.sp, &*self.stats, &mut self.events);
        let n = self.conns.expire(now, self.expire_budget, |id, c| {
            released(services, sp, stats, events, id, c, Release::Expired)
        });
        if n > 0 {
            self.stats.add(E::ConnsExpired, n as u64);
        }
    }

    /// Keeps per-real active/inactive counts in step with a connection's state change.
    pub(crate) fn state_changed(&mut self, id: ConnId, ch: StateChange) {
        if ch.old == ch.new {
            return;
        }
        self.events.push(ConnEvent::State(id, ch.old, ch.new));
        if ch.became_active() || ch.became_inactive() {
            if let Some(c) = self.conns.get(id) {
                if let Some((s, i)) = self.services.real_mut(c.service(), c.real()) {
                    s.conn_activity_at(i, ch.became_active());
                }
            }
        }
    }
}
