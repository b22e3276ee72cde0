#include "plan.h"

#include <string.h>

#include "change.h"
#include "model.h"

static const char *const service_fields[] = {
	"vip", "proto", "port", "mode", "table_size", "gue_port",
};

/* The form a key is compared in. Addresses as addresses: a file may write
 * one in another form than the store gives back ("FD00:0::1" for
 * "fd00::1"), which is no change. */
static const char *canonical(const char *key, const char *value, char *buf,
			     size_t len)
{
	union ip_addr a;
	uint8_t family;

	if (strcmp(key, "addr") == 0 && ip_addr_parse(value, &a, &family) == 0)
		return ip_addr_str(&a, family, buf, len);
	return value;
}

/* list's elements by their key, the first of each, so that a state of
 * ten thousand services is not searched from the start for each one.
 * `to` comes from a user's file and is checked only when its ops are
 * applied: an element with a missing or non-string key is left out. */
static json_t *index_by(const json_t *list, const char *key)
{
	json_t *index = json_object(), *x;
	char buf[64];
	size_t i;

	json_array_foreach(list, i, x) {
		const char *v = json_string_value(json_object_get(x, key));

		if (v && !json_object_get(index, canonical(key, v, buf, sizeof(buf))))
			json_object_set(index, canonical(key, v, buf, sizeof(buf)), x);
	}
	return index;
}

static json_t *find(const json_t *index, const char *key, const char *value)
{
	char buf[64];

	return value ? json_object_get(index, canonical(key, value, buf,
							sizeof(buf))) : NULL;
}

/* A field's value, or its default where the state leaves it out. */
static json_t *field(const json_t *svc, const char *name)
{
	json_t *v = json_object_get(svc, name);

	if (v)
		return json_incref(v);
	if (strcmp(name, "table_size") == 0)
		return json_integer(SERVICE_TABLE_SIZE_DEFAULT);
	if (strcmp(name, "gue_port") == 0)
		return json_integer(SERVICE_GUE_PORT_DEFAULT);
	if (strcmp(name, "port") == 0)
		return json_integer(0);
	if (strcmp(name, "weight") == 0)
		return json_integer(1);
	if (strcmp(name, "state") == 0)
		return json_string("active");
	return json_null();
}

static bool differs(const json_t *a, const json_t *b, const char *name)
{
	json_t *x = field(a, name), *y = field(b, name);
	char bx[64], by[64];
	bool d = strcmp(name, "vip") == 0 && json_is_string(x) &&
		 json_is_string(y) ?
		 strcmp(canonical("addr", json_string_value(x), bx, sizeof(bx)),
			canonical("addr", json_string_value(y), by, sizeof(by))) != 0 :
		 !json_equal(x, y);

	json_decref(x);
	json_decref(y);
	return d;
}

static void backend_ops(json_t *ops, const char *svc, const json_t *from,
			const json_t *to)
{
	json_t *in_from = index_by(from, "addr"), *in_to = index_by(to, "addr");
	json_t *b;
	size_t i;

	json_array_foreach(from, i, b) {
		const char *addr = json_string_value(json_object_get(b, "addr"));

		if (!find(in_to, "addr", addr))
			json_array_append_new(ops, json_pack(
				"{s:s, s:s, s:s}", "op", "backend_del",
				"service", svc, "addr", addr));
	}
	json_array_foreach(to, i, b) {
		const char *addr = json_string_value(json_object_get(b, "addr"));
		json_t *old = find(in_from, "addr", addr);

		if (!old)
			json_array_append_new(ops, json_pack(
				"{s:s, s:s, s:s?, s:o, s:o}", "op", "backend_add",
				"service", svc, "addr", addr, "weight",
				field(b, "weight"), "state", field(b, "state")));
		else if (differs(old, b, "weight") || differs(old, b, "state"))
			json_array_append_new(ops, json_pack(
				"{s:s, s:s, s:s, s:o, s:o}", "op", "backend_set",
				"service", svc, "addr", addr, "weight",
				field(b, "weight"), "state", field(b, "state")));
	}
	json_decref(in_from);
	json_decref(in_to);
}

/* A new service's backends with weight and state filled in where left
 * out, as backend_add has them for a service that exists. What is not an
 * object stays as it is, for change_apply to refuse. */
static json_t *backends_of(const json_t *svc)
{
	static const char *const defaults[] = { "weight", "state" };
	json_t *backends = json_object_get(svc, "backends"), *out, *b;
	size_t i;

	if (!json_is_array(backends))
		return backends ? json_incref(backends) : json_array();
	out = json_array();
	json_array_foreach(backends, i, b) {
		json_t *c = json_is_object(b) ? json_copy(b) : json_incref(b);

		for (size_t f = 0; json_is_object(c) && f < 2; f++)
			if (!json_object_get(c, defaults[f]))
				json_object_set_new(c, defaults[f],
						    field(c, defaults[f]));
		json_array_append_new(out, c);
	}
	return out;
}

static json_t *service_add(const json_t *svc)
{
	json_t *op = json_pack("{s:s, s:O?, s:o}", "op", "service_add", "name",
			       json_object_get(svc, "name"), "backends",
			       backends_of(svc));

	for (size_t f = 0; f < sizeof(service_fields) / sizeof(*service_fields);
	     f++)
		json_object_set_new(op, service_fields[f],
				    field(svc, service_fields[f]));
	return op;
}

