#!/usr/bin/env bash
# Active health checks with a real dataplane, real backends and traffic.
# fulcrumd runs in the balancer's namespace, so that its checks leave
# through the exception tap (10.99.0.1), as on a real balancer:
# - a backend whose nginx stops is set down within fall x interval, by
#   user "health", and new connections then see no error at all;
# - started again, it is set active within rise x interval;
# - all three killed at once: none is taken down (fail-open), and status and
#   backend list say so; started again, all pass;
# - a drain under load ends at its deadline with no failed request.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

INTERVAL_MS=500
RISE=2
FALL=5     # wider than the spread of three nginx exits (up to 1.5 s each)
SLACK_MS=3000     # nginx takes up to 1.5 s to exit; checks, the commit


# column ADDR N: column N (3 state, 4 health) of ADDR in `backend list web`
column() {
	ctl backend list web | awk -v a="$1" -v n="$2" '$1 == a {print $n}'
}

# wait_until START MS DESCRIPTION COMMAND...: polls COMMAND until it
# succeeds; fails the test MS milliseconds after START (now_ms). Prints the
# milliseconds from START.
wait_until() {
	local start=$1 limit=$2 what=$3
	shift 3
	until "$@"; do
		(($(now_ms) - start < limit)) || fail "$what: not within $limit ms"
		sleep 0.05
	done
	echo $(($(now_ms) - start))
}

is_state() { [[ $(column "$1" 3) == "$2" ]]; }
is_health() { [[ $(column "$1" 4) == "$2" ]]; }
all_health() {
	local b

	for b in 11 12 13; do is_health "10.99.0.$b" "$1" || return 1; done
}

# every backend active, up, and passing its latest check
all_steady() {
	local b

	for b in 11 12 13; do is_state "10.99.0.$b" active || return 1; done
	# the management protocol's "health", which fulcrumctl only summarises
	$PY - "$FULCRUM_SOCKET" <<'PYEOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd": "health", "name": "web"}\n')
b = json.loads(s.makefile().readline())["services"][0]["backends"]
sys.exit(0 if len(b) == 3 and all(x["health"] == "up" and x["fails"] == 0
                                  for x in b) else 1)
PYEOF
}

# wrk_errors FILE: the error lines of a wrk report, empty when none
wrk_errors() { grep -E 'Socket errors|Non-2xx' "$1" || true; }

trap cleanup EXIT
cd "$ROOT"
fulcrumd_setup it-health
cat >>"$WORK/fulcrumd.ini" <<EOF
health_interval_ms = $INTERVAL_MS
health_timeout_ms = 250
health_rise = $RISE
health_fall = $FALL
EOF

"$TOPOLOGY" up 3 >/dev/null
start_dataplane "$WORK/dataplane.ini"
start_fulcrumd

prod service add web "$VIP" tcp 80 >/dev/null
for b in 11 12 13; do prod backend add web "10.99.0.$b" >/dev/null; done
ms=$(wait_until "$(now_ms)" $((RISE * INTERVAL_MS + SLACK_MS)) "backends up" all_health up)
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "the service does not answer"
pass "3 backends checked through the exception tap, all up after $ms ms"

# one backend stops
client wrk -t2 -c16 -d4s -H 'Connection: close' --timeout 2s "http://$VIP/" \
	>"$WORK/wrk-during.txt" 2>&1 &
load=$!
sleep 0.5
t0=$(now_ms)
"$TOPOLOGY" backend-stop 2
ms=$(wait_until "$t0" $((FALL * INTERVAL_MS + SLACK_MS)) "10.99.0.12 set down" \
	is_state 10.99.0.12 down)
wait "$load" || true
client wrk -t2 -c16 -d3s -H 'Connection: close' --timeout 2s "http://$VIP/" \
	>"$WORK/wrk-after.txt" 2>&1 || true
[[ -z $(wrk_errors "$WORK/wrk-after.txt") ]] ||
	fail "errors after 10.99.0.12 was set down: $(cat "$WORK/wrk-after.txt")"
grep -q 'requests in' "$WORK/wrk-after.txt" || fail "wrk: $(cat "$WORK/wrk-after.txt")"
is_health 10.99.0.12 down || fail "10.99.0.12 is set down but its health is $(column 10.99.0.12 4)"
ctl history | grep -A1 "health: 10.99.0.12:80 failed $FALL checks (connection refused) (automatic)" |
	grep -q '"state":"down"' || fail "no automatic change in the history: $(ctl history | tail -n 4)"
ctl --json history | $PY -c 'import json,sys
e = json.load(sys.stdin)["entries"][-1]
sys.exit(0 if e["user"] == "health" and e["automatic"] else 1)' ||
	fail "the last change is not by user health"
pass "backend 2 stopped: set down after $ms ms (fall $FALL x ${INTERVAL_MS} ms) by user health;" \
	"wrk meanwhile: $(wrk_errors "$WORK/wrk-during.txt" | xargs | sed 's/^$/no errors/');" \
	"then 3 s of new connections: $(grep 'requests in' "$WORK/wrk-after.txt" | xargs), no error"

