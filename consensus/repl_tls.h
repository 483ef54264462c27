/*
 * consensus/repl_tls.h: libraft's transport over TLS (consensus/tls.h).
 * Private to consensus/ (repl.c uses it for every cluster of more than
 * one).
 *
 * libraft only ever sees an authenticated, encrypted stream: each Raft
 * connection is TCP with TLS 1.3 and both members' certificates checked;
 * inside it, the connecting member says its id and address (which must
 * be its certificate's id); libraft then gets one end of a socketpair
 * whose other end this module relays to and from the TLS connection.
 * libraft's own handshake (which allocates whatever address length the
 * other end claims) is never spoken on the network.
 *
 * Without credentials (cr NULL: `insecure = true`, for tests) the same
 * hello and stream travel in clear and the hello's id is taken on trust:
 * the same code and bounds, nothing authenticated.
 */
#ifndef XSR_CONSENSUS_REPL_TLS_H
#define XSR_CONSENSUS_REPL_TLS_H

#include <raft.h>
#include <raft/uv.h>

#include "consensus/tls.h"

/* Connections from one source address, and in all, at once. */
#define REPL_TLS_MAX_PER_SOURCE 16
#define REPL_TLS_MAX_LINKS 256

/*
 * A transport for raft_uv_init(), authenticating with cr (borrowed; it
 * must outlive the transport), or in clear if cr is NULL. 0 or a libraft error code. Free it with
 * repl_tls_free() after libraft closed it.
 */
int repl_tls_init(struct raft_uv_transport **out, uv_loop_t *loop,
		  struct tls_creds *cr, tls_log_fn log, void *log_data);
void repl_tls_free(struct raft_uv_transport *t);

#endif
