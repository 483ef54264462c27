/*
 * consensus/repl.c: libraft 0.22 on its libuv backend, behind repl.h.
 *
 * A cluster of one runs with a transport that never connects (no port is
 * bound); a configured cluster uses libraft's TCP transport. libraft error
 * codes become negative errno values here and nowhere else.
 */
#include "consensus/repl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/auth.h"
#include "wire/le.h"

struct repl {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport; /* TCP or none */
	struct raft_uv_transport *auth;	    /* authenticated TCP, if keyed */
	bool tcp;
	bool io_ready, transport_ready, raft_ready;
	struct raft_fsm rfsm;
	const struct repl_fsm *fsm;
	struct raft_tracer tracer;

	/* the snapshot being taken: pinned state, placeholder, async job */
	void *snap_pin;
	struct raft_buffer snap_placeholder;
	struct snap_job *snap_job;
	unsigned snapshot_threshold;	/* configured */
	size_t last_snapshot_len;	/* bytes of the last one we wrote */

	/* submissions of this loop iteration, one log entry at its end */
	struct batch *batch;
	uv_prepare_t flush;
	uint64_t batches, batched;	/* counters, for the log at close */

	/* barriers announcing the commit index (repl_announce_commit) */
	struct raft_barrier barrier;
	bool barrier_inflight, barrier_again;

	/* read index: the term in which this leader has committed an entry
	 * of its own (a barrier), and the barrier confirming it */
	struct raft_barrier term_barrier;
	bool term_barrier_inflight;
	uint64_t term_barrier_term, committed_term;

	/* what libraft sees: the uv backend behind a thin wrapper */
	struct raft_io wrap;
	raft_io_close_cb wrap_close_cb;
	bool io_close_deferred;

	/* an InstallSnapshot held while our own snapshot is taken */
	raft_io_recv_cb raft_recv;
	struct raft_io *held_io;
	struct raft_message held;
	char held_address[256];
	bool has_held;

	bool closing;
	unsigned pending_closes;
	repl_close_cb close_cb;
	void *close_arg;

	/* disk faults: where the log is, checksums, the last ENOSPC warning */
	char dir[PATH_MAX];
	uint32_t crc_table[256];
	time_t nospace_logged;
};

/*
 * Batching. Every submission of one loop iteration (the requests of every
 * client that were readable at once) goes into one log entry of several
 * frames, appended just before the loop waits again. A Raft entry costs a
 * disk write slot, an AppendEntries message per peer and libraft's
 * bookkeeping; shared by a batch, it is paid once for up to
 * BATCH_MAX_FRAMES requests (BATCH_MAX_BYTES of them). Frames of an entry
 * are applied in order, all under the entry's index, before any other
 * request is read: no client can observe a state between them, so sharing
 * the index (the generation of what they change) is as good as
 * consecutive indexes.
 */
#define BATCH_MAX_FRAMES 1024
#define BATCH_MAX_BYTES (1u << 20)

/* Delay between attempts to connect to a peer (see repl_open). */
#define REPL_CONNECT_RETRY_MS 50

struct submit {
	repl_submit_cb cb;
	void *arg;
};

struct batch {
	struct raft_apply req;
	struct raft_buffer buf;	/* frames so far; buf.len is their length */
	size_t cap;
	struct submit *subs;
	unsigned n, subs_cap;
};

static void logf_(struct repl *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct repl *r, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r->fsm->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->fsm->log(r->fsm->data, level, msg);
}

/* libraft error codes, translated once. */
static int from_raft(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return -ENOMEM;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return -ENOTCONN;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return -ESHUTDOWN;
	case RAFT_NOSPACE:
		return -ENOSPC;
	case RAFT_TOOBIG:
		return -E2BIG;
	case RAFT_BUSY:
		return -EBUSY;
	case RAFT_NOTFOUND:
		return -ENOENT;
	case RAFT_INVALID:
	case RAFT_BADID:
	case RAFT_BADROLE:
		return -EINVAL;
	case RAFT_UNAUTHORIZED:
		return -EACCES;
	case RAFT_NAMETOOLONG:
		return -ENAMETOOLONG;
	case RAFT_CORRUPT:
	case RAFT_MALFORMED:
	case RAFT_IOERR:
		return -EIO;
	default:
		return -EIO;
	}
}

/* ---- Disk faults ---------------------------------------------------- */

/*
 * CRC-32 as libraft's uv backend computes it for its .meta files
 * (polynomial 0x04C11DB7, most significant bit first, initial value 0, no
 * final xor), so one function checks their files and ours. The table is
 * filled once by repl_open, before any thread reads it.
 */
static void crc_init(uint32_t table[256])
{
	uint32_t c;
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i << 24;
		for (k = 0; k < 8; k++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
		table[i] = c;
	}
}

static uint32_t crc_of(const uint32_t table[256], const void *buf, size_t len,
		       uint32_t crc)
{
	const uint8_t *p = buf;

	while (len--)
		crc = (crc << 8) ^ table[((crc >> 24) ^ *p++) & 255];
	return crc;
}

/*
 * Our snapshots carry their own checksum: libraft's uv backend checks the
 * .meta file but reads the data file back unchecked, so a flipped bit
 * there would be restored as it is. The data file is this header and
 * then the FSM's bytes:
 *
 *   "XSRSNAP1" | u64 LE payload length | u32 LE CRC-32 of it | u32 zero
 *
 * A file without the magic (written before it existed) is restored
 * unchecked. Snapshots a leader sends are its files: they carry it too.
 */
#define SNAP_MAGIC "XSRSNAP1"
#define SNAP_HDR 24

/* Fill hdr for the payload buf. */
static void snap_envelope(const struct repl *r, uint8_t hdr[SNAP_HDR],
			  const void *buf, size_t len)
{
	memcpy(hdr, SNAP_MAGIC, 8);
	put_le(hdr + 8, len, 8);
	put_le(hdr + 16, crc_of(r->crc_table, buf, len, 0), 4);
	put_le(hdr + 20, 0, 4);
}

