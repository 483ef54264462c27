/*
 * node/store/store_quota.c: the quota settings of each host (SET_QUOTA,
 * CONTROL quota set), replicated state the store keeps but does not
 * interpret (node/store/store.h, "Quota settings").
 *
 * One sorted array per host, so that the snapshot order and the check are
 * plain; hosts have a handful of settings, and lookups are binary.
 */
#include "node/store/store_err.h"
#include "node/store/store_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DOMID_FIRST_RESERVED 0x7FF0u
#define ITEMS_MASK ((1u << STORE_QUOTA_ITEMS) - 1)

/* Position of domid in h's settings, or where it would go (*found). */
static size_t quota_pos(const struct host *h, uint32_t domid, bool *found)
{
	size_t lo = 0, hi = h->nquotas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->quotas[mid].domid < domid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < h->nquotas && h->quotas[lo].domid == domid;
	return lo;
}

int quota_reserve(struct host *h)
{
	struct store_quota_set *v;
	size_t cap;

	if (h->nquotas < h->capquotas)
		return 0;
	cap = h->capquotas ? 2 * h->capquotas : 4;
	v = realloc(h->quotas, cap * sizeof(*v));
	if (!v)
		return -STORE_ELOCAL;
	h->quotas = v;
	h->capquotas = cap;
	return 0;
}

/* The settings of domid in h, created empty; h has room. */
static struct store_quota_set *quota_slot(struct host *h, uint32_t domid)
{
	bool found;
	size_t i = quota_pos(h, domid, &found);

	if (found)
		return &h->quotas[i];
	assert(h->nquotas < h->capquotas);
	memmove(&h->quotas[i + 1], &h->quotas[i],
		(h->nquotas - i) * sizeof(*h->quotas));
	h->nquotas++;
	memset(&h->quotas[i], 0, sizeof(h->quotas[i]));
	h->quotas[i].domid = domid;
	return &h->quotas[i];
}

void quota_drop(struct host *h, uint32_t domid)
{
	bool found;
	size_t i = quota_pos(h, domid, &found);

	if (!found)
		return;
	memmove(&h->quotas[i], &h->quotas[i + 1],
		(h->nquotas - i - 1) * sizeof(*h->quotas));
	h->nquotas--;
}

void quota_move(struct host *ha, uint32_t src, struct host *hb, uint32_t dst)
{
	const struct store_quota_set *s;
	struct store_quota_set copy, *d;
	bool found;
	size_t i = quota_pos(ha, src, &found);

	assert(src != STORE_QUOTA_HOST && dst != STORE_QUOTA_HOST);
	if (!found)
		return;
	s = &ha->quotas[i];
	copy = *s;
	quota_drop(ha, src);
	/* dropping made room if ha is hb; else hb was reserved */
	d = quota_slot(hb, dst);
	copy.domid = dst;
	*d = copy;
}

void host_quotas_free(struct host *h)
{
	free(h->quotas);
	h->quotas = NULL;
	h->nquotas = h->capquotas = 0;
}

int quota_check(const struct host *h, const char **what)
{
	size_t i;

	if (h->nquotas > h->capquotas) {
		*what = "quota settings: count above capacity";
		return -EIO;
	}
	for (i = 0; i < h->nquotas; i++) {
		const struct store_quota_set *q = &h->quotas[i];

		if (i && h->quotas[i - 1].domid >= q->domid) {
			*what = "quota settings: not sorted by domid";
			return -EIO;
		}
		if (q->mask == 0 || (q->mask & ~ITEMS_MASK)) {
			*what = "quota settings: empty or unknown items";
			return -EIO;
		}
		if (q->domid != STORE_QUOTA_HOST &&
		    q->domid >= DOMID_FIRST_RESERVED) {
			*what = "quota settings: reserved domid";
			return -EIO;
		}
	}
	return 0;
}

int store_quota_set(struct store *st, const char *host, uint32_t domid,
		    unsigned int item, uint32_t value)
{
	struct host *h = store_host_find(st, host);
	struct store_quota_set *q;

	if (!h)
		return -ENOENT;
	if (item >= STORE_QUOTA_ITEMS ||
	    (domid != STORE_QUOTA_HOST && domid >= DOMID_FIRST_RESERVED))
		return -EINVAL;
	if (quota_reserve(h))
		return -STORE_ELOCAL;
	q = quota_slot(h, domid);
	q->mask |= 1u << item;
	q->value[item] = value;
	return 0;
}

const struct store_quota_set *store_quota_get(const struct store *st,
					      const char *host, uint32_t domid)
{
	const struct host *h = store_host_find(st, host);
	bool found;
	size_t i;

	if (!h)
		return NULL;
	i = quota_pos(h, domid, &found);
	return found ? &h->quotas[i] : NULL;
}

size_t store_quota_count(const struct store *st, const char *host)
{
	const struct host *h = store_host_find(st, host);

	return h ? h->nquotas : 0;
}

const struct store_quota_set *store_quota_at(const struct store *st,
					     const char *host, size_t i)
{
	const struct host *h = store_host_find(st, host);

	return h && i < h->nquotas ? &h->quotas[i] : NULL;
}

int store_restore_quota(struct store *st, const struct store_quota_set *q)
{
	struct host *h = st->restoring ? store_host_find(st, st->restoring)
				       : NULL;

	if (!h || q->mask == 0 || (q->mask & ~ITEMS_MASK) ||
	    (h->nquotas && h->quotas[h->nquotas - 1].domid >= q->domid) ||
	    (q->domid != STORE_QUOTA_HOST && q->domid >= DOMID_FIRST_RESERVED))
		return -EINVAL; /* in domid order, once each */
	if (quota_reserve(h))
		return -ENOMEM;
	h->quotas[h->nquotas++] = *q;
	return 0;
}
