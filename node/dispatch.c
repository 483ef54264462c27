/*
 * node/dispatch.c: one handler per message type, in a table with per-type
 * flags (cxenstored's wire_funcs[]), and the generic checks in cxenstored's
 * order: unknown type (ENOSYS), privileged-only (EACCES), transaction id
 * (ENOENT), then the handler.
 *
 * Ordering: a handler that answers at once (a read, an error, anything in a
 * transaction) must not overtake a request of the same connection that is
 * still in the log; it returns CONN_WAIT and runs again once that one is
 * answered. Mutations outside transactions go to the log.
 */
#include "node/daemon.h"
#include "consensus/sm.h"
#include "node/store/store_err.h"
#include "ring/ring.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F_PRIV 1u  /* privileged callers only */
#define F_NOTID 2u /* the transaction id is ignored */
#define F_WRITE 4u /* refused on the read-only socket */

/* Supported ring features (docs/misc/xenstore-ring.txt). */
#define SERVER_FEATURES (WIRE_FEATURE_RECONNECTION | WIRE_FEATURE_ERROR)

typedef enum conn_verdict (*handler_fn)(struct daemon *d, struct conn *c,
					struct client *cl, struct txn *tx,
					struct conn_req *r);

/* May c be answered right now? Not while one of its requests is in the log. */
static bool now(struct conn *c)
{
	return conn_async_count(c) == 0;
}

static enum conn_verdict reply_err(struct conn *c, struct conn_req *r, int err)
{
	if (!now(c))
		return CONN_WAIT;
	/* a transaction's local step that ran out of memory: ENOMEM, as
	 * outside the log nothing is replicated (node/store/store_err.h) */
	conn_reply_error(c, r, store_err_wire(err));
	return CONN_DONE;
}

static enum conn_verdict reply_ok(struct conn *c, struct conn_req *r)
{
	conn_reply(c, r, "OK", 3);
	return CONN_DONE;
}

static struct txn *txn_find(struct client *cl, uint32_t id)
{
	struct txn *t;

	for (t = cl->txns; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static void txn_unlink(struct client *cl, struct txn *tx)
{
	struct txn **pp = &cl->txns;

	while (*pp != tx)
		pp = &(*pp)->next;
	*pp = tx->next;
	cl->n_txns--;
}

static void txn_drop_all(struct client *cl)
{
	struct txn *t;

	while ((t = cl->txns)) {
		cl->txns = t->next;
		store_txn_free(t->st);
		free(t);
	}
	cl->n_txns = 0;
}

static struct store_txn *st_of(struct txn *tx)
{
	return tx ? tx->st : NULL;
}

/* ---- Reads ---------------------------------------------------------- */

/*
 * The start of a read of one path: once none of c's requests is in the
 * log, take r's single argument as a path (relative ones under the
 * caller's home) and learn the caller. Returns the canonical path, to be
 * freed, or NULL with *v the verdict already reached.
 */
static char *read_path(struct daemon *d, struct conn *c, struct conn_req *r,
		       struct store_caller *who, enum conn_verdict *v)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);
	char *path;

	if (!now(c)) {
		*v = CONN_WAIT;
		return NULL;
	}
	if (!arg) {
		*v = reply_err(c, r, -EINVAL);
		return NULL;
	}
	path = caller_canonical(c, arg);
	if (!path) {
		*v = reply_err(c, r, -ENOMEM);
		return NULL;
	}
	caller_of(d, c, who);
	return path;
}

static enum conn_verdict do_read(struct daemon *d, struct conn *c,
				 struct client *cl, struct txn *tx,
				 struct conn_req *r)
{
	struct store_caller who;
	enum conn_verdict verdict;
	char *path = read_path(d, c, r, &who, &verdict);
	const char *v;
	size_t len;
	int rc;

	if (!path)
		return verdict;
	rc = store_read(d->store, d->host, st_of(tx), &who, path, &v, &len);
	free(path);
	if (rc)
		return reply_err(c, r, rc);
	conn_reply(c, r, v, len);
	return CONN_DONE;
}

static enum conn_verdict do_directory(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	struct store_caller who;
	enum conn_verdict verdict;
	char *path = read_path(d, c, r, &who, &verdict);
	const char *kids;
	uint64_t gen;
	size_t len;
	int rc;

	if (!path)
		return verdict;
	rc = store_directory(d->store, d->host, st_of(tx), &who, path, &kids,
			     &len, &gen);
	free(path);
	if (rc)
		return reply_err(c, r, rc);
	conn_reply(c, r, kids, len);
	return CONN_DONE;
}