/*
 * Check a snapshot's bytes and find the FSM's payload in them: 0, or
 * -EILSEQ (checksum mismatch) or -ENODATA (shorter or longer than its
 * header says), with why filled in either case.
 */
static int snap_unwrap(const struct repl *r, const void *buf, size_t len,
		       const void **payload, size_t *payload_len, char *why,
		       size_t why_len)
{
	const uint8_t *p = buf;
	uint64_t want;

	*payload = buf;
	*payload_len = len;
	snprintf(why, why_len, "written before snapshots had a checksum");
	if (len < 8 || memcmp(p, SNAP_MAGIC, 8))
		return 0;
	want = len >= SNAP_HDR ? get_le(p + 8, 8) : 0;
	if (len < SNAP_HDR || want != len - SNAP_HDR) {
		snprintf(why, why_len, "%zu bytes instead of %llu: truncated "
			 "or extended", len,
			 (unsigned long long)(want + SNAP_HDR));
		return -ENODATA;
	}
	if (crc_of(r->crc_table, p + SNAP_HDR, want, 0) !=
	    (uint32_t)get_le(p + 16, 4)) {
		snprintf(why, why_len, "checksum mismatch");
		return -EILSEQ;
	}
	snprintf(why, why_len, "checksum good");
	*payload = p + SNAP_HDR;
	*payload_len = want;
	return 0;
}

/*
 * Whether a libraft message says that a write to the log may not be on
 * disk for a reason other than lack of space. Its uv backend writes
 * entries with RWF_DSYNC (kernel AIO), so a failed sync of the log shows
 * as "write failed: -5" (and is retried for ever); its other files report
 * "fsync: i/o error". Returns the errno of a failed sync, -ENOSPC for a
 * full disk (retrying is right then), 0 for anything else.
 */
static int sync_error_of(const char *m)
{
	const char *p;
	int e;

	p = strstr(m, "write failed: ");
	if (p && sscanf(p + 14, "%d", &e) == 1 && e < 0) {
		e = -e;
		return (e == ENOSPC || e == EDQUOT) ? -ENOSPC : e;
	}
	p = strstr(m, "fsync: ");
	if (!p)
		p = strstr(m, "fdatasync: ");
	if (!p)
		return 0;
	p = strchr(p, ' ') + 1;
	if (!strncmp(p, uv_strerror(UV_ENOSPC), strlen(uv_strerror(UV_ENOSPC))))
		return -ENOSPC;
	return EIO;
}

/*
 * Stop the member after a failed sync. Nothing is retried and nothing
 * more is written: after such an error the kernel may have dropped the
 * dirty pages (and cleared the error), so a later fsync that succeeds
 * proves nothing (the PostgreSQL "fsyncgate" lesson). On restart the log
 * is read back from the disk and the rest comes from the peers.
 */
static void disk_failed(struct repl *r, int err, const char *what)
{
	char msg[PATH_MAX + 1024];

	snprintf(msg, sizeof(msg),
		 "fatal: fsync of the log in %s failed (%s, libraft: \"%s\"): "
		 "stopping; this member re-syncs from its log and its peers "
		 "on restart",
		 r->dir, err == EIO ? "EIO" : strerror(err), what);
	if (r->fsm->disk_failed)
		r->fsm->disk_failed(r->fsm->data, msg);
	logf_(r, 2, "%s", msg);
	_exit(1);
}

/*
 * Look at a libraft message for a disk fault: stop on a failed sync, warn
 * (at most once a minute) about a full disk.
 */
static void nospace_warn(struct repl *r, const char *m)
{
	time_t now = time(NULL);

	if (now - r->nospace_logged >= 60) {
		r->nospace_logged = now;
		logf_(r, 4, "the disk of the log in %s is full (%s): writes "
		      "fail until there is space again, reads go on", r->dir, m);
	}
}

static void disk_check(struct repl *r, const char *m)
{
	int e = sync_error_of(m);

	if (e > 0)
		disk_failed(r, e, m);
	if (e == -ENOSPC)
		nospace_warn(r, m);
}

/*
 * libraft's diagnostics. Its uv backend reports a damaged log tail (an
 * open segment cut short by a crash) at trace level; that one matters to
 * an administrator, so it is raised to a warning.
 */
static void tracer_emit(struct raft_tracer *t, int type, const void *info)
{
	struct repl *r = t->impl;
	const struct raft_tracer_info *i = info;
	const char *m;
	int level;

	if (type != RAFT_TRACER_DIAGNOSTIC || !i || !i->diagnostic.message)
		return;
	m = i->diagnostic.message;
	disk_check(r, m);
	switch (i->diagnostic.level) {
	case 1:
		level = 3;
		break;
	case 2:
		level = 4;
		break;
	case 3:
		/* per-request chatter, except what an admin wants to see */
		level = (strstr(m, "convert to") || strstr(m, "elect") ||
			 strstr(m, "snapshot") || strstr(m, "entries ("))
				? 6
				: 7;
		break;
	default:
		level = 7;
		break;
	}
	if (strstr(m, "truncate open segment") || strstr(m, "corrupt") ||
	    strstr(m, "non-zero trail") || strstr(m, "checksum"))
		level = 4;
	if (level <= 6 || getenv("XSR_RAFT_TRACE"))
		logf_(r, level, "raft: %s", m);
}

static void auth_log(void *data, int level, const char *msg)
{
	logf_(data, level, "%s", msg);
}

/* ---- A transport for a cluster of one: nothing to listen to. ---- */

static int null_init(struct raft_uv_transport *t, raft_id id,
		     const char *address)
{
	return 0;
}

static int null_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	return 0;
}

static int null_connect(struct raft_uv_transport *t,
			struct raft_uv_connect *req, raft_id id,
			const char *address, raft_uv_connect_cb cb)
{
	return RAFT_NOCONNECTION;
}

