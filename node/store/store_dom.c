/*
 * node/store/store_dom.c: the domain registry of each host (see store.h), and
 * what happens to a host's tree when a domain goes away (cxenstored 4.17
 * destroy_domain(): domain_tree_remove(), remove_domid_from_perm()).
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The table --------------------------------------------------------- */

static size_t dom_pos(const struct host *h, uint32_t domid, bool *found)
{
	size_t lo = 0, hi = h->ndoms;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (h->doms[mid].domid == domid) {
			*found = true;
			return mid;
		}
		if (h->doms[mid].domid < domid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct store_domain *dom_find(const struct host *h, uint32_t domid)
{
	bool found;
	size_t i = dom_pos(h, domid, &found);

	return found ? &h->doms[i] : NULL;
}

static struct store_domain *dom_add(struct host *h, uint32_t domid)
{
	bool found;
	size_t i = dom_pos(h, domid, &found);

	if (found)
		return &h->doms[i];
	if (h->ndoms == h->capdoms) {
		size_t cap = h->capdoms ? 2 * h->capdoms : 8;
		struct store_domain *v = realloc(h->doms, cap * sizeof(*v));

		if (!v)
			return NULL;
		h->doms = v;
		h->capdoms = cap;
	}
	memmove(h->doms + i + 1, h->doms + i,
		(h->ndoms - i) * sizeof(*h->doms));
	memset(&h->doms[i], 0, sizeof(h->doms[i]));
	h->doms[i].domid = domid;
	h->doms[i].target = STORE_NO_TARGET;
	h->ndoms++;
	return &h->doms[i];
}

static void watches_clear(struct store_domain *d)
{
	uint32_t i;

	for (i = 0; i < d->nwatches; i++) {
		free(d->watches[i].path);
		free(d->watches[i].token);
	}
	d->nwatches = 0;
}

void store_domain_close(struct store_domain *d)
{
	watches_clear(d);
	free(d->watches);
	d->watches = NULL;
	d->capwatches = 0;
}

static void dom_remove(struct host *h, uint32_t domid)
{
	bool found;
	size_t i = dom_pos(h, domid, &found);

	if (!found)
		return;
	store_domain_close(&h->doms[i]);
	memmove(h->doms + i, h->doms + i + 1,
		(h->ndoms - i - 1) * sizeof(*h->doms));
	h->ndoms--;
}

void host_doms_free(struct host *h)
{
	size_t i;

	for (i = 0; i < h->ndoms; i++)
		store_domain_close(&h->doms[i]);
	free(h->doms);
	h->doms = NULL;
	h->ndoms = h->capdoms = 0;
}

static int watch_push(struct store_domain *d, const char *path,
		      const char *token)
{
	struct store_watch w;

	if (d->nwatches == d->capwatches) {
		uint32_t cap = d->capwatches ? 2 * d->capwatches : 4;
		struct store_watch *v = realloc(d->watches, cap * sizeof(*v));

		if (!v)
			return -STORE_ELOCAL;
		d->watches = v;
		d->capwatches = cap;
	}
	w.path = strdup(path);
	w.token = strdup(token);
	if (!w.path || !w.token) {
		free(w.path);
		free(w.token);
		return -STORE_ELOCAL;
	}
	d->watches[d->nwatches++] = w;
	return 0;
}

int store_domain_copy(struct store_domain *dst, const struct store_domain *src)
{
	uint32_t i;

	*dst = *src;
	dst->watches = NULL;
	dst->nwatches = dst->capwatches = 0;
	for (i = 0; i < src->nwatches; i++) {
		if (watch_push(dst, src->watches[i].path,
			       src->watches[i].token)) {
			store_domain_close(dst);
			return -STORE_ELOCAL;
		}
	}
	return 0;
}

const struct store_domain *store_domain_get(const struct store *st,
					    const char *host, uint32_t domid)
{
	const struct host *h = store_host_find(st, host);

	return h ? dom_find(h, domid) : NULL;
}

size_t store_domain_count(const struct store *st, const char *host)
{
	const struct host *h = store_host_find(st, host);

	return h ? h->ndoms : 0;
}

const struct store_domain *store_domain_at(const struct store *st,
					   const char *host, size_t i)
{
	const struct host *h = store_host_find(st, host);

	return h && i < h->ndoms ? &h->doms[i] : NULL;
}

/* ---- Events on the special nodes ------------------------------------- */

static const struct snode *special_node(const struct host *h,
					const char *path)
{
	size_t len = strlen(path);

	return hamt_get(h->root, path, len, host_hash(h, path, len));
}

static int push_special(const struct host *h, const char *path,
			struct store_events *ev)
{
	const struct snode *n = special_node(h, path);
	struct store_event *e;
	int rc;

	if (!n)
		return -ENOENT;
	if (!ev)
		return 0;
	rc = events_push(ev, path, true, &e);
	if (rc)
		return rc;
	event_perms(ev, &e->node, &e->has_node, n->perms, n->nperms);
	return 0;
}

int store_special_event(const struct store *st, const char *host,
			const char *path, struct store_events *ev)
{
	const struct host *h = store_host_find(st, host);

	if (!h || path[0] != '@')
		return -ENOENT;
	return push_special(h, path, ev);
}

/* ---- Introduction ------------------------------------------------------ */

int store_domain_introduce(struct store *st, const char *host, uint32_t domid,
			   uint64_t mfn, uint32_t port, uint64_t index,
			   bool fire_event, struct store_events *ev)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d;
	bool is_new;

	if (!h)
		return -EIO;
	is_new = !dom_find(h, domid);
	d = dom_add(h, domid);
	if (!d)
		return -STORE_ELOCAL;
	d->mfn = mfn;
	d->port = port;
	d->ring_id = index;
	d->ring_error = 0;
	watches_clear(d);
	if (is_new && fire_event)
		return push_special(h, store_specials[0], ev);
	return 0;
}

int store_domain_resume(struct store *st, const char *host, uint32_t domid)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d = h ? dom_find(h, domid) : NULL;

	if (!d)
		return -ENOENT;
	d->suspending = false;
	return 0;
}

