/* An open-addressing hash index over items that carry their own key, so
 * that one item can sit in several indexes without copies of its key. */
#ifndef FULCRUM_HMAP_H
#define FULCRUM_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef const void *(*hmap_key_fn)(const void *item, size_t *len);

struct hmap_slot {
	uint64_t hash;
	void *item;        /* NULL = free */
};

struct hmap {
	struct hmap_slot *slots;
	size_t mask;       /* slot count - 1; the count is a power of two */
	size_t n;
	hmap_key_fn key;
};

int hmap_init(struct hmap *h, hmap_key_fn key);
void hmap_free(struct hmap *h);

void *hmap_get(const struct hmap *h, const void *key, size_t len);

/* The item's key must not be in h yet. Returns 0, or -1 when out of
 * memory. */
int hmap_put(struct hmap *h, void *item);

/* Removes this very item (not merely one with an equal key). */
void hmap_del(struct hmap *h, const void *item);

#endif
