/*
 * node/store/store_access.c: permission-checked access to a node
 * (cxenstored 4.17 get_node(), with errno_from_parents() hiding what the
 * caller may not know exists), and the reads built on it.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <string.h>

/* ---- Permission checks (get_node, errno hiding) ---------------------- */

bool err_propagates(int err)
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
		if (err_propagates(err))
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

const struct snode *op_get_node(struct op *o, const char *path,
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
	if (!n && !err_propagates(*err))
		*err = errno_from_parents(o, path, *err, perm);
	return n;
}

/* ---- Reads ---------------------------------------------------------- */

static const struct snode *read_op(struct store *st, const char *host,
				   struct store_txn *tx,
				   const struct store_caller *c,
				   const char *path, int *err)
{
	struct host *h = store_host_find(st, host);
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
	return op_get_node(&o, path, STORE_PERM_READ, err);
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
