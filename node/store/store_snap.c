/*
 * node/store/store_snap.c: pinned versions of the store, their deterministic
 * walk (the snapshot order) and rebuilding a store from a walk (the
 * consistency check is store_check.c).
 *
 * Walks are iterative (XSA-418: deep trees must not exhaust the stack).
 */
#include "node/store/store_int.h"
#include "wire/siphash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const special_paths[] = {"@introduceDomain",
					    "@releaseDomain"};
#define N_SPECIAL (sizeof(special_paths) / sizeof(special_paths[0]))

struct pinned_host {
	char *name;
	uint8_t hash_key[STORE_HASH_KEY_LEN]; /* a copy: a pin may outlive st */
	struct hamt_node *root;
	struct store_domain *doms; /* copies */
	size_t ndoms;
	struct store_quota_set *quotas; /* a copy */
	size_t nquotas;
};

struct store_pin {
	uint64_t applied;
	struct pinned_host *hosts;
	size_t nhosts;
	struct session *sess; /* copies */
	size_t nsess;
	struct store_member *members; /* copies */
	size_t nmembers;
};

static void pin_member_close(struct store_member *m)
{
	free(m->name);
	free(m->raft_address);
	free(m->peer_address);
}

struct store_pin *store_pin(struct store *st)
{
	struct store_pin *p = calloc(1, sizeof(*p));
	size_t i;

	if (!p)
		return NULL;
	p->applied = st->applied_index;
	p->hosts = calloc(st->nhosts ? st->nhosts : 1, sizeof(*p->hosts));
	p->sess = malloc((st->nsess ? st->nsess : 1) * sizeof(*p->sess));
	p->members = calloc(st->nmembers ? st->nmembers : 1,
			    sizeof(*p->members));
	if (!p->hosts || !p->sess || !p->members)
		goto fail;
	for (i = 0; i < st->nsess; i++)
		p->sess[i] = *st->sess[i];
	p->nsess = st->nsess;
	for (i = 0; i < st->nmembers; i++) {
		const struct store_member *m = &st->members[i];

		p->members[i].id = m->id;
		p->members[i].name = strdup(m->name);
		p->members[i].raft_address = strdup(m->raft_address);
		p->members[i].peer_address = strdup(m->peer_address);
		p->nmembers++;
		if (!p->members[i].name || !p->members[i].raft_address ||
		    !p->members[i].peer_address)
			goto fail;
	}
	for (i = 0; i < st->nhosts; i++) {
		p->hosts[i].name = strdup(st->hosts[i].name);
		if (!p->hosts[i].name)
			goto fail;
		p->hosts[i].root = st->hosts[i].root;
		memcpy(p->hosts[i].hash_key,
		       st->hosts[i].hash_key ? st->hosts[i].hash_key
					     : store_hash_key_default,
		       STORE_HASH_KEY_LEN);
		hamt_ref(p->hosts[i].root);
		p->nhosts++;
		p->hosts[i].doms = calloc(st->hosts[i].ndoms ? st->hosts[i].ndoms
							     : 1,
					  sizeof(*p->hosts[i].doms));
		if (!p->hosts[i].doms)
			goto fail;
		for (size_t k = 0; k < st->hosts[i].ndoms; k++) {
			if (store_domain_copy(&p->hosts[i].doms[k],
					      &st->hosts[i].doms[k]))
				goto fail;
			p->hosts[i].ndoms++;
		}
		p->hosts[i].quotas = malloc((st->hosts[i].nquotas
						     ? st->hosts[i].nquotas
						     : 1) *
					    sizeof(*p->hosts[i].quotas));
		if (!p->hosts[i].quotas)
			goto fail;
		if (st->hosts[i].nquotas)
			memcpy(p->hosts[i].quotas, st->hosts[i].quotas,
			       st->hosts[i].nquotas *
				       sizeof(*p->hosts[i].quotas));
		p->hosts[i].nquotas = st->hosts[i].nquotas;
	}
	return p;
fail:
	store_unpin(p);
	return NULL;
}

void store_unpin(struct store_pin *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nhosts; i++) {
		hamt_unref(p->hosts[i].root);
		free(p->hosts[i].name);
		for (size_t k = 0; k < p->hosts[i].ndoms; k++)
			store_domain_close(&p->hosts[i].doms[k]);
		free(p->hosts[i].doms);
		free(p->hosts[i].quotas);
	}
	free(p->hosts);
	free(p->sess);
	for (i = 0; i < p->nmembers; i++)
		pin_member_close(&p->members[i]);
	free(p->members);
	free(p);
}

