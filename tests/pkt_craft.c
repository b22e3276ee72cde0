#include "pkt_craft.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_env.h"

#define ICMP6_ND_HOP_LIMIT 255

const struct rte_ether_addr craft_mac_src = {{ 0x02, 0, 0, 0, 0, 0x01 }};
const struct rte_ether_addr craft_mac_dst = {{ 0x02, 0, 0, 0, 0, 0x02 }};

/* cmocka's fail() never returns (it leaves the test or exits) but is not
 * declared so; this wrapper is, so that no code path after a failed check
 * goes on to use what the check refused. */
static void __rte_noreturn __rte_format_printf(1, 2)
craft_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("craft: %s", msg);
	abort();
}

static uint8_t *at(const struct craft *c, uint16_t off)
{
	return rte_pktmbuf_mtod_offset(c->m, uint8_t *, off);
}

/* Appends len zero bytes; every header starts from zero so that fields a
 * function does not name are zero, never leftovers of an earlier mbuf. */
static void *put(struct craft *c, size_t len)
{
	void *p;

	if (c->end)
		craft_fail("header added after craft_end()");
	p = len <= UINT16_MAX ? rte_pktmbuf_append(c->m, (uint16_t)len) : NULL;
	if (!p)
		craft_fail("%zu more bytes do not fit the mbuf", len);
	memset(p, 0, len);
	return p;
}

/* Names the header about to be added in the previous header's next
 * protocol field, and makes the new one's field the next to fill. */
static void link_next(struct craft *c, uint16_t type, uint8_t len,
		      uint16_t next_off, uint8_t next_len)
{
	if (c->next_len != len)
		craft_fail("header 0x%x cannot follow the last one", type);
	if (len == 2) {
		rte_be16_t be = rte_cpu_to_be_16(type);

		memcpy(at(c, c->next_off), &be, 2);
	} else {
		*at(c, c->next_off) = (uint8_t)type;
	}
	c->next_off = next_off;
	c->next_len = next_len;
}

static void addr(int family, const char *text, void *out)
{
	if (inet_pton(family, text, out) != 1)
		craft_fail("bad address \"%s\"", text);
}

void craft_begin(struct craft *c)
{
	memset(c, 0, sizeof(*c));
	c->m = rte_pktmbuf_alloc(test_env_pool());
	if (!c->m)
		craft_fail("test mbuf pool empty (a test leaks mbufs?)");
}

struct rte_ether_hdr *craft_eth(struct craft *c,
				const struct rte_ether_addr *src,
				const struct rte_ether_addr *dst)
{
	struct rte_ether_hdr *eth;

	if (c->m->data_len)
		craft_fail("Ethernet header must come first");
	eth = put(c, sizeof(*eth));
	eth->src_addr = src ? *src : craft_mac_src;
	eth->dst_addr = dst ? *dst : craft_mac_dst;
	c->next_off = offsetof(struct rte_ether_hdr, ether_type);
	c->next_len = 2;
	return eth;
}

struct rte_vlan_hdr *craft_vlan(struct craft *c, uint16_t tci)
{
	uint16_t off = c->m->data_len;
	struct rte_vlan_hdr *vlan;

	link_next(c, RTE_ETHER_TYPE_VLAN, 2,
		  off + offsetof(struct rte_vlan_hdr, eth_proto), 2);
	vlan = put(c, sizeof(*vlan));
	vlan->vlan_tci = rte_cpu_to_be_16(tci);
	return vlan;
}

/* One IP header a frame: craft_end() fills the lengths of that one only. */
static void start_l3(struct craft *c, uint16_t ethertype, uint16_t next_off,
		     uint8_t next_len)
{
	if (c->l3_off)
		craft_fail("one IP or ARP header per frame");
	c->l3_off = c->m->data_len;
	link_next(c, ethertype, 2, c->l3_off + next_off, next_len);
}

