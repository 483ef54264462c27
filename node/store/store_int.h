/*
 * node/store/store_int.h: private to the store (store*.c, hamt.c): the immutable
 * node record and the persistent hash trie that maps paths to records.
 */
#ifndef XSR_STORE_INT_H
#define XSR_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/store/store.h"

/*
 * One xenstore node, immutable once it is in a trie. One allocation holds
 * the header, the permissions, the path (NUL-terminated), the value and the
 * children (NUL-terminated leaf names in creation order), in that order.
 *
 * Reference counts are touched only on the loop thread; a snapshot thread
 * may read records that a pinned root keeps alive, never count them.
 */
struct snode {
	uint32_t refs;
	uint32_t nperms;
	uint32_t path_len; /* strlen(path) */
	uint32_t value_len;
	uint32_t children_len;
	uint32_t pad;
	uint64_t hash; /* hash of the path, for the trie */
	uint64_t generation;
	struct store_perm perms[]; /* then path, value, children */
};

static inline const char *snode_path(const struct snode *n)
{
	return (const char *)(n->perms + n->nperms);
}

static inline const char *snode_value(const struct snode *n)
{
	return snode_path(n) + n->path_len + 1;
}

static inline const char *snode_children(const struct snode *n)
{
	return snode_value(n) + n->value_len;
}

/*
 * A new record with one reference. Copies every argument. NULL on ENOMEM.
 */
struct snode *snode_new(const char *path, size_t path_len, uint64_t hash,
			uint64_t generation, const struct store_perm *perms,
			uint32_t nperms, const void *value, size_t value_len,
			const void *children, size_t children_len);
void snode_ref(const struct snode *n);
void snode_unref(const struct snode *n);

/*
 * Hashing paths for the tries. Every trie of a store hashes under the key
 * its store was created with (store_new_keyed; store_new: the default
 * key); a host binds it when it is created (host_bind_key) and host_hash
 * uses it. Hashes are never persisted.
 */

struct host;
/* The key of st (borrowed): its own if keyed, else the default. */
const uint8_t *store_key_of(const struct store *st);
/* Bind a newly created host of st to st's key. */
void host_bind_key(const struct store *st, struct host *h);
/* Hash of path for h's trie. */
uint64_t host_hash(const struct host *h, const char *path, size_t len);

/*
 * Walk one host's tree (its trie root, hashed under key) depth-first from
 * "/": parents before children, children in their list order; visit()
 * gets each node, and a non-zero return stops the walk with it. A listed
 * child (or the root) that is missing goes to missing(path), or is -EIO
 * without one; a path of max_path bytes or more is -EIO. Reads only: safe
 * on a pinned root from any thread (store_snap.c).
 */
struct hamt_node;
int store_walk_tree(const struct hamt_node *root, const uint8_t *key,
		    size_t max_path,
		    int (*visit)(const struct snode *n, void *arg),
		    int (*missing)(const char *path, void *arg), void *arg);

/*
 * Persistent hash array mapped trie: path -> struct snode.
 *
 * A root is a `struct hamt_node *` (NULL is the empty map) holding one
 * reference. Updates copy the nodes on the path from the root unless the
 * whole path is referenced once (then they update in place), so a pinned
 * root (hamt_ref) is an O(1) immutable version.
 */
struct hamt_node;

void hamt_ref(struct hamt_node *root);
void hamt_unref(struct hamt_node *root);

/* Borrowed record, or NULL. Safe to call from any thread on a pinned root. */
const struct snode *hamt_get(const struct hamt_node *root, const char *path,
			     size_t len, uint64_t hash);

/*
 * Insert or replace the record for val's path. Takes ownership of the
 * caller's reference to val on success. *root is replaced by the new root;
 * the old root's reference is consumed. Returns 0 or -ENOMEM (then nothing
 * changed and val is still the caller's).
 */
int hamt_set(struct hamt_node **root, struct snode *val);

/* Remove path. Returns 0, -ENOENT if absent, or -ENOMEM. */
int hamt_del(struct hamt_node **root, const char *path, size_t len,
	     uint64_t hash);

/* Number of records (O(n); for checks and tests). */
size_t hamt_count(const struct hamt_node *root);

