/*
 * consensus/peer.c: frames between members over TLS connections
 * (consensus/peer.h, consensus/tls.h): one outgoing connection per
 * destination, made on demand and re-made with back-off, and whatever
 * connections other members make to us.
 */
#include "consensus/peer.h"
#include "consensus/quiet.h"
#include "consensus/tls.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/le.h"

#define HDR_LEN PEER_FRAME_HDR
#define MAX_QUEUED (8u << 20) /* bytes queued for one member */
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

enum dest_state { D_IDLE, D_CONNECTING, D_HANDSHAKE, D_UP, D_CLOSING };

struct dest {
	struct dest *next;
	struct peer *p;
	uint64_t id;
	char *address;
	enum dest_state state;
	uv_tcp_t *tcp; /* while connecting; then TLS owns it */
	uv_connect_t creq;
	struct tls_conn *tls;
	uv_timer_t retry;
	unsigned backoff_ms;
	bool retry_armed;
	struct frame *head, *tail; /* queued until the link is up */
	size_t queued;
};

struct inconn {
	struct inconn *next, *prev;
	struct peer *p;
	struct tls_conn *tls;
	uint64_t member; /* its certificate's (0: insecure, any) */
	char source[64];
	uint8_t *buf;
	size_t len, cap;
	bool closing;
};

