/* fulcrumd's active health checks (health.h), driven as fulcrumd's loop
 * drives them, against real listeners on loopback addresses: a listening
 * socket passes, a closed port fails. No dataplane listens: its sync is
 * "unreachable", and changes are committed to a store of the test's own
 * under /tmp all the same. */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "health.h"
#include "mgmt.h"

#define N_BACKENDS 3
#define INTERVAL_MS 20
#define RISE 2
#define FALL 3

struct env {
	char dir[64];
	struct fulcrumd d;
	uint16_t port;                   /* every backend's */
	int listener[N_BACKENDS];        /* on 127.0.0.(i + 1), or -1 */
};

static char err[1024];

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
			struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

/* A listener on 127.0.0.(i + 1):port (port 0: any); -1 if taken. */
static int listen_at(int i, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(0x7f000001u + i) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void backend_up(struct env *e, int i)
{
	assert_true(e->listener[i] < 0);
	e->listener[i] = listen_at(i, e->port);
	assert_true(e->listener[i] >= 0);
}

static void backend_down(struct env *e, int i)
{
	close(e->listener[i]);
	e->listener[i] = -1;
}

static const char *addr_of(int i)
{
	static char text[3][16];

	snprintf(text[i], sizeof(text[i]), "127.0.0.%d", i + 1);
	return text[i];
}

/* Commits ops (JSON text) as an operator would. */
static void operator_change(struct env *e, const char *ops_text)
{
	struct change_meta meta = { .user = "alice", .uid = 1000,
				    .environment = "production",
				    .reason = "test" };
	json_error_t je;
	json_t *ops = json_loads(ops_text, 0, &je), *resp;

	if (!ops)
		fail_msg("bad JSON in the test: %s: %s", je.text, ops_text);
	resp = mgmt_commit(&e->d, &meta, ops, false);
	if (!json_is_true(json_object_get(resp, "ok")))
		fail_msg("refused: %s", json_string_value(json_object_get(resp,
							       "error")));
	json_decref(resp);
	json_decref(ops);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[160], ops[1024];
	int tries;

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/fulcrum-health-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->d.cfg.environment, sizeof(e->d.cfg.environment),
		 "production");
	snprintf(e->d.cfg.cluster_id, sizeof(e->d.cfg.cluster_id), "c1");
	snprintf(e->d.cfg.dataplane_socket, sizeof(e->d.cfg.dataplane_socket),
		 "%s/dataplane.sock", e->dir);
	e->d.cfg.health_interval_ms = INTERVAL_MS;
	e->d.cfg.health_timeout_ms = INTERVAL_MS / 2;
	e->d.cfg.health_rise = RISE;
	e->d.cfg.health_fall = FALL;
	e->d.cfg.blast_share = 25;      /* daemon_config's defaults */
	e->d.cfg.blast_services = 10;
	snprintf(path, sizeof(path), "%s/state.db", e->dir);
	e->d.store = store_open(path, NULL, err, sizeof(err));
	if (!e->d.store)
		fail_msg("store_open: %s", err);
	e->d.sync.socket = e->d.cfg.dataplane_socket;
	e->d.health = health_new(&e->d);
	assert_non_null(e->d.health);

	/* one port free on all three addresses */
	for (tries = 0; tries < 20; tries++) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);

		e->listener[0] = listen_at(0, 0);
		getsockname(e->listener[0], (struct sockaddr *)&a, &len);
		e->port = ntohs(a.sin_port);
		e->listener[1] = listen_at(1, e->port);
		e->listener[2] = listen_at(2, e->port);
		if (e->listener[1] >= 0 && e->listener[2] >= 0)
			break;
		for (int i = 0; i < N_BACKENDS; i++)
			if (e->listener[i] >= 0)
				close(e->listener[i]);
	}
	assert_true(tries < 20);
	snprintf(ops, sizeof(ops), "[{\"op\": \"service_add\", \"name\": \"web\","
		 " \"vip\": \"10.0.0.100\", \"proto\": \"tcp\", \"port\": %u,"
		 " \"mode\": \"l2dsr\", \"backends\": [{\"addr\": \"127.0.0.1\","
		 " \"weight\": 1}, {\"addr\": \"127.0.0.2\", \"weight\": 1},"
		 " {\"addr\": \"127.0.0.3\", \"weight\": 1}]}]", e->port);
	operator_change(e, ops);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < N_BACKENDS; i++)
		if (e->listener[i] >= 0)
			close(e->listener[i]);
	health_free(e->d.health);
	store_close(e->d.store);
	nftw(e->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

/* ---- what the store and the checker say ---- */

static const char *stored_state(struct env *e, const char *service,
				const char *addr)
{
	static char state[16];
	json_t *st = store_state(e->d.store, err, sizeof(err)), *s, *b;
	size_t i, k;

	assert_non_null(st);
	state[0] = '\0';
	json_array_foreach(json_object_get(st, "services"), i, s) {
		if (strcmp(json_string_value(json_object_get(s, "name")), service))
			continue;
		json_array_foreach(json_object_get(s, "backends"), k, b)
			if (strcmp(json_string_value(json_object_get(b, "addr")),
				   addr) == 0)
				snprintf(state, sizeof(state), "%s",
					 json_string_value(json_object_get(b,
									  "state")));
	}
	json_decref(st);
	return state;
}

/* The backend's entry in the "health" response, which the caller frees
 * with the returned response. */
static json_t *health_entry(struct env *e, const char *service,
			    const char *addr, json_t **resp)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", "health", "name", service);
	struct peer root = { .uid = 0, .gid = 0, .user = "root" };
	json_t *s, *b;
	size_t i;

	*resp = mgmt_handle(&e->d, &root, req);
	json_decref(req);
	if (!json_is_true(json_object_get(*resp, "ok")))
		fail_msg("health refused: %s", json_string_value(
				 json_object_get(*resp, "error")));
	s = json_array_get(json_object_get(*resp, "services"), 0);
	json_array_foreach(json_object_get(s, "backends"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "addr")), addr) == 0)
			return b;
	fail_msg("no health for %s in %s", addr, service);
	return NULL;
}

