/* The tables hold the current state so that opening a store is one read
 * of them, not a replay of its whole history; the log holds every change
 * with the digest of the state it made, which ties the two together: the
 * tables must hash to the last digest, and a replay to any version must
 * hash to that version's digest. The model in memory mirrors the tables,
 * so a change is checked and applied without reading them back. */
#include "store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "change.h"
#include "model.h"
#include "store_images.h"
#include "store_migrate.h"
#include "store_rows.h"
#include "sql.h"

/* How the store's files looked after the store's own last write: what
 * store_check compares them with. */
struct file_marks {
	struct stat main, wal;
	int64_t data_version;           /* -1: could not be read */
};

struct store {
	sqlite3 *db;
	char *path;
	char *backup_path;
	/* The copy, held open while it is known to be the store at
	 * st->version: each change is then made to it as well (backup_change)
	 * rather than copying the whole store. NULL when there is none or
	 * when it has to be copied whole again. */
	sqlite3 *backup;
	struct stat backup_file;       /* what backup_path named when held */
	int64_t backup_data_version;   /* PRAGMA data_version then */
	struct model *model;
	uint64_t version;
	char digest[STORE_DIGEST_LEN];
	char backup_error[256];
	/* in store_commit_then's durable hook, where the model still holds
	 * what the change touched */
	bool just_committed;
	struct file_marks marks;
};

static const char schema[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"INSERT INTO meta VALUES ('schema_version', '3');"
	STORE_SERVICES_TABLE
	"CREATE TABLE change_log ("
	" version INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
	" user TEXT NOT NULL, uid INTEGER NOT NULL,"
	" environment TEXT NOT NULL, reason TEXT NOT NULL,"
	" automatic INTEGER NOT NULL, ops TEXT NOT NULL,"
	" digest TEXT NOT NULL);"
	/* The log is the audit trail and the source of point-in-time
	 * restore: not even a stray shell session may rewrite it. */
	"CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log"
	" BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;"
	"CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log"
	" BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;"
	/* Each service a change touched, as it was just before the change
	 * (service_image.h; NULL: it did not exist). A restore to version v
	 * takes, for each service changed since, its image from the first
	 * change after v: the cost of what changed, however long the log. */
	"CREATE TABLE service_images ("
	" version INTEGER NOT NULL REFERENCES change_log (version),"
	" name TEXT NOT NULL, image BLOB, UNIQUE (version, name));"
	"CREATE TRIGGER service_images_no_update BEFORE UPDATE ON service_images"
	" BEGIN SELECT RAISE(ABORT, 'service_images is append-only'); END;"
	"CREATE TRIGGER service_images_no_delete BEFORE DELETE ON service_images"
	" BEGIN SELECT RAISE(ABORT, 'service_images is append-only'); END;";

_Static_assert(STORE_SCHEMA_VERSION == 3, "update the schema text");

/* The log's latest version and the digest it recorded; 0 and the empty
 * state's digest for a new store. */
static int log_head(sqlite3 *db, uint64_t *version, char digest[65],
		    char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, "SELECT version, digest FROM change_log"
				  " ORDER BY version DESC LIMIT 1", err, len);
	int rc;

	if (!q)
		return -1;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(q, 0);
		snprintf(digest, STORE_DIGEST_LEN, "%s", sql_text(q, 1));
	} else if (rc == SQLITE_DONE) {
		struct model *empty = model_new();

		*version = 0;
		rc = empty && model_digest(empty, digest) == 0 ? SQLITE_ROW
							       : SQLITE_NOMEM;
		model_free(empty);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW)
		return sql_fail(err, len, "reading the change log: %s",
			     rc == SQLITE_NOMEM ? "out of memory"
						: sqlite3_errmsg(db));
	return 0;
}

/* The rows read into a new model and hashed: straight, or checked
 * (store_rows.h). NULL with err when out of memory or, checked, when a
 * row is wrong. */
static struct model *read_rows(sqlite3 *db, bool checked,
			       char digest[STORE_DIGEST_LEN], char *err,
			       size_t len)
{
	struct model *m = model_new();
	int rc;

	if (!m) {
		sql_fail(err, len, "out of memory");
		return NULL;
	}
	model_begin(m);
	rc = checked ? store_rows_check(db, m, err, len)
		     : store_rows_read(db, m);
	/* hashed while the services count as touched: on every core */
	if (rc == 0 && model_digest(m, digest) < 0)
		rc = sql_fail(err, len, "out of memory");
	if (rc < 0) {
		model_free(m);
		return NULL;
	}
	model_commit(m);
	return m;
}

/* The tables read into a new model, checked against the log's last
 * digest: straight from the rows, else through change_apply, service by
 * service, to say what is wrong. What hashes to a logged digest is what
 * fulcrumd committed, and every commit went through change_apply's
 * checks. Runs inside the caller's transaction, so that tables and log
 * agree. */
static int read_tables(sqlite3 *db, struct model **out, uint64_t *version,
		       char digest[STORE_DIGEST_LEN], char *err, size_t len)
{
	char head[STORE_DIGEST_LEN];
	struct model *m;

	if (log_head(db, version, head, err, len) < 0)
		return -1;
	m = read_rows(db, false, digest, err, len);
	if (m && strcmp(digest, head) == 0) {
		*out = m;
		return 0;
	}
	model_free(m);
	if (!(m = read_rows(db, true, digest, err, len)))
		return -1;
	if (strcmp(digest, head) != 0) {
		model_free(m);
		return sql_fail(err, len, "the stored services hash to %s but "
				"the change log says %s at version %" PRIu64
				": the file was changed behind the control "
				"plane's back; restore it from the backup or "
				"the log", digest, head, *version);
	}
	*out = m;
	return 0;
}

