/*
 * consensus/repl_io.c: what libraft sees as its raft_io, the uv backend
 * behind a thin wrapper. It holds an InstallSnapshot that arrives while
 * our own snapshot is taken, drops one libraft would ignore and leak, and
 * checks the backend's errors for disk faults (repl_trace.c).
 */
#include "consensus/repl.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "consensus/repl_int.h"

/*
 * Every method but recv (below) and snapshot_put (repl_snapshot.c)
 * forwards to the uv backend. libraft sometimes calls
 * a method of the wrapper with the backend's io (its tick callback does
 * r->io->time(io)), so the repl is found from either.
 */
static int wrap_init(struct raft_io *io, raft_id id, const char *address);

struct repl *repl_io_owner(struct raft_io *io)
{
	if (io->init == wrap_init)
		return io->impl;
	return ((struct raft *)io->data)->data;
}

/*
 * libraft 0.22 crashes a follower that receives an InstallSnapshot while
 * it takes a snapshot of its own: legacy.c puts the install on hold, and
 * when the take completes, takeSnapshotCb clears the pending pointer
 * before it reads it (r->legacy.snapshot_pending = NULL; persist =
 * r->legacy.snapshot_pending), then dereferences NULL. (Still so in
 * cowsql/raft's main branch.) Our asynchronous snapshot makes the take
 * long enough for a lagging follower to hit it. So the io wrapper holds
 * such a message itself while a take runs (the latest one: a newer
 * snapshot supersedes an older) and hands it to libraft right after the
 * take completes, when libraft installs it at once. A message delivered
 * late is a message delayed by the network: Raft is safe with either.
 */
static void install_free(struct raft_message *m)
{
	raft_free(m->install_snapshot.data.base);
	raft_configuration_close(&m->install_snapshot.conf);
}

static void held_drop(struct repl *r)
{
	if (!r->has_held)
		return;
	r->has_held = false;
	install_free(&r->held);
}

/*
 * libraft 0.22 ignores an InstallSnapshot that arrives while it installs
 * one (the leader sends it again), but leaks its data and configuration:
 * replicationInstallSnapshot() answers "async" and nobody frees them
 * (several MB in a 30 s run of the fault-injection suite, found by
 * LeakSanitizer). So such a message is dropped here, freed.
 */
static bool install_busy(struct repl *r, struct raft_message *m)
{
	if (!r->raft.snapshot.installing)
		return false;
	repl_logf(r, 7, "snapshot (%llu^%llu) from server %llu ignored: one is "
		  "being installed",
		  (unsigned long long)m->install_snapshot.last_index,
		  (unsigned long long)m->install_snapshot.last_term,
		  (unsigned long long)m->server_id);
	install_free(m);
	return true;
}

static void held_deliver(struct repl *r)
{
	struct raft_message m;

	if (!r->has_held || r->snap_job)
		return;
	if (r->closing || r->io_close_deferred) {
		held_drop(r);
		return;
	}
	r->has_held = false;
	m = r->held;
	if (install_busy(r, &m))
		return;
	repl_logf(r, 6, "installing the snapshot (%llu^%llu) from server %llu, "
		  "held while our own was taken",
		  (unsigned long long)m.install_snapshot.last_index,
		  (unsigned long long)m.install_snapshot.last_term,
		  (unsigned long long)m.server_id);
	r->raft_recv(r->held_io, &m);
}

/*
 * Any message from a server shows that it ran a moment ago: remember when
 * (repl_heard_ms; `domain adopt` asks whether a host may still be alive).
 * The transport authenticated the sender (repl_tls.c) before libraft or
 * this wrapper sees a byte of it.
 */
static void heard(struct repl *r, uint64_t id)
{
	uint64_t now = uv_now(r->loop);
	unsigned i;

	for (i = 0; i < r->n_heard; i++)
		if (r->heard[i].id == id) {
			r->heard[i].ms = now;
			return;
		}
	if (r->n_heard < REPL_HEARD_MAX) {
		r->heard[r->n_heard].id = id;
		r->heard[r->n_heard++].ms = now;
	}
}

uint64_t repl_heard_ms(struct repl *r, uint64_t id)
{
	unsigned i;

	for (i = 0; i < r->n_heard; i++)
		if (r->heard[i].id == id)
			return r->heard[i].ms;
	return 0;
}

/*
 * libraft 0.22.1 frees an AppendEntries message's batch twice when the
 * follower cannot append it: legacyHandleUpdateEntries() copies the
 * entries and frees entries[0].batch, then calls io->truncate() and
 * io->append(); if either fails, its error reaches recvCb(), which frees
 * entries[0].batch again (glibc: "double free detected in tcache 2").
 * Found by the fault-injection suite (seed 12, 5 members, cold-start and
 * recover faults): a member re-added with an empty data directory died
 * right after installing the leader's snapshot, on the next AppendEntries;
 * the stack (log_crash_handler_install()) and the core named recvCb's
 * free. libraft frees through raft_heap, so the batch's frees during the
 * delivery of its message are counted instead of done, and it is freed
 * once afterwards if libraft freed it at all. What failed is logged by
 * wrap_append()/wrap_truncate().
 */
