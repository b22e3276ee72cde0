/* fulcrumctl: the operator's command line for fulcrumd (protocol in
 * mgmt.h). Tables for people by default, --json for scripts.
 *
 * Exit codes: 0 done; 1 refused by fulcrumd (nothing changed); 2 usage;
 * 3 fulcrumd unreachable; 4 committed but not live in the dataplane. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonline.h"
#include "mgmt.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_NOT_LIVE 4

struct opts {
	const char *socket;
	const char *env;
	const char *reason;
	const char *file;
	bool json;
	bool approved;
	bool dry_run;
	long weight;         /* -1: not given */
	const char *state;
	const char *mode;
	long table_size;
	long gue_port;
	const char *restore_to; /* --to: a version or a time */
	const char *deadline;   /* of a drain, in seconds; NULL: none */
	bool replay_after;
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: fulcrumctl [options] COMMAND ...\n"
"  status                                  versions, digests, dataplane sync\n"
"  stats                                   the dataplane's counters\n"
"  service list | show NAME\n"
"  service add NAME VIP PROTO PORT [--mode M] [--table-size N] [--gue-port P]\n"
"  service del NAME\n"
"  backend list SERVICE\n"
"  backend add SERVICE ADDR [--weight W] [--state S]\n"
"  backend set SERVICE ADDR [--weight W] [--state S]\n"
"  backend drain SERVICE ADDR [--deadline SECONDS]\n"
"                                          no new flows; down at the deadline\n"
"  backend del SERVICE ADDR\n"
"  history [FROM [LIMIT]]                  the change log\n"
"  diff FROM [TO]                          what changed between versions\n"
"  apply -f FILE [--dry-run]               make the state what FILE says\n"
"  plan -f FILE | [plan] restore --to VERSION|TIME [--replay-after]\n"
"    TIME: 2026-12-03T08:00:00Z (UTC), or @SECONDS since 1970\n"
"                                          a wide change, kept for approval\n"
"  plan list | plan show ID | approve ID | apply ID\n"
"  adopt                                   take the dataplane's live state in\n"
"  freeze --reason TEXT | unfreeze         stop (resume) every change\n"
"options: --socket PATH (or $FULCRUM_SOCKET), --env ENV (or $FULCRUM_ENV),\n"
"  --reason TEXT, --approved, --json\n"
"exit: 0 done, 1 refused, 2 usage, 3 unreachable, 4 committed but not live\n");
}

static char *read_file(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t cap = 4096, len = 0, n;
	char *buf = malloc(cap);

	if (!f || !buf) {
		free(buf);
		return NULL;
	}
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *more = realloc(buf, cap * 2);

			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static void print_ops(const json_t *ops)
{
	json_t *op;
	size_t i;

	if (json_array_size(ops) == 0)
		printf("  (no change)\n");
	json_array_foreach(ops, i, op) {
		json_t *rest = json_deep_copy(op);
		char *text;

		json_object_del(rest, "op");
		text = json_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS);
		printf("  %-12s %s\n",
		       json_string_value(json_object_get(op, "op")), text);
		free(text);
		json_decref(rest);
	}
}

static void print_services(const json_t *services)
{
	json_t *s;
	size_t i;

	printf("%-16s %-24s %-5s %-6s %-6s %-8s %s\n", "NAME", "VIP", "PROTO",
	       "PORT", "MODE", "BACKENDS", "ACTIVE");
	json_array_foreach(services, i, s) {
		json_t *b, *backends = json_object_get(s, "backends");
		size_t k, active = 0;

		json_array_foreach(backends, k, b)
			active += strcmp(json_string_value(json_object_get(b, "state")),
					 "active") == 0;
		printf("%-16s %-24s %-5s %-6lld %-6s %-8zu %zu\n",
		       json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "vip")),
		       json_string_value(json_object_get(s, "proto")),
		       json_integer_value(json_object_get(s, "port")),
		       json_string_value(json_object_get(s, "mode")),
		       json_array_size(backends), active);
	}
}