static bool health_is(struct env *e, const char *service, const char *addr,
		      const char *want)
{
	json_t *resp, *b = health_entry(e, service, addr, &resp);
	bool same = strcmp(json_string_value(json_object_get(b, "health")),
			   want) == 0;

	json_decref(resp);
	return same;
}

static bool fail_open(struct env *e, const char *service)
{
	json_t *resp, *b = health_entry(e, service, "127.0.0.1", &resp);
	json_t *s = json_array_get(json_object_get(resp, "services"), 0);
	bool open = json_is_true(json_object_get(s, "fail_open"));

	(void)b;
	json_decref(resp);
	return open;
}

/* ---- the loop ---- */

/* Runs fulcrumd's loop pieces for ms milliseconds, or until done(e) holds;
 * returns whether it does. The listeners' queues are emptied as a
 * server's accept() would. */
static bool run_until(struct env *e, unsigned int ms,
		      bool (*done)(struct env *e))
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		struct pollfd p = { .fd = health_fd(e->d.health),
				    .events = POLLIN };
		int wait = health_wait_ms(e->d.health, now_ms());

		poll(&p, 1, wait < 5 ? wait : 5);
		health_run(e->d.health, now_ms());
		for (int i = 0; i < N_BACKENDS; i++) {
			int fd;

			while (e->listener[i] >= 0 &&
			       (fd = accept(e->listener[i], NULL, NULL)) >= 0)
				close(fd);
		}
		if (done && done(e))
			return true;
	}
	return done ? done(e) : true;
}

static bool all_up(struct env *e)
{
	for (int i = 0; i < N_BACKENDS; i++)
		if (!health_is(e, "web", addr_of(i), "up"))
			return false;
	return true;
}

static bool all_down(struct env *e)
{
	for (int i = 0; i < N_BACKENDS; i++)
		if (!health_is(e, "web", addr_of(i), "down"))
			return false;
	return true;
}

