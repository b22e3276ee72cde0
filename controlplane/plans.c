#include "plans.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "jsonline.h"
#include "mgmt.h"
#include "plan.h"
#include "restore.h"


static int64_t now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A plan is two files: ID.json, what it is and what became of it, and
 * ID.ops.json, its ops, written once. Approving or carrying out a plan
 * rewrites only the first: the ops of a restore of 10,000 services take
 * megabytes and a quarter of a second to write, and as long to read. */
static void plan_path(const struct fulcrumd *d, json_int_t id,
		      const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%lld%s.json", d->cfg.plans_dir, (long long)id,
		 suffix);
}

static int save_file(const struct fulcrumd *d, const char *text,
		     const char *path, char *err, size_t len)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int dir, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	jsonline_make_parent(path);
	/* a rename of a file on disk: a crash or a power cut leaves the old
	 * file or the new one, never part of it */
	f = fopen(tmp, "w");
	rc = f && text && fputs(text, f) >= 0 && fflush(f) == 0 &&
	     fsync(fileno(f)) == 0 ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	dir = rc == 0 ? open(d->cfg.plans_dir, O_RDONLY | O_DIRECTORY) : -1;
	if (rc == 0 && (dir < 0 || fsync(dir) < 0))
		rc = -1;
	if (dir >= 0)
		close(dir);
	if (rc < 0)
		snprintf(err, len, "cannot save the plan in %s: %s",
			 d->cfg.plans_dir, strerror(errno));
	return rc;
}

/* The plan, less its ops, which save_ops wrote when it was made. */
static int save(const struct fulcrumd *d, const json_t *plan, char *err,
		size_t len)
{
	char path[PATH_MAX], *text = json_dumps(plan, JSON_COMPACT);
	int rc;

	plan_path(d, json_integer_value(json_object_get(plan, "id")), "", path,
		  sizeof(path));
	rc = save_file(d, text, path, err, len);
	free(text);
	return rc;
}

static void sha256_of(const void *bytes, size_t n, unsigned char out[32])
{
	EVP_Digest(bytes, n, out, NULL, EVP_sha256(), NULL);
}

/* The kept ops let go, after the response. */
static void drop_kept(struct fulcrumd *d)
{
	if (d->kept_plan.ops)
		mgmt_free_later(d, d->kept_plan.ops);
	d->kept_plan = (struct plans_kept){ 0 };
}

void plans_forget(struct fulcrumd *d)
{
	json_decref(d->kept_plan.ops);
	d->kept_plan = (struct plans_kept){ 0 };
}

/* Ops of a plan this large are written as text on two cores: a
 * restore's 95,000 took 150 ms on one. */
#define OPS_DUMPED_APART 10000

/* ops[from..to) as JSON_COMPACT text, joined by commas. */
struct ops_text {
	const json_t *ops;
	size_t from, to;
	char *text;
	size_t len, cap;
	bool ok;
};

static int append_text(const char *buf, size_t size, void *arg)
{
	struct ops_text *t = arg;

	if (t->len + size + 1 > t->cap) {
		size_t cap = (t->len + size + 1) * 2;
		char *more = realloc(t->text, cap);

		if (!more)
			return -1;
		t->text = more;
		t->cap = cap;
	}
	memcpy(t->text + t->len, buf, size);
	t->len += size;
	t->text[t->len] = '\0';
	return 0;
}

static void *dump_some(void *arg)
{
	struct ops_text *t = arg;

	t->ok = true;
	for (size_t i = t->from; t->ok && i < t->to; i++)
		t->ok = (i == t->from || append_text(",", 1, t) == 0) &&
			json_dump_callback(json_array_get(t->ops, i),
					   append_text, t, JSON_COMPACT) == 0;
	return NULL;
}

/* json_dumps(ops, JSON_COMPACT), byte for byte, made by halves on two
 * threads when ops are many. NULL when out of memory. */
static char *dump_ops(const json_t *ops)
{
	size_t n = json_array_size(ops);
	struct ops_text half[2] = {
		{ .ops = ops, .from = 0, .to = n / 2 },
		{ .ops = ops, .from = n / 2, .to = n },
	};
	char *text = NULL;
	pthread_t apart;

	if (n < OPS_DUMPED_APART ||
	    pthread_create(&apart, NULL, dump_some, &half[1]) != 0)
		return json_dumps(ops, JSON_COMPACT);
	dump_some(&half[0]);
	pthread_join(apart, NULL);
	if (half[0].ok && half[1].ok &&
	    (text = malloc(half[0].len + half[1].len + 4))) {
		text[0] = '[';
		memcpy(text + 1, half[0].text, half[0].len);
		text[half[0].len + 1] = ',';
		memcpy(text + half[0].len + 2, half[1].text, half[1].len);
		memcpy(text + half[0].len + half[1].len + 2, "]", 2);
	}
	free(half[0].text);
	free(half[1].text);
	return text;
}

