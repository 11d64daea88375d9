#!/usr/bin/env bash
# VRRP failover with connection sync (issue 15, docs/ha.md "VRRP failover"): two rvsd gateways on
# shared client and server LANs, keepalived 2.2 (VRRPv3, 100 ms adverts) in each gateway's
# namespace on rvsd's kernel interfaces (the exception path's TAPs) moving the VIP and the local
# address, rvsd adopting what keepalived moves ([vrrp] adopt), and the master streaming its
# connections to the backup ([sync]).
#
# Two rounds, FULLNAT (VIP:80) then FULLNAT with SYN-proxy (VIP:8080): under a wrk keep-alive load
# (64 connections), a rate-limited 100 MB download and a loop of new curls, `kill -9` the master's
# rvsd alone (its keepalived stays). Checked: the download's sha256, wrk's socket errors, new curls
# after the takeover, the takeover time (< 1 s), the backup's gratuitous ARPs on the client LAN,
# keepalived's transitions in its log. Then split brain: VRRP between the gateways cut on one side
# (nftables), both become MASTER, nothing crashes; healed, the lower priority yields.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
. "$RVS_ROOT/scripts/lib/vrrp_topo.sh"
RVS_SUITE=88-vrrp
WRK_SECONDS=${WRK_SECONDS:-12}
# The download spans the failover: 100 MB at this rate takes about 12 s.
DL_RATE=${DL_RATE:-8M}
KILL_AFTER_S=${KILL_AFTER_S:-3}

vrrp_topo_up
# The whole run is bounded: a stuck step cannot hold the machine (it takes about 2.5 minutes).
# (The watchdog ends with the test: its sleep is killed with it, so it never signals a reused pid.)
( trap 'kill $w 2>/dev/null; exit 0' TERM; sleep 420 & w=$!; wait $w; echo "88-vrrp: 420 s limit reached" >&2
  kill -TERM $$ ) &
_bg_pids+=($!)
C() { ip netns exec "$NS_C" "$@"; }

services() {
    cat <<CFG

[conn]
max_per_worker = 65536

[sync]
role = "$1"
interface = "$KIF_S"

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]

[[services]]
proto = "tcp"
vip = "$VIP:8080"
sched = "rr"
synproxy = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
CFG
}
services master | gw_config A "$RVS_TMP/A.toml"
services backup | gw_config B "$RVS_TMP/B.toml"
ka_config A "$RVS_TMP/ka-A.conf"
ka_config B "$RVS_TMP/ka-B.conf"

nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
want=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
gw_start A "$RVS_TMP/A.toml" || exit 1
gw_start B "$RVS_TMP/B.toml" || exit 1
ka_start A "$RVS_TMP/ka-A.conf"
ka_start B "$RVS_TMP/ka-B.conf"

echo "== keepalived elects A (priority 150) master, B (100) backup"
check "A is MASTER" ka_wait A MASTER 10
# Both start as BACKUP; the one whose first advert timer runs out first may be MASTER for a moment.
check "B is BACKUP" ka_wait B BACKUP 10
sleep 0.3
mac_a=$(ip -n "$NS_GA" link show gc | awk '/ether/ {print $2}')
mac_b=$(ip -n "$NS_GB" link show gc | awk '/ether/ {print $2}')
echo "    A's client port $mac_a, B's $mac_b"

