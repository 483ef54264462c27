/*
 * consensus/repl_tls.c: libraft's transport over TLS (consensus/
 * repl_tls.h): TCP connections authenticated and encrypted by
 * consensus/tls.c, a hello inside them, and a socketpair per connection
 * whose one end libraft reads and writes as a plain stream.
 */
#include "consensus/repl_tls.h"
#include "consensus/quiet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/le.h"

#define HELLO_TIMEOUT_MS 5000
#define ADDRESS_MAX 255
#define HELLO_MAX (8 + 2 + ADDRESS_MAX)
#define INNER_HIGH_WATER (4u << 20) /* bytes to libraft not yet taken */
#define INNER_LOW_WATER (1u << 20)

struct link;

struct xport {
	struct raft_uv_transport outer;
	uv_loop_t *loop;
	struct tls_creds *creds;
	raft_id self;
	char address[ADDRESS_MAX + 1];
	uv_tcp_t listener;
	bool listening;
	raft_uv_accept_cb accept_cb;
	struct link *links; /* every link, a list */
	unsigned n_links;
	bool closing;
	raft_uv_transport_close_cb close_cb;
	bool listener_open;
	tls_log_fn log;
	void *log_data;
	struct quiet quiet; /* refused connections, logged */
};

struct link {
	struct link *next, *prev;
	struct xport *x;
	bool server;
	raft_id id; /* expected (client), or the certificate's (server) */
	char peer[64];
	char source[64]; /* the peer's IP, for the per-source cap */
	struct raft_uv_connect *req; /* client: until its cb is called */
	raft_uv_connect_cb cb;
	uv_tcp_t *tcp; /* before TLS takes it over */
	uv_connect_t connect;
	struct tls_conn *tls;
	uv_pipe_t inner; /* our end of the socketpair: plaintext */
	bool inner_open, inner_paused, tls_paused;
	size_t to_inner; /* bytes written to inner, not yet done */
	uv_timer_t timer; /* the hello's deadline */
	uint8_t hello[HELLO_MAX];
	size_t hello_got;
	unsigned refs;
	bool closing;
};

static void say(struct xport *x, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct xport *x, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!x->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->log(x->log_data, level, msg);
}

static void tls_log(void *data, int level, const char *msg)
{
	struct link *l = data;

	if (l->x->log)
		l->x->log(l->x->log_data, level, msg);
}

static void maybe_closed(struct xport *x)
{
	if (x->closing && !x->links && !x->listener_open && x->close_cb) {
		raft_uv_transport_close_cb cb = x->close_cb;

		x->close_cb = NULL;
		cb(&x->outer);
	}
}

static void unref(struct link *l)
{
	struct xport *x = l->x;

	if (--l->refs)
		return;
	if (l->prev)
		l->prev->next = l->next;
	else
		x->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	x->n_links--;
	free(l);
	maybe_closed(x);
}

static void handle_unref(uv_handle_t *h)
{
	unref(h->data);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

/* Over, for why (a static string, logged by whoever knows more). */
static void link_close(struct link *l, int status)
{
	if (l->closing)
		return;
	l->closing = true;
	if (l->req) {
		struct raft_uv_connect *req = l->req;

		l->req = NULL;
		l->cb(req, NULL, status);
	}
	if (l->tcp) { /* still connecting: its callback drops its ref */
		uv_close((uv_handle_t *)l->tcp, free_handle);
		l->tcp = NULL;
	}
	if (l->tls)
		tls_conn_close(l->tls); /* tls_closed() drops its ref */
	if (l->inner_open) {
		l->inner_open = false;
		uv_close((uv_handle_t *)&l->inner, handle_unref);
	}
	uv_close((uv_handle_t *)&l->timer, handle_unref);
}

static struct link *link_new(struct xport *x, bool server)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->x = x;
	l->server = server;
	l->next = x->links;
	if (x->links)
		x->links->prev = l;
	x->links = l;
	x->n_links++;
	uv_timer_init(x->loop, &l->timer);
	l->timer.data = l;
	l->refs = 1; /* the timer */
	return l;
}

