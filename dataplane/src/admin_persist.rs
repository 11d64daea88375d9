//! The control plane's read-only view of a worker's persistence templates (`ipvsadm -Lnc` shows
//! them as connections in state NONE with client port 0; `-L --persistent-conn` counts them per
//! real server). Runs between bursts on the worker's thread, like the other queries in `admin`.
use std::net::Ipv4Addr;

use crate::flow::Millis;
use crate::frame::FramePool;
use crate::worker::Worker;

/// One live template: `client` of `service` sticks to `real` (ids) for `expires_ms` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateView {
    pub service: u32,
    pub client: Ipv4Addr,
    pub real: u32,
    pub expires_ms: Millis,
}

impl<P: FramePool> Worker<P> {
    /// A page of this worker's live templates, optionally of one service (by id), and how many
    /// match. Sorted by (service, client) so pages are stable between calls. O(capacity).
    pub fn persist_page(
        &self,
        service: Option<u32>,
        offset: u64,
        limit: u64,
        now: Millis,
    ) -> (u64, Vec<TemplateView>) {
        let mut all: Vec<TemplateView> = self
            .persist
            .iter()
            .filter(|(s, _, _, expires)| *expires > now && service.is_none_or(|id| id == *s))
            .map(|(service, client, real, expires)| TemplateView {
                service,
                client,
                real,
                expires_ms: expires - now,
            })
            .collect();
        all.sort_unstable_by_key(|t| (t.service, u32::from(t.client)));
        let total = all.len() as u64;
        let page = all.into_iter().skip(offset.min(total) as usize).take(limit as usize).collect();
        (total, page)
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::Persistence;
    use std::net::Ipv4Addr;

    #[test]
    fn iter_lists_live_templates_with_their_real() {
        let mut p = Persistence::with_capacity(4);
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        p.insert(7, a, 11, 1000, 0).unwrap();
        p.insert(7, b, 12, 2000, 0).unwrap();
        p.insert(7, a, 13, 1000, 500).unwrap(); // refresh: same key, new real
        let mut v: Vec<_> = p.iter().collect();
        v.sort_by_key(|t| t.1);
        assert_eq!(v, [(7, a, 13, 1500), (7, b, 12, 2000)]);
        p.forget_service(7);
        assert_eq!(p.iter().count(), 0);
    }
}
