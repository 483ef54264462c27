/*
 * consensus/auth.c: libraft's TCP transport with mutual authentication.
 *
 * libraft's own transport lets anyone who reaches a Raft port speak Raft.
 * This wraps it: after libraft's handshake (which tells the acceptor the
 * connecting member's id), both ends prove they hold the cluster key
 * before the stream is handed to libraft, so nothing but a member can
 * inject a Raft message:
 *
 *   acceptor  -> connector: nonce_a                            16 bytes
 *   connector -> acceptor:  nonce_c, MAC(key, 'c', id_c, nonce_a, nonce_c)
 *   acceptor  -> connector: MAC(key, 'a', id_a, nonce_c, nonce_a)
 *
 * MAC is SipHash-128. A side that sees a wrong MAC, or gets no answer
 * within AUTH_TIMEOUT_MS, drops the connection; libraft reconnects later.
 *
 *   acceptor:  SEND_NONCE+READ_PROOF --ok--> SEND_PROOF --written--> done
 *   connector: READ_NONCE --> SEND_PROOF+READ_PROOF --ok--> done
 */
#include "consensus/auth.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wire/siphash.h"

#define AUTH_TIMEOUT_MS 3000

enum phase {
	READ_NONCE,   /* connector: waiting for nonce_a (16) */
	READ_CLAIM,   /* acceptor: waiting for nonce_c + MAC (32) */
	READ_ANSWER,  /* connector: waiting for the acceptor's MAC (16) */
	WRITE_ANSWER, /* acceptor: its MAC is being written */
};

struct auth_conn {
	struct auth_conn *next, *prev;
	struct auth_transport *a;
	unsigned refs; /* the timer, libraft's connect and our write while
			  they run */
	uv_stream_t *stream; /* raft_malloc()ed by libraft's transport */
	bool acceptor, finished;
	enum phase phase;
	raft_id peer_id;
	char *peer_address;
	struct raft_uv_connect inner_req; /* connector */
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	uint8_t mine[16], theirs[16];
	uint8_t in[32];
	size_t nin, want;
	/* at most two writes in flight (the acceptor's nonce, then its
	 * answer): each has its own request and buffer */
	uint8_t out[2][32];
	uv_write_t w[2];
	unsigned nwrites;
	uv_timer_t timer;
};

struct auth_transport {
	struct raft_uv_transport outer; /* what libraft's uv backend uses */
	struct raft_uv_transport inner; /* libraft's TCP transport */
	uv_loop_t *loop;
	uint8_t key[16];
	raft_id self;
	raft_uv_accept_cb accept_cb;
	struct auth_conn conns; /* list head: authenticating now */
	bool closing, inner_closed;
	unsigned open_handles; /* ours being closed */
	unsigned connecting;   /* libraft's connects not called back yet */
	raft_uv_transport_close_cb close_cb;
	auth_log_fn log;
	void *log_data;
	struct {
		raft_id id;
		uint64_t last_ms;
		unsigned quiet;
	} refusals[16]; /* log a repeated refusal once a minute */
};

static void say(struct auth_transport *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct auth_transport *a, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!a->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->log(a->log_data, level, msg);
}

static void mac(const uint8_t key[16], char role, raft_id id,
		const uint8_t n1[16], const uint8_t n2[16], uint8_t out[16])
{
	uint8_t buf[1 + 8 + 32];
	int i;

	buf[0] = (uint8_t)role;
	for (i = 0; i < 8; i++)
		buf[1 + i] = (uint8_t)(id >> (8 * i));
	memcpy(buf + 9, n1, 16);
	memcpy(buf + 25, n2, 16);
	siphash128(key, buf, sizeof(buf), out);
}