struct rte_ipv4_hdr *craft_ipv4(struct craft *c, const char *src,
				const char *dst)
{
	struct rte_ipv4_hdr *ip;

	start_l3(c, RTE_ETHER_TYPE_IPV4,
		 offsetof(struct rte_ipv4_hdr, next_proto_id), 1);
	c->family = AF_INET;
	ip = put(c, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->time_to_live = 64;
	addr(AF_INET, src, &ip->src_addr);
	addr(AF_INET, dst, &ip->dst_addr);
	return ip;
}

static void put_options(struct craft *c, const void *opts, size_t len,
			uint8_t nop)
{
	uint8_t *p;

	if (len % 4 || len > 40)
		craft_fail("%zu option bytes, not a multiple of 4 up to 40",
			 len);
	p = put(c, len);
	if (opts)
		memcpy(p, opts, len);
	else
		memset(p, nop, len);
}

void craft_ipv4_options(struct craft *c, const void *opts, size_t len)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)at(c, c->l3_off);

	if (c->family != AF_INET ||
	    c->m->data_len != c->l3_off + rte_ipv4_hdr_len(ip))
		craft_fail("IPv4 options must follow the IPv4 header");
	put_options(c, opts, len, RTE_IPV4_HDR_OPT_NOP);
	ip->version_ihl += (uint8_t)(len / 4);
}

struct rte_ipv6_hdr *craft_ipv6(struct craft *c, const char *src,
				const char *dst)
{
	struct rte_ipv6_hdr *ip;

	start_l3(c, RTE_ETHER_TYPE_IPV6, offsetof(struct rte_ipv6_hdr, proto), 1);
	c->family = AF_INET6;
	ip = put(c, sizeof(*ip));
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->hop_limits = 64;
	addr(AF_INET6, src, ip->src_addr);
	addr(AF_INET6, dst, ip->dst_addr);
	return ip;
}

uint8_t *craft_ipv6_ext(struct craft *c, uint8_t type, size_t len)
{
	uint16_t off = c->m->data_len;
	uint8_t *ext;

	if (c->family != AF_INET6 || c->l4_off)
		craft_fail("extension header outside an IPv6 header chain");
	if (len < 8 || len % 8 || len > 2048 ||
	    (type == IPPROTO_FRAGMENT && len != 8))
		craft_fail("%zu bytes for extension header %u", len, type);
	link_next(c, type, 1, off, 1);
	ext = put(c, len);
	if (type != IPPROTO_FRAGMENT)
		ext[1] = (uint8_t)(len / 8 - 1);
	return ext;
}

/* Every L4 header comes after an IP header, as the last header. */
static uint8_t *start_l4(struct craft *c, uint8_t proto, size_t len)
{
	if (!c->family || c->l4_off)
		craft_fail("protocol %u needs an IP header and no other L4",
			 proto);
	link_next(c, proto, 1, 0, 0);
	c->l4_off = c->m->data_len;
	c->l4_proto = proto;
	return put(c, len);
}

struct rte_tcp_hdr *craft_tcp(struct craft *c, uint16_t sport, uint16_t dport,
			      uint8_t flags)
{
	struct rte_tcp_hdr *tcp =
		(struct rte_tcp_hdr *)start_l4(c, IPPROTO_TCP, sizeof(*tcp));

	tcp->src_port = rte_cpu_to_be_16(sport);
	tcp->dst_port = rte_cpu_to_be_16(dport);
	tcp->sent_seq = rte_cpu_to_be_32(1);
	tcp->data_off = (sizeof(*tcp) / 4) << 4;
	tcp->tcp_flags = flags;
	tcp->rx_win = rte_cpu_to_be_16(65535);
	return tcp;
}

void craft_tcp_options(struct craft *c, const void *opts, size_t len)
{
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)at(c, c->l4_off);

	if (c->l4_proto != IPPROTO_TCP ||
	    c->m->data_len != c->l4_off + (tcp->data_off >> 4) * 4)
		craft_fail("TCP options must follow the TCP header");
	put_options(c, opts, len, 1 /* TCP NOP */);
	tcp->data_off += (uint8_t)((len / 4) << 4);
}

struct rte_udp_hdr *craft_udp(struct craft *c, uint16_t sport, uint16_t dport)
{
	struct rte_udp_hdr *udp =
		(struct rte_udp_hdr *)start_l4(c, IPPROTO_UDP, sizeof(*udp));

	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	return udp;
}

static uint8_t icmp_proto(const struct craft *c)
{
	return c->family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
}

struct rte_icmp_hdr *craft_icmp_echo(struct craft *c, bool request,
				     uint16_t id, uint16_t seq)
{
	struct rte_icmp_hdr *icmp =
		(struct rte_icmp_hdr *)start_l4(c, icmp_proto(c), sizeof(*icmp));

	if (c->family == AF_INET6)
		icmp->icmp_type = request ? ICMP6_ECHO_REQUEST : ICMP6_ECHO_REPLY;
	else
		icmp->icmp_type = request ? RTE_IP_ICMP_ECHO_REQUEST
					  : RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_ident = rte_cpu_to_be_16(id);
	icmp->icmp_seq_nb = rte_cpu_to_be_16(seq);
	return icmp;
}