static int load(struct store *st, char *err, size_t len)
{
	char digest[STORE_DIGEST_LEN];
	struct model *m = NULL;
	uint64_t version;

	if (read_tables(st->db, &m, &version, digest, err, len) < 0)
		return -1;
	model_free(st->model);
	st->model = m;
	st->version = version;
	memcpy(st->digest, digest, sizeof(digest));
	return 0;
}

static sqlite3 *open_db(const char *path, int flags, char *err, size_t len)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		sql_fail(err, len, "%s: %s", path,
		      db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	/* A reader such as the sqlite3 shell may hold the file briefly. */
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* Copies all of src over the database at dst_path, in one transaction of
 * dst's, so that a crash half-way leaves dst as it was. */
static int copy_db(sqlite3 *src, const char *dst_path, char *err, size_t len)
{
	sqlite3 *dst = open_db(dst_path, SQLITE_OPEN_READWRITE |
			       SQLITE_OPEN_CREATE, err, len);
	sqlite3_backup *b;
	int rc;

	if (!dst)
		return -1;
	if (sql_exec(dst, "PRAGMA synchronous = FULL", err, len) < 0) {
		sqlite3_close(dst);
		return -1;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		sql_db_fail(dst, dst_path, err, len);
		sqlite3_close(dst);
		return -1;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	sqlite3_close(dst);
	if (rc != SQLITE_DONE)
		return sql_fail(err, len, "copying to %s: %s", dst_path,
			     sqlite3_errstr(rc));
	return 0;
}

static int set_durability(sqlite3 *db, char *err, size_t len);

/* Changes only when another connection commits to db. */
static int data_version(sqlite3 *db, int64_t *v)
{
	sqlite3_stmt *q = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &q,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW) {
		*v = sqlite3_column_int64(q, 0);
		rc = 0;
	}
	sqlite3_finalize(q);
	return rc;
}

/* Opens the copy, current as of now, to make the next changes to. */
static int hold_backup(struct store *st)
{
	char msg[200];

	st->backup = open_db(st->backup_path, SQLITE_OPEN_READWRITE, msg,
			     sizeof(msg));
	if (!st->backup || set_durability(st->backup, msg, sizeof(msg)) < 0) {
		sqlite3_close(st->backup);
		st->backup = NULL;
		snprintf(st->backup_error, sizeof(st->backup_error), "%s: %s",
			 st->backup_path, msg);
		return -1;
	}
	if (stat(st->backup_path, &st->backup_file) < 0 ||
	    data_version(st->backup, &st->backup_data_version) < 0) {
		sqlite3_close(st->backup);
		st->backup = NULL;
		snprintf(st->backup_error, sizeof(st->backup_error), "%s: %s",
			 st->backup_path, strerror(errno));
		return -1;
	}
	st->backup_error[0] = '\0';
	return 0;
}

/* Whether the held copy may have changed other than by our hand: its
 * file removed or replaced (our writes would go to a file nobody can
 * open), or written through another connection, such as a shell. */
static bool backup_moved(struct store *st)
{
	struct stat now;
	int64_t v;

	return stat(st->backup_path, &now) < 0 ||
	       now.st_dev != st->backup_file.st_dev ||
	       now.st_ino != st->backup_file.st_ino ||
	       data_version(st->backup, &v) < 0 ||
	       v != st->backup_data_version;
}

/* Copies the whole store over the copy: when it is new, stale or in
 * doubt. */
static int refresh_backup(struct store *st)
{
	if (!st->backup_path)
		return 0;
	sqlite3_close(st->backup);
	st->backup = NULL;
	if (copy_db(st->db, st->backup_path, st->backup_error,
		    sizeof(st->backup_error)) < 0)
		return -1;
	return hold_backup(st);
}

static int restore(const char *path, const char *backup_path, char *err,
		   size_t len)
{
	char msg[200];
	sqlite3 *src = open_db(backup_path, SQLITE_OPEN_READONLY, msg,
			       sizeof(msg));
	int rc;

	if (!src)
		return sql_fail(err, len, "restoring %s from %s: %s", path,
			     backup_path, msg);
	rc = copy_db(src, path, msg, sizeof(msg));
	sqlite3_close(src);
	if (rc < 0)
		return sql_fail(err, len, "restoring %s from %s: %s", path,
			     backup_path, msg);
	return 0;
}

static int check_schema(sqlite3 *db, char *err, size_t len);

/* Refreshes the copy unless it is current, in schema as well (the store
 * may just have been upgraded). A copy ahead of the store means that the
 * store is an older file than the one the copy was made from. */
static int check_backup(struct store *st, const char *path, char *err,
			size_t len)
{
	char digest[STORE_DIGEST_LEN], msg[200];
	uint64_t version = 0;
	bool readable = false, same_schema = false;
	sqlite3 *db;

	if (access(st->backup_path, F_OK) == 0) {
		db = open_db(st->backup_path, SQLITE_OPEN_READONLY, msg,
			     sizeof(msg));
		readable = db && log_head(db, &version, digest, msg,
					  sizeof(msg)) == 0;
		same_schema = readable && check_schema(db, msg,
						       sizeof(msg)) == 0;
		sqlite3_close(db);
	}
	if (readable && version > st->version)
		return sql_fail(err, len, "the backup %s is at version %" PRIu64
			     ", ahead of %s at version %" PRIu64 ": %s may be "
			     "an old file put back; move away the one not to "
			     "keep", st->backup_path, version, path,
			     st->version, path);
	if (!same_schema || version < st->version ||
	    strcmp(digest, st->digest) != 0)
		refresh_backup(st);
	else
		hold_backup(st);
	return 0;
}

/* The store's schema version into *version: 0, or -1 with err when db
 * is no store at all. */
static int schema_of(sqlite3 *db, int *version, char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, "SELECT value FROM meta"
				  " WHERE key = 'schema_version'", err, len);

	if (!q)
		return sql_fail(err, len, "not a Fulcrum state store (no meta "
			     "table)");
	*version = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0)
						 : -1;
	sqlite3_finalize(q);
	return 0;
}