/* host_hash() for a pinned host (no struct host to hand). */
static uint64_t hash(const uint8_t *key, const char *path, size_t len)
{
	return siphash64(key, path, len);
}

struct frame {
	const struct snode *n;
	size_t child_off;
	size_t path_len;
};

int store_walk_tree(const struct hamt_node *root, const uint8_t *key,
		    size_t max_path,
		    int (*visit)(const struct snode *n, void *arg),
		    int (*missing)(const char *path, void *arg), void *arg)
{
	const struct snode *n = hamt_get(root, "/", 1, hash(key, "/", 1));
	size_t depth = 0, cap = 32, pcap = 256;
	struct frame *stack;
	char *path;
	int rc = 0;

	if (!n)
		return missing ? missing("/", arg) : -EIO;
	stack = malloc(cap * sizeof(*stack));
	path = malloc(pcap);
	if (!stack || !path) {
		rc = -ENOMEM;
		goto out;
	}
	strcpy(path, "/");
	rc = visit(n, arg);
	stack[depth++] = (struct frame){n, 0, 1};
	while (depth && !rc) {
		struct frame *f = &stack[depth - 1];
		const char *child;
		size_t cl, base;

		if (f->child_off >= f->n->children_len) {
			depth--;
			continue;
		}
		child = snode_children(f->n) + f->child_off;
		cl = strlen(child);
		f->child_off += cl + 1;
		base = f->path_len == 1 ? 0 : f->path_len;
		if (base + 1 + cl >= max_path) {
			rc = -EIO;
			break;
		}
		if (base + 2 + cl > pcap) {
			char *v = realloc(path, 2 * (base + 2 + cl));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			path = v;
			pcap = 2 * (base + 2 + cl);
		}
		path[base] = '/';
		memcpy(path + base + 1, child, cl + 1);
		n = hamt_get(root, path, base + 1 + cl,
			     hash(key, path, base + 1 + cl));
		if (!n) {
			rc = missing ? missing(path, arg) : -EIO;
			break;
		}
		rc = visit(n, arg);
		if (depth == cap) {
			struct frame *v = realloc(stack, 2 * cap * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			stack = v;
			cap *= 2;
		}
		stack[depth++] = (struct frame){n, 0, base + 1 + cl};
	}
out:
	free(stack);
	free(path);
	return rc;
}

struct walk_ctx {
	const struct store_walk_ops *ops;
	void *arg;
};

static int emit_node(const struct snode *n, void *arg)
{
	struct walk_ctx *w = arg;

	return w->ops->node(w->arg, snode_path(n), n->generation, n->perms,
			    n->nperms, snode_value(n), n->value_len,
			    snode_children(n), n->children_len);
}

int store_pin_walk(const struct store_pin *pin,
		   const struct store_walk_ops *ops, void *arg)
{
	struct walk_ctx w = {ops, arg};
	size_t i, k;
	int rc;

	rc = ops->begin(arg, pin->applied, pin->nhosts, pin->nsess);
	for (i = 0; !rc && i < pin->nsess; i++) {
		const struct session *s = &pin->sess[i];
		uint64_t first = s->last >= STORE_SESSION_WINDOW
					 ? s->last - STORE_SESSION_WINDOW + 1
					 : 1;
		uint64_t seq;

		/* the retained results, oldest first: the last one last */
		for (seq = first; !rc && seq <= s->last; seq++) {
			size_t slot = seq % STORE_SESSION_WINDOW;

			if (s->ring[slot].seq == seq)
				rc = ops->session(arg, s->origin, seq,
						  s->ring[slot].result);
		}
	}
	for (i = 0; !rc && i < pin->nmembers; i++)
		rc = ops->member(arg, &pin->members[i]);
	for (i = 0; !rc && i < pin->nhosts; i++) {
		const struct hamt_node *root = pin->hosts[i].root;

		rc = ops->host(arg, pin->hosts[i].name);
		if (!rc)
			rc = store_walk_tree(root, pin->hosts[i].hash_key,
					     8192, emit_node, NULL, &w);
		for (k = 0; !rc && k < N_SPECIAL; k++) {
			const char *s = special_paths[k];
			const struct snode *n =
				hamt_get(root, s, strlen(s),
					 hash(pin->hosts[i].hash_key, s,
					      strlen(s)));

			if (n)
				rc = emit_node(n, &w);
		}
		for (k = 0; !rc && ops->domain && k < pin->hosts[i].ndoms; k++)
			rc = ops->domain(arg, &pin->hosts[i].doms[k]);
		for (k = 0; !rc && ops->quota && k < pin->hosts[i].nquotas; k++)
			rc = ops->quota(arg, &pin->hosts[i].quotas[k]);
	}
	return rc;
}

/* ---- Restore ---------------------------------------------------------- */

struct store *store_restore_begin(const uint8_t key[STORE_HASH_KEY_LEN],
				  uint64_t applied_index)
{
	struct store *st = store_new_keyed(key);

	if (st)
		st->applied_index = applied_index;
	return st;
}

int store_restore_session(struct store *st, uint64_t origin, uint64_t seq,
			  int result)
{
	/* sequence numbers count from 1: 0 marks an empty slot, and a
	 * session whose last seq is 0 has nothing a snapshot could carry
	 * (found by tests/fuzz/fuzz_snapshot.c's round trip) */
	if (seq == 0)
		return -EINVAL;
	return store_session_record(st, origin, seq, result);
}

int store_restore_member(struct store *st, const struct store_member *m)
{
	return store_member_set(st, m->id, m->name, m->raft_address,
				m->peer_address);
}

int store_restore_host(struct store *st, const char *name)
{
	struct host *v;
	size_t i;
	char *copy;

	/* Hosts come sorted from the walk; insert in order all the same. */
	if (store_host_find(st, name))
		return -EEXIST;
	copy = strdup(name);
	v = realloc(st->hosts, (st->nhosts + 1) * sizeof(*v));
	if (!copy || !v) {
		free(copy);
		if (v)
			st->hosts = v;
		return -ENOMEM;
	}
	st->hosts = v;
	for (i = st->nhosts; i > 0 && strcmp(v[i - 1].name, name) > 0; i--)
		v[i] = v[i - 1];
	memset(&v[i], 0, sizeof(v[i]));
	v[i].name = copy;
	host_bind_key(st, &v[i]);
	st->nhosts++;
	st->restoring = copy;
	return 0;
}

int store_restore_node(struct store *st, const char *path, uint64_t generation,
		       const struct store_perm *perms, uint32_t nperms,
		       const char *value, size_t value_len,
		       const char *children, size_t children_len)
{
	struct host *h = st->restoring ? store_host_find(st, st->restoring)
				       : NULL;
	size_t len = strlen(path);
	struct snode *n;
	int rc;

	if (!h || nperms == 0)
		return -EINVAL;
	if (children_len && children[children_len - 1] != '\0')
		return -EINVAL;
	/*
	 * An entry gives what it changes its own index as generation, so a
	 * node newer than the index a snapshot was taken at is damage (the
	 * store would hold a version no entry wrote; store_check_report()).
	 * 0: the index is not kept. Found by tests/fuzz/fuzz_snapshot.c.
	 */
	if (st->applied_index && generation > st->applied_index)
		return -EINVAL;
	n = snode_new(path, len, host_hash(h, path, len), generation, perms,
		      nperms, value, value_len, children, children_len);
	if (!n)
		return -ENOMEM;
	rc = hamt_set(&h->root, n);
	if (rc)
		snode_unref(n);
	return rc;
}

int store_restore_domain(struct store *st, const struct store_domain *d)
{
	struct host *h = st->restoring ? store_host_find(st, st->restoring)
				       : NULL;
	struct store_domain *v;
	int rc;

	if (!h || d->ring_id == 0 ||
	    (h->ndoms && h->doms[h->ndoms - 1].domid >= d->domid))
		return -EINVAL; /* in domid order, once each */
	if (h->ndoms == h->capdoms) {
		size_t cap = h->capdoms ? 2 * h->capdoms : 8;

		v = realloc(h->doms, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->doms = v;
		h->capdoms = cap;
	}
	rc = store_domain_copy(&h->doms[h->ndoms], d);
	if (rc)
		return rc;
	h->ndoms++;
	return 0;
}

static bool special(const char *path)
{
	return path[0] == '@';
}

struct recount {
	struct host *h;
	int rc;
};

static int recount_one(const struct snode *n, void *arg)
{
	struct recount *r = arg;
	struct acct *a;

	if (special(snode_path(n)))
		return 0;
	a = acct_find(r->h, n->perms[0].domid, true);
	if (!a)
		return -ENOMEM;
	a->nodes++;
	a->memory += snode_memory(n);
	return 0;
}

int store_restore_finish(struct store *st)
{
	const char *what;
	size_t i;
	int rc;

	st->restoring = NULL;
	for (i = 0; i < st->nhosts; i++) {
		struct recount r = {&st->hosts[i], 0};

		st->hosts[i].nacct = 0;
		rc = hamt_foreach(st->hosts[i].root, recount_one, &r);
		if (rc)
			return rc;
	}
	return store_check(st, &what);
}
