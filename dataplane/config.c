/* Reads fulcrum-dataplane's INI file into struct dataplane_config. inih
 * splits lines into sections, keys and values; what each key means and
 * every check on it lives here, so that a bad file is refused before EAL
 * starts, with the file, line and key named. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <rte_common.h>
#include <rte_mempool.h>
#include <rte_pci.h>

#include "constants.h"
#include "maglev.h"

enum section_kind { SEC_NONE, SEC_EAL, SEC_DATAPLANE, SEC_PORT, SEC_SERVICE,
		    SEC_KINDS };

enum value_kind {
	V_UINT, V_BOOL, V_TEXT, V_FILE_PREFIX, V_LCORES, V_WORKERS, V_DRIVER,
	V_IFACE, V_PCI, V_PATH, V_PREFIX4, V_PREFIX6, V_ADDR4, V_ADDR6, V_MAC,
	V_VIP, V_PROTO, V_MODE, V_TABLE_SIZE, V_BACKEND,
};

struct key_spec {
	const char *name;
	enum value_kind kind;
	size_t off, size;       /* the field in the section's struct */
	uint64_t min, max;      /* V_UINT, V_TABLE_SIZE */
	bool required;
	bool repeats;
	unsigned int only;      /* drivers (ports) or modes (services) the key
				 * means something for, one bit each; 0 = all */
};

#define KEY(n, k, T, f) .name = (n), .kind = (k), .off = offsetof(T, f), \
	.size = sizeof(((T *)0)->f)
#define UINT_KEY(n, T, f, lo, hi) KEY(n, V_UINT, T, f), .min = (lo), .max = (hi)
#define BIT(x) (1u << (x))

static const struct key_spec eal_keys[] = {
	{ KEY("lcores", V_LCORES, struct dataplane_config, lcores) },
	{ UINT_KEY("main_lcore", struct dataplane_config, main_lcore, 0,
		   RTE_MAX_LCORE - 1) },
	{ UINT_KEY("memory_mb", struct dataplane_config, memory_mb, 0,
		   1u << 22) },
	{ KEY("file_prefix", V_FILE_PREFIX, struct dataplane_config,
	      file_prefix) },
	{ KEY("in_memory", V_BOOL, struct dataplane_config, in_memory) },
	{ KEY("no_huge", V_BOOL, struct dataplane_config, no_huge) },
	{ KEY("extra_eal", V_TEXT, struct dataplane_config, extra_eal) },
};

static const struct key_spec dataplane_keys[] = {
	{ KEY("workers", V_WORKERS, struct dataplane_config, worker_lcores) },
	{ KEY("idle_backoff", V_BOOL, struct dataplane_config, idle_backoff) },
	{ UINT_KEY("idle_sleep_max_us", struct dataplane_config,
		   idle_sleep_max_us, 1, 1000000) },
	{ UINT_KEY("burst", struct dataplane_config, burst, 1,
		   PIPELINE_BURST_MAX) },
	{ UINT_KEY("rx_desc", struct dataplane_config, rx_desc, 16, 32768) },
	{ UINT_KEY("tx_desc", struct dataplane_config, tx_desc, 16, 32768) },
	{ UINT_KEY("mempool_size", struct dataplane_config, mempool_size, 64,
		   1u << 26) },
	{ UINT_KEY("mempool_cache", struct dataplane_config, mempool_cache, 0,
		   RTE_MEMPOOL_CACHE_MAX_SIZE) },
	{ UINT_KEY("conn_table_size", struct dataplane_config, conn_table_size,
		   8, 1u << 28) },
	{ UINT_KEY("tcp_idle_timeout", struct dataplane_config,
		   tcp_idle_timeout_s, 1, 7 * 86400) },
	{ UINT_KEY("udp_idle_timeout", struct dataplane_config,
		   udp_idle_timeout_s, 1, 7 * 86400) },
	{ UINT_KEY("hash_seed", struct dataplane_config, hash_seed, 0,
		   UINT32_MAX) },
	{ UINT_KEY("max_services", struct dataplane_config, max_services, 1,
		   1u << 16) },
	{ UINT_KEY("max_backends", struct dataplane_config, max_backends, 1,
		   1u << 20) },
	{ KEY("control_socket", V_TEXT, struct dataplane_config,
	      control_socket) },
	{ KEY("state_store", V_TEXT, struct dataplane_config, state_store) },
};

static const struct key_spec port_keys[] = {
	{ KEY("driver", V_DRIVER, struct port_config, driver),
	  .required = true },
	{ KEY("iface", V_IFACE, struct port_config, iface),
	  .only = BIT(PORT_DRIVER_AF_XDP) | BIT(PORT_DRIVER_AF_PACKET) |
		  BIT(PORT_DRIVER_TAP) },
	{ KEY("pci", V_PCI, struct port_config, pci),
	  .only = BIT(PORT_DRIVER_PCI) },
	{ KEY("pcap_rx", V_PATH, struct port_config, pcap_rx),
	  .only = BIT(PORT_DRIVER_PCAP) },
	{ KEY("pcap_tx", V_PATH, struct port_config, pcap_tx),
	  .only = BIT(PORT_DRIVER_PCAP) },
	{ KEY("addr", V_PREFIX4, struct port_config, addr4) },
	{ KEY("addr6", V_PREFIX6, struct port_config, addr6) },
	{ KEY("gateway", V_ADDR4, struct port_config, gateway4) },
	{ KEY("gateway6", V_ADDR6, struct port_config, gateway6) },
	{ KEY("mac", V_MAC, struct port_config, mac) },
	{ KEY("exception", V_BOOL, struct port_config, exception) },
	{ KEY("allow_mgmt", V_BOOL, struct port_config, allow_mgmt) },
	{ UINT_KEY("mtu", struct port_config, mtu, 68, 9216) },
};

