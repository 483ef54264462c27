/*
 * node/store/store_op.c: the operation layer under every change: one
 * operation on one host, live (all or nothing: the pinned root is put
 * back on error) or inside a transaction; its accounting and quotas, and
 * read_node(), write_node() and delete of cxenstored 4.17.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool domid_unprivileged(uint32_t domid)
{
	return domid != 0;
}

/* ---- Operations: begin, end, accounting ------------------------------ */

void op_begin(struct op *o, struct store *st, struct host *h,
	      struct store_txn *tx, const struct store_caller *c,
	      uint64_t index, struct store_events *ev)
{
	memset(o, 0, sizeof(*o));
	o->st = st;
	o->h = h;
	o->tx = tx;
	o->c = c;
	o->gen = index;
	o->ev = ev;
	o->ev_start = ev ? ev->n : 0;
	o->ev_lost = ev && ev->lost;
	if (!tx) {
		o->saved_root = h->root;
		hamt_ref(o->saved_root);
	}
}

static struct delta *op_delta(struct op *o, uint32_t domid)
{
	size_t i;

	for (i = 0; i < o->nd; i++)
		if (o->d[i].domid == domid)
			return &o->d[i];
	if (o->nd == o->capd) {
		size_t cap = o->capd ? o->capd * 2 : 4;
		struct delta *v = realloc(o->d, cap * sizeof(*v));

		if (!v)
			return NULL;
		o->d = v;
		o->capd = cap;
	}
	o->d[o->nd].domid = domid;
	o->d[o->nd].nodes = 0;
	o->d[o->nd].memory = 0;
	return &o->d[o->nd++];
}

/* Make sure every domain of the deltas has an accounting slot. */
static int op_reserve_acct(struct op *o)
{
	size_t i;

	for (i = 0; i < o->nd; i++)
		if (!acct_find(o->h, o->d[i].domid, true))
			return -STORE_ELOCAL;
	return 0;
}

int op_end(struct op *o, int rc)
{
	size_t i;

	if (!o->tx) {
		if (rc == 0)
			rc = op_reserve_acct(o);
		if (rc == 0) {
			for (i = 0; i < o->nd; i++) {
				struct acct *a =
				    acct_find(o->h, o->d[i].domid, false);

				a->nodes += o->d[i].nodes;
				a->memory += o->d[i].memory;
			}
			hamt_unref(o->saved_root);
		} else {
			hamt_unref(o->h->root);
			o->h->root = o->saved_root;
			/* nothing happened: neither events nor lost ones */
			if (o->ev) {
				events_truncate(o->ev, o->ev_start);
				o->ev->lost = o->ev_lost;
			}
		}
		free(o->d);
	} else if (rc != 0 && o->tx_touched) {
		/* cxenstored fails the whole transaction (XSA-415). */
		o->tx->failed = true;
	}
	return rc;
}

/* Nodes counted for the caller, as domain_entry(conn) sees them. */
int64_t op_caller_nodes(struct op *o)
{
	struct acct *a;
	int64_t n;
	size_t i;

	if (o->c->privileged)
		return 0;
	a = acct_find(o->h, o->c->domid, false);
	n = a ? a->nodes : 0;
	if (!o->tx)
		for (i = 0; i < o->nd; i++)
			if (o->d[i].domid == o->c->domid)
				n += o->d[i].nodes;
	return n;
}

static int64_t op_domain_memory(struct op *o, uint32_t domid)
{
	struct acct *a = acct_find(o->h, domid, false);
	int64_t m = a ? a->memory : 0;
	size_t i;

	for (i = 0; i < o->nd; i++)
		if (o->d[i].domid == domid)
			m += o->d[i].memory;
	return m;
}

/* domain_entry_inc/dec: the owner's node count, live or in a txn. */
int op_count(struct op *o, uint32_t owner, int by)
{
	struct delta *d;

	if (o->tx)
		return txn_count(o->tx, owner, by);
	d = op_delta(o, owner);
	if (!d)
		return -STORE_ELOCAL;
	d->nodes += by;
	return 0;
}

/* ---- Access layer ----------------------------------------------------- */

