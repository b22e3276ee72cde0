#include "fwd_update.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_malloc.h>

#include "maglev.h"

/* What prepare() works with, freed when it returns. */
struct build {
	const struct fwd_state *live;
	struct fwd_update *u;
	uint32_t now;
	struct maglev_scratch *scratch;
	uint8_t *stat_used;            /* [live->max_backends] */
	uint8_t *id_used;              /* [live->capacity] */
	uint32_t n_want;
	struct service **keep;         /* [n_want]: live service kept, or NULL */
	/* [live->capacity]: with a delta, the live services it leaves as
	 * they are, which the build never looks into; NULL when the whole
	 * state is sent */
	const uint8_t *untouched;
	bool stats_marked;             /* stat_used holds the kept ones */
	struct service **by_name;      /* the live services */
	uint32_t n_live;
	bool live_sorted;              /* by_name is sorted by name */
	uint32_t next_stat;            /* where the search for a free stat id
					* goes on: ids are handed out in order */
	uint32_t next_id;              /* and where that for a service id
					* does, from live->next_id on */
	char *err;
	size_t err_len;
};

static int fail(struct build *b, const char *fmt, const char *name,
		const char *what)
{
	snprintf(b->err, b->err_len, fmt, name, what);
	return -1;
}

static int svc_by_name(const void *a, const void *b)
{
	return strcmp((*(struct service *const *)a)->name,
		      (*(struct service *const *)b)->name);
}

static int name_vs_svc(const void *key, const void *elem)
{
	return strcmp(key, (*(struct service *const *)elem)->name);
}

/* Sorted when the update names more than this many services: ten
 * thousand services must not cost a hundred million comparisons, nor a
 * delta of one service the sorting of ten thousand names. */
#define LIVE_SORTED_MIN 16

static void index_live(struct build *b)
{
	for (uint32_t i = 0; i < b->live->capacity; i++)
		if (b->live->services[i])
			b->by_name[b->n_live++] = b->live->services[i];
	b->live_sorted = b->n_want > LIVE_SORTED_MIN;
	if (b->live_sorted)
		qsort(b->by_name, b->n_live, sizeof(*b->by_name), svc_by_name);
}

static struct service *live_by_name(const struct build *b, const char *name)
{
	struct service **hit;

	if (!b->live_sorted) {
		for (uint32_t i = 0; i < b->n_live; i++)
			if (strcmp(b->by_name[i]->name, name) == 0)
				return b->by_name[i];
		return NULL;
	}
	hit = bsearch(name, b->by_name, b->n_live, sizeof(*b->by_name),
		      name_vs_svc);
	return hit ? *hit : NULL;
}

/* A service keeps its id and flows only while what identifies its
 * traffic and the meaning of its table entries stays the same. */
static bool same_shape(const struct service *svc, const struct service_config *sc)
{
	struct vip_key k;

	vip_key_from_flow(&k, &sc->vip, rte_cpu_to_be_16(sc->port), sc->proto,
			  sc->family);
	return memcmp(&k, &svc->vip, sizeof(k)) == 0 &&
	       svc->mode == sc->mode &&
	       svc->gue_port == rte_cpu_to_be_16(sc->gue_port) &&
	       service_table_get(svc)->maglev_size == sc->table_size;
}

static void mark_stats(struct build *b, const struct service *svc)
{
	const struct service_table *t = service_table_get(svc);

	for (uint32_t j = 0; j < t->n_backends; j++)
		b->stat_used[t->backends[j].stat_id] = 1;
}

/* Stat ids in use by what the live state keeps: looked for only once a
 * backend needs a new one, so that a delta that adds none never walks
 * the backends of every service. */
static void mark_kept_stats(struct build *b)
{
	for (uint32_t i = 0; i < b->n_want; i++)
		if (b->keep[i])
			mark_stats(b, b->keep[i]);
	for (uint32_t id = 0; b->untouched && id < b->live->capacity; id++)
		if (b->untouched[id])
			mark_stats(b, b->live->services[id]);
	b->stats_marked = true;
}

