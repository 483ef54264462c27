/*
 * node/store/store_txn.c: transactions (cxenstored's xenstored_transaction.c).
 *
 * A transaction records every node it touches, in first-access order, with
 * the node as it was then (its generation decides conflicts) and the
 * transaction's own version of it. Nothing reaches the tree until
 * store_commit() applies an exported transaction from the log, on every
 * replica alike.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_txn *store_txn_new(struct store *st, const char *host)
{
	struct store_txn *tx;

	if (!store_host_find(st, host))
		return NULL;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return NULL;
	tx->st = st;
	tx->host = strdup(host);
	if (!tx->host) {
		free(tx);
		return NULL;
	}
	/* Generations of nodes written inside: distinct from log indexes. */
	tx->gen_counter = UINT64_C(1) << 62;
	return tx;
}

size_t store_txn_memory(const struct store_txn *tx)
{
	size_t i, sum = sizeof(*tx) + tx->cap * sizeof(*tx->nodes) +
			tx->index_cap * sizeof(*tx->index);

	for (i = 0; i < tx->n; i++) {
		const struct txnode *t = &tx->nodes[i];

		sum += t->path_len + 1;
		if (t->modified && t->cur)
			sum += (size_t)snode_memory(t->cur);
	}
	return sum;
}

void store_txn_free(struct store_txn *tx)
{
	size_t i;

	if (!tx)
		return;
	for (i = 0; i < tx->n; i++) {
		snode_unref(tx->nodes[i].orig);
		snode_unref(tx->nodes[i].cur);
		free(tx->nodes[i].path);
	}
	free(tx->nodes);
	free(tx->index);
	free(tx->d);
	free(tx->host);
	free(tx);
}

bool store_txn_failed(const struct store_txn *tx)
{
	return tx->failed;
}

static bool txnode_is(const struct txnode *t, const char *path, size_t len,
		      uint64_t hash)
{
	return t->hash == hash && t->path_len == len &&
	       memcmp(t->path, path, len) == 0;
}

struct txnode *txn_lookup(struct store_txn *tx, const char *path, size_t len,
			  uint64_t hash)
{
	size_t mask, i;

	if (!tx->index_cap)
		return NULL;
	mask = tx->index_cap - 1;
	for (i = hash & mask; tx->index[i]; i = (i + 1) & mask) {
		struct txnode *t = &tx->nodes[tx->index[i] - 1];

		if (txnode_is(t, path, len, hash))
			return t;
	}
	return NULL;
}

static void index_insert(uint32_t *index, size_t cap, uint64_t hash,
			 uint32_t pos1)
{
	size_t mask = cap - 1, i;

	for (i = hash & mask; index[i]; i = (i + 1) & mask)
		;
	index[i] = pos1;
}

/* Keep the index at most half full. */
static int index_reserve(struct store_txn *tx, size_t n)
{
	size_t cap = tx->index_cap ? tx->index_cap : 16, i;
	uint32_t *index;

	if (n * 2 <= tx->index_cap)
		return 0;
	while (n * 2 > cap)
		cap *= 2;
	index = calloc(cap, sizeof(*index));
	if (!index)
		return -STORE_ELOCAL;
	for (i = 0; i < tx->n; i++)
		index_insert(index, cap, tx->nodes[i].hash, (uint32_t)i + 1);
	free(tx->index);
	tx->index = index;
	tx->index_cap = cap;
	return 0;
}

struct txnode *txn_access(struct store_txn *tx, struct host *h,
			  const char *path, size_t len, uint64_t hash)
{
	const struct snode *live;
	struct txnode *t;

	if (tx->n == UINT32_MAX - 1 || index_reserve(tx, tx->n + 1))
		return NULL;
	if (tx->n == tx->cap) {
		size_t cap = tx->cap ? tx->cap * 2 : 16;
		struct txnode *v = realloc(tx->nodes, cap * sizeof(*v));

		if (!v)
			return NULL;
		tx->nodes = v;
		tx->cap = cap;
	}
	t = &tx->nodes[tx->n];
	memset(t, 0, sizeof(*t));
	t->path = malloc(len + 1);
	if (!t->path)
		return NULL;
	memcpy(t->path, path, len);
	t->path[len] = '\0';
	t->path_len = len;
	t->hash = hash;
	live = hamt_get(h->root, path, len, hash);
	if (live) {
		snode_ref(live);
		snode_ref(live);
	}
	t->orig = live;
	t->cur = live;
	tx->n++;
	index_insert(tx->index, tx->index_cap, hash, (uint32_t)tx->n);
	return t;
}

