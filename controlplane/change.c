/* Every check on a change lives here, so that a change from the
 * management socket, a replay of the log and a load of the stored state
 * all get the very same checks. */
#include "change.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum field {
	F_OP, F_NAME, F_VIP, F_PROTO, F_PORT, F_MODE, F_TABLE_SIZE, F_GUE_PORT,
	F_BACKENDS, F_SERVICE, F_ADDR, F_WEIGHT, F_STATE, F_COUNT,
};

static const char *const field_names[F_COUNT] = {
	[F_OP] = "op", [F_NAME] = "name", [F_VIP] = "vip",
	[F_PROTO] = "proto", [F_PORT] = "port", [F_MODE] = "mode",
	[F_TABLE_SIZE] = "table_size", [F_GUE_PORT] = "gue_port",
	[F_BACKENDS] = "backends", [F_SERVICE] = "service",
	[F_ADDR] = "addr", [F_WEIGHT] = "weight", [F_STATE] = "state",
};

#define BIT(f) (1u << (f))
#define SERVICE_FIELDS (BIT(F_VIP) | BIT(F_PROTO) | BIT(F_PORT) | \
			BIT(F_MODE) | BIT(F_TABLE_SIZE) | BIT(F_GUE_PORT))

/* An op's fields once parsed; `present` has a bit per field given. */
struct args {
	unsigned int present;
	const char *name;
	const char *service;
	union ip_addr vip;
	uint8_t vip_family;
	uint8_t proto;
	uint16_t port;
	uint8_t mode;
	uint32_t table_size;
	uint16_t gue_port;
	const json_t *backends;
	union ip_addr addr;
	uint8_t addr_family;
	uint16_t weight;
	uint8_t state;
};

/* Where a message points: "op 3 (backend_add)" and, inside it, a field
 * such as "backends[2].weight". */
struct where {
	size_t index;
	const char *op;
	/* 1 + the backend a field belongs to, or 0 for the op's own: only
	 * a message spells it out, so that a store's million backends are
	 * not each printed on the way to none */
	size_t backend;
	char *err;
	size_t len;
};

/* "backends[2]." or "", for a message about a field */
static const char *prefix(const struct where *w, char buf[32])
{
	if (!w->backend)
		return "";
	snprintf(buf, 32, "backends[%zu].", w->backend - 1);
	return buf;
}

