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
#include <time.h>
#include <unistd.h>

#include "mgmt.h"
#include "model.h"

#define HEALTH_USER "health"
#define EVENTS_PER_WAIT 256
/* Checks started or timed out per turn of fulcrumd's loop at most: with
 * more checks due than the host can start, the loop must still come
 * round to its management socket in between (the rest are then late,
 * which status shows as "late"). Results are all taken in each turn, so
 * that none waiting is timed out unread; there are no more of them than
 * checks in flight. */
#define CHECKS_PER_RUN 256
#define REASON_MAX 1000          /* of a change's reason, before "and N more" */
#define NOT_IN_HEAP SIZE_MAX
#define STATUS_LINE_LEN 12       /* "HTTP/1.1 200" */
#define UDP_REPLY_MAX 2048       /* of a UDP reply, looked into */
/* Slow start ramps a backend's weight in this many commits: a quarter,
 * half, three quarters, all of it. Steps, not a weight a second, keep the
 * change log readable: four entries per return. */
#define SLOW_START_STEPS 4

enum health_state { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN };

/* Where a check in flight is. */
enum phase { PHASE_IDLE, PHASE_CONNECTING, PHASE_REPLY };

static const struct health_service default_check = {
	.check = CHECK_TCP, .http_path = "/", .http_status = 200,
};

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
	uint8_t set_to;                  /* what the checker set it to: down,
					  * or draining (on_backend_down =
					  * keep) */
	bool down_by_health;             /* the checker set it down */
	bool seen;
	uint8_t phase;                   /* enum phase */
	int fd;                          /* the check in flight, or -1 */
	char reply[STATUS_LINE_LEN];     /* an HTTP status line, so far */
	size_t reply_len;
	/* flap damping: health changes since flap_since, and until when it
	 * is held down */
	unsigned int flaps;
	uint64_t flap_since, held_until;
	/* slow start: the full weight, the weight the checker last
	 * committed (or found) and when the ramp began */
	unsigned int stored_weight, full_weight, ramp_weight;
	bool ramping;
	bool added;                      /* by the last change taken in */
	uint64_t ramp_start;
	uint64_t due;                    /* next start, or timeout in flight */
	uint64_t started;
	size_t heap_idx;
	unsigned int passes, fails;      /* in a row */
	char error[96];                  /* why the last check failed */
};

struct hservice {
	char name[SERVICE_NAME_LEN];
	const struct health_service *hc; /* how: its [health NAME], or the
					  * defaults */
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
	size_t svcs_cap;                 /* of svcs and of dirty */
	uint64_t version;                /* of the store, last taken in */
	char digest[STORE_DIGEST_LEN];   /* the store's then */
	uint64_t store_reads;            /* whole-state refreshes */
	bool loaded;
	uint64_t retry_at;               /* a refused change is tried again */
	char last_refusal[1024];
	bool socket_failing;
	struct drain *drains;            /* deadlines of drains */
	size_t n_drains;
};

/* A drain with a deadline (health_drain_deadline): set down when it
 * passes, if the backend is still draining. */
