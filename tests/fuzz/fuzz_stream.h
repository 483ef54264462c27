/*
 * tests/fuzz/fuzz_stream.h: the hostile end of a stream socket for the
 * targets that drive a real server over one (fuzz_socket.c,
 * fuzz_handshake.c): it writes the input, then reads until closed.
 */
#ifndef XSR_TESTS_FUZZ_STREAM_H
#define XSR_TESTS_FUZZ_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct fuzz_stream {
	uv_poll_t poll;
	int fd;
	const uint8_t *p;
	size_t left, chunk;
	bool done; /* the server closed its end; fd is closed */
};

/*
 * On loop: write the len bytes of data (borrowed until done) into fd (a
 * connected non-blocking socket, owned from now on) in writes of at most
 * chunk bytes, shut down writing, and read what comes back, as much at a
 * time, until the other end closes. Writes the server refuses end the
 * writing.
 */
void fuzz_stream_start(struct fuzz_stream *s, uv_loop_t *loop, int fd,
		       const uint8_t *data, size_t len, size_t chunk);

#endif
