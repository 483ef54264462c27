/*
 * node/hashset.c: the intrusive hash set of node/hashset.h: chained
 * buckets, resized a few buckets per operation (as redis's dict does),
 * and SipHash under a random key. Used by watch.c and conn.c.
 */
#include "node/hashset.h"
#include "wire/siphash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MIN_SIZE 8

void hashset_key_new(uint8_t key[HASHSET_KEY_LEN])
{
	static const uint8_t label[HASHSET_KEY_LEN] = "xsr hashset seed";
	struct {
		struct timespec mono, real;
		pid_t pid;
		const void *stack, *heap_fn;
	} seed;

	if (getrandom(key, HASHSET_KEY_LEN, GRND_NONBLOCK) == HASHSET_KEY_LEN)
		return;
	memset(&seed, 0, sizeof(seed));
	clock_gettime(CLOCK_MONOTONIC, &seed.mono);
	clock_gettime(CLOCK_REALTIME, &seed.real);
	seed.pid = getpid();
	seed.stack = &seed;
	seed.heap_fn = (const void *)key;
	siphash128(label, &seed, sizeof(seed), key);
}

uint64_t hashset_hash(const uint8_t key[HASHSET_KEY_LEN], const void *p,
		      size_t n)
{
	return siphash64(key, p, n);
}

void hashset_init(struct hashset *s)
{
	memset(s, 0, sizeof(*s));
}

void hashset_close(struct hashset *s)
{
	free(s->tab[0]);
	free(s->tab[1]);
	hashset_init(s);
}

size_t hashset_count(const struct hashset *s)
{
	return s->count;
}

/* The bucket that holds, or would hold, a node of this hash (the set has
 * buckets). */
static struct hashset_node **slot(const struct hashset *s, uint64_t hash)
{
	size_t i = hash & (s->size[0] - 1);

	if (s->tab[1] && i < s->moved)
		return &s->tab[1][hash & (s->size[1] - 1)];
	return &s->tab[0][i];
}

/* Begin moving to a table of size buckets; on ENOMEM, stay as we are. */
static void resize_start(struct hashset *s, size_t size)
{
	struct hashset_node **t = calloc(size, sizeof(*t));

	if (!t)
		return;
	s->tab[1] = t;
	s->size[1] = size;
	s->moved = 0;
}

/* Move the next HASHSET_STEP buckets of tab[0]; the last one done, the
 * new table becomes tab[0]. */
static void resize_step(struct hashset *s)
{
	unsigned k;

	for (k = 0; k < HASHSET_STEP && s->moved < s->size[0]; k++) {
		struct hashset_node *n = s->tab[0][s->moved], *next;

		s->tab[0][s->moved++] = NULL;
		for (; n; n = next) {
			struct hashset_node **b =
				&s->tab[1][n->hash & (s->size[1] - 1)];

			next = n->next;
			n->next = *b;
			*b = n;
		}
	}
	if (s->moved == s->size[0]) {
		free(s->tab[0]);
		s->tab[0] = s->tab[1];
		s->size[0] = s->size[1];
		s->tab[1] = NULL;
		s->size[1] = 0;
		s->moved = 0;
	}
}

int hashset_insert(struct hashset *s, struct hashset_node *n, uint64_t hash)
{
	struct hashset_node **b;

	if (!s->size[0]) {
		s->tab[0] = calloc(MIN_SIZE, sizeof(*s->tab[0]));
		if (!s->tab[0])
			return -ENOMEM;
		s->size[0] = MIN_SIZE;
	}
	if (!s->tab[1] && s->count >= s->size[0])
		resize_start(s, s->size[0] * 2);
	if (s->tab[1])
		resize_step(s);
	n->hash = hash;
	b = slot(s, hash);
	n->next = *b;
	*b = n;
	s->count++;
	return 0;
}

struct hashset_node *hashset_find(const struct hashset *s, uint64_t hash,
				  bool (*eq)(const struct hashset_node *n,
					     const void *key),
				  const void *key)
{
	struct hashset_node *n;

	if (!s->count)
		return NULL;
	for (n = *slot(s, hash); n; n = n->next)
		if (n->hash == hash && eq(n, key))
			return n;
	return NULL;
}

void hashset_remove(struct hashset *s, struct hashset_node *n)
{
	struct hashset_node **pp = slot(s, n->hash);

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	n->next = NULL;
	if (--s->count == 0) {
		/* an empty set holds no memory (a drained output queue) */
		hashset_close(s);
		return;
	}
	if (!s->tab[1] && s->size[0] > MIN_SIZE && s->count < s->size[0] / 4)
		resize_start(s, s->size[0] / 2);
	if (s->tab[1])
		resize_step(s);
}

struct hashset_node *hashset_next(const struct hashset *s,
				  const struct hashset_node *n)
{
	size_t t = 0, b = 0;

	if (!s->count)
		return NULL;
	if (n) {
		size_t i = n->hash & (s->size[0] - 1);

		if (n->next)
			return n->next;
		if (s->tab[1] && i < s->moved) {
			t = 1;
			b = (n->hash & (s->size[1] - 1)) + 1;
		} else {
			b = i + 1;
		}
	}
	for (; t < 2; t++, b = 0)
		for (; b < s->size[t]; b++)
			if (s->tab[t][b])
				return s->tab[t][b];
	return NULL;
}

bool hashset_ok(const struct hashset *s)
{
	size_t t, b, n = 0;
	const struct hashset_node *x;

	if (!s->size[0])
		return !s->tab[0] && !s->tab[1] && !s->count && !s->moved;
	if (s->size[0] & (s->size[0] - 1))
		return false;
	if (s->tab[1]) {
		if ((s->size[1] & (s->size[1] - 1)) || s->moved >= s->size[0])
			return false;
	} else if (s->size[1] || s->moved) {
		return false;
	}
	for (t = 0; t < 2; t++) {
		for (b = 0; b < s->size[t]; b++) {
			for (x = s->tab[t][b]; x; x = x->next) {
				if (slot(s, x->hash) != &s->tab[t][b])
					return false;
				n++;
			}
		}
	}
	return n == s->count;
}