/* Whether db is at this build's schema, for reading it as it is. */
static int check_schema(sqlite3 *db, char *err, size_t len)
{
	int version;

	if (schema_of(db, &version, err, len) < 0)
		return -1;
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version >= STORE_SCHEMA_OLDEST && version < STORE_SCHEMA_VERSION)
		sql_fail(err, len, "schema version %d is older than this "
			 "build's (%d): fulcrumd upgrades it when it next "
			 "opens it", version, STORE_SCHEMA_VERSION);
	else
		sql_fail(err, len, "schema version %d is not one this build "
			 "reads (%d)", version, STORE_SCHEMA_VERSION);
	errno = ENOTSUP;
	return -1;
}

/* A new store gets the schema; an older one is upgraded to it. */
static int init_schema(sqlite3 *db, char *err, size_t len)
{
	char head[STORE_DIGEST_LEN];
	sqlite3_stmt *q;
	uint64_t version;
	int tables = -1, found;

	if (sql_exec(db, "BEGIN IMMEDIATE", err, len) < 0)
		return -1;
	q = sql_prepare(db, "SELECT count(*) FROM sqlite_master WHERE type ="
		    " 'table'", err, len);
	if (q && sqlite3_step(q) == SQLITE_ROW)
		tables = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (tables < 0) {
		sql_db_fail(db, "reading the schema", err, len);
		goto fail;
	}
	if (tables == 0) {
		if (sql_exec(db, schema, err, len) < 0)
			goto fail;
		return sql_exec(db, "COMMIT", err, len);
	}
	if (schema_of(db, &found, err, len) < 0)
		goto fail;
	if (found >= STORE_SCHEMA_OLDEST && found < STORE_SCHEMA_VERSION &&
	    (log_head(db, &version, head, err, len) < 0 ||
	     store_migrate(db, found, head, err, len) < 0))
		goto fail;
	if (check_schema(db, err, len) < 0)
		goto fail;
	return sql_exec(db, "COMMIT", err, len);
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* WAL, so that readers never block the writer; FULL, so that a commit
 * the caller was told about survives a power cut. */
static int set_durability(sqlite3 *db, char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, "PRAGMA journal_mode = WAL", err, len);
	bool wal = false;

	if (!q)
		return -1;
	if (sqlite3_step(q) == SQLITE_ROW)
		wal = strcmp(sql_text(q, 0), "wal") == 0;
	sqlite3_finalize(q);
	if (!wal)
		return sql_db_fail(db, "switching to WAL mode", err, len);
	return sql_exec(db, "PRAGMA synchronous = FULL", err, len);
}

/* ---- noticing what is done to the files behind the store's back ---- */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int wal_path(const struct store *st, char *out, size_t len)
{
	return snprintf(out, len, "%s-wal", st->path) < (int)len ? 0 : -1;
}

/* seen: PRAGMA data_version as read before the state was last read or
 * written, never after: a commit by another connection in between must
 * show at the next store_check. */
static void take_marks(struct store *st, int64_t seen)
{
	char wal[PATH_MAX];

	memset(&st->marks, 0, sizeof(st->marks));
	stat(st->path, &st->marks.main);
	if (wal_path(st, wal, sizeof(wal)) == 0)
		stat(wal, &st->marks.wal);
	st->marks.data_version = seen;
}