int txn_count(struct store_txn *tx, uint32_t domid, int by)
{
	size_t i;

	for (i = 0; i < tx->nd; i++) {
		if (tx->d[i].domid == domid) {
			tx->d[i].nodes += by;
			return 0;
		}
	}
	if (tx->nd == tx->capd) {
		size_t cap = tx->capd ? tx->capd * 2 : 4;
		struct delta *v = realloc(tx->d, cap * sizeof(*v));

		if (!v) {
			tx->failed = true;
			return -STORE_ELOCAL;
		}
		tx->d = v;
		tx->capd = cap;
	}
	tx->d[tx->nd++] = (struct delta){.domid = domid, .nodes = by};
	return 0;
}

int store_txn_export(const struct store_txn *tx, struct store_commit *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->node_created = tx->node_created;
	out->failed = tx->failed;
	if (tx->n) {
		out->nodes = calloc(tx->n, sizeof(*out->nodes));
		if (!out->nodes)
			return -STORE_ELOCAL;
	}
	if (tx->nd) {
		out->deltas = calloc(tx->nd, sizeof(*out->deltas));
		if (!out->deltas) {
			free(out->nodes);
			out->nodes = NULL;
			return -STORE_ELOCAL;
		}
		for (i = 0; i < tx->nd; i++) {
			out->deltas[i].domid = tx->d[i].domid;
			out->deltas[i].nodes = tx->d[i].nodes;
		}
		out->ndeltas = tx->nd;
	}
	for (i = 0; i < tx->n; i++) {
		const struct txnode *t = &tx->nodes[i];
		struct store_commit_node *c = &out->nodes[i];

		c->path = t->path;
		c->existed = t->orig != NULL;
		c->generation = t->orig ? t->orig->generation : 0;
		c->modified = t->modified;
		c->exists = t->cur != NULL;
		if (t->modified && t->cur) {
			c->value = snode_value(t->cur);
			c->value_len = t->cur->value_len;
			c->perms = t->cur->perms;
			c->nperms = t->cur->nperms;
			c->children = snode_children(t->cur);
			c->children_len = t->cur->children_len;
		}
		c->fire_watch = t->fire_watch;
		c->watch_exact = t->watch_exact;
		if (t->orig) {
			c->first_perms = t->orig->perms;
			c->n_first_perms = t->orig->nperms;
		}
	}
	out->n = tx->n;
	return 0;
}

void store_commit_release(struct store_commit *cm)
{
	free(cm->nodes);
	free(cm->deltas);
	memset(cm, 0, sizeof(*cm));
}

/*
 * A commit comes from a log entry: whoever built it, it may put into the
 * tree only what the operations of a transaction could have. Each node
 * must have a valid path (no special node: those are changed outside
 * transactions), a record no bigger than a request could write, at least
 * an owner, and a well-formed child list whose children's paths are
 * valid too (a path no operation accepts would reach fixed-size buffers
 * later, when the subtree is removed). -EINVAL, on every replica alike.
 */
#define COMMIT_PATH_MAX 2048 /* XENSTORE_REL_PATH_MAX, as sm clamps it */
#define COMMIT_VALUE_MAX 4096 /* a request's whole payload */

static bool commit_node_valid(const struct store_commit_node *c)
{
	size_t plen, off = 0;

	if (!c->path || !store_path_valid(c->path, COMMIT_PATH_MAX))
		return false;
	if (!c->modified || !c->exists)
		return true; /* only read, or deleted: no record */
	if (c->nperms == 0 || c->nperms > COMMIT_VALUE_MAX ||
	    c->value_len > COMMIT_VALUE_MAX)
		return false;
	if (c->children_len && (!c->children ||
				c->children[c->children_len - 1] != '\0'))
		return false;
	plen = strlen(c->path);
	while (off < c->children_len) {
		const char *name = c->children + off;
		size_t n = strlen(name);

		if (n == 0 || memchr(name, '/', n) ||
		    plen + 1 + n > PATH_BUF - 1)
			return false;
		off += n + 1;
	}
	return true;
}

/* transaction_fix_domains(chk_quota): the node quota at commit. */
static int commit_quota(struct host *h, const struct store_caller *c,
			const struct store_commit *cm)
{
	size_t i;

	if (!cm->node_created || c->privileged || !c->quota.nodes)
		return 0;
	for (i = 0; i < cm->ndeltas; i++) {
		struct acct *a = acct_find(h, cm->deltas[i].domid, false);
		int64_t cnt = (a ? a->nodes : 0) + cm->deltas[i].nodes;

		if (cnt < 0)
			cnt = 0;
		if (cm->deltas[i].domid == 0)
			cnt = 0; /* domid_is_unprivileged() */
		if (cnt >= (int64_t)c->quota.nodes)
			return -ENOSPC;
	}
	return 0;
}