static const struct key_spec service_keys[] = {
	{ KEY("vip", V_VIP, struct service_config, vip), .required = true },
	{ KEY("proto", V_PROTO, struct service_config, proto),
	  .required = true },
	{ UINT_KEY("port", struct service_config, port, 0, UINT16_MAX) },
	{ KEY("mode", V_MODE, struct service_config, mode), .required = true },
	{ KEY("table_size", V_TABLE_SIZE, struct service_config, table_size),
	  .min = 1, .max = MAGLEV_MAX_SIZE },
	{ UINT_KEY("gue_port", struct service_config, gue_port, 1, UINT16_MAX),
	  .only = BIT(FWD_GUE) },
	{ KEY("backend", V_BACKEND, struct service_config, backends),
	  .repeats = true },
};

#define MAX_KEYS 16
_Static_assert(RTE_DIM(eal_keys) <= MAX_KEYS &&
	       RTE_DIM(dataplane_keys) <= MAX_KEYS &&
	       RTE_DIM(port_keys) <= MAX_KEYS &&
	       RTE_DIM(service_keys) <= MAX_KEYS, "raise MAX_KEYS");

static const char *const driver_names[] = {
	[PORT_DRIVER_PCI] = "pci",
	[PORT_DRIVER_AF_XDP] = "af_xdp",
	[PORT_DRIVER_AF_PACKET] = "af_packet",
	[PORT_DRIVER_PCAP] = "pcap",
	[PORT_DRIVER_TAP] = "tap",
	[PORT_DRIVER_NULL] = "null",
	[PORT_DRIVER_RING] = "ring",
};

static const char *const mode_names[] = {
	[FWD_L2DSR] = "l2dsr",
	[FWD_IPIP] = "ipip",
	[FWD_GUE] = "gue",
};

struct parser {
	struct dataplane_config *cfg;
	const char *path;
	FILE *file;
	char *err;
	size_t err_len;
	bool failed;
	int fail_line;
	int line;                       /* the line inih is working on */
	enum section_kind kind;
	char title[CONFIG_NAME_LEN + 16];   /* "port lan", for messages */
	int section_line;
	void *base;                     /* where this section's keys go */
	int once_line[SEC_KINDS];       /* [eal], [dataplane]: where, if seen */
	int key_line[SEC_KINDS][MAX_KEYS];  /* where each key was set; 0 = not */
	int service_line[CONFIG_MAX_SERVICES];
	int backend_line[CONFIG_MAX_BACKENDS];  /* of the current service */
	uint32_t backend_cap;
	unsigned int total_backends;
	int last_backend_line;
};

static void vfail(struct parser *p, int line, const char *title,
		  const char *key, const char *fmt, va_list ap)
{
	char msg[256];

	if (p->failed)
		return;
	p->failed = true;
	p->fail_line = line;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (title && key)
		snprintf(p->err, p->err_len, "%s:%d: [%s] %s: %s", p->path, line,
			 title, key, msg);
	else if (title || key)
		snprintf(p->err, p->err_len, title ? "%s:%d: [%s]: %s" :
			 "%s:%d: %s: %s", p->path, line, title ? title : key,
			 msg);
	else
		snprintf(p->err, p->err_len, "%s:%d: %s", p->path, line, msg);
}

static void __rte_format_printf(5, 6)
fail_at(struct parser *p, int line, const char *title, const char *key,
	const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, line, title, key, fmt, ap);
	va_end(ap);
}

/* An error on the key inih just handed over. */
static void __rte_format_printf(3, 4)
fail_key(struct parser *p, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, p->line, p->title, key, fmt, ap);
	va_end(ap);
}

static const struct key_spec *section_keys(enum section_kind kind, size_t *n)
{
	switch (kind) {
	case SEC_EAL:
		*n = RTE_DIM(eal_keys);
		return eal_keys;
	case SEC_DATAPLANE:
		*n = RTE_DIM(dataplane_keys);
		return dataplane_keys;
	case SEC_PORT:
		*n = RTE_DIM(port_keys);
		return port_keys;
	case SEC_SERVICE:
		*n = RTE_DIM(service_keys);
		return service_keys;
	default:
		*n = 0;
		return NULL;
	}
}

