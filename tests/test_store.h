/*
 * tests/test_store.h: what the store's unit tests share (test_store.c,
 * test_store_domain.c, test_store_whole.c): checked() around every
 * mutator, callers, a fresh store, short forms, and a walk that rebuilds.
 */
#ifndef XSR_TEST_STORE_H
#define XSR_TEST_STORE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/store/store.h"

#define H "host1"

/* The stores of these tests hash under a key of their own. */
static const uint8_t test_key[STORE_HASH_KEY_LEN] = "test_store key!";

/*
 * The whole store is checked after every mutation (store_check.c): each
 * mutating call below goes through checked(), which fails the test with
 * the checker's message on the first violation.
 */
static inline int checked(int rc, const struct store *st)
{
	char msg[256];

	if (store_check_report(st, msg, sizeof(msg)) != 0)
		fail_msg("store_check after a mutation: %s", msg);
	return rc;
}

#define store_host_init(st, ...) checked(store_host_init(st, __VA_ARGS__), st)
#define store_write(st, ...)	 checked(store_write(st, __VA_ARGS__), st)
#define store_mkdir(st, ...)	 checked(store_mkdir(st, __VA_ARGS__), st)
#define store_rm(st, ...)	 checked(store_rm(st, __VA_ARGS__), st)
#define store_set_perms(st, ...) checked(store_set_perms(st, __VA_ARGS__), st)
#define store_commit(st, ...)	 checked(store_commit(st, __VA_ARGS__), st)
#define store_domain_introduce(st, ...)                                        \
	checked(store_domain_introduce(st, __VA_ARGS__), st)
#define store_domain_gone(st, ...)                                             \
	checked(store_domain_gone(st, __VA_ARGS__), st)
#define store_domain_set_target(st, ...)                                       \
	checked(store_domain_set_target(st, __VA_ARGS__), st)
#define store_domain_watch(st, ...)                                            \
	checked(store_domain_watch(st, __VA_ARGS__), st)
#define store_domain_unwatch(st, ...)                                          \
	checked(store_domain_unwatch(st, __VA_ARGS__), st)
#define store_domain_reset_watches(st, ...)                                    \
	checked(store_domain_reset_watches(st, __VA_ARGS__), st)
#define store_domain_ring_reset(st, ...)                                       \
	checked(store_domain_ring_reset(st, __VA_ARGS__), st)
#define store_domain_move(st, ...)                                             \
	checked(store_domain_move(st, __VA_ARGS__), st)
#define store_session_record(st, ...)                                          \
	checked(store_session_record(st, __VA_ARGS__), st)
#define store_member_set(st, ...) checked(store_member_set(st, __VA_ARGS__), st)
#define store_member_remove(st, ...)                                           \
	checked(store_member_remove(st, __VA_ARGS__), st)

static inline struct store_caller priv(void)
{
	struct store_caller c = {.domid = 0,
				 .privileged = true,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static inline struct store_caller dom(uint32_t domid)
{
	struct store_caller c = {.domid = domid,
				 .privileged = false,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static uint64_t idx = 1;

static inline struct store *fresh(void)
{
	struct store *st = store_new_keyed(test_key);

	assert_non_null(st);
	assert_int_equal(store_host_init(st, H, idx++), 0);
	return st;
}

static inline int wr(struct store *st, const struct store_caller *c,
		     const char *p, const char *v)
{
	return store_write(st, H, NULL, c, idx++, p, v, strlen(v), NULL);
}

static inline int perms(struct store *st, const struct store_caller *c,
			const char *p, const char *spec)
{
	struct store_perm v[8];
	char buf[128], *tok, *save = NULL;
	uint32_t n = 0;

	strcpy(buf, spec);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		assert_int_equal(store_perm_parse(tok, &v[n++]), 0);
	return store_set_perms(st, H, NULL, c, idx++, p, v, n, NULL);
}

/* Read a value as a NUL-terminated string (static buffer). */
static inline const char *rd(struct store *st, const struct store_caller *c,
			     const char *p, int *err)
{
	static char buf[4200];
	const char *v;
	size_t len;

	*err = store_read(st, H, NULL, c, p, &v, &len);
	if (*err)
		return NULL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static inline void check_ok(struct store *st)
{
	const char *what = NULL;

	assert_int_equal(store_check(st, &what), 0);
}

/* A walk that rebuilds into another store, and one that serialises. */
struct rebuild {
	struct store *dst;
	char *text;
	size_t len, cap;
};

static inline void emit(struct rebuild *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->text = realloc(r->text, r->cap);
	}
	memcpy(r->text + r->len, p, n);
	r->len += n;
}

static inline int rb_begin(void *arg, uint64_t applied, size_t nh, size_t ns)
{
	struct rebuild *r = arg;

	r->dst = store_restore_begin(test_key, applied);
	emit(r, &applied, sizeof(applied));
	return r->dst ? 0 : -ENOMEM;
}

static inline int rb_session(void *arg, uint64_t o, uint64_t s, int res)
{
	struct rebuild *r = arg;

	emit(r, &o, 8);
	emit(r, &s, 8);
	return store_restore_session(r->dst, o, s, res);
}

static inline int rb_host(void *arg, const char *name)
{
	struct rebuild *r = arg;

	emit(r, name, strlen(name) + 1);
	return store_restore_host(r->dst, name);
}

static inline int rb_node(void *arg, const char *path, uint64_t gen,
			  const struct store_perm *p, uint32_t np,
			  const char *v, size_t vl, const char *k, size_t kl)
{
	struct rebuild *r = arg;

	emit(r, path, strlen(path) + 1);
	emit(r, &gen, 8);
	emit(r, p, np * sizeof(*p));
	emit(r, v, vl);
	emit(r, k, kl);
	return store_restore_node(r->dst, path, gen, p, np, v, vl, k, kl);
}

static inline int rb_member(void *arg, const struct store_member *m)
{
	struct rebuild *r = arg;

	emit(r, &m->id, 8);
	emit(r, m->name, strlen(m->name) + 1);
	return store_restore_member(r->dst, m);
}

static inline int rb_domain(void *arg, const struct store_domain *d)
{
	struct rebuild *r = arg;

	emit(r, &d->domid, 4);
	emit(r, &d->ring_id, 8);
	return store_restore_domain(r->dst, d);
}

static const struct store_walk_ops rb_ops = {.begin = rb_begin,
					     .session = rb_session,
					     .member = rb_member,
					     .host = rb_host,
					     .node = rb_node,
					     .domain = rb_domain};

#endif
