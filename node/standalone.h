/*
 * node/standalone.h: a host's own tree stays writable while its member
 * cannot reach a quorum (standalone mode; docs/ARCHITECTURE.md,
 * "Standalone mode", has the design and README the guarantees).
 *
 * No quorum means: no leader known for standalone-after ms, or an entry
 * of this member submitted standalone-after ms ago still not applied
 * ([cluster] standalone-after, default 3000), or a cold start that did not
 * catch up within cold-start-wait ms. Then:
 *
 * - The replica as the log applied it is kept aside, untouched
 *   (d->committed); clients see an overlay, a copy of it (d->store).
 * - A mutation of this host's own tree (a socket client's, a guest's, the
 *   daemon's ring bookkeeping) is applied to the overlay by sm_apply() as
 *   the log would apply it, written to the standalone journal
 *   (DATA/standalone.journal: records with a CRC-32, fdatasync'd) if it
 *   changed something, and then answered; it stays in submit's list, so
 *   it is proposed to the log, in order, when a leader is known again.
 *   A transaction's commit is checked against the overlay and proposed
 *   with existence-only conflict checks (store.h, struct store_commit).
 *   Anything else (another host's tree, moves, membership, verify points)
 *   fails meanwhile.
 * - When a leader is known again, a no-op probe is proposed; once the log
 *   has applied it (this member's entries do reach the log, not only the
 *   leader's heartbeats this member), new writes take the log path and their
 *   answers wait; once every standalone write has been applied to the
 *   replica and the member has caught up, the replica becomes what
 *   clients see (snapshot_install(): rings and watches follow the
 *   difference), the held answers go out and the journal is emptied.
 *
 * A restart with a non-empty journal enters standalone mode at once with
 * the journal's writes in the overlay and proposes them again.
 */
#ifndef XSR_NODE_STANDALONE_H
#define XSR_NODE_STANDALONE_H

#include <stdbool.h>
#include <stdint.h>

struct daemon;

/* After the log is open (the replica restored): create the module, and
 * take up a journal left by an earlier run. 0 or -errno. */
int standalone_open(struct daemon *d);
void standalone_free(struct daemon *d);

/*
 * A cold start that has not caught up in cold-start-wait ms: enter
 * standalone mode and return true if this member may serve its own tree
 * from local state (standalone mode on, the tree exists here).
 */
bool standalone_cold_start(struct daemon *d);
/* Caught up with the log (readiness finished). */
void standalone_caught_up(struct daemon *d);
/* The daemon's tick, once serving: enter, leave. */
void standalone_tick(struct daemon *d, uint64_t now_ms);

#endif
