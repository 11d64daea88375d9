#!/usr/bin/env bash
# rvs demo: builds rvsd, creates a throwaway namespace topology (client, gateway, 3 real servers),
# runs the gateway on an embedded default config, and shows it doing its job: ping of the gateway,
# HTTP through the VIP split over the real servers, UDP through the VIP, and the counters.
# Everything is torn down at the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then echo "demo: run as root (namespaces, DPDK)" >&2; exit 1; fi
if ! pkg-config --exists libdpdk 2>/dev/null || ! command -v curl >/dev/null; then
    bash scripts/setup.sh
fi
echo "demo: building (release)..."
cargo build --release --workspace --quiet

. scripts/lib/topo.sh
topo_up

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 65536

# HTTP: round robin over three real servers, client address passed to them as TOA.
[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
toa = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
check = { kind = "http", path = "/", interval_ms = 500, timeout_ms = 300, rise = 2, fall = 2 }

# UDP request/response.
[[services]]
proto = "udp"
vip = "$VIP:7"
sched = "wlc"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:7" }]
CFG

# Real servers: a page naming the server, and a UDP echo.
for a in "${RS[@]}"; do
    mkdir -p "$RVS_TMP/www-$a"
    echo "hello from real server $a" > "$RVS_TMP/www-$a/index.html"
    bg "$NS_S" python3 -m http.server --bind "$a" --directory "$RVS_TMP/www-$a" 80 >/dev/null 2>&1
done
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "${RS[0]}" 7
sleep 1

say "rvsd -c rvsd.toml   (in namespace $NS_G, owning veths gc/gs through DPDK af_packet)"
rvsd_start "$cfg"
sed -n '1,3p' "$RVS_TMP/rvsd.toml" >/dev/null
grep -h "port up\|worker started" "$RVS_TMP/rvsd.err" | sed 's/^/  /' || true

say "ping -c 3 $GW_C   (answered by rvsd's worker, not the kernel)"
ip netns exec "$NS_C" ping -c 3 -i 0.2 -W 2 "$GW_C"

say "for i in \$(seq 12); do curl -s http://$VIP/; done | sort | uniq -c"
for i in $(seq 12); do ip netns exec "$NS_C" curl -s -m 3 "http://$VIP/"; done | sort | uniq -c

say "echo ping | nc -u $VIP 7   (UDP through the VIP)"
ip netns exec "$NS_C" python3 - "$VIP" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], 7)); print(s.recvfrom(2048)[0].decode())
PY

say "the real servers saw the gateway's local address, not the client:"
ip netns exec "$NS_S" ss -tn state time-wait '( sport = :80 )' | head -4

say "rvsadm -Ln"
"$RVSADM" --socket "$RVS_SOCK" -Ln

say "rvsadm -Ln --stats"
"$RVSADM" --socket "$RVS_SOCK" -Ln --stats

say "rvsadm -e -t $VIP:80 -r ${RS[2]}:80 -w 0   (drain .13), then 6 requests"
"$RVSADM" --socket "$RVS_SOCK" -e -t "$VIP:80" -r "${RS[2]}:80" -w 0
for i in $(seq 6); do ip netns exec "$NS_C" curl -s -m 3 "http://$VIP/"; done | sort | uniq -c

say "the health check takes a stopped real server out: kill the server on ${RS[0]}"
kill "${_bg_pids[0]}" 2>/dev/null
sleep 1.5
"$RVSADM" --socket "$RVS_SOCK" -Ln
grep -h "health:" "$RVS_TMP/rvsd.err" | sed 's/^/  /' || true
for i in $(seq 4); do ip netns exec "$NS_C" curl -s -m 3 "http://$VIP/"; done | sort | uniq -c

say "rvsd counters (API: {\"op\":\"stats\"} on $RVS_SOCK)"
api '{"op":"stats"}' | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print("  worker %d:" % w["worker"])
    for k, v in w["counters"]:
        print("    %-22s %d" % (k, v))'

say "Ctrl-C (SIGINT) to rvsd"
rvsd_stop
cat "$RVS_TMP/rvsd.out"
echo
echo "demo: done (stopped in ${RVSD_STOP_MS} ms); tearing the topology down"
