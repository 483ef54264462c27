/*
 * node/dispatch.c: one handler per message type, in a table with per-type
 * flags (cxenstored's wire_funcs[]), and the generic checks in cxenstored's
 * order: unknown type (ENOSYS), privileged-only (EACCES), read-only socket
 * (EACCES), transaction id (ENOENT); then the request is built once and
 * its handler runs.
 *
 * Ordering: replies leave in request order. A request answered at once (a
 * read, an error, anything in a transaction) must not overtake a request
 * of the same connection that is still in the log, so it waits (CONN_WAIT:
 * offered again once that one is answered). Only the mutations outside a
 * transaction (F_LOG) need not wait: they go to the log behind the others,
 * which keeps their order.
 */
#include "node/dispatch.h"
#include "node/trace.h"
#include "node/watch.h"
#include "node/dispatch_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdlib.h>

#define F_PRIV 1u  /* privileged callers only */
#define F_NOTID 2u /* the transaction id is ignored */
#define F_WRITE 4u /* refused on the read-only socket */
#define F_LOG 8u   /* outside a transaction: a log entry, need not wait */
#define F_COST 16u /* a change: costs a guest one write of its credit */

static const struct {
	dispatch_fn *fn;
	unsigned int flags;
} handlers[WIRE_TYPE_COUNT] = {
	[WIRE_CONTROL] = {dispatch_control, F_PRIV | F_WRITE},
	[WIRE_DIRECTORY] = {dispatch_directory, 0},
	[WIRE_READ] = {dispatch_read, 0},
	[WIRE_GET_PERMS] = {dispatch_get_perms, 0},
	[WIRE_WATCH] = {dispatch_watch, F_NOTID},
	[WIRE_UNWATCH] = {dispatch_unwatch, F_NOTID},
	[WIRE_TRANSACTION_START] = {dispatch_transaction_start, 0},
	[WIRE_TRANSACTION_END] = {dispatch_transaction_end, F_COST},
	[WIRE_INTRODUCE] = {dispatch_introduce, F_PRIV | F_WRITE},
	[WIRE_RELEASE] = {dispatch_release, F_PRIV | F_WRITE},
	[WIRE_GET_DOMAIN_PATH] = {dispatch_get_domain_path, 0},
	[WIRE_WRITE] = {dispatch_write, F_WRITE | F_LOG | F_COST},
	[WIRE_MKDIR] = {dispatch_mkdir, F_WRITE | F_LOG | F_COST},
	[WIRE_RM] = {dispatch_rm, F_WRITE | F_LOG | F_COST},
	[WIRE_SET_PERMS] = {dispatch_set_perms, F_WRITE | F_LOG | F_COST},
	[WIRE_IS_DOMAIN_INTRODUCED] = {dispatch_is_domain_introduced, F_PRIV},
	[WIRE_RESUME] = {dispatch_resume, F_PRIV | F_WRITE},
	[WIRE_SET_TARGET] = {dispatch_set_target, F_PRIV | F_WRITE},
	[WIRE_RESET_WATCHES] = {dispatch_reset_watches, 0},
	[WIRE_DIRECTORY_PART] = {dispatch_directory_part, 0},
	[WIRE_GET_FEATURE] = {dispatch_get_feature, 0},
	[WIRE_SET_FEATURE] = {dispatch_set_feature, F_PRIV | F_WRITE},
	[WIRE_GET_QUOTA] = {dispatch_get_quota, F_PRIV},
	[WIRE_SET_QUOTA] = {dispatch_set_quota, F_PRIV | F_WRITE},
};

/*
 * A guest's write credit (XSA-206's idea, at the ring: an ingress
 * decision, so it never enters the log and costs no determinism). Each
 * change a guest sends costs one write; the credit refills at
 * cfg.guest_write_rate writes a second up to a burst of 10 seconds' worth;
 * a guest in debt is not read until it is out of it, so a flood slows
 * only the guest that floods. dom0 and sockets are not charged.
 */
#define CREDIT_BURST_S 10

static bool charged(const struct daemon *d, const struct conn *c)
{
	const struct conn_identity *id = conn_identity(c);

	return d->cfg.guest_write_rate && conn_is_ring(c) && !id->privileged;
}

static void credit_refill(const struct daemon *d, struct client *cl)
{
	uint64_t now = uv_now(d->loop);
	int64_t burst = (int64_t)d->cfg.guest_write_rate * 1000 *
			CREDIT_BURST_S;

	if (!cl->credit_started) {
		cl->credit_started = true;
		cl->credit_mwrites = burst;
	} else if (now > cl->credit_ms) {
		cl->credit_mwrites += (int64_t)(now - cl->credit_ms) *
				      d->cfg.guest_write_rate;
		if (cl->credit_mwrites > burst)
			cl->credit_mwrites = burst;
	}
	cl->credit_ms = now;
}

/* May c be answered right now? Not while one of its requests is in the log. */
static bool now(struct conn *c)
{
	return conn_async_count(c) == 0;
}

/* An error before the request is built. */
static enum conn_verdict early_error(struct conn *c, struct conn_req *r,
				     int err)
{
	if (!now(c))
		return CONN_WAIT;
	conn_reply_error(c, r, err);
	return CONN_DONE;
}

