#include "control.h"

#include <sys/socket.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>

#include "dataplane.h"
#include "fwd_delta.h"
#include "fwd_update.h"
#include "jsonline.h"
#include "state_digest.h"
#include "state_json.h"
#include "stored_services.h"
#include "stats.h"

#define POLL_MS 200         /* how soon the thread notices a stop */

static json_t *refuse(const char *fmt, const char *detail)
{
	char text[1024];

	snprintf(text, sizeof(text), fmt, detail);
	return json_pack("{s:b, s:s}", "ok", 0, "error", text);
}

static json_t *status(struct dataplane *dp)
{
	json_t *ports = json_array();

	for (uint16_t i = 0; i < dp->n_ports; i++) {
		const struct port_runtime *p = &dp->ports[i];
		struct rte_eth_stats st = { 0 };
		char mac[RTE_ETHER_ADDR_FMT_SIZE];

		rte_eth_stats_get(p->port_id, &st);
		rte_ether_format_addr(mac, sizeof(mac), &p->mac);
		json_array_append_new(ports, json_pack(
			"{s:s, s:s, s:s, s:i, s:I, s:I, s:I}",
			"name", dp->cfg.ports[i].name,
			"driver", port_driver_name(dp->cfg.ports[i].driver),
			"mac", mac, "queues", (json_int_t)p->n_rxq,
			"rx", (json_int_t)st.ipackets,
			"tx", (json_int_t)st.opackets,
			"missed", (json_int_t)st.imissed));
	}
	return json_pack("{s:b, s:i, s:I, s:i, s:i, s:I, s:o}", "ok", 1,
			 "protocol", CONTROL_PROTOCOL,
			 "version", (json_int_t)dp->version,
			 "services", (int)dp->fwd->n_services,
			 "workers", (int)dp->n_workers,
			 "uptime_s", (json_int_t)(dataplane_now(dp, rte_rdtsc()) - 1),
			 "ports", ports);
}

/* Active backends a live service has now. */
static uint32_t live_active(const struct fwd_state *live, const char *name)
{
	for (uint32_t id = 0; id < live->capacity; id++) {
		const struct service *svc = live->services[id];
		const struct service_table *t;
		uint32_t n = 0;

		if (!svc || strcmp(svc->name, name) != 0)
			continue;
		t = service_table_get(svc);
		for (uint32_t b = 0; b < t->n_backends; b++)
			n += t->backends[b].state == BACKEND_ACTIVE;
		return n;
	}
	return 0;
}

/* The accident this guards against: a control plane that lost its data
 * pushing an empty or gutted state into a running balancer. What counts
 * is what the update takes away: a service an operator already drained
 * on purpose does not hold up later updates. check[n_check] are the
 * services the update sends, n_after how many there will be in all. */
static const char *unsafe(const struct fwd_state *live,
			  const struct service_config *check, uint32_t n_check,
			  uint32_t n_after)
{
	static char why[256];

	if (n_after == 0 && live->n_services > 0)
		return "the update removes every service";
	for (uint32_t i = 0; i < n_check; i++) {
		uint32_t usable = 0;

		for (uint32_t b = 0; b < check[i].n_backends; b++)
			usable += check[i].backends[b].state == BACKEND_ACTIVE;
		if (usable == 0 && live_active(live, check[i].name) > 0) {
			snprintf(why, sizeof(why), "the update leaves live service "
				 "%s with no active backend", check[i].name);
			return why;
		}
	}
	return NULL;
}

/* Whether the dataplane runs what a conditional apply expects. The label
 * is only ever set by an apply, and applies run one at a time on this
 * thread, so nothing can change it between this check and the apply. */
static bool as_expected(const struct dataplane *dp, const json_t *expect)
{
	json_t *v = json_object_get(expect, "version");
	const char *d = json_string_value(json_object_get(expect, "digest"));

	return json_is_integer(v) && d && dp->digest[0] &&
	       json_integer_value(v) == (json_int_t)dp->version &&
	       strcmp(d, dp->digest) == 0;
}

/* The names of a delta's removed services, or NULL with err. */
static const char **removed_names(const json_t *removed, uint32_t *n,
				  char *err, size_t err_len)
{
	const char **names = calloc(json_array_size(removed) + 1,
				    sizeof(*names));
	json_t *name;
	size_t i;

	if (!names) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	json_array_foreach(removed, i, name) {
		if (!json_is_string(name)) {
			snprintf(err, err_len, "removed[%zu] is not a name", i);
			free(names);
			return NULL;
		}
		names[i] = json_string_value(name);
	}
	*n = (uint32_t)json_array_size(removed);
	return names;
}

