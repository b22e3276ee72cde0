/* Copy-on-write per service: the first time a change touches a service it
 * works on a copy and journals the original, so that rollback is putting
 * the originals back and commit is freeing them. A change never copies a
 * service it does not touch. */
#include "model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[MODE_COUNT] = {
	[MODE_L2DSR] = "l2dsr",
	[MODE_IPIP] = "ipip",
	[MODE_GUE] = "gue",
};

static const char *const state_names[BACKEND_STATE_COUNT] = {
	[BACKEND_ACTIVE] = "active",
	[BACKEND_DRAINING] = "draining",
	[BACKEND_DOWN] = "down",
};

const char *service_mode_name(unsigned int mode)
{
	return mode < MODE_COUNT ? mode_names[mode] : "?";
}

const char *backend_state_name(unsigned int state)
{
	return state < BACKEND_STATE_COUNT ? state_names[state] : "?";
}

static int name_index(const char *text, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(text, names[i]) == 0)
			return i;
	return -1;
}

int service_mode_parse(const char *text)
{
	return name_index(text, mode_names, MODE_COUNT);
}

int backend_state_parse(const char *text)
{
	return name_index(text, state_names, BACKEND_STATE_COUNT);
}

static const void *name_key(const void *item, size_t *len)
{
	const struct service *s = item;

	*len = strlen(s->name);
	return s->name;
}

static const void *vip_key(const void *item, size_t *len)
{
	const struct service *s = item;

	*len = sizeof(s->key);
	return &s->key;
}

static void make_vip_key(struct vip_key *k, const union ip_addr *vip,
			 uint8_t family, uint8_t proto, uint16_t port)
{
	k->family = family;
	k->proto = proto;
	k->port[0] = (uint8_t)(port >> 8);
	k->port[1] = (uint8_t)port;
	memcpy(k->addr, vip->v6, sizeof(k->addr));
}

struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (hmap_init(&m->by_name, name_key) < 0) {
		free(m);
		return NULL;
	}
	if (hmap_init(&m->by_vip, vip_key) < 0) {
		hmap_free(&m->by_name);
		free(m);
		return NULL;
	}
	return m;
}

static void service_free(struct service *s)
{
	if (s) {
		free(s->backends);
		free(s);
	}
}

void model_free(struct model *m)
{
	if (!m)
		return;
	model_rollback(m);
	for (size_t i = 0; i <= m->by_name.mask; i++)
		service_free(m->by_name.slots[i].item);
	hmap_free(&m->by_name);
	hmap_free(&m->by_vip);
	free(m->journal);
	free(m->order);
	free(m);
}

void model_begin(struct model *m)
{
	m->gen++;
	m->n_journal = 0;
}

void model_commit(struct model *m)
{
	for (size_t i = 0; i < m->n_journal; i++)
		service_free(m->journal[i].orig);
	m->n_journal = 0;
}

static int link_service(struct model *m, struct service *s)
{
	if (hmap_put(&m->by_name, s) < 0)
		return -1;
	if (hmap_put(&m->by_vip, s) < 0) {
		hmap_del(&m->by_name, s);
		return -1;
	}
	return 0;
}

static void unlink_service(struct model *m, struct service *s)
{
	hmap_del(&m->by_name, s);
	hmap_del(&m->by_vip, s);
}

/* Undone newest first, the first entry for a name is the last one undone
 * and puts back what the name held at begin. Whatever holds the name when
 * an entry is undone was made by this change. Putting a service back where
 * it was cannot need memory the indexes do not already have, as their
 * slot arrays never shrink. */
void model_rollback(struct model *m)
{
	if (m->n_journal > 0)
		m->order_valid = false;
	while (m->n_journal > 0) {
		struct journal_entry *e = &m->journal[--m->n_journal];
		struct service *cur = hmap_get(&m->by_name, e->name,
					       strlen(e->name));

		if (cur) {
			unlink_service(m, cur);
			service_free(cur);
		}
		if (e->orig)
			link_service(m, e->orig);
	}
}

size_t model_n_touched(const struct model *m)
{
	return m->n_journal;
}

const char *model_touched(const struct model *m, size_t i)
{
	return m->journal[i].name;
}

const struct service *model_touched_before(const struct model *m, size_t i)
{
	return m->journal[i].orig;
}

static int journal(struct model *m, const char *name, struct service *orig)
{
	if (m->n_journal == m->journal_cap) {
		size_t cap = m->journal_cap ? m->journal_cap * 2 : 16;
		struct journal_entry *j = realloc(m->journal,
						  cap * sizeof(*j));

		if (!j)
			return -1;
		m->journal = j;
		m->journal_cap = cap;
	}
	snprintf(m->journal[m->n_journal].name, SERVICE_NAME_LEN, "%s", name);
	m->journal[m->n_journal].orig = orig;
	m->n_journal++;
	return 0;
}

const struct service *model_find(const struct model *m, const char *name)
{
	return hmap_get(&m->by_name, name, strlen(name));
}

