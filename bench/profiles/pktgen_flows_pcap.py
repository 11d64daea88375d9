#!/usr/bin/env python3
"""Write a pcap of N distinct UDP flows for pktgen-dpdk's pcap mode (scenario a beyond 24,576 flows).

pktgen's range mode builds its packets once into a 24,576-buffer pool, so it cannot send more
flows than that; its pcap mode (`-s 0:FILE`) replays a file in a loop, one frame per flow here.
Flows are client ports 1024 .. 65023 of clients 198.19.0.1, .2, ... (64,000 per address), to one
VIP:port, with correct IPv4 and UDP checksums (rvsd verifies them on a connection's first packet).

    python3 bench/profiles/pktgen_flows_pcap.py --flows 1000000 --dst-mac 02:00:5e:00:53:01 -o /tmp/flows.pcap

pktgen keeps every frame of the file in memory (about 2.3 kB of mbuf each: ~2.4 GB for 1M, so give
it `-m 4096` or more with --no-huge). rvsd needs `max_per_worker` above the flow count and enough
`laddrs` (about 64k connections per local address and real server: 16 for 1M to one real).
"""
import argparse
import ipaddress
import struct
import sys

PORTS_PER_CLIENT = 64000


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=64, help="frame size with FCS (default 64)")
    ap.add_argument("--dst-mac", default="02:00:5e:00:53:01", help="rvsd's client-port MAC (rvsadm --ports)")
    ap.add_argument("--src-mac", default="02:00:5e:00:53:10")
    ap.add_argument("--vip", default="198.18.0.100")
    ap.add_argument("--vport", type=int, default=53)
    ap.add_argument("--client", default="198.19.0.1", help="first client address")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()

    eth = bytes.fromhex(a.dst_mac.replace(":", "")) + bytes.fromhex(a.src_mac.replace(":", "")) + b"\x08\x00"
    frame_len = max(60, a.size - 4)  # the FCS is not in the pcap
    udp_len = frame_len - 14 - 20
    payload = b"\0" * (udp_len - 8)
    vip = ipaddress.IPv4Address(a.vip).packed
    first = int(ipaddress.IPv4Address(a.client))
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec = struct.pack("<IIII", 0, 0, frame_len, frame_len)
        for i in range(a.flows):
            src = struct.pack("!I", first + i // PORTS_PER_CLIENT)
            sport = 1024 + i % PORTS_PER_CLIENT
            ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i & 0xFFFF, 0, 64, 17, 0, src, vip))
            struct.pack_into("!H", ip, 10, csum(bytes(ip)))
            udp = bytearray(struct.pack("!HHHH", sport, a.vport, udp_len, 0) + payload)
            c = csum(src + vip + struct.pack("!BBH", 0, 17, udp_len) + bytes(udp)) or 0xFFFF
            struct.pack_into("!H", udp, 6, c)
            f.write(rec + eth + ip + udp)
    print(f"{a.out}: {a.flows} flows, {frame_len + 4} B frames", file=sys.stderr)


if __name__ == "__main__":
    main()
