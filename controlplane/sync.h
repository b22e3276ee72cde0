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
/* How long a change being committed waits for the dataplane to take it
 * (sync_prepare): the store's commit waits behind it, and a dataplane
 * busy with another client gets the change after the commit instead. */
#define SYNC_HOLD_SEND_MS 1000

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

/* A push sent, its answer not read yet. */
struct sync_pending {
	int fd;              /* -1: none sent */
	bool held;           /* held by the dataplane until published */
	uint64_t version;    /* what it labels the state with */
	char digest[STORE_DIGEST_LEN];
};

/* From store_commit_then's applied hook: sends the change being committed
 * as a delta to be held, if the dataplane runs the version before it, so
 * that the dataplane builds its tables while the store writes the change.
 * Sends nothing otherwise, or when it cannot (p->fd is then -1); the
 * sync_push that follows then pushes as it would have. */
void sync_prepare(struct sync *s, struct store *st, bool approved,
		  struct sync_pending *p);

/* From the durable hook: has the dataplane make what sync_prepare sent
 * live, labelled with the store's new version and digest. */
void sync_publish(struct store *st, struct sync_pending *p);

/* For a commit that failed after sync_prepare: the dataplane lets go of
 * what it holds. */
void sync_discard(struct sync_pending *p);

/* Pushes the store's state after a commit (unless held), or reads the
 * answers to sync_prepare's push and its publish (early; NULL for none). Returns 0, or -1 with err
 * (the dataplane keeps forwarding on what it had). */
int sync_push(struct sync *s, struct store *st, bool approved,
	      struct sync_pending *early, char *err, size_t err_len);

/* The dataplane's live services, or NULL with err. */
json_t *sync_live_state(struct sync *s, uint64_t *version, char *err,
			size_t err_len);

const char *sync_status_name(enum sync_status st);

#endif