# One failover round on VIP:$1 ($2 names it). A is master when it starts; A's rvsd is killed.
failover_round() {
    local port=$1 name=$2 url="http://$VIP:$1" t_kill t_master t_garp first_ok n_ok n_fail
    echo "== $name: service through A"
    C ip neigh flush dev c0
    local ok=0
    for _ in $(seq 20); do
        [ "$(C curl -s -o /dev/null -w '%{http_code}' -m 2 --noproxy '*' "$url/")" = 200 ] && ok=$((ok + 1))
    done
    check "$name: 20 of 20 curls through A before the failover ($ok)" [ "$ok" -eq 20 ]
    check "$name: the client resolves the VIP to A's port" \
        bash -c "ip netns exec $NS_C ip neigh show $VIP | grep -q $mac_a"

    echo "== $name: load (wrk 64 connections ${WRK_SECONDS} s, a 100 MB download at $DL_RATE/s, new curls), kill -9 A's rvsd after ${KILL_AFTER_S} s"
    local td="$RVS_TMP/$port.arp" dl="$RVS_TMP/$port.dl" wrk_out="$RVS_TMP/$port.wrk" loop="$RVS_TMP/$port.loop"
    local conns0; conns0=$(gw_counter B conns)
    C timeout 40 tcpdump -i c0 -n -e -tt -l -c 400 arp > "$td" 2>/dev/null &
    local td_pid=$!
    C curl -s -m 120 --noproxy '*' --limit-rate "$DL_RATE" -o "$dl" "$url/big" &
    local dl_pid=$!
    C timeout $((WRK_SECONDS + 30)) wrk -t2 -c64 -d"${WRK_SECONDS}s" "$url/" > "$wrk_out" 2>&1 &
    local wrk_pid=$!
    rm -f "$RVS_TMP/loop.stop"
    # New curls every 50 ms, each in the background (one stuck in the takeover does not delay the
    # next): "start_ns code seconds" per curl, at most 600, each bounded by -m 2.
    : > "$loop"
    C bash -c "for i in \$(seq 600); do [ -e $RVS_TMP/loop.stop ] && break; \
        ( t=\$(date +%s%N); r=\$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -m 2 --noproxy '*' $url/); \
          echo \"\$t \$r\" ) >> $loop & sleep 0.05; done; wait" 2>/dev/null &
    local loop_pid=$!
    # One keep-alive connection making a request every 20 ms: its longest gap between two
    # responses is what the failover cost an established connection.
    C timeout $((WRK_SECONDS + 15)) python3 "$RVS_ROOT/scripts/lib/keepalive_probe.py" "$VIP" "$port" \
        "$WRK_SECONDS" 20 > "$RVS_TMP/$port.probe" 2> "$RVS_TMP/$port.probe.err" &
    local probe_pid=$!
    sleep "$KILL_AFTER_S"
    check "$name: B is still BACKUP under the load, just before the kill" [ "$(ka_state B)" = BACKUP ]
    local synced; synced=$(( $(gw_counter B conns) - conns0 ))
    check "$name: B holds A's new connections by sync before the kill (+$synced)" [ "$synced" -gt 0 ]
    t_kill=$(date +%s%N)
    kill -9 "${GW_PID[A]}"
    wait "${GW_PID[A]}" 2>/dev/null
    unset 'GW_PID[A]'
    t_master=$(ka_since B MASTER "$t_kill" 5)
    check "$name: B's keepalived takes over" [ -n "$t_master" ]
    wait "$dl_pid"; local dl_rc=$?
    wait "$wrk_pid"
    wait "$probe_pid"
    touch "$RVS_TMP/loop.stop"; wait "$loop_pid"
    sleep 0.5; kill "$td_pid" 2>/dev/null; wait "$td_pid" 2>/dev/null

    local got; got=$(sha256sum "$dl" | cut -d' ' -f1)
    check "$name: the download completed (curl rc $dl_rc, $(stat -c %s "$dl" 2>/dev/null) bytes) with a matching sha256" \
        [ "$got" = "$want" ]
    sed 's/^/    /' "$wrk_out"
    local errs non2xx
    errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$wrk_out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$wrk_out")
    check "$name: wrk ran" grep -q "Requests/sec" "$wrk_out"
    check "$name: wrk: 0 socket errors (${errs:-0})" [ "${errs:-0}" -eq 0 ]
    check "$name: wrk: every response 2xx (non-2xx: ${non2xx:-0})" [ "${non2xx:-0}" -eq 0 ]

    local probe probe_err probe_gap
    probe=$(cat "$RVS_TMP/$port.probe")
    probe_err=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<< "$probe")
    probe_gap=$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' <<< "$probe")
    sed 's/^/    probe: /' "$RVS_TMP/$port.probe.err" | head -5
    check "$name: one keep-alive connection kept working across the failover ($probe)" \
        [ "${probe_err:-1}" -eq 0 ]
    local takeover=$(( (${t_master:-$t_kill} - t_kill) / 1000000 ))
    [ -n "$t_master" ] || takeover=-1
    check "$name: takeover (kill to B's keepalived MASTER) ${takeover} ms < 1000 ms" \
        test "$takeover" -ge 0 -a "$takeover" -lt 1000
    # The loop: "start_ns code seconds" per curl.
    n_ok=$(awk -v t="$t_kill" '$1 > t && $2 == 200' "$loop" | wc -l)
    n_fail=$(awk -v t="$t_kill" '$1 > t && $2 != 200' "$loop" | wc -l)
    first_ok=$(awk -v t="$t_kill" '$1 > t && $2 == 200 {print int(($1 - t) / 1e6 + $3 * 1000)}' "$loop" | sort -n | head -1)
    local late_fail in_flight
    late_fail=$(awk -v t="${t_master:-$t_kill}" '$1 > t + 200e6 && $2 != 200' "$loop" | wc -l)
    # Curls started before the kill and not done by then: their fate is the in-flight handshakes'.
    in_flight=$(awk -v t="$t_kill" '$1 <= t && $1 + $3 * 1e9 > t {n++; if ($2 != 200) f++} END {print n + 0, f + 0}' "$loop")
    echo "    new curls after the kill: $n_ok ok, $n_fail failed; the first to succeed was done ${first_ok:-none} ms after the kill"
    echo "    curls in flight at the kill (count, failed): $in_flight"
    check "$name: new curls succeed after the takeover ($n_ok)" [ "$n_ok" -gt 0 ]
    check "$name: no new curl started 200 ms after the takeover failed ($late_fail)" [ "$late_fail" -eq 0 ]
    # Gratuitous ARP from B for the VIP (sender and target both the VIP, from B's MAC): keepalived's
    # through the exception path (target MAC broadcast) and rvsd's own (target MAC zero).
    local garp_re="^[0-9.]+ $mac_b > ff:ff:ff:ff:ff:ff.*Request who-has $VIP( \\(ff:ff:ff:ff:ff:ff\\))? tell $VIP,"
    local garps ka_garps t_garp
    garps=$(grep -cE "$garp_re" "$td")
    ka_garps=$(grep -E "$garp_re" "$td" | grep -c "(ff:ff:ff:ff:ff:ff) tell")
    t_garp=$(grep -E "$garp_re" "$td" | head -1 | cut -d' ' -f1)
    if [ -n "$t_garp" ]; then
        t_garp=$(python3 -c "print(int(float('$t_garp') * 1000) - $t_kill // 1000000)")
    fi
    check "$name: B's gratuitous ARPs for the VIP seen on the client LAN ($garps: keepalived's $ka_garps, rvsd's $((garps - ka_garps)); first ${t_garp:-none} ms after the kill)" \
        [ "${garps:-0}" -gt 0 ]
    check "$name: the client now resolves the VIP to B's port" \
        bash -c "ip netns exec $NS_C ip neigh show $VIP | grep -q $mac_b"
    echo "    B: garp_sent $(gw_counter B garp_sent), drop.arp_not_adopted $(gw_counter B drop.arp_not_adopted), conns $(gw_counter B conns)"
    echo "$name takeover_ms=$takeover first_ok_ms=${first_ok:-none} garp_ms=${t_garp:-none} established_stall_ms=${probe_gap:-none} failed_curls=$n_fail in_flight_at_kill_failed=${in_flight#* }/${in_flight% *} wrk_errors=${errs:-0}" >> "$RVS_TMP/numbers"
}

