/* Malformed input must be dropped, for the right reason, without reading a
 * byte it should not. Sections:
 *
 *   pkt_parse(): Ethernet and VLAN, IPv4, IPv6, TCP/UDP/ICMP, segments
 *   pkt_parse(): robustness sweep (every truncation, random mutations)
 *
 * Every frame is parsed twice: as crafted, and copied into a buffer that
 * ends where the frame ends (craft_tight_copy()), where ASan turns any
 * read past the frame into a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <netinet/in.h>

#include "pkt_craft.h"
#include "pkt_parse.h"
#include "test_env.h"

#define ETH_LEN 14
#define VLAN_ETH_LEN 18
#define IP4_LEN 20
#define IP6_LEN 40
#define TCP_LEN 20
#define UDP_LEN 8
#define ICMP_LEN 8

static const uint8_t families[] = { AF_INET, AF_INET6 };

static const char *drop_name(uint8_t reason)
{
	return reason < DROP_REASON_MAX ? drop_reason_names[reason]
					: "(out of range)";
}

/* Parses m and its tight copy; both must drop it for the reason given.
 * Frees m. */
static void expect_drop_at(struct rte_mbuf *m, enum drop_reason want,
			   const char *file, int line)
{
	struct rte_mbuf *copies[2] = { m, craft_tight_copy(m, m->data_len) };
	size_t i;

	for (i = 0; i < RTE_DIM(copies); i++) {
		struct pkt_info info;
		enum pkt_class got;

		memset(&info, 0xa5, sizeof(info));
		got = pkt_parse(copies[i], &info);
		if (got != PKT_DROP || info.drop != want) {
			craft_hexdump(copies[i]);
			print_error("%s: class %d drop %s, want drop %s\n",
				    i ? "tight copy" : "frame", got,
				    got == PKT_DROP ? drop_name(info.drop) : "-",
				    drop_name(want));
			_fail(file, line);
		}
	}
	rte_pktmbuf_free(copies[1]);
	rte_pktmbuf_free(m);
}

#define expect_drop(m, want) expect_drop_at(m, want, __FILE__, __LINE__)

static struct rte_ipv4_hdr *ip4(const struct craft *c)
{
	return rte_pktmbuf_mtod_offset(c->m, struct rte_ipv4_hdr *, c->l3_off);
}

static struct rte_ipv6_hdr *ip6(const struct craft *c)
{
	return rte_pktmbuf_mtod_offset(c->m, struct rte_ipv6_hdr *, c->l3_off);
}

static void *l4(const struct craft *c)
{
	return rte_pktmbuf_mtod_offset(c->m, void *, c->l4_off);
}

static void ip_header(struct craft *c, uint8_t family)
{
	craft_begin(c);
	craft_eth(c, NULL, NULL);
	if (family == AF_INET)
		craft_ipv4(c, "192.0.2.1", "198.51.100.1");
	else
		craft_ipv6(c, "2001:db8::1", "2001:db8::2");
}

static struct rte_mbuf *tcp_frame(struct craft *c, uint8_t family,
				  size_t payload)
{
	ip_header(c, family);
	craft_tcp(c, 40000, 80, RTE_TCP_ACK_FLAG);
	craft_payload(c, NULL, payload);
	return craft_end(c);
}

static struct rte_mbuf *udp_frame(struct craft *c, uint8_t family,
				  size_t payload)
{
	ip_header(c, family);
	craft_udp(c, 40000, 53);
	craft_payload(c, NULL, payload);
	return craft_end(c);
}

/* Makes the IP header claim l3_len bytes, with a header checksum that
 * still holds, so that the length is the one thing wrong. */
static void set_ip_len(struct craft *c, uint32_t l3_len)
{
	if (c->family == AF_INET)
		ip4(c)->total_length = rte_cpu_to_be_16((uint16_t)l3_len);
	else
		ip6(c)->payload_len =
			rte_cpu_to_be_16((uint16_t)(l3_len - IP6_LEN));
	craft_fix_csums(c);
}

/* Cuts the frame to len bytes and makes the IP header agree, so that the
 * cut shows in the L4 header rather than in the IP length. */
static void cut_ip_packet(struct craft *c, uint16_t len)
{
	assert_int_equal(rte_pktmbuf_trim(c->m, c->m->data_len - len), 0);
	set_ip_len(c, len - c->l3_off);
}

/* ==== pkt_parse(): Ethernet and VLAN =================================== */

