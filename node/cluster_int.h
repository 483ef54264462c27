/*
 * node/cluster_int.h: what the files of the cluster module share. Not a
 * public header: the rest of the daemon reaches them through cluster.h.
 *
 *   cluster.c          the peer messages, readiness, probes, the tick,
 *                      and the dispatch of `cluster ...` commands
 *   cluster_member.c   membership commands (run on the leader, or
 *                      forwarded to it)
 *   cluster_query.c    admin queries that wait for peers
 *   cluster_status.c   `cluster status`: every member's state
 *   cluster_health.c   `cluster health`: leader, caught up, voters answer
 *   cluster_verify.c   `cluster verify`: digests at one log index
 *   cluster_hosts.c    `cluster hosts|read|dir|perms`: any host's tree
 *   cluster_recover.c  `cluster recover`: a one-voter cluster again
 *   cluster_contact.c  how long since any member heard from a host
 */
#ifndef XSR_NODE_CLUSTER_INT_H
#define XSR_NODE_CLUSTER_INT_H

#include <json-c/json.h>

#include "node/admin.h"
#include "node/daemon.h"
#include "node/cluster.h"
#include "node/peers.h"
#include "node/ready.h"
#include "node/submit.h"
#include "wire/peer.pb-c.h"

#define STATUS_WAIT_MS 400
#define VERIFY_WAIT_MS 8000
#define ADMIN_WAIT_MS 30000
#define MAX_MEMBERS 64

/* The module's state (d->cluster). */
struct cluster {
	struct ready *ready; /* catching up before serving (node/ready.c) */
	void (*on_ready)(struct daemon *d, int status);
	bool (*on_cold)(struct daemon *d);
	struct query *queries;
	uint64_t next_qid;
	bool was_in_config, removed_warned;
	uint64_t no_leader_since_ms, no_leader_log_ms;
	bool no_leader_warned;
	struct digest *digests; /* recent verify points (cluster_verify.c) */
	size_t n_digests;
	/* the members table follows the configuration (cluster_member.c):
	 * adds under way on this leader, a row being removed, the next look */
	unsigned adds_in_flight;
	struct add_ctx *adds_later; /* next steps of adds, for the tick */
	bool forgetting;
	uint64_t reconcile_ms;
	/* since when this member could have heard its peers (its start):
	 * the longest silence it can vouch for (cluster_contact.c) */
	uint64_t contact_since_ms;
};

enum qkind { Q_STATUS, Q_VERIFY, Q_ADMIN, Q_PROBE, Q_HEALTH, Q_CONTACT,
	     Q_APPLIED };

struct qmember {
	uint64_t id;
	bool got, ready, asked;
	uint64_t asked_ms;
	Xsr__MemberStatus st; /* strings point into the buffers below */
	char name[72], state[16], version[32], last_error[256];
	uint8_t digest[16];
	uint64_t applied;
	uint64_t silent_ms; /* contact: nothing heard from the subject since */
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
	/* health: the time a voter had to answer */
	unsigned timeout_ms;
	/* applied: whom to tell (q->index: up to where, m[0]: the member,
	 * wait_status: the answer once m[0].got) */
	void (*applied_cb)(struct daemon *d, void *arg, int status);
	void *applied_arg;
	/* probe: whom to tell */
	void (*probe_cb)(struct daemon *d, void *arg, bool live);
	void *probe_arg;
	/* contact: about which member, whom to tell */
	uint64_t subject;
	void (*contact_cb)(struct daemon *d, void *arg,
			   const struct cluster_contact *c);
	void *contact_arg;
};

/* cluster.c */
/* A membership command answered (cluster_member.c, cluster.c's tick). */
void cluster_admin_done(struct daemon *d, struct query *q, int status,
			const char *text);
const char *cluster_member_name(struct daemon *d, uint64_t id);
/* Every member we know of: the Raft configuration and the table (rows
 * the configuration lacks only while an add runs, or briefly). */
size_t cluster_all_members(struct daemon *d, uint64_t *ids, size_t max);
/* The members whose replicas must agree: the Raft configuration's. */
size_t cluster_config_members(struct daemon *d, uint64_t *ids, size_t max);

/* cluster_member.c */
enum conn_verdict cluster_member_command(struct daemon *d, struct conn *c,
					 struct conn_req *r, const char **argv,
					 unsigned int argc);
/* The role of member id in the Raft configuration, or -1. */
int cluster_member_role(struct daemon *d, uint64_t id);
/*
 * On the leader, now and then: remove the row of a member the
 * configuration lacks (removed, or an add that failed half-way).
 */
