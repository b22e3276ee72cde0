/* fulcrumd: owns the service state (store.h), keeps the dataplane on it
 * (sync.h) and serves the management socket (mgmt.h). One thread: a
 * request is short next to a human's or a script's pace, and a single
 * writer keeps the store's order of changes the order they were asked in.
 *
 * At start and every reconcile interval it checks the store's files and
 * rebuilds a damaged store (heal.h), then compares the dataplane with the
 * store (sync_reconcile); it never pushes into a dataplane that is ahead
 * of it. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "heal.h"
#include "jsonline.h"
#include "mgmt.h"

#define CLIENT_TIMEOUT_MS 5000

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int listen_on(const struct daemon_config *cfg, char *err, size_t len)
{
	struct group *g = NULL;

	if (cfg->socket_group[0] && !(g = getgrnam(cfg->socket_group))) {
		snprintf(err, len, "socket_group %s does not exist",
			 cfg->socket_group);
		return -1;
	}
	return jsonline_listen(cfg->socket, g ? g->gr_gid : (gid_t)-1, err, len);
}

static void peer_of(int fd, struct peer *p)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	struct passwd *pw;

	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
	p->uid = cred.uid;
	p->gid = cred.gid;
	pw = getpwuid(cred.uid);
	if (pw)
		snprintf(p->user, sizeof(p->user), "%s", pw->pw_name);
	else
		snprintf(p->user, sizeof(p->user), "uid %u", (unsigned)cred.uid);
}

/* One request and its response per connection. */
static void serve(struct fulcrumd *d, int fd)
{
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_MS / 1000 };
	struct peer peer;
	json_t *req, *resp;
	char err[512];

	/* a client that connects and says nothing must not stall the rest */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	peer_of(fd, &peer);
	req = jsonline_recv(fd, MGMT_MAX_REQUEST, err, sizeof(err));
	resp = req ? mgmt_handle(d, &peer, req) :
		     json_pack("{s:b, s:s}", "ok", 0, "error", err);
	jsonline_send(fd, resp);
	json_decref(req);
	json_decref(resp);
	mgmt_free_spent(d);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: fulcrumd -c CONFIG\n"
		"  Keeps the service state and the dataplane on it; see\n"
		"  docs/operators-guide.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct fulcrumd d;
	const char *config = NULL;
	uint64_t next_reconcile = 0;
	bool healed;
	char err[1024];
	int opt, lfd;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (opt == 'c') {
			config = optarg;
		} else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!config) {
		usage(stderr);
		return 2;
	}
	if (daemon_config_load(config, &d.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fulcrumd: %s\n", err);
		return 2;
	}
	jsonline_make_parent(d.cfg.store);
	if (d.cfg.backup[0])
		jsonline_make_parent(d.cfg.backup);
	d.sync.socket = d.cfg.dataplane_socket;
	if (heal_open(&d, &healed, err, sizeof(err)) < 0) {
		fprintf(stderr, "fulcrumd: store: %s\n", err);
		return 1;
	}
	if (freeze_load(d.cfg.freeze_file, &d.freeze, err, sizeof(err)) < 0)
		fprintf(stderr, "fulcrumd: %s\n", err);
	if (d.freeze.on)
		printf("fulcrumd: frozen by %s: %s\n", d.freeze.by,
		       d.freeze.reason);
	lfd = listen_on(&d.cfg, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "fulcrumd: %s\n", err);
		store_close(d.store);
		return 1;
	}
	d.health = health_new(&d);
	if (!d.health) {
		fprintf(stderr, "fulcrumd: cannot set up health checks: %s\n",
			strerror(errno));
		close(lfd);
		store_close(d.store);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf("fulcrumd: environment %s, cluster %s, store version %llu, "
	       "listening on %s\n", d.cfg.environment, d.cfg.cluster_id,
	       (unsigned long long)store_version(d.store), d.cfg.socket);
	fflush(stdout);

	while (!stopping) {
		struct pollfd p[2] = {
			{ .fd = lfd, .events = POLLIN },
			{ .fd = health_fd(d.health), .events = POLLIN },
		};
		enum sync_status before = d.sync.status;
		uint64_t now;
		int wait;

		if (now_ms() >= next_reconcile) {
			/* refused with its reason until a rebuild succeeds */
			if (heal_check(&d, err, sizeof(err)) < 0)
				fprintf(stderr, "fulcrumd: %s\n", err);
			sync_reconcile(&d.sync, d.store);
			next_reconcile = now_ms() + d.cfg.reconcile_interval_ms;
			if (d.sync.status != before) {
				printf("fulcrumd: dataplane %s: %s\n",
				       sync_status_name(d.sync.status),
				       d.sync.note);
				fflush(stdout);
			}
			if (healed)
				healed = !heal_adopt_live(&d);
		}
		/* asleep until a request, a finished check, or the next check,
		 * check timeout or reconcile, whichever comes first */
		now = now_ms();
		wait = health_wait_ms(d.health, now);
		if (next_reconcile <= now)
			wait = 0;
		else if (next_reconcile - now < (uint64_t)wait)
			wait = (int)(next_reconcile - now);
		if (poll(p, 2, wait) > 0 && (p[0].revents & POLLIN)) {
			int fd = accept(lfd, NULL, NULL);

			if (fd >= 0) {
				serve(&d, fd);
				close(fd);
			}
		}
		health_run(d.health, now_ms());
	}
	health_free(d.health);
	plans_forget(&d);
	daemon_config_free(&d.cfg);
	close(lfd);
	unlink(d.cfg.socket);
	store_close(d.store);
	return 0;
}
