/* Host checks before EAL init; see preflight.h. Everything is read from
 * /sys and /proc (under a root that tests may point elsewhere), so that
 * the checks need no privileges and change nothing. */
#include "preflight.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_common.h>

#define MB (1024u * 1024u)

/* Rough per-item costs for the hugepage estimate: an mbuf with its 2 KB
 * data room, headroom and mempool header; a connection-table entry with
 * its share of rte_hash buckets and key store; and what EAL, rings, Maglev
 * and neighbour tables take besides. */
#define MBUF_BYTES 2560u
#define CONN_BYTES 128u
#define OTHER_MB 64u

enum level { OK, WARNING, ERROR };

struct check {
	FILE *out;
	const char *root;
	int errors;
};

static void __rte_format_printf(3, 4)
say(struct check *c, enum level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "ok", "warning", "error" };
	va_list ap;

	if (level == ERROR)
		c->errors++;
	fprintf(c->out, "%s: ", prefix[level]);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
}

static void __rte_format_printf(4, 5)
host_path(const struct check *c, char *buf, size_t len, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(buf, len, "%s", c->root);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + RTE_MIN(n, len), len - RTE_MIN(n, len), fmt, ap);
	va_end(ap);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The first line of a small sysfs file, without its newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return -1;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static long read_long(const char *path, long fallback)
{
	char buf[64], *end;
	long v;

	if (read_line(path, buf, sizeof(buf)) < 0)
		return fallback;
	v = strtol(buf, &end, 10);
	return end == buf ? fallback : v;
}

uint64_t preflight_min_mbufs(const struct dataplane_config *cfg)
{
	uint64_t rxq = 0, txq = 0, lcores = cfg->n_workers + 1;

	for (unsigned int i = 0; i < cfg->n_ports; i++) {
		rxq += cfg->n_workers;
		txq += cfg->n_workers;
		if (cfg->ports[i].exception) {
			rxq++;
			txq++;
		}
	}
	return rxq * cfg->rx_desc + txq * cfg->tx_desc +
	       lcores * (cfg->mempool_cache * 3 / 2 + 2 * cfg->burst);
}

static uint64_t estimate_mb(const struct dataplane_config *cfg)
{
	uint64_t bytes = (uint64_t)cfg->mempool_size * MBUF_BYTES +
			 (uint64_t)cfg->n_workers * cfg->conn_table_size *
			 CONN_BYTES;

	return bytes / MB + OTHER_MB;
}

static bool hugetlbfs_mounted(const struct check *c)
{
	char path[PATH_MAX], line[512], type[64];
	bool found = false;
	FILE *f;

	host_path(c, path, sizeof(path), "/proc/mounts");
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %63s", type) == 1 &&
			strcmp(type, "hugetlbfs") == 0;
	fclose(f);
	return found;
}

