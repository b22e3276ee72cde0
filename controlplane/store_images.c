#include "store_images.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "service_image.h"
#include "sql.h"

int store_images_append(const struct model *m, sqlite3 *db,
			uint64_t version, char *err, size_t len)
{
	/* OR IGNORE: a name touched twice in one change keeps its first
	 * entry's image, what it was before the change began */
	sqlite3_stmt *q = sql_prepare(db, "INSERT OR IGNORE INTO service_images"
				      " (version, name, image)"
				      " VALUES (?1, ?2, ?3)", err, len);
	unsigned char *buf = NULL;
	size_t cap = 0;
	int rc = q ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < model_n_touched(m); i++) {
		const struct service *before = model_touched_before(m, i);
		size_t need = before ? service_image_size(before) : 0;

		if (need > cap) {
			unsigned char *more = realloc(buf, need);

			if (!more) {
				rc = sql_fail(err, len, "out of memory");
				break;
			}
			buf = more;
			cap = need;
		}
		sqlite3_bind_int64(q, 1, (sqlite3_int64)version);
		sqlite3_bind_text(q, 2, model_touched(m, i), -1, SQLITE_STATIC);
		if (before) {
			service_image_write(before, buf);
			sqlite3_bind_blob(q, 3, buf, (int)need, SQLITE_STATIC);
		} else {
			sqlite3_bind_null(q, 3);
		}
		if (sql_step_done(q) < 0)
			rc = sql_db_fail(db, "writing the services' history",
					 err, len);
	}
	sqlite3_finalize(q);
	free(buf);
	return rc;
}

/* A service changed since the version a rewind goes to, and what it was
 * then. */
struct image {
	char name[SERVICE_NAME_LEN];
	uint64_t version;               /* of the first change since */
	bool existed;
	struct service then;            /* when it existed; backends owned */
};

struct images {
	struct image *v;
	size_t n, cap;
};

static void images_free(struct images *im)
{
	for (size_t i = 0; i < im->n; i++)
		free(im->v[i].then.backends);
	free(im->v);
}

static struct image *images_next(struct images *im)
{
	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		struct image *v = realloc(im->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		im->v = v;
		im->cap = cap;
	}
	memset(&im->v[im->n], 0, sizeof(im->v[im->n]));
	return &im->v[im->n++];
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct image *)a)->name,
		      ((const struct image *)b)->name);
}

/* The first change after version that touched each service: a walk of
 * the (version, name) index, which holds no image, keeping each name the
 * first time it comes. Returned by name. */
static int first_touches(sqlite3 *db, uint64_t version, struct images *im,
			 char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, "SELECT version, name"
				      " FROM service_images WHERE version > ?1"
				      " ORDER BY version", err, len);
	json_t *seen = json_object();
	int rc = q && seen ? 0 : -1, step = SQLITE_DONE;

	if (q && !seen)
		sql_fail(err, len, "out of memory");
	if (rc == 0)
		sqlite3_bind_int64(q, 1, (sqlite3_int64)version);
	while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = sql_text(q, 1);
		struct image *x;

		if (json_object_get(seen, name))
			continue;
		x = images_next(im);
		if (!x || json_object_set_new(seen, name, json_true()) < 0) {
			rc = sql_fail(err, len, "out of memory");
			break;
		}
		snprintf(x->name, sizeof(x->name), "%s", name);
		x->version = (uint64_t)sqlite3_column_int64(q, 0);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sql_db_fail(db, "reading the services' history", err, len);
	if (rc == 0 && im->n > 1)
		qsort(im->v, im->n, sizeof(*im->v), by_name);
	json_decref(seen);
	sqlite3_finalize(q);
	return rc;
}

/* The image of each service changed after version, from the first change
 * after it, one lookup each. */
static int read_images(sqlite3 *db, uint64_t version, struct images *im,
		       char *err, size_t len)
{
	sqlite3_stmt *get = NULL;
	int rc = first_touches(db, version, im, err, len);

	if (rc == 0) {
		get = sql_prepare(db, "SELECT image FROM service_images"
				  " WHERE version = ?1 AND name = ?2", err, len);
		rc = get ? 0 : -1;
	}
	for (size_t i = 0; rc == 0 && i < im->n; i++) {
		struct image *x = &im->v[i];

		sqlite3_bind_int64(get, 1, (sqlite3_int64)x->version);
		sqlite3_bind_text(get, 2, x->name, -1, SQLITE_STATIC);
		if (sqlite3_step(get) != SQLITE_ROW) {
			rc = sql_db_fail(db, "reading the services' history",
					 err, len);
		} else if (sqlite3_column_type(get, 0) != SQLITE_NULL) {
			x->existed = true;
			if (service_image_read(sqlite3_column_blob(get, 0),
					       (size_t)sqlite3_column_bytes(get, 0),
					       &x->then) < 0 ||
			    strcmp(x->then.name, x->name) != 0)
				rc = sql_fail(err, len, "the image of service "
					      "%s kept with version %" PRIu64
					      " is damaged", x->name,
					      x->version);
		}
		sqlite3_reset(get);
	}
	sqlite3_finalize(get);
	return rc;
}

/* Whether m with every image put in place hashes to want. All are taken
 * out before any goes back in: a VIP may have passed from one changed
 * service to another since. */
static int check_images(struct model *m, const struct images *im,
			const char *want, uint64_t version, char *err,
			size_t len)
{
	char got[65];
	int rc = 0;

	model_begin(m);
	for (size_t i = 0; rc == 0 && i < im->n; i++)
		if (model_del(m, im->v[i].name) < 0)
			rc = sql_fail(err, len, "out of memory");
	for (size_t i = 0; rc == 0 && i < im->n; i++) {
		const struct service *then = &im->v[i].then;
		struct service *s;

		if (!im->v[i].existed)
			continue;
		s = model_add_if_free(m, then);
		if (s && service_backends_fill(s, then->backends,
					       then->n_backends) < 0)
			s = NULL;
		if (!s)
			rc = sql_fail(err, len, "cannot put back service %s as "
				      "it was at version %" PRIu64,
				      then->name, version);
	}
	if (rc == 0 && model_digest(m, got) < 0)
		rc = sql_fail(err, len, "out of memory");
	if (rc == 0 && strcmp(got, want) != 0)
		rc = sql_fail(err, len, "the services' history does not add up "
			      "to version %" PRIu64 ": it gives digest %s, the "
			      "log recorded %s", version, got, want);
	model_rollback(m);
	return rc;
}

int store_images_rewind(sqlite3 *db, struct model *m, uint64_t version,
			const char *want, store_change_fn fn, void *arg,
			char *err, size_t len)
{
	struct images im = { 0 };
	int rc = read_images(db, version, &im, err, len);

	if (rc == 0)
		rc = check_images(m, &im, want, version, err, len);
	for (size_t i = 0; rc == 0 && i < im.n; i++) {
		const struct service *now = model_find(m, im.v[i].name);

		/* made and deleted since: nothing to put back */
		if (now || im.v[i].existed)
			rc = fn(now, im.v[i].existed ? &im.v[i].then : NULL,
				arg);
	}
	images_free(&im);
	return rc;
}
