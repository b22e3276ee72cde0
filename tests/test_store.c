/* The control plane's state store: changes applied all or nothing, every
 * class of bad change refused with nothing changed, the log attributable
 * and append-only, point-in-time states rebuilt from the log, and the
 * backup copy a complete store after every change. Each test works in a
 * directory of its own under /tmp. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "model.h"
#include "plan.h"
#include "restore.h"
#include "service_diff.h"
#include "service_image.h"
#include "store.h"

struct env {
	char dir[64];
	char path[128];
	char backup[128];
	struct store *st;
};

static char err[1024];
static char digest[STORE_DIGEST_LEN];   /* store_read_state's */

static const struct change_meta alice = {
	.user = "alice", .uid = 1000, .environment = "prod",
	.reason = "test",
};

static int remove_entry(const char *path, const struct stat *sb, int flag,
			struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/fulcrum-store-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/state.db", e->dir);
	snprintf(e->backup, sizeof(e->backup), "%s/state.backup.db", e->dir);
	e->st = store_open(e->path, e->backup, err, sizeof(err));
	if (!e->st)
		fail_msg("store_open: %s", err);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	store_close(e->st);
	nftw(e->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

static void reopen(struct env *e)
{
	store_close(e->st);
	e->st = store_open(e->path, e->backup, err, sizeof(err));
	if (!e->st)
		fail_msg("store_open: %s", err);
}

static uint64_t commit_as(struct store *st, const struct change_meta *m,
			  const char *ops)
{
	uint64_t v = 0;
	int rc = store_commit_text(st, m, ops, &v, err, sizeof(err));

	if (rc != STORE_OK)
		fail_msg("commit refused (%d): %s: %.200s", rc, err, ops);
	return v;
}

static uint64_t commit(struct store *st, const char *ops)
{
	return commit_as(st, &alice, ops);
}

static json_t *state_of(struct store *st)
{
	json_t *s = store_state(st, err, sizeof(err));

	if (!s)
		fail_msg("store_state: %s", err);
	return s;
}

static void assert_json_text(const json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);

	assert_non_null(want);
	if (!json_equal((json_t *)got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);

		fail_msg("got %s\nwant %s", g, want_text);
	}
	json_decref(want);
}

static void assert_state(struct store *st, const char *want_text)
{
	json_t *s = state_of(st);

	assert_json_text(s, want_text);
	json_decref(s);
}

/* The change must be refused, with a message holding `why`, and the store
 * must be as it was: version, digest, state, log and tables. */
static void assert_refused(struct env *e, const char *ops, const char *why)
{
	char before[STORE_DIGEST_LEN], after[STORE_DIGEST_LEN];
	uint64_t version = store_version(e->st), v = 0;
	json_t *state = state_of(e->st), *now;

	store_digest(e->st, before);
	err[0] = '\0';
	if (store_commit_text(e->st, &alice, ops, &v, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", ops);
	if (!strstr(err, why))
		fail_msg("%s\nrefused with '%s', expected '%s'", ops, err, why);
	assert_int_equal(store_version(e->st), version);
	store_digest(e->st, after);
	assert_string_equal(before, after);
	now = state_of(e->st);
	assert_true(json_equal(state, now));
	json_decref(now);
	/* What is on disk too, not only the model in memory. */
	reopen(e);
	assert_int_equal(store_version(e->st), version);
	store_digest(e->st, after);
	assert_string_equal(before, after);
	json_decref(state);
}

static const char web[] =
	"[{\"op\": \"service_add\", \"name\": \"web\", \"vip\": \"10.0.0.100\","
	" \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
	" \"backends\": [{\"addr\": \"10.0.1.20\", \"weight\": 1},"
	" {\"addr\": \"10.0.1.3\", \"weight\": 2, \"state\": \"draining\"},"
	" {\"addr\": \"10.0.1.10\", \"weight\": 3}]}]";

static const char dns[] =
	"[{\"op\": \"service_add\", \"name\": \"dns\", \"vip\": \"10.0.0.53\","
	" \"proto\": \"udp\", \"port\": 53, \"mode\": \"gue\","
	" \"table_size\": 1009, \"gue_port\": 7000}]";

static const char six[] =
	"[{\"op\": \"service_add\", \"name\": \"six\", \"vip\": \"fd00:0::100\","
	" \"proto\": \"tcp\", \"port\": 443, \"mode\": \"ipip\","
	" \"backends\": [{\"addr\": \"fd00::1:2\", \"weight\": 1},"
	" {\"addr\": \"FD00::1:1\", \"weight\": 1}]}]";

static void test_open_create(void **state)
{
	struct env *e = *state;
	char digest[STORE_DIGEST_LEN], path[160];
	json_t *h;
	sqlite3 *db;
	sqlite3_stmt *q;
	FILE *f;

	assert_int_equal(store_version(e->st), 0);
	assert_state(e->st, "{\"version\": 0, \"services\": []}");
	store_digest(e->st, digest);
	/* sha256 of nothing: no services */
	assert_string_equal(digest, "e3b0c44298fc1c149afbf4c8996fb92427ae41e"
			    "4649b934ca495991b7852b855");
	h = store_history(e->st, 0, 0, err, sizeof(err));
	assert_non_null(h);
	assert_int_equal(json_array_size(h), 0);
	json_decref(h);
	assert_null(store_backup_error(e->st));

	/* The schema version is in the meta table, the file in WAL mode. */
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE"
					    " key = 'schema_version'", -1, &q,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);

	/* Not a database; a database that is not a store; no directory. */
	snprintf(path, sizeof(path), "%s/garbage.db", e->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a database, not even close to one, at all.....\n"
	      "................................................................"
	      "................................................................",
	      f);
	fclose(f);
	assert_null(store_open(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a database"));
	snprintf(path, sizeof(path), "%s/other.db", e->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a Fulcrum state store"));
	snprintf(path, sizeof(path), "%s/no/such/dir.db", e->dir);
	assert_null(store_open(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, path));
}

static void test_commit_read_back(void **state)
{
	struct env *e = *state;

	assert_int_equal(commit(e->st, web), 1);
	assert_int_equal(commit(e->st, dns), 2);
	assert_int_equal(commit(e->st, six), 3);
	/* Services by name, backends by address bytes (10.0.1.3 before
	 * 10.0.1.10), addresses in canonical form, defaults filled in. */
	assert_state(e->st, "{\"version\": 3, \"services\": ["
		"{\"name\": \"dns\", \"vip\": \"10.0.0.53\", \"proto\": \"udp\","
		" \"port\": 53, \"mode\": \"gue\", \"table_size\": 1009,"
		" \"gue_port\": 7000, \"backends\": []},"
		"{\"name\": \"six\", \"vip\": \"fd00::100\", \"proto\": \"tcp\","
		" \"port\": 443, \"mode\": \"ipip\", \"table_size\": 65537,"
		" \"gue_port\": 6080, \"backends\": ["
		"  {\"addr\": \"fd00::1:1\", \"weight\": 1, \"state\": \"active\"},"
		"  {\"addr\": \"fd00::1:2\", \"weight\": 1, \"state\": \"active\"}]},"
		"{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\","
		" \"port\": 80, \"mode\": \"l2dsr\", \"table_size\": 65537,"
		" \"gue_port\": 6080, \"backends\": ["
		"  {\"addr\": \"10.0.1.3\", \"weight\": 2, \"state\": \"draining\"},"
		"  {\"addr\": \"10.0.1.10\", \"weight\": 3, \"state\": \"active\"},"
		"  {\"addr\": \"10.0.1.20\", \"weight\": 1, \"state\": \"active\"}]}"
		"]}");

	/* Every other op, several in one change, including a VIP moved to
	 * one another service just gave up. */
	assert_int_equal(commit(e->st,
		"[{\"op\": \"backend_add\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.1\", \"weight\": 9, \"state\": \"down\"},"
		" {\"op\": \"backend_del\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.20\"},"
		" {\"op\": \"backend_set\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.3\", \"state\": \"active\"},"
		" {\"op\": \"backend_set\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.10\", \"weight\": 65535},"
		" {\"op\": \"service_set\", \"name\": \"dns\", \"port\": 5353,"
		"  \"mode\": \"l2dsr\", \"table_size\": 1048573},"
		" {\"op\": \"service_del\", \"name\": \"six\"},"
		" {\"op\": \"service_set\", \"name\": \"web\", \"port\": 0,"
		"  \"proto\": \"udp\", \"vip\": \"10.0.0.53\"},"
		" {\"op\": \"service_set\", \"name\": \"dns\", \"port\": 53}]"),
		4);
	assert_state(e->st, "{\"version\": 4, \"services\": ["
		"{\"name\": \"dns\", \"vip\": \"10.0.0.53\", \"proto\": \"udp\","
		" \"port\": 53, \"mode\": \"l2dsr\", \"table_size\": 1048573,"
		" \"gue_port\": 7000, \"backends\": []},"
		"{\"name\": \"web\", \"vip\": \"10.0.0.53\", \"proto\": \"udp\","
		" \"port\": 0, \"mode\": \"l2dsr\", \"table_size\": 65537,"
		" \"gue_port\": 6080, \"backends\": ["
		"  {\"addr\": \"10.0.1.1\", \"weight\": 9, \"state\": \"down\"},"
		"  {\"addr\": \"10.0.1.3\", \"weight\": 2, \"state\": \"active\"},"
		"  {\"addr\": \"10.0.1.10\", \"weight\": 65535,"
		"   \"state\": \"active\"}]}"
		"]}");

	/* A name deleted and added again in one change. */
	assert_int_equal(commit(e->st,
		"[{\"op\": \"service_del\", \"name\": \"dns\"},"
		" {\"op\": \"service_add\", \"name\": \"dns\","
		"  \"vip\": \"10.0.0.54\", \"proto\": \"udp\", \"port\": 53,"
		"  \"mode\": \"ipip\"},"
		" {\"op\": \"backend_add\", \"service\": \"dns\","
		"  \"addr\": \"10.0.2.1\", \"weight\": 1}]"), 5);
	reopen(e);
	assert_state(e->st, "{\"version\": 5, \"services\": ["
		"{\"name\": \"dns\", \"vip\": \"10.0.0.54\", \"proto\": \"udp\","
		" \"port\": 53, \"mode\": \"ipip\", \"table_size\": 65537,"
		" \"gue_port\": 6080, \"backends\": ["
		"  {\"addr\": \"10.0.2.1\", \"weight\": 1, \"state\": \"active\"}]},"
		"{\"name\": \"web\", \"vip\": \"10.0.0.53\", \"proto\": \"udp\","
		" \"port\": 0, \"mode\": \"l2dsr\", \"table_size\": 65537,"
		" \"gue_port\": 6080, \"backends\": ["
		"  {\"addr\": \"10.0.1.1\", \"weight\": 9, \"state\": \"down\"},"
		"  {\"addr\": \"10.0.1.3\", \"weight\": 2, \"state\": \"active\"},"
		"  {\"addr\": \"10.0.1.10\", \"weight\": 65535,"
		"   \"state\": \"active\"}]}"
		"]}");
}

#define SVC(fields) "[{\"op\": \"service_add\", \"name\": \"new\"," \
	" \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80," \
	" \"mode\": \"l2dsr\"" fields "}]"
#define BE(fields) "[{\"op\": \"backend_add\", \"service\": \"web\"," \
	fields "}]"

static const struct {
	const char *ops;
	const char *why;
} bad_changes[] = {
	/* Unknown services and backends. */
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 1, \"service\": \"x\""),
	  "duplicate" },
	{ "[{\"op\": \"backend_add\", \"service\": \"nope\","
	  " \"addr\": \"10.0.1.99\", \"weight\": 1}]",
	  "op 0 (backend_add): 'service': no service 'nope'" },
	{ "[{\"op\": \"backend_del\", \"service\": \"web\","
	  " \"addr\": \"10.0.1.99\"}]",
	  "op 0 (backend_del): 'addr': service 'web' has no backend 10.0.1.99" },
	{ "[{\"op\": \"backend_set\", \"service\": \"web\","
	  " \"addr\": \"10.0.1.99\", \"weight\": 2}]", "has no backend" },
	{ "[{\"op\": \"service_del\", \"name\": \"nope\"}]",
	  "op 0 (service_del): 'name': no service 'nope'" },
	{ "[{\"op\": \"service_set\", \"name\": \"nope\", \"port\": 1}]",
	  "no service 'nope'" },
	/* Duplicates. */
	{ "[{\"op\": \"service_add\", \"name\": \"web\", \"vip\": \"10.0.0.1\","
	  " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\"}]",
	  "'name': service 'web' exists already" },
	{ "[{\"op\": \"service_add\", \"name\": \"web2\","
	  " \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"ipip\"}]",
	  "'vip': 10.0.0.100 tcp port 80 is service 'web' already" },
	{ "[{\"op\": \"service_set\", \"name\": \"dns\","
	  " \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 80}]",
	  "is service 'web' already" },
	{ BE("\"addr\": \"10.0.1.10\", \"weight\": 1"),
	  "service 'web' already has backend 10.0.1.10" },
	{ SVC(", \"backends\": [{\"addr\": \"10.0.3.1\", \"weight\": 1},"
	      " {\"addr\": \"10.0.3.1\", \"weight\": 2}]"),
	  "'backends[1].addr': service 'new' already has backend 10.0.3.1" },
	/* Addresses and families. */
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"10.0.0.300\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]",
	  "op 0 (service_add): 'vip': '10.0.0.300' is not an IPv4 or IPv6" },
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"::\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]", "'vip': :: is the unspecified address" },
	{ BE("\"addr\": \"banana\", \"weight\": 1"),
	  "'addr': 'banana' is not an IPv4 or IPv6 address" },
	{ BE("\"addr\": \"0.0.0.0\", \"weight\": 1"), "unspecified" },
	{ BE("\"addr\": \"fd00::1\", \"weight\": 1"),
	  "'addr': fd00::1 is IPv6 but service 'web' has the IPv4 VIP "
	  "10.0.0.100" },
	{ SVC(", \"backends\": [{\"addr\": \"fd00::1\", \"weight\": 1}]"),
	  "'backends[0].addr': fd00::1 is IPv6" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\","
	  " \"vip\": \"fd00::100\"}]",
	  "'vip': fd00::100 is IPv6 but the backends of service 'web' are "
	  "IPv4" },
	/* Numbers out of range. */
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 0"),
	  "op 0 (backend_add): 'weight': 0 is outside 1..65535" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 65536"),
	  "'weight': 65536 is outside 1..65535" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": -1"),
	  "'weight': -1 is outside" },
	{ "[{\"op\": \"backend_set\", \"service\": \"web\","
	  " \"addr\": \"10.0.1.10\", \"weight\": 0}]",
	  "'weight': 0 is outside 1..65535" },
	{ SVC(", \"backends\": [{\"addr\": \"10.0.3.1\", \"weight\": 0}]"),
	  "'backends[0].weight': 0 is outside" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\", \"port\": 65536}]",
	  "'port': 65536 is outside 0..65535" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\", \"port\": -1}]",
	  "'port': -1 is outside 0..65535" },
	{ SVC(", \"table_size\": 1008"), "'table_size': 1008 is outside "
	  "1009..1048573" },
	{ SVC(", \"table_size\": 1048583"), "'table_size': 1048583 is "
	  "outside" },
	{ SVC(", \"table_size\": 65535"), "'table_size': 65535 is not a "
	  "prime" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\","
	  " \"table_size\": 1011}]", "'table_size': 1011 is not a prime" },
	{ SVC(", \"gue_port\": 0"), "'gue_port': 0 is outside 1..65535" },
	/* Unknown ops, fields and names. */
	{ "[{\"op\": \"service_rename\", \"name\": \"web\"}]",
	  "op 0 (?): unknown op 'service_rename'" },
	{ SVC(", \"colour\": \"red\""),
	  "op 0 (service_add): unknown field 'colour'" },
	{ SVC(", \"backends\": [{\"addr\": \"10.0.3.1\", \"weight\": 1,"
	      " \"mac\": \"02:00:00:00:00:01\"}]"),
	  "unknown field 'backends[0].mac'" },
	{ "[{\"op\": \"service_del\", \"name\": \"web\", \"port\": 80}]",
	  "unknown field 'port'" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 1, \"name\": \"x\""),
	  "unknown field 'name'" },
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80}]",
	  "op 0 (service_add): missing field 'mode'" },
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\","
	  " \"mode\": \"gue\"}]", "missing field 'port'" },
	{ BE("\"addr\": \"10.0.1.99\""), "missing field 'weight'" },
	{ SVC(", \"backends\": [{\"weight\": 1}]"),
	  "missing field 'backends[0].addr'" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\"}]",
	  "op 0 (service_set): nothing to change" },
	{ "[{\"op\": \"backend_set\", \"service\": \"web\","
	  " \"addr\": \"10.0.1.10\"}]", "nothing to change" },
	{ "[{\"op\": \"service_add\", \"name\": \"has space\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]", "'name': 'has space' is not a service name" },
	{ "[{\"op\": \"service_add\", \"name\": \"\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]", "is not a service name" },
	{ "[{\"op\": \"service_add\","
	  " \"name\": \"a-name-that-is-far-too-long-for-us\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]", "is not a service name" },
	/* Unknown modes, protocols and states. */
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80,"
	  " \"mode\": \"nat\"}]",
	  "'mode': unknown mode 'nat' (l2dsr, ipip or gue)" },
	{ "[{\"op\": \"service_add\", \"name\": \"new\","
	  " \"vip\": \"10.0.0.200\", \"proto\": \"sctp\", \"port\": 80,"
	  " \"mode\": \"l2dsr\"}]",
	  "'proto': unknown protocol 'sctp' (tcp or udp)" },
	{ "[{\"op\": \"service_set\", \"name\": \"web\", \"proto\": \"TCP\"}]",
	  "unknown protocol 'TCP'" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 1, \"state\": \"asleep\""),
	  "'state': unknown state 'asleep' (active, draining or down)" },
	/* Wrong JSON types. */
	{ "[{\"op\": \"service_set\", \"name\": \"web\", \"port\": \"80\"}]",
	  "'port': must be an integer" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": 1.5"),
	  "'weight': must be an integer" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": true"),
	  "'weight': must be an integer" },
	{ BE("\"addr\": \"10.0.1.99\", \"weight\": null"),
	  "'weight': must be an integer" },
	{ BE("\"addr\": 167772515, \"weight\": 1"), "'addr': must be a string" },
	{ "[{\"op\": \"service_del\", \"name\": [\"web\"]}]",
	  "'name': must be a string" },
	{ SVC(", \"backends\": {\"addr\": \"10.0.3.1\"}"),
	  "'backends': must be an array" },
	{ SVC(", \"backends\": [\"10.0.3.1\"]"),
	  "'backends[0]' must be an object" },
	{ "[{\"op\": 7, \"name\": \"web\"}]",
	  "op 0 (?): 'op' is missing or not a string" },
	{ "[{\"name\": \"web\"}]", "'op' is missing" },
	{ "[\"service_del\"]", "op 0 (?): an op must be a JSON object" },
	{ "{\"op\": \"service_del\", \"name\": \"web\"}",
	  "a change must be a JSON array of ops" },
	{ "[]", "a change needs at least one op" },
	/* Not JSON at all, or cut short. */
	{ "", "not valid JSON" },
	{ "[{\"op\": \"service_del\", \"name\": \"web\"}", "not valid JSON" },
	{ "[{\"op\": \"service_del\", \"name\": \"we", "not valid JSON" },
	{ "[{\"op\": \"service_del\", \"name\": \"web\"}] trailing",
	  "not valid JSON" },
	{ "\x01\xff garbage", "not valid JSON" },
	{ "[{\"op\": \"service_del\", \"name\": \"web\", \"name\": \"dns\"}]",
	  "duplicate object key" },
};