static void test_empty_frame(void **state)
{
	struct craft c;

	(void)state;
	craft_begin(&c);
	expect_drop(craft_end(&c), DROP_TRUNCATED);
}

static void test_short_ethernet_header(void **state)
{
	uint16_t len;

	(void)state;
	for (len = 1; len < ETH_LEN; len++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET, 0);

		rte_pktmbuf_trim(m, m->data_len - len);
		expect_drop(m, DROP_TRUNCATED);
	}
}

static void test_vlan_header_cut(void **state)
{
	uint16_t len;

	(void)state;
	for (len = ETH_LEN; len < VLAN_ETH_LEN; len++) {
		struct craft c;
		struct rte_mbuf *m;

		craft_begin(&c);
		craft_eth(&c, NULL, NULL);
		craft_vlan(&c, 100);
		craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
		craft_udp(&c, 1, 2);
		m = craft_end(&c);
		rte_pktmbuf_trim(m, m->data_len - len);
		expect_drop(m, DROP_TRUNCATED);
	}
}

static void test_unknown_ethertypes(void **state)
{
	static const uint16_t types[] = {
		0x88cc,   /* LLDP */
		0x9000,   /* loopback */
		0x88a8,   /* 802.1ad outer tag: one 802.1Q tag is all we read */
		0x8847,   /* MPLS */
		0x0000,
		0xffff,
	};
	size_t i;
	int tagged;

	(void)state;
	for (tagged = 0; tagged <= 1; tagged++) {
		for (i = 0; i < RTE_DIM(types); i++) {
			struct rte_ether_hdr *eth;
			struct rte_vlan_hdr *vlan = NULL;
			struct craft c;
			struct rte_mbuf *m;

			craft_begin(&c);
			eth = craft_eth(&c, NULL, NULL);
			if (tagged)
				vlan = craft_vlan(&c, 5);
			craft_payload(&c, NULL, 46);
			m = craft_end(&c);
			if (vlan)
				vlan->eth_proto = rte_cpu_to_be_16(types[i]);
			else
				eth->ether_type = rte_cpu_to_be_16(types[i]);
			expect_drop(m, DROP_UNKNOWN_ETHERTYPE);
		}
	}
}

/* Two 802.1Q tags: the inner one is an unknown ethertype. */
static void test_double_vlan_tag(void **state)
{
	struct craft c;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_vlan(&c, 1);
	craft_vlan(&c, 2);
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_udp(&c, 1, 2);
	expect_drop(craft_end(&c), DROP_UNKNOWN_ETHERTYPE);
}

/* ==== pkt_parse(): IPv4 ================================================ */

static void test_ipv4_header_cut(void **state)
{
	uint16_t ip_bytes;

	(void)state;
	for (ip_bytes = 0; ip_bytes < IP4_LEN; ip_bytes++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET, 0);

		rte_pktmbuf_trim(m, m->data_len - (ETH_LEN + ip_bytes));
		expect_drop(m, DROP_TRUNCATED);
	}
}

static void test_ipv4_ihl_below_5(void **state)
{
	uint8_t ihl;

	(void)state;
	for (ihl = 0; ihl < 5; ihl++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET, 20);

		ip4(&c)->version_ihl = 0x40 | ihl;
		craft_fix_csums(&c);
		expect_drop(m, DROP_BAD_IHL);
	}
}

/* A header longer than the whole frame: the header itself is cut. */
static void test_ipv4_ihl_beyond_frame(void **state)
{
	uint8_t ihl;

	(void)state;
	for (ihl = 8; ihl <= 15; ihl++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET, 0);   /* 28 bytes */

		ip4(&c)->version_ihl = 0x40 | ihl;
		craft_fix_csums(&c);
		expect_drop(m, DROP_TRUNCATED);
	}
}

/* A header that fits the frame but leaves no room for the L4 header. */
static void test_ipv4_ihl_covers_l4_header(void **state)
{
	uint8_t ihl;

	(void)state;
	for (ihl = 6; ihl <= 7; ihl++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET, 0);   /* 28 bytes */

		ip4(&c)->version_ihl = 0x40 | ihl;
		craft_fix_csums(&c);
		expect_drop(m, DROP_TRUNCATED);
	}
}

