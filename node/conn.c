/*
 * node/conn.c: connections (node/conn.h): the pool and its work list,
 * request reassembly and processing, output queues, and the Unix socket
 * transport (uv_poll on the fd); guests' rings are conn_ring.c's.
 *
 * Work is never done inside the callback that discovered it: reads parse
 * bytes into whole requests, and requests are handled, output is flushed
 * and closed connections are freed from the loop's check phase (a "work
 * list"), so a handler may reply, close or submit to the log at any time
 * without re-entering itself or libraft.
 */
#include "node/conn.h"
#include "node/conn_int.h"

#include <assert.h>
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

void conn_logf(struct conn *c, int level, const char *fmt, ...)
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
	hashset_key_new(p->hash_key);
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

void conn_schedule(struct conn *c)
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

/* Queue a message; returns it, or NULL if it was dropped. */
static struct out *out_push(struct conn *c, uint32_t type, uint32_t req_id,
			    uint32_t tx_id, const void *a, size_t alen,
			    const void *b, size_t blen,
			    const struct conn_req *r)
{
	bool event = r == NULL;
	struct wire_hdr h = {type, req_id, tx_id, (uint32_t)(alen + blen)};
	struct out *o;

	if (c->closed)
		return NULL;
	/*
	 * A guest that does not read its ring is not disconnected (it has no
	 * other way in): its watch events are dropped beyond the output
	 * limit, as cxenstored drops them past the memory quota. Replies are
	 * bounded by the requests it may have outstanding.
	 */
	if (c->ring && event && c->out_bytes >= c->lim.max_output_bytes) {
		if (!c->dropping)
			conn_logf(c, 4,
			      "domain %u does not read its watch events: "
			      "dropping them",
			      c->id.domid);
		c->dropping = true;
		return NULL;
	}
	c->dropping = false;
	o = malloc(sizeof(*o) + WIRE_HDR_SIZE + alen + blen);
	if (!o) {
		conn_close(c, "out of memory for output");
		return NULL;
	}
	o->next = NULL;
	o->len = WIRE_HDR_SIZE + alen + blen;
	o->event = event;
	o->indexed = false;
	o->req_end = r ? r->end : 0;
	o->req_seq = r ? r->seq : 0;
	wire_hdr_encode(&h, o->data);
	if (alen)
		memcpy(o->data + WIRE_HDR_SIZE, a, alen);
	if (blen)
		memcpy(o->data + WIRE_HDR_SIZE + alen, b, blen);
	assert(conn_queues_ok(c));
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
		conn_schedule(c);
	return o;
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
		conn_logf(c, 4, "error %d has no xenstore name: sent as EINVAL",
		      -neg_errno);
	conn_reply_type(c, r, WIRE_ERROR, name, strlen(name) + 1);
}

struct event_key {
	const uint8_t *payload;
	size_t len;
};

static bool event_eq(const struct hashset_node *n, const void *key)
{
	const struct out *o = (const struct out *)((const char *)n -
						   offsetof(struct out, idx));
	const struct event_key *k = key;

	return o->len == WIRE_HDR_SIZE + k->len &&
	       memcmp(o->data + WIRE_HDR_SIZE, k->payload, k->len) == 0;
}

/*
 * Index o under hash. Out of memory (the set's first buckets), o stays
 * out of the index: at worst one duplicate of it is queued later.
 */
static void index_event(struct conn *c, struct out *o, uint64_t hash)
{
	if (hashset_insert(&c->events, &o->idx, hash) == 0)
		o->indexed = true;
}

void conn_out_index_event(struct conn *c, struct out *o)
{
	const uint8_t *p = o->data + WIRE_HDR_SIZE;
	size_t n = o->len - WIRE_HDR_SIZE;

	if (o->event && o->len > WIRE_HDR_SIZE && p[0] != '@' && !o->indexed)
		index_event(c, o, hashset_hash(c->pool->hash_key, p, n));
}

