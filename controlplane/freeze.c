#include "freeze.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "jsonline.h"

int freeze_load(const char *path, struct freeze *f, char *err, size_t len)
{
	json_error_t je;
	json_t *j;
	const char *by = "", *reason = "";
	json_int_t since = 0;

	memset(f, 0, sizeof(*f));
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	f->on = true;
	j = json_load_file(path, 0, &je);
	if (!j || json_unpack(j, "{s?s, s?s, s?I}", "by", &by, "reason",
			      &reason, "since_ms", &since) < 0) {
		snprintf(err, len, "freeze file %s is unreadable (%s); staying "
			 "frozen", path, j ? "wrong fields" : je.text);
		snprintf(f->reason, sizeof(f->reason), "unreadable freeze file");
		json_decref(j);
		return -1;
	}
	snprintf(f->by, sizeof(f->by), "%s", by);
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
	f->since_ms = since;
	json_decref(j);
	return 0;
}

int freeze_set(const char *path, struct freeze *f, bool on, const char *by,
	       const char *reason, char *err, size_t len)
{
	char tmp[4096];
	struct timeval tv;
	json_t *j;
	int rc;

	if (!on) {
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, len, "%s: %s", path, strerror(errno));
			return -1;
		}
		memset(f, 0, sizeof(*f));
		return 0;
	}
	gettimeofday(&tv, NULL);
	f->on = true;
	snprintf(f->by, sizeof(f->by), "%s", by);
	snprintf(f->reason, sizeof(f->reason), "%s", reason ? reason : "");
	f->since_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	jsonline_make_parent(path);
	j = freeze_json(f);
	/* a rename, so that a crash leaves the old file or the new one */
	rc = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	if (rc < 0 || rename(tmp, path) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

json_t *freeze_json(const struct freeze *f)
{
	if (!f->on)
		return json_pack("{s:b}", "frozen", 0);
	return json_pack("{s:b, s:s, s:s, s:I}", "frozen", 1, "by", f->by,
			 "reason", f->reason, "since_ms", (json_int_t)f->since_ms);
}
