/* Port bring-up per DPDK driver; see port.h. */
#include "port.h"

#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#define DEVARGS_LEN 2048

/* Drivers answer -1 for many reasons (and EPERM is 1), having logged the
 * real one; pass on only errors that say something. */
static const char *why(int ret)
{
	return ret == -1 ? "failed (see the driver's log above)" :
			   rte_strerror(-ret);
}

static int __rte_format_printf(3, 4)
fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -1;
}

/* Appends to buf at *pos; false once it no longer fits. */
static bool __rte_format_printf(4, 5)
append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	*pos += (size_t)n;
	return *pos < len;
}

int port_devargs(const struct port_config *cfg, const char *name,
		 uint16_t n_rxq, uint16_t n_txq, char *buf, size_t len)
{
	uint16_t n_queues = RTE_MAX(n_rxq, n_txq);
	size_t pos = 0;
	bool ok = true;

	switch (cfg->driver) {
	case PORT_DRIVER_PCI:
		ok = append(buf, len, &pos, "%s", cfg->pci);
		break;
	case PORT_DRIVER_AF_XDP:
		ok = append(buf, len, &pos, "net_af_xdp_%s,iface=%s,"
			    "start_queue=0,queue_count=%u", name, cfg->iface,
			    n_queues);
		break;
	case PORT_DRIVER_AF_PACKET:
		ok = append(buf, len, &pos, "net_af_packet_%s,iface=%s,qpairs=%u",
			    name, cfg->iface, n_queues);
		break;
	case PORT_DRIVER_PCAP:
		/* The driver makes a queue per file argument; without
		 * rx_pcap it makes one that receives nothing. */
		ok = append(buf, len, &pos, "net_pcap_%s", name);
		if (cfg->pcap_rx[0])
			ok = ok && append(buf, len, &pos, ",rx_pcap=%s",
					  cfg->pcap_rx);
		for (uint16_t q = 0; q < n_txq; q++) {
			if (!cfg->pcap_tx[0])
				ok = ok && append(buf, len, &pos,
						  ",tx_pcap=/dev/null");
			else if (q == 0)
				ok = ok && append(buf, len, &pos, ",tx_pcap=%s",
						  cfg->pcap_tx);
			else
				ok = ok && append(buf, len, &pos,
						  ",tx_pcap=%s.%u", cfg->pcap_tx,
						  q);
		}
		break;
	case PORT_DRIVER_TAP:
		ok = append(buf, len, &pos, "net_tap_%s,iface=%s", name,
			    cfg->iface);
		break;
	case PORT_DRIVER_NULL:
		/* without no-rx the null driver makes up packets as fast
		 * as it is polled */
		ok = append(buf, len, &pos, "net_null_%s,no-rx=1", name);
		break;
	case PORT_DRIVER_RING:
		ok = append(buf, len, &pos, "net_ring_%s", name);
		break;
	}
	return ok ? 0 : -1;
}

static void close_port(uint16_t port_id, bool remove)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;

	if (rte_eth_dev_info_get(port_id, &info) == 0)
		dev = info.device;
	/* Best effort on the way out: a port that never started refuses to
	 * stop, and there is nothing to do about a failed close. */
	(void)rte_eth_dev_stop(port_id);
	(void)rte_eth_dev_close(port_id);
	if (remove && dev)
		(void)rte_dev_remove(dev);
}

/* EAL has probed an allow-listed PCI device already; find its port. */
static int find_pci_port(const struct port_config *cfg, const char *name,
			 uint16_t *port_id, char *err, size_t err_len)
{
	uint16_t pid;

	RTE_ETH_FOREACH_DEV(pid) {
		struct rte_eth_dev_info info;

		if (rte_eth_dev_info_get(pid, &info) == 0 &&
		    strcmp(rte_dev_name(info.device), cfg->pci) == 0) {
			*port_id = pid;
			return 0;
		}
	}
	return fail(err, err_len, "port %s: DPDK has no port on PCI device %s; "
		    "is it bound to vfio-pci, and is there a DPDK driver for it "
		    "(see the EAL log above)?", name, cfg->pci);
}

static int probe_vdev(const char *devargs, const char *name,
		      uint16_t *port_id, char *err, size_t err_len)
{
	char vdev[RTE_DEV_NAME_MAX_LEN];
	int ret;

	snprintf(vdev, sizeof(vdev), "%.*s", (int)strcspn(devargs, ","),
		 devargs);
	ret = rte_dev_probe(devargs);
	if (ret < 0)
		return fail(err, err_len, "port %s: cannot create %s: %s", name,
			    devargs, why(ret));
	if (rte_eth_dev_get_port_by_name(vdev, port_id) != 0) {
		(void)rte_eal_hotplug_remove("vdev", vdev);
		return fail(err, err_len, "port %s: %s made no ethdev port",
			    name, vdev);
	}
	return 0;
}

/* Frames of the port's MTU must fit one mbuf: the packet path does not
 * follow mbuf chains, so RX scatter stays off. */