# A back: its rvsd restarted (new TAPs), its keepalived restarted on them; A preempts (150 > 100).
restore_a() {
    kill "${KA_PID[A]}" 2>/dev/null; wait "${KA_PID[A]}" 2>/dev/null
    : > "$RVS_TMP/ka-A.notify"
    gw_start A "$RVS_TMP/A.toml" || return 1
    ka_start A "$RVS_TMP/ka-A.conf"
    ka_wait A MASTER 10 && ka_wait B BACKUP 10
}

failover_round 80 "FULLNAT"
grep -h "Entering\|FAULT\|Netlink reports\|interface" "$RVS_TMP/ka-A.log" | tail -6 | sed 's/^/    ka A: /'
grep -h "Entering" "$RVS_TMP/ka-B.log" | tail -3 | sed 's/^/    ka B: /'
check "keepalived A's log shows it leaving MASTER when its interfaces went (FAULT)" \
    grep -q "Entering FAULT STATE" "$RVS_TMP/ka-A.log"
check "keepalived B's log shows the transition to MASTER" grep -q "(rvs_client) Entering MASTER STATE" "$RVS_TMP/ka-B.log"

echo "== A back: rvsd and keepalived restarted; A preempts"
check "A is MASTER again, B BACKUP" restore_a
sleep 1
failover_round 8080 "SYN-proxy"

