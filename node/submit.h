/*
 * node/submit.h: getting entries into the log from any member, and
 * answering the request behind each once this member has applied it
 * (node/submit.c).
 *
 * Contract for an entry: its origin is (this member, a seq from
 * submit_next_seq(), in order); once submit_entry() returns 0 the module
 * owns the packed entry and calls back exactly once: the request is
 * answered (OK or its result), or done(d, arg, result) runs for the
 * daemon's own entries. Within the commit timeout the entry is sent again
 * to whoever leads (copies are harmless: the state machine applies an
 * (origin, seq) once); after it, the result is -EIO although the entry may
 * still be committed later.
 */
#ifndef XSR_NODE_SUBMIT_H
#define XSR_NODE_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consensus/sm.h"
#include "node/conn.h"

struct daemon;
struct store;

/* Create the module (d->submit), after the peers (it takes forwarded
 * entries from them). Sequence numbers start above every earlier
 * incarnation's. 0 or -ENOMEM. */
int submit_open(struct daemon *d);
/* Stop its timer (before the loop closes). */
void submit_close(struct daemon *d);
void submit_free(struct daemon *d);

uint64_t submit_next_seq(struct daemon *d);
/* The origin of an entry of the daemon's own (privileged, no client),
 * with the next seq. */
struct sm_origin submit_own_origin(struct daemon *d);
/*
 * Caught up, before submitting anything: make this member's next sequence
 * number follow what the log's session table has applied from its id. A
 * data directory made anew for an id the log knows (a restore, a member
 * added back after a recovery) starts its incarnations at 1 again, and
 * entries numbered below what the table holds would be taken for
 * duplicates and not applied. Logged when it moves.
 */
void submit_seq_follow_log(struct daemon *d);

/*
 * Send an entry (packed by sm_entry_*(), taken over, even on failure) for
 * request r of c, answered once applied here; or for the daemon itself
 * (c NULL): done(d, arg, result) then (done may be NULL). 0 or -ENOMEM.
 */
int submit_entry(struct daemon *d, struct conn *c, struct conn_req *r,
		 void *entry_buf, size_t entry_len, uint64_t seq,
		 void (*done)(struct daemon *d, void *arg, int result),
		 void *arg);
/*
 * The entry for request r of c, packed by sm_entry_*() with result rc
 * (buf taken over): submitted, CONN_ASYNC; or r is answered at once
 * (ENOMEM, else EIO) and nothing of it is in the log, CONN_DONE.
 */
enum conn_verdict submit_request(struct daemon *d, struct conn *c,
				 struct conn_req *r, int rc, void *buf,
				 size_t len, uint64_t seq);
/*
 * An entry from member origin (0: none) numbered seq was applied with
 * result: ours are answered; on the leader, another member's origin
 * learns of the commit at once rather than at the next heartbeat.
 */
void submit_applied(struct daemon *d, uint64_t origin, uint64_t seq,
		    int result);
/*
 * On the leader: tell the followers the commit index now rather than at
 * the next heartbeat (a barrier entry), from a zero timer: safe to call
 * from inside libraft's callbacks (apply, membership changes), where
 * appending an entry would free the entries libraft is walking.
 */
void submit_announce_commit(struct daemon *d);
/*
 * Standalone mode (node/standalone.h). While d->no_quorum_since is set, an
 * entry submitted is first given to local(): 0 and *result if it applied
 * it to the overlay (and, if it changed something, made it durable), then
 * the request is answered with *result at the next loop turn and the
 * entry waits to be proposed; or -errno if it cannot be carried out
 * without a quorum (submit_entry() fails with it); or SUBMIT_TO_LOG: not
 * a local change, the log's to apply as with a quorum (it waits for one).
 */
#define SUBMIT_TO_LOG 1
void submit_set_local(struct daemon *d,
		      int (*local)(struct daemon *d, const void *entry,
				   size_t len, uint64_t seq, int *result));
/* Entering standalone mode: the entries still waiting for the log go
 * through local() now, in order. */
void submit_localize(struct daemon *d);
/* An entry answered before a restart (the standalone journal, the log's
 * tail): to be proposed again, after the others so far (one numbered at
 * or below the last is there already: ignored). 0 or -ENOMEM. */
int submit_restored(struct daemon *d, uint64_t seq, const void *entry,
		    size_t len);
/* Standalone entries the replica has not applied yet. */
size_t submit_local_count(const struct daemon *d);
/* The highest sequence number of this member's own entries that the log
 * has applied (0: none since the start). */
uint64_t submit_applied_seq(const struct daemon *d);
/* When the oldest entry waiting for the log (not standalone, not held)
 * was submitted; false if none. */
bool submit_oldest(const struct daemon *d, uint64_t *sent_ms);
/* The replica is what clients see again: answer the entries it applied
 * meanwhile. */
void submit_release_held(struct daemon *d);
/*
 * A snapshot is about to replace the store clients see (old) by st: for
 * each request of a client of this member still waiting for its answer
 * whose entry st has applied and old has not (applied among the entries
 * the snapshot skips), fn(arg, entry, len). Its client is answered later,
 * when the entry comes back as a duplicate.
 */
void submit_each_skipped(struct daemon *d, const struct store *old,
			 const struct store *st,
			 void (*fn)(void *arg, const void *entry, size_t len),
			 void *arg);
/* Periodic work: resend, time out (the daemon's tick). */
void submit_tick(struct daemon *d, uint64_t now_ms);
/* Is no entry of this member waiting to be applied? */
bool submit_idle(const struct daemon *d);
/* Fail every waiting request (shutting down). */
void submit_abort_all(struct daemon *d, int result);

#endif