static int64_t seen_version(sqlite3 *db)
{
	int64_t v;

	return data_version(db, &v) == 0 ? v : -1;
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Reads the whole store again, through a connection of its own, as a
 * restarted fulcrumd would (this one's cache may hold pages the file
 * lost), and checks it against what this process committed last. */
static int verify(struct store *st, char *why, size_t len)
{
	char digest[STORE_DIGEST_LEN], msg[512] = "";
	int64_t seen = seen_version(st->db);
	sqlite3 *db = open_db(st->path, SQLITE_OPEN_READONLY, msg, sizeof(msg));
	struct model *m = NULL;
	sqlite3_stmt *q = NULL;
	uint64_t version;
	int rc = -1;

	if (!db)
		return sql_fail(why, len, "%s cannot be opened: %s", st->path, msg);
	q = sql_prepare(db, "PRAGMA quick_check", msg, sizeof(msg));
	if (!q || sqlite3_step(q) != SQLITE_ROW ||
	    strcmp(sql_text(q, 0), "ok") != 0) {
		sql_fail(why, len, "%s fails SQLite's integrity check: %s", st->path,
		      q ? (sqlite3_column_text(q, 0) ? sql_text(q, 0) :
			   sqlite3_errmsg(db)) : msg);
		goto out;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (sql_exec(db, "BEGIN", msg, sizeof(msg)) < 0 ||
	    check_schema(db, msg, sizeof(msg)) < 0 ||
	    read_tables(db, &m, &version, digest, msg, sizeof(msg)) < 0) {
		sql_fail(why, len, "%s: %s", st->path, msg);
		goto out;
	}
	if (version != st->version || strcmp(digest, st->digest) != 0) {
		sql_fail(why, len, "%s holds version %" PRIu64 " (digest %.12s), not "
		      "version %" PRIu64 " (digest %.12s) that was committed last",
		      st->path, version, digest, st->version, st->digest);
		goto out;
	}
	take_marks(st, seen);
	rc = 0;
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	model_free(m);
	return rc;
}

int store_check(struct store *st, char *why, size_t len)
{
	char wal[PATH_MAX];
	struct stat main, log;
	int64_t now_version;

	if (stat(st->path, &main) < 0)
		return sql_fail(why, len, "%s is gone: %s", st->path,
			     strerror(errno));
	if (!same_inode(&main, &st->marks.main))
		return sql_fail(why, len, "%s is another file than the one opened",
			     st->path);
	/* the commits not yet checkpointed into the main file live there */
	if (wal_path(st, wal, sizeof(wal)) < 0 || stat(wal, &log) < 0)
		return sql_fail(why, len, "%s is gone: commits not yet in %s "
			     "would be lost at the next start", wal, st->path);
	if (!same_inode(&log, &st->marks.wal))
		return sql_fail(why, len, "%s is another file than the one opened",
			     wal);
	/* an SQLite file never shrinks here: no VACUUM, no auto_vacuum */
	if (main.st_size < st->marks.main.st_size)
		return sql_fail(why, len, "%s was cut from %lld to %lld bytes",
			     st->path, (long long)st->marks.main.st_size,
			     (long long)main.st_size);
	/* Only this process's checkpoints write the main file: a write by
	 * another may have changed pages that the -wal file now hides, to
	 * show at the next start. */
	if (!same_file(&main, &st->marks.main))
		return sql_fail(why, len, "%s was written to by another process",
			     st->path);
	/* another connection's commits: harmless only if they left the
	 * state alone */
	if (same_file(&log, &st->marks.wal) &&
	    data_version(st->db, &now_version) == 0 &&
	    now_version == st->marks.data_version)
		return 0;
	return verify(st, why, len);
}

int store_persist_wal(struct store *st)
{
	int on = 1;

	return sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL,
				    &on) == SQLITE_OK ? 0 : -1;
}

struct store *store_open(const char *path, const char *backup_path,
			 char *err, size_t len)
{
	struct store *st = calloc(1, sizeof(*st));
	char msg[256];
	int64_t seen;

	if (!st || !(st->path = strdup(path)) ||
	    (backup_path && !(st->backup_path = strdup(backup_path)))) {
		sql_fail(err, len, "out of memory");
		goto fail;
	}
	if (backup_path && access(path, F_OK) < 0 && errno == ENOENT &&
	    access(backup_path, F_OK) == 0 &&
	    restore(path, backup_path, err, len) < 0)
		goto fail;
	st->db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			 err, len);
	if (!st->db)
		goto fail;
	if (set_durability(st->db, msg, sizeof(msg)) < 0 ||
	    init_schema(st->db, msg, sizeof(msg)) < 0 ||
	    sql_exec(st->db, "BEGIN", msg, sizeof(msg)) < 0) {
		sql_fail(err, len, "%s: %s", path, msg);
		goto fail;
	}
	if (load(st, msg, sizeof(msg)) < 0) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		sql_fail(err, len, "%s: %s", path, msg);
		goto fail;
	}
	seen = seen_version(st->db);
	if (sql_exec(st->db, "COMMIT", err, len) < 0)
		goto fail;
	if (backup_path && check_backup(st, path, err, len) < 0)
		goto fail;
	take_marks(st, seen);
	return st;
fail:
	store_close(st);
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close(st->backup);
	sqlite3_close(st->db);
	model_free(st->model);
	free(st->path);
	free(st->backup_path);
	free(st);
}

const char *store_backup_error(const struct store *st)
{
	return st->backup_error[0] ? st->backup_error : NULL;
}

uint64_t store_version(const struct store *st)
{
	return st->version;
}

size_t store_n_services(const struct store *st)
{
	return st->model->by_name.n;
}

int store_digest(const struct store *st, char out[STORE_DIGEST_LEN])
{
	memcpy(out, st->digest, STORE_DIGEST_LEN);
	return 0;
}

static json_t *with_version(json_t *state, uint64_t version, char *err,
			    size_t len)
{
	if (!state || json_object_set_new(state, "version",
					  json_integer((json_int_t)version)) < 0) {
		json_decref(state);
		sql_fail(err, len, "out of memory");
		return NULL;
	}
	return state;
}

json_t *store_state(struct store *st, char *err, size_t len)
{
	return with_version(model_to_json(st->model), st->version, err, len);
}

/* Reading a store that another process owns and may be writing at the
 * time. The owner keeps it in WAL mode: a commit goes to the -wal file
 * first and reaches the store's own file only at a checkpoint, and
 * readers agree with the writer through the -shm file on which WAL frames
 * they may use, so that no checkpoint overwrites a page a reader still
 * needs.
 *
 * While a -wal file exists (the owner runs, or it died without closing
 * and its last commits may be there only) the store is read as any SQLite
 * reader reads it: read-only, but through the -wal and -shm files, in one
 * read transaction. immutable=1 or nolock=1 would read the store's file
 * alone, missing those commits, and without locks, so that a checkpoint
 * could change pages under the read.
 *
 * Without one, nobody has the store open and its file holds every commit.
 * Reading it as above would leave new -wal and -shm files next to the
 * store (a read-only connection may not remove them), so it is read
 * immutable=1, which creates nothing. That is right only if nobody wrote
 * meanwhile, so the read counts only if there is still no -wal file and
 * the store's file is unchanged: a process opening the store makes a -wal
 * file before it writes anything, and removes it only after moving what
 * it committed into the store's file. Else the store is read again the
 * first way. */
static bool wal_exists(const char *path)
{
	char wal[PATH_MAX];

	/* a name too long to check: assume a writer, the safe read */
	if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal))
		return true;
	return access(wal, F_OK) == 0;
}

/* path as a URI filename opening it immutable, escaping what a URI gives
 * a meaning to. An absolute path gets an empty authority, so that one
 * starting "//" is not taken for a host name. */
static char *immutable_uri(const char *path)
{
	static const char suffix[] = "?immutable=1";
	char *uri = malloc(strlen("file://") + 3 * strlen(path) +
			   sizeof(suffix));
	char *p = uri;

	if (!uri)
		return NULL;
	p += sprintf(p, path[0] == '/' ? "file://" : "file:");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if (isalnum(*c) || strchr("/._-", *c))
			*p++ = (char)*c;
		else
			p += sprintf(p, "%%%02X", *c);
	}
	strcpy(p, suffix);
	return uri;
}

