//! IP fragments of TCP and UDP datagrams: forwarded by their datagram's first fragment's flow,
//! without reassembly.
//!
//! Why not reassemble: a frame holds one contiguous buffer (an mbuf's data room), so a
//! reassembled 4,000-byte datagram would not fit one, and the way out would have to fragment it
//! again. Forwarding needs only the first fragment's ports: it finds (or creates) the connection
//! like any packet and is rewritten in full (addresses, ports and the transport checksum, which
//! lives in the first fragment and is updated incrementally); the later fragments carry no
//! transport header and get the connection's addresses only. The real server (or client)
//! reassembles, as it would behind a router.
//!
//! Invariants:
//! - A table per worker maps a datagram (source, destination, protocol, identification) to where
//!   its fragments go: the connection here, the worker that owns it, or along the workers. It is
//!   bounded in datagrams (`max_datagrams`), per source (`max_per_source`) and in time
//!   (`timeout_ms` from its first fragment), and an entry leaves as soon as every byte up to the
//!   last fragment has passed. Fragments that arrive before their first wait in the entry (at
//!   most [`MAX_HELD`]); what times out is dropped and counted (`frag_timeout`).
//! - Every way a fragment can fail is a counted drop: `frag_tiny` (a first fragment without the
//!   whole transport header, RFC 1858), `frag_overlap` (a TCP fragment at offset 8, which could
//!   rewrite the header's flags, RFC 1858), `frag_table_full`, `frag_source_limit`,
//!   `frag_held_full`, `frag_no_flow` (no connection for it anywhere). Other overlaps (a fragment
//!   sent twice, or covering another's bytes) are forwarded as they are: they cannot change the
//!   flow, which only the first fragment's header decides, and the receiver's reassembly judges
//!   them (Linux drops a datagram whose fragments overlap). Bytes counted twice only make its
//!   entry leave early; a fragment after that waits for a first that has passed and times out.
//! - Multi-core: RSS hashes fragments on their addresses only (or not at all), so the fragments
//!   of one datagram, and its unfragmented packets, may reach different workers. Every fragment
//!   is first handed to its collector, a hash of its address pair ([`collector`]), so one
//!   worker sees all of a datagram. The collector sends them to the connection's owner when the
//!   first fragment names it (a local port's owner, a NAT client's owner), otherwise along the
//!   other workers until one has the connection; the last one creates it if none has.
//! - Where the gateway rewrites a datagram's source (FULLNAT both ways, NAT's replies), the
//!   receiver sees many senders' datagrams from one address; two that shared an identification
//!   would be reassembled into one. Each such datagram's fragments leave with an identification
//!   the worker chooses (`(n * workers + worker) mod 2^16`, so workers never choose alike).
//! - A first fragment goes through the same stages as any packet (lookup, admission, binding,
//!   the mode's rewrite, counters), except that its transport checksum cannot be verified
//!   (it covers bytes not here) and TOA is not inserted into it.
use std::collections::VecDeque;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::conn::{owner, ConnId, Dir};
use crate::flow::{FlowKey, Millis, Proto};
use crate::frame::{Frame, FramePool};
use crate::handoff::{client_owner, Handoff, HandoffKind};
use crate::ip4::decrement_ttl;
use crate::outbox::Outbox;
use crate::packet::{Ctx, Dst, ETH};
use crate::stats::{DropReason as D, Event as E};
use crate::wire::{ipv4, Ipv4Packet};
use crate::worker::Worker;
use crate::xmit::{self, Xlat};

/// Fragments one datagram may have waiting for its first.
pub const MAX_HELD: usize = 8;

/// One datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ident: u16,
    pub proto: u8,
}

/// Where a datagram's fragments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The first fragment has not been seen.
    Pending,
    /// The connection is on this worker.
    Here(ConnId, Dir),
    /// Worker `w` owns the connection.
    Worker(u16),
    /// Along the workers from this one (the collector).
    Chain,
}

#[derive(Debug)]
struct Entry<F> {
    route: Route,
    created: Millis,
    held: [Option<F>; MAX_HELD],
    /// Payload bytes forwarded so far, and the datagram's length once its last fragment passed.
    seen: u32,
    total: Option<u32>,
    /// The identification its fragments leave with, where the gateway rewrites their source.
    ident: Option<u16>,
}

