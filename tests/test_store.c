/*
 * tests/test_store.c: the deterministic store: semantics of Xen 4.17's
 * cxenstored for privileged and unprivileged callers, transactions,
 * events, atomicity, snapshots, and the hash trie under random load.
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

#include "node/store/store.h"
#include "node/store/store_int.h"
#include "wire/siphash.h"

#define H "host1"

/* The stores of these tests hash under a key of their own. */
static const uint8_t test_key[STORE_HASH_KEY_LEN] = "test_store key!";

/*
 * The whole store is checked after every mutation (store_check.c): each
 * mutating call below goes through checked(), which fails the test with
 * the checker's message on the first violation.
 */
static int checked(int rc, const struct store *st)
{
	char msg[256];

	if (store_check_report(st, msg, sizeof(msg)) != 0)
		fail_msg("store_check after a mutation: %s", msg);
	return rc;
}

#define store_host_init(st, ...) checked(store_host_init(st, __VA_ARGS__), st)
#define store_write(st, ...) checked(store_write(st, __VA_ARGS__), st)
#define store_mkdir(st, ...) checked(store_mkdir(st, __VA_ARGS__), st)
#define store_rm(st, ...) checked(store_rm(st, __VA_ARGS__), st)
#define store_set_perms(st, ...) checked(store_set_perms(st, __VA_ARGS__), st)
#define store_commit(st, ...) checked(store_commit(st, __VA_ARGS__), st)
#define store_domain_introduce(st, ...)                                        \
	checked(store_domain_introduce(st, __VA_ARGS__), st)
#define store_domain_gone(st, ...) checked(store_domain_gone(st, __VA_ARGS__), st)
#define store_domain_set_target(st, ...)                                       \
	checked(store_domain_set_target(st, __VA_ARGS__), st)
#define store_domain_watch(st, ...) checked(store_domain_watch(st, __VA_ARGS__), st)
#define store_domain_unwatch(st, ...)                                          \
	checked(store_domain_unwatch(st, __VA_ARGS__), st)
#define store_domain_reset_watches(st, ...)                                    \
	checked(store_domain_reset_watches(st, __VA_ARGS__), st)
#define store_domain_ring_reset(st, ...)                                       \
	checked(store_domain_ring_reset(st, __VA_ARGS__), st)
#define store_domain_move(st, ...) checked(store_domain_move(st, __VA_ARGS__), st)
#define store_session_record(st, ...)                                          \
	checked(store_session_record(st, __VA_ARGS__), st)
#define store_member_set(st, ...) checked(store_member_set(st, __VA_ARGS__), st)
#define store_member_remove(st, ...)                                           \
	checked(store_member_remove(st, __VA_ARGS__), st)

static struct store_caller priv(void)
{
	struct store_caller c = {.domid = 0,
				 .privileged = true,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static struct store_caller dom(uint32_t domid)
{
	struct store_caller c = {.domid = domid,
				 .privileged = false,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static uint64_t idx = 1;

static struct store *fresh(void)
{
	struct store *st = store_new_keyed(test_key);

	assert_non_null(st);
	assert_int_equal(store_host_init(st, H, idx++), 0);
	return st;
}

static int wr(struct store *st, const struct store_caller *c, const char *p,
	      const char *v)
{
	return store_write(st, H, NULL, c, idx++, p, v, strlen(v), NULL);
}

static int perms(struct store *st, const struct store_caller *c,
		 const char *p, const char *spec)
{
	struct store_perm v[8];
	char buf[128], *tok, *save = NULL;
	uint32_t n = 0;

	strcpy(buf, spec);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		assert_int_equal(store_perm_parse(tok, &v[n++]), 0);
	return store_set_perms(st, H, NULL, c, idx++, p, v, n, NULL);
}

/* Read a value as a NUL-terminated string (static buffer). */
static const char *rd(struct store *st, const struct store_caller *c,
		      const char *p, int *err)
{
	static char buf[4200];
	const char *v;
	size_t len;

	*err = store_read(st, H, NULL, c, p, &v, &len);
	if (*err)
		return NULL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static void check_ok(struct store *st)
{
	const char *what = NULL;

	assert_int_equal(store_check(st, &what), 0);
}

static void test_initial_tree(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	const char *kids;
	size_t len;
	uint64_t gen, nodes, mem;
	const struct store_perm *p;
	uint32_t n;

	assert_int_equal(store_directory(st, H, NULL, &c, "/", &kids, &len,
					 &gen),
			 0);
	assert_int_equal(len, 5);
	assert_memory_equal(kids, "tool", 5);
	assert_int_equal(store_get_perms(st, H, NULL, &c, "/tool/xenstored",
					 &p, &n),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].domid, 0);
	assert_int_equal(p[0].access, 0);
	store_domain_usage(st, H, 0, &nodes, &mem);
	assert_int_equal(nodes, 3);
	assert_int_equal(store_host_init(st, H, 9), -EEXIST);
	check_ok(st);
	store_free(st);
}

static void test_write_read_implicit(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	const char *kids;
	size_t len;
	uint64_t gen;
	int err;

	assert_int_equal(wr(st, &c, "/a/b/c", "hello"), 0);
	assert_string_equal(rd(st, &c, "/a/b/c", &err), "hello");
	assert_string_equal(rd(st, &c, "/a/b", &err), "");
	assert_int_equal(wr(st, &c, "/a/x", "1"), 0);
	assert_int_equal(wr(st, &c, "/a/d", "2"), 0);
	/* creation order, not sorted */
	assert_int_equal(store_directory(st, H, NULL, &c, "/a", &kids, &len,
					 &gen),
			 0);
	assert_int_equal(len, 6);
	assert_memory_equal(kids, "b\0x\0d\0", 6);
	/* values are binary */
	assert_int_equal(store_write(st, H, NULL, &c, idx++, "/bin",
				     "a\0b", 3, NULL),
			 0);
	{
		const char *v;
		size_t l;

		assert_int_equal(store_read(st, H, NULL, &c, "/bin", &v, &l),
				 0);
		assert_int_equal(l, 3);
		assert_memory_equal(v, "a\0b", 3);
	}
	rd(st, &c, "/nope", &err);
	assert_int_equal(err, -ENOENT);
	rd(st, &c, "/a/", &err);
	assert_int_equal(err, -EINVAL);
	rd(st, &c, "/a//b", &err);
	assert_int_equal(err, -EINVAL);
	rd(st, &c, "/a b", &err);
	assert_int_equal(err, -EINVAL);
	rd(st, &c, "@introduceDomain", &err);
	assert_int_equal(err, -EINVAL);
	/* XSA-481 */
	rd(st, &c, "/local/domain/", &err);
	assert_int_equal(err, -EINVAL);
	check_ok(st);
	store_free(st);
}

static void test_generation_is_index(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	const char *kids;
	size_t len;
	uint64_t gen, before;

	assert_int_equal(store_write(st, H, NULL, &c, 100, "/g/a", "", 0,
				     NULL),
			 0);
	assert_int_equal(store_directory(st, H, NULL, &c, "/g", &kids, &len,
					 &gen),
			 0);
	assert_int_equal(gen, 100);
	before = gen;
	/* writing a child's value leaves the parent alone */
	assert_int_equal(store_write(st, H, NULL, &c, 101, "/g/a", "v", 1,
				     NULL),
			 0);
	store_directory(st, H, NULL, &c, "/g", &kids, &len, &gen);
	assert_int_equal(gen, before);
	/* adding a child changes it */
	assert_int_equal(store_write(st, H, NULL, &c, 102, "/g/b", "", 0,
				     NULL),
			 0);
	store_directory(st, H, NULL, &c, "/g", &kids, &len, &gen);
	assert_int_equal(gen, 102);
	store_free(st);
}

static void test_mkdir_rm(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_events ev;
	int err;

	store_events_init(&ev);
	assert_int_equal(wr(st, &c, "/m", "keep"), 0);
	assert_int_equal(store_mkdir(st, H, NULL, &c, idx++, "/m", &ev), 0);
	assert_int_equal(ev.n, 0); /* existing: untouched, no event */
	assert_string_equal(rd(st, &c, "/m", &err), "keep");
	assert_int_equal(store_mkdir(st, H, NULL, &c, idx++, "/m/n/o", &ev),
			 0);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.v[0].path, "/m/n/o");
	store_events_clear(&ev);

	/* rm of a missing node: OK if the parent exists, else ENOENT */
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/m/zz", NULL), 0);
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/m/zz/y", NULL),
			 -ENOENT);
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/", NULL),
			 -EINVAL);

