/*
 * node/trace.c: cxenstored's trace file (node/trace.h), in its format:
 * "IN|OUT <conn> <time> <TYPE> (<payload, NULs as spaces>)".
 */
#include "node/trace.h"
#include "node/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct trace {
	char *path; /* NULL: no trace file */
	FILE *f;    /* open, or NULL */
};

struct trace *trace_new(const char *path)
{
	struct trace *t = calloc(1, sizeof(*t));

	if (t && path && !(t->path = strdup(path))) {
		free(t);
		return NULL;
	}
	return t;
}

void trace_free(struct trace *t)
{
	if (!t)
		return;
	trace_close(t);
	free(t->path);
	free(t);
}

void trace_open(struct trace *t)
{
	trace_close(t);
	if (!t->path)
		return;
	t->f = log_append_file(t->path);
	if (!t->f) {
		log_msg(4, "cannot open trace file %s: %s", t->path,
			strerror(errno));
		return;
	}
	fputs("\n***\n", t->f);
	fflush(t->f);
}

void trace_close(struct trace *t)
{
	if (t->f)
		fclose(t->f);
	t->f = NULL;
}

int trace_set_path(struct trace *t, const char *path)
{
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	trace_close(t);
	free(t->path);
	t->path = p;
	trace_open(t);
	return 0;
}

FILE *trace_file(const struct trace *t)
{
	return t->f;
}

void trace_line(struct trace *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->f)
		return;
	va_start(ap, fmt);
	vfprintf(t->f, fmt, ap);
	va_end(ap);
	fflush(t->f);
}

void trace_io(void *data, const struct conn *c, bool out,
	      const struct wire_hdr *h, const void *payload)
{
	struct trace *t = data;
	const char *name = wire_type_name(h->type);
	const unsigned char *p = payload;
	char stamp[32];
	time_t now;
	struct tm tm;
	uint32_t i;

	if (!t->f)
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d %H:%M:%S", &tm);
	fprintf(t->f, "%s %p %s %s (", out ? "OUT" : "IN", (const void *)c,
		stamp, name ? name : "**UNKNOWN**");
	for (i = 0; i < h->len; i++)
		fputc(p[i] ? p[i] : ' ', t->f);
	fputs(")\n", t->f);
	fflush(t->f);
}
