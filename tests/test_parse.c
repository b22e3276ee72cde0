/* pkt_parse() on well-formed frames: what it finds in each kind of frame
 * the balancer meets, and where it finds it. Malformed frames are in
 * test_bad_input.c. */

/* For rte_ipv4/6_udptcp_cksum_verify(), still experimental in 22.11. */
#ifndef ALLOW_EXPERIMENTAL_API
#define ALLOW_EXPERIMENTAL_API
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>

#include "pkt_craft.h"
#include "pkt_parse.h"
#include "test_env.h"

#define ETH_LEN 14
#define VLAN_ETH_LEN 18
#define IP4_LEN 20
#define IP6_LEN 40
#define TCP_LEN 20
#define UDP_LEN 8

static const char *drop_name(const struct pkt_info *info)
{
	return info->drop < DROP_REASON_MAX ? drop_reason_names[info->drop]
					    : "(out of range)";
}

/* Parses m, and a tight copy of it, each into a pkt_info full of junk:
 * whatever the result promises must come from the parse, and the copy,
 * which ends where the frame ends, shows that no byte past it was read. */
static void parse_expect(struct rte_mbuf *m, enum pkt_class want,
			 struct pkt_info *info)
{
	struct rte_mbuf *tight = craft_tight_copy(m, m->data_len);
	struct pkt_info tight_info;
	enum pkt_class got, tight_got;

	memset(info, 0xa5, sizeof(*info));
	memset(&tight_info, 0xa5, sizeof(tight_info));
	got = pkt_parse(m, info);
	tight_got = pkt_parse(tight, &tight_info);
	rte_pktmbuf_free(tight);
	if (got != want) {
		craft_hexdump(m);
		fail_msg("class %d, want %d (drop %s)", got, want,
			 got == PKT_DROP ? drop_name(info) : "-");
	}
	assert_int_equal(tight_got, got);
	assert_memory_equal(&tight_info, info, sizeof(*info));
}

/* The whole key, pad included, against one built from nothing but zeros
 * and the given fields: a key is hashed and compared as plain bytes. */
static void assert_key(const struct flow_key *key, uint8_t family,
		       const char *src, const char *dst, uint8_t proto,
		       uint16_t sport, uint16_t dport)
{
	struct flow_key want;

	memset(&want, 0, sizeof(want));
	assert_int_equal(inet_pton(family, src, &want.src), 1);
	assert_int_equal(inet_pton(family, dst, &want.dst), 1);
	want.family = family;
	want.proto = proto;
	want.sport = rte_cpu_to_be_16(sport);
	want.dport = rte_cpu_to_be_16(dport);
	assert_memory_equal(key, &want, sizeof(want));
}

static void assert_key_zero(const struct flow_key *key)
{
	static const struct flow_key zero;

	assert_memory_equal(key, &zero, sizeof(zero));
}

/* ---- TCP and UDP ---------------------------------------------------- */

static void test_tcp4(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "192.0.2.1", "198.51.100.7");
	craft_tcp(&c, 40000, 443, RTE_TCP_SYN_FLAG | RTE_TCP_ECE_FLAG);
	craft_payload(&c, NULL, 11);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET, "192.0.2.1", "198.51.100.7",
		   IPPROTO_TCP, 40000, 443);
	assert_int_equal(info.l3_off, ETH_LEN);
	assert_int_equal(info.l4_off, ETH_LEN + IP4_LEN);
	assert_int_equal(info.l3_len, IP4_LEN + TCP_LEN + 11);
	assert_int_equal(info.tcp_flags, RTE_TCP_SYN_FLAG | RTE_TCP_ECE_FLAG);
	rte_pktmbuf_free(m);
}

static void test_udp4(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.1.2.3", "10.200.0.1");
	craft_udp(&c, 5353, 53);
	craft_payload(&c, NULL, 30);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET, "10.1.2.3", "10.200.0.1", IPPROTO_UDP,
		   5353, 53);
	assert_int_equal(info.l3_off, ETH_LEN);
	assert_int_equal(info.l4_off, ETH_LEN + IP4_LEN);
	assert_int_equal(info.l3_len, IP4_LEN + UDP_LEN + 30);
	assert_int_equal(info.tcp_flags, 0);
	rte_pktmbuf_free(m);
}

