/*
 * node/apply.c: committed log entries in, store mutations, watch events
 * and replies out.
 *
 * apply_entry() runs on every member for every committed entry, in log
 * order. The store decides (deterministically); then this member fires the
 * watches of its own clients for its own host's tree, and, if the entry
 * came from here, answers the request that is waiting for it. Watch events
 * are queued before that reply, as cxenstored does.
 */
#include "node/apply.h"
#include "node/daemon.h"
#include "node/cluster.h"
#include "node/domains.h"
#include "node/submit.h"
#include "node/fire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consensus/sm.h"

/* ---- Applying entries ------------------------------------------------ */

/*
 * Memory ran out applying entry `index` (consensus/sm.h): stop at once. No
 * client is answered, no watch fires, nothing is written (no orderly
 * close: libraft could take a snapshot of the half-applied store). The
 * entry is committed, so the log applies it again after a restart, and
 * the peers never see a result from this member that they do not share.
 */
static void apply_failed(uint64_t index, const char *what, bool newer)
	__attribute__((noreturn));

static void apply_failed(uint64_t index, const char *what, bool newer)
{
	if (newer)
		log_fatal("fatal: log entry %" PRIu64 " needs %s than this "
			  "daemon knows: stopping; upgrade it, the entry is "
			  "applied after a restart",
			  index, what ? what : "a newer schema");
	log_fatal("fatal: out of memory applying log entry %" PRIu64
		  " (%s): stopping; the entry is applied again after a "
		  "restart",
		  index, what ? what : "entry");
}

/* What an INTRODUCE's inheritance did, said by the hosts concerned. */
static void log_inherit(const struct daemon *d, const struct sm_result *r,
			uint64_t index, uint64_t apply_ns)
{
	const struct store_inherit *x = &r->inherited;

	if (strcmp(r->host, d->host) != 0 && strcmp(x->src_host, d->host) != 0)
		return;
	switch (r->inherit_rc) {
	case 0:
		log_msg(5, "domain %u of host %s inherits the store state of "
			   "domain %u of host %s (suspending, same vm): %zu "
			   "nodes copied (log index %" PRIu64 ", INTRODUCE "
			   "applied in %" PRIu64 " us)",
			r->domid, r->host, x->src_domid, x->src_host, x->copied,
			index, apply_ns / 1000);
		break;
	case -ENOENT:
		if (x->src_host[0] == '\0' && strcmp(r->host, d->host) == 0)
			log_msg(7, "domain %u introduced: no suspending domain "
				   "with its vm, nothing inherited",
				r->domid);
		break;
	case -EEXIST:
		log_msg(4, "domain %u of host %s inherits nothing: more than "
			   "one suspending domain names its vm (domain %u of "
			   "host %s among them)",
			r->domid, r->host, x->src_domid, x->src_host);
		break;
	default:
		log_msg(4, "domain %u of host %s cannot inherit the store "
			   "state of domain %u of host %s: %s",
			r->domid, r->host, x->src_domid, x->src_host,
			r->inherit_rc == -ENOSPC ? "over its node quota"
						 : strerror(-r->inherit_rc));
		break;
	}
}

void apply_entry(void *data, uint64_t index, const void *buf, size_t len)
{
	struct daemon *d = data;
	struct store *st = daemon_replica(d);
	bool seen = !d->committed; /* clients see the replica */
	struct sm_result res;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	sm_apply(st, index, buf, len, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (res.fatal)
		apply_failed(index, res.fatal_what, res.fatal_newer);
	store_check_after_apply(st); /* XSR_CHECK_STORE=ON builds */
	if (res.kind == SM_INVALID) {
		log_msg(3, "log entry %" PRIu64 " cannot be decoded: skipped",
			index);
		sm_result_clear(&res);
		return;
	}
	/* This member's clients watch this member's tree only. In
	 * standalone mode they see the overlay: rings and watches follow
	 * the replica when it becomes visible again (node/standalone.h). */
	if (!res.duplicate && res.inherit_tried)
		log_inherit(d, &res, index,
			    (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
				(uint64_t)(t1.tv_nsec - t0.tv_nsec));
	if (seen && res.kind == SM_DOMAIN)
		domains_applied(d, &res, index);
	if (seen && !res.duplicate && strcmp(res.host, d->host) == 0)
		fire_events(d, &res.events);
	if (seen && !res.duplicate && res.host2[0] &&
	    strcmp(res.host2, d->host) == 0)
		fire_events(d, &res.events2);
	submit_applied(d, res.origin, res.seq,
		       res.result_known ? res.result : -EIO);
	if (seen && res.kind == SM_DOMAIN)
		domains_watch_added(d, &res);
	if (!res.duplicate && res.kind != SM_OP && res.kind != SM_DOMAIN)
		cluster_applied(d, index, res.kind, res.origin,
				res.verify_nonce);
	sm_result_clear(&res);
}