/// The per-worker fragment table.
#[derive(Debug)]
pub struct Frags<F> {
    map: HashMap<FragKey, Entry<F>>,
    per_source: HashMap<Ipv4Addr, u32>,
    order: VecDeque<(FragKey, Millis)>,
    cap: usize,
    per_source_cap: u32,
    timeout: Millis,
    /// Frames waiting in entries.
    nheld: usize,
}

/// The worker that collects the fragments of datagrams from `src` to `dst`.
#[inline]
pub fn collector(src: Ipv4Addr, dst: Ipv4Addr, workers: u16) -> u16 {
    let x = (u64::from(u32::from(src)) << 32 | u64::from(u32::from(dst))).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 32) % u64::from(workers.max(1))) as u16
}

impl<F> Frags<F> {
    pub fn new(cap: usize, per_source_cap: u32, timeout: Millis) -> Frags<F> {
        Frags {
            map: HashMap::with_capacity(cap),
            per_source: HashMap::with_capacity(cap),
            order: VecDeque::with_capacity(cap),
            cap,
            per_source_cap: per_source_cap.max(1),
            timeout,
            nheld: 0,
        }
    }

    /// Datagrams tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Frames waiting for their first fragment.
    pub fn held(&self) -> usize {
        self.nheld
    }

    fn route(&self, k: &FragKey) -> Option<Route> {
        self.map.get(k).map(|e| e.route)
    }

    /// Starts tracking `k`.
    fn insert(&mut self, k: FragKey, route: Route, now: Millis) -> Result<(), D> {
        if self.map.len() >= self.cap {
            return Err(D::FragTableFull);
        }
        let n = self.per_source.get(&k.src).copied().unwrap_or(0);
        if n >= self.per_source_cap {
            return Err(D::FragSourceLimit);
        }
        self.per_source.insert(k.src, n + 1);
        self.map.insert(
            k,
            Entry {
                route,
                created: now,
                held: std::array::from_fn(|_| None),
                seen: 0,
                total: None,
                ident: None,
            },
        );
        self.order.push_back((k, now + self.timeout));
        Ok(())
    }

    /// Sets `k`'s route (tracking it if new); returns what waited for it, oldest first.
    fn resolve(&mut self, k: FragKey, route: Route, now: Millis) -> Result<[Option<F>; MAX_HELD], D> {
        if !self.map.contains_key(&k) {
            self.insert(k, route, now)?;
        }
        let e = self.map.get_mut(&k).expect("tracked above");
        e.route = route;
        self.nheld -= e.held.iter().filter(|h| h.is_some()).count();
        Ok(std::mem::replace(&mut e.held, std::array::from_fn(|_| None)))
    }

    /// Keeps `f` until `k`'s first fragment comes; gives it back when there is no room.
    fn hold(&mut self, k: FragKey, f: F, now: Millis) -> Result<(), (F, D)> {
        if !self.map.contains_key(&k) {
            if let Err(r) = self.insert(k, Route::Pending, now) {
                return Err((f, r));
            }
        }
        let e = self.map.get_mut(&k).expect("tracked above");
        match e.held.iter_mut().find(|h| h.is_none()) {
            Some(slot) => {
                *slot = Some(f);
                self.nheld += 1;
                Ok(())
            }
            None => Err((f, D::FragHeldFull)),
        }
    }

    /// The identification `k`'s fragments leave with: the one `fresh` gives, chosen once per
    /// datagram (None when `k` is not tracked).
    fn ident(&mut self, k: &FragKey, fresh: impl FnOnce() -> u16) -> Option<u16> {
        let e = self.map.get_mut(k)?;
        Some(*e.ident.get_or_insert_with(fresh))
    }

    /// Notes `len` payload bytes of `k` at `offset` passed (`last`: no more fragments follow);
    /// forgets the datagram once all of it has.
    fn passed(&mut self, k: &FragKey, offset: u32, len: u32, last: bool) {
        let Some(e) = self.map.get_mut(k) else { return };
        e.seen += len;
        if last {
            e.total = Some(offset + len);
        }
        if e.total.is_some_and(|t| e.seen >= t) && e.held.iter().all(|h| h.is_none()) {
            self.remove(k);
        }
    }

