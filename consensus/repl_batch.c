/*
 * consensus/repl_batch.c: submissions batched into log entries, and log
 * entries split back into the submissions they carry when libraft applies
 * them (repl_fsm.apply, once per frame). Talks to libraft (raft_apply, the
 * FSM's apply) and to the daemon through repl_fsm.
 */
#include "consensus/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "consensus/repl_int.h"

/*
 * Batching. Every submission of one loop iteration (the requests of every
 * client that were readable at once) goes into one log entry of several
 * frames, appended just before the loop waits again. A Raft entry costs a
 * disk write slot, an AppendEntries message per peer and libraft's
 * bookkeeping; shared by a batch, it is paid once for up to
 * BATCH_MAX_FRAMES requests (BATCH_MAX_BYTES of them). Frames of an entry
 * are applied in order, all under the entry's index, before any other
 * request is read: no client can observe a state between them, so sharing
 * the index (the generation of what they change) is as good as
 * consecutive indexes.
 */
#define BATCH_MAX_FRAMES 1024
#define BATCH_MAX_BYTES (1u << 20)

struct submit {
	repl_submit_cb cb;
	void *arg;
};

struct batch {
	struct raft_apply req;
	struct raft_buffer buf;	/* frames so far; buf.len is their length */
	size_t cap;
	struct submit *subs;
	unsigned n, subs_cap;
};

/*
 * libraft wants entry lengths in multiples of 8: an entry is framed as
 * {u32 little-endian payload length, u32 zero} + payload + zero padding.
 */
#define FRAME_HDR 8

void repl_local_tail_drop(struct repl *r)
{
	size_t i;

	for (i = 0; i < r->n_tail; i++)
		free(r->tail[i].buf);
	free(r->tail);
	r->tail = NULL;
	r->n_tail = 0;
}

size_t repl_local_tail(struct repl *r, uint64_t after,
		       void (*cb)(void *arg, uint64_t index, const void *frame,
				  size_t len),
		       void *arg)
{
	size_t i, off, n = 0;
	uint32_t len;

	for (i = 0; i < r->n_tail; i++) {
		const uint8_t *p = r->tail[i].buf;
		size_t blen = r->tail[i].len;

		if (r->tail[i].index <= after)
			continue;
		for (off = 0; blen - off >= FRAME_HDR;) {
			len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
			      (uint32_t)p[off + 2] << 16 |
			      (uint32_t)p[off + 3] << 24;
			if (len > blen - off - FRAME_HDR)
				break;
			cb(arg, r->tail[i].index, p + off + FRAME_HDR, len);
			n++;
			off += (FRAME_HDR + (size_t)len + 7) & ~(size_t)7;
		}
	}
	return n;
}

