/* An update sent as a delta: the services a change touched, whole, and
 * the names of those it removed, rather than every service. A change to
 * one service of ten thousand then sends, parses and checks one; the
 * desired list fwd_update works on is the live one with the delta laid
 * over it. Only meaningful against a known live state, which is why the
 * control socket takes a delta only as a conditional apply (control.h). */
#ifndef FULCRUM_FWD_DELTA_H
#define FULCRUM_FWD_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fwd_state.h"

/* Into *want (allocated; free with state_json_free) and *n: the live
 * services, less those named in removed[n_removed] and those in
 * changed[n_changed], plus the changed ones. Returns 0, or -1 with err
 * when a removed name is not live, is also among the changed, or is given
 * twice, or when out of memory. */
int fwd_delta_want(const struct fwd_state *live,
		   const struct service_config *changed, uint32_t n_changed,
		   const char *const *removed, uint32_t n_removed,
		   struct service_config **want, uint32_t *n, char *err,
		   size_t err_len);

#endif
