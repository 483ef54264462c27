/*
 * tests/test_quiet.c: how often refusals are logged (consensus/quiet.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "consensus/quiet.h"

static void test_once_per_key_and_interval(void **state)
{
	static struct quiet q;
	char more[96];
	int i;

	(void)state;
	assert_true(quiet_allow(&q, 1000, "10.0.0.1|timeout", more, sizeof(more)));
	assert_string_equal(more, "");
	for (i = 0; i < 5; i++)
		assert_false(quiet_allow(&q, 2000 + i, "10.0.0.1|timeout", more,
					 sizeof(more)));
	/* another key, another reason: news */
	assert_true(quiet_allow(&q, 2100, "10.0.0.2|timeout", more, sizeof(more)));
	assert_true(quiet_allow(&q, 2100, "10.0.0.1|bad", more, sizeof(more)));
	assert_false(quiet_allow(&q, 1000 + QUIET_MS - 1, "10.0.0.1|timeout",
				 more, sizeof(more)));
	assert_true(quiet_allow(&q, 1000 + QUIET_MS, "10.0.0.1|timeout", more,
				sizeof(more)));
	assert_string_equal(more, " (and 6 more times since)");
	/* the count starts again */
	assert_true(quiet_allow(&q, 1000 + 2 * QUIET_MS, "10.0.0.1|timeout",
				more, sizeof(more)));
	assert_string_equal(more, "");
}

static void test_budget(void **state)
{
	static struct quiet q;
	char more[96], key[32];
	int i, allowed = 0;

	(void)state;
	/* many sources at once: no more than the budget */
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "10.1.%d.%d|timeout", i / 256, i % 256);
		allowed += quiet_allow(&q, 100 + i, key, more, sizeof(more));
	}
	assert_int_equal(allowed, QUIET_BUDGET);
	/* the next window says how many were left out */
	assert_true(quiet_allow(&q, 100 + QUIET_BUDGET_MS, "10.9.9.9|x", more,
				sizeof(more)));
	assert_string_equal(more, " (440 other lines like it not logged: too many)");
	assert_true(quiet_allow(&q, 101 + QUIET_BUDGET_MS, "10.9.9.8|x", more,
				sizeof(more)));
	assert_string_equal(more, "");
}

static void test_table_full_forgets_the_oldest(void **state)
{
	static struct quiet q;
	char more[96], key[32];
	int i;

	(void)state;
	for (i = 0; i < QUIET_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_true(quiet_allow(&q, 10 + i, key, more, sizeof(more)));
	}
	/* a new key takes the oldest slot (k0), so k0 is news again */
	assert_true(quiet_allow(&q, 100, "new", more, sizeof(more)));
	assert_true(quiet_allow(&q, 101, "k0", more, sizeof(more)));
	assert_false(quiet_allow(&q, 102, "new", more, sizeof(more)));
	assert_false(quiet_allow(&q, 103, "k5", more, sizeof(more)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once_per_key_and_interval),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_table_full_forgets_the_oldest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
