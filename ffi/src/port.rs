//! Ethernet ports and the per-worker queue handles.
//!
//! Invariant: a queue handle is the only way to burst on its queue, and each is owned by exactly one
//! worker (`Send`, not `Sync`). Handles keep the port alive; [`Port::stop`] refuses while any handle
//! exists, so a port is never stopped or closed under a polling worker.
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::error::{check, Errno, Error, Result};
use crate::mbuf::Mbuf;
use crate::mempool::Mempool;
use crate::sys;

/// RSS hash types rvs asks for (IPv4 addresses and TCP/UDP ports). `RTE_ETH_RSS_*` are
/// function-like macros that bindgen cannot evaluate, so the bits are spelled here (rte_ethdev.h).
pub const RSS_IPV4: u64 = 1 << 2;
pub const RSS_FRAG_IPV4: u64 = 1 << 3;
pub const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
pub const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
pub const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
pub const RSS_WANTED: u64 =
    RSS_IPV4 | RSS_FRAG_IPV4 | RSS_NONFRAG_IPV4_TCP | RSS_NONFRAG_IPV4_UDP | RSS_NONFRAG_IPV4_OTHER;

/// What to configure on a port.
#[derive(Debug, Clone)]
pub struct PortConf {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

/// Capabilities from `rte_eth_dev_info_get`.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rx_offload_capa: u64,
    pub tx_offload_capa: u64,
    pub rss_offloads: u64,
    pub reta_size: u16,
    pub hash_key_size: u8,
    pub min_mtu: u16,
    pub max_mtu: u16,
}

/// Link state from `rte_eth_link_get_nowait`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// Mbit/s; `None` where the PMD does not know (`RTE_ETH_SPEED_NUM_NONE` or `_UNKNOWN`).
    pub speed_mbps: Option<u32>,
    /// Full (true) or half duplex, as the PMD reports it.
    pub full_duplex: bool,
    /// Autonegotiated (true) or fixed.
    pub autoneg: bool,
}

/// `RTE_ETH_SPEED_NUM_UNKNOWN` (UINT32_MAX): the PMD cannot tell the speed.
const SPEED_UNKNOWN: u32 = u32::MAX;

/// Basic counters from `rte_eth_stats_get`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// What every handle to a port shares; a live handle (queue or flow rule) keeps the port from being
/// stopped or closed.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: u16,
    /// Live [`crate::flow::FlowHandle`]s: `rte_flow_flush` would leave them dangling.
    pub(crate) flows: AtomicUsize,
}

/// An ethernet device found by name (a vdev name such as `net_af_packet0` or a PCI address).
#[derive(Debug)]
pub struct Port {
    pub(crate) shared: Arc<Shared>,
    name: String,
    started: bool,
    configured: bool,
}

impl Port {
    /// Finds a probed device by its name.
    pub fn by_name(name: &str) -> Result<Port> {
        let c = CString::new(name)
            .map_err(|_| Error::new("rte_eth_dev_get_port_by_name", Errno::Invalid, "name contains NUL"))?;
        let mut id = 0u16;
        // SAFETY: c is valid for the call, id is a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        check("rte_eth_dev_get_port_by_name", ret)?;
        Ok(Port {
            shared: Arc::new(Shared { id, flows: AtomicUsize::new(0) }),
            name: name.to_owned(),
            started: false,
            configured: false,
        })
    }

