/*
 * consensus/sm.h: the log's contents. Building log entries (wire/entry.proto)
 * and applying one to the store: the replicated state machine's single
 * entry point, shared by the daemon and the consensus tests.
 *
 * sm_apply() is deterministic: the same entries in the same order give the
 * same store on every replica. It decides what the store decides and
 * reports what happened; firing watches and answering clients is the
 * caller's business.
 *
 * Apply never records a local failure as a result. An entry's result (0
 * or a negative errno, kept in the session table and answered to the
 * client) is a decision every replica takes alike: a quota, a permission,
 * a limit, a conflict. Xen spells two of those ENOMEM (the memory quota,
 * a failed transaction), so -ENOMEM is a result. Memory that runs out on
 * this replica while applying is not: the store reports it as
 * -STORE_ELOCAL (node/store/store_err.h), sm_apply() then records nothing and
 * sets out->fatal, and the caller must stop the replica before anything
 * else (no reply, no watch, no snapshot). The entry is applied again from
 * the log after a restart. Stopping is what guarantees that no half-applied
 * state is ever seen.
 */
#ifndef XSR_CONSENSUS_SM_H
#define XSR_CONSENSUS_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/store/store.h"

/* Who submits an entry, and for whom. */
struct sm_origin {
	uint64_t member; /* submitting member id */
	uint64_t seq;	 /* its sequence number, increasing forever */
	const char *host; /* the host tree addressed */
	/* the caller, or NULL for the daemon itself (privileged) */
	const struct store_caller *caller;
	/* a request read from a guest's ring: its ring session and number
	 * (0 otherwise); applied once even if read again after a crash */
	uint64_t ring_id, ring_seq;
};

/*
 * Encoders (sm_entry.c): a malloc()ed buffer in *buf (*len bytes), or
 * -ENOMEM. The arguments are copied.
 */
int sm_entry_write(const struct sm_origin *o, const char *path,
		   const void *value, size_t len, void **buf, size_t *blen);
int sm_entry_mkdir(const struct sm_origin *o, const char *path, void **buf,
		   size_t *blen);
int sm_entry_rm(const struct sm_origin *o, const char *path, void **buf,
		size_t *blen);
int sm_entry_set_perms(const struct sm_origin *o, const char *path,
		       const struct store_perm *perms, uint32_t n, void **buf,
		       size_t *blen);
int sm_entry_commit(const struct sm_origin *o, const struct store_commit *cm,
		    void **buf, size_t *blen);
/* Create o->host's tree; record member m (may be NULL) with it. */
int sm_entry_host_init(const struct sm_origin *o,
		       const struct store_member *m, void **buf, size_t *blen);
int sm_entry_member(const struct sm_origin *o, const struct store_member *m,
		    bool remove, void **buf, size_t *blen);
int sm_entry_verify(const struct sm_origin *o, uint64_t nonce, void **buf,
		    size_t *blen);
int sm_entry_noop(const struct sm_origin *o, void **buf, size_t *blen);
/* The domain registry of o->host (store_domain_*). */
/*
 * inherit: a new domain takes the store state of a suspending domain with
 * the same vm (store_domain_inherit()), with up to max_nodes of its own.
 */
int sm_entry_introduce(const struct sm_origin *o, uint32_t domid,
		       uint64_t mfn, uint32_t port, bool fire_event,
		       bool inherit, uint32_t max_nodes, void **buf,
		       size_t *blen);
int sm_entry_resume(const struct sm_origin *o, uint32_t domid, void **buf,
		    size_t *blen);
int sm_entry_domain_gone(const struct sm_origin *o, uint32_t domid,
			 void **buf, size_t *blen);
int sm_entry_set_target(const struct sm_origin *o, uint32_t domid,
			uint32_t target, void **buf, size_t *blen);
int sm_entry_watch(const struct sm_origin *o, uint32_t domid,
		   const char *path, const char *token, uint32_t max_watches,
		   bool remove, void **buf, size_t *blen);
int sm_entry_reset_watches(const struct sm_origin *o, uint32_t domid,
			   void **buf, size_t *blen);
int sm_entry_ring_reset(const struct sm_origin *o, uint32_t domid,
			uint32_t error, void **buf, size_t *blen);
/* store_domain_move(); m is copied. */
int sm_entry_move_domain(const struct sm_origin *o,
			 const struct store_move *m, void **buf, size_t *blen);
/* store_quota_set() on o->host: domid STORE_QUOTA_HOST for the host. */
int sm_entry_quota(const struct sm_origin *o, uint32_t domid,
		   unsigned int item, uint32_t value, void **buf,
		   size_t *blen);

/*
 * Who an entry says it is from, and what kind it is, without applying it:
 * for the leader, which checks what a member forwards against who that
 * member is (consensus/peer.h: the sender is authenticated).
 */
struct sm_peek {
	uint64_t origin;   /* the member it claims to come from */
	char host[72];	   /* its caller's host: the tree it changes */
	bool move;	   /* a MoveDomain (an admin's, between hosts) */
	bool noop;	   /* a no-op (it changes no tree) */
	bool member;	   /* a Member entry */
	bool host_init;	   /* a HostInit entry */
	/* the member a Member or HostInit entry records or removes (0: none) */
	uint64_t member_id;
	char member_name[72];
	/* for log lines: the operation, its path, the caller's domain */
	char what[200];
};
/* 0, or -EINVAL if buf does not decode as an entry with a caller. */
int sm_entry_peek(const void *buf, size_t len, struct sm_peek *out);
/*
 * The paths of its caller's host tree whose watches an entry's change
 * fires, as applying it would (a write, mkdir, rm or set-perms: its path;
 * a commit: each node it marks to fire, with that node's exactness), for
 * a member that must fire them without applying the entry
 * (node/snapshot.c). Other entries name none. fn's nonzero return stops
 * the walk and is returned; -EINVAL if buf does not decode.
 */
