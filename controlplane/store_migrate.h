/* Upgrading a store written by an older build to this build's schema
 * (STORE_SCHEMA_VERSION), in place, inside the caller's write transaction:
 * a crash or a refusal half-way leaves the store as it was. The log and
 * the history of images keep their layout; only the tables of the current
 * state change. Internal to the store. */
#ifndef FULCRUM_STORE_MIGRATE_H
#define FULCRUM_STORE_MIGRATE_H

#include <stddef.h>

#include <sqlite3.h>

/* The oldest schema this build upgrades. */
#define STORE_SCHEMA_OLDEST 2

/* Upgrades db from schema `from`. The old tables must hash to head, the
 * log's last digest, or nothing is done: a store changed behind the
 * control plane's back is refused as it is, not rewritten into a new
 * layout that would hide what was done to it. 0, or -1 with err. */
int store_migrate(sqlite3 *db, int from, const char *head, char *err,
		  size_t len);

#endif
