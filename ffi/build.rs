//! Generates DPDK bindings with bindgen and builds the C shim for DPDK's static-inline functions.
//! Flags come from `pkg-config libdpdk`: `-include rte_config.h` and `-march` decide struct layouts and
//! which inline paths are compiled, so bindgen and the shim must see exactly what DPDK was built with.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .expect("pkg-config not found: run scripts/setup.sh");
    if !out.status.success() {
        panic!(
            "pkg-config {:?} libdpdk failed ({}): install libdpdk-dev (scripts/setup.sh)",
            args,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).expect("pkg-config output").split_whitespace().map(str::to_owned).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let cflags = pkg_config(&["--cflags"]);

    let mut shim = cc::Build::new();
    shim.file("shim/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        shim.flag(f);
    }
    shim.compile("rvs_shim");

    for lib in pkg_config(&["--libs"]) {
        if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={name}");
        } else if lib.starts_with("-Wl,") {
            println!("cargo:rustc-link-arg={lib}");
        }
    }

    // The ring PMD is a plugin for the EAL, but `rte_eth_from_rings` (in-process port pairs) is
    // called directly. The dynamic loader maps the plugin once, whichever path names it.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");

    let bindings = bindgen::Builder::default()
        .header("shim/wrapper.h")
        .clang_args(cflags.iter())
        .allowlist_function("rte_.*|rvs_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // Packed-and-aligned structs that Rust cannot express; nothing here reads them field by field.
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_flow_item_l2tpv2")
        .opaque_type("rte_flow_item_gtp_psc")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings.write_to_file(out.join("bindings.rs")).expect("write bindings");
}
