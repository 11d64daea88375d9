#!/usr/bin/env bash
# BGP/ECMP scale-out: two rvsd gateways announce one VIP over BGP (BIRD 2 in each gateway's
# namespace, learning rvsd's `[announce] table`) to a router namespace running BIRD with ECMP
# (`merge paths`, L4 multipath hash). Shows: (a) both announce, the router has 2 nexthops and
# client connections are spread over both; (b) SIGTERM to one withdraws its route before it refuses
# anything, and a loop of new curls sees 0 failures; (c) long downloads on the surviving gateway
# complete; (d) how many downloads on the leaving gateway break; (e) kill -9 of one: new
# connections fail for at most the BGP hold time, then all succeed. Also: a VIP is withdrawn when
# its last real server leaves the setup and announced again when one comes back.
#
#   client ns  c0 198.18.10.2-9/24 ── rc 198.18.10.1 ┐ router ns (BIRD, AS 65000, ECMP)
#                                   brc 198.18.0.254/24: bridge of the gateways' client ports
#   gateway A ns  gc (DPDK "client" 198.18.0.1) ── brc;  gs (DPDK "server" 198.18.1.1) ── brs
#   gateway B ns  gc (DPDK "client" 198.18.0.2) ── brc;  gs (DPDK "server" 198.18.1.2) ── brs
#   server ns  brs 198.18.1.11-12/24 (nginx), a bridge of both gateways' server ports
#   VIP 198.18.50.100:80 (mh); LIP A 198.18.1.101, LIP B 198.18.1.102 (each answered by ARP by
#   its own gateway only, so FULLNAT replies go back to the gateway owning the connection)
#
# BGP runs between the gateway BIRD (AS 65001) and the router BIRD over the gateway's kernel
# interface for its client port (the exception path, `kernel = "kc"`) when rvsd has it. Without
# it (RVS_ECMP_LINK=mgmt, or an rvsd whose config has no `kernel`), over a separate veth
# 198.18.2.0/24 into the router, with the client port's address as BGP next hop; then `kill -9`
# of rvsd leaves BIRD announcing, so (e) is skipped and says so.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"

NS_RT="rvs${RVS_ID}rt"
NS_GA="rvs${RVS_ID}ga"
NS_GB="rvs${RVS_ID}gb"
VIPE=198.18.50.100
RT_C=198.18.10.1
RT_G=198.18.0.254
CLIENTS=(198.18.10.2 198.18.10.3 198.18.10.4 198.18.10.5)
RSE=(198.18.1.11 198.18.1.12)
declare -A GW_ADDR=([a]=198.18.0.1 [b]=198.18.0.2) SRV_ADDR=([a]=198.18.1.1 [b]=198.18.1.2)
declare -A LIPX=([a]=198.18.1.101 [b]=198.18.1.102) MGMT=([a]=198.18.2.1 [b]=198.18.2.2)
declare -A NSX=([a]=$NS_GA [b]=$NS_GB) CPU=([a]=1 [b]=0)
declare -A RVSD_P=() BIRD_P=()
HOLD=3
WITHDRAW_WAIT_MS=1500
TABLE=100
LINK=${RVS_ECMP_LINK:-auto}
# RVS_ECMP_BFD=1: BFD (100 ms x 3) beside BGP on both sides, for sub-second detection of a kill -9.
BFD=${RVS_ECMP_BFD:-0}
bfd_proto() { [ "$BFD" = 1 ] && echo 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }'; }
bfd_opt() { [ "$BFD" = 1 ] && echo 'bfd on;'; }
BIG_MB=8
# Downloads per phase: with 12, all of them on one gateway (nothing to compare) is 1 run in 2048.
NDL=12
RATE=1M

sock() { echo "$RVS_TMP/rvsd-$1.sock"; }
apix() { RVS_SOCK=$(sock "$1") api "$2"; }
counterx() { RVS_SOCK=$(sock "$1") counter "$2"; }
birdc_() { ip netns exec "$1" birdc -s "$2" "${@:3}"; }
ms() { date +%s%3N; }
# cond EXPR: an arithmetic condition, for check.
cond() { (( $1 )); }

cleanup() {
    local g
    for g in a b; do
        [ -n "${RVSD_P[$g]:-}" ] && kill -INT "${RVSD_P[$g]}" 2>/dev/null
    done
    sleep 0.3
    for g in a b; do
        [ -n "${RVSD_P[$g]:-}" ] && kill -9 "${RVSD_P[$g]}" 2>/dev/null
    done
    for p in "$RVS_TMP"/bird-*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
    topo_down
}

