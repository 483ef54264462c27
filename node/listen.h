/*
 * node/listen.h: the Unix sockets clients connect to (node/listen.c):
 * the socket and the read-only socket_ro, each client served by the
 * conn module as dom0, privileged (cxenstored's semantics).
 */
#ifndef XSR_NODE_LISTEN_H
#define XSR_NODE_LISTEN_H

#include "node/conn.h"

struct daemon;

/*
 * Create the module (d->listener): clients will be served by h (copied).
 * 0 or -ENOMEM.
 */
int listen_open(struct daemon *d, const struct conn_handler *h);
/* Bind both sockets (d->cfg.socket_path) and accept: fatal on failure. */
void listen_start(struct daemon *d);
/* Accept no more; remove the sockets (connections stay). */
void listen_stop(struct daemon *d);
void listen_free(struct daemon *d);

#endif
