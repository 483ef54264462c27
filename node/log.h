/*
 * node/log.h: the daemon's log (node/log.c): stderr in the foreground,
 * syslog when daemonized, and --log-file. Levels are syslog's: 3 error,
 * 4 warning, 5 notice, 6 info, 7 debug (shown with -V only).
 *
 * Under systemd with stderr connected to the journal ($JOURNAL_STREAM
 * names stderr's device and inode), stderr lines start with the level as
 * "<N>" (sd-daemon.h's SD_ERR ...) so the journal keeps it.
 *
 * The destination is process state by nature (like syslog itself): one
 * daemon per process, opened once by main.
 */
#ifndef XSR_NODE_LOG_H
#define XSR_NODE_LOG_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* Where lines go from now on (before: stderr). */
void log_open(bool foreground, bool verbose, const char *log_file);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * A daemonized start-up: the parent waits on fd for one NUL byte (we
 * serve: log_parent_ready()) or an error message (log_fatal()).
 */
void log_set_parent(int fd);
void log_parent_ready(void);
/*
 * Log msg as an error, hand it to a waiting parent, and exit(1) at once:
 * no orderly close (after a failed fsync or a failed apply it would
 * write state that must not be written).
 */
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/*
 * Open path for appending, created 0600 (an existing file loses any
 * access by others and group write): the log, the trace file and memory
 * reports hold every request's payload. NULL with errno on failure.
 */
FILE *log_append_file(const char *path);
/*
 * The last error line (level <= 3) written, and its time in *when (Unix
 * seconds); "" and 0 if none yet. Borrowed until the next log line.
 */
const char *log_last_error(time_t *when);
/*
 * A crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: glibc's "double free"
 * aborts) writes "fatal signal N" and the stack (backtrace_symbols_fd:
 * object and offset, for addr2line) to the log file and stderr, then dies
 * of the signal as before (a core where core dumps are on). Not in
 * sanitizer builds, whose own reports say more. Called once by main after
 * log_open().
 */
void log_crash_handler_install(void);
/* stderr is the stream $JOURNAL_STREAM names (checked at log_open). */
bool log_stderr_is_journal(void);
/* A log hook of the lower layers (conn, repl, peer): data is unused. */
void log_cb(void *data, int level, const char *msg);

#endif
