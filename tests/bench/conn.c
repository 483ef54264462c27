/*
 * tests/bench/conn.c: the connections of a run to the daemon's Unix socket
 * (the xenstore wire protocol, wire/xs_msg.h) or to etcd's v3 JSON gateway
 * (HTTP/1.1): requests queued and flushed, replies parsed and handed to the
 * workload's reply() callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of in[0..n) into out (4 * ((n + 2) / 3) + 1 bytes). */
static size_t b64_encode(const char *in, size_t n, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = b64_chars[v >> 6 & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static void conn_connect(struct bench *b, struct conn *c)
{
	if (b->proto == PROTO_XS) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(b->socket) >= sizeof(sa.sun_path))
			bench_die("socket path too long: %s", b->socket);
		strcpy(sa.sun_path, b->socket);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			bench_die("cannot connect to %s: %s", b->socket, strerror(errno));
	} else {
		const char *addr = b->etcd_addrs[(unsigned)c->id % b->n_etcd];
		struct sockaddr_in sa = {.sin_family = AF_INET};
		char host[64];
		const char *colon = strrchr(addr, ':');
		int one = 1;

		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			bench_die("bad etcd address %s (HOST:PORT)", addr);
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			bench_die("bad etcd address %s (numeric IPv4 only)", addr);
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			bench_die("cannot connect to etcd at %s: %s", addr, strerror(errno));
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

void conns_open(struct bench *b, unsigned nconns, unsigned depth)
{
	unsigned i, j;

	b->nconns = nconns;
	b->ndepth = depth;
	b->cs = calloc(nconns, sizeof(*b->cs));
	if (!b->cs)
		bench_die("out of memory");
	b->epfd = -1;
	if (nconns > 1) {
		b->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (b->epfd < 0)
			bench_die("epoll_create1: %s", strerror(errno));
	}
	for (i = 0; i < nconns; i++) {
		struct conn *c = &b->cs[i];

		c->id = (int)i;
		conn_connect(b, c);
		c->slots = calloc(depth, sizeof(*c->slots));
		c->free_ids = bench_xmalloc(depth * sizeof(*c->free_ids));
		c->fifo = bench_xmalloc(depth * sizeof(*c->fifo));
		for (j = 0; j < depth; j++)
			c->free_ids[j] = depth - 1 - j;
		c->nfree = depth;
		if (nconns == 1) {
			/* one connection: plain blocking I/O, fewest syscalls */
			struct timeval tv = {.tv_sec = 1};

			c->blocking = true;
			setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		} else {
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

			fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
			if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->fd, &ev))
				bench_die("epoll_ctl: %s", strerror(errno));
		}
	}
}

void conns_close(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->nconns; i++) {
		struct conn *c = &b->cs[i];

		close(c->fd);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c->slots);
		free(c->free_ids);
		free(c->fifo);
		trace_free(&c->s.tr);
	}
	free(b->cs);
	b->cs = NULL;
	if (b->epfd >= 0)
		close(b->epfd);
	b->epfd = -1;
}

static struct slot *slot_take(struct bench *b, struct conn *c, uint32_t *id,
			      uint64_t op_ns, uint32_t tag)
{
	struct slot *sl;

	if (!c->nfree)
		bench_die("internal: no free request slot");
	*id = c->free_ids[--c->nfree];
	sl = &c->slots[*id];
	sl->busy = true;
	sl->sent_ns = bench_now_ns();
	sl->op_ns = op_ns ? op_ns : sl->sent_ns;
	sl->tag = tag;
	c->inflight++;
	if (b->proto == PROTO_ETCD)
		c->fifo[(c->fifo_head + c->fifo_n++) % b->ndepth] = *id;
	return sl;
}

