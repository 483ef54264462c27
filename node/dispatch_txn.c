/*
 * node/dispatch_txn.c: transactions (docs/misc/xenstore.txt,
 * TRANSACTION_START and _END). A transaction reads a pinned version of
 * the store and records what it reads; its steps run here
 * (dispatch_node.c); its end commits one log entry {read-set, write-set}
 * that applies atomically or fails with EAGAIN, decided at apply time on
 * every replica alike. A commit that changes nothing is decided here.
 */
#include "node/dispatch_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A transaction id of a ring taken up after a restart: the transaction
 * was lost with the old daemon. Cxenstored would say ENOENT and most
 * guests would fail the operation; instead the transaction goes on (reads
 * see the current tree) and fails with EAGAIN at its end, which every
 * xenbus client retries.
 */
struct txn *dispatch_txn_resurrect(struct request *q, uint32_t id)
{
	struct client *cl = q->cl;
	unsigned int quota = caller_quotas(q->d, q->id->domid).transactions;
	struct txn *t;

	/* within the transaction quota, as TRANSACTION_START (ENOENT) */
	if (!q->id->privileged && quota && cl->n_txns > quota)
		return NULL;
	t = client_txn_new(cl, q->d->store, q->d->host, id);
	if (!t)
		return NULL;
	t->doomed = true;
	if (cl->next_tx_id <= id)
		cl->next_tx_id = id + 1;
	return t;
}

enum conn_verdict dispatch_transaction_start(struct request *q)
{
	struct client *cl = q->cl;
	unsigned int quota = caller_quotas(q->d, q->id->domid).transactions;
	uint32_t id;
	struct txn *t;
	char reply[16];

	if (q->tx)
		return dispatch_error(q, -EBUSY); /* no nesting */
	if (!q->id->privileged && quota && cl->n_txns > quota)
		return dispatch_error(q, -ENOSPC);
	do {
		id = cl->next_tx_id++;
	} while (id == 0 || client_txn_find(cl, id));
	t = client_txn_new(cl, q->d->store, q->d->host, id);
	if (!t)
		return dispatch_error(q, -ENOMEM);
	snprintf(reply, sizeof(reply), "%u", t->id);
	return dispatch_reply(q, reply, strlen(reply) + 1);
}

static bool commit_modifies(const struct store_commit *cm)
{
	size_t i;

	for (i = 0; i < cm->n; i++)
		if (cm->nodes[i].modified)
			return true;
	return false;
}

enum conn_verdict dispatch_transaction_end(struct request *q)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);
	struct daemon *d = q->d;
	struct store_commit cm;
	struct sm_origin o;
	bool commit, to_log;
	size_t blen;
	void *buf;
	int rc;

	if (!arg || (strcmp(arg, "T") != 0 && strcmp(arg, "F") != 0))
		return dispatch_error(q, -EINVAL);
	if (!q->tx)
		return dispatch_error(q, -ENOENT);
	commit = strcmp(arg, "T") == 0;
	if (q->tx->doomed) {
		client_txn_end(q->cl, q->tx);
		/* its start was lost with the old daemon: do it again */
		return commit ? dispatch_error(q, -EAGAIN) : dispatch_ok(q);
	}
	rc = store_txn_export(q->tx->st, &cm);
	if (rc)
		return dispatch_error(q, rc);
	/* Only a commit that changes something goes to the log. */
	to_log = commit && commit_modifies(&cm);
	if (to_log && d->no_quorum_since) {
		/*
		 * Standalone mode: its read set holds the overlay's
		 * generations, which the log cannot know. Conflicts are
		 * decided here, against the overlay, as the log would; the
		 * entry then asks the log to check only that every node
		 * exists as it did (this host is its tree's only writer, and
		 * its earlier standalone writes reach the log first, in
		 * order): docs/ARCHITECTURE.md, "Standalone mode".
		 */
		if (store_commit_conflicts(d->store, d->host, &cm)) {
			store_commit_release(&cm);
			client_txn_end(q->cl, q->tx);
			q->tx = NULL;
			return dispatch_error(q, -EAGAIN);
		}
		cm.existence_only = true;
	}
	if (!to_log) {
		/* conflicts of a read-only transaction, decided here */
		rc = commit ? store_commit(d->store, d->host, &q->who, 0, &cm,
					   NULL)
			    : 0;
	} else {
		o = dispatch_origin(q);
		rc = sm_entry_commit(&o, &cm, &buf, &blen);
	}
	/* cm borrows from the transaction, which is over whatever the
	 * outcome */
	store_commit_release(&cm);
	client_txn_end(q->cl, q->tx);
	q->tx = NULL;
	if (!to_log)
		return rc ? dispatch_error(q, rc) : dispatch_ok(q);
	return submit_request(d, q->c, q->r, rc, buf, blen, o.seq);
}