static int alloc_stat_id(struct build *b, uint32_t *id)
{
	if (!b->stats_marked)
		mark_kept_stats(b);
	for (; b->next_stat < b->live->max_backends; b->next_stat++)
		if (!b->stat_used[b->next_stat]) {
			b->stat_used[b->next_stat] = 1;
			*id = b->next_stat++;
			return 0;
		}
	snprintf(b->err, b->err_len, "more than max_backends=%u backends",
		 b->live->max_backends);
	return -1;
}

static void from_config(struct backend *be, const struct backend_config *bc)
{
	be->addr = bc->addr;
	be->family = bc->family;
	be->weight = bc->weight;
	be->state = bc->state;
	be->mac = bc->mac;
	be->removed_at = 0;
}

/* Family, then address bytes: the order the store keeps backends in,
 * compared as two big-endian words rather than by a memcmp call, of which
 * a restore of a million backends makes millions. */
static inline int addr_order(uint8_t fx, const union ip_addr *x, uint8_t fy,
			     const union ip_addr *y)
{
	uint64_t a = rte_be_to_cpu_64(x->w[0]), b = rte_be_to_cpu_64(y->w[0]);

	if (fx != fy)
		return fx - fy;
	if (a == b) {
		a = rte_be_to_cpu_64(x->w[1]);
		b = rte_be_to_cpu_64(y->w[1]);
	}
	return (a > b) - (a < b);
}

static int by_addr(const void *a, const void *b)
{
	const struct backend_config *x = a, *y = b;

	return addr_order(x->family, &x->addr, y->family, &y->addr);
}

static bool sorted_by_addr(const struct backend_config *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (by_addr(&v[i - 1], &v[i]) > 0)
			return false;
	return true;
}

/* sc's entry for backend be (sc's backends sorted by address), unless it
 * has been taken already. */
