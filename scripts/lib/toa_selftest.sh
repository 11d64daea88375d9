#!/usr/bin/env bash
# Self-test of toa_server.py without a gateway: two throwaway namespaces joined by a veth
# (198.18.9.1/24 client, 198.18.9.2/24 server). A stdlib raw-socket client (toa_rawclient.py)
# completes handshakes whose ACK carries TOA (kind 254), as a FULLNAT gateway would; the client
# kernel's RSTs for that unknown connection are dropped by an nft rule. Needs root.
# Exits non-zero on any failure; deletes everything it created (trap), also on Ctrl-C.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ID=$(( $$ % 100000 ))
NA="toat${ID}a"
NB="toat${ID}b"
CA=198.18.9.1
SB=198.18.9.2
TMP=$(mktemp -d "/tmp/toat-${ID}.XXXX")
SRV_PID=

cleanup() {
    local rc=$?
    set +e
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    for ns in "$NA" "$NB"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
            ip netns del "$ns"
        fi
    done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

_pass=0 _fail=0
ok() { _pass=$((_pass + 1)); printf '  ok   %s\n' "$*"; }
fail() { _fail=$((_fail + 1)); printf '  FAIL %s\n' "$*"; }
# expect WHAT GOT PATTERN (an extended regexp)
expect() { if [[ "$2" =~ $3 ]]; then ok "$1"; else fail "$1 (got: ${2:-<empty>})"; fi; }
in_a() { timeout 20 ip netns exec "$NA" "$@"; }

set -e
ip netns add "$NA"
ip netns add "$NB"
ip link add va netns "$NA" type veth peer name vb netns "$NB"
for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
ip netns exec "$NA" ethtool -K va tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$NB" ethtool -K vb tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$NA" sysctl -qw net.ipv6.conf.va.disable_ipv6=1
ip netns exec "$NB" sysctl -qw net.ipv6.conf.vb.disable_ipv6=1
ip -n "$NA" addr add "$CA/24" dev va
ip -n "$NB" addr add "$SB/24" dev vb
ip -n "$NA" link set va up
ip -n "$NB" link set vb up
# The client kernel would reset the raw client's connections: drop its outgoing RSTs to the server.
ip netns exec "$NA" nft -f - <<NFT
table ip toat {
    chain out {
        type filter hook output priority filter; policy accept;
        ip daddr $SB tcp dport 80 tcp flags rst drop
    }
}
NFT
set +e

ip netns exec "$NB" python3 "$HERE/toa_server.py" --iface vb --addr "$SB" --port 80 \
    > "$TMP/server.out" 2> "$TMP/server.err" &
SRV_PID=$!
up=
for _ in $(seq 1 50); do
    if in_a curl -s -m 1 -o /dev/null "http://$SB/"; then up=1; break; fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$up" ]; then echo "toa_server did not come up:"; cat "$TMP/server.err"; exit 1; fi

echo "== plain connection (no TOA)"
t0=$(date +%s%N)
body=$(in_a curl -s -m 3 "http://$SB/")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "curl: toa=none, peer is the client" "$body" "^rs=$SB peer=$CA:[0-9]+ toa=none$"
if [ "$ms" -lt 150 ]; then ok "answered in ${ms} ms (no full 200 ms wait)"; else fail "took ${ms} ms"; fi

echo "== handshake ACK with TOA"
body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41001 --isn 1000 \
    --toa 198.18.0.77:4321 2> "$TMP/client.err")
expect "raw client: toa=198.18.0.77:4321" "$body" "^rs=$SB peer=$CA:41001 toa=198\.18\.0\.77:4321$"

body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41002 \
    --toa 198.18.1.250:65535 --nops 3 2>> "$TMP/client.err")
expect "TOA after NOPs, port 65535" "$body" "^rs=$SB peer=$CA:41002 toa=198\.18\.1\.250:65535$"

body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41003 \
    --toa 198.18.0.78:80 --toa-len 6 2>> "$TMP/client.err")
expect "kind 254 with length 6 is not TOA" "$body" "^rs=$SB peer=$CA:41003 toa=none$"

body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41004 \
    2>> "$TMP/client.err")
expect "raw client without TOA" "$body" "^rs=$SB peer=$CA:41004 toa=none$"

body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41005 \
    --toa 198.18.0.80:80 --bad-csum-ack 2>> "$TMP/client.err")
expect "TOA in an ACK with a bad checksum (kernel drops it) is not recorded" "$body" \
    "^rs=$SB peer=$CA:41005 toa=none$"

echo "== peer tuple reused: a new SYN forgets the old TOA"
body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41001 --isn 5000000 \
    2>> "$TMP/client.err")
expect "same peer port, no TOA now" "$body" "^rs=$SB peer=$CA:41001 toa=none$"
body=$(in_a python3 "$HERE/toa_rawclient.py" --src "$CA" --dst "$SB" --sport 41001 --isn 9000000 \
    --toa 198.18.0.79:1234 2>> "$TMP/client.err")
expect "same peer port, new TOA" "$body" "^rs=$SB peer=$CA:41001 toa=198\.18\.0\.79:1234$"