static void test_tcp6(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8:ffff::80");
	craft_tcp(&c, 51000, 80, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
	craft_payload(&c, NULL, 100);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::1", "2001:db8:ffff::80",
		   IPPROTO_TCP, 51000, 80);
	assert_int_equal(info.l3_off, ETH_LEN);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN);
	assert_int_equal(info.l3_len, IP6_LEN + TCP_LEN + 100);
	assert_int_equal(info.tcp_flags, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
	rte_pktmbuf_free(m);
}

static void test_udp6(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "fd00::a", "fd00::b");
	craft_udp(&c, 443, 60000);
	craft_payload(&c, NULL, 1);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET6, "fd00::a", "fd00::b", IPPROTO_UDP,
		   443, 60000);
	assert_int_equal(info.l3_off, ETH_LEN);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN);
	assert_int_equal(info.l3_len, IP6_LEN + UDP_LEN + 1);
	assert_int_equal(info.tcp_flags, 0);
	rte_pktmbuf_free(m);
}

static void test_tcp_with_options(void **state)
{
	/* MSS 1460, SACK permitted, window scale 7, NOP: a typical SYN. */
	static const uint8_t opts[12] = {
		2, 4, 0x05, 0xb4, 4, 2, 3, 3, 7, 1, 1, 1,
	};
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "192.0.2.1", "192.0.2.2");
	craft_tcp(&c, 1, 2, RTE_TCP_SYN_FLAG);
	craft_tcp_options(&c, opts, sizeof(opts));
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET, "192.0.2.1", "192.0.2.2", IPPROTO_TCP,
		   1, 2);
	assert_int_equal(info.l3_len, IP4_LEN + TCP_LEN + sizeof(opts));
	assert_int_equal(info.tcp_flags, RTE_TCP_SYN_FLAG);
	rte_pktmbuf_free(m);
}

/* A UDP length short of the IP payload is legal (RFC 768 ignores the
 * rest; UDP options live there), so the datagram still balances. */
static void test_udp_surplus_after_datagram(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_udp_hdr *udp;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	udp = craft_udp(&c, 1000, 2000);
	craft_payload(&c, NULL, 12);
	m = craft_end(&c);
	udp->dgram_len = rte_cpu_to_be_16(UDP_LEN + 4);
	craft_fix_csums(&c);

	parse_expect(m, PKT_L4, &info);
	assert_int_equal(info.l3_len, IP4_LEN + UDP_LEN + 12);
	rte_pktmbuf_free(m);
}

/* Frames below 60 bytes arrive padded; the IP length, not the frame's,
 * is the packet's. */
static void test_ethernet_padding(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;
	uint16_t pad_len;
	char *pad;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_tcp(&c, 1000, 80, RTE_TCP_ACK_FLAG);
	m = craft_end(&c);
	pad_len = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN - m->data_len;
	pad = rte_pktmbuf_append(m, pad_len);
	assert_non_null(pad);
	memset(pad, 0, pad_len);

	parse_expect(m, PKT_L4, &info);
	assert_int_equal(info.l3_len, IP4_LEN + TCP_LEN);
	rte_pktmbuf_free(m);
}

/* Only the headers must lie in the first segment; the IP length is held
 * against the whole chain. */
static void test_payload_in_second_segment(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_tcp(&c, 1000, 80, RTE_TCP_ACK_FLAG);
	craft_payload(&c, NULL, 200);
	m = craft_end(&c);
	craft_split(m, ETH_LEN + IP4_LEN + TCP_LEN);

	assert_int_equal(pkt_parse(m, &info), PKT_L4);
	assert_key(&info.key, AF_INET, "10.0.0.1", "10.0.0.2", IPPROTO_TCP,
		   1000, 80);
	assert_int_equal(info.l3_len, IP4_LEN + TCP_LEN + 200);
	rte_pktmbuf_free(m);
}

/* ---- VLAN ----------------------------------------------------------- */