	/* rm fires children first, exact for descendants */
	assert_int_equal(wr(st, &c, "/m/n/p", "x"), 0);
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/m/n", &ev), 0);
	assert_int_equal(ev.n, 3);
	assert_string_equal(ev.v[0].path, "/m/n/o");
	assert_true(ev.v[0].exact);
	assert_string_equal(ev.v[1].path, "/m/n/p");
	assert_true(ev.v[1].exact);
	assert_string_equal(ev.v[2].path, "/m/n");
	assert_false(ev.v[2].exact);
	store_events_clear(&ev);
	rd(st, &c, "/m/n/o", &err);
	assert_int_equal(err, -ENOENT);
	{
		const char *kids;
		size_t len;
		uint64_t gen;

		store_directory(st, H, NULL, &c, "/m", &kids, &len, &gen);
		assert_int_equal(len, 0);
	}
	check_ok(st);
	store_free(st);
}

static void test_perm_strings(void **state)
{
	struct store_perm p;
	char buf[16];

	assert_int_equal(store_perm_parse("r5", &p), 0);
	assert_int_equal(p.access, STORE_PERM_READ);
	assert_int_equal(p.domid, 5);
	assert_int_equal(store_perm_parse("b0x10", &p), 0);
	assert_int_equal(p.domid, 16);
	store_perm_format(&p, buf);
	assert_string_equal(buf, "b16");
	assert_int_equal(store_perm_parse("w-1", &p), 0);
	store_perm_format(&p, buf);
	assert_string_equal(buf, "w-1");
	assert_int_equal(store_perm_parse("x5", &p), -EINVAL);
	assert_int_equal(store_perm_parse("r", &p), -EINVAL);
	assert_int_equal(store_perm_parse("r5z", &p), -EINVAL);
	assert_int_equal(store_perm_parse("", &p), -EINVAL);
}

static void test_unprivileged(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5), d6 = dom(6);
	const struct store_perm *p;
	uint32_t n;
	int err;

	/* libxl-like layout: /local/domain/5 is "n0 r5", data is "n5" */
	assert_int_equal(wr(st, &d0, "/local/domain/5/name", "guest"), 0);
	assert_int_equal(perms(st, &d0, "/local/domain/5", "n0 r5"), 0);
	assert_int_equal(perms(st, &d0, "/local/domain/5/name", "n0 r5"), 0);
	assert_int_equal(store_mkdir(st, H, NULL, &d0, idx++,
				     "/local/domain/5/data", NULL),
			 0);
	assert_int_equal(perms(st, &d0, "/local/domain/5/data", "n5"), 0);

	assert_string_equal(rd(st, &d5, "/local/domain/5/name", &err),
			    "guest");
	/* not writable for dom5 */
	assert_int_equal(wr(st, &d5, "/local/domain/5/name", "x"), -EACCES);
	/* writes in its own dir: new nodes owned by the writer */
	assert_int_equal(wr(st, &d5, "/local/domain/5/data/a/b", "1"), 0);
	assert_int_equal(store_get_perms(st, H, NULL, &d0,
					 "/local/domain/5/data/a", &p, &n),
			 0);
	assert_int_equal(p[0].domid, 5);
	/* dom6 cannot see dom5's data; errno hiding: EACCES, not ENOENT */
	rd(st, &d6, "/local/domain/5/data/a/b", &err);
	assert_int_equal(err, -EACCES);
	rd(st, &d6, "/local/domain/5/data/missing", &err);
	assert_int_equal(err, -EACCES);
	/* dom5 learns ENOENT for a missing node in a readable parent */
	rd(st, &d5, "/local/domain/5/data/missing", &err);
	assert_int_equal(err, -ENOENT);
	/* the root is n0: nothing for guests */
	assert_int_equal(wr(st, &d5, "/evil", "1"), -EACCES);
	assert_int_equal(store_rm(st, H, NULL, &d5, idx++, "/", NULL),
			 -EACCES);
	assert_int_equal(perms(st, &d5, "/", "b5"), -EACCES);
	/* owner may change ACLs but not give the node away (XSA-352) */
	assert_int_equal(perms(st, &d5, "/local/domain/5/data/a", "n5 r6"), 0);
	assert_string_equal(rd(st, &d6, "/local/domain/5/data/a", &err), "");
	assert_int_equal(perms(st, &d5, "/local/domain/5/data/a", "n6"),
			 -EPERM);
	/* first matching ACL entry wins; owner letter is the default */
	assert_int_equal(perms(st, &d0, "/local/domain/5/name",
			       "r0 n6 b6"),
			 0);
	rd(st, &d6, "/local/domain/5/name", &err);
	assert_int_equal(err, -EACCES);
	rd(st, &d5, "/local/domain/5/name", &err);
	assert_int_equal(err, 0);
	/* SET_TARGET: dom7 acts as dom5 */
	{
		struct store_caller d7 = dom(7);

		d7.target = 5;
		assert_int_equal(wr(st, &d7, "/local/domain/5/data/t", "1"),
				 0);
		store_get_perms(st, H, NULL, &d0, "/local/domain/5/data/t", &p,
				&n);
		assert_int_equal(p[0].domid, 7);
	}
	check_ok(st);
	store_free(st);
}

static void test_special_perms(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5);

	assert_int_equal(perms(st, &d5, "@releaseDomain", "n5"), -EACCES);
	assert_int_equal(perms(st, &d0, "@releaseDomain", "n0 r5"), 0);
	assert_int_equal(perms(st, &d0, "@other", "n0"), -EINVAL);
	check_ok(st);
	store_free(st);
}

static void test_node_quota(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5);
	char path[64];
	uint64_t nodes, mem;
	int i, rc = 0;

	d5.quota.nodes = 10;
	assert_int_equal(store_mkdir(st, H, NULL, &d0, idx++, "/q", NULL), 0);
	assert_int_equal(perms(st, &d0, "/q", "n5"), 0); /* owned by 5: 1 */
	for (i = 0; i < 20 && rc == 0; i++) {
		sprintf(path, "/q/n%d", i);
		rc = wr(st, &d5, path, "x");
	}
	assert_int_equal(rc, -ENOSPC);
	store_domain_usage(st, H, 5, &nodes, &mem);
	assert_int_equal(nodes, 10); /* cxenstored 4.17: count < quota */
	/* a multi-level create that hits the quota midway leaves nothing */
	store_rm(st, H, NULL, &d0, idx++, "/q/n0", NULL);
	store_rm(st, H, NULL, &d0, idx++, "/q/n1", NULL);
	assert_int_equal(wr(st, &d5, "/q/deep/a/b", "x"), -ENOSPC);
	{
		int err;

		rd(st, &d0, "/q/deep", &err);
		assert_int_equal(err, -ENOENT);
	}
	store_domain_usage(st, H, 5, &nodes, &mem);
	assert_int_equal(nodes, 8);
	/* privileged writers are not limited, even in a guest's dir */
	assert_int_equal(wr(st, &d0, "/q/dom0made", "x"), 0);
	check_ok(st);
	store_free(st);
}