/* ---- Relaying ------------------------------------------------------------ */

struct pwrite {
	uv_write_t req;
	struct link *l;
	size_t len;
	char data[];
};

static void inner_written(uv_write_t *w, int status)
{
	struct pwrite *p = (struct pwrite *)w;
	struct link *l = p->l;

	l->to_inner -= p->len;
	free(p);
	if (status < 0) {
		link_close(l, RAFT_NOCONNECTION);
	} else if (l->tls_paused && l->to_inner < INNER_LOW_WATER &&
		   l->tls && !l->closing) {
		l->tls_paused = false;
		tls_conn_pause(l->tls, false);
	}
	unref(l);
}

/* Plaintext from the peer: to libraft's end. */
static void to_inner(struct link *l, const void *buf, size_t len)
{
	struct pwrite *p;
	uv_buf_t b;

	if (!len || l->closing)
		return;
	p = malloc(sizeof(*p) + len);
	if (!p) {
		link_close(l, RAFT_NOMEM);
		return;
	}
	memcpy(p->data, buf, len);
	p->l = l;
	p->len = len;
	b = uv_buf_init(p->data, (unsigned)len);
	if (uv_write(&p->req, (uv_stream_t *)&l->inner, &b, 1,
		     inner_written)) {
		free(p);
		link_close(l, RAFT_NOCONNECTION);
		return;
	}
	l->refs++;
	l->to_inner += len;
	if (l->to_inner > INNER_HIGH_WATER && !l->tls_paused) {
		l->tls_paused = true;
		tls_conn_pause(l->tls, true);
	}
}

static void inner_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[65536]; /* one loop thread: used at once */

	(void)h;
	(void)hint;
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

/* libraft wrote to its end: to the peer. */
static void inner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct link *l = s->data;

	if (n < 0) {
		link_close(l, RAFT_NOCONNECTION); /* libraft closed its end */
		return;
	}
	if (n == 0 || l->closing)
		return;
	if (tls_conn_write(l->tls, buf->base, (size_t)n)) {
		link_close(l, RAFT_NOCONNECTION);
		return;
	}
	if (tls_conn_queued(l->tls) > TLS_HIGH_WATER) {
		l->inner_paused = true;
		uv_read_stop((uv_stream_t *)&l->inner);
	}
}

static void tls_drained(void *data, struct tls_conn *c)
{
	struct link *l = data;

	if (l->inner_paused && l->inner_open && !l->closing) {
		l->inner_paused = false;
		uv_read_start((uv_stream_t *)&l->inner, inner_alloc,
			      inner_read);
	}
}

/*
 * The socketpair: our end relays, libraft gets the other (allocated with
 * raft_malloc: libraft frees it when it closes it). NULL on failure.
 */
static void raft_free_handle(uv_handle_t *h)
{
	raft_free(h);
}

static uv_stream_t *open_pair(struct link *l)
{
	uv_pipe_t *theirs = raft_malloc(sizeof(*theirs));
	int fds[2];

	if (!theirs)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       fds)) {
		raft_free(theirs);
		return NULL;
	}
	uv_pipe_init(l->x->loop, &l->inner, 0);
	l->inner.data = l;
	l->refs++; /* inner, until its close callback */
	l->inner_open = true;
	uv_pipe_init(l->x->loop, theirs, 0);
	if (uv_pipe_open(&l->inner, fds[0])) {
		close(fds[0]);
		close(fds[1]);
		uv_close((uv_handle_t *)theirs, raft_free_handle);
		return NULL; /* link_close() closes inner */
	}
	if (uv_pipe_open(theirs, fds[1])) {
		close(fds[1]);
		uv_close((uv_handle_t *)theirs, raft_free_handle);
		return NULL;
	}
	uv_read_start((uv_stream_t *)&l->inner, inner_alloc, inner_read);
	return (uv_stream_t *)theirs;
}

