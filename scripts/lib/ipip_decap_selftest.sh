#!/usr/bin/env bash
# Self-test of ipip_decap.py without a gateway: two throwaway namespaces joined by a veth
# (198.18.9.1/24 "gateway" A, 198.18.9.11/24 real server B). A also holds the client address
# 198.18.8.2 (on lo); B routes 198.18.8.0/24 back via A. A crafts IPv4-in-IPv4 packets with a raw
# IP_HDRINCL socket (outer 198.18.9.1 -> 198.18.9.11, inner client -> VIP 198.18.8.100), as a TUN
# mode gateway would; B's decapsulator hands the inner packets to its kernel, which must answer from
# the VIP straight to the client: a UDP echo answers, a SYN gets a SYN-ACK. Also: whether the
# kernel answers ipip with ICMP protocol-unreachable while no raw socket listens, that packets to
# another address or of another protocol are ignored, and that SIGTERM stops it. Needs root.
# Exits non-zero on any failure; deletes everything it created (trap), also on Ctrl-C.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ID=$(( $$ % 100000 ))
NA="ipipt${ID}a"
NB="ipipt${ID}b"
GA=198.18.9.1
RB=198.18.9.11
CL=198.18.8.2
VIP=198.18.8.100
TMP=$(mktemp -d "/tmp/ipipt-${ID}.XXXX")
DEC_PID=
ECHO_PID=
LST_PID=

