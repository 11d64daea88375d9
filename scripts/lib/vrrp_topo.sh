# shellcheck shell=bash
# Two rvsd gateways sharing a VIP and a local address by VRRP (scripts/e2e/88-vrrp.sh, docs/ha.md).
# Source after topo.sh; vrrp_topo_up builds it and installs the EXIT trap (vrrp_down, then topo_down).
#
#   client ns  c0 198.18.0.2/24 ─veth─ cc ┐
#   gw A ns    gc (DPDK "client" 198.18.0.1) ─veth─ ac ┤ brc (client LAN) ┐
#   gw B ns    gc (DPDK "client" 198.18.0.3) ─veth─ bc ┘                  │ both bridges in
#   gw A ns    gs (DPDK "server" 198.18.1.1) ─veth─ as ┐                  │ the switch ns $NS_W
#   gw B ns    gs (DPDK "server" 198.18.1.3) ─veth─ bs ┤ brs (server LAN) ┘
#   server ns  s0 198.18.1.11-13/24 ─veth─ ss ┘
#
# The VIP 198.18.0.100 and the local address 198.18.1.100 are VRRP virtual addresses: keepalived in
# each gateway namespace puts them on the master's kernel interfaces (the exception path's TAPs,
# rvsc and rvss), and that gateway's rvsd, with [vrrp] adopt = true, answers ARP for them and
# announces them. Each gateway runs one worker with idle_sleep_us, so both fit on two CPUs. rvsd
# itself keeps the kernel off the af_packet interfaces gc/gs (rp_filter, arp_ignore): the kernel
# takes the ports' traffic through the TAPs only.
# Addresses from 198.18.0.0/15 only, inside namespaces created here; names carry RVS_ID.

NS_GA="rvs${RVS_ID}a"
NS_GB="rvs${RVS_ID}b"
NS_W="rvs${RVS_ID}w"
GW_CA=198.18.0.1
GW_CB=198.18.0.3
GW_SA=198.18.1.1
GW_SB=198.18.1.3
# The kernel interface (exception path TAP) of each port, in both gateways.
KIF_C=rvsc
KIF_S=rvss
declare -A GW_PID=()
declare -A KA_PID=()

vrrp_topo_up() {
    trap vrrp_down EXIT
    trap 'exit 130' INT TERM
    local ns d
    for ns in "$NS_C" "$NS_S" "$NS_GA" "$NS_GB" "$NS_W"; do ip netns add "$ns"; done
    _extra_ns+=("$NS_GA" "$NS_GB" "$NS_W")
    for ns in "$NS_C" "$NS_S" "$NS_GA" "$NS_GB" "$NS_W"; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_W" link add brc type bridge stp_state 0 forward_delay 0
    ip -n "$NS_W" link add brs type bridge stp_state 0 forward_delay 0
    # Multicast (VRRP's 224.0.0.18, sync's 224.0.0.81) flooded, not snooped away.
    ip -n "$NS_W" link set brc type bridge mcast_snooping 0
    ip -n "$NS_W" link set brs type bridge mcast_snooping 0
    ip link add c0 netns "$NS_C" type veth peer name cc netns "$NS_W"
    ip link add s0 netns "$NS_S" type veth peer name ss netns "$NS_W"
    ip link add gc netns "$NS_GA" type veth peer name ac netns "$NS_W"
    ip link add gs netns "$NS_GA" type veth peer name as netns "$NS_W"
    ip link add gc netns "$NS_GB" type veth peer name bc netns "$NS_W"
    ip link add gs netns "$NS_GB" type veth peer name bs netns "$NS_W"
    _no_offload "$NS_C" c0; _no_offload "$NS_S" s0
    for ns in "$NS_GA" "$NS_GB"; do _no_offload "$ns" gc; _no_offload "$ns" gs; done
    for d in cc ac bc; do ip -n "$NS_W" link set "$d" master brc; done
    for d in ss as bs; do ip -n "$NS_W" link set "$d" master brs; done
    for d in cc ac bc ss as bs brc brs; do _no_offload "$NS_W" "$d"; ip -n "$NS_W" link set "$d" up; done
    ip -n "$NS_C" addr add "$CLIENT/24" dev c0
    ip -n "$NS_C" link set c0 up
    for a in "${RS[@]}"; do ip -n "$NS_S" addr add "$a/24" dev s0; done
    ip -n "$NS_S" link set s0 up
    for ns in "$NS_GA" "$NS_GB"; do
        ip -n "$ns" link set gc up
        ip -n "$ns" link set gs up
    done
    log "vrrp topology up: $NS_C / $NS_GA, $NS_GB / bridges in $NS_W / $NS_S"
}