/* ---- TLS callbacks --------------------------------------------------------- */

static void hello_timeout(uv_timer_t *t)
{
	struct link *l = t->data;

	say(l->x, 4, "Raft connection from %s: refused: no hello in %d ms",
	    l->peer, HELLO_TIMEOUT_MS);
	link_close(l, RAFT_NOCONNECTION);
}

static void tls_ready(void *data, struct tls_conn *c, uint64_t peer_id)
{
	struct link *l = data;
	struct xport *x = l->x;
	uint8_t hello[HELLO_MAX];
	size_t alen = strlen(x->address);
	uv_stream_t *theirs;

	if (l->server) {
		l->id = peer_id; /* proved by its certificate */
		uv_timer_start(&l->timer, hello_timeout, HELLO_TIMEOUT_MS, 0);
		return;
	}
	/* say who we are, inside TLS; then libraft has the stream */
	put_le(hello, x->self, 8);
	put_le(hello + 8, alen, 2);
	memcpy(hello + 10, x->address, alen);
	if (tls_conn_write(c, hello, 10 + alen)) {
		link_close(l, RAFT_NOCONNECTION);
		return;
	}
	theirs = open_pair(l);
	if (!theirs) {
		link_close(l, RAFT_NOMEM);
		return;
	}
	{
		struct raft_uv_connect *req = l->req;

		l->req = NULL;
		l->cb(req, theirs, 0);
	}
}

/* Server: the hello (id, address) from a member proved by its cert. */
static void got_hello(struct link *l, const uint8_t **p, size_t *n)
{
	struct xport *x = l->x;
	size_t want = 10, take, alen;
	char address[ADDRESS_MAX + 1];
	uv_stream_t *theirs;
	uint64_t claimed;

	if (l->hello_got >= 10)
		want = 10 + get_le(l->hello + 8, 2);
	while (*n && l->hello_got < want) {
		take = want - l->hello_got;
		if (take > *n)
			take = *n;
		memcpy(l->hello + l->hello_got, *p, take);
		l->hello_got += take;
		*p += take;
		*n -= take;
		if (l->hello_got == 10) {
			alen = get_le(l->hello + 8, 2);
			if (alen == 0 || alen > ADDRESS_MAX) {
				say(x, 4, "Raft connection from %s: refused: "
					  "a hello with an address of %zu "
					  "bytes",
				    l->peer, alen);
				link_close(l, RAFT_NOCONNECTION);
				return;
			}
			want = 10 + alen;
		}
	}
	if (l->hello_got < want)
		return;
	uv_timer_stop(&l->timer);
	claimed = get_le(l->hello, 8);
	alen = want - 10;
	memcpy(address, l->hello + 10, alen);
	address[alen] = '\0';
	if (!x->creds && claimed) /* insecure: taken on trust */
		l->id = claimed;
	if (!claimed || claimed != l->id || memchr(address, '\0', alen)) {
		say(x, 4,
		    "Raft connection from %s: refused: its certificate is "
		    "member %" PRIu64 "'s, it claims %" PRIu64,
		    l->peer, (uint64_t)l->id, claimed);
		link_close(l, RAFT_NOCONNECTION);
		return;
	}
	theirs = open_pair(l);
	if (!theirs) {
		link_close(l, RAFT_NOMEM);
		return;
	}
	if (x->closing) {
		uv_close((uv_handle_t *)theirs, raft_free_handle);
		link_close(l, RAFT_CANCELED);
		return;
	}
	x->accept_cb(&x->outer, l->id, address, theirs);
}

static void tls_recv(void *data, struct tls_conn *c, const void *buf,
		     size_t len)
{
	struct link *l = data;
	const uint8_t *p = buf;

	if (l->server && !l->inner_open) {
		got_hello(l, &p, &len);
		if (!l->inner_open || l->closing)
			return;
	}
	to_inner(l, p, len);
}

