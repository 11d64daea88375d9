#!/usr/bin/env bash
# SYN-proxy end to end: with it on, traffic behaves as without it (curl, a 100 MB transfer with a
# matching sha256, wrk with 0 errors, TOA still reaching the real server); a spoofed-source SYN
# flood is survived (a curl loop keeps a 100 % success rate, the connection table does not grow,
# the real servers hold no half-open connections), while the same flood with it off does create
# half-open connections on the real servers.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo_up
export RVSADM_SOCKET="$RVS_SOCK"
C() { ip netns exec "$NS_C" "$@"; }
FLOOD_SECONDS=${FLOOD_SECONDS:-6}

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 65536

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
synproxy = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]

[[services]]
proto = "tcp"
vip = "$VIP:8080"
sched = "rr"
synproxy = true
toa = true
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:8080" }]
CFG
NGINX_RS_BIG_MB=100 nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx did not start"; finish; exit 1; }
bg "$NS_S" python3 "$RVS_ROOT/scripts/lib/toa_server.py" --iface s0 --addr "${RS[0]}" --port 8080
want=$(sha256sum "$NGINX_RS_DIR/html/big" | cut -d' ' -f1)
sleep 0.5
rvsd_start "$cfg" || exit 1
"$RVSADM" -Ln | sed 's/^/    /'

echo "== traffic through a SYN-proxied VIP"
C bash -c "for i in \$(seq 90); do curl -s -m 3 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/split"
sort "$RVS_TMP/split" | uniq -c | sed 's/^/    /'
check "90 of 90 requests succeeded" [ "$(grep -c '^rs=' "$RVS_TMP/split")" -eq 90 ]
check "rr split even through the proxy" [ "$(grep -cx "rs=${RS[2]}" "$RVS_TMP/split")" -eq 30 ]
check "the gateway answered the SYNs itself ($(counter synproxy_synacks) cookie SYN-ACKs)" [ "$(counter synproxy_synacks)" -ge 90 ]
check "every cookie checked out ($(counter synproxy_cookies_valid))" [ "$(counter synproxy_cookies_valid)" -ge 90 ]
check "every proxied handshake completed ($(counter synproxy_handshakes))" [ "$(counter synproxy_handshakes)" -ge 90 ]
got=$(C curl -s -m 120 --noproxy '*' "http://$VIP/big" | sha256sum | cut -d' ' -f1)
check "100 MB transfer, sha256 matches" [ "$got" = "$want" ]
toa=$(C curl -s -m 3 --noproxy '*' "http://$VIP:8080/")
echo "    $toa"
check "TOA still carries the client address through the proxy" grep -q "toa=$CLIENT:" <<<"$toa"
C timeout 60 wrk -t2 -c64 -d8s "http://$VIP/" > "$RVS_TMP/wrk" 2>&1
grep -E "Requests/sec|requests in|errors|Non-2xx" "$RVS_TMP/wrk" | sed 's/^/    /'
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
check "wrk: 0 errors, 0 non-2xx" bash -c "[ '${errs:-0}' -eq 0 ] && [ '${non2xx:-0}' -eq 0 ] && grep -q '^Requests/sec' '$RVS_TMP/wrk'"

# flood_round LABEL: a spoofed-source SYN flood while a curl loop runs; samples the gateway's
# connection count and the real servers' half-open connections.
flood_round() {
    local label=$1
    C bash -c "for i in \$(seq 40); do curl -s -m 10 --noproxy '*' -o /dev/null -w '%{http_code} %{time_total}\n' http://$VIP/ || echo '000 99'; sleep 0.1; done" > "$RVS_TMP/loop.$label" &
    local loop=$!
    C timeout "$FLOOD_SECONDS" hping3 --flood --rand-source -S -p 80 "$VIP" >/dev/null 2>&1 &
    local maxc=0 maxsr=0 n sr
    for _ in $(seq 1 $((FLOOD_SECONDS * 2))); do
        n=$(counter conns); [ "$n" -gt "$maxc" ] && maxc=$n
        sr=$(ip netns exec "$NS_S" ss -Htan state syn-recv | wc -l); [ "$sr" -gt "$maxsr" ] && maxsr=$sr
        sleep 0.5
    done
    wait "$loop"
    echo "$maxc $maxsr"
}

echo "== SYN flood (${FLOOD_SECONDS} s, hping3 --flood --rand-source) with SYN-proxy on"
synacks0=$(counter synproxy_synacks)
base=$(counter conns)
read -r maxc maxsr < <(flood_round on)
ok_n=$(grep -c '^200 ' "$RVS_TMP/loop.on")
lat=$(awk '$1 == 200 {print $2 * 1000}' "$RVS_TMP/loop.on" | sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms, max %.1f ms", a[int(NR/2)+1], a[NR]}')
echo "    legitimate requests: $ok_n/40 ok, latency $lat; cookie SYN-ACKs during the flood: $(( $(counter synproxy_synacks) - synacks0 ))"
echo "    gateway connections: $base before (TIME_WAIT of earlier traffic), peak $maxc; real servers' SYN-RECV peak: $maxsr"
check "legitimate requests during the flood: 100 % ($ok_n/40)" [ "$ok_n" -eq 40 ]
check "the connection table did not grow with the flood ($base -> peak $maxc; the curl loop adds 40)" [ $((maxc - base)) -le 60 ]
check "no half-open connections on the real servers (peak $maxsr)" [ "$maxsr" -eq 0 ]

echo "== the same flood with SYN-proxy off"
"$RVSADM" -E -t "$VIP:80" -j disable
read -r maxc_off maxsr_off < <(flood_round off)
echo "    gateway connections peak: $maxc_off; real servers' SYN-RECV peak: $maxsr_off"
check "without SYN-proxy the flood reaches the real servers (SYN-RECV peak $maxsr_off)" [ "$maxsr_off" -gt 0 ]
"$RVSADM" -E -t "$VIP:80" -j enable
"$RVSADM" -Ln | sed 's/^/    /'

finish
