/*
 * node/apply.c: committed log entries in, store mutations, watch events
 * and replies out.
 *
 * daemon_apply() runs on every member for every committed entry, in log
 * order. The store decides (deterministically); then this member fires the
 * watches of its own clients for its own host's tree, and, if the entry
 * came from here, answers the request that is waiting for it. Watch events
 * are queued before that reply, as cxenstored does.
 */
#include "node/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node/sm.h"

uint64_t daemon_next_seq(struct daemon *d)
{
	return d->next_seq++;
}

static void pending_unlink(struct pending *p)
{
	p->prev->next = p->next;
	p->next->prev = p->prev;
	p->next = p->prev = p;
}

static struct pending *pending_find(struct daemon *d, uint64_t seq)
{
	struct pending *p;

	/* Entries apply in submission order: the head is the usual hit. */
	for (p = d->pending.next; p != &d->pending; p = p->next)
		if (p->seq == seq)
			return p;
	return NULL;
}

static void answer(struct daemon *d, struct pending *p, int result)
{
	if (p->answered)
		return;
	p->answered = true;
	if (p->conn) {
		if (result)
			conn_reply_error(p->conn, &p->req->hdr, result);
		else
			conn_reply(p->conn, &p->req->hdr, "OK", 3);
		free(p->req);
		p->req = NULL;
		conn_async_done(p->conn);
	} else if (p->done) {
		p->done(d, result);
	}
}

static void submitted(void *arg, int status)
{
	struct pending *p = arg;
	struct daemon *d = p->d;

	if (status && !p->answered) {
		/*
		 * Not applied here. The entry may still commit later (a new
		 * leader keeps it); then it is a no-op for this request.
		 */
		log_msg(4, "log entry %" PRIu64 " not applied: %s", p->seq,
			strerror(-status));
		answer(d, p, -EIO);
	}
	pending_unlink(p);
	free(p);
}

int daemon_submit(struct daemon *d, struct conn *c, struct conn_req *r,
		  void *entry_buf, size_t entry_len, uint64_t seq,
		  void (*done)(struct daemon *d, int result))
{
	struct pending *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		free(entry_buf);
		return -ENOMEM;
	}
	p->d = d;
	p->seq = seq;
	p->conn = c;
	p->req = r;
	p->done = done;
	/* link before submitting: apply may run before repl_submit returns */
	p->next = &d->pending;
	p->prev = d->pending.prev;
	d->pending.prev->next = p;
	d->pending.prev = p;
	rc = repl_submit(d->repl, entry_buf, entry_len, submitted, p);
	free(entry_buf);
	if (rc) {
		pending_unlink(p);
		free(p);
	}
	return rc;
}

/* ---- Watch firing ------------------------------------------------------ */

struct fire_ctx {
	struct daemon *d;
	const struct store_event *ev;
};

/*
 * watch_permitted() of cxenstored: the old perms, else the node, else its
 * parent must be readable by the watcher. A node that no longer exists
 * (created and removed in one transaction) reaches nobody, not even a
 * privileged watcher, as in cxenstored.
 */
static bool permitted(const struct conn *c, const struct store_event *ev)
{
	const struct conn_identity *id = conn_identity(c);
	struct store_caller w = {.domid = id->domid,
				 .privileged = id->privileged,
				 .target = id->target};

	if (ev->path[0] == '@')
		return id->privileged ||
		       (ev->has_node && (store_perm_for(&w, ev->node.v,
							ev->node.n) &
					 STORE_PERM_READ));
	if (ev->has_old &&
	    (store_perm_for(&w, ev->old.v, ev->old.n) & STORE_PERM_READ))
		return true;
	if (!ev->has_node)
		return false;
	if (store_perm_for(&w, ev->node.v, ev->node.n) & STORE_PERM_READ)
		return true;
	return ev->has_parent &&
	       (store_perm_for(&w, ev->parent.v, ev->parent.n) &
		STORE_PERM_READ);
}

static void deliver(void *arg, struct conn *c, const char *report,
		    const char *token)
{
	struct fire_ctx *f = arg;

	if (permitted(c, f->ev))
		conn_event(c, report, token);
}

static void fire(struct daemon *d, const struct store_events *ev)
{
	size_t i;

	for (i = 0; i < ev->n; i++) {
		struct fire_ctx f = {d, &ev->v[i]};

		watch_fire(d->watches, ev->v[i].path, ev->v[i].exact, deliver,
			   &f);
	}
}

/* ---- Applying entries ------------------------------------------------ */

void daemon_apply(void *data, uint64_t index, const void *buf, size_t len)
{
	struct daemon *d = data;
	struct sm_result res;
	struct pending *p;

	sm_apply(d->store, index, buf, len, &res);
	if (res.fatal) {
		log_msg(2, "out of memory applying log entry %" PRIu64
			   ": stopping rather than diverge from the replicas",
			index);
		abort();
	}
	if (res.kind == SM_INVALID) {
		log_msg(3, "log entry %" PRIu64 " cannot be decoded: skipped",
			index);
		sm_result_clear(&res);
		return;
	}
	/* This member's clients watch this member's tree only. */
	if (!res.duplicate && strcmp(res.host, d->host) == 0)
		fire(d, &res.events);
	if (res.origin == d->member_id) {
		p = pending_find(d, res.seq);
		if (p)
			answer(d, p, res.result_known ? res.result : -EIO);
	}
	sm_result_clear(&res);
}