static void test_node_size_quota(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5);
	char big[2100];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_mkdir(st, H, NULL, &d0, idx++, "/s", NULL), 0);
	assert_int_equal(perms(st, &d0, "/s", "n5"), 0);
	/* record = 24 + 8 + value: 2015 bytes is the largest value */
	big[2016] = '\0';
	assert_int_equal(wr(st, &d5, "/s/v", big), -ENOSPC);
	big[2015] = '\0';
	assert_int_equal(wr(st, &d5, "/s/v", big), 0);
	big[2015] = 'x';
	big[2100 - 1] = '\0';
	assert_int_equal(wr(st, &d0, "/s/w", big), 0); /* privileged */
	check_ok(st);
	store_free(st);
}

static void test_path_max(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	char path[3000];
	int err;

	/* measured after /local/domain/<id>/ */
	strcpy(path, "/local/domain/1/");
	memset(path + 16, 'a', 2048);
	path[16 + 2048] = '\0';
	assert_int_equal(wr(st, &c, path, ""), 0);
	strcat(path, "b");
	assert_int_equal(wr(st, &c, path, ""), -EINVAL);
	c.quota.path_max = 10;
	rd(st, &c, "/abcdefghijk", &err);
	assert_int_equal(err, -EINVAL);
	store_free(st);
}

static struct store_txn *txn(struct store *st)
{
	struct store_txn *tx = store_txn_new(st, H);

	assert_non_null(tx);
	return tx;
}

static int commit(struct store *st, struct store_txn *tx,
		  const struct store_caller *c, struct store_events *ev)
{
	struct store_commit cm;
	int rc;

	assert_int_equal(store_txn_export(tx, &cm), 0);
	rc = store_commit(st, H, c, idx++, &cm, ev);
	store_commit_release(&cm);
	store_txn_free(tx);
	return rc;
}

static void test_txn_isolation_and_commit(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_txn *tx;
	struct store_events ev;
	const char *v;
	size_t len;
	int err;

	store_events_init(&ev);
	assert_int_equal(wr(st, &c, "/t/a", "old"), 0);
	tx = txn(st);
	assert_int_equal(store_read(st, H, tx, &c, "/t/a", &v, &len), 0);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/t/a", "new", 3, NULL),
			 0);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/t/b/c", "x", 1,
				     NULL),
			 0);
	/* outside sees the old state */
	assert_string_equal(rd(st, &c, "/t/a", &err), "old");
	rd(st, &c, "/t/b", &err);
	assert_int_equal(err, -ENOENT);
	/* inside sees its own writes */
	assert_int_equal(store_read(st, H, tx, &c, "/t/b/c", &v, &len), 0);
	assert_int_equal(commit(st, tx, &c, &ev), 0);
	assert_string_equal(rd(st, &c, "/t/a", &err), "new");
	assert_string_equal(rd(st, &c, "/t/b/c", &err), "x");
	/* one event per modified node that fired, first-access order */
	assert_int_equal(ev.n, 2);
	assert_string_equal(ev.v[0].path, "/t/a");
	assert_string_equal(ev.v[1].path, "/t/b/c");
	store_events_clear(&ev);
	check_ok(st);
	store_free(st);
}

static void test_txn_conflicts(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_txn *tx, *t2;
	const char *v;
	size_t len;
	uint64_t gen;
	int err;

	assert_int_equal(wr(st, &c, "/c/a", "1"), 0);

	/* "ta err": read in tx, write outside, write in tx: EAGAIN */
	tx = txn(st);
	assert_int_equal(store_read(st, H, tx, &c, "/c/a", &v, &len), 0);
	assert_int_equal(wr(st, &c, "/c/a", "outside"), 0);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/c/a", "inside", 6,
				     NULL),
			 0);
	assert_int_equal(commit(st, tx, &c, NULL), -EAGAIN);
	assert_string_equal(rd(st, &c, "/c/a", &err), "outside");

	/* two transactions adding children under one parent conflict */
	tx = txn(st);
	t2 = txn(st);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/c/x", "", 0, NULL),
			 0);
	assert_int_equal(store_write(st, H, t2, &c, 0, "/c/y", "", 0, NULL),
			 0);
	assert_int_equal(commit(st, tx, &c, NULL), 0);
	assert_int_equal(commit(st, t2, &c, NULL), -EAGAIN);

	/* a read of a missing node conflicts with its creation */
	tx = txn(st);
	assert_int_equal(store_read(st, H, tx, &c, "/c/new", &v, &len),
			 -ENOENT);
	assert_int_equal(wr(st, &c, "/c/new", "1"), 0);
	assert_int_equal(commit(st, tx, &c, NULL), -EAGAIN);

	/* DIRECTORY in a tx conflicts with a concurrent child removal */
	tx = txn(st);
	assert_int_equal(store_directory(st, H, tx, &c, "/c", &v, &len, &gen),
			 0);
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/c/x", NULL), 0);
	assert_int_equal(commit(st, tx, &c, NULL), -EAGAIN);

	/* unrelated outside writes do not conflict; empty tx commits */
	tx = txn(st);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/c/a", "2", 1, NULL),
			 0);
	assert_int_equal(wr(st, &c, "/elsewhere", "1"), 0);
	assert_int_equal(commit(st, tx, &c, NULL), 0);
	assert_int_equal(commit(st, txn(st), &c, NULL), 0);

	/* XSA-440: two transactions deleting the same nodes */
	assert_int_equal(wr(st, &c, "/d/1", ""), 0);
	assert_int_equal(wr(st, &c, "/d/2", ""), 0);
	tx = txn(st);
	t2 = txn(st);
	assert_int_equal(store_rm(st, H, tx, &c, 0, "/d", NULL), 0);
	assert_int_equal(store_rm(st, H, t2, &c, 0, "/d", NULL), 0);
	assert_int_equal(commit(st, tx, &c, NULL), 0);
	assert_int_equal(commit(st, t2, &c, NULL), -EAGAIN);
	check_ok(st);
	store_free(st);
}

