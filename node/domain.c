/*
 * node/domain.c: the guests of this host: their rings, event channels and
 * lifecycle (cxenstored 4.17 xenstored_domain.c), on top of the domain
 * registry that the log replicates (store.h).
 *
 * The registry says which domains are introduced and with which ring
 * parameters and watches; this file makes that true on this machine: it
 * maps each page, binds each event channel, runs a ring connection with
 * its journal, and keeps the connection's watches equal to the registry's.
 * Everything it does is either a reaction to an applied entry
 * (domains_applied) or local (event channel kicks, VIRQ_DOM_EXC scans),
 * and every change of the registry goes through the log.
 *
 * Lifecycle of one domain here:
 *
 *   (INTRODUCE request) --prepare: map + bind--> PREPARED
 *   PREPARED or none --Introduce applied--> ATTACHED (conn serving)
 *   ATTACHED --ring broke / guest asks to reconnect--> STALLED
 *   STALLED --RingReset applied--> ATTACHED (error 0) or DETACHED (error)
 *   any --DomainGone applied--> gone (conn closed, unbound, unmapped)
 *
 * At start-up every introduced domain of the registry is attached again
 * with its journal, so that a restart is invisible to the guest apart from
 * each restored watch firing once.
 */
#include "node/domain_int.h"
#include "node/fire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Reacting to the log ------------------------------------------------ */

static void applied_introduce(struct daemon *d, uint32_t domid,
			      uint64_t index)
{
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, domid);
	struct domain *x = domain_get(d, domid);
	int rc;

	if (!x || !sd)
		return;
	rc = domain_take_up(x, sd);
	if (rc) {
		log_msg(3, "cannot reach the ring of domain %u: %s", domid,
			strerror(-rc));
		return;
	}
	x->shutdown = false;
	/* dom0's kernel ring is not reset: its kernel may be waiting */
	domain_attach(x, index, domid != 0, false);
	log_msg(6, "domain %u introduced (event channel %u, local port %u)",
		domid, x->remote_port, x->local_port);
}

static void applied_gone(struct daemon *d, uint32_t domid)
{
	struct domain *x = domain_find(d, domid);

	if (!x)
		return;
	domain_detach(x, true);
	domain_forget(x);
	log_msg(6, "domain %u released", domid);
}

static void applied_ring_reset(struct daemon *d, uint32_t domid,
			       uint64_t index)
{
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, domid);
	struct domain *x = domain_find(d, domid);

	if (!x || !sd || !x->page)
		return;
	if (sd->ring_error) {
		/* broken: keep it introduced, serve nothing (XSA-325) */
		domain_close_conn(x, "ring broken");
		return;
	}
	domain_attach(x, index, true, false);
}

/* Every served ring's caller identity takes its registry's target. */
static void sync_targets(struct daemon *d)
{
	struct domain *x;

	for (x = d->domains->doms; x; x = x->next) {
		const struct store_domain *sd =
			store_domain_get(d->store, d->host, x->domid);

		if (x->conn)
			conn_identity_mut(x->conn)->target =
				sd ? sd->target : STORE_NO_TARGET;
	}
}

void domains_applied(struct daemon *d, const struct sm_result *res,
		     uint64_t index)
{
	struct domain *x;

	if (!d->domains->started || res->duplicate || res->result ||
	    strcmp(res->host, d->host) != 0)
		return;
	switch (res->dom_op) {
	case SM_DOM_INTRODUCE:
		if (d->domains->ring)
			applied_introduce(d, res->domid, index);
		break;
	case SM_DOM_GONE:
	case SM_DOM_MOVE: /* it went to another host (or domid) */
		applied_gone(d, res->domid);
		/* it is nobody's target any more (store_domain_gone()) */
		sync_targets(d);
		break;
	case SM_DOM_RING_RESET:
		applied_ring_reset(d, res->domid, index);
		break;
	case SM_DOM_SET_TARGET:
		sync_targets(d);
		break;
	case SM_DOM_WATCH:
	case SM_DOM_UNWATCH:
	case SM_DOM_RESET_WATCHES:
		x = domain_find(d, res->domid);
		if (x)
			domain_sync_watches(x, false);
		break;
	default:
		break;
	}
}

/* ---- A snapshot replaced the store ---------------------------------------- */

/*
 * x is in the new registry as sd: serve the ring session sd names, as the
 * skipped entries would have left it (an INTRODUCE or a RingReset starts
 * a session from nothing, so the ring is reset, dom0's kernel ring aside).
 */
