//! rvs control plane: the typed configuration, API types, the socket server and `rvsadm`.
//!
//! The control logic is a library; the daemon's socket server is a thin shell around it.
pub mod adm;
pub mod adopt;
pub mod announce;
pub mod api;
pub mod capture;
pub mod config;
pub mod health;
pub mod keepalived;
pub mod metrics;
pub mod metrics_http;
pub mod quorum;
pub mod server;
pub mod setup;
pub mod state;
pub mod sync;

pub use config::{CheckKind, Config, ConfigError, Forward, Proto, ProxyProtocol, Sched};