static void null_close(struct raft_uv_transport *t,
		       raft_uv_transport_close_cb cb)
{
	cb(t);
}

/* ---- FSM glue ---- */

/*
 * libraft wants entry lengths in multiples of 8: an entry is framed as
 * {u32 little-endian payload length, u32 zero} + payload + zero padding.
 */
#define FRAME_HDR 8

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf,
		     void **result)
{
	struct repl *r = f->data;
	uint64_t index = raft_last_applied(&r->raft) + 1;
	const uint8_t *p = buf->base;
	size_t off = 0;
	uint32_t len;

	*result = NULL;
	if (buf->len < FRAME_HDR) {
		logf_(r, 3, "log entry %llu is too short: skipped",
		      (unsigned long long)index);
		r->fsm->apply(r->fsm->data, index, "", 0);
		return 0;
	}
	/* one frame per request of a batch (see repl_submit) */
	while (buf->len - off >= FRAME_HDR) {
		len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
		      (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		if (len > buf->len - off - FRAME_HDR) {
			logf_(r, 3, "log entry %llu has a bad length at "
			      "offset %zu: the rest is skipped",
			      (unsigned long long)index, off);
			break;
		}
		/* libraft advances last_applied after this returns. */
		r->fsm->apply(r->fsm->data, index, p + off + FRAME_HDR, len);
		off += (FRAME_HDR + (size_t)len + 7) & ~(size_t)7;
	}
	return 0;
}

/*
 * Snapshots off the loop. libraft 0.22.1 calls the FSM's snapshot (and even
 * its "async" variant) on the loop thread and then hands the buffers to
 * io->snapshot_put. So the FSM only pins the state and returns a one-byte
 * placeholder; the wrapper's snapshot_put (below) recognises it, serialises
 * the pinned, immutable state on libuv's thread pool and then gives the real
 * bytes to the uv backend. Nothing of the store is copied on the loop.
 */
static const uint8_t placeholder_byte = 0x5A;

static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[],
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
static int fsm_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[],
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
static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	struct repl *r = f->data;
	const void *payload;
	size_t len;
	char why[96];
	int rc;

	rc = snap_unwrap(r, buf->base, buf->len, &payload, &len, why,
			 sizeof(why));
	if (rc) {
		logf_(r, 3, "cannot restore a snapshot of %zu bytes: %s",
		      buf->len, why);
		return RAFT_CORRUPT;
	}
	rc = r->fsm->restore(r->fsm->data, payload, len);
	if (rc) {
		logf_(r, 3, "cannot restore snapshot: %s", strerror(-rc));
		return RAFT_CORRUPT;
	}
	r->last_snapshot_len = buf->len;
	raft_set_snapshot_threshold(&r->raft, snapshot_threshold_now(r));
	raft_free(buf->base);
	return 0;
}

/* ---- The raft_io wrapper --------------------------------------------- */

/*
 * Every other method forwards to the uv backend. libraft sometimes calls
 * a method of the wrapper with the backend's io (its tick callback does
 * r->io->time(io)), so the repl is found from either.
 */
static int wrap_init(struct raft_io *io, raft_id id, const char *address);

static struct repl *repl_of(struct raft_io *io)
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
	logf_(r, 7, "snapshot (%llu^%llu) from server %llu ignored: one is "
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
	logf_(r, 6, "installing the snapshot (%llu^%llu) from server %llu, "
	      "held while our own was taken",
	      (unsigned long long)m.install_snapshot.last_index,
	      (unsigned long long)m.install_snapshot.last_term,
	      (unsigned long long)m.server_id);
	r->raft_recv(r->held_io, &m);
}

static void wrap_recv(struct raft_io *io, struct raft_message *m)
{
	struct repl *r = repl_of(io);

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
	logf_(r, 6, "holding the snapshot (%llu^%llu) from server %llu until "
	      "our own is written",
	      (unsigned long long)m->install_snapshot.last_index,
	      (unsigned long long)m->install_snapshot.last_term,
	      (unsigned long long)m->server_id);
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
		snap_envelope(j->r, j->hdr, data, len);
}

static void snap_job_done(struct snap_job *j, int status)
{
	struct repl *r = j->r;
	raft_io_close_cb close_cb;

	r->snap_job = NULL;
	free(j->buf.base);
	j->cb(j->req, status);
	free(j);
	held_deliver(r);
	if (r->io_close_deferred) {
		r->io_close_deferred = false;
		close_cb = r->wrap_close_cb;
		r->io.close(&r->io, close_cb);
	}
}

