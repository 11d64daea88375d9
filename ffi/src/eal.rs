//! EAL initialisation, lcores and the TSC.
//!
//! Invariant: at most one [`Eal`] exists per process (DPDK cannot initialise twice); dropping it runs
//! `rte_eal_cleanup`, so everything else (ports, pools) must be dropped before it.
use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{check, Errno, Error, Result};
use crate::sys;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// `rte_eal_init` with `args` (args[0] is the program name).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::new("rte_eal_init", Errno::Already, "the EAL is already initialised"));
        }
        let mut owned = Vec::with_capacity(args.len());
        for a in args {
            let c = CString::new(a.as_ref())
                .map_err(|_| Error::new("rte_eal_init", Errno::Invalid, "EAL argument contains NUL"))?;
            owned.push(c);
        }
        // The EAL keeps pointers into argv (and may permute it), so argv and its strings live for the
        // rest of the process: leaking them once is the documented contract.
        let argv: &'static mut [*mut std::ffi::c_char] =
            Vec::leak(owned.into_iter().map(CString::into_raw).collect::<Vec<_>>());
        let argc = argv.len() as c_int;
        // SAFETY: argv holds `argc` valid NUL-terminated strings that live forever (leaked above);
        // INITIALISED guarantees this is the only call.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(Error::last("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// Probes a device after start-up (`rte_dev_probe`), e.g. `net_af_packet0,iface=veth0`.
    pub fn probe_device(&self, devargs: &str) -> Result<()> {
        let c = CString::new(devargs)
            .map_err(|_| Error::new("rte_dev_probe", Errno::Invalid, "device arguments contain NUL"))?;
        // SAFETY: c is a valid C string for the duration of the call; the EAL is initialised.
        check("rte_dev_probe", unsafe { sys::rte_dev_probe(c.as_ptr()) })?;
        Ok(())
    }

    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised.
        unsafe { sys::rte_get_main_lcore() }
    }

    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised.
        unsafe { sys::rte_lcore_count() }
    }

    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        // SAFETY: any lcore id is accepted (out of range returns 0).
        unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // SAFETY: any lcore id is accepted.
        unsafe { sys::rte_lcore_to_socket_id(lcore) }
    }

    /// Runs `f` on worker lcore `lcore` (not the main lcore). Wait for it with [`Eal::wait`].
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<()>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        if !self.lcore_enabled(lcore) || lcore == self.main_lcore() {
            return Err(Error::new(
                "rte_eal_remote_launch",
                Errno::Invalid,
                format!("lcore {lcore} is not an enabled worker lcore"),
            ));
        }
        let boxed: Box<Box<dyn FnOnce() -> i32 + Send>> = Box::new(Box::new(f));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `trampoline` takes ownership of `arg` exactly once; on failure we reclaim it below.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so the trampoline never ran and `arg` is still ours.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) });
            return Err(Error::from_ret("rte_eal_remote_launch", ret));
        }
        Ok(())
    }

    /// Waits for the function launched on `lcore` and returns its result.
    pub fn wait(&self, lcore: u32) -> i32 {
        // SAFETY: the EAL is initialised; waiting on an idle lcore returns at once.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in `launch` and is consumed here exactly once.
    let f = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) };
    // A panic must not unwind into C; the daemon is built with panic=abort, and in tests we catch it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1)
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised by this value; all lcores have been waited for by the owner.
        unsafe { sys::rte_eal_cleanup() };
        INITIALISED.store(false, Ordering::SeqCst);
    }
}

/// The current lcore id (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local; no preconditions.
    unsafe { sys::rvs_lcore_id() }
}

/// The current thread's NUMA socket.
pub fn socket_id() -> u32 {
    // SAFETY: reads a thread-local; no preconditions.
    unsafe { sys::rvs_socket_id() }
}

/// The TSC, read inline through the shim (one call per burst, not per packet).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { sys::rvs_rdtsc() }
}

/// TSC ticks per second, as measured by the EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: valid after EAL init; returns 0 before.
    unsafe { sys::rte_get_tsc_hz() }
}

/// CPU pause hint for idle polling.
#[inline]
pub fn pause() {
    // SAFETY: no preconditions.
    unsafe { sys::rvs_pause() }
}