const struct service *model_find_vip(const struct model *m,
				     const union ip_addr *vip, uint8_t family,
				     uint8_t proto, uint16_t port)
{
	struct vip_key k;

	make_vip_key(&k, vip, family, proto, port);
	return hmap_get(&m->by_vip, &k, sizeof(k));
}

struct service *model_add(struct model *m, const struct service *tmpl)
{
	struct service *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	*s = *tmpl;
	s->n_backends = s->cap = 0;
	s->backends = NULL;
	s->gen = m->gen;
	s->hashed = false;
	make_vip_key(&s->key, &s->vip, s->family, s->proto, s->port);
	if (journal(m, s->name, NULL) < 0) {
		free(s);
		return NULL;
	}
	if (link_service(m, s) < 0) {
		m->n_journal--;
		free(s);
		return NULL;
	}
	m->order_valid = false;
	return s;
}

struct service *model_add_if_free(struct model *m, const struct service *s)
{
	if (model_find(m, s->name) ||
	    model_find_vip(m, &s->vip, s->family, s->proto, s->port))
		return NULL;
	return model_add(m, s);
}

static struct service *service_copy(const struct service *orig, uint64_t gen)
{
	struct service *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	*s = *orig;
	s->gen = gen;
	s->hashed = false;
	s->cap = s->n_backends;
	s->backends = NULL;
	if (s->n_backends) {
		s->backends = malloc(s->cap * sizeof(*s->backends));
		if (!s->backends) {
			free(s);
			return NULL;
		}
		memcpy(s->backends, orig->backends,
		       s->n_backends * sizeof(*s->backends));
	}
	return s;
}

/* s has taken the place of the service of the same name: the order
 * stands, with s where that one was. */
static void order_replace(struct model *m, const struct service *s)
{
	size_t lo = 0, hi = m->by_name.n;

	if (!m->order_valid)
		return;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->order[mid]->name, s->name);

		if (c == 0) {
			m->order[mid] = s;
			return;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	m->order_valid = false;
}

struct service *model_edit(struct model *m, const char *name)
{
	struct service *orig = hmap_get(&m->by_name, name, strlen(name));
	struct service *s;

	if (!orig) {
		errno = ENOENT;
		return NULL;
	}
	if (orig->gen == m->gen) {
		orig->hashed = false;
		return orig;
	}
	s = service_copy(orig, m->gen);
	if (!s || journal(m, name, orig) < 0) {
		service_free(s);
		errno = ENOMEM;
		return NULL;
	}
	/* The copy takes the original's slots, so this cannot fail. */
	unlink_service(m, orig);
	link_service(m, s);
	order_replace(m, s);
	return s;
}

int model_del(struct model *m, const char *name)
{
	struct service *s = hmap_get(&m->by_name, name, strlen(name));

	if (!s)
		return 0;
	m->order_valid = false;
	if (s->gen != m->gen) {
		if (journal(m, name, s) < 0)
			return -1;
		unlink_service(m, s);
		return 0;
	}
	unlink_service(m, s);
	service_free(s);
	return 0;
}

void model_move_vip(struct model *m, struct service *s,
		    const union ip_addr *vip, uint8_t family, uint8_t proto,
		    uint16_t port)
{
	/* The old key's slot is free again before the new key takes one, so
	 * the put below never grows the index and cannot fail. */
	hmap_del(&m->by_vip, s);
	s->vip = *vip;
	s->family = family;
	s->proto = proto;
	s->port = port;
	make_vip_key(&s->key, vip, family, proto, port);
	hmap_put(&m->by_vip, s);
}