static void test_txn_create_delete_and_quota(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5);
	struct store_txn *tx;
	uint64_t nodes, mem;
	char path[32];
	int i;

	assert_int_equal(store_mkdir(st, H, NULL, &d0, idx++, "/q", NULL), 0);
	assert_int_equal(perms(st, &d0, "/q", "n5"), 0);
	/* XSA-421: create+delete in one tx leaves counts right */
	tx = txn(st);
	for (i = 0; i < 5; i++) {
		sprintf(path, "/q/t%d", i);
		assert_int_equal(store_write(st, H, tx, &d5, 0, path, "", 0,
					     NULL),
				 0);
	}
	assert_int_equal(store_rm(st, H, tx, &d5, 0, "/q/t0", NULL), 0);
	assert_int_equal(commit(st, tx, &d5, NULL), 0);
	store_domain_usage(st, H, 5, &nodes, &mem);
	assert_int_equal(nodes, 5); /* /q + 4 */
	check_ok(st);

	/* commit-time node quota: count + delta >= quota fails */
	d5.quota.nodes = 7;
	tx = txn(st);
	assert_int_equal(store_write(st, H, tx, &d5, 0, "/q/u1", "", 0, NULL),
			 0);
	assert_int_equal(store_write(st, H, tx, &d5, 0, "/q/u2", "", 0, NULL),
			 0);
	assert_int_equal(commit(st, tx, &d5, NULL), -ENOSPC);

	/* transaction-nodes quota fails the transaction */
	d5.quota.transaction_nodes = 3;
	tx = txn(st);
	{
		const char *v;
		size_t len;

		assert_int_equal(store_read(st, H, tx, &d5, "/q/t1", &v, &len),
				 0);
		assert_int_equal(store_read(st, H, tx, &d5, "/q/t2", &v, &len),
				 0);
		assert_int_equal(store_read(st, H, tx, &d5, "/q/t3", &v, &len),
				 0);
		assert_int_equal(store_read(st, H, tx, &d5, "/q/t4", &v, &len),
				 -ENOSPC);
	}
	assert_true(store_txn_failed(tx));
	assert_int_equal(commit(st, tx, &d5, NULL), -ENOMEM);
	check_ok(st);
	store_free(st);
}

static void test_txn_rm_events_order(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_events ev;
	struct store_txn *tx;

	store_events_init(&ev);
	assert_int_equal(wr(st, &c, "/r/a/b", "1"), 0);
	tx = txn(st);
	assert_int_equal(store_rm(st, H, tx, &c, 0, "/r/a", NULL), 0);
	assert_int_equal(commit(st, tx, &c, &ev), 0);
	/* fired in first-access order: /r/a (subtree), then /r/a/b exact */
	assert_int_equal(ev.n, 2);
	assert_string_equal(ev.v[0].path, "/r/a");
	assert_false(ev.v[0].exact);
	assert_string_equal(ev.v[1].path, "/r/a/b");
	assert_true(ev.v[1].exact);
	store_events_clear(&ev);
	check_ok(st);
	store_free(st);
}

static void test_set_perms_events(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_perm p[2];
	struct store_events ev;

	store_events_init(&ev);
	assert_int_equal(wr(st, &c, "/p", ""), 0);
	store_perm_parse("n0", &p[0]);
	store_perm_parse("r5", &p[1]);
	assert_int_equal(store_set_perms(st, H, NULL, &c, idx++, "/p", p, 2,
					 &ev),
			 0);
	assert_int_equal(ev.n, 1);
	assert_true(ev.v[0].has_old);
	assert_int_equal(ev.v[0].old.n, 1);
	assert_true(ev.v[0].has_node);
	assert_int_equal(ev.v[0].node.n, 2);
	assert_true(ev.v[0].has_parent);
	store_events_clear(&ev);
	store_free(st);
}

/*
 * SET_PERMS twice in a transaction on a node it created: the second
 * replaces the transaction's own copy of the node, which must not be read
 * after it is gone (found by ASan under xsbench's boot trace, as libxl
 * sets the permissions of what it creates in the same transaction).
 */
static void test_txn_set_perms_twice(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	struct store_perm p[3];
	struct store_txn *tx;
	struct store_events ev;
	const struct store_perm *got;
	uint32_t n;
	int err;

	store_events_init(&ev);
	tx = txn(st);
	assert_int_equal(store_write(st, H, tx, &c, 0, "/d/x", "v", 1, NULL),
			 0);
	store_perm_parse("n0", &p[0]);
	store_perm_parse("r5", &p[1]);
	store_perm_parse("b7", &p[2]);
	assert_int_equal(store_set_perms(st, H, tx, &c, 0, "/d/x", p, 2, NULL),
			 0);
	assert_int_equal(store_set_perms(st, H, tx, &c, 0, "/d/x", p, 3, NULL),
			 0);
	assert_int_equal(store_set_perms(st, H, tx, &c, 0, "/d/x", p, 1, NULL),
			 0);
	assert_int_equal(commit(st, tx, &c, &ev), 0);
	assert_int_equal(store_get_perms(st, H, NULL, &c, "/d/x", &got, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rd(st, &c, "/d/x", &err), "v");
	store_events_clear(&ev);
	check_ok(st);
	store_free(st);
}

static void test_rollback(void **state)
{
	struct store *st = fresh();
	struct store_caller d0 = priv(), d5 = dom(5);
	const char *what;
	struct store_events ev;

	store_events_init(&ev);
	assert_int_equal(store_mkdir(st, H, NULL, &d0, idx++, "/z", NULL), 0);
	assert_int_equal(perms(st, &d0, "/z", "n5"), 0);
	d5.quota.nodes = 3; /* /z plus two more */
	assert_int_equal(store_write(st, H, NULL, &d5, idx++, "/z/a/b/c",
				     "", 0, &ev),
			 -ENOSPC);
	assert_int_equal(ev.n, 0);
	assert_int_equal(store_check(st, &what), 0);
	assert_int_equal(store_node_count(st, H), 4);
	store_free(st);
}

static void test_sessions(void **state)
{
	struct store *st = fresh();
	uint64_t seq;
	int r;

	assert_int_equal(store_session_lookup(st, 7, 1, &r), STORE_NEW);
	assert_int_equal(store_session_record(st, 7, 1, -EACCES), 0);
	assert_int_equal(store_session_lookup(st, 7, 1, &r), STORE_SEEN);
	assert_int_equal(r, -EACCES);
	assert_int_equal(store_session_lookup(st, 7, 2, &r), STORE_NEW);
	assert_int_equal(store_session_record(st, 3, 10, 0), 0);
	assert_int_equal(store_session_last(st, 3), 10);
	assert_int_equal(store_session_last(st, 7), 1);
	/* recent results are kept, old ones are known to be seen only */
	for (seq = 2; seq < 2 + STORE_SESSION_WINDOW + 10; seq++)
		assert_int_equal(store_session_record(st, 7, seq, -(int)(seq % 7)),
				 0);
	assert_int_equal(store_session_lookup(st, 7, seq - 1, &r), STORE_SEEN);
	assert_int_equal(r, -(int)((seq - 1) % 7));
	assert_int_equal(store_session_lookup(st, 7, 5, &r),
			 STORE_SEEN_FORGOTTEN);
	/* gaps are fine */
	assert_int_equal(store_session_record(st, 7, seq + 100, 0), 0);
	assert_int_equal(store_session_lookup(st, 7, seq + 50, &r),
			 STORE_SEEN_FORGOTTEN);
	store_free(st);
}

static void test_members(void **state)
{
	struct store *st = fresh();

	assert_int_equal(store_member_set(st, 2, "host2", "r2", "p2"), 0);
	assert_int_equal(store_member_set(st, 1, "host1", "r1", "p1"), 0);
	assert_int_equal(store_member_set(st, 3, "host1", "r3", "p3"), -EEXIST);
	assert_int_equal(store_member_count(st), 2);
	assert_int_equal(store_member_at(st, 0)->id, 1);
	assert_string_equal(store_member_by_name(st, "host2")->peer_address,
			    "p2");
	assert_int_equal(store_member_set(st, 2, "host2", "r2b", "p2b"), 0);
	assert_string_equal(store_member_by_id(st, 2)->raft_address, "r2b");
	assert_int_equal(store_member_remove(st, 1), 0);
	assert_int_equal(store_member_remove(st, 1), -ENOENT);
	assert_null(store_member_by_name(st, "host1"));
	store_free(st);
}

/* A walk that rebuilds into another store, and one that serialises. */
struct rebuild {
	struct store *dst;
	char *text;
	size_t len, cap;
};

static void emit(struct rebuild *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->text = realloc(r->text, r->cap);
	}
	memcpy(r->text + r->len, p, n);
	r->len += n;
}