/* One read of the store, checked as store_open checks it, into st, a
 * store of its own that lives only for the read: its model, version and
 * digest are filled, its database closed again. */
static int read_once(const char *path, bool immutable, struct store *st,
		     char *err, size_t len)
{
	char *uri = immutable ? immutable_uri(path) : NULL;
	char msg[512];
	int rc = -1;

	if (immutable && !uri)
		return sql_fail(err, len, "out of memory");
	st->db = open_db(immutable ? uri : path, SQLITE_OPEN_READONLY |
			 (immutable ? SQLITE_OPEN_URI : 0), err, len);
	free(uri);
	if (!st->db)
		return -1;
	/* one transaction, so that the tables and the log agree */
	if (sql_exec(st->db, "BEGIN", msg, sizeof(msg)) < 0 ||
	    check_schema(st->db, msg, sizeof(msg)) < 0 ||
	    load(st, msg, sizeof(msg)) < 0)
		sql_fail(err, len, "%s: %s", path, msg);
	else
		rc = 0;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(st->db);
	st->db = NULL;
	return rc;
}

/* The store at path read into st, by the safe way for its state (above). */
static int read_checked(const char *path, struct store *st, char *err,
			size_t len)
{
	struct stat before, after;

	if (stat(path, &before) < 0)
		return sql_fail(err, len, "%s: %s", path, strerror(errno));
	if (!wal_exists(path)) {
		int rc = read_once(path, true, st, err, len);

		if (stat(path, &after) == 0 && !wal_exists(path) &&
		    same_file(&before, &after))
			return rc;
		model_free(st->model);
		st->model = NULL;
	}
	return read_once(path, false, st, err, len);
}

json_t *store_read_state(const char *path, uint64_t *version,
			 char digest[STORE_DIGEST_LEN], char *err, size_t len)
{
	struct store st = { .db = NULL };
	json_t *state = NULL;

	if (read_checked(path, &st, err, len) == 0) {
		state = store_state(&st, err, len);
		*version = st.version;
		memcpy(digest, st.digest, STORE_DIGEST_LEN);
	}
	model_free(st.model);
	return state;
}

void store_service_of(const struct service *s, struct store_service *out,
		      struct store_backend *b)
{
	for (uint32_t i = 0; i < s->n_backends; i++)
		b[i] = (struct store_backend){
			.addr = s->backends[i].addr,
			.weight = s->backends[i].weight,
			.state = backend_state_name(s->backends[i].state),
		};
	*out = (struct store_service){
		.name = s->name, .vip = s->vip, .family = s->family,
		.proto = s->proto, .port = s->port,
		.mode = service_mode_name(s->mode),
		.table_size = s->table_size, .gue_port = s->gue_port,
		.n_backends = s->n_backends, .backends = b,
	};
}

int store_read_services(const char *path, uint64_t *version,
			char digest[STORE_DIGEST_LEN], size_t *n_services,
			store_service_fn fn, void *arg, char *err, size_t len)
{
	struct store st = { .db = NULL };
	const struct service **order = NULL;
	struct store_backend *b = NULL;
	uint32_t most = 0;
	int rc = -1;

	if (read_checked(path, &st, err, len) < 0)
		goto out;
	*version = st.version;
	memcpy(digest, st.digest, STORE_DIGEST_LEN);
	*n_services = st.model->by_name.n;
	order = model_sorted(st.model);
	for (size_t i = 0; order && i < st.model->by_name.n; i++)
		if (order[i]->n_backends > most)
			most = order[i]->n_backends;
	b = calloc(most + 1, sizeof(*b));
	if (!order || !b) {
		sql_fail(err, len, "out of memory");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; rc == 0 && i < st.model->by_name.n; i++) {
		struct store_service one;

		store_service_of(order[i], &one, b);
		rc = fn(&one, i, arg);
	}
out:
	free(b);
	model_free(st.model);
	return rc;
}

/* Called once for each name the change under way touched, with what the
 * service was before the change began: its first journal entry's. */
typedef int (*touched_fn)(const struct model *m, const char *name,
			  const struct service *was, void *arg);

/* 0, -1 with err when out of memory, or fn's first non-zero. */
static int each_touched(const struct model *m, touched_fn fn, void *arg,
			char *err, size_t len)
{
	json_t *done = json_object();
	int rc = done ? 0 : sql_fail(err, len, "out of memory");

	for (size_t i = 0; rc == 0 && i < model_n_touched(m); i++) {
		const char *name = model_touched(m, i);

		if (json_object_get(done, name))
			continue;
		if (json_object_set_new(done, name, json_true()) < 0)
			rc = sql_fail(err, len, "out of memory");
		else
			rc = fn(m, name, model_touched_before(m, i), arg);
	}
	json_decref(done);
	return rc;
}

/* A reader's service into m: 0, or -1 where it clashes with one added
 * before or a field does not parse. */
static int import_service(struct model *m, const struct store_service *in)
{
	struct service tmpl = {
		.vip = in->vip, .family = in->family, .proto = in->proto,
		.port = in->port, .table_size = in->table_size,
		.gue_port = in->gue_port,
	};
	int mode = service_mode_parse(in->mode);
	struct service *s;

	if (mode < 0 || strlen(in->name) >= sizeof(tmpl.name))
		return -1;
	strcpy(tmpl.name, in->name);
	tmpl.mode = (uint8_t)mode;
	if (!(s = model_add_if_free(m, &tmpl)))
		return -1;
	for (uint32_t i = 0; i < in->n_backends; i++) {
		int state = backend_state_parse(in->backends[i].state);
		struct backend b = {
			.addr = in->backends[i].addr,
			.weight = in->backends[i].weight,
			.state = (uint8_t)state,
		};

		if (state < 0 || service_backend_add(s, &b) < 0)
			return -1;
	}
	return 0;
}

