/*
 * node/backup.h: backups of the whole replicated state to a file, and a
 * new cluster seeded from one (node/backup.c).
 *
 * `xsadm cluster backup FILE` (CONTROL cluster backup FILE): the daemon
 * pins its store at the index it has applied (every host tree, the domain
 * registry, quota settings, the members table, the session table: what
 * an FSM snapshot holds), encodes it on libuv's thread pool and writes
 * FILE itself (it runs as root on the host whose admin asks; the state
 * would not fit XS_CONTROL's 4096-byte replies): header (consensus/sm.h,
 * "Backup files") then the snapshot, mode 0600, to FILE.tmp.XXXXXX, fsynced,
 * renamed over FILE, the directory fsynced. FILE must be absolute.
 *
 * `xenstored --restore FILE` seeds an empty data directory from FILE: the
 * file is checked (magic, version, length, checksums, a snapshot that
 * decodes, at the index its header says, and encodes back to the same
 * bytes) before anything is created, then written as the log's first
 * snapshot with this member as its only voter (repl_seed()).
 */
#ifndef XSR_NODE_BACKUP_H
#define XSR_NODE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/sm.h"
#include "node/conn.h"

struct daemon;

/* CONTROL cluster backup FILE: answered later (CONN_ASYNC) or at once. */
enum conn_verdict backup_command(struct daemon *d, struct conn *c,
				 struct conn_req *r, const char **argv,
				 unsigned int argc);

/* A backup file read and checked (backup_load). */
struct backup_file {
	void *bytes; /* the whole file, malloc()ed */
	size_t len;
	struct sm_backup_info info;
	const void *payload; /* the snapshot, inside bytes */
	uint8_t digest[16];  /* as `cluster verify` digests that state */
};

/*
 * Read FILE and check it all (see above). 0, or a negative errno with
 * why filled in (what is wrong, without the file's name). On success the
 * caller frees b->bytes.
 */
int backup_load(const char *file, struct backup_file *b, char *why,
		size_t why_len);

/*
 * Seed raft_dir (empty) from b as a one-voter log of member d->member_id
 * (its Raft address when it is a cluster member). 0, or a negative errno
 * with why filled in.
 */
int backup_seed(struct daemon *d, const char *raft_dir,
		const struct backup_file *b, char *why, size_t why_len);

#endif
