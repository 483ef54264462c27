/*
 * node/cluster_contact.c: how long has the cluster heard nothing from a
 * host's member (cluster_contact(), node/cluster.h)? Every member of the
 * configuration but that one is asked (ContactQuery on the peer channel)
 * how long ago it last received anything from it; `domain adopt`
 * (node/migrate.c) judges from the answers whether the host may still run.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CONTACT_WAIT_MS 1000

/*
 * How long this member has heard nothing from member id: neither a Raft
 * message (consensus/repl.h) nor a peer frame (node/peers.h). Counted
 * from this member's start if it never heard from it: a member that
 * just started knows nothing of the time before.
 */
static uint64_t silent_ms(struct daemon *d, uint64_t id)
{
	uint64_t now = uv_now(d->loop), last = d->cluster->contact_since_ms;
	uint64_t raft = repl_heard_ms(d->repl, id),
		 peer = peers_heard_ms(d, id);

	if (raft > last)
		last = raft;
	if (peer > last)
		last = peer;
	return now > last ? now - last : 0;
}

void cluster_contact_answer(struct daemon *d, uint64_t from,
			    const Xsr__ContactQuery *cq)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__ContactReply cr = XSR__CONTACT_REPLY__INIT;

	cr.qid = cq->qid;
	cr.member = cq->member;
	cr.silent_ms = silent_ms(d, cq->member);
	m.m_case = XSR__PEER_MSG__M_CONTACT_REPLY;
	m.contact_reply = &cr;
	(void)peers_send(d, from, &m); /* unanswered: the asker times out */
}

/* Tell the caller what the witnesses said, and forget q. */
void cluster_contact_finish(struct daemon *d, struct query *q)
{
	struct cluster_contact res = {.member = q->subject,
				      .silent_ms = UINT64_MAX,
				      .witness = "",
				      .missing = NULL};
	void (*cb)(struct daemon *, void *, const struct cluster_contact *) =
	    q->contact_cb;
	void *arg = q->contact_arg;
	char witness[72] = "", missing[72] = "";
	size_t i;

	for (i = 0; i < q->n; i++) {
		const struct qmember *w = &q->m[i];

		if (!w->got) {
			if (!missing[0])
				snprintf(missing, sizeof(missing), "%s",
					 cluster_member_name(d, w->id));
			continue;
		}
		if (w->silent_ms < res.silent_ms) {
			res.silent_ms = w->silent_ms;
			snprintf(witness, sizeof(witness), "%s",
				 cluster_member_name(d, w->id));
		}
	}
	res.witness = witness;
	res.missing = missing[0] ? missing : NULL;
	cluster_query_free(d, q);
	cb(d, arg, &res);
}

void cluster_contact_record(struct daemon *d, uint64_t from,
			    const Xsr__ContactReply *cr)
{
	struct query *q = cluster_query_find(d, cr->qid);
	size_t i;
	bool all = true;

	if (!q || q->kind != Q_CONTACT || cr->member != q->subject)
		return;
	for (i = 0; i < q->n; i++) {
		if (q->m[i].id == from && !q->m[i].got) {
			q->m[i].got = true;
			q->m[i].silent_ms = cr->silent_ms;
		}
		all = all && q->m[i].got;
	}
	if (all)
		cluster_contact_finish(d, q);
}

int cluster_contact(struct daemon *d, const char *host,
		    void (*cb)(struct daemon *d, void *arg,
			       const struct cluster_contact *c),
		    void *arg)
{
	const struct store_member *sm = store_member_by_name(d->store, host);
	uint64_t ids[MAX_MEMBERS];
	size_t n, i;
	bool all = true;
	struct query *q;

	q = cluster_query_new(d, Q_CONTACT, NULL, NULL, CONTACT_WAIT_MS);
	if (!q)
		return -ENOMEM;
	q->contact_cb = cb;
	q->contact_arg = arg;
	q->subject = sm ? sm->id : 0;
	n = q->subject ? cluster_config_members(d, ids, MAX_MEMBERS) : 0;
	for (i = 0; i < n; i++) {
		struct qmember *w;

		if (ids[i] == q->subject)
			continue;
		w = &q->m[q->n++];
		w->id = ids[i];
		if (ids[i] == d->member_id) {
			w->got = true;
			w->silent_ms = silent_ms(d, q->subject);
		} else {
			Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
			Xsr__ContactQuery cq = XSR__CONTACT_QUERY__INIT;

			cq.qid = q->qid;
			cq.member = q->subject;
			m.m_case = XSR__PEER_MSG__M_CONTACT_QUERY;
			m.contact_query = &cq;
			(void)peers_send(d, ids[i], &m); /* else: no answer */
			all = false;
		}
	}
	/* nobody to wait for: answered at the next tick, not from here */
	if (all)
		q->deadline_ms = uv_now(d->loop);
	return 0;
}
