/* A balancer in a test: one port, a few services, resolved neighbours, a
 * conn table and counters, wired into a pipeline context, exactly as a
 * worker has them but with no NIC. Used by the packet tests and the
 * benchmark.
 *
 * Port 0: MAC 02:00:00:00:00:01, 10.0.0.1/16 and fd00::1/64, with an
 * exception path. Backend i of every service is 10.0.(i/250).(i%250+10)
 * or fd00::b:i, and its MAC is fixture_backend_mac(i). */
#ifndef FULCRUM_TEST_FIXTURE_H
#define FULCRUM_TEST_FIXTURE_H

#include "config.h"
#include "conn_table.h"
#include "counters.h"
#include "fwd_state.h"
#include "neigh.h"
#include "pipeline.h"

#define FIXTURE_PORT_MAC { 0x02, 0, 0, 0, 0, 0x01 }
#define FIXTURE_PORT_ADDR4 "10.0.0.1"
#define FIXTURE_PORT_ADDR6 "fd00::1"
#define FIXTURE_GATEWAY4 "10.0.0.254"
#define FIXTURE_MAX_BACKENDS 1000

struct fixture {
	struct dataplane_config cfg;
	struct neigh_table *neigh;
	struct fwd_state *fwd;
	struct conn_table *conns;
	struct worker_counters cnt;
	struct pipeline_ctx ctx;
};

/* Defaults plus port 0; no services yet. */
void fixture_init(struct fixture *f);

/* Adds a service with n backends of weight 1 (family taken from vip). */
struct service_config *fixture_service(struct fixture *f, const char *name,
				       const char *vip, uint8_t proto,
				       uint16_t port, enum fwd_mode mode,
				       uint32_t n_backends);

/* Builds the state; every backend's MAC is learned as if it had answered
 * ARP, unless `resolve` is false. Returns 0 or -1 (message on stderr). */
int fixture_start(struct fixture *f, uint32_t conn_capacity, bool resolve);
void fixture_stop(struct fixture *f);

struct rte_ether_addr fixture_backend_mac(uint32_t i);
void fixture_backend_addr(uint32_t i, uint8_t family, union ip_addr *out);

/* Runs one burst from port 0 and empties ctx.out into the arrays given
 * (either may be NULL when the test expects none there). Returns the
 * number of frames that came out. */
uint16_t fixture_run(struct fixture *f, struct rte_mbuf **pkts, uint16_t n,
		     struct rte_mbuf **tx, uint16_t *n_tx,
		     struct rte_mbuf **kernel, uint16_t *n_kernel);

#endif
