#!/usr/bin/env bash
# Prometheus metrics end to end: rvsd serves GET /metrics on 127.0.0.1:9100 of its namespace
# ([metrics] listen); `promtool check metrics` accepts a scrape; a real Prometheus server (Debian's
# package, our own process with a temp config and TSDB, inside the gateway namespace, scraping every
# 1 s) has the target up; curls through the VIP move counters that we read back through
# Prometheus's query API; hostile HTTP clients (silent connections, a dribbler, a 1 MiB request,
# wrong paths and methods, a connection flood) are cut off with 408/431/404/405/503 while curls
# through the VIP and a concurrent scrape still succeed.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
if command -v cargo >/dev/null 2>&1; then
    (cd "$RVS_ROOT" && cargo build --release --quiet -p rvsd -p rvs-control) || { echo "build failed" >&2; exit 1; }
fi
for t in prometheus promtool; do
    command -v "$t" >/dev/null || { echo "$t missing: run scripts/setup.sh" >&2; exit 1; }
done
topo_up
G() { ip netns exec "$NS_G" "$@"; }
C() { ip netns exec "$NS_C" "$@"; }
METRICS=127.0.0.1:9100
PROM=127.0.0.1:9090   # inside the gateway namespace: nothing listens in the root namespace

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 65536

[metrics]
listen = "$METRICS"
max_clients = 8
read_timeout_ms = 1000

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }]

# Health states: nothing listens on ${RS_SPARE[0]}:80, so its check fails: removed from 8080's pool
# (keepalived's default), kept at weight 0 in 8081's (inhibit_on_failure).
[[services]]
proto = "tcp"
vip = "$VIP:8080"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS_SPARE[0]}:80" }]
check = { kind = "tcp", interval_ms = 200, timeout_ms = 100, rise = 1, fall = 1 }

[[services]]
proto = "tcp"
vip = "$VIP:8081"
inhibit_on_failure = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS_SPARE[0]}:80" }]
check = { kind = "tcp", interval_ms = 200, timeout_ms = 100, rise = 1, fall = 1 }
CFG

echo "== a bad [metrics] section: one line naming the field, rvsd does not start"
sed "s|^listen = \"$METRICS\"|listen = \"127.0.0.1\"|" "$cfg" > "$RVS_TMP/bad.toml"
out=$(G "$RVSD" -c "$RVS_TMP/bad.toml" --check 2>&1); rc=$?
check "listen without a port refused (rc=$rc): $out" \
    bash -c "[ $rc -ne 0 ] && [ \"\$(printf '%s\n' \"\$0\" | grep -c .)\" -eq 1 ] && grep -q '^rvsd: config error: metrics.listen: ' <<<\"\$0\"" "$out"

ip netns exec "$NS_G" python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 9100)); s.listen(); print("bound", flush=True); time.sleep(30)' > "$RVS_TMP/holder" &
holder=$!; _bg_pids+=("$holder")
for _ in $(seq 1 40); do grep -q bound "$RVS_TMP/holder" && break; sleep 0.05; done
out=$(G timeout 20 "$RVSD" -c "$cfg" 2>&1); rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "listen address in use: rvsd stops before DPDK starts (rc=$rc): $out" \
    bash -c "[ $rc -ne 0 ] && [ \"\$(printf '%s\n' \"\$0\" | grep -c .)\" -eq 1 ] && grep -q '^rvsd: metrics.listen: cannot listen on $METRICS: ' <<<\"\$0\"" "$out"
check "the package's own prometheus service is not running (scripts/setup.sh)" \
    bash -c '! systemctl is-active --quiet prometheus 2>/dev/null && ! service prometheus status >/dev/null 2>&1'

NGINX_RS_BIG_MB=0 nginx_rs_start "$NS_S" "${RS[0]}" "${RS[1]}" || { fail "nginx did not start"; finish; exit 1; }
rvsd_start "$cfg" || exit 1

