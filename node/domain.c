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
#include "node/daemon.h"
#include "node/fire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus/sm.h"
#include "ring/ring.h"

#define DOMID_FIRST_RESERVED 0x7FF0u
/* What we advertise in the page (docs/misc/xenstore-ring.txt). */
#define RING_FEATURES                                                          \
	(XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR)

struct domain {
	struct domain *next;
	struct daemon *d;
	uint32_t domid;
	void *page;	     /* mapped, or NULL */
	uint32_t local_port; /* bound, or 0 */
	uint32_t remote_port;
	struct ring_journal *jr;
	struct conn *conn;   /* serving the ring, or NULL */
	uint64_t ring_id;    /* the session conn serves */
	bool shutdown;	     /* @releaseDomain fired for its shutdown */
	bool gone_asked;     /* a DomainGone entry is on its way */
	bool reset_asked;    /* a RingReset entry is on its way */
	/* what an INTRODUCE request prepared, for its entry to take up */
	void *prep_page;
	uint32_t prep_port, prep_remote;
};

/* ---- Helpers ------------------------------------------------------------ */

static struct domain *dom_find(struct daemon *d, uint32_t domid)
{
	struct domain *x;

	for (x = d->doms; x; x = x->next)
		if (x->domid == domid)
			return x;
	return NULL;
}

static struct domain *dom_get(struct daemon *d, uint32_t domid)
{
	struct domain *x = dom_find(d, domid);

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->d = d;
	x->domid = domid;
	x->next = d->doms;
	d->doms = x;
	return x;
}

static void journal_path(struct daemon *d, uint32_t domid, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/rings/%u", d->cfg.data_dir, domid);
}

/* Submit an entry of the daemon's own (no client waits for it). */
static void submit_own(struct daemon *d, int (*enc)(struct daemon *d,
						     struct sm_origin *o,
						     void *arg, void **buf,
						     size_t *len),
		       void *arg, const char *what)
{
	struct sm_origin o = {d->member_id, submit_next_seq(d), d->host, NULL,
			      0, 0};
	void *buf;
	size_t len;
	int rc = enc(d, &o, arg, &buf, &len);

	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq, NULL, NULL);
	if (rc)
		log_msg(3, "cannot submit %s: %s", what, strerror(-rc));
}

/* ---- The ring connection -------------------------------------------------- */

static void ring_notify(void *arg)
{
	struct domain *x = arg;

	if (x->local_port && x->d->ring)
		ring_backend_notify(x->d->ring, x->local_port);
}

static void ring_event(void *arg, struct conn *c, enum conn_ring_event ev,
		       uint32_t error)
{
	struct domain *x = arg;
	struct daemon *d = x->d;
	struct sm_origin o = {d->member_id, 0, d->host, NULL, 0, 0};
	void *buf;
	size_t len;
	int rc;

	switch (ev) {
	case CONN_RING_CLOSED:
		if (x->conn == c)
			x->conn = NULL;
		return;
	case CONN_RING_BROKEN:
	case CONN_RING_RECONNECT:
		if (x->conn != c || x->reset_asked || d->stopping)
			return;
		x->reset_asked = true;
		log_msg(ev == CONN_RING_BROKEN ? 4 : 6,
			ev == CONN_RING_BROKEN
				? "domain %u broke its ring (error %u): it is "
				  "ignored until introduced again"
				: "domain %u asks to reconnect its ring",
			x->domid, error);
		o.seq = submit_next_seq(d);
		rc = sm_entry_ring_reset(&o, x->domid,
					 ev == CONN_RING_BROKEN ? error : 0,
					 &buf, &len);
		if (!rc)
			rc = submit_entry(d, NULL, NULL, buf, len, o.seq,
					   NULL, NULL);
		if (rc) {
			x->reset_asked = false;
			log_msg(3, "cannot record the ring reset of domain "
				   "%u: %s",
				x->domid, strerror(-rc));
		}
		return;
	}
}

