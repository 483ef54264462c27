/*
 * node/store/store_move.c: a domain's store state moves from one host's tree to
 * another's (migration, adoption after a host failure), in one
 * deterministic operation (see store_domain_move() in store.h).
 *
 * The move is planned before anything changes (every refusal is decided
 * on the unchanged store), the source nodes are copied out, then the
 * destination is written and the source removed, each host through its
 * own operation so that a failure rolls both back.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One subtree to move: src on the source host, dst on the destination. */
struct pair {
	char *src, *dst;
	bool required;
	bool skip; /* same host, same path: nothing to do */
};

/* A copied source node. */
struct copy {
	char *rel; /* path below its subtree's root ("" for the root) */
	struct store_perm *perms;
	uint32_t nperms;
	char *value;
	size_t value_len;
	size_t pair;
};

struct plan {
	struct pair *pairs;
	size_t npairs;
	struct copy *copies;
	size_t ncopies, capcopies;
};

static void plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->npairs; i++) {
		free(p->pairs[i].src);
		free(p->pairs[i].dst);
	}
	free(p->pairs);
	for (i = 0; i < p->ncopies; i++) {
		free(p->copies[i].rel);
		free(p->copies[i].perms);
		free(p->copies[i].value);
	}
	free(p->copies);
}

/* Is a inside b (or b itself)? */
static bool within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

static int add_pair(struct plan *p, const char *src, const char *dst,
		    bool required)
{
	struct pair *v;
	size_t i;

	for (i = 0; i < p->npairs; i++)
		if (strcmp(p->pairs[i].src, src) == 0)
			return 0; /* named twice: once is enough */
	v = realloc(p->pairs, (p->npairs + 1) * sizeof(*v));
	if (!v)
		return -STORE_ELOCAL;
	p->pairs = v;
	v[p->npairs].src = strdup(src);
	v[p->npairs].dst = strdup(dst);
	v[p->npairs].required = required;
	v[p->npairs].skip = false;
	p->npairs++;
	if (!v[p->npairs - 1].src || !v[p->npairs - 1].dst)
		return -STORE_ELOCAL;
	return 0;
}

/* PATH with a last component equal to the old domid renamed to the new. */
static char *rename_last(const char *path, uint32_t a, uint32_t b)
{
	const char *slash = strrchr(path, '/');
	char num[16], *out;

	snprintf(num, sizeof(num), "%u", a);
	if (!slash || strcmp(slash + 1, num) != 0)
		return strdup(path);
	if (asprintf(&out, "%.*s/%u", (int)(slash - path), path, b) < 0)
		return NULL;
	return out;
}

static const struct snode *node_at(struct host *h, const char *path)
{
	size_t len = strlen(path);

	return hamt_get(h->root, path, len, host_hash(h, path, len));
}

/* The value of host's /local/domain/<domid>/vm if it names a /vm/ path. */
static bool vm_of(struct host *h, uint32_t domid, char *out, size_t size)
{
	char path[48];
	const struct snode *n;

	snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
	n = node_at(h, path);
	if (!n || n->value_len <= 4 || n->value_len >= size ||
	    memcmp(snode_value(n), "/vm/", 4) != 0 ||
	    memchr(snode_value(n), '\0', n->value_len))
		return false;
	memcpy(out, snode_value(n), n->value_len);
	out[n->value_len] = '\0';
	return true;
}

