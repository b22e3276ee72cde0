#include "daemon_config.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parse {
	struct daemon_config *cfg;
	char *err;
	size_t err_len;
};

static int text(struct parse *p, char *field, size_t size, const char *key,
		const char *value)
{
	if (strlen(value) == 0 || strlen(value) >= size) {
		snprintf(p->err, p->err_len, "'%s' must be 1 to %zu characters",
			 key, size - 1);
		return 0;
	}
	memcpy(field, value, strlen(value) + 1);
	return 1;
}

static int number(struct parse *p, const char *key, const char *value,
		  unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v = strtoul(value, &end, 10);

	if (!*value || *end || v < min || v > max) {
		snprintf(p->err, p->err_len, "'%s' must be %lu..%lu", key, min,
			 max);
		return 0;
	}
	*out = (unsigned int)v;
	return 1;
}

/* The entry for service, added with the defaults if it is new; NULL,
 * with p->err set, when out of memory or the name will not do. */
static struct health_service *health_entry(struct parse *p,
					   const char *service)
{
	struct daemon_config *c = p->cfg;
	struct health_service *more, *hs;

	if (!*service || strlen(service) >= sizeof(hs->service)) {
		snprintf(p->err, p->err_len, "[health NAME] needs a service name "
			 "of 1 to %zu characters", sizeof(hs->service) - 1);
		return NULL;
	}
	for (size_t i = 0; i < c->n_health_services; i++)
		if (strcmp(c->health_services[i].service, service) == 0)
			return &c->health_services[i];
	more = realloc(c->health_services,
		       (c->n_health_services + 1) * sizeof(*more));
	if (!more) {
		snprintf(p->err, p->err_len, "out of memory");
		return NULL;
	}
	c->health_services = more;
	hs = &more[c->n_health_services++];
	*hs = (struct health_service){ .check = CHECK_TCP, .http_path = "/",
				       .http_status = 200 };
	snprintf(hs->service, sizeof(hs->service), "%s", service);
	return hs;
}

/* Text that goes into a request as it is: printable, no CR or LF that
 * would end the request line early. */
static int request_text(struct parse *p, char *field, const char *key,
			const char *value, bool may_be_empty)
{
	if ((!may_be_empty && !*value) || strlen(value) >= HEALTH_TEXT_LEN) {
		snprintf(p->err, p->err_len, "'%s' must be %d to %d characters",
			 key, may_be_empty ? 0 : 1, HEALTH_TEXT_LEN - 1);
		return 0;
	}
	for (const char *c = value; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			snprintf(p->err, p->err_len, "'%s' must be printable "
				 "text", key);
			return 0;
		}
	}
	memcpy(field, value, strlen(value) + 1);
	return 1;
}

/* [health NAME]: how service NAME is checked. */
static int health_key(struct parse *p, const char *service, const char *key,
		      const char *value)
{
	struct health_service *hs = health_entry(p, service);

	if (!hs)
		return 0;
	if (strcmp(key, "port") == 0)
		return number(p, key, value, 1, 65535, &hs->port);
	if (strcmp(key, "check") == 0) {
		static const char *const kinds[] = {
			[CHECK_TCP] = "tcp", [CHECK_HTTP] = "http",
			[CHECK_UDP] = "udp",
		};

		for (unsigned int i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
			if (strcmp(value, kinds[i]) == 0) {
				hs->check = i;
				return 1;
			}
		}
		snprintf(p->err, p->err_len, "'check' must be tcp, http or udp");
		return 0;
	}
	if (strcmp(key, "http_path") == 0) {
		if (value[0] != '/' || strchr(value, ' ')) {
			snprintf(p->err, p->err_len, "'http_path' must start with "
				 "'/' and hold no space");
			return 0;
		}
		return request_text(p, hs->http_path, key, value, false);
	}
	if (strcmp(key, "http_status") == 0)
		return number(p, key, value, 100, 599, &hs->http_status);
	if (strcmp(key, "udp_payload") == 0)
		return request_text(p, hs->udp_payload, key, value, true);
	if (strcmp(key, "udp_expect") == 0)
		return request_text(p, hs->udp_expect, key, value, false);
	if (strcmp(key, "slow_start_s") == 0)
		return number(p, key, value, 0, 3600, &hs->slow_start_s);
	if (strcmp(key, "on_backend_down") == 0) {
		if (strcmp(value, "keep") != 0 && strcmp(value, "reset") != 0) {
			snprintf(p->err, p->err_len, "'on_backend_down' must be "
				 "keep or reset");
			return 0;
		}
		hs->keep_flows = strcmp(value, "keep") == 0;
		return 1;
	}
	snprintf(p->err, p->err_len, "unknown key '%s' in [health %s]", key,
		 service);
	return 0;
}

const struct health_service *daemon_config_health(
	const struct daemon_config *cfg, const char *service)
{
	for (size_t i = 0; i < cfg->n_health_services; i++)
		if (strcmp(cfg->health_services[i].service, service) == 0)
			return &cfg->health_services[i];
	return NULL;
}

