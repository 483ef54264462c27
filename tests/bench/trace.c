/*
 * tests/bench/trace.c: traces, precomputed lists of requests (boot,
 * populate, the untimed setup and cleanup phases), built here and sent by
 * script.c and batch.c.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

void trace_reset(struct trace *t)
{
	t->n = 0;
	t->arena.off = t->arena.len = 0;
}

void trace_free(struct trace *t)
{
	free(t->steps);
	buf_free(&t->arena);
	memset(t, 0, sizeof(*t));
}

/* Append a step whose payload is the given NUL-separated strings; the last
 * one is followed by a NUL unless `value_last` (WRITE's value has none). */
void trace_add(struct trace *t, uint32_t type, uint32_t flags,
	       bool value_last, int nstr, ...)
{
	struct step *s;
	va_list ap;
	int i;

	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		t->steps = bench_xrealloc(t->steps, t->cap * sizeof(*t->steps));
	}
	s = &t->steps[t->n++];
	s->type = type;
	s->flags = flags;
	s->off = (uint32_t)t->arena.len;
	va_start(ap, nstr);
	for (i = 0; i < nstr; i++) {
		const char *str = va_arg(ap, const char *);

		buf_put(&t->arena, str, strlen(str));
		if (i < nstr - 1 || !value_last)
			buf_put(&t->arena, "", 1);
	}
	va_end(ap);
	s->len = (uint32_t)(t->arena.len - s->off);
}

void trace_write(struct trace *t, uint32_t fl, const char *path, const char *val)
{
	trace_add(t, WIRE_WRITE, fl, true, 2, path, val);
}

void trace_txn(struct trace *t, bool start)
{
	if (start)
		trace_add(t, WIRE_TRANSACTION_START, 0, false, 1, "");
	else
		trace_add(t, WIRE_TRANSACTION_END, STEP_TX, false, 1, "T");
}
