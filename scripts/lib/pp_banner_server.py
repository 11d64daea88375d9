#!/usr/bin/env python3
"""Server-speaks-first test server behind PROXY protocol: reads a PROXY header (v1 or v2) from each
connection, answers "220 <client-ip-from-header> ready\\r\\n" before reading anything else, then
echoes one line and closes. A connection without a valid header is logged as "NOHEADER" and closed.
One line per connection on stdout: "v1|v2 <src>:<sport> -> <dst>:<dport>".
Usage: pp_banner_server.py ADDR PORT"""
import socket
import struct
import sys
import threading

SIG2 = b"\r\n\r\n\x00\r\nQUIT\n"


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_header(c):
    """(version, src, sport, dst, dport) or raises ValueError."""
    head = recv_exact(c, 12)
    if head == SIG2:
        ver_cmd, fam, length = struct.unpack("!BBH", recv_exact(c, 4))
        body = recv_exact(c, length)
        if ver_cmd != 0x21 or fam != 0x11 or length < 12:
            raise ValueError("v2 header not PROXY TCP4: %02x %02x %d" % (ver_cmd, fam, length))
        src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
        return "v2", src, sport, dst, dport
    if not head.startswith(b"PROXY "):
        raise ValueError("no PROXY header: %r" % head)
    line = head
    while not line.endswith(b"\r\n"):
        if len(line) > 107:
            raise ValueError("v1 line too long")
        line += recv_exact(c, 1)
    parts = line[:-2].decode().split(" ")
    if len(parts) != 6 or parts[1] != "TCP4":
        raise ValueError("v1 line malformed: %r" % line)
    return "v1", parts[2], int(parts[4]), parts[3], int(parts[5])


def serve(c):
    c.settimeout(10)
    try:
        try:
            ver, src, sport, dst, dport = read_header(c)
        except (ValueError, EOFError) as e:
            print("NOHEADER %s" % e, flush=True)
            return
        print("%s %s:%d -> %s:%d" % (ver, src, sport, dst, dport), flush=True)
        c.sendall(b"220 %s ready\r\n" % src.encode())
        line = b""
        while not line.endswith(b"\n"):
            chunk = c.recv(4096)
            if not chunk:
                return
            line += chunk
        c.sendall(line)
    except (OSError, EOFError):
        pass
    finally:
        c.close()


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(256)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
