/*
 * tests/test_consensus.c: the replicated state machine under libraft's own
 * deterministic fixture (raft/fixture.h: simulated network, disks and time)
 * with the real store and the real entries (consensus/sm.h) on every server:
 * replicas end byte-identical; a killed leader, a partitioned member and
 * catch-up by snapshot lose nothing; an entry that reaches the log twice
 * (a forwarding retry) is applied once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "consensus/sm.h"
#include "node/store/store.h"

#define N_MAX 5

struct server {
	struct store *st;
	struct raft_fsm fsm;
	struct raft *raft;
	unsigned restores;
};

struct cluster {
	struct raft_fixture f;
	struct server s[N_MAX];
	unsigned n;
	uint64_t seq[N_MAX + 1]; /* per origin member */
};

/* Every server's stores hash under one key, as the daemon's members do. */
static const uint8_t cluster_key[STORE_HASH_KEY_LEN] = "consensus test";

/* The whole store's invariants (node/store/store_check.c). */
static void check_store(const struct store *st)
{
	char msg[256];

	if (store_check_report(st, msg, sizeof(msg)) != 0)
		fail_msg("store_check after an applied entry: %s", msg);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct server *s = fsm->data;
	struct sm_result res;

	sm_apply(s->st, raft_last_applied(s->raft) + 1, buf->base, buf->len,
		 &res);
	assert_false(res.fatal);
	check_store(s->st); /* every applied entry, on every server */
	sm_result_clear(&res);
	*result = NULL;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	struct server *s = fsm->data;
	struct store_pin *pin = store_pin(s->st);
	void *data;
	size_t len;

	assert_non_null(pin);
	assert_int_equal(sm_snapshot_encode(pin, &data, &len), 0);
	store_unpin(pin);
	*bufs = raft_malloc(sizeof(**bufs));
	(*bufs)[0].base = raft_malloc(len);
	memcpy((*bufs)[0].base, data, len);
	(*bufs)[0].len = len;
	free(data);
	*n_bufs = 1;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct server *s = fsm->data;
	struct store *st;

	if (sm_snapshot_decode_keyed(buf->base, buf->len,
				     store_hash_key(s->st), &st))
		return RAFT_CORRUPT;
	check_store(st);
	store_free(s->st);
	s->st = st;
	s->restores++;
	raft_free(buf->base);
	return 0;
}

static struct cluster *cluster_new(unsigned n)
{
	struct cluster *c = calloc(1, sizeof(*c));
	struct raft_configuration conf;
	unsigned i;

