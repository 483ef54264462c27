/*
 * node/store/store.c: the forest of xenstore trees and the operations on it.
 *
 * Operations mirror the C xenstored of Xen 4.17 call for call
 * (get_node, errno_from_parents, construct_node/create_node, rm_node,
 * do_set_perms in tools/xenstore/xenstored_core.c), because inside a
 * transaction the order in which nodes are first touched decides both the
 * conflict set and the order of the watch events fired at commit.
 *
 * A live operation pins the host's root first; on error the pinned root is
 * put back, so every operation is all or nothing.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- Events --------------------------------------------------------- */

void store_events_init(struct store_events *ev)
{
	memset(ev, 0, sizeof(*ev));
}

static void event_free(struct store_event *e)
{
	free(e->path);
	free(e->node.v);
	free(e->parent.v);
	free(e->old.v);
}

static void events_truncate(struct store_events *ev, size_t n)
{
	while (ev->n > n)
		event_free(&ev->v[--ev->n]);
}

void store_events_clear(struct store_events *ev)
{
	events_truncate(ev, 0);
	free(ev->v);
	store_events_init(ev);
}

int events_push(struct store_events *ev, const char *path, bool exact,
		struct store_event **out)
{
	struct store_event *e;

	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 4;
		struct store_event *v = realloc(ev->v, cap * sizeof(*v));

		if (!v)
			return -STORE_ELOCAL;
		ev->v = v;
		ev->cap = cap;
	}
	e = &ev->v[ev->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return -STORE_ELOCAL;
	e->exact = exact;
	ev->n++;
	*out = e;
	return 0;
}

int perms_copy(struct store_perms *dst, const struct store_perm *src,
	       uint32_t n)
{
	dst->v = malloc((n ? n : 1) * sizeof(*src));
	if (!dst->v)
		return -STORE_ELOCAL;
	memcpy(dst->v, src, n * sizeof(*src));
	dst->n = n;
	return 0;
}

/* ---- Hosts and accounting ------------------------------------------- */

struct store *store_new(void)
{
	return calloc(1, sizeof(struct store));
}

static void member_close(struct store_member *m);

static void host_close(struct host *h)
{
	hamt_unref(h->root);
	free(h->acct);
	host_doms_free(h);
	host_quotas_free(h);
	free(h->name);
}

void store_free(struct store *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->nhosts; i++)
		host_close(&st->hosts[i]);
	free(st->hosts);
	for (i = 0; i < st->nsess; i++)
		free(st->sess[i]);
	free(st->sess);
	for (i = 0; i < st->nmembers; i++)
		member_close(&st->members[i]);
	free(st->members);
	free(st);
}

