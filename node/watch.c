/*
 * node/watch.c: watches indexed by path (chained hash) and by connection.
 */
#include "node/watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct watch {
	struct watch *hnext;		/* same hash bucket */
	struct watch *cnext, *cprev;	/* same connection, in order */
	struct conn *conn;
	uint64_t serial, seq;
	size_t rel_len;
	char *token;
	char path[];
};

struct conn_watches {
	struct conn_watches *hnext;
	struct conn *conn;
	struct watch *head, *tail;
	unsigned count;
	size_t memory;
};

struct watches {
	struct watch **bucket; /* by path */
	size_t nbucket, count;
	struct conn_watches **cbucket; /* by connection */
	size_t ncbucket, ccount;
	uint64_t seq;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a; keys are not secret-
						 sensitive: chains are short
						 and bounded by quotas */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static uint64_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

struct watches *watches_new(void)
{
	struct watches *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->nbucket = 64;
	w->bucket = calloc(w->nbucket, sizeof(*w->bucket));
	w->ncbucket = 64;
	w->cbucket = calloc(w->ncbucket, sizeof(*w->cbucket));
	if (!w->bucket || !w->cbucket) {
		watches_free(w);
		return NULL;
	}
	return w;
}

void watches_free(struct watches *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; w->bucket && i < w->nbucket; i++) {
		struct watch *x = w->bucket[i], *n;

		for (; x; x = n) {
			n = x->hnext;
			free(x->token);
			free(x);
		}
	}
	for (i = 0; w->cbucket && i < w->ncbucket; i++) {
		struct conn_watches *x = w->cbucket[i], *n;

		for (; x; x = n) {
			n = x->hnext;
			free(x);
		}
	}
	free(w->bucket);
	free(w->cbucket);
	free(w);
}

static struct conn_watches *cw_find(const struct watches *w,
				    const struct conn *c)
{
	struct conn_watches *x = w->cbucket[hash_ptr(c) & (w->ncbucket - 1)];

	for (; x; x = x->hnext)
		if (x->conn == c)
			return x;
	return NULL;
}

static void grow(struct watches *w)
{
	size_t n = w->nbucket * 2, i;
	struct watch **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* keep the old table: chains just get longer */
	for (i = 0; i < w->nbucket; i++) {
		struct watch *x = w->bucket[i], *next;

		for (; x; x = next) {
			size_t k = hash_str(x->path) & (n - 1);

			next = x->hnext;
			x->hnext = b[k];
			b[k] = x;
		}
	}
	free(w->bucket);
	w->bucket = b;
	w->nbucket = n;
}

static void cgrow(struct watches *w)
{
	size_t n = w->ncbucket * 2, i;
	struct conn_watches **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (i = 0; i < w->ncbucket; i++) {
		struct conn_watches *x = w->cbucket[i], *next;

		for (; x; x = next) {
			size_t k = hash_ptr(x->conn) & (n - 1);

			next = x->hnext;
			x->hnext = b[k];
			b[k] = x;
		}
	}
	free(w->cbucket);
	w->cbucket = b;
	w->ncbucket = n;
}

