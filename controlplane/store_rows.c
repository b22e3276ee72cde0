#include "store_rows.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "change.h"
#include "service_image.h"
#include "sql.h"

static const char select_rows[] = "SELECT name, image FROM services";

/* The row q is at, into s, with s->backends newly allocated (free it): 0,
 * or -1 where it is not an image of a service of its row's name. */
static int row_image(sqlite3_stmt *q, struct service *s)
{
	if (sqlite3_column_type(q, 1) != SQLITE_BLOB ||
	    service_image_read(sqlite3_column_blob(q, 1),
			       (size_t)sqlite3_column_bytes(q, 1), s) < 0)
		return -1;
	if (strcmp(s->name, sql_text(q, 0)) != 0) {
		free(s->backends);
		return -1;
	}
	return 0;
}

static int add_row(sqlite3_stmt *q, struct model *m)
{
	struct service img;
	struct service *s;
	int rc = -1;

	if (row_image(q, &img) < 0)
		return -1;
	if ((s = model_add_if_free(m, &img)) &&
	    service_backends_fill(s, img.backends, img.n_backends) == 0)
		rc = 0;
	free(img.backends);
	return rc;
}

int store_rows_read(sqlite3 *db, struct model *m)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, select_rows, -1, &q, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && add_row(q, m) == 0)
		;
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The row q is at as the change that would make it: one service_add. */
static json_t *row_as_change(sqlite3_stmt *q, char *err, size_t len)
{
	struct service img;
	json_t *op, *ops = NULL;

	if (row_image(q, &img) < 0) {
		sql_fail(err, len, "stored service '%s' is damaged: its row is "
			 "not a service of that name", sql_text(q, 0));
		return NULL;
	}
	op = model_service_to_json(&img);
	free(img.backends);
	if (op && json_object_set_new(op, "op", json_string("service_add")) == 0)
		ops = json_pack("[O]", op);
	json_decref(op);
	if (!ops)
		sql_fail(err, len, "out of memory");
	return ops;
}

static int check_row(sqlite3_stmt *q, struct model *m, char *err, size_t len)
{
	json_t *ops = row_as_change(q, err, len);
	char msg[200];
	int rc = ops ? change_apply(m, ops, msg, sizeof(msg)) : -1;

	if (ops && rc < 0)
		sql_fail(err, len, "stored service '%s' is invalid: %s",
			 sql_text(q, 0), msg);
	json_decref(ops);
	return rc;
}

int store_rows_check(sqlite3 *db, struct model *m, char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, select_rows, err, len);
	int rc = q ? 0 : -1, step = SQLITE_DONE;

	while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW)
		rc = check_row(q, m, err, len);
	if (rc == 0 && step != SQLITE_DONE)
		rc = sql_db_fail(db, "reading the services", err, len);
	sqlite3_finalize(q);
	return rc;
}

struct rows_writer {
	sqlite3 *db;
	sqlite3_stmt *put, *del;
	unsigned char *buf;
	size_t cap;
};

struct rows_writer *rows_writer_new(sqlite3 *db, char *err, size_t len)
{
	struct rows_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		sql_fail(err, len, "out of memory");
		return NULL;
	}
	w->db = db;
	w->put = sql_prepare(db, "INSERT INTO services (name, image)"
			     " VALUES (?1, ?2) ON CONFLICT (name)"
			     " DO UPDATE SET image = excluded.image", err, len);
	w->del = w->put ? sql_prepare(db, "DELETE FROM services"
				      " WHERE name = ?1", err, len) : NULL;
	if (!w->del) {
		rows_writer_free(w);
		return NULL;
	}
	return w;
}

int rows_writer_put(struct rows_writer *w, const char *name,
		    const struct service *s, char *err, size_t len)
{
	size_t need = s ? service_image_size(s) : 0;
	sqlite3_stmt *q = s ? w->put : w->del;

	if (need > w->cap) {
		unsigned char *more = realloc(w->buf, need);

		if (!more)
			return sql_fail(err, len, "out of memory");
		w->buf = more;
		w->cap = need;
	}
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if (s) {
		service_image_write(s, w->buf);
		sqlite3_bind_blob(q, 2, w->buf, (int)need, SQLITE_STATIC);
	}
	if (sql_step_done(q) < 0)
		return sql_db_fail(w->db, "writing the services", err, len);
	return 0;
}

void rows_writer_free(struct rows_writer *w)
{
	if (!w)
		return;
	sqlite3_finalize(w->put);
	sqlite3_finalize(w->del);
	free(w->buf);
	free(w);
}
