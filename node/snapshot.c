/*
 * node/snapshot.c: the daemon's snapshot callbacks for consensus/repl:
 * pin the store on the loop thread (O(hosts)), encode the pinned version
 * anywhere (consensus/sm_snap.c), restore by swapping in a decoded store.
 *
 * Installing a snapshot at run time (a follower too far behind gets the
 * leader's) skips the entries it replaces, so the swap does here what
 * applying them would have done, in apply_entry()'s order:
 *
 * 1. Rings follow the new domain registry (domains_resync()): domains no
 *    longer introduced on this host are detached, as a release or a move
 *    away would; domains introduced here that this member does not serve
 *    are attached from their registry entry, as their INTRODUCE would
 *    (the ring starts its session afresh); the others keep their
 *    connection and take the registry's target and watches.
 * 2. Watches fire for what changed between the old and the new store
 *    (consensus/snap_diff.h): an event on every node of this host's tree whose
 *    record differs (reaching watches on it and its ancestors, filtered by
 *    permission as any event), an event on every subtree that exists in
 *    one store only plus every watch below it (unfiltered, reporting the
 *    watch's own path, as after a restart), and @introduceDomain /
 *    @releaseDomain if domains joined or left the registry. Spurious
 *    events are possible (a child whose value changed and changed back);
 *    a node created and removed entirely within the skipped entries is
 *    invisible to a diff of states and fires nothing, except that a
 *    request of this member's own clients still waiting for its answer
 *    whose entry is among the skipped ones fires an event on each node it
 *    changed, first (submit_each_skipped(), snap_diff_touch()): its
 *    client is answered later, when the entry comes back as a duplicate,
 *    and sees its change's event before that answer as cxenstored
 *    guarantees, even if a later entry undid the change (a write, then a
 *    removal). If the diff is too
 *    large (SNAP_DIFF_MAX_EVENTS) or runs out of memory, every watch
 *    fires once instead.
 * 3. Transactions open here need nothing: they hold references to the
 *    nodes they read and accessed first, not to the store, go on reading
 *    the new store, and their commit entry is checked against the
 *    generations every replica has, so one that read a node the skipped
 *    entries changed fails with EAGAIN, as it would have after applying
 *    them.
 *
 * At start-up (no watch, domains not started yet) it is only the swap:
 * domains_start() reads the registry when the member serves.
 */
#include "node/snapshot.h"
#include "node/daemon.h"
#include "node/domains.h"
#include "node/watch.h"
#include "node/fire.h"
#include "node/submit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/sm.h"
#include "consensus/snap_diff.h"

struct snap_pin {
	struct daemon *d;
	struct store_pin *pin;
};

void *snapshot_pin(void *data)
{
	struct daemon *d = data;
	struct snap_pin *p = malloc(sizeof(*p));

	if (!p)
		return NULL;
	p->d = d;
	p->pin = store_pin(daemon_replica(d)); /* never the overlay */
	if (!p->pin) {
		free(p);
		return NULL;
	}
	return p;
}

void snapshot_unpin(void *data, void *pin)
{
	struct snap_pin *p = pin;

	store_unpin(p->pin);
	free(p);
}

int snapshot_write(void *pin, void **buf, size_t *len)
{
	struct snap_pin *p = pin;

	return sm_snapshot_encode(p->pin, buf, len);
}

static int path_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Fire this member's watches for df (see the header comment, step 2). */
static void fire_diff(struct daemon *d, const struct snap_diff *df)
{
	const char **roots;
	size_t i, n = df->replaced.n;

	if (df->all || df->changed.lost || df->replaced.lost ||
	    df->touched.lost) {
		fire_all(d);
		return;
	}
	fire_events(d, &df->touched);
	fire_events(d, &df->changed);
	fire_events(d, &df->replaced);
	if (!n)
		return;
	roots = malloc(n * sizeof(*roots));
	if (!roots) {
		/* better too many events than one missed */
		fire_all(d);
		return;
	}
	for (i = 0; i < n; i++)
		roots[i] = df->replaced.v[i].path;
	qsort(roots, n, sizeof(*roots), path_cmp);
	fire_below(d, roots, n);
	free(roots);
}

int snapshot_restore(void *data, const void *buf, size_t len)
{
	struct daemon *d = data;
	struct store *st;
	int rc;

	rc = sm_snapshot_decode_keyed(buf, len, store_hash_key(d->store), &st);
	if (rc) {
		log_msg(3, "snapshot of %zu bytes is damaged: %s", len,
			strerror(-rc));
		return rc;
	}
	if (d->committed) {
		/* standalone mode: the replica changes, not what clients
		 * see (node/standalone.h) */
		store_free(d->committed);
		d->committed = st;
		log_msg(6, "restored a snapshot at index %llu behind the "
			   "standalone overlay",
			(unsigned long long)store_applied_index(st));
		return 0;
	}
	snapshot_install(d, st);
	log_msg(6, "restored a snapshot at index %llu",
		(unsigned long long)store_applied_index(st));
	return 0;
}

struct touch_ctx {
	struct daemon *d;
	struct store *old, *st;
	struct snap_diff *df;
};

static int touch_path(void *arg, const char *path, bool exact)
{
	struct touch_ctx *t = arg;

	return snap_diff_touch(t->old, t->st, t->d->host, path, exact, t->df);
}

/* A request of ours applied among the skipped entries (step 2). */
static void touch_entry(void *arg, const void *entry, size_t len)
{
	struct touch_ctx *t = arg;
	struct sm_peek pk;

	if (sm_entry_peek(entry, len, &pk) == 0 &&
	    strcmp(pk.host, t->d->host) == 0)
		sm_entry_paths(entry, len, touch_path, t);
}

void snapshot_install(struct daemon *d, struct store *st)
{
	struct snap_diff df;
	struct store *old;
	struct touch_ctx t = {.d = d, .st = st, .df = &df};

	snap_diff_init(&df);
	old = d->store;
	t.old = old;
	if (d->watches && watch_total(d->watches) &&
	    snap_diff(old, st, d->host, &df))
		log_msg(4, "out of memory comparing the snapshot with the "
			   "store: every watch fires");
	if (d->watches && watch_total(d->watches))
		submit_each_skipped(d, old, st, touch_entry, &t);
	d->store = st;
	domains_resync(d);
	if (d->watches && watch_total(d->watches)) {
		fire_diff(d, &df);
		log_msg(6, "snapshot at index %llu replaces %llu: %zu changed "
			   "nodes, %zu replaced subtrees, %zu nodes of this "
			   "member's requests%s fire watches",
			(unsigned long long)store_applied_index(st),
			(unsigned long long)store_applied_index(old),
			df.changed.n, df.replaced.n, df.touched.n,
			df.all ? ", all watches" : "");
	}
	snap_diff_clear(&df);
	store_free(old);
}
