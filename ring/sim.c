/*
 * ring/sim.c: the "sim:DIR" backend: a hypervisor made of files, the model
 * of ../shared/reference/xsshim.c, so that one guest-playing test drives
 * this daemon and Xen's own daemons (under the shim) alike.
 *
 * In DIR:
 *   evtchn    FIFO we read: a 4-byte native-endian local port per event
 *             (port 1 is VIRQ_DOM_EXC).
 *   notify    FIFO, optional: each notify writes the 4-byte local port to
 *             it if some process has it open for reading (else dropped).
 *   ring-<D>  the 4096-byte store page of domain D, mapped MAP_SHARED.
 *             ring-0 is dom0's kernel ring; unlike the shim we never
 *             truncate it, so a restarted daemon finds it as it was.
 *   xsd_port  dom0's remote port ("7").
 *   ports     appended "bind_interdomain domid=D remote=R local=L" lines:
 *             a guest's current local port is the last line for it.
 *   domains   optional: the domids that exist ("0,1,5-9"); all below
 *             DOMID_FIRST_RESERVED if absent. (The shim reads
 *             XSSHIM_DOMAINS instead.)
 *   dying     optional: domids being destroyed.
 *   shutdown  optional: domids shut down but not yet destroyed (ours only).
 * The three lists are read again at every question.
 */
#include "ring/ring_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_RESERVED 0x7FF0u
#define FIRST_PORT 2u

struct sim {
	struct ring_backend b;
	char *dir;
	int evfd;
	int notify_fd;
	uint32_t next_port;
};

