/*
 * consensus/sm_apply.c: applying a log entry to the store, the replicated
 * state machine's entry point (sm_apply), for the daemon and the consensus
 * tests; entries are built by sm_entry.c.
 */
#include "consensus/sm.h"
#include "consensus/sm_int.h"
#include "node/store/store_err.h"
#include "wire/xs_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/entry.pb-c.h"

#define SM_PATH_MAX_LIMIT 2048u

/*
 * Every error below is a result, the same on every replica, except
 * -STORE_ELOCAL (node/store/store_err.h): memory ran out here. sm_apply() then
 * records nothing and reports out->fatal; the caller stops.
 */

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
	/* Xen's XENSTORE_REL_PATH_MAX: the store's path buffers hold no
	 * more, whatever limit a member put into the entry */
	if (q.path_max > SM_PATH_MAX_LIMIT)
		q.path_max = SM_PATH_MAX_LIMIT;
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

static int apply_commit(struct store *st, const char *host,
			const struct store_caller *c, uint64_t index,
			const Xsr__OpCommit *op, struct store_events *ev)
{
	struct store_commit cm;
	struct store_perm **owned;
	size_t i, k = 0;
	int rc = -STORE_ELOCAL;

	memset(&cm, 0, sizeof(cm));
	cm.n = op->n_nodes;
	cm.ndeltas = op->n_deltas;
	cm.node_created = op->node_created;
	cm.failed = op->failed;
	cm.existence_only = op->existence_only;
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
	rc = store_commit(st, host, c, index, &cm, ev);
out:
	for (i = 0; owned && i < k; i++)
		free(owned[i]);
	free(owned);
	free(cm.nodes);
	free(cm.deltas);
	return rc;
}

/* Record a member; a host announcing itself must use its tree's name. */
/* A host name as --host-name takes it: [A-Za-z0-9._-], 1 to 64. */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

#define ADDRESS_MAX 255

static int member_in(struct store *st, const Xsr__Member *m, const char *host)
{
	if (!m->name || !host_name_ok(m->name) || m->id == 0 ||
	    (host && strcmp(host, m->name) != 0) ||
	    (m->raft_address && strlen(m->raft_address) > ADDRESS_MAX) ||
	    (m->peer_address && strlen(m->peer_address) > ADDRESS_MAX))
		return -EINVAL;
	return store_member_set(st, m->id, m->name, m->raft_address,
				m->peer_address);
}

