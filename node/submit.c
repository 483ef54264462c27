/*
 * node/submit.c: getting entries into the log from any member.
 *
 * The leader appends its own entries; a follower forwards them over the
 * peer channel. Until this member has applied an entry, it keeps it and
 * sends it again, in seq order, whenever the leader changes, refuses it,
 * or stays silent for a while. Copies are harmless: the state machine
 * applies an (origin, seq) once (Raft dissertation, section 6.3). Order
 * is not: an entry applied after a later one of its origin is taken for
 * a duplicate, so each forward names its predecessor and the leader takes
 * it only after that one (follows_taken()). The
 * client is answered only when this member applies the entry, so clients
 * of a host read their own writes there. Without a quorum, a request fails
 * with EIO once the commit timeout has passed.
 */
#include "node/submit.h"
#include "node/datadir.h"
#include "node/daemon.h"
#include "node/peers.h"
#include "node/store/store.h"
#include "consensus/sm.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wire/peer.pb-c.h"

#define RESEND_MS 500 /* a silent leader gets the entry again */
#define REFUSED_MAX 64 /* senders whose refusals a leader remembers */

/*
 * A request whose entry is on its way through the log, until this member
 * has applied it. The entry is kept to be sent again to the leader of the
 * moment.
 */
struct pending {
	struct pending *next, *prev;
	struct daemon *d;
	uint64_t seq;
	struct conn *conn; /* NULL for the daemon's own entries */
	struct conn_req *req;
	void (*done)(struct daemon *d, void *arg, int result); /* own */
	void *arg;
	void *entry; /* the packed entry */
	size_t len;
	uint64_t deadline_ms;
	uint64_t sent_ms;
	uint64_t sent_to;  /* member it was last sent to (0: not sent) */
	unsigned inflight; /* local submissions not yet called back */
	bool answered;
	bool linked;
	/* standalone mode (node/standalone.h): applied to the overlay and
	 * answered from it (local_result) rather than from the log */
	bool local;
	bool replied;	/* ... the answer is out */
	bool nolog;	/* ... it changed nothing: not proposed */
	bool applied;	/* the replica has applied it */
	/* applied to the replica while clients see the overlay: answered
	 * when the replica becomes visible (submit_release_held) */
	bool held;
	int local_result, held_result;
};

struct submitter {
	uint64_t next_seq;
	struct pending pending; /* list head, in seq order */
	uint64_t last_leader;	/* for noticing leader changes */
	uv_timer_t announce;	/* leader: commit index to followers now */
	bool announce_pending;
	/* refused forwards: the last logged, and how many since */
	uint64_t forged_logged_ms, forged_from;
	const char *forged_why;
	unsigned long forged_quiet;
	/* standalone mode: apply an entry to the overlay (set by
	 * node/standalone.c), and the timer that answers from it */
	int (*local)(struct daemon *d, const void *entry, size_t len,
		     uint64_t seq, int *result);
	uv_timer_t replies;
	uint64_t applied_seq; /* the highest own seq the log applied */
	/* leader: per sender, the lowest entry refused for now in this term
	 * (forwarded(): no later one is taken before it comes again) */
	struct {
		uint64_t from, seq;
	} marks[REFUSED_MAX];
	size_t nmarks;
	uint64_t marks_term;
	/* leader: per sender, the highest entry taken into the log in this
	 * term (forwarded(): its entries are taken in their order only) */
	struct taken {
		uint64_t from, seq;
	} *taken;
	size_t ntaken, taken_cap;
};

uint64_t submit_next_seq(struct daemon *d)
{
	return d->submit->next_seq++;
}

void submit_seq_follow_log(struct daemon *d)
{
	uint64_t last = store_session_last(daemon_replica(d), d->member_id);
	uint64_t next = ((last >> 40) + 1) << 40 | 1;
	int rc;

	if (last < d->submit->next_seq)
		return;
	log_msg(4, "the log holds entries of member %" PRIu64 " up to number "
		   "%" PRIu64 ", from an earlier data directory of this id: "
		   "this member numbers its entries from %" PRIu64,
		d->member_id, last, next);
	d->submit->next_seq = next;
	/*
	 * And so does every later start: the incarnation it bumps is the
	 * data directory's, which knows nothing of the older one. Without
	 * this, a member re-added empty after `cluster recover` and started
	 * again numbered its entries below the log's: its standalone writes
	 * of a cold start were then taken for duplicates and lost (chaos
	 * seed 12, 5 members, cold-start and recover).
	 */
	rc = datadir_identity_raise(d->cfg.data_dir, d->host, d->member_id,
				    next >> 40);
	if (rc)
		log_msg(3, "cannot record incarnation %" PRIu64 " in %s: %s",
			next >> 40, d->cfg.data_dir, strerror(-rc));
	else
		d->incarnation = next >> 40;
}

