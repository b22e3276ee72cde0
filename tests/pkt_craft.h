/* Writes test frames byte by byte into mbufs from test_env_pool(), one
 * header at a time, the way they arrive on the wire:
 *
 *	struct craft c;
 *
 *	craft_begin(&c);
 *	craft_eth(&c, NULL, NULL);
 *	craft_vlan(&c, 100);                          (optional)
 *	ip = craft_ipv4(&c, "10.0.0.1", "10.0.0.2");
 *	ip->time_to_live = 1;                         (tweak before the end)
 *	craft_tcp(&c, 40000, 80, RTE_TCP_SYN_FLAG);
 *	craft_payload(&c, "hello", 5);
 *	m = craft_end(&c);
 *
 * Each header names the previous one's next protocol (ethertype, IP
 * protocol, extension next header) as it is added. craft_end() then fills
 * every length (IPv4 total length, IPv6 payload length, UDP length) and
 * every checksum, so a header changed through its returned pointer before
 * craft_end() still leaves a well-formed frame. To make a frame malformed,
 * change bytes after craft_end(), through the offsets in struct craft, and
 * call craft_fix_csums() when the lie alone should be wrong: for instance
 * an IPv4 total length past the frame behind a correct header checksum.
 *
 * Every function fails the running cmocka test on misuse (a header in the
 * wrong place, a bad address text, a full mbuf). Ports, TCI, ids and MTUs
 * are given in host order; addresses as text. */
#ifndef FULCRUM_PKT_CRAFT_H
#define FULCRUM_PKT_CRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

struct craft {
	struct rte_mbuf *m;
	uint16_t l3_off;      /* IP or ARP header; 0 until one is added */
	uint16_t l4_off;      /* TCP, UDP or ICMP header; 0 until added */
	uint16_t end;         /* frame length at craft_end() */
	uint8_t family;       /* AF_INET, AF_INET6, or 0 before an IP header */
	uint8_t l4_proto;     /* IPPROTO_* of the header at l4_off */
	uint16_t next_off;    /* the field that names the next header */
	uint8_t next_len;     /* its size: 2 for an ethertype, 1 for IP */
};

/* The MACs craft_eth() uses when given NULL. */
extern const struct rte_ether_addr craft_mac_src;
extern const struct rte_ether_addr craft_mac_dst;

/* Takes a fresh, empty mbuf from the test pool. */
void craft_begin(struct craft *c);

struct rte_ether_hdr *craft_eth(struct craft *c,
				const struct rte_ether_addr *src,
				const struct rte_ether_addr *dst);
/* An 802.1Q tag; tci carries PCP, DEI and the VLAN id. */
struct rte_vlan_hdr *craft_vlan(struct craft *c, uint16_t tci);

/* TTL 64, id 0, no flags (set DF or a fragment offset through the
 * returned header), protocol filled by the next header. */
struct rte_ipv4_hdr *craft_ipv4(struct craft *c, const char *src,
				const char *dst);
/* Options right after craft_ipv4(), raising the IHL; len a multiple of 4
 * up to 40. opts NULL writes that many NOP options. */
void craft_ipv4_options(struct craft *c, const void *opts, size_t len);

/* Hop limit 64, traffic class and flow label 0. */
struct rte_ipv6_hdr *craft_ipv6(struct craft *c, const char *src,
				const char *dst);
/* An extension header of len bytes (a multiple of 8; 8 for a fragment
 * header) whose body is zero: Pad1 options for hop-by-hop and destination
 * options, type 0 with no segments left for routing, offset 0 and M clear
 * for a fragment header, set with RTE_IPV6_SET_FRAG_DATA() on
 * ((struct rte_ipv6_fragment_ext *)ext)->frag_data. */
uint8_t *craft_ipv6_ext(struct craft *c, uint8_t type, size_t len);

/* Sequence 1, no ack, window 65535, data offset 5. */
struct rte_tcp_hdr *craft_tcp(struct craft *c, uint16_t sport, uint16_t dport,
			      uint8_t flags);
/* Options right after craft_tcp(), raising the data offset; len a
 * multiple of 4 up to 40. opts NULL writes that many NOP options. */
void craft_tcp_options(struct craft *c, const void *opts, size_t len);