static int key_index(enum section_kind kind, const char *name)
{
	size_t n;
	const struct key_spec *keys = section_keys(kind, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The sections whose keys fail_pair() can name. */
static const char *section_name(enum section_kind kind)
{
	return kind == SEC_EAL ? "eal" : "dataplane";
}

static int line_of(const struct parser *p, enum section_kind kind,
		   const char *name)
{
	return p->key_line[kind][key_index(kind, name)];
}

int config_lcore_list(const char *text, unsigned int ids[RTE_MAX_LCORE],
		      unsigned int *n, const char **why)
{
	bool seen[RTE_MAX_LCORE] = { false };
	const char *s = text;

	*n = 0;
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*s)) {
			*why = *text ? "expected an lcore number" :
				       "the list is empty";
			return -1;
		}
		lo = hi = strtoul(s, &end, 10);
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s)) {
				*why = "expected an lcore number after '-'";
				return -1;
			}
			hi = strtoul(s, &end, 10);
			s = end;
			if (hi < lo) {
				*why = "a range goes backwards";
				return -1;
			}
		}
		if (hi >= RTE_MAX_LCORE) {
			*why = "lcore numbers go up to " RTE_STR(RTE_MAX_LCORE)
			       " - 1 in this DPDK build";
			return -1;
		}
		for (unsigned long v = lo; v <= hi; v++) {
			if (seen[v]) {
				*why = "an lcore is listed twice";
				return -1;
			}
			seen[v] = true;
			ids[(*n)++] = (unsigned int)v;
		}
		if (*s == '\0')
			return 0;
		if (*s != ',') {
			*why = "expected ',' or '-' after an lcore number";
			return -1;
		}
		s++;
	}
}

/* Decimal, or hexadecimal after 0x. strtoull alone would also take signs,
 * leading blanks and octal, none of which anyone means in a config file. */
