#include "exception_path.h"

#include <netinet/in.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>

#include "dataplane.h"
#include "neigh_proto.h"

#define EXCEPTION_BURST 32
#define EXCEPTION_IDLE_SLEEP_US 200

static uint16_t send_or_free(uint16_t port, uint16_t queue,
			     struct rte_mbuf **pkts, uint16_t n,
			     struct worker_counters *cnt)
{
	uint16_t sent = rte_eth_tx_burst(port, queue, pkts, n);

	if (sent < n) {
		cnt->drops[DROP_TX_FULL] += n - sent;
		rte_pktmbuf_free_bulk(&pkts[sent], n - sent);
	}
	return sent;
}

/* Hands frames for port p to worker 0, which owns a TX queue there. */
static uint16_t to_wire(struct dataplane *dp, uint16_t p,
			struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t queued = (uint16_t)rte_ring_sp_enqueue_burst(
		dp->host_tx[p], (void **)pkts, n, NULL);

	if (queued < n) {
		dp->exception_cnt.drops[DROP_TX_FULL] += n - queued;
		rte_pktmbuf_free_bulk(&pkts[queued], n - queued);
	}
	return queued;
}

unsigned int exception_path_poll(struct dataplane *dp)
{
	struct worker_counters *cnt = &dp->exception_cnt;
	struct rte_mbuf *pkts[EXCEPTION_BURST];
	unsigned int moved = 0;

	for (uint16_t p = 0; p < dp->n_ports; p++) {
		const struct port_runtime *port = &dp->ports[p];
		uint16_t n;

		if (port->tap_port_id == UINT16_MAX)
			continue;
		for (unsigned int w = 0; w < dp->n_workers; w++) {
			n = (uint16_t)rte_ring_sc_dequeue_burst(
				dp->workers[w]->to_kernel[p], (void **)pkts,
				EXCEPTION_BURST, NULL);
			if (n)
				moved += send_or_free(port->tap_port_id, 0, pkts, n, cnt);
		}
		n = rte_eth_rx_burst(port->tap_port_id, 0, pkts, EXCEPTION_BURST);
		if (n) {
			cnt->from_kernel += n;
			moved += to_wire(dp, p, pkts, n);
		}
	}
	return moved;
}

static struct rte_mbuf *probe_for(struct dataplane *dp,
				  const struct fwd_port *port,
				  const struct neigh_entry *e)
{
	if (e->key.family == AF_INET)
		return port->addr4.len ? arp_request(dp->pool, port,
						     e->key.addr.v4) : NULL;
	return port->addr6.len ? ndp_solicit(dp->pool, port, e->key.addr.v6) :
				 NULL;
}

/* Neighbours probed between two quiescent states of the main lcore: a
 * million take it a tenth of a second, which an update's grace period
 * would otherwise wait out. */
#define PROBES_PER_GRACE 1024

void exception_path_probe_neighbours(struct dataplane *dp, uint32_t now)
{
	struct neigh_table *t = dp->neigh;
	uint32_t count = __atomic_load_n(&t->count, __ATOMIC_ACQUIRE);

	for (uint32_t from = 0; from < count; from += PROBES_PER_GRACE) {
		const struct fwd_state *fwd = __atomic_load_n(&dp->fwd,
							      __ATOMIC_ACQUIRE);
		uint32_t to = RTE_MIN(count, from + PROBES_PER_GRACE);

		for (uint32_t i = from; i < to; i++) {
			const struct neigh_entry *e = &t->entries[i];
			struct rte_mbuf *m;

			if (e->port >= dp->n_ports ||
			    !neigh_probe_due(t, i, now))
				continue;
			m = probe_for(dp, &fwd->ports[e->port], e);
			/* one the full ring dropped was not asked: it stays
			 * due, and goes in a later second */
			if (m && to_wire(dp, e->port, &m, 1) == 1)
				neigh_probe_sent(t, i, now);
		}
		/* done with fwd */
		rte_rcu_qsbr_quiescent(dp->rcu, dp->n_workers);
	}
}

void exception_path_run(struct dataplane *dp)
{
	uint32_t last_probe = 0;

	while (!dataplane_stopping(dp)) {
		uint32_t now = dataplane_now(dp, rte_rdtsc());

		if (now != last_probe) {
			exception_path_probe_neighbours(dp, now);
			last_probe = now;
		}
		rte_rcu_qsbr_quiescent(dp->rcu, dp->n_workers);
		if (exception_path_poll(dp) == 0) {
			rte_rcu_qsbr_thread_offline(dp->rcu, dp->n_workers);
			rte_delay_us_sleep(EXCEPTION_IDLE_SLEEP_US);
			rte_rcu_qsbr_thread_online(dp->rcu, dp->n_workers);
		}
	}
}
