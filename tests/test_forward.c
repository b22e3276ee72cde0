/* Crafted packets through the real pipeline: every path a frame can take,
 * with the bytes that come out checked. */
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend_flows.h"
#include "fixture.h"
#include "maglev.h"
#include "pkt_craft.h"
#include "test_env.h"

#define CLIENT4 "192.0.2.7"
#define CLIENT6 "2001:db8::7"
#define VIP_L2 "10.0.0.100"
#define VIP_IPIP "10.0.0.101"
#define VIP_GUE "10.0.0.102"
#define VIP6_IPIP "fd00::100"
#define VIP6_GUE "fd00::102"
#define N_BACKENDS 3

static const struct rte_ether_addr port_mac = { FIXTURE_PORT_MAC };

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_env_init();
	fixture_init(f);
	fixture_service(f, "l2", VIP_L2, IPPROTO_TCP, 80, FWD_L2DSR, N_BACKENDS);
	fixture_service(f, "ipip", VIP_IPIP, IPPROTO_TCP, 80, FWD_IPIP, N_BACKENDS);
	fixture_service(f, "gue", VIP_GUE, IPPROTO_UDP, 53, FWD_GUE, N_BACKENDS);
	fixture_service(f, "ipip6", VIP6_IPIP, IPPROTO_TCP, 80, FWD_IPIP, N_BACKENDS);
	fixture_service(f, "gue6", VIP6_GUE, IPPROTO_UDP, 53, FWD_GUE, N_BACKENDS);
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

static struct rte_mbuf *tcp4(const char *src, const char *dst, uint16_t sport,
			     uint16_t dport, uint8_t flags)
{
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, src, dst);
	craft_tcp(&c, sport, dport, flags);
	craft_payload(&c, NULL, 100);
	return craft_end(&c);
}

static struct rte_mbuf *l4_6(const char *src, const char *dst, uint8_t proto,
			     uint16_t sport, uint16_t dport)
{
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv6(&c, src, dst);
	if (proto == IPPROTO_TCP)
		craft_tcp(&c, sport, dport, RTE_TCP_SYN_FLAG);
	else
		craft_udp(&c, sport, dport);
	craft_payload(&c, NULL, 100);
	return craft_end(&c);
}

static struct rte_mbuf *udp4(const char *src, const char *dst, uint16_t sport,
			     uint16_t dport)
{
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, src, dst);
	craft_udp(&c, sport, dport);
	craft_payload(&c, NULL, 60);
	return craft_end(&c);
}

/* Says why a frame expected on the wire did not come out. */
static void print_drops(const struct fixture *f)
{
	for (int r = 0; r < DROP_REASON_MAX; r++)
		if (f->cnt.drops[r])
			print_message("dropped %" PRIu64 " for %s\n",
				      f->cnt.drops[r], drop_reason_texts[r]);
}

/* Runs one frame and expects exactly one frame on the wire. */
static struct rte_mbuf *run_tx(struct fixture *f, struct rte_mbuf *m)
{
	struct rte_mbuf *tx[PIPELINE_BURST_MAX];
	uint16_t n_tx, n_kernel;

	fixture_run(f, &m, 1, tx, &n_tx, NULL, &n_kernel);
	if (n_tx != 1)
		print_drops(f);
	assert_int_equal(n_tx, 1);
	assert_int_equal(n_kernel, 0);
	return tx[0];
}

/* Which backend a frame went to, by destination MAC. */
static int backend_of(const struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth =
		rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);

	for (uint32_t i = 0; i < N_BACKENDS; i++) {
		struct rte_ether_addr mac = fixture_backend_mac(i);

		if (rte_is_same_ether_addr(&mac, &eth->dst_addr))
			return (int)i;
	}
	return -1;
}

static void assert_l2_to_backend(const struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth =
		rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);

	assert_frame(backend_of(m) >= 0, m);
	assert_frame(rte_is_same_ether_addr(&eth->src_addr, &port_mac), m);
}

static struct rte_mbuf *copy_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_copy(m, test_env_pool(), 0, UINT32_MAX);
}

/* ---- forwarding modes ---- */

