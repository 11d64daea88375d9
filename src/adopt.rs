//! The VRRP address watcher thread (`[vrrp] adopt = true`): reads the kernel's addresses every
//! `poll_ms` (`rvs_control::adopt`, iproute2) and publishes each change through the ordinary
//! `Setup` path, so the workers claim in ARP exactly the VIPs and local addresses keepalived has
//! put on rvsd's kernel interfaces, and announce new ones (docs/ha.md, "VRRP failover").
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rvs_control::adopt::{read_kernel_addrs, Change, Watcher};
use rvs_control::config::vrrp::VrrpConfig;

use crate::control::Shared;

fn show(pairs: &[(std::net::Ipv4Addr, usize)], watched: &[(usize, String)]) -> String {
    let name = |p: usize| watched.iter().find(|(i, _)| *i == p).map_or("?", |(_, n)| n.as_str());
    pairs.iter().map(|(a, p)| format!("{a} on {}", name(*p))).collect::<Vec<_>>().join(", ")
}

/// Starts the watcher when adoption is on.
pub fn spawn(
    cfg: &VrrpConfig,
    ports: &[rvs_control::config::PortConfig],
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<Option<JoinHandle<()>>, String> {
    if !cfg.adopt {
        return Ok(None);
    }
    let mut w = Watcher::new(cfg.watched(ports));
    let period = Duration::from_millis(u64::from(cfg.poll_ms));
    let watching = w.watched().iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
    tracing::info!(interfaces = %watching, poll_ms = cfg.poll_ms, "vrrp: adopting the addresses keepalived puts on the kernel interfaces");
    let t = std::thread::Builder::new()
        .name("rvs-adopt".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match read_kernel_addrs() {
                    Ok(k) => {
                        if let Some(c) = w.observe(&k) {
                            apply(&shared, &mut w, &c);
                        }
                    }
                    Err(e) => {
                        if w.failed() {
                            tracing::warn!(error = %e, "vrrp: cannot read the kernel's addresses; keeping the adopted set");
                        }
                    }
                }
                std::thread::sleep(period);
            }
        })
        .map_err(|e| format!("cannot start the vrrp watcher thread: {e}"))?;
    Ok(Some(t))
}

fn apply(shared: &Shared, w: &mut Watcher, c: &Change) {
    match shared.set_adopted(c.adopted.clone()) {
        Ok(epoch) => {
            w.published(c);
            let (added, removed) = (show(&c.added, w.watched()), show(&c.removed, w.watched()));
            tracing::info!(epoch, added = %added, removed = %removed, "vrrp: kernel interface addresses changed (VIPs and local addresses among them are claimed)");
        }
        // Retried at the next read: the watcher keeps its old baseline.
        Err(e) => tracing::warn!(error = %e, "vrrp: could not publish the adopted addresses"),
    }
}