	c->n = n;
	assert_int_equal(raft_fixture_initialize(&c->f), 0);
	for (i = 0; i < n; i++) {
		c->s[i].st = store_new_keyed(cluster_key);
		c->s[i].fsm.version = 1;
		c->s[i].fsm.data = &c->s[i];
		c->s[i].fsm.apply = fsm_apply;
		c->s[i].fsm.snapshot = fsm_snapshot;
		c->s[i].fsm.restore = fsm_restore;
		assert_int_equal(raft_fixture_grow(&c->f, &c->s[i].fsm), 0);
		c->s[i].raft = raft_fixture_get(&c->f, i);
		/* the fixture traces everything; XSR_RAFT_TRACE keeps it */
		if (!getenv("XSR_RAFT_TRACE"))
			c->s[i].raft->tracer = NULL;
	}
	assert_int_equal(raft_fixture_configuration(&c->f, n, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(&c->f), 0);
	return c;
}

static void cluster_free(struct cluster *c)
{
	unsigned i;

	raft_fixture_close(&c->f);
	for (i = 0; i < c->n; i++)
		store_free(c->s[i].st);
	free(c);
}

static unsigned leader(struct cluster *c)
{
	assert_true(raft_fixture_step_until_has_leader(&c->f, 10000));
	return raft_fixture_leader_index(&c->f);
}

static void applied_cb(struct raft_apply *req, int status, void *result)
{
	free(req);
}

/* Append a packed entry on server i (which must lead); 0 or raft error. */
static int submit_on(struct cluster *c, unsigned i, void *buf, size_t len)
{
	struct raft_apply *req = malloc(sizeof(*req));
	struct raft_buffer b;
	int rv;

	b.base = raft_malloc(len);
	b.len = len;
	memcpy(b.base, buf, len);
	free(buf);
	rv = raft_apply(c->s[i].raft, req, &b, 1, applied_cb);
	if (rv) {
		free(req);
		raft_free(b.base);
	}
	return rv;
}

static struct sm_origin origin(struct cluster *c, unsigned member,
			       const char *host, uint64_t seq)
{
	struct sm_origin o = {member, seq, host, NULL, 0, 0};

	return o;
}

static uint64_t next_seq(struct cluster *c, unsigned member)
{
	return ++c->seq[member];
}

static void init_hosts(struct cluster *c, unsigned l)
{
	char host[16];
	unsigned m;

	for (m = 1; m <= c->n; m++) {
		struct sm_origin o;
		struct store_member me = {.id = m,
					  .name = host,
					  .raft_address = "r",
					  .peer_address = "p"};
		void *buf;
		size_t len;

		snprintf(host, sizeof(host), "host%u", m);
		o = origin(c, m, host, next_seq(c, m));
		assert_int_equal(sm_entry_host_init(&o, &me, &buf, &len), 0);
		assert_int_equal(submit_on(c, l, buf, len), 0);
	}
}

static void write_on(struct cluster *c, unsigned l, unsigned member,
		     const char *path, const char *value)
{
	char host[16];
	struct sm_origin o;
	void *buf;
	size_t len;

	snprintf(host, sizeof(host), "host%u", member);
	o = origin(c, member, host, next_seq(c, member));
	assert_int_equal(
		sm_entry_write(&o, path, value, strlen(value), &buf, &len), 0);
	assert_int_equal(submit_on(c, l, buf, len), 0);
}

/* Step until every live server applied the leader's last entry. */
static void settle(struct cluster *c)
{
	unsigned l = leader(c), i;
	raft_index last = raft_last_index(c->s[l].raft);

	for (i = 0; i < c->n; i++)
		if (raft_fixture_alive(&c->f, i))
			assert_true(raft_fixture_step_until_applied(&c->f, i,
								    last,
								    20000));
}

/* The snapshot bytes of every live server are identical. */
static void assert_identical(struct cluster *c)
{
	void *ref = NULL, *buf;
	size_t ref_len = 0, len;
	unsigned i;

	for (i = 0; i < c->n; i++) {
		struct store_pin *pin;

		if (!raft_fixture_alive(&c->f, i))
			continue;
		pin = store_pin(c->s[i].st);
		assert_int_equal(sm_snapshot_encode(pin, &buf, &len), 0);
		store_unpin(pin);
		if (!ref) {
			ref = buf;
			ref_len = len;
			continue;
		}
		assert_int_equal(len, ref_len);
		assert_memory_equal(buf, ref, len);
		free(buf);
	}
	free(ref);
}

static const char *read_on(struct cluster *c, unsigned i, const char *host,
			   const char *path)
{
	static char out[256];
	struct store_caller who = {.privileged = true,
				   .target = STORE_NO_TARGET,
				   .quota = STORE_QUOTA_INIT};
	const char *v;
	size_t len;

	if (store_read(c->s[i].st, host, NULL, &who, path, &v, &len))
		return NULL;
	memcpy(out, v, len);
	out[len] = '\0';
	return out;
}

static void test_replicas_identical(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned l = leader(c), i, m;
	char path[64], val[64];

	init_hosts(c, l);
	for (i = 0; i < 60; i++) {
		m = 1 + i % 3;
		snprintf(path, sizeof(path), "/data/k%u/x", i);
		snprintf(val, sizeof(val), "v%u", i);
		write_on(c, l, m, path, val);
	}
	/* permissions, removal and a transaction from another origin */
	{
		struct store_perm p[2] = {{.domid = 0}, {.domid = 5, .access = 1}};
		struct sm_origin o = origin(c, 2, "host2", next_seq(c, 2));
		void *buf;
		size_t len;

		assert_int_equal(sm_entry_set_perms(&o, "/data", p, 2, &buf,
						    &len),
				 0);
		assert_int_equal(submit_on(c, l, buf, len), 0);
		o = origin(c, 3, "host3", next_seq(c, 3));
		assert_int_equal(sm_entry_rm(&o, "/data/k2", &buf, &len), 0);
		assert_int_equal(submit_on(c, l, buf, len), 0);
	}
	settle(c);
	{
		/* a transaction run on replica 1's store, committed by all */
		struct store_caller who = {.privileged = true,
					   .target = STORE_NO_TARGET,
					   .quota = STORE_QUOTA_INIT};
		struct store_txn *tx = store_txn_new(c->s[1].st, "host1");
		struct store_commit cm;
		struct sm_origin o = origin(c, 1, "host1", next_seq(c, 1));
		void *buf;
		size_t len;

		assert_int_equal(store_write(c->s[1].st, "host1", tx, &who, 0,
					     "/tx/a", "1", 1, NULL),
				 0);
		assert_int_equal(store_txn_export(tx, &cm), 0);
		assert_int_equal(sm_entry_commit(&o, &cm, &buf, &len), 0);
		store_commit_release(&cm);
		store_txn_free(tx);
		assert_int_equal(submit_on(c, l, buf, len), 0);
	}
	settle(c);
	for (i = 0; i < 3; i++) {
		assert_string_equal(read_on(c, i, "host1", "/tx/a"), "1");
		assert_string_equal(read_on(c, i, "host2", "/data/k1/x"),
				    "v1");
		assert_null(read_on(c, i, "host3", "/data/k2/x"));
		assert_non_null(store_member_by_name(c->s[i].st, "host3"));
	}
	assert_identical(c);
	cluster_free(c);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
	int *done = req->data;

	*done = status == 0 ? 1 : -1;
}

/*
 * The premise of the readiness rule (node/cluster.c, consensus/repl.c's
 * repl_read_index): a leader elected a moment ago may hold a commit index
 * far behind what its predecessor committed (and acknowledged to
 * clients), because followers learn the commit index only with the next
 * AppendEntries. A member that trusted it would serve stale state; once
 * the new leader has committed an entry of its own term (a barrier), its
 * commit index covers everything committed before. The restart of every
 * member at once (issue 10) is this case: the new leader's commit index
 * was 1 while 6085 entries were committed.
 */
static void test_new_leader_commit_index_is_stale(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned l = leader(c), l2, i;
	struct raft_barrier req;
	raft_index committed;
	char path[32];
	int done = 0;

	(void)state;
	init_hosts(c, l);
	settle(c);
	for (i = 0; i < 30; i++) {
		snprintf(path, sizeof(path), "/late/%u", i);
		write_on(c, l, 1 + i % 3, path, "z");
	}
	/* the leader commits (and would acknowledge) them all ... */
	committed = raft_last_index(c->s[l].raft);
	assert_true(
		raft_fixture_step_until_applied(&c->f, l, committed, 20000));
	assert_int_equal(raft_commit_index(c->s[l].raft), committed);
	/* ... and dies before the next heartbeat tells the followers */
	raft_fixture_kill(&c->f, l);
	for (i = 0; i < c->n; i++)
		if (i != l)
			assert_true(raft_commit_index(c->s[i].raft) <
				    committed);
	assert_true(raft_fixture_step_until_has_no_leader(&c->f, 5000) ||
		    raft_fixture_leader_index(&c->f) != l);
	l2 = leader(c);
	assert_int_not_equal(l2, l);
	/* the hazard: a new leader whose commit index is stale */
	assert_true(raft_commit_index(c->s[l2].raft) < committed);
	/* the rule: an entry of the leader's own term, committed */
	req.data = &done;
	assert_int_equal(raft_barrier(c->s[l2].raft, &req, barrier_cb), 0);
	for (i = 0; i < 20000 && !done; i++)
		raft_fixture_step(&c->f);
	assert_int_equal(done, 1);
	assert_true(raft_commit_index(c->s[l2].raft) >= committed);
	assert_true(raft_last_applied(c->s[l2].raft) >= committed);
	for (i = 0; i < 30; i++) {
		snprintf(path, sizeof(path), "/late/%u", i);
		assert_string_equal(read_on(c, l2, i % 3 == 0   ? "host1"
						   : i % 3 == 1 ? "host2"
								: "host3",
					    path),
				    "z");
	}
	cluster_free(c);
}

static void test_leader_killed(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned l = leader(c), l2, i;
	char path[32];

	init_hosts(c, l);
	for (i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "/before/%u", i);
		write_on(c, l, 1 + i % 3, path, "x");
	}
	settle(c);
	raft_fixture_kill(&c->f, l);
	assert_true(raft_fixture_step_until_has_no_leader(&c->f, 5000) ||
		    raft_fixture_leader_index(&c->f) != l);
	l2 = leader(c);
	assert_int_not_equal(l2, l);
	for (i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "/after/%u", i);
		write_on(c, l2, 1 + i % 3, path, "y");
	}
	settle(c);
	/* the old leader comes back and catches up */
	raft_fixture_revive(&c->f, l);
	settle(c);
	for (i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "/before/%u", i);
		assert_string_equal(read_on(c, l, i % 3 == 0   ? "host1"
						  : i % 3 == 1 ? "host2"
							       : "host3",
					    path),
				    "x");
	}
	assert_identical(c);
	cluster_free(c);
}

