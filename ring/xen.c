/*
 * ring/xen.c: the "xen" backend, for a daemon in dom0 of a real Xen host:
 * what Xen 4.17's xenstored uses, through the same libraries.
 *
 *  - event channels: libxenevtchn (bind_interdomain, bind_virq
 *    VIRQ_DOM_EXC, notify, pending, unmask);
 *  - a guest's page: the grant GNTTAB_RESERVED_XENSTORE through
 *    libxengnttab, as cxenstored >= 4.13; if that fails (an old toolstack
 *    that set up no grant), the gfn of INTRODUCE through
 *    libxenforeignmemory, as oxenstored;
 *  - domain states: libxenctrl's xc_domain_getinfo (dying, shutdown,
 *    crashed);
 *  - dom0's own ring: /proc/xen/xsd_kva (mmap) and /proc/xen/xsd_port.
 */
#include "ring/ring_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h> /* first: it sets up the public headers */
#include <xen/grant_table.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>

#define XSD_KVA "/proc/xen/xsd_kva"
#define XSD_PORT "/proc/xen/xsd_port"
#define FIRST_RESERVED 0x7FF0u

/* How a page was mapped, to unmap it the same way. */
struct mapping {
	struct mapping *next;
	void *page;
	enum { BY_GRANT, BY_FOREIGN, BY_KVA } how;
};

struct xen {
	struct ring_backend b;
	bool foreign_first; /* map by gfn first (XSR_XEN_MAP=foreign) */
	xenevtchn_handle *xce;
	xengnttab_handle *xgt;
	xenforeignmemory_handle *xfm;
	xc_interface *xch;
	struct mapping *maps;
};

static void xen_close(struct ring_backend *b)
{
	struct xen *x = (struct xen *)b;
	struct mapping *m;

	while ((m = x->maps)) {
		x->maps = m->next;
		free(m);
	}
	if (x->xce)
		xenevtchn_close(x->xce);
	if (x->xgt)
		xengnttab_close(x->xgt);
	if (x->xfm)
		xenforeignmemory_close(x->xfm);
	if (x->xch)
		xc_interface_close(x->xch);
	free(x);
}

static int xen_fd(const struct ring_backend *b)
{
	return xenevtchn_fd(((const struct xen *)b)->xce);
}

