/*
 * node/log.c: the daemon log (stderr in the foreground, syslog when
 * daemonized, and --log-file).
 *
 * The log destination is process state by nature (like syslog itself):
 * one daemon per process.
 */
#include "node/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	bool to_stderr, to_syslog, verbose;
	/* stderr is the journal's stream ($JOURNAL_STREAM): lines carry
	 * their priority as "<N>" (sd-daemon.h), no stamp of our own */
	int journal; /* -1: not checked yet, 0: no, 1: yes */
	FILE *file;
	int parent_fd; /* a parent waiting for our start-up, or -1 */
	char last_error[256]; /* for `xsadm cluster status` */
	time_t last_error_time;
} logger = {.to_stderr = true, .journal = -1, .parent_fd = -1};

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

bool log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	return fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

FILE *log_append_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	FILE *f;

	if (fd < 0)
		return NULL;
	/* a file an older daemon left open to others (umask 0) is not */
	if (fstat(fd, &st) == 0 && (st.st_mode & 0037))
		(void)fchmod(fd, st.st_mode & 0640);
	f = fdopen(fd, "a");
	if (!f) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return f;
}

void log_open(bool foreground, bool verbose, const char *log_file)
{
	logger.verbose = verbose;
	logger.to_stderr = foreground;
	logger.to_syslog = !foreground;
	logger.journal = log_stderr_is_journal();
	if (logger.to_syslog)
		openlog("xenstored", LOG_PID, LOG_DAEMON);
	if (log_file) {
		logger.file = log_append_file(log_file);
		if (!logger.file)
			fprintf(stderr, "xenstored: cannot open log file %s: %s\n",
				log_file, strerror(errno));
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
	if (level <= 3) {
		snprintf(logger.last_error, sizeof(logger.last_error), "%s",
			 msg);
		logger.last_error_time = now;
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (logger.journal < 0)
		logger.journal = log_stderr_is_journal();
	if (logger.to_stderr && logger.journal)
		fprintf(stderr, "<%d>%s: %s\n", level < 0 ? 3 : level > 7 ? 7 : level,
			level_name(level), msg);
	else if (logger.to_stderr)
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

const char *log_last_error(time_t *when)
{
	*when = logger.last_error_time;
	return logger.last_error;
}

void log_cb(void *data, int level, const char *msg)
{
	(void)data;
	log_write(level, msg);
}

void log_set_parent(int fd)
{
	logger.parent_fd = fd;
}

void log_parent_ready(void)
{
	char ok = '\0';
	ssize_t rc;

	if (logger.parent_fd < 0)
		return;
	rc = write(logger.parent_fd, &ok, 1);
	(void)rc;
	close(logger.parent_fd);
	logger.parent_fd = -1;
}

void log_fatal(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_write(3, msg);
	if (logger.parent_fd >= 0) {
		/* The parent prints it: we may have no terminal any more. */
		ssize_t rc = write(logger.parent_fd, msg, strlen(msg));

		(void)rc;
		close(logger.parent_fd);
	}
	_exit(1);
}
