"""The packets that need more than one lookup, sent from the client
namespace at the VIP. Usage: icmp_fragments.py VIP LB_MAC
  - 20 UDP datagrams of 3000 bytes, each fragmented by the client's own
    kernel: each must be answered, which a backend can do only if every
    fragment reached it;
  - for each of 8 UDP flows that a backend answered, two ICMP
    "fragmentation needed" as a router would send them to the VIP,
    quoting the backend's reply (the VIP as source) with only 8 bytes of
    UDP: they must reach that very backend;
  - ICMP errors that quote nothing usable: dropped as icmp_bad_quote.
Prints "flow PORT BACKEND" for each quoted flow, then what it sent as
"fragmented N", "pmtu N" and "bad_quote N"."""
import socket
import sys

from scapy.all import ICMP, IP, UDP, Ether, Raw, get_if_hwaddr, sendp

vip, lb_mac = sys.argv[1:3]
PORT = 5353


def ask(sport, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(2)
    try:
        s.sendto(payload, (vip, PORT))
        return s.recvfrom(64)[0].decode().strip()
    finally:
        s.close()


answered = [ask(42000 + i, b"f" * 3000) for i in range(20)]
if not all(a.startswith("be") for a in answered):
    sys.exit(f"fragmented datagrams unanswered: {answered}")

eth = Ether(dst=lb_mac, src=get_if_hwaddr("eth0"))
router = "10.99.0.2"
pmtu = []
for flow_port in range(43000, 43008):
    print("flow", flow_port, ask(flow_port, b"small"))
    quote = IP(src=vip, dst=router, flags="DF") / UDP(sport=PORT, dport=flow_port)
    pmtu += [eth / IP(src=router, dst=vip) / ICMP(type=3, code=4, nexthopmtu=1200) /
             Raw(bytes(quote)[:28])] * 2
bad = [eth / IP(src=router, dst=vip) / ICMP(type=3, code=4) / Raw(b"\x45" + b"\0" * 5),
       eth / IP(src=router, dst=vip) / ICMP(type=3, code=4)]
sendp(pmtu, iface="eth0", verbose=False)
sendp(bad * 5, iface="eth0", verbose=False)
print("fragmented", len(answered))
print("pmtu", len(pmtu))
print("bad_quote", len(bad) * 5)
