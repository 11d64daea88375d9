#!/usr/bin/env bash
# keepalived.conf end to end: rvsd takes its services from a keepalived.conf (the TOML's `keepalived`
# key) with three virtual servers on three VIPs sharing a DPVS local_address_group: one HTTP_GET with
# persistence_timeout and inhibit_on_failure, one TCP_CHECK without. Traffic flows through the first two;
# a killed real server is taken out by its check as keepalived would (weight 0 with
# inhibit_on_failure, removed without) and comes back when restarted. A third virtual server checks
# nginx over TLS with SSL_GET and has a sorry server (another TLS nginx): killing its one real server
# loses quorum and the sorry server serves until the real server is back. `rvsd --check --keepalived`
# refuses unsupported keywords with FILE:LINE and the keyword.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
if command -v cargo >/dev/null 2>&1; then
    (cd "$RVS_ROOT" && cargo build --release --quiet -p rvsd -p rvs-control) || { echo "build failed" >&2; exit 1; }
fi
topo_up
export RVSADM_SOCKET="$RVS_SOCK"
adm() { timeout 5 "$RVSADM" "$@"; }
C() { ip netns exec "$NS_C" "$@"; }
VIP2=198.18.0.101
VIP3=198.18.0.102

ka="$RVS_TMP/keepalived.conf"
cat > "$ka" <<KA
! rvs e2e: keepalived's grammar, DPVS's FNAT additions
global_defs {
    router_id rvs_e2e
}

local_address_group laddr_g1 {
    $LIP gs
}

virtual_server $VIP 80 {
    delay_loop 0.5
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    persistence_timeout 120
    inhibit_on_failure
    laddr_group_name laddr_g1

    real_server ${RS[0]} 8000 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 0.3
            retry 1
            delay_before_retry 0.2
        }
    }
    real_server ${RS[1]} 8000 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 0.3
            retry 1
            delay_before_retry 0.2
        }
    }
}

virtual_server $VIP2 80 {
    delay_loop 0.5
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1

    real_server ${RS[2]} 8000 {
        TCP_CHECK {
            connect_timeout 0.3
            retry 1
            delay_before_retry 0.2
        }
    }
    real_server ${RS_SPARE[0]} 8000 {
        TCP_CHECK {
            connect_timeout 0.3
            retry 1
            delay_before_retry 0.2
        }
    }
}

virtual_server $VIP3 443 {
    delay_loop 0.5
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    quorum 1
    sorry_server ${RS_SPARE[1]} 9443

    real_server ${RS_SPARE[1]} 8443 {
        SSL_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 0.3
            retry 1
            delay_before_retry 0.2
        }
    }
}
KA
cfg="$RVS_TMP/rvsd.toml"
write_config "$cfg" < /dev/null
sed -i "1i keepalived = \"$ka\"" "$cfg"

declare -A HS=()
hs() { # hs ADDR: a python HTTP server on ADDR:8000 answering rs=ADDR
    mkdir -p "$RVS_TMP/hs-$1"; echo "rs=$1" > "$RVS_TMP/hs-$1/index.html"
    ip netns exec "$NS_S" timeout 300 python3 -m http.server --bind "$1" --directory "$RVS_TMP/hs-$1" 8000 >/dev/null 2>&1 &
    HS[$1]=$!; _bg_pids+=($!)
}
for a in "${RS[@]}" "${RS_SPARE[0]}"; do hs "$a"; done

# TLS: a self-signed certificate (SSL_GET verifies none, as keepalived) and one single-process nginx
# per NAME: nginx_tls NAME ADDR PORT TEXT answers every GET on https://ADDR:PORT with TEXT.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=rvs-e2e \
    -keyout "$RVS_TMP/tls.key" -out "$RVS_TMP/tls.crt" 2>/dev/null || { echo "openssl failed" >&2; exit 1; }
