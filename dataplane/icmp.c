#include "icmp.h"

#include <netinet/in.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "constants.h"
#include "csum.h"

#define ICMP4_DEST_UNREACH 3
#define ICMP4_FRAG_NEEDED 4
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_NDP_NS 135
#define ICMP6_NDP_NA 136
#define ICMP_QUOTE_OFF 8      /* the quoted packet follows 8 bytes of ICMP */
#define ICMP_QUOTE_L4 8       /* RFC 792: at least 8 bytes of its payload */

enum icmp_kind icmp_classify(const struct rte_mbuf *m,
			     const struct pkt_info *info)
{
	const uint8_t *icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *,
						      info->l4_off);

	if (info->key.family == AF_INET) {
		if (icmp[0] == RTE_IP_ICMP_ECHO_REQUEST && icmp[1] == 0)
			return ICMP_ECHO_REQUEST;
		if (icmp[0] == ICMP4_DEST_UNREACH && icmp[1] == ICMP4_FRAG_NEEDED)
			return ICMP_PMTU;
		return ICMP_OTHER;
	}
	switch (icmp[0]) {
	case ICMP6_ECHO_REQUEST:
		return ICMP_ECHO_REQUEST;
	case ICMP6_PACKET_TOO_BIG:
		return ICMP_PMTU;
	case ICMP6_NDP_NS:
		return ICMP_NDP_SOLICIT;
	case ICMP6_NDP_NA:
		return ICMP_NDP_ADVERT;
	default:
		return ICMP_OTHER;
	}
}

static void swap_macs(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ether_addr tmp = eth->src_addr;

	eth->src_addr = eth->dst_addr;
	eth->dst_addr = tmp;
}

void icmp_echo_reply(struct rte_mbuf *m, const struct pkt_info *info)
{
	uint8_t *l3 = rte_pktmbuf_mtod_offset(m, uint8_t *, info->l3_off);
	struct rte_icmp_hdr *icmp = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *,
							    info->l4_off);
	uint16_t old_word = *(uint16_t *)icmp;

	swap_macs(m);
	if (info->key.family == AF_INET) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;

		ip->dst_addr = ip->src_addr;
		ip->src_addr = info->key.dst.v4;
		ip->time_to_live = FULCRUM_TTL;
		ipv4_set_csum(ip);
		icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)l3;

		/* swapping addresses leaves the pseudo-header sum as it was */
		memcpy(ip->dst_addr, ip->src_addr, 16);
		memcpy(ip->src_addr, info->key.dst.v6, 16);
		ip->hop_limits = FULCRUM_TTL;
		icmp->icmp_type = ICMP6_ECHO_REPLY;
	}
	icmp->icmp_cksum = csum_replace2(icmp->icmp_cksum, old_word,
					 *(uint16_t *)icmp);
}

enum drop_reason icmp_quoted_flow(const struct rte_mbuf *m,
				  const struct pkt_info *info,
				  struct flow_key *flow)
{
	uint32_t off = (uint32_t)info->l4_off + ICMP_QUOTE_OFF;
	uint32_t end = (uint32_t)info->l3_off + info->l3_len;
	const uint8_t *q = rte_pktmbuf_mtod_offset(m, const uint8_t *, off);
	const rte_be16_t *ports;
	uint32_t qlen;

	if (end > m->data_len)
		end = m->data_len;
	memset(flow, 0, sizeof(*flow));
	flow->family = info->key.family;
	if (info->key.family == AF_INET) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)q;

		if (off + sizeof(*ip) > end || (ip->version_ihl >> 4) != 4)
			return DROP_ICMP_BAD_QUOTE;
		qlen = (uint32_t)(ip->version_ihl & 0xf) * 4;
		flow->proto = ip->next_proto_id;
		flow->src.v4 = ip->dst_addr;
		flow->dst.v4 = ip->src_addr;
	} else {
		const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)q;

		if (off + sizeof(*ip) > end)
			return DROP_ICMP_BAD_QUOTE;
		qlen = sizeof(*ip);
		flow->proto = ip->proto;
		memcpy(flow->src.v6, ip->dst_addr, 16);
		memcpy(flow->dst.v6, ip->src_addr, 16);
	}
	if (qlen < sizeof(struct rte_ipv4_hdr) || off + qlen + ICMP_QUOTE_L4 > end ||
	    (flow->proto != IPPROTO_TCP && flow->proto != IPPROTO_UDP))
		return DROP_ICMP_BAD_QUOTE;
	ports = (const rte_be16_t *)(q + qlen);
	flow->sport = ports[1];
	flow->dport = ports[0];
	return FWD_OK;
}
