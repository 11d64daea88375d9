//! Connection sync (IPVS sync protocol v1): the wire codec, and the mapping between its entries
//! and the dataplane's synced connections. The daemon's sender and receiver threads live in
//! `src/sync.rs`; docs/ha.md "Connection sync" describes the whole.
pub mod iface;
pub mod record;
pub mod wire;