/* The services an apply sends: a JSON array (state_json.h), or
 * "payload", the batch of service images after the request's line
 * (service_batch.h). 0, or -1 with err. */
static bool is_payload(const json_t *list)
{
	return json_is_string(list) &&
	       strcmp(json_string_value(list), "payload") == 0;
}

static int parse_sent(const json_t *list, const void *payload,
		      size_t payload_len, struct service_config **sent,
		      uint32_t *n_sent, char *err, size_t err_len)
{
	if (is_payload(list))
		return stored_services_read_batch(payload, payload_len, sent,
						  n_sent, err, err_len);
	return state_json_parse(list, sent, n_sent, err, err_len);
}

/* What an apply asks for: the whole state, in *sent; or a delta, the
 * services it changes in *sent and, in *untouched (allocated), the live
 * ones it leaves as they are (fwd_delta.h). *n_after: how many services
 * there will be. 0, or -1 with err. */
static int wanted(const struct dataplane *dp, const json_t *services,
		  const json_t *changed, const json_t *removed,
		  const void *payload, size_t payload_len,
		  struct service_config **sent, uint32_t *n_sent,
		  uint8_t **untouched, uint32_t *n_after, char *err,
		  size_t err_len)
{
	const char **names;
	uint32_t n_names = 0;
	int rc = -1;

	*untouched = NULL;
	if (services) {
		if (parse_sent(services, payload, payload_len, sent, n_sent,
			       err, err_len) < 0)
			return -1;
		*n_after = *n_sent;
		return 0;
	}
	if (!json_is_array(removed)) {
		snprintf(err, err_len, "removed must be an array of names");
		return -1;
	}
	if (parse_sent(changed, payload, payload_len, sent, n_sent, err,
		       err_len) < 0)
		return -1;
	names = removed_names(removed, &n_names, err, err_len);
	*untouched = names ? calloc(dp->fwd->capacity + 1, 1) : NULL;
	if (names && !*untouched)
		snprintf(err, err_len, "out of memory");
	else if (names)
		rc = fwd_delta_untouched(dp->fwd, *sent, *n_sent, names, n_names,
					 *untouched, n_after, err, err_len);
	free(names);
	if (rc < 0) {
		state_json_free(*sent, *n_sent);
		free(*untouched);
	}
	return rc;
}

/* A prepared update made live, labelled version and digest. */
static json_t *go_live(struct dataplane *dp, struct fwd_update *u,
		       uint64_t version, const char *digest)
{
	bool changed = fwd_update_changes(u);

	fwd_update_publish(&dp->fwd, u);
	/* every reader has moved on from what the update replaced */
	rte_rcu_qsbr_synchronize(dp->rcu, RTE_QSBR_THRID_INVALID);
	fwd_update_finish(u);
	dp->version = version;
	snprintf(dp->digest, sizeof(dp->digest), "%s", digest);
	return json_pack("{s:b, s:I, s:b}", "ok", 1, "version",
			 (json_int_t)version, "changed", changed);
}

