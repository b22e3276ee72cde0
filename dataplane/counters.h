/* What each worker counts. Every worker writes only its own block, so the
 * hot path needs no atomics; readers sum the blocks and tolerate a count
 * that is one burst stale. */
#ifndef FULCRUM_COUNTERS_H
#define FULCRUM_COUNTERS_H

#include <stdint.h>

#include <rte_common.h>

#define DROP_REASONS(X)                                                    \
	X(TRUNCATED, "frame too short for its headers")                    \
	X(UNKNOWN_ETHERTYPE, "neither ARP, IPv4 nor IPv6")                 \
	X(BAD_IP_VERSION, "IP version field does not match ethertype")     \
	X(BAD_IHL, "IPv4 header length below 20 bytes")                    \
	X(BAD_IP_LEN, "IP length field disagrees with the frame")          \
	X(BAD_IP_CSUM, "IPv4 header checksum wrong")                       \
	X(IPV6_EXT_CHAIN, "IPv6 extension header chain too long or cut")   \
	X(BAD_TCP_DOFF, "TCP data offset outside the segment")             \
	X(BAD_UDP_LEN, "UDP length zero, short or beyond the datagram")    \
	X(NO_SERVICE, "VIP address but no service on that port")           \
	X(NO_BACKEND, "service has no usable backend")                     \
	X(NO_NEIGHBOUR, "backend next hop not resolved yet")               \
	X(ENCAP_TOO_BIG, "encapsulated packet exceeds the port MTU")       \
	X(NO_HEADROOM, "mbuf headroom too small to encapsulate")           \
	X(ICMP_UNHANDLED, "ICMP to a VIP that is neither echo nor PMTU")   \
	X(ICMP_BAD_QUOTE, "ICMP error quotes no usable header")            \
	X(ARP_MALFORMED, "ARP that is not Ethernet/IPv4")                  \
	X(NDP_MALFORMED, "neighbour discovery message malformed")          \
	X(NO_EXCEPTION_PATH, "host traffic but no exception interface")    \
	X(EXCEPTION_FULL, "exception ring to the kernel full")             \
	X(TX_FULL, "transmit queue full")

enum drop_reason {
#define X(name, text) DROP_##name,
	DROP_REASONS(X)
#undef X
	DROP_REASON_MAX
};

/* What a stage returns when the packet goes on rather than being dropped. */
#define FWD_OK DROP_REASON_MAX

extern const char *const drop_reason_names[DROP_REASON_MAX];
extern const char *const drop_reason_texts[DROP_REASON_MAX];

struct pkt_counter {
	uint64_t packets;
	uint64_t bytes;
};

struct worker_counters {
	uint64_t rx;
	uint64_t tx;
	uint64_t to_kernel;
	uint64_t from_kernel;
	uint64_t arp_replies;
	uint64_t icmp_echo_replies;
	uint64_t icmp_pmtu_forwarded;
	uint64_t fragments_forwarded;
	uint64_t conn_new;
	uint64_t conn_hit;
	uint64_t conn_expired;
	uint64_t conn_evicted;      /* live entries pushed out by a full table */
	uint64_t conn_rebalanced;   /* entry's backend gone: picked anew */
	uint64_t neigh_learned;
	uint64_t drops[DROP_REASON_MAX];
	struct pkt_counter *service;   /* [max_services] */
	struct pkt_counter *backend;   /* [max_backends] */
} __rte_cache_aligned;

#endif
