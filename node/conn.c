/*
 * node/conn.c: connections over Unix sockets (uv_poll on the fd) and over
 * guests' shared rings (ring/ring.h; kicked by the domain code).
 *
 * Work is never done inside the callback that discovered it: reads parse
 * bytes into whole requests, and requests are handled, output is flushed
 * and closed connections are freed from the loop's check phase (a "work
 * list"), so a handler may reply, close or submit to the log at any time
 * without re-entering itself or libraft.
 */
#include "node/conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring.h"

#define READ_CHUNK 65536
#define MAX_IOV 64

struct out {
	struct out *next;
	size_t len;
	bool event;
	uint64_t req_end, req_seq; /* a reply: its request (rings) */
	uint8_t data[]; /* header + payload */
};

struct conn_pool;

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
	unsigned handles_open;
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

static void logf_(struct conn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct conn *c, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->h.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->h.log(c->h.data, level, msg);
}

static void pool_run(uv_check_t *check);

static void idle_noop(uv_idle_t *idle)
{
	(void)idle;
}

struct conn_pool *conn_pool_new(uv_loop_t *loop)
{
	struct conn_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->loop = loop;
	uv_check_init(loop, &p->check);
	p->check.data = p;
	uv_check_start(&p->check, pool_run);
	uv_unref((uv_handle_t *)&p->check);
	uv_idle_init(loop, &p->idle);
	p->idle.data = p;
	p->handles_open = 2;
	p->all.all_next = p->all.all_prev = &p->all;
	return p;
}

static void pool_handle_closed(uv_handle_t *h)
{
	struct conn_pool *p = h->data;

	if (--p->handles_open == 0) {
		if (p->closed_cb)
			p->closed_cb(p->closed_arg);
		free(p);
	}
}

void conn_pool_close_all(struct conn_pool *p, const char *why)
{
	struct conn *c;

	for (c = p->all.all_next; c != &p->all; c = c->all_next)
		conn_close(c, why);
}

size_t conn_pool_count(const struct conn_pool *p)
{
	return p->n_conns;
}

bool conn_pool_busy(const struct conn_pool *p)
{
	const struct conn *c;

	for (c = p->all.all_next; c != &p->all; c = c->all_next)
		if (!c->closed && !c->stalled &&
		    (c->n_async || c->in_head || c->out_head))
			return true;
	return false;
}

void conn_pool_close(struct conn_pool *p, void (*cb)(void *arg), void *arg)
{
	p->closed_cb = cb;
	p->closed_arg = arg;
	uv_close((uv_handle_t *)&p->check, pool_handle_closed);
	uv_close((uv_handle_t *)&p->idle, pool_handle_closed);
}

static void schedule(struct conn *c)
{
	struct conn_pool *p = c->pool;

	if (c->on_work_list)
		return;
	c->on_work_list = true;
	c->work_next = NULL;
	if (p->work_tail)
		p->work_tail->work_next = c;
	else
		p->work_head = c;
	p->work_tail = c;
	/* Keep the loop from blocking while there is work. */
	uv_idle_start(&p->idle, idle_noop);
}

uint64_t conn_serial(const struct conn *c)
{
	return c->serial;
}

const struct conn_identity *conn_identity(const struct conn *c)
{
	return &c->id;
}

struct conn_identity *conn_identity_mut(struct conn *c)
{
	return &c->id;
}

unsigned conn_async_count(const struct conn *c)
{
	return c->n_async;
}

bool conn_is_closed(const struct conn *c)
{
	return c->closed;
}

void *conn_get_data(const struct conn *c)
{
	return c->data;
}

void conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

size_t conn_output_bytes(const struct conn *c)
{
	return c->out_bytes;
}

/* ---- Output ---------------------------------------------------------- */

