/*
 * consensus/repl.h: the replicated log. Wraps libraft 0.22 (uv backend) so
 * that nothing else in the project sees libraft: the daemon submits opaque
 * entries and gets every committed entry back, in log order, through
 * repl_fsm.apply, on every member.
 *
 * One libuv loop drives everything; no function here blocks it. Errors are
 * negative errno values; libraft's codes are translated here, once.
 *
 * Disk faults. A full disk (ENOSPC) is not an error of the log: libraft
 * retries the write until space returns, submissions meanwhile time out in
 * the caller, and nothing acknowledged is lost. A failed fsync is: the
 * member stops through repl_fsm.disk_failed (see there). Snapshots carry a
 * checksum of their own (libraft checks only the .meta file); at open,
 * every snapshot newer than the newest intact one is refused with a log
 * line naming it and moved aside to NAME.damaged (its .meta too), so the
 * log opens from the older snapshot plus the entries after it. If the log
 * no longer holds those entries, a cluster of one refuses to start (the
 * data is only in the damaged file); a member of a cluster moves its log
 * aside as well (NAME.unusable, term and vote kept) and is caught up by
 * the leader.
 */
#ifndef XSR_CONSENSUS_REPL_H
#define XSR_CONSENSUS_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct repl;

/*
 * The state machine, implemented by the daemon. All callbacks run on the
 * loop thread unless noted.
 */
struct repl_fsm {
	void *data;
	/*
	 * Apply the committed command entry at `index`. buf is borrowed for
	 * the call. Must change replicated state deterministically; may have
	 * local side effects (replies, watch events).
	 */
	void (*apply)(void *data, uint64_t index, const void *buf, size_t len);
	/*
	 * Snapshots, in three steps so that serialising may leave the loop:
	 * pin() captures the state cheaply and returns a handle (NULL on
	 * ENOMEM); write() serialises a pinned state into one malloc()ed
	 * buffer and may run on another thread; unpin() releases the handle
	 * on the loop thread.
	 */
	void *(*snapshot_pin)(void *data);
	int (*snapshot_write)(void *pin, void **buf, size_t *len);
	void (*snapshot_unpin)(void *data, void *pin);
	/* Replace the whole state by a snapshot's. buf is borrowed. */
	int (*restore)(void *data, const void *buf, size_t len);
	/* A line for the daemon's log (level: 3 error ... 7 debug). */
	void (*log)(void *data, int level, const char *msg);
	/*
	 * The disk under the log failed in a way that cannot be retried: an
	 * fsync/fdatasync (or a write with O_DSYNC semantics) reported an
	 * error other than lack of space, so the page cache may hold writes
	 * that will never reach the disk. msg is the line to log. The member
	 * must stop at once, writing nothing more, and exit non-zero. May run
	 * on a libuv worker thread; is not expected to return. NULL (or a
	 * return) makes repl log msg and _exit(1).
	 */
	void (*disk_failed)(void *data, const char *msg);
};

struct repl_member {
	uint64_t id;
	const char *address; /* raft address, "127.0.0.1:9001" */
};

struct tls_creds;

struct repl_config {
	uint64_t id;		/* this member, > 0 */
	const char *address;	/* NULL: a cluster of one, no network */
	const char *data_dir;	/* must exist */
	const struct repl_member *members; /* initial configuration */
	size_t n_members;	/* 0: just this member */
	bool join;		/* do not bootstrap: wait to be added */
	struct tls_creds *tls;	/* TLS credentials (consensus/tls.h), borrowed;
				 * NULL with an address: plain TCP (insecure) */
	unsigned snapshot_threshold; /* entries between snapshots; at least
				      * the last snapshot's bytes / 256 */
	unsigned snapshot_trailing;  /* entries kept after a snapshot */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	/*
	 * Recovery after the permanent loss of a quorum (etcd's
	 * --force-new-cluster): before loading the log, append a
	 * configuration in which this member is the only voter
	 * (libraft's raft_recover). Every other member is forgotten;
	 * entries the lost majority committed that this member never
	 * received are gone. Refused (-ENOENT) without a log to recover.
	 */
	bool force_new_cluster;
};

#define REPL_CONFIG_DEFAULTS                                                   \
	.snapshot_threshold = 16384, .snapshot_trailing = 8192,                 \
	.election_timeout_ms = 1000, .heartbeat_timeout_ms = 100

/*
 * Seed an empty log directory (for a restore from a backup): write state
 * (sm_snapshot_encode()'s bytes of a store that applied `index`) as a
 * snapshot at index in term, whose configuration is this member (id at
 * address, NULL: a cluster of one) as the only voter. A later repl_open()
 * of the directory then restores it through repl_fsm.restore and goes on
 * from index + 1. Blocks (a private loop; call it before serving).
 * 0, or a negative errno with err filled in: -EEXIST if dir holds a log.
 */
int repl_seed(const char *dir, uint64_t id, const char *address,
	      const void *state, size_t len, uint64_t index, uint64_t term,
	      char *err, size_t err_len);

/* Called exactly once when repl_submit() succeeded. */
typedef void (*repl_submit_cb)(void *arg, int status);
typedef void (*repl_close_cb)(void *arg);