struct sm_origin submit_own_origin(struct daemon *d)
{
	struct sm_origin o = {d->member_id, submit_next_seq(d), d->host, NULL,
			      0, 0};

	return o;
}

static void unlink_pending(struct pending *p)
{
	if (!p->linked)
		return;
	p->prev->next = p->next;
	p->next->prev = p->prev;
	p->linked = false;
}

static void free_pending(struct pending *p)
{
	free(p->entry);
	free(p->req);
	free(p);
}

static struct pending *find(struct daemon *d, uint64_t seq)
{
	struct pending *p;

	/* Entries apply in submission order: the head is the usual hit. */
	for (p = d->submit->pending.next; p != &d->submit->pending;
	     p = p->next)
		if (p->seq == seq)
			return p;
	return NULL;
}

/* The reply itself: to the client, or the daemon's own callback. */
static void reply(struct daemon *d, struct pending *p, int result)
{
	struct conn_req *req;

	if (p->conn) {
		req = p->req;
		p->req = NULL;
		if (result)
			conn_reply_error(p->conn, req, result);
		else
			conn_reply(p->conn, req, "OK", 3);
		free(req);
		conn_async_done(p->conn);
	} else if (p->done) {
		p->done(d, p->arg, result);
	}
	p->conn = NULL;
	p->done = NULL;
}

static void answer(struct daemon *d, struct pending *p, int result)
{
	if (p->answered)
		return;
	if (p->local && !p->replied) {
		p->replied = true;
		reply(d, p, p->local_result);
	}
	p->answered = true;
	unlink_pending(p);
	if (!p->local)
		reply(d, p, result);
	if (p->inflight == 0)
		free_pending(p);
}

/* From a zero timer: after this batch of applies, not inside libraft. */
static void announce_commit(uv_timer_t *t)
{
	struct daemon *d = t->data;

	d->submit->announce_pending = false;
	if (d->repl)
		repl_announce_commit(d->repl);
}

/* A standalone write the log decided otherwise (node/standalone.h). */
static void discarded(struct daemon *d, struct pending *p, int result)
{
	struct sm_peek pk;

	if (sm_entry_peek(p->entry, p->len, &pk))
		snprintf(pk.what, sizeof(pk.what), "an entry");
	log_msg(3, "standalone write %" PRIu64 " of host %s (%s), answered %s "
		   "from local state, was applied by the log with %s: its "
		   "change is discarded",
		p->seq, d->host, pk.what,
		p->local_result ? strerror(-p->local_result) : "OK",
		result ? strerror(-result) : "success");
}

void submit_applied(struct daemon *d, uint64_t origin, uint64_t seq,
		    int result)
{
	struct pending *p;

	if (origin == d->member_id) {
		if (seq > d->submit->applied_seq)
			d->submit->applied_seq = seq;
		p = find(d, seq);
		if (p && d->committed && !p->local) {
			/* clients see the overlay, which lacks it: answer
			 * once the replica is what they see */
			p->held = true;
			p->applied = true;
			p->held_result = result;
		} else if (p) {
			if (p->local && result != p->local_result)
				discarded(d, p, result);
			answer(d, p, result);
		}
	} else if (origin) {
		/* its origin answers its client once it knows this is
		 * committed: tell it now, not at the next heartbeat */
		submit_announce_commit(d);
	}
}

void submit_announce_commit(struct daemon *d)
{
	struct submitter *s = d->submit;

	/* d->repl is NULL while repl_open() runs: a lone voter (a
	 * recovered member) elects itself and applies the log inside
	 * raft_start() */
	if (s->announce_pending || !d->repl || !repl_is_leader(d->repl))
		return;
	s->announce_pending = true;
	uv_timer_start(&s->announce, announce_commit, 0, 0);
}

