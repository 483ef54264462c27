/*
 * node/conn_int.h: what the two files of the conn module share (conn.c:
 * the pool, requests, output, sockets; conn_ring.c: the ring transport).
 * The rest of the daemon reaches them through conn.h.
 */
#ifndef XSR_NODE_CONN_INT_H
#define XSR_NODE_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "node/conn.h"
#include "node/hashset.h"
#include "ring/ring.h"

/* One message queued for the client: a reply or a watch event. */
struct out {
	struct out *next;
	size_t len;
	bool event;
	bool indexed;		   /* in the connection's events set */
	struct hashset_node idx;   /* there, by payload */
	uint64_t req_end, req_seq; /* a reply: its request (rings) */
	uint8_t data[]; /* header + payload */
};

struct conn {
	struct conn_pool *pool;
	struct conn *all_next, *all_prev; /* every live connection */
	struct conn *work_next; /* on the pool's work list */
	bool on_work_list;
	uint64_t serial;
	struct conn_identity id;
	struct conn_limits lim;
	struct conn_handler h;
	void *data;

	bool ring;
	int fd;
	uv_poll_t poll;
	int poll_events;
	bool closed, transport_closed, handle_closing;

	/* ring transport */
	struct ring_io io;
	struct ring_journal *jr;
	struct conn_ring_ops rops;
	uint64_t in_pos; /* stream position of the next byte to parse */
	uint64_t in_seq; /* number of the next request */
	bool stalled;	 /* broken or reconnecting: hands off the ring */
	bool dropping;	 /* dropping watch events (logged once) */

	/* input reassembly */
	uint8_t hdr_raw[WIRE_HDR_SIZE];
	size_t hdr_used;
	struct conn_req *partial; /* payload being read */
	size_t partial_used;

	/* whole requests waiting, in order */
	struct conn_req *in_head, *in_tail;
	size_t n_in;
	unsigned n_async;
	bool busy; /* inside the handler */

	/* output */
	struct out *out_head, *out_tail;
	size_t out_bytes;
	size_t out_off; /* bytes of out_head already written */
	/* The queued watch events (but "@" ones), by their payload, to drop
	 * a duplicate in O(1): an event is in it from the time it is queued
	 * until its last byte is written (conn_out_pop()) or the queue is
	 * dropped (conn_free_queues()). */
	struct hashset events;
};

/* The work list and the check handle that drains it (one per daemon). */
struct conn_pool {
	uv_loop_t *loop;
	uv_check_t check;
	uv_idle_t idle;
	struct conn *work_head, *work_tail;
	struct conn all; /* list head of every connection */
	size_t n_conns;
	uint64_t last_serial; /* of the newest connection */
	uint8_t hash_key[HASHSET_KEY_LEN]; /* for events' payloads */
	unsigned handles_open;
	void (*closed_cb)(void *arg);
	void *closed_arg;
};


/*
 * For assert() only: the queues' ends and counts agree (O(1)). A request
 * queue is empty exactly when its head is NULL, its tail then too, and a
 * non-empty one has a last element; the same for the output queue.
 */
static inline bool conn_queues_ok(const struct conn *c)
{
	return (c->in_head == NULL) == (c->n_in == 0) &&
	       (c->in_head == NULL) == (c->in_tail == NULL) &&
	       (!c->in_tail || !c->in_tail->next) &&
	       (c->out_head == NULL) == (c->out_tail == NULL) &&
	       (c->out_head != NULL || c->out_bytes == 0) &&
	       (!c->out_tail || !c->out_tail->next);
}

void conn_logf(struct conn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Put c on the work list: it runs from the loop's check phase. */
void conn_schedule(struct conn *c);
/* A new connection's memory, numbered; not linked yet (NULL: ENOMEM). */
struct conn *conn_alloc(struct conn_pool *p, const struct conn_identity *id,
			const struct conn_limits *limits,
			const struct conn_handler *h);
/* Link a new connection into the pool's list of every connection. */
void conn_link(struct conn_pool *p, struct conn *c);
/* Parse n bytes of c's stream into whole requests (false: a broken
 * stream). replayed: read again from a ring's journal. */
bool conn_parse(struct conn *c, const uint8_t *p, size_t n, bool replayed);
/* May more requests be read now (limits, the handler's may_read)? */
bool conn_may_read(struct conn *c);
/* Hand queued requests to the handler, in order, while it takes them. */
void conn_process(struct conn *c);
void conn_free_queues(struct conn *c);
/* The head of the output queue is all written: free it. */
void conn_out_pop(struct conn *c);
/* o, a watch event queued by hand (a ring's journal), is one later
 * duplicates are checked against (not if it is an "@" event). */
void conn_out_index_event(struct conn *c, struct out *o);
/* Drop the transport; free the memory once no request is in the log. */
void conn_teardown(struct conn *c);
/* A ring connection's turn on the work list (conn_ring.c). */
void conn_ring_work(struct conn *c);

#endif
