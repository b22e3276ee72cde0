/* First stage of the packet's journey: read the headers of a frame once,
 * check every length against the frame before trusting it, and sort the
 * frame into what the rest of the pipeline does with it. */
#ifndef FULCRUM_PKT_PARSE_H
#define FULCRUM_PKT_PARSE_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "counters.h"
#include "flow.h"

enum pkt_class {
	PKT_DROP,       /* malformed: pkt_info.drop says why */
	PKT_L4,         /* TCP or UDP with a complete 5-tuple */
	PKT_FRAGMENT,   /* an IP fragment: ports unknown, left zero */
	PKT_ICMP,       /* ICMP or ICMPv6 with at least its 8-byte header */
	PKT_ARP,
	PKT_OTHER,      /* IP we do not balance (other protocols, ESP...) */
};

struct pkt_info {
	struct flow_key key;   /* src, dst, ports, proto, family */
	uint16_t l3_off;       /* IP (or ARP) header, after Ethernet and VLAN */
	uint16_t l4_off;       /* TCP/UDP/ICMP header */
	uint16_t l3_len;       /* IP packet length by its own header */
	uint8_t tcp_flags;
	uint8_t drop;          /* enum drop_reason, for PKT_DROP */
};

/* The IPv6 extension headers walked before giving up; real traffic
 * carries at most two or three. */
#define PKT_MAX_IPV6_EXT 8

enum pkt_class pkt_parse(const struct rte_mbuf *m, struct pkt_info *info);

#endif
