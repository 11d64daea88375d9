//! Connection sync on a worker: what the master tells its backup about a connection event, and
//! the backup installing it.
//!
//! The master side ([`Worker::sync_records`]) turns the [`ConnEvent`]s of [`super::bind`] into
//! [`SyncOp`]s by IPVS's policy (`ip_vs_sync_conn_needed` with the thresholds off): a TCP
//! connection is sent when it enters ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT or TIME_WAIT, a UDP
//! one when it is bound; a release is sent for every connection that was sent; a proxied
//! connection is sent only once its real server answered (its sequence shift is known then).
//! Persistence templates travel with the connections they control.
//!
//! The backup side ([`Worker::sync_install`]) inserts, updates or removes. Services and real
//! servers are found by address (`(proto, VIP, vport)`, `(RS, rport)`), not by id: ids are each
//! daemon's own.
//!
//! Invariants:
//! - An install keeps the per-real counts exactly as a bind and the state changes would have:
//!   inserted inactive, moved to active when the synced state is ESTABLISHED, and released
//!   through the same [`Worker::release`] as any other removal.
//! - A synced FULLNAT connection's reply tuple `RS:rport -> LIP:lport` is live in this worker's
//!   table, so [`super::alloc_lport`] never gives that local port to a new connection to the same
//!   real server (the caller installs at the worker that owns the port, [`super::owner`]).
//! - A synced deadline is at most the table's longest timeout from now: a peer cannot make a
//!   connection outlive any local timeout.
//! - Installing emits no [`ConnEvent`]: a backup does not echo what it was told.
use std::net::Ipv4Addr;

use super::bind::ConnEvent;
use super::entry::{F_ACTIVE, F_SP_PENDING, F_SYNPROXY, F_TS_SHIFT};
use super::{deadline_tick, ConnId, ConnTable, Dir, NewConn, StateChange, TcpState};
use crate::flow::{FlowKey, Millis, Proto};
use crate::frame::FramePool;
use crate::worker::Worker;
use crate::xmit::Xlat;

/// One connection as a backup needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConn {
    /// `client:cport -> VIP:vport`.
    pub client: FlowKey,
    /// Local address and port (FULLNAT; the client's otherwise).
    pub lip: Ipv4Addr,
    pub lport: u16,
    pub rs: Ipv4Addr,
    pub rport: u16,
    pub xlat: Xlat,
    /// `TcpState::None` for UDP.
    pub state: TcpState,
    /// Time left before it expires.
    pub timeout_ms: Millis,
    /// SYN-proxied: the sequence shift and the timestamp shift.
    pub synproxy: Option<(u32, Option<u32>)>,
    /// PROXY protocol: header length, where it went, whether the real server acknowledged it.
    pub pp: Option<(u8, u32, bool)>,
    /// TOA option or PROXY header already sent.
    pub toa_done: bool,
}

/// A persistence template: `client` of service `(proto, vip, vport)` sticks to `rs:rport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTemplate {
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub client: Ipv4Addr,
    pub rs: Ipv4Addr,
    pub rport: u16,
    pub timeout_ms: Millis,
}

/// What the master sends for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOp {
    /// Create or update.
    Conn(SyncConn),
    /// The connection left the master's table.
    Release(SyncConn),
    Template(SyncTemplate),
}

/// What an install did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Created,
    Updated,
    /// It replaced a connection with the same client tuple but another real or local port.
    Replaced,
    Released,
    /// A release of a connection this worker does not have (never synced, or expired already).
    Unknown,
    Template,
}

/// Why an install was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// No service at `(proto, VIP, vport)` here.
    NoService,
    /// The service here has no real server at `(RS, rport)`.
    NoReal,
    TableFull,
    /// The reply tuple belongs to another connection.
    Collision,
    /// The persistence template table is full.
    TemplatesFull,
}

impl SyncError {
    pub fn name(self) -> &'static str {
        match self {
            SyncError::NoService => "no_service",
            SyncError::NoReal => "no_real",
            SyncError::TableFull => "table_full",
            SyncError::Collision => "collision",
            SyncError::TemplatesFull => "templates_full",
        }
    }
}

/// TCP states a master sends (IPVS's `ip_vs_sync_conn_needed`).
pub const fn synced_state(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::Established
            | TcpState::FinWait
            | TcpState::Close
            | TcpState::CloseWait
            | TcpState::TimeWait
    )
}