int watch_add(struct watches *w, struct conn *c, uint64_t conn_serial,
	      const char *path, const char *token, size_t rel_len)
{
	struct conn_watches *cw = cw_find(w, c);
	size_t pl = strlen(path);
	struct watch *x;
	size_t k;

	if (cw) {
		for (x = cw->head; x; x = x->cnext)
			if (strcmp(x->path, path) == 0 &&
			    strcmp(x->token, token) == 0)
				return -EEXIST;
	} else {
		cw = calloc(1, sizeof(*cw));
		if (!cw)
			return -ENOMEM;
		cw->conn = c;
		k = hash_ptr(c) & (w->ncbucket - 1);
		cw->hnext = w->cbucket[k];
		w->cbucket[k] = cw;
		if (++w->ccount > w->ncbucket * 2)
			cgrow(w);
	}
	x = malloc(sizeof(*x) + pl + 1);
	if (!x)
		return -ENOMEM;
	x->token = strdup(token);
	if (!x->token) {
		free(x);
		return -ENOMEM;
	}
	memcpy(x->path, path, pl + 1);
	x->conn = c;
	x->serial = conn_serial;
	x->seq = ++w->seq;
	x->rel_len = rel_len;
	k = hash_str(path) & (w->nbucket - 1);
	x->hnext = w->bucket[k];
	w->bucket[k] = x;
	x->cnext = NULL;
	x->cprev = cw->tail;
	if (cw->tail)
		cw->tail->cnext = x;
	else
		cw->head = x;
	cw->tail = x;
	cw->count++;
	cw->memory += pl + strlen(token);
	if (++w->count > w->nbucket * 2)
		grow(w);
	return 0;
}

static void unlink_watch(struct watches *w, struct conn_watches *cw,
			 struct watch *x)
{
	struct watch **pp = &w->bucket[hash_str(x->path) & (w->nbucket - 1)];

	while (*pp != x)
		pp = &(*pp)->hnext;
	*pp = x->hnext;
	if (x->cprev)
		x->cprev->cnext = x->cnext;
	else
		cw->head = x->cnext;
	if (x->cnext)
		x->cnext->cprev = x->cprev;
	else
		cw->tail = x->cprev;
	cw->count--;
	cw->memory -= strlen(x->path) + strlen(x->token);
	w->count--;
	free(x->token);
	free(x);
}

bool watch_has(const struct watches *w, const struct conn *c,
	       const char *path, const char *token)
{
	struct conn_watches *cw = cw_find(w, c);
	struct watch *x;

	for (x = cw ? cw->head : NULL; x; x = x->cnext)
		if (strcmp(x->path, path) == 0 && strcmp(x->token, token) == 0)
			return true;
	return false;
}

int watch_remove(struct watches *w, struct conn *c, const char *path,
		 const char *token)
{
	struct conn_watches *cw = cw_find(w, c);
	struct watch *x;

	if (!cw)
		return -ENOENT;
	for (x = cw->head; x; x = x->cnext) {
		if (strcmp(x->path, path) == 0 && strcmp(x->token, token) == 0) {
			unlink_watch(w, cw, x);
			return 0;
		}
	}
	return -ENOENT;
}

void watch_remove_conn(struct watches *w, struct conn *c)
{
	struct conn_watches *cw = cw_find(w, c), **pp;

	if (!cw)
		return;
	while (cw->head)
		unlink_watch(w, cw, cw->head);
	pp = &w->cbucket[hash_ptr(c) & (w->ncbucket - 1)];
	while (*pp != cw)
		pp = &(*pp)->hnext;
	*pp = cw->hnext;
	w->ccount--;
	free(cw);
}

unsigned watch_count(const struct watches *w, const struct conn *c)
{
	struct conn_watches *cw = cw_find(w, c);

	return cw ? cw->count : 0;
}

size_t watch_memory(const struct watches *w, const struct conn *c)
{
	struct conn_watches *cw = cw_find(w, c);

	return cw ? cw->memory : 0;
}

struct match {
	struct watch *w;
};

static int match_cmp(const void *a, const void *b)
{
	const struct watch *x = ((const struct match *)a)->w;
	const struct watch *y = ((const struct match *)b)->w;

	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct collect {
	struct match *v;
	size_t n, cap;
	bool oom;
};

static void collect_path(struct watches *w, const char *path, size_t len,
			 struct collect *out)
{
	struct watch *x;
	char buf[4100];

	if (len >= sizeof(buf))
		return;
	memcpy(buf, path, len);
	buf[len] = '\0';
	for (x = w->bucket[hash_str(buf) & (w->nbucket - 1)]; x; x = x->hnext) {
		if (strcmp(x->path, buf) != 0)
			continue;
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 16;
			struct match *v = realloc(out->v, cap * sizeof(*v));

			if (!v) {
				out->oom = true;
				return;
			}
			out->v = v;
			out->cap = cap;
		}
		out->v[out->n++].w = x;
	}
}