int sm_entry_paths(const void *buf, size_t len,
		   int (*fn)(void *arg, const char *path, bool exact),
		   void *arg);

enum sm_kind {
	SM_INVALID, /* undecodable: skipped, alike on every replica */
	SM_OP,	    /* a change of a host's tree */
	SM_HOST_INIT,
	SM_MEMBER,
	SM_VERIFY,
	SM_NOOP,
	SM_DOMAIN, /* a change of a host's domain registry */
};

enum sm_dom_op {
	SM_DOM_NONE,
	SM_DOM_INTRODUCE,
	SM_DOM_GONE,
	SM_DOM_SET_TARGET,
	SM_DOM_WATCH,
	SM_DOM_UNWATCH,
	SM_DOM_RESET_WATCHES,
	SM_DOM_RING_RESET,
	SM_DOM_MOVE, /* domid left host (events), for host2 (events2) */
	SM_DOM_RESUME,
};

struct sm_result {
	enum sm_kind kind;
	uint64_t origin, seq;
	char host[72];	    /* the host tree the entry addressed */
	bool duplicate;	    /* applied before: nothing changed now */
	bool result_known;  /* result is the (first) outcome */
	int result;	    /* 0 or a negative errno */
	uint64_t verify_nonce;
	/* SM_DOMAIN: what changed, for whom; a watch's path and token */
	enum sm_dom_op dom_op;
	uint32_t domid;
	char *watch_path, *watch_token;
	struct store_events events; /* to fire, in order (not for dups) */
	/* SM_DOM_MOVE: the destination host and its events */
	char host2[72];
	uint32_t domid2;
	struct store_events events2;
	/* SM_DOM_INTRODUCE with inherit: what store_domain_inherit() said
	 * (inherit_rc 0: inherited.copied nodes came from its source) */
	bool inherit_tried;
	int inherit_rc;
	struct store_inherit inherited;
	/* Out of memory applying the entry, or the entry needs a newer
	 * daemon (fatal_newer): nothing of it is recorded, the rest of the
	 * result means nothing, and this replica must stop rather than
	 * diverge from the others. fatal_what says what failed ("watch",
	 * "commit", "decoding", "session record", ...: a static string). */
	bool fatal;
	const char *fatal_what;
	/* fatal because the entry needs a newer daemon (not memory) */
	bool fatal_newer;
};

/*
 * Apply the entry at log index `index` (sm_apply.c). out must be cleared
 * after use (sm_result_clear). If out->fatal is set the store may hold
 * part of the entry: the caller stops without reading or changing it
 * again.
 */
void sm_apply(struct store *st, uint64_t index, const void *buf, size_t len,
	      struct sm_result *out);
void sm_result_clear(struct sm_result *out);

/*
 * Snapshots (sm_snap.c): a pinned store as bytes (any thread), and bytes
 * back into a new store (checked: -EINVAL if damaged). The same store
 * always encodes to the same bytes, so replicas can be compared by their
 * snapshots.
 */
int sm_snapshot_encode(const struct store_pin *pin, void **buf, size_t *len);
int sm_snapshot_decode(const void *buf, size_t len, struct store **out);
/*
 * The same, the new store hashing paths under key (store_new_keyed): the
 * daemon passes its store's key (store_hash_key). sm_snapshot_decode uses
 * store_hash_key_default.
 */
int sm_snapshot_decode_keyed(const void *buf, size_t len,
			     const uint8_t key[STORE_HASH_KEY_LEN],
			     struct store **out);

/*
 * Backup files (sm_backup.c): a snapshot of the whole forest (exactly
 * sm_snapshot_encode()'s bytes) behind a header of its own, so that a
 * file kept for months can be checked before it is trusted:
 *
 *   "XSRBAKUP" | u32 version (1) | u32 header length (48)
 *   | u64 log index | u64 term | u64 payload length
 *   | u32 CRC-32C of the payload | u32 CRC-32C of the 44 bytes before it
 *
 * all little-endian. The index is the one the snapshot's store has
 * applied (store_applied_index); the term is the term the member was in
 * when it took the backup (informational: a restore starts a new cluster).
 */
#define SM_BACKUP_MAGIC	  "XSRBAKUP"
#define SM_BACKUP_VERSION 1
#define SM_BACKUP_HDR	  48

struct sm_backup_info {
	uint32_t version;
	uint64_t index, term;
	uint64_t payload_len;
};

/* CRC-32C (Castagnoli), as iSCSI and ext4 use it; crc 0 to start. */
uint32_t sm_backup_crc32c(uint32_t crc, const void *buf, size_t len);
/* Fill hdr for payload (len bytes) taken at index in term. */
void sm_backup_header(uint8_t hdr[SM_BACKUP_HDR], uint64_t index,
		      uint64_t term, const void *payload, size_t len);
/*
 * Check a whole backup file's bytes: 0 with *info and *payload (pointing
 * into buf) set, or -EINVAL (not a backup: magic), -EPROTONOSUPPORT (a
 * version this daemon does not know), -ENODATA (truncated or extended)
 * or -EILSEQ (checksum mismatch), with why filled in, a sentence saying
 * what is wrong. The payload is not decoded: sm_snapshot_decode() does.
 */
int sm_backup_check(const void *buf, size_t len, struct sm_backup_info *info,
		    const void **payload, char *why, size_t why_len);

#endif