/* finalize_transaction(), first loop: every first-access generation. */
static bool commit_conflicts(struct host *h, const struct store_commit *cm)
{
	size_t i;

	for (i = 0; i < cm->n; i++) {
		const struct store_commit_node *c = &cm->nodes[i];
		size_t len = strlen(c->path);
		const struct snode *live =
			hamt_get(h->root, c->path, len, host_hash(h, c->path, len));
		uint64_t want = c->existed ? c->generation : NO_GENERATION;
		uint64_t have = live ? live->generation : NO_GENERATION;

		if (cm->existence_only ? c->existed != !!live : want != have)
			return true;
	}
	return false;
}

bool store_commit_conflicts(struct store *st, const char *host,
			    const struct store_commit *cm)
{
	struct host *h = store_host_find(st, host);
	struct store_commit by_generation;

	if (!h)
		return false;
	by_generation = *cm;
	by_generation.existence_only = false;
	return commit_conflicts(h, &by_generation);
}

static int commit_node(struct op *o, const struct store_commit_node *c)
{
	size_t len = strlen(c->path);
	uint64_t hash = host_hash(o->h, c->path, len);
	const struct snode *live = hamt_get(o->h->root, c->path, len, hash);
	uint32_t live_owner = live ? live->perms[0].domid : 0;
	int err = 0, rc;

	if (c->exists) {
		struct snode *n;

		if (c->nperms == 0)
			return -EINVAL;
		n = snode_new(c->path, len, hash, o->gen, c->perms, c->nperms,
			      c->value, c->value_len, c->children,
			      c->children_len);
		if (!n)
			return -STORE_ELOCAL;
		rc = op_put(o, n, false);
		if (!rc && live)
			rc = op_count(o, live_owner, -1);
		if (!rc)
			rc = op_count(o, c->perms[0].domid, 1);
		if (rc)
			return rc;
	} else if (live) {
		rc = op_del(o, c->path);
		if (!rc)
			rc = op_count(o, live_owner, -1);
		if (rc)
			return rc;
	}
	if (c->fire_watch)
		op_fire(o, c->path, op_get(o, c->path, &err), c->watch_exact,
			c->first_perms, c->n_first_perms);
	return 0;
}

/*
 * The records a commit carries are its transaction's, which kept the tree
 * whole; but they come from a log entry, and one that was damaged (or not
 * made by a transaction) must not leave nodes unlisted, listed twice or
 * missing: the tree is checked around every node it changed, against the
 * record before (found by tests/fuzz/fuzz_apply.c). -EINVAL, on every
 * replica alike; op_end() then puts everything back.
 */
static int commit_whole(struct op *o, const char *path)
{
	size_t len = strlen(path);
	const char *what;
	int rc;

	rc = store_check_around(o->h, path,
				hamt_get(o->saved_root, path, len,
					 host_hash(o->h, path, len)),
				&what);
	return rc == -ENOMEM ? -STORE_ELOCAL : rc ? -EINVAL : 0;
}

int store_commit(struct store *st, const char *host,
		 const struct store_caller *c, uint64_t index,
		 const struct store_commit *cm, struct store_events *ev)
{
	struct host *h = store_host_find(st, host);
	struct op o;
	size_t i;
	int rc;

	if (!h)
		return -EIO;
	if (cm->failed)
		return -ENOMEM; /* decided by the transaction: a refusal */
	for (i = 0; i < cm->n; i++)
		if (!commit_node_valid(&cm->nodes[i]))
			return -EINVAL;
	rc = commit_quota(h, c, cm);
	if (rc)
		return rc;
	if (commit_conflicts(h, cm))
		return -EAGAIN;
	/* Every node is as the transaction first saw it: apply its version. */
	op_begin(&o, st, h, NULL, c, index, ev);
	for (i = 0; i < cm->n && !rc; i++)
		if (cm->nodes[i].modified)
			rc = commit_node(&o, &cm->nodes[i]);
	for (i = 0; i < cm->n && !rc; i++)
		if (cm->nodes[i].modified)
			rc = commit_whole(&o, cm->nodes[i].path);
	rc = op_end(&o, rc);
	for (i = 0; i < cm->n && !rc; i++)
		if (cm->nodes[i].modified && cm->nodes[i].exists)
			store_note_shutdown(h, c, cm->nodes[i].path,
					    cm->nodes[i].value,
					    cm->nodes[i].value_len);
	return rc;
}
