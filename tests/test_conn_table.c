/* The per-worker connection table: remembering, expiring and, when full,
 * making room without ever refusing a new flow. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conn_table.h"
#include "test_env.h"

#define SEED 0x5eed1234u
#define TCP_TIMEOUT 300
#define UDP_TIMEOUT 30

static struct flow_key flow(uint32_t i, uint8_t proto)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	k.proto = proto;
	k.src.v4 = rte_cpu_to_be_32(0xc0000200u + (i >> 16));
	k.dst.v4 = rte_cpu_to_be_32(0x0a000064u);
	k.sport = rte_cpu_to_be_16((uint16_t)i);
	k.dport = rte_cpu_to_be_16(80);
	return k;
}

static int32_t find(struct conn_table *t, const struct flow_key *k)
{
	const struct flow_key *keys[1] = { k };
	hash_sig_t hash = flow_hash(k, SEED);
	int32_t pos;

	conn_lookup_bulk(t, keys, &hash, 1, &pos);
	return pos;
}

static void add(struct conn_table *t, const struct flow_key *k,
		uint32_t backend, uint32_t now, struct worker_counters *cnt)
{
	conn_insert(t, k, flow_hash(k, SEED), 7, backend, now, cnt);
}

static struct conn_table *table(uint32_t capacity)
{
	static unsigned int n;
	char name[32];

	test_env_init();
	snprintf(name, sizeof(name), "conns_test_%u", n++);
	return conn_table_create(name, capacity, TCP_TIMEOUT, UDP_TIMEOUT,
				 SEED, SOCKET_ID_ANY);
}

static void test_remembers_backend(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(1024);
	int32_t pos;

	(void)state;
	for (uint32_t i = 0; i < 500; i++) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		add(t, &k, i % 13, 10, &cnt);
	}
	for (uint32_t i = 0; i < 500; i++) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		pos = find(t, &k);
		assert_true(pos >= 0);
		assert_int_equal(t->entries[pos].backend, i % 13);
		assert_int_equal(t->entries[pos].service, 7);
		assert_int_equal(t->entries[pos].deadline, 10 + TCP_TIMEOUT);
	}
	struct flow_key other = flow(999, IPPROTO_UDP);

	assert_true(find(t, &other) < 0);
	assert_int_equal(cnt.conn_new, 500);
	assert_int_equal(conn_count(t), 500);
	conn_table_free(t);
}

static void test_idle_entries_expire_by_protocol(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(256);
	struct flow_key tcp = flow(1, IPPROTO_TCP), udp = flow(2, IPPROTO_UDP);

	(void)state;
	add(t, &tcp, 1, 1, &cnt);
	add(t, &udp, 2, 1, &cnt);
	/* one full sweep after the UDP timeout: UDP gone, TCP kept */
	conn_sweep(t, 1 + UDP_TIMEOUT + 1, t->n_slots, &cnt);
	assert_true(find(t, &tcp) >= 0);
	assert_true(find(t, &udp) < 0);
	conn_sweep(t, 1 + TCP_TIMEOUT + 1, t->n_slots, &cnt);
	assert_true(find(t, &tcp) < 0);
	assert_int_equal(cnt.conn_expired, 2);
	assert_int_equal(conn_count(t), 0);
	conn_table_free(t);
}

static void test_full_table_evicts_and_counts(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(64);
	const uint32_t n = 1000;

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		add(t, &k, i, 5, &cnt);
		/* the newest flow is always in */
		assert_true(find(t, &k) >= 0);
		assert_true(conn_count(t) <= t->capacity);
	}
	assert_int_equal(cnt.conn_new, n);
	assert_int_equal(cnt.conn_evicted, n - conn_count(t));
	assert_int_equal(cnt.conn_expired, 0);
	/* positions taken over and over still remove the flow they hold */
	conn_sweep(t, 5 + TCP_TIMEOUT + 1, t->n_slots, &cnt);
	assert_int_equal(conn_count(t), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		assert_true(find(t, &k) < 0);
	}
	conn_table_free(t);
}

static uint32_t fill(struct conn_table *t, uint8_t proto, uint32_t now,
		     struct worker_counters *cnt)
{
	uint32_t i;

	for (i = 0; conn_count(t) < t->capacity; i++) {
		struct flow_key k = flow(i, proto);

		add(t, &k, 0, now, cnt);
	}
	return i;
}

