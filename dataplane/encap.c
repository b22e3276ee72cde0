#include "encap.h"

#include <netinet/in.h>

#include <rte_ip.h>
#include <rte_udp.h>

/* The longest L2 header pkt_parse() accepts: Ethernet and one 802.1Q tag. */
#define L2_HDR_MAX (RTE_ETHER_HDR_LEN + sizeof(struct rte_vlan_hdr))

_Static_assert(L2_HDR_MAX <= sizeof(struct rte_ipv4_hdr),
	       "the smallest outer header clears the longest L2 header");

/* Opens `outer` bytes between the L2 header and the client's IP packet,
 * after dropping Ethernet padding that would otherwise ride inside the
 * tunnel. Returns the start of the gap, or NULL with *why set. */
static inline uint8_t *open_gap(struct rte_mbuf *m,
				const struct pkt_info *info, uint16_t outer,
				uint16_t mtu, enum drop_reason *why)
{
	uint32_t frame = (uint32_t)info->l3_off + info->l3_len;
	uint8_t *old, *now;

	if (m->pkt_len > frame)
		rte_pktmbuf_trim(m, (uint16_t)(m->pkt_len - frame));
	if ((uint32_t)info->l3_len + outer > mtu) {
		*why = DROP_ENCAP_TOO_BIG;
		return NULL;
	}
	old = rte_pktmbuf_mtod(m, uint8_t *);
	now = (uint8_t *)rte_pktmbuf_prepend(m, outer);
	if (!now) {
		*why = DROP_NO_HEADROOM;
		return NULL;
	}
	/* The L2 header moves by at least its own length, so the copy never
	 * overlaps itself, and copying the longest one whatever the frame
	 * has is a few fixed moves rather than a call: what it takes past a
	 * shorter header lands in the gap, which the outer header covers. */
	memcpy(now, old, L2_HDR_MAX);
	/* the L2 header (with any VLAN tag) now ends where the gap starts */
	return now + info->l3_off;
}

static void set_outer_ethertype(struct rte_mbuf *m, const struct pkt_info *info,
				uint8_t family)
{
	rte_be16_t type = rte_cpu_to_be_16(family == AF_INET ?
					   RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);

	*rte_pktmbuf_mtod_offset(m, rte_be16_t *, info->l3_off - 2) = type;
}

/* DSCP and ECN follow the client packet into the tunnel. */
static uint8_t inner_tos(const struct rte_mbuf *m, const struct pkt_info *info,
			 uint16_t outer)
{
	const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *,
						    info->l3_off + outer);

	if (info->key.family == AF_INET)
		return ip[1];
	return (uint8_t)(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
}

/* Writes an option-less IPv4 header as three plain stores and sums it
 * from the values in registers. The obvious way (fill a struct field by
 * field, then sum it) reads back narrow stores, which the CPU cannot
 * forward: that alone cost a third of an encapsulation. One's complement
 * sums are byte-order blind, so the words are summed as they lie in
 * memory. */
#if RTE_BYTE_ORDER != RTE_LITTLE_ENDIAN
#error "put_outer_ipv4 lays out its words for a little-endian CPU"
#endif
static inline void put_outer_ipv4(uint8_t *at, rte_be32_t src,
				  rte_be32_t dst, uint8_t proto,
				  uint16_t total_len, uint8_t tos)
{
	uint64_t head = 0x45u | (uint64_t)tos << 8 |
			(uint64_t)rte_cpu_to_be_16(total_len) << 16;
	uint32_t ttl_proto = FULCRUM_TTL | (uint32_t)proto << 8;
	uint64_t sum = (head & 0xffff) + (head >> 16) + ttl_proto +
		       (src & 0xffff) + (src >> 16) + (dst & 0xffff) +
		       (dst >> 16);
	uint64_t mid;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	mid = ttl_proto | (uint64_t)(uint16_t)~sum << 16 | (uint64_t)src << 32;
	memcpy(at, &head, 8);          /* id 0, no fragment flags */
	memcpy(at + 8, &mid, 8);
	memcpy(at + 16, &dst, 4);
}

static inline void put_outer_ip(uint8_t *at, const struct encap_target *t,
				uint8_t proto, uint16_t payload, uint8_t tos)
{
	if (t->family == AF_INET) {
		put_outer_ipv4(at, t->src->v4, t->dst->v4, proto,
			       (uint16_t)(sizeof(struct rte_ipv4_hdr) + payload),
			       tos);
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)at;

		ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | (uint32_t)tos << 20);
		ip->payload_len = rte_cpu_to_be_16(payload);
		ip->proto = proto;
		ip->hop_limits = FULCRUM_TTL;
		memcpy(ip->src_addr, t->src->v6, 16);
		memcpy(ip->dst_addr, t->dst->v6, 16);
	}
}

static uint16_t ip_hdr_len(uint8_t family)
{
	return family == AF_INET ? sizeof(struct rte_ipv4_hdr) :
				   sizeof(struct rte_ipv6_hdr);
}

static uint8_t inner_proto(const struct pkt_info *info)
{
	return info->key.family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
}

enum drop_reason encap_ipip(struct rte_mbuf *m, const struct pkt_info *info,
			    const struct encap_target *t)
{
	uint16_t outer = ip_hdr_len(t->family);
	enum drop_reason why;
	uint8_t *gap = open_gap(m, info, outer, t->mtu, &why);

	if (!gap)
		return why;
	set_outer_ethertype(m, info, t->family);
	put_outer_ip(gap, t, inner_proto(info), info->l3_len,
		     inner_tos(m, info, outer));
	return FWD_OK;
}

enum drop_reason encap_gue(struct rte_mbuf *m, const struct pkt_info *info,
			   const struct encap_target *t)
{
	uint16_t ip_len = ip_hdr_len(t->family);
	uint16_t outer = ip_len + sizeof(struct rte_udp_hdr) + GUE_HDR_LEN;
	uint16_t udp_len = (uint16_t)(info->l3_len + outer - ip_len);
	enum drop_reason why;
	uint8_t *gap = open_gap(m, info, outer, t->mtu, &why);
	struct rte_udp_hdr *udp;
	uint8_t *gue;

	if (!gap)
		return why;
	set_outer_ethertype(m, info, t->family);
	put_outer_ip(gap, t, IPPROTO_UDP, udp_len, inner_tos(m, info, outer));
	udp = (struct rte_udp_hdr *)(gap + ip_len);
	udp->src_port = t->gue_sport;
	udp->dst_port = t->gue_dport;
	udp->dgram_len = rte_cpu_to_be_16(udp_len);
	udp->dgram_cksum = 0;
	/* GUE variant 0, no optional fields: version 0, C 0, hlen 0, then
	 * the inner protocol number and zero flags */
	gue = (uint8_t *)(udp + 1);
	gue[0] = 0;
	gue[1] = inner_proto(info);
	gue[2] = 0;
	gue[3] = 0;
	/* IPv4 may carry a zero UDP checksum; IPv6 must not (RFC 8200) */
	if (t->family == AF_INET6)
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(
			(const struct rte_ipv6_hdr *)gap, udp);
	return FWD_OK;
}