/*
 * read_node(): the node as this operation sees it, recording the access in
 * a transaction. NULL with *err = -ENOENT if it does not exist, -ENOSPC or
 * -ENOMEM if a transaction could not record it (then it is failed).
 */
const struct snode *op_get(struct op *o, const char *path, int *err)
{
	size_t len = strlen(path);
	uint64_t hash = host_hash(o->h, path, len);
	struct txnode *t;

	if (!o->tx) {
		const struct snode *n = hamt_get(o->h->root, path, len, hash);

		if (!n)
			*err = -ENOENT;
		return n;
	}
	t = txn_lookup(o->tx, path, len, hash);
	if (!t) {
		if (!o->c->privileged && o->c->quota.transaction_nodes &&
		    o->tx->n >= o->c->quota.transaction_nodes) {
			o->tx->failed = true;
			*err = -ENOSPC;
			return NULL;
		}
		t = txn_access(o->tx, o->h, path, len, hash);
		if (!t) {
			o->tx->failed = true;
			*err = -STORE_ELOCAL;
			return NULL;
		}
	}
	if (!t->cur)
		*err = -ENOENT;
	return t->cur;
}

/*
 * write_node(): store n (takes the caller's reference) as the node of its
 * path. quota_check: the node-size and memory quotas apply.
 */
int op_put(struct op *o, struct snode *n, bool quota_check)
{
	const struct snode *old;
	uint32_t owner = n->perms[0].domid;
	struct txnode *t;
	int64_t mem = snode_memory(n), old_mem = 0;
	uint32_t old_owner = 0;
	int rc;

	if (quota_check && !o->c->privileged && o->c->quota.node_size &&
	    snode_record_size(n->nperms, n->value_len, n->children_len) >=
		o->c->quota.node_size) {
		snode_unref(n);
		return -ENOSPC;
	}
	if (o->tx) {
		n->generation = ++o->tx->gen_counter;
		t = txn_lookup(o->tx, snode_path(n), n->path_len, n->hash);
		if (!t)
			t = txn_access(o->tx, o->h, snode_path(n), n->path_len,
				       n->hash);
		if (!t) {
			snode_unref(n);
			return -STORE_ELOCAL;
		}
		snode_unref(t->cur);
		t->cur = n;
		t->modified = true;
		o->tx_touched = true;
		return 0;
	}
	n->generation = o->gen;
	old = hamt_get(o->h->root, snode_path(n), n->path_len, n->hash);
	if (old) {
		old_mem = snode_memory(old);
		old_owner = old->perms[0].domid;
	}
	if (quota_check && domid_unprivileged(owner) && o->c->quota.memory) {
		int64_t cur = op_domain_memory(o, owner);

		if (old && old->perms[0].domid == owner)
			cur -= old_mem;
		if (cur + mem >= (int64_t)o->c->quota.memory) {
			snode_unref(n);
			/* the quota: a refusal, not a failure */
			return -ENOMEM;
		}
	}
	rc = store_err_local(hamt_set(&o->h->root, n));
	if (rc) {
		snode_unref(n);
		return rc;
	}
	/* old may be gone now: only its copied owner and size are used. */
	if (old) {
		struct delta *d = op_delta(o, old_owner);

		if (!d)
			return -STORE_ELOCAL;
		d->memory -= old_mem;
	}
	{
		struct delta *d = op_delta(o, owner);

		if (!d)
			return -STORE_ELOCAL;
		d->memory += mem;
	}
	return 0;
}

/* Delete the node at path (which the operation has read). */
int op_del(struct op *o, const char *path)
{
	size_t len = strlen(path);
	uint64_t hash = host_hash(o->h, path, len);
	const struct snode *old;
	struct txnode *t;
	struct delta *d;

	if (o->tx) {
		t = txn_lookup(o->tx, path, len, hash);
		if (!t)
			return -EIO;
		snode_unref(t->cur);
		t->cur = NULL;
		t->modified = true;
		o->tx_touched = true;
		return 0;
	}
	old = hamt_get(o->h->root, path, len, hash);
	if (!old)
		return -EIO;
	d = op_delta(o, old->perms[0].domid);
	if (!d)
		return -STORE_ELOCAL;
	d->memory -= snode_memory(old);
	return store_err_local(hamt_del(&o->h->root, path, len, hash));
}