static void test_invalid_refused(void **state)
{
	struct env *e = *state;

	commit(e->st, web);
	commit(e->st, dns);
	for (size_t i = 0; i < sizeof(bad_changes) / sizeof(bad_changes[0]);
	     i++)
		assert_refused(e, bad_changes[i].ops, bad_changes[i].why);
	assert_int_equal(store_version(e->st), 2);
}

/* Two good ops, then a bad one: the first two must leave no trace, in the
 * state, the tables or the log. Likewise for a bad op after a delete, and
 * after a VIP move, which undo differently. */
static void test_half_way(void **state)
{
	struct env *e = *state;
	json_t *h;

	commit(e->st, web);
	commit(e->st, dns);
	assert_refused(e,
		"[{\"op\": \"backend_add\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.50\", \"weight\": 1},"
		" {\"op\": \"service_add\", \"name\": \"api\","
		"  \"vip\": \"10.0.0.80\", \"proto\": \"tcp\", \"port\": 443,"
		"  \"mode\": \"ipip\"},"
		" {\"op\": \"backend_add\", \"service\": \"api\","
		"  \"addr\": \"10.0.1.50\", \"weight\": 70000}]",
		"op 2 (backend_add): 'weight': 70000 is outside 1..65535");
	assert_refused(e,
		"[{\"op\": \"service_del\", \"name\": \"web\"},"
		" {\"op\": \"service_set\", \"name\": \"dns\","
		"  \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 80},"
		" {\"op\": \"service_del\", \"name\": \"web\"}]",
		"op 2 (service_del): 'name': no service 'web'");
	assert_refused(e,
		"[{\"op\": \"service_set\", \"name\": \"web\", \"port\": 81},"
		" {\"op\": \"service_add\", \"name\": \"web80\","
		"  \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 80,"
		"  \"mode\": \"l2dsr\"},"
		" {\"op\": \"service_set\", \"name\": \"dns\", \"port\": 81,"
		"  \"proto\": \"tcp\", \"vip\": \"10.0.0.100\"}]",
		"op 2 (service_set): 'vip': 10.0.0.100 tcp port 81 is service "
		"'web' already");
	h = store_history(e->st, 0, 0, err, sizeof(err));
	assert_int_equal(json_array_size(h), 2);
	json_decref(h);
	/* The services the failed changes touched still work as before. */
	assert_int_equal(commit(e->st,
		"[{\"op\": \"service_add\", \"name\": \"web80\","
		"  \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 8080,"
		"  \"mode\": \"l2dsr\"},"
		" {\"op\": \"backend_del\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.3\"}]"), 3);
	reopen(e);
	assert_int_equal(store_version(e->st), 3);
}