static void check_hugepages(struct check *c, const struct dataplane_config *cfg)
{
	char path[PATH_MAX];
	uint64_t free_mb = 0, need_mb = estimate_mb(cfg);
	struct dirent *d;
	DIR *dir;

	if (cfg->no_huge) {
		say(c, OK, "hugepages: not used (no_huge = yes; fine for tests, "
		    "slow for traffic)");
		for (unsigned int i = 0; i < cfg->n_ports; i++)
			if (cfg->ports[i].driver == PORT_DRIVER_PCI)
				say(c, WARNING, "port %s: PCI drivers generally "
				    "cannot DMA into the ordinary memory no_huge "
				    "gives", cfg->ports[i].name);
		return;
	}
	host_path(c, path, sizeof(path), "/sys/kernel/mm/hugepages");
	dir = opendir(path);
	if (!dir) {
		say(c, ERROR, "hugepages: this kernel offers none (%s is "
		    "missing); set no_huge = yes for a test run", path);
		return;
	}
	while ((d = readdir(dir))) {
		unsigned long kb;
		long nr, nfree;

		if (sscanf(d->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		host_path(c, path, sizeof(path),
			  "/sys/kernel/mm/hugepages/%s/nr_hugepages", d->d_name);
		nr = read_long(path, 0);
		host_path(c, path, sizeof(path),
			  "/sys/kernel/mm/hugepages/%s/free_hugepages", d->d_name);
		nfree = read_long(path, 0);
		if (nr > 0)
			say(c, OK, "hugepages of %lu kB: %ld reserved, %ld free",
			    kb, nr, nfree);
		free_mb += (uint64_t)RTE_MAX(nfree, 0L) * kb / 1024;
	}
	closedir(dir);

	/* With --in-memory EAL takes hugepages through memfd and needs no
	 * mount; otherwise it keeps its page files on a hugetlbfs. */
	if (!hugetlbfs_mounted(c)) {
		if (cfg->in_memory)
			say(c, OK, "hugetlbfs: none mounted, which in_memory "
			    "does not need");
		else
			say(c, ERROR, "hugetlbfs: none mounted; mount one "
			    "(mount -t hugetlbfs nodev /dev/hugepages) or set "
			    "in_memory = yes");
	}
	if (free_mb == 0)
		say(c, ERROR, "hugepages: none free; reserve some, e.g. echo "
		    "512 > /sys/kernel/mm/hugepages/hugepages-2048kB/"
		    "nr_hugepages (scripts/setup does this)");
	else if (cfg->memory_mb && free_mb < cfg->memory_mb)
		say(c, ERROR, "hugepages: memory_mb = %u, but only %" PRIu64
		    " MB are free", cfg->memory_mb, free_mb);
	else if (cfg->memory_mb && cfg->memory_mb < need_mb)
		say(c, WARNING, "hugepages: memory_mb = %u looks too small; the "
		    "mbuf pool and connection tables want about %" PRIu64 " MB",
		    cfg->memory_mb, need_mb);
	else if (free_mb < need_mb)
		say(c, WARNING, "hugepages: %" PRIu64 " MB free, but the mbuf "
		    "pool and connection tables want about %" PRIu64 " MB; "
		    "reserve more, or lower mempool_size or conn_table_size",
		    free_mb, need_mb);
	else
		say(c, OK, "hugepages: %" PRIu64 " MB free, about %" PRIu64
		    " MB needed", free_mb, need_mb);
}

static void check_lcore(struct check *c, unsigned int lcore,
			const cpu_set_t *allowed)
{
	char path[PATH_MAX];

	host_path(c, path, sizeof(path), "/sys/devices/system/cpu/cpu%u",
		  lcore);
	if (!exists(path)) {
		say(c, ERROR, "lcore %u: this host has no CPU %u", lcore, lcore);
		return;
	}
	/* cpu0 often has no "online" file, as it cannot be taken down */
	host_path(c, path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online",
		  lcore);
	if (read_long(path, 1) == 0)
		say(c, ERROR, "lcore %u: CPU %u is offline", lcore, lcore);
	else if (allowed && !CPU_ISSET(lcore, allowed))
		say(c, ERROR, "lcore %u: this process may not run on CPU %u "
		    "(see taskset, or the cgroup's cpuset)", lcore, lcore);
}

static void check_lcores(struct check *c, const struct dataplane_config *cfg)
{
	unsigned int ids[RTE_MAX_LCORE], n;
	bool listed[RTE_MAX_LCORE] = { false }, worker[RTE_MAX_LCORE] = { false };
	int errors = c->errors;
	cpu_set_t allowed;
	bool real_host = c->root[0] == '\0';
	const char *why;

	if (config_lcore_list(cfg->lcores, ids, &n, &why) < 0) {
		say(c, ERROR, "lcores '%s': %s", cfg->lcores, why);
		return;
	}
	if (real_host && sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		real_host = false;
	for (unsigned int i = 0; i < n; i++) {
		listed[ids[i]] = true;
		check_lcore(c, ids[i], real_host ? &allowed : NULL);
	}
	if (cfg->main_lcore >= RTE_MAX_LCORE || !listed[cfg->main_lcore])
		say(c, ERROR, "main_lcore %u is not in lcores '%s'",
		    cfg->main_lcore, cfg->lcores);
	for (unsigned int i = 0; i < cfg->n_workers; i++) {
		unsigned int w = cfg->worker_lcores[i];

		if (w >= RTE_MAX_LCORE || !listed[w])
			say(c, ERROR, "worker lcore %u is not in lcores '%s'", w,
			    cfg->lcores);
		else if (w == cfg->main_lcore)
			say(c, ERROR, "worker lcore %u is the main lcore; workers "
			    "need lcores of their own", w);
		else if (worker[w])
			say(c, ERROR, "worker lcore %u is listed twice", w);
		else
			worker[w] = true;
	}
	if (c->errors == errors)
		say(c, OK, "lcores %s: online and usable; main lcore %u, %u "
		    "worker(s)", cfg->lcores, cfg->main_lcore, cfg->n_workers);
}

static void check_mempool(struct check *c, const struct dataplane_config *cfg)
{
	uint64_t need = preflight_min_mbufs(cfg);

	if (cfg->mempool_size < need)
		say(c, ERROR, "mempool_size %u is too small: the ports' queues "
		    "and the lcores' caches can hold %" PRIu64 " mbufs at once, "
		    "and a pool that runs dry stops reception; set it to at "
		    "least %" PRIu64, cfg->mempool_size, need, need);
	else
		say(c, OK, "mempool_size %u covers the %" PRIu64 " mbufs the "
		    "queues and caches can hold", cfg->mempool_size, need);
}

/* /proc/net/route: "Iface Destination Gateway Flags ... Mask ...", hex;
 * /proc/net/ipv6_route: "dest plen src splen nexthop metric refcnt use
 * flags iface". A default route has destination and mask (length) zero;
 * only routes that are up and not "unreachable" ones count (the kernel
 * keeps an unreachable IPv6 default on lo). */
static bool has_default_route(const struct check *c, const char *iface,
			      bool v6)
{
	char path[PATH_MAX], line[512], name[IFNAMSIZ + 1], dest[33];
	unsigned int len, flags;
	bool found = false;
	FILE *f;

	host_path(c, path, sizeof(path), v6 ? "/proc/net/ipv6_route" :
					      "/proc/net/route");
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		int n = v6 ? sscanf(line, "%32s %x %*s %*s %*s %*s %*s %*s %x "
				    "%16s", dest, &len, &flags, name) :
			     sscanf(line, "%16s %32s %*s %x %*s %*s %*s %x", name,
				    dest, &flags, &len);

		found = n == 4 && len == 0 && strspn(dest, "0") == strlen(dest) &&
			(flags & (RTF_UP | RTF_REJECT)) == RTF_UP &&
			strcmp(name, iface) == 0;
	}
	fclose(f);
	return found;
}

/* An address others can reach the host on: not loopback, not link-local. */
static bool host_reachable_at(const char *iface, char *addr, size_t len)
{
	struct ifaddrs *all, *ifa;
	bool found = false;

	if (getifaddrs(&all) < 0)
		return false;
	for (ifa = all; ifa && !found; ifa = ifa->ifa_next) {
		const struct sockaddr *sa = ifa->ifa_addr;

		if (!sa || strcmp(ifa->ifa_name, iface) != 0)
			continue;
		if (sa->sa_family == AF_INET) {
			const struct in_addr *a =
				&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
			uint32_t h = ntohl(a->s_addr);

			found = (h >> 24) != 127 && (h >> 16) != 0xa9fe;
			inet_ntop(AF_INET, a, addr, (socklen_t)len);
		} else if (sa->sa_family == AF_INET6) {
			const struct in6_addr *a =
				&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

			found = !IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_LOOPBACK(a);
			inet_ntop(AF_INET6, a, addr, (socklen_t)len);
		}
	}
	freeifaddrs(all);
	return found;
}

/* Taking the interface the host is managed through cuts the host off (PCI,
 * AF_XDP) or makes the dataplane answer for it (AF_PACKET). */
static void check_not_mgmt(struct check *c, const struct port_config *pc,
			   const char *iface)
{
	char addr[INET6_ADDRSTRLEN], why[INET6_ADDRSTRLEN + 64];

	if (has_default_route(c, iface, false))
		snprintf(why, sizeof(why), "carries the default IPv4 route");
	else if (has_default_route(c, iface, true))
		snprintf(why, sizeof(why), "carries the default IPv6 route");
	else if (host_reachable_at(iface, addr, sizeof(addr)))
		snprintf(why, sizeof(why), "has address %s, which the host is "
			 "reachable on", addr);
	else
		return;
	if (pc->allow_mgmt)
		say(c, WARNING, "port %s: %s %s; taking it as allow_mgmt = yes",
		    pc->name, iface, why);
	else
		say(c, ERROR, "port %s: %s %s, so it looks like the host's own "
		    "interface; choose another, or set allow_mgmt = yes if you "
		    "mean it", pc->name, iface, why);
}

/* AF_XDP binds a socket to each of NIC queues 0..N-1, one per TX queue
 * the port gets (one per worker). The NIC hashes
 * flows over all its queues, and what lands on a queue without a socket
 * goes to the kernel instead, so the counts must match. */
static void check_xdp_queues(struct check *c, const struct dataplane_config *cfg,
			     const struct port_config *pc)
{
	char path[PATH_MAX];
	unsigned int n = 0, need = cfg->n_workers;
	struct dirent *d;
	DIR *dir;

	host_path(c, path, sizeof(path), "/sys/class/net/%s/queues", pc->iface);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir)))
		n += strncmp(d->d_name, "rx-", 3) == 0;
	closedir(dir);
	if (n < need)
		say(c, ERROR, "port %s: af_xdp needs %u queues on %s (one per "
		    "worker), which has %u; try ethtool "
		    "-L %s combined %u", pc->name, need, pc->iface, n, pc->iface,
		    need);
	else if (n > need)
		say(c, WARNING, "port %s: %s has %u queues, and what the NIC "
		    "hashes onto the %u beyond the first %u goes to the kernel, "
		    "not to fulcrum; try ethtool -L %s combined %u", pc->name,
		    pc->iface, n, n - need, need, pc->iface, need);
}