# gw_config A|B FILE: the gateway's rvsd config, the services (stdin) appended.
gw_config() {
    local g=$1 file=$2 c s cpu
    if [ "$g" = A ]; then c=$GW_CA; s=$GW_SA; cpu=1; else c=$GW_CB; s=$GW_SB; cpu=0; fi
    cat > "$file" <<CFG
version = 1

[eal]
log_level = 4
file_prefix = "hvrrp-$RVS_ID-$g"

[workers]
main_lcore = 0
lcores = [1]
cpus = [$cpu]
idle_sleep_us = ${RVS_IDLE_US:-20}

[control]
socket = "$RVS_TMP/rvsd-$g.sock"

[[ports]]
name = "client"
device = "net_af_packet0,iface=gc"
addr = "$c/24"
kernel = "$KIF_C"

[[ports]]
name = "server"
device = "net_af_packet1,iface=gs"
addr = "$s/24"
kernel = "$KIF_S"

# Claim the VIP and LIP only while keepalived has them on the ports' kernel interfaces.
[vrrp]
adopt = true
poll_ms = ${VRRP_POLL_MS:-20}
CFG
    cat >> "$file"
}

gw_ns() { if [ "$1" = A ]; then echo "$NS_GA"; else echo "$NS_GB"; fi; }

# gw_start A|B CONFIG: start the gateway's rvsd and wait until its API answers.
gw_start() {
    local g=$1 cfg=$2 ns sock i
    ns=$(gw_ns "$g"); sock="$RVS_TMP/rvsd-$g.sock"
    ip netns exec "$ns" "$RVSD" -c "$cfg" > "$RVS_TMP/rvsd-$g.out" 2> "$RVS_TMP/rvsd-$g.err" &
    GW_PID[$g]=$!
    for i in $(seq 1 100); do
        if [ -S "$sock" ] && gw_api "$g" '{"op":"version"}' >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "${GW_PID[$g]}" 2>/dev/null; then
            log "rvsd $g exited during start-up:"; cat "$RVS_TMP/rvsd-$g.err" >&2; return 1
        fi
        sleep 0.1
    done
    log "rvsd $g did not come up in 10 s"; cat "$RVS_TMP/rvsd-$g.err" >&2
    return 1
}

gw_api() { python3 "$RVS_ROOT"/scripts/lib/api.py "$RVS_TMP/rvsd-$1.sock" "$2"; }

# gw_counter A|B NAME: a counter summed over the gateway's workers.
gw_counter() {
    gw_api "$1" '{"op":"stats"}' | python3 -c '
import json, sys
name = sys.argv[1]
r = json.load(sys.stdin)
print(sum(v for w in r["workers"] for k, v in w["counters"] if k == name))' "$2"
}

