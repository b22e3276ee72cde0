/* The dataplane's control socket: a UNIX socket on which the control
 * process (or an operator's script) reads the live state and counters and
 * applies a new state. It runs in a thread of its own, off the lcores:
 * building Maglev tables takes milliseconds, and waiting for the workers'
 * grace period must not hold up the exception path.
 *
 * Protocol, version 2: one JSON object per line each way, a request's
 * line followed by the payload it announces, if any (jsonline.h).
 *   {"cmd": "status"}  -> {"ok": true, "protocol": 2, "version": N,
 *                          "services": n, "workers": n, "ports": [...]}
 *   {"cmd": "state"}   -> {"ok": true, "version": N, "services": [...]}
 *   {"cmd": "digest"}  -> {"ok": true, "version": N, "digest": D}
 *                         (D hashed from the live tables: state_digest.h)
 *   {"cmd": "stats"}   -> {"ok": true, "stats": {...}}  (stats.h)
 *   {"cmd": "apply", "version": N, "services": [...], "approved": false,
 *    "digest": D, "expect": {"version": V, "digest": E}}
 *                      -> {"ok": true, "version": N, "changed": bool}
 *   {"cmd": "apply", ..., "changed": [...], "removed": [names], "expect":
 *    ...}              -> as above: a delta (fwd_delta.h)
 *   {"cmd": "apply", ..., "services" or "changed": "payload",
 *    "payload": N}     -> as above, the services sent being the N bytes
 *                         after the line, in binary (service_batch.h)
 * A refusal is {"ok": false, "error": "..."} and changes nothing. "digest"
 * (optional) is the control plane's digest of the services sent; the
 * dataplane keeps it with the version as a label, and an apply without
 * one clears it. "expect" (optional) makes the apply conditional: unless
 * the dataplane runs version V under digest E it is refused with "stale":
 * true, so that a control plane can push on what it last saw without
 * reading the whole state back, and without overwriting a state that
 * someone else put in meanwhile. The binary form is what fulcrumd sends:
 * the JSON of 10,000 services took seconds to make and parse, the binary
 * milliseconds; the JSON form stays for scripts and people (version 1
 * had only it). A delta sends, instead of "services",
 * the services changed since the expected state, whole, and the names of
 * those removed; it must be conditional, and the rest of the live state
 * stays as it is. An apply
 * that would empty the dataplane, or leave a live service with no backend
 * that takes new flows, is refused unless "approved" is true: a state
 * built from missing data must not reach a running balancer by accident.
 * "version" is the control plane's; the dataplane keeps it to say which
 * state it runs.
 *
 * An apply with "hold": true is prepared (checked, tables built) but not
 * made live: {"ok": true, "held": true, "version": N}. Then
 *   {"cmd": "publish", "digest": D}
 *                      -> as an apply's answer: the held update live,
 *                         labelled N and D
 *   {"cmd": "discard"} -> {"ok": true, "discarded": bool}
 * fulcrumd sends its change as it commits it and publishes once it is
 * durable: the dataplane builds the tables while the store writes. One
 * update is held at a time, and only for the connection that sent it,
 * whose end discards it; while one is, an apply is refused. */
#ifndef FULCRUM_CONTROL_H
#define FULCRUM_CONTROL_H

#include <stddef.h>

#include <jansson.h>

#define CONTROL_PROTOCOL 2
#define CONTROL_MAX_REQUEST (256u << 20)   /* bytes in one request line, and
					    * in one payload */

struct dataplane;

/* Binds path (mode 0660) and starts the thread. Returns 0 or -1 with err. */
int control_start(struct dataplane *dp, const char *path, char *err,
		  size_t err_len);
void control_stop(struct dataplane *dp);

/* Handles one request and the payload_len bytes of its payload; returns
 * the response (never NULL). Also what the tests call. */
json_t *control_handle(struct dataplane *dp, const json_t *request,
		       const void *payload, size_t payload_len);

/* Frees the update held, if any: at the end of the connection that sent
 * it, and at stop. */
void control_discard(struct dataplane *dp);

#endif