static void test_log_attributable(void **state)
{
	static const struct change_meta health = {
		.user = "fulcrum-health", .uid = 0, .environment = "prod",
		.reason = "10.0.1.10 failed 3 checks", .automatic = true,
	};
	static const struct change_meta nobody = { .user = "" };
	struct env *e = *state;
	char digest[STORE_DIGEST_LEN];
	struct timespec now;
	json_t *h, *ops, *entry;
	uint64_t v;

	commit(e->st, web);
	commit_as(e->st, &health,
		  "[{\"op\": \"backend_set\", \"service\": \"web\","
		  "  \"addr\": \"10.0.1.10\", \"state\": \"down\"}]");
	assert_int_equal(store_commit_text(e->st, &nobody, dns, &v, err,
					   sizeof(err)), -1);
	assert_string_equal(err, "a change needs the user making it");
	assert_int_equal(store_commit_text(e->st, NULL, dns, &v, err,
					   sizeof(err)), -1);
	reopen(e);
	clock_gettime(CLOCK_REALTIME, &now);
	store_digest(e->st, digest);

	h = store_history(e->st, 2, 0, err, sizeof(err));
	assert_non_null(h);
	assert_int_equal(json_array_size(h), 1);
	entry = json_array_get(h, 0);
	assert_int_equal(json_integer_value(json_object_get(entry, "version")),
			 2);
	assert_string_equal(json_string_value(json_object_get(entry, "user")),
			    "fulcrum-health");
	assert_int_equal(json_integer_value(json_object_get(entry, "uid")), 0);
	assert_string_equal(json_string_value(json_object_get(entry,
					      "environment")), "prod");
	assert_string_equal(json_string_value(json_object_get(entry,
					      "reason")),
			    "10.0.1.10 failed 3 checks");
	assert_true(json_is_true(json_object_get(entry, "automatic")));
	assert_string_equal(json_string_value(json_object_get(entry,
					      "digest")), digest);
	assert_true(llabs(json_integer_value(json_object_get(entry, "time_ms"))
			  - (now.tv_sec * 1000LL + now.tv_nsec / 1000000))
		    < 60000);
	ops = json_loads("[{\"op\": \"backend_set\", \"service\": \"web\","
			 " \"addr\": \"10.0.1.10\", \"state\": \"down\"}]", 0,
			 NULL);
	assert_true(json_equal(json_object_get(entry, "ops"), ops));
	json_decref(ops);
	json_decref(h);

	h = store_history(e->st, 0, 1, err, sizeof(err));
	assert_int_equal(json_array_size(h), 1);
	entry = json_array_get(h, 0);
	assert_string_equal(json_string_value(json_object_get(entry, "user")),
			    "alice");
	assert_int_equal(json_integer_value(json_object_get(entry, "uid")),
			 1000);
	assert_string_equal(json_string_value(json_object_get(entry,
					      "reason")), "test");
	assert_true(json_is_false(json_object_get(entry, "automatic")));
	json_decref(h);
}

static void test_version_monotonic(void **state)
{
	struct env *e = *state;
	uint64_t last = store_version(e->st);
	json_t *h, *entry;
	size_t i;
	char ops[256];

	for (int n = 0; n < 20; n++) {
		snprintf(ops, sizeof(ops), "[{\"op\": \"service_add\","
			 " \"name\": \"s%d\", \"vip\": \"10.0.0.%d\","
			 " \"proto\": \"tcp\", \"port\": 80,"
			 " \"mode\": \"l2dsr\"}]", n % 10, n % 10 + 1);
		if (n >= 10) {
			/* Refused: the name exists. */
			assert_int_equal(store_commit_text(e->st, &alice, ops,
							   &last, err,
							   sizeof(err)), -1);
			assert_int_equal(store_version(e->st), 10);
			continue;
		}
		assert_int_equal(commit(e->st, ops), last + 1);
		last = store_version(e->st);
	}
	h = store_history(e->st, 0, 0, err, sizeof(err));
	assert_int_equal(json_array_size(h), 10);
	json_array_foreach(h, i, entry)
		assert_int_equal(json_integer_value(json_object_get(entry,
					"version")), i + 1);
	json_decref(h);
}

static void test_log_append_only(void **state)
{
	struct env *e = *state;
	sqlite3 *db;

	commit(e->st, web);
	commit(e->st, "[{\"op\": \"service_del\", \"name\": \"web\"}]");
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM change_log", NULL,
					  NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE change_log SET user ="
					  " 'mallory'", NULL, NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);
	reopen(e);
	assert_int_equal(store_version(e->st), 2);
}

/* Rewrites, behind the store's back, the stored row of service name with
 * every backend's weight and state set, byte for byte as a shell with a
 * blob editor could. */
static void tamper_backends(const char *path, const char *name,
			    unsigned int weight, unsigned int state)
{
	struct service s;
	unsigned char *image;
	sqlite3_stmt *q;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT image FROM services"
					    " WHERE name = ?1", -1, &q, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(service_image_read(sqlite3_column_blob(q, 0),
					    (size_t)sqlite3_column_bytes(q, 0),
					    &s), 0);
	sqlite3_finalize(q);
	for (uint32_t i = 0; i < s.n_backends; i++) {
		s.backends[i].weight = (uint16_t)weight;
		s.backends[i].state = (uint8_t)state;
	}
	image = malloc(service_image_size(&s));
	assert_non_null(image);
	service_image_write(&s, image);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE services SET image = ?2"
					    " WHERE name = ?1", -1, &q, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, image, (int)service_image_size(&s),
			  SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(image);
	free(s.backends);
}

/* A service changed behind the store's back no longer hashes to the
 * digest the log recorded: the store refuses to open rather than serve
 * it. */
static void test_tampering_detected(void **state)
{
	struct env *e = *state;
	sqlite3 *db;

	commit(e->st, web);
	store_close(e->st);
	e->st = NULL;
	tamper_backends(e->path, "web", 7, BACKEND_ACTIVE);
	assert_null(store_open(e->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "the change log says"));

	tamper_backends(e->path, "web", 0, BACKEND_ACTIVE);
	assert_null(store_open(e->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "stored service 'web' is invalid: op 0 "
			       "(service_add): 'backends[0].weight': 0 is "
			       "outside"));

	/* a row the quick read cannot even parse: the checked read names it */
	tamper_backends(e->path, "web", 1, 200);
	assert_null(store_open(e->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "stored service 'web' is damaged"));

	/* the image of another service in its row */
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE services SET name = 'www'",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(e->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "stored service 'www' is damaged"));
}

/* Rows deleted behind the store's back just before a change (after the
 * last store_check, as when a shell commits between fulcrumd's check and
 * its write) are found by the change itself: it is refused, and the next
 * store_check still reports the damage rather than taking the damaged
 * tables as the new normal. */
static void test_commit_finds_rows_deleted(void **state)
{
	struct env *e = *state;
	struct change_meta meta = { .user = "alice", .uid = 1000 };
	json_t *ops = json_loads("[{\"op\": \"backend_set\", \"service\": "
				 "\"web\", \"addr\": \"10.0.1.2\", "
				 "\"weight\": 3}]", 0, NULL);
	char why[512];
	uint64_t version = 0;
	sqlite3 *db;

	commit(e->st, web);
	assert_int_equal(store_check(e->st, why, sizeof(why)), 0);
	/* a reader leaves it be */
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM services",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_check(e->st, why, sizeof(why)), 0);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM services", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_commit(e->st, &meta, ops, &version, err,
				      sizeof(err)), -1);
	assert_non_null(strstr(err, "the change log says"));
	assert_int_equal(store_version(e->st), 1);
	assert_int_equal(store_check(e->st, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "the change log says"));
	json_decref(ops);
}

