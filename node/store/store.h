/*
 * node/store/store.h: the replicated state machine: a forest of xenstore trees,
 * one per member host, and the session table of the log.
 *
 * Every mutation is a function of (state, arguments, log index) alone: no
 * clock, no randomness, no connection table. The same calls in the same
 * order give byte-identical state on every replica (store_digest).
 *
 * Semantics follow the C xenstored of Xen 4.17 (tools/xenstore/
 * xenstored_core.c): permissions, errno hiding, implicit parent creation,
 * node accounting and quotas, and generation-count transactions. Errors are
 * negative errno values; the store never logs.
 *
 * Paths given to the store are absolute ("/local/domain/0/x") or special
 * ("@releaseDomain"); making relative paths absolute is the caller's job.
 */
#ifndef XSR_STORE_H
#define XSR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

/* One permission entry (struct xs_permissions). */
struct store_perm {
	uint32_t domid;
	uint8_t access; /* WIRE_PERM_READ | WIRE_PERM_WRITE */
	uint8_t ignore; /* XS_PERM_IGNORE: kept but skipped (XSA-322) */
	uint16_t pad;
};

#define STORE_PERM_READ 0x1
#define STORE_PERM_WRITE 0x2
#define STORE_PERM_OWNER 0x8

/* Quotas of Xen 4.17's xenstored, with its defaults (STORE_QUOTA_INIT). */
struct store_quota {
	uint32_t nodes;		    /* -E: nodes owned per domain */
	uint32_t node_size;	    /* -S: bytes of a node record */
	uint32_t permissions;	    /* -A: entries per node */
	uint32_t transaction_nodes; /* -Q transaction-nodes= */
	uint32_t memory;	    /* -Q memory=: bytes per domain (hard) */
	uint32_t path_max;	    /* -M: path length after the domain home */
};

#define STORE_QUOTA_INIT                                                       \
	{                                                                      \
		.nodes = 1000, .node_size = 2048, .permissions = 5,            \
		.transaction_nodes = 1024, .memory = 2621440, .path_max = 2048 \
	}

#define STORE_NO_TARGET UINT32_MAX

/*
 * Who asks: everything a permission or quota decision needs. Quotas apply
 * to unprivileged callers only; path_max applies to every caller, as in
 * Xen 4.17.
 */
struct store_caller {
	uint32_t domid;
	bool privileged;
	uint32_t target; /* SET_TARGET domain, or STORE_NO_TARGET */
	struct store_quota quota;
};

/*
 * A watch event the store asks its caller to fire, in firing order.
 * Permission filtering of unprivileged watchers (XSA-115) needs the perms
 * cxenstored would consult: those of the node, of its parent, and the old
 * ones for SET_PERMS or a transaction's first access. Each may be absent.
 */
struct store_perms {
	uint32_t n;
	struct store_perm *v;
};

struct store_event {
	char *path;  /* absolute or "@..." */
	bool exact;  /* only watches on exactly this path */
	struct store_perms node, parent, old;
	bool has_node, has_parent, has_old;
};

struct store_events {
	struct store_event *v;
	size_t n, cap;
	/*
	 * Some event of this change could not be recorded for lack of
	 * memory: the caller must fire every watch it serves once, as after
	 * a restart; spurious events are allowed by the protocol. Such a
	 * failure is local: the change itself is applied alike on every
	 * replica. An event may then be missing, or lack a permission copy
	 * (has_node, has_old, has_parent false where they would be set).
	 */
	bool lost;
};

/* An empty list, lost clear. */
void store_events_init(struct store_events *ev);
/* Frees the events; ev is then as after store_events_init (lost clear). */
void store_events_clear(struct store_events *ev);

/*
 * The key of the keyed hash (SipHash-2-4) under which the store's tries
 * place paths. The trie's shape is never observable (walks, digests and
 * snapshots follow the tree's child order), so replicas need not share
 * the key; the daemon derives its own from its host name and member id
 * (node/hashkey.c). Why it need not be secret: docs/ARCHITECTURE.md,
 * "The hash key".
 */
