/* Point-in-time restore: the plan that takes the state back to an
 * earlier version, and with replay_after merges back the later changes
 * that leave what it brings back alone. Without replay_after it costs
 * what changed since that version, compared in memory (service_diff.h);
 * with it, the changed services go through JSON for the log's later
 * changes to be replayed onto them. */
#ifndef FULCRUM_RESTORE_H
#define FULCRUM_RESTORE_H

#include <jansson.h>

#include "store.h"

/* For a plan request with "restore_to" (and maybe "replay_after"): *ops
 * and *risk (plan_risk, with share_pct and max_services), the versions
 * merged back and left out appended to replayed and skipped. 0, or -1
 * with err. */
int restore_plan(struct store *st, const json_t *req,
		 unsigned int share_pct, unsigned int max_services,
		 json_t **ops, json_t **risk, json_t *replayed, json_t *skipped,
		 char *err, size_t len);

#endif
