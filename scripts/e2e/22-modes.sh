#!/usr/bin/env bash
# The LVS forwarding modes beside FULLNAT with real kernel servers, each in its own namespace on one
# bridged L2 segment (topo_modes_up in scripts/lib/topo.sh): NAT (ipvsadm -m), DR (-g) and TUN (-i,
# IPv4-in-IPv4, decapsulated on the real servers by scripts/lib/ipip_decap.py since this kernel has
# no ipip module). For each mode: 300 curls split 100/100/100 by rr, the real servers seeing the
# client's own address, UDP request/response, a 100 MB download with matching sha256 and wrk
# keep-alive load with 0 errors. DR and TUN: the replies bypass the gateway (its client port sends
# next to nothing while the client receives the whole download). TUN: SYN MSS clamped, an upload
# too big for the tunnel answered with ICMP frag-needed and completed. Bad combinations (DR to an
# off-link server, SYN-proxy with DR, an unknown mode) refused with one line, nothing changed;
# rvsadm -Ln names Masq / Route / Tunnel. Then NAT with two workers: replies reach their
# connection's owner (drop.nat_no_conn and drop.lip_no_conn stay 0).
# Knobs: WRK_SECONDS (default 10), RVS_NO_BUILD=1 (use the release binaries as they are).
# Runs in about 2 minutes. The decapsulator has its own test: scripts/lib/ipip_decap_selftest.sh.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
if command -v cargo >/dev/null 2>&1 && [ -z "${RVS_NO_BUILD:-}" ]; then
    (cd "$RVS_ROOT" && cargo build --release --quiet -p rvsd -p rvs-control) || { echo "build failed" >&2; exit 1; }
fi
topo_modes_up
export RVSADM_SOCKET="$RVS_SOCK"
WRK_SECONDS=${WRK_SECONDS:-10}
C() { ip netns exec "$NS_C" "$@"; }
# Config names of the modes and what rvsadm -Ln calls them.
declare -A FWD=([nat]=nat [dr]=dr [tun]=tun)
declare -A FWD_LN=([nat]=Masq [dr]=Route [tun]=Tunnel)
# Ports: the service's (VIP) and the real servers' (DR and TUN keep the port, NAT translates it).
declare -A TPORT=([nat]=80 [dr]=8081 [tun]=8082)
declare -A TRPORT=([nat]=8000 [dr]=8081 [tun]=8082)
declare -A UPORT=([nat]=53 [dr]=5301 [tun]=5302)
declare -A URPORT=([nat]=5353 [dr]=5301 [tun]=5302)
SINK_PORT=8090

services() {
    local m p
    for m in nat dr tun; do
        for p in tcp udp; do
            local vp rp
            if [ $p = tcp ]; then vp=${TPORT[$m]}; rp=${TRPORT[$m]}; else vp=${UPORT[$m]}; rp=${URPORT[$m]}; fi
            cat <<SVC

[[services]]
proto = "$p"
vip = "$VIP:$vp"
sched = "rr"
reals = [{ addr = "${RS[0]}:$rp", forward = "${FWD[$m]}" }, { addr = "${RS[1]}:$rp", forward = "${FWD[$m]}" }, { addr = "${RS[2]}:$rp", forward = "${FWD[$m]}" }]
SVC
        done
    done
    cat <<SVC

# TUN upload sink: a client segment too big for the tunnel gets ICMP frag-needed.
[[services]]
proto = "tcp"
vip = "$VIP:$SINK_PORT"
sched = "rr"
reals = [{ addr = "${RS[0]}:$SINK_PORT", forward = "${FWD[tun]}" }]
SVC
}
cfg="$RVS_TMP/rvsd.toml"
{ printf '\n[conn]\nmax_per_worker = 65536\n'; services; } | write_config "$cfg"

