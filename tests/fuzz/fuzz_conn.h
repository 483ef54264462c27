/*
 * tests/fuzz/fuzz_conn.h: a stub server for the connection targets
 * (fuzz_socket.c, fuzz_ring.c): a libuv loop, a conn pool and a request
 * handler that answers as dispatch would, without a store.
 */
#ifndef XSR_TESTS_FUZZ_CONN_H
#define XSR_TESTS_FUZZ_CONN_H

#include <uv.h>

#include "node/conn.h"

struct fuzz_pending;

struct fuzz_server {
	uv_loop_t loop;
	struct conn_pool *pool;
	struct conn_handler h;
	uv_timer_t later; /* answers the requests "in the log" */
	struct fuzz_pending *pending, **pending_tail;
};

/* A loop, a pool, the handler in s->h. */
void fuzz_server_init(struct fuzz_server *s);
/* Run the loop until every connection is gone, then close it all. */
void fuzz_server_close(struct fuzz_server *s);

#endif
