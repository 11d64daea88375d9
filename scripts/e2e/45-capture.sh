#!/usr/bin/env bash
# Packet capture to pcap (capture_start/stop/status): 100 packets of the server-side port during
# HTTP through the VIP, read back by tcpdump with the FULLNAT tuples (LIP -> real server); a filter
# on a host that sends nothing captures 0; one capture at a time; bad requests refused in one line.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
topo_up

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
CFG

nginx_rs_start "$NS_S" "${RS[@]}" || { fail "nginx real servers did not start"; finish; exit 1; }
rvsd_start "$cfg" || exit 1
C() { ip netns exec "$NS_C" "$@"; }
# curls N: N HTTP requests through the VIP, bounded in time; prints how many succeeded.
curls() { C bash -c "for i in \$(seq $1); do curl -s -m 3 --noproxy '*' http://$VIP/ >/dev/null && echo ok; done" | grep -c ok; }
# field JSON KEY: one field of a response's capture status.
status() { api '{"op":"capture_status"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"][sys.argv[1]])' "$1"; }
# wait_finished: up to 5 s for the capture to finish.
wait_finished() { for _ in $(seq 50); do [ "$(status state)" = finished ] && return 0; sleep 0.1; done; return 1; }
refused() { python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if r["ok"] is False and r["error"] and "\n" not in r["error"] else 1)' <<<"$1"; }

echo "== nothing captured yet"
check "capture_status is idle before the first capture" [ "$(status state)" = idle ]

echo "== 100 packets of the server-side port during 40 HTTP requests"
pcap="$RVS_TMP/server.pcap"
r=$(api "{\"op\":\"capture_start\",\"capture\":{\"port\":\"server\",\"direction\":\"both\",\"filter\":{\"proto\":\"tcp\",\"port\":80},\"max_packets\":100,\"file\":\"$pcap\"}}")
echo "    $r"
check "capture_start accepted" grep -q '"ok":true' <<<"$r"
check "40 of 40 requests through the VIP succeeded" [ "$(curls 40)" -eq 40 ]
check "the capture finished by itself" wait_finished
check "it stopped at max_packets ($(status reason))" [ "$(status reason)" = max_packets ]
check "capture_status counts 100 packets ($(status packets))" [ "$(status packets)" -eq 100 ]
check "no frame dropped on the way to the writer ($(status dropped))" [ "$(status dropped)" -eq 0 ]
tcpdump -nr "$pcap" > "$RVS_TMP/server.txt" 2> "$RVS_TMP/tcpdump.err"
sed -n '1,4p' "$RVS_TMP/server.txt" | sed 's/^/    /'
check "tcpdump reads the file (link type $(grep -o 'link-type [A-Z0-9]*' "$RVS_TMP/tcpdump.err"))" grep -q 'link-type EN10MB' "$RVS_TMP/tcpdump.err"
check "tcpdump shows exactly 100 packets ($(wc -l < "$RVS_TMP/server.txt"))" [ "$(wc -l < "$RVS_TMP/server.txt")" -eq 100 ]
lip_rs=$(grep -cE "IP $LIP\.[0-9]+ > 198\.18\.1\.1[123]\.80: " "$RVS_TMP/server.txt")
rs_lip=$(grep -cE "IP 198\.18\.1\.1[123]\.80 > $LIP\.[0-9]+: " "$RVS_TMP/server.txt")
check "sent frames carry the FULLNAT tuple LIP -> RS:80 ($lip_rs)" [ "$lip_rs" -gt 0 ]
check "received frames RS:80 -> LIP ($rs_lip)" [ "$rs_lip" -gt 0 ]
check "every packet is one of the two ($((lip_rs + rs_lip)))" [ $((lip_rs + rs_lip)) -eq 100 ]
check "neither the client nor the VIP appears on the server side" bash -c "! grep -qE '$CLIENT|$VIP' '$RVS_TMP/server.txt'"

echo "== rx only on the client port: the client's frames to the VIP, before the dataplane"
cpcap="$RVS_TMP/client.pcap"
r=$(api "{\"op\":\"capture_start\",\"capture\":{\"port\":\"client\",\"direction\":\"rx\",\"filter\":{\"host\":\"$CLIENT\"},\"max_packets\":10,\"snaplen\":54,\"file\":\"$cpcap\"}}")
check "capture_start accepted" grep -q '"ok":true' <<<"$r"
curls 5 >/dev/null
check "finished at 10 packets" wait_finished
tcpdump -nr "$cpcap" 2>/dev/null > "$RVS_TMP/client.txt"
check "10 packets, all client -> VIP:80" [ "$(grep -cE "IP $CLIENT\.[0-9]+ > $VIP\.80: " "$RVS_TMP/client.txt")" -eq 10 ]
check "snaplen 54 kept 54 bytes of each ($(status bytes) bytes)" [ "$(status bytes)" -eq 540 ]

