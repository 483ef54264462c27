/*
 * tests/test_client.c: a connection's transactions (node/client.c): any
 * number, found by id in O(log n) (a guest's ids after a restart are
 * whatever it sends), ended in any order, and their memory counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node/client.h"
#include "node/store/store.h"

#define N 2000

static void test_many_transactions(void **state)
{
	struct store *st = store_new_keyed(store_hash_key_default);
	struct client cl = {0};
	static uint32_t ids[N];
	struct txn *t;
	size_t i, j;

	(void)state;
	assert_non_null(st);
	assert_int_equal(store_host_init(st, "h", 1), 0);
	/* ids in a scrambled order, as a guest may send them */
	for (i = 0; i < N; i++)
		ids[i] = (uint32_t)((i * 7919u) % 100003u) + 1;
	for (i = 0; i < N; i++) {
		t = client_txn_new(&cl, st, "h", ids[i]);
		assert_non_null(t);
		assert_int_equal(t->id, ids[i]);
	}
	assert_int_equal(cl.n_txns, N);
	for (i = 1; i < N; i++)
		assert_true(cl.txns[i - 1]->id < cl.txns[i]->id);
	for (i = 0; i < N; i++)
		assert_int_equal(client_txn_find(&cl, ids[i])->id, ids[i]);
	assert_null(client_txn_find(&cl, 100005));
	assert_true(store_txn_memory(cl.txns[0]->st) > 0);
	/* end every other one, from the middle out */
	for (i = 0, j = N / 2; i < N / 2; i++, j = (j * 31 + 7) % N) {
		t = client_txn_find(&cl, ids[j]);
		if (t)
			client_txn_end(&cl, t);
	}
	for (i = 1; i < cl.n_txns; i++)
		assert_true(cl.txns[i - 1]->id < cl.txns[i]->id);
	for (i = 0; i < N; i++) {
		t = client_txn_find(&cl, ids[i]);
		assert_true(!t || t->id == ids[i]);
	}
	client_txn_drop_all(&cl);
	assert_int_equal(cl.n_txns, 0);
	free(cl.txns);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_transactions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
