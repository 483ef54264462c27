/*
 * node/cluster_member.c: the membership commands (`xsadm cluster add|
 * remove|promote|demote|transfer`): run on the leader from a table of
 * name, argument count, usage and handler; a follower forwards them to
 * the leader and answers once its own log has the change.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/sm.h"

void cluster_admin_done(struct daemon *d, struct query *q, int status,
			const char *text)
{
	json_object *o;

	if (q->reply_to) {
		/* run for a peer: send it the outcome */
		Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
		Xsr__AdminReply ar = XSR__ADMIN_REPLY__INIT;

		ar.qid = q->reply_qid;
		ar.status = status;
		ar.text = (char *)(text ? text : "");
		ar.index = repl_last_index(d->repl);
		/* the asking member learns of the commit now, not later
		 * (deferred: this may run inside libraft's callbacks) */
		submit_announce_commit(d);
		m.m_case = XSR__PEER_MSG__M_ADMIN_REPLY;
		m.admin_reply = &ar;
		peers_send(d, q->reply_to, &m);
		cluster_query_free(d, q);
		return;
	}
	o = status ? admin_error(0, "%s", text && *text ? text : strerror(-status))
		   : admin_ok();
	cluster_query_reply(d, q, o);
}

static void change_cb(void *arg, int status)
{
	struct query *q = arg;
	struct daemon *d = q->d;

	if (cluster_query_find(d, q->qid) != q)
		return;
	cluster_admin_done(d, q, status,
		   status ? (status == -ETIMEDOUT
				     ? "leadership did not move in time"
				     : strerror(-status))
			  : NULL);
}

/*
 * The members table follows the Raft configuration: a member's row is
 * recorded before libraft adds it (its peer address must be known when it
 * starts), and leaves the table when the member leaves the
 * configuration, or when the add fails. Submit the removal of id's row;
 * done(d, arg, result) once applied. -ENOENT if there is no row.
 */
static int forget_row(struct daemon *d, uint64_t id,
		      void (*done)(struct daemon *d, void *arg, int result),
		      void *arg)
{
	const struct store_member *row = store_member_by_id(d->store, id);
	struct sm_origin o;
	void *buf;
	size_t len;
	int rc;

	if (!row)
		return -ENOENT;
	o = submit_own_origin(d);
	rc = sm_entry_member(&o, row, true, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq, done, arg);
	return rc;
}

/*
 * Answer q at the next tick (cluster_tick), not now: the callers run
 * inside libraft's apply or change callbacks, and the answer to a peer
 * announces the commit with a barrier entry, which libraft must not be
 * given while it walks its entries (a use after free).
 */
static void answer_later(struct query *q, int status, const char *text)
{
	free(q->wait_text);
	q->wait_text = strdup(text ? text : "");
	q->wait_status = status;
	q->wait_index = 1; /* committed: answered at the next tick */
}

/* A query answered once a row is forgotten. */
struct forget_ctx {
	uint64_t qid, id;
	int status;
	char text[128];
};

static void forgotten(struct daemon *d, void *arg, int result)
{
	struct forget_ctx *f = arg;
	struct query *q = cluster_query_find(d, f->qid);

	if (result)
		log_msg(4, "member %" PRIu64 " stays in the members table for "
			   "now (%s): the leader removes it later",
			f->id, strerror(-result));
	if (q)
		answer_later(q, f->status, f->status ? f->text : NULL);
	free(f);
}

/* Forget id's row, then answer query qid with status (and text). */
static void forget_and_answer(struct daemon *d, uint64_t qid, uint64_t id,
			      int status, const char *text)
{
	struct forget_ctx *f = calloc(1, sizeof(*f));
	struct query *q;

	if (f) {
		f->qid = qid;
		f->id = id;
		f->status = status;
		snprintf(f->text, sizeof(f->text), "%s",
			 text ? text : strerror(-status));
		if (!forget_row(d, id, forgotten, f))
			return;
		free(f);
	}
	q = cluster_query_find(d, qid);
	if (q)
		answer_later(q, status, text);
}

struct remove_ctx {
	struct daemon *d;
	uint64_t qid, id;
};

/* `remove`: the configuration change is committed, now the row. */
static void removed_cb(void *arg, int status)
{
	struct remove_ctx *rm = arg;
	struct query *q = cluster_query_find(rm->d, rm->qid);

	if (status) {
		if (q)
			answer_later(q, status, strerror(-status));
	} else {
		forget_and_answer(rm->d, rm->qid, rm->id, 0, NULL);
	}
	free(rm);
}

