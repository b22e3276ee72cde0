#include "worker.h"

#include <stdio.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dataplane.h"

/* Entries checked for idleness per loop: a 1M-entry table is swept about
 * once every few seconds under load, at a cost of a few ns per burst. */
#define SWEEP_BUDGET 64
/* Empty polls before the idle back-off starts to sleep. */
#define IDLE_SPINS 64

struct worker *worker_create(struct dataplane *dp, uint16_t index,
			     unsigned int lcore, char *err, size_t err_len)
{
	const struct dataplane_config *cfg = &dp->cfg;
	int socket = (int)rte_lcore_to_socket_id(lcore);
	struct worker *w = rte_zmalloc_socket("worker", sizeof(*w),
					      RTE_CACHE_LINE_SIZE, socket);
	char name[RTE_RING_NAMESIZE];

	if (!w)
		goto nomem;
	w->dp = dp;
	w->lcore = lcore;
	w->index = index;
	w->n_ports = dp->n_ports;
	w->cnt.service = rte_zmalloc_socket("svc_cnt", sizeof(struct pkt_counter) *
					    cfg->max_services, 0, socket);
	w->cnt.backend = rte_zmalloc_socket("be_cnt", sizeof(struct pkt_counter) *
					    cfg->max_backends, 0, socket);
	snprintf(name, sizeof(name), "conns_w%u", index);
	w->ctx.conns = conn_table_create(name, cfg->conn_table_size,
					 cfg->tcp_idle_timeout_s,
					 cfg->udp_idle_timeout_s, cfg->hash_seed,
					 socket);
	if (!w->cnt.service || !w->cnt.backend || !w->ctx.conns)
		goto nomem;
	w->ctx.cnt = &w->cnt;
	for (uint16_t p = 0; p < dp->n_ports; p++) {
		w->dpdk_port[p] = dp->ports[p].port_id;
		w->rxq[p] = index;
		if (index == 0)
			w->host_tx[p] = dp->host_tx[p];
		if (dp->ports[p].tap_port_id == UINT16_MAX)
			continue;
		snprintf(name, sizeof(name), "kern_w%u_p%u", index, p);
		w->to_kernel[p] = rte_ring_create(name, 1024, socket,
						  RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!w->to_kernel[p])
			goto nomem;
	}
	return w;
nomem:
	snprintf(err, err_len, "worker %u: out of memory (conn_table_size=%u)",
		 index, cfg->conn_table_size);
	worker_free(w);
	return NULL;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	for (uint16_t p = 0; p < CONFIG_MAX_PORTS; p++)
		rte_ring_free(w->to_kernel[p]);
	conn_table_free(w->ctx.conns);
	rte_free(w->cnt.service);
	rte_free(w->cnt.backend);
	rte_free(w);
}

static void free_unsent(struct rte_mbuf **pkts, uint16_t sent, uint16_t n,
			uint64_t *drops)
{
	if (sent < n) {
		*drops += n - sent;
		rte_pktmbuf_free_bulk(&pkts[sent], n - sent);
	}
}

void worker_flush(struct worker *w)
{
	struct pipeline_out *out = &w->ctx.out;

	for (uint16_t p = 0; p < w->n_ports; p++) {
		uint16_t n = out->n_tx[p], k = out->n_kernel[p], sent;

		if (n) {
			sent = rte_eth_tx_burst(w->dpdk_port[p], w->index,
						out->tx[p], n);
			w->cnt.tx += sent;
			free_unsent(out->tx[p], sent, n,
				    &w->cnt.drops[DROP_TX_FULL]);
			out->n_tx[p] = 0;
		}
		if (k) {
			sent = (uint16_t)rte_ring_sp_enqueue_burst(
				w->to_kernel[p], (void **)out->kernel[p], k, NULL);
			free_unsent(out->kernel[p], sent, k,
				    &w->cnt.drops[DROP_EXCEPTION_FULL]);
			out->n_kernel[p] = 0;
		}
	}
}

/* Transmits what the host sent through the exception path. */
static uint32_t send_host_frames(struct worker *w)
{
	struct rte_mbuf *pkts[PIPELINE_BURST_MAX];
	uint32_t total = 0;

	for (uint16_t p = 0; p < w->n_ports; p++) {
		uint16_t n, sent;

		if (!w->host_tx[p])
			continue;
		n = (uint16_t)rte_ring_sc_dequeue_burst(w->host_tx[p],
				(void **)pkts, PIPELINE_BURST_MAX, NULL);
		if (n == 0)
			continue;
		sent = rte_eth_tx_burst(w->dpdk_port[p], w->index, pkts, n);
		w->cnt.tx += sent;
		free_unsent(pkts, sent, n, &w->cnt.drops[DROP_TX_FULL]);
		total += n;
	}
	return total;
}

/* Sleeps longer the longer the queues stay empty, so that test hosts and
 * small machines are not held at 100% by an idle poller. */
static void idle_backoff(struct worker *w, unsigned int *empty_polls,
			 unsigned int *sleep_us)
{
	const unsigned int max_us = w->dp->cfg.idle_sleep_max_us;

	if (++*empty_polls < IDLE_SPINS)
		return;
	/* asleep, it holds no references: updates need not wait for it */
	rte_rcu_qsbr_thread_offline(w->dp->rcu, w->index);
	rte_delay_us_sleep(*sleep_us);
	rte_rcu_qsbr_thread_online(w->dp->rcu, w->index);
	if (*sleep_us < max_us)
		*sleep_us = RTE_MIN(*sleep_us * 2, max_us);
}

int worker_main(void *arg)
{
	struct worker *w = arg;
	struct dataplane *dp = w->dp;
	const unsigned int burst = RTE_MIN(dp->cfg.burst, (unsigned int)PIPELINE_BURST_MAX);
	const bool backoff = dp->cfg.idle_backoff;
	unsigned int empty_polls = 0, sleep_us = 1;
	struct rte_mbuf *pkts[PIPELINE_BURST_MAX];

	rte_rcu_qsbr_thread_register(dp->rcu, w->index);
	rte_rcu_qsbr_thread_online(dp->rcu, w->index);
	while (!dataplane_stopping(dp)) {
		uint32_t received = 0;

		w->ctx.now = dataplane_now(dp, rte_rdtsc());
		w->ctx.fwd = __atomic_load_n(&dp->fwd, __ATOMIC_ACQUIRE);
		for (uint16_t p = 0; p < w->n_ports; p++) {
			uint16_t n = rte_eth_rx_burst(w->dpdk_port[p], w->rxq[p],
						      pkts, (uint16_t)burst);

			if (n == 0)
				continue;
			received += n;
			pipeline_run(&w->ctx, p, pkts, n);
			worker_flush(w);
		}
		received += send_host_frames(w);
		conn_sweep(w->ctx.conns, w->ctx.now, SWEEP_BUDGET, &w->cnt);
		/* done with this burst's state and tables */
		rte_rcu_qsbr_quiescent(dp->rcu, w->index);
		if (received) {
			empty_polls = 0;
			sleep_us = 1;
		} else if (backoff) {
			idle_backoff(w, &empty_polls, &sleep_us);
		}
	}
	rte_rcu_qsbr_thread_offline(dp->rcu, w->index);
	rte_rcu_qsbr_thread_unregister(dp->rcu, w->index);
	return 0;
}
