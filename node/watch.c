/*
 * node/watch.c: watches indexed three ways: by path (an event looks up
 * its path and each ancestor), by connection, and within a connection by
 * (path, token), all in hash sets (node/hashset.h), so adding, finding
 * and removing a watch cost O(1) whatever the number of watches.
 */
#include "node/watch.h"
#include "node/hashset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The watches on one path, in registration order. */
struct wpath {
	struct hashset_node node; /* in watches.paths, by path */
	struct watch *head, *tail;
	size_t n;
	size_t len;
	char path[];
};

struct watch {
	/* what firing reads first, together in one cache line */
	struct watch *pnext; /* same path, in order */
	struct conn *conn;
	uint64_t serial, seq;
	size_t rel_len;
	struct wpath *wp;
	struct hashset_node node;    /* in its connection's byname set */
	struct watch *pprev;	     /* same path */
	struct watch *cnext, *cprev; /* same connection, in order */
	char token[];
};

/* A connection's watches: the order they were set in, and a set by
 * (path, token) for duplicates and removal. */
struct conn_watches {
	struct hashset_node node; /* in watches.conns, by connection */
	struct conn *conn;
	struct hashset byname;
	struct watch *head, *tail;
	unsigned count;
	size_t memory;
};

struct watches {
	struct hashset paths; /* struct wpath */
	struct hashset conns; /* struct conn_watches */
	uint8_t key[HASHSET_KEY_LEN]; /* paths and tokens are the clients' */
	size_t count;
	uint64_t seq;
};

#define CONTAINER(p, type, field) \
	((type *)((char *)(p) - offsetof(type, field)))

static uint64_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static uint64_t path_hash(const struct watches *w, const char *path,
			  size_t len)
{
	return hashset_hash(w->key, path, len);
}

/* Two keyed hashes combined: unknown to the client, as each is. */
static uint64_t name_hash(const struct watches *w, const char *path,
			  const char *token)
{
	return path_hash(w, path, strlen(path)) ^
	       (hashset_hash(w->key, token, strlen(token)) *
		0x9e3779b97f4a7c15ULL);
}

struct path_key {
	const char *path;
	size_t len;
};

static bool wpath_eq(const struct hashset_node *n, const void *key)
{
	const struct wpath *wp = CONTAINER(n, const struct wpath, node);
	const struct path_key *k = key;

	return wp->len == k->len && memcmp(wp->path, k->path, k->len) == 0;
}

/* The watches on the len bytes at path, or NULL. */
static struct wpath *wpath_find(const struct watches *w, const char *path,
				size_t len)
{
	struct path_key k = {path, len};
	struct hashset_node *n =
		hashset_find(&w->paths, path_hash(w, path, len), wpath_eq, &k);

	return n ? CONTAINER(n, struct wpath, node) : NULL;
}

struct name_key {
	const char *path, *token;
};

static bool watch_eq(const struct hashset_node *n, const void *key)
{
	const struct watch *x = CONTAINER(n, const struct watch, node);
	const struct name_key *k = key;

	return strcmp(x->wp->path, k->path) == 0 &&
	       strcmp(x->token, k->token) == 0;
}

static struct watch *name_find(const struct watches *w,
			       const struct conn_watches *cw, const char *path,
			       const char *token)
{
	struct name_key k = {path, token};
	struct hashset_node *n = hashset_find(
		&cw->byname, name_hash(w, path, token), watch_eq, &k);

	return n ? CONTAINER(n, struct watch, node) : NULL;
}

static bool cw_eq(const struct hashset_node *n, const void *key)
{
	return CONTAINER(n, const struct conn_watches, node)->conn == key;
}

static struct conn_watches *cw_find(const struct watches *w,
				    const struct conn *c)
{
	struct hashset_node *n =
		hashset_find(&w->conns, hash_ptr(c), cw_eq, c);

	return n ? CONTAINER(n, struct conn_watches, node) : NULL;
}