void store_note_shutdown(struct host *h, const struct store_caller *c,
			 const char *path, const void *value, size_t len)
{
	static const char pre[] = "/local/domain/", post[] = "/control/shutdown";
	struct store_domain *d;
	unsigned long domid;
	char *end;

	if (!c->privileged || strncmp(path, pre, sizeof(pre) - 1) != 0)
		return;
	path += sizeof(pre) - 1;
	if (path[0] < '0' || path[0] > '9')
		return;
	domid = strtoul(path, &end, 10);
	if (strcmp(end, post) != 0 || domid >= 0x7FF0 || domid == c->domid)
		return;
	d = dom_find(h, (uint32_t)domid);
	if (d)
		d->suspending = len == 7 && memcmp(value, "suspend", 7) == 0;
}

/*
 * A domain that goes away is nobody's target any more: a reused domid must
 * not be owned by the old stub domain (SET_TARGET does not survive it).
 */
static void targets_forget(struct host *h, uint32_t domid)
{
	size_t i;

	for (i = 0; i < h->ndoms; i++)
		if (h->doms[i].target == domid)
			h->doms[i].target = STORE_NO_TARGET;
}

int store_domain_set_target(struct store *st, const char *host,
			    uint32_t domid, uint32_t target)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d;

	if (!h)
		return -EIO;
	d = dom_find(h, domid);
	if (!d || !dom_find(h, target))
		return -ENOENT;
	d->target = target;
	return 0;
}