# --- real servers: one nginx per namespace answering its own name, UDP echoes, the TUN decapsulator
mkdir -p "$RVS_TMP/html"
head -c 100M /dev/urandom > "$RVS_TMP/html/big"
want=$(sha256sum "$RVS_TMP/html/big" | cut -d' ' -f1)
for i in 0 1 2; do
    d="$RVS_TMP/rs$i"; mkdir -p "$d"/{body,proxy,fastcgi,uwsgi,scgi}
    cat > "$d/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
    log_format peer '\$remote_addr \$server_addr:\$server_port \$uri';
    access_log $d/access.log peer;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    default_type text/plain;
    server {
        listen ${TRPORT[nat]} backlog=4096;
        listen ${TRPORT[dr]} backlog=4096;
        listen ${TRPORT[tun]} backlog=4096;
        location = /big { root $RVS_TMP/html; sendfile off; default_type application/octet-stream; }
        location / { return 200 "rs=${RS[$i]}\n"; }
    }
}
CONF
    bg "${NS_R[$i]}" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
    bg "${NS_R[$i]}" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "${RS[$i]}" "${URPORT[nat]}" --name "${RS[$i]}"
    bg "${NS_R[$i]}" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$VIP" "${URPORT[dr]}" --name "${RS[$i]}"
    bg "${NS_R[$i]}" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$VIP" "${URPORT[tun]}" --name "${RS[$i]}"
    # TUN: ipip to the real server's address, the VIP on the TUN device too (as on tunl0).
    bg "${NS_R[$i]}" python3 "$RVS_ROOT/scripts/lib/ipip_decap.py" --addr "${RS[$i]}" --vip "$VIP" \
        --dev ipip0 --count-file "$RVS_TMP/decap$i"
done
# The TUN upload sink on the first real server: reads to EOF, answers the byte count and sha256.
bg "${NS_R[0]}" python3 -c "
import hashlib, socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$VIP', $SINK_PORT)); s.listen(16)
def serve(c):
    h = hashlib.sha256(); n = 0
    c.settimeout(30)
    try:
        while True:
            b = c.recv(65536)
            if not b: break
            h.update(b); n += len(b)
        c.sendall(b'%d %s\n' % (n, h.hexdigest().encode()))
    finally:
        c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()"
ready=
for _ in $(seq 100); do
    ready=1
    for i in 0 1 2; do
        ip netns exec "${NS_R[$i]}" curl -s -m 1 -o /dev/null "http://${RS[$i]}:${TRPORT[nat]}/" || ready=
        [ -s "$RVS_TMP/decap$i" ] || ready=
    done
    [ -n "$ready" ] && break
    sleep 0.1
done
[ -n "$ready" ] || { fail "real servers did not come up"; cat "$RVS_TMP"/rs*/error.log; finish; exit 1; }
rvsd_start "$cfg" || { fail "rvsd did not start"; finish; exit 1; }

# port_stat PORT FIELD: a counter of the gateway's port (list_ports, rte_eth_stats).
port_stat() {
    api '{"op":"list_ports"}' | python3 -c '
import json, sys
print(next(p for p in json.load(sys.stdin)["ports"] if p["name"] == sys.argv[1])["stats"][sys.argv[2]])' "$1" "$2"
}
# client_rx DEV: packets the client namespace received on DEV.
client_rx() { C cat "/sys/class/net/$1/statistics/rx_packets"; }

echo "== rvsadm -Ln names the forwarding method"
"$RVSADM" -Ln | sed 's/^/    /'
for m in nat dr tun; do
    check "-Ln: the ${m} real servers show ${FWD_LN[$m]}" \
        [ "$("$RVSADM" -Ln | grep -cE "^  -> 198\.18\.1\.1[123]:${TRPORT[$m]} +${FWD_LN[$m]} ")" -eq 3 ]
done

# wrk_run URL LABEL: WRK_SECONDS of keep-alive load; checks 0 errors and 0 non-2xx; sets WRK_REQS.
WRK_REQS=0
wrk_run() {
    local url=$1 label=$2
    C timeout $((WRK_SECONDS + 30)) wrk -t2 -c32 -d"${WRK_SECONDS}s" "$url" > "$RVS_TMP/wrk.$label" 2>&1
    grep -E "Requests/sec|requests in|errors|Non-2xx" "$RVS_TMP/wrk.$label" | sed 's/^/    /'
    local errs non2xx reqs
    errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk.$label")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk.$label")
    reqs=$(awk '/requests in/ {print $1}' "$RVS_TMP/wrk.$label")
    check "$label: wrk ${WRK_SECONDS} s, ${reqs:-no} requests, 0 socket errors (${errs:-0}), 0 non-2xx (${non2xx:-0})" \
        bash -c "[ '${reqs:-0}' -gt 0 ] && [ '${errs:-0}' -eq 0 ] && [ '${non2xx:-0}' -eq 0 ]"
    WRK_REQS=${reqs:-0}
}

