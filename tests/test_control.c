/* The dataplane's control socket, as control_handle serves it: a
 * conditional apply goes ahead only while the dataplane runs the version
 * and digest it expects, which is what lets fulcrumd push without reading
 * the whole state back first; anything else leaves the live state as it
 * was. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "batch_craft.h"
#include "control.h"
#include "dataplane.h"
#include "fixture.h"
#include "jsonline.h"
#include "state_json.h"
#include "store.h"
#include "test_env.h"

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"

struct env {
	struct fixture f;
	struct dataplane dp;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	size_t size = rte_rcu_qsbr_get_memsize(1);

	test_env_init();
	fixture_init(&e->f);
	fixture_service(&e->f, "web", "10.0.0.100", IPPROTO_TCP, 80,
			FWD_L2DSR, 4);
	if (fixture_start(&e->f, 4096, true) < 0)
		return -1;
	/* no reader registers: a grace period is over at once */
	e->dp.rcu = rte_zmalloc("rcu", size, RTE_CACHE_LINE_SIZE);
	if (!e->dp.rcu || rte_rcu_qsbr_init(e->dp.rcu, 1) != 0)
		return -1;
	e->dp.fwd = e->f.fwd;
	e->dp.tsc_hz = rte_get_tsc_hz();
	e->dp.start_tsc = rte_rdtsc();
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	control_discard(&e->dp);
	/* what the applies left live is the fixture's to free */
	e->f.fwd = e->dp.fwd;
	fixture_stop(&e->f);
	rte_free(e->dp.rcu);
	free(e);
	return 0;
}

/* An apply of web with n backends, as version v, with the rest of the
 * request (digest, expect) in extra. */
static json_t *apply(struct env *e, json_int_t v, unsigned int n,
		     const char *extra)
{
	char text[4096];
	int len = snprintf(text, sizeof(text), "{\"cmd\": \"apply\", \"version\":"
			   " %lld, \"services\": [{\"name\": \"web\", \"vip\":"
			   " \"10.0.0.100\", \"proto\": \"tcp\", \"port\": 80,"
			   " \"mode\": \"l2dsr\", \"backends\": [",
			   (long long)v);
	json_t *req, *resp;

	for (unsigned int i = 0; i < n; i++)
		len += snprintf(text + len, sizeof(text) - (size_t)len,
				"%s{\"addr\": \"10.0.0.%u\"}", i ? ", " : "",
				10 + i);
	snprintf(text + len, sizeof(text) - (size_t)len, "]}]%s}", extra);
	req = json_loads(text, 0, NULL);
	assert_non_null(req);
	resp = control_handle(&e->dp, req, NULL, 0);
	json_decref(req);
	return resp;
}

static void assert_applied(json_t *resp, bool applied)
{
	assert_true(json_is_boolean(json_object_get(resp, "ok")));
	if (applied != json_is_true(json_object_get(resp, "ok")))
		fail_msg("%s", json_string_value(json_object_get(resp, "error")));
	if (!applied)
		assert_true(json_is_true(json_object_get(resp, "stale")));
	json_decref(resp);
}

static uint32_t n_backends(struct env *e)
{
	for (uint32_t id = 0; id < e->dp.fwd->capacity; id++)
		if (e->dp.fwd->services[id])
			return service_table_get(e->dp.fwd->services[id])
				->n_backends;
	return 0;
}

