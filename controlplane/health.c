#include "health.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mgmt.h"
#include "model.h"

#define HEALTH_USER "health"
#define EVENTS_PER_WAIT 256
#define REASON_MAX 1000          /* of a change's reason, before "and N more" */
#define NOT_IN_HEAP SIZE_MAX

enum health_state { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN };

struct target_key {
	char service[SERVICE_NAME_LEN];
	char addr[INET6_ADDRSTRLEN];     /* as the store writes it */
};

struct hservice;

/* One backend of one service: the same address behind two services is
 * checked twice, as the two may listen on different ports. */
struct target {
	struct target_key key;           /* zero-padded: hashed as bytes */
	struct hservice *svc;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	uint8_t stored;                  /* enum backend_state in the store */
	uint8_t health;                  /* enum health_state */
	bool down_by_health;             /* the checker set it down */
	bool seen;
	int fd;                          /* the check in flight, or -1 */
	uint64_t due;                    /* next start, or timeout in flight */
	uint64_t started;
	size_t heap_idx;
	unsigned int passes, fails;      /* in a row */
	char error[96];                  /* why the last check failed */
};

struct hservice {
	char name[SERVICE_NAME_LEN];
	uint16_t port;                   /* checked on; 0 = not checked */
	bool seen, dirty, fail_open;
	struct target **t;
	size_t n;
};

struct health {
	struct fulcrumd *d;
	int epfd;
	struct hmap targets, services;
	struct hservice **svcs;          /* by name, as the store has them */
	size_t n_svcs;
	struct target **heap;            /* by due */
	size_t n_heap, heap_cap;
	struct hservice **dirty;         /* to decide on */
	size_t n_dirty;
	uint64_t version;                /* of the store, last taken in */
	bool loaded;
	uint64_t retry_at;               /* a refused change is tried again */
	char last_refusal[1024];
	bool socket_failing;
};

static const void *target_key(const void *item, size_t *len)
{
	*len = sizeof(struct target_key);
	return &((const struct target *)item)->key;
}

static const void *service_key(const void *item, size_t *len)
{
	*len = SERVICE_NAME_LEN;
	return ((const struct hservice *)item)->name;
}

/* ---- the heap of deadlines ---- */

static void heap_set(struct health *h, size_t i, struct target *t)
{
	h->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct health *h, size_t i)
{
	struct target *t = h->heap[i];

	while (i > 0 && h->heap[(i - 1) / 2]->due > t->due) {
		heap_set(h, i, h->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(h, i, t);
}

static void heap_down(struct health *h, size_t i)
{
	struct target *t = h->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n_heap)
			break;
		if (c + 1 < h->n_heap && h->heap[c + 1]->due < h->heap[c]->due)
			c++;
		if (h->heap[c]->due >= t->due)
			break;
		heap_set(h, i, h->heap[c]);
		i = c;
	}
	heap_set(h, i, t);
}

static int heap_push(struct health *h, struct target *t)
{
	if (h->n_heap == h->heap_cap) {
		size_t cap = h->heap_cap ? h->heap_cap * 2 : 64;
		struct target **more = realloc(h->heap, cap * sizeof(*more));

		if (!more)
			return -1;
		h->heap = more;
		h->heap_cap = cap;
	}
	heap_set(h, h->n_heap++, t);
	heap_up(h, t->heap_idx);
	return 0;
}

static void heap_remove(struct health *h, struct target *t)
{
	size_t i = t->heap_idx;
	struct target *last = h->heap[--h->n_heap];

	t->heap_idx = NOT_IN_HEAP;
	if (last == t)
		return;
	heap_set(h, i, last);
	heap_up(h, i);
	heap_down(h, last->heap_idx);
}

/* After t->due changed. */
static void heap_fix(struct health *h, struct target *t)
{
	heap_up(h, t->heap_idx);
	heap_down(h, t->heap_idx);
}

/* ---- targets ---- */

static void mark_dirty(struct health *h, struct hservice *s)
{
	if (s->dirty)
		return;
	s->dirty = true;
	h->dirty[h->n_dirty++] = s;      /* room for every service: refresh */
}

