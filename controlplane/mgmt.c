#include "mgmt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "change.h"
#include "heal.h"
#include "jsonline.h"
#include "model.h"
#include "plan.h"
#include "service_diff.h"
#include "plans.h"

json_t *mgmt_refuse(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", text);
}

static json_t *status(struct fulcrumd *d)
{
	char digest[STORE_DIGEST_LEN];

	sync_reconcile(&d->sync, d->store);
	store_digest(d->store, digest);
	return json_pack(
		"{s:b, s:i, s:s, s:s, s:o, s:{s:I, s:s, s:s?}, s:{s:s, s:I, s:s, s:s},"
		" s:o?}",
		"ok", 1, "protocol", MGMT_PROTOCOL,
		"environment", d->cfg.environment, "cluster_id", d->cfg.cluster_id,
		"freeze", freeze_json(&d->freeze),
		"store", "version", (json_int_t)store_version(d->store),
		"digest", digest, "backup_error", store_backup_error(d->store),
		"dataplane", "sync", sync_status_name(d->sync.status),
		"version", (json_int_t)d->sync.dp_version,
		"digest", d->sync.dp_digest, "note", d->sync.note,
		"health", d->health ? health_summary(d->health) : NULL);
}

static json_t *health(struct fulcrumd *d, const json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *h;

	if (!d->health)
		return mgmt_refuse("health checks do not run in this fulcrumd");
	h = health_json(d->health, name);
	if (!h)
		return mgmt_refuse("no service named '%s'", name);
	json_object_set_new(h, "ok", json_true());
	return h;
}

static json_t *current_services(struct fulcrumd *d, char *err, size_t len)
{
	json_t *state = store_state(d->store, err, len), *services;

	if (!state)
		return NULL;
	services = json_incref(json_object_get(state, "services"));
	json_decref(state);
	return services;
}

