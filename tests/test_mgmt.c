/* The management protocol fulcrumd serves (mgmt.h), driven without its
 * socket: reads, refusals that change nothing, environment checks, the
 * safety rule on changes, declarative apply, diffs between versions, the
 * plan that both are built on, the line framing of both sockets, and the
 * sync with a fake dataplane that listens on a socket of its own. Each
 * test works in a directory of its own under /tmp. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <limits.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "change.h"
#include "heal.h"
#include "jsonline.h"
#include "mgmt.h"
#include "model.h"
#include "plan.h"
#include "service_batch.h"

/* A dataplane that answers "state" with what it was given, "digest" with
 * its hash, and "apply" by taking the pushed state, keeping every apply it
 * got; a conditional apply it refuses, as the real one does, unless it
 * runs the version and digest expected. An apply with "hold" it takes
 * only at the "publish" that follows on the same connection. */
struct fake_dp {
	pthread_t thread;
	int lfd;
	volatile bool stop;
	pthread_mutex_t lock;
	json_int_t version;
	char digest[STORE_DIGEST_LEN];   /* as the last apply labelled it */
	json_t *services;
	json_t *applied;        /* the apply requests, in order, each with
				 * the services it left live as "result" */
	json_t *held;           /* a held apply, as it will go in the list */
	unsigned int n_state;   /* "state" and "digest" requests answered */
	bool no_delta;          /* as an older dataplane: whole states only */
	char path[DAEMON_TEXT_LEN];
};

struct env {
	char dir[64];
	struct fulcrumd d;
	struct peer peer;
	struct fake_dp *dp;
};

static char err[1024];

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
	snprintf(e->dir, sizeof(e->dir), "/tmp/fulcrum-mgmt-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	daemon_config_defaults(&e->d.cfg);
	snprintf(e->d.cfg.environment, sizeof(e->d.cfg.environment),
		 "production");
	snprintf(e->d.cfg.cluster_id, sizeof(e->d.cfg.cluster_id), "c1");
	snprintf(e->d.cfg.dataplane_socket, sizeof(e->d.cfg.dataplane_socket),
		 "%s/dataplane.sock", e->dir);
	snprintf(e->d.cfg.admins, sizeof(e->d.cfg.admins), "alice");
	snprintf(e->d.cfg.operators, sizeof(e->d.cfg.operators), "carol");
	snprintf(e->d.cfg.viewers, sizeof(e->d.cfg.viewers), "bob");
	snprintf(e->d.cfg.audit_log, sizeof(e->d.cfg.audit_log), "%s/audit.log",
		 e->dir);
	snprintf(e->d.cfg.freeze_file, sizeof(e->d.cfg.freeze_file), "%s/freeze",
		 e->dir);
	snprintf(e->d.cfg.plans_dir, sizeof(e->d.cfg.plans_dir), "%s/plans",
		 e->dir);
	snprintf(e->d.cfg.store, sizeof(e->d.cfg.store), "%s/state.db", e->dir);
	snprintf(e->d.cfg.backup, sizeof(e->d.cfg.backup), "%s/backup.db",
		 e->dir);
	e->d.store = store_open(e->d.cfg.store, e->d.cfg.backup, err,
				sizeof(err));
	if (!e->d.store)
		fail_msg("store_open: %s", err);
	e->d.sync.socket = e->d.cfg.dataplane_socket;
	e->peer = (struct peer){ .uid = 1000, .gid = 1000, .user = "alice" };
	*state = e;
	return 0;
}

static void fake_stop(struct fake_dp *f);

static int teardown(void **state)
{
	struct env *e = *state;

	if (e->dp)
		fake_stop(e->dp);
	plans_forget(&e->d);
	mgmt_free_spent(&e->d);
	store_close(e->d.store);
	nftw(e->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (!j)
		fail_msg("bad JSON in the test: %s: %s", je.text, text);
	return j;
}

/* Sends one request, as text, and returns the response. */
static json_t *ask(struct env *e, const char *text)
{
	json_t *req = parse(text), *resp;

	resp = mgmt_handle(&e->d, &e->peer, req);
	json_decref(req);
	assert_non_null(resp);
	return resp;
}

static char *dump(const json_t *j)
{
	static char text[8192];
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	snprintf(text, sizeof(text), "%s", s ? s : "(null)");
	free(s);
	return text;
}

static void assert_ok(const json_t *resp)
{
	if (!json_is_true(json_object_get(resp, "ok")))
		fail_msg("refused: %s", dump(resp));
}

static void assert_json_text(const json_t *got, const char *want_text)
{
	json_t *want = parse(want_text);

	if (!json_equal((json_t *)got, want))
		fail_msg("got %s\nwant %s", dump(got), want_text);
	json_decref(want);
}

/* Asks, expects ok, and returns the response for a closer look. */
static json_t *ask_ok(struct env *e, const char *text)
{
	json_t *resp = ask(e, text);

	assert_ok(resp);
	return resp;
}

/* The request must be refused with an error holding each of the
 * NULL-terminated strings, and the store must be as it was. */
static void assert_refused(struct env *e, const char *text, ...)
{
	char before[STORE_DIGEST_LEN], after[STORE_DIGEST_LEN];
	uint64_t version = store_version(e->d.store);
	const char *error, *want;
	json_t *resp;
	va_list ap;

	store_digest(e->d.store, before);
	resp = ask(e, text);
	if (!json_is_false(json_object_get(resp, "ok")))
		fail_msg("not refused: %s\n-> %s", text, dump(resp));
	error = json_string_value(json_object_get(resp, "error"));
	if (!error || !*error)
		fail_msg("refused without an error: %s", dump(resp));
	va_start(ap, text);
	while ((want = va_arg(ap, const char *)))
		if (!strstr(error, want))
			fail_msg("%s\nrefused with '%s', expected '%s'", text,
				 error, want);
	va_end(ap);
	json_decref(resp);
	assert_int_equal(store_version(e->d.store), version);
	store_digest(e->d.store, after);
	assert_string_equal(before, after);
}

static json_int_t int_at(const json_t *j, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		j = json_object_get(j, key);
		path = dot + 1;
	}
	if (!json_is_integer(json_object_get(j, path)))
		fail_msg("no integer %s", path);
	return json_integer_value(json_object_get(j, path));
}

static const char *str_at(const json_t *j, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		j = json_object_get(j, key);
		path = dot + 1;
	}
	if (!json_is_string(json_object_get(j, path)))
		fail_msg("no string %s in %s", path, dump(j));
	return json_string_value(json_object_get(j, path));
}

static json_t *services_now(struct env *e)
{
	json_t *st = store_state(e->d.store, err, sizeof(err)), *s;

	if (!st)
		fail_msg("store_state: %s", err);
	s = json_incref(json_object_get(st, "services"));
	json_decref(st);
	return s;
}

/* web, one active backend; the store's own shape, with every default. */
#define WEB_ONE \
	"{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\"," \
	" \"port\": 80, \"mode\": \"l2dsr\", \"table_size\": 65537," \
	" \"gue_port\": 6080, \"backends\": [{\"addr\": \"10.0.1.10\"," \
	" \"weight\": 1, \"state\": \"active\"}]}"

#define ADD_WEB \
	"{\"op\": \"service_add\", \"name\": \"web\", \"vip\": \"10.0.0.100\"," \
	" \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\"," \
	" \"backends\": [{\"addr\": \"10.0.1.10\", \"weight\": 1}]}"

#define ADD_DNS \
	"{\"op\": \"service_add\", \"name\": \"dns\", \"vip\": \"10.0.0.53\"," \
	" \"proto\": \"udp\", \"port\": 53, \"mode\": \"gue\"," \
	" \"table_size\": 1009, \"backends\": [{\"addr\": \"10.0.2.1\"," \
	" \"weight\": 2}]}"

/* ADD_DNS as a plan gives it back from the store: every field. */
#define DNS_ADDED \
	"{\"op\": \"service_add\", \"name\": \"dns\", \"vip\": \"10.0.0.53\"," \
	" \"proto\": \"udp\", \"port\": 53, \"mode\": \"gue\"," \
	" \"table_size\": 1009, \"gue_port\": 6080, \"backends\":" \
	" [{\"addr\": \"10.0.2.1\", \"weight\": 2, \"state\": \"active\"}]}"

#define CHANGE(ops) \
	"{\"cmd\": \"change\", \"env\": \"production\", \"reason\": \"test\"," \
	" \"ops\": [" ops "]}"

#define CHANGE_APPROVED(ops) \
	"{\"cmd\": \"change\", \"env\": \"production\", \"reason\": \"test\"," \
	" \"approved\": true, \"ops\": [" ops "]}"

static uint64_t commit_ok(struct env *e, const char *text)
{
	uint64_t before = store_version(e->d.store);
	json_t *resp = ask_ok(e, text);
	json_int_t v = int_at(resp, "version");

	assert_int_equal(v, before + 1);
	assert_int_equal(store_version(e->d.store), v);
	json_decref(resp);
	return (uint64_t)v;
}

/* ---- the fake dataplane ---- */

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
							"name")),
		      json_string_value(json_object_get(*(json_t *const *)b,
							"name")));
}

/* The live services with a delta laid over, by name as the real one
 * keeps them. */
static json_t *fake_delta(const json_t *live, const json_t *req)
{
	json_t *changed = json_object_get(req, "changed");
	json_t *gone = json_object(), *out = json_array(), *svc, **v;
	size_t i, n;

	json_array_foreach(json_object_get(req, "removed"), i, svc)
		json_object_set(gone, json_string_value(svc), json_true());
	json_array_foreach(changed, i, svc)
		json_object_set(gone, json_string_value(json_object_get(svc,
									"name")),
				json_true());
	json_array_foreach(live, i, svc)
		if (!json_object_get(gone, json_string_value(json_object_get(
				svc, "name"))))
			json_array_append(out, svc);
	json_array_foreach(changed, i, svc)
		json_array_append(out, svc);
	n = json_array_size(out);
	v = calloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(out, i));
	qsort(v, n, sizeof(*v), by_name);
	json_array_clear(out);
	for (i = 0; i < n; i++)
		json_array_append_new(out, json_deep_copy(v[i]));
	for (i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
	json_decref(gone);
	return out;
}

static int fake_take(const struct store_service *ss, size_t i, void *arg)
{
	struct backend *b = calloc(ss->n_backends + 1, sizeof(*b));
	struct service s = {
		.vip = ss->vip, .family = ss->family, .proto = ss->proto,
		.port = ss->port, .mode = (uint8_t)service_mode_parse(ss->mode),
		.table_size = ss->table_size, .gue_port = ss->gue_port,
		.n_backends = ss->n_backends, .backends = b,
	};

	(void)i;
	snprintf(s.name, sizeof(s.name), "%s", ss->name);
	for (uint32_t j = 0; b && j < ss->n_backends; j++)
		b[j] = (struct backend){
			.addr = ss->backends[j].addr,
			.weight = ss->backends[j].weight,
			.state = (uint8_t)backend_state_parse(
				ss->backends[j].state),
		};
	json_array_append_new(arg, b ? model_service_to_json(&s) : json_null());
	free(b);
	return 0;
}

/* A push as the fake keeps it: the services of its payload, which
 * fulcrumd sends in binary (service_batch.h), as the JSON form of the
 * same request (control.h) would list them; null where they do not
 * read. */
static void fake_read_payload(json_t *req, const void *payload, size_t len)
{
	static const char *const keys[] = { "services", "changed" };
	char why[256];
	size_t n;

	for (size_t k = 0; k < 2; k++) {
		json_t *list;

		if (!json_is_string(json_object_get(req, keys[k])))
			continue;
		list = json_array();
		if (service_batch_read(payload, len, &n, fake_take, list, why,
				       sizeof(why)) < 0 ||
		    json_array_size(list) != n) {
			json_decref(list);
			list = json_null();
		}
		json_object_set_new(req, keys[k], list);
	}
}

/* An apply, as kept in the list, made live. */
static json_t *fake_go_live(struct fake_dp *f, json_t *got)
{
	const char *d = json_string_value(json_object_get(got, "digest"));

	json_array_append_new(f->applied, got);
	snprintf(f->digest, sizeof(f->digest), "%s", d ? d : "");
	f->version = json_integer_value(json_object_get(got, "version"));
	json_decref(f->services);
	f->services = json_incref(json_object_get(got, "result"));
	return json_pack("{s:b, s:I, s:b}", "ok", 1, "version", f->version,
			 "changed", 1);
}

