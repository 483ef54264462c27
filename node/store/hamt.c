/*
 * node/store/hamt.c: persistent hash array mapped trie from path to node record
 * (Bagwell, "Ideal Hash Trees", 2001), with path copying for immutability
 * and in-place update of nodes nobody else references.
 *
 * Each level consumes 5 bits of the 64-bit path hash (13 levels); records
 * whose full hashes collide share a collision node searched linearly.
 */
#include "node/store/store_int.h"
#include "wire/siphash.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LEVEL_BITS 5
#define LAST_SHIFT 60 /* shifts 0, 5, ..., 60: 13 levels */

struct hamt_node {
	uint32_t refs;
	uint32_t bitmap; /* branch: which of 32 slots exist */
	uint32_t n;	 /* slots in use */
	uint32_t collision;
	uintptr_t slot[]; /* bit 0 set: leaf (struct snode *), else child */
};

static bool is_leaf(uintptr_t s)
{
	return s & 1;
}

static struct snode *as_leaf(uintptr_t s)
{
	return (struct snode *)(s & ~(uintptr_t)1);
}

static struct hamt_node *as_node(uintptr_t s)
{
	return (struct hamt_node *)s;
}

static uintptr_t mk_leaf(const struct snode *n)
{
	return (uintptr_t)n | 1;
}

static unsigned int frag(uint64_t hash, unsigned int shift)
{
	return (unsigned int)(hash >> shift) & 31;
}

static unsigned int slot_index(uint32_t bitmap, uint32_t bit)
{
	return (unsigned int)__builtin_popcount(bitmap & (bit - 1));
}

/*
 * For assert(): h is a live, well-formed node: a branch has one bitmap bit
 * per slot, a collision node no bitmap. O(1): asserts stay cheap enough
 * for every build.
 */
static bool node_ok(const struct hamt_node *h)
{
	if (!h || h->refs == 0)
		return false;
	if (h->collision)
		return h->bitmap == 0;
	return (uint32_t)__builtin_popcount(h->bitmap) == h->n;
}

static bool key_eq(const struct snode *n, const char *path, size_t len,
		   uint64_t hash)
{
	return n->hash == hash && n->path_len == len &&
	       memcmp(snode_path(n), path, len) == 0;
}

static struct hamt_node *node_alloc(uint32_t n)
{
	struct hamt_node *h;

	h = malloc(sizeof(*h) + n * sizeof(h->slot[0]));
	if (!h)
		return NULL;
	h->refs = 1;
	h->bitmap = 0;
	h->n = n;
	h->collision = 0;
	return h;
}

static void slot_ref(uintptr_t s)
{
	if (is_leaf(s))
		snode_ref(as_leaf(s));
	else
		as_node(s)->refs++;
}

static void slot_unref(uintptr_t s)
{
	if (is_leaf(s))
		snode_unref(as_leaf(s));
	else
		hamt_unref(as_node(s));
}

void hamt_ref(struct hamt_node *root)
{
	if (root)
		root->refs++;
}

void hamt_unref(struct hamt_node *root)
{
	uint32_t i;

	if (!root)
		return;
	assert(root->refs > 0);
	if (--root->refs > 0)
		return;
	/* Depth is at most 14 levels, so recursion is bounded. */
	for (i = 0; i < root->n; i++)
		slot_unref(root->slot[i]);
	free(root);
}

const struct snode *hamt_get(const struct hamt_node *h, const char *path,
			     size_t len, uint64_t hash)
{
	unsigned int shift = 0;
	uint32_t bit, i;
	uintptr_t s;

	assert(path && !memchr(path, 0, len));
	while (h) {
		assert(node_ok(h));
		assert(h->collision || shift <= LAST_SHIFT);
		if (h->collision) {
			for (i = 0; i < h->n; i++)
				if (key_eq(as_leaf(h->slot[i]), path, len,
					   hash))
					return as_leaf(h->slot[i]);
			return NULL;
		}
		bit = 1u << frag(hash, shift);
		if (!(h->bitmap & bit))
			return NULL;
		s = h->slot[slot_index(h->bitmap, bit)];
		if (is_leaf(s))
			return key_eq(as_leaf(s), path, len, hash) ? as_leaf(s)
								    : NULL;
		h = as_node(s);
		shift += LEVEL_BITS;
	}
	return NULL;
}

