/*
 * consensus/sm_entry.c: building log entries (wire/entry.proto) from
 * requests, for the daemon to submit through repl; sm_apply.c reads them
 * back.
 */
#include "consensus/sm.h"
#include "consensus/sm_int.h"

#include <errno.h>
#include <stdlib.h>

#include "wire/entry.pb-c.h"

struct enc {
	Xsr__Entry e;
	Xsr__Caller caller;
	Xsr__Quota quota;
};

static void enc_init(struct enc *x, const struct sm_origin *o)
{
	const struct store_caller *c = o->caller;

	xsr__entry__init(&x->e);
	xsr__caller__init(&x->caller);
	xsr__quota__init(&x->quota);
	x->e.version = 1;
	x->e.origin = o->member;
	x->e.seq = o->seq;
	x->e.caller = &x->caller;
	x->e.ring_id = o->ring_id;
	x->e.ring_seq = o->ring_seq;
	x->caller.host = (char *)o->host;
	if (c) {
		x->caller.domid = c->domid;
		x->caller.privileged = c->privileged;
		x->caller.has_target = c->target != STORE_NO_TARGET;
		x->caller.target = x->caller.has_target ? c->target : 0;
		x->quota.nodes = c->quota.nodes;
		x->quota.node_size = c->quota.node_size;
		x->quota.permissions = c->quota.permissions;
		x->quota.transaction_nodes = c->quota.transaction_nodes;
		x->quota.memory = c->quota.memory;
		x->quota.path_max = c->quota.path_max;
		x->caller.quota = &x->quota;
	} else {
		x->caller.privileged = true;
	}
}

static int pack(const Xsr__Entry *e, void **buf, size_t *len)
{
	size_t n = xsr__entry__get_packed_size(e);
	uint8_t *p = malloc(n ? n : 1);

	if (!p)
		return -ENOMEM;
	*len = xsr__entry__pack(e, p);
	*buf = p;
	return 0;
}

