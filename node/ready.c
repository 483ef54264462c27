/*
 * node/ready.c: catching up before serving (see node/ready.h for the
 * diagram and the rules).
 *
 * The states and the moves between them are a table, checked on every
 * move (dqlite's lib/sm.c does the same): a move the table does not allow
 * is a bug, caught by assert() in test builds.
 */
#include "node/ready.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node/log.h"

#define READY_LOG_MS 5000

enum ready_state { R_LEADER, R_ASKED, R_APPLY, R_DONE, R_NR };

#define BIT(s) (1u << (s))

static const struct {
	const char *name;
	unsigned allowed; /* the states it may move to */
} states[R_NR] = {
	[R_LEADER] = {"leader", BIT(R_ASKED) | BIT(R_APPLY) | BIT(R_DONE)},
	[R_ASKED] = {"asked", BIT(R_LEADER) | BIT(R_APPLY) | BIT(R_DONE)},
	[R_APPLY] = {"apply", BIT(R_DONE)},
	[R_DONE] = {"done", 0},
};

struct ready {
	struct ready_env env;
	enum ready_state state;
	unsigned timeout_ms;
	uint64_t deadline_ms; /* give up then */
	uint64_t log_ms;      /* the next progress line */
	uint64_t asked;	      /* the member asked (R_ASKED) */
	uint64_t qid;	      /* ... and the question */
	uint64_t asked_ms;
	uint64_t target;      /* the read index (R_APPLY) */
	unsigned not_yet;     /* "not yet" answers so far */
	uint64_t wait_ms;     /* env.waited is due then (0: called) */
	bool endless;	      /* env.waited said: no deadline */
};

/* The invariants of each state: for assert() only (inline: NDEBUG). */
static inline bool ready_ok(const struct ready *rd)
{
	return rd->state < R_NR &&
	       (rd->state != R_APPLY || rd->target > 0) &&
	       (rd->state != R_ASKED || rd->asked != 0);
}

static void move(struct ready *rd, enum ready_state next)
{
	assert(ready_ok(rd));
	assert(states[rd->state].allowed & BIT(next));
	log_msg(7, "readiness: %s -> %s", states[rd->state].name,
		states[next].name);
	rd->state = next;
}

static void finish(struct ready *rd, int status)
{
	move(rd, R_DONE);
	rd->env.done(rd->env.arg, status);
}

struct ready *ready_start(const struct ready_env *env, unsigned timeout_ms,
			  uint64_t now)
{
	const char *fault = getenv("XSR_FAULT_SERVE_STALE");
	struct ready *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return NULL;
	rd->env = *env;
	rd->state = R_LEADER;
	rd->timeout_ms = timeout_ms;
	rd->deadline_ms = now + timeout_ms;
	rd->log_ms = now + READY_LOG_MS;
	rd->wait_ms = env->waited ? now + env->wait_ms : 0;
	if (fault && !strcmp(fault, "1")) {
		log_msg(3, "XSR_FAULT_SERVE_STALE=1: serving without catching "
			   "up (applied %" PRIu64 "): this member may serve "
			   "stale state",
			env->applied(env->arg));
		finish(rd, 0);
	}
	return rd;
}

/* R_LEADER: find where the read index comes from. */
static void from_leader(struct ready *rd, uint64_t now)
{
	const struct ready_env *e = &rd->env;
	uint64_t leader = e->leader(e->arg), index;

	if (leader == e->self) {
		/* we lead: once an entry of our term has committed, our
		 * commit index covers everything before us */
		if (e->read_index(e->arg, &index) == 0 && index > 0) {
			rd->target = index;
			move(rd, R_APPLY);
		}
	} else if (leader && e->ask(e->arg, leader, &rd->qid) == 0) {
		rd->asked = leader;
		rd->asked_ms = now;
		move(rd, R_ASKED);
	}
}

bool ready_answer(struct ready *rd, uint64_t from, uint64_t qid,
		  uint64_t read_index)
{
	if (rd->state != R_ASKED || qid != rd->qid || from != rd->asked)
		return false;
	if (!read_index) {
		/* a new leader without an entry of its term yet: the timer
		 * asks again */
		rd->not_yet++;
		return true;
	}
	rd->target = read_index;
	move(rd, R_APPLY);
	log_msg(6,
		"catching up to the read index %" PRIu64 " of leader %" PRIu64
		" (applied %" PRIu64 ")",
		rd->target, from, rd->env.applied(rd->env.arg));
	return true;
}

/* Every READY_LOG_MS: what we are waiting for, in figures. */
static void progress(struct ready *rd)
{
	const struct ready_env *e = &rd->env;
	uint64_t leader = e->leader(e->arg);

	if (rd->state == R_APPLY)
		log_msg(5,
			"catching up before serving: applied %" PRIu64
			" of %" PRIu64,
			e->applied(e->arg), rd->target);
	else if (!leader)
		log_msg(5,
			"waiting for a leader before serving (applied %" PRIu64
			", log %" PRIu64 ")",
			e->applied(e->arg), e->log_last(e->arg));
	else
		log_msg(5,
			"waiting for leader %" PRIu64 " to commit an entry of "
			"its term before serving (applied %" PRIu64
			", log %" PRIu64 ", %u answers 'not yet')",
			leader, e->applied(e->arg), e->log_last(e->arg),
			rd->not_yet);
}

void ready_tick(struct ready *rd, uint64_t now)
{
	const struct ready_env *e = &rd->env;

	switch (rd->state) {
	case R_LEADER:
		from_leader(rd, now);
		break;
	case R_ASKED:
		if (now - rd->asked_ms >= READY_QUERY_MS ||
		    e->leader(e->arg) != rd->asked)
			move(rd, R_LEADER); /* ask again (maybe another) */
		break;
	case R_APPLY:
		if (e->applied(e->arg) >= rd->target) {
			log_msg(6,
				"caught up: applied index %" PRIu64
				" (read index %" PRIu64 ")",
				e->applied(e->arg), rd->target);
			finish(rd, 0);
			return;
		}
		break;
	default:
		return;
	}
	if (now >= rd->log_ms) {
		rd->log_ms = now + READY_LOG_MS;
		progress(rd);
	}
	if (rd->wait_ms && now >= rd->wait_ms) {
		rd->wait_ms = 0;
		rd->endless = e->waited(e->arg);
	}
	if (now >= rd->deadline_ms && !rd->endless) {
		log_msg(3,
			"not caught up within %u ms (leader %" PRIu64
			", applied %" PRIu64 ", target %" PRIu64 "): giving up",
			rd->timeout_ms, e->leader(e->arg), e->applied(e->arg),
			rd->target);
		finish(rd, -ETIMEDOUT);
	}
}

bool ready_finished(const struct ready *rd)
{
	return rd->state == R_DONE;
}

void ready_free(struct ready *rd)
{
	free(rd);
}
