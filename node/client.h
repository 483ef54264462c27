/*
 * node/client.h: what the daemon keeps per client connection (its slot
 * conn_get_data): the transactions it has open (node/client.c). Dispatch
 * runs them; CONTROL reports them; the ring's read check charges their
 * memory to the domain's memory quota.
 */
#ifndef XSR_NODE_CLIENT_H
#define XSR_NODE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/conn.h"

struct store;

/* A transaction of a connection. */
struct txn {
	uint32_t id;
	struct store_txn *st;
	/* started before a restart (ring only): it runs, but its commit
	 * fails with EAGAIN and the guest does it again */
	bool doomed;
};

/* A connection's transactions, sorted by id: found in O(log n). */
struct client {
	struct txn **txns;
	unsigned n_txns, cap;
	uint32_t next_tx_id;
	/* a guest's write credit (dispatch.c): changes it may still send
	 * now, refilled with time; below zero its ring is not read */
	int64_t credit_mwrites; /* thousandths of a write */
	uint64_t credit_ms;	/* when it was last refilled */
	bool credit_started;
};

/* c's state, created on first use (NULL: out of memory). */
struct client *client_of(struct conn *c);
/* c is closing: its transactions end, its state goes. */
void client_close(struct conn *c);
/* The transactions c has open. */
unsigned client_txn_count(const struct conn *c);
/* Bytes c's open transactions hold (their own copies of nodes). */
size_t client_txn_memory(const struct conn *c);

struct txn *client_txn_find(struct client *cl, uint32_t id);
/* A new transaction numbered id (not in use) on host's tree of st
 * (NULL: out of memory). */
struct txn *client_txn_new(struct client *cl, struct store *st,
			   const char *host, uint32_t id);
/* Forget tx (one of cl's) and free it. */
void client_txn_end(struct client *cl, struct txn *tx);
void client_txn_drop_all(struct client *cl);

#endif
