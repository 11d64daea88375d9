# shellcheck shell=bash
# Throwaway namespace topology for rvs demos and end-to-end tests. Source it, then call topo_up;
# topo_down runs from the EXIT trap that topo_up installs, also on failure or Ctrl-C.
#
#   client ns  c0 198.18.0.2/24 ──veth── gc ┐
#                                          ├ gateway ns: rvsd owns gc/gs through DPDK af_packet
#   server ns  s0 198.18.1.11-13/24 ─veth─ gs ┘   gc = 198.18.0.1 (port "client"), VIP 198.18.0.100
#                                                 gs = 198.18.1.1 (port "server"), LIP 198.18.1.100
#   server ns  sm 198.18.2.2/24 ─veth─ gm 198.18.2.1/24 (gateway ns kernel): the management link
#              health checks use; the gateway ns routes 198.18.1.0/24 over it (as keepalived would
#              check real servers from the director's kernel network). RVS_MGMT=0 leaves it out:
#              then the checks go through rvsd's kernel interfaces (RVS_KERNEL=1, see write_config).
#
# Addresses are from 198.18.0.0/15 (RFC 2544), inside namespaces this script creates; nothing is
# sent anywhere else. The namespaces have no default route on purpose: every peer is on a connected
# subnet, so a stray lookup (resolvers, reverse DNS) fails at once instead of leaving the topology. Names carry a per-run id so concurrent runs never collide.