/*
 * Make the node in *slotp exclusively ours, copying it if it is shared.
 * The reference *slotp held moves to the copy.
 */
static int own(struct hamt_node **slotp)
{
	struct hamt_node *h = *slotp, *c;
	uint32_t i;

	assert(node_ok(h));
	if (h->refs == 1)
		return 0;
	c = node_alloc(h->n);
	if (!c)
		return -ENOMEM;
	c->bitmap = h->bitmap;
	c->collision = h->collision;
	for (i = 0; i < h->n; i++) {
		c->slot[i] = h->slot[i];
		slot_ref(c->slot[i]);
	}
	h->refs--; /* cannot reach 0: it was shared */
	*slotp = c;
	return 0;
}

/*
 * Replace *slotp (exclusively ours) by a node one slot larger with s at
 * position idx. On success the old node's struct is freed (its slot
 * references move to the new node).
 */
static int grow(struct hamt_node **slotp, uint32_t idx, uint32_t bit,
		uintptr_t s)
{
	struct hamt_node *h = *slotp, *g;

	assert(h->refs == 1 && idx <= h->n);
	assert(h->collision ? bit == 0 : !(h->bitmap & bit));
	g = node_alloc(h->n + 1);
	if (!g)
		return -ENOMEM;
	g->bitmap = h->bitmap | bit;
	g->collision = h->collision;
	memcpy(g->slot, h->slot, idx * sizeof(g->slot[0]));
	g->slot[idx] = s;
	memcpy(g->slot + idx + 1, h->slot + idx,
	       (h->n - idx) * sizeof(g->slot[0]));
	free(h);
	*slotp = g;
	return 0;
}

/* Remove slot idx of *slotp (exclusively ours), dropping its reference. */
static void shrink(struct hamt_node *h, uint32_t idx, uint32_t bit)
{
	assert(h->refs == 1 && idx < h->n);
	assert(h->collision ? bit == 0 : (h->bitmap & bit) != 0);
	slot_unref(h->slot[idx]);
	memmove(h->slot + idx, h->slot + idx + 1,
		(h->n - idx - 1) * sizeof(h->slot[0]));
	h->n--;
	h->bitmap &= ~bit;
}

/*
 * A subtree holding the two leaves a and b (distinct paths) below shift.
 * Takes the references of both leaves on success.
 */
static struct hamt_node *pair(uintptr_t a, uintptr_t b, unsigned int shift)
{
	uint64_t ha = as_leaf(a)->hash, hb = as_leaf(b)->hash;
	struct hamt_node *h, *sub;
	uint32_t fa, fb;

	assert(is_leaf(a) && is_leaf(b) && a != b);
	/* the same fragments above shift: they met in one slot */
	assert(shift > LAST_SHIFT ||
	       ((ha ^ hb) & ((UINT64_C(1) << shift) - 1)) == 0);

	if (shift > LAST_SHIFT) {
		h = node_alloc(2);
		if (!h)
			return NULL;
		h->collision = 1;
		h->slot[0] = a;
		h->slot[1] = b;
		return h;
	}
	fa = frag(ha, shift);
	fb = frag(hb, shift);
	if (fa == fb) {
		h = node_alloc(1);
		if (!h)
			return NULL;
		sub = pair(a, b, shift + LEVEL_BITS);
		if (!sub) {
			free(h);
			return NULL;
		}
		h->bitmap = 1u << fa;
		h->slot[0] = (uintptr_t)sub;
		return h;
	}
	h = node_alloc(2);
	if (!h)
		return NULL;
	h->bitmap = (1u << fa) | (1u << fb);
	h->slot[fa < fb ? 0 : 1] = a;
	h->slot[fa < fb ? 1 : 0] = b;
	return h;
}

static int set_in(struct hamt_node **slotp, unsigned int shift,
		  struct snode *val)
{
	const char *path = snode_path(val);
	struct hamt_node *h, *sub;
	uint32_t bit, idx, i;
	uintptr_t s;
	int rc;

