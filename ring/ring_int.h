/*
 * ring/ring_int.h: private to ring/: the backend interface the two
 * implementations (sim.c, xen.c) fill in.
 */
#ifndef XSR_RING_RING_INT_H
#define XSR_RING_RING_INT_H

#include "ring/ring.h"

struct ring_backend_ops {
	const char *name;
	void (*close)(struct ring_backend *b);
	int (*fd)(const struct ring_backend *b);
	int (*pending)(struct ring_backend *b, uint32_t *port);
	void (*unmask)(struct ring_backend *b, uint32_t port);
	int (*bind_virq)(struct ring_backend *b, uint32_t *port);
	int (*bind)(struct ring_backend *b, uint32_t domid, uint32_t remote,
		    uint32_t *local);
	void (*unbind)(struct ring_backend *b, uint32_t local);
	void (*notify)(struct ring_backend *b, uint32_t local);
	int (*map)(struct ring_backend *b, uint32_t domid, uint64_t gfn,
		   void **page);
	void (*unmap)(struct ring_backend *b, uint32_t domid, void *page);
	int (*dom0)(struct ring_backend *b, void **page, uint32_t *remote);
	int (*dominfo)(struct ring_backend *b, uint32_t domid,
		       struct ring_dominfo *info);
};

/* Every backend starts with this. */
struct ring_backend {
	const struct ring_backend_ops *ops;
};

int ring_sim_open(const char *dir, struct ring_backend **out, char *err,
		  size_t errlen);
int ring_xen_open(struct ring_backend **out, char *err, size_t errlen);

#endif
