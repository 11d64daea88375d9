//! Raw DPDK 22.11 bindings plus the small safe layer rvs builds on.
//!
//! `sys` is bindgen's output over the system headers and the C shim (`shim/`), which exports DPDK's
//! static-inline functions. Everything else wraps `sys` so that the daemon never writes `unsafe`.
//! This crate is the only place raw DPDK is touched; every `unsafe` block states why it is sound.
pub mod sys {
    #![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code, improper_ctypes)]
    #![allow(unsafe_op_in_unsafe_fn, unnecessary_transmutes, clippy::missing_safety_doc)]
    #![allow(clippy::all, clippy::undocumented_unsafe_blocks)]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod alloc;
pub mod eal;
pub mod error;
pub mod flow;
pub mod frame;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod ring;

pub use eal::Eal;
pub use error::{Errno, Error, Result};
pub use flow::{steering_supported, FlowHandle, RteRule, RuleAddr};
pub use frame::PktPool;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{ring_pair, Link, Port, PortConf, PortInfo, PortReader, PortStats, RxQueue, TxQueue};
pub use ring::{ring_spsc, RingRx, RingTx};
