/* fulcrum-bench-restore: a point-in-time restore on a large store, through
 * the very library calls fulcrumd makes (restore.c, store.c), without the
 * socket or a dataplane:
 *
 *   1. a store of SERVICES services x BACKENDS backends, committed in
 *      changes of 1,000 services;
 *   2. CHANGES changes after that point, one op each: a backend's weight
 *      set, in a service drawn at random among the first HOT services
 *      (0: among all of them);
 *   3. a restore plan back to the point before them, as fulcrumd makes
 *      it (restore.h): the services changed since, read from their
 *      before-images and checked against the logged digest, compared
 *      with what they are now for the plan's ops, and its risk;
 *   4. the plan committed (store_commit), and the store's digest checked
 *      against the one logged for the point restored to;
 *   5. for comparison, the old way to that point: a replay of the whole
 *      log (store_state_at), unless -R.
 *
 * Figures go to stdout and, with -j, as JSON to a file. The store lives
 * in DIR (-d, default a new directory in /dev/shm), so that the disk's
 * speed is not what is measured; it has no backup copy. With -k only
 * steps 1 and 2 run, the store is kept in DIR and the version to restore
 * to is printed: scripts/bench-control then restores it through a real
 * fulcrumd and dataplane. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "restore.h"
#include "store.h"

static const struct change_meta bench_meta = {
	.user = "bench", .environment = "bench", .reason = "bench",
};

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fulcrum-bench-restore: %s: %s\n", what, err);
	exit(1);
}

static void commit(struct store *st, json_t *ops)
{
	char err[1024];
	uint64_t v;

	if (store_commit(st, &bench_meta, ops, &v, err, sizeof(err)) < 0)
		die("commit", err);
	json_decref(ops);
}

static json_t *service_add(unsigned int s, unsigned int backends)
{
	json_t *list = json_array();
	char name[32], vip[32], addr[32];

	for (unsigned int b = 0; b < backends; b++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.%u", 128 + b % 100,
			 s / 256 + 64 * (b / 100), s % 256);
		json_array_append_new(list, json_pack("{s:s, s:i}", "addr", addr,
						      "weight", 1));
	}
	snprintf(name, sizeof(name), "svc%05u", s);
	snprintf(vip, sizeof(vip), "10.64.%u.%u", s / 256, s % 256);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:o}",
			 "op", "service_add", "name", name, "vip", vip,
			 "proto", "tcp", "port", 80, "mode", "ipip",
			 "table_size", 1009, "backends", list);
}

static json_t *weight_set(unsigned int s, unsigned int b, unsigned int w)
{
	char name[32], addr[32];

	snprintf(name, sizeof(name), "svc%05u", s);
	snprintf(addr, sizeof(addr), "10.%u.%u.%u", 128 + b % 100,
		 s / 256 + 64 * (b / 100), s % 256);
	return json_pack("[{s:s, s:s, s:s, s:i}]", "op", "backend_set",
			 "service", name, "addr", addr, "weight", w);
}

/* xorshift64: the same draws on every run */
static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

