#include "service_batch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "service_image.h"

#define LENGTH_BYTES 4

static void put_length(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < LENGTH_BYTES; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t length_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int service_batch_add(struct service_batch *b, const struct service *s)
{
	size_t size = service_image_size(s);
	size_t need = b->len + LENGTH_BYTES + size;

	if (size > UINT32_MAX)
		return -1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 1u << 16;
		unsigned char *more;

		while (cap < need)
			cap *= 2;
		more = realloc(b->buf, cap);
		if (!more)
			return -1;
		b->buf = more;
		b->cap = cap;
	}
	put_length(b->buf + b->len, (uint32_t)size);
	service_image_write(s, b->buf + b->len + LENGTH_BYTES);
	b->len = need;
	b->count++;
	return 0;
}

void service_batch_free(struct service_batch *b)
{
	free(b->buf);
	*b = (struct service_batch){ .buf = NULL };
}

int service_batch_read(const void *buf, size_t len, size_t *n_services,
		       store_service_fn fn, void *arg, char *err,
		       size_t err_len)
{
	const unsigned char *p = buf;
	struct store_backend *b = NULL;
	size_t n = 0, at, room = 0;
	int rc = 0;

	/* the framing whole before any service: a batch cut short is
	 * refused before fn has seen a part of it, and one that claims more
	 * services than its bytes can hold before room is made for them */
	for (at = 0; at < len; n++) {
		if (len - at < LENGTH_BYTES ||
		    length_at(p + at) > len - at - LENGTH_BYTES ||
		    length_at(p + at) < SERVICE_IMAGE_MIN) {
			snprintf(err, err_len, "the services sent are cut short, "
				 "or not services, at byte %zu of %zu", at, len);
			return -1;
		}
		at += LENGTH_BYTES + length_at(p + at);
	}
	*n_services = n;
	at = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint32_t size = length_at(p + at);
		struct store_service one;
		struct service s;

		if (service_image_read(p + at + LENGTH_BYTES, size, &s) < 0) {
			snprintf(err, err_len, "service %zu of those sent is not "
				 "a valid service (or no memory to read it)", i);
			rc = -1;
			break;
		}
		if (s.n_backends >= room) {
			struct store_backend *more;

			room = s.n_backends + 1;
			more = realloc(b, room * sizeof(*b));
			if (!more) {
				free(s.backends);
				snprintf(err, err_len, "out of memory");
				rc = -1;
				break;
			}
			b = more;
		}
		store_service_of(&s, &one, b);
		rc = fn(&one, i, arg);
		free(s.backends);
		at += LENGTH_BYTES + size;
	}
	free(b);
	return rc;
}