static void test_conditional_apply(void **state)
{
	struct env *e = *state;

	/* labelled: the dataplane keeps the digest with the version */
	assert_applied(apply(e, 1, 5, ", \"digest\": \"" D1 "\""), true);
	assert_int_equal(e->dp.version, 1);
	assert_string_equal(e->dp.digest, D1);
	assert_int_equal(n_backends(e), 5);

	/* expecting another digest, or another version: refused, unchanged */
	assert_applied(apply(e, 2, 6, ", \"digest\": \"" D2 "\", \"expect\":"
			     " {\"version\": 1, \"digest\": \"" D2 "\"}"), false);
	assert_applied(apply(e, 2, 6, ", \"digest\": \"" D2 "\", \"expect\":"
			     " {\"version\": 0, \"digest\": \"" D1 "\"}"), false);
	assert_int_equal(e->dp.version, 1);
	assert_string_equal(e->dp.digest, D1);
	assert_int_equal(n_backends(e), 5);

	/* as expected: applied, and labelled anew */
	assert_applied(apply(e, 2, 6, ", \"digest\": \"" D2 "\", \"expect\":"
			     " {\"version\": 1, \"digest\": \"" D1 "\"}"), true);
	assert_int_equal(e->dp.version, 2);
	assert_string_equal(e->dp.digest, D2);
	assert_int_equal(n_backends(e), 6);

	/* an apply without a label clears it: nothing can expect it then,
	 * not even an empty digest */
	assert_applied(apply(e, 3, 7, ""), true);
	assert_string_equal(e->dp.digest, "");
	assert_applied(apply(e, 4, 8, ", \"expect\": {\"version\": 3,"
			     " \"digest\": \"\"}"), false);
	assert_int_equal(e->dp.version, 3);
	assert_int_equal(n_backends(e), 7);
}

static json_t *ask(struct env *e, const char *text)
{
	json_t *req = json_loads(text, 0, NULL), *resp;

	assert_non_null(req);
	resp = control_handle(&e->dp, req, NULL, 0);
	json_decref(req);
	return resp;
}

static void assert_refused(json_t *resp, const char *why)
{
	const char *error = json_string_value(json_object_get(resp, "error"));

	assert_false(json_is_true(json_object_get(resp, "ok")));
	if (!error || !strstr(error, why))
		fail_msg("error %s, want %s", error ? error : "(none)", why);
	json_decref(resp);
}

static void assert_held(json_t *resp, json_int_t version)
{
	if (!json_is_true(json_object_get(resp, "ok")))
		fail_msg("%s", json_string_value(json_object_get(resp, "error")));
	assert_true(json_is_true(json_object_get(resp, "held")));
	assert_int_equal(json_integer_value(json_object_get(resp, "version")),
			 version);
	json_decref(resp);
}

/* An apply held is prepared but not live until published, and then
 * labelled with the publish's digest; discarded, it never is. While one
 * is held no other apply goes in; a conditional one that is stale is
 * refused as it would be without the hold, and nothing is held. */
static void test_held_apply(void **state)
{
	struct env *e = *state;
	json_t *r;

	assert_applied(apply(e, 1, 5, ", \"digest\": \"" D1 "\""), true);
	assert_held(apply(e, 2, 6, ", \"hold\": true"), 2);
	assert_int_equal(e->dp.version, 1);
	assert_string_equal(e->dp.digest, D1);
	assert_int_equal(n_backends(e), 5);
	assert_refused(apply(e, 3, 7, ""), "held");
	assert_int_equal(n_backends(e), 5);

	r = ask(e, "{\"cmd\": \"publish\", \"digest\": \"" D2 "\"}");
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
	assert_true(json_is_true(json_object_get(r, "changed")));
	json_decref(r);
	assert_int_equal(e->dp.version, 2);
	assert_string_equal(e->dp.digest, D2);
	assert_int_equal(n_backends(e), 6);
	assert_refused(ask(e, "{\"cmd\": \"publish\"}"), "no update is held");

	assert_held(apply(e, 3, 7, ", \"hold\": true"), 3);
	r = ask(e, "{\"cmd\": \"discard\"}");
	assert_true(json_is_true(json_object_get(r, "discarded")));
	json_decref(r);
	assert_int_equal(e->dp.version, 2);
	assert_int_equal(n_backends(e), 6);
	r = ask(e, "{\"cmd\": \"discard\"}");
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_false(json_is_true(json_object_get(r, "discarded")));
	json_decref(r);

	assert_applied(apply(e, 3, 7, ", \"hold\": true, \"expect\": {\"version\": 1,"
			     " \"digest\": \"" D1 "\"}"), false);
	assert_refused(ask(e, "{\"cmd\": \"publish\"}"), "no update is held");
	assert_refused(ask(e, "{\"cmd\": \"publish\", \"version\": 3}"),
		       "publish");
	assert_int_equal(n_backends(e), 6);
}

