/*
 * node/cluster_verify.c: `xsadm cluster verify`: a verify entry goes through the
 * log; every replica digests its whole state right after applying it (on
 * a worker thread, from a pinned snapshot), and the asking member
 * compares the digests of every member of the configuration.
 */
#include "node/cluster_int.h"
#include "node/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "consensus/sm.h"
#include "wire/siphash.h"

#define MAX_DIGESTS 16

/* A digest of the whole state right after a verify entry. */
struct digest {
	uint64_t index;
	bool done, failed;
	uint8_t d[16];
};

struct digest_job {
	struct daemon *d;
	uv_work_t work;
	void *pin;
	uint64_t index;
	uint8_t out[16];
	int rc;
};

static void digest_work(uv_work_t *w)
{
	struct digest_job *j = w->data;
	static const uint8_t zero_key[16];
	void *buf = NULL;
	size_t len = 0;

	/* the deterministic serialisation of the pinned state */
	j->rc = snapshot_write(j->pin, &buf, &len);
	if (!j->rc)
		siphash128(zero_key, buf, len, j->out);
	free(buf);
}

static struct digest *digest_slot(struct daemon *d, uint64_t index)
{
	size_t i;

	for (i = 0; i < d->cluster->n_digests; i++)
		if (d->cluster->digests[i].index == index)
			return &d->cluster->digests[i];
	return NULL;
}

static void digest_after(uv_work_t *w, int status)
{
	struct digest_job *j = w->data;
	struct daemon *d = j->d;
	struct digest *dg = digest_slot(d, j->index);

	snapshot_unpin(d, j->pin);
	if (dg) {
		dg->done = true;
		dg->failed = status || j->rc;
		memcpy(dg->d, j->out, 16);
	}
	free(j);
}

void cluster_verify_digest(struct daemon *d, uint64_t index)
{
	struct digest_job *j;
	struct digest *dg;

	if (!d->cluster->digests) {
		d->cluster->digests = calloc(MAX_DIGESTS, sizeof(*d->cluster->digests));
		if (!d->cluster->digests)
			return;
	}
	if (d->cluster->n_digests == MAX_DIGESTS) {
		memmove(d->cluster->digests, d->cluster->digests + 1,
			(MAX_DIGESTS - 1) * sizeof(*d->cluster->digests));
		d->cluster->n_digests--;
	}
	dg = &d->cluster->digests[d->cluster->n_digests++];
	memset(dg, 0, sizeof(*dg));
	dg->index = index;
	j = calloc(1, sizeof(*j));
	if (!j) {
		dg->done = dg->failed = true;
		return;
	}
	j->d = d;
	j->index = index;
	j->pin = snapshot_pin(d);
	j->work.data = j;
	if (!j->pin || uv_queue_work(d->loop, &j->work, digest_work,
				     digest_after)) {
		if (j->pin)
			snapshot_unpin(d, j->pin);
		free(j);
		dg->done = dg->failed = true;
	}
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

void cluster_verify_answer(struct daemon *d, uint64_t from, uint64_t qid,
				uint64_t index)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__DigestReply r = XSR__DIGEST_REPLY__INIT;
	struct digest *dg = digest_slot(d, index);

	r.qid = qid;
	r.index = index;
	r.applied_index = repl_last_applied(d->repl);
	if (dg && dg->done && !dg->failed) {
		r.ready = true;
		r.digest.data = dg->d;
		r.digest.len = 16;
	}
	m.m_case = XSR__PEER_MSG__M_DIGEST_REPLY;
	m.digest_reply = &r;
	peers_send(d, from, &m);
}

static void verify_submitted(struct daemon *d, void *arg, int result)
{
	struct query *q = arg;

	if (result && cluster_query_find(d, q->qid) == q)
		cluster_query_reply(d, q, admin_error(0, "the verify point did not reach the "
				       "log: %s", strerror(-result)));
}

void cluster_verify_finish(struct daemon *d, struct query *q)
{
	json_object *o = admin_ok(), *arr = json_object_new_array();
	const uint8_t *ref = NULL;
	bool agree = true;
	size_t i;

	json_object_object_add(o, "index", admin_u64(q->index));
	for (i = 0; i < q->n; i++) {
		struct qmember *m = &q->m[i];
		json_object *e = json_object_new_object();
		char h[33];

		json_object_object_add(e, "id", admin_u64(m->id));
		json_object_object_add(
			e, "name", json_object_new_string(cluster_member_name(d, m->id)));
		if (m->ready) {
			hex(m->digest, 16, h);
			json_object_object_add(e, "digest",
					       json_object_new_string(h));
			if (!ref)
				ref = m->digest;
			else if (memcmp(ref, m->digest, 16) != 0)
				agree = false;
			json_object_object_add(e, "status",
					       json_object_new_string("ok"));
		} else {
			agree = false;
			json_object_object_add(
				e, "status",
				json_object_new_string(
					!m->got		      ? "unreachable"
					: m->applied < q->index ? "behind"
							      : "no digest"));
			if (m->got)
				json_object_object_add(e, "applied",
						       admin_u64(m->applied));
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "agree", json_object_new_boolean(agree));
	json_object_object_add(o, "members", arr);
	cluster_query_reply(d, q, o);
}

void cluster_verify_tick(struct daemon *d, struct query *q, uint64_t now)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__DigestQuery dq = XSR__DIGEST_QUERY__INIT;
	bool all = true;
	size_t i;

	if (!q->index_known)
		return;
	dq.qid = q->qid;
	dq.index = q->index;
	m.m_case = XSR__PEER_MSG__M_DIGEST_QUERY;
	m.digest_query = &dq;
	for (i = 0; i < q->n; i++) {
		struct qmember *qm = &q->m[i];

		if (qm->ready)
			continue;
		all = false;
		if (qm->id == d->member_id) {
			struct digest *dg = digest_slot(d, q->index);

			qm->got = true;
			qm->applied = repl_last_applied(d->repl);
			if (dg && dg->done && !dg->failed) {
				qm->ready = true;
				memcpy(qm->digest, dg->d, 16);
			}
		} else if (!qm->asked || now - qm->asked_ms >= 100) {
			qm->asked = true;
			qm->asked_ms = now;
			peers_send(d, qm->id, &m);
		}
	}
	if (all)
		cluster_verify_finish(d, q);
}

enum conn_verdict cluster_verify_start(struct daemon *d, struct conn *c,
				      struct conn_req *r, const char **argv,
				unsigned int argc)
{
	uint64_t ids[MAX_MEMBERS];
	size_t n = cluster_config_members(d, ids, MAX_MEMBERS), i;
	struct query *q = cluster_query_new(d, Q_VERIFY, c, r, VERIFY_WAIT_MS);
	struct sm_origin o;
	void *buf;
	size_t len;
	int rc;

	if (!q)
		return admin_reply_now(c, r, admin_error(0, "out of memory"));
	for (i = 0; i < n; i++)
		q->m[q->n++].id = ids[i];
	if (getrandom(&q->nonce, sizeof(q->nonce), 0) != sizeof(q->nonce))
		q->nonce = uv_hrtime();
	o = submit_own_origin(d);
	rc = sm_entry_verify(&o, q->nonce, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
				   verify_submitted, q);
	if (rc) {
		q->conn = NULL; /* answered here */
		q->req = NULL;
		cluster_query_free(d, q);
		return admin_reply_now(c, r, admin_error(0, "cannot submit: %s",
					    strerror(-rc)));
	}
	return CONN_ASYNC;
}
