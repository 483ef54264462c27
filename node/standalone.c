/*
 * node/standalone.c: own-tree writes without a quorum (node/standalone.h
 * has the rules; docs/ARCHITECTURE.md, "Standalone mode", the design).
 *
 * The journal, DATA/standalone.journal, is a sequence of records
 *
 *   "XSJ1" | len (u32 LE) | seq (u64 LE) | crc (u32 LE) | entry (len bytes)
 *
 * crc is the CRC-32 (IEEE) of seq's and the entry's bytes. A record is
 * written and fdatasync'd before its write is answered; reading stops at
 * the first record that is short or whose checksum fails (a write torn by
 * a crash: never answered). The file is emptied when every write it holds
 * has been applied by the log.
 */
#include "node/standalone.h"
#include "node/daemon.h"
#include "node/domains.h"
#include "node/fire.h"
#include "node/snapshot.h"
#include "node/submit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consensus/sm.h"

#define JOURNAL_MAGIC "XSJ1"
#define JOURNAL_HEAD 20
#define JOURNAL_MAX_ENTRY (16u << 20)
/* Overlay generations start this far above the replica's applied index:
 * they never equal a log index, so a transaction that read the overlay
 * fails its commit with EAGAIN rather than match by chance. */
#define OVERLAY_GAP (1ull << 40)

struct standalone {
	int fd;		      /* the journal, -1: not open */
	char path[4096];
	char dir[4096];
	uint64_t overlay_index; /* the overlay's last pseudo index */
	uint64_t no_leader_ms;	/* since when no leader is known (0: one) */
	bool caught_up;		/* readiness finished */
	uint64_t tail_index;	/* the last index of the log's tail applied */
	size_t tail_own;	/* own entries of the tail proposed again */
	unsigned long written;	/* standalone writes this time */
	/* a leader is known again: the no-op entry whose application proves
	 * that this member's entries reach the log (0: none sent) */
	uint64_t probe_seq;
};

static uint32_t crc32_ieee(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
	}
	return ~crc;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The data directory: the journal's path without its name. */
static const char *d_dir(struct standalone *s)
{
	return s->dir;
}