static size_t host_pos(const struct store *st, const char *name, bool *found)
{
	size_t lo = 0, hi = st->nhosts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(st->hosts[mid].name, name);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct host *store_host_find(const struct store *st, const char *name)
{
	bool found;
	size_t i = host_pos(st, name, &found);

	return found ? &st->hosts[i] : NULL;
}

bool store_host_exists(const struct store *st, const char *host)
{
	return store_host_find(st, host) != NULL;
}

size_t store_host_count(const struct store *st)
{
	return st->nhosts;
}

const char *store_host_name(const struct store *st, size_t i)
{
	return i < st->nhosts ? st->hosts[i].name : NULL;
}

/* Add an empty host; returns it, or NULL on ENOMEM / if it exists. */
static struct host *host_add(struct store *st, const char *name)
{
	struct host *v;
	bool found;
	size_t i = host_pos(st, name, &found);
	char *copy;

	if (found)
		return NULL;
	copy = strdup(name);
	if (!copy)
		return NULL;
	v = realloc(st->hosts, (st->nhosts + 1) * sizeof(*v));
	if (!v) {
		free(copy);
		return NULL;
	}
	st->hosts = v;
	memmove(v + i + 1, v + i, (st->nhosts - i) * sizeof(*v));
	memset(&v[i], 0, sizeof(v[i]));
	v[i].name = copy;
	host_bind_key(st, &v[i]);
	st->nhosts++;
	return &v[i];
}

struct acct *acct_find(struct host *h, uint32_t domid, bool create)
{
	size_t lo = 0, hi = h->nacct;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (h->acct[mid].domid == domid)
			return &h->acct[mid];
		if (h->acct[mid].domid < domid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (h->nacct == h->capacct) {
		size_t cap = h->capacct ? h->capacct * 2 : 8;
		struct acct *v = realloc(h->acct, cap * sizeof(*v));

		if (!v)
			return NULL;
		h->acct = v;
		h->capacct = cap;
	}
	memmove(h->acct + lo + 1, h->acct + lo,
		(h->nacct - lo) * sizeof(h->acct[0]));
	h->acct[lo].domid = domid;
	h->acct[lo].nodes = 0;
	h->acct[lo].memory = 0;
	h->nacct++;
	return &h->acct[lo];
}

size_t snode_record_size(uint32_t nperms, size_t value_len, size_t children_len)
{
	/* struct xs_tdb_record_hdr of 4.17 is 24 bytes; a perm is 8. */
	return 24 + 8 * (size_t)nperms + value_len + children_len;
}

int64_t snode_memory(const struct snode *n)
{
	return (int64_t)(snode_record_size(n->nperms, n->value_len,
					   n->children_len) +
			 n->path_len);
}

void store_domain_usage(const struct store *st, const char *host,
			uint32_t domid, uint64_t *nodes, uint64_t *memory)
{
	struct host *h = store_host_find(st, host);
	struct acct *a = h ? acct_find(h, domid, false) : NULL;

	*nodes = a && a->nodes > 0 ? (uint64_t)a->nodes : 0;
	*memory = a && a->memory > 0 ? (uint64_t)a->memory : 0;
}

static bool domid_unprivileged(uint32_t domid)
{
	return domid != 0;
}

/* ---- Operations: begin, end, accounting ------------------------------ */

static struct host *op_host(struct store *st, const char *host)
{
	return store_host_find(st, host);
}

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
			if (o->ev)
				events_truncate(o->ev, o->ev_start);
		}
		free(o->d);
	} else if (rc != 0 && o->tx_touched) {
		/* cxenstored fails the whole transaction (XSA-415). */
		o->tx->failed = true;
	}
	return rc;
}

/* Nodes counted for the caller, as domain_entry(conn) sees them. */
static int64_t op_caller_nodes(struct op *o)
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
			return -ENOMEM; /* the quota: a refusal, not a failure */
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

/* get_parent(): "/" for top-level nodes and for "/" itself. */
void path_parent(const char *path, char *out)
{
	const char *slash = strrchr(path + 1, '/');

	if (!slash) {
		strcpy(out, "/");
		return;
	}
	memcpy(out, path, (size_t)(slash - path));
	out[slash - path] = '\0';
}

static const char *base_of(const char *path)
{
	return strrchr(path, '/') + 1;
}

/*
 * fire_watches(): live, an event for the caller to deliver; in a
 * transaction, a mark on the accessed node (queue_watches()).
 */
void op_fire(struct op *o, const char *path, const struct snode *node,
		    bool exact, const struct store_perm *old, uint32_t n_old)
{
	char parent[PATH_BUF];
	const struct snode *p;
	struct store_event *e;

	if (o->tx) {
		struct txnode *t = txn_lookup(o->tx, path, strlen(path),
					      host_hash(o->h, path, strlen(path)));
		if (!t) {
			o->tx->failed = true;
			return;
		}
		if (!t->fire_watch) {
			t->fire_watch = true;
			t->watch_exact = exact;
		} else if (!exact) {
			t->watch_exact = false;
		}
		return;
	}
	if (!o->ev || events_push(o->ev, path, exact, &e))
		return;
	if (node && !perms_copy(&e->node, node->perms, node->nperms))
		e->has_node = true;
	/* A node always has an owner entry: no entries means no old perms. */
	if (old && n_old && !perms_copy(&e->old, old, n_old))
		e->has_old = true;
	if (path[0] == '/') {
		path_parent(path, parent);
		p = hamt_get(o->h->root, parent, strlen(parent),
			     host_hash(o->h, parent, strlen(parent)));
		if (p && !perms_copy(&e->parent, p->perms, p->nperms))
			e->has_parent = true;
	}
}