static void cancel_check(struct target *t)
{
	if (t->fd >= 0) {
		close(t->fd);            /* which takes it out of the epoll set */
		t->fd = -1;
	}
}

static void set_port(struct target *t, uint16_t port)
{
	if (t->sa.ss_family == AF_INET)
		((struct sockaddr_in *)&t->sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&t->sa)->sin6_port = htons(port);
}

/* Forgets what the checks found so far (the target is new, or its port
 * changed) and schedules its first check, if it is checked at all. */
static int reset(struct health *h, struct target *t, uint64_t now)
{
	uint64_t spread = 0;

	cancel_check(t);
	t->health = HEALTH_UNKNOWN;
	t->passes = t->fails = 0;
	t->error[0] = '\0';
	set_port(t, t->svc->port);
	/* spread first checks over an interval: 10,000 backends are not all
	 * connected to at once */
	for (size_t i = 0; i < sizeof(t->key); i++)
		spread = spread * 131 + (uint8_t)((const char *)&t->key)[i];
	t->due = now + spread % h->d->cfg.health_interval_ms;
	if (t->svc->port == 0) {
		if (t->heap_idx != NOT_IN_HEAP)
			heap_remove(h, t);
		return 0;
	}
	if (t->heap_idx != NOT_IN_HEAP) {
		heap_fix(h, t);
		return 0;
	}
	return heap_push(h, t);
}

static struct target *target_new(struct health *h, const struct target_key *k)
{
	struct target *t = calloc(1, sizeof(*t));
	struct sockaddr_in *in = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->sa;