impl<A: crate::flow::Addr> ConnTable<A> {
    /// Sets a synced connection's state and deadline (`now + timeout_ms`, at most the longest
    /// timeout), keeping the counted-active flag equal to the state's. The caller moves the real's
    /// counts as the result says.
    pub fn set_synced(
        &mut self,
        id: ConnId,
        state: TcpState,
        timeout_ms: Millis,
        now: Millis,
    ) -> StateChange {
        let max = self.timeouts.max();
        let Some(c) = self.get_mut(id) else {
            return StateChange { old: TcpState::Close, new: TcpState::Close };
        };
        let old = c.state();
        let new = if c.proto() == Proto::Udp { TcpState::None } else { state };
        c.state = new as u8;
        if new.is_active() {
            c.flags |= F_ACTIVE;
        } else {
            c.flags &= !F_ACTIVE;
        }
        let deadline = deadline_tick(now, timeout_ms.min(max));
        self.slab[id.0 as usize].conn.deadline = deadline;
        self.wheel.unlink(&mut self.slab, id.0);
        self.wheel.link(&mut self.slab, id.0, deadline);
        StateChange { old, new }
    }
}

impl<P: FramePool> Worker<P> {
    /// The connection `id` as a backup needs it, if it is live.
    pub fn sync_conn(&self, id: ConnId, now: Millis) -> Option<SyncConn> {
        let c = self.conns.get(id)?;
        let (rs, rport) = c.rs();
        let (lip, lport) = match c.xlat() {
            Xlat::FullNat => c.lip(),
            _ => c.client_addr(),
        };
        let synproxy = (c.flags & F_SYNPROXY != 0 && c.flags & F_SP_PENDING == 0)
            .then(|| (c.seq_delta(), (c.flags & F_TS_SHIFT != 0).then_some(c.ts_delta)));
        Some(SyncConn {
            client: c.client_key(),
            lip,
            lport,
            rs,
            rport,
            xlat: c.xlat(),
            state: c.state(),
            timeout_ms: c.expires_in(now),
            synproxy,
            pp: (c.pp_len() > 0).then(|| (c.pp_len() as u8, c.pp_start(), c.pp_acked())),
            toa_done: c.toa_done(),
        })
    }

    /// The template controlling connection `c`, if its service is persistent and has one.
    fn sync_template(&self, c: &SyncConn, service: u32, now: Millis) -> Option<SyncTemplate> {
        let svc = self.services.by_id(service)?;
        svc.persistence_ms?;
        let (real, expires) = self.persist.get(service, c.client.src)?;
        let r = svc.reals[svc.real_index(real)?];
        Some(SyncTemplate {
            proto: svc.proto,
            vip: svc.vip,
            vport: svc.vport,
            client: c.client.src,
            rs: r.addr,
            rport: r.port,
            timeout_ms: expires.saturating_sub(now),
        })
    }

    /// What a master sends for `ev` (by IPVS's policy, see the module docs), given to `out` in
    /// order: the connection, then its template.
    pub fn sync_records(&self, ev: &ConnEvent, now: Millis, mut out: impl FnMut(SyncOp)) {
        let (op, service) = match *ev {
            ConnEvent::Bound(id, c) => {
                if c.proto() != Proto::Udp {
                    return;
                }
                let Some(sc) = self.sync_conn(id, now) else { return };
                (SyncOp::Conn(sc), c.service())
            }
            ConnEvent::State(id, _, new) => {
                if !synced_state(new) {
                    return;
                }
                let Some(c) = self.conns.get(id) else { return };
                if c.synproxy_pending() {
                    return;
                }
                let Some(sc) = self.sync_conn(id, now) else { return };
                (SyncOp::Conn(sc), c.service())
            }
            ConnEvent::Released(_, c, _) => {
                let proxied_pending = c.synproxy_pending();
                if proxied_pending || (c.proto() == Proto::Tcp && !synced_state(c.state())) {
                    return;
                }
                let (rs, rport) = c.rs();
                let (lip, lport) = match c.xlat() {
                    Xlat::FullNat => c.lip(),
                    _ => c.client_addr(),
                };
                let sc = SyncConn {
                    client: c.client_key(),
                    lip,
                    lport,
                    rs,
                    rport,
                    xlat: c.xlat(),
                    state: c.state(),
                    timeout_ms: 0,
                    synproxy: None,
                    pp: None,
                    toa_done: c.toa_done(),
                };
                out(SyncOp::Release(sc));
                return;
            }
        };
        out(op);
        if let SyncOp::Conn(sc) = op {
            if let Some(t) = self.sync_template(&sc, service, now) {
                out(SyncOp::Template(t));
            }
        }
    }

