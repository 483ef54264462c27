/*
 * consensus/sm_snap.c: the store as a snapshot (wire/entry.proto SnapRecord
 * stream) and back. Encoding only reads a pinned, immutable version, so it
 * may run on any thread.
 *
 * Format: each record is a 4-byte little-endian length then one packed
 * SnapRecord: header, sessions, members, then each host followed by its
 * nodes and its domains, and an end record counting what came before it.
 */
#include "consensus/sm.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/entry.pb-c.h"

#define SNAP_VERSION 2 /* 2: quota settings */

struct out {
	uint8_t *buf;
	size_t len, cap;
	uint64_t records;
};

static int put(struct out *o, const Xsr__SnapRecord *rec)
{
	size_t n = xsr__snap_record__get_packed_size(rec);
	uint32_t le = htole32((uint32_t)n);

	if (o->len + 4 + n > o->cap) {
		size_t cap = (o->cap + 4 + n) * 2;
		uint8_t *b = realloc(o->buf, cap);

		if (!b)
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, &le, 4);
	xsr__snap_record__pack(rec, o->buf + o->len + 4);
	o->len += 4 + n;
	o->records++;
	return 0;
}

static int w_begin(void *arg, uint64_t applied, size_t nh, size_t ns)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapHeader h = XSR__SNAP_HEADER__INIT;

	h.version = SNAP_VERSION;
	h.applied_index = applied;
	h.n_hosts = nh;
	h.n_sessions = ns;
	rec.rec_case = XSR__SNAP_RECORD__REC_HEADER;
	rec.header = &h;
	return put(arg, &rec);
}

static int w_session(void *arg, uint64_t origin, uint64_t seq, int result)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapSession s = XSR__SNAP_SESSION__INIT;

	s.origin = origin;
	s.seq = seq;
	s.result = result;
	rec.rec_case = XSR__SNAP_RECORD__REC_SESSION;
	rec.session = &s;
	return put(arg, &rec);
}

static int w_member(void *arg, const struct store_member *m)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapMember sm = XSR__SNAP_MEMBER__INIT;
	Xsr__Member pm = XSR__MEMBER__INIT;

	pm.id = m->id;
	pm.name = m->name;
	pm.raft_address = m->raft_address;
	pm.peer_address = m->peer_address;
	sm.member = &pm;
	rec.rec_case = XSR__SNAP_RECORD__REC_MEMBER;
	rec.member = &sm;
	return put(arg, &rec);
}

static int w_host(void *arg, const char *name)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapHost h = XSR__SNAP_HOST__INIT;

	h.name = (char *)name;
	rec.rec_case = XSR__SNAP_RECORD__REC_HOST;
	rec.host = &h;
	return put(arg, &rec);
}

static int w_node(void *arg, const char *path, uint64_t gen,
		  const struct store_perm *perms, uint32_t nperms,
		  const char *value, size_t value_len, const char *children,
		  size_t children_len)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapNode n = XSR__SNAP_NODE__INIT;
	Xsr__Perm pv[8], *pp[8], *pa = pv, **ppa = pp;
	uint32_t i;
	int rc;

	if (nperms > 8) {
		pa = malloc(nperms * sizeof(*pa));
		ppa = malloc(nperms * sizeof(*ppa));
		if (!pa || !ppa) {
			free(pa);
			free(ppa);
			return -ENOMEM;
		}
	}
	for (i = 0; i < nperms; i++) {
		xsr__perm__init(&pa[i]);
		pa[i].domid = perms[i].domid;
		pa[i].access = perms[i].access;
		pa[i].ignore = perms[i].ignore;
		ppa[i] = &pa[i];
	}
	n.path = (char *)path;
	n.generation = gen;
	n.perms = ppa;
	n.n_perms = nperms;
	n.value.data = (uint8_t *)value;
	n.value.len = value_len;
	n.children.data = (uint8_t *)children;
	n.children.len = children_len;
	rec.rec_case = XSR__SNAP_RECORD__REC_NODE;
	rec.node = &n;
	rc = put(arg, &rec);
	if (pa != pv) {
		free(pa);
		free(ppa);
	}
	return rc;
}

