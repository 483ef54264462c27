/*
 * tests/bench/populate.c: the populate workload: --domains domains of
 * --nodes leaves, written in transactions of POP_GROUP leaves (an op),
 * replayed by script.c; kept for scale tests unless --cleanup.
 */
#include <stdio.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

#define POP_GROUP 100

static unsigned pop_groups(struct bench *b)
{
	return (b->nodes + POP_GROUP - 1) / POP_GROUP;
}

void populate_trace(struct bench *b, struct trace *t, unsigned unit)
{
	unsigned g = pop_groups(b), dom = b->domid_base + unit / g, grp = unit % g, k;
	unsigned first = grp * POP_GROUP, last = first + POP_GROUP;
	char p[BENCH_PATH_MAX], val[4200];

	if (last > b->nodes)
		last = b->nodes;
	trace_reset(t);
	trace_txn(t, true);
	for (k = first; k < last; k++) {
		snprintf(p, sizeof(p), "/local/domain/%u/bench/g%u/n%u", dom, grp, k);
		kv_value(b, val, k);
		trace_write(t, STEP_TX | STEP_PIPE, p, val);
	}
	trace_txn(t, false);
}

void populate_setup(struct bench *b)
{
	b->ops_limit = (uint64_t)b->domains * pop_groups(b);
	/* /local/domain/D, .../bench, the groups, the leaves */
	b->nodes_made = (uint64_t)b->domains * (2 + pop_groups(b) + b->nodes);
}

void populate_cleanup(struct bench *b)
{
	char p[BENCH_PATH_MAX];
	unsigned i;

	if (!b->cleanup_pop)
		return;
	for (i = 0; i < b->domains; i++) {
		snprintf(p, sizeof(p), "/local/domain/%u", b->domid_base + i);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, p);
	}
	batch_run(b, "cleanup", false);
}
