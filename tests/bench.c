/* fulcrum-bench: pushes synthetic frames through the real pipeline on one
 * lcore, with no NIC, and prints ns per packet and Mpps per traffic mix
 * beside an I/O floor: the same loop that only rewrites, touches and
 * forwards each frame. The figures are read against that floor, measured
 * in the same run, because the machines this runs on are shared and noisy.
 *
 * Every frame is regenerated before each pass (template copied, flow
 * written, IPv4 checksum fixed), in the floor loop too, so the difference
 * between a mix and the floor is the pipeline's own cost. */
#include <getopt.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "csum.h"
#include "fixture.h"
#include "maglev.h"
#include "pkt_craft.h"

#define BURST 32
#define VIP "10.0.0.100"
#define NON_VIP "10.0.0.1"
#define BENCH_BACKENDS 100
#define CONN_CAPACITY (1u << 20)
#define HUGE_MB_WANTED 1024
#define MAX_RESULTS 16
#define ROUNDS 3

struct result {
	char name[48];
	double ns;        /* per packet, or per build for Maglev */
	double mpps;
	double floor_ns;  /* the I/O floor of the same run; 0 for builds */
};

static struct result results[MAX_RESULTS];
static const char *only;   /* -m: run only the mixes whose name has this */
static unsigned int n_results;

struct traffic {
	uint8_t frame[128];
	uint16_t len;
	uint64_t flows;       /* flow ids are 0..flows-1, or ever new if 0 */
	uint64_t next_new;
	uint64_t rng;
};

/* Hugepages when enough are free (fewer TLB misses, as in production),
 * else plain memory: the figures say which. */
static bool init_eal(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
			"r");
	unsigned long free_pages = 0;
	char prefix[64], mem[16];
	bool huge;

	if (f) {
		if (fscanf(f, "%lu", &free_pages) != 1)
			free_pages = 0;
		fclose(f);
	}
	huge = free_pages * 2 >= HUGE_MB_WANTED;
	snprintf(prefix, sizeof(prefix), "fulcrum-bench-%d", (int)getpid());
	snprintf(mem, sizeof(mem), "%d", huge ? HUGE_MB_WANTED : 3072);
	char *argv[] = { "fulcrum-bench", "-l", "0", "--no-pci", "-m", mem,
			 "--file-prefix", prefix, "--no-telemetry",
			 "--log-level=*:error",
			 huge ? "--in-memory" : "--no-huge",
			 huge ? NULL : "--no-shconf", NULL };
	int argc = huge ? 11 : 12;

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "fulcrum-bench: EAL: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	return huge;
}

static void make_template(struct traffic *t, const char *dst, uint8_t flags)
{
	static const struct rte_ether_addr port_mac = { FIXTURE_PORT_MAC };
	struct rte_mbuf *m;
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, &port_mac);
	craft_ipv4(&c, "198.18.0.0", dst);
	craft_tcp(&c, 1024, 80, flags);
	craft_payload(&c, NULL, 6);            /* a 60-byte frame */
	m = craft_end(&c);
	t->len = (uint16_t)m->pkt_len;
	memcpy(t->frame, rte_pktmbuf_mtod(m, void *), t->len);
	rte_pktmbuf_free(m);
}

static uint64_t next_flow(struct traffic *t)
{
	if (t->flows == 0)
		return t->next_new++;
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng % t->flows;
}

/* Writes flow id into a fresh copy of the template: the client address
 * and port, with the IPv4 checksum updated as a sender would. */
static void regenerate(struct rte_mbuf *m, struct traffic *t, uint64_t flow)
{
	uint8_t *p;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;
	uint32_t src = 0xc6120000u + (uint32_t)(flow / 60000);
	rte_be32_t old;

	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->data_len = m->pkt_len = t->len;
	m->ol_flags = 0;
	p = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(p, t->frame, t->len);
	ip = (struct rte_ipv4_hdr *)(p + sizeof(struct rte_ether_hdr));
	tcp = (struct rte_tcp_hdr *)(ip + 1);
	old = ip->src_addr;
	ip->src_addr = rte_cpu_to_be_32(src);
	ip->hdr_checksum = csum_replace2(ip->hdr_checksum, (uint16_t)old,
					 (uint16_t)ip->src_addr);
	ip->hdr_checksum = csum_replace2(ip->hdr_checksum,
					 (uint16_t)(old >> 16),
					 (uint16_t)(ip->src_addr >> 16));
	tcp->src_port = rte_cpu_to_be_16((uint16_t)(1024 + flow % 60000));
}