static int w_domain(void *arg, const struct store_domain *d)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapDomain sd = XSR__SNAP_DOMAIN__INIT;
	Xsr__SnapWatch *wv = NULL, **wp = NULL;
	uint32_t i;
	int rc;

	sd.domid = d->domid;
	sd.mfn = d->mfn;
	sd.port = d->port;
	sd.ring_id = d->ring_id;
	sd.has_target = d->target != STORE_NO_TARGET;
	sd.target = sd.has_target ? d->target : 0;
	sd.ring_error = d->ring_error;
	sd.suspending = d->suspending;
	if (d->nwatches) {
		wv = calloc(d->nwatches, sizeof(*wv));
		wp = calloc(d->nwatches, sizeof(*wp));
		if (!wv || !wp) {
			free(wv);
			free(wp);
			return -ENOMEM;
		}
		for (i = 0; i < d->nwatches; i++) {
			xsr__snap_watch__init(&wv[i]);
			wv[i].path = d->watches[i].path;
			wv[i].token = d->watches[i].token;
			wp[i] = &wv[i];
		}
	}
	sd.watches = wp;
	sd.n_watches = d->nwatches;
	rec.rec_case = XSR__SNAP_RECORD__REC_DOMAIN;
	rec.domain = &sd;
	rc = put(arg, &rec);
	free(wv);
	free(wp);
	return rc;
}

static int w_quota(void *arg, const struct store_quota_set *q)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapQuota sq = XSR__SNAP_QUOTA__INIT;
	uint32_t items[STORE_QUOTA_ITEMS], values[STORE_QUOTA_ITEMS];
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < STORE_QUOTA_ITEMS; i++) {
		if (q->mask & (1u << i)) {
			items[n] = i;
			values[n++] = q->value[i];
		}
	}
	sq.host_wide = q->domid == STORE_QUOTA_HOST;
	sq.domid = sq.host_wide ? 0 : q->domid;
	sq.items = items;
	sq.n_items = n;
	sq.values = values;
	sq.n_values = n;
	rec.rec_case = XSR__SNAP_RECORD__REC_QUOTA;
	rec.quota = &sq;
	return put(arg, &rec);
}

static const struct store_walk_ops write_ops = {
	.begin = w_begin,
	.session = w_session,
	.member = w_member,
	.host = w_host,
	.node = w_node,
	.domain = w_domain,
	.quota = w_quota,
};