/* send_directory_part(): "gen\0" + whole names from offset, "\0" at end. */
static enum conn_verdict do_directory_part(struct daemon *d, struct conn *c,
					   struct client *cl, struct txn *tx,
					   struct conn_req *r)
{
	const char *kids, *child;
	struct store_caller who;
	char gen[24], *path, *data;
	size_t childlen, off, len, maxlen, genlen;
	uint64_t generation;
	int rc;

	if (!now(c))
		return CONN_WAIT;
	if (wire_count_strings(r->payload, r->hdr.len) != 2)
		return reply_err(c, r, -EINVAL);
	path = caller_canonical(c, r->payload);
	if (!path)
		return reply_err(c, r, -ENOMEM);
	caller_of(d, c, &who);
	rc = store_directory(d->store, d->host, st_of(tx), &who, path, &kids,
			     &childlen, &generation);
	free(path);
	if (rc)
		return reply_err(c, r, rc);
	off = (unsigned int)atoi(r->payload + strlen(r->payload) + 1);
	genlen = (size_t)snprintf(gen, sizeof(gen), "%" PRIu64, generation) +
		 1;
	if (off >= childlen) {
		char buf[sizeof(gen) + 1];

		memcpy(buf, gen, genlen);
		buf[genlen] = '\0';
		conn_reply(c, r, buf, genlen + 1);
		return CONN_DONE;
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
		return reply_err(c, r, -ENOMEM);
	memcpy(data, gen, genlen);
	memcpy(data + genlen, kids + off, len);
	if (off + len == childlen)
		data[genlen + len++] = '\0';
	conn_reply(c, r, data, genlen + len);
	free(data);
	return CONN_DONE;
}

static enum conn_verdict do_get_perms(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	struct store_caller who;
	enum conn_verdict verdict;
	char *path = read_path(d, c, r, &who, &verdict);
	const struct store_perm *p;
	uint32_t n, i;
	size_t len = 0;
	char *out;
	int rc;

	if (!path)
		return verdict;
	rc = store_get_perms(d->store, d->host, st_of(tx), &who, path, &p, &n);
	free(path);
	if (rc)
		return reply_err(c, r, rc);
	out = malloc(n * 13 + 1);
	if (!out)
		return reply_err(c, r, -ENOMEM);
	for (i = 0; i < n; i++)
		len += (size_t)store_perm_format(&p[i], out + len) + 1;
	conn_reply(c, r, out, len);
	free(out);
	return CONN_DONE;
}

/* ---- Mutations ------------------------------------------------------ */

static enum conn_verdict do_write(struct daemon *d, struct conn *c,
				  struct client *cl, struct txn *tx,
				  struct conn_req *r)
{
	const char *argv[1];
	struct store_caller who;
	size_t off, vlen, blen;
	struct sm_origin o;
	uint64_t seq;
	char *path;
	void *buf;
	int rc;

	if (wire_split(r->payload, r->hdr.len, argv, 1) < 1)
		return reply_err(c, r, -EINVAL);
	if (tx && !now(c))
		return CONN_WAIT;
	off = strlen(argv[0]) + 1;
	vlen = r->hdr.len - off;
	path = caller_canonical(c, argv[0]);
	if (!path)
		return reply_err(c, r, -ENOMEM);
	caller_of(d, c, &who);
	if (tx) {
		rc = store_write(d->store, d->host, tx->st, &who, 0, path,
				 r->payload + off, vlen, NULL);
		free(path);
		return rc ? reply_err(c, r, rc) : reply_ok(c, r);
	}
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	rc = sm_entry_write(&o, path, r->payload + off, vlen, &buf, &blen);
	free(path);
	return submit_request(d, c, r, rc, buf, blen, seq);
}

static enum conn_verdict mkdir_rm(struct daemon *d, struct conn *c,
				  struct txn *tx, struct conn_req *r, bool rm)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);
	struct store_caller who;
	struct sm_origin o;
	uint64_t seq;
	size_t blen;
	char *path;
	void *buf;
	int rc;

	if (!arg)
		return reply_err(c, r, -EINVAL);
	if (tx && !now(c))
		return CONN_WAIT;
	path = caller_canonical(c, arg);
	if (!path)
		return reply_err(c, r, -ENOMEM);
	caller_of(d, c, &who);
	if (tx) {
		rc = rm ? store_rm(d->store, d->host, tx->st, &who, 0, path,
				   NULL)
			: store_mkdir(d->store, d->host, tx->st, &who, 0, path,
				      NULL);
		free(path);
		return rc ? reply_err(c, r, rc) : reply_ok(c, r);
	}
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	rc = rm ? sm_entry_rm(&o, path, &buf, &blen)
		: sm_entry_mkdir(&o, path, &buf, &blen);
	free(path);
	return submit_request(d, c, r, rc, buf, blen, seq);
}