static int journal_open(struct standalone *s)
{
	if (s->fd >= 0)
		return 0;
	int dir;

	s->fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return -errno;
	/* the file's name must survive a crash too */
	dir = open(d_dir(s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		fsync(dir);
		close(dir);
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One record, durable when it returns 0. */
static int journal_append(struct standalone *s, uint64_t seq,
			  const void *entry, size_t len)
{
	uint8_t head[JOURNAL_HEAD];
	uint32_t crc;
	int rc = journal_open(s);

	if (rc)
		return rc;
	memcpy(head, JOURNAL_MAGIC, 4);
	put_u32(head + 4, (uint32_t)len);
	put_u64(head + 8, seq);
	crc = crc32_ieee(0, head + 8, 8);
	put_u32(head + 16, crc32_ieee(crc, entry, len));
	rc = write_all(s->fd, head, sizeof(head));
	if (!rc)
		rc = write_all(s->fd, entry, len);
	if (!rc && fdatasync(s->fd))
		rc = -errno;
	return rc;
}

/* Every write the journal holds has reached the log: empty it. */
static void journal_clear(struct standalone *s)
{
	int fd = s->fd >= 0 ? s->fd : open(s->path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (ftruncate(fd, 0) || fsync(fd))
		log_msg(3, "cannot empty %s: %s", s->path, strerror(errno));
	if (fd != s->fd)
		close(fd);
}

/* ---- The overlay ------------------------------------------------------ */

/* Apply an entry to the overlay as apply_entry() applies one to the
 * replica: rings and watches follow. The result, or -errno if it could
 * not be applied at all. */
static int overlay_apply(struct daemon *d, const void *entry, size_t len,
			 int *result)
{
	struct standalone *s = d->standalone;
	struct sm_result res;
	uint64_t index = ++s->overlay_index;

	sm_apply(d->store, index, entry, len, &res);
	if (res.fatal)
		log_fatal("fatal: out of memory applying a standalone write "
			  "(%s): stopping; what was answered is in %s",
			  res.fatal_what ? res.fatal_what : "entry", s->path);
	if (res.kind == SM_INVALID) {
		sm_result_clear(&res);
		return -EINVAL;
	}
	if (res.kind == SM_DOMAIN)
		domains_applied(d, &res, index);
	if (!res.duplicate && strcmp(res.host, d->host) == 0)
		fire_events(d, &res.events);
	if (res.kind == SM_DOMAIN)
		domains_watch_added(d, &res);
	*result = res.result_known ? res.result : -EIO;
	if (res.duplicate)
		*result = 1; /* already in the replica: nothing to journal */
	sm_result_clear(&res);
	return 0;
}

/* submit's local(): see node/submit.h. */
static int local_write(struct daemon *d, const void *entry, size_t len,
		       uint64_t seq, int *result)
{
	struct standalone *s = d->standalone;
	struct sm_peek pk = {0};
	int rc;

	if (sm_entry_peek(entry, len, &pk))
		return -EINVAL;
	/*
	 * This member's own tree made, once it caught up with a quorum, by
	 * a new member whose cold start found no tree to serve: only the log
	 * can, so it goes there (before, the refusal stopped the start of a
	 * new cluster whose members came up cold-start-wait apart: found by
	 * the two-host Xen lab).
	 */
	if (pk.host_init && pk.origin == d->member_id &&
	    strcmp(pk.host, d->host) == 0 &&
	    !store_host_exists(daemon_replica(d), d->host))
		return SUBMIT_TO_LOG;
	if (pk.move || pk.member || pk.host_init ||
	    pk.origin != d->member_id || strcmp(pk.host, d->host)) {
		log_msg(4, "standalone mode (no quorum): entry %" PRIu64
			   " needs the cluster (%s): refused",
			seq,
			pk.move     ? "a domain move"
			: pk.member ? "a membership change"
				    : "not this host's own tree");
		return -EHOSTUNREACH;
	}
	rc = overlay_apply(d, entry, len, result);
	if (rc)
		return rc;
	if (*result == 1) {
		*result = 0;
		return 0;
	}
	if (*result)
		return 0; /* refused as the log would refuse it: not kept */
	rc = journal_append(s, seq, entry, len);
	if (rc)
		/* applied to the overlay, not durable: the overlay is lost
		 * with the process; say so, and fail the request */
		log_msg(3, "cannot write the standalone journal %s: %s: "
			   "write %" PRIu64 " fails with EIO",
			s->path, strerror(-rc), seq);
	if (rc)
		*result = -EIO;
	else
		s->written++;
	return 0;
}

/* One frame of the log's tail (repl_local_tail): into the overlay at its
 * own index; this member's own entries are proposed again (the log drops
 * those it has). */
static void tail_frame(void *arg, uint64_t index, const void *frame,
		       size_t len)
{
	struct daemon *d = arg;
	struct standalone *s = d->standalone;
	struct sm_result res;

	sm_apply(d->store, index, frame, len, &res);
	if (res.fatal)
		log_fatal("fatal: out of memory applying this member's log "
			  "(%s)", res.fatal_what ? res.fatal_what : "entry");
	if (index > s->tail_index)
		s->tail_index = index;
	if (res.kind == SM_INVALID || res.duplicate ||
	    (res.kind != SM_OP && res.kind != SM_DOMAIN) ||
	    res.origin != d->member_id || !res.result_known || res.result) {
		sm_result_clear(&res);
		return;
	}
	if (submit_restored(d, res.seq, frame, len) == 0)
		s->tail_own++;
	sm_result_clear(&res);
}

/* The replica stays as the log applied it; clients see a copy of it and,
 * before the member has caught up, of its log's tail. */
static int enter(struct daemon *d, const char *why)
{
	struct standalone *s = d->standalone;
	struct store_pin *pin;
	struct store *copy;
	void *buf = NULL;
	size_t len = 0;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	if (!d->committed) {
		pin = store_pin(d->store);
		if (!pin)
			return -ENOMEM;
		rc = sm_snapshot_encode(pin, &buf, &len);
		store_unpin(pin);
		if (rc)
			return rc;
		rc = sm_snapshot_decode_keyed(buf, len,
					      store_hash_key(d->store), &copy);
		free(buf);
		if (rc)
			return rc;
		d->committed = d->store;
		d->store = copy;
		s->tail_index = store_applied_index(copy);
		if (!s->caught_up) {
			/* what the log holds past what libraft applied: every
			 * write this member acknowledged is in it */
			size_t n = repl_local_tail(
				d->repl, repl_last_applied(d->repl), tail_frame,
				d);

			if (n)
				log_msg(5, "%zu entries of this member's log past "
					   "applied index %" PRIu64 " are in "
					   "what it serves without a quorum "
					   "(%zu of its own proposed again)",
					n, repl_last_applied(d->repl),
					s->tail_own);
		}
		s->overlay_index = s->tail_index + OVERLAY_GAP;
		if (d->serving)
			domains_resync(d);
	}
	d->no_quorum_since = (uint64_t)now;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_msg(4, "no quorum since %s (%s): serving own tree locally "
		   "(standalone mode, applied index %" PRIu64 "); writes of "
		   "host %s are kept in %s until a quorum returns",
		when, why, store_applied_index(d->committed), d->host,
		s->path);
	submit_localize(d);
	return 0;
}

/* Every standalone write is in the replica: make it what clients see. */
static void leave(struct daemon *d)
{
	struct standalone *s = d->standalone;
	struct store *replica = d->committed;

	d->committed = NULL;
	s->probe_seq = 0;
	snapshot_install(d, replica);
	submit_release_held(d);
	journal_clear(s);
	log_msg(5, "quorum: serving normally again at applied index %" PRIu64
		   " (%lu standalone writes reached the log)",
		store_applied_index(d->store), s->written);
	s->written = 0;
}

bool standalone_cold_start(struct daemon *d)
{
	if (!d->cfg.cluster.standalone) {
		log_msg(4, "no quorum after %u ms: still waiting to catch up "
			   "(standalone = false)",
			d->cfg.cluster.cold_start_wait_ms);
		return false;
	}
	if (enter(d, "cold start")) {
		log_msg(3, "out of memory entering standalone mode: still "
			   "waiting for a quorum");
		return false;
	}
	if (!store_host_exists(d->store, d->host)) {
		log_msg(4, "no quorum after %u ms, and host %s has no tree "
			   "here yet (a new member): waiting for a quorum to "
			   "create it",
			d->cfg.cluster.cold_start_wait_ms, d->host);
		return false;
	}
	/* entries numbered above what the local replica knows of this id
	 * (an older data directory's, before a recovery re-added it) */
	submit_seq_follow_log(d);
	return true;
}

void standalone_caught_up(struct daemon *d)
{
	d->standalone->caught_up = true;
	repl_local_tail_drop(d->repl);
}

/*
 * A leader is known again, but knowing one is not committing through it:
 * a member that hears the leader's heartbeats but whose own messages are
 * lost (a one-way partition) would leave standalone mode, make its next
 * write wait standalone-after ms and enter again, over and over. It
 * leaves only once an entry of its own, proposed after the leader became
 * known, has been applied by the log: a no-op probe, after every
 * standalone write (an origin's entries apply in order). True then.
 */
static bool quorum_proven(struct daemon *d, uint64_t leader)
{
	struct standalone *s = d->standalone;
	struct sm_origin o;
	void *buf;
	size_t len;
	int rc;

	if (s->probe_seq && submit_applied_seq(d) >= s->probe_seq)
		return true;
	if (s->probe_seq)
		return false; /* submit's tick sends it again meanwhile */
	o = submit_own_origin(d);
	rc = sm_entry_noop(&o, &buf, &len);
	if (rc == 0) {
		rc = submit_restored(d, o.seq, buf, len);
		free(buf);
	}
	if (rc) {
		log_msg(3, "cannot propose the entry that checks the quorum: "
			   "%s (tried again)", strerror(-rc));
		return false;
	}
	s->probe_seq = o.seq;
	log_msg(5, "leader %" PRIu64 " known: still serving locally until "
		   "entry %" PRIu64 " of this member reaches the log",
		leader, o.seq);
	return false;
}

void standalone_tick(struct daemon *d, uint64_t now)
{
	struct standalone *s = d->standalone;
	uint64_t after = d->cfg.cluster.standalone_after_ms, leader, sent;
	bool lost;

	/* a new member not serving yet is in standalone mode too when its
	 * cold start found no tree: it leaves as any other (its tree's
	 * creation is answered then, and it serves) */
	if (!d->cfg.cluster.enabled || (!d->serving && !d->committed) ||
	    d->stopping)
		return;
	leader = repl_leader(d->repl);
	if (leader)
		s->no_leader_ms = 0;
	else if (!s->no_leader_ms)
		s->no_leader_ms = now;
	if (d->cfg.cluster.standalone) {
		lost = (s->no_leader_ms && now - s->no_leader_ms >= after) ||
		       (submit_oldest(d, &sent) && now - sent >= after);
		if (lost && !d->no_quorum_since) {
			if (enter(d, leader ? "a write not committed in time"
					    : "no leader known"))
				log_msg(3, "out of memory entering "
					   "standalone mode");
		} else if (d->no_quorum_since && leader && !lost &&
			   quorum_proven(d, leader)) {
			d->no_quorum_since = 0;
			s->probe_seq = 0;
			log_msg(5, "leader %" PRIu64 " reached: "
				   "%zu standalone writes still to apply",
				leader, submit_local_count(d));
		}
	}
	if (d->committed && !d->no_quorum_since && s->caught_up &&
	    submit_local_count(d) == 0)
		leave(d);
}

/* ---- Open: a journal left by an earlier run --------------------------- */

static int take_up(struct daemon *d)
{
	struct standalone *s = d->standalone;
	uint8_t head[JOURNAL_HEAD], *entry;
	unsigned long n = 0;
	int fd = open(s->path, O_RDONLY | O_CLOEXEC), rc = 0, result;
	uint32_t len;
	uint64_t seq;
	ssize_t got;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		got = read(fd, head, sizeof(head));
		if (got == 0)
			break;
		if (got != (ssize_t)sizeof(head) ||
		    memcmp(head, JOURNAL_MAGIC, 4) ||
		    (len = get_u32(head + 4)) > JOURNAL_MAX_ENTRY) {
			log_msg(4, "%s: a damaged record after %lu: the rest "
				   "is ignored (a write torn by a crash was "
				   "never answered)", s->path, n);
			break;
		}
		seq = get_u64(head + 8);
		entry = malloc(len ? len : 1);
		if (!entry) {
			rc = -ENOMEM;
			break;
		}
		if (read(fd, entry, len) != (ssize_t)len ||
		    crc32_ieee(crc32_ieee(0, head + 8, 8), entry, len) !=
			    get_u32(head + 16)) {
			log_msg(4, "%s: record %lu is torn or damaged: it and "
				   "the rest are ignored", s->path, n + 1);
			free(entry);
			break;
		}
		if (!d->committed && (rc = enter(d, "standalone writes of an "
						    "earlier run")))
			break;
		d->no_quorum_since = 0; /* the tick decides */
		if (overlay_apply(d, entry, len, &result) == 0)
			rc = submit_restored(d, seq, entry, len);
		free(entry);
		if (rc)
			break;
		n++;
	}
	close(fd);
	if (n)
		log_msg(5, "%s: %lu standalone writes of an earlier run taken "
			   "up: in the overlay, proposed to the log again",
			s->path, n);
	return rc;
}

int standalone_open(struct daemon *d)
{
	struct standalone *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	snprintf(s->path, sizeof(s->path), "%s/standalone.journal",
		 d->cfg.data_dir);
	snprintf(s->dir, sizeof(s->dir), "%s", d->cfg.data_dir);

	d->standalone = s;
	submit_set_local(d, local_write);
	return take_up(d);
}

void standalone_free(struct daemon *d)
{
	struct standalone *s = d->standalone;

	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (d->committed) {
		store_free(d->committed);
		d->committed = NULL;
	}
	free(s);
	d->standalone = NULL;
}
