#include "neigh_proto.h"

#include <netinet/in.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "constants.h"

#define ND_OPT_SOURCE_LL 1
#define ND_OPT_TARGET_LL 2
#define ND_MSG_LEN 24            /* type..target, before options */
#define ND_OPT_LL_LEN 8
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE 0x20
#define ICMP6_NDP_NS 135
#define ICMP6_NDP_NA 136

static bool answers_for(const struct fwd_state *fwd, uint16_t port,
			const union ip_addr *addr, uint8_t family)
{
	return fwd_port_owns(&fwd->ports[port], addr, family) ||
	       fwd_vip_addr(fwd, addr, family) != NULL;
}

static void learn(const struct fwd_state *fwd, const union ip_addr *addr,
		  uint8_t family, const struct rte_ether_addr *mac,
		  uint16_t port, uint32_t now, struct worker_counters *cnt)
{
	if (neigh_learn(fwd->neigh, addr, family, mac, port, now))
		cnt->neigh_learned++;
}

enum neigh_verdict arp_input(struct rte_mbuf *m, const struct pkt_info *info,
			     const struct fwd_state *fwd, uint16_t port,
			     uint32_t now, struct worker_counters *cnt,
			     enum drop_reason *why)
{
	struct rte_arp_hdr *arp;
	union ip_addr sender = { 0 }, target = { 0 };
	struct rte_ether_hdr *eth;

	if ((uint32_t)info->l3_off + sizeof(*arp) > m->data_len) {
		*why = DROP_TRUNCATED;
		return NEIGH_DROP;
	}
	arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, info->l3_off);
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4) {
		*why = DROP_ARP_MALFORMED;
		return NEIGH_DROP;
	}
	sender.v4 = arp->arp_data.arp_sip;
	target.v4 = arp->arp_data.arp_tip;
	learn(fwd, &sender, AF_INET, &arp->arp_data.arp_sha, port, now, cnt);

	if (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) ||
	    !answers_for(fwd, port, &target, AF_INET))
		return NEIGH_TO_KERNEL;

	arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	arp->arp_data.arp_tha = arp->arp_data.arp_sha;
	arp->arp_data.arp_tip = sender.v4;
	arp->arp_data.arp_sha = fwd->ports[port].mac;
	arp->arp_data.arp_sip = target.v4;
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eth->dst_addr = eth->src_addr;
	eth->src_addr = fwd->ports[port].mac;
	cnt->arp_replies++;
	return NEIGH_REPLY;
}

/* Finds the link-layer address option of the given type, or NULL. */
static const struct rte_ether_addr *nd_option(const uint8_t *opt,
					      const uint8_t *end, uint8_t type,
					      bool *malformed)
{
	while (opt + 2 <= end) {
		uint32_t len = (uint32_t)opt[1] * 8;

		if (len == 0 || opt + len > end) {
			*malformed = true;
			return NULL;
		}
		if (opt[0] == type && len >= ND_OPT_LL_LEN)
			return (const struct rte_ether_addr *)(opt + 2);
		opt += len;
	}
	return NULL;
}

static void ipv6_all_nodes(uint8_t addr[16])
{
	memset(addr, 0, 16);
	addr[0] = 0xff;
	addr[1] = 0x02;
	addr[15] = 0x01;
}

/* Rewrites a solicitation for one of our addresses into the advertisement
 * that answers it: IPv6 header, 24-byte message, target LL option. */
static void ndp_advertise(struct rte_mbuf *m, const struct pkt_info *info,
			  const struct fwd_port *port, const uint8_t target[16])
{
	uint32_t frame = (uint32_t)info->l3_off + sizeof(struct rte_ipv6_hdr) +
			 ND_MSG_LEN + ND_OPT_LL_LEN;
	struct rte_ipv6_hdr *ip;
	struct rte_ether_hdr *eth;
	uint8_t *na, peer[16];
	bool from_unspecified;

	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, info->l3_off);
	memcpy(peer, ip->src_addr, 16);
	from_unspecified = ip_addr_is_zero((const union ip_addr *)peer);
	if (from_unspecified)
		ipv6_all_nodes(peer);
	if (m->pkt_len > frame)
		rte_pktmbuf_trim(m, (uint16_t)(m->pkt_len - frame));
	else if (m->pkt_len < frame)
		rte_pktmbuf_append(m, (uint16_t)(frame - m->pkt_len));

	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(ND_MSG_LEN + ND_OPT_LL_LEN);
	ip->proto = IPPROTO_ICMPV6;
	ip->hop_limits = NDP_HOP_LIMIT;
	memcpy(ip->src_addr, target, 16);
	memcpy(ip->dst_addr, peer, 16);

	na = (uint8_t *)(ip + 1);
	memset(na, 0, ND_MSG_LEN + ND_OPT_LL_LEN);
	na[0] = ICMP6_NDP_NA;
	na[4] = ND_NA_OVERRIDE | (from_unspecified ? 0 : ND_NA_SOLICITED);
	memcpy(na + 8, target, 16);
	na[ND_MSG_LEN] = ND_OPT_TARGET_LL;
	na[ND_MSG_LEN + 1] = 1;
	memcpy(na + ND_MSG_LEN + 2, &port->mac, RTE_ETHER_ADDR_LEN);
	*(uint16_t *)(na + 2) = rte_ipv6_udptcp_cksum(ip, na);

	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (from_unspecified)
		rte_ether_addr_copy(&(struct rte_ether_addr){
			{ 0x33, 0x33, 0, 0, 0, 1 } }, &eth->dst_addr);
	else
		eth->dst_addr = eth->src_addr;
	eth->src_addr = port->mac;
}

