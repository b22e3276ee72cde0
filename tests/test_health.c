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
#define MAX_CONNS 16

struct env {
	char dir[64];
	struct fulcrumd d;
	uint16_t port;                   /* every backend's */
	int listener[N_BACKENDS];        /* on 127.0.0.(i + 1), or -1 */
	/* HTTP: the status each backend answers (0: accepted and closed,
	 * as a plain TCP listener), its connections waiting for their
	 * request, and the last request */
	int http_status[N_BACKENDS];
	int conn[N_BACKENDS][MAX_CONNS];
	size_t n_conns[N_BACKENDS];
	char request[N_BACKENDS][256];
	/* UDP: a socket on the same port, or -1, and what it answers */
	int udp[N_BACKENDS];
	char udp_reply[N_BACKENDS][32];
	char udp_got[N_BACKENDS][64];
	/* [health NAME] settings the checker was made with */
	struct health_service hs;
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
	for (int i = 0; i < N_BACKENDS; i++)
		e->udp[i] = -1;
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

	e->d.cfg.health_services = NULL;
	e->d.cfg.n_health_services = 0;
	for (int i = 0; i < N_BACKENDS; i++) {
		if (e->listener[i] >= 0)
			close(e->listener[i]);
		if (e->udp[i] >= 0)
			close(e->udp[i]);
		for (size_t k = 0; k < e->n_conns[i]; k++)
			close(e->conn[i][k]);
	}
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

/* An HTTP server's part: a request read whole is answered with the
 * backend's status and closed. */
static void serve_http(struct env *e, int i)
{
	size_t k = 0;

	while (k < e->n_conns[i]) {
		char buf[256], reply[64];
		ssize_t n = recv(e->conn[i][k], buf, sizeof(buf) - 1, 0);

		if (n < 0) {
			k++;             /* nothing yet */
			continue;
		}
		buf[n] = '\0';
		if (n > 0) {
			snprintf(e->request[i], sizeof(e->request[i]), "%s", buf);
			snprintf(reply, sizeof(reply), "HTTP/1.1 %d Whatever\r\n"
				 "Content-Length: 0\r\n\r\n", e->http_status[i]);
			/* a checker that gave up first (its 10 ms timeout passed
			 * on a loaded machine) has closed: that check failed as
			 * a timeout, and a later one is answered in time */
			(void)send(e->conn[i][k], reply, strlen(reply),
				   MSG_NOSIGNAL);
		}
		close(e->conn[i][k]);
		e->conn[i][k] = e->conn[i][--e->n_conns[i]];
	}
}

/* What a backend's servers do between two runs of the checker: accept
 * (and answer HTTP), answer UDP. */
static void serve(struct env *e, int i)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	char buf[64];
	ssize_t n;
	int fd;

	while (e->listener[i] >= 0 &&
	       (fd = accept4(e->listener[i], NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		if (e->http_status[i] && e->n_conns[i] < MAX_CONNS)
			e->conn[i][e->n_conns[i]++] = fd;
		else
			close(fd);
	}
	serve_http(e, i);
	while (e->udp[i] >= 0 &&
	       (n = recvfrom(e->udp[i], buf, sizeof(buf) - 1, 0,
			     (struct sockaddr *)&from, &len)) >= 0) {
		buf[n] = '\0';
		snprintf(e->udp_got[i], sizeof(e->udp_got[i]), "%s", buf);
		sendto(e->udp[i], e->udp_reply[i], strlen(e->udp_reply[i]), 0,
		       (struct sockaddr *)&from, len);
		len = sizeof(from);
	}
}

static json_int_t late_checks(struct env *e)
{
	json_t *sum = health_summary(e->d.health);
	json_int_t late = json_integer_value(json_object_get(sum, "late"));

	json_decref(sum);
	return late;
}

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
		for (int i = 0; i < N_BACKENDS; i++)
			serve(e, i);
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
	if (state)
		assert_string_equal(json_string_value(json_object_get(op,
								     "state")),
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
	struct health_service hs = { .service = "any", .port = e->port };
	json_t *resp, *s;

	operator_change(e, "[{\"op\": \"service_add\", \"name\": \"any\","
			" \"vip\": \"10.0.0.101\", \"proto\": \"tcp\", \"port\": 0,"
			" \"mode\": \"l2dsr\", \"backends\": [{\"addr\":"
			" \"127.0.0.1\", \"weight\": 1}]}]");
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_true(health_is(e, "any", "127.0.0.1", "unknown"));
	/* not checked is not late */
	assert_int_equal(late_checks(e), 0);
	health_entry(e, "any", "127.0.0.1", &resp);
	s = json_array_get(json_object_get(resp, "services"), 0);
	assert_true(json_is_null(json_object_get(s, "port")));
	json_decref(resp);

	/* with one, from a fresh checker as fulcrumd starts it */
	e->d.cfg.health_services = &hs;
	e->d.cfg.n_health_services = 1;
	health_free(e->d.health);
	e->d.health = health_new(&e->d);
	assert_true(run_until(e, 2000, any_up));
	health_entry(e, "any", "127.0.0.1", &resp);
	s = json_array_get(json_object_get(resp, "services"), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "port")), e->port);
	json_decref(resp);
	e->d.cfg.health_services = NULL;
	e->d.cfg.n_health_services = 0;
}

