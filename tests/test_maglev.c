/* Weighted Maglev: even shares, weights, small disruption on removal, and a
 * table that is the same on every build and every host. Plain C: no EAL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maglev.h"

#define M MAGLEV_DEFAULT_SIZE
#define MAX_BACKENDS 1000

static uint32_t table[M], other[M];
static struct maglev_backend backends[MAX_BACKENDS], shuffled[MAX_BACKENDS];
static uint32_t count[MAX_BACKENDS];
static struct maglev_scratch *scratch;

/* 10.0.x.y:80, IPv4 in the first four bytes as in union ip_addr. */
static uint64_t key_of(uint32_t i)
{
	uint8_t addr[16] = { 10, 0, (uint8_t)(i >> 8), (uint8_t)i };

	return maglev_backend_key(addr, 80);
}

static void make_backends(uint32_t n, uint32_t weight)
{
	for (uint32_t i = 0; i < n; i++)
		backends[i] = (struct maglev_backend){
			.key = key_of(i), .weight = weight, .slot = i,
		};
}

static void count_entries(const uint32_t *t, uint32_t size, uint32_t n)
{
	memset(count, 0, sizeof(count));
	for (uint32_t e = 0; e < size; e++) {
		assert_true(t[e] < n);
		count[t[e]]++;
	}
}

static void build(uint32_t *t, uint32_t size,
		  const struct maglev_backend *b, uint32_t n)
{
	assert_int_equal(maglev_build(t, size, b, n, scratch), 0);
}

static void check_equal_shares(uint32_t n)
{
	uint32_t lo = UINT32_MAX, hi = 0;

	make_backends(n, 1);
	build(table, M, backends, n);
	count_entries(table, M, n);
	for (uint32_t i = 0; i < n; i++) {
		lo = count[i] < lo ? count[i] : lo;
		hi = count[i] > hi ? count[i] : hi;
	}
	assert_true(hi - lo <= 1);
}

static void test_equal_shares_100(void **state)
{
	(void)state;
	check_equal_shares(100);
}

static void test_equal_shares_1000(void **state)
{
	(void)state;
	check_equal_shares(1000);
}

static void test_weights_are_proportional(void **state)
{
	uint32_t lo[5] = { UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX,
			   UINT32_MAX };
	uint32_t hi[5] = { 0 };

	(void)state;
	make_backends(100, 1);
	for (uint32_t i = 0; i < 100; i += 3)
		backends[i].weight = 4;
	build(table, M, backends, 100);
	count_entries(table, M, 100);
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t w = backends[i].weight;

		lo[w] = count[i] < lo[w] ? count[i] : lo[w];
		hi[w] = count[i] > hi[w] ? count[i] : hi[w];
	}
	assert_true(lo[4] * 100 >= hi[1] * 4 * 99);
	assert_true(hi[4] * 100 <= lo[1] * 4 * 101);
}

static void test_zero_weight_takes_nothing(void **state)
{
	(void)state;
	make_backends(10, 3);
	backends[4].weight = 0;
	build(table, M, backends, 10);
	count_entries(table, M, 10);
	assert_int_equal(count[4], 0);
	/* Draining a backend is the same as removing it. */
	memmove(&backends[4], &backends[5], 5 * sizeof(backends[0]));
	build(other, M, backends, 9);
	assert_memory_equal(table, other, sizeof(table));
}

static void test_all_zero_weights(void **state)
{
	(void)state;
	make_backends(10, 0);
	memset(table, 0, sizeof(table));
	build(table, M, backends, 10);
	for (uint32_t e = 0; e < M; e++)
		assert_int_equal(table[e], MAGLEV_NO_BACKEND);
	memset(table, 0, sizeof(table));
	build(table, M, backends, 0);
	for (uint32_t e = 0; e < M; e++)
		assert_int_equal(table[e], MAGLEV_NO_BACKEND);
}

