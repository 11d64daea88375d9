//! The control API: request lines as a client sends them over the socket, parsed with
//! `api::parse_request` and applied with `ControlState::change` to a small running configuration.
//!
//! The input is a session of up to 8 lines (lossy UTF-8). Invariants after every line:
//! - no panic;
//! - a refused change leaves the configuration byte for byte as it was (`to_toml`), and so does an
//!   accepted request that reports no change (`Ok(false)`);
//! - after an accepted change the configuration validates, `setup` succeeds, every service and
//!   real server has a non-zero id unique in its scope, ids of things that went away never come
//!   back, and a worker adopts the new setup (`Worker::apply`) without panicking.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rvs_control::api::parse_request;
use rvs_control::state::ControlState;
use rvs_control::Config;
use rvs_dataplane::frame::VecPool;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::worker::Worker;

const BASE: &str = r#"
[workers]
lcores = [1, 2]

[[ports]]
name = "client"
device = "net_ring0"
addr = "198.18.0.1/24"

[[ports]]
name = "server"
device = "net_ring1"
addr = "198.18.1.1/24"

[[routes]]
dst = "0.0.0.0/0"
via = "198.18.0.254"

[conn]
max_per_worker = 64

[[services]]
proto = "tcp"
vip = "198.18.0.100:80"
sched = "rr"
laddrs = ["198.18.1.100"]
reals = [{ addr = "198.18.1.11:80" }, { addr = "198.18.1.12:80", weight = 2 }]

[[services]]
proto = "udp"
vip = "198.18.0.100:53"
sched = "sh"
persistence = 60
laddrs = ["198.18.1.100", "198.18.1.101"]
reals = [{ addr = "198.18.1.11:5353" }]
"#;

const MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]];
const MAX_LINES: usize = 8;

fn base() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let c = Config::from_toml(BASE).expect("base config parses");
        c.validate().expect("base config validates");
        c
    })
}

/// What an id names: a service (proto, VIP:port) or a real server (service id, RS:port).
type Identity = (u32, String);

fn ids(setup: &rvs_dataplane::setup::Setup) -> HashMap<u32, Identity> {
    let mut seen = HashMap::new();
    for s in &setup.services {
        assert_ne!(s.id, 0, "service {:?} {}:{} has no id", s.proto, s.vip, s.vport);
        let who = (0, format!("{:?} {}:{}", s.proto, s.vip, s.vport));
        assert!(seen.insert(s.id, who).is_none(), "service id {} used twice", s.id);
        let mut reals = HashSet::new();
        for r in &s.reals {
            assert_ne!(r.id, 0, "real {}:{} has no id", r.addr, r.port);
            assert!(reals.insert(r.id), "real id {} used twice in service {}", r.id, s.id);
            let who = (s.id, format!("{}:{}", r.addr, r.port));
            assert!(seen.insert(r.id, who).is_none(), "real id {} is also another id", r.id);
        }
    }
    seen
}

fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut state = ControlState::new(base().clone());
    let setup = state.setup(&MACS).expect("setup of the base config");
    let mut live = ids(&setup);
    let mut retired: HashSet<u32> = HashSet::new();
    let mut worker = Worker::new(&setup, 0, VecPool::default(), Arc::new(Stats::default()));
    for line in text.lines().take(MAX_LINES) {
        let Ok(req) = parse_request(line) else { continue };
        let before = state.config().to_toml();
        match state.change(&req) {
            Ok(true) => {
                if let Err(e) = state.config().validate() {
                    panic!("{req:?} was accepted but the config does not validate: {e}");
                }
                let setup = match state.setup(&MACS) {
                    Ok(s) => s,
                    Err(e) => panic!("{req:?} was accepted but has no dataplane setup: {e}"),
                };
                let now = ids(&setup);
                for (id, who) in &now {
                    assert!(!retired.contains(id), "id {id} came back for {who:?}");
                    if let Some(old) = live.get(id) {
                        assert_eq!(old, who, "id {id} changed what it names");
                    }
                }
                retired.extend(live.keys().filter(|id| !now.contains_key(id)));
                live = now;
                worker.apply(&setup);
            }
            Ok(false) => assert_eq!(state.config().to_toml(), before, "{req:?} changed the config"),
            Err(_) => assert_eq!(state.config().to_toml(), before, "refused {req:?} changed the config"),
        }
    }
}

fuzz_target!(|data: &[u8]| run(data));
