/* ARP and IPv6 neighbour discovery on the dataplane's ports: answer for
 * the host's own addresses and the VIPs, learn backends' and gateways'
 * MACs from what they send, and build the probes that ask for them. */
#ifndef FULCRUM_NEIGH_PROTO_H
#define FULCRUM_NEIGH_PROTO_H

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "counters.h"
#include "fwd_state.h"
#include "pkt_parse.h"

enum neigh_verdict {
	NEIGH_REPLY,       /* the frame is now our answer: send it back */
	NEIGH_TO_KERNEL,   /* learned from, and the host stack wants it too */
	NEIGH_DROP,        /* malformed: reason in *why */
};

enum neigh_verdict arp_input(struct rte_mbuf *m, const struct pkt_info *info,
			     const struct fwd_state *fwd, uint16_t port,
			     uint32_t now, struct worker_counters *cnt,
			     enum drop_reason *why);

/* For ICMPv6 neighbour solicitations and advertisements. */
enum neigh_verdict ndp_input(struct rte_mbuf *m, const struct pkt_info *info,
			     const struct fwd_state *fwd, uint16_t port,
			     uint32_t now, struct worker_counters *cnt,
			     enum drop_reason *why);

/* A who-has for target, from port's own MAC and address. */
struct rte_mbuf *arp_request(struct rte_mempool *mp,
			     const struct fwd_port *port, rte_be32_t target);
struct rte_mbuf *ndp_solicit(struct rte_mempool *mp,
			     const struct fwd_port *port,
			     const uint8_t target[16]);

#endif
