/*
 * tests/test_store_whole.c: the store as a whole: the session table, the
 * members, pinned versions and restore, the hash trie under random load,
 * the consistency checker against corruption, and the caller's hash key.
 */
#include "tests/test_store.h"
#include "node/store/store_int.h"
#include "wire/siphash.h"

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
		assert_int_equal(
		    store_session_record(st, 7, seq, -(int)(seq % 7)), 0);
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
			    key, strlen(key),
			    siphash64(store_hash_key_default, key, strlen(key)),
			    (uint64_t)i, &(struct store_perm){0}, 1, NULL, 0,
			    NULL, 0);

			assert_int_equal(hamt_set(&root, n), 0);
			model[k] = i + 1;
		} else {
			int rc = hamt_del(&root, key, strlen(key),
					  siphash64(store_hash_key_default, key,
						    strlen(key)));

			assert_int_equal(rc, model[k] ? 0 : -ENOENT);
			model[k] = 0;
		}
		if (i % 1000 == 0) {
			const char *what = NULL;

			assert_int_equal(
			    hamt_check(root, store_hash_key_default, &what), 0);
			assert_int_equal(
			    hamt_check(pinned, store_hash_key_default, &what),
			    0);
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
		n = hamt_get(
		    root, key, strlen(key),
		    siphash64(store_hash_key_default, key, strlen(key)));
		if (model[k])
			assert_int_equal(n->generation, model[k] - 1);
		else
			assert_null(n);
		n = hamt_get(
		    pinned, key, strlen(key),
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
	assert_int_equal(
	    store_domain_introduce(st, H, 5, 1, 2, idx++, true, NULL), 0);
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
	struct store *a = store_new_keyed(test_key),
		     *b = store_new_keyed(other);
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
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_snapshot_roundtrip),
	    cmocka_unit_test(test_hamt_random),
	    cmocka_unit_test(test_check_catches_corruption),
	    cmocka_unit_test(test_hash_key_is_callers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
