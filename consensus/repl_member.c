/*
 * consensus/repl_member.c: the configuration (Raft dissertation chapter 4):
 * its servers and roles, and changing it on the leader (add, assign,
 * remove, transfer leadership) through libraft's change requests.
 */
#include "consensus/repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <raft.h>

#include "consensus/repl_int.h"

const char *repl_role_name(int role)
{
	switch (role) {
	case REPL_VOTER:
		return "voter";
	case REPL_STANDBY:
		return "standby";
	case REPL_SPARE:
		return "spare";
	default:
		return "none";
	}
}

size_t repl_servers(struct repl *r, struct repl_server *out, size_t max)
{
	const struct raft_configuration *c = &r->raft.configuration;
	size_t i;

	for (i = 0; i < c->n && i < max; i++) {
		out[i].id = c->servers[i].id;
		snprintf(out[i].address, sizeof(out[i].address), "%s",
			 c->servers[i].address);
		out[i].role = c->servers[i].role == RAFT_VOTER	   ? REPL_VOTER
			      : c->servers[i].role == RAFT_STANDBY ? REPL_STANDBY
								   : REPL_SPARE;
	}
	return c->n;
}

struct change {
	union {
		struct raft_change change;
		struct raft_transfer transfer;
	};
	struct repl *r;
	repl_change_cb cb;
	void *arg;
	uint64_t target;
};

static struct change *change_new(struct repl *r, repl_change_cb cb, void *arg)
{
	struct change *c = calloc(1, sizeof(*c));

	if (c) {
		c->r = r;
		c->cb = cb;
		c->arg = arg;
	}
	return c;
}

static void change_done(struct raft_change *req, int status)
{
	struct change *c = req->data;

	if (status)
		repl_logf(c->r, 4, "configuration change failed: %s",
			  raft_strerror(status));
	c->cb(c->arg, repl_from_raft(status));
	free(c);
}

static int change_start(struct repl *r, struct change *c, int rv)
{
	if (rv) {
		repl_logf(r, 4, "configuration change refused: %s",
			  raft_errmsg(&r->raft));
		free(c);
		return repl_from_raft(rv) ? repl_from_raft(rv) : -EIO;
	}
	return 0;
}

int repl_add(struct repl *r, uint64_t id, const char *address,
	     repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_add(&r->raft, &c->change, id, address,
				     change_done));
}

int repl_assign(struct repl *r, uint64_t id, int role, repl_change_cb cb,
		void *arg)
{
	struct change *c;
	int rrole = role == REPL_VOTER	   ? RAFT_VOTER
		    : role == REPL_STANDBY ? RAFT_STANDBY
					   : RAFT_SPARE;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_assign(&r->raft, &c->change, id, rrole,
					change_done));
}

int repl_remove(struct repl *r, uint64_t id, repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->change.data = c;
	return change_start(r, c,
			    raft_remove(&r->raft, &c->change, id, change_done));
}

static void transfer_done(struct raft_transfer *req)
{
	struct change *c = req->data;
	uint64_t leader = repl_leader(c->r);

	/* raft_transfer tells nothing: look at who leads now */
	c->cb(c->arg, leader && leader != c->r->raft.id &&
				      (!c->target || leader == c->target)
			      ? 0
			      : -ETIMEDOUT);
	free(c);
}

int repl_transfer(struct repl *r, uint64_t id, repl_change_cb cb, void *arg)
{
	struct change *c;

	if (!repl_is_leader(r))
		return -ENOTCONN;
	c = change_new(r, cb, arg);
	if (!c)
		return -ENOMEM;
	c->target = id;
	c->transfer.data = c;
	return change_start(r, c,
			    raft_transfer(&r->raft, &c->transfer, id,
					  transfer_done));
}
