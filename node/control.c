/*
 * node/control.c: XS_CONTROL sub-commands (xenstore-control), with the
 * output formats of Xen 4.17's xenstored_control.c, and the GET_QUOTA and
 * SET_QUOTA messages of Xen 4.22.
 */
#include "node/control.h"
#include "node/client.h"
#include "node/daemon.h"
#include "node/cluster.h"
#include "node/domains.h"
#include "node/submit.h"
#include "node/trace.h"
#include "node/watch.h"
#include "node/migrate.h"
#include "consensus/sm.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A quota as CONTROL quota shows it. */
struct quota_desc {
	const char *name; /* Xen 4.17 CONTROL name */
	enum quota_item item;
	const char *descr;
};

/* CONTROL quota: the order and wording of Xen 4.17's hard_quotas[]. */
static const struct quota_desc hard[] = {
	{"nodes", QUOTA_NODES, "Nodes per domain"},
	{"watches", QUOTA_WATCHES, "Watches per domain"},
	{"transactions", QUOTA_TRANSACTIONS, "Transactions per domain"},
	{"outstanding", QUOTA_OUTSTANDING, "Outstanding requests per domain"},
	{"transaction-nodes", QUOTA_TRANSACTION_NODES,
	 "Max. number of accessed nodes per transaction"},
	{"memory", QUOTA_MEMORY,
	 "Total Xenstore memory per domain (error level)"},
	{"node-size", QUOTA_NODE_SIZE, "Max. size of a node"},
	{"path-max", QUOTA_PATH_MAX, "Max. length of a node path"},
	{"permissions", QUOTA_PERMISSIONS,
	 "Max. number of permissions per node"},
};

static const struct quota_desc soft[] = {
	{"memory", QUOTA_SOFT_MEMORY,
	 "Total Xenstore memory per domain (warning level)"},
};

/* A reply that grows: an allocation failure becomes ENOMEM. */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void tprintf(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tprintf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL,
			      t->s ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->s && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		{
			size_t cap = (t->cap + (size_t)n + 1) * 2;
			char *s = realloc(t->s, cap);

			if (!s) {
				t->oom = true;
				return;
			}
			t->s = s;
			t->cap = cap;
		}
	}
}

static enum conn_verdict text_reply(struct conn *c, struct conn_req *r,
				    struct text *t)
{
	if (t->oom || !t->s)
		conn_reply_error(c, r, -ENOMEM);
	else
		conn_reply(c, r, t->s, t->len + 1);
	free(t->s);
	return CONN_DONE;
}

static enum conn_verdict ack(struct conn *c, struct conn_req *r)
{
	conn_reply(c, r, "OK", 3);
	return CONN_DONE;
}

static enum conn_verdict err(struct conn *c, struct conn_req *r, int e)
{
	conn_reply_error(c, r, e);
	return CONN_DONE;
}

/* ---- Sub-commands ------------------------------------------------------ */

typedef enum conn_verdict (*ctl_fn)(struct daemon *d, struct conn *c,
				    struct conn_req *r, const char **v,
				    unsigned int n);

static enum conn_verdict ctl_check(struct daemon *d, struct conn *c,
				   struct conn_req *r, const char **v,
				   unsigned int n)
{
	const char *what = NULL;
	int rc;

	if (n)
		return err(c, r, -EINVAL);
	rc = store_check(d->store, &what);
	if (rc) {
		log_msg(3, "CONTROL check: the store is inconsistent: %s",
			what ? what : strerror(-rc));
		return err(c, r, rc);
	}
	log_msg(6, "CONTROL check: the store is consistent");
	return ack(c, r);
}

static enum conn_verdict ctl_log(struct daemon *d, struct conn *c,
				 struct conn_req *r, const char **v,
				 unsigned int n)
{
	if (n != 1)
		return err(c, r, -EINVAL);
	if (strcmp(v[0], "on") == 0)
		trace_open(d->trace);
	else if (strcmp(v[0], "off") == 0)
		trace_close(d->trace);
	else
		return err(c, r, -EINVAL);
	return ack(c, r);
}