static int fail(const struct where *w, int field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(const struct where *w, int field, const char *fmt, ...)
{
	char buf[32];
	va_list ap;
	int n;

	if (field >= 0)
		n = snprintf(w->err, w->len, "op %zu (%s): '%s%s': ", w->index,
			     w->op, prefix(w, buf), field_names[field]);
	else
		n = snprintf(w->err, w->len, "op %zu (%s): ", w->index, w->op);
	if (n >= 0 && (size_t)n < w->len) {
		va_start(ap, fmt);
		vsnprintf(w->err + n, w->len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

/* Names end up in logs, metrics labels and file names: keep them plain. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SERVICE_NAME_LEN)
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

static int get_uint(const struct where *w, int f, const json_t *v,
		    json_int_t lo, json_int_t hi, json_int_t *out)
{
	if (!json_is_integer(v))
		return fail(w, f, "must be an integer");
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return fail(w, f, "%" JSON_INTEGER_FORMAT " is outside %"
			    JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
			    *out, lo, hi);
	return 0;
}

static int get_addr(const struct where *w, int f, const char *text,
		    union ip_addr *addr, uint8_t *family)
{
	if (ip_addr_parse(text, addr, family) < 0)
		return fail(w, f, "'%s' is not an IPv4 or IPv6 address", text);
	if (ip_addr_is_zero(addr))
		return fail(w, f, "%s is the unspecified address", text);
	return 0;
}

static int parse_field(const struct where *w, enum field f, const json_t *v,
		       struct args *a)
{
	const char *text = json_string_value(v);
	json_int_t n = 0;
	int i;

	if (f == F_BACKENDS) {
		if (!json_is_array(v))
			return fail(w, f, "must be an array");
		a->backends = v;
		return 0;
	}
	if (f == F_PORT || f == F_TABLE_SIZE || f == F_GUE_PORT ||
	    f == F_WEIGHT) {
		json_int_t lo = f == F_PORT ? 0 : 1, hi = UINT16_MAX;

		if (f == F_TABLE_SIZE) {
			lo = SERVICE_TABLE_SIZE_MIN;
			hi = SERVICE_TABLE_SIZE_MAX;
		}
		if (get_uint(w, f, v, lo, hi, &n) < 0)
			return -1;
		if (f == F_TABLE_SIZE && !is_prime((uint32_t)n))
			return fail(w, f, "%" JSON_INTEGER_FORMAT " is not a "
				    "prime", n);
		if (f == F_PORT)
			a->port = (uint16_t)n;
		else if (f == F_TABLE_SIZE)
			a->table_size = (uint32_t)n;
		else if (f == F_GUE_PORT)
			a->gue_port = (uint16_t)n;
		else
			a->weight = (uint16_t)n;
		return 0;
	}
	if (!text)
		return fail(w, f, "must be a string");
	switch (f) {
	case F_NAME:
	case F_SERVICE:
		if (!name_ok(text))
			return fail(w, f, "'%s' is not a service name (1 to %d "
				    "letters, digits, '-', '_' or '.')", text,
				    SERVICE_NAME_LEN - 1);
		if (f == F_NAME)
			a->name = text;
		else
			a->service = text;
		return 0;
	case F_VIP:
		return get_addr(w, f, text, &a->vip, &a->vip_family);
	case F_ADDR:
		return get_addr(w, f, text, &a->addr, &a->addr_family);
	case F_PROTO:
		if (strcmp(text, "tcp") == 0)
			a->proto = IPPROTO_TCP;
		else if (strcmp(text, "udp") == 0)
			a->proto = IPPROTO_UDP;
		else
			return fail(w, f, "unknown protocol '%s' (tcp or udp)",
				    text);
		return 0;
	case F_MODE:
		i = service_mode_parse(text);
		if (i < 0)
			return fail(w, f, "unknown mode '%s' (l2dsr, ipip or "
				    "gue)", text);
		a->mode = (uint8_t)i;
		return 0;
	case F_STATE:
		i = backend_state_parse(text);
		if (i < 0)
			return fail(w, f, "unknown state '%s' (active, draining "
				    "or down)", text);
		a->state = (uint8_t)i;
		return 0;
	default:
		return 0;       /* F_OP: the caller read it already */
	}
}

/* Parses obj's fields into a, refusing any not in `allowed` and any of
 * `required` missing. */
static int parse_args(const struct where *w, const json_t *obj,
		      unsigned int allowed, unsigned int required,
		      struct args *a)
{
	const char *key;
	char buf[32];
	json_t *v;

	memset(a, 0, sizeof(*a));
	json_object_foreach((json_t *)obj, key, v) {
		int f;

		/* only the allowed ones: a field of another op is as
		 * unknown here, and a store's million backends are each
		 * matched against three names rather than thirteen */
		for (f = 0; f < F_COUNT; f++)
			if ((allowed & BIT(f)) && strcmp(key, field_names[f]) == 0)
				break;
		if (f == F_COUNT)
			return fail(w, -1, "unknown field '%s%s'",
				    prefix(w, buf), key);
		if (parse_field(w, (enum field)f, v, a) < 0)
			return -1;
		a->present |= BIT(f);
	}
	for (int f = 0; f < F_COUNT; f++)
		if ((required & BIT(f)) && !(a->present & BIT(f)))
			return fail(w, -1, "missing field '%s%s'",
				    prefix(w, buf), field_names[f]);
	return 0;
}

static int no_memory(const struct where *w)
{
	return fail(w, -1, "out of memory");
}

static struct service *edit(struct model *m, const struct where *w, int f,
			    const char *name)
{
	struct service *s = model_edit(m, name);

	if (!s) {
		if (errno == ENOENT)
			fail(w, f, "no service '%s'", name);
		else
			no_memory(w);
	}
	return s;
}

static int family_matches(const struct where *w, int f,
			  const struct service *s, const union ip_addr *addr,
			  uint8_t family)
{
	char a[INET6_ADDRSTRLEN], vip[INET6_ADDRSTRLEN];

	if (family == s->family)
		return 0;
	return fail(w, f, "%s is IPv%d but service '%s' has the IPv%d VIP %s",
		    ip_addr_str(addr, family, a, sizeof(a)),
		    family == AF_INET ? 4 : 6, s->name,
		    s->family == AF_INET ? 4 : 6,
		    ip_addr_str(&s->vip, s->family, vip, sizeof(vip)));
}

static int add_backend(const struct where *w, struct service *s,
		       const struct args *a)
{
	struct backend b = {
		.addr = a->addr, .weight = a->weight,
		.state = (a->present & BIT(F_STATE)) ? a->state : BACKEND_ACTIVE,
	};
	char text[INET6_ADDRSTRLEN];

	if (family_matches(w, F_ADDR, s, &a->addr, a->addr_family) < 0)
		return -1;
	if (service_backend_add(s, &b) == 0)
		return 0;
	if (errno != EEXIST)
		return no_memory(w);
	return fail(w, F_ADDR, "service '%s' already has backend %s", s->name,
		    ip_addr_str(&a->addr, a->addr_family, text, sizeof(text)));
}

static int vip_free(const struct model *m, const struct where *w,
		    const struct service *self, const union ip_addr *vip,
		    uint8_t family, uint8_t proto, uint16_t port)
{
	const struct service *owner = model_find_vip(m, vip, family, proto,
						     port);
	char text[INET6_ADDRSTRLEN];

	if (!owner || owner == self)
		return 0;
	return fail(w, F_VIP, "%s %s port %u is service '%s' already",
		    ip_addr_str(vip, family, text, sizeof(text)),
		    proto == IPPROTO_TCP ? "tcp" : "udp", port, owner->name);
}

static int op_service_add(struct model *m, struct where *w, const json_t *o)
{
	struct service tmpl = { .table_size = SERVICE_TABLE_SIZE_DEFAULT,
				.gue_port = SERVICE_GUE_PORT_DEFAULT };
	struct service *s;
	struct args a, b;
	size_t i;
	json_t *v;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_NAME) | SERVICE_FIELDS |
		       BIT(F_BACKENDS), BIT(F_NAME) | BIT(F_VIP) |
		       BIT(F_PROTO) | BIT(F_PORT) | BIT(F_MODE), &a) < 0)
		return -1;
	if (model_find(m, a.name))
		return fail(w, F_NAME, "service '%s' exists already", a.name);
	if (vip_free(m, w, NULL, &a.vip, a.vip_family, a.proto, a.port) < 0)
		return -1;
	snprintf(tmpl.name, sizeof(tmpl.name), "%s", a.name);
	tmpl.vip = a.vip;
	tmpl.family = a.vip_family;
	tmpl.proto = a.proto;
	tmpl.port = a.port;
	tmpl.mode = a.mode;
	if (a.present & BIT(F_TABLE_SIZE))
		tmpl.table_size = a.table_size;
	if (a.present & BIT(F_GUE_PORT))
		tmpl.gue_port = a.gue_port;
	s = model_add(m, &tmpl);
	if (!s)
		return no_memory(w);
	json_array_foreach(a.backends, i, v) {
		w->backend = i + 1;
		if (!json_is_object(v))
			return fail(w, -1, "'backends[%zu]' must be an object",
				    i);
		if (parse_args(w, v, BIT(F_ADDR) | BIT(F_WEIGHT) |
			       BIT(F_STATE), BIT(F_ADDR) | BIT(F_WEIGHT),
			       &b) < 0 || add_backend(w, s, &b) < 0)
			return -1;
	}
	w->backend = 0;
	return 0;
}

