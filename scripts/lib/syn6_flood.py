#!/usr/bin/env python3
"""Bounded spoofed-source IPv6 SYN flood for tests (hping3 has no IPv6).

Sends TCP SYNs to DST:PORT from random source addresses inside --src-prefix (a /64 or shorter;
random interface identifiers) and random source ports, through a raw IPv6 socket with the header
included (IPPROTO_RAW implies IPV6_HDRINCL), so the kernel only resolves the next hop. Stops after
--seconds or --count packets, whichever comes first, and prints "sent=N pps=R".

Usage: syn6_flood.py DST PORT [--src-prefix 2001:2:ff00::/40] [--seconds 6] [--count 500000]
Standard library only; root (CAP_NET_RAW).
"""
import argparse
import ipaddress
import os
import random
import socket
import struct
import time


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, dst, sport, dport, seq):
    # 20-byte header plus MSS 1440 (a SYN without options is rare on the Internet).
    opts = struct.pack("!BBH", 2, 4, 1440)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (20 + len(opts)) // 4 << 4, 0x02, 64240, 0, 0) + opts
    pseudo = src + dst + struct.pack("!IxxxB", len(tcp), socket.IPPROTO_TCP)
    c = csum16(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), socket.IPPROTO_TCP, 64) + src + dst
    return ip6 + tcp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dst")
    ap.add_argument("port", type=int)
    ap.add_argument("--src-prefix", default="2001:2:ff00::/40")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--count", type=int, default=500_000)
    a = ap.parse_args()
    net = ipaddress.IPv6Network(a.src_prefix, strict=False)
    if net.prefixlen > 64:
        ap.error("--src-prefix must be /64 or shorter")
    base = int(net.network_address)
    span = 1 << (128 - net.prefixlen)
    dst = socket.inet_pton(socket.AF_INET6, a.dst)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rnd = random.Random(os.getpid())
    def build():
        out = []
        for _ in range(1024):
            src = (base + rnd.randrange(1, span)).to_bytes(16, "big")
            out.append(syn(src, dst, rnd.randrange(1024, 65536), a.port, rnd.getrandbits(32)))
        return out

    # Packets are built in batches (fast to send); every batch has new sources, ports and sequences.
    sent = 0
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    target = (a.dst, 0)
    while sent < a.count:
        pool = build()
        for p in pool[: a.count - sent]:
            try:
                s.sendto(p, target)
                sent += 1
            except (BlockingIOError, OSError):
                pass
        if time.monotonic() >= deadline:
            break
    dt = max(time.monotonic() - t0, 1e-6)
    print("sent=%d pps=%d" % (sent, sent / dt), flush=True)


if __name__ == "__main__":
    main()
