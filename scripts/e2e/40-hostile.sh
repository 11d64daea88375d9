#!/usr/bin/env bash
# Faults and floods end to end: a spoofed-source SYN and UDP flood fills the connection table
# without evicting an established download (sha256 checked, the table never over capacity); then a
# graceful drain: after SIGTERM a download in progress completes (sha256 checked) while a new
# connection is refused, and rvsd exits by itself once nothing is left to drain.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo_up
C() { ip netns exec "$NS_C" "$@"; }

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 2000
drain_grace_s = 30

[conn.timeouts]
syn_recv = 3
udp = 3

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }]

[[services]]
proto = "udp"
vip = "$VIP:53"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:53" }]
CFG
NGINX_RS_BIG_MB=100 nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx did not start"; finish; exit 1; }
want=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
rvsd_start "$cfg" || exit 1
cap=$(counter conn_capacity)

echo "== a spoofed-source SYN + UDP flood (4 s) does not evict an established download"
C sh -c "curl -s -m 60 --limit-rate 15M --noproxy '*' http://$VIP/big | sha256sum | cut -d' ' -f1" > "$RVS_TMP/dl1" &
dl=$!
sleep 1
C timeout 4 hping3 --flood --rand-source -S -p 80 "$VIP" > /dev/null 2>&1 &
C timeout 4 hping3 --flood --rand-source --udp -p 53 -d 32 "$VIP" > /dev/null 2>&1 &
max=0
for _ in $(seq 1 16); do
    n=$(counter conns); [ "$n" -gt "$max" ] && max=$n
    sleep 0.25
done
wait "$dl"
echo "    table capacity $cap, peak $max, conn_table_full drops $(counter drop.conn_table_full)"
check "the flood filled the table and was refused, counted" [ "$(counter drop.conn_table_full)" -gt 0 ]
check "the table never exceeded its capacity" [ "$max" -le "$cap" ]
check "hitting the limit was logged, rate-limited ($(grep -c 'limit reached' "$RVS_TMP/rvsd.err") lines)" \
    bash -c "n=\$(grep -c 'limit reached.*conn_table_full' '$RVS_TMP/rvsd.err'); [ \$n -ge 1 ] && [ \$n -le 6 ]"
check "the established download survived the flood (sha256 matches)" [ "$(cat "$RVS_TMP/dl1")" = "$want" ]
sleep 4
check "flood entries expired by their (shortened) timeouts ($(counter conns) left)" [ "$(counter conns)" -lt 10 ]
check "new connections work after the flood" C curl -s -m 3 --noproxy '*' -o /dev/null "http://$VIP/"

echo "== graceful drain: SIGTERM during a download"
C sh -c "curl -s -m 60 --limit-rate 25M --noproxy '*' http://$VIP/big | sha256sum | cut -d' ' -f1" > "$RVS_TMP/dl2" &
dl=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$RVSD_PID"
sleep 0.3
C curl -s -m 3 --noproxy '*' -o /dev/null "http://$VIP/"; rc=$?
check "a new connection after SIGTERM is refused (curl exit $rc = couldn't connect)" [ "$rc" -eq 7 ]
check "rvsd still running while the download drains" kill -0 "$RVSD_PID"
wait "$dl"
check "the download started before SIGTERM completed (sha256 matches)" [ "$(cat "$RVS_TMP/dl2")" = "$want" ]
for _ in $(seq 1 100); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$RVSD_PID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
RVSD_PID=
check "rvsd exited by itself once drained (${ms} ms after SIGTERM, grace 30 s), status $rc" [ "$rc" -eq 0 -a "$ms" -lt 25000 ]
check "final counters printed with the refusal" grep -q "refused_draining=1" "$RVS_TMP/rvsd.out"
grep -h "drain" "$RVS_TMP/rvsd.err" | sed 's/^/    /'

finish
