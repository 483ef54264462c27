/*
 * node/cluster_health.c: `xsadm cluster health`: one verdict for
 * monitoring. Healthy when there is a leader, this member is in the
 * configuration, every voter answers a status query within the timeout,
 * and this member has applied what the leader had committed when it
 * answered (its read index when it has one: consensus/repl.h). Healthy is
 * answered as soon as it holds; anything else only at the timeout, with
 * the first reason that still holds then.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_DEFAULT_MS 1000
#define HEALTH_MAX_MS 60000

/* The leader's commit index as it answered, into *index: false if unknown. */
static bool leader_commit(struct daemon *d, struct query *q, uint64_t leader,
			  uint64_t *index)
{
	size_t i;

	if (leader == d->member_id) {
		if (repl_read_index(d->repl, index))
			*index = repl_commit_index(d->repl);
		return true;
	}
	for (i = 0; i < q->n; i++)
		if (q->m[i].id == leader && q->m[i].got) {
			/* a new leader's commit index may be stale: its read
			 * index is 0 then, and so is the wait */
			*index = q->m[i].st.read_index ? q->m[i].st.read_index
						       : q->m[i].st.commit_index;
			return true;
		}
	return false;
}

const char *cluster_health_verdict(const struct health_facts *f, char *buf,
				   size_t len)
{
	if (!f->leader)
		return "no leader";
	if (!f->in_config)
		return "this member is not in the configuration (removed?)";
	if (f->silent_voter) {
		snprintf(buf, len,
			 "member %" PRIu64 " (%s) did not answer within %u ms",
			 f->silent_voter, f->silent_name, f->timeout_ms);
		return buf;
	}
	if (!f->commit_known) {
		snprintf(buf, len,
			 "the leader (member %" PRIu64 ", %s) did not answer "
			 "within %u ms",
			 f->leader, f->leader_name, f->timeout_ms);
		return buf;
	}
	if (f->applied < f->commit) {
		snprintf(buf, len,
			 "this member is behind: applied %" PRIu64
			 ", leader's commit %" PRIu64,
			 f->applied, f->commit);
		return buf;
	}
	return NULL;
}

/* Why q's cluster is not healthy (into buf), or NULL if it is. */
static const char *health_reason(struct daemon *d, struct query *q,
				 char *buf, size_t len)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t ns = repl_servers(d->repl, srv, MAX_MEMBERS), i, k;
	struct health_facts f = {
		.leader = repl_leader(d->repl),
		.timeout_ms = q->timeout_ms,
	};

	if (f.leader) {
		f.leader_name = cluster_member_name(d, f.leader);
		f.in_config = cluster_member_role(d, d->member_id) >= 0;
	}
	for (k = 0; f.in_config && k < ns && !f.silent_voter; k++) {
		if (srv[k].role != REPL_VOTER)
			continue;
		for (i = 0; i < q->n && q->m[i].id != srv[k].id; i++)
			;
		if (i == q->n || !q->m[i].got) {
			f.silent_voter = srv[k].id;
			f.silent_name = cluster_member_name(d, srv[k].id);
		}
	}
	if (f.in_config && !f.silent_voter) {
		f.commit_known = leader_commit(d, q, f.leader, &f.commit);
		f.applied = repl_last_applied(d->repl);
	}
	return cluster_health_verdict(&f, buf, len);
}

static json_object *health_members(struct daemon *d, struct query *q)
{
	json_object *arr = json_object_new_array();
	size_t i;
	int role;

	for (i = 0; i < q->n; i++) {
		const struct qmember *m = &q->m[i];
		json_object *e = json_object_new_object();

		role = cluster_member_role(d, m->id);
		json_object_object_add(e, "id", admin_u64(m->id));
		json_object_object_add(
			e, "name",
			json_object_new_string(cluster_member_name(d, m->id)));
		json_object_object_add(
			e, "role",
			json_object_new_string(role < 0 ? "none"
							: repl_role_name(role)));
		json_object_object_add(e, "answered",
				       json_object_new_boolean(m->got));
		if (m->got) {
			json_object_object_add(
				e, "state", json_object_new_string(m->state));
			json_object_object_add(e, "commit",
					       admin_u64(m->st.commit_index));
			json_object_object_add(e, "applied",
					       admin_u64(m->st.applied_index));
		}
		json_object_array_add(arr, e);
	}
	return arr;
}

void cluster_health_tick(struct daemon *d, struct query *q, uint64_t now)
{
	char buf[200];
	const char *why = health_reason(d, q, buf, sizeof(buf));
	json_object *o;

	if (why && now < q->deadline_ms)
		return; /* it may yet become healthy */
	o = admin_ok();
	json_object_object_add(o, "healthy", json_object_new_boolean(!why));
	json_object_object_add(o, "reason",
			       why ? json_object_new_string(why) : NULL);
	json_object_object_add(o, "member", admin_u64(d->member_id));
	json_object_object_add(o, "leader", admin_u64(repl_leader(d->repl)));
	json_object_object_add(o, "applied",
			       admin_u64(repl_last_applied(d->repl)));
	json_object_object_add(o, "timeout_ms", admin_u64(q->timeout_ms));
	json_object_object_add(o, "members", health_members(d, q));
	cluster_query_reply(d, q, o);
}

/* `cluster health [TIMEOUT-MS]` */
enum conn_verdict cluster_health_start(struct daemon *d, struct conn *c,
				       struct conn_req *r, const char **argv,
				       unsigned int argc)
{
	struct repl_server srv[MAX_MEMBERS];
	size_t ns = repl_servers(d->repl, srv, MAX_MEMBERS), i;
	unsigned long timeout_ms = HEALTH_DEFAULT_MS;
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__StatusQuery sq = XSR__STATUS_QUERY__INIT;
	Xsr__MemberStatus own;
	struct query *q;
	char *end;

	if (argc > 2)
		return admin_reply_now(c, r,
				       admin_error(0, "usage: health [TIMEOUT-MS]"));
	if (argc == 2) {
		timeout_ms = strtoul(argv[1], &end, 10);
		if (!*argv[1] || *end || timeout_ms == 0 ||
		    timeout_ms > HEALTH_MAX_MS)
			return admin_reply_now(
				c, r,
				admin_error(0, "the timeout is 1 to %u ms",
					    HEALTH_MAX_MS));
	}
	q = cluster_query_new(d, Q_HEALTH, c, r, (unsigned)timeout_ms);
	if (!q)
		return admin_reply_now(c, r, admin_error(0, "out of memory"));
	q->timeout_ms = (unsigned)timeout_ms;
	sq.qid = q->qid;
	m.m_case = XSR__PEER_MSG__M_STATUS_QUERY;
	m.status_query = &sq;
	/* the configuration's members: a removed one's answer is no news */
	for (i = 0; i < ns && q->n < MAX_MEMBERS; i++) {
		q->m[q->n++].id = srv[i].id;
		if (srv[i].id == d->member_id) {
			cluster_status_own(d, &own);
			cluster_status_record(&q->m[q->n - 1], &own);
		} else {
			peers_send(d, srv[i].id, &m);
		}
	}
	q->in_call = true; /* healthy at once: a cluster of one */
	cluster_health_tick(d, q, uv_now(d->loop));
	return cluster_query_settle(d, q, c, r);
}