RVS_ROOT=${RVS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RVS_ID=${RVS_ID:-$(( $$ % 100000 ))}
NS_C="rvs${RVS_ID}c"
NS_G="rvs${RVS_ID}g"
NS_S="rvs${RVS_ID}s"
NS_F="rvs${RVS_ID}f"
RVS_TMP=${RVS_TMP:-$(mktemp -d "/tmp/rvs-${RVS_ID}.XXXX")}
RVSD_PID=
RVS_SOCK="$RVS_TMP/rvsd.sock"
# The ports' kernel interfaces in the gateway namespace (write_config with RVS_KERNEL=1).
KERNEL_C=rvs-client
KERNEL_S=rvs-server
VIP=198.18.0.100
GW_C=198.18.0.1
GW_S=198.18.1.1
LIP=198.18.1.100
CLIENT=198.18.0.2
RS=(198.18.1.11 198.18.1.12 198.18.1.13)
# Spare real-server addresses, configured on s0 too, for tests that add servers at runtime.
RS_SPARE=(198.18.1.14 198.18.1.15)
# The release binaries; scripts build them first.
RVSD="$RVS_ROOT/target/release/rvsd"
RVSADM="$RVS_ROOT/target/release/rvsadm"

_bg_pids=()
# Namespaces beyond the fixed ones that topo_down deletes as well.
_extra_ns=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# Disable the offloads DPDK will not complete: without this, the kernel hands af_packet TCP segments
# with partial checksums (and GSO super-frames) that arrive broken at the far end.
_no_offload() { ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }

topo_up() {
    trap topo_down EXIT
    trap 'exit 130' INT TERM
    for ns in "$NS_C" "$NS_G" "$NS_S"; do ip netns add "$ns"; done
    ip link add c0 netns "$NS_C" type veth peer name gc netns "$NS_G"
    ip link add s0 netns "$NS_S" type veth peer name gs netns "$NS_G"
    for ns in "$NS_C" "$NS_G" "$NS_S"; do ip -n "$ns" link set lo up; done
    ip netns exec "$NS_G" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    for d in c0; do ip netns exec "$NS_C" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"; done
    ip netns exec "$NS_S" sysctl -qw net.ipv6.conf.s0.disable_ipv6=1
    _no_offload "$NS_C" c0; _no_offload "$NS_G" gc; _no_offload "$NS_G" gs; _no_offload "$NS_S" s0
    ip -n "$NS_C" addr add "$CLIENT/24" dev c0
    ip -n "$NS_C" link set c0 up
    for a in "${RS[@]}" "${RS_SPARE[@]}"; do ip -n "$NS_S" addr add "$a/24" dev s0; done
    ip -n "$NS_S" link set s0 up
    ip -n "$NS_G" link set gc up
    ip -n "$NS_G" link set gs up
    # RVS_MGMT=0: no management link; the gateway namespace reaches the peers only through rvsd's
    # kernel interfaces (the exception path, write_config with RVS_KERNEL=1).
    if [ "${RVS_MGMT:-1}" != 0 ]; then
        ip link add sm netns "$NS_S" type veth peer name gm netns "$NS_G"
        ip -n "$NS_S" addr add 198.18.2.2/24 dev sm
        ip -n "$NS_S" link set sm up
        ip -n "$NS_G" addr add 198.18.2.1/24 dev gm
        ip -n "$NS_G" link set gm up
        ip -n "$NS_G" route add 198.18.1.0/24 via 198.18.2.2 dev gm
    fi
    log "topology up: $NS_C / $NS_G / $NS_S${RVS_MGMT:+ (RVS_MGMT=$RVS_MGMT)}"
}

# A second client namespace (for floods), attached to the client LAN through a bridge would need
# more plumbing; tests that need it create it themselves.

# Topology for the forwarding-mode suite (NAT, DR, TUN: scripts/e2e/22-modes.sh): each real server
# in its own namespace on one L2 segment, a Linux bridge, as LVS real servers sit on a LAN.
#
#   client ns  c0 198.18.0.2/24 ──veth── gc (gateway ns: DPDK port "client" 198.18.0.1, VIP .0.100)
#              c1 198.18.1.2/24 ──veth── bc ┐
#   gateway ns gs (DPDK port "server", 198.18.1.1) ──veth── bg ┤ br0 in $NS_S (no address)
#   rs ns $NS_R[i]  eth0 198.18.1.11-13/24 ──veth── r1..r3 ┘
#
# Real servers: the VIP on lo (/32) with arp_ignore=1 and arp_announce=2 (DR: they take packets
# to the VIP, never answer ARP for it); routes to the client LAN 198.18.0.0/24 via the gateway's
# server port 198.18.1.1 (NAT: replies from their own address must pass the gateway), except for
# packets from the VIP (DR and TUN replies), which a rule sends via the client's second interface
# c1, straight to the client, never through the gateway. The client takes those on c1 with
# rp_filter off (it routes the VIP via c0). TUN needs the decapsulator, which the suite starts.
# No management link: the suite runs no health checks. The extra namespaces join _extra_ns, which
# topo_down deletes too.
NS_R=("rvs${RVS_ID}r1" "rvs${RVS_ID}r2" "rvs${RVS_ID}r3")
CLIENT_B=198.18.1.2

topo_modes_up() {
    trap topo_down EXIT
    trap 'exit 130' INT TERM
    local ns i
    for ns in "$NS_C" "$NS_G" "$NS_S" "${NS_R[@]}"; do ip netns add "$ns"; done
    _extra_ns+=("${NS_R[@]}")
    for ns in "$NS_C" "$NS_G" "$NS_S" "${NS_R[@]}"; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_S" link add br0 type bridge stp_state 0 forward_delay 0
    ip link add c0 netns "$NS_C" type veth peer name gc netns "$NS_G"
    ip link add c1 netns "$NS_C" type veth peer name bc netns "$NS_S"
    ip link add gs netns "$NS_G" type veth peer name bg netns "$NS_S"
    _no_offload "$NS_C" c0; _no_offload "$NS_C" c1; _no_offload "$NS_G" gc; _no_offload "$NS_G" gs
    _no_offload "$NS_S" bc; _no_offload "$NS_S" bg
    for i in 0 1 2; do
        ns=${NS_R[$i]}
        ip link add eth0 netns "$ns" type veth peer name "r$((i + 1))" netns "$NS_S"
        _no_offload "$ns" eth0; _no_offload "$NS_S" "r$((i + 1))"
    done
    for d in bc bg r1 r2 r3; do
        ip -n "$NS_S" link set "$d" master br0
        ip -n "$NS_S" link set "$d" up
    done
    ip -n "$NS_S" link set br0 up
    ip -n "$NS_C" addr add "$CLIENT/24" dev c0
    ip -n "$NS_C" addr add "$CLIENT_B/24" dev c1
    ip -n "$NS_C" link set c0 up
    ip -n "$NS_C" link set c1 up
    ip netns exec "$NS_C" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.c0.rp_filter=0 \
        net.ipv4.conf.c1.rp_filter=0
    ip -n "$NS_G" link set gc up
    ip -n "$NS_G" link set gs up
    for i in 0 1 2; do
        ns=${NS_R[$i]}
        ip -n "$ns" addr add "${RS[$i]}/24" dev eth0
        ip -n "$ns" addr add "$VIP/32" dev lo
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add 198.18.0.0/24 via "$GW_S" dev eth0
        ip -n "$ns" rule add from "$VIP" lookup 100 pref 100
        ip -n "$ns" route add 198.18.0.0/24 via "$CLIENT_B" dev eth0 table 100
    done
    log "modes topology up: $NS_C / $NS_G / bridge in $NS_S / ${NS_R[*]}"
}

# IPv6 beside IPv4 (scripts/e2e/65-ipv6.sh): topo_up's namespaces, plus addresses from the IPv6
# benchmarking prefix 2001:2::/48 (RFC 5180) next to 198.18.0.0/15:
#
#   client ns  c0 198.18.0.2 + 2001:2::2/64 ──veth── gc: port "client" 198.18.0.1 + 2001:2::1,
#                                                        VIP6 2001:2::100 (NAT64 VIP 2001:2::101)
#   server ns  s0 198.18.1.11-13 + 2001:2:0:1::11-13/64 ──veth── gs: port "server" 198.18.1.1 +
#                                                        2001:2:0:1::1, LIP6 2001:2:0:1::100
#
# IPv6 is enabled only on c0 and s0 (the gateway namespace keeps it off: rvsd owns gc/gs, the
# kernel must not answer there), addresses are added `nodad`, and DAD, router solicitations and
# router advertisements are off so no kernel chatter reaches rvsd. The real servers route the
# client prefix via the gateway's server port (NAT replies; FULLNAT replies go to the LIP on-link).
VIP6=2001:2::100
VIP6_NAT64=2001:2::101
GW6_C=2001:2::1
GW6_S=2001:2:0:1::1
LIP6=2001:2:0:1::100
CLIENT6=2001:2::2
RS6=(2001:2:0:1::11 2001:2:0:1::12 2001:2:0:1::13)

# _v6_on NS IFACE: IPv6 on, quietly (no DAD, no RS/RA, no autoconf).
_v6_on() {
    local k
    for k in "$2" all default; do
        ip netns exec "$1" sysctl -qw "net.ipv6.conf.$k.accept_dad=0" "net.ipv6.conf.$k.dad_transmits=0" \
            "net.ipv6.conf.$k.accept_ra=0" "net.ipv6.conf.$k.router_solicitations=0" \
            "net.ipv6.conf.$k.autoconf=0"
    done
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=0"
}

topo6_up() {
    topo_up
    _v6_on "$NS_C" c0
    _v6_on "$NS_S" s0
    ip -n "$NS_C" -6 addr add "$CLIENT6/64" dev c0 nodad
    local a
    for a in "${RS6[@]}"; do ip -n "$NS_S" -6 addr add "$a/64" dev s0 nodad; done
    ip -n "$NS_S" -6 route add 2001:2::/48 via "$GW6_S" dev s0
    log "IPv6 up: $CLIENT6 on c0, ${RS6[*]} on s0"
}

# A client behind a 1280-byte link (path MTU tests), on top of topo6_up:
#
#   pmtu ns  p0 2001:2:2::2/64 (mtu 1500) ──veth── c2 2001:2:2::1/64 (mtu 1280) in the client ns,
#            which forwards IPv6 between c2 and c0
#
# The client's own link is 1500, so it advertises an MSS of 1440; a full-size segment toward it
# does not fit c2, and the client namespace, now a router, answers it with an ICMPv6 Packet Too
# Big (MTU 1280) to the segment's source, the VIP. The gateway needs a route to 2001:2:2::/64 via
# $CLIENT6 (its config's [[routes]]). Also 198.18.3.2/24 on p0 (via 198.18.3.1 on c2) for IPv4.
NS_P="rvs${RVS_ID}p"
CLIENT6_P=2001:2:2::2
CLIENT6_P_NET=2001:2:2::/64
PMTU=1280

topo6_pmtu_up() {
    ip netns add "$NS_P"
    _extra_ns+=("$NS_P")
    ip -n "$NS_P" link set lo up
    ip link add p0 netns "$NS_P" type veth peer name c2 netns "$NS_C"
    _no_offload "$NS_P" p0; _no_offload "$NS_C" c2
    _v6_on "$NS_P" p0
    _v6_on "$NS_C" c2
    ip -n "$NS_C" link set c2 mtu "$PMTU"
    ip -n "$NS_P" -6 addr add "$CLIENT6_P/64" dev p0 nodad
    ip -n "$NS_C" -6 addr add 2001:2:2::1/64 dev c2 nodad
    ip -n "$NS_P" addr add 198.18.3.2/24 dev p0
    ip -n "$NS_C" addr add 198.18.3.1/24 dev c2
    ip -n "$NS_P" link set p0 up
    ip -n "$NS_C" link set c2 up
    ip -n "$NS_P" -6 route add 2001:2::/48 via 2001:2:2::1 dev p0
    ip netns exec "$NS_C" sysctl -qw net.ipv6.conf.all.forwarding=1
    log "pmtu client up: $NS_P $CLIENT6_P behind a $PMTU-byte link (router: $NS_C)"
}

topo_down() {
    local rc=$?
    set +e
    rvsd_stop >/dev/null 2>&1
    if declare -F nginx_rs_stop >/dev/null; then nginx_rs_stop >/dev/null 2>&1; fi
    for p in "${_bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for ns in "$NS_C" "$NS_G" "$NS_S" "$NS_F" "${_extra_ns[@]}"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        fi
    done
    [ -n "${RVS_KEEP_TMP:-}" ] || rm -rf "$RVS_TMP"
    return $rc
}

# bg NS CMD...: run CMD in namespace NS in the background; killed by topo_down.
bg() {
    local ns=$1; shift
    ip netns exec "$ns" "$@" &
    _bg_pids+=($!)
}

# The default gateway config for this topology, with the services passed on stdin appended.
# RVS_WORKERS=N (default 1) runs N workers on N queue pairs (af_packet qpairs, fanout hash), their
# lcores packed onto this machine's CPUs; several workers also sleep when idle (RVS_IDLE_US, 20 us)
# so the kernel peers sharing the two CPUs get to run. RVS_KERNEL=1 gives both ports kernel
# interfaces ($KERNEL_C, $KERNEL_S: the exception path); RVS_FILE_PREFIX sets the DPDK file prefix.
write_config() {
    local file=$1 lcores=${2:-1}
    local workers=${RVS_WORKERS:-1} qargs="" cpus="" idle=${RVS_IDLE_US:-0}
    if [ "$workers" -gt 1 ]; then
        local ncpu; ncpu=$(nproc)
        lcores=$(seq -s, 1 "$workers")
        cpus=$(for i in $(seq 0 $((workers - 1))); do echo $((i % ncpu)); done | paste -sd,)
        cpus="cpus = [$cpus]"
        qargs=",qpairs=$workers"
        idle=${RVS_IDLE_US:-20}
    fi
    cat > "$file" <<CFG
version = 1

[eal]
log_level = 4
${RVS_FILE_PREFIX:+file_prefix = \"$RVS_FILE_PREFIX\"}

[workers]
main_lcore = 0
lcores = [$lcores]
$cpus
idle_sleep_us = $idle

[control]
socket = "$RVS_SOCK"

[[ports]]
name = "client"
device = "net_af_packet0,iface=gc$qargs"
addr = "$GW_C/24"
${RVS_KERNEL:+kernel = \"$KERNEL_C\"}

[[ports]]
name = "server"
device = "net_af_packet1,iface=gs$qargs"
addr = "$GW_S/24"
${RVS_KERNEL:+kernel = \"$KERNEL_S\"}
CFG
    cat >> "$file"
}

# rvsd_start CONFIG: start rvsd in the gateway namespace and wait until its API answers.
rvsd_start() {
    local cfg=$1
    ip netns exec "$NS_G" "$RVSD" -c "$cfg" > "$RVS_TMP/rvsd.out" 2> "$RVS_TMP/rvsd.err" &
    RVSD_PID=$!
    local i
    for i in $(seq 1 100); do
        if [ -S "$RVS_SOCK" ] && api '{"op":"version"}' >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$RVSD_PID" 2>/dev/null; then
            log "rvsd exited during start-up:"; cat "$RVS_TMP/rvsd.err" >&2; return 1
        fi
        sleep 0.1
    done
    log "rvsd did not come up in 10 s"; cat "$RVS_TMP/rvsd.err" >&2
    return 1
}

# rvsd_stop [SIGNAL]: signal rvsd (INT by default) and wait, at most 5 s before SIGKILL. Sets
# RVSD_RC (exit status) and RVSD_STOP_MS (how long the stop took).
RVSD_RC=
RVSD_STOP_MS=
rvsd_stop() {
    [ -n "$RVSD_PID" ] || return 0
    local t0 t1
    t0=$(date +%s%N)
    kill "-${1:-INT}" "$RVSD_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$RVSD_PID" 2>/dev/null; then kill -9 "$RVSD_PID"; fi
    wait "$RVSD_PID" 2>/dev/null
    RVSD_RC=$?
    t1=$(date +%s%N)
    RVSD_PID=
    RVSD_STOP_MS=$(( (t1 - t0) / 1000000 ))
}

# api JSON: one request to the daemon's socket, the response line on stdout.
api() { python3 "$RVS_ROOT"/scripts/lib/api.py "$RVS_SOCK" "$1"; }

# counter NAME: the sum of a counter over all workers (0 if absent).
counter() {
    api '{"op":"stats"}' | python3 -c '
import json, sys
name = sys.argv[1]
r = json.load(sys.stdin)
print(sum(v for w in r["workers"] for k, v in w["counters"] if k == name))' "$1"
}

# Assertions: each prints a line and counts; tests end with `finish`.
_pass=0
_fail=0
ok() { _pass=$((_pass + 1)); printf '  ok   %s\n' "$*"; }
fail() { _fail=$((_fail + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
finish() {
    printf '%s: %d passed, %d failed\n' "${RVS_SUITE:-$(basename "$0" .sh)}" "$_pass" "$_fail"
    [ "$_fail" -eq 0 ]
}
