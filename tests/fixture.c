#include "fixture.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_malloc.h>

void fixture_init(struct fixture *f)
{
	struct port_config *p = &f->cfg.ports[0];

	memset(f, 0, sizeof(*f));
	config_defaults(&f->cfg);
	f->cfg.n_ports = 1;
	snprintf(p->name, sizeof(p->name), "lan");
	p->driver = PORT_DRIVER_NULL;
	ip_prefix_parse(FIXTURE_PORT_ADDR4 "/16", &p->addr4);
	ip_prefix_parse(FIXTURE_PORT_ADDR6 "/64", &p->addr6);
	p->exception = true;
	f->cfg.max_backends = 4 * FIXTURE_MAX_BACKENDS;
}

void fixture_backend_addr(uint32_t i, uint8_t family, union ip_addr *out)
{
	char text[64];
	uint8_t got;

	if (family == AF_INET)
		snprintf(text, sizeof(text), "10.0.%u.%u", i / 250, i % 250 + 10);
	else
		snprintf(text, sizeof(text), "fd00::b:%x", i);
	ip_addr_parse(text, out, &got);
}

struct rte_ether_addr fixture_backend_mac(uint32_t i)
{
	return (struct rte_ether_addr){
		{ 0x02, 0xbe, 0, 0, (uint8_t)(i >> 8), (uint8_t)i } };
}

struct service_config *fixture_service(struct fixture *f, const char *name,
				       const char *vip, uint8_t proto,
				       uint16_t port, enum fwd_mode mode,
				       uint32_t n_backends)
{
	struct service_config *s = &f->cfg.services[f->cfg.n_services++];

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	ip_addr_parse(vip, &s->vip, &s->family);
	s->proto = proto;
	s->port = port;
	s->mode = mode;
	s->table_size = 65537;
	s->gue_port = 6080;
	s->n_backends = n_backends;
	s->backends = calloc(n_backends, sizeof(*s->backends));
	for (uint32_t i = 0; i < n_backends; i++) {
		fixture_backend_addr(i, s->family, &s->backends[i].addr);
		s->backends[i].family = s->family;
		s->backends[i].weight = 1;
	}
	return s;
}

int fixture_start(struct fixture *f, uint32_t conn_capacity, bool resolve)
{
	static unsigned int instance;
	struct fwd_port port = {
		.mac = { FIXTURE_PORT_MAC },
		.addr4 = f->cfg.ports[0].addr4,
		.addr6 = f->cfg.ports[0].addr6,
		.has_exception = f->cfg.ports[0].exception,
	};
	char name[32], err[256];

	instance++;
	snprintf(name, sizeof(name), "fx_neigh_%u", instance);
	f->neigh = neigh_table_create(name, f->cfg.max_backends + 16, SOCKET_ID_ANY);
	f->fwd = f->neigh ? fwd_state_create(&f->cfg, &port, 1, f->neigh, err,
					     sizeof(err)) : NULL;
	if (!f->fwd) {
		fprintf(stderr, "fixture: %s\n", f->neigh ? err : "no memory");
		return -1;
	}
	for (uint32_t s = 0; resolve && s < f->cfg.n_services; s++) {
		const struct service_config *sc = &f->cfg.services[s];

		for (uint32_t i = 0; i < sc->n_backends; i++) {
			struct rte_ether_addr mac = fixture_backend_mac(i);

			neigh_learn(f->neigh, &sc->backends[i].addr, sc->family, &mac,
				    0, 1);
		}
	}
	snprintf(name, sizeof(name), "fx_conns_%u", instance);
	f->conns = conn_table_create(name, conn_capacity,
				     f->cfg.tcp_idle_timeout_s,
				     f->cfg.udp_idle_timeout_s, f->cfg.hash_seed,
				     SOCKET_ID_ANY);
	f->cnt.service = rte_zmalloc(NULL, sizeof(struct pkt_counter) *
				     f->cfg.max_services, 0);
	f->cnt.backend = rte_zmalloc(NULL, sizeof(struct pkt_counter) *
				     f->cfg.max_backends, 0);
	if (!f->conns || !f->cnt.service || !f->cnt.backend) {
		fprintf(stderr, "fixture: no memory for conn table or counters\n");
		return -1;
	}
	f->ctx.fwd = f->fwd;
	f->ctx.conns = f->conns;
	f->ctx.cnt = &f->cnt;
	f->ctx.now = 1;
	return 0;
}

void fixture_stop(struct fixture *f)
{
	fwd_state_free(f->fwd);
	neigh_table_free(f->neigh);
	conn_table_free(f->conns);
	rte_free(f->cnt.service);
	rte_free(f->cnt.backend);
	config_free(&f->cfg);
}

static uint16_t take(struct rte_mbuf **from, uint16_t *n_from,
		     struct rte_mbuf **to, uint16_t *n_to)
{
	uint16_t n = *n_from;

	if (to) {
		memcpy(to, from, n * sizeof(*from));
		*n_to = n;
	} else {
		rte_pktmbuf_free_bulk(from, n);
	}
	*n_from = 0;
	return n;
}

uint16_t fixture_run(struct fixture *f, struct rte_mbuf **pkts, uint16_t n,
		     struct rte_mbuf **tx, uint16_t *n_tx,
		     struct rte_mbuf **kernel, uint16_t *n_kernel)
{
	struct pipeline_out *out = &f->ctx.out;
	uint16_t total;

	if (n_tx)
		*n_tx = 0;
	if (n_kernel)
		*n_kernel = 0;
	pipeline_run(&f->ctx, 0, pkts, n);
	total = take(out->tx[0], &out->n_tx[0], tx, n_tx);
	total += take(out->kernel[0], &out->n_kernel[0], kernel, n_kernel);
	return total;
}