static void out_push(struct conn *c, uint32_t type, uint32_t req_id,
		     uint32_t tx_id, const void *a, size_t alen, const void *b,
		     size_t blen, const struct conn_req *r)
{
	bool event = r == NULL;
	struct wire_hdr h = {type, req_id, tx_id, (uint32_t)(alen + blen)};
	struct out *o;

	if (c->closed)
		return;
	/*
	 * A guest that does not read its ring is not disconnected (it has no
	 * other way in): its watch events are dropped beyond the output
	 * limit, as cxenstored drops them past the memory quota. Replies are
	 * bounded by the requests it may have outstanding.
	 */
	if (c->ring && event && c->out_bytes >= c->lim.max_output_bytes) {
		if (!c->dropping)
			logf_(c, 4,
			      "domain %u does not read its watch events: "
			      "dropping them",
			      c->id.domid);
		c->dropping = true;
		return;
	}
	c->dropping = false;
	o = malloc(sizeof(*o) + WIRE_HDR_SIZE + alen + blen);
	if (!o) {
		conn_close(c, "out of memory for output");
		return;
	}
	o->next = NULL;
	o->len = WIRE_HDR_SIZE + alen + blen;
	o->event = event;
	o->req_end = r ? r->end : 0;
	o->req_seq = r ? r->seq : 0;
	wire_hdr_encode(&h, o->data);
	if (alen)
		memcpy(o->data + WIRE_HDR_SIZE, a, alen);
	if (blen)
		memcpy(o->data + WIRE_HDR_SIZE + alen, b, blen);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len;
	if (c->h.trace)
		c->h.trace(c->h.data, c, true, &h, o->data + WIRE_HDR_SIZE);
	if (!c->ring && c->out_bytes > c->lim.drop_output_bytes)
		conn_close(c, "client does not read its replies");
	else
		schedule(c);
}

void conn_reply_type(struct conn *c, const struct conn_req *r, uint32_t type,
		     const void *payload, size_t len)
{
	if (len > WIRE_PAYLOAD_MAX) {
		conn_reply_error(c, r, -E2BIG);
		return;
	}
	out_push(c, type, r->hdr.req_id, r->hdr.tx_id, payload, len, NULL, 0,
		 r);
}

void conn_reply(struct conn *c, const struct conn_req *r, const void *payload,
		size_t len)
{
	conn_reply_type(c, r, r->hdr.type, payload, len);
}

void conn_reply_error(struct conn *c, const struct conn_req *r, int neg_errno)
{
	bool known;
	const char *name = wire_errno_name(neg_errno, &known);

	if (!known)
		logf_(c, 4, "error %d has no xenstore name: sent as EINVAL",
		      -neg_errno);
	conn_reply_type(c, r, WIRE_ERROR, name, strlen(name) + 1);
}

void conn_event(struct conn *c, const char *path, const char *token)
{
	size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
	struct out *o;

	if (c->closed || pl + tl > WIRE_PAYLOAD_MAX)
		return;
	if (path[0] != '@') {
		for (o = c->out_head; o; o = o->next) {
			const uint8_t *p = o->data + WIRE_HDR_SIZE;

			if (o->event && o->len == WIRE_HDR_SIZE + pl + tl &&
			    memcmp(p, path, pl) == 0 &&
			    memcmp(p + pl, token, tl) == 0)
				return; /* "dropping duplicate watch" */
		}
	}
	out_push(c, WIRE_WATCH_EVENT, 0, 0, path, pl, token, tl, NULL);
}

/* Write as much as the socket takes. Returns false on a fatal error. */
static bool flush(struct conn *c)
{
	struct iovec iov[MAX_IOV];
	struct out *o;
	ssize_t n;
	int cnt;

	while (c->out_head) {
		cnt = 0;
		for (o = c->out_head; o && cnt < MAX_IOV; o = o->next) {
			size_t off = cnt == 0 ? c->out_off : 0;

			iov[cnt].iov_base = o->data + off;
			iov[cnt].iov_len = o->len - off;
			cnt++;
		}
		n = writev(c->fd, iov, cnt);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			if (errno == EINTR)
				continue;
			return false;
		}
		while (n > 0 && c->out_head) {
			o = c->out_head;
			size_t left = o->len - c->out_off;

			if ((size_t)n < left) {
				c->out_off += (size_t)n;
				break;
			}
			n -= (ssize_t)left;
			c->out_off = 0;
			c->out_head = o->next;
			if (!c->out_head)
				c->out_tail = NULL;
			c->out_bytes -= o->len;
			free(o);
		}
	}
	return true;
}

/* ---- Input ------------------------------------------------------------ */

static void in_push(struct conn *c, struct conn_req *r)
{
	r->next = NULL;
	if (c->in_tail)
		c->in_tail->next = r;
	else
		c->in_head = r;
	c->in_tail = r;
	c->n_in++;
	if (c->h.trace)
		c->h.trace(c->h.data, c, false, &r->hdr, r->payload);
}