#define STORE_HASH_KEY_LEN 16

/* The documented fixed key of store_new(): "xenstored-raft/1". */
extern const uint8_t store_hash_key_default[STORE_HASH_KEY_LEN];

/*
 * A new empty store (no hosts) hashing paths under key (copied; the
 * caller keeps its buffer). No system call, no global state. NULL on
 * ENOMEM.
 */
struct store *store_new_keyed(const uint8_t key[STORE_HASH_KEY_LEN]);
/* The same with store_hash_key_default (tests, tools). NULL on ENOMEM. */
struct store *store_new(void);
void store_free(struct store *st);
/* The key st was created with (borrowed, lives as long as st). */
const uint8_t *store_hash_key(const struct store *st);

/* The permission bits (STORE_PERM_*) a caller has on a permission list. */
unsigned int store_perm_for(const struct store_caller *c,
			    const struct store_perm *perms, uint32_t n);

/*
 * Parse "r5" style strings (xs_strings_to_perms): letter n/r/w/b then a
 * number for strtol(.., 0), truncated to 32 bits as in Xen.
 * Returns 0 or -EINVAL.
 */
int store_perm_parse(const char *s, struct store_perm *out);
/* Format one entry ("r5", "n-1"); buf needs 13 bytes. Returns the length. */
int store_perm_format(const struct store_perm *p, char *buf);

/*
 * Validate an absolute path as cxenstored 4.17's is_valid_nodename(),
 * with path_max measured after "/local/domain/<domid>/".
 */
bool store_path_valid(const char *path, uint32_t path_max);

/* ---- Hosts ---------------------------------------------------------- */

bool store_host_exists(const struct store *st, const char *host);

/*
 * Create the initial tree of a host ("/", "/tool", "/tool/xenstored", all
 * "n0", and the special nodes' permissions), with generation `index`.
 * -EEXIST if it exists already, -EINVAL for an empty name.
 */
int store_host_init(struct store *st, const char *host, uint64_t index);

/* The number of hosts and their names, sorted (borrowed). */
size_t store_host_count(const struct store *st);
const char *store_host_name(const struct store *st, size_t i);

/* ---- Reads (local, immediate) ------------------------------------- */
/*
 * With tx == NULL the host's current tree is read; with a transaction the
 * read goes through it and is recorded for conflict detection. Returned
 * pointers are borrowed and stay valid until the next mutation of the
 * store or of the transaction.
 */
int store_read(struct store *st, const char *host, struct store_txn *tx,
	       const struct store_caller *c, const char *path,
	       const char **value, size_t *len);
int store_directory(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, const char *path,
		    const char **children, size_t *len, uint64_t *generation);
int store_get_perms(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, const char *path,
		    const struct store_perm **perms, uint32_t *n);

/* ---- Mutations ------------------------------------------------------ */
/*
 * With tx == NULL: applied to the host's tree with generation `index` (a
 * log index), atomically: on error nothing changed. Events are appended to
 * ev (may be NULL).
 * With a transaction: applied to the transaction only (index is ignored);
 * events are recorded in it and fired by store_commit.
 */
int store_write(struct store *st, const char *host, struct store_txn *tx,
		const struct store_caller *c, uint64_t index, const char *path,
		const void *value, size_t len, struct store_events *ev);
int store_mkdir(struct store *st, const char *host, struct store_txn *tx,
		const struct store_caller *c, uint64_t index, const char *path,
		struct store_events *ev);
int store_rm(struct store *st, const char *host, struct store_txn *tx,
	     const struct store_caller *c, uint64_t index, const char *path,
	     struct store_events *ev);
/*
 * perms[0] is the owner. The caller has already checked the count against
 * the permissions quota and parsed the strings (do_set_perms order).
 */