static void snap_inner_done(struct raft_io_snapshot_put *req, int status)
{
	struct snap_job *j = req->data;

	if (status == 0) {
		j->r->last_snapshot_len = j->buf.len;
		logf_(j->r, 6, "snapshot at index %llu: %zu bytes written; "
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
		logf_(r, 4, "snapshot serialisation failed (%s): retrying",
		      strerror(-j->rc));
		snap_work(w);
		if (j->rc) {
			logf_(r, 2, "cannot serialise a snapshot: %s",
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

static int wrap_snapshot_put(struct raft_io *io, unsigned trailing,
			     struct raft_io_snapshot_put *req,
			     const struct raft_snapshot *snapshot,
			     raft_io_snapshot_put_cb cb)
{
	struct repl *r = repl_of(io);
	struct snap_job *j;
	int rv;

	if (snapshot->n_bufs != 1 ||
	    snapshot->bufs[0].base != (void *)&placeholder_byte) {
		/* a snapshot received from a leader: pass it through */
		rv = r->io.snapshot_put(&r->io, trailing, req, snapshot, cb);
		if (rv)
			memcpy(r->wrap.errmsg, r->io.errmsg,
			       sizeof(r->wrap.errmsg));
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

#define INNER(io) (&repl_of(io)->io)
#define KEEP_ERRMSG(io, rv)                                                    \
	do {                                                                   \
		if (rv)                                                        \
			memcpy(repl_of(io)->wrap.errmsg, INNER(io)->errmsg,    \
			       sizeof(repl_of(io)->wrap.errmsg));              \
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
	struct repl *r = repl_of(io);

	r->wrap_close_cb = cb;
	held_drop(r);
	if (r->snap_job) {
		/* the serialisation runs on: close when it is back */
		r->io_close_deferred = true;
		return;
	}
	r->io.close(&r->io, cb);
}

static int wrap_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
		     struct raft_snapshot **snapshot, raft_index *start_index,
		     struct raft_entry *entries[], size_t *n_entries)
{
	int rv = INNER(io)->load(INNER(io), term, voted_for, snapshot,
				 start_index, entries, n_entries);

	KEEP_ERRMSG(io, rv);
	return rv;
}

static int wrap_start(struct raft_io *io, unsigned msecs,
		      raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	int rv;

	repl_of(io)->raft_recv = recv;
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
		disk_check(repl_of(io), INNER(io)->errmsg);
	return rv;
}

static int wrap_set_vote(struct raft_io *io, raft_id id)
{
	int rv = INNER(io)->set_vote(INNER(io), id);

	KEEP_ERRMSG(io, rv);
	if (rv)
		disk_check(repl_of(io), INNER(io)->errmsg);
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
	return rv;
}

static int wrap_truncate(struct raft_io *io, raft_index index)
{
	int rv = INNER(io)->truncate(INNER(io), index);

	KEEP_ERRMSG(io, rv);
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
	struct repl *r = repl_of(io);

	r->wrap.capacity = r->io.capacity;
	return r->io.time(&r->io);
}

static int wrap_random(struct raft_io *io, int min, int max)
{
	return INNER(io)->random(INNER(io), min, max);
}

static void wrap_setup(struct repl *r)
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
	w->snapshot_put = wrap_snapshot_put;
	w->snapshot_get = wrap_snapshot_get;
	w->time = wrap_time;
	w->random = wrap_random;
}

/* ---- Damaged snapshots, at open ------------------------------------- */

/* A snapshot in the data directory, from the name of its .meta file. */
struct snap_file {
	unsigned long long term, index, stamp;
	char name[80]; /* "snapshot-TERM-INDEX-TIMESTAMP", without ".meta" */
	bool damaged;
};

/* What the data directory holds, as far as the scan cares. */
struct dir_list {
	struct snap_file *snaps; /* newest first */
	size_t n_snaps;
	char (*segs)[80];	  /* closed and open segment files */
	size_t n_segs;
	unsigned long long first_closed; /* lowest first index; 0: none */
};

/* Newest first, the order libraft tries them in (term, index, time). */
static int snap_file_cmp(const void *a, const void *b)
{
	const struct snap_file *x = a, *y = b;

	if (x->term != y->term)
		return x->term > y->term ? -1 : 1;
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	if (x->stamp != y->stamp)
		return x->stamp > y->stamp ? -1 : 1;
	return 0;
}

/* Whether name is exactly fmt (libraft's file names), reading n numbers. */
static bool name_is(const char *name, const char *fmt, int n,
		    unsigned long long *a, unsigned long long *b,
		    unsigned long long *c)
{
	int used = -1;

	switch (n) {
	case 1:
		sscanf(name, fmt, a, &used);
		break;
	case 2:
		sscanf(name, fmt, a, b, &used);
		break;
	default:
		sscanf(name, fmt, a, b, c, &used);
		break;
	}
	return used > 0 && name[used] == '\0';
}

static void dir_list_free(struct dir_list *l)
{
	free(l->snaps);
	free(l->segs);
}

/* Append name to the list; -ENOMEM. */
static int dir_list_add(struct dir_list *l, const char *name,
			unsigned long long t, unsigned long long i,
			unsigned long long s, bool snapshot)
{
	void *p;

	if (snapshot) {
		p = realloc(l->snaps, (l->n_snaps + 1) * sizeof(*l->snaps));
		if (!p)
			return -ENOMEM;
		l->snaps = p;
		l->snaps[l->n_snaps] = (struct snap_file){t, i, s, "", false};
		snprintf(l->snaps[l->n_snaps].name, sizeof(l->snaps->name),
			 "%.*s", (int)(strlen(name) - 5), name);
		l->n_snaps++;
		return 0;
	}
	p = realloc(l->segs, (l->n_segs + 1) * sizeof(*l->segs));
	if (!p)
		return -ENOMEM;
	l->segs = p;
	snprintf(l->segs[l->n_segs++], sizeof(*l->segs), "%s", name);
	return 0;
}

/* List the snapshots and segments of dir: 0 or a negative errno. */
static int dir_list_read(const char *dir, struct dir_list *l)
{
	unsigned long long a, b, c;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!rc && (e = readdir(d))) {
		if (strlen(e->d_name) >= sizeof(l->snaps->name))
			continue;
		if (name_is(e->d_name, "snapshot-%llu-%llu-%llu.meta%n", 3, &a,
			    &b, &c)) {
			rc = dir_list_add(l, e->d_name, a, b, c, true);
		} else if (name_is(e->d_name, "%16llu-%16llu%n", 2, &a, &b,
				   NULL)) {
			if (!l->first_closed || a < l->first_closed)
				l->first_closed = a;
			rc = dir_list_add(l, e->d_name, 0, 0, 0, false);
		} else if (name_is(e->d_name, "open-%llu%n", 1, &a, NULL,
				   NULL)) {
			rc = dir_list_add(l, e->d_name, 0, 0, 0, false);
		}
	}
	closedir(d);
	if (!rc && l->n_snaps)
		qsort(l->snaps, l->n_snaps, sizeof(*l->snaps), snap_file_cmp);
	if (rc)
		dir_list_free(l);
	return rc;
}

/* Read dir/name whole into a malloc()ed buffer: 0 or a negative errno. */
static int file_read(const char *dir, const char *name, uint8_t **buf,
		     size_t *len)
{
	char path[PATH_MAX + 96];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	*buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			rc = n < 0 ? -errno : -ENODATA;
			free(*buf);
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return rc;
}

/*
 * Check a snapshot's .meta file as libraft's uv backend will read it
 * (src/uv_snapshot.c): four u64 LE (format 1, CRC-32, configuration index,
 * configuration length), then the configuration; the CRC covers the last
 * two words and the configuration. 0 or -EILSEQ with why filled in.
 */
#define META_MAX_CONF (1024 * 1024)

static int snap_meta_check(const struct repl *r, const uint8_t *p, size_t len,
			   char *why, size_t why_len)
{
	uint64_t conf_len;
	uint32_t crc;

	if (len < 32) {
		snprintf(why, why_len, ".meta has %zu bytes: truncated", len);
		return -EILSEQ;
	}
	conf_len = get_le(p + 24, 8);
	if (get_le(p, 8) != 1 || conf_len == 0 || conf_len > META_MAX_CONF ||
	    len - 32 < conf_len) {
		snprintf(why, why_len, ".meta header is not valid (format "
			 "%llu, configuration of %llu bytes in %zu)",
			 (unsigned long long)get_le(p, 8),
			 (unsigned long long)conf_len, len);
		return -EILSEQ;
	}
	crc = crc_of(r->crc_table, p + 16, 16, 0);
	crc = crc_of(r->crc_table, p + 32, conf_len, crc);
	if (crc != (uint32_t)get_le(p + 8, 8)) {
		snprintf(why, why_len, ".meta checksum mismatch");
		return -EILSEQ;
	}
	return 0;
}

/*
 * Whether snapshot s of dir is intact: its .meta as libraft checks it,
 * its data by our envelope. 0, -ENOENT (no data file: a snapshot being
 * written, libraft skips it too), or another negative errno with why
 * filled in.
 */
static int snap_file_check(const struct repl *r, const char *dir,
			   const struct snap_file *s, char *why, size_t why_len)
{
	char meta[sizeof(s->name) + 8];
	const void *payload;
	size_t len, plen;
	uint8_t *buf;
	int rc;

	snprintf(meta, sizeof(meta), "%s.meta", s->name);
	rc = file_read(dir, s->name, &buf, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc) {
		snprintf(why, why_len, "cannot read it: %s", strerror(-rc));
		return rc;
	}
	if (len == 0)
		snprintf(why, why_len, "empty: truncated");
	else
		rc = snap_unwrap(r, buf, len, &payload, &plen, why, why_len);
	free(buf);
	if (len == 0)
		return -ENODATA;
	if (rc)
		return rc;
	rc = file_read(dir, meta, &buf, &len);
	if (rc) {
		snprintf(why, why_len, "cannot read its .meta: %s",
			 strerror(-rc));
		return rc;
	}
	rc = snap_meta_check(r, buf, len, why, why_len);
	free(buf);
	return rc;
}

/* Rename dir/name to dir/name.suffix: 0 or a negative errno, logged. */
static int move_aside(struct repl *r, const char *dir, const char *name,
		      const char *suffix)
{
	char from[PATH_MAX + 96], to[PATH_MAX + 128];

	snprintf(from, sizeof(from), "%s/%s", dir, name);
	snprintf(to, sizeof(to), "%s.%s", from, suffix);
	if (rename(from, to) == 0)
		return 0;
	logf_(r, 3, "cannot move %s aside to %s: %s", from, to,
	      strerror(errno));
	return -errno;
}

/* Move a damaged snapshot and its .meta aside (NAME.damaged). */
static int snap_move_aside(struct repl *r, const char *dir,
			   const struct snap_file *s)
{
	char meta[sizeof(s->name) + 8];
	int rc;

	snprintf(meta, sizeof(meta), "%s.meta", s->name);
	rc = move_aside(r, dir, s->name, "damaged");
	if (!rc)
		rc = move_aside(r, dir, meta, "damaged");
	if (!rc)
		logf_(r, 4, "moved %s/%s and its .meta aside to %s.damaged",
		      dir, s->name, s->name);
	return rc;
}

/*
 * Check the snapshots of dir before libraft loads one (libraft would
 * restore a damaged data file as it is, and fail the start on a damaged
 * .meta when no older snapshot is left). Newest first, every damaged
 * one is refused (logged by name) until an intact one is found; the
 * damaged ones are then moved aside. If the log no longer holds the
 * entries between the intact snapshot (or the start) and a damaged one,
 * a cluster of one refuses to start, changing nothing on disk; a cluster
 * member moves its segments aside too (NAME.unusable, metadata kept) so
 * that it opens with what remains and the leader catches it up.
 * Blocking, at open only, like libraft's own load. 0 or a negative errno.
 */
static int snap_scan(struct repl *r, const char *dir, bool has_peers)
{
	unsigned long long need = 1, lost = 0;
	const struct snap_file *good = NULL;
	struct dir_list l;
	char why[160];
	size_t i, n_bad = 0;
	bool gap;
	int rc;

	rc = dir_list_read(dir, &l);
	if (rc) {
		logf_(r, 3, "cannot list %s: %s", dir, strerror(-rc));
		return rc;
	}
	for (i = 0; i < l.n_snaps && !good; i++) {
		rc = snap_file_check(r, dir, &l.snaps[i], why, sizeof(why));
		if (rc == -ENOENT)
			continue;
		if (!rc) {
			good = &l.snaps[i];
			break;
		}
		logf_(r, 3, "snapshot %s/%s is damaged (%s): refused", dir,
		      l.snaps[i].name, why);
		l.snaps[i].damaged = true;
		n_bad++;
		if (l.snaps[i].index > lost)
			lost = l.snaps[i].index;
	}
	rc = 0;
	if (!n_bad)
		goto out;
	if (good)
		need = good->index + 1;
	/* the entries up to `lost` must come from the log, from `need` on */
	gap = lost >= need && (!l.first_closed || l.first_closed > need);
	if (gap && !has_peers) {
		logf_(r, 3, "cannot recover alone: entries %llu..%llu are only "
		      "in the damaged snapshot (the log in %s %s%llu); restore "
		      "the data directory from a backup; nothing was changed "
		      "on disk", need, lost, dir,
		      l.first_closed ? "starts at entry " : "has no entries "
		      "before ", l.first_closed ? l.first_closed : lost + 1);
		rc = -EILSEQ;
		goto out;
	}
	for (i = 0; i < l.n_snaps && !rc; i++)
		if (l.snaps[i].damaged)
			rc = snap_move_aside(r, dir, &l.snaps[i]);
	if (!rc && gap) {
		for (i = 0; i < l.n_segs && !rc; i++)
			rc = move_aside(r, dir, l.segs[i], "unusable");
		if (!rc)
			logf_(r, 4, "the log in %s does not reach back to entry "
			      "%llu: moved its %zu segment files aside "
			      "(*.unusable); term and vote kept, the leader "
			      "catches this member up", dir, need, l.n_segs);
	}
	if (!rc)
		logf_(r, 5, "starting from %s%s and the log after it",
		      good ? "the older snapshot " : "no snapshot",
		      good ? good->name : "");
out:
	dir_list_free(&l);
	return rc;
}

/* ---- Open and close ---- */

int repl_open(uv_loop_t *loop, const struct repl_config *cfg,
	      const struct repl_fsm *fsm, struct repl **out)
{
	struct raft_configuration conf;
	struct repl *r;
	const char *address = cfg->address ? cfg->address : "local";
	size_t i;
	int rv;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->fsm = fsm;
	r->tracer.impl = r;
	r->tracer.version = 2;
	r->tracer.emit = tracer_emit;
	snprintf(r->dir, sizeof(r->dir), "%s", cfg->data_dir);
	crc_init(r->crc_table);
	rv = snap_scan(r, cfg->data_dir, cfg->n_members > 1 || cfg->join);
	if (rv) {
		free(r);
		return rv;
	}

	if (cfg->address && cfg->key) {
		rv = auth_transport_init(&r->auth, loop, cfg->key, auth_log, r);
		if (rv) {
			free(r);
			return from_raft(rv);
		}
	} else if (cfg->address) {
		r->transport.version = 1;
		rv = raft_uv_tcp_init(&r->transport, loop);
		if (rv) {
			logf_(r, 3, "raft TCP transport: %s",
			      r->transport.errmsg);
			free(r);
			return from_raft(rv);
		}
		r->tcp = true;
	} else {
		r->transport.version = 1;
		r->transport.init = null_init;
		r->transport.listen = null_listen;
		r->transport.connect = null_connect;
		r->transport.close = null_close;
	}
	r->transport_ready = true;
	rv = raft_uv_init(&r->io, loop, cfg->data_dir,
			  r->auth ? r->auth : &r->transport);
	if (rv) {
		logf_(r, 3, "cannot open the log in %s: %s", cfg->data_dir,
		      r->io.errmsg);
		goto err_transport;
	}
	r->io_ready = true;
	raft_uv_set_tracer(&r->io, &r->tracer);
	/*
	 * Raft answers travel on the answering member's own connection: a
	 * member whose connection to a restarted peer failed would hold its
	 * votes and acknowledgements for libraft's default retry delay (1 s,
	 * five election timeouts). Retry well inside one election timeout.
	 */
	raft_uv_set_connect_retry_delay(&r->io, REPL_CONNECT_RETRY_MS);
	/*
	 * libraft's auto-recovery moves a corrupt segment aside and fails;
	 * the next start then runs without its entries. With peers they come
	 * back from the leader; alone they would be acknowledged writes lost
	 * without a word, so a cluster of one refuses to start instead.
	 */
	raft_uv_set_auto_recovery(&r->io, cfg->n_members > 1);

	r->rfsm.version = 2;
	r->rfsm.data = r;
	r->rfsm.apply = fsm_apply;
	r->rfsm.snapshot = fsm_snapshot;
	r->rfsm.snapshot_finalize = fsm_snapshot_finalize;
	r->rfsm.restore = fsm_restore;

	wrap_setup(r);
	rv = raft_init(&r->raft, &r->wrap, &r->rfsm, cfg->id, address);
	if (rv) {
		logf_(r, 3, "raft_init: %s", raft_errmsg(&r->raft));
		goto err_io;
	}
	r->raft.data = r;
	r->raft_ready = true;
	r->raft.tracer = &r->tracer;
	raft_set_election_timeout(&r->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_timeout_ms);
	r->snapshot_threshold = cfg->snapshot_threshold;
	raft_set_snapshot_threshold(&r->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing);
	raft_set_pre_vote(&r->raft, true);

	raft_configuration_init(&conf);
	if (cfg->join) {
		rv = 0; /* a joining member waits for the leader to add it */
	} else if (cfg->n_members == 0) {
		rv = raft_configuration_add(&conf, cfg->id, address, RAFT_VOTER);
	} else {
		rv = 0;
		for (i = 0; i < cfg->n_members && !rv; i++)
			rv = raft_configuration_add(&conf, cfg->members[i].id,
						    cfg->members[i].address,
						    RAFT_VOTER);
	}
	if (!rv && !cfg->join) {
		rv = raft_bootstrap(&r->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP)
			rv = 0; /* not pristine: the log knows its members */
		else if (!rv)
			logf_(r, 6, "bootstrapped a new log in %s",
			      cfg->data_dir);
	}
	raft_configuration_close(&conf);
	if (rv) {
		logf_(r, 3, "cannot bootstrap the log: %s",
		      raft_errmsg(&r->raft));
		goto err_raft;
	}

	rv = raft_start(&r->raft);
	if (rv) {
		logf_(r, 3, "cannot load the log in %s: %s", cfg->data_dir,
		      raft_errmsg(&r->raft));
		if (rv == RAFT_CORRUPT)
			logf_(r, 3,
			      "the log is damaged beyond its last entry: "
			      "restore the data directory from a backup or "
			      "from a peer; nothing was changed on disk");
		goto err_raft;
	}
	uv_prepare_init(loop, &r->flush);
	r->flush.data = r;
	logf_(r, 6, "log open: last index %llu, term %llu",
	      (unsigned long long)raft_last_index(&r->raft),
	      (unsigned long long)raft_current_term(&r->raft));
	*out = r;
	return 0;

err_raft:
	/*
	 * raft_close() needs the loop to run; a failed start is fatal to the
	 * daemon, which exits without waiting for it.
	 */
	*out = NULL;
	return from_raft(rv) ? from_raft(rv) : -EIO;
err_io:
	raft_uv_close(&r->io);
err_transport:
	if (r->tcp)
		raft_uv_tcp_close(&r->transport);
	if (r->auth)
		auth_transport_free(r->auth);
	free(r);
	return from_raft(rv) ? from_raft(rv) : -EIO;
}

static void batch_free(struct batch *b)
{
	raft_free(b->buf.base);
	free(b->subs);
	free(b);
}

/* Each submission of b learns its fate: status 0 (applied) or an errno. */
static void batch_finish(struct batch *b, int status)
{
	unsigned i;

	for (i = 0; i < b->n; i++)
		b->subs[i].cb(b->subs[i].arg, status);
	batch_free(b);
}

static void batch_cb(struct raft_apply *req, int status, void *result)
{
	(void)result;
	batch_finish(req->data, from_raft(status));
}

/* Append the open batch to the log. */
static void batch_flush(struct repl *r)
{
	struct batch *b = r->batch;
	int rv;

	if (!b)
		return;
	r->batch = NULL;
	uv_prepare_stop(&r->flush);
	if (r->closing) {
		batch_finish(b, -ESHUTDOWN);
		return;
	}
	if (raft_state(&r->raft) != RAFT_LEADER) {
		batch_finish(b, -ENOTCONN);
		return;
	}
	r->batches++;
	r->batched += b->n;
	b->req.data = b;
	rv = raft_apply(&r->raft, &b->req, &b->buf, 1, batch_cb);
	if (rv) {
		/* libraft may have released the buffer: do not touch it. A
		 * full disk refuses every request: say so once a minute. */
		if (rv == RAFT_NOSPACE)
			nospace_warn(r, raft_errmsg(&r->raft));
		else
			logf_(r, 4, "cannot append to the log: %s",
			      raft_errmsg(&r->raft));
		b->buf.base = NULL;
		batch_finish(b, from_raft(rv));
		return;
	}
	b->buf.base = NULL; /* libraft's now */
}

static void batch_flush_cb(uv_prepare_t *h)
{
	batch_flush(h->data);
}

int repl_submit(struct repl *r, const void *buf, size_t len, repl_submit_cb cb,
		void *arg)
{
	struct batch *b;
	size_t frame;
	uint8_t *p;

	if (r->closing)
		return -ESHUTDOWN;
	if (raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (len > UINT32_MAX - 16)
		return -E2BIG;
	frame = (FRAME_HDR + len + 7) & ~(size_t)7;
	b = r->batch;
	if (b && (b->n == BATCH_MAX_FRAMES ||
		  b->buf.len + frame > BATCH_MAX_BYTES)) {
		batch_flush(r);
		b = NULL;
	}
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return -ENOMEM;
	}
	if (b->buf.len + frame > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		void *nb;

		while (cap < b->buf.len + frame)
			cap *= 2;
		nb = raft_realloc(b->buf.base, cap);
		if (!nb)
			goto nomem;
		b->buf.base = nb;
		b->cap = cap;
	}
	if (b->n == b->subs_cap) {
		unsigned c = b->subs_cap ? 2 * b->subs_cap : 16;
		struct submit *ns = realloc(b->subs, c * sizeof(*ns));

		if (!ns)
			goto nomem;
		b->subs = ns;
		b->subs_cap = c;
	}
	p = (uint8_t *)b->buf.base + b->buf.len;
	memset(p, 0, frame);
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	memcpy(p + FRAME_HDR, buf, len);
	b->buf.len += frame;
	b->subs[b->n].cb = cb;
	b->subs[b->n].arg = arg;
	b->n++;
	if (!r->batch) {
		r->batch = b;
		uv_prepare_start(&r->flush, batch_flush_cb);
	}
	return 0;

nomem:
	if (!r->batch)
		batch_free(b);
	return -ENOMEM;
}

static void barrier_done(struct raft_barrier *req, int status)
{
	struct repl *r = req->data;

	r->barrier_inflight = false;
	if (r->barrier_again && !r->closing) {
		r->barrier_again = false;
		repl_announce_commit(r);
	}
}

void repl_announce_commit(struct repl *r)
{
	if (r->closing || raft_state(&r->raft) != RAFT_LEADER)
		return;
	if (r->barrier_inflight) {
		r->barrier_again = true;
		return;
	}
	r->barrier.data = r;
	if (raft_barrier(&r->raft, &r->barrier, barrier_done) == 0)
		r->barrier_inflight = true;
}

static void term_barrier_done(struct raft_barrier *req, int status)
{
	struct repl *r = req->data;

	r->term_barrier_inflight = false;
	if (status == 0 && raft_state(&r->raft) == RAFT_LEADER &&
	    raft_current_term(&r->raft) == r->term_barrier_term) {
		r->committed_term = r->term_barrier_term;
		logf_(r, 6,
		      "leader in term %llu: committed an entry of its term "
		      "(commit index %llu)",
		      (unsigned long long)r->committed_term,
		      (unsigned long long)raft_commit_index(&r->raft));
	}
}

int repl_read_index(struct repl *r, uint64_t *index)
{
	uint64_t term = raft_current_term(&r->raft);

	if (r->closing || raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (r->committed_term == term) {
		*index = raft_commit_index(&r->raft);
		return 0;
	}
	/* not yet: make sure an entry of this term is on its way */
	if (!r->term_barrier_inflight) {
		r->term_barrier.data = r;
		r->term_barrier_term = term;
		if (raft_barrier(&r->raft, &r->term_barrier,
				 term_barrier_done) == 0)
			r->term_barrier_inflight = true;
	}
	return -EAGAIN;
}

void repl_snapshot_now(struct repl *r)
{
	/*
	 * libraft snapshots when the threshold is reached after an apply:
	 * lower it until the next snapshot is finalised.
	 */
	raft_set_snapshot_threshold(&r->raft, 1);
}

bool repl_is_leader(struct repl *r)
{
	return raft_state(&r->raft) == RAFT_LEADER;
}

uint64_t repl_leader(struct repl *r)
{
	raft_id id = 0;
	const char *address = NULL;

	raft_leader(&r->raft, &id, &address);
	return id;
}

const char *repl_state_name(struct repl *r)
{
	switch (raft_state(&r->raft)) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	default:
		return "unavailable";
	}
}

const char *repl_role_name(int role)
{
	switch (role) {
	case REPL_VOTER:
		return "voter";
	case REPL_STANDBY:
		return "standby";
	case REPL_SPARE:
		return "spare";
	default:
		return "none";
	}
}

size_t repl_servers(struct repl *r, struct repl_server *out, size_t max)
{
	const struct raft_configuration *c = &r->raft.configuration;
	size_t i;

	for (i = 0; i < c->n && i < max; i++) {
		out[i].id = c->servers[i].id;
		snprintf(out[i].address, sizeof(out[i].address), "%s",
			 c->servers[i].address);
		out[i].role = c->servers[i].role == RAFT_VOTER	   ? REPL_VOTER
			      : c->servers[i].role == RAFT_STANDBY ? REPL_STANDBY
								   : REPL_SPARE;
	}
	return c->n;
}

int repl_match_index(struct repl *r, uint64_t id, uint64_t *index)
{
	raft_index i = 0;

	if (raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (raft_match_index(&r->raft, id, &i))
		return -ENOENT;
	*index = i;
	return 0;
}

/* ---- Membership ----------------------------------------------------- */

struct change {
	union {
		struct raft_change change;
		struct raft_transfer transfer;
	};
	struct repl *r;
	repl_change_cb cb;
	void *arg;
	uint64_t target;
};

static struct change *change_new(struct repl *r, repl_change_cb cb, void *arg)
{
	struct change *c = calloc(1, sizeof(*c));

	if (c) {
		c->r = r;
		c->cb = cb;
		c->arg = arg;
	}
	return c;
}

static void change_done(struct raft_change *req, int status)
{
	struct change *c = req->data;

	if (status)
		logf_(c->r, 4, "configuration change failed: %s",
		      raft_strerror(status));
	c->cb(c->arg, from_raft(status));
	free(c);
}

static int change_start(struct repl *r, struct change *c, int rv)
{
	if (rv) {
		logf_(r, 4, "configuration change refused: %s",
		      raft_errmsg(&r->raft));
		free(c);
		return from_raft(rv) ? from_raft(rv) : -EIO;
	}
	return 0;
}

int repl_add(struct repl *r, uint64_t id, const char *address,
	     repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_add(&r->raft, &c->change, id, address,
				     change_done));
}

int repl_assign(struct repl *r, uint64_t id, int role, repl_change_cb cb,
		void *arg)
{
	struct change *c;
	int rrole = role == REPL_VOTER	   ? RAFT_VOTER
		    : role == REPL_STANDBY ? RAFT_STANDBY
					   : RAFT_SPARE;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_assign(&r->raft, &c->change, id, rrole,
					change_done));
}

int repl_remove(struct repl *r, uint64_t id, repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_remove(&r->raft, &c->change, id, change_done));
}

static void transfer_done(struct raft_transfer *req)
{
	struct change *c = req->data;
	uint64_t leader = repl_leader(c->r);

	/* raft_transfer tells nothing: look at who leads now */
	c->cb(c->arg, leader && leader != c->r->raft.id &&
				      (!c->target || leader == c->target)
			      ? 0
			      : -ETIMEDOUT);
	free(c);
}

int repl_transfer(struct repl *r, uint64_t id, repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->target = id;
	c->transfer.data = c;
	return change_start(r, c,
			    raft_transfer(&r->raft, &c->transfer, id,
					  transfer_done));
}

uint64_t repl_last_applied(struct repl *r)
{
	return raft_last_applied(&r->raft);
}

uint64_t repl_commit_index(struct repl *r)
{
	return raft_commit_index(&r->raft);
}

uint64_t repl_last_index(struct repl *r)
{
	return raft_last_index(&r->raft);
}

uint64_t repl_term(struct repl *r)
{
	return raft_current_term(&r->raft);
}

static void close_done(struct repl *r)
{
	if (--r->pending_closes > 0)
		return;
	if (r->tcp)
		raft_uv_tcp_close(&r->transport);
	raft_uv_close(&r->io);
	if (r->auth)
		auth_transport_free(r->auth);
	if (r->close_cb)
		r->close_cb(r->close_arg);
	free(r);
}

static void raft_closed(struct raft *raft)
{
	close_done(raft->data);
}

static void handle_closed(uv_handle_t *h)
{
	close_done(h->data);
}

void repl_close(struct repl *r, repl_close_cb cb, void *arg)
{
	r->closing = true;
	r->close_cb = cb;
	r->close_arg = arg;
	r->pending_closes = 2;
	batch_flush(r); /* fails it: closing */
	if (r->batches)
		logf_(r, 6, "%llu requests in %llu log entries",
		      (unsigned long long)r->batched,
		      (unsigned long long)r->batches);
	uv_close((uv_handle_t *)&r->flush, handle_closed);
	raft_close(&r->raft, raft_closed);
}