static void test_l2dsr_rewrites_macs_only(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in = tcp4(CLIENT4, VIP_L2, 40000, 80, RTE_TCP_SYN_FLAG);
	struct rte_mbuf *orig = copy_of(in), *out = run_tx(f, in);

	assert_l2_to_backend(out);
	assert_int_equal(out->pkt_len, orig->pkt_len);
	/* everything after the MACs is the client's frame, byte for byte */
	assert_memory_equal(rte_pktmbuf_mtod_offset(out, uint8_t *, 12),
			    rte_pktmbuf_mtod_offset(orig, uint8_t *, 12),
			    orig->pkt_len - 12);
	assert_true(craft_ipv4_csum_ok(rte_pktmbuf_mtod_offset(out, void *, 14)));
	assert_true(craft_l4_csum_ok(out, 14));
	assert_int_equal(f->cnt.service[0].packets, 1);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(orig);
}

static void test_l2dsr_keeps_vlan_tag(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in, *out;
	const struct rte_vlan_hdr *vlan;
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_vlan(&c, 42);
	craft_ipv4(&c, CLIENT4, VIP_L2);
	craft_tcp(&c, 40001, 80, RTE_TCP_SYN_FLAG);
	in = craft_end(&c);
	out = run_tx(f, in);
	assert_l2_to_backend(out);
	vlan = rte_pktmbuf_mtod_offset(out, const struct rte_vlan_hdr *, 14);
	assert_int_equal(rte_be_to_cpu_16(vlan->vlan_tci) & 0xfff, 42);
	rte_pktmbuf_free(out);
}

static void test_ipip4_outer_header(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in = tcp4(CLIENT4, VIP_IPIP, 40000, 80, RTE_TCP_SYN_FLAG);
	struct rte_mbuf *orig = copy_of(in), *out = run_tx(f, in);
	const struct rte_ipv4_hdr *outer =
		rte_pktmbuf_mtod_offset(out, const struct rte_ipv4_hdr *, 14);
	const struct rte_ether_hdr *eth =
		rte_pktmbuf_mtod(out, const struct rte_ether_hdr *);
	union ip_addr src, dst;
	uint8_t family;
	int b;

	assert_l2_to_backend(out);
	b = backend_of(out);
	assert_int_equal(eth->ether_type, RTE_BE16(RTE_ETHER_TYPE_IPV4));
	assert_int_equal(out->pkt_len, orig->pkt_len + 20);
	assert_int_equal(outer->version_ihl, 0x45);
	assert_int_equal(outer->next_proto_id, IPPROTO_IPIP);
	assert_int_equal(outer->time_to_live, 64);
	assert_int_equal(rte_be_to_cpu_16(outer->total_length), orig->pkt_len - 14 + 20);
	assert_true(craft_ipv4_csum_ok(outer));
	ip_addr_parse(FIXTURE_PORT_ADDR4, &src, &family);
	fixture_backend_addr((uint32_t)b, AF_INET, &dst);
	assert_int_equal(outer->src_addr, src.v4);
	assert_int_equal(outer->dst_addr, dst.v4);
	/* the client's packet rides unchanged, TTL included */
	assert_memory_equal(rte_pktmbuf_mtod_offset(out, uint8_t *, 34),
			    rte_pktmbuf_mtod_offset(orig, uint8_t *, 14),
			    orig->pkt_len - 14);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(orig);
}

static void test_ip6ip6_outer_header(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in = l4_6(CLIENT6, VIP6_IPIP, IPPROTO_TCP, 40000, 80);
	struct rte_mbuf *orig = copy_of(in), *out = run_tx(f, in);
	const struct rte_ipv6_hdr *outer =
		rte_pktmbuf_mtod_offset(out, const struct rte_ipv6_hdr *, 14);
	union ip_addr src, dst;
	uint8_t family;

	assert_l2_to_backend(out);
	assert_int_equal(rte_be_to_cpu_32(outer->vtc_flow) >> 28, 6);
	assert_int_equal(outer->proto, IPPROTO_IPV6);
	assert_int_equal(outer->hop_limits, 64);
	assert_int_equal(rte_be_to_cpu_16(outer->payload_len), orig->pkt_len - 14);
	ip_addr_parse(FIXTURE_PORT_ADDR6, &src, &family);
	fixture_backend_addr((uint32_t)backend_of(out), AF_INET6, &dst);
	assert_memory_equal(outer->src_addr, src.v6, 16);
	assert_memory_equal(outer->dst_addr, dst.v6, 16);
	assert_memory_equal(rte_pktmbuf_mtod_offset(out, uint8_t *, 54),
			    rte_pktmbuf_mtod_offset(orig, uint8_t *, 14),
			    orig->pkt_len - 14);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(orig);
}

