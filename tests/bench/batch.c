/*
 * tests/bench/batch.c: the untimed phases (a workload's setup and cleanup):
 * b->batch, a trace, replayed pipelined on one connection by engine.c.
 */
#include <stdio.h>
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

static int batch_next(struct bench *b, struct conn *c)
{
	const struct step *s;

	if (b->batch_next == b->batch.n)
		return -1;
	s = &b->batch.steps[b->batch_next];
	if (b->proto == PROTO_ETCD) {
		/* puts and removals only; directories do not exist there */
		char path[BENCH_PATH_MAX];
		const char *pl = b->batch.arena.p + s->off;

		b->batch_next++;
		snprintf(path, sizeof(path), "%s", pl);
		if (s->type == WIRE_WRITE) {
			size_t n = strlen(pl) + 1;
			char val[4200];

			snprintf(val, sizeof(val), "%.*s", (int)(s->len - n), pl + n);
			conn_emit_write(b, c, path, val, 0, b->batch_next - 1);
		} else if (s->type == WIRE_RM) {
			conn_emit_rm(b, c, path, b->batch_next - 1);
		} /* else MKDIR: etcd has no directories */
		return 1;
	}
	conn_xs_send(b, c, s->type, 0, b->batch.arena.p + s->off, s->len, 0,
		     b->batch_next);
	b->batch_next++;
	return 1;
}

static void batch_reply(struct bench *b, struct conn *c, const struct slot *sl,
			uint32_t type, const char *body, uint32_t len)
{
	const struct step *s = &b->batch.steps[sl->tag];
	const char *path = b->batch.arena.p + s->off;

	if (type == WIRE_ERROR) {
		if (s->flags & STEP_OK_ENOENT && !strcmp(body, "ENOENT"))
			return;
		if (b->batch_strict)
			bench_die("%s: %s %s: %.*s", b->what, wire_type_name(s->type),
				  path, (int)len, body);
		stats_note_error(b, wire_type_name(s->type), path, body);
	}
	if (s->type == WIRE_READ && b->ctr_values)
		b->ctr_values[sl->tag] = bench_body_num(body, len);
}

static const struct workload batch_workload = {
	.name = "setup",
	.etcd_ok = true,
	.next = batch_next,
	.reply = batch_reply,
};

/* Replay b->batch (then empty it); errors are fatal if strict. */
void batch_run(struct bench *b, const char *what, bool strict)
{
	const struct workload *w = b->w;
	double dur = b->duration_s;
	uint64_t lim = b->ops_limit;

	if (!b->batch.n)
		return;
	b->w = &batch_workload;
	b->what = what;
	b->batch_next = 0;
	b->batch_strict = strict;
	b->duration_s = 1e6;
	b->ops_limit = 0;
	engine_run(b, 1, 32);
	b->w = w;
	b->duration_s = dur;
	b->ops_limit = lim;
	trace_reset(&b->batch);
}
