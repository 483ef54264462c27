/*
 * consensus/repl.c: libraft 0.22 on its libuv backend, behind repl.h.
 *
 * A cluster of one runs with a transport that never connects (no port is
 * bound); a configured cluster uses libraft's TCP transport. libraft error
 * codes become negative errno values here and nowhere else.
 */
#include "consensus/repl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>

struct repl {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	bool tcp;
	bool io_ready, transport_ready, raft_ready;
	struct raft_fsm rfsm;
	const struct repl_fsm *fsm;
	struct raft_tracer tracer;

	/* ready: applied everything that was in the log at open */
	uint64_t ready_target;
	uv_timer_t ready_timer;
	bool ready_timer_on, ready_fired;
	uint64_t ready_deadline_ms;
	repl_ready_cb ready_cb;
	void *ready_arg;

	/* the snapshot being written */
	void *snap_pin;
	void *snap_data;
	struct raft_buffer *snap_bufs;

	bool closing;
	unsigned pending_closes;
	repl_close_cb close_cb;
	void *close_arg;
};

struct submit {
	struct raft_apply req;
	struct repl *r;
	repl_submit_cb cb;
	void *arg;
};

static void logf_(struct repl *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct repl *r, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!r->fsm->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->fsm->log(r->fsm->data, level, msg);
}

/* libraft error codes, translated once. */
static int from_raft(int rv)
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

/*
 * libraft's diagnostics. Its uv backend reports a damaged log tail (an
 * open segment cut short by a crash) at trace level; that one matters to
 * an administrator, so it is raised to a warning.
 */
static void tracer_emit(struct raft_tracer *t, int type, const void *info)
{
	struct repl *r = t->impl;
	const struct raft_tracer_info *i = info;
	const char *m;
	int level;

	if (type != RAFT_TRACER_DIAGNOSTIC || !i || !i->diagnostic.message)
		return;
	m = i->diagnostic.message;
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
		logf_(r, level, "raft: %s", m);
}

/* ---- A transport for a cluster of one: nothing to listen to. ---- */

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

/* ---- FSM glue ---- */

/*
 * libraft wants entry lengths in multiples of 8: an entry is framed as
 * {u32 little-endian payload length, u32 zero} + payload + zero padding.
 */
#define FRAME_HDR 8

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf,
		     void **result)
{
	struct repl *r = f->data;
	uint64_t index = raft_last_applied(&r->raft) + 1;
	const uint8_t *p = buf->base;
	uint32_t len;

	*result = NULL;
	if (buf->len < FRAME_HDR) {
		logf_(r, 3, "log entry %llu is too short: skipped",
		      (unsigned long long)index);
		r->fsm->apply(r->fsm->data, index, "", 0);
		return 0;
	}
	len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	      (uint32_t)p[3] << 24;
	if (len > buf->len - FRAME_HDR) {
		logf_(r, 3, "log entry %llu has a bad length: skipped",
		      (unsigned long long)index);
		len = 0;
	}
	/* libraft advances last_applied after this returns. */
	r->fsm->apply(r->fsm->data, index, p + FRAME_HDR, len);
	return 0;
}

static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	struct repl *r = f->data;
	void *data;
	size_t len;
	int rc;

	if (r->snap_pin)
		return RAFT_BUSY;
	r->snap_pin = r->fsm->snapshot_pin(r->fsm->data);
	if (!r->snap_pin)
		return RAFT_NOMEM;
	rc = r->fsm->snapshot_write(r->snap_pin, &data, &len);
	if (rc) {
		r->fsm->snapshot_unpin(r->fsm->data, r->snap_pin);
		r->snap_pin = NULL;
		return rc == -ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
	}
	r->snap_bufs = malloc(sizeof(*r->snap_bufs));
	if (!r->snap_bufs) {
		free(data);
		r->fsm->snapshot_unpin(r->fsm->data, r->snap_pin);
		r->snap_pin = NULL;
		return RAFT_NOMEM;
	}
	r->snap_data = data;
	r->snap_bufs[0].base = data;
	r->snap_bufs[0].len = len;
	*bufs = r->snap_bufs;
	*n_bufs = 1;
	logf_(r, 6, "snapshot at index %llu: %zu bytes",
	      (unsigned long long)raft_last_applied(&r->raft), len);
	return 0;
}