static json_t *fake_answer(struct fake_dp *f, const json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *expect = json_object_get(req, "expect"), *resp;

	pthread_mutex_lock(&f->lock);
	if (cmd && strcmp(cmd, "state") == 0 && json_is_null(f->services)) {
		/* a broken dataplane: an answer without its services */
		resp = json_pack("{s:b, s:I}", "ok", 1, "version", f->version);
	} else if (cmd && strcmp(cmd, "state") == 0) {
		f->n_state++;
		resp = json_pack("{s:b, s:I, s:O}", "ok", 1, "version",
				 f->version, "services", f->services);
	} else if (cmd && strcmp(cmd, "digest") == 0 &&
		   json_is_null(f->services)) {
		resp = json_pack("{s:b, s:I}", "ok", 1, "version", f->version);
	} else if (cmd && strcmp(cmd, "digest") == 0) {
		/* as the dataplane hashes its tables (state_digest.h) */
		char live[STORE_DIGEST_LEN], why[256];

		f->n_state++;
		resp = sync_digest(f->services, live, why, sizeof(why)) == 0 ?
		       json_pack("{s:b, s:I, s:s}", "ok", 1, "version",
				 f->version, "digest", live) :
		       json_pack("{s:b, s:s}", "ok", 0, "error", why);
	} else if (cmd && strcmp(cmd, "apply") == 0 && expect &&
		   !(f->digest[0] && json_integer_value(json_object_get(
				expect, "version")) == f->version &&
		     strcmp(json_string_value(json_object_get(expect, "digest")),
			    f->digest) == 0)) {
		resp = json_pack("{s:b, s:b, s:s}", "ok", 0, "stale", 1,
				 "error", "not as expected");
	} else if (cmd && strcmp(cmd, "apply") == 0 &&
		   json_is_integer(json_object_get(req, "version")) &&
		   (json_is_array(json_object_get(req, "services")) ||
		    (!f->no_delta && expect &&
		     json_is_array(json_object_get(req, "changed")) &&
		     json_is_array(json_object_get(req, "removed"))))) {
		json_t *next = json_is_array(json_object_get(req, "services")) ?
			       json_deep_copy(json_object_get(req, "services")) :
			       fake_delta(f->services, req);
		json_t *got = json_deep_copy(req);

		json_object_set_new(got, "result", next);
		if (json_is_true(json_object_get(req, "hold"))) {
			json_decref(f->held);
			f->held = got;
			resp = json_pack("{s:b, s:b, s:O}", "ok", 1, "held", 1,
					 "version", json_object_get(req,
								    "version"));
		} else {
			resp = fake_go_live(f, got);
		}
	} else if (cmd && strcmp(cmd, "publish") == 0 && f->held) {
		json_object_set(f->held, "digest", json_object_get(req, "digest"));
		resp = fake_go_live(f, f->held);
		f->held = NULL;
	} else {
		resp = json_pack("{s:b, s:s}", "ok", 0, "error", "bad request");
	}
	pthread_mutex_unlock(&f->lock);
	return resp;
}

static void *fake_run(void *arg)
{
	struct fake_dp *f = arg;

	while (!f->stop) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		char why[256];
		json_t *req, *resp;
		void *payload;
		size_t len;
		int fd;

		/* short, so that a stop is noticed soon */
		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		while ((req = jsonline_recv_payload(fd, 64u << 20, &payload,
						    &len, why, sizeof(why)))) {
			fake_read_payload(req, payload, len);
			resp = fake_answer(f, req);
			jsonline_send(fd, resp);
			json_decref(resp);
			json_decref(req);
			free(payload);
		}
		/* what the connection held goes with it */
		pthread_mutex_lock(&f->lock);
		json_decref(f->held);
		f->held = NULL;
		pthread_mutex_unlock(&f->lock);
		close(fd);
	}
	return NULL;
}

static struct fake_dp *fake_start(struct env *e, json_int_t version,
				  const char *services)
{
	struct fake_dp *f = calloc(1, sizeof(*f));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "%s", e->d.cfg.dataplane_socket);
	f->version = version;
	f->services = parse(services);
	f->applied = json_array();
	pthread_mutex_init(&f->lock, NULL);
	assert_true(strlen(f->path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, f->path, strlen(f->path) + 1);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
	e->dp = f;
	return f;
}

static void fake_stop(struct fake_dp *f)
{
	f->stop = true;
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
	json_decref(f->services);
	json_decref(f->applied);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static size_t fake_n_applied(struct fake_dp *f)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = json_array_size(f->applied);
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* ---- 1: reads and malformed requests ---- */

static void test_reads_empty(void **state)
{
	struct env *e = *state;
	char empty[STORE_DIGEST_LEN];
	json_t *r, *none = json_array();

	assert_int_equal(sync_digest(none, empty, err, sizeof(err)), 0);
	json_decref(none);

	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_int_equal(int_at(r, "protocol"), MGMT_PROTOCOL);
	assert_string_equal(str_at(r, "environment"), "production");
	assert_string_equal(str_at(r, "cluster_id"), "c1");
	assert_int_equal(int_at(r, "store.version"), 0);
	assert_string_equal(str_at(r, "store.digest"), empty);
	/* nothing listens on the dataplane socket */
	assert_string_equal(str_at(r, "dataplane.sync"), "unreachable");
	assert_non_null(strstr(str_at(r, "dataplane.note"),
			       e->d.cfg.dataplane_socket));
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"state\"}");
	assert_int_equal(int_at(r, "version"), 0);
	assert_json_text(json_object_get(r, "services"), "[]");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"history\"}");
	assert_json_text(json_object_get(r, "entries"), "[]");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 0}");
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);

	assert_refused(e, "{\"cmd\": \"state\", \"name\": \"web\"}",
		       "no service named 'web'", NULL);
	assert_refused(e, "{\"cmd\": \"diff\", \"from\": 0, \"to\": 1}",
		       "diff:", NULL);
	/* stats are the dataplane's: none here */
	assert_refused(e, "{\"cmd\": \"stats\"}", "stats:", "cannot connect",
		       NULL);
}

static void test_reads_nonempty(void **state)
{
	struct env *e = *state;
	char digest[STORE_DIGEST_LEN];
	json_t *r, *entries;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));

	r = ask_ok(e, "{\"cmd\": \"status\"}");
	store_digest(e->d.store, digest);
	assert_int_equal(int_at(r, "store.version"), 2);
	assert_string_equal(str_at(r, "store.digest"), digest);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"state\"}");
	assert_int_equal(int_at(r, "version"), 2);
	assert_int_equal(json_array_size(json_object_get(r, "services")), 2);
	/* by name */
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(r, "services"), 0), "name")), "dns");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"state\", \"name\": \"web\"}");
	assert_json_text(json_object_get(r, "service"), WEB_ONE);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"history\"}");
	entries = json_object_get(r, "entries");
	assert_int_equal(json_array_size(entries), 2);
	assert_int_equal(int_at(json_array_get(entries, 1), "version"), 2);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"history\", \"from\": 2}");
	entries = json_object_get(r, "entries");
	assert_int_equal(json_array_size(entries), 1);
	assert_int_equal(int_at(json_array_get(entries, 0), "version"), 2);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"history\", \"limit\": 1}");
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 1);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 1}");
	assert_int_equal(int_at(r, "from"), 1);
	assert_int_equal(int_at(r, "to"), 2);
	assert_json_text(json_object_get(r, "ops"), "[" DNS_ADDED "]");
	json_decref(r);

	assert_refused(e, "{\"cmd\": \"state\", \"name\": \"mail\"}",
		       "no service named 'mail'", NULL);
	assert_refused(e, "{\"cmd\": \"history\", \"from\": -1}",
		       "must not be negative", NULL);
	assert_refused(e, "{\"cmd\": \"diff\", \"from\": -1}", "negative",
		       NULL);
	assert_refused(e, "{\"cmd\": \"diff\", \"from\": 0, \"to\": 3}",
		       "diff:", NULL);
}

static void test_bad_requests(void **state)
{
	struct env *e = *state;

	commit_ok(e, CHANGE(ADD_WEB));
	assert_refused(e, "[]", "a request is an object with a \"cmd\"", NULL);
	assert_refused(e, "\"status\"", "a request is an object", NULL);
	assert_refused(e, "42", "a request is an object", NULL);
	assert_refused(e, "{}", "a request is an object with a \"cmd\"", NULL);
	assert_refused(e, "{\"command\": \"status\"}", "\"cmd\"", NULL);
	assert_refused(e, "{\"cmd\": 7}", "\"cmd\"", NULL);
	assert_refused(e, "{\"cmd\": \"frobnicate\", \"env\": \"production\"}",
		       "unknown cmd 'frobnicate'", NULL);
	assert_refused(e, "{\"cmd\": \"diff\"}", "'from' must be a version",
		       NULL);
	assert_refused(e, "{\"cmd\": \"diff\", \"from\": \"1\"}",
		       "'from' must be a version", NULL);
	assert_refused(e, "{\"cmd\": \"diff\", \"from\": 1, \"to\": \"0\"}",
		       "'to' must be a version", NULL);
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"production\","
		       " \"ops\": {}}", "'ops' must be an array", NULL);
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"production\"}",
		       "'ops' must be an array", NULL);
	assert_refused(e, CHANGE(""), "at least one op", NULL);
	assert_refused(e, "{\"cmd\": \"apply\", \"env\": \"production\","
		       " \"services\": {}}", "'services' must be an array",
		       NULL);
}

/* ---- 2: the environment ---- */

static void test_environment(void **state)
{
	struct env *e = *state;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));
	assert_refused(e, "{\"cmd\": \"change\", \"reason\": \"x\", \"ops\": ["
		       ADD_DNS "]}", "must name the environment", NULL);
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"staging\","
		       " \"reason\": \"x\", \"ops\": [" ADD_DNS "]}",
		       "'production'", "'staging'", "Nothing changed", NULL);
	/* not a prefix match */
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"prod\","
		       " \"reason\": \"x\", \"ops\": [" ADD_DNS "]}",
		       "'production'", "'prod'", NULL);
	assert_refused(e, "{\"cmd\": \"change\", \"env\": 1, \"ops\": ["
		       ADD_DNS "]}", "must name the environment", NULL);
	assert_refused(e, "{\"cmd\": \"apply\", \"env\": \"staging\","
		       " \"services\": []}", "'production'", "'staging'",
		       NULL);
	assert_refused(e, "{\"cmd\": \"apply\", \"services\": []}",
		       "must name the environment", NULL);
	assert_refused(e, "{\"cmd\": \"adopt\", \"env\": \"staging\"}",
		       "'production'", "'staging'", NULL);
	assert_refused(e, "{\"cmd\": \"adopt\"}", "must name the environment",
		       NULL);

	/* a dry run changes nothing, so it may be run from anywhere */
	r = ask_ok(e, "{\"cmd\": \"apply\", \"dry_run\": true,"
		   " \"services\": [" WEB_ONE "]}");
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);
}

/* ---- 3: a change ---- */

static void test_change_commits(void **state)
{
	struct env *e = *state;
	json_t *r, *entry, *ops;
	char before[STORE_DIGEST_LEN], after[STORE_DIGEST_LEN];

	store_digest(e->d.store, before);
	r = ask_ok(e, "{\"cmd\": \"change\", \"env\": \"production\","
		   " \"reason\": \"ticket 42\", \"ops\": [" ADD_WEB ","
		   " {\"op\": \"backend_add\", \"service\": \"web\","
		   "  \"addr\": \"10.0.1.11\", \"weight\": 3}," ADD_DNS "]}");
	assert_int_equal(int_at(r, "version"), 1);
	/* committed, but no dataplane to take it */
	assert_true(json_is_false(json_object_get(r, "live")));
	assert_non_null(strstr(str_at(r, "note"), "cannot connect"));
	/* present as null: the backup copy is fine */
	assert_true(json_is_null(json_object_get(r, "backup_error")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 1);
	store_digest(e->d.store, after);
	assert_string_not_equal(before, after);
	assert_int_equal(e->d.sync.status, SYNC_UNREACHABLE);

	r = ask_ok(e, "{\"cmd\": \"history\"}");
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 1);
	entry = json_array_get(json_object_get(r, "entries"), 0);
	assert_int_equal(int_at(entry, "version"), 1);
	assert_string_equal(str_at(entry, "user"), "alice");
	assert_int_equal(int_at(entry, "uid"), 1000);
	assert_string_equal(str_at(entry, "environment"), "production");
	assert_string_equal(str_at(entry, "reason"), "ticket 42");
	assert_true(json_is_false(json_object_get(entry, "automatic")));
	assert_string_equal(str_at(entry, "digest"), after);
	ops = json_object_get(entry, "ops");
	assert_int_equal(json_array_size(ops), 3);
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"state\", \"name\": \"web\"}");
	assert_int_equal(json_array_size(json_object_get(json_object_get(r,
		"service"), "backends")), 2);
	json_decref(r);
}

/* ---- 4: refusals ---- */