/* Make the local watches of x's connection those of the registry. */
static void sync_watches(struct domain *x, bool fire_new)
{
	struct daemon *d = x->d;
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, x->domid);
	uint32_t i;

	if (!x->conn)
		return;
	watch_remove_conn(d->watches, x->conn);
	for (i = 0; sd && i < sd->nwatches; i++) {
		const char *p = sd->watches[i].path;
		const char *tok = sd->watches[i].token;
		char *abs = caller_canonical(x->conn, p);
		size_t rel = 0;

		if (!abs) {
			log_msg(3, "out of memory restoring a watch of "
				   "domain %u",
				x->domid);
			continue;
		}
		if (p[0] != '/' && p[0] != '@')
			rel = strlen(abs) - strlen(p) - 1;
		if (watch_add(d->watches, x->conn, conn_serial(x->conn), abs,
			      tok, rel) == 0 &&
		    fire_new)
			conn_event(x->conn, p, tok);
		free(abs);
	}
}

/*
 * Close x's ring connection, if any, orphaned first: a closed connection
 * of a ring must not touch the page or the event channel it shares.
 */
static void close_ring_conn(struct domain *x, const char *why)
{
	if (!x->conn)
		return;
	conn_ring_orphan(x->conn);
	conn_close(x->conn, why);
	x->conn = NULL;
}

/*
 * Serve x's ring with a connection for ring session ring_id. reset: the
 * ring starts from nothing (INTRODUCE, reconnection); otherwise the
 * journal is taken up where it was left.
 */
static int attach(struct domain *x, uint64_t ring_id, bool reset,
		  bool restored)
{
	struct daemon *d = x->d;
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, x->domid);
	struct conn_identity id = {
		.domid = x->domid,
		.privileged = x->domid == 0,
		.target = sd ? sd->target : STORE_NO_TARGET,
		.ring_id = ring_id,
		.restored = restored,
	};
	struct conn_limits lim = d->limits;
	struct conn_ring_ops ops = {x, ring_notify, ring_event};
	struct ring_io io;
	char path[4096];
	bool fresh = true;
	int rc;

	close_ring_conn(x, "ring restarted");
	if (!x->jr) {
		journal_path(d, x->domid, path, sizeof(path));
		rc = ring_journal_open(path, ring_id, &x->jr, &fresh);
		if (rc) {
			log_msg(3, "cannot open the ring journal %s: %s", path,
				strerror(-rc));
			return rc;
		}
	} else if (x->jr->ring_id != ring_id) {
		ring_journal_reset(x->jr, ring_id);
	} else {
		fresh = false;
	}
	if (reset) {
		ring_journal_reset(x->jr, ring_id);
		fresh = true;
	} else if (fresh) {
		/* the session goes on without its journal: number requests
		 * after every one the log knows of */
		x->jr->in_base_seq =
			store_session_last(d->store,
					   STORE_RING_ORIGIN(ring_id)) + 1;
	}
	io.page = x->page;
	if (reset) {
		ring_io_reset(&io);
		io.req_cons = io.rsp_prod = 0;
	}
	ring_io_set_features(&io, RING_FEATURES);
	/* a guest waiting for its reconnection has it now (then notify) */
	if (reset && ring_io_connection(&io) == XENSTORE_RECONNECT)
		ring_io_set_connection(&io, XENSTORE_CONNECTED);
	if (x->domid != 0)
		lim.max_outstanding = caller_quotas(d, x->domid).outstanding;
	rc = conn_ring_new(d->pool, x->page, x->jr, fresh, &id, &lim, &d->client,
			   &ops, ++d->conn_serial, &x->conn);
	if (rc) {
		log_msg(3, "cannot serve the ring of domain %u: %s", x->domid,
			strerror(-rc));
		return rc;
	}
	x->ring_id = ring_id;
	x->reset_asked = false;
	sync_watches(x, restored);
	/* the guest may have written while nobody listened */
	ring_notify(x);
	return 0;
}

/* Let go of everything of x here (not of the registry). */
static void detach(struct domain *x, bool forget_journal)
{
	struct daemon *d = x->d;
	char path[4096];

	close_ring_conn(x, NULL);
	if (x->local_port && d->ring)
		ring_backend_unbind(d->ring, x->local_port);
	x->local_port = 0;
	/*
	 * A closed, orphaned connection touches neither the page nor the
	 * journal any more, nor x (conn.h).
	 */
	if (x->page && d->ring)
		ring_backend_unmap(d->ring, x->domid, x->page);
	x->page = NULL;
	ring_journal_close(x->jr);
	x->jr = NULL;
	if (forget_journal) {
		journal_path(d, x->domid, path, sizeof(path));
		unlink(path);
	}
}

