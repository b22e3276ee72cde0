/* Changing services and backends while traffic flows: established flows
 * keep their backends, slots and ids stay stable, bad updates change
 * nothing, and thousands of updates leave no leak (the sanitizer build). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "fwd_update.h"
#include "pkt_craft.h"
#include "test_env.h"

#define VIP "10.0.0.100"
#define CLIENT "192.0.2.7"
#define N_FLOWS 300

static const struct rte_ether_addr port_mac = { FIXTURE_PORT_MAC };

static struct rte_mbuf *tcp_to(const char *dst, uint16_t sport, uint16_t dport,
			       uint8_t flags)
{
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, CLIENT, dst);
	craft_tcp(&c, sport, dport, flags);
	craft_payload(&c, NULL, 20);
	return craft_end(&c);
}

/* The backend index (by MAC) a frame was sent to, -1 if none came out. */
static int send_one(struct fixture *f, struct rte_mbuf *m)
{
	struct rte_mbuf *tx[PIPELINE_BURST_MAX];
	uint16_t n_tx, n_kernel;
	int b = -1;

	fixture_run(f, &m, 1, tx, &n_tx, NULL, &n_kernel);
	if (n_tx == 1) {
		const struct rte_ether_hdr *eth =
			rte_pktmbuf_mtod(tx[0], const struct rte_ether_hdr *);

		b = eth->dst_addr.addr_bytes[4] << 8 | eth->dst_addr.addr_bytes[5];
		rte_pktmbuf_free(tx[0]);
	}
	return b;
}

/* Sends one frame and hands back what came out for a backend, or NULL. */
static struct rte_mbuf *send_keep(struct fixture *f, struct rte_mbuf *m)
{
	struct rte_mbuf *tx[PIPELINE_BURST_MAX];
	uint16_t n_tx, n_kernel;

	fixture_run(f, &m, 1, tx, &n_tx, NULL, &n_kernel);
	return n_tx == 1 ? tx[0] : NULL;
}

static int flow(struct fixture *f, int i, uint8_t flags)
{
	return send_one(f, tcp_to(VIP, (uint16_t)(10000 + i), 80, flags));
}

/* Makes f->cfg live, as the control thread does (one thread here, so no
 * grace period is needed before finish). Returns prepare's result. */
static int apply(struct fixture *f, uint32_t now)
{
	struct fwd_update u;
	char err[256];

	if (fwd_update_prepare(f->fwd, f->cfg.services, f->cfg.n_services, now,
			       &u, err, sizeof(err)) < 0) {
		print_message("refused: %s\n", err);
		return -1;
	}
	fwd_update_publish(&f->fwd, &u);
	fwd_update_finish(&u);
	f->ctx.fwd = f->fwd;
	f->ctx.now = now;
	/* backends the update brought in answer ARP */
	for (uint32_t i = 0; i < 16; i++) {
		union ip_addr a;
		struct rte_ether_addr mac = fixture_backend_mac(i);

		fixture_backend_addr(i, AF_INET, &a);
		neigh_learn(f->neigh, &a, AF_INET, &mac, 0, now);
	}
	return 0;
}

static void set_backend(struct service_config *sc, uint32_t i, uint32_t which)
{
	memset(&sc->backends[i], 0, sizeof(sc->backends[i]));
	fixture_backend_addr(which, sc->family, &sc->backends[i].addr);
	sc->backends[i].family = sc->family;
	sc->backends[i].weight = 1;
	sc->backends[i].state = BACKEND_ACTIVE;
}

static void resize(struct service_config *sc, uint32_t n)
{
	sc->backends = realloc(sc->backends, n * sizeof(*sc->backends));
	assert_non_null(sc->backends);
	sc->n_backends = n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_env_init();
	fixture_init(f);
	fixture_service(f, "web", VIP, IPPROTO_TCP, 80, FWD_L2DSR, 4);
	if (fixture_start(f, 4096, true) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_stop(f);
	free(f);
	return 0;
}

static void test_unchanged_state_is_no_change(void **state)
{
	struct fixture *f = *state;
	struct fwd_update u;
	char err[256];

	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services,
					    f->cfg.n_services, 1, &u, err,
					    sizeof(err)), 0);
	assert_false(fwd_update_changes(&u));
	fwd_update_abort(&u);
}

/* Backends are matched to their slots by address, whatever order they
 * come in: the store sends them sorted, a script may not. */
