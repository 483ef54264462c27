/*
 * node/cluster_int.h: what the files of the cluster module share. Not a
 * public header: the rest of the daemon reaches them through daemon.h.
 *
 *   cluster.c  the peer channel's messages, membership commands (run on
 *              the leader), readiness, probes, the tick
 *   query.c    admin queries that wait for peers, and JSON replies
 *   status.c   `cluster status`: every member's state, asked of each
 *   verify.c   `cluster verify`: digests at one log index on every member
 *   hosts.c    `cluster hosts|read|dir|perms`: any host's tree, for admins
 */
#ifndef XSR_NODE_CLUSTER_INT_H
#define XSR_NODE_CLUSTER_INT_H

#include <json-c/json.h>

#include "node/daemon.h"
#include "wire/peer.pb-c.h"

#define STATUS_WAIT_MS 400
#define VERIFY_WAIT_MS 8000
#define ADMIN_WAIT_MS 30000
#define MAX_MEMBERS 64

enum qkind { Q_STATUS, Q_VERIFY, Q_ADMIN, Q_PROBE };

struct qmember {
	uint64_t id;
	bool got, ready, asked;
	uint64_t asked_ms;
	Xsr__MemberStatus st; /* strings point into name/state below */
	char name[72], state[16];
	uint8_t digest[16];
	uint64_t applied;
};

struct query {
	struct query *next;
	enum qkind kind;
	uint64_t qid;
	struct daemon *d;
	struct conn *conn;
	struct conn_req *req;
	uint64_t deadline_ms;
	struct qmember m[MAX_MEMBERS];
	size_t n;
	/* verify */
	uint64_t nonce, index;
	bool index_known;
	/* admin forwarded to the leader */
	uint64_t admin_to;
	/* admin run here for a peer */
	uint64_t reply_to, reply_qid;
	/* answered while cluster_control() still runs: kept for it */
	bool in_call;
	json_object *sync_result;
	/* admin answered by the leader, held until this member's log has
	 * caught up with the change (so that it reports it at once) */
	uint64_t wait_index;
	int wait_status;
	char *wait_text;
	/* probe: whom to tell */
	void (*probe_cb)(struct daemon *d, void *arg, bool live);
	void *probe_arg;
};

/* cluster.c */
const char *cluster_member_name(struct daemon *d, uint64_t id);
/* Every member we know of: the Raft configuration and the table. */
size_t cluster_all_members(struct daemon *d, uint64_t *ids, size_t max);
/* The members whose replicas must agree: the Raft configuration's. */
size_t cluster_config_members(struct daemon *d, uint64_t *ids, size_t max);

/* query.c: a query is answered (query_reply) or freed exactly once */
struct query *query_new(struct daemon *d, enum qkind kind, struct conn *c,
			struct conn_req *r, unsigned wait_ms);
struct query *query_find(struct daemon *d, uint64_t qid);
void query_free(struct daemon *d, struct query *q);
void query_reply(struct daemon *d, struct query *q, json_object *o);
/* Reply at once to a CONTROL request (not async). */
enum conn_verdict admin_reply_now(struct conn *c, struct conn_req *r,
				  json_object *o);
json_object *admin_u64(uint64_t v);

/* status.c */
void status_own(struct daemon *d, Xsr__MemberStatus *st);
void status_answer(struct daemon *d, uint64_t from, uint64_t qid);
void status_record(struct qmember *m, const Xsr__MemberStatus *st);
bool status_complete(const struct query *q);
void status_finish(struct daemon *d, struct query *q);
enum conn_verdict status_start(struct daemon *d, struct conn *c,
			       struct conn_req *r);

/* verify.c */
enum conn_verdict verify_start(struct daemon *d, struct conn *c,
			       struct conn_req *r);
/* Every replica digests its state right after a verify entry. */
void verify_digest(struct daemon *d, uint64_t index);
void verify_answer(struct daemon *d, uint64_t from, uint64_t qid,
		   uint64_t index);
void verify_tick(struct daemon *d, struct query *q, uint64_t now);
void verify_finish(struct daemon *d, struct query *q);

/* hosts.c */
enum conn_verdict hosts_read(struct daemon *d, struct conn *c,
			     struct conn_req *r, const char **argv,
			     unsigned int argc);
enum conn_verdict hosts_list(struct daemon *d, struct conn *c,
			     struct conn_req *r);

#endif
