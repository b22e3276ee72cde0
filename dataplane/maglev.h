/* Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights.
 * A table of a prime number of entries maps a flow hash to a backend slot.
 * The build is deterministic: the same backends (by key, weight and slot,
 * in any order) and table size give a byte-identical table on every host. */
#ifndef FULCRUM_MAGLEV_H
#define FULCRUM_MAGLEV_H

#include <stdbool.h>
#include <stdint.h>

#define MAGLEV_DEFAULT_SIZE 65537u
#define MAGLEV_MAX_SIZE 1048573u     /* largest prime below 2^20 */
#define MAGLEV_NO_BACKEND UINT32_MAX
#define MAGLEV_MAX_BACKENDS (1u << 24)

struct maglev_backend {
	uint64_t key;      /* stable identity, e.g. maglev_backend_key() */
	uint32_t weight;   /* 0 = takes no entries (draining, down) */
	uint32_t slot;     /* what the table stores for this backend */
};

/* A stable identity for a backend from its address and port, so that the
 * permutation of a backend does not depend on where it sits in a list. */
uint64_t maglev_backend_key(const void *addr16, uint16_t port);

bool maglev_size_is_valid(uint32_t size);

/* Scratch space that maglev_build() may reuse between builds; sized for
 * `max_backends` backends and tables up to `max_size` entries. */
struct maglev_scratch;
struct maglev_scratch *maglev_scratch_create(uint32_t max_backends,
					     uint32_t max_size);
void maglev_scratch_free(struct maglev_scratch *s);

/* Fills table[0..size) with backend slots. Entries get MAGLEV_NO_BACKEND
 * only when no backend has a weight above zero. Returns 0, or -EINVAL for
 * a size that is not a prime within bounds or too many backends. */
int maglev_build(uint32_t *table, uint32_t size,
		 const struct maglev_backend *backends, uint32_t n,
		 struct maglev_scratch *scratch);

/* Scales the hash onto [0, size) by a multiply and a shift (Lemire's
 * fastrange) rather than a division: as uniform for a well-mixed 32-bit
 * hash, and as much the same on every host. */
static inline uint32_t maglev_lookup(const uint32_t *table, uint32_t size,
				     uint32_t flow_hash)
{
	return table[((uint64_t)flow_hash * size) >> 32];
}

#endif
