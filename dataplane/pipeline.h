/* The packet's journey through one worker, a burst at a time:
 *   parse -> VIP lookup -> connection table -> Maglev -> encap -> out.
 * The pipeline sends nothing itself: it sorts the burst into per-port
 * transmit and to-kernel lists, so the worker loop, the unit tests and the
 * benchmark drive the very same code. */
#ifndef FULCRUM_PIPELINE_H
#define FULCRUM_PIPELINE_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "config.h"
#include "conn_table.h"
#include "constants.h"
#include "counters.h"
#include "fwd_state.h"

struct pipeline_out {
	uint16_t n_tx[CONFIG_MAX_PORTS];
	uint16_t n_kernel[CONFIG_MAX_PORTS];
	struct rte_mbuf *tx[CONFIG_MAX_PORTS][PIPELINE_BURST_MAX];
	struct rte_mbuf *kernel[CONFIG_MAX_PORTS][PIPELINE_BURST_MAX];
};

/* Entries of a worker's VIP hints: a power of two, and room for far more
 * VIP ports than a worker's bursts go to at once. */
#define PIPELINE_VIP_HINTS 256

struct pipeline_ctx {
	const struct fwd_state *fwd;   /* loaded by the caller per burst */
	struct conn_table *conns;      /* this worker's own */
	struct worker_counters *cnt;   /* this worker's own */
	uint32_t now;                  /* seconds, coarse, set per burst */
	struct pipeline_out out;       /* emptied by the caller after a run */
	/* The service id a VIP key last resolved to, by a hash of the key:
	 * a guess checked against fwd on every use, so it may start zeroed
	 * and outlive any state. Spares established and new flows the
	 * rte_hash lookup of their VIP. */
	uint32_t vip_hint[PIPELINE_VIP_HINTS];
};

/* Processes n <= PIPELINE_BURST_MAX frames received on port index
 * in_port. Every mbuf ends in ctx->out or is freed (and counted). */
void pipeline_run(struct pipeline_ctx *ctx, uint16_t in_port,
		  struct rte_mbuf **pkts, uint16_t n);

#endif