# ka_config A|B FILE: keepalived.conf for the gateway: VRRPv3, 100 ms adverts, one instance per
# side in a sync group (the VIP on the client TAP, the LIP on the server TAP), A priority 150, B 100.
ka_config() {
    local g=$1 file=$2 prio
    if [ "$g" = A ]; then prio=150; else prio=100; fi
    cat > "$RVS_TMP/ka-notify.sh" <<'SH'
#!/bin/sh
# ka-notify.sh GATEWAY TYPE NAME STATE PRIORITY: one line per transition, nanoseconds first.
echo "$(date +%s%N) $*" >> "$(dirname "$0")/ka-$1.notify"
SH
    chmod 0700 "$RVS_TMP/ka-notify.sh"
    cat > "$file" <<KA
global_defs {
    router_id rvs-$RVS_ID-$g
    vrrp_version 3
    # No delay after a takeover before the gratuitous ARPs (rvsd sends its own as well).
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 3
    vrrp_garp_lower_prio_repeat 3
    # The notify script logs each transition with a nanosecond timestamp (keepalived's own log
    # has whole seconds). It lives in this run's private directory (mode 0700, root's).
    script_user root
}

vrrp_sync_group rvs {
    group {
        rvs_client
        rvs_server
    }
}

vrrp_instance rvs_client {
    state BACKUP
    interface $KIF_C
    virtual_router_id 51
    priority $prio
    advert_int 0.1
    notify "$RVS_TMP/ka-notify.sh $g"
    virtual_ipaddress {
        $VIP/32 dev $KIF_C
    }
}

vrrp_instance rvs_server {
    state BACKUP
    interface $KIF_S
    virtual_router_id 52
    priority $prio
    advert_int 0.1
    notify "$RVS_TMP/ka-notify.sh $g"
    virtual_ipaddress {
        $LIP/32 dev $KIF_S
    }
}
KA
}

# ka_start A|B CONF: keepalived (VRRP only) in the gateway's namespace, logging to a file.
ka_start() {
    local g=$1 conf=$2 ns
    ns=$(gw_ns "$g")
    ip netns exec "$ns" keepalived --vrrp --dont-fork --log-console --log-detail --no-syslog \
        -f "$conf" -p "$RVS_TMP/ka-$g.pid" -r "$RVS_TMP/ka-vrrp-$g.pid" \
        > "$RVS_TMP/ka-$g.log" 2>&1 &
    KA_PID[$g]=$!
}

# ka_state A|B: MASTER, BACKUP, FAULT or STOP: the client-side instance's latest transition. The
# notify scripts run asynchronously, so lines may land out of order: the latest timestamp wins.
ka_state() {
    sort -n "$RVS_TMP/ka-$1.notify" 2>/dev/null | awk '$4 == "rvs_client" {s = $5} END {print s}'
}

# ka_wait A|B STATE [SECONDS]: wait until the gateway's client-side instance is in STATE.
ka_wait() {
    local i
    for i in $(seq 1 $(( ${3:-10} * 20 ))); do
        [ "$(ka_state "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# ka_since A|B STATE T_NS [SECONDS]: wait for the client-side instance's first transition to STATE
# after T_NS (nanoseconds) and print its time; fails after SECONDS (default 5).
ka_since() {
    local i t
    for i in $(seq 1 $(( ${4:-5} * 20 ))); do
        t=$(sort -n "$RVS_TMP/ka-$1.notify" 2>/dev/null |
            awk -v t="$3" -v s="$2" '$1 > t && $4 == "rvs_client" && $5 == s {print $1; exit}')
        if [ -n "$t" ]; then echo "$t"; return 0; fi
        sleep 0.05
    done
    return 1
}

vrrp_down() {
    local rc=$? g
    set +e
    for g in "${!KA_PID[@]}"; do kill "${KA_PID[$g]}" 2>/dev/null; done
    for g in "${!GW_PID[@]}"; do kill -INT "${GW_PID[$g]}" 2>/dev/null; done
    for _ in $(seq 1 50); do
        local alive=0
        for g in "${!GW_PID[@]}"; do kill -0 "${GW_PID[$g]}" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for g in "${!GW_PID[@]}"; do kill -9 "${GW_PID[$g]}" 2>/dev/null; done
    (exit $rc)
    topo_down
}
