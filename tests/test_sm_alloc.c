/*
 * tests/test_sm_alloc.c: memory that runs out while applying an entry
 * never becomes the entry's result. A heap that fails the Nth allocation
 * (as canonical raft's test heap does) runs under sm_apply() for every N
 * along a realistic entry sequence; each run must end byte-identical to
 * the clean run, or stop (sm_result.fatal), never a third way. A watch
 * event lost on the way is never silent: an entry whose events differ
 * from the clean run's says so (store_events.lost).
 *
 * The heap is the linker's: this test is linked with --wrap=malloc (and
 * calloc, realloc, strdup, strndup), which redirects the calls of the
 * store and sm static libraries linked into it to the __wrap_ functions
 * below. protobuf-c's own allocations (a shared library) are not seen, but
 * sm_apply() unpacks through an allocator of its own that is.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus/sm.h"
#include "node/store/store.h"

/* ---- The failing heap ------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static struct {
	uint64_t fail_at; /* the allocation to fail (1-based), 0: none */
	uint64_t count;	  /* allocations since heap_arm() */
} heap;

static void heap_arm(uint64_t fail_at)
{
	heap.fail_at = fail_at;
	heap.count = 0;
}

static void heap_disarm(void)
{
	heap.fail_at = 0;
}

static int heap_fails(void)
{
	return heap.fail_at && ++heap.count == heap.fail_at;
}

void *__wrap_malloc(size_t n)
{
	return heap_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	return heap_fails() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return heap_fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return heap_fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return heap_fails() ? NULL : __real_strndup(s, n);
}

/* ---- The entry sequence ----------------------------------------------- */

#define H1 "h1"
#define H2 "h2"
#define MAX_ENTRIES 64

struct entry {
	void *buf;
	size_t len;
};

#define MAX_EVENTS 48

/* One watch event as a digest (a run records nothing while the heap is
 * armed: the test's own allocations would count). */
struct seen_event {
	uint64_t path;	/* FNV-1a of the path */
	uint64_t perms; /* FNV-1a of the permission copies it carries */
	bool exact, has_node, has_parent, has_old;
};

struct seen_events {
	size_t n; /* every event, those past MAX_EVENTS too */
	bool lost;
	struct seen_event v[MAX_EVENTS];
};

/* What a run saw of each entry: the replicated part of the result, and
 * the local part: the events to fire (events2: a move's destination). */
struct seen {
	bool fatal, duplicate, result_known;
	int result;
	enum sm_kind kind;
	struct seen_events events, events2;
};

struct seq {
	struct entry e[MAX_ENTRIES];
	size_t n;
	struct store *builder; /* the entries applied so far, for txns */
	uint64_t next_seq;
};

