#!/usr/bin/env bash
# The exception path (docs/ha.md, "Exception path"), in a topology with NO management link: each
# DPDK port has a kernel interface (a TAP with the port's MAC and address) in rvsd's namespace.
#   (a) a TCP service in the gateway namespace (socat on the port address) answers the client
#       through the DPDK port;
#   (b) rvsd's own health checks (HTTP_GET and TCP_CHECK, run from the gateway namespace) reach
#       the real servers through the TAP and the dataplane, take a killed server out and bring it
#       back;
#   (c) a bounded hping3 flood at the port address is counted and limited (the kernel sees at most
#       about rate * time + burst), while wrk through the VIP keeps 0 errors.
# RVS_WORKERS=2 runs the same with two workers (the limit is split between them).
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
RVS_MGMT=0
topo_up
RVS_KERNEL=1
RVS_FILE_PREFIX="rvs-exc-$RVS_ID"
RVS_IDLE_US=${RVS_IDLE_US:-20}
RATE=${RATE:-1000}
BURST=${BURST:-100}
FLOOD_S=${FLOOD_S:-5}
NGINX_RS_BIG_MB=0

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[[routes]]
dst = "198.18.5.0/24"
via = "${RS[0]}"

[exception]
rate_pps = $RATE
burst = $BURST

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
check = { kind = "http", path = "/", interval_ms = 300, timeout_ms = 250, fall = 2, rise = 1 }

[[services]]
proto = "tcp"
vip = "$VIP:8000"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:8000" }, { addr = "${RS[1]}:8000" }]
check = { kind = "tcp", interval_ms = 300, timeout_ms = 250, fall = 2, rise = 1 }
CFG

declare -A HS
hs() { # hs ADDR: a python HTTP server on ADDR:8000 answering rs=ADDR
    mkdir -p "$RVS_TMP/hs-$1"; echo "rs=$1" > "$RVS_TMP/hs-$1/index.html"
    ip netns exec "$NS_S" timeout 300 python3 -m http.server --bind "$1" --directory "$RVS_TMP/hs-$1" 8000 >/dev/null 2>&1 &
    HS[$1]=$!; _bg_pids+=($!)
}
nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
hs "${RS[0]}"; hs "${RS[1]}"
sleep 0.5
C() { ip netns exec "$NS_C" "$@"; }
G() { ip netns exec "$NS_G" "$@"; }

echo "== no management link: the gateway namespace has only rvsd's ports"
check "no route to the server LAN before rvsd starts" bash -c "! ip netns exec '$NS_G' ip -4 route get ${RS[0]} >/dev/null 2>&1"
rvsd_start "$cfg" || { finish; exit 1; }
G ip -br addr show | sed 's/^/    /'
check "$KERNEL_C carries $GW_C/24" bash -c "ip -n '$NS_G' -4 -o addr show dev $KERNEL_C | grep -q ' $GW_C/24 '"
check "$KERNEL_S carries $GW_S/24" bash -c "ip -n '$NS_G' -4 -o addr show dev $KERNEL_S | grep -q ' $GW_S/24 '"
check "$KERNEL_C has gc's MAC (the DPDK port's)" [ "$(G cat /sys/class/net/gc/address)" = "$(G cat /sys/class/net/$KERNEL_C/address)" ]
check "$KERNEL_S has gs's MAC" [ "$(G cat /sys/class/net/gs/address)" = "$(G cat /sys/class/net/$KERNEL_S/address)" ]
check "the server LAN is reached through $KERNEL_S" bash -c "ip netns exec '$NS_G' ip -4 route get ${RS[0]} | grep -q 'dev $KERNEL_S'"
check "the config's route is in the kernel (198.18.5.0/24 via ${RS[0]} dev $KERNEL_S)" bash -c "ip -n '$NS_G' -4 route show 198.18.5.0/24 | grep -q 'via ${RS[0]} dev $KERNEL_S'"