/*
 * Check the trie's own invariants (store_check.c): every branch's bitmap
 * has one bit per slot, every record sits in the slot its hash selects at
 * every level and its hash is siphash(key, path), collision nodes are at
 * the bottom and hold records of one full hash, every non-root subtree
 * holds at least two records (hamt_del keeps the trie canonical), counts
 * of references are non-zero. Returns 0, or -EIO with *what naming the
 * first violation (static string). Reads only.
 */
int hamt_check(const struct hamt_node *root, const uint8_t key[16],
	       const char **what);

/* Test-only: set a bitmap bit of the root that has no slot (a corruption
 * for tests/test_store_whole.c to catch; never called elsewhere). */
void hamt_test_corrupt_bitmap(struct hamt_node *root);

/*
 * Visit every record (unspecified order). Stops when fn returns non-zero
 * and returns that value.
 */
int hamt_foreach(const struct hamt_node *root,
		 int (*fn)(const struct snode *n, void *arg), void *arg);

/* ---- Store internals shared by the store's files ---- */

#define NO_GENERATION UINT64_MAX

/* Per-domain accounting of one host: nodes owned and their memory. */
struct acct {
	uint32_t domid;
	int64_t nodes;
	int64_t memory;
};

struct host {
	char *name;
	const uint8_t *hash_key; /* host_bind_key; NULL: the default key */
	struct hamt_node *root;
	struct acct *acct; /* sorted by domid */
	size_t nacct, capacct;
	struct store_domain *doms; /* the registry, sorted by domid */
	size_t ndoms, capdoms;
	struct store_quota_set *quotas; /* settings, sorted by domid */
	size_t nquotas, capquotas;
};

struct session {
	uint64_t origin, last;
	struct {
		uint64_t seq;
		int result;
	} ring[STORE_SESSION_WINDOW]; /* slot seq % WINDOW */
};

struct store {
	struct host *hosts; /* sorted by name */
	size_t nhosts;
	struct session **sess; /* sorted by origin */
	size_t nsess;
	struct store_member *members; /* sorted by id */
	size_t nmembers;
	uint64_t applied_index;
	const char *restoring; /* host being restored (its name) */
	bool keyed;		/* store_new_keyed: hash_key is set */
	uint8_t hash_key[STORE_HASH_KEY_LEN];
};

/* One node a transaction has accessed, in first-access order. */
struct txnode {
	char *path;
	size_t path_len;
	uint64_t hash;
	const struct snode *orig; /* at first access (a reference), or NULL */
	const struct snode *cur;  /* the transaction's view, or NULL */
	bool modified, fire_watch, watch_exact;
};

/* Accounting change of one domain inside an operation. */
struct delta {
	uint32_t domid;
	int64_t nodes;
	int64_t memory;
};

struct store_txn {
	struct store *st;
	char *host;
	struct txnode *nodes;
	size_t n, cap;
	uint32_t *index; /* open addressing: 1 + position in nodes, 0 empty */
	size_t index_cap;
	uint64_t gen_counter; /* generations of nodes modified inside */
	struct delta *d;      /* node count changes per owner */
	size_t nd, capd;
	bool node_created, failed;
};


/* One operation on one host, live (tx == NULL) or inside a transaction. */
struct op {
	struct store *st;
	struct host *h;
	struct store_txn *tx;
	const struct store_caller *c;
	uint64_t gen;
	struct store_events *ev;
	size_t ev_start;		/* events before this op */
	bool ev_lost;			/* ev->lost before this op */
	struct hamt_node *saved_root; /* live: for rollback */
	struct delta *d;		/* live: accounting to apply at the end */
	size_t nd, capd;
	bool tx_touched; /* a transaction's view changed during this op */
};

/*
 * A privileged caller (not the domain itself) wrote value to path on
 * host: if path is /local/domain/<n>/control/shutdown of an introduced
 * domain, its `suspending` follows the value. Called by store_write()
 * and store_commit() once the change is made.
 */
void store_note_shutdown(struct host *h, const struct store_caller *c,
			 const char *path, const void *value, size_t len);

/*
 * The operation layer (store_op.c) under every change: the tree's
 * (store_tree.c), a commit (store_txn.c), a domain's removal or move
 * (store_dom.c, store_move.c).
 */

void op_begin(struct op *o, struct store *st, struct host *h,
	      struct store_txn *tx, const struct store_caller *c,
	      uint64_t index, struct store_events *ev);