/* Writes a new plan's ops, and keeps them for its apply. */
static int save_ops(struct fulcrumd *d, json_int_t id, json_t *ops,
		    char *err, size_t len)
{
	char path[PATH_MAX], *text = dump_ops(ops);
	int rc;

	plan_path(d, id, ".ops", path, sizeof(path));
	rc = save_file(d, text, path, err, len);
	drop_kept(d);
	if (rc == 0) {
		sha256_of(text, strlen(text), d->kept_plan.sha256);
		d->kept_plan.id = id;
		d->kept_plan.ops = json_incref(ops);
	}
	free(text);
	return rc;
}

/* A file's bytes, NUL-terminated, *n of them; NULL on failure with
 * errno set. */
static char *read_whole(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long size;

	if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
	    fread(buf, 1, (size_t)size, f) == (size_t)size) {
		buf[size] = '\0';
		*n = (size_t)size;
	} else {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	return buf;
}

/* The plan req names, less its ops. */
static json_t *load(const struct fulcrumd *d, const json_t *req, char *err,
		    size_t len)
{
	json_t *id = json_object_get(req, "id");
	char path[PATH_MAX];
	json_error_t je;
	json_t *plan;

	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(err, len, "'id' must be a plan number");
		return NULL;
	}
	plan_path(d, json_integer_value(id), "", path, sizeof(path));
	plan = json_load_file(path, 0, &je);
	if (!plan)
		snprintf(err, len, "no plan %lld", (long long)json_integer_value(id));
	return plan;
}

/* The ops of a loaded plan: from its ops file (the kept ops, if it holds
 * what they were written as), or, for a plan saved before plans had one,
 * from the plan itself. With text, *text is what they were read from
 * (free it), NULL for the latter. NULL with err. */
static json_t *load_ops(const struct fulcrumd *d, const json_t *plan,
			char **text_read, char *err, size_t len)
{
	json_int_t id = json_integer_value(json_object_get(plan, "id"));
	char path[PATH_MAX], *text;
	unsigned char sha256[32];
	json_error_t je;
	json_t *ops = json_object_get(plan, "ops");
	size_t n;

	if (text_read)
		*text_read = NULL;
	if (ops)
		return json_incref(ops);
	plan_path(d, id, ".ops", path, sizeof(path));
	text = read_whole(path, &n);
	if (!text) {
		snprintf(err, len, "the ops of plan %lld do not read: %s",
			 (long long)id, strerror(errno));
		return NULL;
	}
	sha256_of(text, n, sha256);
	if (d->kept_plan.id == id &&
	    memcmp(sha256, d->kept_plan.sha256, sizeof(sha256)) == 0)
		ops = json_incref(d->kept_plan.ops);
	else
		ops = json_loadb(text, n, 0, &je);
	if (!json_is_array(ops)) {
		snprintf(err, len, "the ops of plan %lld do not read: %s",
			 (long long)id, ops ? "not an array" : je.text);
		json_decref(ops);
		free(text);
		return NULL;
	}
	if (text_read)
		*text_read = text;
	else
		free(text);
	return ops;
}

/* More ops than this are left out of a response that shows a plan just
 * made or approved: no one reads 95,000 lines, and a script that wants
 * them asks for the plan by id. */
#define OPS_SHOWN 1000

/* Whether a response that shows plan lists its ops. */
static bool ops_shown(const json_t *plan)
{
	return json_integer_value(json_object_get(plan, "ops_count")) <=
	       OPS_SHOWN;
}

/* The response that shows a plan just made or approved: with ops, the
 * plan's, when ops_shown. */
static json_t *shown(json_t *plan, json_t *ops)
{
	if (ops)
		json_object_set(plan, "ops", ops);
	return json_pack("{s:b, s:o}", "ok", 1, "plan", plan);
}

static json_int_t next_id(const struct fulcrumd *d)
{
	char path[PATH_MAX];
	json_int_t id = 1;

	/* plans are few: the first free number will do */
	for (;; id++) {
		plan_path(d, id, "", path, sizeof(path));
		if (access(path, F_OK) != 0)
			return id;
	}
}

static json_t *services_of(json_t *state)
{
	json_t *s = state ? json_incref(json_object_get(state, "services")) : NULL;

	json_decref(state);
	return s;
}

/* Any other plan: ops, or a whole desired state, against the whole
 * current state. */
