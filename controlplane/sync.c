#include "sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "change.h"
#include "control.h"
#include "jsonline.h"
#include "model.h"
#include "plan.h"
#include "service_batch.h"

const char *sync_status_name(enum sync_status st)
{
	static const char *const names[] = {
		[SYNC_UNKNOWN] = "unknown", [SYNC_UNREACHABLE] = "unreachable",
		[SYNC_IN_SYNC] = "in sync", [SYNC_BEHIND] = "behind",
		[SYNC_HOLD] = "held",
	};

	return names[st];
}

int sync_digest(const json_t *services, char out[STORE_DIGEST_LEN], char *err,
		size_t err_len)
{
	json_t *empty = json_array(), *ops = plan_ops(empty, services);
	struct model *m = model_new();
	int rc = -1;

	if (m) {
		model_begin(m);
		/* no services: the empty state, which no change describes */
		if (json_array_size(ops) == 0 ||
		    change_apply(m, ops, err, err_len) == 0) {
			model_commit(m);
			rc = model_digest(m, out);
		} else {
			model_rollback(m);
		}
		model_free(m);
	}
	json_decref(ops);
	json_decref(empty);
	return rc;
}

static json_t *call(struct sync *s, json_t *req, char *err, size_t err_len)
{
	json_t *resp = jsonline_call(s->socket, req, SYNC_MAX_RESPONSE, err,
				     err_len);

	json_decref(req);
	if (resp && !json_is_true(json_object_get(resp, "ok"))) {
		const char *why = json_string_value(json_object_get(resp, "error"));

		snprintf(err, err_len, "dataplane: %s",
			 why ? why : "refused, without saying why");
		json_decref(resp);
		return NULL;
	}
	return resp;
}

json_t *sync_live_state(struct sync *s, uint64_t *version, char *err,
			size_t err_len)
{
	json_t *resp = call(s, json_pack("{s:s}", "cmd", "state"), err, err_len);
	json_t *services;

	if (!resp)
		return NULL;
	/* NULL must come with err, which callers print */
	if (!json_is_integer(json_object_get(resp, "version")) ||
	    json_integer_value(json_object_get(resp, "version")) < 0 ||
	    !json_is_array(json_object_get(resp, "services"))) {
		snprintf(err, err_len, "dataplane: its state has no version or "
			 "no services array");
		json_decref(resp);
		return NULL;
	}
	*version = (uint64_t)json_integer_value(json_object_get(resp, "version"));
	services = json_incref(json_object_get(resp, "services"));
	json_decref(resp);
	return services;
}

/* push's outcomes besides 0 and -1 (no answer): the dataplane runs
 * something other than a conditional push expected, or refused the push */
#define PUSH_STALE 1
#define PUSH_REFUSED 2

/* The services a push sends, in binary (service_batch.h), and the names
 * of those it removes. */
struct delta {
	struct service_batch services;
	json_t *removed;
	bool out_of_memory;
};

static int delta_one(const struct service *now, const struct service *then,
		     void *arg)
{
	struct delta *d = arg;
	int rc = now ? service_batch_add(&d->services, now) :
		       json_array_append_new(d->removed,
					     json_string(then->name));

	d->out_of_memory = rc < 0;
	return rc;
}

enum push_kind {
	PUSH_WHOLE,
	PUSH_DELTA,              /* what changed since s->dp_version */
	PUSH_BEING_COMMITTED,    /* the same, from store_commit_then's hook,
				  * when that is the change being committed,
				  * for the dataplane to hold until it is
				  * published */
};

/* What the dataplane is sent: the whole state, or on condition that it
 * runs s->dp_version, only what changed since (a delta, control.h), so
 * that a change to one service of ten thousand sends one. The services
 * go in d->services, the payload after the request's line. NULL with
 * err. */
