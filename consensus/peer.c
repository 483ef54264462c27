/*
 * consensus/peer.c: authenticated frames between members over libuv TCP.
 */
#include "consensus/peer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/le.h"
#include "wire/siphash.h"

#define HDR_LEN PEER_FRAME_HDR
#define MAX_QUEUED (8u << 20) /* bytes queued for one unreachable member */
/*
 * Reconnection backoff. The cap stays well below the failover budget: a
 * member that was down for a while may be the next leader, and requests
 * forwarded to it wait for this connection.
 */
#define RETRY_MIN_MS 25
#define RETRY_MAX_MS 200

struct frame {
	struct frame *next;
	size_t len;
	uint8_t data[];
};

enum dest_state { D_IDLE, D_CONNECTING, D_UP, D_CLOSING };

struct dest {
	struct dest *next;
	struct peer *p;
	uint64_t id;
	char *address;
	enum dest_state state;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t retry;
	unsigned backoff_ms;
	bool retry_armed;
	struct frame *head, *tail; /* queued */
	size_t queued;
	struct frame *inflight; /* being written */
	uv_write_t wreq;
	bool writing;
};

struct inconn {
	struct inconn *next, *prev;
	struct peer *p;
	uv_tcp_t tcp;
	uint8_t *buf;
	size_t len, cap;
	bool closing;
};

struct seen {
	uint64_t id, counter;
};

struct peer {
	uv_loop_t *loop;
	uint64_t self;
	uint8_t key[16];
	bool keyed;
	struct peer_handler h;
	uv_tcp_t listener;
	struct dest *dests;
	struct inconn ins; /* list head */
	struct seen *seen;
	size_t nseen;
	uint64_t counter;
	bool closing;
	unsigned open_handles;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void logf_(struct peer *p, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct peer *p, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!p->h.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->h.log(p->h.data, level, msg);
}

static int parse_address(const char *address, struct sockaddr_storage *sa)
{
	char host[128];
	const char *colon = strrchr(address, ':');
	size_t hl;
	int port;

	if (!colon || (size_t)(colon - address) >= sizeof(host))
		return -EINVAL;
	hl = (size_t)(colon - address);
	memcpy(host, address, hl);
	host[hl] = '\0';
	port = atoi(colon + 1);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)sa);
	}
	return uv_ip4_addr(host, port, (struct sockaddr_in *)sa);
}

/* The MAC of a frame: SipHash-128 over (sender, counter, body); zero
 * without a key. */
static void mac_of(const uint8_t *key, const uint8_t *sender_counter,
		   const void *body, size_t len, uint8_t out[16])
{
	struct siphash_state s;

	if (!key) {
		memset(out, 0, 16);
		return;
	}
	siphash128_init(&s, key);
	siphash128_update(&s, sender_counter, 16);
	siphash128_update(&s, body, len);
	siphash128_final(&s, out);
}

void peer_frame_put(const uint8_t *key, uint64_t from, uint64_t counter,
		    const void *body, size_t len, uint8_t *out)
{
	put_le(out, HDR_LEN - 4 + len, 4);
	put_le(out + 4, from, 8);
	put_le(out + 12, counter, 8);
	mac_of(key, out + 4, body, len, out + 20);
	if (len)
		memcpy(out + HDR_LEN, body, len);
}