static int parse_u64(const char *s, uint64_t *out)
{
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (base == 10 ? !isdigit((unsigned char)*s) :
			 !isxdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, base);
	return errno || *end ? -1 : 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "1", "on" };
	static const char *const no[] = { "no", "false", "0", "off" };

	for (size_t i = 0; i < RTE_DIM(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int name_index(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Kernel interface names may hold almost anything, but ',' and '=' would
 * break the DPDK device arguments the name is passed in, and '/', ':' and
 * blanks the kernel refuses anyway. */
static bool is_iface_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return false;
	return strpbrk(s, "/:,= \t") == NULL;
}

static int copy_text(struct parser *p, const struct key_spec *k, void *field,
		     const char *value)
{
	if (strlen(value) >= k->size) {
		fail_key(p, k->name, "'%s' is too long (at most %zu characters)",
			 value, k->size - 1);
		return -1;
	}
	strcpy(field, value);
	return 0;
}

static int parse_uint_key(struct parser *p, const struct key_spec *k,
			  void *field, const char *value)
{
	uint64_t v;

	if (parse_u64(value, &v) < 0) {
		fail_key(p, k->name, "'%s' is not a number", value);
		return -1;
	}
	if (v < k->min || v > k->max) {
		fail_key(p, k->name, "%s is out of range (%" PRIu64 " to %"
			 PRIu64 ")", value, k->min, k->max);
		return -1;
	}
	if (k->kind == V_TABLE_SIZE && !maglev_size_is_valid((uint32_t)v)) {
		fail_key(p, k->name, "%s is not a valid Maglev table size "
			 "(a prime, at most %u; the default is %u)", value,
			 MAGLEV_MAX_SIZE, MAGLEV_DEFAULT_SIZE);
		return -1;
	}
	if (k->size == sizeof(uint16_t)) {
		uint16_t v16 = (uint16_t)v;

		memcpy(field, &v16, sizeof(v16));
	} else {
		uint32_t v32 = (uint32_t)v;

		RTE_BUILD_BUG_ON(sizeof(unsigned int) != sizeof(uint32_t));
		memcpy(field, &v32, sizeof(v32));
	}
	return 0;
}

static int parse_addr_key(struct parser *p, const struct key_spec *k,
			  union ip_addr *addr, uint8_t *family,
			  uint8_t want_family, const char *value)
{
	if (ip_addr_parse(value, addr, family) < 0 ||
	    (want_family && *family != want_family)) {
		fail_key(p, k->name, "'%s' is not an %s address", value,
			 want_family == AF_INET ? "IPv4" :
			 want_family == AF_INET6 ? "IPv6" : "IP");
		return -1;
	}
	if (ip_addr_is_zero(addr)) {
		fail_key(p, k->name, "%s is the unspecified address", value);
		return -1;
	}
	return 0;
}

static int parse_mac(struct parser *p, const char *key, const char *value,
		     struct rte_ether_addr *mac)
{
	if (rte_ether_unformat_addr(value, mac) < 0) {
		fail_key(p, key, "'%s' is not a MAC address (xx:xx:xx:xx:xx:xx)",
			 value);
		return -1;
	}
	if (!rte_is_valid_assigned_ether_addr(mac)) {
		fail_key(p, key, "%s is not a unicast MAC address", value);
		return -1;
	}
	return 0;
}

/* backend = ADDR [weight=N] [mac=MAC] */
static int parse_backend(struct parser *p, struct service_config *s,
			 const char *value)
{
	struct backend_config b = { .weight = 1 };
	char buf[CONFIG_TEXT_LEN], *tok, *save;
	bool have_weight = false, have_mac = false;
	uint64_t w;

	if (strlen(value) >= sizeof(buf)) {
		fail_key(p, "backend", "the line is too long");
		return -1;
	}
	if (s->n_backends == CONFIG_MAX_BACKENDS) {
		fail_key(p, "backend", "more than %d backends in one service",
			 CONFIG_MAX_BACKENDS);
		return -1;
	}
	strcpy(buf, value);
	tok = strtok_r(buf, " \t", &save);
	if (!tok) {
		fail_key(p, "backend", "expected ADDR [weight=N] [mac=MAC]");
		return -1;
	}
	if (ip_addr_parse(tok, &b.addr, &b.family) < 0) {
		fail_key(p, "backend", "'%s' is not an IP address", tok);
		return -1;
	}
	if (ip_addr_is_zero(&b.addr)) {
		fail_key(p, "backend", "%s is the unspecified address", tok);
		return -1;
	}
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (strncmp(tok, "weight=", 7) == 0 && !have_weight) {
			if (parse_u64(tok + 7, &w) < 0 || w > UINT16_MAX) {
				fail_key(p, "backend", "'%s': weight must be a "
					 "number from 0 to %u", tok, UINT16_MAX);
				return -1;
			}
			b.weight = (uint32_t)w;
			have_weight = true;
		} else if (strncmp(tok, "mac=", 4) == 0 && !have_mac) {
			if (parse_mac(p, "backend", tok + 4, &b.mac) < 0)
				return -1;
			have_mac = true;
		} else {
			fail_key(p, "backend", "unexpected '%s' (expected ADDR "
				 "[weight=N] [mac=MAC], each at most once)", tok);
			return -1;
		}
	}
	for (uint32_t i = 0; i < s->n_backends; i++) {
		if (s->backends[i].family == b.family &&
		    ip_addr_eq(&s->backends[i].addr, &b.addr)) {
			char a[INET6_ADDRSTRLEN];

			fail_key(p, "backend", "%s is listed twice (first on "
				 "line %d)", ip_addr_str(&b.addr, b.family, a,
							 sizeof(a)),
				 p->backend_line[i]);
			return -1;
		}
	}
	if (s->n_backends == p->backend_cap) {
		uint32_t cap = p->backend_cap ? p->backend_cap * 2 : 8;
		struct backend_config *grown =
			realloc(s->backends, cap * sizeof(*grown));

		if (!grown) {
			fail_key(p, "backend", "out of memory");
			return -1;
		}
		s->backends = grown;
		p->backend_cap = cap;
	}
	p->backend_line[s->n_backends] = p->line;
	s->backends[s->n_backends++] = b;
	p->total_backends++;
	p->last_backend_line = p->line;
	return 0;
}

static int parse_value(struct parser *p, const struct key_spec *k,
		       const char *value)
{
	void *field = (char *)p->base + k->off;
	unsigned int ids[RTE_MAX_LCORE], n;
	const char *why;
	struct rte_pci_addr pci;
	int i;

	switch (k->kind) {
	case V_UINT:
	case V_TABLE_SIZE:
		return parse_uint_key(p, k, field, value);
	case V_BOOL:
		if (parse_bool(value, field) < 0) {
			fail_key(p, k->name, "'%s' is not yes/no, true/false, "
				 "on/off or 1/0", value);
			return -1;
		}
		return 0;
	case V_TEXT:
		return copy_text(p, k, field, value);
	case V_FILE_PREFIX:
		for (const char *c = value; *c; c++) {
			if (!is_name_char(*c) && *c != '.') {
				fail_key(p, k->name, "'%s' may hold only "
					 "letters, digits, '.', '_' and '-'",
					 value);
				return -1;
			}
		}
		if (!*value) {
			fail_key(p, k->name, "must not be empty");
			return -1;
		}
		return copy_text(p, k, field, value);
	case V_LCORES:
		if (config_lcore_list(value, ids, &n, &why) < 0) {
			fail_key(p, k->name, "'%s': %s", value, why);
			return -1;
		}
		return copy_text(p, k, field, value);
	case V_WORKERS:
		if (config_lcore_list(value, ids, &n, &why) < 0) {
			fail_key(p, k->name, "'%s': %s", value, why);
			return -1;
		}
		if (n > CONFIG_MAX_WORKERS) {
			fail_key(p, k->name, "%u workers; at most %d", n,
				 CONFIG_MAX_WORKERS);
			return -1;
		}
		memcpy(p->cfg->worker_lcores, ids, n * sizeof(ids[0]));
		p->cfg->n_workers = n;
		return 0;
	case V_DRIVER:
		i = name_index(value, driver_names, RTE_DIM(driver_names));
		if (i < 0) {
			fail_key(p, k->name, "unknown driver '%s' (pci, af_xdp, "
				 "af_packet, pcap, tap, null or ring)", value);
			return -1;
		}
		*(enum port_driver *)field = (enum port_driver)i;
		return 0;
	case V_IFACE:
		if (!is_iface_name(value)) {
			fail_key(p, k->name, "'%s' is not a usable interface "
				 "name (1 to %d characters, none of / : , = "
				 "or blanks)", value, IFNAMSIZ - 1);
			return -1;
		}
		return copy_text(p, k, field, value);
	case V_PCI:
		/* Stored in the long form DPDK names the device by, so that
		 * "03:00.0" and "0000:03:00.0" find the same port and the
		 * same sysfs entry. */
		if (rte_pci_addr_parse(value, &pci) < 0) {
			fail_key(p, k->name, "'%s' is not a PCI address "
				 "(like 0000:03:00.0)", value);
			return -1;
		}
		rte_pci_device_name(&pci, field, k->size);
		return 0;
	case V_PATH:
		if (!*value || strpbrk(value, ",=")) {
			fail_key(p, k->name, "'%s' is not usable: a path must "
				 "not be empty nor hold ',' or '=', which DPDK "
				 "device arguments use as separators", value);
			return -1;
		}
		return copy_text(p, k, field, value);
	case V_PREFIX4:
	case V_PREFIX6: {
		struct ip_prefix *pfx = field;
		uint8_t want = k->kind == V_PREFIX4 ? AF_INET : AF_INET6;

		if (ip_prefix_parse(value, pfx) < 0 || pfx->family != want ||
		    pfx->len == 0 || ip_addr_is_zero(&pfx->addr)) {
			memset(pfx, 0, sizeof(*pfx));
			fail_key(p, k->name, "'%s' is not an %s address with "
				 "prefix length (like %s)", value,
				 want == AF_INET ? "IPv4" : "IPv6",
				 want == AF_INET ? "192.0.2.10/24" :
						   "2001:db8::10/64");
			return -1;
		}
		return 0;
	}
	case V_ADDR4:
	case V_ADDR6: {
		uint8_t family;

		return parse_addr_key(p, k, field, &family,
				      k->kind == V_ADDR4 ? AF_INET : AF_INET6,
				      value);
	}
	case V_MAC:
		return parse_mac(p, k->name, value, field);
	case V_VIP: {
		struct service_config *s = p->base;

		return parse_addr_key(p, k, &s->vip, &s->family, 0, value);
	}
	case V_PROTO:
		if (strcasecmp(value, "tcp") == 0)
			*(uint8_t *)field = IPPROTO_TCP;
		else if (strcasecmp(value, "udp") == 0)
			*(uint8_t *)field = IPPROTO_UDP;
		else {
			fail_key(p, k->name, "'%s' is not tcp or udp", value);
			return -1;
		}
		return 0;
	case V_MODE:
		i = name_index(value, mode_names, RTE_DIM(mode_names));
		if (i < 0) {
			fail_key(p, k->name, "unknown mode '%s' (l2dsr, ipip "
				 "or gue)", value);
			return -1;
		}
		*(enum fwd_mode *)field = (enum fwd_mode)i;
		return 0;
	case V_BACKEND:
		return parse_backend(p, p->base, value);
	}
	return -1;
}

/* Required keys present, and no key that means nothing for this port's
 * driver or this service's mode (a typo'd driver would otherwise leave,
 * say, an iface silently unused). */
static void check_keys(struct parser *p, unsigned int variant,
		       const char *variant_what, const char *variant_name)
{
	size_t n;
	const struct key_spec *keys = section_keys(p->kind, &n);
	const int *line = p->key_line[p->kind];

	for (size_t i = 0; i < n; i++) {
		if (keys[i].required && !line[i])
			fail_at(p, p->section_line, p->title, NULL,
				"missing required key '%s'", keys[i].name);
		else if (line[i] && keys[i].only && !(keys[i].only & BIT(variant)))
			fail_at(p, line[i], p->title, keys[i].name,
				"does not apply to %s %s", variant_what,
				variant_name);
	}
}

static void end_port(struct parser *p)
{
	struct dataplane_config *cfg = p->cfg;
	struct port_config *pc = p->base;
	const int *line = p->key_line[SEC_PORT];

	check_keys(p, pc->driver, "driver", port_driver_name(pc->driver));
	if (p->failed)
		return;
	switch (pc->driver) {
	case PORT_DRIVER_PCI:
		if (!pc->pci[0])
			fail_at(p, p->section_line, p->title, NULL,
				"driver pci needs key 'pci' (the device's "
				"PCI address)");
		break;
	case PORT_DRIVER_AF_XDP:
	case PORT_DRIVER_AF_PACKET:
	case PORT_DRIVER_TAP:
		if (!pc->iface[0])
			fail_at(p, p->section_line, p->title, NULL,
				"driver %s needs key 'iface'",
				port_driver_name(pc->driver));
		break;
	case PORT_DRIVER_PCAP:
		if (!pc->pcap_rx[0] && !pc->pcap_tx[0])
			fail_at(p, p->section_line, p->title, NULL,
				"driver pcap needs key 'pcap_rx' or 'pcap_tx'");
		break;
	case PORT_DRIVER_NULL:
	case PORT_DRIVER_RING:
		break;
	}
	if (!ip_addr_is_zero(&pc->gateway4)) {
		if (!pc->addr4.len)
			fail_at(p, line[key_index(SEC_PORT, "gateway")], p->title,
				"gateway", "needs 'addr' on the same port");
		else if (!ip_prefix_contains(&pc->addr4, &pc->gateway4, AF_INET)) {
			char a[INET6_ADDRSTRLEN];

			fail_at(p, line[key_index(SEC_PORT, "gateway")], p->title,
				"gateway", "%s is outside addr's prefix /%u",
				ip_addr_str(&pc->gateway4, AF_INET, a, sizeof(a)),
				pc->addr4.len);
		}
	}
	if (!ip_addr_is_zero(&pc->gateway6) && !pc->addr6.len)
		fail_at(p, line[key_index(SEC_PORT, "gateway6")], p->title,
			"gateway6", "needs 'addr6' on the same port");

	/* Two ports on one device would fight over its queues. */
	for (unsigned int i = 0; i + 1 < cfg->n_ports; i++) {
		const struct port_config *o = &cfg->ports[i];
		bool same_pci = pc->pci[0] && strcmp(o->pci, pc->pci) == 0;
		bool same_iface = pc->iface[0] && strcmp(o->iface, pc->iface) == 0;

		if (same_pci || same_iface)
			fail_at(p, line[key_index(SEC_PORT, same_pci ? "pci" :
							    "iface")],
				p->title, same_pci ? "pci" : "iface",
				"'%s' is already port %s's", same_pci ? pc->pci :
				pc->iface, o->name);
	}
}

static void end_service(struct parser *p)
{
	struct dataplane_config *cfg = p->cfg;
	struct service_config *s = p->base;
	unsigned int idx = (unsigned int)(s - cfg->services);

	check_keys(p, s->mode, "mode", fwd_mode_name(s->mode));
	if (p->failed)
		return;
	/* An IP-in-IP or GUE outer header is of the backend's family, and
	 * the forwarding path encapsulates only within one family. */
	if (s->mode != FWD_L2DSR) {
		for (uint32_t i = 0; i < s->n_backends; i++) {
			if (s->backends[i].family != s->family) {
				fail_at(p, p->backend_line[i], p->title,
					"backend", "mode %s needs backends of "
					"the vip's family (IPv%d)",
					fwd_mode_name(s->mode),
					s->family == AF_INET ? 4 : 6);
				return;
			}
		}
	}
	for (unsigned int i = 0; i < idx; i++) {
		const struct service_config *o = &cfg->services[i];

		if (o->family == s->family && ip_addr_eq(&o->vip, &s->vip) &&
		    o->proto == s->proto && o->port == s->port) {
			fail_at(p, p->section_line, p->title, NULL,
				"same vip, proto and port as service %s "
				"(line %d)", o->name, p->service_line[i]);
			return;
		}
	}
}

static void end_section(struct parser *p)
{
	if (p->failed)
		return;
	if (p->kind == SEC_PORT)
		end_port(p);
	else if (p->kind == SEC_SERVICE)
		end_service(p);
}

static bool valid_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (; *s; s++)
		if (!is_name_char(*s))
			return false;
	return true;
}