void watch_fire(struct watches *w, const char *path, bool exact,
		void (*deliver)(void *arg, struct conn *c,
				const char *report_path, const char *token),
		void *arg)
{
	struct collect m = {0};
	size_t len = strlen(path), i;

	if (w->count == 0)
		return;
	collect_path(w, path, len, &m);
	if (!exact) {
		if (path[0] == '@') {
			collect_path(w, "/", 1, &m);
		} else {
			/* every ancestor, up to and including "/" */
			while (len > 1) {
				while (len > 1 && path[len - 1] != '/')
					len--;
				if (len > 1)
					len--; /* drop the slash */
				collect_path(w, path, len ? len : 1, &m);
			}
		}
	}
	if (m.n > 1)
		qsort(m.v, m.n, sizeof(*m.v), match_cmp);
	for (i = 0; i < m.n; i++) {
		struct watch *x = m.v[i].w;
		const char *report = path;

		if (x->rel_len) {
			report = path + x->rel_len;
			if (*report == '/')
				report++;
		}
		deliver(arg, x->conn, report, x->token);
	}
	free(m.v);
}

static int root_cmp(const void *key, const void *elt)
{
	return strcmp(key, *(const char *const *)elt);
}

/* Is one of the sorted roots a strict ancestor of path? */
static bool below_root(const char *path, const char *const *roots, size_t n)
{
	char buf[4100];
	size_t len = strlen(path);

	if (strcmp(path, "/") == 0 || len >= sizeof(buf))
		return false;
	if (bsearch("/", roots, n, sizeof(*roots), root_cmp))
		return true;
	if (path[0] == '@')
		return false;
	memcpy(buf, path, len + 1);
	while (len > 1) {
		while (len > 1 && buf[len - 1] != '/')
			len--;
		if (len > 1)
			len--; /* drop the slash */
		buf[len] = '\0';
		if (len > 1 && bsearch(buf, roots, n, sizeof(*roots), root_cmp))
			return true;
	}
	return false;
}

void watch_fire_below(struct watches *w, const char *const *roots, size_t n,
		      void (*deliver)(void *arg, struct conn *c,
				      const char *report_path,
				      const char *token),
		      void *arg)
{
	struct collect m = {0};
	size_t b, i;
	struct watch *x;

	for (b = 0; n && b < w->nbucket; b++) {
		for (x = w->bucket[b]; x; x = x->hnext) {
			if (!below_root(x->path, roots, n))
				continue;
			if (m.n == m.cap) {
				size_t cap = m.cap ? m.cap * 2 : 16;
				struct match *v = realloc(m.v, cap * sizeof(*v));

				if (!v)
					goto deliver; /* those found fire */
				m.v = v;
				m.cap = cap;
			}
			m.v[m.n++].w = x;
		}
	}
deliver:
	if (m.n > 1)
		qsort(m.v, m.n, sizeof(*m.v), match_cmp);
	for (i = 0; i < m.n; i++) {
		const char *report;

		x = m.v[i].w;
		report = x->path + x->rel_len;
		if (x->rel_len && *report == '/')
			report++;
		deliver(arg, x->conn, report, x->token);
	}
	free(m.v);
}

size_t watch_total(const struct watches *w)
{
	return w->count;
}

void watch_foreach(const struct watches *w, const struct conn *c,
		   void (*fn)(void *arg, const char *path, const char *token,
			      size_t rel_len),
		   void *arg)
{
	struct conn_watches *cw = cw_find(w, c);
	struct watch *x;

	for (x = cw ? cw->head : NULL; x; x = x->cnext)
		fn(arg, x->path, x->token, x->rel_len);
}
