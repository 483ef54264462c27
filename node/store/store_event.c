/*
 * node/store/store_event.c: the watch events a change records for its
 * caller (struct store_events), each with copies of the permissions that
 * filter unprivileged watchers (XSA-115), and fire_watches() of the
 * operations.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <stdlib.h>
#include <string.h>

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

void events_truncate(struct store_events *ev, size_t n)
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

static int perms_copy(struct store_perms *dst, const struct store_perm *src,
		      uint32_t n)
{
	dst->v = malloc((n ? n : 1) * sizeof(*src));
	if (!dst->v)
		return -STORE_ELOCAL;
	memcpy(dst->v, src, n * sizeof(*src));
	dst->n = n;
	return 0;
}

void event_perms(struct store_events *ev, struct store_perms *dst, bool *has,
		 const struct store_perm *src, uint32_t n)
{
	if (perms_copy(dst, src, n) == 0)
		*has = true;
	else
		ev->lost = true;
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
		struct txnode *t =
		    txn_lookup(o->tx, path, strlen(path),
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
	if (!o->ev)
		return;
	/*
	 * Out of memory here is not the change's failure: the tree is the
	 * same on every replica, only this member's events lack something,
	 * and lost tells the caller so (it fires every watch instead).
	 */
	if (events_push(o->ev, path, exact, &e)) {
		o->ev->lost = true;
		return;
	}
	if (node)
		event_perms(o->ev, &e->node, &e->has_node, node->perms,
			    node->nperms);
	/* A node always has an owner entry: no entries means no old perms. */
	if (old && n_old)
		event_perms(o->ev, &e->old, &e->has_old, old, n_old);
	if (path[0] == '/') {
		path_parent(path, parent);
		p = hamt_get(o->h->root, parent, strlen(parent),
			     host_hash(o->h, parent, strlen(parent)));
		if (p)
			event_perms(o->ev, &e->parent, &e->has_parent, p->perms,
				    p->nperms);
	}
}
