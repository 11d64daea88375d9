//! The poll-mode loop of one worker lcore: the only glue between DPDK queues and the dataplane.
//!
//! Per burst: receive on every port, hand each packet to the dataplane, take the frames other
//! workers handed over, run the timers, transmit what the dataplane queued, and pass the frames it
//! handed to other workers into their rings. No locks (the hand-off rings are single-producer,
//! single-consumer), no allocation (all vectors are sized before the loop), no syscalls unless
//! `idle_sleep_us` asks for a sleep after an empty poll.
//!
//! Cycles per packet: the TSC read once per poll for the clock also times the poll before it. A
//! poll that received frames (from a port or a hand-off ring) adds its cycles to `busy_cycles` and
//! its frames to `busy_packets`; idle polls add nothing (VPP's "clocks per packet", testpmd's
//! `--record-core-cycles`). The ratio is what a packet costs this worker at any load, which the
//! generator's rate cannot hide.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};

use dpdk_sys::{eal, Mbuf, Mempool, PktPool, RingRx, RingTx, RxQueue, TxQueue};
use rvs_dataplane::conn::bind::ConnEvent;
use rvs_dataplane::conn::sync::SyncOp;
use rvs_dataplane::stats::{DropReason, Event, Stats};
use rvs_dataplane::worker::{ConnView, Outbox, RealCounts, Setup, Worker};

/// What the control thread asks of a worker. Commands are picked up between bursts: a worker never
/// runs a half-applied change, and the fast path only polls an empty channel.
#[derive(Debug)]
pub enum Command {
    /// Adopt this configuration, then publish `epoch` as applied.
    Apply {
        setup: Arc<Setup>,
        epoch: u64,
    },
    RealCounts(Sender<Vec<RealCounts>>),
    Conns {
        service: Option<u32>,
        offset: u64,
        limit: u64,
        reply: Sender<(u64, Vec<ConnView>)>,
    },
    Zero(Option<u32>),
    /// A page of persistence templates (`Worker::persist_page`).
    Templates {
        service: Option<u32>,
        offset: u64,
        limit: u64,
        reply: Sender<(u64, Vec<rvs_dataplane::admin_persist::TemplateView>)>,
    },
    /// Refuse new connections from now on; keep forwarding established ones.
    Drain,
    /// Set (`Some`) or remove (`None`) the packet capture tap (`crate::capture`).
    Tap(Option<crate::capture::Tap>),
    /// Connection sync master on (`Some`: log connection events and send their sync operations
    /// to the sender) or off.
    SyncMaster(Option<crate::sync::SyncTx>),
    /// Connection sync backup: install these operations (`crate::sync`).
    SyncInstall(Vec<SyncOp>, Arc<crate::sync::SyncCounters>),
    /// Every connection a master would have sent (a late backup's full-table request).
    SyncTable(Sender<Vec<SyncOp>>),
}

/// Everything a worker owns.
#[derive(Debug)]
pub struct WorkerCtx {
    pub index: u16,
    pub workers: u16,
    /// (rx, tx) queue pair `index` of every port, in port order.
    pub queues: Vec<(RxQueue, TxQueue)>,
    /// Producer end of the ring to each other worker (None at this worker's own index).
    pub handoff_to: Vec<Option<RingTx>>,
    /// Consumer ends of the rings from every other worker.
    pub handoff_from: Vec<RingRx>,
    pub pool: Arc<Mempool>,
    pub stats: Arc<Stats>,
    pub setup: Arc<Setup>,
    pub stop: Arc<AtomicBool>,
    pub burst: usize,
    pub idle_sleep_us: u32,
    pub prefetch: bool,
    pub commands: Receiver<Command>,
    /// The last configuration epoch this worker applied.
    pub applied: Arc<AtomicU64>,
}

/// Milliseconds from the TSC: one multiply-free division per burst.
struct Clock {
    t0: u64,
    ticks_per_ms: u64,
}

impl Clock {
    fn new() -> Clock {
        Clock { t0: eal::rdtsc(), ticks_per_ms: (eal::tsc_hz() / 1000).max(1) }
    }
    /// Milliseconds since the start at TSC value `tsc`.
    #[inline]
    fn ms_at(&self, tsc: u64) -> u64 {
        (tsc - self.t0) / self.ticks_per_ms
    }
}

