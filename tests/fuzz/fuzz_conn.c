/*
 * tests/fuzz/fuzz_conn.c: the connection targets' stub server. Its handler
 * keeps dispatch's rules (node/dispatch.c): mutations go "to the log"
 * (CONN_ASYNC, answered from a timer), other requests wait behind them
 * (CONN_WAIT); it answers, fails, fires events and closes connections.
 */#include "tests/fuzz/fuzz_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/xs_msg.h"

struct fuzz_pending {
	struct fuzz_pending *next;
	struct conn *c;
	struct conn_req *r;
};

static void answer_later(uv_timer_t *t)
{
	struct fuzz_server *s = t->data;
	struct fuzz_pending *p;

	while ((p = s->pending)) {
		s->pending = p->next;
		conn_reply(p->c, p->r, "OK", 3);
		conn_async_done(p->c);
		free(p->r);
		free(p);
	}
	s->pending_tail = &s->pending;
}

static bool is_mutation(uint32_t type)
{
	return type == WIRE_WRITE || type == WIRE_MKDIR || type == WIRE_RM ||
	       type == WIRE_SET_PERMS || type == WIRE_TRANSACTION_END;
}

static enum conn_verdict stub_request(void *data, struct conn *c,
				      struct conn_req *r)
{
	struct fuzz_server *s = data;
	const char *argv[4];
	unsigned n = wire_split(r->payload, r->hdr.len, argv, 4);
	char *twice;

	if (is_mutation(r->hdr.type) && !r->hdr.tx_id) {
		struct fuzz_pending *p = malloc(sizeof(*p));

		if (!p) {
			conn_reply_error(c, r, -ENOMEM);
			return CONN_DONE;
		}
		p->next = NULL;
		p->c = c;
		p->r = r;
		*s->pending_tail = p;
		s->pending_tail = &p->next;
		uv_timer_start(&s->later, answer_later, 0, 0);
		return CONN_ASYNC;
	}
	if (conn_async_count(c) > 0)
		return CONN_WAIT; /* replies leave in request order */
	switch (r->hdr.type) {
	case WIRE_WATCH:
		if (n < 2) {
			conn_reply_error(c, r, -EINVAL);
			break;
		}
		conn_reply(c, r, "OK", 3);
		conn_event(c, argv[0], argv[1]);
		break;
	case WIRE_READ: /* twice the payload: E2BIG past 4096 bytes */
		twice = malloc(2 * (size_t)r->hdr.len + 1);
		if (!twice) {
			conn_reply_error(c, r, -ENOMEM);
			break;
		}
		memcpy(twice, r->payload, r->hdr.len);
		memcpy(twice + r->hdr.len, r->payload, r->hdr.len);
		conn_reply(c, r, twice, 2 * (size_t)r->hdr.len);
		free(twice);
		break;
	case WIRE_DIRECTORY:
		if (wire_onearg(r->payload, r->hdr.len))
			conn_reply(c, r, r->payload, r->hdr.len);
		else
			conn_reply_error(c, r, -EINVAL);
		break;
	case WIRE_ERROR: /* any errno, known to the wire table or not */
		conn_reply_error(c, r, -(int)(r->hdr.req_id % 200));
		break;
	case WIRE_RELEASE:
		conn_close(c, "stub: RELEASE closes");
		break;
	default:
		if (wire_type_name(r->hdr.type))
			conn_reply(c, r, r->payload, r->hdr.len);
		else
			conn_reply_error(c, r, -ENOSYS);
		break;
	}
	return CONN_DONE;
}

static void stub_closed(void *data, struct conn *c)
{
}

static void stub_log(void *data, int level, const char *msg)
{
}

static void stub_trace(void *data, const struct conn *c, bool out,
		       const struct wire_hdr *h, const void *payload)
{
	(void)wire_type_name(h->type);
}

void fuzz_server_init(struct fuzz_server *s)
{
	memset(s, 0, sizeof(*s));
	uv_loop_init(&s->loop);
	s->pool = conn_pool_new(&s->loop);
	if (!s->pool)
		abort();
	uv_timer_init(&s->loop, &s->later);
	s->later.data = s;
	s->pending_tail = &s->pending;
	s->h.data = s;
	s->h.request = stub_request;
	s->h.closed = stub_closed;
	s->h.log = stub_log;
	s->h.trace = stub_trace;
}

void fuzz_server_close(struct fuzz_server *s)
{
	uv_run(&s->loop, UV_RUN_DEFAULT);
	if (conn_pool_count(s->pool) || s->pending)
		abort(); /* a connection that never went away */
	conn_pool_close(s->pool, NULL, NULL);
	uv_close((uv_handle_t *)&s->later, NULL);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&s->loop))
		abort();
}
