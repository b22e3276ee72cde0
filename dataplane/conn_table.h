/* Per-worker connection table: remembers which backend each flow went to,
 * so that an established flow keeps its backend when the backend set
 * changes. One table per worker lcore and flows pinned to workers by RSS,
 * so the table has a single user and needs no locks.
 *
 * Bounded: when full, the oldest of a few entries near a moving cursor
 * gives way (counted), so new flows are never refused. Room is made for a
 * burst's new flows at once, so that the victims' cache misses overlap.
 * Idle entries are swept a few at a time between bursts. */
#ifndef FULCRUM_CONN_TABLE_H
#define FULCRUM_CONN_TABLE_H

#include <netinet/in.h>
#include <stdint.h>

#include <rte_hash.h>

#include "counters.h"
#include "flow.h"

#define CONN_NONE UINT32_MAX
#define CONN_EVICT_SCAN 8      /* live entries weighed to choose a victim */

struct conn_entry {
	uint32_t service;      /* service id the flow was balanced by */
	uint32_t backend;      /* backend slot within that service */
	uint32_t deadline;     /* seconds; 0 = slot empty */
	uint32_t hash;         /* flow hash, to delete without rehashing */
};

struct conn_table {
	struct rte_hash *h;
	struct conn_entry *entries;   /* indexed by rte_hash key position */
	/* Also by position, the key in rte_hash's own store (NULL until the
	 * position is first used): a removal reaches it without
	 * rte_hash_get_key_with_position(), which rehashes the key and looks
	 * it up again, one cache miss after the other. Apart from the
	 * entries, which packets of established flows read alone. */
	const struct flow_key **keys;
	uint32_t capacity;            /* flows kept at most */
	uint32_t n_slots;             /* positions, a little over capacity */
	uint32_t cursor;              /* sweep and eviction position */
	uint32_t tcp_timeout;
	uint32_t udp_timeout;
};

struct conn_table *conn_table_create(const char *name, uint32_t capacity,
				     uint32_t tcp_timeout_s,
				     uint32_t udp_timeout_s, uint32_t hash_seed,
				     int socket);
void conn_table_free(struct conn_table *t);

/* Looks up n (<= RTE_HASH_LOOKUP_BULK_MAX) flows at once, so that their
 * cache misses overlap. pos[i] is the entry position or negative. */
static inline void conn_lookup_bulk(const struct conn_table *t,
				    const struct flow_key **keys,
				    hash_sig_t *hashes, uint32_t n,
				    int32_t *pos)
{
	rte_hash_lookup_with_hash_bulk(t->h, (const void **)keys, hashes, n,
				       pos);
}

static inline uint32_t conn_timeout(const struct conn_table *t, uint8_t proto)
{
	return proto == IPPROTO_TCP ? t->tcp_timeout : t->udp_timeout;
}

/* Frees entries until n more flows fit: expired ones first, else the
 * closest to their deadlines (see CONN_EVICT_SCAN), each counted. */
void conn_make_room(struct conn_table *t, uint32_t n, uint32_t now,
		    struct worker_counters *cnt);

/* Records a new flow; evicts if the table is full. Never fails for a
 * table with capacity > 0. */
void conn_insert(struct conn_table *t, const struct flow_key *key,
		 uint32_t hash, uint32_t service, uint32_t backend,
		 uint32_t now, struct worker_counters *cnt);

/* Drops the flow at pos (its backend is gone, or it ended). */
void conn_remove(struct conn_table *t, int32_t pos);

/* Expires idle entries among the next `budget` slots. */
void conn_sweep(struct conn_table *t, uint32_t now, uint32_t budget,
		struct worker_counters *cnt);

uint32_t conn_count(const struct conn_table *t);

#endif