/* Queue a xenstore request; op_ns 0 means "the op begins now". */
void conn_xs_send(struct bench *b, struct conn *c, uint32_t type, uint32_t tx,
		  const char *payload, uint32_t len, uint64_t op_ns, uint32_t tag)
{
	struct wire_hdr h = {.type = type, .tx_id = tx, .len = len};
	uint8_t hdr[WIRE_HDR_SIZE];

	if (b->proto != PROTO_XS)
		bench_die("%s: not a request etcd can take", wire_type_name(type));
	slot_take(b, c, &h.req_id, op_ns, tag);
	wire_hdr_encode(&h, hdr);
	buf_put(&c->out, hdr, sizeof(hdr));
	buf_put(&c->out, payload, len);
}

/* A request whose payload is one path (READ, DIRECTORY, MKDIR, RM). */
void conn_xs_send_path(struct bench *b, struct conn *c, uint32_t type,
		       const char *path, uint64_t op_ns, uint32_t tag)
{
	conn_xs_send(b, c, type, 0, path, (uint32_t)strlen(path) + 1, op_ns, tag);
}

static void http_send(struct bench *b, struct conn *c, const char *url,
		      const char *body, uint64_t op_ns, uint32_t tag)
{
	char hdr[256];
	uint32_t id;
	int n;

	slot_take(b, c, &id, op_ns, tag);
	n = snprintf(hdr, sizeof(hdr),
		     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     url, strlen(body));
	buf_put(&c->out, hdr, (size_t)n);
	buf_put(&c->out, body, strlen(body));
}

/* A put: xenstore WRITE or etcd PUT of path = value. */
void conn_emit_write(struct bench *b, struct conn *c, const char *path,
		     const char *val, uint64_t op_ns, uint32_t tag)
{
	if (b->proto == PROTO_XS) {
		char p[BENCH_PATH_MAX + 4200];
		size_t pl = strlen(path), vl = strlen(val);

		memcpy(p, path, pl + 1);
		memcpy(p + pl + 1, val, vl);
		conn_xs_send(b, c, WIRE_WRITE, 0, p, (uint32_t)(pl + 1 + vl), op_ns, tag);
	} else {
		char k[BENCH_PATH_MAX * 2], v[5800], body[sizeof(k) + sizeof(v) + 64];

		b64_encode(path, strlen(path), k);
		b64_encode(val, strlen(val), v);
		snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
		http_send(b, c, "/v3/kv/put", body, op_ns, tag);
	}
}

/* Remove a subtree: xenstore RM, or etcd deleterange of the prefix. */
void conn_emit_rm(struct bench *b, struct conn *c, const char *path, uint32_t tag)
{
	if (b->proto == PROTO_XS) {
		conn_xs_send_path(b, c, WIRE_RM, path, 0, tag);
	} else {
		char k[BENCH_PATH_MAX * 2], e[BENCH_PATH_MAX * 2];
		char end[BENCH_PATH_MAX + 2], body[sizeof(k) + sizeof(e) + 64];
		size_t n = strlen(path);

		/* every key that starts with "path/": [path/, path0) */
		snprintf(end, sizeof(end), "%s0", path);
		snprintf(body, sizeof(body), "%s/", path);
		b64_encode(body, n + 1, k);
		b64_encode(end, n + 1, e);
		snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k, e);
		http_send(b, c, "/v3/kv/deleterange", body, 0, tag);
	}
}

