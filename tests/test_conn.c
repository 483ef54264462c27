/*
 * tests/test_conn.c: the watch events a connection queues (node/conn.c),
 * over a ring connection whose guest side the test plays: an event
 * identical to one still queued unsent is dropped ("@" ones excepted),
 * also when it is half copied into the ring or taken up from the journal
 * after a restart, and never once it has left; 20,000 of them at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "node/conn.h"
#include "ring/ring.h"
#include "wire/xs_msg.h"

struct env {
	uv_loop_t loop;
	struct conn_pool *pool;
	struct xenstore_domain_interface *page;
	struct ring_journal *jr;
	bool pool_closed;
	/* what the guest read from the response ring, not parsed yet */
	uint8_t stream[1 << 20];
	size_t n;
};

static enum conn_verdict on_request(void *data, struct conn *c,
				    struct conn_req *r)
{
	(void)data;
	(void)c;
	(void)r;
	return CONN_DONE;
}

static void on_notify(void *arg)
{
	(void)arg;
}

static void on_ring_event(void *arg, struct conn *c, enum conn_ring_event ev,
			  uint32_t error)
{
	(void)arg;
	(void)c;
	(void)error;
	assert_int_equal(ev, CONN_RING_CLOSED);
}

static struct conn *ring_conn(struct env *e, bool fresh)
{
	struct conn_identity id = {.domid = 1, .target = UINT32_MAX,
				   .ring_id = 1};
	struct conn_limits lim = CONN_LIMITS_DEFAULT;
	struct conn_handler h = {.request = on_request};
	struct conn_ring_ops ops = {.notify = on_notify,
				    .event = on_ring_event};
	struct conn *c;

	assert_int_equal(conn_ring_new(e->pool, e->page, e->jr, fresh, &id,
				       &lim, &h, &ops, &c),
			 0);
	return c;
}

/* A few turns of the loop: the work list runs from its check phase. */
static void run(struct env *e)
{
	int i;

	for (i = 0; i < 3; i++)
		uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* The guest reads everything in the response ring. */
static void guest_read(struct env *e)
{
	uint32_t cons = e->page->rsp_cons, prod = e->page->rsp_prod;

	assert_true(prod - cons <= XENSTORE_RING_SIZE);
	for (; cons != prod; cons++) {
		assert_true(e->n < sizeof(e->stream));
		e->stream[e->n++] = (uint8_t)
			e->page->rsp[MASK_XENSTORE_IDX(cons)];
	}
	e->page->rsp_cons = cons;
}

/* Take the first whole event read so far, as "path token" (false: none). */
static bool next_event(struct env *e, char *out, size_t len)
{
	struct wire_hdr h;
	const char *p;
	size_t n;

	if (e->n < WIRE_HDR_SIZE)
		return false;
	wire_hdr_decode(e->stream, &h);
	if (e->n < WIRE_HDR_SIZE + h.len)
		return false;
	assert_int_equal(h.type, WIRE_WATCH_EVENT);
	p = (const char *)e->stream + WIRE_HDR_SIZE;
	assert_true(snprintf(out, len, "%s %s", p, p + strlen(p) + 1) <
		    (int)len);
	n = WIRE_HDR_SIZE + h.len;
	memmove(e->stream, e->stream + n, e->n - n);
	e->n -= n;
	return true;
}

/* Every whole event read so far, comma-separated. */
static void events(struct env *e, char *out, size_t len)
{
	char one[256];
	size_t o = 0;

	out[0] = '\0';
	while (next_event(e, one, sizeof(one))) {
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "",
				      one);
		assert_true(o < len);
	}
}

static size_t event_bytes(const char *path, const char *token)
{
	return WIRE_HDR_SIZE + strlen(path) + 1 + strlen(token) + 1;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->page = calloc(1, sizeof(*e->page));
	e->jr = calloc(1, sizeof(*e->jr));
	assert_true(e->page && e->jr);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->pool = conn_pool_new(&e->loop);
	assert_non_null(e->pool);
	e->jr->in_base_seq = 1;
	*state = e;
	return 0;
}

static void pool_closed(void *arg)
{
	((struct env *)arg)->pool_closed = true;
}

static int teardown(void **state)
{
	struct env *e = *state;

	run(e);
	assert_int_equal(conn_pool_count(e->pool), 0);
	conn_pool_close(e->pool, pool_closed, e);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_true(e->pool_closed);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e->page);
	free(e->jr);
	free(e);
	return 0;
}

static void close_conn(struct env *e, struct conn *c)
{
	conn_ring_orphan(c);
	conn_close(c, NULL);
	run(e);
}

