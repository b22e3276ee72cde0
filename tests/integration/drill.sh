#!/usr/bin/env bash
# The December 2012 outage, replayed. Traffic runs through the dataplane
# and changes keep arriving through fulcrumctl while a "maintenance"
# process, in three steps, deletes rows from the store behind fulcrumd's
# back, truncates the store file, and removes it. After each step fulcrumd
# must rebuild the store by itself within seconds (heal.h), with every
# service and backend, in sync with the dataplane; at the end no request
# failed, every answer came from a backend of the service, every
# acknowledged change is in the store's history, and the audit log holds
# each damage found, each rebuild and each change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

HEAL_WITHIN_MS=3000

# healed N: true once fulcrumd has reported N rebuilds and the store is
# whole and in sync again
healed() {
	(($(grep -c 'fulcrumd: store: DAMAGED' "$WORK/fulcrumd.log") >= $1)) &&
		[[ $(sync_state 2>/dev/null) == "in sync" ]] &&
		(($(ctl backend list web 2>/dev/null | grep -cE '^10\.99\.0\.1[123] ') == 3))
}

# maintenance STEP N DESCRIPTION COMMAND...: does the damage and waits for
# rebuild number N
maintenance() {
	local n=$1 what=$2 t0
	shift 2
	t0=$(now_ms)
	"$@"
	until healed "$n"; do
		(($(now_ms) - t0 < HEAL_WITHIN_MS)) ||
			fail "$what: not rebuilt within $HEAL_WITHIN_MS ms: $(tail -n 5 "$WORK/fulcrumd.log"); $(ctl status 2>&1)"
		sleep 0.05
	done
	steps+=("$what: rebuilt in $(($(now_ms) - t0)) ms")
}

delete_rows() {
	$PY - "$STORE" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM services")
db.commit()
db.close()
PYEOF
}

trap cleanup EXIT
cd "$ROOT"
fulcrumd_setup it-drill

"$TOPOLOGY" up 3 >/dev/null
start_dataplane "$WORK/dataplane.ini"
start_fulcrumd
prod service add web "$VIP" tcp 80 >/dev/null
for b in 11 12 13; do prod backend add web "10.99.0.$b" >/dev/null; done
client curl -sS -m 5 -o /dev/null "http://$VIP/" || fail "the service does not answer"
clear_access_logs

# traffic, and a stream of changes, all through the drill
client wrk -t1 -c8 -d14s -H 'Connection: close' --timeout 5s "http://$VIP/" \
	>"$WORK/wrk.txt" 2>&1 &
load=$!
(
	for ((i = 0; ; i++)); do
		out=$(prod --reason "drill change $i" backend set web 10.99.0.13 \
			--weight $((1 + i % 3)) 2>/dev/null) &&
			echo "$(awk '{print $2}' <<<"$out") drill change $i"
		sleep 0.1
	done
) >"$WORK/acked.txt" &
changes=$!
sleep 2
steps=()
maintenance 1 "rows deleted" delete_rows
sleep 1
maintenance 2 "store truncated" truncate -s 0 "$STORE"
sleep 1
maintenance 3 "store removed" rm -f "$STORE" "$STORE-wal" "$STORE-shm"
sleep 1
kill "$changes"
wait "$changes" 2>/dev/null || true
wait "$load" || true

grep -q 'requests in' "$WORK/wrk.txt" || fail "wrk: $(cat "$WORK/wrk.txt")"
grep -q 'Socket errors\|Non-2xx' "$WORK/wrk.txt" &&
	fail "requests failed during the drill: $(cat "$WORK/wrk.txt")"
answered=$(cat /run/fulcrum-topology/be*/access.log | wc -l)
other=$(cat /run/fulcrum-topology/be*/access.log | awk '$3 != 200' | wc -l)
((answered > 0 && other == 0)) || fail "$other of $answered answers were not 200"

# every acknowledged change, by its version and reason, in the history
ctl --json history >"$WORK/history.json"
$PY - "$WORK/acked.txt" "$WORK/history.json" <<'PYEOF' || fail "acknowledged changes lost"
import json, sys
acked = [l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines() if l]
log = {(e["version"], e["reason"]) for e in json.load(open(sys.argv[2]))["entries"]}
lost = [a for a in acked if (int(a[0]), a[1]) not in log]
if lost or len(acked) < 20:
    sys.exit(f"{len(acked)} acknowledged, lost: {lost}")
PYEOF
n_acked=$(grep -c . "$WORK/acked.txt")
[[ $(sync_state) == "in sync" ]] || fail "not in sync at the end: $(ctl status)"

# the audit log: three damages, each rebuild, every change
heals=$(grep -c '"cmd":"heal"' "$WORK/audit.log" || true)
((heals == 3)) || fail "the audit log has $heals heal entries, not 3"
for a in "written to by another\|hash to" "was cut from" "is gone"; do
	grep '"cmd":"heal"' "$WORK/audit.log" | grep -q "$a" ||
		fail "no audit entry for the damage '$a': $(grep '"cmd":"heal"' "$WORK/audit.log")"
done
(($(grep -c '"reason":"drill change' "$WORK/audit.log") >= n_acked)) ||
	fail "changes missing from the audit log"
(($(ls "$WORK/store" | grep -c '^state\.db\.damaged-[0-9TZ.]*$') == 2)) ||
	fail "the damaged files were not kept: $(ls "$WORK/store")"

pass "traffic and $n_acked acknowledged changes through three acts of maintenance:" \
	"$(printf '%s; ' "${steps[@]}")"
pass "$(grep 'requests in' "$WORK/wrk.txt" | xargs), none failed, $answered answered by backends;" \
	"every change kept; each step in the audit log; damaged files kept aside"
