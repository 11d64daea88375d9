#!/usr/bin/env python3
"""UDP echo server for tests: answers every datagram with its payload (prefixed by the server address
when --tag is given, or by NAME with --name NAME, for servers that share an address, as DR and TUN
real servers share the VIP). ADDR may be IPv6 (the peer is then shown as [ip]:port).
Usage: udp_echo.py ADDR PORT [--tag] [--name NAME]"""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
rest = sys.argv[3:]
tag = "--tag" in rest
name = addr
if "--name" in rest:
    name = rest[rest.index("--name") + 1]
    tag = True
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
while True:
    data, peer = s.recvfrom(65535)
    shown = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
    reply = (f"rs={name} peer={shown} ".encode() + data) if tag else data
    s.sendto(reply, peer)