static void resync_one(struct domain *x, const struct store_domain *sd)
{
	int rc;

	if (sd->ring_error) {
		/* broke meanwhile: introduced, not served (XSA-325) */
		domain_close_conn(x, "ring broken");
		return;
	}
	if (x->page && x->ring_id == sd->ring_id) {
		/* the same session: its target and watches may have moved
		 * (a connection that closed stays closed: its RingReset is on
		 * its way) */
		if (x->conn) {
			conn_identity_mut(x->conn)->target = sd->target;
			domain_sync_watches(x, false);
		}
		return;
	}
	rc = domain_take_up(x, sd);
	if (rc) {
		log_msg(3, "cannot reach the ring of domain %u: %s", x->domid,
			strerror(-rc));
		return;
	}
	x->shutdown = false;
	if (domain_attach(x, sd->ring_id, x->domid != 0, false) == 0)
		log_msg(5, "domain %u attached from the snapshot (ring session "
			   "%" PRIu64 ", local port %u)",
			x->domid, sd->ring_id, x->local_port);
}

void domains_resync(struct daemon *d)
{
	struct domain *x, *next;
	size_t i, n;

	if (!d->domains->ring || !d->domains->started)
		return; /* domains_start() reads the registry when serving */
	for (x = d->domains->doms; x; x = next) {
		const struct store_domain *sd =
			store_domain_get(d->store, d->host, x->domid);

		next = x->next;
		if (sd) {
			resync_one(x, sd);
			continue;
		}
		/* released or moved away meanwhile */
		if (x->conn || x->page || x->local_port) {
			domain_detach(x, true);
			log_msg(5, "domain %u is no longer introduced here "
				   "(snapshot): detached",
				x->domid);
		}
		/* an INTRODUCE prepared here keeps waiting for its entry */
		if (!x->prep_page && !x->prep_port)
			domain_forget(x);
	}
	n = store_domain_count(d->store, d->host);
	for (i = 0; i < n; i++) {
		const struct store_domain *sd =
			store_domain_at(d->store, d->host, i);

		if (domain_find(d, sd->domid))
			continue;
		x = domain_get(d, sd->domid);
		if (x)
			resync_one(x, sd);
	}
}

void domains_watch_added(struct daemon *d, const struct sm_result *res)
{
	struct domain *x;

	if (!d->domains->started || res->duplicate || res->result ||
	    res->dom_op != SM_DOM_WATCH || strcmp(res->host, d->host) != 0)
		return;
	x = domain_find(d, res->domid);
	/* the initial event follows the OK, as in do_watch() */
	if (x && x->conn)
		conn_event(x->conn, res->watch_path, res->watch_token);
}

/* ---- Domain states (VIRQ_DOM_EXC) ------------------------------------------ */

static int enc_gone(struct daemon *d, struct sm_origin *o, void *arg,
		    void **buf, size_t *len)
{
	return sm_entry_domain_gone(o, *(uint32_t *)arg, buf, len);
}

/*
 * check_domains(): a dying (or vanished) domain is forgotten through the
 * log; a domain that shut down fires @releaseDomain once, locally, until
 * RESUME.
 */
static void check_domains(struct daemon *d)
{
	size_t i, n = store_domain_count(d->store, d->host);
	bool fire = false;

	for (i = 0; i < n; i++) {
		const struct store_domain *sd =
			store_domain_at(d->store, d->host, i);
		struct ring_dominfo info;
		struct domain *x;
		uint32_t domid = sd->domid;

		if (domid == 0)
			continue;
		if (ring_backend_dominfo(d->domains->ring, domid, &info))
			continue;
		x = domain_get(d, domid);
		if (!x)
			continue;
		if (!info.exists || info.dying) {
			if (!x->gone_asked) {
				x->gone_asked = true;
				log_msg(6, "domain %u is %s", domid,
					info.exists ? "dying" : "gone");
				domain_submit_own(d, enc_gone, &domid,
					   "a domain's death");
			}
			continue;
		}
		if (info.shutdown && !x->shutdown) {
			x->shutdown = true;
			fire = true;
		}
	}
	if (fire) {
		struct store_events ev;

		store_events_init(&ev);
		if (!store_special_event(d->store, d->host, "@releaseDomain",
					 &ev)) {
			fire_events(d, &ev);
		} else {
			/* out of memory: spurious events, none missed */
			log_msg(4, "out of memory firing @releaseDomain: every "
				   "watch fires");
			fire_all(d);
		}
		store_events_clear(&ev);
	}
}