static void test_malformed_ops(void **state)
{
	struct env *e = *state;

	commit_ok(e, CHANGE(ADD_WEB));
	assert_refused(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.300\", \"weight\": 1}"),
		       "op 0 (backend_add)", "'addr'", "10.0.1.300", NULL);
	assert_refused(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
				 " \"addr\": \"0.0.0.0\", \"weight\": 1}"),
		       "unspecified", NULL);
	assert_refused(e, CHANGE("{\"op\": \"service_rename\", \"name\": \"web\"}"),
		       "op 0", "unknown op 'service_rename'", NULL);
	assert_refused(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.10\", \"weight\": 0}"),
		       "'weight'", "outside", NULL);
	assert_refused(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.11\", \"weight\": 0}"),
		       "'weight'", NULL);
	assert_refused(e, CHANGE(ADD_WEB), "service 'web' exists already",
		       NULL);
	/* the same service twice in one change: the first half must not
	 * stay either */
	assert_refused(e, CHANGE(ADD_DNS "," ADD_DNS),
		       "op 1", "service 'dns' exists already", NULL);
	/* a good op before a bad one is not committed alone */
	assert_refused(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.11\", \"weight\": 1},"
				 " {\"op\": \"backend_add\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.11\", \"weight\": 1}"),
		       "op 1", "already has backend", NULL);
	assert_refused(e, CHANGE("42"), "op 0", "object", NULL);
	/* deleting the only service, but with a field that is wrong: the
	 * op's own fault is what the refusal names */
	assert_refused(e, CHANGE("{\"op\": \"service_del\", \"name\": \"web\","
				 " \"extra\": 1}"), "unknown field 'extra'",
		       NULL);
}

static void test_unsafe_changes(void **state)
{
	struct env *e = *state;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));

	/* the only service */
	assert_refused(e, CHANGE("{\"op\": \"service_del\", \"name\": \"web\"}"),
		       "deletes service web", "approved", NULL);

	/* the last active backend, drained or deleted, while another one is
	 * there but not active */
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.11\", \"weight\": 1,"
			    " \"state\": \"draining\"}"));
	assert_refused(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.10\", \"state\": \"draining\"}"),
		       "leaves service web with no active backend", NULL);
	assert_refused(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.10\", \"state\": \"down\"}"),
		       "no active backend", NULL);
	assert_refused(e, CHANGE("{\"op\": \"backend_del\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.10\"}"),
		       "no active backend", NULL);
	/* approved: not false, nor a string that looks like it */
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"production\","
		       " \"approved\": false, \"ops\": [{\"op\": \"backend_del\","
		       " \"service\": \"web\", \"addr\": \"10.0.1.10\"}]}",
		       "no active backend", NULL);
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"production\","
		       " \"approved\": \"yes\", \"ops\": [{\"op\": \"backend_del\","
		       " \"service\": \"web\", \"addr\": \"10.0.1.10\"}]}",
		       "no active backend", NULL);

	/* taking capacity away while another backend stays active is fine,
	 * and so is a weight change */
	commit_ok(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.11\", \"state\": \"active\"}"));
	commit_ok(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.10\", \"state\": \"draining\"}"));
	/* the other one is now the last active */
	assert_refused(e, CHANGE("{\"op\": \"backend_del\", \"service\": \"web\","
				 " \"addr\": \"10.0.1.11\"}"),
		       "no active backend", NULL);
	/* draining the last and activating another in the same change */
	commit_ok(e, CHANGE("{\"op\": \"backend_set\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.11\", \"state\": \"draining\"},"
			    " {\"op\": \"backend_set\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.10\", \"state\": \"active\"}"));

	/* approved, both go through */
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"backend_del\", \"service\":"
				     " \"web\", \"addr\": \"10.0.1.10\"}"));
	r = ask_ok(e, "{\"cmd\": \"state\", \"name\": \"web\"}");
	assert_json_text(json_object_get(json_object_get(r, "service"),
					 "backends"),
			 "[{\"addr\": \"10.0.1.11\", \"weight\": 1,"
			 " \"state\": \"draining\"}]");
	json_decref(r);
	/* web, drained on purpose, holds up no later change elsewhere */
	commit_ok(e, CHANGE(ADD_DNS));
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			    " \"addr\": \"10.0.2.2\", \"weight\": 1}"));
	commit_ok(e, CHANGE("{\"op\": \"backend_del\", \"service\": \"dns\","
			    " \"addr\": \"10.0.2.2\"}"));
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"service_del\", \"name\":"
				     " \"dns\"}"));
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"service_del\", \"name\":"
				     " \"web\"}"));
	r = ask_ok(e, "{\"cmd\": \"state\"}");
	assert_json_text(json_object_get(r, "services"), "[]");
	json_decref(r);
}

/* ---- 5: apply ---- */

#define APPLY(extra, services) \
	"{\"cmd\": \"apply\", \"env\": \"production\", \"reason\": \"file\"" \
	extra ", \"services\": [" services "]}"

#define WEB_TWO \
	"{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\"," \
	" \"port\": 80, \"mode\": \"l2dsr\", \"backends\": [" \
	"{\"addr\": \"10.0.1.10\", \"weight\": 1}," \
	" {\"addr\": \"10.0.1.11\", \"weight\": 5}]}"

#define DNS_SVC \
	"{\"name\": \"dns\", \"vip\": \"10.0.0.53\", \"proto\": \"udp\"," \
	" \"port\": 53, \"mode\": \"gue\", \"table_size\": 1009," \
	" \"backends\": [{\"addr\": \"10.0.2.1\", \"weight\": 2}]}"

static void test_apply(void **state)
{
	struct env *e = *state;
	char digest[STORE_DIGEST_LEN];
	json_t *r, *ops;

	commit_ok(e, CHANGE(ADD_WEB));
	store_digest(e->d.store, digest);

	r = ask_ok(e, APPLY(", \"dry_run\": true", WEB_TWO ", " DNS_SVC));
	ops = json_object_get(r, "ops");
	/* each service's own backends follow it */
	assert_json_text(ops,
		"[{\"op\": \"backend_add\", \"service\": \"web\","
		" \"addr\": \"10.0.1.11\", \"weight\": 5, \"state\": \"active\"},"
		" {\"op\": \"service_add\", \"name\": \"dns\","
		" \"vip\": \"10.0.0.53\", \"proto\": \"udp\", \"port\": 53,"
		" \"mode\": \"gue\", \"table_size\": 1009, \"gue_port\": 6080,"
		" \"backends\": [{\"addr\": \"10.0.2.1\", \"weight\": 2,"
		" \"state\": \"active\"}]}]");
	assert_true(json_is_false(json_object_get(r, "committed")));
	assert_int_equal(int_at(r, "version"), 1);
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 1);
	{
		char now[STORE_DIGEST_LEN];

		store_digest(e->d.store, now);
		assert_string_equal(now, digest);
	}

	r = ask_ok(e, APPLY("", WEB_TWO ", " DNS_SVC));
	assert_true(json_is_true(json_object_get(r, "committed")));
	assert_int_equal(int_at(r, "version"), 2);
	assert_int_equal(json_array_size(json_object_get(r, "ops")), 2);
	assert_true(json_is_false(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 2);

	/* again: nothing to do, nothing logged */
	r = ask_ok(e, APPLY("", WEB_TWO ", " DNS_SVC));
	assert_json_text(json_object_get(r, "ops"), "[]");
	assert_true(json_is_false(json_object_get(r, "committed")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 2);

	/* the services in another order are the same state */
	r = ask_ok(e, APPLY("", DNS_SVC ", " WEB_TWO));
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);

	/* a service that still has active backends goes only when approved:
	 * drain it first, or mean it */
	assert_refused(e, APPLY("", WEB_TWO), "deletes service dns", NULL);
	r = ask_ok(e, APPLY(", \"approved\": true", WEB_TWO));
	assert_json_text(json_object_get(r, "ops"),
			 "[{\"op\": \"service_del\", \"name\": \"dns\"}]");
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 3);

	/* and so does the last one */
	assert_refused(e, APPLY("", ""), "deletes service web", NULL);
	r = ask_ok(e, APPLY(", \"approved\": true", ""));
	assert_true(json_is_true(json_object_get(r, "committed")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 4);

	/* a refused apply says why */
	assert_refused(e, APPLY("", "{\"name\": \"x\", \"vip\": \"nope\","
				" \"proto\": \"tcp\", \"port\": 1,"
				" \"mode\": \"l2dsr\"}"), "'vip'", "nope", NULL);
}

/* A file's backends may leave weight and state out (plan.h: fields left
 * out take their defaults), for a new service as for an existing one. */
static void test_apply_defaults(void **state)
{
	struct env *e = *state;
	json_t *r;

	r = ask_ok(e, APPLY("", "{\"name\": \"web\", \"vip\": \"10.0.0.100\","
			    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
			    " \"backends\": [{\"addr\": \"10.0.1.10\"}]}"));
	assert_true(json_is_true(json_object_get(r, "committed")));
	json_decref(r);
	r = ask_ok(e, "{\"cmd\": \"state\", \"name\": \"web\"}");
	assert_json_text(json_object_get(r, "service"), WEB_ONE);
	json_decref(r);

	r = ask_ok(e, APPLY("", "{\"name\": \"web\", \"vip\": \"10.0.0.100\","
			    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
			    " \"backends\": [{\"addr\": \"10.0.1.10\"},"
			    " {\"addr\": \"10.0.1.11\"}]}"));
	assert_true(json_is_true(json_object_get(r, "committed")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 2);
}

/* Addresses are compared as addresses: the same IPv6 address written
 * another way is no change, or every apply of the file would commit. */
static void test_apply_address_forms(void **state)
{
	struct env *e = *state;
	json_t *r;

#define SIX(vip, a) \
	"{\"name\": \"six\", \"vip\": \"" vip "\", \"proto\": \"tcp\"," \
	" \"port\": 443, \"mode\": \"ipip\", \"backends\": [{\"addr\":" \
	" \"" a "\", \"weight\": 1}]}"

	r = ask_ok(e, APPLY("", SIX("FD00:0::100", "fd00:0:0::1:2")));
	assert_true(json_is_true(json_object_get(r, "committed")));
	json_decref(r);
	r = ask_ok(e, APPLY("", SIX("fd00::100", "fd00::1:2")));
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);
	r = ask_ok(e, APPLY("", SIX("FD00:0::100", "FD00::1:2")));
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 1);
	/* a real change still shows */
	r = ask_ok(e, APPLY(", \"dry_run\": true", SIX("fd00::101", "fd00::1:2")));
	assert_json_text(json_object_get(r, "ops"),
			 "[{\"op\": \"service_set\", \"name\": \"six\","
			 " \"vip\": \"fd00::101\"}]");
	json_decref(r);
#undef SIX
}

/* ---- 6: diff ---- */

static void test_diff_versions(void **state)
{
	struct env *e = *state;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB ", " ADD_DNS));
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"backend_add\", \"service\":"
				     " \"web\", \"addr\": \"10.0.1.11\","
				     " \"weight\": 4}, {\"op\": \"service_del\","
				     " \"name\": \"dns\"}"));
	commit_ok(e, CHANGE("{\"op\": \"service_set\", \"name\": \"web\","
			    " \"port\": 8080}"));

	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 1, \"to\": 2}");
	assert_json_text(json_object_get(r, "ops"),
		"[{\"op\": \"service_del\", \"name\": \"dns\"},"
		" {\"op\": \"backend_add\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.11\", \"weight\": 4, \"state\": \"active\"}]");
	json_decref(r);

	/* backwards: the inverse */
	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 2, \"to\": 1}");
	assert_json_text(json_object_get(r, "ops"),
		"[{\"op\": \"service_add\", \"name\": \"dns\","
		" \"vip\": \"10.0.0.53\", \"proto\": \"udp\", \"port\": 53,"
		" \"mode\": \"gue\", \"table_size\": 1009, \"gue_port\": 6080,"
		" \"backends\": [{\"addr\": \"10.0.2.1\", \"weight\": 2,"
		" \"state\": \"active\"}]},"
		" {\"op\": \"backend_del\", \"service\": \"web\","
		"  \"addr\": \"10.0.1.11\"}]");
	json_decref(r);

	/* "to" left out: the current version */
	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 2}");
	assert_int_equal(int_at(r, "to"), 3);
	assert_json_text(json_object_get(r, "ops"),
			 "[{\"op\": \"service_set\", \"name\": \"web\","
			 " \"port\": 8080}]");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 3, \"to\": 3}");
	assert_json_text(json_object_get(r, "ops"), "[]");
	json_decref(r);

	/* a diff's ops take the one version to the other */
	r = ask_ok(e, "{\"cmd\": \"diff\", \"from\": 0, \"to\": 2}");
	assert_int_equal(json_array_size(json_object_get(r, "ops")), 1);
	json_decref(r);
}

/* ---- 7: plan_ops ---- */

static void assert_plan(const char *from, const char *to, const char *want)
{
	json_t *a = parse(from), *b = parse(to), *ops = plan_ops(a, b);

	assert_non_null(ops);
	assert_json_text(ops, want);
	json_decref(ops);
	json_decref(a);
	json_decref(b);
}