/* ---- Permission checks (get_node, errno hiding) ---------------------- */

static bool propagates(int err)
{
	return err == -STORE_ELOCAL || err == -ENOSPC;
}

/* ask_parents(): permissions of the nearest existing ancestor. */
static int ask_parents(struct op *o, const char *path, unsigned int *perm)
{
	char name[PATH_BUF];
	const struct snode *n = NULL;
	int err = 0;

	strcpy(name, path);
	do {
		char up[PATH_BUF];

		path_parent(name, up);
		strcpy(name, up);
		n = op_get(o, name, &err);
		if (n)
			break;
		if (propagates(err))
			return err;
	} while (strcmp(name, "/") != 0);
	/* No permissions at root? The store is corrupt: deny. */
	*perm = n ? store_perm_for(o->c, n->perms, n->nperms) : 0;
	return 0;
}

static int errno_from_parents(struct op *o, const char *path, int err,
			      unsigned int perm)
{
	unsigned int parent_perm = 0;
	int rc;

	if (err == -ENOMEM || err == -STORE_ELOCAL)
		return err;
	rc = ask_parents(o, path, &parent_perm);
	if (rc)
		return rc;
	return (parent_perm & perm) ? err : -EACCES;
}

static const struct snode *get_node(struct op *o, const char *path,
				    unsigned int perm, int *err)
{
	const struct snode *n;

	if (!path || !store_path_valid(path, o->c->quota.path_max)) {
		*err = -EINVAL;
		return NULL;
	}
	n = op_get(o, path, err);
	if (n && (store_perm_for(o->c, n->perms, n->nperms) & perm) != perm) {
		*err = -EACCES;
		n = NULL;
	}
	if (!n && !propagates(*err))
		*err = errno_from_parents(o, path, *err, perm);
	return n;
}

/* ---- Node construction ------------------------------------------------ */

static struct snode *node_with(const struct snode *n, uint64_t gen,
			       const struct store_perm *perms, uint32_t nperms,
			       const void *value, size_t value_len,
			       const void *children, size_t children_len)
{
	return snode_new(snode_path(n), n->path_len, n->hash, gen, perms,
			 nperms, value, value_len, children, children_len);
}

/* A copy of parent with `name` appended to its children. */
struct snode *snode_with_child(const struct snode *parent, const char *name)
{
	size_t nl = strlen(name) + 1;
	size_t cl = parent->children_len;
	struct snode *n;
	char *kids = malloc(cl + nl);

	if (!kids)
		return NULL;
	memcpy(kids, snode_children(parent), cl);
	memcpy(kids + cl, name, nl);
	n = node_with(parent, parent->generation, parent->perms,
		      parent->nperms, snode_value(parent), parent->value_len,
		      kids, cl + nl);
	free(kids);
	return n;
}

/* A copy of parent without child `name`, or NULL (+*err). */
static struct snode *without_child(const struct snode *parent,
				   const char *name, int *err)
{
	const char *kids = snode_children(parent), *p = kids;
	const char *end = kids + parent->children_len;
	size_t nl = strlen(name) + 1;
	struct snode *n;
	char *copy;

	while (p < end && strcmp(p, name) != 0)
		p += strlen(p) + 1;
	if (p >= end) {
		*err = -EIO; /* corrupt: "Can't find child" */
		return NULL;
	}
	copy = malloc(parent->children_len ? parent->children_len : 1);
	if (!copy) {
		*err = -STORE_ELOCAL;
		return NULL;
	}
	memcpy(copy, kids, (size_t)(p - kids));
	memcpy(copy + (p - kids), p + nl, (size_t)(end - p) - nl);
	n = node_with(parent, parent->generation, parent->perms,
		      parent->nperms, snode_value(parent), parent->value_len,
		      copy, parent->children_len - nl);
	free(copy);
	if (!n)
		*err = -STORE_ELOCAL;
	return n;
}