void conn_flush(struct bench *b, struct conn *c)
{
	while (c->out.len > c->out.off) {
		ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && !c->blocking) {
			if (!c->want_out) {
				struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
							 .data.ptr = c};

				c->want_out = true;
				epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			}
			return;
		}
		if (w <= 0)
			bench_die("%s: write: %s", b->what, strerror(errno));
		c->out.off += (size_t)w;
	}
	c->out.off = c->out.len = 0;
	if (c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		c->want_out = false;
		epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void slot_release(struct bench *b, struct conn *c, uint32_t id)
{
	c->slots[id].busy = false;
	c->free_ids[c->nfree++] = id;
	c->inflight--;
}

static void dispatch(struct bench *b, struct conn *c, uint32_t id, uint32_t type,
		     const char *body, uint32_t len)
{
	struct slot sl = c->slots[id];

	slot_release(b, c, id);
	b->reqs++;
	b->w->reply(b, c, &sl, type, body, len);
}

/* Parse every whole xenstore message in c->in. */
static void xs_parse(struct bench *b, struct conn *c)
{
	while (c->in.len - c->in.off >= WIRE_HDR_SIZE) {
		struct wire_hdr h;
		char *body;

		wire_hdr_decode((const uint8_t *)c->in.p + c->in.off, &h);
		if (h.len > WIRE_PAYLOAD_MAX)
			bench_die("%s: reply of %u bytes (protocol error)", b->what, h.len);
		if (c->in.len - c->in.off < WIRE_HDR_SIZE + h.len)
			return;
		body = c->in.p + c->in.off + WIRE_HDR_SIZE;
		c->in.off += WIRE_HDR_SIZE + h.len;
		if (h.type == WIRE_WATCH_EVENT)
			continue; /* boot's watches: events are not answers */
		if (h.req_id >= b->ndepth || !c->slots[h.req_id].busy)
			bench_die("%s: reply to request id %u, never sent (protocol error)",
				  b->what, h.req_id);
		dispatch(b, c, h.req_id, h.type, body, h.len);
	}
}

/* Parse every whole HTTP/1.1 response in c->in (Content-Length or chunked). */
static void http_parse(struct bench *b, struct conn *c)
{
	for (;;) {
		char *p = c->in.p + c->in.off;
		size_t avail = c->in.len - c->in.off, hlen, blen = 0, total;
		char *end = memmem(p, avail, "\r\n\r\n", 4), *line;
		bool chunked = false;
		int status;
		uint32_t id;

		if (!end)
			return;
		hlen = (size_t)(end - p) + 4;
		if (sscanf(p, "HTTP/1.%*d %d", &status) != 1)
			bench_die("%s: bad HTTP response from etcd", b->what);
		for (line = memchr(p, '\n', hlen); line && line < end;
		     line = memchr(line + 1, '\n', (size_t)(end - line))) {
			if (!strncasecmp(line + 1, "Content-Length:", 15))
				blen = strtoul(line + 16, NULL, 10);
			else if (!strncasecmp(line + 1, "Transfer-Encoding: chunked", 26))
				chunked = true;
		}
		if (chunked) {
			size_t o = hlen;

			for (;;) {
				char *eol = memmem(p + o, avail - o, "\r\n", 2);
				size_t n;

				if (!eol)
					return;
				n = strtoul(p + o, NULL, 16);
				o = (size_t)(eol - p) + 2 + n + 2;
				if (o > avail)
					return;
				if (!n)
					break;
			}
			total = o;
		} else {
			total = hlen + blen;
			if (total > avail)
				return;
		}
		c->in.off += total;
		if (!c->fifo_n)
			bench_die("%s: HTTP response to no request", b->what);
		id = c->fifo[c->fifo_head];
		c->fifo_head = (c->fifo_head + 1) % b->ndepth;
		c->fifo_n--;
		/* the workloads see an xenstore-like answer */
		dispatch(b, c, id, status == 200 ? WIRE_WRITE : WIRE_ERROR,
			 status == 200 ? "OK" : "EIO", 3);
	}
}

/* Read what is there (blocking connections: wait up to 1 s). */
void conn_read(struct bench *b, struct conn *c)
{
	ssize_t r;

	buf_reserve(&c->in, 65536);
	r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r < 0)
		bench_die("%s: read: %s", b->what, strerror(errno));
	if (r == 0)
		bench_die("%s: the daemon closed the connection", b->what);
	c->in.len += (size_t)r;
	if (b->proto == PROTO_XS)
		xs_parse(b, c);
	else
		http_parse(b, c);
}