scrape() { G curl -s -m 3 --noproxy '*' "$@" "http://$METRICS/metrics"; }
# vip_curls N: N requests through the VIP; prints how many answered from a real server.
vip_curls() { C bash -c "for i in \$(seq $1); do curl -s -m 3 --noproxy '*' http://$VIP/; done" | grep -c '^rs='; }
# promq EXPR: the value of an instant query through Prometheus's HTTP API ("none" if no sample).
promq() {
    G curl -s -m 3 --noproxy '*' -G "http://$PROM/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
    v = r["data"]["result"]
    print(v[0]["value"][1] if r["status"] == "success" and v else "none")
except Exception:
    print("none")'
}
# wait_prom EXPR TEST SECONDS: poll until the query's value passes `[ value TEST ]`, e.g. "-ge 20".
wait_prom() {
    local v i
    for i in $(seq 1 $(($3 * 4))); do
        v=$(promq "$1")
        if [ "$v" != none ] && python3 -c "import sys; a=float(sys.argv[1]); b=float(sys.argv[3]); sys.exit(0 if {'-ge': a>=b, '-eq': a==b, '-gt': a>b}[sys.argv[2]] else 1)" "$v" $2; then
            echo "$v"; return 0
        fi
        sleep 0.25
    done
    echo "$v"; return 1
}

echo "== a scrape of rvsd, checked by promtool"
scrape -D "$RVS_TMP/scrape.h" > "$RVS_TMP/scrape.txt"
check "200 with text format 0.0.4" grep -q "^Content-Type: text/plain; version=0.0.4" "$RVS_TMP/scrape.h"
promtool check metrics < "$RVS_TMP/scrape.txt" > "$RVS_TMP/promtool.out" 2>&1; rc=$?
sed 's/^/    /' "$RVS_TMP/promtool.out" | head -20
check "promtool check metrics passes (rc=$rc)" [ "$rc" -eq 0 ]
ndrops=$(grep -c '^rvs_drops_total{worker="0",reason="' "$RVS_TMP/scrape.txt")
check "every drop reason exposed ($ndrops reasons)" [ "$ndrops" -ge 50 ]
for f in rvs_rx_packets_total rvs_tx_bytes_total rvs_conns rvs_conn_capacity rvs_handoff_in_total \
    rvs_busy_cycles_total rvs_synproxy_synacks_total rvs_synproxy_cookies_valid_total rvs_synproxy_half_open \
    rvs_service_connections_total rvs_real_active_conns rvs_real_in_bytes_total rvs_real_health; do
    check "family $f present" grep -q "^$f{" "$RVS_TMP/scrape.txt"
done
check "health of ${RS[0]}:80 is unchecked" \
    grep -qx "rvs_real_health{proto=\"tcp\",vip=\"$VIP:80\",rs=\"${RS[0]}:80\",state=\"unchecked\"} 1" "$RVS_TMP/scrape.txt"
scrape -H 'Accept: application/openmetrics-text;version=1.0.0' -D "$RVS_TMP/om.h" > "$RVS_TMP/om.txt"
check "OpenMetrics when asked for, ending in # EOF" \
    bash -c "grep -q '^Content-Type: application/openmetrics-text' '$RVS_TMP/om.h' && [ \"\$(tail -1 '$RVS_TMP/om.txt')\" = '# EOF' ]"

echo "== a real Prometheus server scrapes rvsd every second"
mkdir -p "$RVS_TMP/prom"
cat > "$RVS_TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rvsd
    static_configs:
      - targets: ['$METRICS']
YML
promtool check config "$RVS_TMP/prometheus.yml" >/dev/null 2>&1 || fail "promtool check config"
bg "$NS_G" prometheus --config.file="$RVS_TMP/prometheus.yml" --storage.tsdb.path="$RVS_TMP/prom" \
    --web.listen-address="$PROM" --storage.tsdb.retention.time=1h --log.level=warn
ready=
for _ in $(seq 1 80); do
    if G curl -s -m 1 --noproxy '*' "http://$PROM/-/ready" 2>/dev/null | grep -qi ready; then ready=1; break; fi
    sleep 0.25
