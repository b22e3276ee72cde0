/* Keeping the dataplane on the store's state. The dataplane is never
 * handed a state blindly: before pushing, fulcrumd reads what the
 * dataplane runs (its version and a digest of its services) and pushes
 * only when the store is the newer of the two. After a push or a check
 * that found it in sync, the next push instead goes on condition that the
 * dataplane still runs that version under that digest, which the
 * dataplane checks as it applies; refused, fulcrumd reads the state as
 * above. The periodic reconcile always reads it. When the dataplane is ahead
 * of the store, or runs the same version with other contents, the store
 * has lost or diverged from what is live: fulcrumd holds, says so, and
 * waits for an operator (`fulcrumctl adopt` takes the live state in). */
#ifndef FULCRUM_SYNC_H
#define FULCRUM_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define SYNC_MAX_RESPONSE (256u << 20)

enum sync_status {
	SYNC_UNKNOWN,        /* not reached yet */
	SYNC_UNREACHABLE,    /* no answer; it forwards on its last tables */
	SYNC_IN_SYNC,
	SYNC_BEHIND,         /* older than the store: a push will fix it */
	SYNC_HOLD,           /* diverged: pushing could lose state; held */
};

struct sync {
	const char *socket;
	enum sync_status status;
	uint64_t dp_version;
	char dp_digest[STORE_DIGEST_LEN];
	char note[1024];     /* what the last reconcile found, for status */
};

/* The digest the store would have for these services. 0, or -1 with err
 * when they are not a valid state. */
int sync_digest(const json_t *services, char out[STORE_DIGEST_LEN], char *err,
		size_t err_len);

/* Reads the dataplane and compares it with the store; pushes when the
 * dataplane is merely behind. */
void sync_reconcile(struct sync *s, struct store *st);

/* Pushes the store's state after a commit (unless held). Returns 0, or -1
 * with err (the dataplane keeps forwarding on what it had). */
int sync_push(struct sync *s, struct store *st, bool approved, char *err,
	      size_t err_len);

/* The dataplane's live services, or NULL with err. */
json_t *sync_live_state(struct sync *s, uint64_t *version, char *err,
			size_t err_len);

const char *sync_status_name(enum sync_status st);

#endif
