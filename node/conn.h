/*
 * node/conn.h: client connections. Reassembles requests from a byte
 * stream, hands them to the daemon strictly in order, queues replies and
 * watch events, and frees a connection only at a safe point.
 *
 * The transport is behind conn_transport: a Unix socket today (this file),
 * a guest's shared ring later. Requests of one connection are handled one
 * after the other; the only overlap allowed is between consecutive
 * requests that went to the log (their replies come back in log order),
 * which the handler decides by returning CONN_WAIT.
 */
#ifndef XSR_NODE_CONN_H
#define XSR_NODE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <uv.h>

#include "wire/xs_msg.h"

struct conn;

/* One complete request. payload[hdr.len] is a NUL the client did not send. */
struct conn_req {
	struct conn_req *next;
	struct wire_hdr hdr;
	char payload[];
};

enum conn_verdict {
	CONN_DONE,  /* replied (or nothing to reply): take the next one */
	CONN_ASYNC, /* will be answered later with conn_async_done() */
	CONN_WAIT,  /* cannot run yet: offer it again after an async reply */
};

struct conn_handler {
	void *data;
	/* Called for each request in order; may queue output on c. */
	enum conn_verdict (*request)(void *data, struct conn *c,
				     struct conn_req *r);
	/* The connection is going away: drop its watches, transactions. */
	void (*closed)(void *data, struct conn *c);
	/* Trace hook for every message in and out (may be NULL). */
	void (*trace)(void *data, const struct conn *c, bool out,
		      const struct wire_hdr *h, const void *payload);
	/* Log hook (level 3..7). */
	void (*log)(void *data, int level, const char *msg);
};

/* Who is at the other end. Socket clients are dom0 and privileged. */
struct conn_identity {
	uint32_t domid;
	bool privileged;
	bool readonly; /* the read-only socket */
	uint32_t target; /* SET_TARGET, or UINT32_MAX */
};

/* Limits protecting the daemon from one client (privileged ones too). */
struct conn_limits {
	size_t max_queued_requests; /* stop reading beyond this */
	size_t max_output_bytes;    /* stop reading beyond this */
	size_t drop_output_bytes;   /* close the connection beyond this */
	unsigned max_async;	    /* requests in the log at once */
};

#define CONN_LIMITS_DEFAULT                                                    \
	{                                                                      \
		.max_queued_requests = 128, .max_output_bytes = 1u << 20,     \
		.drop_output_bytes = 64u << 20, .max_async = 64               \
	}

/*
 * The pool runs deferred connection work from the loop's check phase.
 * One per daemon; conn_pool_close() after every connection is gone, cb
 * runs when its handles are closed.
 */
struct conn_pool;
struct conn_pool *conn_pool_new(uv_loop_t *loop);
void conn_pool_close(struct conn_pool *p, void (*cb)(void *arg), void *arg);
/* Close every connection (they go at the next safe point). */
void conn_pool_close_all(struct conn_pool *p, const char *why);
/* Connections not yet freed. */
size_t conn_pool_count(const struct conn_pool *p);

/*
 * Adopt a connected, non-blocking Unix socket (the connection owns fd).
 * The connection belongs to the conn module; it is freed after
 * conn_close() at a safe point, once no request of it is in the log.
 */
int conn_socket_new(struct conn_pool *p, int fd,
		    const struct conn_identity *id,
		    const struct conn_limits *limits,
		    const struct conn_handler *h, uint64_t serial,
		    struct conn **out);

/* Creation serial number: connections fire watches in this order. */
uint64_t conn_serial(const struct conn *c);
const struct conn_identity *conn_identity(const struct conn *c);
struct conn_identity *conn_identity_mut(struct conn *c);
unsigned conn_async_count(const struct conn *c);
bool conn_is_closed(const struct conn *c);

/* Per-connection slot for the daemon's own state (transactions, ...). */
void *conn_get_data(const struct conn *c);
void conn_set_data(struct conn *c, void *data);

/*
 * Queue a reply to request h (its type, req_id, tx_id echoed). A payload
 * over 4096 bytes becomes an E2BIG error, as in cxenstored (XSA-72).
 */
void conn_reply(struct conn *c, const struct wire_hdr *h, const void *payload,
		size_t len);
void conn_reply_error(struct conn *c, const struct wire_hdr *h, int neg_errno);
/* Reply with a different type (XS_ERROR uses this). */
void conn_reply_type(struct conn *c, const struct wire_hdr *h, uint32_t type,
		     const void *payload, size_t len);

/*
 * Queue a watch event "path\0token\0". Dropped if over 4096 bytes
 * (XSA-324), or if an identical event is still queued unsent (cxenstored
 * drops duplicates, except for "@" paths).
 */
void conn_event(struct conn *c, const char *path, const char *token);

/*
 * The reply to an async request was queued (or the request was dropped):
 * resume handling this connection's queued requests.
 */
void conn_async_done(struct conn *c);

/* Take the connection down (after the current callback). */
void conn_close(struct conn *c, const char *why);

/* Statistics for logs and tests. */
size_t conn_output_bytes(const struct conn *c);

#endif