static int on_key(void *user, const char *section, const char *key,
		  const char *value)
{
	struct parse *p = user;
	struct daemon_config *c = p->cfg;
	if (strncmp(section, "health ", 7) == 0)
		return health_key(p, section + 7, key, value);
	if (strcmp(section, "fulcrumd") != 0) {
		snprintf(p->err, p->err_len, "unknown section [%s]", section);
		return 0;
	}
#define TEXT(name) \
	if (strcmp(key, #name) == 0) \
		return text(p, c->name, sizeof(c->name), key, value);
	TEXT(environment) TEXT(cluster_id) TEXT(store) TEXT(backup)
	TEXT(socket) TEXT(socket_group) TEXT(dataplane_socket)
	TEXT(admins) TEXT(operators) TEXT(viewers) TEXT(audit_log)
	TEXT(freeze_file) TEXT(plans_dir)
#undef TEXT
	if (strcmp(key, "reconcile_interval_ms") == 0) {
		char *end;
		unsigned long v = strtoul(value, &end, 10);

		if (*end || v < 10 || v > 600000) {
			snprintf(p->err, p->err_len, "'%s' must be 10..600000",
				 key);
			return 0;
		}
		c->reconcile_interval_ms = (unsigned int)v;
		return 1;
	}
	if (strcmp(key, "health_interval_ms") == 0)
		return number(p, key, value, 10, 3600000, &c->health_interval_ms);
	if (strcmp(key, "health_timeout_ms") == 0)
		return number(p, key, value, 1, 3600000, &c->health_timeout_ms);
	if (strcmp(key, "health_rise") == 0)
		return number(p, key, value, 1, 1000, &c->health_rise);
	if (strcmp(key, "health_fall") == 0)
		return number(p, key, value, 1, 1000, &c->health_fall);
	if (strcmp(key, "health_flap_max") == 0)
		return number(p, key, value, 0, 1000, &c->health_flap_max);
	if (strcmp(key, "health_flap_window_s") == 0)
		return number(p, key, value, 1, 86400, &c->health_flap_window_s);
	if (strcmp(key, "health_flap_hold_s") == 0)
		return number(p, key, value, 1, 86400, &c->health_flap_hold_s);
	if (strcmp(key, "blast_share") == 0)
		return number(p, key, value, 0, 100, &c->blast_share);
	if (strcmp(key, "blast_services") == 0)
		return number(p, key, value, 1, 1000000, &c->blast_services);
	snprintf(p->err, p->err_len, "unknown key '%s'", key);
	return 0;
}

void daemon_config_defaults(struct daemon_config *cfg)
{
	*cfg = (struct daemon_config){
		.store = "/var/lib/fulcrum/state.db",
		.backup = "/var/lib/fulcrum/backup/state.db",
		.socket = "/run/fulcrum/fulcrumd.sock",
		.dataplane_socket = "/run/fulcrum/dataplane.sock",
		.audit_log = "/var/lib/fulcrum/audit.log",
		.freeze_file = "/var/lib/fulcrum/freeze",
		.plans_dir = "/var/lib/fulcrum/plans",
		.reconcile_interval_ms = 1000,
		.blast_share = 25,
		.blast_services = 10,
		.health_interval_ms = 1000,
		.health_timeout_ms = 500,
		.health_rise = 2,
		.health_fall = 3,
		.health_flap_max = 4,
		.health_flap_window_s = 60,
		.health_flap_hold_s = 120,
	};
}

int daemon_config_load(const char *path, struct daemon_config *cfg, char *err,
		       size_t err_len)
{
	char why[256] = "";
	struct parse p = { .cfg = cfg, .err = why, .err_len = sizeof(why) };
	int rc;

	daemon_config_defaults(cfg);
	rc = ini_parse(path, on_key, &p);
	if (rc < 0) {
		snprintf(err, err_len, "%s: cannot read the file", path);
		return -1;
	}
	if (rc > 0) {
		snprintf(err, err_len, "%s:%d: %s", path, rc,
			 why[0] ? why : "syntax error");
		daemon_config_free(cfg);
		return -1;
	}
	if (!cfg->environment[0] || !cfg->cluster_id[0]) {
		snprintf(err, err_len, "%s: 'environment' and 'cluster_id' are "
			 "required: they keep a script meant for one fleet off "
			 "another", path);
		daemon_config_free(cfg);
		return -1;
	}
	/* a check still in flight when the next is due would overlap it */
	if (cfg->health_timeout_ms >= cfg->health_interval_ms) {
		snprintf(err, err_len, "%s: 'health_timeout_ms' (%u) must be "
			 "shorter than 'health_interval_ms' (%u)", path,
			 cfg->health_timeout_ms, cfg->health_interval_ms);
		daemon_config_free(cfg);
		return -1;
	}
	return 0;
}

void daemon_config_free(struct daemon_config *cfg)
{
	free(cfg->health_services);
	cfg->health_services = NULL;
	cfg->n_health_services = 0;
}