struct add_ctx {
	struct daemon *d;
	uint64_t qid;
	uint64_t id;
	char raft[128];
	/* the next step, run from the tick (cluster_member_later): libraft
	 * must not be given a configuration change from inside its own
	 * callbacks, where appending an entry frees the entries it walks */
	enum { ADD_RAFT, ADD_ASSIGN } step;
	struct add_ctx *next;
};

static void later(struct daemon *d, struct add_ctx *a, int step)
{
	struct add_ctx **pp = &d->cluster->adds_later;

	a->step = step;
	a->next = NULL;
	while (*pp)
		pp = &(*pp)->next;
	*pp = a;
}

/*
 * libraft adds a member as a spare, which receives no log; a host must
 * replicate to serve its clients, so it becomes a standby at once (a voter
 * once promoted).
 */
static void added_cb(void *arg, int status)
{
	struct add_ctx *a = arg;
	struct daemon *d = a->d;

	d->cluster->adds_in_flight--;
	if (status) {
		/* not in the configuration: nor in the table */
		forget_and_answer(d, a->qid, a->id, status, NULL);
		free(a);
		return;
	}
	later(d, a, ADD_ASSIGN); /* a spare: make it a standby, from the tick */
}

/* From the tick: added as a spare, now a standby. */
static void add_assign(struct daemon *d, struct add_ctx *a)
{
	struct query *q = cluster_query_find(d, a->qid);
	int rc;

	if (q) {
		rc = repl_assign(d->repl, a->id, REPL_STANDBY, change_cb, q);
		if (rc)
			cluster_admin_done(d, q, rc,
				   "added as a spare, but it could not be "
				   "made a standby");
	}
	free(a);
}

static void member_recorded(struct daemon *d, void *arg, int result)
{
	struct add_ctx *a = arg;
	struct query *q = cluster_query_find(d, a->qid);

	if (result) {
		if (q)
			answer_later(q, result, "cannot record the new member");
		d->cluster->adds_in_flight--;
		free(a);
		return;
	}
	later(d, a, ADD_RAFT); /* we run inside libraft's apply */
}

/* From the tick: the row is recorded, now the configuration. */
static void add_raft(struct daemon *d, struct add_ctx *a)
{
	struct query *q = cluster_query_find(d, a->qid);
	int rc;

	rc = q ? repl_add(d->repl, a->id, a->raft, added_cb, a) : -ETIMEDOUT;
	if (!rc)
		return; /* a goes on to added_cb */
	/* recorded, but not in the configuration: undo the row */
	forget_and_answer(d, a->qid, a->id, rc,
			  rc == -ETIMEDOUT ? NULL
					   : "the leader refused to add it");
	d->cluster->adds_in_flight--;
	free(a);
}

void cluster_member_later(struct daemon *d, bool cancel)
{
	struct add_ctx *a;

	while ((a = d->cluster->adds_later)) {
		d->cluster->adds_later = a->next;
		if (cancel) {
			if (a->step == ADD_RAFT)
				d->cluster->adds_in_flight--;
			free(a);
		} else if (a->step == ADD_RAFT) {
			add_raft(d, a);
		} else {
			add_assign(d, a);
		}
	}
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return false;
	v = strtoull(s, &end, 10);
	if (*end || v == 0)
		return false;
	*out = v;
	return true;
}

int cluster_member_role(struct daemon *d, uint64_t id)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t n = repl_servers(d->repl, srv, MAX_MEMBERS), i;

	for (i = 0; i < n; i++)
		if (srv[i].id == id)
			return srv[i].role;
	return -1;
}

/*
 * The membership commands, run on the leader. Each answers q through
 * cluster_admin_done(), at once or once the change is done; argv[0] is the
 * command, and the table has checked argc and that this member leads.
 */
