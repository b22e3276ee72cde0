#include "fwd_delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_json.h"

static int by_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool named(const char **names, uint32_t n, const char *name)
{
	return bsearch(&name, names, n, sizeof(*names), by_text) != NULL;
}

/* A live service as the config it would have been built from; the slots
 * of removed backends are not backends. */
static int live_config(const struct service *svc, struct service_config *out)
{
	const struct service_table *t = service_table_get(svc);
	uint32_t n = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", svc->name);
	out->vip = svc->vip.addr;
	out->family = svc->vip.family;
	out->proto = svc->vip.proto;
	out->port = rte_be_to_cpu_16(svc->vip.port);
	out->mode = svc->mode;
	out->table_size = t->maglev_size;
	out->gue_port = rte_be_to_cpu_16(svc->gue_port);
	out->backends = calloc(t->n_backends + 1, sizeof(*out->backends));
	if (!out->backends)
		return -1;
	for (uint32_t i = 0; i < t->n_backends; i++) {
		const struct backend *b = &t->backends[i];

		if (b->state == BACKEND_REMOVED)
			continue;
		out->backends[n++] = (struct backend_config){
			.addr = b->addr, .family = b->family,
			.weight = b->weight, .state = b->state, .mac = b->mac,
		};
	}
	out->n_backends = n;
	return 0;
}

static int copy_config(const struct service_config *in,
		       struct service_config *out)
{
	*out = *in;
	out->backends = calloc(in->n_backends + 1, sizeof(*out->backends));
	if (!out->backends)
		return -1;
	memcpy(out->backends, in->backends,
	       in->n_backends * sizeof(*in->backends));
	return 0;
}

int fwd_delta_want(const struct fwd_state *live,
		   const struct service_config *changed, uint32_t n_changed,
		   const char *const *removed, uint32_t n_removed,
		   struct service_config **want, uint32_t *n, char *err,
		   size_t err_len)
{
	const char **gone = calloc(n_removed + 1, sizeof(*gone));
	const char **fresh = calloc(n_changed + 1, sizeof(*fresh));
	struct service_config *out = calloc(live->n_services + n_changed + 1,
					    sizeof(*out));
	uint32_t k = 0, found = 0;
	int rc = -1;

	if (!gone || !fresh || !out) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	memcpy(gone, removed, n_removed * sizeof(*gone));
	qsort(gone, n_removed, sizeof(*gone), by_text);
	for (uint32_t i = 0; i < n_changed; i++)
		fresh[i] = changed[i].name;
	qsort(fresh, n_changed, sizeof(*fresh), by_text);
	for (uint32_t i = 0; i < n_removed; i++) {
		if ((i > 0 && strcmp(gone[i - 1], gone[i]) == 0) ||
		    named(fresh, n_changed, gone[i])) {
			snprintf(err, err_len, "service %s is removed twice, or "
				 "removed and changed at once", gone[i]);
			goto out;
		}
	}
	for (uint32_t id = 0; id < live->capacity; id++) {
		const struct service *svc = live->services[id];

		if (!svc)
			continue;
		if (named(gone, n_removed, svc->name)) {
			found++;
			continue;
		}
		if (named(fresh, n_changed, svc->name))
			continue;
		if (live_config(svc, &out[k]) < 0) {
			snprintf(err, err_len, "out of memory");
			goto out;
		}
		k++;
	}
	if (found != n_removed) {
		snprintf(err, err_len, "%u of the %u services removed are not "
			 "live", n_removed - found, n_removed);
		goto out;
	}
	for (uint32_t i = 0; i < n_changed; i++, k++) {
		if (copy_config(&changed[i], &out[k]) < 0) {
			snprintf(err, err_len, "out of memory");
			goto out;
		}
	}
	*want = out;
	*n = k;
	out = NULL;
	rc = 0;
out:
	if (out)
		state_json_free(out, k);
	free(gone);
	free(fresh);
	return rc;
}