    pub fn id(&self) -> u16 {
        self.shared.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn info(&self) -> Result<PortInfo> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out pointer.
        check("rte_eth_dev_info_get", unsafe { sys::rte_eth_dev_info_get(self.id(), &mut info) })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: DPDK guarantees a static NUL-terminated driver name when non-null.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rx_offload_capa: info.rx_offload_capa,
            tx_offload_capa: info.tx_offload_capa,
            rss_offloads: info.flow_type_rss_offloads,
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
        })
    }

    /// Configures queues (RSS when more than one RX queue and the device hashes) and sets them up
    /// on `pool`. Returns one (rx, tx) handle pair per queue index.
    pub fn configure(&mut self, conf: &PortConf, pool: &Mempool) -> Result<Vec<(RxQueue, TxQueue)>> {
        self.configure_pools(conf, &[pool])
    }

    /// As [`Port::configure`], with RX queue `q` filling from `pools[q]` (one pool per worker's
    /// NUMA socket); a single pool serves every queue.
    pub fn configure_pools(
        &mut self,
        conf: &PortConf,
        pools: &[&Mempool],
    ) -> Result<Vec<(RxQueue, TxQueue)>> {
        if pools.is_empty() || (pools.len() != 1 && pools.len() != conf.rx_queues as usize) {
            return Err(Error::new(
                "rte_eth_rx_queue_setup",
                Errno::Invalid,
                format!("{} pools for {} rx queues", pools.len(), conf.rx_queues),
            ));
        }
        if self.started {
            return Err(Error::new("rte_eth_dev_configure", Errno::Busy, "port is started"));
        }
        let info = self.info()?;
        if conf.rx_queues == 0 || conf.rx_queues > info.max_rx_queues {
            return Err(Error::new(
                "rte_eth_dev_configure",
                Errno::Invalid,
                format!("{} rx queues requested, device supports 1..={}", conf.rx_queues, info.max_rx_queues),
            ));
        }
        if conf.tx_queues == 0 || conf.tx_queues > info.max_tx_queues {
            return Err(Error::new(
                "rte_eth_dev_configure",
                Errno::Invalid,
                format!("{} tx queues requested, device supports 1..={}", conf.tx_queues, info.max_tx_queues),
            ));
        }
        let mut eth = sys::rte_eth_conf::default();
        let rss_hf = RSS_WANTED & info.rss_offloads;
        if conf.rx_queues > 1 && rss_hf != 0 {
            eth.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            eth.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        let id = self.id();
        // SAFETY: valid port id and conf pointer; the port is stopped.
        let ret = unsafe { sys::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &eth) };
        check("rte_eth_dev_configure", ret)?;
        if let Some(mtu) = conf.mtu {
            // SAFETY: valid port id.
            check("rte_eth_dev_set_mtu", unsafe { sys::rte_eth_dev_set_mtu(id, mtu) })?;
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..conf.rx_queues {
            let pool = pools[(q as usize).min(pools.len() - 1)];
            // SAFETY: valid port/queue; NULL rx_conf means driver defaults; pool outlives the port's use
            // of it because the daemon stops ports before dropping the pool.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, conf.rx_desc, socket, std::ptr::null(), pool.as_ptr())
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..conf.tx_queues {
            // SAFETY: valid port/queue; NULL tx_conf means driver defaults.
            let ret = unsafe { sys::rte_eth_tx_queue_setup(id, q, conf.tx_desc, socket, std::ptr::null()) };
            check("rte_eth_tx_queue_setup", ret)?;
        }
        if conf.promiscuous {
            // SAFETY: valid port id. Some vdevs report ENOTSUP; they receive everything anyway.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(id) };
            if ret < 0 && Errno::from_raw(ret) != Errno::NotSupported {
                return Err(Error::from_ret("rte_eth_promiscuous_enable", ret));
            }
        }
        self.configured = true;
        let mut queues = Vec::new();
        // A worker owns queue pair q on every port; surplus queues of the larger side stay unused.
        for q in 0..conf.rx_queues.min(conf.tx_queues) {
            queues.push((
                RxQueue { port: self.shared.clone(), queue: q, _not_sync: PhantomData },
                TxQueue { port: self.shared.clone(), queue: q, _not_sync: PhantomData },
            ));
        }
        Ok(queues)
    }

    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid, configured port.
        check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(self.id()) })?;
        self.started = true;
        Ok(())
    }

    /// Stops the port. Refused while any worker still holds one of its queue handles, or any flow
    /// rule is installed (PMDs differ on whether rules survive a stop, so a handle could dangle).
    pub fn stop(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        if Arc::strong_count(&self.shared) > 1 {
            return Err(Error::new(
                "rte_eth_dev_stop",
                Errno::Busy,
                "queue handles or flow rules are still in use",
            ));
        }
        // SAFETY: valid port; no queue handle exists, so no thread is bursting on it.
        check("rte_eth_dev_stop", unsafe { sys::rte_eth_dev_stop(self.id()) })?;
        self.started = false;
        Ok(())
    }

    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        check("rte_eth_macaddr_get", unsafe { sys::rte_eth_macaddr_get(self.id(), &mut addr) })?;
        Ok(addr.addr_bytes)
    }

    /// The link state, without waiting for it to settle.
    pub fn link(&self) -> Result<Link> {
        link_of(self.id())
    }

    pub fn stats(&self) -> Result<PortStats> {
        stats_of(self.id())
    }

    /// The device's MTU (`rte_eth_dev_get_mtu`).
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid port id and out pointer; the call only reads the device's data.
        check("rte_eth_dev_get_mtu", unsafe { sys::rte_eth_dev_get_mtu(self.id(), &mut mtu) })?;
        Ok(mtu)
    }

    /// A handle for reading this port's link state and counters from another thread (the
    /// control thread), for as long as the port exists. See [`PortReader`].
    pub fn reader(&self) -> PortReader {
        PortReader { port: Arc::downgrade(&self.shared) }
    }

    /// Extended statistics as (name, value) pairs.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let id = self.id();
        // SAFETY: NULL/0 asks for the count.
        let n = check("rte_eth_xstats_get_names", unsafe {
            sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0)
        })? as usize;
        let mut names = vec![sys::rte_eth_xstat_name::default(); n];
        let mut vals = vec![sys::rte_eth_xstat::default(); n];
        // SAFETY: arrays hold n elements each.
        let got = check("rte_eth_xstats_get_names", unsafe {
            sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32)
        })? as usize;
        // SAFETY: as above.
        let got2 =
            check("rte_eth_xstats_get", unsafe { sys::rte_eth_xstats_get(id, vals.as_mut_ptr(), n as u32) })?
                as usize;
        let mut out = Vec::with_capacity(got.min(got2));
        for v in vals.iter().take(got.min(got2)) {
            let Some(nm) = names.get(v.id as usize) else { continue };
            // SAFETY: DPDK NUL-terminates names within the fixed array.
            let s = unsafe { CStr::from_ptr(nm.name.as_ptr()) }.to_string_lossy().into_owned();
            out.push((s, v.value));
        }
        Ok(out)
    }
}

