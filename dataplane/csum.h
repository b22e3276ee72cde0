/* Checksum helpers for headers the balancer writes or rewrites. */
#ifndef FULCRUM_CSUM_H
#define FULCRUM_CSUM_H

#include <stdint.h>

#include <rte_ip.h>

/* RFC 1624 incremental update of a 16-bit one's complement checksum
 * when one 16-bit field changes from old to new (all in network order). */
static inline uint16_t csum_replace2(uint16_t csum, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint16_t)~csum + (uint16_t)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline void ipv4_set_csum(struct rte_ipv4_hdr *ip)
{
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

#endif
