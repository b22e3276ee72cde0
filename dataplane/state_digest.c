#include "state_digest.h"

#include <stdio.h>
#include <stdlib.h>

#include <rte_byteorder.h>

#include "maglev.h"
#include "state_json.h"

int state_digest(const struct fwd_state *s, char out[STORE_DIGEST_LEN],
		 char *err, size_t err_len)
{
	struct store_service *v = calloc(s->capacity + 1, sizeof(*v));
	struct store_backend *b = NULL;
	size_t n = 0, n_backends = 0, used = 0;
	int rc = -1;

	for (uint32_t i = 0; v && i < s->capacity; i++)
		if (s->services[i])
			n_backends += service_table_get(s->services[i])->n_backends;
	if (v)
		b = calloc(n_backends + 1, sizeof(*b));
	if (!v || !b) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < s->capacity; i++) {
		const struct service *svc = s->services[i];
		const struct service_table *t;

		if (!svc)
			continue;
		t = service_table_get(svc);
		v[n] = (struct store_service){
			.name = svc->name, .vip = svc->vip.addr,
			.family = svc->vip.family, .proto = svc->vip.proto,
			.port = rte_be_to_cpu_16(svc->vip.port),
			.mode = fwd_mode_name(svc->mode),
			.table_size = t->maglev_size,
			.gue_port = rte_be_to_cpu_16(svc->gue_port),
			.backends = &b[used],
		};
		for (uint32_t j = 0; j < t->n_backends; j++) {
			if (t->backends[j].state == BACKEND_REMOVED)
				continue;
			b[used++] = (struct store_backend){
				.addr = t->backends[j].addr,
				.weight = (uint16_t)t->backends[j].weight,
				.state = fwd_backend_state_name(t->backends[j].state),
			};
			v[n].n_backends++;
		}
		n++;
	}
	rc = store_services_digest(v, n, out, err, err_len);
out:
	free(v);
	free(b);
	return rc;
}