static void test_ipv4_total_length_below_ihl(void **state)
{
	static const uint16_t lens[] = { 0, 1, 19 };
	size_t i;
	uint16_t len;

	(void)state;
	for (i = 0; i < RTE_DIM(lens); i++) {
		struct craft c;
		struct rte_mbuf *m = tcp_frame(&c, AF_INET, 10);

		set_ip_len(&c, lens[i]);
		expect_drop(m, DROP_BAD_IP_LEN);
	}
	/* With options the bar is the IHL, not 20. */
	for (len = IP4_LEN; len < IP4_LEN + 8; len++) {
		struct craft c;
		struct rte_mbuf *m;

		craft_begin(&c);
		craft_eth(&c, NULL, NULL);
		craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
		craft_ipv4_options(&c, NULL, 8);
		craft_udp(&c, 1, 2);
		m = craft_end(&c);
		set_ip_len(&c, len);
		expect_drop(m, DROP_BAD_IP_LEN);
	}
}

static void test_ip_length_beyond_frame(void **state)
{
	size_t f;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		struct craft c;
		struct rte_mbuf *m = tcp_frame(&c, families[f], 10);
		uint16_t l3_len = m->data_len - c.l3_off;

		set_ip_len(&c, l3_len + 1);
		expect_drop(m, DROP_BAD_IP_LEN);

		m = tcp_frame(&c, families[f], 10);
		set_ip_len(&c, UINT16_MAX);
		expect_drop(m, DROP_BAD_IP_LEN);
	}
}

static void test_ipv4_bad_header_checksum(void **state)
{
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	m = tcp_frame(&c, AF_INET, 0);
	ip4(&c)->hdr_checksum ^= RTE_BE16(0x0100);
	expect_drop(m, DROP_BAD_IP_CSUM);

	/* A router-like change without the checksum update. */
	m = tcp_frame(&c, AF_INET, 0);
	ip4(&c)->time_to_live--;
	expect_drop(m, DROP_BAD_IP_CSUM);

	/* Options are covered by the checksum too. */
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
	craft_ipv4_options(&c, NULL, 4);
	craft_udp(&c, 1, 2);
	m = craft_end(&c);
	*rte_pktmbuf_mtod_offset(m, uint8_t *, c.l3_off + IP4_LEN + 3) = 0;
	expect_drop(m, DROP_BAD_IP_CSUM);
}

/* The NIC's verdict stands, even against a header that sums correctly. */
static void test_ipv4_nic_says_bad_checksum(void **state)
{
	struct craft c;
	struct rte_mbuf *m;

	(void)state;
	m = tcp_frame(&c, AF_INET, 0);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
	expect_drop(m, DROP_BAD_IP_CSUM);

	/* "Not checked" is checked in software. */
	m = tcp_frame(&c, AF_INET, 0);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_NONE;
	ip4(&c)->hdr_checksum ^= RTE_BE16(1);
	expect_drop(m, DROP_BAD_IP_CSUM);
}

static void test_ip_version_mismatch(void **state)
{
	static const uint8_t v4_wrong[] = { 0x65, 0x05, 0xf5 };
	static const uint8_t v6_wrong[] = { 4, 0, 15 };
	struct craft c;
	struct rte_mbuf *m;
	size_t i;

	(void)state;
	for (i = 0; i < RTE_DIM(v4_wrong); i++) {
		m = udp_frame(&c, AF_INET, 0);
		ip4(&c)->version_ihl = v4_wrong[i];
		craft_fix_csums(&c);
		expect_drop(m, DROP_BAD_IP_VERSION);
	}
	for (i = 0; i < RTE_DIM(v6_wrong); i++) {
		m = udp_frame(&c, AF_INET6, 0);
		ip6(&c)->vtc_flow = rte_cpu_to_be_32((uint32_t)v6_wrong[i] << 28);
		expect_drop(m, DROP_BAD_IP_VERSION);
	}
}

/* ==== pkt_parse(): IPv6 ================================================ */

static void test_ipv6_header_cut(void **state)
{
	uint16_t ip_bytes;

	(void)state;
	for (ip_bytes = 0; ip_bytes < IP6_LEN; ip_bytes++) {
		struct craft c;
		struct rte_mbuf *m = udp_frame(&c, AF_INET6, 0);

		rte_pktmbuf_trim(m, m->data_len - (ETH_LEN + ip_bytes));
		expect_drop(m, DROP_TRUNCATED);
	}
}

static void test_ipv6_ext_chain_too_long(void **state)
{
	struct craft c;
	int i;

	(void)state;
	craft_begin(&c);
	craft_eth(&c, NULL, NULL);
	craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
	craft_ipv6_ext(&c, IPPROTO_HOPOPTS, 8);
	for (i = 1; i < PKT_MAX_IPV6_EXT + 1; i++)
		craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8);
	craft_tcp(&c, 1, 2, RTE_TCP_SYN_FLAG);
	expect_drop(craft_end(&c), DROP_IPV6_EXT_CHAIN);
}

