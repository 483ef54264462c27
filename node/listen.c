/*
 * node/listen.c: accepting clients on the Unix sockets (node/listen.h),
 * a bounded number per wake-up so that a burst cannot stall the loop.
 */
#include "node/listen.h"
#include "node/daemon.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct listener {
	int fd[2]; /* socket, socket_ro; -1 when not listening */
	uv_poll_t poll[2];
	bool listening;
	struct conn_handler client;
};

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
	for (int i = 0; i < 64; i++) {
		fd = accept4(l->fd[ro], NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				log_msg(4, "accept on %s: %s",
					d->cfg.socket_path[ro], strerror(errno));
			return;
		}
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

	if (!l)
		return -ENOMEM;
	l->fd[0] = l->fd[1] = -1;
	l->client = *h;
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
	free(d->listener);
	d->listener = NULL;
}
