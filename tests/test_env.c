#include "test_env.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

/* Enough for every packet a test holds at once; a test that leaks mbufs
 * runs the pool dry and fails loudly rather than passing by luck. The pool
 * has no per-lcore cache, so rte_mempool_avail_count() is exact and a test
 * can check that every mbuf came back. */
#define TEST_POOL_MBUFS 4095

static bool eal_up;
static struct rte_mempool *pool;
static char runtime_dir[PATH_MAX];

/* EAL makes its runtime directory even when it writes nothing into it;
 * removing it keeps one empty directory per test run from piling up. */
static void test_env_cleanup(void)
{
	rte_mempool_free(pool);
	pool = NULL;
	rte_eal_cleanup();
	rmdir(runtime_dir);
}

/* The options keep a test off everything shared on the machine: no PCI
 * device is probed (a NIC the host uses stays untouched), no hugepage is
 * taken, and the file prefix carries the pid so that test binaries started
 * side by side never meet. Only errors are logged, so that a passing run
 * prints cmocka's lines alone.
 *
 * --no-shconf stands in for --in-memory: DPDK 22.11 treats --no-huge as
 * legacy memory, which it refuses together with --in-memory ("Option
 * --legacy-mem is not compatible with --in-memory"). With --no-huge there
 * are no hugepage files anyway, and --no-shconf is the rest of what
 * --in-memory means: no shared config file and no IPC socket.
 *
 * Under ASan and UBSan this needs no ASAN_OPTIONS: with --no-huge EAL's
 * memory is anonymous mmap that ASan does not track, and the cleanup at
 * exit frees what LeakSanitizer would otherwise report. */
void test_env_init(void)
{
	char prefix[64];
	char *argv[] = {
		"fulcrum-test", "-l", "0", "--no-pci", "--no-huge", "-m", "256",
		"--no-shconf", "--no-telemetry", "--log-level=*:error",
		"--file-prefix", prefix, NULL,
	};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

	if (eal_up)
		return;
	/* A program that brought EAL up with its own options, as
	 * fulcrum-bench does, keeps them and its own cleanup. */
	if (rte_lcore_count() > 0) {
		eal_up = true;
		return;
	}
	snprintf(prefix, sizeof(prefix), "fulcrum-test-%d", (int)getpid());
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "test_env: rte_eal_init: %s\n",
			rte_strerror(rte_errno));
		exit(EXIT_FAILURE);
	}
	eal_up = true;
	snprintf(runtime_dir, sizeof(runtime_dir), "%s",
		 rte_eal_get_runtime_dir());
	atexit(test_env_cleanup);
}

struct rte_mempool *test_env_pool(void)
{
	if (pool)
		return pool;
	test_env_init();
	pool = rte_pktmbuf_pool_create("test_pool", TEST_POOL_MBUFS, 0, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (!pool) {
		fprintf(stderr, "test_env: mbuf pool: %s\n",
			rte_strerror(rte_errno));
		exit(EXIT_FAILURE);
	}
	return pool;
}