static enum conn_verdict do_mkdir(struct daemon *d, struct conn *c,
				  struct client *cl, struct txn *tx,
				  struct conn_req *r)
{
	return mkdir_rm(d, c, tx, r, false);
}

static enum conn_verdict do_rm(struct daemon *d, struct conn *c,
			       struct client *cl, struct txn *tx,
			       struct conn_req *r)
{
	return mkdir_rm(d, c, tx, r, true);
}

static enum conn_verdict do_set_perms(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	unsigned int n = wire_count_strings(r->payload, r->hdr.len), i;
	const struct conn_identity *id = conn_identity(c);
	struct store_perm *perms;
	struct store_caller who;
	const char *p;
	struct sm_origin o;
	uint64_t seq;
	size_t blen;
	char *path;
	void *buf;
	int rc;

	if (n < 2)
		return reply_err(c, r, -EINVAL);
	n--;
	if (!id->privileged && caller_quotas(d, id->domid).store.permissions &&
	    n > caller_quotas(d, id->domid).store.permissions)
		return reply_err(c, r, -ENOSPC);
	perms = calloc(n, sizeof(*perms));
	if (!perms)
		return reply_err(c, r, -ENOMEM);
	p = r->payload + strlen(r->payload) + 1;
	for (i = 0; i < n; i++) {
		if (store_perm_parse(p, &perms[i])) {
			free(perms);
			return reply_err(c, r, -EINVAL);
		}
		p += strlen(p) + 1;
		/*
		 * domain_alloc_permrefs(): entries naming a domain that does
		 * not exist are kept but ignored. Without a hypervisor to ask,
		 * every domid below DOMID_FIRST_RESERVED counts as existing.
		 */
		if (!domains_exists(d, perms[i].domid))
			perms[i].ignore = 1;
	}
	if (perms[0].ignore) {
		free(perms);
		return reply_err(c, r, -ENOENT);
	}
	/* Special nodes are global state: changed at once, even in a tx. */
	if (tx && r->payload[0] != '@' && !now(c)) {
		free(perms);
		return CONN_WAIT;
	}
	path = caller_canonical(c, r->payload);
	if (!path) {
		free(perms);
		return reply_err(c, r, -ENOMEM);
	}
	caller_of(d, c, &who);
	if (tx && path[0] != '@') {
		rc = store_set_perms(d->store, d->host, tx->st, &who, 0, path,
				     perms, n, NULL);
		free(path);
		free(perms);
		return rc ? reply_err(c, r, rc) : reply_ok(c, r);
	}
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	rc = sm_entry_set_perms(&o, path, perms, n, &buf, &blen);
	free(path);
	free(perms);
	return submit_request(d, c, r, rc, buf, blen, seq);
}

/* ---- Watches -------------------------------------------------------- */

/*
 * A guest's watches are replicated state (the domain registry): WATCH,
 * UNWATCH and RESET_WATCHES from a ring go through the log, and the store
 * decides duplicates and the quota as do_watch() does.
 */
static enum conn_verdict ring_watch_op(struct daemon *d, struct conn *c,
				       struct conn_req *r, const char *path,
				       const char *token, int op)
{
	const struct conn_identity *id = conn_identity(c);
	struct store_caller who;
	struct sm_origin o;
	uint64_t seq;
	size_t blen;
	void *buf;
	int rc;

	caller_of(d, c, &who);
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	if (op == WIRE_RESET_WATCHES)
		rc = sm_entry_reset_watches(&o, id->domid, &buf, &blen);
	else
		rc = sm_entry_watch(&o, id->domid, path, token,
				    id->privileged
					    ? 0
					    : caller_quotas(d, id->domid).watches,
				    op == WIRE_UNWATCH, &buf, &blen);
	return submit_request(d, c, r, rc, buf, blen, seq);
}

