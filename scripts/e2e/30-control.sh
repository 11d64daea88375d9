#!/usr/bin/env bash
# Control plane end to end: rvsadm against a live rvsd. Churn under wrk load (50 rounds of add,
# re-weight, weight 0, delete) with zero failed requests and new connections following the new
# weights; -S | -R round trip; bad input refused with one line and nothing changed; health checks
# taking a killed server out within interval x fall and back after restart (removed, keepalived's
# default, or at weight 0 with inhibit_on_failure); DPVS's set-up order (-A, -a, --add-laddr) with
# new connections dropped as drop.no_laddr until the local address arrives; ipvsadm 1.31 behaviours
# (error texts and exit statuses, -E replacing the service, bare -p = 360, --set / -L --timeout,
# persistence templates in -Lnc and -L --persistent-conn, sync daemon refusals); hostile API clients; the
# socket refusing a non-root user.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
. "$RVS_ROOT/scripts/lib/nginx_rs.sh"
if command -v cargo >/dev/null 2>&1; then
    # The release binaries this suite drives (a no-op when scripts/test.sh has just built them).
    (cd "$RVS_ROOT" && cargo build --release --quiet -p rvsd -p rvs-control) || { echo "build failed" >&2; exit 1; }
fi
topo_up
export RVSADM_SOCKET="$RVS_SOCK"
adm() { "$RVSADM" "$@"; }
C() { ip netns exec "$NS_C" "$@"; }

cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" <<CFG

[conn]
max_per_worker = 65536

[[services]]
proto = "tcp"
vip = "$VIP:80"
sched = "wrr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:80" }, { addr = "${RS[1]}:80" }, { addr = "${RS[2]}:80" }]
CFG

NGINX_RS_BIG_MB=0 nginx_rs_start "$NS_S" "${RS[@]}" "${RS_SPARE[@]}" || { fail "nginx did not start"; finish; exit 1; }
rvsd_start "$cfg" || exit 1
V="$VIP:80"

echo "== rvsadm -Ln"
adm -Ln | tee "$RVS_TMP/ln"
check "header line" grep -q "^IP Virtual Server version" "$RVS_TMP/ln"
check "service line" grep -qE "^TCP  $V +wrr" "$RVS_TMP/ln"
check "three FullNat real servers" [ "$(grep -c "FullNat" "$RVS_TMP/ln")" -eq 3 ]

