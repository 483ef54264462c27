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

#endif