static json_t *apply(struct dataplane *dp, const json_t *req,
		     const void *payload, size_t payload_len)
{
	struct service_config *sent;
	struct fwd_update u;
	uint8_t *untouched;
	json_int_t version = 0, payload_bytes = -1;
	json_t *services = NULL, *changed = NULL, *removed = NULL;
	json_t *expect = NULL;
	const char *digest = "";
	int approved = 0, hold = 0;
	json_error_t je;
	const char *why;
	char err[512];
	bool ok;
	uint32_t n_after, n_sent, now;

	if (json_unpack_ex((json_t *)req, &je, JSON_STRICT,
			   "{s:s, s:I, s?o, s?o, s?o, s?b, s?s, s?o, s?I, s?b}",
			   "cmd", &why, "version", &version, "services",
			   &services, "changed", &changed, "removed", &removed,
			   "approved", &approved, "digest", &digest,
			   "expect", &expect, "payload", &payload_bytes,
			   "hold", &hold) < 0)
		return refuse("apply: %s", je.text);
	if (dp->holding)
		return refuse("apply: %s", "an update is held: publish or "
			      "discard it first");
	if ((is_payload(services) || is_payload(changed)) &&
	    payload_bytes != (json_int_t)payload_len)
		return refuse("apply: %s", "the services are said to be in a "
			      "payload that the request does not announce, or "
			      "that is not the one that came");
	if (version < 0)
		return refuse("apply: %s", "version is negative");
	if (strlen(digest) >= sizeof(dp->digest))
		return refuse("apply: %s", "digest is too long");
	if (!services == !(changed || removed) || (changed && !removed) ||
	    (removed && !changed))
		return refuse("apply: %s", "an apply sends \"services\", or "
			      "a delta of \"changed\" and \"removed\"");
	if (changed && !expect)
		return refuse("apply: %s", "a delta needs \"expect\": it only "
			      "means something against a known state");
	if (expect && !as_expected(dp, expect))
		return json_pack("{s:b, s:b, s:s}", "ok", 0, "stale", 1,
				 "error", "apply: the dataplane no longer runs "
				 "the version and digest expected");
	if (wanted(dp, services, changed, removed, payload, payload_len, &sent,
		   &n_sent, &untouched, &n_after, err, sizeof(err)) < 0)
		return refuse("apply: %s", err);
	why = approved ? NULL : unsafe(dp->fwd, sent, n_sent, n_after);
	now = dataplane_now(dp, rte_rdtsc());
	ok = !why && (untouched ?
		      fwd_update_prepare_delta(dp->fwd, sent, n_sent, untouched,
					       now, &u, err, sizeof(err)) :
		      fwd_update_prepare(dp->fwd, sent, n_sent, now, &u, err,
					 sizeof(err))) == 0;
	state_json_free(sent, n_sent);
	free(untouched);
	if (why)
		return refuse("apply refused: %s; send it as approved if meant",
			      why);
	if (!ok)
		return refuse("apply: %s", err);
	if (!hold)
		return go_live(dp, &u, (uint64_t)version, digest);
	dp->held = u;
	dp->held_version = (uint64_t)version;
	dp->held_at = now;
	dp->holding = true;
	return json_pack("{s:b, s:b, s:I}", "ok", 1, "held", 1, "version",
			 version);
}

static json_t *publish(struct dataplane *dp, const json_t *req)
{
	const char *digest = "", *cmd;
	json_error_t je;

	if (json_unpack_ex((json_t *)req, &je, JSON_STRICT, "{s:s, s?s}", "cmd",
			   &cmd, "digest", &digest) < 0)
		return refuse("publish: %s", je.text);
	if (strlen(digest) >= sizeof(dp->digest))
		return refuse("publish: %s", "digest is too long");
	if (!dp->holding)
		return refuse("publish: %s", "no update is held");
	dp->holding = false;
	fwd_update_restamp(&dp->held, dp->held_at,
			   dataplane_now(dp, rte_rdtsc()));
	return go_live(dp, &dp->held, dp->held_version, digest);
}

void control_discard(struct dataplane *dp)
{
	if (dp->holding)
		fwd_update_abort(&dp->held);
	dp->holding = false;
}

/* The version and the digest of what the tables run, hashed from them
 * rather than the label the last push gave them. */
static json_t *live_digest(struct dataplane *dp)
{
	char digest[STORE_DIGEST_LEN], err[256];

	if (state_digest(dp->fwd, digest, err, sizeof(err)) < 0)
		return refuse("digest: %s", err);
	return json_pack("{s:b, s:I, s:s}", "ok", 1, "version",
			 (json_int_t)dp->version, "digest", digest);
}

json_t *control_handle(struct dataplane *dp, const json_t *req,
		       const void *payload, size_t payload_len)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!json_is_object(req) || !cmd)
		return refuse("%s", "a request is an object with a \"cmd\"");
	if (strcmp(cmd, "status") == 0)
		return status(dp);
	if (strcmp(cmd, "state") == 0)
		return json_pack("{s:b, s:I, s:o}", "ok", 1, "version",
				 (json_int_t)dp->version, "services",
				 state_json_dump(dp->fwd));
	if (strcmp(cmd, "digest") == 0)
		return live_digest(dp);
	if (strcmp(cmd, "stats") == 0)
		return json_pack("{s:b, s:o}", "ok", 1, "stats", stats_json(dp));
	if (strcmp(cmd, "apply") == 0)
		return apply(dp, req, payload, payload_len);
	if (strcmp(cmd, "publish") == 0)
		return publish(dp, req);
	if (strcmp(cmd, "discard") == 0) {
		bool held = dp->holding;

		control_discard(dp);
		return json_pack("{s:b, s:b}", "ok", 1, "discarded", held);
	}
	return refuse("unknown cmd '%s' (status, state, digest, stats, apply, "
		      "publish, discard)", cmd);
}

