/*
 * node/entry.c: building log entries (wire/entry.proto) from requests.
 * Decoding happens in apply.c, where entries are applied.
 */
#include "node/daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/entry.pb-c.h"

#define ENTRY_VERSION 1

struct enc {
	Xsr__Entry e;
	Xsr__Caller caller;
	Xsr__Quota quota;
};

static void enc_init(struct enc *x, struct daemon *d,
		     const struct store_caller *c, uint64_t seq)
{
	xsr__entry__init(&x->e);
	xsr__caller__init(&x->caller);
	xsr__quota__init(&x->quota);
	x->e.version = ENTRY_VERSION;
	x->e.origin = d->member_id;
	x->e.seq = seq;
	x->e.caller = &x->caller;
	x->caller.host = d->host;
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

int entry_write(struct daemon *d, const struct store_caller *c, uint64_t seq,
		const char *path, const void *value, size_t len, void **buf,
		size_t *blen)
{
	struct enc x;
	Xsr__OpWrite op = XSR__OP_WRITE__INIT;

	enc_init(&x, d, c, seq);
	op.path = (char *)path;
	op.value.data = (uint8_t *)value;
	op.value.len = len;
	x.e.op_case = XSR__ENTRY__OP_WRITE;
	x.e.write = &op;
	return pack(&x.e, buf, blen);
}

int entry_mkdir(struct daemon *d, const struct store_caller *c, uint64_t seq,
		const char *path, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpMkdir op = XSR__OP_MKDIR__INIT;

	enc_init(&x, d, c, seq);
	op.path = (char *)path;
	x.e.op_case = XSR__ENTRY__OP_MKDIR;
	x.e.mkdir = &op;
	return pack(&x.e, buf, blen);
}

int entry_rm(struct daemon *d, const struct store_caller *c, uint64_t seq,
	     const char *path, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpRm op = XSR__OP_RM__INIT;

	enc_init(&x, d, c, seq);
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

int entry_set_perms(struct daemon *d, const struct store_caller *c,
		    uint64_t seq, const char *path,
		    const struct store_perm *perms, uint32_t n, void **buf,
		    size_t *blen)
{
	struct enc x;
	Xsr__OpSetPerms op = XSR__OP_SET_PERMS__INIT;
	Xsr__Perm *ps = malloc((n ? n : 1) * sizeof(*ps));
	int rc;

	if (!ps)
		return -ENOMEM;
	enc_init(&x, d, c, seq);
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

int entry_commit(struct daemon *d, const struct store_caller *c, uint64_t seq,
		 const struct store_commit *cm, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpCommit op = XSR__OP_COMMIT__INIT;
	Xsr__TxNode *nodes = NULL, **nodev = NULL;
	Xsr__TxDelta *deltas = NULL, **deltav = NULL;
	Xsr__Perm *perms = NULL;
	size_t i, nperms = 0, k = 0;
	int rc = -ENOMEM;

	enc_init(&x, d, c, seq);
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

int entry_host_init(struct daemon *d, uint64_t seq, void **buf, size_t *blen)
{
	struct enc x;
	Xsr__OpHostInit op = XSR__OP_HOST_INIT__INIT;

	enc_init(&x, d, NULL, seq);
	x.e.op_case = XSR__ENTRY__OP_HOST_INIT;
	x.e.host_init = &op;
	return pack(&x.e, buf, blen);
}