/* The subtrees: the domain's home, its /vm/<uuid>, /libxl/<a>, extras. */
static int plan_pairs(struct plan *p, struct host *ha, struct host *hb,
		      const struct store_move *m)
{
	char home_a[40], home_b[40], lib_a[64], lib_b[40], path[256];
	size_t i, k;
	int rc;

	snprintf(home_a, sizeof(home_a), "/local/domain/%u", m->src_domid);
	snprintf(home_b, sizeof(home_b), "/local/domain/%u", m->dst_domid);
	rc = add_pair(p, home_a, home_b, true);
	if (m->copy)
		goto checks; /* the home alone */
	/* the vm key names the domain's /vm/<uuid> (libxl) */
	if (!rc && vm_of(ha, m->src_domid, path, sizeof(path)) &&
	    store_path_valid(path, 2048))
		rc = add_pair(p, path, path, false);
	snprintf(lib_a, sizeof(lib_a), "/libxl/%u", m->src_domid);
	snprintf(lib_b, sizeof(lib_b), "/libxl/%u", m->dst_domid);
	if (!rc)
		rc = add_pair(p, lib_a, lib_b, false);
	for (i = 0; !rc && i < m->nsubtrees; i++) {
		char *dst = rename_last(m->subtrees[i], m->src_domid,
					m->dst_domid);

		if (!dst)
			return -STORE_ELOCAL;
		if (!store_path_valid(m->subtrees[i], 2048) ||
		    !store_path_valid(dst, 2048) ||
		    strcmp(m->subtrees[i], "/") == 0) {
			free(dst);
			return -EINVAL;
		}
		rc = add_pair(p, m->subtrees[i], dst, true);
		free(dst);
	}
checks:
	if (rc)
		return rc;
	/* optional companions that are not there are not moved */
	for (i = 0; i < p->npairs;) {
		if (!p->pairs[i].required && !node_at(ha, p->pairs[i].src)) {
			free(p->pairs[i].src);
			free(p->pairs[i].dst);
			memmove(p->pairs + i, p->pairs + i + 1,
				(p->npairs - i - 1) * sizeof(*p->pairs));
			p->npairs--;
			continue;
		}
		i++;
	}
	for (i = 0; i < p->npairs; i++) {
		struct pair *x = &p->pairs[i];

		if (!node_at(ha, x->src))
			return -ENOENT;
		if (ha == hb && strcmp(x->src, x->dst) == 0) {
			x->skip = true;
			continue;
		}
		if (ha == hb && (within(x->dst, x->src) || within(x->src, x->dst)))
			return -EINVAL;
		if (node_at(hb, x->dst) && !m->merge)
			return -EEXIST;
		for (k = 0; k < p->npairs; k++)
			if (k != i && (within(x->src, p->pairs[k].src) ||
				       within(x->dst, p->pairs[k].dst)))
				return -EINVAL; /* overlapping subtrees */
	}
	return 0;
}

static int push_copy(struct plan *p, size_t pair, const char *rel,
		     const struct snode *n)
{
	struct copy *c;

	if (p->ncopies == p->capcopies) {
		size_t cap = p->capcopies ? 2 * p->capcopies : 64;
		struct copy *v = realloc(p->copies, cap * sizeof(*v));

		if (!v)
			return -STORE_ELOCAL;
		p->copies = v;
		p->capcopies = cap;
	}
	c = &p->copies[p->ncopies];
	memset(c, 0, sizeof(*c));
	c->pair = pair;
	c->rel = strdup(rel);
	c->perms = malloc(n->nperms * sizeof(*c->perms));
	c->value = malloc(n->value_len ? n->value_len : 1);
	p->ncopies++;
	if (!c->rel || !c->perms || !c->value)
		return -STORE_ELOCAL;
	memcpy(c->perms, n->perms, n->nperms * sizeof(*c->perms));
	c->nperms = n->nperms;
	memcpy(c->value, snode_value(n), n->value_len);
	c->value_len = n->value_len;
	return 0;
}

/* Is rel ("/device/vbd", "" for the root) one of the excluded subtrees? */
static bool excluded(const struct store_move *m, const char *rel)
{
	size_t i;

	for (i = 0; rel[0] == '/' && i < m->nexclude; i++)
		if (strcmp(rel + 1, m->exclude[i]) == 0)
			return true;
	return false;
}

/* Copy the source subtrees out, parents before children, in list order
 * (the first pair's excluded subtrees left out). */