static enum conn_verdict ctl_logfile(struct daemon *d, struct conn *c,
				     struct conn_req *r, const char **v,
				     unsigned int n)
{
	if (n != 1)
		return err(c, r, -EINVAL);
	if (trace_set_path(d->trace, v[0]))
		return err(c, r, -ENOMEM);
	return ack(c, r);
}

static void memreport(struct daemon *d, FILE *f)
{
	size_t i;

	fprintf(f, "xenstored memory report: applied index %llu\n",
		(unsigned long long)store_applied_index(d->store));
	for (i = 0; i < store_host_count(d->store); i++) {
		const char *h = store_host_name(d->store, i);

		fprintf(f, "  host %s: %zu nodes\n", h,
			store_node_count(d->store, h));
	}
}

static enum conn_verdict ctl_memreport(struct daemon *d, struct conn *c,
				       struct conn_req *r, const char **v,
				       unsigned int n)
{
	FILE *f;

	if (n > 1)
		return err(c, r, -EINVAL);
	if (n == 0) {
		f = trace_file(d->trace);
		if (!f)
			return err(c, r, -EINVAL); /* cxenstored: EBADF */
		memreport(d, f);
		fflush(f);
		return ack(c, r);
	}
	f = log_append_file(v[0]);
	if (!f)
		return err(c, r, -EINVAL);
	memreport(d, f);
	fclose(f);
	return ack(c, r);
}

static enum conn_verdict ctl_print(struct daemon *d, struct conn *c,
				   struct conn_req *r, const char **v,
				   unsigned int n)
{
	if (n != 1)
		return err(c, r, -EINVAL);
	log_msg(6, "control: %s", v[0]);
	trace_line(d->trace, "control: %s", v[0]);
	return ack(c, r);
}

static enum conn_verdict quota_show(struct daemon *d, struct conn *c,
				    struct conn_req *r,
				    const struct quota_desc *qd, size_t nq)
{
	struct quotas q = caller_quotas(d, STORE_QUOTA_HOST);
	struct text t = {0};
	size_t i;

	tprintf(&t, "Quota settings:\n");
	for (i = 0; i < nq; i++)
		tprintf(&t, "%-17s: %8d %s\n", qd[i].name,
			(int)*caller_quota_field(&q, qd[i].item), qd[i].descr);
	return text_reply(c, r, &t);
}

/*
 * A quota setting is replicated state: it goes through the log, and the
 * request is answered once this member has applied it.
 */
static enum conn_verdict quota_submit(struct daemon *d, struct conn *c,
				      struct conn_req *r, uint32_t domid,
				      enum quota_item item, uint32_t value)
{
	struct store_caller who;
	struct sm_origin o;
	uint64_t seq = submit_next_seq(d);
	void *buf = NULL;
	size_t len = 0;
	int rc;

	caller_of(d, c, &who);
	o = caller_origin(d, c, r, &who, seq);
	rc = sm_entry_quota(&o, domid, item, value, &buf, &len);
	log_msg(5, "quota %s set to %u%s", caller_quota_name(item), value,
		domid == STORE_QUOTA_HOST ? "" : " for one domain");
	return submit_request(d, c, r, rc, buf, len, seq);
}

/* A value as CONTROL quota set and SET_QUOTA take it (atoi()), or 0. */
static uint32_t quota_value(const char *s)
{
	int v = atoi(s);

	return v > 0 ? (uint32_t)v : 0;
}

static enum conn_verdict quota_set(struct daemon *d, struct conn *c,
				   struct conn_req *r, const char **v,
				   unsigned int n, const struct quota_desc *qd,
				   size_t nq)
{
	uint32_t val;
	size_t i;

	if (n != 2)
		return err(c, r, -EINVAL);
	val = quota_value(v[1]);
	for (i = 0; i < nq; i++) {
		if (strcmp(v[0], qd[i].name) == 0) {
			if (!caller_quota_valid(qd[i].item, val))
				return err(c, r, -EINVAL);
			return quota_submit(d, c, r, STORE_QUOTA_HOST,
					    qd[i].item, val);
		}
	}
	return err(c, r, -EINVAL);
}