/* An extension header whose length field reaches past the packet. */
static void test_ipv6_ext_length_past_packet(void **state)
{
	static const uint8_t ext_lens[] = { 2, 3, 255 };
	size_t i;

	(void)state;
	for (i = 0; i < RTE_DIM(ext_lens); i++) {
		struct craft c;
		uint8_t *ext;

		craft_begin(&c);
		craft_eth(&c, NULL, NULL);
		craft_ipv6(&c, "2001:db8::1", "2001:db8::2");
		ext = craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8);
		craft_udp(&c, 1, 2);   /* 16 bytes of payload in all */
		craft_end(&c);
		ext[1] = ext_lens[i];
		expect_drop(c.m, DROP_IPV6_EXT_CHAIN);
	}
}

/* Fewer than the 8 bytes every extension header has, in the packet; the
 * frame goes on (Ethernet padding) but the packet has ended. */
static void test_ipv6_ext_header_cut(void **state)
{
	static const uint8_t types[] = {
		IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
		IPPROTO_FRAGMENT,
	};
	size_t i;
	uint16_t payload;

	(void)state;
	for (i = 0; i < RTE_DIM(types); i++) {
		for (payload = 0; payload < 8; payload++) {
			struct craft c;

			craft_begin(&c);
			craft_eth(&c, NULL, NULL);
			craft_ipv6(&c, "2001:db8::1", "2001:db8::2")->proto =
				types[i];
			craft_payload(&c, NULL, 16);
			craft_end(&c);
			set_ip_len(&c, IP6_LEN + payload);
			expect_drop(c.m, DROP_IPV6_EXT_CHAIN);
		}
	}
}

/* ==== pkt_parse(): TCP, UDP, ICMP ===================================== */

static void test_udp_bad_length(void **state)
{
	size_t f;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		const uint16_t lens[] = { 0, 1, 7, UDP_LEN + 10 + 1, UINT16_MAX };
		size_t i;

		for (i = 0; i < RTE_DIM(lens); i++) {
			struct craft c;
			struct rte_mbuf *m = udp_frame(&c, families[f], 10);

			((struct rte_udp_hdr *)l4(&c))->dgram_len =
				rte_cpu_to_be_16(lens[i]);
			craft_fix_csums(&c);
			expect_drop(m, DROP_BAD_UDP_LEN);
		}
	}
}

static void test_tcp_data_offset_below_5(void **state)
{
	size_t f;
	uint8_t doff;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		for (doff = 0; doff < 5; doff++) {
			struct craft c;
			struct rte_mbuf *m = tcp_frame(&c, families[f], 40);

			((struct rte_tcp_hdr *)l4(&c))->data_off = doff << 4;
			craft_fix_csums(&c);
			expect_drop(m, DROP_BAD_TCP_DOFF);
		}
	}
}

/* Data offsets past the segment: 20 bytes of header and 3 of data leave
 * no room for even one word of options. */
static void test_tcp_data_offset_beyond_segment(void **state)
{
	size_t f;
	uint8_t doff;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		for (doff = 6; doff <= 15; doff++) {
			struct craft c;
			struct rte_mbuf *m = tcp_frame(&c, families[f], 3);

			((struct rte_tcp_hdr *)l4(&c))->data_off = doff << 4;
			craft_fix_csums(&c);
			expect_drop(m, DROP_BAD_TCP_DOFF);
		}
	}
}

/* An IP packet holding nothing but an L4 header of protocol proto. */
static void bare_l4_frame(struct craft *c, uint8_t family, uint8_t proto)
{
	ip_header(c, family);
	if (proto == IPPROTO_TCP)
		craft_tcp(c, 1, 2, RTE_TCP_SYN_FLAG);
	else if (proto == IPPROTO_UDP)
		craft_udp(c, 1, 2);
	else
		craft_icmp_echo(c, true, 1, 1);
	craft_end(c);
}

/* An L4 header cut short, either where the frame ends or where the IP
 * packet ends with the frame going on. ICMP means ICMPv6 over IPv6. */