static struct store_caller guest(uint32_t domid)
{
	struct store_caller c = {.domid = domid,
				 .privileged = false,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static struct sm_origin origin(struct seq *s, const char *host,
			       const struct store_caller *c)
{
	struct sm_origin o = {.member = 7, .host = host, .caller = c};

	o.seq = s->next_seq++;
	return o;
}

/* Keep an encoded entry and apply it to the builder. */
static void add(struct seq *s, int rc, void *buf, size_t len)
{
	struct sm_result res;

	assert_int_equal(rc, 0);
	assert_true(s->n < MAX_ENTRIES);
	s->e[s->n].buf = buf;
	s->e[s->n].len = len;
	s->n++;
	sm_apply(s->builder, s->n, buf, len, &res);
	assert_false(res.fatal);
	sm_result_clear(&res);
}

/* A transaction of dom0 on h1 against the builder, as one commit entry. */
static void add_commit(struct seq *s)
{
	struct store_caller dom0 = {.privileged = true,
				    .target = STORE_NO_TARGET,
				    .quota = STORE_QUOTA_INIT};
	struct store_txn *tx = store_txn_new(s->builder, H1);
	struct store_commit cm;
	struct sm_origin o = origin(s, H1, NULL);
	void *buf;
	size_t len;

	assert_non_null(tx);
	assert_int_equal(store_write(s->builder, H1, tx, &dom0, 0,
				     "/tool/tx/a", "1", 1, NULL),
			 0);
	assert_int_equal(store_write(s->builder, H1, tx, &dom0, 0,
				     "/local/domain/3/a/b", "tx", 2, NULL),
			 0);
	assert_int_equal(store_rm(s->builder, H1, tx, &dom0, 0, "/tool/y",
				  NULL),
			 0);
	assert_int_equal(store_txn_export(tx, &cm), 0);
	assert_int_equal(sm_entry_commit(&o, &cm, &buf, &len), 0);
	store_commit_release(&cm);
	store_txn_free(tx);
	add(s, 0, buf, len);
}

/* A guest transaction over its transaction-nodes quota: a failed commit,
 * which Xen refuses with ENOMEM. */
static void add_failed_commit(struct seq *s, const struct store_caller *g)
{
	struct store_txn *tx = store_txn_new(s->builder, H1);
	struct store_commit cm;
	struct sm_origin o = origin(s, H1, g);
	void *buf;
	size_t len;

	assert_non_null(tx);
	assert_int_equal(store_write(s->builder, H1, tx, g, 0,
				     "/local/domain/3/a/t1", "1", 1, NULL),
			 -ENOSPC);
	assert_true(store_txn_failed(tx));
	assert_int_equal(store_txn_export(tx, &cm), 0);
	assert_int_equal(sm_entry_commit(&o, &cm, &buf, &len), 0);
	store_commit_release(&cm);
	store_txn_free(tx);
	add(s, 0, buf, len);
}

static void seq_build(struct seq *s)
{
	struct store_member m1 = {7, "h1", "127.0.0.1:1", "127.0.0.1:2"};
	struct store_member m2 = {8, "h2", "127.0.0.1:3", "127.0.0.1:4"};
	struct store_member m3 = {9, "h3", "127.0.0.1:5", "127.0.0.1:6"};
	struct store_caller g3 = guest(3), tight = guest(3), txq = guest(3);
	struct store_perm own3 = {.domid = 3}, perms[2] = {{.domid = 0},
							 {.domid = 3,
							  .access = 1}};
	const char *subtrees[] = {"/tool/dom5"};
	struct store_move mv = {.src_host = H1,
				.dst_host = H2,
				.src_domid = 5,
				.dst_domid = 6,
				.subtrees = subtrees,
				.nsubtrees = 1};
	struct sm_origin o;
	size_t len;
	void *buf;
	int rc;

	memset(s, 0, sizeof(*s));
	s->builder = store_new();
	s->next_seq = 1;
	assert_non_null(s->builder);
	tight.quota.memory = 64;	  /* a write over it: ENOMEM */
	txq.quota.transaction_nodes = 1; /* a failed transaction */

#define ADD(call)                                                              \
	do {                                                                   \
		rc = (call);                                                   \
		add(s, rc, buf, len);                                          \
	} while (0)

	o = origin(s, H1, NULL);
	ADD(sm_entry_host_init(&o, &m1, &buf, &len));
	o = origin(s, H2, NULL);
	ADD(sm_entry_host_init(&o, &m2, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_member(&o, &m3, false, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_introduce(&o, 3, 0xfeff, 1003, true, false, 0, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_mkdir(&o, "/local/domain/3", &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_set_perms(&o, "/local/domain/3", &own3, 1, &buf, &len));
	o = origin(s, H1, &g3);
	ADD(sm_entry_write(&o, "/local/domain/3/a/b/c", "v", 1, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/tool/x", "x", 1, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/tool/y/z", "yz", 2, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_set_perms(&o, "/tool/x", perms, 2, &buf, &len));
	/* deterministic refusals: the memory quota, a permission */
	o = origin(s, H1, &tight);
	ADD(sm_entry_write(&o, "/local/domain/3/big",
			   "0123456789012345678901234567890123456789"
			   "0123456789012345678901234567890123456789",
			   80, &buf, &len));
	o = origin(s, H1, &g3);
	ADD(sm_entry_write(&o, "/tool/x", "no", 2, &buf, &len));
	add_commit(s);
	add_failed_commit(s, &txq);
	o = origin(s, H1, &g3);
	ADD(sm_entry_watch(&o, 3, "a", "tok", 128, false, &buf, &len));
	o = origin(s, H1, &g3);
	ADD(sm_entry_watch(&o, 3, "@releaseDomain", "r", 128, false, &buf,
			   &len));
	o = origin(s, H1, &g3);
	ADD(sm_entry_watch(&o, 3, "a", "tok", 128, true, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_introduce(&o, 5, 0xfefe, 1005, true, false, 0, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_set_target(&o, 5, 3, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/local/domain/5/name", "five", 4, &buf,
			   &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/local/domain/5/vm", "/vm/u5", 6, &buf,
			   &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/vm/u5/name", "five", 4, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_write(&o, "/tool/dom5/state", "1", 1, &buf, &len));
	/* quota settings: the host's, domain 5's (moved with it), 3's
	 * (dropped when it dies) */
	o = origin(s, H1, NULL);
	ADD(sm_entry_quota(&o, STORE_QUOTA_HOST, 0, 900, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_quota(&o, 5, 1, 17, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_quota(&o, 3, 2, 4, &buf, &len));
	o = origin(s, H2, NULL);
	ADD(sm_entry_quota(&o, 6, 3, 77, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_move_domain(&o, &mv, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_reset_watches(&o, 3, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_ring_reset(&o, 3, 0, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_rm(&o, "/tool", &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_domain_gone(&o, 3, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_member(&o, &m3, true, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_verify(&o, 42, &buf, &len));
	o = origin(s, H1, NULL);
	ADD(sm_entry_noop(&o, &buf, &len));
	/* a copy of an entry applied before: a duplicate */
	buf = malloc(s->e[6].len);
	assert_non_null(buf);
	memcpy(buf, s->e[6].buf, s->e[6].len);
	add(s, 0, buf, s->e[6].len);
#undef ADD
}

static void seq_free(struct seq *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->e[i].buf);
	store_free(s->builder);
}

/* ---- Runs ------------------------------------------------------------- */

/* The store as bytes (a snapshot), taken with the heap disarmed. */
static void snapshot(struct store *st, void **buf, size_t *len)
{
	struct store_pin *pin = store_pin(st);

	assert_non_null(pin);
	assert_int_equal(sm_snapshot_encode(pin, buf, len), 0);
	store_unpin(pin);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}

static uint64_t fnv_perms(uint64_t h, bool has, const struct store_perms *p)
{
	uint32_t i;

	h = fnv(h, &has, 1);
	for (i = 0; has && i < p->n; i++) {
		h = fnv(h, &p->v[i].domid, sizeof(p->v[i].domid));
		h = fnv(h, &p->v[i].access, 1);
		h = fnv(h, &p->v[i].ignore, 1);
	}
	return h;
}

static void seen_record(struct seen_events *out, const struct store_events *ev)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->n = ev->n;
	out->lost = ev->lost;
	for (i = 0; i < ev->n && i < MAX_EVENTS; i++) {
		const struct store_event *e = &ev->v[i];
		struct seen_event *d = &out->v[i];
		uint64_t h = 0xcbf29ce484222325ull;

		d->path = fnv(h, e->path, strlen(e->path));
		h = fnv_perms(h, e->has_node, &e->node);
		h = fnv_perms(h, e->has_parent, &e->parent);
		d->perms = fnv_perms(h, e->has_old, &e->old);
		d->exact = e->exact;
		d->has_node = e->has_node;
		d->has_parent = e->has_parent;
		d->has_old = e->has_old;
	}
}

static bool seen_same(const struct seen_events *a, const struct seen_events *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n && i < MAX_EVENTS; i++)
		if (a->v[i].path != b->v[i].path ||
		    a->v[i].perms != b->v[i].perms ||
		    a->v[i].exact != b->v[i].exact ||
		    a->v[i].has_node != b->v[i].has_node ||
		    a->v[i].has_parent != b->v[i].has_parent ||
		    a->v[i].has_old != b->v[i].has_old)
			return false;
	return true;
}

/*
 * An entry's events (one list) against the clean run's: the same, or
 * flagged lost (then the daemon fires every watch). Returns whether lost.
 */
static bool events_ok(uint64_t fail_at, size_t entry, const char *which,
		      const struct seen_events *got,
		      const struct seen_events *want)
{
	if (!got->lost && !seen_same(got, want))
		fail_msg("allocation %llu failed: entry %zu lost %s silently "
			 "(%zu events, the clean run %zu)",
			 (unsigned long long)fail_at, entry, which, got->n,
			 want->n);
	return got->lost;
}

/*
 * Apply the sequence to a new store with the fail_at-th allocation failing
 * (0: none). Returns whether it stopped; *n says how many entries ran.
 */
static bool run(const struct seq *s, uint64_t fail_at, struct seen *seen,
		size_t *n, void **snap, size_t *snap_len)
{
	struct store *st = store_new();
	struct sm_result res;
	bool stopped = false;
	size_t i;

	assert_non_null(st);
	heap_arm(fail_at);
	for (i = 0; i < s->n && !stopped; i++) {
		sm_apply(st, i + 1, s->e[i].buf, s->e[i].len, &res);
		seen[i].fatal = res.fatal;
		seen[i].duplicate = res.duplicate;
		seen[i].result_known = res.result_known;
		seen[i].result = res.result;
		seen[i].kind = res.kind;
		seen_record(&seen[i].events, &res.events);
		seen_record(&seen[i].events2, &res.events2);
		if (res.fatal) {
			/* the stop outcome: says what failed, records nothing */
			assert_non_null(res.fatal_what);
			assert_false(res.result_known);
			stopped = true;
		}
		sm_result_clear(&res);
	}
	heap_disarm();
	*n = i;
	*snap = NULL;
	*snap_len = 0;
	if (!stopped)
		snapshot(st, snap, snap_len);
	store_free(st);
	return stopped;
}

static void test_every_allocation_fails_once(void **state)
{
	static struct seq s;
	static struct seen clean[MAX_ENTRIES], seen[MAX_ENTRIES];
	uint64_t fail_at, allocs, stops = 0, same = 0, lossy = 0;
	void *ref, *snap;
	size_t ref_len, snap_len, n, i;
	bool lost;

	(void)state;
	seq_build(&s);

	/* The clean run: no stop, the refusals are results. */
	assert_false(run(&s, 0, clean, &n, &ref, &ref_len));
	assert_int_equal(n, s.n);
	for (i = 0; i < s.n; i++) {
		assert_int_not_equal(clean[i].kind, SM_INVALID);
		/* every event is compared, and none is lost */
		assert_true(clean[i].events.n <= MAX_EVENTS);
		assert_true(clean[i].events2.n <= MAX_EVENTS);
		assert_false(clean[i].events.lost || clean[i].events2.lost);
	}
	/* the move: its destination's events are compared too */
	assert_true(clean[27].events.n > 0 && clean[27].events2.n > 0);
	assert_int_equal(clean[10].result, -ENOMEM); /* memory quota */
	assert_int_equal(clean[11].result, -EACCES);
	assert_int_equal(clean[12].result, 0);	     /* the commit */
	assert_int_equal(clean[13].result, -ENOMEM); /* failed txn */
	assert_int_equal(clean[23].result, 0);	     /* a quota setting */
	assert_int_equal(clean[27].result, 0);	     /* the move */
	assert_true(clean[s.n - 1].duplicate);
	/* The builder, applied alike, agrees. */
	snapshot(s.builder, &snap, &snap_len);
	assert_int_equal(snap_len, ref_len);
	assert_memory_equal(snap, ref, ref_len);
	free(snap);

	/* How many allocations the clean run makes. */
	heap_arm(UINT64_MAX);
	{
		struct store *st = store_new();
		struct sm_result res;

		for (i = 0; i < s.n; i++) {
			sm_apply(st, i + 1, s.e[i].buf, s.e[i].len, &res);
			sm_result_clear(&res);
		}
		allocs = heap.count;
		heap_disarm();
		store_free(st);
	}
	assert_true(allocs > 100);

	/* Every one of them fails once: identical or stopped, nothing else. */
	for (fail_at = 1; fail_at <= allocs + 1; fail_at++) {
		if (run(&s, fail_at, seen, &n, &snap, &snap_len)) {
			stops++;
			/* entries before the stop went as in the clean run */
			for (i = 0; i + 1 < n; i++) {
				assert_int_equal(seen[i].result,
						 clean[i].result);
				assert_false(seen[i].fatal);
				events_ok(fail_at, i, "events", &seen[i].events,
					  &clean[i].events);
				events_ok(fail_at, i, "events2",
					  &seen[i].events2, &clean[i].events2);
			}
			continue;
		}
		assert_int_equal(n, s.n);
		lost = false;
		for (i = 0; i < s.n; i++) {
			lost |= events_ok(fail_at, i, "events", &seen[i].events,
					  &clean[i].events);
			lost |= events_ok(fail_at, i, "events2",
					  &seen[i].events2, &clean[i].events2);
			if (seen[i].result != clean[i].result ||
			    seen[i].result_known != clean[i].result_known ||
			    seen[i].duplicate != clean[i].duplicate)
				fail_msg("allocation %llu failed: entry %zu "
					 "recorded %d, the clean run %d",
					 (unsigned long long)fail_at, i,
					 seen[i].result, clean[i].result);
		}
		if (snap_len != ref_len || memcmp(snap, ref, ref_len) != 0)
			fail_msg("allocation %llu failed: the store differs "
				 "from the clean run's",
				 (unsigned long long)fail_at);
		free(snap);
		same++;
		lossy += lost;
	}
	print_message("%llu allocations: %llu stops, %llu identical runs "
		      "(%llu of them with events lost, and said so)\n",
		      (unsigned long long)allocs, (unsigned long long)stops,
		      (unsigned long long)same, (unsigned long long)lossy);
	assert_true(stops > 0);
	assert_true(same > 0); /* at least the run past the last allocation */
	assert_true(lossy > 0); /* events and their copies did fail */
	free(ref);
	seq_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_fails_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
