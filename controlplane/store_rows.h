/* The store's current state (store.c, table services): one row per
 * service, the whole service in service_image.h's layout, keyed by name.
 * A change rewrites the rows of the services it touched; a restore of ten
 * thousand services writes ten thousand rows, where a row per backend (the
 * schema before, store_migrate.c) made it 95,178 in the benchmark and two
 * thirds of the commit, and a store of a million backends is read in one
 * pass over ten thousand blobs. Internal to the store. */
#ifndef FULCRUM_STORE_ROWS_H
#define FULCRUM_STORE_ROWS_H

#include <stddef.h>

#include <sqlite3.h>

#include "model.h"

#define STORE_SERVICES_TABLE \
	"CREATE TABLE services (name TEXT PRIMARY KEY, image BLOB NOT NULL);"

/* Every row straight into m, inside the caller's model_begin: 0, or -1
 * where a row does not parse, is not its name's, or clashes with one read
 * before. Nothing is checked beyond that: the caller holds the result to
 * the log's digest. */
int store_rows_read(sqlite3 *db, struct model *m);

/* Every row into m through change_apply, as one service_add each, so that
 * the rows pass the very checks a change passes: 0, or -1 with err naming
 * the first row that does not and why. The slow way, for saying what is
 * wrong after store_rows_read's result failed. */
int store_rows_check(sqlite3 *db, struct model *m, char *err, size_t len);

/* Writes services' rows to one database, the store's or its copy's. */
struct rows_writer;

struct rows_writer *rows_writer_new(sqlite3 *db, char *err, size_t len);
/* The row of the service called name made s, or removed when s is NULL:
 * 0, or -1 with err. */
int rows_writer_put(struct rows_writer *w, const char *name,
		    const struct service *s, char *err, size_t len);
void rows_writer_free(struct rows_writer *w);

#endif