struct rte_udp_hdr *craft_udp(struct craft *c, uint16_t sport, uint16_t dport);

/* Echo request or reply: ICMP over IPv4, ICMPv6 over IPv6. */
struct rte_icmp_hdr *craft_icmp_echo(struct craft *c, bool request,
				     uint16_t id, uint16_t seq);

/* An ICMP (over IPv4) or ICMPv6 (over IPv6) error quoting the IP packet at
 * l3_off in orig: for IPv4 its header and the first 8 bytes after it, as
 * routers send; for IPv6 as much as keeps the error within 1280 bytes.
 * info is the second header word: the next-hop MTU for fragmentation
 * needed (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED from <netinet/ip_icmp.h>),
 * the MTU for ICMP6_PACKET_TOO_BIG, else 0. Returns the ICMP header; the
 * quote starts 8 bytes after it. */
uint8_t *craft_icmp_error(struct craft *c, uint8_t type, uint8_t code,
			  uint32_t info, const struct rte_mbuf *orig,
			  uint16_t orig_l3_off);

/* ARP for Ethernet and IPv4. tha NULL is all zero, as in a request. */
struct rte_arp_hdr *craft_arp(struct craft *c, uint16_t op,
			      const struct rte_ether_addr *sha, const char *sip,
			      const struct rte_ether_addr *tha, const char *tip);

/* Neighbour solicitation and advertisement over the IPv6 header before
 * them, whose hop limit they set to 255 as RFC 4861 requires. The target
 * address starts 8 bytes into the returned ICMPv6 header and the link-layer
 * address option, present when lladdr is not NULL, 24 bytes in. na_flags
 * are ND_NA_FLAG_* from <netinet/icmp6.h>, already in network order. */
uint8_t *craft_ndp_ns(struct craft *c, const char *target,
		      const struct rte_ether_addr *lladdr);
uint8_t *craft_ndp_na(struct craft *c, const char *target, uint32_t na_flags,
		      const struct rte_ether_addr *lladdr);

/* len bytes of data, or of a counting pattern when data is NULL. */
uint8_t *craft_payload(struct craft *c, const void *data, size_t len);

/* Fills lengths and checksums; returns the frame, owned by the caller. */
struct rte_mbuf *craft_end(struct craft *c);

/* Checksums again over the bytes as they are now, lengths untouched: the
 * L4 one over the bytes crafted, whatever the length fields say, less any
 * cut since; a header cut short keeps its stale checksum. */
void craft_fix_csums(struct craft *c);

/* Moves the bytes of the one-segment frame m from offset at onwards into
 * a second segment from m's pool, as a NIC that scatters a frame over
 * buffers does. */
void craft_split(struct rte_mbuf *m, uint16_t at);

/* Copies the first len bytes of m into a new mbuf (from m's pool) whose
 * buffer is a heap block of exactly len bytes, so that data_off + data_len
 * == buf_len and AddressSanitizer reports any read past the frame. A pool
 * mbuf cannot show that: the bytes after its data are the rest of its
 * buffer and then the next mbuf, all memory ASan takes as valid. The copy
 * keeps m's offload flags, packet type and VLAN tag, has no headroom, and
 * is released by rte_pktmbuf_free() as usual. */
struct rte_mbuf *craft_tight_copy(const struct rte_mbuf *m, uint16_t len);

/* For assertions on frames the code under test writes. */
bool craft_ipv4_csum_ok(const void *ip);
/* The TCP, UDP, ICMP or ICMPv6 checksum of the IP packet at l3_off,
 * found through the IPv4 options or IPv6 extension headers, over the
 * length the IP header states. False too for a fragment or a packet that
 * does not fit the mbuf. A zero UDP checksum over IPv4 means none: true. */
bool craft_l4_csum_ok(const struct rte_mbuf *m, uint16_t l3_off);

/* Prints the mbuf and its bytes to stderr. */
void craft_hexdump(const struct rte_mbuf *m);

/* assert_true() for packet tests: shows the frame when cond fails. Needs
 * <cmocka.h>, as every test has. */
#define assert_frame(cond, m)                                              \
	do {                                                               \
		if (!(cond)) {                                             \
			craft_hexdump(m);                                  \
			fail_msg("%s", #cond);                             \
		}                                                          \
	} while (0)

#endif
