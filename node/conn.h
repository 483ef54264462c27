/*
 * node/conn.h: client connections. Reassembles requests from a byte
 * stream, hands them to the daemon strictly in order, queues replies and
 * watch events, and frees a connection only at a safe point.
 *
 * Two transports: a Unix socket, or a guest's shared ring (ring/ring.h).
 * Requests of one connection are handled one after the other; the only
 * overlap allowed is between consecutive requests that went to the log
 * (their replies come back in log order), which the handler decides by
 * returning CONN_WAIT. So replies leave in request order.
 *
 * A ring connection keeps a journal (ring_journal) so that a daemon
 * restarted after a crash carries on where this one stopped: request bytes
 * are journaled before the guest sees them consumed, a request counts as
 * answered only once its whole reply is in the ring, and a reply half
 * copied into the ring is finished by the next daemon. Requests read again
 * from the journal are flagged `replayed`: the handler must answer those
 * that were applied already from the log's record (conn_req.seq).
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
	uint64_t seq;	/* ring: its number in the ring session, from 1 */
	uint64_t end;	/* ring: the stream position just after it */
	bool replayed;	/* ring: read again from the journal after a restart */
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
	/* May more requests be read now? (quotas; may be NULL) */
	bool (*may_read)(void *data, struct conn *c);
};

/* Who is at the other end. Socket clients are dom0 and privileged. */
struct conn_identity {
	uint32_t domid;
	bool privileged;
	bool readonly; /* the read-only socket */
	uint32_t target; /* SET_TARGET, or UINT32_MAX */
	uint64_t ring_id; /* a guest ring's session (store.h); 0: a socket */
	bool restored;	  /* a ring taken up again after a daemon restart */
	int32_t pid;	  /* a socket client's process (SO_PEERCRED), 0 if
			   * unknown or a ring; for logs */
	uint32_t uid;
};

/* Limits protecting the daemon from one client (privileged ones too). */
struct conn_limits {
	size_t max_queued_requests; /* stop reading beyond this */
	size_t max_output_bytes;    /* stop reading beyond this */
	size_t drop_output_bytes;   /* close the connection beyond this */
	unsigned max_async;	    /* requests in the log at once */
	unsigned max_outstanding;   /* ring: requests not yet answered in the
				       ring (0: no limit) */
};

#define CONN_LIMITS_DEFAULT                                                    \
	{                                                                      \
		.max_queued_requests = 128, .max_output_bytes = 1u << 20,     \
		.drop_output_bytes = 64u << 20, .max_async = 64,              \
		.max_outstanding = 0                                          \
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
/* Does a connection still have a request to answer or output to send? */
bool conn_pool_busy(const struct conn_pool *p);

/*
 * Adopt a connected, non-blocking Unix socket (the connection owns fd).
 * The connection belongs to the conn module; it is freed after
 * conn_close() at a safe point, once no request of it is in the log.
 */
int conn_socket_new(struct conn_pool *p, int fd,
		    const struct conn_identity *id,
		    const struct conn_limits *limits,
		    const struct conn_handler *h, struct conn **out);

/* ---- Ring connections --------------------------------------------------- */

struct ring_journal;

enum conn_ring_event {
	/* The guest broke the protocol (error: XENSTORE_ERROR_*, already
	 * set in the page): nothing more is read or written. */
	CONN_RING_BROKEN,
	/* The guest asks for a reconnection (connection = RECONNECT): nothing
	 * more is read or written until its owner resets it. */
	CONN_RING_RECONNECT,
	/* The connection is gone: its owner may unmap the page now. */
	CONN_RING_CLOSED,
};

struct conn_ring_ops {
	void *arg;
	/* Signal the guest's event channel. */
	void (*notify)(void *arg);
	void (*event)(void *arg, struct conn *c, enum conn_ring_event ev,
		      uint32_t error);
};

/*
 * Serve a guest's ring. page and jr are borrowed and must stay mapped
 * until CONN_RING_CLOSED. With fresh (a new journal), our indexes start
 * where the page's are; otherwise the journal's state is taken up again:
 * indexes republished, a half-written reply finished, unanswered requests
 * read again (flagged replayed).
 */
int conn_ring_new(struct conn_pool *p, void *page, struct ring_journal *jr,
		  bool fresh, const struct conn_identity *id,
		  const struct conn_limits *limits, const struct conn_handler *h,
		  const struct conn_ring_ops *ops, struct conn **out);
/* The guest signalled its event channel: look at the ring. */
void conn_ring_kick(struct conn *c);
/*
 * Its owner lets go: no more callbacks. Then conn_close(): a closed ring
 * connection never touches its page or journal again.
 */
void conn_ring_orphan(struct conn *c);
bool conn_is_ring(const struct conn *c);
/* Requests read but not answered in the ring yet. */
unsigned conn_outstanding(const struct conn *c);

/* Creation serial number (the pool counts from 1): connections fire
 * watches in this order. */
uint64_t conn_serial(const struct conn *c);
const struct conn_identity *conn_identity(const struct conn *c);
struct conn_identity *conn_identity_mut(struct conn *c);
unsigned conn_async_count(const struct conn *c);
bool conn_is_closed(const struct conn *c);

/* Per-connection slot for the daemon's own state (transactions, ...). */
void *conn_get_data(const struct conn *c);
void conn_set_data(struct conn *c, void *data);

/*
 * Queue the reply to request r (its type, req_id, tx_id echoed). A payload
 * over 4096 bytes becomes an E2BIG error, as in cxenstored (XSA-72).
 */
void conn_reply(struct conn *c, const struct conn_req *r, const void *payload,
		size_t len);
void conn_reply_error(struct conn *c, const struct conn_req *r,
		      int neg_errno);
/* Reply with a different type (XS_ERROR uses this). */
void conn_reply_type(struct conn *c, const struct conn_req *r, uint32_t type,
		     const void *payload, size_t len);

/*
 * Queue a watch event "path\0token\0". Dropped if over 4096 bytes
 * (XSA-324), or if an identical event is still queued unsent (cxenstored
 * drops duplicates, except for "@" paths): an index of the queued events
 * makes that check O(1), however long the queue.
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
