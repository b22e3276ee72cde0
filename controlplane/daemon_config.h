/* fulcrumd's settings, from an INI file (inih):
 *
 *   [fulcrumd]
 *   environment = production        ; required: which fleet this is
 *   cluster_id = lb-eu1             ; required
 *   store = /var/lib/fulcrum/state.db
 *   backup = /var/lib/fulcrum/backup/state.db
 *   socket = /run/fulcrum/fulcrumd.sock
 *   socket_group = fulcrum          ; may use the socket (mode 0660)
 *   dataplane_socket = /run/fulcrum/dataplane.sock
 *   reconcile_interval_ms = 1000
 *   admins = root                   ; roles: access.h
 *   operators = @netops
 *   viewers = @monitoring
 *   audit_log = /var/lib/fulcrum/audit.log
 *   freeze_file = /var/lib/fulcrum/freeze
 *   health_interval_ms = 1000       ; active checks: health.h
 *   health_timeout_ms = 500
 *   health_rise = 2
 *   health_fall = 3
 *
 *   [health NAME]                   ; service NAME's backends ...
 *   port = 8080                     ; ... are checked on this port
 */
#ifndef FULCRUM_DAEMON_CONFIG_H
#define FULCRUM_DAEMON_CONFIG_H

#include <stddef.h>

#define DAEMON_TEXT_LEN 256

struct daemon_config {
	char environment[64];
	char cluster_id[64];
	char store[DAEMON_TEXT_LEN];
	char backup[DAEMON_TEXT_LEN];
	char socket[DAEMON_TEXT_LEN];
	char socket_group[64];
	char dataplane_socket[DAEMON_TEXT_LEN];
	char admins[DAEMON_TEXT_LEN];   /* access.h */
	char operators[DAEMON_TEXT_LEN];
	char viewers[DAEMON_TEXT_LEN];
	char audit_log[DAEMON_TEXT_LEN];
	char freeze_file[DAEMON_TEXT_LEN];   /* freeze.h */
	char plans_dir[DAEMON_TEXT_LEN];     /* plans.h */
	/* the blast-radius guard (plan.h, plan_risk): wider changes need
	 * an approved plan */
	unsigned int blast_share;       /* % of a service's active backends */
	unsigned int blast_services;    /* services changed at once */
	unsigned int reconcile_interval_ms;
	unsigned int health_interval_ms;     /* health.h */
	unsigned int health_timeout_ms;
	unsigned int health_rise;
	unsigned int health_fall;
	struct health_port *health_ports;    /* from [health NAME] sections */
	size_t n_health_ports;
};

/* The port a service's backends are checked on instead of its own. */
struct health_port {
	char service[32];                    /* SERVICE_NAME_LEN */
	unsigned int port;                   /* 1..65535 */
};

void daemon_config_defaults(struct daemon_config *cfg);

/* Defaults, then path. Returns 0, or -1 with err naming line and key. */
int daemon_config_load(const char *path, struct daemon_config *cfg, char *err,
		       size_t err_len);

/* Frees what daemon_config_load allocated. */
void daemon_config_free(struct daemon_config *cfg);

#endif
