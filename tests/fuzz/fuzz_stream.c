/*
 * tests/fuzz/fuzz_stream.c: the hostile end of a stream socket
 * (fuzz_stream.h), on a uv_poll of the fuzz target's loop.
 */
#include "tests/fuzz/fuzz_stream.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void closed(uv_handle_t *h)
{
	struct fuzz_stream *s = h->data;

	close(s->fd);
	s->done = true;
}

static void io(uv_poll_t *h, int status, int events)
{
	struct fuzz_stream *s = h->data;
	uint8_t buf[65536];
	ssize_t n;

	if (status == 0 && (events & UV_WRITABLE)) {
		n = s->left ? send(s->fd, s->p,
				   s->left < s->chunk ? s->left : s->chunk,
				   MSG_NOSIGNAL | MSG_DONTWAIT)
			    : 0;
		if (n > 0) {
			s->p += n;
			s->left -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			s->left = 0; /* the server closed: read what it said */
		}
		if (!s->left) {
			shutdown(s->fd, SHUT_WR);
			uv_poll_start(&s->poll, UV_READABLE, io);
		}
	}
	if (status < 0 || (events & UV_READABLE)) {
		n = recv(s->fd, buf, s->chunk < sizeof(buf) ? s->chunk : sizeof(buf),
			 MSG_DONTWAIT);
		if (status < 0 || n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EINTR))
			uv_close((uv_handle_t *)&s->poll, closed);
	}
}

void fuzz_stream_start(struct fuzz_stream *s, uv_loop_t *loop, int fd,
		       const uint8_t *data, size_t len, size_t chunk)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->p = data;
	s->left = len;
	s->chunk = chunk;
	uv_poll_init(loop, &s->poll, fd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE | UV_WRITABLE, io);
}
