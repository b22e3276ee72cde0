#include "fwd_state.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "fwd_update.h"
#include "maglev.h"

static struct rte_hash *make_index(const char *name, uint32_t entries,
				   uint32_t key_len)
{
	struct rte_hash_parameters p = {
		.name = name,
		.entries = entries < 8 ? 8 : entries,
		.key_len = key_len,
		.hash_func = rte_hash_crc,
		.socket_id = SOCKET_ID_ANY,
		/* no reader-writer flags: an index is written only while its
		 * state is private, and a change of VIPs publishes a whole new
		 * state, so the workers get rte_hash's fastest lookups */
	};

	return rte_hash_create(&p);
}

struct vip_addr *fwd_vip_addr(const struct fwd_state *s,
			      const union ip_addr *dst, uint8_t family)
{
	struct neigh_key k = { .addr = *dst, .family = family };
	void *data;

	if (rte_hash_lookup_data(s->vip_addrs, &k, &data) < 0)
		return NULL;
	return data;
}

bool fwd_port_owns(const struct fwd_port *p, const union ip_addr *addr,
		   uint8_t family)
{
	const struct ip_prefix *own = family == AF_INET ? &p->addr4 : &p->addr6;

	return own->len != 0 && ip_addr_eq(&own->addr, addr);
}

/* The port index whose subnet holds addr, or -1. */
static int connected_port(const struct fwd_state *s, const union ip_addr *addr,
			  uint8_t family)
{
	for (uint16_t i = 0; i < s->n_ports; i++) {
		const struct ip_prefix *own = family == AF_INET ?
			&s->ports[i].addr4 : &s->ports[i].addr6;

		if (own->len != 0 && ip_prefix_contains(own, addr, family))
			return i;
	}
	return -1;
}

int fwd_resolve_next_hop(const struct fwd_state *s, const char *service_name,
			 enum fwd_mode mode, struct backend *b, char *err,
			 size_t err_len)
{
	const union ip_addr *hop = &b->addr;
	char text[INET6_ADDRSTRLEN];
	int port = connected_port(s, hop, b->family);

	for (uint16_t i = 0; port < 0 && mode != FWD_L2DSR && i < s->n_ports;
	     i++) {
		const union ip_addr *gw = b->family == AF_INET ?
			&s->ports[i].gateway4 : &s->ports[i].gateway6;

		if (!ip_addr_is_zero(gw)) {
			hop = gw;
			port = i;
		}
	}
	if (port < 0) {
		snprintf(err, err_len,
			 "service %s: backend %s is on no port's subnet%s",
			 service_name,
			 ip_addr_str(&b->addr, b->family, text, sizeof(text)),
			 mode == FWD_L2DSR ? " (l2dsr needs one)" :
					     " and no port has a gateway");
		return -1;
	}
	b->neigh = neigh_add(s->neigh, hop, b->family, (uint16_t)port);
	if (b->neigh == NEIGH_NONE) {
		snprintf(err, err_len, "neighbour table full");
		return -1;
	}
	if (!rte_is_zero_ether_addr(&b->mac))
		neigh_set_static(s->neigh, b->neigh, &b->mac, (uint16_t)port);
	return 0;
}

struct service_table *service_table_create(const struct backend *backends,
					   uint32_t n, uint32_t maglev_size,
					   struct maglev_scratch *scratch)
{
	struct service_table *t;
	struct maglev_backend *mb;

	t = rte_zmalloc("service_table", sizeof(*t) + n * sizeof(*backends), 0);
	mb = calloc(n ? n : 1, sizeof(*mb));
	if (!t || !mb)
		goto fail;
	t->maglev_size = maglev_size;
	t->n_backends = n;
	t->maglev = rte_malloc("maglev", sizeof(uint32_t) * maglev_size,
			       RTE_CACHE_LINE_SIZE);
	if (!t->maglev)
		goto fail;
	memcpy(t->backends, backends, n * sizeof(*backends));
	for (uint32_t i = 0; i < n; i++)
		mb[i] = (struct maglev_backend){
			.key = maglev_backend_key(backends[i].addr.v6, 0),
			/* only active backends take new flows */
			.weight = backends[i].state == BACKEND_ACTIVE ?
					  backends[i].weight : 0,
			.slot = i,
		};
	if (maglev_build(t->maglev, maglev_size, mb, n, scratch) < 0)
		goto fail;
	free(mb);
	return t;
fail:
	free(mb);
	service_table_free(t);
	return NULL;
}

void service_table_free(struct service_table *t)
{
	if (!t)
		return;
	rte_free(t->maglev);
	rte_free(t);
}

