/* Linear probing with backward-shift deletion: no tombstones, so lookups
 * stay short however many services come and go. */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#define HMAP_MIN_SLOTS 64u

/* FNV-1a: keys are short names and 20-byte VIP keys, chosen by operators,
 * not by the network. */
static uint64_t hash_bytes(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

int hmap_init(struct hmap *h, hmap_key_fn key)
{
	h->slots = calloc(HMAP_MIN_SLOTS, sizeof(*h->slots));
	if (!h->slots)
		return -1;
	h->mask = HMAP_MIN_SLOTS - 1;
	h->n = 0;
	h->key = key;
	return 0;
}

void hmap_free(struct hmap *h)
{
	free(h->slots);
	h->slots = NULL;
}

static size_t find_slot(const struct hmap *h, const void *key, size_t len,
			uint64_t hash)
{
	size_t i = hash & h->mask;

	for (;; i = (i + 1) & h->mask) {
		const struct hmap_slot *s = &h->slots[i];
		const void *k;
		size_t klen;

		if (!s->item)
			return i;
		if (s->hash != hash)
			continue;
		k = h->key(s->item, &klen);
		if (klen == len && memcmp(k, key, len) == 0)
			return i;
	}
}

void *hmap_get(const struct hmap *h, const void *key, size_t len)
{
	return h->slots[find_slot(h, key, len, hash_bytes(key, len))].item;
}

static void insert(struct hmap_slot *slots, size_t mask, uint64_t hash,
		   void *item)
{
	size_t i = hash & mask;

	while (slots[i].item)
		i = (i + 1) & mask;
	slots[i] = (struct hmap_slot){ .hash = hash, .item = item };
}

static int grow(struct hmap *h)
{
	size_t n = (h->mask + 1) * 2;
	struct hmap_slot *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i <= h->mask; i++)
		if (h->slots[i].item)
			insert(slots, n - 1, h->slots[i].hash,
			       h->slots[i].item);
	free(h->slots);
	h->slots = slots;
	h->mask = n - 1;
	return 0;
}

int hmap_put(struct hmap *h, void *item)
{
	const void *key;
	size_t len;

	/* At most 3/4 full keeps probe runs short. */
	if ((h->n + 1) * 4 > (h->mask + 1) * 3 && grow(h) < 0)
		return -1;
	key = h->key(item, &len);
	insert(h->slots, h->mask, hash_bytes(key, len), item);
	h->n++;
	return 0;
}

void hmap_del(struct hmap *h, const void *item)
{
	const void *key;
	size_t len, i, j;

	key = h->key(item, &len);
	i = hash_bytes(key, len) & h->mask;
	while (h->slots[i].item && h->slots[i].item != item)
		i = (i + 1) & h->mask;
	if (!h->slots[i].item)
		return;
	/* Pull later members of the probe run back over the hole, unless
	 * their home slot lies cyclically after the hole. */
	for (j = (i + 1) & h->mask; h->slots[j].item; j = (j + 1) & h->mask) {
		size_t home = h->slots[j].hash & h->mask;

		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i].item = NULL;
	h->n--;
}