static void test_l4_header_cut(void **state)
{
	static const struct {
		uint8_t proto;
		uint16_t hdr_len;
	} l4s[] = {
		{ IPPROTO_TCP, TCP_LEN },
		{ IPPROTO_UDP, UDP_LEN },
		{ IPPROTO_ICMP, ICMP_LEN },
	};
	size_t f, p;
	uint16_t keep;

	(void)state;
	for (f = 0; f < RTE_DIM(families); f++) {
		for (p = 0; p < RTE_DIM(l4s); p++) {
			for (keep = 0; keep < l4s[p].hdr_len; keep++) {
				struct craft c;

				bare_l4_frame(&c, families[f], l4s[p].proto);
				cut_ip_packet(&c, c.l4_off + keep);
				expect_drop(c.m, DROP_TRUNCATED);

				bare_l4_frame(&c, families[f], l4s[p].proto);
				set_ip_len(&c, c.l4_off + keep - c.l3_off);
				expect_drop(c.m, DROP_TRUNCATED);
			}
		}
	}
}

/* ==== pkt_parse(): segments ========================================== */

/* Headers are read from the first segment alone (pkt_parse.c): one that
 * runs into the second is cut, though the chain holds all of it. */
static void test_header_past_first_segment(void **state)
{
	static const struct {
		uint8_t family;
		uint16_t split_at;
		enum drop_reason want;
	} cases[] = {
		{ AF_INET, ETH_LEN + 10, DROP_TRUNCATED },
		{ AF_INET, ETH_LEN + IP4_LEN + 10, DROP_TRUNCATED },
		{ AF_INET6, ETH_LEN + IP6_LEN + 4, DROP_IPV6_EXT_CHAIN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < RTE_DIM(cases); i++) {
		struct pkt_info info;
		struct craft c;

		ip_header(&c, cases[i].family);
		if (cases[i].family == AF_INET6)
			craft_ipv6_ext(&c, IPPROTO_DSTOPTS, 8);
		craft_tcp(&c, 1, 2, RTE_TCP_SYN_FLAG);
		craft_payload(&c, NULL, 100);
		craft_end(&c);
		craft_split(c.m, cases[i].split_at);

		assert_int_equal(pkt_parse(c.m, &info), PKT_DROP);
		assert_string_equal(drop_name(info.drop),
				    drop_name(cases[i].want));
		rte_pktmbuf_free(c.m);
	}
}

/* ==== pkt_parse(): robustness sweep =================================== */

/* The frames every cut and mutation starts from, together covering each
 * layer the parser reads. */
static struct rte_mbuf *sweep_base(size_t i, struct craft *c)
{
	struct craft orig;

	craft_begin(c);
	craft_eth(c, NULL, NULL);
	switch (i) {
	case 0:   /* TCP over IPv4 with options */
		craft_ipv4(c, "192.0.2.1", "198.51.100.1");
		craft_ipv4_options(c, NULL, 8);
		craft_tcp(c, 40000, 80, RTE_TCP_SYN_FLAG);
		craft_payload(c, NULL, 16);
		break;
	case 1:   /* TCP over IPv6 behind three extension headers */
		craft_ipv6(c, "2001:db8::1", "2001:db8::2");
		craft_ipv6_ext(c, IPPROTO_HOPOPTS, 8);
		craft_ipv6_ext(c, IPPROTO_ROUTING, 24);
		craft_ipv6_ext(c, IPPROTO_DSTOPTS, 16);
		craft_tcp(c, 40000, 443, RTE_TCP_ACK_FLAG);
		craft_payload(c, NULL, 16);
		break;
	case 2:   /* UDP over IPv4 in a VLAN */
		craft_vlan(c, 42);
		craft_ipv4(c, "10.0.0.1", "10.0.0.2");
		craft_udp(c, 5000, 53);
		craft_payload(c, NULL, 24);
		break;
	case 3:   /* IPv6 first fragment */
		craft_ipv6(c, "2001:db8::1", "2001:db8::2");
		((struct rte_ipv6_fragment_ext *)
		 craft_ipv6_ext(c, IPPROTO_FRAGMENT, 8))->frag_data =
			rte_cpu_to_be_16(RTE_IPV6_SET_FRAG_DATA(0, 1));
		craft_udp(c, 1, 2);
		craft_payload(c, NULL, 16);
		break;
	default:  /* ICMP fragmentation needed quoting a TCP segment */
		tcp_frame(&orig, AF_INET, 0);
		craft_ipv4(c, "10.5.5.5", "192.0.2.1");
		craft_icmp_error(c, 3, 4, 1400, orig.m, orig.l3_off);
		rte_pktmbuf_free(orig.m);
		break;
	}
	return craft_end(c);
}

#define SWEEP_BASES 5

/* The parse-stage reasons; anything else from pkt_parse() is a bug. */
static bool parse_drop_reason(uint8_t reason)
{
	switch (reason) {
	case DROP_TRUNCATED:
	case DROP_UNKNOWN_ETHERTYPE:
	case DROP_BAD_IP_VERSION:
	case DROP_BAD_IHL:
	case DROP_BAD_IP_LEN:
	case DROP_BAD_IP_CSUM:
	case DROP_IPV6_EXT_CHAIN:
	case DROP_BAD_TCP_DOFF:
	case DROP_BAD_UDP_LEN:
		return true;
	default:
		return false;
	}
}

/* Holds a result against the frame it came from: every offset and length
 * it reports lies within the frame, and every field it copied is there. */
static void check_result(const struct rte_mbuf *m, enum pkt_class cls,
			 const struct pkt_info *info)
{
	static const struct flow_key zero_key;
	static const uint8_t zero[12];
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t l3_end, hdr_len;

	assert_memory_equal(info->key.pad, zero, sizeof(info->key.pad));
	if (cls == PKT_DROP) {
		assert_true(parse_drop_reason(info->drop));
		return;
	}
	assert_true(info->l3_off == ETH_LEN || info->l3_off == VLAN_ETH_LEN);
	if (cls == PKT_ARP) {
		assert_memory_equal(&info->key, &zero_key, sizeof(zero_key));
		return;
	}
	assert_in_range(cls, PKT_L4, PKT_OTHER);

	l3_end = (uint32_t)info->l3_off + info->l3_len;
	assert_true(l3_end <= m->data_len);
	assert_true(info->l4_off > info->l3_off && info->l4_off <= l3_end);
	if (info->key.family == AF_INET) {
		const struct rte_ipv4_hdr *ip = (const void *)(p + info->l3_off);

		assert_int_equal(ip->version_ihl >> 4, 4);
		assert_int_equal(info->l4_off,
				 info->l3_off + rte_ipv4_hdr_len(ip));
		assert_true(craft_ipv4_csum_ok(ip));
		assert_memory_equal(info->key.src.v6 + 4, zero, 12);
		assert_memory_equal(info->key.dst.v6 + 4, zero, 12);
	} else {
		assert_int_equal(info->key.family, AF_INET6);
		assert_int_equal(p[info->l3_off] >> 4, 6);
	}

	if (cls != PKT_L4) {
		assert_int_equal(info->key.sport, 0);
		assert_int_equal(info->key.dport, 0);
		assert_int_equal(info->tcp_flags, 0);
	}
	switch (cls) {
	case PKT_L4:
		hdr_len = info->key.proto == IPPROTO_TCP ? TCP_LEN : UDP_LEN;
		assert_true(info->key.proto == IPPROTO_TCP ||
			    info->key.proto == IPPROTO_UDP);
		assert_true(info->l4_off + hdr_len <= l3_end);
		assert_memory_equal(&info->key.sport, p + info->l4_off, 4);
		if (info->key.proto == IPPROTO_TCP) {
			const struct rte_tcp_hdr *tcp =
				(const void *)(p + info->l4_off);

			assert_int_equal(info->tcp_flags, tcp->tcp_flags);
			assert_in_range(tcp->data_off >> 4, 5,
					(l3_end - info->l4_off) / 4);
		} else {
			const struct rte_udp_hdr *udp =
				(const void *)(p + info->l4_off);

			assert_int_equal(info->tcp_flags, 0);
			assert_in_range(rte_be_to_cpu_16(udp->dgram_len),
					UDP_LEN, l3_end - info->l4_off);
		}
		break;
	case PKT_ICMP:
		assert_true(info->key.proto == IPPROTO_ICMP ||
			    info->key.proto == IPPROTO_ICMPV6);
		assert_true(info->l4_off + ICMP_LEN <= (int)l3_end);
		break;
	case PKT_FRAGMENT:
		if (info->key.family == AF_INET6)   /* fragment header's next */
			assert_int_equal(info->key.proto, p[info->l4_off - 8]);
		break;
	default:
		/* ICMP of the other family is an unknown protocol */
		assert_true(info->key.proto != IPPROTO_TCP &&
			    info->key.proto != IPPROTO_UDP);
		assert_true(info->key.proto !=
			    (info->key.family == AF_INET ? IPPROTO_ICMP
							 : IPPROTO_ICMPV6));
		break;
	}
}

/* Puts the whole of base into work, a pool mbuf used as scratch. */
static void load(struct rte_mbuf *work, const struct rte_mbuf *base)
{
	rte_memcpy(rte_pktmbuf_mtod(work, void *),
		   rte_pktmbuf_mtod(base, const void *), base->data_len);
	work->data_len = base->data_len;
	work->pkt_len = base->data_len;
}

/* Parses the first len bytes of work three times: from a tight copy, where
 * ASan reports a read past the end, and in place with every byte after
 * the frame 0x00, then 0xff, where such a read shows, without ASan, as
 * results that differ. Checks the result and returns it. */
static enum pkt_class parse_checked(struct rte_mbuf *work, uint16_t len,
				    struct pkt_info *info)
{
	uint8_t *data = rte_pktmbuf_mtod(work, uint8_t *);
	struct rte_mbuf *tight;
	enum pkt_class cls;
	int fill;

	work->data_len = len;
	work->pkt_len = len;
	tight = craft_tight_copy(work, len);
	memset(info, 0xa5, sizeof(*info));
	cls = pkt_parse(tight, info);
	if (cls < PKT_DROP || cls > PKT_OTHER)
		fail_msg("class %d", cls);
	check_result(tight, cls, info);
	rte_pktmbuf_free(tight);

	for (fill = 0x00; fill <= 0xff; fill += 0xff) {
		struct pkt_info again;

		memset(data + len, fill, rte_pktmbuf_tailroom(work));
		memset(&again, 0xa5, sizeof(again));
		assert_int_equal(pkt_parse(work, &again), cls);
		assert_memory_equal(&again, info, sizeof(again));
	}
	return cls;
}

/* Rewrites the IP length field of the frame in work to end at len, and
 * the IPv4 header checksum to match, where the header is there to take
 * it: the cut then reaches the checks after the IP header. */
static void fit_ip_len(struct rte_mbuf *work, const struct craft *c,
		       uint16_t len)
{
	uint8_t *ip = rte_pktmbuf_mtod_offset(work, uint8_t *, c->l3_off);

	if (c->family == AF_INET && len >= c->l3_off + IP4_LEN) {
		struct rte_ipv4_hdr *ip4h = (struct rte_ipv4_hdr *)ip;

		ip4h->total_length = rte_cpu_to_be_16(len - c->l3_off);
		ip4h->hdr_checksum = 0;
		ip4h->hdr_checksum = rte_ipv4_cksum(ip4h);
	} else if (c->family == AF_INET6 && len >= c->l3_off + IP6_LEN) {
		((struct rte_ipv6_hdr *)ip)->payload_len =
			rte_cpu_to_be_16(len - c->l3_off - IP6_LEN);
	}
}

/* Every cut of every base frame: cut anywhere, the frame disagrees with
 * its IP length and is dropped; only the whole frame passes. Cut with the
 * IP length made to agree, each later check meets a short header. */
static void test_sweep_truncation(void **state)
{
	struct rte_mbuf *work = rte_pktmbuf_alloc(test_env_pool());
	size_t i;

	(void)state;
	assert_non_null(work);
	for (i = 0; i < SWEEP_BASES; i++) {
		struct craft c;
		struct rte_mbuf *base = sweep_base(i, &c);
		uint16_t len;

		for (len = 0; len <= base->data_len; len++) {
			struct pkt_info info;
			enum pkt_class cls;

			load(work, base);
			cls = parse_checked(work, len, &info);
			if ((cls == PKT_DROP) != (len < base->data_len)) {
				craft_hexdump(work);
				fail_msg("base %zu cut to %u: class %d", i, len,
					 cls);
			}

			load(work, base);
			fit_ip_len(work, &c, len);
			parse_checked(work, len, &info);
		}
		rte_pktmbuf_free(base);
	}
	rte_pktmbuf_free(work);
}

#define MUTATIONS_PER_BASE 20000
#define MUTATION_SEED 0x5eedf00dcafe1234ull

/* xorshift64*: the same sequence on every machine and libc, so that a
 * failure replays. */
static uint32_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545f4914f6cdd1dull) >> 32);
}

