"""Holds COUNT keep-alive HTTP connections to a VIP and sends requests on
each until STOPFILE exists. Every connection must be answered by the same
backend for its whole life, and no request may fail. Prints a summary and
exits non-zero on any failure.  Usage: sticky_clients.py VIP COUNT STOPFILE"""
import http.client
import os
import sys
import time

vip, count, stopfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = [http.client.HTTPConnection(vip, 80, timeout=5) for _ in range(count)]
owner = [None] * count
requests = failures = 0
while not os.path.exists(stopfile):
    for i, c in enumerate(conns):
        try:
            c.request("GET", "/")
            name = c.getresponse().read().decode().strip()
        except Exception as e:
            failures += 1
            print(f"connection {i}: {e!r}")
            continue
        requests += 1
        if owner[i] is None:
            owner[i] = name
        elif owner[i] != name:
            failures += 1
            print(f"connection {i} moved from {owner[i]} to {name}")
    time.sleep(0.01)
print(f"{count} connections, {requests} requests, {failures} failures, "
      f"backends {sorted(set(owner))}")
sys.exit(1 if failures else 0)
