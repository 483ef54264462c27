/*
 * tests/bench/txn.c: the txn workload: read-modify-write transactions that
 * increment shared counters, retried on EAGAIN, and the check that the
 * counters add up to the commits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

enum { TX_START, TX_READ, TX_WRITE, TX_END };

void txn_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < b->counters; i++) {
		kv_path(b, path, sizeof(path), "ctr%u", i);
		trace_write(&b->batch, 0, path, "0");
	}
	batch_run(b, "setup", true);
}

int txn_next(struct bench *b, struct conn *c)
{
	struct script *s = &c->s;
	char p[BENCH_PATH_MAX + 32];
	size_t n;

	if (c->inflight)
		return 0;
	switch (s->state) {
	case TX_START:
		if (!s->active) {
			if (!engine_op_begin(b))
				return -1;
			s->active = true;
			s->op_ns = bench_now_ns();
			s->counter = (unsigned)((c->seq++ * 2654435761u + (unsigned)c->id) %
						b->counters);
		}
		conn_xs_send(b, c, WIRE_TRANSACTION_START, 0, "", 1, s->op_ns, TX_START);
		return 1;
	case TX_READ:
		kv_path(b, p, sizeof(p), "ctr%u", s->counter);
		conn_xs_send(b, c, WIRE_READ, s->tx, p, (uint32_t)strlen(p) + 1,
			     s->op_ns, TX_READ);
		return 1;
	case TX_WRITE:
		kv_path(b, p, sizeof(p), "ctr%u", s->counter);
		n = strlen(p) + 1;
		n += (size_t)snprintf(p + n, sizeof(p) - n, "%ld", s->value + 1);
		conn_xs_send(b, c, WIRE_WRITE, s->tx, p, (uint32_t)n, s->op_ns, TX_WRITE);
		return 1;
	default:
		conn_xs_send(b, c, WIRE_TRANSACTION_END, s->tx, s->abort ? "F" : "T", 2,
			     s->op_ns, TX_END);
		return 1;
	}
}

void txn_reply(struct bench *b, struct conn *c, const struct slot *sl,
	       uint32_t type, const char *body, uint32_t len)
{
	struct script *s = &c->s;

	if (type == WIRE_ERROR && !(sl->tag == TX_END && !strcmp(body, "EAGAIN"))) {
		static const char *const what[] = {"TRANSACTION_START", "READ",
						   "WRITE", "TRANSACTION_END"};

		stats_note_error(b, what[sl->tag], "counter", body);
		/* give the op up, aborting the transaction if one is open */
		s->abort = sl->tag == TX_READ || sl->tag == TX_WRITE;
		s->state = s->abort ? TX_END : TX_START;
		s->active = s->abort;
		return;
	}
	if (sl->tag == TX_END && s->abort) {
		s->abort = false;
		s->active = false;
		s->state = TX_START;
		return;
	}
	switch (sl->tag) {
	case TX_START:
		s->tx = (uint32_t)bench_body_num(body, len);
		s->state = TX_READ;
		break;
	case TX_READ:
		s->value = bench_body_num(body, len);
		s->state = TX_WRITE;
		break;
	case TX_WRITE:
		s->state = TX_END;
		break;
	default:
		s->state = TX_START;
		if (type == WIRE_ERROR) {
			b->eagain++; /* retry the same increment */
			return;
		}
		b->commits++;
		s->active = false;
		stats_op_done(b, sl->op_ns);
		break;
	}
}

void txn_cleanup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	long sum = 0;
	unsigned i;

	b->ctr_values = calloc(b->counters + 1, sizeof(long));
	for (i = 0; i < b->counters; i++) {
		kv_path(b, path, sizeof(path), "ctr%u", i);
		trace_add(&b->batch, WIRE_READ, 0, false, 1, path);
	}
	batch_run(b, "check", false);
	for (i = 0; i < b->counters; i++)
		sum += b->ctr_values[i];
	b->verified = (uint64_t)sum == b->commits;
	free(b->ctr_values);
	b->ctr_values = NULL;
	kv_subtree_cleanup(b);
}