static enum conn_verdict do_watch(struct daemon *d, struct conn *c,
				  struct client *cl, struct txn *tx,
				  struct conn_req *r)
{
	const struct conn_identity *id = conn_identity(c);
	const char *argv[2], *report;
	size_t rel_len = 0;
	char *path;
	int rc;

	if (!now(c))
		return CONN_WAIT;
	if (wire_split(r->payload, r->hdr.len, argv, 2) != 2)
		return reply_err(c, r, -EINVAL);
	if (argv[0][0] == '@') {
		if (strlen(argv[0]) > WIRE_REL_PATH_MAX)
			return reply_err(c, r, -EINVAL);
		path = strdup(argv[0]);
	} else {
		path = caller_canonical(c, argv[0]);
		if (path && argv[0][0] != '/')
			rel_len = strlen(path) - strlen(argv[0]) - 1;
		if (path &&
		    !store_path_valid(path, caller_quotas(d, id->domid)
						    .store.path_max)) {
			free(path);
			return reply_err(c, r, -EINVAL);
		}
	}
	if (!path)
		return reply_err(c, r, -ENOMEM);
	if (id->ring_id) {
		free(path);
		return ring_watch_op(d, c, r, argv[0], argv[1], WIRE_WATCH);
	}
	/* duplicates first, then the quota (do_watch()) */
	if (watch_has(d->watches, c, path, argv[1]))
		rc = -EEXIST;
	else if (!id->privileged && caller_quotas(d, id->domid).watches &&
		 watch_count(d->watches, c) >
			 caller_quotas(d, id->domid).watches)
		rc = -E2BIG;
	else
		rc = watch_add(d->watches, c, conn_serial(c), path, argv[1],
			       rel_len);
	if (rc) {
		free(path);
		return reply_err(c, r, rc);
	}
	reply_ok(c, r);
	/* We fire once up front: the initial event follows the OK. */
	report = path + rel_len;
	if (rel_len && *report == '/')
		report++;
	conn_event(c, report, argv[1]);
	free(path);
	return CONN_DONE;
}

static enum conn_verdict do_unwatch(struct daemon *d, struct conn *c,
				    struct client *cl, struct txn *tx,
				    struct conn_req *r)
{
	const char *argv[2];
	char *path;
	int rc;

	if (!now(c))
		return CONN_WAIT;
	if (wire_split(r->payload, r->hdr.len, argv, 2) != 2)
		return reply_err(c, r, -EINVAL);
	path = caller_canonical(c, argv[0]);
	if (!path)
		return reply_err(c, r, -ENOMEM);
	if (conn_identity(c)->ring_id) {
		/* only what the guest registered can go: ENOENT otherwise */
		rc = watch_has(d->watches, c, path, argv[1]) ? 0 : -ENOENT;
		free(path);
		if (rc)
			return reply_err(c, r, rc);
		return ring_watch_op(d, c, r, argv[0], argv[1], WIRE_UNWATCH);
	}
	rc = watch_remove(d->watches, c, path, argv[1]);
	free(path);
	return rc ? reply_err(c, r, rc) : reply_ok(c, r);
}

static enum conn_verdict do_reset_watches(struct daemon *d, struct conn *c,
					  struct client *cl, struct txn *tx,
					  struct conn_req *r)
{
	if (!now(c))
		return CONN_WAIT;
	txn_drop_all(cl); /* XSA-484: safe even from inside a transaction */
	if (conn_identity(c)->ring_id)
		return ring_watch_op(d, c, r, NULL, NULL, WIRE_RESET_WATCHES);
	watch_remove_conn(d->watches, c);
	return reply_ok(c, r);
}

/* ---- Transactions --------------------------------------------------- */

static enum conn_verdict do_transaction_start(struct daemon *d,
					      struct conn *c,
					      struct client *cl,
					      struct txn *tx,
					      struct conn_req *r)
{
	const struct conn_identity *id = conn_identity(c);
	struct txn *t;
	char reply[16];