static int cpu_node(const struct check *c, unsigned int cpu)
{
	char path[PATH_MAX];
	struct dirent *d;
	int node = -1;
	DIR *dir;

	host_path(c, path, sizeof(path), "/sys/devices/system/cpu/cpu%u", cpu);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)) && node < 0)
		if (sscanf(d->d_name, "node%d", &node) != 1)
			node = -1;
	closedir(dir);
	return node;
}

/* Packets DMA'd into one socket's memory and handled on another's cores
 * cross the interconnect: it works, at a cost worth knowing about. */
static void check_numa(struct check *c, const struct dataplane_config *cfg,
		       const struct port_config *pc)
{
	char path[PATH_MAX], far[CONFIG_MAX_WORKERS * 4] = "";
	size_t len = 0;
	long node;

	host_path(c, path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node",
		  pc->pci);
	node = read_long(path, -1);
	if (node < 0)
		return;
	for (unsigned int i = 0; i < cfg->n_workers; i++) {
		int wn = cpu_node(c, cfg->worker_lcores[i]);

		if (wn >= 0 && wn != node)
			len += (size_t)snprintf(far + len, sizeof(far) - len,
						"%s%u", len ? "," : "",
						cfg->worker_lcores[i]);
	}
	if (len)
		say(c, WARNING, "port %s: %s is on NUMA node %ld, but worker "
		    "lcore(s) %s are not; their packets cross sockets", pc->name,
		    pc->pci, node, far);
}