pub fn run(ctx: WorkerCtx) -> i32 {
    let nports = ctx.queues.len();
    let burst = ctx.burst;
    let (mut rxq, mut txq): (Vec<RxQueue>, Vec<TxQueue>) = ctx.queues.into_iter().unzip();
    let (mut to, mut from) = (ctx.handoff_to, ctx.handoff_from);
    let mut dp = Worker::new(&ctx.setup, ctx.index, PktPool(ctx.pool), ctx.stats.clone());
    let lanes = if ctx.workers > 1 { ctx.workers as usize } else { 0 };
    let mut out: Outbox<Mbuf> = Outbox::with_workers(nports, lanes, dp.outbox_capacity(burst));
    let mut rx: Vec<Mbuf> = Vec::with_capacity(burst);
    let mut tx: Vec<Vec<Mbuf>> = (0..nports).map(|_| Vec::with_capacity(out.capacity())).collect();
    let mut handed: Vec<Mbuf> = Vec::with_capacity(out.capacity());
    let clock = Clock::new();
    let stats = ctx.stats;
    let prefetch = ctx.prefetch;
    let mut commands_at = u64::MAX;
    // The capture tap: `None` while no capture runs, looked at once per burst.
    let mut tap: Option<crate::capture::Tap> = None;
    // The previous poll's start and its frames: a poll is timed by the next one's TSC read.
    let (mut poll_tsc, mut poll_got) = (clock.t0, 0usize);
    // Connection sync master: where the sync operations go, the events taken each burst (sized
    // when sync starts), and the event losses already counted.
    let mut sync: Option<crate::sync::SyncTx> = None;
    let mut events: Vec<ConnEvent> = Vec::new();
    let mut events_lost = 0u64;

    while !ctx.stop.load(Ordering::Relaxed) {
        let tsc = eal::rdtsc();
        if poll_got > 0 {
            stats.add(Event::BusyCycles, tsc.wrapping_sub(poll_tsc));
            stats.add(Event::BusyPackets, poll_got as u64);
        }
        poll_tsc = tsc;
        let now = clock.ms_at(tsc);
        let tap_ns = if tap.is_some() { crate::capture::now_ns() } else { 0 };
        let mut got = 0;
        for (p, q) in rxq.iter_mut().enumerate() {
            got += q.rx_burst(&mut rx);
            if prefetch {
                if let Some(m) = rx.first() {
                    m.prefetch();
                }
            }
            // The dataplane sees contiguous frames only; a chain that cannot be linearised is
            // counted here, where it was received.
            rx.retain_mut(|m| {
                if !m.is_contiguous() && m.linearize().is_err() {
                    stats.inc(Event::RxPackets);
                    stats.dropped(DropReason::Chained);
                    return false;
                }
                m.reset_offloads();
                true
            });
            if let Some(t) = tap.as_ref().filter(|t| t.rx && t.port == p) {
                rx.iter().for_each(|m| t.offer(m.data(), tap_ns));
            }
            dp.process_burst(&mut rx, p, now, &mut out);
        }
        // Frames other workers passed here: replies to our local ports, chained ARP and ICMP.
        for r in from.iter_mut() {
            got += r.dequeue_burst(&mut rx);
            for m in rx.drain(..) {
                let tag = m.tag();
                dp.process_handoff(m, tag, now, &mut out);
            }
        }
        dp.poll(now, &mut out);
        if let Some(tx) = &sync {
            let lost = dp.take_conn_events(&mut events);
            tx.count_lost_events(lost - events_lost);
            events_lost = lost;
            for e in events.drain(..) {
                dp.sync_records(&e, now, |op| tx.send(op));
            }
        }
        for (p, q) in txq.iter_mut().enumerate() {
            let pending = out.port(p);
            if pending.is_empty() {
                continue;
            }
            tx[p].append(pending);
            if let Some(t) = tap.as_ref().filter(|t| t.tx && t.port == p) {
                tx[p].iter().for_each(|m| t.offer(m.data(), tap_ns));
            }
            q.tx_burst(&mut tx[p]);
            for _ in tx[p].drain(..) {
                stats.dropped(DropReason::TxFull);
            }
        }
        for (w, ring) in to.iter_mut().enumerate() {
            let Some(ring) = ring else { continue };
            let lane = out.handoff(w);
            if lane.is_empty() {
                continue;
            }
            handed.extend(lane.drain(..).map(|(mut m, tag)| {
                m.set_tag(tag);
                m
            }));
            ring.enqueue_burst(&mut handed);
            for _ in handed.drain(..) {
                stats.dropped(DropReason::HandoffFull);
            }
        }
        // Commands are looked for once per millisecond, not every burst: an API call waits at most
        // that much longer, and the channel stays off the per-burst path.
        if now != commands_at {
            commands_at = now;
            while let Ok(cmd) = ctx.commands.try_recv() {
                match cmd {
                    Command::Apply { setup, epoch } => {
                        dp.apply(&setup);
                        ctx.applied.store(epoch, Ordering::Release);
                    }
                    Command::RealCounts(reply) => {
                        let _ = reply.send(dp.real_counts());
                    }
                    Command::Conns { service, offset, limit, reply } => {
                        let _ = reply.send(dp.conns_page(service, offset, limit, now));
                    }
                    Command::Zero(service) => dp.zero(service),
                    Command::Templates { service, offset, limit, reply } => {
                        let _ = reply.send(dp.persist_page(service, offset, limit, now));
                    }
                    Command::Drain => dp.set_draining(true),
                    Command::Tap(t) => tap = t,
                    Command::SyncMaster(tx) => {
                        let cap = tx.as_ref().map_or(0, |t| t.events_per_burst);
                        dp.enable_conn_events(cap);
                        events = Vec::with_capacity(cap);
                        events_lost = 0;
                        sync = tx;
                    }
                    Command::SyncInstall(ops, counters) => {
                        for op in &ops {
                            counters.installed(dp.sync_install(op, now));
                        }
                    }
                    Command::SyncTable(reply) => {
                        let mut v = Vec::new();
                        dp.sync_table(now, |op| v.push(op));
                        let _ = reply.send(v);
                    }
                }
            }
        }
        poll_got = got;
        if got == 0 && ctx.idle_sleep_us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(ctx.idle_sleep_us as u64));
        }
    }
    0
}
