/* The 5-tuple that identifies a flow, and the seeded hash that picks its
 * backend. The hash depends only on the tuple and the seed (CRC32C is the
 * same function in hardware and in software), so every balancer host with
 * the same seed and backends sends a flow to the same backend. */
#ifndef FULCRUM_FLOW_H
#define FULCRUM_FLOW_H

#include <stdint.h>

#include <rte_hash_crc.h>

#include "ip_addr.h"

struct flow_key {
	union ip_addr src;
	union ip_addr dst;
	rte_be16_t sport;
	rte_be16_t dport;
	uint8_t proto;
	uint8_t family;
	uint8_t pad[2];   /* always zero: the key is hashed and compared whole */
} __rte_aligned(8);

_Static_assert(sizeof(struct flow_key) == 40, "flow_key is hashed as 5 words");

/* CRC32C alone is linear; the finaliser spreads its bits so that the
 * value taken modulo a Maglev table size is uniform. */
static inline uint32_t flow_hash_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static inline uint32_t flow_hash(const struct flow_key *k, uint32_t seed)
{
	const uint64_t *w = (const uint64_t *)k;
	uint32_t h = seed;

	h = rte_hash_crc_8byte(w[0], h);
	h = rte_hash_crc_8byte(w[1], h);
	h = rte_hash_crc_8byte(w[2], h);
	h = rte_hash_crc_8byte(w[3], h);
	h = rte_hash_crc_8byte(w[4], h);
	return flow_hash_mix(h);
}

/* rte_hash compares 40-byte keys with memcmp(); five word compares are
 * several times cheaper. Returns 0 when equal, as rte_hash wants. */
static inline int flow_key_cmp(const void *a, const void *b, size_t len)
{
	const uint64_t *x = a, *y = b;

	(void)len;
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		(x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

#endif