/* Parse bytes into requests. Returns false if the stream is invalid. */
static bool parse(struct conn *c, const uint8_t *p, size_t n, bool replayed)
{
	c->in_pos += n;
	while (n > 0) {
		if (!c->partial) {
			size_t want = WIRE_HDR_SIZE - c->hdr_used;
			size_t take = n < want ? n : want;
			struct wire_hdr h;

			memcpy(c->hdr_raw + c->hdr_used, p, take);
			c->hdr_used += take;
			p += take;
			n -= take;
			if (c->hdr_used < WIRE_HDR_SIZE)
				return true;
			wire_hdr_decode(c->hdr_raw, &h);
			c->hdr_used = 0;
			if (h.len > WIRE_PAYLOAD_MAX) {
				logf_(c, 4,
				      "client tried to feed us %u bytes: closing",
				      h.len);
				return false;
			}
			c->partial = malloc(sizeof(*c->partial) + h.len + 1);
			if (!c->partial) {
				logf_(c, 3, "out of memory for a request");
				return false;
			}
			c->partial->hdr = h;
			c->partial->payload[h.len] = '\0';
			c->partial->end = c->partial->seq = 0;
			c->partial->replayed = false;
			c->partial_used = 0;
		}
		{
			struct conn_req *r = c->partial;
			size_t want = r->hdr.len - c->partial_used;
			size_t take = n < want ? n : want;

			memcpy(r->payload + c->partial_used, p, take);
			c->partial_used += take;
			p += take;
			n -= take;
			if (c->partial_used == r->hdr.len) {
				c->partial = NULL;
				r->end = c->in_pos - n;
				r->seq = c->in_seq++;
				r->replayed = replayed;
				in_push(c, r);
			}
		}
	}
	return true;
}

static bool may_read(struct conn *c)
{
	if (c->closed || c->stalled || c->n_in >= c->lim.max_queued_requests ||
	    c->out_bytes >= c->lim.max_output_bytes)
		return false;
	if (c->ring && c->lim.max_outstanding &&
	    conn_outstanding(c) >= c->lim.max_outstanding)
		return false;
	return !c->h.may_read || c->h.may_read(c->h.data, c);
}