static const struct service *live(struct env *e, const char *name)
{
	for (uint32_t id = 0; id < e->dp.fwd->capacity; id++)
		if (e->dp.fwd->services[id] &&
		    strcmp(e->dp.fwd->services[id]->name, name) == 0)
			return e->dp.fwd->services[id];
	return NULL;
}

/* No two live backend slots share a counter. */
static void assert_stat_ids_unique(struct env *e)
{
	uint8_t *seen = calloc(e->dp.fwd->max_backends, 1);

	assert_non_null(seen);
	for (uint32_t id = 0; id < e->dp.fwd->capacity; id++) {
		const struct service *svc = e->dp.fwd->services[id];
		const struct service_table *t;

		if (!svc)
			continue;
		t = service_table_get(svc);
		for (uint32_t j = 0; j < t->n_backends; j++) {
			assert_true(t->backends[j].stat_id <
				    e->dp.fwd->max_backends);
			assert_false(seen[t->backends[j].stat_id]);
			seen[t->backends[j].stat_id] = 1;
		}
	}
	free(seen);
}

#define SVC(name, vip, backends) \
	"{\"name\": \"" name "\", \"vip\": \"" vip "\", \"proto\": \"tcp\"," \
	" \"port\": 80, \"mode\": \"l2dsr\", \"backends\": [" backends "]}"
#define BE(addr) "{\"addr\": \"" addr "\"}"
#define EXPECT(v, d) ", \"expect\": {\"version\": " #v ", \"digest\": \"" d "\"}"

/* A delta lays the services it sends over the live ones and takes away
 * those it names; what it leaves alone stays live as it was, the very
 * service objects, so that their flows and counters carry on. Anything
 * that does not fit the live state is refused whole. */
