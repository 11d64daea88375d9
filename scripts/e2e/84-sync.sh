#!/usr/bin/env bash
# Connection sync (IPVS sync protocol v1): a master rvsd streams its connections to a backup rvsd
# over multicast 224.0.0.81:8848 on a kernel link between the two gateways.
#
#   client ns c0 198.18.0.2 ─┐            ┌─ gc  g1 (master rvsd, DPDK af_packet)  y1 198.18.5.1 ─┐
#                            brc (sw ns) ─┤                                                      │ sync
#   server ns s0 RS .11-.13 ─┐            └╌ gc  g2 (backup rvsd, same MACs, detached)  y2 .5.2 ─┘
#                            brs (sw ns) ── gs of g1 (g2's gs detached)
#
# Both gateways have the same port addresses, VIP and LIP and the same MACs; only the master's
# ports are on the bridges (the VRRP part of docs/ha.md is what moves them in production). Checks:
# a backup that starts late gets the full table; new connections, state changes and releases
# follow; the backup's `rvsadm -lnc` shows the same client tuple, LIP:lport, real and state as the
# master's; a SYN-proxied connection carries its sequence shift. Then the master is killed, the
# backup's ports take the master's place on the bridges, and the downloads that span the
# takeover (plain and SYN-proxied) complete with a matching sha256.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"

NS_G1="rvs${RVS_ID}g1"
NS_G2="rvs${RVS_ID}g2"
NS_W="rvs${RVS_ID}w"
SOCK1="$RVS_TMP/m.sock"
SOCK2="$RVS_TMP/b.sock"
PID1=
PID2=
SYNCID=7

cleanup() {
    local rc=$?
    set +e
    for p in $PID1 $PID2; do kill -9 "$p" 2>/dev/null; done
    nginx_rs_stop >/dev/null 2>&1
    for p in "${_bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for ns in "$NS_C" "$NS_S" "$NS_G1" "$NS_G2" "$NS_W"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        fi
    done
    [ -n "${RVS_KEEP_TMP:-}" ] || rm -rf "$RVS_TMP"
    return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The whole run is bounded: a stuck step cannot hold the machine.
( sleep 240; echo "84-sync: 240 s limit reached" >&2; kill -TERM $$ ) &
_bg_pids+=($!)

topo() {
    local ns
    for ns in "$NS_C" "$NS_S" "$NS_G1" "$NS_G2" "$NS_W"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_W" link add brc type bridge stp_state 0 forward_delay 0
    ip -n "$NS_W" link add brs type bridge stp_state 0 forward_delay 0
    ip link add c0 netns "$NS_C" type veth peer name wcc netns "$NS_W"
    ip link add s0 netns "$NS_S" type veth peer name wss netns "$NS_W"
    ip link add gc netns "$NS_G1" address 02:00:00:84:00:01 type veth peer name wc1 netns "$NS_W"
    ip link add gs netns "$NS_G1" address 02:00:00:84:01:01 type veth peer name ws1 netns "$NS_W"
    ip link add gc netns "$NS_G2" address 02:00:00:84:00:01 type veth peer name wc2 netns "$NS_W"
    ip link add gs netns "$NS_G2" address 02:00:00:84:01:01 type veth peer name ws2 netns "$NS_W"
    ip link add y1 netns "$NS_G1" type veth peer name y2 netns "$NS_G2"
    _no_offload "$NS_C" c0; _no_offload "$NS_S" s0
    for ns in "$NS_G1" "$NS_G2"; do _no_offload "$ns" gc; _no_offload "$ns" gs; done
    for d in wcc wss wc1 ws1 wc2 ws2; do _no_offload "$NS_W" "$d"; done
    for d in wcc wc1; do ip -n "$NS_W" link set "$d" master brc; done
    for d in wss ws1; do ip -n "$NS_W" link set "$d" master brs; done
    for d in brc brs wcc wss wc1 ws1 wc2 ws2; do ip -n "$NS_W" link set "$d" up; done
    ip -n "$NS_C" addr add "$CLIENT/24" dev c0
    ip -n "$NS_C" link set c0 up
    for a in "${RS[@]}"; do ip -n "$NS_S" addr add "$a/24" dev s0; done
    ip -n "$NS_S" link set s0 up
    for ns in "$NS_G1" "$NS_G2"; do
        ip -n "$ns" link set gc up
        ip -n "$ns" link set gs up
    done
    ip -n "$NS_G1" addr add 198.18.5.1/24 dev y1
    ip -n "$NS_G2" addr add 198.18.5.2/24 dev y2
    ip -n "$NS_G1" link set y1 up
    ip -n "$NS_G2" link set y2 up
    log "topology up: $NS_C $NS_S $NS_G1 (master) $NS_G2 (backup) $NS_W (bridges)"
}

# config ROLE SOCKET SYNC_IF PREFIX
config() {
    cat <<CFG
version = 1

[eal]
log_level = 4
file_prefix = "hsync${RVS_ID}$4"

[workers]
main_lcore = 0
lcores = [1]
idle_sleep_us = 50

[control]
socket = "$2"

[[ports]]
name = "client"
device = "net_af_packet0,iface=gc"
addr = "$GW_C/24"

[[ports]]
name = "server"
device = "net_af_packet1,iface=gs"
addr = "$GW_S/24"

[conn]
max_per_worker = 65536

[conn.timeouts]
established = 120
syn_recv = 5
fin_wait = 60
time_wait = 2
close = 1
close_wait = 2
last_ack = 2

[sync]
role = "$1"
interface = "$3"
syncid = $SYNCID

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]

[[services]]
proto = "tcp"
vip = "$VIP:81"
sched = "rr"
synproxy = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
CFG
}

