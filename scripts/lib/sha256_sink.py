#!/usr/bin/env python3
"""TCP upload sink for tests: reads each connection to its end (the client shuts its sending side
down), then answers the sha256 hex digest and the byte count ("<hex> <bytes>\\n") and closes.
Usage: sha256_sink.py ADDR PORT"""
import hashlib
import socket
import sys
import threading


def serve(c):
    c.settimeout(30)
    h, n = hashlib.sha256(), 0
    try:
        while True:
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        c.sendall(b"%s %d\n" % (h.hexdigest().encode(), n))
    except OSError:
        pass
    finally:
        c.close()


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