int store_services_digest(const struct store_service *v, size_t n,
			  char out[STORE_DIGEST_LEN], char *err, size_t len)
{
	struct model *m = model_new();
	int rc = m ? 0 : sql_fail(err, len, "out of memory");

	if (m)
		model_begin(m);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (import_service(m, &v[i]) < 0)
			rc = sql_fail(err, len, "service '%s' clashes with another "
				      "or has a field or backend that is not "
				      "valid", v[i].name);
	/* hashed while every service counts as touched: on every core */
	if (rc == 0 && model_digest(m, out) < 0)
		rc = sql_fail(err, len, "out of memory");
	model_free(m);
	return rc;
}

struct touched_writer {
	struct rows_writer *w;
	char *err;
	size_t len;
};

static int write_one(const struct model *m, const char *name,
		     const struct service *was, void *arg)
{
	struct touched_writer *t = arg;

	(void)was;
	return rows_writer_put(t->w, name, model_find(m, name), t->err,
			       t->len);
}

/* The rows of the services the change under way touched. */
static int write_touched(const struct model *m, sqlite3 *db, char *err,
			 size_t len)
{
	struct touched_writer t = {
		.w = rows_writer_new(db, err, len), .err = err, .len = len,
	};
	int rc = t.w ? each_touched(m, write_one, &t, err, len) : -1;

	rows_writer_free(t.w);
	return rc;
}

struct log_row {
	uint64_t version;
	int64_t time_ms;
	const struct change_meta *meta;
	const char *ops;             /* JSON text */
	const char *digest;
};

static int append_log(sqlite3 *db, const struct log_row *r, char *err,
		      size_t len)
{
	sqlite3_stmt *q = sql_prepare(db, "INSERT INTO change_log (version,"
				  " time_ms, user, uid, environment, reason,"
				  " automatic, ops, digest) VALUES (?1, ?2,"
				  " ?3, ?4, ?5, ?6, ?7, ?8, ?9)", err, len);
	const struct change_meta *meta = r->meta;
	int rc = -1;

	if (q) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)r->version);
		sqlite3_bind_int64(q, 2, r->time_ms);
		sqlite3_bind_text(q, 3, meta->user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 4, meta->uid);
		sqlite3_bind_text(q, 5, meta->environment ?
				  meta->environment : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, meta->reason ? meta->reason : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int(q, 7, meta->automatic);
		sqlite3_bind_text(q, 8, r->ops, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 9, r->digest, -1, SQLITE_STATIC);
		rc = sql_step_done(q) < 0 ? sql_db_fail(db, "appending to the change "
						"log", err, len) : 0;
	}
	sqlite3_finalize(q);
	return rc;
}

/* The change just committed to the store, made to the copy as well: the
 * same rows and the same log entry, in one transaction of the copy's,
 * which is durable (WAL, synchronous FULL) before the caller hears of the
 * change. The copy is then the store, row for row, at the new version,
 * as a whole copy would be, for the cost of the rows the change wrote
 * rather than of the whole store. It is made only to a copy at the
 * store's previous version and digest (was_digest), checked inside the
 * transaction, and only to the file we hold, unchanged by anyone else
 * since, so that a copy someone else moved or rewrote is never patched
 * into something the store is not. -1: the caller copies the whole store. */