static void test_vlan_tcp4(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_vlan(&c, 0x2000 | 100);   /* PCP 1, VLAN 100 */
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_tcp(&c, 33000, 8080, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET, "10.0.0.1", "10.0.0.2", IPPROTO_TCP,
		   33000, 8080);
	assert_int_equal(info.l3_off, VLAN_ETH_LEN);
	assert_int_equal(info.l4_off, VLAN_ETH_LEN + IP4_LEN);
	assert_int_equal(info.l3_len, IP4_LEN + TCP_LEN);
	assert_int_equal(info.tcp_flags, RTE_TCP_FIN_FLAG | RTE_TCP_ACK_FLAG);
	rte_pktmbuf_free(m);
}

static void test_vlan_udp6(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_vlan(&c, 4094);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	craft_udp(&c, 4789, 4789);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::1", "2001:db8::2",
		   IPPROTO_UDP, 4789, 4789);
	assert_int_equal(info.l3_off, VLAN_ETH_LEN);
	assert_int_equal(info.l4_off, VLAN_ETH_LEN + IP6_LEN);
	rte_pktmbuf_free(m);
}

/* ---- IPv4 options and IPv6 extension headers ------------------------- */

static void test_ipv4_options_every_ihl(void **state)
{
	unsigned int ihl;

	(void)state;
	for (ihl = 6; ihl <= 15; ihl++) {
		size_t opt_len = (ihl - 5) * 4;
		struct pkt_info info;
		struct craft c;
		struct rte_mbuf *m;

		craft_begin(&c);
		craft_eth(&c, NULL, NULL);
		craft_ipv4(&c, "172.16.0.1", "172.16.0.2");
		craft_ipv4_options(&c, NULL, opt_len);
		craft_udp(&c, 7000 + ihl, 53);
		craft_payload(&c, NULL, 5);
		m = craft_end(&c);

		parse_expect(m, PKT_L4, &info);
		assert_key(&info.key, AF_INET, "172.16.0.1", "172.16.0.2",
			   IPPROTO_UDP, 7000 + ihl, 53);
		assert_int_equal(info.l4_off, ETH_LEN + ihl * 4);
		assert_int_equal(info.l3_len, ihl * 4 + UDP_LEN + 5);
		rte_pktmbuf_free(m);
	}
}

static void test_ipv6_ext_chain_to_tcp(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	craft_ipv6_ext(&c, IPPROTO_HOPOPTS, 8);
	craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 16);
	craft_ipv6_ext(&c, IPPROTO_ROUTING, 24);
	craft_tcp(&c, 12345, 443, RTE_TCP_SYN_FLAG);
	craft_payload(&c, NULL, 3);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::1", "2001:db8::2",
		   IPPROTO_TCP, 12345, 443);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN + 8 + 16 + 24);
	assert_int_equal(info.l3_len, IP6_LEN + 48 + TCP_LEN + 3);
	assert_int_equal(info.tcp_flags, RTE_TCP_SYN_FLAG);
	rte_pktmbuf_free(m);
}

/* The longest chain the parser promises to walk; one more is a drop
 * (test_bad_input.c). */
static void test_ipv6_ext_chain_at_limit(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;
	int i;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	for (i = 0; i < PKT_MAX_IPV6_EXT; i++)
		craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8);
	craft_udp(&c, 1, 2);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);
	assert_int_equal(info.key.proto, IPPROTO_UDP);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN + 8 * PKT_MAX_IPV6_EXT);
	rte_pktmbuf_free(m);
}

/* ---- Fragments ------------------------------------------------------ */

/* An IPv4 fragment of a TCP datagram with the given flags and offset;
 * only the first fragment starts with the TCP header. */
static struct rte_mbuf *tcp4_fragment(uint16_t frag_field)
{
	struct rte_ipv4_hdr *ip;
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	ip = craft_ipv4(&c, "198.51.100.1", "203.0.113.9");
	ip->packet_id = RTE_BE16(0x1234);
	ip->fragment_offset = rte_cpu_to_be_16(frag_field);
	if ((frag_field & RTE_IPV4_HDR_OFFSET_MASK) == 0) {
		craft_tcp(&c, 40000, 80, RTE_TCP_SYN_FLAG);
	} else {
		ip->next_proto_id = IPPROTO_TCP;
	}
	craft_payload(&c, NULL, 64);
	return craft_end(&c);
}