static bool respond(int fd, json_t *resp)
{
	bool ok = jsonline_send(fd, resp) == 0;

	json_decref(resp);
	return ok;
}

/* The payload a request announces (jsonline.h): its size, 0 for none,
 * or -1 for one that cannot be. */
static long long payload_of(const json_t *req)
{
	json_t *n = json_object_get(req, "payload");

	if (!n)
		return 0;
	if (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) > CONTROL_MAX_REQUEST)
		return -1;
	return json_integer_value(n);
}

/* Serves one client until it hangs up: a line in (and the payload it
 * announces), a line out. */
static void serve(struct dataplane *dp, int fd)
{
	size_t cap = 4096, len = 0, scanned = 0, line = 0, need = 0;
	char *buf = malloc(cap);
	json_t *req = NULL;     /* a line read, whose payload is coming */

	while (buf && !dataplane_stopping(dp)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t n;

		/* a line of megabytes comes in many reads: each looks for
		 * the newline only in what it read */
		if (!req && (nl = memchr(buf + scanned, '\n', len - scanned))) {
			json_error_t je;
			long long bytes;

			line = (size_t)(nl + 1 - buf);
			req = json_loadb(buf, line - 1, 0, &je);
			bytes = req ? payload_of(req) : 0;
			if (bytes < 0) {
				/* where its payload ends cannot be told: the
				 * rest of the stream is not to be trusted */
				respond(fd, refuse("%s", "the payload announced "
						   "is not 0 to 256 MiB"));
				break;
			}
			if (!req) {
				if (!respond(fd, refuse("malformed JSON: %s",
							je.text)))
					break;
				len -= line;
				memmove(buf, buf + line, len);
				scanned = 0;
				continue;
			}
			need = line + (size_t)bytes;
		} else if (!req) {
			scanned = len;
			if (len >= CONTROL_MAX_REQUEST) {
				respond(fd, refuse("%s", "request too long"));
				break;
			}
		}
		if (req && len >= need) {
			json_t *resp = control_handle(dp, req, buf + line,
						      need - line);

			json_decref(req);
			req = NULL;
			if (!respond(fd, resp))
				break;
			len -= need;
			memmove(buf, buf + need, len);
			scanned = 0;
			continue;
		}
		if (len == cap || (req && need > cap)) {
			size_t next = cap * 2;
			char *more;

			while (req && next < need)
				next *= 2;
			more = realloc(buf, next);
			if (!more)
				break;
			buf = more;
			cap = next;
		}
		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		n = recv(fd, buf + len, cap - len, 0);
		if (n <= 0) {
			if (len)   /* a last request cut short */
				respond(fd, refuse("%s", req ?
						   "request ends before its "
						   "payload" : "request ends "
						   "without a newline"));
			break;
		}
		len += (size_t)n;
	}
	json_decref(req);
	free(buf);
	/* what this client held goes with it */
	control_discard(dp);
}

static void *control_main(void *arg)
{
	struct dataplane *dp = arg;

	while (!dataplane_stopping(dp)) {
		struct pollfd p = { .fd = dp->control_fd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		fd = accept(dp->control_fd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(dp, fd);
		close(fd);
	}
	return NULL;
}

int control_start(struct dataplane *dp, const char *path, char *err,
		  size_t err_len)
{
	int fd = jsonline_listen(path, (gid_t)-1, err, err_len);

	if (fd < 0)
		return -1;
	dp->control_fd = fd;
	if (pthread_create(&dp->control_thread, NULL, control_main, dp) != 0) {
		snprintf(err, err_len, "cannot start the control thread");
		close(fd);
		dp->control_fd = -1;
		return -1;
	}
	return 0;
}

void control_stop(struct dataplane *dp)
{
	if (dp->control_fd < 0)
		return;
	pthread_join(dp->control_thread, NULL);
	close(dp->control_fd);
	unlink(dp->cfg.control_socket);
	dp->control_fd = -1;
}
