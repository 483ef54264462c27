/*
 * tests/bench/xsbench.c: a load generator for xenstore daemons. Speaks the
 * xenstore wire protocol (wire/xs_msg.h) to any daemon's Unix socket (ours,
 * or Xen's through ../shared/reference/refd), or etcd's v3 JSON gateway
 * over HTTP/1.1 for the put workloads, and reports ops/s and latency
 * percentiles per workload. deploy/bench.sh drives it.
 *
 * One thread, one epoll loop: N connections, each with up to D requests in
 * flight. A workload is a pair of callbacks: next() emits the next request
 * of a connection, reply() consumes an answer and says when an op is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire/xs_msg.h"

#define BENCH_MAX_CONNS 1024
#define BENCH_MAX_DEPTH 1024
#define BENCH_GRACE_NS (60ull * 1000000000ull) /* replies after the deadline */
#define BENCH_PATH_MAX 256

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xsbench [options] WORKLOAD...\n"
"\n"
"Load generator for xenstore daemons: runs each WORKLOAD in turn on fresh\n"
"connections and prints ops/s and latency percentiles (p50, p99, p999)\n"
"of each. The socket is privileged (dom0); every workload works under\n"
"--prefix (default /bench), except boot and populate, which write where a\n"
"toolstack would (/local/domain/N, /vm/UUID, /libxl/N). What a workload\n"
"created is removed after it (untimed) unless --keep.\n"
"\n"
"Workloads (an op is one request unless said otherwise):\n"
"  read        READ of --keys existing keys, round robin\n"
"  write-one   WRITE of a new key, all under one parent\n"
"  write-many  WRITE of a new key, spread over --parents parents\n"
"  overwrite   WRITE of an existing key (--keys of them)\n"
"  dir100      DIRECTORY of a node with 100 children\n"
"  txn         read-modify-write transactions: increment one of\n"
"              --counters shared counters (start, read, write, commit;\n"
"              retried on EAGAIN). An op is one committed increment;\n"
"              reports commits/s and the EAGAIN rate, and checks that the\n"
"              counters add up to the commits\n"
"  boot        what libxl writes to create a PV domain with a console,\n"
"              two vbds and two vifs (transactions, permissions, watches,\n"
"              backend/frontend/libxl dirs, hotplug handshake), for\n"
"              --domains domains; an op is one domain (reqs/s also shown).\n"
"              INTRODUCE is left out: there is no real guest\n"
"  populate    --domains domains of --nodes leaves each, written in\n"
"              transactions of 100 leaves (an op is one transaction);\n"
"              kept (for scale tests) unless --cleanup\n"
"  probe       sequential WRITEs of one key for --duration, tolerating\n"
"              errors: reports the longest time without a successful\n"
"              write (max_gap_ms), for failover measurements\n"
"  fsync       4 KiB pwrite + fdatasync at successive offsets of a file\n"
"              in --dir (no daemon): the disk's durable-write floor\n"
"  rtt         ping-pong of a 48-byte message over a Unix socket pair\n"
"              with a child process (no daemon): one loopback round trip\n"
"\n"
"Options:\n"
"  -s, --socket PATH     daemon socket (default $XENSTORED_PATH, else\n"
"                        /var/run/xenstored/socket)\n"
"  -e, --etcd ADDRS      drive etcd instead: comma-separated HOST:PORT of\n"
"                        its client URLs; PUTs via the v3 JSON gateway\n"
"                        (POST /v3/kv/put, keep-alive, pipelined);\n"
"                        write-one, write-many and overwrite only\n"
"  -c, --conns N         connections (default 1)\n"
"  -d, --depth N         requests in flight per connection (default 1;\n"
"                        txn and boot are sequential per connection)\n"
"  -t, --duration SEC    stop starting ops after SEC seconds (default 5;\n"
"                        fractions allowed)\n"
"  -n, --ops N           stop after N ops (default: no limit; fsync 200,\n"
"                        rtt 10000); whichever of -t/-n comes first\n"
"  -k, --keys N          keys of read and overwrite (default 1000)\n"
"  --parents N           parents of write-many (default 100)\n"
"  --counters N          shared counters of txn (default 4)\n"
"  --domains N           domains of boot and populate (default 100)\n"
"  --domid-base N        first domid of boot and populate (default 1)\n"
"  --nodes N             leaves per domain of populate (default 1000)\n"
"  --value-size N        bytes per written value (default 16)\n"
"  --prefix PATH         subtree of the workloads (default /bench)\n"
"  --dir DIR             directory of the fsync workload (default .)\n"
"  --label TEXT          copied into the output (e.g. the daemon's name)\n"
"  --keep                do not remove what a workload created\n"
"  --cleanup             remove populate's tree too\n"
"  --json                one JSON object per workload, one per line\n"
"  -h, --help            this help\n"
"\n"
"JSON fields: workload, label, conns, depth, ops, seconds, ops_per_s,\n"
"p50_us, p99_us, p999_us, max_us, reqs, reqs_per_s, errors, first_error,\n"
"and where they apply commits, eagain, eagain_rate, verified (txn),\n"
"nodes (populate), max_gap_ms (probe).\n"
"\n"
"Exit status: 0 every workload ran (errors are counted, not fatal), 1 a\n"
"workload could not run (connection refused or lost, protocol error,\n"
"daemon silent for 60 s), 2 bad usage.\n");
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("xsbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

/* A byte buffer: data in p[off..len). */
struct buf {
	char *p;
	size_t off, len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + more <= b->cap)
		return;
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return;
	}
	while (b->cap < b->len + more)
		b->cap = b->cap ? 2 * b->cap : 65536;
	b->p = xrealloc(b->p, b->cap);
}

static void buf_put(struct buf *b, const void *d, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

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

/* A decimal number in a reply's payload (not NUL-terminated for READ). */
static long body_num(const char *body, uint32_t len)
{
	char num[32];

	if (len >= sizeof(num))
		len = sizeof(num) - 1;
	memcpy(num, body, len);
	num[len] = '\0';
	return strtol(num, NULL, 10);
}

/* ------------------------------------------------------------------ */
/* Traces: a precomputed list of requests (boot, populate)              */

#define STEP_TX 0x1        /* inside the current transaction */
#define STEP_OK_ENOENT 0x2 /* ENOENT is an expected answer */
#define STEP_PIPE 0x4      /* may go while earlier steps are unanswered */

struct step {
	uint32_t type;
	uint32_t flags;
	uint32_t off, len; /* payload in trace.arena */
};

struct trace {
	struct step *steps;
	unsigned n, cap;
	struct buf arena;
};

static void trace_reset(struct trace *t)
{
	t->n = 0;
	t->arena.off = t->arena.len = 0;
}

static void trace_free(struct trace *t)
{
	free(t->steps);
	buf_free(&t->arena);
	memset(t, 0, sizeof(*t));
}

/* Append a step whose payload is the given NUL-separated strings; the last
 * one is followed by a NUL unless `value_last` (WRITE's value has none). */
static void trace_add(struct trace *t, uint32_t type, uint32_t flags,
		      bool value_last, int nstr, ...)
{
	struct step *s;
	va_list ap;
	int i;

	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		t->steps = xrealloc(t->steps, t->cap * sizeof(*t->steps));
	}
	s = &t->steps[t->n++];
	s->type = type;
	s->flags = flags;
	s->off = (uint32_t)t->arena.len;
	va_start(ap, nstr);
	for (i = 0; i < nstr; i++) {
		const char *str = va_arg(ap, const char *);

		buf_put(&t->arena, str, strlen(str));
		if (i < nstr - 1 || !value_last)
			buf_put(&t->arena, "", 1);
	}
	va_end(ap);
	s->len = (uint32_t)(t->arena.len - s->off);
}

static void tr_write(struct trace *t, uint32_t fl, const char *path, const char *val)
{
	trace_add(t, WIRE_WRITE, fl, true, 2, path, val);
}