echo "== split brain: A back as master, then VRRP from A cut at B (nftables drop of protocol 112)"
check "A is MASTER again, B BACKUP" restore_a
sleep 0.5
t_cut=$(date +%s%N)
ip netns exec "$NS_GB" nft -f - <<NFT
table ip rvs_split {
    chain input { type filter hook input priority -10; ip protocol vrrp drop; }
}
NFT
t_sb=$(ka_since B MASTER "$t_cut" 5)
check "split brain: B hears no adverts and becomes MASTER ($(( (${t_sb:-$t_cut} - t_cut) / 1000000 )) ms after the cut)" \
    [ -n "$t_sb" ]
sleep 1
check "split brain: A stays MASTER" [ "$(ka_state A)" = MASTER ]
check "split brain: both rvsd run" bash -c "kill -0 ${GW_PID[A]} && kill -0 ${GW_PID[B]}"
ok_sb=0
for _ in $(seq 20); do
    [ "$(C curl -s -o /dev/null -w '%{http_code}' -m 2 --noproxy '*' "http://$VIP/")" = 200 ] && ok_sb=$((ok_sb + 1))
done
echo "    during the split brain: $ok_sb of 20 new curls succeeded (both gateways claim the VIP and LIP)"
t_heal=$(date +%s%N)
ip netns exec "$NS_GB" nft delete table ip rvs_split
t_y=$(ka_since B BACKUP "$t_heal" 5)
check "healed: B yields to the higher priority (BACKUP, $(( (${t_y:-$t_heal} - t_heal) / 1000000 )) ms after the heal)" \
    [ -n "$t_y" ]
echo "split_brain: B master $(( (${t_sb:-$t_cut} - t_cut) / 1000000 )) ms after the cut, curls_ok=$ok_sb/20; B backup $(( (${t_y:-$t_heal} - t_heal) / 1000000 )) ms after the heal" >> "$RVS_TMP/numbers"
check "healed: A is MASTER" [ "$(ka_state A)" = MASTER ]
grep -h "Entering\|higher priority\|lower priority" "$RVS_TMP/ka-B.log" | tail -3 | sed 's/^/    ka B: /'
check "keepalived B's log shows it yielding" grep -q "Entering BACKUP STATE" "$RVS_TMP/ka-B.log"
sleep 0.5
ok_h=0
for _ in $(seq 20); do
    [ "$(C curl -s -o /dev/null -w '%{http_code}' -m 2 --noproxy '*' "http://$VIP/")" = 200 ] && ok_h=$((ok_h + 1))
done
check "healed: 20 of 20 new curls succeed ($ok_h)" [ "$ok_h" -eq 20 ]
check "healed: both rvsd still run" bash -c "kill -0 ${GW_PID[A]} && kill -0 ${GW_PID[B]}"
check "healed: both keepalived still run" bash -c "kill -0 ${KA_PID[A]} && kill -0 ${KA_PID[B]}"

echo "== numbers"
sed 's/^/    /' "$RVS_TMP/numbers"
finish
