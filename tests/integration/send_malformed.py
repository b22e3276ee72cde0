"""Sends malformed frames at the balancer's port, COPIES of each, and
prints one line per drop reason the dataplane should count them under
("bad_ihl 10"), then the total. Usage: send_malformed.py IFACE MAC VIP"""
import sys

from scapy.all import (IP, IPv6, TCP, UDP, Ether, IPv6ExtHdrRouting, Raw,
                       get_if_hwaddr, sendp)

COPIES = 10
iface, mac, vip = sys.argv[1:4]
# an explicit source: a bridge drops frames from 00:00:00:00:00:00
src = get_if_hwaddr(iface)
eth = Ether(dst=mac, src=src, type=0x0800)
tcp_syn = IP(dst=vip) / TCP(dport=80, flags="S")


def raw_ip(**fields):
    """An IPv4 packet whose header fields are left exactly as given."""
    return bytes(IP(dst=vip, **fields) / TCP(dport=80, flags="S"))


cases = {
    "truncated": [bytes(eth / tcp_syn)[:14 + 10]],
    "bad_ihl": [bytes(eth) + raw_ip(ihl=3)],
    "bad_ip_len": [bytes(eth) + raw_ip(len=400)],
    "bad_ip_csum": [bytes(eth) + raw_ip(chksum=0x1234)],
    "bad_tcp_doff": [bytes(eth / IP(dst=vip) / TCP(dport=80, dataofs=2))],
    "bad_udp_len": [bytes(eth / IP(dst=vip) / UDP(dport=5353, len=0) / Raw(b"x" * 8)),
                    bytes(eth / IP(dst=vip) / UDP(dport=5353, len=200) / Raw(b"x" * 8))],
    "unknown_ethertype": [bytes(Ether(dst=mac, src=src, type=0x88B5) / Raw(b"\0" * 46))],
    "ipv6_ext_chain": [bytes(Ether(dst=mac, src=src) / IPv6(dst="fd99::100") / IPv6ExtHdrRouting(len=200))],
    "no_service": [bytes(eth / IP(dst=vip) / TCP(dport=81, flags="S"))],
}
frames = [f for fs in cases.values() for f in fs for _ in range(COPIES)]
sendp(frames, iface=iface, verbose=False)
for reason, fs in cases.items():
    print(reason, len(fs) * COPIES)
print(len(frames))
