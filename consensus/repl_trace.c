/*
 * consensus/repl_trace.c: libraft's tracer, read for the log's diagnostics
 * and for disk faults: a failed fsync stops the member (repl_fsm.disk_failed),
 * a full disk is a warning at most once a minute. libraft reports neither
 * other than as a message (docs/ARCHITECTURE.md).
 */
#include "consensus/repl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>

#include "consensus/repl_int.h"

/*
 * Whether a libraft message says that a write to the log may not be on
 * disk for a reason other than lack of space. Its uv backend writes
 * entries with RWF_DSYNC (kernel AIO), so a failed sync of the log shows
 * as "write failed: -5" (and is retried for ever); its other files report
 * "fsync: i/o error". Returns the errno of a failed sync, -ENOSPC for a
 * full disk (retrying is right then), 0 for anything else.
 */
static int sync_error_of(const char *m)
{
	const char *p;
	int e;

	p = strstr(m, "write failed: ");
	if (p && sscanf(p + 14, "%d", &e) == 1 && e < 0) {
		e = -e;
		return (e == ENOSPC || e == EDQUOT) ? -ENOSPC : e;
	}
	p = strstr(m, "fsync: ");
	if (!p)
		p = strstr(m, "fdatasync: ");
	if (!p)
		return 0;
	p = strchr(p, ' ') + 1;
	if (!strncmp(p, uv_strerror(UV_ENOSPC), strlen(uv_strerror(UV_ENOSPC))))
		return -ENOSPC;
	return EIO;
}

/*
 * Stop the member after a failed sync. Nothing is retried and nothing
 * more is written: after such an error the kernel may have dropped the
 * dirty pages (and cleared the error), so a later fsync that succeeds
 * proves nothing (the PostgreSQL "fsyncgate" lesson). On restart the log
 * is read back from the disk and the rest comes from the peers.
 */
static void disk_failed(struct repl *r, int err, const char *what)
{
	char msg[PATH_MAX + 1024];

	snprintf(msg, sizeof(msg),
		 "fatal: fsync of the log in %s failed (%s, libraft: \"%s\"): "
		 "stopping; this member re-syncs from its log and its peers "
		 "on restart",
		 r->dir, err == EIO ? "EIO" : strerror(err), what);
	if (r->fsm->disk_failed)
		r->fsm->disk_failed(r->fsm->data, msg);
	repl_logf(r, 2, "%s", msg);
	_exit(1);
}

/* A full disk: say so, at most once a minute. */
void repl_trace_nospace_warn(struct repl *r, const char *m)
{
	time_t now = time(NULL);

	if (now - r->nospace_logged >= 60) {
		r->nospace_logged = now;
		repl_logf(r, 4,
			  "the disk of the log in %s is full (%s): writes "
			  "fail until there is space again, reads go on",
			  r->dir, m);
	}
}

/*
 * Look at a libraft message for a disk fault: stop on a failed sync, warn
 * (at most once a minute) about a full disk.
 */
void repl_trace_disk_check(struct repl *r, const char *m)
{
	int e = sync_error_of(m);

	if (e > 0)
		disk_failed(r, e, m);
	if (e == -ENOSPC)
		repl_trace_nospace_warn(r, m);
}

/*
 * libraft's diagnostics. Its uv backend reports a damaged log tail (an
 * open segment cut short by a crash) at trace level; that one matters to
 * an administrator, so it is raised to a warning.
 */
void repl_trace_emit(struct raft_tracer *t, int type, const void *info)
{
	struct repl *r = t->impl;
	const struct raft_tracer_info *i = info;
	const char *m;
	int level;

	if (type != RAFT_TRACER_DIAGNOSTIC || !i || !i->diagnostic.message)
		return;
	m = i->diagnostic.message;
	repl_trace_disk_check(r, m);
	switch (i->diagnostic.level) {
	case 1:
		level = 3;
		break;
	case 2:
		level = 4;
		break;
	case 3:
		/* per-request chatter, except what an admin wants to see */
		level = (strstr(m, "convert to") || strstr(m, "elect") ||
			 strstr(m, "snapshot") || strstr(m, "entries ("))
				? 6
				: 7;
		break;
	default:
		level = 7;
		break;
	}
	if (strstr(m, "truncate open segment") || strstr(m, "corrupt") ||
	    strstr(m, "non-zero trail") || strstr(m, "checksum"))
		level = 4;
	if (level <= 6 || getenv("XSR_RAFT_TRACE"))
		repl_logf(r, level, "raft: %s", m);
}
