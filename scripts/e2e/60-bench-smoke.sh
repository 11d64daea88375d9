#!/usr/bin/env bash
# Benchmark smoke: 5 s of scenario a (established UDP flows, both directions) through rvsd, with
# rvs-gen playing the clients and the real servers over memif. Asserts correctness only: every
# delivered frame passed the generator's rewrite checks (0 errors), traffic really flowed in both
# directions, and every flow got its own server-side tuple. Then 2 s each through the other
# forwarding modes (rvs-gen --forward; bench/run.sh's scenario m): NAT both ways, DR and TUN client
# to server only, each rewrite checked (0 errors, flows on both real servers, nothing back where
# nothing may come back). Then 2 s of scenario b (new TCP
# connections, every segment checked) against a SYN-proxied service of the same rvsd: 0 rewrite
# errors and connections completed. No timing assertion (shared machines), but the cycles-per-packet
# figure must exist: rvsd's stats reply carries a positive cycles_per_packet (overall and per
# worker) after traffic, and the generator's result has the gateway's over its measured interval.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
GEN="$RVS_ROOT/target/release/rvs-gen"
# Fixed generator MACs: memif makes up a random one per process, and rvsd's neighbour entries for
# the clients' next hop and the real servers (learned in the first run) must still hold in the next.
GEN_MAC_C=02:52:56:00:00:01
GEN_MAC_S=02:52:56:00:00:02
GEN_PID=

smoke_down() {
    local rc=$?
    set +e
    # memif clients first, then the server.
    [ -n "$GEN_PID" ] && kill -INT "$GEN_PID" 2>/dev/null && sleep 0.5 && kill -9 "$GEN_PID" 2>/dev/null
    if [ -n "$RVSD_PID" ]; then
        kill -INT "$RVSD_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$RVSD_PID" 2>/dev/null
        wait "$RVSD_PID" 2>/dev/null
    fi
    [ -n "${RVS_KEEP_TMP:-}" ] || rm -rf "$RVS_TMP"
    return $rc
}
trap smoke_down EXIT
trap 'exit 130' INT TERM

cfg="$RVS_TMP/rvsd.toml"
cat > "$cfg" <<CFG
version = 1

[eal]
log_level = 4
hugepages = "off"
in_memory = false
file_prefix = "rvs-smoke-$RVS_ID"

[workers]
main_lcore = 0
lcores = [1]

[control]
socket = "$RVS_SOCK"

[[ports]]
name = "client"
device = "net_memif0,role=server,socket=$RVS_TMP/c.sock,id=0"
addr = "$GW_C/24"

[[ports]]
name = "server"
device = "net_memif1,role=server,socket=$RVS_TMP/s.sock,id=0"
addr = "$GW_S/24"

[[routes]]
dst = "198.19.0.0/16"
via = "$CLIENT"

[[services]]
proto = "udp"
vip = "$VIP:9000"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:8000" }, { addr = "${RS[1]}:8000" }]

# The forwarding modes, each on real servers of its own: rvs-gen answers ARP for DR's real servers
# with a MAC per server, which must not meet a neighbour entry another mode's run created.
[[services]]
proto = "udp"
vip = "$VIP:9001"
sched = "rr"
reals = [{ addr = "198.18.1.21:8000", forward = "nat" }, { addr = "198.18.1.22:8000", forward = "nat" }]

[[services]]
proto = "udp"
vip = "$VIP:9002"
sched = "rr"
reals = [{ addr = "198.18.1.31:9002", forward = "dr" }, { addr = "198.18.1.32:9002", forward = "dr" }]

[[services]]
proto = "udp"
vip = "$VIP:9003"
sched = "rr"
reals = [{ addr = "198.18.1.41:9003", forward = "tun" }, { addr = "198.18.1.42:9003", forward = "tun" }]

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
synproxy = true
laddrs = ["198.18.1.101"]
reals = [{ addr = "${RS[0]}:8000" }, { addr = "${RS[1]}:8000" }]
CFG

