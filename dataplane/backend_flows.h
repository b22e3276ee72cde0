/* How many flows each backend has in a connection table: what a drain
 * waits for, shown by `fulcrumctl backend list`. Counted on request by a
 * pass over the table rather than kept up on the hot path: a live count
 * would cost every new, evicted, expired and rebalanced flow a write to
 * a per-backend counter, and expiry is lazy, so the count would still
 * hold idle flows until the sweep reaches them. */
#ifndef FULCRUM_BACKEND_FLOWS_H
#define FULCRUM_BACKEND_FLOWS_H

#include <stdint.h>

#include "conn_table.h"
#include "fwd_state.h"

/* Adds to flows[stat id] (fwd->max_backends of them) each flow of t that
 * is not idle at `now` and whose service and backend slot are in fwd.
 * May run beside the worker that owns t: entries are read with relaxed
 * atomic loads, so a count may be off by the flows of a burst, as the
 * counters are. Costs one pass over the table: a few milliseconds per
 * million entries. */
void backend_flows_count(const struct conn_table *t,
			 const struct fwd_state *fwd, uint32_t now,
			 uint64_t *flows);

#endif
