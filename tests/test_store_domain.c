/*
 * tests/test_store_domain.c: the store's domain registry (introduction,
 * watches, a domain going away) and moving a domain's state between hosts.
 */
#include "tests/test_store.h"

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
	assert_int_equal(
	    store_domain_introduce(st, H, 5, 0xfeff, 1005, 40, true, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.v[0].path, "@introduceDomain");
	assert_true(ev.v[0].exact && ev.v[0].has_node);
	store_events_clear(&ev);
	assert_int_equal(
	    store_domain_introduce(st, H, 6, 0, 1006, 41, true, NULL), 0);
	sd = store_domain_get(st, H, 5);
	assert_non_null(sd);
	assert_int_equal(sd->port, 1005);
	assert_int_equal(sd->ring_id, 40);

	/* watches: duplicates, then the quota (more than max: E2BIG) */
	assert_int_equal(store_domain_watch(st, H, 5, "data", "a", 2), 0);
	assert_int_equal(store_domain_watch(st, H, 5, "data", "a", 2), -EEXIST);
	assert_int_equal(store_domain_watch(st, H, 5, "data", "b", 2), 0);
	assert_int_equal(store_domain_watch(st, H, 5, "@releaseDomain", "c", 2),
			 0);
	assert_int_equal(store_domain_watch(st, H, 5, "x", "d", 2), -E2BIG);
	assert_int_equal(store_domain_unwatch(st, H, 5, "data", "b"), 0);
	assert_int_equal(store_domain_unwatch(st, H, 5, "data", "b"), -ENOENT);
	assert_int_equal(store_domain_get(st, H, 5)->nwatches, 2);
	assert_int_equal(store_domain_set_target(st, H, 6, 5), 0);
	assert_int_equal(store_domain_set_target(st, H, 6, 9), -ENOENT);
	assert_int_equal(store_session_record(st, STORE_RING_ORIGIN(40), 3, 0),
			 0);

	/* re-introduction: new session, watches gone, no event */
	assert_int_equal(
	    store_domain_introduce(st, H, 5, 0xfeff, 2005, 50, true, &ev), 0);
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
	/* 6 had 5 as its target: a reused domid 5 is not 6's to own */
	assert_int_equal(store_domain_get(st, H, 6)->target, STORE_NO_TARGET);
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
		assert_int_equal(
		    store_set_perms(st, h, NULL, &c, idx++, p, pv, 2, NULL), 0);
		snprintf(p, sizeof(p), "/local/domain/%u/data", domid);
		assert_int_equal(
		    store_write(st, h, NULL, &c, idx++, p, "", 0, NULL), 0);
		snprintf(v, sizeof(v), "n%u", domid);
		assert_int_equal(store_perm_parse(v, &pv[0]), 0);
		assert_int_equal(
		    store_set_perms(st, h, NULL, &c, idx++, p, pv, 1, NULL), 0);
	}
	snprintf(p, sizeof(p), "/local/domain/%u/data/mine", domid);
	assert_int_equal(
	    store_write(st, h, NULL, &g, idx++, p, "guest", 5, NULL), 0);
	snprintf(p, sizeof(p), "/local/domain/%u/vm", domid);
	snprintf(v, sizeof(v), "/vm/uuid-%u", domid);
	assert_int_equal(
	    store_write(st, h, NULL, &c, idx++, p, v, strlen(v), NULL), 0);
	snprintf(p, sizeof(p), "/vm/uuid-%u/name", domid);
	assert_int_equal(store_write(st, h, NULL, &c, idx++, p, "g", 1, NULL),
			 0);
	snprintf(p, sizeof(p), "/local/domain/%u/self", domid);
	snprintf(v, sizeof(v), "/local/domain/%u/data/mine", domid);
	assert_int_equal(
	    store_write(st, h, NULL, &c, idx++, p, v, strlen(v), NULL), 0);
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
	struct store_move m = {
	    .src_host = H, .dst_host = "host2", .src_domid = 5, .dst_domid = 7};
	struct store_events es, ed;
	const struct store_perm *p;
	uint64_t n, mem;
	uint32_t np;
	int err;

	store_events_init(&es);
	store_events_init(&ed);
	assert_int_equal(store_host_init(st, "host2", idx++), 0);
	guest_tree(st, H, 5);
	assert_int_equal(
	    store_domain_introduce(st, H, 5, 1, 1005, idx++, true, NULL), 0);
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
		assert_int_equal(
		    store_read(st, "host2", NULL, &c, "/libxl/7/type", &v, &vl),
		    0);
	}
	/* owners and ACLs name the new domid */
	assert_int_equal(
	    store_get_perms(st, "host2", NULL, &c, "/local/domain/7", &p, &np),
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

/* Write on host h, as c. */
static int hwr(struct store *st, const char *h, const struct store_caller *c,
	       const char *p, const char *v)
{
	return store_write(st, h, NULL, c, idx++, p, v, strlen(v), NULL);
}

/* The value at p on host h as a string, or NULL. */
static const char *hrd(struct store *st, const char *h, const char *p)
{
	static char buf[256];
	struct store_caller c = priv();
	const char *v;
	size_t len;

	if (store_read(st, h, NULL, &c, p, &v, &len) || len >= sizeof(buf))
		return NULL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

/* The toolstack's request through a transaction, as libxl makes it. */
static void txn_write(struct store *st, const char *h, const char *p,
		      const char *v)
{
	struct store_caller c = priv();
	struct store_commit cm;
	struct store_txn *tx = store_txn_new(st, h);

	assert_non_null(tx);
	assert_int_equal(
	    store_write(st, h, tx, &c, 0, p, v, strlen(v), NULL), 0);
	assert_int_equal(store_txn_export(tx, &cm), 0);
	assert_int_equal(store_commit(st, h, &c, idx++, &cm, NULL), 0);
	store_commit_release(&cm);
	store_txn_free(tx);
}

/* The source: domain 5 of host1, running, with what a guest writes. */
static void inherit_source(struct store *st)
{
	struct store_caller c = priv(), g5 = dom(5);

	guest_tree(st, H, 5);
	assert_int_equal(
	    store_domain_introduce(st, H, 5, 1, 1005, idx++, true, NULL), 0);
	assert_int_equal(hwr(st, H, &c, "/local/domain/5/control/shutdown", ""),
			 0);
	assert_int_equal(perms(st, &c, "/local/domain/5/control", "n0 b5"), 0);
	assert_int_equal(perms(st, &c, "/local/domain/5/control/shutdown",
			       "n0 b5"),
			 0);
	assert_int_equal(hwr(st, H, &g5,
			     "/local/domain/5/control/feature-poweroff", "1"),
			 0);
	assert_int_equal(hwr(st, H, &c, "/local/domain/5/device/vbd/768/state",
			     "4"),
			 0);
	assert_int_equal(perms(st, &c, "/local/domain/5/device/vbd/768",
			       "n5 r0"),
			 0);
	assert_int_equal(hwr(st, H, &g5,
			     "/local/domain/5/device/vbd/768/ring-ref", "8"),
			 0);
	assert_int_equal(hwr(st, H, &c, "/local/domain/5/console/tty",
			     "/dev/pts/3"),
			 0);
	assert_int_equal(hwr(st, H, &c, "/local/domain/5/error/x", "e"), 0);
}

/* The destination's toolstack: domain d of host h with vm /vm/uuid-5. */
static void inherit_dest(struct store *st, const char *h, uint32_t d)
{
	struct store_caller c = priv();
	char p[64];

	snprintf(p, sizeof(p), "/local/domain/%u/vm", d);
	assert_int_equal(hwr(st, h, &c, p, "/vm/uuid-5"), 0);
	snprintf(p, sizeof(p), "/local/domain/%u/name", d);
	assert_int_equal(hwr(st, h, &c, p, "g--incoming"), 0);
	snprintf(p, sizeof(p), "/local/domain/%u/control/shutdown", d);
	assert_int_equal(hwr(st, h, &c, p, ""), 0);
	snprintf(p, sizeof(p), "/local/domain/%u/device/vbd/768/state", d);
	assert_int_equal(hwr(st, h, &c, p, "1"), 0);
	assert_int_equal(
	    store_domain_introduce(st, h, d, 1, 1000 + d, idx++, true, NULL),
	    0);
}

/*
 * store_domain_inherit(): a domain whose toolstack asked it to suspend is
 * the only kind of source; every refusal leaves both trees as they were.
 */
static void test_inherit_refusals(void **state)
{
	struct store *st = fresh();
	struct store_caller c = priv(), g5 = dom(5);
	struct store_inherit out;
	const char *sd = "/local/domain/5/control/shutdown";
	struct store_events ev;

	store_events_init(&ev);
	assert_int_equal(store_host_init(st, "host2", idx++), 0);
	inherit_source(st);
	inherit_dest(st, "host2", 7);

	/* a running source (the same config started twice) */
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	/* the guest asking itself to suspend is not its toolstack */
	assert_int_equal(hwr(st, H, &g5, sd, "suspend"), 0);
	assert_false(store_domain_get(st, H, 5)->suspending);
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	/* the toolstack's request, then its cancellation (libxl's timeout) */
	assert_int_equal(hwr(st, H, &c, sd, "suspend"), 0);
	assert_true(store_domain_get(st, H, 5)->suspending);
	/* the guest's acknowledgement does not end it */
	assert_int_equal(hwr(st, H, &g5, sd, ""), 0);
	assert_true(store_domain_get(st, H, 5)->suspending);
	assert_int_equal(hwr(st, H, &c, sd, ""), 0);
	assert_false(store_domain_get(st, H, 5)->suspending);
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	/* suspended, then resumed (a failed migration, `xl save -c`) */
	txn_write(st, H, sd, "suspend");
	assert_true(store_domain_get(st, H, 5)->suspending);
	assert_int_equal(store_domain_resume(st, H, 5), 0);
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	/* two suspending domains name the vm: ambiguous, nothing taken */
	txn_write(st, H, sd, "suspend");
	guest_tree(st, H, 6);
	assert_int_equal(hwr(st, H, &c, "/local/domain/6/vm", "/vm/uuid-5"),
			 0);
	assert_int_equal(
	    store_domain_introduce(st, H, 6, 1, 1006, idx++, true, NULL), 0);
	assert_int_equal(hwr(st, H, &c, "/local/domain/6/control/shutdown",
			     "suspend"),
			 0);
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -EEXIST);
	assert_int_equal(store_domain_resume(st, H, 6), 0);
	/* a vm of its own: nothing to inherit */
	assert_int_equal(hwr(st, "host2", &c, "/local/domain/7/vm", "/vm/o"),
			 0);
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	assert_int_equal(
	    hwr(st, "host2", &c, "/local/domain/7/vm", "/vm/uuid-5"), 0);
	/* over the node quota of the destination */
	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 1, idx++, &ev, &out),
	    -ENOSPC);
	assert_int_equal(ev.n, 0);
	assert_null(hrd(st, "host2", "/local/domain/7/data/mine"));
	/* an unknown host or domain */
	assert_int_equal(
	    store_domain_inherit(st, "nohost", 7, 0, idx++, &ev, &out),
	    -ENOENT);
	check_ok(st);
	store_events_clear(&ev);
	store_free(st);
}

