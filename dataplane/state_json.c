#include "state_json.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"

#define N_MODES 3
#define DEFAULT_GUE_PORT 6080

static const char *const state_names[] = {
	[BACKEND_ACTIVE] = "active",
	[BACKEND_DRAINING] = "draining",
	[BACKEND_DOWN] = "down",
	[BACKEND_REMOVED] = "removed",
};

const char *fwd_backend_state_name(enum backend_state st)
{
	return (unsigned int)st < RTE_DIM(state_names) ? state_names[st] : "?";
}

static int parse_backend(const json_t *j, const char *svc,
			 const struct service_config *sc,
			 struct backend_config *b, char *err, size_t err_len)
{
	const char *addr, *state = "active";
	json_int_t weight = 1;
	json_error_t je;

	memset(b, 0, sizeof(*b));
	if (json_unpack_ex((json_t *)j, &je, JSON_STRICT, "{s:s, s?I, s?s}",
			   "addr", &addr, "weight", &weight, "state", &state) < 0) {
		snprintf(err, err_len, "service %s: backend: %s", svc, je.text);
		return -1;
	}
	if (ip_addr_parse(addr, &b->addr, &b->family) < 0 ||
	    ip_addr_is_zero(&b->addr)) {
		snprintf(err, err_len, "service %s: backend '%s' is not an IP "
			 "address", svc, addr);
		return -1;
	}
	if (b->family != sc->family && sc->mode != FWD_GUE) {
		snprintf(err, err_len, "service %s: backend %s is not of the "
			 "VIP's address family", svc, addr);
		return -1;
	}
	if (weight < 1 || weight > 65535) {
		snprintf(err, err_len, "service %s: backend %s: weight %lld is "
			 "outside 1..65535", svc, addr, (long long)weight);
		return -1;
	}
	b->weight = (uint32_t)weight;
	for (b->state = BACKEND_ACTIVE; b->state < BACKEND_REMOVED; b->state++)
		if (strcmp(state, state_names[b->state]) == 0)
			return 0;
	snprintf(err, err_len, "service %s: backend %s: unknown state '%s' "
		 "(active, draining, down)", svc, addr, state);
	return -1;
}

static int parse_service(const json_t *j, struct service_config *sc,
			 char *err, size_t err_len)
{
	const char *name, *vip, *proto, *mode;
	json_int_t port = 0, table_size = MAGLEV_DEFAULT_SIZE;
	json_int_t gue_port = DEFAULT_GUE_PORT;
	json_t *backends = NULL;
	json_error_t je;
	size_t i;
	int m;

	memset(sc, 0, sizeof(*sc));
	if (json_unpack_ex((json_t *)j, &je, JSON_STRICT,
			   "{s:s, s:s, s:s, s?I, s:s, s?I, s?I, s?o}",
			   "name", &name, "vip", &vip, "proto", &proto,
			   "port", &port, "mode", &mode, "table_size",
			   &table_size, "gue_port", &gue_port, "backends",
			   &backends) < 0) {
		snprintf(err, err_len, "service: %s", je.text);
		return -1;
	}
	if (strlen(name) == 0 || strlen(name) >= sizeof(sc->name)) {
		snprintf(err, err_len, "service name '%s' is empty or longer "
			 "than %zu characters", name, sizeof(sc->name) - 1);
		return -1;
	}
	snprintf(sc->name, sizeof(sc->name), "%s", name);
	if (ip_addr_parse(vip, &sc->vip, &sc->family) < 0 ||
	    ip_addr_is_zero(&sc->vip)) {
		snprintf(err, err_len, "service %s: VIP '%s' is not an IP "
			 "address", name, vip);
		return -1;
	}
	if (strcmp(proto, "tcp") == 0)
		sc->proto = IPPROTO_TCP;
	else if (strcmp(proto, "udp") == 0)
		sc->proto = IPPROTO_UDP;
	else {
		snprintf(err, err_len, "service %s: proto '%s' is neither tcp "
			 "nor udp", name, proto);
		return -1;
	}
	for (m = 0; m < N_MODES && strcmp(mode, fwd_mode_name(m)) != 0; m++)
		;
	if (m == N_MODES) {
		snprintf(err, err_len, "service %s: unknown mode '%s' (l2dsr, "
			 "ipip, gue)", name, mode);
		return -1;
	}
	sc->mode = (enum fwd_mode)m;
	if (port < 0 || port > 65535 || gue_port < 1 || gue_port > 65535) {
		snprintf(err, err_len, "service %s: port or gue_port outside "
			 "0..65535", name);
		return -1;
	}
	sc->port = (uint16_t)port;
	sc->gue_port = (uint16_t)gue_port;
	if (table_size < 0 || table_size > UINT32_MAX ||
	    !maglev_size_is_valid((uint32_t)table_size)) {
		snprintf(err, err_len, "service %s: table_size %lld is not a "
			 "prime up to %u", name, (long long)table_size,
			 MAGLEV_MAX_SIZE);
		return -1;
	}
	sc->table_size = (uint32_t)table_size;
	if (backends && !json_is_array(backends)) {
		snprintf(err, err_len, "service %s: backends is not an array",
			 name);
		return -1;
	}
	if (json_array_size(backends) > CONFIG_MAX_BACKENDS) {
		snprintf(err, err_len, "service %s: more than %d backends", name,
			 CONFIG_MAX_BACKENDS);
		return -1;
	}
	sc->backends = calloc(json_array_size(backends) + 1,
			      sizeof(*sc->backends));
	if (!sc->backends) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	for (i = 0; i < json_array_size(backends); i++) {
		if (parse_backend(json_array_get(backends, i), name, sc,
				  &sc->backends[i], err, err_len) < 0)
			return -1;
		sc->n_backends++;
	}
	return 0;
}