/* Every fragment, the first included, is keyed by addresses and protocol
 * alone, so that all pieces of a datagram meet at one backend. */
static void test_ipv4_fragments(void **state)
{
	static const uint16_t frag_fields[] = {
		RTE_IPV4_HDR_MF_FLAG,                /* first */
		RTE_IPV4_HDR_MF_FLAG | 185,          /* middle */
		370,                                 /* last */
		RTE_IPV4_HDR_DF_FLAG | 370,          /* last, DF set */
	};
	size_t i;

	(void)state;
	for (i = 0; i < RTE_DIM(frag_fields); i++) {
		struct rte_mbuf *m = tcp4_fragment(frag_fields[i]);
		struct pkt_info info;

		parse_expect(m, PKT_FRAGMENT, &info);
		assert_key(&info.key, AF_INET, "198.51.100.1", "203.0.113.9",
			   IPPROTO_TCP, 0, 0);
		assert_int_equal(info.l3_off, ETH_LEN);
		assert_int_equal(info.l4_off, ETH_LEN + IP4_LEN);
		assert_int_equal(info.tcp_flags, 0);
		rte_pktmbuf_free(m);
	}
}

/* DF alone marks a whole datagram, not a fragment. */
static void test_ipv4_dont_fragment_is_whole(void **state)
{
	struct rte_mbuf *m = tcp4_fragment(RTE_IPV4_HDR_DF_FLAG);
	struct pkt_info info;

	(void)state;
	parse_expect(m, PKT_L4, &info);
	assert_key(&info.key, AF_INET, "198.51.100.1", "203.0.113.9",
		   IPPROTO_TCP, 40000, 80);
	rte_pktmbuf_free(m);
}

static void test_ipv6_first_fragment(void **state)
{
	struct rte_ipv6_fragment_ext *frag;
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	frag = (struct rte_ipv6_fragment_ext *)
		craft_ipv6_ext(&c, IPPROTO_FRAGMENT, 8);
	frag->frag_data = rte_cpu_to_be_16(RTE_IPV6_SET_FRAG_DATA(0, 1));
	frag->id = RTE_BE32(0xabcdef);
	craft_udp(&c, 1111, 2222);
	craft_payload(&c, NULL, 40);
	m = craft_end(&c);

	parse_expect(m, PKT_FRAGMENT, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::1", "2001:db8::2",
		   IPPROTO_UDP, 0, 0);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN + 8);
	assert_int_equal(info.l3_len, IP6_LEN + 8 + UDP_LEN + 40);
	rte_pktmbuf_free(m);
}

/* A later fragment behind a hop-by-hop header: the chain is walked up to
 * the fragment header, whose next header is the datagram's protocol. */
static void test_ipv6_later_fragment_after_hop_by_hop(void **state)
{
	struct rte_ipv6_fragment_ext *frag;
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	craft_ipv6_ext(&c, IPPROTO_HOPOPTS, 8);
	frag = (struct rte_ipv6_fragment_ext *)
		craft_ipv6_ext(&c, IPPROTO_FRAGMENT, 8);
	frag->next_header = IPPROTO_TCP;
	frag->frag_data = rte_cpu_to_be_16(RTE_IPV6_SET_FRAG_DATA(1232, 0));
	craft_payload(&c, NULL, 100);
	m = craft_end(&c);

	parse_expect(m, PKT_FRAGMENT, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::1", "2001:db8::2",
		   IPPROTO_TCP, 0, 0);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN + 8 + 8);
	assert_int_equal(info.tcp_flags, 0);
	rte_pktmbuf_free(m);
}

/* ---- ICMP ----------------------------------------------------------- */

static void test_icmp4_echo(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "192.0.2.50", "198.51.100.1");
	craft_icmp_echo(&c, true, 0x77, 1);
	craft_payload(&c, NULL, 56);
	m = craft_end(&c);

	parse_expect(m, PKT_ICMP, &info);
	assert_key(&info.key, AF_INET, "192.0.2.50", "198.51.100.1",
		   IPPROTO_ICMP, 0, 0);
	assert_int_equal(info.l4_off, ETH_LEN + IP4_LEN);
	assert_int_equal(info.l3_len, IP4_LEN + 8 + 56);
	rte_pktmbuf_free(m);
}

