/*
 * tests/fuzz/fuzz_handshake.c: a Raft connection's opening from a hostile
 * end, into the real TLS transport (consensus/repl_tls.c) on loopback,
 * before anyone is authenticated. Byte 0: we accept (the rest is what a
 * stranger sends: a TLS ClientHello, garbage, a plaintext libraft
 * handshake) or we dial (the rest is what the dialled end answers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consensus/repl_tls.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_stream.h"

#define SELF_ID 1
#define PEER_ID 7

static struct {
	uv_loop_t loop;
	struct tls_creds *creds;
	struct raft_uv_transport *t;
	int port;	 /* the transport's listener */
	int remote_fd;	 /* the member we dial listens here */
	char remote[32]; /* its address */
} g;

static bool connect_answered;

static void stream_closed(uv_handle_t *h)
{
	raft_free(h);
}

/* libraft's uv backend would take the stream: we only close it. */
static void accepted(struct raft_uv_transport *t, raft_id id,
		     const char *address, uv_stream_t *stream)
{
	uv_close((uv_handle_t *)stream, stream_closed);
}

static void connected(struct raft_uv_connect *req, uv_stream_t *stream,
		      int status)
{
	if (stream)
		uv_close((uv_handle_t *)stream, stream_closed);
	connect_answered = true;
}

static void no_log(void *data, int level, const char *msg)
{
}

/* The port of the one TCP socket this process listens on so far. */
static int listening_port(void)
{
	int fd;

	for (fd = 3; fd < 1024; fd++) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa), ol;
		int on = 0;

		ol = sizeof(on);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) != 0 ||
		    !on ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
		    sa.sin_family != AF_INET)
			continue;
		return ntohs(sa.sin_port);
	}
	return -1;
}

/* The committed test key, copied where its mode can be 0600 (a git
 * checkout does not keep it). */
static void private_copy(const char *from, char *to, size_t len)
{
	char buf[4096];
	FILE *in = fopen(from, "re");
	size_t n;
	int fd;

	snprintf(to, len, "/tmp/xsr-fuzz-key-XXXXXX");
	fd = mkstemp(to);
	if (!in || fd < 0)
		abort();
	n = fread(buf, 1, sizeof(buf), in);
	if (write(fd, buf, n) != (ssize_t)n)
		abort();
	fclose(in);
	close(fd);
}

static void setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	char key[64], err[256];

	private_copy(XSR_FUZZ_CERTS "/member-1.key", key, sizeof(key));
	if (tls_creds_load(XSR_FUZZ_CERTS "/ca.pem",
			   XSR_FUZZ_CERTS "/member-1.pem", key, SELF_ID,
			   &g.creds, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_handshake: %s\n", err);
		abort();
	}
	unlink(key);
	uv_loop_init(&g.loop);
	if (repl_tls_init(&g.t, &g.loop, g.creds, no_log, NULL) != 0 ||
	    g.t->init(g.t, SELF_ID, "127.0.0.1:0") != 0 ||
	    g.t->listen(g.t, accepted) != 0 || (g.port = listening_port()) < 0)
		abort();
	/* the member we dial */
	g.remote_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (g.remote_fd < 0 ||
	    bind(g.remote_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(g.remote_fd, 4) != 0 ||
	    getsockname(g.remote_fd, (struct sockaddr *)&sa, &sl) != 0)
		abort();
	snprintf(g.remote, sizeof(g.remote), "127.0.0.1:%d",
		 ntohs(sa.sin_port));
}

/* Run the loop until s is done and, dialling, libraft was answered. */
static void run(struct fuzz_stream *s, bool dialling)
{
	int i;

	while (!s->done || (dialling && !connect_answered))
		uv_run(&g.loop, UV_RUN_ONCE);
	/* close callbacks of the transport's side */
	for (i = 0; i < 4; i++)
		uv_run(&g.loop, UV_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct raft_uv_connect req;
	struct fuzz_stream s;
	int fd;
	bool dialling;

	if (size < 1)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	dialling = data[0] & 1;
	if (dialling) {
		/* libraft dials the remote; we answer as it */
		connect_answered = false;
		if (g.t->connect(g.t, &req, PEER_ID, g.remote, connected) != 0)
			abort();
		while ((fd = accept4(g.remote_fd, NULL, NULL,
				     SOCK_NONBLOCK)) < 0) {
			if (errno != EAGAIN && errno != EINTR)
				abort();
			uv_run(&g.loop, UV_RUN_ONCE);
		}
	} else {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)g.port)};

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0 ||
		    (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
		     errno != EINPROGRESS))
			abort();
	}
	fuzz_stream_start(&s, &g.loop, fd, data + 1, size - 1, 65536);
	run(&s, dialling);
	return 0;
}
