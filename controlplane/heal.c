/* Rebuilding a damaged store (heal.h). */
#include "heal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "plan.h"

#define REPORT_LEN 1024

static const char *const store_files[] = { "", "-wal", "-shm" };

/* Appends to the text in buf; a report cut short at len is still a
 * report. */
static void appendf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* Renames path and its -wal and -shm files to path.damaged-TIME[.N]...,
 * N making the name one not taken yet; the name of the main one goes to
 * aside. */
static void set_aside(const char *path, char *aside, size_t len)
{
	char from[PATH_MAX], to[PATH_MAX], stamp[32];
	struct timespec now;
	struct tm tm;
	unsigned int n;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	for (n = 0; n < 1000; n++) {
		aside[0] = '\0';
		appendf(aside, len, "%s.damaged-%s.%03ldZ", path, stamp,
			now.tv_nsec / 1000000);
		if (n)
			appendf(aside, len, ".%u", n);
		if (access(aside, F_OK) < 0 && errno == ENOENT)
			break;
	}
	for (i = 0; i < sizeof(store_files) / sizeof(store_files[0]); i++) {
		if (snprintf(from, sizeof(from), "%s%s", path, store_files[i]) >=
		    (int)sizeof(from) ||
		    snprintf(to, sizeof(to), "%s%s", aside, store_files[i]) >=
		    (int)sizeof(to))
			continue;
		if (rename(from, to) < 0 && errno != ENOENT)
			fprintf(stderr, "fulcrumd: store: cannot set %s aside: "
				"%s\n", from, strerror(errno));
	}
}

/* A new store at the configured path, from the backup when that is whole,
 * else empty with the backup set aside too. What was done goes to
 * report. */
static struct store *rebuild(const struct daemon_config *cfg, char *report,
			     size_t len)
{
	report[0] = '\0';
	const char *backup = cfg->backup[0] ? cfg->backup : NULL;
	char err[512], aside[PATH_MAX];
	struct store *st;

	if (backup && access(backup, F_OK) == 0) {
		st = store_open(cfg->store, backup, err, sizeof(err));
		if (st) {
			appendf(report, len, "rebuilt from the backup %s at "
				"version %" PRIu64, backup, store_version(st));
			return st;
		}
		set_aside(cfg->store, aside, sizeof(aside));
		set_aside(backup, aside, sizeof(aside));
		appendf(report, len, "the backup is damaged too (%s), set aside "
			"as %s; started an empty store", err, aside);
	} else {
		appendf(report, len, "no backup to rebuild from; started an "
			"empty store");
	}
	st = store_open(cfg->store, backup, err, sizeof(err));
	if (!st)
		appendf(report, len, "; cannot make a new store: %s", err);
	return st;
}

static void audit(struct fulcrumd *d, const char *what, const char *report,
		  bool ok)
{
	struct peer self = { .uid = getuid(), .gid = getgid(),
			     .user = "fulcrumd" };
	char line[2 * REPORT_LEN] = "";
	json_t *req, *resp;

	appendf(line, sizeof(line), "%s: %s", what, report);
	req = json_pack("{s:s, s:s}", "cmd", "heal", "reason", line);
	resp = ok ? json_pack("{s:b, s:I}", "ok", 1, "version",
			      (json_int_t)store_version(d->store)) :
		    json_pack("{s:b, s:s}", "ok", 0, "error", report);
	printf("fulcrumd: store: %s\n", line);
	fflush(stdout);
	access_audit(&d->cfg, &self, ROLE_ADMIN, req, resp);
	json_decref(req);
	json_decref(resp);
}

static json_t *services_of(struct store *st)
{
	char err[256];
	json_t *state = store_state(st, err, sizeof(err)), *services;

	services = json_incref(json_object_get(state, "services"));
	json_decref(state);
	return services;
}

/* Commits what takes the store from its state to `want`, as fulcrumd's own
 * change, and pushes it (a relabel: `want` is what the dataplane runs).
 * Past freeze and the blast-radius guard, which guard against changes to
 * what is live; this is what is live. */
static int commit_recovery(struct fulcrumd *d, const json_t *want,
			   const char *reason, char *err, size_t len)
{
	struct change_meta meta = {
		.user = "fulcrumd", .uid = (uint32_t)getuid(),
		.environment = d->cfg.environment, .reason = reason,
		.automatic = true,
	};
	json_t *have = services_of(d->store), *ops;
	char push_err[512];
	uint64_t version;
	int rc = 0;

	ops = have ? plan_ops(have, want) : NULL;
	json_decref(have);
	if (!ops) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	if (json_array_size(ops) > 0 &&
	    store_commit(d->store, &meta, ops, &version, err, len) < 0)
		rc = -1;
	else if (sync_push(&d->sync, d->store, true, NULL, push_err,
			   sizeof(push_err)) < 0)
		fprintf(stderr, "fulcrumd: store: not live yet: %s\n", push_err);
	json_decref(ops);
	return rc;
}

