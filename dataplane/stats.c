#include "stats.h"

#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>

#include "backend_flows.h"
#include "dataplane.h"
#include "state_json.h"
#include "worker.h"

/* The per-worker totals, by the names scripts see. */
#define TOTALS(X)                                                        \
	X(rx) X(tx) X(to_kernel) X(from_kernel) X(arp_replies)           \
	X(icmp_echo_replies) X(icmp_pmtu_forwarded) X(fragments_forwarded) \
	X(conn_new) X(conn_hit) X(conn_expired) X(conn_evicted)          \
	X(conn_rebalanced) X(neigh_learned)

static json_t *totals_of(const struct worker_counters *c)
{
	json_t *o = json_object();

#define X(f) json_object_set_new(o, #f, json_integer((json_int_t)c->f));
	TOTALS(X)
#undef X
	return o;
}

static const struct worker_counters *block(const struct dataplane *dp,
					   unsigned int i)
{
	return i < dp->n_workers ? &dp->workers[i]->cnt : &dp->exception_cnt;
}

/* Every worker's block, and the main lcore's, summed. */
static void sum_blocks(const struct dataplane *dp, struct worker_counters *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int i = 0; i <= dp->n_workers; i++) {
		const struct worker_counters *c = block(dp, i);

#define X(f) sum->f += c->f;
		TOTALS(X)
#undef X
		for (int r = 0; r < DROP_REASON_MAX; r++)
			sum->drops[r] += c->drops[r];
	}
}

static json_t *packets(const struct dataplane *dp, bool service, uint32_t id)
{
	uint64_t n = 0, bytes = 0;

	for (unsigned int w = 0; w < dp->n_workers; w++) {
		const struct worker_counters *c = &dp->workers[w]->cnt;
		const struct pkt_counter *one = service ? &c->service[id] :
							  &c->backend[id];

		n += one->packets;
		bytes += one->bytes;
	}
	return json_pack("{s:I, s:I}", "packets", (json_int_t)n, "bytes",
			 (json_int_t)bytes);
}

static char *lower(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

/* Counters per service and backend, in the live state's order, with
 * each backend's flows in the workers' connection tables. */
static json_t *services_json(const struct dataplane *dp)
{
	const struct fwd_state *fwd = __atomic_load_n(&dp->fwd, __ATOMIC_ACQUIRE);
	json_t *list = fwd ? state_json_dump(fwd) : json_array();
	uint64_t *flows = fwd ? calloc(fwd->max_backends + 1, sizeof(*flows)) :
				NULL;
	json_t *svc;
	size_t i;

	for (unsigned int w = 0; flows && w < dp->n_workers; w++)
		backend_flows_count(dp->workers[w]->ctx.conns, fwd,
				    dataplane_now(dp, rte_rdtsc()), flows);
	json_array_foreach(list, i, svc) {
		const struct service *s = NULL;
		const struct service_table *t;
		json_t *be;
		size_t k;

		for (uint32_t id = 0; id < fwd->capacity && !s; id++)
			if (fwd->services[id] &&
			    strcmp(fwd->services[id]->name,
				   json_string_value(json_object_get(svc, "name"))) == 0)
				s = fwd->services[id];
		json_object_update(svc, packets(dp, true, s->id));
		t = service_table_get(s);
		json_array_foreach(json_object_get(svc, "backends"), k, be) {
			union ip_addr a;
			uint8_t family;

			ip_addr_parse(json_string_value(json_object_get(be, "addr")),
				      &a, &family);
			for (uint32_t b = 0; b < t->n_backends; b++)
				if (t->backends[b].state != BACKEND_REMOVED &&
				    ip_addr_eq(&t->backends[b].addr, &a)) {
					json_object_update(be, packets(dp, false,
						t->backends[b].stat_id));
					if (flows)
						json_object_set_new(be, "flows",
							json_integer((json_int_t)
							flows[t->backends[b].stat_id]));
				}
		}
	}
	free(flows);
	return list;
}

json_t *stats_json(const struct dataplane *dp)
{
	struct worker_counters sum;
	json_t *drops = json_object(), *workers = json_array();
	char name[64];

	sum_blocks(dp, &sum);
	for (int r = 0; r < DROP_REASON_MAX; r++)
		if (sum.drops[r])
			json_object_set_new(drops, lower(drop_reason_names[r], name,
							 sizeof(name)),
					    json_integer((json_int_t)sum.drops[r]));
	for (unsigned int w = 0; w < dp->n_workers; w++) {
		json_t *o = totals_of(&dp->workers[w]->cnt);

		json_object_set_new(o, "lcore",
				    json_integer(dp->workers[w]->lcore));
		json_array_append_new(workers, o);
	}
	return json_pack("{s:o, s:o, s:o, s:o}", "totals", totals_of(&sum),
			 "drops", drops, "workers", workers, "services",
			 services_json(dp));
}

static uint64_t get(const json_t *o, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(o, key));
}

void stats_print(const struct dataplane *dp, FILE *out)
{
	json_t *s = stats_json(dp), *t = json_object_get(s, "totals");
	json_t *svc, *be, *n;
	const char *reason;
	size_t i, k;

	fprintf(out, "rx %" PRIu64 " tx %" PRIu64 " to_kernel %" PRIu64
		" from_kernel %" PRIu64 "\n", get(t, "rx"), get(t, "tx"),
		get(t, "to_kernel"), get(t, "from_kernel"));
	fprintf(out, "conns new %" PRIu64 " hit %" PRIu64 " expired %" PRIu64
		" evicted %" PRIu64 " rebalanced %" PRIu64 "\n",
		get(t, "conn_new"), get(t, "conn_hit"), get(t, "conn_expired"),
		get(t, "conn_evicted"), get(t, "conn_rebalanced"));
	fprintf(out, "arp/ndp replies %" PRIu64 " neighbours learned %" PRIu64
		" icmp echo %" PRIu64 " pmtu %" PRIu64 " fragments %" PRIu64 "\n",
		get(t, "arp_replies"), get(t, "neigh_learned"),
		get(t, "icmp_echo_replies"), get(t, "icmp_pmtu_forwarded"),
		get(t, "fragments_forwarded"));
	for (int r = 0; r < DROP_REASON_MAX; r++) {
		char name[64];

		reason = lower(drop_reason_names[r], name, sizeof(name));
		n = json_object_get(json_object_get(s, "drops"), reason);
		if (n)
			fprintf(out, "drop %s %" PRIu64 " (%s)\n", reason,
				(uint64_t)json_integer_value(n),
				drop_reason_texts[r]);
	}
	json_array_foreach(json_object_get(s, "services"), i, svc) {
		fprintf(out, "service %s %s:%" PRIu64 " packets %" PRIu64
			" bytes %" PRIu64 "\n",
			json_string_value(json_object_get(svc, "name")),
			json_string_value(json_object_get(svc, "vip")),
			get(svc, "port"), get(svc, "packets"), get(svc, "bytes"));
		json_array_foreach(json_object_get(svc, "backends"), k, be)
			fprintf(out, "  backend %s packets %" PRIu64 " bytes %" PRIu64
				"\n", json_string_value(json_object_get(be, "addr")),
				get(be, "packets"), get(be, "bytes"));
	}
	json_decref(s);
}
