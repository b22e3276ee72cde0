/* The control plane's persistent copy of the service state, in SQLite:
 * the current services and backends, and an append-only log of every
 * change with who made it and why. A second file is kept as a copy of
 * the whole database, so that losing one file loses nothing: made whole
 * when it is new, stale or in doubt, and otherwise given each change as
 * well, the same rows in a transaction of its own that is durable before
 * the change is acknowledged (store.c, backup_change).
 *
 * The state, as store_state returns it and the management socket shows it:
 *
 *   {"version": 7, "services": [{"name": "web", "vip": "10.0.0.100",
 *     "proto": "tcp", "port": 80, "mode": "l2dsr", "table_size": 65537,
 *     "gue_port": 6080, "backends": [{"addr": "10.0.1.10", "weight": 1,
 *     "state": "active"}]}]}
 *
 * Services come sorted by name and backends by address bytes, the order
 * the Maglev build takes them in. A change is a JSON array of ops; see
 * change.h.
 *
 * One process writes a store at a time; it may be read meanwhile, with the
 * sqlite3 shell for instance. */
#ifndef FULCRUM_STORE_H
#define FULCRUM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ip_addr.h"

struct service;

#define STORE_SCHEMA_VERSION 3
#define STORE_DIGEST_LEN 65          /* SHA-256 in hex, with the NUL */

/* store_commit's outcomes besides -1 (refused, nothing changed). */
#define STORE_OK 0
#define STORE_BACKUP_FAILED 1        /* committed, but the copy is stale */

struct store;

/* Who made a change and why; recorded with it in the log. */
struct change_meta {
	const char *user;            /* required */
	uint32_t uid;
	const char *environment;     /* NULL = "" */
	const char *reason;          /* NULL = "" */
	bool automatic;              /* made by the control plane itself,
				      * such as a health check */
	const char *ops_text;        /* the JSON text the ops were read from,
				      * logged as it is; NULL: made from
				      * them (for a plan's 95,000 ops, a
				      * quarter of a second) */
};

/* Opens the store at path, creating it if new. backup_path (or NULL for
 * none) is the copy: if path is missing it is restored from there, and if
 * the copy is older than path it is refreshed. A copy newer than path is
 * refused, as path may be an old file put back by mistake. Checks that the
 * stored state is the one the log's last digest vouches for. Returns NULL
 * with err saying why on failure; errno is then ENOTSUP if path is a store
 * of a schema this build does not read (a newer build's), which is not
 * damage. */
struct store *store_open(const char *path, const char *backup_path,
			 char *err, size_t len);
void store_close(struct store *st);

/* Applies ops in one transaction, all or nothing, and logs them with meta.
 * Returns STORE_OK or STORE_BACKUP_FAILED with *new_version set (and err
 * saying what went wrong with the copy in the latter case), or -1 with err
 * naming the op and field at fault and nothing changed. */
int store_commit(struct store *st, const struct change_meta *meta,
		 const json_t *ops, uint64_t *new_version, char *err,
		 size_t len);

/* What store_commit_then calls as a change goes in, for work that can go
 * on meanwhile: fulcrumd sends the dataplane the change once it is
 * applied, for the dataplane to build its tables while the store writes
 * it, and has it made live once it is durable. Each may read the store
 * and call store_just_changed, but not change it; either may be NULL. */
struct store_hooks {
	/* The change applied in memory, valid, none of it written yet: the
	 * store still at the version before. The commit may yet fail, and
	 * durable is then not called. */
	void (*applied)(struct store *st, void *arg);
	/* The change durable in the store, which is at its new version,
	 * before the change is made to the backup copy. */
	void (*durable)(struct store *st, void *arg);
	void *arg;
};

/* store_commit, calling hooks (NULL for none) as above. The outcomes are
 * store_commit's. */
int store_commit_then(struct store *st, const struct change_meta *meta,
		      const json_t *ops, const struct store_hooks *hooks,
		      uint64_t *new_version, char *err, size_t len);
/* The same with the ops as JSON text, as they come off the socket. */
int store_commit_text(struct store *st, const struct change_meta *meta,
		      const char *ops, uint64_t *new_version, char *err,
		      size_t len);

/* Whether the files still hold what this process committed: 0, or -1
 * with why when the store file was deleted, replaced, truncated or
 * corrupted, its -wal file removed, or rows changed by another process.
 * Cheap while nothing happened to the files (two stats and a pragma); a
 * full read and digest of the tables when something did. */
int store_check(struct store *st, char *why, size_t len);

/* Keeps store_close from removing the -wal file by its name: for a store
 * whose files were moved aside, where that name is now another store's. */
int store_persist_wal(struct store *st);

/* NULL when the copy matches the store, else why it does not. */
const char *store_backup_error(const struct store *st);

