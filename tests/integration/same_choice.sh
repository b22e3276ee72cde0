#!/usr/bin/env bash
# Two balancers with the same backends pick the same backend for a flow:
# that is what lets a flow move between balancer hosts (ECMP rehash, one
# host lost) without breaking. Two fulcrum-dataplane instances, each on a
# pcap port and listing the same ten backends in a different order, read
# the same 2000 SYNs of distinct 5-tuples; every flow must leave both
# towards the same backend MAC.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLOWS=2000
VIP=10.98.0.100
trap cleanup EXIT
trap 'exit 130' INT TERM

# config NAME BACKEND-ORDER...: a dataplane reading in.pcap, writing NAME.pcap
config() {
	local name=$1 i
	shift
	cat <<-INI
	[eal]
	lcores = 0-1
	file_prefix = fulcrum-same-$name
	in_memory = true
	memory_mb = 128
	[dataplane]
	workers = 1
	idle_backoff = true
	mempool_size = 4095
	conn_table_size = 8192
	control_socket = $WORK/$name.sock
	[port lan]
	driver = pcap
	pcap_rx = $WORK/in.pcap
	pcap_tx = $WORK/$name.pcap
	addr = 10.98.0.1/24
	[service web]
	vip = $VIP
	proto = tcp
	port = 80
	mode = l2dsr
	INI
	for i in "$@"; do
		printf 'backend = 10.98.0.%d mac=02:00:00:00:0b:%02x\n' $((10 + i)) "$i"
	done
}

# run NAME: one instance over the whole capture; waits until it has sent
# every flow, then stops it so that its pcap is flushed.
run() {
	local name=$1 i sent
	shift
	config "$name" "$@" >"$WORK/$name.ini"
	"$BUILD/fulcrum-dataplane" -c "$WORK/$name.ini" >"$WORK/dataplane.log" 2>&1 &
	DP_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q ' up$' "$WORK/dataplane.log" && break
		kill -0 "$DP_PID" 2>/dev/null || fail "$name did not start"
		sleep 0.1
	done
	# a pcap port reads its file at once; the wait is for the worker
	sleep 2
	stop_dataplane
	sent=$(stat tx || true)
	((${sent:-0} == FLOWS)) ||
		fail "$name sent ${sent:-0} of $FLOWS frames: $(grep -E '^(rx|drop)' "$WORK/dataplane.log")"
	mv "$WORK/dataplane.log" "$WORK/$name.log"
}

"$PY" "$ROOT/tests/integration/same_choice.py" make "$WORK/in.pcap" "$FLOWS" "$VIP"
run a 1 2 3 4 5 6 7 8 9 10
run b 7 3 10 1 9 2 8 4 6 5
out=$("$PY" "$ROOT/tests/integration/same_choice.py" compare "$WORK/a.pcap" "$WORK/b.pcap") ||
	fail "the two balancers disagree: $out"
pass "two balancers, backends listed in other orders: $out"