static void test_backend_order_is_no_change(void **state)
{
	struct fixture *f = *state;
	struct service_config *sc = &f->cfg.services[0];
	size_t size = sc->n_backends * sizeof(*sc->backends);
	struct backend_config *kept = malloc(size);
	struct fwd_update u;
	char err[256];

	assert_non_null(kept);
	memcpy(kept, sc->backends, size);
	for (uint32_t i = 0; i < sc->n_backends / 2; i++) {
		struct backend_config t = sc->backends[i];

		sc->backends[i] = sc->backends[sc->n_backends - 1 - i];
		sc->backends[sc->n_backends - 1 - i] = t;
	}
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services,
					    f->cfg.n_services, 1, &u, err,
					    sizeof(err)), 0);
	assert_false(fwd_update_changes(&u));
	fwd_update_abort(&u);
	set_backend(sc, 0, 9);
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services,
					    f->cfg.n_services, 1, &u, err,
					    sizeof(err)), 0);
	assert_true(fwd_update_changes(&u));
	fwd_update_abort(&u);
	/* the group's fixture as it was, for the tests after this one */
	memcpy(sc->backends, kept, size);
	free(kept);
}

static void test_added_backend_keeps_established_flows(void **state)
{
	struct fixture *f = *state;
	struct service_config *sc = &f->cfg.services[0];
	int before[N_FLOWS], moved = 0, to_new = 0;
	struct fwd_state *live = f->fwd;

	for (int i = 0; i < N_FLOWS; i++)
		before[i] = flow(f, i, RTE_TCP_SYN_FLAG);
	resize(sc, 5);
	set_backend(sc, 4, 4);
	assert_int_equal(apply(f, 2), 0);
	/* a table swap, not a new state: the VIPs did not change */
	assert_ptr_equal(f->fwd, live);
	for (uint32_t j = 0; j < 4; j++) {
		union ip_addr a;

		fixture_backend_addr(j, AF_INET, &a);
		assert_true(ip_addr_eq(&f->fwd->services[0]->table->backends[j].addr,
				       &a));
	}
	for (int i = 0; i < N_FLOWS; i++)
		moved += flow(f, i, RTE_TCP_ACK_FLAG) != before[i];
	assert_int_equal(moved, 0);
	for (int i = 0; i < N_FLOWS; i++)
		to_new += flow(f, N_FLOWS + i, RTE_TCP_SYN_FLAG) == 4;
	/* about a fifth of new flows */
	assert_in_range(to_new, N_FLOWS / 10, N_FLOWS * 3 / 10);
}

static void test_removed_backend_flows_move_and_slot_waits(void **state)
{
	struct fixture *f = *state;
	struct service_config *sc = &f->cfg.services[0];
	int before[N_FLOWS], after;
	const struct service_table *t;

	for (int i = 0; i < N_FLOWS; i++)
		before[i] = flow(f, 1000 + i, RTE_TCP_SYN_FLAG);
	/* backend 1 leaves; backend 9 arrives at once */
	set_backend(sc, 1, 9);
	assert_int_equal(apply(f, 3), 0);
	t = f->fwd->services[0]->table;
	assert_int_equal(t->backends[1].state, BACKEND_REMOVED);
	assert_int_equal(t->n_backends, 6);   /* 9 appended, slot 1 waits */
	for (int i = 0; i < N_FLOWS; i++) {
		after = flow(f, 1000 + i, RTE_TCP_ACK_FLAG);
		assert_int_not_equal(after, 1);
		if (before[i] != 1)
			assert_int_equal(after, before[i]);
	}
	/* once every flow that remembered slot 1 is idle, it is reused */
	set_backend(sc, 1, 10);
	assert_int_equal(apply(f, 3 + f->fwd->slot_reuse_s + 1), 0);
	t = f->fwd->services[0]->table;
	assert_int_equal(t->n_backends, 6);
	assert_int_equal(t->backends[1].state, BACKEND_ACTIVE);
}