int sm_entry_write(const struct sm_origin *o, const char *path,
		   const void *value, size_t len, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpWrite op = XSR__OP_WRITE__INIT;

	enc_init(&x, o);
	op.path = (char *)path;
	op.value.data = (uint8_t *)value;
	op.value.len = len;
	x.e.op_case = XSR__ENTRY__OP_WRITE;
	x.e.write = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_mkdir(const struct sm_origin *o, const char *path, void **buf,
		   size_t *blen)
{
	struct enc x;
	Xsr__OpMkdir op = XSR__OP_MKDIR__INIT;

	enc_init(&x, o);
	op.path = (char *)path;
	x.e.op_case = XSR__ENTRY__OP_MKDIR;
	x.e.mkdir = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_rm(const struct sm_origin *o, const char *path, void **buf,
		size_t *blen)
{
	struct enc x;
	Xsr__OpRm op = XSR__OP_RM__INIT;

	enc_init(&x, o);
	op.path = (char *)path;
	x.e.op_case = XSR__ENTRY__OP_RM;
	x.e.rm = &op;
	return pack(&x.e, buf, blen);
}

/* Protobuf perms pointing into a caller-provided array. */
static Xsr__Perm **perms_out(const struct store_perm *p, uint32_t n,
			     Xsr__Perm *store)
{
	Xsr__Perm **v = malloc((n ? n : 1) * sizeof(*v));
	uint32_t i;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++) {
		xsr__perm__init(&store[i]);
		store[i].domid = p[i].domid;
		store[i].access = p[i].access;
		store[i].ignore = p[i].ignore;
		v[i] = &store[i];
	}
	return v;
}

int sm_entry_set_perms(const struct sm_origin *o, const char *path,
		       const struct store_perm *perms, uint32_t n, void **buf,
		       size_t *blen)
{
	struct enc x;
	Xsr__OpSetPerms op = XSR__OP_SET_PERMS__INIT;
	Xsr__Perm *ps = malloc((n ? n : 1) * sizeof(*ps));
	int rc;

	if (!ps)
		return -ENOMEM;
	enc_init(&x, o);
	op.path = (char *)path;
	op.perms = perms_out(perms, n, ps);
	if (!op.perms) {
		free(ps);
		return -ENOMEM;
	}
	op.n_perms = n;
	x.e.op_case = XSR__ENTRY__OP_SET_PERMS;
	x.e.set_perms = &op;
	rc = pack(&x.e, buf, blen);
	free(op.perms);
	free(ps);
	return rc;
}

int sm_entry_commit(const struct sm_origin *o, const struct store_commit *cm,
		    void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpCommit op = XSR__OP_COMMIT__INIT;
	Xsr__TxNode *nodes = NULL, **nodev = NULL;
	Xsr__TxDelta *deltas = NULL, **deltav = NULL;
	Xsr__Perm *perms = NULL;
	size_t i, nperms = 0, k = 0;
	int rc = -ENOMEM;

	enc_init(&x, o);
	for (i = 0; i < cm->n; i++)
		nperms += cm->nodes[i].nperms + cm->nodes[i].n_first_perms;
	nodes = calloc(cm->n ? cm->n : 1, sizeof(*nodes));
	nodev = calloc(cm->n ? cm->n : 1, sizeof(*nodev));
	deltas = calloc(cm->ndeltas ? cm->ndeltas : 1, sizeof(*deltas));
	deltav = calloc(cm->ndeltas ? cm->ndeltas : 1, sizeof(*deltav));
	perms = calloc(nperms ? nperms : 1, sizeof(*perms));
	if (!nodes || !nodev || !deltas || !deltav || !perms)
		goto out;
	for (i = 0; i < cm->n; i++) {
		const struct store_commit_node *s = &cm->nodes[i];
		Xsr__TxNode *t = &nodes[i];

		xsr__tx_node__init(t);
		t->path = (char *)s->path;
		t->existed = s->existed;
		t->generation = s->generation;
		t->modified = s->modified;
		t->exists = s->exists;
		t->value.data = (uint8_t *)s->value;
		t->value.len = s->value ? s->value_len : 0;
		t->children.data = (uint8_t *)s->children;
		t->children.len = s->children ? s->children_len : 0;
		t->fire_watch = s->fire_watch;
		t->watch_exact = s->watch_exact;
		t->perms = perms_out(s->perms, s->nperms, perms + k);
		k += s->nperms;
		t->n_perms = s->nperms;
		t->first_perms =
			perms_out(s->first_perms, s->n_first_perms, perms + k);
		k += s->n_first_perms;
		t->n_first_perms = s->n_first_perms;
		if (!t->perms || !t->first_perms)
			goto out;
		nodev[i] = t;
	}
	for (i = 0; i < cm->ndeltas; i++) {
		xsr__tx_delta__init(&deltas[i]);
		deltas[i].domid = cm->deltas[i].domid;
		deltas[i].nodes = cm->deltas[i].nodes;
		deltav[i] = &deltas[i];
	}
	op.nodes = nodev;
	op.n_nodes = cm->n;
	op.deltas = deltav;
	op.n_deltas = cm->ndeltas;
	op.node_created = cm->node_created;
	op.failed = cm->failed;
	op.existence_only = cm->existence_only;
	if (cm->existence_only)
		x.e.version = ENTRY_VERSION_EXISTENCE_ONLY;
	x.e.op_case = XSR__ENTRY__OP_COMMIT;
	x.e.commit = &op;
	rc = pack(&x.e, buf, blen);
out:
	for (i = 0; nodes && i < cm->n; i++) {
		free(nodes[i].perms);
		free(nodes[i].first_perms);
	}
	free(nodes);
	free(nodev);
	free(deltas);
	free(deltav);
	free(perms);
	return rc;
}

static Xsr__Member *member_out(const struct store_member *m, Xsr__Member *pm)
{
	if (!m)
		return NULL;
	xsr__member__init(pm);
	pm->id = m->id;
	pm->name = m->name;
	pm->raft_address = m->raft_address;
	pm->peer_address = m->peer_address;
	return pm;
}

int sm_entry_host_init(const struct sm_origin *o,
		       const struct store_member *m, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpHostInit op = XSR__OP_HOST_INIT__INIT;
	Xsr__Member pm;

	enc_init(&x, o);
	op.member = member_out(m, &pm);
	x.e.op_case = XSR__ENTRY__OP_HOST_INIT;
	x.e.host_init = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_member(const struct sm_origin *o, const struct store_member *m,
		    bool remove, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpMember op = XSR__OP_MEMBER__INIT;
	Xsr__Member pm;

	enc_init(&x, o);
	op.member = member_out(m, &pm);
	op.remove = remove;
	x.e.op_case = XSR__ENTRY__OP_MEMBER;
	x.e.member = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_verify(const struct sm_origin *o, uint64_t nonce, void **buf,
		    size_t *blen)
{
	struct enc x;
	Xsr__OpVerify op = XSR__OP_VERIFY__INIT;

	enc_init(&x, o);
	op.nonce = nonce;
	x.e.op_case = XSR__ENTRY__OP_VERIFY;
	x.e.verify = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_noop(const struct sm_origin *o, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpNoop op = XSR__OP_NOOP__INIT;

	enc_init(&x, o);
	x.e.op_case = XSR__ENTRY__OP_NOOP;
	x.e.noop = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_introduce(const struct sm_origin *o, uint32_t domid,
		       uint64_t mfn, uint32_t port, bool fire_event,
		       bool inherit, uint32_t max_nodes, void **buf,
		       size_t *blen)
{
	struct enc x;
	Xsr__OpIntroduce op = XSR__OP_INTRODUCE__INIT;

	enc_init(&x, o);
	op.domid = domid;
	op.mfn = mfn;
	op.port = port;
	op.fire_event = fire_event;
	op.inherit = inherit;
	op.max_nodes = inherit ? max_nodes : 0;
	if (inherit)
		x.e.version = ENTRY_VERSION_INHERIT;
	x.e.op_case = XSR__ENTRY__OP_INTRODUCE;
	x.e.introduce = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_resume(const struct sm_origin *o, uint32_t domid, void **buf,
		    size_t *blen)
{
	struct enc x;
	Xsr__OpResume op = XSR__OP_RESUME__INIT;

	enc_init(&x, o);
	op.domid = domid;
	x.e.version = ENTRY_VERSION_INHERIT;
	x.e.op_case = XSR__ENTRY__OP_RESUME;
	x.e.resume = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_domain_gone(const struct sm_origin *o, uint32_t domid,
			 void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpDomainGone op = XSR__OP_DOMAIN_GONE__INIT;

	enc_init(&x, o);
	op.domid = domid;
	x.e.op_case = XSR__ENTRY__OP_DOMAIN_GONE;
	x.e.domain_gone = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_set_target(const struct sm_origin *o, uint32_t domid,
			uint32_t target, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpSetTarget op = XSR__OP_SET_TARGET__INIT;

	enc_init(&x, o);
	op.domid = domid;
	op.target = target;
	x.e.op_case = XSR__ENTRY__OP_SET_TARGET;
	x.e.set_target = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_watch(const struct sm_origin *o, uint32_t domid,
		   const char *path, const char *token, uint32_t max_watches,
		   bool remove, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpWatch op = XSR__OP_WATCH__INIT;

	enc_init(&x, o);
	op.domid = domid;
	op.path = (char *)path;
	op.token = (char *)token;
	op.max_watches = max_watches;
	op.remove = remove;
	x.e.op_case = XSR__ENTRY__OP_WATCH;
	x.e.watch = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_reset_watches(const struct sm_origin *o, uint32_t domid,
			   void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpResetWatches op = XSR__OP_RESET_WATCHES__INIT;

	enc_init(&x, o);
	op.domid = domid;
	x.e.op_case = XSR__ENTRY__OP_RESET_WATCHES;
	x.e.reset_watches = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_ring_reset(const struct sm_origin *o, uint32_t domid,
			uint32_t error, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpRingReset op = XSR__OP_RING_RESET__INIT;

	enc_init(&x, o);
	op.domid = domid;
	op.error = error;
	x.e.op_case = XSR__ENTRY__OP_RING_RESET;
	x.e.ring_reset = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_move_domain(const struct sm_origin *o,
			 const struct store_move *m, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpMoveDomain op = XSR__OP_MOVE_DOMAIN__INIT;

	enc_init(&x, o);
	op.src_host = (char *)m->src_host;
	op.src_domid = m->src_domid;
	op.dst_host = (char *)m->dst_host;
	op.dst_domid = m->dst_domid;
	op.subtrees = (char **)m->subtrees;
	op.n_subtrees = m->nsubtrees;
	op.merge = m->merge;
	op.max_nodes = m->max_nodes;
	x.e.op_case = XSR__ENTRY__OP_MOVE_DOMAIN;
	x.e.move_domain = &op;
	return pack(&x.e, buf, blen);
}

int sm_entry_quota(const struct sm_origin *o, uint32_t domid,
		   unsigned int item, uint32_t value, void **buf,
		   size_t *blen)
{
	struct enc x;
	Xsr__OpQuota op = XSR__OP_QUOTA__INIT;

	enc_init(&x, o);
	x.e.version = ENTRY_VERSION_QUOTA;
	op.host_wide = domid == STORE_QUOTA_HOST;
	op.domid = op.host_wide ? 0 : domid;
	op.item = item;
	op.value = value;
	x.e.op_case = XSR__ENTRY__OP_QUOTA;
	x.e.quota = &op;
	return pack(&x.e, buf, blen);
}
