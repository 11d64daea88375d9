#!/usr/bin/env python3
"""api.py SOCKET JSON: one request to rvsd's API socket; prints the response line (docs/api.md)."""
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