int op_end(struct op *o, int rc);
const struct snode *op_get(struct op *o, const char *path, int *err);
int op_put(struct op *o, struct snode *n, bool quota_check);
int op_del(struct op *o, const char *path);
int op_count(struct op *o, uint32_t owner, int by);
/* Nodes counted for the caller (0 if privileged), as domain_entry(conn)
 * sees them: for the node quota. */
int64_t op_caller_nodes(struct op *o);
/* fire_watches() (store_event.c): an event, or a mark in a transaction. */
void op_fire(struct op *o, const char *path, const struct snode *node,
	     bool exact, const struct store_perm *old, uint32_t n_old);
/* rm_node() (store_tree.c): delete path (which exists) and its subtree,
 * firing watches. */
int op_rm(struct op *o, const char *path);

/*
 * get_node() (store_access.c): the node at path if path is valid, the node
 * exists and the caller has perm on it; else NULL with *err, which is
 * -EACCES where the nearest existing ancestor grants none of perm
 * (cxenstored's errno_from_parents(): what a caller may not see, it
 * cannot learn exists).
 */
const struct snode *op_get_node(struct op *o, const char *path,
				unsigned int perm, int *err);
/* An error no permission check may hide (no memory, a transaction full). */
bool err_propagates(int err);

#define PATH_BUF 4100 /* any path that fits a request payload, plus NUL */

/* get_parent(): "/" for top-level nodes and for "/" itself. */
void path_parent(const char *path, char *out);
/* A copy of parent with `name` appended to its children (NULL: ENOMEM). */
struct snode *snode_with_child(const struct snode *parent, const char *name);

/* The special nodes of every host, "@introduceDomain" and "@releaseDomain". */
extern const char *const store_specials[2];

/* Registry internals (store_dom.c). */
void store_domain_close(struct store_domain *d);
int store_domain_copy(struct store_domain *dst, const struct store_domain *src);
void host_doms_free(struct host *h);

/* Hosts (store_host.c). */
struct host *store_host_find(const struct store *st, const char *name);
/* Members (store_member.c): free what a member holds. */
void member_close(struct store_member *m);

/* Quota settings internals (store_quota.c). */
/* Room for one more setting in h: 0 or -STORE_ELOCAL. */
int quota_reserve(struct host *h);
/* Forget domid's settings of h (nothing if none). */
void quota_drop(struct host *h, uint32_t domid);
/* src's settings on ha become dst's on hb (replacing dst's); hb has room
 * (quota_reserve). Nothing if src has none. */
void quota_move(struct host *ha, uint32_t src, struct host *hb, uint32_t dst);
void host_quotas_free(struct host *h);
/* Check h's settings: sorted, unique, known items only. 0 or -EIO. */
int quota_check(const struct host *h, const char **what);
/*
 * The tree of h around path, whose record was before (NULL: none) and may
 * have changed in any way (store_commit applies records from the log):
 * the invariants of store_check() that involve it, in O(siblings +
 * children log children). 0, or -EIO (-ENOMEM) with *what (static) set.
 */
int store_check_around(const struct host *h, const char *path,
		       const struct snode *before, const char **what);
struct acct *acct_find(struct host *h, uint32_t domid, bool create);

/* Record size as cxenstored 4.17 stores it (xs_tdb_record_hdr + data). */
size_t snode_record_size(uint32_t nperms, size_t value_len,
			 size_t children_len);
/* Memory charged for a node: record size + strlen(path). */
int64_t snode_memory(const struct snode *n);

/* Look up a transaction's record of path (NULL if never accessed). */
struct txnode *txn_lookup(struct store_txn *tx, const char *path, size_t len,
			  uint64_t hash);
/* Record a first access (reading the host's current node). */
struct txnode *txn_access(struct store_txn *tx, struct host *h,
			  const char *path, size_t len, uint64_t hash);

/* domain_entry_inc/dec inside a transaction (transaction_entry_inc). */
int txn_count(struct store_txn *tx, uint32_t domid, int by);

/* Events (store_event.c). Append an event: 0 or -STORE_ELOCAL. */
int events_push(struct store_events *ev, const char *path, bool exact,
		struct store_event **out);
/* Free the events from the n-th on (a failed operation's). */
void events_truncate(struct store_events *ev, size_t n);
/* Copy perms into an event's field and set *has; if that fails for lack
 * of memory, set ev->lost instead (the change goes on). */
void event_perms(struct store_events *ev, struct store_perms *dst, bool *has,
		 const struct store_perm *src, uint32_t n);

#endif
