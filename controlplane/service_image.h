/* A service as the store keeps it: its current row (store_rows.h) and,
 * in its history of before-images (store.c, service_images), what it was
 * just before a change touched it, in a fixed binary layout rather than
 * JSON, so that a restore
 * reads back ten thousand services of a hundred backends in milliseconds
 * instead of parsing a million JSON objects. The layout is the store's
 * file format: little-endian, versioned by its first byte, never changed
 * in place.
 *
 *   0   u8   layout (2; 1 is still read)
 *   1   32   name, NUL-padded
 *   33  16   VIP (union ip_addr bytes)
 *   49  u8   family   50 u8 proto   51 u16 port   53 u8 mode
 *   54  u32  table_size   58 u16 gue_port   60 u32 backend count
 *   64  per backend: its address bytes (layout 2: 4 for IPv4, 16 for
 *       IPv6; layout 1: 16 for both), u16 weight, u8 state
 *
 * Layout 2 keeps an IPv4 backend in 7 bytes instead of 19: a restore of
 * ten thousand services writes their images, 20 MB in layout 1.
 */
#ifndef FULCRUM_SERVICE_IMAGE_H
#define FULCRUM_SERVICE_IMAGE_H

#include <stddef.h>

#include "model.h"

/* The size of the smallest image, a service with no backends. */
#define SERVICE_IMAGE_MIN 64

size_t service_image_size(const struct service *s);
/* Writes s into out, service_image_size(s) bytes. */
void service_image_write(const struct service *s, unsigned char *out);
/* Reads an image into *s, with s->backends newly allocated (free it);
 * 0, or -1 when the bytes are not an image of a valid service (a damaged
 * or foreign row) or no memory. */
int service_image_read(const void *image, size_t len, struct service *s);

#endif