echo "== bad input: one line, non-zero exit, nothing changed"
adm -S > "$RVS_TMP/before"
bad() {
    local out rc
    out=$(adm "$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ]; then ok "rvsadm $*: $out"; else fail "rvsadm $* (rc=$rc): $out"; fi
}
bad -a -t "$VIP:81" -r "${RS[0]}:80" -b          # unknown service
bad -a -t "$V" -r "${RS[0]}:80" -b               # duplicate real server
bad -a -t "$V" -r 198.18.1.300:80 -b             # bad address
bad -a -t "$V" -r "${RS[0]}:0" -b                # bad port
bad -a -t "$V" -r "${RS_SPARE[0]}:80" -b -w 70000 # weight out of range
bad -E -t "$V" -s fastest                        # unknown scheduler
bad -d -t "$V" -r 198.18.1.99:80                 # no such real
adm -S > "$RVS_TMP/after"
check "state unchanged after bad input" cmp -s "$RVS_TMP/before" "$RVS_TMP/after"

echo "== -S | -C | -R restores an identical configuration"
adm -A -u "$VIP:53" -s rr && adm --add-laddr -u "$VIP:53" -z "$LIP" && adm -a -u "$VIP:53" -r "${RS[0]}:53" -b -w 2
adm -E -t "$V" -p 300
adm -S > "$RVS_TMP/saved"
sed 's/^/    /' "$RVS_TMP/saved"
adm -C
check "cleared" [ "$(adm -Ln | grep -c '^TCP\|^UDP')" -eq 0 ]
adm -R < "$RVS_TMP/saved"
adm -S > "$RVS_TMP/restored"
check "restored configuration is identical" cmp -s "$RVS_TMP/saved" "$RVS_TMP/restored"
adm -E -t "$V" -s wrr
adm -D -u "$VIP:53"

echo "== DPVS order: -A, -a, then --add-laddr; drop.no_laddr until the local address arrives"
D="$VIP:8080"
check "-A accepted" adm -A -t "$D" -s rr
check "-a before any local address accepted" adm -a -t "$D" -r "${RS[0]}:80" -b
adm -Ln -t "$D" | sed 's/^/    /'
adm --get-laddr -t "$D" > "$RVS_TMP/gl"
check "--get-laddr shows no local address" grep -qE "^$D +0 *\$" "$RVS_TMP/gl"
nl0=$(counter drop.no_laddr)
C curl -s -m 1 --noproxy '*' "http://$D/" > "$RVS_TMP/nl" 2>&1
nl1=$(counter drop.no_laddr)
check "no traffic before --add-laddr; drop.no_laddr counted ($nl0 -> $nl1)" bash -c "[ $nl1 -gt $nl0 ] && ! grep -q rs= '$RVS_TMP/nl'"
check "--add-laddr accepted" adm --add-laddr -t "$D" -z "$LIP"
out=$(C curl -s -m 3 --noproxy '*' "http://$D/")
check "traffic flows after --add-laddr ($out)" [ "$out" = "rs=${RS[0]}" ]
adm -D -t "$D"

echo "== ipvsadm 1.31: error texts and exit statuses"
exact() { # exact RC TEXT ARGS...: stderr is exactly TEXT, the exit status RC
    local want_rc=$1 want=$2 out rc; shift 2
    out=$(adm "$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want" ]; then ok "rvsadm $*: $out (exit $rc)"; else fail "rvsadm $*: '$out' exit $rc, want '$want' exit $want_rc"; fi
}
exact 255 "No such service" -D -t "$VIP:81"
exact 255 "No such service" -E -t "$VIP:81" -s rr
exact 255 "Service already exists" -A -t "$V"
exact 255 "Service not defined" -a -t "$VIP:81" -r "${RS[0]}:80" -b
exact 255 "Destination already exists" -a -t "$V" -r "${RS[0]}:80" -b
exact 255 "No such destination" -d -t "$V" -r 198.18.1.99:80
exact 1 "No such service" -Ln -t "$VIP:81"
exact 2 "invalid timeout value \`0' specified" -E -t "$V" -p 0
# Connection sync (84-sync.sh runs it): with no [sync] interface or peer configured, a master
# cannot start, and says why; -L --daemon lists nothing, as ipvsadm does with no daemon running.
sd=$(adm --start-daemon master 2>&1); rc=$?
check "--start-daemon without an interface: refused, exit 255 ($sd)" bash -c "[ $rc -eq 255 ] && grep -q 'sync.interface' <<<\"\$0\"" "$sd"
sd=$(adm -L --daemon 2>&1); rc=$?
check "-L --daemon with no daemon: empty, exit 0" bash -c "[ $rc -eq 0 ] && [ -z \"\$0\" ]" "$sd"

echo "== -E replaces the service; bare -p is 360 s; templates in -Lnc and --persistent-conn"
adm -E -t "$V" -p
check "-E -p: wlc (no -s), persistent 360" bash -c "\"$RVSADM\" -Ln | grep -qE '^TCP  $V wlc persistent 360\$'"
for _ in 1 2 3; do C curl -s -m 3 --noproxy '*' "http://$VIP/" >> "$RVS_TMP/pers"; done
check "persistence: three requests, one real server" [ "$(sort -u "$RVS_TMP/pers" | wc -l)" -eq 1 ]
adm -Lnc | tee "$RVS_TMP/tpl" | sed 's/^/    /'
check "-Lnc lists the template (NONE, client port 0)" grep -qE "^TCP [0-9]{2}:[0-9]{2} +NONE +$CLIENT:0 +$V +$(sort -u "$RVS_TMP/pers" | sed 's/rs=//'):80" "$RVS_TMP/tpl"
adm -Ln --persistent-conn | tee "$RVS_TMP/pc" | sed 's/^/    /'
check "--persistent-conn counts it" grep -qE -- "-> $(sort -u "$RVS_TMP/pers" | sed 's/rs=//'):80 +[0-9]+ +1 " "$RVS_TMP/pc"
adm -E -t "$V" -s wrr
check "-E -s wrr: persistence off" bash -c "\"$RVSADM\" -Ln | grep -qE '^TCP  $V wrr\$'"

echo "== --set and -L --timeout; -S | -R carries them"
check "--set 600 60 200" adm --set 600 60 200
check "-L --timeout" [ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 600 60 200" ]
adm -S > "$RVS_TMP/saved-t"
check "-S starts with --set" [ "$(head -1 "$RVS_TMP/saved-t")" = "--set 600 60 200" ]
adm --set 900 120 300
adm -R < "$RVS_TMP/saved-t"
check "-R restores the timeouts" [ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 600 60 200" ]
adm --set 900 120 300

echo "== churn under load: 50 rounds of add / re-weight / weight 0 / delete during wrk"
C timeout 120 wrk -t2 -c64 -d25s "http://$VIP/" > "$RVS_TMP/wrk" 2>&1 &
wrk_pid=$!
sleep 1
churn_fail=0
for i in $(seq 1 50); do
    spare=${RS_SPARE[$((i % 2))]}
    adm -a -t "$V" -r "$spare:80" -b -w $((i % 5 + 1)) || churn_fail=$((churn_fail + 1))
    adm -e -t "$V" -r "${RS[1]}:80" -b -w $((i % 4 + 1)) || churn_fail=$((churn_fail + 1))
    adm -e -t "$V" -r "$spare:80" -b -w 0 || churn_fail=$((churn_fail + 1))
    adm -d -t "$V" -r "$spare:80" || churn_fail=$((churn_fail + 1))
done
check "200 pool changes accepted during load ($churn_fail refused)" [ "$churn_fail" -eq 0 ]
wait "$wrk_pid"
sed 's/^/    /' "$RVS_TMP/wrk"
errs=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$RVS_TMP/wrk")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$RVS_TMP/wrk")
check "wrk completed ($(awk '/^Requests\/sec:/ {print $2}' "$RVS_TMP/wrk") req/s)" grep -q "^Requests/sec:" "$RVS_TMP/wrk"
check "0 failed requests during churn (socket errors ${errs:-0}, non-2xx ${non2xx:-0})" [ "${errs:-0}" -eq 0 -a "${non2xx:-0}" -eq 0 ]

echo "== new connections follow the new weights: .11 w1, .12 w3, .13 w0"
adm -e -t "$V" -r "${RS[0]}:80" -b -w 1
adm -e -t "$V" -r "${RS[1]}:80" -b -w 3
adm -e -t "$V" -r "${RS[2]}:80" -b -w 0
C bash -c "for i in \$(seq 200); do curl -s -m 3 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/split"
sort "$RVS_TMP/split" | uniq -c | sed 's/^/    /'
check "50 to weight 1" [ "$(grep -cx "rs=${RS[0]}" "$RVS_TMP/split")" -eq 50 ]
check "150 to weight 3" [ "$(grep -cx "rs=${RS[1]}" "$RVS_TMP/split")" -eq 150 ]
check "none to weight 0" [ "$(grep -cx "rs=${RS[2]}" "$RVS_TMP/split")" -eq 0 ]

echo "== health checks: tcp, interval 300 ms, fall 2, rise 2"
adm -C
cat > "$RVS_TMP/hc.toml" <<TOML
[[services]]
proto = "tcp"
vip = "$VIP:8000"
sched = "rr"
laddrs = ["$LIP"]
reals = [{ addr = "${RS[0]}:8000" }, { addr = "${RS[1]}:8000" }]
check = { kind = "http", path = "/", expect_status = 200, interval_ms = 300, timeout_ms = 200, rise = 2, fall = 2 }
TOML
hs() { # hs ADDR: a python HTTP server on ADDR:8000 answering rs=ADDR
    mkdir -p "$RVS_TMP/hs-$1"; echo "rs=$1" > "$RVS_TMP/hs-$1/index.html"
    ip netns exec "$NS_S" python3 -m http.server --bind "$1" --directory "$RVS_TMP/hs-$1" 8000 >/dev/null 2>&1 &
    echo $!
}
h0=$(hs "${RS[0]}"); h1=$(hs "${RS[1]}")
_bg_pids+=("$h0" "$h1")
sleep 1
api "$(python3 -c 'import json,sys; print(json.dumps({"op":"restore","config":open(sys.argv[1]).read()}))' "$RVS_TMP/hc.toml")" >/dev/null
sleep 1.5
check "both up" [ "$(api '{"op":"list_services"}' | grep -o '"health":"up"' | wc -l)" -eq 2 ]
kill "$h1"; t0=$(date +%s%N)
down_ms=
for _ in $(seq 1 60); do
    if api '{"op":"list_services"}' | grep -q '"health":"down"'; then down_ms=$(( ($(date +%s%N) - t0) / 1000000 )); break; fi
    sleep 0.05
done
check "killed server taken out in ${down_ms:-never} ms (interval x fall = 600 ms, + one interval of phase)" [ -n "$down_ms" -a "${down_ms:-9999}" -le 1500 ]
adm -Ln | tee "$RVS_TMP/hc-ln" | sed 's/^/    /'
check "rvsadm -Ln no longer lists it (keepalived removes a failed server)" bash -c "! grep -q -- '-> ${RS[1]}:8000' '$RVS_TMP/hc-ln' && grep -q -- '-> ${RS[0]}:8000' '$RVS_TMP/hc-ln'"
check "rvsadm -S keeps it with its configured weight" bash -c "\"$RVSADM\" -S | grep -q -- '-r ${RS[1]}:8000 -b -w 1'"
adm -E -t "$VIP:8000" -s rr --inhibit-on-failure
adm -Ln | tee "$RVS_TMP/hc-ln" | sed 's/^/    /'
check "with --inhibit-on-failure -Ln shows it at weight 0" grep -qE -- "-> ${RS[1]}:8000 +FullNat 0 " "$RVS_TMP/hc-ln"
check "-S saves --inhibit-on-failure" bash -c "\"$RVSADM\" -S | grep -q -- '-A -t $VIP:8000 -s rr --inhibit-on-failure'"
C bash -c "for i in \$(seq 30); do curl -s -m 2 --noproxy '*' http://$VIP:8000/ || echo FAILED; done" > "$RVS_TMP/hc"
check "30 of 30 new requests succeed after it is out" [ "$(grep -cx "rs=${RS[0]}" "$RVS_TMP/hc")" -eq 30 ]
h1=$(hs "${RS[1]}"); _bg_pids+=("$h1")
up=
for _ in $(seq 1 60); do
    if [ "$(api '{"op":"list_services"}' | grep -o '"health":"up"' | wc -l)" -eq 2 ]; then up=1; break; fi
    sleep 0.1
done
check "restarted server comes back" [ -n "$up" ]
C bash -c "for i in \$(seq 20); do curl -s -m 2 --noproxy '*' http://$VIP:8000/; done" | sort | uniq -c | sed 's/^/    /'

echo "== hostile API clients"
python3 "$RVS_ROOT/scripts/lib/hostile_api.py" "$RVS_SOCK" > "$RVS_TMP/hostile" 2>&1
sed 's/^/  /' "$RVS_TMP/hostile" | grep -v "passed, .* failed"
check "hostile clients handled, daemon serving" grep -q "0 failed" "$RVS_TMP/hostile"

echo "== the socket refuses a non-root user"
chmod o+x "$RVS_TMP"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$RVSADM" --socket "$RVS_SOCK" -Ln 2>&1); rc=$?
check "uid 65534 refused (rc=$rc): $out" bash -c "[ $rc -ne 0 ] && grep -qi 'permission denied' <<<\"\$0\"" "$out"
check "root still served" adm -Ln >/dev/null

finish
