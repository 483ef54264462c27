/*
 * node/notify.c: the service manager's view of the daemon (node/notify.h),
 * through libsystemd's sd_notify(). Talks to the daemon object only; the
 * messages are datagrams to $NOTIFY_SOCKET, which never block the loop.
 */
#include "node/notify.h"
#include "node/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define NOTIFY_STATUS_MS 1000 /* figures change: at most this often */

/* What makes a STATUS= line go out at once when it changes. */
struct notify_state {
	bool serving, stopping, standalone, overlay;
	uint64_t leader;
};

struct notify {
	bool enabled;	     /* $NOTIFY_SOCKET is set */
	uv_timer_t watchdog; /* pings, if the manager wants them */
	bool watchdog_on;
	uint64_t watchdog_ms; /* the ping interval: half the manager's */
	struct notify_state last;
	uint64_t last_ms; /* when the last STATUS= went */
	char status[256]; /* ... and what it said */
};

static void notify_send(struct daemon *d, const char *msg)
{
	int rc = sd_notify(0, msg);

	if (rc < 0)
		log_msg(7, "sd_notify(%s): %s", msg, strerror(-rc));
}

static void on_watchdog(uv_timer_t *t)
{
	notify_send(t->data, "WATCHDOG=1");
}

int notify_open(struct daemon *d)
{
	struct notify *n = calloc(1, sizeof(*n));
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;

	if (!n)
		return -ENOMEM;
	d->notify = n;
	n->enabled = sock && *sock;
	uv_timer_init(d->loop, &n->watchdog);
	n->watchdog.data = d;
	/* > 0 only if $WATCHDOG_PID, when set, is this process */
	if (n->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		n->watchdog_on = true;
		uv_timer_start(&n->watchdog, on_watchdog, 0, n->watchdog_ms);
		log_msg(6, "watchdog: a ping every %" PRIu64 " ms (the service "
			   "manager's interval is %" PRIu64 " ms)",
			n->watchdog_ms, usec / 1000);
	}
	return 0;
}

static struct notify_state state_now(struct daemon *d)
{
	struct notify_state s = {
		.serving = d->serving,
		.stopping = d->stopping,
		.standalone = d->no_quorum_since != 0,
		.overlay = d->committed != NULL,
		.leader = d->repl ? repl_leader(d->repl) : 0,
	};

	return s;
}

static bool state_same(const struct notify_state *a,
		       const struct notify_state *b)
{
	return a->serving == b->serving && a->stopping == b->stopping &&
	       a->standalone == b->standalone && a->overlay == b->overlay &&
	       a->leader == b->leader;
}

/* "host2", or "member 7" if the table has no row for it yet. */
static void leader_name(struct daemon *d, uint64_t id, char *buf, size_t len)
{
	const struct store_member *m =
		store_member_by_id(daemon_replica(d), id);

	if (m && m->name)
		snprintf(buf, len, "%s%s", m->name,
			 id == d->member_id ? " (this member)" : "");
	else
		snprintf(buf, len, "member %" PRIu64 "%s", id,
			 id == d->member_id ? " (this member)" : "");
}

/* The STATUS= text for the state s. */
static void status_text(struct daemon *d, const struct notify_state *s,
			char *buf, size_t len)
{
	uint64_t applied = d->repl ? repl_last_applied(d->repl) : 0;
	char leader[128] = "no leader known";
	char since[64];
	struct tm tm;
	time_t t;

	if (s->leader) {
		char name[96];

		leader_name(d, s->leader, name, sizeof(name));
		snprintf(leader, sizeof(leader), "leader %s", name);
	}
	if (!s->serving) {
		snprintf(buf, len,
			 "catching up with the log before serving: applied "
			 "%" PRIu64 " of %" PRIu64 " in the log, %s",
			 applied, d->repl ? repl_last_index(d->repl) : 0,
			 leader);
	} else if (s->standalone) {
		t = (time_t)d->no_quorum_since;
		gmtime_r(&t, &tm);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		snprintf(buf, len,
			 "no quorum since %s: serving own tree locally, "
			 "applied %" PRIu64, since, applied);
	} else if (!d->cfg.cluster.enabled) {
		snprintf(buf, len, "serving, applied %" PRIu64, applied);
	} else if (s->overlay) {
		snprintf(buf, len,
			 "serving, %s, applied %" PRIu64 ": proposing the "
			 "writes made without a quorum", leader, applied);
	} else {
		snprintf(buf, len, "serving, %s, applied %" PRIu64, leader,
			 applied);
	}
}

static void status_send(struct daemon *d, const struct notify_state *s,
			uint64_t now_ms, const char *prefix)
{
	struct notify *n = d->notify;
	char text[256], msg[320];

	status_text(d, s, text, sizeof(text));
	n->last = *s;
	n->last_ms = now_ms;
	if (!prefix && !strcmp(text, n->status))
		return;
	snprintf(n->status, sizeof(n->status), "%s", text);
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix ? prefix : "", text);
	notify_send(d, msg);
}

void notify_ready(struct daemon *d)
{
	struct notify *n = d->notify;
	struct notify_state s;
	char prefix[64];

	if (!n || !n->enabled)
		return;
	s = state_now(d);
	/* forked: systemd learns which process is the daemon */
	snprintf(prefix, sizeof(prefix), "READY=1\nMAINPID=%ld\n",
		 (long)getpid());
	status_send(d, &s, uv_now(d->loop), prefix);
}

void notify_tick(struct daemon *d, uint64_t now_ms)
{
	struct notify *n = d->notify;
	struct notify_state s;

	/* a stop said so already (notify_stopping) */
	if (!n || !n->enabled || d->stopping)
		return;
	s = state_now(d);
	if (n->last_ms && state_same(&s, &n->last) &&
	    now_ms - n->last_ms < NOTIFY_STATUS_MS)
		return;
	status_send(d, &s, now_ms, NULL);
}

void notify_stopping(struct daemon *d, const char *why)
{
	struct notify *n = d->notify;
	char msg[128];

	if (!n || !n->enabled)
		return;
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=stopping: %s", why);
	snprintf(n->status, sizeof(n->status), "stopping: %s", why);
	n->last = state_now(d);
	n->last_ms = uv_now(d->loop);
	notify_send(d, msg);
}

void notify_free(struct daemon *d)
{
	free(d->notify);
	d->notify = NULL;
}