echo "== (a) a TCP service in the gateway namespace, at the port address, from the client"
bg "$NS_G" timeout 120 socat -T 5 "TCP-LISTEN:7000,bind=$GW_C,reuseaddr,fork" SYSTEM:'echo hello-from-gateway-kernel'
sleep 0.5
got=$(C timeout 5 socat -T 3 - "TCP:$GW_C:7000" </dev/null 2>&1)
check "socat on $GW_C:7000 answers the client ($got)" [ "$got" = "hello-from-gateway-kernel" ]
n=0; for i in $(seq 20); do [ "$(C timeout 5 socat -T 3 - "TCP:$GW_C:7000" </dev/null 2>/dev/null)" = "hello-from-gateway-kernel" ] && n=$((n + 1)); done
check "20 of 20 connections to the gateway's kernel ($n)" [ "$n" -eq 20 ]
G ping -c 3 -W 2 -i 0.2 "$CLIENT" > "$RVS_TMP/ping1" 2>&1
check "the gateway's kernel pings the client through the TAP, no duplicates" bash -c "grep -q '3 received' '$RVS_TMP/ping1' && ! grep -q DUP '$RVS_TMP/ping1'"
C ping -c 3 -W 2 -i 0.2 "$GW_C" > "$RVS_TMP/ping2" 2>&1
check "the client pings the port address (the dataplane answers, the kernel does not too)" bash -c "grep -q '3 received' '$RVS_TMP/ping2' && ! grep -q DUP '$RVS_TMP/ping2'"
check "exception_to_kernel counted ($(counter exception_to_kernel))" [ "$(counter exception_to_kernel)" -gt 0 ]
check "exception_from_kernel counted ($(counter exception_from_kernel))" [ "$(counter exception_from_kernel)" -gt 0 ]
check "the port address's closed ports: the kernel answers RST (connection refused)" bash -c "! ip netns exec '$NS_C' timeout 5 socat -T 2 - TCP:$GW_C:7001 </dev/null 2>&1 | grep -q hello"