static json_t *state(struct fulcrumd *d, const json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *services, *one = NULL, *s;
	char err[512];
	size_t i;

	services = current_services(d, err, sizeof(err));
	if (!services)
		return mgmt_refuse("%s", err);
	if (!name)
		return json_pack("{s:b, s:I, s:o}", "ok", 1, "version",
				 (json_int_t)store_version(d->store), "services",
				 services);
	json_array_foreach(services, i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			one = json_incref(s);
	json_decref(services);
	if (!one)
		return mgmt_refuse("no service named '%s'", name);
	return json_pack("{s:b, s:o}", "ok", 1, "service", one);
}

static json_t *history(struct fulcrumd *d, const json_t *req)
{
	json_int_t from = json_integer_value(json_object_get(req, "from"));
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	char err[512];
	json_t *h;

	if (from < 0 || limit < 0)
		return mgmt_refuse("history: from and limit must not be negative");
	h = store_history(d->store, (uint64_t)from, (unsigned int)limit, err,
			  sizeof(err));
	return h ? json_pack("{s:b, s:o}", "ok", 1, "entries", h) :
		   mgmt_refuse("%s", err);
}

static json_t *services_at(struct fulcrumd *d, json_int_t v, char *err,
			   size_t len)
{
	json_t *st, *services;

	if (v < 0) {
		snprintf(err, len, "version %lld is negative", (long long)v);
		return NULL;
	}
	st = store_state_at(d->store, (uint64_t)v, err, len);
	if (!st)
		return NULL;
	services = json_incref(json_object_get(st, "services"));
	json_decref(st);
	return services;
}

/* The ops from a version to the current one, as plan_ops orders them
 * (deletions first): from the services changed since, in memory, rather
 * than two replays of the log. */
struct since {
	json_t *dels, *ops;
};

static int since_one(const struct service *now, const struct service *then,
		     void *arg)
{
	struct since *w = arg;

	return service_diff(then, now, now ? w->ops : w->dels);
}

static json_t *ops_since(struct fulcrumd *d, json_int_t from, char *err,
			 size_t len)
{
	struct since w = { json_array(), json_array() };

	if (from < 0) {
		snprintf(err, len, "version %lld is negative", (long long)from);
	} else if (store_changed_since(d->store, (uint64_t)from, since_one, &w,
				       err, len) == 0) {
		json_array_extend(w.dels, w.ops);
		json_decref(w.ops);
		return w.dels;
	} else if (!err[0]) {
		snprintf(err, len, "out of memory");
	}
	json_decref(w.dels);
	json_decref(w.ops);
	return NULL;
}

static json_t *diff(struct fulcrumd *d, const json_t *req)
{
	json_t *jto = json_object_get(req, "to");
	json_int_t from = json_integer_value(json_object_get(req, "from"));
	json_int_t to = jto ? json_integer_value(jto) :
			      (json_int_t)store_version(d->store);
	json_t *a, *b, *ops;
	char err[512];

	if (!json_is_integer(json_object_get(req, "from")))
		return mgmt_refuse("diff: 'from' must be a version");
	/* else it would read as version 0 and diff against the empty state */
	if (jto && !json_is_integer(jto))
		return mgmt_refuse("diff: 'to' must be a version");
	err[0] = '\0';
	if ((uint64_t)to == store_version(d->store)) {
		ops = ops_since(d, from, err, sizeof(err));
		if (!ops)
			return mgmt_refuse("diff: %s", err);
	} else {
		a = services_at(d, from, err, sizeof(err));
		b = a ? services_at(d, to, err, sizeof(err)) : NULL;
		if (!b) {
			json_decref(a);
			return mgmt_refuse("diff: %s", err);
		}
		ops = plan_ops(a, b);
		json_decref(a);
		json_decref(b);
	}
	return json_pack("{s:b, s:I, s:I, s:o}", "ok", 1, "from", from, "to", to,
			 "ops", ops);
}

static const char *env_mismatch(struct fulcrumd *d, const json_t *req)
{
	static char why[256];
	const char *env = json_string_value(json_object_get(req, "env"));

	if (!env)
		return "a change must name the environment it is meant for "
		       "(fulcrumctl --env or its context file)";
	if (strcmp(env, d->cfg.environment) == 0)
		return NULL;
	snprintf(why, sizeof(why), "this fulcrumd runs environment '%s' "
		 "(cluster %s); the request is meant for '%s'. Nothing changed",
		 d->cfg.environment, d->cfg.cluster_id, env);
	return why;
}

/* Whether ops can take service capacity away: only those need the
 * look-ahead below. */
static bool may_remove(const json_t *ops)
{
	json_t *op;
	size_t i;

	json_array_foreach(ops, i, op) {
		const char *kind = json_string_value(json_object_get(op, "op"));
		const char *state = json_string_value(json_object_get(op, "state"));

		if (!kind || strcmp(kind, "service_del") == 0 ||
		    strcmp(kind, "backend_del") == 0 ||
		    (strcmp(kind, "backend_set") == 0 && state &&
		     strcmp(state, "active") != 0))
			return true;
	}
	return false;
}

/* The risk of ops against the current state (plan_risk), or NULL when
 * they are not a valid change (the commit then says why). Additions to a
 * few services take nothing away: they skip the look-ahead, which costs a
 * rebuild of the whole state. */
static json_t *assess(struct fulcrumd *d, const json_t *ops)
{
	json_t *before, *after, *risk = NULL;
	char err[512];

	if (!may_remove(ops) &&
	    plan_services_touched(ops) <= d->cfg.blast_services)
		return json_pack("{s:b}", "high", 0);
	before = current_services(d, err, sizeof(err));
	after = before ? plan_simulate(before, ops, err, sizeof(err)) : NULL;
	if (after)
		risk = plan_risk(before, after, ops, 0, d->cfg.blast_share,
				 d->cfg.blast_services);
	json_decref(before);
	json_decref(after);
	return risk;
}

struct early_push {
	struct sync *sync;
	bool approved;
	struct sync_pending pending;
};

static void push_applied(struct store *st, void *arg)
{
	struct early_push *e = arg;

	sync_prepare(e->sync, st, e->approved, &e->pending);
}

static void push_durable(struct store *st, void *arg)
{
	struct early_push *e = arg;

	sync_publish(st, &e->pending);
}

json_t *mgmt_commit(struct fulcrumd *d, const struct change_meta *meta,
		    const json_t *ops, bool approved)
{
	char err[1024], push_err[1024] = "", why[512];
	struct early_push early = { &d->sync, approved, { .fd = -1 } };
	const struct store_hooks hooks = { push_applied, push_durable, &early };
	uint64_t version;
	int rc;

	if (d->freeze.on)
		return mgmt_refuse("frozen by %s: %s; nothing changed (an admin lifts "
			      "it with fulcrumctl unfreeze)", d->freeze.by,
			      d->freeze.reason);
	/* the health checker's changes are never approved: besides its own
	 * guard, fail-open (health.h), one that would take more than the
	 * allowed share of a service at once is held here, for a person to
	 * look at */
	if (!approved) {
		json_t *risk = assess(d, ops), *resp = NULL;

		if (json_is_true(json_object_get(risk, "high")))
			resp = mgmt_refuse("refused: %s; a change this wide must be "
				      "sent approved (--approved)",
				      json_string_value(json_object_get(risk,
									"why")));
		json_decref(risk);
		if (resp)
			return resp;
	}
	/* onto the state that was committed, never onto a store that lost
	 * some of it behind fulcrumd's back */
	if (heal_check(d, err, sizeof(err)) < 0)
		return mgmt_refuse("%s; nothing changed", err);
	/* the dataplane is sent the change once it is applied in memory,
	 * and builds its tables while the store writes it and its backup
	 * copy; it runs them once the change is durable */
	rc = store_commit_then(d->store, meta, ops, &hooks, &version, err,
			       sizeof(err));
	if (rc < 0)
		sync_discard(&early.pending);
	/* damage done between the check and the write is found by the
	 * write: rebuilt, the change goes onto the rebuilt store */
	if (rc < 0 && store_check(d->store, why, sizeof(why)) < 0 &&
	    heal_check(d, err, sizeof(err)) == 0) {
		rc = store_commit_then(d->store, meta, ops, &hooks, &version,
				       err, sizeof(err));
		if (rc < 0)
			sync_discard(&early.pending);
	}
	if (rc < 0)
		return mgmt_refuse("%s", err);
	if (sync_push(&d->sync, d->store, approved, &early.pending, push_err,
		      sizeof(push_err)) < 0)
		return json_pack("{s:b, s:I, s:b, s:s, s:s?}", "ok", 1,
				 "version", (json_int_t)version, "live", 0,
				 "note", push_err, "backup_error",
				 rc == STORE_BACKUP_FAILED ? err : NULL);
	return json_pack("{s:b, s:I, s:b, s:s?}", "ok", 1, "version",
			 (json_int_t)version, "live", 1, "backup_error",
			 rc == STORE_BACKUP_FAILED ? err : NULL);
}

static json_t *commit(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req, const json_t *ops)
{
	struct change_meta meta = {
		.user = peer->user, .uid = peer->uid,
		.environment = d->cfg.environment,
		.reason = json_string_value(json_object_get(req, "reason")),
	};

	return mgmt_commit(d, &meta, ops,
			   json_is_true(json_object_get(req, "approved")));
}

/* The longest drain deadline: a week. */
#define DRAIN_DEADLINE_MAX_S (7 * 86400)

/* "drain_deadline_s": the backends ops drain are set down that many
 * seconds after the commit, unless changed first (health.h). Checked
 * before anything is committed. */
static const char *deadline_refusal(const struct fulcrumd *d,
				    const json_t *req, const json_t *ops)
{
	json_t *dl = json_object_get(req, "drain_deadline_s"), *op;
	size_t i, drains = 0;

	if (!dl)
		return NULL;
	if (!json_is_integer(dl) || json_integer_value(dl) < 1 ||
	    json_integer_value(dl) > DRAIN_DEADLINE_MAX_S)
		return "change: 'drain_deadline_s' must be 1..604800 seconds";
	if (!d->health)
		return "change: a drain deadline needs the health checker, which "
		       "does not run in this fulcrumd";
	json_array_foreach(ops, i, op) {
		const char *state = json_string_value(json_object_get(op, "state"));

		if (strcmp(json_string_value(json_object_get(op, "op")) ?: "",
			   "backend_set") != 0 || !state ||
		    strcmp(state, "draining") != 0)
			return "change: 'drain_deadline_s' goes only with ops that "
			       "set backends draining";
		drains++;
	}
	return drains ? NULL : "change: 'drain_deadline_s' without a drain";
}

static json_t *change(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req)
{
	json_t *ops = json_object_get(req, "ops"), *resp, *op;
	json_int_t deadline = json_integer_value(json_object_get(req,
							  "drain_deadline_s"));
	const char *why;
	size_t i;

	if (!json_is_array(ops))
		return mgmt_refuse("change: 'ops' must be an array");
	if ((why = deadline_refusal(d, req, ops)))
		return mgmt_refuse("%s", why);
	resp = commit(d, peer, req, ops);
	if (!deadline || !json_is_true(json_object_get(resp, "ok")))
		return resp;
	json_array_foreach(ops, i, op)
		if (health_drain_deadline(d->health,
			json_string_value(json_object_get(op, "service")),
			json_string_value(json_object_get(op, "addr")),
			(unsigned int)deadline) < 0)
			json_object_set_new(resp, "note", json_string(
				"out of memory: a drain deadline is not kept"));
	return resp;
}

static json_t *apply(struct fulcrumd *d, const struct peer *peer,
		     const json_t *req)
{
	json_t *want = json_object_get(req, "services"), *have, *ops, *resp;
	char err[512];

	if (!json_is_array(want))
		return mgmt_refuse("apply: 'services' must be an array");
	have = current_services(d, err, sizeof(err));
	if (!have)
		return mgmt_refuse("%s", err);
	ops = plan_ops(have, want);
	json_decref(have);
	if (json_is_true(json_object_get(req, "dry_run")) ||
	    json_array_size(ops) == 0) {
		return json_pack("{s:b, s:I, s:o, s:b}", "ok", 1, "version",
				 (json_int_t)store_version(d->store), "ops", ops,
				 "committed", 0);
	}
	resp = commit(d, peer, req, ops);
	if (json_is_true(json_object_get(resp, "ok"))) {
		json_object_set(resp, "ops", ops);
		json_object_set_new(resp, "committed", json_true());
	}
	json_decref(ops);
	return resp;
}

static json_t *adopt(struct fulcrumd *d, const struct peer *peer,
		     const json_t *req)
{
	json_t *live, *have, *ops, *resp, *approved;
	enum sync_status was = d->sync.status;
	char err[512];
	uint64_t v;

	live = sync_live_state(&d->sync, &v, err, sizeof(err));
	if (!live)
		return mgmt_refuse("adopt: %s", err);
	have = current_services(d, err, sizeof(err));
	if (!have) {
		json_decref(live);
		return mgmt_refuse("%s", err);
	}
	ops = plan_ops(have, live);
	json_decref(have);
	json_decref(live);
	if (json_array_size(ops) == 0) {
		d->sync.status = SYNC_BEHIND;
		sync_reconcile(&d->sync, d->store);
		json_decref(ops);
		return json_pack("{s:b, s:I, s:b}", "ok", 1, "version",
				 (json_int_t)store_version(d->store), "committed", 0);
	}
	/* what is live is by definition safe to keep; the hold is over */
	d->sync.status = SYNC_BEHIND;
	approved = json_deep_copy(req);
	json_object_set_new(approved, "approved", json_true());
	resp = commit(d, peer, approved, ops);
	/* refused: nothing was taken in, so the hold is not over */
	if (!json_is_true(json_object_get(resp, "ok")))
		d->sync.status = was;
	json_decref(approved);
	json_decref(ops);
	return resp;
}

static json_t *stats(struct fulcrumd *d)
{
	json_t *req = json_pack("{s:s}", "cmd", "stats"), *resp;
	char err[512];

	resp = jsonline_call(d->cfg.dataplane_socket, req, SYNC_MAX_RESPONSE,
			     err, sizeof(err));
	json_decref(req);
	return resp ? resp : mgmt_refuse("stats: %s", err);
}

static json_t *set_freeze(struct fulcrumd *d, const struct peer *peer,
			  const json_t *req, bool on)
{
	const char *reason = json_string_value(json_object_get(req, "reason"));
	char err[512];

	if (on && (!reason || !reason[0]))
		return mgmt_refuse("freeze: say why (--reason)");
	if (freeze_set(d->cfg.freeze_file, &d->freeze, on, peer->user, reason,
		       err, sizeof(err)) < 0)
		return mgmt_refuse("freeze: %s", err);
	return json_pack("{s:b, s:o}", "ok", 1, "freeze", freeze_json(&d->freeze));
}

static json_t *dispatch(struct fulcrumd *d, const struct peer *peer,
			const json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	const char *why;

	if (!json_is_object(req) || !cmd)
		return mgmt_refuse("a request is an object with a \"cmd\"");
	if (strcmp(cmd, "status") == 0)
		return status(d);
	if (strcmp(cmd, "state") == 0)
		return state(d, req);
	if (strcmp(cmd, "history") == 0)
		return history(d, req);
	if (strcmp(cmd, "diff") == 0)
		return diff(d, req);
	if (strcmp(cmd, "stats") == 0)
		return stats(d);
	if (strcmp(cmd, "health") == 0)
		return health(d, req);
	if (strcmp(cmd, "plans") == 0)
		return plans_list(d, req);
	if (strcmp(cmd, "change") != 0 && strcmp(cmd, "apply") != 0 &&
	    strcmp(cmd, "adopt") != 0 && strcmp(cmd, "freeze") != 0 &&
	    strcmp(cmd, "unfreeze") != 0 && strcmp(cmd, "plan") != 0 &&
	    strcmp(cmd, "approve") != 0 && strcmp(cmd, "execute") != 0)
		return mgmt_refuse("unknown cmd '%s'", cmd);
	if (!(strcmp(cmd, "apply") == 0 &&
	      json_is_true(json_object_get(req, "dry_run"))) &&
	    (why = env_mismatch(d, req)))
		return mgmt_refuse("%s", why);
	if (strcmp(cmd, "change") == 0)
		return change(d, peer, req);
	if (strcmp(cmd, "apply") == 0)
		return apply(d, peer, req);
	if (strcmp(cmd, "freeze") == 0 || strcmp(cmd, "unfreeze") == 0)
		return set_freeze(d, peer, req, strcmp(cmd, "freeze") == 0);
	if (strcmp(cmd, "plan") == 0)
		return plans_make(d, peer, req);
	if (strcmp(cmd, "approve") == 0)
		return plans_approve(d, peer, req);
	if (strcmp(cmd, "execute") == 0)
		return plans_execute(d, peer, req);
	return adopt(d, peer, req);
}

json_t *mgmt_handle(struct fulcrumd *d, const struct peer *peer,
		    const json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	enum role role = access_role(&d->cfg, peer), need;
	json_t *resp;

	need = cmd ? access_needed(cmd, req) : ROLE_VIEWER;
	if (role < need)
		resp = mgmt_refuse("user %s (uid %u) has role %s; '%s' needs %s",
			      peer->user, (unsigned)peer->uid, role_name(role),
			      cmd ? cmd : "?", role_name(need));
	else
		resp = dispatch(d, peer, req);
	access_audit(&d->cfg, peer, role, req, resp);
	return resp;
}

void mgmt_free_later(struct fulcrumd *d, json_t *j)
{
	if (!d->spent)
		d->spent = json_array();
	/* without room to keep it, jansson lets it go now */
	json_array_append_new(d->spent, j);
}

void mgmt_free_spent(struct fulcrumd *d)
{
	json_decref(d->spent);
	d->spent = NULL;
}
