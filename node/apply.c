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

#include "wire/entry.pb-c.h"

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

static void caller_from(const Xsr__Caller *pc, struct store_caller *c)
{
	struct store_quota q = STORE_QUOTA_INIT;

	memset(c, 0, sizeof(*c));
	c->domid = pc->domid;
	c->privileged = pc->privileged;
	c->target = pc->has_target ? pc->target : STORE_NO_TARGET;
	if (pc->quota) {
		q.nodes = pc->quota->nodes;
		q.node_size = pc->quota->node_size;
		q.permissions = pc->quota->permissions;
		q.transaction_nodes = pc->quota->transaction_nodes;
		q.memory = pc->quota->memory;
		q.path_max = pc->quota->path_max;
	}
	c->quota = q;
}

static struct store_perm *perms_in(Xsr__Perm **v, size_t n)
{
	struct store_perm *p = calloc(n ? n : 1, sizeof(*p));
	size_t i;

	if (!p)
		return NULL;
	for (i = 0; i < n; i++) {
		p[i].domid = v[i]->domid;
		p[i].access = (uint8_t)(v[i]->access & 3);
		p[i].ignore = v[i]->ignore;
	}
	return p;
}

static int apply_commit(struct daemon *d, const char *host,
			const struct store_caller *c, uint64_t index,
			const Xsr__OpCommit *op, struct store_events *ev)
{
	struct store_commit cm;
	struct store_perm **owned;
	size_t i, k = 0;
	int rc = -ENOMEM;

	memset(&cm, 0, sizeof(cm));
	cm.n = op->n_nodes;
	cm.ndeltas = op->n_deltas;
	cm.node_created = op->node_created;
	cm.failed = op->failed;
	cm.nodes = calloc(cm.n ? cm.n : 1, sizeof(*cm.nodes));
	cm.deltas = calloc(cm.ndeltas ? cm.ndeltas : 1, sizeof(*cm.deltas));
	owned = calloc(2 * (cm.n ? cm.n : 1), sizeof(*owned));
	if (!cm.nodes || !cm.deltas || !owned)
		goto out;
	for (i = 0; i < cm.n; i++) {
		const Xsr__TxNode *t = op->nodes[i];
		struct store_commit_node *s = &cm.nodes[i];

		s->path = t->path;
		s->existed = t->existed;
		s->generation = t->generation;
		s->modified = t->modified;
		s->exists = t->exists;
		s->value = (const char *)t->value.data;
		s->value_len = t->value.len;
		s->children = (const char *)t->children.data;
		s->children_len = t->children.len;
		s->fire_watch = t->fire_watch;
		s->watch_exact = t->watch_exact;
		s->perms = owned[k++] = perms_in(t->perms, t->n_perms);
		s->nperms = (uint32_t)t->n_perms;
		s->first_perms = owned[k++] =
			perms_in(t->first_perms, t->n_first_perms);
		s->n_first_perms = (uint32_t)t->n_first_perms;
		if (!s->perms || !s->first_perms)
			goto out;
		if (s->path[0] != '/' ||
		    (s->children_len &&
		     s->children[s->children_len - 1] != '\0')) {
			rc = -EINVAL;
			goto out;
		}
	}
	for (i = 0; i < cm.ndeltas; i++) {
		cm.deltas[i].domid = op->deltas[i]->domid;
		cm.deltas[i].nodes = op->deltas[i]->nodes;
	}
	rc = store_commit(d->store, host, c, index, &cm, ev);
out:
	for (i = 0; owned && i < k; i++)
		free(owned[i]);
	free(owned);
	free(cm.nodes);
	free(cm.deltas);
	return rc;
}

static int apply_op(struct daemon *d, const Xsr__Entry *e, uint64_t index,
		    struct store_events *ev)
{
	const char *host = e->caller->host;
	struct store_caller c;
	struct store_perm *p;
	int rc;

	caller_from(e->caller, &c);
	switch (e->op_case) {
	case XSR__ENTRY__OP_HOST_INIT:
		return store_host_init(d->store, host, index);
	case XSR__ENTRY__OP_WRITE:
		return store_write(d->store, host, NULL, &c, index,
				   e->write->path, e->write->value.data,
				   e->write->value.len, ev);
	case XSR__ENTRY__OP_MKDIR:
		return store_mkdir(d->store, host, NULL, &c, index,
				   e->mkdir->path, ev);
	case XSR__ENTRY__OP_RM:
		return store_rm(d->store, host, NULL, &c, index, e->rm->path,
				ev);
	case XSR__ENTRY__OP_SET_PERMS:
		p = perms_in(e->set_perms->perms, e->set_perms->n_perms);
		if (!p)
			return -ENOMEM;
		rc = store_set_perms(d->store, host, NULL, &c, index,
				     e->set_perms->path, p,
				     (uint32_t)e->set_perms->n_perms, ev);
		free(p);
		return rc;
	case XSR__ENTRY__OP_COMMIT:
		return apply_commit(d, host, &c, index, e->commit, ev);
	default:
		return -EINVAL;
	}
}

void daemon_apply(void *data, uint64_t index, const void *buf, size_t len)
{
	struct daemon *d = data;
	struct store_events ev;
	struct pending *p;
	Xsr__Entry *e;
	bool dup;
	int rc = 0;

	e = xsr__entry__unpack(NULL, len, buf);
	if (!e || !e->caller || !e->caller->host) {
		/* Every replica skips it alike: the state stays identical. */
		log_msg(3, "log entry %" PRIu64 " cannot be decoded: skipped",
			index);
		if (e)
			xsr__entry__free_unpacked(e, NULL);
		store_set_applied_index(d->store, index);
		return;
	}
	if (e->version > 1) {
		log_msg(3,
			"log entry %" PRIu64
			" has version %u, newer than this daemon: skipped",
			index, e->version);
		xsr__entry__free_unpacked(e, NULL);
		store_set_applied_index(d->store, index);
		return;
	}
	store_events_init(&ev);
	dup = store_session_seen(d->store, e->origin, e->seq, &rc);
	if (!dup) {
		rc = apply_op(d, e, index, &ev);
		if (store_session_record(d->store, e->origin, e->seq, rc))
			log_msg(3, "out of memory recording session %" PRIu64,
				e->origin);
	}
	store_set_applied_index(d->store, index);
	if (!dup && strcmp(e->caller->host, d->host) == 0)
		fire(d, &ev);
	if (e->origin == d->member_id) {
		p = pending_find(d, e->seq);
		if (p)
			answer(d, p, rc);
	}
	store_events_clear(&ev);
	xsr__entry__free_unpacked(e, NULL);
}
