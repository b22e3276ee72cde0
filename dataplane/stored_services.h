/* Services as fulcrumd's store hands them over (store_read_services, at a
 * warm start) or as fulcrumd sends them in binary (service_batch.h, in an
 * apply), into the services an update takes: no JSON in between, which
 * for ten thousand services would take most of the time. They are
 * checked as the JSON of an apply is (state_json.h): a value the tables
 * cannot take refuses the whole lot. */
#ifndef FULCRUM_STORED_SERVICES_H
#define FULCRUM_STORED_SERVICES_H

#include <stddef.h>

#include "config.h"
#include "store.h"

struct stored_services {
	size_t n;                      /* set by the reader before service 0 */
	struct service_config *want;   /* [n]; free with state_json_free */
	char *err;
	size_t err_len;
};

/* A store_service_fn: service i into s->want[i]; -1 with s->err. */
int stored_services_take(const struct store_service *ss, size_t i, void *s);

/* The len bytes of a batch (service_batch.h) into *out[*n] (free with
 * state_json_free). 0, or -1 with err. */
int stored_services_read_batch(const void *buf, size_t len,
			       struct service_config **out, uint32_t *n,
			       char *err, size_t err_len);

#endif
