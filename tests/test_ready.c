/*
 * tests/test_ready.c: the readiness state machine (node/ready.c) against
 * a fake member: who leads, what it answers, how far we applied.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/ready.h"

struct fake {
	uint64_t leader, applied, log_last;
	int read_index_rc;
	uint64_t read_index;
	uint64_t asked[16];
	uint64_t qids[16];
	unsigned n_asked;
	uint64_t next_qid;
	int done_calls, status;
};

static uint64_t f_leader(void *arg)
{
	return ((struct fake *)arg)->leader;
}

static int f_read_index(void *arg, uint64_t *index)
{
	struct fake *f = arg;

	*index = f->read_index;
	return f->read_index_rc;
}

static uint64_t f_applied(void *arg)
{
	return ((struct fake *)arg)->applied;
}

static uint64_t f_log_last(void *arg)
{
	return ((struct fake *)arg)->log_last;
}

static int f_ask(void *arg, uint64_t leader, uint64_t *qid)
{
	struct fake *f = arg;

	assert_true(f->n_asked < 16);
	*qid = ++f->next_qid;
	f->asked[f->n_asked] = leader;
	f->qids[f->n_asked++] = *qid;
	return 0;
}

static void f_done(void *arg, int status)
{
	struct fake *f = arg;

	f->done_calls++;
	f->status = status;
}

static struct ready *start(struct fake *f, unsigned timeout_ms)
{
	struct ready_env env = {
		.arg = f,
		.self = 1,
		.leader = f_leader,
		.read_index = f_read_index,
		.applied = f_applied,
		.log_last = f_log_last,
		.ask = f_ask,
		.done = f_done,
	};
	struct ready *rd = ready_start(&env, timeout_ms, 0);

	assert_non_null(rd);
	return rd;
}

/* No leader ever: it gives up at the timeout, once. */
static void test_no_leader_times_out(void **state)
{
	struct fake f = {0};
	struct ready *rd = start(&f, 1000);
	uint64_t t;

	for (t = 0; t < 1000; t += 10)
		ready_tick(rd, t);
	assert_int_equal(f.done_calls, 0);
	assert_int_equal(f.n_asked, 0);
	ready_tick(rd, 1000);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, -ETIMEDOUT);
	ready_tick(rd, 2000);
	assert_int_equal(f.done_calls, 1);
	assert_true(ready_finished(rd));
	ready_free(rd);
}

static int waited_calls;
static bool waited_answer;

static bool f_waited(void *arg)
{
	(void)arg;
	waited_calls++;
	return waited_answer;
}

/*
 * A cold start (node/standalone.h): waited() is called once, at wait_ms.
 * If it serves from local state there is no deadline any more and the
 * machine still finishes once caught up; if not, the deadline stands.
 */
static void test_cold_start_waits_without_deadline(void **state)
{
	struct fake f = {0};
	struct ready_env env = {
		.arg = &f, .self = 1, .leader = f_leader,
		.read_index = f_read_index, .applied = f_applied,
		.log_last = f_log_last, .ask = f_ask, .done = f_done,
		.waited = f_waited, .wait_ms = 300,
	};
	struct ready *rd;
	uint64_t t;
	int serve;

	for (serve = 0; serve < 2; serve++) {
		memset(&f, 0, sizeof(f));
		waited_calls = 0;
		waited_answer = serve;
		rd = ready_start(&env, 1000, 0);
		assert_non_null(rd);
		for (t = 0; t < 300; t += 10)
			ready_tick(rd, t);
		assert_int_equal(waited_calls, 0);
		for (t = 300; t < 5000; t += 10)
			ready_tick(rd, t);
		assert_int_equal(waited_calls, 1);
		if (!serve) {
			assert_int_equal(f.done_calls, 1);
			assert_int_equal(f.status, -ETIMEDOUT);
			ready_free(rd);
			continue;
		}
		assert_int_equal(f.done_calls, 0);
		/* a quorum forms: we lead, read index 7, applied 7 */
		f.leader = 1;
		f.read_index = 7;
		f.applied = 7;
		ready_tick(rd, 5000);
		ready_tick(rd, 5010);
		assert_int_equal(f.done_calls, 1);
		assert_int_equal(f.status, 0);
		assert_int_equal(waited_calls, 1);
		ready_free(rd);
	}
}

/*
 * A follower: asks the leader; "not yet" (no entry of its term) keeps it
 * waiting and asking again; a read index makes it apply up to it, and
 * not one entry less.
 */
