/*
 * node/store/store_check.c: the consistency checker of the whole store: every
 * invariant the store's code keeps, checked from scratch (CONTROL check,
 * store_restore_finish, the tests after every mutation, and the daemon
 * after every applied entry in an XSR_CHECK_STORE build). Reads only.
 *
 * Walks are iterative (XSA-418: deep trees must not exhaust the stack).
 */
#include "node/store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const specials[] = {"@introduceDomain", "@releaseDomain"};
#define N_SPECIAL (sizeof(specials) / sizeof(specials[0]))

struct chk {
	const struct store *st;
	const struct host *h;
	const char *what; /* the first violation (static) */
	char where[160];  /* its host and path */
	bool generations; /* check generations against the applied index */
	struct host shadow; /* accounting recomputed from the tree */
	size_t reachable, specials;
};

static int bad(struct chk *c, const char *what, const char *path)
{
	if (!c->what) {
		c->what = what;
		snprintf(c->where, sizeof(c->where), "host %s%s%.100s",
			 c->h && c->h->name ? c->h->name : "-",
			 path ? ", node " : "", path ? path : "");
	}
	return -EIO;
}

/* One record, wherever it is: its own fields. */
static int check_record(struct chk *c, const struct snode *n)
{
	const char *path = snode_path(n), *ch = snode_children(n);
	uint32_t i;
	size_t off;

	if (n->nperms == 0)
		return bad(c, "a node without permissions (no owner)", path);
	for (i = 0; i < n->nperms; i++)
		if ((n->perms[i].access & ~(STORE_PERM_READ | STORE_PERM_WRITE)) ||
		    n->perms[i].ignore > 1)
			return bad(c, "a permission entry with unknown bits",
				   path);
	if (c->generations && c->st->applied_index &&
	    n->generation != NO_GENERATION &&
	    n->generation > c->st->applied_index)
		return bad(c, "a node's generation is above the applied index",
			   path);
	if (n->children_len && ch[n->children_len - 1] != '\0')
		return bad(c, "a child list is not NUL-terminated", path);
	for (off = 0; off < n->children_len; off += strlen(ch + off) + 1) {
		if (!ch[off])
			return bad(c, "an empty child name", path);
		if (strchr(ch + off, '/'))
			return bad(c, "a child name holds a '/'", path);
	}
	return 0;
}

static int count_owner(struct chk *c, const struct snode *n)
{
	struct acct *a = acct_find(&c->shadow, n->perms[0].domid, true);

	if (!a)
		return -ENOMEM;
	a->nodes++;
	a->memory += snode_memory(n);
	return 0;
}

static int visit(const struct snode *n, void *arg)
{
	struct chk *c = arg;
	int rc = check_record(c, n);

	if (rc)
		return rc;
	c->reachable++;
	return count_owner(c, n);
}

static int missing(const char *path, void *arg)
{
	return bad(arg, strcmp(path, "/") ? "a listed child is missing"
					  : "a host without a root node",
		   path);
}

/*
 * The tree from "/": parents before children. Every listed child exists
 * (its record is found under parent path + "/" + name), and every node
 * counts once toward its owner.
 */
static int check_tree(struct chk *c)
{
	return store_walk_tree(c->h->root, c->h->hash_key, SIZE_MAX, visit,
			       missing, c);
}

/* Every record of the trie: a tree node's parent lists it; or a special. */
static int check_one(const struct snode *n, void *arg)
{
	struct chk *c = arg;
	const char *path = snode_path(n), *slash, *ch;
	char parent[PATH_BUF];
	const struct snode *p;
	size_t k, off, plen;

	if (path[0] == '@') {
		for (k = 0; k < N_SPECIAL; k++)
			if (!strcmp(path, specials[k]))
				break;
		if (k == N_SPECIAL)
			return bad(c, "an unknown special node", path);
		if (n->children_len)
			return bad(c, "a special node with children", path);
		c->specials++;
		return check_record(c, n);
	}
	if (path[0] != '/')
		return bad(c, "a node path neither absolute nor special", path);
	if (n->path_len == 1)
		return 0;
	if (path[n->path_len - 1] == '/' || strstr(path, "//"))
		return bad(c, "a node path with an empty component", path);
	if (n->path_len >= sizeof(parent))
		return bad(c, "a node path longer than any request", path);
	/* its parent exists and lists its name exactly once */
	slash = strrchr(path, '/');
	plen = slash == path ? 1 : (size_t)(slash - path);
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	p = hamt_get(c->h->root, parent, plen, host_hash(c->h, parent, plen));
	if (!p)
		return bad(c, "a node whose parent does not exist", path);
	ch = snode_children(p);
	for (k = 0, off = 0; off < p->children_len;
	     off += strlen(ch + off) + 1)
		if (!strcmp(ch + off, slash + 1))
			k++;
	if (k != 1)
		return bad(c, k ? "a child listed twice by its parent"
				: "a node its parent does not list",
			   path);
	return 0;
}