    fn remove(&mut self, k: &FragKey) -> Option<Entry<F>> {
        let e = self.map.remove(k)?;
        self.nheld -= e.held.iter().filter(|h| h.is_some()).count();
        if let Some(n) = self.per_source.get_mut(&k.src) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&k.src);
            }
        }
        Some(e)
    }

    /// Forgets datagrams older than the timeout; `dropped` gets each frame that still waited.
    pub fn expire(&mut self, now: Millis, mut dropped: impl FnMut(F)) {
        while let Some(&(k, due)) = self.order.front() {
            if due > now {
                break;
            }
            self.order.pop_front();
            // The key may have left (complete) and come back (a new datagram, ident reused).
            if self.map.get(&k).is_some_and(|e| e.created + self.timeout <= now) {
                if let Some(e) = self.remove(&k) {
                    e.held.into_iter().flatten().for_each(&mut dropped);
                }
            }
        }
    }
}

/// What IPv4 input knows about a fragment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FragInfo {
    pub key: FragKey,
    /// Payload offset in bytes, payload length, more fragments follow.
    pub offset: u32,
    pub len: u32,
    pub more: bool,
}

impl FragInfo {
    pub(crate) fn of(ip: &Ipv4Packet<&[u8]>) -> FragInfo {
        FragInfo {
            key: FragKey { src: ip.src_addr(), dst: ip.dst_addr(), ident: ip.ident(), proto: ip.protocol() },
            offset: u32::from(ip.frag_offset()),
            len: (ip.total_len() as usize - ip.header_len()) as u32,
            more: ip.more_frags(),
        }
    }

    fn first(&self) -> bool {
        self.offset == 0
    }
}

impl<P: FramePool> Worker<P> {
    /// A TCP or UDP fragment (IPv4 checked, `cx.hl` set).
    pub(crate) fn frag_input(&mut self, f: P::Frame, cx: &mut Ctx, out: &mut Outbox<P::Frame>) {
        let fi = FragInfo::of(&Ipv4Packet::new_unchecked(&f.data()[ETH..]));
        if fi.key.proto == ipv4::PROTO_TCP && fi.offset == 8 {
            return self.discard(f, D::FragOverlap);
        }
        // Every fragment of a datagram to one worker first.
        if self.workers > 1 && cx.via.is_none() {
            let g = collector(fi.key.src, fi.key.dst, self.workers);
            if g != self.index {
                return self.frag_send(f, cx, g, HandoffKind::FragCollect, out);
            }
        }
        let chained = cx.via.is_some_and(|h| h.kind == HandoffKind::FragChain);
        match self.frags.route(&fi.key) {
            Some(Route::Here(id, dir)) => self.frag_forward(f, cx, &fi, id, dir, out),
            Some(Route::Worker(w)) => {
                self.frags.passed(&fi.key, fi.offset, fi.len, !fi.more);
                self.frag_send(f, cx, w, HandoffKind::FragOwner, out)
            }
            Some(Route::Chain) => {
                self.frags.passed(&fi.key, fi.offset, fi.len, !fi.more);
                self.frag_chain(f, cx, out)
            }
            Some(Route::Pending) | None if fi.first() => self.frag_first(f, cx, &fi, out),
            // A later fragment on a chain, at a worker without its connection: on down the chain.
            None if chained => self.frag_chain(f, cx, out),
            Some(Route::Pending) | None => {
                if let Err((f, r)) = self.frags.hold(fi.key, f, cx.now) {
                    self.discard(f, r);
                }
            }
        }
    }

