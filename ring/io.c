/*
 * ring/io.c: bytes in and out of a hostile shared page.
 *
 * The rule of Xen's xenstored (domain.c readchn/writechn): read the index
 * the guest owns once, validate it against ours, copy, then publish ours
 * after a barrier. We never read back the indexes we own.
 */
#include "ring/ring.h"

#include <errno.h>
#include <string.h>

#define SIZE XENSTORE_RING_SIZE
#define MASK(i) ((i) & (SIZE - 1))

/* One read of a guest-owned field: the compiler may not re-read it. */
static uint32_t load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

void ring_io_init(struct ring_io *io, void *page, uint32_t req_cons,
		  uint32_t rsp_prod)
{
	io->page = page;
	io->req_cons = req_cons;
	io->rsp_prod = rsp_prod;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	store(&io->page->req_cons, req_cons);
	store(&io->page->rsp_prod, rsp_prod);
}

int ring_io_peek(struct ring_io *io, void *buf, size_t max, size_t *n)
{
	uint32_t prod = load(&io->page->req_prod);
	uint32_t cons = io->req_cons, avail, chunk;
	uint8_t *out = buf;

	*n = 0;
	avail = prod - cons;
	if (avail > SIZE)
		return -EIO;
	/* the bytes after the index: not before we saw the index */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (avail > max)
		avail = (uint32_t)max;
	while (avail > 0) {
		chunk = SIZE - MASK(cons);
		if (chunk > avail)
			chunk = avail;
		memcpy(out, (const char *)io->page->req + MASK(cons), chunk);
		out += chunk;
		cons += chunk;
		avail -= chunk;
		*n += chunk;
	}
	return 0;
}

void ring_io_consume(struct ring_io *io, size_t n)
{
	io->req_cons += (uint32_t)n;
	/* our copies are done before the guest may overwrite the bytes */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	store(&io->page->req_cons, io->req_cons);
}

bool ring_io_readable(const struct ring_io *io)
{
	return load(&io->page->req_prod) != io->req_cons;
}

size_t ring_io_space(const struct ring_io *io)
{
	uint32_t used = io->rsp_prod - load(&io->page->rsp_cons);

	return used > SIZE ? 0 : SIZE - used;
}

int ring_io_put(struct ring_io *io, const void *data, size_t len, size_t *n)
{
	uint32_t cons = load(&io->page->rsp_cons);
	uint32_t prod = io->rsp_prod, used = prod - cons, room, chunk;
	const uint8_t *in = data;

	*n = 0;
	if (used > SIZE)
		return -EIO;
	/* the guest's reads of the old bytes are done before we overwrite */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	room = SIZE - used;
	if (room > len)
		room = (uint32_t)len;
	while (room > 0) {
		chunk = SIZE - MASK(prod);
		if (chunk > room)
			chunk = room;
		memcpy((char *)io->page->rsp + MASK(prod), in, chunk);
		in += chunk;
		prod += chunk;
		room -= chunk;
		*n += chunk;
	}
	io->rsp_prod = prod;
	return 0;
}

void ring_io_publish(struct ring_io *io)
{
	/* the bytes before the index that announces them */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	store(&io->page->rsp_prod, io->rsp_prod);
}

void ring_io_reset(struct ring_io *io)
{
	io->req_cons = io->rsp_prod = 0;
	store(&io->page->req_cons, 0);
	store(&io->page->req_prod, 0);
	store(&io->page->rsp_cons, 0);
	store(&io->page->rsp_prod, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint32_t ring_io_connection(const struct ring_io *io)
{
	return load(&io->page->connection);
}

void ring_io_set_connection(struct ring_io *io, uint32_t v)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	store(&io->page->connection, v);
}

void ring_io_set_error(struct ring_io *io, uint32_t err)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	store(&io->page->error, err);
}

uint32_t ring_io_error(const struct ring_io *io)
{
	return load(&io->page->error);
}

void ring_io_set_features(struct ring_io *io, uint32_t features)
{
	store(&io->page->server_features, features);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
