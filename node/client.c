/*
 * node/client.c: a client connection's transactions (node/client.h), a
 * short list each (the transaction quota bounds it for guests).
 */
#include "node/client.h"
#include "node/store/store.h"

#include <assert.h>
#include <stdlib.h>

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
	free(cl);
	conn_set_data(c, NULL);
}

unsigned client_txn_count(const struct conn *c)
{
	const struct client *cl = conn_get_data(c);

	return cl ? cl->n_txns : 0;
}

struct txn *client_txn_find(struct client *cl, uint32_t id)
{
	struct txn *t;

	for (t = cl->txns; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

struct txn *client_txn_new(struct client *cl, struct store *st,
			   const char *host, uint32_t id)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->st = store_txn_new(st, host);
	if (!t->st) {
		free(t);
		return NULL;
	}
	assert(id != 0 && !client_txn_find(cl, id));
	t->id = id;
	t->next = cl->txns;
	cl->txns = t;
	cl->n_txns++;
	return t;
}

void client_txn_end(struct client *cl, struct txn *tx)
{
	struct txn **pp = &cl->txns;

	assert(cl->n_txns > 0);
	while (*pp != tx)
		pp = &(*pp)->next; /* tx is cl's: the list ends at it */
	*pp = tx->next;
	cl->n_txns--;
	assert((cl->txns == NULL) == (cl->n_txns == 0));
	store_txn_free(tx->st);
	free(tx);
}

void client_txn_drop_all(struct client *cl)
{
	while (cl->txns)
		client_txn_end(cl, cl->txns);
}