/* The registry changes; out says what for the daemon. */
static int apply_domain(struct store *st, const Xsr__Entry *e,
			uint64_t index, struct sm_result *out)
{
	const char *host = e->caller->host;

	switch (e->op_case) {
	case XSR__ENTRY__OP_INTRODUCE: {
		bool is_new;
		int rc;

		out->dom_op = SM_DOM_INTRODUCE;
		out->domid = e->introduce->domid;
		if (out->domid >= 0x7FF0 || e->introduce->port == 0)
			return -EINVAL;
		is_new = !store_domain_get(st, host, out->domid);
		rc = store_domain_introduce(st, host, out->domid,
					    e->introduce->mfn,
					    e->introduce->port, index,
					    e->introduce->fire_event,
					    &out->events);
		/* the copy never fails the INTRODUCE: what it decided is
		 * the result's to say */
		if (!rc && is_new && e->introduce->inherit) {
			out->inherit_tried = true;
			out->inherit_rc = store_domain_inherit(
			    st, host, out->domid, e->introduce->max_nodes,
			    index, &out->events, &out->inherited);
			if (out->inherit_rc == -STORE_ELOCAL)
				return -STORE_ELOCAL;
		}
		return rc;
	}
	case XSR__ENTRY__OP_RESUME:
		out->dom_op = SM_DOM_RESUME;
		out->domid = e->resume->domid;
		return store_domain_resume(st, host, out->domid);
	case XSR__ENTRY__OP_DOMAIN_GONE:
		out->dom_op = SM_DOM_GONE;
		out->domid = e->domain_gone->domid;
		return store_domain_gone(st, host, out->domid, index,
					 &out->events);
	case XSR__ENTRY__OP_SET_TARGET:
		out->dom_op = SM_DOM_SET_TARGET;
		out->domid = e->set_target->domid;
		return store_domain_set_target(st, host, out->domid,
					       e->set_target->target);
	case XSR__ENTRY__OP_WATCH:
		out->domid = e->watch->domid;
		/* path and token as one request carries them (WATCH: the
		 * path as the guest gave it) */
		if (!e->watch->path || !e->watch->token ||
		    strlen(e->watch->path) + strlen(e->watch->token) + 2 >
			    WIRE_PAYLOAD_MAX)
			return -EINVAL;
		out->watch_path = strdup(e->watch->path);
		out->watch_token = strdup(e->watch->token);
		if (!out->watch_path || !out->watch_token)
			return -STORE_ELOCAL;
		if (e->watch->remove) {
			out->dom_op = SM_DOM_UNWATCH;
			return store_domain_unwatch(st, host, out->domid,
						    e->watch->path,
						    e->watch->token);
		}
		out->dom_op = SM_DOM_WATCH;
		return store_domain_watch(st, host, out->domid,
					  e->watch->path, e->watch->token,
					  e->watch->max_watches);
	case XSR__ENTRY__OP_RESET_WATCHES:
		out->dom_op = SM_DOM_RESET_WATCHES;
		out->domid = e->reset_watches->domid;
		return store_domain_reset_watches(st, host, out->domid);
	case XSR__ENTRY__OP_MOVE_DOMAIN: {
		const Xsr__OpMoveDomain *mv = e->move_domain;
		struct store_move m = {
			.src_host = mv->src_host,
			.dst_host = mv->dst_host,
			.src_domid = mv->src_domid,
			.dst_domid = mv->dst_domid,
			.subtrees = (const char *const *)mv->subtrees,
			.nsubtrees = mv->n_subtrees,
			.merge = mv->merge,
			.max_nodes = mv->max_nodes,
		};

		out->dom_op = SM_DOM_MOVE;
		out->domid = mv->src_domid;
		out->domid2 = mv->dst_domid;
		if (!mv->src_host || !mv->dst_host ||
		    strlen(mv->src_host) >= sizeof(out->host) ||
		    strlen(mv->dst_host) >= sizeof(out->host2))
			return -EINVAL;
		strcpy(out->host, mv->src_host);
		strcpy(out->host2, mv->dst_host);
		return store_domain_move(st, &m, index, &out->events,
					 &out->events2);
	}
	case XSR__ENTRY__OP_RING_RESET:
		out->dom_op = SM_DOM_RING_RESET;
		out->domid = e->ring_reset->domid;
		return store_domain_ring_reset(st, host, out->domid,
					       e->ring_reset->error, index);
	default:
		return -EINVAL;
	}
}

static int apply_op(struct store *st, const Xsr__Entry *e, uint64_t index,
		    struct store_events *ev)
{
	const char *host = e->caller->host;
	struct store_caller c;
	struct store_perm *p;
	int rc;

	caller_from(e->caller, &c);
	switch (e->op_case) {
	case XSR__ENTRY__OP_HOST_INIT:
		/* idempotent: a member that asks twice (it restarted before
		 * its first entry applied) finds its tree there */
		rc = store_host_init(st, host, index);
		if (rc == -EEXIST)
			rc = 0;
		if (!rc && e->host_init->member)
			rc = member_in(st, e->host_init->member, host);
		return rc;
	case XSR__ENTRY__OP_MEMBER:
		if (!e->member->member)
			return -EINVAL;
		if (e->member->remove)
			return store_member_remove(st, e->member->member->id);
		return member_in(st, e->member->member, NULL);
	case XSR__ENTRY__OP_VERIFY:
	case XSR__ENTRY__OP_NOOP:
		return 0;
	case XSR__ENTRY__OP_WRITE:
		/* no more than one request could carry (xs_wire.h); the
		 * path, made absolute, is the store's to check */
		if (!e->write->path || e->write->value.len > WIRE_PAYLOAD_MAX)
			return -EINVAL;
		return store_write(st, host, NULL, &c, index,
				   e->write->path, e->write->value.data,
				   e->write->value.len, ev);
	case XSR__ENTRY__OP_MKDIR:
		return store_mkdir(st, host, NULL, &c, index,
				   e->mkdir->path, ev);
	case XSR__ENTRY__OP_RM:
		return store_rm(st, host, NULL, &c, index, e->rm->path,
				ev);
	case XSR__ENTRY__OP_SET_PERMS:
		/* each entry of a request takes at least 3 bytes ("r5\0") */
		if (e->set_perms->n_perms > WIRE_PAYLOAD_MAX / 3)
			return -EINVAL;
		p = perms_in(e->set_perms->perms, e->set_perms->n_perms);
		if (!p)
			return -STORE_ELOCAL;
		rc = store_set_perms(st, host, NULL, &c, index,
				     e->set_perms->path, p,
				     (uint32_t)e->set_perms->n_perms, ev);
		free(p);
		return rc;
	case XSR__ENTRY__OP_COMMIT:
		return apply_commit(st, host, &c, index, e->commit, ev);
	case XSR__ENTRY__OP_QUOTA:
		/* dispatch refuses others already (F_PRIV): a second line */
		if (!c.privileged)
			return -EACCES;
		return store_quota_set(st, host,
				       e->quota->host_wide ? STORE_QUOTA_HOST
							   : e->quota->domid,
				       e->quota->item, e->quota->value);
	default:
		return -EINVAL;
	}
}

