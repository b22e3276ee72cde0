#include "pipeline.h"

#include <netinet/in.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "encap.h"
#include "icmp.h"
#include "maglev.h"
#include "neigh_proto.h"
#include "pkt_parse.h"

/* Flows looked up in the connection table at once (see balance_burst). */
#define CONN_LOOKUP_CHUNK 16

/* A burst in flight: what parsing found, kept for the later stages. */
struct burst {
	struct pkt_info info[PIPELINE_BURST_MAX];
	struct service *svc[PIPELINE_BURST_MAX];
	hash_sig_t hash[PIPELINE_BURST_MAX];
	uint16_t l4[PIPELINE_BURST_MAX];     /* indexes of balanced packets */
	uint16_t n_l4;
};

static inline void drop_pkt(struct pipeline_ctx *c, struct rte_mbuf *m,
			    enum drop_reason why)
{
	c->cnt->drops[why]++;
	rte_pktmbuf_free(m);
}

static inline void send_back(struct pipeline_ctx *c, struct rte_mbuf *m,
			     uint16_t port)
{
	c->out.tx[port][c->out.n_tx[port]++] = m;
}

/* Host traffic goes up the port's exception interface to the kernel. */
static inline void to_kernel(struct pipeline_ctx *c, struct rte_mbuf *m,
			     uint16_t port)
{
	if (!c->fwd->ports[port].has_exception) {
		drop_pkt(c, m, DROP_NO_EXCEPTION_PATH);
		return;
	}
	c->out.kernel[port][c->out.n_kernel[port]++] = m;
	c->cnt->to_kernel++;
}

static inline uint16_t port_mtu(const struct fwd_port *p)
{
	return p->mtu ? p->mtu : RTE_ETHER_MTU;
}

/* Sends m to the backend in `slot` of the service's table, in the
 * service's forwarding mode. */
static void forward(struct pipeline_ctx *c, struct rte_mbuf *m,
		    const struct pkt_info *info, const struct service *svc,
		    const struct service_table *t, uint32_t slot, uint32_t hash)
{
	const struct backend *b = &t->backends[slot];
	const struct fwd_port *out;
	struct rte_ether_addr mac;
	enum drop_reason why = FWD_OK;
	uint16_t port;

	if (!neigh_get(c->fwd->neigh, b->neigh, &mac, &port)) {
		drop_pkt(c, m, DROP_NO_NEIGHBOUR);
		return;
	}
	out = &c->fwd->ports[port];
	if (svc->mode != FWD_L2DSR) {
		struct encap_target target = {
			.src = b->family == AF_INET ? &out->addr4.addr : &out->addr6.addr,
			.dst = &b->addr,
			.family = b->family,
			.mtu = port_mtu(out),
			/* the flow's hash spreads tunnels over the backend's
			 * RSS queues; the top bits keep it ephemeral */
			.gue_sport = rte_cpu_to_be_16((uint16_t)(hash | 0xc000)),
			.gue_dport = svc->gue_port,
		};

		why = svc->mode == FWD_IPIP ? encap_ipip(m, info, &target) :
					      encap_gue(m, info, &target);
	}
	if (why != FWD_OK) {
		drop_pkt(c, m, why);
		return;
	}
	set_macs(m, &mac, &out->mac);
	c->cnt->service[svc->id].packets++;
	c->cnt->service[svc->id].bytes += m->pkt_len;
	c->cnt->backend[b->stat_id].packets++;
	c->cnt->backend[b->stat_id].bytes += m->pkt_len;
	c->out.tx[port][c->out.n_tx[port]++] = m;
}

/* A TCP SYN without ACK starts a connection, even when its 5-tuple is
 * remembered: clients reuse source ports, and a new connection must go by
 * the current table (a drain, a weight), not follow an old one. */