/* The copy itself: merged, device/, console/, error/ and control/shutdown
 * left out. */
static void test_inherit_copy(void **state)
{
	struct store *st = fresh(), *copy;
	struct store_caller c = priv(), g7 = dom(7);
	struct store_inherit out;
	struct store_events ev;
	struct rebuild a = {0};
	struct store_pin *pin;
	const struct store_perm *p;
	uint32_t np;
	const char *v;
	size_t vl;

	store_events_init(&ev);
	assert_int_equal(store_host_init(st, "host2", idx++), 0);
	inherit_source(st);
	inherit_dest(st, "host2", 7);
	txn_write(st, H, "/local/domain/5/control/shutdown", "suspend");

	/* the flag is in snapshots */
	pin = store_pin(st);
	assert_int_equal(store_pin_walk(pin, &rb_ops, &a), 0);
	store_unpin(pin);
	copy = a.dst;
	free(a.text);
	assert_int_equal(store_restore_finish(copy), 0);
	assert_true(store_domain_get(copy, H, 5)->suspending);
	store_free(copy);

	assert_int_equal(
	    store_domain_inherit(st, "host2", 7, 1000, idx++, &ev, &out), 0);
	assert_string_equal(out.src_host, H);
	assert_int_equal(out.src_domid, 5);
	assert_true(out.copied >= 4);
	assert_true(ev.n >= out.copied);
	/* the guest's keys, its own now */
	assert_int_equal(store_read(st, "host2", NULL, &g7,
				    "/local/domain/7/data/mine", &v, &vl),
			 0);
	assert_int_equal(vl, 5);
	assert_int_equal(store_get_perms(st, "host2", NULL, &c,
					 "/local/domain/7/data/mine", &p, &np),
			 0);
	assert_int_equal(p[0].domid, 7);
	assert_string_equal(hrd(st, "host2", "/local/domain/7/self"),
			    "/local/domain/7/data/mine");
	assert_string_equal(
	    hrd(st, "host2", "/local/domain/7/control/feature-poweroff"), "1");
	/* the destination toolstack's keys stay */
	assert_string_equal(hrd(st, "host2", "/local/domain/7/name"),
			    "g--incoming");
	assert_string_equal(hrd(st, "host2", "/local/domain/7/control/shutdown"),
			    "");
	assert_string_equal(
	    hrd(st, "host2", "/local/domain/7/device/vbd/768/state"), "1");
	/* the frontends negotiate again: nothing of device/ came */
	assert_null(hrd(st, "host2", "/local/domain/7/device/vbd/768/ring-ref"));
	/* nor of console/ (libxl writes it after INTRODUCE) or error/ */
	assert_null(hrd(st, "host2", "/local/domain/7/console"));
	assert_null(hrd(st, "host2", "/local/domain/7/error"));
	/* companions stay where they are */
	assert_null(hrd(st, "host2", "/libxl/7/type"));
	/* the source is untouched, still introduced and suspending */
	assert_string_equal(hrd(st, H, "/local/domain/5/data/mine"), "guest");
	assert_string_equal(hrd(st, H, "/local/domain/5/device/vbd/768/ring-ref"),
			    "8");
	assert_true(store_domain_get(st, H, 5)->suspending);
	check_ok(st);

	/* on the same host (`xl migrate <guest> localhost`) */
	inherit_dest(st, H, 9);
	assert_int_equal(store_domain_inherit(st, H, 9, 1000, idx++, NULL, &out),
			 0);
	assert_int_equal(out.src_domid, 5);
	assert_string_equal(hrd(st, H, "/local/domain/9/data/mine"), "guest");
	/* the new domain is no source: it never was asked to suspend, and
	 * the old one is (so a third one would be ambiguous only if 9 were
	 * suspending too) */
	assert_false(store_domain_get(st, H, 9)->suspending);
	check_ok(st);
	store_events_clear(&ev);
	store_free(st);
}

/* The same moves on two replicas leave the same bytes. */
static void test_domain_move_deterministic(void **state)
{
	struct store *a = store_new_keyed(test_key),
		     *b = store_new_keyed(test_key);
	struct store_move m = {
	    .src_host = H, .dst_host = "host2", .src_domid = 3, .dst_domid = 4};
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_domain_registry),
	    cmocka_unit_test(test_domain_move),
	    cmocka_unit_test(test_domain_move_deterministic),
	    cmocka_unit_test(test_inherit_refusals),
	    cmocka_unit_test(test_inherit_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