void conn_event(struct conn *c, const char *path, const char *token)
{
	size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
	uint8_t payload[WIRE_PAYLOAD_MAX];
	struct event_key k = {payload, pl + tl};
	uint64_t hash = 0;
	struct out *o;

	if (c->closed || pl + tl > WIRE_PAYLOAD_MAX)
		return;
	memcpy(payload, path, pl);
	memcpy(payload + pl, token, tl);
	/* cxenstored's send_event(): an event identical to one still queued
	 * unsent is dropped, "@" events excepted */
	if (path[0] != '@') {
		hash = hashset_hash(c->pool->hash_key, payload, k.len);
		if (hashset_find(&c->events, hash, event_eq, &k))
			return; /* "dropping duplicate watch" */
	}
	o = out_push(c, WIRE_WATCH_EVENT, 0, 0, payload, k.len, NULL, 0, NULL);
	if (o && path[0] != '@')
		index_event(c, o, hash);
}

void conn_out_pop(struct conn *c)
{
	struct out *o = c->out_head;

	c->out_head = o->next;
	if (!c->out_head)
		c->out_tail = NULL;
	c->out_bytes -= o->len;
	if (o->indexed)
		hashset_remove(&c->events, &o->idx);
	free(o);
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
			conn_out_pop(c);
		}
	}
	return true;
}

/* ---- Input ------------------------------------------------------------ */

static void in_push(struct conn *c, struct conn_req *r)
{
	assert(conn_queues_ok(c));
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
bool conn_parse(struct conn *c, const uint8_t *p, size_t n, bool replayed)
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
				conn_logf(c, 4,
				      "client tried to feed us %u bytes: closing",
				      h.len);
				return false;
			}
			c->partial = malloc(sizeof(*c->partial) + h.len + 1);
			if (!c->partial) {
				conn_logf(c, 3, "out of memory for a request");
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

bool conn_may_read(struct conn *c)
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
	if (conn_may_read(c))
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
	if (!conn_parse(c, buf, (size_t)n, false)) {
		conn_close(c, "malformed request");
		return;
	}
	conn_schedule(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	if (status < 0) {
		conn_close(c, NULL);
		return;
	}
	if ((events & UV_READABLE) && conn_may_read(c))
		do_read(c);
	if ((events & UV_WRITABLE) && !c->closed)
		conn_schedule(c);
}

/* ---- Processing ------------------------------------------------------- */

void conn_process(struct conn *c)
{
	if (c->busy)
		return;
	assert(conn_queues_ok(c));
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
	assert(conn_queues_ok(c));
}

static void conn_free(struct conn *c)
{
	c->all_prev->all_next = c->all_next;
	c->all_next->all_prev = c->all_prev;
	c->pool->n_conns--;
	hashset_close(&c->events);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	conn_free(h->data);
}

void conn_free_queues(struct conn *c)
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
	hashset_close(&c->events); /* its nodes went with the queue */
}

/* Drop the transport; free the memory once no request is in the log. */
void conn_teardown(struct conn *c)
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
		conn_free_queues(c);
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

static void work(struct conn *c)
{
	if (c->ring) {
		conn_ring_work(c);
		return;
	}
	if (c->closed) {
		conn_teardown(c);
		return;
	}
	conn_process(c);
	if (!c->closed && c->out_head && !flush(c))
		conn_close(c, "write error");
	if (c->closed) {
		conn_teardown(c);
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
	conn_schedule(c);
}

struct conn *conn_alloc(struct conn_pool *p, const struct conn_identity *id,
			const struct conn_limits *limits,
			const struct conn_handler *h)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->pool = p;
	c->serial = ++p->last_serial;
	c->id = *id;
	c->lim = *limits;
	c->h = *h;
	return c;
}

void conn_link(struct conn_pool *p, struct conn *c)
{
	c->all_next = &p->all;
	c->all_prev = p->all.all_prev;
	p->all.all_prev->all_next = c;
	p->all.all_prev = c;
	p->n_conns++;
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	if (why) {
		conn_logf(c, 6, "connection %llu closed: %s",
		      (unsigned long long)c->serial, why);
	}
	conn_schedule(c);
}

int conn_socket_new(struct conn_pool *p, int fd,
		    const struct conn_identity *id,
		    const struct conn_limits *limits,
		    const struct conn_handler *h, struct conn **out)
{
	struct conn *c = conn_alloc(p, id, limits, h);
	int rc;

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->in_seq = 1;
	rc = uv_poll_init(p->loop, &c->poll, fd);
	if (rc) {
		free(c);
		return rc;
	}
	conn_link(p, c);
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
