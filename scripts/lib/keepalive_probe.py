#!/usr/bin/env python3
"""One HTTP keep-alive connection, a request every INTERVAL ms for SECONDS: does an established
connection survive a gateway failover, and how long did it stall?

Usage: keepalive_probe.py HOST PORT SECONDS [INTERVAL_MS]

Prints one line: `requests=N errors=E reconnects=R max_gap_ms=G` (G: the longest time between two
consecutive successful responses, i.e. the stall the failover caused). On an error the probe opens
a new connection and counts it; it never retries a request silently. Every request is bounded by a
5 s timeout, the whole run by SECONDS (+ one timeout).
"""
import http.client
import sys
import time


def main() -> int:
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    interval = (float(sys.argv[4]) if len(sys.argv) > 4 else 20.0) / 1000
    end = time.monotonic() + seconds
    conn = http.client.HTTPConnection(host, port, timeout=5)
    requests = errors = reconnects = 0
    last_ok = None
    max_gap = 0.0
    while time.monotonic() < end:
        try:
            conn.request("GET", "/", headers={"Connection": "keep-alive"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
            requests += 1
            now = time.monotonic()
            if last_ok is not None:
                max_gap = max(max_gap, now - last_ok)
            last_ok = now
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            errors += 1
            print(f"error after {requests} requests: {e!r}", file=sys.stderr)
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
            reconnects += 1
        time.sleep(interval)
    conn.close()
    print(f"requests={requests} errors={errors} reconnects={reconnects} max_gap_ms={int(max_gap * 1000)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