int store_set_perms(struct store *st, const char *host, struct store_txn *tx,
		    const struct store_caller *c, uint64_t index,
		    const char *path, const struct store_perm *perms,
		    uint32_t n, struct store_events *ev);

/* ---- Transactions --------------------------------------------------- */
/*
 * A transaction is local to the member that runs it: reads see the host's
 * current tree at first access of each node (as cxenstored), writes stay in
 * the transaction. Committing means exporting it (store_txn_export) into a
 * log entry; every replica then applies that with store_commit, which
 * checks every recorded generation and fails with -EAGAIN on a conflict.
 */
struct store_txn *store_txn_new(struct store *st, const char *host);
void store_txn_free(struct store_txn *tx);
/* Set when an operation inside failed in a way that forbids a commit. */
bool store_txn_failed(const struct store_txn *tx);
/*
 * Bytes tx holds of its own: its record of each accessed node and the
 * nodes it changed (what it shares with the tree is not counted).
 */
size_t store_txn_memory(const struct store_txn *tx);

/* One accessed node of a transaction, in first-access order. */
struct store_commit_node {
	const char *path;
	bool existed;	     /* existed at first access */
	uint64_t generation; /* its generation then */
	bool modified;
	bool exists;	       /* after the transaction (if modified) */
	const char *value;     /* final record, if modified and exists */
	size_t value_len;
	const struct store_perm *perms;
	uint32_t nperms;
	const char *children;
	size_t children_len;
	bool fire_watch, watch_exact;
	const struct store_perm *first_perms; /* perms at first access */
	uint32_t n_first_perms;
};

/* Node count changes per owner domain (cxenstored's changed_domains). */
struct store_commit_delta {
	uint32_t domid;
	int64_t nodes;
};

struct store_commit {
	struct store_commit_node *nodes;
	size_t n;
	struct store_commit_delta *deltas;
	size_t ndeltas;
	bool node_created; /* quota check needed at commit (cxenstored) */
	bool failed;	   /* commit must fail with ENOMEM (tx->fail) */
	/*
	 * Conflicts are decided by whether each node exists as it did at
	 * first access, not by its generation: a transaction of standalone
	 * mode (node/standalone.h), checked against the overlay when it was
	 * answered, whose generations the log cannot know.
	 */
	bool existence_only;
};

/*
 * Describe tx for a log entry. The strings and perms borrow from tx: keep
 * tx alive until the entry is encoded; then store_commit_release(out).
 */
int store_txn_export(const struct store_txn *tx, struct store_commit *out);
void store_commit_release(struct store_commit *cm);

/*
 * Apply a commit: ENOMEM if it was failed, ENOSPC on node quota, EAGAIN if
 * any accessed node changed since its first access; otherwise every
 * modified node takes generation `index` and the recorded events are
 * appended to ev in first-access order.
 */
int store_commit(struct store *st, const char *host,
		 const struct store_caller *c, uint64_t index,
		 const struct store_commit *cm, struct store_events *ev);
/* Would store_commit() refuse cm with EAGAIN (by generations, whatever
 * cm->existence_only says)? False if host has no tree. */
bool store_commit_conflicts(struct store *st, const char *host,
			    const struct store_commit *cm);

/* ---- Accounting ------------------------------------------------------ */

/* Nodes owned by domid on host and their memory, as cxenstored counts. */
void store_domain_usage(const struct store *st, const char *host,
			uint32_t domid, uint64_t *nodes, uint64_t *memory);

/*
 * Full consistency check (node/store/store_check.c): every invariant the store
 * keeps, recomputed from scratch, for every host: the trie (bitmaps,
 * slots, hashes under the store's key, canonical form), the tree (every
 * listed child exists, every node's parent lists it once, every node is
 * reachable from "/", child names, permissions), the special nodes, node and memory accounting against a
 * recount, the registry (order, ring sessions, watches); then the session
 * table and the members. O(nodes); reads only. Returns 0, -EIO with *what
 * naming the first violation (static string), or -ENOMEM.
 */
