//! A clap description of rvsadm's command line, for its man page only.
//!
//! rvsadm parses ipvsadm's grammar by hand (`args`: popt-style optional values, commands as
//! options, `--set`'s three bare words), which clap cannot express exactly; this [`command`] says
//! the same options to `clap_mangen` (`rvs-mangen`, run by `scripts/package.sh`). A unit test
//! keeps it in step with the parser's table: every option the parser knows is here, with the same
//! short letter and the same kind of value, and nothing else is.
use clap::{Arg, ArgAction, Command};

use super::{DEFAULT_PERSISTENCE, DEFAULT_SCHED, SOCKET_ENV};
use crate::config::{defaults, Sched, MAX_WEIGHT};

const COMMANDS: &str = "Commands";
const OPTIONS: &str = "Options";
const UNSUPPORTED: &str = "ipvsadm options rvs refuses";

/// The SYNOPSIS lines of the man page, ipvsadm's command forms (as `rvsadm --help`).
pub const SYNOPSIS: &[&str] = &[
    "rvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-j enable|disable] [--toa on|off] [--proxy-protocol v1|v2|off] [--inhibit-on-failure]",
    "rvsadm -D -t|u service-address",
    "rvsadm -C",
    "rvsadm -R",
    "rvsadm -S [-n]",
    "rvsadm -a|e -t|u service-address -r server-address [options]",
    "rvsadm -d -t|u service-address -r server-address",
    "rvsadm -P|Q -t|u service-address -z local-address",
    "rvsadm -G [-t|u service-address]",
    "rvsadm -L|l [options]",
    "rvsadm [-L] --ports",
    "rvsadm --set tcp tcpfin udp",
    "rvsadm -Z [-t|u service-address]",
    "rvsadm --capture-start port [--direction rx|tx|both] [--host address] [--cport port] [--proto tcp|udp] [--count packets] [--max-bytes bytes] [--snaplen bytes] --file path",
    "rvsadm --capture-stop | --capture-status",
    "rvsadm -h",
];

/// The man page's sections after OPTIONS.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "DIFFERENCES FROM IPVSADM",
        "The default forwarding method is fullnat (-b, DPVS's), not gatewaying (-g); -m, -g and -i \
         forward as in LVS, and rvsd refuses what a method cannot do: -g to a real server on none of \
         its networks, -j enable with -g or -i real servers (their replies bypass rvs), --toa on with \
         any but -b. -E replaces the whole service as ipvsadm does (no -s: wlc, no -p: not \
         persistent, no -j/--toa: off); -e the whole real server (no -w: weight 1, no -m/-g/-i: -b). \
         Output is always numeric; no fwmark, netmask or one-packet options.",
    ),
    (
        "EXIT STATUS",
        "0 on success; 2 for a bad command line or bad -R input (nothing is sent); 255 when rvsd \
         refuses a change and 1 when a list fails (ipvsadm's statuses, with ipvs_strerror's texts \
         such as \"No such service\"); 1 when rvsd cannot be reached.",
    ),
    (
        "ENVIRONMENT",
        "RVSADM_SOCKET names rvsd's API socket (--socket overrides it; default /run/rvs/rvsd.sock).",
    ),
    ("SEE ALSO", "rvsd(8), ipvsadm(8); /usr/share/doc/rvs/operations.md and api.md."),
];

/// A command or switch: no value.
fn flag(long: &'static str, short: Option<char>, heading: &'static str, help: &'static str) -> Arg {
    let a = Arg::new(long).long(long).num_args(0).action(ArgAction::SetTrue).help(help).help_heading(heading);
    match short {
        Some(c) => a.short(c),
        None => a,
    }
}

/// An option with one value.
fn value(long: &'static str, short: Option<char>, name: &'static str, help: impl Into<String>) -> Arg {
    let a = Arg::new(long)
        .long(long)
        .value_name(name)
        .num_args(1)
        .action(ArgAction::Set)
        .help(help.into())
        .help_heading(OPTIONS);
    match short {
        Some(c) => a.short(c),
        None => a,
    }
}

