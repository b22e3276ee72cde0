#include "store_migrate.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "ip_addr.h"
#include "model.h"
#include "sql.h"
#include "store.h"
#include "store_rows.h"

/* Each upgrade writes the tables of schema 3 (store_rows.h): a later
 * schema must chain its own step after these. */
_Static_assert(STORE_SCHEMA_VERSION == 3, "chain an upgrade from schema 3");

/* Schema 2: a row per service and a row per backend, as text. */

static int v2_backend(sqlite3_stmt *be, struct service *s)
{
	int state = backend_state_parse(sql_text(be, 2));
	struct backend b = { .weight = (uint32_t)sqlite3_column_int64(be, 1) };
	uint8_t family;

	if (state < 0 || ip_addr_parse(sql_text(be, 0), &b.addr, &family) < 0 ||
	    family != s->family)
		return -1;
	b.state = (uint8_t)state;
	return service_backend_add(s, &b);
}

static int v2_service(sqlite3_stmt *svc, sqlite3_stmt *be, struct model *m)
{
	struct service tmpl = {
		.port = (uint16_t)sqlite3_column_int(svc, 3),
		.table_size = (uint32_t)sqlite3_column_int64(svc, 5),
		.gue_port = (uint16_t)sqlite3_column_int(svc, 6),
	};
	const char *name = sql_text(svc, 0), *proto = sql_text(svc, 2);
	int mode = service_mode_parse(sql_text(svc, 4)), rc;
	struct service *s;

	if (strlen(name) >= sizeof(tmpl.name) || mode < 0 ||
	    ip_addr_parse(sql_text(svc, 1), &tmpl.vip, &tmpl.family) < 0 ||
	    (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
		return -1;
	strcpy(tmpl.name, name);
	tmpl.proto = strcmp(proto, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP;
	tmpl.mode = (uint8_t)mode;
	if (!(s = model_add_if_free(m, &tmpl)))
		return -1;
	sqlite3_reset(be);
	sqlite3_bind_text(be, 1, tmpl.name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(be)) == SQLITE_ROW)
		if (v2_backend(be, s) < 0)
			return -1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static int v2_read(sqlite3 *db, struct model *m, char *err, size_t len)
{
	sqlite3_stmt *svc = sql_prepare(db, "SELECT name, vip, proto, port,"
					" mode, table_size, gue_port"
					" FROM services", err, len);
	sqlite3_stmt *be = svc ? sql_prepare(db, "SELECT addr, weight, state"
					     " FROM backends WHERE service = ?1",
					     err, len) : NULL;
	int rc = SQLITE_ERROR;

	while (be && (rc = sqlite3_step(svc)) == SQLITE_ROW &&
	       v2_service(svc, be, m) == 0)
		;
	if (be && rc == SQLITE_ROW)
		sql_fail(err, len, "schema 2: stored service '%s' does not "
			 "parse or clashes with another", sql_text(svc, 0));
	else if (be && rc != SQLITE_DONE)
		sql_db_fail(db, "schema 2: reading the services", err, len);
	sqlite3_finalize(svc);
	sqlite3_finalize(be);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int v2_rewrite(sqlite3 *db, const struct model *m, char *err,
		      size_t len)
{
	struct rows_writer *w;
	int rc;

	if (sql_exec(db, "DROP TABLE backends; DROP TABLE services;"
		     STORE_SERVICES_TABLE, err, len) < 0 ||
	    !(w = rows_writer_new(db, err, len)))
		return -1;
	rc = 0;
	for (size_t i = 0; rc == 0 && i <= m->by_name.mask; i++) {
		const struct service *s = m->by_name.slots[i].item;

		if (s)
			rc = rows_writer_put(w, s->name, s, err, len);
	}
	rows_writer_free(w);
	return rc;
}

static int from_v2(sqlite3 *db, const char *head, char *err, size_t len)
{
	char digest[STORE_DIGEST_LEN];
	struct model *m = model_new();
	int rc = m ? 0 : sql_fail(err, len, "out of memory");

	if (rc == 0) {
		model_begin(m);
		rc = v2_read(db, m, err, len);
	}
	if (rc == 0 && model_digest(m, digest) < 0)
		rc = sql_fail(err, len, "out of memory");
	if (rc == 0 && strcmp(digest, head) != 0)
		rc = sql_fail(err, len, "schema 2: the stored services hash to "
			      "%s but the change log says %s: the file was "
			      "changed behind the control plane's back, and is "
			      "left as it is: restore it from the backup or the "
			      "log", digest, head);
	if (rc == 0)
		rc = v2_rewrite(db, m, err, len);
	model_free(m);
	return rc;
}

int store_migrate(sqlite3 *db, int from, const char *head, char *err,
		  size_t len)
{
	char set[80];

	if (from != 2)
		return sql_fail(err, len, "schema version %d is not one this "
				"build reads or upgrades (%d to %d)", from,
				STORE_SCHEMA_OLDEST, STORE_SCHEMA_VERSION);
	if (from_v2(db, head, err, len) < 0)
		return -1;
	snprintf(set, sizeof(set), "UPDATE meta SET value = '%d'"
		 " WHERE key = 'schema_version'", STORE_SCHEMA_VERSION);
	return sql_exec(db, set, err, len);
}
