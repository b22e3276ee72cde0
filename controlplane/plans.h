/* Plans: a wide or destructive change made in two steps. `plan` computes
 * the ops against the current version and their risk (plan_risk) and keeps
 * them under an id; `approve` records who agreed; `execute` commits them
 * only if the state has not moved since. In production a high-risk plan
 * needs an approver other than its author. Each plan is a JSON file in
 * the plans directory, so plans outlive fulcrumd.
 *
 * A plan can also restore the state of an earlier version, and with
 * replay_after merge back the changes logged since that version that do
 * not touch anything the restore brings back. */
#ifndef FULCRUM_PLANS_H
#define FULCRUM_PLANS_H

#include <jansson.h>

struct fulcrumd;
struct peer;

/* The ops of the plan made last, kept in memory until it is carried out
 * or another is made: read back from their file, a restore's 95,000 ops
 * take half a second. They stand in for the file only while it holds
 * the very bytes written, which a SHA-256 of what it holds tells. */
struct plans_kept {
	long long id;                /* 0: none kept */
	json_t *ops;
	unsigned char sha256[32];
};

json_t *plans_make(struct fulcrumd *d, const struct peer *peer,
		   const json_t *req);
json_t *plans_approve(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req);
json_t *plans_execute(struct fulcrumd *d, const struct peer *peer,
		      const json_t *req);
json_t *plans_list(struct fulcrumd *d, const json_t *req);
/* Lets go of the kept ops (for a fulcrumd that stops). */
void plans_forget(struct fulcrumd *d);

#endif