/* The entry of addr in a "health" response, or NULL. */
static const json_t *health_of(const json_t *health, const char *addr)
{
	json_t *s = json_array_get(json_object_get(health, "services"), 0), *b;
	size_t i;

	json_array_foreach(json_object_get(s, "backends"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "addr")), addr) == 0)
			return b;
	return NULL;
}

/* What else the checker is doing with a backend: held for flapping, a
 * slow start under way, a drain deadline. */
static void print_notes(const json_t *hb)
{
	const char *sep = "";

	if (json_is_true(json_object_get(hb, "held"))) {
		printf("held: flapping (%lld health changes)",
		       json_integer_value(json_object_get(hb, "flaps")));
		sep = "; ";
	}
	if (json_is_integer(json_object_get(hb, "slow_start_to"))) {
		printf("%sslow start to weight %lld", sep,
		       json_integer_value(json_object_get(hb, "slow_start_to")));
		sep = "; ";
	}
	if (json_is_integer(json_object_get(hb, "drain_deadline_s")))
		printf("%sdown at its drain deadline (%llds)", sep,
		       json_integer_value(json_object_get(hb, "drain_deadline_s")));
}

/* Backends with their health checks, and their counters and flows (in
 * the connection tables, not idle) from the dataplane, where it
 * answers. */