static int backup_change(struct store *st, const struct log_row *r,
			 const char *was_digest)
{
	char digest[STORE_DIGEST_LEN], msg[256];
	uint64_t version;

	if (!st->backup || backup_moved(st))
		return -1;
	if (sql_exec(st->backup, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0)
		return -1;
	if (log_head(st->backup, &version, digest, msg, sizeof(msg)) < 0 ||
	    version + 1 != r->version || strcmp(digest, was_digest) != 0 ||
	    write_touched(st->model, st->backup, msg, sizeof(msg)) < 0 ||
	    append_log(st->backup, r, msg, sizeof(msg)) < 0 ||
	    store_images_append(st->model, st->backup, r->version,
				msg, sizeof(msg)) < 0 ||
	    sql_exec(st->backup, "COMMIT", msg, sizeof(msg)) < 0) {
		sqlite3_exec(st->backup, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/* Another connection may have written the store since we last read it:
 * through the log, or behind it (a shell deleting rows). Either way the
 * tables are read again, and refused unless they add up to the log's
 * last digest. The caller holds the write lock, so nothing can move after
 * this; seen is data_version as of now. */
static int catch_up(struct store *st, int64_t seen, char *err, size_t len)
{
	char digest[STORE_DIGEST_LEN];
	uint64_t version;

	if (log_head(st->db, &version, digest, err, len) < 0)
		return -1;
	if (version == st->version && strcmp(digest, st->digest) == 0 &&
	    seen >= 0 && seen == st->marks.data_version)
		return 0;
	return load(st, err, len);
}

/* Changes of this many ops or more have their log text made on another
 * core while their rows are written and the changed model is hashed:
 * after a restore of 10,000 services, 95,178 ops, the text (8.8 MB, 180
 * ms here) is the longest part of the commit, and the hash (70 ms) the
 * next. A plan's ops come with the text they were read from, which is
 * logged instead (change_meta's ops_text). */
#define LOG_TEXT_APART_OPS 1000

struct log_text {
	const json_t *ops;
	const char *given;           /* change_meta's ops_text */
	char *text;
};

static void *make_log_text(void *arg)
{
	struct log_text *t = arg;

	t->text = t->given ? strdup(t->given) : json_dumps(t->ops, JSON_COMPACT);
	return NULL;
}

/* The changed model's rows written and its digest made, and with them
 * the log row's text (*text, the caller frees it), apart when the change
 * is large: it reads only ops, which neither of the others touches. */
static int write_rows(struct store *st, const struct change_meta *meta,
		      const json_t *ops, char **text,
		      char digest[STORE_DIGEST_LEN], char *err, size_t len)
{
	struct log_text t = { .ops = ops, .given = meta->ops_text };
	pthread_t apart;
	bool started = !t.given && json_array_size(ops) >= LOG_TEXT_APART_OPS &&
		       pthread_create(&apart, NULL, make_log_text, &t) == 0;
	int rc = write_touched(st->model, st->db, err, len);

	if (rc == 0 && model_digest(st->model, digest) < 0)
		rc = sql_fail(err, len, "out of memory");
	if (started)
		pthread_join(apart, NULL);
	else if (rc == 0)
		make_log_text(&t);
	if (rc == 0 && !t.text)
		rc = sql_fail(err, len, "out of memory");
	*text = t.text;
	return rc;
}

/* A hook called with store_just_changed allowed. */
static void call_hook(struct store *st, void (*hook)(struct store *, void *),
		      void *arg)
{
	if (!hook)
		return;
	st->just_committed = true;
	hook(st, arg);
	st->just_committed = false;
}

int store_commit_then(struct store *st, const struct change_meta *meta,
		      const json_t *ops, const struct store_hooks *hooks,
		      uint64_t *new_version, char *err, size_t len)
{
	char digest[STORE_DIGEST_LEN], was_digest[STORE_DIGEST_LEN];
	struct log_row row = { .meta = meta, .digest = digest };
	char *text = NULL;
	struct timespec now;
	bool backed_up;
	int64_t seen;

	if (!meta || !meta->user || !*meta->user)
		return sql_fail(err, len, "a change needs the user making it");
	if (sql_exec(st->db, "BEGIN IMMEDIATE", err, len) < 0)
		return -1;
	seen = seen_version(st->db);
	if (catch_up(st, seen, err, len) < 0) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	model_begin(st->model);
	if (change_apply(st->model, ops, err, len) < 0)
		goto fail;
	if (hooks)
		call_hook(st, hooks->applied, hooks->arg);
	if (write_rows(st, meta, ops, &text, digest, err, len) < 0)
		goto fail;
	clock_gettime(CLOCK_REALTIME, &now);
	row.version = st->version + 1;
	row.time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	row.ops = text;
	if (append_log(st->db, &row, err, len) < 0 ||
	    store_images_append(st->model, st->db, row.version, err,
				len) < 0 ||
	    sql_exec(st->db, "COMMIT", err, len) < 0)
		goto fail;
	memcpy(was_digest, st->digest, sizeof(was_digest));
	st->version++;
	memcpy(st->digest, digest, sizeof(digest));
	*new_version = st->version;
	take_marks(st, seen);
	if (hooks)
		call_hook(st, hooks->durable, hooks->arg);
	/* before model_commit: the copy is written from what it touched */
	backed_up = !st->backup_path ||
		    backup_change(st, &row, was_digest) == 0;
	model_commit(st->model);
	free(text);
	if (!backed_up && refresh_backup(st) < 0) {
		snprintf(err, len, "%s", st->backup_error);
		return STORE_BACKUP_FAILED;
	}
	return STORE_OK;
fail:
	free(text);
	model_rollback(st->model);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_commit(struct store *st, const struct change_meta *meta,
		 const json_t *ops, uint64_t *new_version, char *err,
		 size_t len)
{
	return store_commit_then(st, meta, ops, NULL, new_version, err, len);
}

/* A service the change just committed touched, and what it was before. */
struct touched {
	const char *name;
	const struct service *was;
};

struct touched_list {
	struct touched *v;
	size_t n;
};

static int list_touched(const struct model *m, const char *name,
			const struct service *was, void *arg)
{
	struct touched_list *l = arg;

	(void)m;
	l->v[l->n++] = (struct touched){ name, was };
	return 0;
}

static int by_touched_name(const void *a, const void *b)
{
	return strcmp(((const struct touched *)a)->name,
		      ((const struct touched *)b)->name);
}

int store_just_changed(struct store *st, store_change_fn fn, void *arg,
		       char *err, size_t len)
{
	struct touched_list l = { 0 };
	int rc;

	if (!st->just_committed)
		return sql_fail(err, len, "no change is being committed");
	l.v = malloc((model_n_touched(st->model) + 1) * sizeof(*l.v));
	if (!l.v)
		return sql_fail(err, len, "out of memory");
	rc = each_touched(st->model, list_touched, &l, err, len);
	/* by name, as store_changed_since tells them: the dataplane gives
	 * new services their places in the order it is sent them */
	qsort(l.v, l.n, sizeof(*l.v), by_touched_name);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		const struct service *now = model_find(st->model, l.v[i].name);

		/* made and deleted within the change: nothing to tell */
		if (now || l.v[i].was)
			rc = fn(now, l.v[i].was, arg);
	}
	free(l.v);
	return rc;
}

int store_each_service(struct store *st, store_change_fn fn, void *arg,
		       char *err, size_t len)
{
	const struct service **order = model_sorted(st->model);
	int rc = 0;

	if (!order)
		return sql_fail(err, len, "out of memory");
	for (size_t i = 0; rc == 0 && i < st->model->by_name.n; i++)
		rc = fn(order[i], NULL, arg);
	return rc;
}

int store_commit_text(struct store *st, const struct change_meta *meta,
		      const char *text, uint64_t *new_version, char *err,
		      size_t len)
{
	json_t *ops = change_parse(text, err, len);
	int rc;

	if (!ops)
		return -1;
	rc = store_commit(st, meta, ops, new_version, err, len);
	json_decref(ops);
	return rc;
}

int store_logged_digest(struct store *st, uint64_t v,
			char out[STORE_DIGEST_LEN])
{
	char err[256];
	sqlite3_stmt *q = sql_prepare(st->db, "SELECT digest FROM change_log"
				  " WHERE version = ?1", err, sizeof(err));
	int rc = -1;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)v);
	if (sqlite3_step(q) == SQLITE_ROW) {
		snprintf(out, STORE_DIGEST_LEN, "%s", sql_text(q, 0));
		rc = 0;
	}
	sqlite3_finalize(q);
	return rc;
}

static json_t *history_entry(sqlite3_stmt *q, char *err, size_t len)
{
	json_error_t e;
	json_t *ops = json_loads(sql_text(q, 7), 0, &e), *entry;

	if (!ops) {
		sql_fail(err, len, "version %lld in the change log: ops are not "
		      "JSON: %s", sqlite3_column_int64(q, 0), e.text);
		return NULL;
	}
	entry = json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:b, s:o, s:s}",
			 "version", (json_int_t)sqlite3_column_int64(q, 0),
			 "time_ms", (json_int_t)sqlite3_column_int64(q, 1),
			 "user", sql_text(q, 2),
			 "uid", (json_int_t)sqlite3_column_int64(q, 3),
			 "environment", sql_text(q, 4),
			 "reason", sql_text(q, 5),
			 "automatic", sqlite3_column_int(q, 6) != 0,
			 "ops", ops,
			 "digest", sql_text(q, 8));
	if (!entry)
		sql_fail(err, len, "out of memory");
	return entry;
}

