//! rvs dataplane: the packet logic of the gateway, as pure deterministic Rust.
//!
//! Invariants:
//! - No NIC-library types and no raw-pointer code (`deny(unsafe_code)`): everything here builds,
//!   tests, fuzzes and benches on any host.
//! - No allocation on the per-packet path: tables and queues are sized at construction.
//! - Time is an input (`now` in the calls, see [`flow::Millis`]), never read from the clock here.
#![deny(unsafe_code)]

pub mod admin;
pub mod admin6;
pub mod admin_persist;
pub mod arp;
pub mod conn;
pub mod flow;
pub mod frag;
pub mod frame;
pub mod handoff;
pub mod icmp;
pub mod ip4;
pub mod ip6;
pub mod l2;
pub mod mtu;
pub mod nd;
pub mod neigh;
pub mod outbox;
pub mod output;
pub mod output6;
pub mod packet;
pub mod pipeline;
pub mod proto;
pub mod route;
pub mod sched;
pub mod service;
pub mod setup;
pub mod stats;
pub mod steer;
pub mod synproxy;
pub mod wire;
pub mod worker;
#[cfg(test)]
mod worker_tests;
pub mod xmit;
