#include "access.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_GROUPS 256

const char *role_name(enum role r)
{
	static const char *const names[] = {
		[ROLE_NONE] = "none", [ROLE_VIEWER] = "viewer",
		[ROLE_OPERATOR] = "operator", [ROLE_ADMIN] = "admin",
	};

	return names[r];
}

/* Whether p is named in list: "alice, @netops, bob". */
static bool listed(const char *list, const struct peer *p)
{
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS;
	char copy[DAEMON_TEXT_LEN], *tok, *save;

	if (getgrouplist(p->user, p->gid, groups, &n) < 0)
		n = 0;
	snprintf(copy, sizeof(copy), "%s", list);
	for (tok = strtok_r(copy, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (tok[0] != '@') {
			if (strcmp(tok, p->user) == 0)
				return true;
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct group *g = getgrgid(groups[i]);

			if (g && strcmp(g->gr_name, tok + 1) == 0)
				return true;
		}
		if (n == 0) {
			struct group *g = getgrgid(p->gid);

			if (g && strcmp(g->gr_name, tok + 1) == 0)
				return true;
		}
	}
	return false;
}

enum role access_role(const struct daemon_config *cfg, const struct peer *p)
{
	if (!cfg->admins[0] && !cfg->operators[0] && !cfg->viewers[0])
		return p->uid == 0 ? ROLE_ADMIN : ROLE_NONE;
	if (listed(cfg->admins, p))
		return ROLE_ADMIN;
	if (listed(cfg->operators, p))
		return ROLE_OPERATOR;
	if (listed(cfg->viewers, p))
		return ROLE_VIEWER;
	return ROLE_NONE;
}

enum role access_needed(const char *cmd, const json_t *req)
{
	static const char *const admin[] = { "adopt", "freeze", "unfreeze" };
	static const char *const operator[] = {
		"change", "apply", "plan", "approve", "execute",
	};

	for (size_t i = 0; i < sizeof(admin) / sizeof(*admin); i++)
		if (strcmp(cmd, admin[i]) == 0)
			return ROLE_ADMIN;
	for (size_t i = 0; i < sizeof(operator) / sizeof(*operator); i++)
		if (strcmp(cmd, operator[i]) == 0)
			return json_is_true(json_object_get(req, "dry_run")) ?
				       ROLE_VIEWER : ROLE_OPERATOR;
	return ROLE_VIEWER;
}

void access_audit(const struct daemon_config *cfg, const struct peer *p,
		  enum role r, const json_t *req, const json_t *resp)
{
	struct timeval tv;
	json_t *line;
	char *text;
	int fd;

	if (!cfg->audit_log[0])
		return;
	gettimeofday(&tv, NULL);
	line = json_pack("{s:I, s:i, s:s, s:s, s:O?, s:O?, s:O?, s:b, s:O?, s:O?}",
			 "time_ms", (json_int_t)tv.tv_sec * 1000 + tv.tv_usec / 1000,
			 "uid", (int)p->uid, "user", p->user, "role", role_name(r),
			 "cmd", json_object_get(req, "cmd"),
			 "env", json_object_get(req, "env"),
			 "reason", json_object_get(req, "reason"),
			 "allowed", json_is_true(json_object_get(resp, "ok")),
			 "version", json_object_get(resp, "version"),
			 "error", json_object_get(resp, "error"));
	text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!text)
		return;
	/* O_APPEND: one write per line, so concurrent readers never see a
	 * torn entry; fsync: an audit entry that can be lost is no audit */
	fd = open(cfg->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd >= 0) {
		size_t len = strlen(text);

		text[len] = '\n';
		if (write(fd, text, len + 1) != (ssize_t)(len + 1))
			fprintf(stderr, "fulcrumd: audit log %s: short write\n",
				cfg->audit_log);
		fdatasync(fd);
		close(fd);
	} else {
		fprintf(stderr, "fulcrumd: cannot open audit log %s\n",
			cfg->audit_log);
	}
	free(text);
}