fn link_of(id: u16) -> Result<Link> {
    let mut l = sys::rte_eth_link::default();
    // SAFETY: `l` is a valid out pointer for the call; ethdev checks the port id itself and answers
    // -ENODEV for one that is not (or no longer) attached. The call does not wait for the link.
    check("rte_eth_link_get_nowait", unsafe { sys::rte_eth_link_get_nowait(id, &mut l) })?;
    let speed = l.link_speed;
    Ok(Link {
        up: l.link_status() != 0,
        speed_mbps: (speed != 0 && speed != SPEED_UNKNOWN).then_some(speed),
        full_duplex: l.link_duplex() != 0,
        autoneg: l.link_autoneg() != 0,
    })
}

fn stats_of(id: u16) -> Result<PortStats> {
    let mut s = sys::rte_eth_stats::default();
    // SAFETY: `s` is a valid out pointer for the call; ethdev checks the port id itself.
    check("rte_eth_stats_get", unsafe { sys::rte_eth_stats_get(id, &mut s) })?;
    Ok(PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// Reads one port's link state and basic counters from a thread other than the one owning the
/// [`Port`] (rvsd's control thread answering `list_ports`), while workers burst on its queues.
///
/// Why that is sound: `rte_eth_link_get_nowait` and `rte_eth_stats_get` change no configuration
/// and take no queue; PMDs answer them from the link state they keep and from per-queue counters the
/// polling lcores write (or from NIC registers), which is how testpmd's `show port stats` and DPVS's
/// `dpip link show` read ports from the main lcore while forwarding lcores run. Counters read
/// mid-burst may lag by that burst. What is not safe is two such calls on one port at once (some
/// PMDs accumulate register reads into software totals): the methods take `&mut self` and the type
/// is not `Clone`, so one reader shared between threads sits behind a lock, and its owner takes one
/// reader per port and reads through the [`Port`] itself only once that reader's thread is done
/// (rvsd: the final counters after the control thread has joined). The reader holds the port
/// weakly: it never keeps a port from being stopped, and once the port is dropped it answers
/// `ENODEV`.
#[derive(Debug)]
pub struct PortReader {
    port: std::sync::Weak<Shared>,
}

impl PortReader {
    fn id(&self) -> Result<u16> {
        self.port
            .upgrade()
            .map(|s| s.id)
            .ok_or_else(|| Error::new("port reader", Errno::NoDevice, "the port is closed"))
    }

    pub fn link(&mut self) -> Result<Link> {
        link_of(self.id()?)
    }

    pub fn stats(&mut self) -> Result<PortStats> {
        stats_of(self.id()?)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.started && Arc::strong_count(&self.shared) == 1 {
            // SAFETY: no queue handles remain; valid port.
            unsafe { sys::rte_eth_dev_stop(self.id()) };
            self.started = false;
        }
        if !self.started && self.configured {
            // SAFETY: the port is stopped; closing releases the vdev's kernel resources (sockets, rings).
            unsafe { sys::rte_eth_dev_close(self.id()) };
        }
    }
}

/// The receive side of one queue, owned by one worker.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<Shared>,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The transmit side of one queue, owned by one worker.
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<Shared>,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Receives into the spare capacity of `out` (at most `out.capacity() - out.len()`, capped at
    /// u16::MAX). Returns how many arrived. Never allocates.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf>) -> usize {
        let spare = out.spare_capacity_mut();
        let max = spare.len().min(u16::MAX as usize) as u16;
        if max == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is repr(transparent) over NonNull<rte_mbuf>, so spare capacity is a valid
        // rte_mbuf* array of `max` slots; this handle is the queue's only user.
        let n = unsafe {
            sys::rvs_rx_burst(self.port.id, self.queue, spare.as_mut_ptr() as *mut *mut sys::rte_mbuf, max)
        } as usize;
        // SAFETY: the driver wrote `n` valid, non-null mbufs that we now own.
        unsafe { out.set_len(out.len() + n) };
        n
    }
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Sends from the front of `pkts`; what was sent is removed (now owned by the driver), what the
    /// driver refused stays in `pkts` in order. Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let len = pkts.len().min(u16::MAX as usize);
        if len == 0 {
            return 0;
        }
        // SAFETY: Vec<Mbuf> is an rte_mbuf* array (repr(transparent)); this handle is the queue's only user.
        let sent = unsafe {
            sys::rvs_tx_burst(
                self.port.id,
                self.queue,
                pkts.as_mut_ptr() as *mut *mut sys::rte_mbuf,
                len as u16,
            )
        } as usize;
        let total = pkts.len();
        // SAFETY: the first `sent` mbufs now belong to the driver and must not be dropped; shift the
        // rest down over them and shorten the vector without running destructors.
        unsafe {
            let base = pkts.as_mut_ptr();
            std::ptr::copy(base.add(sent), base, total - sent);
            pkts.set_len(total - sent);
        }
        sent
    }
}