struct watches *watches_new(void)
{
	struct watches *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	hashset_init(&w->paths);
	hashset_init(&w->conns);
	hashset_key_new(w->key);
	return w;
}

void watches_free(struct watches *w)
{
	struct hashset_node *n, *next;

	if (!w)
		return;
	for (n = hashset_next(&w->conns, NULL); n; n = next) {
		struct conn_watches *cw =
			CONTAINER(n, struct conn_watches, node);
		struct watch *x, *xn;

		next = hashset_next(&w->conns, n);
		for (x = cw->head; x; x = xn) {
			xn = x->cnext;
			free(x);
		}
		hashset_close(&cw->byname);
		free(cw);
	}
	for (n = hashset_next(&w->paths, NULL); n; n = next) {
		next = hashset_next(&w->paths, n);
		free(CONTAINER(n, struct wpath, node));
	}
	hashset_close(&w->conns);
	hashset_close(&w->paths);
	free(w);
}

/* Drop cw or wp if no watch is left in it (after a removal or a failed
 * add). */
static void cw_release_if_empty(struct watches *w, struct conn_watches *cw)
{
	if (cw->head)
		return;
	hashset_remove(&w->conns, &cw->node);
	hashset_close(&cw->byname);
	free(cw);
}

static void wpath_release_if_empty(struct watches *w, struct wpath *wp)
{
	if (wp->head)
		return;
	hashset_remove(&w->paths, &wp->node);
	free(wp);
}

int watch_add(struct watches *w, struct conn *c, uint64_t conn_serial,
	      const char *path, const char *token, size_t rel_len)
{
	struct conn_watches *cw = cw_find(w, c);
	size_t pl = strlen(path), tl = strlen(token);
	struct wpath *wp;
	struct watch *x;

	if (cw && name_find(w, cw, path, token))
		return -EEXIST;
	x = malloc(sizeof(*x) + tl + 1);
	if (!x)
		return -ENOMEM;
	memcpy(x->token, token, tl + 1);
	if (!cw) {
		cw = calloc(1, sizeof(*cw));
		if (!cw)
			goto err_watch;
		cw->conn = c;
		hashset_init(&cw->byname);
		if (hashset_insert(&w->conns, &cw->node, hash_ptr(c))) {
			free(cw);
			goto err_watch;
		}
	}
	wp = wpath_find(w, path, pl);
	if (!wp) {
		wp = calloc(1, sizeof(*wp) + pl + 1);
		if (!wp)
			goto err_cw;
		wp->len = pl;
		memcpy(wp->path, path, pl + 1);
		if (hashset_insert(&w->paths, &wp->node,
				   path_hash(w, path, pl))) {
			free(wp);
			goto err_cw;
		}
	}
	if (hashset_insert(&cw->byname, &x->node, name_hash(w, path, token)))
		goto err_wp;
	x->wp = wp;
	x->conn = c;
	x->serial = conn_serial;
	x->seq = ++w->seq;
	x->rel_len = rel_len;
	x->pnext = NULL;
	x->pprev = wp->tail;
	if (wp->tail)
		wp->tail->pnext = x;
	else
		wp->head = x;
	wp->tail = x;
	wp->n++;
	x->cnext = NULL;
	x->cprev = cw->tail;
	if (cw->tail)
		cw->tail->cnext = x;
	else
		cw->head = x;
	cw->tail = x;
	cw->count++;
	cw->memory += pl + tl;
	w->count++;
	return 0;

err_wp:
	wpath_release_if_empty(w, wp);
err_cw:
	cw_release_if_empty(w, cw);
err_watch:
	free(x);
	return -ENOMEM;
}

