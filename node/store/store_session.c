/*
 * node/store/store_session.c: the session table of the log (Raft
 * dissertation 6.3): per origin, the last sequence number applied and the
 * recent results, so that a duplicate entry is answered, not applied.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <stdlib.h>
#include <string.h>

static struct session *session_find(const struct store *st, uint64_t origin,
				    size_t *pos)
{
	size_t lo = 0, hi = st->nsess;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (st->sess[mid]->origin == origin)
			return st->sess[mid];
		if (st->sess[mid]->origin < origin)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

enum store_seen store_session_lookup(const struct store *st, uint64_t origin,
				     uint64_t seq, int *result)
{
	struct session *s = session_find(st, origin, NULL);
	size_t slot = seq % STORE_SESSION_WINDOW;

	if (!s || seq > s->last)
		return STORE_NEW;
	if (s->ring[slot].seq != seq)
		return STORE_SEEN_FORGOTTEN;
	if (result)
		*result = s->ring[slot].result;
	return STORE_SEEN;
}

int store_session_record(struct store *st, uint64_t origin, uint64_t seq,
			 int result)
{
	size_t pos = 0;
	struct session *s = session_find(st, origin, &pos), **v;

	if (!s) {
		s = calloc(1, sizeof(*s));
		v = realloc(st->sess, (st->nsess + 1) * sizeof(*v));
		if (!s || !v) {
			free(s);
			if (v)
				st->sess = v;
			return -STORE_ELOCAL;
		}
		st->sess = v;
		memmove(v + pos + 1, v + pos, (st->nsess - pos) * sizeof(*v));
		s->origin = origin;
		v[pos] = s;
		st->nsess++;
	}
	s->last = seq;
	s->ring[seq % STORE_SESSION_WINDOW].seq = seq;
	s->ring[seq % STORE_SESSION_WINDOW].result = result;
	return 0;
}

uint64_t store_session_last(const struct store *st, uint64_t origin)
{
	struct session *s = session_find(st, origin, NULL);

	return s ? s->last : 0;
}

void store_session_forget(struct store *st, uint64_t origin)
{
	size_t pos = 0;
	struct session *s = session_find(st, origin, &pos);

	if (!s)
		return;
	for (pos = 0; st->sess[pos] != s; pos++)
		;
	free(s);
	memmove(st->sess + pos, st->sess + pos + 1,
		(st->nsess - pos - 1) * sizeof(*st->sess));
	st->nsess--;
}