static _Atomic(void *) guarded;	 /* the batch being delivered, or NULL */
static atomic_uint guarded_frees;

static void *heap_malloc(void *data, size_t size)
{
	(void)data;
	return malloc(size);
}

static void heap_free(void *data, void *ptr)
{
	(void)data;
	if (ptr && ptr == atomic_load_explicit(&guarded, memory_order_relaxed)) {
		atomic_fetch_add(&guarded_frees, 1);
		return;
	}
	free(ptr);
}

static void *heap_calloc(void *data, size_t nmemb, size_t size)
{
	(void)data;
	return calloc(nmemb, size);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void *heap_aligned_alloc(void *data, size_t alignment, size_t size)
{
	(void)data;
	/* C11 wants size to be a multiple of the alignment */
	return aligned_alloc(alignment,
			     (size + alignment - 1) / alignment * alignment);
}

static void heap_aligned_free(void *data, size_t alignment, void *ptr)
{
	(void)alignment;
	heap_free(data, ptr);
}

static struct raft_heap heap = {
	.malloc = heap_malloc,
	.free = heap_free,
	.calloc = heap_calloc,
	.realloc = heap_realloc,
	.aligned_alloc = heap_aligned_alloc,
	.aligned_free = heap_aligned_free,
};

void repl_heap_install(void)
{
	raft_heap_set(&heap);
}

void repl_heap_guard_begin(void *batch)
{
	atomic_store(&guarded_frees, 0);
	atomic_store(&guarded, batch);
}

unsigned repl_heap_guard_end(void *batch)
{
	unsigned n;

	atomic_store(&guarded, NULL);
	n = atomic_load(&guarded_frees);
	if (n)
		free(batch);
	return n;
}

static void deliver_entries(struct repl *r, struct raft_io *io,
			    struct raft_message *m)
{
	void *batch = m->append_entries.entries[0].batch;
	unsigned n;

	repl_heap_guard_begin(batch);
	r->raft_recv(io, m);
	n = repl_heap_guard_end(batch);
	if (n > 1)
		repl_logf(r, 4, "libraft freed the batch of an AppendEntries "
			  "from server %llu %u times (its append failed): "
			  "freed once",
			  (unsigned long long)m->server_id, n);
}

static void wrap_recv(struct raft_io *io, struct raft_message *m)
{
	struct repl *r = repl_io_owner(io);

	heard(r, m->server_id);
	if (m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries &&
	    m->append_entries.entries[0].batch) {
		deliver_entries(r, io, m);
		return;
	}
	if (m->type != RAFT_INSTALL_SNAPSHOT) {
		r->raft_recv(io, m);
		return;
	}
	if (install_busy(r, m))
		return;
	if (!r->snap_job) {
		r->raft_recv(io, m);
		return;
	}
	held_drop(r);
	r->held = *m;
	snprintf(r->held_address, sizeof(r->held_address), "%s",
		 m->server_address ? m->server_address : "");
	r->held.server_address = r->held_address;
	r->held_io = io;
	r->has_held = true;
	repl_logf(r, 6,
		  "holding the snapshot (%llu^%llu) from server %llu until "
		  "our own is written",
		  (unsigned long long)m->install_snapshot.last_index,
		  (unsigned long long)m->install_snapshot.last_term,
		  (unsigned long long)m->server_id);
}

#define INNER(io) (&repl_io_owner(io)->io)
#define KEEP_ERRMSG(io, rv)                                                    \
	do {                                                                   \
		if (rv)                                                        \
			memcpy(repl_io_owner(io)->wrap.errmsg,                 \
			       INNER(io)->errmsg,                              \
			       sizeof(repl_io_owner(io)->wrap.errmsg));        \
	} while (0)

static int wrap_init(struct raft_io *io, raft_id id, const char *address)
{
	int rv;

	/* uv calls back with its own io: it must lead to the raft too */
	INNER(io)->data = io->data;
	rv = INNER(io)->init(INNER(io), id, address);
	KEEP_ERRMSG(io, rv);
	return rv;
}

static void wrap_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct repl *r = repl_io_owner(io);

	r->wrap_close_cb = cb;
	held_drop(r);
	if (r->snap_job) {
		/* the serialisation runs on: close when it is back */
		r->io_close_deferred = true;
		return;
	}
	r->io.close(&r->io, cb);
}

/*
 * The snapshot job is over (r->snap_job is NULL again): hand libraft the
 * InstallSnapshot held meanwhile, and finish a close that waited for it.
 */
void repl_io_snapshot_done(struct repl *r)
{
	raft_io_close_cb close_cb;

	held_deliver(r);
	if (r->io_close_deferred) {
		r->io_close_deferred = false;
		close_cb = r->wrap_close_cb;
		r->io.close(&r->io, close_cb);
	}
}