static void check_gue(struct rte_mbuf *out, const struct rte_mbuf *orig,
		      uint16_t ip_len, uint8_t inner_proto)
{
	const struct rte_udp_hdr *udp =
		rte_pktmbuf_mtod_offset(out, const struct rte_udp_hdr *, 14 + ip_len);
	const uint8_t *gue = (const uint8_t *)(udp + 1);

	assert_l2_to_backend(out);
	assert_int_equal(out->pkt_len, orig->pkt_len + ip_len + 8 + 4);
	assert_int_equal(rte_be_to_cpu_16(udp->dst_port), 6080);
	assert_true(rte_be_to_cpu_16(udp->src_port) >= 0xc000);
	assert_int_equal(rte_be_to_cpu_16(udp->dgram_len), orig->pkt_len - 14 + 12);
	assert_int_equal(gue[0], 0);            /* version 0, no options */
	assert_int_equal(gue[1], inner_proto);
	assert_int_equal(gue[2] | gue[3], 0);
	assert_true(craft_l4_csum_ok(out, 14));
	assert_memory_equal(gue + 4, rte_pktmbuf_mtod_offset(orig, uint8_t *, 14),
			    orig->pkt_len - 14);
}

static void test_gue4(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in = udp4(CLIENT4, VIP_GUE, 5353, 53);
	struct rte_mbuf *orig = copy_of(in), *out = run_tx(f, in);

	check_gue(out, orig, 20, IPPROTO_IPIP);
	assert_true(craft_ipv4_csum_ok(rte_pktmbuf_mtod_offset(out, void *, 14)));
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(orig);
}

static void test_gue6_has_valid_udp_checksum(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *in = l4_6(CLIENT6, VIP6_GUE, IPPROTO_UDP, 5353, 53);
	struct rte_mbuf *orig = copy_of(in), *out = run_tx(f, in);
	const struct rte_udp_hdr *udp =
		rte_pktmbuf_mtod_offset(out, const struct rte_udp_hdr *, 54);

	check_gue(out, orig, 40, IPPROTO_IPV6);
	assert_int_not_equal(udp->dgram_cksum, 0);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(orig);
}

static void test_encap_beyond_mtu_is_dropped(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *m;
	struct craft c;
	uint16_t n_tx, n_kernel;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, CLIENT4, VIP_IPIP);
	craft_tcp(&c, 40000, 80, RTE_TCP_ACK_FLAG);
	craft_payload(&c, NULL, 1500 - 40);
	m = craft_end(&c);
	assert_int_equal(fixture_run(f, &m, 1, NULL, &n_tx, NULL, &n_kernel), 0);
	assert_int_equal(f->cnt.drops[DROP_ENCAP_TOO_BIG], 1);
}

/* ---- flows and backends ---- */

static void test_flows_spread_and_stick(void **state)
{
	struct fixture *f = *state;
	int first[64], seen[N_BACKENDS] = { 0 };

	for (int i = 0; i < 64; i++) {
		struct rte_mbuf *out = run_tx(
			f, tcp4(CLIENT4, VIP_L2, (uint16_t)(20000 + i), 80,
				RTE_TCP_SYN_FLAG));

		first[i] = backend_of(out);
		seen[first[i]]++;
		rte_pktmbuf_free(out);
	}
	for (int b = 0; b < N_BACKENDS; b++)
		assert_true(seen[b] > 0);
	for (int i = 0; i < 64; i++) {
		struct rte_mbuf *out = run_tx(
			f, tcp4(CLIENT4, VIP_L2, (uint16_t)(20000 + i), 80,
				RTE_TCP_ACK_FLAG));

		assert_int_equal(backend_of(out), first[i]);
		rte_pktmbuf_free(out);
	}
}

/* Rebuilds service 0's table with backend `b` in `state` and returns the
 * old one for the caller to free. */
static struct service_table *set_backend_state(struct fixture *f, uint32_t b,
					       uint8_t state)
{
	struct service *svc = f->fwd->services[0];
	const struct service_table *old = svc->table;
	struct backend backends[N_BACKENDS];
	struct maglev_scratch *scratch = maglev_scratch_create(16, 65537);
	struct service_table *t;

	memcpy(backends, old->backends, sizeof(backends));
	backends[b].state = state;
	t = service_table_create(backends, N_BACKENDS, old->maglev_size, scratch);
	maglev_scratch_free(scratch);
	assert_non_null(t);
	return service_table_swap(svc, t);
}

