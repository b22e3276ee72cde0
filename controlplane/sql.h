/* The few SQLite idioms the store's files share: errors written into a
 * caller's buffer, and statements that either work or say why. */
#ifndef FULCRUM_SQL_H
#define FULCRUM_SQL_H

#include <stddef.h>

#include <sqlite3.h>

/* Writes the message into err; returns -1, for `return sql_fail(...)`. */
int sql_fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "what: SQLite's message for db"; returns -1. */
int sql_db_fail(sqlite3 *db, const char *what, char *err, size_t len);
/* Runs sql, which returns no rows; 0 or -1 with err. */
int sql_exec(sqlite3 *db, const char *sql, char *err, size_t len);
/* NULL with err when sql does not compile. */
sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql, char *err,
			  size_t len);
/* Column i as text, "" for NULL. */
const char *sql_text(sqlite3_stmt *q, int i);
/* Steps q, which returns no rows, and resets it for the next bindings;
 * 0 or -1 (sqlite3_errmsg says why). */
int sql_step_done(sqlite3_stmt *q);

#endif
