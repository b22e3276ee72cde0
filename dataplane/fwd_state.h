/* The forwarding state the workers read: which VIPs exist, each service's
 * Maglev table and backends, and the ports' own addresses.
 *
 * A service's table (backends + Maglev entries) is immutable once
 * published; a change builds a new table and swaps the pointer, so a
 * packet sees the old table or the new one, never a mix. */
#ifndef FULCRUM_FWD_STATE_H
#define FULCRUM_FWD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_hash.h>

#include "config.h"
#include "ip_addr.h"
#include "neigh.h"

struct backend {
	union ip_addr addr;
	uint8_t family;
	uint8_t state;          /* enum backend_state */
	uint32_t weight;
	uint32_t neigh;         /* next hop in the neighbour table */
	uint32_t stat_id;       /* index into worker_counters.backend */
	uint32_t removed_at;    /* BACKEND_REMOVED: when, in dataplane seconds */
	struct rte_ether_addr mac;  /* static next hop, or zero */
};

struct service_table {
	uint32_t maglev_size;
	uint32_t n_backends;
	uint32_t *maglev;       /* backend slot per entry */
	struct backend backends[];
};

struct vip_key {
	union ip_addr addr;
	rte_be16_t port;        /* 0 = a service on every port */
	uint8_t proto;
	uint8_t family;
	uint8_t pad[4];         /* zero: keys hash as plain bytes */
};

_Static_assert(sizeof(struct vip_key) == 24, "vip_key has no hidden padding");
_Static_assert(offsetof(struct vip_key, port) + sizeof(uint64_t) ==
	       sizeof(struct vip_key), "vip_key_eq reads the tail as one word");

struct service {
	struct vip_key vip;
	uint32_t id;            /* also its index into worker counters */
	uint8_t mode;           /* enum fwd_mode */
	rte_be16_t gue_port;
	char name[CONFIG_NAME_LEN];
	struct service_table *table;
};

/* What the pipeline needs to know about a VIP address as a whole: which
 * service takes its fragments and its port-less traffic. */
struct vip_addr {
	struct service *fragments_tcp;
	struct service *fragments_udp;
	struct service *any_port_tcp;
	struct service *any_port_udp;
};

struct fwd_port {
	struct rte_ether_addr mac;
	struct ip_prefix addr4;     /* len 0: none */
	struct ip_prefix addr6;
	union ip_addr gateway4;     /* zero: none */
	union ip_addr gateway6;
	uint16_t mtu;
	bool has_exception;
};

/* Services live longer than any one state: a state that replaces another
 * (because a VIP came or went) refers to the same service objects for the
 * services that stayed, so their counters, ids and tables carry over. */
struct fwd_state {
	struct rte_hash *by_vip;    /* vip_key -> struct service * */
	struct rte_hash *vip_addrs; /* neigh_key -> struct vip_addr * */
	uint32_t n_services;
	uint32_t capacity;          /* max_services */
	uint32_t next_id;           /* where the search for a free id starts */
	uint32_t max_backends;      /* stat ids, over all services */
	uint32_t slot_reuse_s;      /* a removed backend's slot stays free this long */
	struct service **services;  /* by id; NULL where free */
	struct vip_addr *addrs;
	uint16_t n_ports;
	struct fwd_port ports[CONFIG_MAX_PORTS];
	struct neigh_table *neigh;  /* shared, outlives any one state */
	uint32_t hash_seed;
};

/* Builds the state for cfg's boot-time services. ports[i] describes port
 * index i; neighbours are added to neigh. Returns NULL with err filled. */
struct fwd_state *fwd_state_create(const struct dataplane_config *cfg,
				   const struct fwd_port *ports,
				   uint16_t n_ports, struct neigh_table *neigh,
				   char *err, size_t err_len);

/* A state with no services, with cfg's limits and these ports. */
struct fwd_state *fwd_state_empty(const struct dataplane_config *cfg,
				  const struct fwd_port *ports, uint16_t n_ports,
				  struct neigh_table *neigh);

/* Adds svc (its id already chosen) to s's indexes. Returns 0 or -1. */
int fwd_state_index(struct fwd_state *s, struct service *svc, char *err,
		    size_t err_len);

/* Frees s's indexes only; the services may live on in another state. */
void fwd_state_free_index(struct fwd_state *s);

/* Frees s and every service in it. */
void fwd_state_free(struct fwd_state *s);

void service_free(struct service *svc);

/* The neighbour entry backend b of a service in `mode` is reached through:
 * itself when on a port's subnet, else (encapsulating modes) a gateway. */
int fwd_resolve_next_hop(const struct fwd_state *s, const char *service_name,
			 enum fwd_mode mode, struct backend *b, char *err,
			 size_t err_len);

struct maglev_scratch;

/* A table for n backends (copied) whose Maglev entries go to the active
 * ones by weight. Draining, down and removed backends keep their slots,
 * so flows that remember a slot still find their backend. */
struct service_table *service_table_create(const struct backend *backends,
					   uint32_t n, uint32_t maglev_size,
					   struct maglev_scratch *scratch);
void service_table_free(struct service_table *t);

/* Publishes t as svc's table and returns the old one, which the caller
 * frees once no worker can still be reading it. */
static inline struct service_table *service_table_swap(struct service *svc,
						       struct service_table *t)
{
	return __atomic_exchange_n(&svc->table, t, __ATOMIC_ACQ_REL);
}

static inline struct service_table *service_table_get(const struct service *s)
{
	return __atomic_load_n(&s->table, __ATOMIC_ACQUIRE);
}

static inline void vip_key_from_flow(struct vip_key *v, const union ip_addr *dst,
				     rte_be16_t port, uint8_t proto,
				     uint8_t family)
{
	v->addr = *dst;
	v->port = port;
	v->proto = proto;
	v->family = family;
	memset(v->pad, 0, sizeof(v->pad));
}

/* Three word compares where memcmp() would be a call. */
static inline bool vip_key_eq(const struct vip_key *a, const struct vip_key *b)
{
	const size_t tail = offsetof(struct vip_key, port);
	uint64_t x, y;

	memcpy(&x, (const uint8_t *)a + tail, sizeof(x));
	memcpy(&y, (const uint8_t *)b + tail, sizeof(y));
	return ((a->addr.w[0] ^ b->addr.w[0]) | (a->addr.w[1] ^ b->addr.w[1]) |
		(x ^ y)) == 0;
}

/* The service of s with this id if it is the one s indexes under key k,
 * else NULL. A remembered id is only a guess: services come and go, and
 * an id is reused once its service is gone. VIP keys are unique within a
 * state, so a live service whose own key is k is what by_vip holds for k. */
static inline struct service *fwd_service_for(const struct fwd_state *s,
					      uint32_t id,
					      const struct vip_key *k)
{
	struct service *svc;

	if (id >= s->capacity)
		return NULL;
	svc = s->services[id];
	return svc && vip_key_eq(&svc->vip, k) ? svc : NULL;
}

/* The VIP address record for dst, or NULL if dst is no VIP. */
struct vip_addr *fwd_vip_addr(const struct fwd_state *s,
			      const union ip_addr *dst, uint8_t family);

/* Whether addr is one of port's own host addresses. */
bool fwd_port_owns(const struct fwd_port *p, const union ip_addr *addr,
		   uint8_t family);

#endif