/* How much of the packet at l3_off in orig an ICMP error carries. */
static uint16_t quote_len(const struct craft *c, const struct rte_mbuf *orig,
			  uint16_t l3_off)
{
	const uint8_t *ip =
		rte_pktmbuf_mtod_offset(orig, const uint8_t *, l3_off);
	uint32_t have, want;

	if (l3_off >= orig->data_len)
		craft_fail("nothing to quote at offset %u", l3_off);
	have = orig->data_len - l3_off;
	if ((ip[0] >> 4) == 4 && have >= sizeof(struct rte_ipv4_hdr)) {
		want = (ip[0] & 0xf) * 4u + 8;
	} else if ((ip[0] >> 4) == 6 && have >= sizeof(struct rte_ipv6_hdr)) {
		const struct rte_ipv6_hdr *ip6 = (const void *)ip;
		/* RFC 4443 2.4(c): an error must not exceed the minimum MTU.
		 * The ICMPv6 header is already in the frame. */
		uint32_t room = 1280 - (c->m->data_len - c->l3_off);

		want = RTE_MIN(sizeof(*ip6) + rte_be_to_cpu_16(ip6->payload_len),
			       room);
	} else {
		craft_fail("no IP header to quote at offset %u", l3_off);
	}
	return (uint16_t)RTE_MIN(want, have);
}

uint8_t *craft_icmp_error(struct craft *c, uint8_t type, uint8_t code,
			  uint32_t info, const struct rte_mbuf *orig,
			  uint16_t orig_l3_off)
{
	uint8_t *icmp = start_l4(c, icmp_proto(c), sizeof(struct rte_icmp_hdr));
	rte_be32_t be_info = rte_cpu_to_be_32(info);
	uint16_t len = quote_len(c, orig, orig_l3_off);

	icmp[0] = type;
	icmp[1] = code;
	memcpy(icmp + 4, &be_info, 4);
	memcpy(put(c, len),
	       rte_pktmbuf_mtod_offset(orig, const void *, orig_l3_off), len);
	return icmp;
}

struct rte_arp_hdr *craft_arp(struct craft *c, uint16_t op,
			      const struct rte_ether_addr *sha, const char *sip,
			      const struct rte_ether_addr *tha, const char *tip)
{
	struct rte_arp_hdr *arp;

	start_l3(c, RTE_ETHER_TYPE_ARP, 0, 0);
	arp = put(c, sizeof(*arp));
	arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	arp->arp_data.arp_sha = *sha;
	addr(AF_INET, sip, &arp->arp_data.arp_sip);
	if (tha)
		arp->arp_data.arp_tha = *tha;
	addr(AF_INET, tip, &arp->arp_data.arp_tip);
	return arp;
}

static uint8_t *ndp(struct craft *c, uint8_t type, uint32_t na_flags,
		    const char *target, uint8_t opt_type,
		    const struct rte_ether_addr *lladdr)
{
	size_t len = 24 + (lladdr ? 8 : 0);
	uint8_t *icmp;

	if (c->family != AF_INET6)
		craft_fail("neighbour discovery needs an IPv6 header");
	icmp = start_l4(c, IPPROTO_ICMPV6, len);
	((struct rte_ipv6_hdr *)at(c, c->l3_off))->hop_limits =
		ICMP6_ND_HOP_LIMIT;
	icmp[0] = type;
	memcpy(icmp + 4, &na_flags, 4);
	addr(AF_INET6, target, icmp + 8);
	if (lladdr) {
		icmp[24] = opt_type;
		icmp[25] = 1;   /* option length in units of 8 bytes */
		memcpy(icmp + 26, lladdr, RTE_ETHER_ADDR_LEN);
	}
	return icmp;
}

uint8_t *craft_ndp_ns(struct craft *c, const char *target,
		      const struct rte_ether_addr *lladdr)
{
	return ndp(c, ND_NEIGHBOR_SOLICIT, 0, target, ND_OPT_SOURCE_LINKADDR,
		   lladdr);
}

uint8_t *craft_ndp_na(struct craft *c, const char *target, uint32_t na_flags,
		      const struct rte_ether_addr *lladdr)
{
	return ndp(c, ND_NEIGHBOR_ADVERT, na_flags, target,
		   ND_OPT_TARGET_LINKADDR, lladdr);
}