static int rb_begin(void *arg, uint64_t applied, size_t nh, size_t ns)
{
	struct rebuild *r = arg;

	r->dst = store_restore_begin(test_key, applied);
	emit(r, &applied, sizeof(applied));
	return r->dst ? 0 : -ENOMEM;
}

static int rb_session(void *arg, uint64_t o, uint64_t s, int res)
{
	struct rebuild *r = arg;

	emit(r, &o, 8);
	emit(r, &s, 8);
	return store_restore_session(r->dst, o, s, res);
}

static int rb_host(void *arg, const char *name)
{
	struct rebuild *r = arg;

	emit(r, name, strlen(name) + 1);
	return store_restore_host(r->dst, name);
}

static int rb_node(void *arg, const char *path, uint64_t gen,
		   const struct store_perm *p, uint32_t np, const char *v,
		   size_t vl, const char *k, size_t kl)
{
	struct rebuild *r = arg;

	emit(r, path, strlen(path) + 1);
	emit(r, &gen, 8);
	emit(r, p, np * sizeof(*p));
	emit(r, v, vl);
	emit(r, k, kl);
	return store_restore_node(r->dst, path, gen, p, np, v, vl, k, kl);
}

static int rb_member(void *arg, const struct store_member *m)
{
	struct rebuild *r = arg;

	emit(r, &m->id, 8);
	emit(r, m->name, strlen(m->name) + 1);
	return store_restore_member(r->dst, m);
}

static int rb_domain(void *arg, const struct store_domain *d)
{
	struct rebuild *r = arg;

	emit(r, &d->domid, 4);
	emit(r, &d->ring_id, 8);
	return store_restore_domain(r->dst, d);
}

static const struct store_walk_ops rb_ops = {.begin = rb_begin,
					     .session = rb_session,
					     .member = rb_member,
					     .host = rb_host,
					     .node = rb_node,
					     .domain = rb_domain};

static void test_snapshot_roundtrip(void **state)
{
	struct store *st = fresh(), *copy;
	struct store_caller c = priv(), d5 = dom(5);
	struct rebuild a = {0}, b = {0};
	struct store_pin *pin;
	uint64_t n1, m1, n2, m2;
	int err;

	assert_int_equal(store_host_init(st, "host2", idx++), 0);
	assert_int_equal(wr(st, &c, "/x/y/z", "1"), 0);
	assert_int_equal(perms(st, &c, "/x", "n5 r6"), 0);
	assert_int_equal(wr(st, &d5, "/x/mine", "2"), 0);
	assert_int_equal(store_session_record(st, 4, 99, 0), 0);
	assert_int_equal(store_member_set(st, 9, "host1", "r", "p"), 0);
	store_set_applied_index(st, idx);

	pin = store_pin(st);
	assert_non_null(pin);
	/* mutations after the pin are not in it */
	assert_int_equal(wr(st, &c, "/after", "1"), 0);
	assert_int_equal(store_pin_walk(pin, &rb_ops, &a), 0);
	store_unpin(pin);
	copy = a.dst;
	assert_int_equal(store_restore_finish(copy), 0);
	rd(copy, &c, "/after", &err);
	assert_int_equal(err, -ENOENT);
	assert_string_equal(rd(copy, &c, "/x/mine", &err), "2");
	store_domain_usage(copy, H, 5, &n1, &m1);
	assert_int_equal(n1, 2);
	assert_true(store_host_exists(copy, "host2"));
	assert_int_equal(store_session_last(copy, 4), 99);
	assert_string_equal(store_member_by_id(copy, 9)->name, "host1");

	/* the rebuilt store walks to the same bytes */
	store_set_applied_index(st, idx); /* as sm_apply does first */
	store_rm(st, H, NULL, &c, idx++, "/after", NULL);
	pin = store_pin(copy);
	assert_int_equal(store_pin_walk(pin, &rb_ops, &b), 0);
	store_unpin(pin);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.text, b.text, a.len);
	store_domain_usage(b.dst, H, 5, &n2, &m2);
	assert_int_equal(store_restore_finish(b.dst), 0);
	store_domain_usage(b.dst, H, 5, &n2, &m2);
	assert_int_equal(n1, n2);
	assert_int_equal(m1, m2);
	store_free(b.dst);
	free(a.text);
	free(b.text);
	store_free(copy);
	store_free(st);
}