static json_t *push_request(struct sync *s, struct store *st,
			    enum push_kind kind, struct delta *d, char *err,
			    size_t err_len)
{
	json_t *req = NULL;
	int rc;

	*d = (struct delta){ .removed = json_array() };
	if (!d->removed) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	switch (kind) {
	case PUSH_WHOLE:
		rc = store_each_service(st, delta_one, d, err, err_len);
		break;
	case PUSH_BEING_COMMITTED:
		rc = store_just_changed(st, delta_one, d, err, err_len);
		break;
	default:
		rc = store_changed_since(st, s->dp_version, delta_one, d, err,
					 err_len);
	}
	if (rc == 0 && kind == PUSH_WHOLE)
		req = json_pack("{s:s, s:s}", "cmd", "apply", "services",
				"payload");
	else if (rc == 0)
		req = json_pack("{s:s, s:s, s:O, s:{s:I, s:s}}", "cmd", "apply",
				"changed", "payload", "removed", d->removed,
				"expect", "version", (json_int_t)s->dp_version,
				"digest", s->dp_digest);
	else if (d->out_of_memory)
		snprintf(err, err_len, "out of memory");
	if (req && d->services.len > CONTROL_MAX_REQUEST) {
		snprintf(err, err_len, "the services to push take %zu bytes, "
			 "more than the dataplane takes in one apply (%u)",
			 d->services.len, CONTROL_MAX_REQUEST);
		json_decref(req);
		return NULL;
	}
	if (req && json_object_set_new(req, "payload", json_integer(
			(json_int_t)d->services.len)) < 0) {
		json_decref(req);
		req = NULL;
	}
	if (!req && !err[0])
		snprintf(err, err_len, "out of memory");
	return req;
}

/* Sends the store's state, labelled with its digest; a delta goes ahead
 * only if the dataplane still runs s->dp_version under s->dp_digest,
 * checked by the dataplane in the same step as the apply (control.h).
 * The change being committed is held, to be labelled when published.
 * Leaves p waiting for the answer, or returns -1 with err. */
static int push_send(struct sync *s, struct store *st, bool approved,
		     enum push_kind kind, struct sync_pending *p, char *err,
		     size_t err_len)
{
	struct delta d;
	json_t *req;

	err[0] = '\0';
	p->fd = -1;
	p->held = kind == PUSH_BEING_COMMITTED;
	req = push_request(s, st, kind, &d, err, err_len);
	if (req) {
		store_digest(st, p->digest);
		p->version = store_version(st) + p->held;
		if (json_object_set_new(req, "version",
					json_integer((json_int_t)p->version)) < 0 ||
		    json_object_set_new(req, "approved", json_boolean(approved)) < 0 ||
		    (p->held ?
		     json_object_set_new(req, "hold", json_true()) :
		     json_object_set_new(req, "digest",
					 json_string(p->digest))) < 0)
			snprintf(err, err_len, "out of memory");
		else
			p->fd = jsonline_send_to(s->socket, req, d.services.buf,
						 d.services.len,
						 p->held ? SYNC_HOLD_SEND_MS : 0,
						 err, err_len);
	}
	json_decref(req);
	json_decref(d.removed);
	service_batch_free(&d.services);
	return p->fd < 0 ? -1 : 0;
}

/* The answer to p's push, and for one held, then to its publish.
 * Returns 0, PUSH_STALE, PUSH_REFUSED, or -1 with err. */
static int push_receive(struct sync *s, struct sync_pending *p, char *err,
			size_t err_len)
{
	json_t *resp = jsonline_recv(p->fd, SYNC_MAX_RESPONSE, err, err_len);
	const char *why;

	if (resp && p->held && json_is_true(json_object_get(resp, "ok"))) {
		bool held = json_is_true(json_object_get(resp, "held"));

		json_decref(resp);
		/* one that ignored the hold runs the change unlabelled: what
		 * it runs is read, as after any refusal */
		resp = held ? jsonline_recv(p->fd, SYNC_MAX_RESPONSE, err,
					    err_len) :
		       json_pack("{s:b, s:s}", "ok", 0, "error",
				 "it did not hold the change it was sent");
	}
	close(p->fd);
	p->fd = -1;
	if (!resp)
		return -1;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		int rc = json_is_true(json_object_get(resp, "stale")) ?
			 PUSH_STALE : PUSH_REFUSED;

		why = json_string_value(json_object_get(resp, "error"));
		snprintf(err, err_len, "dataplane: %s",
			 why ? why : "refused, without saying why");
		json_decref(resp);
		return rc;
	}
	json_decref(resp);
	s->status = SYNC_IN_SYNC;
	s->dp_version = p->version;
	memcpy(s->dp_digest, p->digest, sizeof(p->digest));
	snprintf(s->note, sizeof(s->note), "runs version %" PRIu64,
		 s->dp_version);
	return 0;
}