/* The services and backends the checker holds, by name: what it checks,
 * apart from how each check went. */
static json_t *checked(struct env *e)
{
	json_t *all = health_json(e->d.health, NULL), *out = json_array(), *s;
	size_t i, k;

	json_array_foreach(json_object_get(all, "services"), i, s) {
		json_t *addrs = json_array(), *b;

		json_array_foreach(json_object_get(s, "backends"), k, b)
			json_array_append(addrs, json_object_get(b, "addr"));
		json_array_append_new(out, json_pack("{s:O, s:O, s:o}", "name",
						     json_object_get(s, "name"),
						     "port", json_object_get(s, "port"),
						     "backends", addrs));
	}
	json_decref(all);
	return out;
}

/* After each change the checker takes in only the services it changed;
 * what it then checks must be what a fresh checker, reading the whole
 * store, would check. */
static void test_catch_up_matches_fresh(void **state)
{
	struct env *e = *state;
	static const char *const changes[] = {
		"[{\"op\": \"service_add\", \"name\": \"api\", \"vip\":"
		" \"10.0.0.101\", \"proto\": \"tcp\", \"port\": 81,"
		" \"mode\": \"l2dsr\", \"backends\": [{\"addr\":"
		" \"127.0.0.2\", \"weight\": 1}]}]",
		"[{\"op\": \"service_add\", \"name\": \"aaa\", \"vip\":"
		" \"10.0.0.102\", \"proto\": \"tcp\", \"port\": 82,"
		" \"mode\": \"l2dsr\"}]",
		"[{\"op\": \"backend_add\", \"service\": \"api\","
		" \"addr\": \"127.0.0.3\", \"weight\": 1},"
		" {\"op\": \"service_set\", \"name\": \"aaa\", \"port\": 83}]",
		"[{\"op\": \"service_del\", \"name\": \"aaa\"},"
		" {\"op\": \"backend_del\", \"service\": \"api\","
		" \"addr\": \"127.0.0.2\"}]",
	};
	json_t *got, *want, *all;

	run_until(e, INTERVAL_MS, NULL);
	for (size_t i = 0; i < sizeof(changes) / sizeof(*changes); i++) {
		operator_change(e, changes[i]);
		run_until(e, INTERVAL_MS, NULL);
		/* the first read of the store, and no other since */
		all = health_json(e->d.health, NULL);
		assert_int_equal(json_integer_value(json_object_get(
			all, "store_reads")), 1);
		json_decref(all);
		got = checked(e);
		health_free(e->d.health);
		e->d.health = health_new(&e->d);
		run_until(e, INTERVAL_MS, NULL);
		want = checked(e);
		if (!json_equal(got, want))
			fail_msg("after change %zu: %s, a fresh checker %s", i,
				 json_dumps(got, JSON_COMPACT),
				 json_dumps(want, JSON_COMPACT));
		json_decref(got);
		json_decref(want);
	}
	got = checked(e);
	if (json_array_size(got) != 2)
		fail_msg("checked: %s", json_dumps(got, JSON_COMPACT));
	json_decref(got);
}

/* ---- check kinds, damping, slow start, keep, drains ---- */

