#!/usr/bin/env python3
"""HTTP test server for real servers behind a FULLNAT gateway that reports the client address
carried in the TOA option (TCP option kind 254, length 8: port then IPv4 address, network order;
or, as DPVS's toa module reads it for IPv6 clients (kmod/toa/toa.h `struct toa_ip6_data`, also
for NAT64), length 20: port then the 16-byte IPv6 address). The server itself may be IPv4 or
IPv6 (--addr); an IPv6 client is reported as [ip]:port.

A FULLNAT gateway rewrites both addresses, so the kernel socket's peer is the gateway's LIP; the
original client only survives in the TOA option the gateway inserts into the handshake-completing
ACK. Without the `toa` kernel module we read it from the wire: an AF_PACKET socket on --iface sees
every segment to --addr:--port, and segments carrying option 254 record
(peer ip, peer port) -> (client ip, client port).

    GET /      -> "rs=<addr> peer=<ip>:<port> toa=<client ip>:<client port>\n"  (or "toa=none")
    GET /toa   -> JSON list of every recorded mapping

TOA in a segment with a wrong IP or TCP checksum is not recorded (the kernel drops that segment;
a gateway that miscomputes the checksum after inserting TOA must not pass a test), only counted as
stats.toa_bad_csum in /toa. Frames the kernel marks as carrying a partial checksum (tx offload on
the sender) are not checked.

Usage: toa_server.py --iface s0 --addr 198.18.1.11 --port 80 [--wait-ms 200] [--no-verify-csum]
Standard library only. Linux, root (or CAP_NET_RAW) for the packet socket.
"""

import argparse
import collections
import ctypes
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ETH_P_ALL = 3
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
PACKET_OUTGOING = 4
TCPOPT_TOA = 254
TCPOLEN_TOA = 8
TCPOLEN_IP6_TOA = 20
SO_ATTACH_FILTER = 26
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_CSUMNOTREADY = 0x8  # tx checksum offload: the checksum field is only partial
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
MAX_PEERS = 65536


class PeerState:
    """What the sniffer saw for one peer (ip, port) since its last SYN."""

    __slots__ = ("toa", "toa_at", "data_seen", "syn_at")

    def __init__(self):
        self.toa = None  # (client ip, client port)
        self.toa_at = 0.0
        self.data_seen = False  # a payload-carrying segment was seen: the sniffer caught up
        self.syn_at = 0.0


class ToaTable:
    def __init__(self):
        self.lock = threading.Condition()
        self.peers = collections.OrderedDict()  # (ip, port) -> PeerState, oldest first
        self.stats = collections.Counter()

    def _state(self, key):
        st = self.peers.get(key)
        if st is None:
            st = self.peers[key] = PeerState()
            while len(self.peers) > MAX_PEERS:
                self.peers.popitem(last=False)
        else:
            self.peers.move_to_end(key)
        return st

    def on_segment(self, key, syn, ack, payload_len, toa, bad_csum=False):
        with self.lock:
            if bad_csum:
                # The kernel drops this segment; a TOA in it never reached the connection.
                self.stats["toa_bad_csum"] += 1
                return
            if syn and not ack:
                # A new connection from this peer tuple: forget what an earlier one carried.
                st = self.peers[key] = PeerState()
                self.peers.move_to_end(key)
                st.syn_at = time.time()
                self.stats["syn"] += 1
            else:
                st = self._state(key)
            if toa is not None:
                st.toa = toa
                st.toa_at = time.time()
                self.stats["toa"] += 1
            if payload_len > 0:
                st.data_seen = True
            self.lock.notify_all()

    def lookup(self, key, wait_s):
        """The TOA client for peer `key`, waiting up to wait_s for the sniffer to catch up.

        Returns as soon as a TOA is known, or as soon as the sniffer has seen a payload segment of
        this connection (it has then seen the handshake ACK too, so no TOA means there was none)."""
        deadline = time.monotonic() + wait_s
        with self.lock:
            while True:
                st = self.peers.get(key)
                if st is not None and (st.toa is not None or st.data_seen):
                    return st.toa
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stats["lookup_timeout"] += 1
                    return None
                self.lock.wait(left)

    def dump(self):
        now = time.time()
        with self.lock:
            return [
                {
                    "peer": fmt_ep(k),
                    "client": fmt_ep(st.toa),
                    "age_s": round(now - st.toa_at, 3),
                }
                for k, st in self.peers.items()
                if st.toa is not None
            ]


