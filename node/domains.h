/*
 * node/domains.h: the guests of this host (node/domain.c, domain_ring.c):
 * their rings, event channels and lifecycle (cxenstored 4.17's
 * xenstored_domain.c), on top of the domain registry that the log
 * replicates (node/store/store.h). Every change of the registry goes
 * through the log; this module makes the registry true on this machine.
 */
#ifndef XSR_NODE_DOMAINS_H
#define XSR_NODE_DOMAINS_H

#include <stdbool.h>
#include <stdint.h>

#include "node/conn.h"

struct daemon;
struct sm_result;

/*
 * Create the module (d->domains) and open the ring backend of
 * --ring-backend, if any; ring connections are served by h (copied).
 * 0, -ENOMEM or the backend's error (logged).
 */
int domains_open(struct daemon *d, const struct conn_handler *h);
/* Serving: attach every introduced domain again, introduce dom0's ring. */
void domains_start(struct daemon *d);
/* Detach every ring (journals kept) and stop polling. */
void domains_close(struct daemon *d);
void domains_free(struct daemon *d);
/* An entry was applied: make this host's rings follow the registry. */
void domains_applied(struct daemon *d, const struct sm_result *res,
		     uint64_t index);
/*
 * The store was swapped for a snapshot (node/snapshot.c): detach the rings
 * of domains the registry no longer has here, attach those it has and
 * this member does not serve, follow the watches of the others.
 */
void domains_resync(struct daemon *d);
/* After the reply to a guest's WATCH: its initial event. */
void domains_watch_added(struct daemon *d, const struct sm_result *res);
/* Periodic work (the daemon's tick): look at every ring again now and
 * then, so that one not read for a while is read once it may be. */
void domains_tick(struct daemon *d, uint64_t now_ms);
/* Is domid introduced on this host? (dom0 always is.) */
bool domains_introduced(struct daemon *d, uint32_t domid);
/* Does the hypervisor know domid? Without a ring backend every domid
 * below the reserved ones counts as existing. */
bool domains_exists(struct daemon *d, uint32_t domid);
/* INTRODUCE: map the page and bind the channel before the entry goes. */
int domains_prepare(struct daemon *d, uint32_t domid, uint64_t gfn,
		    uint32_t port);
/* RESUME: its next shutdown fires @releaseDomain again. */
int domains_resume(struct daemon *d, uint32_t domid);
/* The ring connection serving domid here, or NULL. */
struct conn *domains_conn(struct daemon *d, uint32_t domid);

#endif
