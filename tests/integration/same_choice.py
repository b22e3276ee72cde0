"""Two balancers, one answer. `make IN N VIP`: writes N TCP SYNs, each of
its own 5-tuple, to the VIP into pcap IN. `compare A B`: reads two
balancers' output pcaps and prints, per flow, whether both sent it to
the same backend (destination MAC); exits non-zero unless every flow of
A is in B with the same backend and the flows spread over more than half
of the backends seen."""
import sys
from collections import Counter

from scapy.all import IP, TCP, Ether, rdpcap, wrpcap


def flow(p):
    return (p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport)


def make(path, n, vip):
    frames = [Ether(dst="02:00:00:00:00:01", src="02:00:00:00:01:00") /
              IP(src=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", dst=vip) /
              TCP(sport=1024 + i % 60000, dport=80, flags="S")
              for i in range(1, n + 1)]
    wrpcap(path, frames)


def choices(path):
    return {flow(p): p[Ether].dst for p in rdpcap(path) if TCP in p}


def compare(a_path, b_path):
    a, b = choices(a_path), choices(b_path)
    differ = [f for f in a if b.get(f) != a[f]]
    spread = Counter(a.values())
    print(f"{len(a)} flows from A, {len(b)} from B, {len(differ)} differ; "
          f"A's backends: {' '.join(str(n) for _, n in sorted(spread.items()))}")
    return 0 if a and not differ and len(a) == len(b) and len(spread) > 5 else 1


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    sys.exit(compare(sys.argv[2], sys.argv[3]))
