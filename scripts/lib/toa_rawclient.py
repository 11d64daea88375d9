#!/usr/bin/env python3
"""Raw-socket TCP client that puts a TOA option (kind 254) into its handshake-completing ACK, the
way a FULLNAT gateway does, then sends one HTTP/1.0 GET and prints the response body. Standard
library only; used by toa_selftest.sh to test toa_server.py without a gateway.

The client kernel knows nothing of this connection and answers the SYN-ACK with a RST: drop
outgoing RSTs in the client namespace first, e.g.
    nft add table ip t; nft add chain ip t o '{ type filter hook output priority 0; }'
    nft add rule ip t o ip daddr 198.18.9.2 tcp flags rst drop

    toa_rawclient.py --src 198.18.9.1 --dst 198.18.9.2 --toa 198.18.0.77:4321
    toa_rawclient.py --iface va --dst 198.18.9.2 --malformed     # hostile frames, no connection
"""

import argparse
import os
import random
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_segment(src, dst, sport, dport, seq, ack, flags, opts=b"", payload=b"", win=65535):
    if len(opts) % 4:
        opts += b"\x01" * (4 - len(opts) % 4)  # pad with NOPs
    doff = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, win, 0, 0) + opts
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def ipv4_packet(src, dst, l4, proto=6, ihl_words=5, total_len=None, frag=0x4000):
    tl = total_len if total_len is not None else 20 + len(l4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl_words, 0, tl & 0xFFFF, 0, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + l4


def toa_opt(ip, port, length=8):
    body = struct.pack("!H", port) + socket.inet_aton(ip)
    return bytes([254, length]) + body[: max(0, length - 2)]


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def connect_and_get(a):
    src, dst, dport = a.src, a.dst, a.dport
    sport = a.sport or random.randint(20000, 60000)
    isn = a.isn if a.isn is not None else random.getrandbits(32)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.bind((src, 0))
    s.settimeout(0.2)

    def send(seq, ack, flags, opts=b"", payload=b""):
        s.sendto(tcp_segment(src, dst, sport, dport, seq, ack, flags, opts, payload), (dst, 0))

    def recv_seg(deadline):
        """Next segment from dst:dport to us, or None at the deadline."""
        while time.monotonic() < deadline:
            try:
                pkt = s.recv(65535)
            except socket.timeout:
                continue
            ihl = (pkt[0] & 0xF) * 4
            if pkt[12:16] != socket.inet_aton(dst) or len(pkt) < ihl + 20:
                continue
            sp, dp, seq, ack = struct.unpack_from("!HHII", pkt, ihl)
            if sp != dport or dp != sport:
                continue
            doff = (pkt[ihl + 12] >> 4) * 4
            tl = struct.unpack_from("!H", pkt, 2)[0]
            return seq, ack, pkt[ihl + 13], pkt[ihl + doff : tl]
        return None

    # Handshake; the SYN carries MSS only.
    seg = None
    for _ in range(3):
        send(isn, 0, SYN, struct.pack("!BBH", 2, 4, 1460))
        seg = recv_seg(time.monotonic() + 1.0)
        if seg and seg[2] & (SYN | ACK) == SYN | ACK:
            break
        if seg and seg[2] & RST:
            sys.exit("connection refused (RST)")
    else:
        sys.exit("no SYN-ACK from %s:%d" % (dst, dport))
    rcv_nxt = (seg[0] + 1) & 0xFFFFFFFF
    snd_nxt = (isn + 1) & 0xFFFFFFFF

    opts = b""
    if a.toa:
        ip, port = a.toa.rsplit(":", 1)
        opts = b"\x01\x01" * a.nops + toa_opt(ip, int(port), a.toa_len)
    if a.bad_csum_ack:  # the kernel drops it; the request segment then completes the handshake
        seg_b = bytearray(tcp_segment(src, dst, sport, dport, snd_nxt, rcv_nxt, ACK, opts))
        seg_b[16] ^= 0x5A
        s.sendto(bytes(seg_b), (dst, 0))
    else:
        send(snd_nxt, rcv_nxt, ACK, opts)  # the handshake-completing ACK, carrying TOA
    req = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (a.path, dst)).encode()
    send(snd_nxt, rcv_nxt, PSH | ACK, b"", req)

    body, fin = b"", False
    deadline = time.monotonic() + 5.0
    last_tx = time.monotonic()
    while time.monotonic() < deadline and not fin:
        seg = recv_seg(min(deadline, time.monotonic() + 0.5))
        if seg is None:
            if not body and time.monotonic() - last_tx > 1.0:  # request lost: retransmit
                send(snd_nxt, rcv_nxt, PSH | ACK, b"", req)
                last_tx = time.monotonic()
            continue
        seq, _, flags, data = seg
        if flags & RST:
            sys.exit("connection reset by server")
        if seq == rcv_nxt:
            body += data
            rcv_nxt = (rcv_nxt + len(data)) & 0xFFFFFFFF
            if flags & FIN:
                rcv_nxt = (rcv_nxt + 1) & 0xFFFFFFFF
                fin = True
        send((snd_nxt + len(req)) & 0xFFFFFFFF, rcv_nxt, ACK)
    snd_fin = (snd_nxt + len(req)) & 0xFFFFFFFF
    send(snd_fin, rcv_nxt, FIN | ACK)
    recv_seg(time.monotonic() + 0.3)  # the last ACK, if any
    s.close()
    if not fin:
        sys.exit("response incomplete after 5 s: %r" % body)
    head, _, content = body.partition(b"\r\n\r\n")
    print("sport=%d" % sport, file=sys.stderr)
    sys.stdout.write(content.decode(errors="replace"))


