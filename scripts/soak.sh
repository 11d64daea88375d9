#!/usr/bin/env bash
# Soak (not part of the CI run): SOAK_SECONDS (default 600) of mixed load through rvsd on the
# namespace topology — wrk keep-alive load in 60 s rounds, a UDP request loop, a spoofed-source SYN
# flood burst (5 s) every 60 s, and a pool change every second (a spare real server added,
# re-weighted and removed in turn). Reports resident memory over time (must be flat once warm),
# panics (none), failed requests on the real servers that stay (none), and whether the packet
# accounting balances on every worker: rx + arp_requests = tx + drops (- tx_full) + learned + held.
# Writes the report to $SOAK_REPORT (default docs/soak-report.txt). Bounded in time; cleans up.
set -uo pipefail
. "$(dirname "$0")/lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_REPORT=${SOAK_REPORT:-$RVS_ROOT/docs/soak-report.txt}
cargo build --release --workspace --quiet --manifest-path "$RVS_ROOT/Cargo.toml"
topo_up
export RVSADM_SOCKET="$RVS_SOCK"
C() { ip netns exec "$NS_C" "$@"; }
cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 200000

[conn.timeouts]
syn_recv = 10
time_wait = 30
udp = 30

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "wlc"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]

[[services]]
proto = "udp"
vip = "$VIP:53"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:53" }, { addr = "${RS[1]}:53" }]
CFG
# Keep-alive connections stay up for the whole round (nginx would otherwise close them every 1000
# requests): the soak measures what happens to established traffic. New connections during a
# spoofed SYN flood without SYN-proxy compete with the flood for local ports; that is reported.
NGINX_RS_KEEPALIVE_REQUESTS=100000000 NGINX_RS_BIG_MB=0 nginx_rs_start "$NS_S" "${RS[@]}" "${RS_SPARE[@]}" || exit 1
for a in "${RS[0]}" "${RS[1]}"; do bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$a" 53; done
rvsd_start "$cfg" || exit 1
t_end=$(( $(date +%s) + SOAK_SECONDS ))
log "soak: ${SOAK_SECONDS} s"

# Memory sampler.
( while [ "$(date +%s)" -lt "$t_end" ]; do
      kill -0 "$RVSD_PID" 2>/dev/null || break
      printf '%s %s\n' "$(date +%s)" "$(awk '/^VmRSS/ {print $2}' /proc/"$RVSD_PID"/status)"
      sleep 10
  done ) > "$RVS_TMP/rss" &
sampler=$!

# UDP loop: one request a few ms apart, counting answers.
C python3 - "$VIP" "$t_end" > "$RVS_TMP/udp" <<'PY' &
import socket, sys, time
vip, end = sys.argv[1], int(sys.argv[2])
sent = got = 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
while time.time() < end - 2:
    sent += 1
    s.sendto(b"x%d" % sent, (vip, 53))
    try:
        if s.recvfrom(2048)[0] == b"x%d" % sent:
            got += 1
    except socket.timeout:
        pass
    time.sleep(0.005)
print("udp sent=%d answered=%d" % (sent, got))
PY
udp_pid=$!

# Pool churn, once a second: add a spare, re-weight, remove it.
( i=0
  while [ "$(date +%s)" -lt "$t_end" ]; do
      spare=${RS_SPARE[$(( (i / 3) % 2 ))]}
      case $((i % 3)) in
          0) "$RVSADM" -a -t "$VIP:80" -r "$spare:80" -b -w 2 ;;
          1) "$RVSADM" -e -t "$VIP:80" -r "$spare:80" -b -w 5 ;;
          2) "$RVSADM" -d -t "$VIP:80" -r "$spare:80" ;;
      esac >/dev/null 2>>"$RVS_TMP/churn.err"
      echo $((i + 1)) > "$RVS_TMP/churn.count"
      i=$((i + 1)); sleep 1
  done ) &
churn=$!