int heal_open(struct fulcrumd *d, bool *healed, char *err, size_t len)
{
	const struct daemon_config *cfg = &d->cfg;
	char why[REPORT_LEN], aside[PATH_MAX], report[REPORT_LEN] = "";
	char found[REPORT_LEN] = "";
	bool lost = cfg->backup[0] && access(cfg->store, F_OK) < 0 &&
		    errno == ENOENT && access(cfg->backup, F_OK) == 0;

	*healed = false;
	d->store = store_open(cfg->store, cfg->backup[0] ? cfg->backup : NULL,
			      why, sizeof(why));
	if (d->store && lost) {
		/* store_open made it anew from the backup */
		appendf(report, sizeof(report), "rebuilt from the backup %s at "
			"version %" PRIu64, cfg->backup, store_version(d->store));
		appendf(found, sizeof(found), "MISSING at start: %s", cfg->store);
		audit(d, found, report, true);
		*healed = true;
	}
	if (d->store)
		return 0;
	if (errno == ENOTSUP) {
		snprintf(err, len, "%s", why);
		return -1;
	}
	set_aside(cfg->store, aside, sizeof(aside));
	d->store = rebuild(cfg, report, sizeof(report));
	appendf(found, sizeof(found), "DAMAGED at start: %s; set aside as %s",
		why, aside);
	audit(d, found, report, d->store != NULL);
	if (!d->store) {
		snprintf(err, len, "%s", report);
		return -1;
	}
	*healed = true;
	return 0;
}

int heal_check(struct fulcrumd *d, char *err, size_t len)
{
	char why[REPORT_LEN], aside[PATH_MAX], report[REPORT_LEN] = "";
	char found[REPORT_LEN] = "", reason[REPORT_LEN] = "";
	uint64_t committed = store_version(d->store), from;
	struct store *old = d->store, *st;
	json_t *memory;

	if (store_check(old, why, sizeof(why)) == 0)
		return 0;
	memory = services_of(old);
	/* closing the old store must not remove the new one's -wal file */
	store_persist_wal(old);
	set_aside(d->cfg.store, aside, sizeof(aside));
	appendf(found, sizeof(found), "DAMAGED: %s; set aside as %s", why,
		aside);
	st = memory ? rebuild(&d->cfg, report, sizeof(report)) : NULL;
	if (!st) {
		audit(d, found, memory ? report : "out of memory", false);
		json_decref(memory);
		err[0] = '\0';
		appendf(err, len, "the store is damaged and cannot be rebuilt "
			"yet: %s", why);
		return -1;
	}
	store_close(old);
	d->store = st;
	from = store_version(st);
	if (from < committed) {
		appendf(reason, sizeof(reason), "recovery: %s; versions %" PRIu64
			" to %" PRIu64 " were only in the damaged store (%s): the "
			"state they made is restored from fulcrumd's memory",
			report, from + 1, committed, aside);
		if (commit_recovery(d, memory, reason, err, len) < 0) {
			audit(d, found, err, false);
			json_decref(memory);
			return -1;
		}
		appendf(report, sizeof(report), "; versions %" PRIu64 " to %"
			PRIu64 " restored from memory as version %" PRIu64,
			from + 1, committed, store_version(st));
	} else {
		appendf(report, sizeof(report), "; nothing lost");
	}
	json_decref(memory);
	audit(d, found, report, true);
	return 0;
}

bool heal_adopt_live(struct fulcrumd *d)
{
	char err[512], reason[600], report[REPORT_LEN] = "";
	uint64_t live_version;
	json_t *live;

	if (d->sync.status == SYNC_UNKNOWN || d->sync.status == SYNC_UNREACHABLE)
		return false;            /* not known yet: wait for it */
	if (d->sync.status != SYNC_HOLD)
		return true;             /* the rebuilt store is not behind */
	live = sync_live_state(&d->sync, &live_version, err, sizeof(err));
	if (!live)
		return false;
	snprintf(reason, sizeof(reason), "recovery: the store was rebuilt at "
		 "start and is behind the dataplane, which runs version %" PRIu64
		 ": taking in the live state", live_version);
	if (commit_recovery(d, live, reason, err, sizeof(err)) < 0) {
		audit(d, "behind the dataplane after a rebuild", err, false);
		json_decref(live);
		return false;
	}
	json_decref(live);
	appendf(report, sizeof(report), "the live state of version %" PRIu64
		" adopted as version %" PRIu64, live_version,
		store_version(d->store));
	audit(d, "behind the dataplane after a rebuild", report, true);
	return true;
}