static void test_icmp6_echo(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::50", "2001:db8::1");
	craft_icmp_echo(&c, true, 9, 2);
	m = craft_end(&c);

	parse_expect(m, PKT_ICMP, &info);
	assert_key(&info.key, AF_INET6, "2001:db8::50", "2001:db8::1",
		   IPPROTO_ICMPV6, 0, 0);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN);
	rte_pktmbuf_free(m);
}

/* A router's "fragmentation needed" about a packet the balancer sent
 * (here an IPv4 packet with options, to a backend) quotes its header and
 * 8 bytes of TCP; it is classified by the outer header. */
static void test_icmp4_frag_needed(void **state)
{
	struct pkt_info info;
	struct craft orig, c;
	struct rte_mbuf *m;
	const uint8_t *icmp;

	(void)state;
	craft_begin(&orig);
	craft_eth(&orig, NULL, NULL);
	craft_ipv4(&orig, "10.0.0.1", "10.9.9.9")->fragment_offset =
		RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
	craft_ipv4_options(&orig, NULL, 4);
	craft_tcp(&orig, 40000, 80, RTE_TCP_ACK_FLAG);
	craft_payload(&orig, NULL, 1400);
	craft_end(&orig);

	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.5.5.5", "10.0.0.1");
	icmp = craft_icmp_error(&c, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400,
				orig.m, orig.l3_off);
	m = craft_end(&c);

	parse_expect(m, PKT_ICMP, &info);
	assert_key(&info.key, AF_INET, "10.5.5.5", "10.0.0.1", IPPROTO_ICMP,
		   0, 0);
	assert_int_equal(info.l4_off, ETH_LEN + IP4_LEN);
	assert_int_equal(info.l3_len, IP4_LEN + 8 + 24 + 8);
	assert_int_equal(icmp[6] << 8 | icmp[7], 1400);
	assert_memory_equal(icmp + 8,
			    rte_pktmbuf_mtod_offset(orig.m, void *, ETH_LEN),
			    24 + 8);
	assert_frame(craft_l4_csum_ok(m, info.l3_off), m);
	rte_pktmbuf_free(orig.m);
	rte_pktmbuf_free(m);
}

static void test_icmp6_packet_too_big(void **state)
{
	struct pkt_info info;
	struct craft orig, c;
	struct rte_mbuf *m;
	const uint8_t *icmp;

	(void)state;
	craft_begin(&orig);
	craft_eth(&orig, NULL, NULL);
	craft_ipv6(&orig, "2001:db8::1", "2001:db8:9::9");
	craft_tcp(&orig, 40000, 443, RTE_TCP_ACK_FLAG);
	craft_payload(&orig, NULL, 1440);
	craft_end(&orig);

	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8:5::5", "2001:db8::1");
	icmp = craft_icmp_error(&c, ICMP6_PACKET_TOO_BIG, 0, 1280, orig.m,
				orig.l3_off);
	m = craft_end(&c);

	parse_expect(m, PKT_ICMP, &info);
	assert_key(&info.key, AF_INET6, "2001:db8:5::5", "2001:db8::1",
		   IPPROTO_ICMPV6, 0, 0);
	/* The quote fills the error up to the IPv6 minimum MTU. */
	assert_int_equal(info.l3_len, 1280);
	assert_memory_equal(icmp + 8,
			    rte_pktmbuf_mtod_offset(orig.m, void *, ETH_LEN),
			    1280 - IP6_LEN - 8);
	assert_frame(craft_l4_csum_ok(m, info.l3_off), m);
	rte_pktmbuf_free(orig.m);
	rte_pktmbuf_free(m);
}