/* A fresh checker, as fulcrumd starts it, with e->hs as service web's
 * [health web] section. */
static void checker_with(struct env *e)
{
	snprintf(e->hs.service, sizeof(e->hs.service), "web");
	e->d.cfg.health_services = &e->hs;
	e->d.cfg.n_health_services = 1;
	health_free(e->d.health);
	e->d.health = health_new(&e->d);
	assert_non_null(e->d.health);
}

static int udp_at(int i, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(0x7f000001u + i) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static const char *health_error(struct env *e, const char *addr)
{
	static char text[128];
	json_t *resp, *b = health_entry(e, "web", addr, &resp);

	snprintf(text, sizeof(text), "%s",
		 json_string_value(json_object_get(b, "error")) ?: "");
	json_decref(resp);
	return text;
}

static void test_http_check(void **state)
{
	struct env *e = *state;
	char want[128];

	e->hs.check = CHECK_HTTP;
	snprintf(e->hs.http_path, sizeof(e->hs.http_path), "/healthz");
	e->hs.http_status = 204;
	for (int i = 0; i < N_BACKENDS; i++)
		e->http_status[i] = 204;
	checker_with(e);
	assert_true(run_until(e, 2000, all_up));
	snprintf(want, sizeof(want), "GET /healthz HTTP/1.0\r\nHost: 127.0.0.2\r\n");
	assert_memory_equal(e->request[1], want, strlen(want));

	/* accepting connections is not enough: the status must be right */
	e->http_status[1] = 503;
	assert_true(run_until(e, 2000, second_down));
	snprintf(want, sizeof(want), "health: 127.0.0.2:%u failed %d checks "
		 "(HTTP status 503, not 204)", e->port, FALL);
	assert_health_change(e, "127.0.0.2", "down", want);

	e->http_status[1] = 204;
	assert_true(run_until(e, 2000, second_active));

	/* a listener that closes without a word fails too */
	e->http_status[1] = 0;
	assert_true(run_until(e, 2000, second_down));
	assert_string_equal(health_error(e, "127.0.0.2"),
			    "closed before an HTTP status line");
}

static void test_udp_check(void **state)
{
	struct env *e = *state;
	char want[128];

	e->hs.check = CHECK_UDP;
	snprintf(e->hs.udp_payload, sizeof(e->hs.udp_payload), "ping");
	snprintf(e->hs.udp_expect, sizeof(e->hs.udp_expect), "be");
	for (int i = 0; i < N_BACKENDS; i++) {
		backend_down(e, i);      /* no TCP at all: UDP alone passes */
		e->udp[i] = udp_at(i, e->port);
		snprintf(e->udp_reply[i], sizeof(e->udp_reply[i]), "be%d", i + 1);
	}
	checker_with(e);
	assert_true(run_until(e, 2000, all_up));
	assert_string_equal(e->udp_got[1], "ping");

	/* a reply without the text fails */
	snprintf(e->udp_reply[1], sizeof(e->udp_reply[1]), "nope");
	assert_true(run_until(e, 2000, second_down));
	snprintf(want, sizeof(want), "health: 127.0.0.2:%u failed %d checks "
		 "(reply without 'be')", e->port, FALL);
	assert_health_change(e, "127.0.0.2", "down", want);
	snprintf(e->udp_reply[1], sizeof(e->udp_reply[1]), "be2");
	assert_true(run_until(e, 2000, second_active));

	/* no socket: the port unreachable fails it at once, not by timeout */
	close(e->udp[1]);
	e->udp[1] = -1;
	assert_true(run_until(e, 2000, second_down));
	assert_string_equal(health_error(e, "127.0.0.2"), "connection refused");

	/* without an expected text any reply passes */
	e->hs.udp_expect[0] = '\0';
	e->udp[1] = udp_at(1, e->port);
	snprintf(e->udp_reply[1], sizeof(e->udp_reply[1]), "whatever");
	checker_with(e);
	assert_true(run_until(e, 2000, all_up));
}

static bool second_up(struct env *e)
{
	return health_is(e, "web", "127.0.0.2", "up");
}

static bool second_held(struct env *e)
{
	json_t *resp, *b = health_entry(e, "web", "127.0.0.2", &resp);
	bool held = json_is_true(json_object_get(b, "held"));

	json_decref(resp);
	return held;
}

/* More than flap_max changes of health within the window: held down,
 * and back only once its health has been steady for the hold. */
static void test_flap_damping(void **state)
{
	struct env *e = *state;
	uint64_t t0;

	e->d.cfg.health_flap_max = 2;
	e->d.cfg.health_flap_window_s = 60;
	e->d.cfg.health_flap_hold_s = 1;
	checker_with(e);
	assert_true(run_until(e, 2000, all_up));
	backend_down(e, 1);                      /* change 1 */
	assert_true(run_until(e, 2000, second_down));
	backend_up(e, 1);                        /* change 2 */
	assert_true(run_until(e, 2000, second_active));
	assert_false(second_held(e));
	backend_down(e, 1);                      /* change 3: too many */
	assert_true(run_until(e, 2000, second_down));
	assert_true(second_held(e));
	backend_up(e, 1);                        /* passing, but held */
	assert_true(run_until(e, 2000, second_up));
	t0 = now_ms();
	assert_true(second_held(e));
	run_until(e, 500, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.2"), "down");
	/* its last change started a hold of 1 s */
	assert_true(run_until(e, 2000, second_active));
	assert_true(now_ms() - t0 >= 1000 - 2 * (RISE + 1) * INTERVAL_MS);
	assert_false(second_held(e));
}

static bool second_draining(struct env *e)
{
	return strcmp(stored_state(e, "web", "127.0.0.2"), "draining") == 0;
}

/* on_backend_down = keep: a failing backend is set draining, so that the
 * dataplane keeps its established flows; back, it is set active. */
static void test_keep_flows(void **state)
{
	struct env *e = *state;
	char want[160];

	e->hs.keep_flows = true;
	checker_with(e);
	assert_true(run_until(e, 2000, all_up));
	backend_down(e, 1);
	assert_true(run_until(e, 2000, second_draining));
	snprintf(want, sizeof(want), "health: 127.0.0.2:%u failed %d checks "
		 "(connection refused), draining: on_backend_down = keep",
		 e->port, FALL);
	assert_health_change(e, "127.0.0.2", "draining", want);
	backend_up(e, 1);
	assert_true(run_until(e, 2000, second_active));
	assert_health_change(e, "127.0.0.2", "active", "passed");

	/* one an operator drained is not the checker's to bring back */
	backend_down(e, 1);
	assert_true(run_until(e, 2000, second_draining));
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"state\": \"down\"}]");
	run_until(e, 2 * INTERVAL_MS, NULL);
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"state\": \"draining\"}]");
	backend_up(e, 1);
	assert_true(run_until(e, 2000, second_up));
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.2"), "draining");
}

