/*
 * tests/test_snap_diff.c: what a member that installs a snapshot at run
 * time must notice (consensus/snap_diff.h), and transactions open across the
 * swap of its store (node/snapshot.c).
 *
 * "old" is a snapshot copy of a store; the store then goes on applying
 * entries and becomes "new", as the leader's store that a lagging follower
 * installs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus/sm.h"
#include "consensus/snap_diff.h"
#include "node/store/store.h"

static const struct store_caller dom0 = {.domid = 0,
					 .privileged = true,
					 .target = STORE_NO_TARGET,
					 .quota = STORE_QUOTA_INIT};

/* Write as the entry at index would: sm_apply() sets the index first. */
static void put(struct store *st, uint64_t index, const char *path,
		const char *value)
{
	store_set_applied_index(st, index);
	assert_int_equal(store_write(st, "h", NULL, &dom0, index, path, value,
				     strlen(value), NULL),
			 0);
}

/* A copy of st through the snapshot codec. */
static struct store *copy(struct store *st)
{
	struct store_pin *pin = store_pin(st);
	struct store *out;
	void *buf;
	size_t len;

	assert_non_null(pin);
	assert_int_equal(sm_snapshot_encode(pin, &buf, &len), 0);
	assert_int_equal(sm_snapshot_decode(buf, len, &out), 0);
	free(buf);
	store_unpin(pin);
	return out;
}

static struct store *base(void)
{
	struct store *st = store_new();

	assert_non_null(st);
	assert_int_equal(store_host_init(st, "h", 1), 0);
	put(st, 2, "/a/x", "1");
	put(st, 3, "/a/y", "2");
	put(st, 4, "/b/z", "3");
	put(st, 5, "/keep/deep/leaf", "4");
	store_set_applied_index(st, 5);
	return st;
}

static bool has(const struct store_events *ev, const char *path)
{
	size_t i;

	for (i = 0; i < ev->n; i++)
		if (strcmp(ev->v[i].path, path) == 0)
			return true;
	return false;
}

static void test_nothing_changed(void **state)
{
	struct store *a = base(), *b = copy(a);
	struct snap_diff df;

	(void)state;
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_false(df.all);
	assert_int_equal(df.changed.n, 0);
	assert_int_equal(df.replaced.n, 0);
	assert_false(df.introduced || df.released);
	snap_diff_clear(&df);
	store_free(a);
	store_free(b);
}

static void test_changes_found(void **state)
{
	struct store *b = base(), *a = copy(b);
	struct store_events ev;
	struct snap_diff df;

	(void)state;
	store_events_init(&ev);
	put(b, 6, "/a/x", "changed");	    /* a value */
	put(b, 7, "/c/new/deeper", "v");    /* a new subtree */
	assert_int_equal(store_rm(b, "h", NULL, &dom0, 8, "/b", &ev), 0);
	put(b, 9, "/keep/deep/other", "5"); /* a child only: same generation */
	store_events_clear(&ev);
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_false(df.all);
	assert_true(has(&df.changed, "/a/x"));
	assert_true(has(&df.changed, "/keep/deep"));
	assert_false(has(&df.changed, "/keep/deep/leaf"));
	assert_false(has(&df.changed, "/a/y"));
	assert_true(has(&df.changed, "/"));  /* children: c added, b gone */
	assert_true(has(&df.replaced, "/c"));
	assert_true(has(&df.replaced, "/b"));
	assert_true(has(&df.replaced, "/keep/deep/other"));
	assert_false(has(&df.replaced, "/c/new"));
	assert_int_equal(df.changed.n + df.replaced.n, 6);
	/* the events carry what permission filtering needs */
	assert_true(df.replaced.v[0].has_node || df.replaced.v[0].has_old);
	snap_diff_clear(&df);
	store_free(a);
	store_free(b);
}

