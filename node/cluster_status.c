/*
 * node/cluster_status.c: `xsadm cluster status`: this member's state, and every
 * other member's, asked over the peer channel (STATUS_WAIT_MS at most).
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/datadir.h"
#include "version.h"

void cluster_status_own(struct daemon *d, Xsr__MemberStatus *st)
{
	time_t when;

	xsr__member_status__init(st);
	st->id = d->member_id;
	st->name = d->host;
	st->state = (char *)repl_state_name(d->repl);
	st->term = repl_term(d->repl);
	st->commit_index = repl_commit_index(d->repl);
	st->applied_index = repl_last_applied(d->repl);
	st->last_index = repl_last_index(d->repl);
	st->leader = repl_leader(d->repl);
	st->serving = d->serving;
	if (repl_read_index(d->repl, &st->read_index))
		st->read_index = 0;
	st->version = (char *)XSR_VERSION;
	if (datadir_size(d->cfg.data_dir, &st->data_bytes))
		st->data_bytes = 0;
	st->snapshot_index = repl_snapshot_index(d->repl);
	st->last_error = (char *)log_last_error(&when);
	st->last_error_time = (uint64_t)when;
	st->no_quorum_since = d->no_quorum_since;
}

void cluster_status_answer(struct daemon *d, uint64_t from, uint64_t qid)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__StatusReply r = XSR__STATUS_REPLY__INIT;
	Xsr__MemberStatus st;

	cluster_status_own(d, &st);
	r.qid = qid;
	r.status = &st;
	m.m_case = XSR__PEER_MSG__M_STATUS_REPLY;
	m.status_reply = &r;
	peers_send(d, from, &m);
}

void cluster_status_finish(struct daemon *d, struct query *q)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t ns = repl_servers(d->repl, srv, MAX_MEMBERS), i, k;
	json_object *o = admin_ok(), *arr = json_object_new_array();

	json_object_object_add(o, "member", admin_u64(d->member_id));
	json_object_object_add(o, "leader", admin_u64(repl_leader(d->repl)));
	json_object_object_add(o, "term", admin_u64(repl_term(d->repl)));
	for (i = 0; i < q->n; i++) {
		struct qmember *m = &q->m[i];
		const struct store_member *sm =
			store_member_by_id(d->store, m->id);
		json_object *e = json_object_new_object();
		const char *role = "none";
		uint64_t match;

		for (k = 0; k < ns; k++)
			if (srv[k].id == m->id)
				role = repl_role_name(srv[k].role);
		json_object_object_add(e, "id", admin_u64(m->id));
		json_object_object_add(
			e, "name",
			json_object_new_string(cluster_member_name(d, m->id)));
		json_object_object_add(e, "role", json_object_new_string(role));
		json_object_object_add(e, "reachable",
				       json_object_new_boolean(m->got));
		if (sm) {
			json_object_object_add(
				e, "raft",
				json_object_new_string(sm->raft_address));
			json_object_object_add(
				e, "peer",
				json_object_new_string(sm->peer_address));
		}
		if (m->got) {
			json_object_object_add(
				e, "state", json_object_new_string(m->state));
			json_object_object_add(e, "term", admin_u64(m->st.term));
			json_object_object_add(e, "commit",
					       admin_u64(m->st.commit_index));
			json_object_object_add(e, "applied",
					       admin_u64(m->st.applied_index));
			json_object_object_add(
				e, "serving",
				json_object_new_boolean(m->st.serving));
			json_object_object_add(
				e, "version",
				json_object_new_string(m->st.version));
			json_object_object_add(e, "data_bytes",
					       admin_u64(m->st.data_bytes));
			json_object_object_add(e, "snapshot",
					       admin_u64(m->st.snapshot_index));
			json_object_object_add(
				e, "last_error",
				json_object_new_string(m->st.last_error));
			json_object_object_add(e, "last_error_time",
					       admin_u64(m->st.last_error_time));
			json_object_object_add(e, "no_quorum_since",
					       admin_u64(m->st.no_quorum_since));
		}
		if (repl_match_index(d->repl, m->id, &match) == 0)
			json_object_object_add(e, "match", admin_u64(match));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "members", arr);
	cluster_query_reply(d, q, o);
}

bool cluster_status_complete(const struct query *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (!q->m[i].got)
			return false;
	return true;
}

void cluster_status_record(struct qmember *m, const Xsr__MemberStatus *st)
{
	m->st = *st;
	snprintf(m->name, sizeof(m->name), "%s", st->name ? st->name : "");
	snprintf(m->state, sizeof(m->state), "%s",
		 st->state ? st->state : "");
	/* a member older than these fields leaves them empty */
	snprintf(m->version, sizeof(m->version), "%s",
		 st->version ? st->version : "");
	snprintf(m->last_error, sizeof(m->last_error), "%s",
		 st->last_error ? st->last_error : "");
	m->st.name = m->name;
	m->st.state = m->state;
	m->st.version = m->version;
	m->st.last_error = m->last_error;
	m->got = true;
}

enum conn_verdict cluster_status_start(struct daemon *d, struct conn *c,
				      struct conn_req *r, const char **argv,
				unsigned int argc)
{
	uint64_t ids[MAX_MEMBERS];
	size_t n = cluster_all_members(d, ids, MAX_MEMBERS), i;
	struct query *q = cluster_query_new(d, Q_STATUS, c, r, STATUS_WAIT_MS);
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__StatusQuery sq = XSR__STATUS_QUERY__INIT;
	Xsr__MemberStatus own;

	if (!q)
		return admin_reply_now(c, r, admin_error(0, "out of memory"));
	sq.qid = q->qid;
	m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
	m.status_query = &sq;
	for (i = 0; i < n; i++) {
		q->m[q->n++].id = ids[i];
		if (ids[i] == d->member_id) {
			cluster_status_own(d, &own);
			cluster_status_record(&q->m[q->n - 1], &own);
		} else {
			peers_send(d, ids[i], &m);
		}
	}
	if (cluster_status_complete(q)) {
		/* alone: answer now */
		q->in_call = true;
		cluster_status_finish(d, q);
		return cluster_query_settle(d, q, c, r);
	}
	return CONN_ASYNC;
}