static int plan_copies(struct plan *p, struct host *ha,
		       const struct store_move *m)
{
	char **stack = NULL;
	size_t depth = 0, cap = 0, i;
	int rc = 0;

	for (i = 0; !rc && i < p->npairs; i++) {
		size_t rootlen = strlen(p->pairs[i].src);

		if (p->pairs[i].skip)
			continue;
		if (!stack) {
			stack = malloc((cap = 16) * sizeof(*stack));
			if (!stack)
				return -STORE_ELOCAL;
		}
		stack[0] = strdup(p->pairs[i].src);
		depth = stack[0] ? 1 : 0;
		if (!depth)
			rc = -STORE_ELOCAL;
		while (depth && !rc) {
			char *path = stack[--depth];
			const struct snode *n = node_at(ha, path);
			const char *k, *end;
			size_t nk = 0, j;

			if (!n) {
				free(path);
				rc = -EIO; /* a listed child that is missing */
				break;
			}
			if (i == 0 && excluded(m, path + rootlen)) {
				free(path);
				continue;
			}
			rc = push_copy(p, i, path + rootlen, n);
			end = snode_children(n) + n->children_len;
			for (k = snode_children(n); k < end; k += strlen(k) + 1)
				nk++;
			if (!rc && depth + nk > cap) {
				char **v = realloc(stack, 2 * (depth + nk) *
								  sizeof(*v));

				if (!v)
					rc = -STORE_ELOCAL;
				else {
					stack = v;
					cap = 2 * (depth + nk);
				}
			}
			j = depth + nk;
			for (k = snode_children(n); !rc && k < end;
			     k += strlen(k) + 1) {
				char *c;

				if (asprintf(&c, "%s/%s", path, k) < 0) {
					rc = -STORE_ELOCAL;
					break;
				}
				stack[--j] = c;
			}
			if (rc) /* the children pushed before the failure */
				while (j < depth + nk && j >= depth)
					free(stack[j++]);
			else
				depth += nk;
			free(path);
		}
		while (depth)
			free(stack[--depth]);
	}
	free(stack);
	return rc;
}

/* A value naming a moved path names its new place. */
static char *rewrite_value(const struct plan *p, const char *v, size_t len,
			   size_t *out_len)
{
	size_t i;
	char *out;

	for (i = 0; i < p->npairs; i++) {
		const char *src = p->pairs[i].src, *dst = p->pairs[i].dst;
		size_t sl = strlen(src), dl = strlen(dst);

		if (p->pairs[i].skip || strcmp(src, dst) == 0 || len < sl ||
		    memcmp(v, src, sl) != 0 || (len > sl && v[sl] != '/'))
			continue;
		out = malloc(dl + len - sl + 1);
		if (!out)
			return NULL;
		memcpy(out, dst, dl);
		memcpy(out + dl, v + sl, len - sl);
		*out_len = dl + len - sl;
		return out;
	}
	out = malloc(len ? len : 1);
	if (out)
		memcpy(out, v, len);
	*out_len = len;
	return out;
}

/* Create path's missing ancestors on the destination (create_node()). */
static int ensure_parents(struct op *o, const char *path)
{
	char up[PATH_BUF], cur[PATH_BUF];
	const struct snode *n, *parent;
	struct snode *m;
	int err = 0, rc;

	path_parent(path, up);
	n = op_get(o, up, &err);
	if (n)
		return 0;
	if (err != -ENOENT || strcmp(up, "/") == 0)
		return err ? err : -EIO;
	rc = ensure_parents(o, up);
	if (rc)
		return rc;
	path_parent(up, cur);
	parent = op_get(o, cur, &err);
	if (!parent)
		return err;
	/* a new ancestor takes its parent's permissions, as in Xen */
	m = snode_new(up, strlen(up), host_hash(o->h, up, strlen(up)), o->gen,
		      parent->perms, parent->nperms, NULL, 0, NULL, 0);
	if (!m)
		return -STORE_ELOCAL;
	rc = op_put(o, m, false);
	if (!rc)
		rc = op_count(o, parent->perms[0].domid, 1);
	if (rc)
		return rc;
	m = snode_with_child(parent, strrchr(up, '/') + 1);
	return m ? op_put(o, m, false) : -STORE_ELOCAL;
}