done
check "prometheus ready" [ -n "$ready" ]
up=$(wait_prom 'up{job="rvsd"}' "-eq 1" 20)
check "target up (up{job=\"rvsd\"} = $up)" [ "$up" = 1 ]

echo "== health states in Prometheus"
h=$(wait_prom "rvs_real_health{vip=\"$VIP:8080\",rs=\"${RS_SPARE[0]}:80\",state=\"removed\"}" "-eq 1" 10)
check "failed check, default: state=\"removed\" = $h" [ "$h" = 1 ]
h=$(wait_prom "rvs_real_health{vip=\"$VIP:8081\",rs=\"${RS_SPARE[0]}:80\",state=\"inhibited\"}" "-eq 1" 10)
check "failed check, inhibit_on_failure: state=\"inhibited\" = $h" [ "$h" = 1 ]
h=$(wait_prom "rvs_real_health{vip=\"$VIP:8081\",rs=\"${RS[0]}:80\",state=\"up\"}" "-eq 1" 10)
check "passing check: state=\"up\" = $h" [ "$h" = 1 ]
h=$(promq "sum(rvs_real_health{vip=\"$VIP:8081\",rs=\"${RS_SPARE[0]}:80\"})")
check "exactly one state at a time (sum = $h)" [ "$h" = 1 ]

echo "== traffic through the VIP moves counters, read back through the query API"
before=$(wait_prom "sum(rvs_service_connections_total{vip=\"$VIP:80\"})" "-ge 0" 10)
rx0=$(promq 'sum(rvs_rx_packets_total)')
n=$(vip_curls 20)
check "20 of 20 curls through the VIP ($n)" [ "$n" -eq 20 ]
after=$(wait_prom "sum(rvs_service_connections_total{vip=\"$VIP:80\"})" "-ge $((before + 20))" 10)
check "rvs_service_connections_total went $before -> $after (+20 expected)" [ "$after" -ge $((before + 20)) ] 2>/dev/null
rx1=$(promq 'sum(rvs_rx_packets_total)')
check "rvs_rx_packets_total moved ($rx0 -> $rx1)" python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)" "$rx0" "$rx1"
per_rs=$(promq "min(rvs_real_connections_total{vip=\"$VIP:80\"})")
check "both real servers got connections (rr; min per real = $per_rs)" python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 10 else 1)" "$per_rs"
check "rvs_service_in_bytes_total > 0 in Prometheus" python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" \
    "$(promq "sum(rvs_service_in_bytes_total{vip=\"$VIP:80\"})" | sed 's/none/0/')"

echo "== hostile HTTP clients: silent, dribbling, huge, wrong path and method, flood"
for p in / /metricsx; do
    code=$(G curl -s -o /dev/null -m 3 -w '%{http_code}' --noproxy '*' "http://$METRICS$p")
    check "GET $p -> 404 ($code)" [ "$code" = 404 ]
done
code=$(G curl -s -o /dev/null -m 3 -w '%{http_code}' --noproxy '*' -X POST "http://$METRICS/metrics")
check "POST /metrics -> 405 ($code)" [ "$code" = 405 ]
cat > "$RVS_TMP/hostile.py" <<'PY'
# Hostile clients of the metrics endpoint, at once: 3 silent connections, one dribbling a request a
# byte every 50 ms (4 s for the whole head), one sending a 1 MiB request head. Prints, per client,
# the status line it got (or the error) and how long the server took to be done with it.
import socket, sys, threading, time
host, port = sys.argv[1].split(":")
addr = (host, int(port))
res = {}

def read_status(s):
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError as e:
        if not data:
            return type(e).__name__
    return data.split(b"\r\n")[0].decode(errors="replace") or "closed"

def silent(i):
    s = socket.create_connection(addr); s.settimeout(10); t = time.time()
    res["silent%d" % i] = (read_status(s), time.time() - t)

def dribble():
    s = socket.create_connection(addr); s.settimeout(10); t = time.time()
    try:
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 60 + b"\r\n\r\n":
            s.send(bytes([b])); time.sleep(0.05)
    except OSError:
        pass
    res["dribble"] = (read_status(s), time.time() - t)

