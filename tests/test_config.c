/* config_load: a complete file read to the exact struct, the defaults, and
 * every class of mistake refused with a message naming its line and key.
 * Also the pure parts of preflight: the mbuf sizing rule, and the host
 * checks against a made-up /sys and /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "config.h"
#include "maglev.h"
#include "preflight.h"

static struct dataplane_config cfg;
static char err[512];

/* Writes text to a fresh file and loads it; the file is gone after. */
static int load(const char *text)
{
	char path[] = "/tmp/fulcrum-test-config-XXXXXX";
	int fd = mkstemp(path), rc;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	rc = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	return rc;
}

static void assert_loads(const char *text)
{
	if (load(text) != 0)
		fail_msg("refused: %s", err);
}

static void assert_mac(const struct rte_ether_addr *mac, const char *text)
{
	struct rte_ether_addr want;

	assert_int_equal(rte_ether_unformat_addr(text, &want), 0);
	assert_memory_equal(mac->addr_bytes, want.addr_bytes, RTE_ETHER_ADDR_LEN);
}

static void assert_addr(const union ip_addr *a, uint8_t family, const char *text)
{
	union ip_addr want;
	uint8_t want_family;

	assert_int_equal(ip_addr_parse(text, &want, &want_family), 0);
	assert_int_equal(family, want_family);
	assert_true(ip_addr_eq(a, &want));
}

static const char full_file[] =
	"; every key, with values other than the defaults\n"
	"[eal]\n"
	"lcores = 0-3\n"
	"main_lcore = 0\n"
	"memory_mb = 2048\n"
	"file_prefix = lb1\n"
	"in_memory = no\n"
	"no_huge = off\n"
	"extra_eal = --log-level=*:info --no-telemetry\n"
	"\n"
	"[dataplane]\n"
	"workers = 1-2,3\n"
	"idle_backoff = yes\n"
	"idle_sleep_max_us = 250\n"
	"burst = 64\n"
	"rx_desc = 2048\n"
	"tx_desc = 512\n"
	"mempool_size = 32767\n"
	"mempool_cache = 512\n"
	"conn_table_size = 4096\n"
	"tcp_idle_timeout = 600\n"
	"udp_idle_timeout = 10\n"
	"hash_seed = 0xdeadbeef\n"
	"max_services = 16\n"
	"max_backends = 128\n"
	"\n"
	"[port wan]\n"
	"driver = pci\n"
	"pci = 03:00.1\n"
	"addr = 192.0.2.10/24\n"
	"addr6 = 2001:db8::10/64\n"
	"gateway = 192.0.2.1\n"
	"gateway6 = fe80::1\n"
	"mac = 02:00:00:00:00:01\n"
	"exception = true\n"
	"allow_mgmt = 1\n"
	"mtu = 9000\n"
	"\n"
	"[port lab]\n"
	"driver = af_packet\n"
	"iface = veth-lb0\n"
	"\n"
	"[port cap]\n"
	"driver = pcap\n"
	"pcap_rx = /tmp/in.pcap\n"
	"pcap_tx = /tmp/out.pcap\n"
	"\n"
	"[service web]\n"
	"vip = 192.0.2.100\n"
	"proto = tcp\n"
	"port = 443\n"
	"mode = gue\n"
	"table_size = 251\n"
	"gue_port = 5555\n"
	"backend = 10.0.0.1\n"
	"    backend = 10.0.0.2 weight=3 ; indented, and a comment\n"
	"backend = 10.0.0.3 mac=02:00:00:00:00:33 weight=0\n"
	"\n"
	"[service dns6]\n"
	"vip = 2001:db8::53\n"
	"proto = UDP\n"
	"mode = l2dsr\n"
	"backend = 2001:db8::1:1\n"
	"backend = 10.0.0.9\n";

/* The text form of an address is what the store, its digest and every
 * JSON answer hold: written by hand for IPv4, it must be inet_ntop's to
 * the byte. Every octet value in every place, and a buffer too small. */
