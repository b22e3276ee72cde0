/* Checks the host against the config before EAL starts, so that a missing
 * hugepage reservation, an offline lcore or a port on the management NIC
 * is explained in plain words instead of surfacing as an EAL or driver
 * error (or, worse, as a host that drops off the network). Run at every
 * start and by `fulcrum-dataplane --check`. */
#ifndef FULCRUM_PREFLIGHT_H
#define FULCRUM_PREFLIGHT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* Writes one line per finding to out, each starting "ok:", "warning:" or
 * "error:", and returns the number of errors. */
int preflight_check(const struct dataplane_config *cfg, FILE *out);

/* The same with /sys and /proc read under root ("" for the real ones), so
 * that a test can present a made-up host. The process's own CPU affinity
 * is checked only for the real host. */
int preflight_check_at(const struct dataplane_config *cfg, FILE *out,
		       const char *root);

/* The fewest mbufs the one shared pool needs so that no queue can starve:
 * every RX ring is kept full of empty mbufs, every TX ring may hold sent
 * mbufs the driver has not freed yet, each lcore's mempool cache can hold
 * up to 1.5 times its size, and each lcore has up to two bursts in hand.
 * Ports get one queue pair per worker, and an exception tap one. */
uint64_t preflight_min_mbufs(const struct dataplane_config *cfg);

#endif