enum conn_verdict dispatch_error(struct request *q, int err)
{
	/* a transaction's local step that ran out of memory: ENOMEM, as
	 * outside the log nothing is replicated (node/store/store_err.h) */
	return early_error(q->c, q->r, store_err_wire(err));
}

enum conn_verdict dispatch_ok(struct request *q)
{
	return dispatch_reply(q, "OK", 3);
}

enum conn_verdict dispatch_reply(struct request *q, const void *payload,
				 size_t len)
{
	conn_reply(q->c, q->r, payload, len);
	return CONN_DONE;
}

char *dispatch_path(struct request *q, const char *arg)
{
	return caller_canonical(q->c, arg);
}

struct sm_origin dispatch_origin(struct request *q)
{
	return caller_origin(q->d, q->c, q->r, &q->who,
			     submit_next_seq(q->d));
}

/*
 * A request read again from a ring's journal by a restarted daemon: if
 * the log has applied it already, its result is the answer.
 */
static bool replayed_answer(struct daemon *d, struct conn *c,
			    struct conn_req *r, enum conn_verdict *v)
{
	uint64_t origin = STORE_RING_ORIGIN(conn_identity(c)->ring_id);
	int result = 0;

	switch (store_session_lookup(d->store, origin, r->seq, &result)) {
	case STORE_SEEN:
		if (!now(c)) {
			*v = CONN_WAIT;
			return true;
		}
		if (result)
			conn_reply_error(c, r, store_err_wire(result));
		else
			conn_reply(c, r, "OK", 3);
		*v = CONN_DONE;
		return true;
	case STORE_SEEN_FORGOTTEN:
		*v = early_error(c, r, -EIO);
		return true;
	default:
		return false;
	}
}

static enum conn_verdict dispatch_request(void *data, struct conn *c,
					  struct conn_req *r)
{
	struct request q = {.d = data, .c = c, .r = r};
	uint32_t type = r->hdr.type;
	enum conn_verdict v;
	unsigned int flags;

	q.id = conn_identity(c);
	if (type >= WIRE_TYPE_COUNT || !handlers[type].fn) {
		if (now(c))
			log_msg(7, "client sent unknown operation %u", type);
		return early_error(c, r, -ENOSYS);
	}
	flags = handlers[type].flags;
	if ((flags & F_PRIV) && !q.id->privileged)
		return early_error(c, r, -EACCES);
	if ((flags & F_WRITE) && q.id->readonly)
		return early_error(c, r, -EACCES);
	q.cl = client_of(c);
	if (!q.cl)
		return early_error(c, r, -ENOMEM);
	if (r->replayed && replayed_answer(q.d, c, r, &v))
		return v;
	if (!(flags & F_NOTID) && r->hdr.tx_id != 0) {
		q.tx = client_txn_find(q.cl, r->hdr.tx_id);
		if (!q.tx && q.id->restored)
			q.tx = dispatch_txn_resurrect(&q, r->hdr.tx_id);
		if (!q.tx)
			return early_error(c, r, -ENOENT);
	}
	if ((!(flags & F_LOG) || q.tx) && !now(c))
		return CONN_WAIT;
	if ((flags & F_COST) && charged(q.d, c)) {
		credit_refill(q.d, q.cl);
		q.cl->credit_mwrites -= 1000;
	}
	caller_of(q.d, c, &q.who);
	return handlers[type].fn(&q);
}

static void dispatch_closed(void *data, struct conn *c)
{
	struct daemon *d = data;

	watch_remove_conn(d->watches, c);
	client_close(c);
}

static void dispatch_trace(void *data, const struct conn *c, bool out,
			   const struct wire_hdr *h, const void *payload)
{
	struct daemon *d = data;

	trace_io(d->trace, c, out, h, payload);
}

/*
 * conn_handler.may_read: nothing new once stopping; a guest at its hard
 * memory quota is not read (domain_can_read()).
 */
static bool dispatch_may_read(void *data, struct conn *c)
{
	struct daemon *d = data;
	const struct conn_identity *id = conn_identity(c);
	uint32_t memory_quota;
	uint64_t nodes, mem;

	if (d->stopping)
		return false;
	if (id->privileged || !conn_is_ring(c))
		return true;
	if (charged(d, c)) {
		struct client *cl = conn_get_data(c);

		if (cl) {
			credit_refill(d, cl);
			if (cl->credit_mwrites < 0)
				return false; /* looked at again: domains_tick */
		}
	}
	memory_quota = caller_quotas(d, id->domid).store.memory;
	if (!memory_quota)
		return true;
	store_domain_usage(d->store, d->host, id->domid, &nodes, &mem);
	mem += conn_output_bytes(c) + watch_memory(d->watches, c) +
	       client_txn_memory(c);
	return mem < memory_quota;
}

void dispatch_handler(struct daemon *d, struct conn_handler *h)
{
	h->data = d;
	h->request = dispatch_request;
	h->closed = dispatch_closed;
	h->trace = dispatch_trace;
	h->log = log_cb;
	h->may_read = dispatch_may_read;
}
