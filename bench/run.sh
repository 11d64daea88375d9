#!/usr/bin/env bash
# The rvs benchmark: rvsd between the two halves of rvs-gen over memif, and dpdk-testpmd in rvsd's
# place (macswap and io) as the reference measured in the same run, same transport, same cores.
# Prints a summary table and writes bench/results/<date>-<host>.json with the machine described.
#
#   bench/run.sh [--quick] [--scenarios a,b,c,d,e,m,v,s] [--runs N] [--duration S] [--big] [--idle-sleep-us N]
#
#   a  established UDP flows through FULLNAT, both directions, every rewrite checked: Mpps by
#      frame size (64/128/512/1500 at 1k flows) and by flow count (1k/100k/1M at 64 bytes; 4M with
#      --big), median of --runs; ratio to testpmd macswap (and io). The primary figure is cycles
#      per packet measured inside each forwarder (rvsd: busy_cycles/busy_packets from its stats
#      over the measured interval; testpmd: --record-core-cycles) and their ratio; the Mpps ratio
#      is printed only where the generator stayed under 90 % busy in every run of both, else the
#      row says "generator-bound". The generator checks testpmd's frames as fully as rvsd's.
#   v  scenario a over IPv6 (rvsd config: write_rvsd_v6_conf): IPv6 FULLNAT (IPv6 clients, VIP, local
#      addresses and real servers) and
#      NAT64 (IPv6 clients and VIP, IPv4 local addresses and real servers), 84-byte frames (the
#      smallest that hold IPv6, UDP and the generator's payload header), 1k flows, median of
#      --runs; cycles/packet and Mpps ratios to testpmd macswap carrying the same frames in the
#      same run (rvs-gen --family ipv6|nat64).
#   m  forwarding modes: scenario a's measurement (64 bytes, 1k flows, median of --runs) through a
#      service whose real servers are NAT, DR and TUN in turn (rvs-gen --forward: NAT's rewrite
#      checked both ways; DR's frame to the real server's MAC, TUN's outer header, client to server
#      only). Cycles/packet and their ratio to testpmd macswap in the same run: both directions for
#      NAT (as a), one direction for DR and TUN (the generator sends on port 0 only, testpmd
#      forwards it to port 1). Mpps ratio only where the generator stayed under 90 % busy.
#   d  one-way latency p50/p99/p999 at 10/50/90 % of the measured maximum (64 bytes, 1k flows),
#      rvsd versus testpmd io at the same rates ("added by rvsd" = the difference).
#   e  memory per connection: rvsd's VmRSS after establishing N connections, as growth over the
#      same rvsd idle and as total over an idle rvsd with a tiny table, divided by N; and rvsd's
#      own bytes_per_conn gauge.
#   b  new TCP connections per second (handshake, 100-byte request, 300-byte response with FIN,
#      client FIN, last ACK; every segment checked), service without and with SYN-proxy; 4096 in
#      flight. No testpmd equivalent: compared to the target (>= 1M conns/s per worker core), with
#      the generator's busy share beside it to tell which side saturated.
#   c  SYN flood (spoofed, never completed) against the SYN-proxied service while legitimate
#      connections run at half of b's SYN-proxy median, and the same legitimate load without the
#      flood: correct cookie SYN-ACKs per second (target >= 10 Mpps per core) and the legitimate
#      connections/s kept (ratio with / without flood).
#   s  scaling (not in the default set): scenario a's measurement (64 bytes, 1k and 100k flows) for
#      rvsd with 1 worker (1 queue pair), 2 workers with software hand-off (plain RSS: rvs-gen
#      --steer hash) and 2 workers without (replies on the owner's queue, as NIC flow rules would:
#      --steer owner); per-worker hand-offs; testpmd macswap with 1 and 2 queues/forwarding cores
#      as the reference. --idle-sleep-us N sets rvsd's workers.idle_sleep_us in s (default 10 on
#      fewer than 4 CPUs, where a worker shares the generator's CPU, else 0).
#
# --quick: scenario a at 64 bytes and 1k flows only, e at 100k, d at one rate, m once (unless
# --runs is given); 3 s runs (s keeps both flow counts).
# rvsd runs its worker on lcore 1 (main lcore 0); the generator polls on lcore 0; testpmd forwards
# on lcore 1. Every process is bounded in time and killed on exit; memif sockets live in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
SCEN="a,b,c,d,e,m,v,s"
RUNS=3
RUNS_SET=0
DUR=
BIG=0
SCALE_IDLE_US=
while [ $# -gt 0 ]; do
    case "$1" in
        --idle-sleep-us) SCALE_IDLE_US=$2; shift ;;
        --quick) QUICK=1 ;;
        --scenarios) SCEN=$2; shift ;;
        --runs) RUNS=$2; RUNS_SET=1; shift ;;
        --duration) DUR=$2; shift ;;
        --big) BIG=1 ;;
        -h|--help) sed '/^set -euo/,$d' "$0" | tail -n +2; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$DUR" ] || { if [ $QUICK = 1 ]; then DUR=3; else DUR=5; fi; }
has() { [[ ",$SCEN," == *",$1,"* ]]; }

command -v dpdk-testpmd >/dev/null || { echo "bench/run.sh: dpdk-testpmd not found (scripts/setup.sh installs dpdk-dev)" >&2; exit 1; }
echo "== building (release)"
cargo build --release --workspace --quiet
RVSD="$ROOT/target/release/rvsd"
GEN="$ROOT/target/release/rvs-gen"