/* Write one copied node at dst (unless it exists: then it stays). */
static int place(struct op *o, const struct plan *p, const struct copy *c,
		 const char *dst, uint32_t a, uint32_t b, size_t *added)
{
	char up[PATH_BUF];
	const struct snode *old, *parent;
	struct store_perm *perms;
	struct snode *m;
	size_t vl;
	char *v;
	uint32_t i;
	int err = 0, rc;

	old = op_get(o, dst, &err);
	if (old)
		return 0; /* merge: what the destination has wins */
	path_parent(dst, up);
	parent = op_get(o, up, &err);
	if (!parent)
		return err ? err : -EIO;
	perms = malloc(c->nperms * sizeof(*perms));
	v = rewrite_value(p, c->value, c->value_len, &vl);
	if (!perms || !v) {
		free(perms);
		free(v);
		return -STORE_ELOCAL;
	}
	memcpy(perms, c->perms, c->nperms * sizeof(*perms));
	for (i = 0; i < c->nperms; i++)
		if (perms[i].domid == a)
			perms[i].domid = b;
	m = snode_new(dst, strlen(dst), host_hash(o->h, dst, strlen(dst)), o->gen,
		      perms, c->nperms, v, vl, NULL, 0);
	free(v);
	if (!m) {
		free(perms);
		return -STORE_ELOCAL;
	}
	rc = op_put(o, m, false);
	if (!rc)
		rc = op_count(o, perms[0].domid, 1);
	free(perms);
	if (rc)
		return rc;
	m = snode_with_child(parent, strrchr(dst, '/') + 1);
	if (!m)
		return -STORE_ELOCAL;
	rc = op_put(o, m, false);
	if (rc)
		return rc;
	/* as writes of each node, parents first, would fire them */
	op_fire(o, dst, op_get(o, dst, &err), false, NULL, 0);
	(*added)++;
	return 0;
}

/* Nodes owned by domid on the operation's host, as it stands now. */
static int64_t owned(struct op *o, uint32_t domid)
{
	struct acct *a = acct_find(o->h, domid, false);
	int64_t n = a ? a->nodes : 0;
	size_t i;

	for (i = 0; i < o->nd; i++)
		if (o->d[i].domid == domid)
			n += o->d[i].nodes;
	return n;
}

int store_domain_move(struct store *st, struct store_move *m,
		      uint64_t index, struct store_events *src_ev,
		      struct store_events *dst_ev)
{
	struct store_caller dom0 = {.domid = 0, .privileged = true,
				    .target = STORE_NO_TARGET,
				    .quota = STORE_QUOTA_INIT};
	struct host *ha = store_host_find(st, m->src_host);
	struct host *hb = store_host_find(st, m->dst_host);
	struct plan p = {0};
	struct op oa, ob, *pa, *pb;
	char dst[PATH_BUF];
	size_t i;
	int rc;

