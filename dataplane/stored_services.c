#include "stored_services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"
#include "service_batch.h"
#include "state_json.h"

/* What the tables cannot take, which the JSON of an apply is refused
 * for too (state_json.c): NULL when s takes it all. */
static const char *unfit(const struct store_service *ss, int mode)
{
	if (!ss->name[0] || strlen(ss->name) >= CONFIG_NAME_LEN)
		return "a name empty or too long";
	if (mode > FWD_GUE)
		return "a mode this dataplane does not know";
	if (ss->n_backends > CONFIG_MAX_BACKENDS)
		return "more backends than a service may have";
	if (!maglev_size_is_valid(ss->table_size))
		return "a table_size that is not a prime it takes";
	if (ip_addr_is_zero(&ss->vip) || ss->gue_port == 0)
		return "a zero VIP or GUE port";
	for (uint32_t j = 0; j < ss->n_backends; j++)
		if (ip_addr_is_zero(&ss->backends[j].addr) ||
		    ss->backends[j].weight == 0)
			return "a backend of address or weight zero";
	return NULL;
}

int stored_services_take(const struct store_service *ss, size_t i, void *arg)
{
	struct stored_services *fs = arg;
	struct service_config *sc;
	const char *why;
	int m;

	if (i == 0) {
		fs->want = calloc(fs->n + 1, sizeof(*fs->want));
		if (!fs->want)
			goto nomem;
	}
	sc = &fs->want[i];
	for (m = FWD_L2DSR; m <= FWD_GUE; m++)
		if (strcmp(ss->mode, fwd_mode_name(m)) == 0)
			break;
	why = unfit(ss, m);
	if (why) {
		snprintf(fs->err, fs->err_len, "service %.*s: %s",
			 CONFIG_NAME_LEN, ss->name, why);
		return -1;
	}
	snprintf(sc->name, sizeof(sc->name), "%s", ss->name);
	sc->vip = ss->vip;
	sc->family = ss->family;
	sc->proto = ss->proto;
	sc->port = ss->port;
	sc->mode = (enum fwd_mode)m;
	sc->table_size = ss->table_size;
	sc->gue_port = ss->gue_port;
	sc->backends = calloc(ss->n_backends + 1, sizeof(*sc->backends));
	if (!sc->backends)
		goto nomem;
	for (uint32_t j = 0; j < ss->n_backends; j++) {
		struct backend_config *bc = &sc->backends[j];
		const struct store_backend *sb = &ss->backends[j];

		bc->addr = sb->addr;
		bc->family = ss->family;
		bc->weight = sb->weight;
		for (bc->state = BACKEND_ACTIVE; bc->state < BACKEND_REMOVED;
		     bc->state++)
			if (strcmp(sb->state, fwd_backend_state_name(bc->state)) == 0)
				break;
		if (bc->state == BACKEND_REMOVED) {
			snprintf(fs->err, fs->err_len, "service %s: backend "
				 "state '%s'", ss->name, sb->state);
			return -1;
		}
	}
	sc->n_backends = ss->n_backends;
	return 0;
nomem:
	snprintf(fs->err, fs->err_len, "out of memory");
	return -1;
}

int stored_services_read_batch(const void *buf, size_t len,
			       struct service_config **out, uint32_t *n,
			       char *err, size_t err_len)
{
	struct stored_services fs = { .err = err, .err_len = err_len };

	*out = NULL;
	*n = 0;
	if (service_batch_read(buf, len, &fs.n, stored_services_take, &fs, err,
			       err_len) < 0 || fs.n > UINT32_MAX) {
		state_json_free(fs.want, (uint32_t)fs.n);
		return -1;
	}
	/* an empty batch is an empty state, not a missing one */
	*out = fs.want ? fs.want : calloc(1, sizeof(**out));
	*n = (uint32_t)fs.n;
	if (!*out) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	return 0;
}
