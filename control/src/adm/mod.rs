//! `rvsadm`: ipvsadm's grammar and output, spoken over rvsd's API.
//!
//! Everything here is pure: [`parse_args`] turns a command line into an [`Invocation`], the
//! `format_*` functions turn API values into text exactly as ipvsadm 1.31 prints it, [`parse_rules`]
//! reads `-S` output back for `-R`, and [`execute`] runs an invocation against any [`Transport`]
//! (the binary's is the Unix socket; tests use a fake daemon).
//!
//! Output formats follow ipvsadm.c (`list_all`, `print_title`, `print_service_entry`,
//! `print_largenum`, `list_conn`, `print_conn`); each formatter names the printf format it follows.
//! FULLNAT extensions follow DPVS's tools/ipvsadm (`-b`, `--add-laddr -z`, `-j enable|disable`).
//!
//! One file per concern: `args` (the command line), `format` (ipvsadm's output), `rules`
//! (`-S` text back into services for `-R`), `run` (executing an invocation against rvsd) and `man`
//! (a clap description of the grammar, for the man page only).
mod args;
mod format;
pub mod man;
mod opts;
mod rules;
mod run;
#[cfg(test)]
mod tests;

pub use args::*;
pub use format::*;
pub use rules::*;
pub use run::*;

/// Environment variable naming the daemon's socket (overridden by `--socket`).
pub const SOCKET_ENV: &str = "RVSADM_SOCKET";
/// ipvsadm's `list_all` banner; rvs reports the LVS version its behaviour follows.
pub const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)";
/// ipvsadm's default scheduler (`DEF_SCHED`).
pub const DEFAULT_SCHED: crate::config::Sched = crate::config::defaults::SCHED;
/// `-p` without a value: libipvs.h's `IPVS_SVC_PERSISTENT_TIMEOUT` (6*60), as keepalived's
/// `persistence_timeout` without a value.
pub const DEFAULT_PERSISTENCE: u32 = 360;
/// Largest persistence timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Connections fetched per `list_conns` request.
pub const CONN_PAGE: u64 = 1000;

/// What went wrong, with the exit code the binary uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmError {
    /// Bad command line or rules; nothing was sent. Exit 2, as ipvsadm's `fail(2, ...)`.
    #[error("{0}")]
    Usage(String),
    /// The daemon refused (`ok:false`) or answered something unexpected. Exit 1.
    #[error("{0}")]
    Daemon(String),
    /// Socket or stdin trouble. Exit 1.
    #[error("{0}")]
    Io(String),
    /// What ipvsadm itself would print for a failed command or list (`ipvs_strerror` text, e.g.
    /// `No such service`), printed as it is, with ipvsadm's exit status: 255 for a refused change
    /// (`process_options` returns -1), 1 for a failed list (`exit(1)`).
    #[error("{msg}")]
    Ipvs { msg: String, status: i32 },
    /// stdout was closed (`rvsadm -Lnc | head`): stop quietly.
    #[error("output closed")]
    Closed,
}

impl AdmError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AdmError::Usage(_) => 2,
            AdmError::Daemon(_) | AdmError::Io(_) => 1,
            AdmError::Ipvs { status, .. } => *status,
            AdmError::Closed => 0,
        }
    }
}

fn usage(msg: impl Into<String>) -> AdmError {
    AdmError::Usage(msg.into())
}
