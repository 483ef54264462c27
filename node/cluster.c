/*
 * node/cluster.c: the daemon's part of the cluster (node/cluster.h): the
 * peer messages of admin queries, catching up before serving
 * (node/ready.c), probes, the tick's warnings, and the table of the
 * admin commands behind `xsadm cluster ...`, run by the files of
 * node/cluster_int.h.
 */
#include "node/cluster_int.h"
#include "node/backup.h"

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

/*
 * Every member we know of: the Raft configuration and the table (which
 * follows it, cluster_member.c: a row the configuration lacks is an add
 * under way, or one the leader is about to remove).
 */
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
 * (not a row of the table that it lacks).
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

	cluster_query_free(d, q);
	cb(d, arg, live);
}

int cluster_probe(struct daemon *d, const char *host,
		  void (*cb)(struct daemon *d, void *arg, bool live),
		  void *arg)
{
	const struct store_member *sm = store_member_by_name(d->store, host);
	bool self = strcmp(host, d->host) == 0;
	struct query *q;

	q = cluster_query_new(d, Q_PROBE, NULL, NULL, self || !sm ? 0 : 1000);
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

#define APPLIED_ASK_MS 20

static void applied_ask(struct daemon *d, struct query *q, uint64_t now)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__StatusQuery sq = XSR__STATUS_QUERY__INIT;

	sq.qid = q->qid;
	m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
	m.status_query = &sq;
	q->m[0].asked_ms = now;
	if (peers_enabled(d))
		peers_send(d, q->m[0].id, &m);
}

static void applied_done(struct daemon *d, struct query *q, int status)
{
	void (*cb)(struct daemon *, void *, int) = q->applied_cb;
	void *arg = q->applied_arg;

	cluster_query_free(d, q);
	cb(d, arg, status);
}

int cluster_wait_applied(struct daemon *d, const char *host, uint64_t index,
			 unsigned int timeout_ms,
			 void (*cb)(struct daemon *d, void *arg, int status),
			 void *arg)
{
	const struct store_member *sm = store_member_by_name(d->store, host);
	struct query *q = cluster_query_new(d, Q_APPLIED, NULL, NULL,
					    timeout_ms);

	if (!q)
		return -ENOMEM;
	q->applied_cb = cb;
	q->applied_arg = arg;
	q->index = index;
	q->n = 1;
	if (strcmp(host, d->host) == 0) {
		q->m[0].got = true; /* answered at the next tick */
	} else if (!sm) {
		q->m[0].got = true;
		q->wait_status = -EHOSTUNREACH;
	} else {
		q->m[0].id = sm->id;
		applied_ask(d, q, uv_now(d->loop));
	}
	return 0;
}

static void snapshot_noop_done(struct daemon *d, void *arg, int result)
{
	if (result)
		log_msg(4, "the entry asking for a snapshot failed: %s",
			strerror(-result));
}

int cluster_snapshot_now(struct daemon *d)
{
	struct sm_origin o;
	void *buf;
	size_t len;
	int rc;

	/* libraft snapshots after an apply: give it one (a no-op entry) */
	repl_snapshot_now(d->repl);
	o = submit_own_origin(d);
	rc = sm_entry_noop(&o, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
				   snapshot_noop_done, NULL);
	if (!rc)
		log_msg(5, "snapshot requested");
	return rc;
}

/* `cluster snapshot` (the rest: the files of cluster_int.h). */
static enum conn_verdict cmd_snapshot(struct daemon *d, struct conn *c,
				      struct conn_req *r, const char **argv,
				      unsigned int argc)
{
	if (cluster_snapshot_now(d))
		return admin_reply_now(c, r, admin_error(0, "cannot submit"));
	return admin_reply_now(c, r, admin_ok());
}

/* The commands: name, argument count (argv[0] included; 0: any). */
static const struct cluster_cmd {
	const char *name;
	unsigned int argc;
	enum conn_verdict (*run)(struct daemon *d, struct conn *c,
				 struct conn_req *r, const char **argv,
				 unsigned int argc);
} cluster_cmds[] = {
	{"status", 1, cluster_status_start},
	{"health", 0, cluster_health_start},
	{"verify", 1, cluster_verify_start},
	{"hosts", 1, cluster_hosts_list},
	{"read", 0, cluster_hosts_read},
	{"dir", 0, cluster_hosts_read},
	{"perms", 0, cluster_hosts_read},
	{"add", 0, cluster_member_command},
	{"remove", 0, cluster_member_command},
	{"promote", 0, cluster_member_command},
	{"demote", 0, cluster_member_command},
	{"transfer", 0, cluster_member_command},
	{"snapshot", 1, cmd_snapshot},
	{"backup", 2, backup_command},
	{"recover", 1, cluster_recover_start},
};