static long long stored_weight(struct env *e, const char *addr)
{
	json_t *st = store_state(e->d.store, err, sizeof(err)), *b;
	json_t *s = json_array_get(json_object_get(st, "services"), 0);
	long long w = -1;
	size_t i;

	json_array_foreach(json_object_get(s, "backends"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "addr")), addr) == 0)
			w = json_integer_value(json_object_get(b, "weight"));
	json_decref(st);
	return w;
}

static bool second_full(struct env *e)
{
	return stored_weight(e, "127.0.0.2") == 100;
}

/* The weights health committed for addr from version `from` on, as
 * "w w w". */
static void weights_since(struct env *e, uint64_t from, const char *addr,
			  char *out, size_t len)
{
	json_t *h = store_history(e->d.store, from + 1, 100, err, sizeof(err));
	json_t *entry, *op;
	size_t i, k, used = 0;

	assert_non_null(h);
	out[0] = '\0';
	json_array_foreach(h, i, entry) {
		assert_string_equal(json_string_value(json_object_get(entry, "user")),
				    "health");
		json_array_foreach(json_object_get(entry, "ops"), k, op)
			if (strcmp(json_string_value(json_object_get(op, "addr")),
				   addr) == 0 && json_object_get(op, "weight"))
				used += (size_t)snprintf(out + used, len - used, "%s%lld",
					used ? " " : "", json_integer_value(
						json_object_get(op, "weight")));
	}
	json_decref(h);
}

