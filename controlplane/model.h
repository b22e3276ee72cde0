/* The control plane's in-memory copy of the service state: what the store
 * persists, what a change is checked and applied against, and what the log
 * replays into. Changes go through a journal so that a change that fails
 * half-way can be undone without copying the whole state. */
#ifndef FULCRUM_MODEL_H
#define FULCRUM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hmap.h"
#include "ip_addr.h"

#define SERVICE_NAME_LEN 32          /* as CONFIG_NAME_LEN, with the NUL */
#define SERVICE_TABLE_SIZE_MIN 1009u
#define SERVICE_TABLE_SIZE_MAX 1048573u
#define SERVICE_TABLE_SIZE_DEFAULT 65537u
#define SERVICE_GUE_PORT_DEFAULT 6080u

enum service_mode { MODE_L2DSR, MODE_IPIP, MODE_GUE, MODE_COUNT };
enum backend_state { BACKEND_ACTIVE, BACKEND_DRAINING, BACKEND_DOWN,
		     BACKEND_STATE_COUNT };

struct backend {
	union ip_addr addr;
	uint16_t weight;                /* 1..65535 */
	uint8_t state;                  /* enum backend_state */
};

/* Family, protocol, port and address: what makes two services collide. */
struct vip_key {
	uint8_t family;
	uint8_t proto;
	uint8_t port[2];                /* big-endian, so the key has no padding */
	uint8_t addr[16];
};

struct service {
	char name[SERVICE_NAME_LEN];
	union ip_addr vip;
	uint8_t family;                 /* AF_INET or AF_INET6, VIP and backends */
	uint8_t proto;                  /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;                  /* 0 = every port */
	uint8_t mode;                   /* enum service_mode */
	uint32_t table_size;
	uint16_t gue_port;
	uint32_t n_backends, cap;
	struct backend *backends;       /* by address bytes: the Maglev input
					 * order */
	struct vip_key key;             /* as last indexed */
	uint64_t gen;                   /* the change that made this copy */
	/* SHA-256 of the service's canonical JSON, kept for the state's
	 * digest (digest.c) while `hashed`; every copy the model hands out
	 * to be modified starts without it */
	unsigned char hash[32];
	bool hashed;
};

struct journal_entry {
	char name[SERVICE_NAME_LEN];
	struct service *orig;           /* NULL: the name was free */
};

struct model {
	struct hmap by_name;
	struct hmap by_vip;
	uint64_t gen;                   /* the change under way */
	struct journal_entry *journal;
	size_t n_journal, journal_cap;
	/* The services by name, kept between changes that add or remove
	 * none, so that a digest after a change of one service of ten
	 * thousand does not sort them all again. Bookkeeping, not state:
	 * model_sorted fills it in even for a const model. */
	const struct service **order;
	size_t order_cap;
	bool order_valid;
};

struct model *model_new(void);
void model_free(struct model *m);

const char *service_mode_name(unsigned int mode);
const char *backend_state_name(unsigned int state);
int service_mode_parse(const char *text);
int backend_state_parse(const char *text);

/* A change: model_begin, then any of the mutators below, then either
 * model_commit (keep) or model_rollback (back to the state at begin). */
void model_begin(struct model *m);
void model_commit(struct model *m);
void model_rollback(struct model *m);

/* The service names the change under way touched, some maybe twice; the
 * name may be gone from the model now. */
size_t model_n_touched(const struct model *m);
const char *model_touched(const struct model *m, size_t i);
/* What touched name i was before, when it is the name's first entry: the
 * service, or NULL if the name was free. A later entry for the same name
 * holds what it was part-way through the change. */
const struct service *model_touched_before(const struct model *m, size_t i);

const struct service *model_find(const struct model *m, const char *name);
const struct service *model_find_vip(const struct model *m,
				     const union ip_addr *vip, uint8_t family,
				     uint8_t proto, uint16_t port);

/* Takes a copy of s, whose name and VIP must be free, with no backends.
 * Returns the model's copy, or NULL when out of memory. */
struct service *model_add(struct model *m, const struct service *s);
/* model_add for a service read back from storage, which may clash: NULL
 * also where its name or VIP is taken. */
struct service *model_add_if_free(struct model *m, const struct service *s);
/* A copy of the named service that the change under way may modify; NULL
 * when there is no such service or no memory (errno tells which). */
struct service *model_edit(struct model *m, const char *name);
/* Returns 0, or -1 when out of memory. */
int model_del(struct model *m, const char *name);
/* Moves s, from model_edit, to another VIP that must be free. */
void model_move_vip(struct model *m, struct service *s,
		    const union ip_addr *vip, uint8_t family, uint8_t proto,
		    uint16_t port);

/* Whether a and b agree on everything but name and backends. */
bool service_same_fields(const struct service *a, const struct service *b);

struct backend *service_backend_find(const struct service *s,
				     const union ip_addr *addr);
/* Returns 0, or -1 with errno EEXIST or ENOMEM. */
int service_backend_add(struct service *s, const struct backend *b);
/* Adds n backends at once: in one copy when they are in address order
 * and s has none yet (a service's image, say), else one by one. Returns
 * 0, or -1 with errno EEXIST or ENOMEM. */
int service_backends_fill(struct service *s, const struct backend *b,
			  uint32_t n);
void service_backend_del(struct service *s, struct backend *b);

/* Walks the backends of two services (two states of one, say) as one
 * list by address: fn for each address either holds, with a's backend
 * and b's, NULL where one has none. Both arrays are by address bytes, so
 * this is one merge. Returns 0, or the first non-zero fn returned. */
typedef int (*backend_pair_fn)(const struct backend *a,
			       const struct backend *b, void *arg);
int service_backends_merge(const struct service *a, const struct service *b,
			   backend_pair_fn fn, void *arg);

/* The services by name; n = m->by_name.n. The model's own array, valid
 * until the next change: not to be freed. NULL when out of memory. */
const struct service **model_sorted(const struct model *m);

/* One service in the state's JSON shape (store.h); NULL when out of
 * memory. */
json_t *model_service_to_json(const struct service *s);

/* {"services": [...]}, sorted as the dataplane wants it; NULL when out of
 * memory. */
json_t *model_to_json(const struct model *m);

/* The state's digest, in hex: SHA-256 over each service in name order,
 * as its name, a NUL and the SHA-256 of its JSON object as
 * json_dumps(..., JSON_SORT_KEYS | JSON_COMPACT) writes it; of nothing for
 * the empty state. Two levels, so that a change costs the hashing of the
 * services it touched and 64 bytes or so for each other one, not the
 * rehashing of a million backends. Returns 0, or -1 when out of memory. */
int model_digest(const struct model *m, char out[65]);

#endif
