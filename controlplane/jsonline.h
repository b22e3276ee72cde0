/* JSON objects, one per line, over a stream socket: how fulcrumd talks to
 * the dataplane's control socket and how fulcrumctl talks to fulcrumd.
 * A line whose object has "payload": N (an integer) is followed by N bytes
 * that are not JSON, such as the services of a large apply in binary
 * (controlplane/service_batch.h); the object says what they are. */
#ifndef FULCRUM_JSONLINE_H
#define FULCRUM_JSONLINE_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* Listens on a UNIX socket at path, mode 0660, group gid (or the
 * caller's when gid is -1), creating its directory: /run is a tmpfs, and
 * the directory is gone after a reboot. Returns the fd, or -1 with err. */
int jsonline_listen(const char *path, gid_t gid, char *err, size_t err_len);

/* Makes path's parent directory (mode 0750) if it is missing. */
void jsonline_make_parent(const char *path);

/* Connects to the UNIX socket at path; returns the fd or -1 (errno set). */
int jsonline_connect(const char *path);

/* Sends req as one line. Returns 0 or -1. */
int jsonline_send(int fd, const json_t *req);

/* Reads one line of at most max bytes and parses it. Returns NULL with err
 * on a closed connection, an oversized line, malformed JSON, or a line
 * that announces a payload. */
json_t *jsonline_recv(int fd, size_t max, char *err, size_t err_len);

/* jsonline_recv for a peer that may send a payload: then *payload (free
 * it) holds its *payload_len bytes, at most max; else *payload is NULL.
 * Both read only the line and its payload: what follows stays in fd for
 * the next read. */
json_t *jsonline_recv_payload(int fd, size_t max, void **payload,
			      size_t *payload_len, char *err, size_t err_len);

/* Connects to path and sends req, then the len bytes at payload when req
 * announces them ("payload": len), for the caller to read the response
 * with jsonline_recv when it is ready to: returns the fd, or -1 with err.
 * With timeout_ms above 0, a send that makes no progress for that long
 * fails (the peer is busy with another client, or stuck). */
int jsonline_send_to(const char *path, const json_t *req, const void *payload,
		     size_t len, unsigned int timeout_ms, char *err,
		     size_t err_len);

/* Sends req and reads the response: a connection per call, which keeps
 * the peers free of session state. NULL with err when it fails. */
json_t *jsonline_call(const char *path, const json_t *req, size_t max,
		      char *err, size_t err_len);

#endif
