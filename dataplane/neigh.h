/* Next-hop MAC addresses, learned by the dataplane itself from ARP and
 * neighbour discovery, so that no operator types in a backend's MAC.
 *
 * The control side adds entries (one writer); workers look them up and
 * record what they learn with a single atomic 64-bit store, so any worker
 * may learn any neighbour without a lock, and the last answer wins. */
#ifndef FULCRUM_NEIGH_H
#define FULCRUM_NEIGH_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_hash.h>

#include "ip_addr.h"

#define NEIGH_NONE UINT32_MAX
#define NEIGH_STALE_S 60      /* ask again after this long without news */
#define NEIGH_PROBE_MAX_S 30  /* the longest wait between two probes of a
			       * neighbour that does not answer */

struct neigh_key {
	union ip_addr addr;
	uint8_t family;
	uint8_t pad[7];        /* zero: keys hash as plain bytes */
};

_Static_assert(sizeof(struct neigh_key) == 24, "neigh_key has no hidden padding");

/* mac in bits 0..47, port index in bits 48..55, bit 63 = resolved */
#if RTE_BYTE_ORDER != RTE_LITTLE_ENDIAN
#error "neigh_get takes the MAC as the low bytes of a little-endian word"
#endif
#define NEIGH_RESOLVED (1ull << 63)

struct neigh_entry {
	struct neigh_key key;
	uint16_t port;            /* where to ask: the port on its subnet */
	bool is_static;
	uint64_t mac_port;        /* atomic; 0 = not resolved */
	uint32_t learned_at;      /* atomic; seconds, for staleness */
	/* the prober's own (one thread): when to ask next, and how many
	 * asks have gone unanswered */
	uint32_t probe_at;
	uint16_t unanswered;
};

struct neigh_table {
	struct rte_hash *index;   /* neigh_key -> position in entries */
	uint32_t capacity;
	uint32_t count;           /* atomic; entries published so far */
	struct neigh_entry *entries;
};

struct neigh_table *neigh_table_create(const char *name, uint32_t capacity,
				       int socket);
void neigh_table_free(struct neigh_table *t);

/* Control side: returns the index of addr's entry, adding it if new. */
uint32_t neigh_add(struct neigh_table *t, const union ip_addr *addr,
		   uint8_t family, uint16_t port);
void neigh_set_static(struct neigh_table *t, uint32_t idx,
		      const struct rte_ether_addr *mac, uint16_t port);

/* Worker side: records a MAC heard from addr on port, if addr is a
 * neighbour we care about. Returns true if it was. */
bool neigh_learn(struct neigh_table *t, const union ip_addr *addr,
		 uint8_t family, const struct rte_ether_addr *mac,
		 uint16_t port, uint32_t now);

/* Worker side: the resolved MAC and port of entry idx, or false. */
static inline bool neigh_get(const struct neigh_table *t, uint32_t idx,
			     struct rte_ether_addr *mac, uint16_t *port)
{
	uint64_t v = __atomic_load_n(&t->entries[idx].mac_port,
				     __ATOMIC_RELAXED);

	if (!(v & NEIGH_RESOLVED))
		return false;
	/* the MAC lies in the low bytes of a little-endian word: copied
	 * whole, not byte by byte, so that the header write that reads it
	 * back gets it forwarded from these stores */
	memcpy(mac, &v, RTE_ETHER_ADDR_LEN);
	*port = (uint16_t)((v >> 48) & 0xff);
	return true;
}

/* Prober side: whether entry idx is to be asked now (ARP request or
 * neighbour solicitation), being unresolved, or resolved but not heard
 * from in NEIGH_STALE_S. A neighbour that does not answer is asked three
 * times a second apart, as Linux does, then ever less often, up to
 * NEIGH_PROBE_MAX_S apart: a million dead backends must not cost a
 * million requests a second. One that comes back is learned from its own
 * ARP or NDP as soon as it speaks, and asked again within that time. */
bool neigh_probe_due(struct neigh_table *t, uint32_t idx, uint32_t now);

/* Prober side: entry idx was asked at now. */
void neigh_probe_sent(struct neigh_table *t, uint32_t idx, uint32_t now);

#endif
