#include "neigh.h"

#include <errno.h>
#include <stdio.h>

#include <rte_hash_crc.h>
#include <rte_malloc.h>

static uint64_t pack(const struct rte_ether_addr *mac, uint16_t port)
{
	uint64_t v = NEIGH_RESOLVED | ((uint64_t)(port & 0xff) << 48);

	for (int i = 0; i < RTE_ETHER_ADDR_LEN; i++)
		v |= (uint64_t)mac->addr_bytes[i] << (8 * i);
	return v;
}

static void key_of(struct neigh_key *k, const union ip_addr *addr,
		   uint8_t family)
{
	memset(k, 0, sizeof(*k));
	k->addr = *addr;
	k->family = family;
}

struct neigh_table *neigh_table_create(const char *name, uint32_t capacity,
				       int socket)
{
	struct rte_hash_parameters p = {
		.name = name,
		.entries = capacity,
		.key_len = sizeof(struct neigh_key),
		.hash_func = rte_hash_crc,
		.socket_id = socket,
		/* workers read while the control side adds */
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	struct neigh_table *t = rte_zmalloc_socket(name, sizeof(*t), 0, socket);

	if (!t)
		return NULL;
	t->capacity = capacity;
	t->entries = rte_zmalloc_socket(name, sizeof(*t->entries) * capacity,
					RTE_CACHE_LINE_SIZE, socket);
	t->index = rte_hash_create(&p);
	if (!t->entries || !t->index) {
		neigh_table_free(t);
		return NULL;
	}
	return t;
}

void neigh_table_free(struct neigh_table *t)
{
	if (!t)
		return;
	rte_hash_free(t->index);
	rte_free(t->entries);
	rte_free(t);
}

uint32_t neigh_add(struct neigh_table *t, const union ip_addr *addr,
		   uint8_t family, uint16_t port)
{
	struct neigh_key k;
	void *data;
	uint32_t idx;

	key_of(&k, addr, family);
	if (rte_hash_lookup_data(t->index, &k, &data) >= 0)
		return (uint32_t)(uintptr_t)data;
	idx = t->count;
	if (idx == t->capacity)
		return NEIGH_NONE;
	t->entries[idx].key = k;
	t->entries[idx].port = port;
	/* the entry is complete before the index makes it visible */
	if (rte_hash_add_key_data(t->index, &k, (void *)(uintptr_t)idx) < 0)
		return NEIGH_NONE;
	__atomic_store_n(&t->count, idx + 1, __ATOMIC_RELEASE);
	return idx;
}

void neigh_set_static(struct neigh_table *t, uint32_t idx,
		      const struct rte_ether_addr *mac, uint16_t port)
{
	t->entries[idx].is_static = true;
	t->entries[idx].port = port;
	__atomic_store_n(&t->entries[idx].mac_port, pack(mac, port),
			 __ATOMIC_RELAXED);
}

bool neigh_learn(struct neigh_table *t, const union ip_addr *addr,
		 uint8_t family, const struct rte_ether_addr *mac,
		 uint16_t port, uint32_t now)
{
	struct neigh_key k;
	struct neigh_entry *e;
	void *data;

	key_of(&k, addr, family);
	if (rte_hash_lookup_data(t->index, &k, &data) < 0)
		return false;
	e = &t->entries[(uintptr_t)data];
	if (e->is_static || !rte_is_unicast_ether_addr(mac))
		return true;
	__atomic_store_n(&e->mac_port, pack(mac, port), __ATOMIC_RELAXED);
	__atomic_store_n(&e->learned_at, now, __ATOMIC_RELAXED);
	return true;
}

bool neigh_probe_due(struct neigh_table *t, uint32_t idx, uint32_t now)
{
	struct neigh_entry *e = &t->entries[idx];

	if (e->is_static)
		return false;
	if ((__atomic_load_n(&e->mac_port, __ATOMIC_RELAXED) & NEIGH_RESOLVED) &&
	    now - __atomic_load_n(&e->learned_at, __ATOMIC_RELAXED) <=
	    NEIGH_STALE_S) {
		/* heard from: the next silence starts the count afresh */
		e->unanswered = 0;
		return false;
	}
	return (int32_t)(now - e->probe_at) >= 0;
}

void neigh_probe_sent(struct neigh_table *t, uint32_t idx, uint32_t now)
{
	struct neigh_entry *e = &t->entries[idx];
	uint32_t wait = 1;

	if (e->unanswered < UINT16_MAX)
		e->unanswered++;
	/* three a second apart, then 2, 4, 8 and 16 s, then the most */
	if (e->unanswered >= 3)
		wait = RTE_MIN(1u << RTE_MIN(e->unanswered - 2u, 5u),
			       (uint32_t)NEIGH_PROBE_MAX_S);
	e->probe_at = now + wait;
}
