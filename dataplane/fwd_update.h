/* Changing the forwarding state while workers read it. An update is
 * prepared off to the side (new Maglev tables, and a new state if VIPs came
 * or went), published with atomic pointer swaps, and what it replaced is
 * freed only after every worker has passed a quiescent state.
 *
 * Identity is kept across updates so that established flows keep their
 * backends: a service keeps its id while its name, VIP, protocol, port,
 * mode and table size stay; a backend keeps its slot while it stays in
 * its service, and a removed backend's slot is not given to another
 * backend until every flow that may remember it has gone idle. */
#ifndef FULCRUM_FWD_UPDATE_H
#define FULCRUM_FWD_UPDATE_H

#include "fwd_state.h"

struct fwd_update {
	struct fwd_state *new_state;   /* replaces the live one, or NULL */
	struct fwd_state *old_state;   /* after publish: its index to free */
	uint32_t n_swaps;
	struct service **swap_svc;     /* services whose table changes */
	struct service_table **swap_table; /* the new tables; after publish,
					    * the old ones */
	uint32_t n_removed;
	struct service **removed;      /* services that leave; freed at finish */
	uint32_t n_added;
	struct service **added;        /* new or replaced services */
};

/* Works out what it takes to go from `live` to the services in want[n]
 * (at time `now`, in dataplane seconds). Changes nothing visible. Returns 0,
 * or -1 with err filled and nothing to undo. */
int fwd_update_prepare(const struct fwd_state *live,
		       const struct service_config *want, uint32_t n,
		       uint32_t now, struct fwd_update *u, char *err,
		       size_t err_len);

/* The same for a delta (fwd_delta.h): the services in changed[n] are
 * looked at as above, those marked in untouched[live->capacity] are kept
 * as they are without a look, and the other live ones go. */
int fwd_update_prepare_delta(const struct fwd_state *live,
			     const struct service_config *changed, uint32_t n,
			     const uint8_t *untouched, uint32_t now,
			     struct fwd_update *u, char *err, size_t err_len);

/* Whether the update changes anything at all. */
static inline bool fwd_update_changes(const struct fwd_update *u)
{
	return u->new_state || u->n_swaps || u->n_removed;
}

/* Before publish: the backend slots the update takes out, stamped at
 * `from`, its prepare, are stamped `to` instead. An update held until its
 * change is durable takes them out when it goes live, and the idle time
 * after which a slot is given to another backend counts from then. */
void fwd_update_restamp(struct fwd_update *u, uint32_t from, uint32_t to);

/* Makes the update live: swaps service tables, then the state pointer. */
void fwd_update_publish(struct fwd_state **live, struct fwd_update *u);

/* After a grace period: frees what the update replaced. */
void fwd_update_finish(struct fwd_update *u);

/* Frees a prepared update that was never published. */
void fwd_update_abort(struct fwd_update *u);

#endif