static void dom_free(struct domain *x)
{
	struct daemon *d = x->d;
	struct domain **pp;

	detach(x, false);
	if (x->prep_page && d->ring)
		ring_backend_unmap(d->ring, x->domid, x->prep_page);
	if (x->prep_port && d->ring)
		ring_backend_unbind(d->ring, x->prep_port);
	for (pp = &d->doms; *pp != x; pp = &(*pp)->next)
		;
	*pp = x->next;
	free(x);
}

/* Map and bind x from the registry's parameters (restart, late apply). */
static int connect_from_registry(struct domain *x,
				 const struct store_domain *sd)
{
	struct daemon *d = x->d;
	uint32_t remote = sd->port;
	int rc;

	if (!x->page) {
		if (x->domid == 0)
			rc = ring_backend_dom0(d->ring, &x->page, &remote);
		else
			rc = ring_backend_map(d->ring, x->domid, sd->mfn,
					      &x->page);
		if (rc)
			return rc;
	}
	if (!x->local_port) {
		rc = ring_backend_bind(d->ring, x->domid, remote,
				       &x->local_port);
		if (rc)
			return rc;
		x->remote_port = remote;
	}
	return 0;
}

/* ---- Reacting to the log ------------------------------------------------ */

/*
 * Reach x's ring as sd describes it: take up what an INTRODUCE request
 * prepared here, else map and bind from the registry.
 */
static int take_up(struct domain *x, const struct store_domain *sd)
{
	struct daemon *d = x->d;

	if (x->prep_page || x->prep_port) {
		/* take up what the request prepared */
		if (x->prep_page) {
			if (x->page && x->page != x->prep_page)
				ring_backend_unmap(d->ring, x->domid, x->page);
			x->page = x->prep_page;
		}
		if (x->prep_port) {
			if (x->local_port)
				ring_backend_unbind(d->ring, x->local_port);
			x->local_port = x->prep_port;
			x->remote_port = x->prep_remote;
		}
		x->prep_page = NULL;
		x->prep_port = 0;
	} else if (x->remote_port != sd->port && x->local_port) {
		/* introduced again elsewhere with a new port */
		ring_backend_unbind(d->ring, x->local_port);
		x->local_port = 0;
	}
	return connect_from_registry(x, sd);
}

static void applied_introduce(struct daemon *d, uint32_t domid,
			      uint64_t index)
{
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, domid);
	struct domain *x = dom_get(d, domid);
	int rc;

	if (!x || !sd)
		return;
	rc = take_up(x, sd);
	if (rc) {
		log_msg(3, "cannot reach the ring of domain %u: %s", domid,
			strerror(-rc));
		return;
	}
	x->shutdown = false;
	/* dom0's kernel ring is not reset: its kernel may be waiting */
	attach(x, index, domid != 0, false);
	log_msg(6, "domain %u introduced (event channel %u, local port %u)",
		domid, x->remote_port, x->local_port);
}

static void applied_gone(struct daemon *d, uint32_t domid)
{
	struct domain *x = dom_find(d, domid);

	if (!x)
		return;
	detach(x, true);
	dom_free(x);
	log_msg(6, "domain %u released", domid);
}

static void applied_ring_reset(struct daemon *d, uint32_t domid,
			       uint64_t index)
{
	const struct store_domain *sd =
		store_domain_get(d->store, d->host, domid);
	struct domain *x = dom_find(d, domid);

	if (!x || !sd || !x->page)
		return;
	if (sd->ring_error) {
		/* broken: keep it introduced, serve nothing (XSA-325) */
		close_ring_conn(x, "ring broken");
		return;
	}
	attach(x, index, true, false);
}