int store_check(const struct store *st, const char **what);
/*
 * The same, and no generation above the applied index (which holds after
 * every entry sm_apply applied; callers that drive the store directly
 * need not keep it, so store_check and restores do not ask it). The
 * violation, its host and node are formatted into msg.
 */
int store_check_report(const struct store *st, char *msg, size_t len);

/*
 * store_check_after_apply(st): in a build configured with
 * -DXSR_CHECK_STORE=ON, check the whole store and abort with the
 * violation on stderr (an assertion over the store, for debug builds);
 * otherwise nothing. The apply path calls it after every entry.
 */
void store_check_or_abort(const struct store *st, const char *file, int line);
#ifdef XSR_CHECK_STORE
#define store_check_after_apply(st) store_check_or_abort((st), __FILE__, __LINE__)
#else
#define store_check_after_apply(st) ((void)(st))
#endif

/* ---- Domains: the registry of a host ---------------------------------- */
/*
 * The domains introduced on a host (INTRODUCE), with what a daemon needs
 * to serve them again after a restart or on another host: the ring's
 * parameters, the ring session (ring_id: the log index of the entry that
 * last (re)started the ring; requests on it are numbered from 0) and the
 * watches the guest registered over its ring, in registration order.
 * Socket clients' watches are not here: they die with their connection.
 */
struct store_watch {
	char *path;  /* as the guest gave it: relative, absolute or "@..." */
	char *token;
};

struct store_domain {
	uint32_t domid;
	uint64_t mfn;	    /* INTRODUCE's gfn */
	uint32_t port;	    /* INTRODUCE's event channel (the guest's end) */
	uint64_t ring_id;   /* current ring session, never 0 */
	uint32_t target;    /* SET_TARGET, or STORE_NO_TARGET */
	uint32_t ring_error; /* non-zero: the ring broke (XENSTORE_ERROR_*) */
	/*
	 * The toolstack asked it to suspend and it has not resumed since: a
	 * privileged caller other than the domain wrote "suspend" to its
	 * control/shutdown (any other value from such a caller clears it, as
	 * does RESUME). What store_domain_inherit() looks for.
	 */
	bool suspending;
	struct store_watch *watches;
	uint32_t nwatches, capwatches;
};

/* Ring sessions live in the session table under this origin. */
#define STORE_RING_ORIGIN(ring_id) ((ring_id) | (1ull << 63))

/* Borrowed until the next change of the registry; NULL if unknown. */
const struct store_domain *store_domain_get(const struct store *st,
					    const char *host, uint32_t domid);
size_t store_domain_count(const struct store *st, const char *host);
/* In domid order. */
const struct store_domain *store_domain_at(const struct store *st,
					   const char *host, size_t i);

/*
 * INTRODUCE at log index `index`. A new domain fires @introduceDomain
 * (fire_event; not for the host's own dom0 ring); an introduced one is
 * re-introduced: new port, watches dropped, a new ring session, as
 * cxenstored resets the ring then.
 */
int store_domain_introduce(struct store *st, const char *host, uint32_t domid,
			   uint64_t mfn, uint32_t port, uint64_t index,
			   bool fire_event, struct store_events *ev);
/*
 * RELEASE, or the domain died: its nodes are deleted (each firing its
 * watches, as an rm by dom0), entries naming it in other nodes'
 * permissions are marked ignored (XSA-322), it leaves the special nodes'
 * permissions, @releaseDomain fires and the registry forgets it (and its
 * ring session and quota settings); a domain whose target it was
 * (SET_TARGET) has none any more. -ENOENT if it is not introduced.
 */
int store_domain_gone(struct store *st, const char *host, uint32_t domid,
		      uint64_t index, struct store_events *ev);
/* SET_TARGET: both introduced, else -ENOENT. */
int store_domain_set_target(struct store *st, const char *host,
			    uint32_t domid, uint32_t target);
