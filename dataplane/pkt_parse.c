#include "pkt_parse.h"

#include <netinet/in.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

/* Every header must lie in the first segment: the PMDs used here deliver
 * a frame of MTU size in one segment, and a balancer has no business
 * reassembling chains to read 60 bytes of headers. */
static inline const void *hdr_at(const struct rte_mbuf *m, uint32_t off,
				 uint32_t len)
{
	if (off + len > m->data_len)
		return NULL;
	return rte_pktmbuf_mtod_offset(m, const uint8_t *, off);
}

static inline enum pkt_class drop(struct pkt_info *info, enum drop_reason r)
{
	info->drop = (uint8_t)r;
	return PKT_DROP;
}

/* Reads the ports (and flags) of a TCP or UDP header that starts at
 * info->l4_off, within an IP packet ending at l3_end. */
static enum pkt_class parse_l4(const struct rte_mbuf *m, struct pkt_info *info,
			       uint32_t l3_end)
{
	uint32_t room = l3_end - info->l4_off;

	switch (info->key.proto) {
	case IPPROTO_TCP: {
		const struct rte_tcp_hdr *tcp = hdr_at(m, info->l4_off, sizeof(*tcp));
		uint32_t doff;

		if (!tcp || room < sizeof(*tcp))
			return drop(info, DROP_TRUNCATED);
		doff = (uint32_t)(tcp->data_off >> 4) * 4;
		if (doff < sizeof(*tcp) || doff > room)
			return drop(info, DROP_BAD_TCP_DOFF);
		info->key.sport = tcp->src_port;
		info->key.dport = tcp->dst_port;
		info->tcp_flags = tcp->tcp_flags;
		return PKT_L4;
	}
	case IPPROTO_UDP: {
		const struct rte_udp_hdr *udp = hdr_at(m, info->l4_off, sizeof(*udp));
		uint32_t ulen;

		if (!udp || room < sizeof(*udp))
			return drop(info, DROP_TRUNCATED);
		ulen = rte_be_to_cpu_16(udp->dgram_len);
		if (ulen < sizeof(*udp) || ulen > room)
			return drop(info, DROP_BAD_UDP_LEN);
		info->key.sport = udp->src_port;
		info->key.dport = udp->dst_port;
		return PKT_L4;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* ICMP in the wrong family is just an unknown protocol */
		if ((info->key.proto == IPPROTO_ICMP) !=
		    (info->key.family == AF_INET))
			return PKT_OTHER;
		if (room < 8 || !hdr_at(m, info->l4_off, 8))
			return drop(info, DROP_TRUNCATED);
		return PKT_ICMP;
	default:
		return PKT_OTHER;
	}
}

/* Whether an IPv4 header of ihl bytes (a multiple of four) sums to all
 * ones. A word at a time rather than rte_raw_cksum()'s two bytes: 2^16
 * is 1 modulo 0xffff, so 32-bit words folded down sum as their halves. */
static inline bool ipv4_csum_ok(const void *ip, uint32_t ihl)
{
	uint64_t sum = 0;

	for (uint32_t off = 0; off < ihl; off += 4) {
		uint32_t w;

		memcpy(&w, (const uint8_t *)ip + off, sizeof(w));
		sum += w;
	}
	sum = (sum >> 32) + (sum & 0xffffffff);
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	return sum == 0xffff;
}

static enum pkt_class parse_ipv4(const struct rte_mbuf *m, struct pkt_info *info)
{
	const struct rte_ipv4_hdr *ip = hdr_at(m, info->l3_off, sizeof(*ip));
	uint32_t ihl, total;
	uint64_t csum_flags;

	if (!ip)
		return drop(info, DROP_TRUNCATED);
	if ((ip->version_ihl >> 4) != 4)
		return drop(info, DROP_BAD_IP_VERSION);
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	if (ihl < sizeof(*ip))
		return drop(info, DROP_BAD_IHL);
	if (!hdr_at(m, info->l3_off, ihl))
		return drop(info, DROP_TRUNCATED);
	total = rte_be_to_cpu_16(ip->total_length);
	if (total < ihl || info->l3_off + total > m->pkt_len)
		return drop(info, DROP_BAD_IP_LEN);

	csum_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (csum_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (csum_flags != RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
	     !ipv4_csum_ok(ip, ihl)))
		return drop(info, DROP_BAD_IP_CSUM);

	info->key.family = AF_INET;
	info->key.proto = ip->next_proto_id;
	info->key.src.v4 = ip->src_addr;
	info->key.dst.v4 = ip->dst_addr;
	info->l3_len = (uint16_t)total;
	info->l4_off = (uint16_t)(info->l3_off + ihl);

	/* Any fragment, the first included, is steered by addresses alone so
	 * that all pieces of a datagram meet at one backend. */
	if (ip->fragment_offset &
	    rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return PKT_FRAGMENT;
	return parse_l4(m, info, info->l3_off + total);
}

static enum pkt_class parse_ipv6(const struct rte_mbuf *m, struct pkt_info *info)
{
	const struct rte_ipv6_hdr *ip = hdr_at(m, info->l3_off, sizeof(*ip));
	uint32_t total, off, hops;
	uint8_t next;

	if (!ip)
		return drop(info, DROP_TRUNCATED);
	if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6)
		return drop(info, DROP_BAD_IP_VERSION);
	total = sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
	if (info->l3_off + total > m->pkt_len)
		return drop(info, DROP_BAD_IP_LEN);

	info->key.family = AF_INET6;
	memcpy(info->key.src.v6, ip->src_addr, 16);
	memcpy(info->key.dst.v6, ip->dst_addr, 16);
	info->l3_len = (uint16_t)total;

	next = ip->proto;
	off = info->l3_off + sizeof(*ip);
	for (hops = 0;; hops++) {
		const uint8_t *ext;

		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
		    next != IPPROTO_DSTOPTS && next != IPPROTO_FRAGMENT)
			break;
		ext = hdr_at(m, off, 8);
		if (hops == PKT_MAX_IPV6_EXT || !ext ||
		    off + 8 > info->l3_off + total)
			return drop(info, DROP_IPV6_EXT_CHAIN);
		if (next == IPPROTO_FRAGMENT) {
			info->key.proto = ext[0];
			info->l4_off = (uint16_t)(off + 8);
			return PKT_FRAGMENT;
		}
		next = ext[0];
		off += ((uint32_t)ext[1] + 1) * 8;
		if (off > info->l3_off + total)
			return drop(info, DROP_IPV6_EXT_CHAIN);
	}
	info->key.proto = next;
	info->l4_off = (uint16_t)off;
	return parse_l4(m, info, info->l3_off + total);
}

enum pkt_class pkt_parse(const struct rte_mbuf *m, struct pkt_info *info)
{
	const struct rte_ether_hdr *eth = hdr_at(m, 0, sizeof(*eth));
	rte_be16_t type;

	memset(&info->key, 0, sizeof(info->key));
	info->tcp_flags = 0;
	if (!eth)
		return drop(info, DROP_TRUNCATED);
	type = eth->ether_type;
	info->l3_off = sizeof(*eth);
	if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
		const struct rte_vlan_hdr *vlan = hdr_at(m, sizeof(*eth), sizeof(*vlan));

		if (!vlan)
			return drop(info, DROP_TRUNCATED);
		type = vlan->eth_proto;
		info->l3_off += sizeof(*vlan);
	}

	switch (type) {
	case RTE_BE16(RTE_ETHER_TYPE_IPV4):
		return parse_ipv4(m, info);
	case RTE_BE16(RTE_ETHER_TYPE_IPV6):
		return parse_ipv6(m, info);
	case RTE_BE16(RTE_ETHER_TYPE_ARP):
		return PKT_ARP;
	default:
		return drop(info, DROP_UNKNOWN_ETHERTYPE);
	}
}
