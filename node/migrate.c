/*
 * node/migrate.c: CONTROL domain ...: a domain's store state moves with
 * it between hosts (store_domain_move() in one log entry), and the
 * domains of every host can be listed.
 *
 *   domain migrate SRCHOST:DOMID DSTHOST:DOMID [merge] [subtree=PATH]...
 *   domain adopt   DEADHOST:DOMID DSTHOST:DOMID [merge] [subtree=PATH]...
 *                  [fenced]
 *   domain list    [HOST]
 *
 * migrate wants the source host's member alive (the domain is handed
 * over), adopt wants it dead (its domains are restarted elsewhere); each
 * refuses the other case. Not answering is not being dead: a host cut
 * off from the others still runs its guests, and adopting one of them
 * would make two live copies of the domain. So adopt also wants the
 * admin's word that the host is fenced (`fenced`), or no member of the
 * cluster to have heard from it for adopt-after seconds
 * (cluster_contact()). Both are judged here, before the entry is
 * submitted: apply stays a function of the log. Answers are JSON, as for
 * CONTROL cluster: {"ok":true,...} or {"ok":false,"error":"...",
 * "errno":"EEXIST"}.
 */
#include "node/migrate.h"
#include "node/daemon.h"
#include "node/cluster.h"
#include "node/submit.h"
#include "node/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "consensus/sm.h"

#define MAX_SUBTREES 16

struct move_req {
	struct daemon *d;
	struct conn *c;
	struct conn_req *r;
	bool adopt;
	bool fenced;	/* the admin asserts the source host is fenced */
	char asker[64]; /* who asked, for the log */
	uint64_t index;	/* the destination must have applied this much */
	struct store_move m;
	char src_host[72], dst_host[72];
	char *subtrees[MAX_SUBTREES];
};

static void move_req_free(struct move_req *x)
{
	size_t i;

	for (i = 0; i < x->m.nsubtrees; i++)
		free(x->subtrees[i]);
	free(x->r);
	free(x);
}



static enum conn_verdict answer(struct conn *c, struct conn_req *r,
				json_object *o)
{
	admin_send(c, r, o);
	return CONN_DONE;
}

/* "host:domid" */
static int parse_place(const char *s, char *host, size_t hostlen,
		       uint32_t *domid)
{
	const char *colon = strrchr(s, ':');
	unsigned int id;

	if (!colon || colon == s || (size_t)(colon - s) >= hostlen ||
	    caller_parse_domid(colon + 1, &id) || id == 0 || id >= 0x7FF0)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*domid = id;
	return 0;
}

static const char *why(int err, const struct store_move *m)
{
	switch (err) {
	case -ENOENT:
		return "the domain's home (or a named subtree) does not exist "
		       "on the source host";
	case -EEXIST:
		return "the destination already exists (merge keeps what is "
		       "there and adds the rest)";
	case -ENOSPC:
		return "the destination domain would own more nodes than its "
		       "quota";
	case -EINVAL:
		return "invalid move (domid 0 or reserved, the same place, a "
		       "bad or overlapping subtree)";
	case -EIO:
		return "not committed in time (no quorum?); read back before "
		       "retrying";
	default:
		return strerror(-err);
	}
}

/*
 * The destination's member has applied the move (or not in time): only
 * now is the answer given, so that a toolstack that starts the domain on
 * the destination as soon as the command returns finds its home there.
 */
static void dest_applied(struct daemon *d, void *arg, int status)
{
	struct move_req *x = arg;
	json_object *o;

	if (status == 0) {
		log_msg(5, "domain %s:%u %s to %s:%u (applied there at index "
			   "%" PRIu64 ")",
			x->m.src_host, x->m.src_domid,
			x->adopt ? "adopted" : "migrated", x->m.dst_host,
			x->m.dst_domid, x->index);
		o = admin_ok();
		json_object_object_add(o, "applied_on",
				       json_object_new_string(x->m.dst_host));
		json_object_object_add(o, "index", admin_u64(x->index));
	} else {
		log_msg(4, "domain %s:%u %s to %s:%u: committed at index "
			   "%" PRIu64 ", but %s",
			x->m.src_host, x->m.src_domid,
			x->adopt ? "adopted" : "migrated", x->m.dst_host,
			x->m.dst_domid, x->index,
			status == -ETIMEDOUT ? "not yet applied by the "
					       "destination's member"
					     : "the destination has no member");
		o = admin_error(status,
				"the move is committed (log index %" PRIu64
				") but host %s %s: do not start the domain "
				"there before it has (xsadm cluster status)",
				x->index, x->m.dst_host,
				status == -ETIMEDOUT
					? "has not applied it in time"
					: "has no member to apply it");
	}
	admin_send(x->c, x->r, o);
	conn_async_done(x->c);
	move_req_free(x);
}