echo "== (b) health checks from the gateway namespace, through the TAP and the dataplane"
health() { api '{"op":"list_services"}' | grep -o '"health":"[a-z]*"' | sort | uniq -c | tr -s ' ' | paste -sd' '; }
for _ in $(seq 1 50); do [ "$(health)" = ' 5 "health":"up"' ] && break; sleep 0.1; done
check "all five real servers up ($(health))" [ "$(health)" = ' 5 "health":"up"' ]
state_of() { # state_of ADDR:PORT -> up/down
    api '{"op":"list_services"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(next((x.get("health", "?") for s in r["services"] for x in s["reals"] if x["addr"] == sys.argv[1]), "gone"))' "$1"
}
until_state() { # until_state ADDR:PORT STATE MS
    local t0; t0=$(date +%s%N)
    while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt "$3" ]; do
        [ "$(state_of "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
kill "${HS[${RS[1]}]}"
check "TCP_CHECK takes the killed ${RS[1]}:8000 down within 3 s" until_state "${RS[1]}:8000" down 3000
C bash -c "for i in \$(seq 10); do curl -s -m 2 --noproxy '*' http://$VIP:8000/ || echo FAILED; done" > "$RVS_TMP/v8000"
check "10 of 10 requests to :8000 answered by ${RS[0]}" [ "$(grep -cx "rs=${RS[0]}" "$RVS_TMP/v8000")" -eq 10 ]
hs "${RS[1]}"
check "restarted ${RS[1]}:8000 is back within 3 s" until_state "${RS[1]}:8000" up 3000
nginx_rs_stop
check "HTTP_GET takes the killed nginx down (${RS[2]}:80) within 3 s" until_state "${RS[2]}:80" down 3000
check "... and ${RS[0]}:80" until_state "${RS[0]}:80" down 3000
nginx_rs_start "$NS_S" "${RS[@]}" || fail "nginx did not restart"
check "restarted nginx is back (${RS[0]}:80) within 3 s" until_state "${RS[0]}:80" up 3000
check "... all five up" until_state "${RS[2]}:80" up 3000
C bash -c "for i in \$(seq 30); do curl -s -m 2 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/v80"
check "30 of 30 requests to :80 over three real servers" bash -c "[ \$(grep -c '^rs=' '$RVS_TMP/v80') -eq 30 ] && [ \$(sort -u '$RVS_TMP/v80' | wc -l) -eq 3 ]"

echo "== (c) a ${FLOOD_S} s hping3 flood at $GW_C:22 while wrk runs through the VIP"
rl0=$(counter drop.exception_rate_limited)
rx0=$(G cat /sys/class/net/$KERNEL_C/statistics/rx_packets)
rxs0=$(G cat /sys/class/net/$KERNEL_S/statistics/rx_packets)
# TCP segments the gateway's kernel took in, from any interface (/proc/net/snmp Tcp InSegs).
in_segs() { G awk '/^Tcp:/ { n++; if (n == 2) print $11 }' /proc/net/snmp; }
seg0=$(in_segs)
C timeout $((FLOOD_S + 30)) wrk -t1 -c16 -d"${FLOOD_S}s" "http://$VIP/" > "$RVS_TMP/wrk" 2>&1 &
wrk_pid=$!
sleep 0.3
t0=$(date +%s%N)
C timeout "$FLOOD_S" hping3 --flood -q -S -p 22 "$GW_C" > "$RVS_TMP/hping" 2>&1
t1=$(date +%s%N)
rx1=$(G cat /sys/class/net/$KERNEL_C/statistics/rx_packets)
rxs1=$(G cat /sys/class/net/$KERNEL_S/statistics/rx_packets)
seg1=$(in_segs)
wait "$wrk_pid"
rl1=$(counter drop.exception_rate_limited)
sent=$(grep -oE '^[0-9]+ packets transmitted' "$RVS_TMP/hping" | cut -d' ' -f1)
ms=$(( (t1 - t0) / 1000000 ))
kern=$((rx1 - rx0))
bound=$(( RATE * ms / 1000 + BURST * 2 + RATE / 10 ))
sed 's/^/    /' "$RVS_TMP/wrk"
echo "    hping3: ${sent:-?} SYNs in $ms ms; the kernel received $kern frames on $KERNEL_C and $((seg1 - seg0)) TCP segments (bound $bound); rate-limited drops $((rl1 - rl0))"
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
rps=$(awk '/^Requests\/sec:/ {print $2}' "$RVS_TMP/wrk")
check "the flood is counted: exception_rate_limited rose by $((rl1 - rl0))" [ $((rl1 - rl0)) -gt 0 ]
check "the kernel saw at most rate * time + burst ($kern <= $bound)" [ "$kern" -le "$bound" ]
taps=$(( kern + rxs1 - rxs0 ))
check "the kernel's TCP took in nothing but what came through the TAPs ($((seg1 - seg0)) <= $taps)" [ $((seg1 - seg0)) -le "$taps" ]
check "the kernel saw the flood up to the limit ($kern >= $((RATE * ms / 2000)))" [ "$kern" -ge $((RATE * ms / 2000)) ]
check "wrk through the VIP ran (requests/s: ${rps:-none})" [ -n "$rps" ]
check "wrk: 0 socket errors (${errs:-0})" [ "${errs:-0}" -eq 0 ]
check "wrk: 0 non-2xx responses (${non2xx:-0})" [ "${non2xx:-0}" -eq 0 ]
check "health checks held through the flood ($(health))" [ "$(health)" = ' 5 "health":"up"' ]
got=$(C timeout 5 socat -T 3 - "TCP:$GW_C:7000" </dev/null 2>&1)
check "the gateway's kernel service answers after the flood" [ "$got" = "hello-from-gateway-kernel" ]
echo "rvs_exception flood_sent=${sent:-0} flood_ms=$ms kernel_rx=$kern rate_limited=$((rl1 - rl0)) wrk_rps=${rps:-0}" | tee "$RVS_TMP/exception.result"

echo "== kill -9 of rvsd removes its kernel interfaces"
kill -9 "$RVSD_PID"; wait "$RVSD_PID" 2>/dev/null; RVSD_PID=
gone=
for _ in $(seq 1 50); do
    if ! G test -e "/sys/class/net/$KERNEL_C" && ! G test -e "/sys/class/net/$KERNEL_S"; then gone=1; break; fi
    sleep 0.1
done
check "$KERNEL_C and $KERNEL_S are gone" [ -n "$gone" ]
finish
