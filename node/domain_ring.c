/*
 * node/domain_ring.c: one domain's ring on this host (node/domain_int.h):
 * the page mapped, the event channel bound, the ring connection with its
 * journal, and the connection's watches kept equal to the registry's.
 */
#include "node/domain_int.h"
#include "node/fire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What we advertise in the page (docs/misc/xenstore-ring.txt). */
#define RING_FEATURES                                                          \
	(XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR)

/* ---- Helpers ------------------------------------------------------------ */

struct domain *domain_find(struct daemon *d, uint32_t domid)
{
	struct domain *x;

	for (x = d->domains->doms; x; x = x->next)
		if (x->domid == domid)
			return x;
	return NULL;
}

struct domain *domain_get(struct daemon *d, uint32_t domid)
{
	struct domain *x = domain_find(d, domid);

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->d = d;
	x->domid = domid;
	x->next = d->domains->doms;
	d->domains->doms = x;
	return x;
}

void domain_journal_path(struct daemon *d, uint32_t domid, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/rings/%u", d->cfg.data_dir, domid);
}

/* Submit an entry of the daemon's own (no client waits for it). */
void domain_submit_own(struct daemon *d, int (*enc)(struct daemon *d,
						     struct sm_origin *o,
						     void *arg, void **buf,
						     size_t *len),
		       void *arg, const char *what)
{
	struct sm_origin o = submit_own_origin(d);
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

	if (x->local_port && x->d->domains->ring)
		ring_backend_notify(x->d->domains->ring, x->local_port);
}

static void ring_event(void *arg, struct conn *c, enum conn_ring_event ev,
		       uint32_t error)
{
	struct domain *x = arg;
	struct daemon *d = x->d;
	struct sm_origin o;
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
		o = submit_own_origin(d);
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
void domain_sync_watches(struct domain *x, bool fire_new)
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
void domain_close_conn(struct domain *x, const char *why)
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
int domain_attach(struct domain *x, uint64_t ring_id, bool reset,
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
	struct conn_limits lim = d->cfg.limits;
	struct conn_ring_ops ops = {x, ring_notify, ring_event};
	struct ring_io io;
	char path[4096];
	bool fresh = true;
	int rc;

	domain_close_conn(x, "ring restarted");
	if (!x->jr) {
		domain_journal_path(d, x->domid, path, sizeof(path));
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
	rc = conn_ring_new(d->pool, x->page, x->jr, fresh, &id, &lim, &d->domains->client,
			   &ops, &x->conn);
	if (rc) {
		log_msg(3, "cannot serve the ring of domain %u: %s", x->domid,
			strerror(-rc));
		return rc;
	}
	x->ring_id = ring_id;
	x->reset_asked = false;
	domain_sync_watches(x, restored);
	/* the guest may have written while nobody listened */
	ring_notify(x);
	return 0;
}

/* Let go of everything of x here (not of the registry). */
void domain_detach(struct domain *x, bool forget_journal)
{
	struct daemon *d = x->d;
	char path[4096];

	domain_close_conn(x, NULL);
	if (x->local_port && d->domains->ring)
		ring_backend_unbind(d->domains->ring, x->local_port);
	x->local_port = 0;
	/*
	 * A closed, orphaned connection touches neither the page nor the
	 * journal any more, nor x (conn.h).
	 */
	if (x->page && d->domains->ring)
		ring_backend_unmap(d->domains->ring, x->domid, x->page);
	x->page = NULL;
	ring_journal_close(x->jr);
	x->jr = NULL;
	if (forget_journal) {
		domain_journal_path(d, x->domid, path, sizeof(path));
		unlink(path);
	}
}

void domain_forget(struct domain *x)
{
	struct daemon *d = x->d;
	struct domain **pp;

	domain_detach(x, false);
	if (x->prep_page && d->domains->ring)
		ring_backend_unmap(d->domains->ring, x->domid, x->prep_page);
	if (x->prep_port && d->domains->ring)
		ring_backend_unbind(d->domains->ring, x->prep_port);
	for (pp = &d->domains->doms; *pp != x; pp = &(*pp)->next)
		;
	*pp = x->next;
	free(x);
}

/* Map and bind x from the registry's parameters (restart, late apply). */
int domain_connect(struct domain *x,
				 const struct store_domain *sd)
{
	struct daemon *d = x->d;
	uint32_t remote = sd->port;
	int rc;

	if (!x->page) {
		if (x->domid == 0)
			rc = ring_backend_dom0(d->domains->ring, &x->page, &remote);
		else
			rc = ring_backend_map(d->domains->ring, x->domid, sd->mfn,
					      &x->page);
		if (rc)
			return rc;
	}
	if (!x->local_port) {
		rc = ring_backend_bind(d->domains->ring, x->domid, remote,
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
int domain_take_up(struct domain *x, const struct store_domain *sd)
{
	struct daemon *d = x->d;

	if (x->prep_page || x->prep_port) {
		/* take up what the request prepared */
		if (x->prep_page) {
			if (x->page && x->page != x->prep_page)
				ring_backend_unmap(d->domains->ring, x->domid, x->page);
			x->page = x->prep_page;
		}
		if (x->prep_port) {
			if (x->local_port)
				ring_backend_unbind(d->domains->ring, x->local_port);
			x->local_port = x->prep_port;
			x->remote_port = x->prep_remote;
		}
		x->prep_page = NULL;
		x->prep_port = 0;
	} else if (x->remote_port != sd->port && x->local_port) {
		/* introduced again elsewhere with a new port */
		ring_backend_unbind(d->domains->ring, x->local_port);
		x->local_port = 0;
	}
	return domain_connect(x, sd);
}