static void test_plan_equal_and_defaults(void **state)
{
	(void)state;
	assert_plan("[]", "[]", "[]");
	assert_plan("[" WEB_ONE "]", "[" WEB_ONE "]", "[]");
	/* every default left out of `to` */
	assert_plan("[" WEB_ONE "]",
		    "[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"backends\": [{\"addr\": \"10.0.1.10\"}]}]", "[]");
	/* and out of `from` */
	assert_plan("[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"backends\": [{\"addr\": \"10.0.1.10\"}]}]",
		    "[" WEB_ONE "]", "[]");
}

static void test_plan_changes(void **state)
{
	(void)state;
	/* only the fields that changed */
	assert_plan("[" WEB_ONE "]",
		    "[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 443, \"mode\": \"gue\","
		    " \"table_size\": 65537, \"gue_port\": 7000,"
		    " \"backends\": [{\"addr\": \"10.0.1.10\"}]}]",
		    "[{\"op\": \"service_set\", \"name\": \"web\", \"port\": 443,"
		    " \"mode\": \"gue\", \"gue_port\": 7000}]");
	/* a field back to its default by leaving it out */
	assert_plan("[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"table_size\": 1009, \"backends\": []}]",
		    "[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"backends\": []}]",
		    "[{\"op\": \"service_set\", \"name\": \"web\","
		    " \"table_size\": 65537}]");
	/* backends: weight, state, gone, new */
	assert_plan("[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"backends\": [{\"addr\": \"10.0.1.10\", \"weight\": 1},"
		    " {\"addr\": \"10.0.1.11\", \"weight\": 1},"
		    " {\"addr\": \"10.0.1.12\", \"weight\": 1}]}]",
		    "[{\"name\": \"web\", \"vip\": \"10.0.0.100\","
		    " \"proto\": \"tcp\", \"port\": 80, \"mode\": \"l2dsr\","
		    " \"backends\": [{\"addr\": \"10.0.1.10\", \"weight\": 9},"
		    " {\"addr\": \"10.0.1.11\", \"state\": \"down\"},"
		    " {\"addr\": \"10.0.1.13\"}]}]",
		    "[{\"op\": \"backend_del\", \"service\": \"web\","
		    " \"addr\": \"10.0.1.12\"},"
		    " {\"op\": \"backend_set\", \"service\": \"web\","
		    " \"addr\": \"10.0.1.10\", \"weight\": 9, \"state\": \"active\"},"
		    " {\"op\": \"backend_set\", \"service\": \"web\","
		    " \"addr\": \"10.0.1.11\", \"weight\": 1, \"state\": \"down\"},"
		    " {\"op\": \"backend_add\", \"service\": \"web\","
		    " \"addr\": \"10.0.1.13\", \"weight\": 1, \"state\": \"active\"}]");
	/* services gone and new: deletions first */
	assert_plan("[" WEB_ONE "]", "[" DNS_SVC "]",
		    "[{\"op\": \"service_del\", \"name\": \"web\"},"
		    " {\"op\": \"service_add\", \"name\": \"dns\","
		    " \"vip\": \"10.0.0.53\", \"proto\": \"udp\", \"port\": 53,"
		    " \"mode\": \"gue\", \"table_size\": 1009, \"gue_port\": 6080,"
		    " \"backends\": [{\"addr\": \"10.0.2.1\", \"weight\": 2,"
		    " \"state\": \"active\"}]}]");
}

/* `to` comes from a user's file: what is missing there must come out as
 * ops that change_apply refuses, not as a crash. */
static void test_plan_robust(void **state)
{
	static const char *const bad[] = {
		"[{\"vip\": \"10.0.0.1\"}]",
		"[{\"name\": 7}]",
		"[{\"name\": \"web\"}]",
		"[42, \"x\", null, []]",
		"[{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\","
		" \"port\": 80, \"mode\": \"l2dsr\", \"backends\": [{}]}]",
		"[{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\","
		" \"port\": 80, \"mode\": \"l2dsr\", \"backends\": [42]}]",
		"[{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\","
		" \"port\": 80, \"mode\": \"l2dsr\", \"backends\":"
		" [{\"addr\": 5}, {\"weight\": 3}]}]",
		"[{\"name\": \"dns\", \"backends\": [{\"addr\": null}]}]",
	};
	json_t *from = parse("[" WEB_ONE "]"), *empty = json_array();
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		json_t *to = parse(bad[i]);
		json_t *bases[] = { from, empty };

		for (size_t k = 0; k < 2; k++) {
			json_t *ops = plan_ops(bases[k], to);
			struct model *m = model_new();
			char why[512] = "";

			assert_non_null(ops);
			assert_true(json_is_array(ops));
			/* replay the base, then the plan: refused */
			model_begin(m);
			if (k == 0) {
				json_t *e0 = json_array();
				json_t *mk = plan_ops(e0, from);

				assert_int_equal(change_apply(m, mk, why,
							      sizeof(why)), 0);
				json_decref(mk);
				json_decref(e0);
			}
			assert_true(json_array_size(ops) > 0);
			if (change_apply(m, ops, why, sizeof(why)) == 0)
				fail_msg("%s from %zu: plan %s accepted", bad[i],
					 k, dump(ops));
			model_rollback(m);
			model_free(m);
			json_decref(ops);
		}
		json_decref(to);
	}
	/* a service with a missing name stays a null in its op */
	{
		json_t *to = parse(bad[0]), *ops = plan_ops(empty, to);

		assert_int_equal(json_array_size(ops), 1);
		assert_true(json_is_null(json_object_get(json_array_get(ops, 0),
							 "name")));
		json_decref(ops);
		json_decref(to);
	}
	/* not arrays at all: nothing to do, and no crash */
	{
		json_t *ops = plan_ops(NULL, NULL);

		assert_json_text(ops, "[]");
		json_decref(ops);
	}
	json_decref(from);
	json_decref(empty);
}

/* ---- 8: jsonline ---- */

static void test_jsonline_cut_short(void **state)
{
	int sv[2];
	char why[256] = "";
	static const char part[] = "{\"ok\": true, \"version\": 3";
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], part, strlen(part)), (ssize_t)strlen(part));
	close(sv[1]);
	assert_null(jsonline_recv(sv[0], 1024, why, sizeof(why)));
	assert_non_null(strstr(why, "closed"));
	close(sv[0]);

	/* nothing at all */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	why[0] = '\0';
	assert_null(jsonline_recv(sv[0], 1024, why, sizeof(why)));
	assert_non_null(strstr(why, "closed"));
	close(sv[0]);
}

static void test_jsonline_oversized(void **state)
{
	char line[300], big[20000], why[256] = "";
	int sv[2];
	(void)state;

	/* far below the first buffer's size: max still holds */
	memset(line, ' ', sizeof(line));
	memcpy(line, "{\"a\": 1}", 8);
	line[sizeof(line) - 1] = '\n';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], line, sizeof(line)), (ssize_t)sizeof(line));
	assert_null(jsonline_recv(sv[0], 100, why, sizeof(why)));
	assert_non_null(strstr(why, "longer than 100"));
	close(sv[0]);
	close(sv[1]);

	/* past a grown buffer: the newline never comes */
	memset(big, 'x', sizeof(big));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], big, sizeof(big)), (ssize_t)sizeof(big));
	why[0] = '\0';
	assert_null(jsonline_recv(sv[0], 10000, why, sizeof(why)));
	assert_non_null(strstr(why, "longer than 10000"));
	close(sv[0]);
	close(sv[1]);

	/* exactly max, newline after it: fine */
	memset(line, ' ', sizeof(line));
	memcpy(line, "{\"a\": 1}", 8);
	line[100] = '\n';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], line, 101), 101);
	{
		json_t *j = jsonline_recv(sv[0], 100, why, sizeof(why));

		if (!j)
			fail_msg("a line of max bytes refused: %s", why);
		json_decref(j);
	}
	close(sv[0]);
	close(sv[1]);
}

/* A line may announce bytes after it (jsonline.h): they are handed over
 * whole to a reader that takes them, and refused by one that does not. */
static void test_jsonline_payload(void **state)
{
	static const char full[] = "{\"cmd\": \"apply\", \"payload\": 5}\nhello";
	static const char cut[] = "{\"payload\": 10}\nabc";
	static const char big[] = "{\"payload\": 99}\n";
	static const char more[] = "{\"payload\": 2}\nab{\"next\": 1}\n";
	char why[256] = "";
	void *payload;
	size_t len;
	json_t *j;
	int sv[2];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], full, strlen(full)), (ssize_t)strlen(full));
	j = jsonline_recv_payload(sv[0], 1024, &payload, &len, why, sizeof(why));
	if (!j)
		fail_msg("%s", why);
	assert_int_equal(len, 5);
	assert_memory_equal(payload, "hello", 5);
	json_decref(j);
	free(payload);
	/* fulcrumd's own socket takes none */
	assert_int_equal(write(sv[1], full, strlen(full)), (ssize_t)strlen(full));
	assert_null(jsonline_recv(sv[0], 1024, why, sizeof(why)));
	assert_non_null(strstr(why, "a payload is not taken here"));
	close(sv[0]);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], cut, strlen(cut)), (ssize_t)strlen(cut));
	close(sv[1]);
	assert_null(jsonline_recv_payload(sv[0], 1024, &payload, &len, why,
					  sizeof(why)));
	assert_null(payload);
	assert_non_null(strstr(why, "after 3 of the payload's 10 bytes"));
	close(sv[0]);

	/* more than the reader takes */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], big, strlen(big)), (ssize_t)strlen(big));
	assert_null(jsonline_recv_payload(sv[0], 20, &payload, &len, why,
					  sizeof(why)));
	assert_non_null(strstr(why, "not one of 0 to 20"));
	close(sv[0]);
	close(sv[1]);

	/* a line and its payload, and no more: what follows, though it
	 * came in the same write, is the next read's */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], more, strlen(more)), (ssize_t)strlen(more));
	j = jsonline_recv_payload(sv[0], 64, &payload, &len, why, sizeof(why));
	if (!j)
		fail_msg("%s", why);
	assert_int_equal(len, 2);
	assert_memory_equal(payload, "ab", 2);
	json_decref(j);
	free(payload);
	j = jsonline_recv(sv[0], 64, why, sizeof(why));
	if (!j)
		fail_msg("%s", why);
	assert_int_equal(json_integer_value(json_object_get(j, "next")), 1);
	json_decref(j);
	close(sv[0]);
	close(sv[1]);
}

static void test_jsonline_valid(void **state)
{
	char why[256] = "";
	json_t *in, *out;
	int sv[2];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	in = parse("{\"cmd\": \"apply\", \"version\": 9, \"text\": \"a\\nb\","
		   " \"services\": [" WEB_ONE "]}");
	assert_int_equal(jsonline_send(sv[1], in), 0);
	out = jsonline_recv(sv[0], 1 << 20, why, sizeof(why));
	if (!out)
		fail_msg("jsonline_recv: %s", why);
	assert_true(json_equal(in, out));
	json_decref(in);
	json_decref(out);

	/* malformed JSON on a whole line */
	assert_int_equal(write(sv[1], "{nope}\n", 7), 7);
	assert_null(jsonline_recv(sv[0], 1 << 20, why, sizeof(why)));
	assert_non_null(strstr(why, "malformed"));
	close(sv[0]);
	close(sv[1]);

	/* a line longer than the first buffer, in many pieces */
	{
		json_t *arr = json_array();

		for (int i = 0; i < 2000; i++)
			json_array_append_new(arr, json_integer(i));
		in = json_pack("{s:o}", "xs", arr);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		assert_int_equal(jsonline_send(sv[1], in), 0);
		out = jsonline_recv(sv[0], 1 << 20, why, sizeof(why));
		if (!out)
			fail_msg("jsonline_recv: %s", why);
		assert_true(json_equal(in, out));
		json_decref(in);
		json_decref(out);
		close(sv[0]);
		close(sv[1]);
	}
}

/* ---- 9: sync with a fake dataplane ---- */

