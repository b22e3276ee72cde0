#include "service_diff.h"

#include <netinet/in.h>
#include <string.h>

static int add(json_t *ops, json_t *op)
{
	return op ? json_array_append_new(ops, op) : -1;
}

/* The strings a service's backend ops repeat, made once and shared by
 * them all (json_incref): a restore of ten thousand services writes a
 * hundred thousand ops, and each string would be an allocation. */
struct op_words {
	json_t *kind[3];               /* backend_del, backend_add, backend_set */
	json_t *state[BACKEND_STATE_COUNT];
	json_t *service;
};

enum { OP_DEL, OP_ADD, OP_SET };

static const char *const op_kind[] = { "backend_del", "backend_add",
				       "backend_set" };

static json_t *word(json_t **slot, const char *text)
{
	if (!*slot)
		*slot = json_string_nocheck(text);
	return json_incref(*slot);
}

static void op_words_free(struct op_words *w)
{
	for (size_t i = 0; i < 3; i++)
		json_decref(w->kind[i]);
	for (size_t i = 0; i < BACKEND_STATE_COUNT; i++)
		json_decref(w->state[i]);
	json_decref(w->service);
}

static json_t *backend_op(struct op_words *w, int kind, const struct service *s,
			  const struct backend *b, bool with_fields)
{
	char addr[INET6_ADDRSTRLEN];
	json_t *op = json_object();

	if (!op ||
	    json_object_set_new_nocheck(op, "op", word(&w->kind[kind],
						       op_kind[kind])) < 0 ||
	    json_object_set_new_nocheck(op, "service", word(&w->service,
							    s->name)) < 0 ||
	    json_object_set_new_nocheck(op, "addr", json_string_nocheck(
		ip_addr_str(&b->addr, s->family, addr, sizeof(addr)))) < 0 ||
	    (with_fields &&
	     (json_object_set_new_nocheck(op, "weight",
					  json_integer(b->weight)) < 0 ||
	      json_object_set_new_nocheck(op, "state", word(
		&w->state[b->state], backend_state_name(b->state))) < 0))) {
		json_decref(op);
		return NULL;
	}
	return op;
}

static json_t *service_set(const struct service *from,
			   const struct service *to)
{
	json_t *set = json_pack("{s:s, s:s}", "op", "service_set", "name",
				to->name);
	char vip[INET6_ADDRSTRLEN];
	int rc = set ? 0 : -1;

	if (rc == 0 && (from->family != to->family ||
			!ip_addr_eq(&from->vip, &to->vip)))
		rc = json_object_set_new(set, "vip", json_string(ip_addr_str(
			&to->vip, to->family, vip, sizeof(vip))));
	if (rc == 0 && from->proto != to->proto)
		rc = json_object_set_new(set, "proto", json_string(
			to->proto == IPPROTO_TCP ? "tcp" : "udp"));
	if (rc == 0 && from->port != to->port)
		rc = json_object_set_new(set, "port", json_integer(to->port));
	if (rc == 0 && from->mode != to->mode)
		rc = json_object_set_new(set, "mode", json_string(
			service_mode_name(to->mode)));
	if (rc == 0 && from->table_size != to->table_size)
		rc = json_object_set_new(set, "table_size",
					 json_integer(to->table_size));
	if (rc == 0 && from->gue_port != to->gue_port)
		rc = json_object_set_new(set, "gue_port",
					 json_integer(to->gue_port));
	if (rc < 0) {
		json_decref(set);
		return NULL;
	}
	return set;
}

struct backend_ops {
	const struct service *from, *to;
	json_t *ops;
	struct op_words words;
};

static int backend_pair(const struct backend *a, const struct backend *b,
			void *arg)
{
	struct backend_ops *w = arg;

	if (!b)
		return add(w->ops, backend_op(&w->words, OP_DEL, w->from, a,
					      false));
	if (!a)
		return add(w->ops, backend_op(&w->words, OP_ADD, w->to, b, true));
	if (a->weight != b->weight || a->state != b->state)
		return add(w->ops, backend_op(&w->words, OP_SET, w->to, b, true));
	return 0;
}

int service_diff(const struct service *from, const struct service *to,
		 json_t *ops)
{
	struct backend_ops w = { .from = from, .to = to, .ops = ops };
	json_t *op;
	int rc;

	if (!to)
		return !from ? 0 : add(ops, json_pack("{s:s, s:s}", "op",
						      "service_del", "name",
						      from->name));
	if (!from) {
		op = model_service_to_json(to);
		if (op && json_object_set_new(op, "op",
					      json_string("service_add")) < 0) {
			json_decref(op);
			op = NULL;
		}
		return add(ops, op);
	}
	/* most services a restore puts back differ in backends only */
	if (!service_same_fields(from, to)) {
		op = service_set(from, to);
		if (!op || add(ops, op) < 0)
			return -1;
	}
	rc = service_backends_merge(from, to, backend_pair, &w);
	op_words_free(&w.words);
	return rc;
}

bool service_loses_active(const struct service *from,
			  const struct service *to)
{
	uint32_t j = 0;

	/* both lists are in address order: one walk */
	for (uint32_t i = 0; from && i < from->n_backends; i++) {
		const struct backend *a = &from->backends[i];
		int c = 1;

		if (a->state != BACKEND_ACTIVE)
			continue;
		while (to && j < to->n_backends &&
		       (c = memcmp(to->backends[j].addr.v6, a->addr.v6, 16)) < 0)
			j++;
		if (!to || c != 0 || to->backends[j].state != BACKEND_ACTIVE)
			return true;
	}
	return false;
}