	assert(val && val->refs > 0 && (shift <= LAST_SHIFT || (*slotp)->collision));
	rc = own(slotp);
	if (rc)
		return rc;
	h = *slotp;
	if (h->collision) {
		for (i = 0; i < h->n; i++) {
			if (key_eq(as_leaf(h->slot[i]), path, val->path_len,
				   val->hash)) {
				snode_unref(as_leaf(h->slot[i]));
				h->slot[i] = mk_leaf(val);
				return 0;
			}
		}
		return grow(slotp, h->n, 0, mk_leaf(val));
	}
	bit = 1u << frag(val->hash, shift);
	idx = slot_index(h->bitmap, bit);
	if (!(h->bitmap & bit))
		return grow(slotp, idx, bit, mk_leaf(val));
	s = h->slot[idx];
	if (!is_leaf(s))
		return set_in((struct hamt_node **)&h->slot[idx],
			      shift + LEVEL_BITS, val);
	if (key_eq(as_leaf(s), path, val->path_len, val->hash)) {
		snode_unref(as_leaf(s));
		h->slot[idx] = mk_leaf(val);
		return 0;
	}
	sub = pair(s, mk_leaf(val), shift + LEVEL_BITS);
	if (!sub)
		return -ENOMEM;
	h->slot[idx] = (uintptr_t)sub;
	return 0;
}

int hamt_set(struct hamt_node **root, struct snode *val)
{
	assert(root && val && val->refs > 0 && !is_leaf((uintptr_t)val));
	if (!*root) {
		struct hamt_node *h = node_alloc(1);

		if (!h)
			return -ENOMEM;
		h->bitmap = 1u << frag(val->hash, 0);
		h->slot[0] = mk_leaf(val);
		*root = h;
		return 0;
	}
	return set_in(root, 0, val);
}

/*
 * If h holds nothing but one leaf, return that leaf (with a reference) so
 * the parent can store it inline; the trie stays canonical for its keys.
 */
static bool lone_leaf(struct hamt_node *h, uintptr_t *out)
{
	if (h->n != 1 || !is_leaf(h->slot[0]))
		return false;
	*out = h->slot[0];
	slot_ref(*out);
	return true;
}

/* Precondition: the key is present below *slotp. */
static int del_in(struct hamt_node **slotp, unsigned int shift,
		  const char *path, size_t len, uint64_t hash)
{
	struct hamt_node *h, *child;
	uint32_t bit, idx, i;
	uintptr_t s, lone;
	int rc;

	rc = own(slotp);
	if (rc)
		return rc;
	h = *slotp;
	if (h->collision) {
		for (i = 0; i < h->n; i++)
			if (key_eq(as_leaf(h->slot[i]), path, len, hash))
				break;
		assert(i < h->n); /* the precondition */
		shrink(h, i, 0);
		return 0;
	}
	bit = 1u << frag(hash, shift);
	assert(h->bitmap & bit);
	idx = slot_index(h->bitmap, bit);
	s = h->slot[idx];
	if (is_leaf(s)) {
		assert(key_eq(as_leaf(s), path, len, hash));
		shrink(h, idx, bit);
		return 0;
	}
	rc = del_in((struct hamt_node **)&h->slot[idx], shift + LEVEL_BITS,
		    path, len, hash);
	if (rc)
		return rc;
	child = as_node(h->slot[idx]);
	if (child->n == 0) {
		shrink(h, idx, bit);
	} else if (lone_leaf(child, &lone)) {
		hamt_unref(child);
		h->slot[idx] = lone;
	}
	return 0;
}

int hamt_del(struct hamt_node **root, const char *path, size_t len,
	     uint64_t hash)
{
	int rc;

	assert(root && path);
	if (!hamt_get(*root, path, len, hash))
		return -ENOENT;
	rc = del_in(root, 0, path, len, hash);
	if (rc)
		return rc;
	if ((*root)->n == 0) {
		hamt_unref(*root);
		*root = NULL;
	}
	return 0;
}