/* Fragments and port-less traffic of a VIP address go to the service on
 * port 0 if there is one, else to its lowest-port service: a fixed,
 * documented choice that every fragment of a datagram agrees on. */
static void note_vip_addr(struct vip_addr *va, struct service *svc)
{
	bool tcp = svc->vip.proto == IPPROTO_TCP;
	struct service **frag = tcp ? &va->fragments_tcp : &va->fragments_udp;
	struct service **any = tcp ? &va->any_port_tcp : &va->any_port_udp;

	if (svc->vip.port == 0)
		*any = svc;
	if (!*frag || svc->vip.port == 0 ||
	    ((*frag)->vip.port != 0 &&
	     rte_be_to_cpu_16(svc->vip.port) < rte_be_to_cpu_16((*frag)->vip.port)))
		*frag = svc;
}

int fwd_state_index(struct fwd_state *s, struct service *svc, char *err,
		    size_t err_len)
{
	struct neigh_key ak = { .addr = svc->vip.addr, .family = svc->vip.family };
	struct vip_addr *va;
	void *data;

	if (rte_hash_add_key_data(s->by_vip, &svc->vip, svc) < 0) {
		snprintf(err, err_len, "service %s: VIP index full", svc->name);
		return -1;
	}
	if (rte_hash_lookup_data(s->vip_addrs, &ak, &data) >= 0) {
		va = data;
	} else {
		va = &s->addrs[svc->id];
		if (rte_hash_add_key_data(s->vip_addrs, &ak, va) < 0) {
			snprintf(err, err_len, "VIP address index full");
			return -1;
		}
	}
	note_vip_addr(va, svc);
	s->services[svc->id] = svc;
	s->n_services++;
	return 0;
}

struct fwd_state *fwd_state_empty(const struct dataplane_config *cfg,
				  const struct fwd_port *ports, uint16_t n_ports,
				  struct neigh_table *neigh)
{
	static unsigned int generation;
	struct fwd_state *s = rte_zmalloc("fwd_state", sizeof(*s), 0);
	char name[RTE_HASH_NAMESIZE];
	uint32_t cap = cfg->max_services;

	if (!s)
		return NULL;
	generation++;
	s->neigh = neigh;
	s->hash_seed = cfg->hash_seed;
	s->max_backends = cfg->max_backends;
	s->slot_reuse_s = RTE_MAX(cfg->tcp_idle_timeout_s,
				  cfg->udp_idle_timeout_s);
	s->n_ports = n_ports;
	memcpy(s->ports, ports, sizeof(ports[0]) * n_ports);
	s->capacity = cap;
	s->services = rte_zmalloc("services", sizeof(s->services[0]) * cap, 0);
	s->addrs = rte_zmalloc("vip_addrs", sizeof(s->addrs[0]) * cap, 0);
	snprintf(name, sizeof(name), "by_vip_%u", generation);
	s->by_vip = make_index(name, cap, sizeof(struct vip_key));
	snprintf(name, sizeof(name), "vip_addrs_%u", generation);
	s->vip_addrs = make_index(name, cap, sizeof(struct neigh_key));
	if (!s->services || !s->addrs || !s->by_vip || !s->vip_addrs) {
		fwd_state_free_index(s);
		return NULL;
	}
	return s;
}

struct fwd_state *fwd_state_create(const struct dataplane_config *cfg,
				   const struct fwd_port *ports,
				   uint16_t n_ports, struct neigh_table *neigh,
				   char *err, size_t err_len)
{
	struct fwd_state *empty = fwd_state_empty(cfg, ports, n_ports, neigh);
	struct fwd_update u;

	if (!empty) {
		snprintf(err, err_len, "out of memory building the forwarding "
			 "state");
		return NULL;
	}
	if (fwd_update_prepare(empty, cfg->services, cfg->n_services, 1, &u,
			       err, err_len) < 0) {
		fwd_state_free_index(empty);
		return NULL;
	}
	/* nothing reads `empty` yet: no grace period to wait for */
	fwd_update_publish(&empty, &u);
	fwd_update_finish(&u);
	return empty;
}

void service_free(struct service *svc)
{
	if (!svc)
		return;
	service_table_free(svc->table);
	rte_free(svc);
}

void fwd_state_free_index(struct fwd_state *s)
{
	if (!s)
		return;
	rte_hash_free(s->by_vip);
	rte_hash_free(s->vip_addrs);
	rte_free(s->services);
	rte_free(s->addrs);
	rte_free(s);
}

void fwd_state_free(struct fwd_state *s)
{
	for (uint32_t i = 0; s && s->services && i < s->capacity; i++)
		service_free(s->services[i]);
	fwd_state_free_index(s);
}
