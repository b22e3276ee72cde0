/* Weighted Maglev table build. Each backend walks its own permutation of
 * the table, offset + j * skip (mod size), and backends take turns claiming
 * the next free entry of their walk until the table is full. */
#include "maglev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Tinier tables cannot spread even a few backends: such a size is more
 * likely a mistake than a choice. */
#define MAGLEV_MIN_SIZE 7u

struct maglev_scratch {
	uint32_t max_backends;
	uint32_t max_size;
	/* Per backend with a weight above zero, packed so that the round
	 * loop streams through small arrays. */
	uint32_t *next;     /* the next entry of its walk to try */
	uint32_t *skip;
	uint32_t *slot;
	/* Backends of one weight accrue credit alike, so they take entries
	 * in the same rounds: credit is kept per weight, and a round visits
	 * only the backends whose weight earned an entry in it. The members
	 * of weight g are member[first[g] .. first[g + 1]), in turn order. */
	uint32_t *weight;   /* of each weight group */
	uint64_t *credit;   /* weight accrued towards the group's next entry */
	uint32_t *first;
	uint32_t *member;
	uint32_t *group_of; /* per backend, while the groups are made */
	uint32_t *group_at; /* open addressing, weight -> group + 1 */
	uint32_t group_bits;
	uint64_t *taking;   /* a round's takers, one bit per backend */
	uint32_t *turn;     /* and the same in turn order */
	uint32_t *earned;   /* the groups whose weight earned an entry */
	/* One bit per entry: small enough to stay in L1 where the table
	 * itself would not. */
	uint64_t *filled;
	uint32_t *hole;     /* the free entries once few are left */
	struct maglev_backend *sorted;
	struct maglev_backend *spare;   /* the radix sort's other buffer */
};

/* Two unrelated 64-bit finalisers (SplitMix64 and MurmurHash3's fmix64),
 * so that a backend's offset and skip are independent of each other. */