static void moved(struct daemon *d, void *arg, int result)
{
	struct move_req *x = arg;
	int rc;

	if (result) {
		log_msg(4, "domain %s %s:%u -> %s:%u refused: %s",
			x->adopt ? "adopt" : "migrate", x->m.src_host,
			x->m.src_domid, x->m.dst_host, x->m.dst_domid,
			why(result, &x->m));
		admin_send(x->c, x->r, admin_error(result, "%s", why(result, &x->m)));
		conn_async_done(x->c);
		move_req_free(x);
		return;
	}
	/* applied here (inside libraft's apply, whose own counter is not
	 * yet past it): the destination's member must apply as much */
	x->index = store_applied_index(daemon_replica(d));
	rc = cluster_wait_applied(d, x->m.dst_host, x->index,
				  d->cfg.cluster.commit_timeout_ms,
				  dest_applied, x);
	if (rc)
		dest_applied(d, x, rc);
}

static void submit_move(struct move_req *x)
{
	struct daemon *d = x->d;
	struct sm_origin o = submit_own_origin(d);
	void *buf;
	size_t len;
	int rc;

	rc = sm_entry_move_domain(&o, &x->m, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq, moved, x);
	if (!rc)
		return;
	admin_send(x->c, x->r,
		   admin_error(rc, "cannot submit: %s", strerror(-rc)));
	conn_async_done(x->c);
	move_req_free(x);
}

static void refuse(struct move_req *x, json_object *err)
{
	log_msg(4, "domain adopt %s:%u -> %s:%u (asked by %s) refused: %s",
		x->m.src_host, x->m.src_domid, x->m.dst_host, x->m.dst_domid,
		x->asker,
		json_object_get_string(json_object_object_get(err, "error")));
	admin_send(x->c, x->r, err);
	conn_async_done(x->c);
	move_req_free(x);
}

/*
 * Has the cluster heard nothing from the source host for adopt-after?
 * A member that did not answer may be cut off together with the host,
 * and still hear from it: then nothing is known, and nothing is assumed.
 */
static void contacted(struct daemon *d, void *arg,
		      const struct cluster_contact *ct)
{
	struct move_req *x = arg;
	unsigned after_s = d->cfg.cluster.adopt_after_s;
	const char *src = x->m.src_host;
	json_object *err = NULL;
	char wait[64];

	if (after_s)
		snprintf(wait, sizeof(wait), ", or wait for adopt-after (%u s)",
			 after_s);
	else
		snprintf(wait, sizeof(wait),
			 " (adopt-after is 0: never without it)");
	if (!ct->member)
		err = admin_error(
		    -EPERM,
		    "host %s has no member in the cluster: nothing tells "
		    "whether it still runs its domains; fence it (power it "
		    "off) and use --fenced",
		    src);
	else if (ct->missing)
		err = admin_error(
		    -EPERM,
		    "%s does not answer, but member %s did not answer "
		    "either: it may be cut off with %s, which may be "
		    "partitioned, not dead; fence %s (power it off) and use "
		    "--fenced",
		    src, ct->missing, src, src);
	else if (!ct->witness[0])
		err = admin_error(
		    -EPERM,
		    "no member can tell when it last heard from %s; fence "
		    "it (power it off) and use --fenced",
		    src);
	else if (!after_s || ct->silent_ms < (uint64_t)after_s * 1000)
		err = admin_error(
		    -EPERM,
		    "%s was in contact %.1f s ago (heard by %s): it may be "
		    "partitioned, not dead; fence it (power it off) and use "
		    "--fenced%s",
		    src, (double)ct->silent_ms / 1000, ct->witness, wait);
	if (err) {
		refuse(x, err);
		return;
	}
	log_msg(4,
		"domain adopt %s:%u -> %s:%u (asked by %s): no member "
		"heard from %s for %.1f s (adopt-after %u s): taken as "
		"fenced",
		x->m.src_host, x->m.src_domid, x->m.dst_host, x->m.dst_domid,
		x->asker, src, (double)ct->silent_ms / 1000, after_s);
	submit_move(x);
}

