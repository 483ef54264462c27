/*
 * node/dispatch_node.c: the requests on nodes: reads answered from the
 * local store (in the caller's transaction, if any), and mutations, which
 * a transaction applies to itself here and which otherwise become log
 * entries (cxenstored's do_read() ... do_set_perms()).
 */
#include "node/dispatch_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store_txn *st_of(const struct request *q)
{
	return q->tx ? q->tx->st : NULL;
}

/* ---- Reads ---------------------------------------------------------- */

/*
 * The canonical path of a request with a single path argument, to be
 * freed; or NULL with *v the verdict already reached.
 */
static char *one_path(struct request *q, enum conn_verdict *v)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);
	char *path;

	if (!arg) {
		*v = dispatch_error(q, -EINVAL);
		return NULL;
	}
	path = dispatch_path(q, arg);
	if (!path)
		*v = dispatch_error(q, -ENOMEM);
	return path;
}

enum conn_verdict dispatch_read(struct request *q)
{
	enum conn_verdict verdict;
	char *path = one_path(q, &verdict);
	const char *v;
	size_t len;
	int rc;

	if (!path)
		return verdict;
	rc = store_read(q->d->store, q->d->host, st_of(q), &q->who, path, &v,
			&len);
	free(path);
	return rc ? dispatch_error(q, rc) : dispatch_reply(q, v, len);
}

enum conn_verdict dispatch_directory(struct request *q)
{
	enum conn_verdict verdict;
	char *path = one_path(q, &verdict);
	const char *kids;
	uint64_t gen;
	size_t len;
	int rc;

	if (!path)
		return verdict;
	rc = store_directory(q->d->store, q->d->host, st_of(q), &q->who, path,
			     &kids, &len, &gen);
	free(path);
	return rc ? dispatch_error(q, rc) : dispatch_reply(q, kids, len);
}

/* send_directory_part(): "gen\0" + whole names from offset, "\0" at end. */
enum conn_verdict dispatch_directory_part(struct request *q)
{
	const char *payload = q->r->payload, *kids, *child;
	char gen[24], *path, *data;
	size_t childlen, off, len, maxlen, genlen;
	uint64_t generation;
	int rc;

	if (wire_count_strings(payload, q->r->hdr.len) != 2)
		return dispatch_error(q, -EINVAL);
	path = dispatch_path(q, payload);
	if (!path)
		return dispatch_error(q, -ENOMEM);
	rc = store_directory(q->d->store, q->d->host, st_of(q), &q->who, path,
			     &kids, &childlen, &generation);
	free(path);
	if (rc)
		return dispatch_error(q, rc);
	off = (unsigned int)atoi(payload + strlen(payload) + 1);
	genlen = (size_t)snprintf(gen, sizeof(gen), "%" PRIu64, generation) +
		 1;
	if (off >= childlen) {
		char buf[sizeof(gen) + 1];

		memcpy(buf, gen, genlen);
		buf[genlen] = '\0';
		return dispatch_reply(q, buf, genlen + 1);
	}
	len = 0;
	maxlen = WIRE_PAYLOAD_MAX - genlen - 1;
	child = kids + off;
	while (len + strlen(child) < maxlen) {
		len += strlen(child) + 1;
		child += strlen(child) + 1;
		if (off + len == childlen)
			break;
	}
	data = malloc(genlen + len + 1);
	if (!data)
		return dispatch_error(q, -ENOMEM);
	memcpy(data, gen, genlen);
	memcpy(data + genlen, kids + off, len);
	if (off + len == childlen)
		data[genlen + len++] = '\0';
	dispatch_reply(q, data, genlen + len);
	free(data);
	return CONN_DONE;
}

enum conn_verdict dispatch_get_perms(struct request *q)
{
	enum conn_verdict verdict;
	char *path = one_path(q, &verdict);
	const struct store_perm *p;
	uint32_t n, i;
	size_t len = 0;
	char *out;
	int rc;

	if (!path)
		return verdict;
	rc = store_get_perms(q->d->store, q->d->host, st_of(q), &q->who, path,
			     &p, &n);
	free(path);
	if (rc)
		return dispatch_error(q, rc);
	out = malloc(n * 13 + 1);
	if (!out)
		return dispatch_error(q, -ENOMEM);
	for (i = 0; i < n; i++)
		len += (size_t)store_perm_format(&p[i], out + len) + 1;
	dispatch_reply(q, out, len);
	free(out);
	return CONN_DONE;
}

/* ---- Mutations ------------------------------------------------------ */

/* WRITE, MKDIR, RM or SET_PERMS of one (canonical) path. */
struct mutation {
	uint32_t type;
	const char *path;
	const void *value; /* WRITE */
	size_t vlen;
	const struct store_perm *perms; /* SET_PERMS */
	uint32_t nperms;
};

/* m on host's tree, in transaction st (the store's own checks). */
static int mutate_in(struct request *q, struct store_txn *st,
		     const struct mutation *m)
{
	struct daemon *d = q->d;

	switch (m->type) {
	case WIRE_WRITE:
		return store_write(d->store, d->host, st, &q->who, 0, m->path,
				   m->value, m->vlen, NULL);
	case WIRE_MKDIR:
		return store_mkdir(d->store, d->host, st, &q->who, 0, m->path,
				   NULL);
	case WIRE_RM:
		return store_rm(d->store, d->host, st, &q->who, 0, m->path,
				NULL);
	default:
		return store_set_perms(d->store, d->host, st, &q->who, 0,
				       m->path, m->perms, m->nperms, NULL);
	}
}