static void test_duplicates_while_queued(void **state)
{
	struct env *e = *state;
	struct conn *c = ring_conn(e, true);
	char got[4096];

	conn_event(c, "/a", "t");
	conn_event(c, "/a", "t"); /* dropped: the first is still queued */
	conn_event(c, "@r", "t");
	conn_event(c, "@r", "t"); /* "@" events are never dropped */
	conn_event(c, "/a", "u"); /* another token is another event */
	conn_event(c, "/a/", "t"); /* and another path */
	assert_int_equal(conn_output_bytes(c),
			 event_bytes("/a", "t") + 2 * event_bytes("@r", "t") +
				 event_bytes("/a", "u") + event_bytes("/a/", "t"));
	run(e);
	assert_int_equal(conn_output_bytes(c), 0);
	guest_read(e);
	events(e, got, sizeof(got));
	assert_string_equal(got, "/a t,@r t,@r t,/a u,/a/ t");
	/* it left the queue: the same event is queued again */
	conn_event(c, "/a", "t");
	assert_int_equal(conn_output_bytes(c), event_bytes("/a", "t"));
	run(e);
	guest_read(e);
	events(e, got, sizeof(got));
	assert_string_equal(got, "/a t");
	close_conn(e, c);
}

/*
 * An event half copied into a full ring is still queued; so is the rest
 * of it that the next daemon takes up from the journal.
 */
static void test_half_written_and_restart(void **state)
{
	struct env *e = *state;
	struct conn *c = ring_conn(e, true);
	char path[32], got[8192], want[8192];
	size_t one = event_bytes("/p/00", "tok"), wo = 0;
	int i;

	for (i = 0; i < 40; i++) { /* 40 x 26 bytes: more than the ring */
		snprintf(path, sizeof(path), "/p/%02d", i);
		conn_event(c, path, "tok");
		wo += (size_t)snprintf(want + wo, sizeof(want) - wo, "%s%s tok",
				       i ? "," : "", path);
	}
	run(e);
	/* 1024 bytes are in the ring: 39 events and 10 bytes of /p/39 */
	assert_int_equal(e->page->rsp_prod, XENSTORE_RING_SIZE);
	assert_int_equal(conn_output_bytes(c), one);
	conn_event(c, "/p/39", "tok"); /* half written: dropped */
	assert_int_equal(conn_output_bytes(c), one);
	conn_event(c, "/p/00", "tok"); /* all written: queued */
	assert_int_equal(conn_output_bytes(c), 2 * one);

	/* the daemon goes; the next one takes the ring up from the journal
	 * (what was not journaled yet, /p/00 again, is lost with it) */
	close_conn(e, c);
	c = ring_conn(e, false);
	assert_int_equal(conn_output_bytes(c), one); /* the rest of /p/39 */
	conn_event(c, "/p/39", "tok");
	assert_int_equal(conn_output_bytes(c), one);
	guest_read(e);
	conn_ring_kick(c);
	run(e);
	assert_int_equal(conn_output_bytes(c), 0);
	guest_read(e);
	events(e, got, sizeof(got));
	assert_string_equal(got, want); /* each once, /p/39 whole */
	assert_int_equal(e->n, 0);
	conn_event(c, "/p/39", "tok"); /* gone from the queue: queued */
	assert_int_equal(conn_output_bytes(c), one);
	close_conn(e, c);
}

/* 20,000 queued events, each checked against all of them in O(1). */
static void test_scale(void **state)
{
	enum { N = 20000 };
	struct env *e = *state;
	struct conn *c = ring_conn(e, true);
	char tok[16], got[64];
	size_t total = 0;
	struct timespec t0, t1;
	double secs;
	int i, round, seen = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < N; i++) {
			snprintf(tok, sizeof(tok), "t%05d", i);
			conn_event(c, "/", tok);
			if (round == 0)
				total += event_bytes("/", tok);
		}
		assert_int_equal(conn_output_bytes(c), total);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("%d events queued, %d duplicates dropped in %.3f s\n",
		      N, 2 * N, secs);
	assert_true(secs < 2.0); /* a scan per event: 5.5 s */
	/* the guest reads them all, each once, in order */
	while (conn_output_bytes(c) || e->n) {
		run(e);
		guest_read(e);
		conn_ring_kick(c); /* the guest's event channel */
		while (next_event(e, got, sizeof(got))) {
			char want[32];

			snprintf(want, sizeof(want), "/ t%05d", seen++);
			assert_string_equal(got, want);
		}
	}
	assert_int_equal(seen, N);
	close_conn(e, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_duplicates_while_queued,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_written_and_restart,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