static void probed(struct daemon *d, void *arg, bool live)
{
	struct move_req *x = arg;
	json_object *err = NULL;
	int rc;

	if (x->adopt && live)
		err = admin_error(-EBUSY,
			      "host %s is alive: migrate its domains instead",
			      x->m.src_host);
	else if (!x->adopt && !live)
		err = admin_error(-EIO,
			      "host %s does not answer: adopt its domains "
			      "instead",
			      x->m.src_host);
	if (err) {
		admin_send(x->c, x->r, err);
		conn_async_done(x->c);
		move_req_free(x);
		return;
	}
	if (!x->adopt) {
		submit_move(x);
		return;
	}
	if (x->fenced) {
		log_msg(4,
			"domain adopt %s:%u -> %s:%u FORCED by %s: the "
			"admin asserts that host %s is fenced (its "
			"domains are not running)",
			x->m.src_host, x->m.src_domid, x->m.dst_host,
			x->m.dst_domid, x->asker, x->m.src_host);
		submit_move(x);
		return;
	}
	rc = cluster_contact(d, x->m.src_host, contacted, x);
	if (rc)
		refuse(x, admin_error(rc, "out of memory"));
}

/* "pid 1234 (uid 0) on the socket", "domain 5's ring" */
static void describe_asker(const struct conn *c, char *buf, size_t len)
{
	const struct conn_identity *id = conn_identity(c);

	if (conn_is_ring(c))
		snprintf(buf, len, "domain %u's ring", id->domid);
	else if (id->pid)
		snprintf(buf, len, "pid %d (uid %u) on the socket",
			 (int)id->pid, id->uid);
	else
		snprintf(buf, len, "a socket client");
}

static enum conn_verdict start_move(struct daemon *d, struct conn *c,
				    struct conn_req *r, const char **argv,
				    unsigned int argc, bool adopt)
{
	struct move_req *x;
	unsigned int i;
	int rc;

	if (argc < 3)
		return answer(c, r,
			      admin_error(-EINVAL,
					  "usage: domain %s HOST:DOMID "
					  "HOST:DOMID [merge] "
					  "[subtree=PATH]...%s",
					  adopt ? "adopt" : "migrate",
					  adopt ? " [fenced]" : ""));
	x = calloc(1, sizeof(*x));
	if (!x)
		return answer(c, r, admin_error(-ENOMEM, "out of memory"));
	x->d = d;
	x->c = c;
	x->adopt = adopt;
	x->m.src_host = x->src_host;
	x->m.dst_host = x->dst_host;
	x->m.subtrees = (const char *const *)x->subtrees;
	if (parse_place(argv[1], x->src_host, sizeof(x->src_host),
			&x->m.src_domid) ||
	    parse_place(argv[2], x->dst_host, sizeof(x->dst_host),
			&x->m.dst_domid)) {
		free(x);
		return answer(c, r, admin_error(-EINVAL,
					    "places are HOST:DOMID (a domid "
					    "from 1 to 32751)"));
	}
	describe_asker(c, x->asker, sizeof(x->asker));
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "merge") == 0) {
			x->m.merge = true;
		} else if (adopt && strcmp(argv[i], "fenced") == 0) {
			x->fenced = true;
		} else if (strncmp(argv[i], "subtree=", 8) == 0 &&
			   x->m.nsubtrees < MAX_SUBTREES) {
			x->subtrees[x->m.nsubtrees] = strdup(argv[i] + 8);
			if (!x->subtrees[x->m.nsubtrees]) {
				x->r = NULL;
				move_req_free(x);
				return answer(c, r, admin_error(-ENOMEM,
							    "out of memory"));
			}
			x->m.nsubtrees++;
		} else {
			x->r = NULL;
			move_req_free(x);
			return answer(c, r, admin_error(-EINVAL,
						    "unexpected \"%s\"",
						    argv[i]));
		}
	}
	if (!store_host_exists(d->store, x->src_host) ||
	    !store_host_exists(d->store, x->dst_host)) {
		const char *h = store_host_exists(d->store, x->src_host)
					? x->dst_host
					: x->src_host;

		x->r = NULL;
		move_req_free(x);
		return answer(c, r, admin_error(-ENOENT,
					    "no host named \"%s\" (xsadm "
					    "cluster hosts)",
					    h));
	}
	/* the quota that applies to the destination domain (on its host's
	 * daemon: ours is the best guess here, and what the log records) */
	x->m.max_nodes = caller_quotas(d, x->m.dst_domid).store.nodes;
	x->r = r;
	rc = cluster_probe(d, x->src_host, probed, x);
	if (rc) {
		x->r = NULL;
		move_req_free(x);
		return answer(c, r, admin_error(rc, "out of memory"));
	}
	return CONN_ASYNC;
}

