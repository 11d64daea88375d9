//! rvsd's poll-mode worker loop as a library: the daemon runs it on its worker lcores, and the
//! traffic generator's in-process mode (`rvs-gen --inproc-gateway`) runs the very same loop.
//! `cli` is rvsd's command line (also rendered as its man page).
pub mod capture;
pub mod cli;
pub mod sync;
pub mod worker;
