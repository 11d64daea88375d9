//! Binding and releasing IPv6 connections: [`super::bind`]'s rules over the IPv6 table, for
//! IPv6 services and NAT64 services (an IPv6 client, an IPv4 real server and local address).
//!
//! Invariants:
//! - As for IPv4: a connection counted in a real server's counts is exactly a connection in the
//!   IPv6 table naming that real; every way out of the table goes through [`released6`].
//! - A NAT64 connection is a `Conn<Ipv6Addr>` whose server side (real server, local address) is
//!   held as IPv4-mapped addresses (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2): its reply tuple
//!   `RS:rport -> LIP:lport` is the IPv4 reply's tuple, mapped, so one lookup finds it; see
//!   [`crate::xmit::nat64`].
//! - sh and mh hash an IPv6 client by its four words XORed (LVS's fold); persistence templates
//!   of IPv6 services are keyed by the IPv6 client.
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::conn::{alloc_lport, Conn, ConnId, InsertError, NewConn, StateChange};
use crate::flow::{Addr, FlowKey, Millis};
use crate::frame::FramePool;
use crate::proto::v6::Svc6;
use crate::sched::fold_v6;
use crate::service::{Service, Services};
use crate::stats::{DropReason as D, Event as E, Stats};
use crate::worker::Worker;
use crate::xmit::Xlat;

/// Candidate local ports tried per local address before moving to the next one.
const LPORT_TRIES: usize = 64;

/// The IPv4 address `a` as the IPv6 table holds it (IPv4-mapped).
#[inline]
pub fn mapped(a: Ipv4Addr) -> Ipv6Addr {
    a.to_ipv6_mapped()
}

/// A service's real-server bookkeeping, whichever family its reals are: what bind and release
/// touch, for the two IPv6-side tables.
macro_rules! on_real6 {
    ($s6:expr, $n64:expr, $svc:expr, $real:expr, |$s:ident, $i:ident| $body:expr) => {
        if let Some(($s, $i)) = $s6.real_mut($svc, $real) {
            Some($body)
        } else if let Some(($s, $i)) = $n64.real_mut($svc, $real) {
            Some($body)
        } else {
            None
        }
    };
}

/// Whether service `id` (IPv6 or NAT64) inserts TOA.
pub(crate) fn toa_of(services6: &Services<Ipv6Addr>, nat64: &Services<Ipv6Addr, Ipv4Addr>, id: u32) -> bool {
    services6.by_id(id).map(|s| s.toa).or_else(|| nat64.by_id(id).map(|s| s.toa)).unwrap_or(false)
}

/// The accounting of an IPv6 connection that left the table: its real server's counts, and what
/// SYN-proxy still held for it.
pub(crate) fn released6<F>(
    services6: &mut Services<Ipv6Addr>,
    nat64: &mut Services<Ipv6Addr, Ipv4Addr>,
    sp6: &mut crate::synproxy::SynProxy<F>,
    stats: &Stats,
    id: ConnId,
    c: &Conn<Ipv6Addr>,
) {
    if c.synproxy_pending() {
        sp6.abort(id, stats);
    }
    on_real6!(services6, nat64, c.service(), c.real(), |s, i| s.conn_removed_at(i, c.is_counted_active()));
}

/// Schedules a real server of `svc` for a client: persistence template first, then the scheduler.
fn pick<R: Addr + crate::service::FromIp>(
    svc: &mut Service<Ipv6Addr, R>,
    persist: &mut crate::sched::Persistence<Ipv6Addr>,
    stats: &Stats,
    key: &FlowKey<Ipv6Addr>,
    now: Millis,
) -> Result<usize, D> {
    if svc.persistence_ms.is_some() {
        if let Some(r) = persist.lookup(svc.id, key.src, now).and_then(|id| svc.real_index(id)) {
            if svc.views[r].usable() {
                stats.inc(E::PersistHits);
                return Ok(r);
            }
        }
    }
    svc.sched.pick(&svc.views, fold_v6(key.src), key.sport).ok_or(D::NoRealServer)
}

