#!/usr/bin/env bash
# IPv6 end to end (issue 14), one rvsd on dual-stack ports, real kernel peers in namespaces, the
# IPv6 benchmarking prefix 2001:2::/48 beside 198.18.0.0/15 (topo6_up, topo6_pmtu_up):
# - IPv6 FULLNAT: 300 `curl -6` split exactly by rr over 3 IPv6 nginx real servers, a 100 MB
#   download with a matching sha256, UDP over IPv6, wrk keep-alive with 0 errors, the client's IPv6
#   address read from DPVS's IPv6 TOA (kind 254, length 20) by a test server;
# - NAT64 (IPv6 VIP, IPv4 nginx real servers and IPv4 LIP): the split, the sha256, TOA;
# - path MTU: a client behind a 1280-byte link completes 100 MB through IPv6 FULLNAT and NAT64, and
#   the test shows the Packet Too Big (tcpdump at the router, bounded) and what the real server
#   learnt from it (its route cache towards the LIP);
# - SYN-proxy over IPv6 under a bounded spoofed-source IPv6 SYN flood (syn6_flood.py): legitimate
#   curls 100 % served, 0 SYN-RECV on the real servers (`ss -6 -tn state syn-recv`);
# - dual stack: IPv4 and IPv6 services on the same ports at once, `rvsadm -Ln` lists both, `-S`
#   writes [addr]:port, `-Lnc` lists IPv6 connections, IPv6 real servers and LIPs change at runtime.
# RVS_WORKERS=2 runs two workers (rr then splits within 1 per real server, and replies of IPv6 and
# NAT64 connections are handed to the worker owning their local port). WRK_SECONDS, FLOOD_SECONDS.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo6_up
topo6_pmtu_up
export RVSADM_SOCKET="$RVS_SOCK"
C() { ip netns exec "$NS_C" "$@"; }
P() { ip netns exec "$NS_P" "$@"; }
S() { ip netns exec "$NS_S" "$@"; }
WRK_SECONDS=${WRK_SECONDS:-8}
FLOOD_SECONDS=${FLOOD_SECONDS:-6}
CURL=(curl -s -g --noproxy '*')
# The same, for command lines run by an inner bash -c.
CURLS="curl -s -g --noproxy '*'"
# NAT64's IPv4 local address (the IPv4 service has $LIP).
LIP64=198.18.1.101

# RVS_WORKERS=N (default 1): N workers on N af_packet queue pairs, as write_config does.
workers=${RVS_WORKERS:-1} lcores=1 qargs="" cpus="" idle=0
if [ "$workers" -gt 1 ]; then
    lcores=$(seq -s, 1 "$workers")
    cpus="cpus = [$(for i in $(seq 0 $((workers - 1))); do echo $((i % $(nproc))); done | paste -sd,)]"
    qargs=",qpairs=$workers"
    idle=${RVS_IDLE_US:-20}
fi

cfg="$RVS_TMP/rvsd.toml"
cat > "$cfg" <<CFG
version = 1

[eal]
log_level = 4
file_prefix = "rvs-hv6ctl-$RVS_ID"

[workers]
main_lcore = 0
lcores = [$lcores]
$cpus
idle_sleep_us = $idle

[control]
socket = "$RVS_SOCK"

[[ports]]
name = "client"
device = "net_af_packet0,iface=gc$qargs"
addr = "$GW_C/24"
addr6 = "$GW6_C/64"

[[ports]]
name = "server"
device = "net_af_packet1,iface=gs$qargs"
addr = "$GW_S/24"
addr6 = "$GW6_S/64"

# The client behind the 1280-byte link (topo6_pmtu_up), through the client namespace's router.
[[routes]]
dst = "$CLIENT6_P_NET"
via = "$CLIENT6"

[conn]
max_per_worker = 65536

[metrics]
listen = "127.0.0.1:9100"

# IPv6 FULLNAT
[[services]]
proto = "tcp"
vip = "[$VIP6]:80"
sched = "rr"
laddrs = ["$LIP6"]
reals = [{ addr = "[${RS6[0]}]:80" }, { addr = "[${RS6[1]}]:80" }, { addr = "[${RS6[2]}]:80" }]