uint8_t *craft_payload(struct craft *c, const void *data, size_t len)
{
	uint8_t *p = put(c, len);
	size_t i;

	if (data)
		memcpy(p, data, len);
	else
		for (i = 0; i < len; i++)
			p[i] = (uint8_t)i;
	return p;
}

struct rte_mbuf *craft_end(struct craft *c)
{
	uint16_t len = c->m->data_len;

	if (c->family == AF_INET) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)at(c, c->l3_off);

		ip->total_length = rte_cpu_to_be_16(len - c->l3_off);
	} else if (c->family == AF_INET6) {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)at(c, c->l3_off);

		ip->payload_len =
			rte_cpu_to_be_16(len - c->l3_off - sizeof(*ip));
	}
	if (c->l4_proto == IPPROTO_UDP) {
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)at(c, c->l4_off);

		udp->dgram_len = rte_cpu_to_be_16(len - c->l4_off);
	}
	c->end = len;
	craft_fix_csums(c);
	return c->m;
}

/* The one's complement sum of an L4 message and, but for ICMP over IPv4,
 * of its pseudo-header, not yet inverted. */
static uint16_t l4_sum(const uint8_t *ip, uint8_t proto, const uint8_t *l4,
		       uint32_t len)
{
	uint32_t sum = 0;

	if ((ip[0] >> 4) == 4 && proto != IPPROTO_ICMP) {
		const struct rte_ipv4_hdr *ip4 = (const void *)ip;
		uint8_t pseudo[12];
		rte_be16_t be_len = rte_cpu_to_be_16((uint16_t)len);

		memcpy(pseudo, &ip4->src_addr, 4);
		memcpy(pseudo + 4, &ip4->dst_addr, 4);
		pseudo[8] = 0;
		pseudo[9] = proto;
		memcpy(pseudo + 10, &be_len, 2);
		sum = __rte_raw_cksum(pseudo, sizeof(pseudo), 0);
	} else if ((ip[0] >> 4) == 6) {
		const struct rte_ipv6_hdr *ip6 = (const void *)ip;
		uint8_t pseudo[40] = { 0 };
		rte_be32_t be_len = rte_cpu_to_be_32(len);

		memcpy(pseudo, ip6->src_addr, 16);
		memcpy(pseudo + 16, ip6->dst_addr, 16);
		memcpy(pseudo + 32, &be_len, 4);
		pseudo[39] = proto;
		sum = __rte_raw_cksum(pseudo, sizeof(pseudo), 0);
	}
	return __rte_raw_cksum_reduce(__rte_raw_cksum(l4, len, sum));
}

static size_t csum_field(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return offsetof(struct rte_tcp_hdr, cksum);
	case IPPROTO_UDP:
		return offsetof(struct rte_udp_hdr, dgram_cksum);
	default:
		return offsetof(struct rte_icmp_hdr, icmp_cksum);
	}
}

void craft_fix_csums(struct craft *c)
{
	/* Bytes appended since craft_end() (Ethernet padding) are no part of
	 * the packet; after a cut, what is left is summed. */
	uint16_t end = RTE_MIN(c->end, c->m->data_len);

	if (!c->family)
		return;
	if (!c->end)
		craft_fail("craft_fix_csums() before craft_end()");
	if (c->family == AF_INET) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)at(c, c->l3_off);

		if (c->l3_off + rte_ipv4_hdr_len(ip) <= end) {
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
		}
	}
	if (c->l4_off && c->l4_off + csum_field(c->l4_proto) + 2 <= end) {
		uint8_t *l4 = at(c, c->l4_off);
		uint16_t *field = (uint16_t *)(l4 + csum_field(c->l4_proto));
		uint16_t csum;

		*field = 0;
		csum = (uint16_t)~l4_sum(at(c, c->l3_off), c->l4_proto, l4,
					 end - c->l4_off);
		/* Zero in UDP means "no checksum"; the same sum is 0xffff. */
		if (csum == 0 && c->l4_proto == IPPROTO_UDP)
			csum = 0xffff;
		*field = csum;
	}
}

