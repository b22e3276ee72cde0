/* One DPDK environment shared by every test in a test binary: EAL is
 * brought up once, without hugepages or devices, so that the unit tests run
 * on any machine, under ASan and UBSan included. */
#ifndef FULCRUM_TEST_ENV_H
#define FULCRUM_TEST_ENV_H

#include <rte_mempool.h>

/* Initialises EAL on the first call and does nothing on later ones, nor
 * when the program has initialised EAL itself; exits the process if EAL
 * cannot start, as no test could run without it. */
void test_env_init(void);

/* A packet mbuf pool of default buffer size, created on first use. */
struct rte_mempool *test_env_pool(void);

#endif