static void test_deleted_service_in_history(void **state)
{
	struct env *e = *state;
	json_t *h, *at, *ops;

	commit(e->st, web);
	commit(e->st, dns);
	commit(e->st, "[{\"op\": \"service_del\", \"name\": \"web\"}]");
	at = state_of(e->st);
	assert_int_equal(json_array_size(json_object_get(at, "services")), 1);
	json_decref(at);

	h = store_history(e->st, 1, 1, err, sizeof(err));
	ops = json_object_get(json_array_get(h, 0), "ops");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(ops, 0), "name")), "web");
	assert_int_equal(json_array_size(json_object_get(
		json_array_get(ops, 0), "backends")), 3);
	json_decref(h);

	at = store_state_at(e->st, 2, err, sizeof(err));
	assert_non_null(at);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(at, "services"), 1), "name")), "web");
	json_decref(at);
}

static const char *const steps[] = {
	web, dns, six,
	"[{\"op\": \"backend_add\", \"service\": \"web\","
	"  \"addr\": \"10.0.1.4\", \"weight\": 5}]",
	"[{\"op\": \"service_del\", \"name\": \"six\"},"
	" {\"op\": \"backend_set\", \"service\": \"web\","
	"  \"addr\": \"10.0.1.4\", \"state\": \"draining\"}]",
	"[{\"op\": \"service_set\", \"name\": \"dns\", \"mode\": \"ipip\","
	"  \"vip\": \"10.0.0.54\"}]",
	six,
	"[{\"op\": \"backend_del\", \"service\": \"six\","
	"  \"addr\": \"fd00::1:1\"},"
	" {\"op\": \"service_del\", \"name\": \"web\"}]",
	"[{\"op\": \"service_del\", \"name\": \"six\"},"
	" {\"op\": \"service_del\", \"name\": \"dns\"}]",
};
#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

/* Commits the steps, with the state before and after each into
 * want[0..N_STEPS]. */
static void commit_steps(struct env *e, json_t *want[N_STEPS + 1])
{
	want[0] = state_of(e->st);
	for (size_t i = 0; i < N_STEPS; i++) {
		commit(e->st, steps[i]);
		want[i + 1] = state_of(e->st);
	}
}

static void test_state_at(void **state)
{
	struct env *e = *state;
	json_t *want[N_STEPS + 1], *got;

	commit_steps(e, want);
	reopen(e);
	for (size_t v = 0; v <= N_STEPS; v++) {
		got = store_state_at(e->st, v, err, sizeof(err));
		if (!got)
			fail_msg("store_state_at(%zu): %s", v, err);
		assert_true(json_equal(got, want[v]));
		json_decref(got);
		json_decref(want[v]);
	}
	assert_null(store_state_at(e->st, N_STEPS + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "there is no version 10 (the latest is "
			       "9)"));
}

static int name_order(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
							"name")),
		      json_string_value(json_object_get(*(json_t *const *)b,
							"name")));
}

static void sort_by_name(json_t *list)
{
	size_t n = json_array_size(list);
	json_t **v = calloc(n ? n : 1, sizeof(*v));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(list, i));
	qsort(v, n, sizeof(*v), name_order);
	json_array_clear(list);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, v[i]);
	free(v);
}

/* The state now with the changed services put back as store_changed_since
 * says they were: what a restore to that version makes. */
struct changed {
	json_t *then, *now;             /* as JSON, each by name */
};

static int collect(const struct service *now, const struct service *then,
		   void *arg)
{
	struct changed *c = arg;

	assert_true(now || then);
	if (now)
		json_array_append_new(c->now, model_service_to_json(now));
	if (then)
		json_array_append_new(c->then, model_service_to_json(then));
	return 0;
}

static int changed_since(struct store *st, uint64_t v, json_t **then,
			 json_t **now)
{
	struct changed c = { json_array(), json_array() };
	int rc = store_changed_since(st, v, collect, &c, err, sizeof(err));

	*then = c.then;
	*now = c.now;
	return rc;
}

static json_t *rewound(struct store *st, uint64_t v)
{
	json_t *then, *now, *cur = state_of(st), *out = json_array(), *svc;
	json_t *changed = json_object();
	size_t i;

	if (changed_since(st, v, &then, &now) < 0)
		fail_msg("store_changed_since(%" PRIu64 "): %s", (uint64_t)v,
			 err);
	json_array_foreach(now, i, svc)
		json_object_set(changed, json_string_value(json_object_get(
					svc, "name")), json_true());
	json_array_foreach(then, i, svc)
		json_object_set(changed, json_string_value(json_object_get(
					svc, "name")), json_true());
	/* the current side is the current state's, service for service */
	json_array_foreach(json_object_get(cur, "services"), i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));

		if (!json_object_get(changed, name))
			json_array_append(out, svc);
	}
	json_array_extend(out, then);
	sort_by_name(out);
	json_decref(changed);
	json_decref(now);
	json_decref(then);
	json_decref(cur);
	return out;
}

/* A restore's view of every earlier version, from the before-images,
 * must be the state that version had: services deleted, added, moved to
 * another VIP, or changed twice in one change. */
static void test_changed_since(void **state)
{
	struct env *e = *state;
	json_t *want[N_STEPS + 1], *got, *then, *now;

	commit_steps(e, want);
	reopen(e);
	for (size_t v = 0; v <= N_STEPS; v++) {
		got = rewound(e->st, v);
		if (!json_equal(got, json_object_get(want[v], "services")))
			fail_msg("version %zu: got %s", v,
				 json_dumps(got, JSON_COMPACT));
		json_decref(got);
		json_decref(want[v]);
	}
	/* nothing changed since the latest: nothing to put back */
	assert_int_equal(changed_since(e->st, N_STEPS, &then, &now), 0);
	assert_int_equal(json_array_size(then) + json_array_size(now), 0);
	json_decref(then);
	json_decref(now);
	assert_int_equal(changed_since(e->st, N_STEPS + 1, &then, &now), -1);
	json_decref(then);
	json_decref(now);
	assert_non_null(strstr(err, "there is no version 10"));
}

/* Only what changed since comes back; a VIP that passed from one service
 * to another is put back where it was. */
static void test_changed_since_only_changed(void **state)
{
	struct env *e = *state;
	json_t *then, *now, *got, *want;

	commit(e->st, web);
	commit(e->st, dns);
	want = state_of(e->st);
	commit(e->st, "[{\"op\": \"service_set\", \"name\": \"dns\","
	       " \"vip\": \"10.0.0.54\"},"
	       " {\"op\": \"service_add\", \"name\": \"new\","
	       " \"vip\": \"10.0.0.53\", \"proto\": \"udp\", \"port\": 53,"
	       " \"mode\": \"l2dsr\"}]");
	assert_int_equal(changed_since(e->st, 2, &then, &now), 0);
	assert_int_equal(json_array_size(then), 1);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(then, 0), "vip")), "10.0.0.53");
	assert_int_equal(json_array_size(now), 2);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(now, 0), "name")), "dns");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(now, 1), "name")), "new");
	json_decref(then);
	json_decref(now);
	got = rewound(e->st, 2);
	assert_true(json_equal(got, json_object_get(want, "services")));
	json_decref(got);
	json_decref(want);
}

static void assert_state_services(struct store *st, const json_t *want)
{
	json_t *s = state_of(st);

	if (!json_equal(json_object_get(s, "services"),
			json_object_get(want, "services")))
		fail_msg("state %s, want %s", json_dumps(s, JSON_COMPACT),
			 json_dumps(want, JSON_COMPACT));
	json_decref(s);
}

/* The ops as sorted text: service_diff and plan_ops may order a
 * service's backend ops differently. */
static json_t *op_set(const json_t *ops)
{
	json_t *set = json_object(), *op;
	size_t i;

	json_array_foreach(ops, i, op) {
		char *text = json_dumps(op, JSON_SORT_KEYS | JSON_COMPACT);

		json_object_set_new(set, text, json_true());
		free(text);
	}
	return set;
}

/* A restore plan to each earlier version, made in memory, must hold the
 * very ops plan_ops finds between the JSON states, and committed it must
 * give that version's state back, digest and all. */
static void test_restore_plan_each_version(void **state)
{
	struct env *e = *state;
	json_t *want[N_STEPS + 1];

	commit_steps(e, want);
	for (size_t v = N_STEPS; v-- > 0;) {
		json_t *req = json_pack("{s:I}", "restore_to", (json_int_t)v);
		json_t *replayed = json_array(), *skipped = json_array();
		json_t *ops, *risk, *now = state_of(e->st), *full, *a, *b;

		if (restore_plan(e->st, req, 25, 10, &ops, &risk, replayed,
				 skipped, err, sizeof(err)) < 0)
			fail_msg("restore_plan(%zu): %s", v, err);
		full = plan_ops(json_object_get(now, "services"),
				json_object_get(want[v], "services"));
		a = op_set(ops);
		b = op_set(full);
		if (!json_equal(a, b))
			fail_msg("version %zu: %s\nplan_ops: %s", v,
				 json_dumps(ops, JSON_COMPACT),
				 json_dumps(full, JSON_COMPACT));
		assert_int_equal(json_array_size(ops), json_array_size(full));
		if (json_array_size(ops) > 0) {
			char *text = json_dumps(ops, JSON_COMPACT);

			commit(e->st, text);
			free(text);
		}
		/* the rows written, row by row, hash to the log's digest */
		reopen(e);
		assert_state_services(e->st, want[v]);
		json_decref(a);
		json_decref(b);
		json_decref(full);
		json_decref(now);
		json_decref(ops);
		json_decref(risk);
		json_decref(req);
		json_decref(replayed);
		json_decref(skipped);
	}
	for (size_t v = 0; v <= N_STEPS; v++)
		json_decref(want[v]);
}

/* An image changed behind the store's back is found out, whether it no
 * longer reads as a service or reads as another one than was logged. */