def huge():
    s = socket.create_connection(addr); s.settimeout(10); t = time.time()
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    except OSError:
        pass
    res["huge"] = (read_status(s), time.time() - t)

ts = [threading.Thread(target=silent, args=(i,)) for i in range(3)]
ts += [threading.Thread(target=dribble), threading.Thread(target=huge)]
for t in ts: t.start()
for t in ts: t.join(15)
for k in sorted(res):
    print("%s %s %.1f" % (k, res[k][0].replace(" ", "_"), res[k][1]))
PY
G timeout 20 python3 "$RVS_TMP/hostile.py" "$METRICS" > "$RVS_TMP/hostile.out" 2>&1 &
hostile=$!
sleep 0.3
t0=$(date +%s%N)
scrape -o "$RVS_TMP/during.txt" -w '%{http_code}\n' > "$RVS_TMP/during.code"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a scrape during the attack answers 200 in ${ms} ms" bash -c "[ \"\$(cat '$RVS_TMP/during.code')\" = 200 ] && [ $ms -lt 1000 ]"
n=$(vip_curls 20)
check "20 of 20 curls through the VIP during the attack ($n)" [ "$n" -eq 20 ]
wait "$hostile"
sed 's/^/    /' "$RVS_TMP/hostile.out"
for i in 0 1 2; do
    check "silent$i cut off with 408 within ~1 s" awk -v k="silent$i" '$1 == k && $2 ~ /^HTTP\/1.1_408/ && $3 < 2.5 {f=1} END {exit !f}' "$RVS_TMP/hostile.out"
done
check "dribbler cut off within ~1 s (not 4 s)" awk '$1 == "dribble" && $3 < 2.5 {f=1} END {exit !f}' "$RVS_TMP/hostile.out"
check "1 MiB request refused (431 or reset), quickly" awk '$1 == "huge" && ($2 ~ /^HTTP\/1.1_431/ || $2 ~ /Reset|Pipe/) && $3 < 2.5 {f=1} END {exit !f}' "$RVS_TMP/hostile.out"

echo "== a flood of 30 idle connections: beyond max_clients (8) refused with 503, then served again"
G timeout 30 python3 - "$METRICS" > "$RVS_TMP/flood.out" 2>&1 <<'PY'
import socket, sys, time
host, port = sys.argv[1].split(":")
conns = [socket.create_connection((host, int(port))) for _ in range(30)]
time.sleep(0.3)
codes = []
for s in conns:
    s.settimeout(3)
    try:
        codes.append(s.recv(100).split(b"\r\n")[0].decode() or "closed")
    except OSError as e:
        codes.append(type(e).__name__)
print(sum("503" in c for c in codes), sum("408" in c for c in codes), len(codes))
PY
read -r n503 n408 ntot < "$RVS_TMP/flood.out"
check "flood: ${n503:-?} refused with 503, ${n408:-?} timed out with 408, of ${ntot:-?}" \
    bash -c "[ '${n503:-0}' -ge 20 ] && [ '${n408:-0}' -ge 1 ] && [ $(( ${n503:-0} + ${n408:-0} )) -eq 30 ]"
code=$(scrape -o "$RVS_TMP/after.txt" -w '%{http_code}')
check "scrape after the flood: $code" [ "$code" = 200 ]
for o in timeout too_large not_found bad_method too_many_clients; do
    v=$(awk -v k="rvs_metrics_http_connections_total{outcome=\"$o\"}" '$1 == k {print $2}' "$RVS_TMP/after.txt")
    check "rvs_metrics_http_connections_total{outcome=\"$o\"} = ${v:-absent} counted" [ "${v:-0}" -ge 1 ]
done
up=$(wait_prom 'up{job="rvsd"}' "-eq 1" 5)
check "Prometheus still has the target up ($up)" [ "$up" = 1 ]
check "rvsd still running" kill -0 "$RVSD_PID"

finish