	if (!now(c))
		return CONN_WAIT;
	if (tx)
		return reply_err(c, r, -EBUSY); /* no nesting */
	if (!id->privileged && caller_quotas(d, id->domid).transactions &&
	    cl->n_txns > caller_quotas(d, id->domid).transactions)
		return reply_err(c, r, -ENOSPC);
	t = calloc(1, sizeof(*t));
	if (!t)
		return reply_err(c, r, -ENOMEM);
	t->st = store_txn_new(d->store, d->host);
	if (!t->st) {
		free(t);
		return reply_err(c, r, -ENOMEM);
	}
	do {
		t->id = cl->next_tx_id++;
	} while (t->id == 0 || txn_find(cl, t->id));
	t->next = cl->txns;
	cl->txns = t;
	cl->n_txns++;
	snprintf(reply, sizeof(reply), "%u", t->id);
	conn_reply(c, r, reply, strlen(reply) + 1);
	return CONN_DONE;
}

static bool commit_modifies(const struct store_commit *cm)
{
	size_t i;

	for (i = 0; i < cm->n; i++)
		if (cm->nodes[i].modified)
			return true;
	return false;
}

static enum conn_verdict do_transaction_end(struct daemon *d, struct conn *c,
					    struct client *cl, struct txn *tx,
					    struct conn_req *r)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);
	struct store_commit cm;
	struct store_caller who;
	enum conn_verdict v;
	struct sm_origin o;
	uint64_t seq;
	size_t blen;
	void *buf;
	int rc;

	if (!arg || (strcmp(arg, "T") != 0 && strcmp(arg, "F") != 0))
		return reply_err(c, r, -EINVAL);
	if (!tx)
		return reply_err(c, r, -ENOENT);
	if (tx->doomed) {
		if (!now(c))
			return CONN_WAIT;
		txn_unlink(cl, tx);
		store_txn_free(tx->st);
		free(tx);
		/* its start was lost with the old daemon: do it again */
		return strcmp(arg, "T") == 0 ? reply_err(c, r, -EAGAIN)
					     : reply_ok(c, r);
	}
	rc = store_txn_export(tx->st, &cm);
	if (rc)
		return reply_err(c, r, rc);
	/* Only a commit that changes something goes to the log. */
	if (strcmp(arg, "F") == 0 || !commit_modifies(&cm)) {
		if (!now(c)) {
			store_commit_release(&cm);
			return CONN_WAIT;
		}
		rc = 0;
		if (strcmp(arg, "T") == 0) {
			/* conflicts of a read-only transaction, decided here */
			caller_of(d, c, &who);
			rc = store_commit(d->store, d->host, &who, 0, &cm,
					  NULL);
		}
		store_commit_release(&cm);
		txn_unlink(cl, tx);
		store_txn_free(tx->st);
		free(tx);
		return rc ? reply_err(c, r, rc) : reply_ok(c, r);
	}
	caller_of(d, c, &who);
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	rc = sm_entry_commit(&o, &cm, &buf, &blen);
	store_commit_release(&cm);
	/* The transaction is over whatever the outcome. */
	txn_unlink(cl, tx);
	store_txn_free(tx->st);
	free(tx);
	v = submit_request(d, c, r, rc, buf, blen, seq);
	return v;
}

/* ---- Domains ------------------------------------------------------------ */

static enum conn_verdict do_get_domain_path(struct daemon *d, struct conn *c,
					    struct client *cl, struct txn *tx,
					    struct conn_req *r)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);
	char path[32];

	if (!now(c))
		return CONN_WAIT;
	if (!arg)
		return reply_err(c, r, -EINVAL);
	/* Xen 4.17 uses atoi(): junk is domain 0. */
	snprintf(path, sizeof(path), "/local/domain/%u",
		 (unsigned int)atoi(arg));
	conn_reply(c, r, path, strlen(path) + 1);
	return CONN_DONE;
}

static enum conn_verdict do_is_domain_introduced(struct daemon *d,
						 struct conn *c,
						 struct client *cl,
						 struct txn *tx,
						 struct conn_req *r)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);
	unsigned int domid;

	if (!now(c))
		return CONN_WAIT;
	if (!arg)
		return reply_err(c, r, -EINVAL);
	domid = (unsigned int)atoi(arg);
	conn_reply(c, r,
		   domid == WIRE_DOMID_SELF || domains_introduced(d, domid)
			   ? "T"
			   : "F",
		   2);
	return CONN_DONE;
}

