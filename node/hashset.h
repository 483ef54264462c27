/*
 * node/hashset.h: an intrusive hash set (chained) whose resizing is
 * spread over the operations that follow, so no insert or remove ever
 * rehashes the whole table at once; and the keyed hash to use for bytes
 * a client chose (SipHash under a random key, so a client cannot aim its
 * keys at one bucket).
 *
 * The set stores nodes embedded in the caller's objects and never
 * allocates them: it owns only its bucket arrays. It knows nothing of
 * keys: the caller computes a node's 64-bit hash and says, in find(),
 * which node matches. Costs, n the number of nodes: insert, find and
 * remove are O(1) expected (O(chain) plus at most HASHSET_STEP buckets
 * moved when resizing); a whole iteration is O(n + buckets).
 *
 *     struct thing { struct hashset_node node; char name[]; };
 *     h = hashset_hash(key, name, len);
 *     if (!hashset_find(&s, h, thing_eq, name))
 *             rc = hashset_insert(&s, &t->node, h);
 */
#ifndef XSR_NODE_HASHSET_H
#define XSR_NODE_HASHSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embed one per set the object is in; the set owns its fields. */
struct hashset_node {
	struct hashset_node *next;
	uint64_t hash;
};

/*
 * A set; all zero (hashset_init()) is an empty one. While it resizes,
 * nodes are in two tables: a node whose bucket in tab[0] is below `moved`
 * is in tab[1], every other in tab[0].
 */
struct hashset {
	struct hashset_node **tab[2];
	size_t size[2]; /* buckets: 0 or a power of two */
	size_t moved;	/* tab[0]'s buckets already moved to tab[1] */
	size_t count;
};

/* Buckets moved to the new table by each insert or remove. */
#define HASHSET_STEP 4

#define HASHSET_KEY_LEN 16

/* A fresh key from getrandom() (if that fails: the clock, the pid and
 * addresses, which still vary from run to run). */
void hashset_key_new(uint8_t key[HASHSET_KEY_LEN]);
/* SipHash-2-4 of n bytes at p under key. */
uint64_t hashset_hash(const uint8_t key[HASHSET_KEY_LEN], const void *p,
		      size_t n);

void hashset_init(struct hashset *s);
/* Free the bucket arrays. The nodes are the caller's: it frees them,
 * before or after, as it likes. The set is empty (init) afterwards. */
void hashset_close(struct hashset *s);
size_t hashset_count(const struct hashset *s);

/*
 * Add n (in no set) with the given hash. The set does not look for an
 * equal node: find() first if duplicates are not wanted. Returns 0, or
 * -ENOMEM only when an empty set cannot get its first buckets (a failed
 * resize keeps the old table: chains get longer, nothing is lost).
 */
int hashset_insert(struct hashset *s, struct hashset_node *n, uint64_t hash);
/* The node with this hash for which eq(node, key) holds, or NULL. */
struct hashset_node *hashset_find(const struct hashset *s, uint64_t hash,
				  bool (*eq)(const struct hashset_node *n,
					     const void *key),
				  const void *key);
/* Take n, which is in s, out of s; the last one out frees the buckets
 * (an empty set holds no memory). */
void hashset_remove(struct hashset *s, struct hashset_node *n);

/*
 * Iteration in no particular order: next(s, NULL) is the first node,
 * next(s, n) the one after n; NULL at the end. No insert or remove while
 * iterating. To free every node: take next(s, n) before freeing n, then
 * close the set.
 */
struct hashset_node *hashset_next(const struct hashset *s,
				  const struct hashset_node *n);

/* For tests and assert(): every node is in the bucket find() looks in,
 * the tables' sizes and count agree (O(n + buckets)). */
bool hashset_ok(const struct hashset *s);

#endif
