#!/usr/bin/env bash
# PROXY protocol and IP fragments end to end, FULLNAT with real kernel peers.
#
# PROXY protocol (per TCP service, v1 and v2, SYN-proxy off and on): nginx real servers with
# `listen ... proxy_protocol` see the client's address in the header (their log and $remote_addr
# through real_ip); 300 requests per service split over 3 reals, a 100 MB download with a matching
# sha256; a server-speaks-first service (scripts/lib/pp_banner_server.py) gets the header without
# the client sending anything and greets the client by its address; no real server ever sees a
# connection without a header.
#
# Fragments: 4,000-byte UDP datagrams (fragmented by the client's kernel) echoed intact through the
# VIP, with 1 and with 2 workers; a bounded fragment flood at the UDP service is counted and kept
# within the table's bound while wrk through the HTTP service keeps 0 errors; a server-side port with
# MTU 1400 behind a 1500 client side: the client's full-size DF segments get ICMP
# fragmentation-needed and a 4 MB upload and a 20 MB download complete with matching sha256,
# non-DF fragments too big for the port are fragmented again by the gateway.
#
# The fragment phases run rvsd on net_tap ports bridged to the veths (gc, gs) in the gateway
# namespace, not on net_af_packet: DPDK 22.11's af_packet PMD joins a PACKET_FANOUT group with
# PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles fragments before rvsd sees them (and a
# reassembled datagram larger than the ring's frame arrives truncated: drop.ipv4_truncated). A tap
# delivers the frames as they are on the wire.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo_up
C() { ip netns exec "$NS_C" "$@"; }
# One worker unless a phase says otherwise (the exact rr splits below assume one).
RVS_WORKERS=1
WRK_SECONDS=${WRK_SECONDS:-10}
FLOOD_SECONDS=${FLOOD_SECONDS:-3}
FLOOD_PPS=${FLOOD_PPS:-20000}
# The fragment table's bound per worker (dataplane/src/setup.rs, FragSetup: 4096 datagrams, 256 per
# source, 1 s).
FRAG_MAX=4096
cfg="$RVS_TMP/rvsd.toml"

# services [PP]: the services of every phase; with PP=1 also the PROXY protocol ones.
#   VIP:80 HTTP (nginx :80)            VIP:53 UDP echo (udp_echo.py :5353, payload returned as is)
#   VIP:90 upload sink (sha256_sink.py on RS[0]:9000)
#   VIP:81 v1, VIP:82 v2 -> nginx :81/:82 with proxy_protocol; VIP:83 v1, VIP:84 v2: the same
#   with SYN-proxy; VIP:85 v1, VIP:86 v2, VIP:87 v2 + SYN-proxy -> pp_banner_server.py :2525;
#   VIP:88 v2 + SYN-proxy -> nginx :83 with proxy_protocol and VIP:89 v2 + SYN-proxy -> the
#   banner servers on :2526, for the 2-worker phase: real-server ports not used before, because a
#   restarted rvsd hands out the same local ports again, and a real server still holding
#   LIP:lport in TIME_WAIT from the previous run answers the new SYN with an ACK about half the
#   time (the connection then waits for the client's SYN retransmit, or with SYN-proxy is reset).
services() {
    local reals80="reals = [{ addr = \"${RS[0]}:80\" }, { addr = \"${RS[1]}:80\" }, { addr = \"${RS[2]}:80\" }]"
    cat <<CFG

[conn]
max_per_worker = 65536

[conn.timeouts]
udp = 10

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
$reals80

[[services]]
proto = "udp"
vip = "$VIP:53"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:5353" }, { addr = "${RS[1]}:5353" }, { addr = "${RS[2]}:5353" }]

[[services]]
proto = "tcp"
vip = "$VIP:90"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:9000" }]
CFG
    [ "${1:-0}" = 1 ] || return 0
    local port ver syn rport
    for spec in "81 v1 false 81" "82 v2 false 82" "83 v1 true 81" "84 v2 true 82" \
        "85 v1 false 2525" "86 v2 false 2525" "87 v2 true 2525" "88 v2 true 83" "89 v2 true 2526"; do
        read -r port ver syn rport <<<"$spec"
        cat <<CFG

[[services]]
proto = "tcp"
vip = "$VIP:$port"
sched = "rr"
synproxy = $syn
proxy_protocol = "$ver"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:$rport" }, { addr = "${RS[1]}:$rport" }, { addr = "${RS[2]}:$rport" }]
CFG
    done
}

