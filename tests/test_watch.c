/*
 * tests/test_watch.c: watch registration and matching: subtree and exact
 * events, "@" events reaching watches on "/", relative report paths,
 * cxenstored's delivery order (connection creation, then registration),
 * watches below replaced subtrees, and all of it with 20,000 watches.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void test_fire_below(void **state)
{
	struct watches *w = watches_new();
	const char *roots[] = {"/a", "/b/c"}, *all[] = {"/"};
	struct got g;

	(void)state;
	assert_int_equal(watch_add(w, B, 2, "/a/x", "b1", 0), 0);
	assert_int_equal(watch_add(w, A, 1, "/a", "a0", 0), 0);	/* not below */
	assert_int_equal(watch_add(w, A, 1, "/a/y/z", "a1", 0), 0);
	assert_int_equal(watch_add(w, A, 1, "/ab", "a2", 0), 0); /* not below */
	assert_int_equal(watch_add(w, C, 3, "/b/c/d", "c1", 3), 0);
	assert_int_equal(watch_add(w, C, 3, "/b", "c2", 0), 0);
	assert_int_equal(watch_add(w, C, 3, "@releaseDomain", "c3", 0), 0);
	assert_int_equal(watch_add(w, B, 2, "/", "b2", 0), 0);
	g.n = 0;
	watch_fire_below(w, roots, 2, deliver, &g);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.line[0], "A /a/y/z a1");
	assert_string_equal(g.line[1], "B /a/x b1");
	assert_string_equal(g.line[2], "C c/d c1"); /* as it reports it */
	/* "/": every watch but the one on "/", "@" ones too */
	g.n = 0;
	watch_fire_below(w, all, 1, deliver, &g);
	assert_int_equal(g.n, 7);
	assert_string_equal(g.line[0], "A /a a0");
	assert_string_equal(g.line[3], "B /a/x b1");
	assert_string_equal(g.line[6], "C @releaseDomain c3");
	g.n = 0;
	watch_fire_below(w, roots, 0, deliver, &g);
	assert_int_equal(g.n, 0);
	watches_free(w);
}

/* ---- 20,000 watches on "/" on one connection ---------------------------- */

enum { SCALE = 20000 };

struct order {
	int n;		/* deliveries so far */
	int b_first;	/* how many of B's come first */
	int step;	/* A's tokens expected: 0, step, 2*step, ... */
	const char *path;
};