static int path_of(const struct sim *s, const char *name, char *buf,
		   size_t len)
{
	int n = snprintf(buf, len, "%s/%s", s->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void sim_close(struct ring_backend *b)
{
	struct sim *s = (struct sim *)b;

	if (s->evfd >= 0)
		close(s->evfd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	free(s->dir);
	free(s);
}

static int sim_fd(const struct ring_backend *b)
{
	return ((const struct sim *)b)->evfd;
}

static int sim_pending(struct ring_backend *b, uint32_t *port)
{
	struct sim *s = (struct sim *)b;
	ssize_t n = read(s->evfd, port, sizeof(*port));

	if (n == (ssize_t)sizeof(*port))
		return 0;
	return n < 0 && errno != EAGAIN ? -errno : -EAGAIN;
}

static void sim_unmask(struct ring_backend *b, uint32_t port)
{
}

static int sim_bind_virq(struct ring_backend *b, uint32_t *port)
{
	*port = XSR_RING_SIM_VIRQ_PORT;
	return 0;
}

static int sim_bind(struct ring_backend *b, uint32_t domid, uint32_t remote,
		    uint32_t *local)
{
	struct sim *s = (struct sim *)b;
	char p[4096], line[128];
	int fd, n, rc;

	rc = path_of(s, "ports", p, sizeof(p));
	if (rc)
		return rc;
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	*local = s->next_port++;
	n = snprintf(line, sizeof(line),
		     "bind_interdomain domid=%u remote=%u local=%u\n", domid,
		     remote, *local);
	rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
	close(fd);
	return rc;
}

static void sim_unbind(struct ring_backend *b, uint32_t local)
{
}

static void sim_notify(struct ring_backend *b, uint32_t local)
{
	struct sim *s = (struct sim *)b;
	struct stat st;
	char p[4096];

	if (s->notify_fd < 0) {
		if (path_of(s, "notify", p, sizeof(p)) || stat(p, &st) < 0 ||
		    !S_ISFIFO(st.st_mode))
			return;
		/* ENXIO: nobody reads; the event is lost, as the shim's */
		s->notify_fd =
			open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (s->notify_fd < 0)
			return;
	}
	if (write(s->notify_fd, &local, sizeof(local)) < 0 &&
	    errno == EPIPE) {
		close(s->notify_fd);
		s->notify_fd = -1;
	}
}

static int map_file(const char *path, bool create, void **page)
{
	struct stat st;
	void *p;
	int fd, rc;

	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 ||
	    (st.st_size < (off_t)XSR_RING_PAGE_SIZE &&
	     ftruncate(fd, XSR_RING_PAGE_SIZE) < 0)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	p = mmap(NULL, XSR_RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	rc = -errno;
	close(fd);
	if (p == MAP_FAILED)
		return rc;
	*page = p;
	return 0;
}

static int sim_map(struct ring_backend *b, uint32_t domid, uint64_t gfn,
		   void **page)
{
	struct sim *s = (struct sim *)b;
	char p[4096], name[32];
	int rc;

	snprintf(name, sizeof(name), "ring-%u", domid);
	rc = path_of(s, name, p, sizeof(p));
	return rc ? rc : map_file(p, true, page);
}

static void sim_unmap(struct ring_backend *b, uint32_t domid, void *page)
{
	munmap(page, XSR_RING_PAGE_SIZE);
}

static int sim_dom0(struct ring_backend *b, void **page, uint32_t *remote)
{
	struct sim *s = (struct sim *)b;
	char p[4096], v[16];
	int fd, n, rc;

	rc = path_of(s, "xsd_port", p, sizeof(p));
	if (rc)
		return rc;
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(v, sizeof(v), "%u", XSR_RING_SIM_DOM0_PORT);
	rc = write(fd, v, (size_t)n) == n ? 0 : -EIO;
	close(fd);
	if (rc)
		return rc;
	*remote = XSR_RING_SIM_DOM0_PORT;
	return sim_map(b, 0, 0, page);
}

/* Is domid in the list file name? -ENOENT if there is no such file. */
static int in_list(const struct sim *s, const char *name, uint32_t domid)
{
	char p[4096], buf[8192];
	const char *q = buf;
	ssize_t n;
	int fd;

	if (path_of(s, name, p, sizeof(p)))
		return 0;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	while (*q) {
		char *end;
		unsigned long a = strtoul(q, &end, 0), z = a;

		if (end == q) {
			q++;
			continue;
		}
		if (*end == '-')
			z = strtoul(end + 1, &end, 0);
		if (domid >= a && domid <= z)
			return 1;
		q = end;
	}
	return 0;
}

static int sim_dominfo(struct ring_backend *b, uint32_t domid,
		       struct ring_dominfo *info)
{
	struct sim *s = (struct sim *)b;
	int e = in_list(s, "domains", domid);

	memset(info, 0, sizeof(*info));
	info->exists = domid < FIRST_RESERVED && (e == -ENOENT || e == 1);
	if (!info->exists)
		return 0;
	info->dying = in_list(s, "dying", domid) == 1;
	info->shutdown = info->dying || in_list(s, "shutdown", domid) == 1;
	return 0;
}

static const struct ring_backend_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.fd = sim_fd,
	.pending = sim_pending,
	.unmask = sim_unmask,
	.bind_virq = sim_bind_virq,
	.bind = sim_bind,
	.unbind = sim_unbind,
	.notify = sim_notify,
	.map = sim_map,
	.unmap = sim_unmap,
	.dom0 = sim_dom0,
	.dominfo = sim_dominfo,
};

int ring_sim_open(const char *dir, struct ring_backend **out, char *err,
		  size_t errlen)
{
	struct sim *s;
	struct stat st;
	char p[4096];
	uint32_t junk[64];
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->b.ops = &sim_ops;
	s->evfd = s->notify_fd = -1;
	s->next_port = FIRST_PORT;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir,
			 strerror(-rc));
		goto fail;
	}
	rc = path_of(s, "evtchn", p, sizeof(p));
	if (rc) {
		snprintf(err, errlen, "sim directory path too long");
		goto fail;
	}
	if (stat(p, &st) == 0 && !S_ISFIFO(st.st_mode))
		unlink(p);
	if (mkfifo(p, 0600) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create FIFO %s: %s", p,
			 strerror(-rc));
		goto fail;
	}
	s->evfd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->evfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", p, strerror(-rc));
		goto fail;
	}
	/* Events for a daemon that is gone: every ring is looked at anyway */
	while (read(s->evfd, junk, sizeof(junk)) > 0)
		;
	*out = &s->b;
	return 0;
fail:
	sim_close(&s->b);
	return rc;
}
