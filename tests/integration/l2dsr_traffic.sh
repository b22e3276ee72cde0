#!/usr/bin/env bash
# Real traffic through fulcrum-dataplane on an af_packet port: curl, wrk
# and UDP clients in one namespace, nginx backends in three others, L2
# direct server return. Checks that every request succeeds, that the flows
# of 10,000 new connections split within 10% of equal, that UDP is
# balanced too, that the host's own address is reached through the
# exception tap, and that malformed frames are counted and dropped while
# service goes on.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

topology_up 3
start_dataplane "$ROOT/tests/integration/config/static.ini"

# ARP for the VIP is answered by the balancer, not by a backend
client ping -c 1 -W 2 10.99.0.1 >/dev/null || fail "host address unreachable"
out=$(client curl -sS -m 5 "http://$VIP/") || fail "curl to the VIP failed"
[[ $out == be[1-3] ]] || fail "unexpected answer '$out'"
lb_mac=$(ip netns exec fc-lb cat /sys/class/net/fx-lan/address)
vip_mac=$(client ip neigh show "$VIP" | awk '{print $5}')
[[ $vip_mac == "$lb_mac" ]] || fail "VIP resolves to $vip_mac, not the balancer ($lb_mac)"
pass "curl answered by $out; the VIP resolves to the balancer"

# At least 10,000 connections, one request each, in short runs of wrk
# (it always runs out its duration) until the backends have seen enough
clear_access_logs
for ((run = 0; run < 30; run++)); do
	client wrk -t1 -c16 -d2s -H 'Connection: close' --timeout 5s \
		"http://$VIP/" >"$WORK/wrk.txt" 2>&1 ||
		fail "wrk failed: $(cat "$WORK/wrk.txt")"
	grep -q 'Socket errors\|Non-2xx' "$WORK/wrk.txt" &&
		fail "wrk saw errors: $(cat "$WORK/wrk.txt")"
	(($(per_backend | awk '{s += $2} END {print s}') >= 10000)) &&
		break
done
total=$(per_backend | awk '{s += $2} END {print s}')
((total >= 10000)) || fail "only $total requests reached the backends"
# the split over flows from fixed ports (split_flows.py says why)
split=$(client $PY "$ROOT/tests/integration/split_flows.py" "$VIP" 10000 3000) ||
	fail "the flows for the split failed: $split"
while read -r name n; do
	# within 10% of an equal share of 3000
	((n >= 900 && n <= 1100)) || fail "uneven split of 3000 flows: $(xargs <<<"$split")"
done <<<"$split"
(($(wc -l <<<"$split") == 3)) || fail "not every backend took flows: $(xargs <<<"$split")"
pass "$total connections, no errors; 3000 flows split $(xargs <<<"$split")"

# UDP: every datagram answered, by every backend in turn
client /usr/bin/python3 - "$VIP" >"$WORK/udp.txt" <<'EOF' || fail "UDP: $(cat "$WORK/udp.txt")"
import collections, socket, sys
seen = collections.Counter()
for i in range(300):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping", (sys.argv[1], 5353))
    seen[s.recv(64).decode().strip()] += 1
    s.close()
print(" ".join(f"{k}={v}" for k, v in sorted(seen.items())))
sys.exit(0 if len(seen) == 3 else 1)
EOF
pass "UDP: 300 answered, $(cat "$WORK/udp.txt")"

# The host's own services, through the exception tap
ip netns exec fc-lb /usr/bin/python3 -m http.server --bind 10.99.0.1 8080 \
	>/dev/null 2>&1 &
server=$!
for ((i = 0; i < 50; i++)); do
	client curl -s -m 1 -o /dev/null http://10.99.0.1:8080/ && break
	sleep 0.1
done
client curl -sS -m 5 -o /dev/null http://10.99.0.1:8080/ ||
	fail "the balancer host's own TCP service is unreachable"
kill "$server"
pass "host traffic reaches the kernel through the exception tap"

# Malformed frames: counted and dropped, and the balancer keeps serving
client /usr/bin/python3 "$ROOT/tests/integration/send_malformed.py" eth0 "$lb_mac" "$VIP" \
	>"$WORK/malformed.txt" || fail "scapy: $(cat "$WORK/malformed.txt")"
sent_bad=$(tail -n 1 "$WORK/malformed.txt")
out=$(client curl -sS -m 5 "http://$VIP/") || fail "no service after malformed frames"
stop_dataplane
while read -r reason want; do
	[[ -n $want ]] || continue
	got=$(awk -v r="$reason" '$1 == "drop" && $2 == r {print $3}' \
		"$WORK/dataplane.log")
	((${got:-0} >= want)) ||
		fail "sent $want frames for drop reason $reason, ${got:-0} counted"
done <"$WORK/malformed.txt"
pass "$sent_bad malformed frames dropped and counted by reason; service went on"
grep '^drop' "$WORK/dataplane.log"
