/*
 * consensus/repl_snapshot.c: taking snapshots off the loop, and restoring
 * them. libraft's FSM calls pin the daemon's state (repl_fsm.snapshot_pin);
 * the io wrapper's snapshot_put serialises it on libuv's thread pool and
 * hands the bytes, under our checksummed header, to the uv backend.
 */
#include "consensus/repl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "consensus/repl_int.h"

/*
 * Snapshots off the loop. libraft 0.22.1 calls the FSM's snapshot (and even
 * its "async" variant) on the loop thread and then hands the buffers to
 * io->snapshot_put. So the FSM only pins the state and returns a one-byte
 * placeholder; the wrapper's snapshot_put (below) recognises it, serialises
 * the pinned, immutable state on libuv's thread pool and then gives the real
 * bytes to the uv backend. Nothing of the store is copied on the loop.
 */
static const uint8_t placeholder_byte = 0x5A;

int repl_snapshot_take(struct raft_fsm *f, struct raft_buffer *bufs[],
		       unsigned *n_bufs)
{
	struct repl *r = f->data;

	if (r->snap_pin)
		return RAFT_BUSY;
	r->snap_pin = r->fsm->snapshot_pin(r->fsm->data);
	if (!r->snap_pin)
		return RAFT_NOMEM;
	r->snap_placeholder.base = (void *)&placeholder_byte;
	r->snap_placeholder.len = 1;
	*bufs = &r->snap_placeholder;
	*n_bufs = 1;
	return 0;
}

/*
 * Entries between snapshots: the configured threshold, or one entry per
 * SNAPSHOT_BYTES_PER_ENTRY bytes of the last snapshot if that is more. A
 * snapshot rewrites the whole tree, so a fixed count would make the cost
 * of a write grow with the tree (1,000,000 nodes are ~100 MB); this way a
 * write pays for at most ~256 bytes of snapshot, and the log kept in
 * memory stays smaller than the snapshot.
 */
#define SNAPSHOT_BYTES_PER_ENTRY 256

static unsigned snapshot_threshold_now(const struct repl *r)
{
	size_t t = r->last_snapshot_len / SNAPSHOT_BYTES_PER_ENTRY;

	if (t < r->snapshot_threshold)
		return r->snapshot_threshold;
	return t > UINT_MAX / 2 ? UINT_MAX / 2 : (unsigned)t;
}