static void tls_closed(void *data, struct tls_conn *c, const char *why)
{
	struct link *l = data;

	l->tls = NULL;
	/* tls.c said why, once per address and reason */
	if (why && l->req)
		say(l->x, 7, "Raft connection to member %" PRIu64 " at %s: %s",
		    (uint64_t)l->id, l->peer, why);
	link_close(l, RAFT_NOCONNECTION);
	unref(l);
}

static const struct tls_conn_ops tls_ops = {
	.ready = tls_ready,
	.recv = tls_recv,
	.closed = tls_closed,
	.drained = tls_drained,
	.log = tls_log,
};

static int start_tls(struct link *l, uv_tcp_t *tcp)
{
	struct tls_conn_ops ops = tls_ops;
	int rc;

	ops.data = l;
	rc = tls_conn_start(l->x->loop, l->x->creds, tcp, l->server,
			    l->server ? 0 : l->id, l->peer, &ops, &l->tls);
	if (rc == 0)
		l->refs++;
	return rc;
}

/* ---- Accepting --------------------------------------------------------------- */

static unsigned from_source(struct xport *x, const char *source)
{
	struct link *l;
	unsigned n = 0;

	for (l = x->links; l; l = l->next)
		if (l->server && !strcmp(l->source, source))
			n++;
	return n;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct xport *x = server->data;
	char key[80], more[96];
	uv_tcp_t *tcp;
	struct link *l;

	if (status < 0 || x->closing)
		return;
	tcp = malloc(sizeof(*tcp));
	if (!tcp)
		return;
	uv_tcp_init(x->loop, tcp);
	if (uv_accept(server, (uv_stream_t *)tcp)) {
		uv_close((uv_handle_t *)tcp, free_handle);
		return;
	}
	l = x->n_links < REPL_TLS_MAX_LINKS ? link_new(x, true) : NULL;
	if (!l) {
		if (quiet_allow(&x->quiet, uv_now(x->loop), "|all", more,
				sizeof(more)))
			say(x, 4, "Raft connection refused: %u connections "
				  "already%s", x->n_links, more);
		uv_close((uv_handle_t *)tcp, free_handle);
		return;
	}
	tls_peer_name(tcp, l->peer, sizeof(l->peer), l->source, sizeof(l->source));
	if (from_source(x, l->source) > REPL_TLS_MAX_PER_SOURCE) {
		snprintf(key, sizeof(key), "%s|cap", l->source);
		if (quiet_allow(&x->quiet, uv_now(x->loop), key, more,
				sizeof(more)))
			say(x, 4, "Raft connection from %s refused: over %d "
				  "from %s%s", l->peer, REPL_TLS_MAX_PER_SOURCE,
			    l->source, more);
		uv_close((uv_handle_t *)tcp, free_handle);
		link_close(l, RAFT_NOCONNECTION);
		return;
	}
	if (start_tls(l, tcp)) /* tcp is closed then */
		link_close(l, RAFT_NOMEM);
}

/* ---- Connecting -------------------------------------------------------------- */

static void connected(uv_connect_t *req, int status)
{
	struct link *l = req->data;
	uv_tcp_t *tcp = l->tcp;

	if (l->closing || !tcp) {
		unref(l); /* the connect's; link_close() closed tcp */
		return;
	}
	l->tcp = NULL;
	if (status < 0) {
		uv_close((uv_handle_t *)tcp, free_handle);
		link_close(l, RAFT_NOCONNECTION);
	} else if (start_tls(l, tcp)) {
		link_close(l, RAFT_NOMEM);
	}
	unref(l);
}