static void test_delta_apply(void **state)
{
	struct env *e = *state;
	const struct service *api;
	json_t *dump;
	char *text;

	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 1,"
			   " \"digest\": \"" D1 "\", \"services\": ["
			   SVC("web", "10.0.0.100", BE("10.0.0.10")) ", "
			   SVC("dns", "10.0.0.53", BE("10.0.0.11")) ", "
			   SVC("api", "10.0.0.101", BE("10.0.0.12") ", "
			       BE("10.0.0.13")) "]}"), true);
	api = live(e, "api");
	assert_non_null(api);

	/* refused whole, nothing changed */
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [], \"removed\": [\"dns\"]}"),
		       "a delta needs \"expect\"");
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [], \"removed\": [\"nope\"]"
			   EXPECT(1, D1) "}"), "1 of the 1 services removed are "
		       "not live");
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [" SVC("dns", "10.0.0.53",
						 BE("10.0.0.14")) "],"
			   " \"removed\": [\"dns\"]" EXPECT(1, D1) "}"),
		       "removed and changed at once");
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [], \"removed\": [],"
			   " \"services\": []" EXPECT(1, D1) "}"),
		       "an apply sends");
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [], \"removed\": [\"web\", \"dns\","
			   " \"api\"]" EXPECT(1, D1) "}"),
		       "removes every service");
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"changed\": [" SVC("web", "10.0.0.100", "") "],"
			   " \"removed\": []" EXPECT(1, D1) "}"),
		       "leaves live service web with no active backend");
	assert_int_equal(e->dp.version, 1);
	assert_ptr_equal(live(e, "api"), api);
	assert_non_null(live(e, "dns"));

	/* web grows a backend, dns goes, a new one comes; api is untouched */
	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 2,"
			   " \"digest\": \"" D2 "\", \"changed\": ["
			   SVC("web", "10.0.0.100", BE("10.0.0.10") ", "
			       BE("10.0.0.15")) ", "
			   SVC("new", "10.0.0.102", BE("10.0.0.16")) "],"
			   " \"removed\": [\"dns\"]" EXPECT(1, D1) "}"), true);
	assert_int_equal(e->dp.version, 2);
	assert_string_equal(e->dp.digest, D2);
	assert_ptr_equal(live(e, "api"), api);
	dump = state_json_dump(e->dp.fwd);
	text = json_dumps(dump, JSON_COMPACT);
	assert_string_equal(text,
		"[{\"name\":\"api\",\"vip\":\"10.0.0.101\",\"proto\":\"tcp\","
		"\"port\":80,\"mode\":\"l2dsr\",\"table_size\":65537,"
		"\"gue_port\":6080,\"backends\":[{\"addr\":\"10.0.0.12\","
		"\"weight\":1,\"state\":\"active\"},{\"addr\":\"10.0.0.13\","
		"\"weight\":1,\"state\":\"active\"}]},"
		"{\"name\":\"new\",\"vip\":\"10.0.0.102\",\"proto\":\"tcp\","
		"\"port\":80,\"mode\":\"l2dsr\",\"table_size\":65537,"
		"\"gue_port\":6080,\"backends\":[{\"addr\":\"10.0.0.16\","
		"\"weight\":1,\"state\":\"active\"}]},"
		"{\"name\":\"web\",\"vip\":\"10.0.0.100\",\"proto\":\"tcp\","
		"\"port\":80,\"mode\":\"l2dsr\",\"table_size\":65537,"
		"\"gue_port\":6080,\"backends\":[{\"addr\":\"10.0.0.10\","
		"\"weight\":1,\"state\":\"active\"},{\"addr\":\"10.0.0.15\","
		"\"weight\":1,\"state\":\"active\"}]}]");
	free(text);
	json_decref(dump);

	/* a delta against a state it no longer runs is stale */
	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 3,"
			   " \"changed\": [], \"removed\": [\"new\"]"
			   EXPECT(1, D1) "}"), false);
	assert_non_null(live(e, "new"));

	/* the services a delta leaves alone keep their VIPs: a changed one
	 * may not take one of theirs, but may take one the delta frees */
	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 3,"
			   " \"changed\": [" SVC("more", "10.0.0.101",
						 BE("10.0.0.17")) "],"
			   " \"removed\": []" EXPECT(2, D2) "}"),
		       "service more: its VIP, protocol and port belong to "
		       "another service too");
	assert_null(live(e, "more"));
	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 3,"
			   " \"digest\": \"" D1 "\", \"changed\": ["
			   SVC("web", "10.0.0.102", BE("10.0.0.10")) ", "
			   SVC("more", "10.0.0.103", BE("10.0.0.17") ", "
			       BE("10.0.0.18") ", " BE("10.0.0.19") ", "
			       BE("10.0.0.20") ", " BE("10.0.0.21") ", "
			       BE("10.0.0.22") ", " BE("10.0.0.23") ", "
			       BE("10.0.0.24")) "],"
			   " \"removed\": [\"new\"]" EXPECT(2, D2) "}"), true);
	assert_ptr_equal(live(e, "api"), api);
	assert_null(live(e, "new"));
	assert_non_null(live(e, "web"));
	assert_int_equal(e->dp.fwd->n_services, 3);
	/* new backends get counters of their own, never those of an
	 * untouched service, which the build did not look into (more's
	 * eight take the lowest free ones, where api's are) */
	assert_stat_ids_unique(e);
}

/* text with the payload after it, which it announces as the socket's
 * serve loop would read it (unless text announces one itself) */
static json_t *ask_with(struct env *e, const char *text, const void *payload,
			size_t len)
{
	json_t *req = json_loads(text, 0, NULL), *resp;

	assert_non_null(req);
	if (!json_object_get(req, "payload"))
		json_object_set_new(req, "payload", json_integer((json_int_t)len));
	resp = control_handle(&e->dp, req, payload, len);
	json_decref(req);
	return resp;
}

static char *dump_text(struct env *e)
{
	json_t *dump = state_json_dump(e->dp.fwd);
	char *text = json_dumps(dump, JSON_COMPACT);

	json_decref(dump);
	return text;
}

#define TWO_SERVICES "[" SVC("web", "10.0.0.100", BE("10.0.0.12") ", " \
	BE("10.0.0.10") ", {\"addr\": \"10.0.0.11\", \"weight\": 3," \
	" \"state\": \"draining\"}") ", {\"name\": \"six\", \"vip\":" \
	" \"fd00::100\", \"proto\": \"udp\", \"port\": 53, \"mode\": \"ipip\"," \
	" \"table_size\": 1009, \"backends\": [{\"addr\": \"fd00::2\"}," \
	" {\"addr\": \"fd00::1\", \"weight\": 2}]}]"

