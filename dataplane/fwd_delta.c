#include "fwd_delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool named(const char **names, uint32_t n, const char *name)
{
	return bsearch(&name, names, n, sizeof(*names), by_text) != NULL;
}

int fwd_delta_untouched(const struct fwd_state *live,
			const struct service_config *changed,
			uint32_t n_changed, const char *const *removed,
			uint32_t n_removed, uint8_t *untouched,
			uint32_t *n_after, char *err, size_t err_len)
{
	const char **gone = calloc(n_removed + 1, sizeof(*gone));
	const char **fresh = calloc(n_changed + 1, sizeof(*fresh));
	uint32_t kept = 0, found = 0;
	int rc = -1;

	if (!gone || !fresh) {
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

		untouched[id] = 0;
		if (!svc)
			continue;
		if (named(gone, n_removed, svc->name))
			found++;
		else if (!named(fresh, n_changed, svc->name))
			untouched[id] = 1;
		kept += untouched[id];
	}
	if (found != n_removed) {
		snprintf(err, err_len, "%u of the %u services removed are not "
			 "live", n_removed - found, n_removed);
		goto out;
	}
	*n_after = kept + n_changed;
	rc = 0;
out:
	free(gone);
	free(fresh);
	return rc;
}