/* ------------------------------------------------------------------ */
/* Connections and the engine                                           */

enum proto { PROTO_XS, PROTO_ETCD };

struct slot {
	uint64_t sent_ns;
	uint64_t op_ns; /* when the op this request belongs to began */
	uint32_t tag;   /* the workload's */
	bool busy;
};

/* Per-connection state of the scripted workloads (txn, boot, populate). */
struct script {
	struct trace tr;
	bool active;    /* a unit (op) is under way */
	unsigned step;  /* next step of tr to send */
	unsigned pending;
	unsigned txn_begin;
	uint32_t tx;
	uint64_t op_ns;
	unsigned unit;  /* domain index (boot) or group (populate) */
	int state;      /* txn */
	bool abort;     /* txn: end the transaction with "F" */
	unsigned counter;
	long value;
};

struct conn {
	int fd, id;
	bool blocking;
	struct buf out, in;
	struct slot *slots;
	uint32_t *free_ids;
	unsigned nfree;
	uint32_t *fifo; /* HTTP: slots in send order */
	unsigned fifo_head, fifo_n;
	unsigned inflight;
	bool done;
	bool want_out;
	uint64_t seq;
	uint64_t last_ok_ns; /* probe */
	struct script s;
};

struct bench;

struct workload {
	const char *name;
	bool etcd_ok;
	void (*setup)(struct bench *b);   /* untimed, before */
	void (*cleanup)(struct bench *b); /* untimed, after */
	/* 1 emitted a request, 0 must wait for replies, -1 no more ops */
	int (*next)(struct bench *b, struct conn *c);
	void (*reply)(struct bench *b, struct conn *c, const struct slot *sl,
		      uint32_t type, const char *body, uint32_t len);
};

struct bench {
	/* options */
	const char *socket;
	char **etcd_addrs;
	unsigned n_etcd;
	unsigned conns, depth;
	double duration_s;
	uint64_t ops_opt;
	unsigned keys, parents, counters, domains, domid_base, nodes;
	unsigned value_size;
	const char *prefix, *dir, *label;
	bool keep, cleanup_pop, json;

	/* the current run */
	const struct workload *w;
	enum proto proto;
	struct conn *cs;
	unsigned nconns, ndepth;
	int epfd;
	uint64_t t_start, t_last, deadline;
	uint64_t ops_limit, ops_begun;
	bool stopping, measured;
	uint64_t *lat;
	size_t nlat, caplat;
	uint64_t reqs, errors, commits, eagain;
	char first_error[200];
	uint64_t max_gap_ns;
	int verified; /* -1 not checked, 0 no, 1 yes */
	uint64_t nodes_made;
	unsigned next_unit; /* boot, populate: the next domain or group */
	const char *what; /* setup/cleanup phase's name, for errors */

	/* setup/cleanup requests: a trace replayed pipelined */
	struct trace batch;
	unsigned batch_next;
	bool batch_strict;
	long *ctr_values; /* txn: counters read back */
	char run_tag[32];
};

static void note_error(struct bench *b, const char *what, const char *path,
		       const char *err)
{
	b->errors++;
	if (!b->first_error[0])
		snprintf(b->first_error, sizeof(b->first_error), "%s %s: %.40s",
			 what, path, err);
}

static void op_done(struct bench *b, uint64_t op_ns)
{
	uint64_t t = now_ns();

	if (b->nlat == b->caplat) {
		b->caplat = b->caplat ? 2 * b->caplat : 65536;
		b->lat = xrealloc(b->lat, b->caplat * sizeof(*b->lat));
	}
	b->lat[b->nlat++] = t - op_ns;
	b->t_last = t;
}

/* May an op begin? Counts it if so. */
static bool op_begin(struct bench *b)
{
	if (b->stopping)
		return false;
	if ((b->ops_limit && b->ops_begun >= b->ops_limit) ||
	    now_ns() >= b->deadline) {
		b->stopping = true;
		return false;
	}
	b->ops_begun++;
	return true;
}

static void conn_connect(struct bench *b, struct conn *c)
{
	if (b->proto == PROTO_XS) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(b->socket) >= sizeof(sa.sun_path))
			die("socket path too long: %s", b->socket);
		strcpy(sa.sun_path, b->socket);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("cannot connect to %s: %s", b->socket, strerror(errno));
	} else {
		const char *addr = b->etcd_addrs[(unsigned)c->id % b->n_etcd];
		struct sockaddr_in sa = {.sin_family = AF_INET};
		char host[64];
		const char *colon = strrchr(addr, ':');
		int one = 1;

		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			die("bad etcd address %s (HOST:PORT)", addr);
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			die("bad etcd address %s (numeric IPv4 only)", addr);
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("cannot connect to etcd at %s: %s", addr, strerror(errno));
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

static void conns_open(struct bench *b, unsigned nconns, unsigned depth)
{
	unsigned i, j;

	b->nconns = nconns;
	b->ndepth = depth;
	b->cs = calloc(nconns, sizeof(*b->cs));
	if (!b->cs)
		die("out of memory");
	b->epfd = -1;
	if (nconns > 1) {
		b->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (b->epfd < 0)
			die("epoll_create1: %s", strerror(errno));
	}
	for (i = 0; i < nconns; i++) {
		struct conn *c = &b->cs[i];

		c->id = (int)i;
		conn_connect(b, c);
		c->slots = calloc(depth, sizeof(*c->slots));
		c->free_ids = xmalloc(depth * sizeof(*c->free_ids));
		c->fifo = xmalloc(depth * sizeof(*c->fifo));
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
				die("epoll_ctl: %s", strerror(errno));
		}
	}
}

static void conns_close(struct bench *b)
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
		die("internal: no free request slot");
	*id = c->free_ids[--c->nfree];
	sl = &c->slots[*id];
	sl->busy = true;
	sl->sent_ns = now_ns();
	sl->op_ns = op_ns ? op_ns : sl->sent_ns;
	sl->tag = tag;
	c->inflight++;
	if (b->proto == PROTO_ETCD)
		c->fifo[(c->fifo_head + c->fifo_n++) % b->ndepth] = *id;
	return sl;
}

/* Queue a xenstore request; op_ns 0 means "the op begins now". */
static void xs_send(struct bench *b, struct conn *c, uint32_t type, uint32_t tx,
		    const char *payload, uint32_t len, uint64_t op_ns, uint32_t tag)
{
	struct wire_hdr h = {.type = type, .tx_id = tx, .len = len};
	uint8_t hdr[WIRE_HDR_SIZE];

	if (b->proto != PROTO_XS)
		die("%s: not a request etcd can take", wire_type_name(type));
	slot_take(b, c, &h.req_id, op_ns, tag);
	wire_hdr_encode(&h, hdr);
	buf_put(&c->out, hdr, sizeof(hdr));
	buf_put(&c->out, payload, len);
}

