/*
 * tests/test_hashset.c: node/hashset.c against a plain array: inserts,
 * finds, removes and iteration while the table grows and shrinks a few
 * buckets at a time, colliding hashes, and allocation failures (calloc
 * is wrapped).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/hashset.h"

/* ---- calloc that fails on demand ---------------------------------------- */

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int calloc_fail; /* fail this many calls from now on */

void *__wrap_calloc(size_t n, size_t size)
{
	if (calloc_fail > 0) {
		calloc_fail--;
		return NULL;
	}
	return __real_calloc(n, size);
}

/* ---- objects in the set ------------------------------------------------- */

struct item {
	struct hashset_node node;
	uint32_t key;
	bool in;
};

#define ITEM(n) ((struct item *)((char *)(n) - offsetof(struct item, node)))

static bool item_eq(const struct hashset_node *n, const void *key)
{
	return ITEM(n)->key == *(const uint32_t *)key;
}

/* A poor hash on purpose in some tests: mask keeps only some bits. */
static uint64_t mask_bits = UINT64_MAX;

static uint64_t item_hash(uint32_t key)
{
	uint64_t x = key * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return x & mask_bits;
}

static struct item *find(const struct hashset *s, uint32_t key)
{
	struct hashset_node *n = hashset_find(s, item_hash(key), item_eq, &key);

	return n ? ITEM(n) : NULL;
}

/* Every item is found exactly when it is in; iteration sees each once. */
static void check_all(const struct hashset *s, struct item *v, size_t n)
{
	struct hashset_node *x;
	size_t i, in = 0, seen = 0;
	char *mark = malloc(n); /* calloc may be failing on purpose */

	assert_non_null(mark);
	memset(mark, 0, n);

	assert_true(hashset_ok(s));
	for (i = 0; i < n; i++) {
		assert_ptr_equal(find(s, v[i].key), v[i].in ? &v[i] : NULL);
		in += v[i].in;
	}
	assert_int_equal(hashset_count(s), in);
	for (x = hashset_next(s, NULL); x; x = hashset_next(s, x)) {
		size_t k = (size_t)(ITEM(x) - v);

		assert_true(k < n && v[k].in && !mark[k]);
		mark[k] = 1;
		seen++;
	}
	assert_int_equal(seen, in);
	free(mark);
}

static struct item *items(size_t n)
{
	struct item *v = calloc(n, sizeof(*v));
	size_t i;

	for (i = 0; i < n; i++)
		v[i].key = (uint32_t)i * 7 + 3;
	return v;
}

static void put(struct hashset *s, struct item *it)
{
	assert_null(find(s, it->key));
	assert_int_equal(hashset_insert(s, &it->node, item_hash(it->key)), 0);
	it->in = true;
}

static void take(struct hashset *s, struct item *it)
{
	assert_ptr_equal(find(s, it->key), it);
	hashset_remove(s, &it->node);
	it->in = false;
}

/* ---- tests -------------------------------------------------------------- */

static void test_empty(void **state)
{
	struct hashset s;
	uint32_t k = 1;

	(void)state;
	hashset_init(&s);
	assert_true(hashset_ok(&s));
	assert_int_equal(hashset_count(&s), 0);
	assert_null(hashset_find(&s, 1, item_eq, &k));
	assert_null(hashset_next(&s, NULL));
	hashset_close(&s);
	hashset_close(&s); /* closing an empty set twice is fine */
}

/* Grow to 20,000 and back to nothing, checking at every size change. */
static void test_grow_and_shrink(void **state)
{
	enum { N = 20000 };
	struct item *v = items(N);
	struct hashset s;
	size_t i, last_size = 0;

	(void)state;
	hashset_init(&s);
	for (i = 0; i < N; i++) {
		size_t moved = s.moved;
		bool was = s.tab[1] != NULL;

		put(&s, &v[i]);
		/* a few buckets per operation, never the whole table */
		if (was && s.tab[1])
			assert_true(s.moved - moved <= HASHSET_STEP);
		if (s.size[0] != last_size || i % 997 == 0) {
			last_size = s.size[0];
			assert_true(hashset_ok(&s));
		}
		/* the load stays bounded */
		assert_true(hashset_count(&s) <= 2 * s.size[0]);
	}
	check_all(&s, v, N);
	assert_true(s.size[0] + s.size[1] >= N / 2);
	for (i = 0; i < N; i++) {
		take(&s, &v[(i * 7919) % N]); /* in another order */
		if (i % 1999 == 0)
			check_all(&s, v, N);
	}
	/* empty again: it holds no memory */
	assert_int_equal(hashset_count(&s), 0);
	assert_null(s.tab[0]);
	assert_null(s.tab[1]);
	assert_true(hashset_ok(&s));
	/* and it is usable again */
	put(&s, &v[5]);
	check_all(&s, v, N);
	hashset_close(&s);
	free(v);
}