cleanup() {
    local rc=$?
    set +e
    for p in $DEC_PID $ECHO_PID $LST_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
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

pass=0; failn=0
ok() { pass=$((pass + 1)); printf '  ok   %s\n' "$*"; }
fail() { failn=$((failn + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

ip netns add "$NA"; ip netns add "$NB"
ip link add a0 netns "$NA" type veth peer name b0 netns "$NB"
for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
for x in "$NA a0" "$NB b0"; do
    set -- $x
    ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
done
ip -n "$NA" addr add "$GA/24" dev a0
ip -n "$NA" addr add "$CL/32" dev lo
ip -n "$NB" addr add "$RB/24" dev b0
# A second address of B's: ipip to it reaches the raw socket too and must be ignored.
ip -n "$NB" addr add 198.18.9.12/24 dev b0
ip -n "$NA" link set a0 up
ip -n "$NB" link set b0 up
ip -n "$NB" route add 198.18.8.0/24 via "$GA"
ip netns exec "$NA" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.a0.rp_filter=0

# send.py KIND: craft and send one ipip packet from A; prints what came back (if anything).
cat > "$TMP/send.py" <<'PY'
import socket, struct, sys, select, time
GA, RB, CL, VIP = "198.18.9.1", "198.18.9.11", "198.18.8.2", "198.18.8.100"

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def ip4(src, dst, proto, payload, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

def l4(src, dst, proto, seg):
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(ph + seg)
    off = 6 if proto == 17 else 16
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]

kind = sys.argv[1]
out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
out.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
if kind in ("udp", "icmp-probe", "wrong-dst"):
    data = b"hello-ipip"
    udp = struct.pack("!HHHH", 5555, 7, 8 + len(data), 0) + data
    inner = ip4(CL, VIP, 17, l4(CL, VIP, 17, udp))
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((CL, 5555)); rx.settimeout(2)
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    dst = "198.18.9.12" if kind == "wrong-dst" else RB
    out.sendto(ip4(GA, dst, 4, inner), (dst, 0))
    if kind == "icmp-probe":
        end = time.time() + 1.5
        while time.time() < end:
            r, _, _ = select.select([icmp], [], [], 0.2)
            if r:
                p = icmp.recv(2048)
                ihl = (p[0] & 15) * 4
                print("icmp type=%d code=%d" % (p[ihl], p[ihl + 1]))
                sys.exit(0)
        print("no icmp")
        sys.exit(0)
    try:
        data, peer = rx.recvfrom(2048)
        print("udp reply from %s:%d %r" % (peer[0], peer[1], data))
    except socket.timeout:
        print("no reply")
elif kind == "syn":
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
    inner = ip4(CL, VIP, 6, l4(CL, VIP, 6, tcp))
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    out.sendto(ip4(GA, RB, 4, inner), (RB, 0))
    end = time.time() + 2
    while time.time() < end:
        r, _, _ = select.select([rx], [], [], 0.2)
        if not r:
            continue
        p = rx.recv(2048)
        ihl = (p[0] & 15) * 4
        src = socket.inet_ntoa(p[12:16])
        sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", p[ihl:ihl + 14])
        if dport == 40000:
            print("tcp from %s:%d flags=0x%02x ack=%d" % (src, sport, flags, ack))
            sys.exit(0)
    print("no reply")
elif kind == "not-ipip":
    # protocol 4 with a non-IPv4 inner packet (an IPv6-looking first byte): must be ignored
    out.sendto(ip4(GA, RB, 4, b"\x60" + b"\0" * 39), (RB, 0))
    print("sent")
PY
A() { ip netns exec "$NA" "$@"; }

echo "== before the decapsulator runs (no raw socket for protocol 4 in B)"
r=$(A python3 "$TMP/send.py" icmp-probe)
echo "    $r"
# Informational: the kernel answers an unhandled protocol with ICMP 3/2 unless a raw socket takes it.
if [ "$r" = "icmp type=3 code=2" ]; then
    echo "    (the kernel answers ipip it cannot handle with protocol-unreachable while nothing listens)"
fi

echo "== with the decapsulator"
ip netns exec "$NB" python3 "$HERE/udp_echo.py" "$VIP" 7 --tag 2>/dev/null &
ECHO_PID=$!
ip netns exec "$NB" python3 "$HERE/ipip_decap.py" --addr "$RB" --vip "$VIP" --dev ipip0 --count-file "$TMP/count" &
DEC_PID=$!
for _ in $(seq 50); do
    ip -n "$NB" addr show dev ipip0 2>/dev/null | grep -q "$VIP/32" && [ -s "$TMP/count" ] && break
    sleep 0.1
done
check "TUN device ipip0 is up with the VIP" bash -c "ip -n $NB addr show dev ipip0 | grep -q 'inet $VIP/32' && ip -n $NB link show ipip0 | grep -q ',UP'"
# The echo binds the VIP only once it exists: restart it now that ipip0 holds it.
kill "$ECHO_PID" 2>/dev/null; wait "$ECHO_PID" 2>/dev/null
ip netns exec "$NB" python3 "$HERE/udp_echo.py" "$VIP" 7 --tag &
ECHO_PID=$!
ip netns exec "$NB" python3 -c "
import socket, time
s = socket.socket(); s.bind(('$VIP', 80)); s.listen(8); time.sleep(30)" &
LST_PID=$!
sleep 0.3
r=$(A python3 "$TMP/send.py" udp); echo "    $r"
check "UDP in ipip: answered from the VIP straight to the client" grep -q "udp reply from $VIP:7 b'rs=$VIP peer=$CL:5555 hello-ipip'" <<<"$r"
r=$(A python3 "$TMP/send.py" syn); echo "    $r"
check "TCP SYN in ipip: SYN-ACK from the VIP" grep -q "tcp from $VIP:80 flags=0x12 ack=1001" <<<"$r"
r=$(A python3 "$TMP/send.py" icmp-probe); echo "    $r"
check "no ICMP protocol-unreachable while the raw socket listens" grep -q "^udp reply\|^no icmp" <<<"$r"
A python3 "$TMP/send.py" not-ipip >/dev/null
A python3 "$TMP/send.py" wrong-dst >/dev/null
sleep 1
c=$(cat "$TMP/count"); echo "    counts: $c"
dec=$(sed -n 's/.*decapsulated=\([0-9]*\).*/\1/p' "$TMP/count")
check "decapsulated the UDP and SYN packets (${dec:-0})" [ "${dec:-0}" -ge 3 ]
check "ignored the non-IPv4 inner packet and the one to another address" grep -q "ignored=2$" "$TMP/count"
kill -TERM "$DEC_PID"
for _ in $(seq 30); do kill -0 "$DEC_PID" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM stops it" bash -c "! kill -0 $DEC_PID 2>/dev/null"
wait "$DEC_PID" 2>/dev/null; DEC_PID=

printf 'ipip_decap selftest: %d passed, %d failed\n' "$pass" "$failn"
[ "$failn" -eq 0 ]
