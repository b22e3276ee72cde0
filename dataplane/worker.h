/* A worker lcore: polls its RX queues, runs the pipeline, transmits.
 * Everything it writes on the hot path is its own (l3fwd's per-lcore
 * config pattern): its conn table, counters, TX queue and kernel rings. */
#ifndef FULCRUM_WORKER_H
#define FULCRUM_WORKER_H

#include <stdint.h>

#include <rte_ring.h>

#include "config.h"
#include "pipeline.h"

struct dataplane;

struct worker {
	unsigned int lcore;
	uint16_t index;                  /* also its TX queue on every port */
	uint16_t n_ports;
	uint16_t dpdk_port[CONFIG_MAX_PORTS];
	uint16_t rxq[CONFIG_MAX_PORTS];  /* its RX queue on each port */
	struct rte_ring *to_kernel[CONFIG_MAX_PORTS];
	struct rte_ring *host_tx[CONFIG_MAX_PORTS];  /* worker 0 only */
	struct pipeline_ctx ctx;
	struct worker_counters cnt;
	struct dataplane *dp;
};

/* Creates worker `index` with its conn table, counters and rings. */
struct worker *worker_create(struct dataplane *dp, uint16_t index,
			     unsigned int lcore, char *err, size_t err_len);
void worker_free(struct worker *w);

/* rte_eal_remote_launch entry point; returns when dp->stop is set. */
int worker_main(void *arg);

/* Sends what one pipeline run left in ctx->out: to the ports, or to the
 * kernel rings. Anything that does not fit is freed and counted. */
void worker_flush(struct worker *w);

#endif