/* An entry of the domain registry for request r. */
static enum conn_verdict domain_submit_request(struct daemon *d, struct conn *c,
				       struct conn_req *r, int op,
				       uint32_t domid, uint64_t mfn,
				       uint32_t arg)
{
	struct store_caller who;
	struct sm_origin o;
	uint64_t seq;
	size_t blen;
	void *buf;
	int rc;

	caller_of(d, c, &who);
	seq = submit_next_seq(d);
	o = caller_origin(d, c, r, &who, seq);
	switch (op) {
	case WIRE_INTRODUCE:
		rc = sm_entry_introduce(&o, domid, mfn, arg, domid != 0, &buf,
					&blen);
		break;
	case WIRE_RELEASE:
		rc = sm_entry_domain_gone(&o, domid, &buf, &blen);
		break;
	default:
		rc = sm_entry_set_target(&o, domid, arg, &buf, &blen);
		break;
	}
	return submit_request(d, c, r, rc, buf, blen, seq);
}

/* domid, gfn, evtchn (do_introduce()): map and bind first, then the log */
static enum conn_verdict do_introduce(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	const char *argv[3];
	unsigned int port;
	uint64_t gfn;
	int domid, rc;

	if (!now(c))
		return CONN_WAIT;
	if (wire_split(r->payload, r->hdr.len, argv, 3) < 3)
		return reply_err(c, r, -EINVAL);
	domid = atoi(argv[0]);
	gfn = strtoull(argv[1], NULL, 10);
	/* evtchn_port_t is unsigned: "-1" passes, "0" and junk do not */
	port = (unsigned int)atoi(argv[2]);
	if (port == 0)
		return reply_err(c, r, -EINVAL);
	rc = domains_prepare(d, (uint32_t)domid, gfn, port);
	if (rc)
		return reply_err(c, r, rc);
	return domain_submit_request(d, c, r, WIRE_INTRODUCE, (uint32_t)domid, gfn,
			     port);
}

/* RELEASE and RESUME: onearg_domain() then find_connected_domain(). */
static int domain_onearg(struct daemon *d, struct conn_req *r,
			 unsigned int *domid)
{
	const char *arg = wire_onearg(r->payload, r->hdr.len);

	if (!arg)
		return -EINVAL;
	*domid = (unsigned int)atoi(arg);
	if (*domid == 0)
		return -EINVAL;
	return domains_introduced(d, *domid) ? 0 : -ENOENT;
}

static enum conn_verdict do_release(struct daemon *d, struct conn *c,
				    struct client *cl, struct txn *tx,
				    struct conn_req *r)
{
	unsigned int domid;
	int rc;

	if (!now(c))
		return CONN_WAIT;
	rc = domain_onearg(d, r, &domid);
	if (rc)
		return reply_err(c, r, rc);
	return domain_submit_request(d, c, r, WIRE_RELEASE, domid, 0, 0);
}

static enum conn_verdict do_resume(struct daemon *d, struct conn *c,
				   struct client *cl, struct txn *tx,
				   struct conn_req *r)
{
	unsigned int domid;
	int rc;

	if (!now(c))
		return CONN_WAIT;
	rc = domain_onearg(d, r, &domid);
	if (!rc)
		rc = domains_resume(d, domid);
	return rc ? reply_err(c, r, rc) : reply_ok(c, r);
}

static enum conn_verdict do_set_target(struct daemon *d, struct conn *c,
				       struct client *cl, struct txn *tx,
				       struct conn_req *r)
{
	const char *argv[2];
	unsigned int domid, target;

	if (!now(c))
		return CONN_WAIT;
	if (wire_split(r->payload, r->hdr.len, argv, 2) < 2)
		return reply_err(c, r, -EINVAL);
	domid = (unsigned int)atoi(argv[0]);
	target = (unsigned int)atoi(argv[1]);
	if (!domains_introduced(d, domid) || !domains_introduced(d, target))
		return reply_err(c, r, -ENOENT);
	return domain_submit_request(d, c, r, WIRE_SET_TARGET, domid, 0, target);
}

static enum conn_verdict do_get_feature(struct daemon *d, struct conn *c,
					struct client *cl, struct txn *tx,
					struct conn_req *r)
{
	const char *argv[1];
	unsigned int n, domid;
	char out[16];

