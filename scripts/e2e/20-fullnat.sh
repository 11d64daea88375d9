#!/usr/bin/env bash
# FULLNAT with real kernel TCP/UDP peers: HTTP split over 3 real servers, the LIP as the servers'
# peer and the client address in TOA, UDP request/response, a 100 MB transfer with matching sha256,
# wrk keep-alive load with 0 errors (compared with Linux nftables DNAT+SNAT), and connection expiry.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo_up
WRK_SECONDS=${WRK_SECONDS:-10}

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 65536

# Short timeouts so the expiry check below runs in seconds.
[conn.timeouts]
established = 60
syn_recv = 5
fin_wait = 2
time_wait = 2
close = 1
close_wait = 2
last_ack = 2
udp = 2

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
toa = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:8080" }]

[[services]]
proto = "udp"
vip = "$VIP:53"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:5353" }, { addr = "${RS[1]}:5353" }, { addr = "${RS[2]}:5353" }]
CFG

nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/toa_server.py" --iface s0 --addr "${RS[0]}" --port 8080
for a in "${RS[@]}"; do bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/udp_echo.py" "$a" 5353 --tag; done
sleep 0.5
rvsd_start "$cfg" || exit 1
C() { ip netns exec "$NS_C" "$@"; }

echo "== 300 HTTP requests through the VIP, rr over 3 real servers"
C bash -c "for i in \$(seq 300); do curl -s -m 3 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/split"
sort "$RVS_TMP/split" | uniq -c | sed 's/^/    /'
check "300 of 300 requests succeeded" [ "$(grep -c '^rs=' "$RVS_TMP/split")" -eq 300 ]
# Each worker runs its own rr: with N workers the split is exact per worker, so each real server is
# within N-1 of an even share overall (docs/architecture.md, "Multi-core").
slack=$(( ${RVS_WORKERS:-1} - 1 ))
for a in "${RS[@]}"; do
    n=$(grep -cx "rs=$a" "$RVS_TMP/split")
    if [ "$slack" -eq 0 ]; then
        check "rr split exactly even: $a served 100" [ "$n" -eq 100 ]
    else
        check "rr split even within $slack per real ($RVS_WORKERS workers, each rr on its own): $a served $n" \
            [ "$n" -ge $((100 - slack)) -a "$n" -le $((100 + slack)) ]
    fi
done

echo "== the real server sees the LIP as its peer, and the client address in TOA"
toa=$(C curl -s -m 3 --noproxy '*' "http://$VIP:8080/")
echo "    $toa"
check "peer is the LIP ($LIP)" grep -q "peer=$LIP:" <<<"$toa"
check "TOA carries the client address ($CLIENT)" grep -q "toa=$CLIENT:" <<<"$toa"
check "toa_inserted counted" [ "$(counter toa_inserted)" -ge 1 ]