[[services]]
proto = "tcp"
vip = "[$VIP6]:8080"
sched = "rr"
toa = true
laddrs = ["$LIP6"]
reals = [{ addr = "[${RS6[0]}]:8080" }]

[[services]]
proto = "udp"
vip = "[$VIP6]:53"
sched = "rr"
laddrs = ["$LIP6"]
reals = [{ addr = "[${RS6[0]}]:5353" }, { addr = "[${RS6[1]}]:5353" }, { addr = "[${RS6[2]}]:5353" }]

# SYN-proxy over IPv6
[[services]]
proto = "tcp"
vip = "[$VIP6]:81"
sched = "rr"
synproxy = true
laddrs = ["$LIP6"]
reals = [{ addr = "[${RS6[0]}]:80" }, { addr = "[${RS6[1]}]:80" }, { addr = "[${RS6[2]}]:80" }]

# NAT64: an IPv6 VIP, IPv4 real servers and local address
[[services]]
proto = "tcp"
vip = "[$VIP6_NAT64]:80"
sched = "rr"
laddrs = ["$LIP64"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]

[[services]]
proto = "tcp"
vip = "[$VIP6_NAT64]:8080"
sched = "rr"
toa = true
laddrs = ["$LIP64"]
reals = [{ addr = "${RS[1]}:8080" }]