static void test_addr_text(void **state)
{
	char got[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN];
	union ip_addr a = { .w = { 0, 0 } };

	(void)state;
	for (unsigned int v = 0; v < 256; v++) {
		for (unsigned int place = 0; place < 4; place++) {
			uint8_t *o = (uint8_t *)&a.v4;

			memset(o, (int)((v * 7 + place) % 256), 4);
			o[place] = (uint8_t)v;
			assert_non_null(inet_ntop(AF_INET, &a.v4, want,
						  sizeof(want)));
			assert_string_equal(ip_addr_str(&a, AF_INET, got,
							 sizeof(got)), want);
			assert_int_equal(ip_addr_text(&a, AF_INET, got),
					 strlen(want));
			assert_string_equal(got, want);
		}
	}
	assert_int_equal(ip_addr_parse("255.255.255.255", &a,
				       &(uint8_t){ 0 }), 0);
	assert_string_equal(ip_addr_str(&a, AF_INET, got, 16),
			    "255.255.255.255");
	assert_string_equal(ip_addr_str(&a, AF_INET, got, 15), "?");
	assert_int_equal(ip_addr_parse("fd00::1", &a, &(uint8_t){ 0 }), 0);
	assert_string_equal(ip_addr_str(&a, AF_INET6, got, sizeof(got)),
			    "fd00::1");
	assert_int_equal(ip_addr_text(&a, AF_INET6, got), 7);
	assert_string_equal(got, "fd00::1");
}