/* The services as fulcrumd sends them, in binary after the request's
 * line, build the very tables their JSON builds; a delta in binary lays
 * its services over the live ones as one in JSON does. */
static void test_binary_apply(void **state)
{
	struct env *e = *state;
	unsigned char *batch;
	char *before, *after;
	json_t *resp;
	size_t len;

	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 1,"
			   " \"services\": " TWO_SERVICES "}"), true);
	before = dump_text(e);
	batch = batch_craft(TWO_SERVICES, &len);
	resp = ask_with(e, "{\"cmd\": \"apply\", \"version\": 2, \"digest\": \""
			D2 "\", \"services\": \"payload\"}",
			batch, len);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	/* nothing to swap: the tables are those the JSON built */
	assert_false(json_is_true(json_object_get(resp, "changed")));
	json_decref(resp);
	after = dump_text(e);
	assert_string_equal(after, before);
	assert_int_equal(e->dp.version, 2);
	free(after);
	free(before);
	free(batch);

	batch = batch_craft("[" SVC("web", "10.0.0.100", BE("10.0.0.12") ", "
			    "{\"addr\": \"10.0.0.13\", \"weight\": 5}") "]",
			    &len);
	assert_applied(ask_with(e, "{\"cmd\": \"apply\", \"version\": 3,"
				" \"changed\": \"payload\","
				" \"removed\": [\"six\"]" EXPECT(2, D2) "}",
				batch, len), true);
	free(batch);
	after = dump_text(e);
	assert_string_equal(after,
		"[{\"name\":\"web\",\"vip\":\"10.0.0.100\",\"proto\":\"tcp\","
		"\"port\":80,\"mode\":\"l2dsr\",\"table_size\":65537,"
		"\"gue_port\":6080,\"backends\":[{\"addr\":\"10.0.0.12\","
		"\"weight\":1,\"state\":\"active\"},{\"addr\":\"10.0.0.13\","
		"\"weight\":5,\"state\":\"active\"}]}]");
	free(after);
	assert_int_equal(e->dp.version, 3);
}

/* A binary apply whose bytes are not services the tables can take, or
 * that do not come, is refused whole. */
static void test_binary_apply_refused(void **state)
{
	struct env *e = *state;
	static const char whole[] = "{\"cmd\": \"apply\", \"version\": 9,"
		" \"services\": \"payload\"}";
	unsigned char *batch;
	char *before, *after;
	size_t len;

	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 1,"
			   " \"services\": " TWO_SERVICES "}"), true);
	before = dump_text(e);
	batch = batch_craft(TWO_SERVICES, &len);

	assert_refused(ask(e, "{\"cmd\": \"apply\", \"version\": 9,"
			   " \"services\": \"payload\"}"), "does not announce");
	assert_refused(ask_with(e, "{\"cmd\": \"apply\", \"version\": 9,"
				" \"services\": \"payload\", \"payload\": 7}",
				batch, len), "not the one that came");
	assert_refused(ask_with(e, whole, batch, len - 1), "cut short");
	assert_refused(ask_with(e, whole, batch, 3), "cut short");
	assert_refused(ask_with(e, whole, batch, 0), "removes every service");

	/* the services are by name: six, then web. six's layout byte, its
	 * table_size (1009 -> 1000, not a prime), web's first weight. */
	batch[4] = 9;
	assert_refused(ask_with(e, whole, batch, len), "not a valid service");
	batch[4] = 2;
	batch[4 + 54] = 0xe8;
	batch[4 + 55] = 0x03;
	assert_refused(ask_with(e, whole, batch, len), "service six: a "
		       "table_size that is not a prime");
	batch[4 + 54] = 0xf1;
	{
		/* web's image: after six's length and image */
		size_t six = 4 + (size_t)(batch[0] | batch[1] << 8);
		size_t web_weight = six + 4 + 64 + 4;

		batch[web_weight] = batch[web_weight + 1] = 0;
		assert_refused(ask_with(e, whole, batch, len), "service web: a "
			       "backend of address or weight zero");
		batch[web_weight] = 1;
		/* a byte the writer leaves zero, past web's IPv4 VIP */
		batch[six + 4 + 33 + 4] = 1;
		assert_refused(ask_with(e, whole, batch, len),
			       "service 1 of those sent is not a valid service");
	}
	free(batch);
	after = dump_text(e);
	assert_string_equal(after, before);
	assert_int_equal(e->dp.version, 1);
	free(after);
	free(before);
}