int store_domain_watch(struct store *st, const char *host, uint32_t domid,
		       const char *path, const char *token,
		       uint32_t max_watches)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d = h ? dom_find(h, domid) : NULL;
	uint32_t i;

	if (!d)
		return -ENOENT;
	for (i = 0; i < d->nwatches; i++)
		if (strcmp(d->watches[i].path, path) == 0 &&
		    strcmp(d->watches[i].token, token) == 0)
			return -EEXIST;
	if (max_watches && d->nwatches > max_watches)
		return -E2BIG;
	return watch_push(d, path, token);
}

int store_domain_unwatch(struct store *st, const char *host, uint32_t domid,
			 const char *path, const char *token)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d = h ? dom_find(h, domid) : NULL;
	uint32_t i;

	if (!d)
		return -ENOENT;
	for (i = 0; i < d->nwatches; i++) {
		if (strcmp(d->watches[i].path, path) == 0 &&
		    strcmp(d->watches[i].token, token) == 0) {
			free(d->watches[i].path);
			free(d->watches[i].token);
			memmove(d->watches + i, d->watches + i + 1,
				(d->nwatches - i - 1) * sizeof(*d->watches));
			d->nwatches--;
			return 0;
		}
	}
	return -ENOENT;
}

int store_domain_reset_watches(struct store *st, const char *host,
			       uint32_t domid)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d = h ? dom_find(h, domid) : NULL;

	if (!d)
		return -ENOENT;
	watches_clear(d);
	return 0;
}

int store_domain_ring_reset(struct store *st, const char *host,
			    uint32_t domid, uint32_t error, uint64_t index)
{
	struct host *h = store_host_find(st, host);
	struct store_domain *d = h ? dom_find(h, domid) : NULL;

	if (!d)
		return -ENOENT;
	watches_clear(d);
	d->ring_error = error;
	if (!error)
		d->ring_id = index;
	return 0;
}

/* ---- A domain goes away ------------------------------------------------ */

/* Does any entry after the owner name domid (and count)? */
static bool names(const struct snode *n, uint32_t domid)
{
	uint32_t i;

	for (i = 1; i < n->nperms; i++)
		if (n->perms[i].domid == domid && !n->perms[i].ignore)
			return true;
	return false;
}

/* n with every non-owner entry naming domid marked ignored. */
static int mark_ignored(struct op *o, const struct snode *n, uint32_t domid)
{
	struct store_perm *p = malloc(n->nperms * sizeof(*p));
	struct snode *m;
	uint32_t i;
	int rc;

	if (!p)
		return -STORE_ELOCAL;
	memcpy(p, n->perms, n->nperms * sizeof(*p));
	for (i = 1; i < n->nperms; i++)
		if (p[i].domid == domid)
			p[i].ignore = 1;
	/* same generation: no transaction conflicts over this */
	m = snode_new(snode_path(n), n->path_len, n->hash, n->generation, p,
		      n->nperms, snode_value(n), n->value_len,
		      snode_children(n), n->children_len);
	free(p);
	if (!m)
		return -STORE_ELOCAL;
	rc = store_err_local(hamt_set(&o->h->root, m));
	if (rc)
		snode_unref(m);
	return rc;
}

struct frame {
	char *path;
};

/*
 * domain_tree_remove(): pre-order walk from "/" in children order; a node
 * owned by the domain goes with its subtree. Nodes that stay lose the
 * domain from their permissions (marked ignored, so that a new domain with
 * the same id inherits nothing: XSA-322).
 */
