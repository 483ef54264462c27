/*
 * consensus/snap_diff.h: what changed in one host's tree and domain registry
 * between two stores, for a member that swaps its store for a snapshot
 * at run time (node/snapshot.c) and must fire the watches the skipped
 * entries would have fired.
 *
 * The diff compares states, not histories: a node that was created and
 * removed again entirely within the skipped entries leaves no trace in
 * either store and is not reported (a watcher that reads again sees
 * nothing changed). Everything else that differs is reported: a node whose
 * value, permissions, generation or child list differs, and every subtree
 * that exists in one store only.
 *
 * Pure: it reads both stores through store.h and changes neither.
 */
#ifndef XSR_CONSENSUS_SNAP_DIFF_H
#define XSR_CONSENSUS_SNAP_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "node/store/store.h"

/* Past this many events, the diff gives up and says "everything". */
#define SNAP_DIFF_MAX_EVENTS 4096

struct snap_diff {
	/* nodes in both stores whose record differs, and the special
	 * @introduceDomain / @releaseDomain events: fire each as an event
	 * (it reaches watches on the path and on its ancestors) */
	struct store_events changed;
	/*
	 * roots of subtrees that exist in one store only (in tree order):
	 * fire each as an event, and also every watch strictly below it
	 * (each of those nodes was created or removed)
	 */
	struct store_events replaced;
	/*
	 * nodes a change of this member's own requests touched among the
	 * skipped entries (snap_diff_touch): fire each as an event, before
	 * the others, as those requests' own changes
	 */
	struct store_events touched;
	bool all;	 /* too much changed: fire every watch once */
	bool introduced; /* a domain joined the registry */
	bool released;	 /* a domain left the registry */
};

void snap_diff_init(struct snap_diff *df);
void snap_diff_clear(struct snap_diff *df);

/*
 * Compare host's tree and registry in old_st and new_st (either may lack
 * the host) into df (initialised, empty). Both stores are only read.
 * Returns 0, or -ENOMEM (df is then cleared and df->all set: the caller
 * can still fire every watch).
 */
int snap_diff(struct store *old_st, struct store *new_st, const char *host,
	      struct snap_diff *df);

/*
 * An event on path of host's tree (exact: for watches on that path only)
 * as a change among the skipped entries fired it: a request of this
 * member applied there, whose change a later entry may have undone, so
 * that the comparison of states cannot see it. It carries the node's
 * permissions in new_st and in old_st and its parent's in new_st (else
 * in old_st), as the change's own event would have carried the node's
 * and its parent's. A node in neither store (created and removed among
 * the skipped entries) carries its parent's permissions as its own, those
 * it inherited while it existed (the owner aside); with no parent in
 * either store it reaches no watcher, as an event on a node that no
 * longer exists does. Appended to
 * df->touched; 0, or -ENOMEM (df is then cleared and df->all set).
 */
int snap_diff_touch(struct store *old_st, struct store *new_st,
		    const char *host, const char *path, bool exact,
		    struct snap_diff *df);

#endif