static void test_ndp(void **state)
{
	static const struct rte_ether_addr mac = {{ 0x02, 0xaa, 0, 0, 0, 7 }};
	int advert;

	(void)state;
	for (advert = 0; advert <= 1; advert++) {
		struct pkt_info info;
		struct craft c;
		struct rte_mbuf *m;
		const uint8_t *icmp;

		craft_begin(&c);
		craft_eth(&c, &mac, NULL);
		craft_ipv6(&c, "fe80::7", "ff02::1:ff00:1");
		icmp = advert ? craft_ndp_na(&c, "2001:db8::1",
					     ND_NA_FLAG_SOLICITED, &mac)
			      : craft_ndp_ns(&c, "2001:db8::1", &mac);
		m = craft_end(&c);

		parse_expect(m, PKT_ICMP, &info);
		assert_int_equal(info.key.proto, IPPROTO_ICMPV6);
		assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN);
		assert_int_equal(icmp[0], advert ? ND_NEIGHBOR_ADVERT
						 : ND_NEIGHBOR_SOLICIT);
		assert_int_equal(icmp[24], advert ? ND_OPT_TARGET_LINKADDR
						  : ND_OPT_SOURCE_LINKADDR);
		assert_memory_equal(icmp + 26, &mac, RTE_ETHER_ADDR_LEN);
		assert_int_equal(rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *,
							 ETH_LEN)->hop_limits,
				 255);
		assert_frame(craft_l4_csum_ok(m, info.l3_off), m);
		rte_pktmbuf_free(m);
	}
}

/* ---- ARP and protocols that are not balanced ------------------------- */

static void test_arp(void **state)
{
	static const struct rte_ether_addr broadcast = {{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff }};
	int tagged;

	(void)state;
	for (tagged = 0; tagged <= 1; tagged++) {
		struct pkt_info info;
		struct craft c;
		struct rte_mbuf *m;

		craft_begin(&c);
		craft_eth(&c, NULL, &broadcast);
		if (tagged)
			craft_vlan(&c, 7);
		craft_arp(&c, RTE_ARP_OP_REQUEST, &craft_mac_src, "10.0.0.1",
			  NULL, "10.0.0.2");
		m = craft_end(&c);

		parse_expect(m, PKT_ARP, &info);
		assert_int_equal(info.l3_off, tagged ? VLAN_ETH_LEN : ETH_LEN);
		assert_key_zero(&info.key);
		assert_int_equal(info.tcp_flags, 0);
		rte_pktmbuf_free(m);
	}
}

static struct rte_mbuf *ip_proto_frame(uint8_t family, uint8_t proto)
{
	struct craft c;

	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	if (family == AF_INET)
		craft_ipv4(&c, "10.0.0.1", "10.0.0.2")->next_proto_id = proto;
	else
		craft_ipv6(&c, "fd00::1", "fd00::2")->proto = proto;
	craft_payload(&c, NULL, 32);
	return craft_end(&c);
}

static void test_gre_esp_are_other(void **state)
{
	static const uint8_t protos[] = { IPPROTO_GRE, IPPROTO_ESP };
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	size_t p, f;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		for (p = 0; p < RTE_DIM(protos); p++) {
			uint16_t ip_len = families[f] == AF_INET ? IP4_LEN
								 : IP6_LEN;
			struct rte_mbuf *m;
			struct pkt_info info;

			m = ip_proto_frame(families[f], protos[p]);
			parse_expect(m, PKT_OTHER, &info);
			assert_int_equal(info.key.family, families[f]);
			assert_int_equal(info.key.proto, protos[p]);
			assert_int_equal(info.key.sport, 0);
			assert_int_equal(info.key.dport, 0);
			assert_int_equal(info.l4_off, ETH_LEN + ip_len);
			assert_int_equal(info.l3_len, ip_len + 32);
			rte_pktmbuf_free(m);
		}
	}
}

/* "No next header" ends the chain with nothing after it. */
static void test_ipv6_no_next_header_is_other(void **state)
{
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "fd00::1", "fd00::2");
	craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8)[0] = IPPROTO_NONE;
	m = craft_end(&c);

	parse_expect(m, PKT_OTHER, &info);
	assert_int_equal(info.key.proto, IPPROTO_NONE);
	assert_int_equal(info.l4_off, ETH_LEN + IP6_LEN + 8);
	rte_pktmbuf_free(m);
}

/* ---- Keys ----------------------------------------------------------- */

