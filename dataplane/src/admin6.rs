//! The IPv6 side of [`Worker::apply`]: the IPv6 and NAT64 service tables rebuilt from a new
//! setup (per-real state carried over by id), persistence templates of removed reals and
//! services forgotten, and with `expire_on_real_removed` their IPv6 connections dropped.
//!
//! Invariant: as for IPv4, connections keep their real server (they name it by id); ports and
//! routes are fixed for the daemon's lifetime.
use hashbrown::HashSet;

use crate::conn::ConnId;
use crate::frame::FramePool;
use crate::service::Services;
use crate::setup::Setup;
use crate::worker::Worker;

impl<P: FramePool> Worker<P> {
    pub(crate) fn apply6(&mut self, setup: &Setup) {
        let mut removed: HashSet<(u32, u32)> = HashSet::new();
        let olds = self
            .services6
            .list
            .iter()
            .map(|s| (s.id, s.reals.iter().map(|r| r.id).collect::<Vec<_>>()))
            .chain(self.nat64.list.iter().map(|s| (s.id, s.reals.iter().map(|r| r.id).collect())));
        let mut gone = Vec::new();
        for (sid, reals) in olds {
            let new = setup.services.iter().find(|s| s.id == sid);
            for r in reals {
                if !new.is_some_and(|n| n.reals.iter().any(|x| x.id == r)) {
                    removed.insert((sid, r));
                }
            }
            if new.is_none() {
                gone.push(sid);
            }
        }
        for sid in gone {
            self.persist6.forget_service(sid);
        }
        for (s, r) in &removed {
            self.persist6.forget_real(*s, *r);
        }
        let old = std::mem::take(&mut self.services6);
        self.services6 = Services::rebuild(old, setup, self.index);
        let old = std::mem::take(&mut self.nat64);
        self.nat64 = Services::rebuild(old, setup, self.index);
        self.conns6.set_timeouts(setup.conn.timeouts);
        if setup.conn.expire_on_real_removed && !removed.is_empty() {
            let doomed: Vec<ConnId> = self
                .conns6
                .iter()
                .filter(|(_, c)| removed.contains(&(c.service(), c.real())))
                .map(|(id, _)| id)
                .collect();
            for id in doomed {
                self.release6(id);
            }
        }
    }
}
