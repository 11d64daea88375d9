//! The config file: `Config::from_toml` on any text. For a config that parses and validates:
//! `dataplane_setup` and the control state's setup succeed, `to_toml` round-trips to an equal
//! config, and workers build from the setup (with table sizes scaled down so the harness does not
//! allocate what the daemon would; everything else as configured).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rvs_control::setup::dataplane_setup;
use rvs_control::state::ControlState;
use rvs_control::Config;
use rvs_dataplane::frame::VecPool;
use rvs_dataplane::stats::Stats;
use rvs_dataplane::worker::Worker;

fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = Config::from_toml(&text) else { return };
    if cfg.validate().is_err() {
        return;
    }
    let saved = cfg.to_toml();
    match Config::from_toml(&saved) {
        Ok(again) => assert_eq!(again, cfg, "to_toml then from_toml changed the config:\n{saved}"),
        Err(e) => panic!("to_toml output does not parse: {e}\n{saved}"),
    }
    let macs: Vec<[u8; 6]> = (0..cfg.ports.len()).map(|i| [2, 0, 0, 0, i as u8, 1]).collect();
    if let Err(e) = dataplane_setup(&cfg, &macs) {
        panic!("a validated config has no dataplane setup: {e}");
    }
    let state = ControlState::new(cfg);
    let mut setup = match state.setup(&macs) {
        Ok(s) => s,
        Err(e) => panic!("a validated config has no control-state setup: {e}"),
    };
    let c = &mut setup.conn;
    c.max_per_worker = c.max_per_worker.min(256);
    c.persist_templates = c.persist_templates.min(256);
    c.arp_queue = c.arp_queue.min(8);
    c.max_neighbours = c.max_neighbours.min(64);
    for index in 0..setup.workers.min(4) {
        let mut w = Worker::new(&setup, index, VecPool::default(), Arc::new(Stats::default()));
        w.apply(&setup);
    }
}

fuzz_target!(|data: &[u8]| run(data));
