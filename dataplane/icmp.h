/* ICMP that concerns a VIP: answer pings ourselves, and send "fragmentation
 * needed" / "packet too big" to the backend that owns the quoted flow, so
 * that path MTU discovery keeps working behind direct server return. */
#ifndef FULCRUM_ICMP_H
#define FULCRUM_ICMP_H

#include <stdbool.h>

#include <rte_mbuf.h>

#include "counters.h"
#include "flow.h"
#include "pkt_parse.h"

enum icmp_kind {
	ICMP_ECHO_REQUEST,
	ICMP_PMTU,          /* frag needed (v4) or packet too big (v6) */
	ICMP_NDP_SOLICIT,
	ICMP_NDP_ADVERT,
	ICMP_OTHER,
};

enum icmp_kind icmp_classify(const struct rte_mbuf *m,
			     const struct pkt_info *info);

/* Turns an echo request into its reply in place (addresses and MACs
 * swapped, checksums fixed). */
void icmp_echo_reply(struct rte_mbuf *m, const struct pkt_info *info);

/* Reads the header an ICMP error quotes (routers may quote only 8 bytes
 * of TCP/UDP) and writes the flow as the client sent it: the quoted
 * packet went from the VIP to the client, so it is turned around.
 * Returns FWD_OK or a drop reason. */
enum drop_reason icmp_quoted_flow(const struct rte_mbuf *m,
				  const struct pkt_info *info,
				  struct flow_key *flow);

#endif
