//! rvs benchmarks: the traffic generator's logic ([`gen`]) and shared helpers for the benchmark
//! binaries. The DPDK driver lives in `src/bin/rvs_gen.rs`; see docs/benchmarking.md.
pub mod gen;
