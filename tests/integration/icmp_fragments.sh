#!/usr/bin/env bash
# Fragments and ICMP about VIP flows, handled as docs/architecture.md
# says: every fragment of a datagram meets at one backend (the backends
# answer datagrams that the client's kernel cut in three); "fragmentation
# needed" about a flow reaches the backend that owns it, seen on the
# backends' bridge; ICMP errors that quote nothing usable are dropped and
# counted; the VIP answers ping. The balancer serves on throughout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

topology_up 3
start_dataplane "$ROOT/tests/integration/config/static.ini"
lb_mac=$(ip netns exec fc-lb cat /sys/class/net/fx-lan/address)

client ping -c 3 -i 0.2 -W 2 "$VIP" >"$WORK/ping.txt" || fail "no echo reply from the VIP: $(cat "$WORK/ping.txt")"
pass "the VIP answers ping: $(grep -o '[0-9]* received' "$WORK/ping.txt")"

ip netns exec fc-net tshark -l -i br0 -f "icmp and ether src $lb_mac" -a duration:15 \
	-T fields -E separator='|' -e eth.dst -e icmp.type -e udp.dstport \
	>"$WORK/icmp.txt" 2>"$WORK/icmp.err" &
capture=$!
sleep 3
client /usr/bin/python3 "$ROOT/tests/integration/icmp_fragments.py" "$VIP" "$lb_mac" \
	>"$WORK/sent.txt" 2>&1 || fail "$(cat "$WORK/sent.txt")"
pass "20 datagrams of 3000 bytes, in fragments, each answered by a backend"
out=$(client curl -sS -m 5 "http://$VIP/") || fail "no service after the ICMP errors"
sleep 1
kill -INT "$capture" 2>/dev/null || true
wait "$capture" || true

flows=0
while read -r _ flow_port owner; do
	mac=$(ip -n "fc-$owner" link show eth0 | awk '/link\/ether/ {print $2}')
	n=$(grep -c "^$mac|3|$flow_port$" "$WORK/icmp.txt" || true)
	((n == 2)) || fail "2 'fragmentation needed' about the flow of $owner from port $flow_port, $n reached its MAC $mac: $(cat "$WORK/icmp.txt")"
	flows=$((flows + 1))
	owners+=("$owner")
done < <(grep '^flow ' "$WORK/sent.txt")
((flows == 8)) || fail "$flows flows answered: $(cat "$WORK/sent.txt")"
(($(grep -c . "$WORK/icmp.txt") == 16)) || fail "ICMP left the balancer that should not have: $(cat "$WORK/icmp.txt")"
pass "16 'fragmentation needed' quoting 8 bytes of 8 UDP flows: each to its flow's backend (${owners[*]})"

stop_dataplane
# the statistics line "icmp echo 3 pmtu 5 fragments 60"
for want in "fragments 40" "pmtu 16" "echo 3"; do
	read -r name n <<<"$want"
	got=$(stat "$name" || true)
	((${got:-0} >= n)) || fail "$name: ${got:-0}, at least $n expected"
done
bad=$(awk '$1 == "drop" && $2 == "icmp_bad_quote" {print $3}' "$WORK/dataplane.log")
((${bad:-0} == 10)) || fail "10 ICMP errors without a usable quote sent, ${bad:-0} dropped as icmp_bad_quote"
pass "counted: fragments forwarded $(stat fragments), PMTU errors steered $(stat pmtu)," \
	"echo replies $(stat echo), icmp_bad_quote $bad; the service answered ($out)"