/// rvsadm's command line as a clap [`Command`], for the man page (`rvs-mangen`).
pub fn command() -> Command {
    let unsupported = |long: &'static str, short: Option<char>, name: Option<&'static str>| {
        let a = match name {
            Some(n) => value(long, short, n, "refused: not supported by rvs"),
            None => flag(long, short, UNSUPPORTED, "refused: not supported by rvs"),
        };
        a.help_heading(UNSUPPORTED)
    };
    Command::new("rvsadm")
        .version(env!("CARGO_PKG_VERSION"))
        .about("ipvsadm for rvs: administer the rvs (DPDK L4) load balancer")
        .long_about(
            "rvsadm administers the virtual services of a running rvsd(8) over its Unix-socket API, \
             with ipvsadm 1.31's grammar, output, error texts and exit statuses, plus DPVS's FULLNAT \
             options (-b, --add-laddr/--del-laddr/--get-laddr -z, -j) and keepalived's \
             --inhibit-on-failure. With no command it lists the table (as -Ln). Either long or short \
             options are allowed; short options may be grouped (-Ln).",
        )
        .override_usage(SYNOPSIS.join("\n"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args([
            flag("add-service", Some('A'), COMMANDS, "add virtual service with options"),
            flag("edit-service", Some('E'), COMMANDS, "edit virtual service with options"),
            flag("delete-service", Some('D'), COMMANDS, "delete virtual service"),
            flag("clear", Some('C'), COMMANDS, "clear the whole table"),
            flag("restore", Some('R'), COMMANDS, "restore rules from stdin (atomically, as one request)"),
            flag("save", Some('S'), COMMANDS, "save rules to stdout"),
            flag("add-server", Some('a'), COMMANDS, "add real server with options"),
            flag("edit-server", Some('e'), COMMANDS, "edit real server with options"),
            flag("delete-server", Some('d'), COMMANDS, "delete real server"),
            flag("add-laddr", Some('P'), COMMANDS, "add local address (FULLNAT, DPVS)"),
            flag("del-laddr", Some('Q'), COMMANDS, "del local address (FULLNAT, DPVS)"),
            flag("get-laddr", Some('G'), COMMANDS, "get local address (FULLNAT, DPVS)"),
            flag("list", Some('L'), COMMANDS, "list the table (-l is the same)").visible_short_alias('l'),
            flag("zero", Some('Z'), COMMANDS, "zero counters in a service or all services"),
            flag(
                "set",
                None,
                COMMANDS,
                "set connection timeout values tcp tcpfin udp, in seconds (0 keeps one)",
            ),
            value("start-daemon", None, "state", "start connection sync daemon (master or backup)")
                .help_heading(COMMANDS),
            value("stop-daemon", None, "state", "stop connection sync daemon").help_heading(COMMANDS),
            flag("help", Some('h'), COMMANDS, "display the help message"),
            flag("version", Some('v'), COMMANDS, "display the version"),
            value("tcp-service", Some('t'), "service-address", "service-address is IPv4:port or [IPv6]:port"),
            value("udp-service", Some('u'), "service-address", "service-address is IPv4:port or [IPv6]:port"),
            value(
                "scheduler",
                Some('s'),
                "scheduler",
                format!("one of {}; the default scheduler is {DEFAULT_SCHED}", Sched::names(", ")),
            ),
            value(
                "persistent",
                Some('p'),
                "timeout",
                format!("persistent service (default timeout {DEFAULT_PERSISTENCE} s)"),
            )
            .num_args(0..=1),
            flag(
                "inhibit-on-failure",
                None,
                OPTIONS,
                "a real server whose health check fails stays at weight 0 instead of leaving the table \
                 (keepalived's option)",
            ),
            value(
                "real-server",
                Some('r'),
                "server-address",
                "IPv4[:port], IPv6 or [IPv6]:port (default port: the service's); IPv4 ones for an IPv6 \
                 service are NAT64 (-b only)",
            ),
            flag("fullnat", Some('b'), OPTIONS, "fullnat (DPVS's; the default)"),
            flag(
                "gatewaying",
                Some('g'),
                OPTIONS,
                "gatewaying (direct routing); the real server's port is the service's",
            ),
            flag(
                "ipip",
                Some('i'),
                OPTIONS,
                "ipip encapsulation (tunneling); the real server's port is the service's",
            ),
            flag("masquerading", Some('m'), OPTIONS, "masquerading (NAT)"),
            value(
                "weight",
                Some('w'),
                "weight",
                format!("capacity of real server (0..={MAX_WEIGHT}, default 1)"),
            ),
            value("u-threshold", Some('x'), "uthreshold", "upper threshold of connections"),
            value("l-threshold", Some('y'), "lthreshold", "lower threshold of connections"),
            value("laddr", Some('z'), "local-address", "FULLNAT local (source) address, IPv4 or IPv6"),
            value("ifname", Some('F'), "ifname", "accepted for DPVS compatibility and ignored"),
            value("synproxy", Some('j'), "enable|disable", "TCP SYN proxy"),
            value("toa", None, "on|off", "insert the client address as a TCP option (TOA)"),
            value("proxy-protocol", None, "v1|v2|off", "send the client address in a PROXY protocol header"),
            flag("connection", Some('c'), OPTIONS, "output of current connections"),
            flag("show-lip", None, OPTIONS, "with -c: also print the local address:port"),
            flag("stats", None, OPTIONS, "output of statistics information"),
            flag("rate", None, OPTIONS, "output of rate information"),
            flag("thresholds", None, OPTIONS, "output of thresholds information"),
            flag("timeout", None, OPTIONS, "output of timeout (tcp tcpfin udp)"),
            flag("daemon", None, OPTIONS, "output of daemon information"),
            flag("persistent-conn", None, OPTIONS, "output of persistent connection info"),
            flag("exact", Some('X'), OPTIONS, "expand numbers (display exact values)"),
            flag("nosort", None, OPTIONS, "disable sorting output of service/server entries"),
            flag("sort", None, OPTIONS, "sort output (the default; accepted for ipvsadm compatibility)"),
            flag(
                "ports",
                None,
                OPTIONS,
                "list rvsd's ports as DPVS's dpip link show: device, driver, MAC, address, MTU, link \
                 state, queues and NIC counters (the MACs a traffic generator sends to)",
            ),
            flag("numeric", Some('n'), OPTIONS, "numeric output (rvsadm always prints numerically)"),
            value(
                "socket",
                None,
                "path",
                format!("rvsd's API socket (default ${SOCKET_ENV}, else {})", defaults::SOCKET),
            ),
            value(
                "capture-start",
                None,
                "port",
                "capture what the named port receives or sends into a pcap file (rvs)",
            )
            .help_heading(COMMANDS),
            flag("capture-stop", None, COMMANDS, "stop the running packet capture (rvs)"),
            flag("capture-status", None, COMMANDS, "print the running or last capture's counts (rvs)"),
            value("direction", None, "rx|tx|both", "capture: frames received, sent, or both (default both)"),
            value("host", None, "address", "capture: only frames from or to this IPv4 address"),
            value("cport", None, "port", "capture: only TCP/UDP frames from or to this port"),
            value("proto", None, "tcp|udp", "capture: only this protocol"),
            value("count", None, "packets", "capture: stop after this many packets (default 1000)"),
            value("max-bytes", None, "bytes", "capture: stop at this many captured bytes (default 64 MiB)"),
            value("snaplen", None, "bytes", "capture: bytes kept of each frame (34 to 2048, default 2048)"),
            value("file", None, "path", "capture: the pcap file rvsd writes (tcpdump -r reads it)"),
            value("mcast-interface", None, "interface", "multicast interface for connection sync")
                .help_heading(OPTIONS),
            value("syncid", None, "sid", "syncid for connection sync (default: [sync] syncid, 0)")
                .help_heading(OPTIONS),
            unsupported("fwmark-service", Some('f'), Some("fwmark")),
            unsupported("icmp-service", Some('q'), Some("service-address")),
            unsupported("netmask", Some('M'), Some("netmask")),
            unsupported("ops", Some('o'), None),
            unsupported("ipv6", Some('6'), None),
        ])
}

#[cfg(test)]
mod tests {
    use super::super::args::{ArgKind, SPECS};
    use super::*;

    #[test]
    fn the_clap_command_is_well_formed() {
        command().debug_assert();
        let env = SECTIONS.iter().find(|(t, _)| *t == "ENVIRONMENT").expect("an ENVIRONMENT section");
        assert!(env.1.contains(SOCKET_ENV) && env.1.contains(defaults::SOCKET), "{env:?}");
        assert!(SYNOPSIS.iter().all(|l| l.starts_with("rvsadm ")));
    }

    /// Every option the hand-written parser knows is in the man page's command, with its short
    /// letter and its kind of value; the command has nothing the parser does not know.
    #[test]
    fn the_man_page_command_follows_the_parser() {
        let cmd = command();
        for s in SPECS {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(s.long))
                .unwrap_or_else(|| panic!("--{} is parsed but missing from the man page command", s.long));
            if let Some(c) = s.short {
                let shorts: Vec<char> = arg
                    .get_short()
                    .into_iter()
                    .chain(arg.get_visible_short_aliases().unwrap_or_default())
                    .collect();
                assert!(
                    shorts.contains(&c),
                    "-{c} (--{}) missing from the man page command: {shorts:?}",
                    s.long
                );
            }
            let range = arg.get_num_args().expect("num_args set by the builders");
            let kind = match (range.min_values(), range.max_values()) {
                (0, 0) => ArgKind::None,
                (0, 1) => ArgKind::Optional,
                (1, 1) => ArgKind::Required,
                other => panic!("--{}: unexpected number of values {other:?}", s.long),
            };
            // --set is a command whose three words are bare arguments, not the option's value.
            assert_eq!(kind, s.arg, "--{}: the man page and the parser disagree on its value", s.long);
        }
        for a in cmd.get_arguments() {
            let long = a.get_long().expect("every rvsadm option has a long name");
            assert!(
                SPECS.iter().any(|s| s.long == long),
                "--{long} is in the man page but the parser does not know it"
            );
            for c in a.get_short().into_iter().chain(a.get_visible_short_aliases().unwrap_or_default()) {
                assert!(
                    SPECS.iter().any(|s| s.long == long && s.short == Some(c)),
                    "-{c} (--{long}) is in the man page but the parser does not know it"
                );
            }
        }
    }
}