/* Garbage left in the caller's pkt_info must never reach the key: an
 * IPv4 key is zero past its four address bytes and in its pad. */
static void test_key_zero_padded(void **state)
{
	static const uint8_t zero[12];
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "255.255.255.254", "255.255.255.253");
	craft_udp(&c, 0xffff, 0xfffe);
	m = craft_end(&c);

	parse_expect(m, PKT_L4, &info);   /* info starts as 0xa5 bytes */
	assert_memory_equal(info.key.src.v6 + 4, zero, 12);
	assert_memory_equal(info.key.dst.v6 + 4, zero, 12);
	assert_memory_equal(info.key.pad, zero, sizeof(info.key.pad));
	rte_pktmbuf_free(m);
}

/* Two frames of one flow that differ below the 5-tuple give one key,
 * byte for byte, so they hash alike. */
static void test_key_ignores_other_fields(void **state)
{
	struct pkt_info a, b;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	craft_tcp(&c, 1000, 80, RTE_TCP_SYN_FLAG);
	m = craft_end(&c);
	parse_expect(m, PKT_L4, &a);
	rte_pktmbuf_free(m);

	craft_begin(&c);
	craft_eth(&c, &craft_mac_dst, &craft_mac_src);
	craft_vlan(&c, 10);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2")->hop_limits = 3;
	craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8);
	craft_tcp(&c, 1000, 80, RTE_TCP_ACK_FLAG)->sent_seq = RTE_BE32(99);
	craft_payload(&c, NULL, 500);
	m = craft_end(&c);
	parse_expect(m, PKT_L4, &b);
	rte_pktmbuf_free(m);

	assert_memory_equal(&a.key, &b.key, sizeof(a.key));
}

/* ---- Offloads ------------------------------------------------------- */

/* A NIC that checked the IPv4 header saves the software checksum; its
 * verdict is taken as it is. */
static void test_nic_checksum_good_is_trusted(void **state)
{
	struct rte_ipv4_hdr *ip;
	struct pkt_info info;
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	ip = craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_udp(&c, 1, 2);
	m = craft_end(&c);
	ip->hdr_checksum ^= 0xffff;
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;

	parse_expect(m, PKT_L4, &info);
	rte_pktmbuf_free(m);
}

/* The software IPv4 header check sums words, not half-words: it must
 * agree with DPDK's rte_raw_cksum() on any header, options and all, with
 * a right checksum or a random one. */
static void test_ipv4_checksum_agrees_with_dpdk(void **state)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	unsigned int good = 0;

	(void)state;
	for (int run = 0; run < 4000; run++) {
		uint8_t opts[40];
		size_t len = 4 * (size_t)(run % 11);
		struct rte_ipv4_hdr *ip;
		struct pkt_info info;
		struct rte_mbuf *m;
		struct craft c;
		bool want;

		for (size_t i = 0; i < sizeof(opts); i++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			opts[i] = (uint8_t)rng;
		}
		craft_begin(&c);
		craft_eth(&c, NULL, NULL);
		ip = craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
		craft_ipv4_options(&c, opts, len);
		craft_udp(&c, 1, 2);
		m = craft_end(&c);
		/* every other header keeps its right checksum; the rest get
		 * one at random, now and then the right one by chance */
		if (run % 2)
			ip->hdr_checksum = (uint16_t)(rng >> 32);
		want = rte_raw_cksum(ip, sizeof(*ip) + len) == 0xffff;
		good += want;
		if (pkt_parse(m, &info) == PKT_DROP)
			assert_int_equal(info.drop == DROP_BAD_IP_CSUM, !want);
		else
			assert_true(want);
		rte_pktmbuf_free(m);
	}
	assert_in_range(good, 2000, 2100);
}

/* ---- The crafting library itself ------------------------------------- */

/* DPDK's verdict on the L4 checksum of a crafted packet with no IPv6
 * extension headers. The IPv6 verifier sums whatever follows the header
 * behind the pseudo-header, so it serves ICMPv6 too; ICMP over IPv4 has
 * no pseudo-header, and its message sums to 0xffff. */