static enum sm_kind kind_of(const Xsr__Entry *e)
{
	switch (e->op_case) {
	case XSR__ENTRY__OP_HOST_INIT:
		return SM_HOST_INIT;
	case XSR__ENTRY__OP_MEMBER:
		return SM_MEMBER;
	case XSR__ENTRY__OP_VERIFY:
		return SM_VERIFY;
	case XSR__ENTRY__OP_NOOP:
		return SM_NOOP;
	case XSR__ENTRY__OP_INTRODUCE:
	case XSR__ENTRY__OP_DOMAIN_GONE:
	case XSR__ENTRY__OP_SET_TARGET:
	case XSR__ENTRY__OP_WATCH:
	case XSR__ENTRY__OP_RESET_WATCHES:
	case XSR__ENTRY__OP_RING_RESET:
	case XSR__ENTRY__OP_MOVE_DOMAIN:
	case XSR__ENTRY__OP_RESUME:
		return SM_DOMAIN;
	default:
		return SM_OP;
	}
}

/* Is e's ring session the current one of its domain? */
static bool ring_current(const struct store *st, const Xsr__Entry *e)
{
	const struct store_domain *d =
		store_domain_get(st, e->caller->host, e->caller->domid);

	return d && d->ring_id == e->ring_id;
}

/* Was e's ring request applied already? (Then out says how it went.) */
static bool ring_seen(const struct store *st, const Xsr__Entry *e,
		      struct sm_result *out)
{
	int rc = 0;

	switch (store_session_lookup(st, STORE_RING_ORIGIN(e->ring_id),
				     e->ring_seq, &rc)) {
	case STORE_SEEN:
		out->duplicate = true;
		out->result_known = true;
		out->result = rc;
		return true;
	case STORE_SEEN_FORGOTTEN:
		out->duplicate = true;
		return true;
	default:
		return false;
	}
}

/* What an entry does, for the line that says what failed. */
static const char *op_name(const Xsr__Entry *e)
{
	switch (e->op_case) {
	case XSR__ENTRY__OP_WRITE:
		return "write";
	case XSR__ENTRY__OP_MKDIR:
		return "mkdir";
	case XSR__ENTRY__OP_RM:
		return "rm";
	case XSR__ENTRY__OP_SET_PERMS:
		return "set_perms";
	case XSR__ENTRY__OP_COMMIT:
		return "commit";
	case XSR__ENTRY__OP_HOST_INIT:
		return "host_init";
	case XSR__ENTRY__OP_MEMBER:
		return "member";
	case XSR__ENTRY__OP_INTRODUCE:
		return "introduce";
	case XSR__ENTRY__OP_DOMAIN_GONE:
		return "domain_gone";
	case XSR__ENTRY__OP_SET_TARGET:
		return "set_target";
	case XSR__ENTRY__OP_WATCH:
		return "watch";
	case XSR__ENTRY__OP_RESET_WATCHES:
		return "reset_watches";
	case XSR__ENTRY__OP_RING_RESET:
		return "ring_reset";
	case XSR__ENTRY__OP_MOVE_DOMAIN:
		return "move_domain";
	case XSR__ENTRY__OP_QUOTA:
		return "quota";
	case XSR__ENTRY__OP_RESUME:
		return "resume";
	default:
		return "entry";
	}
}