/* Removing a backend should move its own entries and little else. */
static void test_removal_disruption(void **state)
{
	uint32_t worst = 0, total = 0;

	(void)state;
	make_backends(100, 1);
	build(table, M, backends, 100);
	for (uint32_t gone = 0; gone < 100; gone++) {
		uint32_t n = 0, moved = 0;

		for (uint32_t i = 0; i < 100; i++)
			if (i != gone)
				shuffled[n++] = backends[i];
		build(other, M, shuffled, n);
		for (uint32_t e = 0; e < M; e++)
			moved += table[e] != gone && other[e] != table[e];
		worst = moved > worst ? moved : worst;
		total += moved;
	}
	print_message("removing 1 of 100 moves %.3f%% of entries beyond its "
		      "own on average, %.3f%% at worst\n",
		      100.0 * total / 100 / M, 100.0 * worst / M);
	assert_true(worst * 1000 <= M * 7);
}

static void test_same_input_same_table(void **state)
{
	struct maglev_scratch *fresh = maglev_scratch_create(100, M);

	(void)state;
	assert_non_null(fresh);
	make_backends(100, 1);
	backends[7].weight = 5;
	build(table, M, backends, 100);
	/* Scratch left over from another build must not leak into the next. */
	build(other, 13, backends, 3);
	build(other, M, backends, 100);
	assert_memory_equal(table, other, sizeof(table));
	assert_int_equal(maglev_build(other, M, backends, 100, fresh), 0);
	assert_memory_equal(table, other, sizeof(table));
	maglev_scratch_free(fresh);
}

/* Hosts list backends in different orders (one has seen backends come
 * and go, another started afresh); they must still build the same table. */
static void test_order_does_not_matter(void **state)
{
	(void)state;
	make_backends(100, 1);
	build(table, M, backends, 100);
	for (uint32_t i = 0; i < 100; i++)
		shuffled[i] = backends[(i * 37) % 100];
	build(other, M, shuffled, 100);
	assert_memory_equal(table, other, sizeof(table));
}

/* A backend listed twice has one key for two slots: the slots take their
 * turns in slot order, whichever way round they were listed. */
static void test_equal_keys_go_by_slot(void **state)
{
	(void)state;
	make_backends(50, 1);
	backends[7].key = backends[30].key;
	build(table, M, backends, 50);
	for (uint32_t i = 0; i < 50; i++)
		shuffled[i] = backends[49 - i];
	build(other, M, shuffled, 50);
	assert_memory_equal(table, other, sizeof(table));
}

