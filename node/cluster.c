/*
 * node/cluster.c: the daemon's part of the cluster: the peer channel's
 * messages, the membership commands (run on the leader), catching up
 * before serving (node/ready.c), probes, and the dispatch of the admin
 * commands behind `xsadm cluster ...` (XS_CONTROL "cluster ...",
 * privileged clients only) to the files of node/cluster_int.h.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "consensus/sm.h"
#include "wire/peer.pb-c.h"

/* ---- Sending ------------------------------------------------------------ */

const char *cluster_member_name(struct daemon *d, uint64_t id)
{
	const struct store_member *m = store_member_by_id(d->store, id);
	size_t i;

	if (id == d->member_id)
		return d->host;
	if (m)
		return m->name;
	for (i = 0; i < d->cfg.cluster.n_members; i++)
		if (d->cfg.cluster.members[i].id == id)
			return d->cfg.cluster.members[i].name;
	return "";
}

/* Every member we know of: the Raft configuration and the table. */
size_t cluster_all_members(struct daemon *d, uint64_t *ids, size_t max)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t n = 0, i, k, ns;

	ns = repl_servers(d->repl, srv, MAX_MEMBERS);
	for (i = 0; i < ns && i < MAX_MEMBERS && n < max; i++)
		ids[n++] = srv[i].id;
	for (i = 0; i < store_member_count(d->store) && n < max; i++) {
		uint64_t id = store_member_at(d->store, i)->id;

		for (k = 0; k < n && ids[k] != id; k++)
			;
		if (k == n)
			ids[n++] = id;
	}
	if (n == 0)
		ids[n++] = d->member_id;
	return n;
}

/*
 * The members whose replicas must agree: those of the Raft configuration
 * (a member removed from it keeps its row in the table, not its vote).
 */
size_t cluster_config_members(struct daemon *d, uint64_t *ids, size_t max)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t n = 0, i, ns;

	ns = repl_servers(d->repl, srv, MAX_MEMBERS);
	for (i = 0; i < ns && i < MAX_MEMBERS && n < max; i++)
		ids[n++] = srv[i].id;
	return n ? n : cluster_all_members(d, ids, max);
}

/* ---- Probes: is a host's member alive? --------------------------------- */

static void probe_done(struct daemon *d, struct query *q, bool live)
{
	void (*cb)(struct daemon *, void *, bool) = q->probe_cb;
	void *arg = q->probe_arg;

	query_free(d, q);
	cb(d, arg, live);
}

int cluster_probe(struct daemon *d, const char *host,
		  void (*cb)(struct daemon *d, void *arg, bool live),
		  void *arg)
{
	const struct store_member *sm = store_member_by_name(d->store, host);
	bool self = strcmp(host, d->host) == 0;
	struct query *q;

	q = query_new(d, Q_PROBE, NULL, NULL, self || !sm ? 0 : 1000);
	if (!q)
		return -ENOMEM;
	q->probe_cb = cb;
	q->probe_arg = arg;
	q->m[0].id = sm ? sm->id : 0;
	q->n = 1;
	if (self) {
		q->m[0].got = true; /* answered at the next tick */
	} else if (sm && peers_enabled(d)) {
		Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
		Xsr__StatusQuery sq = XSR__STATUS_QUERY__INIT;

		sq.qid = q->qid;
		m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
		m.status_query = &sq;
		peers_send(d, sm->id, &m);
	}
	return 0;
}

/* ---- Membership, run on the leader -------------------------------- */

static void admin_done(struct daemon *d, struct query *q, int status,
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
		/* the asking member learns of the commit now, not later */
		repl_announce_commit(d->repl);
		m.m_case = XSR__PEER_MSG__M_ADMIN_REPLY;
		m.admin_reply = &ar;
		peers_send(d, q->reply_to, &m);
		query_free(d, q);
		return;
	}
	o = status ? admin_error(0, "%s", text && *text ? text : strerror(-status))
		   : admin_ok();
	query_reply(d, q, o);
}

static void change_cb(void *arg, int status)
{
	struct query *q = arg;
	struct daemon *d = q->d;

	if (query_find(d, q->qid) != q)
		return;
	admin_done(d, q, status,
		   status ? (status == -ETIMEDOUT
				     ? "leadership did not move in time"
				     : strerror(-status))
			  : NULL);
}