static void begin_port(struct parser *p, const char *name)
{
	struct dataplane_config *cfg = p->cfg;

	if (!valid_name(name, CONFIG_PORT_NAME_MAX)) {
		fail_at(p, p->line, p->title, NULL, "port names are 1 to %d "
			"letters, digits, '_' or '-' (the host-side interface "
			"is fx-NAME, and interface names stop at %d)",
			CONFIG_PORT_NAME_MAX, IFNAMSIZ - 1);
		return;
	}
	if (cfg->n_ports == CONFIG_MAX_PORTS) {
		fail_at(p, p->line, p->title, NULL, "too many ports (at most %d)",
			CONFIG_MAX_PORTS);
		return;
	}
	for (unsigned int i = 0; i < cfg->n_ports; i++) {
		if (strcmp(cfg->ports[i].name, name) == 0) {
			fail_at(p, p->line, p->title, NULL,
				"a port named %s already exists", name);
			return;
		}
	}
	p->base = &cfg->ports[cfg->n_ports++];
	memset(p->base, 0, sizeof(struct port_config));
	strcpy(cfg->ports[cfg->n_ports - 1].name, name);
}

static void begin_service(struct parser *p, const char *name)
{
	struct dataplane_config *cfg = p->cfg;
	struct service_config *s;

	if (!valid_name(name, CONFIG_NAME_LEN - 1)) {
		fail_at(p, p->line, p->title, NULL, "service names are 1 to %d "
			"letters, digits, '_' or '-'", CONFIG_NAME_LEN - 1);
		return;
	}
	if (cfg->n_services == CONFIG_MAX_SERVICES) {
		fail_at(p, p->line, p->title, NULL, "too many services (at "
			"most %d in the file; add more at run time)",
			CONFIG_MAX_SERVICES);
		return;
	}
	for (unsigned int i = 0; i < cfg->n_services; i++) {
		if (strcmp(cfg->services[i].name, name) == 0) {
			fail_at(p, p->line, p->title, NULL, "a service named %s "
				"already exists (line %d)", name,
				p->service_line[i]);
			return;
		}
	}
	p->service_line[cfg->n_services] = p->line;
	s = &cfg->services[cfg->n_services++];
	*s = (struct service_config){
		.table_size = MAGLEV_DEFAULT_SIZE,
		.gue_port = GUE_DEFAULT_PORT,
	};
	strcpy(s->name, name);
	p->base = s;
	p->backend_cap = 0;
}