declare -A NGX=()
nginx_tls() {
    local d="$RVS_TMP/ngx-$1"
    mkdir -p "$d"/{body,proxy,fastcgi,uwsgi,scgi}
    cat > "$d/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 256;
}
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    default_type text/plain;
    server {
        listen $2:$3 ssl;
        ssl_certificate $RVS_TMP/tls.crt;
        ssl_certificate_key $RVS_TMP/tls.key;
        location / {
            return 200 "$4\n";
        }
    }
}
CONF
    ip netns exec "$NS_S" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" > "$d/stdout" 2>&1 &
    NGX[$1]=$!; _bg_pids+=($!)
    for _ in $(seq 1 50); do
        ip netns exec "$NS_S" curl -sk -m 1 -o /dev/null "https://$2:$3/" && return 0
        sleep 0.1
    done
    echo "nginx $1 does not answer on https://$2:$3/" >&2; cat "$d/error.log" "$d/stdout" >&2
    return 1
}
nginx_tls real "${RS_SPARE[1]}" 8443 "tls=real" || { fail "nginx with TLS did not start"; finish; exit 1; }
nginx_tls sorry "${RS_SPARE[1]}" 9443 "tls=sorry" || { fail "nginx with TLS did not start"; finish; exit 1; }
sleep 1

echo "== rvsd --check with the keepalived.conf"
out=$(ip netns exec "$NS_G" "$RVSD" -c "$cfg" --check 2>&1); rc=$?
check "config ok (rc=$rc)" bash -c "[ $rc -eq 0 ] && grep -q '^config ok' <<<\"\$0\"" "$out"
check "global_defs reported as not used, with its line" grep -q "keepalived.conf:2: global_defs: not used by rvsd" <<<"$out"

rvsd_start "$cfg" || { fail "rvsd did not start"; finish; exit 1; }
adm -Ln | tee "$RVS_TMP/ln" | sed 's/^/    /'
check "HTTP_GET service: rr, persistent 120" grep -qE "^TCP  $VIP:80 rr persistent 120\$" "$RVS_TMP/ln"
check "TCP_CHECK service: rr" grep -qE "^TCP  $VIP2:80 rr\$" "$RVS_TMP/ln"
check "SSL_GET service: rr" grep -qE "^TCP  $VIP3:443 rr\$" "$RVS_TMP/ln"
check "five FullNat real servers, no sorry server while quorum holds" bash -c "[ \$(grep -c FullNat '$RVS_TMP/ln') -eq 5 ] && ! grep -q ':9443' '$RVS_TMP/ln'"
adm -S | tee "$RVS_TMP/S" | sed 's/^/    /'
check "-S: --inhibit-on-failure on the HTTP_GET service only" bash -c "grep -q -- '-A -t $VIP:80 -s rr -p 120 --inhibit-on-failure' '$RVS_TMP/S' && grep -q -- '-A -t $VIP2:80 -s rr\$' '$RVS_TMP/S'"
check "local_address_group: $LIP on all three" [ "$(adm --get-laddr | grep -c "$LIP")" -eq 3 ]

health() { api '{"op":"list_services"}' | grep -o '"health":"[a-z]*"' | sort | uniq -c | tr -s ' ' | paste -sd' '; }
for _ in $(seq 1 40); do [ "$(health)" = " 5 \"health\":\"up\"" ] && break; sleep 0.1; done
check "all five real servers up ($(health))" [ "$(health)" = ' 5 "health":"up"' ]

echo "== traffic through both VIPs"
C bash -c "for i in \$(seq 6); do curl -s -m 3 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/v1"
C bash -c "for i in \$(seq 6); do curl -s -m 3 --noproxy '*' http://$VIP2/ || echo FAILED; done" > "$RVS_TMP/v2"
sort "$RVS_TMP/v1" | uniq -c | sed 's/^/    VIP1 /'; sort "$RVS_TMP/v2" | uniq -c | sed 's/^/    VIP2 /'
check "VIP1: 6 answers, one real server (persistence_timeout)" bash -c "[ \$(grep -c '^rs=' '$RVS_TMP/v1') -eq 6 ] && [ \$(sort -u '$RVS_TMP/v1' | wc -l) -eq 1 ]"
check "VIP2: 6 answers over both real servers (rr)" bash -c "[ \$(grep -c '^rs=' '$RVS_TMP/v2') -eq 6 ] && [ \$(grep -cx 'rs=${RS[2]}' '$RVS_TMP/v2') -eq 3 ]"
P=$(head -1 "$RVS_TMP/v1" | sed 's/^rs=//')
if [ "$P" = "${RS[0]}" ]; then O=${RS[1]}; else O=${RS[0]}; fi