static inline bool opens_connection(const struct pkt_info *info)
{
	return info->key.proto == IPPROTO_TCP &&
	       (info->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
		       RTE_TCP_SYN_FLAG;
}

/* The backend a flow already has, if it still may have it: an active or
 * draining one, for a connection that is not starting anew. */
static inline uint32_t remembered_backend(struct pipeline_ctx *c, int32_t pos,
					  const struct service *svc,
					  const struct service_table *t,
					  const struct pkt_info *info)
{
	const struct backend *b;
	struct conn_entry *e;

	if (pos < 0)
		return CONN_NONE;
	if (opens_connection(info)) {
		conn_remove(c->conns, pos);
		return CONN_NONE;
	}
	e = &c->conns->entries[pos];
	b = e->backend < t->n_backends ? &t->backends[e->backend] : NULL;
	if (e->service == svc->id && b &&
	    (b->state == BACKEND_ACTIVE || b->state == BACKEND_DRAINING)) {
		e->deadline = c->now + conn_timeout(c->conns, info->key.proto);
		c->cnt->conn_hit++;
		return e->backend;
	}
	conn_remove(c->conns, pos);
	c->cnt->conn_rebalanced++;
	return CONN_NONE;
}

/* The backend slot for a flow: the one it remembers, else Maglev's choice
 * (*fresh then set), or MAGLEV_NO_BACKEND. */
static inline uint32_t pick_backend(struct pipeline_ctx *c,
				    const struct service *svc,
				    const struct service_table *t, uint32_t hash,
				    int32_t pos, const struct pkt_info *info,
				    bool *fresh)
{
	uint32_t slot = remembered_backend(c, pos, svc, t, info);

	*fresh = slot == CONN_NONE;
	return *fresh ? maglev_lookup(t->maglev, t->maglev_size, hash) : slot;
}

/* Balances one packet whose flow the connection table is not to learn. */
static void balance(struct pipeline_ctx *c, struct rte_mbuf *m,
		    const struct pkt_info *info, const struct service *svc,
		    uint32_t hash, int32_t pos)
{
	const struct service_table *t = service_table_get(svc);
	bool fresh;
	uint32_t slot = pick_backend(c, svc, t, hash, pos, info, &fresh);

	if (slot == MAGLEV_NO_BACKEND) {
		drop_pkt(c, m, DROP_NO_BACKEND);
		return;
	}
	forward(c, m, info, svc, t, slot, hash);
}

static struct service *port_less_service(const struct vip_addr *va,
					 uint8_t proto, bool fragment)
{
	if (proto == IPPROTO_TCP)
		return fragment ? va->fragments_tcp : va->any_port_tcp;
	if (proto == IPPROTO_UDP)
		return fragment ? va->fragments_udp : va->any_port_udp;
	return NULL;
}

/* Fragments carry no ports, so every fragment of a datagram is hashed on
 * addresses and protocol alone and goes by the Maglev table, without
 * touching the connection table (see docs/architecture.md). */
static void handle_fragment(struct pipeline_ctx *c, struct rte_mbuf *m,
			    const struct pkt_info *info, uint16_t port)
{
	const struct vip_addr *va = fwd_vip_addr(c->fwd, &info->key.dst,
						 info->key.family);
	const struct service *svc;

	if (!va) {
		to_kernel(c, m, port);
		return;
	}
	svc = port_less_service(va, info->key.proto, true);
	if (!svc) {
		drop_pkt(c, m, DROP_NO_SERVICE);
		return;
	}
	c->cnt->fragments_forwarded++;
	balance(c, m, info, svc, flow_hash(&info->key, c->fwd->hash_seed), -1);
}

static struct service *service_of(const struct fwd_state *fwd,
				  const struct flow_key *k)
{
	struct vip_key vk;
	void *data;

	vip_key_from_flow(&vk, &k->dst, k->dport, k->proto, k->family);
	if (rte_hash_lookup_data(fwd->by_vip, &vk, &data) >= 0)
		return data;
	vk.port = 0;
	if (rte_hash_lookup_data(fwd->by_vip, &vk, &data) >= 0)
		return data;
	return NULL;
}

/* A PMTU error about a VIP flow belongs to whichever backend serves the
 * flow it quotes: that backend sent the packet that was too big. */
static void steer_pmtu(struct pipeline_ctx *c, struct rte_mbuf *m,
		       const struct pkt_info *info)
{
	struct flow_key flow;
	enum drop_reason why = icmp_quoted_flow(m, info, &flow);
	const struct service *svc;
	uint32_t hash;

	if (why != FWD_OK) {
		drop_pkt(c, m, why);
		return;
	}
	svc = service_of(c->fwd, &flow);
	if (!svc) {
		drop_pkt(c, m, DROP_NO_SERVICE);
		return;
	}
	hash = flow_hash(&flow, c->fwd->hash_seed);
	c->cnt->icmp_pmtu_forwarded++;
	balance(c, m, info, svc, hash,
		rte_hash_lookup_with_hash(c->conns->h, &flow, hash));
}

static void handle_icmp(struct pipeline_ctx *c, struct rte_mbuf *m,
			const struct pkt_info *info, uint16_t port)
{
	enum icmp_kind kind = icmp_classify(m, info);
	enum drop_reason why;

	if (kind == ICMP_NDP_SOLICIT || kind == ICMP_NDP_ADVERT) {
		switch (ndp_input(m, info, c->fwd, port, c->now, c->cnt, &why)) {
		case NEIGH_REPLY:
			send_back(c, m, port);
			return;
		case NEIGH_TO_KERNEL:
			to_kernel(c, m, port);
			return;
		case NEIGH_DROP:
			drop_pkt(c, m, why);
			return;
		}
	}
	if (!fwd_vip_addr(c->fwd, &info->key.dst, info->key.family)) {
		to_kernel(c, m, port);
		return;
	}
	switch (kind) {
	case ICMP_ECHO_REQUEST:
		icmp_echo_reply(m, info);
		c->cnt->icmp_echo_replies++;
		send_back(c, m, port);
		return;
	case ICMP_PMTU:
		steer_pmtu(c, m, info);
		return;
	default:
		drop_pkt(c, m, DROP_ICMP_UNHANDLED);
		return;
	}
}

static void handle_arp(struct pipeline_ctx *c, struct rte_mbuf *m,
		       const struct pkt_info *info, uint16_t port)
{
	enum drop_reason why;

	switch (arp_input(m, info, c->fwd, port, c->now, c->cnt, &why)) {
	case NEIGH_REPLY:
		send_back(c, m, port);
		return;
	case NEIGH_TO_KERNEL:
		to_kernel(c, m, port);
		return;
	case NEIGH_DROP:
		drop_pkt(c, m, why);
		return;
	}
}

/* Stage 1: parse every frame; whatever is not TCP/UDP is dealt with at
 * once, the rest is queued for the batched lookups. */
static void classify(struct pipeline_ctx *c, struct burst *b, uint16_t port,
		     struct rte_mbuf **pkts, uint16_t n)
{
	b->n_l4 = 0;
	for (uint16_t i = 0; i < n; i++) {
		struct pkt_info *info = &b->info[i];
		struct rte_mbuf *m = pkts[i];

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		switch (pkt_parse(m, info)) {
		case PKT_L4:
			b->l4[b->n_l4++] = i;
			break;
		case PKT_DROP:
			drop_pkt(c, m, (enum drop_reason)info->drop);
			break;
		case PKT_FRAGMENT:
			handle_fragment(c, m, info, port);
			break;
		case PKT_ICMP:
			handle_icmp(c, m, info, port);
			break;
		case PKT_ARP:
			handle_arp(c, m, info, port);
			break;
		case PKT_OTHER:
			if (fwd_vip_addr(c->fwd, &info->key.dst, info->key.family))
				drop_pkt(c, m, DROP_NO_SERVICE);
			else
				to_kernel(c, m, port);
			break;
		}
	}
}

_Static_assert(offsetof(struct flow_key, family) ==
	       offsetof(struct flow_key, dport) + 3 &&
	       offsetof(struct vip_key, family) ==
	       offsetof(struct vip_key, port) + 3,
	       "port, protocol and family lie together in both keys");

/* The VIP key of flow k, written a word at a time: built field by field,
 * it would be read back as words at once (to hash it and to compare it)
 * and every such load would wait for the narrow stores to drain. Returns
 * its place among the worker's hints. */
static inline uint32_t vip_key_of_flow(struct vip_key *v,
				       const struct flow_key *k)
{
	uint64_t tail = 0;
	uint32_t h;

	memcpy(&tail, (const uint8_t *)k + offsetof(struct flow_key, dport), 4);
	v->addr = k->dst;
	memcpy((uint8_t *)v + offsetof(struct vip_key, port), &tail,
	       sizeof(tail));
	h = rte_hash_crc_8byte(k->dst.w[0], 0);
	h = rte_hash_crc_8byte(k->dst.w[1], h);
	h = rte_hash_crc_8byte(tail, h);
	return h & (PIPELINE_VIP_HINTS - 1);
}

/* Stage 2: find the services of all TCP/UDP packets: from the worker's
 * hints where they hold, else in one batched lookup for the rest. Packets
 * to no VIP go to the kernel; packets to a VIP address on a port without
 * a service are dropped. */
static void lookup_services(struct pipeline_ctx *c, struct burst *b,
			    uint16_t port, struct rte_mbuf **pkts)
{
	struct vip_key keys[PIPELINE_BURST_MAX];
	const void *key_ptrs[PIPELINE_BURST_MAX];
	uint16_t hint[PIPELINE_BURST_MAX];
	uint16_t missed[PIPELINE_BURST_MAX];
	void *data[PIPELINE_BURST_MAX];
	uint64_t hits = 0;
	uint16_t n_missed = 0, kept = 0;

	if (b->n_l4 == 0)
		return;
	for (uint16_t j = 0; j < b->n_l4; j++) {
		uint16_t i = b->l4[j];
		const struct flow_key *k = &b->info[i].key;
		/* a key its hint resolves is not needed again: the next
		 * packet's key takes its place */
		struct vip_key *vk = &keys[n_missed];

		hint[i] = (uint16_t)vip_key_of_flow(vk, k);
		b->svc[i] = fwd_service_for(c->fwd, c->vip_hint[hint[i]], vk);
		if (!b->svc[i]) {
			key_ptrs[n_missed] = vk;
			missed[n_missed++] = i;
		}
	}
	if (n_missed > 0)
		rte_hash_lookup_bulk_data(c->fwd->by_vip, key_ptrs, n_missed,
					  &hits, data);
	for (uint16_t j = 0; j < n_missed; j++) {
		uint16_t i = missed[j];
		const struct pkt_info *info = &b->info[i];
		const struct vip_addr *va;

		if (hits & (1ull << j)) {
			b->svc[i] = data[j];
			c->vip_hint[hint[i]] = b->svc[i]->id;
			continue;
		}
		va = fwd_vip_addr(c->fwd, &info->key.dst, info->key.family);
		if (!va) {
			to_kernel(c, pkts[i], port);
			continue;
		}
		b->svc[i] = port_less_service(va, info->key.proto, false);
		if (!b->svc[i])
			drop_pkt(c, pkts[i], DROP_NO_SERVICE);
	}
	for (uint16_t j = 0; j < b->n_l4; j++) {
		uint16_t i = b->l4[j];

		if (!b->svc[i])
			continue;
		b->hash[i] = flow_hash(&b->info[i].key, c->fwd->hash_seed);
		b->l4[kept++] = i;
	}
	b->n_l4 = kept;
}

/* Stage 3: look up every flow in the connection table at once, choose
 * every packet's backend, make room for the new flows together, then
 * record and send each packet. */
static void balance_burst(struct pipeline_ctx *c, struct burst *b,
			  struct rte_mbuf **pkts)
{
	const struct flow_key *keys[PIPELINE_BURST_MAX];
	const struct service_table *t[PIPELINE_BURST_MAX];
	hash_sig_t hashes[PIPELINE_BURST_MAX];
	int32_t pos[PIPELINE_BURST_MAX];
	uint32_t slot[PIPELINE_BURST_MAX];
	bool fresh[PIPELINE_BURST_MAX];
	uint32_t n_new = 0;

	if (b->n_l4 == 0)
		return;
	for (uint16_t j = 0; j < b->n_l4; j++) {
		keys[j] = &b->info[b->l4[j]].key;
		hashes[j] = b->hash[b->l4[j]];
	}
	/* with a million flows every entry is a cache miss, and the Maglev
	 * table is evicted by the connection table's traffic: start all the
	 * misses of the burst before waiting on the first. A chunk at a
	 * time, so that one chunk's entries arrive while rte_hash waits on
	 * the next chunk's buckets and keys. */
	for (uint16_t lo = 0, hi; lo < b->n_l4; lo = hi) {
		hi = RTE_MIN(b->n_l4, lo + CONN_LOOKUP_CHUNK);
		conn_lookup_bulk(c->conns, keys + lo, hashes + lo, hi - lo,
				 pos + lo);
		for (uint16_t j = lo; j < hi; j++) {
			t[j] = service_table_get(b->svc[b->l4[j]]);
			if (pos[j] >= 0)
				rte_prefetch0(&c->conns->entries[pos[j]]);
			else
				slot[j] = maglev_lookup(t[j]->maglev,
							t[j]->maglev_size,
							hashes[j]);
		}
	}
	for (uint16_t j = 0; j < b->n_l4; j++) {
		uint16_t i = b->l4[j];

		fresh[j] = pos[j] < 0;
		if (!fresh[j])
			slot[j] = pick_backend(c, b->svc[i], t[j], hashes[j],
					       pos[j], &b->info[i], &fresh[j]);
		n_new += fresh[j] && slot[j] != MAGLEV_NO_BACKEND;
	}
	/* one eviction pass for the burst: the victims' misses overlap */
	conn_make_room(c->conns, n_new, c->now, c->cnt);
	for (uint16_t j = 0; j < b->n_l4; j++) {
		uint16_t i = b->l4[j];

		if (slot[j] == MAGLEV_NO_BACKEND) {
			drop_pkt(c, pkts[i], DROP_NO_BACKEND);
			continue;
		}
		if (fresh[j])
			conn_insert(c->conns, keys[j], b->hash[i], b->svc[i]->id,
				    slot[j], c->now, c->cnt);
		forward(c, pkts[i], &b->info[i], b->svc[i], t[j], slot[j],
			b->hash[i]);
	}
}

void pipeline_run(struct pipeline_ctx *c, uint16_t in_port,
		  struct rte_mbuf **pkts, uint16_t n)
{
	struct burst b;

	c->cnt->rx += n;
	classify(c, &b, in_port, pkts, n);
	lookup_services(c, &b, in_port, pkts);
	balance_burst(c, &b, pkts);
}
