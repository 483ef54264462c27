/*
 * node/dispatch.h: the requests of every client connection (Unix socket
 * or guest ring), one handler per message type (node/dispatch*.c).
 *
 * Reads are answered from the local store at once; mutations outside a
 * transaction become log entries, answered once this member has applied
 * them (node/submit.h); a transaction's steps run locally until its end
 * commits one entry.
 */
#ifndef XSR_NODE_DISPATCH_H
#define XSR_NODE_DISPATCH_H

#include "node/conn.h"

struct daemon;

/* The handler of every client connection, socket or ring (data d). */
void dispatch_handler(struct daemon *d, struct conn_handler *h);

#endif