/* A request whose payload is one path (READ, DIRECTORY, MKDIR, RM). */
static void xs_send_path(struct bench *b, struct conn *c, uint32_t type,
			 const char *path, uint64_t op_ns, uint32_t tag)
{
	xs_send(b, c, type, 0, path, (uint32_t)strlen(path) + 1, op_ns, tag);
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
static void emit_write(struct bench *b, struct conn *c, const char *path,
		       const char *val, uint64_t op_ns, uint32_t tag)
{
	if (b->proto == PROTO_XS) {
		char p[BENCH_PATH_MAX + 4200];
		size_t pl = strlen(path), vl = strlen(val);

		memcpy(p, path, pl + 1);
		memcpy(p + pl + 1, val, vl);
		xs_send(b, c, WIRE_WRITE, 0, p, (uint32_t)(pl + 1 + vl), op_ns, tag);
	} else {
		char k[BENCH_PATH_MAX * 2], v[5800], body[sizeof(k) + sizeof(v) + 64];

		b64_encode(path, strlen(path), k);
		b64_encode(val, strlen(val), v);
		snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
		http_send(b, c, "/v3/kv/put", body, op_ns, tag);
	}
}

/* Remove a subtree: xenstore RM, or etcd deleterange of the prefix. */
static void emit_rm(struct bench *b, struct conn *c, const char *path, uint32_t tag)
{
	if (b->proto == PROTO_XS) {
		xs_send_path(b, c, WIRE_RM, path, 0, tag);
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

static void conn_flush(struct bench *b, struct conn *c)
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
			die("%s: write: %s", b->what, strerror(errno));
		c->out.off += (size_t)w;
	}
	c->out.off = c->out.len = 0;
	if (c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		c->want_out = false;
		epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void conn_fill(struct bench *b, struct conn *c)
{
	while (!c->done && c->inflight < b->ndepth) {
		int r = b->w->next(b, c);

		if (r < 0)
			c->done = true;
		if (r <= 0)
			break;
	}
	conn_flush(b, c);
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
			die("%s: reply of %u bytes (protocol error)", b->what, h.len);
		if (c->in.len - c->in.off < WIRE_HDR_SIZE + h.len)
			return;
		body = c->in.p + c->in.off + WIRE_HDR_SIZE;
		c->in.off += WIRE_HDR_SIZE + h.len;
		if (h.type == WIRE_WATCH_EVENT)
			continue; /* boot's watches: events are not answers */
		if (h.req_id >= b->ndepth || !c->slots[h.req_id].busy)
			die("%s: reply to request id %u, never sent (protocol error)",
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
			die("%s: bad HTTP response from etcd", b->what);
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
			die("%s: HTTP response to no request", b->what);
		id = c->fifo[c->fifo_head];
		c->fifo_head = (c->fifo_head + 1) % b->ndepth;
		c->fifo_n--;
		/* the workloads see an xenstore-like answer */
		dispatch(b, c, id, status == 200 ? WIRE_WRITE : WIRE_ERROR,
			 status == 200 ? "OK" : "EIO", 3);
	}
}

/* Read what is there (blocking connections: wait up to 1 s). */
static void conn_read(struct bench *b, struct conn *c)
{
	ssize_t r;

	buf_reserve(&c->in, 65536);
	r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r < 0)
		die("%s: read: %s", b->what, strerror(errno));
	if (r == 0)
		die("%s: the daemon closed the connection", b->what);
	c->in.len += (size_t)r;
	if (b->proto == PROTO_XS)
		xs_parse(b, c);
	else
		http_parse(b, c);
}

static bool all_done(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->nconns; i++)
		if (!b->cs[i].done || b->cs[i].inflight)
			return false;
	return true;
}

/* Run b->w on fresh connections until every connection is done. */
static void engine_run(struct bench *b, unsigned nconns, unsigned depth)
{
	unsigned i;

	conns_open(b, nconns, depth);
	b->ops_begun = 0;
	b->stopping = false;
	b->t_start = b->t_last = now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < nconns; i++)
		conn_fill(b, &b->cs[i]);
	while (!all_done(b)) {
		if (now_ns() > b->deadline + BENCH_GRACE_NS)
			die("%s: no answer for %llu s after the deadline", b->what,
			    (unsigned long long)(BENCH_GRACE_NS / 1000000000ull));
		if (nconns == 1) {
			struct conn *c = &b->cs[0];

			if (c->inflight)
				conn_read(b, c);
			conn_fill(b, c);
		} else {
			struct epoll_event evs[64];
			int n = epoll_wait(b->epfd, evs, 64, 1000), k;

			if (n < 0 && errno != EINTR)
				die("epoll_wait: %s", strerror(errno));
			for (k = 0; k < n; k++) {
				struct conn *c = evs[k].data.ptr;

				if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					conn_read(b, c);
				conn_fill(b, c);
			}
		}
	}
	conns_close(b);
}

/* ------------------------------------------------------------------ */
/* Untimed phases: a list of requests, pipelined on one connection      */

static int batch_next(struct bench *b, struct conn *c)
{
	const struct step *s;

	if (b->batch_next == b->batch.n)
		return -1;
	s = &b->batch.steps[b->batch_next];
	if (b->proto == PROTO_ETCD) {
		/* puts and removals only; directories do not exist there */
		char path[BENCH_PATH_MAX];
		const char *pl = b->batch.arena.p + s->off;

		b->batch_next++;
		snprintf(path, sizeof(path), "%s", pl);
		if (s->type == WIRE_WRITE) {
			size_t n = strlen(pl) + 1;
			char val[4200];

			snprintf(val, sizeof(val), "%.*s", (int)(s->len - n), pl + n);
			emit_write(b, c, path, val, 0, b->batch_next - 1);
		} else if (s->type == WIRE_RM) {
			emit_rm(b, c, path, b->batch_next - 1);
		} /* else MKDIR: etcd has no directories */
		return 1;
	}
	xs_send(b, c, s->type, 0, b->batch.arena.p + s->off, s->len, 0, b->batch_next);
	b->batch_next++;
	return 1;
}

static void batch_reply(struct bench *b, struct conn *c, const struct slot *sl,
			uint32_t type, const char *body, uint32_t len)
{
	const struct step *s = &b->batch.steps[sl->tag];
	const char *path = b->batch.arena.p + s->off;

	if (type == WIRE_ERROR) {
		if (s->flags & STEP_OK_ENOENT && !strcmp(body, "ENOENT"))
			return;
		if (b->batch_strict)
			die("%s: %s %s: %.*s", b->what, wire_type_name(s->type),
			    path, (int)len, body);
		note_error(b, wire_type_name(s->type), path, body);
	}
	if (s->type == WIRE_READ && b->ctr_values)
		b->ctr_values[sl->tag] = body_num(body, len);
}

static const struct workload batch_workload = {
	.name = "setup",
	.etcd_ok = true,
	.next = batch_next,
	.reply = batch_reply,
};

/* Replay b->batch (then empty it); errors are fatal if strict. */
static void batch_run(struct bench *b, const char *what, bool strict)
{
	const struct workload *w = b->w;
	double dur = b->duration_s;
	uint64_t lim = b->ops_limit;

	if (!b->batch.n)
		return;
	b->w = &batch_workload;
	b->what = what;
	b->batch_next = 0;
	b->batch_strict = strict;
	b->duration_s = 1e6;
	b->ops_limit = 0;
	engine_run(b, 1, 32);
	b->w = w;
	b->duration_s = dur;
	b->ops_limit = lim;
	trace_reset(&b->batch);
}

/* ------------------------------------------------------------------ */
/* read, write-one, write-many, overwrite, dir100                       */

static void sub(struct bench *b, char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* out = prefix/workload-tag[/<fmt>] */
static void sub(struct bench *b, char *out, size_t n, const char *fmt, ...)
{
	char rest[BENCH_PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if ((size_t)snprintf(out, n, "%s/%s-%s%s%s", b->prefix, b->w->name,
			     b->run_tag, rest[0] ? "/" : "", rest) >= n)
		die("path too long under %s", b->prefix);
}

static void make_value(struct bench *b, char *v, uint64_t n)
{
	char num[24];
	unsigned len = b->value_size, k = (unsigned)snprintf(num, sizeof(num), "%" PRIu64, n);

	if (k >= len) {
		memcpy(v, num + (k - len), len);
	} else {
		memset(v, 'v', len - k);
		memcpy(v + len - k, num, k);
	}
	v[len] = '\0';
}

static void keys_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX], val[4200];
	unsigned i;

	for (i = 0; i < b->keys; i++) {
		sub(b, path, sizeof(path), "k%u", i);
		make_value(b, val, i);
		tr_write(&b->batch, 0, path, val);
	}
	batch_run(b, "setup", true);
}