topo_ecmp_up() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local ns g
    _extra_ns+=("$NS_RT" "$NS_GA" "$NS_GB")
    for ns in "$NS_C" "$NS_S" "$NS_RT" "$NS_GA" "$NS_GB"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    # Client <-> router.
    ip link add c0 netns "$NS_C" type veth peer name rc netns "$NS_RT"
    _no_offload "$NS_C" c0; _no_offload "$NS_RT" rc
    for a in "${CLIENTS[@]}"; do ip -n "$NS_C" addr add "$a/24" dev c0; done
    ip -n "$NS_C" link set c0 up
    ip -n "$NS_C" route add 198.18.50.0/24 via "$RT_C"
    # Small receive windows: a rate-limited download then really spans its seconds on the wire
    # (with default buffers the whole file would sit in the client's socket before a gateway leaves).
    ip netns exec "$NS_C" sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
    ip -n "$NS_RT" addr add "$RT_C/24" dev rc
    ip -n "$NS_RT" link set rc up
    # Router: the gateways' client LAN is a bridge; ECMP hashes on L4 (policy 1).
    ip -n "$NS_RT" link add brc type bridge stp_state 0 forward_delay 0
    ip -n "$NS_RT" addr add "$RT_G/24" dev brc
    ip -n "$NS_RT" link set brc up
    ip netns exec "$NS_RT" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
    # Servers: a bridge with the real servers' addresses on it.
    ip -n "$NS_S" link add brs type bridge stp_state 0 forward_delay 0
    for a in "${RSE[@]}"; do ip -n "$NS_S" addr add "$a/24" dev brs; done
    ip -n "$NS_S" link set brs up
    for g in a b; do
        ns=${NSX[$g]}
        ip link add gc netns "$ns" type veth peer name "rg$g" netns "$NS_RT"
        ip link add gs netns "$ns" type veth peer name "sg$g" netns "$NS_S"
        _no_offload "$ns" gc; _no_offload "$ns" gs; _no_offload "$NS_RT" "rg$g"; _no_offload "$NS_S" "sg$g"
        ip -n "$NS_RT" link set "rg$g" master brc up
        ip -n "$NS_S" link set "sg$g" master brs up
        ip -n "$ns" link set gc up
        ip -n "$ns" link set gs up
        if [ "$LINK" = mgmt ]; then
            ip link add gm netns "$ns" type veth peer name "mg$g" netns "$NS_RT"
            ip -n "$ns" addr add "${MGMT[$g]}/24" dev gm
            ip -n "$ns" link set gm up
            ip -n "$NS_RT" link set "mg$g" up
            if [ "$g" = a ]; then
                ip -n "$NS_RT" link add brm type bridge stp_state 0 forward_delay 0
                ip -n "$NS_RT" addr add 198.18.2.254/24 dev brm
                ip -n "$NS_RT" link set brm up
            fi
            ip -n "$NS_RT" link set "mg$g" master brm
        fi
    done
    log "ecmp topology up ($LINK): $NS_C / $NS_RT / $NS_GA $NS_GB / $NS_S"
}

# write_gw G: rvsd's config for gateway G.
write_gw() {
    local g=$1 kernel="" kernel_s="" check=""
    if [ "$LINK" = tap ]; then
        kernel='kernel = "kc"'
        # Health checks from rvsd's namespace through the server port (the exception path).
        kernel_s='kernel = "ks"'
        check='check = { kind = "tcp", interval_ms = 500, timeout_ms = 400, rise = 1, fall = 2 }'
    fi
    cat > "$RVS_TMP/rvsd-$g.toml" <<CFG
version = 1

[eal]
log_level = 4
file_prefix = "hecmp-$RVS_ID-$g"

[workers]
main_lcore = 0
lcores = [1]
cpus = [${CPU[$g]}]
main_cpu = ${CPU[$g]}
idle_sleep_us = 50

[control]
socket = "$(sock "$g")"

[announce]
table = $TABLE
withdraw_wait_ms = $WITHDRAW_WAIT_MS

[conn]
drain_grace_s = 3

[[ports]]
name = "client"
device = "net_af_packet0,iface=gc"
addr = "${GW_ADDR[$g]}/24"
$kernel

[[ports]]
name = "server"
device = "net_af_packet1,iface=gs"
addr = "${SRV_ADDR[$g]}/24"
$kernel_s

[[routes]]
dst = "198.18.10.0/24"
via = "$RT_G"

[[services]]
proto = "tcp"
vip = "$VIPE:80"
sched = "mh"
laddrs = ["${LIPX[$g]}"]
reals = [{ addr = "${RSE[0]}:80" }, { addr = "${RSE[1]}:80" }]
$check
CFG
}