/* One response line from the control socket, read a byte at a time so
 * that the next one stays unread; NULL once the socket is closed. */
static json_t *read_answer(int fd)
{
	char line[4096];
	size_t n = 0;

	while (n < sizeof(line) - 1 && read(fd, &line[n], 1) == 1)
		if (line[n++] == '\n')
			return json_loadb(line, n - 1, 0, NULL);
	return NULL;
}

static void send_text(int fd, const void *text, size_t len)
{
	assert_int_equal(write(fd, text, len), (ssize_t)len);
}

/* The socket's own reading (control.c's serve): a line and the payload
 * it announces arrive in any number of reads, and requests follow one
 * another on a connection; a payload announced that cannot be is
 * answered and the connection closed, since where it would end cannot be
 * told and the rest of the stream is not to be read as requests. */
static void test_socket_payloads(void **state)
{
	struct env *e = *state;
	static const char status_line[] = "{\"cmd\": \"status\"}\n";
	static const char bad[] = "{\"cmd\": \"apply\", \"version\": 6,"
		" \"services\": \"payload\", \"payload\": -1}\n";
	char path[64], why[256], line[256];
	unsigned char *batch;
	json_t *r;
	size_t len;
	int fd;

	snprintf(path, sizeof(path), "/tmp/fulcrum-control-%d.sock",
		 (int)getpid());
	snprintf(e->dp.cfg.control_socket, sizeof(e->dp.cfg.control_socket),
		 "%s", path);
	if (control_start(&e->dp, path, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	fd = jsonline_connect(path);
	assert_true(fd >= 0);

	batch = batch_craft(TWO_SERVICES, &len);
	snprintf(line, sizeof(line), "{\"cmd\": \"apply\", \"version\": 5,"
		 " \"services\": \"payload\", \"payload\": %zu}\n", len);
	send_text(fd, line, strlen(line));
	send_text(fd, batch, len / 2);
	usleep(20 * 1000);
	send_text(fd, batch + len / 2, len - len / 2);
	send_text(fd, status_line, strlen(status_line));
	r = read_answer(fd);
	assert_non_null(r);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	r = read_answer(fd);
	assert_int_equal(json_integer_value(json_object_get(r, "protocol")),
			 CONTROL_PROTOCOL);
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 5);
	json_decref(r);
	free(batch);

	send_text(fd, bad, strlen(bad));
	send_text(fd, status_line, strlen(status_line));
	r = read_answer(fd);
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")),
			       "payload announced"));
	json_decref(r);
	assert_null(read_answer(fd));
	close(fd);
	assert_int_equal(e->dp.version, 5);
	__atomic_store_n(&e->dp.stop, true, __ATOMIC_RELAXED);
	control_stop(&e->dp);
}

/* A backend a held update takes out leaves when the update goes live:
 * its slot's idle time, after which it may go to another backend, counts
 * from the publish, not from the prepare. */
static void test_held_removal_counts_from_publish(void **state)
{
	struct env *e = *state;
	const struct service_table *t;
	uint32_t before, removed = 0;
	json_t *r;

	assert_applied(apply(e, 1, 5, ""), true);
	before = dataplane_now(&e->dp, rte_rdtsc());
	assert_held(apply(e, 2, 4, ", \"hold\": true"), 2);
	/* five seconds between the prepare and the publish */
	e->dp.start_tsc -= 5 * e->dp.tsc_hz;
	r = ask(e, "{\"cmd\": \"publish\"}");
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	t = service_table_get(live(e, "web"));
	for (uint32_t j = 0; j < t->n_backends; j++)
		if (t->backends[j].state == BACKEND_REMOVED &&
		    t->backends[j].addr.v4 == RTE_BE32(0x0a00000e)) {   /* 10.0.0.14 */
			removed++;
			assert_true(t->backends[j].removed_at >= before + 5);
		}
	assert_int_equal(removed, 1);
}

/* An update held belongs to the connection that sent it: when that
 * client goes, it is discarded, and the next client's apply goes in. */
