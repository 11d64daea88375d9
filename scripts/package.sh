#!/usr/bin/env bash
# Builds the Debian package rvs_<version>-1_<arch>.deb (rvsd, rvsadm, rvsd.service, the example
# /etc/rvs/rvsd.toml, man pages, docs) and prints its path on the last line. Needs cargo-deb
# (scripts/setup.sh installs it). See docs/operations.md.
#
#   1. a release build of rvsd and rvs-control (rvsadm is rvs-control's binary, so `cargo deb`'s
#      own build of the rvsd package would not build it);
#   2. the man pages rvsd.8 and rvsadm.8, written by rvs-mangen from their clap commands;
#   3. `cargo deb -p rvsd --no-build --strip`, with the assets of [package.metadata.deb] in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package: cargo-deb is missing; run scripts/setup.sh (or cargo install cargo-deb --locked)" >&2
    exit 1
fi
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p rvsd -p rvs-control
# The man pages' asset paths are target/man/ under the workspace, whatever the target directory.
"$target/release/rvs-mangen" target/man >/dev/null
# --strip: the release profile keeps line tables (debug = 1) for backtraces and perf; the package
# ships stripped binaries.
deb=$(cargo deb -p rvsd --no-build --strip --quiet)
[ -f "$deb" ] || { echo "package: cargo deb did not report a package file ($deb)" >&2; exit 1; }
echo "$deb"