static void test_domains(void **state)
{
	struct store *b = base(), *a;
	struct store_events ev;
	struct snap_diff df;

	(void)state;
	store_events_init(&ev);
	assert_int_equal(store_domain_introduce(b, "h", 5, 100, 7, 6, true, &ev),
			 0);
	a = copy(b);
	assert_int_equal(store_domain_gone(b, "h", 5, 7, &ev), 0);
	assert_int_equal(store_domain_introduce(b, "h", 6, 101, 8, 8, true, &ev),
			 0);
	store_events_clear(&ev);
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_true(df.introduced);
	assert_true(df.released);
	assert_true(has(&df.changed, "@introduceDomain"));
	assert_true(has(&df.changed, "@releaseDomain"));
	snap_diff_clear(&df);
	store_free(a);
	store_free(b);
}

/* A host that appeared meanwhile: its whole tree is one replaced root. */
static void test_new_host(void **state)
{
	struct store *a = store_new(), *b = base();
	struct snap_diff df;

	(void)state;
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_int_equal(df.replaced.n, 1);
	assert_string_equal(df.replaced.v[0].path, "/");
	snap_diff_clear(&df);
	store_free(a);
	store_free(b);
}

static void test_too_much_is_everything(void **state)
{
	struct store *b = base(), *a;
	struct snap_diff df;
	char path[64];
	int i;

	(void)state;
	/* a new subtree is one root; new children of a node are many */
	put(b, 6, "/many/seed", "x");
	a = copy(b);
	for (i = 0; i < SNAP_DIFF_MAX_EVENTS + 10; i++) {
		snprintf(path, sizeof(path), "/many/%d", i);
		put(b, 10 + (uint64_t)i, path, "x");
	}
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_true(df.all);
	assert_int_equal(df.changed.n + df.replaced.n, 0);
	snap_diff_clear(&df);
	store_free(a);
	store_free(b);
}

/*
 * A transaction opened on the old store, the old store swapped for the
 * leader's and freed (as snapshot_restore() does): it goes on, and its
 * commit is judged against the new store as after the skipped entries.
 */
static void run_txn_across_swap(bool conflict, int expect)
{
	struct store *old = base(), *leader = copy(old), *cur;
	struct store_commit cm;
	struct store_txn *tx;
	const char *v;
	size_t len;

	tx = store_txn_new(old, "h");
	assert_non_null(tx);
	assert_int_equal(store_read(old, "h", tx, &dom0, "/a/x", &v, &len), 0);
	assert_int_equal(store_write(old, "h", tx, &dom0, 0, "/a/t", "w", 1,
				     NULL),
			 0);
	/* the entries this member skips, applied by the others */
	put(leader, 6, conflict ? "/a/x" : "/b/z", "changed");
	store_set_applied_index(leader, 6);
	cur = copy(leader);
	store_free(old);
	/* reads after the swap see the new store */
	assert_int_equal(store_read(cur, "h", tx, &dom0, "/b/z", &v, &len), 0);
	assert_int_equal(store_txn_export(tx, &cm), 0);
	assert_int_equal(store_commit(cur, "h", &dom0, 7, &cm, NULL), expect);
	assert_int_equal(store_commit(leader, "h", &dom0, 7, &cm, NULL),
			 expect);
	store_commit_release(&cm);
	store_txn_free(tx);
	store_free(cur);
	store_free(leader);
}

static void test_txn_conflict_across_swap(void **state)
{
	(void)state;
	run_txn_across_swap(true, -EAGAIN);
}

static void test_txn_no_conflict_across_swap(void **state)
{
	(void)state;
	run_txn_across_swap(false, 0);
}

/*
 * A change of this member's own request among the skipped entries that a
 * later one undid (created, then removed): the diff cannot see it, the
 * touch reports it with the permissions a watcher is filtered by.
 */