# absent CMD...: CMD fails (check's command cannot be a `!` pipeline).
absent() { ! "$@"; }

# frag_drops: the drop.frag_* counters that are not zero ("" when none is).
frag_drops() {
    api '{"op":"stats"}' | python3 -c '
import json, sys
t = {}
for w in json.load(sys.stdin)["workers"]:
    for k, v in w["counters"]:
        if k.startswith("drop.frag_"):
            t[k] = t.get(k, 0) + v
print(" ".join("%s=%d" % (k, v) for k, v in sorted(t.items()) if v))'
}

# show_counters PATTERN: the matching counters summed over the workers, on one line.
show_counters() {
    api '{"op":"stats"}' | python3 -c '
import json, re, sys
t = {}
for w in json.load(sys.stdin)["workers"]:
    for k, v in w["counters"]:
        if re.search(sys.argv[1], k):
            t[k] = t.get(k, 0) + v
print("    " + " ".join("%s=%d" % (k, v) for k, v in sorted(t.items())))' "$1"
}

# Fragment phases: rvsd on net_tap ports, each tap bridged to its veth (brc: gc, brs: gs). The taps
# get fixed MACs on the DPDK side (mac=, the same across restarts, so the peers' ARP entries stay
# right) and other ones on the kernel side (a bridge delivers frames to a port's own MAC locally
# instead of forwarding them).
TAP_C="rvs${RVS_ID}tc"
TAP_S="rvs${RVS_ID}ts"
tap_bridges_up() {
    local b
    for b in brc brs; do
        ip -n "$NS_G" link add "$b" type bridge stp_state 0 forward_delay 0
    done
    ip -n "$NS_G" link set brc address 02:00:00:00:01:0c
    ip -n "$NS_G" link set brs address 02:00:00:00:01:0d
    ip -n "$NS_G" link set gc master brc
    ip -n "$NS_G" link set gs master brs
    ip -n "$NS_G" link set brc up
    ip -n "$NS_G" link set brs up
}
# rvsd_start_tap CONFIG: CONFIG's af_packet ports become taps; start rvsd and bridge its taps.
rvsd_start_tap() {
    sed -i -E "s|net_af_packet0,iface=gc[^\"]*|net_tap0,iface=$TAP_C,mac=02:00:00:00:00:0c|;
        s|net_af_packet1,iface=gs[^\"]*|net_tap1,iface=$TAP_S,mac=02:00:00:00:00:0d|" "$1"
    rvsd_start "$1" || return 1
    local t mac name m1 m2 m3 m4 m5 m6 br
    for t in "$TAP_C:02:00:00:00:02:0c:brc" "$TAP_S:02:00:00:00:02:0d:brs"; do
        IFS=: read -r name m1 m2 m3 m4 m5 m6 br <<<"$t"
        mac="$m1:$m2:$m3:$m4:$m5:$m6"
        ip -n "$NS_G" link set "$name" address "$mac"
        _no_offload "$NS_G" "$name"
        ip -n "$NS_G" link set "$name" master "$br"
        ip -n "$NS_G" link set "$name" up
    done
    [ -z "${TAP_MTU_S:-}" ] || ip -n "$NS_G" link set "$TAP_S" mtu "$TAP_MTU_S"
    ip -n "$NS_C" neigh flush all
    ip -n "$NS_S" neigh flush all
    # The first ARP exchange through the new bridge ports.
    C ping -c 1 -W 2 "$VIP" >/dev/null 2>&1
    return 0
}

# udp_echo_check N SIZE: N datagrams of SIZE bytes, each distinct, through VIP:53; each answer must
# be the datagram returned byte for byte. Prints "ok=K".
udp_echo_check() {
    C timeout 120 python3 - "$VIP" "$1" "$2" <<'PY'
import hashlib, socket, sys
vip, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = bad = lost = 0
for i in range(n):
    seed = hashlib.sha256(b"dgram %d" % i).digest()
    data = (b"%06d" % i + seed * (size // 32 + 1))[:size]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(data, (vip, 53))
    try:
        got = s.recvfrom(65535)[0]
        if got == data:
            ok += 1
        else:
            bad += 1
    except socket.timeout:
        lost += 1
        if lost >= 5 and ok == 0:
            break               # nothing gets through: do not wait out every datagram
    s.close()
print("ok=%d bad=%d lost=%d" % (ok, bad, lost))
PY
}

# rs_reasm: the real servers' kernel reassembly counters (ReasmReqds, ReasmOKs, ReasmFails).
rs_reasm() {
    ip netns exec "$NS_S" awk '/^Ip:/ {if (!h) {split($0, k); h=1} else {for (i=2; i<=NF; i++) v[k[i]]=$i}}
        END {printf "ReasmReqds=%s ReasmOKs=%s ReasmFails=%s", v["ReasmReqds"], v["ReasmOKs"], v["ReasmFails"]}' /proc/net/snmp
}

# The flood's first fragments are forwarded to the real servers (a first fragment opens a UDP
# connection like any datagram), where they wait for the rest that never comes: with the kernel's
# defaults (4 MB, 30 s) that fills the server namespace's reassembly memory and the echo checks
# after the flood would fail there, not in the gateway. Give the real servers room and expire it.
ip netns exec "$NS_S" sysctl -qw net.ipv4.ipfrag_high_thresh=134217728 net.ipv4.ipfrag_time=5

# Real servers: nginx (:80, and :81/:82 with proxy_protocol), the UDP echo, the banner servers, the
# upload sink. They live through every phase.
NGINX_RS_PP_PORTS="81 82 83" nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
for a in "${RS[@]}"; do
    bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$a" 5353
    ip netns exec "$NS_S" python3 -u "$RVS_ROOT/scripts/lib/pp_banner_server.py" "$a" 2525 > "$RVS_TMP/banner.$a.log" 2>&1 &
    _bg_pids+=($!)
    ip netns exec "$NS_S" python3 -u "$RVS_ROOT/scripts/lib/pp_banner_server.py" "$a" 2526 > "$RVS_TMP/banner2.$a.log" 2>&1 &
    _bg_pids+=($!)
done
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/sha256_sink.py" "${RS[0]}" 9000
sleep 0.5
want100=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)

# Does this build's configuration know proxy_protocol? (The PROXY checks fail, not skip, when not.)
services 1 | write_config "$cfg"
PP=0
if ip netns exec "$NS_G" "$RVSD" --check -c "$cfg" > "$RVS_TMP/check.out" 2>&1; then
    PP=1
else
    fail "the configuration refuses proxy_protocol: $(tail -1 "$RVS_TMP/check.out")"
    services 0 | write_config "$cfg"
fi
rvsd_start "$cfg" || { fail "rvsd did not start"; finish; exit 1; }

if [ "$PP" = 1 ]; then
    echo "== PROXY protocol: 300 requests per service over 3 nginx reals (listen ... proxy_protocol)"
    for spec in "81 v1 off" "82 v2 off" "83 v1 on" "84 v2 on"; do
        read -r port ver syn <<<"$spec"
        urls=$(for i in $(seq 300); do printf 'http://%s:%s/ ' "$VIP" "$port"; done)
        # One curl, a new connection per request (Connection: close): each goes through rr anew.
        # shellcheck disable=SC2086
        C timeout 60 curl -s -m 50 --noproxy '*' -H 'Connection: close' -w '%{http_code}\n' $urls \
            > "$RVS_TMP/pp.$port" 2>&1
        n200=$(grep -cx 200 "$RVS_TMP/pp.$port")
        check "$ver, SYN-proxy $syn (VIP:$port): 300 of 300 answered 200 ($n200)" [ "$n200" -eq 300 ]
        split=$(grep -o '^rs=[0-9.]*' "$RVS_TMP/pp.$port" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
        check "$ver, SYN-proxy $syn: rr split 100/100/100 ($split)" \
            [ "$(grep -o '^rs=[0-9.]*' "$RVS_TMP/pp.$port" | sort | uniq -c | awk '$1 == 100' | wc -l)" -eq 3 ]
        check "$ver, SYN-proxy $syn: every header named the client (pp=$CLIENT:<port>, \$remote_addr $CLIENT)" \
            [ "$(grep -c "^rs=[0-9.]* pp=$CLIENT:[0-9]* client=$CLIENT\$" "$RVS_TMP/pp.$port")" -eq 300 ]
    done
    head -1 "$RVS_TMP/pp.81" | sed 's/^/    e.g. /'

    echo "== PROXY protocol: 100 MB downloads, sha256 checked"
    for spec in "81 v1 off" "82 v2 off" "83 v1 on" "84 v2 on"; do
        read -r port ver syn <<<"$spec"
        t0=$(date +%s%N)
        got=$(C timeout 120 curl -s -m 110 --noproxy '*' "http://$VIP:$port/big" | sha256sum | cut -d' ' -f1)
        t1=$(date +%s%N)
        check "$ver, SYN-proxy $syn: 100 MB in $(( (t1 - t0) / 1000000 )) ms, sha256 matches" [ "$got" = "$want100" ]
    done

    echo "== PROXY protocol: server speaks first (the banner before the client sends a byte)"
    for spec in "85 v1 off" "86 v2 off" "87 v2 on"; do
        read -r port ver syn <<<"$spec"
        C timeout 60 python3 - "$VIP" "$port" "$CLIENT" > "$RVS_TMP/banner.$port" 2>&1 <<'PY'
import socket, sys
vip, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ok = 0
for i in range(30):
    try:
        s = socket.create_connection((vip, port), timeout=5)
        f = s.makefile("rb")
        banner = f.readline()            # nothing sent yet: the server must speak first
        line = b"hello %d from the client\n" % i
        s.sendall(line)
        echo = f.readline()
        s.close()
        if banner == b"220 %s ready\r\n" % client.encode() and echo == line:
            ok += 1
        else:
            print("bad: banner %r echo %r" % (banner, echo))
    except OSError as e:
        print("error: %s" % e)
print("ok=%d" % ok)
PY
        sed 's/^/    /' "$RVS_TMP/banner.$port" | head -3
        check "$ver, SYN-proxy $syn (VIP:$port): 30 of 30 banners named $CLIENT before the client sent, echo intact" \
            grep -qx "ok=30" "$RVS_TMP/banner.$port"
    done
    cat "$RVS_TMP"/banner.198.18.1.1[123].log > "$RVS_TMP/banner.all"
    check "the banner servers read 30 v1 headers (VIP:85), 30 v2 (VIP:86), 30 v2 after SYN-proxy (VIP:87), each $CLIENT:port -> VIP:port" \
        [ "$(grep -c "^v1 $CLIENT:[0-9]* -> $VIP:85\$" "$RVS_TMP/banner.all")" -eq 30 -a \
          "$(grep -c "^v2 $CLIENT:[0-9]* -> $VIP:86\$" "$RVS_TMP/banner.all")" -eq 30 -a \
          "$(grep -c "^v2 $CLIENT:[0-9]* -> $VIP:87\$" "$RVS_TMP/banner.all")" -eq 30 ]
    check "every banner server got connections ($(for a in "${RS[@]}"; do printf '%s ' "$(wc -l < "$RVS_TMP/banner.$a.log")"; done))" \
        [ "$(for a in "${RS[@]}"; do [ -s "$RVS_TMP/banner.$a.log" ] && echo y; done | wc -l)" -eq 3 ]
    check "no banner server saw a connection without a header" absent grep -q NOHEADER "$RVS_TMP/banner.all"

    echo "== PROXY protocol: what the real servers logged"
    pplog="$NGINX_RS_DIR/pp.log"
    awk '{print $1, $3}' "$pplog" | sort | uniq -c | sed 's/^/    /'
    check "nginx logged 1204 requests, all with the header's address $CLIENT ($(wc -l < "$pplog"))" \
        [ "$(grep -c "^$CLIENT " "$pplog")" -eq 1204 -a "$(wc -l < "$pplog")" -eq 1204 ]
    check "no request answered 400 (a connection without a PROXY header)" absent awk '$3 == 400 {f=1} END {exit !f}' "$pplog"
    check "no 'broken header' in nginx's error log" absent grep -q 'broken header' "$NGINX_RS_DIR/error.log"
    show_counters '^proxy_'
    check "proxy_headers_sent counted ($(counter proxy_headers_sent), at least 1290)" [ "$(counter proxy_headers_sent)" -ge 1290 ]
    check "proxy_timer_full 0 ($(counter proxy_timer_full))" [ "$(counter proxy_timer_full)" -eq 0 ]
fi

rvsd_stop

echo "== fragments: rvsd on net_tap ports bridged to the veths (1 worker)"
tap_bridges_up
services "$PP" | write_config "$cfg"
rvsd_start_tap "$cfg" || { fail "rvsd on taps did not start"; finish; exit 1; }
grep device "$cfg" | sed 's/^/    /'
echo "== fragments: 200 UDP datagrams of 4,000 bytes echoed through VIP:53 (1 worker)"
res=$(udp_echo_check 200 4000)
echo "    $res"
check "200 of 200 came back intact" [ "$res" = "ok=200 bad=0 lost=0" ]
show_counters '^frag|fragments_'
check "fragments_forwarded counted ($(counter fragments_forwarded), at least 1200: 3 each way)" \
    [ "$(counter fragments_forwarded)" -ge 1200 ]
check "no fragment dropped ($(frag_drops))" [ -z "$(frag_drops)" ]

echo "== fragment flood at VIP:53 (${FLOOD_PPS} pps for ${FLOOD_SECONDS} s) while wrk runs through VIP:80"
C timeout $((WRK_SECONDS + 30)) wrk -t2 -c32 -d"${WRK_SECONDS}s" "http://$VIP/" > "$RVS_TMP/wrk" 2>&1 &
wrk_pid=$!
sleep 2
# Spoofed sources from the client LAN; random identifications: first fragments that never complete
# (UDP header to :53, MF), later fragments whose first never comes (offset 1480), and a share from
# one source (the per-source bound). Strictly bounded: FLOOD_PPS x FLOOD_SECONDS packets.
C timeout $((FLOOD_SECONDS + 10)) python3 - "$VIP" "$FLOOD_PPS" "$FLOOD_SECONDS" "$CLIENT" > "$RVS_TMP/flood" 2>&1 <<'PY' &
import random, socket, struct, sys, time
vip, pps, secs, client = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton(vip)
srcs = [socket.inet_aton("198.18.0.%d" % i) for i in range(3, 251) if i != 100]
me = socket.inet_aton(client)
def frag(src, first):
    ident = random.getrandbits(16)
    if first:   # MF, offset 0: a UDP header claiming 1,008 bytes, 56 bytes of it here
        data = struct.pack("!HHHH", random.randint(1024, 65535), 53, 1008, 0) + b"F" * 56
        off = 0x2000
    else:       # last fragment at offset 1480, its first never sent
        data = b"L" * 64
        off = 185
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident, off, 64, 17, 0, src, dst) + data
total, sent, t0 = pps * secs, 0, time.monotonic()
while sent < total:
    for _ in range(100):
        r = random.random()
        src = me if r < 0.2 else random.choice(srcs)
        s.sendto(frag(src, r < 0.6), (vip, 0))
        sent += 1
    ahead = sent / pps - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
print("sent=%d in %.2f s" % (sent, time.monotonic() - t0))
PY
flood_pid=$!
peak_d=0; peak_h=0
while kill -0 "$flood_pid" 2>/dev/null; do
    read -r d h < <(api '{"op":"stats"}' | python3 -c '
import json, sys
c = {}
for w in json.load(sys.stdin)["workers"]:
    for k, v in w["counters"]:
        c[k] = c.get(k, 0) + v
print(c.get("frag_datagrams", 0), c.get("frag_held", 0))')
    [ "${d:-0}" -gt "$peak_d" ] && peak_d=$d
    [ "${h:-0}" -gt "$peak_h" ] && peak_h=$h
    sleep 0.2
done
wait "$flood_pid"
echo "    flood: $(cat "$RVS_TMP/flood")"
wait "$wrk_pid"
sed 's/^/    /' "$RVS_TMP/wrk"
show_counters '^frag|fragments_|drop\.frag_'
rps=$(awk '/^Requests\/sec:/ {print $2}' "$RVS_TMP/wrk")
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
check "wrk ran through the flood (requests/s: ${rps:-none})" [ -n "$rps" ]
check "wrk: 0 socket errors (${errs:-0})" [ "${errs:-0}" -eq 0 ]
check "wrk: 0 non-2xx responses (${non2xx:-0})" [ "${non2xx:-0}" -eq 0 ]
check "the flood was counted as fragment drops ($(frag_drops))" [ -n "$(frag_drops)" ]
check "datagrams tracked stayed within the bound (peak frag_datagrams $peak_d <= $FRAG_MAX)" \
    [ "$peak_d" -gt 0 -a "$peak_d" -le "$FRAG_MAX" ]
check "orphan fragments were held, then timed out (peak frag_held $peak_h, drop.frag_timeout $(counter drop.frag_timeout))" \
    [ "$peak_h" -gt 0 -a "$(counter drop.frag_timeout)" -gt 0 ]
check "one source is capped (drop.frag_source_limit $(counter drop.frag_source_limit))" \
    [ "$(counter drop.frag_source_limit)" -gt 0 ]
check "a full table is counted (drop.frag_table_full $(counter drop.frag_table_full))" \
    [ "$(counter drop.frag_table_full)" -gt 0 ]
echo "    real servers' reassembly: $(rs_reasm)"
sleep 1.5
check "the table empties after the timeout (frag_datagrams $(counter frag_datagrams), frag_held $(counter frag_held))" \
    [ "$(counter frag_datagrams)" -eq 0 -a "$(counter frag_held)" -eq 0 ]
# The real servers reassemble by (source, destination, protocol, identification), and FULLNAT gives
# every client's datagram the local address as source with the client's identification: the
# flood's incomplete datagrams waiting at a real server could capture a later datagram's fragments
# with the same identification. Wait for their reassembly queues to expire (ipfrag_time, 5 s).
for i in $(seq 1 40); do
    q=$(ip netns exec "$NS_S" awk '/^FRAG:/ {print $3}' /proc/net/sockstat)
    [ "${q:-0}" -eq 0 ] && break
    sleep 0.25
done
echo "    real servers' reassembly queues in use: ${q:-?}"
res=$(udp_echo_check 20 4000)
check "4,000-byte datagrams still echoed intact after the flood ($res)" [ "$res" = "ok=20 bad=0 lost=0" ]
rvsd_stop

echo "== 2 workers: fragments reach the connection's owner (collector hand-off)"
services "$PP" | RVS_WORKERS=2 write_config "$cfg"
rvsd_start_tap "$cfg" || { fail "rvsd (2 workers) did not start"; finish; exit 1; }
res=$(udp_echo_check 200 4000)
echo "    $res"
check "2 workers: 200 of 200 4,000-byte datagrams came back intact" [ "$res" = "ok=200 bad=0 lost=0" ]
show_counters '^frag|fragments_|^handoff_'
check "2 workers: fragments_forwarded counted ($(counter fragments_forwarded))" [ "$(counter fragments_forwarded)" -ge 1200 ]
check "2 workers: no fragment dropped ($(frag_drops))" [ -z "$(frag_drops)" ]
check "2 workers: hand-offs all arrived ($(counter handoff_out) out, $(counter handoff_in) in)" \
    [ "$(counter handoff_out)" -eq "$(counter handoff_in)" ]
if [ "$PP" = 1 ]; then
    urls=$(for i in $(seq 150); do printf 'http://%s:88/ ' "$VIP"; done)
    # shellcheck disable=SC2086
    C timeout 60 curl -s -m 50 --noproxy '*' -H 'Connection: close' -w '%{http_code}\n' $urls > "$RVS_TMP/pp2" 2>&1
    echo "    $(grep -cx 200 "$RVS_TMP/pp2") answered 200; $(grep -c "^rs=[0-9.]* pp=$CLIENT:[0-9]* client=$CLIENT\$" "$RVS_TMP/pp2") named the client"
    grep -v "^rs=[0-9.]* pp=$CLIENT:[0-9]* client=$CLIENT\$" "$RVS_TMP/pp2" | grep -vx 200 | head -3 | sed 's/^/    other: /'
    check "2 workers: v2 + SYN-proxy (VIP:88), 150 of 150 answered 200 with the client in the header" \
        [ "$(grep -c "^rs=[0-9.]* pp=$CLIENT:[0-9]* client=$CLIENT\$" "$RVS_TMP/pp2")" -eq 150 -a "$(grep -cx 200 "$RVS_TMP/pp2")" -eq 150 ]
    res=$(C timeout 30 python3 - "$VIP" "$CLIENT" <<'PY'
import socket, sys
ok = 0
for i in range(20):
    try:
        s = socket.create_connection((sys.argv[1], 89), timeout=5)
        f = s.makefile("rb")
        banner = f.readline()
        s.sendall(b"x%d\n" % i)
        if banner == b"220 %s ready\r\n" % sys.argv[2].encode() and f.readline() == b"x%d\n" % i:
            ok += 1
        s.close()
    except OSError:
        pass
print("ok=%d" % ok)
PY
)
    check "2 workers: server speaks first, v2 + SYN-proxy (VIP:89): $res of 20" [ "$res" = "ok=20" ]
    check "2 workers: still no connection without a header at any real server" \
        absent grep -q 'broken header\|NOHEADER' "$NGINX_RS_DIR/error.log" "$RVS_TMP"/banner*.log
    check "2 workers: both created connections ($(api '{"op":"stats"}' | python3 -c '
import json, sys
print(" ".join(str(dict(w["counters"]).get("conns_created", 0)) for w in json.load(sys.stdin)["workers"]))'))" \
        [ "$(api '{"op":"stats"}' | python3 -c '
import json, sys
print(sum(1 for w in json.load(sys.stdin)["workers"] if dict(w["counters"]).get("conns_created", 0) > 0))')" -eq 2 ]
fi
rvsd_stop

echo "== a smaller MTU behind the gateway: server port mtu = 1400, client side 1500"
# The real servers' link is 1400 (s0 and the gateway's gs); the gateway's server port says so. The
# real servers advertise MSS 1460 toward the local address (route advmss), as a server on a 1500
# LAN would with the 1400 hop further on: the client sends full-size DF segments, and only the
# gateway's fragmentation-needed (path MTU discovery) lets them through.
ip -n "$NS_S" link set s0 mtu 1400
ip -n "$NS_G" link set gs mtu 1400
ip -n "$NS_G" link set brs mtu 1400
ip -n "$NS_S" route add "$LIP/32" dev s0 advmss 1460
services "$PP" | write_config "$cfg"
python3 - "$cfg" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('name = "server"\n', 'name = "server"\nmtu = 1400\n', 1)
open(p, "w").write(s)
PY
TAP_MTU_S=1400 rvsd_start_tap "$cfg" || { fail "rvsd (mtu 1400) did not start"; finish; exit 1; }
grep -A3 'name = "server"' "$cfg" | xargs | sed 's/^/    /'
# UDP first: once TCP has taught the client the path MTU toward the VIP, it fragments at 1400.
res=$(udp_echo_check 50 4000)
check "50 of 50 4,000-byte datagrams echoed intact across the 1400 link ($res)" [ "$res" = "ok=50 bad=0 lost=0" ]
check "the client's 1500-byte fragments were fragmented again (fragments_built $(counter fragments_built))" \
    [ "$(counter fragments_built)" -gt 0 ]
head -c 4M /dev/urandom > "$RVS_TMP/upload"
want_up=$(sha256sum "$RVS_TMP/upload" | cut -d' ' -f1)
up=$(C timeout 60 python3 - "$VIP" "$RVS_TMP/upload" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 90), timeout=30)
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())
PY
)
echo "    upload: sink says $up"
check "4 MB upload through the 1400 link, sha256 matches" [ "$up" = "$want_up 4194304" ]
check "the client's full-size DF segments got fragmentation-needed (frag_needed_sent $(counter frag_needed_sent))" \
    [ "$(counter frag_needed_sent)" -gt 0 ]
echo "    client's route cache toward the VIP: $(C ip route get "$VIP" | head -2 | xargs)"
want20=$(head -c 20M "$NGINX_RS_DIR/html/big" | sha256sum | cut -d' ' -f1)
got20=$(C timeout 60 curl -s -m 50 --noproxy '*' -r 0-20971519 "http://$VIP/big" | sha256sum | cut -d' ' -f1)
check "20 MB download across the 1400 link, sha256 matches" [ "$got20" = "$want20" ]
show_counters '^frag|fragments_|mtu|mss'
check "no fragment dropped ($(frag_drops))" [ -z "$(frag_drops)" ]
rvsd_stop

finish