enum conn_verdict cluster_control(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **argv,
				  unsigned int argc)
{
	const char *cmd = argc ? argv[0] : "";
	static const char *const need_quorum[] = {
		"verify", "add", "remove", "promote", "demote", "transfer",
		"snapshot"};
	size_t i;

	for (i = 0; d->no_quorum_since &&
		    i < sizeof(need_quorum) / sizeof(*need_quorum); i++)
		if (!strcmp(cmd, need_quorum[i])) {
			log_msg(4, "cluster %s refused: standalone mode (no "
				   "quorum)", cmd);
			return admin_reply_now(c, r, admin_error(ENOTCONN,
				"cluster %s: refused in standalone mode (no "
				"quorum since %" PRIu64 ", Unix time)", cmd,
				d->no_quorum_since));
		}
	for (i = 0; i < sizeof(cluster_cmds) / sizeof(*cluster_cmds); i++)
		if (!strcmp(cmd, cluster_cmds[i].name) &&
		    (!cluster_cmds[i].argc || argc == cluster_cmds[i].argc))
			return cluster_cmds[i].run(d, c, r, argv, argc);
	return admin_reply_now(
		c, r,
		admin_error(0,
			    "unknown cluster command \"%s\" (try: status, "
			    "health, verify, hosts, read, dir, perms, add, remove, "
			    "promote, demote, transfer, snapshot, backup, "
			    "recover)",
			    cmd));
}

/* ---- The peer channel's messages ---------------------------------- */

static void recv_msg(struct daemon *d, uint64_t from, const Xsr__PeerMsg *m)
{
	struct query *q;
	size_t i;

	switch (m->m_case) {
	case XSR__PEER_MSG__M_STATUS_QUERY:
		cluster_status_answer(d, from, m->status_query->qid);
		break;
	case XSR__PEER_MSG__M_STATUS_REPLY:
		if (!m->status_reply->status)
			break;
		if (d->cluster->ready &&
		    ready_answer(d->cluster->ready, from, m->status_reply->qid,
				 m->status_reply->status->read_index))
			break;
		q = cluster_query_find(d, m->status_reply->qid);
		if (q && q->kind == Q_PROBE && q->n && q->m[0].id == from) {
			probe_done(d, q, true);
			break;
		}
		if (q && q->kind == Q_APPLIED && q->m[0].id == from) {
			if (m->status_reply->status->applied_index >= q->index)
				applied_done(d, q, 0);
			break;
		}
		if (!q || (q->kind != Q_STATUS && q->kind != Q_HEALTH))
			break;
		for (i = 0; i < q->n; i++)
			if (q->m[i].id == from)
				cluster_status_record(&q->m[i],
					      m->status_reply->status);
		if (q->kind == Q_HEALTH)
			cluster_health_tick(d, q, uv_now(d->loop));
		else if (cluster_status_complete(q))
			cluster_status_finish(d, q); /* everybody answered */
		break;
	case XSR__PEER_MSG__M_DIGEST_QUERY:
		cluster_verify_answer(d, from, m->digest_query->qid,
				    m->digest_query->index);
		break;
	case XSR__PEER_MSG__M_DIGEST_REPLY:
		q = cluster_query_find(d, m->digest_reply->qid);
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
		cluster_member_request(d, from, m->admin_request);
		break;
	case XSR__PEER_MSG__M_ADMIN_REPLY:
		cluster_member_reply(d, from, m->admin_reply);
		break;
	case XSR__PEER_MSG__M_CONTACT_QUERY:
		cluster_contact_answer(d, from, m->contact_query);
		break;
	case XSR__PEER_MSG__M_CONTACT_REPLY:
		cluster_contact_record(d, from, m->contact_reply);
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
	cluster_verify_digest(d, index);
	if (origin != d->member_id)
		return;
	for (q = d->cluster->queries; q; q = q->next)
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

	*qid = ++d->cluster->next_qid;
	sq.qid = *qid;
	m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
	m.status_query = &sq;
	return peers_send(d, leader, &m);
}

static void env_done(void *arg, int status)
{
	struct daemon *d = arg;

	d->cluster->on_ready(d, status);
}

static bool env_waited(void *arg)
{
	struct daemon *d = arg;

	return d->cluster->on_cold(d);
}

int cluster_wait_ready(struct daemon *d,
		       void (*on_ready)(struct daemon *d, int status),
		       bool (*on_cold)(struct daemon *d))
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
		.waited = d->cfg.cluster.enabled && on_cold ? env_waited : NULL,
		.wait_ms = d->cfg.cluster.cold_start_wait_ms,
	};

	d->cluster->on_ready = on_ready;
	d->cluster->contact_since_ms = uv_now(d->loop);
	d->cluster->on_cold = on_cold;
	d->cluster->ready = ready_start(&env, d->cfg.ready_timeout_ms, uv_now(d->loop));
	return d->cluster->ready ? 0 : -ENOMEM;
}

/* ---- Tick, open, close ------------------------------------------------- */

/*
 * A member removed from the configuration gets no more changes: its
 * clients would read an aging tree. Say so, once, loudly.
 */
static void check_membership(struct daemon *d)
{
	bool in = cluster_member_role(d, d->member_id) >= 0;

	if (in)
		d->cluster->was_in_config = true;
	if (in || !d->cluster->was_in_config || d->cluster->removed_warned)
		return;
	d->cluster->removed_warned = true;
	log_msg(3, "this member (%" PRIu64 ", %s) was removed from the "
		   "cluster configuration: it receives no more changes and its "
		   "clients read an aging tree; stop this daemon",
		d->member_id, d->host);
}

