#!/usr/bin/env bash
# Linux kernel reference for the FULLNAT benchmark: the same-shaped topology as scripts/lib/topo.sh,
# with a kernel router doing nftables DNAT (VIP:80 -> 3 real servers, numgen round-robin) + SNAT
# (to 198.18.1.100, like rvs's LIP) instead of rvs. Measures wrk requests/s so the e2e test can
# compare rvs against the kernel.
#
#   client ns  c0 198.18.0.2/24 ──veth── rc 198.18.0.1/24 + VIP 198.18.0.100  ┐ router ns
#   server ns  s0 198.18.1.11-13/24 ─veth─ rs 198.18.1.1/24 + 198.18.1.100   ┘ (ip_forward=1, nft)
#
# Usage: scripts/nft_reference.sh            (root)
#   DURATION=10   wrk seconds per run
#   RUNS=1        wrk runs; with more, each run is logged and the final line is the median run
#   CONNS=64 THREADS=2
# Last stdout line: nft_reference requests_per_sec=<N> errors=<N> non2xx=<N>
# Everything it creates (namespaces, nginx, temp dir) is removed on exit, also on failure/Ctrl-C.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/nginx_rs.sh"

DURATION=${DURATION:-10}
RUNS=${RUNS:-1}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ID=$(( $$ % 100000 ))
NS_C="nftr${ID}c"
NS_R="nftr${ID}r"
NS_S="nftr${ID}s"
CLIENT=198.18.0.2
GW_C=198.18.0.1
VIP=198.18.0.100
GW_S=198.18.1.1
SNAT=198.18.1.100
RS=(198.18.1.11 198.18.1.12 198.18.1.13)
TMP=$(mktemp -d "/tmp/nftr-${ID}.XXXX")
NGINX_RS_TMP=$TMP

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
    local rc=$?
    set +e
    nginx_rs_stop
    for ns in "$NS_C" "$NS_R" "$NS_S"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
            ip netns del "$ns"
        fi
    done
    [ -n "${RVS_KEEP_TMP:-}" ] || rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

no_offload() { ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }

for ns in "$NS_C" "$NS_R" "$NS_S"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add c0 netns "$NS_C" type veth peer name rc netns "$NS_R"
ip link add s0 netns "$NS_S" type veth peer name rs netns "$NS_R"
ip netns exec "$NS_C" sysctl -qw net.ipv6.conf.c0.disable_ipv6=1
ip netns exec "$NS_R" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$NS_S" sysctl -qw net.ipv6.conf.s0.disable_ipv6=1
ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
no_offload "$NS_C" c0; no_offload "$NS_R" rc; no_offload "$NS_R" rs; no_offload "$NS_S" s0

ip -n "$NS_C" addr add "$CLIENT/24" dev c0
ip -n "$NS_C" link set c0 up
ip -n "$NS_C" route add default via "$GW_C"
ip -n "$NS_R" addr add "$GW_C/24" dev rc
ip -n "$NS_R" addr add "$VIP/24" dev rc
ip -n "$NS_R" addr add "$GW_S/24" dev rs
ip -n "$NS_R" addr add "$SNAT/24" dev rs
ip -n "$NS_R" link set rc up
ip -n "$NS_R" link set rs up
for a in "${RS[@]}"; do ip -n "$NS_S" addr add "$a/24" dev s0; done
ip -n "$NS_S" link set s0 up
ip -n "$NS_S" route add default via "$GW_S"

ip netns exec "$NS_R" nft -f - <<NFT
table ip nftref {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 3 map { 0 : ${RS[0]}, 1 : ${RS[1]}, 2 : ${RS[2]} }
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "rs" snat to $SNAT
    }
}
NFT
log "topology up: $NS_C / $NS_R / $NS_S"

nginx_rs_start "$NS_S" "${RS[@]}"
log "nginx up on ${RS[*]}"

# Every real server answers through the VIP (new connection per curl: round-robin).
seen=()
for _ in 1 2 3 4 5 6; do
    body=$(ip netns exec "$NS_C" curl -s -m 3 "http://$VIP/") || { log "curl to VIP failed"; exit 1; }
    seen+=("$body")
done
distinct=$(printf '%s\n' "${seen[@]}" | sort -u)
log "answers via VIP: $(echo "$distinct" | tr '\n' ' ')"
for a in "${RS[@]}"; do
    grep -qx "rs=$a" <<<"$distinct" || { log "real server $a never answered through the VIP"; exit 1; }
done
# /big comes through whole.
size=$(ip netns exec "$NS_C" curl -s -m 30 -o /dev/null -w '%{size_download}' "http://$VIP/big") || true
want=$(( ${NGINX_RS_BIG_MB:-100} * 1024 * 1024 ))
[ "$size" = "$want" ] || { log "GET /big: $size bytes, want $want"; exit 1; }
# The real servers see the SNAT address, not the client: look at a slow /big download from the server.
ip netns exec "$NS_C" curl -s -m 3 --limit-rate 1M -o /dev/null "http://$VIP/big" &
slow=$!
sleep 0.5
peers=$(ip netns exec "$NS_S" ss -Htn state established "( sport = :80 )" | awk '{print $4}')
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null || true
log "real-server peers during a download: $(echo "$peers" | tr '\n' ' ')"
grep -q "^$SNAT:" <<<"$peers" || { log "SNAT not applied: real server peers: $peers"; exit 1; }
grep -q "$CLIENT" <<<"$peers" && { log "real server saw the client address $CLIENT"; exit 1; }

# run_wrk: one wrk run; prints "<rps> <errors> <non2xx>".
run_wrk() {
    local out="$TMP/wrk.$1"
    # --foreground: stay in our process group so Ctrl-C reaches wrk (wrk has no children).
    timeout --foreground -k 5 $((DURATION + 30)) ip netns exec "$NS_C" \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "http://$VIP/" > "$out" 2>&1 || {
        log "wrk failed:"; cat "$out" >&2; return 1; }
    cat "$out" >&2
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /^  Socket errors:/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
        /^  Non-2xx or 3xx responses:/ { non2xx = $5 }
        END { if (rps == "") exit 1; printf "%s %d %d\n", rps, err, non2xx }' "$out"
}

results=()
for i in $(seq 1 "$RUNS"); do
    r=$(run_wrk "$i")
    read -r rps err non <<<"$r"
    log "run $i/$RUNS: requests_per_sec=$rps errors=$err non2xx=$non"
    results+=("$r")
done
# The median run by requests/s (for an even count, the lower middle).
median=$(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(( (RUNS + 1) / 2 ))p")
read -r rps err non <<<"$median"
[ "$RUNS" -gt 1 ] && log "all runs (req/s): $(printf '%s\n' "${results[@]}" | awk '{print $1}' | sort -n | tr '\n' ' ')"
echo "nft_reference requests_per_sec=$rps errors=$err non2xx=$non"