static void test_services_come_and_go(void **state)
{
	struct fixture *f = *state;
	struct fwd_state *live = f->fwd;
	struct service_config *dns;
	uint32_t web_id = f->fwd->services[0]->id;

	dns = fixture_service(f, "dns", VIP, IPPROTO_TCP, 53, FWD_L2DSR, 2);
	assert_non_null(dns);
	assert_int_equal(apply(f, 5), 0);
	assert_ptr_not_equal(f->fwd, live);
	assert_int_equal(f->fwd->n_services, 2);
	assert_int_not_equal(send_one(f, tcp_to(VIP, 5000, 53, RTE_TCP_SYN_FLAG)),
			     -1);
	/* web leaves and comes back: a new id, not its old one */
	free(f->cfg.services[0].backends);
	f->cfg.services[0] = f->cfg.services[1];
	f->cfg.n_services = 1;
	assert_int_equal(apply(f, 6), 0);
	assert_int_equal(send_one(f, tcp_to(VIP, 5001, 80, RTE_TCP_SYN_FLAG)), -1);
	assert_true(f->cnt.drops[DROP_NO_SERVICE] >= 1);
	fixture_service(f, "web", VIP, IPPROTO_TCP, 80, FWD_L2DSR, 4);
	assert_int_equal(apply(f, 7), 0);
	for (uint32_t i = 0; i < f->fwd->capacity; i++)
		if (f->fwd->services[i] &&
		    strcmp(f->fwd->services[i]->name, "web") == 0)
			assert_int_not_equal(i, web_id);
	assert_int_not_equal(send_one(f, tcp_to(VIP, 5002, 80, RTE_TCP_SYN_FLAG)),
			     -1);
}

/* A service replaced under the same VIP (here: another mode) is a new
 * service with a new id. What the worker remembers of the old one, its
 * flows' entries and the id its VIP key last resolved to, must not send
 * packets the old way. */
static void test_replaced_service_takes_its_flows(void **state)
{
	struct fixture *f = *state;
	uint32_t old_id = UINT32_MAX, new_id = UINT32_MAX;
	uint64_t rebalanced, old_packets;
	struct rte_mbuf *out;
	const uint8_t *ip;

	config_free(&f->cfg);
	f->cfg.n_services = 0;
	fixture_service(f, "web", VIP, IPPROTO_TCP, 80, FWD_L2DSR, 4);
	assert_int_equal(apply(f, 8), 0);
	for (uint32_t i = 0; i < f->fwd->capacity; i++)
		if (f->fwd->services[i])
			old_id = i;
	assert_int_not_equal(flow(f, 8000, RTE_TCP_SYN_FLAG), -1);
	assert_int_not_equal(flow(f, 8000, RTE_TCP_ACK_FLAG), -1);
	rebalanced = f->cnt.conn_rebalanced;
	old_packets = f->cnt.service[old_id].packets;

	f->cfg.services[0].mode = FWD_IPIP;
	assert_int_equal(apply(f, 9), 0);
	for (uint32_t i = 0; i < f->fwd->capacity; i++)
		if (f->fwd->services[i])
			new_id = i;
	assert_int_not_equal(new_id, old_id);

	out = send_keep(f, tcp_to(VIP, 10000 + 8000, 80, RTE_TCP_ACK_FLAG));
	assert_non_null(out);
	ip = rte_pktmbuf_mtod_offset(out, const uint8_t *,
				     sizeof(struct rte_ether_hdr));
	assert_int_equal(ip[9], IPPROTO_IPIP);
	rte_pktmbuf_free(out);
	assert_int_equal(f->cnt.conn_rebalanced, rebalanced + 1);
	assert_int_equal(f->cnt.service[old_id].packets, old_packets);
	assert_int_equal(f->cnt.service[new_id].packets, 1);
}

/* With few service ids, a removed service's id soon goes to another VIP
 * key; packets for the removed one must not follow the id there. */