void cluster_member_reconcile(struct daemon *d, uint64_t now);
/* Run the adds' next steps (or, cancel, drop them: stopping). */
void cluster_member_later(struct daemon *d, bool cancel);
/* A membership command forwarded to us (the leader), or its answer. */
void cluster_member_request(struct daemon *d, uint64_t from,
			    const Xsr__AdminRequest *ar);
void cluster_member_reply(struct daemon *d, uint64_t from,
			  const Xsr__AdminReply *ar);

/* cluster_query.c: a query is answered (cluster_query_reply) or freed exactly once */
struct query *cluster_query_new(struct daemon *d, enum qkind kind, struct conn *c,
			struct conn_req *r, unsigned wait_ms);
struct query *cluster_query_find(struct daemon *d, uint64_t qid);
void cluster_query_free(struct daemon *d, struct query *q);
void cluster_query_reply(struct daemon *d, struct query *q, json_object *o);
/*
 * A start function sets q->in_call around the work that may answer at
 * once (cluster_query_reply keeps that answer); then this answers the
 * request r of c with it and forgets q, or returns CONN_ASYNC.
 */
enum conn_verdict cluster_query_settle(struct daemon *d, struct query *q,
					struct conn *c, struct conn_req *r);

/* cluster_recover.c: `cluster recover` (node/backup.h's sibling) */
enum conn_verdict cluster_recover_start(struct daemon *d, struct conn *c,
					struct conn_req *r, const char **argv,
					unsigned int argc);

/* cluster_status.c */
void cluster_status_own(struct daemon *d, Xsr__MemberStatus *st);
void cluster_status_answer(struct daemon *d, uint64_t from, uint64_t qid);
void cluster_status_record(struct qmember *m, const Xsr__MemberStatus *st);
bool cluster_status_complete(const struct query *q);
void cluster_status_finish(struct daemon *d, struct query *q);
enum conn_verdict cluster_status_start(struct daemon *d, struct conn *c,
			       struct conn_req *r, const char **argv,
				unsigned int argc);

/* cluster_health.c */
enum conn_verdict cluster_health_start(struct daemon *d, struct conn *c,
				       struct conn_req *r, const char **argv,
				       unsigned int argc);
/* An answer came or time passed: answer q (and free it) once decided. */
void cluster_health_tick(struct daemon *d, struct query *q, uint64_t now);
/* What `cluster health` decides from, gathered when it answers. */
struct health_facts {
	uint64_t leader;	  /* 0: none known */
	const char *leader_name;
	bool in_config;		  /* this member is in the configuration */
	uint64_t silent_voter;	  /* a voter that did not answer, 0: none */
	const char *silent_name;
	bool commit_known;	  /* the leader's commit index (read index) */
	uint64_t commit;
	uint64_t applied;	  /* this member's applied index */
	unsigned int timeout_ms;
};
/* The first reason f is not healthy, in the order listed (a static string
 * or buf), or NULL when healthy. */
const char *cluster_health_verdict(const struct health_facts *f, char *buf,
				   size_t len);

/* cluster_contact.c */
void cluster_contact_answer(struct daemon *d, uint64_t from,
			    const Xsr__ContactQuery *cq);
/* An answer: q is finished (and freed) once every witness answered. */
void cluster_contact_record(struct daemon *d, uint64_t from,
			    const Xsr__ContactReply *cr);
/* At the deadline: tell the caller what the witnesses said, free q. */
void cluster_contact_finish(struct daemon *d, struct query *q);

/* cluster_verify.c */
enum conn_verdict cluster_verify_start(struct daemon *d, struct conn *c,
			       struct conn_req *r, const char **argv,
				unsigned int argc);
/* Every replica digests its state right after a verify entry. */
void cluster_verify_digest(struct daemon *d, uint64_t index);
void cluster_verify_answer(struct daemon *d, uint64_t from, uint64_t qid,
		   uint64_t index);
void cluster_verify_tick(struct daemon *d, struct query *q, uint64_t now);
void cluster_verify_finish(struct daemon *d, struct query *q);

/* cluster_hosts.c */
enum conn_verdict cluster_hosts_read(struct daemon *d, struct conn *c,
			     struct conn_req *r, const char **argv,
			     unsigned int argc);
enum conn_verdict cluster_hosts_list(struct daemon *d, struct conn *c,
			     struct conn_req *r, const char **argv,
				unsigned int argc);

#endif