static void test_established_flow_keeps_draining_backend(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *out;
	struct service_table *old;
	uint16_t other = 32000;
	int target;

	out = run_tx(f, tcp4(CLIENT4, VIP_L2, 30000, 80, RTE_TCP_SYN_FLAG));
	target = backend_of(out);
	rte_pktmbuf_free(out);
	/* a second connection on the same backend */
	for (;; other++) {
		out = run_tx(f, tcp4(CLIENT4, VIP_L2, other, 80, RTE_TCP_SYN_FLAG));
		if (backend_of(out) == target)
			break;
		rte_pktmbuf_free(out);
	}
	rte_pktmbuf_free(out);

	old = set_backend_state(f, (uint32_t)target, BACKEND_DRAINING);
	out = run_tx(f, tcp4(CLIENT4, VIP_L2, 30000, 80, RTE_TCP_ACK_FLAG));
	assert_int_equal(backend_of(out), target);
	rte_pktmbuf_free(out);
	/* new flows avoid the draining backend */
	for (int i = 0; i < 200; i++) {
		out = run_tx(f, tcp4(CLIENT4, VIP_L2, (uint16_t)(31000 + i), 80,
				     RTE_TCP_SYN_FLAG));
		assert_int_not_equal(backend_of(out), target);
		rte_pktmbuf_free(out);
	}
	/* a new connection that reuses a remembered 5-tuple avoids it too */
	out = run_tx(f, tcp4(CLIENT4, VIP_L2, other, 80, RTE_TCP_SYN_FLAG));
	assert_int_not_equal(backend_of(out), target);
	rte_pktmbuf_free(out);
	service_table_free(old);

	/* removed: the flow is balanced anew, to a backend still there */
	old = set_backend_state(f, (uint32_t)target, BACKEND_REMOVED);
	out = run_tx(f, tcp4(CLIENT4, VIP_L2, 30000, 80, RTE_TCP_ACK_FLAG));
	assert_int_not_equal(backend_of(out), target);
	assert_true(f->cnt.conn_rebalanced >= 1);
	rte_pktmbuf_free(out);
	service_table_free(old);
	/* the tests share the fixture: leave the service as it was */
	service_table_free(set_backend_state(f, (uint32_t)target,
					     BACKEND_ACTIVE));
}

static void test_same_flow_same_backend_on_two_hosts(void **state)
{
	struct fixture *a = *state, b;

	fixture_init(&b);
	fixture_service(&b, "l2", VIP_L2, IPPROTO_TCP, 80, FWD_L2DSR, N_BACKENDS);
	assert_int_equal(fixture_start(&b, 1024, true), 0);
	for (int i = 0; i < 100; i++) {
		struct rte_mbuf *x = run_tx(a, tcp4(CLIENT4, VIP_L2,
						    (uint16_t)(50000 + i), 80,
						    RTE_TCP_SYN_FLAG));
		struct rte_mbuf *y = run_tx(&b, tcp4(CLIENT4, VIP_L2,
						     (uint16_t)(50000 + i), 80,
						     RTE_TCP_SYN_FLAG));

		assert_int_equal(backend_of(x), backend_of(y));
		rte_pktmbuf_free(x);
		rte_pktmbuf_free(y);
	}
	fixture_stop(&b);
}

static void test_unresolved_neighbour_is_dropped(void **state)
{
	struct fixture f;
	struct rte_mbuf *m;
	uint16_t n_tx, n_kernel;

	(void)state;
	fixture_init(&f);
	fixture_service(&f, "l2", VIP_L2, IPPROTO_TCP, 80, FWD_L2DSR, 2);
	assert_int_equal(fixture_start(&f, 64, false), 0);
	m = tcp4(CLIENT4, VIP_L2, 1234, 80, RTE_TCP_SYN_FLAG);
	assert_int_equal(fixture_run(&f, &m, 1, NULL, &n_tx, NULL, &n_kernel), 0);
	assert_int_equal(f.cnt.drops[DROP_NO_NEIGHBOUR], 1);
	fixture_stop(&f);
}

/* ---- what is not for a service ---- */

