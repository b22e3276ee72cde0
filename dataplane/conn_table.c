#include "conn_table.h"

#include <rte_malloc.h>
#include <rte_prefetch.h>

/* Flows are added and looked up with the hash the pipeline has already
 * computed; rte_hash calls this only to find a key by its position. */
static uint32_t conn_key_hash(const void *key, uint32_t len, uint32_t seed)
{
	(void)len;
	return flow_hash(key, seed);
}

struct conn_table *conn_table_create(const char *name, uint32_t capacity,
				     uint32_t tcp_timeout_s,
				     uint32_t udp_timeout_s, uint32_t hash_seed,
				     int socket)
{
	/* rte_hash makes rte_align32pow2(entries) / 8 buckets of 8 slots and
	 * entries + 1 key slots. Buckets for twice the flows kept: a key then
	 * almost always finds a free place in its own two buckets, where a
	 * full table would run its cuckoo search (microseconds) for every new
	 * flow. Key slots for hardly more than the flows kept: rte_hash hands
	 * out freed key slots in the order they were freed, so with few spare
	 * ones a new flow takes the slot (and entry) that an eviction has just
	 * brought into cache, rather than one freed a million flows ago. */
	uint32_t bucket_slots = rte_align32pow2(2 * capacity);
	struct rte_hash_parameters p = {
		.name = name,
		.entries = RTE_MAX(capacity, bucket_slots / 2) + 1,
		.key_len = sizeof(struct flow_key),
		.hash_func = conn_key_hash,
		/* rte_hash rehashes a key to find it by position: it must
		 * get the hash the pipeline inserted it with */
		.hash_func_init_val = hash_seed,
		.socket_id = socket,
		/* fill to capacity instead of failing early on a full bucket */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct conn_table *t;
	int32_t max_id;

	if (capacity == 0 || capacity > UINT32_MAX / 2)
		return NULL;
	t = rte_zmalloc_socket(name, sizeof(*t), 0, socket);
	if (!t)
		return NULL;
	t->capacity = capacity;
	t->tcp_timeout = tcp_timeout_s;
	t->udp_timeout = udp_timeout_s;
	t->h = rte_hash_create(&p);
	if (!t->h)
		goto fail;
	rte_hash_set_cmp_func(t->h, flow_key_cmp);
	/* positions run from 0 to max_key_id - 1 (rte_hash keeps slot 0
	 * of its key store as a sentinel) */
	max_id = rte_hash_max_key_id(t->h);
	if (max_id <= 0)
		goto fail;
	t->n_slots = (uint32_t)max_id;
	t->entries = rte_zmalloc_socket(name, sizeof(*t->entries) * t->n_slots,
					RTE_CACHE_LINE_SIZE, socket);
	t->keys = rte_zmalloc_socket(name, sizeof(*t->keys) * t->n_slots,
				     RTE_CACHE_LINE_SIZE, socket);
	if (!t->entries || !t->keys)
		goto fail;
	return t;
fail:
	conn_table_free(t);
	return NULL;
}

void conn_table_free(struct conn_table *t)
{
	if (!t)
		return;
	rte_hash_free(t->h);
	rte_free(t->entries);
	rte_free(t->keys);
	rte_free(t);
}

void conn_remove(struct conn_table *t, int32_t pos)
{
	rte_hash_del_key_with_hash(t->h, t->keys[pos], t->entries[pos].hash);
	t->entries[pos].deadline = 0;
}

static uint32_t next_slot(struct conn_table *t)
{
	uint32_t pos = t->cursor;

	t->cursor = pos + 1 == t->n_slots ? 0 : pos + 1;
	return pos;
}

/* The next victim: the first expired entry after the cursor, or else the
 * one closest to its deadline among the next few live ones. Its slot is
 * marked empty at once, so that the next pick passes it by; CONN_NONE if
 * no entry is left to pick. */
static uint32_t pick_victim(struct conn_table *t, uint32_t now,
			    struct worker_counters *cnt)
{
	uint32_t victim = CONN_NONE, best = UINT32_MAX, seen = 0;

	for (uint32_t i = 0; i < t->n_slots && seen < CONN_EVICT_SCAN; i++) {
		uint32_t pos = next_slot(t);
		uint32_t d = t->entries[pos].deadline;

		if (d == 0)
			continue;
		seen++;
		if (d < best) {
			best = d;
			victim = pos;
		}
		if ((int32_t)(d - now) <= 0)
			break;
	}
	if (victim == CONN_NONE)
		return CONN_NONE;
	if ((int32_t)(best - now) <= 0)
		cnt->conn_expired++;
	else
		cnt->conn_evicted++;
	t->entries[victim].deadline = 0;
	return victim;
}

/* The slots the next `victims` picks will most likely weigh, entries and
 * keys: a full table has a live entry in nearly every slot. The cursor
 * walks them in order, but too few at a time for the hardware prefetcher
 * to run ahead. */
static void prefetch_scan(const struct conn_table *t, uint32_t victims)
{
	const uint32_t step = RTE_CACHE_LINE_SIZE / sizeof(struct conn_entry);
	uint64_t span = (uint64_t)victims * CONN_EVICT_SCAN;
	uint32_t pos = t->cursor;

	for (uint64_t i = 0; i < RTE_MIN(span, t->n_slots); i += step) {
		rte_prefetch0(&t->entries[pos]);
		rte_prefetch0(&t->keys[pos]);
		pos = pos + step < t->n_slots ? pos + step : pos + step - t->n_slots;
	}
}

void conn_make_room(struct conn_table *t, uint32_t n, uint32_t now,
		    struct worker_counters *cnt)
{
	const void *keys[RTE_HASH_LOOKUP_BULK_MAX];
	hash_sig_t hashes[RTE_HASH_LOOKUP_BULK_MAX];
	int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];
	uint32_t count = conn_count(t);
	uint32_t excess = count + (uint64_t)n > t->capacity ?
			  (uint32_t)(count + (uint64_t)n - t->capacity) : 0;

	excess = RTE_MIN(excess, count);
	if (excess > 0)
		prefetch_scan(t, excess);
	while (excess > 0) {
		uint32_t k = 0;

		while (k < RTE_MIN(excess, (uint32_t)RTE_HASH_LOOKUP_BULK_MAX)) {
			uint32_t v = pick_victim(t, now, cnt);

			if (v == CONN_NONE)
				break;
			keys[k] = t->keys[v];
			hashes[k] = t->entries[v].hash;
			k++;
		}
		if (k == 0)
			return;
		/* rte_hash pipelines a bulk lookup: it fetches every victim's
		 * buckets, then every victim's key, each round's misses
		 * overlapping, where one delete after another would wait for
		 * each miss in turn */
		rte_hash_lookup_with_hash_bulk(t->h, keys, hashes, k, pos);
		for (uint32_t i = 0; i < k; i++)
			rte_hash_del_key_with_hash(t->h, keys[i], hashes[i]);
		excess -= k;
	}
}

