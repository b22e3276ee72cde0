#!/usr/bin/env bash
# A dataplane restarted while fulcrumd is dead warm-starts from fulcrumd's
# store: a service added through fulcrumctl answers again within seconds
# of the restart, at the store's version, the store untouched; and the
# fulcrumd that comes back finds the dataplane in sync without pushing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

FD_PID=
STORE=$WORK/state.db
export FULCRUM_SOCKET=$WORK/fulcrumd.sock FULCRUM_ENV=demo

ctl() {
	"$BUILD/controlplane/fulcrumctl" "$@"
}

dp_status() {
	$PY "$ROOT/tests/integration/dpctl.py" "$WORK/dataplane.sock" \
		'{"cmd": "status"}'
}

# field KEY...: a value from the JSON object on stdin, KEYs deep.
field() {
	$PY -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v)' "$@"
}

# start_fulcrumd LOG: runs fulcrumd and waits for its first word on the
# dataplane.
start_fulcrumd() {
	local log=$1 i

	: >"$log"
	"$BUILD/controlplane/fulcrumd" -c "$WORK/fulcrumd.ini" >"$log" 2>&1 &
	FD_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q 'fulcrumd: dataplane ' "$log" && return 0
		kill -0 "$FD_PID" 2>/dev/null || fail "fulcrumd exited"
		sleep 0.1
	done
	fail "fulcrumd did not reach the dataplane"
}

stop_fulcrumd() {
	[[ -n $FD_PID ]] || return 0
	kill -KILL "$FD_PID" 2>/dev/null || true
	wait "$FD_PID" 2>/dev/null || true
	FD_PID=
}

# lib.sh's cleanup (which shows the dataplane's log on failure), after
# fulcrumd, keeping the test's exit status.
cleanup_all() {
	local rc=$?

	set +e          # all of it must run, whatever fails on the way
	stop_fulcrumd
	((rc == 0)) || tail -n 20 "$WORK"/fulcrumd*.log >&2
	(exit "$rc")    # cleanup takes the status from $?
	cleanup
}

# curl_vip SECONDS: a request through the VIP succeeds within SECONDS.
curl_vip() {
	local deadline=$((SECONDS + $1))

	while ((SECONDS < deadline)); do
		client curl -s -m 1 "http://$VIP/" | grep -q '^be[0-9]' &&
			return 0
		sleep 0.2
	done
	return 1
}

topology_up 3
trap cleanup_all EXIT

# The demo's configs, with paths of the test's own.
sed -e 's/^file_prefix = .*/file_prefix = fulcrum-warm/' \
	-e "s|^control_socket = .*|control_socket = $WORK/dataplane.sock\\
state_store = $STORE|" \
	"$ROOT/config/dataplane.ini" >"$WORK/dataplane.ini"
sed -e "s|^store = .*|store = $STORE|" \
	-e "s|^backup = .*|backup = $WORK/backup/state.db|" \
	-e "s|^socket = .*|socket = $FULCRUM_SOCKET|" \
	-e "s|^dataplane_socket = .*|dataplane_socket = $WORK/dataplane.sock|" \
	-e "s|^audit_log = .*|audit_log = $WORK/audit.log|" \
	-e "s|^freeze_file = .*|freeze_file = $WORK/freeze|" \
	-e "s|^plans_dir = .*|plans_dir = $WORK/plans|" \
	"$ROOT/config/fulcrumd.ini" >"$WORK/fulcrumd.ini"
grep -q "^state_store = $STORE\$" "$WORK/dataplane.ini" ||
	fail "could not set state_store in the dataplane's config"

start_dataplane "$WORK/dataplane.ini"
grep -q 'no state store at' "$WORK/dataplane.log" ||
	fail "the first start should find no store"
start_fulcrumd "$WORK/fulcrumd.log"
ctl --reason "warm start test" service add web "$VIP" tcp 80 >/dev/null
for b in 11 12 13; do
	ctl --reason "warm start test" backend add web "10.99.0.$b" >/dev/null
done
curl_vip 5 || fail "no answer through the VIP with fulcrumd running"
version=$(ctl --json status | field store version)
((version == 4)) || fail "store version $version after four changes"
pass "service web with 3 backends answers through fulcrumd, version $version"

stop_fulcrumd
# fulcrumd's last commits may sit in the -wal file; the restart must
# read them there and write neither file.
sums=$(sha256sum "$STORE" "$STORE-wal")
stop_dataplane
start=$SECONDS
start_dataplane "$WORK/dataplane.ini"
curl_vip 5 || fail "no answer through the VIP after the restart"
pass "answers again $((SECONDS - start))s after the restart, fulcrumd dead"
grep -q "1 service(s) from the state store $STORE, version $version\$" \
	"$WORK/dataplane.log" ||
	fail "the dataplane does not say it took the store"
got=$(dp_status | field version)
((got == version)) || fail "the dataplane reports version $got, not $version"
[[ $(sha256sum "$STORE" "$STORE-wal") == "$sums" ]] ||
	fail "the dataplane changed fulcrumd's store"
pass "the dataplane reports the store's version $got; the store is untouched"

start_fulcrumd "$WORK/fulcrumd2.log"
grep -m 1 'fulcrumd: dataplane ' "$WORK/fulcrumd2.log" | grep -q 'in sync' ||
	fail "fulcrumd did not find the dataplane in sync at once"
ctl status | grep -q "^dataplane *in sync: runs version $version\$" ||
	fail "fulcrumctl status: $(ctl status)"
pass "fulcrumd back: dataplane in sync at version $version"