static void member_add(struct daemon *d, struct query *q, const char **argv,
		       unsigned int argc)
{
	struct sm_origin o;
	const struct store_member *other;
	struct store_member m;
	struct add_ctx *a;
	uint64_t id;
	void *buf;
	size_t len;
	int rc;

	if (!parse_u64(argv[1], &id)) {
		cluster_admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	if (cluster_member_role(d, id) >= 0) {
		cluster_admin_done(d, q, -EEXIST, "that id is already in the configuration");
		return;
	}
	other = store_member_by_name(d->store, argv[4]);
	if (other && other->id != id) {
		cluster_admin_done(d, q, -EEXIST, "that name belongs to another member");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		cluster_admin_done(d, q, -ENOMEM, NULL);
		return;
	}
	a->d = d;
	a->qid = q->qid;
	a->id = id;
	snprintf(a->raft, sizeof(a->raft), "%s", argv[2]);
	m.id = id;
	m.name = (char *)argv[4];
	m.raft_address = (char *)argv[2];
	m.peer_address = (char *)argv[3];
	o = submit_own_origin(d);
	rc = sm_entry_member(&o, &m, false, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
				   member_recorded, a);
	if (rc) {
		free(a);
		cluster_admin_done(d, q, rc, NULL);
		return;
	}
	d->cluster->adds_in_flight++; /* cluster_member_reconcile waits */
}

static void member_transfer(struct daemon *d, struct query *q,
			    const char **argv, unsigned int argc)
{
	uint64_t id = 0;
	int rc;

	if (argc == 2 && !parse_u64(argv[1], &id)) {
		cluster_admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	rc = repl_transfer(d->repl, id, change_cb, q);
	if (rc)
		cluster_admin_done(d, q, rc,
			   rc == -ENOENT ? "no voter to hand over to"
					 : "transfer refused");
}

/* remove, promote, demote: a member of the configuration, by id. */
static void member_role(struct daemon *d, struct query *q, const char **argv,
			unsigned int argc)
{
	const char *cmd = argv[0];
	uint64_t id;
	int rc, role;

	if (!parse_u64(argv[1], &id)) {
		cluster_admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	role = cluster_member_role(d, id);
	if (role < 0) {
		cluster_admin_done(d, q, -ENOENT, "no such member in the configuration");
		return;
	}
	if (!strcmp(cmd, "remove")) {
		struct remove_ctx *rm = calloc(1, sizeof(*rm));

		if (!rm) {
			cluster_admin_done(d, q, -ENOMEM, NULL);
			return;
		}
		rm->d = d;
		rm->qid = q->qid;
		rm->id = id;
		rc = repl_remove(d->repl, id, removed_cb, rm);
		if (rc)
			free(rm);
	} else if (!strcmp(cmd, "promote")) {
		if (role == REPL_VOTER) {
			cluster_admin_done(d, q, -EINVAL, "it is a voter already");
			return;
		}
		rc = repl_assign(d->repl, id, REPL_VOTER, change_cb, q);
	} else {
		if (role == REPL_SPARE) {
			cluster_admin_done(d, q, -EINVAL, "it is a spare already");
			return;
		}
		rc = repl_assign(d->repl, id,
				 role == REPL_VOTER ? REPL_STANDBY : REPL_SPARE,
				 change_cb, q);
	}
	if (rc)
		cluster_admin_done(d, q, rc, "the leader refused the change");
}

static const struct member_cmd {
	const char *name;
	unsigned int min_argc, max_argc; /* argv[0] included */
	const char *usage;
	void (*run)(struct daemon *d, struct query *q, const char **argv,
		    unsigned int argc);
} member_cmds[] = {
	{"add", 5, 5, "add ID RAFT-ADDRESS PEER-ADDRESS NAME", member_add},
	{"transfer", 1, 2, "transfer [ID]", member_transfer},
	{"remove", 2, 2, "remove ID", member_role},
	{"promote", 2, 2, "promote ID", member_role},
	{"demote", 2, 2, "demote ID", member_role},
};

/* Run a membership command here (we lead); q is answered by cluster_admin_done(). */
static void run_admin(struct daemon *d, struct query *q, const char **argv,
		      unsigned int argc)
{
	const struct member_cmd *mc = NULL;
	char usage[64];
	size_t i;

	for (i = 0; argc && i < sizeof(member_cmds) / sizeof(*member_cmds); i++)
		if (!strcmp(argv[0], member_cmds[i].name))
			mc = &member_cmds[i];
	if (!mc) {
		cluster_admin_done(d, q, -EINVAL, "unknown membership command");
		return;
	}
	if (!repl_is_leader(d->repl)) {
		cluster_admin_done(d, q, -ENOTCONN, "this member is not the leader");
		return;
	}
	if (argc < mc->min_argc || argc > mc->max_argc) {
		snprintf(usage, sizeof(usage), "usage: %s", mc->usage);
		cluster_admin_done(d, q, -EINVAL, usage);
		return;
	}
	mc->run(d, q, argv, argc);
}

static void forward_admin(struct daemon *d, struct query *q,
			  const char **argv, unsigned int argc)
{
	uint64_t leader = repl_leader(d->repl);
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__AdminRequest ar = XSR__ADMIN_REQUEST__INIT;

	if (!leader) {
		cluster_admin_done(d, q, -ENOTCONN,
			   "no leader is known (no quorum?)");
		return;
	}
	ar.qid = q->qid;
	ar.argv = (char **)argv;
	ar.n_argv = argc;
	m.m_case = XSR__PEER_MSG__M_ADMIN_REQUEST;
	m.admin_request = &ar;
	q->admin_to = leader;
	if (peers_send(d, leader, &m))
		cluster_admin_done(d, q, -ENOTCONN, "cannot reach the leader");
}

/* `cluster add|remove|promote|demote|transfer ...`: here if we lead,
 * else on the leader, answered once the change is done. */
enum conn_verdict cluster_member_command(struct daemon *d, struct conn *c,
					 struct conn_req *r, const char **argv,
					 unsigned int argc)
{
	const char *cmd = argv[0];
	struct query *q;

	q = cluster_query_new(d, Q_ADMIN, c, r, ADMIN_WAIT_MS);
	if (!q)
		return admin_reply_now(c, r, admin_error(0, "out of memory"));
	log_msg(5, "admin: cluster %s%s%s", cmd, argc > 1 ? " " : "",
		argc > 1 ? argv[1] : "");
	q->in_call = true; /* refused at once: answered now */
	if (repl_is_leader(d->repl))
		run_admin(d, q, argv, argc);
	else
		forward_admin(d, q, argv, argc);
	return cluster_query_settle(d, q, c, r);
}

/* ---- The table follows the configuration ------------------------- */

static void reconciled(struct daemon *d, void *arg, int result)
{
	d->cluster->forgetting = false;
}

/*
 * A row the configuration lacks is left by an add whose leader lost its
 * leadership or crashed half-way, or by a removed member that restarted
 * and recorded itself again. The leader removes one such row a second,
 * never while an add of its own is under way (recorded, not yet added).
 */
void cluster_member_reconcile(struct daemon *d, uint64_t now)
{
	struct repl_server srv[MAX_MEMBERS];
	struct cluster *cl = d->cluster;
	size_t ns, i, k;

	if (now < cl->reconcile_ms || cl->forgetting || cl->adds_in_flight ||
	    !repl_is_leader(d->repl))
		return;
	cl->reconcile_ms = now + 1000;
	ns = repl_servers(d->repl, srv, MAX_MEMBERS);
	if (ns == 0 || ns == MAX_MEMBERS)
		return; /* no configuration, or not all of it */
	for (i = 0; i < store_member_count(d->store); i++) {
		const struct store_member *m = store_member_at(d->store, i);

		for (k = 0; k < ns && srv[k].id != m->id; k++)
			;
		if (k < ns)
			continue;
		log_msg(5, "member %" PRIu64 " (%s) is not in the "
			   "configuration: its row leaves the members table",
			m->id, m->name);
		if (!forget_row(d, m->id, reconciled, NULL))
			cl->forgetting = true;
		return;
	}
}

/* ---- The peer messages of membership commands -------------------- */

void cluster_member_request(struct daemon *d, uint64_t from,
			    const Xsr__AdminRequest *ar)
{
	struct query *q = cluster_query_new(d, Q_ADMIN, NULL, NULL, ADMIN_WAIT_MS);

	if (!q)
		return;
	q->reply_to = from;
	q->reply_qid = ar->qid;
	log_msg(5, "admin from member %" PRIu64 ": cluster %s", from,
		ar->n_argv ? ar->argv[0] : "");
	run_admin(d, q, (const char **)ar->argv, (unsigned int)ar->n_argv);
}

void cluster_member_reply(struct daemon *d, uint64_t from,
			  const Xsr__AdminReply *ar)
{
	struct query *q = cluster_query_find(d, ar->qid);

	if (!q || q->kind != Q_ADMIN || q->admin_to != from)
		return;
	if (ar->index > repl_commit_index(d->repl)) {
		/* held until our log has the change (cluster_tick): a
		 * refused add's too, whose row the leader has removed */
		q->wait_index = ar->index;
		q->wait_status = ar->status;
		q->wait_text = strdup(ar->text ? ar->text : "");
		q->deadline_ms = uv_now(d->loop) + 1000;
		return;
	}
	cluster_admin_done(d, q, ar->status, ar->text);
}
