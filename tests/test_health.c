/*
 * tests/test_health.c: the verdict of `xsadm cluster health`
 * (cluster_health_verdict(), node/cluster_int.h): each reason in its
 * order, the one the end-to-end test (tests/cluster/test_health.py)
 * cannot bring about on loopback included: a member that answers, knows
 * the leader, and has not applied what the leader committed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "node/cluster_int.h"

static struct health_facts healthy(void)
{
	struct health_facts f = {
		.leader = 2,
		.leader_name = "host2",
		.in_config = true,
		.commit_known = true,
		.commit = 120,
		.applied = 120,
		.timeout_ms = 1000,
	};

	return f;
}

static void test_healthy(void **state)
{
	struct health_facts f = healthy();
	char buf[256];

	assert_null(cluster_health_verdict(&f, buf, sizeof(buf)));
	f.applied = 130; /* applied past the leader's answer: fine */
	assert_null(cluster_health_verdict(&f, buf, sizeof(buf)));
}

static void test_behind(void **state)
{
	struct health_facts f = healthy();
	char buf[256];

	f.applied = 119;
	assert_string_equal(cluster_health_verdict(&f, buf, sizeof(buf)),
			    "this member is behind: applied 119, leader's "
			    "commit 120");
}

static void test_order(void **state)
{
	struct health_facts f = healthy();
	char buf[256];

	f.applied = 3;
	f.commit_known = false;
	assert_string_equal(cluster_health_verdict(&f, buf, sizeof(buf)),
			    "the leader (member 2, host2) did not answer "
			    "within 1000 ms");
	f.silent_voter = 3;
	f.silent_name = "host3";
	assert_string_equal(cluster_health_verdict(&f, buf, sizeof(buf)),
			    "member 3 (host3) did not answer within 1000 ms");
	f.in_config = false;
	assert_string_equal(cluster_health_verdict(&f, buf, sizeof(buf)),
			    "this member is not in the configuration "
			    "(removed?)");
	f.leader = 0;
	assert_string_equal(cluster_health_verdict(&f, buf, sizeof(buf)),
			    "no leader");
}

static void test_small_buffer(void **state)
{
	struct health_facts f = healthy();
	char buf[16];
	const char *r;

	f.applied = 1;
	r = cluster_health_verdict(&f, buf, sizeof(buf));
	assert_int_equal(strlen(r), sizeof(buf) - 1);
	assert_memory_equal(r, "this member is ", 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy),
		cmocka_unit_test(test_behind),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