/* Slow start: back from down, the weight goes 25, 50, 75, 100 over
 * slow_start_s, one commit a step; an operator's weight ends the ramp. */
/* The weights a ramp to 100 committed, as weights_since writes them:
 * 25 first, 100 last, rising through the quarters. A step falls out
 * only when the checker's loop was held up past its time (a busy host,
 * a sanitizer build): the step is taken from the time elapsed. Returns
 * how many there were. */
static unsigned int ramp_steps(const char *got)
{
	unsigned int n = 0, last = 0, w;
	const char *p = got;
	int used;

	while (sscanf(p, "%u%n", &w, &used) == 1) {
		if (w % 25 != 0 || w <= last || (n == 0 && w != 25))
			fail_msg("not a ramp of quarters up to 100: %s", got);
		last = w;
		n++;
		p += used;
	}
	if (last != 100 || n < 2)
		fail_msg("not a ramp of quarters up to 100: %s", got);
	return n;
}

static void test_slow_start(void **state)
{
	struct env *e = *state;
	char got[128];
	uint64_t v, t0;

	e->hs.slow_start_s = 1;
	checker_with(e);
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.1\", \"weight\": 100},"
			" {\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"weight\": 100},"
			" {\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.3\", \"weight\": 100}]");
	assert_true(run_until(e, 2000, all_up));
	backend_down(e, 1);
	assert_true(run_until(e, 2000, second_down));
	v = store_version(e->d.store);
	backend_up(e, 1);
	assert_true(run_until(e, 2000, second_active));
	t0 = now_ms();
	assert_int_equal(stored_weight(e, "127.0.0.2"), 25);
	assert_true(run_until(e, 3000, second_full));
	/* steps a quarter of slow_start_s apart, so the last after 3/4 s */
	assert_true(now_ms() - t0 >= 750 - INTERVAL_MS);
	weights_since(e, v, "127.0.0.2", got, sizeof(got));
	assert_int_equal(store_version(e->d.store), v + ramp_steps(got));
	assert_health_change(e, "127.0.0.2", NULL, "slow start 4/4: weight 100 "
			     "of 100");
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_int_equal(store_version(e->d.store), v + ramp_steps(got));

	/* an operator's weight mid-ramp is theirs: the ramp stops */
	backend_down(e, 1);
	assert_true(run_until(e, 2000, second_down));
	backend_up(e, 1);
	assert_true(run_until(e, 2000, second_active));
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"weight\": 40}]");
	v = store_version(e->d.store);
	run_until(e, 1500, NULL);
	assert_int_equal(store_version(e->d.store), v);
	assert_int_equal(stored_weight(e, "127.0.0.2"), 40);

	/* a backend added while fulcrumd runs ramps too */
	operator_change(e, "[{\"op\": \"backend_del\", \"service\": \"web\","
			" \"addr\": \"127.0.0.3\"}]");
	run_until(e, 2 * INTERVAL_MS, NULL);
	operator_change(e, "[{\"op\": \"backend_add\", \"service\": \"web\","
			" \"addr\": \"127.0.0.3\", \"weight\": 100}]");
	v = store_version(e->d.store);
	run_until(e, 5 * INTERVAL_MS, NULL);
	assert_int_equal(stored_weight(e, "127.0.0.3"), 25);
	run_until(e, 1500, NULL);
	weights_since(e, v, "127.0.0.3", got, sizeof(got));
	ramp_steps(got);
}

static json_t *request(struct env *e, const char *text)
{
	struct peer root = { .uid = 0, .gid = 0, .user = "root" };
	json_error_t je;
	json_t *req = json_loads(text, 0, &je), *resp;

	if (!req)
		fail_msg("bad JSON in the test: %s: %s", je.text, text);
	resp = mgmt_handle(&e->d, &root, req);
	json_decref(req);
	return resp;
}

static void assert_refused(struct env *e, const char *text, const char *why)
{
	uint64_t v = store_version(e->d.store);
	json_t *resp = request(e, text);
	const char *error = json_string_value(json_object_get(resp, "error"));

	assert_false(json_is_true(json_object_get(resp, "ok")));
	if (!error || !strstr(error, why))
		fail_msg("error '%s' lacks '%s'", error ? error : "", why);
	assert_int_equal(store_version(e->d.store), v);
	json_decref(resp);
}

