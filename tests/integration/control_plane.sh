#!/usr/bin/env bash
# fulcrumd and fulcrumctl with a real dataplane and real traffic:
# - changes through fulcrumctl go live; bad ones are refused whole;
# - a script meant for staging changes nothing in production;
# - `apply -f --dry-run` shows a plan and changes nothing;
# - SIGKILL of fulcrumd amid a stream of changes under wrk load: no failed
#   request, every acknowledged change still in the store, and the
#   restarted fulcrumd finds the dataplane in sync or brings it there;
# - the store deleted (the 2012 outage): the dataplane keeps serving,
#   fulcrumd holds instead of pushing an empty state, `adopt` recovers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root


trap cleanup EXIT
cd "$ROOT"
fulcrumd_setup it-1

"$TOPOLOGY" up 3 >/dev/null
start_dataplane "$WORK/dataplane.ini"
start_fulcrumd
[[ $(sync_state) == "in sync" ]] || fail "fresh start: $(ctl status)"

prod service add web "$VIP" tcp 80 >/dev/null
for b in 11 12 13; do prod backend add web "10.99.0.$b" >/dev/null; done
out=$(client curl -sS -m 5 "http://$VIP/") || fail "curl after fulcrumctl setup"
pass "service added with fulcrumctl answers ($out); version $(ctl status | awk '/^store/ {print $3}')"

# refusals change nothing
v0=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
ctl --env staging --reason "staging cleanup" service del web 2>"$WORK/err" &&
	fail "a staging-targeted change was accepted by production"
grep -q "production" "$WORK/err" && grep -q "staging" "$WORK/err" ||
	fail "refusal does not name both environments: $(cat "$WORK/err")"
ctl service del web 2>/dev/null && fail "a change without --env was accepted"
prod backend add web 10.99.0.300 2>/dev/null && fail "a bad address was accepted"
prod service add web2 "$VIP" tcp 80 2>/dev/null && fail "a duplicate VIP was accepted"
prod backend add nosuch 10.99.0.11 2>/dev/null && fail "an unknown service was accepted"
prod service del web 2>/dev/null && fail "deleting the last service was not held back"
v1=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
((v0 == v1)) || fail "refused changes moved the version from $v0 to $v1"
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "service lost after refusals"
pass "staging script, missing env, bad address, duplicate VIP, unknown service, emptying: all refused, version still $v1"

# declarative apply: a plan first, then the change
ctl --json service list | $PY -c 'import json,sys
s = json.load(sys.stdin)
s["services"][0]["backends"][0]["weight"] = 3
print(json.dumps(s))' >"$WORK/desired.json"
ctl --env production apply -f "$WORK/desired.json" --dry-run >"$WORK/plan.txt"
grep -q backend_set "$WORK/plan.txt" || fail "dry run shows no plan: $(cat "$WORK/plan.txt")"
v2=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
((v2 == v1)) || fail "a dry run changed the version"
prod apply -f "$WORK/desired.json" >/dev/null || fail "apply failed"
prod apply -f "$WORK/desired.json" | grep -q "no change" || fail "apply is not idempotent"
pass "apply -f: dry run plans without changing, apply commits once"

# SIGKILL amid changes, under load
client wrk -t1 -c8 -d8s -H 'Connection: close' --timeout 5s "http://$VIP/" \
	>"$WORK/wrk.txt" 2>&1 &
load=$!
acked=()
for ((change = 0; change < 60; change++)); do
	if ((change == 30)); then
		stop_fulcrumd KILL
		start_fulcrumd
	fi
	if out=$(prod backend set web 10.99.0.12 --weight $((1 + change % 5)) 2>/dev/null); then
		acked+=("$(awk '{print $2}' <<<"$out")")
	fi
done
wait "$load" || true
grep -q 'Socket errors\|Non-2xx' "$WORK/wrk.txt" &&
	fail "requests failed around the SIGKILL: $(cat "$WORK/wrk.txt")"
ctl --json history >"$WORK/history.json"
for v in "${acked[@]}"; do
	$PY - "$v" "$WORK/history.json" <<'EOF' || fail "acknowledged version $v is missing from the store"
import json, sys
v, path = int(sys.argv[1]), sys.argv[2]
sys.exit(0 if any(e["version"] == v for e in json.load(open(path))["entries"]) else 1)
EOF
done
[[ $(sync_state) == "in sync" ]] || fail "after restart: $(ctl status)"
pass "SIGKILL amid ${#acked[@]} acknowledged changes under load: $(grep 'requests in' "$WORK/wrk.txt" | xargs), none failed, every change kept, in sync"