struct add_ctx {
	struct daemon *d;
	uint64_t qid;
	uint64_t id;
	char raft[128];
};

/*
 * libraft adds a member as a spare, which receives no log; a host must
 * replicate to serve its clients, so it becomes a standby at once (a voter
 * once promoted).
 */
static void added_cb(void *arg, int status)
{
	struct add_ctx *a = arg;
	struct daemon *d = a->d;
	struct query *q = query_find(d, a->qid);
	int rc;

	if (q && status) {
		admin_done(d, q, status, strerror(-status));
	} else if (q) {
		rc = repl_assign(d->repl, a->id, REPL_STANDBY, change_cb, q);
		if (rc)
			admin_done(d, q, rc,
				   "added as a spare, but it could not be "
				   "made a standby");
	}
	free(a);
}

static void member_recorded(struct daemon *d, void *arg, int result)
{
	struct add_ctx *a = arg;
	struct query *q = query_find(d, a->qid);
	int rc;

	if (q && result) {
		admin_done(d, q, result, "cannot record the new member");
	} else if (q) {
		rc = repl_add(d->repl, a->id, a->raft, added_cb, a);
		if (rc)
			admin_done(d, q, rc, "the leader refused to add it");
		else
			return; /* a goes on to added_cb */
	}
	free(a);
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

static int role_of(struct daemon *d, uint64_t id)
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
 * admin_done(), at once or once the change is done; argv[0] is the
 * command, and the table has checked argc and that this member leads.
 */
static void member_add(struct daemon *d, struct query *q, const char **argv,
		       unsigned int argc)
{
	struct sm_origin o = {d->member_id, 0, d->host, NULL, 0, 0};
	const struct store_member *other;
	struct store_member m;
	struct add_ctx *a;
	uint64_t id;
	void *buf;
	size_t len;
	int rc;

	if (!parse_u64(argv[1], &id)) {
		admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	if (role_of(d, id) >= 0) {
		admin_done(d, q, -EEXIST, "that id is already in the configuration");
		return;
	}
	other = store_member_by_name(d->store, argv[4]);
	if (other && other->id != id) {
		admin_done(d, q, -EEXIST, "that name belongs to another member");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		admin_done(d, q, -ENOMEM, NULL);
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
	o.seq = submit_next_seq(d);
	rc = sm_entry_member(&o, &m, false, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
				   member_recorded, a);
	if (rc) {
		free(a);
		admin_done(d, q, rc, NULL);
	}
}

static void member_transfer(struct daemon *d, struct query *q,
			    const char **argv, unsigned int argc)
{
	uint64_t id = 0;
	int rc;

	if (argc == 2 && !parse_u64(argv[1], &id)) {
		admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	rc = repl_transfer(d->repl, id, change_cb, q);
	if (rc)
		admin_done(d, q, rc,
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
		admin_done(d, q, -EINVAL, "the member id must be a number > 0");
		return;
	}
	role = role_of(d, id);
	if (role < 0) {
		admin_done(d, q, -ENOENT, "no such member in the configuration");
		return;
	}
	if (!strcmp(cmd, "remove")) {
		rc = repl_remove(d->repl, id, change_cb, q);
	} else if (!strcmp(cmd, "promote")) {
		if (role == REPL_VOTER) {
			admin_done(d, q, -EINVAL, "it is a voter already");
			return;
		}
		rc = repl_assign(d->repl, id, REPL_VOTER, change_cb, q);
	} else {
		if (role == REPL_SPARE) {
			admin_done(d, q, -EINVAL, "it is a spare already");
			return;
		}
		rc = repl_assign(d->repl, id,
				 role == REPL_VOTER ? REPL_STANDBY : REPL_SPARE,
				 change_cb, q);
	}
	if (rc)
		admin_done(d, q, rc, "the leader refused the change");
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

/* Run a membership command here (we lead); q is answered by admin_done(). */
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
		admin_done(d, q, -EINVAL, "unknown membership command");
		return;
	}
	if (!repl_is_leader(d->repl)) {
		admin_done(d, q, -ENOTCONN, "this member is not the leader");
		return;
	}
	if (argc < mc->min_argc || argc > mc->max_argc) {
		snprintf(usage, sizeof(usage), "usage: %s", mc->usage);
		admin_done(d, q, -EINVAL, usage);
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
		admin_done(d, q, -ENOTCONN,
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
		admin_done(d, q, -ENOTCONN, "cannot reach the leader");
}

static void snapshot_noop_done(struct daemon *d, void *arg, int result)
{
	if (result)
		log_msg(4, "the entry asking for a snapshot failed: %s",
			strerror(-result));
}

int daemon_snapshot_now(struct daemon *d)
{
	struct sm_origin o = {d->member_id, 0, d->host, NULL, 0, 0};
	void *buf;
	size_t len;
	int rc;

	/* libraft snapshots after an apply: give it one (a no-op entry) */
	repl_snapshot_now(d->repl);
	o.seq = submit_next_seq(d);
	rc = sm_entry_noop(&o, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
				   snapshot_noop_done, NULL);
	if (!rc)
		log_msg(5, "snapshot requested");
	return rc;
}

enum conn_verdict cluster_control(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **argv,
				  unsigned int argc)
{
	const char *cmd = argc ? argv[0] : "";
	struct query *q;

	if (strcmp(cmd, "status") == 0 && argc == 1)
		return status_start(d, c, r);
	if (strcmp(cmd, "verify") == 0 && argc == 1)
		return verify_start(d, c, r);
	if (strcmp(cmd, "hosts") == 0 && argc == 1)
		return hosts_list(d, c, r);
	if (!strcmp(cmd, "read") || !strcmp(cmd, "dir") ||
	    !strcmp(cmd, "perms"))
		return hosts_read(d, c, r, argv, argc);
	if (strcmp(cmd, "snapshot") == 0 && argc == 1) {
		if (daemon_snapshot_now(d))
			return admin_reply_now(c, r, admin_error(0, "cannot submit"));
		return admin_reply_now(c, r, admin_ok());
	}
	if (!strcmp(cmd, "add") || !strcmp(cmd, "remove") ||
	    !strcmp(cmd, "promote") || !strcmp(cmd, "demote") ||
	    !strcmp(cmd, "transfer")) {
		q = query_new(d, Q_ADMIN, c, r, ADMIN_WAIT_MS);
		if (!q)
			return admin_reply_now(c, r, admin_error(0, "out of memory"));
		log_msg(5, "admin: cluster %s%s%s", cmd, argc > 1 ? " " : "",
			argc > 1 ? argv[1] : "");
		q->in_call = true;
		if (repl_is_leader(d->repl))
			run_admin(d, q, argv, argc);
		else
			forward_admin(d, q, argv, argc);
		q->in_call = false;
		if (q->sync_result) {
			/* refused at once: answer now, r is still ours */
			json_object *o = q->sync_result;

			q->req = NULL;
			q->conn = NULL;
			query_free(d, q);
			return admin_reply_now(c, r, o);
		}
		return CONN_ASYNC;
	}
	return admin_reply_now(c, r,
			 admin_error(0, "unknown cluster command \"%s\" (try: status, "
			      "verify, hosts, read, dir, perms, add, remove, "
			      "promote, demote, transfer, snapshot)",
			      cmd));
}

/* ---- The peer channel's messages ---------------------------------- */

static void got_admin_request(struct daemon *d, uint64_t from,
			      const Xsr__AdminRequest *ar)
{
	struct query *q = query_new(d, Q_ADMIN, NULL, NULL, ADMIN_WAIT_MS);

	if (!q)
		return;
	q->reply_to = from;
	q->reply_qid = ar->qid;
	log_msg(5, "admin from member %" PRIu64 ": cluster %s", from,
		ar->n_argv ? ar->argv[0] : "");
	run_admin(d, q, (const char **)ar->argv, (unsigned int)ar->n_argv);
}

static void got_admin_reply(struct daemon *d, uint64_t from,
			    const Xsr__AdminReply *ar)
{
	struct query *q = query_find(d, ar->qid);

	if (!q || q->kind != Q_ADMIN || q->admin_to != from)
		return;
	if (ar->status == 0 && ar->index > repl_commit_index(d->repl)) {
		/* held until our log has the change (cluster_tick) */
		q->wait_index = ar->index;
		q->wait_status = ar->status;
		q->wait_text = strdup(ar->text ? ar->text : "");
		q->deadline_ms = uv_now(d->loop) + 1000;
		return;
	}
	admin_done(d, q, ar->status, ar->text);
}

static void recv_msg(struct daemon *d, uint64_t from, const Xsr__PeerMsg *m)
{
	struct query *q;
	size_t i;

	switch (m->m_case) {
	case XSR__PEER_MSG__M_STATUS_QUERY:
		status_answer(d, from, m->status_query->qid);
		break;
	case XSR__PEER_MSG__M_STATUS_REPLY:
		if (!m->status_reply->status)
			break;
		if (d->ready &&
		    ready_answer(d->ready, from, m->status_reply->qid,
				 m->status_reply->status->read_index))
			break;
		q = query_find(d, m->status_reply->qid);
		if (q && q->kind == Q_PROBE && q->n && q->m[0].id == from) {
			probe_done(d, q, true);
			break;
		}
		for (i = 0; q && q->kind == Q_STATUS && i < q->n; i++)
			if (q->m[i].id == from)
				status_record(&q->m[i],
					      m->status_reply->status);
		if (q && q->kind == Q_STATUS && status_complete(q))
			status_finish(d, q); /* everybody answered */
		break;
	case XSR__PEER_MSG__M_DIGEST_QUERY:
		verify_answer(d, from, m->digest_query->qid,
				    m->digest_query->index);
		break;
	case XSR__PEER_MSG__M_DIGEST_REPLY:
		q = query_find(d, m->digest_reply->qid);
		for (i = 0; q && q->kind == Q_VERIFY && i < q->n; i++) {
			struct qmember *qm = &q->m[i];

			if (qm->id != from)
				continue;
			qm->got = true;
			qm->applied = m->digest_reply->applied_index;
			if (m->digest_reply->ready &&
			    m->digest_reply->digest.len == 16) {
				qm->ready = true;
				memcpy(qm->digest, m->digest_reply->digest.data,
				       16);
			}
		}
		break;
	case XSR__PEER_MSG__M_ADMIN_REQUEST:
		got_admin_request(d, from, m->admin_request);
		break;
	case XSR__PEER_MSG__M_ADMIN_REPLY:
		got_admin_reply(d, from, m->admin_reply);
		break;
	default:
		break;
	}
}

/* ---- After an entry is applied ------------------------------------- */

void cluster_applied(struct daemon *d, uint64_t index, int kind,
		     uint64_t origin, uint64_t nonce)
{
	struct query *q;

	if (kind != SM_VERIFY)
		return;
	/* every replica digests its state right after this entry */
	verify_digest(d, index);
	if (origin != d->member_id)
		return;
	for (q = d->queries; q; q = q->next)
		if (q->kind == Q_VERIFY && q->nonce == nonce) {
			q->index = index;
			q->index_known = true;
		}
}

/* ---- Readiness (node/ready.c) --------------------------------------- */

static uint64_t env_leader(void *arg)
{
	return repl_leader(((struct daemon *)arg)->repl);
}

static int env_read_index(void *arg, uint64_t *index)
{
	return repl_read_index(((struct daemon *)arg)->repl, index);
}

static uint64_t env_applied(void *arg)
{
	return repl_last_applied(((struct daemon *)arg)->repl);
}

static uint64_t env_log_last(void *arg)
{
	return repl_last_index(((struct daemon *)arg)->repl);
}

/* Ask the leader for its read index: a status query, answered with it. */
static int env_ask(void *arg, uint64_t leader, uint64_t *qid)
{
	struct daemon *d = arg;
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__StatusQuery sq = XSR__STATUS_QUERY__INIT;

	*qid = ++d->next_qid;
	sq.qid = *qid;
	m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
	m.status_query = &sq;
	return peers_send(d, leader, &m);
}

static void env_done(void *arg, int status)
{
	struct daemon *d = arg;

	d->on_ready(d, status);
}

int cluster_wait_ready(struct daemon *d,
		       void (*on_ready)(struct daemon *d, int status))
{
	struct ready_env env = {
		.arg = d,
		.self = d->member_id,
		.leader = env_leader,
		.read_index = env_read_index,
		.applied = env_applied,
		.log_last = env_log_last,
		.ask = env_ask,
		.done = env_done,
	};

	d->on_ready = on_ready;
	d->ready = ready_start(&env, d->cfg.ready_timeout_ms, uv_now(d->loop));
	return d->ready ? 0 : -ENOMEM;
}

/* ---- Tick, open, close ------------------------------------------------- */

/*
 * A member removed from the configuration gets no more changes: its
 * clients would read an aging tree. Say so, once, loudly.
 */
static void check_membership(struct daemon *d)
{
	bool in = role_of(d, d->member_id) >= 0;

	if (in)
		d->was_in_config = true;
	if (in || !d->was_in_config || d->removed_warned)
		return;
	d->removed_warned = true;
	log_msg(3, "this member (%" PRIu64 ", %s) was removed from the "
		   "cluster configuration: it receives no more changes and its "
		   "clients read an aging tree; stop this daemon",
		d->member_id, d->host);
}

/* A member cut off from its leader (partitioned, removed) says so. */
static void check_leader(struct daemon *d, uint64_t now)
{
	if (repl_leader(d->repl) || !d->no_leader_since_ms) {
		if (repl_leader(d->repl) && d->no_leader_warned)
			log_msg(5, "leader %" PRIu64 " known again",
				repl_leader(d->repl));
		d->no_leader_since_ms = repl_leader(d->repl) ? 0 : now;
		d->no_leader_warned = false;
		d->no_leader_log_ms = now + 10000;
		return;
	}
	if (now < d->no_leader_log_ms)
		return;
	d->no_leader_log_ms = now + 30000;
	d->no_leader_warned = true;
	log_msg(4,
		"no leader for %" PRIu64 " s: changes fail with EIO after "
		"the commit timeout, reads may be stale (partitioned? removed "
		"from the cluster?)",
		(now - d->no_leader_since_ms) / 1000);
}

void cluster_tick(struct daemon *d, uint64_t now)
{
	struct query *q, *next;

	if (d->ready && !ready_finished(d->ready))
		ready_tick(d->ready, now);
	if (peers_enabled(d) && d->serving) {
		check_membership(d);
		check_leader(d, now);
	}
	for (q = d->queries; q; q = next) {
		uint64_t qid = q->qid;

		next = q->next;
		if (q->kind == Q_ADMIN && q->wait_index &&
		    (repl_commit_index(d->repl) >= q->wait_index ||
		     now >= q->deadline_ms)) {
			char *text = q->wait_text;

			q->wait_text = NULL;
			admin_done(d, q, q->wait_status, text);
			free(text);
			continue;
		}
		if (q->kind == Q_VERIFY) {
			verify_tick(d, q, now);
			if (query_find(d, qid) != q)
				continue; /* finished (and freed) by it */
		}
		if (now < q->deadline_ms)
			continue;
		switch (q->kind) {
		case Q_STATUS:
			status_finish(d, q);
			break;
		case Q_VERIFY:
			if (q->index_known)
				verify_finish(d, q);
			else
				query_reply(d, q,
					    admin_error(0, "the verify point was not "
						 "committed in time (no "
						 "quorum?)"));
			break;
		case Q_ADMIN:
			admin_done(d, q, -ETIMEDOUT,
				   "no answer from the leader in time");
			break;
		case Q_PROBE:
			probe_done(d, q, q->n && q->m[0].got);
			break;
		}
	}
}

int cluster_open(struct daemon *d)
{
	static const Xsr__PeerMsg__MCase kinds[] = {
		XSR__PEER_MSG__M_STATUS_QUERY,	XSR__PEER_MSG__M_STATUS_REPLY,
		XSR__PEER_MSG__M_DIGEST_QUERY,	XSR__PEER_MSG__M_DIGEST_REPLY,
		XSR__PEER_MSG__M_ADMIN_REQUEST, XSR__PEER_MSG__M_ADMIN_REPLY,
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		peers_on(d, kinds[i], recv_msg);
	return 0;
}

void cluster_close(struct daemon *d, void (*cb)(void *arg), void *arg)
{
	while (d->queries) {
		struct query *q = d->queries;

		if (q->conn)
			conn_async_done(q->conn);
		query_free(d, q);
	}
	free(d->digests);
	d->digests = NULL;
	ready_free(d->ready);
	d->ready = NULL;
	peers_close(d, cb, arg);
}