json_t *store_history(struct store *st, uint64_t from_version,
		      unsigned int limit, char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(st->db, "SELECT version, time_ms, user, uid,"
				  " environment, reason, automatic, ops, digest"
				  " FROM change_log WHERE version >= ?1"
				  " ORDER BY version LIMIT ?2", err, len);
	json_t *history = json_array();
	int rc;

	if (!q || !history)
		goto fail;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)from_version);
	sqlite3_bind_int64(q, 2, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *entry = history_entry(q, err, len);

		if (!entry || json_array_append_new(history, entry) < 0)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		sql_db_fail(st->db, "reading the change log", err, len);
		goto fail;
	}
	sqlite3_finalize(q);
	return history;
fail:
	if (q && !history)
		sql_fail(err, len, "out of memory");
	sqlite3_finalize(q);
	json_decref(history);
	return NULL;
}

/* Replays the log into a model of its own; the store's model, tables and
 * transactions are not involved. */
json_t *store_state_at(struct store *st, uint64_t version, char *err,
		       size_t len)
{
	sqlite3_stmt *q = sql_prepare(st->db, "SELECT version, ops, digest"
				  " FROM change_log WHERE version <= ?1"
				  " ORDER BY version", err, len);
	struct model *m = model_new();
	char logged[STORE_DIGEST_LEN] = "", digest[STORE_DIGEST_LEN], msg[256];
	uint64_t at = 0;
	json_t *state = NULL;
	int rc;

	if (!q)
		goto out;
	if (!m) {
		sql_fail(err, len, "out of memory");
		goto out;
	}
	if (version > st->version) {
		sql_fail(err, len, "there is no version %" PRIu64 " (the latest "
		      "is %" PRIu64 ")", version, st->version);
		goto out;
	}
	sqlite3_bind_int64(q, 1, (sqlite3_int64)version);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *ops;

		at = (uint64_t)sqlite3_column_int64(q, 0);
		ops = change_parse(sql_text(q, 1), msg, sizeof(msg));
		model_begin(m);
		if (!ops || change_apply(m, ops, msg, sizeof(msg)) < 0) {
			json_decref(ops);
			sql_fail(err, len, "replaying version %" PRIu64 " of the "
			      "change log: %s", at, msg);
			goto out;
		}
		model_commit(m);
		json_decref(ops);
		snprintf(logged, sizeof(logged), "%s", sql_text(q, 2));
	}
	if (rc != SQLITE_DONE) {
		sql_db_fail(st->db, "reading the change log", err, len);
		goto out;
	}
	if (at != version) {
		sql_fail(err, len, "version %" PRIu64 " is missing from the change "
		      "log", version);
		goto out;
	}
	if (model_digest(m, digest) < 0) {
		sql_fail(err, len, "out of memory");
		goto out;
	}
	if (version > 0 && strcmp(digest, logged) != 0) {
		sql_fail(err, len, "replaying the change log to version %" PRIu64
		      " gives digest %s but the log recorded %s", version,
		      digest, logged);
		goto out;
	}
	state = with_version(model_to_json(m), version, err, len);
out:
	sqlite3_finalize(q);
	model_free(m);
	return state;
}

int store_changed_since(struct store *st, uint64_t version,
			store_change_fn fn, void *arg, char *err, size_t len)
{
	char want[STORE_DIGEST_LEN];
	struct model *empty;
	int rc;

	/* it rewinds the model, which still holds the change under way */
	if (st->just_committed)
		return sql_fail(err, len, "the changes since a version cannot "
				"be read while a change is committed");
	if (version > st->version)
		return sql_fail(err, len, "there is no version %" PRIu64 " (the "
				"latest is %" PRIu64 ")", version, st->version);
	if (version > 0) {
		if (store_logged_digest(st, version, want) < 0)
			return sql_fail(err, len, "version %" PRIu64 " is missing "
					"from the change log", version);
	} else {
		empty = model_new();
		rc = empty ? model_digest(empty, want) : -1;
		model_free(empty);
		if (rc < 0)
			return sql_fail(err, len, "out of memory");
	}
	return store_images_rewind(st->db, st->model, version, want, fn, arg,
				   err, len);
}

int store_version_at_time(struct store *st, int64_t time_ms,
			  uint64_t *version, char *err, size_t len)
{
	sqlite3_stmt *q = sql_prepare(st->db, "SELECT coalesce(max(version), 0)"
				      " FROM change_log WHERE time_ms <= ?1",
				      err, len);
	int rc = -1;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, time_ms);
	if (sqlite3_step(q) == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(q, 0);
		rc = 0;
	} else {
		sql_db_fail(st->db, "reading the change log", err, len);
	}
	sqlite3_finalize(q);
	return rc;
}