    /// The first fragment: its flow decides where the datagram goes.
    fn frag_first(&mut self, f: P::Frame, cx: &mut Ctx, fi: &FragInfo, out: &mut Outbox<P::Frame>) {
        let min = if fi.key.proto == ipv4::PROTO_TCP { 20 } else { 8 };
        if (fi.len as usize) < min {
            return self.discard(f, D::FragTiny);
        }
        let key = match crate::wire::flow_key(&f.data()[ETH..]) {
            Ok(k) => k,
            Err(_) => return self.discard(f, D::FragTiny),
        };
        cx.key = key;
        if key.proto == Proto::Tcp {
            if let Err(r) = crate::proto::tcp::parse(&f, cx) {
                return self.discard(f, r);
            }
        }
        if let Some((id, dir)) = self.conns.lookup(&key) {
            return self.frag_resolved(f, cx, fi, Route::Here(id, dir), out);
        }
        let via = cx.via.map(|h| h.kind);
        let final_hop = matches!(via, Some(HandoffKind::FragOwner));
        // The owner is named by the first fragment: a local port's, or a NAT client's.
        let owner_of = if self.services.is_lip(key.dst) {
            Some(owner(key.dport, self.workers))
        } else if self.services.is_nat_source(key.proto, key.src, key.sport) {
            Some(client_owner(key.dst, key.dport, self.workers))
        } else {
            None
        };
        if self.workers > 1 && !final_hop && via != Some(HandoffKind::FragChain) {
            match owner_of {
                Some(w) if w != self.index => return self.frag_resolved(f, cx, fi, Route::Worker(w), out),
                None if self.services.is_vip(key.dst) => {
                    return self.frag_resolved(f, cx, fi, Route::Chain, out)
                }
                _ => {}
            }
        }
        // Along the chain, a worker without the connection passes the first fragment on; the last
        // one admits it.
        if via == Some(HandoffKind::FragChain) {
            let origin = cx.via.map_or(self.index, |h| h.origin as u16);
            if Handoff::next_in_chain(origin, self.index, self.workers).is_some() {
                return self.frag_chain(f, cx, out);
            }
        }
        self.frag_admit(f, cx, fi, out)
    }

    /// A first fragment with no connection anywhere: a new flow to a service.
    fn frag_admit(&mut self, f: P::Frame, cx: &mut Ctx, fi: &FragInfo, out: &mut Outbox<P::Frame>) {
        let key = cx.key;
        let svc = if self.services.is_vip(key.dst) {
            self.services.find(key.proto, key.dst, key.dport)
        } else {
            None
        };
        let Some(svc) = svc else {
            let r = match self.classify(key.dst) {
                Some(Dst::Lip) => D::LipNoConn,
                Some(_) => D::NoService,
                None if self.services.is_nat_source(key.proto, key.src, key.sport) => D::NatNoConn,
                None => D::NotForUs,
            };
            return self.frag_fail(f, fi, r);
        };
        cx.dst = Dst::Vip;
        // A fragmented SYN or datagram opens a connection as an unfragmented one would; its
        // checksum covers the whole datagram, which the receiver verifies.
        let opens = match key.proto {
            Proto::Udp => !self.draining,
            Proto::Tcp => crate::proto::tcp::syn_only(cx) && !self.draining,
        };
        if !opens {
            let r = if self.draining { D::Draining } else { D::TcpNoConn };
            return self.frag_fail(f, fi, r);
        }
        if crate::ip4::ttl_expires(&f) {
            return self.frag_fail(f, fi, D::TtlExceeded);
        }
        match self.bind(svc, &key, cx.now) {
            Ok(id) => self.frag_resolved(f, cx, fi, Route::Here(id, Dir::Original), out),
            Err(r) => self.frag_fail(f, fi, r),
        }
    }

    /// The datagram's route is known from its first fragment `f`: it goes that way, and so do the
    /// fragments that waited for it, after it.
    fn frag_resolved(
        &mut self,
        f: P::Frame,
        cx: &Ctx,
        fi: &FragInfo,
        route: Route,
        out: &mut Outbox<P::Frame>,
    ) {
        let held = match self.frags.resolve(fi.key, route, cx.now) {
            Ok(h) => h,
            Err(r) => return self.discard(f, r),
        };
        let mut go = |w: &mut Self, f: P::Frame, fi: &FragInfo| match route {
            Route::Here(id, dir) => w.frag_forward(f, cx, fi, id, dir, out),
            Route::Worker(o) => {
                w.frags.passed(&fi.key, fi.offset, fi.len, !fi.more);
                w.frag_send(f, cx, o, HandoffKind::FragOwner, out)
            }
            Route::Chain => {
                w.frags.passed(&fi.key, fi.offset, fi.len, !fi.more);
                w.frag_chain(f, cx, out)
            }
            Route::Pending => w.discard(f, D::FragNoFlow),
        };
        go(self, f, fi);
        for h in held.into_iter().flatten() {
            let hfi = FragInfo::of(&Ipv4Packet::new_unchecked(&h.data()[ETH..]));
            go(self, h, &hfi);
        }
    }