# start NS CONFIG SOCKET OUT: rvsd in NS, its pid on stdout once the API answers.
start() {
    ip netns exec "$1" "$RVSD" -c "$2" > "$4.out" 2> "$4.err" &
    local pid=$! i
    for i in $(seq 1 100); do
        if [ -S "$3" ] && python3 "$RVS_ROOT/scripts/lib/api.py" "$3" '{"op":"version"}' >/dev/null 2>&1; then
            echo "$pid"; return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$4.err" >&2; return 1; }
        sleep 0.1
    done
    cat "$4.err" >&2
    return 1
}

A() { python3 "$RVS_ROOT/scripts/lib/api.py" "$1" "$2"; }
C() { ip netns exec "$NS_C" "$@"; }

# conns SOCKET: one line per connection, "client vip lip rs state", sorted.
conns() {
    A "$1" '{"op":"list_conns","limit":100000}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
for c in sorted(r["conns"], key=lambda c: (c["client"], c["vip"])):
    print(c["client"], c["vip"], c["lip"], c["rs"], c["state"])'
}


# sync_counter SOCKET NAME
sync_counter() {
    A "$1" '{"op":"sync_status"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(dict(r.get("counters", [])).get(sys.argv[1], 0))' "$2"
}

# wait_same N: until the backup's connections (any state) are the master's and there are N (5 s
# at most).
wait_same() {
    local i
    for i in $(seq 1 50); do
        [ "$(conns "$SOCK1")" = "$(conns "$SOCK2")" ] && [ "$(conns "$SOCK2" | wc -l)" -eq "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# download PORT NAME: a slow download (about 200 kB/s) through the VIP, the body's sha256 into
# $RVS_TMP/NAME.sha ("short" if the connection broke before the end).
cat > "$RVS_TMP/slow.py" <<'PY'
import hashlib, socket, sys, time
vip, port, name, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((vip, port), timeout=10)
s.settimeout(10)
s.sendall(b"GET /big?n=%s HTTP/1.0\r\nHost: x\r\n\r\n" % name.encode())
buf, h, length, got, t0 = b"", hashlib.sha256(), None, 0, time.time()
while True:
    d = s.recv(16384)
    if not d:
        break
    if length is None:
        buf += d
        if b"\r\n\r\n" not in buf:
            continue
        head, d = buf.split(b"\r\n\r\n", 1)
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    h.update(d)
    got += len(d)
    # 200 kB/s on average
    time.sleep(max(0.0, got / 200000 - (time.time() - t0)))
open(out, "w").write(h.hexdigest() if got == length else "short %d" % got)
PY
download() {
    C timeout 90 python3 "$RVS_TMP/slow.py" "$VIP" "$1" "$2" "$RVS_TMP/$2.sha" &
    _bg_pids+=($!)
    eval "DL_$2=$!"
}

topo
NGINX_RS_BIG_MB=4 nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
want_sha=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
config master "$SOCK1" y1 m > "$RVS_TMP/m.toml"
config backup "$SOCK2" y2 b > "$RVS_TMP/b.toml"
PID1=$(start "$NS_G1" "$RVS_TMP/m.toml" "$SOCK1" "$RVS_TMP/m") || { fail "master rvsd did not start"; finish; exit 1; }

echo "== $(date +%T) the master runs alone; 4 slow downloads through it"
for i in 1 2 3 4; do download 80 a$i; done
sleep 1.5
n=$(conns "$SOCK1" | wc -l)
check "the master has the 4 connections ($n)" [ "$n" -eq 4 ]
check "the master sent sync messages with nobody listening yet ($(sync_counter "$SOCK1" msgs_sent))" \
    [ "$(sync_counter "$SOCK1" msgs_sent)" -ge 1 ]

echo "== $(date +%T) a backup that starts late asks for the full table"
PID2=$(start "$NS_G2" "$RVS_TMP/b.toml" "$SOCK2" "$RVS_TMP/b") || { fail "backup rvsd did not start"; finish; exit 1; }
check "the backup's connections are the master's (client, VIP, LIP:lport, real, state)" wait_same 4
conns "$SOCK2" | sed 's/^/    backup: /'
check "the backup sent a full-table request ($(sync_counter "$SOCK2" requests_sent))" [ "$(sync_counter "$SOCK2" requests_sent)" -eq 1 ]
check "the master served it ($(sync_counter "$SOCK1" requests_served))" [ "$(sync_counter "$SOCK1" requests_served)" -eq 1 ]
check "the backup installed 4 ($(sync_counter "$SOCK2" installed))" [ "$(sync_counter "$SOCK2" installed)" -ge 4 ]

echo "== $(date +%T) rvsadm -lnc on both"
RVSADM_SOCKET=$SOCK1 "$RVSADM" -lnc > "$RVS_TMP/m.lnc" 2>&1
RVSADM_SOCKET=$SOCK2 "$RVSADM" -lnc > "$RVS_TMP/b.lnc" 2>&1
sed 's/^/    master: /' "$RVS_TMP/m.lnc"
sed 's/^/    backup: /' "$RVS_TMP/b.lnc"
# The expire column differs (each side counts down its own timer); the rest must match.
cut_exp() { grep '^TCP' "$1" | awk '{print $1, $3, $4, $5, $6, $7}' | sort; }
check "rvsadm -lnc shows the same rows on both (expire column aside)" \
    [ "$(cut_exp "$RVS_TMP/m.lnc")" = "$(cut_exp "$RVS_TMP/b.lnc")" -a -n "$(cut_exp "$RVS_TMP/b.lnc")" ]
RVSADM_SOCKET=$SOCK2 "$RVSADM" -L --daemon > "$RVS_TMP/b.daemon" 2>&1
RVSADM_SOCKET=$SOCK1 "$RVSADM" -L --daemon > "$RVS_TMP/m.daemon" 2>&1
sed 's/^/    /' "$RVS_TMP/m.daemon" "$RVS_TMP/b.daemon"
check "rvsadm -L --daemon on the master: master sync daemon (mcast=y1, syncid=$SYNCID ...)" \
    grep -q "^master sync daemon (mcast=y1, syncid=$SYNCID" "$RVS_TMP/m.daemon"
check "rvsadm -L --daemon on the backup: backup sync daemon (mcast=y2, syncid=$SYNCID ...)" \
    grep -q "^backup sync daemon (mcast=y2, syncid=$SYNCID" "$RVS_TMP/b.daemon"

echo "== $(date +%T) rvsadm --stop-daemon / --start-daemon at run time (the backup)"
RVSADM_SOCKET=$SOCK2 "$RVSADM" --stop-daemon backup
check "--stop-daemon backup: -L --daemon lists nothing" [ -z "$(RVSADM_SOCKET=$SOCK2 "$RVSADM" -L --daemon)" ]
check "--stop-daemon backup again is refused" bash -c "! RVSADM_SOCKET='$SOCK2' '$RVSADM' --stop-daemon backup 2>/dev/null"
RVSADM_SOCKET=$SOCK2 "$RVSADM" --start-daemon backup --mcast-interface y2 --syncid "$SYNCID"
check "--start-daemon backup --mcast-interface y2 --syncid $SYNCID: running again" \
    grep -q "^backup sync daemon (mcast=y2, syncid=$SYNCID" <<<"$(RVSADM_SOCKET=$SOCK2 "$RVSADM" -L --daemon)"
check "the restarted backup asked for the table again ($(sync_counter "$SOCK1" requests_served) served)" \
    bash -c "for i in \$(seq 30); do [ \$(python3 '$RVS_ROOT/scripts/lib/api.py' '$SOCK1' '{\"op\":\"sync_status\"}' | grep -o '\"requests_served\",[0-9]*' | cut -d, -f2) -ge 2 ] && exit 0; sleep 0.1; done; exit 1"

echo "== $(date +%T) new connections follow, a SYN-proxied one too"
for i in 5 6 7; do download 80 a$i; done
download 81 sp
sleep 1.5
n=$(conns "$SOCK1" | wc -l)
check "8 connections on the master ($n)" [ "$n" -eq 8 ]
check "the backup's connections are the master's" wait_same 8
check "the SYN-proxied connection (VIP:81) is on the backup" grep -q " $VIP:81 " <<<"$(conns "$SOCK2")"

echo "== $(date +%T) releases propagate"
for n in a1 a2 a7; do C pkill -f "slow.py $VIP 80 $n " 2>/dev/null; done
released_ok=
for i in $(seq 1 60); do
    if [ "$(conns "$SOCK1" | wc -l)" -eq 5 ] && [ "$(conns "$SOCK1")" = "$(conns "$SOCK2")" ]; then released_ok=1; break; fi
    sleep 0.1
done
conns "$SOCK2" | sed 's/^/    backup: /'
check "closed connections left both tables (backup: $(conns "$SOCK2" | wc -l), master: $(conns "$SOCK1" | wc -l))" [ -n "$released_ok" ]
check "the backup counted releases ($(sync_counter "$SOCK2" released))" [ "$(sync_counter "$SOCK2" released)" -ge 1 ]
check "no install errors on the backup ($(sync_counter "$SOCK2" install_errors))" [ "$(sync_counter "$SOCK2" install_errors)" -eq 0 ]
check "no sync operation lost on the master ($(sync_counter "$SOCK1" ops_lost) + $(sync_counter "$SOCK1" events_lost))" \
    [ "$(sync_counter "$SOCK1" ops_lost)" -eq 0 -a "$(sync_counter "$SOCK1" events_lost)" -eq 0 ]
survivors=$(conns "$SOCK2" | wc -l)

echo "== $(date +%T) takeover: kill -9 the master, the backup's ports take its place on the bridges"
sleep 1
kill -9 "$PID1"; wait "$PID1" 2>/dev/null; PID1=
ip -n "$NS_W" link set wc1 nomaster; ip -n "$NS_W" link set ws1 nomaster
ip -n "$NS_W" link set wc2 master brc; ip -n "$NS_W" link set ws2 master brs
for n in a3 a4 a5 a6 a7 sp; do
    eval "p=\${DL_$n}"
    # Bounded: curl's own -m 90 ends it at the latest.
    wait "$p" 2>/dev/null
done
done_ok=0
for n in a3 a4 a5 a6 a7 sp; do
    [ -s "$RVS_TMP/$n.sha" ] && [ "$(cat "$RVS_TMP/$n.sha")" = "$want_sha" ] && done_ok=$((done_ok + 1))
done
echo "    $done_ok downloads completed intact (of $survivors that were open at the takeover)"
check "every download open at the takeover completed with a matching sha256 ($done_ok of $survivors)" \
    [ "$done_ok" -eq "$survivors" -a "$survivors" -eq 5 ]
check "the SYN-proxied download spanning the takeover is intact (the sequence shift was synced)" \
    [ "$(cat "$RVS_TMP/sp.sha" 2>/dev/null)" = "$want_sha" ]
new=$(C curl -s -m 3 --noproxy '*' "http://$VIP/" || true)
check "a new connection after the takeover is served by the backup ($new)" grep -q '^rs=' <<<"$new"
A "$SOCK2" '{"op":"sync_status"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("    backup sync counters: " + " ".join("%s=%d" % (k, v) for k, v in r["counters"] if v))'
finish