/* domain list [HOST]: every domain home of the forest (or one host). */
/* e[key] = /local/domain/<domid>/<key> of host, if there is one */
static void add_domain_key(struct daemon *d, const char *host,
			   const struct store_caller *who, unsigned int domid,
			   const char *key, json_object *e)
{
	char path[64];
	const char *v;
	size_t vl;

	snprintf(path, sizeof(path), "/local/domain/%u/%s", domid, key);
	if (!store_read(d->store, host, NULL, who, path, &v, &vl))
		json_object_object_add(e, key,
				       json_object_new_string_len(v, (int)vl));
}

static enum conn_verdict list_domains(struct daemon *d, struct conn *c,
				      struct conn_req *r, const char *only)
{
	struct store_caller dom0 = {.domid = 0, .privileged = true,
				    .target = STORE_NO_TARGET,
				    .quota = STORE_QUOTA_INIT};
	json_object *o = admin_ok(), *arr = json_object_new_array();
	size_t h, nh = store_host_count(d->store);

	if (only && !store_host_exists(d->store, only)) {
		json_object_put(o);
		json_object_put(arr);
		return answer(c, r, admin_error(-ENOENT, "no host named \"%s\"",
					    only));
	}
	for (h = 0; h < nh; h++) {
		const char *host = store_host_name(d->store, h);
		const char *kids, *k;
		uint64_t gen;
		size_t klen;

		if (only && strcmp(only, host) != 0)
			continue;
		if (store_directory(d->store, host, NULL, &dom0,
				    "/local/domain", &kids, &klen, &gen))
			continue;
		for (k = kids; k < kids + klen; k += strlen(k) + 1) {
			const struct store_domain *sd;
			unsigned int domid;
			json_object *e;

			if (caller_parse_domid(k, &domid))
				continue;
			e = json_object_new_object();
			json_object_object_add(e, "host",
					       json_object_new_string(host));
			json_object_object_add(e, "domid",
					       json_object_new_int((int)domid));
			add_domain_key(d, host, &dom0, domid, "name", e);
			add_domain_key(d, host, &dom0, domid, "vm", e);
			sd = store_domain_get(d->store, host, domid);
			json_object_object_add(
				e, "introduced",
				json_object_new_boolean(sd != NULL ||
							domid == 0));
			/* a source for store_domain_inherit() */
			if (sd)
				json_object_object_add(
					e, "suspending",
					json_object_new_boolean(sd->suspending));
			if (sd && sd->ring_error)
				json_object_object_add(
					e, "ring_error",
					json_object_new_int((int)sd->ring_error));
			json_object_array_add(arr, e);
		}
	}
	json_object_object_add(o, "domains", arr);
	return answer(c, r, o);
}

enum conn_verdict migrate_control(struct daemon *d, struct conn *c,
				 struct conn_req *r, const char **argv,
				 unsigned int argc)
{
	const char *cmd = argc ? argv[0] : "";

	if (d->no_quorum_since &&
	    (!strcmp(cmd, "migrate") || !strcmp(cmd, "adopt"))) {
		log_msg(4, "domain %s refused: standalone mode (no quorum)",
			cmd);
		return answer(c, r, admin_error(-ENOTCONN,
					"%s: refused in standalone mode (no "
					"quorum): a domain move needs the "
					"cluster", cmd));
	}
	if (strcmp(cmd, "migrate") == 0)
		return start_move(d, c, r, argv, argc, false);
	if (strcmp(cmd, "adopt") == 0)
		return start_move(d, c, r, argv, argc, true);
	if (strcmp(cmd, "list") == 0 && argc <= 2)
		return list_domains(d, c, r, argc == 2 ? argv[1] : NULL);
	return answer(c, r, admin_error(-EINVAL,
				    "unknown domain command \"%s\" (try: "
				    "migrate, adopt, list)",
				    cmd));
}
