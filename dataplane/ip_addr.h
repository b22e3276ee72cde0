/* An IPv4 or IPv6 address in one fixed-size shape, so that keys built from
 * it hash and compare as plain bytes whatever the family. */
#ifndef FULCRUM_IP_ADDR_H
#define FULCRUM_IP_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <rte_byteorder.h>

union ip_addr {
	rte_be32_t v4;     /* IPv4 in the first four bytes, the rest zero */
	uint8_t v6[16];
	uint64_t w[2];
};

struct ip_prefix {
	union ip_addr addr;
	uint8_t family;    /* AF_INET or AF_INET6 */
	uint8_t len;
};

static inline bool ip_addr_eq(const union ip_addr *a, const union ip_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1];
}

static inline bool ip_addr_is_zero(const union ip_addr *a)
{
	return (a->w[0] | a->w[1]) == 0;
}

/* Parses "10.0.0.1" or "fd00::1"; sets *family. Returns 0 or -1. */
int ip_addr_parse(const char *text, union ip_addr *out, uint8_t *family);

/* Parses "10.0.0.1/24" (a bare address is a host prefix). Returns 0 or -1. */
int ip_prefix_parse(const char *text, struct ip_prefix *out);

bool ip_prefix_contains(const struct ip_prefix *p, const union ip_addr *a,
			uint8_t family);

/* Writes the text form into buf (at least INET6_ADDRSTRLEN bytes). */
const char *ip_addr_str(const union ip_addr *a, uint8_t family, char *buf,
			size_t len);
/* The same, NUL-terminated, returning its length. */
size_t ip_addr_text(const union ip_addr *a, uint8_t family,
		    char out[INET6_ADDRSTRLEN]);

#endif
