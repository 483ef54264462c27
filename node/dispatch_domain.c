/*
 * node/dispatch_domain.c: the messages about domains (GET_DOMAIN_PATH,
 * IS_DOMAIN_INTRODUCED, INTRODUCE, RELEASE, RESUME, SET_TARGET), ring
 * features (GET/SET_FEATURE), quotas (GET/SET_QUOTA) and CONTROL. The
 * registry changes go through the log; the domains module makes them
 * true on this host (node/domains.h).
 */
#include "node/dispatch_int.h"
#include "node/caller.h"
#include "node/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Supported ring features (docs/misc/xenstore-ring.txt). */
#define SERVER_FEATURES (WIRE_FEATURE_RECONNECTION | WIRE_FEATURE_ERROR)

enum conn_verdict dispatch_get_domain_path(struct request *q)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);
	char path[32];

	if (!arg)
		return dispatch_error(q, -EINVAL);
	/* Xen 4.17 uses atoi(): junk is domain 0. */
	snprintf(path, sizeof(path), "/local/domain/%u",
		 (unsigned int)atoi(arg));
	return dispatch_reply(q, path, strlen(path) + 1);
}

enum conn_verdict dispatch_is_domain_introduced(struct request *q)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);
	unsigned int domid;

	if (!arg)
		return dispatch_error(q, -EINVAL);
	domid = (unsigned int)atoi(arg);
	return dispatch_reply(q,
			      domid == WIRE_DOMID_SELF ||
					      domains_introduced(q->d, domid)
				      ? "T"
				      : "F",
			      2);
}

/* An entry of the domain registry for q (INTRODUCE, RELEASE, RESUME,
 * SET_TARGET). */
static enum conn_verdict registry_entry(struct request *q, uint32_t domid,
					uint64_t mfn, uint32_t arg)
{
	struct sm_origin o = dispatch_origin(q);
	size_t blen;
	void *buf;
	int rc;

	switch (q->r->hdr.type) {
	case WIRE_INTRODUCE:
		/* a new domain may inherit a suspending one's state
		 * (store_domain_inherit()): within its node quota here */
		rc = sm_entry_introduce(&o, domid, mfn, arg, domid != 0,
					domid != 0,
					caller_quotas(q->d, domid).store.nodes,
					&buf, &blen);
		break;
	case WIRE_RESUME:
		rc = sm_entry_resume(&o, domid, &buf, &blen);
		break;
	case WIRE_RELEASE:
		rc = sm_entry_domain_gone(&o, domid, &buf, &blen);
		break;
	default:
		rc = sm_entry_set_target(&o, domid, arg, &buf, &blen);
		break;
	}
	return submit_request(q->d, q->c, q->r, rc, buf, blen, o.seq);
}

/* domid, gfn, evtchn (do_introduce()): map and bind first, then the log */
enum conn_verdict dispatch_introduce(struct request *q)
{
	const char *argv[3];
	unsigned int port;
	uint64_t gfn;
	int domid, rc;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 3) < 3)
		return dispatch_error(q, -EINVAL);
	domid = atoi(argv[0]);
	gfn = strtoull(argv[1], NULL, 10);
	/* evtchn_port_t is unsigned: "-1" passes, "0" and junk do not */
	port = (unsigned int)atoi(argv[2]);
	if (port == 0)
		return dispatch_error(q, -EINVAL);
	rc = domains_prepare(q->d, (uint32_t)domid, gfn, port);
	if (rc)
		return dispatch_error(q, rc);
	return registry_entry(q, (uint32_t)domid, gfn, port);
}

/* RELEASE and RESUME: onearg_domain() then find_connected_domain(). */
static int one_domain(struct request *q, unsigned int *domid)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);

	if (!arg)
		return -EINVAL;
	*domid = (unsigned int)atoi(arg);
	if (*domid == 0)
		return -EINVAL;
	return domains_introduced(q->d, *domid) ? 0 : -ENOENT;
}

enum conn_verdict dispatch_release(struct request *q)
{
	unsigned int domid;
	int rc = one_domain(q, &domid);

	return rc ? dispatch_error(q, rc) : registry_entry(q, domid, 0, 0);
}

enum conn_verdict dispatch_resume(struct request *q)
{
	unsigned int domid;
	int rc = one_domain(q, &domid);

	if (!rc)
		rc = domains_resume(q->d, domid);
	/* and the log: it is no longer a source to inherit from */
	return rc ? dispatch_error(q, rc) : registry_entry(q, domid, 0, 0);
}

enum conn_verdict dispatch_set_target(struct request *q)
{
	const char *argv[2];
	unsigned int domid, target;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 2) < 2)
		return dispatch_error(q, -EINVAL);
	domid = (unsigned int)atoi(argv[0]);
	target = (unsigned int)atoi(argv[1]);
	if (!domains_introduced(q->d, domid) ||
	    !domains_introduced(q->d, target))
		return dispatch_error(q, -ENOENT);
	return registry_entry(q, domid, 0, target);
}

enum conn_verdict dispatch_get_feature(struct request *q)
{
	const char *argv[1];
	unsigned int n, domid;
	char out[16];

	n = wire_split(q->r->payload, q->r->hdr.len, argv, 1);
	if (n > 0) {
		if (!q->id->privileged)
			return dispatch_error(q, -EACCES);
		if (n > 1)
			return dispatch_error(q, -EINVAL);
		if (caller_parse_domid(argv[0], &domid))
			return dispatch_error(q, -EINVAL);
	}
	snprintf(out, sizeof(out), "%u", (unsigned int)SERVER_FEATURES);
	return dispatch_reply(q, out, strlen(out) + 1);
}

enum conn_verdict dispatch_set_feature(struct request *q)
{
	const char *argv[2];
	unsigned int domid;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 2) != 2)
		return dispatch_error(q, -EINVAL);
	if (caller_parse_domid(argv[0], &domid))
		return dispatch_error(q, -EINVAL);
	if ((unsigned int)atoi(argv[1]) & ~(unsigned int)SERVER_FEATURES)
		return dispatch_error(q, -EINVAL);
	if (domains_introduced(q->d, domid))
		return dispatch_error(q, -EBUSY);
	/* We advertise every feature we have to every domain. */
	return dispatch_ok(q);
}

enum conn_verdict dispatch_get_quota(struct request *q)
{
	return control_get_quota(q->d, q->c, q->r);
}

enum conn_verdict dispatch_set_quota(struct request *q)
{
	return control_set_quota(q->d, q->c, q->r);
}

enum conn_verdict dispatch_control(struct request *q)
{
	return control_request(q->d, q->c, q->r);
}