static void submitted(void *arg, int status)
{
	struct pending *p = arg;

	p->inflight--;
	if (p->answered) {
		if (p->inflight == 0)
			free_pending(p);
		return;
	}
	/* Lost its leadership before the entry committed: send it again
	 * (it may still commit: then the copy is a no-op). */
	if (status)
		p->sent_to = 0;
}

static uint64_t now_ms(struct daemon *d)
{
	return uv_now(d->loop);
}

/* The entry of ours that must reach the log before p (Forward.prev_seq):
 * the nearest earlier one the log has not applied, 0 if none. */
static uint64_t prev_of(const struct daemon *d, const struct pending *p)
{
	const struct pending *head = &d->submit->pending, *q;

	for (q = p->prev; q != head; q = q->prev)
		if (!q->nolog && !q->held && !q->applied)
			return q->seq;
	return 0;
}

static int forward(struct daemon *d, uint64_t to, struct pending *p)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__Forward f = XSR__FORWARD__INIT;

	f.seq = p->seq;
	f.prev_seq = prev_of(d, p);
	f.entry.data = p->entry;
	f.entry.len = p->len;
	m.m_case = XSR__PEER_MSG__M_FORWARD;
	m.forward = &f;
	return peers_send(d, to, &m);
}

/* Hand p to the leader of the moment (nothing to do if none is known). */
static void send_one(struct daemon *d, struct pending *p)
{
	uint64_t leader = repl_leader(d->repl);
	int rc;

	p->sent_ms = now_ms(d);
	p->sent_to = 0;
	if (repl_is_leader(d->repl)) {
		rc = repl_submit(d->repl, p->entry, p->len, submitted, p);
		if (rc == 0) {
			p->inflight++;
			p->sent_to = d->member_id;
		}
	} else if (leader && peers_enabled(d)) {
		/* a failed send is retried: sent_to keeps the leader so that
		 * RESEND_MS paces the retries */
		forward(d, leader, p);
		p->sent_to = leader;
	}
}

/* ---- Standalone mode (node/standalone.h) ----------------------------- */

/* Answer what the overlay decided, one loop turn later (never inside the
 * request's own dispatch). */
static void local_replies(uv_timer_t *t)
{
	struct daemon *d = t->data;
	struct pending *head = &d->submit->pending, *p, *next;

	for (p = head->next; p != head; p = next) {
		next = p->next;
		if (!p->local || p->replied)
			continue;
		p->replied = true;
		reply(d, p, p->local_result);
		if (p->nolog || p->applied) {
			/* nothing more to come from the log */
			p->answered = true;
			unlink_pending(p);
			if (p->inflight == 0)
				free_pending(p);
		}
	}
}

/* Apply p to the overlay and make it durable, answered at the next turn.
 * -EHOSTUNREACH: not an entry this member can carry out alone. */
static int make_local(struct daemon *d, struct pending *p)
{
	struct submitter *s = d->submit;
	int rc = s->local(d, p->entry, p->len, p->seq, &p->local_result);

	if (rc == SUBMIT_TO_LOG)
		return 0; /* not local: the log's, as with a quorum */
	if (rc)
		return rc;
	p->local = true;
	p->nolog = p->local_result != 0;
	p->held = false;
	uv_timer_start(&s->replies, local_replies, 0, 0);
	return 0;
}

void submit_set_local(struct daemon *d,
		      int (*local)(struct daemon *d, const void *entry,
				   size_t len, uint64_t seq, int *result))
{
	d->submit->local = local;
}

void submit_localize(struct daemon *d)
{
	struct pending *head = &d->submit->pending, *p;

	bool held;

	for (p = head->next; p != head; p = p->next) {
		held = p->held;
		if (!p->local && !p->answered && make_local(d, p) == 0 &&
		    p->local && held)
			p->applied = true; /* the log has it already */
	}
}

int submit_restored(struct daemon *d, uint64_t seq, const void *entry,
		    size_t len)
{
	struct pending *head = &d->submit->pending;
	struct pending *p = calloc(1, sizeof(*p));

	if (!p || !(p->entry = malloc(len ? len : 1))) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->entry, entry, len);
	p->d = d;
	p->seq = seq;
	p->len = len;
	p->local = p->replied = true;
	p->sent_ms = now_ms(d);
	if (head->prev != head && head->prev->seq >= seq) {
		/* the log's tail had it already (node/standalone.c) */
		free_pending(p);
		return 0;
	}
	p->next = head;
	p->prev = head->prev;
	head->prev->next = p;
	head->prev = p;
	p->linked = true;
	if (d->submit->next_seq <= seq)
		d->submit->next_seq = seq + 1;
	return 0;
}