static void subtree_cleanup(struct bench *b)
{
	char path[BENCH_PATH_MAX];

	if (b->keep)
		return;
	sub(b, path, sizeof(path), "%s", "");
	trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, path);
	batch_run(b, "cleanup", false);
}

static void simple_reply(struct bench *b, struct conn *c, const struct slot *sl,
			 uint32_t type, const char *body, uint32_t len)
{
	if (type == WIRE_ERROR)
		note_error(b, b->w->name, "", body);
	op_done(b, sl->op_ns);
}

static int read_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX];

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "k%u",
	    (unsigned)((c->seq++ + (uint64_t)c->id * 7919) % b->keys));
	xs_send_path(b, c, WIRE_READ, path, 0, 0);
	return 1;
}

static void write_one_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];

	sub(b, path, sizeof(path), "%s", "");
	trace_add(&b->batch, WIRE_MKDIR, 0, false, 1, path);
	batch_run(b, "setup", true);
}

static int write_one_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "c%d-%" PRIu64, c->id, c->seq);
	make_value(b, val, c->seq++);
	emit_write(b, c, path, val, 0, 0);
	return 1;
}

static void write_many_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < b->parents; i++) {
		sub(b, path, sizeof(path), "p%u", i);
		trace_add(&b->batch, WIRE_MKDIR, 0, false, 1, path);
	}
	batch_run(b, "setup", true);
}

static int write_many_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];
	uint64_t n = c->seq++;

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "p%u/c%d-%" PRIu64,
	    (unsigned)((n + (uint64_t)c->id * 13) % b->parents), c->id, n);
	make_value(b, val, n);
	emit_write(b, c, path, val, 0, 0);
	return 1;
}

static int overwrite_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];
	uint64_t n = c->seq++;

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "k%u", (unsigned)((n + (uint64_t)c->id * 7919) % b->keys));
	make_value(b, val, n + 1000000);
	emit_write(b, c, path, val, 0, 0);
	return 1;
}

static void dir_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < 100; i++) {
		sub(b, path, sizeof(path), "d/child-%03u", i);
		tr_write(&b->batch, 0, path, "x");
	}
	batch_run(b, "setup", true);
}

static int dir_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX];

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "d");
	xs_send_path(b, c, WIRE_DIRECTORY, path, 0, 0);
	return 1;
}

static void dir_reply(struct bench *b, struct conn *c, const struct slot *sl,
		      uint32_t type, const char *body, uint32_t len)
{
	if (type == WIRE_ERROR)
		note_error(b, "DIRECTORY", "", body);
	else if (wire_count_strings(body, len) != 100)
		note_error(b, "DIRECTORY", "", "not 100 children");
	op_done(b, sl->op_ns);
}

/* ------------------------------------------------------------------ */
/* txn: read-modify-write of shared counters, with conflicts            */

enum { TX_START, TX_READ, TX_WRITE, TX_END };

static void txn_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < b->counters; i++) {
		sub(b, path, sizeof(path), "ctr%u", i);
		tr_write(&b->batch, 0, path, "0");
	}
	batch_run(b, "setup", true);
}

static int txn_next(struct bench *b, struct conn *c)
{
	struct script *s = &c->s;
	char p[BENCH_PATH_MAX + 32];
	size_t n;

	if (c->inflight)
		return 0;
	switch (s->state) {
	case TX_START:
		if (!s->active) {
			if (!op_begin(b))
				return -1;
			s->active = true;
			s->op_ns = now_ns();
			s->counter = (unsigned)((c->seq++ * 2654435761u + (unsigned)c->id) %
						b->counters);
		}
		xs_send(b, c, WIRE_TRANSACTION_START, 0, "", 1, s->op_ns, TX_START);
		return 1;
	case TX_READ:
		sub(b, p, sizeof(p), "ctr%u", s->counter);
		xs_send(b, c, WIRE_READ, s->tx, p, (uint32_t)strlen(p) + 1, s->op_ns, TX_READ);
		return 1;
	case TX_WRITE:
		sub(b, p, sizeof(p), "ctr%u", s->counter);
		n = strlen(p) + 1;
		n += (size_t)snprintf(p + n, sizeof(p) - n, "%ld", s->value + 1);
		xs_send(b, c, WIRE_WRITE, s->tx, p, (uint32_t)n, s->op_ns, TX_WRITE);
		return 1;
	default:
		xs_send(b, c, WIRE_TRANSACTION_END, s->tx, s->abort ? "F" : "T", 2,
			s->op_ns, TX_END);
		return 1;
	}
}

static void txn_reply(struct bench *b, struct conn *c, const struct slot *sl,
		      uint32_t type, const char *body, uint32_t len)
{
	struct script *s = &c->s;

	if (type == WIRE_ERROR && !(sl->tag == TX_END && !strcmp(body, "EAGAIN"))) {
		static const char *const what[] = {"TRANSACTION_START", "READ",
						   "WRITE", "TRANSACTION_END"};

		note_error(b, what[sl->tag], "counter", body);
		/* give the op up, aborting the transaction if one is open */
		s->abort = sl->tag == TX_READ || sl->tag == TX_WRITE;
		s->state = s->abort ? TX_END : TX_START;
		s->active = s->abort;
		return;
	}
	if (sl->tag == TX_END && s->abort) {
		s->abort = false;
		s->active = false;
		s->state = TX_START;
		return;
	}
	switch (sl->tag) {
	case TX_START:
		s->tx = (uint32_t)body_num(body, len);
		s->state = TX_READ;
		break;
	case TX_READ:
		s->value = body_num(body, len);
		s->state = TX_WRITE;
		break;
	case TX_WRITE:
		s->state = TX_END;
		break;
	default:
		s->state = TX_START;
		if (type == WIRE_ERROR) {
			b->eagain++; /* retry the same increment */
			return;
		}
		b->commits++;
		s->active = false;
		op_done(b, sl->op_ns);
		break;
	}
}

static void txn_cleanup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	long sum = 0;
	unsigned i;

	b->ctr_values = calloc(b->counters + 1, sizeof(long));
	for (i = 0; i < b->counters; i++) {
		sub(b, path, sizeof(path), "ctr%u", i);
		trace_add(&b->batch, WIRE_READ, 0, false, 1, path);
	}
	batch_run(b, "check", false);
	for (i = 0; i < b->counters; i++)
		sum += b->ctr_values[i];
	b->verified = (uint64_t)sum == b->commits;
	free(b->ctr_values);
	b->ctr_values = NULL;
	subtree_cleanup(b);
}

/* ------------------------------------------------------------------ */
/* Scripted units: boot (a domain) and populate (100 leaves)            */

/* What libxl 4.17 writes to create PV domain `d` (tools/libs/light:
 * libxl__domain_make, libxl__build_post, libxl__device_console_add,
 * libxl__device_add_async + libxl__device_generic_add, and the hotplug
 * handshake of libxl__wait_device_connection), in its order. */

struct dev {
	const char *kind;
	unsigned devid;
	const char *fe, *be, *lx;
};

static void tr_mknod(struct trace *t, const char *path, const char *p0, const char *p1)
{
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, path);
	if (p1)
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, path, p0, p1);
	else
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 2, path, p0);
}

/* dir/key = value for each pair of kv (NULL-terminated). */
static void tr_writev(struct trace *t, const char *dir, const char *const *kv,
		      const char *p0, const char *p1)
{
	char path[BENCH_PATH_MAX];

	for (; kv[0]; kv += 2) {
		snprintf(path, sizeof(path), "%s/%s", dir, kv[0]);
		tr_write(t, STEP_TX, path, kv[1]);
		if (p0)
			trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, path, p0, p1);
	}
}

static void tr_txn(struct trace *t, bool start)
{
	if (start)
		trace_add(t, WIRE_TRANSACTION_START, 0, false, 1, "");
	else
		trace_add(t, WIRE_TRANSACTION_END, STEP_TX, false, 1, "T");
}