static void test_full_file(void **state)
{
	const struct port_config *p;
	const struct service_config *s;

	(void)state;
	assert_loads(full_file);

	assert_string_equal(cfg.lcores, "0-3");
	assert_int_equal(cfg.main_lcore, 0);
	assert_int_equal(cfg.memory_mb, 2048);
	assert_string_equal(cfg.file_prefix, "lb1");
	assert_false(cfg.in_memory);
	assert_false(cfg.no_huge);
	assert_string_equal(cfg.extra_eal, "--log-level=*:info --no-telemetry");

	assert_int_equal(cfg.n_workers, 3);
	assert_int_equal(cfg.worker_lcores[0], 1);
	assert_int_equal(cfg.worker_lcores[1], 2);
	assert_int_equal(cfg.worker_lcores[2], 3);
	assert_true(cfg.idle_backoff);
	assert_int_equal(cfg.idle_sleep_max_us, 250);
	assert_int_equal(cfg.burst, 64);
	assert_int_equal(cfg.rx_desc, 2048);
	assert_int_equal(cfg.tx_desc, 512);
	assert_int_equal(cfg.mempool_size, 32767);
	assert_int_equal(cfg.mempool_cache, 512);
	assert_int_equal(cfg.conn_table_size, 4096);
	assert_int_equal(cfg.tcp_idle_timeout_s, 600);
	assert_int_equal(cfg.udp_idle_timeout_s, 10);
	assert_int_equal(cfg.hash_seed, 0xdeadbeef);
	assert_int_equal(cfg.max_services, 16);
	assert_int_equal(cfg.max_backends, 128);

	assert_int_equal(cfg.n_ports, 3);
	p = &cfg.ports[0];
	assert_string_equal(p->name, "wan");
	assert_int_equal(p->driver, PORT_DRIVER_PCI);
	assert_string_equal(p->pci, "0000:03:00.1");
	assert_int_equal(p->addr4.family, AF_INET);
	assert_int_equal(p->addr4.len, 24);
	assert_addr(&p->addr4.addr, AF_INET, "192.0.2.10");
	assert_int_equal(p->addr6.len, 64);
	assert_addr(&p->addr6.addr, AF_INET6, "2001:db8::10");
	assert_addr(&p->gateway4, AF_INET, "192.0.2.1");
	assert_addr(&p->gateway6, AF_INET6, "fe80::1");
	assert_mac(&p->mac, "02:00:00:00:00:01");
	assert_true(p->exception);
	assert_true(p->allow_mgmt);
	assert_int_equal(p->mtu, 9000);
	assert_string_equal(p->iface, "");

	p = &cfg.ports[1];
	assert_string_equal(p->name, "lab");
	assert_int_equal(p->driver, PORT_DRIVER_AF_PACKET);
	assert_string_equal(p->iface, "veth-lb0");
	assert_int_equal(p->addr4.len, 0);
	assert_true(rte_is_zero_ether_addr(&p->mac));
	assert_false(p->exception);
	assert_int_equal(p->mtu, 0);

	p = &cfg.ports[2];
	assert_int_equal(p->driver, PORT_DRIVER_PCAP);
	assert_string_equal(p->pcap_rx, "/tmp/in.pcap");
	assert_string_equal(p->pcap_tx, "/tmp/out.pcap");

	assert_int_equal(cfg.n_services, 2);
	s = &cfg.services[0];
	assert_string_equal(s->name, "web");
	assert_addr(&s->vip, s->family, "192.0.2.100");
	assert_int_equal(s->proto, IPPROTO_TCP);
	assert_int_equal(s->port, 443);
	assert_int_equal(s->mode, FWD_GUE);
	assert_int_equal(s->table_size, 251);
	assert_int_equal(s->gue_port, 5555);
	assert_int_equal(s->n_backends, 3);
	assert_addr(&s->backends[0].addr, s->backends[0].family, "10.0.0.1");
	assert_int_equal(s->backends[0].weight, 1);
	assert_true(rte_is_zero_ether_addr(&s->backends[0].mac));
	assert_addr(&s->backends[1].addr, s->backends[1].family, "10.0.0.2");
	assert_int_equal(s->backends[1].weight, 3);
	assert_addr(&s->backends[2].addr, s->backends[2].family, "10.0.0.3");
	assert_int_equal(s->backends[2].weight, 0);
	assert_mac(&s->backends[2].mac, "02:00:00:00:00:33");

	s = &cfg.services[1];
	assert_string_equal(s->name, "dns6");
	assert_addr(&s->vip, s->family, "2001:db8::53");
	assert_int_equal(s->proto, IPPROTO_UDP);
	assert_int_equal(s->port, 0);
	assert_int_equal(s->mode, FWD_L2DSR);
	assert_int_equal(s->table_size, MAGLEV_DEFAULT_SIZE);
	assert_int_equal(s->n_backends, 2);
	/* l2dsr only rewrites MACs, so a backend of either family will do */
	assert_int_equal(s->backends[1].family, AF_INET);

	config_free(&cfg);
	assert_null(cfg.services[0].backends);
}

static void assert_defaults(void)
{
	assert_string_equal(cfg.lcores, "0-1");
	assert_int_equal(cfg.main_lcore, 0);
	assert_int_equal(cfg.memory_mb, 0);
	assert_string_equal(cfg.file_prefix, "fulcrum");
	assert_true(cfg.in_memory);
	assert_false(cfg.no_huge);
	assert_string_equal(cfg.extra_eal, "");
	assert_int_equal(cfg.n_workers, 1);
	assert_int_equal(cfg.worker_lcores[0], 1);
	assert_false(cfg.idle_backoff);
	assert_int_equal(cfg.idle_sleep_max_us, 1000);
	assert_int_equal(cfg.burst, 32);
	assert_int_equal(cfg.rx_desc, 1024);
	assert_int_equal(cfg.tx_desc, 1024);
	assert_int_equal(cfg.mempool_size, 16383);
	assert_int_equal(cfg.mempool_cache, 256);
	assert_int_equal(cfg.conn_table_size, 1u << 20);
	assert_int_equal(cfg.tcp_idle_timeout_s, 300);
	assert_int_equal(cfg.udp_idle_timeout_s, 30);
	assert_int_equal(cfg.hash_seed, 0x5eed1234);
	assert_int_equal(cfg.max_services, 1024);
	assert_int_equal(cfg.max_backends, 65536);
	assert_int_equal(cfg.n_ports, 0);
	assert_int_equal(cfg.n_services, 0);
}