size_t submit_local_count(const struct daemon *d)
{
	const struct pending *head = &d->submit->pending, *p;
	size_t n = 0;

	for (p = head->next; p != head; p = p->next)
		n += p->local && !p->nolog && !p->applied;
	return n;
}

uint64_t submit_applied_seq(const struct daemon *d)
{
	return d->submit->applied_seq;
}

bool submit_oldest(const struct daemon *d, uint64_t *sent_ms)
{
	const struct pending *head = &d->submit->pending, *p;

	for (p = head->next; p != head; p = p->next)
		if (!p->local && !p->held) {
			*sent_ms = p->deadline_ms -
				   d->cfg.cluster.commit_timeout_ms;
			return true;
		}
	return false;
}

void submit_release_held(struct daemon *d)
{
	struct pending *head = &d->submit->pending, *p, *next;

	for (p = head->next; p != head; p = next) {
		next = p->next;
		if (p->held)
			answer(d, p, p->held_result);
	}
}

void submit_each_skipped(struct daemon *d, const struct store *old,
			 const struct store *st,
			 void (*fn)(void *arg, const void *entry, size_t len),
			 void *arg)
{
	const struct pending *head = &d->submit->pending, *p;
	int rc;

	for (p = head->next; p != head; p = p->next)
		if (p->conn && !p->answered &&
		    store_session_lookup(st, d->member_id, p->seq, &rc) ==
			    STORE_SEEN &&
		    store_session_lookup(old, d->member_id, p->seq, &rc) ==
			    STORE_NEW)
			fn(arg, p->entry, p->len);
}

int submit_entry(struct daemon *d, struct conn *c, struct conn_req *r,
		 void *entry_buf, size_t entry_len, uint64_t seq,
		 void (*done)(struct daemon *d, void *arg, int result),
		 void *arg)
{
	struct pending *head = &d->submit->pending;
	struct pending *p = calloc(1, sizeof(*p));

	if (!p) {
		free(entry_buf);
		return -ENOMEM;
	}
	p->d = d;
	p->seq = seq;
	p->conn = c;
	p->req = r;
	p->done = done;
	p->arg = arg;
	p->entry = entry_buf;
	p->len = entry_len;
	p->deadline_ms = now_ms(d) + d->cfg.cluster.commit_timeout_ms;
	p->sent_ms = now_ms(d);
	if (d->no_quorum_since && d->submit->local) {
		int rc = make_local(d, p);

		if (rc) {
			free_pending(p);
			return rc;
		}
	}
	/* in seq order: the log applies an origin's entries in order */
	assert(head->prev == head || head->prev->seq < seq);
	p->next = head;
	p->prev = head->prev;
	head->prev->next = p;
	head->prev = p;
	p->linked = true;
	/* Behind an entry still looking for a leader: keep the order. */
	if (!p->nolog && (p->prev == head || p->prev->sent_to))
		send_one(d, p);
	return 0;
}

void submit_tick(struct daemon *d, uint64_t now)
{
	struct submitter *s = d->submit;
	uint64_t leader = repl_leader(d->repl);
	bool changed = leader != s->last_leader, resend = false;
	struct pending *p, *next;

	s->last_leader = leader;
	for (p = s->pending.next; p != &s->pending; p = next) {
		next = p->next;
		if (p->held || p->nolog)
			continue; /* applied, or not for the log */
		if (now >= p->deadline_ms && !p->local) {
			log_msg(4,
				"log entry %" PRIu64
				" not committed within %u ms (no quorum?): "
				"request failed with EIO",
				p->seq, d->cfg.cluster.commit_timeout_ms);
			answer(d, p, -EIO);
			continue;
		}
		/*
		 * Once one entry has to go again, every later one goes again
		 * too, so that they reach the log in their order.
		 */
		if (!resend)
			resend = p->sent_to == 0 ||
				 (changed && p->sent_to != leader) ||
				 (p->sent_to != d->member_id &&
				  now - p->sent_ms >= RESEND_MS);
		if (resend && (p->sent_to != d->member_id || p->inflight == 0 ||
			       changed))
			send_one(d, p);
	}
}

