#include "backend_flows.h"

void backend_flows_count(const struct conn_table *t,
			 const struct fwd_state *fwd, uint32_t now,
			 uint64_t *flows)
{
	for (uint32_t pos = 0; pos < t->n_slots; pos++) {
		const struct conn_entry *e = &t->entries[pos];
		uint32_t deadline = __atomic_load_n(&e->deadline, __ATOMIC_RELAXED);
		uint32_t id, slot;
		const struct service *svc;
		const struct service_table *st;

		/* empty, or idle past its timeout (conn_sweep's test) */
		if (deadline == 0 || (int32_t)(deadline - now) < 0)
			continue;
		id = __atomic_load_n(&e->service, __ATOMIC_RELAXED);
		slot = __atomic_load_n(&e->backend, __ATOMIC_RELAXED);
		svc = id < fwd->capacity ? fwd->services[id] : NULL;
		if (!svc)
			continue;
		st = service_table_get(svc);
		if (slot < st->n_backends &&
		    st->backends[slot].stat_id < fwd->max_backends)
			flows[st->backends[slot].stat_id]++;
	}
}
