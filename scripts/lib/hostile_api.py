#!/usr/bin/env python3
"""Hostile API clients against rvsd's socket: garbage, truncated JSON, a 10 MB line, an unknown op,
a slow client that never finishes its line, then 100 concurrent well-behaved clients.

Each case must get an error answer or have its connection closed, and the daemon must keep
serving. Prints one `ok`/`FAIL` line per case and `N passed, M failed` at the end; exits 1 on any
failure. Usage: hostile_api.py SOCKET"""
import json
import socket
import sys
import threading
import time

SOCK = sys.argv[1]
passed = failed = 0


def report(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("  ok   " + what)
    else:
        failed += 1
        print("  FAIL " + what)


def connect(timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(SOCK)
    return s


def read_line(s):
    buf = b""
    try:
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    return buf


def error_or_closed(payload, what, timeout=10):
    s = connect(timeout)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        report(True, what + ": connection closed while sending")
        return
    line = read_line(s)
    if not line:
        report(True, what + ": connection closed")
        return
    try:
        r = json.loads(line)
        report(r.get("ok") is False and "error" in r, what + ": error answer: " + r.get("error", "")[:80])
    except ValueError:
        report(False, what + ": unparseable answer " + repr(line[:80]))


def still_serving(what):
    try:
        s = connect()
        s.sendall(b'{"op":"version"}\n')
        r = json.loads(read_line(s))
        report(r.get("ok") is True, "daemon still serving after " + what)
    except Exception as e:  # noqa: BLE001 - any failure is the test failing
        report(False, "daemon still serving after %s: %s" % (what, e))


error_or_closed(b"\x00\xffgarbage\x01\n", "binary garbage")
still_serving("garbage")
error_or_closed(b'{"op":"list_serv\n', "truncated JSON")
still_serving("truncated JSON")
error_or_closed(b'{"op":"launch_missiles"}\n', "unknown op")
still_serving("unknown op")
error_or_closed(b'{"op":"add_real","proto":"tcp"}\n', "missing fields")
still_serving("missing fields")
error_or_closed(b"x" * (10 * 1024 * 1024) + b"\n", "a 10 MB line", timeout=30)
still_serving("a 10 MB line")

# A slow client: half a line, then nothing. The daemon must time it out (or keep it waiting
# without blocking others): others are served meanwhile, and the slow one ends up closed.
slow = connect(timeout=20)
slow.sendall(b'{"op":"vers')
still_serving("a slow client opened")
t0 = time.time()
line = read_line(slow)
report(time.time() - t0 < 15, "slow client disconnected after %.1f s (%s)" % (time.time() - t0, line[:60]))

results = []


def one(i):
    try:
        s = connect()
        s.sendall(b'{"op":"list_services"}\n{"op":"version"}\n')
        f = s.makefile("rb")
        a = json.loads(f.readline())
        b = json.loads(f.readline())
        results.append(a.get("ok") is True and b.get("api") == 1)
    except Exception:  # noqa: BLE001
        results.append(False)


threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
report(sum(results) == 100, "100 concurrent clients served (%d ok)" % sum(results))
print("hostile_api: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