/*
 * The leader refused an entry we forwarded: it lost its leadership or has
 * not applied its log yet (sent again at the next tick, with everything
 * after it), or the entry's predecessor is not in its log (-EILSEQ: all
 * of them again), or it judged the entry not ours to send (-EPERM: a bug
 * here; the request fails).
 */
static void refused(struct daemon *d, uint64_t from, const Xsr__PeerMsg *m)
{
	struct pending *p = find(d, m->forward_nack->seq);

	if (!p || p->sent_to != from)
		return;
	if (m->forward_nack->status == -EPERM) {
		if (p->local)
			log_msg(3, "member %" PRIu64 " refused log entry "
				   "%" PRIu64 " as not ours to submit: this "
				   "standalone write, answered from local "
				   "state, is discarded",
				from, p->seq);
		else
			log_msg(3, "member %" PRIu64 " refused log entry "
				   "%" PRIu64 " as not ours to submit: request "
				   "failed with EIO",
				from, p->seq);
		answer(d, p, -EIO);
		return;
	}
	p->sent_to = 0;
	if (m->forward_nack->status != -EILSEQ)
		return;
	/* Its predecessor is not in the log: lost with a link, or refused
	 * while this entry was on its way. Everything goes again, in order,
	 * at the next tick (copies of what was taken are harmless). */
	for (p = d->submit->pending.next; p != &d->submit->pending;
	     p = p->next)
		if (p->sent_to == from)
			p->sent_to = 0;
}

/* ---- On the leader: entries forwarded by followers ------------------ */

struct fwd {
	struct daemon *d;
	uint64_t from, seq;
};

static void refuse(struct daemon *d, uint64_t to, uint64_t seq, int status)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__ForwardNack n = XSR__FORWARD_NACK__INIT;

	n.seq = seq;
	n.status = status;
	n.leader = repl_leader(d->repl);
	m.m_case = XSR__PEER_MSG__M_FORWARD_NACK;
	m.forward_nack = &n;
	peers_send(d, to, &m);
}

static void taken_forget(struct submitter *s, uint64_t from);

static void forwarded_done(void *arg, int status)
{
	struct fwd *f = arg;

	if (status) {
		/* not in the log after all: the sender's next entries chain
		 * from what is applied until it sends this one again */
		taken_forget(f->d->submit, f->from);
		refuse(f->d, f->from, f->seq, status);
	}
	free(f);
}

/*
 * Is the entry one that member `from` may submit? `from` is authenticated
 * (consensus/peer.h: the certificate of the connection). Its origin must
 * be the sender, so that no member spends another's sequence numbers; it
 * may change only the sender's own tree (named after the member), except
 * a domain move, whose rules apply alike everywhere (store_domain_move).
 * A Member or HostInit entry records the sender only, under its own name
 * or a name no tree has yet: the membership commands run on the leader
 * (node/cluster_member.c). A no-op changes no tree: a member whose tree
 * the log has not created yet sends one to learn that its entries reach
 * the log (node/standalone.c: a new cluster's members starting apart;
 * refused, it logged a discarded standalone write that never was, found
 * by the two-host Xen lab). NULL if it may, else why not.
 */
static const char *forward_refusal(struct daemon *d, uint64_t from,
				   const void *entry, size_t len)
{
	const struct store *st = daemon_replica(d); /* never the overlay */
	const struct store_member *known = store_member_by_id(st, from);
	const char *own = known ? known->name : NULL;
	struct sm_peek pk;

	if (sm_entry_peek(entry, len, &pk))
		return "not an entry with a caller";
	if (pk.origin != from)
		return "another member's origin";
	if (pk.member_id && pk.member_id != from)
		return "another member's record";
	if (pk.member_id && (!own || strcmp(own, pk.member_name)) &&
	    store_host_exists(st, pk.member_name))
		return "a name whose tree exists";
	if (pk.host_init && pk.member_id)
		own = pk.member_name;
	if (pk.move || pk.member || pk.noop)
		return NULL;
	if (!own || strcmp(own, pk.host))
		return "another host's tree";
	return NULL;
}

