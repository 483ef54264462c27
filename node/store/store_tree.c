/*
 * node/store/store_tree.c: the changes to a host's tree (write, mkdir, rm,
 * set_perms), call for call as Xen 4.17's create_node, rm_node and
 * do_set_perms (tools/xenstore/xenstored_core.c): inside a transaction the
 * order of first touches decides the conflict set and the order of the
 * watch events fired at commit.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Paths ---------------------------------------------------------- */

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
	n = node_with(parent, parent->generation, parent->perms, parent->nperms,
		      snode_value(parent), parent->value_len, kids, cl + nl);
	free(kids);
	return n;
}

/* A copy of parent without child `name`, or NULL (+*err). */
static struct snode *without_child(const struct snode *parent, const char *name,
				   int *err)
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
	n = node_with(parent, parent->generation, parent->perms, parent->nperms,
		      snode_value(parent), parent->value_len, copy,
		      parent->children_len - nl);
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
			      i ? 0 : value_len, kids,
			      kids ? child_len + 1 : 0);
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
	struct host *h = store_host_find(st, host);
	const struct snode *n;
	struct snode *m;
	struct op o;
	int err = 0, rc;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = op_get_node(&o, path, STORE_PERM_WRITE, &err);
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
	rc = op_end(&o, 0);
	if (!rc && !tx)
		store_note_shutdown(h, c, path, value, len);
	return rc;
}

int store_mkdir(struct store *st, const char *host, struct store_txn *tx,
		const struct store_caller *c, uint64_t index, const char *path,
		struct store_events *ev)
{
	struct host *h = store_host_find(st, host);
	const struct snode *n;
	struct op o;
	int err = 0, rc;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = op_get_node(&o, path, STORE_PERM_WRITE, &err);
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
		return err_propagates(err) ? err : -EINVAL;
	snode_ref(parent);

	strcpy(cur, path);
	n = op_get(o, cur, &err);
	if (!n) {
		rc = err_propagates(err) ? err : -EIO;
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
				rc = err_propagates(err) ? err : -EIO;
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
	struct host *h = store_host_find(st, host);
	char pname[PATH_BUF];
	const struct snode *n;
	struct op o;
	int err = 0, e2 = 0;

	if (!h)
		return -EIO;
	op_begin(&o, st, h, tx, c, index, ev);
	n = op_get_node(&o, path, STORE_PERM_WRITE, &err);
	if (!n) {
		/* Didn't exist already? Fine, if the parent exists. */
		if (err == -ENOENT) {
			path_parent(path, pname);
			if (op_get(&o, pname, &e2))
				return op_end(&o, 0);
			err = err_propagates(e2) ? e2 : -ENOENT;
		}
		return op_end(&o, err);
	}
	if (strcmp(path, "/") == 0)
		return op_end(&o, -EINVAL);
	return op_end(&o, op_rm(&o, path));
}

static bool is_special(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(store_specials) / sizeof(store_specials[0]); i++)
		if (strcmp(path, store_specials[i]) == 0)
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
	struct host *h = store_host_find(st, host);
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
	n = op_get_node(&o, path, STORE_PERM_WRITE | STORE_PERM_OWNER, &err);
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
