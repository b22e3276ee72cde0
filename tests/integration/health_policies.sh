#!/usr/bin/env bash
# Health check kinds and what follows a failure, with a real dataplane,
# real backends and traffic (fulcrumd in the balancer's namespace):
# - HTTP: a backend whose port accepts connections but answers 503 is set
#   down, which a TCP connect check would not see;
# - UDP: a DNS-like service checked with a datagram and the expected
#   reply; a backend whose UDP server stops is set down;
# - on_backend_down = keep: a backend whose nginx stops gracefully is set
#   draining and a download in progress on it completes; with reset it is
#   set down and the same download is cut;
# - slow start: a backend back from down is given weight 25, 50, 75, 100;
# - backend drain --deadline: no new flows on it, backend list counts its
#   download among its flows, which goes on until the deadline; then it
#   is set down by user health.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

VIP2=10.99.0.101
INTERVAL_MS=500
FALL=3
RISE=2
SLACK_MS=3000
STATE=/run/fulcrum-topology

# column SERVICE ADDR N: column N (2 weight, 3 state, 4 health, 6 flows)
# of ADDR
column() {
	ctl backend list "$1" | awk -v a="$2" -v n="$3" '$1 == a {print $n}'
}

# wait_for MS DESCRIPTION COMMAND...: polls COMMAND for up to MS ms
wait_for() {
	local end=$(($(now_ms) + $1)) what=$2
	shift 2
	until "$@"; do
		(($(now_ms) < end)) || fail "$what: not within $1 ms"
		sleep 0.05
	done
}

is() { [[ $(column "$1" "$2" "$3") == "$4" ]]; }

all_up() {
	local b

	for b in 11 12 13; do is "$1" "10.99.0.$b" 4 up || return 1; done
}

# stream VIP FILE: a download of 400 kB, at the backends' 50 kB/s about
# 8 s, in the background; its backend's name lands in FILE.headers,
# "CODE SIZE" and curl's exit in FILE. Its pid in STREAM: a plain `wait`
# would wait for the dataplane and fulcrumd too
stream() {
	client sh -c "curl -sS -m 20 -r 0-399999 -D $2.headers -o /dev/null \
		-w '%{http_code} %{size_download}' http://$1/stream >$2 2>$2.err;
		echo \" rc=\$?\" >>$2" &
	STREAM=$!
}

# backend_of FILE: the backend number (1..3) a stream landed on
backend_of() {
	local i

	for ((i = 0; i < 60; i++)); do
		grep -qi '^x-backend:' "$1.headers" 2>/dev/null && break
		sleep 0.05
	done
	grep -i '^x-backend:' "$1.headers" | tr -dc '0-9'
}

# graceful I: nginx of backend I stops listening at once but finishes
# what it serves (SIGQUIT), as a backend taken out of service would
graceful() { kill -QUIT "$(cat "$STATE/be$1/nginx.pid")"; }

# restart I: nginx again, after a graceful stop. The old one may hold a
# connection whose client has gone: the client's reset went to the VIP,
# and so to another backend
restart() {
	"$TOPOLOGY" backend-kill "$1"
	"$TOPOLOGY" backend-start "$1"
}

trap cleanup EXIT
cd "$ROOT"
fulcrumd_setup it-policies
cat >>"$WORK/fulcrumd.ini" <<EOF
health_interval_ms = $INTERVAL_MS
health_timeout_ms = 250
health_rise = $RISE
health_fall = $FALL
; each backend goes down and up several times here, on purpose
health_flap_max = 0

[health web]
check = http
http_path = /
http_status = 200
on_backend_down = keep
slow_start_s = 4

[health web2]
on_backend_down = reset

[health dns]
check = udp
udp_payload = ping
udp_expect = be
EOF

"$TOPOLOGY" up 3 >/dev/null
start_dataplane "$WORK/dataplane.ini"
start_fulcrumd

prod service add web "$VIP" tcp 80 >/dev/null
prod service add web2 "$VIP2" tcp 80 >/dev/null
prod service add dns "$VIP" udp 5353 >/dev/null
for s in web web2 dns; do
	for b in 11 12 13; do prod backend add "$s" "10.99.0.$b" --weight 100 >/dev/null; done
done
for s in web web2 dns; do
	wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "$s all up" all_up "$s"
done
# added beside 10.99.0.11, the other two start slowly
for b in 12 13; do wait_for 8000 "web 10.99.0.$b ramped" is web "10.99.0.$b" 2 100; done
out=$(client $PY -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], 5353)); print(s.recv(100).decode().strip())
' "$VIP") || true
[[ $out == be* ]] || fail "the UDP service does not answer through the VIP: '$out'"
pass "web (http), web2 (tcp) and dns (udp, reply '$out' through the VIP) all up"

# HTTP: port open, wrong status. The stand-in listens beside nginx
# (SO_REUSEPORT, as nginx does) before nginx stops, so that the port is
# never closed
v=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
ip netns exec fc-be2 $PY -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 80)); s.listen(64)
open(sys.argv[1], "w").close()
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")
    except OSError:
        pass   # a TCP check, which resets at once
    c.close()
' "$WORK/fake-listening" &
fake=$!
wait_for 5000 "the 503 stand-in listening" test -e "$WORK/fake-listening"
"$TOPOLOGY" backend-stop 2
wait_for $((FALL * INTERVAL_MS + SLACK_MS)) "web 10.99.0.12 set draining" \
	is web 10.99.0.12 3 draining
ctl history | grep -q "health: 10.99.0.12:80 failed $FALL checks (HTTP status 503, not 200), draining: on_backend_down = keep (automatic)" ||
	fail "no HTTP failure in the history: $(ctl history | tail -n 6)"
