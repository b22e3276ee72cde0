#!/usr/bin/env bash
# IPIP on the wire: packets for an ipip service, captured on the backends'
# bridge, must be dissected by tshark as IPv4-in-IPv4 from the balancer's
# address to a backend, with a valid outer checksum, TTL 64, and the
# client's packet unchanged inside (addresses, ports, TCP checksum).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

topology_up 3
start_dataplane "$ROOT/tests/integration/config/static.ini"
TUNNEL_VIP=10.99.0.101

ip netns exec fc-net tshark -i br0 -f "ip proto 4" -c 5 -a duration:15 \
	-o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -T fields \
	-E separator='|' -e ip.src -e ip.dst -e ip.proto -e ip.ttl \
	-e ip.checksum.status -e tcp.dstport -e tcp.checksum.status \
	>"$WORK/tshark.txt" 2>"$WORK/tshark.err" &
capture=$!
sleep 2
# the backends cannot answer: each try is a SYN that ends in a timeout
for ((i = 0; i < 5; i++)); do
	client curl -s -m 1 -o /dev/null "http://$TUNNEL_VIP/" || true
done
wait "$capture" || true
lines=$(grep -c . "$WORK/tshark.txt" || true)
((lines >= 3)) || fail "tshark saw $lines IPIP packets: $(cat "$WORK/tshark.err")"
while IFS='|' read -r src dst proto ttl ipsum port tcpsum; do
	# two IP layers: outer, then inner
	[[ $src == 10.99.0.1,10.99.0.2 ]] || fail "addresses $src -> $dst"
	[[ $dst == 10.99.0.1[123],$TUNNEL_VIP ]] || fail "addresses $src -> $dst"
	[[ $proto == 4,6 ]] || fail "protocols $proto, not IPIP carrying TCP"
	[[ ${ttl%%,*} == 64 ]] || fail "outer TTL $ttl"
	[[ $ipsum == 1,1 ]] || fail "IP checksums not good: $ipsum (1 = good)"
	[[ $port == 80 && $tcpsum == 1 ]] || fail "inner TCP port $port, checksum $tcpsum"
done <"$WORK/tshark.txt"
pass "$lines IPIP packets: 10.99.0.1 -> backend, TTL 64, checksums good, the client's TCP SYN to $TUNNEL_VIP:80 inside"
