/*
 * consensus/snap_diff.c: the difference between two versions of a host's tree
 * and registry (snap_diff.h), by walking both trees together from "/".
 *
 * A node present in both is compared by its record (generation, value,
 * permissions, child list); the children present in both are walked on,
 * those present in one store only are reported as replaced roots and not
 * walked (every node below them changed). Generations alone are not
 * enough: adding or removing a child keeps the parent's generation.
 */
#include "consensus/snap_diff.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One node as a store has it (borrowed from that store). */
struct nrec {
	bool exists;
	uint64_t generation;
	const char *value;
	size_t value_len;
	const struct store_perm *perms;
	uint32_t nperms;
	const char *children;
	size_t children_len;
};

struct walk {
	struct store *a, *b; /* old, new */
	const char *host;
	struct store_caller root;
	char *path;
	size_t len, cap;
	size_t budget; /* events left before giving up */
	struct snap_diff *df;
};

void snap_diff_init(struct snap_diff *df)
{
	memset(df, 0, sizeof(*df));
	store_events_init(&df->changed);
	store_events_init(&df->replaced);
	store_events_init(&df->touched);
}

void snap_diff_clear(struct snap_diff *df)
{
	store_events_clear(&df->changed);
	store_events_clear(&df->replaced);
	store_events_clear(&df->touched);
	snap_diff_init(df);
}

/* Read path from st into r; a missing host or node is !r->exists. */
static int fetch(struct walk *w, struct store *st, struct nrec *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!store_host_exists(st, w->host))
		return 0;
	rc = store_directory(st, w->host, NULL, &w->root, w->path,
			     &r->children, &r->children_len, &r->generation);
	if (rc == -ENOENT)
		return 0;
	if (!rc)
		rc = store_read(st, w->host, NULL, &w->root, w->path,
				&r->value, &r->value_len);
	if (!rc)
		rc = store_get_perms(st, w->host, NULL, &w->root, w->path,
				     &r->perms, &r->nperms);
	if (rc)
		return rc;
	r->exists = true;
	return 0;
}

static bool perms_equal(const struct store_perm *x, uint32_t nx,
			const struct store_perm *y, uint32_t ny)
{
	uint32_t i;

	if (nx != ny)
		return false;
	for (i = 0; i < nx; i++)
		if (x[i].domid != y[i].domid || x[i].access != y[i].access ||
		    x[i].ignore != y[i].ignore)
			return false;
	return true;
}

static bool same(const struct nrec *x, const struct nrec *y)
{
	return x->generation == y->generation &&
	       x->value_len == y->value_len &&
	       memcmp(x->value, y->value, x->value_len) == 0 &&
	       perms_equal(x->perms, x->nperms, y->perms, y->nperms) &&
	       x->children_len == y->children_len &&
	       memcmp(x->children, y->children, x->children_len) == 0;
}

static int copy_perms(struct store_perms *dst, const struct nrec *r)
{
	dst->v = malloc((r->nperms ? r->nperms : 1) * sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, r->perms, r->nperms * sizeof(*dst->v));
	dst->n = r->nperms;
	return 0;
}

/*
 * Append an event on the current path carrying the permissions a watcher
 * is filtered by (apply.c's permitted()): the new node, its new parent,
 * the old node. -E2BIG once the budget is spent.
 */