/* domain_get_quota(): usage of a domain known to this daemon. */
static enum conn_verdict quota_domain(struct daemon *d, struct conn *c,
				      struct conn_req *r, unsigned int domid)
{
	struct conn *dc = domains_conn(d, domid);
	uint64_t nodes, memory;
	struct text t = {0};

	store_domain_usage(d->store, d->host, domid, &nodes, &memory);
	if (domid != 0 && nodes == 0 && !domains_introduced(d, domid))
		return err(c, r, -ENOENT);
	if (dc)
		memory += watch_memory(d->watches, dc) + conn_output_bytes(dc) +
			  client_txn_memory(dc);
	tprintf(&t, "Domain %u:\n", domid);
	tprintf(&t, "%-16s: %8d\n", "nodes", (int)nodes);
	tprintf(&t, "%-16s: %8d\n", "watches",
		dc ? (int)watch_count(d->watches, dc) : 0);
	tprintf(&t, "%-16s: %8d\n", "transactions", dc ? (int)client_txn_count(dc) : 0);
	tprintf(&t, "%-16s: %8d\n", "outstanding",
		dc ? (int)conn_outstanding(dc) : 0);
	tprintf(&t, "%-16s: %8d\n", "memory", (int)memory);
	return text_reply(c, r, &t);
}

static enum conn_verdict ctl_quota(struct daemon *d, struct conn *c,
				   struct conn_req *r, const char **v,
				   unsigned int n)
{
	const size_t nh = sizeof(hard) / sizeof(hard[0]);

	if (n == 0)
		return quota_show(d, c, r, hard, nh);
	if (strcmp(v[0], "set") == 0)
		return quota_set(d, c, r, v + 1, n - 1, hard, nh);
	if (n != 1)
		return err(c, r, -EINVAL);
	return quota_domain(d, c, r, (unsigned int)atoi(v[0]));
}

static enum conn_verdict ctl_quota_soft(struct daemon *d, struct conn *c,
					struct conn_req *r, const char **v,
					unsigned int n)
{
	if (n == 0)
		return quota_show(d, c, r, soft, 1);
	if (strcmp(v[0], "set") == 0)
		return quota_set(d, c, r, v + 1, n - 1, soft, 1);
	return err(c, r, -EINVAL);
}

static enum conn_verdict ctl_live_update(struct daemon *d, struct conn *c,
					 struct conn_req *r, const char **v,
					 unsigned int n)
{
	struct text t = {0};

	/* xenstore-control prints any reply but "OK" as the failure. */
	tprintf(&t, "live-update is not supported: this xenstored keeps its "
		    "store, watches and domains across a restart, so restart "
		    "it instead");
	return text_reply(c, r, &t);
}

static enum conn_verdict ctl_snapshot(struct daemon *d, struct conn *c,
				      struct conn_req *r, const char **v,
				      unsigned int n)
{
	if (n)
		return err(c, r, -EINVAL);
	if (cluster_snapshot_now(d))
		return err(c, r, -ENOMEM);
	return ack(c, r);
}

static enum conn_verdict ctl_help(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **v,
				  unsigned int n);

static enum conn_verdict ctl_cluster(struct daemon *d, struct conn *c,
				     struct conn_req *r, const char **v,
				     unsigned int n)
{
	return cluster_control(d, c, r, v, n);
}

static enum conn_verdict ctl_domain(struct daemon *d, struct conn *c,
				    struct conn_req *r, const char **v,
				    unsigned int n)
{
	return migrate_control(d, c, r, v, n);
}

