#!/usr/bin/env bash
# Asks this machine's DPDK vdevs whether they can steer replies with rte_flow (see
# ffi/examples/flow_probe.rs), inside a throwaway namespace: net_null, net_ring, net_memif (socket in
# a temp dir), net_af_packet on a veth (two queue pairs, 198.18.254.0/30, nothing sent) and net_tap.
# Prints what each port answered. Everything created is removed on exit, also on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ID=$(( $$ % 100000 ))
NS="rvs${ID}flow"
TMP=$(mktemp -d "/tmp/rvs-flow-${ID}.XXXX")
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --manifest-path "$ROOT/Cargo.toml" -p dpdk-sys --example flow_probe >&2
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add fp0 numtxqueues 2 numrxqueues 2 type veth peer name fp1 numtxqueues 2 numrxqueues 2
ip -n "$NS" addr add 198.18.254.1/30 dev fp0
ip -n "$NS" addr add 198.18.254.2/30 dev fp1
ip -n "$NS" link set fp0 up
ip -n "$NS" link set fp1 up
timeout 120 ip netns exec "$NS" "$ROOT/target/release/examples/flow_probe" \
    net_null0 net_ring0 "net_memif0,role=server,socket=$TMP/memif.sock" \
    "net_af_packet0,iface=fp0,qpairs=2" "net_tap0,iface=rvstap${ID}"