/* FSM version 2+: called once the snapshot is on disk (or failed). */
int repl_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[],
			   unsigned *n_bufs)
{
	struct repl *r = f->data;

	if (r->snap_pin)
		r->fsm->snapshot_unpin(r->fsm->data, r->snap_pin);
	r->snap_pin = NULL;
	/* also ends a repl_snapshot_now() */
	raft_set_snapshot_threshold(&r->raft, snapshot_threshold_now(r));
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* Restore: on success the buffer is ours to free (libraft's contract). */
int repl_snapshot_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	struct repl *r = f->data;
	const void *payload;
	size_t len;
	char why[96];
	int rc;

	rc = repl_snapfile_unwrap(r, buf->base, buf->len, &payload, &len, why,
				  sizeof(why));
	if (rc) {
		repl_logf(r, 3, "cannot restore a snapshot of %zu bytes: %s",
			  buf->len, why);
		return RAFT_CORRUPT;
	}
	rc = r->fsm->restore(r->fsm->data, payload, len);
	if (rc) {
		repl_logf(r, 3, "cannot restore snapshot: %s", strerror(-rc));
		return RAFT_CORRUPT;
	}
	r->last_snapshot_len = buf->len;
	raft_set_snapshot_threshold(&r->raft, snapshot_threshold_now(r));
	raft_free(buf->base);
	return 0;
}

struct snap_job {
	struct repl *r;
	uv_work_t work;
	struct raft_io_snapshot_put *req; /* libraft's */
	raft_io_snapshot_put_cb cb;
	unsigned trailing;
	struct raft_snapshot snap; /* metadata from libraft, our buffers */
	struct raft_buffer buf;	   /* the FSM's bytes */
	uint8_t hdr[SNAP_HDR];	   /* and their envelope */
	struct raft_buffer bufs[2];
	struct raft_io_snapshot_put inner;
	int rc;
};

static void snap_work(uv_work_t *w)
{
	struct snap_job *j = w->data;
	void *data = NULL;
	size_t len = 0;

	/* Another thread: only the pinned, immutable state is read. */
	j->rc = j->r->fsm->snapshot_write(j->r->snap_pin, &data, &len);
	j->buf.base = data;
	j->buf.len = len;
	if (!j->rc)
		repl_snapfile_envelope(j->r, j->hdr, data, len);
}

static void snap_job_done(struct snap_job *j, int status)
{
	struct repl *r = j->r;

	r->snap_job = NULL;
	free(j->buf.base);
	j->cb(j->req, status);
	free(j);
	repl_io_snapshot_done(r);
}

static void snap_inner_done(struct raft_io_snapshot_put *req, int status)
{
	struct snap_job *j = req->data;

	if (status == 0) {
		j->r->last_snapshot_len = j->buf.len;
		j->r->snapshot_index = j->snap.index;
		repl_logf(j->r, 6, "snapshot at index %llu: %zu bytes written; "
			  "the next after %u entries",
			  (unsigned long long)j->snap.index, j->buf.len,
			  snapshot_threshold_now(j->r));
	}
	snap_job_done(j, status);
}

static void snap_after_work(uv_work_t *w, int status)
{
	struct snap_job *j = w->data;
	struct repl *r = j->r;
	int rv;

	if (status == UV_ECANCELED || r->io_close_deferred) {
		snap_job_done(j, RAFT_CANCELED);
		return;
	}
	if (j->rc) {
		/*
		 * libraft 0.22 asserts that a snapshot only fails when it is
		 * shutting down, so try once more on the loop before giving up.
		 */
		repl_logf(r, 4, "snapshot serialisation failed (%s): retrying",
			  strerror(-j->rc));
		snap_work(w);
		if (j->rc) {
			repl_logf(r, 2, "cannot serialise a snapshot: %s",
				  strerror(-j->rc));
			abort();
		}
	}
	j->bufs[0].base = j->hdr;
	j->bufs[0].len = SNAP_HDR;
	j->bufs[1] = j->buf;
	j->snap.bufs = j->bufs;
	j->snap.n_bufs = 2;
	j->inner.data = j;
	rv = r->io.snapshot_put(&r->io, j->trailing, &j->inner, &j->snap,
				snap_inner_done);
	if (rv) {
		memcpy(r->wrap.errmsg, r->io.errmsg, sizeof(r->wrap.errmsg));
		snap_job_done(j, rv);
	}
}

int repl_snapshot_put(struct raft_io *io, unsigned trailing,
		      struct raft_io_snapshot_put *req,
		      const struct raft_snapshot *snapshot,
		      raft_io_snapshot_put_cb cb)
{
	struct repl *r = repl_io_owner(io);
	struct snap_job *j;
	int rv;

	if (snapshot->n_bufs != 1 ||
	    snapshot->bufs[0].base != (void *)&placeholder_byte) {
		/* a snapshot received from a leader: pass it through */
		rv = r->io.snapshot_put(&r->io, trailing, req, snapshot, cb);
		if (rv)
			memcpy(r->wrap.errmsg, r->io.errmsg,
			       sizeof(r->wrap.errmsg));
		else /* libraft cannot go on if writing it fails */
			r->snapshot_index = snapshot->index;
		return rv;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return RAFT_NOMEM;
	j->r = r;
	j->req = req;
	j->cb = cb;
	j->trailing = trailing;
	j->snap = *snapshot; /* libraft keeps its copy alive until cb */
	j->work.data = j;
	rv = uv_queue_work(r->loop, &j->work, snap_work, snap_after_work);
	if (rv) {
		free(j);
		return RAFT_IOERR;
	}
	r->snap_job = j;
	return 0;
}

uint64_t repl_snapshot_index(struct repl *r)
{
	return r->snapshot_index;
}

void repl_snapshot_now(struct repl *r)
{
	/*
	 * libraft snapshots when the threshold is reached after an apply:
	 * lower it until the next snapshot is finalised.
	 */
	raft_set_snapshot_threshold(&r->raft, 1);
}