    /// Every connection a master would have sent by now (and its template), for a backup that
    /// asks for the full table. O(table capacity): runs between bursts, on request only.
    pub fn sync_table(&self, now: Millis, mut out: impl FnMut(SyncOp)) {
        for (id, c) in self.conns.iter() {
            let sent = match c.proto() {
                Proto::Udp => true,
                Proto::Tcp => synced_state(c.state()) && !c.synproxy_pending(),
            };
            if !sent {
                continue;
            }
            if let Some(sc) = self.sync_conn(id, now) {
                out(SyncOp::Conn(sc));
                if let Some(t) = self.sync_template(&sc, c.service(), now) {
                    out(SyncOp::Template(t));
                }
            }
        }
    }

    /// Installs what a master sent. Runs between bursts, on the worker that owns the connection.
    pub fn sync_install(&mut self, op: &SyncOp, now: Millis) -> Result<Installed, SyncError> {
        match op {
            SyncOp::Conn(c) => self.install_conn(c, now),
            SyncOp::Release(c) => Ok(match self.conns.lookup(&c.client) {
                Some((id, Dir::Original)) => {
                    self.release(id);
                    Installed::Released
                }
                _ => Installed::Unknown,
            }),
            SyncOp::Template(t) => {
                let svc_idx = self.services.find(t.proto, t.vip, t.vport).ok_or(SyncError::NoService)?;
                let svc = &self.services.list[svc_idx as usize];
                let r = svc
                    .reals
                    .iter()
                    .find(|r| r.addr == t.rs && r.port == t.rport)
                    .ok_or(SyncError::NoReal)?;
                self.persist
                    .insert(svc.id, t.client, r.id, t.timeout_ms, now)
                    .map_err(|_| SyncError::TemplatesFull)?;
                Ok(Installed::Template)
            }
        }
    }

    fn install_conn(&mut self, s: &SyncConn, now: Millis) -> Result<Installed, SyncError> {
        let k = s.client;
        let svc_idx = self.services.find(k.proto, k.dst, k.dport).ok_or(SyncError::NoService)?;
        let svc = &self.services.list[svc_idx as usize];
        let ri =
            svc.reals.iter().position(|r| r.addr == s.rs && r.port == s.rport).ok_or(SyncError::NoReal)?;
        let (service, real) = (svc.id, svc.reals[ri]);
        let new = NewConn {
            client: k,
            lip: s.lip,
            lport: s.lport,
            rs: s.rs,
            rport: s.rport,
            service,
            real: real.id,
            xlat: s.xlat,
        };
        let mut outcome = Installed::Created;
        let existing = match self.conns.lookup(&k) {
            Some((id, Dir::Original)) => Some(id),
            // Our client tuple is someone's reply tuple: refuse rather than break that one.
            Some((_, Dir::Reply)) => return Err(SyncError::Collision),
            None => None,
        };
        let id = match existing {
            Some(id) => {
                let same = self.conns.get(id).is_some_and(|c| {
                    c.reply_key() == new.reply_key() && c.real() == real.id && c.service() == service
                });
                if same {
                    outcome = Installed::Updated;
                    id
                } else {
                    self.release(id);
                    outcome = Installed::Replaced;
                    self.insert_synced(&new, ri, now)?
                }
            }
            None => self.insert_synced(&new, ri, now)?,
        };
        let ch = self.conns.set_synced(id, s.state, s.timeout_ms, now);
        if ch.became_active() || ch.became_inactive() {
            if let Some((sv, i)) = self.services.real_mut(service, real.id) {
                sv.conn_activity_at(i, ch.became_active());
            }
        }
        if let Some(c) = self.conns.get_mut(id) {
            if let Some((delta, ts)) = s.synproxy {
                c.flags |= F_SYNPROXY;
                c.set_synproxy_established(delta, ts);
            }
            if let Some((len, start, acked)) = s.pp {
                c.set_pp(len & 0x7f, start);
                if acked {
                    c.set_pp_acked();
                }
            }
            c.set_toa_done(s.toa_done);
        }
        Ok(outcome)
    }

    fn insert_synced(&mut self, new: &NewConn, real_index: usize, now: Millis) -> Result<ConnId, SyncError> {
        let id = self.conns.insert(new, now).map_err(|e| match e {
            super::InsertError::Full => SyncError::TableFull,
            super::InsertError::Exists => SyncError::Collision,
        })?;
        if let Some(svc) = self.services.by_id_mut(new.service) {
            svc.conn_added(real_index);
        }
        Ok(id)
    }
}
