/* Brings a configured port up on its DPDK driver after EAL init: a PCI
 * device EAL has probed from its allow-list, or a virtual device (AF_XDP,
 * AF_PACKET, pcap, tap, null, ring) created here. With `exception`, also a
 * tap device, fx-NAME, through which the host's own traffic on the port
 * reaches the kernel. */
#ifndef FULCRUM_PORT_H
#define FULCRUM_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "config.h"

struct port_runtime {
	uint16_t port_id;
	uint16_t tap_port_id;       /* UINT16_MAX if none */
	struct rte_ether_addr mac;
	uint16_t n_rxq, n_txq;      /* n_rxq may exceed what was asked for:
				     * see port_open */
	uint16_t mtu;
	bool rss;                   /* the NIC spreads flows over the RX queues
				     * by hash; without it a multi-queue port
				     * relies on the driver (AF_PACKET fanout,
				     * the NIC's own RSS under AF_XDP) */
	int socket_id;
	bool probed;                /* a vdev of ours, removed on close */
};

/* What identifies the port to DPDK: for PCI, the bus address (given to EAL
 * as an -a allow-list entry); otherwise the vdev string for
 * rte_dev_probe(), "net_DRIVER_NAME,key=value,...", with queues for
 * n_rxq/n_txq where the driver takes them from its arguments.
 *
 * pcap reads pcap_rx through one RX queue, so it takes n_rxq = 1. It
 * writes TX queue 0 to pcap_tx and TX queue q > 0 to "pcap_tx.q", as
 * queues cannot share a file. null takes nothing in and drops what it is
 * given; ring loops what is sent on queue q back to RX queue q.
 * Returns 0, or -1 if buf is too small. */
int port_devargs(const struct port_config *cfg, const char *name,
		 uint16_t n_rxq, uint16_t n_txq, char *buf, size_t len);

/* Attaches and configures the port with n_rxq RX queues (RSS over them
 * where the driver offers it) and n_txq TX queues of rx_desc/tx_desc
 * descriptors, RX buffers from pool; applies the configured MTU and MAC;
 * starts it, and its exception tap when cfg->exception. Returns 0, or -1
 * with err saying why; nothing stays open on failure.
 *
 * af_packet, af_xdp and tap have a kernel socket or queue per queue pair,
 * and the kernel spreads received flows over all of them, so these ports
 * get max(n_rxq, n_txq) RX queues (out->n_rxq): traffic arrives on each,
 * and a queue nobody polls loses its share.
 *
 * On af_packet and af_xdp a configured mtu or mac is applied to the
 * kernel interface, which keeps it after port_close. */
int port_open(const struct port_config *cfg, const char *name,
	      uint16_t n_rxq, uint16_t n_txq, struct rte_mempool *pool,
	      unsigned int rx_desc, unsigned int tx_desc,
	      struct port_runtime *out, char *err, size_t err_len);

/* Stops and closes the port and its tap, and removes the vdevs. */
void port_close(struct port_runtime *p);

#endif