static int change_plan(struct fulcrumd *d, const json_t *req, json_t **ops,
		       json_t **risk, char *err, size_t len)
{
	json_t *now = services_of(store_state(d->store, err, len)), *after;

	*ops = *risk = NULL;
	if (!now)
		return -1;
	if (json_is_array(json_object_get(req, "services"))) {
		*ops = plan_ops(now, json_object_get(req, "services"));
	} else if (json_is_array(json_object_get(req, "ops"))) {
		*ops = json_incref(json_object_get(req, "ops"));
	} else {
		snprintf(err, len, "a plan needs 'ops', 'services' or "
			 "'restore_to'");
		json_decref(now);
		return -1;
	}
	after = plan_simulate(now, *ops, err, len);
	if (after)
		*risk = plan_risk(now, after, *ops, 0, d->cfg.blast_share,
				  d->cfg.blast_services);
	json_decref(after);
	json_decref(now);
	if (!*risk) {
		json_decref(*ops);
		*ops = NULL;
		return -1;
	}
	return 0;
}

/* A restore to a time is a restore to the version current then: req
 * with that version as "restore_to", or NULL with err. */
static json_t *restore_at_time(struct fulcrumd *d, const json_t *req,
			       const json_t *at_time, char *err, size_t len)
{
	uint64_t version;
	json_t *out;

	if (json_object_get(req, "restore_to")) {
		snprintf(err, len, "a restore goes to a version or to a time, "
			 "not both");
		return NULL;
	}
	if (!json_is_integer(at_time) || json_integer_value(at_time) < 0) {
		snprintf(err, len, "restore_to_time_ms must be a time in ms "
			 "since 1970");
		return NULL;
	}
	if (store_version_at_time(d->store, json_integer_value(at_time),
				  &version, err, len) < 0)
		return NULL;
	out = json_copy((json_t *)req);
	if (!out || json_object_set_new(out, "restore_to",
					json_integer((json_int_t)version)) < 0) {
		json_decref(out);
		snprintf(err, len, "out of memory");
		return NULL;
	}
	return out;
}

json_t *plans_make(struct fulcrumd *d, const struct peer *peer,
		   const json_t *req)
{
	json_t *ops, *risk, *plan;
	json_t *replayed = json_array(), *skipped = json_array();
	json_t *restore = json_object_get(req, "restore_to");
	const char *reason = json_string_value(json_object_get(req, "reason"));
	json_t *at_time = json_object_get(req, "restore_to_time_ms");
	json_t *restore_req = NULL, *resp;
	char err[1024];
	int rc;

	if (at_time) {
		restore_req = restore_at_time(d, req, at_time, err, sizeof(err));
		if (!restore_req)
			goto fail;
		req = restore_req;
		restore = json_object_get(req, "restore_to");
	}
	rc = restore ?
	     restore_plan(d->store, req, d->cfg.blast_share,
			  d->cfg.blast_services, &ops, &risk, replayed, skipped,
			  err, sizeof(err)) :
	     change_plan(d, req, &ops, &risk, err, sizeof(err));
	if (rc < 0)
		goto fail;
	plan = json_pack("{s:I, s:s, s:i, s:I, s:s, s:I, s:I, s:o, s:O, s:O}",
			 "id", next_id(d), "author", peer->user,
			 "uid", (int)peer->uid, "created_ms", (json_int_t)now_ms(),
			 "reason", reason ? reason : "",
			 "base_version", (json_int_t)store_version(d->store),
			 "ops_count", (json_int_t)json_array_size(ops),
			 "risk", risk, "replayed", replayed,
			 "skipped", skipped);
	if (restore)
		json_object_set(plan, "restore_to", restore);
	if (at_time)
		json_object_set(plan, "restore_to_time_ms", at_time);
	/* the ops first: a plan is there once its own file is */
	if (save_ops(d, json_integer_value(json_object_get(plan, "id")), ops,
		     err, sizeof(err)) < 0 ||
	    save(d, plan, err, sizeof(err)) < 0) {
		json_decref(plan);
		json_decref(ops);
		goto fail;
	}
	json_decref(restore_req);
	json_decref(replayed);
	json_decref(skipped);
	resp = shown(plan, ops_shown(plan) ? ops : NULL);
	json_decref(ops);
	return resp;
fail:
	json_decref(restore_req);
	json_decref(replayed);
	json_decref(skipped);
	return mgmt_refuse("plan: %s", err);
}

static bool high_risk(const json_t *plan)
{
	return json_is_true(json_object_get(json_object_get(plan, "risk"),
					    "high"));
}

