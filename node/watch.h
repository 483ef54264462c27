/*
 * node/watch.h: registered watches and event matching (cxenstored
 * xenstored_watch.c semantics, without its connections x watches scan).
 *
 * Watches are indexed by path; an event on P consults the watches on P and
 * on each ancestor of P (or only on P for "exact" events), so firing costs
 * O(depth) lookups and O(1) per matching watch (plus a sort when the
 * matches are not already in order). Matching watches are delivered in
 * cxenstored's order: by connection creation, then by registration.
 *
 * Each connection's watches are also indexed by (path, token): watch_add,
 * watch_has, watch_remove, watch_count and watch_memory cost O(1)
 * (expected) whatever the number of watches, watch_remove_conn O(the
 * connection's watches). Paths and tokens are hashed under a random key.
 *
 * Watches are local state of the member whose clients set them.
 */
#ifndef XSR_NODE_WATCH_H
#define XSR_NODE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watches;
struct conn;

struct watches *watches_new(void);
void watches_free(struct watches *w);

/*
 * Register (path, token) for c. path is absolute (or "@name"); rel_len is
 * the length of the prefix to strip from event paths for a watch given as
 * a relative path (0 otherwise). Returns 0, -EEXIST or -ENOMEM.
 */
int watch_add(struct watches *w, struct conn *c, uint64_t conn_serial,
	      const char *path, const char *token, size_t rel_len);
/* Has c registered (path, token)? */
bool watch_has(const struct watches *w, const struct conn *c,
	       const char *path, const char *token);
/* Remove (path, token) of c: 0 or -ENOENT. */
int watch_remove(struct watches *w, struct conn *c, const char *path,
		 const char *token);
/* Drop every watch of c. */
void watch_remove_conn(struct watches *w, struct conn *c);
unsigned watch_count(const struct watches *w, const struct conn *c);
/* Bytes of path + token of c's watches (cxenstored's memory charge). */
size_t watch_memory(const struct watches *w, const struct conn *c);

/*
 * For an event on `path`, call deliver() for each matching watch, in
 * order, with the path as that watch reports it (relative watches get a
 * relative path). exact: only watches on exactly `path`. A watch on "/"
 * also matches "@" events, as in cxenstored. The caller filters by
 * permission inside deliver().
 */
void watch_fire(struct watches *w, const char *path, bool exact,
		void (*deliver)(void *arg, struct conn *c,
				const char *report_path, const char *token),
		void *arg);

/*
 * For subtrees that were replaced wholesale (a snapshot installed at run
 * time, node/snapshot.c): call deliver() once for each watch strictly
 * below one of roots[0..n) (sorted by strcmp()), in firing order, with the
 * watch's own path as it reports it. A root "/" takes every watch but the
 * one on "/" itself, "@..." watches included. No permission filter.
 */
void watch_fire_below(struct watches *w, const char *const *roots, size_t n,
		      void (*deliver)(void *arg, struct conn *c,
				      const char *report_path,
				      const char *token),
		      void *arg);
/* The number of watches of every connection. */
size_t watch_total(const struct watches *w);

/*
 * Visit the watches of c in registration order (for live-update style
 * dumps and tests).
 */
void watch_foreach(const struct watches *w, const struct conn *c,
		   void (*fn)(void *arg, const char *path, const char *token,
			      size_t rel_len),
		   void *arg);

#endif