/* A copy of the command entries after the snapshot (repl_local_tail);
 * without memory, none (the member then serves only its snapshot). */
static void keep_tail(struct repl *r, uint64_t snap, uint64_t start,
		      const struct raft_entry *e, size_t n)
{
	size_t i;

	repl_local_tail_drop(r);
	r->tail = calloc(n ? n : 1, sizeof(*r->tail));
	if (!r->tail)
		return;
	for (i = 0; i < n; i++) {
		struct repl_tail *t = &r->tail[r->n_tail];

		if (e[i].type != RAFT_COMMAND || start + i <= snap)
			continue;
		t->buf = malloc(e[i].buf.len ? e[i].buf.len : 1);
		if (!t->buf) {
			repl_local_tail_drop(r);
			return;
		}
		memcpy(t->buf, e[i].buf.base, e[i].buf.len);
		t->len = e[i].buf.len;
		t->index = start + i;
		r->n_tail++;
	}
}

static int wrap_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
		     struct raft_snapshot **snapshot, raft_index *start_index,
		     struct raft_entry *entries[], size_t *n_entries)
{
	int rv = INNER(io)->load(INNER(io), term, voted_for, snapshot,
				 start_index, entries, n_entries);

	if (rv == 0 && *snapshot)
		repl_io_owner(io)->snapshot_index = (*snapshot)->index;
	if (rv == 0)
		keep_tail(repl_io_owner(io), *snapshot ? (*snapshot)->index : 0,
			  *start_index, *entries, *n_entries);
	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_start(struct raft_io *io, unsigned msecs,
		      raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	int rv;

	repl_io_owner(io)->raft_recv = recv;
	rv = INNER(io)->start(INNER(io), msecs, tick, wrap_recv);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_bootstrap(struct raft_io *io,
			  const struct raft_configuration *conf)
{
	int rv = INNER(io)->bootstrap(INNER(io), conf);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_recover(struct raft_io *io,
			const struct raft_configuration *conf)
{
	int rv = INNER(io)->recover(INNER(io), conf);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_set_term(struct raft_io *io, raft_term term)
{
	int rv = INNER(io)->set_term(INNER(io), term);

	KEEP_ERRMSG(io, rv);
	if (rv)
		repl_trace_disk_check(repl_io_owner(io), INNER(io)->errmsg);
	return rv;
}

static int wrap_set_vote(struct raft_io *io, raft_id id)
{
	int rv = INNER(io)->set_vote(INNER(io), id);

	KEEP_ERRMSG(io, rv);
	if (rv)
		repl_trace_disk_check(repl_io_owner(io), INNER(io)->errmsg);
	return rv;
}

static int wrap_send(struct raft_io *io, struct raft_io_send *req,
		     const struct raft_message *m, raft_io_send_cb cb)
{
	int rv = INNER(io)->send(INNER(io), req, m, cb);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n,
		       raft_io_append_cb cb)
{
	int rv = INNER(io)->append(INNER(io), req, entries, n, cb);

	KEEP_ERRMSG(io, rv);
	if (rv)
		repl_logf(repl_io_owner(io), 3, "log append of %u entries "
			  "failed: %s (%s)", n, raft_strerror(rv),
			  INNER(io)->errmsg);
	return rv;
}

static int wrap_truncate(struct raft_io *io, raft_index index)
{
	int rv = INNER(io)->truncate(INNER(io), index);

	KEEP_ERRMSG(io, rv);
	if (rv)
		repl_logf(repl_io_owner(io), 3, "log truncation at index %llu "
			  "failed: %s (%s)", (unsigned long long)index,
			  raft_strerror(rv), INNER(io)->errmsg);
	return rv;
}

static int wrap_snapshot_get(struct raft_io *io,
			     struct raft_io_snapshot_get *req,
			     raft_io_snapshot_get_cb cb)
{
	int rv = INNER(io)->snapshot_get(INNER(io), req, cb);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static raft_time wrap_time(struct raft_io *io)
{
	struct repl *r = repl_io_owner(io);

	r->wrap.capacity = r->io.capacity;
	return r->io.time(&r->io);
}

static int wrap_random(struct raft_io *io, int min, int max)
{
	return INNER(io)->random(INNER(io), min, max);
}

void repl_io_setup(struct repl *r)
{
	struct raft_io *w = &r->wrap;

	memset(w, 0, sizeof(*w));
	w->version = r->io.version;
	w->impl = r;
	w->init = wrap_init;
	w->close = wrap_close;
	w->load = wrap_load;
	w->start = wrap_start;
	w->bootstrap = wrap_bootstrap;
	w->recover = wrap_recover;
	w->set_term = wrap_set_term;
	w->set_vote = wrap_set_vote;
	w->send = wrap_send;
	w->append = wrap_append;
	w->truncate = wrap_truncate;
	w->snapshot_put = repl_snapshot_put;
	w->snapshot_get = wrap_snapshot_get;
	w->time = wrap_time;
	w->random = wrap_random;
}
