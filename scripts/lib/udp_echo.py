#!/usr/bin/env python3
"""UDP echo server for tests: answers every datagram with its payload (prefixed by the server address
when --tag is given). Usage: udp_echo.py ADDR PORT [--tag]"""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
tag = "--tag" in sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
while True:
    data, peer = s.recvfrom(65535)
    reply = (f"rs={addr} peer={peer[0]}:{peer[1]} ".encode() + data) if tag else data
    s.sendto(reply, peer)