static void test_defaults(void **state)
{
	(void)state;
	assert_loads("");
	assert_defaults();
	assert_loads("[eal]\n[dataplane]\n# nothing set\n");
	assert_defaults();
	assert_loads("\xEF\xBB\xBF[eal]\r\nmain_lcore = 0\r\n");
	assert_defaults();

	assert_loads("[service s]\nvip = fd00::1\nproto = tcp\n"
			      "mode = ipip\nbackend = fd00::2\n");
	assert_int_equal(cfg.services[0].table_size, MAGLEV_DEFAULT_SIZE);
	assert_int_equal(cfg.services[0].gue_port, 6080);
	assert_int_equal(cfg.services[0].port, 0);
	assert_int_equal(cfg.services[0].backends[0].weight, 1);
	config_free(&cfg);

	assert_loads("[port p]\ndriver = null\n");
	assert_false(cfg.ports[0].exception);
	assert_false(cfg.ports[0].allow_mgmt);
	assert_int_equal(cfg.ports[0].mtu, 0);
}

static void test_many_backends(void **state)
{
	char text[16384];
	size_t len;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text),
			       "[service big]\nvip = 10.1.0.1\nproto = udp\n"
			       "port = 53\nmode = ipip\n");
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"backend = 10.2.%d.%d weight=%d\n",
					i / 250, i % 250 + 1, i % 7);
	assert_loads(text);
	assert_int_equal(cfg.services[0].n_backends, 300);
	assert_int_equal(cfg.services[0].backends[299].weight, 299 % 7);
	assert_addr(&cfg.services[0].backends[299].addr, AF_INET, "10.2.1.50");
	config_free(&cfg);
}

struct bad_case {
	const char *text;
	int line;
	const char *key;        /* must appear in the message */
	const char *says;       /* and so must this */
};

#define SVC "[service s]\nvip = 10.0.0.1\nproto = tcp\nmode = ipip\n"