static void print_backends(const json_t *svc, const json_t *stats,
			   const json_t *health)
{
	json_t *checked = json_array_get(json_object_get(health, "services"), 0);
	const char *name = json_string_value(json_object_get(svc, "name"));
	json_t *b, *counted = NULL, *s;
	size_t i, k;

	json_array_foreach(json_object_get(stats, "services"), i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			counted = json_object_get(s, "backends");
	if (json_is_true(json_object_get(checked, "fail_open")))
		printf("FAIL-OPEN: every active backend fails its health checks; "
		       "all are kept active\n");
	else if (checked && json_is_null(json_object_get(checked, "port")))
		printf("not health-checked: a port-0 service needs a check port "
		       "([health %s] port in fulcrumd's config)\n", name);
	printf("%-40s %-7s %-9s %-7s %-12s %-8s %s\n", "BACKEND", "WEIGHT",
	       "STATE", "HEALTH", "PACKETS", "FLOWS", "NOTES");
	json_array_foreach(json_object_get(svc, "backends"), i, b) {
		const char *addr = json_string_value(json_object_get(b, "addr"));
		const json_t *hb = health_of(health, addr);
		json_t *c, *packets = NULL, *flows = NULL;

		json_array_foreach(counted, k, c) {
			if (strcmp(json_string_value(json_object_get(c, "addr")),
				   addr) == 0) {
				packets = json_object_get(c, "packets");
				flows = json_object_get(c, "flows");
			}
		}
		printf("%-40s %-7lld %-9s %-7s ", addr,
		       json_integer_value(json_object_get(b, "weight")),
		       json_string_value(json_object_get(b, "state")),
		       hb ? json_string_value(json_object_get(hb, "health")) : "-");
		if (packets)
			printf("%-12lld ", json_integer_value(packets));
		else
			printf("%-12s ", "-");
		if (flows)
			printf("%-8lld ", json_integer_value(flows));
		else
			printf("%-8s ", "-");
		print_notes(hb);
		putchar('\n');
	}
}

static void print_status(const json_t *r)
{
	json_t *st = json_object_get(r, "store"), *dp = json_object_get(r, "dataplane");
	json_t *hc = json_object_get(r, "health"), *s;
	size_t i;

	printf("environment  %s (cluster %s)\n",
	       json_string_value(json_object_get(r, "environment")),
	       json_string_value(json_object_get(r, "cluster_id")));
	printf("store        version %lld, digest %.16s%s%s\n",
	       json_integer_value(json_object_get(st, "version")),
	       json_string_value(json_object_get(st, "digest")),
	       json_is_string(json_object_get(st, "backup_error")) ?
	       ", backup: " : "",
	       json_is_string(json_object_get(st, "backup_error")) ?
	       json_string_value(json_object_get(st, "backup_error")) : "");
	if (json_is_true(json_object_get(json_object_get(r, "freeze"), "frozen")))
		printf("FROZEN       by %s: %s\n",
		       json_string_value(json_object_get(
			       json_object_get(r, "freeze"), "by")),
		       json_string_value(json_object_get(
			       json_object_get(r, "freeze"), "reason")));
	printf("dataplane    %s: %s\n",
	       json_string_value(json_object_get(dp, "sync")),
	       json_string_value(json_object_get(dp, "note")));
	if (hc) {
		printf("health       %lld backends checked: %lld up, %lld down, "
		       "%lld unknown\n",
		       json_integer_value(json_object_get(hc, "backends")),
		       json_integer_value(json_object_get(hc, "up")),
		       json_integer_value(json_object_get(hc, "down")),
		       json_integer_value(json_object_get(hc, "unknown")));
		if (json_integer_value(json_object_get(hc, "late")) > 0)
			printf("LATE         %lld health checks not started on "
			       "time: more are due than fulcrumd starts; "
			       "lengthen health_interval_ms\n",
			       json_integer_value(json_object_get(hc, "late")));
		json_array_foreach(json_object_get(hc, "fail_open"), i, s)
			printf("FAIL-OPEN    service %s: every active backend fails "
			       "its health checks; all are kept active\n",
			       json_string_value(s));
	}
}

static void print_stats(const json_t *r)
{
	json_t *st = json_object_get(r, "stats"), *t = json_object_get(st, "totals");
	json_t *v, *s, *b;
	const char *key;
	size_t i, k;

	printf("packets      rx %lld tx %lld to kernel %lld\n",
	       json_integer_value(json_object_get(t, "rx")),
	       json_integer_value(json_object_get(t, "tx")),
	       json_integer_value(json_object_get(t, "to_kernel")));
	printf("connections  new %lld hit %lld expired %lld evicted %lld\n",
	       json_integer_value(json_object_get(t, "conn_new")),
	       json_integer_value(json_object_get(t, "conn_hit")),
	       json_integer_value(json_object_get(t, "conn_expired")),
	       json_integer_value(json_object_get(t, "conn_evicted")));
	json_object_foreach(json_object_get(st, "drops"), key, v)
		printf("drop         %-20s %lld\n", key, json_integer_value(v));
	json_array_foreach(json_object_get(st, "services"), i, s) {
		printf("service      %-16s %s:%lld packets %lld\n",
		       json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "vip")),
		       json_integer_value(json_object_get(s, "port")),
		       json_integer_value(json_object_get(s, "packets")));
		json_array_foreach(json_object_get(s, "backends"), k, b)
			printf("  backend    %-24s %-9s packets %lld\n",
			       json_string_value(json_object_get(b, "addr")),
			       json_string_value(json_object_get(b, "state")),
			       json_integer_value(json_object_get(b, "packets")));
	}
}

static void print_history(const json_t *entries)
{
	json_t *e;
	size_t i;

	json_array_foreach(entries, i, e) {
		time_t t = (time_t)(json_integer_value(json_object_get(e, "time_ms")) /
				    1000);
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&t));
		printf("v%-6lld %s  %-10s %s%s\n",
		       json_integer_value(json_object_get(e, "version")), when,
		       json_string_value(json_object_get(e, "user")),
		       json_string_value(json_object_get(e, "reason")),
		       json_is_true(json_object_get(e, "automatic")) ?
		       " (automatic)" : "");
		print_ops(json_object_get(e, "ops"));
	}
}

