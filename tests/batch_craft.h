/* Services as fulcrumd sends them to the dataplane in binary
 * (service_batch.h), made from their JSON (dataplane/state_json.h) by the
 * control plane's own model and writer: for tests of the dataplane, whose
 * own struct service keeps the model's out of their sources. */
#ifndef FULCRUM_BATCH_CRAFT_H
#define FULCRUM_BATCH_CRAFT_H

#include <stddef.h>

/* The batch of the services in the JSON array text, by name; malloc'd,
 * *len bytes. Fails the test where they are not valid. */
unsigned char *batch_craft(const char *services, size_t *len);

#endif