def fmt_ep(ep):
    """ip:port, [ip]:port for IPv6."""
    ip, port = ep
    return ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port)


def parse_toa(opts):
    """The (ip, port) of a well-formed TOA option in raw TCP option bytes, else None.

    Walks the option list defensively: a truncated or zero-length option ends the walk."""
    i, n = 0, len(opts)
    while i < n:
        kind = opts[i]
        if kind == 0:  # end of option list
            return None
        if kind == 1:  # NOP
            i += 1
            continue
        if i + 1 >= n:
            return None
        olen = opts[i + 1]
        if olen < 2 or i + olen > n:
            return None
        if kind == TCPOPT_TOA and olen == TCPOLEN_TOA:
            port = struct.unpack_from("!H", opts, i + 2)[0]
            ip = socket.inet_ntoa(opts[i + 4 : i + 8])
            return ip, port
        if kind == TCPOPT_TOA and olen == TCPOLEN_IP6_TOA:
            port = struct.unpack_from("!H", opts, i + 2)[0]
            ip = socket.inet_ntop(socket.AF_INET6, bytes(opts[i + 4 : i + 20]))
            return ip, port
        i += olen
    return None


def csum16(data):
    """Internet checksum of data (0 when data includes a correct checksum field)."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def parse_frame(frame, addr_bytes, port, verify_csum=True):
    """Parse an Ethernet frame. Returns (peer key, syn, ack, payload_len, toa, bad_csum) for an
    IPv4 TCP segment to addr:port (addr_bytes None = any address), else None. A TOA segment whose
    IP or TCP checksum is wrong (the kernel would drop it) comes back with toa None and bad_csum
    True. Never raises on bad input."""
    if len(frame) < 14:
        return None
    off = 12
    ethertype = struct.unpack_from("!H", frame, off)[0]
    # Up to two VLAN tags.
    for _ in range(2):
        if ethertype in (ETH_P_8021Q, ETH_P_8021AD) and len(frame) >= off + 6:
            off += 4
            ethertype = struct.unpack_from("!H", frame, off)[0]
    if ethertype == ETH_P_IPV6:
        return parse_ip6(frame, off + 2, addr_bytes, port, verify_csum)
    if ethertype != ETH_P_IP:
        return None
    ip = off + 2
    if len(frame) < ip + 20:
        return None
    vihl = frame[ip]
    if vihl >> 4 != 4:
        return None
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        return None
    total_len = struct.unpack_from("!H", frame, ip + 2)[0]
    frag = struct.unpack_from("!H", frame, ip + 6)[0]
    if frag & 0x1FFF:  # not a first fragment: no TCP header here
        return None
    if frame[ip + 9] != socket.IPPROTO_TCP:
        return None
    end = ip + total_len  # anything after is Ethernet padding
    if total_len < ihl + 20 or end > len(frame):  # too short for TCP, or truncated
        return None
    if addr_bytes is not None and frame[ip + 16 : ip + 20] != addr_bytes:
        return None
    tcp = ip + ihl
    if tcp + 20 > end:
        return None
    sport, dport = struct.unpack_from("!HH", frame, tcp)
    if dport != port:
        return None
    doff = (frame[tcp + 12] >> 4) * 4
    if doff < 20 or tcp + doff > end:
        return None
    flags = frame[tcp + 13]
    syn, ack = bool(flags & 0x02), bool(flags & 0x10)
    toa = parse_toa(frame[tcp + 20 : tcp + doff]) if doff > 20 else None
    payload_len = end - (tcp + doff)
    key = (socket.inet_ntoa(frame[ip + 12 : ip + 16]), sport)
    bad = False
    if toa is not None and verify_csum:
        pseudo = frame[ip + 12 : ip + 20] + struct.pack("!BBH", 0, 6, end - tcp)
        if csum16(frame[ip : ip + ihl]) != 0 or csum16(pseudo + frame[tcp:end]) != 0:
            toa, bad = None, True
    return key, syn, ack, payload_len, toa, bad


def parse_ip6(frame, ip, addr_bytes, port, verify_csum):
    """parse_frame for the IPv6 packet at offset ip: TCP right after the fixed header (the gateway
    adds no extension headers), else None."""
    if len(frame) < ip + 40 or frame[ip] >> 4 != 6:
        return None
    plen = struct.unpack_from("!H", frame, ip + 4)[0]
    if frame[ip + 6] != socket.IPPROTO_TCP:
        return None
    tcp = ip + 40
    end = tcp + plen
    if plen < 20 or end > len(frame):
        return None
    if addr_bytes is not None and frame[ip + 24 : ip + 40] != addr_bytes:
        return None
    sport, dport = struct.unpack_from("!HH", frame, tcp)
    if dport != port:
        return None
    doff = (frame[tcp + 12] >> 4) * 4
    if doff < 20 or tcp + doff > end:
        return None
    flags = frame[tcp + 13]
    syn, ack = bool(flags & 0x02), bool(flags & 0x10)
    toa = parse_toa(frame[tcp + 20 : tcp + doff]) if doff > 20 else None
    key = (socket.inet_ntop(socket.AF_INET6, bytes(frame[ip + 8 : ip + 24])), sport)
    bad = False
    if toa is not None and verify_csum:
        pseudo = frame[ip + 8 : ip + 40] + struct.pack("!IxxxB", plen, socket.IPPROTO_TCP)
        if csum16(pseudo + frame[tcp:end]) != 0:
            toa, bad = None, True
    return key, syn, ack, end - (tcp + doff), toa, bad


def attach_filter(sock, addr_bytes, port):
    """Kernel-side classic BPF: keep only incoming IPv4 TCP to addr:port (not later fragments).
    An optimisation only; the Python parser applies the same checks."""

    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)

    # BPF opcodes
    LD_H_ABS, LD_B_ABS, LD_W_ABS = 0x28, 0x30, 0x20
    LDX_B_MSH, LD_H_IND = 0xB1, 0x48
    JEQ, JSET, RET = 0x15, 0x45, 0x06
    prog = []
    prog.append(ins(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE))
    prog.append(("JEQ_DROP", PACKET_OUTGOING))
    if addr_bytes is not None and len(addr_bytes) == 16:
        # IPv6: next header TCP, the destination address, the destination port.
        prog.append(ins(LD_H_ABS, 0, 0, 12))
        prog.append(("JNE_DROP", ETH_P_IPV6))
        prog.append(ins(LD_B_ABS, 0, 0, 20))
        prog.append(("JNE_DROP", socket.IPPROTO_TCP))
        for w in range(4):
            prog.append(ins(LD_W_ABS, 0, 0, 38 + 4 * w))
            prog.append(("JNE_DROP", struct.unpack_from("!I", addr_bytes, 4 * w)[0]))
        prog.append(ins(LD_H_ABS, 0, 0, 56))
        prog.append(("JNE_DROP", port))
        prog.append(ins(RET, 0, 0, 0x40000))
        prog.append(ins(RET, 0, 0, 0))
        return _assemble(sock, prog)
    prog.append(ins(LD_H_ABS, 0, 0, 12))
    prog.append(("JNE_DROP", ETH_P_IP))
    prog.append(ins(LD_B_ABS, 0, 0, 23))
    prog.append(("JNE_DROP", socket.IPPROTO_TCP))
    if addr_bytes is not None:
        prog.append(ins(LD_W_ABS, 0, 0, 30))
        prog.append(("JNE_DROP", struct.unpack("!I", addr_bytes)[0]))
    prog.append(ins(LD_H_ABS, 0, 0, 20))
    prog.append(("JSET_DROP", 0x1FFF))
    prog.append(ins(LDX_B_MSH, 0, 0, 14))
    prog.append(ins(LD_H_IND, 0, 0, 16))
    prog.append(("JNE_DROP", port))
    prog.append(ins(RET, 0, 0, 0x40000))  # accept (whole frame)
    prog.append(ins(RET, 0, 0, 0))  # drop
    return _assemble(sock, prog)


def _assemble(sock, prog):
    """Resolves the symbolic jumps to the last instruction (drop) and attaches the program."""

    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)

    JEQ, JSET = 0x15, 0x45
    drop = len(prog) - 1
    out = []
    for pc, p in enumerate(prog):
        if isinstance(p, tuple):
            kind, k = p
            to_drop = drop - pc - 1
            if kind == "JEQ_DROP":
                out.append(ins(JEQ, to_drop, 0, k))
            elif kind == "JNE_DROP":
                out.append(ins(JEQ, 0, to_drop, k))
            else:  # JSET_DROP
                out.append(ins(JSET, to_drop, 0, k))
        else:
            out.append(p)
    blob = b"".join(out)
    buf = ctypes.create_string_buffer(blob)
    fprog = struct.pack("HL", len(out), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return buf  # keep alive (the kernel copies it, but be safe)


def open_sniffer(iface, addr, port):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        pass
    if addr in ("", "0.0.0.0", "::"):
        addr_bytes = None
    elif ":" in addr:
        addr_bytes = socket.inet_pton(socket.AF_INET6, addr)
    else:
        addr_bytes = socket.inet_aton(addr)
    try:
        attach_filter(s, addr_bytes, port)
    except OSError as e:
        print("toa_server: BPF filter not attached (%s); filtering in Python" % e, file=sys.stderr)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    return s, addr_bytes


def sniff(sock, addr_bytes, port, table, verify_csum):
    cmsg_space = socket.CMSG_SPACE(20)  # struct tpacket_auxdata
    while True:
        try:
            frame, anc, _, sa = sock.recvmsg(65536, cmsg_space)
        except InterruptedError:
            continue
        except OSError as e:
            print("toa_server: sniffer recv failed: %s" % e, file=sys.stderr)
            time.sleep(0.1)
            continue
        try:
            if len(sa) >= 3 and sa[2] == PACKET_OUTGOING:
                continue
            partial = False
            for level, typ, data in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 4:
                    partial = bool(struct.unpack_from("I", data)[0] & TP_STATUS_CSUMNOTREADY)
            seg = parse_frame(frame, addr_bytes, port, verify_csum and not partial)
        except Exception as e:  # parser bug on hostile input: count it, never die
            table.stats["parse_error"] += 1
            print("toa_server: bad frame (%s): %s" % (e, frame[:64].hex()), file=sys.stderr)
            continue
        if seg is None:
            table.stats["ignored"] += 1
            continue
        table.on_segment(*seg)


def make_handler(table, rs_addr, wait_s):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "toa_server"
        sys_version = ""

        def log_message(self, fmt, *args):
            pass

        def _reply(self, code, body, ctype="text/plain"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/toa":
                body = json.dumps({"mappings": table.dump(), "stats": dict(table.stats)})
                self._reply(200, body + "\n", "application/json")
                return
            if path != "/":
                self._reply(404, "not found\n")
                return
            peer = self.client_address[:2]
            toa = table.lookup((peer[0], peer[1]), wait_s)
            toa_s = fmt_ep(toa) if toa else "none"
            self._reply(200, "rs=%s peer=%s toa=%s\n" % (rs_addr, fmt_ep(peer), toa_s))

        do_HEAD = do_GET

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iface", required=True, help="interface the requests arrive on (e.g. s0)")
    ap.add_argument("--addr", required=True, help="address to serve on (e.g. 198.18.1.11)")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--wait-ms", type=int, default=200, help="max wait for the sniffer per lookup")
    ap.add_argument("--no-verify-csum", action="store_true",
                    help="accept TOA from segments with a wrong IP/TCP checksum")
    a = ap.parse_args()

    table = ToaTable()
    sock, addr_bytes = open_sniffer(a.iface, a.addr, a.port)
    # The sniffer is up before we listen, so it sees every handshake.
    threading.Thread(target=sniff, args=(sock, addr_bytes, a.port, table, not a.no_verify_csum), daemon=True).start()
    httpd = (Server6 if ":" in a.addr else Server)((a.addr, a.port), make_handler(table, a.addr, a.wait_ms / 1000.0))
    print("toa_server: serving %s:%d, sniffing %s" % (a.addr, a.port, a.iface), file=sys.stderr, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