static void test_sync_pushes_when_behind(void **state)
{
	struct env *e = *state;
	struct fake_dp *f;
	json_t *r, *want, *got;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	f = fake_start(e, 0, "[]");

	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_int_equal(e->d.sync.dp_version, 2);
	assert_int_equal(fake_n_applied(f), 1);
	want = services_now(e);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 0);
	assert_int_equal(int_at(got, "version"), 2);
	assert_true(json_equal(json_object_get(got, "services"), want));
	/* a push of its own is never approved */
	assert_true(json_is_false(json_object_get(got, "approved")));
	pthread_mutex_unlock(&f->lock);
	json_decref(want);

	/* in sync now: a reconcile pushes nothing more */
	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_string_equal(str_at(r, "dataplane.sync"), "in sync");
	assert_int_equal(int_at(r, "dataplane.version"), 2);
	assert_string_equal(str_at(r, "dataplane.digest"),
			    str_at(r, "store.digest"));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 1);

	/* a commit goes live, with its approval */
	r = ask_ok(e, CHANGE_APPROVED("{\"op\": \"service_del\", \"name\":"
				      " \"dns\"}"));
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 2);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 1);
	assert_int_equal(int_at(got, "version"), 3);
	assert_true(json_is_true(json_object_get(got, "approved")));
	/* in sync, it goes as a delta: only what changed */
	assert_null(json_object_get(got, "services"));
	assert_json_text(json_object_get(got, "changed"), "[]");
	assert_json_text(json_object_get(got, "removed"), "[\"dns\"]");
	assert_int_equal(json_array_size(json_object_get(got, "result")), 1);
	pthread_mutex_unlock(&f->lock);
}

static unsigned int fake_n_state(struct fake_dp *f)
{
	unsigned int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_state;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Service web committed, and a fake dataplane started and given it. */
static struct fake_dp *web_in_sync(struct env *e)
{
	struct fake_dp *f;

	commit_ok(e, CHANGE(ADD_WEB));
	f = fake_start(e, 0, "[]");
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_int_equal(fake_n_applied(f), 1);
	return f;
}

/* Once in sync, a commit pushes on condition that the dataplane still
 * runs what fulcrumd last saw, without reading its state first; and one
 * that runs something else by then is not overwritten. */
static void test_sync_conditional_push(void **state)
{
	struct env *e = *state;
	char digest[STORE_DIGEST_LEN];
	struct fake_dp *f;
	unsigned int reads;
	json_t *r, *got;

	f = web_in_sync(e);
	store_digest(e->d.store, digest);

	reads = fake_n_state(f);
	commit_ok(e, CHANGE(ADD_DNS));
	assert_int_equal(fake_n_state(f), reads);
	assert_int_equal(fake_n_applied(f), 2);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 1);
	assert_int_equal(int_at(got, "expect.version"), 1);
	assert_string_equal(str_at(got, "expect.digest"), digest);
	store_digest(e->d.store, digest);
	assert_string_equal(str_at(got, "digest"), digest);
	assert_string_equal(f->digest, digest);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_int_equal(e->d.sync.dp_version, 2);
	/* the label is the digest the full check computes from the state */
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_string_equal(e->d.sync.dp_digest, digest);

	/* someone else puts a state in meanwhile: held, not overwritten */
	pthread_mutex_lock(&f->lock);
	f->version = 9;
	snprintf(f->digest, sizeof(f->digest), "%s", "elsewhere");
	json_decref(f->services);
	f->services = parse("[" WEB_ONE "]");
	pthread_mutex_unlock(&f->lock);
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			     " \"addr\": \"10.0.2.2\", \"weight\": 1}"));
	assert_true(json_is_false(json_object_get(r, "live")));
	assert_non_null(strstr(str_at(r, "note"), "held"));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 2);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);

	/* the same version, but no label (an older pusher's, a restart from
	 * the config): read, found behind, pushed in full */
	pthread_mutex_lock(&f->lock);
	f->version = 2;
	f->digest[0] = '\0';
	json_decref(f->services);
	f->services = json_deep_copy(json_object_get(json_array_get(
		f->applied, 1), "result"));
	pthread_mutex_unlock(&f->lock);
	e->d.sync.status = SYNC_IN_SYNC;
	e->d.sync.dp_version = 2;
	reads = fake_n_state(f);
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			     " \"addr\": \"10.0.2.3\", \"weight\": 1}"));
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(fake_n_state(f), reads + 1);
	assert_int_equal(fake_n_applied(f), 3);
	assert_int_equal(e->d.sync.dp_version, store_version(e->d.store));
}

struct early_sent {
	struct sync *sync;
	struct sync_pending pending;
};

static void prepare_early(struct store *st, void *arg)
{
	struct early_sent *x = arg;

	sync_prepare(x->sync, st, true, &x->pending);
}

static void publish_early(struct store *st, void *arg)
{
	sync_publish(st, &((struct early_sent *)arg)->pending);
}

/* As a commit that fails once the change is written. */
static void discard_early(struct store *st, void *arg)
{
	(void)st;
	sync_discard(&((struct early_sent *)arg)->pending);
}

/* In sync, a change goes to the dataplane from the commit's applied hook
 * (before any of it is written), as the same conditional delta, held;
 * the durable hook has it published, labelled with the new version's
 * digest, and sync_push reads the answers. When the dataplane is not
 * known to run the version before the change, nothing goes early and
 * sync_push reads the dataplane's state and pushes it whole, as before.
 * A change held and then discarded never goes live. */
static void test_sync_early_push(void **state)
{
	struct env *e = *state;
	const struct change_meta meta = { .user = "test" };
	struct early_sent x = { .sync = &e->d.sync };
	const struct store_hooks hooks = { prepare_early, publish_early, &x };
	const struct store_hooks failing = { prepare_early, discard_early, &x };
	char digest[STORE_DIGEST_LEN];
	struct fake_dp *f;
	uint64_t v;
	json_t *ops, *got;
	bool held = true;

	f = web_in_sync(e);

	ops = parse("[" ADD_DNS "]");
	assert_int_equal(store_commit_then(e->d.store, &meta, ops, &hooks, &v,
					   err, sizeof(err)), STORE_OK);
	json_decref(ops);
	assert_true(x.pending.fd >= 0);
	assert_true(x.pending.held);
	assert_int_equal(sync_push(&e->d.sync, e->d.store, true, &x.pending,
				   err, sizeof(err)), 0);
	assert_int_equal(x.pending.fd, -1);
	assert_int_equal(fake_n_applied(f), 2);
	store_digest(e->d.store, digest);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 1);
	assert_true(json_is_true(json_object_get(got, "hold")));
	assert_string_equal(str_at(got, "digest"), digest);
	assert_string_equal(f->digest, digest);
	assert_int_equal(int_at(got, "version"), 2);
	assert_int_equal(int_at(got, "expect.version"), 1);
	assert_int_equal(json_array_size(json_object_get(got, "changed")), 1);
	assert_string_equal(str_at(json_array_get(json_object_get(got, "changed"),
						  0), "name"), "dns");
	assert_json_text(json_object_get(got, "removed"), "[]");
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_int_equal(e->d.sync.dp_version, 2);

	ops = parse("[{\"op\": \"backend_add\", \"service\": \"dns\","
		    " \"addr\": \"10.0.2.9\", \"weight\": 1}]");
	assert_int_equal(store_commit_then(e->d.store, &meta, ops, &failing,
					   &v, err, sizeof(err)), STORE_OK);
	json_decref(ops);
	assert_int_equal(x.pending.fd, -1);
	/* the fake lets go of what it held once the connection is gone */
	for (int i = 0; i < 500 && held; i++) {
		pthread_mutex_lock(&f->lock);
		held = f->held != NULL;
		pthread_mutex_unlock(&f->lock);
		usleep(2000);
	}
	assert_false(held);
	assert_int_equal(fake_n_applied(f), 2);
	/* put back in step for what follows */
	assert_int_equal(sync_push(&e->d.sync, e->d.store, true, NULL, err,
				   sizeof(err)), 0);
	assert_int_equal(fake_n_applied(f), 3);

	e->d.sync.status = SYNC_UNKNOWN;
	ops = parse("[{\"op\": \"service_del\", \"name\": \"web\"}]");
	assert_int_equal(store_commit_then(e->d.store, &meta, ops, &hooks, &v,
					   err, sizeof(err)), STORE_OK);
	json_decref(ops);
	assert_int_equal(x.pending.fd, -1);
	assert_int_equal(fake_n_applied(f), 3);
	assert_int_equal(sync_push(&e->d.sync, e->d.store, true, &x.pending,
				   err, sizeof(err)), 0);
	assert_int_equal(fake_n_applied(f), 4);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 3);
	assert_int_equal(json_array_size(json_object_get(got, "services")), 1);
	assert_null(json_object_get(got, "expect"));
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(e->d.sync.dp_version, 4);
}

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A client that connects and says nothing, for six seconds. */
struct idle_client {
	int fd;
	bool gone;        /* atomic */
};

static void *close_later(void *arg)
{
	struct idle_client *c = arg;

	usleep(6000 * 1000);
	__atomic_store_n(&c->gone, true, __ATOMIC_RELEASE);
	close(c->fd);
	return NULL;
}

/* A dataplane busy with another client does not hold up a commit: the
 * change to be held waits SYNC_HOLD_SEND_MS for it, then goes after the
 * commit, as a plain push, once the dataplane is free. */
static void test_sync_held_push_gives_up_on_a_busy_dataplane(void **state)
{
	struct env *e = *state;
	const struct change_meta meta = { .user = "test" };
	struct early_sent x = { .sync = &e->d.sync };
	const struct store_hooks hooks = { prepare_early, publish_early, &x };
	struct fake_dp *f = web_in_sync(e);
	json_t *ops = json_array(), *got;
	/* static: the closer outlives a test that fails */
	static struct idle_client busy;
	pthread_t closer;
	bool gave_up;
	double took;
	uint64_t v;

	/* the service the push sends, whole, is more than a socket holds */
	for (unsigned int i = 0; i < 60000; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.%u.%u.%u", 2 + i / 62500,
			 i / 250 % 250, i % 250 + 1);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:i}", "op",
						     "backend_add", "service", "web",
						     "addr", addr, "weight", 1));
	}
	/* the fake serves one connection at a time, and waits on this one */
	busy = (struct idle_client){ .fd = jsonline_connect(f->path) };
	assert_true(busy.fd >= 0);
	usleep(100 * 1000);
	assert_int_equal(pthread_create(&closer, NULL, close_later, &busy), 0);
	took = mono_s();
	assert_int_equal(store_commit_then(e->d.store, &meta, ops, &hooks, &v,
					   err, sizeof(err)), STORE_OK);
	took = mono_s() - took;
	json_decref(ops);
	gave_up = x.pending.fd < 0;
	/* a held push that went after all is not left for the fake to
	 * wait on */
	sync_discard(&x.pending);
	/* committed before the dataplane was free, having waited for it */
	assert_false(__atomic_load_n(&busy.gone, __ATOMIC_ACQUIRE));
	assert_true(gave_up);
	assert_true(took >= SYNC_HOLD_SEND_MS / 1000.0 * 0.9);
	assert_int_equal(sync_push(&e->d.sync, e->d.store, true, &x.pending,
				   err, sizeof(err)), 0);
	pthread_join(closer, NULL);
	assert_int_equal(fake_n_applied(f), 2);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 1);
	assert_null(json_object_get(got, "hold"));
	assert_int_equal(int_at(got, "version"), 2);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(e->d.sync.dp_version, 2);
}

/* A change whose commit fails after it went to the dataplane to be held
 * (here the log refuses its row) is refused, and the dataplane lets go
 * of it: nothing goes live, and the next change goes as usual. */
static void test_sync_held_change_that_fails(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = web_in_sync(e);
	sqlite3 *db = NULL;
	bool held = true;
	json_t *r;

	assert_int_equal(sqlite3_open(e->d.cfg.store, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER no_log BEFORE INSERT ON"
				      " change_log BEGIN SELECT RAISE(ABORT,"
				      " 'no room'); END", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_refused(e, CHANGE(ADD_DNS), "no room", NULL);
	for (int i = 0; i < 500 && held; i++) {
		pthread_mutex_lock(&f->lock);
		held = f->held != NULL;
		pthread_mutex_unlock(&f->lock);
		usleep(2000);
	}
	assert_false(held);
	assert_int_equal(fake_n_applied(f), 1);
	assert_int_equal(store_version(e->d.store), 1);
	assert_int_equal(e->d.sync.dp_version, 1);

	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER no_log", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	r = ask_ok(e, CHANGE(ADD_DNS));
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 2);
	assert_int_equal(e->d.sync.dp_version, 2);
}

/* A dataplane that refuses a delta (an older one, which takes whole
 * states only) is read and given the whole state instead. */
static void test_sync_delta_refused_falls_back(void **state)
{
	struct env *e = *state;
	struct fake_dp *f;
	unsigned int reads;
	json_t *r, *got, *want;

	commit_ok(e, CHANGE(ADD_WEB));
	f = fake_start(e, 0, "[]");
	f->no_delta = true;
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	reads = fake_n_state(f);
	r = ask_ok(e, CHANGE(ADD_DNS));
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(fake_n_state(f), reads + 1);
	assert_int_equal(fake_n_applied(f), 2);
	want = services_now(e);
	pthread_mutex_lock(&f->lock);
	got = json_array_get(f->applied, 1);
	assert_true(json_equal(json_object_get(got, "services"), want));
	assert_true(json_equal(f->services, want));
	pthread_mutex_unlock(&f->lock);
	json_decref(want);
	assert_int_equal(e->d.sync.dp_version, 2);
}

static void test_sync_holds_when_ahead(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 7, "[" WEB_ONE "]");
	json_t *r;

	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_string_equal(str_at(r, "dataplane.sync"), "held");
	assert_int_equal(int_at(r, "dataplane.version"), 7);
	assert_non_null(strstr(str_at(r, "dataplane.note"), "adopt"));
	json_decref(r);

	/* committed to the store, but not pushed over the live state */
	r = ask_ok(e, CHANGE(ADD_DNS));
	assert_int_equal(int_at(r, "version"), 1);
	assert_true(json_is_false(json_object_get(r, "live")));
	assert_non_null(strstr(str_at(r, "note"), "held"));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 0);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);

	/* nor by the next reconcile */
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	assert_int_equal(fake_n_applied(f), 0);
}

