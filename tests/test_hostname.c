/*
 * tests/test_hostname.c: the member name a host takes when nothing names
 * it (node/hostname.h): a dom0 early in its boot is "(none)".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "node/hostname.h"

static void expect_name(const char *sys, const char *want, bool as_is)
{
	char out[HOSTNAME_MAX + 1];

	memset(out, 'x', sizeof(out));
	assert_int_equal(hostname_default(sys, out), as_is);
	assert_string_equal(out, want);
	assert_true(hostname_valid(out));
}

static void test_valid(void **state)
{
	char long_name[HOSTNAME_MAX + 2];

	(void)state;
	assert_true(hostname_valid("host1"));
	assert_true(hostname_valid("a.b_c-d"));
	assert_false(hostname_valid(""));
	assert_false(hostname_valid("(none)"));
	assert_false(hostname_valid("has space"));
	assert_false(hostname_valid("x/y"));
	memset(long_name, 'a', sizeof(long_name));
	long_name[HOSTNAME_MAX] = '\0';
	assert_true(hostname_valid(long_name));
	long_name[HOSTNAME_MAX] = 'a';
	long_name[HOSTNAME_MAX + 1] = '\0';
	assert_false(hostname_valid(long_name));
}

static void test_usable_names_are_kept(void **state)
{
	(void)state;
	expect_name("xenhost7", "xenhost7", true);
	expect_name("xenhost7.example.org", "xenhost7", true);
	expect_name("rack-1_a", "rack-1_a", true);
}

static void test_no_name(void **state)
{
	(void)state;
	expect_name("(none)", HOSTNAME_FALLBACK, false);
	expect_name("", HOSTNAME_FALLBACK, false);
	expect_name(NULL, HOSTNAME_FALLBACK, false);
	expect_name("localhost", HOSTNAME_FALLBACK, false);
	expect_name("localhost.localdomain", HOSTNAME_FALLBACK, false);
	expect_name("???", HOSTNAME_FALLBACK, false);
	expect_name(".example.org", HOSTNAME_FALLBACK, false);
}

static void test_sanitised(void **state)
{
	(void)state;
	expect_name("my host", "my-host", false);
	expect_name("  (xen)  box!! ", "xen-box", false);
	expect_name("h\xc3\xa9te", "h-te", false);
	expect_name("-(a)-", "a", false);
}

static void test_too_long(void **state)
{
	char sys[200], want[HOSTNAME_MAX + 1];

	(void)state;
	memset(sys, 'q', sizeof(sys) - 1);
	sys[sizeof(sys) - 1] = '\0';
	memset(want, 'q', HOSTNAME_MAX);
	want[HOSTNAME_MAX] = '\0';
	expect_name(sys, want, false);
	/* exactly the limit is kept as it is */
	sys[HOSTNAME_MAX] = '\0';
	expect_name(sys, want, true);
	sys[HOSTNAME_MAX] = '.';
	expect_name(sys, want, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_usable_names_are_kept),
		cmocka_unit_test(test_no_name),
		cmocka_unit_test(test_sanitised),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