void domains_applied(struct daemon *d, const struct sm_result *res,
		     uint64_t index)
{
	struct domain *x;

	if (!d->domains_started || res->duplicate || res->result ||
	    strcmp(res->host, d->host) != 0)
		return;
	switch (res->dom_op) {
	case SM_DOM_INTRODUCE:
		if (d->ring)
			applied_introduce(d, res->domid, index);
		break;
	case SM_DOM_GONE:
	case SM_DOM_MOVE: /* it went to another host (or domid) */
		applied_gone(d, res->domid);
		break;
	case SM_DOM_RING_RESET:
		applied_ring_reset(d, res->domid, index);
		break;
	case SM_DOM_SET_TARGET:
		x = dom_find(d, res->domid);
		if (x && x->conn) {
			const struct store_domain *sd = store_domain_get(
				d->store, d->host, res->domid);

			conn_identity_mut(x->conn)->target =
				sd ? sd->target : STORE_NO_TARGET;
		}
		break;
	case SM_DOM_WATCH:
	case SM_DOM_UNWATCH:
	case SM_DOM_RESET_WATCHES:
		x = dom_find(d, res->domid);
		if (x)
			sync_watches(x, false);
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
		close_ring_conn(x, "ring broken");
		return;
	}
	if (x->page && x->ring_id == sd->ring_id) {
		/* the same session: its target and watches may have moved
		 * (a connection that closed stays closed: its RingReset is on
		 * its way) */
		if (x->conn) {
			conn_identity_mut(x->conn)->target = sd->target;
			sync_watches(x, false);
		}
		return;
	}
	rc = take_up(x, sd);
	if (rc) {
		log_msg(3, "cannot reach the ring of domain %u: %s", x->domid,
			strerror(-rc));
		return;
	}
	x->shutdown = false;
	if (attach(x, sd->ring_id, x->domid != 0, false) == 0)
		log_msg(5, "domain %u attached from the snapshot (ring session "
			   "%" PRIu64 ", local port %u)",
			x->domid, sd->ring_id, x->local_port);
}

void domains_resync(struct daemon *d)
{
	struct domain *x, *next;
	size_t i, n;

	if (!d->ring || !d->domains_started)
		return; /* domains_start() reads the registry when serving */
	for (x = d->doms; x; x = next) {
		const struct store_domain *sd =
			store_domain_get(d->store, d->host, x->domid);

		next = x->next;
		if (sd) {
			resync_one(x, sd);
			continue;
		}
		/* released or moved away meanwhile */
		if (x->conn || x->page || x->local_port) {
			detach(x, true);
			log_msg(5, "domain %u is no longer introduced here "
				   "(snapshot): detached",
				x->domid);
		}
		/* an INTRODUCE prepared here keeps waiting for its entry */
		if (!x->prep_page && !x->prep_port)
			dom_free(x);
	}
	n = store_domain_count(d->store, d->host);
	for (i = 0; i < n; i++) {
		const struct store_domain *sd =
			store_domain_at(d->store, d->host, i);

		if (dom_find(d, sd->domid))
			continue;
		x = dom_get(d, sd->domid);
		if (x)
			resync_one(x, sd);
	}
}

void domains_watch_added(struct daemon *d, const struct sm_result *res)
{
	struct domain *x;

	if (!d->domains_started || res->duplicate || res->result ||
	    res->dom_op != SM_DOM_WATCH || strcmp(res->host, d->host) != 0)
		return;
	x = dom_find(d, res->domid);
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
		if (ring_backend_dominfo(d->ring, domid, &info))
			continue;
		x = dom_get(d, domid);
		if (!x)
			continue;
		if (!info.exists || info.dying) {
			if (!x->gone_asked) {
				x->gone_asked = true;
				log_msg(6, "domain %u is %s", domid,
					info.exists ? "dying" : "gone");
				submit_own(d, enc_gone, &domid,
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
					 &ev))
			fire_events(d, &ev);
		store_events_clear(&ev);
	}
}

static void on_event(uv_poll_t *p, int status, int events)
{
	struct daemon *d = p->data;
	uint32_t port;
	int budget = 256; /* then let the rest of the loop run */

	while (budget-- > 0 && ring_backend_pending(d->ring, &port) == 0) {
		struct domain *x;

		if (port == d->virq_port) {
			if (d->domains_started)
				check_domains(d);
		} else {
			for (x = d->doms; x; x = x->next)
				if (x->local_port == port && x->conn)
					conn_ring_kick(x->conn);
		}
		ring_backend_unmask(d->ring, port);
	}
}

/* ---- Start and stop ------------------------------------------------------- */

int domains_open(struct daemon *d)
{
	const char *spec = d->cfg.ring_backend;
	char err[256], path[4096];
	int rc;

	if (!spec || strcmp(spec, "none") == 0)
		return 0;
	rc = ring_backend_open(spec, &d->ring, err, sizeof(err));
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
	rc = ring_backend_bind_virq(d->ring, &d->virq_port);
	if (rc) {
		log_msg(2, "cannot bind VIRQ_DOM_EXC: %s", strerror(-rc));
		return rc;
	}
	rc = uv_poll_init(d->loop, &d->ring_poll, ring_backend_fd(d->ring));
	if (rc) {
		log_msg(2, "cannot poll the event channel device: %s",
			uv_strerror(rc));
		return rc;
	}
	d->ring_poll.data = d;
	d->ring_poll_open = true;
	uv_poll_start(&d->ring_poll, UV_READABLE, on_event);
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

	journal_path(d, domid, path, sizeof(path));
	if (access(path, F_OK) != 0)
		return false;
	if (ring_journal_open(path, ring_id, &j, &fresh) == 0)
		ring_journal_close(j);
	return !fresh;
}