static bool equal16(const uint8_t *x, const uint8_t *y)
{
	uint8_t d = 0;
	int i;

	for (i = 0; i < 16; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static void make_nonce(uint8_t out[16])
{
	if (getrandom(out, 16, 0) != 16) {
		uint64_t t = uv_hrtime();

		memset(out, 0, 16);
		memcpy(out, &t, sizeof(t));
	}
}

/* ---- Closing ------------------------------------------------------------- */

static void maybe_closed(struct auth_transport *a)
{
	raft_uv_transport_close_cb cb;

	if (!a->closing || !a->inner_closed || a->open_handles ||
	    a->connecting || !a->close_cb)
		return;
	cb = a->close_cb;
	a->close_cb = NULL;
	raft_uv_tcp_close(&a->inner);
	cb(&a->outer);
}

static void stream_closed(uv_handle_t *h)
{
	struct auth_transport *a = h->data;

	raft_free(h);
	a->open_handles--;
	maybe_closed(a);
}

static void unref(struct auth_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->peer_address);
	free(c);
}

static void timer_closed(uv_handle_t *h)
{
	struct auth_conn *c = h->data;
	struct auth_transport *a = c->a;

	unref(c);
	a->open_handles--;
	maybe_closed(a);
}

static void drop_stream(struct auth_transport *a, uv_stream_t *s)
{
	s->data = a;
	a->open_handles++;
	uv_close((uv_handle_t *)s, stream_closed);
}

/* libraft retries every second: say it once a minute per member. */
static bool should_say(struct auth_transport *a, raft_id id)
{
	uint64_t now = uv_now(a->loop);
	size_t i, free_slot = 0;

	for (i = 0; i < 16; i++) {
		if (a->refusals[i].id == id) {
			if (now - a->refusals[i].last_ms < 60000) {
				a->refusals[i].quiet++;
				return false;
			}
			if (a->refusals[i].quiet)
				say(a, 4, "(%u more refusals of member %llu "
					  "in the last minute)",
				    a->refusals[i].quiet,
				    (unsigned long long)id);
			a->refusals[i].last_ms = now;
			a->refusals[i].quiet = 0;
			return true;
		}
		if (!a->refusals[i].id)
			free_slot = i;
	}
	a->refusals[free_slot].id = id;
	a->refusals[free_slot].last_ms = now;
	a->refusals[free_slot].quiet = 0;
	return true;
}

/* Done with c: hand the stream to libraft (ok) or drop it; forget c. */
static void finish(struct auth_conn *c, bool ok, const char *why)
{
	struct auth_transport *a = c->a;

	if (c->finished)
		return;
	c->finished = true;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	if (c->stream)
		uv_read_stop(c->stream);
	if (ok && !a->closing) {
		if (c->acceptor)
			a->accept_cb(&a->outer, c->peer_id, c->peer_address,
				     c->stream);
		else
			c->cb(c->req, c->stream, 0);
	} else {
		if (why && should_say(a, c->peer_id))
			say(a, 4, "raft connection %s member %llu refused: %s",
			    c->acceptor ? "from" : "to",
			    (unsigned long long)c->peer_id, why);
		if (c->stream)
			drop_stream(a, c->stream);
		if (!c->acceptor)
			c->cb(c->req, NULL,
			      a->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	}
	a->open_handles++;
	uv_close((uv_handle_t *)&c->timer, timer_closed);
}

/* ---- The exchange -------------------------------------------------------- */

static void timed_out(uv_timer_t *t)
{
	finish(t->data, false, "no authentication in time");
}

static void unref(struct auth_conn *c);

static void written(uv_write_t *w, int status)
{
	struct auth_conn *c = w->data;

	if (!c->finished) {
		if (status)
			finish(c, false, uv_strerror(status));
		else if (c->phase == WRITE_ANSWER)
			finish(c, true, NULL); /* the acceptor's last word */
	}
	unref(c);
}

static void send_bytes(struct auth_conn *c, const uint8_t *p, size_t n)
{
	unsigned i = c->nwrites++;
	uv_buf_t b;

	if (i >= 2) {
		finish(c, false, "protocol error");
		return;
	}
	memcpy(c->out[i], p, n);
	b = uv_buf_init((char *)c->out[i], (unsigned)n);
	c->w[i].data = c;
	if (uv_write(&c->w[i], c->stream, &b, 1, written))
		finish(c, false, "write failed");
	else
		c->refs++; /* until written() */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct auth_conn *c = h->data;

	/* never read past this step: libraft's own bytes follow it */
	*buf = uv_buf_init((char *)c->in + c->nin,
			   (unsigned)(c->want - c->nin));
}

static void expect(struct auth_conn *c, enum phase p, size_t want)
{
	c->phase = p;
	c->nin = 0;
	c->want = want;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct auth_conn *c = s->data;
	struct auth_transport *a = c->a;
	uint8_t m[16], out[32];

	if (c->finished || n == 0)
		return;
	if (n < 0) {
		finish(c, false,
		       n == UV_EOF ? "closed by the peer" : uv_strerror((int)n));
		return;
	}
	c->nin += (size_t)n;
	if (c->nin < c->want)
		return;
	switch (c->phase) {
	case READ_NONCE: /* connector: prove we hold the key */
		memcpy(c->theirs, c->in, 16);
		memcpy(out, c->mine, 16);
		mac(a->key, 'c', a->self, c->theirs, c->mine, out + 16);
		expect(c, READ_ANSWER, 16);
		send_bytes(c, out, 32);
		break;
	case READ_CLAIM: /* acceptor: check, then prove it too */
		memcpy(c->theirs, c->in, 16);
		mac(a->key, 'c', c->peer_id, c->mine, c->theirs, m);
		if (!equal16(m, c->in + 16)) {
			finish(c, false, "it does not hold the cluster key");
			return;
		}
		uv_read_stop(c->stream);
		mac(a->key, 'a', a->self, c->theirs, c->mine, out);
		c->phase = WRITE_ANSWER;
		send_bytes(c, out, 16);
		break;
	case READ_ANSWER: /* connector: check the acceptor */
		mac(a->key, 'a', c->peer_id, c->mine, c->theirs, m);
		if (!equal16(m, c->in)) {
			finish(c, false, "it does not hold the cluster key");
			return;
		}
		finish(c, true, NULL);
		break;
	default:
		break;
	}
}

static struct auth_conn *conn_new(struct auth_transport *a, bool acceptor,
				  raft_id peer)
{
	struct auth_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->a = a;
	c->refs = 1;
	c->acceptor = acceptor;
	c->peer_id = peer;
	make_nonce(c->mine);
	uv_timer_init(a->loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, timed_out, AUTH_TIMEOUT_MS, 0);
	c->next = a->conns.next;
	c->prev = &a->conns;
	a->conns.next->prev = c;
	a->conns.next = c;
	return c;
}

/* ---- Acceptor ----------------------------------------------------------- */

/*
 * libraft leaves Nagle's algorithm on: a small AppendEntries (or its
 * result) written while an earlier one is unacknowledged waits for the
 * peer's delayed ACK, 40 ms on Linux, and every write behind it waits too.
 */
static void no_delay(uv_stream_t *stream)
{
	if (stream->type == UV_TCP)
		uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void inner_accepted(struct raft_uv_transport *inner, raft_id id,
			   const char *address, uv_stream_t *stream)
{
	struct auth_transport *a = inner->data;
	struct auth_conn *c;
	size_t len;

	if (a->closing) {
		drop_stream(a, stream);
		return;
	}
	c = conn_new(a, true, id);
	if (!c) {
		drop_stream(a, stream);
		return;
	}
	c->stream = stream;
	stream->data = c;
	no_delay(stream);
	/*
	 * address is the handshake's address buffer as it came off the wire,
	 * before anyone is authenticated: as long as the other end said, and
	 * not NUL-terminated if it chose so (libraft's uv_tcp_listen.c), so
	 * strdup() read past its end (found by tests/fuzz/fuzz_handshake.c).
	 * libraft does not pass its length, but allocated it with
	 * raft_malloc(), which is malloc() (this program never calls
	 * raft_heap_set()), so the block's size bounds it. A member pads
	 * its address with NULs (uvTcpEncodeHandshake): one without a NUL
	 * is not a member.
	 */
	len = malloc_usable_size((void *)address);
	if (strnlen(address, len) == len) {
		finish(c, false, "malformed handshake");
		return;
	}
	c->peer_address = strdup(address);
	if (!c->peer_address) {
		finish(c, false, "out of memory");
		return;
	}
	expect(c, READ_CLAIM, 32);
	if (uv_read_start(stream, alloc_cb, read_cb)) {
		finish(c, false, "cannot read");
		return;
	}
	send_bytes(c, c->mine, 16);
}

/* ---- Connector ------------------------------------------------------- */

static void inner_connected(struct raft_uv_connect *ir, uv_stream_t *stream,
			    int status)
{
	struct auth_conn *c = ir->data;
	struct auth_transport *a = c->a;

	a->connecting--;
	if (c->finished) {
		/* timed out or cancelled while libraft's connect ran */
		if (stream)
			drop_stream(a, stream);
	} else if (status) {
		/* libraft's own failure: report it as is */
		c->finished = true;
		c->prev->next = c->next;
		c->next->prev = c->prev;
		c->cb(c->req, NULL, status);
		a->open_handles++;
		uv_close((uv_handle_t *)&c->timer, timer_closed);
	} else {
		c->stream = stream;
		stream->data = c;
		no_delay(stream);
		expect(c, READ_NONCE, 16);
		if (uv_read_start(stream, alloc_cb, read_cb))
			finish(c, false, "cannot read");
	}
	unref(c);
	maybe_closed(a);
}

/* ---- The transport interface ---------------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct auth_transport *a = t->impl;
	int rv;

	a->self = id;
	rv = a->inner.init(&a->inner, id, address);
	if (rv)
		memcpy(t->errmsg, a->inner.errmsg, sizeof(t->errmsg));
	return rv;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct auth_transport *a = t->impl;
	int rv;

	a->accept_cb = cb;
	rv = a->inner.listen(&a->inner, inner_accepted);
	if (rv)
		memcpy(t->errmsg, a->inner.errmsg, sizeof(t->errmsg));
	return rv;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		     raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct auth_transport *a = t->impl;
	struct auth_conn *c = conn_new(a, false, id);
	int rv;

	if (!c)
		return RAFT_NOMEM;
	c->req = req;
	c->cb = cb;
	c->inner_req.data = c;
	rv = a->inner.connect(&a->inner, &c->inner_req, id, address,
			      inner_connected);
	if (rv) {
		memcpy(t->errmsg, a->inner.errmsg, sizeof(t->errmsg));
		c->finished = true;
		c->prev->next = c->next;
		c->next->prev = c->prev;
		a->open_handles++;
		uv_close((uv_handle_t *)&c->timer, timer_closed);
		return rv;
	}
	c->refs++;
	a->connecting++;
	return 0;
}

static void inner_closed(struct raft_uv_transport *inner)
{
	struct auth_transport *a = inner->data;

	a->inner_closed = true;
	maybe_closed(a);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct auth_transport *a = t->impl;

	a->closing = true;
	a->close_cb = cb;
	/* connectors still in libraft's connect are told now (CANCELED);
	 * their inner callback comes later and only frees them */
	while (a->conns.next != &a->conns)
		finish(a->conns.next, false, NULL);
	a->inner.close(&a->inner, inner_closed);
}

int auth_transport_init(struct raft_uv_transport **out, uv_loop_t *loop,
			const uint8_t key[16], auth_log_fn log, void *log_data)
{
	struct auth_transport *a = calloc(1, sizeof(*a));
	int rv;

	if (!a)
		return RAFT_NOMEM;
	a->loop = loop;
	memcpy(a->key, key, 16);
	a->log = log;
	a->log_data = log_data;
	a->conns.next = a->conns.prev = &a->conns;
	a->inner.version = 1;
	a->inner.data = a;
	rv = raft_uv_tcp_init(&a->inner, loop);
	if (rv) {
		free(a);
		return rv;
	}
	a->outer.version = 1;
	a->outer.impl = a;
	a->outer.init = t_init;
	a->outer.listen = t_listen;
	a->outer.connect = t_connect;
	a->outer.close = t_close;
	*out = &a->outer;
	return 0;
}

void auth_transport_free(struct raft_uv_transport *t)
{
	free(t->impl);
}