/* The cheapest thing a forwarder can do: swap MACs and hand it on. */
static void floor_pass(struct fixture *fx, struct rte_mbuf **pkts)
{
	for (int i = 0; i < BURST; i++) {
		struct rte_ether_hdr *eth =
			rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *);
		struct rte_ether_addr tmp = eth->src_addr;

		eth->src_addr = eth->dst_addr;
		eth->dst_addr = tmp;
		fx->ctx.out.tx[0][i] = pkts[i];
	}
	fx->ctx.out.n_tx[0] = BURST;
}

/* Runs `packets` packets of traffic t and returns ns per packet. The
 * output lists are emptied without freeing: the frames are reused. */
static double run(struct fixture *fx, struct rte_mbuf **pkts,
		  struct traffic *t, uint64_t packets, bool pipeline)
{
	struct pipeline_out *out = &fx->ctx.out;
	uint64_t start = rte_rdtsc_precise(), done = 0;

	while (done < packets) {
		for (int i = 0; i < BURST; i++)
			regenerate(pkts[i], t, next_flow(t));
		if (pipeline)
			pipeline_run(&fx->ctx, 0, pkts, BURST);
		else
			floor_pass(fx, pkts);
		if (out->n_tx[0] + out->n_kernel[0] != BURST) {
			fprintf(stderr, "fulcrum-bench: frames were dropped: %u out "
				"of %u came out\n", out->n_tx[0] + out->n_kernel[0],
				BURST);
			exit(1);
		}
		out->n_tx[0] = out->n_kernel[0] = 0;
		done += BURST;
	}
	return (double)(rte_rdtsc_precise() - start) * 1e9 /
	       (double)rte_get_tsc_hz() / (double)done;
}

static void record(const char *name, double ns, double floor_ns)
{
	struct result *r = &results[n_results++];

	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ns = ns;
	r->mpps = ns > 0 ? 1e3 / ns : 0;
	r->floor_ns = floor_ns;
	if (floor_ns > 0)
		printf("%-30s %7.1f ns/pkt %7.2f Mpps   (floor %5.1f ns, "
		       "pipeline %5.1f ns)\n", name, ns, r->mpps, floor_ns,
		       ns - floor_ns);
	else
		printf("%-30s %9.3f ms\n", name, ns / 1e6);
	fflush(stdout);
}

/* One mix, on a fresh balancer: the floor, then the pipeline, over the
 * same traffic. */
static void mix(struct rte_mbuf **pkts, const char *name, const char *dst,
		uint8_t flags, uint64_t flows, uint64_t packets)
{
	struct traffic t = { .flows = flows, .rng = 0x9e3779b97f4a7c15ull };
	struct fixture fixture, *fx = &fixture;
	double floor_ns, ns;

	if (only && !strstr(name, only))
		return;
	fixture_init(fx);
	fixture_service(fx, "bench", VIP, IPPROTO_TCP, 80, FWD_IPIP,
			BENCH_BACKENDS);
	if (fixture_start(fx, CONN_CAPACITY, true) < 0)
		exit(1);
	make_template(&t, dst, flags);
	if (flows) {
		/* open every flow once, so that the run measures hits */
		struct traffic warm = t;

		warm.flows = 0;
		run(fx, pkts, &warm, (flows + BURST - 1) / BURST * BURST, true);
	}
	/* best of a few alternating rounds: the machines this runs on are
	 * shared, and a neighbour's burst should not count as our cost */
	floor_ns = ns = 1e18;
	for (int round = 0; round < ROUNDS; round++) {
		floor_ns = RTE_MIN(floor_ns, run(fx, pkts, &t, packets, false));
		ns = RTE_MIN(ns, run(fx, pkts, &t, packets, true));
	}
	record(name, ns, floor_ns);
	fixture_stop(fx);
}

