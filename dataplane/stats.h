/* Sums the workers' counters for people and scripts to read: as JSON for
 * the control socket, and as text at exit. Counters are read without
 * stopping the workers, so a sum may be a burst stale. */
#ifndef FULCRUM_STATS_H
#define FULCRUM_STATS_H

#include <stdio.h>

#include <jansson.h>

struct dataplane;

/* {"totals": {...}, "drops": {"reason": n}, "workers": [{...}],
 *  "services": [{"name", "vip", "proto", "port", "packets", "bytes",
 *                "backends": [{"addr", "state", "packets", "bytes",
 *                              "flows" (in the connection tables, not
 *                              idle: backend_flows.h)}]}]} */
json_t *stats_json(const struct dataplane *dp);

/* Totals, drops by reason, then per service and per backend. */
void stats_print(const struct dataplane *dp, FILE *out);

#endif