/* The first backend whose address is not below addr. */
static uint32_t backend_lower_bound(const struct service *s,
				    const union ip_addr *addr)
{
	uint32_t lo = 0, hi = s->n_backends;

	/* lists mostly come in order, and then each goes at the end */
	if (hi > 0 && memcmp(s->backends[hi - 1].addr.v6, addr->v6, 16) < 0)
		return hi;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (memcmp(s->backends[mid].addr.v6, addr->v6, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool service_same_fields(const struct service *a, const struct service *b)
{
	return a->family == b->family && ip_addr_eq(&a->vip, &b->vip) &&
	       a->proto == b->proto && a->port == b->port &&
	       a->mode == b->mode && a->table_size == b->table_size &&
	       a->gue_port == b->gue_port;
}

struct backend *service_backend_find(const struct service *s,
				     const union ip_addr *addr)
{
	uint32_t i = backend_lower_bound(s, addr);

	if (i < s->n_backends && ip_addr_eq(&s->backends[i].addr, addr))
		return &s->backends[i];
	return NULL;
}

int service_backend_add(struct service *s, const struct backend *b)
{
	uint32_t i = backend_lower_bound(s, &b->addr);

	if (i < s->n_backends && ip_addr_eq(&s->backends[i].addr, &b->addr)) {
		errno = EEXIST;
		return -1;
	}
	if (s->n_backends == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 8;
		struct backend *grown = realloc(s->backends,
						cap * sizeof(*grown));

		if (!grown) {
			errno = ENOMEM;
			return -1;
		}
		s->backends = grown;
		s->cap = cap;
	}
	memmove(&s->backends[i + 1], &s->backends[i],
		(s->n_backends - i) * sizeof(*s->backends));
	s->backends[i] = *b;
	s->n_backends++;
	return 0;
}

int service_backends_fill(struct service *s, const struct backend *b,
			  uint32_t n)
{
	bool in_order = true;

	if (n == 0)
		return 0;
	for (uint32_t i = 1; i < n && in_order; i++)
		in_order = memcmp(b[i - 1].addr.v6, b[i].addr.v6, 16) < 0;
	if (!in_order || s->n_backends > 0) {
		for (uint32_t i = 0; i < n; i++)
			if (service_backend_add(s, &b[i]) < 0)
				return -1;
		return 0;
	}
	if (n > s->cap) {
		struct backend *grown = realloc(s->backends, n * sizeof(*grown));

		if (!grown) {
			errno = ENOMEM;
			return -1;
		}
		s->backends = grown;
		s->cap = n;
	}
	memcpy(s->backends, b, n * sizeof(*b));
	s->n_backends = n;
	return 0;
}

void service_backend_del(struct service *s, struct backend *b)
{
	uint32_t i = (uint32_t)(b - s->backends);

	memmove(&s->backends[i], &s->backends[i + 1],
		(s->n_backends - i - 1) * sizeof(*s->backends));
	s->n_backends--;
}

int service_backends_merge(const struct service *a, const struct service *b,
			   backend_pair_fn fn, void *arg)
{
	uint32_t i = 0, j = 0;
	int rc = 0;

	while (rc == 0 && (i < a->n_backends || j < b->n_backends)) {
		const struct backend *x = i < a->n_backends ? &a->backends[i] :
							     NULL;
		const struct backend *y = j < b->n_backends ? &b->backends[j] :
							     NULL;
		int c = !x ? 1 : !y ? -1 :
			memcmp(x->addr.v6, y->addr.v6, sizeof(x->addr.v6));

		rc = fn(c <= 0 ? x : NULL, c >= 0 ? y : NULL, arg);
		i += c <= 0;
		j += c >= 0;
	}
	return rc;
}

static int by_name(const void *a, const void *b)
{
	const struct service *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* json_*_new returns NULL when out of memory, and the json_*_set_new calls
 * then fail without leaking; one check per object is enough. */
static json_t *backend_to_json(const struct backend *b, uint8_t family)
{
	char addr[INET6_ADDRSTRLEN];

	return json_pack("{s:s, s:I, s:s}",
			 "addr", ip_addr_str(&b->addr, family, addr,
					     sizeof(addr)),
			 "weight", (json_int_t)b->weight,
			 "state", backend_state_name(b->state));
}

json_t *model_service_to_json(const struct service *s)
{
	char vip[INET6_ADDRSTRLEN];
	json_t *backends = json_array();

	if (!backends)
		return NULL;
	for (uint32_t i = 0; i < s->n_backends; i++) {
		if (json_array_append_new(backends,
				backend_to_json(&s->backends[i],
						s->family)) < 0) {
			json_decref(backends);
			return NULL;
		}
	}
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:o}",
			 "name", s->name,
			 "vip", ip_addr_str(&s->vip, s->family, vip,
					    sizeof(vip)),
			 "proto", s->proto == IPPROTO_TCP ? "tcp" : "udp",
			 "port", (json_int_t)s->port,
			 "mode", service_mode_name(s->mode),
			 "table_size", (json_int_t)s->table_size,
			 "gue_port", (json_int_t)s->gue_port,
			 "backends", backends);
}

const struct service **model_sorted(const struct model *cm)
{
	struct model *m = (struct model *)cm;
	size_t n = 0;

	if (m->order_valid)
		return m->order;
	if (m->by_name.n + 1 > m->order_cap) {
		const struct service **order = realloc(m->order,
			(m->by_name.n + 1) * sizeof(*order));

		if (!order)
			return NULL;
		m->order = order;
		m->order_cap = m->by_name.n + 1;
	}
	for (size_t i = 0; i <= m->by_name.mask; i++)
		if (m->by_name.slots[i].item)
			m->order[n++] = m->by_name.slots[i].item;
	qsort(m->order, n, sizeof(*m->order), by_name);
	m->order_valid = true;
	return m->order;
}

json_t *model_to_json(const struct model *m)
{
	const struct service **sorted = model_sorted(m);
	json_t *services = NULL;

	if (!sorted)
		return NULL;
	services = json_array();
	for (size_t i = 0; services && i < m->by_name.n; i++) {
		if (json_array_append_new(services,
					  model_service_to_json(sorted[i])) < 0) {
			json_decref(services);
			services = NULL;
		}
	}
	return services ? json_pack("{s:o}", "services", services) : NULL;
}
