/* fulcrum-dataplane: reads its config, checks the host, brings up the
 * ports, builds the forwarding state and runs the workers until told to
 * stop. The main lcore carries host traffic and neighbour probes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "control.h"
#include "dataplane.h"
#include "exception_path.h"
#include "fwd_update.h"
#include "preflight.h"
#include "state_json.h"
#include "stats.h"
#include "store.h"
#include "stored_services.h"

#define EAL_MAX_ARGS 64
#define HOST_TX_RING 1024          /* frames from the host awaiting worker 0 */

static struct dataplane *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		__atomic_store_n(&running->stop, true, __ATOMIC_RELAXED);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fulcrum-dataplane -c CONFIG [--check]\n"
		"  -c, --config FILE  settings (see docs/operators-guide.md)\n"
		"      --check        only check the host against the config\n");
}

/* Turns [eal] into EAL arguments. PCI devices are probed only when a port
 * names one, and then only that one (an allow-list); otherwise --no-pci
 * keeps DPDK away from the host's own NICs. */
static int eal_args(struct dataplane_config *cfg, char **argv, char *buf,
		    size_t len)
{
	int argc = 0;
	bool any_pci = false;
	char *p = buf, *tok, *save;

#define ARG(...) do {                                            \
		int n_ = snprintf(p, len - (size_t)(p - buf), __VA_ARGS__); \
		if (argc >= EAL_MAX_ARGS - 1 || n_ < 0 ||             \
		    (size_t)n_ >= len - (size_t)(p - buf))            \
			return -1;                                    \
		argv[argc++] = p;                                     \
		p += n_ + 1;                                          \
	} while (0)

	ARG("fulcrum-dataplane");
	ARG("-l");
	ARG("%s", cfg->lcores);
	ARG("--main-lcore");
	ARG("%u", cfg->main_lcore);
	ARG("--file-prefix");
	ARG("%s", cfg->file_prefix);
	/* --in-memory implies hugepages in DPDK 22.11; without them
	 * --no-shconf gives the same isolation */
	if (cfg->no_huge) {
		ARG("--no-huge");
		ARG("--no-shconf");
	} else if (cfg->in_memory) {
		ARG("--in-memory");
	}
	if (cfg->memory_mb) {
		ARG("-m");
		ARG("%u", cfg->memory_mb);
	}
	for (unsigned int i = 0; i < cfg->n_ports; i++) {
		if (cfg->ports[i].driver != PORT_DRIVER_PCI)
			continue;
		any_pci = true;
		ARG("-a");
		ARG("%s", cfg->ports[i].pci);
	}
	if (!any_pci)
		ARG("--no-pci");
	for (tok = strtok_r(cfg->extra_eal, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		ARG("%s", tok);
#undef ARG
	argv[argc] = NULL;
	return argc;
}

/* The store's read, begun on a thread of its own just before EAL starts:
 * reading and checking a store of many services takes about as long as
 * EAL, the mbuf pool and the ports together, and needs none of them. */
struct store_read {
	const char *path;
	pthread_t thread;
	bool running;                  /* begun and not joined yet */
	int rc;
	uint64_t version;
	char digest[STORE_DIGEST_LEN];
	struct stored_services fs;
	char err[1024];
};

static struct store_read early;

static void *read_store(void *arg)
{
	struct store_read *r = arg;

	r->fs.err = r->err;
	r->fs.err_len = sizeof(r->err);
	r->rc = store_read_services(r->path, &r->version, r->digest, &r->fs.n,
				    stored_services_take, &r->fs, r->err,
				    sizeof(r->err));
	return NULL;
}

static void store_read_begin(struct store_read *r, const char *path)
{
	r->path = path;
	if (path[0] && access(path, F_OK) == 0)
		r->running = pthread_create(&r->thread, NULL, read_store,
					    r) == 0;
}

/* Waits for the read, or reads now if it never began. */
static int store_read_end(struct store_read *r)
{
	if (r->running) {
		pthread_join(r->thread, NULL);
		r->running = false;
	} else {
		read_store(r);
	}
	return r->rc;
}

/* Waits for a read that may still run, and frees what it read. */
static void store_read_drop(struct store_read *r)
{
	if (r->running) {
		pthread_join(r->thread, NULL);
		r->running = false;
	}
	state_json_free(r->fs.want, (uint32_t)r->fs.n);
	r->fs.want = NULL;
	r->fs.n = 0;
}

/* The services fulcrumd last committed, from its store, at the store's
 * version in dp->version and under the digest its log vouches for in
 * dp->digest: a restarted dataplane forwards for them at once, whether
 * fulcrumd is up or not, and fulcrumd's reconcile then finds it in sync
 * rather than behind, and its next push can be a conditional one
 * (control.h). NULL with err saying why the store will not do. */
static struct fwd_state *state_from_store(struct dataplane *dp,
					  const struct fwd_port *ports,
					  char *err, size_t err_len)
{
	const struct dataplane_config *cfg = &dp->cfg;
	struct fwd_state *s = NULL;
	struct fwd_update u;

	if (store_read_end(&early) < 0) {
		snprintf(err, err_len, "%s", early.err);
		goto out;
	}
	/* A store that was never changed vouches for no services: better
	 * the ones the config names than an empty table. */
	if (early.version == 0) {
		snprintf(err, err_len, "%s holds no committed change yet",
			 cfg->state_store);
		goto out;
	}
	s = fwd_state_empty(cfg, ports, dp->n_ports, dp->neigh);
	if (!s) {
		snprintf(err, err_len, "out of memory building the forwarding "
			 "state");
	} else if (fwd_update_prepare(s, early.fs.want, (uint32_t)early.fs.n,
				      1, &u, err, err_len) < 0) {
		fwd_state_free_index(s);
		s = NULL;
	} else {
		/* nothing reads s yet: no grace period to wait for */
		fwd_update_publish(&s, &u);
		fwd_update_finish(&u);
		dp->version = early.version;
		memcpy(dp->digest, early.digest, sizeof(dp->digest));
	}
out:
	store_read_drop(&early);
	return s;
}

/* The forwarding state to start with: fulcrumd's store when the config
 * names one and it can be trusted, else the config's boot-time services,
 * so that a store gone bad leaves the services the operator configured
 * rather than none. */
static int build_state(struct dataplane *dp, const struct fwd_port *ports,
		       char *err, size_t err_len)
{
	const struct dataplane_config *cfg = &dp->cfg;
	const char *path = cfg->state_store;
	char why[1024];

	if (path[0] && access(path, F_OK) < 0 && errno == ENOENT) {
		printf("fulcrum-dataplane: no state store at %s yet\n", path);
	} else if (path[0]) {
		dp->fwd = state_from_store(dp, ports, why, sizeof(why));
		if (dp->fwd) {
			printf("fulcrum-dataplane: %u service(s) from the "
			       "state store %s, version %" PRIu64 "\n",
			       dp->fwd->n_services, path, dp->version);
			return 0;
		}
		/* why names the store */
		fprintf(stderr, "fulcrum-dataplane: not using the state "
			"store: %s; starting with the config's services "
			"instead\n", why);
	}
	dp->fwd = fwd_state_create(cfg, ports, dp->n_ports, dp->neigh, err,
				   err_len);
	if (!dp->fwd)
		return -1;
	printf("fulcrum-dataplane: %u service(s) from the config, version 0\n",
	       dp->fwd->n_services);
	return 0;
}

static int open_ports(struct dataplane *dp, char *err, size_t err_len)
{
	const struct dataplane_config *cfg = &dp->cfg;
	struct fwd_port fports[CONFIG_MAX_PORTS];

	for (unsigned int i = 0; i < cfg->n_ports; i++) {
		const struct port_config *pc = &cfg->ports[i];

		char ring[RTE_RING_NAMESIZE];

		if (port_open(pc, pc->name, (uint16_t)dp->n_workers,
			      (uint16_t)dp->n_workers, dp->pool, cfg->rx_desc,
			      cfg->tx_desc, &dp->ports[i], err, err_len) < 0)
			return -1;
		dp->n_ports = (uint16_t)(i + 1);
		snprintf(ring, sizeof(ring), "host_tx_p%u", i);
		dp->host_tx[i] = rte_ring_create(ring, HOST_TX_RING, SOCKET_ID_ANY,
						 RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!dp->host_tx[i]) {
			snprintf(err, err_len, "cannot allocate ring %s", ring);
			return -1;
		}
		fports[i] = (struct fwd_port){
			.mac = dp->ports[i].mac,
			.addr4 = pc->addr4,
			.addr6 = pc->addr6,
			.gateway4 = pc->gateway4,
			.gateway6 = pc->gateway6,
			.mtu = dp->ports[i].mtu,
			.has_exception = dp->ports[i].tap_port_id != UINT16_MAX,
		};
	}
	return build_state(dp, fports, err, err_len);
}

static struct rte_rcu_qsbr *rcu_create(unsigned int readers)
{
	size_t size = rte_rcu_qsbr_get_memsize(readers);
	struct rte_rcu_qsbr *q = rte_zmalloc("rcu", size, RTE_CACHE_LINE_SIZE);

	if (q && rte_rcu_qsbr_init(q, readers) != 0) {
		rte_free(q);
		return NULL;
	}
	return q;
}

static int start(struct dataplane *dp, char *err, size_t err_len)
{
	const struct dataplane_config *cfg = &dp->cfg;

	dp->tsc_hz = rte_get_tsc_hz();
	dp->start_tsc = rte_rdtsc();
	dp->n_workers = cfg->n_workers;
	dp->pool = rte_pktmbuf_pool_create("mbufs", cfg->mempool_size,
					   cfg->mempool_cache, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	dp->neigh = neigh_table_create("neighbours", cfg->max_backends + 64,
				       (int)rte_socket_id());
	dp->rcu = rcu_create(dp->n_workers + 1);
	if (!dp->pool || !dp->neigh || !dp->rcu) {
		snprintf(err, err_len, "cannot allocate the mbuf pool (%u mbufs) "
			 "or neighbour table: %s", cfg->mempool_size,
			 rte_strerror(rte_errno));
		return -1;
	}
	if (open_ports(dp, err, err_len) < 0)
		return -1;
	for (unsigned int i = 0; i < dp->n_workers; i++) {
		dp->workers[i] = worker_create(dp, (uint16_t)i,
					       cfg->worker_lcores[i], err, err_len);
		if (!dp->workers[i])
			return -1;
	}
	/* the main lcore reads the state for neighbour probes */
	rte_rcu_qsbr_thread_register(dp->rcu, dp->n_workers);
	rte_rcu_qsbr_thread_online(dp->rcu, dp->n_workers);
	for (unsigned int i = 0; i < dp->n_workers; i++) {
		if (rte_eal_remote_launch(worker_main, dp->workers[i],
					  cfg->worker_lcores[i]) != 0) {
			snprintf(err, err_len, "cannot launch a worker on lcore %u "
				 "(is it in [eal] lcores?)", cfg->worker_lcores[i]);
			return -1;
		}
	}
	return 0;
}

static void shut_down(struct dataplane *dp)
{
	__atomic_store_n(&dp->stop, true, __ATOMIC_RELAXED);
	control_stop(dp);
	rte_eal_mp_wait_lcore();
	for (uint16_t i = 0; i < dp->n_ports; i++) {
		port_close(&dp->ports[i]);
		rte_ring_free(dp->host_tx[i]);
	}
	for (unsigned int i = 0; i < dp->n_workers; i++)
		worker_free(dp->workers[i]);
	fwd_state_free(dp->fwd);
	neigh_table_free(dp->neigh);
	rte_free(dp->rcu);
	rte_mempool_free(dp->pool);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct dataplane dp;
	char *eal_argv[EAL_MAX_ARGS], eal_buf[4096], err[512];
	const char *config_path = NULL;
	bool check_only = false;
	int opt, eal_argc, problems, rc = 0;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config_path) {
		usage(stderr);
		return 2;
	}
	if (config_load(config_path, &dp.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fulcrum-dataplane: %s\n", err);
		return 2;
	}
	problems = preflight_check(&dp.cfg, check_only ? stdout : stderr);
	if (check_only || problems) {
		if (problems)
			fprintf(stderr, "fulcrum-dataplane: %d problem(s) found; "
				"not starting\n", problems);
		config_free(&dp.cfg);
		return problems ? 1 : 0;
	}

	store_read_begin(&early, dp.cfg.state_store);
	eal_argc = eal_args(&dp.cfg, eal_argv, eal_buf, sizeof(eal_buf));
	if (eal_argc < 0 || rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "fulcrum-dataplane: EAL init failed: %s\n",
			rte_strerror(rte_errno));
		store_read_drop(&early);
		config_free(&dp.cfg);
		return 1;
	}
	running = &dp;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	dp.control_fd = -1;
	rc = start(&dp, err, sizeof(err));
	/* a start that failed before it came to the store's services */
	store_read_drop(&early);
	if (rc < 0 ||
	    (dp.cfg.control_socket[0] &&
	     control_start(&dp, dp.cfg.control_socket, err, sizeof(err)) < 0)) {
		fprintf(stderr, "fulcrum-dataplane: %s\n", err);
		rc = 1;
	} else {
		printf("fulcrum-dataplane: %u worker(s), %u port(s), %u service(s) "
		       "up\n", dp.n_workers, dp.n_ports, dp.fwd->n_services);
		fflush(stdout);
		exception_path_run(&dp);
		stats_print(&dp, stdout);
	}
	shut_down(&dp);
	config_free(&dp.cfg);
	rte_eal_cleanup();
	return rc;
}
