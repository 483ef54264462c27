/*
 * tests/bench/script.c: the scripted workloads (boot, populate): each op
 * is a unit's trace (boot.c, populate.c) replayed on a connection, one
 * request at a time except steps marked STEP_PIPE.
 */
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

int script_next(struct bench *b, struct conn *c)
{
	struct script *s = &c->s;
	const struct step *st;

	if (!s->active) {
		if (!engine_op_begin(b))
			return -1;
		s->active = true;
		s->unit = b->next_unit++;
		s->step = s->pending = 0;
		s->tx = 0;
		s->op_ns = bench_now_ns();
		if (!strcmp(b->w->name, "boot"))
			boot_trace(b, &s->tr, s->unit);
		else
			populate_trace(b, &s->tr, s->unit);
	}
	if (s->step == s->tr.n)
		return 0;
	st = &s->tr.steps[s->step];
	if (s->pending && !(st->flags & STEP_PIPE))
		return 0;
	if (st->type == WIRE_TRANSACTION_START)
		s->txn_begin = s->step;
	conn_xs_send(b, c, st->type, st->flags & STEP_TX ? s->tx : 0,
		     s->tr.arena.p + st->off, st->len, s->op_ns, s->step);
	s->step++;
	s->pending++;
	return 1;
}

void script_reply(struct bench *b, struct conn *c, const struct slot *sl,
		  uint32_t type, const char *body, uint32_t len)
{
	struct script *s = &c->s;
	const struct step *st = &s->tr.steps[sl->tag];

	s->pending--;
	if (type == WIRE_ERROR) {
		if (st->type == WIRE_TRANSACTION_END && !strcmp(body, "EAGAIN")) {
			b->eagain++;
			s->step = s->txn_begin; /* libxl: goto retry_transaction */
			return;
		}
		if (!(st->flags & STEP_OK_ENOENT && !strcmp(body, "ENOENT")))
			stats_note_error(b, wire_type_name(st->type),
					 s->tr.arena.p + st->off, body);
	} else if (st->type == WIRE_TRANSACTION_START) {
		s->tx = (uint32_t)bench_body_num(body, len);
	} else if (st->type == WIRE_TRANSACTION_END) {
		b->commits++;
	}
	if (s->step == s->tr.n && !s->pending) {
		s->active = false;
		stats_op_done(b, s->op_ns);
	}
}
