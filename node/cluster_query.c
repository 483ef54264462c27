/*
 * node/cluster_query.c: admin queries that wait for peers (`cluster
 * status`, `verify`, membership commands forwarded to the leader, probes):
 * each is answered (cluster_query_reply) or freed exactly once.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include "wire/xs_msg.h"

struct query *cluster_query_new(struct daemon *d, enum qkind kind,
			       struct conn *c, struct conn_req *r,
			       unsigned wait_ms)
{
	struct query *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->kind = kind;
	q->qid = ++d->cluster->next_qid;
	q->d = d;
	q->conn = c;
	q->req = r;
	q->deadline_ms = uv_now(d->loop) + wait_ms;
	q->next = d->cluster->queries;
	d->cluster->queries = q;
	return q;
}

struct query *cluster_query_find(struct daemon *d, uint64_t qid)
{
	struct query *q;

	for (q = d->cluster->queries; q; q = q->next)
		if (q->qid == qid)
			return q;
	return NULL;
}

void cluster_query_free(struct daemon *d, struct query *q)
{
	struct query **pp = &d->cluster->queries;

	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	free(q->wait_text);
	free(q->req);
	free(q);
}

enum conn_verdict cluster_query_settle(struct daemon *d, struct query *q,
					struct conn *c, struct conn_req *r)
{
	json_object *o = q->sync_result;

	q->in_call = false;
	if (!o)
		return CONN_ASYNC;
	/* answered inside the call: r is still the caller's */
	q->req = NULL;
	q->conn = NULL;
	cluster_query_free(d, q);
	return admin_reply_now(c, r, o);
}

/* Answer the admin client (if any) with a JSON object, and forget q. */
void cluster_query_reply(struct daemon *d, struct query *q, json_object *o)
{
	if (q->in_call) {
		/* cluster_control() answers it (the request is its own) */
		q->sync_result = o;
		return;
	}
	if (q->conn) {
		admin_send(q->conn, q->req, o);
		conn_async_done(q->conn);
	} else {
		json_object_put(o);
	}
	cluster_query_free(d, q);
}