/* Best of 20 builds of n backends, all at weight 1 but for one at
 * `heavy`: the build's own cost, without the noise of a shared machine. */
static void maglev_build_time(struct maglev_scratch *s, uint32_t n,
			      uint32_t heavy)
{
	static uint32_t table[MAGLEV_DEFAULT_SIZE];
	struct maglev_backend mb[1000];
	double best = 1e18;
	char name[64];

	for (uint32_t i = 0; i < n; i++) {
		union ip_addr a;

		fixture_backend_addr(i, AF_INET, &a);
		mb[i] = (struct maglev_backend){
			.key = maglev_backend_key(a.v6, 0),
			.weight = i == 0 ? heavy : 1, .slot = i };
	}
	for (int rep = 0; rep < 20; rep++) {
		uint64_t t0 = rte_rdtsc_precise();
		double ns;

		maglev_build(table, MAGLEV_DEFAULT_SIZE, mb, n, s);
		ns = (double)(rte_rdtsc_precise() - t0) * 1e9 /
		     (double)rte_get_tsc_hz();
		if (ns < best)
			best = ns;
	}
	if (heavy > 1)
		snprintf(name, sizeof(name), "maglev build M=65537 N=%u, one "
			 "at weight %u", n, heavy);
	else
		snprintf(name, sizeof(name), "maglev build M=65537 N=%u", n);
	record(name, best, 0);
}

static void maglev_builds(void)
{
	struct maglev_scratch *s = maglev_scratch_create(1000, MAGLEV_DEFAULT_SIZE);

	maglev_build_time(s, 10, 1);
	maglev_build_time(s, 100, 1);
	maglev_build_time(s, 1000, 1);
	/* as in scripts/bench-control: one backend's weight changed */
	maglev_build_time(s, 100, 8);
	maglev_scratch_free(s);
}

static void write_json(const char *path, bool huge)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f, "{\n  \"hugepages\": %s,\n  \"results\": [\n",
		huge ? "true" : "false");
	for (unsigned int i = 0; i < n_results; i++)
		fprintf(f, "    {\"name\": \"%s\", \"ns\": %.2f, \"mpps\": %.3f, "
			"\"floor_ns\": %.2f}%s\n", results[i].name, results[i].ns,
			results[i].mpps, results[i].floor_ns,
			i + 1 < n_results ? "," : "");
	fprintf(f, "  ]\n}\n");
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *json = "build/bench.json";
	uint64_t packets = 10000000;
	struct rte_mbuf *pkts[BURST];
	struct rte_mempool *pool;
	bool huge;
	int opt;

	while ((opt = getopt(argc, argv, "j:m:n:")) != -1) {
		if (opt == 'j')
			json = optarg;
		else if (opt == 'm')
			only = optarg;
		else if (opt == 'n')
			packets = strtoull(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: fulcrum-bench [-j JSON] [-m MIX] "
				"[-n PACKETS]\n");
			return 2;
		}
	}
	huge = init_eal();
	printf("fulcrum-bench: one lcore, %s, %d-byte frames, IPIP to %d "
	       "backends, %" PRIu64 " packets per round, best of %d rounds\n",
	       huge ? "hugepages" : "no hugepages", 60, BENCH_BACKENDS, packets, ROUNDS);

	pool = rte_pktmbuf_pool_create("bench", 1023, 0, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!pool || rte_pktmbuf_alloc_bulk(pool, pkts, BURST) < 0)
		return 1;

	mix(pkts, "new flows (SYN)", VIP, RTE_TCP_SYN_FLAG, 0, packets);
	mix(pkts, "established, 10k flows", VIP, RTE_TCP_ACK_FLAG, 10000,
	    packets);
	mix(pkts, "established, 1M flows", VIP, RTE_TCP_ACK_FLAG, 1000000,
	    packets);
	mix(pkts, "non-VIP (to kernel)", NON_VIP, RTE_TCP_ACK_FLAG, 0, packets);
	if (!only || strstr("maglev", only))
		maglev_builds();
	write_json(json, huge);
	printf("fulcrum-bench: wrote %s\n", json);

	rte_pktmbuf_free_bulk(pkts, BURST);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return 0;
}