/*
 * A guest's WATCH (duplicates -EEXIST first, then the quota: more than
 * max_watches already -> -E2BIG, as cxenstored 4.17; 0 = no quota),
 * UNWATCH (-ENOENT if not registered), RESET_WATCHES.
 */
int store_domain_watch(struct store *st, const char *host, uint32_t domid,
		       const char *path, const char *token,
		       uint32_t max_watches);
int store_domain_unwatch(struct store *st, const char *host, uint32_t domid,
			 const char *path, const char *token);
int store_domain_reset_watches(struct store *st, const char *host,
			       uint32_t domid);
/*
 * The ring starts over (guest reconnection, error 0: a new ring session
 * at index) or broke (error != 0: not served until introduced again).
 * Either way the watches go.
 */
int store_domain_ring_reset(struct store *st, const char *host,
			    uint32_t domid, uint32_t error, uint64_t index);

/*
 * Move a domain's store state from (src_host, src_domid) to (dst_host,
 * dst_domid), atomically (migration, adoption after a host failure):
 * /local/domain/<a> of the source becomes /local/domain/<b> of the
 * destination, with its companions: the /vm/<uuid> its "vm" key names,
 * /libxl/<a> (as /libxl/<b>), and each of `subtrees` (a last component
 * equal to <a> becomes <b>). In the moved nodes, permission entries
 * naming <a> name <b>, and values naming a moved path name its new place.
 * The source nodes go (their watchers see the removal); the destination's
 * watchers see each new node. If <a> is introduced on the source host it
 * is forgotten there as if it had died (store_domain_gone()).
 *
 * Refusals, decided before anything changes: -ENOENT (a host, the
 * domain's home or a named subtree is missing), -EEXIST (a destination
 * path exists and merge is off; with merge, what exists stays and only
 * what is missing is added), -ENOSPC (<b> would own more than max_nodes
 * nodes on the destination; 0: no check), -EINVAL (domid 0 or reserved,
 * the same place, overlapping subtrees, a bad path).
 */
struct store_move {
	const char *src_host, *dst_host;
	uint32_t src_domid, dst_domid;
	const char *const *subtrees;
	size_t nsubtrees;
	bool merge;
	uint32_t max_nodes;
	/*
	 * A copy (store_domain_inherit()): only the home, the source left as
	 * it is (nodes, registry, quota settings), the subtrees below the
	 * home named by `exclude` (relative: "device", "control/shutdown")
	 * not copied. `copied` says how many nodes were added.
	 */
	bool copy;
	const char *const *exclude;
	size_t nexclude;
	size_t copied;
};

int store_domain_move(struct store *st, struct store_move *m,
		      uint64_t index, struct store_events *src_ev,
		      struct store_events *dst_ev);

/*
 * Migration under a toolstack (`xl migrate`), decided when the destination
 * introduces the domain (an INTRODUCE entry that asks for it), from the
 * replicated state only, so alike on every replica:
 *
 * The new domain <b> of `host` inherits the store state of the one domain
 * that (1) is introduced on some host (this one included) and is not <b>
 * itself, (2) is `suspending` (its toolstack asked it to suspend and it
 * did not resume), and (3) whose home's "vm" key names the same
 * /vm/<uuid> as <b>'s. Its home is copied into <b>'s home, merged (what
 * <b>'s toolstack wrote stays), without its control/shutdown, device/,
 * console/ and error/ (the toolstack, the frontends and the backends set
 * them up again on the new host after INTRODUCE), owners and permission
 * entries naming the old domid naming <b>. The source stays as it is: a
 * migration that fails after this resumes the source, which finds its
 * home; its toolstack deletes it when it destroys the old domain.
 *
 * Returns 0 and fills `out` (found: a source was found; copied: nodes
 * added) or a refusal that leaves everything as it was: -ENOENT (no "vm"
 * key, or no source: a running domain is never a source), -EEXIST (more
 * than one source names the same vm: ambiguous, nothing is taken),
 * -ENOSPC (over max_nodes on the destination; 0: no check).
 */