static json_t *call(const struct opts *o, json_t *req, int *exit_code)
{
	char err[512];
	json_t *resp = jsonline_call(o->socket, req, MGMT_MAX_REQUEST, err,
				     sizeof(err));

	json_decref(req);
	if (!resp) {
		fprintf(stderr, "fulcrumctl: %s\n", err);
		*exit_code = EXIT_UNREACHABLE;
		return NULL;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (o->json)
			json_dumpf(resp, stdout, JSON_INDENT(2)), putchar('\n');
		else
			fprintf(stderr, "fulcrumctl: %s\n", json_string_value(
				json_object_get(resp, "error")));
		*exit_code = EXIT_REFUSED;
		json_decref(resp);
		return NULL;
	}
	*exit_code = 0;
	return resp;
}

/* A mutating request: the environment, the reason and the approval go
 * with it. */
static json_t *mutation(const struct opts *o, const char *cmd)
{
	json_t *req = json_pack("{s:s, s:s?, s:b}", "cmd", cmd, "reason",
				o->reason ? o->reason : "", "approved", o->approved);

	if (o->env)
		json_object_set_new(req, "env", json_string(o->env));
	return req;
}

static int report_change(const struct opts *o, json_t *resp)
{
	int rc = json_is_false(json_object_get(resp, "live")) ? EXIT_NOT_LIVE : 0;

	if (o->json) {
		json_dumpf(resp, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("version %lld%s\n",
		       json_integer_value(json_object_get(resp, "version")),
		       rc ? " committed, not live in the dataplane yet" :
			    " committed and live");
		if (json_object_get(resp, "note"))
			printf("note: %s\n", json_string_value(
				json_object_get(resp, "note")));
	}
	json_decref(resp);
	return rc;
}

/* deadline: of a drain, in seconds, or 0. */
static int change(const struct opts *o, json_t *op, long deadline)
{
	json_t *req = mutation(o, "change"), *resp;
	int rc;

	json_object_set_new(req, "ops", json_pack("[o]", op));
	if (deadline)
		json_object_set_new(req, "drain_deadline_s",
				    json_integer(deadline));
	resp = call(o, req, &rc);
	return resp ? report_change(o, resp) : rc;
}

static int backend_cmd(const struct opts *o, int argc, char **argv)
{
	const char *verb = argv[0];
	long deadline = 0;
	json_t *op;

	if (strcmp(verb, "list") == 0 && argc == 2) {
		int rc;
		json_t *r = call(o, json_pack("{s:s, s:s}", "cmd", "state", "name",
					      argv[1]), &rc), *stats, *health;

		if (!r)
			return rc;
		if (o->json) {
			json_dumpf(json_object_get(r, "service"), stdout,
				   JSON_INDENT(2));
			putchar('\n');
		} else {
			stats = call(o, json_pack("{s:s}", "cmd", "stats"), &rc);
			health = call(o, json_pack("{s:s, s:s}", "cmd", "health",
						   "name", argv[1]), &rc);
			print_backends(json_object_get(r, "service"),
				       stats ? json_object_get(stats, "stats") : NULL,
				       health);
			json_decref(stats);
			json_decref(health);
		}
		json_decref(r);
		return 0;
	}
	if (argc != 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o->deadline) {
		char *end;

		if (strcmp(verb, "drain") != 0) {
			fprintf(stderr, "fulcrumctl: --deadline goes with backend "
				"drain only\n");
			return EXIT_USAGE;
		}
		deadline = strtol(o->deadline, &end, 10);
		if (!*o->deadline || *end || deadline < 1) {
			fprintf(stderr, "fulcrumctl: --deadline takes a number of "
				"seconds, not '%s'\n", o->deadline);
			return EXIT_USAGE;
		}
	}
	op = json_pack("{s:s, s:s}", "service", argv[1], "addr", argv[2]);
	if (strcmp(verb, "add") == 0) {
		json_object_set_new(op, "op", json_string("backend_add"));
		json_object_set_new(op, "weight",
				    json_integer(o->weight < 0 ? 1 : o->weight));
	} else if (strcmp(verb, "set") == 0 || strcmp(verb, "drain") == 0) {
		json_object_set_new(op, "op", json_string("backend_set"));
		if (o->weight >= 0)
			json_object_set_new(op, "weight", json_integer(o->weight));
	} else if (strcmp(verb, "del") == 0) {
		json_object_set_new(op, "op", json_string("backend_del"));
	} else {
		json_decref(op);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "drain") == 0)
		json_object_set_new(op, "state", json_string("draining"));
	else if (o->state && strcmp(verb, "del") != 0)
		json_object_set_new(op, "state", json_string(o->state));
	return change(o, op, deadline);
}

