//! rvsd's command line, in the library so that the man page generator (`src/bin/rvs-mangen.rs`)
//! renders the very parser the daemon runs.
use std::path::PathBuf;

use clap::Parser;

/// The man page's sections after OPTIONS (rendered by rvs-mangen); `rvsd --help` ends with them.
pub const MAN_SECTIONS: &[(&str, &str)] = &[
    (
        "SIGNALS",
        "SIGTERM drains gracefully: new connections are refused (a TCP SYN gets a RST) while \
         established ones keep being forwarded until none is left or conn.drain_grace_s (default \
         30 s) has passed; then rvsd exits with status 0. SIGINT stops at once, also during a drain. \
         systemctl stop rvsd sends SIGTERM.",
    ),
    (
        "FILES",
        "/etc/rvs/rvsd.toml: the configuration rvsd.service runs (a conffile of the rvs package). \
         /run/rvs/rvsd.sock: the API socket rvsadm(8) talks to (control.socket).",
    ),
    ("SEE ALSO", "rvsadm(8), systemctl(1); /usr/share/doc/rvs/operations.md and config.md."),
];

fn after_long_help() -> String {
    MAN_SECTIONS.iter().map(|(title, text)| format!("{title}\n  {text}")).collect::<Vec<_>>().join("\n\n")
}

#[derive(Parser, Debug)]
#[command(
    name = "rvsd",
    version,
    about = "rvs: DPDK poll-mode FULLNAT layer-4 load balancer",
    long_about = "rvsd, the rvs daemon: a DPDK poll-mode userspace FULLNAT layer-4 load balancer \
                  (LVS/IPVS rebuilt in userspace). It reads one TOML configuration file, runs one \
                  poll-mode worker per configured lcore and serves its API on a Unix socket, which \
                  rvsadm(8) speaks.",
    after_long_help = after_long_help()
)]
pub struct Cli {
    /// TOML configuration file (see docs/config.md).
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Check the configuration (syntax, values, this machine) and exit.
    #[arg(long)]
    pub check: bool,
    /// Take the services from this keepalived.conf (overrides the TOML's `keepalived` key).
    #[arg(long, value_name = "FILE")]
    pub keepalived: Option<PathBuf>,
    /// Override the API socket path.
    #[arg(long)]
    pub socket: Option<String>,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true)]
    pub eal: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["rvsd", "--check", "-c", "/etc/rvs/rvsd.toml", "--", "-v"]).unwrap();
        assert!(c.check);
        assert_eq!(c.config, PathBuf::from("/etc/rvs/rvsd.toml"));
        assert_eq!(c.eal, vec!["-v".to_owned()]);
    }
}
