/* How a packet leaves for its backend, by the service's forwarding mode:
 * L2 direct server return rewrites the MACs only; IPIP and GUE wrap the
 * untouched client packet in an outer IP (and UDP + GUE) header addressed
 * to the backend, which answers the client directly. */
#ifndef FULCRUM_ENCAP_H
#define FULCRUM_ENCAP_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "constants.h"
#include "counters.h"
#include "ip_addr.h"
#include "pkt_parse.h"

#define GUE_HDR_LEN 4

struct encap_target {
	const union ip_addr *src;     /* our address on the output port */
	const union ip_addr *dst;     /* the backend */
	uint8_t family;               /* of src and dst */
	uint16_t mtu;                 /* output port's IP MTU */
	rte_be16_t gue_sport;         /* GUE only: flow entropy */
	rte_be16_t gue_dport;
};

/* Both return FWD_OK or a drop reason; on a drop the mbuf is unchanged
 * except for trailing Ethernet padding. */
enum drop_reason encap_ipip(struct rte_mbuf *m, const struct pkt_info *info,
			    const struct encap_target *t);
enum drop_reason encap_gue(struct rte_mbuf *m, const struct pkt_info *info,
			   const struct encap_target *t);

static inline void set_macs(struct rte_mbuf *m, const struct rte_ether_addr *dst,
			    const struct rte_ether_addr *src)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

	rte_ether_addr_copy(dst, &eth->dst_addr);
	rte_ether_addr_copy(src, &eth->src_addr);
}

#endif