def malformed(a):
    """Send hostile frames to dst:dport through an AF_PACKET socket (broadcast MAC, so they reach the
    far end of the veth). The server must neither crash nor record anything from them."""
    src, dst, port = a.src, a.dst, a.dport
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    good_toa = toa_opt("198.18.0.66", 666)

    def tcp(opts=b"", payload=b"", flags=ACK, doff_override=None):
        t = bytearray(tcp_segment(src, dst, 40000, port, 1, 1, flags, opts, payload))
        if doff_override is not None:
            t[12] = doff_override << 4
        return bytes(t)

    frames = [
        eth + ipv4_packet(src, dst, tcp(bytes([254, 0]) + b"\0" * 6)),  # zero-length option
        eth + ipv4_packet(src, dst, tcp(bytes([254, 40]) + b"\0" * 6)),  # option overruns header
        eth + ipv4_packet(src, dst, tcp(bytes([254, 6, 0, 80, 198, 18]))),  # TOA with length 6
        eth + ipv4_packet(src, dst, tcp(bytes([8, 1]) + good_toa)),  # length-1 option before TOA
        eth + ipv4_packet(src, dst, tcp(b"\x01\x01\x01")[:26]),  # options cut short
        eth + ipv4_packet(src, dst, tcp(good_toa, doff_override=15)),  # doff beyond packet
        eth + ipv4_packet(src, dst, tcp(good_toa, doff_override=2)),  # doff < 5
        eth + ipv4_packet(src, dst, tcp(good_toa), ihl_words=15),  # IHL beyond packet
        eth + ipv4_packet(src, dst, tcp(good_toa), ihl_words=3),  # IHL < 5
        eth + ipv4_packet(src, dst, tcp(good_toa), total_len=30),  # total length cuts TCP
        eth + ipv4_packet(src, dst, tcp(good_toa), total_len=9000),  # total length beyond frame
        eth + ipv4_packet(src, dst, tcp(good_toa), frag=0x2001),  # non-first fragment
        eth + ipv4_packet(src, dst, tcp(good_toa))[:30],  # truncated IP header
        eth + ipv4_packet(src, dst, tcp(good_toa))[:40],  # truncated TCP header
        eth + b"\x45",  # one byte of IP
        eth[:12] + b"\x81\x00\x00\x05",  # VLAN tag and nothing else
        eth[:12] + b"\x81\x00",  # VLAN ethertype, no tag
        b"\xff" * 14,  # header only, odd ethertype
    ]
    rnd = random.Random(a.seed)
    # Mutants of a valid TOA segment (another client address: some mutants stay valid).
    base = eth + ipv4_packet(src, dst, tcp(toa_opt("198.18.0.67", 667), b"x" * 10))
    for _ in range(a.fuzz):
        f = bytearray(base[: rnd.randint(14, len(base))])
        for _ in range(rnd.randint(1, 6) if len(f) > 14 else 0):
            f[rnd.randrange(14, len(f))] = rnd.getrandbits(8)
        frames.append(bytes(f))
    sent = 0
    for f in frames:
        try:
            s.send(f)
            sent += 1
        except OSError:
            pass  # too short for the device: fine
    print("malformed frames sent: %d of %d" % (sent, len(frames)), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="198.18.9.1")
    ap.add_argument("--dst", default="198.18.9.2")
    ap.add_argument("--dport", type=int, default=80)
    ap.add_argument("--sport", type=int, default=0)
    ap.add_argument("--isn", type=int)
    ap.add_argument("--path", default="/")
    ap.add_argument("--toa", default="", help="client ip:port to carry in the ACK (empty: no TOA)")
    ap.add_argument("--toa-len", type=int, default=8, help="TOA option length byte (8 is valid)")
    ap.add_argument("--nops", type=int, default=0, help="pairs of NOPs before the TOA option")
    ap.add_argument("--bad-csum-ack", action="store_true", help="corrupt the ACK's TCP checksum")
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--iface", help="for --malformed: interface to send frames on")
    ap.add_argument("--fuzz", type=int, default=2000, help="for --malformed: random mutants")
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    a = ap.parse_args()
    if a.malformed:
        malformed(a)
    else:
        connect_and_get(a)


if __name__ == "__main__":
    main()