enum neigh_verdict ndp_input(struct rte_mbuf *m, const struct pkt_info *info,
			     const struct fwd_state *fwd, uint16_t port,
			     uint32_t now, struct worker_counters *cnt,
			     enum drop_reason *why)
{
	const struct rte_ipv6_hdr *ip =
		rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, info->l3_off);
	const uint8_t *msg = rte_pktmbuf_mtod_offset(m, const uint8_t *, info->l4_off);
	const uint8_t *end = rte_pktmbuf_mtod_offset(m, const uint8_t *,
						     info->l3_off + info->l3_len);
	const struct rte_ether_addr *ll;
	union ip_addr target, sender;
	bool malformed = false;

	if (info->l3_off + info->l3_len > m->data_len ||
	    msg + ND_MSG_LEN > end || ip->hop_limits != NDP_HOP_LIMIT) {
		*why = DROP_NDP_MALFORMED;
		return NEIGH_DROP;
	}
	memcpy(target.v6, msg + 8, 16);
	memcpy(sender.v6, ip->src_addr, 16);
	if (msg[0] == ICMP6_NDP_NS) {
		ll = nd_option(msg + ND_MSG_LEN, end, ND_OPT_SOURCE_LL, &malformed);
		if (ll && !ip_addr_is_zero(&sender))
			learn(fwd, &sender, AF_INET6, ll, port, now, cnt);
	} else {
		ll = nd_option(msg + ND_MSG_LEN, end, ND_OPT_TARGET_LL, &malformed);
		if (ll)
			learn(fwd, &target, AF_INET6, ll, port, now, cnt);
	}
	if (malformed) {
		*why = DROP_NDP_MALFORMED;
		return NEIGH_DROP;
	}
	if (msg[0] != ICMP6_NDP_NS || !answers_for(fwd, port, &target, AF_INET6))
		return NEIGH_TO_KERNEL;
	ndp_advertise(m, info, &fwd->ports[port], target.v6);
	cnt->arp_replies++;
	return NEIGH_REPLY;
}

struct rte_mbuf *arp_request(struct rte_mempool *mp,
			     const struct fwd_port *port, rte_be32_t target)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	if (!m)
		return NULL;
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(
		m, sizeof(*eth) + sizeof(*arp));
	arp = (struct rte_arp_hdr *)(eth + 1);
	memset(&eth->dst_addr, 0xff, sizeof(eth->dst_addr));
	eth->src_addr = port->mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
	*arp = (struct rte_arp_hdr){
		.arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER),
		.arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4),
		.arp_hlen = RTE_ETHER_ADDR_LEN,
		.arp_plen = 4,
		.arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST),
		.arp_data = {
			.arp_sha = port->mac,
			.arp_sip = port->addr4.addr.v4,
			.arp_tip = target,
		},
	};
	return m;
}

struct rte_mbuf *ndp_solicit(struct rte_mempool *mp,
			     const struct fwd_port *port,
			     const uint8_t target[16])
{
	uint16_t len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv6_hdr) +
		       ND_MSG_LEN + ND_OPT_LL_LEN;
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	struct rte_ether_hdr *eth;
	struct rte_ipv6_hdr *ip;
	uint8_t *ns;

	if (!m)
		return NULL;
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, len);
	memset(eth, 0, len);
	ip = (struct rte_ipv6_hdr *)(eth + 1);
	ns = (uint8_t *)(ip + 1);

	/* to the solicited-node multicast group of the target */
	eth->dst_addr = (struct rte_ether_addr){
		{ 0x33, 0x33, 0xff, target[13], target[14], target[15] } };
	eth->src_addr = port->mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(ND_MSG_LEN + ND_OPT_LL_LEN);
	ip->proto = IPPROTO_ICMPV6;
	ip->hop_limits = NDP_HOP_LIMIT;
	memcpy(ip->src_addr, port->addr6.addr.v6, 16);
	ip->dst_addr[0] = 0xff;
	ip->dst_addr[1] = 0x02;
	ip->dst_addr[11] = 0x01;
	ip->dst_addr[12] = 0xff;
	memcpy(&ip->dst_addr[13], &target[13], 3);

	ns[0] = ICMP6_NDP_NS;
	memcpy(ns + 8, target, 16);
	ns[ND_MSG_LEN] = ND_OPT_SOURCE_LL;
	ns[ND_MSG_LEN + 1] = 1;
	memcpy(ns + ND_MSG_LEN + 2, &port->mac, RTE_ETHER_ADDR_LEN);
	*(uint16_t *)(ns + 2) = rte_ipv6_udptcp_cksum(ip, ns);
	return m;
}
