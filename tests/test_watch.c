/*
 * tests/test_watch.c: watch registration and matching: subtree and exact
 * events, "@" events reaching watches on "/", relative report paths, and
 * cxenstored's delivery order (connection creation, then registration).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/watch.h"

/* Connections are opaque to the registry: any distinct pointers do. */
static int conn_a, conn_b, conn_c;
#define A ((struct conn *)&conn_a)
#define B ((struct conn *)&conn_b)
#define C ((struct conn *)&conn_c)

struct got {
	char line[64][128];
	int n;
};

static void deliver(void *arg, struct conn *c, const char *path,
		    const char *token)
{
	struct got *g = arg;

	snprintf(g->line[g->n++], 128, "%s %s %s",
		 c == A ? "A" : c == B ? "B" : "C", path, token);
}

static struct got fire(struct watches *w, const char *path, bool exact)
{
	struct got g;

	memset(&g, 0, sizeof(g));
	watch_fire(w, path, exact, deliver, &g);
	return g;
}

static void test_subtree_and_exact(void **state)
{
	struct watches *w = watches_new();
	struct got g;

	assert_int_equal(watch_add(w, A, 1, "/a", "t1", 0), 0);
	assert_int_equal(watch_add(w, A, 1, "/a/b/c", "t2", 0), 0);
	assert_int_equal(watch_add(w, B, 2, "/", "root", 0), 0);
	assert_int_equal(watch_add(w, B, 2, "/ab", "t3", 0), 0);

	g = fire(w, "/a/b/c", false);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.line[0], "A /a/b/c t1");
	assert_string_equal(g.line[1], "A /a/b/c t2");
	assert_string_equal(g.line[2], "B /a/b/c root");

	/* /ab is not under /a; a write to /a does not reach /a/b/c */
	g = fire(w, "/a", false);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.line[0], "A /a t1");
	assert_string_equal(g.line[1], "B /a root");

	/* exact: descendants removed along with a subtree */
	g = fire(w, "/a/b/c", true);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "A /a/b/c t2");
	g = fire(w, "/a/b", true);
	assert_int_equal(g.n, 0);
	watches_free(w);
}

static void test_special_paths(void **state)
{
	struct watches *w = watches_new();
	struct got g;

	assert_int_equal(watch_add(w, A, 1, "@releaseDomain", "r", 0), 0);
	assert_int_equal(watch_add(w, B, 2, "/", "root", 0), 0);
	assert_int_equal(watch_add(w, C, 3, "@introduceDomain", "i", 0), 0);
	g = fire(w, "@releaseDomain", false);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.line[0], "A @releaseDomain r");
	assert_string_equal(g.line[1], "B @releaseDomain root");
	watches_free(w);
}

static void test_order_and_relative(void **state)
{
	struct watches *w = watches_new();
	struct got g;

	/* B was created after A, even though it registered first */
	assert_int_equal(watch_add(w, B, 2, "/local/domain/0/x", "b1", 15), 0);
	assert_int_equal(watch_add(w, A, 1, "/local", "a1", 0), 0);
	assert_int_equal(watch_add(w, A, 1, "/local/domain/0/x/y", "a2", 0),
			 0);
	g = fire(w, "/local/domain/0/x/y", false);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.line[0], "A /local/domain/0/x/y a1");
	assert_string_equal(g.line[1], "A /local/domain/0/x/y a2");
	/* relative watch: the prefix and its slash are stripped */
	assert_string_equal(g.line[2], "B x/y b1");
	watches_free(w);
}

static void test_registry(void **state)
{
	struct watches *w = watches_new();
	char path[32];
	int i;

	assert_int_equal(watch_add(w, A, 1, "/a", "t", 0), 0);
	assert_int_equal(watch_add(w, A, 1, "/a", "t", 0), -EEXIST);
	assert_int_equal(watch_add(w, A, 1, "/a", "u", 0), 0);
	assert_int_equal(watch_add(w, B, 2, "/a", "t", 0), 0);
	assert_true(watch_has(w, A, "/a", "u"));
	assert_int_equal(watch_count(w, A), 2);
	assert_int_equal(watch_memory(w, A), 6); /* "/a" "t" + "/a" "u" */
	assert_int_equal(watch_remove(w, A, "/a", "x"), -ENOENT);
	assert_int_equal(watch_remove(w, A, "/a", "t"), 0);
	assert_int_equal(watch_count(w, A), 1);
	watch_remove_conn(w, A);
	assert_int_equal(watch_count(w, A), 0);
	assert_int_equal(fire(w, "/a", false).n, 1);
	/* grow the tables */
	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/many/%d", i);
		assert_int_equal(watch_add(w, C, 3, path, "m", 0), 0);
	}
	assert_int_equal(fire(w, "/many/999", false).n, 1);
	watch_remove_conn(w, C);
	assert_int_equal(fire(w, "/many/999", false).n, 0);
	watches_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subtree_and_exact),
		cmocka_unit_test(test_special_paths),
		cmocka_unit_test(test_order_and_relative),
		cmocka_unit_test(test_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
