/*
 * consensus/repl.c: libraft 0.22 on its libuv backend, behind repl.h: open
 * and close, the transports, barriers, the read index and state queries;
 * repl_int.h lists the module's other files. libraft error codes become
 * negative errno values here (repl_from_raft) and nowhere else.
 */
#include "consensus/repl.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/repl_tls.h"
#include "consensus/repl_int.h"
#include "wire/le.h"

/* Delay between attempts to connect to a peer (see repl_open). */
#define REPL_CONNECT_RETRY_MS 50

void repl_logf(struct repl *r, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r->fsm->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->fsm->log(r->fsm->data, level, msg);
}

/* libraft error codes, translated once. */
int repl_from_raft(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return -ENOMEM;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return -ENOTCONN;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return -ESHUTDOWN;
	case RAFT_NOSPACE:
		return -ENOSPC;
	case RAFT_TOOBIG:
		return -E2BIG;
	case RAFT_BUSY:
		return -EBUSY;
	case RAFT_NOTFOUND:
		return -ENOENT;
	case RAFT_INVALID:
	case RAFT_BADID:
	case RAFT_BADROLE:
		return -EINVAL;
	case RAFT_UNAUTHORIZED:
		return -EACCES;
	case RAFT_NAMETOOLONG:
		return -ENAMETOOLONG;
	case RAFT_CORRUPT:
	case RAFT_MALFORMED:
	case RAFT_IOERR:
		return -EIO;
	default:
		return -EIO;
	}
}

static void tls_log(void *data, int level, const char *msg)
{
	repl_logf(data, level, "%s", msg);
}

/*
 * A transport for a cluster of one: it never connects, no port is bound (a
 * configured cluster uses consensus/repl_tls.h: TLS, or, configured
 * `insecure = true`, the same framing in clear).
 */
static int null_init(struct raft_uv_transport *t, raft_id id,
		     const char *address)
{
	return 0;
}

static int null_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	return 0;
}

static int null_connect(struct raft_uv_transport *t,
			struct raft_uv_connect *req, raft_id id,
			const char *address, raft_uv_connect_cb cb)
{
	return RAFT_NOCONNECTION;
}

static void null_close(struct raft_uv_transport *t,
		       raft_uv_transport_close_cb cb)
{
	cb(t);
}

void repl_null_transport(struct raft_uv_transport *t)
{
	memset(t, 0, sizeof(*t));
	t->version = 1;
	t->init = null_init;
	t->listen = null_listen;
	t->connect = null_connect;
	t->close = null_close;
}

static bool segment_written(const char *path)
{
	uint64_t word = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool written;

	if (fd < 0)
		return false;
	written = read(fd, &word, sizeof(word)) == sizeof(word) && word;
	close(fd);
	return written;
}

/*
 * Whether dir holds a log to recover: a snapshot or a segment with
 * entries. libraft's recover asserts that there is one (uvRecover:
 * "last_term > 0"), so an empty directory is refused here first.
 */
static bool has_log(const char *dir)
{
	unsigned long long a, b, c;
	struct dirent *e;
	char path[PATH_MAX];
	bool found = false;
	DIR *dh = opendir(dir);
	int used;

	if (!dh)
		return false;
	while (!found && (e = readdir(dh))) {
		/* only libraft's names: not what the scan moved aside */
		used = -1;
		sscanf(e->d_name, "snapshot-%llu-%llu-%llu.meta%n", &a, &b, &c,
		       &used);
		if (used > 0 && e->d_name[used] == '\0') {
			found = true;
			continue;
		}
		used = -1;
		sscanf(e->d_name, "%llu-%llu%n", &a, &b, &used);
		if (used > 0 && e->d_name[used] == '\0') {
			found = true;
			continue;
		}
		/* an open segment is preallocated: written if its format
		 * word (its first 8 bytes) is */
		used = -1;
		sscanf(e->d_name, "open-%llu%n", &a, &used);
		if (used > 0 && e->d_name[used] == '\0' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
			    (int)sizeof(path))
			found = segment_written(path);
	}
	closedir(dh);
	return found;
}