    /// The first fragment found no way: it and what waited for it are dropped for `r`.
    fn frag_fail(&mut self, f: P::Frame, fi: &FragInfo, r: D) {
        self.discard(f, r);
        if let Some(e) = self.frags.remove(&fi.key) {
            for h in e.held.into_iter().flatten() {
                self.discard(h, D::FragNoFlow);
            }
        }
    }

    fn frag_send(&mut self, f: P::Frame, cx: &Ctx, w: u16, kind: HandoffKind, out: &mut Outbox<P::Frame>) {
        let h = Handoff { kind, in_port: cx.in_port as u8, origin: self.index as u8, learned: false };
        out.hand_to(&self.stats, w, f, h);
    }

    /// On along the workers from the collector; the end of the chain without the connection
    /// drops a later fragment.
    fn frag_chain(&mut self, f: P::Frame, cx: &Ctx, out: &mut Outbox<P::Frame>) {
        let origin = match cx.via {
            Some(h) if h.kind == HandoffKind::FragChain => h.origin as u16,
            _ => self.index,
        };
        match Handoff::next_in_chain(origin, self.index, self.workers) {
            Some(next) => {
                let h = Handoff {
                    kind: HandoffKind::FragChain,
                    in_port: cx.in_port as u8,
                    origin: origin as u8,
                    learned: false,
                };
                out.hand_to(&self.stats, next, f, h);
            }
            None => self.discard(f, D::FragNoFlow),
        }
    }

    /// A fragment of connection `id`: the first through the full forwarding path, a later one
    /// with the connection's addresses only.
    fn frag_forward(
        &mut self,
        mut f: P::Frame,
        cx: &Ctx,
        fi: &FragInfo,
        id: ConnId,
        dir: Dir,
        out: &mut Outbox<P::Frame>,
    ) {
        let Some(c) = self.conns.get(id).copied() else { return self.frag_fail(f, fi, D::FragNoFlow) };
        // Where the source is rewritten (FULLNAT both ways, NAT's replies) the receiver sees many
        // senders' datagrams from one address and would reassemble two that share an
        // identification into one: each datagram gets an identification of the gateway's.
        let shared_source = match c.xlat() {
            Xlat::FullNat => true,
            Xlat::Nat => dir == Dir::Reply,
            Xlat::Dr | Xlat::Tun => false,
        };
        if shared_source {
            let (n, w) = (&mut self.next_ident, (self.workers, self.index));
            let fresh = || {
                *n = n.wrapping_add(1);
                n.wrapping_mul(w.0).wrapping_add(w.1)
            };
            if let Some(ident) = self.frags.ident(&fi.key, fresh) {
                Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]).set_ident(ident);
            }
        }
        self.frags.passed(&fi.key, fi.offset, fi.len, !fi.more);
        self.stats.inc(E::FragmentsForwarded);
        if fi.first() {
            let mut fcx = *cx;
            fcx.hashed = None;
            fcx.fragment = true;
            return self.forward(f, &fcx, id, dir, out);
        }
        if !decrement_ttl(&mut f) {
            return self.discard(f, D::TtlExceeded);
        }
        let Some((mut f, split)) = self.check_mtu(f, &c, dir, cx, out) else { return };
        let xlat = c.xlat();
        let to = xmit::next_hop(&c, dir);
        if matches!(xlat, Xlat::FullNat | Xlat::Nat) {
            let k: FlowKey = xmit::out_key(&c, dir);
            let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH..]);
            ip.set_src_addr(k.src);
            ip.set_dst_addr(k.dst);
        }
        let len = f.len() as u64;
        if let Some((s, i)) = self.services.real_mut(c.service(), c.real()) {
            s.count_at(i, dir == Dir::Original, len);
        }
        self.send_out(f, xlat, dir, to, split, cx, out);
    }

    /// Fragment-table timeouts.
    pub(crate) fn frag_poll(&mut self, now: Millis) {
        let stats = &*self.stats;
        self.frags.expire(now, |f| {
            stats.dropped(D::FragTimeout);
            drop(f);
        });
    }
}