/* Called by the line reader on every "[...]" line, so that sections are
 * seen even when they hold no key (inih reports only keys), and each at
 * its own line. */
static void begin_section(struct parser *p, char *text)
{
	char *word = text, *name;
	enum section_kind kind;

	end_section(p);
	if (p->failed)
		return;
	while (isspace((unsigned char)*word))
		word++;
	name = word + strcspn(word, " \t");
	if (*name)
		*name++ = '\0';
	while (isspace((unsigned char)*name))
		name++;
	for (char *e = name + strlen(name); e > name && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	/* bounded to fit: the title only labels messages, and names too
	 * long for it are refused below */
	snprintf(p->title, sizeof(p->title), "%.15s%s%.31s", word,
		 *name ? " " : "", name);
	p->section_line = p->line;

	if (strcmp(word, "eal") == 0)
		kind = SEC_EAL;
	else if (strcmp(word, "dataplane") == 0)
		kind = SEC_DATAPLANE;
	else if (strcmp(word, "port") == 0)
		kind = SEC_PORT;
	else if (strcmp(word, "service") == 0)
		kind = SEC_SERVICE;
	else {
		fail_at(p, p->line, p->title, NULL, "unknown section (expected "
			"[eal], [dataplane], [port NAME] or [service NAME])");
		return;
	}
	p->kind = kind;
	memset(p->key_line[kind], 0, sizeof(p->key_line[kind]));
	switch (kind) {
	case SEC_EAL:
	case SEC_DATAPLANE:
		if (*name)
			fail_at(p, p->line, p->title, NULL, "[%s] takes no name",
				word);
		else if (p->once_line[kind])
			fail_at(p, p->line, p->title, NULL, "appears twice (first "
				"on line %d)", p->once_line[kind]);
		p->once_line[kind] = p->line;
		p->base = p->cfg;
		break;
	case SEC_PORT:
		begin_port(p, name);
		break;
	case SEC_SERVICE:
		begin_service(p, name);
		break;
	default:
		break;
	}
}

/* inih's line source. Besides counting lines for the messages, it:
 * - refuses lines too long for inih, which would otherwise split them and
 *   read the tail as a line of its own;
 * - strips leading blanks, because inih reads an indented line as a
 *   continuation of the previous value, so an indented "backend = ..."
 *   would silently become part of the backend above it;
 * - follows [section] lines itself (see begin_section). */
static char *read_line(char *buf, int size, void *stream)
{
	struct parser *p = stream;
	size_t len, skip;
	char *end;

	if (p->failed || !fgets(buf, size, p->file))
		return NULL;
	p->line++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(p->file)) {
		fail_at(p, p->line, NULL, NULL, "line is longer than %d "
			"characters", size - 3);
		return NULL;
	}
	if (p->line == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		len -= 3;
		memmove(buf, buf + 3, len + 1);
	}
	skip = strspn(buf, " \t");
	memmove(buf, buf + skip, len - skip + 1);

	if (buf[0] == '[') {
		char header[INI_MAX_LINE];

		end = strchr(buf, ']');
		if (!end) {
			fail_at(p, p->line, NULL, NULL, "section line has no "
				"closing ']'");
			return NULL;
		}
		snprintf(header, sizeof(header), "%.*s", (int)(end - buf - 1),
			 buf + 1);
		begin_section(p, header);
		if (p->failed)
			return NULL;
	}
	return buf;
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct parser *p = user;
	size_t n;
	const struct key_spec *keys = section_keys(p->kind, &n);
	int i;

	(void)section; /* read_line follows the sections itself */
	if (p->failed)
		return 0;
	if (p->kind == SEC_NONE) {
		fail_at(p, p->line, NULL, name, "key outside any [section]");
		return 0;
	}
	i = key_index(p->kind, name);
	if (i < 0) {
		char known[MAX_KEYS * 20] = "";
		size_t len = 0;

		for (size_t j = 0; j < n; j++)
			len += (size_t)snprintf(known + len, sizeof(known) - len,
						"%s%s", j ? ", " : "",
						keys[j].name);
		fail_key(p, name, "unknown key (known here: %s)", known);
		return 0;
	}
	if (p->key_line[p->kind][i] && !keys[i].repeats) {
		fail_key(p, name, "set twice (first on line %d)",
			 p->key_line[p->kind][i]);
		return 0;
	}
	if (!p->key_line[p->kind][i])
		p->key_line[p->kind][i] = p->line;
	return parse_value(p, &keys[i], value) == 0;
}