static void test_catch_up_by_snapshot(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned l = leader(c), lagger = (l + 1) % 3, i, k;
	char path[32];

	for (i = 0; i < 3; i++) {
		raft_set_snapshot_threshold(c->s[i].raft, 8);
		raft_set_snapshot_trailing(c->s[i].raft, 2);
	}
	init_hosts(c, l);
	settle(c);
	for (k = 0; k < 3; k++)
		if (k != lagger) {
			raft_fixture_disconnect(&c->f, lagger, k);
			raft_fixture_disconnect(&c->f, k, lagger);
		}
	for (i = 0; i < 80; i++) {
		snprintf(path, sizeof(path), "/while-away/%u", i);
		write_on(c, l, 1 + i % 3, path, "z");
		raft_fixture_step_n(&c->f, 5);
	}
	/* the others progress without it */
	for (k = 0; k < 3; k++)
		if (k != lagger)
			assert_true(raft_fixture_step_until_applied(
				&c->f, k, raft_last_index(c->s[l].raft),
				20000));
	for (k = 0; k < 3; k++)
		if (k != lagger) {
			raft_fixture_reconnect(&c->f, lagger, k);
			raft_fixture_reconnect(&c->f, k, lagger);
		}
	settle(c);
	/* the log it missed is gone: it caught up from a snapshot */
	assert_true(raft_fixture_n_recv(&c->f, lagger, RAFT_INSTALL_SNAPSHOT) >=
		    1);
	assert_true(c->s[lagger].restores >= 1);
	assert_string_equal(read_on(c, lagger, "host2", "/while-away/79"),
			    "z");
	assert_identical(c);
	cluster_free(c);
}