void conn_insert(struct conn_table *t, const struct flow_key *key,
		 uint32_t hash, uint32_t service, uint32_t backend,
		 uint32_t now, struct worker_counters *cnt)
{
	int32_t pos;

	conn_make_room(t, 1, now, cnt);
	pos = rte_hash_add_key_with_hash(t->h, key, hash);
	if (pos < 0)
		return;
	/* A position's key lives at the same place in rte_hash's store for
	 * the life of the table, so each position is asked for it once. */
	if (!t->keys[pos] &&
	    rte_hash_get_key_with_position(t->h, pos, (void **)&t->keys[pos]) < 0)
		return;
	t->entries[pos] = (struct conn_entry){
		.service = service,
		.backend = backend,
		.deadline = now + conn_timeout(t, key->proto),
		.hash = hash,
	};
	cnt->conn_new++;
}

void conn_sweep(struct conn_table *t, uint32_t now, uint32_t budget,
		struct worker_counters *cnt)
{
	while (budget--) {
		uint32_t pos = next_slot(t);
		uint32_t d = t->entries[pos].deadline;

		if (d != 0 && (int32_t)(d - now) < 0) {
			conn_remove(t, (int32_t)pos);
			cnt->conn_expired++;
		}
	}
}

uint32_t conn_count(const struct conn_table *t)
{
	return (uint32_t)rte_hash_count(t->h);
}
