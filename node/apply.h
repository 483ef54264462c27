/*
 * node/apply.h: committed log entries in (repl_fsm.apply), store
 * mutations, watch events and replies out (node/apply.c).
 */
#ifndef XSR_NODE_APPLY_H
#define XSR_NODE_APPLY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Apply entry index (buf, len) to d's store, on every member, in log
 * order: then fire this member's watches and answer its waiting request.
 * Out of memory (or an entry of a newer schema), the member stops.
 */
void apply_entry(void *d, uint64_t index, const void *buf, size_t len);

#endif