/*
 * create_node(): create path and every missing ancestor, bottom-up as
 * cxenstored writes them. New nodes copy the nearest existing ancestor's
 * permissions; an unprivileged caller owns what it creates. *out is the
 * new node (borrowed).
 */
static int create_node(struct op *o, const char *path, const void *value,
		       size_t value_len, const struct snode **out)
{
	size_t path_len = strlen(path);
	uint16_t *lens;
	unsigned int levels = 0, i;
	char name[PATH_BUF];
	const struct snode *parent = NULL;
	struct store_perm *perms = NULL;
	int err = 0, rc = 0;

	if (o->tx)
		o->tx->node_created = true;
	lens = malloc((path_len + 1) * sizeof(*lens));
	if (!lens)
		return -STORE_ELOCAL;
	/* Walk up until an existing node is found (construct_node()). */
	strcpy(name, path);
	while (!parent) {
		char up[PATH_BUF];

		lens[levels] = (uint16_t)strlen(name);
		path_parent(name, up);
		strcpy(name, up);
		parent = op_get(o, name, &err);
		if (!parent && (err != -ENOENT || strcmp(name, "/") == 0)) {
			rc = err;
			goto out;
		}
		levels++;
	}
	snode_ref(parent);
	perms = malloc(parent->nperms * sizeof(*perms));
	if (!perms) {
		rc = -STORE_ELOCAL;
		goto out_parent;
	}
	memcpy(perms, parent->perms, parent->nperms * sizeof(*perms));
	if (!o->c->privileged)
		perms[0].domid = o->c->domid;

	/* Write bottom-up: the new nodes, then the existing parent. */
	for (i = 0; i < levels; i++) {
		char *kids = NULL;
		size_t child_len = 0;
		struct snode *n;

		if (i) {
			/* Its one child is path[lens[i]+1 .. lens[i-1]). */
			child_len = lens[i - 1] - lens[i] - 1;
			kids = malloc(child_len + 1);
			if (!kids) {
				rc = -STORE_ELOCAL;
				goto out_perms;
			}
			memcpy(kids, path + lens[i] + 1, child_len);
			kids[child_len] = '\0';
		}
		if (!o->c->privileged && o->c->quota.nodes &&
		    op_caller_nodes(o) >= (int64_t)o->c->quota.nodes) {
			free(kids);
			rc = -ENOSPC;
			goto out_perms;
		}
		n = snode_new(path, lens[i], host_hash(o->h, path, lens[i]), 0,
			      perms, parent->nperms, i ? NULL : value,
			      i ? 0 : value_len, kids, kids ? child_len + 1 : 0);
		free(kids);
		if (!n) {
			rc = -STORE_ELOCAL;
			goto out_perms;
		}
		rc = op_put(o, n, true);
		if (rc)
			goto out_perms;
		rc = op_count(o, perms[0].domid, 1);
		if (rc)
			goto out_perms;
	}
	{
		struct snode *p;
		char top[PATH_BUF];

		memcpy(top, path, lens[levels - 1]);
		top[lens[levels - 1]] = '\0';
		p = snode_with_child(parent, base_of(top));
		if (!p) {
			rc = -STORE_ELOCAL;
			goto out_perms;
		}
		rc = op_put(o, p, true);
		if (rc)
			goto out_perms;
	}
	*out = op_get(o, path, &err);
	if (!*out)
		rc = err ? err : -EIO;
out_perms:
	free(perms);
out_parent:
	snode_unref(parent);
out:
	free(lens);
	return rc;
}

/* ---- Public operations --------------------------------------------- */