static bool third_down(struct env *e)
{
	return strcmp(stored_state(e, "web", "127.0.0.3"), "down") == 0;
}

#define DRAIN(addr, extra) "{\"cmd\": \"change\", \"env\": \"production\"," \
	" \"reason\": \"maintenance\", " extra " \"ops\": [{\"op\":" \
	" \"backend_set\", \"service\": \"web\", \"addr\": \"" addr "\"," \
	" \"state\": \"draining\"}]}"

/* A drain with a deadline: draining until it passes, then down. */
static void test_drain_deadline(void **state)
{
	struct env *e = *state;
	json_t *resp, *b;
	uint64_t t0;

	assert_refused(e, DRAIN("127.0.0.3", "\"drain_deadline_s\": 0,"),
		       "'drain_deadline_s' must be 1..604800");
	assert_refused(e, DRAIN("127.0.0.3", "\"drain_deadline_s\": \"1\","),
		       "'drain_deadline_s' must be 1..604800");
	assert_refused(e, "{\"cmd\": \"change\", \"env\": \"production\","
		       " \"reason\": \"r\", \"drain_deadline_s\": 5, \"ops\":"
		       " [{\"op\": \"backend_set\", \"service\": \"web\", \"addr\":"
		       " \"127.0.0.3\", \"weight\": 3}]}",
		       "only with ops that set backends draining");
	assert_true(run_until(e, 2000, all_up));
	t0 = now_ms();
	resp = request(e, DRAIN("127.0.0.3", "\"drain_deadline_s\": 1,"));
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "draining");
	b = health_entry(e, "web", "127.0.0.3", &resp);
	assert_int_equal(json_integer_value(json_object_get(b,
						"drain_deadline_s")), 1);
	json_decref(resp);
	run_until(e, 500, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "draining");
	assert_true(run_until(e, 2000, third_down));
	assert_true(now_ms() - t0 >= 1000);
	assert_health_change(e, "127.0.0.3", "down", "health: 127.0.0.3:");
	assert_health_change(e, "127.0.0.3", "down", "drained 1 s ago: its "
			     "deadline has passed");
	/* the operator's, not the checker's: it stays down though it passes */
	run_until(e, 10 * INTERVAL_MS, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.3"), "down");

	/* changed before the deadline: the deadline is forgotten */
	resp = request(e, DRAIN("127.0.0.2", "\"drain_deadline_s\": 1,"));
	json_decref(resp);
	operator_change(e, "[{\"op\": \"backend_set\", \"service\": \"web\","
			" \"addr\": \"127.0.0.2\", \"state\": \"active\"}]");
	run_until(e, 1500, NULL);
	assert_string_equal(stored_state(e, "web", "127.0.0.2"), "active");
}

/* While frozen, health changes wait; unfrozen, they go through. */
static void test_freeze_holds_health(void **state)
{
	struct env *e = *state;
	uint64_t v;

	assert_true(run_until(e, 2000, all_up));
	e->d.freeze.on = true;
	v = store_version(e->d.store);
	backend_down(e, 1);
	run_until(e, 20 * INTERVAL_MS, NULL);
	assert_true(health_is(e, "web", "127.0.0.2", "down"));
	assert_int_equal(store_version(e->d.store), v);
	e->d.freeze.on = false;
	assert_true(run_until(e, 2000, second_down));
	assert_int_equal(store_version(e->d.store), v + 1);
}

/* ---- fulcrumd.ini ---- */

static int load_ini(struct env *e, const char *text, struct daemon_config *cfg)
{
	char path[128];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/fulcrumd.ini", e->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[fulcrumd]\nenvironment = production\ncluster_id = c1\n%s",
		text);
	fclose(f);
	rc = daemon_config_load(path, cfg, err, sizeof(err));
	return rc;
}