/* libxl__device_generic_add, inside the caller's transaction. */
static void tr_device(struct trace *t, const struct dev *dv, unsigned d,
		      const char *const *bents, const char *const *fents,
		      const char *const *ro_fents)
{
	char path[BENCH_PATH_MAX], dp[16], rp[16];
	bool console0 = !strcmp(dv->kind, "console");

	snprintf(dp, sizeof(dp), "n%u", d);  /* frontend_perms[0] */
	snprintf(rp, sizeof(rp), "r%u", d);  /* ro/backend perms[1] */
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->lx);
	snprintf(path, sizeof(path), "%s/frontend", dv->lx);
	tr_write(t, STEP_TX, path, dv->fe);
	snprintf(path, sizeof(path), "%s/backend", dv->lx);
	tr_write(t, STEP_TX, path, dv->be);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->fe);
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, dv->fe);
	if (console0)
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->fe, "n0", rp);
	else
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->fe, dp, "r0");
	snprintf(path, sizeof(path), "%s/backend", dv->fe);
	tr_write(t, STEP_TX, path, dv->be);
	tr_writev(t, dv->fe, fents, dp, "r0");
	if (ro_fents)
		tr_writev(t, dv->fe, ro_fents, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->be);
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, dv->be);
	trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->be, "n0", rp);
	snprintf(path, sizeof(path), "%s/frontend", dv->be);
	tr_write(t, STEP_TX, path, dv->fe);
	tr_writev(t, dv->be, bents, NULL, NULL);
	tr_writev(t, dv->lx, bents, NULL, NULL);
}

/* The backend driver moves to InitWait, the hotplug script runs and says
 * so; libxl watches both (libxl__wait_device_connection, hotplug). */
static void tr_hotplug(struct trace *t, const struct dev *dv, const char *reads)
{
	char st[BENCH_PATH_MAX], hs[BENCH_PATH_MAX], rd[BENCH_PATH_MAX];

	snprintf(st, sizeof(st), "%s/state", dv->be);
	snprintf(hs, sizeof(hs), "%s/hotplug-status", dv->be);
	snprintf(rd, sizeof(rd), "%s/%s", dv->be, reads);
	trace_add(t, WIRE_WATCH, 0, false, 2, st, "bench-state");
	trace_add(t, WIRE_READ, 0, false, 1, st);
	tr_write(t, 0, st, "2");                 /* the backend driver */
	trace_add(t, WIRE_READ, 0, false, 1, st);
	trace_add(t, WIRE_UNWATCH, 0, false, 2, st, "bench-state");
	trace_add(t, WIRE_WATCH, 0, false, 2, hs, "bench-hotplug");
	trace_add(t, WIRE_READ, 0, false, 1, rd); /* the hotplug script */
	tr_write(t, 0, hs, "connected");
	trace_add(t, WIRE_READ, 0, false, 1, hs);
	trace_add(t, WIRE_UNWATCH, 0, false, 2, hs, "bench-hotplug");
}

static void boot_paths(unsigned d, char *dom, char *vm, char *lx, size_t n)
{
	snprintf(dom, n, "/local/domain/%u", d);
	snprintf(vm, n, "/vm/00000000-0000-4000-8000-%012x", d);
	snprintf(lx, n, "/libxl/%u", d);
}

static void boot_trace(struct bench *b, struct trace *t, unsigned i)
{
	unsigned d = b->domid_base + i, k;
	char dom[64], vm[64], lx[64], p[BENCH_PATH_MAX], q[BENCH_PATH_MAX];
	char ds[16], rp[16], np[16], name[32], mac[2][32];
	char fe[5][BENCH_PATH_MAX], be[5][BENCH_PATH_MAX], lxd[5][BENCH_PATH_MAX];
	static const char *const sub_ro[] = {"cpu", "memory", "device", "control", NULL};
	static const char *const sub_rw[] = {
		"control/shutdown", "control/feature-poweroff",
		"control/feature-reboot", "control/feature-suspend",
		"control/sysrq", "data", "drivers", "feature", "attr", "error", NULL};
	struct dev dv[5];

	boot_paths(d, dom, vm, lx, sizeof(dom));
	snprintf(ds, sizeof(ds), "%u", d);
	snprintf(rp, sizeof(rp), "r%u", d);
	snprintf(np, sizeof(np), "n%u", d);
	snprintf(name, sizeof(name), "bench-guest-%u", d);
	trace_reset(t);

	/* libxl__xs_get_dompath; libxl_name_to_domid reads every domain's name */
	trace_add(t, WIRE_GET_DOMAIN_PATH, 0, false, 1, ds);
	trace_add(t, WIRE_READ, STEP_OK_ENOENT, false, 1, "/local/domain/0/name");
	for (k = 0; k < i; k++) {
		snprintf(p, sizeof(p), "/local/domain/%u/name", b->domid_base + k);
		trace_add(t, WIRE_READ, STEP_OK_ENOENT, false, 1, p);
	}

	/* libxl__domain_make */
	tr_txn(t, true);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dom);
	tr_mknod(t, dom, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, vm);
	tr_mknod(t, vm, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, lx);
	tr_mknod(t, lx, "n0", NULL);
	snprintf(p, sizeof(p), "%s/device", lx);
	tr_mknod(t, p, "n0", NULL);
	snprintf(p, sizeof(p), "%s/vm", dom);
	tr_write(t, STEP_TX, p, vm);
	snprintf(p, sizeof(p), "%s/name", dom);     /* libxl__domain_rename */
	tr_write(t, STEP_TX, p, name);
	snprintf(p, sizeof(p), "%s/name", vm);
	tr_write(t, STEP_TX, p, name);
	for (k = 0; sub_ro[k]; k++) {
		snprintf(p, sizeof(p), "%s/%s", dom, sub_ro[k]);
		tr_mknod(t, p, "n0", rp);
		if (!strcmp(sub_ro[k], "device")) {
			snprintf(p, sizeof(p), "%s/device/suspend/event-channel", dom);
			tr_mknod(t, p, np, NULL);
		}
	}
	for (k = 0; sub_rw[k]; k++) {
		snprintf(p, sizeof(p), "%s/%s", dom, sub_rw[k]);
		tr_mknod(t, p, np, NULL);
	}
	snprintf(p, sizeof(p), "%s/uuid", vm);
	tr_write(t, STEP_TX, p, vm + 4);
	snprintf(p, sizeof(p), "%s/name", vm);
	tr_write(t, STEP_TX, p, name);
	snprintf(p, sizeof(p), "%s/control/platform-feature-multiprocessor-suspend", dom);
	tr_write(t, STEP_TX, p, "1");
	snprintf(p, sizeof(p), "%s/control/platform-feature-xs_reset_watches", dom);
	tr_write(t, STEP_TX, p, "1");
	snprintf(p, sizeof(p), "%s/type", lx);
	tr_write(t, STEP_TX, p, "pv");
	tr_txn(t, false);

	/* store_libxl_entry */
	snprintf(p, sizeof(p), "%s/dm-version", lx);
	tr_write(t, 0, p, "qemu_xen");

	/* libxl__build_post (INTRODUCE left out: no real guest) */
	snprintf(p, sizeof(p), "%s/vm", dom);
	trace_add(t, WIRE_READ, 0, false, 1, p);
	{
		const char *ents[] = {
			"memory/static-max", "524288", "memory/target", "524288",
			"memory/videoram", "-1", "domid", ds, "store/port", "1",
			"store/ring-ref", "1044476", "cpu/0/availability", "online",
			"cpu/1/availability", "online", NULL};
		const char *vments[] = {
			"image/ostype", "linux", "image/kernel", "/boot/vmlinuz-6.1.0-13-amd64",
			"start_time", "1700000000.00", "image/ramdisk",
			"/boot/initrd.img-6.1.0-13-amd64", "image/cmdline",
			"root=/dev/xvda1 ro console=hvc0", NULL};

		tr_txn(t, true);
		tr_writev(t, dom, ents, NULL, NULL);
		tr_writev(t, vm, vments, NULL, NULL);
		tr_txn(t, false);
	}

	/* devices: console 0, vbd xvda/xvdb, vif 0/1 */
	dv[0] = (struct dev){.kind = "console", .devid = 0};
	dv[1] = (struct dev){.kind = "vbd", .devid = 51712};
	dv[2] = (struct dev){.kind = "vbd", .devid = 51728};
	dv[3] = (struct dev){.kind = "vif", .devid = 0};
	dv[4] = (struct dev){.kind = "vif", .devid = 1};
	for (k = 0; k < 5; k++) {
		if (k == 0)
			snprintf(fe[k], sizeof(fe[k]), "%s/console", dom);
		else
			snprintf(fe[k], sizeof(fe[k]), "%s/device/%s/%u", dom, dv[k].kind,
				 dv[k].devid);
		snprintf(be[k], sizeof(be[k]), "/local/domain/0/backend/%s/%u/%u",
			 dv[k].kind, d, dv[k].devid);
		snprintf(lxd[k], sizeof(lxd[k]), "%s/device/%s/%u", lx, dv[k].kind,
			 dv[k].devid);
		dv[k].fe = fe[k];
		dv[k].be = be[k];
		dv[k].lx = lxd[k];
	}
	{
		const char *bents[] = {"frontend-id", ds, "online", "1", "state", "1",
				       "protocol", "vt100", NULL};
		const char *fents[] = {"backend-id", "0", NULL};
		const char *ro[] = {"limit", "1048576", "type", "xenconsoled",
				    "output", "pty", "tty", "", "port", "2",
				    "ring-ref", "1044475", NULL};

		tr_txn(t, true);
		tr_device(t, &dv[0], d, bents, fents, ro);
		tr_txn(t, false);
	}
	for (k = 1; k <= 2; k++) {
		char params[64], vdev[16];
		const char *bents[] = {
			"params", params, "script", "/etc/xen/scripts/block",
			"frontend-id", ds, "online", "1", "removable", "0",
			"bootable", "1", "state", "1", "dev", k == 1 ? "xvda" : "xvdb",
			"type", "phy", "mode", "w", "device-type", "disk",
			"discard-enable", "1", NULL};
		const char *fents[] = {
			"backend-id", "0", "state", "1", "virtual-device", vdev,
			"device-type", "disk", "trusted", "1", "protocol",
			"x86_64-abi", NULL};

		snprintf(params, sizeof(params), "/dev/vg0/guest%u-disk%u", d, k - 1);
		snprintf(vdev, sizeof(vdev), "%u", dv[k].devid);
		tr_txn(t, true);
		trace_add(t, WIRE_READ, STEP_TX | STEP_OK_ENOENT, false, 1, dv[k].lx);
		tr_device(t, &dv[k], d, bents, fents, NULL);
		tr_txn(t, false);
	}
	for (k = 3; k <= 4; k++) {
		char handle[8];
		const char *bents[] = {
			"frontend-id", ds, "online", "1", "state", "1",
			"script", "/etc/xen/scripts/vif-bridge", "mac", mac[k - 3],
			"bridge", "xenbr0", "handle", handle, "type", "vif",
			"hotplug-status", "", NULL};
		const char *fents[] = {"backend-id", "0", "state", "1", "handle", handle,
				       "mac", mac[k - 3], "trusted", "1", NULL};
		const char *ro[] = {"mtu", "1500", NULL};

		snprintf(handle, sizeof(handle), "%u", k - 3);
		snprintf(mac[k - 3], sizeof(mac[k - 3]), "00:16:3e:%02x:%02x:%02x",
			 d >> 8 & 0xff, d & 0xff, k - 3);
		tr_txn(t, true);
		trace_add(t, WIRE_READ, STEP_TX | STEP_OK_ENOENT, false, 1, dv[k].lx);
		tr_device(t, &dv[k], d, bents, fents, ro);
		tr_txn(t, false);
	}
	for (k = 1; k <= 4; k++)
		tr_hotplug(t, &dv[k], k <= 2 ? "params" : "bridge");
	/* the block script also records the device it set up */
	for (k = 1; k <= 2; k++) {
		snprintf(q, sizeof(q), "%s/physical-device", dv[k].be);
		tr_write(t, 0, q, k == 1 ? "fe:1" : "fe:2");
	}
}

