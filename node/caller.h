/*
 * node/caller.h: who a request's caller is, for every handler that needs
 * it (dispatch, control, domains, migration): the quotas in force for it,
 * its identity for the store, its paths made absolute, and domids as Xen
 * parses them.
 *
 * Quotas in force for a domain of this host are, item by item: the
 * domain's own setting (SET_QUOTA with a domid), else the host's setting
 * (SET_QUOTA, CONTROL quota set), else the command line (-E -S -A -M -W
 * -t -Q -q). Settings are replicated state (node/store/store.h, "Quota
 * settings"): every member knows them, a restart keeps them, a migrated
 * domain takes its own along. What the store decides is decided by the
 * quota an entry carries, computed here by the member that submits it.
 */
#ifndef XSR_NODE_CALLER_H
#define XSR_NODE_CALLER_H

#include <stdint.h>

#include "consensus/sm.h"
#include "node/store/store.h"

struct conn;
struct conn_req;
struct daemon;

/* Every quota, as the C xenstored knows them (Xen 4.17 defaults). */
struct quotas {
	struct store_quota store; /* decided in the store, travel in entries */
	unsigned watches;	  /* -W */
	unsigned transactions;	  /* -t */
	unsigned outstanding;	  /* -Q outstanding= */
	unsigned soft_memory;	  /* -q memory= */
};

#define QUOTAS_INIT                                                            \
	{                                                                      \
		.store = STORE_QUOTA_INIT, .watches = 128, .transactions = 10, \
		.outstanding = 20, .soft_memory = 2097152                      \
	}

/*
 * The quota items, in the order of Xen 4.22's GET_QUOTA list. The numbers
 * are written into log entries and snapshots: never renumber them.
 */
enum quota_item {
	QUOTA_NODES,
	QUOTA_WATCHES,
	QUOTA_OUTSTANDING,
	QUOTA_MEMORY,
	QUOTA_SOFT_MEMORY,
	QUOTA_TRANSACTIONS,
	QUOTA_TRANSACTION_NODES,
	QUOTA_PERMISSIONS,
	QUOTA_PATH_MAX,
	QUOTA_NODE_SIZE,
	QUOTA_ITEMS
};

/* Xen 4.22's name of an item ("node-permissions", "soft-memory", ...). */
const char *caller_quota_name(enum quota_item item);
/* The item of a Xen 4.22 name, or -1. */
int caller_quota_by_name(const char *name);
/* Where item lives in q. */
unsigned int *caller_quota_field(struct quotas *q, enum quota_item item);
/*
 * May item be set to value? A value of 0 is refused (as our SET_QUOTA
 * always has), and path-max no higher than -M allows (2048, Xen's
 * XENSTORE_REL_PATH_MAX): the store's path buffers are sized for it.
 */
bool caller_quota_valid(enum quota_item item, uint32_t value);

/* The quotas in force for domid of this host. */
struct quotas caller_quotas(const struct daemon *d, uint32_t domid);
/* The caller context of a connection for the store. */
void caller_of(struct daemon *d, const struct conn *c,
	       struct store_caller *out);
/* The origin of an entry from this member for request r of c by caller
 * who, numbered seq (a ring's request also by its session and number). */
struct sm_origin caller_origin(struct daemon *d, const struct conn *c,
			       const struct conn_req *r,
			       const struct store_caller *who, uint64_t seq);
/* Make path absolute for c ("/local/domain/<id>/" + path). malloc()ed. */
char *caller_canonical(const struct conn *c, const char *path);
/* parse_domid() of Xen 4.22: decimal, at most 65535; 0 or -EINVAL. */
int caller_parse_domid(const char *s, unsigned int *domid);

#endif