static void test_changed_since_damaged(void **state)
{
	struct env *e = *state;
	json_t *then, *now;
	sqlite3 *db;

	commit(e->st, web);
	commit(e->st, "[{\"op\": \"backend_set\", \"service\": \"web\","
	       " \"addr\": \"10.0.1.20\", \"weight\": 9}]");
	commit(e->st, "[{\"op\": \"service_del\", \"name\": \"web\"}]");
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	/* the first backend's weight, in the image kept with v2 (layout 2:
	 * after the 64-byte header and 4 address bytes) */
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER service_images_no_update;"
				      "UPDATE service_images SET image ="
				      " substr(image, 1, 68) || x'07' ||"
				      " substr(image, 70) WHERE version = 2",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(changed_since(e->st, 1, &then, &now), -1);
	assert_non_null(strstr(err, "does not add up to version 1"));
	assert_int_equal(json_array_size(then) + json_array_size(now), 0);
	json_decref(then);
	json_decref(now);
	/* the later image, of v3, is not even read for version 1 */
	assert_int_equal(sqlite3_exec(db, "UPDATE service_images SET image ="
				      " x'0102' WHERE version = 3", NULL, NULL,
				      NULL), SQLITE_OK);
	assert_int_equal(changed_since(e->st, 2, &then, &now), -1);
	assert_non_null(strstr(err, "the image of service web kept with "
			       "version 3 is damaged"));
	json_decref(then);
	json_decref(now);
	sqlite3_close(db);
}

/* Images in layout 2 take 4 address bytes for an IPv4 backend and 16 for
 * IPv6, and read back as they were; images in layout 1, which stores
 * made before it hold, 16 for both, and still read. */
static void test_image_layouts(void **state)
{
	struct backend b4[2] = { { .weight = 3, .state = 1 },
				 { .weight = 65535, .state = 2 } };
	struct backend b6[1] = { { .weight = 7 } };
	struct service v4 = { .name = "web", .family = AF_INET,
			      .proto = IPPROTO_TCP, .port = 80, .mode = 1,
			      .table_size = 1009, .gue_port = 6080,
			      .n_backends = 2, .backends = b4 };
	struct service v6 = { .name = "six", .family = AF_INET6,
			      .proto = IPPROTO_UDP, .port = 53,
			      .table_size = 65537, .n_backends = 1,
			      .backends = b6 };
	unsigned char out[64 + 2 * 19], old[64 + 2 * 19];
	struct service got;

	(void)state;
	assert_int_equal(ip_addr_parse("10.0.1.1", &b4[0].addr,
				       &(uint8_t){ 0 }), 0);
	assert_int_equal(ip_addr_parse("10.0.1.2", &b4[1].addr,
				       &(uint8_t){ 0 }), 0);
	assert_int_equal(ip_addr_parse("10.0.0.80", &v4.vip, &(uint8_t){ 0 }), 0);
	assert_int_equal(ip_addr_parse("fd00::1", &b6[0].addr, &(uint8_t){ 0 }), 0);
	assert_int_equal(ip_addr_parse("fd00::53", &v6.vip, &(uint8_t){ 0 }), 0);

	assert_int_equal(service_image_size(&v4), 64 + 2 * 7);
	assert_int_equal(service_image_size(&v6), 64 + 19);
	for (int k = 0; k < 2; k++) {
		const struct service *s = k ? &v6 : &v4;

		service_image_write(s, out);
		assert_int_equal(out[0], 2);
		assert_int_equal(service_image_read(out, service_image_size(s),
						    &got), 0);
		assert_string_equal(got.name, s->name);
		assert_true(ip_addr_eq(&got.vip, &s->vip));
		assert_int_equal(got.port, s->port);
		assert_int_equal(got.table_size, s->table_size);
		assert_int_equal(got.n_backends, s->n_backends);
		for (uint32_t i = 0; i < s->n_backends; i++) {
			assert_true(ip_addr_eq(&got.backends[i].addr,
					       &s->backends[i].addr));
			assert_int_equal(got.backends[i].weight,
					 s->backends[i].weight);
			assert_int_equal(got.backends[i].state,
					 s->backends[i].state);
		}
		free(got.backends);
		/* cut short or one byte long: not an image */
		assert_int_equal(service_image_read(out, service_image_size(s) - 1,
						    &got), -1);
	}

	/* layout 1, as an older store holds it */
	service_image_write(&v4, out);
	memcpy(old, out, 64);
	old[0] = 1;
	for (int i = 0; i < 2; i++) {
		memcpy(old + 64 + i * 19, b4[i].addr.v6, 16);
		old[64 + i * 19 + 16] = (unsigned char)b4[i].weight;
		old[64 + i * 19 + 17] = (unsigned char)(b4[i].weight >> 8);
		old[64 + i * 19 + 18] = b4[i].state;
	}
	assert_int_equal(service_image_read(old, sizeof(old), &got), 0);
	assert_int_equal(got.n_backends, 2);
	assert_true(ip_addr_eq(&got.backends[1].addr, &b4[1].addr));
	assert_int_equal(got.backends[1].weight, 65535);
	assert_int_equal(got.backends[1].state, 2);
	free(got.backends);
	old[0] = 3;
	assert_int_equal(service_image_read(old, sizeof(old), &got), -1);
}

/* Service web with backends 10.0.1.10, .11, ... in the states given, in
 * address order as the model keeps them, in room. */
static struct service lineup(struct backend *room, const char *states)
{
	struct service s = { .name = "web", .family = AF_INET };

	s.backends = room;
	for (uint32_t i = 0; states[i]; i++) {
		struct backend b = { .weight = 1 };
		char addr[32];

		/* a: active, d: draining, x: down, '-': not there */
		if (states[i] == '-')
			continue;
		snprintf(addr, sizeof(addr), "10.0.1.%u", 10 + i);
		assert_int_equal(ip_addr_parse(addr, &b.addr, &(uint8_t){ 0 }),
				 0);
		b.state = states[i] == 'a' ? BACKEND_ACTIVE :
			  states[i] == 'd' ? BACKEND_DRAINING : BACKEND_DOWN;
		room[s.n_backends++] = b;
	}
	return s;
}

/* Whether a change takes an active backend away, the restore's risk:
 * only an active backend gone or no longer active counts. */
static void test_loses_active(void **state)
{
	static const struct { const char *from, *to; bool loses; } cases[] = {
		{ "aad", "aad", false },
		{ "aad", "a-d", true },       /* deleted */
		{ "aad", "add", true },       /* drained */
		{ "aad", "axd", true },       /* down */
		{ "aad", "aa-", false },      /* a draining one goes */
		{ "aad", "aaaa", false },     /* one more */
		{ "-aa", "aa-", true },       /* the last one gone, a new first */
		{ "dd", "--", false },
		{ "", "a", false },
	};
	struct backend b1[8], b2[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct service from = lineup(b1, cases[i].from);
		struct service to = lineup(b2, cases[i].to);

		if (service_loses_active(&from, &to) != cases[i].loses)
			fail_msg("%s -> %s", cases[i].from, cases[i].to);
	}
	/* a service that goes loses its active backends, if it had any */
	{
		struct service from = lineup(b1, "da");

		assert_true(service_loses_active(&from, NULL));
		from = lineup(b1, "dx");
		assert_false(service_loses_active(&from, NULL));
		assert_false(service_loses_active(NULL, &from));
	}
}

/* Backends filled at once: copied when in address order, else added one
 * by one, which keeps the order and refuses an address twice. */
static void test_backends_fill(void **state)
{
	struct backend sorted[3], reversed[3], twice[2];
	struct service t = { .name = "t" };

	(void)state;
	lineup(sorted, "aad");
	assert_int_equal(service_backends_fill(&t, sorted, 3), 0);
	assert_int_equal(t.n_backends, 3);
	assert_memory_equal(t.backends, sorted, sizeof(sorted));
	free(t.backends);

	for (int i = 0; i < 3; i++)
		reversed[i] = sorted[2 - i];
	t = (struct service){ .name = "t" };
	assert_int_equal(service_backends_fill(&t, reversed, 3), 0);
	assert_int_equal(t.n_backends, 3);
	assert_memory_equal(t.backends, sorted, sizeof(sorted));
	free(t.backends);

	twice[0] = twice[1] = sorted[0];
	t = (struct service){ .name = "t" };
	assert_int_equal(service_backends_fill(&t, twice, 2), -1);
	free(t.backends);
}

/* The copy, opened as a store of its own, must be the store after every
 * change; and the store must come back from it when its file is lost. */
static void test_backup(void **state)
{
	struct env *e = *state;
	char want[STORE_DIGEST_LEN], got[STORE_DIGEST_LEN];
	char lost[160], path[160];
	struct store *b;
	json_t *s1, *s2;

	for (size_t i = 0; i < N_STEPS; i++) {
		commit(e->st, steps[i]);
		b = store_open(e->backup, NULL, err, sizeof(err));
		if (!b)
			fail_msg("opening the backup: %s", err);
		assert_int_equal(store_version(b), store_version(e->st));
		store_digest(e->st, want);
		store_digest(b, got);
		assert_string_equal(got, want);
		store_close(b);
	}

	/* Lose the store: it comes back from the copy, history and all. */
	s1 = state_of(e->st);
	store_close(e->st);
	e->st = NULL;
	snprintf(lost, sizeof(lost), "%s/lost.db", e->dir);
	assert_int_equal(rename(e->path, lost), 0);
	reopen(e);
	assert_int_equal(store_version(e->st), N_STEPS);
	s2 = state_of(e->st);
	assert_true(json_equal(s1, s2));
	json_decref(s1);
	json_decref(s2);
	s1 = store_state_at(e->st, 3, err, sizeof(err));
	assert_non_null(s1);
	json_decref(s1);

	/* An older store put back in place while the copy is newer. */
	commit(e->st, web);
	store_close(e->st);
	e->st = NULL;
	assert_int_equal(rename(lost, e->path), 0);
	snprintf(path, sizeof(path), "%s-wal", e->path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", e->path);
	unlink(path);
	assert_null(store_open(e->path, e->backup, err, sizeof(err)));
	assert_non_null(strstr(err, "ahead of"));
	/* Without the copy it opens, and makes a new one at once. */
	assert_int_equal(unlink(e->backup), 0);
	reopen(e);
	assert_int_equal(store_version(e->st), N_STEPS);
	assert_null(store_backup_error(e->st));
	b = store_open(e->backup, NULL, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(store_version(b), N_STEPS);
	store_close(b);
}

/* Column c of the row q is at as text, a blob in hex. */
static char *column_text(sqlite3_stmt *q, int c)
{
	const unsigned char *b;
	size_t n;
	char *out;

	/* the type first: reading a column converts it */
	if (sqlite3_column_type(q, c) != SQLITE_BLOB) {
		out = strdup((const char *)(sqlite3_column_text(q, c) ?
					    sqlite3_column_text(q, c) :
					    (const unsigned char *)""));
		assert_non_null(out);
		return out;
	}
	b = sqlite3_column_blob(q, c);
	n = (size_t)sqlite3_column_bytes(q, c);
	out = malloc(2 * n + 1);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
	return out;
}

/* Every row of the tables at path, in key order, as text. */
static char *rows_of(const char *path)
{
	static const char *const tables[] = {
		"meta", "services", "change_log", "service_images",
	};
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	sqlite3 *db = NULL;

	assert_non_null(out);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		char sql[128];
		sqlite3_stmt *q;

		snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1, 2",
			 tables[t]);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL),
				 SQLITE_OK);
		while (sqlite3_step(q) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(q); c++) {
				char *v = column_text(q, c);
				size_t n = strlen(v) + 2;

				while (len + n + 1 > cap) {
					out = realloc(out, cap *= 2);
					assert_non_null(out);
				}
				len += (size_t)snprintf(out + len, cap - len,
							"%s%c", v,
							c + 1 < sqlite3_column_count(q) ?
							'|' : '\n');
				free(v);
			}
		}
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
	return out;
}