	m->copied = 0;
	if (!ha || !hb)
		return -ENOENT;
	if (m->src_domid >= 0x7FF0 || m->dst_domid >= 0x7FF0 ||
	    (ha == hb && m->src_domid == m->dst_domid) ||
	    m->src_domid == 0 || m->dst_domid == 0)
		return -EINVAL;
	/* room for the domain's quota settings first: nothing can fail
	 * once the trees are committed */
	rc = quota_reserve(hb);
	if (!rc)
		rc = plan_pairs(&p, ha, hb, m);
	if (!rc)
		rc = plan_copies(&p, ha, m);
	if (rc) {
		plan_free(&p);
		return rc;
	}
	dom0.quota.path_max = 4096;
	pb = &ob;
	op_begin(pb, st, hb, NULL, &dom0, index, dst_ev);
	if (ha == hb) {
		pa = pb;
	} else {
		pa = &oa;
		op_begin(pa, st, ha, NULL, &dom0, index, src_ev);
	}
	/* the destination: every node, parents first */
	for (i = 0; !rc && i < p.ncopies; i++) {
		const struct copy *c = &p.copies[i];
		const struct pair *x = &p.pairs[c->pair];

		if (snprintf(dst, sizeof(dst), "%s%s", x->dst, c->rel) >=
		    (int)sizeof(dst)) {
			rc = -EINVAL;
			break;
		}
		if (c->rel[0] == '\0')
			rc = ensure_parents(pb, dst);
		if (!rc)
			rc = place(pb, &p, c, dst, m->src_domid, m->dst_domid,
				   &m->copied);
	}
	/* charged to the destination domain: its node quota */
	if (!rc && m->max_nodes && owned(pb, m->dst_domid) > m->max_nodes)
		rc = -ENOSPC;
	/* the source goes (unless this is a copy) */
	for (i = 0; !rc && !m->copy && i < p.npairs; i++)
		if (!p.pairs[i].skip)
			rc = op_rm(pa, p.pairs[i].src);
	if (pa != pb)
		rc = op_end(pa, rc); /* fails only if it could not commit */
	rc = op_end(pb, rc);
	plan_free(&p);
	if (rc || m->copy)
		return rc;
	/* its quota settings go with it */
	quota_move(ha, m->src_domid, hb, m->dst_domid);
	/* the domain lives on elsewhere: forgotten here, the rest of what
	 * it owned here goes as when a domain dies */
	if (store_domain_get(st, m->src_host, m->src_domid))
		rc = store_domain_gone(st, m->src_host, m->src_domid, index,
				       src_ev);
	return rc;
}

int store_domain_inherit(struct store *st, const char *host, uint32_t domid,
			 uint32_t max_nodes, uint64_t index,
			 struct store_events *ev, struct store_inherit *out)
{
	/* what the toolstack and the backends set up again on the new host
	 * after INTRODUCE: copies would be stale (console/ included: the
	 * lab's xenconsoled took the copied tty for its own and libxl's wait
	 * for a new one timed out) */
	static const char *const exclude[] = {"device", "console", "error",
					      "control/shutdown"};
	struct host *hb = store_host_find(st, host), *from = NULL;
	char want[256], vm[256];
	uint32_t src = 0;
	size_t i, k, found = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!hb || !vm_of(hb, domid, want, sizeof(want)))
		return -ENOENT;
	for (i = 0; i < st->nhosts; i++) {
		struct host *h = &st->hosts[i];

		for (k = 0; k < h->ndoms; k++) {
			const struct store_domain *d = &h->doms[k];

			if (!d->suspending || (h == hb && d->domid == domid) ||
			    !vm_of(h, d->domid, vm, sizeof(vm)) ||
			    strcmp(vm, want) != 0)
				continue;
			if (found++ == 0) {
				from = h;
				src = d->domid;
			}
		}
	}
	if (found == 0)
		return -ENOENT;
	snprintf(out->src_host, sizeof(out->src_host), "%s", from->name);
	out->src_domid = src;
	if (found > 1)
		return -EEXIST;
	{
		struct store_move m = {
			.src_host = from->name,
			.dst_host = host,
			.src_domid = src,
			.dst_domid = domid,
			.merge = true,
			.max_nodes = max_nodes,
			.copy = true,
			.exclude = exclude,
			.nexclude = sizeof(exclude) / sizeof(exclude[0]),
		};

		rc = store_domain_move(st, &m, index, NULL, ev);
		out->copied = m.copied;
	}
	return rc;
}