json_t *plan_ops(const json_t *from, const json_t *to)
{
	json_t *ops = json_array(), *svc;
	json_t *in_from = index_by(from, "name"), *in_to = index_by(to, "name");
	size_t i;

	json_array_foreach(from, i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));

		if (!find(in_to, "name", name))
			json_array_append_new(ops, json_pack(
				"{s:s, s:s}", "op", "service_del", "name", name));
	}
	json_array_foreach(to, i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));
		json_t *old = find(in_from, "name", name), *set;

		if (!old) {
			json_array_append_new(ops, service_add(svc));
			continue;
		}
		set = json_pack("{s:s, s:s?}", "op", "service_set", "name", name);
		for (size_t f = 0;
		     f < sizeof(service_fields) / sizeof(*service_fields); f++)
			if (differs(old, svc, service_fields[f]))
				json_object_set_new(set, service_fields[f],
						    field(svc, service_fields[f]));
		if (json_object_size(set) > 2)
			json_array_append(ops, set);
		json_decref(set);
		backend_ops(ops, name, json_object_get(old, "backends"),
			    json_object_get(svc, "backends"));
	}
	json_decref(in_from);
	json_decref(in_to);
	return ops;
}

json_t *plan_simulate(const json_t *before, const json_t *ops, char *err,
		      size_t err_len)
{
	json_t *empty = json_array(), *rebuild = plan_ops(empty, before);
	json_t *after = NULL, *state;
	struct model *m = model_new();

	if (!m) {
		snprintf(err, err_len, "out of memory");
	} else {
		model_begin(m);
		if ((json_array_size(rebuild) == 0 ||
		     change_apply(m, rebuild, err, err_len) == 0) &&
		    change_apply(m, ops, err, err_len) == 0) {
			model_commit(m);
			state = model_to_json(m);
			after = json_incref(json_object_get(state, "services"));
			json_decref(state);
		} else {
			model_rollback(m);
		}
		model_free(m);
	}
	json_decref(rebuild);
	json_decref(empty);
	return after;
}

/* Active backends of svc, and their total weight; the active ones are
 * also collected (addr -> weight) when into is not NULL. */
static unsigned int active_of(const json_t *svc, json_int_t *weight,
			      json_t *into)
{
	unsigned int n = 0;
	json_t *b;
	size_t i;
	char buf[64];

	*weight = 0;
	json_array_foreach(json_object_get(svc, "backends"), i, b) {
		json_t *st = field(b, "state"), *w = field(b, "weight");
		const char *addr = json_string_value(json_object_get(b, "addr"));

		if (strcmp(json_string_value(st), "active") == 0) {
			n++;
			*weight += json_integer_value(w);
			if (into && addr)
				json_object_set(into, canonical("addr", addr, buf,
							       sizeof(buf)), w);
		}
		json_decref(st);
		json_decref(w);
	}
	return n;
}

size_t plan_services_touched(const json_t *ops)
{
	json_t *names = json_object(), *op;
	size_t i, n;

	json_array_foreach(ops, i, op) {
		const char *name = json_string_value(json_object_get(op, "name"));

		if (!name)
			name = json_string_value(json_object_get(op, "service"));
		if (name)
			json_object_set_new(names, name, json_true());
	}
	n = json_object_size(names);
	json_decref(names);
	return n;
}

json_t *plan_risk(const json_t *before, const json_t *after,
		  const json_t *ops, size_t others, unsigned int share_pct,
		  unsigned int max_services)
{
	json_t *in_after = index_by(after, "name"), *list = json_array(), *svc;
	char why[512] = "";
	size_t i, touched = 0;

	json_array_foreach(before, i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));
		json_t *now = find(in_after, "name", name), *was = json_object();
		json_int_t w_before, w_after, lost = 0;
		unsigned int a_before = active_of(svc, &w_before, was), a_after = 0;
		unsigned int gone = 0;
		const char *addr;
		json_t *w;

		if (now) {
			json_t *still = json_object();

			a_after = active_of(now, &w_after, still);
			json_object_foreach(was, addr, w)
				if (!json_object_get(still, addr)) {
					gone++;
					lost += json_integer_value(w);
				}
			json_decref(still);
		} else {
			gone = a_before;
			lost = w_before;
		}
		json_decref(was);
		if (gone == 0 && now)
			continue;
		json_array_append_new(list, json_pack(
			"{s:s?, s:i, s:i, s:f}", "name", name, "active_before",
			a_before, "active_after", a_after, "moved_share",
			w_before ? (double)lost / (double)w_before : 0.0));
		if (why[0] || a_before == 0)
			continue;
		if (!now)
			snprintf(why, sizeof(why), "it deletes service %s, which "
				 "has %u active backend(s)", name, a_before);
		else if (a_after == 0)
			snprintf(why, sizeof(why), "it leaves service %s with no "
				 "active backend", name);
		else if (gone > 1 && gone * 100 > share_pct * a_before)
			snprintf(why, sizeof(why), "it takes %u of the %u active "
				 "backends of service %s, more than %u%%", gone,
				 a_before, name, share_pct);
	}
	touched = plan_services_touched(ops);
	if (!why[0] && touched > max_services)
		snprintf(why, sizeof(why), "it changes %zu services, more than "
			 "%u at once", touched, max_services);
	if (!why[0] && json_array_size(after) == 0 &&
	    json_array_size(before) > 0 && others == 0)
		snprintf(why, sizeof(why), "it removes every service");
	json_decref(in_after);
	return json_pack("{s:b, s:s?, s:I, s:o}", "high", why[0] != 0, "why",
			 why[0] ? why : NULL, "services_changed",
			 (json_int_t)touched, "services", list);
}
