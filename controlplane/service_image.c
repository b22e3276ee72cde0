#include "service_image.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LAYOUT 2
#define HEADER SERVICE_IMAGE_MIN

/* A backend's bytes: its address, then u16 weight and u8 state. */
static size_t addr_len(unsigned int layout, uint8_t family)
{
	return layout == 1 || family != AF_INET ? 16 : 4;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

size_t service_image_size(const struct service *s)
{
	return HEADER + (size_t)s->n_backends * (addr_len(LAYOUT, s->family) + 3);
}

void service_image_write(const struct service *s, unsigned char *out)
{
	memset(out, 0, HEADER);
	out[0] = LAYOUT;
	memcpy(out + 1, s->name, strnlen(s->name, SERVICE_NAME_LEN - 1));
	memcpy(out + 33, s->vip.v6, 16);
	out[49] = s->family;
	out[50] = s->proto;
	put16(out + 51, s->port);
	out[53] = s->mode;
	put32(out + 54, s->table_size);
	put16(out + 58, s->gue_port);
	put32(out + 60, s->n_backends);
	for (uint32_t i = 0; i < s->n_backends; i++) {
		size_t a = addr_len(LAYOUT, s->family);
		unsigned char *b = out + HEADER + (size_t)i * (a + 3);

		memcpy(b, s->backends[i].addr.v6, a);
		put16(b + a, s->backends[i].weight);
		b[a + 2] = s->backends[i].state;
	}
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int service_image_read(const void *image, size_t len, struct service *s)
{
	const unsigned char *in = image;
	size_t a;
	uint32_t n;

	if (len < HEADER || (in[0] != 1 && in[0] != LAYOUT) ||
	    in[1 + SERVICE_NAME_LEN - 1])
		return -1;
	n = get32(in + 60);
	a = addr_len(in[0], in[49]);
	if (len != HEADER + (size_t)n * (a + 3) || !in[1])
		return -1;
	/* what the writer leaves zero is zero: the name past its end, an
	 * IPv4 VIP past its four bytes. The digest does not see those bytes,
	 * so a reader that let them through would take two images that
	 * differ for the same service. */
	if (!all_zero(in + 1 + strnlen((const char *)in + 1, SERVICE_NAME_LEN),
		      SERVICE_NAME_LEN - strnlen((const char *)in + 1,
						 SERVICE_NAME_LEN)) ||
	    (in[49] == AF_INET && !all_zero(in + 33 + 4, 12)))
		return -1;
	memset(s, 0, sizeof(*s));
	memcpy(s->name, in + 1, SERVICE_NAME_LEN);
	memcpy(s->vip.v6, in + 33, 16);
	s->family = in[49];
	s->proto = in[50];
	s->port = get16(in + 51);
	s->mode = in[53];
	s->table_size = get32(in + 54);
	s->gue_port = get16(in + 58);
	if ((s->family != AF_INET && s->family != AF_INET6) ||
	    (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP) ||
	    s->mode >= MODE_COUNT)
		return -1;
	s->n_backends = s->cap = n;
	s->backends = n ? malloc(n * sizeof(*s->backends)) : NULL;
	if (n && !s->backends)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *b = in + HEADER + (size_t)i * (a + 3);

		memset(&s->backends[i], 0, sizeof(s->backends[i]));
		if (s->family == AF_INET && a == 16 && !all_zero(b + 4, 12)) {
			free(s->backends);
			s->backends = NULL;
			return -1;
		}
		memcpy(s->backends[i].addr.v6, b, a);
		s->backends[i].weight = get16(b + a);
		s->backends[i].state = b[a + 2];
		if (s->backends[i].state >= BACKEND_STATE_COUNT) {
			free(s->backends);
			s->backends = NULL;
			return -1;
		}
	}
	return 0;
}
