#!/usr/bin/env bash
# 100 backend changes through the dataplane's control socket (weights,
# drain and return, a backend added, drained and removed) while wrk opens
# new connections and 20 keep-alive clients hold theirs: no request may
# fail and no established connection may change backend.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

topology_up 4
start_dataplane "$ROOT/tests/integration/config/static.ini"
SOCK=/run/fulcrum-test/dataplane.sock

state=$($PY "$ROOT/tests/integration/dpctl.py" "$SOCK" '{"cmd": "state"}' |
	$PY -c 'import json, sys
s = json.load(sys.stdin)["services"]
next(x for x in s if x["name"] == "web")["extra"] = "10.99.0.14"
print(json.dumps(s))')

client $PY "$ROOT/tests/integration/sticky_clients.py" "$VIP" 20 \
	"$WORK/stop" >"$WORK/sticky.txt" 2>&1 &
sticky=$!
client wrk -t1 -c8 -d10s -H 'Connection: close' --timeout 5s "http://$VIP/" \
	>"$WORK/wrk.txt" 2>&1 &
load=$!
sleep 1
$PY "$ROOT/tests/integration/dpctl.py" "$SOCK" --churn 100 "$state" ||
	fail "the changes were not all applied"
wait "$load" || true
touch "$WORK/stop"
wait "$sticky" || fail "keep-alive clients: $(cat "$WORK/sticky.txt")"
grep -q 'Socket errors\|Non-2xx' "$WORK/wrk.txt" &&
	fail "wrk saw errors: $(cat "$WORK/wrk.txt")"
grep -q 'requests in' "$WORK/wrk.txt" || fail "wrk: $(cat "$WORK/wrk.txt")"
pass "100 changes under load: $(grep 'requests in' "$WORK/wrk.txt" | xargs), no errors"
pass "keep-alive: $(tail -n 1 "$WORK/sticky.txt")"
