/*
 * node/snapshot.c: the daemon's snapshot callbacks for consensus/repl:
 * pin the store on the loop thread (O(hosts)), encode the pinned version
 * anywhere (node/sm_snap.c), restore by swapping in a decoded store.
 */
#include "node/daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/sm.h"

struct snap_pin {
	struct daemon *d;
	struct store_pin *pin;
};

void *snapshot_pin(void *data)
{
	struct daemon *d = data;
	struct snap_pin *p = malloc(sizeof(*p));

	if (!p)
		return NULL;
	p->d = d;
	p->pin = store_pin(d->store);
	if (!p->pin) {
		free(p);
		return NULL;
	}
	return p;
}

void snapshot_unpin(void *data, void *pin)
{
	struct snap_pin *p = pin;

	store_unpin(p->pin);
	free(p);
}

int snapshot_write(void *pin, void **buf, size_t *len)
{
	struct snap_pin *p = pin;

	return sm_snapshot_encode(p->pin, buf, len);
}

int snapshot_restore(void *data, const void *buf, size_t len)
{
	struct daemon *d = data;
	struct store *st;
	int rc;

	rc = sm_snapshot_decode(buf, len, &st);
	if (rc) {
		log_msg(3, "snapshot of %zu bytes is damaged: %s", len,
			strerror(-rc));
		return rc;
	}
	/*
	 * Open transactions keep their own references to the nodes they
	 * read, and check them at commit against whatever is current.
	 */
	store_free(d->store);
	d->store = st;
	log_msg(6, "restored a snapshot at index %llu",
		(unsigned long long)store_applied_index(st));
	return 0;
}