static void on_event(uv_poll_t *p, int status, int events)
{
	struct daemon *d = p->data;
	uint32_t port;
	int budget = 256; /* then let the rest of the loop run */

	while (budget-- > 0 && ring_backend_pending(d->domains->ring, &port) == 0) {
		struct domain *x;

		if (port == d->domains->virq_port) {
			if (d->domains->started)
				check_domains(d);
		} else {
			for (x = d->domains->doms; x; x = x->next)
				if (x->local_port == port && x->conn)
					conn_ring_kick(x->conn);
		}
		ring_backend_unmask(d->domains->ring, port);
	}
}

/* ---- Start and stop ------------------------------------------------------- */

int domains_open(struct daemon *d, const struct conn_handler *h)
{
	const char *spec = d->cfg.ring_backend;
	char err[256], path[4096];
	int rc;

	d->domains = calloc(1, sizeof(*d->domains));
	if (!d->domains)
		return -ENOMEM;
	d->domains->client = *h;
	if (!spec || strcmp(spec, "none") == 0)
		return 0;
	rc = ring_backend_open(spec, &d->domains->ring, err, sizeof(err));
	if (rc) {
		log_msg(2, "ring backend %s: %s", spec, err);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/rings", d->cfg.data_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		log_msg(2, "cannot create %s: %s", path, strerror(errno));
		return rc;
	}
	rc = ring_backend_bind_virq(d->domains->ring, &d->domains->virq_port);
	if (rc) {
		log_msg(2, "cannot bind VIRQ_DOM_EXC: %s", strerror(-rc));
		return rc;
	}
	rc = uv_poll_init(d->loop, &d->domains->ring_poll, ring_backend_fd(d->domains->ring));
	if (rc) {
		log_msg(2, "cannot poll the event channel device: %s",
			uv_strerror(rc));
		return rc;
	}
	d->domains->ring_poll.data = d;
	d->domains->ring_poll_open = true;
	uv_poll_start(&d->domains->ring_poll, UV_READABLE, on_event);
	log_msg(5, "ring backend %s", spec);
	return 0;
}

/* Is there a journal of ring session ring_id of domid from this boot? */
static bool journal_current(struct daemon *d, uint32_t domid,
			    uint64_t ring_id)
{
	struct ring_journal *j;
	char path[4096];
	bool fresh = true;

	domain_journal_path(d, domid, path, sizeof(path));
	if (access(path, F_OK) != 0)
		return false;
	if (ring_journal_open(path, ring_id, &j, &fresh) == 0)
		ring_journal_close(j);
	return !fresh;
}

static int enc_dom0(struct daemon *d, struct sm_origin *o, void *arg,
		    void **buf, size_t *len)
{
	return sm_entry_introduce(o, 0, 0, *(uint32_t *)arg, false, false,
				  0, buf, len);
}

void domains_start(struct daemon *d)
{
	size_t i, n = store_domain_count(d->store, d->host);
	uint32_t dom0_port = 0;
	void *dom0_page = NULL;
	int rc;

	if (!d->domains->ring)
		return;
	d->domains->started = true;
	/* dom0's kernel ring, if this host has one */
	rc = ring_backend_dom0(d->domains->ring, &dom0_page, &dom0_port);
	if (rc && rc != -ENOENT)
		log_msg(4, "dom0's own ring is unusable: %s", strerror(-rc));
	/* every introduced domain, as it was */
	for (i = 0; i < n; i++) {
		const struct store_domain *sd =
			store_domain_at(d->store, d->host, i);
		struct domain *x = domain_get(d, sd->domid);

		if (!x)
			continue;
		if (sd->domid == 0) {
			if (!dom0_page || sd->port != dom0_port ||
			    !journal_current(d, 0, sd->ring_id))
				continue; /* a new kernel: introduced below */
			x->page = dom0_page;
			dom0_page = NULL;
		}
		rc = domain_connect(x, sd);
		if (rc) {
			log_msg(4, "cannot reach the ring of domain %u again: "
				   "%s",
				sd->domid, strerror(-rc));
			continue;
		}
		if (sd->ring_error) {
			log_msg(5, "domain %u stays ignored (ring error %u)",
				sd->domid, sd->ring_error);
			continue;
		}
		if (domain_attach(x, sd->ring_id, false, true) == 0)
			log_msg(5,
				"domain %u re-attached (local port %u, "
				"%zu watches restored)",
				sd->domid, x->local_port, (size_t)sd->nwatches);
	}
	if (dom0_page) {
		/* not (or differently) in the registry: introduce it */
		struct domain *x = domain_get(d, 0);

		if (x) {
			x->prep_page = dom0_page;
			rc = ring_backend_bind(d->domains->ring, 0, dom0_port,
					       &x->prep_port);
			x->prep_remote = dom0_port;
			if (rc) {
				log_msg(3, "cannot bind dom0's event channel: "
					   "%s",
					strerror(-rc));
			} else {
				domain_submit_own(d, enc_dom0, &dom0_port,
					   "dom0's introduction");
			}
		}
	}
	/* domains that died while we were away */
	check_domains(d);
}