static void test_host_traffic_goes_to_kernel(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *m = tcp4(CLIENT4, FIXTURE_PORT_ADDR4, 5000, 22,
				  RTE_TCP_SYN_FLAG);
	struct rte_mbuf *kernel[PIPELINE_BURST_MAX];
	uint16_t n_tx, n_kernel;

	fixture_run(f, &m, 1, NULL, &n_tx, kernel, &n_kernel);
	assert_int_equal(n_tx, 0);
	assert_int_equal(n_kernel, 1);
	assert_ptr_equal(kernel[0], m);
	rte_pktmbuf_free(m);
}

static void test_vip_without_service_port_is_dropped(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *m = tcp4(CLIENT4, VIP_L2, 5000, 443, RTE_TCP_SYN_FLAG);
	uint64_t before = f->cnt.drops[DROP_NO_SERVICE];
	uint16_t n_tx, n_kernel;

	assert_int_equal(fixture_run(f, &m, 1, NULL, &n_tx, NULL, &n_kernel), 0);
	assert_int_equal(f->cnt.drops[DROP_NO_SERVICE], before + 1);
}

/* ---- ARP, NDP and ICMP ---- */

static void test_arp_request_for_vip_is_answered(void **state)
{
	struct fixture *f = *state;
	struct rte_ether_addr asker = { { 0x02, 0xaa, 0, 0, 0, 1 } };
	const char *targets[] = { VIP_L2, FIXTURE_PORT_ADDR4 };

	for (unsigned int i = 0; i < 2; i++) {
		struct rte_mbuf *out;
		const struct rte_arp_hdr *arp;
		union ip_addr target;
		uint8_t family;
		struct craft c;

		craft_begin(&c);
		craft_eth(&c, &asker, &(struct rte_ether_addr){
			{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } });
		craft_arp(&c, RTE_ARP_OP_REQUEST, &asker, "10.0.5.5", NULL,
			  targets[i]);
		out = run_tx(f, craft_end(&c));
		arp = rte_pktmbuf_mtod_offset(out, const struct rte_arp_hdr *, 14);
		ip_addr_parse(targets[i], &target, &family);
		assert_int_equal(arp->arp_opcode, RTE_BE16(RTE_ARP_OP_REPLY));
		assert_true(rte_is_same_ether_addr(&arp->arp_data.arp_sha, &port_mac));
		assert_true(rte_is_same_ether_addr(&arp->arp_data.arp_tha, &asker));
		assert_int_equal(arp->arp_data.arp_sip, target.v4);
		assert_true(rte_is_same_ether_addr(
			&rte_pktmbuf_mtod(out, struct rte_ether_hdr *)->dst_addr,
			&asker));
		rte_pktmbuf_free(out);
	}
}

static void test_arp_reply_from_backend_is_learned(void **state)
{
	struct fixture f;
	struct rte_ether_addr mac = { { 0x02, 0xcc, 0, 0, 0, 9 } };
	struct rte_mbuf *m, *kernel[4];
	uint16_t n_tx, n_kernel;
	struct craft c;

	(void)state;
	fixture_init(&f);
	fixture_service(&f, "l2", VIP_L2, IPPROTO_TCP, 80, FWD_L2DSR, 1);
	assert_int_equal(fixture_start(&f, 64, false), 0);

	craft_begin(&c);
	craft_eth(&c, &mac, &port_mac);
	craft_arp(&c, RTE_ARP_OP_REPLY, &mac, "10.0.0.10", &port_mac,
		  FIXTURE_PORT_ADDR4);
	m = craft_end(&c);
	fixture_run(&f, &m, 1, NULL, &n_tx, kernel, &n_kernel);
	assert_int_equal(n_kernel, 1);   /* the host stack hears it too */
	rte_pktmbuf_free(kernel[0]);
	assert_int_equal(f.cnt.neigh_learned, 1);

	m = run_tx(&f, tcp4(CLIENT4, VIP_L2, 1000, 80, RTE_TCP_SYN_FLAG));
	assert_true(rte_is_same_ether_addr(
		&rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->dst_addr, &mac));
	rte_pktmbuf_free(m);
	fixture_stop(&f);
}

/* A neighbour that does not answer is asked three times a second apart,
 * then 2, 4, 8 and 16 s apart, then every NEIGH_PROBE_MAX_S; once it
 * answers, it is left alone until stale, and its next silence is counted
 * afresh. */
