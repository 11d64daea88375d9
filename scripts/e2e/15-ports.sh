#!/usr/bin/env bash
# Ports: `rvsadm --ports` (API `list_ports`, DPVS's `dpip link show`) lists both ports with the MACs
# the kernel peers resolve the gateway to (`ip neigh` after a ping) and rvsd logged at "port up",
# their links up, and NIC rx counters that grow with traffic.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
topo_up

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" < /dev/null
export RVSADM_SOCKET="$RVS_SOCK"
rvsd_start "$cfg" || exit 1

# field PORT WHAT: from `rvsadm --ports`, PORT's block: mac | link (the link line) | ipackets
field() {
    "$RVSADM" --ports | awk -v port="$1" -v what="$2" '
        /^[0-9]+: / { inblock = ($2 == port ":"); row = 0; next }
        !inblock { next }
        row == 0 && what == "link" { sub(/^ +/, ""); print; exit }
        { row++ }
        $1 == "addr" && what == "mac" { print $2; exit }
        $1 == "ipackets" { getline; if (what == "ipackets") { print $1; exit } }'
}
# neigh NS ADDR: the MAC the kernel in NS resolved ADDR to.
neigh() { ip -n "$1" neigh show "$2" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
# logged NAME: the MAC rvsd logged for port NAME at start-up ("port up").
logged() { grep 'port up' "$RVS_TMP/rvsd.err" | grep -- "port=$1 " | grep -o 'mac=[0-9a-f:]*' | cut -d= -f2; }

echo "== rvsadm --ports lists both ports"
"$RVSADM" --ports | sed 's/^/    /'
out=$("$RVSADM" --ports); rc=$?
check "rvsadm --ports exits 0" [ "$rc" -eq 0 ]
check "two port blocks" [ "$(printf '%s\n' "$out" | grep -cE '^[0-9]+: (client|server): device ')" -eq 2 ]
heads() { grep -v '^ '; }
check "-L --ports prints the same ports" [ "$("$RVSADM" -L --ports | heads)" = "$(printf '%s\n' "$out" | heads)" ]
q=${RVS_WORKERS:-1}
check "client: device, driver, MTU and $q queue pair(s)" \
    grep -qE "^1: client: device net_af_packet0,iface=gc(,qpairs=$q)? driver net_af_packet mtu [0-9]+ rx-queue $q tx-queue $q\$" <<< "$out"
check "client: address $GW_C/24, server: $GW_S/24" \
    bash -c "grep -q 'inet $GW_C/24\$' <<< \"\$1\" && grep -q 'inet $GW_S/24\$' <<< \"\$1\"" _ "$out"
err=$("$RVSADM" -Lc --ports 2>&1 >/dev/null); rc=$?
check "-Lc --ports is refused with one line, exit 2 ($err)" test "$rc" -eq 2 -a "$(printf '%s\n' "$err" | wc -l)" -eq 1

echo "== the MACs are the ones the kernel peers see"
ip netns exec "$NS_C" ping -c 2 -i 0.2 -W 2 "$GW_C" >/dev/null
ip netns exec "$NS_S" ping -c 2 -i 0.2 -W 2 "$GW_S" >/dev/null
for p in client:"$NS_C":"$GW_C" server:"$NS_S":"$GW_S"; do
    IFS=: read -r name ns gw <<< "$p"
    mac=$(field "$name" mac); seen=$(neigh "$ns" "$gw"); log_mac=$(logged "$name")
    check "$name: rvsadm's MAC $mac is the peer's neighbour entry for $gw ($seen)" test -n "$mac" -a "$mac" = "$seen"
    check "$name: and the MAC logged at \"port up\" ($log_mac)" [ "$mac" = "$log_mac" ]
    link=$(field "$name" link)
    check "$name: link up ($link)" bash -c "[[ '$link' == UP* ]]"
done
api_macs=$(api '{"op":"list_ports"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join(p["mac"] for p in r["ports"]) if r["ok"] else "refused")')
check "the API's list_ports has the same MACs ($api_macs)" [ "$api_macs" = "$(field client mac) $(field server mac)" ]

echo "== rx counters grow with traffic"
for p in client:"$NS_C":"$GW_C" server:"$NS_S":"$GW_S"; do
    IFS=: read -r name ns gw <<< "$p"
    before=$(field "$name" ipackets)
    ip netns exec "$ns" ping -c 5 -i 0.2 -W 2 "$gw" >/dev/null
    after=$(field "$name" ipackets)
    check "$name: ipackets $before -> $after after 5 pings (+5 at least)" \
        test -n "$before" -a -n "$after" -a "$((${after:-0} - ${before:-0}))" -ge 5
done

rvsd_stop
finish
