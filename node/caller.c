/*
 * node/caller.c: who a request's caller is (node/caller.h): the quotas in
 * force for a domain, its store identity, canonical paths, domids.
 */
#include "node/caller.h"
#include "node/daemon.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(QUOTA_ITEMS == STORE_QUOTA_ITEMS,
	       "the store keeps every quota item");

#define QOFF(field) offsetof(struct quotas, field)

static const struct {
	const char *name;
	size_t off;
} items[QUOTA_ITEMS] = {
	[QUOTA_NODES] = {"nodes", QOFF(store.nodes)},
	[QUOTA_WATCHES] = {"watches", QOFF(watches)},
	[QUOTA_OUTSTANDING] = {"outstanding", QOFF(outstanding)},
	[QUOTA_MEMORY] = {"memory", QOFF(store.memory)},
	[QUOTA_SOFT_MEMORY] = {"soft-memory", QOFF(soft_memory)},
	[QUOTA_TRANSACTIONS] = {"transactions", QOFF(transactions)},
	[QUOTA_TRANSACTION_NODES] = {"transaction-nodes",
				     QOFF(store.transaction_nodes)},
	[QUOTA_PERMISSIONS] = {"node-permissions", QOFF(store.permissions)},
	[QUOTA_PATH_MAX] = {"path-max", QOFF(store.path_max)},
	[QUOTA_NODE_SIZE] = {"node-size", QOFF(store.node_size)},
};

/* Xen's XENSTORE_REL_PATH_MAX: the most -M allows (node/options.c). */
#define PATH_MAX_LIMIT 2048u

const char *caller_quota_name(enum quota_item item)
{
	assert(item < QUOTA_ITEMS);
	return items[item].name;
}

int caller_quota_by_name(const char *name)
{
	int i;

	for (i = 0; i < QUOTA_ITEMS; i++)
		if (strcmp(name, items[i].name) == 0)
			return i;
	return -1;
}

unsigned int *caller_quota_field(struct quotas *q, enum quota_item item)
{
	assert(item < QUOTA_ITEMS);
	return (unsigned int *)((char *)q + items[item].off);
}

bool caller_quota_valid(enum quota_item item, uint32_t value)
{
	if (item >= QUOTA_ITEMS || value == 0)
		return false;
	return item != QUOTA_PATH_MAX || value <= PATH_MAX_LIMIT;
}

/* Overlay the items set in s (if any) on q. */
static void overlay(struct quotas *q, const struct store_quota_set *s)
{
	unsigned int i;

	for (i = 0; s && i < QUOTA_ITEMS; i++)
		if (s->mask & (1u << i))
			*caller_quota_field(q, (enum quota_item)i) = s->value[i];
}

struct quotas caller_quotas(const struct daemon *d, uint32_t domid)
{
	struct quotas q = d->cfg.quotas;

	overlay(&q, store_quota_get(d->store, d->host, STORE_QUOTA_HOST));
	if (domid != STORE_QUOTA_HOST)
		overlay(&q, store_quota_get(d->store, d->host, domid));
	return q;
}

void caller_of(struct daemon *d, const struct conn *c,
	       struct store_caller *out)
{
	const struct conn_identity *id = conn_identity(c);

	out->domid = id->domid;
	out->privileged = id->privileged;
	out->target = id->target;
	out->quota = caller_quotas(d, id->domid).store;
}

struct sm_origin caller_origin(struct daemon *d, const struct conn *c,
			       const struct conn_req *r,
			       const struct store_caller *who, uint64_t seq)
{
	uint64_t ring_id = conn_identity(c)->ring_id;
	struct sm_origin o = {d->member_id, seq, d->host, who,
			      ring_id, ring_id ? r->seq : 0};

	return o;
}

char *caller_canonical(const struct conn *c, const char *path)
{
	char *out;

	if (path[0] == '/' || path[0] == '@')
		return strdup(path);
	if (asprintf(&out, "/local/domain/%u/%s", conn_identity(c)->domid,
		     path) < 0)
		return NULL;
	return out;
}

int caller_parse_domid(const char *s, unsigned int *domid)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*end || v > 65535)
		return -EINVAL;
	*domid = (unsigned int)v;
	return 0;
}
