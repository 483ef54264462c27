/*
 * node/listen.c: accepting clients on the Unix sockets (node/listen.h),
 * a bounded number per wake-up so that a burst cannot stall the loop.
 *
 * Descriptors are the one resource a local client can exhaust by merely
 * connecting. The daemon needs some for itself while it serves (log
 * segments, snapshots, peers, journals), so connections are capped below
 * the process's limit (--max-connections, and LISTEN_FD_RESERVE under
 * RLIMIT_NOFILE): one more is accepted and closed at once. If accept()
 * still fails for lack of descriptors, a spare one is given up to take the
 * waiting client off the queue and close it, accepting pauses for
 * LISTEN_PAUSE_MS, and the refusals are logged once per LISTEN_LOG_MS,
 * not once each: the log must not become the next resource to run out.
 */
#include "node/listen.h"
#include "node/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_FD_RESERVE 32  /* descriptors kept for the daemon itself */
#define LISTEN_PAUSE_MS 100   /* accept nothing this long after EMFILE */
#define LISTEN_LOG_MS 10000   /* one line at most this often */

struct listener {
	int fd[2]; /* socket, socket_ro; -1 when not listening */
	uv_poll_t poll[2];
	bool listening;
	struct conn_handler client;
	size_t cap;	   /* connections at most */
	int spare_fd;	   /* given up to clear the queue on EMFILE */
	uv_timer_t pause;  /* accepting again after EMFILE */
	bool paused;
	uint64_t refused;  /* since the last line about it */
	uint64_t log_ms;   /* when that line was written */
	const char *why;   /* of the refusals */
};

/* A refused client: counted, and logged once per interval. */
static void refused(struct daemon *d, const char *why)
{
	struct listener *l = d->listener;
	uint64_t now = uv_now(d->loop);

	l->refused++;
	l->why = why;
	if (l->log_ms && now - l->log_ms < LISTEN_LOG_MS)
		return;
	log_msg(4, "%" PRIu64 " client connection%s refused: %s",
		l->refused, l->refused == 1 ? "" : "s", why);
	l->refused = 0;
	l->log_ms = now;
}

static void on_accept(uv_poll_t *h, int status, int events);

static void poll_both(struct daemon *d, bool on)
{
	struct listener *l = d->listener;
	int i;

	for (i = 0; i < 2; i++) {
		if (l->fd[i] < 0)
			continue;
		if (on)
			uv_poll_start(&l->poll[i], UV_READABLE, on_accept);
		else
			uv_poll_stop(&l->poll[i]);
	}
}

static void pause_over(uv_timer_t *t)
{
	struct daemon *d = t->data;

	d->listener->paused = false;
	if (d->listener->listening && !d->stopping)
		poll_both(d, true);
}

/*
 * accept() failed for lack of descriptors: take the waiting client off
 * the queue with the spare descriptor (it sees its connection closed
 * rather than hanging), and accept nothing for a while.
 */
static void out_of_descriptors(struct daemon *d, int lfd, int err)
{
	struct listener *l = d->listener;
	int fd;

	if (l->spare_fd >= 0) {
		close(l->spare_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	refused(d, err == ENFILE ? "the system is out of file descriptors"
				 : "this process is out of file descriptors");
	if (!l->paused) {
		l->paused = true;
		poll_both(d, false);
		uv_timer_start(&l->pause, pause_over, LISTEN_PAUSE_MS, 0);
	}
}

/* Who connected (for the log of what needs it: a forced adoption). */
static void peer_cred(int fd, struct conn_identity *id)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	id->pid = 0;
	id->uid = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	    len == sizeof(cr)) {
		id->pid = cr.pid;
		id->uid = cr.uid;
	}
}