/* Before any reconcile (fulcrumd just started, or the dataplane was down
 * at the last one) a commit must not push blindly either. */
static void test_sync_no_blind_push(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 7, "[" WEB_ONE "]");
	json_t *r;

	assert_int_equal(e->d.sync.status, SYNC_UNKNOWN);
	r = ask_ok(e, CHANGE(ADD_DNS));
	assert_true(json_is_false(json_object_get(r, "live")));
	assert_non_null(strstr(str_at(r, "note"), "held"));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 0);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);

	e->d.sync.status = SYNC_UNREACHABLE;
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			     " \"addr\": \"10.0.2.2\", \"weight\": 1}"));
	assert_true(json_is_false(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 0);
}

/* A store that lost changes and then made others until its version went
 * past the dataplane's has not caught up: its history is not the one the
 * dataplane runs. */
static void test_sync_holds_when_diverged(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 2, "[" WEB_ONE "]");
	json_t *r;

	commit_ok(e, CHANGE(ADD_DNS));
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			     " \"addr\": \"10.0.2.2\", \"weight\": 1}"));
	json_decref(r);
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			     " \"addr\": \"10.0.2.3\", \"weight\": 1}"));
	assert_true(json_is_false(json_object_get(r, "live")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 3);
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	assert_int_equal(fake_n_applied(f), 0);
}

static void test_sync_adopt(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 7, "[" WEB_ONE ", " DNS_SVC "]");
	char live[STORE_DIGEST_LEN], digest[STORE_DIGEST_LEN];
	json_t *r;

	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(sync_digest(f->services, live, err, sizeof(err)), 0);
	pthread_mutex_unlock(&f->lock);

	assert_refused(e, "{\"cmd\": \"adopt\"}", "environment", NULL);
	r = ask_ok(e, "{\"cmd\": \"adopt\", \"env\": \"production\","
		   " \"reason\": \"store lost\"}");
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
	store_digest(e->d.store, digest);
	assert_string_equal(digest, live);
	assert_int_equal(store_version(e->d.store), 1);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);

	r = ask_ok(e, "{\"cmd\": \"history\"}");
	assert_string_equal(str_at(json_array_get(json_object_get(r, "entries"),
						  0), "reason"), "store lost");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_string_equal(str_at(r, "dataplane.sync"), "in sync");
	json_decref(r);

	/* adopting again: nothing to take in */
	r = ask_ok(e, "{\"cmd\": \"adopt\", \"env\": \"production\"}");
	assert_true(json_is_false(json_object_get(r, "committed")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 1);

	/* commits go live again */
	r = ask_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			     " \"addr\": \"10.0.1.11\", \"weight\": 1}"));
	assert_true(json_is_true(json_object_get(r, "live")));
	json_decref(r);
}

/* An adopt that fails must leave the hold as it was. */
static void test_sync_failed_adopt_keeps_hold(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 7,
		"[{\"name\": \"web\", \"vip\": \"10.0.0.100\", \"proto\": \"tcp\","
		" \"port\": 80, \"mode\": \"l2dsr\", \"backends\":"
		" [{\"addr\": \"10.0.1.10\", \"weight\": 0}]}]");

	commit_ok(e, CHANGE(ADD_DNS));
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	assert_refused(e, "{\"cmd\": \"adopt\", \"env\": \"production\"}",
		       "weight", NULL);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	assert_refused(e, "{\"cmd\": \"adopt\", \"env\": \"production\"}",
		       "weight", NULL);
	{
		json_t *r = ask_ok(e, CHANGE("{\"op\": \"backend_add\","
					     " \"service\": \"dns\", \"addr\":"
					     " \"10.0.2.9\", \"weight\": 1}"));

		assert_true(json_is_false(json_object_get(r, "live")));
		json_decref(r);
	}
	assert_int_equal(fake_n_applied(f), 0);
}

/* A dataplane whose state answer lacks its services, and whose digest
 * answer its digest, is not reconciled with, adopted from, nor pushed to,
 * and every refusal says why. */
static void test_sync_bad_state_answer(void **state)
{
	struct env *e = *state;
	struct fake_dp *f;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));
	f = fake_start(e, 3, "null");
	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_string_equal(str_at(r, "dataplane.sync"), "unreachable");
	assert_non_null(strstr(str_at(r, "dataplane.note"), "no digest"));
	json_decref(r);
	assert_refused(e, "{\"cmd\": \"adopt\", \"env\": \"production\"}",
		       "adopt: ", "no services", NULL);
	r = ask_ok(e, CHANGE(ADD_DNS));
	assert_true(json_is_false(json_object_get(r, "live")));
	assert_non_null(strstr(str_at(r, "note"), "no digest"));
	json_decref(r);
	assert_int_equal(fake_n_applied(f), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- roles, audit and freeze ---- */

static json_t *ask_as(struct env *e, const char *user, uid_t uid,
		      const char *text)
{
	struct peer saved = e->peer;
	json_t *r;

	e->peer = (struct peer){ .uid = uid, .gid = uid };
	snprintf(e->peer.user, sizeof(e->peer.user), "%s", user);
	r = ask(e, text);
	e->peer = saved;
	return r;
}

static size_t audit_lines(struct env *e, const char *needle)
{
	char line[4096];
	size_t n = 0;
	FILE *f = fopen(e->d.cfg.audit_log, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static void test_roles_and_audit(void **state)
{
	struct env *e = *state;
	json_t *r;

	/* a viewer reads and plans but changes nothing */
	r = ask_as(e, "bob", 1001, "{\"cmd\": \"status\"}");
	assert_ok(r);
	json_decref(r);
	r = ask_as(e, "bob", 1001, CHANGE(ADD_WEB));
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(strstr(str_at(r, "error"), "has role viewer"));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 0);
	/* an operator changes but may not adopt or freeze */
	r = ask_as(e, "carol", 1002, CHANGE(ADD_WEB));
	assert_ok(r);
	json_decref(r);
	r = ask_as(e, "carol", 1002, "{\"cmd\": \"freeze\", \"env\":"
		   " \"production\", \"reason\": \"x\"}");
	assert_non_null(strstr(str_at(r, "error"), "needs admin"));
	json_decref(r);
	/* a stranger gets nothing, not even a status */
	r = ask_as(e, "mallory", 1666, "{\"cmd\": \"status\"}");
	assert_non_null(strstr(str_at(r, "error"), "has role none"));
	json_decref(r);
	/* every decision, allowed or refused, is in the audit log */
	assert_int_equal(audit_lines(e, "\"user\":\"bob\""), 2);
	assert_int_equal(audit_lines(e, "\"user\":\"carol\""), 2);
	assert_int_equal(audit_lines(e, "\"user\":\"mallory\",\"role\":\"none\""),
			 1);
	assert_int_equal(audit_lines(e, "\"allowed\":false"), 3);
}

static void test_freeze_stops_every_change(void **state)
{
	struct env *e = *state;
	struct freeze reloaded;
	char err[256];
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));
	/* a freeze must say why */
	assert_refused(e, "{\"cmd\": \"freeze\", \"env\": \"production\"}",
		       "say why", NULL);
	r = ask_ok(e, "{\"cmd\": \"freeze\", \"env\": \"production\","
		   " \"reason\": \"incident 42\"}");
	json_decref(r);
	assert_refused(e, CHANGE("{\"op\": \"backend_add\", \"service\":"
				 " \"web\", \"addr\": \"10.0.1.99\","
				 " \"weight\": 1}"),
		       "frozen by alice", "incident 42", NULL);
	r = ask_ok(e, "{\"cmd\": \"status\"}");
	assert_true(json_is_true(json_object_get(json_object_get(r, "freeze"),
						 "frozen")));
	json_decref(r);
	/* it outlives fulcrumd */
	assert_int_equal(freeze_load(e->d.cfg.freeze_file, &reloaded, err,
				     sizeof(err)), 0);
	assert_true(reloaded.on);
	assert_string_equal(reloaded.reason, "incident 42");
	r = ask_ok(e, "{\"cmd\": \"unfreeze\", \"env\": \"production\","
		   " \"reason\": \"over\"}");
	json_decref(r);
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.99\", \"weight\": 1}"));
	assert_int_equal(freeze_load(e->d.cfg.freeze_file, &reloaded, err,
				     sizeof(err)), 0);
	assert_false(reloaded.on);
}

static json_t *backend_op(const char *op, const char *svc, int host,
			  const char *state_name)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "10.0.7.%d", host);
	return state_name ?
		json_pack("{s:s, s:s, s:s, s:s}", "op", op, "service", svc,
			  "addr", addr, "state", state_name) :
		json_pack("{s:s, s:s, s:s, s:i}", "op", op, "service", svc,
			  "addr", addr, "weight", 1);
}

static json_t *send_ops(struct env *e, json_t *ops)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:o}", "cmd", "change", "env",
				"production", "reason", "blast", "ops", ops);
	json_t *r = mgmt_handle(&e->d, &e->peer, req);

	json_decref(req);
	return r;
}

/* The blast-radius guard: what a change takes away decides. */
static void test_blast_radius(void **state)
{
	struct env *e = *state;
	json_t *ops = json_array(), *r;

	json_array_append_new(ops, json_pack(
		"{s:s, s:s, s:s, s:s, s:i, s:s, s:[]}", "op", "service_add",
		"name", "big", "vip", "10.0.0.7", "proto", "tcp", "port", 80,
		"mode", "l2dsr", "backends"));
	for (int b = 1; b <= 8; b++)
		json_array_append_new(ops, backend_op("backend_add", "big", b, NULL));
	r = send_ops(e, ops);
	assert_ok(r);
	json_decref(r);
	/* 2 of 8 drained is 25%: allowed */
	ops = json_pack("[o, o]", backend_op("backend_set", "big", 1, "draining"),
			backend_op("backend_set", "big", 2, "draining"));
	r = send_ops(e, ops);
	assert_ok(r);
	json_decref(r);
	/* 2 more of the 6 left is 33%: refused, nothing changed */
	ops = json_pack("[o, o]", backend_op("backend_set", "big", 3, "down"),
			backend_op("backend_del", "big", 4, NULL));
	json_object_del(json_array_get(ops, 1), "weight");
	r = send_ops(e, ops);
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(strstr(str_at(r, "error"), "takes 2 of the 6 active"));
	json_decref(r);
	/* one at a time may always go while others stay */
	ops = json_pack("[o]", backend_op("backend_set", "big", 3, "down"));
	r = send_ops(e, ops);
	assert_ok(r);
	json_decref(r);
	/* adding to many services at once is wide too */
	ops = json_array();
	for (int s = 0; s < 11; s++) {
		char name[16], vip[16];

		snprintf(name, sizeof(name), "s%d", s);
		snprintf(vip, sizeof(vip), "10.0.8.%d", s + 1);
		json_array_append_new(ops, json_pack(
			"{s:s, s:s, s:s, s:s, s:i, s:s}", "op", "service_add",
			"name", name, "vip", vip, "proto", "tcp", "port", 80,
			"mode", "l2dsr"));
	}
	r = send_ops(e, ops);
	assert_non_null(strstr(str_at(r, "error"), "changes 11 services"));
	json_decref(r);
}

static json_t *ask_json(struct env *e, const char *user, uid_t uid,
			json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	json_t *r = ask_as(e, user, uid, text);

	free(text);
	json_decref(req);
	return r;
}

static json_t *plan_req(const char *cmd, json_int_t id)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "cmd", cmd, "env", "production",
			 "reason", "t", "id", id);
}

/* A plan: made against a version, approved by someone else in production
 * when it is high-risk, carried out once, and only if nothing moved. */