/* "a.b.c.d:port" or "[v6]:port". */
static int parse_address(const char *address, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(address, ':');
	size_t hl;
	int port;

	if (!colon || colon == address)
		return -EINVAL;
	hl = (size_t)(colon - address);
	if (address[0] == '[' && hl >= 2 && address[hl - 1] == ']') {
		address++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, address, hl);
	host[hl] = '\0';
	port = atoi(colon + 1);
	if (port < 0 || port > 65535) /* 0: any, to listen (tests) */
		return -EINVAL;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

/* ---- The transport interface ------------------------------------------------ */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct xport *x = t->impl;

	if (strlen(address) > ADDRESS_MAX) {
		snprintf(t->errmsg, sizeof(t->errmsg), "address too long");
		return RAFT_INVALID;
	}
	if (x->creds && id != tls_creds_self(x->creds)) {
		snprintf(t->errmsg, sizeof(t->errmsg),
			 "this member's certificate is member %" PRIu64
			 "'s, not %llu's",
			 tls_creds_self(x->creds), (unsigned long long)id);
		return RAFT_INVALID;
	}
	x->self = id;
	snprintf(x->address, sizeof(x->address), "%s", address);
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct xport *x = t->impl;
	struct sockaddr_storage ss;
	int rv;

	if (parse_address(x->address, &ss)) {
		snprintf(t->errmsg, sizeof(t->errmsg), "bad address %.200s",
			 x->address);
		return RAFT_INVALID;
	}
	x->accept_cb = cb;
	uv_tcp_init(x->loop, &x->listener);
	x->listener.data = x;
	x->listener_open = true;
	rv = uv_tcp_bind(&x->listener, (struct sockaddr *)&ss, 0);
	if (!rv)
		rv = uv_listen((uv_stream_t *)&x->listener, 128, on_connection);
	if (rv) {
		snprintf(t->errmsg, sizeof(t->errmsg), "listen on %.200s: %s",
			 x->address, uv_strerror(rv));
		return RAFT_IOERR;
	}
	x->listening = true;
	return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		     raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct xport *x = t->impl;
	struct sockaddr_storage ss;
	struct link *l;

	if (x->closing)
		return RAFT_CANCELED;
	if (parse_address(address, &ss)) {
		snprintf(t->errmsg, sizeof(t->errmsg), "bad address %.200s",
			 address);
		return RAFT_NOCONNECTION;
	}
	l = link_new(x, false);
	if (!l)
		return RAFT_NOMEM;
	l->id = id;
	snprintf(l->peer, sizeof(l->peer), "%s", address);
	l->tcp = malloc(sizeof(*l->tcp));
	if (!l->tcp) {
		link_close(l, 0); /* no request yet: no callback */
		return RAFT_NOMEM;
	}
	uv_tcp_init(x->loop, l->tcp);
	l->connect.data = l;
	if (uv_tcp_connect(&l->connect, l->tcp, (struct sockaddr *)&ss,
			   connected)) {
		link_close(l, 0); /* closes tcp */
		return RAFT_NOCONNECTION;
	}
	l->refs++; /* the connect's, until connected() */
	l->req = req;
	l->cb = cb;
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct xport *x = h->data;

	x->listener_open = false;
	maybe_closed(x);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct xport *x = t->impl;
	struct link *l, *next;

	x->closing = true;
	x->close_cb = cb;
	/* link_close() frees nothing at once: close callbacks do */
	for (l = x->links; l; l = next) {
		next = l->next;
		link_close(l, RAFT_CANCELED);
	}
	if (x->listener_open)
		uv_close((uv_handle_t *)&x->listener, listener_closed);
	else
		maybe_closed(x);
}

int repl_tls_init(struct raft_uv_transport **out, uv_loop_t *loop,
		  struct tls_creds *cr, tls_log_fn log, void *log_data)
{
	struct xport *x = calloc(1, sizeof(*x));

	if (!x)
		return RAFT_NOMEM;
	x->loop = loop;
	x->creds = cr;
	x->log = log;
	x->log_data = log_data;
	x->outer.version = 1;
	x->outer.impl = x;
	x->outer.init = t_init;
	x->outer.listen = t_listen;
	x->outer.connect = t_connect;
	x->outer.close = t_close;
	*out = &x->outer;
	return 0;
}

void repl_tls_free(struct raft_uv_transport *t)
{
	free(t->impl);
}