round=0; wrk_err=0; wrk_non2xx=0; wrk_req=0
while [ $(( t_end - $(date +%s) )) -gt 15 ]; do
    round=$((round + 1))
    left=$(( t_end - $(date +%s) - 5 )); d=$(( left < 60 ? left : 60 ))
    # ~50k SYN/s for 5 s: a flood, paced so it does not starve this 2-core machine's CPUs outright.
    C timeout $((d + 5)) hping3 -i u20 --rand-source -S -p 80 "$VIP" >/dev/null 2>&1 &
    flood=$!
    ( sleep 5; kill "$flood" 2>/dev/null ) &
    C timeout $((d + 30)) wrk -t2 -c32 -d"${d}s" --timeout 10s "http://$VIP/" > "$RVS_TMP/wrk.$round" 2>&1
    e=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk.$round"); e=${e:-0}
    n=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk.$round"); n=${n:-0}
    r=$(awk '/requests in/ {print $1}' "$RVS_TMP/wrk.$round"); r=${r:-0}
    wrk_err=$((wrk_err + e)); wrk_non2xx=$((wrk_non2xx + n)); wrk_req=$((wrk_req + r))
    log "round $round: ${r} requests, ${e} socket errors, ${n} non-2xx, RSS $(awk '/^VmRSS/ {print $2}' /proc/"$RVSD_PID"/status) kB"
done
wait "$udp_pid" "$churn" 2>/dev/null
kill "$sampler" 2>/dev/null
sleep 2

stats=$(api '{"op":"stats"}')
alive=$(kill -0 "$RVSD_PID" 2>/dev/null && echo yes || echo no)
panics=$(grep -c -i panic "$RVS_TMP/rvsd.err")
churn_failed=$(grep -c . "$RVS_TMP/churn.err")
{
    echo "rvs soak report — $(date -u +%FT%TZ), $(nproc) CPUs, ${SOAK_SECONDS} s"
    echo "command: SOAK_SECONDS=$SOAK_SECONDS scripts/soak.sh"
    echo
    echo "load: wrk -t2 -c32 keep-alive in 60 s rounds; UDP request loop; 5 s spoofed SYN flood (hping3 -i u20 --rand-source, ~50k SYN/s) each round; a pool change every second"
    echo "wrk: $wrk_req requests, $wrk_err socket errors, $wrk_non2xx non-2xx"
    cat "$RVS_TMP/udp"
    echo "pool changes: $(cat "$RVS_TMP/churn.count" 2>/dev/null || echo 0), refused: $churn_failed"
    echo "rvsd alive at the end: $alive; panics in its log: $panics"
    echo
    echo "resident memory (kB) over time:"
    awk 'NR==1 {t0=$1} {printf "  t=%4ds  %s\n", $1-t0, $2}' "$RVS_TMP/rss"
    python3 - "$RVS_TMP/rss" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
warm = [r for r in rows if r[0] - rows[0][0] >= 60] or rows
lo, hi = min(r[1] for r in warm), max(r[1] for r in warm)
print("after warm-up (t >= 60 s): min %d kB, max %d kB, spread %.2f %%" % (lo, hi, 100.0 * (hi - lo) / max(lo, 1)))
PY
    echo
    echo "packet accounting per worker (rx + arp_requests = tx + drops - tx_full + arp_learned + neigh_held):"
    python3 -c '
import json, sys
for w in json.loads(sys.argv[1])["workers"]:
    c = dict((k, v) for k, v in w["counters"])
    g = lambda k: c.get(k, 0)
    drops = sum(v for k, v in c.items() if k.startswith("drop."))
    lhs = g("rx_packets") + g("arp_requests_sent")
    rhs = g("tx_packets") + drops - g("drop.tx_full") + g("arp_learned") + g("neigh_held")
    print("  worker %d: rx %d, tx %d, drops %d -> %d = %d (%s)" % (w["worker"], g("rx_packets"), g("tx_packets"), drops, lhs, rhs, "balanced" if lhs == rhs else "OFF BY %d" % (lhs - rhs)))
    print("  drops by reason: " + ", ".join("%s=%d" % (k[5:], v) for k, v in c.items() if k.startswith("drop.")))' "$stats"
} | tee "$SOAK_REPORT"
rvsd_stop
ok_all=1
[ "$alive" = yes ] && [ "$panics" -eq 0 ] && [ "$wrk_err" -eq 0 ] && [ "$wrk_non2xx" -eq 0 ] || ok_all=0
grep -q "OFF BY" "$SOAK_REPORT" && ok_all=0
[ $ok_all -eq 1 ] && echo "soak: PASS" || { echo "soak: FAIL"; exit 1; }
