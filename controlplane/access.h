/* Who may do what through the management socket, and the audit log of
 * every decision. A peer is known by its uid and gid from SO_PEERCRED; its
 * role comes from fulcrumd's config:
 *
 *   admins = root, @fulcrum-admin      ; user names or @groups
 *   operators = alice, @netops
 *   viewers = @monitoring
 *
 * An unknown peer gets nothing. With no lists at all, root alone is admin.
 * viewer: status, state, history, diff, stats, plans, dry runs; operator:
 * also change, apply, plan, approve and execute; admin: also adopt, freeze
 * and unfreeze. */
#ifndef FULCRUM_ACCESS_H
#define FULCRUM_ACCESS_H

#include <stdbool.h>

#include <jansson.h>

#include "daemon_config.h"
#include "mgmt.h"

enum role { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN };

const char *role_name(enum role r);

enum role access_role(const struct daemon_config *cfg, const struct peer *p);

/* The least role a request needs. */
enum role access_needed(const char *cmd, const json_t *req);

/* Appends one JSON line to the audit log (cfg->audit_log; none if empty):
 * time, peer, role, command, allowed or not, and what came of it. */
void access_audit(const struct daemon_config *cfg, const struct peer *p,
		  enum role r, const json_t *req, const json_t *resp);

#endif
