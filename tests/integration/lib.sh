# Shared by the end-to-end tests: the namespace topology, a dataplane in
# fc-lb, and checks that fail the test with a message. Sourced, not run.
# Whatever happens, the EXIT trap stops the dataplane and removes the
# topology.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FULCRUM_BUILD:-$ROOT/build}
TOPOLOGY=$ROOT/scripts/topology
PY=/usr/bin/python3   # Debian's, with the standard library the tests use
WORK=$(mktemp -d /tmp/fulcrum-it.XXXXXX)
DP_PID=
FD_PID=
RUNDIR=          # a test's socket directory under /run, removed at exit
VIP=10.99.0.100

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

cleanup() {
	local rc=$?

	set +e
	# a test's own background loops (traffic, streams of changes) end
	# with it, also when it fails half-way
	kill $(jobs -p) 2>/dev/null
	stop_fulcrumd KILL
	[[ -n $RUNDIR ]] && rm -rf "$RUNDIR"
	stop_dataplane
	"$TOPOLOGY" down
	rm -rf /run/fulcrum-test     # static.ini's control socket directory
	if ((rc != 0)) && [[ -f $WORK/dataplane.log ]]; then
		echo "--- dataplane log" >&2
		tail -n 30 "$WORK/dataplane.log" >&2
	fi
	if ((rc != 0)) && [[ -f $WORK/fulcrumd.log ]]; then
		echo "--- fulcrumd log" >&2
		tail -n 30 "$WORK/fulcrumd.log" >&2
	fi
	rm -rf "$WORK"
	exit "$rc"
}

# Needs root for namespaces; elsewhere the test is skipped (77).
require_root() {
	if ((EUID != 0)); then
		echo "skip: needs root for network namespaces"
		exit 77
	fi
}

topology_up() {
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	"$TOPOLOGY" up "${1:-3}" >/dev/null
}

# try_dataplane CONFIG: starts fulcrum-dataplane in fc-lb and waits until
# it reports its ports up. Returns non-zero if it does not come up.
try_dataplane() {
	local config=$1 i

	ip netns exec fc-lb "$BUILD/fulcrum-dataplane" -c "$config" \
		>"$WORK/dataplane.log" 2>&1 &
	DP_PID=$!
	for ((i = 0; i < 200; i++)); do
		grep -q ' up$' "$WORK/dataplane.log" && return 0
		kill -0 "$DP_PID" 2>/dev/null || break
		sleep 0.1
	done
	stop_dataplane
	return 1
}

# start_dataplane CONFIG: the dataplane on lan0 with net_af_xdp, falling
# back to the config's own driver (af_packet) where AF_XDP is not to be
# had; then the host address on its exception tap.
start_dataplane() {
	local config=$1

	sed 's/^driver = af_packet$/driver = af_xdp/' "$config" >"$WORK/xdp.ini"
	if try_dataplane "$WORK/xdp.ini"; then
		DP_DRIVER=af_xdp
	else
		cp "$WORK/dataplane.log" "$WORK/dataplane-xdp.log"
		try_dataplane "$config" ||
			fail "dataplane did not come up: $(tail -n 5 "$WORK/dataplane.log")"
		DP_DRIVER=af_packet
	fi
	echo "dataplane up on lan0 with $DP_DRIVER"
	"$TOPOLOGY" host-addr
}

# Stops the dataplane with SIGINT; its final statistics end up in
# $WORK/dataplane.log.
stop_dataplane() {
	[[ -n $DP_PID ]] || return 0
	kill -INT "$DP_PID" 2>/dev/null || true
	wait "$DP_PID" 2>/dev/null || true
	DP_PID=
}

# stat NAME: a counter from the final statistics ("rx 5 tx 3 ...").
stat() {
	grep -oE "(^| )$1 [0-9]+" "$WORK/dataplane.log" | tail -n 1 |
		awk '{print $2}'
}

client() {
	ip netns exec fc-cli "$@"
}

# per_backend: for each backend, the requests it answered, from the access
# logs. A split is measured with split_flows.py instead (it says why).
per_backend() {
	local log

	for log in /run/fulcrum-topology/be*/access.log; do
		printf '%s %s\n' "$(basename "$(dirname "$log")")" "$(wc -l <"$log")"
	done
}

clear_access_logs() {
	local log

	for log in /run/fulcrum-topology/be*/access.log; do
		: >"$log"
	done
}

stop_fulcrumd() {
	[[ -n $FD_PID ]] || return 0
	kill -"${1:-INT}" "$FD_PID" 2>/dev/null || true
	wait "$FD_PID" 2>/dev/null || true
	FD_PID=
}

# Starts fulcrumd with $WORK/fulcrumd.ini in the balancer's namespace, as
# on a balancer host (its health checks leave through the exception tap),
# and waits until it answers on $FULCRUM_SOCKET.
start_fulcrumd() {
	local i

	ip netns exec fc-lb "$BUILD/controlplane/fulcrumd" -c "$WORK/fulcrumd.ini" \
		>>"$WORK/fulcrumd.log" 2>&1 &
	FD_PID=$!
	for ((i = 0; i < 50; i++)); do
		[[ -S $FULCRUM_SOCKET ]] && ctl status >/dev/null 2>&1 && return
		sleep 0.1
	done
	fail "fulcrumd did not start: $(tail -n 5 "$WORK/fulcrumd.log")"
}

ctl() { "$BUILD/controlplane/fulcrumctl" "$@"; }

now_ms() { date +%s%3N; }

# What fulcrumd says of the dataplane: "in sync", "held", ...
sync_state() {
	ctl --json status | /usr/bin/python3 -c \
		'import json,sys; print(json.load(sys.stdin)["dataplane"]["sync"])'
}

# fulcrumd_setup NAME: a dataplane and a fulcrumd of their own, cluster
# NAME in environment production: $WORK/dataplane.ini (the demo's, with
# its sockets in $RUNDIR=/run/fulcrum-NAME and file prefix fulcrum-NAME)
# and $WORK/fulcrumd.ini, its store at $STORE, to which a test adds its
# own settings. Exports FULCRUM_SOCKET for ctl.
fulcrumd_setup() {
	RUNDIR=/run/fulcrum-$1
	STORE=$WORK/store/state.db
	export FULCRUM_SOCKET=$RUNDIR/fulcrumd.sock
	sed -e "s|/run/fulcrum-demo|$RUNDIR|" -e "s|fulcrum-demo|fulcrum-$1|" \
		"$ROOT/config/dataplane.ini" >"$WORK/dataplane.ini"
	cat >"$WORK/fulcrumd.ini" <<-EOF
	[fulcrumd]
	environment = production
	cluster_id = $1
	store = $STORE
	backup = $WORK/backup/state.db
	socket = $FULCRUM_SOCKET
	dataplane_socket = $RUNDIR/dataplane.sock
	reconcile_interval_ms = 200
	audit_log = $WORK/audit.log
	freeze_file = $WORK/freeze
	plans_dir = $WORK/plans
	EOF
}
prod() { ctl --env production --reason "integration test" "$@"; }