static int check_mtu(const char *name, uint16_t mtu,
		     const struct rte_eth_dev_info *info,
		     struct rte_mempool *pool, char *err, size_t err_len)
{
	unsigned int room = rte_pktmbuf_data_room_size(pool) -
			    RTE_PKTMBUF_HEADROOM;
	unsigned int frame = mtu + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;

	if (mtu < info->min_mtu || mtu > info->max_mtu)
		return fail(err, err_len, "port %s: mtu %u is outside what its "
			    "driver allows (%u to %u)", name, mtu, info->min_mtu,
			    info->max_mtu);
	if (frame > room)
		return fail(err, err_len, "port %s: mtu %u makes frames of up to "
			    "%u bytes, more than the %u an mbuf holds", name, mtu,
			    frame, room);
	return 0;
}

static int setup_queues(uint16_t pid, const char *name, uint16_t n_rxq,
			uint16_t n_txq, unsigned int rx_desc,
			unsigned int tx_desc, int socket,
			struct rte_mempool *pool, char *err, size_t err_len)
{
	uint16_t nb_rxd = (uint16_t)RTE_MIN(rx_desc, (unsigned int)UINT16_MAX);
	uint16_t nb_txd = (uint16_t)RTE_MIN(tx_desc, (unsigned int)UINT16_MAX);
	int ret;

	ret = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	if (ret < 0)
		return fail(err, err_len, "port %s: descriptor counts: %s", name,
			    why(ret));
	for (uint16_t q = 0; q < n_rxq; q++) {
		ret = rte_eth_rx_queue_setup(pid, q, nb_rxd, (unsigned int)socket,
					     NULL, pool);
		if (ret < 0)
			return fail(err, err_len, "port %s: RX queue %u: %s",
				    name, q, why(ret));
	}
	for (uint16_t q = 0; q < n_txq; q++) {
		ret = rte_eth_tx_queue_setup(pid, q, nb_txd, (unsigned int)socket,
					     NULL);
		if (ret < 0)
			return fail(err, err_len, "port %s: TX queue %u: %s",
				    name, q, why(ret));
	}
	return 0;
}

/* Configures, sets up queues, MTU and MAC, and starts one ethdev port. */
static int bring_up(uint16_t pid, const char *name, uint16_t n_rxq,
		    uint16_t n_txq, uint16_t mtu,
		    const struct rte_ether_addr *mac, bool multicast, int socket,
		    struct rte_mempool *pool, unsigned int rx_desc,
		    unsigned int tx_desc, bool *rss, char *err, size_t err_len)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf = { 0 };
	int ret;

	ret = rte_eth_dev_info_get(pid, &info);
	if (ret < 0)
		return fail(err, err_len, "port %s: %s", name, why(ret));
	if (n_rxq > info.max_rx_queues || n_txq > info.max_tx_queues)
		return fail(err, err_len, "port %s: needs %u RX and %u TX queues "
			    "(one per worker, and a TX queue for the main lcore); "
			    "its driver %s offers %u and %u", name, n_rxq, n_txq,
			    info.driver_name, info.max_rx_queues,
			    info.max_tx_queues);
	*rss = false;
	if (n_rxq > 1) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP |
			       RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;

		if (hf) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
			*rss = true;
		}
	}
	if (mtu) {
		if (check_mtu(name, mtu, &info, pool, err, err_len) < 0)
			return -1;
		conf.rxmode.mtu = mtu;
	}
	ret = rte_eth_dev_configure(pid, n_rxq, n_txq, &conf);
	if (ret < 0)
		return fail(err, err_len, "port %s: configure: %s", name,
			    why(ret));
	/* configure only records the MTU; set_mtu is what makes drivers on
	 * a kernel interface (af_packet, tap) apply it there */
	if (mtu) {
		ret = rte_eth_dev_set_mtu(pid, mtu);
		if (ret < 0)
			return fail(err, err_len, "port %s: mtu %u: %s", name,
				    mtu, why(ret));
	}
	if (setup_queues(pid, name, n_rxq, n_txq, rx_desc, tx_desc, socket, pool,
			 err, err_len) < 0)
		return -1;
	if (mac && !rte_is_zero_ether_addr(mac)) {
		struct rte_ether_addr want = *mac;

		ret = rte_eth_dev_default_mac_addr_set(pid, &want);
		/* A NIC that cannot take our MAC must still let its frames
		 * in. */
		if (ret == -ENOTSUP)
			ret = rte_eth_promiscuous_enable(pid);
		if (ret < 0)
			return fail(err, err_len, "port %s: cannot use the "
				    "configured mac: %s", name, why(ret));
	}
	/* IPv6 neighbour solicitations go to solicited-node multicast
	 * groups, which the NIC would otherwise filter out. */
	if (multicast) {
		ret = rte_eth_allmulticast_enable(pid);
		if (ret < 0 && ret != -ENOTSUP)
			return fail(err, err_len, "port %s: all-multicast: %s",
				    name, why(ret));
	}
	ret = rte_eth_dev_start(pid);
	if (ret < 0)
		return fail(err, err_len, "port %s: start: %s", name,
			    why(ret));
	return 0;
}