static bool mac_equal(const uint8_t *a, const uint8_t *b)
{
	uint8_t diff = 0;
	int i;

	for (i = 0; i < 16; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

int peer_frame_parse(const uint8_t *key, const uint8_t *buf, size_t n,
		     struct peer_frame *f)
{
	uint64_t rest;
	uint8_t mac[16];

	if (n < 4)
		return 0;
	rest = get_le(buf, 4);
	if (rest < HDR_LEN - 4 || rest - (HDR_LEN - 4) > PEER_MAX_FRAME)
		return -EBADMSG;
	if (n - 4 < rest)
		return 0;
	f->from = get_le(buf + 4, 8);
	f->counter = get_le(buf + 12, 8);
	f->body = buf + HDR_LEN;
	f->len = rest - (HDR_LEN - 4);
	f->size = 4 + rest;
	mac_of(key, buf + 4, f->body, f->len, mac);
	if (key && !mac_equal(mac, buf + 20))
		return -EACCES;
	return 1;
}

/*
 * Every open handle (listener, incoming connections, each destination's
 * retry timer and live TCP handle) holds the peer; the last one to close
 * after peer_close() frees it all.
 */
static void release(struct peer *p)
{
	struct dest *d;

	if (--p->open_handles > 0 || !p->closing)
		return;
	while ((d = p->dests)) {
		p->dests = d->next;
		free(d->address);
		free(d);
	}
	free(p->seen);
	if (p->close_cb)
		p->close_cb(p->close_arg);
	free(p);
}

static void listener_closed(uv_handle_t *h)
{
	release(h->data);
}

/* ---- Outgoing ---------------------------------------------------------- */

static void dest_connect(struct dest *d);
static void dest_flush(struct dest *d);

static void free_frames(struct frame *f)
{
	while (f) {
		struct frame *n = f->next;

		free(f);
		f = n;
	}
}

static void retry_fired(uv_timer_t *t)
{
	struct dest *d = t->data;

	d->retry_armed = false;
	if (!d->p->closing && d->state == D_IDLE)
		dest_connect(d);
}

static void dest_tcp_closed(uv_handle_t *h)
{
	struct dest *d = h->data;
	struct peer *p = d->p;

	d->state = D_IDLE;
	/* frames being written when the link broke are lost: the caller
	 * resends what matters (forwarded writes are retried) */
	free_frames(d->inflight);
	d->inflight = NULL;
	d->writing = false;
	if (!p->closing && !d->retry_armed) {
		d->retry_armed = true;
		uv_timer_start(&d->retry, retry_fired, d->backoff_ms, 0);
		d->backoff_ms = d->backoff_ms * 2 > RETRY_MAX_MS
					? RETRY_MAX_MS
					: d->backoff_ms * 2;
	}
	release(p);
}

static void dest_timer_closed(uv_handle_t *h)
{
	struct dest *d = h->data;

	release(d->p);
}

static void dest_down(struct dest *d, const char *why, int status)
{
	if (d->state == D_CLOSING || d->state == D_IDLE)
		return;
	if (d->state == D_UP)
		logf_(d->p, 6, "peer link to member %llu (%s) down: %s%s%s",
		      (unsigned long long)d->id, d->address, why,
		      status ? ": " : "", status ? uv_strerror(status) : "");
	d->state = D_CLOSING;
	uv_close((uv_handle_t *)&d->tcp, dest_tcp_closed);
}

/*
 * Outgoing links carry frames one way, but are read all the same: the
 * peer's end of file (it stopped, or died and its kernel closed the
 * socket) takes the link down at once. Unread, a dead link is noticed
 * only when a write fails, and the frame written into it before that
 * (a forwarded request) is lost until its sender's resend timeout.
 */
static void dest_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char scratch[64]; /* nothing is expected: discarded */

	(void)h;
	(void)hint;
	*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void dest_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	if (n < 0)
		dest_down(s->data, "read", (int)n);
}

static void connected(uv_connect_t *req, int status)
{
	struct dest *d = req->data;
	int rc;

	if (status) {
		dest_down(d, "connect", status);
		return;
	}
	d->state = D_UP;
	rc = uv_read_start((uv_stream_t *)&d->tcp, dest_alloc, dest_read);
	if (rc) {
		dest_down(d, "read", rc);
		return;
	}
	d->backoff_ms = RETRY_MIN_MS;
	logf_(d->p, 6, "peer link to member %llu (%s) up",
	      (unsigned long long)d->id, d->address);
	dest_flush(d);
}

static void dest_connect(struct dest *d)
{
	struct sockaddr_storage sa;
	int rc;

	if (parse_address(d->address, &sa)) {
		logf_(d->p, 3, "member %llu has a bad peer address %s",
		      (unsigned long long)d->id, d->address);
		return;
	}
	uv_tcp_init(d->p->loop, &d->tcp);
	d->p->open_handles++;
	d->tcp.data = d;
	uv_tcp_nodelay(&d->tcp, 1);
	d->state = D_CONNECTING;
	d->creq.data = d;
	rc = uv_tcp_connect(&d->creq, &d->tcp, (struct sockaddr *)&sa,
			    connected);
	if (rc)
		dest_down(d, "connect", rc);
}

static void written(uv_write_t *w, int status)
{
	struct dest *d = w->data;

	free_frames(d->inflight);
	d->inflight = NULL;
	d->writing = false;
	if (status) {
		dest_down(d, "write", status);
		return;
	}
	dest_flush(d);
}

static void dest_flush(struct dest *d)
{
	uv_buf_t bufs[64];
	struct frame *f;
	unsigned n = 0;
	int rc;

	if (d->state != D_UP || d->writing || !d->head)
		return;
	/* take up to 64 queued frames as one write */
	d->inflight = d->head;
	for (f = d->head; f && n < 64; f = f->next) {
		bufs[n++] = uv_buf_init((char *)f->data, (unsigned)f->len);
		d->queued -= f->len;
		if (n == 64 || !f->next) {
			d->head = f->next;
			f->next = NULL;
			break;
		}
	}
	if (!d->head)
		d->tail = NULL;
	d->writing = true;
	d->wreq.data = d;
	rc = uv_write(&d->wreq, (uv_stream_t *)&d->tcp, bufs, n, written);
	if (rc) {
		free_frames(d->inflight);
		d->inflight = NULL;
		d->writing = false;
		dest_down(d, "write", rc);
	}
}

static struct dest *dest_find(struct peer *p, uint64_t id)
{
	struct dest *d;

	for (d = p->dests; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

int peer_set_address(struct peer *p, uint64_t id, const char *address)
{
	struct dest *d = dest_find(p, id);
	struct sockaddr_storage sa;
	char *copy;

	if (parse_address(address, &sa))
		return -EINVAL;
	if (d && strcmp(d->address, address) == 0)
		return 0;
	copy = strdup(address);
	if (!copy)
		return -ENOMEM;
	if (d) {
		free(d->address);
		d->address = copy;
		dest_down(d, "address changed", 0);
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(copy);
		return -ENOMEM;
	}
	d->p = p;
	d->id = id;
	d->address = copy;
	d->state = D_IDLE;
	d->backoff_ms = RETRY_MIN_MS;
	uv_timer_init(p->loop, &d->retry);
	d->retry.data = d;
	p->open_handles++;
	d->next = p->dests;
	p->dests = d;
	return 0;
}

int peer_send(struct peer *p, uint64_t to, const void *body, size_t len)
{
	struct dest *d = dest_find(p, to);
	struct frame *f;
	uint64_t now_us;

	if (!d)
		return -ENOENT;
	if (p->closing)
		return -ESHUTDOWN;
	if (len > PEER_MAX_FRAME)
		return -E2BIG;
	if (d->queued + len > MAX_QUEUED)
		return -ENOBUFS;
	f = malloc(sizeof(*f) + HDR_LEN + len);
	if (!f)
		return -ENOMEM;
	/* counters start from the clock so they grow across restarts */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		now_us = (uint64_t)ts.tv_sec * 1000000 +
			 (uint64_t)ts.tv_nsec / 1000;
	}
	p->counter = p->counter + 1 > now_us ? p->counter + 1 : now_us;
	f->next = NULL;
	f->len = HDR_LEN + len;
	peer_frame_put(p->keyed ? p->key : NULL, p->self, p->counter, body,
		       len, f->data);
	if (d->tail)
		d->tail->next = f;
	else
		d->head = f;
	d->tail = f;
	d->queued += f->len;
	if (d->state == D_IDLE && !d->retry_armed)
		dest_connect(d);
	else
		dest_flush(d);
	return 0;
}

bool peer_connected(struct peer *p, uint64_t to)
{
	struct dest *d = dest_find(p, to);

	return d && d->state == D_UP;
}

/* ---- Incoming ---------------------------------------------------------- */

static struct seen *seen_of(struct peer *p, uint64_t id)
{
	struct seen *v;
	size_t i;

	for (i = 0; i < p->nseen; i++)
		if (p->seen[i].id == id)
			return &p->seen[i];
	v = realloc(p->seen, (p->nseen + 1) * sizeof(*v));
	if (!v)
		return NULL;
	p->seen = v;
	v[p->nseen].id = id;
	v[p->nseen].counter = 0;
	return &v[p->nseen++];
}

static void in_closed(uv_handle_t *h)
{
	struct inconn *c = h->data;
	struct peer *p = c->p;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c->buf);
	free(c);
	release(p);
}

static void in_close(struct inconn *c, const char *why)
{
	if (c->closing)
		return;
	if (why)
		logf_(c->p, 4, "peer connection dropped: %s", why);
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, in_closed);
}