echo "== rvsd with two memif server ports"
"$RVSD" -c "$cfg" > "$RVS_TMP/rvsd.out" 2> "$RVS_TMP/rvsd.err" &
RVSD_PID=$!
up=0
for _ in $(seq 1 100); do
    if [ -S "$RVS_SOCK" ] && api '{"op":"version"}' >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$RVSD_PID" 2>/dev/null || break
    sleep 0.1
done
check "rvsd up" [ $up -eq 1 ] || { cat "$RVS_TMP/rvsd.err"; finish; exit 1; }

echo "== 5 s of scenario a: 1000 flows, 64-byte frames, both directions"
timeout -s INT -k 5 60 "$GEN" --lcore 0 --file-prefix "rvs-smoke-gen-$RVS_ID" \
    --client-dev "net_memif0,role=client,socket=$RVS_TMP/c.sock,id=0,mac=$GEN_MAC_C" \
    --server-dev "net_memif1,role=client,socket=$RVS_TMP/s.sock,id=0,mac=$GEN_MAC_S" \
    --vip "$VIP:9000" --client-addr "$CLIENT" --gw-client "$GW_C" --gw-server "$GW_S" \
    --lips "$LIP" --reals "${RS[0]}:8000,${RS[1]}:8000" \
    --flows 1000 --size 64 --duration 5 --settle 0.5 --stats-interval 0 --gateway-api "$RVS_SOCK" \
    --json "$RVS_TMP/a.json" > "$RVS_TMP/gen.out" 2> "$RVS_TMP/gen.err" &
GEN_PID=$!
wait "$GEN_PID"; rc=$?
GEN_PID=
cat "$RVS_TMP/gen.out"
check "rvs-gen finished (status $rc)" [ $rc -eq 0 ] || tail -5 "$RVS_TMP/gen.err"