/* One line a second at most, unless the member or the reason changes. */
static void log_refusal(struct daemon *d, uint64_t from, uint64_t seq,
			const char *why)
{
	struct submitter *s = d->submit;
	uint64_t now = now_ms(d);

	if (s->forged_logged_ms && now - s->forged_logged_ms < 1000 &&
	    s->forged_from == from && s->forged_why == why) {
		s->forged_quiet++;
		return;
	}
	if (s->forged_quiet)
		log_msg(3, "member %" PRIu64 ": %lu more forwarded entries "
			   "refused", s->forged_from, s->forged_quiet);
	log_msg(3, "member %" PRIu64 " forwarded log entry %" PRIu64
		" with %s: refused", from, seq, why);
	s->forged_logged_ms = now;
	s->forged_from = from;
	s->forged_why = why;
	s->forged_quiet = 0;
}

/*
 * Does this leader's replica hold what was committed before its term? It
 * judges forwarded entries (forward_refusal()), and a leader restarted
 * from a snapshot applies the rest of its log only once an entry of its
 * term has committed: until then it may lack the sender's member record
 * and refuse, for good, an entry the sender already answered (a
 * standalone write after a cold start; found by cluster_standalone under
 * AddressSanitizer). Not yet: the sender is told to send it again.
 */
static bool replica_current(struct daemon *d)
{
	uint64_t index;

	return repl_read_index(d->repl, &index) == 0 &&
	       repl_last_applied(d->repl) >= index;
}

/* The slot of `from`'s lowest entry refused for now in this term, or -1
 * (none; add: a new slot, 0, unless the table is full). */
static int refused_mark(struct submitter *s, uint64_t from, bool add)
{
	size_t i;

	for (i = 0; i < s->nmarks; i++)
		if (s->marks[i].from == from)
			return (int)i;
	if (!add || s->nmarks == REFUSED_MAX)
		return -1;
	s->marks[s->nmarks].from = from;
	s->marks[s->nmarks].seq = 0;
	return (int)s->nmarks++;
}

/*
 * Has the log applied the refused entry anyway? It was a copy of one the
 * old leader had appended, now committed: the sender answers it and never
 * sends it again, and waiting for it would refuse the sender's later
 * entries for the whole term (TestFiveMembers under ASan: writes stalled
 * until their member went standalone).
 */
static bool refused_applied(struct daemon *d, uint64_t from, uint64_t seq)
{
	int rc;

	return store_session_lookup(daemon_replica(d), from, seq, &rc) !=
	       STORE_NEW;
}

/*
 * Refused for now: the sender sends it again with every later entry
 * (submit_tick()), in order. An origin's entries apply in seq order, one
 * that comes after a later one is taken for a duplicate: so no later entry
 * of the sender is taken, in this term, until the refused one comes again
 * (a burst read in two turns, the replica current in between, would
 * otherwise let its tail into the log first and its head be lost).
 */
static int refuse_for_now(struct submitter *s, uint64_t from, uint64_t seq)
{
	int i = refused_mark(s, from, true);

	if (i >= 0 && (s->marks[i].seq == 0 || seq < s->marks[i].seq))
		s->marks[i].seq = seq;
	return -EAGAIN;
}

/* The entry `from` numbered seq was taken into the log in this term. */
static void taken_set(struct submitter *s, uint64_t from, uint64_t seq)
{
	struct taken *t;
	size_t i;

	for (i = 0; i < s->ntaken; i++)
		if (s->taken[i].from == from) {
			if (seq > s->taken[i].seq)
				s->taken[i].seq = seq;
			return;
		}
	if (s->ntaken == s->taken_cap) {
		size_t cap = s->taken_cap ? 2 * s->taken_cap : 8;

		t = realloc(s->taken, cap * sizeof(*t));
		if (!t)
			return; /* the sender's next entries wait for the
				 * log to apply this one instead */
		s->taken = t;
		s->taken_cap = cap;
	}
	s->taken[s->ntaken].from = from;
	s->taken[s->ntaken++].seq = seq;
}

static void taken_forget(struct submitter *s, uint64_t from)
{
	size_t i;

	for (i = 0; i < s->ntaken; i++)
		if (s->taken[i].from == from) {
			s->taken[i] = s->taken[--s->ntaken];
			return;
		}
}

/*
 * May `from`'s entry whose predecessor is prev (Forward.prev_seq) go into
 * the log now? Only after that predecessor: an origin's entries apply in
 * seq order, and one applied after a later one is taken for a duplicate
 * and lost. So prev must be applied, or taken in this term (the entries
 * taken in a term follow each other: each was checked so). A link that
 * lost some of a sender's frames, a refusal while this member was not yet
 * leader, a leadership lost and won again, would otherwise let a later
 * entry in first (chaos seed 12: a standalone member's no-op probe
 * overtook its 300 standalone writes, answered OK and then discarded).
 */