# start_gw G: start rvsd in gateway G's namespace, wait for its API.
start_gw() {
    local g=$1 i
    ip netns exec "${NSX[$g]}" "$RVSD" -c "$RVS_TMP/rvsd-$g.toml" \
        >> "$RVS_TMP/rvsd-$g.out" 2>> "$RVS_TMP/rvsd-$g.err" &
    RVSD_P[$g]=$!
    for i in $(seq 1 100); do
        apix "$g" '{"op":"version"}' >/dev/null 2>&1 && return 0
        kill -0 "${RVSD_P[$g]}" 2>/dev/null || { log "rvsd $g exited:"; cat "$RVS_TMP/rvsd-$g.err" >&2; return 1; }
        sleep 0.1
    done
    log "rvsd $g did not come up"; return 1
}

# start_bird NAME NS CONF
start_bird() {
    ip netns exec "$2" bird -c "$3" -s "$RVS_TMP/bird-$1.sock" -P "$RVS_TMP/bird-$1.pid" \
        || { log "bird $1 did not start"; return 1; }
    BIRD_P[$1]=$(cat "$RVS_TMP/bird-$1.pid")
}

# The gateway's BIRD: learns rvsd's table (`learn`: routes of another protocol number), exports it
# to the router. Hold 3 s / keepalive 1 s: the failure-detection time of a `kill -9`.
write_bird_gw() {
    local g=$1 local_addr nh=""
    if [ "$LINK" = tap ]; then
        local_addr=${GW_ADDR[$g]}
        peer=$RT_G
    else
        local_addr=${MGMT[$g]}
        peer=198.18.2.254
        nh="next hop address ${GW_ADDR[$g]};"
    fi
    cat > "$RVS_TMP/bird-$g.conf" <<CONF
log "$RVS_TMP/bird-$g.log" all;
router id $local_addr;
protocol device { scan time 1; }
ipv4 table vips;
# rvsd's [announce] table: one blackhole VIP/32 per VIP it can serve.
protocol kernel rvs {
    kernel table $TABLE;
    learn;
    scan time 1;
    ipv4 { table vips; import all; export none; };
}
protocol bgp uplink {
    local $local_addr as 65001;
    neighbor $peer as 65000;
    hold time $HOLD;
    keepalive time 1;
    connect retry time 1;
    error wait time 1, 5;   # BIRD's default waits 60 s after an error (a gateway that went away)
    $(bfd_opt)
    ipv4 { table vips; import none; export all; next hop self; $nh };
}
$(bfd_proto)
CONF
}

write_bird_router() {
    local ga gb
    if [ "$LINK" = tap ]; then ga=${GW_ADDR[a]}; gb=${GW_ADDR[b]}; else ga=${MGMT[a]}; gb=${MGMT[b]}; fi
    cat > "$RVS_TMP/bird-rt.conf" <<CONF
log "$RVS_TMP/bird-rt.log" all;
router id $RT_G;
protocol device { scan time 1; }
# ECMP: equal BGP routes become one multipath kernel route.
protocol kernel {
    merge paths on limit 8;
    ipv4 { import none; export all; };
}
template bgp gwpeer {
    local as 65000;
    hold time $HOLD;
    keepalive time 1;
    connect retry time 1;
    error wait time 1, 5;
    $(bfd_opt)
    ipv4 { import all; export none; };
}
protocol bgp gwa from gwpeer { neighbor $ga as 65001; }
protocol bgp gwb from gwpeer { neighbor $gb as 65001; }
$(bfd_proto)
CONF
}

# nh: the number of nexthops of the router's kernel route to the VIP (0: none).
nh() {
    local out
    out=$(ip -n "$NS_RT" -4 route show exact "$VIPE/32" 2>/dev/null)
    if [ -z "$out" ]; then echo 0
    elif grep -q nexthop <<<"$out"; then grep -c nexthop <<<"$out"
    else echo 1; fi
}