/* Deliver every complete frame in c->buf. */
static void in_frames(struct inconn *c)
{
	struct peer *p = c->p;
	struct peer_frame f;
	size_t off = 0;
	int rc;

	while (!c->closing) {
		struct seen *s;

		rc = peer_frame_parse(p->keyed ? p->key : NULL, c->buf + off,
				      c->len - off, &f);
		if (rc == 0)
			break;
		if (rc < 0) {
			in_close(c, rc == -EBADMSG
					    ? "bad frame length"
					    : "frame not authenticated by the "
					      "cluster key");
			return;
		}
		s = seen_of(p, f.from);
		if (!s) {
			in_close(c, "out of memory");
			return;
		}
		off += f.size;
		if (p->keyed && f.counter <= s->counter) {
			/* a replay, or a frame of a link that was replaced */
			logf_(p, 6, "stale peer frame from member %llu dropped",
			      (unsigned long long)f.from);
			continue;
		}
		s->counter = f.counter;
		p->h.recv(p->h.data, f.from, f.body, f.len);
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct inconn *c = h->data;

	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		uint8_t *b = realloc(c->buf, cap);

		if (!b) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->buf = b;
		c->cap = cap;
	}
	*buf = uv_buf_init((char *)c->buf + c->len,
			   (unsigned)(c->cap - c->len));
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct inconn *c = s->data;

	if (n < 0) {
		in_close(c, n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	c->len += (size_t)n;
	in_frames(c);
	/* keep the buffer bounded by one frame */
	if (!c->closing && c->len > 4 + HDR_LEN + PEER_MAX_FRAME)
		in_close(c, "frame too large");
}

static void accepted(uv_stream_t *server, int status)
{
	struct peer *p = server->data;
	struct inconn *c;

	if (status < 0 || p->closing)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->p = p;
	uv_tcp_init(p->loop, &c->tcp);
	c->tcp.data = c;
	p->open_handles++;
	c->next = p->ins.next;
	c->prev = &p->ins;
	p->ins.next->prev = c;
	p->ins.next = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, in_alloc, in_read)) {
		in_close(c, "accept failed");
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
}

int peer_open(uv_loop_t *loop, uint64_t self, const char *listen_address,
	      const uint8_t *key, const struct peer_handler *h,
	      struct peer **out)
{
	struct sockaddr_storage sa;
	struct peer *p;
	int rc;

	if (parse_address(listen_address, &sa))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->self = self;
	p->h = *h;
	if (key) {
		memcpy(p->key, key, 16);
		p->keyed = true;
	}
	p->ins.next = p->ins.prev = &p->ins;
	uv_tcp_init(loop, &p->listener);
	p->listener.data = p;
	p->open_handles = 1;
	rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&sa, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&p->listener, 64, accepted);
	if (rc) {
		logf_(p, 3, "cannot listen for peers on %s: %s",
		      listen_address, uv_strerror(rc));
		p->closing = true;
		uv_close((uv_handle_t *)&p->listener, listener_closed);
		return rc == UV_EADDRINUSE ? -EADDRINUSE : -EIO;
	}
	*out = p;
	return 0;
}

void peer_close(struct peer *p, void (*cb)(void *arg), void *arg)
{
	struct dest *d, *next;
	struct inconn *c;

	p->closing = true;
	p->close_cb = cb;
	p->close_arg = arg;
	for (c = p->ins.next; c != &p->ins; c = c->next)
		in_close(c, NULL);
	for (d = p->dests; d; d = next) {
		next = d->next;
		if (d->state == D_UP || d->state == D_CONNECTING)
			dest_down(d, "closing", 0);
		uv_close((uv_handle_t *)&d->retry, dest_timer_closed);
		free_frames(d->head);
		d->head = d->tail = NULL;
	}
	uv_close((uv_handle_t *)&p->listener, listener_closed);
}