impl<P: FramePool> Worker<P> {
    /// Binds a new IPv6 connection for `key` to `svc`.
    pub(crate) fn bind6(&mut self, svc: Svc6, key: &FlowKey<Ipv6Addr>, now: Millis) -> Result<ConnId, D> {
        if self.conns6.is_full() {
            return Err(D::ConnTableFull);
        }
        let (new, sid, ms) = match svc {
            Svc6::V6(i) => {
                let s = &mut self.services6.list[i as usize];
                if s.lips.is_empty() && s.fullnat_only {
                    return Err(D::NoLocalAddr);
                }
                let real = pick(s, &mut self.persist6, &self.stats, key, now)?;
                let rs = s.reals[real];
                let (lip, lport, rport) = match rs.xlat {
                    Xlat::FullNat => {
                        let (lip, lport) =
                            take_lport(&self.conns6, s, key, rs.addr, rs.port, &self.stats, |a| a)?;
                        (lip, lport, rs.port)
                    }
                    Xlat::Nat => (key.src, key.sport, rs.port),
                    Xlat::Dr | Xlat::Tun => (key.src, key.sport, key.dport),
                };
                let new = NewConn {
                    client: *key,
                    lip,
                    lport,
                    rs: rs.addr,
                    rport,
                    service: s.id,
                    real: rs.id,
                    xlat: rs.xlat,
                };
                (new, (s.id, real), s.persistence_ms)
            }
            Svc6::Nat64(i) => {
                let s = &mut self.nat64.list[i as usize];
                if s.lips.is_empty() {
                    return Err(D::NoLocalAddr);
                }
                let real = pick(s, &mut self.persist6, &self.stats, key, now)?;
                let rs = s.reals[real];
                let rs6 = mapped(rs.addr);
                let (lip, lport) = take_lport(&self.conns6, s, key, rs6, rs.port, &self.stats, mapped)?;
                let new = NewConn {
                    client: *key,
                    lip,
                    lport,
                    rs: rs6,
                    rport: rs.port,
                    service: s.id,
                    real: rs.id,
                    xlat: Xlat::FullNat,
                };
                (new, (s.id, real), s.persistence_ms)
            }
        };
        let id = self.conns6.insert(&new, now).map_err(|e| match e {
            InsertError::Full => D::ConnTableFull,
            InsertError::Exists => D::ConnCollision,
        })?;
        let (services6, nat64) = (&mut self.services6, &mut self.nat64);
        let rid = new.real;
        on_real6!(services6, nat64, sid.0, rid, |s, _i| s.conn_added(sid.1));
        if let Some(ms) = ms {
            if self.persist6.insert(sid.0, key.src, rid, ms, now).is_err() {
                self.stats.inc(E::PersistFull);
            }
        }
        self.stats.inc(E::ConnsCreated);
        Ok(id)
    }

    /// Removes an IPv6 connection now, with the same accounting as expiry.
    pub(crate) fn release6(&mut self, id: ConnId) {
        if let Some(c) = self.conns6.remove(id) {
            released6(&mut self.services6, &mut self.nat64, &mut self.sp6, &self.stats, id, &c);
        }
    }

    /// Expires due IPv6 connections (bounded by the expiry budget).
    pub(crate) fn expire_conns6(&mut self, now: Millis) {
        let (s6, n64, sp6, stats) = (&mut self.services6, &mut self.nat64, &mut self.sp6, &*self.stats);
        let n = self.conns6.expire(now, self.expire_budget, |id, c| released6(s6, n64, sp6, stats, id, c));
        if n > 0 {
            self.stats.add(E::ConnsExpired, n as u64);
        }
    }

    /// Keeps per-real active/inactive counts in step with an IPv6 connection's state change.
    pub(crate) fn state_changed6(&mut self, id: ConnId, ch: StateChange) {
        if ch.old == ch.new || !(ch.became_active() || ch.became_inactive()) {
            return;
        }
        let Some(c) = self.conns6.get(id).copied() else { return };
        let (s6, n64) = (&mut self.services6, &mut self.nat64);
        on_real6!(s6, n64, c.service(), c.real(), |s, i| s.conn_activity_at(i, ch.became_active()));
    }
}

/// A FULLNAT local address and port from this worker's slice of `svc`'s local addresses (held in
/// the IPv6 table as `map(lip)`), rotating over them.
fn take_lport<R: Addr + crate::service::FromIp>(
    conns: &crate::conn::ConnTable<Ipv6Addr>,
    svc: &mut Service<Ipv6Addr, R>,
    key: &FlowKey<Ipv6Addr>,
    rs: Ipv6Addr,
    rport: u16,
    stats: &Stats,
    map: impl Fn(R) -> Ipv6Addr,
) -> Result<(Ipv6Addr, u16), D> {
    let n = svc.lips.len();
    if n == 0 {
        return Err(D::NoLocalAddr);
    }
    for k in 0..n {
        let li = (svc.next_lip + k) % n;
        let lip = &mut svc.lips[li];
        let a = map(lip.addr);
        if let Some(p) = alloc_lport(conns, &mut lip.cursor, a, rs, rport, key.proto, LPORT_TRIES) {
            svc.next_lip = (li + 1) % n;
            return Ok((a, p));
        }
        stats.inc(E::LportRetry);
    }
    Err(D::LportExhausted)
}