static int service_cmd(const struct opts *o, int argc, char **argv)
{
	const char *verb = argv[0];
	int rc;

	if (strcmp(verb, "list") == 0 || (strcmp(verb, "show") == 0 && argc == 2)) {
		json_t *req = json_pack("{s:s}", "cmd", "state"), *r;

		if (argc == 2)
			json_object_set_new(req, "name", json_string(argv[1]));
		r = call(o, req, &rc);
		if (!r)
			return rc;
		if (o->json) {
			json_dumpf(r, stdout, JSON_INDENT(2));
			putchar('\n');
		} else if (argc == 2) {
			json_t *one = json_pack("[O]", json_object_get(r, "service"));

			print_services(one);
			json_decref(one);
		} else {
			print_services(json_object_get(r, "services"));
		}
		json_decref(r);
		return 0;
	}
	if (strcmp(verb, "add") == 0 && argc == 5) {
		char *end;
		long port = strtol(argv[4], &end, 10);
		json_t *op;

		if (*end || port < 0 || port > 65535) {
			fprintf(stderr, "fulcrumctl: port '%s' is not 0..65535\n",
				argv[4]);
			return EXIT_USAGE;
		}
		op = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:[]}", "op",
			       "service_add", "name", argv[1], "vip", argv[2],
			       "proto", argv[3], "port", (int)port, "mode",
			       o->mode ? o->mode : "l2dsr", "backends");
		if (o->table_size > 0)
			json_object_set_new(op, "table_size",
					    json_integer(o->table_size));
		if (o->gue_port > 0)
			json_object_set_new(op, "gue_port", json_integer(o->gue_port));
		return change(o, op, 0);
	}
	if (strcmp(verb, "del") == 0 && argc == 2)
		return change(o, json_pack("{s:s, s:s}", "op", "service_del",
					   "name", argv[1]), 0);
	usage(stderr);
	return EXIT_USAGE;
}

/* The services of -f FILE: {"services": [...]} as `service list --json`
 * shows them, or the bare array. NULL after saying why. */
static json_t *read_services(const struct opts *o, const char *what)
{
	char *text = o->file ? read_file(o->file) : NULL;
	json_t *doc, *services;
	json_error_t je;

	if (!text) {
		fprintf(stderr, "fulcrumctl: %s needs -f FILE (%s)\n", what,
			o->file ? strerror(errno) : "none given");
		return NULL;
	}
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!doc) {
		fprintf(stderr, "fulcrumctl: %s:%d:%d: %s\n", o->file, je.line,
			je.column, je.text);
		return NULL;
	}
	services = json_is_array(doc) ? json_incref(doc) :
		   json_incref(json_object_get(doc, "services"));
	json_decref(doc);
	return services ? services : json_null();
}

static int apply_cmd(const struct opts *o)
{
	json_t *services = read_services(o, "apply"), *req, *resp;
	int rc;

	if (!services)
		return EXIT_USAGE;
	req = mutation(o, "apply");
	json_object_set_new(req, "services", services);
	json_object_set_new(req, "dry_run", json_boolean(o->dry_run));
	resp = call(o, req, &rc);
	if (!resp)
		return rc;
	if (!o->json) {
		printf("%s (against version %lld):\n",
		       o->dry_run ? "would change" : "changes",
		       json_integer_value(json_object_get(resp, "version")) -
		       json_is_true(json_object_get(resp, "committed")));
		print_ops(json_object_get(resp, "ops"));
		if (!json_is_true(json_object_get(resp, "committed"))) {
			json_decref(resp);
			return 0;
		}
	}
	return report_change(o, resp);
}