mode_suite() {
    local m=$1 tp=${TPORT[$1]} up=${UPORT[$1]} i n
    echo "== $m (${FWD_LN[$m]}): 300 HTTP requests through $VIP:$tp, rr over 3 real servers"
    for i in 0 1 2; do : > "$RVS_TMP/rs$i/access.log"; done
    C bash -c "for i in \$(seq 300); do curl -s -m 3 --noproxy '*' http://$VIP:$tp/ || echo FAILED; done" > "$RVS_TMP/split.$m"
    sort "$RVS_TMP/split.$m" | uniq -c | sed 's/^/    /'
    check "$m: 300 of 300 requests succeeded" [ "$(grep -c '^rs=' "$RVS_TMP/split.$m")" -eq 300 ]
    for i in 0 1 2; do
        n=$(grep -cx "rs=${RS[$i]}" "$RVS_TMP/split.$m")
        check "$m: rr split exactly even: ${RS[$i]} served $n of 100" [ "$n" -eq 100 ]
    done
    echo "== $m: the real servers see the client's own address"
    local peers dst want_dst
    peers=$(cat "$RVS_TMP"/rs{0,1,2}/access.log | awk '{print $1}' | sort | uniq -c | tr -s ' ')
    dst=$(cat "$RVS_TMP"/rs{0,1,2}/access.log | awk '{print $2}' | sed 's/\.1[123]:/.1x:/' | sort | uniq -c | tr -s ' ')
    echo "    peers:$peers; arrived on:$dst"
    check "$m: all 300 requests logged with peer $CLIENT" [ "$peers" = " 300 $CLIENT" ]
    if [ "$m" = nat ]; then want_dst="198.18.1.1x:${TRPORT[nat]}"; else want_dst="$VIP:$tp"; fi
    check "$m: the packets arrived addressed to $want_dst" [ "$dst" = " 300 $want_dst" ]

    echo "== $m: UDP request/response through $VIP:$up"
    C python3 - "$VIP" "$up" > "$RVS_TMP/udp.$m" <<'PY'
import socket, sys
ok = 0
for i in range(30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(b"q%d" % i, (sys.argv[1], int(sys.argv[2])))
    try:
        data, peer = s.recvfrom(2048)
        data = data.decode()
        if data.endswith(" q%d" % i) and peer == (sys.argv[1], int(sys.argv[2])):
            ok += 1
            print(data)
    except socket.timeout:
        pass
print("ok=%d" % ok)
PY
    check "$m: 30 of 30 UDP answers, from the VIP" grep -qx "ok=30" "$RVS_TMP/udp.$m"
    check "$m: UDP split 10/10/10" [ "$(grep -o 'rs=[0-9.]*' "$RVS_TMP/udp.$m" | sort | uniq -c | awk '{print $1}' | paste -sd' ')" = "10 10 10" ]
    check "$m: the UDP servers saw the client's own address" \
        [ "$(grep -c "^rs=[0-9.]* peer=$CLIENT:" "$RVS_TMP/udp.$m")" -eq 30 ]

    echo "== $m: 100 MB download, sha256 checked"
    local tx0 tx1 c0a c0b c1a c1b got t0 t1
    tx0=$(port_stat client tx_packets); c0a=$(client_rx c0); c1a=$(client_rx c1)
    t0=$(date +%s%N)
    got=$(C curl -s -m 120 --noproxy '*' "http://$VIP:$tp/big" | sha256sum | cut -d' ' -f1)
    t1=$(date +%s%N)
    tx1=$(port_stat client tx_packets); c0b=$(client_rx c0); c1b=$(client_rx c1)
    echo "    100 MB in $(( (t1 - t0) / 1000000 )) ms; gateway client-port TX +$((tx1 - tx0)) packets;" \
        "client received +$((c0b - c0a)) on c0 (from the gateway), +$((c1b - c1a)) on c1 (from the server LAN)"
    check "$m: sha256 of /big through the VIP matches the source" [ "$got" = "$want" ]
    if [ "$m" = nat ]; then
        check "$m: the replies came back through the gateway (client-port TX +$((tx1 - tx0)) >= 60000)" \
            [ $((tx1 - tx0)) -ge 60000 ]
    else
        check "$m: the replies took the servers' own route: client received +$((c1b - c1a)) >= 60000 on c1" \
            [ $((c1b - c1a)) -ge 60000 ]
        check "$m: ... and none through the gateway: its client-port TX +$((tx1 - tx0)) <= 20 (ARP at most)" \
            [ $((tx1 - tx0)) -le 20 ]
    fi

    echo "== $m: wrk keep-alive, 32 connections, ${WRK_SECONDS} s"
    tx0=$(port_stat client tx_packets)
    wrk_run "http://$VIP:$tp/" "$m"
    tx1=$(port_stat client tx_packets)
    if [ "$m" != nat ]; then
        check "$m: $WRK_REQS responses under load, gateway client-port TX +$((tx1 - tx0)) (<= 20)" \
            [ $((tx1 - tx0)) -le 20 ]
    fi
}

mode_suite nat
check "nat: no reply without a connection (drop.nat_no_conn $(counter drop.nat_no_conn))" [ "$(counter drop.nat_no_conn)" -eq 0 ]
mode_suite dr
clamped0=$(counter mss_clamped)
mode_suite tun
clamped1=$(counter mss_clamped)
check "tun: SYN MSS clamped on every new TUN connection (mss_clamped +$((clamped1 - clamped0)) >= 301)" \
    [ $((clamped1 - clamped0)) -ge 301 ]
for i in 0 1 2; do echo "    decapsulator on ${RS[$i]}: $(cat "$RVS_TMP/decap$i")"; done
check "tun: every real server's decapsulator carried the traffic" \
    bash -c "for i in 0 1 2; do grep -q 'decapsulated=[0-9]\{4,\}' '$RVS_TMP'/decap\$i || exit 1; done"

echo "== tun: an upload whose full-size segments do not fit the tunnel (1500 + 20 > MTU 1500)"
fn0=$(counter frag_needed_sent)
head -c 4M /dev/urandom > "$RVS_TMP/up"
up_want="$(stat -c %s "$RVS_TMP/up") $(sha256sum "$RVS_TMP/up" | cut -d' ' -f1)"
up_got=$(C timeout 60 python3 -c "
import socket, sys
s = socket.create_connection(('$VIP', $SINK_PORT), timeout=20)
s.sendall(open('$RVS_TMP/up', 'rb').read()); s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())" 2>&1)
fn1=$(counter frag_needed_sent)
pmtu=$(C ip route get "$VIP" 2>/dev/null | grep -o 'mtu [0-9]*')
echo "    sink: $up_got; frag_needed_sent +$((fn1 - fn0)); client route to the VIP: ${pmtu:-no mtu}"
check "tun: too-big DF segments answered with frag-needed (frag_needed_sent +$((fn1 - fn0)))" [ $((fn1 - fn0)) -ge 1 ]
check "tun: the client learnt MTU 1480 from it (${pmtu:-none})" [ "$pmtu" = "mtu 1480" ]
check "tun: the 4 MB upload arrived whole (sha256 matches)" [ "$up_got" = "$up_want" ]

echo "== bad combinations refused with one line, the running configuration unchanged"
ln_strip() { "$RVSADM" -Ln | awk '{ if ($1 == "->" && NF >= 5) print $1, $2, $3, $4; else print }'; }
ln0=$(ln_strip); s0=$("$RVSADM" -Sn)
refused() { # LABEL PATTERN CMD...: CMD fails with exactly one line matching PATTERN (grep -Ei)
    local label=$1 pat=$2 out rc; shift 2
    out=$("$@" 2>&1); rc=$?
    echo "    [$rc] $out"
    check "$label refused (one line, matching /$pat/)" \
        bash -c '[ "$1" -ne 0 ] && [ "$(printf "%s\n" "$2" | wc -l)" -eq 1 ] && grep -Eqi "$3" <<<"$2"' _ "$rc" "$out" "$pat"
}
# The texts are docs/config.md's ("Validation refuses, one line each naming the field").
OFFLINK='is on none of the ports. networks .*: DR needs an on-link real server'
SYNDR='SYN-proxy needs the real server.s replies through the gateway; real .* forwards dr'
refused "rvsadm: DR to an off-link real server (198.19.5.5)" "$OFFLINK" \
    "$RVSADM" -a -t "$VIP:${TPORT[dr]}" -r 198.19.5.5 -g
refused "rvsadm: SYN-proxy on a service with DR real servers" "$SYNDR" \
    "$RVSADM" -E -t "$VIP:${TPORT[dr]}" -s rr -j enable
if "$RVSADM" -A -t "$VIP:9000" -s rr -j enable >/dev/null 2>&1; then
    refused "rvsadm: a DR real server on a SYN-proxy service" "$SYNDR" \
        "$RVSADM" -a -t "$VIP:9000" -r "${RS[0]}" -g
    "$RVSADM" -D -t "$VIP:9000"
else
    fail "rvsadm -A -j enable (a SYN-proxy service to add a DR real server to) refused"
fi
# api_refused JSON: prints the error and fails when the daemon refuses the request.
api_refused() {
    python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
if r.get('ok'): sys.exit(0)
print(r['error']); sys.exit(1)" <<<"$(api "$1")"
}
refused "API: TUN to another port than the service's" "port 9999 is not the service's port ${TPORT[tun]}: DR/TUN cannot change the port" \
    api_refused '{"op":"add_real","proto":"tcp","vip":"'"$VIP:${TPORT[tun]}"'","real":{"addr":"198.18.1.14:9999","forward":"tun"}}'
refused "API: a forwarding method that does not exist" 'unknown forwarding method "bogus"' \
    api_refused '{"op":"add_real","proto":"tcp","vip":"'"$VIP:${TPORT[nat]}"'","real":{"addr":"198.18.1.14:8000","forward":"bogus"}}'
bad="$RVS_TMP/bad.toml"
sed 's/forward = "'"${FWD[dr]}"'"/forward = "bogus"/' "$cfg" > "$bad"
refused "rvsd --check: a mode name that does not exist" 'unknown forwarding method "bogus"' ip netns exec "$NS_G" "$RVSD" --check -c "$bad"
sed 's/addr = "'"${RS[0]}"':'"${TRPORT[dr]}"'", forward/addr = "198.19.5.5:'"${TRPORT[dr]}"'", forward/' "$cfg" > "$bad"
refused "rvsd --check: DR to an off-link real server" "$OFFLINK" \
    ip netns exec "$NS_G" "$RVSD" --check -c "$bad"
check "rvsadm -Ln unchanged (forwarding, weights)" [ "$(ln_strip)" = "$ln0" ]
check "rvsadm -Sn unchanged" [ "$("$RVSADM" -Sn)" = "$s0" ]
check "the unchanged config passes rvsd --check" ip netns exec "$NS_G" "$RVSD" --check -c "$cfg"

api '{"op":"stats"}' | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print("    worker %d: %s" % (w["worker"], " ".join("%s=%d" % (k, v) for k, v in w["counters"] if v)))'
rvsd_stop

echo "== nat with 2 workers (af_packet qpairs=2, fanout hash): replies handed to their owner"
{ printf '\n[conn]\nmax_per_worker = 65536\n'; services; } | RVS_WORKERS=2 write_config "$cfg"
rvsd_start "$cfg" || { fail "rvsd (2 workers) did not start"; finish; exit 1; }
C bash -c "for i in \$(seq 300); do curl -s -m 3 --noproxy '*' http://$VIP:${TPORT[nat]}/ || echo FAILED; done" > "$RVS_TMP/split.nat2"
sort "$RVS_TMP/split.nat2" | uniq -c | sed 's/^/    /'
check "nat x2: 300 of 300 requests succeeded" [ "$(grep -c '^rs=' "$RVS_TMP/split.nat2")" -eq 300 ]
# Each worker runs its own rr: with 2 workers each real server is within 1 of an even share.
for i in 0 1 2; do
    n=$(grep -cx "rs=${RS[$i]}" "$RVS_TMP/split.nat2")
    check "nat x2: rr split within 1 of even: ${RS[$i]} served $n" [ "$n" -ge 99 -a "$n" -le 101 ]
done
wrk_run "http://$VIP:${TPORT[nat]}/" "nat x2"
per_worker=$(api '{"op":"stats"}' | python3 -c '
import json, sys
print(" ".join(str(dict(w["counters"]).get("conns_created", 0)) for w in json.load(sys.stdin)["workers"]))')
echo "    connections created per worker: $per_worker; handoff_out $(counter handoff_out), handoff_in $(counter handoff_in)"
for c in $per_worker; do check "nat x2: a worker created connections ($c)" [ "$c" -gt 0 ]; done
check "nat x2: replies were handed to their owner (handoff_out $(counter handoff_out))" [ "$(counter handoff_out)" -gt 0 ]
check "nat x2: every hand-off arrived (out = in)" [ "$(counter handoff_out)" -eq "$(counter handoff_in)" ]
check "nat x2: no reply without its connection (drop.nat_no_conn $(counter drop.nat_no_conn))" [ "$(counter drop.nat_no_conn)" -eq 0 ]
check "nat x2: drop.lip_no_conn 0 ($(counter drop.lip_no_conn))" [ "$(counter drop.lip_no_conn)" -eq 0 ]
check "nat x2: no hand-off ring overflow (drop.handoff_full $(counter drop.handoff_full))" [ "$(counter drop.handoff_full)" -eq 0 ]
rvsd_stop

finish
