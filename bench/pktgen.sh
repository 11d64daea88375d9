#!/usr/bin/env bash
# Scenario a with pktgen-dpdk as the generator: rvsd between pktgen's two memif ports, then
# dpdk-testpmd --forward-mode=macswap in rvsd's place, same transport, same cores, same profile
# (bench/profiles/pktgen_a_udp.lua), alternating, median of --runs. Prints the forwarded Mpps, loss
# and the rvsd/testpmd ratio per flow count, with the machine's load; --out FILE also writes it.
#
#   bench/pktgen.sh [--pktgen PATH] [--flows "1000 24576"] [--runs 3] [--duration S] [--warmup S]
#                   [--cpus 2|3] [--out FILE]
#
# pktgen-dpdk is not part of rvs and CI cannot download it: when no pktgen binary is found
# (--pktgen, $PKTGEN, or `pktgen` on PATH) this script says so and exits 0. How to build it
# (23.03 against DPDK 22.11, four small patches) is in docs/benchmarking.md ("pktgen-dpdk").
#
# Layout on 2 CPUs (--cpus 2, the default on fewer than 4 CPUs): pktgen's main lcore
# and its one forwarding lcore, which serves both ports, on CPU 0 (`--lcores 0@0,1@0`,
# `-m "1.[0-1]"`); rvsd's worker (or testpmd's forwarding core) on CPU 1. --cpus 3 (4+ CPUs):
# pktgen on CPUs 0, 2 and 3, one lcore per port (`-l 0,2,3 -m "[2].0,[3].1"`). Flow counts above
# 24,576 use pktgen's pcap mode (bench/profiles/pktgen_flows_pcap.py). Every process is bounded
# in time and killed on exit; memif sockets are abstract, named under a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PKTGEN_BIN=${PKTGEN:-}
FLOWS_LIST="1000 24576"
RUNS=3
MEASURE=5
WARMUP=2
NCPU=$(nproc)
CPUS=
OUT=
while [ $# -gt 0 ]; do
    case "$1" in
        --pktgen) PKTGEN_BIN=$2; shift ;;
        --flows) FLOWS_LIST=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --duration) MEASURE=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --cpus) CPUS=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed '/^set -euo/,$d' "$0" | tail -n +2; exit 0 ;;
        *) echo "bench/pktgen.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$PKTGEN_BIN" ] || PKTGEN_BIN=$(command -v pktgen || true)
if [ -z "$PKTGEN_BIN" ] || [ ! -x "$PKTGEN_BIN" ]; then
    echo "bench/pktgen.sh: pktgen-dpdk not found (--pktgen PATH or \$PKTGEN): skipped"
    exit 0
fi
command -v dpdk-testpmd >/dev/null || { echo "bench/pktgen.sh: dpdk-testpmd not found: skipped"; exit 0; }
[ -n "$CPUS" ] || { if [ "$NCPU" -ge 4 ]; then CPUS=3; else CPUS=2; fi; }

cargo build --release --quiet --bin rvsd
RVSD="$ROOT/target/release/rvsd"
PROFILE="$ROOT/bench/profiles/pktgen_a_udp.lua"
RVSD_CLIENT_MAC=02:00:5e:00:53:01
RVSD_SERVER_MAC=02:00:5e:00:53:02

TMP=$(mktemp -d /tmp/rvs-pktgen.XXXX)
SERVER_PID=
PG_PID=
REPORT="$TMP/report.txt"

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }

stop_pid() { # PID: INT, then KILL after 5 s
    local p=$1
    [ -n "$p" ] || return 0
    kill -INT "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    set +e
    # pktgen (the memif client) goes first: testpmd's memif server may crash on a disconnect.
    stop_pid "$PG_PID"; PG_PID=
    stop_pid "$SERVER_PID"; SERVER_PID=
    [ -n "${RVS_BENCH_KEEP:-}" ] || rm -rf "$TMP"
    return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rvsd: client port 198.18.0.1/24 (fixed MAC), server port 198.18.1.1/24; UDP VIP 198.18.0.100:53
# to the real server 198.18.1.11 (pktgen's port 1) from local addresses 198.18.1.100... (one per
# ~60k connections: a local port is unique per local address and real server).
write_conf() { # FLOWS
    local flows=$1 nl i laddrs=
    nl=$(( flows / 60000 + 1 ))
    for ((i = 0; i < nl; i++)); do laddrs+="${laddrs:+, }\"198.18.1.$((100 + i))\""; done
    cat > "$TMP/rvsd.toml" <<CFG
version = 1

[eal]
log_level = 4
hugepages = "off"
in_memory = false
file_prefix = "rvspg-rvsd-$$"
no_huge_memory_mb = 1024

[workers]
main_lcore = 0
lcores = [1]

[control]
socket = "$TMP/rvsd.sock"

[conn]
max_per_worker = $(( flows + flows / 8 + 1024 ))

[[ports]]
name = "client"
device = "net_memif0,role=server,socket=$TMP/c.sock,id=0,mac=$RVSD_CLIENT_MAC"
addr = "198.18.0.1/24"

[[ports]]
name = "server"
device = "net_memif1,role=server,socket=$TMP/s.sock,id=0,mac=$RVSD_SERVER_MAC"
addr = "198.18.1.1/24"

[[routes]]
dst = "198.19.0.0/16"
via = "198.18.0.254"

[[services]]
proto = "udp"
vip = "198.18.0.100:53"
sched = "rr"
laddrs = [$laddrs]
reals = [{ addr = "198.18.1.11:53" }]
CFG
}

api() { python3 "$ROOT"/scripts/lib/api.py "$TMP/rvsd.sock" "$1"; }

rvsd_start() {
    "$RVSD" -c "$TMP/rvsd.toml" > "$TMP/rvsd.out" 2> "$TMP/rvsd.err" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if [ -S "$TMP/rvsd.sock" ] && api '{"op":"version"}' >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { log "rvsd exited during start-up:"; cat "$TMP/rvsd.err" >&2; return 1; }
        sleep 0.1
    done
    log "rvsd did not come up in 20 s"; return 1
}

testpmd_start() {
    dpdk-testpmd -l 0,1 --no-huge --no-shconf -m 512 --file-prefix "rvspg-tp-$$" --no-pci --no-telemetry \
        --log-level=4 \
        --vdev "net_memif0,role=server,socket=$TMP/c.sock,id=0,mac=$RVSD_CLIENT_MAC" \
        --vdev "net_memif1,role=server,socket=$TMP/s.sock,id=0,mac=$RVSD_SERVER_MAC" \
        -- --forward-mode=macswap --auto-start --stats-period 10 --total-num-mbufs=16384 \
        --rxd=1024 --txd=1024 --nb-cores=1 < /dev/null > "$TMP/testpmd.out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if grep -q "@$TMP/c.sock" /proc/net/unix && grep -q "@$TMP/s.sock" /proc/net/unix; then sleep 0.5; return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { log "testpmd exited during start-up:"; tail -20 "$TMP/testpmd.out" >&2; return 1; }
        sleep 0.1
    done
    log "testpmd did not create its memif sockets in 10 s"; return 1
}

if [ "$CPUS" = 2 ]; then
    PG_EAL=(--lcores 0@0,1@0); PG_MAP="1.[0-1]"
else
    [ "$NCPU" -ge 4 ] || { echo "bench/pktgen.sh: --cpus 3 needs 4 CPUs (pktgen 0,2,3; rvsd's worker 1)" >&2; exit 2; }
    PG_EAL=(-l 0,2,3); PG_MAP="[2].0,[3].1"
fi
# pg_cmd FLOWS: pktgen's command line; above 24,576 flows port 0 replays a pcap (one frame per flow).
pg_cmd() {
    local flows=$1 mem=4096 pcap=()
    if [ "$flows" -gt 24576 ]; then
        [ -e "$TMP/flows-$flows.pcap" ] || python3 "$ROOT/bench/profiles/pktgen_flows_pcap.py" --flows "$flows" \
            --dst-mac "$RVSD_CLIENT_MAC" -o "$TMP/flows-$flows.pcap" 2>/dev/null
        pcap=(-s "0:$TMP/flows-$flows.pcap"); mem=$(( 4096 + flows * 3 / 1000 ))
    fi
    PG_CMD=("$PKTGEN_BIN" "${PG_EAL[@]}" -n 4 --file-prefix "rvspg-gen-$$" --no-pci --no-huge -m "$mem" --log-level=4
        --vdev "net_memif0,role=client,socket=$TMP/c.sock,id=0"
        --vdev "net_memif1,role=client,socket=$TMP/s.sock,id=0"
        -- -P -m "$PG_MAP" "${pcap[@]}" -f "$PROFILE")
}

# pg FLOWS NAME: one pktgen run; its result line goes to $TMP/NAME.res.
pg() {
    local flows=$1 name=$2 t=$(( WARMUP + MEASURE + 40 + $1 / 20000 )) mode=range
    [ "$flows" -le 24576 ] || mode=pcap
    pg_cmd "$flows"
    # pktgen wants a terminal for its screen; `script` gives it one and keeps its output.
    RVS_PG_DST_MAC=$RVSD_CLIENT_MAC RVS_PG_FLOWS=$flows RVS_PG_MODE=$mode RVS_PG_WARMUP_MS=$(( WARMUP * 1000 )) \
        RVS_PG_MEASURE_MS=$(( MEASURE * 1000 )) \
        timeout -s INT -k 5 "$t" script -qefc "$(printf '%q ' "${PG_CMD[@]}")" "$TMP/$name.log" \
        < /dev/null > /dev/null 2>&1 &
    PG_PID=$!
    local rc=0
    wait "$PG_PID" || rc=$?
    PG_PID=
    grep -a -o 'rvs-pktgen: .*' "$TMP/$name.log" | tr -d '\r' | head -1 > "$TMP/$name.res" || true
    if [ ! -s "$TMP/$name.res" ]; then
        say "  $name: no result (pktgen status $rc)"
        tr -d '\r' < "$TMP/$name.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -a -v '^\s*$' | tail -8 >&2
        return 1
    fi
    say "  $name: $(sed 's/^rvs-pktgen: //' "$TMP/$name.res")"
}

rvsd_counters() { # retried: on a loaded machine the API may miss its 5 s timeout once
    local out
    for _ in 1 2 3; do out=$(rvsd_counters_once) && [ "$out" != "?" ] && break; sleep 1; done
    echo "$out"
}
rvsd_counters_once() { api '{"op":"stats"}' 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
c = {}
for w in r["workers"]:
    for k, v in w["counters"]:
        c[k] = c.get(k, 0) + v
keep = [k for k in c if c[k] and (k.startswith("drop.") or k in ("conns", "rx_packets", "tx_packets"))]
print(" ".join(f"{k}={c[k]}" for k in sorted(keep)) or "none")' 2>/dev/null || echo "?"; }

say "bench/pktgen.sh: scenario a (client -> real, UDP, 64 B) with pktgen-dpdk, rvsd vs testpmd macswap over memif"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname -s)  CPUs: $NCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
say "rvs: $(git rev-parse --short HEAD 2>/dev/null)$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (dirty)')  DPDK $(pkg-config --modversion libdpdk 2>/dev/null)"
say "pktgen: $PKTGEN_BIN"
pg_cmd 1000
say "pktgen command (range mode): $(printf '%q ' "${PG_CMD[@]}")"
say "  above 24,576 flows: pcap mode, -s 0:FILE from bench/profiles/pktgen_flows_pcap.py"
say "runs: $RUNS per target and flow count, warm-up ${WARMUP} s, measured ${MEASURE} s; rvsd worker / testpmd forwarding core on CPU 1"
say "load before: $(uptime | sed 's/.*load average/load average/')"

# rvsd_ports: rvsd's ports as list_ports (rvsadm --ports) reports them; the client port's MAC must
# be the one pktgen sends to.
rvsd_ports() { api '{"op":"list_ports"}' 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
for p in r["ports"]:
    print("%s %s mac %s inet %s" % (p["name"], p["driver"], p["mac"], p["addr"]))' 2>/dev/null || echo "?"; }
PORTS_SHOWN=0

for flows in $FLOWS_LIST; do
    write_conf "$flows"
    for ((r = 1; r <= RUNS; r++)); do
        log "$flows flows, run $r: rvsd"
        if rvsd_start; then
            if [ $PORTS_SHOWN = 0 ]; then
                PORTS_SHOWN=1
                say "rvsd ports (list_ports, as rvsadm --ports; pktgen sends to the client port's MAC $RVSD_CLIENT_MAC):"
                rvsd_ports | sed 's/^/  /' | tee -a "$REPORT"
            fi
            pg "$flows" "rvsd-$flows-$r" || true
            say "    rvsd counters: $(rvsd_counters)"
        fi
        stop_pid "$SERVER_PID"; SERVER_PID=
        log "$flows flows, run $r: testpmd macswap"
        if testpmd_start; then pg "$flows" "testpmd-$flows-$r" || true; fi
        stop_pid "$SERVER_PID"; SERVER_PID=
    done
done
say "load after: $(uptime | sed 's/.*load average/load average/')"
say "pktgen version: $(cat "$TMP"/*.log 2>/dev/null | grep -a -o -m1 'Pktgen [0-9][0-9.]* (DPDK [0-9.]*)' | head -1)"

python3 - "$TMP" "$FLOWS_LIST" <<'PY' | tee -a "$REPORT"
import glob, os, re, statistics, sys
tmp, flows_list = sys.argv[1], [int(f) for f in sys.argv[2].split()]
def runs(target, flows):
    out = []
    for f in sorted(glob.glob(f"{tmp}/{target}-{flows}-*.res")):
        kv = dict(re.findall(r"(\w+) (-?[0-9.]+)", open(f).read()))
        if kv:
            out.append({k: float(v) for k, v in kv.items()})
    return out
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
print("\nsummary (median of runs). fwd = what pktgen's port 1 received per second of the measured window,")
print("tx = what its port 0 sent; ratio = rvsd fwd / testpmd macswap fwd of the medians, paired = median of")
print("the per-run ratios (each rvsd run with the testpmd run right after it). memif pushes back: a forwarder")
print("slower than pktgen fills pktgen's transmit ring and pktgen sends less, so its limit shows in tx and fwd")
print("alike, with little loss. A ratio near 1 means pktgen (one shared CPU) limited both.")
print(f"{'flows':>8} {'rvsd tx':>8} {'rvsd fwd':>9} {'loss %':>7} {'macswap tx':>11} {'macswap fwd':>12} {'loss %':>7} {'ratio':>6} {'paired':>7} {'runs':>5}")
for flows in flows_list:
    r, m = runs("rvsd", flows), runs("testpmd", flows)
    rv, mv = med([x["fwd_mpps"] for x in r]), med([x["fwd_mpps"] for x in m])
    pairs = [a["fwd_mpps"] / b["fwd_mpps"] for a, b in zip(r, m) if b["fwd_mpps"] > 0]
    print(f"{flows:>8} {fmt(med([x['tx_mpps'] for x in r])):>8} {fmt(rv):>9} {fmt(med([x['loss_pct'] for x in r]), 2):>7} "
          f"{fmt(med([x['tx_mpps'] for x in m])):>11} {fmt(mv):>12} {fmt(med([x['loss_pct'] for x in m]), 2):>7} "
          f"{fmt(rv / mv if rv and mv else None, 2):>6} {fmt(med(pairs), 2):>7} {len(r)}/{len(m):<3}")
print("(Mpps; 64 B frames; loss = 1 - received / sent in the window, slightly negative when frames sent before")
print("the window arrive in it)")
PY
if [ -n "$OUT" ]; then
    cp "$REPORT" "$OUT"
    echo "written: $OUT"
fi