echo "== GET /toa"
json=$(in_a curl -s -m 3 "http://$SB/toa")
echo "$json" > "$TMP/toa.json"
if python3 - "$TMP/toa.json" "$CA" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["peer"]: x["client"] for x in d["mappings"]}
ca = sys.argv[2]
assert m.get(ca + ":41001") == "198.18.0.79:1234", m
assert m.get(ca + ":41002") == "198.18.1.250:65535", m
assert all(ca + ":4100%d" % i not in m for i in (3, 4, 5)), m
assert d["stats"].get("toa_bad_csum", 0) >= 1, d["stats"]
PY
then ok "/toa lists the mappings"; else fail "/toa: $json"; fi

echo "== malformed frames"
in_a python3 "$HERE/toa_rawclient.py" --malformed --iface va --src "$CA" --dst "$SB" --fuzz 3000 \
    2>> "$TMP/client.err" || fail "sending malformed frames"
sleep 0.5
if kill -0 "$SRV_PID" 2>/dev/null; then ok "server survived"; else fail "server died"; cat "$TMP/server.err"; fi
json=$(in_a curl -s -m 3 "http://$SB/toa")
echo "$json" > "$TMP/toa.json"
if python3 - "$TMP/toa.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["stats"].get("parse_error", 0) == 0, d["stats"]
assert not any(x["client"].startswith("198.18.0.66:") for x in d["mappings"]), d["mappings"]
PY
then ok "no parser exceptions, no mapping from the malformed set"; else fail "after malformed: $json"; fi
body=$(in_a curl -s -m 3 "http://$SB/")
expect "still serving" "$body" "^rs=$SB peer=$CA:[0-9]+ toa=none$"

echo "== parser fuzz in-process"
if python3 - "$HERE" <<'PY'
import random, socket, struct, sys
sys.path.insert(0, sys.argv[1])
import toa_server as t
import toa_rawclient as c
src, dst = "198.18.9.1", "198.18.9.2"
eth = b"\xff" * 6 + b"\x02" + b"\0" * 5 + b"\x08\x00"
good = eth + c.ipv4_packet(src, dst, c.tcp_segment(src, dst, 5555, 80, 1, 1, c.ACK, c.toa_opt("198.18.0.5", 7)))
r = t.parse_frame(good, socket.inet_aton(dst), 80)
assert r == ((src, 5555), False, True, 0, ("198.18.0.5", 7), False), r
bad = bytearray(good); bad[14 + 20 + 16] ^= 1  # the TCP checksum field
assert t.parse_frame(bytes(bad), None, 80)[4:] == (None, True)
assert t.parse_frame(bytes(bad), None, 80, verify_csum=False)[4] == ("198.18.0.5", 7)
assert t.parse_frame(good, socket.inet_aton("198.18.9.3"), 80) is None
assert t.parse_frame(good, None, 81) is None
vlan = good[:12] + b"\x81\x00\x00\x07" + good[12:]
assert t.parse_frame(vlan, None, 80)[4] == ("198.18.0.5", 7)
# IPv6 (DPVS's 20-byte IPv6 TOA) in an IPv6 segment, and in an IPv4 one (NAT64).
def seg6(src6, dst6, opt):
    s6, d6 = socket.inet_pton(socket.AF_INET6, src6), socket.inet_pton(socket.AF_INET6, dst6)
    tcp = bytearray(struct.pack("!HHIIBBHHH", 5555, 80, 1, 1, (20 + len(opt)) // 4 << 4, 0x10, 1000, 0, 0) + opt)
    struct.pack_into("!H", tcp, 16, t.csum16(s6 + d6 + struct.pack("!IxxxB", len(tcp), 6) + bytes(tcp)))
    return eth[:12] + b"\x86\xdd" + struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + s6 + d6 + bytes(tcp)
toa6 = struct.pack("!BBH", 254, 20, 7) + socket.inet_pton(socket.AF_INET6, "2001:2::5")
good6 = seg6("2001:2:0:1::100", "2001:2:0:1::11", toa6)
dst6 = socket.inet_pton(socket.AF_INET6, "2001:2:0:1::11")
assert t.parse_frame(good6, dst6, 80) == (("2001:2:0:1::100", 5555), False, True, 0, ("2001:2::5", 7), False)
bad6 = bytearray(good6); bad6[-1] ^= 1
assert t.parse_frame(bytes(bad6), dst6, 80)[4:] == (None, True)
assert t.parse_frame(good6, socket.inet_pton(socket.AF_INET6, "2001:2:0:1::12"), 80) is None
assert t.parse_toa(toa6) == ("2001:2::5", 7)
assert t.fmt_ep(("2001:2::5", 7)) == "[2001:2::5]:7"
rnd = random.Random(1)
for i in range(100000):
    base = good6 if i % 2 else good
    f = bytearray(base[: rnd.randint(0, len(base))])
    for _ in range(rnd.randint(0, 8) if f else 0):
        f[rnd.randrange(len(f))] = rnd.getrandbits(8)
    t.parse_frame(bytes(f), None, 80)
    t.parse_toa(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40))))
PY
then ok "IPv4 and IPv6 TOA parsed; 100000 mutated IPv4 and IPv6 frames parsed without an exception"; else fail "parser raised"; fi

kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=
if [ -s "$TMP/server.err" ] && grep -qv '^toa_server: serving' "$TMP/server.err"; then
    echo "server stderr:"; cat "$TMP/server.err"
fi
printf 'toa_selftest: %d passed, %d failed\n' "$_pass" "$_fail"
[ "$_fail" -eq 0 ]
