/*
 * tests/fuzz/fuzz_socket.c: a socket client's byte stream into a real
 * connection (node/conn.c: reassembly, queues, replies) on a socketpair,
 * served by the stub handler of fuzz_conn.c. Byte 0 picks the size of the
 * writes and reads, the limits, the socket buffer; the rest is the stream.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conn.h"
#include "tests/fuzz/fuzz_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* write sizes: whole messages, headers split, byte by byte */
	static const size_t chunks[8] = {65536, 4112, 4111, 100,
					 17,    16,   5,    1};
	struct conn_identity id = {.domid = 0, .privileged = true,
				   .target = UINT32_MAX};
	struct conn_limits lim = CONN_LIMITS_DEFAULT;
	struct fuzz_server s;
	struct fuzz_stream cl;
	struct conn *c;
	int sv[2];

	if (size < 1)
		return 0;
	if (data[0] & 0x08) { /* tight limits: reading pauses, resumes */
		lim.max_queued_requests = 2;
		lim.max_output_bytes = 64;
		lim.max_async = 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) != 0)
		abort();
	if (data[0] & 0x10) { /* replies do not fit: written in parts */
		int one = 1;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	}
	fuzz_server_init(&s);
	if (conn_socket_new(s.pool, sv[0], &id, &lim, &s.h, &c) != 0)
		abort();
	fuzz_stream_start(&cl, &s.loop, sv[1], data + 1, size - 1,
			  chunks[data[0] & 7]);
	fuzz_server_close(&s);
	return 0;
}
