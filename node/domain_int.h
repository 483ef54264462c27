/*
 * node/domain_int.h: what the two files of the domains module share
 * (domain.c: following the registry; domain_ring.c: one domain's ring
 * connection). The rest of the daemon reaches them through domains.h.
 */
#ifndef XSR_NODE_DOMAIN_INT_H
#define XSR_NODE_DOMAIN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "consensus/sm.h"
#include "node/daemon.h"
#include "node/submit.h"
#include "node/watch.h"
#include "ring/ring.h"

#define DOMID_FIRST_RESERVED 0x7FF0u

/* One domain of this host as this member serves it (see domain.c). */
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

/* The module's state (d->domains). */
struct domains {
	struct ring_backend *ring; /* NULL: sockets only */
	uv_poll_t ring_poll;
	bool ring_poll_open;
	uint32_t virq_port;
	struct domain *doms;
	bool started;		  /* serving: the registry is followed */
	uint64_t next_look_ms;	  /* domains_tick() */
	struct conn_handler client; /* the rings' request handler */
};

/* domain_ring.c */
struct domain *domain_find(struct daemon *d, uint32_t domid);
/* Found or created (NULL: out of memory). */
struct domain *domain_get(struct daemon *d, uint32_t domid);
/* Detached (journal kept), unprepared, unlinked and freed. */
void domain_forget(struct domain *x);
void domain_journal_path(struct daemon *d, uint32_t domid, char *buf,
			 size_t len);
/* Submit an entry of the daemon's own, encoded by enc (logged on error). */
void domain_submit_own(struct daemon *d,
		       int (*enc)(struct daemon *d, struct sm_origin *o,
				  void *arg, void **buf, size_t *len),
		       void *arg, const char *what);
/* Make the local watches of x's connection those of the registry. */
void domain_sync_watches(struct domain *x, bool fire_new);
/* Close x's ring connection, if any, orphaned first. */
void domain_close_conn(struct domain *x, const char *why);
/*
 * Serve x's ring with a connection for ring session ring_id. reset: the
 * ring starts from nothing (INTRODUCE, reconnection); otherwise the
 * journal is taken up where it was left. restored: after a restart.
 */
int domain_attach(struct domain *x, uint64_t ring_id, bool reset,
		  bool restored);
/* Let go of everything of x here (not of the registry). */
void domain_detach(struct domain *x, bool forget_journal);
/* Map and bind x from the registry's parameters (restart, late apply). */
int domain_connect(struct domain *x, const struct store_domain *sd);
/* Reach x's ring as sd describes it: what an INTRODUCE request prepared
 * here, else map and bind from the registry. */
int domain_take_up(struct domain *x, const struct store_domain *sd);

#endif