/*
 * Every ring served here is looked at again now and then: one that was not
 * read (its write credit spent, its memory quota reached) is read as soon
 * as it may be, even if its guest sends no new event.
 */
#define DOMAINS_LOOK_MS 50

void domains_tick(struct daemon *d, uint64_t now_ms)
{
	struct domain *x;

	if (!d->domains || now_ms < d->domains->next_look_ms)
		return;
	d->domains->next_look_ms = now_ms + DOMAINS_LOOK_MS;
	for (x = d->domains->doms; x; x = x->next)
		if (x->conn)
			conn_ring_kick(x->conn);
}

void domains_close(struct daemon *d)
{
	if (!d->domains)
		return;
	while (d->domains->doms)
		domain_forget(d->domains->doms);
	if (d->domains->ring_poll_open) {
		uv_poll_stop(&d->domains->ring_poll);
		uv_close((uv_handle_t *)&d->domains->ring_poll, NULL);
		d->domains->ring_poll_open = false;
	}
}

void domains_free(struct daemon *d)
{
	if (!d->domains)
		return;
	ring_backend_close(d->domains->ring);
	free(d->domains);
	d->domains = NULL;
}

/* ---- Requests -------------------------------------------------------------- */

bool domains_exists(struct daemon *d, uint32_t domid)
{
	struct ring_dominfo info;

	if (domid >= DOMID_FIRST_RESERVED)
		return false;
	if (!d->domains->ring ||
	    ring_backend_dominfo(d->domains->ring, domid, &info))
		return true;
	return info.exists;
}

bool domains_introduced(struct daemon *d, uint32_t domid)
{
	/* dom0 is the master domain: introduced by definition (dom0_init) */
	return domid == 0 ||
	       store_domain_get(d->store, d->host, domid) != NULL;
}

int domains_prepare(struct daemon *d, uint32_t domid, uint64_t gfn,
		    uint32_t port)
{
	struct domain *x;
	int rc;

	if (!d->domains->ring) {
		log_msg(4,
			"INTRODUCE of domain %u refused: this daemon has no "
			"ring backend (--ring-backend)",
			domid);
		return -EINVAL;
	}
	if (domid >= DOMID_FIRST_RESERVED)
		return -EINVAL;
	x = domain_get(d, domid);
	if (!x)
		return -ENOMEM;
	x->gone_asked = false;
	if (!x->page && !x->prep_page) {
		rc = domid == 0 ? ring_backend_dom0(d->domains->ring, &x->prep_page,
						    &port)
				: ring_backend_map(d->domains->ring, domid, gfn,
						   &x->prep_page);
		if (rc) {
			log_msg(4, "cannot map the ring of domain %u: %s",
				domid, strerror(-rc));
			return rc;
		}
	}
	if (x->prep_port)
		ring_backend_unbind(d->domains->ring, x->prep_port);
	x->prep_port = 0;
	rc = ring_backend_bind(d->domains->ring, domid, port, &x->prep_port);
	if (rc) {
		log_msg(4, "cannot bind event channel %u of domain %u: %s",
			port, domid, strerror(-rc));
		x->prep_port = 0;
		return rc;
	}
	x->prep_remote = port;
	return 0;
}

int domains_resume(struct daemon *d, uint32_t domid)
{
	struct domain *x = domain_find(d, domid);

	if (!domains_introduced(d, domid))
		return -ENOENT;
	if (x)
		x->shutdown = false;
	return 0;
}

struct conn *domains_conn(struct daemon *d, uint32_t domid)
{
	struct domain *x = domain_find(d, domid);

	return x ? x->conn : NULL;
}