/*
 * The current term in libraft's metadata files (its uv_metadata.c: two
 * files of four little-endian u64, format 1, version, term, vote; the
 * higher version is current). 0 if neither reads.
 */
static uint64_t metadata_term(const char *dir)
{
	uint64_t best_version = 0, term = 0;
	uint8_t buf[32];
	char path[PATH_MAX];
	int i, fd;

	for (i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/metadata%d", dir, i);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (read(fd, buf, sizeof(buf)) == sizeof(buf) &&
		    get_le(buf, 8) == 1 && get_le(buf + 8, 8) > best_version) {
			best_version = get_le(buf + 8, 8);
			term = get_le(buf + 16, 8);
		}
		close(fd);
	}
	return term;
}

/*
 * --force-new-cluster: append a configuration of this member alone as
 * the only voter to the log on disk (raft_recover), before libraft loads
 * it. Logged loudly: it forgets the other members, and entries they
 * committed without this member are gone.
 */
static int force_new_cluster(struct repl *r, const struct repl_config *cfg,
			     const char *address)
{
	struct raft_configuration conf;
	uint64_t term;
	int rv;

	if (!has_log(cfg->data_dir)) {
		repl_logf(r, 3, "--force-new-cluster: %s holds no log to "
			  "recover (no snapshot, no entries): nothing done",
			  cfg->data_dir);
		return RAFT_NOTFOUND;
	}
	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, cfg->id, address, RAFT_VOTER);
	if (!rv)
		rv = raft_recover(&r->raft, &conf);
	raft_configuration_close(&conf);
	if (rv) {
		repl_logf(r, 3, "--force-new-cluster: cannot rewrite the "
			  "configuration in %s: %s", cfg->data_dir,
			  raft_errmsg(&r->raft));
		return rv;
	}
	/*
	 * A lone voter elects itself without a new term (libraft 0.22's
	 * start): the new cluster's entries would share a term with the
	 * old leader's. Begin a term above every term this member saw, so
	 * that a log of the old cluster never matches one of the new.
	 */
	term = metadata_term(cfg->data_dir);
	if (term && (rv = r->io.set_term(&r->io, term + 1))) {
		repl_logf(r, 3, "--force-new-cluster: cannot start term %llu: "
			  "%s", (unsigned long long)term + 1, r->io.errmsg);
		return rv;
	}
	if (!term)
		repl_logf(r, 4, "--force-new-cluster: the current term is "
			  "unreadable: the new cluster goes on in it");
	repl_logf(r, 3, "FORCE NEW CLUSTER: the log in %s now makes member "
		  "%llu (%s) the only voter of a new one-member cluster; "
		  "every other member is forgotten, and entries the old "
		  "majority committed without this member are lost. Add "
		  "members back with `xsadm cluster add` (empty data "
		  "directories), and do not start with --force-new-cluster "
		  "again", cfg->data_dir, (unsigned long long)cfg->id, address);
	return 0;
}

/* ---- Open and close ---- */