int store_write(struct store *st, const char *host, struct store_txn *tx,
		const struct store_caller *c, uint64_t index, const char *path,
		const void *value, size_t len, struct store_events *ev)
{
	struct host *h = op_host(st, host);
	const struct snode *n;
	struct snode *m;
	struct op o;
	int err = 0, rc;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = get_node(&o, path, STORE_PERM_WRITE, &err);
	if (!n) {
		if (err != -ENOENT)
			return op_end(&o, err);
		rc = create_node(&o, path, value, len, &n);
		if (rc)
			return op_end(&o, rc);
	} else {
		m = node_with(n, 0, n->perms, n->nperms, value, len,
			      snode_children(n), n->children_len);
		if (!m)
			return op_end(&o, -STORE_ELOCAL);
		rc = op_put(&o, m, true);
		if (rc)
			return op_end(&o, rc);
		n = m;
	}
	op_fire(&o, path, n, false, NULL, 0);
	return op_end(&o, 0);
}

int store_mkdir(struct store *st, const char *host, struct store_txn *tx,
		const struct store_caller *c, uint64_t index, const char *path,
		struct store_events *ev)
{
	struct host *h = op_host(st, host);
	const struct snode *n;
	struct op o;
	int err = 0, rc;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = get_node(&o, path, STORE_PERM_WRITE, &err);
	if (!n) {
		if (err != -ENOENT)
			return op_end(&o, err);
		rc = create_node(&o, path, NULL, 0, &n);
		if (rc)
			return op_end(&o, rc);
		op_fire(&o, path, n, false, NULL, 0);
	}
	return op_end(&o, 0);
}

struct rm_frame {
	const struct snode *n; /* a reference */
	size_t child_off;
	size_t path_len;
};

/*
 * rm_node(): delete path and its subtree. Nodes are read parents first (the
 * walk of walk_node_tree()) and deleted children first, each firing its
 * watches (exact ones for descendants); then the parent forgets the child.
 */
int op_rm(struct op *o, const char *path)
{
	char pname[PATH_BUF], cur[PATH_BUF];
	const struct snode *parent, *n;
	struct rm_frame *stack = NULL;
	size_t depth = 0, cap = 0;
	struct snode *p;
	int err = 0, rc = 0;

	path_parent(path, pname);
	parent = op_get(o, pname, &err);
	if (!parent)
		return propagates(err) ? err : -EINVAL;
	snode_ref(parent);

	strcpy(cur, path);
	n = op_get(o, cur, &err);
	if (!n) {
		rc = propagates(err) ? err : -EIO;
		goto out;
	}
	cap = 16;
	stack = malloc(cap * sizeof(*stack));
	if (!stack) {
		rc = -STORE_ELOCAL;
		goto out;
	}
	snode_ref(n);
	stack[depth++] = (struct rm_frame){n, 0, strlen(cur)};
	while (depth) {
		struct rm_frame *f = &stack[depth - 1];

		if (f->child_off < f->n->children_len) {
			const char *child = snode_children(f->n) + f->child_off;
			size_t cl = strlen(child);

			f->child_off += cl + 1;
			if (f->path_len + 1 + cl + 1 > sizeof(cur)) {
				rc = -EIO;
				goto out;
			}
			cur[f->path_len] = '/';
			memcpy(cur + f->path_len + 1, child, cl + 1);
			n = op_get(o, cur, &err);
			if (!n) {
				rc = propagates(err) ? err : -EIO;
				goto out;
			}
			if (depth == cap) {
				struct rm_frame *v =
					realloc(stack, 2 * cap * sizeof(*v));

				if (!v) {
					rc = -STORE_ELOCAL;
					goto out;
				}
				stack = v;
				cap *= 2;
				f = &stack[depth - 1];
			}
			snode_ref(n);
			stack[depth++] =
				(struct rm_frame){n, 0, f->path_len + 1 + cl};
			continue;
		}
		cur[f->path_len] = '\0';
		rc = op_del(o, cur);
		if (rc)
			goto out;
		op_fire(o, cur, f->n, depth > 1, NULL, 0);
		rc = op_count(o, f->n->perms[0].domid, -1);
		if (rc)
			goto out;
		snode_unref(f->n);
		depth--;
	}
	p = without_child(parent, base_of(path), &rc);
	if (!p)
		goto out;
	rc = op_put(o, p, false);
out:
	while (depth)
		snode_unref(stack[--depth].n);
	free(stack);
	snode_unref(parent);
	return rc;
}

