/*
 * tests/bench/kv.c: the workloads of one request per op under --prefix:
 * read, write-one, write-many, overwrite, dir100, and probe (sequential
 * writes that measure the longest gap, for failovers). Paths and values
 * of every workload are made here.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

/* out = prefix/workload-tag[/<fmt>] */
void kv_path(struct bench *b, char *out, size_t n, const char *fmt, ...)
{
	char rest[BENCH_PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	if ((size_t)snprintf(out, n, "%s/%s-%s%s%s", b->prefix, b->w->name,
			     b->run_tag, rest[0] ? "/" : "", rest) >= n)
		bench_die("path too long under %s", b->prefix);
}

void kv_value(struct bench *b, char *v, uint64_t n)
{
	char num[24];
	unsigned len = b->value_size, k = (unsigned)snprintf(num, sizeof(num), "%" PRIu64, n);

	if (k >= len) {
		memcpy(v, num + (k - len), len);
	} else {
		memset(v, 'v', len - k);
		memcpy(v + len - k, num, k);
	}
	v[len] = '\0';
}

void kv_keys_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX], val[4200];
	unsigned i;

	for (i = 0; i < b->keys; i++) {
		kv_path(b, path, sizeof(path), "k%u", i);
		kv_value(b, val, i);
		trace_write(&b->batch, 0, path, val);
	}
	batch_run(b, "setup", true);
}

void kv_subtree_cleanup(struct bench *b)
{
	char path[BENCH_PATH_MAX];

	if (b->keep)
		return;
	kv_path(b, path, sizeof(path), "%s", "");
	trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, path);
	batch_run(b, "cleanup", false);
}

void kv_simple_reply(struct bench *b, struct conn *c, const struct slot *sl,
		     uint32_t type, const char *body, uint32_t len)
{
	if (type == WIRE_ERROR)
		stats_note_error(b, b->w->name, "", body);
	stats_op_done(b, sl->op_ns);
}

int kv_read_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX];

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "k%u",
		(unsigned)((c->seq++ + (uint64_t)c->id * 7919) % b->keys));
	conn_xs_send_path(b, c, WIRE_READ, path, 0, 0);
	return 1;
}

void kv_write_one_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];

	kv_path(b, path, sizeof(path), "%s", "");
	trace_add(&b->batch, WIRE_MKDIR, 0, false, 1, path);
	batch_run(b, "setup", true);
}

int kv_write_one_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "c%d-%" PRIu64, c->id, c->seq);
	kv_value(b, val, c->seq++);
	conn_emit_write(b, c, path, val, 0, 0);
	return 1;
}

void kv_write_many_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < b->parents; i++) {
		kv_path(b, path, sizeof(path), "p%u", i);
		trace_add(&b->batch, WIRE_MKDIR, 0, false, 1, path);
	}
	batch_run(b, "setup", true);
}

int kv_write_many_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];
	uint64_t n = c->seq++;

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "p%u/c%d-%" PRIu64,
		(unsigned)((n + (uint64_t)c->id * 13) % b->parents), c->id, n);
	kv_value(b, val, n);
	conn_emit_write(b, c, path, val, 0, 0);
	return 1;
}

int kv_overwrite_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[4200];
	uint64_t n = c->seq++;

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "k%u",
		(unsigned)((n + (uint64_t)c->id * 7919) % b->keys));
	kv_value(b, val, n + 1000000);
	conn_emit_write(b, c, path, val, 0, 0);
	return 1;
}

void kv_dir_setup(struct bench *b)
{
	char path[BENCH_PATH_MAX];
	unsigned i;

	for (i = 0; i < 100; i++) {
		kv_path(b, path, sizeof(path), "d/child-%03u", i);
		trace_write(&b->batch, 0, path, "x");
	}
	batch_run(b, "setup", true);
}

int kv_dir_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX];

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "d");
	conn_xs_send_path(b, c, WIRE_DIRECTORY, path, 0, 0);
	return 1;
}

void kv_dir_reply(struct bench *b, struct conn *c, const struct slot *sl,
		  uint32_t type, const char *body, uint32_t len)
{
	if (type == WIRE_ERROR)
		stats_note_error(b, "DIRECTORY", "", body);
	else if (wire_count_strings(body, len) != 100)
		stats_note_error(b, "DIRECTORY", "", "not 100 children");
	stats_op_done(b, sl->op_ns);
}

/* ------------------------------------------------------------------ */
/* probe: how long writes stop during a failover                       */

int kv_probe_next(struct bench *b, struct conn *c)
{
	char path[BENCH_PATH_MAX], val[32];

	if (!engine_op_begin(b))
		return -1;
	kv_path(b, path, sizeof(path), "k");
	snprintf(val, sizeof(val), "%" PRIu64, c->seq++);
	conn_emit_write(b, c, path, val, 0, 0);
	return 1;
}

void kv_probe_reply(struct bench *b, struct conn *c, const struct slot *sl,
		    uint32_t type, const char *body, uint32_t len)
{
	uint64_t t = bench_now_ns(), since = c->last_ok_ns ? c->last_ok_ns : b->t_start;

	if (type == WIRE_ERROR) {
		stats_note_error(b, "WRITE", "probe", body);
		return;
	}
	if (t - since > b->max_gap_ns)
		b->max_gap_ns = t - since;
	c->last_ok_ns = t;
	stats_op_done(b, sl->op_ns);
}
