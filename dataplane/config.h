/* fulcrum-dataplane's settings, read from an INI file (inih). One section
 * per concern: [eal], [dataplane], one [port NAME] per port and one
 * [service NAME] per boot-time service. See docs/operators-guide.md. */
#ifndef FULCRUM_CONFIG_H
#define FULCRUM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_config.h>
#include <rte_ether.h>

#include "ip_addr.h"

#define CONFIG_MAX_PORTS 8
#define CONFIG_MAX_WORKERS 64
#define CONFIG_MAX_SERVICES 256
#define CONFIG_MAX_BACKENDS 1024     /* per boot-time service */
#define CONFIG_NAME_LEN 32
#define CONFIG_PORT_NAME_MAX 12      /* so that "fx-NAME" fits IFNAMSIZ */
#define CONFIG_TEXT_LEN 256

enum port_driver {
	PORT_DRIVER_PCI,
	PORT_DRIVER_AF_XDP,
	PORT_DRIVER_AF_PACKET,
	PORT_DRIVER_PCAP,
	PORT_DRIVER_TAP,
	PORT_DRIVER_NULL,
	PORT_DRIVER_RING,
};

struct port_config {
	char name[CONFIG_NAME_LEN];
	enum port_driver driver;
	char iface[CONFIG_TEXT_LEN];    /* af_xdp, af_packet, tap: kernel netdev */
	char pci[CONFIG_TEXT_LEN];      /* pci: bus address, allow-listed */
	char pcap_rx[CONFIG_TEXT_LEN];  /* pcap: input file */
	char pcap_tx[CONFIG_TEXT_LEN];  /* pcap: output file */
	struct ip_prefix addr4;         /* host's address here; len 0 = none */
	struct ip_prefix addr6;
	union ip_addr gateway4;         /* zero = none */
	union ip_addr gateway6;
	struct rte_ether_addr mac;      /* zero = the port's own */
	bool exception;                 /* make a tap for host traffic */
	bool allow_mgmt;                /* may take the management NIC */
	uint16_t mtu;                   /* 0 = leave as is */
};

enum fwd_mode { FWD_L2DSR, FWD_IPIP, FWD_GUE };

enum backend_state {
	BACKEND_ACTIVE,     /* takes new flows */
	BACKEND_DRAINING,   /* keeps its flows, takes no new ones */
	BACKEND_DOWN,       /* failed health checks: takes no new flows */
	BACKEND_REMOVED,    /* slot kept so that slot numbers stay stable */
};

struct backend_config {
	union ip_addr addr;
	uint8_t family;
	uint32_t weight;
	uint8_t state;                  /* enum backend_state; boot: active */
	struct rte_ether_addr mac;      /* static next-hop override; zero = ARP/NDP */
};

struct service_config {
	char name[CONFIG_NAME_LEN];
	union ip_addr vip;
	uint8_t family;
	uint8_t proto;                  /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;                  /* host order; 0 = every port */
	enum fwd_mode mode;
	uint32_t table_size;            /* Maglev M, prime */
	uint16_t gue_port;              /* host order */
	uint32_t n_backends;
	struct backend_config *backends;
};

struct dataplane_config {
	/* [eal] */
	char lcores[CONFIG_TEXT_LEN];   /* EAL -l list, e.g. "0-2" */
	unsigned int main_lcore;
	unsigned int memory_mb;         /* 0 = EAL default */
	char file_prefix[CONFIG_NAME_LEN];
	bool in_memory;
	bool no_huge;                   /* tests and tiny hosts only */
	char extra_eal[CONFIG_TEXT_LEN];/* appended verbatim, split on spaces */

	/* [dataplane] */
	unsigned int n_workers;
	unsigned int worker_lcores[CONFIG_MAX_WORKERS];
	bool idle_backoff;              /* sleep when queues are empty */
	unsigned int idle_sleep_max_us;
	unsigned int burst;
	unsigned int rx_desc, tx_desc;
	unsigned int mempool_size;      /* mbufs, in one pool all ports share */
	unsigned int mempool_cache;
	unsigned int conn_table_size;   /* per worker */
	unsigned int tcp_idle_timeout_s;
	unsigned int udp_idle_timeout_s;
	uint32_t hash_seed;
	unsigned int max_services;
	unsigned int max_backends;      /* over all services */
	char control_socket[CONFIG_TEXT_LEN];   /* "" = none */
	/* fulcrumd's store, read (never written) at start so that the
	 * services it last committed forward before fulcrumd is back;
	 * "" = none, boot-time services only */
	char state_store[CONFIG_TEXT_LEN];

	unsigned int n_ports;
	struct port_config ports[CONFIG_MAX_PORTS];

	unsigned int n_services;
	struct service_config services[CONFIG_MAX_SERVICES];
};

/* Fills defaults, then reads `path`. On error returns -1 and writes a
 * message naming the file, line and key into err. */
int config_load(const char *path, struct dataplane_config *cfg, char *err,
		size_t err_len);
void config_free(struct dataplane_config *cfg);
void config_defaults(struct dataplane_config *cfg);

/* Parses an EAL -l style lcore list ("1-3", "1,2,5") into ids[], in the
 * order written. Returns 0, or -1 with *why saying what is wrong. */
int config_lcore_list(const char *text, unsigned int ids[RTE_MAX_LCORE],
		      unsigned int *n, const char **why);

const char *port_driver_name(enum port_driver d);
const char *fwd_mode_name(enum fwd_mode m);

#endif