static void test_make_room_evicts_exactly_what_is_needed(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(64);

	(void)state;
	conn_make_room(t, 10, 1, &cnt);
	assert_int_equal(cnt.conn_evicted + cnt.conn_expired, 0);
	fill(t, IPPROTO_TCP, 1, &cnt);
	conn_make_room(t, 0, 2, &cnt);
	assert_int_equal(conn_count(t), 64);
	conn_make_room(t, 10, 2, &cnt);
	assert_int_equal(conn_count(t), 54);
	assert_int_equal(cnt.conn_evicted, 10);
	/* room already made: none more goes */
	conn_make_room(t, 10, 2, &cnt);
	assert_int_equal(conn_count(t), 54);
	conn_make_room(t, 11, 2, &cnt);
	assert_int_equal(conn_count(t), 53);
	assert_int_equal(cnt.conn_evicted, 11);
	assert_int_equal(cnt.conn_expired, 0);
	conn_table_free(t);
}

static void test_make_room_for_more_than_the_capacity(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(64);
	uint32_t n;

	(void)state;
	n = fill(t, IPPROTO_TCP, 1, &cnt);
	/* more than a bulk lookup takes at once, and more than there is */
	conn_make_room(t, 1000, 2, &cnt);
	assert_int_equal(conn_count(t), 0);
	assert_int_equal(cnt.conn_evicted, 64);
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		assert_true(find(t, &k) < 0);
	}
	assert_int_equal(fill(t, IPPROTO_UDP, 2, &cnt), 64);
	conn_table_free(t);
}

static void test_make_room_prefers_expired_entries(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(256);
	uint32_t n_udp = 0;

	(void)state;
	/* UDP and TCP flows side by side; at `later` only UDP has expired */
	for (uint32_t i = 0; conn_count(t) < t->capacity; i++) {
		struct flow_key k = flow(i, i % 2 ? IPPROTO_UDP : IPPROTO_TCP);

		add(t, &k, 0, 1, &cnt);
		n_udp += i % 2;
	}
	const uint32_t later = 1 + UDP_TIMEOUT + 1;

	conn_make_room(t, n_udp, later, &cnt);
	assert_int_equal(cnt.conn_expired, n_udp);
	assert_int_equal(cnt.conn_evicted, 0);
	for (uint32_t i = 0; i < 2 * n_udp; i += 2) {
		struct flow_key k = flow(i, IPPROTO_TCP);

		assert_true(find(t, &k) >= 0);
	}
	/* only live entries left: the next go counted as evicted */
	conn_make_room(t, n_udp + 3, later, &cnt);
	assert_int_equal(cnt.conn_evicted, 3);
	assert_int_equal(cnt.conn_expired, n_udp);
	conn_table_free(t);
}

static void test_eviction_prefers_expired_entries(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(64);
	uint32_t filled;

	(void)state;
	for (uint32_t i = 0; conn_count(t) < t->capacity && i < 10000; i++) {
		struct flow_key k = flow(i, IPPROTO_UDP);

		add(t, &k, 0, 1, &cnt);
	}
	filled = conn_count(t);
	assert_int_equal(cnt.conn_evicted, 0);
	/* all old entries are past their deadline: new flows take their
	 * places, and nothing live is pushed out */
	for (uint32_t i = 0; i < filled; i++) {
		struct flow_key k = flow(20000 + i, IPPROTO_TCP);

		add(t, &k, 1, 1 + UDP_TIMEOUT + 5, &cnt);
	}
	assert_int_equal(cnt.conn_evicted, 0);
	assert_int_equal(cnt.conn_expired, filled);
	conn_table_free(t);
}

static void test_remove_frees_the_slot(void **state)
{
	struct worker_counters cnt = { 0 };
	struct conn_table *t = table(64);
	struct flow_key k = flow(3, IPPROTO_TCP);
	int32_t pos;

	(void)state;
	add(t, &k, 4, 1, &cnt);
	pos = find(t, &k);
	assert_true(pos >= 0);
	conn_remove(t, pos);
	assert_true(find(t, &k) < 0);
	assert_int_equal(t->entries[pos].deadline, 0);
	assert_int_equal(conn_count(t), 0);
	conn_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remembers_backend),
		cmocka_unit_test(test_idle_entries_expire_by_protocol),
		cmocka_unit_test(test_full_table_evicts_and_counts),
		cmocka_unit_test(test_eviction_prefers_expired_entries),
		cmocka_unit_test(test_make_room_evicts_exactly_what_is_needed),
		cmocka_unit_test(test_make_room_for_more_than_the_capacity),
		cmocka_unit_test(test_make_room_prefers_expired_entries),
		cmocka_unit_test(test_remove_frees_the_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