static void check_pci(struct check *c, const struct dataplane_config *cfg,
		      const struct port_config *pc)
{
	static const char *const dpdk_ready[] = {
		"vfio-pci", "uio_pci_generic", "igb_uio",
		"mlx5_core", "mlx4_core", /* bifurcated: DPDK shares them */
	};
	char path[PATH_MAX], link[PATH_MAX];
	const char *driver;
	struct dirent *d;
	size_t i = 0;
	ssize_t n;
	DIR *dir;

	host_path(c, path, sizeof(path), "/sys/bus/pci/devices/%s", pc->pci);
	if (!exists(path)) {
		say(c, ERROR, "port %s: there is no PCI device %s", pc->name,
		    pc->pci);
		return;
	}
	host_path(c, path, sizeof(path), "/sys/bus/pci/devices/%s/driver",
		  pc->pci);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		say(c, ERROR, "port %s: %s has no driver; bind it to vfio-pci "
		    "(dpdk-devbind.py -b vfio-pci %s)", pc->name, pc->pci,
		    pc->pci);
	} else {
		link[n] = '\0';
		driver = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		while (i < RTE_DIM(dpdk_ready) && strcmp(driver, dpdk_ready[i]))
			i++;
		if (i == RTE_DIM(dpdk_ready))
			say(c, WARNING, "port %s: %s is bound to kernel driver "
			    "%s, which DPDK usually cannot share; bind it to "
			    "vfio-pci (dpdk-devbind.py -b vfio-pci %s)",
			    pc->name, pc->pci, driver, pc->pci);
	}
	/* A device still bound to a kernel driver has its netdevs here. */
	host_path(c, path, sizeof(path), "/sys/bus/pci/devices/%s/net",
		  pc->pci);
	dir = opendir(path);
	if (dir) {
		while ((d = readdir(dir)))
			if (d->d_name[0] != '.')
				check_not_mgmt(c, pc, d->d_name);
		closedir(dir);
	}
	check_numa(c, cfg, pc);
}