	if (!t)
		return NULL;
	t->key = *k;
	t->fd = -1;
	t->heap_idx = NOT_IN_HEAP;
	if (inet_pton(AF_INET, k->addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		t->sa_len = sizeof(*in);
	} else if (inet_pton(AF_INET6, k->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		t->sa_len = sizeof(*in6);
	} else {
		free(t);                 /* the store holds valid addresses */
		return NULL;
	}
	if (hmap_put(&h->targets, t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void target_free(struct health *h, struct target *t)
{
	cancel_check(t);
	if (t->heap_idx != NOT_IN_HEAP)
		heap_remove(h, t);
	hmap_del(&h->targets, t);
	free(t);
}

static void service_free(struct health *h, struct hservice *s)
{
	for (size_t i = 0; i < s->n; i++)
		target_free(h, s->t[i]);
	hmap_del(&h->services, s);
	free(s->t);
	free(s);
}

/* The port service s is checked on: its [health NAME] port, else its
 * own; 0 (not checked) for a port-0 service without one. */
static uint16_t check_port(const struct daemon_config *cfg, const char *name,
			   uint16_t port)
{
	for (size_t i = 0; i < cfg->n_health_ports; i++)
		if (strcmp(cfg->health_ports[i].service, name) == 0)
			return (uint16_t)cfg->health_ports[i].port;
	return port;
}

/* ---- taking in the store's state ---- */

/* s's targets become `backends`, as the store has them; those gone are
 * freed. */
static int take_backends(struct health *h, struct hservice *s,
			 const json_t *backends, uint64_t now, bool port_changed)
{
	struct target **old = s->t;
	size_t n_old = s->n, i;
	json_t *b;
	int rc = 0;

	s->t = calloc(json_array_size(backends) + 1, sizeof(*s->t));
	s->n = 0;
	if (!s->t) {
		s->t = old;
		s->n = n_old;
		return -1;
	}
	for (i = 0; i < n_old; i++)
		old[i]->seen = false;
	json_array_foreach(backends, i, b) {
		const char *addr = json_string_value(json_object_get(b, "addr"));
		const char *state = json_string_value(json_object_get(b, "state"));
		int st = state ? backend_state_parse(state) : BACKEND_ACTIVE;
		struct target_key k = { 0 };
		struct target *t;
		bool fresh;

		if (!addr || st < 0)
			continue;
		memcpy(k.service, s->name, sizeof(k.service));
		snprintf(k.addr, sizeof(k.addr), "%s", addr);
		t = hmap_get(&h->targets, &k, sizeof(k));
		fresh = !t;
		if (fresh) {
			t = target_new(h, &k);
			if (!t) {
				rc = -1;
				continue;
			}
			t->svc = s;
		}
		if ((fresh || port_changed) && reset(h, t, now) < 0) {
			target_free(h, t);
			rc = -1;
			continue;
		}
		t->stored = (uint8_t)st;
		/* an operator has changed what the checker set down: theirs now */
		if (t->stored != BACKEND_DOWN)
			t->down_by_health = false;
		t->seen = true;
		s->t[s->n++] = t;
	}
	for (i = 0; i < n_old; i++)
		if (!old[i]->seen)
			target_free(h, old[i]);
	free(old);
	return rc;
}

static struct hservice *service_get(struct health *h, const char *name,
				    uint16_t port, bool *port_changed)
{
	char key[SERVICE_NAME_LEN] = { 0 };
	struct hservice *s;

	snprintf(key, sizeof(key), "%s", name);
	s = hmap_get(&h->services, key, sizeof(key));
	*port_changed = s && s->port != port;
	if (s) {
		s->port = port;
		return s;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	memcpy(s->name, key, sizeof(key));
	s->port = port;
	if (hmap_put(&h->services, s) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Takes in the store's services and backends, and marks every service
 * to be decided on again: the operator may have changed any of them. */
static int refresh(struct health *h, uint64_t now)
{
	char err[512];
	json_t *state = store_state(h->d->store, err, sizeof(err)), *services, *j;
	struct hservice **svcs, **dirty;
	size_t n = 0, i;
	int rc = 0;

	if (!state) {
		fprintf(stderr, "fulcrumd: health: reading the store: %s\n", err);
		return -1;
	}
	services = json_object_get(state, "services");
	svcs = calloc(json_array_size(services) + 1, sizeof(*svcs));
	dirty = calloc(json_array_size(services) + 1, sizeof(*dirty));
	if (!svcs || !dirty) {
		free(svcs);
		free(dirty);
		json_decref(state);
		return -1;
	}
	for (i = 0; i < h->n_svcs; i++)
		h->svcs[i]->seen = false;
	json_array_foreach(services, i, j) {
		const char *name = json_string_value(json_object_get(j, "name"));
		uint16_t port = (uint16_t)json_integer_value(json_object_get(j, "port"));
		struct hservice *s;
		bool changed;

		if (!name)
			continue;
		s = service_get(h, name, check_port(&h->d->cfg, name, port),
				&changed);
		if (!s || take_backends(h, s, json_object_get(j, "backends"), now,
					changed) < 0)
			rc = -1;
		if (!s)
			continue;
		s->seen = true;
		s->dirty = false;
		svcs[n++] = s;
	}
	for (i = 0; i < h->n_svcs; i++)
		if (!h->svcs[i]->seen)
			service_free(h, h->svcs[i]);
	free(h->svcs);
	h->svcs = svcs;
	h->n_svcs = n;
	free(h->dirty);
	h->dirty = dirty;
	h->n_dirty = 0;
	for (i = 0; i < n; i++)
		mark_dirty(h, svcs[i]);
	json_decref(state);
	if (rc < 0)
		fprintf(stderr, "fulcrumd: health: out of memory taking in the "
			"store's services; some backends are not checked\n");
	return rc;
}

/* ---- checks ---- */

/* "connection refused", as a reason reads. */
static const char *error_text(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

static void finish(struct health *h, struct target *t, bool ok,
		   const char *why, uint64_t now)
{
	const struct daemon_config *cfg = &h->d->cfg;
	uint8_t was = t->health;
	bool was_passing = t->fails == 0;

	cancel_check(t);
	if (ok) {
		t->passes++;
		t->fails = 0;
		if (t->passes >= cfg->health_rise)
			t->health = HEALTH_UP;
	} else {
		t->fails++;
		t->passes = 0;
		snprintf(t->error, sizeof(t->error), "%s", why);
		if (t->fails >= cfg->health_fall)
			t->health = HEALTH_DOWN;
	}
	/* at a steady rate, whatever each check took */
	t->due = t->started + cfg->health_interval_ms;
	if (t->due < now)
		t->due = now;
	heap_fix(h, t);
	/* what decide() looks at */
	if (t->health != was || (t->fails == 0) != was_passing)
		mark_dirty(h, t->svc);
}

/* A check that cannot start for want of a socket says nothing about the
 * backend: it is skipped, and tried again an interval later. */
static void skip(struct health *h, struct target *t, uint64_t now, int e)
{
	if (!h->socket_failing)
		fprintf(stderr, "fulcrumd: health: cannot start a check (%s); "
			"skipping checks until one starts again\n", strerror(e));
	h->socket_failing = true;
	t->due = now + h->d->cfg.health_interval_ms;
	heap_fix(h, t);
}

static void start(struct health *h, struct target *t, uint64_t now)
{
	/* closed with a reset rather than a FIN, so that checks leave no
	 * TIME_WAIT sockets behind, here or on the backend */
	static const struct linger reset_on_close = { .l_onoff = 1 };
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = t };
	char why[96];
	int fd, e;

	t->started = now;
	fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		skip(h, t, now, errno);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close,
		   sizeof(reset_on_close));
	if (connect(fd, (struct sockaddr *)&t->sa, t->sa_len) == 0) {
		close(fd);
		finish(h, t, true, NULL, now);
		return;
	}
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		finish(h, t, false, error_text(e, why, sizeof(why)), now);
		return;
	}
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		e = errno;
		close(fd);
		skip(h, t, now, e);
		return;
	}
	h->socket_failing = false;
	t->fd = fd;
	t->due = now + h->d->cfg.health_timeout_ms;
	heap_fix(h, t);
}

static void collect(struct health *h, uint64_t now)
{
	struct epoll_event ev[EVENTS_PER_WAIT];
	char why[96];
	int n, i;

	do {
		n = epoll_wait(h->epfd, ev, EVENTS_PER_WAIT, 0);
		for (i = 0; i < n; i++) {
			struct target *t = ev[i].data.ptr;
			socklen_t len = sizeof(int);
			int e = 0;

			getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &len);
			finish(h, t, e == 0, e ? error_text(e, why, sizeof(why)) :
			       NULL, now);
		}
	} while (n == EVENTS_PER_WAIT);
}

static void expire_and_start(struct health *h, uint64_t now)
{
	char why[96];

	while (h->n_heap && h->heap[0]->due <= now) {
		struct target *t = h->heap[0];

		if (t->fd < 0) {
			start(h, t, now);
			continue;
		}
		snprintf(why, sizeof(why), "no connection within %u ms",
			 h->d->cfg.health_timeout_ms);
		finish(h, t, false, why, now);
	}
}

/* ---- what the results call for ---- */

static void describe(const struct target *t, char *buf, size_t len)
{
	snprintf(buf, len, t->sa.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 t->key.addr, (unsigned)t->svc->port);
}

/* Adds the op that sets t to `state`, and says why in reason. */
static void add_op(json_t *ops, const struct target *t, const char *state,
		   const char *why, char *reason, size_t *used, size_t *left_out)
{
	int n;

	json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:s}", "op",
					     "backend_set", "service",
					     t->key.service, "addr", t->key.addr,
					     "state", state));
	if (*used >= REASON_MAX) {
		(*left_out)++;
		return;
	}
	n = snprintf(reason + *used, REASON_MAX + 1 - *used, "%s%s",
		     *used > strlen("health: ") ? "; " : "", why);
	*used += n > 0 ? (size_t)n : 0;
	if (*used > REASON_MAX)
		*used = REASON_MAX;
}

/* Decides on service s: the ops it needs go to ops, the targets they
 * change to changed. */
static void decide_service(struct health *h, struct hservice *s, json_t *ops,
			   struct target **changed, size_t *n_changed,
			   char *reason, size_t *used, size_t *left_out)
{
	const struct daemon_config *cfg = &h->d->cfg;
	size_t failing = 0, passing = 0, active = 0, i;
	char where[80], why[256];
	bool open;

	for (i = 0; i < s->n; i++) {
		struct target *t = s->t[i];

		if (t->down_by_health && t->stored == BACKEND_DOWN &&
		    t->health == HEALTH_UP)
			passing++;       /* coming back */
		if (t->stored != BACKEND_ACTIVE)
			continue;
		active++;
		if (t->health == HEALTH_DOWN)
			failing++;
		else if (t->health == HEALTH_UP && t->fails == 0)
			passing++;
	}
	/* no backend passes: the checks, not the backends, may be what is
	 * broken, and taking every backend out would stop the service */
	open = failing > 0 && passing == 0;
	if (open && !s->fail_open)
		fprintf(stderr, "fulcrumd: health: FAIL-OPEN service %s: %zu of "
			"%zu active backends fail their checks and none passes; "
			"keeping them all active\n", s->name, failing, active);
	else if (!open && s->fail_open)
		fprintf(stderr, "fulcrumd: health: service %s is no longer "
			"fail-open: a backend passes its checks again\n", s->name);
	s->fail_open = open;
	for (i = 0; i < s->n; i++) {
		struct target *t = s->t[i];

		describe(t, where, sizeof(where));
		if (t->down_by_health && t->stored == BACKEND_DOWN &&
		    t->health == HEALTH_UP) {
			snprintf(why, sizeof(why), "%s passed %u checks", where,
				 cfg->health_rise);
			add_op(ops, t, "active", why, reason, used, left_out);
			changed[(*n_changed)++] = t;
		} else if (!open && t->stored == BACKEND_ACTIVE &&
			   t->health == HEALTH_DOWN) {
			snprintf(why, sizeof(why), "%s failed %u checks (%s)",
				 where, cfg->health_fall, t->error);
			add_op(ops, t, "down", why, reason, used, left_out);
			changed[(*n_changed)++] = t;
		}
	}
}

static void decide(struct health *h, uint64_t now)
{
	struct change_meta meta = {
		.user = HEALTH_USER, .uid = (uint32_t)getuid(),
		.environment = h->d->cfg.environment, .automatic = true,
	};
	char reason[REASON_MAX + 64] = "health: ";
	size_t used = strlen(reason), left_out = 0, n_changed = 0, cap = 0, i;
	struct target **changed;
	json_t *ops, *resp;
	const char *error;

	for (i = 0; i < h->n_dirty; i++)
		cap += h->dirty[i]->n;
	changed = calloc(cap + 1, sizeof(*changed));
	ops = json_array();
	if (!changed || !ops) {
		free(changed);
		json_decref(ops);
		return;                  /* the dirty ones wait for the next run */
	}
	for (i = 0; i < h->n_dirty; i++) {
		h->dirty[i]->dirty = false;
		decide_service(h, h->dirty[i], ops, changed, &n_changed, reason,
			       &used, &left_out);
	}
	h->n_dirty = 0;
	if (n_changed == 0)
		goto out;
	if (left_out)
		snprintf(reason + used, sizeof(reason) - used, "; and %zu more",
			 left_out);
	meta.reason = reason;
	resp = mgmt_commit(h->d, &meta, ops, false);
	if (json_is_true(json_object_get(resp, "ok"))) {
		for (i = 0; i < n_changed; i++)
			changed[i]->down_by_health = !changed[i]->down_by_health;
		printf("fulcrumd: version %lld: %s%s%s\n",
		       json_integer_value(json_object_get(resp, "version")), reason,
		       json_is_false(json_object_get(resp, "live")) ?
		       "; not live yet: " : "",
		       json_is_false(json_object_get(resp, "live")) ?
		       json_string_value(json_object_get(resp, "note")) : "");
		fflush(stdout);
		h->last_refusal[0] = '\0';
	} else {
		error = json_string_value(json_object_get(resp, "error"));
		if (strcmp(h->last_refusal, error ? error : "") != 0)
			fprintf(stderr, "fulcrumd: health: change refused, trying "
				"again every interval: %s: %s\n", reason,
				error ? error : "");
		snprintf(h->last_refusal, sizeof(h->last_refusal), "%s",
			 error ? error : "");
		h->retry_at = now + h->d->cfg.health_interval_ms;
	}
	json_decref(resp);
out:
	json_decref(ops);
	free(changed);
}

/* ---- the interface ---- */

struct health *health_new(struct fulcrumd *d)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->d = d;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0 || hmap_init(&h->targets, target_key) < 0 ||
	    hmap_init(&h->services, service_key) < 0) {
		health_free(h);
		return NULL;
	}
	return h;
}