/* FSM version 2+: the buffers stay ours until here. */
static int fsm_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[],
				 unsigned *n_bufs)
{
	struct repl *r = f->data;

	free(r->snap_data);
	free(r->snap_bufs);
	r->snap_data = NULL;
	r->snap_bufs = NULL;
	if (r->snap_pin)
		r->fsm->snapshot_unpin(r->fsm->data, r->snap_pin);
	r->snap_pin = NULL;
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* Restore: on success the buffer is ours to free (libraft's contract). */
static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	struct repl *r = f->data;
	int rc;

	rc = r->fsm->restore(r->fsm->data, buf->base, buf->len);
	if (rc) {
		logf_(r, 3, "cannot restore snapshot: %s", strerror(-rc));
		return RAFT_CORRUPT;
	}
	raft_free(buf->base);
	return 0;
}

/* ---- Readiness ---- */

static void ready_fire(struct repl *r, int status)
{
	if (r->ready_fired)
		return;
	r->ready_fired = true;
	if (r->ready_timer_on) {
		uv_timer_stop(&r->ready_timer);
	}
	if (r->ready_cb)
		r->ready_cb(r->ready_arg, status);
}

static void ready_poll(uv_timer_t *t)
{
	struct repl *r = t->data;

	if (raft_last_applied(&r->raft) >= r->ready_target &&
	    raft_state(&r->raft) != RAFT_UNAVAILABLE) {
		ready_fire(r, 0);
		return;
	}
	if (uv_now(r->loop) >= r->ready_deadline_ms)
		ready_fire(r, -ETIMEDOUT);
}

void repl_when_ready(struct repl *r, unsigned timeout_ms, repl_ready_cb ready,
		     void *arg)
{
	r->ready_cb = ready;
	r->ready_arg = arg;
	r->ready_deadline_ms = uv_now(r->loop) + timeout_ms;
	uv_timer_start(&r->ready_timer, ready_poll, 0, 5);
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
	r->tracer.emit = tracer_emit;

	if (cfg->address) {
		rv = raft_uv_tcp_init(&r->transport, loop);
		if (rv) {
			free(r);
			return from_raft(rv);
		}
		r->tcp = true;
	} else {
		r->transport.version = 1;
		r->transport.init = null_init;
		r->transport.listen = null_listen;
		r->transport.connect = null_connect;
		r->transport.close = null_close;
	}
	r->transport_ready = true;
	rv = raft_uv_init(&r->io, loop, cfg->data_dir, &r->transport);
	if (rv) {
		logf_(r, 3, "cannot open the log in %s: %s", cfg->data_dir,
		      r->io.errmsg);
		goto err_transport;
	}
	r->io_ready = true;
	raft_uv_set_tracer(&r->io, &r->tracer);
	/*
	 * libraft's auto-recovery moves a corrupt segment aside and fails;
	 * the next start then runs without its entries. With peers they come
	 * back from the leader; alone they would be acknowledged writes lost
	 * without a word, so a cluster of one refuses to start instead.
	 */
	raft_uv_set_auto_recovery(&r->io, cfg->n_members > 1);

	r->rfsm.version = 2;
	r->rfsm.data = r;
	r->rfsm.apply = fsm_apply;
	r->rfsm.snapshot = fsm_snapshot;
	r->rfsm.snapshot_finalize = fsm_snapshot_finalize;
	r->rfsm.restore = fsm_restore;

	rv = raft_init(&r->raft, &r->io, &r->rfsm, cfg->id, address);
	if (rv) {
		logf_(r, 3, "raft_init: %s", raft_errmsg(&r->raft));
		goto err_io;
	}
	r->raft.data = r;
	r->raft_ready = true;
	r->raft.tracer = &r->tracer;
	raft_set_election_timeout(&r->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(&r->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing);
	raft_set_pre_vote(&r->raft, true);

	raft_configuration_init(&conf);
	if (cfg->n_members == 0) {
		rv = raft_configuration_add(&conf, cfg->id, address, RAFT_VOTER);
	} else {
		rv = 0;
		for (i = 0; i < cfg->n_members && !rv; i++)
			rv = raft_configuration_add(&conf, cfg->members[i].id,
						    cfg->members[i].address,
						    RAFT_VOTER);
	}
	if (!rv) {
		rv = raft_bootstrap(&r->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP)
			rv = 0; /* not pristine: the log knows its members */
		else if (!rv)
			logf_(r, 6, "bootstrapped a new log in %s",
			      cfg->data_dir);
	}
	raft_configuration_close(&conf);
	if (rv) {
		logf_(r, 3, "cannot bootstrap the log: %s",
		      raft_errmsg(&r->raft));
		goto err_raft;
	}

	rv = raft_start(&r->raft);
	if (rv) {
		logf_(r, 3, "cannot load the log in %s: %s", cfg->data_dir,
		      raft_errmsg(&r->raft));
		if (rv == RAFT_CORRUPT)
			logf_(r, 3,
			      "the log is damaged beyond its last entry: "
			      "restore the data directory from a backup or "
			      "from a peer; nothing was changed on disk");
		goto err_raft;
	}
	r->ready_target = raft_last_index(&r->raft);
	uv_timer_init(loop, &r->ready_timer);
	r->ready_timer.data = r;
	r->ready_timer_on = true;
	logf_(r, 6, "log open: last index %llu, term %llu",
	      (unsigned long long)r->ready_target,
	      (unsigned long long)raft_current_term(&r->raft));
	*out = r;
	return 0;

err_raft:
	/*
	 * raft_close() needs the loop to run; a failed start is fatal to the
	 * daemon, which exits without waiting for it.
	 */
	*out = NULL;
	return from_raft(rv) ? from_raft(rv) : -EIO;
err_io:
	raft_uv_close(&r->io);
err_transport:
	if (r->tcp)
		raft_uv_tcp_close(&r->transport);
	free(r);
	return from_raft(rv) ? from_raft(rv) : -EIO;
}

static void submit_cb(struct raft_apply *req, int status, void *result)
{
	struct submit *s = req->data;

	s->cb(s->arg, from_raft(status));
	free(s);
}

int repl_submit(struct repl *r, const void *buf, size_t len, repl_submit_cb cb,
		void *arg)
{
	struct raft_buffer b;
	struct submit *s;
	int rv;

	if (r->closing)
		return -ESHUTDOWN;
	if (raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (len > UINT32_MAX - 16) {
		free(s);
		return -E2BIG;
	}
	b.len = (FRAME_HDR + len + 7) & ~(size_t)7;
	b.base = raft_malloc(b.len);
	if (!b.base) {
		free(s);
		return -ENOMEM;
	}
	memset(b.base, 0, b.len);
	((uint8_t *)b.base)[0] = (uint8_t)len;
	((uint8_t *)b.base)[1] = (uint8_t)(len >> 8);
	((uint8_t *)b.base)[2] = (uint8_t)(len >> 16);
	((uint8_t *)b.base)[3] = (uint8_t)(len >> 24);
	memcpy((uint8_t *)b.base + FRAME_HDR, buf, len);
	s->r = r;
	s->cb = cb;
	s->arg = arg;
	s->req.data = s;
	rv = raft_apply(&r->raft, &s->req, &b, 1, submit_cb);
	if (rv) {
		/* libraft may have released the buffer: do not touch it. */
		logf_(r, 4, "cannot append to the log: %s",
		      raft_errmsg(&r->raft));
		free(s);
		return from_raft(rv);
	}
	return 0;
}

void repl_snapshot_now(struct repl *r)
{
	/* libraft snapshots when the threshold is reached: lower it once. */
	raft_set_snapshot_threshold(&r->raft, 1);
}

bool repl_is_leader(struct repl *r)
{
	return raft_state(&r->raft) == RAFT_LEADER;
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
	if (r->tcp)
		raft_uv_tcp_close(&r->transport);
	raft_uv_close(&r->io);
	if (r->close_cb)
		r->close_cb(r->close_arg);
	free(r);
}

static void raft_closed(struct raft *raft)
{
	close_done(raft->data);
}

static void timer_closed(uv_handle_t *h)
{
	close_done(h->data);
}

void repl_close(struct repl *r, repl_close_cb cb, void *arg)
{
	r->closing = true;
	r->close_cb = cb;
	r->close_arg = arg;
	r->pending_closes = 2;
	if (!r->ready_fired) {
		r->ready_fired = true; /* no callback while closing */
	}
	uv_close((uv_handle_t *)&r->ready_timer, timer_closed);
	raft_close(&r->raft, raft_closed);
}
