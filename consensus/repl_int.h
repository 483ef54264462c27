/*
 * consensus/repl_int.h: private to the files of the repl module, which
 * together implement repl.h; nothing outside consensus/ includes it.
 *
 *   repl.c           open, close, transports, barriers, read index, queries
 *   repl_batch.c     submissions batched into entries, and applied back
 *   repl_member.c    the configuration and changing it
 *   repl_snapshot.c  snapshots taken off the loop, and restored
 *   repl_snapfile.c  snapshot files: checksummed header, the scan at open
 *   repl_io.c        the raft_io wrapper around libraft's uv backend
 *   repl_seed.c      seeding an empty log with a snapshot (restore)
 *   repl_trace.c     libraft's tracer: diagnostics and disk faults
 */
#ifndef XSR_CONSENSUS_REPL_INT_H
#define XSR_CONSENSUS_REPL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/repl.h"

#define REPL_HEARD_MAX 64 /* servers whose last message is remembered */

struct batch;	 /* repl_batch.c */
struct snap_job; /* repl_snapshot.c */

struct repl {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport; /* none: a cluster of one */
	struct raft_uv_transport *auth;	    /* repl_tls.h, in a cluster */
	bool io_ready, transport_ready, raft_ready;
	struct raft_fsm rfsm;
	const struct repl_fsm *fsm;
	struct raft_tracer tracer;

	/* the snapshot being taken: pinned state, placeholder, async job */
	void *snap_pin;
	struct raft_buffer snap_placeholder;
	struct snap_job *snap_job;
	unsigned snapshot_threshold; /* configured */
	size_t last_snapshot_len;    /* bytes of the last one we wrote */
	uint64_t snapshot_index;     /* the newest on disk: loaded, taken or
				      * installed (repl_snapshot_index) */

	/* submissions of this loop iteration, one log entry at its end */
	struct batch *batch;
	uv_prepare_t flush;
	uint64_t batches, batched; /* counters, for the log at close */

	/* barriers announcing the commit index (repl_announce_commit) */
	struct raft_barrier barrier;
	bool barrier_inflight, barrier_again;

	/* read index: the term in which this leader has committed an entry
	 * of its own (a barrier), and the barrier confirming it */
	struct raft_barrier term_barrier;
	bool term_barrier_inflight;
	uint64_t term_barrier_term, committed_term;

	/* the command entries after the snapshot, as loaded at open
	 * (repl_local_tail) */
	struct repl_tail {
		uint64_t index;
		void *buf;
		size_t len;
	} *tail;
	size_t n_tail;

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

	/* when each server last sent us a Raft message (repl_heard_ms) */
	struct {
		uint64_t id, ms;
	} heard[REPL_HEARD_MAX];
	unsigned n_heard;

	bool closing;
	unsigned pending_closes;
	repl_close_cb close_cb;
	void *close_arg;

	/* disk faults: where the log is, checksums, the last ENOSPC warning */
	char dir[PATH_MAX];
	uint32_t crc_table[256];
	time_t nospace_logged;
};

/* A line for the daemon's log through repl_fsm.log (repl.c). */
void repl_logf(struct repl *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* libraft error codes, translated once: 0 or a negative errno (repl.c). */
int repl_from_raft(int rv);
/* A transport that never connects: a cluster of one (repl.c). */
void repl_null_transport(struct raft_uv_transport *t);

/* ---- repl_batch.c ---- */

/* The FSM's apply: hand each frame of a committed entry to repl_fsm.apply. */
int repl_batch_apply(struct raft_fsm *f, const struct raft_buffer *buf,
		     void **result);
/* Append the open batch to the log now (it fails if closing). */
void repl_batch_flush(struct repl *r);

/* ---- repl_snapshot.c ---- */

/* The FSM's snapshot: pin the state, return a placeholder for snapshot_put. */
int repl_snapshot_take(struct raft_fsm *f, struct raft_buffer *bufs[],
		       unsigned *n_bufs);
/* The FSM's snapshot_finalize: unpin, set the next threshold. */
int repl_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[],
			   unsigned *n_bufs);
/* The FSM's restore: check our header, restore through repl_fsm.restore. */
int repl_snapshot_restore(struct raft_fsm *f, struct raft_buffer *buf);
/*
 * The io wrapper's snapshot_put: a placeholder from repl_snapshot_take is
 * serialised on the thread pool (r->snap_job while it runs), anything else
 * (a snapshot from the leader) goes to the uv backend as it is.
 */
int repl_snapshot_put(struct raft_io *io, unsigned trailing,
		      struct raft_io_snapshot_put *req,
		      const struct raft_snapshot *snapshot,
		      raft_io_snapshot_put_cb cb);

/* ---- repl_snapfile.c ---- */

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
#define SNAP_HDR   24

/* Fill table for the CRC-32 of libraft's .meta files (and of ours). */
void repl_snapfile_crc_init(uint32_t table[256]);
/* Fill hdr for the payload buf. */
void repl_snapfile_envelope(const struct repl *r, uint8_t hdr[SNAP_HDR],
			    const void *buf, size_t len);
/* Check a snapshot's bytes, find the FSM's payload in them (-EILSEQ...). */
int repl_snapfile_unwrap(const struct repl *r, const void *buf, size_t len,
			 const void **payload, size_t *payload_len, char *why,
			 size_t why_len);
/*
 * Before libraft loads the log in dir: refuse every snapshot newer than
 * the newest intact one and move it aside, and the log too if it no longer
 * reaches back (only with peers: alone, refuse to start). 0 or a negative
 * errno, logged.
 */
int repl_snapfile_scan(struct repl *r, const char *dir, bool has_peers);

/* ---- repl_io.c ---- */

/* Fill r->wrap, the raft_io libraft is given, around r->io. */
void repl_io_setup(struct repl *r);
/* The repl of the wrapper's io or of the backend's (libraft uses both). */
struct repl *repl_io_owner(struct raft_io *io);
/*
 * The snapshot job is over (r->snap_job is NULL again): hand libraft the
 * InstallSnapshot held meanwhile, and finish a close that waited for it.
 */
void repl_io_snapshot_done(struct repl *r);

/* ---- repl_trace.c ---- */

/* The raft_tracer's emit (r in t->impl). */
void repl_trace_emit(struct raft_tracer *t, int type, const void *info);
/*
 * Look at a libraft message for a disk fault: stop on a failed sync (does
 * not return), warn (at most once a minute) about a full disk.
 */
void repl_trace_disk_check(struct repl *r, const char *m);
/* Warn that the disk is full, at most once a minute. */
void repl_trace_nospace_warn(struct repl *r, const char *m);

/*
 * repl_io.c: libraft's allocator (raft_heap_set(), once, before raft_init)
 * with a guard against libraft 0.22.1's double free of an AppendEntries
 * batch: between begin and end, libraft's frees of `batch` are counted,
 * not done; end frees it once if there were any and returns the count.
 */
void repl_heap_install(void);
void repl_heap_guard_begin(void *batch);
unsigned repl_heap_guard_end(void *batch);

#endif
