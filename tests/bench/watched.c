/*
 * tests/bench/watched.c: the watched workload: overwrite (of --keys keys)
 * while one more connection holds --watches watches on "/" and reads none
 * of its events, so that every write queues that many events for it
 * (issue 12: one client's watches must not slow the others down).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

#define CHUNK 500 /* WATCHes sent before reading their replies */

static int watcher_connect(struct bench *b)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(b->socket) >= sizeof(sa.sun_path))
		bench_die("socket path too long: %s", b->socket);
	strcpy(sa.sun_path, b->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("watched: cannot connect to %s: %s", b->socket,
			  strerror(errno));
	return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			bench_die("watched: write: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

/* Read until `want` WATCH replies came; the events in between are
 * skipped. A silent daemon (60 s) or an error reply is fatal. */
static void await_replies(int fd, struct buf *in, unsigned want)
{
	unsigned got = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct wire_hdr h;
		ssize_t k;

		while (got < want && in->len - in->off >= WIRE_HDR_SIZE) {
			wire_hdr_decode((const uint8_t *)in->p + in->off, &h);
			if (in->len - in->off < WIRE_HDR_SIZE + (size_t)h.len)
				break;
			if (h.type == WIRE_ERROR)
				bench_die("watched: WATCH refused: %.*s",
					  (int)h.len,
					  in->p + in->off + WIRE_HDR_SIZE);
			if (h.type == WIRE_WATCH)
				got++;
			in->off += WIRE_HDR_SIZE + h.len;
		}
		if (got == want)
			return;
		if (poll(&p, 1, 60000) != 1)
			bench_die("watched: no reply to WATCH for 60 s");
		buf_reserve(in, 65536);
		k = read(fd, in->p + in->len, 65536);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			bench_die("watched: the daemon closed the watcher");
		in->len += (size_t)k;
	}
}

void watched_setup(struct bench *b)
{
	struct buf out = {0}, in = {0};
	unsigned i, j, n;

	kv_keys_setup(b);
	b->watcher_fd = watcher_connect(b);
	for (i = 0; i < b->watches; i += n) {
		n = b->watches - i < CHUNK ? b->watches - i : CHUNK;
		for (j = i; j < i + n; j++) {
			char payload[64];
			struct wire_hdr h = {WIRE_WATCH, j, 0, 0};
			uint8_t hdr[WIRE_HDR_SIZE];
			int len = snprintf(payload, sizeof(payload),
					   "/%cw%s-%u", '\0', b->run_tag, j);

			h.len = (uint32_t)len + 1;
			wire_hdr_encode(&h, hdr);
			buf_put(&out, hdr, sizeof(hdr));
			buf_put(&out, payload, h.len);
		}
		write_all(b->watcher_fd, out.p + out.off, out.len - out.off);
		out.off = out.len = 0;
		await_replies(b->watcher_fd, &in, n);
	}
	buf_free(&out);
	buf_free(&in);
	/* from now on the watcher reads nothing */
}

void watched_cleanup(struct bench *b)
{
	if (b->watcher_fd >= 0)
		close(b->watcher_fd);
	b->watcher_fd = -1;
	kv_subtree_cleanup(b);
}