# down_within MS ADDR: the API reports ADDR's health down within MS milliseconds
down_within() {
    local t0; t0=$(date +%s%N)
    while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt "$1" ]; do
        api '{"op":"list_services"}' | python3 -c '
import json, sys
r = json.load(sys.stdin)
down = [x["addr"] for s in r["services"] for x in s["reals"] if x.get("health") == "down"]
sys.exit(0 if any(a.startswith(sys.argv[1] + ":") for a in down) else 1)' "$2" && return 0
        sleep 0.05
    done
    return 1
}

echo "== HTTP_GET with inhibit_on_failure: the killed server stays at weight 0"
kill "${HS[$O]}"
check "HTTP_GET takes $O down within 2 s (delay_loop 0.5 + retry 1 after 0.2)" down_within 2000 "$O"
adm -Ln -t "$VIP:80" | tee "$RVS_TMP/ln1" | sed 's/^/    /'
check "-Ln keeps $O at weight 0" grep -qE -- "-> $O:8000 +FullNat 0 " "$RVS_TMP/ln1"
check "-Ln keeps $P at weight 1" grep -qE -- "-> $P:8000 +FullNat 1 " "$RVS_TMP/ln1"
C bash -c "for i in \$(seq 10); do curl -s -m 2 --noproxy '*' http://$VIP/ || echo FAILED; done" > "$RVS_TMP/v1b"
check "10 of 10 requests still answered by $P" [ "$(grep -cx "rs=$P" "$RVS_TMP/v1b")" -eq 10 ]

echo "== TCP_CHECK without inhibit_on_failure: the killed server is removed"
kill "${HS[${RS_SPARE[0]}]}"
check "TCP_CHECK takes ${RS_SPARE[0]} down within 2 s" down_within 2000 "${RS_SPARE[0]}"
adm -Ln -t "$VIP2:80" | tee "$RVS_TMP/ln2" | sed 's/^/    /'
check "-Ln no longer lists ${RS_SPARE[0]}, still ${RS[2]}" bash -c "! grep -q -- '-> ${RS_SPARE[0]}:8000' '$RVS_TMP/ln2' && grep -q -- '-> ${RS[2]}:8000' '$RVS_TMP/ln2'"
C bash -c "for i in \$(seq 10); do curl -s -m 2 --noproxy '*' http://$VIP2/ || echo FAILED; done" > "$RVS_TMP/v2b"
check "10 of 10 requests answered by ${RS[2]}" [ "$(grep -cx "rs=${RS[2]}" "$RVS_TMP/v2b")" -eq 10 ]
hs "${RS_SPARE[0]}"
up=
for _ in $(seq 1 40); do
    if adm -Ln -t "$VIP2:80" | grep -q -- "-> ${RS_SPARE[0]}:8000"; then up=1; break; fi
    sleep 0.1
done
check "restarted ${RS_SPARE[0]} is back after one successful check" [ -n "$up" ]

