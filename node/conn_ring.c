/*
 * node/conn_ring.c: the ring transport of a connection (node/conn.h): a
 * guest's shared page (ring/ring.h), read once and validated, with a
 * journal so that a restarted daemon carries on where this one stopped.
 */
#include "node/conn.h"
#include "node/conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Ring transport ------------------------------------------------------ */

/* Stop using the ring: it broke or the guest asks to start over. */
static void ring_stall(struct conn *c, enum conn_ring_event ev, uint32_t err)
{
	if (c->stalled)
		return;
	c->stalled = true;
	if (ev == CONN_RING_BROKEN) {
		ring_io_set_error(&c->io, err);
		conn_logf(c, 4, "ring of domain %u broken (error %u): ignored",
		      c->id.domid, err);
	}
	c->rops.event(c->rops.arg, c, ev, err);
}

/* Journal the next message to copy into the ring. */
static void ring_msg_start(struct conn *c, const struct out *o)
{
	struct ring_journal *j = c->jr;

	memcpy(j->msg, o->data, o->len);
	j->msg_start = j->out_pos;
	j->msg_req_end = o->req_end;
	j->msg_req_seq = o->req_seq;
	j->msg_is_reply = !o->event;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	j->msg_len = (uint32_t)o->len;
}

/* The journaled message is all in the ring: its request is answered. */
static void ring_msg_done(struct conn *c)
{
	struct ring_journal *j = c->jr;

	if (j->msg_is_reply && j->msg_req_end > j->in_base) {
		j->in_base = j->msg_req_end;
		j->in_base_seq = j->msg_req_seq + 1;
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	j->msg_len = 0;
}

/*
 * Copy queued output into the ring as far as it goes. The order of the
 * stores is what makes a crash at any point harmless: bytes into the
 * ring, then the journal's out_pos, then the index the guest sees.
 */
static void ring_output(struct conn *c)
{
	struct ring_journal *j = c->jr;
	bool moved = false;

	while (c->out_head && !c->stalled) {
		struct out *o = c->out_head;
		size_t off, n;
		int rc;

		if (!j->msg_len)
			ring_msg_start(c, o);
		off = (size_t)(j->out_pos - j->msg_start);
		rc = ring_io_put(&c->io, j->msg + off, j->msg_len - off, &n);
		if (rc) {
			ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_RINGIDX);
			break;
		}
		if (n == 0)
			break;
		j->out_pos += n;
		moved = true;
		if (off + n < j->msg_len)
			break; /* the ring is full */
		ring_msg_done(c);
		conn_out_pop(c);
	}
	if (moved) {
		ring_io_publish(&c->io);
		c->rops.notify(c->rops.arg);
	}
}

/*
 * How many of the n bytes in buf (the stream from in_pos on) may be read
 * now: a new request is started only while fewer than max_outstanding are
 * unanswered, as cxenstored stops reading then (domain_can_read()). The
 * one under way is always finished.
 */
static size_t ring_admit(const struct conn *c, const uint8_t *buf, size_t n)
{
	unsigned out = conn_outstanding(c), max = c->lim.max_outstanding;
	uint8_t hdr[WIRE_HDR_SIZE];
	size_t hu = c->hdr_used, left = 0, pos = 0, take;
	bool body = c->partial != NULL, started = body || hu > 0;
	struct wire_hdr h;

	if (!max)
		return n;
	memcpy(hdr, c->hdr_raw, hu);
	if (body)
		left = c->partial->hdr.len - c->partial_used;
	while (pos < n) {
		if (!body) {
			if (!started) {
				if (out >= max)
					break;
				started = true;
			}
			take = WIRE_HDR_SIZE - hu;
			if (take > n - pos)
				take = n - pos;
			memcpy(hdr + hu, buf + pos, take);
			hu += take;
			pos += take;
			if (hu < WIRE_HDR_SIZE)
				break;
			wire_hdr_decode(hdr, &h);
			if (h.len > WIRE_PAYLOAD_MAX)
				return n; /* the parser refuses it */
			body = true;
			left = h.len;
		}
		take = left < n - pos ? left : n - pos;
		pos += take;
		left -= take;
		if (left == 0) {
			out++;
			body = started = false;
			hu = 0;
		}
	}
	return pos;
}

/* Read what the guest wrote, journal it, then let the guest see it gone. */
static void ring_input(struct conn *c)
{
	struct ring_journal *j = c->jr;
	uint8_t buf[XENSTORE_RING_SIZE];
	size_t room, n;
	int rc;

	if (ring_io_connection(&c->io) != XENSTORE_CONNECTED) {
		ring_stall(c, CONN_RING_RECONNECT, 0);
		return;
	}
	if (!conn_may_read(c))
		return;
	room = XSR_RING_JOURNAL_IN_BYTES - ring_journal_held(j);
	if (room > sizeof(buf))
		room = sizeof(buf);
	if (room == 0)
		return;
	rc = ring_io_peek(&c->io, buf, room, &n);
	if (rc) {
		ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_RINGIDX);
		return;
	}
	n = ring_admit(c, buf, n);
	if (n == 0)
		return;
	ring_journal_append(j, buf, n);
	ring_io_consume(&c->io, n);
	c->rops.notify(c->rops.arg);
	if (!conn_parse(c, buf, n, false))
		ring_stall(c, CONN_RING_BROKEN, XENSTORE_ERROR_PROTO);
}

