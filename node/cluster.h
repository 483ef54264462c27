/*
 * node/cluster.h: the daemon's part of the cluster (node/cluster*.c): the
 * admin commands behind `xsadm cluster ...` (XS_CONTROL "cluster ...",
 * privileged clients only), membership changes run on the leader,
 * catching up before serving (node/ready.c), probes of other hosts'
 * members, and the warnings of a member cut off from its leader.
 *
 * Files: cluster.c (open, tick, peer messages, readiness, probes, command
 * dispatch), cluster_member.c (membership commands, on the leader),
 * cluster_query.c (queries waiting for peers), cluster_status.c,
 * cluster_health.c, cluster_verify.c, cluster_hosts.c, cluster_contact.c
 * (when the members last heard from a host, for `domain adopt`);
 * node/cluster_int.h is what they share.
 */
#ifndef XSR_NODE_CLUSTER_H
#define XSR_NODE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "node/conn.h"

struct daemon;

/* Create the module (d->cluster), after the peers. 0 or -ENOMEM. */
int cluster_open(struct daemon *d);
/* Fail every waiting query, then close the peers; cb(arg) once closed. */
void cluster_close(struct daemon *d, void (*cb)(void *arg), void *arg);
void cluster_free(struct daemon *d);
/*
 * Wait until this member has caught up, then call on_ready (bounded by
 * ready-timeout; node/ready.h). A member of a cluster not caught up after
 * cold-start-wait calls on_cold: true if it serves from local state
 * meanwhile, and then there is no deadline. -ENOMEM if it cannot start
 * waiting.
 */
int cluster_wait_ready(struct daemon *d,
		       void (*on_ready)(struct daemon *d, int status),
		       bool (*on_cold)(struct daemon *d));
void cluster_tick(struct daemon *d, uint64_t now_ms);
/* After an entry was applied (members, verify points). */
void cluster_applied(struct daemon *d, uint64_t index, int kind,
		     uint64_t origin, uint64_t nonce);
/* CONTROL cluster ... */
enum conn_verdict cluster_control(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **argv,
				  unsigned int argc);
/* Take a log snapshot at the next opportunity (CONTROL snapshot). */
int cluster_snapshot_now(struct daemon *d);
/*
 * Is the member serving host alive (answers a status query within 1 s)?
 * cb is called exactly once, later (never from inside this call), unless
 * this returns an error. A host without a member is not alive.
 */
int cluster_probe(struct daemon *d, const char *host,
		  void (*cb)(struct daemon *d, void *arg, bool live),
		  void *arg);

/*
 * Has the member serving host applied this log up to index? cb(d, arg, 0)
 * once it has (at once for this member's own host), -ETIMEDOUT if it has
 * not within timeout_ms, -EHOSTUNREACH if host has no member. Its status
 * is asked again every 20 ms meanwhile. cb is called exactly once, later
 * (never from inside this call), unless this returns an error.
 */
int cluster_wait_applied(struct daemon *d, const char *host, uint64_t index,
			 unsigned int timeout_ms,
			 void (*cb)(struct daemon *d, void *arg, int status),
			 void *arg);

/*
 * What the cluster knows of the last signs of life of a host's member:
 * every other member of the configuration (the witnesses, this one
 * included) says how long it has received nothing from it, neither a
 * Raft message nor a peer frame (each counts from its own start if it
 * never heard from it). Strings are borrowed for the callback.
 */
struct cluster_contact {
	uint64_t member;     /* the host's member; 0: it has none */
	uint64_t silent_ms;  /* the shortest silence a witness reports
			      * (UINT64_MAX if none answered) */
	const char *witness; /* the member that reported it, or "" */
	const char *missing; /* a witness that did not answer within 1 s
			      * (it may be in contact), NULL if all did */
};
/*
 * Ask the witnesses about host's member. cb is called exactly once,
 * later (never from inside this call), unless this returns -ENOMEM.
 */
int cluster_contact(struct daemon *d, const char *host,
		    void (*cb)(struct daemon *d, void *arg,
			       const struct cluster_contact *c),
		    void *arg);

#endif