struct drain {
	char service[SERVICE_NAME_LEN];
	char addr[INET6_ADDRSTRLEN];
	uint64_t at;
	unsigned int seconds;
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
	t->phase = PHASE_IDLE;
	t->reply_len = 0;
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

/* How service `name` is checked: its [health NAME] section, else the
 * defaults. */
static const struct health_service *check_of(const struct daemon_config *cfg,
					     const char *name)
{
	const struct health_service *hc = daemon_config_health(cfg, name);

	return hc ? hc : &default_check;
}

/* The port a service is checked on: its [health NAME] port, else its
 * own; 0 (not checked) for a port-0 service without one. */
static uint16_t check_port(const struct health_service *hc, uint16_t port)
{
	return hc->port ? (uint16_t)hc->port : port;
}

/* ---- slow start ----
 *
 * A backend that comes back takes its share again in SLOW_START_STEPS
 * weight changes spread over slow_start_s, committed like any health
 * change. Of the ways to ramp, this is the one with no new moving part:
 * the store's weight is what the dataplane balances by, the log shows
 * every step, and a push of the whole state does the rest. The dataplane
 * would ramp more smoothly but would need timers and its own notion of a
 * weight different from the store's, which the digests would then not
 * match. The cost: weights are integers, so a backend of weight 1 has
 * nothing to ramp (give weights such as 100 to use it), and the full
 * weight is kept in memory only: after a restart of fulcrumd mid-ramp
 * the backend keeps the step it had reached. */

static unsigned int ramp_weight_at(unsigned int full, unsigned int step)
{
	unsigned int w = (full * step + SLOW_START_STEPS - 1) / SLOW_START_STEPS;

	return w ? w : 1;
}

/* The step (1..SLOW_START_STEPS) t's ramp is due at now. */
static unsigned int ramp_step_at(const struct target *t, uint64_t now)
{
	uint64_t span = (uint64_t)t->svc->hc->slow_start_s * 1000;
	uint64_t step = 1 + (now - t->ramp_start) * SLOW_START_STEPS / span;

	return step < SLOW_START_STEPS ? (unsigned int)step : SLOW_START_STEPS;
}

/* t, now at weight `at` in the store, is to ramp up to full. */
static void ramp_begin(struct target *t, unsigned int full, unsigned int at,
		       uint64_t now)
{
	t->ramping = t->svc->port != 0 && ramp_weight_at(full, 1) < full;
	t->full_weight = full;
	t->ramp_weight = at;
	t->ramp_start = now;
}

/* Backends added while fulcrumd runs start slowly too, but only beside
 * one that takes its full share: those of a new service, or all added
 * at once, would ramp together, to the same shares, for nothing. Those
 * there when fulcrumd starts have their traffic already. */
static void ramp_added(struct hservice *s, uint64_t now)
{
	bool established = false;
	size_t i;

	if (!s->hc->slow_start_s)
		return;
	for (i = 0; i < s->n; i++)
		if (!s->t[i]->added && !s->t[i]->ramping &&
		    s->t[i]->stored == BACKEND_ACTIVE)
			established = true;
	for (i = 0; i < s->n; i++)
		if (established && s->t[i]->added)
			ramp_begin(s->t[i], s->t[i]->stored_weight,
				   s->t[i]->stored_weight, now);
}

/* ---- taking in the store's state ---- */

/* s's targets become svc's backends, as the store has them; those gone are
 * freed. */
static int take_backends(struct health *h, struct hservice *s,
			 const struct service *svc, uint64_t now,
			 bool port_changed, bool initial)
{
	struct target **old = s->t;
	size_t n_old = s->n, i;
	int rc = 0;

	s->t = calloc(svc->n_backends + 1, sizeof(*s->t));
	s->n = 0;
	if (!s->t) {
		s->t = old;
		s->n = n_old;
		return -1;
	}
	for (i = 0; i < n_old; i++)
		old[i]->seen = false;
	for (i = 0; i < svc->n_backends; i++) {
		const struct backend *b = &svc->backends[i];
		struct target_key k = { 0 };
		struct target *t;
		bool fresh;

		memcpy(k.service, s->name, sizeof(k.service));
		ip_addr_text(&b->addr, svc->family, k.addr);
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
		t->stored = b->state;
		t->stored_weight = b->weight;
		/* an operator has changed what the checker set down: theirs now */
		if (t->stored != t->set_to)
			t->down_by_health = false;
		t->seen = true;
		t->added = fresh && !initial && t->stored == BACKEND_ACTIVE;
		s->t[s->n++] = t;
	}
	ramp_added(s, now);
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
	s->hc = check_of(&h->d->cfg, key);
	s->port = port;
	if (hmap_put(&h->services, s) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* svc as the store has it, into its hservice (made if new) in *out: 0,
 * or -1 where not all of it could be taken in (*out is NULL only when
 * the hservice itself could not be made). */
static int take_service(struct health *h, const struct service *svc,
			uint64_t now, bool initial, struct hservice **out)
{
	bool port_changed;

	*out = service_get(h, svc->name, check_port(check_of(&h->d->cfg,
							     svc->name),
						    svc->port), &port_changed);
	if (!*out)
		return -1;
	return take_backends(h, *out, svc, now, port_changed, initial);
}

/* A refresh under way: the services taken in so far, by name. */
struct refresh {
	struct health *h;
	uint64_t now;
	bool initial;
	struct hservice **svcs;
	size_t n;
	int rc;
};

static int refresh_one(const struct service *svc, const struct service *then,
		       void *arg)
{
	struct refresh *r = arg;
	struct hservice *s;

	(void)then;
	if (take_service(r->h, svc, r->now, r->initial, &s) < 0)
		r->rc = -1;
	if (s) {
		s->seen = true;
		s->dirty = false;
		r->svcs[r->n++] = s;
	}
	return 0;
}

/* Takes in the store's services and backends, and marks every service
 * to be decided on again: the operator may have changed any of them. */
static int refresh(struct health *h, uint64_t now, bool initial)
{
	size_t cap = store_n_services(h->d->store) + 1, i;
	struct refresh r = {
		.h = h, .now = now, .initial = initial,
		.svcs = calloc(cap, sizeof(*r.svcs)),
	};
	struct hservice **dirty = calloc(cap, sizeof(*dirty));
	char err[512];

	h->store_reads++;
	if (!r.svcs || !dirty) {
		free(r.svcs);
		free(dirty);
		return -1;
	}
	for (i = 0; i < h->n_svcs; i++)
		h->svcs[i]->seen = false;
	/* refresh_one never stops the walk: this fails before it begins */
	if (store_each_service(h->d->store, refresh_one, &r, err,
			       sizeof(err)) < 0) {
		fprintf(stderr, "fulcrumd: health: reading the store: %s\n", err);
		free(r.svcs);
		free(dirty);
		return -1;
	}
	for (i = 0; i < h->n_svcs; i++)
		if (!h->svcs[i]->seen)
			service_free(h, h->svcs[i]);
	free(h->svcs);
	h->svcs = r.svcs;
	h->n_svcs = r.n;
	free(h->dirty);
	h->dirty = dirty;
	h->n_dirty = 0;
	h->svcs_cap = cap;
	for (i = 0; i < r.n; i++)
		mark_dirty(h, r.svcs[i]);
	if (r.rc < 0)
		fprintf(stderr, "fulcrumd: health: out of memory taking in the "
			"store's services; some backends are not checked\n");
	return r.rc;
}

/* Where name is, or would go, in h->svcs, which is by name. */
static size_t svc_slot(const struct health *h, const char *name, bool *found)
{
	size_t lo = 0, hi = h->n_svcs;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(h->svcs[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void svc_remove(struct health *h, size_t at)
{
	struct hservice *s = h->svcs[at];

	for (size_t i = 0; s->dirty && i < h->n_dirty; i++)
		if (h->dirty[i] == s) {
			h->dirty[i] = h->dirty[--h->n_dirty];
			break;
		}
	memmove(&h->svcs[at], &h->svcs[at + 1],
		(h->n_svcs - at - 1) * sizeof(*h->svcs));
	h->n_svcs--;
	service_free(h, s);
}

static int svc_insert(struct health *h, size_t at, struct hservice *s)
{
	if (h->n_svcs + 1 >= h->svcs_cap) {
		size_t cap = h->svcs_cap * 2 + 16;
		struct hservice **svcs = realloc(h->svcs, cap * sizeof(*svcs));
		struct hservice **dirty;

		if (!svcs)
			return -1;
		h->svcs = svcs;
		dirty = realloc(h->dirty, cap * sizeof(*dirty));
		if (!dirty)
			return -1;
		h->dirty = dirty;
		h->svcs_cap = cap;
	}
	memmove(&h->svcs[at + 1], &h->svcs[at],
		(h->n_svcs - at) * sizeof(*h->svcs));
	h->svcs[at] = s;
	h->n_svcs++;
	return 0;
}

struct catch_up {
	struct health *h;
	uint64_t now;
	int rc;
};

static int catch_up_one(const struct service *now, const struct service *then,
			void *arg)
{
	struct catch_up *c = arg;
	struct health *h = c->h;
	const char *name = now ? now->name : then->name;
	struct hservice *s;
	bool found;
	size_t at = svc_slot(h, name, &found);

	if (!now) {
		if (found)
			svc_remove(h, at);
		return 0;
	}
	if (take_service(h, now, c->now, false, &s) < 0 ||
	    (!found && svc_insert(h, at, s) < 0)) {
		c->rc = -1;
		return -1;
	}
	mark_dirty(h, s);
	return 0;
}

/* Takes in what changed in the store since the version last taken in,
 * service by service (store_changed_since), so that a change to one
 * service of ten thousand costs one, not a read of the whole state: 0, or
 * -1 when that cannot be done (the store's history is not the one that
 * version came from, after a rebuild), for a full refresh instead. */
static int catch_up(struct health *h, uint64_t now)
{
	struct catch_up c = { h, now, 0 };
	char logged[STORE_DIGEST_LEN], err[512];

	if (h->version == 0 || store_version(h->d->store) < h->version ||
	    store_logged_digest(h->d->store, h->version, logged) < 0 ||
	    strcmp(logged, h->digest) != 0)
		return -1;
	if (store_changed_since(h->d->store, h->version, catch_up_one, &c, err,
				sizeof(err)) < 0 || c.rc < 0)
		return -1;
	return 0;
}

/* ---- checks ---- */

/* "connection refused", as a reason reads. */
static const char *error_text(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/* Flap damping: a backend whose health changes more than
 * health_flap_max times within health_flap_window_s is held, that is, not
 * brought back, until its health has not changed for health_flap_hold_s.
 * Taking it down goes on as ever: down is the safe way to be wrong. */
static void count_flap(struct health *h, struct target *t, uint64_t now)
{
	const struct daemon_config *cfg = &h->d->cfg;

	if (!cfg->health_flap_max)
		return;
	if (now - t->flap_since > (uint64_t)cfg->health_flap_window_s * 1000) {
		t->flap_since = now;
		t->flaps = 0;
	}
	if (++t->flaps <= cfg->health_flap_max && !t->held_until)
		return;
	if (!t->held_until)
		fprintf(stderr, "fulcrumd: health: %s %s FLAPS: %u health changes "
			"within %u s; held down until its health has not "
			"changed for %u s\n", t->key.service, t->key.addr,
			t->flaps, cfg->health_flap_window_s,
			cfg->health_flap_hold_s);
	t->held_until = now + (uint64_t)cfg->health_flap_hold_s * 1000;
}

static bool held(const struct target *t)
{
	return t->held_until != 0;
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
	if (t->health != was && was != HEALTH_UNKNOWN)
		count_flap(h, t, now);
	/* at a steady rate, whatever each check took */
	t->due = t->started + cfg->health_interval_ms;
	if (t->due < now)
		t->due = now;
	heap_fix(h, t);
	/* what decide() looks at; timed steps ride on the checks, which
	 * come every interval anyway */
	if (t->held_until && now >= t->held_until) {
		t->held_until = 0;
		printf("fulcrumd: health: %s %s no longer held: its health has "
		       "not changed for %u s\n", t->key.service, t->key.addr,
		       cfg->health_flap_hold_s);
		fflush(stdout);
		mark_dirty(h, t->svc);
	}
	if (t->health != was || (t->fails == 0) != was_passing ||
	    (t->ramping && ramp_weight_at(t->full_weight, ramp_step_at(t, now)) !=
			   t->ramp_weight))
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

/* The request of an HTTP check, to the backend's address. */
static int http_request(const struct target *t, char *buf, size_t len)
{
	return snprintf(buf, len, t->sa.ss_family == AF_INET6 ?
			"GET %s HTTP/1.0\r\nHost: [%s]\r\n"
			"User-Agent: fulcrum-health\r\n\r\n" :
			"GET %s HTTP/1.0\r\nHost: %s\r\n"
			"User-Agent: fulcrum-health\r\n\r\n",
			t->svc->hc->http_path, t->key.addr);
}

/* Connected (or, for UDP, bound to the backend): a TCP check has passed;
 * an HTTP or UDP one sends its request and waits for the reply. The
 * request is small and the socket new, so one send takes it whole. */
static void connected(struct health *h, struct target *t, uint64_t now,
		      bool in_epoll)
{
	const struct health_service *hc = t->svc->hc;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
	char req[HEALTH_TEXT_LEN + INET6_ADDRSTRLEN + 96], why[96];
	const char *data = req;
	ssize_t n;
	int len;

	if (hc->check == CHECK_TCP) {
		finish(h, t, true, NULL, now);
		return;
	}
	if (hc->check == CHECK_HTTP) {
		len = http_request(t, req, sizeof(req));
	} else {
		data = hc->udp_payload;
		len = (int)strlen(hc->udp_payload);
	}
	n = send(t->fd, data, (size_t)len, MSG_NOSIGNAL);
	if (n != len) {
		finish(h, t, false, n < 0 ? error_text(errno, why, sizeof(why)) :
		       "request not sent whole", now);
		return;
	}
	if (epoll_ctl(h->epfd, in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd,
		      &ev) < 0) {
		finish(h, t, false, error_text(errno, why, sizeof(why)), now);
		return;
	}
	t->phase = PHASE_REPLY;
}

/* "HTTP/1.x NNN": the status, or -1. */
static int http_status(const char *line)
{
	if (memcmp(line, "HTTP/", 5) != 0 || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]))
		return -1;
	return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

/* An HTTP reply: only its status line is read; the rest goes with the
 * reset that closes the socket. */
static void read_http(struct health *h, struct target *t, uint64_t now)
{
	const struct health_service *hc = t->svc->hc;
	char why[96];
	ssize_t n;
	int status;

	n = recv(t->fd, t->reply + t->reply_len,
		 sizeof(t->reply) - t->reply_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		finish(h, t, false, error_text(errno, why, sizeof(why)), now);
		return;
	}
	if (n == 0) {
		finish(h, t, false, "closed before an HTTP status line", now);
		return;
	}
	t->reply_len += (size_t)n;
	if (t->reply_len < sizeof(t->reply))
		return;
	status = http_status(t->reply);
	if (status < 0) {
		finish(h, t, false, "no HTTP status line in the reply", now);
		return;
	}
	snprintf(why, sizeof(why), "HTTP status %d, not %u", status,
		 hc->http_status);
	finish(h, t, (unsigned int)status == hc->http_status, why, now);
}

/* A UDP reply passes, or one holding udp_expect where that is given.
 * A port unreachable comes back as ECONNREFUSED, the socket being
 * connected. */
static void read_udp(struct health *h, struct target *t, uint64_t now)
{
	const char *expect = t->svc->hc->udp_expect;
	char buf[UDP_REPLY_MAX], why[96];
	ssize_t n = recv(t->fd, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		finish(h, t, false, error_text(errno, why, sizeof(why)), now);
		return;
	}
	snprintf(why, sizeof(why), "reply without '%.64s'", expect);
	finish(h, t, !*expect || memmem(buf, (size_t)n, expect, strlen(expect)),
	       why, now);
}

static void start(struct health *h, struct target *t, uint64_t now)
{
	/* closed with a reset rather than a FIN, so that checks leave no
	 * TIME_WAIT sockets behind, here or on the backend */
	static const struct linger reset_on_close = { .l_onoff = 1 };
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = t };
	bool udp = t->svc->hc->check == CHECK_UDP;
	char why[96];
	int fd, e;

	t->started = now;
	fd = socket(t->sa.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		skip(h, t, now, errno);
		return;
	}
	if (!udp)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_close,
			   sizeof(reset_on_close));
	h->socket_failing = false;
	t->fd = fd;
	t->due = now + h->d->cfg.health_timeout_ms;
	heap_fix(h, t);
	if (connect(fd, (struct sockaddr *)&t->sa, t->sa_len) == 0) {
		connected(h, t, now, false);
		return;
	}
	if (errno != EINPROGRESS) {
		finish(h, t, false, error_text(errno, why, sizeof(why)), now);
		return;
	}
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		e = errno;
		cancel_check(t);
		skip(h, t, now, e);
		return;
	}
	t->phase = PHASE_CONNECTING;
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

			if (t->phase == PHASE_REPLY) {
				if (t->svc->hc->check == CHECK_HTTP)
					read_http(h, t, now);
				else
					read_udp(h, t, now);
				continue;
			}
			getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &len);
			if (e)
				finish(h, t, false, error_text(e, why, sizeof(why)),
				       now);
			else
				connected(h, t, now, true);
		}
	} while (n == EVENTS_PER_WAIT);
}

static void expire_and_start(struct health *h, uint64_t now)
{
	static const char *const waited_for[] = {
		[CHECK_TCP] = "connection", [CHECK_HTTP] = "HTTP status",
		[CHECK_UDP] = "reply",
	};
	char why[96];

	for (unsigned int done = 0;
	     h->n_heap && h->heap[0]->due <= now && done < CHECKS_PER_RUN;
	     done++) {
		struct target *t = h->heap[0];

		if (t->fd < 0) {
			start(h, t, now);
			continue;
		}
		snprintf(why, sizeof(why), "no %s within %u ms",
			 t->phase == PHASE_CONNECTING ? "connection" :
			 waited_for[t->svc->hc->check],
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

/* What a committed op did to its target, to be taken in once the
 * commit is through. */
enum outcome { SET_DOWN, SET_BACK, RAMPED, DEADLINE };

struct changed {
	struct target *t;
	uint8_t outcome;                 /* enum outcome */
	uint8_t state;                   /* SET_DOWN: to what */
	unsigned int weight;             /* SET_BACK, RAMPED: the weight set */
};

/* What one decide() gathers: the ops, their targets, and the reason. */
struct decision {
	json_t *ops;
	struct changed *changed;
	size_t n_changed;
	char reason[REASON_MAX + 64];
	size_t used, left_out;
};

/* Adds the op that sets t to `state` (NULL: as it is) and `weight` (0:
 * as it is), and says why in the reason. */
static void add_op(struct decision *dc, struct target *t, const char *state,
		   unsigned int weight, const char *why, enum outcome outcome)
{
	json_t *op = json_pack("{s:s, s:s, s:s}", "op", "backend_set",
			       "service", t->key.service, "addr", t->key.addr);
	int n;

	if (state)
		json_object_set_new(op, "state", json_string(state));
	if (weight)
		json_object_set_new(op, "weight", json_integer(weight));
	json_array_append_new(dc->ops, op);
	dc->changed[dc->n_changed++] = (struct changed){
		.t = t, .outcome = (uint8_t)outcome, .weight = weight,
		.state = (uint8_t)(state ? backend_state_parse(state) : 0),
	};
	if (dc->used >= REASON_MAX) {
		dc->left_out++;
		return;
	}
	n = snprintf(dc->reason + dc->used, REASON_MAX + 1 - dc->used, "%s%s",
		     dc->used > strlen("health: ") ? "; " : "", why);
	dc->used += n > 0 ? (size_t)n : 0;
	if (dc->used > REASON_MAX)
		dc->used = REASON_MAX;
}

/* The checker set t down (or draining), and it may come back now. */
static bool coming_back(const struct target *t)
{
	return t->down_by_health && t->stored == t->set_to &&
	       t->health == HEALTH_UP && !held(t);
}

/* The next step of t's slow start, if one is due. */
static void ramp(struct decision *dc, struct target *t, const char *where,
		 uint64_t now)
{
	unsigned int step, w;
	char why[256];

	if (!t->ramping)
		return;
	/* an operator changed the backend since: theirs now */
	if (t->stored != BACKEND_ACTIVE || t->stored_weight != t->ramp_weight) {
		t->ramping = false;
		return;
	}
	step = ramp_step_at(t, now);
	w = ramp_weight_at(t->full_weight, step);
	if (w == t->ramp_weight)
		return;
	snprintf(why, sizeof(why), "%s slow start %u/%u: weight %u of %u", where,
		 step, SLOW_START_STEPS, w, t->full_weight);
	add_op(dc, t, NULL, w, why, RAMPED);
}

/* Decides on service s. */
static void decide_service(struct health *h, struct hservice *s,
			   struct decision *dc, uint64_t now)
{
	const struct daemon_config *cfg = &h->d->cfg;
	size_t failing = 0, passing = 0, active = 0, i;
	char where[80], why[256];
	bool open;

	for (i = 0; i < s->n; i++) {
		struct target *t = s->t[i];

		if (coming_back(t))
			passing++;
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
		if (coming_back(t)) {
			unsigned int first = ramp_weight_at(t->stored_weight, 1);

			snprintf(why, sizeof(why), "%s passed %u checks", where,
				 cfg->health_rise);
			add_op(dc, t, "active", s->hc->slow_start_s &&
			       first < t->stored_weight ? first : 0, why,
			       SET_BACK);
		} else if (!open && t->stored == BACKEND_ACTIVE &&
			   t->health == HEALTH_DOWN) {
			snprintf(why, sizeof(why), "%s failed %u checks (%s)%s",
				 where, cfg->health_fall, t->error,
				 s->hc->keep_flows ? ", draining: on_backend_down "
				 "= keep" : "");
			add_op(dc, t, s->hc->keep_flows ? "draining" : "down", 0,
			       why, SET_DOWN);
		} else {
			ramp(dc, t, where, now);
		}
	}
}

/* The commit went through: the targets take in what it did. */
static void took_effect(const struct changed *c, uint64_t now)
{
	struct target *t = c->t;

	switch (c->outcome) {
	case SET_DOWN:
		t->down_by_health = true;
		t->set_to = c->state;
		t->ramping = false;
		break;
	case SET_BACK:
		t->down_by_health = false;
		if (c->weight)
			ramp_begin(t, t->stored_weight, c->weight, now);
		break;
	case RAMPED:
		t->ramp_weight = c->weight;
		t->ramping = c->weight < t->full_weight;
		break;
	case DEADLINE:
		/* an operator's drain: not the checker's to bring back; the
		 * deadline is forgotten once the store says down */
		break;
	}
}

/* Commits dc's ops as user "health"; says so, or why not. Returns
 * whether they were committed. */
static bool commit_decision(struct health *h, struct decision *dc,
			    uint64_t now)
{
	struct change_meta meta = {
		.user = HEALTH_USER, .uid = (uint32_t)getuid(),
		.environment = h->d->cfg.environment, .automatic = true,
	};
	const char *error = NULL;
	json_t *resp;

	if (dc->left_out)
		snprintf(dc->reason + dc->used, sizeof(dc->reason) - dc->used,
			 "; and %zu more", dc->left_out);
	meta.reason = dc->reason;
	resp = mgmt_commit(h->d, &meta, dc->ops, false);
	if (json_is_true(json_object_get(resp, "ok"))) {
		for (size_t i = 0; i < dc->n_changed; i++)
			took_effect(&dc->changed[i], now);
		printf("fulcrumd: version %lld: %s%s%s\n",
		       json_integer_value(json_object_get(resp, "version")),
		       dc->reason,
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
				"again every interval: %s: %s\n", dc->reason,
				error ? error : "");
		snprintf(h->last_refusal, sizeof(h->last_refusal), "%s",
			 error ? error : "");
		h->retry_at = now + h->d->cfg.health_interval_ms;
	}
	json_decref(resp);
	return error == NULL;
}

static void decide(struct health *h, uint64_t now)
{
	struct decision dc = { .reason = "health: " };
	size_t cap = 0, i;

	dc.used = strlen(dc.reason);
	for (i = 0; i < h->n_dirty; i++)
		cap += h->dirty[i]->n;
	dc.changed = calloc(cap + 1, sizeof(*dc.changed));
	dc.ops = json_array();
	if (!dc.changed || !dc.ops) {
		free(dc.changed);
		json_decref(dc.ops);
		return;                  /* the dirty ones wait for the next run */
	}
	for (i = 0; i < h->n_dirty; i++) {
		h->dirty[i]->dirty = false;
		decide_service(h, h->dirty[i], &dc, now);
	}
	h->n_dirty = 0;
	if (dc.n_changed)
		commit_decision(h, &dc, now);
	json_decref(dc.ops);
	free(dc.changed);
}

/* ---- drains with a deadline ---- */

/* Sets down every backend whose drain deadline has passed and that is
 * still draining; forgets the deadlines of those an operator changed
 * since. A refused commit (a freeze) is tried again an interval later. */
static void expire_drains(struct health *h, uint64_t now)
{
	struct decision dc = { .reason = "health: " };
	size_t i, kept = 0;
	char where[80], why[256];

	dc.used = strlen(dc.reason);
	dc.changed = calloc(h->n_drains + 1, sizeof(*dc.changed));
	dc.ops = json_array();
	if (!dc.changed || !dc.ops)
		goto out;
	for (i = 0; i < h->n_drains; i++) {
		struct drain *dr = &h->drains[i];
		struct target_key k = { 0 };
		struct target *t;

		memcpy(k.service, dr->service, sizeof(k.service));
		memcpy(k.addr, dr->addr, sizeof(k.addr));
		t = hmap_get(&h->targets, &k, sizeof(k));
		if (!t || t->stored != BACKEND_DRAINING)
			continue;        /* gone, or changed since: forgotten */
		if (dr->at > now) {
			h->drains[kept++] = *dr;
			continue;
		}
		describe(t, where, sizeof(where));
		snprintf(why, sizeof(why), "%s drained %u s ago: its deadline has "
			 "passed", where, dr->seconds);
		add_op(&dc, t, "down", 0, why, DEADLINE);
		h->drains[kept++] = *dr;
	}
	h->n_drains = kept;
	if (dc.n_changed == 0 || commit_decision(h, &dc, now))
		goto out;
	for (i = 0; i < h->n_drains; i++)
		if (h->drains[i].at <= now)
			h->drains[i].at = now + h->d->cfg.health_interval_ms;
out:
	json_decref(dc.ops);
	free(dc.changed);
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
	free(h->drains);
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
	for (size_t i = 0; i < h->n_drains; i++)
		if (h->drains[i].at < next)
			next = h->drains[i].at;
	return next > now_ms ? (int)(next - now_ms) : 0;
}

void health_run(struct health *h, uint64_t now_ms)
{
	if (!h->loaded || store_version(h->d->store) != h->version) {
		bool initial = !h->loaded;

		if (initial || catch_up(h, now_ms) < 0)
			refresh(h, now_ms, initial);
		h->loaded = true;
		h->version = store_version(h->d->store);
		store_digest(h->d->store, h->digest);
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
	for (size_t i = 0; i < h->n_drains; i++) {
		if (h->drains[i].at <= now_ms) {
			expire_drains(h, now_ms);
			break;
		}
	}
}

int health_drain_deadline(struct health *h, const char *service,
			  const char *addr, unsigned int seconds)
{
	union { struct in_addr a4; struct in6_addr a6; } a;
	struct timespec now;
	struct drain *more, *dr = NULL;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	for (size_t i = 0; i < h->n_drains; i++)
		if (strcmp(h->drains[i].service, service) == 0 &&
		    strcmp(h->drains[i].addr, addr) == 0)
			dr = &h->drains[i];
	if (!dr) {
		more = realloc(h->drains, (h->n_drains + 1) * sizeof(*more));
		if (!more)
			return -1;
		h->drains = more;
		dr = &more[h->n_drains++];
		memset(dr, 0, sizeof(*dr));
	}
	snprintf(dr->service, sizeof(dr->service), "%s", service);
	/* as the store writes it, which is how targets are keyed */
	if (inet_pton(family, addr, &a) != 1 ||
	    !inet_ntop(family, &a, dr->addr, sizeof(dr->addr)))
		snprintf(dr->addr, sizeof(dr->addr), "%s", addr);
	dr->seconds = seconds;
	clock_gettime(CLOCK_MONOTONIC, &now);
	dr->at = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 +
		 (uint64_t)seconds * 1000;
	return 0;
}

static const char *health_name(const struct target *t)
{
	static const char *const names[] = {
		[HEALTH_UNKNOWN] = "unknown", [HEALTH_UP] = "up",
		[HEALTH_DOWN] = "down",
	};

	return names[t->health];
}

static const char *check_name(const struct health_service *hc)
{
	static const char *const names[] = {
		[CHECK_TCP] = "tcp", [CHECK_HTTP] = "http", [CHECK_UDP] = "udp",
	};

	return names[hc->check];
}

static const struct drain *drain_of(const struct health *h,
				    const struct target *t)
{
	for (size_t i = 0; i < h->n_drains; i++)
		if (strcmp(h->drains[i].service, t->key.service) == 0 &&
		    strcmp(h->drains[i].addr, t->key.addr) == 0)
			return &h->drains[i];
	return NULL;
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
			const struct drain *dr = drain_of(h, t);

			json_array_append_new(backends, json_pack(
				"{s:s, s:s, s:s, s:b, s:i, s:i, s:s?, s:b, s:i,"
				" s:o, s:o}",
				"addr", t->key.addr,
				"state", backend_state_name(t->stored),
				"health", health_name(t),
				"down_by_health", t->down_by_health,
				"passes", (int)t->passes, "fails", (int)t->fails,
				"error", t->error[0] ? t->error : NULL,
				"held", held(t), "flaps", (int)t->flaps,
				"slow_start_to", t->ramping ?
				json_integer(t->full_weight) : json_null(),
				"drain_deadline_s", dr ?
				json_integer(dr->seconds) : json_null()));
		}
		json_array_append_new(list, json_pack(
			"{s:s, s:o, s:s, s:i, s:s, s:b, s:o}",
			"name", s->name,
			"port", s->port ? json_integer(s->port) : json_null(),
			"check", check_name(s->hc),
			"slow_start_s", (int)s->hc->slow_start_s,
			"on_backend_down", s->hc->keep_flows ? "keep" : "reset",
			"fail_open", s->fail_open, "backends", backends));
	}
	if (service && json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:i, s:i, s:i, s:i, s:{s:i, s:i, s:i}, s:I, s:o}",
			 "interval_ms", (int)cfg->health_interval_ms,
			 "timeout_ms", (int)cfg->health_timeout_ms,
			 "rise", (int)cfg->health_rise,
			 "fall", (int)cfg->health_fall,
			 "flap", "max", (int)cfg->health_flap_max,
			 "window_s", (int)cfg->health_flap_window_s,
			 "hold_s", (int)cfg->health_flap_hold_s,
			 "store_reads", (json_int_t)h->store_reads,
			 "services", list);
}

json_t *health_summary(const struct health *h)
{
	size_t count[3] = { 0 }, n = 0, late = 0;
	json_t *open = json_array();
	struct timespec ts;
	uint64_t now_ms;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;

	for (size_t i = 0; i < h->n_svcs; i++) {
		const struct hservice *s = h->svcs[i];

		for (size_t k = 0; k < s->n; k++) {
			count[s->t[k]->health]++;
			/* a loop's turn late is on time; a target out of
			 * the heap is not checked at all (port 0 without a
			 * check port) */
			late += s->t[k]->heap_idx != NOT_IN_HEAP &&
				s->t[k]->fd < 0 &&
				s->t[k]->due + h->d->cfg.health_timeout_ms < now_ms;
		}
		n += s->n;
		if (s->fail_open)
			json_array_append_new(open, json_string(s->name));
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "backends",
			 (json_int_t)n, "up", (json_int_t)count[HEALTH_UP],
			 "down", (json_int_t)count[HEALTH_DOWN],
			 "unknown", (json_int_t)count[HEALTH_UNKNOWN],
			 "late", (json_int_t)late, "fail_open", open);
}