# wait_nh N SECONDS: until the router's route has N nexthops; prints the ms waited.
wait_nh() {
    local want=$1 t0 deadline
    t0=$(ms); deadline=$(( t0 + $2 * 1000 ))
    while [ "$(ms)" -lt "$deadline" ]; do
        if [ "$(nh)" -eq "$want" ]; then echo $(( $(ms) - t0 )); return 0; fi
        sleep 0.02
    done
    echo -1; return 1
}

# The client's loop of new connections: one curl at a time, each from the next source address,
# "<ms> ok|fail" per request; stops when $1.stop exists, after $2 requests, or after 60 s.
cat > "$RVS_TMP/loop.sh" <<'LOOP'
out=$1 max=$2 vip=$3; shift 3
end=$(( $(date +%s) + 60 )); i=0
while [ ! -e "$out.stop" ] && [ "$i" -lt "$max" ] && [ "$(date +%s)" -lt "$end" ]; do
    src=${@:$(( i % $# + 1 )):1}
    t=$(date +%s%3N)
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 0.5 -m 2 --interface "$src" "http://$vip/")" = 200 ]; then
        echo "$t ok"; else echo "$t fail"; fi >> "$out"
    i=$(( i + 1 ))
done
LOOP
loop_start() { : > "$RVS_TMP/$1"; rm -f "$RVS_TMP/$1.stop"
    bg "$NS_C" bash "$RVS_TMP/loop.sh" "$RVS_TMP/$1" "$2" "$VIPE" "${CLIENTS[@]}"; LOOP_PID=$!; }
loop_stop() { touch "$RVS_TMP/$1.stop"; wait "$LOOP_PID" 2>/dev/null; }
count() { grep -c " $2\$" "$RVS_TMP/$1" || true; }

# ---------------------------------------------------------------------------------------------
command -v bird >/dev/null || { fail "bird (Debian's bird2) is not installed: run scripts/setup.sh"; finish; exit 1; }
# Which link BGP uses: the exception path when this rvsd has `kernel` in [[ports]].
if [ "$LINK" = auto ]; then
    LINK=mgmt
    printf 'version = 1\n[[ports]]\nname = "c"\ndevice = "net_ring0"\naddr = "198.18.0.1/24"\nkernel = "kc"\n' \
        > "$RVS_TMP/probe.toml"
    if "$RVSD" -c "$RVS_TMP/probe.toml" --check >/dev/null 2>&1; then LINK=tap; fi
fi
topo_ecmp_up
NGINX_RS_BIG_MB=$BIG_MB nginx_rs_start "$NS_S" "${RSE[@]}" || { fail "nginx did not start"; finish; exit 1; }
BIG_SHA=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
for g in a b; do write_gw "$g"; write_bird_gw "$g"; done
write_bird_router
# A stale route of an earlier run in A's table: rvsd deletes it at start.
ip -n "$NS_GA" route add blackhole 198.18.50.199/32 table "$TABLE" proto 201
start_bird rt "$NS_RT" "$RVS_TMP/bird-rt.conf" || exit 1
for g in a b; do
    start_gw "$g" || { fail "rvsd $g did not start"; finish; exit 1; }
    start_bird "$g" "${NSX[$g]}" "$RVS_TMP/bird-$g.conf" || exit 1
done
echo "== BGP over the $LINK link (BFD $([ "$BFD" = 1 ] && echo on || echo off)); BIRD $(bird --version 2>&1 | awk '{print $3}')"

echo "== (a) both gateways announce the VIP; the router spreads clients over both"
check "stale route of an earlier run deleted at start" \
    [ -z "$(ip -n "$NS_GA" route show table "$TABLE" 198.18.50.199/32)" ]
check "rvsd A keeps blackhole $VIPE/32 in table $TABLE (proto 201)" \
    grep -q "blackhole $VIPE proto 201" <(ip -n "$NS_GA" route show table "$TABLE")
t=$(wait_nh 2 20)
check "router has a 2-nexthop route to $VIPE (after ${t} ms)" [ "$t" -ge 0 ]
ip -n "$NS_RT" route show exact "$VIPE/32" | sed 's/^/    /'
ip netns exec "$NS_RT" birdc -s "$RVS_TMP/bird-rt.sock" show route "$VIPE/32" all 2>/dev/null \
    | grep -E 'via|BGP.as_path|BGP.next_hop' | sed 's/^/    /'
loop_start spread 200
wait "$LOOP_PID"
ca=$(counterx a conns_created); cb=$(counterx b conns_created)
echo "    200 curls: $(count spread ok) ok, $(count spread fail) failed; conns_created A=$ca B=$cb"
check "200 curls from 4 addresses all succeed" [ "$(count spread ok)" -eq 200 ]
check "both gateways took connections (A=$ca, B=$cb)" cond "$ca >= 30 && $cb >= 30"

echo "== withdraw when the last real server leaves, announce when one comes back (gateway A)"
id='"proto":"tcp","vip":"'$VIPE':80"'
for r in "${RSE[@]}"; do apix a '{"op":"delete_real",'"$id"',"addr":"'"$r"':80"}' >/dev/null; done
t=$(wait_nh 1 10)
check "A withdrew $VIPE with no real server left; router down to 1 nexthop in ${t} ms" [ "$t" -ge 0 ]
check "A's table is empty" [ -z "$(ip -n "$NS_GA" route show table "$TABLE")" ]
for r in "${RSE[@]}"; do apix a '{"op":"add_real",'"$id"',"real":{"addr":"'"$r"':80"}}' >/dev/null; done
t=$(wait_nh 2 10)
check "A announces again once a real is back; 2 nexthops after ${t} ms" [ "$t" -ge 0 ]

if [ "$LINK" = tap ]; then
    echo "== health checks: A's checks of both real servers fail, A withdraws, B keeps announcing"
    # The servers drop A's checks (from A's server port address; its FULLNAT traffic comes from its LIP).
    ip netns exec "$NS_S" nft -f - <<NFT
table ip hecmp {
    chain checks {
        type filter hook input priority 0;
        ip saddr ${SRV_ADDR[a]} tcp dport 80 drop
    }
}
NFT
    t=$(wait_nh 1 10)
    check "A's checks failed: router at 1 nexthop after ${t} ms" [ "$t" -ge 0 ]
    check "the remaining nexthop is B" grep -q "via ${GW_ADDR[b]}" <(ip -n "$NS_RT" route show exact "$VIPE/32")
    ip netns exec "$NS_S" nft delete table ip hecmp
    t=$(wait_nh 2 10)
    check "A's checks pass again: 2 nexthops after ${t} ms" [ "$t" -ge 0 ]
    grep -E "health:|announce:" "$RVS_TMP/rvsd-a.err" | sed 's/\x1b\[[0-9;]*m//g; s/^/    A: /' | tail -6
fi

echo "== (b)-(d) SIGTERM to B under rate-limited downloads and a loop of new curls"
# Downloads from fixed source ports, so the gateway holding each is known.
for i in $(seq 0 $((NDL - 1))); do
    src=${CLIENTS[$(( i % ${#CLIENTS[@]} ))]}
    bg "$NS_C" curl -s --noproxy '*' --interface "$src" --local-port $(( 41000 + i )) --limit-rate "$RATE" \
        --speed-time 3 --speed-limit 1000 -m 30 -o "$RVS_TMP/dl$i" "http://$VIPE/big"
    DL_PID[$i]=$!
done
declare -A ON=()
# Where each download is: the gateway holding a connection from its source port (up to 3 s for
# a SYN retransmitted on a loaded machine).
for _ in $(seq 1 15); do
    sleep 0.2
    ON=()
    for g in a b; do
        # By the download's own address and port, live states only: the earlier curls' closed
        # connections (TIME_WAIT) may have used the same port number from another address.
        apix "$g" '{"op":"list_conns","limit":1000}' | python3 -c '
import json, sys
clients, n = sys.argv[1].split(), int(sys.argv[2])
want = {"%s:%d" % (clients[i % len(clients)], 41000 + i): i for i in range(n)}
for c in json.load(sys.stdin).get("conns", []):
    if c["client"] in want and c["state"] in ("SYN_RECV", "ESTABLISHED"): print(want[c["client"]])' \
            "${CLIENTS[*]}" "$NDL" > "$RVS_TMP/on-$g"
        for i in $(cat "$RVS_TMP/on-$g"); do ON[$i]=$g; done
    done
    [ "${#ON[@]}" -eq "$NDL" ] && break
done
echo "    downloads on A: $(tr '\n' ' ' < "$RVS_TMP/on-a")  on B: $(tr '\n' ' ' < "$RVS_TMP/on-b")"
check "all $NDL downloads are placed on a gateway" [ "${#ON[@]}" -eq "$NDL" ]
a_nc0=$(counterx a drop.tcp_no_conn)
loop_start leave 2000
sleep 0.5
t_term=$(ms)
kill -TERM "${RVSD_P[b]}"
t=$(wait_nh 1 10)
t_conv=$(( t_term + t ))
echo "    SIGTERM at +0; router at 1 nexthop after ${t} ms (withdraw_wait_ms $WITHDRAW_WAIT_MS)"
check "B's route withdrawn: router down to 1 nexthop in ${t} ms" [ "$t" -ge 0 ]
wait "${RVSD_P[b]}" 2>/dev/null; RVSD_P[b]=
sleep 1
loop_stop leave
# When B started refusing: its drain log line.
t_drain=$(python3 - "$RVS_TMP/rvsd-b.err" <<'PY'
import datetime, re, sys
for line in open(sys.argv[1], errors="replace"):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    if "SIGTERM: draining" in line:
        ts = line.split()[0].rstrip("Z")
        d = datetime.datetime.fromisoformat(ts[:26]).replace(tzinfo=datetime.timezone.utc)
        print(int(d.timestamp() * 1000)); break
PY
)
echo "    B drained (refusing new connections) at +$(( ${t_drain:-0} - t_term )) ms"
check "B withdrew before refusing anything (router converged at +$t ms, drain at +$(( ${t_drain:-0} - t_term )) ms)" \
    cond "${t_drain:-0} > 0 && $t_conv < ${t_drain:-0}"
grep -E "announce|SIGTERM|drain" "$RVS_TMP/rvsd-b.err" | sed 's/\x1b\[[0-9;]*m//g; s/^/    B: /' | tail -6
nd=$(grep -o 'draining=[0-9]*' "$RVS_TMP/rvsd-b.out" | awk -F= '{n += $2} END {print n + 0}')
check "B refused no SYN while draining (drop.draining=${nd:-0})" [ "${nd:-0}" -eq 0 ]
# A curl whose connection B accepted just before the router moved (started before convergence)
# is a connection on the leaving gateway: its next packets reach A, which has no state for it,
# as in (d). Every curl started after convergence must succeed.
late_fail=$(awk -v c="$t_conv" '$1 > c && $2 == "fail"' "$RVS_TMP/leave" | wc -l)
early_fail=$(awk -v c="$t_conv" '$1 <= c && $2 == "fail"' "$RVS_TMP/leave" | wc -l)
early=$(awk -v c="$t_conv" '$1 <= c' "$RVS_TMP/leave" | wc -l)
echo "    new curls during the leave: $(count leave ok) ok, $(count leave fail) failed" \
    "($early_fail of the $early started before the router converged, in flight at the switch)"
check "loop of new curls during SIGTERM: 0 failures of $(( $(count leave ok) + $(count leave fail) - early )) started after the withdrawal converged" \
    cond "$late_fail == 0 && $(count leave ok) > 20"
for i in $(seq 0 $((NDL - 1))); do wait "${DL_PID[$i]}" 2>/dev/null; done
ok_a=0; n_a=0; ok_b=0; n_b=0
for i in $(seq 0 $((NDL - 1))); do
    good=0
    [ -f "$RVS_TMP/dl$i" ] && [ "$(sha256sum "$RVS_TMP/dl$i" | cut -d' ' -f1)" = "$BIG_SHA" ] && good=1
    case ${ON[$i]:-} in
        a) n_a=$((n_a + 1)); ok_a=$((ok_a + good)) ;;
        b) n_b=$((n_b + 1)); ok_b=$((ok_b + good)) ;;
    esac
done
echo "    downloads: on A $ok_a of $n_a complete (sha256 ok); on B $ok_b of $n_b complete"
check "(c) every download on the surviving gateway A completes with a matching sha256 ($ok_a/$n_a)" \
    cond "$n_a > 0 && $ok_a == $n_a"
echo "    (d) downloads on the leaving gateway B broken: $(( n_b - ok_b )) of $n_b; A dropped $(( $(counterx a drop.tcp_no_conn) - a_nc0 )) of their segments (no connection)"
check "(d) measured: $(( n_b - ok_b )) of $n_b connections on B broke" [ "$n_b" -gt 0 ]

echo "== B rejoins under downloads held by A alone: what the router's ECMP moves"
# Linux multipath is hash-threshold: going from 1 to 2 nexthops gives B half of the hash space,
# and the flows in it move to B, which has no state for them (no resilient nexthop groups from
# BIRD 2.0.12: it installs RTA_MULTIPATH routes, not nexthop objects).
for i in $(seq 0 $((NDL - 1))); do
    src=${CLIENTS[$(( i % ${#CLIENTS[@]} ))]}
    bg "$NS_C" curl -s --noproxy '*' --interface "$src" --local-port $(( 42000 + i )) --limit-rate "$RATE" \
        --speed-time 3 --speed-limit 1000 -m 30 -o "$RVS_TMP/rj$i" "http://$VIPE/big"
    DL_PID[$i]=$!
done
sleep 1
start_gw b || { fail "rvsd b did not restart"; finish; exit 1; }
t=$(wait_nh 2 20)
check "B back: 2 nexthops after ${t} ms" [ "$t" -ge 0 ]
[ "$t" -ge 0 ] || { birdc_ "$NS_GB" "$RVS_TMP/bird-b.sock" show protocols all uplink
    birdc_ "$NS_RT" "$RVS_TMP/bird-rt.sock" show protocols all gwb; } 2>&1 | sed 's/^/    /'
for i in $(seq 0 $((NDL - 1))); do wait "${DL_PID[$i]}" 2>/dev/null; done
kept=0
for i in $(seq 0 $((NDL - 1))); do
    [ -f "$RVS_TMP/rj$i" ] && [ "$(sha256sum "$RVS_TMP/rj$i" | cut -d' ' -f1)" = "$BIG_SHA" ] && kept=$((kept + 1))
done
nob=$(counterx b drop.tcp_no_conn)
echo "    rejoin: $kept of $NDL downloads on A completed, $(( NDL - kept )) moved to B and broke (B dropped $nob segments of connections it does not have)"
# A flow that moves after its last byte reached the client completes anyway (only its closing
# segments are B's drops), so: every broken download had packets dropped by B, not the converse.
check "downloads broken by the rejoin ($(( NDL - kept ))) are ones B dropped segments of (${nob})" \
    cond "$NDL - $kept == 0 || $nob > 0"

echo "== (e) kill -9 of one rvsd"
if [ "$LINK" != tap ]; then
    echo "    SKIP: without the exception path BGP does not run through rvsd, so BIRD keeps announcing"
    echo "          after rvsd dies; the hold timer never fires"
else
    t=$(wait_nh 2 10)
    check "both gateways announce before the kill (${t} ms)" [ "$t" -ge 0 ]
    loop_start kill 3000
    sleep 1
    t_kill=$(ms)
    kill -9 "${RVSD_P[b]}"; wait "${RVSD_P[b]}" 2>/dev/null; RVSD_P[b]=
    t=$(wait_nh 1 10)
    echo "    kill -9 at +0; router at 1 nexthop after ${t} ms (hold time ${HOLD} s, BFD $BFD)"
    sleep 2
    loop_stop kill
    read -r nfail first last <<<"$(awk -v k="$t_kill" '$2=="fail"{n++; if(!f)f=$1-k; l=$1-k} END{print n+0, f+0, l+0}' "$RVS_TMP/kill")"
    after=$(awk -v k="$t_kill" -v c="$t" '$1-k > c+500 {print $2}' "$RVS_TMP/kill" | sort | uniq -c | tr '\n' ' ')
    echo "    failures: $nfail, first at +${first} ms, last at +${last} ms; after convergence: $after"
    check "kill -9 detected by the router within the hold time + 1 s (${t} ms)" \
        cond "$t >= 0 && $t <= $HOLD * 1000 + 1000"
    check "new curls fail only until then (last failure at +${last} ms)" [ "$last" -le $(( t + 2500 )) ]
    check "all new curls succeed after convergence" [ -z "$(awk -v k="$t_kill" -v c="$t" '$1-k > c+2500 && $2=="fail"' "$RVS_TMP/kill")" ]
fi

echo "== SIGINT to A removes its routes at exit"
kill -INT "${RVSD_P[a]}"; wait "${RVSD_P[a]}" 2>/dev/null; RVSD_P[a]=
check "A's table is empty after exit" [ -z "$(ip -n "$NS_GA" route show table "$TABLE")" ]
finish