struct store_inherit {
	char src_host[72];
	uint32_t src_domid;
	size_t copied;
};

int store_domain_inherit(struct store *st, const char *host, uint32_t domid,
			 uint32_t max_nodes, uint64_t index,
			 struct store_events *ev, struct store_inherit *out);
/* RESUME: the domain runs again (not suspending). -ENOENT if unknown. */
int store_domain_resume(struct store *st, const char *host, uint32_t domid);

/*
 * Append an event on special node path ("@releaseDomain") carrying its
 * permissions, as the store would fire it (for a shutdown the daemon
 * notices itself). -ENOENT if path is not a special node of host.
 */
int store_special_event(const struct store *st, const char *host,
			const char *path, struct store_events *ev);

/* ---- Log sessions (Raft dissertation 6.3) ------------------------------ */
/*
 * Per origin member: the last sequence number applied and the results of
 * the last STORE_SESSION_WINDOW ones. An entry whose seq is not above the
 * last one is a duplicate and must not be applied again; its result is
 * still known if it is recent, so a member that learns of its own entries
 * late (from a snapshot, or from a copy of the log) can answer them.
 */
#define STORE_SESSION_WINDOW 1024

enum store_seen {
	STORE_NEW,		/* seq is above every applied one */
	STORE_SEEN,		/* applied before; *result is its result */
	STORE_SEEN_FORGOTTEN,	/* applied before, too long ago to know */
};

enum store_seen store_session_lookup(const struct store *st, uint64_t origin,
				     uint64_t seq, int *result);
/* Record that (origin, seq) was applied with result; seq is the new last. */
int store_session_record(struct store *st, uint64_t origin, uint64_t seq,
			 int result);
/* Last applied seq of an origin (0 if none). */
uint64_t store_session_last(const struct store *st, uint64_t origin);
/* Forget an origin (a ring session that ended). */
void store_session_forget(struct store *st, uint64_t origin);

/* ---- Quota settings --------------------------------------------------- */
/*
 * What an administrator set with SET_QUOTA or CONTROL quota set, per host:
 * settings for the whole host (domid STORE_QUOTA_HOST) and for single
 * domains. They are replicated state so that every member, a restarted
 * one included, knows them, and a migrated domain takes its own with it
 * (store_domain_move). The store does not interpret them: items are the
 * daemon's (node/caller.h numbers them, 0 to STORE_QUOTA_ITEMS - 1), and
 * what an entry is refused for is decided by the quota the entry carries
 * (struct store_caller), as before. A domain's own settings go with it
 * when it dies (store_domain_gone), as Xen 4.22's live in its struct domain.
 */
#define STORE_QUOTA_ITEMS 10
#define STORE_QUOTA_HOST UINT32_MAX

struct store_quota_set {
	uint32_t domid; /* or STORE_QUOTA_HOST */
	uint32_t mask;	/* bit i: value[i] is set */
	uint32_t value[STORE_QUOTA_ITEMS];
};

/*
 * Set one item for domid (a domain below 0x7FF0, or STORE_QUOTA_HOST) of
 * host. 0, -ENOENT (no such host), -EINVAL (item or domid out of range),
 * -STORE_ELOCAL.
 */
int store_quota_set(struct store *st, const char *host, uint32_t domid,
		    unsigned int item, uint32_t value);
/* Borrowed until the next change of host's settings; NULL if none. */
const struct store_quota_set *store_quota_get(const struct store *st,
					      const char *host, uint32_t domid);
size_t store_quota_count(const struct store *st, const char *host);
/* In domid order (STORE_QUOTA_HOST last). */
const struct store_quota_set *store_quota_at(const struct store *st,
					     const char *host, size_t i);

/* ---- Members ---------------------------------------------------------- */
/*
 * The cluster table: who the members are. The tree of a host is named by
 * its member's name. Addresses are where peers reach it (Raft, peer RPC).
 */
