/*
 * ring/backend.c: choosing a backend, and the calls that go through it.
 */
#include "ring/ring_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ring_backend_open(const char *spec, struct ring_backend **out, char *err,
		      size_t errlen)
{
	if (strcmp(spec, "xen") == 0)
		return ring_xen_open(out, err, errlen);
	if (strncmp(spec, "sim:", 4) == 0 && spec[4])
		return ring_sim_open(spec + 4, out, err, errlen);
	snprintf(err, errlen,
		 "unknown ring backend \"%s\" (expected \"xen\" or "
		 "\"sim:DIR\")",
		 spec);
	return -EINVAL;
}

void ring_backend_close(struct ring_backend *b)
{
	if (b)
		b->ops->close(b);
}

const char *ring_backend_name(const struct ring_backend *b)
{
	return b->ops->name;
}

int ring_backend_fd(const struct ring_backend *b)
{
	return b->ops->fd(b);
}

int ring_backend_pending(struct ring_backend *b, uint32_t *port)
{
	return b->ops->pending(b, port);
}

void ring_backend_unmask(struct ring_backend *b, uint32_t port)
{
	b->ops->unmask(b, port);
}

int ring_backend_bind_virq(struct ring_backend *b, uint32_t *port)
{
	return b->ops->bind_virq(b, port);
}

int ring_backend_bind(struct ring_backend *b, uint32_t domid,
		      uint32_t remote_port, uint32_t *local)
{
	return b->ops->bind(b, domid, remote_port, local);
}

void ring_backend_unbind(struct ring_backend *b, uint32_t local)
{
	b->ops->unbind(b, local);
}

void ring_backend_notify(struct ring_backend *b, uint32_t local)
{
	b->ops->notify(b, local);
}

int ring_backend_map(struct ring_backend *b, uint32_t domid, uint64_t gfn,
		     void **page)
{
	return b->ops->map(b, domid, gfn, page);
}

void ring_backend_unmap(struct ring_backend *b, uint32_t domid, void *page)
{
	b->ops->unmap(b, domid, page);
}

int ring_backend_dom0(struct ring_backend *b, void **page,
		      uint32_t *remote_port)
{
	return b->ops->dom0(b, page, remote_port);
}

int ring_backend_dominfo(struct ring_backend *b, uint32_t domid,
			 struct ring_dominfo *info)
{
	return b->ops->dominfo(b, domid, info);
}