static int foreach_in(const struct hamt_node *h,
		      int (*fn)(const struct snode *n, void *arg), void *arg)
{
	uint32_t i;
	int rc;

	for (i = 0; i < h->n; i++) {
		if (is_leaf(h->slot[i]))
			rc = fn(as_leaf(h->slot[i]), arg);
		else
			rc = foreach_in(as_node(h->slot[i]), fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int hamt_foreach(const struct hamt_node *root,
		 int (*fn)(const struct snode *n, void *arg), void *arg)
{
	return root ? foreach_in(root, fn, arg) : 0;
}

static int count_one(const struct snode *n, void *arg)
{
	(void)n;
	(*(size_t *)arg)++;
	return 0;
}

size_t hamt_count(const struct hamt_node *root)
{
	size_t n = 0;

	hamt_foreach(root, count_one, &n);
	return n;
}

/* ---- Checking (store_check.c) ------------------------------------------ */

struct hcheck {
	const uint8_t *key;
	const char *what;
};

static int fail(struct hcheck *c, const char *what)
{
	if (!c->what)
		c->what = what;
	return -EIO;
}

static int check_leaf(struct hcheck *c, const struct snode *n,
		      unsigned int shift, uint64_t prefix)
{
	uint64_t mask = shift >= 64 ? UINT64_MAX : (UINT64_C(1) << shift) - 1;

	if (!n)
		return fail(c, "trie: a null record");
	if (n->refs == 0)
		return fail(c, "trie: a record with no reference");
	if (snode_path(n)[n->path_len] != '\0' ||
	    memchr(snode_path(n), 0, n->path_len))
		return fail(c, "trie: a record's path length is wrong");
	if (n->hash != siphash64(c->key, snode_path(n), n->path_len))
		return fail(c, "trie: a record's hash is not its path's hash");
	if ((n->hash & mask) != (prefix & mask))
		return fail(c, "trie: a record is in a slot its hash does "
			       "not select");
	return 0;
}

/* Depth at most 14: the recursion is bounded. *leaves counts records. */
static int check_node(struct hcheck *c, const struct hamt_node *h,
		      unsigned int shift, uint64_t prefix, bool is_root,
		      size_t *leaves)
{
	size_t below = 0;
	uint32_t i, j, bit;
	int rc;

	if (h->refs == 0)
		return fail(c, "trie: a node with no reference");
	if (h->collision) {
		if (shift <= LAST_SHIFT)
			return fail(c, "trie: a collision node above the "
				       "last level");
		if (h->bitmap != 0 || h->n < 2)
			return fail(c, "trie: a collision node with a bitmap "
				       "or fewer than two records");
		for (i = 0; i < h->n; i++) {
			const struct snode *a = as_leaf(h->slot[i]);

			if (!is_leaf(h->slot[i]))
				return fail(c, "trie: a collision node with a "
					       "child node");
			rc = check_leaf(c, a, 64, prefix);
			if (rc)
				return rc;
			for (j = 0; j < i; j++) {
				const struct snode *b = as_leaf(h->slot[j]);

				if (key_eq(b, snode_path(a), a->path_len,
					   a->hash))
					return fail(c, "trie: a path is in a "
						       "collision node twice");
			}
		}
		*leaves += h->n;
		return 0;
	}
	if (shift > LAST_SHIFT)
		return fail(c, "trie: a branch below the last level");
	if ((uint32_t)__builtin_popcount(h->bitmap) != h->n)
		return fail(c, "trie: a bitmap's population differs from "
			       "its slot count");
	if (h->n == 0)
		return fail(c, "trie: an empty node");
	if (shift == LAST_SHIFT && (h->bitmap >> (1u << (64 - LAST_SHIFT))))
		return fail(c, "trie: a last-level slot no hash selects");
	for (i = 0, bit = 0; bit < 32; bit++) {
		uint64_t p = prefix | ((uint64_t)bit << shift);
		uintptr_t s;

		if (!(h->bitmap & (1u << bit)))
			continue;
		s = h->slot[i++];
		if (is_leaf(s)) {
			rc = check_leaf(c, as_leaf(s), shift + LEVEL_BITS, p);
			below++;
		} else if (!as_node(s)) {
			rc = fail(c, "trie: a null child node");
		} else {
			rc = check_node(c, as_node(s), shift + LEVEL_BITS, p,
					false, &below);
		}
		if (rc)
			return rc;
	}
	/* hamt_del inlines a lone record into its parent (lone_leaf) */
	if (!is_root && below < 2)
		return fail(c, "trie: a subtree holds fewer than two records");
	*leaves += below;
	return 0;
}

int hamt_check(const struct hamt_node *root, const uint8_t key[16],
	       const char **what)
{
	struct hcheck c = {key, NULL};
	size_t leaves = 0;
	int rc;

	assert(key && what);
	rc = root ? check_node(&c, root, 0, 0, true, &leaves) : 0;
	*what = c.what;
	return rc;
}

void hamt_test_corrupt_bitmap(struct hamt_node *root)
{
	uint32_t bit;

	for (bit = 0; bit < 32 && root && !root->collision; bit++)
		if (!(root->bitmap & (1u << bit))) {
			root->bitmap |= 1u << bit;
			return;
		}
}