int repl_batch_apply(struct raft_fsm *f, const struct raft_buffer *buf,
		     void **result)
{
	struct repl *r = f->data;
	uint64_t index = raft_last_applied(&r->raft) + 1;
	const uint8_t *p = buf->base;
	size_t off = 0;
	uint32_t len;

	*result = NULL;
	if (buf->len < FRAME_HDR) {
		repl_logf(r, 3, "log entry %llu is too short: skipped",
			  (unsigned long long)index);
		r->fsm->apply(r->fsm->data, index, "", 0);
		return 0;
	}
	/* one frame per request of a batch (see repl_submit) */
	while (buf->len - off >= FRAME_HDR) {
		len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
		      (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		if (len > buf->len - off - FRAME_HDR) {
			repl_logf(r, 3, "log entry %llu has a bad length at "
				  "offset %zu: the rest is skipped",
				  (unsigned long long)index, off);
			break;
		}
		/* libraft advances last_applied after this returns. */
		r->fsm->apply(r->fsm->data, index, p + off + FRAME_HDR, len);
		off += (FRAME_HDR + (size_t)len + 7) & ~(size_t)7;
	}
	return 0;
}

static void batch_free(struct batch *b)
{
	raft_free(b->buf.base);
	free(b->subs);
	free(b);
}

/* Each submission of b learns its fate: status 0 (applied) or an errno. */
static void batch_finish(struct batch *b, int status)
{
	unsigned i;

	for (i = 0; i < b->n; i++)
		b->subs[i].cb(b->subs[i].arg, status);
	batch_free(b);
}

static void batch_cb(struct raft_apply *req, int status, void *result)
{
	(void)result;
	batch_finish(req->data, repl_from_raft(status));
}

/* Append the open batch to the log. */
void repl_batch_flush(struct repl *r)
{
	struct batch *b = r->batch;
	int rv;

	if (!b)
		return;
	r->batch = NULL;
	uv_prepare_stop(&r->flush);
	if (r->closing) {
		batch_finish(b, -ESHUTDOWN);
		return;
	}
	if (raft_state(&r->raft) != RAFT_LEADER) {
		batch_finish(b, -ENOTCONN);
		return;
	}
	r->batches++;
	r->batched += b->n;
	b->req.data = b;
	rv = raft_apply(&r->raft, &b->req, &b->buf, 1, batch_cb);
	if (rv) {
		/*
		 * A refusal before the entry reached the log leaves the buffer
		 * ours: not the leader any more, or a leadership transfer under
		 * way (our state check above cannot see it), or a full disk
		 * (ClientSubmit() in libraft 0.22.1, src/client.c). After other
		 * errors libraft may have taken it: leave it (a leak at worst,
		 * never a double free). A full disk refuses every request: say
		 * so once a minute.
		 */
		if (rv == RAFT_NOTLEADER || rv == RAFT_NOSPACE)
			raft_free(b->buf.base);
		if (rv == RAFT_NOSPACE)
			repl_trace_nospace_warn(r, raft_errmsg(&r->raft));
		else
			repl_logf(r, 4, "cannot append to the log: %s",
				  raft_errmsg(&r->raft));
		b->buf.base = NULL;
		batch_finish(b, repl_from_raft(rv));
		return;
	}
	b->buf.base = NULL; /* libraft's now */
}

static void batch_flush_cb(uv_prepare_t *h)
{
	repl_batch_flush(h->data);
}

int repl_submit(struct repl *r, const void *buf, size_t len, repl_submit_cb cb,
		void *arg)
{
	struct batch *b;
	size_t frame;
	uint8_t *p;

	if (r->closing)
		return -ESHUTDOWN;
	if (raft_state(&r->raft) != RAFT_LEADER)
		return -ENOTCONN;
	if (len > UINT32_MAX - 16)
		return -E2BIG;
	frame = (FRAME_HDR + len + 7) & ~(size_t)7;
	b = r->batch;
	if (b && (b->n == BATCH_MAX_FRAMES ||
		  b->buf.len + frame > BATCH_MAX_BYTES)) {
		repl_batch_flush(r);
		b = NULL;
	}
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return -ENOMEM;
	}
	if (b->buf.len + frame > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		void *nb;

		while (cap < b->buf.len + frame)
			cap *= 2;
		nb = raft_realloc(b->buf.base, cap);
		if (!nb)
			goto nomem;
		b->buf.base = nb;
		b->cap = cap;
	}
	if (b->n == b->subs_cap) {
		unsigned c = b->subs_cap ? 2 * b->subs_cap : 16;
		struct submit *ns = realloc(b->subs, c * sizeof(*ns));

		if (!ns)
			goto nomem;
		b->subs = ns;
		b->subs_cap = c;
	}
	p = (uint8_t *)b->buf.base + b->buf.len;
	memset(p, 0, frame);
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	memcpy(p + FRAME_HDR, buf, len);
	b->buf.len += frame;
	b->subs[b->n].cb = cb;
	b->subs[b->n].arg = arg;
	b->n++;
	if (!r->batch) {
		r->batch = b;
		uv_prepare_start(&r->flush, batch_flush_cb);
	}
	return 0;

nomem:
	if (!r->batch)
		batch_free(b);
	return -ENOMEM;
}
