/* The digest of the services the dataplane's tables run, as the control
 * plane's store labels a state (store_services_digest), hashed here from
 * the live tables: fulcrumd's reconcile asks for it rather than for the
 * whole state as JSON, which for 10,000 services of 100 backends took
 * fulcrumd's loop 7.7 s (dumped here, parsed, rebuilt and hashed there). */
#ifndef FULCRUM_STATE_DIGEST_H
#define FULCRUM_STATE_DIGEST_H

#include <stddef.h>

#include "fwd_state.h"
#include "store.h"

/* 0, or -1 with err. */
int state_digest(const struct fwd_state *s, char out[STORE_DIGEST_LEN],
		 char *err, size_t err_len);

#endif
