/*
 * node/cluster_recover.c: `cluster recover` on a member whose quorum is
 * lost for good. libraft can rewrite the configuration only in the log of
 * a stopped member (raft_recover), so the daemon stops as for SIGTERM
 * (answering what it read) and node/main.c runs it again, same pid, with
 * --force-new-cluster: the one code path of a stopped member's recovery.
 *
 * Refused while this member knows a leader (the cluster has a quorum), and
 * while another voter of its configuration still answers on the peer
 * channel (a status probe within 1 s): that member must be stopped first,
 * or it would go on as a second cluster of the same hosts.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct recover_ask {
	struct conn *conn;
	struct conn_req *req;
	unsigned pending;
	char alive[256]; /* names of voters that answered */
};

static void recover_now(struct daemon *d)
{
	log_msg(3, "CLUSTER RECOVER asked for: member %" PRIu64 " (%s) has "
		   "no leader and no other voter answers; stopping, then "
		   "starting again as the only voter of a new cluster "
		   "(--force-new-cluster)",
		d->member_id, d->host);
	d->recover_on_exit = true;
	uv_kill(getpid(), SIGTERM);
}

/* Every probe answered: go on, or say who is still there. */
static void recover_decide(struct daemon *d, struct recover_ask *a)
{
	json_object *o;

	if (d->stopping)
		o = admin_error(ESHUTDOWN, "recover: the daemon is stopping");
	else if (repl_leader(d->repl))
		o = admin_error(EBUSY, "recover: refused: a leader appeared "
				"(member %" PRIu64 ")", repl_leader(d->repl));
	else if (a->alive[0])
		o = admin_error(EBUSY, "recover: refused: %s still answer%s: "
				"stop every other member of the old cluster "
				"first, or it goes on as a second cluster",
				a->alive, strchr(a->alive, ' ') ? "" : "s");
	else
		o = NULL;
	if (!o)
		recover_now(d);
	if (d->stopping && !d->recover_on_exit && conn_is_closed(a->conn)) {
		json_object_put(o);
	} else {
		admin_send(a->conn, a->req, o ? o : admin_ok());
		conn_async_done(a->conn);
	}
	free(a);
}

/* A probe's answer, with the name it was asked for. */
struct recover_probe {
	struct recover_ask *ask;
	char name[72];
};

static void recover_probe_done(struct daemon *d, void *arg, bool live)
{
	struct recover_probe *p = arg;
	struct recover_ask *a = p->ask;
	size_t n = strlen(a->alive);

	if (live)
		snprintf(a->alive + n, sizeof(a->alive) - n, "%s%s",
			 n ? " " : "", p->name);
	free(p);
	if (--a->pending == 0)
		recover_decide(d, a);
}

enum conn_verdict cluster_recover_start(struct daemon *d, struct conn *c,
					struct conn_req *r, const char **argv,
					unsigned int argc)
{
	struct repl_server srv[MAX_MEMBERS];
	struct recover_ask *a;
	uint64_t leader = repl_leader(d->repl);
	size_t i, ns;

	if (!d->cfg.cluster.enabled)
		return admin_reply_now(c, r, admin_error(EINVAL,
			"recover: this daemon is a cluster of one"));
	if (leader)
		return admin_reply_now(c, r, admin_error(EBUSY,
			"recover: refused: member %" PRIu64 " (%s) leads this "
			"cluster, which has a quorum; recover only a member "
			"whose quorum is lost for good", leader,
			cluster_member_name(d, leader)));
	if (d->stopping)
		return admin_reply_now(c, r, admin_error(ESHUTDOWN,
			"recover: the daemon is stopping"));
	a = calloc(1, sizeof(*a));
	if (!a)
		return admin_reply_now(c, r, admin_error(ENOMEM,
			"recover: out of memory"));
	a->conn = c;
	a->req = r;
	a->pending = 1; /* this call's own, released below */
	ns = repl_servers(d->repl, srv, MAX_MEMBERS);
	for (i = 0; i < ns; i++) {
		const char *name = cluster_member_name(d, srv[i].id);
		struct recover_probe *p;

		if (srv[i].id == d->member_id || srv[i].role != REPL_VOTER)
			continue;
		p = calloc(1, sizeof(*p));
		if (!p)
			continue;
		p->ask = a;
		snprintf(p->name, sizeof(p->name), "%s", name);
		a->pending++;
		if (cluster_probe(d, name, recover_probe_done, p)) {
			a->pending--;
			free(p);
		}
	}
	if (--a->pending == 0) {
		/* nobody to ask: at once */
		free(a);
		recover_now(d);
		return admin_reply_now(c, r, admin_ok());
	}
	return CONN_ASYNC;
}