static void test_duplicate_entry_applied_once(void **state)
{
	struct cluster *c = cluster_new(3);
	unsigned l = leader(c), i;
	struct store_caller who = {.privileged = true,
				   .target = STORE_NO_TARGET,
				   .quota = STORE_QUOTA_INIT};
	struct sm_origin o;
	void *buf, *copy, *other;
	size_t len, olen;
	const char *kids;
	size_t klen;
	uint64_t gen1, gen2;
	int result;

	init_hosts(c, l);
	settle(c);
	o = origin(c, 2, "host2", next_seq(c, 2));
	assert_int_equal(sm_entry_write(&o, "/dup", "first", 5, &buf, &len),
			 0);
	copy = malloc(len);
	memcpy(copy, buf, len);
	/* the same (origin, seq) with other contents must not apply either */
	assert_int_equal(
		sm_entry_write(&o, "/dup", "second", 6, &other, &olen), 0);
	assert_int_equal(submit_on(c, l, buf, len), 0);
	settle(c);
	assert_int_equal(store_directory(c->s[0].st, "host2", NULL, &who,
					 "/dup", &kids, &klen, &gen1),
			 0);
	/* a forwarding retry: the copy reaches the log again, and another */
	assert_int_equal(submit_on(c, l, copy, len), 0);
	assert_int_equal(submit_on(c, l, other, olen), 0);
	settle(c);
	for (i = 0; i < 3; i++) {
		assert_int_equal(store_directory(c->s[i].st, "host2", NULL,
						 &who, "/dup", &kids, &klen,
						 &gen2),
				 0);
		/* the generation is the index of the first application */
		assert_int_equal(gen2, gen1);
		assert_string_equal(read_on(c, i, "host2", "/dup"), "first");
		assert_int_equal(store_session_lookup(c->s[i].st, 2, o.seq,
						      &result),
				 STORE_SEEN);
		assert_int_equal(result, 0);
	}
	assert_identical(c);
	cluster_free(c);
}

static void test_five_survive_two_failures(void **state)
{
	struct cluster *c = cluster_new(5);
	unsigned l = leader(c), other = (l + 1) % 5, l2, i;
	char path[32];

	init_hosts(c, l);
	settle(c);
	raft_fixture_kill(&c->f, l);
	raft_fixture_kill(&c->f, other);
	/* the fixture keeps naming the dead leader until it is deposed */
	assert_true(raft_fixture_step_until_has_no_leader(&c->f, 5000));
	l2 = leader(c);
	assert_true(l2 != l && l2 != other);
	for (i = 0; i < 30; i++) {
		snprintf(path, sizeof(path), "/survive/%u", i);
		write_on(c, l2, 1 + i % 5, path, "s");
	}
	settle(c);
	raft_fixture_revive(&c->f, l);
	raft_fixture_revive(&c->f, other);
	settle(c);
	assert_string_equal(read_on(c, l, "host5", "/survive/29"), "s");
	assert_identical(c);
	cluster_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replicas_identical),
		cmocka_unit_test(test_leader_killed),
		cmocka_unit_test(test_new_leader_commit_index_is_stale),
		cmocka_unit_test(test_catch_up_by_snapshot),
		cmocka_unit_test(test_duplicate_entry_applied_once),
		cmocka_unit_test(test_five_survive_two_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