/// Creates two ports, `a` and `b`, joined back to back by rings in this process (DPDK's ring PMD,
/// `rte_eth_from_rings`): what one transmits on queue `q`, the other receives on queue `q`. For
/// in-process benchmarks and tests. The ring PMD names them `net_ring_<a>` and `net_ring_<b>`;
/// those names are returned, for [`Port::by_name`]. Each direction gets `queues`
/// single-producer/single-consumer rings of `size` slots, which live as long as the process (the
/// ring PMD does not free rings it was given).
pub fn ring_pair(a: &str, b: &str, queues: u16, size: u32, socket: i32) -> Result<(String, String)> {
    use crate::ring::{RING_F_SC_DEQ, RING_F_SP_ENQ};
    let cname = |n: &str| {
        CString::new(n).map_err(|_| Error::new("rte_eth_from_rings", Errno::Invalid, "name contains NUL"))
    };
    let (ca, cb) = (cname(a)?, cname(b)?);
    let mut ab: Vec<*mut sys::rte_ring> = Vec::new();
    let mut ba: Vec<*mut sys::rte_ring> = Vec::new();
    for q in 0..queues {
        for (v, dir) in [(&mut ab, "ab"), (&mut ba, "ba")] {
            let n = cname(&format!("{a}{dir}{q}"))?;
            // SAFETY: valid name; EAL initialised by the caller (it owns an Eal).
            let r = unsafe { sys::rte_ring_create(n.as_ptr(), size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ) };
            if r.is_null() {
                return Err(Error::last("rte_ring_create"));
            }
            v.push(r);
        }
    }
    for (name, rx, tx) in [(&ca, &ba, &ab), (&cb, &ab, &ba)] {
        // SAFETY: the ring arrays hold `queues` valid rings each and outlive the call; the PMD keeps
        // the ring pointers, and the rings are never freed.
        let ret = unsafe {
            sys::rte_eth_from_rings(
                name.as_ptr(),
                rx.as_ptr(),
                queues as u32,
                tx.as_ptr(),
                queues as u32,
                socket.max(0) as u32,
            )
        };
        if ret < 0 {
            return Err(Error::last("rte_eth_from_rings"));
        }
    }
    Ok((format!("net_ring_{a}"), format!("net_ring_{b}")))
}