/* The domain registry: introduction, watches, and a domain going away. */
static void test_domain_registry(void **state)
{
	struct store *st = fresh(), *copy;
	struct store_caller c = priv(), d5 = dom(5), d6 = dom(6);
	const struct store_domain *sd;
	const struct store_perm *p;
	struct store_events ev;
	struct rebuild a = {0};
	struct store_pin *pin;
	uint64_t n, m;
	uint32_t np;
	int err;

	store_events_init(&ev);
	assert_null(store_domain_get(st, H, 5));
	assert_int_equal(store_domain_introduce(st, H, 5, 0xfeff, 1005, 40,
						true, &ev),
			 0);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.v[0].path, "@introduceDomain");
	assert_true(ev.v[0].exact && ev.v[0].has_node);
	store_events_clear(&ev);
	assert_int_equal(store_domain_introduce(st, H, 6, 0, 1006, 41, true,
						NULL),
			 0);
	sd = store_domain_get(st, H, 5);
	assert_non_null(sd);
	assert_int_equal(sd->port, 1005);
	assert_int_equal(sd->ring_id, 40);

	/* watches: duplicates, then the quota (more than max: E2BIG) */
	assert_int_equal(store_domain_watch(st, H, 5, "data", "a", 2), 0);
	assert_int_equal(store_domain_watch(st, H, 5, "data", "a", 2),
			 -EEXIST);
	assert_int_equal(store_domain_watch(st, H, 5, "data", "b", 2), 0);
	assert_int_equal(store_domain_watch(st, H, 5, "@releaseDomain", "c",
						2),
			 0);
	assert_int_equal(store_domain_watch(st, H, 5, "x", "d", 2), -E2BIG);
	assert_int_equal(store_domain_unwatch(st, H, 5, "data", "b"), 0);
	assert_int_equal(store_domain_unwatch(st, H, 5, "data", "b"),
			 -ENOENT);
	assert_int_equal(store_domain_get(st, H, 5)->nwatches, 2);
	assert_int_equal(store_domain_set_target(st, H, 6, 5), 0);
	assert_int_equal(store_domain_set_target(st, H, 6, 9), -ENOENT);
	assert_int_equal(store_session_record(st, STORE_RING_ORIGIN(40), 3, 0),
			 0);

	/* re-introduction: new session, watches gone, no event */
	assert_int_equal(store_domain_introduce(st, H, 5, 0xfeff, 2005, 50,
						true, &ev),
			 0);
	assert_int_equal(ev.n, 0);
	sd = store_domain_get(st, H, 5);
	assert_int_equal(sd->ring_id, 50);
	assert_int_equal(sd->nwatches, 0);
	assert_int_equal(store_domain_watch(st, H, 5, "data", "a", 0), 0);
	assert_int_equal(store_session_record(st, STORE_RING_ORIGIN(50), 1, 0),
			 0);

	/* nodes of domain 5, and nodes that name it */
	assert_int_equal(wr(st, &c, "/local/domain/5/data", ""), 0);
	assert_int_equal(perms(st, &c, "/local/domain/5/data", "n5"), 0);
	assert_int_equal(wr(st, &d5, "/local/domain/5/data/x", "1"), 0);
	assert_int_equal(wr(st, &c, "/local/domain/5/name", "g"), 0);
	assert_int_equal(wr(st, &c, "/shared", ""), 0);
	assert_int_equal(perms(st, &c, "/shared", "n0 b5 r6"), 0);
	assert_int_equal(wr(st, &c, "/other5", "o"), 0);
	assert_int_equal(perms(st, &c, "/other5", "n5"), 0);
	assert_string_equal(rd(st, &d5, "/shared", &err), "");
	assert_int_equal(perms(st, &c, "@releaseDomain", "n5 r6 r5"), 0);

	/* the snapshot carries the registry */
	pin = store_pin(st);
	assert_int_equal(store_pin_walk(pin, &rb_ops, &a), 0);
	store_unpin(pin);
	copy = a.dst;
	free(a.text);
	assert_int_equal(store_restore_finish(copy), 0);
	sd = store_domain_get(copy, H, 5);
	assert_non_null(sd);
	assert_int_equal(sd->ring_id, 50);
	assert_int_equal(sd->nwatches, 1);
	assert_string_equal(sd->watches[0].path, "data");
	assert_int_equal(store_domain_get(copy, H, 6)->target, 5);
	assert_int_equal(store_session_last(copy, STORE_RING_ORIGIN(50)), 1);
	store_free(copy);

	/* domain 5 goes */
	assert_int_equal(store_domain_gone(st, H, 5, 60, &ev), 0);
	assert_null(store_domain_get(st, H, 5));
	assert_int_equal(store_session_last(st, STORE_RING_ORIGIN(50)), 0);
	/* its nodes went, with their subtrees; dom0's stayed */
	rd(st, &c, "/local/domain/5/data/x", &err);
	assert_int_equal(err, -ENOENT);
	rd(st, &c, "/local/domain/5/data", &err);
	assert_int_equal(err, -ENOENT);
	rd(st, &c, "/other5", &err);
	assert_int_equal(err, -ENOENT);
	assert_string_equal(rd(st, &c, "/local/domain/5/name", &err), "g");
	store_domain_usage(st, H, 5, &n, &m);
	assert_int_equal(n, 0);
	/* entries naming it elsewhere are kept but ignored (XSA-322) */
	assert_int_equal(store_get_perms(st, H, NULL, &c, "/shared", &p, &np),
			 0);
	assert_int_equal(np, 3);
	assert_int_equal(p[1].domid, 5);
	assert_true(p[1].ignore);
	assert_false(p[2].ignore);
	rd(st, &d5, "/shared", &err);
	assert_int_equal(err, -EACCES);
	assert_string_equal(rd(st, &d6, "/shared", &err), "");
	/* events: the deleted nodes, then @releaseDomain last, with the
	 * special node's permissions: it left them, dom0 owns it now */
	assert_true(ev.n >= 2);
	assert_string_equal(ev.v[ev.n - 1].path, "@releaseDomain");
	assert_true(ev.v[ev.n - 1].has_node);
	assert_int_equal(ev.v[ev.n - 1].node.n, 2);
	assert_int_equal(ev.v[ev.n - 1].node.v[0].domid, 0);
	assert_int_equal(ev.v[ev.n - 1].node.v[1].domid, 6);
	store_events_clear(&ev);
	assert_int_equal(store_domain_gone(st, H, 5, 61, NULL), -ENOENT);
	check_ok(st);
	store_free(st);
}

/* A domain's tree for the move tests, on host h. */
static void guest_tree(struct store *st, const char *h, uint32_t domid)
{
	struct store_caller c = priv(), g = dom(domid);
	char p[128], v[128];

	snprintf(p, sizeof(p), "/local/domain/%u", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, "", 0, NULL),
			 0);
	snprintf(v, sizeof(v), "n0 r%u", domid);
	{
		struct store_perm pv[2];

		assert_int_equal(store_perm_parse("n0", &pv[0]), 0);
		snprintf(v, sizeof(v), "r%u", domid);
		assert_int_equal(store_perm_parse(v, &pv[1]), 0);
		assert_int_equal(store_set_perms(st, h, NULL, &c, idx++, p, pv,
						 2, NULL),
				 0);
		snprintf(p, sizeof(p), "/local/domain/%u/data", domid);
		assert_int_equal(store_write(st, h, NULL, &c, idx++, p, "", 0,
					     NULL),
				 0);
		snprintf(v, sizeof(v), "n%u", domid);
		assert_int_equal(store_perm_parse(v, &pv[0]), 0);
		assert_int_equal(store_set_perms(st, h, NULL, &c, idx++, p, pv,
						 1, NULL),
				 0);
	}
	snprintf(p, sizeof(p), "/local/domain/%u/data/mine", domid);
	assert_int_equal(store_write(st, h, NULL, &g, idx++, p, "guest", 5,
				     NULL),
			 0);
	snprintf(p, sizeof(p), "/local/domain/%u/vm", domid);
	snprintf(v, sizeof(v), "/vm/uuid-%u", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, v, strlen(v),
				     NULL),
			 0);
	snprintf(p, sizeof(p), "/vm/uuid-%u/name", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, "g", 1, NULL),
			 0);
	snprintf(p, sizeof(p), "/local/domain/%u/self", domid);
	snprintf(v, sizeof(v), "/local/domain/%u/data/mine", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, v, strlen(v),
				     NULL),
			 0);
	snprintf(p, sizeof(p), "/libxl/%u/type", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, "pv", 2, NULL),
			 0);
}

static bool has_event(const struct store_events *ev, const char *path)
{
	size_t i;

	for (i = 0; i < ev->n; i++)
		if (strcmp(ev->v[i].path, path) == 0)
			return true;
	return false;
}