echo "== a host that sends nothing: 0 packets"
spcap="$RVS_TMP/silent.pcap"
r=$(api "{\"op\":\"capture_start\",\"capture\":{\"port\":\"server\",\"filter\":{\"host\":\"${RS_SPARE[1]}\"},\"file\":\"$spcap\"}}")
check "capture_start accepted" grep -q '"ok":true' <<<"$r"
check "20 of 20 requests succeeded meanwhile" [ "$(curls 20)" -eq 20 ]
check "still running" [ "$(status state)" = running ]

echo "== one capture at a time"
r2=$(api "{\"op\":\"capture_start\",\"capture\":{\"port\":\"client\",\"file\":\"$RVS_TMP/second.pcap\"}}")
echo "    $r2"
check "a second capture_start is refused in one line" refused "$r2"
check "the refusal says one is running" grep -q 'one is running already' <<<"$r2"
check "the second file was not created" [ ! -e "$RVS_TMP/second.pcap" ]
check "the first capture still runs, on its file" [ "$(status state) $(status file)" = "running $spcap" ]
r=$(api '{"op":"capture_stop"}')
check "capture_stop accepted" grep -q '"ok":true' <<<"$r"
check "stopped with 0 packets ($(status packets))" [ "$(status state) $(status reason) $(status packets)" = "finished stopped 0" ]
check "tcpdump reads the empty capture: 0 packets" [ "$(tcpdump -nr "$spcap" 2>/dev/null | wc -l)" -eq 0 ]
check "capture_stop with none running is refused" refused "$(api '{"op":"capture_stop"}')"

echo "== bad requests: one line each, nothing started, the daemon still serving"
for bad in \
    '"port":"nope","file":"/tmp/x.pcap"' \
    '"port":"server","filter":{"host":"198.18.1"},"file":"/tmp/x.pcap"' \
    '"port":"server","filter":{"proto":"sctp"},"file":"/tmp/x.pcap"' \
    '"port":"server","filter":{"port":70000},"file":"/tmp/x.pcap"' \
    '"port":"server","filter":{"vlan":1},"file":"/tmp/x.pcap"' \
    '"port":"server","direction":"sideways","file":"/tmp/x.pcap"' \
    '"port":"server","max_packets":0,"file":"/tmp/x.pcap"' \
    '"port":"server","snaplen":100000,"file":"/tmp/x.pcap"' \
    '"port":"server","file":"relative.pcap"' \
    "\"port\":\"server\",\"file\":\"$RVS_TMP/no/such/dir.pcap\""; do
    r=$(api "{\"op\":\"capture_start\",\"capture\":{$bad}}")
    check "refused: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["error"])' "$r")" refused "$r"
done
check "nothing started: the last capture stays finished" [ "$(status state) $(status file)" = "finished $spcap" ]
check "the daemon still serves requests" [ "$(curls 5)" -eq 5 ]

echo "== rvsadm --capture-start/--capture-status/--capture-stop"
A() { "$RVSADM" --socket "$RVS_SOCK" "$@"; }
apcap="$RVS_TMP/rvsadm.pcap"
A --capture-start server --direction rx --host "${RS[1]}" --cport 80 --proto tcp --count 20 --file "$apcap" > "$RVS_TMP/adm.out" 2>&1
echo "    $(cat "$RVS_TMP/adm.out")"
check "rvsadm --capture-start prints the running capture" grep -q "^capture running: port server rx -> $apcap: 0 packets" "$RVS_TMP/adm.out"
curls 30 >/dev/null
for _ in $(seq 50); do A --capture-status | grep -q '^capture finished' && break; sleep 0.1; done
st=$(A --capture-status)
echo "    $st"
check "rvsadm --capture-status: finished at 20 packets" grep -q "^capture finished (max_packets): port server rx -> $apcap: 20 packets" <<<"$st"
check "all 20 are from ${RS[1]}:80 to the LIP" [ "$(tcpdump -nr "$apcap" 2>/dev/null | grep -cF "IP ${RS[1]}.80 > $LIP.")" -eq 20 ]
err=$(A --capture-start server --file "$apcap" --host 198.18.1 2>&1); rc=$?
check "a bad --host is refused in one line, exit 2 ($rc: $err)" [ "$rc" -eq 2 -a "$(wc -l <<<"$err")" -eq 1 ]
err=$(A --capture-stop 2>&1); rc=$?
check "--capture-stop with none running fails in one line ($rc: $err)" [ "$rc" -eq 1 -a "$(wc -l <<<"$err")" -eq 1 ]

echo "== a capture still running when rvsd stops is written out"
xpcap="$RVS_TMP/at-exit.pcap"
r=$(api "{\"op\":\"capture_start\",\"capture\":{\"port\":\"server\",\"filter\":{\"port\":80},\"file\":\"$xpcap\"}}")
check "capture_start accepted" grep -q '"ok":true' <<<"$r"
check "10 of 10 requests succeeded" [ "$(curls 10)" -eq 10 ]
n=$(status packets)
rvsd_stop
got=$(tcpdump -nr "$xpcap" 2>"$RVS_TMP/xerr" | wc -l)
check "tcpdump reads the capture cut short by the stop: $got packets, whole (${n} written before)" \
    bash -c "[ $got -ge 10 ] && [ $got -ge $n ] && ! grep -qi truncated '$RVS_TMP/xerr'"
finish