static const struct bad_case bad_cases[] = {
	/* where things are */
	{ "[eal]\n[bogus]\n", 2, "bogus", "unknown section" },
	{ "[eal]\nlcore = 0\n", 2, "lcore", "unknown key" },
	{ "lcores = 0\n", 1, "lcores", "outside any [section]" },
	{ "[eal]\n[eal]\n", 2, "eal", "appears twice" },
	{ "[eal]\nmemory_mb = 1\nmemory_mb = 2\n", 3, "memory_mb", "twice" },
	{ "[dataplane]\nburst\n", 2, "", "expected 'key = value'" },
	{ "[dataplane\n", 1, "", "no closing ']'" },
	{ "[port]\ndriver = null\n", 1, "port", "port names" },
	{ "[port thirteen-char]\n", 1, "port", "1 to 12" },
	/* numbers */
	{ "[dataplane]\nburst = 12x\n", 2, "burst", "not a number" },
	{ "[dataplane]\nburst = \n", 2, "burst", "not a number" },
	{ "[dataplane]\nburst = 0\n", 2, "burst", "out of range" },
	{ "[dataplane]\nburst = 65\n", 2, "burst", "out of range" },
	{ "[dataplane]\nrx_desc = -1\n", 2, "rx_desc", "not a number" },
	{ "[dataplane]\nhash_seed = 0x100000000\n", 2, "hash_seed",
	  "out of range" },
	{ "[dataplane]\nconn_table_size = 99999999999999999999999\n", 2,
	  "conn_table_size", "not a number" },
	{ "[dataplane]\ntcp_idle_timeout = 1 0\n", 2, "tcp_idle_timeout",
	  "not a number" },
	{ "[eal]\nmain_lcore = 128\n", 2, "main_lcore", "out of range" },
	{ "[eal]\nin_memory = maybe\n", 2, "in_memory", "yes/no" },
	{ "[eal]\nfile_prefix = a/b\n", 2, "file_prefix", "only" },
	{ "[eal]\nlcores = 0-1,1\n", 2, "lcores", "listed twice" },
	{ "[dataplane]\nworkers = 3-1\n", 2, "workers", "backwards" },
	{ "[dataplane]\nworkers = 1 2\n", 2, "workers", "expected ','" },
	{ "[eal]\nlcores = 0-127\n[dataplane]\nworkers = 1-65\n", 4, "workers",
	  "at most 64" },
	/* addresses */
	{ "[port p]\ndriver = null\naddr = 10.0.0.300/24\n", 3, "addr",
	  "not an IPv4" },
	{ "[port p]\ndriver = null\naddr = fd00::1/64\n", 3, "addr",
	  "not an IPv4" },
	{ "[port p]\ndriver = null\naddr = 10.0.0.1/33\n", 3, "addr",
	  "not an IPv4" },
	{ "[port p]\ndriver = null\naddr6 = 10.0.0.1/24\n", 3, "addr6",
	  "not an IPv6" },
	{ "[port p]\ndriver = null\ngateway6 = 10.0.0.1\naddr6 = fd00::2/64\n",
	  3, "gateway6", "not an IPv6" },
	{ "[port p]\ndriver = null\naddr = 10.0.0.2/24\ngateway = 10.0.1.1\n",
	  4, "gateway", "outside" },
	{ "[port p]\ndriver = null\ngateway = 10.0.0.1\n", 3, "gateway",
	  "needs 'addr'" },
	{ "[port p]\ndriver = null\nmac = 02:00:00:00:00\n", 3, "mac",
	  "not a MAC" },
	{ "[port p]\ndriver = null\nmac = 01:00:5e:00:00:01\n", 3, "mac",
	  "unicast" },
	{ "[port p]\ndriver = af_packet\niface = a,b\n", 3, "iface",
	  "interface name" },
	{ "[port p]\ndriver = pci\npci = 3:0\n", 3, "pci", "PCI address" },
	{ "[port p]\ndriver = pcap\npcap_rx = /tmp/a,b.pcap\n", 3, "pcap_rx",
	  "separators" },
	{ SVC "vip = 10.0.0.2\n", 5, "vip", "twice" },
	{ "[service s]\nvip = 10.0.0\n", 2, "vip", "not an IP address" },
	{ "[service s]\nvip = 0.0.0.0\n", 2, "vip", "unspecified" },
	{ SVC "backend = 10.0.0.256\n", 5, "backend", "not an IP address" },
	{ SVC "backend = 10.0.0.5 weight=-1\n", 5, "backend", "weight" },
	{ SVC "backend = 10.0.0.5 mac=zz\n", 5, "backend", "not a MAC" },
	{ SVC "backend = 10.0.0.5 colour=red\n", 5, "backend", "unexpected" },
	{ SVC "backend = 10.0.0.5\nbackend = 10.0.0.5 weight=2\n", 6,
	  "backend", "listed twice (first on line 5)" },
	{ SVC "backend = 10.0.0.5\nbackend = fd00::5\n", 6, "backend",
	  "vip's family" },
	{ "[service s]\nbackend = fd00::5\nvip = 10.0.0.1\nproto = tcp\n"
	  "mode = gue\n", 2, "backend", "vip's family" },
	/* service keys */
	{ "[service s]\nproto = sctp\n", 2, "proto", "tcp or udp" },
	{ "[service s]\nmode = nat\n", 2, "mode", "l2dsr" },
	{ SVC "table_size = 65536\n", 5, "table_size", "prime" },
	{ SVC "table_size = 2000000\n", 5, "table_size", "out of range" },
	{ SVC "gue_port = 7000\n", 5, "gue_port", "does not apply to mode ipip" },
	{ SVC "port = 65536\n", 5, "port", "out of range" },
	/* missing or misplaced */
	{ "[port p]\nmtu = 1500\n", 1, "driver", "missing required key" },
	{ "[port p]\n[eal]\n", 1, "driver", "missing required key" },
	{ "[port p]\ndriver = af_packet\n", 1, "iface", "needs key" },
	{ "[port p]\ndriver = af_xdp\n", 1, "iface", "needs key" },
	{ "[port p]\ndriver = pci\n", 1, "pci", "needs key" },
	{ "[port p]\ndriver = pcap\n", 1, "pcap_rx", "needs key" },
	{ "[port p]\ndriver = floppy\n", 2, "driver", "unknown driver" },
	{ "[port p]\niface = eth1\ndriver = null\n", 2, "iface",
	  "does not apply to driver null" },
	{ "[service s]\nproto = tcp\nmode = l2dsr\n", 1, "vip",
	  "missing required key" },
	{ "[service s]\nvip = 10.0.0.1\nmode = l2dsr\n", 1, "proto",
	  "missing required key" },
	{ "[service s]\nvip = 10.0.0.1\nproto = udp\n", 1, "mode",
	  "missing required key" },
	/* duplicates */
	{ "[port a]\ndriver = null\n[port b]\ndriver = null\n[port a]\n", 5,
	  "port a", "already exists" },
	{ SVC "[service s]\n", 5, "service s", "already exists" },
	{ SVC "port = 80\n[service t]\nvip = 10.0.0.1\nproto = tcp\n"
	  "mode = gue\nport = 80\n", 6, "service t", "same vip" },
	{ "[port a]\ndriver = af_packet\niface = eth1\n[port b]\n"
	  "driver = af_xdp\niface = eth1\n", 6, "iface", "already port a's" },
	/* between keys */
	{ "[eal]\nmain_lcore = 1\n", 2, "main_lcore", "both a worker and" },
	{ "[dataplane]\nworkers = 0-1\n", 2, "workers", "both a worker and" },
	{ "[dataplane]\nworkers = 5\n", 2, "workers", "not in [eal] lcores" },
	{ "[eal]\nlcores = 1-2\nmain_lcore = 1\n[dataplane]\nworkers = 2\n"
	  "[eal]\n", 6, "eal", "twice" },
	{ "[eal]\nlcores = 1-2\n", 2, "lcores", "main_lcore 0 is not in" },
	{ "[dataplane]\nmempool_cache = 512\nmempool_size = 700\n", 3,
	  "mempool_size", "too large" },
	{ "[dataplane]\nmax_services = 1\n" SVC "[service t]\nvip = 10.0.0.2\n"
	  "proto = tcp\nmode = l2dsr\n", 7, "max_services", "[service t]: one" },
	{ "[dataplane]\nmax_backends = 1\n" SVC
	  "backend = 10.0.0.8\nbackend = 10.0.0.9\n", 2, "max_backends",
	  "2 backends" },
};

