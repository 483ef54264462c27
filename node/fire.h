/*
 * node/fire.h: deliver a change's watch events (struct store_events, made
 * by the store while it applies an entry, or by the daemon for
 * @releaseDomain and installed snapshots) to the watches of this member's
 * own connections, permission-filtered (node/fire.c).
 */
#ifndef XSR_NODE_FIRE_H
#define XSR_NODE_FIRE_H

#include "node/store/store.h"

struct daemon;

#include <stddef.h>

/*
 * Every event of ev to every local watch it matches, in ev's order. If ev
 * lost an event (out of memory), every watch fires once instead.
 */
void fire_events(struct daemon *d, const struct store_events *ev);
/*
 * Every local watch fires once with its own path, unfiltered, as after a
 * restart (the protocol allows spurious events): when what changed is not
 * known.
 */
void fire_all(struct daemon *d);
/* Every local watch strictly below one of roots[0..n) (sorted by
 * strcmp()) fires once with its own path, unfiltered (watch_fire_below). */
void fire_below(struct daemon *d, const char *const *roots, size_t n);

#endif
