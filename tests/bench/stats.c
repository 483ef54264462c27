/*
 * tests/bench/stats.c: what a run measures (latency of each op, errors)
 * and its report: one line of the table, or one JSON object, per workload
 * on stdout, as deploy/bench.sh reads them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/bench_int.h"

void stats_note_error(struct bench *b, const char *what, const char *path,
		      const char *err)
{
	b->errors++;
	if (!b->first_error[0])
		snprintf(b->first_error, sizeof(b->first_error), "%s %s: %.40s",
			 what, path, err);
}

void stats_op_done(struct bench *b, uint64_t op_ns)
{
	uint64_t t = bench_now_ns();

	if (b->nlat == b->caplat) {
		b->caplat = b->caplat ? 2 * b->caplat : 65536;
		b->lat = bench_xrealloc(b->lat, b->caplat * sizeof(*b->lat));
	}
	b->lat[b->nlat++] = t - op_ns;
	b->t_last = t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in microseconds. */
static double pct_us(const struct bench *b, double p)
{
	size_t k;

	if (!b->nlat)
		return 0;
	k = (size_t)(p * (double)b->nlat + 0.999999);
	if (k < 1)
		k = 1;
	if (k > b->nlat)
		k = b->nlat;
	return (double)b->lat[k - 1] / 1e3;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void stats_report(struct bench *b, const struct workload *w, unsigned conns,
		  unsigned depth)
{
	double secs = (double)(b->t_last - b->t_start) / 1e9;
	double ops_s = secs > 0 ? (double)b->nlat / secs : 0;
	double reqs_s = secs > 0 ? (double)b->reqs / secs : 0;
	uint64_t attempts = b->commits + b->eagain;
	bool tx = !strcmp(w->name, "txn") || !strcmp(w->name, "boot") ||
		  !strcmp(w->name, "populate");

	qsort(b->lat, b->nlat, sizeof(*b->lat), cmp_u64);
	if (b->json) {
		printf("{\"workload\":");
		json_str(stdout, w->name);
		printf(",\"label\":");
		json_str(stdout, b->label);
		printf(",\"conns\":%u,\"depth\":%u,\"ops\":%zu,\"seconds\":%.3f,"
		       "\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"p999_us\":%.1f,\"max_us\":%.1f,\"reqs\":%" PRIu64
		       ",\"reqs_per_s\":%.1f,\"errors\":%" PRIu64 ",\"first_error\":",
		       conns, depth, b->nlat, secs, ops_s, pct_us(b, 0.5),
		       pct_us(b, 0.99), pct_us(b, 0.999), pct_us(b, 1.0), b->reqs,
		       reqs_s, b->errors);
		json_str(stdout, b->first_error);
		if (tx)
			printf(",\"commits\":%" PRIu64 ",\"eagain\":%" PRIu64
			       ",\"eagain_rate\":%.4f", b->commits, b->eagain,
			       attempts ? (double)b->eagain / (double)attempts : 0);
		if (b->verified >= 0)
			printf(",\"verified\":%s", b->verified ? "true" : "false");
		if (b->nodes_made)
			printf(",\"nodes\":%" PRIu64, b->nodes_made);
		if (!strcmp(w->name, "probe"))
			printf(",\"max_gap_ms\":%.1f", (double)b->max_gap_ns / 1e6);
		if (!strcmp(w->name, "watched"))
			printf(",\"watches\":%u", b->watches);
		printf("}\n");
	} else {
		printf("%-10s %-12s c=%-3u d=%-3u %9zu ops %7.2fs %10.0f ops/s  "
		       "p50 %8.1fus  p99 %8.1fus  p999 %8.1fus",
		       w->name, b->label, conns, depth, b->nlat, secs, ops_s,
		       pct_us(b, 0.5), pct_us(b, 0.99), pct_us(b, 0.999));
		if (strcmp(w->name, "read") && strcmp(w->name, "dir100") &&
		    strcmp(w->name, "fsync") && strcmp(w->name, "rtt"))
			printf("  %.0f reqs/s", reqs_s);
		if (tx)
			printf("  commits %" PRIu64 " eagain %" PRIu64 " (%.1f%%)",
			       b->commits, b->eagain,
			       attempts ? 100.0 * (double)b->eagain / (double)attempts : 0);
		if (b->verified >= 0)
			printf("  counters %s", b->verified ? "add up" : "DO NOT ADD UP");
		if (b->nodes_made)
			printf("  nodes %" PRIu64, b->nodes_made);
		if (!strcmp(w->name, "probe"))
			printf("  max gap %.1f ms", (double)b->max_gap_ns / 1e6);
		if (!strcmp(w->name, "watched"))
			printf("  another client: %u watches, unread", b->watches);
		if (b->errors)
			printf("  errors %" PRIu64 " (first: %s)", b->errors, b->first_error);
		printf("\n");
	}
	fflush(stdout);
}