/*
 * Open the log in cfg->data_dir: check the snapshots (see "Disk faults"
 * above), load the newest intact one (through fsm->restore) and start. A
 * pristine directory is bootstrapped with the configured members. *out is
 * set on success; the caller owns it until repl_close(). fsm must outlive
 * the repl.
 */
int repl_open(uv_loop_t *loop, const struct repl_config *cfg,
	      const struct repl_fsm *fsm, struct repl **out);

/*
 * Append an entry (buf is copied). On success cb fires exactly once: 0
 * after the entry was applied here, or an error (-ENOTCONN when this
 * member lost leadership before the entry committed: it may still commit
 * later). Errors returned directly mean the entry is not in the log:
 * -ENOTCONN (not the leader), -ENOMEM, -ESHUTDOWN.
 */
int repl_submit(struct repl *r, const void *buf, size_t len, repl_submit_cb cb,
		void *arg);

/*
 * On the leader: make the followers learn the current commit index now.
 * libraft tells them only with its next AppendEntries, which when idle is
 * the next heartbeat; a barrier entry is such a message. Coalesced: at
 * most one barrier is in flight, and a request made meanwhile sends one
 * more after it. Never from inside a libraft callback (an FSM apply, a
 * change or barrier callback): appending an entry there frees the entries
 * libraft is walking; node/ calls submit_announce_commit(), which defers.
 */
void repl_announce_commit(struct repl *r);

/*
 * On the leader: the read index (Raft dissertation 6.4), a commit index
 * that covers every entry committed before this call, in any term. A new
 * leader knows one only once it has committed an entry of its own term
 * (until then its commit index may be an old term's, behind what the
 * previous leader committed): 0 and *index set; -EAGAIN while it has not
 * yet (the call makes sure a barrier entry of this term is on its way, so
 * asking again soon succeeds); -ENOTCONN on a member that is not the
 * leader. The caller that serves from its own replica waits until it has
 * applied *index.
 */
int repl_read_index(struct repl *r, uint64_t *index);

/*
 * The command entries this member's log held after index `after` when it
 * was opened (libraft's load), frame by frame in log order: whether they
 * are committed is unknown until a leader says so. A member without a
 * quorum builds what its host's clients saw from them (node/standalone.h):
 * libraft 0.22 restarts a member of a cluster from its last snapshot and
 * applies nothing after it until a leader gives the commit index. The
 * number of frames; repl_local_tail_drop() frees the copy.
 */
size_t repl_local_tail(struct repl *r, uint64_t after,
		       void (*cb)(void *arg, uint64_t index, const void *frame,
				  size_t len),
		       void *arg);
void repl_local_tail_drop(struct repl *r);

/* Take a snapshot now (at the next opportunity). */
void repl_snapshot_now(struct repl *r);
/* The log index of the newest snapshot on disk (loaded at open, taken
 * here or installed from the leader); 0 if none. */
uint64_t repl_snapshot_index(struct repl *r);

bool repl_is_leader(struct repl *r);
/* The leader as far as this member knows, 0 if none. */
uint64_t repl_leader(struct repl *r);
/* "leader", "follower", "candidate" or "unavailable". */
const char *repl_state_name(struct repl *r);

/* Roles in the configuration (libraft's). */
enum repl_role { REPL_STANDBY, REPL_VOTER, REPL_SPARE };
const char *repl_role_name(int role);

struct repl_server {
	uint64_t id;
	char address[80];
	int role; /* enum repl_role */
};

/* The current configuration: fills up to max servers, returns how many. */
size_t repl_servers(struct repl *r, struct repl_server *out, size_t max);
/*
 * When member id last sent this member a Raft message, in the loop's
 * clock (uv_now()), or 0 if it has not since repl_open(). A leader hears
 * every follower at each heartbeat, a follower hears its leader, and
 * every voter hears a candidate's vote requests: so "no member heard
 * from X for T" means that X sent nothing to anyone for T (whether it
 * runs is another question: `domain adopt`, node/cluster_contact.c).
 */
uint64_t repl_heard_ms(struct repl *r, uint64_t id);
/* The leader's view of a follower's log: 0 or -ENOTCONN (not leader). */
int repl_match_index(struct repl *r, uint64_t id, uint64_t *index);

/*
 * Membership (Raft dissertation chapter 4), on the leader only
 * (-ENOTCONN elsewhere). cb(arg, status) fires once the change is
 * committed (status 0) or failed. repl_add adds a spare; repl_assign
 * changes a role (promoting catches the server up first).
 */
typedef void (*repl_change_cb)(void *arg, int status);
int repl_add(struct repl *r, uint64_t id, const char *address,
	     repl_change_cb cb, void *arg);
int repl_assign(struct repl *r, uint64_t id, int role, repl_change_cb cb,
		void *arg);
int repl_remove(struct repl *r, uint64_t id, repl_change_cb cb, void *arg);
/* Hand leadership to id (0: any voter). cb fires when done or given up. */
int repl_transfer(struct repl *r, uint64_t id, repl_change_cb cb, void *arg);
uint64_t repl_last_applied(struct repl *r);
uint64_t repl_commit_index(struct repl *r);
uint64_t repl_last_index(struct repl *r);
uint64_t repl_term(struct repl *r);

/*
 * Stop: pending submissions complete with an error, the log is closed,
 * then cb(arg) runs. r is freed after cb.
 */
void repl_close(struct repl *r, repl_close_cb cb, void *arg);

#endif