/* The current state, or NULL with err. */
json_t *store_state(struct store *st, char *err, size_t len);
uint64_t store_version(const struct store *st);
size_t store_n_services(const struct store *st);
/* The current state's digest, as model_digest defines it (model.h): of
 * its services, not its version. Returns 0. */
int store_digest(const struct store *st, char out[STORE_DIGEST_LEN]);

/* The log from from_version on, oldest first, at most limit entries (0 =
 * all): [{"version", "time_ms", "user", "uid", "environment", "reason",
 * "automatic", "ops", "digest"}]. NULL with err on failure. */
json_t *store_history(struct store *st, uint64_t from_version,
		      unsigned int limit, char *err, size_t len);

/* The state at path, as store_state gives it, its version and its
 * digest, for a process other than the store's: read without writing to
 * the store, while the process that writes it runs or after it died.
 * Checked as store_open checks it: the stored services must hash to the
 * log's last digest. NULL with err saying why. */
json_t *store_read_state(const char *path, uint64_t *version,
			 char digest[STORE_DIGEST_LEN], char *err, size_t len);

/* One stored service, as store_read_services hands it over: the fields
 * of store_state's JSON, with the mode and backend states spelled as
 * there, but no JSON to build and take apart again. Valid only during the
 * call it is handed to. */
struct store_backend {
	union ip_addr addr;
	uint16_t weight;
	const char *state;
};

struct store_service {
	const char *name;
	union ip_addr vip;
	uint8_t family;              /* AF_INET or AF_INET6, VIP and backends */
	uint8_t proto;               /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;
	const char *mode;
	uint32_t table_size;
	uint16_t gue_port;
	uint32_t n_backends;
	const struct store_backend *backends;  /* by address bytes */
};

/* s as a reader gets it, valid while s is; b has room for its backends. */
void store_service_of(const struct service *s, struct store_service *out,
		      struct store_backend *b);

/* Takes service i of the state; -1 stops the read. */
typedef int (*store_service_fn)(const struct store_service *s, size_t i,
				void *arg);

/* The digest store_digest would give for a store holding just the n
 * services of v: how the dataplane labels what its tables run, hashed
 * where they are rather than sent to fulcrumd as JSON. 0, or -1 with err
 * where two clash (a name, a VIP, a backend twice) or a mode or state
 * does not parse. */
int store_services_digest(const struct store_service *v, size_t n,
			  char out[STORE_DIGEST_LEN], char *err, size_t len);

/* store_read_state for a reader that wants the services rather than
 * JSON, such as the dataplane starting on a store of many: the same read
 * and the same checks, then fn for each service, sorted by name, with
 * *n_services (how many there are) set before the first. Returns 0, or
 * -1 with err saying why (untouched when fn stopped the read). */
int store_read_services(const char *path, uint64_t *version,
			char digest[STORE_DIGEST_LEN], size_t *n_services,
			store_service_fn fn, void *arg, char *err, size_t len);

/* Into out, the digest the log recorded for version v. 0, or -1 when v is
 * not in the log (or it cannot be read). */
int store_logged_digest(struct store *st, uint64_t v,
			char out[STORE_DIGEST_LEN]);

/* Into *version, the version that was current at time_ms (ms since
 * 1970, UTC): the last one logged at or before it, 0 before the first.
 * 0, or -1 with err. */
int store_version_at_time(struct store *st, int64_t time_ms,
			  uint64_t *version, char *err, size_t len);

/* The state as it was at version (0 = empty), rebuilt by replaying the log
 * and checked against the digest logged for that version. NULL with err on
 * failure. */
json_t *store_state_at(struct store *st, uint64_t version, char *err,
		       size_t len);

/* One service changed after the version a restore goes to, as it is now
 * and as it was then, NULL where it does not exist or did not (model.h).
 * Valid only during the call; -1 stops the walk. */
typedef int (*store_change_fn)(const struct service *now,
			       const struct service *then, void *arg);

/* What changed after version, for a restore to it: fn for each service
 * changed since, by name (one made and deleted since is left out); every
 * other service is as it was then. Taken
 * from the before-images kept with each change, so it costs what changed
 * since, however long the log or large the state, and checked against
 * the digest logged for version before fn is called. 0, or -1 with err
 * (untouched when fn stopped the walk). */
int store_changed_since(struct store *st, uint64_t version,
			store_change_fn fn, void *arg, char *err, size_t len);

/* Only within a store hook: what the change being committed did, as
 * store_changed_since(st, version - 1) would tell it, from the change in
 * memory rather than from the images (which store_changed_since, which
 * may not be called there, reads and checks). 0, or -1 with err. */
int store_just_changed(struct store *st, store_change_fn fn, void *arg,
		       char *err, size_t len);

/* fn(s, NULL) for every service now in the store, by name: the whole
 * state, for a reader that wants the services rather than JSON. 0, or -1
 * with err (untouched when fn stopped the walk). */
int store_each_service(struct store *st, store_change_fn fn, void *arg,
		       char *err, size_t len);

#endif
