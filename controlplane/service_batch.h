/* Services in bulk from one process to another: each one's image
 * (service_image.h) after its length in bytes (u32, little-endian), one
 * after the other. This is how fulcrumd sends the dataplane the services
 * a change touched (the payload of an apply, dataplane/control.h). A
 * restore of 10,000 services of 100 backends sends 7.6 MB that each end
 * handles in milliseconds. As JSON, the same services took seconds to
 * write, send, parse and free at each end.
 */
#ifndef FULCRUM_SERVICE_BATCH_H
#define FULCRUM_SERVICE_BATCH_H

#include <stddef.h>

#include "store.h"

/* the model's (model.h), which the dataplane's own struct service hides
 * from it: it only reads batches */
struct service;

struct service_batch {
	unsigned char *buf;
	size_t len, cap;
	size_t count;                  /* services in buf */
};

/* Appends s: 0, or -1 out of memory (b is then as it was). */
int service_batch_add(struct service_batch *b, const struct service *s);
void service_batch_free(struct service_batch *b);

/* Reads len bytes of a batch the way store_read_services reads a store:
 * *n_services (how many the batch holds) is set before the first call of
 * fn, which is handed each service in the batch's order. Returns 0, or
 * -1 with err when the batch is cut short or holds something that is not
 * a valid service image. err is left as it is when fn stopped the read. */
int service_batch_read(const void *buf, size_t len, size_t *n_services,
		       store_service_fn fn, void *arg, char *err,
		       size_t err_len);

#endif
