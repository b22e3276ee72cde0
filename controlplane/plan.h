/* The ops that turn one state into another: what `fulcrumctl apply -f`
 * shows and commits, and what `fulcrumctl diff` shows between versions.
 * States are service arrays in the store's shape (store.h). */
#ifndef FULCRUM_PLAN_H
#define FULCRUM_PLAN_H

#include <stddef.h>

#include <jansson.h>

/* Ops (change.h) that take `from` to `to`: services deleted, added or set,
 * then backends deleted, added or set. Fields left out of `to` take their
 * defaults. Returns a new array (empty when the states are equal). */
json_t *plan_ops(const json_t *from, const json_t *to);

/* The services after ops are applied to `before`, or NULL with err when
 * the ops are not a valid change of it. */
json_t *plan_simulate(const json_t *before, const json_t *ops, char *err,
		      size_t err_len);

/* How many services ops name. */
size_t plan_services_touched(const json_t *ops);

/* What a change from `before` to `after`, made by ops, takes away, for
 * the blast-radius guard and for plans: {"high": bool, "why": text or
 * null, "services_changed": n, "services": [{"name", "active_before",
 * "active_after", "moved_share"}]}, where moved_share is the share of the
 * service's active weight that leaves, about the share of new-flow
 * assignments that move. It is high when a service loses more than
 * share_pct of its active backends (one may always go while another
 * stays), when a service that had active backends is deleted or left with
 * none, when every service goes, or when ops change more than
 * max_services services. before and after may be part of the state, the
 * services that lose something: `others` counts the services the state
 * keeps besides those in after. */
json_t *plan_risk(const json_t *before, const json_t *after,
		  const json_t *ops, size_t others, unsigned int share_pct,
		  unsigned int max_services);

#endif