static void test_plans(void **state)
{
	struct env *e = *state;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"retire dns\", \"ops\": [{\"op\":"
		   " \"service_del\", \"name\": \"dns\"}]}");
	assert_int_equal(int_at(r, "plan.id"), 1);
	assert_int_equal(int_at(r, "plan.base_version"), 2);
	assert_true(json_is_true(json_object_get(json_object_get(
		json_object_get(r, "plan"), "risk"), "high")));
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 2);

	r = ask_json(e, "alice", 1000, plan_req("execute", 1));
	assert_non_null(strstr(str_at(r, "error"), "not approved"));
	json_decref(r);
	r = ask_json(e, "alice", 1000, plan_req("approve", 1));
	assert_non_null(strstr(str_at(r, "error"), "another user"));
	json_decref(r);
	r = ask_json(e, "carol", 1002, plan_req("approve", 1));
	assert_ok(r);
	json_decref(r);
	r = ask_json(e, "alice", 1000, plan_req("execute", 1));
	assert_ok(r);
	assert_int_equal(int_at(r, "version"), 3);
	json_decref(r);
	r = ask_json(e, "alice", 1000, plan_req("execute", 1));
	assert_non_null(strstr(str_at(r, "error"), "carried out already"));
	json_decref(r);

	/* a plan made before another change goes through is stale */
	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"x\", \"ops\": [{\"op\": \"backend_add\","
		   " \"service\": \"web\", \"addr\": \"10.0.1.20\","
		   " \"weight\": 1}]}");
	assert_int_equal(int_at(r, "plan.id"), 2);
	json_decref(r);
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.21\", \"weight\": 1}"));
	r = ask_json(e, "alice", 1000, plan_req("execute", 2));
	assert_non_null(strstr(str_at(r, "error"), "has moved"));
	json_decref(r);
	r = ask_ok(e, "{\"cmd\": \"plans\"}");
	assert_int_equal(json_array_size(json_object_get(r, "plans")), 2);
	json_decref(r);
}

/* Restore to a version, merging back the later changes that leave what
 * it brings back alone: the 2012 recovery, in one plan. */
static void test_restore_with_replay(void **state)
{
	struct env *e = *state;
	json_t *r, *s;

	commit_ok(e, CHANGE(ADD_WEB));                          /* v1 */
	commit_ok(e, CHANGE(ADD_DNS));                          /* v2 */
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"service_del\","   /* v3: lost */
				     " \"name\": \"web\"}"));
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"dns\","
			    " \"addr\": \"10.0.2.9\", \"weight\": 1}"));  /* v4 */
	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"undo the deletion\", \"restore_to\": 2,"
		   " \"replay_after\": true}");
	assert_json_text(json_object_get(json_object_get(r, "plan"), "replayed"),
			 "[4]");
	assert_json_text(json_object_get(json_object_get(r, "plan"), "skipped"),
			 "[3]");
	json_decref(r);
	r = ask_json(e, "carol", 1002, plan_req("approve", 1));
	assert_ok(r);
	json_decref(r);
	r = ask_json(e, "alice", 1000, plan_req("execute", 1));
	assert_ok(r);
	json_decref(r);
	s = services_now(e);
	/* web is back, and dns kept the backend added after the loss */
	assert_non_null(strstr(dump(s), "\"web\""));
	assert_non_null(strstr(dump(s), "10.0.2.9"));
	json_decref(s);
}

/* A restore plan holds what changed since its version and nothing else,
 * and weighs its risk with the services it leaves alone in mind: taking
 * away the only changed service does not remove every service. */
static void test_restore_plans_what_changed(void **state)
{
	struct env *e = *state;
	json_t *r, *plan;

	commit_ok(e, CHANGE(ADD_WEB));                          /* v1 */
	commit_ok(e, CHANGE("{\"op\": \"service_add\", \"name\": \"spare\","
			    " \"vip\": \"10.0.0.7\", \"proto\": \"tcp\","
			    " \"port\": 80, \"mode\": \"l2dsr\"}"));  /* v2 */
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.11\", \"weight\": 1}"));  /* v3 */
	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"back to 2\", \"restore_to\": 2}");
	plan = json_object_get(r, "plan");
	assert_json_text(json_object_get(plan, "ops"),
			 "[{\"op\": \"backend_del\", \"service\": \"web\","
			 " \"addr\": \"10.0.1.11\"}]");
	json_decref(r);

	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"back to 1\", \"restore_to\": 1}");
	plan = json_object_get(r, "plan");
	assert_int_equal(json_array_size(json_object_get(plan, "ops")), 2);
	assert_false(json_is_true(json_object_get(json_object_get(plan, "risk"),
						  "high")));
	json_decref(r);

	/* with web gone too there is nothing left: that is high */
	commit_ok(e, CHANGE_APPROVED("{\"op\": \"backend_del\","
				     " \"service\": \"web\","
				     " \"addr\": \"10.0.1.10\"},"
				     " {\"op\": \"backend_del\","
				     " \"service\": \"web\","
				     " \"addr\": \"10.0.1.11\"}"));  /* v4 */
	r = ask_ok(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		   " \"reason\": \"back to 0\", \"restore_to\": 0}");
	assert_string_equal(str_at(r, "plan.risk.why"),
			    "it removes every service");
	json_decref(r);
}

/* A plan that deletes one backend of web, which is to get id. */
static void plan_backend_del(struct env *e, const char *addr, json_int_t id)
{
	json_t *ops = json_pack("[{s:s, s:s, s:s}]", "op", "backend_del",
				"service", "web", "addr", addr);
	json_t *r = ask_json(e, "alice", 1000, json_pack(
		"{s:s, s:s, s:s, s:o}", "cmd", "plan", "env", "production",
		"reason", "r", "ops", ops));

	assert_ok(r);
	assert_int_equal(int_at(r, "plan.id"), id);
	assert_int_equal(json_array_size(json_object_get(json_object_get(
		r, "plan"), "ops")), 1);
	json_decref(r);
}

/* web has n backends, and the one at position at[i] is want[i]. */
static void assert_web_backends(struct env *e, size_t n, const size_t *at,
				const char *const *want, size_t n_want)
{
	json_t *r = services_now(e);
	json_t *b = json_object_get(json_array_get(r, 0), "backends");

	assert_int_equal(json_array_size(b), n);
	for (size_t i = 0; i < n_want; i++)
		assert_string_equal(str_at(json_array_get(b, at[i]), "addr"),
				    want[i]);
	json_decref(r);
}

/* A plan keeps its ops in a file of their own (plans.c): a plan of many
 * ops is shown without them until asked for by id, and is approved and
 * carried out from the file; a plan saved with its ops inside, as plans
 * were before, is carried out all the same; ops that do not read refuse
 * the apply and change nothing. */