unsigned conn_outstanding(const struct conn *c)
{
	return c->ring ? (unsigned)(c->in_seq - c->jr->in_base_seq) : 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(struct conn *c)
{
	int ev = 0;

	if (c->transport_closed)
		return;
	if (may_read(c))
		ev |= UV_READABLE;
	if (c->out_head)
		ev |= UV_WRITABLE;
	if (ev == c->poll_events)
		return;
	c->poll_events = ev;
	if (ev)
		uv_poll_start(&c->poll, ev, on_poll);
	else
		uv_poll_stop(&c->poll);
}

static void do_read(struct conn *c)
{
	uint8_t buf[READ_CHUNK];
	ssize_t n;

	/* One read per wake-up: a busy client cannot starve the rest. */
	n = read(c->fd, buf, sizeof(buf));
	if (n == 0) {
		conn_close(c, NULL);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c, "read error");
		return;
	}
	if (!parse(c, buf, (size_t)n, false)) {
		conn_close(c, "malformed request");
		return;
	}
	schedule(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	if (status < 0) {
		conn_close(c, NULL);
		return;
	}
	if ((events & UV_READABLE) && may_read(c))
		do_read(c);
	if ((events & UV_WRITABLE) && !c->closed)
		schedule(c);
}

/* ---- Processing ------------------------------------------------------- */

static void process(struct conn *c)
{
	if (c->busy)
		return;
	c->busy = true;
	while (c->in_head && !c->closed) {
		struct conn_req *r = c->in_head;
		enum conn_verdict v;

		if (c->n_async >= c->lim.max_async)
			break;
		v = c->h.request(c->h.data, c, r);
		if (v == CONN_WAIT)
			break;
		c->in_head = r->next;
		if (!c->in_head)
			c->in_tail = NULL;
		c->n_in--;
		if (v == CONN_DONE)
			free(r);
		else
			c->n_async++; /* the handler owns r now */
	}
	c->busy = false;
}

static void conn_free(struct conn *c)
{
	c->all_prev->all_next = c->all_next;
	c->all_next->all_prev = c->all_prev;
	c->pool->n_conns--;
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	conn_free(h->data);
}

static void free_queues(struct conn *c)
{
	struct conn_req *r;
	struct out *o;

	while ((r = c->in_head)) {
		c->in_head = r->next;
		free(r);
	}
	c->in_tail = NULL;
	c->n_in = 0;
	free(c->partial);
	c->partial = NULL;
	while ((o = c->out_head)) {
		c->out_head = o->next;
		free(o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
}

/* Drop the transport; free the memory once no request is in the log. */
static void teardown(struct conn *c)
{
	if (!c->transport_closed) {
		c->transport_closed = true;
		if (!c->ring) {
			uv_poll_stop(&c->poll);
			close(c->fd);
			c->fd = -1;
		}
		if (c->h.closed)
			c->h.closed(c->h.data, c);
		free_queues(c);
		/* the page and the journal are not ours to touch any more */
		if (c->ring)
			c->rops.event(c->rops.arg, c, CONN_RING_CLOSED, 0);
	}
	if (c->n_async == 0 && !c->on_work_list && !c->handle_closing) {
		c->handle_closing = true;
		if (c->ring)
			conn_free(c);
		else
			uv_close((uv_handle_t *)&c->poll, handle_closed);
	}
}

/* ---- Ring transport ------------------------------------------------------ */

/* Stop using the ring: it broke or the guest asks to start over. */
static void ring_stall(struct conn *c, enum conn_ring_event ev, uint32_t err)
{
	if (c->stalled)
		return;
	c->stalled = true;
	if (ev == CONN_RING_BROKEN) {
		ring_io_set_error(&c->io, err);
		logf_(c, 4, "ring of domain %u broken (error %u): ignored",
		      c->id.domid, err);
	}
	c->rops.event(c->rops.arg, c, ev, err);
}

/* Journal the next message to copy into the ring. */
static void ring_msg_start(struct conn *c, const struct out *o)
{
	struct ring_journal *j = c->jr;

	memcpy(j->msg, o->data, o->len);
	j->msg_start = j->out_pos;
	j->msg_req_end = o->req_end;
	j->msg_req_seq = o->req_seq;
	j->msg_is_reply = !o->event;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	j->msg_len = (uint32_t)o->len;
}

/* The journaled message is all in the ring: its request is answered. */
static void ring_msg_done(struct conn *c)
{
	struct ring_journal *j = c->jr;

	if (j->msg_is_reply && j->msg_req_end > j->in_base) {
		j->in_base = j->msg_req_end;
		j->in_base_seq = j->msg_req_seq + 1;
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	j->msg_len = 0;
}

/*
 * Copy queued output into the ring as far as it goes. The order of the
 * stores is what makes a crash at any point harmless: bytes into the
 * ring, then the journal's out_pos, then the index the guest sees.
 */
static void ring_output(struct conn *c)
{
	struct ring_journal *j = c->jr;
	bool moved = false;

	while (c->out_head && !c->stalled) {
		struct out *o = c->out_head;
		size_t off, n;
		int rc;

		if (!j->msg_len)
			ring_msg_start(c, o);
		off = (size_t)(j->out_pos - j->msg_start);
		rc = ring_io_put(&c->io, j->msg + off, j->msg_len - off, &n);
		if (rc) {
			ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_RINGIDX);
			break;
		}
		if (n == 0)
			break;
		j->out_pos += n;
		moved = true;
		if (off + n < j->msg_len)
			break; /* the ring is full */
		ring_msg_done(c);
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= o->len;
		free(o);
	}
	if (moved) {
		ring_io_publish(&c->io);
		c->rops.notify(c->rops.arg);
	}
}

/*
 * How many of the n bytes in buf (the stream from in_pos on) may be read
 * now: a new request is started only while fewer than max_outstanding are
 * unanswered, as cxenstored stops reading then (domain_can_read()). The
 * one under way is always finished.
 */
static size_t ring_admit(const struct conn *c, const uint8_t *buf, size_t n)
{
	unsigned out = conn_outstanding(c), max = c->lim.max_outstanding;
	uint8_t hdr[WIRE_HDR_SIZE];
	size_t hu = c->hdr_used, left = 0, pos = 0, take;
	bool body = c->partial != NULL, started = body || hu > 0;
	struct wire_hdr h;

	if (!max)
		return n;
	memcpy(hdr, c->hdr_raw, hu);
	if (body)
		left = c->partial->hdr.len - c->partial_used;
	while (pos < n) {
		if (!body) {
			if (!started) {
				if (out >= max)
					break;
				started = true;
			}
			take = WIRE_HDR_SIZE - hu;
			if (take > n - pos)
				take = n - pos;
			memcpy(hdr + hu, buf + pos, take);
			hu += take;
			pos += take;
			if (hu < WIRE_HDR_SIZE)
				break;
			wire_hdr_decode(hdr, &h);
			if (h.len > WIRE_PAYLOAD_MAX)
				return n; /* the parser refuses it */
			body = true;
			left = h.len;
		}
		take = left < n - pos ? left : n - pos;
		pos += take;
		left -= take;
		if (left == 0) {
			out++;
			body = started = false;
			hu = 0;
		}
	}
	return pos;
}

/* Read what the guest wrote, journal it, then let the guest see it gone. */
static void ring_input(struct conn *c)
{
	struct ring_journal *j = c->jr;
	uint8_t buf[XENSTORE_RING_SIZE];
	size_t room, n;
	int rc;

	if (ring_io_connection(&c->io) != XENSTORE_CONNECTED) {
		ring_stall(c, CONN_RING_RECONNECT, 0);
		return;
	}
	if (!may_read(c))
		return;
	room = XSR_RING_JOURNAL_IN_BYTES - ring_journal_held(j);
	if (room > sizeof(buf))
		room = sizeof(buf);
	if (room == 0)
		return;
	rc = ring_io_peek(&c->io, buf, room, &n);
	if (rc) {
		ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_RINGIDX);
		return;
	}
	n = ring_admit(c, buf, n);
	if (n == 0)
		return;
	ring_journal_append(j, buf, n);
	ring_io_consume(&c->io, n);
	c->rops.notify(c->rops.arg);
	if (!parse(c, buf, n, false))
		ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_PROTO);
}

static void work_ring(struct conn *c)
{
	if (c->closed) {
		teardown(c);
		return;
	}
	if (!c->stalled)
		ring_input(c);
	process(c);
	if (!c->stalled)
		ring_output(c);
	if (c->closed) {
		teardown(c);
		return;
	}
	/* more to read now that room was made: come back next iteration */
	if (!c->stalled && may_read(c) && ring_io_readable(&c->io))
		schedule(c);
}

void conn_ring_kick(struct conn *c)
{
	if (!c->closed)
		schedule(c);
}

static void orphan_notify(void *arg)
{
}

static void orphan_event(void *arg, struct conn *c, enum conn_ring_event ev,
			 uint32_t error)
{
}

void conn_ring_orphan(struct conn *c)
{
	c->rops.notify = orphan_notify;
	c->rops.event = orphan_event;
	c->rops.arg = NULL;
}

bool conn_is_ring(const struct conn *c)
{
	return c->ring;
}

/*
 * Take up a journal left by a dead daemon: republish our indexes, finish
 * the message it was copying, and read its unanswered requests again.
 */
static bool ring_resume(struct conn *c)
{
	struct ring_journal *j = c->jr;
	uint64_t from = j->in_base, seq = j->in_base_seq, held;
	uint8_t *buf;
	bool ok;

	ring_io_init(&c->io, c->io.page, (uint32_t)j->in_end,
		     (uint32_t)j->out_pos);
	if (j->msg_len) {
		uint64_t done = j->out_pos - j->msg_start;

		if (done > j->msg_len)
			return false;
		if (done == j->msg_len) {
			ring_msg_done(c);
			from = j->in_base;
			seq = j->in_base_seq;
		} else {
			struct out *o = malloc(sizeof(*o) + j->msg_len);

			if (!o)
				return false;
			/* the rest of it goes first, from the journal */
			memset(o, 0, sizeof(*o));
			o->len = j->msg_len;
			o->event = !j->msg_is_reply;
			o->req_end = j->msg_req_end;
			o->req_seq = j->msg_req_seq;
			memcpy(o->data, j->msg, j->msg_len);
			c->out_head = c->out_tail = o;
			c->out_bytes = o->len;
			if (j->msg_is_reply) {
				/* that request is being answered already */
				from = j->msg_req_end;
				seq = j->msg_req_seq + 1;
			}
		}
	}
	if (from < j->in_base || from > j->in_end)
		return false;
	c->in_pos = from;
	c->in_seq = seq;
	held = j->in_end - from;
	if (!held)
		return true;
	buf = malloc(held);
	if (!buf)
		return false;
	ring_journal_copy(j, from, buf, held);
	ok = parse(c, buf, held, true);
	free(buf);
	return ok;
}

int conn_ring_new(struct conn_pool *p, void *page, struct ring_journal *jr,
		  bool fresh, const struct conn_identity *id,
		  const struct conn_limits *limits, const struct conn_handler *h,
		  const struct conn_ring_ops *ops, struct conn **out)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct xenstore_domain_interface *pg = page;

	if (!c)
		return -ENOMEM;
	c->pool = p;
	c->serial = ++p->last_serial;
	c->id = *id;
	c->lim = *limits;
	c->h = *h;
	c->rops = *ops;
	c->ring = true;
	c->fd = -1;
	c->jr = jr;
	c->io.page = pg;
	if (fresh) {
		uint32_t cons = __atomic_load_n(&pg->req_cons, __ATOMIC_RELAXED);
		uint32_t prod = __atomic_load_n(&pg->rsp_prod, __ATOMIC_RELAXED);

		jr->in_base = jr->in_end = cons;
		jr->out_pos = prod;
		ring_io_init(&c->io, pg, cons, prod);
		c->in_pos = cons;
		c->in_seq = jr->in_base_seq;
	} else if (!ring_resume(c)) {
		/* a journal we cannot make sense of: start from the page */
		free_queues(c);
		ring_journal_reset(jr, jr->ring_id);
		free(c);
		return conn_ring_new(p, page, jr, true, id, limits, h, ops,
				     out);
	}
	c->all_next = &p->all;
	c->all_prev = p->all.all_prev;
	p->all.all_prev->all_next = c;
	p->all.all_prev = c;
	p->n_conns++;
	*out = c;
	schedule(c);
	return 0;
}