static bool second_down(struct env *e)
{
	return strcmp(stored_state(e, "web", "127.0.0.2"), "down") == 0;
}

static bool second_active(struct env *e)
{
	return strcmp(stored_state(e, "web", "127.0.0.2"), "active") == 0;
}

static bool not_fail_open(struct env *e)
{
	return !fail_open(e, "web");
}

/* The log's last entry, which the caller frees. */
static json_t *last_change(struct env *e)
{
	json_t *h = store_history(e->d.store, store_version(e->d.store), 1, err,
				  sizeof(err));
	json_t *last;

	assert_non_null(h);
	last = json_incref(json_array_get(h, 0));
	json_decref(h);
	assert_non_null(last);
	return last;
}

static void assert_health_change(struct env *e, const char *addr,
				 const char *state, const char *reason)
{
	json_t *last = last_change(e), *op;
	const char *text = json_string_value(json_object_get(last, "reason"));

	assert_true(json_is_true(json_object_get(last, "automatic")));
	assert_string_equal(json_string_value(json_object_get(last, "user")),
			    "health");
	assert_string_equal(json_string_value(json_object_get(last,
							     "environment")),
			    "production");
	if (!strstr(text, reason))
		fail_msg("reason '%s' lacks '%s'", text, reason);
	op = json_array_get(json_object_get(last, "ops"), 0);
	assert_int_equal(json_array_size(json_object_get(last, "ops")), 1);
	assert_string_equal(json_string_value(json_object_get(op, "op")),
			    "backend_set");
	assert_string_equal(json_string_value(json_object_get(op, "addr")), addr);
	assert_string_equal(json_string_value(json_object_get(op, "state")),
			    state);
	json_decref(last);
}

/* ---- the tests ---- */

static void test_down_after_fall_back_after_rise(void **state)
{
	struct env *e = *state;
	char want[128];
	json_t *resp, *b;
	uint64_t v;

	assert_true(run_until(e, 2000, all_up));
	v = store_version(e->d.store);

	backend_down(e, 1);
	assert_true(run_until(e, 2000, second_down));
	assert_int_equal(store_version(e->d.store), v + 1);
	snprintf(want, sizeof(want), "health: 127.0.0.2:%u failed %d checks "
		 "(connection refused)", e->port, FALL);
	assert_health_change(e, "127.0.0.2", "down", want);
	b = health_entry(e, "web", "127.0.0.2", &resp);
	assert_string_equal(json_string_value(json_object_get(b, "health")),
			    "down");
	assert_true(json_is_true(json_object_get(b, "down_by_health")));
	/* taken down on the fall-th failure in a row, not before */
	assert_int_equal(json_integer_value(json_object_get(b, "fails")), FALL);
	json_decref(resp);
	/* the others are untouched */
	assert_string_equal(stored_state(e, "web", "127.0.0.1"), "active");
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "active");

	backend_up(e, 1);
	assert_true(run_until(e, 2000, second_active));
	assert_int_equal(store_version(e->d.store), v + 2);
	snprintf(want, sizeof(want), "health: 127.0.0.2:%u passed %d checks",
		 e->port, RISE);
	assert_health_change(e, "127.0.0.2", "active", want);
	b = health_entry(e, "web", "127.0.0.2", &resp);
	assert_false(json_is_true(json_object_get(b, "down_by_health")));
	assert_int_equal(json_integer_value(json_object_get(b, "passes")), RISE);
	json_decref(resp);

	/* steady: nothing more to commit */
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_int_equal(store_version(e->d.store), v + 2);
}

/* What an operator drained or set down stays as the operator left it,
 * failing or passing. */