static int enc_dom0(struct daemon *d, struct sm_origin *o, void *arg,
		    void **buf, size_t *len)
{
	return sm_entry_introduce(o, 0, 0, *(uint32_t *)arg, false, buf, len);
}

void domains_start(struct daemon *d)
{
	size_t i, n = store_domain_count(d->store, d->host);
	uint32_t dom0_port = 0;
	void *dom0_page = NULL;
	int rc;

	if (!d->ring)
		return;
	d->domains_started = true;
	/* dom0's kernel ring, if this host has one */
	rc = ring_backend_dom0(d->ring, &dom0_page, &dom0_port);
	if (rc && rc != -ENOENT)
		log_msg(4, "dom0's own ring is unusable: %s", strerror(-rc));
	/* every introduced domain, as it was */
	for (i = 0; i < n; i++) {
		const struct store_domain *sd =
			store_domain_at(d->store, d->host, i);
		struct domain *x = dom_get(d, sd->domid);

		if (!x)
			continue;
		if (sd->domid == 0) {
			if (!dom0_page || sd->port != dom0_port ||
			    !journal_current(d, 0, sd->ring_id))
				continue; /* a new kernel: introduced below */
			x->page = dom0_page;
			dom0_page = NULL;
		}
		rc = connect_from_registry(x, sd);
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
		if (attach(x, sd->ring_id, false, true) == 0)
			log_msg(5,
				"domain %u re-attached (local port %u, "
				"%zu watches restored)",
				sd->domid, x->local_port, (size_t)sd->nwatches);
	}
	if (dom0_page) {
		/* not (or differently) in the registry: introduce it */
		struct domain *x = dom_get(d, 0);

		if (x) {
			x->prep_page = dom0_page;
			rc = ring_backend_bind(d->ring, 0, dom0_port,
					       &x->prep_port);
			x->prep_remote = dom0_port;
			if (rc) {
				log_msg(3, "cannot bind dom0's event channel: "
					   "%s",
					strerror(-rc));
			} else {
				submit_own(d, enc_dom0, &dom0_port,
					   "dom0's introduction");
			}
		}
	}
	/* domains that died while we were away */
	check_domains(d);
}

void domains_close(struct daemon *d)
{
	while (d->doms)
		dom_free(d->doms);
	if (d->ring_poll_open) {
		uv_poll_stop(&d->ring_poll);
		uv_close((uv_handle_t *)&d->ring_poll, NULL);
		d->ring_poll_open = false;
	}
}

void domains_free(struct daemon *d)
{
	ring_backend_close(d->ring);
	d->ring = NULL;
}

/* ---- Requests -------------------------------------------------------------- */

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

	if (!d->ring) {
		log_msg(4,
			"INTRODUCE of domain %u refused: this daemon has no "
			"ring backend (--ring-backend)",
			domid);
		return -EINVAL;
	}
	if (domid >= DOMID_FIRST_RESERVED)
		return -EINVAL;
	x = dom_get(d, domid);
	if (!x)
		return -ENOMEM;
	x->gone_asked = false;
	if (!x->page && !x->prep_page) {
		rc = domid == 0 ? ring_backend_dom0(d->ring, &x->prep_page,
						    &port)
				: ring_backend_map(d->ring, domid, gfn,
						   &x->prep_page);
		if (rc) {
			log_msg(4, "cannot map the ring of domain %u: %s",
				domid, strerror(-rc));
			return rc;
		}
	}
	if (x->prep_port)
		ring_backend_unbind(d->ring, x->prep_port);
	x->prep_port = 0;
	rc = ring_backend_bind(d->ring, domid, port, &x->prep_port);
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
	struct domain *x = dom_find(d, domid);

	if (!domains_introduced(d, domid))
		return -ENOENT;
	if (x)
		x->shutdown = false;
	return 0;
}

struct conn *domains_conn(struct daemon *d, uint32_t domid)
{
	struct domain *x = dom_find(d, domid);

	return x ? x->conn : NULL;
}