/* Changes one to four bytes of the frame: to a random value, by one bit,
 * or to a value at the edge of a field's range. */
static void mutate(uint8_t *data, uint16_t len, uint64_t *seed)
{
	static const uint8_t edge[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };
	uint32_t n = 1 + rnd(seed) % 4;

	while (n--) {
		uint32_t pos = rnd(seed) % len;

		switch (rnd(seed) % 3) {
		case 0:
			data[pos] = (uint8_t)rnd(seed);
			break;
		case 1:
			data[pos] ^= (uint8_t)(1u << (rnd(seed) % 8));
			break;
		default:
			data[pos] = edge[rnd(seed) % RTE_DIM(edge)];
			break;
		}
	}
}

/* Random bytes, bits and lengths changed in every base frame. Half the
 * time the IPv4 header checksum is made good again after the damage, so
 * that mutations get past it to the checks behind. */
static void test_sweep_random_mutations(void **state)
{
	struct rte_mbuf *work = rte_pktmbuf_alloc(test_env_pool());
	uint64_t seed = MUTATION_SEED;
	size_t i;

	(void)state;
	assert_non_null(work);
	for (i = 0; i < SWEEP_BASES; i++) {
		unsigned int counts[PKT_OTHER + 1] = { 0 };
		struct craft c;
		struct rte_mbuf *base = sweep_base(i, &c);
		uint8_t *data = rte_pktmbuf_mtod(work, uint8_t *);
		struct rte_ipv4_hdr *ip4h =
			(struct rte_ipv4_hdr *)(data + c.l3_off);
		struct pkt_info info;
		enum pkt_class base_cls;
		int iter;

		load(work, base);
		base_cls = parse_checked(work, base->data_len, &info);
		for (iter = 0; iter < MUTATIONS_PER_BASE; iter++) {
			uint16_t len = base->data_len;

			load(work, base);
			mutate(data, len, &seed);
			if (rnd(&seed) % 4 == 0)
				len = (uint16_t)(rnd(&seed) % (len + 1u));
			if (c.family == AF_INET && rnd(&seed) % 2 &&
			    len >= c.l3_off + IP4_LEN) {
				ip4h->hdr_checksum = 0;
				ip4h->hdr_checksum = rte_ipv4_cksum(ip4h);
			}
			counts[parse_checked(work, len, &info)]++;
		}
		print_message("base %zu: drop %u, L4 %u, fragment %u, ICMP %u, "
			      "ARP %u, other %u\n", i, counts[PKT_DROP],
			      counts[PKT_L4], counts[PKT_FRAGMENT],
			      counts[PKT_ICMP], counts[PKT_ARP],
			      counts[PKT_OTHER]);
		/* A sweep that always breaks the frame, or never does, would
		 * test little; both must happen often. */
		assert_true(counts[PKT_DROP] >= MUTATIONS_PER_BASE / 10);
		assert_true(counts[base_cls] >= MUTATIONS_PER_BASE / 10);
		rte_pktmbuf_free(base);
	}
	rte_pktmbuf_free(work);
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
		/* pkt_parse(): Ethernet and VLAN */
		cmocka_unit_test(test_empty_frame),
		cmocka_unit_test(test_short_ethernet_header),
		cmocka_unit_test(test_vlan_header_cut),
		cmocka_unit_test(test_unknown_ethertypes),
		cmocka_unit_test(test_double_vlan_tag),
		/* pkt_parse(): IPv4 */
		cmocka_unit_test(test_ipv4_header_cut),
		cmocka_unit_test(test_ipv4_ihl_below_5),
		cmocka_unit_test(test_ipv4_ihl_beyond_frame),
		cmocka_unit_test(test_ipv4_ihl_covers_l4_header),
		cmocka_unit_test(test_ipv4_total_length_below_ihl),
		cmocka_unit_test(test_ip_length_beyond_frame),
		cmocka_unit_test(test_ipv4_bad_header_checksum),
		cmocka_unit_test(test_ipv4_nic_says_bad_checksum),
		cmocka_unit_test(test_ip_version_mismatch),
		/* pkt_parse(): IPv6 */
		cmocka_unit_test(test_ipv6_header_cut),
		cmocka_unit_test(test_ipv6_ext_chain_too_long),
		cmocka_unit_test(test_ipv6_ext_length_past_packet),
		cmocka_unit_test(test_ipv6_ext_header_cut),
		/* pkt_parse(): TCP, UDP, ICMP */
		cmocka_unit_test(test_udp_bad_length),
		cmocka_unit_test(test_tcp_data_offset_below_5),
		cmocka_unit_test(test_tcp_data_offset_beyond_segment),
		cmocka_unit_test(test_l4_header_cut),
		/* pkt_parse(): segments */
		cmocka_unit_test(test_header_past_first_segment),
		/* pkt_parse(): robustness sweep */
		cmocka_unit_test(test_sweep_truncation),
		cmocka_unit_test(test_sweep_random_mutations),
	};

	test_env_init();
	return cmocka_run_group_tests(tests, NULL, pool_full);
}