/* Take x off its path's list (dropping the path if it was the last). */
static void unlink_path(struct watches *w, struct watch *x)
{
	struct wpath *wp = x->wp;

	if (x->pprev)
		x->pprev->pnext = x->pnext;
	else
		wp->head = x->pnext;
	if (x->pnext)
		x->pnext->pprev = x->pprev;
	else
		wp->tail = x->pprev;
	wp->n--;
	wpath_release_if_empty(w, wp);
}

static void unlink_watch(struct watches *w, struct conn_watches *cw,
			 struct watch *x)
{
	hashset_remove(&cw->byname, &x->node);
	if (x->cprev)
		x->cprev->cnext = x->cnext;
	else
		cw->head = x->cnext;
	if (x->cnext)
		x->cnext->cprev = x->cprev;
	else
		cw->tail = x->cprev;
	cw->count--;
	cw->memory -= x->wp->len + strlen(x->token);
	w->count--;
	unlink_path(w, x);
	free(x);
}

bool watch_has(const struct watches *w, const struct conn *c,
	       const char *path, const char *token)
{
	struct conn_watches *cw = cw_find(w, c);

	return cw && name_find(w, cw, path, token);
}

int watch_remove(struct watches *w, struct conn *c, const char *path,
		 const char *token)
{
	struct conn_watches *cw = cw_find(w, c);
	struct watch *x = cw ? name_find(w, cw, path, token) : NULL;

	if (!x)
		return -ENOENT;
	unlink_watch(w, cw, x);
	cw_release_if_empty(w, cw);
	return 0;
}

void watch_remove_conn(struct watches *w, struct conn *c)
{
	struct conn_watches *cw = cw_find(w, c);
	struct watch *x, *next;

	if (!cw)
		return;
	/* the byname set goes as a whole: no removal one by one */
	for (x = cw->head; x; x = next) {
		next = x->cnext;
		unlink_path(w, x);
		free(x);
		w->count--;
	}
	cw->head = cw->tail = NULL;
	cw_release_if_empty(w, cw);
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
};

/* Room for k more matches (false: out of memory). */
static bool reserve(struct collect *out, size_t k)
{
	size_t cap = out->cap ? out->cap : 16;
	struct match *v;

	if (out->n + k <= out->cap)
		return true;
	while (cap < out->n + k)
		cap *= 2;
	v = realloc(out->v, cap * sizeof(*v));
	if (!v)
		return false;
	out->v = v;
	out->cap = cap;
	return true;
}

/* Add the watches of wp; out of memory, those found so far fire. */
static void collect_wpath(const struct wpath *wp, struct collect *out)
{
	struct watch *x;

	if (!reserve(out, wp->n))
		return;
	for (x = wp->head; x; x = x->pnext)
		out->v[out->n++].w = x;
}

/* Put the matches in firing order; one path's watches on one
 * connection (the large case) are in that order already. */
static void sort_matches(struct collect *m)
{
	size_t i;

	for (i = 1; i < m->n; i++)
		if (match_cmp(&m->v[i - 1], &m->v[i]) > 0)
			break;
	if (i < m->n)
		qsort(m->v, m->n, sizeof(*m->v), match_cmp);
}

static void collect_path(struct watches *w, const char *path, size_t len,
			 struct collect *out)
{
	struct wpath *wp = wpath_find(w, path, len);

	if (wp)
		collect_wpath(wp, out);
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
	sort_matches(&m);
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
	struct hashset_node *p;
	size_t i;

	for (p = n ? hashset_next(&w->paths, NULL) : NULL; p;
	     p = hashset_next(&w->paths, p)) {
		const struct wpath *wp = CONTAINER(p, struct wpath, node);

		if (!below_root(wp->path, roots, n))
			continue;
		if (!reserve(&m, wp->n))
			break; /* those found fire */
		collect_wpath(wp, &m);
	}
	sort_matches(&m);
	for (i = 0; i < m.n; i++) {
		const struct watch *x = m.v[i].w;
		const char *report = x->wp->path + x->rel_len;

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
		fn(arg, x->wp->path, x->token, x->rel_len);
}