static void test_plan_ops_apart(void **state)
{
	struct env *e = *state;
	json_t *ops = json_array(), *req, *r, *saved;
	char path[PATH_MAX + 32];
	json_error_t je;
	FILE *f;

	commit_ok(e, CHANGE(ADD_WEB));                          /* v1 */
	for (unsigned int i = 0; i < 1001; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.1.%u.%u", i / 250, i % 250 + 1);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:i}", "op",
						     "backend_add", "service", "web",
						     "addr", addr, "weight", 1));
	}
	req = json_pack("{s:s, s:s, s:s, s:o}", "cmd", "plan", "env",
			"production", "reason", "grow", "ops", ops);
	r = ask_json(e, "alice", 1000, req);
	assert_ok(r);
	assert_int_equal(int_at(r, "plan.ops_count"), 1001);
	assert_null(json_object_get(json_object_get(r, "plan"), "ops"));
	json_decref(r);
	snprintf(path, sizeof(path), "%s/1.json", e->d.cfg.plans_dir);
	saved = json_load_file(path, 0, &je);
	assert_non_null(saved);
	assert_null(json_object_get(saved, "ops"));
	json_decref(saved);
	r = ask_ok(e, "{\"cmd\": \"plans\", \"id\": 1}");
	assert_int_equal(json_array_size(json_object_get(json_object_get(
		r, "plan"), "ops")), 1001);
	json_decref(r);
	r = ask_json(e, "carol", 1002, plan_req("approve", 1));
	assert_ok(r);
	assert_null(json_object_get(json_object_get(r, "plan"), "ops"));
	json_decref(r);
	r = ask_json(e, "alice", 1000, plan_req("execute", 1));
	assert_ok(r);
	json_decref(r);
	r = services_now(e);
	assert_int_equal(json_array_size(json_object_get(json_array_get(r, 0),
							 "backends")), 1002);
	json_decref(r);

	/* as plans were saved before: the ops inside */
	snprintf(path, sizeof(path), "%s/2.json", e->d.cfg.plans_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"id\": 2, \"author\": \"alice\", \"uid\": 1000,"
		" \"reason\": \"old\", \"base_version\": 2, \"risk\":"
		" {\"high\": false}, \"ops\": [{\"op\": \"backend_del\","
		" \"service\": \"web\", \"addr\": \"10.1.0.1\"}]}");
	fclose(f);
	r = ask_json(e, "alice", 1000, plan_req("execute", 2));
	assert_ok(r);
	json_decref(r);
	assert_int_equal(store_version(e->d.store), 3);

	/* ops that do not read */
	plan_backend_del(e, "10.1.0.2", 3);
	snprintf(path, sizeof(path), "%s/3.ops.json", e->d.cfg.plans_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[{\"op\": ", f);
	fclose(f);
	assert_refused(e, "{\"cmd\": \"execute\", \"env\": \"production\","
		       " \"reason\": \"r\", \"id\": 3}",
		       "the ops of plan 3 do not read", NULL);
	/* nor is it approved: an approval said to have failed is not kept */
	r = ask_json(e, "carol", 1002, plan_req("approve", 3));
	assert_false(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	snprintf(path, sizeof(path), "%s/3.json", e->d.cfg.plans_dir);
	saved = json_load_file(path, 0, &je);
	assert_non_null(saved);
	assert_null(json_object_get(saved, "approved_by"));
	json_decref(saved);

	/* the ops fulcrumd keeps from making a plan to carrying it out
	 * are what is carried out while the file holds what was written
	 * (here the kept ones are changed behind the file's back, to tell
	 * the two apart) */
	plan_backend_del(e, "10.1.0.8", 4);
	assert_int_equal(e->d.kept_plan.id, 4);
	json_object_set_new(json_array_get(e->d.kept_plan.ops, 0), "addr",
			    json_string("10.1.0.9"));
	r = ask_json(e, "alice", 1000, plan_req("execute", 4));
	assert_ok(r);
	json_decref(r);
	assert_int_equal(e->d.kept_plan.id, 0);
	assert_web_backends(e, 1000, (const size_t[]){ 7, 8 },
			    (const char *const[]){ "10.1.0.8", "10.1.0.10" }, 2);

	/* the ops fulcrumd keeps stand in for the file only while the file
	 * holds what was written: rewritten with other ops, the file's are
	 * carried out */
	plan_backend_del(e, "10.1.0.2", 5);
	snprintf(path, sizeof(path), "%s/5.ops.json", e->d.cfg.plans_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[{\"op\": \"backend_del\", \"service\": \"web\", \"addr\":"
	      " \"10.1.0.3\"}]", f);
	fclose(f);
	r = ask_json(e, "alice", 1000, plan_req("execute", 5));
	assert_ok(r);
	json_decref(r);
	assert_web_backends(e, 999, (const size_t[]){ 0, 1, 2 },
			    (const char *const[]){ "10.0.1.10", "10.1.0.2",
						   "10.1.0.4" }, 3);
}

/* A plan of many ops has its ops file written on two threads, by
 * halves: the file is what json_dumps would write, byte for byte. */
static void test_plan_ops_file_text(void **state)
{
	struct env *e = *state;
	json_t *ops = json_array(), *req, *r;
	char path[PATH_MAX + 32], *want, *got;
	long size;
	FILE *f;

	commit_ok(e, CHANGE(ADD_WEB));
	for (unsigned int i = 0; i < 10001; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.%u.%u.%u", 1 + i / 62500,
			 i / 250 % 250, i % 250 + 1);
		json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:i}", "op",
						     "backend_add", "service", "web",
						     "addr", addr, "weight", 1 + i % 3));
	}
	want = json_dumps(ops, JSON_COMPACT);
	req = json_pack("{s:s, s:s, s:s, s:o}", "cmd", "plan", "env",
			"production", "reason", "grow", "ops", ops);
	r = ask_json(e, "alice", 1000, req);
	assert_ok(r);
	json_decref(r);
	snprintf(path, sizeof(path), "%s/1.ops.json", e->d.cfg.plans_dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	rewind(f);
	got = calloc(1, (size_t)size + 1);
	assert_non_null(got);
	assert_int_equal(fread(got, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static json_int_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (json_int_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A restore to a time goes to the version that was current then. */
static void test_restore_to_time(void **state)
{
	struct env *e = *state;
	struct timespec gap = { 0, 20 * 1000000 };
	json_int_t before, between;
	char req[512];
	json_t *r;

	before = wall_ms();
	nanosleep(&gap, NULL);
	commit_ok(e, CHANGE(ADD_WEB));                          /* v1 */
	nanosleep(&gap, NULL);
	between = wall_ms();
	nanosleep(&gap, NULL);
	commit_ok(e, CHANGE(ADD_DNS));                          /* v2 */

	snprintf(req, sizeof(req), "{\"cmd\": \"plan\", \"env\": \"production\","
		 " \"reason\": \"r\", \"restore_to_time_ms\": %lld}",
		 (long long)between);
	r = ask_ok(e, req);
	assert_int_equal(int_at(r, "plan.restore_to"), 1);
	assert_int_equal(int_at(r, "plan.restore_to_time_ms"), between);
	assert_json_text(json_object_get(json_object_get(r, "plan"), "ops"),
			 "[{\"op\": \"service_del\", \"name\": \"dns\"}]");
	json_decref(r);

	/* before the first change: the empty state */
	snprintf(req, sizeof(req), "{\"cmd\": \"plan\", \"env\": \"production\","
		 " \"reason\": \"r\", \"restore_to_time_ms\": %lld}",
		 (long long)before);
	r = ask_ok(e, req);
	assert_int_equal(int_at(r, "plan.restore_to"), 0);
	assert_int_equal(json_array_size(json_object_get(json_object_get(
		r, "plan"), "ops")), 2);
	json_decref(r);

	assert_refused(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		       " \"reason\": \"r\", \"restore_to_time_ms\": -5}",
		       "ms since 1970", NULL);
	assert_refused(e, "{\"cmd\": \"plan\", \"env\": \"production\","
		       " \"reason\": \"r\", \"restore_to\": 1,"
		       " \"restore_to_time_ms\": 5}", "not both", NULL);
	assert_int_equal(store_version(e->d.store), 2);
}

/* ---- the store heals itself (heal.h) ---- */

/* What another process does to the store file behind fulcrumd's back. */
static void sql_behind_back(struct env *e, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(e->d.cfg.store, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static void scribble(const char *path, long offset, size_t n)
{
	char junk[4096];
	FILE *f = fopen(path, "r+");

	assert_non_null(f);
	assert_true(n <= sizeof(junk));
	memset(junk, 0xa5, n);
	assert_int_equal(fseek(f, offset, SEEK_SET), 0);
	assert_int_equal(fwrite(junk, 1, n, f), n);
	fclose(f);
}

static size_t files_set_aside(struct env *e)
{
	char cmd[256], line[256];
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.damaged-.*[0-9]Z$'",
		 e->dir);
	p = popen(cmd, "r");
	if (p && fgets(line, sizeof(line), p))
		n = strtoul(line, NULL, 10);
	if (p)
		pclose(p);
	return n;
}

/* The file on disk, read as a restarted fulcrumd would: it must hold what
 * was committed last. */
static void assert_file_holds_memory(struct env *e)
{
	char mem[STORE_DIGEST_LEN], disk[STORE_DIGEST_LEN];
	char logged[STORE_DIGEST_LEN];
	uint64_t version;
	json_t *st = store_read_state(e->d.cfg.store, &version, logged, err,
				      sizeof(err));

	if (!st)
		fail_msg("store_read_state: %s", err);
	assert_int_equal(version, store_version(e->d.store));
	assert_int_equal(sync_digest(json_object_get(st, "services"), disk, err,
				     sizeof(err)), 0);
	store_digest(e->d.store, mem);
	assert_string_equal(disk, mem);
	assert_string_equal(logged, mem);
	json_decref(st);
}

/* Every state the dataplane was given from its apply number `from` on had
 * `services` services, each with a backend: never an empty or partial
 * one. */
static void assert_never_gutted(struct fake_dp *f, size_t from,
				size_t services)
{
	size_t i, j;
	json_t *a, *s;

	pthread_mutex_lock(&f->lock);
	json_array_foreach(f->applied, i, a) {
		if (i < from)
			continue;
		assert_int_equal(json_array_size(json_object_get(a, "result")),
				 services);
		json_array_foreach(json_object_get(a, "result"), j, s)
			assert_true(json_array_size(json_object_get(s,
							"backends")) > 0);
	}
	pthread_mutex_unlock(&f->lock);
}

static void test_heal_rows_deleted(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 0, "[]");
	size_t pushed;
	json_t *r;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	pushed = fake_n_applied(f);
	assert_int_equal(heal_check(&e->d, err, sizeof(err)), 0);
	assert_int_equal(files_set_aside(e), 0);    /* nothing happened yet */

	/* a maintenance script run against the wrong store */
	sql_behind_back(e, "DELETE FROM services WHERE name = 'dns'");
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.11\", \"weight\": 1}"));
	assert_int_equal(store_version(e->d.store), 3);
	r = services_now(e);
	assert_non_null(strstr(dump(r), "10.0.2.1"));  /* dns kept its backend */
	assert_non_null(strstr(dump(r), "10.0.1.11"));
	json_decref(r);
	assert_file_holds_memory(e);
	assert_int_equal(files_set_aside(e), 1);
	assert_true(audit_lines(e, "DAMAGED") >= 1);
	assert_true(audit_lines(e, "nothing lost") >= 1);
	assert_int_equal(fake_n_applied(f), pushed + 1);
	assert_never_gutted(f, pushed, 2);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
}

static void test_heal_truncated_then_deleted(void **state)
{
	struct env *e = *state;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	assert_int_equal(truncate(e->d.cfg.store, 0), 0);
	assert_int_equal(heal_check(&e->d, err, sizeof(err)), 0);
	assert_int_equal(store_version(e->d.store), 2);
	assert_file_holds_memory(e);

	assert_int_equal(unlink(e->d.cfg.store), 0);
	assert_int_equal(heal_check(&e->d, err, sizeof(err)), 0);
	assert_int_equal(store_version(e->d.store), 2);
	assert_file_holds_memory(e);
	/* the deleted one left only its -wal and -shm files to set aside */
	assert_int_equal(files_set_aside(e), 1);
	/* and it goes on taking changes */
	commit_ok(e, CHANGE("{\"op\": \"backend_add\", \"service\": \"web\","
			    " \"addr\": \"10.0.1.12\", \"weight\": 1}"));
	assert_file_holds_memory(e);
}

/* The backup lost too: the state comes back from memory, as one logged
 * change of fulcrumd's own, and the dataplane, which runs that very state,
 * is only relabelled. */
static void test_heal_from_memory(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 0, "[]");
	char before[STORE_DIGEST_LEN], after[STORE_DIGEST_LEN];
	json_t *r, *last;
	size_t pushed;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	pushed = fake_n_applied(f);
	store_digest(e->d.store, before);
	assert_int_equal(unlink(e->d.cfg.backup), 0);
	scribble(e->d.cfg.store, 0, 100);             /* not a database now */
	assert_int_equal(heal_check(&e->d, err, sizeof(err)), 0);
	store_digest(e->d.store, after);
	assert_string_equal(before, after);
	assert_int_equal(store_version(e->d.store), 1);
	assert_file_holds_memory(e);
	r = ask_ok(e, "{\"cmd\": \"history\"}");
	last = json_array_get(json_object_get(r, "entries"), 0);
	assert_string_equal(str_at(last, "user"), "fulcrumd");
	assert_true(json_is_true(json_object_get(last, "automatic")));
	assert_non_null(strstr(str_at(last, "reason"), "versions 1 to 2"));
	json_decref(r);
	assert_true(audit_lines(e, "restored from memory") >= 1);
	assert_true(fake_n_applied(f) > pushed);     /* relabelled */
	assert_never_gutted(f, pushed, 2);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->version, 1);
	pthread_mutex_unlock(&f->lock);
	/* the new store has a backup again */
	assert_int_equal(access(e->d.cfg.backup, F_OK), 0);
}

static void test_heal_at_start(void **state)
{
	struct env *e = *state;
	char fix[80];
	bool healed;

	commit_ok(e, CHANGE(ADD_WEB));
	commit_ok(e, CHANGE(ADD_DNS));
	store_close(e->d.store);
	scribble(e->d.cfg.store, 0, 100);
	assert_int_equal(heal_open(&e->d, &healed, err, sizeof(err)), 0);
	assert_true(healed);
	assert_int_equal(store_version(e->d.store), 2);
	assert_file_holds_memory(e);
	assert_int_equal(files_set_aside(e), 1);
	assert_true(audit_lines(e, "DAMAGED at start") == 1);

	/* deleted while fulcrumd was down: the backup has it */
	store_close(e->d.store);
	assert_int_equal(unlink(e->d.cfg.store), 0);
	assert_int_equal(heal_open(&e->d, &healed, err, sizeof(err)), 0);
	assert_true(healed);
	assert_int_equal(store_version(e->d.store), 2);
	assert_true(audit_lines(e, "MISSING at start") == 1);

	/* a whole store of a schema this build does not read is not damage:
	 * refused, and left where it is */
	store_close(e->d.store);
	sql_behind_back(e, "UPDATE meta SET value = '99'"
			" WHERE key = 'schema_version'");
	e->d.store = NULL;
	assert_int_equal(heal_open(&e->d, &healed, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "schema version 99"));
	assert_null(e->d.store);
	assert_int_equal(access(e->d.cfg.store, F_OK), 0);
	assert_int_equal(files_set_aside(e), 1);
	/* for the teardown */
	snprintf(fix, sizeof(fix), "UPDATE meta SET value = '%d'"
		 " WHERE key = 'schema_version'", STORE_SCHEMA_VERSION);
	sql_behind_back(e, fix);
	e->d.store = store_open(e->d.cfg.store, e->d.cfg.backup, err,
				sizeof(err));
	assert_non_null(e->d.store);
}

/* Store and backup both damaged before a start: the dataplane's live
 * state is taken in, and nothing is pushed that it does not run. */
static void test_heal_adopts_live(void **state)
{
	struct env *e = *state;
	struct fake_dp *f = fake_start(e, 7, "[" WEB_ONE "]");
	char live[STORE_DIGEST_LEN], digest[STORE_DIGEST_LEN];
	size_t pushed;
	bool healed;

	commit_ok(e, CHANGE(ADD_WEB));
	pushed = fake_n_applied(f);
	/* fulcrumd restarts */
	store_close(e->d.store);
	e->d.sync = (struct sync){ .socket = e->d.cfg.dataplane_socket };
	scribble(e->d.cfg.store, 0, 100);
	scribble(e->d.cfg.backup, 0, 100);
	assert_int_equal(heal_open(&e->d, &healed, err, sizeof(err)), 0);
	assert_true(healed);
	assert_int_equal(store_version(e->d.store), 0);
	assert_false(heal_adopt_live(&e->d));    /* the dataplane not read yet */
	sync_reconcile(&e->d.sync, e->d.store);
	assert_int_equal(e->d.sync.status, SYNC_HOLD);
	assert_int_equal(fake_n_applied(f), pushed);   /* the empty store held */
	if (!heal_adopt_live(&e->d))
		fail_msg("not adopted: %s", e->d.sync.note);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(sync_digest(f->services, live, err, sizeof(err)), 0);
	pthread_mutex_unlock(&f->lock);
	store_digest(e->d.store, digest);
	assert_string_equal(digest, live);
	assert_int_equal(e->d.sync.status, SYNC_IN_SYNC);
	assert_never_gutted(f, pushed, 1);
	assert_true(audit_lines(e, "adopted") == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roles_and_audit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_blast_radius, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_plans_what_changed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_ops_apart, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plan_ops_file_text, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restore_to_time, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restore_with_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_freeze_stops_every_change,
						setup, teardown),
		T(test_reads_empty),
		T(test_reads_nonempty),
		T(test_bad_requests),
		T(test_environment),
		T(test_change_commits),
		T(test_malformed_ops),
		T(test_unsafe_changes),
		T(test_apply),
		T(test_apply_defaults),
		T(test_apply_address_forms),
		T(test_diff_versions),
		cmocka_unit_test(test_plan_equal_and_defaults),
		cmocka_unit_test(test_plan_changes),
		cmocka_unit_test(test_plan_robust),
		cmocka_unit_test(test_jsonline_cut_short),
		cmocka_unit_test(test_jsonline_oversized),
		cmocka_unit_test(test_jsonline_payload),
		cmocka_unit_test(test_jsonline_valid),
		T(test_sync_pushes_when_behind),
		T(test_sync_conditional_push),
		T(test_sync_early_push),
		T(test_sync_held_change_that_fails),
		T(test_sync_held_push_gives_up_on_a_busy_dataplane),
		T(test_sync_delta_refused_falls_back),
		T(test_sync_holds_when_ahead),
		T(test_sync_no_blind_push),
		T(test_sync_holds_when_diverged),
		T(test_sync_adopt),
		T(test_sync_failed_adopt_keeps_hold),
		T(test_sync_bad_state_answer),
		T(test_heal_rows_deleted),
		T(test_heal_truncated_then_deleted),
		T(test_heal_from_memory),
		T(test_heal_at_start),
		T(test_heal_adopts_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
