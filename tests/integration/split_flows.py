"""Opens COUNT HTTP connections to VIP:80, each from its own source port
(FIRST_PORT, FIRST_PORT + 1, ...), and prints how many each backend
answered, one "NAME COUNT" line per backend, sorted by name.

Why fixed ports: the balancer spreads flows by their 5-tuple, and a split
measured over ports the client's kernel picks depends on timing (it skips
ports still in use and reuses the rest), which skews it by several per cent
from one run to the next. Ports below the kernel's ephemeral range, each
used once, make the sample a function of the balancer's table alone. A
connection that fails is retried once from the same port; a second failure
fails the run.  Usage: split_flows.py VIP FIRST_PORT COUNT"""
import collections
import concurrent.futures
import socket
import sys

vip, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def ask(port):
    for attempt in range(2):
        try:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.settimeout(5)
                s.bind(("0.0.0.0", port))
                s.connect((vip, 80))
                s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
                reply = b""
                while chunk := s.recv(4096):
                    reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(f"answered {head[:40]!r}")
            return body.decode().strip()
        except OSError as e:
            if attempt:
                raise OSError(f"port {port}: {e}") from e


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    counts = collections.Counter(pool.map(ask, range(first, first + count)))
for name in sorted(counts):
    print(name, counts[name])
