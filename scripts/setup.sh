#!/usr/bin/env bash
# Idempotent machine set-up for rvs on Debian 12: packages, Rust components, hugepages.
# Safe to run repeatedly; says what it did.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (apt, hugepages, namespaces)" >&2
    exit 1
fi

PKGS=(
    # DPDK and the FFI build
    libdpdk-dev dpdk libclang-dev clang pkg-config build-essential
    # dpdk-testpmd, the benchmarks' reference forwarder
    dpdk-dev
    # topology and test peers
    iproute2 ethtool iputils-ping curl python3 nginx-light wrk hping3 socat tcpdump
    nftables procps util-linux
    # the Debian package (scripts/package.sh, scripts/e2e/70-package.sh): dpkg-shlibdeps for its
    # dependencies, man to read its pages
    dpkg-dev man-db
    # scripts/e2e/35-metrics.sh: a real Prometheus server scraping rvsd, and promtool
    prometheus
    # scripts/e2e/88-vrrp.sh: keepalived 2.2 as the VRRP speaker in each gateway's namespace
    keepalived
    # scripts/e2e/86-ecmp.sh: BIRD 2, the BGP speaker of the gateways and of the ECMP router
    bird2
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # nginx-light's package starts a system nginx on :80 in the root namespace; the tests run their own.
    systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
else
    log "packages already installed"
fi
# Only the system service: scripts/test.sh runs this on every run, and other test runs on the same
# machine have nginx peers of their own in their namespaces that must not be killed by name.
systemctl stop nginx >/dev/null 2>&1 || true
# prometheus's package runs a system server on :9090 (and its data under /var/lib/prometheus) in the
# root namespace; the metrics test runs its own inside a namespace. Disabled and stopped through its
# service only (the init script stops by pid file), never by name: other runs' test servers live on.
if dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then
    if ! systemctl disable --now prometheus >/dev/null 2>&1; then
        service prometheus stop >/dev/null 2>&1 || true
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi

# keepalived's package enables a system keepalived in the root namespace; the VRRP test runs its own
# per gateway namespace. Stopped through its service only, never by name.
if dpkg-query -W -f='${Status}' keepalived 2>/dev/null | grep -q 'install ok installed'; then
    if ! systemctl disable --now keepalived >/dev/null 2>&1; then
        service keepalived stop >/dev/null 2>&1 || true
        update-rc.d keepalived disable >/dev/null 2>&1 || true
    fi
fi
# bird2's package runs a system BIRD in the root namespace; the ECMP test runs its own instances
# in namespaces (each with its own socket and pid file), never this one.
if dpkg-query -W -f='${Status}' bird2 2>/dev/null | grep -q 'install ok installed'; then
    systemctl disable --now bird >/dev/null 2>&1 || service bird stop >/dev/null 2>&1 || true
fi

if command -v rustup >/dev/null 2>&1; then
    for c in clippy rustfmt; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
            log "adding rust component $c"
            rustup component add "$c"
        fi
    done
fi

. "$(dirname "$0")/lib/install_cargo_fuzz.sh" && install_cargo_fuzz  # scripts/fuzz.sh

# cargo-deb builds the Debian package (scripts/package.sh); from crates.io, only when missing.
if command -v cargo >/dev/null 2>&1 && ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb (cargo install --locked)"
    cargo install cargo-deb --locked
fi

# Hugepages: 1024 x 2 MiB. Where the kernel refuses, rvsd falls back to --no-huge (see docs/config.md).
want=1024
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
    have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
fi
mkdir -p /dev/hugepages
if ! mountpoint -q /dev/hugepages; then
    mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi
if [ "$have" -gt 0 ] && mountpoint -q /dev/hugepages; then
    log "hugepages: $have x 2MiB reserved, hugetlbfs at /dev/hugepages"
else
    log "hugepages unavailable (have=$have); rvsd will run with --no-huge"
fi
log "done"