static void test_operator_choices_stand(void **state)
{
	struct env *e = *state;
	uint64_t v;

	assert_true(run_until(e, 2000, all_up));
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.3\", \"state\": \"draining\"}]");
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.1\", \"state\": \"down\"}]");
	v = store_version(e->d.store);
	backend_down(e, 2);
	run_until(e, 30 * INTERVAL_MS, NULL);
	assert_true(health_is(e, "web", "127.0.0.3", "down"));
	assert_true(health_is(e, "web", "127.0.0.1", "up"));
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "draining");
	assert_string_equal(stored_state(e, "web", "127.0.0.1"), "down");
	assert_int_equal(store_version(e->d.store), v);

	/* one the checker set down and an operator then drained is the
	 * operator's: it is not brought back when it passes again */
	backend_down(e, 1);
	backend_up(e, 2);
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.3\", \"state\": \"active\"}]");
	assert_true(run_until(e, 2000, second_down));
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"state\": \"draining\"}]");
	v = store_version(e->d.store);
	backend_up(e, 1);
	run_until(e, 30 * INTERVAL_MS, NULL);
	assert_true(health_is(e, "web", "127.0.0.2", "up"));
	assert_string_equal(stored_state(e, "web", "127.0.0.2"), "draining");
	assert_int_equal(store_version(e->d.store), v);
}

/* Every backend failing: none is taken down, and it says so. */
static void test_fail_open(void **state)
{
	struct env *e = *state;
	struct peer root = { .uid = 0, .gid = 0, .user = "root" };
	json_t *req = json_pack("{s:s}", "cmd", "status"), *resp, *open;
	uint64_t v;

	assert_true(run_until(e, 2000, all_up));
	v = store_version(e->d.store);
	for (int i = 0; i < N_BACKENDS; i++)
		backend_down(e, i);
	assert_true(run_until(e, 2000, all_down));
	run_until(e, 10 * INTERVAL_MS, NULL);
	for (int i = 0; i < N_BACKENDS; i++)
		assert_string_equal(stored_state(e, "web", addr_of(i)), "active");
	assert_int_equal(store_version(e->d.store), v);
	assert_true(fail_open(e, "web"));

	resp = mgmt_handle(&e->d, &root, req);
	open = json_object_get(json_object_get(resp, "health"), "fail_open");
	assert_int_equal(json_array_size(open), 1);
	assert_string_equal(json_string_value(json_array_get(open, 0)), "web");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(resp, "health"), "down")), 3);
	json_decref(resp);

	/* one comes back: taking the other two down at once would take two
	 * of three backends, past the blast-radius guard, so the health
	 * change is held and reported, not applied */
	backend_up(e, 0);
	assert_true(run_until(e, 2000, not_fail_open));
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.2"), "active");
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "active");
	assert_int_equal(store_version(e->d.store), v);
	json_decref(req);
}

static bool any_up(struct env *e)
{
	return health_is(e, "any", "127.0.0.1", "up");
}

/* A port-0 service is checked only on a check port. */
static void test_port_zero_needs_check_port(void **state)
{
	struct env *e = *state;
	struct health_port hp = { .service = "any", .port = e->port };
	json_t *resp, *s;

	operator_change(e, "[{\"op\": \"service_add\", \"name\": \"any\","
			" \"vip\": \"10.0.0.101\", \"proto\": \"tcp\", \"port\": 0,"
			" \"mode\": \"l2dsr\", \"backends\": [{\"addr\":"
			" \"127.0.0.1\", \"weight\": 1}]}]");
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_true(health_is(e, "any", "127.0.0.1", "unknown"));
	health_entry(e, "any", "127.0.0.1", &resp);
	s = json_array_get(json_object_get(resp, "services"), 0);
	assert_true(json_is_null(json_object_get(s, "port")));
	json_decref(resp);

	/* with one, from a fresh checker as fulcrumd starts it */
	e->d.cfg.health_ports = &hp;
	e->d.cfg.n_health_ports = 1;
	health_free(e->d.health);
	e->d.health = health_new(&e->d);
	assert_true(run_until(e, 2000, any_up));
	health_entry(e, "any", "127.0.0.1", &resp);
	s = json_array_get(json_object_get(resp, "services"), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "port")), e->port);
	json_decref(resp);
	e->d.cfg.health_ports = NULL;
	e->d.cfg.n_health_ports = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_down_after_fall_back_after_rise),
		T(test_operator_choices_stand),
		T(test_fail_open),
		T(test_port_zero_needs_check_port),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