static void assert_same_rows(const char *a, const char *b)
{
	char *x = rows_of(a), *y = rows_of(b);

	if (strcmp(x, y) != 0)
		fail_msg("%s and %s differ:\n%s\n--\n%s", a, b, x, y);
	free(x);
	free(y);
}

/* The one integer sql reads from the store at path; -1 for no row. */
static int64_t query_int(const char *path, const char *sql)
{
	sqlite3_stmt *q;
	sqlite3 *db;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* The store at path rewritten in schema 2's tables, a row per service
 * and per backend as text, from state (store_state's JSON): a store as
 * the build before the services were kept whole left it. */
static void write_schema_2(const char *path, const json_t *state)
{
	const json_t *svc, *b;
	sqlite3_stmt *ins_s, *ins_b;
	size_t i, j;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN; DROP TABLE services;"
		"CREATE TABLE services (name TEXT PRIMARY KEY, vip TEXT NOT NULL,"
		" proto TEXT NOT NULL, port INTEGER NOT NULL, mode TEXT NOT NULL,"
		" table_size INTEGER NOT NULL, gue_port INTEGER NOT NULL);"
		"CREATE TABLE backends (service TEXT NOT NULL REFERENCES"
		" services (name), addr TEXT NOT NULL, weight INTEGER NOT NULL,"
		" state TEXT NOT NULL, PRIMARY KEY (service, addr))"
		" WITHOUT ROWID;"
		"UPDATE meta SET value = '2' WHERE key = 'schema_version';",
		NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO services VALUES"
					    " (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
					    -1, &ins_s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO backends VALUES"
					    " (?1, ?2, ?3, ?4)", -1, &ins_b,
					    NULL), SQLITE_OK);
	json_array_foreach(json_object_get(state, "services"), i, svc) {
		static const char *const text[] = { "name", "vip", "proto",
			NULL, "mode" };
		const char *name = json_string_value(json_object_get(svc, "name"));

		for (int c = 0; c < 5; c++)
			if (text[c])
				sqlite3_bind_text(ins_s, c + 1, json_string_value(
					json_object_get(svc, text[c])), -1,
					SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins_s, 4, json_integer_value(
					   json_object_get(svc, "port")));
		sqlite3_bind_int64(ins_s, 6, json_integer_value(
					   json_object_get(svc, "table_size")));
		sqlite3_bind_int64(ins_s, 7, json_integer_value(
					   json_object_get(svc, "gue_port")));
		assert_int_equal(sqlite3_step(ins_s), SQLITE_DONE);
		sqlite3_reset(ins_s);
		json_array_foreach(json_object_get(svc, "backends"), j, b) {
			sqlite3_bind_text(ins_b, 1, name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(ins_b, 2, json_string_value(
				json_object_get(b, "addr")), -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(ins_b, 3, json_integer_value(
				json_object_get(b, "weight")));
			sqlite3_bind_text(ins_b, 4, json_string_value(
				json_object_get(b, "state")), -1, SQLITE_TRANSIENT);
			assert_int_equal(sqlite3_step(ins_b), SQLITE_DONE);
			sqlite3_reset(ins_b);
		}
	}
	sqlite3_finalize(ins_s);
	sqlite3_finalize(ins_b);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int schema_at(const char *path)
{
	return (int)query_int(path, "SELECT value FROM meta"
			      " WHERE key = 'schema_version'");
}

static void sql_at(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* A store of schema 2 (and its backup) is upgraded in place when it is
 * opened for writing: the same state, version, digest and log, the backup
 * copied anew in the new schema. Read-only readers, which cannot upgrade
 * it, say so; one changed behind the control plane's back is refused and
 * left at schema 2, as it was found. */
static void test_upgrade_from_schema_2(void **state)
{
	struct env *e = *state;
	char before[STORE_DIGEST_LEN], after[STORE_DIGEST_LEN];
	json_t *was, *log_was, *log_now;
	uint64_t version = 0;

	commit(e->st, web);
	commit(e->st, dns);
	commit(e->st, six);
	was = state_of(e->st);
	store_digest(e->st, before);
	log_was = store_history(e->st, 0, 0, err, sizeof(err));
	assert_non_null(log_was);
	store_close(e->st);
	e->st = NULL;
	write_schema_2(e->path, was);
	write_schema_2(e->backup, was);
	assert_int_equal(schema_at(e->path), 2);

	assert_null(store_read_state(e->path, &version, after, err,
				     sizeof(err)));
	assert_non_null(strstr(err, "schema version 2 is older than this "
			       "build's"));

	sql_at(e->path, "UPDATE backends SET weight = weight + 1"
	       " WHERE addr = '10.0.1.20'");
	assert_null(store_open(e->path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "schema 2: the stored services hash to"));
	assert_int_equal(schema_at(e->path), 2);
	sql_at(e->path, "UPDATE backends SET weight = weight - 1"
	       " WHERE addr = '10.0.1.20'");

	reopen(e);
	assert_int_equal(schema_at(e->path), STORE_SCHEMA_VERSION);
	assert_int_equal(store_version(e->st), 3);
	store_digest(e->st, after);
	assert_string_equal(before, after);
	assert_state_services(e->st, was);
	log_now = store_history(e->st, 0, 0, err, sizeof(err));
	assert_true(json_equal(log_was, log_now));
	assert_int_equal(schema_at(e->backup), STORE_SCHEMA_VERSION);
	assert_same_rows(e->path, e->backup);
	commit(e->st, "[{\"op\": \"service_del\", \"name\": \"dns\"}]");
	reopen(e);
	assert_int_equal(store_version(e->st), 4);
	assert_same_rows(e->path, e->backup);
	json_decref(was);
	json_decref(log_was);
	json_decref(log_now);
}

/* The newest version in the change log of the store at path. */
static int64_t logged_version(const char *path)
{
	return query_int(path, "SELECT max(version) FROM change_log");
}

/* "name changed" or "name removed", in the order told */
static int tell_change(const struct service *now, const struct service *then,
		       void *arg)
{
	char line[80];

	snprintf(line, sizeof(line), "%s %s", now ? now->name : then->name,
		 now ? "changed" : "removed");
	return json_array_append_new(arg, json_string(line));
}

/* What a store hook saw. */
struct hook_seen {
	const char *backup;
	int calls;
	uint64_t version;
	int64_t backup_version;
	int just_rc, since_rc;
	json_t *told;
};

/* Both hooks' sightings, applied's then durable's. */
static void look_in_hook(struct store *st, struct hook_seen *d)
{
	char why[256];

	d->calls++;
	d->version = store_version(st);
	d->backup_version = logged_version(d->backup);
	d->just_rc = store_just_changed(st, tell_change, d->told, why,
					sizeof(why));
	d->since_rc = store_changed_since(st, 0, tell_change, d->told, why,
					  sizeof(why));
}

static void look_applied(struct store *st, void *arg)
{
	look_in_hook(st, &((struct hook_seen *)arg)[0]);
}

static void look_durable(struct store *st, void *arg)
{
	look_in_hook(st, &((struct hook_seen *)arg)[1]);
}

/* store_commit_then's applied hook runs with the change made in memory
 * and nothing of it written, the store at the version before; its
 * durable hook with the change durable and the store at its new version,
 * before the backup copy has the change (fulcrumd overlaps the
 * dataplane's build with both). In each, store_just_changed tells what
 * store_changed_since tells afterwards, service made and deleted within
 * the change left out, and store_changed_since, which would rewind the
 * model under the change, is refused. A refused change calls no hook. */
static void test_commit_then(void **state)
{
	struct env *e = *state;
	struct hook_seen seen[2] = {
		{ .backup = e->backup, .told = json_array() },
		{ .backup = e->backup, .told = json_array() },
	};
	const struct store_hooks hooks = { look_applied, look_durable, seen };
	struct hook_seen *a = &seen[0], *d = &seen[1];
	json_t *since = json_array(), *ops;
	uint64_t v = 0;

	commit(e->st, web);
	commit(e->st, dns);
	/* touched x, web, tmp, dns: told by name */
	ops = json_loads("[{\"op\": \"service_add\", \"name\": \"x\", \"mode\": \"ipip\","
		"  \"vip\": \"10.0.0.201\", \"proto\": \"tcp\", \"port\": 80},"
		" {\"op\": \"backend_add\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.4\", \"weight\": 5},"
		" {\"op\": \"service_add\", \"name\": \"tmp\", \"mode\": \"ipip\","
		"  \"vip\": \"10.0.0.200\", \"proto\": \"tcp\", \"port\": 80},"
		" {\"op\": \"service_del\", \"name\": \"tmp\"},"
		" {\"op\": \"service_del\", \"name\": \"dns\"}]",
		0, NULL);
	assert_non_null(ops);
	if (store_commit_then(e->st, &alice, ops, &hooks, &v, err,
			      sizeof(err)) != STORE_OK)
		fail_msg("refused: %s", err);
	json_decref(ops);
	assert_int_equal(a->calls, 1);
	assert_int_equal(a->version, 2);
	assert_int_equal(d->calls, 1);
	assert_int_equal(d->version, 3);
	assert_int_equal(v, 3);
	assert_int_equal(a->backup_version, 2);
	assert_int_equal(d->backup_version, 2);
	assert_int_equal(a->just_rc, 0);
	assert_int_equal(d->just_rc, 0);
	assert_json_text(d->told, "[\"dns removed\", \"web changed\","
			 " \"x changed\"]");
	assert_true(json_equal(a->told, d->told));
	assert_int_equal(a->since_rc, -1);
	assert_int_equal(d->since_rc, -1);
	assert_int_equal(logged_version(e->backup), 3);
	assert_int_equal(store_changed_since(e->st, 2, tell_change, since, err,
					     sizeof(err)), 0);
	assert_true(json_equal(since, d->told));
	/* outside a hook there is nothing to tell */
	assert_int_equal(store_just_changed(e->st, tell_change, since, err,
					    sizeof(err)), -1);

	ops = json_loads("[{\"op\": \"service_del\", \"name\": \"nope\"}]",
			 0, NULL);
	assert_int_equal(store_commit_then(e->st, &alice, ops, &hooks, &v, err,
					   sizeof(err)), -1);
	json_decref(ops);
	assert_int_equal(a->calls, 1);
	assert_int_equal(d->calls, 1);
	assert_int_equal(store_version(e->st), 3);
	json_decref(a->told);
	json_decref(d->told);
	json_decref(since);
}

/* The text a change's ops were read from, given with them, is what the
 * log keeps, as it is, in the store and in its copy; the history gives
 * back the ops it holds. */
static void test_commit_logs_text_given(void **state)
{
	struct env *e = *state;
	struct change_meta meta = alice;
	json_t *ops = json_loads(web, 0, NULL), *h;
	const char *paths[2] = { e->path, e->backup };
	uint64_t v;

	assert_non_null(ops);
	meta.ops_text = web;
	assert_int_equal(store_commit(e->st, &meta, ops, &v, err, sizeof(err)),
			 STORE_OK);
	h = store_history(e->st, 1, 0, err, sizeof(err));
	assert_non_null(h);
	assert_true(json_equal(json_object_get(json_array_get(h, 0), "ops"),
			       ops));
	json_decref(h);
	json_decref(ops);
	for (int i = 0; i < 2; i++) {
		sqlite3 *db;
		sqlite3_stmt *q;

		assert_int_equal(sqlite3_open(paths[i], &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT ops FROM change_log"
						    " WHERE version = 1", -1, &q,
						    NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(q, 0), web);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
}

/* Changes reach the copy one by one, not as whole copies: it must hold
 * the very rows the store holds, log entries and their times included,
 * after each of them. */
static void test_backup_follows_each_change(void **state)
{
	struct env *e = *state;

	for (size_t i = 0; i < N_STEPS; i++) {
		commit(e->st, steps[i]);
		assert_null(store_backup_error(e->st));
		assert_same_rows(e->path, e->backup);
	}
	reopen(e);
	commit(e->st, web);
	assert_same_rows(e->path, e->backup);
}

/* A change that rewrites much of the store reaches the copy as a whole
 * copy instead (more than 10,000 rows here), and the changes after it go
 * row by row again: the copy holds the store's rows either way. */
static void test_backup_after_big_change(void **state)
{
	struct env *e = *state;
	size_t cap = 1 << 20, len = 0;
	char *ops = malloc(cap);

	assert_non_null(ops);
	len += (size_t)snprintf(ops + len, cap - len, "[");
	for (int s = 0; s < 101; s++) {
		len += (size_t)snprintf(ops + len, cap - len, "%s{\"op\":"
					" \"service_add\", \"name\": \"s%d\","
					" \"vip\": \"10.64.0.%d\", \"proto\":"
					" \"tcp\", \"port\": 80, \"mode\":"
					" \"ipip\", \"backends\": [",
					s ? ", " : "", s, s + 1);
		for (int b = 0; b < 100; b++)
			len += (size_t)snprintf(ops + len, cap - len,
						"%s{\"addr\": \"10.%d.0.%d\","
						" \"weight\": 1}", b ? ", " : "",
						128 + b, s + 1);
		len += (size_t)snprintf(ops + len, cap - len, "]}");
	}
	snprintf(ops + len, cap - len, "]");
	assert_true(len < cap - 2);
	commit(e->st, web);
	commit(e->st, ops);
	assert_null(store_backup_error(e->st));
	assert_same_rows(e->path, e->backup);
	commit(e->st, dns);
	assert_same_rows(e->path, e->backup);
	free(ops);
}

/* A copy changed behind the store's back is never patched: the next
 * change copies the whole store over it, or makes it anew. */
static void test_backup_changed_behind_back(void **state)
{
	struct env *e = *state;
	sqlite3 *db = NULL;

	for (size_t i = 0; i < 3; i++)
		commit(e->st, steps[i]);
	assert_int_equal(sqlite3_open(e->backup, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM services", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	commit(e->st, steps[3]);
	assert_same_rows(e->path, e->backup);

	assert_int_equal(unlink(e->backup), 0);
	commit(e->st, steps[4]);
	assert_same_rows(e->path, e->backup);
}

/* A copy that cannot be written does not cost the change. */
static void test_backup_failure_keeps_commit(void **state)
{
	struct env *e = *state;
	char backup[160];
	uint64_t v = 0;
	int rc;

	store_close(e->st);
	snprintf(backup, sizeof(backup), "%s/no/such/dir/backup.db", e->dir);
	e->st = store_open(e->path, backup, err, sizeof(err));
	assert_non_null(e->st);
	assert_non_null(store_backup_error(e->st));
	rc = store_commit_text(e->st, &alice, web, &v, err, sizeof(err));
	assert_int_equal(rc, STORE_BACKUP_FAILED);
	assert_int_equal(v, 1);
	assert_non_null(strstr(err, backup));
	assert_non_null(store_backup_error(e->st));
	reopen(e);
	assert_int_equal(store_version(e->st), 1);
	assert_null(store_backup_error(e->st));
}

static void test_reopen_keeps_everything(void **state)
{
	struct env *e = *state;
	char d1[STORE_DIGEST_LEN], d2[STORE_DIGEST_LEN];
	json_t *s1, *s2, *h1, *h2;

	for (size_t i = 0; i < N_STEPS - 2; i++)
		commit(e->st, steps[i]);
	s1 = state_of(e->st);
	h1 = store_history(e->st, 0, 0, err, sizeof(err));
	store_digest(e->st, d1);
	reopen(e);
	s2 = state_of(e->st);
	h2 = store_history(e->st, 0, 0, err, sizeof(err));
	store_digest(e->st, d2);
	assert_true(json_equal(s1, s2));
	assert_true(json_equal(h1, h2));
	assert_string_equal(d1, d2);
	assert_int_equal(store_version(e->st), N_STEPS - 2);
	/* And goes on from there. */
	assert_int_equal(commit(e->st, steps[N_STEPS - 2]), N_STEPS - 1);
	json_decref(s1);
	json_decref(s2);
	json_decref(h1);
	json_decref(h2);
}

/* Enough services and backends to grow the indexes several times and to
 * delete across their probe runs, replayed and checked against the
 * model's own state. */
static void test_many(void **state)
{
	struct env *e = *state;
	char *ops = malloc(1 << 20);
	json_t *now, *at;
	size_t n;

	assert_non_null(ops);
	for (int round = 0; round < 3; round++) {
		n = (size_t)sprintf(ops, "[");
		for (int s = 0; s < 300; s++) {
			n += (size_t)sprintf(ops + n, "%s{\"op\": \"service_add\","
				" \"name\": \"r%d-s%d\", \"vip\": \"10.%d.%d.%d\","
				" \"proto\": \"tcp\", \"port\": 80,"
				" \"mode\": \"l2dsr\", \"backends\": [",
				s ? "," : "", round, s, round, s / 250,
				s % 250 + 1);
			for (int b = 0; b < 20; b++)
				n += (size_t)sprintf(ops + n, "%s{\"addr\":"
					" \"192.168.%d.%d\", \"weight\": %d}",
					b ? "," : "", b, s % 256, b + 1);
			n += (size_t)sprintf(ops + n, "]}");
		}
		sprintf(ops + n, "]");
		commit(e->st, ops);
		if (round == 0)
			continue;
		n = (size_t)sprintf(ops, "[");
		for (int s = 0; s < 300; s += 2)
			n += (size_t)sprintf(ops + n, "%s{\"op\": \"service_del\","
				" \"name\": \"r%d-s%d\"}", s ? "," : "",
				round - 1, s);
		sprintf(ops + n, "]");
		commit(e->st, ops);
	}
	free(ops);
	now = state_of(e->st);
	assert_int_equal(json_array_size(json_object_get(now, "services")),
			 600);
	reopen(e);
	at = store_state_at(e->st, store_version(e->st), err, sizeof(err));
	if (!at)
		fail_msg("store_state_at: %s", err);
	assert_true(json_equal(now, at));
	json_decref(now);
	json_decref(at);
}

/* The digest is defined on jansson's canonical dump of each service
 * (model.h); the store writes that text itself, keeps each service's hash
 * between changes, and must match this, computed from the JSON alone. */
static void assert_digest_is_canonical(struct store *st)
{
	char want[STORE_DIGEST_LEN], got[STORE_DIGEST_LEN];
	unsigned char md[EVP_MAX_MD_SIZE], one[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0, one_len = 0;
	EVP_MD_CTX *top = EVP_MD_CTX_new();
	json_t *s = state_of(st), *svc;
	size_t i;

	assert_int_equal(EVP_DigestInit_ex(top, EVP_sha256(), NULL), 1);
	json_array_foreach(json_object_get(s, "services"), i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));
		char *text = json_dumps(svc, JSON_SORT_KEYS | JSON_COMPACT);

		assert_non_null(text);
		assert_int_equal(EVP_Digest(text, strlen(text), one, &one_len,
					    EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(top, name, strlen(name) + 1), 1);
		assert_int_equal(EVP_DigestUpdate(top, one, one_len), 1);
		free(text);
	}
	assert_int_equal(EVP_DigestFinal_ex(top, md, &md_len), 1);
	for (unsigned int k = 0; k < md_len; k++)
		sprintf(want + 2 * k, "%02x", md[k]);
	store_digest(st, got);
	assert_string_equal(got, want);
	EVP_MD_CTX_free(top);
	json_decref(s);
}

static void test_digest_canonical(void **state)
{
	struct env *e = *state;

	assert_digest_is_canonical(e->st);
	for (size_t i = 0; i < N_STEPS; i++) {
		commit(e->st, steps[i]);
		assert_digest_is_canonical(e->st);
	}
	/* a change that edits a service and then fails leaves that service
	 * as it was, kept hash and all */
	commit(e->st, web);
	assert_digest_is_canonical(e->st);
	assert_refused(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
		       " \"addr\": \"10.0.1.3\", \"weight\": 9},"
		       " {\"op\": \"service_del\", \"name\": \"nope\"}]",
		       "nope");
	assert_digest_is_canonical(e->st);
}

/* A file's bytes and modification time, to show that a reader left it
 * as it found it. */
struct snapshot {
	char *bytes;
	size_t len;
	struct timespec mtime;
};

static struct snapshot snapshot(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct snapshot s;
	struct stat sb;

	if (!f)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fstat(fileno(f), &sb), 0);
	s.len = (size_t)sb.st_size;
	s.mtime = sb.st_mtim;
	s.bytes = malloc(s.len + 1);
	assert_non_null(s.bytes);
	assert_int_equal(fread(s.bytes, 1, s.len, f), s.len);
	fclose(f);
	return s;
}

static void assert_unchanged(const char *path, struct snapshot *before)
{
	struct snapshot after = snapshot(path);

	assert_int_equal(after.len, before->len);
	assert_memory_equal(after.bytes, before->bytes, after.len);
	assert_int_equal(after.mtime.tv_sec, before->mtime.tv_sec);
	assert_int_equal(after.mtime.tv_nsec, before->mtime.tv_nsec);
	free(after.bytes);
	free(before->bytes);
}

static bool exists(const char *path, const char *suffix)
{
	char name[160];

	snprintf(name, sizeof(name), "%s%s", path, suffix);
	return access(name, F_OK) == 0;
}

/* store_read_services' services, put back into store_state's shape. */
static int as_json(const struct store_service *s, size_t i, void *arg)
{
	json_t *services = arg, *backends = json_array();
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(json_array_size(services), i);
	for (uint32_t j = 0; j < s->n_backends; j++)
		json_array_append_new(backends, json_pack(
			"{s:s, s:I, s:s}", "addr",
			ip_addr_str(&s->backends[j].addr, s->family, text,
				    sizeof(text)),
			"weight", (json_int_t)s->backends[j].weight,
			"state", s->backends[j].state));
	json_array_append_new(services, json_pack(
		"{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:o}", "name", s->name,
		"vip", ip_addr_str(&s->vip, s->family, text, sizeof(text)),
		"proto", s->proto == IPPROTO_TCP ? "tcp" : "udp",
		"port", (json_int_t)s->port, "mode", s->mode,
		"table_size", (json_int_t)s->table_size,
		"gue_port", (json_int_t)s->gue_port, "backends", backends));
	return 0;
}

/* store_read_state must give what store_state gives, at its version, and
 * store_read_services the very same services. */
static void assert_read_state(const char *path, const json_t *want,
			      uint64_t want_version)
{
	char digest2[STORE_DIGEST_LEN];
	uint64_t version = 0, version2 = 0;
	json_t *got = store_read_state(path, &version, digest, err, sizeof(err));
	json_t *services = json_array();
	size_t n = 0;

	if (!got)
		fail_msg("store_read_state: %s", err);
	assert_int_equal(version, want_version);
	assert_true(json_equal(got, (json_t *)want));
	json_decref(got);

	if (store_read_services(path, &version2, digest2, &n, as_json,
				services, err, sizeof(err)) < 0)
		fail_msg("store_read_services: %s", err);
	assert_int_equal(version2, want_version);
	assert_string_equal(digest2, digest);
	assert_int_equal(n, json_array_size(services));
	assert_true(json_equal(services, json_object_get(want, "services")));
	json_decref(services);
}

static char wal_path[160];

static const char *wal_of(const struct env *e)
{
	snprintf(wal_path, sizeof(wal_path), "%s-wal", e->path);
	return wal_path;
}

/* The dataplane reads the store while fulcrumd has it open, commits only
 * in the WAL file: it sees the last commit and writes neither file. */
static void test_read_state_while_open(void **state)
{
	struct env *e = *state;
	struct snapshot db, wal;
	json_t *want;

	commit(e->st, web);
	commit(e->st, dns);
	assert_true(exists(e->path, "-wal"));
	want = state_of(e->st);
	db = snapshot(e->path);
	wal = snapshot(wal_of(e));
	assert_read_state(e->path, want, 2);
	assert_unchanged(e->path, &db);
	assert_unchanged(wal_of(e), &wal);
	json_decref(want);
	/* and fulcrumd goes on as if nobody had read */
	commit(e->st, six);
	assert_int_equal(store_version(e->st), 3);
}

/* With fulcrumd gone after a clean close, the store is one file, and the
 * read leaves it so: no WAL or shared-memory file appears next to it. */
static void test_read_state_closed(void **state)
{
	struct env *e = *state;
	struct snapshot db;
	json_t *want;

	commit(e->st, web);
	want = state_of(e->st);
	store_close(e->st);
	e->st = NULL;
	assert_false(exists(e->path, "-wal"));
	db = snapshot(e->path);
	assert_read_state(e->path, want, 1);
	assert_unchanged(e->path, &db);
	assert_false(exists(e->path, "-wal"));
	assert_false(exists(e->path, "-shm"));
	json_decref(want);
}

/* fulcrumd killed right after a commit, before anything moved the commit
 * from the WAL file into the store's file: the read must see it, as
 * reading the store's file alone would not. */
static void test_read_state_after_crash(void **state)
{
	struct env *e = *state;
	struct snapshot db, wal;
	char want_digest[STORE_DIGEST_LEN];
	uint64_t version = 0;
	json_t *got, *want;
	pid_t pid;
	int status;

	commit(e->st, web);
	store_close(e->st);
	e->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st = store_open(e->path, NULL, err, sizeof(err));
		uint64_t v;

		_exit(st && store_commit_text(st, &alice, dns, &v, err,
					      sizeof(err)) == STORE_OK ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(exists(e->path, "-wal"));
	db = snapshot(e->path);
	wal = snapshot(wal_of(e));
	got = store_read_state(e->path, &version, digest, err, sizeof(err));
	if (!got)
		fail_msg("store_read_state: %s", err);
	assert_unchanged(e->path, &db);
	assert_unchanged(wal_of(e), &wal);
	/* what fulcrumd finds when it comes back */
	reopen(e);
	want = state_of(e->st);
	assert_int_equal(version, 2);
	assert_int_equal(store_version(e->st), 2);
	store_digest(e->st, want_digest);
	assert_string_equal(digest, want_digest);
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
}

/* A store changed behind fulcrumd's back is refused, whether fulcrumd
 * has it open or not, and left as it was found for the operator. */
static void test_read_state_refuses_tampered(void **state)
{
	struct env *e = *state;
	struct snapshot db;
	uint64_t version = 0;
	char path[160];
	FILE *f;

	commit(e->st, web);
	tamper_backends(e->path, "web", 7, BACKEND_ACTIVE);
	assert_null(store_read_state(e->path, &version, digest, err, sizeof(err)));
	assert_non_null(strstr(err, "the change log says"));

	store_close(e->st);
	e->st = NULL;
	db = snapshot(e->path);
	assert_null(store_read_state(e->path, &version, digest, err, sizeof(err)));
	assert_non_null(strstr(err, "the change log says"));
	assert_unchanged(e->path, &db);
	assert_false(exists(e->path, "-wal"));

	/* nothing there; something that is not a store */
	snprintf(path, sizeof(path), "%s/none.db", e->dir);
	assert_null(store_read_state(path, &version, digest, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_false(exists(path, ""));
	snprintf(path, sizeof(path), "%s/garbage.db", e->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a database\n", f);
	fclose(f);
	assert_null(store_read_state(path, &version, digest, err, sizeof(err)));
	assert_non_null(strstr(err, path));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_create),
		T(test_commit_read_back),
		T(test_invalid_refused),
		T(test_half_way),
		T(test_log_attributable),
		T(test_version_monotonic),
		T(test_log_append_only),
		T(test_tampering_detected),
		T(test_upgrade_from_schema_2),
		T(test_commit_finds_rows_deleted),
		T(test_deleted_service_in_history),
		T(test_state_at),
		T(test_changed_since),
		T(test_changed_since_only_changed),
		T(test_changed_since_damaged),
		cmocka_unit_test(test_image_layouts),
		T(test_restore_plan_each_version),
		T(test_backup),
		T(test_backup_failure_keeps_commit),
		T(test_commit_logs_text_given),
		T(test_commit_then),
		cmocka_unit_test(test_loses_active),
		cmocka_unit_test(test_backends_fill),
		T(test_backup_follows_each_change),
		T(test_backup_after_big_change),
		T(test_backup_changed_behind_back),
		T(test_reopen_keeps_everything),
		T(test_many),
		T(test_digest_canonical),
		T(test_read_state_while_open),
		T(test_read_state_closed),
		T(test_read_state_after_crash),
		T(test_read_state_refuses_tampered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
