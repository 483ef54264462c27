/*
 * node/store/store_member.c: the cluster table, who the members are and
 * where peers reach them; a host's tree is named by its member's name.
 */
#include "node/store/store_int.h"
#include "node/store/store_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t member_pos(const struct store *st, uint64_t id, bool *found)
{
	size_t lo = 0, hi = st->nmembers;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (st->members[mid].id == id) {
			*found = true;
			return mid;
		}
		if (st->members[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

void member_close(struct store_member *m)
{
	free(m->name);
	free(m->raft_address);
	free(m->peer_address);
}

int store_member_set(struct store *st, uint64_t id, const char *name,
		     const char *raft_address, const char *peer_address)
{
	const struct store_member *other = store_member_by_name(st, name);
	struct store_member m = {.id = id}, *v;
	bool found;
	size_t i;

	if (other && other->id != id)
		return -EEXIST;
	m.name = strdup(name);
	m.raft_address = strdup(raft_address ? raft_address : "");
	m.peer_address = strdup(peer_address ? peer_address : "");
	if (!m.name || !m.raft_address || !m.peer_address) {
		member_close(&m);
		return -STORE_ELOCAL;
	}
	i = member_pos(st, id, &found);
	if (found) {
		member_close(&st->members[i]);
		st->members[i] = m;
		return 0;
	}
	v = realloc(st->members, (st->nmembers + 1) * sizeof(*v));
	if (!v) {
		member_close(&m);
		return -STORE_ELOCAL;
	}
	st->members = v;
	memmove(v + i + 1, v + i, (st->nmembers - i) * sizeof(*v));
	v[i] = m;
	st->nmembers++;
	return 0;
}

int store_member_remove(struct store *st, uint64_t id)
{
	bool found;
	size_t i = member_pos(st, id, &found);

	if (!found)
		return -ENOENT;
	member_close(&st->members[i]);
	memmove(st->members + i, st->members + i + 1,
		(st->nmembers - i - 1) * sizeof(st->members[0]));
	st->nmembers--;
	return 0;
}

size_t store_member_count(const struct store *st)
{
	return st->nmembers;
}

const struct store_member *store_member_at(const struct store *st, size_t i)
{
	return i < st->nmembers ? &st->members[i] : NULL;
}

const struct store_member *store_member_by_id(const struct store *st,
					      uint64_t id)
{
	bool found;
	size_t i = member_pos(st, id, &found);

	return found ? &st->members[i] : NULL;
}

const struct store_member *store_member_by_name(const struct store *st,
						const char *name)
{
	size_t i;

	for (i = 0; i < st->nmembers; i++)
		if (strcmp(st->members[i].name, name) == 0)
			return &st->members[i];
	return NULL;
}