	if (!now(c))
		return CONN_WAIT;
	n = wire_split(r->payload, r->hdr.len, argv, 1);
	if (n > 0) {
		if (!conn_identity(c)->privileged)
			return reply_err(c, r, -EACCES);
		if (n > 1)
			return reply_err(c, r, -EINVAL);
		if (caller_parse_domid(argv[0], &domid))
			return reply_err(c, r, -EINVAL);
	}
	snprintf(out, sizeof(out), "%u", (unsigned int)SERVER_FEATURES);
	conn_reply(c, r, out, strlen(out) + 1);
	return CONN_DONE;
}

static enum conn_verdict do_set_feature(struct daemon *d, struct conn *c,
					struct client *cl, struct txn *tx,
					struct conn_req *r)
{
	const char *argv[2];
	unsigned int domid;

	if (!now(c))
		return CONN_WAIT;
	if (wire_split(r->payload, r->hdr.len, argv, 2) != 2)
		return reply_err(c, r, -EINVAL);
	if (caller_parse_domid(argv[0], &domid))
		return reply_err(c, r, -EINVAL);
	if ((unsigned int)atoi(argv[1]) & ~(unsigned int)SERVER_FEATURES)
		return reply_err(c, r, -EINVAL);
	if (domains_introduced(d, domid))
		return reply_err(c, r, -EBUSY);
	/* We advertise every feature we have to every domain. */
	return reply_ok(c, r);
}

static enum conn_verdict do_get_quota(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	if (!now(c))
		return CONN_WAIT;
	return control_get_quota(d, c, r);
}

static enum conn_verdict do_set_quota(struct daemon *d, struct conn *c,
				      struct client *cl, struct txn *tx,
				      struct conn_req *r)
{
	if (!now(c))
		return CONN_WAIT;
	return control_set_quota(d, c, r);
}

static enum conn_verdict do_control(struct daemon *d, struct conn *c,
				    struct client *cl, struct txn *tx,
				    struct conn_req *r)
{
	if (!now(c))
		return CONN_WAIT;
	return daemon_control(d, c, r);
}

static const struct {
	handler_fn fn;
	unsigned int flags;
} handlers[WIRE_TYPE_COUNT] = {
	[WIRE_CONTROL] = {do_control, F_PRIV | F_WRITE},
	[WIRE_DIRECTORY] = {do_directory, 0},
	[WIRE_READ] = {do_read, 0},
	[WIRE_GET_PERMS] = {do_get_perms, 0},
	[WIRE_WATCH] = {do_watch, F_NOTID},
	[WIRE_UNWATCH] = {do_unwatch, F_NOTID},
	[WIRE_TRANSACTION_START] = {do_transaction_start, 0},
	[WIRE_TRANSACTION_END] = {do_transaction_end, 0},
	[WIRE_INTRODUCE] = {do_introduce, F_PRIV | F_WRITE},
	[WIRE_RELEASE] = {do_release, F_PRIV | F_WRITE},
	[WIRE_GET_DOMAIN_PATH] = {do_get_domain_path, 0},
	[WIRE_WRITE] = {do_write, F_WRITE},
	[WIRE_MKDIR] = {do_mkdir, F_WRITE},
	[WIRE_RM] = {do_rm, F_WRITE},
	[WIRE_SET_PERMS] = {do_set_perms, F_WRITE},
	[WIRE_IS_DOMAIN_INTRODUCED] = {do_is_domain_introduced, F_PRIV},
	[WIRE_RESUME] = {do_resume, F_PRIV | F_WRITE},
	[WIRE_SET_TARGET] = {do_set_target, F_PRIV | F_WRITE},
	[WIRE_RESET_WATCHES] = {do_reset_watches, 0},
	[WIRE_DIRECTORY_PART] = {do_directory_part, 0},
	[WIRE_GET_FEATURE] = {do_get_feature, 0},
	[WIRE_SET_FEATURE] = {do_set_feature, F_PRIV | F_WRITE},
	[WIRE_GET_QUOTA] = {do_get_quota, F_PRIV},
	[WIRE_SET_QUOTA] = {do_set_quota, F_PRIV | F_WRITE},
};

static struct client *client_of(struct conn *c)
{
	struct client *cl = conn_get_data(c);

	if (!cl) {
		cl = calloc(1, sizeof(*cl));
		if (cl)
			conn_set_data(c, cl);
	}
	return cl;
}

/*
 * A request read again from a ring's journal by a restarted daemon: if
 * the log has applied it already, its result is the answer.
 */