int store_rm(struct store *st, const char *host, struct store_txn *tx,
	     const struct store_caller *c, uint64_t index, const char *path,
	     struct store_events *ev)
{
	struct host *h = op_host(st, host);
	char pname[PATH_BUF];
	const struct snode *n;
	struct op o;
	int err = 0, e2 = 0;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = get_node(&o, path, STORE_PERM_WRITE, &err);
	if (!n) {
		/* Didn't exist already? Fine, if the parent exists. */
		if (err == -ENOENT) {
			path_parent(path, pname);
			if (op_get(&o, pname, &e2))
				return op_end(&o, 0);
			err = propagates(e2) ? e2 : -ENOENT;
		}
		return op_end(&o, err);
	}
	if (strcmp(path, "/") == 0)
		return op_end(&o, -EINVAL);
	return op_end(&o, op_rm(&o, path));
}

static const char *const specials[] = {"@introduceDomain", "@releaseDomain"};

static bool is_special(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (strcmp(path, specials[i]) == 0)
			return true;
	return false;
}

/* set_perms_special(): permissions of @introduceDomain/@releaseDomain. */
static int set_perms_special(struct op *o, const char *path,
			     const struct store_perm *perms, uint32_t n)
{
	const unsigned int need = STORE_PERM_WRITE | STORE_PERM_OWNER;
	size_t len = strlen(path);
	uint64_t hash = host_hash(o->h, path, len);
	const struct snode *cur;
	struct snode *m;
	int rc;

	if (!is_special(path))
		return -EINVAL;
	cur = hamt_get(o->h->root, path, len, hash);
	if (!cur)
		return -EIO;
	if ((store_perm_for(o->c, cur->perms, cur->nperms) & need) != need)
		return -EACCES;
	m = snode_new(path, len, hash, o->gen, perms, n, NULL, 0, NULL, 0);
	if (!m)
		return -STORE_ELOCAL;
	rc = store_err_local(hamt_set(&o->h->root, m));
	if (rc)
		snode_unref(m);
	return rc;
}

int store_set_perms(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, uint64_t index,
		    const char *path, const struct store_perm *perms,
		    uint32_t nperms, struct store_events *ev)
{
	struct host *h = op_host(st, host);
	const struct snode *n;
	struct store_perm *old;
	uint32_t old_nperms;
	struct snode *m;
	struct op o;
	int err = 0, rc;

	if (!h)
		return -EIO;
	if (nperms == 0)
		return -EINVAL;
	if (path[0] == '@') {
		/* Global state in cxenstored, outside any transaction. */
		op_begin(&o, st, h, NULL, c, index, NULL);
		return op_end(&o, set_perms_special(&o, path, perms, nperms));
	}
	op_begin(&o, st, h, tx, c, index, ev);
	n = get_node(&o, path, STORE_PERM_WRITE | STORE_PERM_OWNER, &err);
	if (!n)
		return op_end(&o, err);
	/* Unprivileged domains may not change the owner. */
	if (!c->privileged && perms[0].domid != n->perms[0].domid)
		return op_end(&o, -EPERM);
	old = malloc(n->nperms * sizeof(*old));
	if (!old)
		return op_end(&o, -STORE_ELOCAL);
	memcpy(old, n->perms, n->nperms * sizeof(*old));
	rc = op_count(&o, n->perms[0].domid, -1);
	if (!rc)
		rc = op_count(&o, perms[0].domid, 1);
	if (rc) {
		free(old);
		return op_end(&o, rc);
	}
	m = node_with(n, 0, perms, nperms, snode_value(n), n->value_len,
		      snode_children(n), n->children_len);
	if (!m) {
		free(old);
		return op_end(&o, -STORE_ELOCAL);
	}
	old_nperms = n->nperms;
	/* n may be freed by op_put (a transaction's own copy of the node) */
	rc = op_put(&o, m, true);
	if (!rc)
		op_fire(&o, path, m, false, old, old_nperms);
	free(old);
	return op_end(&o, rc);
}

/* ---- Reads ---------------------------------------------------------- */

