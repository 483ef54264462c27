/*
 * node/fire.c: a change's watch events to this member's watchers
 * (node/fire.h), each filtered by the permissions the event carries, as
 * cxenstored's fire_watches() and watch_permitted() do.
 */
#include "node/fire.h"
#include "node/daemon.h"

struct fire_ctx {
	struct daemon *d;
	const struct store_event *ev;
};

/*
 * watch_permitted() of cxenstored: the old perms, else the node, else its
 * parent must be readable by the watcher. A node that no longer exists
 * (created and removed in one transaction) reaches nobody, not even a
 * privileged watcher, as in cxenstored.
 */
static bool permitted(const struct conn *c, const struct store_event *ev)
{
	const struct conn_identity *id = conn_identity(c);
	struct store_caller w = {.domid = id->domid,
				 .privileged = id->privileged,
				 .target = id->target};

	if (ev->path[0] == '@')
		return id->privileged ||
		       (ev->has_node && (store_perm_for(&w, ev->node.v,
							ev->node.n) &
					 STORE_PERM_READ));
	if (ev->has_old &&
	    (store_perm_for(&w, ev->old.v, ev->old.n) & STORE_PERM_READ))
		return true;
	if (!ev->has_node)
		return false;
	if (store_perm_for(&w, ev->node.v, ev->node.n) & STORE_PERM_READ)
		return true;
	return ev->has_parent &&
	       (store_perm_for(&w, ev->parent.v, ev->parent.n) &
		STORE_PERM_READ);
}

static void deliver(void *arg, struct conn *c, const char *report,
		    const char *token)
{
	struct fire_ctx *f = arg;

	if (permitted(c, f->ev))
		conn_event(c, report, token);
}

void fire_events(struct daemon *d, const struct store_events *ev)
{
	size_t i;

	for (i = 0; i < ev->n; i++) {
		struct fire_ctx f = {d, &ev->v[i]};

		watch_fire(d->watches, ev->v[i].path, ev->v[i].exact, deliver,
			   &f);
	}
}
