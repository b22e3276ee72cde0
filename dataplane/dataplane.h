/* The running dataplane process: its ports, shared tables and workers.
 * Built once by main.c; workers and the exception lcore only read it,
 * except for the forwarding-state pointer, which is swapped atomically. */
#ifndef FULCRUM_DATAPLANE_H
#define FULCRUM_DATAPLANE_H

#include <pthread.h>
#include <stdbool.h>

#include <rte_mempool.h>

#include "config.h"
#include "fwd_state.h"
#include "fwd_update.h"
#include "neigh.h"
#include "port.h"
#include "worker.h"

struct dataplane {
	struct dataplane_config cfg;
	struct rte_mempool *pool;
	uint16_t n_ports;
	struct port_runtime ports[CONFIG_MAX_PORTS];
	struct neigh_table *neigh;
	struct fwd_state *fwd;            /* atomic: workers load it per burst */
	/* Readers of fwd and of service tables: each worker (thread id =
	 * its index) and the main lcore (id n_workers) report a quiescent
	 * state every loop; what an update replaces is freed after all have. */
	struct rte_rcu_qsbr *rcu;
	uint64_t version;                 /* the control plane's, as applied */
	/* The digest the control plane gave for the state it applied as
	 * that version (its store's, in hex), or "" when none did: what a
	 * conditional apply compares against (control.h). */
	char digest[65];
	/* An apply prepared and held until its publish (control.h): the
	 * control thread's, for the connection that sent it. */
	bool holding;
	struct fwd_update held;
	uint64_t held_version;
	uint32_t held_at;                 /* dataplane seconds, at its prepare */
	int control_fd;                   /* -1: no control socket */
	pthread_t control_thread;
	unsigned int n_workers;
	struct worker *workers[CONFIG_MAX_WORKERS];
	/* Frames the host sends (from its tap, and neighbour probes), which
	 * worker 0 transmits on its own queue: a port then needs one queue
	 * pair per worker and no more. Drivers that pair queues (af_packet,
	 * af_xdp) would otherwise spread received flows over an extra RX
	 * queue that no worker polls. */
	struct rte_ring *host_tx[CONFIG_MAX_PORTS];
	struct worker_counters exception_cnt;  /* the main lcore's own */
	uint64_t tsc_hz;
	uint64_t start_tsc;
	bool stop;                        /* atomic */
};

/* Coarse seconds since start, never 0 (0 marks an empty conn slot). */
static inline uint32_t dataplane_now(const struct dataplane *dp, uint64_t tsc)
{
	return (uint32_t)((tsc - dp->start_tsc) / dp->tsc_hz) + 1;
}

static inline bool dataplane_stopping(const struct dataplane *dp)
{
	return __atomic_load_n(&dp->stop, __ATOMIC_RELAXED);
}

#endif
