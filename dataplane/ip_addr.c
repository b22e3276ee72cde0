#include "ip_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

int ip_addr_parse(const char *text, union ip_addr *out, uint8_t *family)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, &out->v4) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->v6) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

int ip_prefix_parse(const char *text, struct ip_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	long len;

	if (strlen(text) >= sizeof(buf))
		return -1;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (ip_addr_parse(buf, &out->addr, &out->family) != 0)
		return -1;
	len = out->family == AF_INET ? 32 : 128;
	if (slash) {
		long max = len;

		len = strtol(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || len < 0 || len > max)
			return -1;
	}
	out->len = (uint8_t)len;
	return 0;
}

bool ip_prefix_contains(const struct ip_prefix *p, const union ip_addr *a,
			uint8_t family)
{
	unsigned int bits = p->len, i;

	if (family != p->family)
		return false;
	for (i = 0; bits > 0; i++, bits = bits > 8 ? bits - 8 : 0) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((p->addr.v6[i] & mask) != (a->v6[i] & mask))
			return false;
	}
	return true;
}

/* inet_ntop writes each octet with sprintf: a million backends written
 * into a digest or a store took a fifth of a restore's time that way. */
/* Writes the four octets straight into out: inet_ntop's generality costs
 * more than the digest that many addresses go into. */
static size_t ipv4_text(const uint8_t o[4], char *out)
{
	char *p = out;

	for (int i = 0; i < 4; i++) {
		unsigned int v = o[i];

		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
	return (size_t)(p - out) - 1;
}

size_t ip_addr_text(const union ip_addr *a, uint8_t family,
		    char out[INET6_ADDRSTRLEN])
{
	if (family == AF_INET)
		return ipv4_text((const uint8_t *)&a->v4, out);
	if (!inet_ntop(family, a->v6, out, INET6_ADDRSTRLEN))
		snprintf(out, INET6_ADDRSTRLEN, "?");
	return strlen(out);
}

const char *ip_addr_str(const union ip_addr *a, uint8_t family, char *buf,
			size_t len)
{
	char text[INET6_ADDRSTRLEN];
	size_t n;

	if (len >= INET6_ADDRSTRLEN) {
		ip_addr_text(a, family, buf);
		return buf;
	}
	n = ip_addr_text(a, family, text);
	if (n + 1 > len)
		snprintf(buf, len, "?");
	else
		memcpy(buf, text, n + 1);
	return buf;
}