int repl_open(uv_loop_t *loop, const struct repl_config *cfg,
	      const struct repl_fsm *fsm, struct repl **out)
{
	struct raft_configuration conf;
	struct repl *r;
	const char *address = cfg->address ? cfg->address : "local";
	size_t i;
	int rv;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->fsm = fsm;
	r->tracer.impl = r;
	r->tracer.version = 2;
	r->tracer.emit = repl_trace_emit;
	snprintf(r->dir, sizeof(r->dir), "%s", cfg->data_dir);
	repl_snapfile_crc_init(r->crc_table);
	rv = repl_snapfile_scan(r, cfg->data_dir,
				cfg->n_members > 1 || cfg->join);
	if (rv) {
		free(r);
		return rv;
	}

	if (cfg->address) {
		/* cfg->tls NULL: the same transport in clear (insecure) */
		rv = repl_tls_init(&r->auth, loop, cfg->tls, tls_log, r);
		if (rv) {
			free(r);
			return repl_from_raft(rv);
		}
	} else {
		repl_null_transport(&r->transport);
	}
	r->transport_ready = true;
	repl_heap_install(); /* before libraft allocates (repl_io.c) */
	rv = raft_uv_init(&r->io, loop, cfg->data_dir,
			  r->auth ? r->auth : &r->transport);
	if (rv) {
		repl_logf(r, 3, "cannot open the log in %s: %s", cfg->data_dir,
			  r->io.errmsg);
		goto err_transport;
	}
	r->io_ready = true;
	raft_uv_set_tracer(&r->io, &r->tracer);
	/*
	 * Raft answers travel on the answering member's own connection: a
	 * member whose connection to a restarted peer failed would hold its
	 * votes and acknowledgements for libraft's default retry delay (1 s,
	 * five election timeouts). Retry well inside one election timeout.
	 */
	raft_uv_set_connect_retry_delay(&r->io, REPL_CONNECT_RETRY_MS);
	/*
	 * libraft's auto-recovery moves a corrupt segment aside and fails;
	 * the next start then runs without its entries. With peers they come
	 * back from the leader; alone they would be acknowledged writes lost
	 * without a word, so a cluster of one refuses to start instead.
	 */
	raft_uv_set_auto_recovery(&r->io, cfg->n_members > 1);

	r->rfsm.version = 2;
	r->rfsm.data = r;
	r->rfsm.apply = repl_batch_apply;
	r->rfsm.snapshot = repl_snapshot_take;
	r->rfsm.snapshot_finalize = repl_snapshot_finalize;
	r->rfsm.restore = repl_snapshot_restore;

	repl_io_setup(r);
	rv = raft_init(&r->raft, &r->wrap, &r->rfsm, cfg->id, address);
	if (rv) {
		repl_logf(r, 3, "raft_init: %s", raft_errmsg(&r->raft));
		goto err_io;
	}
	r->raft.data = r;
	r->raft_ready = true;
	r->raft.tracer = &r->tracer;
	raft_set_election_timeout(&r->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_timeout_ms);
	r->snapshot_threshold = cfg->snapshot_threshold;
	raft_set_snapshot_threshold(&r->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing);
	raft_set_pre_vote(&r->raft, true);

	raft_configuration_init(&conf);
	if (cfg->force_new_cluster) {
		rv = force_new_cluster(r, cfg, address);
		if (rv)
			goto err_raft;
	} else if (cfg->join) {
		rv = 0; /* a joining member waits for the leader to add it */
	} else if (cfg->n_members == 0) {
		rv = raft_configuration_add(&conf, cfg->id, address, RAFT_VOTER);
	} else {
		rv = 0;
		for (i = 0; i < cfg->n_members && !rv; i++)
			rv = raft_configuration_add(&conf, cfg->members[i].id,
						    cfg->members[i].address,
						    RAFT_VOTER);
	}
	if (!rv && !cfg->join && !cfg->force_new_cluster) {
		rv = raft_bootstrap(&r->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP)
			rv = 0; /* not pristine: the log knows its members */
		else if (!rv)
			repl_logf(r, 6, "bootstrapped a new log in %s",
				  cfg->data_dir);
	}
	raft_configuration_close(&conf);
	if (rv) {
		repl_logf(r, 3, "cannot bootstrap the log: %s",
			  raft_errmsg(&r->raft));
		goto err_raft;
	}

	rv = raft_start(&r->raft);
	if (rv) {
		repl_logf(r, 3, "cannot load the log in %s: %s", cfg->data_dir,
			  raft_errmsg(&r->raft));
		if (rv == RAFT_CORRUPT)
			repl_logf(r, 3,
				  "the log is damaged beyond its last entry: "
				  "restore the data directory from a backup or "
				  "from a peer; nothing was changed on disk");
		goto err_raft;
	}
	uv_prepare_init(loop, &r->flush);
	r->flush.data = r;
	repl_logf(r, 6, "log open: last index %llu, term %llu",
		  (unsigned long long)raft_last_index(&r->raft),
		  (unsigned long long)raft_current_term(&r->raft));
	*out = r;
	return 0;

err_raft:
	/*
	 * raft_close() needs the loop to run; a failed start is fatal to the
	 * daemon, which exits without waiting for it.
	 */
	*out = NULL;
	return repl_from_raft(rv) ? repl_from_raft(rv) : -EIO;
err_io:
	raft_uv_close(&r->io);
err_transport:
	if (r->auth)
		repl_tls_free(r->auth);
	free(r);
	return repl_from_raft(rv) ? repl_from_raft(rv) : -EIO;
}

