/* A freeze stops every change, automated ones included, until an admin
 * lifts it; the dataplane forwards on meanwhile. It is kept in a file of
 * its own so that it survives a restart of fulcrumd and does not depend
 * on the store it protects. */
#ifndef FULCRUM_FREEZE_H
#define FULCRUM_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct freeze {
	bool on;
	char by[64];
	char reason[256];
	int64_t since_ms;
};

/* Reads path (absent: not frozen). Returns 0, or -1 with err for a file
 * that exists but cannot be read: then it counts as frozen, to be safe. */
int freeze_load(const char *path, struct freeze *f, char *err, size_t len);

/* Writes or removes the file, atomically. Returns 0 or -1 with err. */
int freeze_set(const char *path, struct freeze *f, bool on, const char *by,
	       const char *reason, char *err, size_t len);

json_t *freeze_json(const struct freeze *f);

#endif