# IPv4 beside them, on the same ports
[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
CFG

nginx_rs_start "$NS_S" "${RS[@]}" "${RS6[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
want=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/toa_server.py" --iface s0 --addr "${RS6[0]}" --port 8080
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/toa_server.py" --iface s0 --addr "${RS[1]}" --port 8080
for a in "${RS6[@]}"; do bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$a" 5353 --tag; done
sleep 0.5
rvsd_start "$cfg" || { fail "rvsd did not start with the dual-stack configuration"; finish; exit 1; }

# curls NS N URL FILE: N requests from namespace NS, one answer line (or FAILED) each into FILE.
# After 3 failures in a row the rest are written as SKIPPED: a path the dataplane does not serve
# fails its checks in seconds, not N curl timeouts.
curls() {
    ip netns exec "$1" bash -c "bad=0; for i in \$(seq $2); do
        if [ \$bad -ge 3 ]; then echo SKIPPED; continue; fi
        if out=\$($CURLS -m 3 '$3'); then echo \"\$out\"; bad=0; else echo FAILED; bad=\$((bad + 1)); fi
    done" > "$4"
}

# split FILE N ADDR...: N answers in FILE, each ADDR served exactly N/count (rr, one worker).
rr_split() {
    local file=$1 n=$2; shift 2
    sort "$file" | uniq -c | sed 's/^/    /'
    check "$n of $n requests answered" [ "$(grep -c '^rs=' "$file")" -eq "$n" ]
    # Each worker runs its own rr: with N workers each real server is within N-1 of an even share.
    local a k slack=$((workers - 1))
    for a in "$@"; do
        k=$(grep -cx "rs=$a" "$file")
        if [ "$slack" -eq 0 ]; then
            check "rr split exactly even: $a served $k of $((n / $#))" [ "$k" -eq $((n / $#)) ]
        else
            check "rr split even within $slack ($workers workers): $a served $k of $((n / $#))" \
                [ "$k" -ge $((n / $# - slack)) -a "$k" -le $((n / $# + slack)) ]
        fi
    done
}

# big FROM URL LABEL: a 100 MB download in namespace FROM, its sha256 checked.
big() {
    local t0 t1 got
    t0=$(date +%s%N)
    got=$(ip netns exec "$1" "${CURL[@]}" --connect-timeout 5 -m 120 "$2" | sha256sum | cut -d' ' -f1)
    t1=$(date +%s%N)
    echo "    100 MB in $(( (t1 - t0) / 1000000 )) ms"
    check "$3: sha256 of 100 MB matches the source" [ "$got" = "$want" ]
}

echo "== dual stack: one rvsd, the same ports, IPv4 and IPv6 services"
"$RVSADM" -Ln > "$RVS_TMP/list"
sed 's/^/    /' "$RVS_TMP/list"
check "rvsadm -Ln lists the IPv4 service" grep -q "^TCP  $VIP:80 rr" "$RVS_TMP/list"
check "rvsadm -Ln lists the IPv6 service as [addr]:port" grep -q "^TCP  \[$VIP6\]:80 rr" "$RVS_TMP/list"
check "rvsadm -Ln lists IPv6 real servers" grep -q "^  -> \[${RS6[0]}\]:80 " "$RVS_TMP/list"
check "rvsadm -Ln lists the NAT64 service's IPv4 real servers" \
    bash -c "grep -A3 '^TCP  \[$VIP6_NAT64\]:80 ' '$RVS_TMP/list' | grep -q '^  -> ${RS[0]}:80 '"
check "IPv4 services sort before IPv6 ones (ipvs_cmp_services: family first)" \
    awk '/^(TCP|UDP)  \[/ {v6 = 1} /^(TCP|UDP)  [0-9]/ && v6 {bad = 1} END {exit bad}' "$RVS_TMP/list"
"$RVSADM" --ports | sed 's/^/    /'
check "rvsadm --ports shows the ports' IPv6 addresses" bash -c "'$RVSADM' --ports | grep -q 'inet6 $GW6_C/64'"
check "ping6 to the gateway's port address" C ping -6 -c 2 -W 2 "$GW6_C"
check "ping6 to the VIP" C ping -6 -c 2 -W 2 "$VIP6"
curls "$NS_C" 30 "http://$VIP/" "$RVS_TMP/split4" &
v4=$!
curls "$NS_C" 30 "http://[$VIP6]/" "$RVS_TMP/split6" &
v6=$!
wait "$v4" "$v6"
check "IPv4 served while IPv6 is: 30 of 30 answers" [ "$(grep -c '^rs=' "$RVS_TMP/split4")" -eq 30 ]
check "IPv6 served while IPv4 is: 30 of 30 answers" [ "$(grep -c '^rs=' "$RVS_TMP/split6")" -eq 30 ]

echo "== IPv6 FULLNAT: 300 curl -6 through [$VIP6]:80, rr over 3 IPv6 real servers"
curls "$NS_C" 300 "http://[$VIP6]/" "$RVS_TMP/split"
# The dual-stack round above sent 30 requests: rr continues where it stopped, still exact.
rr_split "$RVS_TMP/split" 300 "${RS6[@]}"

echo "== IPv6 FULLNAT: 100 MB download"
big "$NS_C" "http://[$VIP6]/big" "IPv6 FULLNAT"

echo "== IPv6 FULLNAT: TOA carries the client's IPv6 address (DPVS's IPv6 TOA, 20 bytes)"
toa=$(C "${CURL[@]}" -m 3 "http://[$VIP6]:8080/")
echo "    $toa"
check "the real server's peer is the IPv6 LIP" grep -q "peer=\[$LIP6\]:" <<<"$toa"
check "TOA carries [$CLIENT6]" grep -q "toa=\[$CLIENT6\]:" <<<"$toa"

echo "== IPv6 FULLNAT: UDP"
C python3 - "$VIP6" > "$RVS_TMP/udp" <<'PY'
import socket, sys
ok = bad = 0
for i in range(30):
    if bad >= 3:  # the path is not served: fail in seconds
        break
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(b"q%d" % i, (sys.argv[1], 53))
    try:
        data = s.recvfrom(2048)[0].decode()
        if data.endswith("q%d" % i):
            ok += 1
            print(data)
    except socket.timeout:
        bad += 1
        continue
    bad = 0
print("ok=%d" % ok)
PY
check "30 of 30 UDP answers over IPv6" grep -qx "ok=30" "$RVS_TMP/udp"
check "UDP spread over all 3 IPv6 real servers" [ "$(grep -o 'rs=[0-9a-f:]*' "$RVS_TMP/udp" | sort -u | wc -l)" -eq 3 ]
check "UDP peers are the IPv6 LIP" bash -c "grep -q '^rs=' '$RVS_TMP/udp' && ! grep '^rs=' '$RVS_TMP/udp' | grep -v 'peer=\[$LIP6\]:' | grep -q ."

echo "== IPv6 FULLNAT: wrk keep-alive, 64 connections, ${WRK_SECONDS} s"
C timeout $((WRK_SECONDS + 30)) wrk -t2 -c64 -d"${WRK_SECONDS}s" "http://[$VIP6]/" > "$RVS_TMP/wrk" 2>&1
grep -E "Requests/sec|requests in|errors|Non-2xx" "$RVS_TMP/wrk" | sed 's/^/    /'
rps=$(awk '/^Requests\/sec:/ {print $2}' "$RVS_TMP/wrk")
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
check "wrk ran over IPv6 (requests/s: ${rps:-none})" [ -n "$rps" ]
check "0 socket errors (${errs:-0}), 0 non-2xx (${non2xx:-0})" [ "${errs:-0}" -eq 0 -a "${non2xx:-0}" -eq 0 ]

echo "== rvsadm -Lnc lists IPv6 connections as [addr]:port"
C "${CURL[@]}" -6 -m 3 -o /dev/null "http://[$VIP6]/"
"$RVSADM" -Lnc --show-lip > "$RVS_TMP/conns"
{ head -2 "$RVS_TMP/conns"; grep '\[' "$RVS_TMP/conns" | head -3; } | sed 's/^/    /'
check "a connection from [$CLIENT6] to [$VIP6]:80 via [$LIP6]" \
    grep -qE "^TCP .*\[$CLIENT6\]:[0-9]+ +\[$VIP6\]:80 +\[$LIP6\]:[0-9]+ +\[2001:2:0:1::1[123]\]:80" "$RVS_TMP/conns"

echo "== metrics: IPv6 services and real servers as label values"
ip netns exec "$NS_G" curl -s -m 3 http://127.0.0.1:9100/metrics > "$RVS_TMP/metrics"
grep -E 'rvs_(service_connections_total|real_weight)\{proto="tcp",vip="\[' "$RVS_TMP/metrics" | head -4 | sed 's/^/    /'
check "rvs_service_connections_total for [$VIP6]:80 counts the 330 requests and more" \
    awk -v k="rvs_service_connections_total{proto=\"tcp\",vip=\"[$VIP6]:80\"}" '$1 == k && $2 >= 330 {f = 1} END {exit !f}' "$RVS_TMP/metrics"
check "rvs_real_weight of a NAT64 service's IPv4 real server" \
    grep -q "^rvs_real_weight{proto=\"tcp\",vip=\"\[$VIP6_NAT64\]:80\",rs=\"${RS[0]}:80\"} 1$" "$RVS_TMP/metrics"

echo "== NAT64: 300 curl -6 through [$VIP6_NAT64]:80 to IPv4 nginx"
curls "$NS_C" 300 "http://[$VIP6_NAT64]/" "$RVS_TMP/split64"
rr_split "$RVS_TMP/split64" 300 "${RS[@]}"
big "$NS_C" "http://[$VIP6_NAT64]/big" "NAT64"
toa=$(C "${CURL[@]}" -m 3 "http://[$VIP6_NAT64]:8080/")
echo "    $toa"
check "NAT64: the IPv4 real server's peer is the IPv4 LIP" grep -q "peer=$LIP64:" <<<"$toa"
check "NAT64: TOA carries the client's IPv6 address [$CLIENT6]" grep -q "toa=\[$CLIENT6\]:" <<<"$toa"
# NAT64 connections live in the IPv6 table with their own local ports: rvsd refuses to share
# NAT64's IPv4 LIP with an IPv4 service (docs/config.md, "Address families").
check "NAT64's IPv4 LIP is refused as an IPv4 service's local address" \
    bash -c "! '$RVSADM' --add-laddr -t $VIP:80 -z $LIP64 2>'$RVS_TMP/err'"
sed 's/^/    /' "$RVS_TMP/err"

echo "== path MTU: a client behind a $PMTU-byte link ($NS_P via the router $NS_C)"
check "the pmtu client reaches the VIP (ping6)" P ping -6 -c 2 -W 2 "$VIP6"
S ip -6 route flush cache >/dev/null 2>&1
S ip route flush cache >/dev/null 2>&1
# Packet Too Big (ICMPv6 type 2) the router sends toward the VIP; bounded in time and count.
C timeout 150 tcpdump -i c0 -nn -l -c 20 'icmp6 and ip6[40] == 2' > "$RVS_TMP/ptb6" 2>/dev/null &
td=$!
sleep 1
big "$NS_P" "http://[$VIP6]/big" "path MTU, IPv6 FULLNAT"
sleep 0.5
rs_mtu6=$(S ip -6 route get "$LIP6" 2>/dev/null | grep -o 'mtu [0-9]*' | head -1)
echo "    real servers' route to the LIP6 after it: ${rs_mtu6:-no learnt mtu}"
big "$NS_P" "http://[$VIP6_NAT64]/big" "path MTU, NAT64"
sleep 0.5
rs_mtu4=$(S ip route get "$LIP64" 2>/dev/null | grep -o 'mtu [0-9]*' | head -1)
echo "    real servers' route to the IPv4 LIP after it: ${rs_mtu4:-no learnt mtu}"
kill "$td" 2>/dev/null; wait "$td" 2>/dev/null
ptbs=$(grep -c 'packet too big' "$RVS_TMP/ptb6")
head -3 "$RVS_TMP/ptb6" | sed 's/^/    /'
check "the router sent Packet Too Big (mtu $PMTU) toward the VIP ($ptbs seen, at most 20 captured)" \
    grep -q "packet too big, mtu $PMTU" "$RVS_TMP/ptb6"
check "IPv6 FULLNAT: the PTB reached the real server (route to the LIP6: ${rs_mtu6:-none}, want mtu $PMTU)" \
    [ "${rs_mtu6#mtu }" = "$PMTU" ]
check "NAT64: translated to fragmentation-needed, the IPv4 real server learnt mtu $((PMTU - 20)) (${rs_mtu4:-none})" \
    [ "${rs_mtu4#mtu }" = "$((PMTU - 20))" ]

echo "== runtime changes: IPv6 real servers and local addresses through rvsadm"
"$RVSADM" -a -t "[$VIP6]:80" -r "[2001:2:0:1::14]:80" -w 0
"$RVSADM" --add-laddr -t "[$VIP6]:80" -z 2001:2:0:1::101
"$RVSADM" -S > "$RVS_TMP/save"
check "-S writes the IPv6 service" grep -qx -- "-A -t \[$VIP6\]:80 -s rr" "$RVS_TMP/save"
check "-S writes the added IPv6 real server" grep -qx -- "-a -t \[$VIP6\]:80 -r \[2001:2:0:1::14\]:80 -b -w 0" "$RVS_TMP/save"
check "-S writes the added IPv6 local address" grep -qx -- "--add-laddr -t \[$VIP6\]:80 -z 2001:2:0:1::101" "$RVS_TMP/save"
check "-S writes the NAT64 service's IPv4 real servers" grep -qx -- "-a -t \[$VIP6_NAT64\]:80 -r ${RS[0]}:80 -b -w 1" "$RVS_TMP/save"
check "an IPv4 real server in an IPv6 service is refused when it is not FULLNAT" \
    bash -c "! '$RVSADM' -a -t '[$VIP6_NAT64]:80' -r ${RS[2]}:8081 -m 2>'$RVS_TMP/err'"
sed 's/^/    /' "$RVS_TMP/err"
check "an IPv6 real server in an IPv4 service is refused" \
    bash -c "! '$RVSADM' -a -t $VIP:80 -r '[${RS6[0]}]:80' 2>'$RVS_TMP/err'"
sed 's/^/    /' "$RVS_TMP/err"
"$RVSADM" -Ln --stats > "$RVS_TMP/stats"
grep -E '^(TCP|UDP)  \[' "$RVS_TMP/stats" | head -3 | sed 's/^/    /'
check "-Ln --stats: the IPv6 service's line, [addr]:port in the 33 column, counts connections" \
    awk -v v="[$VIP6]:80" '$1 == "TCP" && $2 == v && $3 > 0 {f = 1} END {exit !f}' "$RVS_TMP/stats"
check "-Ln --rate lists the IPv6 real servers" bash -c "'$RVSADM' -Ln --rate | grep -q '^  -> \[${RS6[1]}\]:80 '"
# Services, real servers, methods and weights (the connection counts may move meanwhile).
"$RVSADM" -Ln | awk '{print $1, $2, $3, $4}' > "$RVS_TMP/before"
check "-S | -R restores the IPv6 and NAT64 services as they were" \
    bash -c "'$RVSADM' -R < '$RVS_TMP/save' && '$RVSADM' -Ln | awk '{print \$1, \$2, \$3, \$4}' | diff -q - '$RVS_TMP/before' >/dev/null"
"$RVSADM" -d -t "[$VIP6]:80" -r "[2001:2:0:1::14]:80"
"$RVSADM" --del-laddr -t "[$VIP6]:80" -z 2001:2:0:1::101
check "the IPv6 service still serves after the changes" \
    bash -c "ip netns exec '$NS_C' $CURLS -6 -m 3 http://[$VIP6]/ | grep -q '^rs='"

echo "== SYN-proxy over IPv6: spoofed IPv6 SYN flood (${FLOOD_SECONDS} s, at most 300000 SYNs)"
synacks0=$(counter synproxy_synacks)
C bash -c "bad=0; for i in \$(seq 40); do
    if [ \$bad -ge 3 ]; then echo '000 skipped'; continue; fi
    $CURLS -6 -m 20 --connect-timeout 15 -o /dev/null -w '%{http_code} %{time_total}\n' http://[$VIP6]:81/ && bad=0 || { echo '000 99'; bad=\$((bad + 1)); }
    sleep 0.1; done" > "$RVS_TMP/loop6" &
loop=$!
C timeout $((FLOOD_SECONDS + 10)) python3 "$RVS_ROOT/scripts/lib/syn6_flood.py" "$VIP6" 81 \
    --seconds "$FLOOD_SECONDS" --count 300000 > "$RVS_TMP/flood6" 2>&1 &
fl=$!
maxsr=0
for _ in $(seq 1 $((FLOOD_SECONDS * 2))); do
    sr=$(S ss -6 -Htn state syn-recv | wc -l); [ "$sr" -gt "$maxsr" ] && maxsr=$sr
    sleep 0.5
done
wait "$loop"; wait "$fl"
echo "    flood: $(cat "$RVS_TMP/flood6"); cookie SYN-ACKs: $(( $(counter synproxy_synacks) - synacks0 ))"
ok_n=$(grep -c '^200 ' "$RVS_TMP/loop6")
lat=$(awk '$1 == 200 {print $2 * 1000}' "$RVS_TMP/loop6" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "p50 %.1f ms, max %.1f ms", a[int(NR/2)+1], a[NR]}')
echo "    legitimate requests: $ok_n/40 answered 200, latency ${lat:-none}"
check "legitimate IPv6 requests during the flood: 100 % ($ok_n/40)" [ "$ok_n" -eq 40 ]
check "no SYN-RECV on the real servers (ss -6 -tn state syn-recv, peak $maxsr)" [ "$maxsr" -eq 0 ]
check "the gateway answered the flood with cookies ($(( $(counter synproxy_synacks) - synacks0 )) SYN-ACKs)" \
    [ $(( $(counter synproxy_synacks) - synacks0 )) -gt 1000 ]

if [ "$workers" -gt 1 ]; then
    echo "== $workers workers: IPv6 and NAT64 replies reach the worker owning their local port"
    check "replies were handed to their owner ($(counter handoff_out) out, $(counter handoff_in) in)" \
        [ "$(counter handoff_out)" -gt 0 ]
    check "every hand-off arrived (out = in)" [ "$(counter handoff_out)" -eq "$(counter handoff_in)" ]
    check "no reply dropped for want of an owner (lip_no_conn $(counter drop.lip_no_conn))" \
        [ "$(counter drop.lip_no_conn)" -eq 0 ]
fi
api '{"op":"stats"}' | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print("    worker %d: %s" % (w["worker"], " ".join("%s=%d" % (k, v) for k, v in w["counters"] if v)))'
finish