static int xen_pending(struct ring_backend *b, uint32_t *port)
{
	xenevtchn_port_or_error_t p =
		xenevtchn_pending(((struct xen *)b)->xce);

	if (p < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || !errno
			       ? -EAGAIN
			       : -errno;
	*port = (uint32_t)p;
	return 0;
}

static void xen_unmask(struct ring_backend *b, uint32_t port)
{
	xenevtchn_unmask(((struct xen *)b)->xce, port);
}

static int xen_bind_virq(struct ring_backend *b, uint32_t *port)
{
	xenevtchn_port_or_error_t p =
		xenevtchn_bind_virq(((struct xen *)b)->xce, VIRQ_DOM_EXC);

	if (p < 0)
		return -errno;
	*port = (uint32_t)p;
	return 0;
}

static int xen_bind(struct ring_backend *b, uint32_t domid, uint32_t remote,
		    uint32_t *local)
{
	xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(
		((struct xen *)b)->xce, domid, remote);

	if (p < 0)
		return -errno;
	*local = (uint32_t)p;
	return 0;
}

static void xen_unbind(struct ring_backend *b, uint32_t local)
{
	xenevtchn_unbind(((struct xen *)b)->xce, local);
}

static void xen_notify(struct ring_backend *b, uint32_t local)
{
	xenevtchn_notify(((struct xen *)b)->xce, local);
}

static int remember(struct xen *x, void *page, int how)
{
	struct mapping *m = malloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->page = page;
	m->how = how;
	m->next = x->maps;
	x->maps = m;
	return 0;
}

static void unmap_page(struct xen *x, void *page, int how)
{
	switch (how) {
	case BY_GRANT:
		xengnttab_unmap(x->xgt, page, 1);
		break;
	case BY_FOREIGN:
		xenforeignmemory_unmap(x->xfm, page, 1);
		break;
	default:
		munmap(page, XSR_RING_PAGE_SIZE);
	}
}

static int xen_map(struct ring_backend *b, uint32_t domid, uint64_t gfn,
		   void **page)
{
	struct xen *x = (struct xen *)b;
	xen_pfn_t pfn = (xen_pfn_t)gfn;
	int how = BY_GRANT, err = 0, rc;
	void *p = NULL;

	if (!x->foreign_first)
		p = xengnttab_map_grant_ref(x->xgt, domid,
					    GNTTAB_RESERVED_XENSTORE,
					    PROT_READ | PROT_WRITE);
	if (!p) {
		rc = -errno;
		if (!x->xfm || !gfn)
			return rc;
		how = BY_FOREIGN;
		p = xenforeignmemory_map(x->xfm, domid, PROT_READ | PROT_WRITE,
					 1, &pfn, &err);
		if (!p)
			return -errno;
		if (err) {
			xenforeignmemory_unmap(x->xfm, p, 1);
			return err < 0 ? err : -err;
		}
	}
	rc = remember(x, p, how);
	if (rc) {
		unmap_page(x, p, how);
		return rc;
	}
	*page = p;
	return 0;
}

static void xen_unmap(struct ring_backend *b, uint32_t domid, void *page)
{
	struct xen *x = (struct xen *)b;
	struct mapping **pp, *m;

	for (pp = &x->maps; (m = *pp); pp = &m->next) {
		if (m->page == page) {
			*pp = m->next;
			unmap_page(x, page, m->how);
			free(m);
			return;
		}
	}
}

static int xen_dom0(struct ring_backend *b, void **page, uint32_t *remote)
{
	struct xen *x = (struct xen *)b;
	char buf[32];
	unsigned long port;
	char *end;
	ssize_t n;
	void *p;
	int fd, rc;

	fd = open(XSD_PORT, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	port = strtoul(buf, &end, 0);
	if (end == buf || port == 0 || port > UINT32_MAX)
		return -EIO;
	fd = open(XSD_KVA, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	p = mmap(NULL, XSR_RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	rc = -errno;
	close(fd);
	if (p == MAP_FAILED)
		return rc;
	rc = remember(x, p, BY_KVA);
	if (rc) {
		munmap(p, XSR_RING_PAGE_SIZE);
		return rc;
	}
	*page = p;
	*remote = (uint32_t)port;
	return 0;
}

static int xen_dominfo(struct ring_backend *b, uint32_t domid,
		       struct ring_dominfo *info)
{
	struct xen *x = (struct xen *)b;
	xc_dominfo_t di;

	memset(info, 0, sizeof(*info));
	if (domid >= FIRST_RESERVED)
		return 0;
	if (xc_domain_getinfo(x->xch, domid, 1, &di) != 1 ||
	    di.domid != domid)
		return 0;
	info->exists = true;
	info->dying = di.dying;
	info->shutdown = di.shutdown || di.crashed;
	return 0;
}

static const struct ring_backend_ops xen_ops = {
	.name = "xen",
	.close = xen_close,
	.fd = xen_fd,
	.pending = xen_pending,
	.unmask = xen_unmask,
	.bind_virq = xen_bind_virq,
	.bind = xen_bind,
	.unbind = xen_unbind,
	.notify = xen_notify,
	.map = xen_map,
	.unmap = xen_unmap,
	.dom0 = xen_dom0,
	.dominfo = xen_dominfo,
};

int ring_xen_open(struct ring_backend **out, char *err, size_t errlen)
{
	struct xen *x = calloc(1, sizeof(*x));
	int rc;

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->b.ops = &xen_ops;
	x->xch = xc_interface_open(NULL, NULL, 0);
	if (!x->xch) {
		rc = -errno;
		snprintf(err, errlen,
			 "cannot open the hypervisor interface (is this dom0 "
			 "of a Xen host, with xenfs on /proc/xen?): %s",
			 strerror(errno));
		goto fail;
	}
	x->xce = xenevtchn_open(NULL, 0);
	if (!x->xce) {
		rc = -errno;
		snprintf(err, errlen, "cannot open /dev/xen/evtchn: %s",
			 strerror(errno));
		goto fail;
	}
	x->xgt = xengnttab_open(NULL, 0);
	if (!x->xgt) {
		rc = -errno;
		snprintf(err, errlen, "cannot open /dev/xen/gntdev: %s",
			 strerror(errno));
		goto fail;
	}
	/* one grant per domain at most (cxenstored's domain_init) */
	xengnttab_set_max_grants(x->xgt, FIRST_RESERVED);
	/* only a fallback: missing privcmd support is not fatal */
	x->xfm = xenforeignmemory_open(NULL, 0);
	x->foreign_first = getenv("XSR_XEN_MAP") &&
			   strcmp(getenv("XSR_XEN_MAP"), "foreign") == 0 &&
			   x->xfm;
	*out = &x->b;
	return 0;
fail:
	if (rc == 0)
		rc = -EIO;
	xen_close(&x->b);
	return rc;
}
