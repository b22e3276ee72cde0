/* The management protocol fulcrumctl speaks to fulcrumd, version 1: one
 * JSON object per line each way over a UNIX socket. Every response has
 * "ok"; a refusal has "error" and changes nothing.
 *
 *   status                      versions, digests, the dataplane's sync,
 *                               "health": {"backends", "up", "down",
 *                               "unknown", "fail_open": [services]}
 *   state [name]                the services (or one)
 *   history [from] [limit]      the change log
 *   diff from [to]              the ops between two versions
 *   stats                       the dataplane's counters
 *   health [name]               every backend's active health checks (or
 *                               one service's): {"interval_ms",
 *                               "timeout_ms", "rise", "fall", "flap":
 *                               {"max", "window_s", "hold_s"}, "services":
 *                               [{"name", "port" (null: not checked),
 *                               "check" (tcp, http, udp), "slow_start_s",
 *                               "on_backend_down" (keep, reset),
 *                               "fail_open", "backends": [{"addr", "state",
 *                               "health" (up, down or unknown),
 *                               "down_by_health", "passes", "fails",
 *                               ["error"], "held", "flaps", "slow_start_to"
 *                               (the full weight, null: no ramp),
 *                               "drain_deadline_s" (null: none)}]}]};
 *                               health.h
 *   change ops env reason [approved] [drain_deadline_s]
 *                               commit ops (change.h); with a deadline
 *                               (1..604800 s), ops that set backends
 *                               draining alone, which are set down then
 *   apply services env reason [dry_run] [approved]
 *                               make the whole state `services`
 *   adopt env reason            take the dataplane's live state in
 *   freeze env reason           stop every change until unfreeze
 *   unfreeze env reason
 *   plan env reason (ops | services | restore_to [replay_after])
 *                               keep a change under an id with its risk
 *   approve env id              record the requester's approval
 *   execute env id              carry a plan out, if nothing moved since
 *   plans [id]                  the plans, or one
 *
 * Each command needs a role (access.h); every decision, allowed or
 * refused, is appended to the audit log. While frozen, every change is
 * refused, health-driven ones included.
 *
 * Mutating requests must name the environment they mean ("env"); one
 * meant for another environment is refused. The peer's uid (SO_PEERCRED)
 * is logged with every change. */
#ifndef FULCRUM_MGMT_H
#define FULCRUM_MGMT_H

#include <sys/types.h>

#include <jansson.h>

#include "daemon_config.h"
#include "health.h"
#include "freeze.h"
#include "plans.h"
#include "store.h"
#include "sync.h"

#define MGMT_PROTOCOL 1
#define MGMT_MAX_REQUEST (256u << 20)

struct fulcrumd {
	struct daemon_config cfg;
	struct store *store;
	struct sync sync;
	struct freeze freeze;
	struct health *health;       /* NULL: no checks run */
	struct plans_kept kept_plan;
	json_t *spent;               /* mgmt_free_later's, or NULL */
};

struct peer {
	uid_t uid;
	gid_t gid;
	char user[64];
};

/* Commits ops with meta and pushes the result to the dataplane: the one
 * path of every change, an operator's or the health checker's. Refused,
 * with nothing changed, while frozen, or when unapproved ops go past the
 * blast-radius guard (plan.h). Automatic changes meet the guard too: a
 * health event that would take more than the allowed share of a service
 * is held and reported, not applied (health.h retries it). Returns the
 * response a "change" gets. */
json_t *mgmt_commit(struct fulcrumd *d, const struct change_meta *meta,
		    const json_t *ops, bool approved);

/* {"ok": false, "error": text}: the shape of every refusal. */
json_t *mgmt_refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handles one request; never returns NULL. */
json_t *mgmt_handle(struct fulcrumd *d, const struct peer *peer,
		    const json_t *req);

/* Takes j's reference, to be let go once the response is sent
 * (mgmt_free_spent): the ops of a restore take a tenth of a second to
 * free, which the client need not wait for. */
void mgmt_free_later(struct fulcrumd *d, json_t *j);
/* Lets go of what mgmt_free_later took: after each response. */
void mgmt_free_spent(struct fulcrumd *d);

#endif