static void on_accept(uv_poll_t *h, int status, int events)
{
	struct daemon *d = h->data;
	struct listener *l = d->listener;
	bool ro = h == &l->poll[1];
	struct conn_identity id = {.domid = 0,
				   .privileged = true,
				   .readonly = ro,
				   .target = STORE_NO_TARGET};
	struct conn *c;
	int fd, rc;

	if (status < 0 || d->stopping)
		return;
	/* A bounded number per wake-up, so one burst cannot stall the loop. */
	for (int i = 0; i < 64 && !l->paused; i++) {
		fd = accept4(l->fd[ro], NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				out_of_descriptors(d, l->fd[ro], errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
				 errno != EINTR && errno != ECONNABORTED)
				log_msg(4, "accept on %s: %s",
					d->cfg.socket_path[ro], strerror(errno));
			return;
		}
		if (conn_pool_count(d->pool) >= l->cap) {
			close(fd);
			refused(d, "too many connections (--max-connections, "
				   "or the descriptor limit)");
			continue;
		}
		peer_cred(fd, &id);
		rc = conn_socket_new(d->pool, fd, &id, &d->cfg.limits, &l->client,
				     &c);
		if (rc) {
			log_msg(4, "cannot serve a new connection: %s",
				strerror(-rc));
			close(fd);
		}
	}
}

/* The gid of --socket-ro-group (a name or a number); fatal if unknown. */
static gid_t ro_group(const char *name)
{
	struct group *g = getgrnam(name);
	char *end;
	unsigned long v;

	if (g)
		return g->gr_gid;
	v = strtoul(name, &end, 10);
	if (*name && !*end && v < (gid_t)-1)
		return (gid_t)v;
	log_fatal("--socket-ro-group: no group \"%s\"", name);
}

static void listen_on(struct daemon *d, int i, mode_t mode, gid_t gid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = d->cfg.socket_path[i];
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		log_fatal("socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		log_fatal("socket: %s", strerror(errno));
	unlink(path); /* a stale socket of an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		log_fatal("cannot bind %s: %s", path, strerror(errno));
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid))
		log_fatal("chown %s to group %u: %s", path, (unsigned)gid,
			  strerror(errno));
	if (chmod(path, mode))
		log_fatal("chmod %s: %s", path, strerror(errno));
	if (listen(fd, 128))
		log_fatal("listen on %s: %s", path, strerror(errno));
	d->listener->fd[i] = fd;
	uv_poll_init(d->loop, &d->listener->poll[i], fd);
	d->listener->poll[i].data = d;
	uv_poll_start(&d->listener->poll[i], UV_READABLE, on_accept);
}

int listen_open(struct daemon *d, const struct conn_handler *h)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct rlimit rl;

	if (!l)
		return -ENOMEM;
	l->fd[0] = l->fd[1] = -1;
	l->client = *h;
	l->cap = d->cfg.max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		size_t room = rl.rlim_cur > 2 * LISTEN_FD_RESERVE
				      ? (size_t)rl.rlim_cur - LISTEN_FD_RESERVE
				      : (size_t)rl.rlim_cur / 2;

		if (room < l->cap) {
			log_msg(5, "at most %zu client connections: the limit "
				   "of open files is %llu",
				room, (unsigned long long)rl.rlim_cur);
			l->cap = room;
		}
	}
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uv_timer_init(d->loop, &l->pause);
	l->pause.data = d;
	d->listener = l;
	return 0;
}

void listen_start(struct daemon *d)
{
	const char *group = d->cfg.socket_ro_group;

	/* as Xen's: root alone, unless a group may read (and only read) */
	listen_on(d, 0, 0600, (gid_t)-1);
	if (group)
		listen_on(d, 1, 0660, ro_group(group));
	else
		listen_on(d, 1, 0600, (gid_t)-1);
	d->listener->listening = true;
}

void listen_stop(struct daemon *d)
{
	struct listener *l = d->listener;
	int i;

	if (!l || !l->listening)
		return;
	uv_timer_stop(&l->pause);
	for (i = 0; i < 2; i++) {
		uv_poll_stop(&l->poll[i]);
		close(l->fd[i]);
		l->fd[i] = -1;
		unlink(d->cfg.socket_path[i]);
	}
	l->listening = false;
}

void listen_free(struct daemon *d)
{
	if (d->listener && d->listener->spare_fd >= 0)
		close(d->listener->spare_fd);
	free(d->listener);
	d->listener = NULL;
}