static bool contains(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

static void test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char line[32];

		snprintf(line, sizeof(line), ":%d: ", c->line);
		if (load(c->text) != -1)
			fail_msg("case %zu was accepted:\n%s", i, c->text);
		if (!contains(err, line) || !contains(err, c->key) ||
		    !contains(err, c->says))
			fail_msg("case %zu: want line %d, '%s' and '%s' in: %s", i,
				 c->line, c->key, c->says, err);
		/* a refused file leaves nothing allocated behind */
		for (unsigned int s = 0; s < cfg.n_services; s++)
			assert_null(cfg.services[s].backends);
	}
}

static void test_limits(void **state)
{
	char text[65536];
	size_t len = 0;

	(void)state;
	for (int i = 0; i <= CONFIG_MAX_PORTS; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"[port p%d]\ndriver = null\n", i);
	assert_int_equal(load(text), -1);
	assert_true(contains(err, ":17: [port p8]: too many ports"));

	len = 0;
	for (int i = 0; i <= CONFIG_MAX_SERVICES; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"[service s%d]\nvip = 10.0.%d.%d\n"
					"proto = tcp\nmode = l2dsr\n", i,
					i / 200, i % 200 + 1);
	assert_int_equal(load(text), -1);
	assert_true(contains(err, ":1025: [service s256]: too many services"));

	memset(text, 'x', 300);
	strcpy(text + 300, "\n");
	memcpy(text, "[eal]\nextra_eal = ", 18);
	assert_int_equal(load(text), -1);
	assert_true(contains(err, ":2: line is longer than"));

	err[0] = '\0';
	assert_int_equal(config_load("/nonexistent/fulcrum.ini", &cfg, err,
				     sizeof(err)), -1);
	assert_true(contains(err, "/nonexistent/fulcrum.ini: cannot open"));
}

