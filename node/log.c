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
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
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

/* ---- Crashes -------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XSR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define XSR_SANITIZED 1
#endif
#endif

#ifndef XSR_SANITIZED
static int crash_fd = -1;

static void crash_write(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Async-signal-safe: write(2), backtrace() (preloaded at install) and
 * backtrace_symbols_fd(), which do not allocate. */
static void on_crash(int sig)
{
	void *frames[64];
	char head[96];
	int n = backtrace(frames, 64), fds[2] = {crash_fd, STDERR_FILENO};
	size_t i;
	char num[16];
	int k = sig, j = 0;

	do { /* no snprintf in a signal handler */
		num[j++] = (char)('0' + k % 10);
		k /= 10;
	} while (k && j < 15);
	for (i = 0; i < (size_t)j; i++)
		head[i] = num[j - 1 - i];
	head[j] = '\0';
	for (i = 0; i < 2; i++) {
		if (fds[i] < 0 || (i == 1 && fds[1] == fds[0]))
			continue;
		crash_write(fds[i], "xenstored: fatal signal ");
		crash_write(fds[i], head);
		crash_write(fds[i], ": stack (object(+offset), addr2line -e "
				    "OBJECT OFFSET):\n");
		backtrace_symbols_fd(frames, n, fds[i]);
	}
	/* SA_RESETHAND: the default action now, a core where enabled */
	raise(sig);
}

#endif /* XSR_SANITIZED */

void log_crash_handler_install(void)
{
#ifndef XSR_SANITIZED
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa;
	void *warm[1];
	size_t i;

	/* backtrace() loads libgcc_s on its first call: not in the handler */
	(void)backtrace(warm, 1);
	crash_fd = logger.file ? fileno(logger.file) : -1;
	(void)sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
#endif
}