static const struct {
	const char *cmd;
	ctl_fn fn;
	const char *pars;
	unsigned int max_pars; /* 0: no limit */
} cmds[] = {
	{"check", ctl_check, "", 0},
	{"log", ctl_log, "on|off", 0},
	{"live-update", ctl_live_update, "(not supported: restart instead)",
	 5},
	{"logfile", ctl_logfile, "<file>", 0},
	{"memreport", ctl_memreport, "[<file>]", 0},
	{"print", ctl_print, "<string>", 0},
	{"quota", ctl_quota, "[set <name> <val>|<domid>]", 0},
	{"quota-soft", ctl_quota_soft, "[set <name> <val>]", 0},
	{"snapshot", ctl_snapshot, "(take a log snapshot now)", 0},
	{"cluster", ctl_cluster, "<command> (see xsadm)", 0},
	{"domain", ctl_domain, "migrate|adopt|list ... (see xsadm)", 0},
	{"help", ctl_help, "", 0},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static enum conn_verdict ctl_help(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **v,
				  unsigned int n)
{
	struct text t = {0};
	size_t i;

	if (n)
		return err(c, r, -EINVAL);
	tprintf(&t, "%s", "");
	for (i = 0; i < N_CMDS; i++)
		tprintf(&t, "%s\t%s\n", cmds[i].cmd, cmds[i].pars);
	return text_reply(c, r, &t);
}

enum conn_verdict control_request(struct daemon *d, struct conn *c,
				 struct conn_req *r)
{
	const char **v;
	unsigned int num, i;
	enum conn_verdict res;

	/* The first string must be complete (get_string(in, 0)). */
	if (!r->hdr.len || !memchr(r->payload, 0, r->hdr.len))
		return err(c, r, -EINVAL);
	for (i = 0; i < N_CMDS; i++)
		if (strcmp(r->payload, cmds[i].cmd) == 0)
			break;
	if (i == N_CMDS)
		return err(c, r, -EINVAL);
	num = wire_count_strings(r->payload, r->hdr.len);
	if (cmds[i].max_pars && num > cmds[i].max_pars)
		num = cmds[i].max_pars;
	v = calloc(num, sizeof(*v));
	if (!v)
		return err(c, r, -ENOMEM);
	wire_split(r->payload, r->hdr.len, v, num);
	res = cmds[i].fn(d, c, r, v + 1, num - 1);
	free(v);
	return res;
}

/* ---- GET_QUOTA / SET_QUOTA (Xen 4.22) --------------------------------- */

enum conn_verdict control_get_quota(struct daemon *d, struct conn *c,
				    struct conn_req *r)
{
	const char *v[2];
	unsigned int n = wire_split(r->payload, r->hdr.len, v, 2);
	unsigned int domid = STORE_QUOTA_HOST;
	struct text t = {0};
	struct quotas q;
	const char *name;
	int item, i;

	if (n > 2)
		return err(c, r, -EINVAL);
	if (n == 0) {
		for (i = 0; i < QUOTA_ITEMS; i++)
			tprintf(&t, "%s%s", i ? " " : "",
				caller_quota_name((enum quota_item)i));
		return text_reply(c, r, &t);
	}
	name = v[0];
	if (n == 2) {
		if (caller_parse_domid(v[0], &domid))
			return err(c, r, -EINVAL);
		name = v[1];
	}
	item = caller_quota_by_name(name);
	if (item < 0)
		return err(c, r, -EINVAL);
	q = caller_quotas(d, domid);
	tprintf(&t, "%u", *caller_quota_field(&q, (enum quota_item)item));
	return text_reply(c, r, &t);
}

enum conn_verdict control_set_quota(struct daemon *d, struct conn *c,
				    struct conn_req *r)
{
	const char *v[3];
	unsigned int n = wire_split(r->payload, r->hdr.len, v, 3);
	unsigned int domid = STORE_QUOTA_HOST;
	const char *name, *val;
	uint32_t value;
	int item;

	if (n < 2 || n > 3)
		return err(c, r, -EINVAL);
	name = v[0];
	val = v[1];
	if (n == 3) {
		if (caller_parse_domid(v[0], &domid) || domid >= 0x7FF0)
			return err(c, r, -EINVAL);
		name = v[1];
		val = v[2];
	}
	item = caller_quota_by_name(name);
	value = quota_value(val);
	if (item < 0 || !caller_quota_valid((enum quota_item)item, value))
		return err(c, r, -EINVAL);
	return quota_submit(d, c, r, domid, (enum quota_item)item, value);
}
