/*
 * tests/bench/engine.c: runs the current workload (b->w) on fresh
 * connections. One thread, one epoll loop: N connections, each with up to
 * D requests in flight; next() emits a connection's next request, reply()
 * (called from conn.c) consumes an answer and says when an op is done.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

#include "tests/bench/bench_int.h"

#define BENCH_GRACE_NS (60ull * 1000000000ull) /* replies after the deadline */

/* May an op begin? Counts it if so. */
bool engine_op_begin(struct bench *b)
{
	if (b->stopping)
		return false;
	if ((b->ops_limit && b->ops_begun >= b->ops_limit) ||
	    bench_now_ns() >= b->deadline) {
		b->stopping = true;
		return false;
	}
	b->ops_begun++;
	return true;
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

static bool all_done(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->nconns; i++)
		if (!b->cs[i].done || b->cs[i].inflight)
			return false;
	return true;
}

/* Run b->w on fresh connections until every connection is done. */
void engine_run(struct bench *b, unsigned nconns, unsigned depth)
{
	unsigned i;

	conns_open(b, nconns, depth);
	b->ops_begun = 0;
	b->stopping = false;
	b->t_start = b->t_last = bench_now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < nconns; i++)
		conn_fill(b, &b->cs[i]);
	while (!all_done(b)) {
		if (bench_now_ns() > b->deadline + BENCH_GRACE_NS)
			bench_die("%s: no answer for %llu s after the deadline", b->what,
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
				bench_die("epoll_wait: %s", strerror(errno));
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
