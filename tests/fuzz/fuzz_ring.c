/*
 * tests/fuzz/fuzz_ring.c: a hostile guest's shared page (ring/io.c) under
 * a real ring connection (node/conn_ring.c) and its journal. The input is
 * a script: the guest writes requests or any byte or index of the page,
 * the daemon resets the ring or restarts from the journal (kill -9).
 */
#include <stdlib.h>
#include <string.h>

#include "node/conn.h"
#include "ring/ring.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conn.h"

struct guest {
	struct fuzz_server s;
	struct xenstore_domain_interface *page;
	struct ring_journal *jr;
	struct conn *c;
	struct conn_identity id;
	struct conn_limits lim;
	struct conn_ring_ops ops;
	bool stalled;
};

static void ring_notify(void *arg)
{
}

static void ring_event(void *arg, struct conn *c, enum conn_ring_event ev,
		       uint32_t error)
{
	struct guest *g = arg;

	if (c != g->c)
		return;
	if (ev == CONN_RING_CLOSED) /* closed by itself: freed already */
		g->c = NULL;
	else
		g->stalled = true;
}

/* Let the connection go, as domain_close_conn() does. */
static void let_go(struct guest *g)
{
	if (!g->c)
		return;
	conn_ring_orphan(g->c);
	conn_close(g->c, NULL);
	g->c = NULL;
}

static void serve(struct guest *g, bool fresh)
{
	let_go(g);
	g->stalled = false;
	if (conn_ring_new(g->s.pool, g->page, g->jr, fresh, &g->id, &g->lim,
			  &g->s.h, &g->ops, &g->c) != 0)
		abort();
}

/* The guest writes n bytes of requests as a guest should. */
static void guest_write(struct guest *g, struct fuzz_in *in)
{
	uint32_t prod = g->page->req_prod;
	size_t n = (size_t)fuzz_take(in, 1) + 1, i;

	for (i = 0; i < n && in->n; i++)
		g->page->req[MASK_XENSTORE_IDX(prod + i)] =
			(char)fuzz_take(in, 1);
	__atomic_store_n(&g->page->req_prod, prod + (uint32_t)i,
			 __ATOMIC_RELEASE);
}

/* Any bytes anywhere in the page, indexes included. */
static void guest_scribble(struct guest *g, struct fuzz_in *in)
{
	size_t off = (size_t)fuzz_take(in, 2) % XSR_RING_PAGE_SIZE;
	size_t n = (size_t)fuzz_take(in, 1) + 1, i;
	uint8_t *p = (uint8_t *)g->page;

	for (i = 0; i < n && off + i < XSR_RING_PAGE_SIZE && in->n; i++)
		p[off + i] = (uint8_t)fuzz_take(in, 1);
}

/* INTRODUCE again or a ring reset (domain_ring_attach with reset). */
static void daemon_reset(struct guest *g)
{
	struct ring_io io;

	let_go(g);
	g->id.ring_id++;
	ring_journal_reset(g->jr, g->id.ring_id);
	ring_io_init(&io, g->page, 0, 0);
	ring_io_reset(&io);
	ring_io_set_features(&io, WIRE_FEATURE_RECONNECTION);
	if (ring_io_connection(&io) == XENSTORE_RECONNECT)
		ring_io_set_connection(&io, XENSTORE_CONNECTED);
	serve(g, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned outstanding[4] = {0, 1, 2, 20};
	struct fuzz_in in = {data, size};
	struct guest g;
	unsigned mode;
	int i;

	memset(&g, 0, sizeof(g));
	mode = (unsigned)fuzz_take(&in, 1);
	g.page = aligned_alloc(XSR_RING_PAGE_SIZE, XSR_RING_PAGE_SIZE);
	g.jr = calloc(1, sizeof(*g.jr));
	if (!g.page || !g.jr)
		abort();
	memset(g.page, 0, XSR_RING_PAGE_SIZE);
	g.id = (struct conn_identity){.domid = 5, .target = UINT32_MAX,
				      .ring_id = 1};
	g.lim = (struct conn_limits)CONN_LIMITS_DEFAULT;
	g.lim.max_outstanding = outstanding[mode & 3];
	if (mode & 4) /* watch events dropped past this */
		g.lim.max_output_bytes = 64;
	g.ops = (struct conn_ring_ops){&g, ring_notify, ring_event};
	fuzz_server_init(&g.s);
	ring_journal_reset(g.jr, g.id.ring_id);
	serve(&g, true);

	while (in.n) {
		switch (fuzz_take(&in, 1) % 8) {
		case 0:
			guest_write(&g, &in);
			break;
		case 1:
			g.page->req_prod = (uint32_t)fuzz_take(&in, 4);
			break;
		case 2: /* the guest read every reply */
			g.page->rsp_cons = g.page->rsp_prod;
			break;
		case 3:
			g.page->rsp_cons = (uint32_t)fuzz_take(&in, 4);
			break;
		case 4:
			g.page->connection = (uint32_t)fuzz_take(&in, 1) % 3;
			break;
		case 5:
			guest_scribble(&g, &in);
			break;
		case 6:
			daemon_reset(&g);
			break;
		case 7: /* kill -9 and start again: the journal goes on */
			serve(&g, false);
			break;
		}
		if (g.c)
			conn_ring_kick(g.c);
		for (i = 0; i < 3; i++)
			uv_run(&g.s.loop, UV_RUN_NOWAIT);
	}
	let_go(&g);
	fuzz_server_close(&g.s);
	free(g.page);
	free(g.jr);
	return 0;
}
