#!/usr/bin/env python3
"""User-space IPv4-in-IPv4 decapsulator for a TUN-mode (ipvsadm -i) real server, for kernels
without the ipip module (the test machine's has none; production real servers use the kernel's
tunl0: see docs/operations.md, "Real-server set-up per mode").

Usage: ipip_decap.py --addr RS_ADDR --vip VIP [--vip VIP...] [--dev NAME] [--count-file PATH]

  - creates the TUN device NAME (default "ipip0", IFF_TUN | IFF_NO_PI), puts every VIP on it as
    /32, brings it up and turns rp_filter off on it and on "all" (the inner packets come from
    clients the real server routes elsewhere, so strict reverse-path filtering would drop them);
  - reads IP protocol 4 packets from a raw socket; those addressed to RS_ADDR whose inner packet is
    IPv4 are stripped of the outer header and written into the TUN device, where the kernel takes
    them as received: it serves the inner packet (destination the VIP) and replies from the VIP
    through its own routes, straight to the client;
  - everything else (other destinations, malformed, non-IPv4 inner) is counted and ignored;
  - exits cleanly on SIGTERM/SIGINT; with --count-file it writes "decapsulated=N ignored=M"
    there at most twice a second and at exit (so tests can see it worked).

While a raw socket for protocol 4 is open, the kernel hands it the packets and sends no ICMP
protocol-unreachable for them (ip_local_deliver_finish only answers an unknown protocol nobody
listens to); the caller may still drop those ICMPs with nftables for the window before start-up.
Standard library only.
"""
import argparse
import fcntl
import ipaddress
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def sh(*args):
    subprocess.run(args, check=True)


def sysctl(key, value):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(value))


def decap(pkt, rs_addr):
    """The inner IPv4 packet of an ipip packet to rs_addr, else None."""
    if len(pkt) < 40 or pkt[0] >> 4 != 4:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    if ihl < 20 or len(pkt) < ihl + 20 or pkt[9] != IPPROTO_IPIP or pkt[16:20] != rs_addr:
        return None
    # Outer fragments are not reassembled here (the gateway sends DF packets that fit).
    flags_frag = struct.unpack("!H", pkt[6:8])[0]
    if flags_frag & 0x3FFF:
        return None
    inner = pkt[ihl:]
    if inner[0] >> 4 != 4:
        return None
    inner_len = struct.unpack("!H", inner[2:4])[0]
    if inner_len < 20 or inner_len > len(inner):
        return None
    return inner[:inner_len]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", required=True, help="the real server's address (outer destination)")
    ap.add_argument("--vip", action="append", required=True, help="a virtual IP to serve")
    ap.add_argument("--dev", default="ipip0")
    ap.add_argument("--count-file")
    a = ap.parse_args()
    rs_addr = ipaddress.IPv4Address(a.addr).packed

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    tun = open_tun(a.dev)
    for vip in a.vip:
        sh("ip", "addr", "add", f"{ipaddress.IPv4Address(vip)}/32", "dev", a.dev)
    sh("ip", "link", "set", a.dev, "up")
    sysctl("net.ipv4.conf.all.rp_filter", 0)
    sysctl(f"net.ipv4.conf.{a.dev}.rp_filter", 0)

    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    raw.setblocking(False)
    counts = {"decapsulated": 0, "ignored": 0}

    def report():
        if a.count_file:
            tmp = a.count_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("decapsulated=%d ignored=%d\n" % (counts["decapsulated"], counts["ignored"]))
            os.replace(tmp, a.count_file)

    report()
    last = time.monotonic()
    print(f"ipip_decap: {a.addr} -> {a.dev} ({', '.join(a.vip)})", file=sys.stderr, flush=True)
    while not stop:
        try:
            ready, _, _ = select.select([raw], [], [], 0.5)
        except InterruptedError:
            continue
        if not ready:
            if time.monotonic() - last >= 0.5:
                report()
                last = time.monotonic()
            continue
        n = 0
        while n < 256:
            try:
                pkt = raw.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            n += 1
            inner = decap(pkt, rs_addr)
            if inner is None:
                counts["ignored"] += 1
                continue
            try:
                os.write(tun, inner)
                counts["decapsulated"] += 1
            except OSError:
                counts["ignored"] += 1
        if n and time.monotonic() - last >= 0.5:
            report()
            last = time.monotonic()
    report()
    os.close(tun)
    raw.close()


if __name__ == "__main__":
    main()
