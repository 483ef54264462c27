/*
 * node/fire.c: a change's watch events to this member's watchers
 * (node/fire.h), each filtered by the permissions the event carries, as
 * cxenstored's fire_watches() and watch_permitted() do.
 */
#include "node/fire.h"
#include "node/daemon.h"
#include "node/watch.h"

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

/* A watch of everything that may have changed: no permission filter
 * (it reports the watcher's own path, as after a restart). */
static void deliver_raw(void *arg, struct conn *c, const char *report,
			const char *token)
{
	(void)arg;
	conn_event(c, report, token);
}

void fire_all(struct daemon *d)
{
	const char *root = "/";

	watch_fire(d->watches, "/", true, deliver_raw, NULL);
	watch_fire_below(d->watches, &root, 1, deliver_raw, NULL);
}

void fire_below(struct daemon *d, const char *const *roots, size_t n)
{
	watch_fire_below(d->watches, roots, n, deliver_raw, NULL);
}

void fire_events(struct daemon *d, const struct store_events *ev)
{
	size_t i;

	if (ev->lost) {
		/* an event could not be recorded: better too many */
		fire_all(d);
		return;
	}

	for (i = 0; i < ev->n; i++) {
		struct fire_ctx f = {d, &ev->v[i]};

		watch_fire(d->watches, ev->v[i].path, ev->v[i].exact, deliver,
			   &f);
	}
}
