/* Services as JSON: the shape the control plane's store keeps and the
 * dataplane's control socket takes and gives (see controlplane/store.h):
 *
 *   [{"name": "web", "vip": "10.0.0.100", "proto": "tcp", "port": 80,
 *     "mode": "l2dsr", "table_size": 65537, "gue_port": 6080,
 *     "backends": [{"addr": "10.0.1.10", "weight": 1, "state": "active"}]}]
 *
 * Parsing is strict: an unknown key, a wrong type or a bad value refuses
 * the whole list. Dumping gives services sorted by name and backends by
 * address bytes, so that equal states dump to equal text. */
#ifndef FULCRUM_STATE_JSON_H
#define FULCRUM_STATE_JSON_H

#include <jansson.h>

#include "config.h"
#include "fwd_state.h"

/* Parses a services array into out[*n] (allocated; free with
 * state_json_free). Returns 0, or -1 with err naming the service and key. */
int state_json_parse(const json_t *services, struct service_config **out,
		     uint32_t *n, char *err, size_t err_len);
void state_json_free(struct service_config *s, uint32_t n);

/* The live services of s, as above. */
json_t *state_json_dump(const struct fwd_state *s);

const char *fwd_backend_state_name(enum backend_state st);

#endif