# the store deleted while fulcrumd is down
stop_fulcrumd KILL
rm -rf "$WORK/store" "$WORK/backup"
start_fulcrumd
[[ $(sync_state) == "held" ]] || fail "an empty store was not held back: $(ctl status)"
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "the dataplane stopped serving"
prod adopt >/dev/null || fail "adopt failed"
[[ $(sync_state) == "in sync" ]] || fail "after adopt: $(ctl status)"
ctl backend list web | grep -q "10.99.0.12" || fail "adopted state lacks the backends"
pass "store deleted: dataplane served on, fulcrumd held, adopt recovered the live state"

# freeze: nothing changes, traffic goes on, and the audit log has it all
ctl --env production freeze >/dev/null 2>&1 && fail "a freeze without a reason was accepted"
ctl --env production --reason "incident drill" freeze >/dev/null || fail "freeze failed"
prod backend set web 10.99.0.12 --weight 4 2>"$WORK/err" &&
	fail "a change went through a freeze"
grep -q "frozen by" "$WORK/err" || fail "the refusal does not say frozen: $(cat "$WORK/err")"
ctl status | grep -q "^FROZEN" || fail "status does not show the freeze"
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "traffic stopped during a freeze"
stop_fulcrumd
start_fulcrumd
prod backend set web 10.99.0.12 --weight 4 2>/dev/null &&
	fail "the freeze did not survive a restart of fulcrumd"
ctl --env production --reason "drill over" unfreeze >/dev/null || fail "unfreeze failed"
prod backend set web 10.99.0.12 --weight 4 >/dev/null || fail "no change after unfreeze"
grep -q '"cmd":"freeze"' "$WORK/audit.log" && grep -q '"allowed":false' "$WORK/audit.log" ||
	fail "the audit log misses the freeze or the refusals"
pass "freeze held across a restart, refused changes, traffic went on; all in the audit log"

# restore: a backend deleted by mistake comes back through a plan
before=$(ctl --json status | $PY -c 'import json,sys; print(json.load(sys.stdin)["store"]["version"])')
prod backend del web 10.99.0.13 >/dev/null || fail "backend del"
prod backend set web 10.99.0.12 --weight 2 >/dev/null || fail "a later change"
prod plan restore --to "$before" --replay-after >"$WORK/plan.txt" 2>&1 ||
	fail "plan restore: $(cat "$WORK/plan.txt")"
id=$(sed -n 's/^plan \([0-9]*\) .*/\1/p' "$WORK/plan.txt")
grep -q "backend_add" "$WORK/plan.txt" || fail "the plan does not bring the backend back: $(cat "$WORK/plan.txt")"
prod apply "$id" >/dev/null || fail "apply plan $id"
ctl backend list web | grep -q "10.99.0.13" || fail "10.99.0.13 not restored"
ctl --json service show web | grep -q '"weight": 2' || fail "the later weight change was not merged back"
prod apply "$id" 2>/dev/null && fail "a plan was carried out twice"
pass "restore --to $before --replay-after as plan $id: the deleted backend is back, the later change kept"

# restore to a time: the plan takes back what changed since then
sleep 1.1
when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.1
prod backend set web 10.99.0.12 --weight 3 >/dev/null || fail "a change after $when"
prod restore --to "$when" >"$WORK/plan.txt" 2>&1 || fail "restore --to $when: $(cat "$WORK/plan.txt")"
grep -q 'backend_set.*"weight":2' "$WORK/plan.txt" ||
	fail "restore --to $when does not set the weight back: $(cat "$WORK/plan.txt")"
rc=0
prod restore --to yesterday >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "restore --to yesterday: exit $rc, not 2"
pass "restore --to $when (a time) plans the change since then back; a bad time is refused"

# weights: 1, 1 and 2 split new connections 25%, 25% and 50%
prod backend set web 10.99.0.11 --weight 1 >/dev/null
prod backend set web 10.99.0.12 --weight 1 >/dev/null
prod backend set web 10.99.0.13 --weight 2 >/dev/null
split=$(client $PY "$ROOT/tests/integration/split_flows.py" "$VIP" 10000 4000) ||
	fail "the flows for the split failed: $split"
read -r n1 n2 n3 total < <(awk '{n[NR] = $2; s += $2} END {print n[1], n[2], n[3], s}' <<<"$split")
# each share within 10% of what its weight asks
for pair in "$n1 1" "$n2 1" "$n3 2"; do
	read -r n w <<<"$pair"
	((n * 4 * 10 >= total * w * 9 && n * 4 * 10 <= total * w * 11)) ||
		fail "weights 1:1:2 gave $n1:$n2:$n3 of $total"
done
pass "weights 1:1:2 split $total flows $n1:$n2:$n3"
