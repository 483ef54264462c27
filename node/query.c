/*
 * node/query.c: admin queries that wait for peers (`cluster status`,
 * `verify`, membership commands forwarded to the leader, probes), and the
 * JSON replies of every admin command: objects with "ok" true or false
 * (and "error"); xsadm prints them as tables, or passes them through with
 * --json.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include "wire/xs_msg.h"

struct query *query_new(struct daemon *d, enum qkind kind,
			       struct conn *c, struct conn_req *r,
			       unsigned wait_ms)
{
	struct query *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->kind = kind;
	q->qid = ++d->next_qid;
	q->d = d;
	q->conn = c;
	q->req = r;
	q->deadline_ms = uv_now(d->loop) + wait_ms;
	q->next = d->queries;
	d->queries = q;
	return q;
}

struct query *query_find(struct daemon *d, uint64_t qid)
{
	struct query *q;

	for (q = d->queries; q; q = q->next)
		if (q->qid == qid)
			return q;
	return NULL;
}

void query_free(struct daemon *d, struct query *q)
{
	struct query **pp = &d->queries;

	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	free(q->wait_text);
	free(q->req);
	free(q);
}

/* Answer the admin client (if any) with a JSON object, and forget q. */
void query_reply(struct daemon *d, struct query *q, json_object *o)
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
	query_free(d, q);
}

json_object *admin_error(int err, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	bool known;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	if (err)
		json_object_object_add(o, "errno", json_object_new_string(
							   wire_errno_name(err, &known)));
	return o;
}

json_object *admin_ok(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

void admin_send(struct conn *c, struct conn_req *r, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o,
							  JSON_C_TO_STRING_PLAIN);

	conn_reply(c, r, text, strlen(text) + 1);
	json_object_put(o);
}

/* Reply at once to a CONTROL request (not async). */
enum conn_verdict admin_reply_now(struct conn *c, struct conn_req *r,
				   json_object *o)
{
	admin_send(c, r, o);
	return CONN_DONE;
}

json_object *admin_u64(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}