static void test_unanswered_neighbour_backs_off(void **state)
{
	static const uint32_t want[] = { 1, 2, 3, 5, 9, 17, 33, 63, 93, 123 };
	struct rte_ether_addr mac = { { 0x02, 0xcc, 0, 0, 0, 9 } };
	struct neigh_table *t = neigh_table_create("test_backoff", 8, 0);
	union ip_addr a = { .v4 = RTE_BE32(RTE_IPV4(10, 0, 0, 10)) };
	uint32_t asked[16], n = 0, idx;

	(void)state;
	assert_non_null(t);
	idx = neigh_add(t, &a, AF_INET, 0);
	assert_int_not_equal(idx, NEIGH_NONE);
	for (uint32_t now = 1; now <= 130; now++)
		if (neigh_probe_due(t, idx, now)) {
			assert_true(n < 16);
			asked[n++] = now;
			neigh_probe_sent(t, idx, now);
		}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	assert_memory_equal(asked, want, sizeof(want));

	assert_true(neigh_learn(t, &a, AF_INET, &mac, 0, 131));
	for (uint32_t now = 131; now <= 131 + NEIGH_STALE_S; now++)
		assert_false(neigh_probe_due(t, idx, now));
	assert_true(neigh_probe_due(t, idx, 132 + NEIGH_STALE_S));
	neigh_probe_sent(t, idx, 132 + NEIGH_STALE_S);
	assert_false(neigh_probe_due(t, idx, 132 + NEIGH_STALE_S));
	assert_true(neigh_probe_due(t, idx, 133 + NEIGH_STALE_S));
	neigh_table_free(t);
}

static void test_ndp_solicitation_for_vip_is_answered(void **state)
{
	struct fixture *f = *state;
	struct rte_ether_addr asker = { { 0x02, 0xaa, 0, 0, 0, 6 } };
	struct rte_mbuf *out;
	const struct rte_ipv6_hdr *ip;
	const uint8_t *na;
	union ip_addr vip, peer;
	uint8_t family;
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, &asker, NULL);
	craft_ipv6(&c, "fd00::99", "ff02::1:ff00:100");
	craft_ndp_ns(&c, VIP6_IPIP, &asker);
	out = run_tx(f, craft_end(&c));
	ip = rte_pktmbuf_mtod_offset(out, const struct rte_ipv6_hdr *, 14);
	na = (const uint8_t *)(ip + 1);
	ip_addr_parse(VIP6_IPIP, &vip, &family);
	ip_addr_parse("fd00::99", &peer, &family);
	assert_int_equal(ip->hop_limits, 255);
	assert_memory_equal(ip->src_addr, vip.v6, 16);
	assert_memory_equal(ip->dst_addr, peer.v6, 16);
	assert_int_equal(na[0], ND_NEIGHBOR_ADVERT);
	assert_int_equal(na[4] & 0x60, 0x60);        /* solicited, override */
	assert_memory_equal(na + 8, vip.v6, 16);
	assert_int_equal(na[24], 2);                 /* target link-layer */
	assert_memory_equal(na + 26, &port_mac, 6);
	assert_true(craft_l4_csum_ok(out, 14));
	rte_pktmbuf_free(out);
}

static void test_ping_to_vip_is_answered(void **state)
{
	struct fixture *f = *state;
	const char *pairs[2][2] = { { CLIENT4, VIP_L2 }, { CLIENT6, VIP6_IPIP } };

	for (int v = 0; v < 2; v++) {
		struct rte_mbuf *out;
		uint16_t l4 = v == 0 ? 14 + 20 : 14 + 40;
		struct craft c;

		craft_begin(&c);
		craft_eth(&c, NULL, &port_mac);
		if (v == 0)
			craft_ipv4(&c, pairs[v][0], pairs[v][1]);
		else
			craft_ipv6(&c, pairs[v][0], pairs[v][1]);
		craft_icmp_echo(&c, true, 7, 1);
		craft_payload(&c, NULL, 32);
		out = run_tx(f, craft_end(&c));
		assert_int_equal(*rte_pktmbuf_mtod_offset(out, uint8_t *, l4),
				 v == 0 ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY);
		assert_true(craft_l4_csum_ok(out, 14));
		if (v == 0) {
			const struct rte_ipv4_hdr *ip =
				rte_pktmbuf_mtod_offset(out, const struct rte_ipv4_hdr *, 14);
			union ip_addr a;
			uint8_t fam;

			assert_true(craft_ipv4_csum_ok(ip));
			ip_addr_parse(VIP_L2, &a, &fam);
			assert_int_equal(ip->src_addr, a.v4);
		}
		rte_pktmbuf_free(out);
	}
}

