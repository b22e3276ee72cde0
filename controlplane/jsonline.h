/* JSON objects, one per line, over a stream socket: how fulcrumd talks to
 * the dataplane's control socket and how fulcrumctl talks to fulcrumd. */
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
 * on a closed connection, an oversized line or malformed JSON. */
json_t *jsonline_recv(int fd, size_t max, char *err, size_t err_len);

/* Connects to path and sends req, for the caller to read the response
 * with jsonline_recv when it is ready to: returns the fd, or -1 with err. */
int jsonline_send_to(const char *path, const json_t *req, char *err,
		     size_t err_len);

/* Sends req and reads the response: a connection per call, which keeps
 * the peers free of session state. NULL with err when it fails. */
json_t *jsonline_call(const char *path, const json_t *req, size_t max,
		      char *err, size_t err_len);

#endif
