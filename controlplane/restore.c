#include "restore.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "plan.h"
#include "service_diff.h"

/* What a restore to `version` brings back that is not there now: service
 * names, and "service addr" pairs for backends. */
static json_t *lost_keys(const json_t *then, const json_t *now)
{
	json_t *lost = json_object(), *ops = plan_ops(now, then), *op;
	size_t i;

	json_array_foreach(ops, i, op) {
		const char *kind = json_string_value(json_object_get(op, "op"));
		const char *name = json_string_value(json_object_get(op, "name"));
		const char *svc = json_string_value(json_object_get(op, "service"));
		const char *addr = json_string_value(json_object_get(op, "addr"));
		char key[256];

		if (strcmp(kind, "service_add") == 0 && name)
			json_object_set_new(lost, name, json_true());
		if (strcmp(kind, "backend_add") == 0 && svc && addr) {
			snprintf(key, sizeof(key), "%s %s", svc, addr);
			json_object_set_new(lost, key, json_true());
		}
	}
	json_decref(ops);
	return lost;
}

static bool touches(const json_t *ops, const json_t *keys)
{
	json_t *op;
	size_t i;

	json_array_foreach(ops, i, op) {
		const char *name = json_string_value(json_object_get(op, "name"));
		const char *svc = json_string_value(json_object_get(op, "service"));
		const char *addr = json_string_value(json_object_get(op, "addr"));
		char key[256];

		if ((name && json_object_get(keys, name)) ||
		    (svc && json_object_get(keys, svc)))
			return true;
		snprintf(key, sizeof(key), "%s %s", svc ? svc : "",
			 addr ? addr : "");
		if (svc && addr && json_object_get(keys, key))
			return true;
	}
	return false;
}

/* With replay_after, the changes after `version` that leave alone what
 * a restore to it brings back, applied in order to target, the changed
 * services as they were then; *replayed and *skipped list their versions.
 * Every service they touch is among target's and now's. Returns target,
 * or NULL with err. */
static json_t *replay_after(struct store *st, json_int_t version,
			    json_t *target, const json_t *now,
			    json_t *replayed, json_t *skipped, char *err,
			    size_t len)
{
	json_t *log = store_history(st, (uint64_t)version + 1, 0, err,
				    len);
	json_t *entry, *lost;
	size_t i;

	if (!log) {
		json_decref(target);
		return NULL;
	}
	lost = lost_keys(target, now);
	json_array_foreach(log, i, entry) {
		json_t *ops = json_object_get(entry, "ops"), *next;
		json_t *v = json_object_get(entry, "version");
		char why[256];

		if (touches(ops, lost) ||
		    !(next = plan_simulate(target, ops, why, sizeof(why)))) {
			json_array_append(skipped, v);
			continue;
		}
		json_decref(target);
		target = next;
		json_array_append(replayed, v);
	}
	json_decref(lost);
	json_decref(log);
	return target;
}

/* A restore's walk of the services changed since its version
 * (store_changed_since), in memory rather than as JSON: the ops that take
 * each back, service deletions first as plan_ops orders them, and as JSON
 * for plan_risk only the services that lose something, before and after.
 * With replay_after, every changed service as JSON, now and then, for the
 * log's later changes to be replayed onto. */
struct restore_walk {
	json_t *dels, *ops;
	json_t *before, *after;
	json_t *now, *then;             /* NULL without replay_after */
	size_t n_now, n_then;           /* changed services now, and then */
	bool out_of_memory;
};

static int append(json_t *list, const struct service *s)
{
	return json_array_append_new(list, model_service_to_json(s));
}

static int walk_one(const struct service *now, const struct service *then,
		    void *arg)
{
	struct restore_walk *w = arg;
	bool loses = !then || service_loses_active(now, then);

	w->n_now += now != NULL;
	w->n_then += then != NULL;
	if (service_diff(now, then, then ? w->ops : w->dels) < 0 ||
	    (loses && now && append(w->before, now) < 0) ||
	    (loses && then && append(w->after, then) < 0) ||
	    (w->now && now && append(w->now, now) < 0) ||
	    (w->then && then && append(w->then, then) < 0)) {
		w->out_of_memory = true;
		return -1;
	}
	return 0;
}

static void walk_free(struct restore_walk *w)
{
	json_decref(w->dels);
	json_decref(w->ops);
	json_decref(w->before);
	json_decref(w->after);
	json_decref(w->now);
	json_decref(w->then);
}

int restore_plan(struct store *st, const json_t *req,
		 unsigned int share_pct, unsigned int max_services,
		 json_t **ops, json_t **risk, json_t *replayed, json_t *skipped,
		 char *err, size_t len)
{
	json_t *restore = json_object_get(req, "restore_to"), *target, *after;
	json_int_t version = json_integer_value(restore);
	bool replay = json_is_true(json_object_get(req, "replay_after"));
	struct restore_walk w = {
		.dels = json_array(), .ops = json_array(),
		.before = json_array(), .after = json_array(),
		.now = replay ? json_array() : NULL,
		.then = replay ? json_array() : NULL,
	};
	size_t others;
	int rc = -1;

	*ops = *risk = NULL;
	if (!json_is_integer(restore) || version < 0 ||
	    (uint64_t)version > store_version(st)) {
		snprintf(err, len, "restore_to must be a version from 0 to %"
			 PRIu64, store_version(st));
		goto out;
	}
	if (store_changed_since(st, (uint64_t)version, walk_one, &w, err,
				len) < 0) {
		if (w.out_of_memory)
			snprintf(err, len, "out of memory");
		goto out;
	}
	others = store_n_services(st) - w.n_now;
	if (!replay) {
		json_array_extend(w.dels, w.ops);
		*ops = json_incref(w.dels);
		*risk = plan_risk(w.before, w.after, *ops,
				  others + w.n_then - json_array_size(w.after),
				  share_pct, max_services);
		rc = 0;
		goto out;
	}
	target = replay_after(st, version, json_incref(w.then), w.now, replayed,
			      skipped, err, len);
	if (!target)
		goto out;
	*ops = plan_ops(w.now, target);
	json_decref(target);
	after = plan_simulate(w.now, *ops, err, len);
	if (after) {
		*risk = plan_risk(w.now, after, *ops, others, share_pct,
				  max_services);
		json_decref(after);
		rc = 0;
	}
out:
	walk_free(&w);
	if (rc < 0) {
		json_decref(*ops);
		*ops = NULL;
	}
	return rc;
}