static int op_service_del(struct model *m, struct where *w, const json_t *o)
{
	struct args a;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_NAME), BIT(F_NAME), &a) < 0)
		return -1;
	if (!model_find(m, a.name))
		return fail(w, F_NAME, "no service '%s'", a.name);
	return model_del(m, a.name) < 0 ? no_memory(w) : 0;
}

static int op_service_set(struct model *m, struct where *w, const json_t *o)
{
	union ip_addr vip;
	uint8_t family, proto;
	uint16_t port;
	char text[INET6_ADDRSTRLEN];
	struct service *s;
	struct args a;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_NAME) | SERVICE_FIELDS,
		       BIT(F_NAME), &a) < 0)
		return -1;
	if (!(a.present & SERVICE_FIELDS))
		return fail(w, -1, "nothing to change (vip, proto, port, mode, "
			    "table_size or gue_port)");
	s = edit(m, w, F_NAME, a.name);
	if (!s)
		return -1;
	vip = (a.present & BIT(F_VIP)) ? a.vip : s->vip;
	family = (a.present & BIT(F_VIP)) ? a.vip_family : s->family;
	proto = (a.present & BIT(F_PROTO)) ? a.proto : s->proto;
	port = (a.present & BIT(F_PORT)) ? a.port : s->port;
	if (family != s->family && s->n_backends > 0)
		return fail(w, F_VIP, "%s is IPv%d but the backends of service "
			    "'%s' are IPv%d", ip_addr_str(&vip, family, text,
							  sizeof(text)),
			    family == AF_INET ? 4 : 6, s->name,
			    s->family == AF_INET ? 4 : 6);
	if (vip_free(m, w, s, &vip, family, proto, port) < 0)
		return -1;
	model_move_vip(m, s, &vip, family, proto, port);
	if (a.present & BIT(F_MODE))
		s->mode = a.mode;
	if (a.present & BIT(F_TABLE_SIZE))
		s->table_size = a.table_size;
	if (a.present & BIT(F_GUE_PORT))
		s->gue_port = a.gue_port;
	return 0;
}

