/*
 * node/datadir.h: the daemon's data directory (node/datadir.c): its lock,
 * the member identity kept in DATA/identity, paths, small files written
 * atomically. Used at start-up; failures are fatal (log_fatal()).
 */
#ifndef XSR_NODE_DATADIR_H
#define XSR_NODE_DATADIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct config;

/* Who this member is, as DATA/identity records it. */
struct datadir_identity {
	char host[128];	      /* its tree's name in the forest */
	uint64_t member_id;   /* 1 for a cluster of one */
	uint64_t incarnation; /* bumped at every start */
};

/* path made absolute (against the working directory); malloc()ed, NULL
 * for NULL or out of memory. */
char *datadir_absolute(const char *path);
/* mkdir -p: 0 or a negative errno. */
int datadir_mkdir_p(const char *path, mode_t mode);
/* Write a small file atomically (temporary file, fsync, rename): 0 or a
 * negative errno. */
int datadir_write_file(const char *path, const char *text);
/*
 * The bytes of the regular files under dir, subdirectories included (a
 * handful of log segments and snapshots: cheap enough for an admin
 * query). 0 or a negative errno (dir itself unreadable).
 */
int datadir_size(const char *dir, uint64_t *bytes);
/*
 * One daemon per data directory: take DATA/lock, waiting up to 10 s for
 * an exiting holder; the lock lives as long as the process.
 */
void datadir_lock(const char *data_dir);
/* Is DATA/lock held by a daemon (its pid into *holder if not NULL, 0 if
 * it wrote none)? Looks only: creates nothing. */
bool datadir_locked(const char *data_dir, long *holder);
/*
 * Is a daemon already running on data_dir, the one pid_file names? Its pid
 * then (it holds DATA/lock and pid_file holds its pid), else 0. A second
 * start through Debian's /etc/init.d/xen (which recognises only Xen's
 * daemons as running) then exits 0 as Xen's C xenstored does when its pid
 * file is locked. Neither file is created or changed.
 */
long datadir_running(const char *data_dir, const char *pid_file);
/*
 * Read DATA/identity (or choose the host name at the first start: the
 * [member] name, --host-name, or a usable form of the system's), check it
 * against cfg, bump the incarnation and write it back. A cluster member's
 * cfg->host_name becomes its [member] name.
 */
void datadir_identity(struct config *cfg, struct datadir_identity *out);
/*
 * Record incarnation as the current one in DATA/identity (atomically), so
 * that the next start numbers its entries above it: when the log holds
 * entries of this member id numbered above this data directory's own
 * (submit_seq_follow_log()). 0 or -errno.
 */
int datadir_identity_raise(const char *data_dir, const char *host,
			   uint64_t member_id, uint64_t incarnation);

#endif