/* A member cut off from its leader (partitioned, removed) says so. */
static void check_leader(struct daemon *d, uint64_t now)
{
	if (repl_leader(d->repl) || !d->cluster->no_leader_since_ms) {
		if (repl_leader(d->repl) && d->cluster->no_leader_warned)
			log_msg(5, "leader %" PRIu64 " known again",
				repl_leader(d->repl));
		d->cluster->no_leader_since_ms = repl_leader(d->repl) ? 0 : now;
		d->cluster->no_leader_warned = false;
		d->cluster->no_leader_log_ms = now + 10000;
		return;
	}
	if (now < d->cluster->no_leader_log_ms)
		return;
	d->cluster->no_leader_log_ms = now + 30000;
	d->cluster->no_leader_warned = true;
	log_msg(4,
		"no leader for %" PRIu64 " s: changes fail with EIO after "
		"the commit timeout, reads may be stale (partitioned? removed "
		"from the cluster?)",
		(now - d->cluster->no_leader_since_ms) / 1000);
}

void cluster_tick(struct daemon *d, uint64_t now)
{
	struct query *q, *next;

	if (d->cluster->ready && !ready_finished(d->cluster->ready))
		ready_tick(d->cluster->ready, now);
	if (peers_enabled(d) && d->serving) {
		check_membership(d);
		check_leader(d, now);
		cluster_member_reconcile(d, now);
	}
	cluster_member_later(d, false);
	for (q = d->cluster->queries; q; q = next) {
		uint64_t qid = q->qid;

		next = q->next;
		if (q->kind == Q_ADMIN && q->wait_index &&
		    (repl_commit_index(d->repl) >= q->wait_index ||
		     now >= q->deadline_ms)) {
			char *text = q->wait_text;

			q->wait_text = NULL;
			cluster_admin_done(d, q, q->wait_status, text);
			free(text);
			continue;
		}
		if (q->kind == Q_HEALTH) {
			cluster_health_tick(d, q, now); /* answers at the deadline */
			continue;
		}
		if (q->kind == Q_APPLIED) {
			if (q->m[0].got)
				applied_done(d, q, q->wait_status);
			else if (now >= q->deadline_ms)
				applied_done(d, q, -ETIMEDOUT);
			else if (now - q->m[0].asked_ms >= APPLIED_ASK_MS)
				applied_ask(d, q, now);
			continue;
		}
		if (q->kind == Q_VERIFY) {
			cluster_verify_tick(d, q, now);
			if (cluster_query_find(d, qid) != q)
				continue; /* finished (and freed) by it */
		}
		if (now < q->deadline_ms)
			continue;
		switch (q->kind) {
		case Q_STATUS:
			cluster_status_finish(d, q);
			break;
		case Q_VERIFY:
			if (q->index_known)
				cluster_verify_finish(d, q);
			else
				cluster_query_reply(d, q,
					    admin_error(0, "the verify point was not "
						 "committed in time (no "
						 "quorum?)"));
			break;
		case Q_ADMIN:
			cluster_admin_done(d, q, -ETIMEDOUT,
				   "no answer from the leader in time");
			break;
		case Q_PROBE:
			probe_done(d, q, q->n && q->m[0].got);
			break;
		case Q_CONTACT:
			cluster_contact_finish(d, q);
			break;
		case Q_HEALTH:
		case Q_APPLIED:
			break; /* above */
		}
	}
}

int cluster_open(struct daemon *d)
{
	static const Xsr__PeerMsg__MCase kinds[] = {
		XSR__PEER_MSG__M_STATUS_QUERY,	XSR__PEER_MSG__M_STATUS_REPLY,
		XSR__PEER_MSG__M_DIGEST_QUERY,	XSR__PEER_MSG__M_DIGEST_REPLY,
		XSR__PEER_MSG__M_ADMIN_REQUEST, XSR__PEER_MSG__M_ADMIN_REPLY,
		XSR__PEER_MSG__M_CONTACT_QUERY, XSR__PEER_MSG__M_CONTACT_REPLY,
	};
	size_t i;

	d->cluster = calloc(1, sizeof(*d->cluster));
	if (!d->cluster)
		return -ENOMEM;
	d->cluster->contact_since_ms = uv_now(d->loop);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		peers_on(d, kinds[i], recv_msg);
	return 0;
}

void cluster_close(struct daemon *d, void (*cb)(void *arg), void *arg)
{
	cluster_member_later(d, true);
	while (d->cluster->queries) {
		struct query *q = d->cluster->queries;

		if (q->conn)
			conn_async_done(q->conn);
		cluster_query_free(d, q);
	}
	free(d->cluster->digests);
	d->cluster->digests = NULL;
	ready_free(d->cluster->ready);
	d->cluster->ready = NULL;
	peers_close(d, cb, arg);
}

void cluster_free(struct daemon *d)
{
	free(d->cluster);
	d->cluster = NULL;
}