/* Where to point for a conflict between two keys: at the one set later in
 * the file, as that is the line that made the conflict. */
static void fail_pair(struct parser *p, enum section_kind ka, const char *a,
		      enum section_kind kb, const char *b, const char *msg)
{
	int la = line_of(p, ka, a), lb = line_of(p, kb, b);
	bool use_a = la >= lb;

	fail_at(p, use_a ? la : lb, use_a ? section_name(ka) : section_name(kb),
		use_a ? a : b, "%s", msg);
}

static void check_lcores(struct parser *p)
{
	const struct dataplane_config *cfg = p->cfg;
	unsigned int ids[RTE_MAX_LCORE], n;
	bool in_eal[RTE_MAX_LCORE] = { false };
	const char *why;
	char msg[CONFIG_TEXT_LEN + 96];

	if (config_lcore_list(cfg->lcores, ids, &n, &why) < 0)
		return; /* refused when read */
	for (unsigned int i = 0; i < n; i++)
		in_eal[ids[i]] = true;
	if (!in_eal[cfg->main_lcore]) {
		snprintf(msg, sizeof(msg), "main_lcore %u is not in lcores '%s'",
			 cfg->main_lcore, cfg->lcores);
		fail_pair(p, SEC_EAL, "main_lcore", SEC_EAL, "lcores", msg);
	}
	for (unsigned int i = 0; i < cfg->n_workers && !p->failed; i++) {
		unsigned int w = cfg->worker_lcores[i];

		if (w == cfg->main_lcore) {
			snprintf(msg, sizeof(msg), "lcore %u is both a worker and "
				 "main_lcore; workers need lcores of their own", w);
			fail_pair(p, SEC_DATAPLANE, "workers", SEC_EAL,
				  "main_lcore", msg);
		} else if (!in_eal[w]) {
			snprintf(msg, sizeof(msg), "worker lcore %u is not in "
				 "[eal] lcores '%s'", w, cfg->lcores);
			fail_pair(p, SEC_DATAPLANE, "workers", SEC_EAL, "lcores",
				  msg);
		}
	}
}