static uint64_t mix_splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t mix_murmur(uint64_t x)
{
	x ^= 0x5851f42d4c957f2dull;
	x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdull;
	x = (x ^ (x >> 33)) * 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Byte by byte, so that the key does not depend on host byte order or on
 * the alignment of the address. */
static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t maglev_backend_key(const void *addr16, uint16_t port)
{
	const uint8_t *a = addr16;
	uint64_t h = mix_splitmix(load_le64(a));

	h = mix_splitmix(h ^ load_le64(a + 8));
	return mix_splitmix(h ^ port);
}

bool maglev_size_is_valid(uint32_t size)
{
	if (size < MAGLEV_MIN_SIZE || size > MAGLEV_MAX_SIZE || size % 2 == 0)
		return false;
	for (uint32_t d = 3; d * d <= size; d += 2)
		if (size % d == 0)
			return false;
	return true;
}

/* With `left` entries free a walk probes about size / left entries to find
 * one; below about sqrt(size) free entries it is cheaper to measure how far
 * along the walk each of them lies. */
static uint32_t tail_len(uint32_t size)
{
	return 1u << ((32 - __builtin_clz(size)) / 2 - 1);
}

static uint32_t pow2_at_least(uint32_t x)
{
	return x <= 1 ? 1 : 1u << (32 - __builtin_clz(x - 1));
}

struct maglev_scratch *maglev_scratch_create(uint32_t max_backends,
					     uint32_t max_size)
{
	struct maglev_scratch *s = calloc(1, sizeof(*s));
	/* +1: calloc(0, ...) may return NULL, which would read as failure. */
	size_t n = (size_t)max_backends + 1;

	if (s == NULL)
		return NULL;
	if (max_backends > MAGLEV_MAX_BACKENDS) {
		free(s);
		return NULL;
	}
	s->max_backends = max_backends;
	s->max_size = max_size;
	/* at most half full, so that a probe ends soon */
	s->group_bits = (uint32_t)__builtin_ctz(2 * pow2_at_least(max_backends + 1));
	s->next = calloc(n, sizeof(*s->next));
	s->skip = calloc(n, sizeof(*s->skip));
	s->slot = calloc(n, sizeof(*s->slot));
	s->weight = calloc(n, sizeof(*s->weight));
	s->credit = calloc(n, sizeof(*s->credit));
	s->first = calloc(n + 1, sizeof(*s->first));
	s->member = calloc(n, sizeof(*s->member));
	s->group_of = calloc(n, sizeof(*s->group_of));
	s->group_at = calloc((size_t)1 << s->group_bits, sizeof(*s->group_at));
	s->taking = calloc(max_backends / 64 + 1, sizeof(*s->taking));
	s->turn = calloc(n, sizeof(*s->turn));
	s->earned = calloc(n, sizeof(*s->earned));
	s->filled = calloc(max_size / 64 + 1, sizeof(*s->filled));
	s->hole = calloc(tail_len(MAGLEV_MAX_SIZE), sizeof(*s->hole));
	s->sorted = calloc(n, sizeof(*s->sorted));
	s->spare = calloc(n, sizeof(*s->spare));
	if (!s->sorted || !s->spare || !s->next || !s->skip || !s->slot ||
	    !s->weight || !s->credit || !s->first || !s->member ||
	    !s->group_of || !s->group_at || !s->taking || !s->turn ||
	    !s->earned || !s->filled ||
	    !s->hole) {
		maglev_scratch_free(s);
		return NULL;
	}
	return s;
}

void maglev_scratch_free(struct maglev_scratch *s)
{
	if (s == NULL)
		return;
	free(s->next);
	free(s->skip);
	free(s->slot);
	free(s->weight);
	free(s->credit);
	free(s->first);
	free(s->member);
	free(s->group_of);
	free(s->group_at);
	free(s->taking);
	free(s->turn);
	free(s->earned);
	free(s->filled);
	free(s->hole);
	free(s->sorted);
	free(s->spare);
	free(s);
}

/* e + skip (mod size), by addition rather than a divide. Both candidates
 * depend on e alone, so a walk's dependency chain is an add and a select. */
static inline uint32_t step(uint32_t e, uint32_t skip, uint32_t size)
{
	return e >= size - skip ? e - (size - skip) : e + skip;
}

static inline bool is_filled(const uint64_t *filled, uint32_t e)
{
	return filled[e / 64] >> (e % 64) & 1;
}

/* Tests four entries of the walk per branch, and takes the first free one
 * of them as testing one at a time would: the outcome of a single test is
 * a coin toss for much of the build, and a wrong guess costs more than a
 * few extra tests. */
static inline uint32_t first_free(const uint64_t *filled, uint32_t e,
				  uint32_t skip, uint32_t size)
{
	uint32_t s[4] = { 0, skip };

	s[2] = step(skip, skip, size);
	s[3] = step(s[2], skip, size);
	for (;;) {
		unsigned taken = is_filled(filled, e) |
				 is_filled(filled, step(e, s[1], size)) << 1 |
				 is_filled(filled, step(e, s[2], size)) << 2 |
				 is_filled(filled, step(e, s[3], size)) << 3;

		if (taken != 15)
			return step(e, s[__builtin_ctz(~taken)], size);
		e = step(step(e, s[3], size), skip, size);
	}
}

/* a^-1 (mod m) by extended Euclid; it exists as m is prime. */
static uint32_t inverse_mod(uint32_t a, uint32_t m)
{
	int32_t t = 0, nt = 1;
	uint32_t r = m, nr = a;

	while (nr != 0) {
		uint32_t q = r / nr, rr = r - q * nr;
		int32_t tt = t - (int32_t)q * nt;

		r = nr;
		nr = rr;
		t = nt;
		nt = tt;
	}
	return t < 0 ? (uint32_t)(t + (int32_t)m) : (uint32_t)t;
}

/* Takes the free entry that comes first along the walk from `from`, the
 * one probing would find: an entry d entries on lies d / skip steps on. */
static uint32_t take_nearest_hole(uint32_t *hole, uint32_t holes,
				  uint32_t from, uint32_t skip, uint32_t size)
{
	uint64_t inv = inverse_mod(skip, size), best_dist = UINT64_MAX;
	uint32_t best = 0, e;

	for (uint32_t k = 0; k < holes; k++) {
		uint32_t d = hole[k] >= from ? hole[k] - from
					     : hole[k] + (size - from);
		uint64_t dist = d * inv % size;

		if (dist < best_dist) {
			best_dist = dist;
			best = k;
		}
	}
	e = hole[best];
	hole[best] = hole[holes - 1];
	return e;
}

static void gather_holes(const uint64_t *filled, uint32_t size,
			 uint32_t *hole)
{
	for (uint32_t w = 0; w <= size / 64; w++)
		for (uint64_t gaps = ~filled[w]; gaps != 0; gaps &= gaps - 1)
			*hole++ = w * 64 + (uint32_t)__builtin_ctzll(gaps);
}

/* Sorts b[0..n) by key, then slot, using spare[0..n). A byte-wise LSD
 * radix sort: with many backends, qsort() and its calls to a comparison
 * function were a visible share of the build. Equal keys (a backend
 * listed twice) are rare; the radix passes keep them in input order, and
 * an insertion pass then puts them in slot order. Returns the sorted
 * array: b or spare. */
static struct maglev_backend *sort_by_key(struct maglev_backend *b,
					  struct maglev_backend *spare,
					  uint32_t n)
{
	uint32_t count[8][256] = { { 0 } };

	if (n < 2)
		return b;
	for (uint32_t i = 0; i < n; i++)
		for (int d = 0; d < 8; d++)
			count[d][b[i].key >> (8 * d) & 0xff]++;
	for (int d = 0; d < 8; d++) {
		struct maglev_backend *t;
		uint32_t sum = 0;

		/* a byte that all keys share orders nothing */
		if (count[d][b[0].key >> (8 * d) & 0xff] == n)
			continue;
		for (int v = 0; v < 256; v++) {
			uint32_t c = count[d][v];

			count[d][v] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++)
			spare[count[d][b[i].key >> (8 * d) & 0xff]++] = b[i];
		t = b;
		b = spare;
		spare = t;
	}
	for (uint32_t i = 1; i < n; i++) {
		struct maglev_backend x = b[i];
		uint32_t j = i;

		for (; j > 0 && b[j - 1].key == x.key && b[j - 1].slot > x.slot;
		     j--)
			b[j] = b[j - 1];
		b[j] = x;
	}
	return b;
}

/* Where a weight's group is looked for first: Fibonacci hashing, whose
 * top bits spread even weights that are all multiples of some power of
 * two. */
static inline uint32_t group_home(const struct maglev_scratch *s, uint32_t w)
{
	return (uint32_t)((w * 0x9e3779b97f4a7c15ull) >> (64 - s->group_bits));
}

static inline uint32_t group_probe(const struct maglev_scratch *s, uint32_t h)
{
	return (h + 1) & ((1u << s->group_bits) - 1);
}

/* Groups the backends by weight, in turn order within each group.
 * Returns the number of groups. */
static uint32_t group_by_weight(struct maglev_scratch *s,
				const struct maglev_backend *sorted,
				uint32_t active)
{
	uint32_t groups = 0;

	for (uint32_t i = 0; i < active; i++) {
		uint32_t w = sorted[i].weight;

		for (uint32_t h = group_home(s, w);; h = group_probe(s, h)) {
			uint32_t *at = &s->group_at[h];

			if (*at == 0) {
				*at = groups + 1;
				s->weight[groups] = w;
				s->credit[groups] = 0;
				s->first[groups] = 0;
				groups++;
			}
			if (s->weight[*at - 1] == w) {
				s->group_of[i] = *at - 1;
				s->first[*at - 1]++;
				break;
			}
		}
	}
	/* counts to starts, then the members in turn order */
	for (uint32_t g = 0, sum = 0; g <= groups; g++) {
		uint32_t c = g < groups ? s->first[g] : 0;

		s->first[g] = sum;
		sum += c;
	}
	for (uint32_t i = 0; i < active; i++)
		s->member[s->first[s->group_of[i]]++] = i;
	/* each start moved to the next group's: move them back */
	for (uint32_t g = groups; g > 0; g--)
		s->first[g] = s->first[g - 1];
	s->first[0] = 0;
	/* emptied for the next build: from each group's home place to the
	 * end of its run, which covers every place a probe went past */
	for (uint32_t g = 0; g < groups; g++)
		for (uint32_t h = group_home(s, s->weight[g]); s->group_at[h] != 0;
		     h = group_probe(s, h))
			s->group_at[h] = 0;
	return groups;
}

/* Backend i takes the free entry that comes next on its walk. True once
 * the table is full. */
static inline bool take_entry(uint32_t *table, uint32_t size, uint32_t *left,
			      uint32_t tail, uint64_t *filled, uint32_t *hole,
			      uint32_t *next, const uint32_t *skip,
			      const uint32_t *slot, uint32_t i)
{
	uint32_t e;

	if (*left > tail) {
		e = first_free(filled, next[i], skip[i], size);
		filled[e / 64] |= 1ull << (e % 64);
	} else {
		e = take_nearest_hole(hole, *left, next[i], skip[i], size);
	}
	table[e] = slot[i];
	next[i] = step(e, skip[i], size);
	if (--*left == 0)
		return true;
	if (*left == tail)
		gather_holes(filled, size, hole);
	return false;
}

/* The backends that take an entry in the next round, in turn order: all
 * those whose weight earned one in it. The heaviest weight earns one
 * every round, so a round is never empty. Returns how many, *turn
 * pointing at them, or NULL when they are all the backends. */
static uint32_t next_round(struct maglev_scratch *s, uint32_t groups,
			   uint32_t max_weight, uint32_t active,
			   const uint32_t **turn)
{
	uint32_t earned = 0, takers = 0, n = 0;

	for (uint32_t g = 0; g < groups; g++) {
		s->credit[g] += s->weight[g];
		if (s->credit[g] < max_weight)
			continue;
		s->credit[g] -= max_weight;
		s->earned[earned++] = g;
		takers += s->first[g + 1] - s->first[g];
	}
	*turn = NULL;
	if (takers == active)
		return takers;
	/* one group's members are in turn order already; those of several
	 * are merged into it by a bitmap */
	if (earned == 1) {
		*turn = &s->member[s->first[s->earned[0]]];
		return takers;
	}
	for (uint32_t j = 0; j < earned; j++)
		for (uint32_t k = s->first[s->earned[j]];
		     k < s->first[s->earned[j] + 1]; k++)
			s->taking[s->member[k] / 64] |= 1ull << (s->member[k] % 64);
	for (uint32_t w = 0; w <= (active - 1) / 64; w++)
		for (; s->taking[w] != 0; s->taking[w] &= s->taking[w] - 1)
			s->turn[n++] = w * 64 +
				       (uint32_t)__builtin_ctzll(s->taking[w]);
	*turn = s->turn;
	return n;
}

int maglev_build(uint32_t *table, uint32_t size,
		 const struct maglev_backend *backends, uint32_t n,
		 struct maglev_scratch *s)
{
	uint32_t *next = s->next, *skip = s->skip, *slot = s->slot;
	uint32_t *hole = s->hole;
	uint64_t *filled = s->filled;
	uint32_t active = 0, max_weight = 0, groups, tail;
	const struct maglev_backend *sorted;

	if (!maglev_size_is_valid(size) || size > s->max_size ||
	    n > s->max_backends)
		return -EINVAL;

	/* Backends take turns in key order, whatever order they come in: a
	 * balancer that has seen backends come and go lists them otherwise
	 * than one that started afresh, and both must build the same table.
	 * Only those with a weight take turns, so only they are sorted. */
	for (uint32_t i = 0; i < n; i++)
		if (backends[i].weight > 0)
			s->sorted[active++] = backends[i];
	if (active == 0) {
		for (uint32_t e = 0; e < size; e++)
			table[e] = MAGLEV_NO_BACKEND;
		return 0;
	}
	sorted = sort_by_key(s->sorted, s->spare, active);
	for (uint32_t i = 0; i < active; i++) {
		const struct maglev_backend *b = &sorted[i];

		next[i] = (uint32_t)(mix_splitmix(b->key) % size);
		skip[i] = (uint32_t)(mix_murmur(b->key) % (size - 1)) + 1;
		slot[i] = b->slot;
		if (b->weight > max_weight)
			max_weight = b->weight;
	}
	groups = group_by_weight(s, sorted, active);

	memset(filled, 0, (size / 64 + 1) * sizeof(*filled));
	/* The bits past the end count as filled, so no walk or gather has to
	 * check for them. */
	filled[size / 64] = ~0ull << (size % 64);
	tail = tail_len(size);
	/* A round gives every backend weight / max_weight of an entry, so a
	 * backend takes at most one entry a round and, with equal weights,
	 * exactly one: the classic Maglev order. Credit is kept in units of
	 * 1 / max_weight so the sums are exact. With one weight, no credit
	 * is needed: every backend takes its turn in every round. */
	for (uint32_t left = size; groups == 1;)
		for (uint32_t i = 0; i < active; i++)
			if (take_entry(table, size, &left, tail, filled, hole,
				       next, skip, slot, i))
				return 0;
	for (uint32_t left = size;;) {
		const uint32_t *turn;
		uint32_t takers = next_round(s, groups, max_weight, active, &turn);

		for (uint32_t k = 0; k < takers; k++)
			if (take_entry(table, size, &left, tail, filled, hole,
				       next, skip, slot, turn ? turn[k] : k))
				return 0;
	}
}