static void barrier_done(struct raft_barrier *req, int status)
{
	struct repl *r = req->data;

	r->barrier_inflight = false;
	if (r->barrier_again && !r->closing) {
		r->barrier_again = false;
		repl_announce_commit(r);
	}
}

void repl_announce_commit(struct repl *r)
{
	if (r->closing || raft_state(&r->raft) != RAFT_LEADER)
		return;
	if (r->barrier_inflight) {
		r->barrier_again = true;
		return;
	}
	r->barrier.data = r;
	if (raft_barrier(&r->raft, &r->barrier, barrier_done) == 0)
		r->barrier_inflight = true;
}

static void term_barrier_done(struct raft_barrier *req, int status)
{
	struct repl *r = req->data;

	r->term_barrier_inflight = false;
	if (status == 0 && raft_state(&r->raft) == RAFT_LEADER &&
	    raft_current_term(&r->raft) == r->term_barrier_term) {
		r->committed_term = r->term_barrier_term;
		repl_logf(r, 6,
			  "leader in term %llu: committed an entry of its term "
			  "(commit index %llu)",
			  (unsigned long long)r->committed_term,
			  (unsigned long long)raft_commit_index(&r->raft));
	}
}

int repl_read_index(struct repl *r, uint64_t *index)
{
	uint64_t term = raft_current_term(&r->raft);

	if (r->closing || raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (r->committed_term == term) {
		*index = raft_commit_index(&r->raft);
		return 0;
	}
	/* not yet: make sure an entry of this term is on its way */
	if (!r->term_barrier_inflight) {
		r->term_barrier.data = r;
		r->term_barrier_term = term;
		if (raft_barrier(&r->raft, &r->term_barrier,
				 term_barrier_done) == 0)
			r->term_barrier_inflight = true;
	}
	return -EAGAIN;
}

bool repl_is_leader(struct repl *r)
{
	return raft_state(&r->raft) == RAFT_LEADER;
}

uint64_t repl_leader(struct repl *r)
{
	raft_id id = 0;
	const char *address = NULL;

	raft_leader(&r->raft, &id, &address);
	return id;
}

const char *repl_state_name(struct repl *r)
{
	switch (raft_state(&r->raft)) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	default:
		return "unavailable";
	}
}

int repl_match_index(struct repl *r, uint64_t id, uint64_t *index)
{
	raft_index i = 0;

	if (raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (raft_match_index(&r->raft, id, &i))
		return -ENOENT;
	*index = i;
	return 0;
}

uint64_t repl_last_applied(struct repl *r)
{
	return raft_last_applied(&r->raft);
}

uint64_t repl_commit_index(struct repl *r)
{
	return raft_commit_index(&r->raft);
}

uint64_t repl_last_index(struct repl *r)
{
	return raft_last_index(&r->raft);
}

uint64_t repl_term(struct repl *r)
{
	return raft_current_term(&r->raft);
}

static void close_done(struct repl *r)
{
	if (--r->pending_closes > 0)
		return;
	raft_uv_close(&r->io);
	if (r->auth)
		repl_tls_free(r->auth);
	if (r->close_cb)
		r->close_cb(r->close_arg);
	repl_local_tail_drop(r);
	free(r);
}

static void raft_closed(struct raft *raft)
{
	close_done(raft->data);
}

static void handle_closed(uv_handle_t *h)
{
	close_done(h->data);
}

void repl_close(struct repl *r, repl_close_cb cb, void *arg)
{
	r->closing = true;
	r->close_cb = cb;
	r->close_arg = arg;
	r->pending_closes = 2;
	repl_batch_flush(r); /* fails it: closing */
	if (r->batches)
		repl_logf(r, 6, "%llu requests in %llu log entries",
			  (unsigned long long)r->batched,
			  (unsigned long long)r->batches);
	uv_close((uv_handle_t *)&r->flush, handle_closed);
	raft_close(&r->raft, raft_closed);
}
