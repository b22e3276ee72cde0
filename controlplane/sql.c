#include "sql.h"

#include <stdarg.h>
#include <stdio.h>

int sql_fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

int sql_db_fail(sqlite3 *db, const char *what, char *err, size_t len)
{
	return sql_fail(err, len, "%s: %s", what, sqlite3_errmsg(db));
}

int sql_exec(sqlite3 *db, const char *sql, char *err, size_t len)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	sql_fail(err, len, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql, char *err,
			  size_t len)
{
	sqlite3_stmt *q = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		sql_db_fail(db, sql, err, len);
	return q;
}

const char *sql_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t ? (const char *)t : "";
}

int sql_step_done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}