static bool replayed_answer(struct daemon *d, struct conn *c,
			    struct conn_req *r, enum conn_verdict *v)
{
	uint64_t origin = STORE_RING_ORIGIN(conn_identity(c)->ring_id);
	int result = 0;

	switch (store_session_lookup(d->store, origin, r->seq, &result)) {
	case STORE_SEEN:
		if (!now(c)) {
			*v = CONN_WAIT;
			return true;
		}
		*v = result ? reply_err(c, r, result) : reply_ok(c, r);
		return true;
	case STORE_SEEN_FORGOTTEN:
		*v = reply_err(c, r, -EIO);
		return true;
	default:
		return false;
	}
}

/*
 * A transaction id of a ring taken up after a restart: the transaction
 * was lost with the old daemon. Cxenstored would say ENOENT and most
 * guests would fail the operation; instead the transaction goes on (reads
 * see the current tree) and fails with EAGAIN at its end, which every
 * xenbus client retries.
 */
static struct txn *txn_resurrect(struct daemon *d, struct client *cl,
				 uint32_t id)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->st = store_txn_new(d->store, d->host);
	if (!t->st) {
		free(t);
		return NULL;
	}
	t->id = id;
	t->doomed = true;
	t->next = cl->txns;
	cl->txns = t;
	cl->n_txns++;
	if (cl->next_tx_id <= id)
		cl->next_tx_id = id + 1;
	return t;
}

static enum conn_verdict dispatch_request(void *data, struct conn *c,
					  struct conn_req *r)
{
	struct daemon *d = data;
	const struct conn_identity *id = conn_identity(c);
	uint32_t type = r->hdr.type;
	struct client *cl;
	struct txn *tx = NULL;
	unsigned int flags;

	if (type >= WIRE_TYPE_COUNT || !handlers[type].fn) {
		if (now(c))
			log_msg(7, "client sent unknown operation %u", type);
		return reply_err(c, r, -ENOSYS);
	}
	flags = handlers[type].flags;
	if ((flags & F_PRIV) && !id->privileged)
		return reply_err(c, r, -EACCES);
	if ((flags & F_WRITE) && id->readonly)
		return reply_err(c, r, -EACCES);
	cl = client_of(c);
	if (!cl)
		return reply_err(c, r, -ENOMEM);
	if (r->replayed) {
		enum conn_verdict v;

		if (replayed_answer(d, c, r, &v))
			return v;
	}
	if (!(flags & F_NOTID) && r->hdr.tx_id != 0) {
		tx = txn_find(cl, r->hdr.tx_id);
		if (!tx && id->restored)
			tx = txn_resurrect(d, cl, r->hdr.tx_id);
		if (!tx)
			return reply_err(c, r, -ENOENT);
	}
	return handlers[type].fn(d, c, cl, tx, r);
}

static void dispatch_closed(void *data, struct conn *c)
{
	struct daemon *d = data;
	struct client *cl = conn_get_data(c);

	watch_remove_conn(d->watches, c);
	if (cl) {
		txn_drop_all(cl);
		free(cl);
		conn_set_data(c, NULL);
	}
}

static void dispatch_trace(void *data, const struct conn *c, bool out,
			   const struct wire_hdr *h, const void *payload)
{
	struct daemon *d = data;

	trace_io(d->trace, c, out, h, payload);
}

/*
 * conn_handler.may_read: nothing new once stopping; a guest at its hard
 * memory quota is not read (domain_can_read()).
 */
static bool dispatch_may_read(void *data, struct conn *c)
{
	struct daemon *d = data;
	const struct conn_identity *id = conn_identity(c);
	uint32_t memory_quota;
	uint64_t nodes, mem;

	if (d->stopping)
		return false;
	if (id->privileged || !conn_is_ring(c))
		return true;
	memory_quota = caller_quotas(d, id->domid).store.memory;
	if (!memory_quota)
		return true;
	store_domain_usage(d->store, d->host, id->domid, &nodes, &mem);
	mem += conn_output_bytes(c) + watch_memory(d->watches, c);
	return mem < memory_quota;
}

void dispatch_handler(struct daemon *d, struct conn_handler *h)
{
	h->data = d;
	h->request = dispatch_request;
	h->closed = dispatch_closed;
	h->trace = dispatch_trace;
	h->log = log_cb;
	h->may_read = dispatch_may_read;
}