static void test_reused_id_serves_only_its_vip(void **state)
{
	struct fixture fx, *f = &fx;
	uint64_t no_service, web_packets;
	uint32_t web_id;

	(void)state;
	fixture_init(f);
	f->cfg.max_services = 3;
	fixture_service(f, "web", VIP, IPPROTO_TCP, 80, FWD_L2DSR, 4);
	assert_int_equal(fixture_start(f, 64, true), 0);
	assert_int_not_equal(flow(f, 9000, RTE_TCP_SYN_FLAG), -1);
	assert_int_not_equal(flow(f, 9000, RTE_TCP_ACK_FLAG), -1);
	for (web_id = 0; !f->fwd->services[web_id]; web_id++)
		;
	web_packets = f->cnt.service[web_id].packets;

	/* web goes; other services take every id, web's included */
	config_free(&f->cfg);
	f->cfg.n_services = 0;
	for (uint32_t i = 0; i < f->fwd->capacity; i++) {
		char name[16];

		snprintf(name, sizeof(name), "other%u", i);
		fixture_service(f, name, VIP, IPPROTO_TCP, (uint16_t)(81 + i),
				FWD_L2DSR, 2)->table_size = 251;
	}
	assert_int_equal(apply(f, 11), 0);
	assert_non_null(f->fwd->services[web_id]);
	assert_int_not_equal(f->fwd->services[web_id]->vip.port,
			     rte_cpu_to_be_16(80));

	no_service = f->cnt.drops[DROP_NO_SERVICE];
	assert_int_equal(flow(f, 9000, RTE_TCP_ACK_FLAG), -1);
	assert_int_equal(flow(f, 9001, RTE_TCP_SYN_FLAG), -1);
	assert_int_equal(f->cnt.drops[DROP_NO_SERVICE], no_service + 2);
	assert_int_equal(f->cnt.service[web_id].packets, web_packets);
	fixture_stop(f);
}

static void test_bad_update_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct fwd_state *live = f->fwd;
	const struct service_table *t = f->fwd->services[0]->table;
	struct service_config saved = f->cfg.services[0];
	struct fwd_update u;
	char err[256];

	f->cfg.services[0].table_size = 65536;
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services,
					    f->cfg.n_services, 8, &u, err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "table_size"));
	f->cfg.services[0] = saved;

	f->cfg.services[1] = f->cfg.services[0];
	f->cfg.n_services = 2;
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services, 2, 8, &u,
					    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "named twice"));
	snprintf(f->cfg.services[1].name, sizeof(f->cfg.services[1].name),
		 "web-again");
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services, 2, 8, &u,
					    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "belong to another service"));
	f->cfg.n_services = 1;

	ip_addr_parse("fd00::b:1", &f->cfg.services[0].backends[0].addr,
		      &f->cfg.services[0].backends[0].family);
	assert_int_equal(fwd_update_prepare(f->fwd, f->cfg.services, 1, 8, &u,
					    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "family"));
	set_backend(&f->cfg.services[0], 0, 0);

	assert_ptr_equal(f->fwd, live);
	assert_ptr_equal(f->fwd->services[0]->table, t);
	assert_int_not_equal(flow(f, 7000, RTE_TCP_SYN_FLAG), -1);
}

/* Thousands of updates between bursts: weights change and a backend
 * drains and returns, a second service comes and goes. No established
 * flow may change backend, and (under ASan) nothing may leak. */
static void test_many_updates_keep_every_flow(void **state)
{
	struct fixture *f = *state;
	struct service_config *sc;
	int first[64];

	config_free(&f->cfg);
	f->cfg.n_services = 0;
	sc = fixture_service(f, "web", VIP, IPPROTO_TCP, 80, FWD_L2DSR, 4);
	assert_int_equal(apply(f, 1000), 0);
	for (int i = 0; i < 64; i++)
		first[i] = flow(f, 20000 + i, RTE_TCP_SYN_FLAG);
	for (uint32_t round = 0; round < 10000; round++) {
		sc->backends[round % 4].weight = 1 + round % 7;
		sc->backends[2].state = round % 3 ? BACKEND_ACTIVE :
						    BACKEND_DRAINING;
		if (round % 50 == 0)
			fixture_service(f, "extra", "10.0.0.101", IPPROTO_TCP,
					80, FWD_L2DSR, 2);
		else if (round % 50 == 25)
			free(f->cfg.services[--f->cfg.n_services].backends);
		assert_int_equal(apply(f, 1000), 0);
		for (int i = 0; i < 64; i += 8)
			assert_int_equal(flow(f, 20000 + i, RTE_TCP_ACK_FLAG),
					 first[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unchanged_state_is_no_change),
		cmocka_unit_test(test_added_backend_keeps_established_flows),
		cmocka_unit_test(test_removed_backend_flows_move_and_slot_waits),
		cmocka_unit_test(test_backend_order_is_no_change),
		cmocka_unit_test(test_bad_update_changes_nothing),
		cmocka_unit_test(test_services_come_and_go),
		cmocka_unit_test(test_replaced_service_takes_its_flows),
		cmocka_unit_test(test_reused_id_serves_only_its_vip),
		cmocka_unit_test(test_many_updates_keep_every_flow),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