static void boot_cleanup(struct bench *b)
{
	char dom[64], vm[64], lx[64], p[BENCH_PATH_MAX];
	static const char *const kinds[] = {"console", "vbd", "vif"};
	unsigned i, k;

	if (b->keep)
		return;
	for (i = 0; i < b->domains; i++) {
		unsigned d = b->domid_base + i;

		boot_paths(d, dom, vm, lx, sizeof(dom));
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, dom);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, vm);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, lx);
		for (k = 0; k < 3; k++) {
			snprintf(p, sizeof(p), "/local/domain/0/backend/%s/%u", kinds[k], d);
			trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, p);
		}
	}
	batch_run(b, "cleanup", false);
}

#define POP_GROUP 100

static unsigned pop_groups(struct bench *b)
{
	return (b->nodes + POP_GROUP - 1) / POP_GROUP;
}

static void pop_trace(struct bench *b, struct trace *t, unsigned unit)
{
	unsigned g = pop_groups(b), dom = b->domid_base + unit / g, grp = unit % g, k;
	unsigned first = grp * POP_GROUP, last = first + POP_GROUP;
	char p[BENCH_PATH_MAX], val[4200];

	if (last > b->nodes)
		last = b->nodes;
	trace_reset(t);
	tr_txn(t, true);
	for (k = first; k < last; k++) {
		snprintf(p, sizeof(p), "/local/domain/%u/bench/g%u/n%u", dom, grp, k);
		make_value(b, val, k);
		tr_write(t, STEP_TX | STEP_PIPE, p, val);
	}
	tr_txn(t, false);
}

static int script_next(struct bench *b, struct conn *c)
{
	struct script *s = &c->s;
	const struct step *st;

	if (!s->active) {
		if (!op_begin(b))
			return -1;
		s->active = true;
		s->unit = b->next_unit++;
		s->step = s->pending = 0;
		s->tx = 0;
		s->op_ns = now_ns();
		if (!strcmp(b->w->name, "boot"))
			boot_trace(b, &s->tr, s->unit);
		else
			pop_trace(b, &s->tr, s->unit);
	}
	if (s->step == s->tr.n)
		return 0;
	st = &s->tr.steps[s->step];
	if (s->pending && !(st->flags & STEP_PIPE))
		return 0;
	if (st->type == WIRE_TRANSACTION_START)
		s->txn_begin = s->step;
	xs_send(b, c, st->type, st->flags & STEP_TX ? s->tx : 0,
		s->tr.arena.p + st->off, st->len, s->op_ns, s->step);
	s->step++;
	s->pending++;
	return 1;
}

static void script_reply(struct bench *b, struct conn *c, const struct slot *sl,
			 uint32_t type, const char *body, uint32_t len)
{
	struct script *s = &c->s;
	const struct step *st = &s->tr.steps[sl->tag];

	s->pending--;
	if (type == WIRE_ERROR) {
		if (st->type == WIRE_TRANSACTION_END && !strcmp(body, "EAGAIN")) {
			b->eagain++;
			s->step = s->txn_begin; /* libxl: goto retry_transaction */
			return;
		}
		if (!(st->flags & STEP_OK_ENOENT && !strcmp(body, "ENOENT")))
			note_error(b, wire_type_name(st->type), s->tr.arena.p + st->off, body);
	} else if (st->type == WIRE_TRANSACTION_START) {
		s->tx = (uint32_t)body_num(body, len);
	} else if (st->type == WIRE_TRANSACTION_END) {
		b->commits++;
	}
	if (s->step == s->tr.n && !s->pending) {
		s->active = false;
		op_done(b, s->op_ns);
	}
}