echo "== SSL_GET against nginx over TLS; quorum lost: the sorry server serves"
tls3() { C bash -c "for i in \$(seq 4); do curl -sk -m 3 --noproxy '*' https://$VIP3/ || echo FAILED; done"; }
tls3 > "$RVS_TMP/v3"
check "VIP3: 4 of 4 answers over TLS from the real server ($(sort -u "$RVS_TMP/v3" | paste -sd' '))" [ "$(grep -cx 'tls=real' "$RVS_TMP/v3")" -eq 4 ]
kill "${NGX[real]}"
check "SSL_GET takes ${RS_SPARE[1]}:8443 down within 2 s" down_within 2000 "${RS_SPARE[1]}"
adm -Ln -t "$VIP3:443" | tee "$RVS_TMP/ln3" | sed 's/^/    /'
check "-Ln: the sorry server at weight 1, the real server gone" bash -c "grep -qE -- '-> ${RS_SPARE[1]}:9443 +FullNat 1 ' '$RVS_TMP/ln3' && ! grep -q ':8443' '$RVS_TMP/ln3'"
check "rvsd logged the lost quorum" grep -q "lost quorum" "$RVS_TMP/rvsd.err"
tls3 > "$RVS_TMP/v3b"
check "VIP3: 4 of 4 answers from the sorry server ($(sort -u "$RVS_TMP/v3b" | paste -sd' '))" [ "$(grep -cx 'tls=sorry' "$RVS_TMP/v3b")" -eq 4 ]
adm -S -n > "$RVS_TMP/S3"
check "-S saves the real server, not the sorry server" bash -c "grep -q -- '-r ${RS_SPARE[1]}:8443' '$RVS_TMP/S3' && ! grep -q ':9443' '$RVS_TMP/S3'"
nginx_tls real "${RS_SPARE[1]}" 8443 "tls=real" || fail "nginx with TLS did not restart"
back=
for _ in $(seq 1 40); do
    adm -Ln -t "$VIP3:443" > "$RVS_TMP/ln3b"
    if grep -q -- "-> ${RS_SPARE[1]}:8443" "$RVS_TMP/ln3b" && ! grep -q ':9443' "$RVS_TMP/ln3b"; then back=1; break; fi
    sleep 0.1
done
check "real server back: quorum regained, the sorry server out" [ -n "$back" ]
check "rvsd logged the regained quorum" grep -q "gained quorum" "$RVS_TMP/rvsd.err"
tls3 > "$RVS_TMP/v3c"
check "VIP3: 4 of 4 answers from the real server again" [ "$(grep -cx 'tls=real' "$RVS_TMP/v3c")" -eq 4 ]
rvsd_stop

echo "== rvsd --check --keepalived: unsupported keywords, FILE:LINE and the keyword"
grep -v '^keepalived = ' "$cfg" > "$RVS_TMP/plain.toml"
refuse() { # refuse WANT SED-EXPR: the conf edited by SED-EXPR is refused with WANT, one line
    local bad="$RVS_TMP/bad.conf" out rc
    sed "$2" "$ka" > "$bad"
    out=$(ip netns exec "$NS_G" "$RVSD" -c "$RVS_TMP/plain.toml" --keepalived "$bad" --check 2>&1); rc=$?
    if [ $rc -ne 0 ] && [ "$(grep -c . <<<"$out")" -eq 1 ] && grep -qF "$1" <<<"$out"; then ok "$out"; else fail "want '$1' (rc=$rc): $out"; fi
}
n=$(grep -n 'lb_kind FNAT' "$ka" | head -1 | cut -d: -f1)
refuse "bad.conf:$n: lb_kind TUN type gue: rvs encapsulates ipip only" "${n}s/FNAT/TUN type gue port 6080/"
r=$(grep -n 'real_server' "$ka" | head -1 | cut -d: -f1)
refuse "bad.conf:$r: real_server port 8000: DR cannot change the port (the virtual_server's is 80)" "${n}s/FNAT/DR/"
refuse "bad.conf:$((n + 1)): quorum_up: not supported by rvs: rvs runs no notify scripts" "${n}a\\    quorum_up /usr/local/bin/up.sh"
refuse "bad.conf:$((n + 1)): sorry_server_inhibit: needs a sorry_server line before it" "${n}a\\    sorry_server_inhibit"
m=$(grep -n 'HTTP_GET' "$ka" | head -1 | cut -d: -f1)
refuse "bad.conf:$m: MISC_CHECK: not supported by rvs: rvs runs TCP_CHECK, HTTP_GET and SSL_GET" "${m}s/HTTP_GET/MISC_CHECK/"
refuse "bad.conf:$((n + 1)): no_such_keyword: unknown or unsupported keyword in virtual_server" "${n}a\\    no_such_keyword 1"
refuse "bad.conf:$(grep -n "^virtual_server $VIP3" "$ka" | cut -d: -f1): virtual_server: block opened here is not closed" '$d'

finish