static int tree_remove(struct op *o, uint32_t domid)
{
	struct frame *stack = NULL;
	size_t depth = 0, cap = 0;
	int rc = 0;

	stack = malloc(16 * sizeof(*stack));
	if (!stack)
		return -STORE_ELOCAL;
	cap = 16;
	stack[depth++].path = strdup("/");
	if (!stack[0].path) {
		free(stack);
		return -STORE_ELOCAL;
	}
	while (depth && !rc) {
		char *path = stack[--depth].path;
		const struct snode *n;
		const char *kids, *end, *k;
		size_t nkids = 0, pl = strlen(path), j;
		int err = 0;

		n = op_get(o, path, &err);
		if (!n) {
			free(path);
			continue;
		}
		if (strcmp(path, "/") != 0 && n->perms[0].domid == domid) {
			rc = op_rm(o, path);
			free(path);
			continue;
		}
		if (names(n, domid)) {
			rc = mark_ignored(o, n, domid);
			if (rc) {
				free(path);
				break;
			}
			n = op_get(o, path, &err);
		}
		/* push children in reverse, to visit them in order */
		kids = snode_children(n);
		end = kids + n->children_len;
		for (k = kids; k < end; k += strlen(k) + 1)
			nkids++;
		if (depth + nkids > cap) {
			size_t nc = 2 * (depth + nkids);
			struct frame *v = realloc(stack, nc * sizeof(*v));

			if (!v) {
				free(path);
				rc = -STORE_ELOCAL;
				break;
			}
			stack = v;
			cap = nc;
		}
		for (j = depth; j < depth + nkids; j++)
			stack[j].path = NULL;
		j = depth + nkids;
		for (k = kids; k < end && !rc; k += strlen(k) + 1) {
			size_t kl = strlen(k);
			char *c = malloc(pl + 1 + kl + 1);

			if (!c) {
				rc = -STORE_ELOCAL;
				break;
			}
			if (pl == 1)
				sprintf(c, "/%s", k);
			else
				sprintf(c, "%s/%s", path, k);
			stack[--j].path = c;
		}
		depth += nkids;
		free(path);
	}
	while (depth)
		free(stack[--depth].path); /* NULL after a failure: fine */
	free(stack);
	return rc;
}

/* remove_domid_from_perm() on a special node. */
static int special_forget(struct op *o, const char *path, uint32_t domid)
{
	const struct snode *n = special_node(o->h, path);
	struct store_perm *p;
	struct snode *m;
	uint32_t i, k = 1;
	bool changed;
	int rc;

	if (!n || !n->nperms)
		return 0;
	changed = n->perms[0].domid == domid;
	for (i = 1; i < n->nperms; i++)
		changed |= n->perms[i].domid == domid;
	if (!changed)
		return 0;
	p = malloc(n->nperms * sizeof(*p));
	if (!p)
		return -STORE_ELOCAL;
	p[0] = n->perms[0];
	if (p[0].domid == domid)
		p[0].domid = 0;
	for (i = 1; i < n->nperms; i++)
		if (n->perms[i].domid != domid)
			p[k++] = n->perms[i];
	m = snode_new(snode_path(n), n->path_len, n->hash, n->generation, p, k,
		      NULL, 0, NULL, 0);
	free(p);
	if (!m)
		return -STORE_ELOCAL;
	rc = store_err_local(hamt_set(&o->h->root, m));
	if (rc)
		snode_unref(m);
	return rc;
}

int store_domain_gone(struct store *st, const char *host, uint32_t domid,
		      uint64_t index, struct store_events *ev)
{
	struct store_caller dom0 = {.domid = 0, .privileged = true,
				    .target = STORE_NO_TARGET,
				    .quota = STORE_QUOTA_INIT};
	struct host *h = store_host_find(st, host);
	struct store_domain *d;
	uint64_t ring_id;
	struct op o;
	int rc;

	if (!h)
		return -EIO;
	d = dom_find(h, domid);
	if (!d)
		return -ENOENT;
	ring_id = d->ring_id;
	op_begin(&o, st, h, NULL, &dom0, index, ev);
	rc = domid ? tree_remove(&o, domid) : 0;
	if (!rc)
		rc = special_forget(&o, store_specials[1], domid);
	if (!rc)
		rc = special_forget(&o, store_specials[0], domid);
	if (!rc)
		rc = push_special(h, store_specials[1], ev);
	rc = op_end(&o, rc);
	if (rc)
		return rc;
	dom_remove(h, domid);
	targets_forget(h, domid);
	quota_drop(h, domid);
	store_session_forget(st, STORE_RING_ORIGIN(ring_id));
	return 0;
}
