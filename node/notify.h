/*
 * node/notify.h: telling a service manager (systemd, through libsystemd's
 * sd_notify) how the daemon is: READY=1 once the sockets serve what the
 * log holds, STATUS= lines as its state changes, STOPPING=1 at a planned
 * stop, and WATCHDOG=1 pings from the event loop when the manager asks for
 * them (WatchdogSec=, i.e. $WATCHDOG_USEC), so that a wedged loop is
 * caught.
 *
 * All of it is a no-op without $NOTIFY_SOCKET. The environment is left as
 * it is (sd_notify's unset_environment is 0): a daemon that forked sends
 * from the process that keeps running, with MAINPID= naming it.
 */
#ifndef XSR_NODE_NOTIFY_H
#define XSR_NODE_NOTIFY_H

#include <stdint.h>

struct daemon;

/*
 * Create the module (d->notify) on d->loop, and start the watchdog's
 * timer (half the interval the manager gave) if it asked for pings.
 * 0 or -ENOMEM.
 */
int notify_open(struct daemon *d);
/* The daemon serves: READY=1 with the first STATUS= line. */
void notify_ready(struct daemon *d);
/*
 * The daemon's tick: a STATUS= line when the state (serving, leader,
 * quorum) changed, else at most once a second when its figures did.
 */
void notify_tick(struct daemon *d, uint64_t now_ms);
/* A planned stop began: STOPPING=1. */
void notify_stopping(struct daemon *d, const char *why);
/* After the loop is closed (the watchdog's timer with every handle). */
void notify_free(struct daemon *d);

#endif