void health_free(struct health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_svcs; i++)
		service_free(h, h->svcs[i]);
	hmap_free(&h->targets);
	hmap_free(&h->services);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h->svcs);
	free(h->dirty);
	free(h->heap);
	free(h);
}

int health_fd(const struct health *h)
{
	return h->epfd;
}

int health_wait_ms(const struct health *h, uint64_t now_ms)
{
	uint64_t next = now_ms + 60000;

	if (!h->loaded || store_version(h->d->store) != h->version)
		return 0;
	if (h->n_heap && h->heap[0]->due < next)
		next = h->heap[0]->due;
	if (h->retry_at && h->retry_at < next)
		next = h->retry_at;
	return next > now_ms ? (int)(next - now_ms) : 0;
}

void health_run(struct health *h, uint64_t now_ms)
{
	if (!h->loaded || store_version(h->d->store) != h->version) {
		h->loaded = true;
		h->version = store_version(h->d->store);
		refresh(h, now_ms);
	}
	collect(h, now_ms);
	expire_and_start(h, now_ms);
	if (h->retry_at && now_ms >= h->retry_at) {
		h->retry_at = 0;
		for (size_t i = 0; i < h->n_svcs; i++)
			mark_dirty(h, h->svcs[i]);
	}
	if (h->n_dirty)
		decide(h, now_ms);
}