/* A router on the return path quotes a packet the backend sent (VIP to
 * client) with only 8 bytes of TCP. It must reach that same backend. */
static void test_frag_needed_goes_to_flow_backend(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *flow = run_tx(f, tcp4(CLIENT4, VIP_L2, 41000, 80,
					       RTE_TCP_SYN_FLAG));
	struct rte_mbuf *reply = tcp4(VIP_L2, CLIENT4, 80, 41000, RTE_TCP_ACK_FLAG);
	struct rte_mbuf *out;
	struct craft c;
	int target = backend_of(flow);

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, "198.51.100.1", VIP_L2);
	craft_icmp_error(&c, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400, reply, 14);
	out = run_tx(f, craft_end(&c));
	assert_int_equal(backend_of(out), target);
	assert_int_equal(f->cnt.icmp_pmtu_forwarded, 1);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(flow);
	rte_pktmbuf_free(reply);
}

static void test_packet_too_big_goes_to_flow_backend(void **state)
{
	struct fixture *f = *state;
	struct rte_mbuf *flow = run_tx(f, l4_6(CLIENT6, VIP6_IPIP, IPPROTO_TCP,
					       41001, 80));
	struct rte_mbuf *reply = l4_6(VIP6_IPIP, CLIENT6, IPPROTO_TCP, 80, 41001);
	const struct rte_ipv6_hdr *outer_flow, *outer_icmp;
	struct rte_mbuf *out;
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv6(&c, "2001:db8:ffff::1", VIP6_IPIP);
	craft_icmp_error(&c, ICMP6_PACKET_TOO_BIG, 0, 1280, reply, 14);
	out = run_tx(f, craft_end(&c));
	outer_flow = rte_pktmbuf_mtod_offset(flow, const struct rte_ipv6_hdr *, 14);
	outer_icmp = rte_pktmbuf_mtod_offset(out, const struct rte_ipv6_hdr *, 14);
	assert_memory_equal(outer_flow->dst_addr, outer_icmp->dst_addr, 16);
	rte_pktmbuf_free(out);
	rte_pktmbuf_free(flow);
	rte_pktmbuf_free(reply);
}

/* ---- fragments ---- */

static void test_fragments_of_a_datagram_meet(void **state)
{
	struct fixture *f = *state;

	for (int d = 0; d < 20; d++) {
		char client[32];
		int first = -1;

		snprintf(client, sizeof(client), "192.0.2.%d", 100 + d);
		for (int piece = 0; piece < 3; piece++) {
			struct rte_ipv4_hdr *ip;
			struct rte_mbuf *out;
			struct craft c;

			craft_begin(&c);
			craft_eth(&c, NULL, &port_mac);
			ip = craft_ipv4(&c, client, VIP_L2);
			ip->packet_id = rte_cpu_to_be_16((uint16_t)d);
			ip->fragment_offset = rte_cpu_to_be_16(
				(uint16_t)((piece < 2 ? RTE_IPV4_HDR_MF_FLAG : 0) |
					   piece * 100));
			if (piece == 0)
				craft_tcp(&c, 12345, 80, RTE_TCP_ACK_FLAG);
			else
				ip->next_proto_id = IPPROTO_TCP;
			craft_payload(&c, NULL, 800);
			out = run_tx(f, craft_end(&c));
			if (first < 0)
				first = backend_of(out);
			assert_int_equal(backend_of(out), first);
			rte_pktmbuf_free(out);
		}
	}
	assert_int_equal(f->cnt.fragments_forwarded, 60);
}

static void test_every_mbuf_is_returned(void **state)
{
	struct fixture *f = *state;
	struct rte_mempool *pool = test_env_pool();
	unsigned int before = rte_mempool_avail_count(pool);
	struct rte_mbuf *burst[40];
	uint16_t n_tx, n_kernel;

	/* a burst mixing forwarded, dropped and kernel-bound frames */
	for (int i = 0; i < 40; i++)
		burst[i] = i % 4 == 0 ? tcp4(CLIENT4, VIP_L2, (uint16_t)i, 80, 2) :
			   i % 4 == 1 ? tcp4(CLIENT4, VIP_L2, (uint16_t)i, 9, 2) :
			   i % 4 == 2 ? udp4(CLIENT4, "10.0.0.1", 1, 2) :
					udp4(CLIENT4, VIP_GUE, (uint16_t)i, 53);
	assert_int_equal(fixture_run(f, burst, 40, NULL, &n_tx, NULL, &n_kernel),
			 30);
	assert_int_equal(rte_mempool_avail_count(pool), before);
}