static void test_follower_waits_for_read_index(void **state)
{
	struct fake f = {.leader = 2, .applied = 1, .log_last = 6085};
	struct ready *rd = start(&f, 60000);

	ready_tick(rd, 10);
	assert_int_equal(f.n_asked, 1);
	assert_int_equal(f.asked[0], 2);
	/* not for us: another qid, another member */
	assert_false(ready_answer(rd, 2, f.qids[0] + 7, 50));
	assert_false(ready_answer(rd, 3, f.qids[0], 50));
	/* the new leader has not committed an entry of its term */
	assert_true(ready_answer(rd, 2, f.qids[0], 0));
	ready_tick(rd, 20);
	assert_int_equal(f.n_asked, 1);
	assert_int_equal(f.done_calls, 0);
	/* it asks again after READY_QUERY_MS */
	ready_tick(rd, 10 + READY_QUERY_MS);
	ready_tick(rd, 11 + READY_QUERY_MS);
	assert_int_equal(f.n_asked, 2);
	/* the old question's answer no longer counts */
	assert_false(ready_answer(rd, 2, f.qids[0], 6000));
	assert_true(ready_answer(rd, 2, f.qids[1], 6085));
	f.applied = 6084;
	ready_tick(rd, 400);
	assert_int_equal(f.done_calls, 0);
	f.applied = 6085;
	ready_tick(rd, 410);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, 0);
	ready_free(rd);
}

/* A leader change while asking: the new leader is asked, at once. */
static void test_leader_change_asks_the_new_one(void **state)
{
	struct fake f = {.leader = 2};
	struct ready *rd = start(&f, 60000);

	ready_tick(rd, 0);
	f.leader = 3;
	ready_tick(rd, 5);
	ready_tick(rd, 6);
	assert_int_equal(f.n_asked, 2);
	assert_int_equal(f.asked[1], 3);
	assert_false(ready_answer(rd, 2, f.qids[0], 10));
	assert_true(ready_answer(rd, 3, f.qids[1], 10));
	f.applied = 10;
	ready_tick(rd, 7);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, 0);
	ready_free(rd);
}

/* We lead: our own read index, once an entry of our term committed. */
static void test_leader_uses_own_read_index(void **state)
{
	struct fake f = {.leader = 1, .read_index_rc = -EAGAIN};
	struct ready *rd = start(&f, 60000);

	ready_tick(rd, 0);
	ready_tick(rd, 10);
	assert_int_equal(f.done_calls, 0);
	assert_int_equal(f.n_asked, 0);
	f.read_index_rc = 0;
	f.read_index = 30;
	f.applied = 29;
	ready_tick(rd, 20);
	assert_int_equal(f.done_calls, 0);
	f.applied = 30;
	ready_tick(rd, 30);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, 0);
	ready_free(rd);
}

/* Applying slower than the timeout: it gives up, with the figures. */
static void test_catch_up_too_slow(void **state)
{
	struct fake f = {.leader = 2};
	struct ready *rd = start(&f, 500);

	ready_tick(rd, 0);
	assert_true(ready_answer(rd, 2, f.qids[0], 100));
	f.applied = 50;
	ready_tick(rd, 499);
	assert_int_equal(f.done_calls, 0);
	ready_tick(rd, 500);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, -ETIMEDOUT);
	ready_free(rd);
}

/* The fault switch of the fault-injection suite: done at once. */
static void test_fault_switch_serves_at_once(void **state)
{
	struct fake f = {.applied = 1};
	struct ready *rd;

	setenv("XSR_FAULT_SERVE_STALE", "1", 1);
	rd = start(&f, 60000);
	unsetenv("XSR_FAULT_SERVE_STALE");
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(f.status, 0);
	assert_true(ready_finished(rd));
	ready_tick(rd, 10);
	assert_int_equal(f.n_asked, 0);
	ready_free(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_leader_times_out),
		cmocka_unit_test(test_follower_waits_for_read_index),
		cmocka_unit_test(test_leader_change_asks_the_new_one),
		cmocka_unit_test(test_leader_uses_own_read_index),
		cmocka_unit_test(test_catch_up_too_slow),
		cmocka_unit_test(test_fault_switch_serves_at_once),
		cmocka_unit_test(test_cold_start_waits_without_deadline),
	};

	unsetenv("XSR_FAULT_SERVE_STALE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
