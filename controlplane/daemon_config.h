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
 *   health_flap_max = 4             ; flap damping: health.h
 *   health_flap_window_s = 60
 *   health_flap_hold_s = 120
 *
 *   [health NAME]                   ; how service NAME is checked:
 *   port = 8080                     ; on this port, not the service's
 *   check = tcp                     ; tcp (connect), http or udp
 *   http_path = /healthz            ; http: GET this ...
 *   http_status = 200               ; ... and expect this status
 *   udp_payload = ping              ; udp: send this ...
 *   udp_expect = pong               ; ... and expect a reply holding this
 *                                   ; (not given: any reply passes)
 *   slow_start_s = 0                ; a returning backend's ramp
 *   on_backend_down = reset         ; reset or keep its flows
 */
#ifndef FULCRUM_DAEMON_CONFIG_H
#define FULCRUM_DAEMON_CONFIG_H

#include <stdbool.h>
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
	unsigned int health_flap_max;        /* 0: no flap damping */
	unsigned int health_flap_window_s;
	unsigned int health_flap_hold_s;
	struct health_service *health_services;  /* [health NAME] sections */
	size_t n_health_services;
};

enum health_check { CHECK_TCP, CHECK_HTTP, CHECK_UDP };

#define HEALTH_TEXT_LEN 128

/* How one service's backends are checked, where that is not the
 * default (a TCP connect on the service's port). */
struct health_service {
	char service[32];                    /* SERVICE_NAME_LEN */
	unsigned int port;                   /* 0: the service's own */
	unsigned int check;                  /* enum health_check */
	char http_path[HEALTH_TEXT_LEN];     /* "/" unless given */
	unsigned int http_status;            /* 200 unless given */
	char udp_payload[HEALTH_TEXT_LEN];   /* may be empty */
	char udp_expect[HEALTH_TEXT_LEN];    /* empty: any reply */
	unsigned int slow_start_s;           /* 0: full weight at once */
	bool keep_flows;                     /* on_backend_down = keep */
};

/* The [health NAME] settings of service NAME; NULL: the defaults. */
const struct health_service *daemon_config_health(
	const struct daemon_config *cfg, const char *service);

void daemon_config_defaults(struct daemon_config *cfg);

/* Defaults, then path. Returns 0, or -1 with err naming line and key. */
int daemon_config_load(const char *path, struct daemon_config *cfg, char *err,
		       size_t err_len);

/* Frees what daemon_config_load allocated. */
void daemon_config_free(struct daemon_config *cfg);

#endif
