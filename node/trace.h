/*
 * node/trace.h: cxenstored's trace file (-T, CONTROL log|logfile): every
 * message in and out, one line each, plus CONTROL print lines and memory
 * reports. Opened again on SIGHUP (logrotate).
 */
#ifndef XSR_NODE_TRACE_H
#define XSR_NODE_TRACE_H

#include <stdbool.h>
#include <stdio.h>

#include "wire/xs_msg.h"

struct conn;
struct trace;

/* A trace writing to path (NULL: none until trace_set_path). Not opened
 * yet. NULL if out of memory. */
struct trace *trace_new(const char *path);
void trace_free(struct trace *t);
/* (Re)open the file, appending; a failure is logged, not fatal. */
void trace_open(struct trace *t);
void trace_close(struct trace *t);
/* Trace to path from now on (reopened). 0 or -ENOMEM. */
int trace_set_path(struct trace *t, const char *path);
/* The open file (for reports), or NULL. */
FILE *trace_file(const struct trace *t);
void trace_line(struct trace *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* conn_handler.trace: data is the struct trace. */
void trace_io(void *data, const struct conn *c, bool out,
	      const struct wire_hdr *h, const void *payload);

#endif