static int push(struct sync *s, struct store *st, bool approved,
		enum push_kind kind, char *err, size_t err_len)
{
	struct sync_pending p;

	if (push_send(s, st, approved, kind, &p, err, err_len) < 0)
		return -1;
	return push_receive(s, &p, err, err_len);
}

/* Whether the state the dataplane runs as version v is the one the store's
 * log recorded for v: only then is a dataplane with an older version
 * merely behind. A store that lost changes and made others since can have
 * passed the dataplane's version with another history. Version 0 is the
 * dataplane's own config, never pushed, which any store supersedes. */
static bool in_log(struct store *st, uint64_t v, const char *digest)
{
	char logged[STORE_DIGEST_LEN];

	if (v == 0)
		return true;
	return store_logged_digest(st, v, logged) == 0 &&
	       strcmp(logged, digest) == 0;
}

/* A dataplane that answered but could not hash its tables */
#define DIGEST_INVALID 1

/* The version the dataplane runs and the digest of its tables, hashed
 * there from the tables themselves (control.h): 0, DIGEST_INVALID, or -1
 * when there is no usable answer; err says why. */
static int live_digest(struct sync *s, uint64_t *version,
		       char digest[STORE_DIGEST_LEN], char *err,
		       size_t err_len)
{
	json_t *req = json_pack("{s:s}", "cmd", "digest");
	json_t *resp = req ? jsonline_call(s->socket, req, SYNC_MAX_RESPONSE,
					   err, err_len) : NULL;
	json_t *v = json_object_get(resp, "version");
	const char *d = json_string_value(json_object_get(resp, "digest"));
	int rc = 0;

	json_decref(req);
	if (!resp) {
		if (!req)
			snprintf(err, err_len, "out of memory");
		return -1;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		snprintf(err, err_len, "%s", json_string_value(json_object_get(
			resp, "error")) ?: "refused, without saying why");
		rc = DIGEST_INVALID;
	} else if (!json_is_integer(v) || json_integer_value(v) < 0 || !d ||
		   strlen(d) != STORE_DIGEST_LEN - 1) {
		snprintf(err, err_len, "dataplane: its digest answer has no "
			 "version or no digest");
		rc = -1;
	} else {
		*version = (uint64_t)json_integer_value(v);
		memcpy(digest, d, STORE_DIGEST_LEN);
	}
	json_decref(resp);
	return rc;
}

/* Reads the dataplane and sets the status from what it runs; pushes
 * nothing. */
static void check(struct sync *s, struct store *st)
{
	char err[512], digest[STORE_DIGEST_LEN];
	uint64_t v = 0;
	int rc = live_digest(s, &v, s->dp_digest, err, sizeof(err));

	if (rc < 0) {
		s->status = SYNC_UNREACHABLE;
		snprintf(s->note, sizeof(s->note), "%s", err);
		return;
	}
	if (rc == DIGEST_INVALID) {
		s->status = SYNC_HOLD;
		snprintf(s->note, sizeof(s->note), "its state is not valid: %s",
			 err);
		return;
	}
	s->dp_version = v;
	store_digest(st, digest);
	if (strcmp(digest, s->dp_digest) == 0 && v == store_version(st)) {
		s->status = SYNC_IN_SYNC;
		snprintf(s->note, sizeof(s->note), "runs version %" PRIu64, v);
	} else if ((v < store_version(st) && in_log(st, v, s->dp_digest)) ||
		   strcmp(digest, s->dp_digest) == 0) {
		/* older, or the same services under another label */
		s->status = SYNC_BEHIND;
		snprintf(s->note, sizeof(s->note), "runs version %" PRIu64
			 ", behind the store's %" PRIu64, v, store_version(st));
	} else {
		s->status = SYNC_HOLD;
		snprintf(s->note, sizeof(s->note),
			 "runs version %" PRIu64 " with digest %.12s, but the store "
			 "has version %" PRIu64 " with digest %.12s: the store has "
			 "lost or diverged from the live state. Not pushing; "
			 "`fulcrumctl adopt` takes the live state into the store",
			 v, s->dp_digest, store_version(st), digest);
	}
}

