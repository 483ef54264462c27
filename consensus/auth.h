/*
 * consensus/auth.h: libraft's TCP transport, with both ends of every Raft
 * connection proving that they hold the cluster key (SipHash-128
 * challenge-response) before libraft gets the stream. Private to
 * consensus/ (repl.c uses it when a cluster key is configured).
 */
#ifndef XSR_CONSENSUS_AUTH_H
#define XSR_CONSENSUS_AUTH_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

typedef void (*auth_log_fn)(void *data, int level, const char *msg);

/*
 * A transport for raft_uv_init(). Returns 0 or a libraft error code.
 * Free it with auth_transport_free() after libraft closed it.
 */
int auth_transport_init(struct raft_uv_transport **out, uv_loop_t *loop,
			const uint8_t key[16], auth_log_fn log, void *log_data);
void auth_transport_free(struct raft_uv_transport *t);

#endif