TMP=$(mktemp -d /tmp/rvs-bench.XXXX)
RUNDIR="$TMP/runs"
mkdir -p "$RUNDIR"
SERVER_PID=
GEN_PID=

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
    local rc=$?
    set +e
    # The generator (memif client) goes first: testpmd's memif server may crash on a disconnect.
    [ -n "$GEN_PID" ] && kill -INT "$GEN_PID" 2>/dev/null && sleep 0.5 && kill -9 "$GEN_PID" 2>/dev/null
    server_stop
    [ -n "${RVS_BENCH_KEEP:-}" ] || rm -rf "$TMP"
    return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_stop() {
    [ -n "$SERVER_PID" ] || return 0
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    rm -f "$TMP"/*.sock
}

# Topology sizes: a local port is unique per (LIP, real server) pair, about 64k pairs' worth each;
# LIP and real-server counts are coprime so rr scheduling pairs every LIP with every server.
sizing() { # FLOWS -> "NLIPS NREALS"
    if [ "$1" -le 100000 ]; then echo "1 2"; elif [ "$1" -le 1000000 ]; then echo "4 5"; else echo "8 9"; fi
}
lips_list() { local n=$1 i out=(); for ((i = 0; i < n; i++)); do out+=("198.18.1.$((100 + i))"); done; (IFS=,; echo "${out[*]}"); }
reals_list() { local n=$1 i out=(); for ((i = 0; i < n; i++)); do out+=("198.18.1.$((11 + i)):8000"); done; (IFS=,; echo "${out[*]}"); }

# write_rvsd_conf FILE MAX_CONNS NLIPS NREALS
write_rvsd_conf() {
    local f=$1 max=$2 nl=$3 nr=$4 i
    {
        cat <<CFG
version = 1

[eal]
log_level = 4
# No hugepages (they are shared on this machine, and the RSS then counts everything); --in-memory
# is incompatible with --no-huge, so a per-run prefix keeps processes apart.
hugepages = "off"
in_memory = false
file_prefix = "rvsbench-$$"
no_huge_memory_mb = 1024

[workers]
main_lcore = 0
lcores = [1]

[control]
socket = "$TMP/rvsd.sock"

[conn]
max_per_worker = $max

[[ports]]
name = "client"
device = "net_memif0,role=server,socket=$TMP/c.sock,id=0"
addr = "198.18.0.1/24"

[[ports]]
name = "server"
device = "net_memif1,role=server,socket=$TMP/s.sock,id=0"
addr = "198.18.1.1/24"

[[routes]]
dst = "198.19.0.0/16"
via = "198.18.0.2"

[[services]]
proto = "udp"
vip = "198.18.0.100:9000"
sched = "rr"
CFG
        printf 'laddrs = ['
        for ((i = 0; i < nl; i++)); do printf '%s"198.18.1.%d"' "$([ $i -gt 0 ] && echo ', ')" $((100 + i)); done
        printf ']\nreals = [\n'
        for ((i = 0; i < nr; i++)); do printf '  { addr = "198.18.1.%d:8000" },\n' $((11 + i)); done
        printf ']\n'
    } > "$f"
}

api() { python3 "$ROOT"/scripts/lib/api.py "$TMP/rvsd.sock" "$1"; }

rvsd_start() { # CONF
    rm -f "$TMP"/*.sock
    "$RVSD" -c "$1" > "$TMP/rvsd.out" 2> "$TMP/rvsd.err" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if [ -S "$TMP/rvsd.sock" ] && api '{"op":"version"}' >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { log "rvsd exited during start-up:"; cat "$TMP/rvsd.err" >&2; return 1; }
        sleep 0.1
    done
    log "rvsd did not come up in 20 s"; return 1
}

# testpmd_ready: waits for the testpmd just started ($SERVER_PID) to listen on both memif sockets.
testpmd_ready() {
    for _ in $(seq 1 100); do
        # memif sockets are abstract by default (no file): look for them in /proc/net/unix.
        if grep -q "@$TMP/c.sock" /proc/net/unix && grep -q "@$TMP/s.sock" /proc/net/unix; then sleep 0.5; return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { log "testpmd exited during start-up:"; tail -20 "$TMP/testpmd.out" >&2; return 1; }
        sleep 0.1
    done
    log "testpmd did not create its memif sockets in 10 s"; return 1
}

testpmd_start() { # FORWARD_MODE
    rm -f "$TMP"/*.sock
    dpdk-testpmd -l 0,1 --no-huge --no-shconf -m 512 --file-prefix "rvsbench-tp-$$" --no-pci --no-telemetry \
        --log-level=4 \
        --vdev "net_memif0,role=server,socket=$TMP/c.sock,id=0" \
        --vdev "net_memif1,role=server,socket=$TMP/s.sock,id=0" \
        -- --forward-mode="$1" --auto-start --stats-period 10 --total-num-mbufs=16384 \
        --rxd=1024 --txd=1024 --nb-cores=1 --record-core-cycles < /dev/null > "$TMP/testpmd.out" 2>&1 &
    SERVER_PID=$!
    testpmd_ready
}

# testpmd_cycles JSON: adds testpmd's own cycles per packet (--record-core-cycles, printed when it
# stops) to the generator's result file JSON. The figure covers testpmd's whole run: the reference
# runs have no warm-up, so that is settle, measurement and drain, all the same steady forwarding.
# testpmd 22.11 prints: "CPU cycles/packet=221.00 (total cycles=5193206507 / total macswap
# packets=23498752) at 2600 MHz Clock".
testpmd_cycles() {
    python3 - "$1" "$TMP/testpmd.out" <<'PY'
import json, re, sys
path, out = sys.argv[1], sys.argv[2]
m = re.search(r"CPU cycles/packet=([0-9.]+) \((?:total|busy) cycles=(\d+) / total (\S+) packets=(\d+)\) at (\d+) MHz",
              open(out, errors="replace").read())
r = json.load(open(path))
r["testpmd_cycles"] = None if not m else {
    "cycles_per_packet": int(m[2]) / int(m[4]) if int(m[4]) else None, "printed": float(m[1]),
    "total_cycles": int(m[2]), "packets": int(m[4]), "forward_mode": m[3], "mhz": int(m[5]),
    "note": "testpmd --record-core-cycles over its whole run (settle, measurement, drain)"}
json.dump(r, open(path, "w"), indent=1)
if not m:
    print("bench/run.sh: no 'CPU cycles/packet' line in testpmd's output", file=sys.stderr)
PY
}

# gen NAME TIMEOUT ARGS...: one generator run, JSON in $RUNDIR/NAME.json; returns its status.
gen() {
    local name=$1 t=$2; shift 2
    timeout -s INT -k 5 "$t" "$GEN" --lcore 0 --file-prefix "rvsbench-gen-$$" \
        --client-dev "net_memif0,role=client,socket=$TMP/c.sock,id=0" \
        --server-dev "net_memif1,role=client,socket=$TMP/s.sock,id=0" \
        --stats-interval 0 --json "$RUNDIR/$name.json" "$@" > "$TMP/gen.out" 2> "$TMP/gen.err" &
    GEN_PID=$!
    local rc=0
    wait "$GEN_PID" || rc=$?
    GEN_PID=
    if [ $rc -ne 0 ]; then
        log "rvs-gen failed ($name, status $rc):"; tail -5 "$TMP/gen.err" >&2
        return $rc
    fi
    sed 's/^/    /' "$TMP/gen.out" >&2
    return 0
}

# gen_ref NAME TIMEOUT ARGS...: gen for a reference run: once the generator has measured it holds
# its ports open (--done-file), testpmd is stopped while its memif peer is still connected (so it
# prints its --record-core-cycles figure rather than crashing on the disconnect), then the
# generator exits.
gen_ref() {
    local name=$1 t=$2; shift 2
    rm -f "$TMP/gen.done"
    timeout -s INT -k 5 "$t" "$GEN" --lcore 0 --file-prefix "rvsbench-gen-$$" \
        --client-dev "net_memif0,role=client,socket=$TMP/c.sock,id=0" \
        --server-dev "net_memif1,role=client,socket=$TMP/s.sock,id=0" \
        --stats-interval 0 --json "$RUNDIR/$name.json" --done-file "$TMP/gen.done" "$@" \
        > "$TMP/gen.out" 2> "$TMP/gen.err" &
    GEN_PID=$!
    while kill -0 "$GEN_PID" 2>/dev/null && [ ! -e "$TMP/gen.done" ]; do sleep 0.05; done
    [ -e "$TMP/gen.done" ] && server_stop
    kill -INT "$GEN_PID" 2>/dev/null
    local rc=0
    wait "$GEN_PID" || rc=$?
    GEN_PID=
    if [ $rc -ne 0 ]; then
        log "rvs-gen failed ($name, status $rc):"; tail -5 "$TMP/gen.err" >&2
        return $rc
    fi
    sed 's/^/    /' "$TMP/gen.out" >&2
    return 0
}

# rvsd_drops: rvsd's non-zero drop counters, for runs that show loss.
rvsd_drops() { api '{"op":"stats"}' 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join(f"{k}={v}" for w in r["workers"] for k, v in w["counters"] if k.startswith("drop.")) or "none")' 2>/dev/null || echo "?"; }

# One measurement of scenario a on each target. Args: FLOWS SIZE RUN
measure_a() {
    local flows=$1 size=$2 run=$3 nl nr
    read -r nl nr < <(sizing "$flows")
    local common=(--flows "$flows" --size "$size" --duration "$DUR" --settle 1 --lips "$(lips_list "$nl")"
        --reals "$(reals_list "$nr")")
    local max=$(( flows + flows / 8 + 1024 ))
    local wt=$(( DUR + 40 + flows / 50000 ))
    write_rvsd_conf "$TMP/rvsd.toml" "$max" "$nl" "$nr"
    log "a: $flows flows, $size bytes, run $run: rvsd"
    if rvsd_start "$TMP/rvsd.toml"; then
        if gen "a-rvsd-$flows-$size-$run" "$wt" "${common[@]}" --mode check --label rvsd \
            --gateway-api "$TMP/rvsd.sock"; then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if max(r["lost"].values())>1000 else 1)' \
                "$RUNDIR/a-rvsd-$flows-$size-$run.json" && log "  loss: rvsd drops: $(rvsd_drops)"
        fi
    fi
    server_stop
    for fm in macswap io; do
        log "a: $flows flows, $size bytes, run $run: testpmd $fm"
        # testpmd's memif server sometimes never brings the link up for the first client: retry once.
        for _try in 1 2; do
            if testpmd_start "$fm" && gen_ref "a-testpmd_$fm-$flows-$size-$run" "$wt" "${common[@]}" --mode reference \
                --label "testpmd-$fm"; then
                server_stop
                testpmd_cycles "$RUNDIR/a-testpmd_$fm-$flows-$size-$run.json"
                break
            fi
            server_stop
        done
    done
}

if has a; then
    echo "== scenario a: established UDP flows through FULLNAT"
    if [ $QUICK = 1 ]; then configs=("1000 64"); else
        configs=("1000 64" "1000 128" "1000 512" "1000 1500" "100000 64" "1000000 64")
        [ $BIG = 1 ] && configs+=("4000000 64")
    fi
    for c in "${configs[@]}"; do
        read -r flows size <<< "$c"
        for ((r = 1; r <= RUNS; r++)); do measure_a "$flows" "$size" "$r"; done
    done
fi

# write_rvsd_mode_conf FILE MAX_CONNS FORWARD NREALS: scenario a's config with the service's real
# servers in mode FORWARD (nat, dr, tun) and no local addresses; DR and TUN cannot change the port,
# so their real servers listen on the VIP's (9000).
mode_port() { case "$1" in dr|tun) echo 9000 ;; *) echo 8000 ;; esac; }
write_rvsd_mode_conf() {
    local f=$1 fwd=$3 port
    port=$(mode_port "$fwd")
    write_rvsd_conf "$f" "$2" 1 "$4"
    sed -i -e '/^laddrs = /d' \
        -e "s/{ addr = \"\(198\.18\.1\.[0-9]*\):8000\" }/{ addr = \"\1:$port\", forward = \"$fwd\" }/" "$f"
    grep -q "forward = \"$fwd\"" "$f" && ! grep -q '^laddrs' "$f" ||
        { log "write_rvsd_mode_conf: the reals of $f not rewritten"; return 1; }
}

# One measurement of scenario m: rvsd with NAT, DR and TUN real servers, then testpmd macswap both
# ways (NAT's reference) and one way (DR's and TUN's). Args: RUN
measure_m() {
    local run=$1 flows=1000 size=64 fwd dir port
    local common=(--flows "$flows" --size "$size" --duration "$DUR" --settle 1)
    local max=$(( flows + flows / 8 + 1024 )) wt=$(( DUR + 40 ))
    for fwd in nat dr tun; do
        port=$(mode_port "$fwd")
        write_rvsd_mode_conf "$TMP/rvsd.toml" "$max" "$fwd" 2 || return 1
        log "m: $fwd, run $run: rvsd"
        if rvsd_start "$TMP/rvsd.toml"; then
            if gen "m-rvsd_$fwd-$run" "$wt" "${common[@]}" --reals "$(reals_list 2 | sed "s/:8000/:$port/g")" \
                --forward "$fwd" --mode check --label "rvsd-$fwd" --gateway-api "$TMP/rvsd.sock"; then
                python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if max(r["lost"].values())>1000 or r["rewrite_errors"] else 1)' \
                    "$RUNDIR/m-rvsd_$fwd-$run.json" && log "  loss or errors: rvsd drops: $(rvsd_drops)"
            fi
        fi
        server_stop
    done
    # The reference: --forward only sets the directions there (dr: client to server only).
    for dir in both one; do
        fwd=fullnat; [ "$dir" = one ] && fwd=dr
        port=$(mode_port "$fwd")
        log "m: run $run: testpmd macswap, $dir direction(s)"
        # testpmd's memif server sometimes never brings the link up (more often on a loaded
        # machine): up to three tries.
        for _try in 1 2 3; do
            if testpmd_start macswap && gen_ref "m-testpmd_macswap_$dir-$run" "$wt" "${common[@]}" \
                --reals "$(reals_list 2 | sed "s/:8000/:$port/g")" --forward "$fwd" --mode reference \
                --label "testpmd-macswap-$dir"; then
                server_stop
                testpmd_cycles "$RUNDIR/m-testpmd_macswap_$dir-$run.json"
                break
            fi
            server_stop
        done
    done
}

# write_rvsd_v6_conf FILE MAX_CONNS FAMILY: scenario a's IPv6 (FAMILY ipv6) or NAT64 (nat64)
# service on dual-stack ports. The IPv6 field names are those of rvsd's config with IPv6 ports and
# services (ports[].addr6, bracketed [addr]:port endpoints, IPv6 routes).
write_rvsd_v6_conf() {
    local f=$1 fam=$3
    write_rvsd_conf "$f" "$2" 1 1
    # Only the IPv4 service's lines are replaced: the ports gain their IPv6 addresses, the route
    # to the clients is IPv6, and the service is the IPv6 VIP's.
    python3 - "$f" "$fam" <<'PY'
import re, sys
path, fam = sys.argv[1], sys.argv[2]
t = open(path).read()
t = t.replace('addr = "198.18.0.1/24"', 'addr = "198.18.0.1/24"\naddr6 = "2001:2::1/64"')
t = t.replace('addr = "198.18.1.1/24"', 'addr = "198.18.1.1/24"\naddr6 = "2001:2:0:1::1/64"')
t = t.replace('dst = "198.19.0.0/16"\nvia = "198.18.0.2"', 'dst = "2001:2:10::/64"\nvia = "2001:2::2"')
t = t.replace('vip = "198.18.0.100:9000"', 'vip = "[2001:2::100]:9000"')
if fam == "ipv6":
    t = re.sub(r'laddrs = \[.*\]', 'laddrs = ["2001:2:0:1::100"]', t)
    t = re.sub(r'\{ addr = "198\.18\.1\.11:8000" \}', '{ addr = "[2001:2:0:1::11]:8000" }', t)
open(path, "w").write(t)
PY
}

# One measurement of scenario v: rvsd with the FAMILY service, then testpmd macswap with the same
# frames. Args: FAMILY RUN
measure_v() {
    local fam=$1 run=$2 flows=1000 size=84
    local common=(--flows "$flows" --size "$size" --duration "$DUR" --settle 1 --family "$fam"
        --lips "$(lips_list 1)" --reals "$(reals_list 1)")
    local max=$(( flows + flows / 8 + 1024 )) wt=$(( DUR + 40 ))
    write_rvsd_v6_conf "$TMP/rvsd.toml" "$max" "$fam"
    log "v: $fam, run $run: rvsd"
    if rvsd_start "$TMP/rvsd.toml"; then
        if gen "v-rvsd_$fam-$run" "$wt" "${common[@]}" --mode check --label "rvsd-$fam" \
            --gateway-api "$TMP/rvsd.sock"; then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if max(r["lost"].values())>1000 or r["rewrite_errors"] else 1)' \
                "$RUNDIR/v-rvsd_$fam-$run.json" && log "  loss or errors: rvsd drops: $(rvsd_drops)"
        fi
    fi
    server_stop
    log "v: $fam, run $run: testpmd macswap"
    for _try in 1 2 3; do
        if testpmd_start macswap && gen_ref "v-testpmd_macswap_$fam-$run" "$wt" "${common[@]}" --mode reference \
            --label "testpmd-macswap-$fam"; then
            server_stop
            testpmd_cycles "$RUNDIR/v-testpmd_macswap_$fam-$run.json"
            break
        fi
        server_stop
    done
}

if has v; then
    echo "== scenario v: scenario a over IPv6 and NAT64 (84 bytes, 1k flows)"
    vruns=$RUNS
    [ $QUICK = 1 ] && [ $RUNS_SET = 0 ] && vruns=1
    for ((r = 1; r <= vruns; r++)); do
        for fam in ipv6 nat64; do measure_v "$fam" "$r" || true; done
    done
fi

if has m; then
    echo "== scenario m: forwarding modes NAT, DR, TUN (64 bytes, 1k flows)"
    mruns=$RUNS
    [ $QUICK = 1 ] && [ $RUNS_SET = 0 ] && mruns=1
    for ((r = 1; r <= mruns; r++)); do measure_m "$r" || true; done
fi

if has d; then
    echo "== scenario d: latency at fractions of the maximum rate"
    # The maximum: the median of scenario a at 64 bytes, 1k flows, if it ran; else measure it once.
    maxpps=$(python3 - "$RUNDIR" <<'PY'
import glob, json, statistics, sys
v = [json.load(open(f))["mpps"] for f in glob.glob(sys.argv[1] + "/a-rvsd-1000-64-*.json")]
print(int(statistics.median(v) * 1e6) if v else 0)
PY
)
    if [ "$maxpps" -eq 0 ]; then
        measure_a 1000 64 1
        maxpps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["mpps"]*1e6))' "$RUNDIR/a-rvsd-1000-64-1.json")
    fi
    if [ $QUICK = 1 ]; then fracs="50"; else fracs="10 50 90"; fi
    write_rvsd_conf "$TMP/rvsd.toml" 4096 1 2
    for f in $fracs; do
        rate=$(( maxpps * f / 100 ))
        [ "$rate" -gt 0 ] || continue
        for ((r = 1; r <= RUNS; r++)); do
            log "d: ${f}% of ${maxpps} pps = $rate pps, run $r: rvsd"
            rvsd_start "$TMP/rvsd.toml" && gen "d-rvsd-$f-$r" $((DUR + 40)) --flows 1000 --size 64 --duration "$DUR" \
                --rate "$rate" --mode check --label rvsd --lips "$(lips_list 1)" --reals "$(reals_list 2)" || true
            server_stop
            log "d: ${f}% = $rate pps, run $r: testpmd io"
            for _try in 1 2; do
                if testpmd_start io && gen "d-testpmd_io-$f-$r" $((DUR + 40)) --flows 1000 --size 64 --duration "$DUR" \
                    --rate "$rate" --mode reference --label testpmd-io --reals "$(reals_list 2)"; then server_stop; break; fi
                server_stop
            done
        done
    done
fi

# Scenario s: throughput with 1 and 2 workers, with and without the software hand-off.
# The CPU layout: rvs-gen polls on CPU 0 beside rvsd's main lcore (control threads, mostly asleep).
# With fewer than 4 CPUs there is no CPU left for a second worker, so 2 workers share CPU 0 with the
# generator: oversubscribed, and then the workers sleep idle_sleep_us after an empty poll, or
# worker 0 and the generator both busy-poll CPU 0 and each runs only when the other is preempted.
S_NCPU=$(nproc)
if [ "$S_NCPU" -ge 4 ]; then S_W2="[1, 2]" S_TP2="1@1,2@2"; else S_W2="[0, 1]" S_TP2="1@0,2@1"; fi
[ -n "$SCALE_IDLE_US" ] || { if [ "$S_NCPU" -ge 4 ]; then SCALE_IDLE_US=0; else SCALE_IDLE_US=10; fi; }

# scale_conf FILE MAX_CONNS NLIPS NREALS WORKERS: scenario a's rvsd config with 1 or 2 workers.
scale_conf() {
    local f=$1 lcores="[1]" cpus="[1]"
    write_rvsd_conf "$f" "$2" "$3" "$4"
    [ "$5" = 2 ] && { lcores="[1, 2]"; cpus=$S_W2; }
    sed -i "s/^lcores = \[1\]\$/lcores = $lcores\ncpus = $cpus\nidle_sleep_us = $SCALE_IDLE_US/" "$f"
    grep -q '^idle_sleep_us = ' "$f" || { log "scale_conf: no 'lcores = [1]' line in $f"; return 1; }
}

# scale_watch FILE: rvsd's stats reply, refreshed every 0.25 s while rvsd runs (one process, so the
# polling costs next to nothing). rvsd can die when the generator disconnects (see measure_s), so
# the last reply before that is what remains.
scale_watch() {
    python3 - "$TMP/rvsd.sock" "$1" "$SERVER_PID" <<'PY'
import json, os, socket, sys, time
sock, out, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b'{"op":"stats"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        json.loads(buf)
        with open(out + ".tmp", "wb") as f:
            f.write(buf)
        os.replace(out + ".tmp", out)
    except (OSError, ValueError):
        pass
    time.sleep(0.25)
PY
}

# scale_testpmd_start QUEUES: testpmd macswap with QUEUES queue pairs per port and as many
# forwarding lcores (1: lcore 1 on CPU 1, as in scenario a; 2: on the CPUs of rvsd's 2 workers).
scale_testpmd_start() {
    local q=$1 lc="0@0,1@1"
    [ "$q" = 2 ] && lc="0@0,$S_TP2"
    rm -f "$TMP"/*.sock
    dpdk-testpmd --lcores "$lc" --no-huge --no-shconf -m 512 --file-prefix "rvsbench-tp-$$" --no-pci --no-telemetry \
        --log-level=4 \
        --vdev "net_memif0,role=server,socket=$TMP/c.sock,id=0" \
        --vdev "net_memif1,role=server,socket=$TMP/s.sock,id=0" \
        -- --forward-mode=macswap --auto-start --stats-period 10 --total-num-mbufs=16384 \
        --rxd=1024 --txd=1024 --rxq="$q" --txq="$q" --nb-cores="$q" < /dev/null > "$TMP/testpmd.out" 2>&1 &
    SERVER_PID=$!
    testpmd_ready
}

# One measurement of scenario s on every target. Args: FLOWS RUN
measure_s() {
    local flows=$1 run=$2 nl nr v name workers queues steer tag wpid st
    read -r nl nr < <(sizing "$flows")
    local common=(--flows "$flows" --size 64 --duration "$DUR" --settle 1 --lips "$(lips_list "$nl")"
        --reals "$(reals_list "$nr")")
    local max=$(( flows + flows / 8 + 1024 ))
    local wt=$(( DUR + 40 + flows / 50000 ))
    mkdir -p "$RUNDIR/s"
    for v in "rvsd1 1 1 hash" "rvsd2_hash 2 2 hash" "rvsd2_owner 2 2 owner"; do
        read -r name workers queues steer <<< "$v"
        tag="s/$name-$flows-$run"
        log "s: $flows flows, run $run: rvsd, $workers worker(s), $queues queue pair(s), steer $steer"
        scale_conf "$TMP/rvsd.toml" "$max" "$nl" "$nr" "$workers" || return 1
        if rvsd_start "$TMP/rvsd.toml"; then
            scale_watch "$RUNDIR/$tag.stats.json" &
            wpid=$!
            if gen "$tag" "$wt" "${common[@]}" --queues "$queues" --steer "$steer" --mode check --label "rvsd-$name"; then
                python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if max(r["lost"].values())>1000 else 1)' \
                    "$RUNDIR/$tag.json" && log "  loss: rvsd drops: $(rvsd_drops)"
            fi
            # rvsd's memif server may crash once the generator (the memif client) has gone: the
            # PMD's control thread unmaps the shared rings while a worker still polls them.
            sleep 0.5
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                st=0; wait "$SERVER_PID" 2>/dev/null || st=$?
                log "  rvsd exited (status $st) after the generator disconnected; its last stats are kept"
                echo "$st" > "$RUNDIR/$tag.exit"
                SERVER_PID=
            fi
            kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
        fi
        server_stop
    done
    for q in 1 2; do
        tag="s/testpmd_${q}q-$flows-$run"
        log "s: $flows flows, run $run: testpmd macswap, $q queue pair(s), $q forwarding core(s)"
        for _try in 1 2; do
            if scale_testpmd_start "$q" && gen "$tag" "$wt" "${common[@]}" --queues "$q" --steer hash \
                --mode reference --label "testpmd-macswap-${q}q"; then server_stop; break; fi
            server_stop
        done
    done
}

if has s; then
    echo "== scenario s: scaling over workers, with and without hand-off"
    cat <<LAYOUT
CPU layout ($S_NCPU CPUs): rvs-gen on CPU 0; rvsd's main lcore and control threads on CPU 0;
  rvsd 1 worker: lcore 1 on CPU 1 | rvsd 2 workers: lcores 1,2 on CPUs ${S_W2//[\[\] ]/} | testpmd 1q: forwarding lcore 1 on CPU 1 | 2q: lcores ${S_TP2}
  rvsd workers.idle_sleep_us = $SCALE_IDLE_US in every rvsd run of this scenario$( [ "$S_NCPU" -lt 4 ] && echo "
  NOTE: $S_NCPU CPUs: with 2 workers (and testpmd 2q) the generator shares CPU 0 with a poller: oversubscribed.")
LAYOUT
    for flows in 1000 100000; do
        for ((r = 1; r <= RUNS; r++)); do measure_s "$flows" "$r"; done
    done
fi

if has e; then
    echo "== scenario e: memory per connection"
    rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
    if [ $QUICK = 1 ]; then sizes="100000"; else sizes="1000000"; [ $BIG = 1 ] && sizes="$sizes 4000000"; fi
    # The baseline: an idle rvsd with a tiny table.
    write_rvsd_conf "$TMP/rvsd.toml" 1024 1 2
    rvsd_start "$TMP/rvsd.toml"; sleep 1
    tiny_kb=$(rss_kb "$SERVER_PID")
    server_stop
    for n in $sizes; do
        read -r nl nr < <(sizing "$n")
        write_rvsd_conf "$TMP/rvsd.toml" $(( n + n / 8 + 1024 )) "$nl" "$nr"
        rvsd_start "$TMP/rvsd.toml"; sleep 1
        idle_kb=$(rss_kb "$SERVER_PID")
        log "e: establishing $n connections"
        if gen "e-warmup-$n" $(( 60 + n / 20000 )) --flows "$n" --size 64 --duration 0.2 --settle 0 \
            --mode check --label rvsd --lips "$(lips_list "$nl")" --reals "$(reals_list "$nr")"; then
            sleep 0.5
            full_kb=$(rss_kb "$SERVER_PID")
            stats=$(api '{"op":"stats"}')
            python3 - "$RUNDIR/e-$n.json" "$n" "$tiny_kb" "$idle_kb" "$full_kb" "$stats" <<'PY'
import json, sys
path, n, tiny, idle, full, stats = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6]), sys.argv[6]
g = {k: v for w in json.loads(stats)["workers"] for k, v in w["counters"]}
json.dump({
    "connections": n,
    "conns_reported": g.get("conns"),
    "rss_kb_tiny_idle": tiny, "rss_kb_idle": idle, "rss_kb_established": full,
    "bytes_per_conn_growth": (full - idle) * 1024 / n,
    "bytes_per_conn_total": (full - tiny) * 1024 / n,
    "bytes_per_conn_gauge": g.get("bytes_per_conn"),
    "conn_capacity": g.get("conn_capacity"),
    "hugepages": "none (rvsd runs with --no-huge: all its memory is in VmRSS)",
}, open(path, "w"), indent=1)
PY
        fi
        server_stop
    done
fi

# write_rvsd_tcp_conf FILE MAX_CONNS NLIPS NREALS SYNPROXY(true|false): scenario a's config with a
# TCP service on port 80 instead, and short TIME_WAIT/CLOSE timeouts so that the table holds about
# one second of closed connections, not two minutes' worth.
write_rvsd_tcp_conf() {
    local f=$1 sp=$5
    write_rvsd_conf "$f" "$2" "$3" "$4"
    sed -i -e 's/^proto = "udp"$/proto = "tcp"/' \
        -e "s/^vip = \"198.18.0.100:9000\"\$/vip = \"198.18.0.100:80\"\nsynproxy = $sp/" "$f"
    grep -q '^synproxy = ' "$f" || { log "write_rvsd_tcp_conf: service not found in $f"; return 1; }
    # TIME_WAIT must outlast the generator's connection timeout (2 s): a connection that lost its
    # last segments is still open at the generator's real server, and a gateway that reused its
    # local port sooner would be caught (rightly) as a port error. 4 s at ~400k conns/s needs
    # ~1.6M table entries and 16 LIPs x 5 reals of local ports.
    printf '\n[conn.timeouts]\ntime_wait = 4\nclose = 4\n' >> "$f"
}

# One measurement of scenario b or c. Args: NAME SCENARIO SYNPROXY(true|false) GEN-ARGS...
measure_tcp() {
    local name=$1 scen=$2 sp=$3; shift 3
    local nl=16 nr=5
    local args=(--scenario "$scen" --vip 198.18.0.100:80 --duration "$DUR" --settle 1 --mode check --label rvsd
        --lips "$(lips_list $nl)" --reals "$(reals_list $nr)")
    [ "$sp" = true ] && args+=(--expect-synproxy)
    write_rvsd_tcp_conf "$TMP/rvsd.toml" 4194304 $nl $nr "$sp"
    if rvsd_start "$TMP/rvsd.toml"; then
        if gen "$name" $((DUR + 40)) "${args[@]}" "$@"; then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["conns"]["failed"] or r["rewrite_errors"] else 1)' \
                "$RUNDIR/$name.json" && log "  failures: rvsd drops: $(rvsd_drops)"
        fi
    fi
    server_stop
}

if has b; then
    echo "== scenario b: new TCP connections per second"
    for ((r = 1; r <= RUNS; r++)); do
        for sp in false true; do
            log "b: synproxy $sp, run $r"
            measure_tcp "b-sp_$sp-$r" b "$sp" || true
        done
    done
fi

if has c; then
    echo "== scenario c: SYN flood against a SYN-proxied service, legitimate connections beside it"
    # The legitimate load: half of b's SYN-proxy median (measured once here if b did not run), so
    # that "kept" is a question of the gateway, not of a generator already at its limit.
    legit=$(python3 - "$RUNDIR" <<'PY'
import glob, json, statistics, sys
v = [json.load(open(f))["conns_per_s"] for f in glob.glob(sys.argv[1] + "/b-sp_true-*.json")]
print(int(statistics.median(v) / 2) if v else 0)
PY
)
    if [ "$legit" -eq 0 ]; then
        log "c: measuring b with SYN-proxy once for the legitimate rate"
        measure_tcp "c-maxprobe" b true || true
        legit=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["conns_per_s"] / 2))' \
            "$RUNDIR/c-maxprobe.json" 2>/dev/null || echo 0)
    fi
    if [ "$legit" -gt 0 ]; then
        for ((r = 1; r <= RUNS; r++)); do
            log "c: legitimate $legit conns/s with the flood (share 0.75, max rate), run $r"
            measure_tcp "c-flood-$r" c true --conn-rate "$legit" --flood-share 0.75 || true
            log "c: legitimate $legit conns/s without flood, run $r"
            measure_tcp "c-noflood-$r" c true --conn-rate "$legit" --flood-share 0 || true
        done
    else
        log "c: no legitimate rate (b with SYN-proxy failed): skipped"
    fi
fi

# summary_bc OUT: the tables of b and c, added to OUT's JSON as "b" and "c".
summary_bc() {
    python3 - "$RUNDIR" "$1" <<'PY'
import glob, json, os, statistics, sys
rundir, out = sys.argv[1], sys.argv[2]
def runs(prefix):
    return [json.load(open(f)) for f in sorted(glob.glob(f"{rundir}/{prefix}-[0-9]*.json"))]
med = lambda xs: statistics.median(xs) if xs else None
rng = lambda xs: [min(xs), max(xs)] if xs else None
busy = lambda rs: med([r["generator_loop"]["busy_fraction"] for r in rs])
cap = lambda rs: med([r["generator_loop"]["capacity_per_s"] or 0 for r in rs])
f = lambda v, p=0: "-" if v is None else f"{v:,.{p}f}"
res = {}
TARGET_B, TARGET_C = 1_000_000, 10_000_000
b = [(sp, runs(f"b-sp_{sp}")) for sp in ("false", "true")]
if any(rs for _, rs in b):
    print("\nscenario b: new TCP connections/s through rvsd (1 worker), median of runs; no testpmd equivalent:")
    print("  compared to the target (>= 1M conns/s per worker core); 'gen busy' near 100 % = the generator set the rate")
    print(f"{'synproxy':>9} {'conns/s':>10} {'min-max':>19} {'of target':>10} {'failed':>7} {'timed out':>10} {'errors':>7} {'gen busy':>9} {'gen ceiling/s':>14}")
    res["b"] = []
    for sp, rs in b:
        if not rs:
            continue
        v = [r["conns_per_s"] for r in rs]
        row = {"synproxy": sp == "true", "conns_per_s": med(v), "conns_per_s_range": rng(v),
               "target_conns_per_s_per_core": TARGET_B, "fraction_of_target": med(v) / TARGET_B,
               "failed": sum(r["conns"]["failed"] for r in rs), "timed_out": sum(r["conns"]["timed_out"] for r in rs),
               "rewrite_errors": sum(r["rewrite_errors"] for r in rs),
               "errors": {k: sum(r["errors"][k] for r in rs) for k in rs[0]["errors"]},
               "generator_busy_fraction": busy(rs), "generator_capacity_conns_per_s": cap(rs), "runs": rs}
        res["b"].append(row)
        rg = f"{f(row['conns_per_s_range'][0])}-{f(row['conns_per_s_range'][1])}"
        print(f"{sp:>9} {f(row['conns_per_s']):>10} {rg:>19} {100 * row['fraction_of_target']:>9.2f}% {row['failed']:>7} {row['timed_out']:>10} {row['rewrite_errors']:>7} {100 * (row['generator_busy_fraction'] or 0):>8.1f}% {f(row['generator_capacity_conns_per_s']):>14}")
fl, nf = runs("c-flood"), runs("c-noflood")
if fl or nf:
    print("\nscenario c: SYN flood against the SYN-proxied service, legitimate connections beside it (median of runs)")
    print("  cookies: correct SYN-ACKs/s (target >= 10 Mpps per core); kept: legitimate conns/s with flood / without")
    syn = [r["flood"]["syns_per_s"] for r in fl]
    ok = [r["flood"]["synacks_ok_per_s"] for r in fl]
    lw, lo = [r["conns_per_s"] for r in fl], [r["conns_per_s"] for r in nf]
    row = {"legit_rate_target": (fl or nf)[0]["tcp"]["conn_rate_target"],
           "flood_syns_per_s": med(syn), "synacks_ok_per_s": med(ok), "synacks_ok_per_s_range": rng(ok),
           "target_synacks_per_s_per_core": TARGET_C,
           "fraction_of_target": med(ok) / TARGET_C if ok else None,
           "legit_conns_per_s_with_flood": med(lw), "legit_conns_per_s_without_flood": med(lo),
           "kept_ratio": med(lw) / med(lo) if lw and lo and med(lo) else None,
           "legit_failed_with_flood": sum(r["conns"]["failed"] for r in fl),
           "legit_failed_without_flood": sum(r["conns"]["failed"] for r in nf),
           "rewrite_errors": sum(r["rewrite_errors"] for r in fl + nf),
           "errors": {k: sum(r["errors"][k] for r in fl + nf) for k in (fl + nf)[0]["errors"]},
           "generator_busy_fraction_with_flood": busy(fl), "generator_busy_fraction_without_flood": busy(nf),
           "runs": {"flood": fl, "no_flood": nf}}
    res["c"] = row
    print(f"{'SYN/s sent':>11} {'cookies ok/s':>13} {'of target':>10} {'legit/s flood':>14} {'legit/s none':>13} {'kept':>6} {'failed':>7} {'errors':>7} {'gen busy':>9}")
    kr = row["kept_ratio"]
    print(f"{f(row['flood_syns_per_s']):>11} {f(row['synacks_ok_per_s']):>13} {100 * (row['fraction_of_target'] or 0):>9.2f}% {f(row['legit_conns_per_s_with_flood']):>14} {f(row['legit_conns_per_s_without_flood']):>13} {'-' if kr is None else f'{kr:.3f}':>6} {row['legit_failed_with_flood']:>7} {row['rewrite_errors']:>7} {100 * (row['generator_busy_fraction_with_flood'] or 0):>8.1f}%")
if res:
    r = json.load(open(out))
    r.update(res)
    json.dump(r, open(out, "w"), indent=1)
PY
}

echo "== summary"
mkdir -p bench/results
OUT="bench/results/$(date +%Y%m%d-%H%M%S)-$(hostname -s).json"
python3 - "$RUNDIR" "$OUT" "$QUICK" "$RUNS" "$DUR" <<'PY'
import glob, json, os, platform, re, statistics, subprocess, sys, time
rundir, out, quick, runs, dur = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), float(sys.argv[5])
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
machine = {
    "cpu_model": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
    "dpdk": sh("pkg-config --modversion libdpdk"), "testpmd": sh("dpdk-testpmd --version 2>&1 | head -1") or None,
    "rustc": sh("rustc --version"), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
    "load_average": os.getloadavg(),
    "git": sh("git rev-parse --short HEAD") + (" (dirty)" if sh("git status --porcelain") else ""),
}
runs_by = {}
for f in sorted(glob.glob(rundir + "/*.json")):
    name = os.path.basename(f)[:-5]
    runs_by.setdefault(name.rsplit("-", 1)[0] if name[0] in "admv" else name, []).append(json.load(open(f)))
med = lambda xs: statistics.median(xs) if xs else None
result = {"machine": machine, "quick": quick, "runs_per_point": runs, "duration_s": dur, "a": [], "d": [], "e": [], "m": [], "v": []}
print(f"machine: {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}, DPDK {machine['dpdk']}, load {machine['load_average'][0]:.1f}")
keys = sorted({tuple(k.split("-")[2:4]) for k in runs_by if k.startswith("a-")}, key=lambda t: (int(t[0]), int(t[1])))
GEN_BOUND = 0.90
def busy(xs):
    # Busy share of the time the generator's loop ran (stalled iterations, when the OS took its CPU
    # away, left out): at 90 % or more it was the limit whenever it ran.
    g = [x["generator_loop"] for x in xs]
    v = [l["busy_fraction"] / (l["busy_fraction"] + l["idle_fraction"]) if l["busy_fraction"] + l["idle_fraction"] > 0 else 1.0 for l in g]
    return max(v) if v else None
def stalled(xs):
    v = [x["generator_loop"]["stalled_fraction"] for x in xs]
    return max(v) if v else None
DISTURBED = 0.5
def rvsd_cpp(x):
    g = x.get("gateway_cycles") or {}
    return g.get("cycles_per_packet")
def tp_cpp(x):
    g = x.get("testpmd_cycles") or {}
    return g.get("cycles_per_packet")
if keys:
    print("\nscenario a: established UDP flows, both directions (median of runs)")
    print("  cycles/packet: measured inside each forwarder over its polls that received packets (rvsd: stats")
    print("  busy_cycles/busy_packets over the measured interval; testpmd: --record-core-cycles); cyc ratio =")
    print("  macswap cycles / rvsd cycles, comparable with the Mpps ratio and its target (>= 0.6), and valid when")
    print(f"  the generator is the bottleneck. Mpps ratio only where the generator stayed under {100 * GEN_BOUND:.0f} % busy in every")
    print("  run of both rvsd and macswap (gen busy: busy share of the time its loop ran, stalls left out; the highest")
    print("  of those runs, rvsd/macswap); otherwise the row says generator-bound.")
    print(f"{'flows':>8} {'size':>5} {'rvsd Mpps':>10} {'macswap':>8} {'Mpps ratio':>16} {'gen busy %':>11} "
          f"{'rvsd cyc/pkt':>13} {'macswap cyc':>12} {'cyc ratio':>10} {'io Mpps':>8} {'errors':>7} {'lost %':>7}")
for flows, size in keys:
    r = runs_by.get(f"a-rvsd-{flows}-{size}", [])
    m = runs_by.get(f"a-testpmd_macswap-{flows}-{size}", [])
    i = runs_by.get(f"a-testpmd_io-{flows}-{size}", [])
    rv, mv, iv = med([x["mpps"] for x in r]), med([x["mpps"] for x in m]), med([x["mpps"] for x in i])
    errs = sum(x["rewrite_errors"] for x in r)
    sent = sum(sum(x["tx"].values()) for x in r)
    lost = sum(max(0, v) for x in r for v in x["lost"].values())
    rb, mb = busy(r), busy(m)
    bound = rb is None or mb is None or rb >= GEN_BOUND or mb >= GEN_BOUND
    # A run whose generator was descheduled most of the time measured the machine's other load.
    st = max([v for v in (stalled(r), stalled(m)) if v is not None], default=None)
    disturbed = st is not None and st > DISTURBED
    rc = med([c for c in map(rvsd_cpp, r) if c is not None])
    mc = med([c for c in map(tp_cpp, m) if c is not None])
    ic = med([c for c in map(tp_cpp, i) if c is not None])
    row = {"flows": int(flows), "frame_size": int(size), "rvsd_mpps": rv, "testpmd_macswap_mpps": mv, "testpmd_io_mpps": iv,
           "ratio_macswap": rv / mv if rv and mv else None, "ratio_io": rv / iv if rv and iv else None,
           "generator_busy_max": {"rvsd": rb, "testpmd_macswap": mb}, "generator_bound_threshold": GEN_BOUND,
           "generator_bound": bound, "generator_stalled_max": st, "disturbed": disturbed,
           "ratio_macswap_shown": None if bound or not (rv and mv) else rv / mv,
           "rvsd_cycles_per_packet": rc, "testpmd_macswap_cycles_per_packet": mc, "testpmd_io_cycles_per_packet": ic,
           "cycles_ratio_macswap_over_rvsd": mc / rc if rc and mc else None,
           "cycles_rvsd_over_macswap": rc / mc if rc and mc else None,
           "checked_bytes_per_frame": {"rvsd": med([x.get("checked_bytes_per_frame") or 0 for x in r]),
                                       "testpmd_macswap": med([x.get("checked_bytes_per_frame") or 0 for x in m])},
           "rewrite_errors": errs, "lost_fraction": lost / sent if sent else None,
           "target_ratio_macswap": 0.6, "runs": {"rvsd": r, "testpmd_macswap": m, "testpmd_io": i}}
    result["a"].append(row)
    cb = row["checked_bytes_per_frame"]
    if cb["rvsd"] and cb["testpmd_macswap"] and abs(cb["rvsd"] - cb["testpmd_macswap"]) > 0.5:
        print(f"  WARNING: {flows} flows {size} B: the generator read {cb['rvsd']:.1f} bytes per rvsd frame but "
              f"{cb['testpmd_macswap']:.1f} per testpmd frame: unequal checking")
    f = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
    ratio = ("generator-bound" if bound else f(row["ratio_macswap_shown"], 2)) + ("*" if disturbed else "")
    gb = f"{f(100 * rb if rb is not None else None, 0)}/{f(100 * mb if mb is not None else None, 0)}"
    print(f"{flows:>8} {size:>5} {f(rv):>10} {f(mv):>8} {ratio:>16} {gb:>11} {f(rc, 1):>13} {f(mc, 1):>12} "
          f"{f(row['cycles_ratio_macswap_over_rvsd'], 2):>10} {f(iv):>8} {errs:>7} {f(100 * row['lost_fraction'] if sent else None, 3):>7}")
by = {(x["flows"], x["frame_size"]): x for x in result["a"]}
small, big = by.get((1000, 64)), by.get((1000, 1500))
if small and big and small["rvsd_cycles_per_packet"] and big["rvsd_cycles_per_packet"]:
    k = big["rvsd_cycles_per_packet"] / small["rvsd_cycles_per_packet"]
    t = (big["testpmd_macswap_cycles_per_packet"] / small["testpmd_macswap_cycles_per_packet"]
         if big["testpmd_macswap_cycles_per_packet"] and small["testpmd_macswap_cycles_per_packet"] else None)
    result["a_cycles_1500_over_64"] = {"rvsd": k, "testpmd_macswap": t}
    print(f"rvsd cycles/packet at 1500 B / 64 B (1k flows): {k:.2f} (testpmd macswap: {'-' if t is None else f'{t:.2f}'})")
if any(x["disturbed"] for x in result["a"]):
    print(f"* the generator was descheduled (stalled) more than {100 * DISTURBED:.0f} % of the measured time in a run of this row:")
    print("  other load on the machine set the figures, cycles included (a preempted busy poll counts its wait)")
if any(k.startswith("v-") for k in runs_by):
    print("\nscenario v: scenario a over IPv6, 84 bytes, 1k flows (median of runs); reference: testpmd macswap with the")
    print("  same frames in the same run. cyc ratio = macswap cycles / rvsd cycles; Mpps ratio only where the generator")
    print(f"  stayed under {100 * GEN_BOUND:.0f} % busy in every run of both. NAT64's server-side frames are 20 bytes shorter.")
    print(f"{'family':>7} {'rvsd Mpps':>10} {'macswap':>8} {'Mpps ratio':>16} {'gen busy %':>11} "
          f"{'rvsd cyc/pkt':>13} {'macswap cyc':>12} {'cyc ratio':>10} {'errors':>7} {'lost %':>7}")
    for fam in ("ipv6", "nat64"):
        r = runs_by.get(f"v-rvsd_{fam}", [])
        m = runs_by.get(f"v-testpmd_macswap_{fam}", [])
        if not r and not m:
            continue
        rv, mv = med([x["mpps"] for x in r]), med([x["mpps"] for x in m])
        rb, mb = busy(r), busy(m)
        bound = rb is None or mb is None or rb >= GEN_BOUND or mb >= GEN_BOUND
        rc = med([c for c in map(rvsd_cpp, r) if c is not None])
        mc = med([c for c in map(tp_cpp, m) if c is not None])
        errs = sum(x["rewrite_errors"] for x in r)
        sent = sum(sum(x["tx"].values()) for x in r)
        lost = sum(max(0, v) for x in r for v in x["lost"].values())
        row = {"family": fam, "flows": 1000, "frame_size": 84, "rvsd_mpps": rv, "testpmd_macswap_mpps": mv,
               "ratio_macswap": rv / mv if rv and mv else None, "generator_bound": bound,
               "generator_busy_max": {"rvsd": rb, "testpmd_macswap": mb},
               "ratio_macswap_shown": None if bound or not (rv and mv) else rv / mv,
               "rvsd_cycles_per_packet": rc, "testpmd_macswap_cycles_per_packet": mc,
               "cycles_ratio_macswap_over_rvsd": mc / rc if rc and mc else None,
               "rewrite_errors": errs, "lost_fraction": lost / sent if sent else None,
               "runs": {"rvsd": r, "testpmd_macswap": m}}
        result["v"].append(row)
        f = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
        ratio = "generator-bound" if bound else f(row["ratio_macswap_shown"], 2)
        gb = f"{f(100 * rb if rb is not None else None, 0)}/{f(100 * mb if mb is not None else None, 0)}"
        print(f"{fam:>7} {f(rv):>10} {f(mv):>8} {ratio:>16} {gb:>11} {f(rc, 1):>13} {f(mc, 1):>12} "
              f"{f(row['cycles_ratio_macswap_over_rvsd'], 2):>10} {errs:>7} {f(100 * row['lost_fraction'] if sent else None, 3):>7}")
MODES = [("nat", "both", "testpmd macswap, both directions (as a)"),
         ("dr", "one", "testpmd macswap, client to server only"),
         ("tun", "one", "testpmd macswap, client to server only")]
if any(k.startswith("m-") for k in runs_by):
    print("\nscenario m: forwarding modes, 64 bytes, 1k flows (median of runs); reference: testpmd macswap in the same run,")
    print("  both directions for NAT (as a), client to server only for DR and TUN (replies bypass the gateway: the")
    print("  generator sends on port 0 only). cyc ratio = macswap cycles / rvsd cycles; Mpps ratio only where the")
    print(f"  generator stayed under {100 * GEN_BOUND:.0f} % busy in every run of both. TUN frames reach the real server 20 bytes longer.")
    print(f"{'mode':>5} {'dirs':>5} {'rvsd Mpps':>10} {'macswap':>8} {'Mpps ratio':>16} {'gen busy %':>11} "
          f"{'rvsd cyc/pkt':>13} {'macswap cyc':>12} {'cyc ratio':>10} {'errors':>7} {'lost %':>7}")
for fwd, dirs, refname in MODES:
    r = runs_by.get(f"m-rvsd_{fwd}", [])
    m = runs_by.get(f"m-testpmd_macswap_{dirs}", [])
    if not r and not m:
        continue
    rv, mv = med([x["mpps"] for x in r]), med([x["mpps"] for x in m])
    errs = sum(x["rewrite_errors"] for x in r)
    sent = sum(sum(x["tx"].values()) for x in r)
    lost = sum(max(0, v) for x in r for v in x["lost"].values())
    rb, mb = busy(r), busy(m)
    bound = rb is None or mb is None or rb >= GEN_BOUND or mb >= GEN_BOUND
    st = max([v for v in (stalled(r), stalled(m)) if v is not None], default=None)
    disturbed = st is not None and st > DISTURBED
    rc = med([c for c in map(rvsd_cpp, r) if c is not None])
    mc = med([c for c in map(tp_cpp, m) if c is not None])
    row = {"forward": fwd, "directions": dirs, "reference": refname, "flows": 1000, "frame_size": 64,
           "rvsd_mpps": rv, "testpmd_macswap_mpps": mv, "ratio_macswap": rv / mv if rv and mv else None,
           "generator_busy_max": {"rvsd": rb, "testpmd_macswap": mb}, "generator_bound_threshold": GEN_BOUND,
           "generator_bound": bound, "generator_stalled_max": st, "disturbed": disturbed,
           "ratio_macswap_shown": None if bound or not (rv and mv) else rv / mv,
           "rvsd_cycles_per_packet": rc, "testpmd_macswap_cycles_per_packet": mc,
           "cycles_ratio_macswap_over_rvsd": mc / rc if rc and mc else None,
           "cycles_rvsd_over_macswap": rc / mc if rc and mc else None,
           "rewrite_errors": errs, "errors": {k: sum(x["errors"][k] for x in r) for k in (r[0]["errors"] if r else {})},
           "lost_fraction": lost / sent if sent else None,
           "flows_per_real": [x.get("flows_per_real") for x in r],
           "runs": {"rvsd": r, "testpmd_macswap": m}}
    result["m"].append(row)
    f = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
    ratio = ("generator-bound" if bound else f(row["ratio_macswap_shown"], 2)) + ("*" if disturbed else "")
    gb = f"{f(100 * rb if rb is not None else None, 0)}/{f(100 * mb if mb is not None else None, 0)}"
    print(f"{fwd:>5} {dirs:>5} {f(rv):>10} {f(mv):>8} {ratio:>16} {gb:>11} {f(rc, 1):>13} {f(mc, 1):>12} "
          f"{f(row['cycles_ratio_macswap_over_rvsd'], 2):>10} {errs:>7} {f(100 * row['lost_fraction'] if sent else None, 3):>7}")
if any(x["disturbed"] for x in result["m"]):
    print(f"* the generator was descheduled more than {100 * DISTURBED:.0f} % of the measured time in a run of this row")
fr = sorted({k.split("-")[2] for k in runs_by if k.startswith("d-")}, key=int)
if fr:
    print("\nscenario d: one-way latency, 64 bytes, 1k flows, microseconds (median of runs)")
    print(f"{'load':>5} {'rate pps':>10} {'rvsd p50/p99/p999':>22} {'testpmd io p50/p99/p999':>26} {'added p99':>10}")
for p in fr:
    r, i = runs_by.get(f"d-rvsd-{p}", []), runs_by.get(f"d-testpmd_io-{p}", [])
    q = lambda xs, k: med([x["latency_ns"][k] / 1e3 for x in xs if x["latency_ns"][k] is not None])
    row = {"load_percent": int(p), "rate_pps": r[0]["rate_target_pps"] if r else None,
           "rvsd_us": {k: q(r, k) for k in ("p50", "p99", "p999")},
           "testpmd_io_us": {k: q(i, k) for k in ("p50", "p99", "p999")}, "target_added_p99_us_at_50": 20}
    row["added_us"] = {k: (row["rvsd_us"][k] - row["testpmd_io_us"][k]) if row["rvsd_us"][k] is not None and row["testpmd_io_us"][k] is not None else None for k in ("p50", "p99", "p999")}
    row["runs"] = {"rvsd": r, "testpmd_io": i}
    result["d"].append(row)
    t = lambda d: "/".join("-" if d[k] is None else f"{d[k]:.1f}" for k in ("p50", "p99", "p999"))
    a99 = row["added_us"]["p99"]
    print(f"{p + '%':>5} {row['rate_pps'] or 0:>10} {t(row['rvsd_us']):>22} {t(row['testpmd_io_us']):>26} {'-' if a99 is None else f'{a99:.1f}':>10}")
es = sorted((v[0] for k, v in runs_by.items() if k.startswith("e-") and not k.startswith("e-warmup")), key=lambda e: e["connections"])
if es:
    print("\nscenario e: memory per connection (bytes; target <= 128)")
    print(f"{'conns':>9} {'growth/conn':>12} {'total/conn':>11} {'gauge':>6}  (RSS idle tiny / idle / established, MiB)")
for e in es:
    result["e"].append(e)
    print(f"{e['connections']:>9} {e['bytes_per_conn_growth']:>12.1f} {e['bytes_per_conn_total']:>11.1f} {e['bytes_per_conn_gauge'] or '-':>6}  "
          f"({e['rss_kb_tiny_idle'] / 1024:.0f} / {e['rss_kb_idle'] / 1024:.0f} / {e['rss_kb_established'] / 1024:.0f})")
json.dump(result, open(out, "w"), indent=1)
print(f"\nwritten: {out}")
PY
summary_bc "$OUT"

if has s; then
    python3 - "$RUNDIR/s" "$OUT" "$S_NCPU" "$S_W2" "$S_TP2" "$SCALE_IDLE_US" <<'PY'
import glob, json, os, statistics, sys
sdir, out, ncpu, w2, tp2, idle = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
med = lambda xs: statistics.median(xs) if xs else None
runs = {}
for f in sorted(glob.glob(sdir + "/*-*-*.json")):
    base = os.path.basename(f)
    if base.endswith(".stats.json"):
        continue
    name, flows, run = base[:-5].rsplit("-", 2)
    r = {"run": int(run), "gen": json.load(open(f)), "workers": None, "rvsd_exit": None}
    st = f[:-5] + ".stats.json"
    if os.path.exists(st):
        r["workers"] = [dict(w["counters"], worker=w["worker"]) for w in json.load(open(st))["workers"]]
    ex = f[:-5] + ".exit"
    if os.path.exists(ex):
        r["rvsd_exit"] = int(open(ex).read())
    runs.setdefault((int(flows), name), []).append(r)
targets = [("rvsd1", "rvsd, 1 worker", 1), ("rvsd2_hash", "rvsd, 2 workers, hand-off", 2),
           ("rvsd2_owner", "rvsd, 2 workers, owner queue", 2), ("testpmd_1q", "testpmd macswap 1q", 1),
           ("testpmd_2q", "testpmd macswap 2q", 2)]
res = {"layout": {"cpus": ncpu, "generator_cpu": 0, "rvsd_main_cpu": 0, "rvsd_1_worker_cpus": [1],
                  "rvsd_2_worker_cpus": json.loads(w2), "testpmd_2q_lcores": tp2, "idle_sleep_us": idle,
                  "oversubscribed": ncpu < 4},
       "frame_size": 64, "rows": []}
print("\nscenario s: scaling, 64 bytes, Mpps (median of runs); hand-offs per worker from rvsd's stats at the end")
print("  of each run (warm-up included); share = handoff_out / rx_packets over all workers; x = median of per-run ratios")
print(f"{'flows':>7} {'target':<30} {'Mpps':>7} {'x 1w':>6} {'x tp1q':>6} {'x tp2q':>6} {'lost %':>7} {'errors':>6} {'handoff_out w0/w1':>19} {'share':>6} {'hfull':>6} {'lipnc':>6} {'exits':>5}")
# Ratios are medians of per-run ratios: run i measures every target back to back, so a ratio
# pairs measurements taken under about the same background load (which swings a lot here).
def paired(flows, key, ref):
    a = {x["run"]: x["gen"]["mpps"] for x in runs.get((flows, key), [])}
    b = {x["run"]: x["gen"]["mpps"] for x in runs.get((flows, ref), [])}
    return med([a[i] / b[i] for i in a if b.get(i)])
for flows in sorted({k[0] for k in runs}):
    for key, label, q in targets:
        rs = runs.get((flows, key), [])
        if not rs:
            continue
        mpps = med([x["gen"]["mpps"] for x in rs])
        sent = sum(sum(x["gen"]["tx"].values()) for x in rs)
        lost = sum(max(0, v) for x in rs for v in x["gen"]["lost"].values())
        errs = sum(x["gen"]["rewrite_errors"] for x in rs)
        ws = [x["workers"] for x in rs if x["workers"]]
        row = {"flows": flows, "target": key, "label": label, "queues": q, "mpps": mpps,
               "mpps_runs": [x["gen"]["mpps"] for x in sorted(rs, key=lambda x: x["run"])],
               "ratio_to_1_worker": paired(flows, key, "rvsd1") if key.startswith("rvsd") else None,
               "ratio_to_testpmd_1q": paired(flows, key, "testpmd_1q") if key.startswith("rvsd") else None,
               "ratio_to_testpmd_2q": paired(flows, key, "testpmd_2q") if key.startswith("rvsd") else None,
               "lost_fraction": lost / sent if sent else None, "rewrite_errors": errs,
               "rvsd_exits_after_run": sum(1 for x in rs if x["rvsd_exit"] is not None), "runs": rs}
        if ws:
            nw = len(ws[0])
            per = lambda k: [med([w[i].get(k, 0) for w in ws if len(w) == nw]) for i in range(nw)]
            row["handoff_out_per_worker"] = per("handoff_out")
            row["handoff_in_per_worker"] = per("handoff_in")
            row["rx_packets_per_worker"] = per("rx_packets")
            row["handoff_share"] = med([sum(w.get("handoff_out", 0) for w in x) / max(1, sum(w.get("rx_packets", 0) for w in x)) for x in ws])
            row["drop_handoff_full"] = sum(w.get("drop.handoff_full", 0) for x in ws for w in x)
            row["drop_lip_no_conn"] = sum(w.get("drop.lip_no_conn", 0) for x in ws for w in x)
        res["rows"].append(row)
        f = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"
        ho = "/".join(str(int(v)) for v in row.get("handoff_out_per_worker", [])) or "-"
        print(f"{flows:>7} {label:<30} {f(mpps):>7} {f(row['ratio_to_1_worker'], 2):>6} {f(row['ratio_to_testpmd_1q'], 2):>6} {f(row['ratio_to_testpmd_2q'], 2):>6} "
              f"{f(100 * row['lost_fraction'] if sent else None):>7} {errs:>6} {ho:>19} {f(row.get('handoff_share'), 3) if ws else '-':>6} "
              f"{row.get('drop_handoff_full', '-'):>6} {row.get('drop_lip_no_conn', '-'):>6} {row['rvsd_exits_after_run'] if key.startswith('rvsd') else '-':>5}")
lay = res["layout"]
print(f"layout: generator and rvsd main on CPU 0; 1 worker on CPU 1; 2 workers on CPUs {lay['rvsd_2_worker_cpus']}; "
      f"testpmd 2q lcores {tp2}; idle_sleep_us {idle}" + ("; OVERSUBSCRIBED (fewer than 4 CPUs)" if lay["oversubscribed"] else ""))
if lay["oversubscribed"]:
    print("  testpmd 2q busy-polls CPU 0 against the generator (testpmd cannot sleep when idle): no fair reference here;")
    print("  rvsd's 2 workers sleep idle_sleep_us after an empty poll, which is what lets the generator run beside worker 0.")
r = json.load(open(out))
r["s"] = res
json.dump(r, open(out, "w"), indent=1)
print(f"updated: {out}")
PY
fi