static void boot_setup(struct bench *b)
{
	b->ops_limit = b->domains;
}

static void pop_setup(struct bench *b)
{
	b->ops_limit = (uint64_t)b->domains * pop_groups(b);
	/* /local/domain/D, .../bench, the groups, the leaves */
	b->nodes_made = (uint64_t)b->domains * (2 + pop_groups(b) + b->nodes);
}

static void pop_cleanup(struct bench *b)
{
	char p[BENCH_PATH_MAX];
	unsigned i;

	if (!b->cleanup_pop)
		return;
	for (i = 0; i < b->domains; i++) {
		snprintf(p, sizeof(p), "/local/domain/%u", b->domid_base + i);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, p);
	}
	batch_run(b, "cleanup", false);
}

/* ------------------------------------------------------------------ */
/* probe: how long writes stop during a failover                       */

static int probe_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[32];

	if (!op_begin(b))
		return -1;
	sub(b, path, sizeof(path), "k");
	snprintf(val, sizeof(val), "%" PRIu64, c->seq++);
	emit_write(b, c, path, val, 0, 0);
	return 1;
}

static void probe_reply(struct bench *b, struct conn *c, const struct slot *sl,
			uint32_t type, const char *body, uint32_t len)
{
	uint64_t t = now_ns(), since = c->last_ok_ns ? c->last_ok_ns : b->t_start;

	if (type == WIRE_ERROR) {
		note_error(b, "WRITE", "probe", body);
		return;
	}
	if (t - since > b->max_gap_ns)
		b->max_gap_ns = t - since;
	c->last_ok_ns = t;
	op_done(b, sl->op_ns);
}

/* ------------------------------------------------------------------ */
/* fsync and rtt: the physical floors, no daemon                        */

static void run_fsync(struct bench *b)
{
	char path[PATH_MAX], block[4096];
	uint64_t i, n = b->ops_opt ? b->ops_opt : 200;
	int fd;

	snprintf(path, sizeof(path), "%s/xsbench-fsync.%d", b->dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("fsync: %s: %s", path, strerror(errno));
	memset(block, 'f', sizeof(block));
	/* allocate first, as libraft preallocates its segments */
	if (posix_fallocate(fd, 0, (off_t)(n * sizeof(block))) || fdatasync(fd))
		die("fsync: cannot allocate %s", path);
	b->t_start = now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < n && now_ns() < b->deadline; i++) {
		uint64_t t0 = now_ns();

		if (pwrite(fd, block, sizeof(block), (off_t)(i * sizeof(block))) !=
			    (ssize_t)sizeof(block) || fdatasync(fd))
			die("fsync: %s: %s", path, strerror(errno));
		op_done(b, t0);
		b->reqs++;
	}
	close(fd);
	unlink(path);
}

