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

/* Every event of ev to every local watch it matches, in ev's order. */
void fire_events(struct daemon *d, const struct store_events *ev);

#endif