static struct backend *find_backend(const struct where *w,
				    const struct service *s,
				    const struct args *a)
{
	struct backend *b = service_backend_find(s, &a->addr);
	char text[INET6_ADDRSTRLEN];

	if (!b)
		fail(w, F_ADDR, "service '%s' has no backend %s", s->name,
		     ip_addr_str(&a->addr, a->addr_family, text,
				 sizeof(text)));
	return b;
}

static int op_backend_add(struct model *m, struct where *w, const json_t *o)
{
	struct service *s;
	struct args a;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_SERVICE) | BIT(F_ADDR) |
		       BIT(F_WEIGHT) | BIT(F_STATE), BIT(F_SERVICE) |
		       BIT(F_ADDR) | BIT(F_WEIGHT), &a) < 0)
		return -1;
	s = edit(m, w, F_SERVICE, a.service);
	return s ? add_backend(w, s, &a) : -1;
}

static int op_backend_del(struct model *m, struct where *w, const json_t *o)
{
	struct backend *b;
	struct service *s;
	struct args a;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_SERVICE) | BIT(F_ADDR),
		       BIT(F_SERVICE) | BIT(F_ADDR), &a) < 0)
		return -1;
	s = edit(m, w, F_SERVICE, a.service);
	if (!s)
		return -1;
	b = find_backend(w, s, &a);
	if (!b)
		return -1;
	service_backend_del(s, b);
	return 0;
}

static int op_backend_set(struct model *m, struct where *w, const json_t *o)
{
	struct backend *b;
	struct service *s;
	struct args a;

	if (parse_args(w, o, BIT(F_OP) | BIT(F_SERVICE) | BIT(F_ADDR) |
		       BIT(F_WEIGHT) | BIT(F_STATE), BIT(F_SERVICE) |
		       BIT(F_ADDR), &a) < 0)
		return -1;
	if (!(a.present & (BIT(F_WEIGHT) | BIT(F_STATE))))
		return fail(w, -1, "nothing to change (weight or state)");
	s = edit(m, w, F_SERVICE, a.service);
	if (!s)
		return -1;
	b = find_backend(w, s, &a);
	if (!b)
		return -1;
	if (a.present & BIT(F_WEIGHT))
		b->weight = a.weight;
	if (a.present & BIT(F_STATE))
		b->state = a.state;
	return 0;
}

static const struct {
	const char *name;
	int (*apply)(struct model *m, struct where *w, const json_t *o);
} ops_table[] = {
	{ "service_add", op_service_add },
	{ "service_del", op_service_del },
	{ "service_set", op_service_set },
	{ "backend_add", op_backend_add },
	{ "backend_del", op_backend_del },
	{ "backend_set", op_backend_set },
};

int change_apply(struct model *m, const json_t *ops, char *err, size_t len)
{
	struct where w = { .op = "?", .err = err, .len = len };
	size_t i, k;
	json_t *o;

	if (!json_is_array(ops)) {
		snprintf(err, len, "a change must be a JSON array of ops");
		return -1;
	}
	if (json_array_size(ops) == 0) {
		snprintf(err, len, "a change needs at least one op");
		return -1;
	}
	json_array_foreach(ops, i, o) {
		const char *name;

		w.index = i;
		w.op = "?";
		if (!json_is_object(o))
			return fail(&w, -1, "an op must be a JSON object");
		name = json_string_value(json_object_get(o, "op"));
		if (!name)
			return fail(&w, -1, "'op' is missing or not a string");
		for (k = 0; k < sizeof(ops_table) / sizeof(ops_table[0]); k++)
			if (strcmp(name, ops_table[k].name) == 0)
				break;
		if (k == sizeof(ops_table) / sizeof(ops_table[0]))
			return fail(&w, -1, "unknown op '%s' (service_add, "
				    "service_del, service_set, backend_add, "
				    "backend_del or backend_set)", name);
		w.op = ops_table[k].name;
		if (ops_table[k].apply(m, &w, o) < 0)
			return -1;
	}
	return 0;
}

json_t *change_parse(const char *text, char *err, size_t len)
{
	json_error_t e;
	json_t *ops;

	/* A key given twice would otherwise silently mean the last one. */
	ops = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	if (!ops) {
		snprintf(err, len, "the change is not valid JSON: %s (line %d, "
			 "column %d)", e.text, e.line, e.column);
		return NULL;
	}
	if (!json_is_array(ops)) {
		snprintf(err, len, "a change must be a JSON array of ops");
		json_decref(ops);
		return NULL;
	}
	return ops;
}
