/*
 * node/dispatch_watch.c: WATCH, UNWATCH, RESET_WATCHES. A socket client's
 * watches are this member's alone (node/watch.h); a guest's are
 * replicated state (the domain registry), so its watch requests go
 * through the log and the store decides duplicates and the quota as
 * cxenstored's do_watch() does.
 */
#include "node/dispatch_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A guest's WATCH, UNWATCH or RESET_WATCHES: a log entry. */
static enum conn_verdict ring_watch_op(struct request *q, const char *path,
				       const char *token)
{
	uint32_t domid = q->id->domid;
	struct sm_origin o = dispatch_origin(q);
	size_t blen;
	void *buf;
	int rc;

	if (q->r->hdr.type == WIRE_RESET_WATCHES)
		rc = sm_entry_reset_watches(&o, domid, &buf, &blen);
	else
		rc = sm_entry_watch(
			&o, domid, path, token,
			q->id->privileged ? 0
					  : caller_quotas(q->d, domid).watches,
			q->r->hdr.type == WIRE_UNWATCH, &buf, &blen);
	return submit_request(q->d, q->c, q->r, rc, buf, blen, o.seq);
}

/* The watched path: "@..." as given, others absolute and valid. */
static int watch_path(struct request *q, const char *arg, char **path,
		      size_t *rel_len)
{
	*rel_len = 0;
	if (arg[0] == '@') {
		if (strlen(arg) > WIRE_REL_PATH_MAX)
			return -EINVAL;
		*path = strdup(arg);
		return *path ? 0 : -ENOMEM;
	}
	*path = dispatch_path(q, arg);
	if (!*path)
		return -ENOMEM;
	if (arg[0] != '/')
		*rel_len = strlen(*path) - strlen(arg) - 1;
	if (!store_path_valid(*path, q->who.quota.path_max)) {
		free(*path);
		return -EINVAL;
	}
	return 0;
}

enum conn_verdict dispatch_watch(struct request *q)
{
	struct daemon *d = q->d;
	const char *argv[2], *report;
	unsigned int quota;
	size_t rel_len;
	char *path;
	int rc;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 2) != 2)
		return dispatch_error(q, -EINVAL);
	rc = watch_path(q, argv[0], &path, &rel_len);
	if (rc)
		return dispatch_error(q, rc);
	if (q->id->ring_id) {
		free(path);
		return ring_watch_op(q, argv[0], argv[1]);
	}
	/* duplicates first, then the quota (do_watch()) */
	quota = caller_quotas(d, q->id->domid).watches;
	if (watch_has(d->watches, q->c, path, argv[1]))
		rc = -EEXIST;
	else if (!q->id->privileged && quota &&
		 watch_count(d->watches, q->c) > quota)
		rc = -E2BIG;
	else
		rc = watch_add(d->watches, q->c, conn_serial(q->c), path,
			       argv[1], rel_len);
	if (rc) {
		free(path);
		return dispatch_error(q, rc);
	}
	dispatch_ok(q);
	/* We fire once up front: the initial event follows the OK. */
	report = path + rel_len;
	if (rel_len && *report == '/')
		report++;
	conn_event(q->c, report, argv[1]);
	free(path);
	return CONN_DONE;
}

enum conn_verdict dispatch_unwatch(struct request *q)
{
	struct daemon *d = q->d;
	const char *argv[2];
	char *path;
	int rc;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 2) != 2)
		return dispatch_error(q, -EINVAL);
	path = dispatch_path(q, argv[0]);
	if (!path)
		return dispatch_error(q, -ENOMEM);
	if (q->id->ring_id) {
		/* only what the guest registered can go: ENOENT otherwise */
		rc = watch_has(d->watches, q->c, path, argv[1]) ? 0 : -ENOENT;
		free(path);
		if (rc)
			return dispatch_error(q, rc);
		return ring_watch_op(q, argv[0], argv[1]);
	}
	rc = watch_remove(d->watches, q->c, path, argv[1]);
	free(path);
	return rc ? dispatch_error(q, rc) : dispatch_ok(q);
}

enum conn_verdict dispatch_reset_watches(struct request *q)
{
	/* XSA-484: safe even from inside a transaction */
	client_txn_drop_all(q->cl);
	q->tx = NULL;
	if (q->id->ring_id)
		return ring_watch_op(q, NULL, NULL);
	watch_remove_conn(q->d->watches, q->c);
	return dispatch_ok(q);
}