/* Checks between keys that may come in any order, once all are read. */
static void finish(struct parser *p)
{
	const struct dataplane_config *cfg = p->cfg;
	char msg[160];

	end_section(p);
	if (!p->failed)
		check_lcores(p);
	if (!p->failed && cfg->mempool_cache * 3 / 2 > cfg->mempool_size) {
		snprintf(msg, sizeof(msg), "mempool_cache %u is too large for "
			 "mempool_size %u (DPDK needs cache * 1.5 <= size)",
			 cfg->mempool_cache, cfg->mempool_size);
		fail_pair(p, SEC_DATAPLANE, "mempool_cache", SEC_DATAPLANE,
			  "mempool_size", msg);
	}
	if (!p->failed && cfg->n_services > cfg->max_services) {
		snprintf(p->title, sizeof(p->title), "service %s",
			 cfg->services[cfg->max_services].name);
		fail_at(p, p->service_line[cfg->max_services], p->title, NULL,
			"one service more than max_services = %u allows",
			cfg->max_services);
	}
	if (!p->failed && p->total_backends > cfg->max_backends) {
		int line = line_of(p, SEC_DATAPLANE, "max_backends");

		snprintf(msg, sizeof(msg), "%u backends in all services, more "
			 "than max_backends = %u", p->total_backends,
			 cfg->max_backends);
		if (line)
			fail_at(p, line, "dataplane", "max_backends", "%s", msg);
		else
			fail_at(p, p->last_backend_line, NULL, NULL, "%s", msg);
	}
}

int config_load(const char *path, struct dataplane_config *cfg, char *err,
		size_t err_len)
{
	struct parser p = {
		.cfg = cfg, .path = path, .err = err, .err_len = err_len,
	};
	int rc;

	config_defaults(cfg);
	p.file = fopen(path, "r");
	if (!p.file) {
		snprintf(err, err_len, "%s: cannot open: %s", path,
			 strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	fclose(p.file);
	/* inih reads past lines it cannot split (no '='), returning the
	 * first one; the earliest problem in the file is the one to show. */
	if (rc > 0 && (!p.failed || rc < p.fail_line)) {
		p.failed = false;
		fail_at(&p, rc, NULL, NULL, "expected 'key = value' or "
			"'[section]'");
	} else if (rc < 0) {
		fail_at(&p, p.line, NULL, NULL, "inih could not read the file");
	}
	if (!p.failed)
		finish(&p);
	if (p.failed) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

void config_defaults(struct dataplane_config *cfg)
{
	*cfg = (struct dataplane_config){
		.lcores = "0-1",
		.main_lcore = 0,
		.file_prefix = "fulcrum",
		.in_memory = true,
		.n_workers = 1,
		.worker_lcores = { 1 },
		.idle_sleep_max_us = 1000,
		.burst = 32,
		.rx_desc = 1024,
		.tx_desc = 1024,
		.mempool_size = 16383,  /* 2^n - 1 suits the ring underneath */
		.mempool_cache = 256,
		.conn_table_size = 1u << 20,
		.tcp_idle_timeout_s = 300,
		.udp_idle_timeout_s = 30,
		/* Fixed, not random: every host must hash a flow alike so
		 * that any of them picks the same backend for it. */
		.hash_seed = 0x5eed1234,
		.max_services = 1024,
		.max_backends = 65536,
		.control_socket = "/run/fulcrum/dataplane.sock",
	};
}

void config_free(struct dataplane_config *cfg)
{
	for (unsigned int i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].backends);
		cfg->services[i].backends = NULL;
		cfg->services[i].n_backends = 0;
	}
}

const char *port_driver_name(enum port_driver d)
{
	return (unsigned int)d < RTE_DIM(driver_names) ? driver_names[d] : "?";
}

const char *fwd_mode_name(enum fwd_mode m)
{
	return (unsigned int)m < RTE_DIM(mode_names) ? mode_names[m] : "?";
}