static void work(struct conn *c)
{
	if (c->ring) {
		work_ring(c);
		return;
	}
	if (c->closed) {
		teardown(c);
		return;
	}
	process(c);
	if (!c->closed && c->out_head && !flush(c))
		conn_close(c, "write error");
	if (c->closed) {
		teardown(c);
		return;
	}
	update_poll(c);
}

static void pool_run(uv_check_t *check)
{
	struct conn_pool *p = check->data;
	struct conn *list = p->work_head, *c;

	/* Work found while running waits for the next iteration. */
	p->work_head = p->work_tail = NULL;
	while ((c = list)) {
		list = c->work_next;
		c->on_work_list = false;
		work(c);
	}
	if (!p->work_head)
		uv_idle_stop(&p->idle);
}

void conn_async_done(struct conn *c)
{
	if (c->n_async > 0)
		c->n_async--;
	schedule(c);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	if (why) {
		logf_(c, 6, "connection %llu closed: %s",
		      (unsigned long long)c->serial, why);
	}
	schedule(c);
}

int conn_socket_new(struct conn_pool *p, int fd,
		    const struct conn_identity *id,
		    const struct conn_limits *limits,
		    const struct conn_handler *h, struct conn **out)
{
	struct conn *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pool = p;
	c->serial = ++p->last_serial;
	c->id = *id;
	c->lim = *limits;
	c->h = *h;
	c->fd = fd;
	c->in_seq = 1;
	rc = uv_poll_init(p->loop, &c->poll, fd);
	if (rc) {
		free(c);
		return rc;
	}
	c->all_next = &p->all;
	c->all_prev = p->all.all_prev;
	p->all.all_prev->all_next = c;
	p->all.all_prev = c;
	p->n_conns++;
	c->poll.data = c;
	c->poll_events = UV_READABLE;
	rc = uv_poll_start(&c->poll, UV_READABLE, on_poll);
	if (rc) {
		c->transport_closed = true;
		c->handle_closing = true;
		uv_close((uv_handle_t *)&c->poll, handle_closed);
		return rc;
	}
	*out = c;
	return 0;
}