/* ---- Around one path (store_commit) ----------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Does child `name` of parent `path` exist in c->h? */
static bool child_exists(struct chk *c, const char *path, const char *name)
{
	char buf[PATH_BUF];
	int n = snprintf(buf, sizeof(buf), "%s/%s", strcmp(path, "/") ? path : "",
			 name);

	return n > 0 && (size_t)n < sizeof(buf) &&
	       hamt_get(c->h->root, buf, (size_t)n,
			host_hash(c->h, buf, (size_t)n)) != NULL;
}

/*
 * n's children, after its record changed from `before` (NULL: it is new):
 * each listed once and existing, and every child of before that exists
 * still listed. O(k log k).
 */
static int check_children(struct chk *c, const struct snode *n,
			  const struct snode *before)
{
	const char *path = snode_path(n), *ch = snode_children(n), **v;
	size_t k = 0, i, off;
	int rc = 0;

	v = malloc((n->children_len / 2 + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (off = 0; off < n->children_len; off += strlen(ch + off) + 1)
		v[k++] = ch + off;
	qsort(v, k, sizeof(*v), cmp_names);
	for (i = 0; !rc && i < k; i++) {
		if (i && !strcmp(v[i - 1], v[i]))
			rc = bad(c, "a child listed twice by its parent", path);
		else if (!child_exists(c, path, v[i]))
			rc = bad(c, "a listed child is missing", path);
	}
	ch = before ? snode_children(before) : "";
	for (off = 0; !rc && before && off < before->children_len;
	     off += strlen(ch + off) + 1)
		if (!bsearch(&(const char *){ch + off}, v, k, sizeof(*v),
			     cmp_names) &&
		    child_exists(c, path, ch + off))
			rc = bad(c, "a node its parent does not list", path);
	free(v);
	return rc;
}

int store_check_around(const struct host *h, const char *path,
		       const struct snode *before, const char **what)
{
	struct chk c;
	const struct snode *n, *p;
	char parent[PATH_BUF];
	const char *ch;
	size_t len = strlen(path), off;
	int rc;

	memset(&c, 0, sizeof(c));
	c.h = h;
	n = hamt_get(h->root, path, len, host_hash(h, path, len));
	if (n) {
		rc = check_record(&c, n);
		if (!rc)
			rc = check_one(n, &c);
		if (!rc)
			rc = check_children(&c, n, before);
	} else if (!strcmp(path, "/")) {
		rc = bad(&c, "a host without a root node", path);
	} else {
		/* gone: unlisted by its parent, and its children gone too */
		rc = 0;
		if (len < sizeof(parent) && path[0] == '/') {
			path_parent(path, parent);
			p = hamt_get(h->root, parent, strlen(parent),
				     host_hash(h, parent, strlen(parent)));
			ch = p ? snode_children(p) : "";
			for (off = 0; p && off < p->children_len;
			     off += strlen(ch + off) + 1)
				if (!strcmp(ch + off, strrchr(path, '/') + 1))
					rc = bad(&c, "a parent lists a removed "
						     "node",
						 path);
		}
		ch = before ? snode_children(before) : "";
		for (off = 0; !rc && before && off < before->children_len;
		     off += strlen(ch + off) + 1)
			if (child_exists(&c, path, ch + off))
				rc = bad(&c, "a node whose parent does not "
					     "exist",
					 path);
	}
	*what = c.what;
	return rc;
}

static int check_accounting(struct chk *c)
{
	const struct host *h = c->h;
	size_t k;

	for (k = 0; k < h->nacct; k++) {
		const struct acct *a = &h->acct[k];

		if (k && h->acct[k - 1].domid >= a->domid)
			return bad(c, "accounting not sorted by domid", NULL);
		if (a->nodes < 0 || a->memory < 0)
			return bad(c, "negative accounting", NULL);
		if ((a->nodes || a->memory) &&
		    !acct_find(&c->shadow, a->domid, false))
			return bad(c, "accounting for no nodes", NULL);
	}
	if (h->nacct > h->capacct)
		return bad(c, "accounting overflows its array", NULL);
	for (k = 0; k < c->shadow.nacct; k++) {
		const struct acct *s = &c->shadow.acct[k];
		const struct acct *a = acct_find((struct host *)h, s->domid,
						 false);

		if (!a || a->nodes != s->nodes)
			return bad(c, "node accounting differs from a recount",
				   NULL);
		if (a->memory != s->memory)
			return bad(c, "memory accounting differs from a recount",
				   NULL);
	}
	return 0;
}

static int check_registry(struct chk *c)
{
	const struct host *h = c->h;
	size_t i;
	uint32_t w, v;

	if (h->ndoms > h->capdoms)
		return bad(c, "the registry overflows its array", NULL);
	for (i = 0; i < h->ndoms; i++) {
		const struct store_domain *d = &h->doms[i];

		if (i && h->doms[i - 1].domid >= d->domid)
			return bad(c, "the registry is not sorted by domid",
				   NULL);
		if (d->ring_id == 0)
			return bad(c, "an introduced domain without a ring "
				      "session",
				   NULL);
		if (d->nwatches > d->capwatches ||
		    (d->nwatches && !d->watches))
			return bad(c, "a domain's watches overflow their array",
				   NULL);
		for (w = 0; w < d->nwatches; w++) {
			if (!d->watches[w].path || !d->watches[w].token)
				return bad(c, "a watch without path or token",
					   NULL);
			for (v = 0; v < w; v++)
				if (!strcmp(d->watches[v].path,
					    d->watches[w].path) &&
				    !strcmp(d->watches[v].token,
					    d->watches[w].token))
					return bad(c, "a watch registered twice",
						   d->watches[w].path);
		}
	}
	return 0;
}

static int check_host(struct chk *c)
{
	const struct host *h = c->h;
	const char *what = NULL;
	size_t total;
	int rc;

	if (!h->name || !h->name[0])
		return bad(c, "a host without a name", NULL);
	rc = hamt_check(h->root, h->hash_key ? h->hash_key
					     : store_hash_key_default,
			&what);
	if (rc)
		return bad(c, what, NULL);
	rc = check_tree(c);
	if (!rc)
		rc = hamt_foreach(h->root, check_one, c);
	if (rc)
		return rc;
	total = hamt_count(h->root);
	if (c->reachable + c->specials != total)
		return bad(c, c->reachable + c->specials > total
				      ? "a node reached twice from the root"
				      : "unreachable nodes",
			   NULL);
	rc = check_accounting(c);
	if (!rc)
		rc = check_registry(c);
	if (!rc && quota_check(h, &what))
		return bad(c, what, NULL);
	return rc;
}

static int check_sessions(struct chk *c)
{
	const struct store *st = c->st;
	size_t i, k;

	for (i = 0; i < st->nsess; i++) {
		const struct session *s = st->sess[i];

		if (!s)
			return bad(c, "a null session", NULL);
		if (i && st->sess[i - 1]->origin >= s->origin)
			return bad(c, "sessions not sorted by origin", NULL);
		for (k = 0; k < STORE_SESSION_WINDOW; k++) {
			uint64_t seq = s->ring[k].seq;

			if (seq == 0)
				continue;
			/* older than the window: stale, never read */
			if (seq % STORE_SESSION_WINDOW != k || seq > s->last)
				return bad(c, "a session result out of its "
					      "window slot",
					   NULL);
		}
		if (s->last &&
		    s->ring[s->last % STORE_SESSION_WINDOW].seq != s->last)
			return bad(c, "a session without its last result",
				   NULL);
	}
	return 0;
}

static int check_members(struct chk *c)
{
	const struct store *st = c->st;
	size_t i, k;

	for (i = 0; i < st->nmembers; i++) {
		const struct store_member *m = &st->members[i];

		if (i && st->members[i - 1].id >= m->id)
			return bad(c, "members not sorted by id", NULL);
		if (!m->name || !m->raft_address || !m->peer_address)
			return bad(c, "a member without name or address", NULL);
		for (k = 0; k < i; k++)
			if (!strcmp(st->members[k].name, m->name))
				return bad(c, "two members of one name", NULL);
	}
	return 0;
}

static int check_all(struct chk *c)
{
	const struct store *st = c->st;
	size_t i;
	int rc;

	if (st->restoring)
		return bad(c, "a restore is unfinished", NULL);
	for (i = 0; i < st->nhosts; i++) {
		if (i && strcmp(st->hosts[i - 1].name, st->hosts[i].name) >= 0)
			return bad(c, "hosts not sorted by name", NULL);
		c->h = &st->hosts[i];
		c->reachable = c->specials = 0;
		c->shadow.nacct = 0;
		rc = check_host(c);
		if (rc)
			return rc;
	}
	c->h = NULL;
	rc = check_sessions(c);
	if (!rc)
		rc = check_members(c);
	return rc;
}

int store_check_report(const struct store *st, char *msg, size_t len)
{
	struct chk c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.st = st;
	c.generations = true;
	rc = check_all(&c);
	free(c.shadow.acct);
	if (msg && len)
		snprintf(msg, len, "%s%s%s", c.what ? c.what : "",
			 c.what ? ": " : "", c.what ? c.where : "");
	if (rc == -ENOMEM && !c.what && msg && len)
		snprintf(msg, len, "out of memory while checking");
	return rc;
}

int store_check(const struct store *st, const char **what)
{
	struct chk c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.st = st;
	rc = check_all(&c);
	free(c.shadow.acct);
	*what = c.what;
	return rc;
}

void store_check_or_abort(const struct store *st, const char *file, int line)
{
	char msg[256];

	if (store_check_report(st, msg, sizeof(msg)) == 0)
		return;
	/* A debug build's assertion over the whole store: like assert(). */
	fprintf(stderr, "%s:%d: store_check_after_apply: %s\n", file, line,
		msg);
	abort();
}