static void run_rtt(struct bench *b)
{
	char msg[48];
	uint64_t i, n = b->ops_opt ? b->ops_opt : 10000;
	int sv[2], st;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		die("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		close(sv[0]);
		for (;;) {
			ssize_t r = read(sv[1], msg, sizeof(msg));

			if (r <= 0 || write(sv[1], msg, (size_t)r) != r)
				_exit(0);
		}
	}
	close(sv[1]);
	memset(msg, 'r', sizeof(msg));
	b->t_start = now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < n && now_ns() < b->deadline; i++) {
		uint64_t t0 = now_ns();
		size_t got = 0;

		if (write(sv[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			die("rtt: write: %s", strerror(errno));
		while (got < sizeof(msg)) {
			ssize_t r = read(sv[0], msg + got, sizeof(msg) - got);

			if (r <= 0)
				die("rtt: read failed");
			got += (size_t)r;
		}
		op_done(b, t0);
		b->reqs++;
	}
	close(sv[0]);
	waitpid(pid, &st, 0);
}

/* ------------------------------------------------------------------ */
/* Workload table and reporting                                         */

static const struct workload workloads[] = {
	{"read", false, keys_setup, subtree_cleanup, read_next, simple_reply},
	{"write-one", true, write_one_setup, subtree_cleanup, write_one_next,
	 simple_reply},
	{"write-many", true, write_many_setup, subtree_cleanup, write_many_next,
	 simple_reply},
	{"overwrite", true, keys_setup, subtree_cleanup, overwrite_next,
	 simple_reply},
	{"dir100", false, dir_setup, subtree_cleanup, dir_next, dir_reply},
	{"txn", false, txn_setup, txn_cleanup, txn_next, txn_reply},
	{"boot", false, boot_setup, boot_cleanup, script_next, script_reply},
	{"populate", false, pop_setup, pop_cleanup, script_next, script_reply},
	{"probe", true, NULL, subtree_cleanup, probe_next, probe_reply},
	{"fsync", true, NULL, NULL, NULL, NULL},
	{"rtt", true, NULL, NULL, NULL, NULL},
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in microseconds. */
static double pct_us(const struct bench *b, double p)
{
	size_t k;

	if (!b->nlat)
		return 0;
	k = (size_t)(p * (double)b->nlat + 0.999999);
	if (k < 1)
		k = 1;
	if (k > b->nlat)
		k = b->nlat;
	return (double)b->lat[k - 1] / 1e3;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void report(struct bench *b, const struct workload *w, unsigned conns,
		   unsigned depth)
{
	double secs = (double)(b->t_last - b->t_start) / 1e9;
	double ops_s = secs > 0 ? (double)b->nlat / secs : 0;
	double reqs_s = secs > 0 ? (double)b->reqs / secs : 0;
	uint64_t attempts = b->commits + b->eagain;
	bool tx = !strcmp(w->name, "txn") || !strcmp(w->name, "boot") ||
		  !strcmp(w->name, "populate");

	qsort(b->lat, b->nlat, sizeof(*b->lat), cmp_u64);
	if (b->json) {
		printf("{\"workload\":");
		json_str(stdout, w->name);
		printf(",\"label\":");
		json_str(stdout, b->label);
		printf(",\"conns\":%u,\"depth\":%u,\"ops\":%zu,\"seconds\":%.3f,"
		       "\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"p999_us\":%.1f,\"max_us\":%.1f,\"reqs\":%" PRIu64
		       ",\"reqs_per_s\":%.1f,\"errors\":%" PRIu64 ",\"first_error\":",
		       conns, depth, b->nlat, secs, ops_s, pct_us(b, 0.5),
		       pct_us(b, 0.99), pct_us(b, 0.999), pct_us(b, 1.0), b->reqs,
		       reqs_s, b->errors);
		json_str(stdout, b->first_error);
		if (tx)
			printf(",\"commits\":%" PRIu64 ",\"eagain\":%" PRIu64
			       ",\"eagain_rate\":%.4f", b->commits, b->eagain,
			       attempts ? (double)b->eagain / (double)attempts : 0);
		if (b->verified >= 0)
			printf(",\"verified\":%s", b->verified ? "true" : "false");
		if (b->nodes_made)
			printf(",\"nodes\":%" PRIu64, b->nodes_made);
		if (!strcmp(w->name, "probe"))
			printf(",\"max_gap_ms\":%.1f", (double)b->max_gap_ns / 1e6);
		printf("}\n");
	} else {
		printf("%-10s %-12s c=%-3u d=%-3u %9zu ops %7.2fs %10.0f ops/s  "
		       "p50 %8.1fus  p99 %8.1fus  p999 %8.1fus",
		       w->name, b->label, conns, depth, b->nlat, secs, ops_s,
		       pct_us(b, 0.5), pct_us(b, 0.99), pct_us(b, 0.999));
		if (strcmp(w->name, "read") && strcmp(w->name, "dir100") &&
		    strcmp(w->name, "fsync") && strcmp(w->name, "rtt"))
			printf("  %.0f reqs/s", reqs_s);
		if (tx)
			printf("  commits %" PRIu64 " eagain %" PRIu64 " (%.1f%%)",
			       b->commits, b->eagain,
			       attempts ? 100.0 * (double)b->eagain / (double)attempts : 0);
		if (b->verified >= 0)
			printf("  counters %s", b->verified ? "add up" : "DO NOT ADD UP");
		if (b->nodes_made)
			printf("  nodes %" PRIu64, b->nodes_made);
		if (!strcmp(w->name, "probe"))
			printf("  max gap %.1f ms", (double)b->max_gap_ns / 1e6);
		if (b->errors)
			printf("  errors %" PRIu64 " (first: %s)", b->errors, b->first_error);
		printf("\n");
	}
	fflush(stdout);
}

static void run_workload(struct bench *b, const struct workload *w)
{
	unsigned conns = b->conns, depth = b->depth;

	b->w = w;
	b->nlat = 0;
	b->reqs = b->errors = b->commits = b->eagain = 0;
	b->first_error[0] = '\0';
	b->max_gap_ns = 0;
	b->verified = -1;
	b->nodes_made = 0;
	b->next_unit = 0;
	b->ops_limit = b->ops_opt;
	snprintf(b->run_tag, sizeof(b->run_tag), "%d-%llu", (int)getpid(),
		 (unsigned long long)(now_ns() / 1000 % 1000000000ull));
	if (!strcmp(w->name, "fsync")) {
		run_fsync(b);
		report(b, w, 1, 1);
		return;
	}
	if (!strcmp(w->name, "rtt")) {
		run_rtt(b);
		report(b, w, 1, 1);
		return;
	}
	if (b->proto == PROTO_ETCD && !w->etcd_ok)
		die("%s: not a workload for etcd (puts only)", w->name);
	/* one request at a time per connection, as their clients do */
	if (!strcmp(w->name, "txn") || !strcmp(w->name, "boot") ||
	    !strcmp(w->name, "probe"))
		depth = 1;
	if (!strcmp(w->name, "populate") && depth < 2)
		depth = 32;
	if (w->setup)
		w->setup(b);
	b->nlat = 0;
	b->reqs = b->errors = b->commits = b->eagain = 0;
	b->first_error[0] = '\0';
	b->what = w->name;
	engine_run(b, conns, depth);
	if (w->cleanup) {
		uint64_t errs = b->errors, reqs = b->reqs;
		uint64_t t0 = b->t_start, t1 = b->t_last;
		char first[sizeof(b->first_error)];

		memcpy(first, b->first_error, sizeof(first));
		w->cleanup(b);
		b->errors = errs;
		b->reqs = reqs;
		b->t_start = t0;
		b->t_last = t1;
		memcpy(b->first_error, first, sizeof(first));
	}
	report(b, w, conns, depth);
}

static unsigned parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "xsbench: %s: %s is not a number in [%u, %u]\n", opt,
			s, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	enum { O_PARENTS = 256, O_COUNTERS, O_DOMAINS, O_DOMID_BASE, O_NODES,
	       O_VALUE_SIZE, O_PREFIX, O_DIR, O_LABEL, O_KEEP, O_CLEANUP, O_JSON };
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"etcd", required_argument, NULL, 'e'},
		{"conns", required_argument, NULL, 'c'},
		{"depth", required_argument, NULL, 'd'},
		{"duration", required_argument, NULL, 't'},
		{"ops", required_argument, NULL, 'n'},
		{"keys", required_argument, NULL, 'k'},
		{"parents", required_argument, NULL, O_PARENTS},
		{"counters", required_argument, NULL, O_COUNTERS},
		{"domains", required_argument, NULL, O_DOMAINS},
		{"domid-base", required_argument, NULL, O_DOMID_BASE},
		{"nodes", required_argument, NULL, O_NODES},
		{"value-size", required_argument, NULL, O_VALUE_SIZE},
		{"prefix", required_argument, NULL, O_PREFIX},
		{"dir", required_argument, NULL, O_DIR},
		{"label", required_argument, NULL, O_LABEL},
		{"keep", no_argument, NULL, O_KEEP},
		{"cleanup", no_argument, NULL, O_CLEANUP},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bench b = {
		.conns = 1, .depth = 1, .duration_s = 5, .keys = 1000,
		.parents = 100, .counters = 4, .domains = 100, .domid_base = 1,
		.nodes = 1000, .value_size = 16, .prefix = "/bench", .dir = ".",
		.label = "", .epfd = -1,
	};
	const char *etcd = NULL;
	char *etcd_copy = NULL, *s;
	int opt, i;

	while ((opt = getopt_long(argc, argv, "s:e:c:d:t:n:k:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': b.socket = optarg; break;
		case 'e': etcd = optarg; break;
		case 'c': b.conns = parse_uint("--conns", optarg, 1, BENCH_MAX_CONNS); break;
		case 'd': b.depth = parse_uint("--depth", optarg, 1, BENCH_MAX_DEPTH); break;
		case 't': {
			char *end;

			b.duration_s = strtod(optarg, &end);
			if (*end || end == optarg || !(b.duration_s > 0) || b.duration_s > 86400) {
				fprintf(stderr, "xsbench: --duration: %s is not a number of seconds\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'n': b.ops_opt = parse_uint("--ops", optarg, 1, UINT_MAX); break;
		case 'k': b.keys = parse_uint("--keys", optarg, 1, 10000000); break;
		case O_PARENTS: b.parents = parse_uint("--parents", optarg, 1, 1000000); break;
		case O_COUNTERS: b.counters = parse_uint("--counters", optarg, 1, 100000); break;
		case O_DOMAINS: b.domains = parse_uint("--domains", optarg, 1, 32000); break;
		case O_DOMID_BASE: b.domid_base = parse_uint("--domid-base", optarg, 1, 32000); break;
		case O_NODES: b.nodes = parse_uint("--nodes", optarg, 1, 10000000); break;
		case O_VALUE_SIZE: b.value_size = parse_uint("--value-size", optarg, 1, 4000); break;
		case O_PREFIX: b.prefix = optarg; break;
		case O_DIR: b.dir = optarg; break;
		case O_LABEL: b.label = optarg; break;
		case O_KEEP: b.keep = true; break;
		case O_CLEANUP: b.cleanup_pop = true; break;
		case O_JSON: b.json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	if (b.prefix[0] != '/' || strlen(b.prefix) > 100) {
		fprintf(stderr, "xsbench: --prefix must be an absolute path (<= 100 bytes)\n");
		return 2;
	}
	for (i = optind; i < argc; i++) {
		size_t k;

		for (k = 0; k < sizeof(workloads) / sizeof(workloads[0]); k++)
			if (!strcmp(argv[i], workloads[k].name))
				break;
		if (k == sizeof(workloads) / sizeof(workloads[0])) {
			fprintf(stderr, "xsbench: unknown workload %s (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (etcd) {
		char *tok, *save = NULL;

		etcd_copy = strdup(etcd);
		s = etcd_copy;

		b.proto = PROTO_ETCD;
		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			b.etcd_addrs = xrealloc(b.etcd_addrs, (b.n_etcd + 1) * sizeof(char *));
			b.etcd_addrs[b.n_etcd++] = tok;
		}
		if (!b.n_etcd) {
			fprintf(stderr, "xsbench: --etcd needs HOST:PORT\n");
			return 2;
		}
	}
	if (!b.socket)
		b.socket = getenv("XENSTORED_PATH");
	if (!b.socket)
		b.socket = "/var/run/xenstored/socket";
	signal(SIGPIPE, SIG_IGN);
	for (i = optind; i < argc; i++) {
		size_t k;

		for (k = 0; strcmp(argv[i], workloads[k].name); k++)
			;
		run_workload(&b, &workloads[k]);
	}
	trace_free(&b.batch);
	free(b.lat);
	free(b.etcd_addrs);
	free(etcd_copy);
	return 0;
}
