#!/usr/bin/env bash
# Encapsulation on the wire, IPIP and GUE: the client's SYNs to a service
# of each mode are captured twice, as the client sent them and as the
# balancer sent them on the backends' bridge. tshark must dissect the
# latter as IPv4-in-IPv4, or as IPv4 in GUE in UDP (tests/integration/
# gue.lua, since tshark has no GUE dissector of its own), from the
# balancer's address to a backend, outer checksum good and TTL 64, with
# exactly the packets the client sent inside: the same IP ids, sequence
# numbers, lengths, TTL, addresses and ports, checksums still good.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

GUE_PORT=6080
IPIP_VIP=10.99.0.101
GUE_VIP=10.99.0.102
TSHARK=(tshark -l -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE
	-X "lua_script:$ROOT/tests/integration/gue.lua" -X "lua_script1:$GUE_PORT"
	-T fields -E separator='|')

topology_up 3
start_dataplane "$ROOT/tests/integration/config/static.ini"

# sent VIP: what the client sends to VIP:80, one line per SYN
sent_fields=(-e ip.id -e tcp.seq_raw -e ip.len -e ip.ttl -e ip.src -e ip.dst
	-e tcp.dstport)

# check_capture MODE VIP FILTER: five connection attempts
# to VIP, captured on both sides; fails unless every SYN the client sent
# left the balancer encapsulated as MODE describes.
check_capture() {
	local mode=$1 vip=$2 filter=$3 i n
	local fields=(-e ip.src -e ip.dst -e ip.proto -e ip.ttl -e ip.checksum.status
		-e udp.dstport -e gue.valid -e gue.proto
		-e ip.id -e tcp.seq_raw -e ip.len -e tcp.dstport -e tcp.checksum.status)

	ip netns exec fc-net "${TSHARK[@]}" -i br0 -f "$filter" -a duration:12 \
		"${fields[@]}" >"$WORK/$mode-wire.txt" 2>"$WORK/$mode-wire.err" &
	local wire=$!
	client "${TSHARK[@]}" -i eth0 -f "tcp dst port 80 and dst host $vip" \
		-a duration:12 "${sent_fields[@]}" >"$WORK/$mode-sent.txt" \
		2>"$WORK/$mode-sent.err" &
	local sent=$!
	# both captures running before the first SYN: tshark says so on
	# stderr, after a start-up that a busy host can stretch past seconds
	for ((i = 0; i < 100; i++)); do
		grep -q "Capture started" "$WORK/$mode-wire.err" 2>/dev/null &&
			grep -q "Capture started" "$WORK/$mode-sent.err" 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.5
	# the backends cannot decapsulate: each try is a SYN that times out
	for ((i = 0; i < 5; i++)); do
		client curl -s -m 1 -o /dev/null "http://$vip/" || true
	done
	wait "$wire" "$sent" || true

	n=$(grep -c . "$WORK/$mode-sent.txt" || true)
	((n >= 5)) || fail "$mode: the client sent $n SYNs: $(cat "$WORK/$mode-sent.err")"
	(($(grep -c . "$WORK/$mode-wire.txt" || true) == n)) ||
		fail "$mode: $n SYNs sent, $(grep -c . "$WORK/$mode-wire.txt") encapsulated: $(cat "$WORK/$mode-wire.err")"
	while IFS='|' read -r src dst proto ttl ipsum udport gvalid gproto id seq len port tcpsum; do
		# two IP layers, outer then inner
		[[ $src == "10.99.0.1,10.99.0.2" ]] || fail "$mode: sources $src"
		[[ $dst == 10.99.0.1[123],$vip ]] || fail "$mode: destinations $dst"
		[[ ${ttl%%,*} == 64 ]] || fail "$mode: outer TTL $ttl"
		[[ $ipsum == 1,1 ]] || fail "$mode: IP checksums $ipsum (1 = good)"
		[[ $port == 80 && $tcpsum == 1 ]] ||
			fail "$mode: inner TCP port $port, checksum status $tcpsum"
		case $mode in
		ipip) [[ $proto == 4,6 && -z $udport ]] ||
			fail "ipip: protocols $proto (udp $udport), not IPIP carrying TCP" ;;
		gue) [[ $proto == 17,6 && $udport == "$GUE_PORT" && $gvalid == 1 &&
			$gproto == 4 ]] ||
			fail "gue: protocols $proto, UDP port $udport, GUE valid $gvalid proto $gproto" ;;
		esac
		# the inner packet is one the client sent, unchanged
		grep -qxF "${id#*,}|$seq|${len#*,}|${ttl#*,}|10.99.0.2|$vip|80" \
			"$WORK/$mode-sent.txt" ||
			fail "$mode: inner packet id ${id#*,} seq $seq len ${len#*,} ttl ${ttl#*,} is not one the client sent: $(cat "$WORK/$mode-sent.txt")"
	done <"$WORK/$mode-wire.txt"
	pass "$mode: $n SYNs sent, $n on the wire: 10.99.0.1 -> backend, TTL 64," \
		"checksums good, each the client's packet unchanged inside"
}

check_capture ipip "$IPIP_VIP" "ip proto 4"
check_capture gue "$GUE_VIP" "udp dst port $GUE_PORT"
