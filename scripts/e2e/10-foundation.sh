#!/usr/bin/env bash
# Foundation: real kernel ping answered by rvsd through DPDK; unanswered packets counted by reason;
# Ctrl-C stops within 2 s and prints counters; an immediate restart works; bad configs are refused
# with one line naming the field.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
topo_up

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" < /dev/null

echo "== ping the gateway through DPDK"
rvsd_start "$cfg" || exit 1
check "ping $GW_C from the client namespace" ip netns exec "$NS_C" ping -c 3 -i 0.2 -W 2 "$GW_C"
check "ping $GW_S from the server namespace" ip netns exec "$NS_S" ping -c 2 -i 0.2 -W 2 "$GW_S"
check "arp reply counted" [ "$(counter arp_replies_sent)" -ge 2 ]
check "echo replies counted" [ "$(counter icmp_echo_replies)" -ge 5 ]

echo "== a packet nobody answers is counted by reason"
before=$(counter drop.no_service)
ip netns exec "$NS_C" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): s.sendto(b"hello", ("'"$GW_C"'", 9999))'
sleep 0.5
after=$(counter drop.no_service)
check "3 UDP datagrams to a port with no service: drop.no_service +3 ($before -> $after)" [ $((after - before)) -eq 3 ]

echo "== Ctrl-C stops within 2 s and prints counters"
rvsd_stop
check "stopped in ${RVSD_STOP_MS} ms (< 2000)" [ "$RVSD_STOP_MS" -lt 2000 ]
check "exit status 0 (got $RVSD_RC)" [ "$RVSD_RC" -eq 0 ]
check "final counters printed" grep -q "drop.no_service=3" "$RVS_TMP/rvsd.out"
check "per-port counters printed" grep -q "port 0 (client): rx" "$RVS_TMP/rvsd.out"
check "no hugepage files left" [ -z "$(ls /dev/hugepages 2>/dev/null)" ]

echo "== immediate restart"
rvsd_start "$cfg"; rc=$?
check "restarted right away" [ $rc -eq 0 ]
check "ping after restart" ip netns exec "$NS_C" ping -c 1 -W 2 "$GW_C"
check "no 'file prefix in use' complaint" bash -c "! grep -qiE 'prefix.*in use|cannot (create|get) lock' '$RVS_TMP/rvsd.err'"
rvsd_stop

echo "== bad configs are refused with one line naming the field"
bad() { # bad NAME FIELD SED-EXPR
    local name=$1 field=$2 expr=$3 out rc
    sed "$expr" "$cfg" > "$RVS_TMP/bad.toml"
    out=$(ip netns exec "$NS_G" timeout 20 "$RVSD" -c "$RVS_TMP/bad.toml" 2>&1); rc=$?
    local lines; lines=$(printf '%s\n' "$out" | grep -c .)
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -q -- "$field" \
        && ! printf '%s' "$out" | grep -qiE 'panic|backtrace|abort'; then
        ok "$name: $out"
    else
        fail "$name (rc=$rc, $lines lines): $out"
    fi
}
bad "unknown port device" "ports\[1\].device" 's/net_af_packet1,iface=gs/net_bogus1,iface=gs/'
bad "missing interface" "ports\[1\].device" 's/iface=gs/iface=nosuch0/'
bad "malformed address" "ports\[0\].addr" 's#198.18.0.1/24#198.18.0.300/24#'
bad "lcore that does not exist" "workers.lcores\[0\]" 's/^lcores = \[1\]/lcores = [77]/'
bad "type error" "line .*: main_lcore" 's/^main_lcore = 0/main_lcore = "zero"/'

finish