void craft_split(struct rte_mbuf *m, uint16_t at)
{
	struct rte_mbuf *tail;
	uint16_t len;
	char *p;

	if (m->nb_segs != 1 || at > m->data_len)
		craft_fail("split at %u of a %u-segment, %u-byte frame", at,
			   m->nb_segs, m->data_len);
	len = m->data_len - at;
	tail = rte_pktmbuf_alloc(m->pool);
	p = tail ? rte_pktmbuf_append(tail, len) : NULL;
	if (!p)
		craft_fail("no mbuf for a %u-byte second segment", len);
	memcpy(p, rte_pktmbuf_mtod_offset(m, const void *, at), len);
	m->data_len = at;
	m->pkt_len = at;
	if (rte_pktmbuf_chain(m, tail) != 0)
		craft_fail("cannot chain a second segment");
}

static void tight_free(void *buf, void *shinfo)
{
	free(buf);
	free(shinfo);
}

struct rte_mbuf *craft_tight_copy(const struct rte_mbuf *m, uint16_t len)
{
	struct rte_mbuf_ext_shared_info *shinfo;
	struct rte_mbuf *t;
	uint8_t *buf;

	if (len > m->data_len)
		craft_fail("copy of %u bytes from %u", len, m->data_len);
	t = rte_pktmbuf_alloc(m->pool);
	shinfo = calloc(1, sizeof(*shinfo));
	buf = malloc(len);   /* even for 0: a unique block ASan guards */
	if (!t || !shinfo || !buf)
		craft_fail("out of memory for a tight copy");
	memcpy(buf, rte_pktmbuf_mtod(m, const void *), len);
	shinfo->free_cb = tight_free;
	shinfo->fcb_opaque = shinfo;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
	/* Heap memory is never handed to a device: it has no IO address. */
	rte_pktmbuf_attach_extbuf(t, buf, RTE_BAD_IOVA, len, shinfo);
	t->data_len = len;
	t->pkt_len = len;
	t->ol_flags |= m->ol_flags & ~(RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT);
	t->packet_type = m->packet_type;
	t->vlan_tci = m->vlan_tci;
	return t;
}

bool craft_ipv4_csum_ok(const void *ip)
{
	const struct rte_ipv4_hdr *ip4 = ip;

	return rte_raw_cksum(ip4, rte_ipv4_hdr_len(ip4)) == 0xffff;
}

static bool is_ipv6_ext(uint8_t proto)
{
	return proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING ||
	       proto == IPPROTO_DSTOPTS || proto == IPPROTO_FRAGMENT;
}

bool craft_l4_csum_ok(const struct rte_mbuf *m, uint16_t l3_off)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	const uint8_t *ip = p + l3_off;
	uint32_t l4_off, end, min_len;
	uint8_t proto;

	if (l3_off >= m->data_len)
		return false;
	if ((ip[0] >> 4) == 4) {
		const struct rte_ipv4_hdr *ip4 = (const void *)ip;

		if (l3_off + sizeof(*ip4) > m->data_len ||
		    ip4->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG |
						    RTE_IPV4_HDR_OFFSET_MASK))
			return false;
		proto = ip4->next_proto_id;
		l4_off = l3_off + rte_ipv4_hdr_len(ip4);
		end = l3_off + rte_be_to_cpu_16(ip4->total_length);
	} else if ((ip[0] >> 4) == 6) {
		const struct rte_ipv6_hdr *ip6 = (const void *)ip;

		if (l3_off + sizeof(*ip6) > m->data_len)
			return false;
		proto = ip6->proto;
		l4_off = l3_off + sizeof(*ip6);
		end = l4_off + rte_be_to_cpu_16(ip6->payload_len);
		while (is_ipv6_ext(proto)) {
			if (proto == IPPROTO_FRAGMENT || l4_off + 8 > end ||
			    end > m->data_len)
				return false;
			proto = p[l4_off];
			l4_off += (p[l4_off + 1] + 1u) * 8;
		}
	} else {
		return false;
	}

	switch (proto) {
	case IPPROTO_TCP:
		min_len = sizeof(struct rte_tcp_hdr);
		break;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		min_len = 8;
		break;
	default:
		return false;
	}
	if (end > m->data_len || l4_off + min_len > end)
		return false;
	if (proto == IPPROTO_UDP && (ip[0] >> 4) == 4 &&
	    ((const struct rte_udp_hdr *)(p + l4_off))->dgram_cksum == 0)
		return true;
	return l4_sum(ip, proto, p + l4_off, end - l4_off) == 0xffff;
}

void craft_hexdump(const struct rte_mbuf *m)
{
	rte_pktmbuf_dump(stderr, m, m->data_len);
}