static void print_plan(const json_t *p)
{
	json_t *risk = json_object_get(p, "risk"), *s;
	size_t i;

	printf("plan %lld by %s against version %lld%s%s\n",
	       json_integer_value(json_object_get(p, "id")),
	       json_string_value(json_object_get(p, "author")),
	       json_integer_value(json_object_get(p, "base_version")),
	       json_object_get(p, "approved_by") ? ", approved by " : "",
	       json_object_get(p, "approved_by") ?
	       json_string_value(json_object_get(p, "approved_by")) : "");
	if (json_object_get(p, "restore_to_time_ms")) {
		time_t t = (time_t)(json_integer_value(json_object_get(
			p, "restore_to_time_ms")) / 1000);
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("  restores version %lld, current at %s\n",
		       json_integer_value(json_object_get(p, "restore_to")), when);
	} else if (json_object_get(p, "restore_to")) {
		printf("  restores version %lld\n",
		       json_integer_value(json_object_get(p, "restore_to")));
	}
	if (json_object_get(p, "executed_version"))
		printf("  carried out as version %lld\n",
		       json_integer_value(json_object_get(p, "executed_version")));
	printf("  risk: %s%s%s\n",
	       json_is_true(json_object_get(risk, "high")) ? "HIGH" : "low",
	       json_is_string(json_object_get(risk, "why")) ? ", " : "",
	       json_is_string(json_object_get(risk, "why")) ?
	       json_string_value(json_object_get(risk, "why")) : "");
	json_array_foreach(json_object_get(risk, "services"), i, s)
		printf("  %-16s active %lld -> %lld, about %.0f%% of new flows "
		       "move\n", json_string_value(json_object_get(s, "name")),
		       json_integer_value(json_object_get(s, "active_before")),
		       json_integer_value(json_object_get(s, "active_after")),
		       100 * json_real_value(json_object_get(s, "moved_share")));
	if (json_array_size(json_object_get(p, "replayed")) ||
	    json_array_size(json_object_get(p, "skipped"))) {
		char *r = json_dumps(json_object_get(p, "replayed"), 0);
		char *k = json_dumps(json_object_get(p, "skipped"), 0);

		printf("  merged back versions %s, left out %s\n", r, k);
		free(r);
		free(k);
	}
	if (json_object_get(p, "ops"))
		print_ops(json_object_get(p, "ops"));
	else if (json_integer_value(json_object_get(p, "ops_count")) > 0)
		printf("  %lld ops: fulcrumctl plan show %lld lists them\n",
		       json_integer_value(json_object_get(p, "ops_count")),
		       json_integer_value(json_object_get(p, "id")));
}

static void print_plan_response(const json_t *r)
{
	json_t *p;
	size_t i;

	if (json_object_get(r, "plan"))
		print_plan(json_object_get(r, "plan"));
	json_array_foreach(json_object_get(r, "plans"), i, p)
		print_plan(p);
}

static int plan_id(const char *text, json_int_t *id)
{
	char *end;

	*id = strtoll(text, &end, 10);
	if (*end || *id < 1) {
		fprintf(stderr, "fulcrumctl: '%s' is not a plan number\n", text);
		return -1;
	}
	return 0;
}

static int plan_cmd(const struct opts *o, int argc, char **argv);

static int simple(const struct opts *o, json_t *req,
		  void (*print)(const json_t *))
{
	int rc;
	json_t *r = call(o, req, &rc);

	if (!r)
		return rc;
	if (o->json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print(r);
	}
	json_decref(r);
	return 0;
}

static void print_history_response(const json_t *r)
{
	print_history(json_object_get(r, "entries"));
}

static void print_diff_response(const json_t *r)
{
	printf("from version %lld to %lld:\n",
	       json_integer_value(json_object_get(r, "from")),
	       json_integer_value(json_object_get(r, "to")));
	print_ops(json_object_get(r, "ops"));
}