void sync_reconcile(struct sync *s, struct store *st)
{
	char err[512];

	check(s, st);
	if (s->status == SYNC_BEHIND &&
	    push(s, st, false, PUSH_WHOLE, err, sizeof(err)) != 0)
		snprintf(s->note, sizeof(s->note), "runs version %" PRIu64
			 ", behind the store's %" PRIu64 "; push failed: %s",
			 s->dp_version, store_version(st), err);
}

/* In sync at the last check or push, with a version the store's log
 * records under that digest: check() would find it behind a newer store
 * if it still runs that, so the push goes on condition that it does,
 * which the dataplane checks as it applies (control.h). That is check()
 * without reading the whole state back, and with no gap between check
 * and push for another writer to slip into. */
static bool runs_logged(struct sync *s, struct store *st)
{
	return s->status == SYNC_IN_SYNC &&
	       in_log(st, s->dp_version, s->dp_digest);
}

/* A delta takes the dataplane to the store's version. */
static bool delta_will_do(struct sync *s, struct store *st)
{
	return s->dp_version < store_version(st) && runs_logged(s, st);
}

void sync_prepare(struct sync *s, struct store *st, bool approved,
		  struct sync_pending *p)
{
	char err[512];

	p->fd = -1;
	/* the store is still at the version before the change */
	if (s->dp_version == store_version(st) && runs_logged(s, st))
		push_send(s, st, approved, PUSH_BEING_COMMITTED, p, err,
			  sizeof(err));
}

void sync_publish(struct store *st, struct sync_pending *p)
{
	json_t *req;

	if (p->fd < 0)
		return;
	store_digest(st, p->digest);
	req = json_pack("{s:s, s:s}", "cmd", "publish", "digest", p->digest);
	/* unsent, the dataplane drops what it holds when the connection
	 * goes, and sync_push pushes as it would have */
	if (!req || jsonline_send(p->fd, req) < 0)
		sync_discard(p);
	json_decref(req);
}

void sync_discard(struct sync_pending *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

int sync_push(struct sync *s, struct store *st, bool approved,
	      struct sync_pending *early, char *err, size_t err_len)
{
	/* without a delta to send, as with one the dataplane found stale,
	 * what it runs is read */
	int rc = PUSH_STALE;

	/* an early push that failed to go is tried again below, and fails
	 * there with the reason */
	if (early && early->fd >= 0)
		rc = push_receive(s, early, err, err_len);
	else if (delta_will_do(s, st))
		rc = push(s, st, approved, PUSH_DELTA, err, err_len);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		s->status = SYNC_UNREACHABLE;
		snprintf(s->note, sizeof(s->note), "%s", err);
		return -1;
	}
	/* it runs something else now, or refused the delta (one that takes
	 * no deltas, or a state unsafe to apply, which the whole state will
	 * be refused for as well), or no delta would do: find out what it
	 * runs, not what it ran at the last reconcile (it may have come back
	 * since with a state the store must not overwrite) */
	check(s, st);
	if (s->status == SYNC_UNREACHABLE) {
		snprintf(err, err_len, "%s", s->note);
		return -1;
	}
	if (s->status == SYNC_HOLD) {
		snprintf(err, err_len, "dataplane held: %s", s->note);
		return -1;
	}
	if (s->status == SYNC_IN_SYNC)
		return 0;
	if (push(s, st, approved, PUSH_WHOLE, err, err_len) != 0) {
		/* it forwards on what it had; the next reconcile tries again */
		s->status = SYNC_UNREACHABLE;
		snprintf(s->note, sizeof(s->note), "%s", err);
		return -1;
	}
	return 0;
}