# jfield FILE EXPR: EXPR over the generator's JSON result r, or -1.
jfield() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"r": r}))' "$1" "$2" 2>/dev/null || echo -1; }
field() { jfield "$RVS_TMP/a.json" "$1"; }
errors=$(field 'r["rewrite_errors"]')
c2s=$(field 'r["rx_ok"]["client_to_server"]')
s2c=$(field 'r["rx_ok"]["server_to_client"]')
unique=$(field 'r["server_tuples_unique"]')
check "0 rewrite errors (got $errors)" [ "$errors" -eq 0 ]
check "client-to-server frames checked correct: $c2s (> 10000)" [ "$c2s" -gt 10000 ]
check "server-to-client frames checked correct: $s2c (> 10000)" [ "$s2c" -gt 10000 ]
check "every flow has its own server-side tuple" [ "$unique" = "True" ]
check "rvsd created the 1000 connections" [ "$(counter conns_created)" -eq 1000 ]
# positive X: X is a number above 0.
positive() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$1" 2>/dev/null; }
cpp=$(api '{"op":"stats"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
w = [x.get("cycles_per_packet") for x in r["workers"]]
v = r.get("cycles_per_packet")
ok = lambda x: isinstance(x, (int, float)) and x > 0
print(v if ok(v) and all(map(ok, w)) and r.get("busy_packets", 0) > 0 else -1)' 2>/dev/null || echo -1)
check "stats: cycles_per_packet is a positive number after traffic, overall and per worker ($cpp)" positive "$cpp"
gcpp=$(field 'r["gateway_cycles"]["cycles_per_packet"]')
check "rvs-gen --gateway-api: rvsd's cycles/packet over the measured interval ($gcpp)" positive "$gcpp"
if [ "$errors" != 0 ] || [ "$c2s" -le 10000 ]; then
    echo "rvsd counters:"; api '{"op":"stats"}'
fi

# rvsd_alive: restarts rvsd if the memif server crashed when the last generator left (see above).
rvsd_alive() {
    kill -0 "$RVSD_PID" 2>/dev/null && return 0
    echo "   (rvsd exited after the generator disconnected: restarting it)"
    wait "$RVSD_PID" 2>/dev/null
    "$RVSD" -c "$cfg" >> "$RVS_TMP/rvsd.out" 2>> "$RVS_TMP/rvsd.err" &
    RVSD_PID=$!
    for _ in $(seq 1 100); do
        if [ -S "$RVS_SOCK" ] && api '{"op":"version"}' >/dev/null 2>&1; then return 0; fi
        kill -0 "$RVSD_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# mode_run FORWARD VPORT REALS: 2 s of scenario a through the service in that mode. Before b: the
# segments rvsd still sends for b's connections after its generator left would reach the next
# generator and count as its errors.
mode_run() {
    local fwd=$1 vport=$2 reals=$3 rc
    echo "== 2 s of scenario a through $fwd real servers (VIP port $vport)"
    rvsd_alive || { fail "$fwd: rvsd up"; return; }
    timeout -s INT -k 5 60 "$GEN" --lcore 0 --file-prefix "rvs-smoke-gen-$fwd-$RVS_ID" \
        --client-dev "net_memif0,role=client,socket=$RVS_TMP/c.sock,id=0,mac=$GEN_MAC_C" \
        --server-dev "net_memif1,role=client,socket=$RVS_TMP/s.sock,id=0,mac=$GEN_MAC_S" \
        --vip "$VIP:$vport" --client-addr "$CLIENT" --gw-client "$GW_C" --gw-server "$GW_S" \
        --reals "$reals" --forward "$fwd" --flows 1000 --size 64 --duration 2 --settle 0.5 \
        --stats-interval 0 --json "$RVS_TMP/$fwd.json" > "$RVS_TMP/gen.out" 2> "$RVS_TMP/gen.err" &
    GEN_PID=$!
    wait "$GEN_PID"; rc=$?
    GEN_PID=
    cat "$RVS_TMP/gen.out"
    check "$fwd: rvs-gen finished (status $rc)" [ $rc -eq 0 ] || tail -5 "$RVS_TMP/gen.err"
    fm() { jfield "$RVS_TMP/$fwd.json" "$1"; }
    local errors c2s s2c spread
    errors=$(fm 'r["rewrite_errors"]')
    c2s=$(fm 'r["rx_ok"]["client_to_server"]')
    s2c=$(fm 'r["rx_ok"]["server_to_client"]')
    spread=$(fm 'min(r["flows_per_real"].values())')
    check "$fwd: 0 rewrite errors (got $errors)" [ "$errors" -eq 0 ]
    check "$fwd: client-to-server frames checked correct: $c2s (> 10000)" [ "$c2s" -gt 10000 ]
    if [ "$fwd" = nat ]; then
        check "$fwd: server-to-client frames checked correct: $s2c (> 10000)" [ "$s2c" -gt 10000 ]
    else
        check "$fwd: nothing came back to the clients (one way: $s2c)" [ "$s2c" -eq 0 ]
    fi
    check "$fwd: flows on both real servers (the fewest: $spread)" [ "$spread" -gt 0 ]
}
mode_run nat 9001 198.18.1.21:8000,198.18.1.22:8000
mode_run dr 9002 198.18.1.31:9002,198.18.1.32:9002
mode_run tun 9003 198.18.1.41:9003,198.18.1.42:9003

echo "== 2 s of scenario b: new TCP connections to the SYN-proxied service (at most 20k/s)"
timeout -s INT -k 5 60 "$GEN" --lcore 0 --file-prefix "rvs-smoke-gen-b-$RVS_ID" \
    --client-dev "net_memif0,role=client,socket=$RVS_TMP/c.sock,id=0,mac=$GEN_MAC_C" \
    --server-dev "net_memif1,role=client,socket=$RVS_TMP/s.sock,id=0,mac=$GEN_MAC_S" \
    --vip "$VIP:80" --client-addr "$CLIENT" --gw-client "$GW_C" --gw-server "$GW_S" \
    --lips 198.18.1.101 --reals "${RS[0]}:8000,${RS[1]}:8000" \
    --scenario b --expect-synproxy --window 256 --conn-rate 20000 --duration 2 --settle 0.5 \
    --stats-interval 0 --json "$RVS_TMP/b.json" > "$RVS_TMP/gen.out" 2> "$RVS_TMP/gen.err" &
GEN_PID=$!
# rvsd's SYN-proxy counter, sampled while the generator runs: DPDK 22.11's memif server sometimes
# crashes when its client disconnects, so rvsd may be gone once the generator has exited.
(
    while kill -0 "$GEN_PID" 2>/dev/null; do
        v=$(counter synproxy_handshakes 2>/dev/null) && [ -n "$v" ] && echo "$v" > "$RVS_TMP/hs.new" && mv "$RVS_TMP/hs.new" "$RVS_TMP/hs"
        sleep 0.3
    done
) &
SAMPLER=$!
wait "$GEN_PID"; rc=$?
GEN_PID=
wait "$SAMPLER" 2>/dev/null
cat "$RVS_TMP/gen.out"
check "rvs-gen scenario b finished (status $rc)" [ $rc -eq 0 ] || tail -5 "$RVS_TMP/gen.err"
fieldb() { jfield "$RVS_TMP/b.json" "$1"; }
berrors=$(fieldb 'r["rewrite_errors"]')
completed=$(fieldb 'r["conns"]["completed"]')
check "scenario b: 0 rewrite errors (got $berrors)" [ "$berrors" -eq 0 ]
check "scenario b: connections completed through the SYN-proxy: $completed (> 0)" [ "$completed" -gt 0 ]
hs=$(cat "$RVS_TMP/hs" 2>/dev/null || echo 0)
check "rvsd completed SYN-proxy handshakes while the generator ran: $hs (> 0)" [ "$hs" -gt 0 ]


echo "== 2 s of scenario a in one process: rvsd's worker loop behind ring ports (no memif)"
# The separate rvsd is done: it would share the gateway lcore's CPU.
[ -n "$RVSD_PID" ] && kill -INT "$RVSD_PID" 2>/dev/null
for _ in $(seq 1 50); do kill -0 "$RVSD_PID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$RVSD_PID" 2>/dev/null; wait "$RVSD_PID" 2>/dev/null; RVSD_PID=
timeout -s INT -k 5 60 "$GEN" --lcore 0 --gateway-lcore 1 --file-prefix "rvs-smoke-inproc-$RVS_ID" \
    --inproc-gateway "$cfg" \
    --vip "$VIP:9000" --client-addr "$CLIENT" --gw-client "$GW_C" --gw-server "$GW_S" \
    --lips "$LIP" --reals "${RS[0]}:8000,${RS[1]}:8000" \
    --flows 1000 --size 64 --duration 2 --settle 0.5 --stats-interval 0 \
    --json "$RVS_TMP/inproc.json" > "$RVS_TMP/gen.out" 2> "$RVS_TMP/gen.err"
rc=$?
cat "$RVS_TMP/gen.out"
check "in-process rvs-gen finished (status $rc)" [ $rc -eq 0 ] || tail -5 "$RVS_TMP/gen.err"
fieldi() { jfield "$RVS_TMP/inproc.json" "$1"; }
ierrors=$(fieldi 'r["rewrite_errors"]')
ic2s=$(fieldi 'r["rx_ok"]["client_to_server"]')
is2c=$(fieldi 'r["rx_ok"]["server_to_client"]')
icreated=$(fieldi 'r["inproc_gateway_counters"]["conns_created"]')
check "in-process: 0 rewrite errors (got $ierrors)" [ "$ierrors" -eq 0 ]
check "in-process: frames checked correct both ways ($ic2s, $is2c; > 10000 each)" [ "$ic2s" -gt 10000 -a "$is2c" -gt 10000 ]
check "in-process: the gateway created the 1000 connections ($icreated)" [ "$icreated" -eq 1000 ]
icpp=$(fieldi 'r["gateway_cycles"]["cycles_per_packet"]')
check "in-process: the gateway's cycles/packet over the measured interval ($icpp)" positive "$icpp"
finish
