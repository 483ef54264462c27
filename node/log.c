/*
 * node/log.c: the daemon log (stderr in the foreground, syslog when
 * daemonized, and --log-file) and cxenstored's trace file (-T).
 *
 * The log destination is process state by nature (like syslog itself):
 * one daemon per process.
 */
#include "node/daemon.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	bool to_stderr, to_syslog, verbose;
	FILE *file;
} logger = {.to_stderr = true};

static const char *level_name(int level)
{
	switch (level) {
	case 0:
	case 1:
	case 2:
	case 3:
		return "error";
	case 4:
		return "warning";
	case 5:
		return "notice";
	case 6:
		return "info";
	default:
		return "debug";
	}
}

void log_open(struct daemon *d)
{
	logger.verbose = d->cfg.verbose;
	logger.to_stderr = d->cfg.foreground;
	logger.to_syslog = !d->cfg.foreground;
	if (logger.to_syslog)
		openlog("xenstored", LOG_PID, LOG_DAEMON);
	if (d->cfg.log_file) {
		logger.file = fopen(d->cfg.log_file, "ae");
		if (!logger.file)
			fprintf(stderr, "xenstored: cannot open log file %s: %s\n",
				d->cfg.log_file, strerror(errno));
		else
			setvbuf(logger.file, NULL, _IOLBF, 0);
	}
}

static void log_write(int level, const char *msg)
{
	char stamp[32];
	time_t now;
	struct tm tm;

	if (level >= 7 && !logger.verbose)
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (logger.to_stderr)
		fprintf(stderr, "%s xenstored[%d]: %s: %s\n", stamp,
			(int)getpid(), level_name(level), msg);
	if (logger.file)
		fprintf(logger.file, "%s xenstored[%d]: %s: %s\n", stamp,
			(int)getpid(), level_name(level), msg);
	if (logger.to_syslog)
		syslog(level < 0 ? 3 : level > 7 ? 7 : level, "%s", msg);
}

void log_msg(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_write(level, msg);
}

void log_cb(void *data, int level, const char *msg)
{
	(void)data;
	log_write(level, msg);
}

/* ---- Trace file, as cxenstored's -T ---------------------------------- */

void trace_open(struct daemon *d)
{
	trace_close(d);
	if (!d->trace_path)
		return;
	d->trace = fopen(d->trace_path, "ae");
	if (!d->trace) {
		log_msg(4, "cannot open trace file %s: %s", d->trace_path,
			strerror(errno));
		return;
	}
	fputs("\n***\n", d->trace);
	fflush(d->trace);
}

void trace_close(struct daemon *d)
{
	if (d->trace)
		fclose(d->trace);
	d->trace = NULL;
}

void trace_line(struct daemon *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->trace)
		return;
	va_start(ap, fmt);
	vfprintf(d->trace, fmt, ap);
	va_end(ap);
	fflush(d->trace);
}

void trace_io(void *data, const struct conn *c, bool out,
	      const struct wire_hdr *h, const void *payload)
{
	struct daemon *d = data;
	const char *name = wire_type_name(h->type);
	const unsigned char *p = payload;
	char stamp[32];
	time_t now;
	struct tm tm;
	uint32_t i;

	if (!d->trace)
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d %H:%M:%S", &tm);
	fprintf(d->trace, "%s %p %s %s (", out ? "OUT" : "IN", (const void *)c,
		stamp, name ? name : "**UNKNOWN**");
	for (i = 0; i < h->len; i++)
		fputc(p[i] ? p[i] : ' ', d->trace);
	fputs(")\n", d->trace);
	fflush(d->trace);
}