static void test_lcore_list(void **state)
{
	unsigned int ids[RTE_MAX_LCORE], n;
	const char *why;

	(void)state;
	assert_int_equal(config_lcore_list("1-3,7,5", ids, &n, &why), 0);
	assert_int_equal(n, 5);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[2], 3);
	assert_int_equal(ids[3], 7);
	assert_int_equal(ids[4], 5);
	assert_int_equal(config_lcore_list("0", ids, &n, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(config_lcore_list("0-127", ids, &n, &why), 0);
	assert_int_equal(n, 128);

	assert_int_equal(config_lcore_list("", ids, &n, &why), -1);
	assert_string_equal(why, "the list is empty");
	assert_int_equal(config_lcore_list("1-", ids, &n, &why), -1);
	assert_int_equal(config_lcore_list("1,", ids, &n, &why), -1);
	assert_int_equal(config_lcore_list("128", ids, &n, &why), -1);
	assert_int_equal(config_lcore_list("2-1", ids, &n, &why), -1);
	assert_int_equal(config_lcore_list("1-2,2", ids, &n, &why), -1);
	assert_int_equal(config_lcore_list("a", ids, &n, &why), -1);
}

static void test_min_mbufs(void **state)
{
	(void)state;
	config_defaults(&cfg);
	/* no ports: only the caches (1.5 x 256) and two bursts, per lcore */
	assert_int_equal(preflight_min_mbufs(&cfg), 2 * (384 + 64));

	cfg.n_ports = 2;
	cfg.ports[1].exception = true;
	cfg.n_workers = 3;
	cfg.rx_desc = 512;
	cfg.tx_desc = 256;
	cfg.mempool_cache = 0;
	cfg.burst = 32;
	/* RX and TX: 3 + 3 + 1 (tap) each; 4 lcores x 2 bursts */
	assert_int_equal(preflight_min_mbufs(&cfg),
			 7 * 512 + 7 * 256 + 4 * 64);
}

/* A made-up host: 2 CPUs, 2 MB pages, routes and interfaces as given. */
static void put(const char *root, const char *rel, const char *text)
{
	char path[512], dir[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	for (slash = strchr(dir + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	if (!text) {
		mkdir(path, 0755);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int run_preflight(const char *root, char *out, size_t len)
{
	FILE *f = fmemopen(out, len, "w");
	int errors;

	assert_non_null(f);
	errors = preflight_check_at(&cfg, f, root);
	fclose(f);
	return errors;
}

static void test_preflight_fake_host(void **state)
{
	char root[] = "/tmp/fulcrum-test-sysfs-XXXXXX", out[4096], cmd[600];

	(void)state;
	assert_non_null(mkdtemp(root));
	put(root, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "512\n");
	put(root, "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
	    "500\n");
	put(root, "proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n");
	put(root, "sys/devices/system/cpu/cpu0/node0", NULL);
	put(root, "sys/devices/system/cpu/cpu1/online", "1\n");
	put(root, "sys/devices/system/cpu/cpu1/node1", NULL);
	put(root, "sys/devices/system/cpu/cpu2/online", "0\n");
	put(root, "sys/class/net/fxmgmt0/queues/rx-0", NULL);
	put(root, "sys/class/net/fxmgmt0/queues/rx-1", NULL);
	put(root, "sys/class/net/fxlab0/queues/rx-0", NULL);
	put(root, "proc/net/route",
	    "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
	    "fxmgmt0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n"
	    "fxlab0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n");
	put(root, "proc/net/ipv6_route", "");
	put(root, "sys/bus/pci/devices/0000:03:00.0/numa_node", "0\n");
	put(root, "sys/bus/pci/devices/0000:03:00.0/net/fxmgmt0", NULL);
	snprintf(cmd, sizeof(cmd), "%s/sys/bus/pci/devices/0000:03:00.0/driver",
		 root);
	assert_int_equal(symlink("../../../bus/pci/drivers/vfio-pci", cmd), 0);

	config_defaults(&cfg);
	cfg.conn_table_size = 1024;
	cfg.n_ports = 1;
	cfg.ports[0] = (struct port_config){ .name = "lab",
		.driver = PORT_DRIVER_AF_PACKET, .iface = "fxlab0" };
	assert_int_equal(run_preflight(root, out, sizeof(out)), 0);
	assert_true(contains(out, "ok: hugepages of 2048 kB: 512 reserved, "
			     "500 free"));
	assert_true(contains(out, "ok: lcores 0-1"));
	assert_true(contains(out, "ok: port lab: af_packet fxlab0"));
	assert_false(contains(out, "error:"));

	/* the interface with the default route, by name and through PCI */
	cfg.ports[0].driver = PORT_DRIVER_AF_XDP;
	snprintf(cfg.ports[0].iface, sizeof(cfg.ports[0].iface), "fxmgmt0");
	cfg.ports[1] = (struct port_config){ .name = "nic",
		.driver = PORT_DRIVER_PCI, .pci = "0000:03:00.0" };
	cfg.n_ports = 2;
	assert_int_equal(run_preflight(root, out, sizeof(out)), 2);
	assert_true(contains(out, "error: port lab: fxmgmt0 carries the default "
			     "IPv4 route"));
	assert_true(contains(out, "error: port nic: fxmgmt0 carries the default"));
	/* worker lcore 1 sits on node 1, the NIC on node 0 */
	assert_true(contains(out, "warning: port nic: 0000:03:00.0 is on NUMA "
			     "node 0, but worker lcore(s) 1"));
	cfg.ports[0].allow_mgmt = true;
	cfg.ports[1].allow_mgmt = true;
	assert_int_equal(run_preflight(root, out, sizeof(out)), 0);
	assert_true(contains(out, "warning: port lab: fxmgmt0 carries"));

	/* missing things, offline CPUs, a starved pool */
	cfg.n_ports = 1;
	cfg.ports[0] = (struct port_config){ .name = "lab",
		.driver = PORT_DRIVER_AF_PACKET, .iface = "fxnone0" };
	snprintf(cfg.lcores, sizeof(cfg.lcores), "0-3");
	cfg.worker_lcores[1] = 2;
	cfg.n_workers = 2;
	cfg.mempool_size = 1000;
	cfg.memory_mb = 4096;
	assert_int_equal(run_preflight(root, out, sizeof(out)), 5);
	assert_true(contains(out, "error: hugepages: memory_mb = 4096, but only "
			     "1000 MB are free"));
	assert_true(contains(out, "error: lcore 2: CPU 2 is offline"));
	assert_true(contains(out, "error: lcore 3: this host has no CPU 3"));
	assert_true(contains(out, "error: mempool_size 1000 is too small"));
	assert_true(contains(out, "error: port lab: interface fxnone0 does not "
			     "exist"));

	cfg.no_huge = true;
	cfg.in_memory = false;
	snprintf(cfg.lcores, sizeof(cfg.lcores), "0-1");
	cfg.n_workers = 1;
	cfg.mempool_size = 16383;
	cfg.n_ports = 0;
	assert_int_equal(run_preflight(root, out, sizeof(out)), 0);
	assert_true(contains(out, "ok: hugepages: not used"));

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_text),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_many_backends),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_lcore_list),
		cmocka_unit_test(test_min_mbufs),
		cmocka_unit_test(test_preflight_fake_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
