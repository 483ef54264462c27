/*
 * tests/bench/util.c: the small helpers every file of xsbench uses: the
 * monotonic clock, fatal errors, allocation that cannot fail, byte buffers
 * and numbers in reply payloads. Talks to nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/bench/bench_int.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fputs("xsbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *bench_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		bench_die("out of memory");
	return p;
}

void *bench_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		bench_die("out of memory");
	return p;
}

void buf_reserve(struct buf *b, size_t more)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + more <= b->cap)
		return;
	if (b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return;
	}
	while (b->cap < b->len + more)
		b->cap = b->cap ? 2 * b->cap : 65536;
	b->p = bench_xrealloc(b->p, b->cap);
}

void buf_put(struct buf *b, const void *d, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* A decimal number in a reply's payload (not NUL-terminated for READ). */
long bench_body_num(const char *body, uint32_t len)
{
	char num[32];

	if (len >= sizeof(num))
		len = sizeof(num) - 1;
	memcpy(num, body, len);
	num[len] = '\0';
	return strtol(num, NULL, 10);
}
