/*
 * node/log.h: one line to the daemon's log, for modules that need nothing
 * else of the daemon (node/log.c writes it: stderr, syslog, --log-file).
 * Levels are syslog's: 3 error, 4 warning, 5 notice, 6 info, 7 debug.
 */
#ifndef XSR_NODE_LOG_H
#define XSR_NODE_LOG_H

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