/* Inserts and removes interleaved at random, mid-resize most of the time. */
static void test_random_mix(void **state)
{
	enum { N = 5000, OPS = 200000 };
	struct item *v = items(N);
	struct hashset s;
	uint64_t r = 88172645463325252ULL;
	size_t op;

	(void)state;
	hashset_init(&s);
	for (op = 0; op < OPS; op++) {
		size_t k;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		/* phases that mostly insert, then mostly remove */
		k = (size_t)(r % N);
		if (!v[k].in && ((op / 20000) % 2 == 0 || r % 4 == 0))
			put(&s, &v[k]);
		else if (v[k].in)
			take(&s, &v[k]);
		if (op % 9973 == 0)
			check_all(&s, v, N);
	}
	check_all(&s, v, N);
	hashset_close(&s);
	free(v);
}

/* Equal hashes: find() tells the nodes apart by eq(). */
static void test_collisions(void **state)
{
	enum { N = 300 };
	struct item *v = items(N);
	struct hashset s;
	size_t i;

	(void)state;
	mask_bits = 0x3; /* four distinct hashes */
	hashset_init(&s);
	for (i = 0; i < N; i++)
		put(&s, &v[i]);
	check_all(&s, v, N);
	for (i = 0; i < N; i += 2)
		take(&s, &v[i]);
	check_all(&s, v, N);
	hashset_close(&s);
	mask_bits = UINT64_MAX;
	free(v);
}

/* Freeing every node while iterating, as owners do before close(). */
static void test_free_while_iterating(void **state)
{
	enum { N = 1100 }; /* the resize to 2048 buckets is under way */
	struct hashset s;
	struct hashset_node *x, *next;
	size_t i, freed = 0;

	(void)state;
	hashset_init(&s);
	for (i = 0; i < N; i++) {
		struct item *it = calloc(1, sizeof(*it));

		it->key = (uint32_t)i;
		assert_int_equal(
			hashset_insert(&s, &it->node, item_hash(it->key)), 0);
	}
	assert_non_null(s.tab[1]); /* stopped mid-resize: both tables */
	for (x = hashset_next(&s, NULL); x; x = next) {
		next = hashset_next(&s, x);
		free(ITEM(x));
		freed++;
	}
	assert_int_equal(freed, N);
	hashset_close(&s);
	assert_true(hashset_ok(&s));
}

/* No memory: the first buckets fail with ENOMEM, a resize just waits. */
static void test_enomem(void **state)
{
	enum { N = 200 };
	struct item *v = items(N);
	struct hashset s;
	size_t i;

	(void)state;
	hashset_init(&s);
	calloc_fail = 1;
	assert_int_equal(hashset_insert(&s, &v[0].node, item_hash(v[0].key)),
			 -ENOMEM);
	assert_true(hashset_ok(&s));
	put(&s, &v[0]);
	/* every resize fails: chains get longer, nothing is lost */
	calloc_fail = 1000000;
	for (i = 1; i < N; i++)
		put(&s, &v[i]);
	assert_int_equal(s.size[0], 8);
	check_all(&s, v, N);
	/* memory again: the next insert starts growing */
	calloc_fail = 0;
	take(&s, &v[1]);
	put(&s, &v[1]);
	assert_non_null(s.tab[1]);
	check_all(&s, v, N);
	hashset_close(&s);
	free(v);
}

/* The keyed hash: a function of (key, bytes), and keys differ. */
static void test_keyed_hash(void **state)
{
	uint8_t k1[HASHSET_KEY_LEN], k2[HASHSET_KEY_LEN];

	(void)state;
	hashset_key_new(k1);
	hashset_key_new(k2);
	assert_memory_not_equal(k1, k2, HASHSET_KEY_LEN);
	assert_true(hashset_hash(k1, "/a\0t", 4) ==
		    hashset_hash(k1, "/a\0t", 4));
	assert_true(hashset_hash(k1, "/a\0t", 4) !=
		    hashset_hash(k2, "/a\0t", 4));
	assert_true(hashset_hash(k1, "/a\0t", 4) !=
		    hashset_hash(k1, "/a\0u", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_grow_and_shrink),
		cmocka_unit_test(test_random_mix),
		cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_free_while_iterating),
		cmocka_unit_test(test_enomem),
		cmocka_unit_test(test_keyed_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