/* The host's side of the port: a tap with the port's MAC, so that what
 * the kernel sends through it leaves the port as the port's own. */
static int open_tap(const char *name, struct rte_mempool *pool,
		    unsigned int rx_desc, unsigned int tx_desc,
		    struct port_runtime *out, char *err, size_t err_len)
{
	char devargs[128], ifname[IFNAMSIZ], mac[RTE_ETHER_ADDR_FMT_SIZE];
	bool rss;

	snprintf(ifname, sizeof(ifname), "fx-%s", name);
	rte_ether_format_addr(mac, sizeof(mac), &out->mac);
	snprintf(devargs, sizeof(devargs), "net_tap_fx_%s,iface=%s,mac=%s",
		 name, ifname, mac);
	if (probe_vdev(devargs, name, &out->tap_port_id, err, err_len) < 0)
		return -1;
	if (bring_up(out->tap_port_id, ifname, 1, 1, out->mtu, NULL, false,
		     out->socket_id, pool, rx_desc, tx_desc, &rss, err,
		     err_len) < 0) {
		close_port(out->tap_port_id, true);
		out->tap_port_id = UINT16_MAX;
		return -1;
	}
	return 0;
}

/* AF_PACKET, AF_XDP and tap have a kernel socket or queue per queue pair,
 * and the kernel spreads received traffic over all of them. */
static bool paired_queues(enum port_driver d)
{
	return d == PORT_DRIVER_AF_PACKET || d == PORT_DRIVER_AF_XDP ||
	       d == PORT_DRIVER_TAP;
}

int port_open(const struct port_config *cfg, const char *name,
	      uint16_t n_rxq, uint16_t n_txq, struct rte_mempool *pool,
	      unsigned int rx_desc, unsigned int tx_desc,
	      struct port_runtime *out, char *err, size_t err_len)
{
	char devargs[DEVARGS_LEN];
	int ret;

	if (paired_queues(cfg->driver))
		n_rxq = RTE_MAX(n_rxq, n_txq);
	*out = (struct port_runtime){
		.port_id = UINT16_MAX,
		.tap_port_id = UINT16_MAX,
	};
	if (cfg->driver == PORT_DRIVER_PCAP && n_rxq > 1)
		return fail(err, err_len, "port %s: a pcap port reads its file "
			    "through one RX queue, but %u workers want one each; "
			    "use workers = one lcore", name, n_rxq);
	if (port_devargs(cfg, name, n_rxq, n_txq, devargs, sizeof(devargs)) < 0)
		return fail(err, err_len, "port %s: device arguments longer "
			    "than %d characters", name, DEVARGS_LEN - 1);
	if (cfg->driver == PORT_DRIVER_PCI) {
		if (find_pci_port(cfg, name, &out->port_id, err, err_len) < 0)
			return -1;
	} else {
		if (probe_vdev(devargs, name, &out->port_id, err, err_len) < 0)
			return -1;
		out->probed = true;
	}
	/* vdevs have no NUMA node of their own; keep their queues near us */
	out->socket_id = rte_eth_dev_socket_id(out->port_id);
	if (out->socket_id < 0)
		out->socket_id = (int)rte_socket_id();
	if (bring_up(out->port_id, name, n_rxq, n_txq, cfg->mtu, &cfg->mac,
		     cfg->addr6.len > 0, out->socket_id, pool, rx_desc, tx_desc,
		     &out->rss, err, err_len) < 0)
		goto fail;
	ret = rte_eth_macaddr_get(out->port_id, &out->mac);
	if (ret == 0)
		ret = rte_eth_dev_get_mtu(out->port_id, &out->mtu);
	if (ret < 0) {
		fail(err, err_len, "port %s: %s", name, why(ret));
		goto fail;
	}
	/* also where the driver could not take it and runs promiscuous; and
	 * ring ports, which have none, still need one to answer ARP with */
	if (!rte_is_zero_ether_addr(&cfg->mac))
		out->mac = cfg->mac;
	else if (rte_is_zero_ether_addr(&out->mac))
		rte_eth_random_addr(out->mac.addr_bytes);
	out->n_rxq = n_rxq;
	out->n_txq = n_txq;
	if (cfg->exception &&
	    open_tap(name, pool, rx_desc, tx_desc, out, err, err_len) < 0)
		goto fail;
	return 0;
fail:
	port_close(out);
	return -1;
}

void port_close(struct port_runtime *p)
{
	if (p->tap_port_id != UINT16_MAX)
		close_port(p->tap_port_id, true);
	if (p->port_id != UINT16_MAX)
		close_port(p->port_id, p->probed);
	p->tap_port_id = UINT16_MAX;
	p->port_id = UINT16_MAX;
}