/*
 * protobuf-c's allocator for unpacking, remembering whether it failed: an
 * entry that did not decode because memory ran out is not an undecodable
 * entry (every replica skips those), it must be decoded again later.
 */
struct unpack_heap {
	ProtobufCAllocator a;
	bool failed;
};

static void *unpack_alloc(void *data, size_t size)
{
	struct unpack_heap *h = data;
	void *p = malloc(size);

	if (!p)
		h->failed = true;
	return p;
}

static void unpack_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/* Stop rather than record: what failed (a static string) goes in out. */
static void local_failure(struct sm_result *out, const char *what)
{
	out->fatal = true;
	out->fatal_what = what;
	out->result_known = false;
	out->result = 0;
}

/* Apply a new entry and record its result in the session table. */
static void apply_new(struct store *st, const Xsr__Entry *e, uint64_t index,
		      struct sm_result *out)
{
	int rc;

	if (e->ring_id && ring_seen(st, e, out)) {
		/* read again from a ring by a restarted daemon */
		rc = out->result_known ? out->result : -EIO;
	} else {
		rc = e->ring_id && !ring_current(st, e) ? -EIO
		     : out->kind == SM_DOMAIN ? apply_domain(st, e, index, out)
					      : apply_op(st, e, index,
							 &out->events);
		if (store_err_is_local(rc)) {
			local_failure(out, op_name(e));
			return;
		}
		/*
		 * Without the records a copy of this entry would apply
		 * again here and nowhere else: replicas would diverge.
		 */
		if (e->ring_id && ring_current(st, e) &&
		    store_session_record(st, STORE_RING_ORIGIN(e->ring_id),
					 e->ring_seq, rc)) {
			local_failure(out, "session record");
			return;
		}
		out->result_known = true;
		out->result = rc;
	}
	if (store_session_record(st, e->origin, e->seq, rc))
		local_failure(out, "session record");
}

void sm_apply(struct store *st, uint64_t index, const void *buf, size_t len,
	      struct sm_result *out)
{
	struct unpack_heap heap = {
		.a = {.alloc = unpack_alloc, .free = unpack_free},
	};
	Xsr__Entry *e;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	store_events_init(&out->events);
	store_events_init(&out->events2);
	store_set_applied_index(st, index);
	heap.a.allocator_data = &heap;
	e = xsr__entry__unpack(&heap.a, len, buf);
	if (!e && heap.failed) {
		local_failure(out, "decoding");
		return;
	}
	/* A newer daemon wrote it: applying it here as something else (or
	 * skipping it) would diverge from the peers that know it. */
	if (e && e->version > ENTRY_VERSION) {
		xsr__entry__free_unpacked(e, &heap.a);
		local_failure(out, "a newer entry schema");
		out->fatal_newer = true;
		return;
	}
	/*
	 * Every replica skips what it cannot decode alike. Sequence numbers
	 * count from 1 (submit.c, a ring's requests): the session table
	 * keeps 0 for "no result", so a seq 0 was recorded as applied and
	 * then left out of snapshots, and a replica restored from one
	 * would apply a copy again where the others do not (found by
	 * tests/fuzz/fuzz_apply.c's snapshot round trip).
	 */
	if (!e || !e->caller || !e->caller->host ||
	    strlen(e->caller->host) >= sizeof(out->host) || e->seq == 0 ||
	    (e->ring_id && e->ring_seq == 0)) {
		out->kind = SM_INVALID;
		if (e)
			xsr__entry__free_unpacked(e, &heap.a);
		return;
	}
	out->kind = kind_of(e);
	out->origin = e->origin;
	out->seq = e->seq;
	strcpy(out->host, e->caller->host);
	if (e->op_case == XSR__ENTRY__OP_VERIFY)
		out->verify_nonce = e->verify->nonce;
	switch (store_session_lookup(st, e->origin, e->seq, &rc)) {
	case STORE_SEEN:
		out->duplicate = true;
		out->result_known = true;
		out->result = rc;
		break;
	case STORE_SEEN_FORGOTTEN:
		out->duplicate = true;
		break;
	case STORE_NEW:
		apply_new(st, e, index, out);
		break;
	}
	xsr__entry__free_unpacked(e, &heap.a);
}