static int push(struct walk *w, struct store_events *ev, const struct nrec *old,
		const struct nrec *cur, const struct nrec *parent)
{
	struct store_event *e;
	int rc = 0;

	if (w->budget == 0)
		return -E2BIG;
	w->budget--;
	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 8;
		struct store_event *v = realloc(ev->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ev->v = v;
		ev->cap = cap;
	}
	e = &ev->v[ev->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(w->path);
	if (!e->path)
		return -ENOMEM;
	ev->n++; /* from here on store_events_clear() frees what is set */
	if (cur && cur->exists) {
		rc = copy_perms(&e->node, cur);
		e->has_node = !rc;
	}
	if (!rc && old && old->exists) {
		rc = copy_perms(&e->old, old);
		e->has_old = !rc;
	}
	if (!rc && parent && parent->exists) {
		rc = copy_perms(&e->parent, parent);
		e->has_parent = !rc;
	}
	return rc;
}

/* Make w->path the child `name` of the current path (*saved: old length). */
static int path_enter(struct walk *w, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = w->len + 1 + n + 1;

	if (need > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(w->path, cap);
		if (!p)
			return -ENOMEM;
		w->path = p;
		w->cap = cap;
	}
	*saved = w->len;
	if (w->len > 1)
		w->path[w->len++] = '/';
	memcpy(w->path + w->len, name, n + 1);
	w->len += n;
	return 0;
}

static void path_leave(struct walk *w, size_t saved)
{
	w->len = saved;
	w->path[saved] = '\0';
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The names of a child list, sorted (malloc()ed array, *n entries). */
static int names_sorted(const struct nrec *r, const char ***out, size_t *n)
{
	const char *p = r->children, *end = r->children + r->children_len;
	const char **v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	for (p = r->children; p < end; p += strlen(p) + 1)
		k++;
	if (!k)
		return 0;
	v = malloc(k * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k = 0;
	for (p = r->children; p < end; p += strlen(p) + 1)
		v[k++] = p;
	qsort(v, k, sizeof(*v), name_cmp);
	*out = v;
	*n = k;
	return 0;
}

static int walk_both(struct walk *w, const struct nrec *a, const struct nrec *b,
		     const struct nrec *parent_b);

/* Child `name` of the current path (rb: the current node, new store). */
static int walk_child(struct walk *w, const char *name, const struct nrec *rb)
{
	struct nrec ca, cb;
	size_t saved;
	int rc;

	rc = path_enter(w, name, &saved);
	if (rc)
		return rc;
	rc = fetch(w, w->a, &ca);
	if (!rc)
		rc = fetch(w, w->b, &cb);
	if (rc)
		goto out;
	if (ca.exists && cb.exists)
		rc = walk_both(w, &ca, &cb, rb);
	else if (ca.exists || cb.exists)
		rc = push(w, &w->df->replaced, &ca, &cb, rb);
out:
	path_leave(w, saved);
	return rc;
}

/*
 * The current path exists in both stores as a and b (parent_b: its
 * parent in the new store, NULL for "/"): report it if its record
 * differs, then go on with the union of the children.
 */
static int walk_both(struct walk *w, const struct nrec *a, const struct nrec *b,
		     const struct nrec *parent_b)
{
	const char **na = NULL, **nb = NULL;
	size_t ka, kb, i = 0, j = 0;
	int rc = 0;

	if (!same(a, b))
		rc = push(w, &w->df->changed, a, b, parent_b);
	if (!rc)
		rc = names_sorted(a, &na, &ka);
	if (!rc)
		rc = names_sorted(b, &nb, &kb);
	while (!rc && (i < ka || j < kb)) {
		int c = i == ka	  ? 1
			: j == kb ? -1
				  : strcmp(na[i], nb[j]);

		if (c <= 0)
			rc = walk_child(w, na[i], b);
		else
			rc = walk_child(w, nb[j], b);
		i += c <= 0;
		j += c >= 0;
	}
	free(na);
	free(nb);
	return rc;
}

/* Special events for domains that joined or left the registry. */
static int diff_registry(struct walk *w)
{
	struct snap_diff *df = w->df;
	size_t i, n;
	int rc = 0;

	n = store_domain_count(w->b, w->host);
	for (i = 0; i < n && !df->introduced; i++)
		df->introduced = !store_domain_get(
			w->a, w->host, store_domain_at(w->b, w->host, i)->domid);
	n = store_domain_count(w->a, w->host);
	for (i = 0; i < n && !df->released; i++)
		df->released = !store_domain_get(
			w->b, w->host, store_domain_at(w->a, w->host, i)->domid);
	if (df->introduced)
		rc = store_special_event(w->b, w->host, "@introduceDomain",
					 &df->changed);
	if (!rc && df->released)
		rc = store_special_event(
			store_host_exists(w->b, w->host) ? w->b : w->a,
			w->host, "@releaseDomain", &df->changed);
	/* a host without special nodes yet: nobody can watch them there */
	return rc == -ENOENT ? 0 : rc;
}

/* Give up on details: every watch fires. */
static int snap_diff_fail(struct snap_diff *df, int rc)
{
	snap_diff_clear(df);
	df->all = true;
	return rc;
}

/* A walk of host in old_st and new_st as a privileged reader (no path
 * limit), with budget events to give. */
static void walk_init(struct walk *w, struct store *old_st,
		      struct store *new_st, const char *host, size_t budget,
		      struct snap_diff *df)
{
	memset(w, 0, sizeof(*w));
	w->a = old_st;
	w->b = new_st;
	w->host = host;
	w->root.domid = 0;
	w->root.privileged = true;
	w->root.target = STORE_NO_TARGET;
	w->root.quota = (struct store_quota)STORE_QUOTA_INIT;
	w->root.quota.path_max = UINT32_MAX;
	w->budget = budget;
	w->df = df;
}

int snap_diff(struct store *old_st, struct store *new_st, const char *host,
	      struct snap_diff *df)
{
	struct walk w;
	struct nrec a, b;
	int rc;

	walk_init(&w, old_st, new_st, host, SNAP_DIFF_MAX_EVENTS, df);
	w.cap = 256;
	w.path = malloc(w.cap);
	if (!w.path)
		return snap_diff_fail(df, -ENOMEM);
	strcpy(w.path, "/");
	w.len = 1;
	rc = fetch(&w, old_st, &a);
	if (!rc)
		rc = fetch(&w, new_st, &b);
	if (!rc && a.exists && b.exists)
		rc = walk_both(&w, &a, &b, NULL);
	else if (!rc && (a.exists || b.exists))
		rc = push(&w, &df->replaced, &a, &b, NULL);
	if (!rc)
		rc = diff_registry(&w);
	free(w.path);
	if (rc == -E2BIG)
		return snap_diff_fail(df, 0); /* too much to say one by one */
	/* reads do not fail: anything else is a failed allocation */
	return rc ? snap_diff_fail(df, -ENOMEM) : 0;
}

int snap_diff_touch(struct store *old_st, struct store *new_st,
		    const char *host, const char *path, bool exact,
		    struct snap_diff *df)
{
	struct walk w;
	struct nrec a, b, parent;
	const char *slash = strrchr(path, '/');
	int rc;

	if (df->all)
		return 0;
	walk_init(&w, old_st, new_st, host, SIZE_MAX, df);
	w.path = strdup(path);
	if (!w.path)
		return snap_diff_fail(df, -ENOMEM);
	w.len = strlen(path);
	memset(&parent, 0, sizeof(parent));
	rc = fetch(&w, old_st, &a);
	if (!rc)
		rc = fetch(&w, new_st, &b);
	if (!rc && slash && w.len > 1) {
		/* the parent: "/" for "/x", else the path up to the slash */
		w.path[slash == path ? 1 : (size_t)(slash - path)] = '\0';
		rc = fetch(&w, new_st, &parent);
		if (!rc && !parent.exists)
			rc = fetch(&w, old_st, &parent);
		strcpy(w.path, path);
	}
	/* a node in neither store (created and removed again among the
	 * skipped entries) had, while it existed, the permissions it
	 * inherited from its parent */
	if (!rc)
		rc = push(&w, &df->touched, &a,
			  a.exists || b.exists ? &b : &parent, &parent);
	if (!rc)
		df->touched.v[df->touched.n - 1].exact = exact;
	free(w.path);
	return rc ? snap_diff_fail(df, -ENOMEM) : 0;
}
