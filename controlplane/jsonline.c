#include "jsonline.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

void jsonline_make_parent(const char *path)
{
	char dir[PATH_MAX];
	size_t len = strnlen(path, sizeof(dir) - 1);
	char *slash;

	memcpy(dir, path, len);
	dir[len] = '\0';
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0750);
	}
}

int jsonline_listen(const char *path, gid_t gid, char *err, size_t err_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, err_len, "socket path %s is too long", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	jsonline_make_parent(path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0660) < 0 ||
	    (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    listen(fd, 16) < 0) {
		snprintf(err, err_len, "socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int jsonline_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int jsonline_send(int fd, const json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	int rc = text && send_all(fd, text, strlen(text)) == 0 &&
		 send_all(fd, "\n", 1) == 0 ? 0 : -1;

	free(text);
	return rc;
}

/* The payload a line announces, read from fd. */
static int recv_payload(int fd, const json_t *line, size_t max,
			void **payload, size_t *payload_len, char *err,
			size_t err_len)
{
	json_int_t n = json_integer_value(json_object_get(line, "payload"));
	unsigned char *out;
	size_t got;

	if (n < 0 || (uint64_t)n > max) {
		snprintf(err, err_len, "a payload of %lld bytes is not one of "
			 "0 to %zu", (long long)n, max);
		return -1;
	}
	out = malloc((size_t)n + 1);
	if (!out) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	for (got = 0; got < (size_t)n;) {
		ssize_t r = recv(fd, out + got, (size_t)n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, err_len, "connection closed after %zu of "
				 "the payload's %lld bytes", got, (long long)n);
			free(out);
			return -1;
		}
		got += (size_t)r;
	}
	*payload = out;
	*payload_len = (size_t)n;
	return 0;
}

json_t *jsonline_recv_payload(int fd, size_t max, void **payload,
			      size_t *payload_len, char *err, size_t err_len)
{
	size_t cap = 4096, len = 0, scanned = 0;
	char *buf = malloc(cap), *nl = NULL;
	json_error_t je;
	json_t *j = NULL;

	if (payload) {
		*payload = NULL;
		*payload_len = 0;
	}
	/* scanned: a line of megabytes comes in many reads, and each looks
	 * for the newline only in what it read */
	while (buf && !(nl = memchr(buf + scanned, '\n', len - scanned))) {
		ssize_t n;

		scanned = len;
		/* checked on what has come, not on the buffer's size, which
		 * starts above small limits and grows past others */
		if (len > max)
			break;
		if (len == cap) {
			/* one byte past max is enough to tell */
			size_t next = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *more = realloc(buf, next);

			if (!more) {
				snprintf(err, err_len, "out of memory");
				goto out;
			}
			buf = more;
			cap = next;
		}
		/* up to the newline and no further: what follows is the
		 * next read's (a dataplane answers a held apply, then its
		 * publish, on one connection) */
		n = recv(fd, buf + len, cap - len, MSG_PEEK);
		if (n > 0) {
			char *end = memchr(buf + len, '\n', (size_t)n);

			n = recv(fd, buf + len, end ? (size_t)(end + 1 -
				 (buf + len)) : (size_t)n, 0);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_len, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			if (len)
				snprintf(err, err_len, "connection closed after "
					 "%zu bytes, before the end of the line",
					 len);
			else
				snprintf(err, err_len, "connection closed before "
					 "a response");
			goto out;
		}
		len += (size_t)n;
	}
	if (!buf) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	if (!nl || (size_t)(nl - buf) > max) {
		snprintf(err, err_len, "line longer than %zu bytes", max);
		goto out;
	}
	j = json_loadb(buf, (size_t)(nl - buf), 0, &je);
	if (!j) {
		snprintf(err, err_len, "malformed JSON: %s", je.text);
	} else if (json_object_get(j, "payload") && !payload) {
		snprintf(err, err_len, "a payload is not taken here");
		json_decref(j);
		j = NULL;
	} else if (json_object_get(j, "payload") &&
		   recv_payload(fd, j, max, payload, payload_len, err,
				err_len) < 0) {
		json_decref(j);
		j = NULL;
	}
out:
	free(buf);
	return j;
}

json_t *jsonline_recv(int fd, size_t max, char *err, size_t err_len)
{
	return jsonline_recv_payload(fd, max, NULL, NULL, err, err_len);
}

int jsonline_send_to(const char *path, const json_t *req, const void *payload,
		     size_t len, unsigned int timeout_ms, char *err,
		     size_t err_len)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd = jsonline_connect(path);

	if (fd < 0) {
		snprintf(err, err_len, "cannot connect to %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (timeout_ms && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				     sizeof(tv)) < 0) {
		snprintf(err, err_len, "cannot set a send timeout on %s: %s",
			 path, strerror(errno));
		close(fd);
		return -1;
	}
	if (jsonline_send(fd, req) < 0 ||
	    (len && send_all(fd, payload, len) < 0)) {
		snprintf(err, err_len, "cannot send to %s: %s", path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

json_t *jsonline_call(const char *path, const json_t *req, size_t max,
		      char *err, size_t err_len)
{
	int fd = jsonline_send_to(path, req, NULL, 0, 0, err, err_len);
	json_t *resp;

	if (fd < 0)
		return NULL;
	resp = jsonline_recv(fd, max, err, err_len);
	close(fd);
	return resp;
}