static void check_port(struct check *c, const struct dataplane_config *cfg,
		       const struct port_config *pc)
{
	char path[PATH_MAX];
	int errors = c->errors;

	switch (pc->driver) {
	case PORT_DRIVER_PCI:
		check_pci(c, cfg, pc);
		break;
	case PORT_DRIVER_AF_XDP:
	case PORT_DRIVER_AF_PACKET:
		host_path(c, path, sizeof(path), "/sys/class/net/%s", pc->iface);
		if (!exists(path)) {
			say(c, ERROR, "port %s: interface %s does not exist",
			    pc->name, pc->iface);
			break;
		}
		check_not_mgmt(c, pc, pc->iface);
		if (pc->driver == PORT_DRIVER_AF_XDP)
			check_xdp_queues(c, cfg, pc);
		break;
	case PORT_DRIVER_TAP:
		host_path(c, path, sizeof(path), "/sys/class/net/%s", pc->iface);
		if (exists(path))
			say(c, ERROR, "port %s: interface %s already exists, and "
			    "the tap driver creates its own", pc->name, pc->iface);
		break;
	case PORT_DRIVER_PCAP:
		if (pc->pcap_rx[0] && access(pc->pcap_rx, R_OK) < 0)
			say(c, ERROR, "port %s: cannot read pcap_rx %s", pc->name,
			    pc->pcap_rx);
		break;
	case PORT_DRIVER_NULL:
	case PORT_DRIVER_RING:
		break;
	}
	if (pc->exception) {
		host_path(c, path, sizeof(path), "/sys/class/net/fx-%s",
			  pc->name);
		if (exists(path))
			say(c, ERROR, "port %s: interface fx-%s, for its host "
			    "traffic, already exists (is another fulcrum "
			    "running?)", pc->name, pc->name);
	}
	if (c->errors == errors)
		say(c, OK, "port %s: %s %s", pc->name,
		    port_driver_name(pc->driver),
		    pc->driver == PORT_DRIVER_PCI ? pc->pci :
		    pc->iface[0] ? pc->iface : "");
}

int preflight_check_at(const struct dataplane_config *cfg, FILE *out,
		       const char *root)
{
	struct check c = { .out = out, .root = root };

	check_hugepages(&c, cfg);
	check_lcores(&c, cfg);
	check_mempool(&c, cfg);
	for (unsigned int i = 0; i < cfg->n_ports; i++)
		check_port(&c, cfg, &cfg->ports[i]);
	return c.errors;
}

int preflight_check(const struct dataplane_config *cfg, FILE *out)
{
	return preflight_check_at(cfg, out, "");
}