struct store_member {
	uint64_t id;
	char *name;
	char *raft_address;
	char *peer_address;
};

/* Add or replace member id. -EEXIST if another member has that name. */
int store_member_set(struct store *st, uint64_t id, const char *name,
		     const char *raft_address, const char *peer_address);
int store_member_remove(struct store *st, uint64_t id); /* 0 or -ENOENT */
size_t store_member_count(const struct store *st);
/* Sorted by id; borrowed until the next member change. */
const struct store_member *store_member_at(const struct store *st, size_t i);
const struct store_member *store_member_by_id(const struct store *st,
					      uint64_t id);
const struct store_member *store_member_by_name(const struct store *st,
						const char *name);

/*
 * The log index of the last applied entry (kept for snapshots). The
 * applier sets it before it applies an entry (sm_apply), so no node's
 * generation is above it (store_check; 0 means "not maintained").
 */
uint64_t store_applied_index(const struct store *st);
void store_set_applied_index(struct store *st, uint64_t index);

/* ---- Snapshots ------------------------------------------------------- */
/*
 * A pin holds an immutable version of the whole store in O(hosts): later
 * mutations do not change it. store_pin_walk may run on another thread
 * while the loop goes on mutating; pin and unpin only on the loop thread.
 */
struct store_pin;

struct store_pin *store_pin(struct store *st);
void store_unpin(struct store_pin *pin);

struct store_walk_ops {
	/* Called once, first. */
	int (*begin)(void *arg, uint64_t applied_index, size_t n_hosts,
		     size_t n_sessions);
	/* Every retained (seq, result) of every origin, in seq order. */
	int (*session)(void *arg, uint64_t origin, uint64_t seq, int result);
	int (*member)(void *arg, const struct store_member *m);
	int (*host)(void *arg, const char *name);
	/* Nodes of the current host, parents before children, in child order;
	 * special nodes ("@...") after the tree. */
	int (*node)(void *arg, const char *path, uint64_t generation,
		    const struct store_perm *perms, uint32_t nperms,
		    const char *value, size_t value_len, const char *children,
		    size_t children_len);
	/* The current host's registry, in domid order, after its nodes. */
	int (*domain)(void *arg, const struct store_domain *d);
	/* The current host's quota settings, in domid order, last. */
	int (*quota)(void *arg, const struct store_quota_set *q);
};

/* Deterministic, iterative walk. Stops at the first non-zero return. */
int store_pin_walk(const struct store_pin *pin,
		   const struct store_walk_ops *ops, void *arg);

/*
 * Rebuild a store from a walk's callbacks: store_restore_begin (a new
 * store hashing under key, as store_new_keyed), store_restore_* in the
 * walk's order, then store_restore_finish() recomputes the accounting and checks
 * the result (-EIO if inconsistent). A node newer than applied_index (if
 * not 0) is refused (-EINVAL): no entry up to that index wrote it.
 */
struct store *store_restore_begin(const uint8_t key[STORE_HASH_KEY_LEN],
				  uint64_t applied_index);
int store_restore_session(struct store *st, uint64_t origin, uint64_t seq,
			  int result);
int store_restore_member(struct store *st, const struct store_member *m);
int store_restore_host(struct store *st, const char *name);
int store_restore_node(struct store *st, const char *path, uint64_t generation,
		       const struct store_perm *perms, uint32_t nperms,
		       const char *value, size_t value_len,
		       const char *children, size_t children_len);
/* A domain of the current host (copied). */
int store_restore_domain(struct store *st, const struct store_domain *d);
/* Quota settings of the current host (copied), in domid order. */
int store_restore_quota(struct store *st, const struct store_quota_set *q);
int store_restore_finish(struct store *st);

/* Number of nodes of a host (excluding special nodes). */
size_t store_node_count(const struct store *st, const char *host);

#endif