int state_json_parse(const json_t *services, struct service_config **out,
		     uint32_t *n, char *err, size_t err_len)
{
	size_t count = json_array_size(services);
	struct service_config *s;

	*out = NULL;
	*n = 0;
	if (!json_is_array(services)) {
		snprintf(err, err_len, "services is not an array");
		return -1;
	}
	s = calloc(count + 1, sizeof(*s));
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (parse_service(json_array_get(services, i), &s[i], err,
				  err_len) < 0) {
			state_json_free(s, (uint32_t)i + 1);
			return -1;
		}
	}
	*out = s;
	*n = (uint32_t)count;
	return 0;
}

void state_json_free(struct service_config *s, uint32_t n)
{
	for (uint32_t i = 0; s && i < n; i++)
		free(s[i].backends);
	free(s);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct service *const *)a)->name,
		      (*(const struct service *const *)b)->name);
}

static int by_addr(const void *a, const void *b)
{
	return memcmp((*(const struct backend *const *)a)->addr.v6,
		      (*(const struct backend *const *)b)->addr.v6, 16);
}

static json_t *dump_service(const struct service *svc)
{
	const struct service_table *t = service_table_get(svc);
	const struct backend **order = calloc(t->n_backends + 1, sizeof(*order));
	json_t *backends = json_array();
	char text[INET6_ADDRSTRLEN];
	uint32_t n = 0;

	for (uint32_t i = 0; order && i < t->n_backends; i++)
		if (t->backends[i].state != BACKEND_REMOVED)
			order[n++] = &t->backends[i];
	qsort(order, n, sizeof(*order), by_addr);
	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(backends, json_pack(
			"{s:s, s:i, s:s}", "addr",
			ip_addr_str(&order[i]->addr, order[i]->family, text,
				    sizeof(text)),
			"weight", (json_int_t)order[i]->weight, "state",
			fwd_backend_state_name(order[i]->state)));
	free(order);
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:i, s:o}",
			 "name", svc->name, "vip",
			 ip_addr_str(&svc->vip.addr, svc->vip.family, text,
				     sizeof(text)),
			 "proto", svc->vip.proto == IPPROTO_TCP ? "tcp" : "udp",
			 "port", (json_int_t)rte_be_to_cpu_16(svc->vip.port),
			 "mode", fwd_mode_name(svc->mode),
			 "table_size", (json_int_t)t->maglev_size,
			 "gue_port", (json_int_t)rte_be_to_cpu_16(svc->gue_port),
			 "backends", backends);
}

json_t *state_json_dump(const struct fwd_state *s)
{
	const struct service **order = calloc(s->capacity + 1, sizeof(*order));
	json_t *out = json_array();
	uint32_t n = 0;

	for (uint32_t i = 0; order && i < s->capacity; i++)
		if (s->services[i])
			order[n++] = s->services[i];
	qsort(order, n, sizeof(*order), by_name);
	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(out, dump_service(order[i]));
	free(order);
	return out;
}
