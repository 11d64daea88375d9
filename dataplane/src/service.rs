//! A worker's runtime view of the virtual services: lookup by (proto, VIP, vport), scheduler state,
//! per-real connection counts, and the local addresses with this worker's port cursors.
//!
//! Invariants: built from a [`Setup`] per worker and never shared; `views[i]` describes `reals[i]`
//! in the order the scheduler was built with (the scheduler's pool contract). Per-real active/inactive
//! counts here are this worker's only; the control plane sums them over workers.
use std::net::Ipv4Addr;

use hashbrown::{HashMap, HashSet};

use crate::conn::{LportCursor, PortSlice};
use crate::flow::{Millis, Proto};
use crate::sched::{update_overload, RealView, Scheduler};
use crate::setup::{RealSetup, ServiceSetup, Setup};

#[derive(Debug)]
pub struct Lip {
    pub addr: Ipv4Addr,
    pub cursor: LportCursor,
}

#[derive(Debug)]
pub struct Service {
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub persistence_ms: Option<Millis>,
    pub toa: bool,
    pub synproxy: bool,
    pub reals: Vec<RealSetup>,
    pub views: Vec<RealView>,
    pub sched: Scheduler,
    pub lips: Vec<Lip>,
    /// Where the next connection starts looking for a local port (rotates over `lips`).
    pub next_lip: usize,
}

impl Service {
    fn new(s: &ServiceSetup, setup: &Setup, worker: u16, seed: u16) -> Service {
        let views: Vec<RealView> =
            s.reals.iter().map(|r| RealView::new(RealView::id_of(r.addr, r.port), r.weight)).collect();
        let slice = PortSlice::new(setup.workers.max(1), worker);
        let lips = s
            .laddrs
            .iter()
            .map(|a| Lip {
                addr: *a,
                cursor: LportCursor::new(slice, setup.conn.lport_min, setup.conn.lport_max, seed),
            })
            .collect();
        Service {
            proto: s.proto,
            vip: s.vip,
            vport: s.vport,
            persistence_ms: s.persistence_ms,
            toa: s.toa,
            synproxy: s.synproxy,
            reals: s.reals.clone(),
            sched: Scheduler::new(s.sched, &views),
            views,
            lips,
            next_lip: 0,
        }
    }

    /// A connection to `real` was created (it starts inactive, as in LVS).
    #[inline]
    pub fn conn_added(&mut self, real: usize) {
        if let Some(v) = self.views.get_mut(real) {
            v.inactive += 1;
            let r = &self.reals[real];
            update_overload(&mut v.overloaded, v.active + v.inactive, r.u_threshold, r.l_threshold);
        }
    }

    /// A connection to `real` went away; `active` says which count it was in.
    #[inline]
    pub fn conn_removed(&mut self, real: usize, active: bool) {
        if let Some(v) = self.views.get_mut(real) {
            if active {
                v.active = v.active.saturating_sub(1);
            } else {
                v.inactive = v.inactive.saturating_sub(1);
            }
            let r = &self.reals[real];
            update_overload(&mut v.overloaded, v.active + v.inactive, r.u_threshold, r.l_threshold);
        }
    }

    /// A connection moved between inactive and active.
    #[inline]
    pub fn conn_activity(&mut self, real: usize, became_active: bool) {
        if let Some(v) = self.views.get_mut(real) {
            if became_active {
                v.inactive = v.inactive.saturating_sub(1);
                v.active += 1;
            } else {
                v.active = v.active.saturating_sub(1);
                v.inactive += 1;
            }
        }
    }
}

/// All services of one worker.
#[derive(Debug, Default)]
pub struct Services {
    pub list: Vec<Service>,
    by_key: HashMap<(Proto, Ipv4Addr, u16), u32>,
    vips: HashSet<Ipv4Addr>,
    lips: HashSet<Ipv4Addr>,
}

impl Services {
    pub fn new(setup: &Setup, worker: u16) -> Services {
        let mut s = Services::default();
        for (i, svc) in setup.services.iter().enumerate() {
            // Spread the workers' and services' cursors so they do not all start at the same port.
            let seed = (i as u16).wrapping_mul(7919).wrapping_add(worker.wrapping_mul(10_007));
            s.by_key.insert((svc.proto, svc.vip, svc.vport), i as u32);
            s.vips.insert(svc.vip);
            s.lips.extend(svc.laddrs.iter().copied());
            s.list.push(Service::new(svc, setup, worker, seed));
        }
        s
    }

    #[inline]
    pub fn find(&self, proto: Proto, vip: Ipv4Addr, vport: u16) -> Option<u32> {
        self.by_key.get(&(proto, vip, vport)).copied()
    }

    #[inline]
    pub fn is_vip(&self, a: Ipv4Addr) -> bool {
        self.vips.contains(&a)
    }

    #[inline]
    pub fn is_lip(&self, a: Ipv4Addr) -> bool {
        self.lips.contains(&a)
    }
}