struct peer {
	uv_loop_t *loop;
	struct quiet quiet; /* refused connections, logged */
	uint64_t self;
	struct tls_creds *creds; /* NULL: insecure */
	struct peer_handler h;
	uv_tcp_t listener;
	struct dest *dests;
	struct inconn ins; /* list head */
	unsigned n_ins;
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

static void dest_log(void *data, int level, const char *msg)
{
	struct peer *p = ((struct dest *)data)->p;

	if (p->h.log)
		p->h.log(p->h.data, level, msg);
}

static void in_log(void *data, int level, const char *msg)
{
	struct peer *p = ((struct inconn *)data)->p;

	if (p->h.log)
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

void peer_frame_put(uint64_t from, const void *body, size_t len,
		    uint8_t *out)
{
	put_le(out, HDR_LEN - 4 + len, 4);
	put_le(out + 4, from, 8);
	if (len)
		memcpy(out + HDR_LEN, body, len);
}

int peer_frame_parse(const uint8_t *buf, size_t n, struct peer_frame *f)
{
	uint64_t rest;

	if (n < 4)
		return 0;
	rest = get_le(buf, 4);
	if (rest < HDR_LEN - 4 || rest - (HDR_LEN - 4) > PEER_MAX_FRAME)
		return -EBADMSG;
	if (n - 4 < rest)
		return 0;
	f->from = get_le(buf + 4, 8);
	f->body = buf + HDR_LEN;
	f->len = rest - (HDR_LEN - 4);
	f->size = 4 + rest;
	return 1;
}

/*
 * Every open thing (the listener, each incoming connection, each
 * destination's retry timer and its connection) holds the peer; the last
 * one to close after peer_close() frees it all.
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
	if (p->close_cb)
		p->close_cb(p->close_arg);
	free(p);
}

static void listener_closed(uv_handle_t *h)
{
	release(h->data);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

/* ---- Outgoing ---------------------------------------------------------- */

static void dest_connect(struct dest *d);

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

/* The link is gone (whatever state it was in): retry later. */
static void dest_gone(struct dest *d)
{
	struct peer *p = d->p;

	d->state = D_IDLE;
	d->tls = NULL;
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

static void dest_down(struct dest *d, const char *why)
{
	if (d->state == D_CLOSING || d->state == D_IDLE)
		return;
	if (d->state == D_UP && why)
		logf_(d->p, 6, "peer link to member %" PRIu64 " (%s) down: %s",
		      d->id, d->address, why);
	if (d->state == D_CONNECTING) {
		d->state = D_CLOSING;
		uv_close((uv_handle_t *)d->tcp, free_handle);
		d->tcp = NULL; /* connected() sees the cancel, then gone */
		return;
	}
	d->state = D_CLOSING;
	tls_conn_close(d->tls); /* dest_closed() follows */
}

/* Queued frames go into the (now open) TLS connection. */
static void dest_flush(struct dest *d)
{
	struct frame *f;

	while (d->state == D_UP && (f = d->head)) {
		d->head = f->next;
		if (!d->head)
			d->tail = NULL;
		d->queued -= f->len;
		if (tls_conn_write(d->tls, f->data, f->len)) {
			free(f);
			dest_down(d, "write failed");
			return;
		}
		free(f);
	}
}

static void dest_ready(void *data, struct tls_conn *c, uint64_t peer_id)
{
	struct dest *d = data;

	d->state = D_UP;
	d->backoff_ms = RETRY_MIN_MS;
	logf_(d->p, 6, "peer link to member %" PRIu64 " (%s) up", d->id,
	      d->address);
	dest_flush(d);
}

/*
 * Outgoing links carry frames one way, but are read all the same: the
 * peer's end of file (it stopped, or died and its kernel closed the
 * socket) takes the link down at once; nothing is expected from it.
 */
static void dest_recv(void *data, struct tls_conn *c, const void *buf,
		      size_t len)
{
}

static void dest_closed(void *data, struct tls_conn *c, const char *why)
{
	struct dest *d = data;

	if (why && d->state == D_UP)
		logf_(d->p, 6, "peer link to member %" PRIu64 " (%s) down: %s",
		      d->id, d->address, why);
	else if (why && d->state == D_HANDSHAKE) /* tls.c said why */
		logf_(d->p, 7, "peer link to member %" PRIu64 " (%s): %s",
		      d->id, d->address, why);
	dest_gone(d);
}

static void connected(uv_connect_t *req, int status)
{
	struct dest *d = req->data;
	struct peer *p = d->p;
	struct tls_conn_ops ops = {
		.data = d,
		.ready = dest_ready,
		.recv = dest_recv,
		.closed = dest_closed,
		.log = dest_log,
	};
	uv_tcp_t *tcp = d->tcp;

	if (!tcp) { /* taken down while connecting: closed already */
		dest_gone(d);
		return;
	}
	d->tcp = NULL;
	if (status) {
		uv_close((uv_handle_t *)tcp, free_handle);
		dest_gone(d);
		return;
	}
	d->state = D_HANDSHAKE;
	if (tls_conn_start(p->loop, p->creds, tcp, false, d->id, d->address,
			   &ops, &d->tls))
		dest_gone(d); /* tcp closed by tls_conn_start */
}

static void dest_connect(struct dest *d)
{
	struct sockaddr_storage sa;
	int rc;

	if (parse_address(d->address, &sa)) {
		logf_(d->p, 3, "member %" PRIu64 " has a bad peer address %s",
		      d->id, d->address);
		return;
	}
	d->tcp = malloc(sizeof(*d->tcp));
	if (!d->tcp)
		return;
	uv_tcp_init(d->p->loop, d->tcp);
	d->p->open_handles++; /* the link, until dest_gone() */
	d->state = D_CONNECTING;
	d->creq.data = d;
	rc = uv_tcp_connect(&d->creq, d->tcp, (struct sockaddr *)&sa,
			    connected);
	if (rc) {
		uv_close((uv_handle_t *)d->tcp, free_handle);
		d->tcp = NULL;
		dest_gone(d);
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
		dest_down(d, "address changed");
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
	size_t queued;

	if (!d)
		return -ENOENT;
	if (p->closing)
		return -ESHUTDOWN;
	if (len > PEER_MAX_FRAME)
		return -E2BIG;
	queued = d->queued + (d->state == D_UP ? tls_conn_queued(d->tls) : 0);
	if (queued + len > MAX_QUEUED)
		return -ENOBUFS;
	f = malloc(sizeof(*f) + HDR_LEN + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = HDR_LEN + len;
	peer_frame_put(p->self, body, len, f->data);
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

static void in_close(struct inconn *c, const char *why)
{
	if (c->closing)
		return;
	if (why)
		logf_(c->p, 4, "peer connection from %s dropped: %s",
		      tls_conn_peer(c->tls), why);
	c->closing = true;
	tls_conn_close(c->tls);
}

static void in_ready(void *data, struct tls_conn *t, uint64_t peer_id)
{
	struct inconn *c = data;

	c->member = peer_id;
}

/* Deliver every complete frame in c->buf. */
static void in_frames(struct inconn *c)
{
	struct peer *p = c->p;
	struct peer_frame f;
	size_t off = 0;
	int rc;

	while (!c->closing) {
		rc = peer_frame_parse(c->buf + off, c->len - off, &f);
		if (rc == 0)
			break;
		if (rc < 0) {
			in_close(c, "bad frame length");
			return;
		}
		if (p->creds && f.from != c->member) {
			logf_(p, 4,
			      "peer connection from %s: member %" PRIu64
			      " sends as member %" PRIu64 ": dropped",
			      tls_conn_peer(c->tls), c->member, f.from);
			in_close(c, NULL);
			return;
		}
		off += f.size;
		p->h.recv(p->h.data, f.from, f.body, f.len);
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

static void in_recv(void *data, struct tls_conn *t, const void *buf,
		    size_t len)
{
	struct inconn *c = data;

	if (c->closing)
		return;
	if (c->len + len > 4 + HDR_LEN + PEER_MAX_FRAME) {
		in_close(c, "frame too large");
		return;
	}
	if (c->cap - c->len < len) {
		size_t cap = c->cap ? c->cap : 65536;
		uint8_t *b;

		while (cap - c->len < len)
			cap *= 2;
		b = realloc(c->buf, cap);
		if (!b) {
			in_close(c, "out of memory");
			return;
		}
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	in_frames(c);
}

static void in_closed(void *data, struct tls_conn *t, const char *why)
{
	struct inconn *c = data;
	struct peer *p = c->p;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	p->n_ins--;
	free(c->buf);
	free(c);
	release(p);
}

static unsigned from_source(struct peer *p, const char *source)
{
	struct inconn *c;
	unsigned n = 0;

	for (c = p->ins.next; c != &p->ins; c = c->next)
		if (!strcmp(c->source, source))
			n++;
	return n;
}

static void accepted(uv_stream_t *server, int status)
{
	struct peer *p = server->data;
	struct tls_conn_ops ops = {
		.ready = in_ready,
		.recv = in_recv,
		.closed = in_closed,
		.log = in_log,
	};
	char name[64], key[80], more[96];
	struct inconn *c;
	uv_tcp_t *tcp;

	if (status < 0 || p->closing)
		return;
	tcp = malloc(sizeof(*tcp));
	if (!tcp)
		return;
	uv_tcp_init(p->loop, tcp);
	if (uv_accept(server, (uv_stream_t *)tcp)) {
		uv_close((uv_handle_t *)tcp, free_handle);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		uv_close((uv_handle_t *)tcp, free_handle);
		return;
	}
	c->p = p;
	tls_peer_name(tcp, name, sizeof(name), c->source, sizeof(c->source));
	if (p->n_ins >= PEER_MAX_INCOMING ||
	    from_source(p, c->source) >= PEER_MAX_PER_SOURCE) {
		snprintf(key, sizeof(key), "%s|cap", c->source);
		if (quiet_allow(&p->quiet, uv_now(p->loop), key, more,
				sizeof(more)))
			logf_(p, 4, "peer connection from %s refused: %u "
				    "connections already (%u from %s)%s",
			      name, p->n_ins, from_source(p, c->source),
			      c->source, more);
		uv_close((uv_handle_t *)tcp, free_handle);
		free(c);
		return;
	}
	ops.data = c;
	if (tls_conn_start(p->loop, p->creds, tcp, true, 0, name, &ops,
			   &c->tls)) {
		free(c);
		return;
	}
	c->next = p->ins.next;
	c->prev = &p->ins;
	p->ins.next->prev = c;
	p->ins.next = c;
	p->n_ins++;
	p->open_handles++;
}

int peer_open(uv_loop_t *loop, uint64_t self, const char *listen_address,
	      struct tls_creds *cr, const struct peer_handler *h,
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
	p->creds = cr;
	p->h = *h;
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
	struct inconn *c, *cn;

	p->closing = true;
	p->close_cb = cb;
	p->close_arg = arg;
	for (c = p->ins.next; c != &p->ins; c = cn) {
		cn = c->next;
		in_close(c, NULL);
	}
	for (d = p->dests; d; d = next) {
		next = d->next;
		dest_down(d, NULL);
		uv_close((uv_handle_t *)&d->retry, dest_timer_closed);
		free_frames(d->head);
		d->head = d->tail = NULL;
	}
	uv_close((uv_handle_t *)&p->listener, listener_closed);
}