json_t *plans_approve(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req)
{
	char err[512];
	json_t *plan = load(d, req, err, sizeof(err)), *ops = NULL, *resp;
	const char *author;

	if (!plan)
		return mgmt_refuse("approve: %s", err);
	author = json_string_value(json_object_get(plan, "author"));
	if (json_object_get(plan, "executed_version")) {
		json_decref(plan);
		return mgmt_refuse("approve: the plan has been carried out already");
	}
	if (strcmp(d->cfg.environment, "production") == 0 && high_risk(plan) &&
	    author && strcmp(author, peer->user) == 0) {
		json_t *resp = mgmt_refuse("approve: a high-risk plan in production "
				      "needs another user than its author (%s)",
				      author);

		json_decref(plan);
		return resp;
	}
	/* read before the approval is saved: an approval is not to be
	 * kept on a plan that could not be carried out */
	if (ops_shown(plan) &&
	    !(ops = load_ops(d, plan, NULL, err, sizeof(err)))) {
		json_decref(plan);
		return mgmt_refuse("approve: %s", err);
	}
	json_object_set_new(plan, "approved_by", json_string(peer->user));
	json_object_set_new(plan, "approved_ms", json_integer(now_ms()));
	if (save(d, plan, err, sizeof(err)) < 0) {
		json_decref(ops);
		json_decref(plan);
		return mgmt_refuse("approve: %s", err);
	}
	resp = shown(plan, ops);
	json_decref(ops);
	return resp;
}

json_t *plans_execute(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req)
{
	char err[512], reason[512], *text = NULL;
	json_t *plan = load(d, req, err, sizeof(err)), *resp, *ops = NULL;
	struct change_meta meta = {
		.user = peer->user, .uid = peer->uid,
		.environment = d->cfg.environment, .reason = reason,
	};

	if (!plan)
		return mgmt_refuse("apply: %s", err);
	if (json_object_get(plan, "executed_version")) {
		resp = mgmt_refuse("apply: plan %lld was carried out already",
			      json_integer_value(json_object_get(plan, "id")));
	} else if ((uint64_t)json_integer_value(json_object_get(
			   plan, "base_version")) != store_version(d->store)) {
		resp = mgmt_refuse("apply: the state has moved since plan %lld was "
			      "made (version %lld, now %" PRIu64 "); make a new "
			      "plan", json_integer_value(json_object_get(plan, "id")),
			      json_integer_value(json_object_get(plan,
								 "base_version")),
			      store_version(d->store));
	} else if (high_risk(plan) && !json_object_get(plan, "approved_by")) {
		resp = mgmt_refuse("apply: plan %lld is high-risk (%s) and not "
			      "approved", json_integer_value(json_object_get(plan, "id")),
			      json_string_value(json_object_get(
				      json_object_get(plan, "risk"), "why")));
	} else if (!(ops = load_ops(d, plan, &text, err, sizeof(err)))) {
		resp = mgmt_refuse("apply: %s", err);
	} else {
		snprintf(reason, sizeof(reason), "plan %lld (by %s, approved by "
			 "%s): %s", json_integer_value(json_object_get(plan, "id")),
			 json_string_value(json_object_get(plan, "author")),
			 json_object_get(plan, "approved_by") ?
			 json_string_value(json_object_get(plan, "approved_by")) :
			 "nobody; low risk",
			 json_string_value(json_object_get(plan, "reason")));
		meta.ops_text = text;
		resp = mgmt_commit(d, &meta, ops, true);
		if (json_is_true(json_object_get(resp, "ok"))) {
			if (d->kept_plan.id == json_integer_value(
				    json_object_get(plan, "id")))
				drop_kept(d);
			json_object_set(plan, "executed_version",
					json_object_get(resp, "version"));
			if (save(d, plan, err, sizeof(err)) < 0)
				json_object_set_new(resp, "note", json_string(err));
		}
	}
	if (ops)
		mgmt_free_later(d, ops);
	free(text);
	json_decref(plan);
	return resp;
}

/* The plan req names, with its ops. */
static json_t *plan_whole(struct fulcrumd *d, const json_t *req)
{
	char err[256];
	json_t *plan = load(d, req, err, sizeof(err)), *ops;

	if (!plan)
		return mgmt_refuse("plan: %s", err);
	ops = load_ops(d, plan, NULL, err, sizeof(err));
	if (!ops) {
		json_decref(plan);
		return mgmt_refuse("plan: %s", err);
	}
	json_object_set_new(plan, "ops", ops);
	return json_pack("{s:b, s:o}", "ok", 1, "plan", plan);
}

json_t *plans_list(struct fulcrumd *d, const json_t *req)
{
	json_t *list, *plan;
	char err[256];

	if (json_object_get(req, "id"))
		return plan_whole(d, req);
	list = json_array();
	for (json_int_t id = 1; id < next_id(d); id++) {
		json_t *one = json_pack("{s:I}", "id", id);

		plan = load(d, one, err, sizeof(err));
		json_decref(one);
		if (plan) {
			json_object_del(plan, "ops");
			json_array_append_new(list, plan);
		}
	}
	return json_pack("{s:b, s:o}", "ok", 1, "plans", list);
}