int main(int argc, char **argv)
{
	unsigned int services = 10000, backends = 100, changes = 100000, hot = 100;
	bool replay = true, keep = false;
	const char *json_path = NULL;
	char dir[256] = "", path[300], err[1024];
	bool own_dir = false;
	char want[STORE_DIGEST_LEN], got[STORE_DIGEST_LEN];
	double t, fill_ms, changes_ms, plan_ms, commit_ms;
	double replay_ms = -1;
	json_t *req, *ops, *risk;
	json_t *replayed = json_array(), *skipped = json_array();
	uint64_t point, rng = 0x9e3779b97f4a7c15ull;
	struct store *st;
	int c;

	while ((c = getopt(argc, argv, "s:b:c:H:d:j:Rk")) != -1) {
		switch (c) {
		case 's': services = (unsigned int)atoi(optarg); break;
		case 'b': backends = (unsigned int)atoi(optarg); break;
		case 'c': changes = (unsigned int)atoi(optarg); break;
		case 'H': hot = (unsigned int)atoi(optarg); break;
		case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
		case 'j': json_path = optarg; break;
		case 'R': replay = false; break;
		case 'k': keep = true; break;
		default:
			fprintf(stderr, "usage: fulcrum-bench-restore [-s SERVICES] "
				"[-b BACKENDS] [-c CHANGES] [-H HOT] [-d DIR] "
				"[-j JSON] [-R] [-k]\n");
			return 2;
		}
	}
	if (services == 0 || services > 16384 || backends == 0 ||
	    backends > 400)
		die("arguments", "1 to 16384 services of 1 to 400 backends");
	if (hot == 0 || hot > services)
		hot = services;
	if (keep && !dir[0])
		die("arguments", "-k keeps the store in the DIR given by -d");
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/dev/shm/fulcrum-bench-restore.XXXXXX");
		if (!mkdtemp(dir))
			die("mkdtemp", dir);
		own_dir = true;
	}
	snprintf(path, sizeof(path), "%s/state.db", dir);
	st = store_open(path, NULL, err, sizeof(err));
	if (!st)
		die("store_open", err);

	t = now_ms();
	for (unsigned int s = 0; s < services; s += 1000) {
		json_t *batch = json_array();

		for (unsigned int i = s; i < s + 1000 && i < services; i++)
			json_array_append_new(batch, service_add(i, backends));
		commit(st, batch);
	}
	fill_ms = now_ms() - t;
	point = store_version(st);

	t = now_ms();
	for (unsigned int i = 0; i < changes; i++) {
		unsigned int s = (unsigned int)(next_rand(&rng) % hot);
		unsigned int b = (unsigned int)(next_rand(&rng) % backends);

		commit(st, weight_set(s, b, 2 + i % 9));
	}
	changes_ms = now_ms() - t;
	if (keep) {
		printf("%" PRIu64 "\n", point);
		json_decref(replayed);
		json_decref(skipped);
		store_close(st);
		return 0;
	}

	/* the restore plan, as fulcrumd makes it (less saving it) */
	t = now_ms();
	req = json_pack("{s:I}", "restore_to", (json_int_t)point);
	if (restore_plan(st, req, 25, 10, &ops, &risk, replayed, skipped, err,
			 sizeof(err)) < 0)
		die("restore_plan", err);
	plan_ms = now_ms() - t;

	t = now_ms();
	commit(st, json_incref(ops));
	commit_ms = now_ms() - t;
	if (store_logged_digest(st, point, want) < 0 ||
	    store_digest(st, got) < 0 || strcmp(want, got) != 0)
		die("restore", "the restored state does not hash to the "
		    "digest logged for its version");

	if (replay) {
		json_t *at;

		t = now_ms();
		at = store_state_at(st, point, err, sizeof(err));
		if (!at)
			die("store_state_at", err);
		replay_ms = now_ms() - t;
		json_decref(at);
	}

	printf("store: %u services x %u backends (%.0f ms to commit), then %u "
	       "changes of one backend's weight in %u of them (%.0f ms, %.2f "
	       "ms each)\n", services, backends, fill_ms, changes, hot,
	       changes_ms, changes_ms / changes);
	printf("restore to version %" PRIu64 ", %u changes back: %lld services "
	       "changed since, %zu ops, %s risk\n", point, changes,
	       json_integer_value(json_object_get(risk, "services_changed")),
	       json_array_size(ops),
	       json_is_true(json_object_get(risk, "high")) ? "high" : "low");
	printf("  plan (changed services read and checked, ops, risk) %8.1f ms\n",
	       plan_ms);
	printf("  commit of the plan                                  %8.1f ms\n",
	       commit_ms);
	if (replay)
		printf("  for comparison, a replay of the log to that point   %8.1f ms "
		       "(%.1fx the plan)\n", replay_ms, replay_ms / plan_ms);
	if (json_path) {
		FILE *f = fopen(json_path, "w");

		if (!f)
			die("writing", json_path);
		fprintf(f, "{\"services\": %u, \"backends\": %u, \"changes\": %u, "
			"\"hot_services\": %u, \"changed_services\": %lld, "
			"\"ops\": %zu, "
			"\"plan_ms\": %.1f, \"commit_ms\": %.1f, "
			"\"change_commit_ms\": %.3f, \"replay_ms\": %.1f}\n",
			services, backends, changes, hot,
			json_integer_value(json_object_get(risk,
							   "services_changed")),
			json_array_size(ops), plan_ms, commit_ms,
			changes_ms / changes, replay_ms);
		fclose(f);
	}
	json_decref(risk);
	json_decref(ops);
	json_decref(req);
	json_decref(replayed);
	json_decref(skipped);
	store_close(st);
	if (own_dir) {
		static const char *const files[] = { "", "-wal", "-shm" };

		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/state.db%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	return 0;
}