static void test_touch(void **state)
{
	struct store *b = base(), *a = copy(b);
	struct store_events ev;
	struct snap_diff df;
	const struct store_event *e;

	(void)state;
	store_events_init(&ev);
	put(b, 6, "/a/gone", "v");
	assert_int_equal(store_rm(b, "h", NULL, &dom0, 7, "/a/gone", &ev), 0);
	put(b, 8, "/a/x", "changed");
	store_events_clear(&ev);
	snap_diff_init(&df);
	assert_int_equal(snap_diff(a, b, "h", &df), 0);
	assert_false(has(&df.changed, "/a/gone"));
	assert_false(has(&df.replaced, "/a/gone"));
	assert_int_equal(snap_diff_touch(a, b, "h", "/a/gone", false, &df), 0);
	assert_int_equal(snap_diff_touch(a, b, "h", "/a/x", true, &df), 0);
	assert_int_equal(snap_diff_touch(a, b, "h", "/nowhere/deep", false,
					 &df),
			 0);
	assert_false(df.all);
	assert_int_equal(df.touched.n, 3);
	/* in neither store: its parent's permissions as its own */
	e = &df.touched.v[0];
	assert_string_equal(e->path, "/a/gone");
	assert_false(e->exact);
	assert_true(e->has_node && e->has_parent);
	assert_false(e->has_old);
	assert_int_equal(e->node.n, e->parent.n);
	/* in both: the node's old and new permissions, the exactness */
	e = &df.touched.v[1];
	assert_string_equal(e->path, "/a/x");
	assert_true(e->exact);
	assert_true(e->has_node && e->has_old && e->has_parent);
	/* no node, no parent: it reaches nobody */
	e = &df.touched.v[2];
	assert_false(e->has_node || e->has_old || e->has_parent);
	snap_diff_clear(&df);
	assert_int_equal(df.touched.n, 0);
	store_free(a);
	store_free(b);
}

struct seen_paths {
	char v[4][64];
	bool exact[4];
	size_t n;
};

static int collect(void *arg, const char *path, bool exact)
{
	struct seen_paths *sp = arg;

	assert_true(sp->n < 4);
	snprintf(sp->v[sp->n], sizeof(sp->v[0]), "%s", path);
	sp->exact[sp->n++] = exact;
	return 0;
}

/* The paths an entry's change fires watches on, without applying it. */
static void test_entry_paths(void **state)
{
	struct sm_origin o = {7, 1, "h", NULL, 0, 0};
	struct store *st = base();
	struct seen_paths sp = {0};
	struct store_commit cm;
	struct store_txn *tx;
	void *buf;
	size_t len;

	(void)state;
	assert_int_equal(sm_entry_write(&o, "/a/w", "v", 1, &buf, &len), 0);
	assert_int_equal(sm_entry_paths(buf, len, collect, &sp), 0);
	free(buf);
	assert_int_equal(sp.n, 1);
	assert_string_equal(sp.v[0], "/a/w");
	assert_false(sp.exact[0]);

	assert_int_equal(sm_entry_rm(&o, "/b", &buf, &len), 0);
	assert_int_equal(sm_entry_paths(buf, len, collect, &sp), 0);
	free(buf);
	assert_int_equal(sp.n, 2);
	assert_string_equal(sp.v[1], "/b");

	/* a transaction: each node it changed */
	tx = store_txn_new(st, "h");
	assert_non_null(tx);
	assert_int_equal(store_write(st, "h", tx, &dom0, 0, "/a/t1", "1", 1,
				     NULL),
			 0);
	assert_int_equal(store_write(st, "h", tx, &dom0, 0, "/a/t2", "2", 1,
				     NULL),
			 0);
	assert_int_equal(store_txn_export(tx, &cm), 0);
	assert_int_equal(sm_entry_commit(&o, &cm, &buf, &len), 0);
	sp.n = 0;
	assert_int_equal(sm_entry_paths(buf, len, collect, &sp), 0);
	free(buf);
	store_commit_release(&cm);
	store_txn_free(tx);
	assert_int_equal(sp.n, 2);
	assert_string_equal(sp.v[0], "/a/t1");
	assert_string_equal(sp.v[1], "/a/t2");

	/* no path: a no-op; garbage does not decode */
	assert_int_equal(sm_entry_noop(&o, &buf, &len), 0);
	sp.n = 0;
	assert_int_equal(sm_entry_paths(buf, len, collect, &sp), 0);
	free(buf);
	assert_int_equal(sp.n, 0);
	assert_int_equal(sm_entry_paths("\xff\xff\xff", 3, collect, &sp),
			 -EINVAL);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_changed),
		cmocka_unit_test(test_changes_found),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_new_host),
		cmocka_unit_test(test_too_much_is_everything),
		cmocka_unit_test(test_txn_conflict_across_swap),
		cmocka_unit_test(test_txn_no_conflict_across_swap),
		cmocka_unit_test(test_touch),
		cmocka_unit_test(test_entry_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