static void test_domain_move(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv(), g7 = dom(7);
	struct store_move m = {.src_host = H, .dst_host = "host2",
			       .src_domid = 5, .dst_domid = 7};
	struct store_events es, ed;
	const struct store_perm *p;
	uint64_t n, mem;
	uint32_t np;
	int err;

	store_events_init(&es);
	store_events_init(&ed);
	assert_int_equal(store_host_init(st, "host2", idx++), 0);
	guest_tree(st, H, 5);
	assert_int_equal(store_domain_introduce(st, H, 5, 1, 1005, idx++, true,
						NULL),
			 0);
	assert_int_equal(store_write(st, "host2", NULL, &c, idx++,
				     "/local/domain/0/x", "", 0, NULL),
			 0);

	/* refusals first: nothing changes */
	m.src_domid = 6;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), -ENOENT);
	m.src_domid = 5;
	m.dst_host = "nohost";
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), -ENOENT);
	m.dst_host = H;
	m.dst_domid = 5;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), -EINVAL);
	m.dst_host = "host2";
	m.dst_domid = 7;
	m.max_nodes = 1;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), -ENOSPC);
	m.max_nodes = 1000;
	{
		const char *bad[] = {"/local/domain/5/data"};

		m.subtrees = bad;
		m.nsubtrees = 1;
		assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed),
				 -EINVAL);
		bad[0] = "/missing";
		assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed),
				 -ENOENT);
		m.nsubtrees = 0;
	}
	assert_int_equal(es.n + ed.n, 0);
	assert_non_null(store_domain_get(st, H, 5));
	check_ok(st);

	/* the move */
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), 0);
	{
		const char *v;
		size_t vl;

		assert_int_equal(store_read(st, "host2", NULL, &g7,
					    "/local/domain/7/data/mine", &v,
					    &vl),
				 0);
		assert_int_equal(vl, 5);
		assert_memory_equal(v, "guest", 5);
		/* a value naming the old home names the new one */
		assert_int_equal(store_read(st, "host2", NULL, &c,
					    "/local/domain/7/self", &v, &vl),
				 0);
		assert_int_equal(vl, strlen("/local/domain/7/data/mine"));
		assert_memory_equal(v, "/local/domain/7/data/mine", vl);
		/* companions */
		assert_int_equal(store_read(st, "host2", NULL, &c,
					    "/vm/uuid-5/name", &v, &vl),
				 0);
		assert_int_equal(store_read(st, "host2", NULL, &c,
					    "/libxl/7/type", &v, &vl),
				 0);
	}
	/* owners and ACLs name the new domid */
	assert_int_equal(store_get_perms(st, "host2", NULL, &c,
					 "/local/domain/7", &p, &np),
			 0);
	assert_int_equal(np, 2);
	assert_int_equal(p[0].domid, 0);
	assert_int_equal(p[1].domid, 7);
	assert_int_equal(store_get_perms(st, "host2", NULL, &c,
					 "/local/domain/7/data/mine", &p, &np),
			 0);
	assert_int_equal(p[0].domid, 7);
	store_domain_usage(st, "host2", 7, &n, &mem);
	assert_int_equal(n, 2); /* data and data/mine */
	store_domain_usage(st, H, 5, &n, &mem);
	assert_int_equal(n, 0);
	/* the source is gone, and the domain with it */
	rd(st, &c, "/local/domain/5", &err);
	assert_int_equal(err, -ENOENT);
	rd(st, &c, "/vm/uuid-5", &err);
	assert_int_equal(err, -ENOENT);
	rd(st, &c, "/libxl/5", &err);
	assert_int_equal(err, -ENOENT);
	assert_null(store_domain_get(st, H, 5));
	/* watchers: removal and @releaseDomain on the source, new nodes on
	 * the destination */
	assert_true(has_event(&es, "/local/domain/5"));
	assert_true(has_event(&es, "@releaseDomain"));
	assert_true(has_event(&ed, "/local/domain/7"));
	assert_true(has_event(&ed, "/local/domain/7/data/mine"));
	assert_true(has_event(&ed, "/vm/uuid-5"));
	assert_false(has_event(&ed, "/local/domain/5"));
	store_events_clear(&es);
	store_events_clear(&ed);
	check_ok(st);

	/* back again, merging into a destination the toolstack made */
	guest_tree(st, H, 9);
	assert_int_equal(store_write(st, H, NULL, &c, idx++,
				     "/local/domain/9/data/mine", "new", 3,
				     NULL),
			 0);
	m.src_host = "host2";
	m.src_domid = 7;
	m.dst_host = H;
	m.dst_domid = 9;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), -EEXIST);
	assert_int_equal(store_write(st, "host2", NULL, &c, idx++,
				     "/local/domain/7/data/extra", "x", 1,
				     NULL),
			 0);
	m.merge = true;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), 0);
	assert_string_equal(rd(st, &c, "/local/domain/9/data/mine", &err),
			    "new");
	assert_string_equal(rd(st, &c, "/local/domain/9/data/extra", &err),
			    "x");
	{
		const char *v;
		size_t vl;

		assert_int_equal(store_read(st, "host2", NULL, &c,
					    "/local/domain/7", &v, &vl),
				 -ENOENT);
	}
	store_events_clear(&es);
	store_events_clear(&ed);
	check_ok(st);

	/* the same host, another domid */
	m.src_host = m.dst_host = H;
	m.src_domid = 9;
	m.dst_domid = 11;
	m.merge = false;
	assert_int_equal(store_domain_move(st, &m, idx++, &es, &ed), 0);
	assert_string_equal(rd(st, &c, "/local/domain/11/data/extra", &err),
			    "x");
	assert_string_equal(rd(st, &c, "/libxl/11/type", &err), "pv");
	rd(st, &c, "/local/domain/9", &err);
	assert_int_equal(err, -ENOENT);
	store_events_clear(&es);
	store_events_clear(&ed);
	check_ok(st);
	store_free(st);
}

/* The same moves on two replicas leave the same bytes. */
static void test_domain_move_deterministic(void **state)
{
	struct store *a = store_new_keyed(test_key),
		     *b = store_new_keyed(test_key);
	struct store_move m = {.src_host = H, .dst_host = "host2",
			       .src_domid = 3, .dst_domid = 4};
	struct rebuild ra = {0}, rb = {0};
	struct store_pin *pin;
	uint64_t start = idx;
	int k;

	for (k = 0; k < 2; k++) {
		struct store *st = k ? b : a;

		idx = start;
		assert_int_equal(store_host_init(st, H, idx++), 0);
		assert_int_equal(store_host_init(st, "host2", idx++), 0);
		guest_tree(st, H, 3);
		assert_int_equal(store_domain_move(st, &m, idx++, NULL, NULL),
				 0);
		pin = store_pin(st);
		assert_int_equal(store_pin_walk(pin, &rb_ops, k ? &rb : &ra),
				 0);
		store_unpin(pin);
	}
	assert_int_equal(ra.len, rb.len);
	assert_memory_equal(ra.text, rb.text, ra.len);
	store_free(ra.dst);
	store_free(rb.dst);
	free(ra.text);
	free(rb.text);
	store_free(a);
	store_free(b);
}

static void test_deep_tree(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv();
	char path[2100];
	size_t len = 0;
	int i;

	/* XSA-418: ~1000 levels, removed without recursion */
	for (i = 0; i < 1000; i++) {
		path[len++] = '/';
		path[len++] = 'a';
	}
	path[len] = '\0';
	assert_int_equal(wr(st, &c, path, "deep"), 0);
	check_ok(st);
	assert_int_equal(store_rm(st, H, NULL, &c, idx++, "/a", NULL), 0);
	assert_int_equal(store_node_count(st, H), 3);
	check_ok(st);
	store_free(st);
}

/* The trie against a trivial model, with pinned versions kept alive. */
static void test_hamt_random(void **state)
{
	enum { N = 3000, OPS = 40000 };
	static int model[N];
	struct hamt_node *root = NULL, *pinned = NULL;
	static int pinned_model[N];
	unsigned int seed = 12345;
	char key[32];
	int i, k, op;

	memset(model, 0, sizeof(model));
	for (i = 0; i < OPS; i++) {
		seed = seed * 1103515245 + 12345;
		k = (int)((seed >> 8) % N);
		op = (int)((seed >> 4) % 3);
		sprintf(key, "/k/%d", k);
		if (op < 2) {
			struct snode *n = snode_new(
				key, strlen(key), siphash64(store_hash_key_default, key, strlen(key)),
				(uint64_t)i, &(struct store_perm){0}, 1, NULL,
				0, NULL, 0);

			assert_int_equal(hamt_set(&root, n), 0);
			model[k] = i + 1;
		} else {
			int rc = hamt_del(&root, key, strlen(key),
					  siphash64(store_hash_key_default, key, strlen(key)));

			assert_int_equal(rc, model[k] ? 0 : -ENOENT);
			model[k] = 0;
		}
		if (i % 1000 == 0) {
			const char *what = NULL;

			assert_int_equal(hamt_check(root, store_hash_key_default,
						    &what), 0);
			assert_int_equal(hamt_check(pinned,
						    store_hash_key_default,
						    &what), 0);
		}
		if (i == OPS / 2) {
			pinned = root;
			hamt_ref(pinned);
			memcpy(pinned_model, model, sizeof(model));
		}
	}
	for (k = 0; k < N; k++) {
		const struct snode *n;

		sprintf(key, "/k/%d", k);
		n = hamt_get(root, key, strlen(key),
			     siphash64(store_hash_key_default, key, strlen(key)));
		if (model[k])
			assert_int_equal(n->generation, model[k] - 1);
		else
			assert_null(n);
		n = hamt_get(pinned, key, strlen(key),
			     siphash64(store_hash_key_default, key, strlen(key)));
		if (pinned_model[k])
			assert_int_equal(n->generation, pinned_model[k] - 1);
		else
			assert_null(n);
	}
	hamt_unref(pinned);
	hamt_unref(root);
}