# a TCP connect check on the same port passes: web2 keeps it
is web2 10.99.0.12 3 active || fail "web2 (tcp) took 10.99.0.12 down: $(ctl backend list web2)"
kill "$fake"; wait "$fake" 2>/dev/null || true
"$TOPOLOGY" backend-start 2
wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "web 10.99.0.12 back" is web 10.99.0.12 3 active
pass "http: a port answering 503 is taken out of web (draining, keep), while web2's TCP check passes it"

# slow start on its return
wait_for 8000 "web 10.99.0.12 ramped to 100" is web 10.99.0.12 2 100
weights=$(ctl --json history | $PY -c 'import json,sys
print(" ".join(str(o["weight"]) for e in json.load(sys.stdin)["entries"]
	if e["user"] == "health" and e["version"] > int(sys.argv[1])
	for o in e["ops"]
	if o.get("addr") == "10.99.0.12" and o.get("service") == "web" and "weight" in o))' "$v")
[[ $weights == "25 50 75 100" ]] || fail "slow start weights: '$weights'"
pass "slow start: back from down, 10.99.0.12 went through weights $weights by user health"

# UDP
"$TOPOLOGY" backend-stop 3
wait_for $((FALL * INTERVAL_MS + SLACK_MS)) "dns 10.99.0.13 set down" is dns 10.99.0.13 3 down
ctl history | grep -q "health: 10.99.0.13:5353 failed $FALL checks" ||
	fail "no UDP failure in the history: $(ctl history | tail -n 4)"
"$TOPOLOGY" backend-start 3
wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "dns 10.99.0.13 back" is dns 10.99.0.13 3 active
for s in web web2; do
	wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "$s all up again" all_up "$s"
	wait_for 8000 "$s 10.99.0.13 at full weight" is "$s" 10.99.0.13 2 100
done
pass "udp: backend 3's UDP server stopped: dns set it down, and active again once started"

# keep: the download on a failing backend completes
stream "$VIP" "$WORK/keep"
b=$(backend_of "$WORK/keep")
[[ -n $b ]] || fail "the download on web did not start: $(cat "$WORK/keep.err")"
graceful "$b"
wait_for $((FALL * INTERVAL_MS + SLACK_MS)) "web 10.99.0.1$b set draining" \
	is web "10.99.0.1$b" 3 draining
wait "$STREAM"
[[ $(cat "$WORK/keep") == "206 400000 rc=0" ]] ||
	fail "keep: the download was not completed: $(cat "$WORK/keep" "$WORK/keep.err")"
pass "keep: backend $b stopped listening mid-download, set draining; the 400 kB download completed on it"
restart "$b"
for s in web web2; do
	wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "$s all up again" all_up "$s"
done

# reset: the same on web2 cuts the download
stream "$VIP2" "$WORK/reset"
b=$(backend_of "$WORK/reset")
[[ -n $b ]] || fail "the download on web2 did not start: $(cat "$WORK/reset.err")"
graceful "$b"
wait_for $((FALL * INTERVAL_MS + SLACK_MS)) "web2 10.99.0.1$b set down" \
	is web2 "10.99.0.1$b" 3 down
wait "$STREAM"
[[ $(cat "$WORK/reset") != "206 400000 rc=0" ]] ||
	fail "reset: the download went on after its backend was set down"
pass "reset: backend $b set down mid-download; the download was cut ($(cat "$WORK/reset"))"
restart "$b"
for s in web web2; do
	wait_for $((RISE * INTERVAL_MS + SLACK_MS)) "$s all up again" all_up "$s"
done

# drain with a deadline
stream "$VIP2" "$WORK/drain"
b=$(backend_of "$WORK/drain")
[[ -n $b ]] || fail "the download for the drain did not start: $(cat "$WORK/drain.err")"
ctl backend drain web2 "10.99.0.1$b" --deadline 0 2>/dev/null &&
	fail "--deadline 0 was accepted"
ctl backend set web2 "10.99.0.1$b" --deadline 5 2>/dev/null &&
	fail "--deadline with backend set was accepted"
t0=$(now_ms)
prod backend drain web2 "10.99.0.1$b" --deadline 3 >/dev/null
ctl backend list web2 | grep "^10.99.0.1$b " | grep -q 'down at its drain deadline (3s)' ||
	fail "backend list does not show the deadline: $(ctl backend list web2)"
flows=$(column web2 "10.99.0.1$b" 6)
((flows >= 1)) || fail "backend list shows no flow on the draining backend: $(ctl backend list web2)"
for i in 1 2 3 4 5 6; do
	got=$(client curl -sS -m 2 "http://$VIP2/") || fail "curl during the drain"
	[[ $got != "be$b" ]] || fail "a new connection went to the draining backend"
done
sleep 1
[[ ! -s $WORK/drain ]] || fail "the download ended during the drain: $(cat "$WORK/drain")"
wait_for 5000 "web2 10.99.0.1$b down at its deadline" is web2 "10.99.0.1$b" 3 down
ms=$(($(now_ms) - t0))
((ms >= 3000)) || fail "set down after $ms ms, before its deadline"
ctl history | grep -q "health: 10.99.0.1$b:80 drained 3 s ago: its deadline has passed (automatic)" ||
	fail "no deadline change in the history: $(ctl history | tail -n 4)"
wait "$STREAM"
[[ $(cat "$WORK/drain") != "206 400000 rc=0" ]] ||
	fail "the download outlived the drain's deadline"
pass "drain --deadline 3: $flows flow(s) on it in backend list, new connections elsewhere, the download went on, then set down after $ms ms by health"