# back again
t0=$(now_ms)
"$TOPOLOGY" backend-start 2
pid=$(cat /run/fulcrum-topology/be2/nginx.pid) || fail "backend-start left no pid file"
kill -0 "$pid" || fail "nginx of backend 2 (pid $pid) is not running"
ms=$(wait_until "$t0" $((RISE * INTERVAL_MS + SLACK_MS)) "10.99.0.12 set active" \
	is_state 10.99.0.12 active)
ctl history | grep -q 'health: 10.99.0.12:80 passed 2 checks (automatic)' ||
	fail "no automatic change bringing it back: $(ctl history | tail -n 4)"
client curl -sS -m 2 http://10.99.0.12/ | grep -q be2 || fail "backend 2 does not answer"
pass "backend 2 started again (nginx pid $pid): set active after $ms ms (rise $RISE x ${INTERVAL_MS} ms)"

# a restart by pid file, twice in a row, leaves one nginx with its pid file
"$TOPOLOGY" backend-stop 2
"$TOPOLOGY" backend-start 2
"$TOPOLOGY" backend-start 2
kill -0 "$(cat /run/fulcrum-topology/be2/nginx.pid)" ||
	fail "nginx of backend 2 lost its pid file on a quick restart"
(($(ip netns pids fc-be2 | xargs -r ps -o comm= -p | grep -c 'nginx') == 2)) ||
	fail "backend 2 runs other than one master and one worker: $(ip netns pids fc-be2 | xargs -r ps -o pid=,args= -p)"
pass "backend-stop then backend-start twice: one nginx, its pid file in place"

# every backend stops: fail-open. From a steady start: the quick restart
# above may have cost backend 2 enough checks to be set down, and one not
# yet back when the others fail stays down, rightly, since it went down
# while the others passed.
wait_until "$(now_ms)" $(((FALL + RISE) * INTERVAL_MS + SLACK_MS)) "all up and active" all_steady >/dev/null
v=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
# all at once, as when the host or the network under them fails
t0=$(now_ms)
"$TOPOLOGY" backend-kill 1 2 3
ms=$(wait_until "$t0" $((FALL * INTERVAL_MS + SLACK_MS)) "all health down" all_health down)
sleep $((2 * INTERVAL_MS / 1000)).$((2 * INTERVAL_MS % 1000))
for b in 11 12 13; do
	is_state "10.99.0.$b" active || fail "10.99.0.$b was taken down although every backend fails"
done
v2=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
((v == v2)) || fail "fail-open changed the store from version $v to $v2"
ctl status | grep -q 'FAIL-OPEN    service web' || fail "status does not say fail-open: $(ctl status)"
ctl backend list web | grep -q 'FAIL-OPEN' || fail "backend list does not say fail-open"
grep -q 'FAIL-OPEN service web' "$WORK/fulcrumd.log" || fail "fulcrumd did not say fail-open"
pass "all 3 killed at once: health down after $ms ms, all kept active (fail-open), said by status, backend list and fulcrumd"

t0=$(now_ms)
for i in 1 2 3; do "$TOPOLOGY" backend-start "$i"; done
ms=$(wait_until "$t0" $((RISE * INTERVAL_MS + SLACK_MS)) "all health up again" all_health up)
ctl status | grep -q 'FAIL-OPEN' && fail "still fail-open: $(ctl status)"
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "the service does not answer"
pass "all 3 started again: up after $ms ms, fail-open over"

# a drain under load: new connections avoid the backend at once, those it
# has end by themselves, and when its deadline sets it down no request
# has failed
be2_log=/run/fulcrum-topology/be2/access.log
client wrk -t2 -c16 -d6s -H 'Connection: close' --timeout 2s "http://$VIP/" \
	>"$WORK/wrk-drain.txt" 2>&1 &
load=$!
sleep 1
t0=$(now_ms)
prod backend drain web 10.99.0.12 --deadline 3 >/dev/null
# what was in flight at the drain has long been answered
sleep 0.5
: >"$be2_log"
ms=$(wait_until "$t0" 6000 "10.99.0.12 set down at its deadline" \
	is_state 10.99.0.12 down)
late=$(wc -l <"$be2_log")
wait "$load" || true
grep -q 'requests in' "$WORK/wrk-drain.txt" || fail "wrk: $(cat "$WORK/wrk-drain.txt")"
[[ -z $(wrk_errors "$WORK/wrk-drain.txt") ]] ||
	fail "requests failed around the drain: $(cat "$WORK/wrk-drain.txt")"
((late == 0)) || fail "backend 2 got $late new requests while draining"
pass "drain under load, deadline 3 s: no new request on backend 2 while draining," \
	"set down after $ms ms; $(grep 'requests in' "$WORK/wrk-drain.txt" | xargs), none failed"