static int version_arg(const char *text, long long *v)
{
	char *end;

	*v = strtoll(text, &end, 10);
	if (*end || *v < 0) {
		fprintf(stderr, "fulcrumctl: '%s' is not a version\n", text);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "env", required_argument, NULL, 'e' },
		{ "reason", required_argument, NULL, 'r' },
		{ "file", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "approved", no_argument, NULL, 'a' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "to", required_argument, NULL, 'T' },
		{ "replay-after", no_argument, NULL, 'R' },
		{ "weight", required_argument, NULL, 'w' },
		{ "state", required_argument, NULL, 'S' },
		{ "mode", required_argument, NULL, 'm' },
		{ "table-size", required_argument, NULL, 't' },
		{ "gue-port", required_argument, NULL, 'g' },
		{ "deadline", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.socket = getenv("FULCRUM_SOCKET") ? getenv("FULCRUM_SOCKET") :
						     "/run/fulcrum/fulcrumd.sock",
		.env = getenv("FULCRUM_ENV"),
		.weight = -1,
	};
	long long from, to;
	const char *cmd;
	int opt;

	while ((opt = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.socket = optarg; break;
		case 'e': o.env = optarg; break;
		case 'r': o.reason = optarg; break;
		case 'f': o.file = optarg; break;
		case 'j': o.json = true; break;
		case 'a': o.approved = true; break;
		case 'n': o.dry_run = true; break;
		case 'T': o.restore_to = optarg; break;
		case 'R': o.replay_after = true; break;
		case 'w': o.weight = strtol(optarg, NULL, 10); break;
		case 'S': o.state = optarg; break;
		case 'm': o.mode = optarg; break;
		case 't': o.table_size = strtol(optarg, NULL, 10); break;
		case 'g': o.gue_port = strtol(optarg, NULL, 10); break;
		case 'D': o.deadline = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	/* getopt has moved the options, wherever they stood, before the
	 * command and its arguments */
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[0];
	if (strcmp(cmd, "status") == 0)
		return simple(&o, json_pack("{s:s}", "cmd", "status"), print_status);
	if (strcmp(cmd, "stats") == 0)
		return simple(&o, json_pack("{s:s}", "cmd", "stats"), print_stats);
	if (strcmp(cmd, "service") == 0 && argc >= 2)
		return service_cmd(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "backend") == 0 && argc >= 2)
		return backend_cmd(&o, argc - 1, argv + 1);
	if (strcmp(cmd, "history") == 0 && argc <= 3) {
		json_t *req = json_pack("{s:s}", "cmd", "history");

		if (argc >= 2 && version_arg(argv[1], &from) == 0)
			json_object_set_new(req, "from", json_integer(from));
		if (argc == 3 && version_arg(argv[2], &to) == 0)
			json_object_set_new(req, "limit", json_integer(to));
		return simple(&o, req, print_history_response);
	}
	if (strcmp(cmd, "diff") == 0 && (argc == 2 || argc == 3)) {
		json_t *req;

		if (version_arg(argv[1], &from) < 0 ||
		    (argc == 3 && version_arg(argv[2], &to) < 0))
			return EXIT_USAGE;
		req = json_pack("{s:s, s:I}", "cmd", "diff", "from", from);
		if (argc == 3)
			json_object_set_new(req, "to", json_integer(to));
		return simple(&o, req, print_diff_response);
	}
	if (strcmp(cmd, "apply") == 0 && argc == 1)
		return apply_cmd(&o);
	if (strcmp(cmd, "plan") == 0)
		return plan_cmd(&o, argc - 1, argv + 1);
	/* a restore is only ever a plan: the same command */
	if (strcmp(cmd, "restore") == 0 && argc == 1)
		return plan_cmd(&o, argc, argv);
	if ((strcmp(cmd, "approve") == 0 || strcmp(cmd, "apply") == 0) &&
	    argc == 2) {
		json_int_t id;
		json_t *req;
		int rc;
		json_t *r;

		if (plan_id(argv[1], &id) < 0)
			return EXIT_USAGE;
		req = mutation(&o, strcmp(cmd, "apply") == 0 ? "execute" :
							       "approve");
		json_object_set_new(req, "id", json_integer(id));
		r = call(&o, req, &rc);
		if (!r)
			return rc;
		if (strcmp(cmd, "apply") == 0)
			return report_change(&o, r);
		if (o.json)
			json_dumpf(r, stdout, JSON_INDENT(2)), putchar('\n');
		else
			print_plan(json_object_get(r, "plan"));
		json_decref(r);
		return 0;
	}
	if ((strcmp(cmd, "freeze") == 0 || strcmp(cmd, "unfreeze") == 0) &&
	    argc == 1) {
		int rc;
		json_t *r = call(&o, mutation(&o, cmd), &rc);

		if (!r)
			return rc;
		printf("%s\n", strcmp(cmd, "freeze") == 0 ?
		       "frozen: every change is refused until unfreeze" :
		       "unfrozen");
		json_decref(r);
		return 0;
	}
	if (strcmp(cmd, "adopt") == 0 && argc == 1) {
		int rc;
		json_t *r = call(&o, mutation(&o, "adopt"), &rc);

		return r ? report_change(&o, r) : rc;
	}
	usage(stderr);
	return EXIT_USAGE;
}

/* A restore point into req: "restore_to", a version, or
 * "restore_to_time_ms", a time (UTC) for fulcrumd to find the version
 * that was current then. -1 when text is neither. */
static int restore_point(const char *text, json_t *req)
{
	struct tm tm = { 0 };
	const char *end;
	char *rest;
	long long n;

	if (text[0] >= '0' && text[0] <= '9' && !strpbrk(text, "-:T ")) {
		n = strtoll(text, &rest, 10);
		if (*rest)
			return -1;
		return json_object_set_new(req, "restore_to", json_integer(n));
	}
	if (text[0] == '@') {
		n = strtoll(text + 1, &rest, 10);
		if (rest == text + 1 || *rest || n < 0)
			return -1;
		return json_object_set_new(req, "restore_to_time_ms",
					   json_integer(n * 1000));
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		end = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return -1;
	return json_object_set_new(req, "restore_to_time_ms",
				   json_integer((json_int_t)timegm(&tm) * 1000));
}

/* plan -f FILE | plan restore --to V|TIME [--replay-after] | plan list |
 * plan show ID */
static int plan_cmd(const struct opts *o, int argc, char **argv)
{
	json_int_t id;
	json_t *req;

	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return simple(o, json_pack("{s:s}", "cmd", "plans"),
			      print_plan_response);
	if (argc == 2 && strcmp(argv[0], "show") == 0) {
		if (plan_id(argv[1], &id) < 0)
			return EXIT_USAGE;
		return simple(o, json_pack("{s:s, s:I}", "cmd", "plans", "id", id),
			      print_plan_response);
	}
	req = mutation(o, "plan");
	if (argc == 1 && strcmp(argv[0], "restore") == 0 && o->restore_to) {
		if (restore_point(o->restore_to, req) < 0) {
			fprintf(stderr, "fulcrumctl: --to %s is neither a version "
				"nor a time (2026-12-03T08:00:00Z, or @SECONDS)\n",
				o->restore_to);
			json_decref(req);
			return EXIT_USAGE;
		}
		json_object_set_new(req, "replay_after",
				    json_boolean(o->replay_after));
	} else if (argc == 0 && o->file) {
		json_t *services = read_services(o, "plan");

		if (!services) {
			json_decref(req);
			return EXIT_USAGE;
		}
		json_object_set_new(req, "services", services);
	} else {
		json_decref(req);
		usage(stderr);
		return EXIT_USAGE;
	}
	return simple(o, req, print_plan_response);
}