/* A store whose check fails: the message, or NULL if the check passes. */
static const char *violation(const struct store *st)
{
	static char msg[256];

	return store_check_report(st, msg, sizeof(msg)) ? msg : NULL;
}

/* store_check_report names what at node; store_check sees it too. */
static void expect_violation_in(const struct store *st, const char *what,
				const char *node, bool structural)
{
	const char *msg = violation(st), *w = NULL;

	assert_non_null(msg);
	if (!strstr(msg, what) || (node && !strstr(msg, node)))
		fail_msg("expected \"%s\" at %s, got \"%s\"", what,
			 node ? node : "-", msg);
	assert_int_equal(store_check(st, &w), structural ? -EIO : 0);
	assert_true(!structural || w);
}

static void expect_violation(const struct store *st, const char *what,
			     const char *node)
{
	expect_violation_in(st, what, node, true);
}

/* The host whose tries hk() hashes for (bound to its store's key). */
static struct host *hk_host;

/* A store with a little of everything, for corrupting. */
static struct store *sample(struct host **h)
{
	struct store *st = fresh();
	struct store_caller c = priv(), d5 = dom(5);

	assert_int_equal(wr(st, &c, "/a/b", "1"), 0);
	assert_int_equal(perms(st, &c, "/a", "n5"), 0);
	assert_int_equal(wr(st, &d5, "/a/mine", "2"), 0);
	assert_int_equal(store_domain_introduce(st, H, 5, 1, 2, idx++, true,
						NULL),
			 0);
	assert_null(violation(st));
	*h = hk_host = store_host_find(st, H);
	return st;
}

static uint64_t hk(const char *p)
{
	return host_hash(hk_host, p, strlen(p));
}

/* The checker catches each kind of corruption, naming it and its node. */
static void test_check_catches_corruption(void **state)
{
	struct store_perm n0 = {0};
	struct snode *n;
	struct store *st;
	struct host *h;

	/* a listed child is missing */
	st = sample(&h);
	assert_int_equal(hamt_del(&h->root, "/a/b", 4, hk("/a/b")), 0);
	expect_violation(st, "a listed child is missing", "/a/b");
	store_free(st);

	/* a node nobody lists */
	st = sample(&h);
	n = snode_new("/a/ghost", 8, hk("/a/ghost"), 1, &n0, 1, NULL, 0, NULL,
		      0);
	assert_int_equal(hamt_set(&h->root, n), 0);
	expect_violation(st, "a node its parent does not list", "/a/ghost");
	store_free(st);

	/* a node without a parent */
	st = sample(&h);
	n = snode_new("/x/y", 4, hk("/x/y"), 1, &n0, 1, NULL, 0, NULL, 0);
	assert_int_equal(hamt_set(&h->root, n), 0);
	expect_violation(st, "a node whose parent does not exist", "/x/y");
	store_free(st);

	/* a child listed twice */
	st = sample(&h);
	{
		const struct snode *a = hamt_get(h->root, "/a", 2, hk("/a"));
		static const char kids[] = "b\0mine\0b";

		n = snode_new("/a", 2, hk("/a"), a->generation, a->perms,
			      a->nperms, NULL, 0, kids, sizeof(kids));
		assert_int_equal(hamt_set(&h->root, n), 0);
	}
	expect_violation(st, "twice", NULL);
	store_free(st);

	/* node accounting */
	st = sample(&h);
	acct_find(h, 5, false)->nodes++;
	expect_violation(st, "node accounting differs", NULL);
	store_free(st);

	/* a record's hash */
	st = sample(&h);
	((struct snode *)hamt_get(h->root, "/a/mine", 7, hk("/a/mine")))
		->hash ^= 1;
	expect_violation(st, "hash is not its path's hash", NULL);
	store_free(st);

	/* a trie bitmap */
	st = sample(&h);
	hamt_test_corrupt_bitmap(h->root);
	expect_violation(st, "bitmap", NULL);
	store_free(st);

	/* a generation from the future */
	st = sample(&h);
	store_set_applied_index(st, 2);
	expect_violation_in(st, "generation is above the applied index", "/",
			    false);
	store_free(st);

	/* the registry */
	st = sample(&h);
	h->doms[0].ring_id = 0;
	expect_violation(st, "without a ring session", NULL);
	store_free(st);

	/* a node without an owner */
	st = sample(&h);
	n = snode_new("/a/b", 4, hk("/a/b"), 1, NULL, 0, "1", 1, NULL, 0);
	assert_int_equal(hamt_set(&h->root, n), 0);
	expect_violation(st, "without permissions", "/a/b");
	store_free(st);
}

/* The key is the caller's: two keys, the same observable store. */
static void test_hash_key_is_callers(void **state)
{
	static const uint8_t other[STORE_HASH_KEY_LEN] = "another key....";
	struct store *a = store_new_keyed(test_key), *b = store_new_keyed(other);
	struct store *c = store_new();

	assert_memory_equal(store_hash_key(a), test_key, STORE_HASH_KEY_LEN);
	assert_memory_equal(store_hash_key(b), other, STORE_HASH_KEY_LEN);
	assert_memory_equal(store_hash_key(c), store_hash_key_default,
			    STORE_HASH_KEY_LEN);
	store_free(a);
	store_free(b);
	store_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_tree),
		cmocka_unit_test(test_write_read_implicit),
		cmocka_unit_test(test_generation_is_index),
		cmocka_unit_test(test_mkdir_rm),
		cmocka_unit_test(test_perm_strings),
		cmocka_unit_test(test_unprivileged),
		cmocka_unit_test(test_special_perms),
		cmocka_unit_test(test_node_quota),
		cmocka_unit_test(test_node_size_quota),
		cmocka_unit_test(test_path_max),
		cmocka_unit_test(test_txn_isolation_and_commit),
		cmocka_unit_test(test_txn_conflicts),
		cmocka_unit_test(test_txn_create_delete_and_quota),
		cmocka_unit_test(test_txn_rm_events_order),
		cmocka_unit_test(test_set_perms_events),
		cmocka_unit_test(test_txn_set_perms_twice),
		cmocka_unit_test(test_rollback),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_snapshot_roundtrip),
		cmocka_unit_test(test_domain_registry),
		cmocka_unit_test(test_domain_move),
		cmocka_unit_test(test_domain_move_deterministic),
		cmocka_unit_test(test_deep_tree),
		cmocka_unit_test(test_hamt_random),
		cmocka_unit_test(test_check_catches_corruption),
		cmocka_unit_test(test_hash_key_is_callers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
