# shellcheck shell=bash
# install_cargo_fuzz: makes `cargo fuzz` available, installing cargo-fuzz from crates.io only when it
# is missing. Idempotent; sourced by scripts/setup.sh and scripts/fuzz.sh.
#
# cargo-fuzz needs no nightly toolchain here: scripts/fuzz.sh runs it on stable with RUSTC_BOOTSTRAP=1
# (for the -Z flags it passes) and `--sanitizer none` (rvs has no unsafe code for ASan to watch).
install_cargo_fuzz() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "install_cargo_fuzz: cargo not found; install Rust first" >&2
        return 1
    fi
    if cargo fuzz --version >/dev/null 2>&1; then
        return 0
    fi
    echo "install_cargo_fuzz: installing cargo-fuzz (cargo install --locked)" >&2
    cargo install cargo-fuzz --locked
}