static void test_invalid_input(void **state)
{
	static const uint32_t bad[] = {
		0, 1, 2, 3, 5, 9, 65535, 65536, 1048575, 1048576,
		1048583, UINT32_MAX,
	};
	static const uint32_t good[] = { 7, 13, 4099, 65537, MAGLEV_MAX_SIZE };
	struct maglev_scratch *small = maglev_scratch_create(2, 13);

	(void)state;
	assert_non_null(small);
	make_backends(3, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(maglev_size_is_valid(bad[i]));
		assert_int_equal(maglev_build(table, bad[i], backends, 3,
					      scratch), -EINVAL);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(maglev_size_is_valid(good[i]));
	/* Beyond what the scratch was sized for. */
	assert_int_equal(maglev_build(table, 13, backends, 3, small), -EINVAL);
	assert_int_equal(maglev_build(table, 17, backends, 2, small), -EINVAL);
	assert_int_equal(maglev_build(table, 13, backends, 2, small), 0);
	maglev_scratch_free(small);
}

/* Pins the hash: a change to the key or the permutations would move flows
 * between hosts running different versions. */
static void test_known_answer(void **state)
{
	/* Walks (offset, skip): 10.0.0.0 (10, 11), 10.0.0.1 (1, 2) and
	 * 10.0.0.2 (2, 11), taking turns in key order 2, 1, 0; four full
	 * rounds fill 12 entries and backend 2's walk reaches the last free
	 * one, 12, first in the fifth round. */
	static const uint32_t want[13] = {
		2, 1, 2, 1, 0, 1, 0, 1, 0, 2, 0, 2, 2,
	};
	uint64_t digest = 0xcbf29ce484222325ull;  /* FNV-1a */

	(void)state;
	make_backends(3, 1);
	assert_true(backends[0].key == 0xfb7d76b3ba686e36ull);
	assert_true(backends[1].key == 0x366ad13017874f98ull);
	assert_true(backends[2].key == 0x122e24d95405132dull);
	build(table, 13, backends, 3);
	assert_memory_equal(table, want, sizeof(want));

	make_backends(100, 1);
	backends[1].weight = 2;
	build(table, M, backends, 100);
	for (uint32_t e = 0; e < M; e++)
		digest = (digest ^ table[e]) * 0x100000001b3ull;
	assert_true(digest == 0xc3aeef77925b34aeull);
}

/* maglev.c's offset and skip, restated so that the textbook build below
 * can check the fast one. */
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

static int by_key(const void *a, const void *b)
{
	const struct maglev_backend *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The paper's loop, entry j of a backend's walk computed afresh as
 * (offset + j * skip) % size, with the same weighted rounds, backends
 * taking turns in key order. */
static void reference_build(uint32_t *t, uint32_t size,
			    const struct maglev_backend *in, uint32_t n)
{
	static struct maglev_backend b[MAX_BACKENDS];
	static uint32_t j[MAX_BACKENDS];
	static uint64_t credit[MAX_BACKENDS];
	uint32_t max_weight = 0, left = size;

	memcpy(b, in, n * sizeof(*b));
	qsort(b, n, sizeof(*b), by_key);
	for (uint32_t e = 0; e < size; e++)
		t[e] = MAGLEV_NO_BACKEND;
	for (uint32_t i = 0; i < n; i++) {
		j[i] = 0;
		credit[i] = 0;
		max_weight = b[i].weight > max_weight ? b[i].weight
						      : max_weight;
	}
	while (max_weight > 0) {
		for (uint32_t i = 0; i < n; i++) {
			uint64_t offset = mix_splitmix(b[i].key) % size;
			uint64_t skip = mix_murmur(b[i].key) % (size - 1) + 1;
			uint32_t e;

			if (b[i].weight == 0)
				continue;
			credit[i] += b[i].weight;
			if (credit[i] < max_weight)
				continue;
			credit[i] -= max_weight;
			do
				e = (offset + j[i]++ * skip) % size;
			while (t[e] != MAGLEV_NO_BACKEND);
			t[e] = b[i].slot;
			if (--left == 0)
				return;
		}
	}
}

static void test_matches_reference(void **state)
{
	static const uint32_t sizes[] = { 7, 13, 251, 4099, 65537 };
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int run = 0; run < 60; run++) {
		uint32_t size = sizes[run / 5 % 5];
		uint32_t n = 1 + (uint32_t)(run * 37 % MAX_BACKENDS);

		for (uint32_t i = 0; i < n; i++) {
			uint32_t weight;

			rng = mix_splitmix(rng);
			switch (run % 5) {
			case 0:         /* equal */
				weight = 1;
				break;
			case 1:         /* 0 to 15 */
				weight = (uint32_t)(rng >> 60);
				break;
			case 2:         /* one backend heavier than the rest */
				weight = i == n / 2 ? 2 + (uint32_t)run % 7 : 1;
				break;
			case 3:         /* all different */
				weight = i + 1;
				break;
			default:        /* few, large, alike in their low bits */
				weight = (1 + (uint32_t)(rng >> 62)) << 12;
				break;
			}
			backends[i] = (struct maglev_backend){
				.key = rng, .weight = weight, .slot = i,
			};
		}
		build(table, size, backends, n);
		reference_build(other, size, backends, n);
		assert_memory_equal(table, other, size * sizeof(table[0]));
	}
}

static int setup(void **state)
{
	(void)state;
	scratch = maglev_scratch_create(MAX_BACKENDS, MAGLEV_MAX_SIZE);
	return scratch == NULL;
}

static int teardown(void **state)
{
	(void)state;
	maglev_scratch_free(scratch);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_shares_100),
		cmocka_unit_test(test_equal_shares_1000),
		cmocka_unit_test(test_weights_are_proportional),
		cmocka_unit_test(test_zero_weight_takes_nothing),
		cmocka_unit_test(test_all_zero_weights),
		cmocka_unit_test(test_removal_disruption),
		cmocka_unit_test(test_same_input_same_table),
		cmocka_unit_test(test_order_does_not_matter),
		cmocka_unit_test(test_equal_keys_go_by_slot),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_matches_reference),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
