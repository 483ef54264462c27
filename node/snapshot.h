/*
 * node/snapshot.h: the repl_fsm snapshot callbacks (node/snapshot.c):
 * pin the store and serialise the pinned version off the loop; install a
 * snapshot, doing locally what applying the entries it replaces would
 * have done (rings follow the registry, watches fire).
 */
#ifndef XSR_NODE_SNAPSHOT_H
#define XSR_NODE_SNAPSHOT_H

#include <stddef.h>

void *snapshot_pin(void *data);
int snapshot_write(void *pin, void **buf, size_t *len);
void snapshot_unpin(void *data, void *pin);
int snapshot_restore(void *data, const void *buf, size_t len);
/*
 * Make st (taken over) what clients see in place of d->store, freed:
 * rings follow its registry and watches fire for the difference (the
 * header comment of snapshot.c). Used by a snapshot installed at run time
 * and by the end of standalone mode (node/standalone.h).
 */
struct daemon;
struct store;
void snapshot_install(struct daemon *d, struct store *st);

#endif