void conn_ring_work(struct conn *c)
{
	if (c->closed) {
		conn_teardown(c);
		return;
	}
	if (!c->stalled)
		ring_input(c);
	conn_process(c);
	if (!c->stalled)
		ring_output(c);
	if (c->closed) {
		conn_teardown(c);
		return;
	}
	/* more to read now that room was made: come back next iteration */
	if (!c->stalled && conn_may_read(c) && ring_io_readable(&c->io))
		conn_schedule(c);
}

void conn_ring_kick(struct conn *c)
{
	if (!c->closed)
		conn_schedule(c);
}

static void orphan_notify(void *arg)
{
}

static void orphan_event(void *arg, struct conn *c, enum conn_ring_event ev,
			 uint32_t error)
{
}

void conn_ring_orphan(struct conn *c)
{
	c->rops.notify = orphan_notify;
	c->rops.event = orphan_event;
	c->rops.arg = NULL;
}

bool conn_is_ring(const struct conn *c)
{
	return c->ring;
}

/*
 * Take up a journal left by a dead daemon: republish our indexes, finish
 * the message it was copying, and read its unanswered requests again.
 */
static bool ring_resume(struct conn *c)
{
	struct ring_journal *j = c->jr;
	uint64_t from = j->in_base, seq = j->in_base_seq, held;
	uint8_t *buf;
	bool ok;

	ring_io_init(&c->io, c->io.page, (uint32_t)j->in_end,
		     (uint32_t)j->out_pos);
	if (j->msg_len) {
		uint64_t done = j->out_pos - j->msg_start;

		if (done > j->msg_len)
			return false;
		if (done == j->msg_len) {
			ring_msg_done(c);
			from = j->in_base;
			seq = j->in_base_seq;
		} else {
			struct out *o = malloc(sizeof(*o) + j->msg_len);

			if (!o)
				return false;
			/* the rest of it goes first, from the journal */
			memset(o, 0, sizeof(*o));
			o->len = j->msg_len;
			o->event = !j->msg_is_reply;
			o->req_end = j->msg_req_end;
			o->req_seq = j->msg_req_seq;
			memcpy(o->data, j->msg, j->msg_len);
			c->out_head = c->out_tail = o;
			c->out_bytes = o->len;
			/* still queued, so a duplicate of it is dropped */
			conn_out_index_event(c, o);
			if (j->msg_is_reply) {
				/* that request is being answered already */
				from = j->msg_req_end;
				seq = j->msg_req_seq + 1;
			}
		}
	}
	if (from < j->in_base || from > j->in_end)
		return false;
	c->in_pos = from;
	c->in_seq = seq;
	held = j->in_end - from;
	if (!held)
		return true;
	buf = malloc(held);
	if (!buf)
		return false;
	ring_journal_copy(j, from, buf, held);
	ok = conn_parse(c, buf, held, true);
	free(buf);
	return ok;
}

int conn_ring_new(struct conn_pool *p, void *page, struct ring_journal *jr,
		  bool fresh, const struct conn_identity *id,
		  const struct conn_limits *limits, const struct conn_handler *h,
		  const struct conn_ring_ops *ops, struct conn **out)
{
	struct conn *c = conn_alloc(p, id, limits, h);
	struct xenstore_domain_interface *pg = page;

	if (!c)
		return -ENOMEM;
	c->rops = *ops;
	c->ring = true;
	c->fd = -1;
	c->jr = jr;
	c->io.page = pg;
	if (fresh) {
		uint32_t cons = __atomic_load_n(&pg->req_cons, __ATOMIC_RELAXED);
		uint32_t prod = __atomic_load_n(&pg->rsp_prod, __ATOMIC_RELAXED);

		jr->in_base = jr->in_end = cons;
		jr->out_pos = prod;
		ring_io_init(&c->io, pg, cons, prod);
		c->in_pos = cons;
		c->in_seq = jr->in_base_seq;
	} else if (!ring_resume(c)) {
		/* a journal we cannot make sense of: start from the page */
		conn_free_queues(c);
		ring_journal_reset(jr, jr->ring_id);
		free(c);
		return conn_ring_new(p, page, jr, true, id, limits, h, ops,
				     out);
	}
	conn_link(p, c);
	*out = c;
	conn_schedule(c);
	return 0;
}