echo "== UDP request/response through the VIP"
C python3 - "$VIP" > "$RVS_TMP/udp" <<'PY'
import socket, sys
ok = 0
for i in range(30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(b"q%d" % i, (sys.argv[1], 53))
    try:
        data = s.recvfrom(2048)[0].decode()
        if data.endswith("q%d" % i):
            ok += 1
            print(data)
    except socket.timeout:
        pass
print("ok=%d" % ok)
PY
check "30 of 30 UDP answers" grep -qx "ok=30" "$RVS_TMP/udp"
check "UDP spread over all 3 real servers" [ "$(grep -o 'rs=[0-9.]*' "$RVS_TMP/udp" | sort -u | wc -l)" -eq 3 ]
check "UDP peers are the LIP" bash -c "! grep '^rs=' '$RVS_TMP/udp' | grep -v 'peer=$LIP:' | grep -q ."

echo "== 100 MB transfer, sha256 checked"
want=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
t0=$(date +%s%N)
got=$(C curl -s -m 120 --noproxy '*' "http://$VIP/big" | sha256sum | cut -d' ' -f1)
t1=$(date +%s%N)
echo "    100 MB in $(( (t1 - t0) / 1000000 )) ms"
check "sha256 of /big through the VIP matches the source" [ "$got" = "$want" ]

echo "== wrk keep-alive load: 64 connections, ${WRK_SECONDS} s"
C timeout $((WRK_SECONDS + 30)) wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency "http://$VIP/" > "$RVS_TMP/wrk" 2>&1
sed 's/^/    /' "$RVS_TMP/wrk"
rps=$(awk '/^Requests\/sec:/ {print $2}' "$RVS_TMP/wrk")
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
check "wrk ran (requests/s: ${rps:-none})" [ -n "$rps" ]
check "0 socket errors (${errs:-0})" [ "${errs:-0}" -eq 0 ]
check "0 non-2xx responses (${non2xx:-0})" [ "${non2xx:-0}" -eq 0 ]
echo "rvs_fullnat requests_per_sec=${rps:-0}" > "$RVS_TMP/rvs.rps"

echo "== connection expiry (time_wait 2 s, udp 2 s, established 60 s)"
live=$(counter conns)
check "connections are tracked after the traffic ($live)" [ "$live" -gt 0 ]
idle=$(C python3 -c "
import socket, time
s = socket.create_connection(('$VIP', 80)); time.sleep(30)" >/dev/null 2>&1 & echo $!)
sleep 1
gone=
for i in $(seq 1 40); do
    n=$(counter conns)
    if [ "$n" -eq 1 ]; then gone=$i; break; fi
    sleep 0.25
done
check "closed TCP and idle UDP entries expired, the open connection stays (after ~$(( ${gone:-40} / 4 + 1 )) s)" [ -n "$gone" ]
kill "$idle" 2>/dev/null
check "conns_expired counted ($(counter conns_expired))" [ "$(counter conns_expired)" -gt 300 ]
api '{"op":"stats"}' | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print("    worker %d: %s" % (w["worker"], " ".join("%s=%d" % (k, v) for k, v in w["counters"])))'
if [ "${RVS_WORKERS:-1}" -gt 1 ]; then
    echo "== ${RVS_WORKERS} workers: both carry connections, replies reach their owner"
    per_worker=$(api '{"op":"stats"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r.get("steering", "?"), " ".join(str(dict(w["counters"]).get("conns_created", 0)) for w in r["workers"]))')
    echo "    steering and connections created per worker: $per_worker"
    check "steering is the software hand-off (af_packet has no flow rules)" [ "$(cut -d' ' -f1 <<<"$per_worker")" = software ]
    for c in $(cut -d' ' -f2- <<<"$per_worker"); do
        check "a worker created connections ($c)" [ "$c" -gt 0 ]
    done
    check "replies were handed to their owner ($(counter handoff_out) out, $(counter handoff_in) in)" \
        [ "$(counter handoff_out)" -gt 0 ]
    check "every hand-off arrived (out = in)" [ "$(counter handoff_out)" -eq "$(counter handoff_in)" ]
    check "no reply dropped for want of an owner (lip_no_conn $(counter drop.lip_no_conn))" \
        [ "$(counter drop.lip_no_conn)" -eq 0 ]
    check "no hand-off ring overflow ($(counter drop.handoff_full))" [ "$(counter drop.handoff_full)" -eq 0 ]
fi
rvsd_stop

echo "== reference: the same wrk run through Linux nftables DNAT+SNAT"
if [ -z "${RVS_SKIP_NFT:-}" ]; then
    ref=$(DURATION=$WRK_SECONDS RUNS=1 bash "$RVS_ROOT/scripts/nft_reference.sh" 2>/dev/null | grep '^nft_reference' | tail -1)
    echo "    $ref"
    nft_rps=$(sed -n 's/.*requests_per_sec=\([0-9.]*\).*/\1/p' <<<"$ref")
    if [ -n "$nft_rps" ] && [ -n "$rps" ]; then
        echo "    rvs ${rps} req/s vs nftables ${nft_rps} req/s: ratio $(python3 -c "print(round($rps/$nft_rps, 2))")"
    fi
    check "nftables reference ran" [ -n "$nft_rps" ]
fi

finish