static bool follows_taken(struct daemon *d, uint64_t from, uint64_t prev)
{
	const struct submitter *s = d->submit;
	size_t i;

	if (prev == 0)
		return true;
	for (i = 0; i < s->ntaken; i++)
		if (s->taken[i].from == from && prev <= s->taken[i].seq)
			return true;
	return refused_applied(d, from, prev);
}

/* An entry a follower forwarded: into the log if we lead, else refused
 * (for now -EAGAIN or -ENOTCONN, for good -EPERM). */
static void forwarded(struct daemon *d, uint64_t from, const Xsr__PeerMsg *m)
{
	struct submitter *s = d->submit;
	uint64_t seq = m->forward->seq;
	const void *entry = m->forward->entry.data;
	size_t len = m->forward->entry.len;
	const char *why;
	struct fwd *f;
	int rc = -ENOTCONN, mark;

	if (repl_is_leader(d->repl)) {
		if (s->marks_term != repl_term(d->repl)) {
			s->nmarks = 0;
			s->ntaken = 0;
			s->marks_term = repl_term(d->repl);
		}
		mark = refused_mark(s, from, false);
		if (mark >= 0 && seq > s->marks[mark].seq &&
		    !refused_applied(d, from, s->marks[mark].seq)) {
			rc = -EAGAIN; /* behind one refused: keep the order */
			goto out;
		}
		if (mark >= 0) /* it came again */
			s->marks[mark] = s->marks[--s->nmarks];
		if (!replica_current(d)) {
			rc = refuse_for_now(s, from, seq);
			goto out;
		}
		if (!follows_taken(d, from, m->forward->prev_seq)) {
			rc = -EILSEQ; /* its predecessor first */
			goto out;
		}
		why = forward_refusal(d, from, entry, len);
		if (why) {
			log_refusal(d, from, seq, why);
			rc = -EPERM;
		} else if ((f = malloc(sizeof(*f)))) {
			f->d = d;
			f->from = from;
			f->seq = seq;
			rc = repl_submit(d->repl, entry, len, forwarded_done,
					 f);
			if (rc)
				free(f);
			else
				taken_set(s, from, seq);
		}
	}
out:
	if (rc)
		refuse(d, from, seq, rc);
}

void submit_abort_all(struct daemon *d, int result)
{
	struct pending *head = &d->submit->pending;

	while (head->next != head)
		answer(d, head->next, result);
}

bool submit_idle(const struct daemon *d)
{
	return d->submit->pending.next == &d->submit->pending;
}

int submit_open(struct daemon *d)
{
	struct submitter *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	/* (incarnation << 40) + n keeps increasing across restarts */
	s->next_seq = (d->incarnation << 40) + 1;
	s->pending.next = s->pending.prev = &s->pending;
	uv_timer_init(d->loop, &s->announce);
	s->announce.data = d;
	uv_timer_init(d->loop, &s->replies);
	s->replies.data = d;
	d->submit = s;
	peers_on(d, XSR__PEER_MSG__M_FORWARD, forwarded);
	peers_on(d, XSR__PEER_MSG__M_FORWARD_NACK, refused);
	return 0;
}

void submit_close(struct daemon *d)
{
	uv_timer_stop(&d->submit->announce);
	uv_timer_stop(&d->submit->replies);
}

void submit_free(struct daemon *d)
{
	free(d->submit->taken);
	free(d->submit);
	d->submit = NULL;
}

enum conn_verdict submit_request(struct daemon *d, struct conn *c,
				 struct conn_req *r, int rc, void *buf,
				 size_t len, uint64_t seq)
{
	if (!rc)
		rc = submit_entry(d, c, r, buf, len, seq, NULL, NULL);
	if (rc) {
		if (rc != -ENOMEM && rc != -ESHUTDOWN)
			log_msg(4, "cannot submit to the log: %s",
				strerror(-rc));
		/* Submission failed: nothing is in the log for r. */
		conn_reply_error(c, r, rc == -ENOMEM ? -ENOMEM : -EIO);
		return CONN_DONE;
	}
	return CONN_ASYNC;
}