void sm_result_clear(struct sm_result *out)
{
	store_events_clear(&out->events);
	store_events_clear(&out->events2);
	free(out->watch_path);
	free(out->watch_token);
	out->watch_path = out->watch_token = NULL;
}

/* The path a single-node operation names (NULL for the others). */
static const char *op_path(const Xsr__Entry *e)
{
	switch (e->op_case) {
	case XSR__ENTRY__OP_WRITE:
		return e->write->path;
	case XSR__ENTRY__OP_MKDIR:
		return e->mkdir->path;
	case XSR__ENTRY__OP_RM:
		return e->rm->path;
	case XSR__ENTRY__OP_SET_PERMS:
		return e->set_perms->path;
	default:
		return NULL;
	}
}

/* "write /path by domain N" and the like, for log lines. */
static void describe(const Xsr__Entry *e, char *out, size_t n)
{
	const char *op = "an operation", *path = op_path(e);

	switch (e->op_case) {
	case XSR__ENTRY__OP_WRITE:
		op = "write";
		break;
	case XSR__ENTRY__OP_MKDIR:
		op = "mkdir";
		break;
	case XSR__ENTRY__OP_RM:
		op = "rm";
		break;
	case XSR__ENTRY__OP_SET_PERMS:
		op = "set-perms";
		break;
	case XSR__ENTRY__OP_COMMIT:
		op = "transaction commit";
		break;
	case XSR__ENTRY__OP_INTRODUCE:
		op = "introduce";
		break;
	case XSR__ENTRY__OP_WATCH:
		op = "guest watch";
		break;
	case XSR__ENTRY__OP_QUOTA:
		op = "quota setting";
		break;
	case XSR__ENTRY__OP_MOVE_DOMAIN:
		op = "domain move";
		break;
	default:
		break;
	}
	snprintf(out, n, "%s%s%s by domain %u", op, path ? " " : "",
		 path ? path : "", e->caller ? e->caller->domid : 0);
}

int sm_entry_peek(const void *buf, size_t len, struct sm_peek *out)
{
	Xsr__Entry *e = xsr__entry__unpack(NULL, len, buf);
	const Xsr__Member *m = NULL;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!e)
		return -EINVAL;
	if (e->caller && e->caller->host &&
	    strlen(e->caller->host) < sizeof(out->host)) {
		out->origin = e->origin;
		strcpy(out->host, e->caller->host);
		out->move = e->op_case == XSR__ENTRY__OP_MOVE_DOMAIN;
		out->noop = e->op_case == XSR__ENTRY__OP_NOOP;
		out->host_init = e->op_case == XSR__ENTRY__OP_HOST_INIT;
		out->member = e->op_case == XSR__ENTRY__OP_MEMBER;
		if (out->member)
			m = e->member->member;
		else if (out->host_init)
			m = e->host_init->member;
		rc = 0;
		describe(e, out->what, sizeof(out->what));
		if (m) {
			out->member_id = m->id;
			if (!m->name || strlen(m->name) >= sizeof(out->member_name))
				rc = -EINVAL;
			else
				strcpy(out->member_name, m->name);
		}
	}
	xsr__entry__free_unpacked(e, NULL);
	return rc;
}

int sm_entry_paths(const void *buf, size_t len,
		   int (*fn)(void *arg, const char *path, bool exact),
		   void *arg)
{
	Xsr__Entry *e = xsr__entry__unpack(NULL, len, buf);
	const char *path;
	size_t i;
	int rc = 0;

	if (!e)
		return -EINVAL;
	path = op_path(e);
	if (path)
		rc = fn(arg, path, false);
	else if (e->op_case == XSR__ENTRY__OP_COMMIT)
		for (i = 0; !rc && i < e->commit->n_nodes; i++)
			if (e->commit->nodes[i]->fire_watch &&
			    e->commit->nodes[i]->path)
				rc = fn(arg, e->commit->nodes[i]->path,
					e->commit->nodes[i]->watch_exact);
	xsr__entry__free_unpacked(e, NULL);
	return rc;
}
