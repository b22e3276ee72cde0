/* An update sent as a delta: the services a change touched, whole, and
 * the names of those it removed, rather than every service. A change to
 * one service of ten thousand then sends, parses, checks and rebuilds
 * one (fwd_update_prepare_delta); the others are kept as they are, the
 * very objects, without a look. Only meaningful against a known live state, which is why the
 * control socket takes a delta only as a conditional apply (control.h). */
#ifndef FULCRUM_FWD_DELTA_H
#define FULCRUM_FWD_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fwd_state.h"

/* Marks in untouched[live->capacity] the live services that a delta of
 * changed[n_changed] and removed[n_removed] leaves as they are: every one
 * it does not name. *n_after: how many services there are after it.
 * Returns 0, or -1 with err when a removed name is not live, is also among
 * the changed, or is given twice, or when out of memory. */
int fwd_delta_untouched(const struct fwd_state *live,
			const struct service_config *changed,
			uint32_t n_changed, const char *const *removed,
			uint32_t n_removed, uint8_t *untouched,
			uint32_t *n_after, char *err, size_t err_len);

#endif
