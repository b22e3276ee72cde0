/* The store's history of before-images (store.c, table service_images):
 * with each change, every service it touched as it was just before, so
 * that the state at an earlier version is the current state with, for
 * each service changed since, its image from the first change after that
 * version. A restore then costs what changed since, not a replay of the
 * log nor a read of the whole state. Internal to the store. */
#ifndef FULCRUM_STORE_IMAGES_H
#define FULCRUM_STORE_IMAGES_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "model.h"
#include "store.h"

/* The images of the services the change under way in m touched, as part
 * of version's entry, into db: the store's or its copy's. Returns 0, or -1
 * with err. */
int store_images_append(const struct model *m, sqlite3 *db,
			uint64_t version, char *err, size_t len);

/* For m, the state db holds at its latest version: each service changed
 * after `version`, by name, to fn as it is in m and as it was at version
 * (NULL where it does not or did not exist; one made and deleted since is
 * left out). Checked first: m with the
 * images put in place must hash to want, the digest of the state at
 * version, or fn is never called. m is left as it was. Returns 0, or -1
 * with err (untouched when fn stopped the walk). */
int store_images_rewind(sqlite3 *db, struct model *m, uint64_t version,
			const char *want, store_change_fn fn, void *arg,
			char *err, size_t len);

#endif