static const struct backend_config *wanted(const struct service_config *sc,
					   const struct backend_config *sorted,
					   const struct backend *be,
					   uint8_t *taken)
{
	uint32_t lo = 0, hi = sc->n_backends;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = addr_order(be->family, &be->addr, sorted[mid].family,
				   &sorted[mid].addr);

		if (c == 0) {
			if (taken[mid])
				return NULL;
			taken[mid] = 1;
			return &sorted[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The backend slots of sc: a kept service's slots stay where they were
 * (backends that left become REMOVED), and newcomers take a slot that has
 * been free long enough, or a new one at the end. */
static int place_backends(struct build *b, const struct service_table *old,
			  const struct service_config *sc,
			  struct backend *slots, uint32_t *n_slots)
{
	uint8_t *taken = calloc(sc->n_backends + 1, 1);
	/* the slots whose next hop is to be looked up: a backend that stays
	 * where it was keeps its own, which with a million backends on the
	 * subnet is a million lookups saved on a restore */
	uint32_t n = old ? old->n_backends : 0;
	uint8_t *resolve = calloc(n + sc->n_backends + 1, 1);
	/* the store sends them in order; a script may not */
	bool in_order = sorted_by_addr(sc->backends, sc->n_backends);
	struct backend_config *copy = in_order ? NULL :
				      calloc(sc->n_backends + 1, sizeof(*copy));
	const struct backend_config *sorted = in_order ? sc->backends : copy;
	int rc = -1;

	if (!taken || !resolve || (!in_order && !copy)) {
		fail(b, "%s%s", "out of memory", "");
		goto out;
	}
	if (copy) {
		memcpy(copy, sc->backends, sc->n_backends * sizeof(*copy));
		qsort(copy, sc->n_backends, sizeof(*copy), by_addr);
	}
	for (uint32_t j = 0; j < n; j++) {
		const struct backend_config *bc;

		slots[j] = old->backends[j];
		bc = slots[j].state == BACKEND_REMOVED ? NULL :
			wanted(sc, sorted, &slots[j], taken);
		if (bc) {
			uint32_t stat = slots[j].stat_id;

			from_config(&slots[j], bc);
			slots[j].stat_id = stat;
			resolve[j] = !rte_is_zero_ether_addr(&slots[j].mac);
		} else if (slots[j].state != BACKEND_REMOVED) {
			slots[j].state = BACKEND_REMOVED;
			slots[j].removed_at = b->now;
		}
	}
	for (uint32_t i = 0; i < sc->n_backends; i++) {
		uint32_t j;

		if (taken[i])
			continue;
		for (j = 0; j < n; j++)
			if (slots[j].state == BACKEND_REMOVED &&
			    b->now - slots[j].removed_at >= b->live->slot_reuse_s)
				break;
		if (j == n) {
			if (n == CONFIG_MAX_BACKENDS) {
				fail(b, "service %s: %s", sc->name,
				     "no backend slot free (removed backends "
				     "keep theirs until their flows are idle)");
				goto out;
			}
			n++;
		}
		from_config(&slots[j], &sorted[i]);
		resolve[j] = 1;
		if (alloc_stat_id(b, &slots[j].stat_id) < 0)
			goto out;
	}
	for (uint32_t j = 0; j < n; j++)
		if (resolve[j] && slots[j].state != BACKEND_REMOVED &&
		    fwd_resolve_next_hop(b->live, sc->name,
					 sc->mode, &slots[j], b->err,
					 b->err_len) < 0)
			goto out;
	*n_slots = n;
	rc = 0;
out:
	free(copy);
	free(resolve);
	free(taken);
	return rc;
}

static bool same_table(const struct service_table *t,
		       const struct backend *slots, uint32_t n)
{
	if (t->n_backends != n)
		return false;
	for (uint32_t j = 0; j < n; j++) {
		const struct backend *x = &t->backends[j], *y = &slots[j];

		if (x->state != y->state || x->weight != y->weight ||
		    x->neigh != y->neigh || x->stat_id != y->stat_id ||
		    !ip_addr_eq(&x->addr, &y->addr))
			return false;
	}
	return true;
}

static int check_service(struct build *b, const struct service_config *sc)
{
	if (!maglev_size_is_valid(sc->table_size))
		return fail(b, "service %s: %s", sc->name,
			    "table_size is not a prime in range");
	if (sc->proto != IPPROTO_TCP && sc->proto != IPPROTO_UDP)
		return fail(b, "service %s: %s", sc->name, "proto must be tcp or udp");
	if (sc->n_backends > CONFIG_MAX_BACKENDS)
		return fail(b, "service %s: %s", sc->name, "too many backends");
	for (uint32_t i = 0; i < sc->n_backends; i++) {
		const struct backend_config *bc = &sc->backends[i];

		/* IPIP carries v4 in v4 and v6 in v6; L2 DSR needs the
		 * backend on the VIP's network */
		if (bc->family != sc->family && sc->mode != FWD_GUE)
			return fail(b, "service %s: %s", sc->name,
				    "a backend's address family differs from "
				    "the VIP's");
		if (bc->state == BACKEND_REMOVED || bc->state > BACKEND_REMOVED)
			return fail(b, "service %s: %s", sc->name,
				    "a backend has no valid state");
	}
	return 0;
}

/* Service ids in use by what the live state keeps. */
static void mark_kept_ids(struct build *b)
{
	for (uint32_t i = 0; i < b->n_want; i++)
		if (b->keep[i])
			b->id_used[b->keep[i]->id] = 1;
	for (uint32_t id = 0; b->untouched && id < b->live->capacity; id++)
		if (b->untouched[id])
			b->id_used[id] = 1;
}

static int new_id(struct build *b, uint32_t *id)
{
	const struct fwd_state *live = b->live;

	/* round the id space from where the last search stopped, so that a
	 * removed service's id (and any flow remembering it) is reused last.
	 * Ids only get taken during a build, so this search goes on where
	 * the one before found its id, not at live->next_id again: ten
	 * thousand new services must not cost fifty million probes. */
	for (uint32_t k = 0; k < live->capacity; k++) {
		uint32_t i = (b->next_id + k) % live->capacity;

		if (!b->id_used[i]) {
			b->id_used[i] = 1;
			b->next_id = (i + 1) % live->capacity;
			*id = i;
			return 0;
		}
	}
	snprintf(b->err, b->err_len, "more than max_services=%u services",
		 live->capacity);
	return -1;
}

static struct service *new_service(struct build *b,
				   const struct service_config *sc,
				   struct backend *slots)
{
	struct service *svc = rte_zmalloc("service", sizeof(*svc), 0);
	uint32_t n;

	if (!svc) {
		fail(b, "%s%s", "out of memory", "");
		return NULL;
	}
	vip_key_from_flow(&svc->vip, &sc->vip, rte_cpu_to_be_16(sc->port),
			  sc->proto, sc->family);
	svc->mode = (uint8_t)sc->mode;
	svc->gue_port = rte_cpu_to_be_16(sc->gue_port);
	snprintf(svc->name, sizeof(svc->name), "%s", sc->name);
	if (new_id(b, &svc->id) < 0 ||
	    place_backends(b, NULL, sc, slots, &n) < 0)
		goto fail;
	svc->table = service_table_create(slots, n, sc->table_size, b->scratch);
	if (!svc->table) {
		fail(b, "service %s: %s", sc->name, "cannot build its Maglev table");
		goto fail;
	}
	return svc;
fail:
	rte_free(svc);
	return NULL;
}

static int by_name_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int twice_named(struct build *b, const struct service_config *want,
		       uint32_t n)
{
	const char **names = calloc(n + 1, sizeof(*names));
	int rc = 0;

	if (!names)
		return fail(b, "%s%s", "out of memory", "");
	for (uint32_t i = 0; i < n; i++)
		names[i] = want[i].name;
	qsort(names, n, sizeof(*names), by_name_text);
	for (uint32_t i = 1; i < n && rc == 0; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = fail(b, "service %s: %s", names[i], "named twice");
	free(names);
	return rc;
}

static int by_vip(const void *a, const void *b)
{
	const struct service_config *x = *(const struct service_config *const *)a;
	const struct service_config *y = *(const struct service_config *const *)b;

	if (x->family != y->family)
		return x->family - y->family;
	if (x->proto != y->proto)
		return x->proto - y->proto;
	if (x->port != y->port)
		return x->port - y->port;
	return memcmp(x->vip.v6, y->vip.v6, sizeof(x->vip.v6));
}

/* Two services on one VIP, protocol and port would fight over its
 * packets; the workers' VIP hints also count on each being unique. */
static int vip_twice(struct build *b, const struct service_config *want,
		     uint32_t n)
{
	const struct service_config **order = calloc(n + 1, sizeof(*order));
	int rc = 0;

	if (!order)
		return fail(b, "%s%s", "out of memory", "");
	for (uint32_t i = 0; i < n; i++)
		order[i] = &want[i];
	qsort(order, n, sizeof(*order), by_vip);
	for (uint32_t i = 1; i < n && rc == 0; i++)
		if (by_vip(&order[i - 1], &order[i]) == 0)
			rc = fail(b, "service %s: %s", order[i]->name,
				  "its VIP, protocol and port belong to another "
				  "service too");
	free(order);
	return rc;
}

/* With a delta, the services it leaves alone count as well: a changed
 * one may not take the VIP of one of those. */
static int vip_untouched(struct build *b, const struct service_config *want,
			 uint32_t n)
{
	struct vip_key k;
	void *data;

	for (uint32_t i = 0; b->untouched && i < n; i++) {
		vip_key_from_flow(&k, &want[i].vip, rte_cpu_to_be_16(want[i].port),
				  want[i].proto, want[i].family);
		if (rte_hash_lookup_data(b->live->by_vip, &k, &data) >= 0 &&
		    b->untouched[((const struct service *)data)->id])
			return fail(b, "service %s: %s", want[i].name,
				    "its VIP, protocol and port belong to "
				    "another service too");
	}
	return 0;
}

static int plan(struct build *b, const struct service_config *want, uint32_t n,
		struct backend *slots)
{
	const struct fwd_state *live = b->live;
	struct fwd_update *u = b->u;

	if (twice_named(b, want, n) < 0 || vip_twice(b, want, n) < 0 ||
	    vip_untouched(b, want, n) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct service *svc;

		if (check_service(b, &want[i]) < 0)
			return -1;
		svc = live_by_name(b, want[i].name);
		b->keep[i] = svc && same_shape(svc, &want[i]) ? svc : NULL;
	}
	/* the ids in use are now those of the kept services: the others go */
	mark_kept_ids(b);
	for (uint32_t i = 0; i < live->capacity; i++)
		if (live->services[i] && !b->id_used[i])
			u->removed[u->n_removed++] = live->services[i];
	for (uint32_t i = 0; i < n; i++) {
		const struct service_table *old;
		struct service_table *t;
		uint32_t n_slots;

		if (!b->keep[i]) {
			struct service *svc = new_service(b, &want[i], slots);

			if (!svc)
				return -1;
			u->added[u->n_added++] = svc;
			continue;
		}
		old = service_table_get(b->keep[i]);
		if (place_backends(b, old, &want[i], slots, &n_slots) < 0)
			return -1;
		if (same_table(old, slots, n_slots))
			continue;
		t = service_table_create(slots, n_slots, old->maglev_size,
					 b->scratch);
		if (!t)
			return fail(b, "service %s: %s", want[i].name,
				    "cannot build its Maglev table");
		u->swap_svc[u->n_swaps] = b->keep[i];
		u->swap_table[u->n_swaps++] = t;
	}
	return 0;
}

/* A new state when services come or go; the kept ones are shared. */
static int index_all(struct build *b, uint32_t n)
{
	const struct fwd_state *live = b->live;
	struct fwd_update *u = b->u;
	struct dataplane_config limits = {
		.max_services = live->capacity,
		.max_backends = live->max_backends,
		.hash_seed = live->hash_seed,
		.tcp_idle_timeout_s = live->slot_reuse_s,
	};
	struct fwd_state *s;

	if (u->n_added == 0 && u->n_removed == 0)
		return 0;
	s = fwd_state_empty(&limits, live->ports, live->n_ports, live->neigh);
	if (!s)
		return fail(b, "%s%s", "out of memory", "");
	u->new_state = s;
	s->next_id = live->next_id;
	for (uint32_t i = 0; i < n; i++)
		if (b->keep[i] &&
		    fwd_state_index(s, b->keep[i], b->err, b->err_len) < 0)
			return -1;
	for (uint32_t id = 0; b->untouched && id < live->capacity; id++)
		if (b->untouched[id] &&
		    fwd_state_index(s, live->services[id], b->err,
				    b->err_len) < 0)
			return -1;
	for (uint32_t i = 0; i < u->n_added; i++) {
		if (fwd_state_index(s, u->added[i], b->err, b->err_len) < 0)
			return -1;
		s->next_id = (u->added[i]->id + 1) % s->capacity;
	}
	return 0;
}

static int prepare(const struct fwd_state *live,
		   const struct service_config *want, uint32_t n,
		   const uint8_t *untouched, uint32_t now, struct fwd_update *u,
		   char *err, size_t err_len)
{
	struct build b = {
		.live = live, .u = u, .now = now, .err = err, .err_len = err_len,
		.next_id = live->next_id, .n_want = n, .untouched = untouched,
	};
	struct backend *slots = calloc(CONFIG_MAX_BACKENDS, sizeof(*slots));
	uint64_t n_after = n;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	for (uint32_t id = 0; untouched && id < live->capacity; id++)
		n_after += untouched[id];
	if (n_after > live->capacity) {
		snprintf(err, err_len, "%" PRIu64 " services exceed "
			 "max_services=%u", n_after, live->capacity);
		free(slots);
		return -1;
	}
	b.scratch = maglev_scratch_create(CONFIG_MAX_BACKENDS, MAGLEV_MAX_SIZE);
	b.stat_used = calloc(live->max_backends + 1, 1);
	b.id_used = calloc(live->capacity + 1, 1);
	b.keep = calloc(n + 1, sizeof(*b.keep));
	b.by_name = calloc(live->capacity + 1, sizeof(*b.by_name));
	u->swap_svc = calloc(n + 1, sizeof(*u->swap_svc));
	u->swap_table = calloc(n + 1, sizeof(*u->swap_table));
	u->added = calloc(n + 1, sizeof(*u->added));
	u->removed = calloc(live->capacity + 1, sizeof(*u->removed));
	if (!slots || !b.scratch || !b.stat_used || !b.id_used || !b.keep ||
	    !b.by_name ||
	    !u->swap_svc || !u->swap_table || !u->added || !u->removed)
		snprintf(err, err_len, "out of memory");
	else {
		index_live(&b);
		rc = plan(&b, want, n, slots) < 0 || index_all(&b, n) < 0 ? -1 : 0;
	}
	if (rc < 0)
		fwd_update_abort(u);
	free(slots);
	free(b.keep);
	free(b.by_name);
	free(b.id_used);
	free(b.stat_used);
	maglev_scratch_free(b.scratch);
	return rc;
}

int fwd_update_prepare(const struct fwd_state *live,
		       const struct service_config *want, uint32_t n,
		       uint32_t now, struct fwd_update *u, char *err,
		       size_t err_len)
{
	return prepare(live, want, n, NULL, now, u, err, err_len);
}

int fwd_update_prepare_delta(const struct fwd_state *live,
			     const struct service_config *changed, uint32_t n,
			     const uint8_t *untouched, uint32_t now,
			     struct fwd_update *u, char *err, size_t err_len)
{
	return prepare(live, changed, n, untouched, now, u, err, err_len);
}

void fwd_update_restamp(struct fwd_update *u, uint32_t from, uint32_t to)
{
	for (uint32_t i = 0; i < u->n_swaps; i++) {
		struct service_table *t = u->swap_table[i];

		for (uint32_t j = 0; j < t->n_backends; j++)
			if (t->backends[j].state == BACKEND_REMOVED &&
			    t->backends[j].removed_at == from)
				t->backends[j].removed_at = to;
	}
}

void fwd_update_publish(struct fwd_state **live, struct fwd_update *u)
{
	for (uint32_t i = 0; i < u->n_swaps; i++)
		u->swap_table[i] = service_table_swap(u->swap_svc[i],
						      u->swap_table[i]);
	if (u->new_state)
		u->old_state = __atomic_exchange_n(live, u->new_state,
						   __ATOMIC_ACQ_REL);
	u->new_state = NULL;
	u->n_added = 0;      /* they belong to the live state now */
}

static void release(struct fwd_update *u)
{
	free(u->swap_svc);
	free(u->swap_table);
	free(u->added);
	free(u->removed);
	memset(u, 0, sizeof(*u));
}

void fwd_update_finish(struct fwd_update *u)
{
	for (uint32_t i = 0; i < u->n_swaps; i++)
		service_table_free(u->swap_table[i]);
	for (uint32_t i = 0; i < u->n_removed; i++)
		service_free(u->removed[i]);
	fwd_state_free_index(u->old_state);
	release(u);
}

void fwd_update_abort(struct fwd_update *u)
{
	for (uint32_t i = 0; u->swap_table && i < u->n_swaps; i++)
		service_table_free(u->swap_table[i]);
	for (uint32_t i = 0; u->added && i < u->n_added; i++)
		service_free(u->added[i]);
	fwd_state_free_index(u->new_state);
	release(u);
}