/* B (created first) fires first, then A's watches in registration order. */
static void deliver_ordered(void *arg, struct conn *c, const char *path,
			    const char *token)
{
	struct order *o = arg;
	char want[32];

	assert_string_equal(path, o->path);
	if (o->n < o->b_first) {
		assert_ptr_equal(c, B);
		snprintf(want, sizeof(want), "b%d", o->n);
	} else {
		assert_ptr_equal(c, A);
		snprintf(want, sizeof(want), "t%05d",
			 (o->n - o->b_first) * o->step);
	}
	assert_string_equal(token, want);
	o->n++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_scale(void **state)
{
	struct watches *w = watches_new();
	struct order o = {0};
	char tok[16];
	double t0 = now_s(), secs;
	int i;

	(void)state;
	for (i = 0; i < SCALE; i++) {
		snprintf(tok, sizeof(tok), "t%05d", i);
		assert_int_equal(watch_add(w, A, 2, "/", tok, 0), 0);
		if (i % 1000 == 0) {
			/* B, created before A, registers as A goes */
			snprintf(tok, sizeof(tok), "b%d", i / 1000);
			assert_int_equal(watch_add(w, B, 1, "/", tok, 0), 0);
		}
		if (i % 100 == 99) {
			/* every duplicate is refused, however old */
			snprintf(tok, sizeof(tok), "t%05d", i / 2);
			assert_int_equal(watch_add(w, A, 2, "/", tok, 0),
					 -EEXIST);
		}
	}
	assert_int_equal(watch_count(w, A), SCALE);
	assert_int_equal(watch_memory(w, A), SCALE * (1 + 6));
	assert_int_equal(watch_count(w, B), SCALE / 1000);
	assert_int_equal(watch_total(w), SCALE + SCALE / 1000);
	assert_true(watch_has(w, A, "/", "t12345"));
	assert_false(watch_has(w, A, "/", "b1"));
	assert_false(watch_has(w, B, "/", "t12345"));
	assert_false(watch_has(w, A, "/x", "t12345"));

	o = (struct order){0, SCALE / 1000, 1, "/x/y"};
	watch_fire(w, "/x/y", false, deliver_ordered, &o);
	assert_int_equal(o.n, SCALE + SCALE / 1000);

	/* remove every odd token; the others stay, in order */
	for (i = 1; i < SCALE; i += 2) {
		snprintf(tok, sizeof(tok), "t%05d", i);
		assert_int_equal(watch_remove(w, A, "/", tok), 0);
		assert_int_equal(watch_remove(w, A, "/", tok), -ENOENT);
		assert_false(watch_has(w, A, "/", tok));
	}
	assert_int_equal(watch_remove(w, B, "/", "t00000"), -ENOENT);
	assert_int_equal(watch_count(w, A), SCALE / 2);
	assert_int_equal(watch_memory(w, A), SCALE / 2 * (1 + 6));
	assert_true(watch_has(w, A, "/", "t12344"));
	o = (struct order){0, SCALE / 1000, 2, "@introduceDomain"};
	watch_fire(w, "@introduceDomain", false, deliver_ordered, &o);
	assert_int_equal(o.n, SCALE / 2 + SCALE / 1000);
	/* a removed watch can be set again: it comes last */
	assert_int_equal(watch_add(w, A, 2, "/", "t00001", 0), 0);
	assert_int_equal(watch_add(w, A, 2, "/", "t00001", 0), -EEXIST);
	assert_int_equal(watch_remove(w, A, "/", "t00001"), 0);

	watch_remove_conn(w, A);
	assert_int_equal(watch_count(w, A), 0);
	assert_int_equal(watch_memory(w, A), 0);
	assert_false(watch_has(w, A, "/", "t12344"));
	o = (struct order){0, SCALE / 1000, 1, "/"};
	watch_fire(w, "/", true, deliver_ordered, &o);
	assert_int_equal(o.n, SCALE / 1000);
	watch_remove_conn(w, B);
	assert_int_equal(watch_total(w), 0);

	/* and the same again on 20,000 different paths */
	for (i = 0; i < SCALE; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/p/%d", i);
		assert_int_equal(watch_add(w, A, 2, path, "x", 0), 0);
		assert_int_equal(watch_add(w, A, 2, path, "x", 0), -EEXIST);
	}
	{
		struct got g = {.n = 0};

		watch_fire(w, "/p/123", false, deliver, &g);
		assert_int_equal(g.n, 1);
		assert_string_equal(g.line[0], "A /p/123 x");
	}
	for (i = 0; i < SCALE; i += 2) {
		char path[32];

		snprintf(path, sizeof(path), "/p/%d", i);
		assert_int_equal(watch_remove(w, A, path, "x"), 0);
	}
	assert_int_equal(watch_count(w, A), SCALE / 2);
	watch_remove_conn(w, A);
	assert_int_equal(watch_total(w), 0);
	watches_free(w);

	/* O(1) each: some 100,000 adds, refused duplicates and removes
	 * take milliseconds; a scan of the connection's watches per add or
	 * remove took seconds (7.8 s) */
	secs = now_s() - t0;
	print_message("%d watches on one path and on as many paths, added, "
		      "checked and removed in %.3f s\n",
		      SCALE, secs);
	assert_true(secs < 2.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subtree_and_exact),
		cmocka_unit_test(test_special_paths),
		cmocka_unit_test(test_order_and_relative),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_fire_below),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
