/* The ops (change.h) that take one service as the model holds it to
 * another: plan.c's diff for services already in memory, so that a
 * restore of ten thousand services compares backend arrays rather than
 * building and comparing a million JSON objects. */
#ifndef FULCRUM_SERVICE_DIFF_H
#define FULCRUM_SERVICE_DIFF_H

#include <stdbool.h>

#include <jansson.h>

#include "model.h"

/* Appends to ops what takes `from` to `to`, two states of one service
 * name, NULL where it does not exist: a service_del, a service_add with
 * its backends, or a service_set of the fields that differ and then the
 * backends deleted, added and set, as plan_ops writes them. Returns 0, or
 * -1 when out of memory. */
int service_diff(const struct service *from, const struct service *to,
		 json_t *ops);

/* Whether going from `from` to `to` takes an active backend away: one is
 * deleted or no longer active, or the service goes with active ones. */
bool service_loses_active(const struct service *from,
			  const struct service *to);

#endif