static void test_held_ends_with_connection(void **state)
{
	struct env *e = *state;
	static const char held[] = "{\"cmd\": \"apply\", \"version\": 7,"
		" \"hold\": true, \"services\": [" SVC("web", "10.0.0.100",
		BE("10.0.0.12")) "]}\n";
	static const char plain[] = "{\"cmd\": \"apply\", \"version\": 8,"
		" \"services\": [" SVC("web", "10.0.0.100", BE("10.0.0.13") ", "
		BE("10.0.0.14")) "]}\n";
	char path[64], why[256];
	json_t *r;
	int fd;

	snprintf(path, sizeof(path), "/tmp/fulcrum-control-%d.sock",
		 (int)getpid());
	snprintf(e->dp.cfg.control_socket, sizeof(e->dp.cfg.control_socket),
		 "%s", path);
	if (control_start(&e->dp, path, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	fd = jsonline_connect(path);
	assert_true(fd >= 0);
	send_text(fd, held, strlen(held));
	assert_held(read_answer(fd), 7);
	close(fd);

	fd = jsonline_connect(path);
	assert_true(fd >= 0);
	send_text(fd, plain, strlen(plain));
	r = read_answer(fd);
	if (!json_is_true(json_object_get(r, "ok")))
		fail_msg("%s", json_string_value(json_object_get(r, "error")));
	json_decref(r);
	close(fd);
	__atomic_store_n(&e->dp.stop, true, __ATOMIC_RELAXED);
	control_stop(&e->dp);
	assert_int_equal(e->dp.version, 8);
	assert_false(e->dp.holding);
}

/* The digest of a store that holds services: committed to a new store as
 * one service_add each, the way fulcrumd's store hashes them. */
static void store_digest_of(const json_t *services, char out[STORE_DIGEST_LEN])
{
	struct change_meta meta = { .user = "test" };
	char dir[] = "/tmp/fulcrum-control-XXXXXX", path[64], err[512];
	json_t *ops = json_array(), *svc;
	struct store *st;
	uint64_t v = 0;
	size_t i;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state.db", dir);
	json_array_foreach(services, i, svc) {
		json_t *op = json_copy((json_t *)svc);

		json_object_set_new(op, "op", json_string("service_add"));
		json_array_append_new(ops, op);
	}
	st = store_open(path, NULL, err, sizeof(err));
	assert_non_null(st);
	if (store_commit(st, &meta, ops, &v, err, sizeof(err)) != STORE_OK)
		fail_msg("%s", err);
	store_digest(st, out);
	store_close(st);
	json_decref(ops);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

/* "digest" hashes the live tables themselves, to what fulcrumd's store
 * gives for the services "state" tells: backends in any order, draining
 * ones and an IPv6 service included. */
static void test_digest_of_live_tables(void **state)
{
	struct env *e = *state;
	char want[STORE_DIGEST_LEN];
	json_t *resp;

	assert_applied(ask(e, "{\"cmd\": \"apply\", \"version\": 4,"
		" \"services\": [" SVC("web", "10.0.0.100", BE("10.0.0.12") ", "
		BE("10.0.0.10") ", {\"addr\": \"10.0.0.11\", \"weight\": 3,"
		" \"state\": \"draining\"}") ", {\"name\": \"six\", \"vip\":"
		" \"fd00::100\", \"proto\": \"udp\", \"port\": 53, \"mode\": \"ipip\","
		" \"table_size\": 1009, \"backends\": [{\"addr\": \"fd00::2\"},"
		" {\"addr\": \"fd00::1\", \"weight\": 2}]}]}"), true);
	resp = ask(e, "{\"cmd\": \"state\"}");
	store_digest_of(json_object_get(resp, "services"), want);
	json_decref(resp);
	resp = ask(e, "{\"cmd\": \"digest\"}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(json_integer_value(json_object_get(resp, "version")), 4);
	assert_string_equal(json_string_value(json_object_get(resp, "digest")),
			    want);
	json_decref(resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conditional_apply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delta_apply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_binary_apply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_binary_apply_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_held_apply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_held_removal_counts_from_publish,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_ends_with_connection,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_payloads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_digest_of_live_tables,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