/*
 * Does this replica already prove that an unprivileged caller's change
 * will be refused? Tried in a throwaway transaction on the applied state,
 * which holds every change of this host's tree that anyone was answered
 * for (each host's tree is written through its own member) and, as the
 * caller has nothing in the log, every change of its own: a refusal now is
 * a refusal at a moment the request was under way. Only refusals the
 * transaction decides as the log would (permissions, paths, a missing
 * node) count; quotas are decided at commit, so the log decides them. A
 * guest flooding refused writes costs no log entry (XSA-206); the
 * apply-time check stays authoritative for everything else.
 */
static int refused_here(struct request *q, const struct mutation *m)
{
	struct store_txn *st;
	int rc;

	if (q->id->privileged || conn_async_count(q->c) != 0 ||
	    m->path[0] == '@')
		return 0;
	st = store_txn_new(q->d->store, q->d->host);
	if (!st)
		return 0; /* cannot tell: the log decides */
	rc = mutate_in(q, st, m);
	store_txn_free(st);
	return rc == -EACCES || rc == -EINVAL || rc == -ENOENT ? rc : 0;
}

/*
 * In a transaction, m changes the transaction and is answered at once;
 * otherwise it is a log entry, answered once applied (unless this replica
 * proves it refused: refused_here()). Special nodes are global state:
 * their permissions change through the log even in a transaction.
 */
static enum conn_verdict mutate(struct request *q, const struct mutation *m)
{
	struct daemon *d = q->d;
	struct store_txn *st = st_of(q);
	struct sm_origin o;
	size_t blen;
	void *buf;
	int rc;

	if (st && m->path[0] != '@') {
		rc = mutate_in(q, st, m);
		return rc ? dispatch_error(q, rc) : dispatch_ok(q);
	}
	rc = refused_here(q, m);
	if (rc)
		return dispatch_error(q, rc);
	o = dispatch_origin(q);
	switch (m->type) {
	case WIRE_WRITE:
		rc = sm_entry_write(&o, m->path, m->value, m->vlen, &buf,
				    &blen);
		break;
	case WIRE_MKDIR:
		rc = sm_entry_mkdir(&o, m->path, &buf, &blen);
		break;
	case WIRE_RM:
		rc = sm_entry_rm(&o, m->path, &buf, &blen);
		break;
	default:
		rc = sm_entry_set_perms(&o, m->path, m->perms, m->nperms, &buf,
					&blen);
		break;
	}
	return submit_request(d, q->c, q->r, rc, buf, blen, o.seq);
}

/* mutate() with m's path from arg, made absolute. */
static enum conn_verdict mutate_path(struct request *q, struct mutation *m,
				     const char *arg)
{
	enum conn_verdict v;
	char *path = dispatch_path(q, arg);

	if (!path)
		return dispatch_error(q, -ENOMEM);
	m->type = q->r->hdr.type;
	m->path = path;
	v = mutate(q, m);
	free(path);
	return v;
}

enum conn_verdict dispatch_write(struct request *q)
{
	const char *argv[1];
	struct mutation m = {0};
	size_t off;

	if (wire_split(q->r->payload, q->r->hdr.len, argv, 1) < 1)
		return dispatch_error(q, -EINVAL);
	off = strlen(argv[0]) + 1;
	m.value = q->r->payload + off;
	m.vlen = q->r->hdr.len - off;
	return mutate_path(q, &m, argv[0]);
}

static enum conn_verdict mkdir_rm(struct request *q)
{
	const char *arg = wire_onearg(q->r->payload, q->r->hdr.len);
	struct mutation m = {0};

	if (!arg)
		return dispatch_error(q, -EINVAL);
	return mutate_path(q, &m, arg);
}

enum conn_verdict dispatch_mkdir(struct request *q)
{
	return mkdir_rm(q);
}

enum conn_verdict dispatch_rm(struct request *q)
{
	return mkdir_rm(q);
}

enum conn_verdict dispatch_set_perms(struct request *q)
{
	const char *payload = q->r->payload;
	unsigned int n = wire_count_strings(payload, q->r->hdr.len), i;
	struct mutation m = {0};
	struct store_perm *perms;
	enum conn_verdict v;
	const char *p;

	if (n < 2)
		return dispatch_error(q, -EINVAL);
	n--;
	if (!q->id->privileged && q->who.quota.permissions &&
	    n > q->who.quota.permissions)
		return dispatch_error(q, -ENOSPC);
	perms = calloc(n, sizeof(*perms));
	if (!perms)
		return dispatch_error(q, -ENOMEM);
	p = payload + strlen(payload) + 1;
	for (i = 0; i < n; i++) {
		if (store_perm_parse(p, &perms[i])) {
			free(perms);
			return dispatch_error(q, -EINVAL);
		}
		p += strlen(p) + 1;
		/*
		 * domain_alloc_permrefs(): entries naming a domain that does
		 * not exist are kept but ignored. Without a hypervisor to ask,
		 * every domid below DOMID_FIRST_RESERVED counts as existing.
		 */
		if (!domains_exists(q->d, perms[i].domid))
			perms[i].ignore = 1;
	}
	if (perms[0].ignore) {
		free(perms);
		return dispatch_error(q, -ENOENT);
	}
	m.perms = perms;
	m.nperms = n;
	v = mutate_path(q, &m, payload);
	free(perms);
	return v;
}
