/*
 * node/client.c: a client connection's transactions (node/client.h), in
 * an array sorted by id: a privileged client may open any number, and a
 * guest's ids after a restart are whatever it sends.
 */
#include "node/client.h"
#include "node/store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* For assert() only: ids strictly increasing, the count within capacity. */
static bool client_ok(const struct client *cl)
{
	unsigned i;

	if (cl->n_txns > cl->cap || (cl->n_txns && !cl->txns))
		return false;
	for (i = 1; i < cl->n_txns && i < 8; i++) /* O(1): a sample */
		if (cl->txns[i - 1]->id >= cl->txns[i]->id)
			return false;
	return true;
}

/* Where id is, or would go (*found). */
static unsigned txn_pos(const struct client *cl, uint32_t id, bool *found)
{
	unsigned lo = 0, hi = cl->n_txns;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (cl->txns[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < cl->n_txns && cl->txns[lo]->id == id;
	return lo;
}

struct client *client_of(struct conn *c)
{
	struct client *cl = conn_get_data(c);

	if (!cl) {
		cl = calloc(1, sizeof(*cl));
		if (cl)
			conn_set_data(c, cl);
	}
	return cl;
}

void client_close(struct conn *c)
{
	struct client *cl = conn_get_data(c);

	if (!cl)
		return;
	client_txn_drop_all(cl);
	free(cl->txns);
	free(cl);
	conn_set_data(c, NULL);
}

unsigned client_txn_count(const struct conn *c)
{
	const struct client *cl = conn_get_data(c);

	return cl ? cl->n_txns : 0;
}

size_t client_txn_memory(const struct conn *c)
{
	const struct client *cl = conn_get_data(c);
	size_t sum = 0;
	unsigned i;

	for (i = 0; cl && i < cl->n_txns; i++)
		sum += store_txn_memory(cl->txns[i]->st);
	return sum;
}

struct txn *client_txn_find(struct client *cl, uint32_t id)
{
	bool found;
	unsigned i = txn_pos(cl, id, &found);

	return found ? cl->txns[i] : NULL;
}

struct txn *client_txn_new(struct client *cl, struct store *st,
			   const char *host, uint32_t id)
{
	struct txn *t;
	bool found;
	unsigned i = txn_pos(cl, id, &found);

	assert(client_ok(cl));
	assert(id != 0 && !found);
	if (cl->n_txns == cl->cap) {
		unsigned cap = cl->cap ? 2 * cl->cap : 4;
		struct txn **v = realloc(cl->txns, cap * sizeof(*v));

		if (!v)
			return NULL;
		cl->txns = v;
		cl->cap = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->st = store_txn_new(st, host);
	if (!t->st) {
		free(t);
		return NULL;
	}
	t->id = id;
	memmove(&cl->txns[i + 1], &cl->txns[i],
		(cl->n_txns - i) * sizeof(*cl->txns));
	cl->txns[i] = t;
	cl->n_txns++;
	return t;
}

void client_txn_end(struct client *cl, struct txn *tx)
{
	bool found;
	unsigned i = txn_pos(cl, tx->id, &found);

	assert(found && cl->txns[i] == tx);
	memmove(&cl->txns[i], &cl->txns[i + 1],
		(cl->n_txns - i - 1) * sizeof(*cl->txns));
	cl->n_txns--;
	store_txn_free(tx->st);
	free(tx);
	assert(client_ok(cl));
}

void client_txn_drop_all(struct client *cl)
{
	while (cl->n_txns)
		client_txn_end(cl, cl->txns[cl->n_txns - 1]);
}