static const struct service *service_named(const struct fixture *f,
					   const char *name)
{
	for (uint32_t id = 0; id < f->fwd->capacity; id++)
		if (f->fwd->services[id] &&
		    strcmp(f->fwd->services[id]->name, name) == 0)
			return f->fwd->services[id];
	fail_msg("no service %s", name);
	return NULL;
}

/* What `backend list` shows as each backend's flows: every flow balanced
 * to it counts until it is idle. */
static void test_backend_flows_counted(void **state)
{
	struct fixture *f = *state;
	const struct service_table *t = service_table_get(service_named(f, "l2"));
	uint64_t *before = calloc(f->fwd->max_backends, sizeof(*before));
	uint64_t *after = calloc(f->fwd->max_backends, sizeof(*after));
	uint64_t sent[N_BACKENDS] = { 0 }, total = 0;

	assert_non_null(before);
	assert_non_null(after);
	backend_flows_count(f->conns, f->fwd, f->ctx.now, before);
	for (uint16_t i = 0; i < 60; i++) {
		struct rte_mbuf *m = run_tx(f, tcp4("192.0.2.99", VIP_L2,
						    (uint16_t)(20000 + i), 80,
						    RTE_TCP_SYN_FLAG));

		assert_true(backend_of(m) >= 0);
		sent[backend_of(m)]++;
		rte_pktmbuf_free(m);
	}
	/* a flow's later packets add no flow */
	rte_pktmbuf_free(run_tx(f, tcp4("192.0.2.99", VIP_L2, 20000, 80,
					RTE_TCP_ACK_FLAG)));
	backend_flows_count(f->conns, f->fwd, f->ctx.now, after);
	for (uint32_t i = 0; i < N_BACKENDS; i++) {
		uint32_t id = t->backends[i].stat_id;

		assert_int_equal(after[id] - before[id], sent[i]);
		assert_true(sent[i] > 0);
		total += after[id] - before[id];
	}
	assert_int_equal(total, 60);

	/* idle past the TCP timeout, none is counted */
	memset(after, 0, f->fwd->max_backends * sizeof(*after));
	backend_flows_count(f->conns, f->fwd,
			    f->ctx.now + f->conns->tcp_timeout + 1, after);
	for (uint32_t i = 0; i < f->fwd->max_backends; i++)
		assert_int_equal(after[i], 0);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l2dsr_rewrites_macs_only),
		cmocka_unit_test(test_unanswered_neighbour_backs_off),
		cmocka_unit_test(test_l2dsr_keeps_vlan_tag),
		cmocka_unit_test(test_ipip4_outer_header),
		cmocka_unit_test(test_ip6ip6_outer_header),
		cmocka_unit_test(test_gue4),
		cmocka_unit_test(test_gue6_has_valid_udp_checksum),
		cmocka_unit_test(test_encap_beyond_mtu_is_dropped),
		cmocka_unit_test(test_flows_spread_and_stick),
		cmocka_unit_test(test_established_flow_keeps_draining_backend),
		cmocka_unit_test(test_backend_flows_counted),
		cmocka_unit_test(test_same_flow_same_backend_on_two_hosts),
		cmocka_unit_test(test_unresolved_neighbour_is_dropped),
		cmocka_unit_test(test_host_traffic_goes_to_kernel),
		cmocka_unit_test(test_vip_without_service_port_is_dropped),
		cmocka_unit_test(test_arp_request_for_vip_is_answered),
		cmocka_unit_test(test_arp_reply_from_backend_is_learned),
		cmocka_unit_test(test_ndp_solicitation_for_vip_is_answered),
		cmocka_unit_test(test_ping_to_vip_is_answered),
		cmocka_unit_test(test_frag_needed_goes_to_flow_backend),
		cmocka_unit_test(test_packet_too_big_goes_to_flow_backend),
		cmocka_unit_test(test_fragments_of_a_datagram_meet),
		cmocka_unit_test(test_every_mbuf_is_returned),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
