/*
 * node/store/store_err.h: the one error code of the store that is not an errno.
 *
 * Xen's xenstored answers ENOMEM both when a domain exceeds its memory
 * quota and when a transaction failed (docs/misc/xenstore.txt): those are
 * decisions, taken alike on every replica from the replicated state, and
 * the store returns them as -ENOMEM. A malloc() that fails is something
 * else: it happened here only. The store returns it as -STORE_ELOCAL, so
 * that the apply path can stop the replica rather than record it as the
 * entry's result (consensus/sm.h). It never reaches a client: outside the log
 * (a transaction's local operations) the caller answers ENOMEM for it
 * (store_err_wire()).
 */
#ifndef XSR_STORE_ERR_H
#define XSR_STORE_ERR_H

#include <errno.h>
#include <stdbool.h>

/* Out of memory here (a local resource failure), not a refusal. Outside
 * errno's range (Linux's end below 150). */
#define STORE_ELOCAL 1000

/* A local failure as the store reports it: -ENOMEM of a lower layer
 * (hamt_*(), snode_*()) becomes -STORE_ELOCAL; anything else is kept. */
static inline int store_err_local(int rc)
{
	return rc == -ENOMEM ? -STORE_ELOCAL : rc;
}

/* Was rc a local failure rather than a result? */
static inline bool store_err_is_local(int rc)
{
	return rc == -STORE_ELOCAL;
}

/* rc as a client may see it: a local failure is answered ENOMEM, as
 * Xen's xenstored answers a failed allocation. */
static inline int store_err_wire(int rc)
{
	return rc == -STORE_ELOCAL ? -ENOMEM : rc;
}

#endif