int sm_snapshot_encode(const struct store_pin *pin, void **buf, size_t *len)
{
	Xsr__SnapRecord rec = XSR__SNAP_RECORD__INIT;
	Xsr__SnapEnd end = XSR__SNAP_END__INIT;
	struct out o = {0};
	int rc;

	rc = store_pin_walk(pin, &write_ops, &o);
	if (!rc) {
		end.n_records = o.records;
		rec.rec_case = XSR__SNAP_RECORD__REC_END;
		rec.end = &end;
		rc = put(&o, &rec);
	}
	if (rc) {
		free(o.buf);
		return rc;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}

/* ---- Restore ------------------------------------------------------------ */

static int restore_record(struct store **st, const uint8_t *key,
			  const Xsr__SnapRecord *rec, uint64_t records,
			  bool *ended)
{
	struct store_perm *perms;
	const Xsr__SnapNode *n;
	size_t i;
	int rc;

	switch (rec->rec_case) {
	case XSR__SNAP_RECORD__REC_HEADER:
		if (*st || rec->header->version > SNAP_VERSION)
			return -EINVAL;
		*st = store_restore_begin(key, rec->header->applied_index);
		return *st ? 0 : -ENOMEM;
	case XSR__SNAP_RECORD__REC_SESSION:
		if (!*st)
			return -EINVAL;
		return store_restore_session(*st, rec->session->origin,
					     rec->session->seq,
					     rec->session->result);
	case XSR__SNAP_RECORD__REC_MEMBER: {
		struct store_member m;

		if (!*st || !rec->member->member ||
		    !rec->member->member->name)
			return -EINVAL;
		m.id = rec->member->member->id;
		m.name = rec->member->member->name;
		m.raft_address = rec->member->member->raft_address;
		m.peer_address = rec->member->member->peer_address;
		return store_restore_member(*st, &m);
	}
	case XSR__SNAP_RECORD__REC_HOST:
		if (!*st)
			return -EINVAL;
		return store_restore_host(*st, rec->host->name);
	case XSR__SNAP_RECORD__REC_NODE:
		if (!*st)
			return -EINVAL;
		n = rec->node;
		perms = calloc(n->n_perms ? n->n_perms : 1, sizeof(*perms));
		if (!perms)
			return -ENOMEM;
		for (i = 0; i < n->n_perms; i++) {
			perms[i].domid = n->perms[i]->domid;
			perms[i].access = (uint8_t)(n->perms[i]->access & 3);
			perms[i].ignore = n->perms[i]->ignore;
		}
		rc = store_restore_node(*st, n->path, n->generation, perms,
					(uint32_t)n->n_perms,
					(const char *)n->value.data,
					n->value.len,
					(const char *)n->children.data,
					n->children.len);
		free(perms);
		return rc;
	case XSR__SNAP_RECORD__REC_DOMAIN: {
		const Xsr__SnapDomain *sd = rec->domain;
		struct store_domain d;

		if (!*st)
			return -EINVAL;
		memset(&d, 0, sizeof(d));
		d.domid = sd->domid;
		d.mfn = sd->mfn;
		d.port = sd->port;
		d.ring_id = sd->ring_id;
		d.target = sd->has_target ? sd->target : STORE_NO_TARGET;
		d.ring_error = sd->ring_error;
		d.suspending = sd->suspending;
		d.nwatches = (uint32_t)sd->n_watches;
		d.watches = calloc(sd->n_watches ? sd->n_watches : 1,
				   sizeof(*d.watches));
		if (!d.watches)
			return -ENOMEM;
		for (i = 0; i < sd->n_watches; i++) {
			if (!sd->watches[i]->path || !sd->watches[i]->token) {
				free(d.watches);
				return -EINVAL;
			}
			d.watches[i].path = sd->watches[i]->path;
			d.watches[i].token = sd->watches[i]->token;
		}
		rc = store_restore_domain(*st, &d); /* copies */
		free(d.watches);
		return rc;
	}
	case XSR__SNAP_RECORD__REC_QUOTA: {
		const Xsr__SnapQuota *sq = rec->quota;
		struct store_quota_set q;

		if (!*st || sq->n_items != sq->n_values)
			return -EINVAL;
		memset(&q, 0, sizeof(q));
		q.domid = sq->host_wide ? STORE_QUOTA_HOST : sq->domid;
		for (i = 0; i < sq->n_items; i++) {
			if (sq->items[i] >= STORE_QUOTA_ITEMS ||
			    (q.mask & (1u << sq->items[i])))
				return -EINVAL;
			q.mask |= 1u << sq->items[i];
			q.value[sq->items[i]] = sq->values[i];
		}
		return store_restore_quota(*st, &q);
	}
	case XSR__SNAP_RECORD__REC_END:
		if (!*st || rec->end->n_records != records)
			return -EINVAL;
		*ended = true;
		return 0;
	default:
		return -EINVAL;
	}
}

int sm_snapshot_decode(const void *buf, size_t len, struct store **out)
{
	return sm_snapshot_decode_keyed(buf, len, store_hash_key_default, out);
}

int sm_snapshot_decode_keyed(const void *buf, size_t len,
			     const uint8_t key[STORE_HASH_KEY_LEN],
			     struct store **out)
{
	const uint8_t *p = buf, *end = p + len;
	struct store *st = NULL;
	uint64_t records = 0;
	bool ended = false;
	int rc = 0;

	while (!rc && p < end && !ended) {
		Xsr__SnapRecord *rec;
		uint32_t n;

		if (end - p < 4) {
			rc = -EINVAL;
			break;
		}
		memcpy(&n, p, 4);
		n = le32toh(n);
		p += 4;
		if ((size_t)(end - p) < n) {
			rc = -EINVAL;
			break;
		}
		rec = xsr__snap_record__unpack(NULL, n, p);
		if (!rec) {
			rc = -EINVAL;
			break;
		}
		p += n;
		rc = restore_record(&st, key, rec, records, &ended);
		records++;
		xsr__snap_record__free_unpacked(rec, NULL);
	}
	if (!rc && (!ended || p != end))
		rc = -EINVAL;
	if (!rc)
		rc = store_restore_finish(st);
	if (rc) {
		store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