static bool dpdk_l4_csum_ok(const struct craft *c)
{
	const void *ip = rte_pktmbuf_mtod_offset(c->m, void *, c->l3_off);
	const void *l4 = rte_pktmbuf_mtod_offset(c->m, void *, c->l4_off);

	if (c->l4_proto == IPPROTO_ICMP)
		return rte_raw_cksum(l4, c->m->data_len - c->l4_off) == 0xffff;
	if (c->family == AF_INET)
		return rte_ipv4_udptcp_cksum_verify(ip, l4) == 0;
	return rte_ipv6_udptcp_cksum_verify(ip, l4) == 0;
}

/* Every test leans on craft's checksums; DPDK's own verifiers are an
 * independent implementation to hold them against. */
static void test_craft_checksums_match_dpdk(void **state)
{
	static const uint8_t protos[] = {
		IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP,   /* ICMPv6 in IPv6 */
	};
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	size_t p, f;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		for (p = 0; p < RTE_DIM(protos); p++) {
			struct craft c;
			struct rte_mbuf *m;
			uint8_t *payload;

			craft_begin(&c);
			craft_eth(&c, NULL, NULL);
			if (families[f] == AF_INET)
				craft_ipv4(&c, "192.0.2.1", "192.0.2.99");
			else
				craft_ipv6(&c, "2001:db8::1", "2001:db8::99");
			if (protos[p] == IPPROTO_TCP)
				craft_tcp(&c, 40000, 80, RTE_TCP_ACK_FLAG);
			else if (protos[p] == IPPROTO_UDP)
				craft_udp(&c, 40000, 53);
			else
				craft_icmp_echo(&c, true, 7, 1);
			payload = craft_payload(&c, NULL, 37);   /* odd */
			m = craft_end(&c);

			if (families[f] == AF_INET)
				assert_true(craft_ipv4_csum_ok(
					rte_pktmbuf_mtod_offset(m, void *,
								c.l3_off)));
			assert_frame(dpdk_l4_csum_ok(&c), m);
			assert_frame(craft_l4_csum_ok(m, c.l3_off), m);

			payload[36] ^= 0x01;
			assert_false(dpdk_l4_csum_ok(&c));
			assert_false(craft_l4_csum_ok(m, c.l3_off));
			rte_pktmbuf_free(m);
		}
	}
}

/* All tests must hand back every mbuf they took. */
static int pool_full(void **state)
{
	(void)state;
	return rte_mempool_full(test_env_pool()) ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp4),
		cmocka_unit_test(test_udp4),
		cmocka_unit_test(test_tcp6),
		cmocka_unit_test(test_udp6),
		cmocka_unit_test(test_tcp_with_options),
		cmocka_unit_test(test_udp_surplus_after_datagram),
		cmocka_unit_test(test_ethernet_padding),
		cmocka_unit_test(test_payload_in_second_segment),
		cmocka_unit_test(test_vlan_tcp4),
		cmocka_unit_test(test_vlan_udp6),
		cmocka_unit_test(test_ipv4_options_every_ihl),
		cmocka_unit_test(test_ipv6_ext_chain_to_tcp),
		cmocka_unit_test(test_ipv6_ext_chain_at_limit),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_ipv4_dont_fragment_is_whole),
		cmocka_unit_test(test_ipv6_first_fragment),
		cmocka_unit_test(test_ipv6_later_fragment_after_hop_by_hop),
		cmocka_unit_test(test_icmp4_echo),
		cmocka_unit_test(test_icmp6_echo),
		cmocka_unit_test(test_icmp4_frag_needed),
		cmocka_unit_test(test_icmp6_packet_too_big),
		cmocka_unit_test(test_ndp),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_gre_esp_are_other),
		cmocka_unit_test(test_ipv6_no_next_header_is_other),
		cmocka_unit_test(test_key_zero_padded),
		cmocka_unit_test(test_key_ignores_other_fields),
		cmocka_unit_test(test_nic_checksum_good_is_trusted),
		cmocka_unit_test(test_ipv4_checksum_agrees_with_dpdk),
		cmocka_unit_test(test_craft_checksums_match_dpdk),
	};

	test_env_init();
	return cmocka_run_group_tests(tests, NULL, pool_full);
}