static const struct snode *read_op(struct store *st, const char *host,
				   struct store_txn *tx,
				   const struct store_caller *c,
				   const char *path, int *err)
{
	struct host *h = op_host(st, host);
	struct op o;

	if (!h) {
		*err = -EIO;
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.st = st;
	o.h = h;
	o.tx = tx;
	o.c = c;
	return get_node(&o, path, STORE_PERM_READ, err);
}

int store_read(struct store *st, const char *host, struct store_txn *tx,
	       const struct store_caller *c, const char *path,
	       const char **value, size_t *len)
{
	int err = 0;
	const struct snode *n = read_op(st, host, tx, c, path, &err);

	if (!n)
		return err;
	*value = snode_value(n);
	*len = n->value_len;
	return 0;
}

int store_directory(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, const char *path,
		    const char **children, size_t *len, uint64_t *generation)
{
	int err = 0;
	const struct snode *n = read_op(st, host, tx, c, path, &err);

	if (!n)
		return err;
	*children = snode_children(n);
	*len = n->children_len;
	*generation = n->generation;
	return 0;
}

int store_get_perms(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, const char *path,
		    const struct store_perm **perms, uint32_t *n)
{
	int err = 0;
	const struct snode *node = read_op(st, host, tx, c, path, &err);

	if (!node)
		return err;
	*perms = node->perms;
	*n = node->nperms;
	return 0;
}

/* ---- Host initialisation ----------------------------------------- */

static int put_initial(struct host *h, const char *path, uint64_t index,
		       const char *children, bool counted)
{
	struct store_perm n0 = {.domid = 0, .access = 0};
	size_t len = strlen(path);
	struct snode *n;
	struct acct *a;

	n = snode_new(path, len, host_hash(h, path, len), index, &n0, 1, NULL, 0,
		      children, children ? strlen(children) + 1 : 0);
	if (!n || hamt_set(&h->root, n)) {
		snode_unref(n);
		return -STORE_ELOCAL;
	}
	if (counted) {
		a = acct_find(h, 0, true);
		if (!a)
			return -STORE_ELOCAL;
		a->nodes++;
		a->memory += snode_memory(n);
	}
	return 0;
}

int store_host_init(struct store *st, const char *name, uint64_t index)
{
	struct host *h;
	int rc;

	if (store_host_find(st, name))
		return -EEXIST;
	h = host_add(st, name);
	if (!h)
		return -STORE_ELOCAL;
	/* setup_structure() and domain_init() of cxenstored 4.17. */
	rc = put_initial(h, "/", index, "tool", true);
	if (!rc)
		rc = put_initial(h, "/tool", index, "xenstored", true);
	if (!rc)
		rc = put_initial(h, "/tool/xenstored", index, NULL, true);
	if (!rc)
		rc = put_initial(h, specials[0], index, NULL, false);
	if (!rc)
		rc = put_initial(h, specials[1], index, NULL, false);
	return rc;
}

size_t store_node_count(const struct store *st, const char *host)
{
	struct host *h = store_host_find(st, host);
	size_t n;

	if (!h)
		return 0;
	n = hamt_count(h->root);
	return n >= 2 ? n - 2 : 0; /* minus the special nodes */
}

/* ---- Sessions --------------------------------------------------------- */

static struct session *session_find(const struct store *st, uint64_t origin,
				    size_t *pos)
{
	size_t lo = 0, hi = st->nsess;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (st->sess[mid]->origin == origin)
			return st->sess[mid];
		if (st->sess[mid]->origin < origin)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

enum store_seen store_session_lookup(const struct store *st, uint64_t origin,
				     uint64_t seq, int *result)
{
	struct session *s = session_find(st, origin, NULL);
	size_t slot = seq % STORE_SESSION_WINDOW;

	if (!s || seq > s->last)
		return STORE_NEW;
	if (s->ring[slot].seq != seq)
		return STORE_SEEN_FORGOTTEN;
	if (result)
		*result = s->ring[slot].result;
	return STORE_SEEN;
}

int store_session_record(struct store *st, uint64_t origin, uint64_t seq,
			 int result)
{
	size_t pos = 0;
	struct session *s = session_find(st, origin, &pos), **v;

	if (!s) {
		s = calloc(1, sizeof(*s));
		v = realloc(st->sess, (st->nsess + 1) * sizeof(*v));
		if (!s || !v) {
			free(s);
			if (v)
				st->sess = v;
			return -STORE_ELOCAL;
		}
		st->sess = v;
		memmove(v + pos + 1, v + pos, (st->nsess - pos) * sizeof(*v));
		s->origin = origin;
		v[pos] = s;
		st->nsess++;
	}
	s->last = seq;
	s->ring[seq % STORE_SESSION_WINDOW].seq = seq;
	s->ring[seq % STORE_SESSION_WINDOW].result = result;
	return 0;
}

uint64_t store_session_last(const struct store *st, uint64_t origin)
{
	struct session *s = session_find(st, origin, NULL);

	return s ? s->last : 0;
}

void store_session_forget(struct store *st, uint64_t origin)
{
	size_t pos = 0;
	struct session *s = session_find(st, origin, &pos);

	if (!s)
		return;
	for (pos = 0; st->sess[pos] != s; pos++)
		;
	free(s);
	memmove(st->sess + pos, st->sess + pos + 1,
		(st->nsess - pos - 1) * sizeof(*st->sess));
	st->nsess--;
}

/* ---- Members ---------------------------------------------------------- */

static size_t member_pos(const struct store *st, uint64_t id, bool *found)
{
	size_t lo = 0, hi = st->nmembers;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (st->members[mid].id == id) {
			*found = true;
			return mid;
		}
		if (st->members[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void member_close(struct store_member *m)
{
	free(m->name);
	free(m->raft_address);
	free(m->peer_address);
}

int store_member_set(struct store *st, uint64_t id, const char *name,
		     const char *raft_address, const char *peer_address)
{
	const struct store_member *other = store_member_by_name(st, name);
	struct store_member m = {.id = id}, *v;
	bool found;
	size_t i;

	if (other && other->id != id)
		return -EEXIST;
	m.name = strdup(name);
	m.raft_address = strdup(raft_address ? raft_address : "");
	m.peer_address = strdup(peer_address ? peer_address : "");
	if (!m.name || !m.raft_address || !m.peer_address) {
		member_close(&m);
		return -STORE_ELOCAL;
	}
	i = member_pos(st, id, &found);
	if (found) {
		member_close(&st->members[i]);
		st->members[i] = m;
		return 0;
	}
	v = realloc(st->members, (st->nmembers + 1) * sizeof(*v));
	if (!v) {
		member_close(&m);
		return -STORE_ELOCAL;
	}
	st->members = v;
	memmove(v + i + 1, v + i, (st->nmembers - i) * sizeof(*v));
	v[i] = m;
	st->nmembers++;
	return 0;
}

int store_member_remove(struct store *st, uint64_t id)
{
	bool found;
	size_t i = member_pos(st, id, &found);

	if (!found)
		return -ENOENT;
	member_close(&st->members[i]);
	memmove(st->members + i, st->members + i + 1,
		(st->nmembers - i - 1) * sizeof(st->members[0]));
	st->nmembers--;
	return 0;
}

size_t store_member_count(const struct store *st)
{
	return st->nmembers;
}

const struct store_member *store_member_at(const struct store *st, size_t i)
{
	return i < st->nmembers ? &st->members[i] : NULL;
}

const struct store_member *store_member_by_id(const struct store *st,
					      uint64_t id)
{
	bool found;
	size_t i = member_pos(st, id, &found);

	return found ? &st->members[i] : NULL;
}

const struct store_member *store_member_by_name(const struct store *st,
						const char *name)
{
	size_t i;

	for (i = 0; i < st->nmembers; i++)
		if (strcmp(st->members[i].name, name) == 0)
			return &st->members[i];
	return NULL;
}

uint64_t store_applied_index(const struct store *st)
{
	return st->applied_index;
}

void store_set_applied_index(struct store *st, uint64_t index)
{
	st->applied_index = index;
}