static void test_config(void **state)
{
	struct env *e = *state;
	struct daemon_config cfg;
	const struct health_service *hs;
	static const struct { const char *text, *error; } bad[] = {
		{ "[health web]\ncheck = icmp\n", "'check' must be tcp, http or udp" },
		{ "[health web]\nhttp_path = healthz\n", "must start with '/'" },
		{ "[health web]\nhttp_path = /a b\n", "hold no space" },
		{ "[health web]\nhttp_status = 99\n", "'http_status' must be 100..599" },
		{ "[health web]\nslow_start_s = 3601\n", "'slow_start_s' must be 0..3600" },
		{ "[health web]\non_backend_down = drop\n", "keep or reset" },
		{ "[health web]\nrise = 2\n", "unknown key 'rise' in [health web]" },
		{ "health_flap_window_s = 0\n", "'health_flap_window_s' must be 1..86400" },
	};

	assert_int_equal(load_ini(e, "health_flap_max = 7\n"
				  "[health web]\ncheck = http\nhttp_path = /hz\n"
				  "http_status = 204\nslow_start_s = 30\n"
				  "on_backend_down = keep\n"
				  "[health dns]\nport = 53\ncheck = udp\n"
				  "udp_payload = q\nudp_expect = be\n", &cfg), 0);
	assert_int_equal(cfg.health_flap_max, 7);
	assert_int_equal(cfg.health_flap_window_s, 60);
	hs = daemon_config_health(&cfg, "web");
	assert_non_null(hs);
	assert_int_equal(hs->check, CHECK_HTTP);
	assert_string_equal(hs->http_path, "/hz");
	assert_int_equal(hs->http_status, 204);
	assert_int_equal(hs->slow_start_s, 30);
	assert_true(hs->keep_flows);
	assert_int_equal(hs->port, 0);
	hs = daemon_config_health(&cfg, "dns");
	assert_int_equal(hs->check, CHECK_UDP);
	assert_int_equal(hs->port, 53);
	assert_string_equal(hs->udp_payload, "q");
	assert_string_equal(hs->udp_expect, "be");
	assert_false(hs->keep_flows);
	assert_null(daemon_config_health(&cfg, "other"));
	daemon_config_free(&cfg);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(load_ini(e, bad[i].text, &cfg), -1);
		if (!strstr(err, bad[i].error))
			fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err,
				 bad[i].error);
	}
}

/* With more checks due than one turn of fulcrumd's loop starts, a turn
 * starts its share and returns, asking to be run again at once, so that
 * the loop answers its socket in between; status counts the rest as
 * late, and the turns that follow start them. */
static void test_many_due_share_the_loop(void **state)
{
	struct env *e = *state;
	size_t cap = 64 * 1024, len;
	char *ops = malloc(cap);
	int runs;

	assert_non_null(ops);
	len = (size_t)snprintf(ops, cap, "[{\"op\": \"service_add\", \"name\":"
			       " \"many\", \"vip\": \"10.0.0.101\", \"proto\":"
			       " \"tcp\", \"port\": %u, \"mode\": \"l2dsr\","
			       " \"backends\": [", (unsigned)e->port);
	/* nothing listens on 127.1.x.y: refused at once */
	for (int i = 0; i < 1000; i++)
		len += (size_t)snprintf(ops + len, cap - len,
					"%s{\"addr\": \"127.1.%d.%d\", \"weight\": 1}",
					i ? ", " : "", i / 250, i % 250 + 1);
	snprintf(ops + len, cap - len, "]}]");
	operator_change(e, ops);
	free(ops);

	health_run(e->d.health, now_ms());       /* takes the service in */
	usleep(3 * INTERVAL_MS * 1000);           /* every check now due */
	health_run(e->d.health, now_ms());
	assert_int_equal(health_wait_ms(e->d.health, now_ms()), 0);
	assert_true(late_checks(e) >= 1003 - 2 * 256);
	for (runs = 0; runs < 16 && late_checks(e) > 0; runs++)
		health_run(e->d.health, now_ms());
	assert_int_equal(late_checks(e), 0);
	assert_true(runs >= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_down_after_fall_back_after_rise),
		T(test_operator_choices_stand),
		T(test_fail_open),
		T(test_port_zero_needs_check_port),
		T(test_catch_up_matches_fresh),
		T(test_http_check),
		T(test_udp_check),
		T(test_flap_damping),
		T(test_keep_flows),
		T(test_slow_start),
		T(test_drain_deadline),
		T(test_freeze_holds_health),
		T(test_many_due_share_the_loop),
		T(test_config),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
