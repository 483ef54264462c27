/*
 * node/store/store_host.c: the store and its hosts: creating and freeing
 * them, finding a host, a new host's initial tree (cxenstored 4.17
 * setup_structure()), and the per-domain accounting of nodes and memory.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct store *store_new(void)
{
	return calloc(1, sizeof(struct store));
}

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

/* ---- Accounting ----------------------------------------------------- */

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

/* ---- Host initialisation ----------------------------------------- */

const char *const store_specials[2] = {"@introduceDomain", "@releaseDomain"};

static int put_initial(struct host *h, const char *path, uint64_t index,
		       const char *children, bool counted)
{
	struct store_perm n0 = {.domid = 0, .access = 0};
	size_t len = strlen(path);
	struct snode *n;
	struct acct *a;

	n = snode_new(path, len, host_hash(h, path, len), index, &n0, 1, NULL,
		      0, children, children ? strlen(children) + 1 : 0);
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

	/* a host is named by its member (store_check: no nameless host);
	 * a log entry may name none (found by tests/fuzz/fuzz_apply.c) */
	if (!name[0])
		return -EINVAL;
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
		rc = put_initial(h, store_specials[0], index, NULL, false);
	if (!rc)
		rc = put_initial(h, store_specials[1], index, NULL, false);
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

/* ---- The applied index ---------------------------------------------- */

uint64_t store_applied_index(const struct store *st)
{
	return st->applied_index;
}

void store_set_applied_index(struct store *st, uint64_t index)
{
	st->applied_index = index;
}