static const char *health_name(const struct target *t)
{
	static const char *const names[] = {
		[HEALTH_UNKNOWN] = "unknown", [HEALTH_UP] = "up",
		[HEALTH_DOWN] = "down",
	};

	return names[t->health];
}

json_t *health_json(const struct health *h, const char *service)
{
	const struct daemon_config *cfg = &h->d->cfg;
	json_t *list = json_array();

	for (size_t i = 0; i < h->n_svcs; i++) {
		const struct hservice *s = h->svcs[i];
		json_t *backends = json_array();

		if (service && strcmp(s->name, service) != 0) {
			json_decref(backends);
			continue;
		}
		for (size_t k = 0; k < s->n; k++) {
			const struct target *t = s->t[k];

			json_array_append_new(backends, json_pack(
				"{s:s, s:s, s:s, s:b, s:i, s:i, s:s?}",
				"addr", t->key.addr,
				"state", backend_state_name(t->stored),
				"health", health_name(t),
				"down_by_health", t->down_by_health,
				"passes", (int)t->passes, "fails", (int)t->fails,
				"error", t->error[0] ? t->error : NULL));
		}
		json_array_append_new(list, json_pack("{s:s, s:o, s:b, s:o}",
			"name", s->name,
			"port", s->port ? json_integer(s->port) : json_null(),
			"fail_open", s->fail_open, "backends", backends));
	}
	if (service && json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:i, s:i, s:i, s:i, s:o}",
			 "interval_ms", (int)cfg->health_interval_ms,
			 "timeout_ms", (int)cfg->health_timeout_ms,
			 "rise", (int)cfg->health_rise,
			 "fall", (int)cfg->health_fall, "services", list);
}

json_t *health_summary(const struct health *h)
{
	size_t count[3] = { 0 }, n = 0;
	json_t *open = json_array();

	for (size_t i = 0; i < h->n_svcs; i++) {
		const struct hservice *s = h->svcs[i];

		for (size_t k = 0; k < s->n; k++)
			count[s->t[k]->health]++;
		n += s->n;
		if (s->fail_open)
			json_array_append_new(open, json_string(s->name));
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:o}", "backends", (json_int_t)n,
			 "up", (json_int_t)count[HEALTH_UP],
			 "down", (json_int_t)count[HEALTH_DOWN],
			 "unknown", (json_int_t)count[HEALTH_UNKNOWN],
			 "fail_open", open);
}
