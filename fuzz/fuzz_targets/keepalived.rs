//! keepalived.conf: `keepalived::from_str` on any text. Never a panic; an error is one line with a
//! line number inside the text; services it makes, put in a config, either fail validation with a
//! field or validate, round-trip through TOML and build a dataplane setup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_control::keepalived;
use rvs_control::setup::dataplane_setup;
use rvs_control::Config;

const BASE: &str = "[[ports]]\nname = \"c\"\ndevice = \"net_null0\"\naddr = \"198.18.0.1/24\"\n\
                    [[ports]]\nname = \"s\"\ndevice = \"net_null1\"\naddr = \"198.18.1.1/24\"\n";

fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let k = match keepalived::from_str(&text, "k.conf") {
        Ok(k) => k,
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "error on several lines: {s:?}");
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "line {} outside the text: {s}", e.line);
            return;
        }
    };
    let mut cfg = Config::from_toml(BASE).expect("base config");
    cfg.services = k.services;
    if cfg.validate().is_err() {
        return;
    }
    let saved = cfg.to_toml();
    match Config::from_toml(&saved) {
        Ok(again) => assert_eq!(again, cfg, "to_toml then from_toml changed the config:\n{saved}"),
        Err(e) => panic!("to_toml output does not parse: {e}\n{saved}"),
    }
    if let Err(e) = dataplane_setup(&cfg, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]]) {
        panic!("validated keepalived services have no dataplane setup: {e}");
    }
}

fuzz_target!(|data: &[u8]| run(data));
